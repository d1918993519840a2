//! The exception hierarchy and the one function mapping core errors onto it.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};
use strongroom::Error;
use strongroom::audit::AuditError as CoreAuditError;
use strongroom::lease::LeaseError as CoreLeaseError;
use strongroom::lease::QuotaScope;
use strongroom::policy::PolicyError as CorePolicyError;
use strongroom::rotation::RotationError as CoreRotationError;
use strongroom::secrets::SecretError;

create_exception!(
    strongroom,
    StrongroomError,
    PyException,
    "Base class of every error Strongroom raises."
);
create_exception!(
    strongroom,
    DecryptionFailed,
    StrongroomError,
    "A sealed value did not open (wrong key, tampered, moved to another path or version)."
);
create_exception!(
    strongroom,
    MalformedSealedValue,
    StrongroomError,
    "The bytes are not a sealed value this build can read."
);
create_exception!(
    strongroom,
    UnknownKeyVersion,
    StrongroomError,
    "The sealed value names a key version the keyring does not have."
);
create_exception!(
    strongroom,
    KeyVersionRetired,
    StrongroomError,
    "The key version exists but is retired or destroyed."
);
create_exception!(
    strongroom,
    InvalidKeyTransition,
    StrongroomError,
    "A key state change the key lifecycle forbids."
);
create_exception!(
    strongroom,
    KeyInUse,
    StrongroomError,
    "A key version still protects stored records; run rewrap first."
);
create_exception!(
    strongroom,
    InvalidPath,
    StrongroomError,
    "A path failed validation."
);
create_exception!(
    strongroom,
    Sealed,
    StrongroomError,
    "The store is sealed: unseal it first."
);
create_exception!(
    strongroom,
    Closed,
    StrongroomError,
    "The store was closed (close(), or leaving its with / async with block), or the Python interpreter is exiting."
);
create_exception!(
    strongroom,
    AlreadyInitialized,
    StrongroomError,
    "init on storage that already holds a store."
);
create_exception!(
    strongroom,
    NotInitialized,
    StrongroomError,
    "unseal on storage that holds no store."
);
create_exception!(
    strongroom,
    UnsealFailed,
    StrongroomError,
    "The root key does not open this store's keyring."
);
create_exception!(
    strongroom,
    KeyFileError,
    StrongroomError,
    "A root key file is missing, unreadable, malformed or too open."
);
create_exception!(
    strongroom,
    ProtectorError,
    StrongroomError,
    "A key protector (software key, HSM) failed."
);
create_exception!(
    strongroom,
    StorageError,
    StrongroomError,
    "The storage backend failed."
);
create_exception!(
    strongroom,
    StorageConflict,
    StrongroomError,
    "A record changed concurrently; re-read and retry."
);
create_exception!(
    strongroom,
    CorruptRecord,
    StrongroomError,
    "A stored record could not be decoded."
);
create_exception!(
    strongroom,
    RandomFailed,
    StrongroomError,
    "The operating system random number generator failed."
);
create_exception!(
    strongroom,
    InvalidArgument,
    StrongroomError,
    "An argument cannot be used."
);
create_exception!(
    strongroom,
    SecretStoreError,
    StrongroomError,
    "A versioned-secrets operation failed."
);
create_exception!(
    strongroom,
    CasConflict,
    SecretStoreError,
    "A check-and-set write found another version than expected."
);
create_exception!(
    strongroom,
    NotFound,
    SecretStoreError,
    "No secret at this path, or the secret has no such version."
);
create_exception!(
    strongroom,
    VersionDeleted,
    SecretStoreError,
    "The version was soft-deleted; undelete_secret brings it back."
);
create_exception!(
    strongroom,
    VersionDestroyed,
    SecretStoreError,
    "The version was destroyed (or pruned): its value is gone for good."
);
create_exception!(
    strongroom,
    PolicyError,
    StrongroomError,
    "A policy could not be loaded or evaluated."
);
create_exception!(
    strongroom,
    PolicyDenied,
    PolicyError,
    "The policy does not allow this operation."
);
create_exception!(
    strongroom,
    AuditError,
    StrongroomError,
    "The audit trail could not be written or failed verification."
);
create_exception!(
    strongroom,
    AuditChainBroken,
    AuditError,
    "An audit chain does not verify at record `seq` (edited, deleted, reordered or truncated)."
);
create_exception!(
    strongroom,
    LeaseError,
    StrongroomError,
    "A lease operation failed."
);
create_exception!(
    strongroom,
    LeaseExpired,
    LeaseError,
    "The lease has expired or was revoked."
);
create_exception!(
    strongroom,
    RotationError,
    StrongroomError,
    "A credential rotation failed."
);
create_exception!(
    strongroom,
    LeaseNotFound,
    LeaseError,
    "No lease with this id: never issued, or already revoked."
);
create_exception!(
    strongroom,
    LeaseInvalidId,
    LeaseError,
    "The text is not a lease id ('lease_' and 32 lower-case hex digits)."
);
create_exception!(
    strongroom,
    LeaseNotRenewable,
    LeaseError,
    "The lease was issued as not renewable."
);
create_exception!(
    strongroom,
    LeaseNotActive,
    LeaseError,
    "The lease is being revoked or is irrevocable, so it cannot be renewed."
);
create_exception!(
    strongroom,
    LeaseQuotaExceeded,
    LeaseError,
    "Issuing would exceed a lease quota."
);
create_exception!(
    strongroom,
    LeaseNoRevoker,
    LeaseError,
    "No revoker is registered for the lease's engine."
);
create_exception!(
    strongroom,
    LeaseInvalidTtl,
    LeaseError,
    "A TTL or renewal increment cannot be used."
);
create_exception!(
    strongroom,
    LeaseInvalidEngine,
    LeaseError,
    "An engine name cannot be used."
);
create_exception!(
    strongroom,
    LeaseRevocationDeferred,
    LeaseError,
    "The revoker failed; the manager retries at `next_try`."
);
create_exception!(
    strongroom,
    LeaseIrrevocable,
    LeaseError,
    "Revocation failed too often; revoke again after fixing the engine, or force_revoke."
);
create_exception!(
    strongroom,
    LeaseRevokerFailed,
    LeaseError,
    "A revoker failed for a reason of its own (a Python revoker raised)."
);
create_exception!(
    strongroom,
    RotationInvalidName,
    RotationError,
    "The credential name cannot be used."
);
create_exception!(
    strongroom,
    RotationBusy,
    RotationError,
    "Another process or task is rotating this credential."
);
create_exception!(
    strongroom,
    RotationLostLock,
    RotationError,
    "Another process took over the rotation lock."
);
create_exception!(
    strongroom,
    RotationStepFailed,
    RotationError,
    "A rotation step kept failing; it is recorded and resumed later."
);
create_exception!(
    strongroom,
    RotationRolledBack,
    RotationError,
    "The new version did not work and was rolled back; the current one is unchanged."
);
create_exception!(
    strongroom,
    RotationAlreadyInitialized,
    RotationError,
    "The credential already has a current version."
);
create_exception!(
    strongroom,
    RotationCorruptState,
    RotationError,
    "The stored rotation state cannot be read."
);
create_exception!(
    strongroom,
    RotationAuditRefused,
    RotationError,
    "The audit hook refused to record a rotation step."
);
create_exception!(
    strongroom,
    ShamirError,
    StrongroomError,
    "Shamir split or combine failed."
);

/// Adds every exception class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    macro_rules! add {
        ($($t:ident),* $(,)?) => { $( m.add(stringify!($t), py.get_type::<$t>())?; )* };
    }
    add!(
        StrongroomError,
        DecryptionFailed,
        MalformedSealedValue,
        UnknownKeyVersion,
        KeyVersionRetired,
        InvalidKeyTransition,
        KeyInUse,
        InvalidPath,
        Sealed,
        Closed,
        AlreadyInitialized,
        NotInitialized,
        UnsealFailed,
        KeyFileError,
        ProtectorError,
        StorageError,
        StorageConflict,
        CorruptRecord,
        RandomFailed,
        InvalidArgument,
        SecretStoreError,
        CasConflict,
        NotFound,
        VersionDeleted,
        VersionDestroyed,
        PolicyError,
        PolicyDenied,
        AuditError,
        AuditChainBroken,
        LeaseError,
        LeaseExpired,
        RotationError,
        ShamirError,
        LeaseNotFound,
        LeaseInvalidId,
        LeaseNotRenewable,
        LeaseNotActive,
        LeaseQuotaExceeded,
        LeaseNoRevoker,
        LeaseInvalidTtl,
        LeaseInvalidEngine,
        LeaseRevocationDeferred,
        LeaseIrrevocable,
        LeaseRevokerFailed,
        RotationInvalidName,
        RotationBusy,
        RotationLostLock,
        RotationStepFailed,
        RotationRolledBack,
        RotationAlreadyInitialized,
        RotationCorruptState,
        RotationAuditRefused,
    );
    // Raised by the binding itself (no core variant): the code is a class
    // attribute.
    py.get_type::<Closed>().setattr("code", "closed")?;
    Ok(())
}

/// Attributes set on the raised exception (all public facts, never secrets).
type Attrs = Vec<(&'static str, Attr)>;

enum Attr {
    Int(u64),
    Str(String),
}

/// Maps a core error onto its exception class, with the error's fields as
/// attributes (`err.version`, `err.key`, ...), its stable short code as
/// `err.code` and its message as text.
pub(crate) fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    let code = e.kind();
    let (err, mut attrs): (PyErr, Attrs) = match e {
        Error::DecryptionFailed => (DecryptionFailed::new_err(msg), vec![]),
        Error::MalformedSealedValue(_) => (MalformedSealedValue::new_err(msg), vec![]),
        Error::UnknownKeyVersion { version, latest } => (
            UnknownKeyVersion::new_err(msg),
            vec![
                ("version", Attr::Int(version.into())),
                ("latest", Attr::Int(latest.into())),
            ],
        ),
        Error::KeyVersionRetired {
            version,
            state,
            min_decryption_version,
        } => (
            KeyVersionRetired::new_err(msg),
            vec![
                ("version", Attr::Int(version.into())),
                ("state", Attr::Str(state.to_string())),
                (
                    "min_decryption_version",
                    Attr::Int(min_decryption_version.into()),
                ),
            ],
        ),
        Error::InvalidKeyTransition { version, from, to } => (
            InvalidKeyTransition::new_err(msg),
            vec![
                ("version", Attr::Int(version.into())),
                ("from_state", Attr::Str(from.to_string())),
                ("to_state", Attr::Str(to.to_string())),
            ],
        ),
        Error::KeyInUse {
            version,
            records,
            example,
        } => (
            KeyInUse::new_err(msg),
            vec![
                ("version", Attr::Int(version.into())),
                ("records", Attr::Int(records)),
                ("example", Attr::Str(example)),
            ],
        ),
        Error::InvalidPath { path, reason } => (
            InvalidPath::new_err(msg),
            vec![
                ("path", Attr::Str(path)),
                ("reason", Attr::Str(reason.to_string())),
            ],
        ),
        Error::Sealed => (Sealed::new_err(msg), vec![]),
        Error::AlreadyInitialized => (AlreadyInitialized::new_err(msg), vec![]),
        Error::NotInitialized => (NotInitialized::new_err(msg), vec![]),
        Error::UnsealFailed => (UnsealFailed::new_err(msg), vec![]),
        Error::KeyFile { path, reason } => (
            KeyFileError::new_err(msg),
            vec![
                ("path", Attr::Str(path)),
                ("reason", Attr::Str(reason.to_string())),
            ],
        ),
        Error::Protector {
            protector, kind, ..
        } => (
            ProtectorError::new_err(msg),
            vec![
                ("protector", Attr::Str(protector.into())),
                ("kind", Attr::Str(kind.to_string())),
            ],
        ),
        Error::Storage { backend, kind, .. } => (
            StorageError::new_err(msg),
            vec![
                ("backend", Attr::Str(backend.into())),
                ("kind", Attr::Str(kind.to_string())),
            ],
        ),
        Error::StorageConflict { key } => {
            (StorageConflict::new_err(msg), vec![("key", Attr::Str(key))])
        }
        Error::CorruptRecord { key, .. } => {
            (CorruptRecord::new_err(msg), vec![("key", Attr::Str(key))])
        }
        Error::Random => (RandomFailed::new_err(msg), vec![]),
        Error::InvalidArgument(_) => (InvalidArgument::new_err(msg), vec![]),
        // Subsystem errors: the variants a caller acts on get a subclass;
        // the rest raise the subsystem's base class.
        Error::Secret(SecretError::CasMismatch {
            path,
            expected,
            current,
        }) => (
            CasConflict::new_err(msg),
            vec![
                ("path", Attr::Str(path)),
                ("expected", Attr::Int(expected)),
                ("current", Attr::Int(current)),
            ],
        ),
        Error::Secret(SecretError::NotFound { path, version }) => {
            let mut a = vec![("path", Attr::Str(path))];
            if let Some(v) = version {
                a.push(("version", Attr::Int(v)));
            }
            (NotFound::new_err(msg), a)
        }
        Error::Secret(SecretError::VersionDeleted {
            path,
            version,
            deleted_at,
        }) => (
            VersionDeleted::new_err(msg),
            vec![
                ("path", Attr::Str(path)),
                ("version", Attr::Int(version)),
                ("deleted_ms", Attr::Int(deleted_at.as_millis())),
            ],
        ),
        Error::Secret(SecretError::VersionDestroyed {
            path,
            version,
            destroyed_at,
        }) => (
            VersionDestroyed::new_err(msg),
            vec![
                ("path", Attr::Str(path)),
                ("version", Attr::Int(version)),
                ("destroyed_ms", Attr::Int(destroyed_at.as_millis())),
            ],
        ),
        Error::Secret(SecretError::VersionPruned {
            path,
            version,
            oldest,
        }) => (
            VersionDestroyed::new_err(msg),
            vec![
                ("path", Attr::Str(path)),
                ("version", Attr::Int(version)),
                ("oldest", Attr::Int(oldest)),
            ],
        ),
        Error::Secret(_) => (SecretStoreError::new_err(msg), vec![]),
        Error::Policy(CorePolicyError::Denied {
            principal,
            capability,
            path,
        }) => (
            PolicyDenied::new_err(msg),
            vec![
                ("path", Attr::Str(path)),
                ("principal", Attr::Str(principal)),
                ("capability", Attr::Str(capability.to_string())),
            ],
        ),
        Error::Policy(_) => (PolicyError::new_err(msg), vec![]),
        Error::Audit(CoreAuditError::ChainBroken { seq, reason }) => (
            AuditChainBroken::new_err(msg),
            vec![
                ("seq", Attr::Int(seq)),
                ("reason", Attr::Str(reason.to_string())),
            ],
        ),
        Error::Audit(_) => (AuditError::new_err(msg), vec![]),
        Error::Lease(l) => lease_error(l, msg),
        Error::Rotation(r) => rotation_error(r, msg),
        Error::Shamir(_) => (ShamirError::new_err(msg), vec![]),
        _ => (StrongroomError::new_err(msg), vec![]),
    };
    // The core's stable short code (`Error::kind`), on every exception.
    attrs.push(("code", Attr::Str(code.to_owned())));
    {
        Python::attach(|py| {
            let value = err.value(py);
            for (name, attr) in attrs {
                // Setting an attribute on a fresh exception instance cannot
                // fail in practice; if it did, the exception is still raised.
                let _ = match attr {
                    Attr::Int(i) => value.setattr(name, i),
                    Attr::Str(s) => value.setattr(name, s),
                };
            }
        });
    }
    err
}

fn id_attr(id: strongroom::lease::LeaseId) -> (&'static str, Attr) {
    ("id", Attr::Str(id.to_string()))
}

/// One subclass of `LeaseError` per core variant.
fn lease_error(e: CoreLeaseError, msg: String) -> (PyErr, Attrs) {
    use CoreLeaseError as L;
    match e {
        L::NotFound { id } => (LeaseNotFound::new_err(msg), vec![id_attr(id)]),
        L::InvalidId { text } => (
            LeaseInvalidId::new_err(msg),
            vec![("text", Attr::Str(text))],
        ),
        L::NotRenewable { id } => (LeaseNotRenewable::new_err(msg), vec![id_attr(id)]),
        L::Expired { id, expired_at } => (
            LeaseExpired::new_err(msg),
            vec![
                id_attr(id),
                ("expired_at", Attr::Int(expired_at.as_millis())),
            ],
        ),
        L::NotActive { id, state } => (
            LeaseNotActive::new_err(msg),
            vec![id_attr(id), ("state", Attr::Str(state.to_string()))],
        ),
        L::QuotaExceeded {
            scope,
            limit,
            count,
        } => {
            let scope = match scope {
                QuotaScope::Prefix(p) => p,
                _ => String::new(),
            };
            (
                LeaseQuotaExceeded::new_err(msg),
                vec![
                    ("prefix", Attr::Str(scope)),
                    ("limit", Attr::Int(limit)),
                    ("count", Attr::Int(count)),
                ],
            )
        }
        L::NoRevoker { engine } => (
            LeaseNoRevoker::new_err(msg),
            vec![("engine", Attr::Str(engine))],
        ),
        L::InvalidTtl { reason } => (
            LeaseInvalidTtl::new_err(msg),
            vec![("reason", Attr::Str(reason.into()))],
        ),
        L::InvalidEngine { engine } => (
            LeaseInvalidEngine::new_err(msg),
            vec![("engine", Attr::Str(engine))],
        ),
        L::RevocationDeferred {
            id,
            attempts,
            next_try,
            reason,
        } => (
            LeaseRevocationDeferred::new_err(msg),
            vec![
                id_attr(id),
                ("attempts", Attr::Int(attempts.into())),
                ("next_try", Attr::Int(next_try.as_millis())),
                ("reason", Attr::Str(reason)),
            ],
        ),
        L::Irrevocable {
            id,
            attempts,
            reason,
        } => (
            LeaseIrrevocable::new_err(msg),
            vec![
                id_attr(id),
                ("attempts", Attr::Int(attempts.into())),
                ("reason", Attr::Str(reason)),
            ],
        ),
        L::RevokerFailed { engine, reason } => (
            LeaseRevokerFailed::new_err(msg),
            vec![("engine", Attr::Str(engine)), ("reason", Attr::Str(reason))],
        ),
        _ => (LeaseError::new_err(msg), vec![]),
    }
}

/// One subclass of `RotationError` per core variant.
fn rotation_error(e: CoreRotationError, msg: String) -> (PyErr, Attrs) {
    use CoreRotationError as R;
    let cred = |c: String| ("credential", Attr::Str(c));
    match e {
        R::InvalidName { name, reason } => (
            RotationInvalidName::new_err(msg),
            vec![
                ("name", Attr::Str(name)),
                ("reason", Attr::Str(reason.into())),
            ],
        ),
        R::Busy {
            credential,
            owner,
            until,
        } => (
            RotationBusy::new_err(msg),
            vec![
                cred(credential),
                ("owner", Attr::Str(owner)),
                ("until", Attr::Int(until.as_millis())),
            ],
        ),
        R::LostLock { credential } => (RotationLostLock::new_err(msg), vec![cred(credential)]),
        R::StepFailed {
            credential,
            version,
            step,
            attempts,
            ..
        } => (
            RotationStepFailed::new_err(msg),
            vec![
                cred(credential),
                ("version", Attr::Int(version)),
                ("step", Attr::Str(step.to_string())),
                ("attempts", Attr::Int(attempts.into())),
            ],
        ),
        R::RolledBack {
            credential,
            version,
            step,
            ..
        } => (
            RotationRolledBack::new_err(msg),
            vec![
                cred(credential),
                ("version", Attr::Int(version)),
                ("step", Attr::Str(step.to_string())),
            ],
        ),
        R::AlreadyInitialized { credential } => (
            RotationAlreadyInitialized::new_err(msg),
            vec![cred(credential)],
        ),
        R::CorruptState { credential, .. } => {
            (RotationCorruptState::new_err(msg), vec![cred(credential)])
        }
        R::AuditRefused {
            credential, step, ..
        } => (
            RotationAuditRefused::new_err(msg),
            vec![cred(credential), ("step", Attr::Str(step.to_string()))],
        ),
        _ => (RotationError::new_err(msg), vec![]),
    }
}
