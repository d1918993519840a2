//! The error table: every code [`Error::details`](crate::Error::details)
//! can return, with its host class, its fields and what it means.
//!
//! This is the one table the bindings convert from and `docs/ERRORS.md` is
//! generated from (a test keeps all three in step).

/// The type of one field of an error's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// Text ([`FieldValue::Str`](super::FieldValue::Str)).
    Str,
    /// Text or nothing ([`FieldValue::Str`](super::FieldValue::Str) or
    /// [`FieldValue::Null`](super::FieldValue::Null)).
    OptStr,
    /// An unsigned integer ([`FieldValue::U64`](super::FieldValue::U64)).
    U64,
    /// An unsigned integer or nothing.
    OptU64,
    /// A point in time ([`FieldValue::Time`](super::FieldValue::Time)).
    Time,
    /// A list of text ([`FieldValue::StrList`](super::FieldValue::StrList)).
    StrList,
    /// A list of booleans ([`FieldValue::BoolList`](super::FieldValue::BoolList)).
    BoolList,
}

impl FieldType {
    /// The name used in `docs/ERRORS.md`: `string`, `string?`, `u64`,
    /// `u64?`, `timestamp`, `list<string>`, `list<bool>`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Str => "string",
            Self::OptStr => "string?",
            Self::U64 => "u64",
            Self::OptU64 => "u64?",
            Self::Time => "timestamp",
            Self::StrList => "list<string>",
            Self::BoolList => "list<bool>",
        }
    }
}

/// One field of an error code: its stable `snake_case` name and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The field's name, the same in every binding.
    pub name: &'static str,
    /// Its type.
    pub ty: FieldType,
}

/// One row of [`ERROR_CODES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The stable code: `snake_case`, and `family.name` for errors of a
    /// family (`secret.cas_mismatch`, `protector.wrong_pin`).
    pub code: &'static str,
    /// The host error class to raise for this code (`UpperCamelCase`).
    /// Several codes may share a class (all `path.*` codes raise
    /// `InvalidPath`); the code tells them apart.
    pub class: &'static str,
    /// The base class `class` derives from: `StrongroomError` or a
    /// family's class (`SecretError`, `LeaseError`, ...), which itself
    /// derives from `StrongroomError`.
    pub parent: &'static str,
    /// The coarser [`Error::kind`](crate::Error::kind) of errors with this
    /// code (the code written into audit records; unchanged).
    pub kind: &'static str,
    /// The fields, in the order [`ErrorDetails::fields`](super::ErrorDetails::fields)
    /// lists them.
    pub fields: &'static [FieldSpec],
    /// One line saying what the error means.
    pub meaning: &'static str,
}

impl ErrorCode {
    /// The row for `code`, if there is one.
    pub fn lookup(code: &str) -> Option<&'static ErrorCode> {
        ERROR_CODES.iter().find(|c| c.code == code)
    }
}

/// The root class every host error class derives from.
pub const ROOT_CLASS: &str = "StrongroomError";

/// Field names no error uses, because a host error object already has them
/// (`name`, `message`, `stack`, `cause` in JavaScript; `args` in Python;
/// `code` is the error code itself).
pub const RESERVED_FIELD_NAMES: &[&str] = &["name", "message", "code", "stack", "cause", "args"];

const fn f(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec { name, ty }
}

use FieldType::{BoolList, OptStr, OptU64, Str, StrList, Time, U64};

const PATH: FieldSpec = f("path", Str);
const DETAIL: FieldSpec = f("detail", Str);
const REASON: FieldSpec = f("reason", Str);
const VERSION: FieldSpec = f("version", U64);
const ID: FieldSpec = f("id", Str);
const CREDENTIAL: FieldSpec = f("credential", Str);
const KEY: FieldSpec = f("key", Str);
const PROTECTOR: &[FieldSpec] = &[f("protector", Str), DETAIL];
const STORAGE: &[FieldSpec] = &[f("backend", Str), DETAIL];

macro_rules! row {
    ($code:literal, $class:literal < $parent:literal, $kind:literal, [$($field:expr),* $(,)?], $meaning:literal) => {
        ErrorCode {
            code: $code,
            class: $class,
            parent: $parent,
            kind: $kind,
            fields: &[$($field),*],
            meaning: $meaning,
        }
    };
    ($code:literal, $class:literal < $parent:literal, $kind:literal, $fields:expr, $meaning:literal) => {
        ErrorCode {
            code: $code,
            class: $class,
            parent: $parent,
            kind: $kind,
            fields: $fields,
            meaning: $meaning,
        }
    };
}

/// Every error code, grouped by family. [`Error::details`](crate::Error::details)
/// returns only these codes, with exactly these fields.
pub const ERROR_CODES: &[ErrorCode] = &[
    // The store itself (flat codes).
    row!(
        "decryption_failed",
        "DecryptionFailed" < "StrongroomError",
        "decryption_failed",
        [],
        "a sealed value did not open (wrong key, tampering, moved value); deliberately says nothing more"
    ),
    row!(
        "malformed_sealed_value",
        "MalformedSealedValue" < "StrongroomError",
        "malformed_sealed_value",
        [REASON],
        "the bytes are not a sealed value this build can read"
    ),
    row!(
        "unknown_key_version",
        "UnknownKeyVersion" < "StrongroomError",
        "unknown_key_version",
        [VERSION, f("latest", U64)],
        "the sealed value names a key version the keyring does not have"
    ),
    row!(
        "key_version_retired",
        "KeyVersionRetired" < "StrongroomError",
        "key_version_retired",
        [VERSION, f("state", Str), f("min_decryption_version", U64)],
        "the key version exists but may no longer decrypt (retired or destroyed)"
    ),
    row!(
        "invalid_key_transition",
        "InvalidKeyTransition" < "StrongroomError",
        "invalid_key_transition",
        [VERSION, f("from_state", Str), f("to_state", Str)],
        "a key state change the key lifecycle forbids"
    ),
    row!(
        "key_in_use",
        "KeyInUse" < "StrongroomError",
        "key_in_use",
        [VERSION, f("records", U64), f("example", Str)],
        "a key version still protects stored records; run rewrap first"
    ),
    row!(
        "sealed",
        "Sealed" < "StrongroomError",
        "sealed",
        [],
        "the store is sealed (its keys are not in memory); unseal it first"
    ),
    row!(
        "already_initialized",
        "AlreadyInitialized" < "StrongroomError",
        "already_initialized",
        [],
        "init was called on storage that already holds a store"
    ),
    row!(
        "not_initialized",
        "NotInitialized" < "StrongroomError",
        "not_initialized",
        [],
        "unseal was called on storage that holds no store"
    ),
    row!(
        "unseal_failed",
        "UnsealFailed" < "StrongroomError",
        "unseal_failed",
        [],
        "the root key does not open this store's keyring"
    ),
    row!(
        "storage_conflict",
        "StorageConflict" < "StrongroomError",
        "storage_conflict",
        [f("key", Str)],
        "a storage record changed concurrently; re-read and retry"
    ),
    row!(
        "corrupt_record",
        "CorruptRecord" < "StrongroomError",
        "corrupt_record",
        [f("key", Str), REASON],
        "a stored record (not a sealed value) could not be decoded"
    ),
    row!(
        "random_failed",
        "RandomFailed" < "StrongroomError",
        "random",
        [],
        "the operating system's random number generator failed"
    ),
    row!(
        "invalid_argument",
        "InvalidArgument" < "StrongroomError",
        "invalid_argument",
        [REASON],
        "an argument cannot be used"
    ),
    // path.*: a path failed validation.
    row!(
        "path.empty",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH],
        "the path is empty"
    ),
    row!(
        "path.empty_segment",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH],
        "the path has an empty segment (double, leading or trailing '/')"
    ),
    row!(
        "path.dot_segment",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH],
        "the path has a '.' or '..' segment"
    ),
    row!(
        "path.bad_character",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH, f("character", Str)],
        "the path has a character outside a-z, 0-9, '-', '_', '.', '/'"
    ),
    row!(
        "path.upper_case",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH],
        "the path has upper-case letters"
    ),
    row!(
        "path.too_long",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH, f("max", U64)],
        "the path is longer than max bytes"
    ),
    row!(
        "path.too_deep",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH, f("max", U64)],
        "the path has more than max segments"
    ),
    row!(
        "path.reserved",
        "InvalidPath" < "StrongroomError",
        "invalid_path",
        [PATH],
        "the path is under the reserved 'sys' prefix"
    ),
    // key_file.*: a root key file was rejected.
    row!(
        "key_file.loose_permissions",
        "KeyFileError" < "StrongroomError",
        "key_file",
        [PATH, f("mode", U64)],
        "the key file can be read or written by group or others (chmod 600)"
    ),
    row!(
        "key_file.io",
        "KeyFileError" < "StrongroomError",
        "key_file",
        [PATH, DETAIL],
        "the key file could not be read or written"
    ),
    row!(
        "key_file.bad_content",
        "KeyFileError" < "StrongroomError",
        "key_file",
        [PATH],
        "the key file is not a base64-encoded 32-byte key"
    ),
    row!(
        "key_file.exists",
        "KeyFileError" < "StrongroomError",
        "key_file",
        [PATH],
        "the key file already exists (a root key is never overwritten)"
    ),
    row!(
        "key_file.wrong_owner",
        "KeyFileError" < "StrongroomError",
        "key_file",
        [PATH, f("uid", U64), f("expected", U64)],
        "the key file belongs to another user than this process's"
    ),
    row!(
        "key_file.unsafe_directory",
        "KeyFileError" < "StrongroomError",
        "key_file",
        [PATH, f("dir", Str), f("mode", U64)],
        "the key file's directory is writable by group or others"
    ),
    row!(
        "key_file.too_large",
        "KeyFileError" < "StrongroomError",
        "key_file",
        [PATH, f("limit", U64)],
        "the file is larger than any key file"
    ),
    // protector.*: a key protector (software, PKCS#11) failed.
    row!(
        "protector.unwrap_failed",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the wrapped root key did not unwrap (wrong key, another token, tampering)"
    ),
    row!(
        "protector.wrong_pin",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the PIN was rejected"
    ),
    row!(
        "protector.pin_locked",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the PIN is locked after too many failures"
    ),
    row!(
        "protector.token_not_found",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "no token with the configured label"
    ),
    row!(
        "protector.token_removed",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the token was removed"
    ),
    row!(
        "protector.key_not_found",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the wrapping key is not on the token"
    ),
    row!(
        "protector.mechanism_unsupported",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the module does not support a needed mechanism"
    ),
    row!(
        "protector.module_not_found",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the module library could not be loaded"
    ),
    row!(
        "protector.config",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the protector's configuration is incomplete or contradictory"
    ),
    row!(
        "protector.device",
        "ProtectorError" < "StrongroomError",
        "protector",
        PROTECTOR,
        "the device reported another failure"
    ),
    // storage.*: the storage backend failed.
    row!(
        "storage.unavailable",
        "StorageError" < "StrongroomError",
        "storage",
        STORAGE,
        "the backend could not be reached or opened"
    ),
    row!(
        "storage.corrupt",
        "StorageError" < "StrongroomError",
        "storage",
        STORAGE,
        "the backend's files or tables are damaged or not a Strongroom store"
    ),
    row!(
        "storage.rejected",
        "StorageError" < "StrongroomError",
        "storage",
        STORAGE,
        "the backend refused the operation (permissions, read-only, full disk)"
    ),
    row!(
        "storage.unsupported_version",
        "StorageError" < "StrongroomError",
        "storage",
        STORAGE,
        "a schema or format version this build does not understand"
    ),
    row!(
        "storage.other",
        "StorageError" < "StrongroomError",
        "storage",
        STORAGE,
        "an injected or otherwise unclassified storage fault"
    ),
    // secret.*: versioned secrets.
    row!(
        "secret.not_found",
        "SecretNotFound" < "SecretError",
        "not_found",
        [PATH, f("version", OptU64)],
        "no secret at the path, or it never had the version asked for"
    ),
    row!(
        "secret.version_deleted",
        "SecretVersionDeleted" < "SecretError",
        "version_deleted",
        [PATH, VERSION, f("deleted_at", Time)],
        "the version was soft-deleted; undelete brings it back"
    ),
    row!(
        "secret.version_destroyed",
        "SecretVersionDestroyed" < "SecretError",
        "version_destroyed",
        [PATH, VERSION, f("destroyed_at", Time)],
        "the version was destroyed and cannot be recovered"
    ),
    row!(
        "secret.version_pruned",
        "SecretVersionPruned" < "SecretError",
        "version_pruned",
        [PATH, VERSION, f("oldest", U64)],
        "the version was pruned by max_versions and is gone"
    ),
    row!(
        "secret.cas_mismatch",
        "SecretCasMismatch" < "SecretError",
        "cas_mismatch",
        [PATH, f("expected", U64), f("current", U64)],
        "a check-and-set write found another current version (0: absent); re-read and retry"
    ),
    row!(
        "secret.invalid_metadata",
        "SecretInvalidMetadata" < "SecretError",
        "invalid_metadata",
        [PATH, REASON],
        "metadata or an option is out of bounds"
    ),
    row!(
        "secret.contended",
        "SecretContended" < "SecretError",
        "contended",
        [PATH, f("attempts", U64)],
        "other writers kept changing the secret; the write gave up"
    ),
    // policy.*: policies.
    row!(
        "policy.denied",
        "PolicyDenied" < "PolicyError",
        "policy_denied",
        [f("principal", Str), f("capability", Str), PATH],
        "the principal's policies do not grant the capability on the path"
    ),
    row!(
        "policy.parse",
        "PolicyParse" < "PolicyError",
        "policy_parse",
        [
            f("source_name", Str),
            f("line", U64),
            f("column", U64),
            DETAIL
        ],
        "a policy text is wrong at this line and column"
    ),
    row!(
        "policy.invalid_pattern",
        "PolicyInvalidPattern" < "PolicyError",
        "invalid_pattern",
        [f("pattern", Str), REASON],
        "a pattern given in code is invalid"
    ),
    row!(
        "policy.unknown_capability",
        "PolicyUnknownCapability" < "PolicyError",
        "unknown_capability",
        [f("capability", Str)],
        "a capability name is not one of the known ones"
    ),
    row!(
        "policy.unknown_policy",
        "PolicyUnknownPolicy" < "PolicyError",
        "unknown_policy",
        [f("policy", Str)],
        "a principal names a policy that is not loaded"
    ),
    row!(
        "policy.io",
        "PolicyIo" < "PolicyError",
        "policy_io",
        [PATH, DETAIL],
        "a policy file could not be read"
    ),
    // audit.*: the tamper-evident audit trail.
    row!(
        "audit.no_sink_accepted",
        "AuditNoSinkAccepted" < "AuditError",
        "audit_no_sink_accepted",
        [
            f("seq", U64),
            f("sinks", StrList),
            f("timed_out", BoolList),
            f("failures", StrList)
        ],
        "no audit sink accepted the event, so the operation was refused"
    ),
    row!(
        "audit.sink",
        "AuditSink" < "AuditError",
        "audit_sink",
        [f("sink", Str), DETAIL],
        "an audit sink failed to write a record"
    ),
    row!(
        "audit.chain_broken",
        "AuditChainBroken" < "AuditError",
        "audit_chain_broken",
        [f("seq", U64), f("break_kind", Str), REASON],
        "the audit chain does not verify at this record"
    ),
    row!(
        "audit.malformed_record",
        "AuditMalformedRecord" < "AuditError",
        "audit_malformed_record",
        [REASON],
        "a line is not an audit record of a known format"
    ),
    row!(
        "audit.weak_key",
        "AuditWeakKey" < "AuditError",
        "audit_weak_key",
        [f("len", U64)],
        "the audit key is too short"
    ),
    row!(
        "audit.no_sinks",
        "AuditNoSinks" < "AuditError",
        "audit_no_sinks",
        [],
        "an audit log needs at least one sink"
    ),
    row!(
        "audit.sequence_exhausted",
        "AuditSequenceExhausted" < "AuditError",
        "audit_sequence_exhausted",
        [],
        "the audit sequence numbers are used up"
    ),
    row!(
        "audit.io",
        "AuditIo" < "AuditError",
        "audit_io",
        [PATH, DETAIL],
        "an audit file could not be opened or read"
    ),
    row!(
        "audit.encode",
        "AuditEncode" < "AuditError",
        "audit_encode",
        [REASON],
        "an audit record could not be encoded"
    ),
    // lease.*: leases.
    row!(
        "lease.not_found",
        "LeaseNotFound" < "LeaseError",
        "lease_not_found",
        [ID],
        "no lease with this id (never issued, or revoked)"
    ),
    row!(
        "lease.invalid_id",
        "LeaseInvalidId" < "LeaseError",
        "lease_invalid_id",
        [f("text", Str)],
        "the text is not a lease id"
    ),
    row!(
        "lease.not_renewable",
        "LeaseNotRenewable" < "LeaseError",
        "lease_not_renewable",
        [ID],
        "the lease was issued as not renewable"
    ),
    row!(
        "lease.expired",
        "LeaseExpired" < "LeaseError",
        "lease_expired",
        [ID, f("expired_at", Time)],
        "the lease has expired"
    ),
    row!(
        "lease.not_active",
        "LeaseNotActive" < "LeaseError",
        "lease_not_active",
        [ID, f("state", Str)],
        "the lease is being revoked, revoked or irrevocable, so it cannot be renewed"
    ),
    row!(
        "lease.quota_exceeded",
        "LeaseQuotaExceeded" < "LeaseError",
        "lease_quota_exceeded",
        [
            f("scope", Str),
            f("prefix", OptStr),
            f("limit", U64),
            f("count", U64)
        ],
        "issuing would exceed a lease quota (scope total, or prefix)"
    ),
    row!(
        "lease.no_revoker",
        "LeaseNoRevoker" < "LeaseError",
        "lease_no_revoker",
        [f("engine", Str)],
        "no revoker is registered for the lease's engine"
    ),
    row!(
        "lease.invalid_ttl",
        "LeaseInvalidTtl" < "LeaseError",
        "lease_invalid_ttl",
        [REASON],
        "a TTL argument cannot be used"
    ),
    row!(
        "lease.invalid_engine",
        "LeaseInvalidEngine" < "LeaseError",
        "lease_invalid_engine",
        [f("engine", Str)],
        "an engine name cannot be used"
    ),
    row!(
        "lease.revocation_deferred",
        "LeaseRevocationDeferred" < "LeaseError",
        "lease_revocation_deferred",
        [ID, f("attempts", U64), f("next_try", Time), REASON],
        "the engine failed to revoke the lease; the manager retries at next_try"
    ),
    row!(
        "lease.irrevocable",
        "LeaseIrrevocable" < "LeaseError",
        "lease_irrevocable",
        [ID, f("attempts", U64), REASON],
        "revocation failed too often; revoke again or force it"
    ),
    row!(
        "lease.revoker_failed",
        "LeaseRevokerFailed" < "LeaseError",
        "lease_revoker_failed",
        [f("engine", Str), REASON],
        "a revoker failed for a reason of its own"
    ),
    // rotation.*: credential rotation.
    row!(
        "rotation.invalid_name",
        "RotationInvalidName" < "RotationError",
        "rotation_invalid_name",
        [CREDENTIAL, REASON],
        "the credential name cannot be used"
    ),
    row!(
        "rotation.busy",
        "RotationBusy" < "RotationError",
        "rotation_busy",
        [CREDENTIAL, f("owner", Str), f("until", Time)],
        "another process is rotating this credential until the given time"
    ),
    row!(
        "rotation.lost_lock",
        "RotationLostLock" < "RotationError",
        "rotation_lost_lock",
        [CREDENTIAL],
        "another process took over the rotation; this one stopped"
    ),
    row!(
        "rotation.step_failed",
        "RotationStepFailed" < "RotationError",
        "rotation_step_failed",
        [
            CREDENTIAL,
            VERSION,
            f("step", Str),
            f("attempts", U64),
            DETAIL
        ],
        "a rotation step kept failing; resume retries it"
    ),
    row!(
        "rotation.rolled_back",
        "RotationRolledBack" < "RotationError",
        "rotation_rolled_back",
        [CREDENTIAL, VERSION, f("step", Str), DETAIL],
        "the new version could not be set or tested and was rolled back"
    ),
    row!(
        "rotation.already_initialized",
        "RotationAlreadyInitialized" < "RotationError",
        "rotation_already_initialized",
        [CREDENTIAL],
        "the credential already has a current version"
    ),
    row!(
        "rotation.corrupt_state",
        "RotationCorruptState" < "RotationError",
        "rotation_corrupt_state",
        [CREDENTIAL, REASON],
        "the stored rotation state cannot be read"
    ),
    row!(
        "rotation.audit_refused",
        "RotationAuditRefused" < "RotationError",
        "rotation_audit_refused",
        [CREDENTIAL, f("step", Str), DETAIL],
        "the audit hook refused to record a step, so the step was not run"
    ),
    // shamir.*: Shamir split and combine.
    row!(
        "shamir.invalid_parameters",
        "ShamirInvalidParameters" < "ShamirError",
        "shamir_invalid_parameters",
        [REASON],
        "threshold or share count out of range, or an empty secret"
    ),
    row!(
        "shamir.no_shares",
        "ShamirNoShares" < "ShamirError",
        "shamir_no_shares",
        [],
        "no shares were given"
    ),
    row!(
        "shamir.too_few_shares",
        "ShamirTooFewShares" < "ShamirError",
        "shamir_too_few_shares",
        [f("needed", U64), f("given", U64)],
        "fewer distinct shares than the threshold"
    ),
    row!(
        "shamir.duplicate_share",
        "ShamirDuplicateShare" < "ShamirError",
        "shamir_duplicate_share",
        [
            f("x", U64),
            f("first", U64),
            f("second", U64),
            f("needed", U64)
        ],
        "the same share was given twice"
    ),
    row!(
        "shamir.different_splits",
        "ShamirDifferentSplits" < "ShamirError",
        "shamir_different_splits",
        [f("index", U64), f("expected", Str), f("found", Str)],
        "shares from two different splits were mixed"
    ),
    row!(
        "shamir.corrupt_share",
        "ShamirCorruptShare" < "ShamirError",
        "shamir_corrupt_share",
        [f("index", OptU64), REASON],
        "a share failed its checksum or is malformed"
    ),
    // signing.*: signing keys.
    row!(
        "signing.unknown_key",
        "SigningUnknownKey" < "SigningError",
        "signing_unknown_key",
        [KEY],
        "no signing key has this name"
    ),
    row!(
        "signing.key_exists",
        "SigningKeyExists" < "SigningError",
        "signing_key_exists",
        [KEY],
        "a signing key of this name exists already (perhaps just created by another process)"
    ),
    row!(
        "signing.unknown_version",
        "SigningUnknownVersion" < "SigningError",
        "signing_unknown_version",
        [KEY, VERSION, f("latest", U64)],
        "the signing key has no such version"
    ),
    row!(
        "signing.version_retired",
        "SigningVersionRetired" < "SigningError",
        "signing_version_retired",
        [KEY, VERSION, f("min_verify_version", U64)],
        "the version is below the key's minimum verify version: its signatures no longer verify"
    ),
    row!(
        "signing.wrong_key_type",
        "SigningWrongKeyType" < "SigningError",
        "signing_wrong_key_type",
        [
            KEY,
            f("key_type", Str),
            f("operation", Str),
            f("needed", Str)
        ],
        "the operation needs another type of signing key"
    ),
    row!(
        "signing.rate_limited",
        "SigningRateLimited" < "SigningError",
        "signing_rate_limited",
        [KEY, f("retry_after_ms", U64)],
        "the key's rate limit is exhausted in this process; retry after the given milliseconds"
    ),
    row!(
        "signing.bad_signature_encoding",
        "SigningBadSignatureEncoding" < "SigningError",
        "signing_bad_signature_encoding",
        [REASON],
        "a signature's text form cannot be parsed"
    ),
    row!(
        "signing.conflict",
        "SigningConflict" < "SigningError",
        "signing_conflict",
        [KEY],
        "the signing key changed concurrently; re-read and retry"
    ),
    row!(
        "signing.corrupt_key",
        "SigningCorruptKey" < "SigningError",
        "signing_corrupt_key",
        [KEY, VERSION, REASON],
        "a stored private key cannot be opened or parsed"
    ),
    row!(
        "signing.corrupt_record",
        "SigningCorruptRecord" < "SigningError",
        "signing_corrupt_record",
        [KEY, REASON],
        "a signing key's metadata record cannot be read"
    ),
    row!(
        "signing.invalid_min_verify_version",
        "SigningInvalidMinVerifyVersion" < "SigningError",
        "signing_invalid_min_verify_version",
        [
            KEY,
            f("requested", U64),
            f("current", U64),
            f("latest", U64)
        ],
        "the minimum verify version can only be raised, up to the newest version"
    ),
    row!(
        "signing.invalid_rate_limit",
        "SigningInvalidRateLimit" < "SigningError",
        "signing_invalid_rate_limit",
        [REASON],
        "a rate limit needs at least 1 per second and a burst of at least 1"
    ),
    row!(
        "signing.invalid_chain_id",
        "SigningInvalidChainId" < "SigningError",
        "signing_invalid_chain_id",
        [f("chain_id", U64)],
        "an EIP-155 chain id of zero or one whose v overflows"
    ),
    // naming.*: the applied naming rules.
    row!(
        "naming.violation",
        "NamingViolation" < "StrongroomError",
        "naming_violation",
        [PATH, REASON],
        "a write names a path that follows none of the applied naming rules; nothing was written"
    ),
    // approval.*: approval gates and requests.
    row!(
        "approval.required",
        "ApprovalRequired" < "ApprovalError",
        "approval_required",
        [f("operation", Str), PATH],
        "a gate holds this operation on this path and no approved request was given; nothing was done"
    ),
    row!(
        "approval.not_found",
        "ApprovalNotFound" < "ApprovalError",
        "approval_not_found",
        [ID],
        "no approval request has this id"
    ),
    row!(
        "approval.expired",
        "ApprovalExpired" < "ApprovalError",
        "approval_expired",
        [ID, f("expired_at", Time)],
        "the approval request's time to live ran out before it was used"
    ),
    row!(
        "approval.refused",
        "ApprovalRefused" < "ApprovalError",
        "approval_refused",
        [ID, f("by", Str)],
        "an approver refused the request; it can never run"
    ),
    row!(
        "approval.not_approved",
        "ApprovalNotApproved" < "ApprovalError",
        "approval_not_approved",
        [ID, f("approvals", U64), f("required", U64)],
        "the request does not yet have the approvals its gates need"
    ),
    row!(
        "approval.used",
        "ApprovalUsed" < "ApprovalError",
        "approval_used",
        [ID],
        "the approved request has run already; it runs once"
    ),
    row!(
        "approval.not_approver",
        "ApprovalNotApprover" < "ApprovalError",
        "approval_not_approver",
        [ID, f("principal", Str)],
        "no gate holding the request names this principal as an approver"
    ),
    row!(
        "approval.self_approval",
        "ApprovalSelfApproval" < "ApprovalError",
        "approval_self_approval",
        [ID, f("principal", Str)],
        "the requester cannot approve its own request"
    ),
    row!(
        "approval.already_approved",
        "ApprovalAlreadyApproved" < "ApprovalError",
        "approval_already_approved",
        [ID, f("principal", Str)],
        "this principal has approved the request already; each approver counts once"
    ),
    row!(
        "approval.mismatch",
        "ApprovalMismatch" < "ApprovalError",
        "approval_mismatch",
        [ID, f("what", Str)],
        "the request was made for another operation, path or requester"
    ),
    row!(
        "approval.no_gate",
        "ApprovalNoGate" < "ApprovalError",
        "approval_no_gate",
        [f("operation", Str), PATH],
        "no gate holds this operation on this path; there is nothing to request"
    ),
    row!(
        "approval.invalid_gates",
        "ApprovalInvalidGates" < "ApprovalError",
        "approval_invalid_gates",
        [f("line", OptU64), REASON],
        "a gates file or gate list is not valid (the line is given for files; no value is quoted)"
    ),
    row!(
        "approval.invalid_request",
        "ApprovalInvalidRequest" < "ApprovalError",
        "approval_invalid_request",
        [REASON],
        "a request's reason, time to live or path cannot be used"
    ),
    row!(
        "approval.conflict",
        "ApprovalConflict" < "ApprovalError",
        "approval_conflict",
        [f("what", Str)],
        "the gates or the request changed concurrently; re-read and retry"
    ),
    // The internal certificate authority (crate strongroom-pki;
    // `PkiError::details`). Its core errors keep the core's codes.
    row!(
        "pki.invalid_name",
        "PkiInvalidName" < "PkiError",
        "pki_invalid_name",
        [f("what", Str), f("given_name", Str)],
        "a mount or role name (`what`) is outside a-z, 0-9, '-' and '_', 1 to 64 bytes"
    ),
    row!(
        "pki.ca_exists",
        "PkiCaExists" < "PkiError",
        "pki_ca_exists",
        [f("mount", Str)],
        "the mount already holds a certificate authority; it is never replaced"
    ),
    row!(
        "pki.unknown_ca",
        "PkiUnknownCa" < "PkiError",
        "pki_unknown_ca",
        [f("mount", Str)],
        "the mount holds no certificate authority yet; create a root or an intermediate first"
    ),
    row!(
        "pki.unknown_role",
        "PkiUnknownRole" < "PkiError",
        "pki_unknown_role",
        [f("mount", Str), f("role", Str)],
        "the mount has no role of that name"
    ),
    row!(
        "pki.invalid_role",
        "PkiInvalidRole" < "PkiError",
        "pki_invalid_role",
        [REASON],
        "a role definition cannot be used"
    ),
    row!(
        "pki.name_not_allowed",
        "PkiNameNotAllowed" < "PkiError",
        "pki_name_not_allowed",
        [f("role", Str), f("requested_name", Str), REASON],
        "the role does not allow the requested DNS name or IP address"
    ),
    row!(
        "pki.ttl_over_max",
        "PkiTtlOverMax" < "PkiError",
        "pki_ttl_over_max",
        [f("role", Str), f("requested_secs", U64), f("max_secs", U64)],
        "the requested ttl is over the role's max_ttl (both in seconds)"
    ),
    row!(
        "pki.outlives_ca",
        "PkiOutlivesCa" < "PkiError",
        "pki_outlives_ca",
        [f("requested", Time), f("ca_not_after", Time)],
        "the certificate would outlive the CA that signs it; ask for a shorter ttl"
    ),
    row!(
        "pki.key_type_not_allowed",
        "PkiKeyTypeNotAllowed" < "PkiError",
        "pki_key_type_not_allowed",
        [f("role", Str), f("requested", Str), f("allowed", Str)],
        "the role does not allow the requested key type (`allowed` is comma-separated)"
    ),
    row!(
        "pki.usage_not_allowed",
        "PkiUsageNotAllowed" < "PkiError",
        "pki_usage_not_allowed",
        [f("role", Str), f("requested", Str)],
        "the role does not allow the requested usage (server or client authentication)"
    ),
    row!(
        "pki.invalid_request",
        "PkiInvalidRequest" < "PkiError",
        "pki_invalid_request",
        [REASON],
        "a request that makes no sense whatever the role says (no names, a zero ttl, a malformed serial)"
    ),
    row!(
        "pki.unknown_certificate",
        "PkiUnknownCertificate" < "PkiError",
        "pki_unknown_certificate",
        [f("mount", Str), f("serial", Str)],
        "no live certificate of that serial (hex) on the mount: never issued, revoked, or expired and removed"
    ),
    row!(
        "pki.bad_record",
        "PkiBadRecord" < "PkiError",
        "pki_bad_record",
        [KEY, REASON],
        "a stored CA record failed authentication (edited, moved, forged) or does not decode"
    ),
    row!(
        "pki.certificate",
        "PkiCertificate" < "PkiError",
        "pki_certificate",
        [DETAIL],
        "building, signing or parsing a certificate or CRL failed"
    ),
    row!(
        "pki.tls",
        "PkiTls" < "PkiError",
        "pki_tls",
        [DETAIL],
        "rustls refused a key, chain or verifier configuration"
    ),
    row!(
        "pki.contended",
        "PkiContended" < "PkiError",
        "pki_contended",
        [KEY, f("attempts", U64)],
        "a CA record kept changing under other writers; retry later"
    ),
];
