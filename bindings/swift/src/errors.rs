//! The one error enum of the FFI, converted mechanically from the core's
//! [`Error::details`] and its table, [`ERROR_CODES`].
//!
//! The cases are exactly the table's distinct `class` values (plus `Other`,
//! which only a core newer than this binding could produce); a test in
//! `tests/errors.rs` keeps the two equal. Every case carries the same three
//! things: `code` (the table's stable code, e.g. `"secret.cas_mismatch"`),
//! `message` (the core's message, which never quotes a secret) and
//! `fields`, the error's public facts by the table's field names. The table
//! itself is exported as [`error_codes`]; `docs/ERRORS.md` is generated
//! from it.

use std::collections::HashMap;

use strongroom::{ERROR_CODES, Error, ErrorDetails};

/// The value of one field of an error (the core's `FieldValue`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FieldValue {
    /// Text.
    Str {
        /// The text.
        value: String,
    },
    /// An unsigned integer.
    U64 {
        /// The number.
        value: u64,
    },
    /// A point in time.
    Time {
        /// Milliseconds since the Unix epoch.
        ms: u64,
    },
    /// An optional field that is absent (nil, None).
    Null,
    /// A list of text.
    StrList {
        /// The items.
        values: Vec<String>,
    },
    /// A list of booleans.
    BoolList {
        /// The items.
        values: Vec<bool>,
    },
}

impl From<strongroom::FieldValue> for FieldValue {
    fn from(v: strongroom::FieldValue) -> Self {
        use strongroom::FieldValue as F;
        match v {
            F::Str(value) => Self::Str { value },
            F::U64(value) => Self::U64 { value },
            F::Time(t) => Self::Time { ms: t.as_millis() },
            F::StrList(values) => Self::StrList { values },
            F::BoolList(values) => Self::BoolList { values },
            // `Null`, and any kind of value newer than this binding.
            _ => Self::Null,
        }
    }
}

/// Declares `StrongroomError` with one case per class, each carrying
/// `code`, `message` and `fields`, and the class name of each case.
macro_rules! error_cases {
    ($($(#[$doc:meta])* $case:ident),* $(,)?) => {
        /// Every failure (Swift: an enum; uniffi's Python: subclasses of
        /// `StrongroomError`). One case per host class of the error table
        /// (`errorCodes()`, `docs/ERRORS.md`); every case carries `code`
        /// (stable), `message` and `fields` (named as in the table).
        #[derive(Debug, thiserror::Error, uniffi::Error)]
        pub enum StrongroomError {
            $(
                $(#[$doc])*
                #[error("{message}")]
                $case {
                    /// The stable code (a row of `errorCodes()`).
                    code: String,
                    /// The message (never quotes a secret).
                    message: String,
                    /// The code's fields, by the table's names.
                    fields: HashMap<String, FieldValue>,
                },
            )*
        }

        impl StrongroomError {
            /// The name of every case, in declaration order.
            pub const CASES: &'static [&'static str] = &[$(stringify!($case)),*];

            /// The case for the table class `class` (`Other` if this
            /// binding has no case of that name).
            fn from_class(
                class: &str,
                code: String,
                message: String,
                fields: HashMap<String, FieldValue>,
            ) -> Self {
                match class {
                    $(stringify!($case) => Self::$case { code, message, fields },)*
                    _ => Self::Other { code, message, fields },
                }
            }

            /// The case's name: the table class of its code.
            pub fn class(&self) -> &'static str {
                match self {
                    $(Self::$case { .. } => stringify!($case),)*
                }
            }

            /// The stable code.
            pub fn code(&self) -> &str {
                match self {
                    $(Self::$case { code, .. })|* => code,
                }
            }

            /// The fields, by the table's names.
            pub fn fields(&self) -> &HashMap<String, FieldValue> {
                match self {
                    $(Self::$case { fields, .. })|* => fields,
                }
            }
        }
    };
}

error_cases! {
    /// A sealed value did not open.
    DecryptionFailed,
    /// The bytes are not a sealed value this build can read.
    MalformedSealedValue,
    /// The sealed value names a key version the keyring does not have.
    UnknownKeyVersion,
    /// The key version is retired or destroyed.
    KeyVersionRetired,
    /// A key state change the lifecycle forbids.
    InvalidKeyTransition,
    /// A key version still protects stored records.
    KeyInUse,
    /// A path failed validation (`path.*` codes).
    InvalidPath,
    /// The store is sealed.
    Sealed,
    /// init on storage that already holds a store.
    AlreadyInitialized,
    /// unseal on storage that holds no store.
    NotInitialized,
    /// The root key does not open the keyring.
    UnsealFailed,
    /// A root key file problem (`key_file.*` codes).
    KeyFileError,
    /// A key protector failed (`protector.*` codes).
    ProtectorError,
    /// The storage backend failed (`storage.*` codes).
    StorageError,
    /// A record changed concurrently.
    StorageConflict,
    /// A stored record could not be decoded.
    CorruptRecord,
    /// The OS random number generator failed.
    RandomFailed,
    /// An argument cannot be used.
    InvalidArgument,
    /// No secret at this path, or the secret has no such version.
    SecretNotFound,
    /// The version was soft-deleted; undelete brings it back.
    SecretVersionDeleted,
    /// The version was destroyed.
    SecretVersionDestroyed,
    /// The version was pruned (older than the oldest version kept).
    SecretVersionPruned,
    /// A check-and-set write found another current version.
    SecretCasMismatch,
    /// The secret's metadata is invalid.
    SecretInvalidMetadata,
    /// A write gave up after too many concurrent changes.
    SecretContended,
    /// The policy denies the operation.
    PolicyDenied,
    /// A policy did not parse.
    PolicyParse,
    /// A policy path pattern is invalid.
    PolicyInvalidPattern,
    /// A policy names an unknown capability.
    PolicyUnknownCapability,
    /// A principal names an unknown policy.
    PolicyUnknownPolicy,
    /// A policy file could not be read.
    PolicyIo,
    /// No audit sink accepted a record.
    AuditNoSinkAccepted,
    /// An audit sink failed.
    AuditSink,
    /// An audit chain does not verify.
    AuditChainBroken,
    /// An audit record is malformed.
    AuditMalformedRecord,
    /// The audit key is too short.
    AuditWeakKey,
    /// No audit sinks are configured.
    AuditNoSinks,
    /// The audit sequence is exhausted.
    AuditSequenceExhausted,
    /// An audit file could not be written or read.
    AuditIo,
    /// An audit record could not be encoded.
    AuditEncode,
    /// No lease with this id (never issued, or revoked).
    LeaseNotFound,
    /// The text is not a lease id.
    LeaseInvalidId,
    /// The lease was issued as not renewable.
    LeaseNotRenewable,
    /// The lease has expired.
    LeaseExpired,
    /// The lease is being revoked or is irrevocable.
    LeaseNotActive,
    /// Issuing would exceed a lease quota.
    LeaseQuotaExceeded,
    /// No revoker is registered for the lease's engine.
    LeaseNoRevoker,
    /// The TTL cannot be used.
    LeaseInvalidTtl,
    /// The engine name cannot be used.
    LeaseInvalidEngine,
    /// The engine failed to revoke the lease; the manager retries.
    LeaseRevocationDeferred,
    /// Revocation failed too often; revoke again or force_revoke.
    LeaseIrrevocable,
    /// A revoker failed on its own.
    LeaseRevokerFailed,
    /// The credential name cannot be used.
    RotationInvalidName,
    /// Another rotation of the credential holds its lock.
    RotationBusy,
    /// The rotation lost its lock.
    RotationLostLock,
    /// A rotation step failed (and will be retried).
    RotationStepFailed,
    /// A rotation failed and was rolled back; the current version works.
    RotationRolledBack,
    /// The credential is already set up for rotation.
    RotationAlreadyInitialized,
    /// The credential's rotation state is corrupt.
    RotationCorruptState,
    /// The audit trail refused a rotation step.
    RotationAuditRefused,
    /// Shamir split parameters cannot be used.
    ShamirInvalidParameters,
    /// No Shamir shares were given.
    ShamirNoShares,
    /// Too few Shamir shares.
    ShamirTooFewShares,
    /// Two Shamir shares have the same x.
    ShamirDuplicateShare,
    /// The Shamir shares come from different splits.
    ShamirDifferentSplits,
    /// A Shamir share is corrupt.
    ShamirCorruptShare,
    /// No signing key has this name.
    SigningUnknownKey,
    /// A signing key of this name exists already.
    SigningKeyExists,
    /// The signing key has no such version.
    SigningUnknownVersion,
    /// The signature's key version is below the key's minimum verify version.
    SigningVersionRetired,
    /// The operation needs another type of signing key.
    SigningWrongKeyType,
    /// The signing key's rate limit is reached (retry after `retry_after_ms`).
    SigningRateLimited,
    /// A signature's text or bytes cannot be read.
    SigningBadSignatureEncoding,
    /// Another process changed the signing key at the same time.
    SigningConflict,
    /// A signing key's private record is corrupt.
    SigningCorruptKey,
    /// A signing key's metadata record is corrupt.
    SigningCorruptRecord,
    /// The minimum verify version cannot be set to that.
    SigningInvalidMinVerifyVersion,
    /// The rate limit cannot be used.
    SigningInvalidRateLimit,
    /// The EIP-155 chain id cannot be used.
    SigningInvalidChainId,
    /// A write names a path that follows none of the applied naming rules.
    NamingViolation,
    /// A gate holds the operation on the path and no approved request was given.
    ApprovalRequired,
    /// No approval request has this id.
    ApprovalNotFound,
    /// The approval request expired before it was used.
    ApprovalExpired,
    /// An approver refused the request.
    ApprovalRefused,
    /// The request does not yet have the approvals its gates need.
    ApprovalNotApproved,
    /// The approved request has run already (it runs once).
    ApprovalUsed,
    /// No gate holding the request names this principal as an approver.
    ApprovalNotApprover,
    /// The requester cannot approve its own request.
    ApprovalSelfApproval,
    /// This principal has approved the request already.
    ApprovalAlreadyApproved,
    /// The request was made for another operation, path or requester.
    ApprovalMismatch,
    /// No gate holds this operation on this path.
    ApprovalNoGate,
    /// A gates file or gate list is not valid.
    ApprovalInvalidGates,
    /// A request's reason, time to live or path cannot be used.
    ApprovalInvalidRequest,
    /// The gates or the request changed concurrently; re-read and retry.
    ApprovalConflict,
    /// A CA mount or role name cannot be used.
    PkiInvalidName,
    /// The mount already holds a certificate authority.
    PkiCaExists,
    /// The mount holds no certificate authority yet.
    PkiUnknownCa,
    /// The mount has no role of that name.
    PkiUnknownRole,
    /// A role definition cannot be used.
    PkiInvalidRole,
    /// The role does not allow the requested DNS name or IP address.
    PkiNameNotAllowed,
    /// The requested TTL is over the role's maximum.
    PkiTtlOverMax,
    /// The certificate would outlive the CA that signs it.
    PkiOutlivesCa,
    /// The role does not allow the requested key type.
    PkiKeyTypeNotAllowed,
    /// The role does not allow the requested usage.
    PkiUsageNotAllowed,
    /// A certificate request that makes no sense whatever the role says.
    PkiInvalidRequest,
    /// No live certificate of that serial on the mount.
    PkiUnknownCertificate,
    /// A stored CA record failed authentication or does not decode.
    PkiBadRecord,
    /// Building, signing or parsing a certificate or CRL failed.
    PkiCertificate,
    /// rustls refused a key, chain or verifier configuration.
    PkiTls,
    /// A CA record kept changing under other writers; retry later.
    PkiContended,
    /// Binding only: a class this build of the FFI does not know (only a
    /// newer core could produce one; read `code`).
    Other,
}

/// The cases of [`StrongroomError`] that are not classes of the table.
pub const BINDING_ONLY_CASES: &[&str] = &["Other"];

impl From<Error> for StrongroomError {
    fn from(e: Error) -> Self {
        e.details().into()
    }
}

/// Any error's details (the core's, or the internal CA's `pki.*` ones) as
/// the case of its class.
impl From<ErrorDetails> for StrongroomError {
    fn from(d: ErrorDetails) -> Self {
        let fields = d
            .fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into()))
            .collect();
        Self::from_class(d.class, d.code.to_owned(), d.message, fields)
    }
}

/// A certificate-authority error, through its details like every core
/// error: `PkiError::Core` is the core error's case; the CA's own errors
/// are their `pki.*` cases (`PkiNameNotAllowed`, `PkiCaExists`, ...).
impl From<strongroom_pki::PkiError> for StrongroomError {
    fn from(e: strongroom_pki::PkiError) -> Self {
        e.details().into()
    }
}

/// One field of an error code: its name and type (`string`, `string?`,
/// `u64`, `u64?`, `timestamp`, `list<string>`, `list<bool>`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorFieldSpec {
    /// The field's name (a key of the error's `fields`).
    pub name: String,
    /// Its type, as `docs/ERRORS.md` names it.
    pub type_name: String,
}

/// One row of the error table.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorCodeInfo {
    /// The stable code.
    pub code: String,
    /// The `StrongroomError` case raised for it.
    pub class_name: String,
    /// The family class (`SecretError`, `LeaseError`, ...) or
    /// `StrongroomError`.
    pub parent: String,
    /// The coarser `kind` written into audit records.
    pub kind: String,
    /// The fields, in order.
    pub fields: Vec<ErrorFieldSpec>,
    /// What the error means.
    pub meaning: String,
}

/// The error table: every code an error can carry, with its case (class),
/// parent class and fields (as in `docs/ERRORS.md`).
#[uniffi::export]
pub fn error_codes() -> Vec<ErrorCodeInfo> {
    ERROR_CODES
        .iter()
        .map(|row| ErrorCodeInfo {
            code: row.code.to_owned(),
            class_name: row.class.to_owned(),
            parent: row.parent.to_owned(),
            kind: row.kind.to_owned(),
            fields: row
                .fields
                .iter()
                .map(|f| ErrorFieldSpec {
                    name: f.name.to_owned(),
                    type_name: f.ty.name().to_owned(),
                })
                .collect(),
            meaning: row.meaning.to_owned(),
        })
        .collect()
}

/// Shorthand for results of the FFI.
pub(crate) type Result<T, E = StrongroomError> = std::result::Result<T, E>;

/// An `InvalidArgument` error.
pub(crate) fn invalid(message: impl Into<String>) -> StrongroomError {
    Error::InvalidArgument(message.into()).into()
}
