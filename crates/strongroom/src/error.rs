//! The crate's one error type.
//!
//! Every fallible call returns [`Error`]. Failures to open a sealed value are
//! deliberately one opaque variant, [`Error::DecryptionFailed`], whatever the
//! cause (wrong key, flipped bit, value moved to another path), so errors are
//! no oracle. Everything a caller can act on (an unknown key version, a bad
//! path, a storage fault) has its own variant.
//!
//! [`Error::details`] describes any error as a stable code and named public
//! fields, listed once in [`ERROR_CODES`] (and `docs/ERRORS.md`), so language
//! bindings convert errors mechanically instead of each by hand.

use std::fmt;

use crate::keyring::KeyState;

mod codes;
mod details;

pub use codes::{ERROR_CODES, ErrorCode, FieldSpec, FieldType, RESERVED_FIELD_NAMES, ROOT_CLASS};
pub use details::{ErrorDetails, FieldValue};

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Strongroom.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sealed value did not open. Deliberately says nothing more.
    #[error("decryption failed")]
    DecryptionFailed,

    /// A sealed value's framing is wrong (before any decryption was tried).
    #[error("malformed sealed value: {0}")]
    MalformedSealedValue(&'static str),

    /// The sealed value names a key version the keyring does not have.
    #[error("unknown key version {version}: the keyring has versions 1..={latest}")]
    UnknownKeyVersion {
        /// The version named in the sealed value's header.
        version: u32,
        /// The newest version the keyring holds.
        latest: u32,
    },

    /// The key version exists but may no longer decrypt.
    #[error(
        "key version {version} is {state} (minimum decryption version is {min_decryption_version}); rewrap values sealed under it before retiring it"
    )]
    KeyVersionRetired {
        /// The version named in the sealed value's header.
        version: u32,
        /// Its state.
        state: KeyState,
        /// The keyring's minimum decryption version.
        min_decryption_version: u32,
    },

    /// A key state change that the key lifecycle forbids.
    #[error("key version {version} cannot go from {from} to {to}")]
    InvalidKeyTransition {
        /// The key version.
        version: u32,
        /// Its current state.
        from: KeyState,
        /// The requested state.
        to: KeyState,
    },

    /// A key version is still needed by stored values and cannot be destroyed.
    #[error(
        "key version {version} still protects {records} stored record(s) (first: {example}); run rewrap first"
    )]
    KeyInUse {
        /// The key version.
        version: u32,
        /// How many records still need it.
        records: u64,
        /// One storage key that needs it.
        example: String,
    },

    /// A path failed validation.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given (paths are not secret).
        path: String,
        /// What is wrong with it.
        reason: PathError,
    },

    /// The store is sealed (locked): its keys are not in memory.
    #[error("the store is sealed: call unseal first")]
    Sealed,

    /// `init` was called on storage that already holds a store.
    #[error("storage already holds an initialised strongroom; use unseal instead of init")]
    AlreadyInitialized,

    /// `unseal` was called on storage that holds no store.
    #[error("storage holds no strongroom; run init first")]
    NotInitialized,

    /// The root key from the key protector does not open the stored keyring.
    #[error(
        "unseal failed: the root key does not open this store's keyring (wrong key file, token or shares?)"
    )]
    UnsealFailed,

    /// A problem with a root key file.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file's path.
        path: String,
        /// What is wrong with it.
        reason: KeyFileError,
    },

    /// A key protector (software, HSM) failed.
    #[error("key protector {protector}: {kind}: {message}")]
    Protector {
        /// Which protector ("software", "pkcs11").
        protector: &'static str,
        /// The kind of failure.
        kind: ProtectorErrorKind,
        /// Detail for the operator. Never contains key material or PINs.
        message: String,
    },

    /// The storage backend failed.
    #[error("storage ({backend}): {kind}: {message}")]
    Storage {
        /// Which backend ("memory", "sqlite", "postgres").
        backend: &'static str,
        /// The kind of failure.
        kind: StorageErrorKind,
        /// Detail for the operator.
        message: String,
    },

    /// An atomic batch's precondition did not hold: someone else changed the
    /// record first. Retry after re-reading.
    #[error("storage record {key:?} changed concurrently; re-read and retry")]
    StorageConflict {
        /// The storage key whose expectation failed.
        key: String,
    },

    /// A stored record (not a sealed value) could not be decoded.
    #[error("stored record {key:?} is corrupt: {reason}")]
    CorruptRecord {
        /// The storage key.
        key: String,
        /// What was wrong.
        reason: String,
    },

    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed")]
    Random,

    /// The caller passed an argument that cannot be used.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A versioned-secrets operation failed.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),

    /// A policy check failed or a policy could not be loaded.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),

    /// The audit trail could not be written or failed verification.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),

    /// A lease operation failed.
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),

    /// A credential rotation failed.
    #[error(transparent)]
    Rotation(#[from] crate::rotation::RotationError),

    /// Shamir split or combine failed.
    #[error(transparent)]
    Shamir(#[from] crate::shamir::ShamirError),

    /// A signing key failed.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),

    /// A write through a principal's handle names a path that follows none
    /// of the applied naming rules ([`crate::declarative`]); nothing was
    /// written.
    #[error(transparent)]
    Naming(#[from] crate::declarative::NamingViolation),

    /// An approval gate held the operation, or an approval request could
    /// not be made, decided or used ([`crate::approvals`]).
    #[error(transparent)]
    Approval(#[from] crate::approvals::ApprovalError),
}

/// Why a path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty.
    #[error("the path is empty")]
    Empty,
    /// Two slashes in a row, or a leading or trailing slash.
    #[error("empty segment (double, leading or trailing '/')")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("'.' and '..' segments are not allowed")]
    DotSegment,
    /// A character outside the allowed set.
    #[error("character {0:?} is not allowed (use a-z, 0-9, '-', '_', '.', '/')")]
    BadCharacter(char),
    /// Upper-case letters (paths are lower-case so `Prod` cannot alias `prod`).
    #[error("upper-case letters are not allowed (paths are lower-case)")]
    UpperCase,
    /// Too long.
    #[error("longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Too many segments.
    #[error("more than {max} segments")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The path is under a prefix reserved for Strongroom's own records.
    #[error("the 'sys' prefix is reserved")]
    Reserved,
}

/// Why a key file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file can be read or written by group or others.
    #[error(
        "permissions {mode:o} are too open: the key file must be readable by its owner only (chmod 600)"
    )]
    LoosePermissions {
        /// The file's mode bits.
        mode: u32,
    },
    /// The file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The content is not a base64-encoded 32-byte key.
    #[error("content is not a base64-encoded 32-byte key")]
    BadContent,
    /// The file already exists (refusing to overwrite a key).
    #[error("already exists; refusing to overwrite a root key")]
    Exists,
    /// The file belongs to another user than the one this process runs as
    /// (that user could change or replace the key).
    #[error(
        "owned by uid {uid} but this process runs as uid {expected}: a key file must belong to the user that reads it (chown it)"
    )]
    WrongOwner {
        /// The file's owner.
        uid: u32,
        /// This process's effective user id.
        expected: u32,
    },
    /// The file sits in a directory its group or other users can write
    /// (sticky or not), so someone else could put a file in its place.
    #[error(
        "the directory {dir} has permissions {mode:o}, writable by group or others: keep key files in a directory only its owner can write (chmod go-w)"
    )]
    UnsafeDirectory {
        /// The directory.
        dir: String,
        /// The directory's mode bits (including the sticky bit).
        mode: u32,
    },
    /// The file is larger than any key file; it was not read whole.
    #[error(
        "larger than {limit} bytes: a key file is one line of base64 (45 bytes); is this the right file?"
    )]
    TooLarge {
        /// The most bytes a key file may have.
        limit: u64,
    },
}

/// Kinds of key protector failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtectorErrorKind {
    /// The wrapped root key did not unwrap (wrong key, another token, tampering).
    UnwrapFailed,
    /// The PIN was rejected.
    WrongPin,
    /// The PIN is locked after too many failures.
    PinLocked,
    /// No token with the configured label.
    TokenNotFound,
    /// The token was removed.
    TokenRemoved,
    /// The wrapping key is not on the token.
    KeyNotFound,
    /// The module does not support a needed mechanism.
    MechanismUnsupported,
    /// The module library could not be loaded.
    ModuleNotFound,
    /// Configuration is incomplete or contradictory.
    Config,
    /// Anything else the device reported.
    Device,
}

impl fmt::Display for ProtectorErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnwrapFailed => "unwrap failed",
            Self::WrongPin => "wrong pin",
            Self::PinLocked => "pin locked",
            Self::TokenNotFound => "token not found",
            Self::TokenRemoved => "token removed",
            Self::KeyNotFound => "key not found",
            Self::MechanismUnsupported => "mechanism not supported",
            Self::ModuleNotFound => "module not found",
            Self::Config => "configuration",
            Self::Device => "device error",
        })
    }
}

/// Kinds of storage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// The backend could not be reached or opened.
    Unavailable,
    /// The backend's files or tables are damaged or are not a Strongroom store.
    Corrupt,
    /// The backend refused the operation (permissions, read-only, full disk).
    Rejected,
    /// A schema or format version this build does not understand.
    UnsupportedVersion,
    /// An injected or otherwise unclassified fault.
    Other,
}

impl fmt::Display for StorageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "unavailable",
            Self::Corrupt => "corrupt",
            Self::Rejected => "rejected",
            Self::UnsupportedVersion => "unsupported version",
            Self::Other => "failed",
        })
    }
}

impl Error {
    /// Builds a storage error.
    pub fn storage(
        backend: &'static str,
        kind: StorageErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self::Storage {
            backend,
            kind,
            message: message.into(),
        }
    }

    /// Builds a key protector error.
    pub fn protector(
        protector: &'static str,
        kind: ProtectorErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self::Protector {
            protector,
            kind,
            message: message.into(),
        }
    }

    /// Builds a corrupt-record error.
    pub fn corrupt(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::CorruptRecord {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl Error {
    /// A short, stable, machine-readable code for the error (`snake_case`),
    /// for audit records ([`Outcome::Error`](crate::audit::Outcome::Error)),
    /// metrics and language bindings. Codes never change meaning once
    /// released; new variants get new codes. The code never quotes a value.
    ///
    /// ```
    /// use strongroom::Error;
    /// assert_eq!(Error::DecryptionFailed.kind(), "decryption_failed");
    /// ```
    pub fn kind(&self) -> &'static str {
        use crate::approvals::ApprovalError as V;
        use crate::audit::AuditError as A;
        use crate::lease::LeaseError as L;
        use crate::policy::PolicyError as P;
        use crate::rotation::RotationError as R;
        use crate::secrets::SecretError as S;
        use crate::shamir::ShamirError as H;
        use crate::signing::SigningError as G;
        match self {
            Self::DecryptionFailed => "decryption_failed",
            Self::MalformedSealedValue(_) => "malformed_sealed_value",
            Self::UnknownKeyVersion { .. } => "unknown_key_version",
            Self::KeyVersionRetired { .. } => "key_version_retired",
            Self::InvalidKeyTransition { .. } => "invalid_key_transition",
            Self::KeyInUse { .. } => "key_in_use",
            Self::InvalidPath { .. } => "invalid_path",
            Self::Sealed => "sealed",
            Self::AlreadyInitialized => "already_initialized",
            Self::NotInitialized => "not_initialized",
            Self::UnsealFailed => "unseal_failed",
            Self::KeyFile { .. } => "key_file",
            Self::Protector { .. } => "protector",
            Self::Storage { .. } => "storage",
            Self::StorageConflict { .. } => "storage_conflict",
            Self::CorruptRecord { .. } => "corrupt_record",
            Self::Random => "random",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Secret(e) => match e {
                S::NotFound { .. } => "not_found",
                S::VersionDeleted { .. } => "version_deleted",
                S::VersionDestroyed { .. } => "version_destroyed",
                S::VersionPruned { .. } => "version_pruned",
                S::CasMismatch { .. } => "cas_mismatch",
                S::InvalidMetadata { .. } => "invalid_metadata",
                S::Contended { .. } => "contended",
            },
            Self::Policy(e) => match e {
                P::Denied { .. } => "policy_denied",
                P::Parse { .. } => "policy_parse",
                P::InvalidPattern { .. } => "invalid_pattern",
                P::UnknownCapability(_) => "unknown_capability",
                P::UnknownPolicy(_) => "unknown_policy",
                P::Io { .. } => "policy_io",
            },
            Self::Audit(e) => match e {
                A::NoSinkAccepted { .. } => "audit_no_sink_accepted",
                A::Sink { .. } => "audit_sink",
                A::ChainBroken { .. } => "audit_chain_broken",
                A::MalformedRecord(_) => "audit_malformed_record",
                A::WeakKey { .. } => "audit_weak_key",
                A::NoSinks => "audit_no_sinks",
                A::SequenceExhausted => "audit_sequence_exhausted",
                A::Io { .. } => "audit_io",
                A::Encode(_) => "audit_encode",
            },
            Self::Lease(e) => match e {
                L::NotFound { .. } => "lease_not_found",
                L::InvalidId { .. } => "lease_invalid_id",
                L::NotRenewable { .. } => "lease_not_renewable",
                L::Expired { .. } => "lease_expired",
                L::NotActive { .. } => "lease_not_active",
                L::QuotaExceeded { .. } => "lease_quota_exceeded",
                L::NoRevoker { .. } => "lease_no_revoker",
                L::InvalidTtl { .. } => "lease_invalid_ttl",
                L::InvalidEngine { .. } => "lease_invalid_engine",
                L::RevocationDeferred { .. } => "lease_revocation_deferred",
                L::Irrevocable { .. } => "lease_irrevocable",
                L::RevokerFailed { .. } => "lease_revoker_failed",
            },
            Self::Rotation(e) => match e {
                R::InvalidName { .. } => "rotation_invalid_name",
                R::Busy { .. } => "rotation_busy",
                R::LostLock { .. } => "rotation_lost_lock",
                R::StepFailed { .. } => "rotation_step_failed",
                R::RolledBack { .. } => "rotation_rolled_back",
                R::AlreadyInitialized { .. } => "rotation_already_initialized",
                R::CorruptState { .. } => "rotation_corrupt_state",
                R::AuditRefused { .. } => "rotation_audit_refused",
            },
            Self::Shamir(e) => match e {
                H::InvalidParameters { .. } => "shamir_invalid_parameters",
                H::NoShares => "shamir_no_shares",
                H::TooFewShares { .. } => "shamir_too_few_shares",
                H::DuplicateShare { .. } => "shamir_duplicate_share",
                H::DifferentSplits { .. } => "shamir_different_splits",
                H::CorruptShare { .. } => "shamir_corrupt_share",
            },
            Self::Signing(e) => match e {
                G::UnknownKey { .. } => "signing_unknown_key",
                G::KeyExists { .. } => "signing_key_exists",
                G::UnknownVersion { .. } => "signing_unknown_version",
                G::VersionRetired { .. } => "signing_version_retired",
                G::WrongKeyType { .. } => "signing_wrong_key_type",
                G::RateLimited { .. } => "signing_rate_limited",
                G::BadSignatureEncoding { .. } => "signing_bad_signature_encoding",
                G::Conflict { .. } => "signing_conflict",
                G::CorruptKey { .. } => "signing_corrupt_key",
                G::CorruptRecord { .. } => "signing_corrupt_record",
                G::InvalidMinVerifyVersion { .. } => "signing_invalid_min_verify_version",
                G::InvalidRateLimit { .. } => "signing_invalid_rate_limit",
                G::InvalidChainId { .. } => "signing_invalid_chain_id",
            },
            Self::Naming(_) => "naming_violation",
            Self::Approval(e) => match e {
                V::Required { .. } => "approval_required",
                V::NotFound { .. } => "approval_not_found",
                V::Expired { .. } => "approval_expired",
                V::Refused { .. } => "approval_refused",
                V::NotApproved { .. } => "approval_not_approved",
                V::Used { .. } => "approval_used",
                V::NotApprover { .. } => "approval_not_approver",
                V::SelfApproval { .. } => "approval_self_approval",
                V::AlreadyApproved { .. } => "approval_already_approved",
                V::Mismatch { .. } => "approval_mismatch",
                V::NoGate { .. } => "approval_no_gate",
                V::InvalidGates { .. } => "approval_invalid_gates",
                V::InvalidRequest { .. } => "approval_invalid_request",
                V::Conflict { .. } => "approval_conflict",
            },
        }
    }
}
