//! The secrets store's errors.

use crate::clock::Timestamp;

/// Errors of the versioned secrets store. Paths and version numbers appear in
/// messages; values never do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No secret at this path, or the secret never had this version.
    #[error("{}", not_found_message(.path, *.version))]
    NotFound {
        /// The path.
        path: String,
        /// The requested version, if a specific one was asked for.
        version: Option<u64>,
    },
    /// The version was soft-deleted; `undelete` brings it back.
    #[error("secret {path} version {version} was deleted at {deleted_at}; undelete it to read it")]
    VersionDeleted {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// When it was deleted.
        deleted_at: Timestamp,
    },
    /// The version was destroyed: its sealed value is gone for good.
    #[error(
        "secret {path} version {version} was destroyed at {destroyed_at} and cannot be recovered"
    )]
    VersionDestroyed {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// When it was destroyed.
        destroyed_at: Timestamp,
    },
    /// The version was pruned because the secret keeps only `max_versions`
    /// versions; it is gone for good.
    #[error(
        "secret {path} version {version} was pruned (the oldest kept version is {oldest}); raise max_versions to keep more"
    )]
    VersionPruned {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// The oldest version still kept.
        oldest: u64,
    },
    /// A check-and-set write found another current version.
    #[error(
        "check-and-set failed for secret {path}: expected current version {expected}, found {current}; re-read and retry"
    )]
    CasMismatch {
        /// The path.
        path: String,
        /// The version the caller expected to be current (0: absent).
        expected: u64,
        /// The actual current version (0: absent).
        current: u64,
    },
    /// Metadata or an option is out of bounds.
    #[error("invalid metadata for secret {path}: {reason}")]
    InvalidMetadata {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Other writers kept changing the secret; the write gave up.
    #[error("secret {path} kept changing concurrently ({attempts} attempts); retry later")]
    Contended {
        /// The path.
        path: String,
        /// How many attempts were made.
        attempts: usize,
    },
}

fn not_found_message(path: &str, version: Option<u64>) -> String {
    match version {
        Some(v) => format!("secret {path} has no version {v}"),
        None => format!("no secret at {path}"),
    }
}
