//! [`Error::details`]: an error as a stable code plus named fields, the one
//! description every language binding converts mechanically.
//!
//! The codes, classes and fields are those of [`ERROR_CODES`]; nothing here
//! quotes a secret (the fields are the public facts the error's message
//! already states).

use super::codes::{ERROR_CODES, ErrorCode, ROOT_CLASS};
use super::{Error, KeyFileError, PathError, ProtectorErrorKind, StorageErrorKind};
use crate::approvals::ApprovalError;
use crate::audit::{AuditError, ChainBreak};
use crate::clock::Timestamp;
use crate::lease::{LeaseError, LeaseState, QuotaScope};
use crate::policy::PolicyError;
use crate::rotation::{RotationError, RotationStep};
use crate::secrets::SecretError;
use crate::shamir::ShamirError;
use crate::signing::SigningError;

/// The value of one field of [`ErrorDetails`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldValue {
    /// Text.
    Str(String),
    /// An unsigned integer.
    U64(u64),
    /// A point in time.
    Time(Timestamp),
    /// An optional field that is absent (`None`, `null`, `nil`).
    Null,
    /// A list of text.
    StrList(Vec<String>),
    /// A list of booleans.
    BoolList(Vec<bool>),
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<&String> for FieldValue {
    fn from(s: &String) -> Self {
        Self::Str(s.clone())
    }
}

impl From<u64> for FieldValue {
    fn from(n: u64) -> Self {
        Self::U64(n)
    }
}

impl From<u32> for FieldValue {
    fn from(n: u32) -> Self {
        Self::U64(n.into())
    }
}

impl From<u8> for FieldValue {
    fn from(n: u8) -> Self {
        Self::U64(n.into())
    }
}

impl From<usize> for FieldValue {
    fn from(n: usize) -> Self {
        Self::U64(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl From<Timestamp> for FieldValue {
    fn from(t: Timestamp) -> Self {
        Self::Time(t)
    }
}

impl<T: Into<FieldValue>> From<Option<T>> for FieldValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// An error as a binding sees it: a stable code, the host class to raise,
/// the message and the error's public facts under stable names.
///
/// ```
/// use strongroom::{Error, FieldValue};
/// let e = Error::UnknownKeyVersion { version: 7, latest: 3 };
/// let d = e.details();
/// assert_eq!(d.code, "unknown_key_version");
/// assert_eq!(d.class, "UnknownKeyVersion");
/// assert_eq!(d.field("latest"), Some(&FieldValue::U64(3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetails {
    /// The stable code (a row of [`ERROR_CODES`]).
    pub code: &'static str,
    /// The host error class for the code ([`ErrorCode::class`]).
    pub class: &'static str,
    /// That class's base class ([`ErrorCode::parent`]).
    pub parent: &'static str,
    /// The error's message (its `Display` text).
    pub message: String,
    /// The fields, named and ordered as [`ErrorCode::fields`] says.
    pub fields: Vec<(&'static str, FieldValue)>,
}

impl ErrorDetails {
    /// The value of the field `name`, if the code has such a field.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The table row of this error's code.
    pub fn row(&self) -> Option<&'static ErrorCode> {
        ErrorCode::lookup(self.code)
    }

    /// The details of an error with the table row `code`: the class and
    /// parent come from [`ERROR_CODES`]. For crates beside the core whose
    /// errors have rows of their own (`pki.*` for `strongroom-pki`); the
    /// fields must be those the row lists, in its order (each such crate
    /// tests this as the core does).
    ///
    /// ```
    /// use strongroom::{ErrorDetails, FieldValue};
    /// let d = ErrorDetails::from_row(
    ///     "pki.unknown_ca",
    ///     "mount \"pki\" holds no certificate authority".into(),
    ///     vec![("mount", FieldValue::from("pki"))],
    /// );
    /// assert_eq!((d.class, d.parent), ("PkiUnknownCa", "PkiError"));
    /// ```
    pub fn from_row(
        code: &'static str,
        message: String,
        fields: Vec<(&'static str, FieldValue)>,
    ) -> Self {
        let (class, parent) = match ERROR_CODES.iter().find(|c| c.code == code) {
            Some(row) => (row.class, row.parent),
            // Unreachable while the table is complete (a test checks it).
            None => (ROOT_CLASS, ROOT_CLASS),
        };
        Self {
            code,
            class,
            parent,
            message,
            fields,
        }
    }
}

type Fields = Vec<(&'static str, FieldValue)>;

macro_rules! fields {
    ($($name:literal => $value:expr),* $(,)?) => {
        vec![$(($name, FieldValue::from($value))),*]
    };
}

impl Error {
    /// This error as a stable code and named fields, for language bindings
    /// and structured logs. The codes, their host classes and their fields
    /// are listed in [`ERROR_CODES`] and `docs/ERRORS.md`; a code never
    /// changes meaning once released. No field holds a secret.
    ///
    /// ```
    /// use strongroom::Error;
    /// use strongroom::secrets::SecretError;
    /// let e = Error::from(SecretError::CasMismatch {
    ///     path: "prod/db".into(),
    ///     expected: 2,
    ///     current: 3,
    /// });
    /// let d = e.details();
    /// assert_eq!(d.code, "secret.cas_mismatch");
    /// assert_eq!((d.class, d.parent), ("SecretCasMismatch", "SecretError"));
    /// let names: Vec<_> = d.fields.iter().map(|(n, _)| *n).collect();
    /// assert_eq!(names, ["path", "expected", "current"]);
    /// ```
    pub fn details(&self) -> ErrorDetails {
        let (code, fields) = self.code_and_fields();
        ErrorDetails::from_row(code, self.to_string(), fields)
    }

    /// The stable code alone (the `code` of [`details`](Self::details)).
    pub fn code(&self) -> &'static str {
        self.code_and_fields().0
    }

    fn code_and_fields(&self) -> (&'static str, Fields) {
        match self {
            Self::DecryptionFailed => ("decryption_failed", vec![]),
            Self::MalformedSealedValue(reason) => {
                ("malformed_sealed_value", fields!["reason" => *reason])
            }
            Self::UnknownKeyVersion { version, latest } => (
                "unknown_key_version",
                fields!["version" => *version, "latest" => *latest],
            ),
            Self::KeyVersionRetired {
                version,
                state,
                min_decryption_version,
            } => (
                "key_version_retired",
                fields![
                    "version" => *version,
                    "state" => state.to_string(),
                    "min_decryption_version" => *min_decryption_version,
                ],
            ),
            Self::InvalidKeyTransition { version, from, to } => (
                "invalid_key_transition",
                fields![
                    "version" => *version,
                    "from_state" => from.to_string(),
                    "to_state" => to.to_string(),
                ],
            ),
            Self::KeyInUse {
                version,
                records,
                example,
            } => (
                "key_in_use",
                fields!["version" => *version, "records" => *records, "example" => example],
            ),
            Self::InvalidPath { path, reason } => path_error(path, reason),
            Self::Sealed => ("sealed", vec![]),
            Self::AlreadyInitialized => ("already_initialized", vec![]),
            Self::NotInitialized => ("not_initialized", vec![]),
            Self::UnsealFailed => ("unseal_failed", vec![]),
            Self::KeyFile { path, reason } => key_file_error(path, reason),
            Self::Protector {
                protector,
                kind,
                message,
            } => (
                protector_code(*kind),
                fields!["protector" => *protector, "detail" => message],
            ),
            Self::Storage {
                backend,
                kind,
                message,
            } => (
                storage_code(*kind),
                fields!["backend" => *backend, "detail" => message],
            ),
            Self::StorageConflict { key } => ("storage_conflict", fields!["key" => key]),
            Self::CorruptRecord { key, reason } => {
                ("corrupt_record", fields!["key" => key, "reason" => reason])
            }
            Self::Random => ("random_failed", vec![]),
            Self::InvalidArgument(reason) => ("invalid_argument", fields!["reason" => reason]),
            Self::Secret(e) => secret_error(e),
            Self::Policy(e) => policy_error(e),
            Self::Audit(e) => audit_error(e),
            Self::Lease(e) => lease_error(e),
            Self::Rotation(e) => rotation_error(e),
            Self::Shamir(e) => shamir_error(e),
            Self::Signing(e) => signing_error(e),
            Self::Naming(v) => (
                "naming.violation",
                fields!["path" => &v.path, "reason" => &v.reason],
            ),
            Self::Approval(e) => approval_error(e),
        }
    }
}

fn path_error(path: &str, reason: &PathError) -> (&'static str, Fields) {
    use PathError as P;
    match reason {
        P::Empty => ("path.empty", fields!["path" => path]),
        P::EmptySegment => ("path.empty_segment", fields!["path" => path]),
        P::DotSegment => ("path.dot_segment", fields!["path" => path]),
        P::BadCharacter(c) => (
            "path.bad_character",
            fields!["path" => path, "character" => c.to_string()],
        ),
        P::UpperCase => ("path.upper_case", fields!["path" => path]),
        P::TooLong { max } => ("path.too_long", fields!["path" => path, "max" => *max]),
        P::TooDeep { max } => ("path.too_deep", fields!["path" => path, "max" => *max]),
        P::Reserved => ("path.reserved", fields!["path" => path]),
    }
}

fn key_file_error(path: &str, reason: &KeyFileError) -> (&'static str, Fields) {
    use KeyFileError as K;
    match reason {
        K::LoosePermissions { mode } => (
            "key_file.loose_permissions",
            fields!["path" => path, "mode" => *mode],
        ),
        K::Io(detail) => ("key_file.io", fields!["path" => path, "detail" => detail]),
        K::BadContent => ("key_file.bad_content", fields!["path" => path]),
        K::Exists => ("key_file.exists", fields!["path" => path]),
        K::WrongOwner { uid, expected } => (
            "key_file.wrong_owner",
            fields!["path" => path, "uid" => *uid, "expected" => *expected],
        ),
        K::UnsafeDirectory { dir, mode } => (
            "key_file.unsafe_directory",
            fields!["path" => path, "dir" => dir, "mode" => *mode],
        ),
        K::TooLarge { limit } => (
            "key_file.too_large",
            fields!["path" => path, "limit" => *limit],
        ),
    }
}

fn protector_code(kind: ProtectorErrorKind) -> &'static str {
    use ProtectorErrorKind as K;
    match kind {
        K::UnwrapFailed => "protector.unwrap_failed",
        K::WrongPin => "protector.wrong_pin",
        K::PinLocked => "protector.pin_locked",
        K::TokenNotFound => "protector.token_not_found",
        K::TokenRemoved => "protector.token_removed",
        K::KeyNotFound => "protector.key_not_found",
        K::MechanismUnsupported => "protector.mechanism_unsupported",
        K::ModuleNotFound => "protector.module_not_found",
        K::Config => "protector.config",
        K::Device => "protector.device",
    }
}

fn storage_code(kind: StorageErrorKind) -> &'static str {
    use StorageErrorKind as K;
    match kind {
        K::Unavailable => "storage.unavailable",
        K::Corrupt => "storage.corrupt",
        K::Rejected => "storage.rejected",
        K::UnsupportedVersion => "storage.unsupported_version",
        K::Other => "storage.other",
    }
}

fn secret_error(e: &SecretError) -> (&'static str, Fields) {
    use SecretError as S;
    match e {
        S::NotFound { path, version } => (
            "secret.not_found",
            fields!["path" => path, "version" => *version],
        ),
        S::VersionDeleted {
            path,
            version,
            deleted_at,
        } => (
            "secret.version_deleted",
            fields!["path" => path, "version" => *version, "deleted_at" => *deleted_at],
        ),
        S::VersionDestroyed {
            path,
            version,
            destroyed_at,
        } => (
            "secret.version_destroyed",
            fields!["path" => path, "version" => *version, "destroyed_at" => *destroyed_at],
        ),
        S::VersionPruned {
            path,
            version,
            oldest,
        } => (
            "secret.version_pruned",
            fields!["path" => path, "version" => *version, "oldest" => *oldest],
        ),
        S::CasMismatch {
            path,
            expected,
            current,
        } => (
            "secret.cas_mismatch",
            fields!["path" => path, "expected" => *expected, "current" => *current],
        ),
        S::InvalidMetadata { path, reason } => (
            "secret.invalid_metadata",
            fields!["path" => path, "reason" => reason],
        ),
        S::Contended { path, attempts } => (
            "secret.contended",
            fields!["path" => path, "attempts" => *attempts],
        ),
    }
}

fn policy_error(e: &PolicyError) -> (&'static str, Fields) {
    use PolicyError as P;
    match e {
        P::Denied {
            principal,
            capability,
            path,
        } => (
            "policy.denied",
            fields![
                "principal" => principal,
                "capability" => capability.as_str(),
                "path" => path,
            ],
        ),
        P::Parse {
            source_name,
            line,
            column,
            message,
        } => (
            "policy.parse",
            fields![
                "source_name" => source_name,
                "line" => *line,
                "column" => *column,
                "detail" => message,
            ],
        ),
        P::InvalidPattern { pattern, reason } => (
            "policy.invalid_pattern",
            fields!["pattern" => pattern, "reason" => reason],
        ),
        P::UnknownCapability(capability) => (
            "policy.unknown_capability",
            fields!["capability" => capability],
        ),
        P::UnknownPolicy(policy) => ("policy.unknown_policy", fields!["policy" => policy]),
        P::Io { path, message } => ("policy.io", fields!["path" => path, "detail" => message]),
    }
}

fn chain_break_kind(reason: &ChainBreak) -> &'static str {
    use ChainBreak as B;
    match reason {
        B::Malformed(_) => "malformed",
        B::UnsupportedVersion(_) => "unsupported_version",
        B::UnexpectedSeq { .. } => "unexpected_seq",
        B::PrevMismatch => "prev_mismatch",
        B::BadMac => "bad_mac",
        B::CheckpointMismatch => "checkpoint_mismatch",
        B::LineTooLong { .. } => "line_too_long",
        B::Truncated { .. } => "truncated",
    }
}

fn audit_error(e: &AuditError) -> (&'static str, Fields) {
    use AuditError as A;
    match e {
        A::NoSinkAccepted { seq, failures } => (
            "audit.no_sink_accepted",
            vec![
                ("seq", FieldValue::U64(*seq)),
                (
                    "sinks",
                    FieldValue::StrList(failures.iter().map(|f| f.sink.clone()).collect()),
                ),
                (
                    "timed_out",
                    FieldValue::BoolList(failures.iter().map(|f| f.timed_out).collect()),
                ),
                (
                    "failures",
                    FieldValue::StrList(failures.iter().map(|f| f.message.clone()).collect()),
                ),
            ],
        ),
        A::Sink { sink, message } => ("audit.sink", fields!["sink" => sink, "detail" => message]),
        A::ChainBroken { seq, reason } => (
            "audit.chain_broken",
            fields![
                "seq" => *seq,
                "break_kind" => chain_break_kind(reason),
                "reason" => reason.to_string(),
            ],
        ),
        A::MalformedRecord(reason) => ("audit.malformed_record", fields!["reason" => reason]),
        A::WeakKey { len } => ("audit.weak_key", fields!["len" => *len]),
        A::NoSinks => ("audit.no_sinks", vec![]),
        A::SequenceExhausted => ("audit.sequence_exhausted", vec![]),
        A::Io { path, message } => ("audit.io", fields!["path" => path, "detail" => message]),
        A::Encode(reason) => ("audit.encode", fields!["reason" => reason]),
    }
}

fn lease_state(state: &LeaseState) -> &'static str {
    match state {
        LeaseState::Active => "active",
        LeaseState::Revoking { .. } => "revoking",
        LeaseState::Revoked => "revoked",
        LeaseState::Irrevocable { .. } => "irrevocable",
    }
}

fn lease_error(e: &LeaseError) -> (&'static str, Fields) {
    use LeaseError as L;
    match e {
        L::NotFound { id } => ("lease.not_found", fields!["id" => id.to_string()]),
        L::InvalidId { text } => ("lease.invalid_id", fields!["text" => text]),
        L::NotRenewable { id } => ("lease.not_renewable", fields!["id" => id.to_string()]),
        L::Expired { id, expired_at } => (
            "lease.expired",
            fields!["id" => id.to_string(), "expired_at" => *expired_at],
        ),
        L::NotActive { id, state } => (
            "lease.not_active",
            fields!["id" => id.to_string(), "state" => lease_state(state)],
        ),
        L::QuotaExceeded {
            scope,
            limit,
            count,
        } => {
            let (scope, prefix) = match scope {
                QuotaScope::Total => ("total", None),
                QuotaScope::Prefix(p) => ("prefix", Some(p)),
            };
            (
                "lease.quota_exceeded",
                fields![
                    "scope" => scope,
                    "prefix" => prefix,
                    "limit" => *limit,
                    "count" => *count,
                ],
            )
        }
        L::NoRevoker { engine } => ("lease.no_revoker", fields!["engine" => engine]),
        L::InvalidTtl { reason } => ("lease.invalid_ttl", fields!["reason" => *reason]),
        L::InvalidEngine { engine } => ("lease.invalid_engine", fields!["engine" => engine]),
        L::RevocationDeferred {
            id,
            attempts,
            next_try,
            reason,
        } => (
            "lease.revocation_deferred",
            fields![
                "id" => id.to_string(),
                "attempts" => *attempts,
                "next_try" => *next_try,
                "reason" => reason,
            ],
        ),
        L::Irrevocable {
            id,
            attempts,
            reason,
        } => (
            "lease.irrevocable",
            fields!["id" => id.to_string(), "attempts" => *attempts, "reason" => reason],
        ),
        L::RevokerFailed { engine, reason } => (
            "lease.revoker_failed",
            fields!["engine" => engine, "reason" => reason],
        ),
    }
}

/// The step's stable `snake_case` name (as in rotation records).
fn rotation_step(step: RotationStep) -> &'static str {
    use RotationStep as S;
    match step {
        S::CreatePending => "create_pending",
        S::SetInTarget => "set_in_target",
        S::TestPending => "test_pending",
        S::Promote => "promote",
        S::RevokePrevious => "revoke_previous",
        S::RollBack => "roll_back",
    }
}

fn rotation_error(e: &RotationError) -> (&'static str, Fields) {
    use RotationError as R;
    match e {
        R::InvalidName { name, reason } => (
            "rotation.invalid_name",
            fields!["credential" => name, "reason" => *reason],
        ),
        R::Busy {
            credential,
            owner,
            until,
        } => (
            "rotation.busy",
            fields!["credential" => credential, "owner" => owner, "until" => *until],
        ),
        R::LostLock { credential } => ("rotation.lost_lock", fields!["credential" => credential]),
        R::StepFailed {
            credential,
            version,
            step,
            attempts,
            message,
        } => (
            "rotation.step_failed",
            fields![
                "credential" => credential,
                "version" => *version,
                "step" => rotation_step(*step),
                "attempts" => *attempts,
                "detail" => message,
            ],
        ),
        R::RolledBack {
            credential,
            version,
            step,
            message,
        } => (
            "rotation.rolled_back",
            fields![
                "credential" => credential,
                "version" => *version,
                "step" => rotation_step(*step),
                "detail" => message,
            ],
        ),
        R::AlreadyInitialized { credential } => (
            "rotation.already_initialized",
            fields!["credential" => credential],
        ),
        R::CorruptState { credential, reason } => (
            "rotation.corrupt_state",
            fields!["credential" => credential, "reason" => reason],
        ),
        R::AuditRefused {
            credential,
            step,
            message,
        } => (
            "rotation.audit_refused",
            fields![
                "credential" => credential,
                "step" => rotation_step(*step),
                "detail" => message,
            ],
        ),
    }
}

fn shamir_error(e: &ShamirError) -> (&'static str, Fields) {
    use ShamirError as H;
    match e {
        H::InvalidParameters { reason } => {
            ("shamir.invalid_parameters", fields!["reason" => reason])
        }
        H::NoShares => ("shamir.no_shares", vec![]),
        H::TooFewShares { needed, given } => (
            "shamir.too_few_shares",
            fields!["needed" => *needed, "given" => *given],
        ),
        H::DuplicateShare {
            x,
            first,
            second,
            needed,
        } => (
            "shamir.duplicate_share",
            fields!["x" => *x, "first" => *first, "second" => *second, "needed" => *needed],
        ),
        H::DifferentSplits {
            index,
            expected,
            found,
        } => (
            "shamir.different_splits",
            fields!["index" => *index, "expected" => expected, "found" => found],
        ),
        H::CorruptShare { index, reason } => (
            "shamir.corrupt_share",
            fields!["index" => *index, "reason" => *reason],
        ),
    }
}

fn signing_error(e: &SigningError) -> (&'static str, Fields) {
    use SigningError as G;
    match e {
        G::UnknownKey { key } => ("signing.unknown_key", fields!["key" => key]),
        G::KeyExists { key } => ("signing.key_exists", fields!["key" => key]),
        G::UnknownVersion {
            key,
            version,
            latest,
        } => (
            "signing.unknown_version",
            fields!["key" => key, "version" => *version, "latest" => *latest],
        ),
        G::VersionRetired {
            key,
            version,
            min_verify_version,
        } => (
            "signing.version_retired",
            fields![
                "key" => key,
                "version" => *version,
                "min_verify_version" => *min_verify_version,
            ],
        ),
        G::WrongKeyType {
            key,
            key_type,
            operation,
            needed,
        } => (
            "signing.wrong_key_type",
            fields![
                "key" => key,
                "key_type" => key_type.as_str(),
                "operation" => *operation,
                "needed" => needed.as_str(),
            ],
        ),
        G::RateLimited { key, retry_after } => (
            "signing.rate_limited",
            fields![
                "key" => key,
                "retry_after_ms" => u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            ],
        ),
        G::BadSignatureEncoding { reason } => (
            "signing.bad_signature_encoding",
            fields!["reason" => *reason],
        ),
        G::Conflict { key } => ("signing.conflict", fields!["key" => key]),
        G::CorruptKey {
            key,
            version,
            reason,
        } => (
            "signing.corrupt_key",
            fields!["key" => key, "version" => *version, "reason" => *reason],
        ),
        G::CorruptRecord { key, reason } => (
            "signing.corrupt_record",
            fields!["key" => key, "reason" => reason],
        ),
        G::InvalidMinVerifyVersion {
            key,
            requested,
            current,
            latest,
        } => (
            "signing.invalid_min_verify_version",
            fields![
                "key" => key,
                "requested" => *requested,
                "current" => *current,
                "latest" => *latest,
            ],
        ),
        G::InvalidRateLimit { reason } => {
            ("signing.invalid_rate_limit", fields!["reason" => *reason])
        }
        G::InvalidChainId { chain_id } => {
            ("signing.invalid_chain_id", fields!["chain_id" => *chain_id])
        }
    }
}

fn approval_error(e: &ApprovalError) -> (&'static str, Fields) {
    use ApprovalError as V;
    match e {
        V::Required { operation, path } => (
            "approval.required",
            fields!["operation" => *operation, "path" => path],
        ),
        V::NotFound { id } => ("approval.not_found", fields!["id" => id]),
        V::Expired { id, expired_at } => (
            "approval.expired",
            fields!["id" => id, "expired_at" => *expired_at],
        ),
        V::Refused { id, by } => ("approval.refused", fields!["id" => id, "by" => by]),
        V::NotApproved {
            id,
            approvals,
            required,
        } => (
            "approval.not_approved",
            fields!["id" => id, "approvals" => *approvals, "required" => *required],
        ),
        V::Used { id } => ("approval.used", fields!["id" => id]),
        V::NotApprover { id, principal } => (
            "approval.not_approver",
            fields!["id" => id, "principal" => principal],
        ),
        V::SelfApproval { id, principal } => (
            "approval.self_approval",
            fields!["id" => id, "principal" => principal],
        ),
        V::AlreadyApproved { id, principal } => (
            "approval.already_approved",
            fields!["id" => id, "principal" => principal],
        ),
        V::Mismatch { id, what } => ("approval.mismatch", fields!["id" => id, "what" => *what]),
        V::NoGate { operation, path } => (
            "approval.no_gate",
            fields!["operation" => *operation, "path" => path],
        ),
        V::InvalidGates { line, reason } => (
            "approval.invalid_gates",
            fields!["line" => *line, "reason" => reason],
        ),
        V::InvalidRequest { reason } => ("approval.invalid_request", fields!["reason" => reason]),
        V::Conflict { what } => ("approval.conflict", fields!["what" => what]),
    }
}
