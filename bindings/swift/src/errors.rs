//! The one error enum of the FFI and the mapping of core errors onto it.
//!
//! One case per core error variant, or per variant family where callers do
//! not act on the difference (those cases still carry the exact
//! [`Error::kind`] code). Every case carries `code` (the core's stable
//! snake_case code) and `message` (the core's message, which never quotes a
//! secret).

use strongroom::Error;
use strongroom::audit::AuditError;
use strongroom::lease::LeaseError;
use strongroom::policy::PolicyError;
use strongroom::rotation::RotationError;
use strongroom::secrets::SecretError;

/// Every failure (Swift: an enum; uniffi's Python: subclasses of
/// `StrongroomError`). Every case has `code` (`Error::kind()`, stable) and
/// `message`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum StrongroomError {
    /// A sealed value did not open.
    #[error("{message}")]
    DecryptionFailed {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The bytes are not a sealed value this build can read.
    #[error("{message}")]
    MalformedSealedValue {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The sealed value names a key version the keyring does not have.
    #[error("{message}")]
    UnknownKeyVersion {
        /// The key version in the value's header.
        version: u32,
        /// The newest version the keyring holds.
        latest: u32,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The key version is retired or destroyed.
    #[error("{message}")]
    KeyVersionRetired {
        /// The key version.
        version: u32,
        /// The keyring's minimum decryption version.
        min_decryption_version: u32,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A key state change the lifecycle forbids.
    #[error("{message}")]
    InvalidKeyTransition {
        /// The key version.
        version: u32,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A key version still protects stored records.
    #[error("{message}")]
    KeyInUse {
        /// The key version.
        version: u32,
        /// How many records need it.
        records: u64,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A path failed validation.
    #[error("{message}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The store is sealed.
    #[error("{message}")]
    Sealed {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// init on storage that already holds a store.
    #[error("{message}")]
    AlreadyInitialized {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// unseal on storage that holds no store.
    #[error("{message}")]
    NotInitialized {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The root key does not open the keyring.
    #[error("{message}")]
    UnsealFailed {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A root key file problem.
    #[error("{message}")]
    KeyFile {
        /// The file's path.
        path: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A key protector failed (software key, PKCS#11 token).
    #[error("{message}")]
    Protector {
        /// Which protector ("software", "pkcs11").
        protector: String,
        /// The kind of failure ("unwrap failed", "wrong pin", ...).
        kind: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The storage backend failed. (Not `Storage`, which would shadow the
    /// `Storage` class inside the Swift enum.)
    #[error("{message}")]
    StorageFailed {
        /// Which backend.
        backend: String,
        /// The kind of failure.
        kind: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A record changed concurrently.
    #[error("{message}")]
    StorageConflict {
        /// The storage key.
        key: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A stored record could not be decoded.
    #[error("{message}")]
    CorruptRecord {
        /// The storage key.
        key: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The OS random number generator failed.
    #[error("{message}")]
    Random {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// An argument cannot be used.
    #[error("{message}")]
    InvalidArgument {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// No secret at this path, or the secret has no such version.
    #[error("{message}")]
    NotFound {
        /// The path.
        path: String,
        /// The version asked for, if one was.
        version: Option<u64>,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The version was soft-deleted; undelete brings it back.
    #[error("{message}")]
    VersionDeleted {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// When it was deleted (ms since the Unix epoch).
        deleted_ms: u64,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The version was destroyed (code `version_destroyed`) or pruned
    /// (code `version_pruned`, no `destroyed_ms`): its value is gone.
    #[error("{message}")]
    VersionDestroyed {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// When it was destroyed (ms since the Unix epoch); nil if pruned.
        destroyed_ms: Option<u64>,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A check-and-set write found another current version.
    #[error("{message}")]
    CasConflict {
        /// The path.
        path: String,
        /// The version the caller expected (0: absent).
        expected: u64,
        /// The actual current version (0: absent).
        current: u64,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// Another versioned-secrets failure (invalid metadata, contention).
    #[error("{message}")]
    SecretStore {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The policy denies the operation.
    #[error("{message}")]
    PolicyDenied {
        /// The principal.
        principal: String,
        /// The capability asked for ("read", "create", ...).
        capability: String,
        /// The path.
        path: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A policy could not be loaded or parsed.
    #[error("{message}")]
    Policy {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// An audit chain does not verify at record `seq`.
    #[error("{message}")]
    AuditChainBroken {
        /// The first record that does not verify (or is missing).
        seq: u64,
        /// What is wrong.
        reason: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The audit trail could not be written or read.
    #[error("{message}")]
    Audit {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// No lease with this id (never issued, or revoked).
    #[error("{message}")]
    LeaseNotFound {
        /// The lease id.
        id: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The text is not a lease id.
    #[error("{message}")]
    LeaseInvalidId {
        /// The text as given.
        text: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The lease was issued as not renewable.
    #[error("{message}")]
    LeaseNotRenewable {
        /// The lease id.
        id: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The lease has expired.
    #[error("{message}")]
    LeaseExpired {
        /// The lease id.
        id: String,
        /// When it expired (ms since the Unix epoch).
        expired_ms: u64,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The lease is being revoked or is irrevocable.
    #[error("{message}")]
    LeaseNotActive {
        /// The lease id.
        id: String,
        /// Its state.
        state: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// Issuing would exceed a lease quota.
    #[error("{message}")]
    LeaseQuotaExceeded {
        /// The quota's limit.
        limit: u64,
        /// Live leases counted against it.
        count: u64,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The engine failed to revoke the lease; the manager retries.
    #[error("{message}")]
    LeaseRevocationDeferred {
        /// The lease id.
        id: String,
        /// Failed attempts so far.
        attempts: u32,
        /// When the manager tries again (ms since the Unix epoch).
        next_try_ms: u64,
        /// The revoker's failure.
        reason: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// Revocation failed too often; revoke again or force_revoke.
    #[error("{message}")]
    LeaseIrrevocable {
        /// The lease id.
        id: String,
        /// Failed attempts.
        attempts: u32,
        /// The revoker's last failure.
        reason: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A revoker failed on its own.
    #[error("{message}")]
    LeaseRevokerFailed {
        /// The engine.
        engine: String,
        /// What went wrong.
        reason: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// Another lease failure (no revoker, invalid TTL or engine name).
    #[error("{message}")]
    Lease {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A rotation failed and was rolled back; the current version works.
    #[error("{message}")]
    RotationRolledBack {
        /// The credential.
        credential: String,
        /// The version rolled back.
        version: u64,
        /// The step that failed.
        step: String,
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// Another credential rotation failure (busy, lost lock, bad name, ...).
    #[error("{message}")]
    Rotation {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// Shamir split or combine failed.
    #[error("{message}")]
    Shamir {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
    /// A failure this build of the FFI does not know yet.
    #[error("{message}")]
    Other {
        /// The stable code.
        code: String,
        /// The message.
        message: String,
    },
}

impl From<Error> for StrongroomError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let code = e.kind().to_owned();
        match e {
            Error::DecryptionFailed => Self::DecryptionFailed { code, message },
            Error::MalformedSealedValue(_) => Self::MalformedSealedValue { code, message },
            Error::UnknownKeyVersion { version, latest } => Self::UnknownKeyVersion {
                version,
                latest,
                code,
                message,
            },
            Error::KeyVersionRetired {
                version,
                min_decryption_version,
                ..
            } => Self::KeyVersionRetired {
                version,
                min_decryption_version,
                code,
                message,
            },
            Error::InvalidKeyTransition { version, .. } => Self::InvalidKeyTransition {
                version,
                code,
                message,
            },
            Error::KeyInUse {
                version, records, ..
            } => Self::KeyInUse {
                version,
                records,
                code,
                message,
            },
            Error::InvalidPath { path, .. } => Self::InvalidPath {
                path,
                code,
                message,
            },
            Error::Sealed => Self::Sealed { code, message },
            Error::AlreadyInitialized => Self::AlreadyInitialized { code, message },
            Error::NotInitialized => Self::NotInitialized { code, message },
            Error::UnsealFailed => Self::UnsealFailed { code, message },
            Error::KeyFile { path, .. } => Self::KeyFile {
                path,
                code,
                message,
            },
            Error::Protector {
                protector, kind, ..
            } => Self::Protector {
                protector: protector.into(),
                kind: kind.to_string(),
                code,
                message,
            },
            Error::Storage { backend, kind, .. } => Self::StorageFailed {
                backend: backend.into(),
                kind: kind.to_string(),
                code,
                message,
            },
            Error::StorageConflict { key } => Self::StorageConflict { key, code, message },
            Error::CorruptRecord { key, .. } => Self::CorruptRecord { key, code, message },
            Error::Random => Self::Random { code, message },
            Error::InvalidArgument(_) => Self::InvalidArgument { code, message },
            Error::Secret(s) => secret(s, code, message),
            Error::Policy(PolicyError::Denied {
                principal,
                capability,
                path,
            }) => Self::PolicyDenied {
                principal,
                capability: capability.to_string(),
                path,
                code,
                message,
            },
            Error::Policy(_) => Self::Policy { code, message },
            Error::Audit(AuditError::ChainBroken { seq, reason }) => Self::AuditChainBroken {
                seq,
                reason: reason.to_string(),
                code,
                message,
            },
            Error::Audit(_) => Self::Audit { code, message },
            Error::Lease(l) => lease(l, code, message),
            Error::Rotation(RotationError::RolledBack {
                credential,
                version,
                step,
                ..
            }) => Self::RotationRolledBack {
                credential,
                version,
                step: step.to_string(),
                code,
                message,
            },
            Error::Rotation(_) => Self::Rotation { code, message },
            Error::Shamir(_) => Self::Shamir { code, message },
            _ => Self::Other { code, message },
        }
    }
}

fn secret(e: SecretError, code: String, message: String) -> StrongroomError {
    use StrongroomError as E;
    match e {
        SecretError::NotFound { path, version } => E::NotFound {
            path,
            version,
            code,
            message,
        },
        SecretError::VersionDeleted {
            path,
            version,
            deleted_at,
        } => E::VersionDeleted {
            path,
            version,
            deleted_ms: deleted_at.as_millis(),
            code,
            message,
        },
        SecretError::VersionDestroyed {
            path,
            version,
            destroyed_at,
        } => E::VersionDestroyed {
            path,
            version,
            destroyed_ms: Some(destroyed_at.as_millis()),
            code,
            message,
        },
        SecretError::VersionPruned { path, version, .. } => E::VersionDestroyed {
            path,
            version,
            destroyed_ms: None,
            code,
            message,
        },
        SecretError::CasMismatch {
            path,
            expected,
            current,
        } => E::CasConflict {
            path,
            expected,
            current,
            code,
            message,
        },
        _ => E::SecretStore { code, message },
    }
}

fn lease(e: LeaseError, code: String, message: String) -> StrongroomError {
    use StrongroomError as E;
    match e {
        LeaseError::NotFound { id } => E::LeaseNotFound {
            id: id.to_string(),
            code,
            message,
        },
        LeaseError::InvalidId { text } => E::LeaseInvalidId {
            text,
            code,
            message,
        },
        LeaseError::NotRenewable { id } => E::LeaseNotRenewable {
            id: id.to_string(),
            code,
            message,
        },
        LeaseError::Expired { id, expired_at } => E::LeaseExpired {
            id: id.to_string(),
            expired_ms: expired_at.as_millis(),
            code,
            message,
        },
        LeaseError::NotActive { id, state } => E::LeaseNotActive {
            id: id.to_string(),
            state: state.to_string(),
            code,
            message,
        },
        LeaseError::QuotaExceeded { limit, count, .. } => E::LeaseQuotaExceeded {
            limit,
            count,
            code,
            message,
        },
        LeaseError::RevocationDeferred {
            id,
            attempts,
            next_try,
            reason,
        } => E::LeaseRevocationDeferred {
            id: id.to_string(),
            attempts,
            next_try_ms: next_try.as_millis(),
            reason,
            code,
            message,
        },
        LeaseError::Irrevocable {
            id,
            attempts,
            reason,
        } => E::LeaseIrrevocable {
            id: id.to_string(),
            attempts,
            reason,
            code,
            message,
        },
        LeaseError::RevokerFailed { engine, reason } => E::LeaseRevokerFailed {
            engine,
            reason,
            code,
            message,
        },
        _ => E::Lease { code, message },
    }
}

/// Shorthand for results of the FFI.
pub(crate) type Result<T, E = StrongroomError> = std::result::Result<T, E>;

/// An `InvalidArgument` error.
pub(crate) fn invalid(message: impl Into<String>) -> StrongroomError {
    Error::InvalidArgument(message.into()).into()
}
