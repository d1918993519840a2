//! The rotation errors.

use super::*;

/// Errors of the dual-credential rotation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// The credential name cannot be used.
    #[error("invalid credential name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Another process (or task) is rotating this credential.
    #[error(
        "credential {credential:?} is being rotated by {owner:?} until {until}; retry after that"
    )]
    Busy {
        /// The credential.
        credential: String,
        /// The lock owner's id.
        owner: String,
        /// When the lock expires if not renewed.
        until: Timestamp,
    },
    /// The rotation state changed under this engine (its lock expired and
    /// another process took over); this engine stopped without acting further.
    #[error("lost the rotation lock of credential {credential:?}: another process took over")]
    LostLock {
        /// The credential.
        credential: String,
    },
    /// A step against the target system kept failing; the step is recorded
    /// and [`RotationEngine::resume`] retries it.
    #[error(
        "credential {credential:?} version {version}: {step} failed after {attempts} attempt(s): {message}"
    )]
    StepFailed {
        /// The credential.
        credential: String,
        /// The version being worked on.
        version: u64,
        /// The failing step.
        step: RotationStep,
        /// How many attempts were made.
        attempts: u32,
        /// The target system's error (never contains a secret).
        message: String,
    },
    /// The new version could not be set or tested and the rotation was
    /// rolled back: `current` is untouched and the failed version discarded.
    #[error(
        "credential {credential:?} version {version} failed at {step} and was rolled back ({message}); the current version is unchanged"
    )]
    RolledBack {
        /// The credential.
        credential: String,
        /// The discarded version.
        version: u64,
        /// The step that failed.
        step: RotationStep,
        /// The target system's error (never contains a secret).
        message: String,
    },
    /// The credential already has a current version (for `import_current`).
    #[error("credential {credential:?} already has a current version; rotate instead")]
    AlreadyInitialized {
        /// The credential.
        credential: String,
    },
    /// The stored state record cannot be read.
    #[error("rotation state of credential {credential:?} is corrupt: {reason}")]
    CorruptState {
        /// The credential.
        credential: String,
        /// What is wrong.
        reason: String,
    },
    /// The audit hook refused to record a step, so the step was not run.
    #[error("the audit hook refused {step} of credential {credential:?}: {message}")]
    AuditRefused {
        /// The credential.
        credential: String,
        /// The step.
        step: RotationStep,
        /// The hook's error.
        message: String,
    },
}
