//! `Error::details` against the one error table, `ERROR_CODES`: every
//! variant has a code in the table with exactly the table's fields, the
//! table is well formed, `docs/ERRORS.md` is the table, and no details
//! quote a secret.
//!
//! After changing the table, regenerate the doc with
//! `STRONGROOM_BLESS=1 cargo test -p strongroom --test error_details`.

use std::collections::{BTreeMap, BTreeSet};

use strongroom::audit::{AuditError, ChainBreak, SinkFailure};
use strongroom::clock::Timestamp;
use strongroom::keyring::KeyState;
use strongroom::lease::{LeaseError, LeaseId, LeaseState, QuotaScope};
use strongroom::policy::{Capability, PolicyError};
use strongroom::protector::SoftwareProtector;
use strongroom::rotation::{RotationError, RotationStep};
use strongroom::secrets::SecretError;
use strongroom::shamir::{self, ShamirError, Share};
use strongroom::signing::{KeyType, SigningError};
use strongroom::{
    ERROR_CODES, Error, ErrorCode, ErrorDetails, FieldType, FieldValue, KeyFileError, PathError,
    ProtectorErrorKind, RESERVED_FIELD_NAMES, ROOT_CLASS, SecretBytes, StorageErrorKind,
};

fn lease_id() -> LeaseId {
    "lease_000000000000000000000000000000ff".parse().unwrap()
}

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// One error of every variant (and every sub-kind) of the crate.
fn samples() -> Vec<Error> {
    let mut v = vec![
        Error::DecryptionFailed,
        Error::MalformedSealedValue("too short"),
        Error::UnknownKeyVersion {
            version: 7,
            latest: 3,
        },
        Error::KeyVersionRetired {
            version: 1,
            state: KeyState::Retired,
            min_decryption_version: 2,
        },
        Error::InvalidKeyTransition {
            version: 2,
            from: KeyState::Primary,
            to: KeyState::Destroyed,
        },
        Error::KeyInUse {
            version: 1,
            records: 4,
            example: "secrets/prod/db/v/1".into(),
        },
        Error::Sealed,
        Error::AlreadyInitialized,
        Error::NotInitialized,
        Error::UnsealFailed,
        Error::StorageConflict {
            key: "secrets/prod/db/m".into(),
        },
        Error::corrupt("secrets/prod/db/m", "bad postcard"),
        Error::Random,
        Error::InvalidArgument("threshold must be at least 2".into()),
    ];
    for reason in [
        PathError::Empty,
        PathError::EmptySegment,
        PathError::DotSegment,
        PathError::BadCharacter('$'),
        PathError::UpperCase,
        PathError::TooLong { max: 512 },
        PathError::TooDeep { max: 32 },
        PathError::Reserved,
    ] {
        v.push(Error::InvalidPath {
            path: "prod//DB".into(),
            reason,
        });
    }
    for reason in [
        KeyFileError::LoosePermissions { mode: 0o644 },
        KeyFileError::Io("permission denied".into()),
        KeyFileError::BadContent,
        KeyFileError::Exists,
        KeyFileError::WrongOwner {
            uid: 1000,
            expected: 1001,
        },
        KeyFileError::UnsafeDirectory {
            dir: "/tmp".into(),
            mode: 0o1777,
        },
        KeyFileError::TooLarge { limit: 1024 },
    ] {
        v.push(Error::KeyFile {
            path: "/etc/strongroom/root.key".into(),
            reason,
        });
    }
    for kind in [
        ProtectorErrorKind::UnwrapFailed,
        ProtectorErrorKind::WrongPin,
        ProtectorErrorKind::PinLocked,
        ProtectorErrorKind::TokenNotFound,
        ProtectorErrorKind::TokenRemoved,
        ProtectorErrorKind::KeyNotFound,
        ProtectorErrorKind::MechanismUnsupported,
        ProtectorErrorKind::ModuleNotFound,
        ProtectorErrorKind::Config,
        ProtectorErrorKind::Device,
    ] {
        v.push(Error::protector("pkcs11", kind, "CKR_GENERAL_ERROR"));
    }
    for kind in [
        StorageErrorKind::Unavailable,
        StorageErrorKind::Corrupt,
        StorageErrorKind::Rejected,
        StorageErrorKind::UnsupportedVersion,
        StorageErrorKind::Other,
    ] {
        v.push(Error::storage("sqlite", kind, "database is locked"));
    }
    let secret = [
        SecretError::NotFound {
            path: "prod/db".into(),
            version: None,
        },
        SecretError::NotFound {
            path: "prod/db".into(),
            version: Some(3),
        },
        SecretError::VersionDeleted {
            path: "prod/db".into(),
            version: 2,
            deleted_at: t(1_000),
        },
        SecretError::VersionDestroyed {
            path: "prod/db".into(),
            version: 2,
            destroyed_at: t(2_000),
        },
        SecretError::VersionPruned {
            path: "prod/db".into(),
            version: 1,
            oldest: 5,
        },
        SecretError::CasMismatch {
            path: "prod/db".into(),
            expected: 2,
            current: 3,
        },
        SecretError::InvalidMetadata {
            path: "prod/db".into(),
            reason: "max_versions must be at least 1".into(),
        },
        SecretError::Contended {
            path: "prod/db".into(),
            attempts: 16,
        },
    ];
    v.extend(secret.into_iter().map(Error::from));
    let policy = [
        PolicyError::Denied {
            principal: "billing".into(),
            capability: Capability::Read,
            path: "prod/db".into(),
        },
        PolicyError::Parse {
            source_name: "policies/app.toml".into(),
            line: 3,
            column: 7,
            message: "expected a string".into(),
        },
        PolicyError::InvalidPattern {
            pattern: "prod/**/x".into(),
            reason: "'**' must be last".into(),
        },
        PolicyError::UnknownCapability("write".into()),
        PolicyError::UnknownPolicy("admin".into()),
        PolicyError::Io {
            path: "policies/app.toml".into(),
            message: "no such file".into(),
        },
    ];
    v.extend(policy.into_iter().map(Error::from));
    let audit = [
        AuditError::NoSinkAccepted {
            seq: 9,
            failures: vec![
                SinkFailure {
                    sink: "file".into(),
                    timed_out: false,
                    message: "disk full".into(),
                },
                SinkFailure {
                    sink: "remote".into(),
                    timed_out: true,
                    message: "timed out after 2s".into(),
                },
            ],
        },
        AuditError::Sink {
            sink: "file".into(),
            message: "disk full".into(),
        },
        AuditError::ChainBroken {
            seq: 4,
            reason: ChainBreak::BadMac,
        },
        AuditError::ChainBroken {
            seq: 5,
            reason: ChainBreak::UnexpectedSeq {
                expected: 5,
                found: 7,
            },
        },
        AuditError::MalformedRecord("missing field seq".into()),
        AuditError::WeakKey { len: 8 },
        AuditError::NoSinks,
        AuditError::SequenceExhausted,
        AuditError::Io {
            path: "audit.jsonl".into(),
            message: "permission denied".into(),
        },
        AuditError::Encode("unexpected".into()),
    ];
    v.extend(audit.into_iter().map(Error::from));
    let lease = [
        LeaseError::NotFound { id: lease_id() },
        LeaseError::InvalidId {
            text: "lease_xyz".into(),
        },
        LeaseError::NotRenewable { id: lease_id() },
        LeaseError::Expired {
            id: lease_id(),
            expired_at: t(3_000),
        },
        LeaseError::NotActive {
            id: lease_id(),
            state: LeaseState::Revoking {
                attempts: 2,
                next_try: t(4_000),
            },
        },
        LeaseError::QuotaExceeded {
            scope: QuotaScope::Total,
            limit: 10,
            count: 10,
        },
        LeaseError::QuotaExceeded {
            scope: QuotaScope::Prefix("db/".into()),
            limit: 2,
            count: 2,
        },
        LeaseError::NoRevoker {
            engine: "postgres".into(),
        },
        LeaseError::InvalidTtl {
            reason: "ttl must be positive",
        },
        LeaseError::InvalidEngine {
            engine: "Bad Engine".into(),
        },
        LeaseError::RevocationDeferred {
            id: lease_id(),
            attempts: 1,
            next_try: t(5_000),
            reason: "connection refused".into(),
        },
        LeaseError::Irrevocable {
            id: lease_id(),
            attempts: 8,
            reason: "connection refused".into(),
        },
        LeaseError::RevokerFailed {
            engine: "postgres".into(),
            reason: "role in use".into(),
        },
    ];
    v.extend(lease.into_iter().map(Error::from));
    let rotation = [
        RotationError::InvalidName {
            name: "Bad Name".into(),
            reason: "use a-z, 0-9, '-', '_'",
        },
        RotationError::Busy {
            credential: "db-admin".into(),
            owner: "host-a/1234".into(),
            until: t(6_000),
        },
        RotationError::LostLock {
            credential: "db-admin".into(),
        },
        RotationError::StepFailed {
            credential: "db-admin".into(),
            version: 4,
            step: RotationStep::SetInTarget,
            attempts: 3,
            message: "connection refused".into(),
        },
        RotationError::RolledBack {
            credential: "db-admin".into(),
            version: 4,
            step: RotationStep::TestPending,
            message: "login failed".into(),
        },
        RotationError::AlreadyInitialized {
            credential: "db-admin".into(),
        },
        RotationError::CorruptState {
            credential: "db-admin".into(),
            reason: "bad json".into(),
        },
        RotationError::AuditRefused {
            credential: "db-admin".into(),
            step: RotationStep::Promote,
            message: "no sink accepted".into(),
        },
    ];
    v.extend(rotation.into_iter().map(Error::from));
    let shamir = [
        ShamirError::InvalidParameters {
            reason: "threshold above share count".into(),
        },
        ShamirError::NoShares,
        ShamirError::TooFewShares {
            needed: 3,
            given: 2,
        },
        ShamirError::DuplicateShare {
            x: 2,
            first: 0,
            second: 1,
            needed: 3,
        },
        ShamirError::DifferentSplits {
            index: 1,
            expected: "00ff".into(),
            found: "aa11".into(),
        },
        ShamirError::CorruptShare {
            index: Some(1),
            reason: "checksum mismatch",
        },
        ShamirError::CorruptShare {
            index: None,
            reason: "checksum mismatch",
        },
    ];
    v.extend(shamir.into_iter().map(Error::from));
    let key = || "release/artifacts".to_owned();
    let signing = [
        SigningError::UnknownKey { key: key() },
        SigningError::KeyExists { key: key() },
        SigningError::UnknownVersion {
            key: key(),
            version: 7,
            latest: 3,
        },
        SigningError::VersionRetired {
            key: key(),
            version: 1,
            min_verify_version: 2,
        },
        SigningError::WrongKeyType {
            key: key(),
            key_type: KeyType::Ed25519,
            operation: "eth_sign_personal_message",
            needed: KeyType::Secp256k1,
        },
        SigningError::RateLimited {
            key: key(),
            retry_after: std::time::Duration::from_millis(250),
        },
        SigningError::BadSignatureEncoding {
            reason: "the version is not a number",
        },
        SigningError::Conflict { key: key() },
        SigningError::CorruptKey {
            key: key(),
            version: 2,
            reason: "its sealed record failed authentication",
        },
        SigningError::CorruptRecord {
            key: key(),
            reason: "inconsistent versions".into(),
        },
        SigningError::InvalidMinVerifyVersion {
            key: key(),
            requested: 1,
            current: 2,
            latest: 3,
        },
        SigningError::InvalidRateLimit {
            reason: "burst must be at least 1",
        },
        SigningError::InvalidChainId { chain_id: 0 },
    ];
    v.extend(signing.into_iter().map(Error::from));
    v.push(Error::from(strongroom::declarative::NamingViolation {
        path: "dev/pay/db".into(),
        reason: "rule \"services\": env must be one of prod, staging".into(),
    }));
    use strongroom::approvals::ApprovalError as V;
    let id = || "0123456789abcdef0123456789abcdef".to_owned();
    let approvals = vec![
        V::Required {
            operation: "destroy",
            path: "prod/db".into(),
        },
        V::NotFound { id: id() },
        V::Expired {
            id: id(),
            expired_at: t(5),
        },
        V::Refused {
            id: id(),
            by: "alice".into(),
        },
        V::NotApproved {
            id: id(),
            approvals: 1,
            required: 2,
        },
        V::Used { id: id() },
        V::NotApprover {
            id: id(),
            principal: "mallory".into(),
        },
        V::SelfApproval {
            id: id(),
            principal: "ops".into(),
        },
        V::AlreadyApproved {
            id: id(),
            principal: "alice".into(),
        },
        V::Mismatch {
            id: id(),
            what: "path",
        },
        V::NoGate {
            operation: "destroy",
            path: "dev/db".into(),
        },
        V::InvalidGates {
            line: Some(3),
            reason: "unknown operation".into(),
        },
        V::InvalidGates {
            line: None,
            reason: "at most 1024 gates".into(),
        },
        V::InvalidRequest {
            reason: "give a reason".into(),
        },
        V::Conflict { what: id() },
    ];
    v.extend(approvals.into_iter().map(Error::from));
    v
}

fn is_snake(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.ends_with('_')
        && !s.contains("__")
}

fn is_upper_camel(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn matches_type(value: &FieldValue, ty: FieldType) -> bool {
    matches!(
        (ty, value),
        (FieldType::Str | FieldType::OptStr, FieldValue::Str(_))
            | (FieldType::OptStr | FieldType::OptU64, FieldValue::Null)
            | (FieldType::U64 | FieldType::OptU64, FieldValue::U64(_))
            | (FieldType::Time, FieldValue::Time(_))
            | (FieldType::StrList, FieldValue::StrList(_))
            | (FieldType::BoolList, FieldValue::BoolList(_))
    )
}

fn check_against_table(e: &Error) -> &'static ErrorCode {
    let d = e.details();
    let row = ErrorCode::lookup(d.code)
        .unwrap_or_else(|| panic!("{e:?}: code {} is not in ERROR_CODES", d.code));
    assert_eq!(d.row(), Some(row));
    assert_eq!(e.code(), d.code);
    assert_eq!((d.class, d.parent), (row.class, row.parent), "{e:?}");
    assert_eq!(row.kind, e.kind(), "{e:?}: the table's kind disagrees");
    assert_eq!(d.message, e.to_string());
    let names: Vec<&str> = d.fields.iter().map(|(n, _)| *n).collect();
    let expected: Vec<&str> = row.fields.iter().map(|f| f.name).collect();
    assert_eq!(names, expected, "{e:?}: field names differ from the table");
    for ((name, value), spec) in d.fields.iter().zip(row.fields) {
        assert!(
            matches_type(value, spec.ty),
            "{e:?}: field {name} is {value:?}, the table says {:?}",
            spec.ty
        );
    }
    row
}

#[test]
fn every_variant_has_a_code_in_the_table_with_its_fields() {
    let mut seen = BTreeSet::new();
    for e in samples() {
        seen.insert(check_against_table(&e).code);
    }
    // The `pki.*` rows are the internal CA's own errors, produced by
    // `strongroom_pki::PkiError::details`; crates/strongroom-pki/tests/
    // error_details.rs checks them against the table the same way.
    let table: BTreeSet<&str> = ERROR_CODES
        .iter()
        .map(|c| c.code)
        .filter(|c| !c.starts_with("pki."))
        .collect();
    let unused: Vec<_> = table.difference(&seen).collect();
    assert!(unused.is_empty(), "codes no sample produced: {unused:?}");
}

#[test]
fn the_table_is_well_formed() {
    let mut codes = BTreeSet::new();
    let mut family_parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut class_parent: BTreeMap<&str, &str> = BTreeMap::new();
    for row in ERROR_CODES {
        assert!(codes.insert(row.code), "duplicate code {}", row.code);
        let parts: Vec<&str> = row.code.split('.').collect();
        assert!(parts.len() <= 2, "{}: at most family.name", row.code);
        assert!(
            parts.iter().all(|p| is_snake(p)),
            "{} is not snake_case",
            row.code
        );
        assert!(is_snake(row.kind), "{}: kind {}", row.code, row.kind);
        assert!(
            is_upper_camel(row.class),
            "{}: class {}",
            row.code,
            row.class
        );
        assert!(
            is_upper_camel(row.parent),
            "{}: parent {}",
            row.code,
            row.parent
        );
        assert_ne!(row.class, row.parent, "{}", row.code);
        assert_ne!(row.class, ROOT_CLASS, "{}: too vague a class", row.code);
        // A class always has the same parent.
        assert_eq!(
            *class_parent.entry(row.class).or_insert(row.parent),
            row.parent,
            "class {} has two parents",
            row.class
        );
        // The codes of a family share one parent.
        if let [family, _] = parts[..] {
            assert_eq!(
                *family_parent.entry(family).or_insert(row.parent),
                row.parent,
                "family {family} has two parents"
            );
        }
        assert!(!row.meaning.is_empty() && !row.meaning.contains('|'));
        assert!(
            row.meaning.starts_with(|c: char| !c.is_ascii_uppercase()),
            "{}: meanings are lower-case like the messages",
            row.code
        );
        let mut names = BTreeSet::new();
        for f in row.fields {
            assert!(is_snake(f.name), "{}: field {}", row.code, f.name);
            assert!(names.insert(f.name), "{}: field {} twice", row.code, f.name);
            assert!(
                !RESERVED_FIELD_NAMES.contains(&f.name),
                "{}: field {} clashes with a host error attribute",
                row.code,
                f.name
            );
        }
    }
    // Parents are the root or a family class deriving from it, and no
    // code's class is also some family's base class.
    let parents: BTreeSet<&str> = ERROR_CODES.iter().map(|c| c.parent).collect();
    for p in &parents {
        assert!(
            !class_parent.contains_key(p),
            "{p} is both a class and a base"
        );
    }
    assert!(parents.contains(ROOT_CLASS));
}

#[test]
fn fields_carry_the_values() {
    let e = Error::InvalidKeyTransition {
        version: 2,
        from: KeyState::Primary,
        to: KeyState::Destroyed,
    };
    let d = e.details();
    assert_eq!(
        d.field("from_state"),
        Some(&FieldValue::Str("primary".into()))
    );
    assert_eq!(
        d.field("to_state"),
        Some(&FieldValue::Str("destroyed".into()))
    );
    let d = Error::from(SecretError::NotFound {
        path: "prod/db".into(),
        version: None,
    })
    .details();
    assert_eq!(d.field("version"), Some(&FieldValue::Null));
    let d = Error::from(LeaseError::QuotaExceeded {
        scope: QuotaScope::Prefix("db/".into()),
        limit: 2,
        count: 3,
    })
    .details();
    assert_eq!(d.field("scope"), Some(&FieldValue::Str("prefix".into())));
    assert_eq!(d.field("prefix"), Some(&FieldValue::Str("db/".into())));
    assert_eq!(d.field("count"), Some(&FieldValue::U64(3)));
    let d = Error::protector("pkcs11", ProtectorErrorKind::WrongPin, "CKR_PIN_INCORRECT").details();
    assert_eq!((d.code, d.class), ("protector.wrong_pin", "ProtectorError"));
    let d = Error::from(SecretError::VersionDeleted {
        path: "prod/db".into(),
        version: 2,
        deleted_at: t(1_234),
    })
    .details();
    assert_eq!(d.field("deleted_at"), Some(&FieldValue::Time(t(1_234))));
    assert_eq!(d.field("nonexistent"), None);
}

/// Everything a binding would hand to the host: message and field values.
fn host_view(d: &ErrorDetails) -> String {
    format!("{} {} {:?}", d.code, d.message, d.fields)
}

#[test]
fn details_of_a_rejected_key_file_do_not_quote_its_content() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.path().join("root.key");
    let content = "hunter2-correct-horse-battery-staple";
    std::fs::write(&path, format!("{content}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = SoftwareProtector::from_key_file(&path).unwrap_err();
    let d = e.details();
    assert_eq!(d.code, "key_file.bad_content");
    assert!(!host_view(&d).contains("hunter2"), "{d:?}");
}

#[test]
fn details_of_a_mistyped_share_do_not_quote_it_or_the_secret() {
    let secret = b"TOP-SECRET-ROOT-KEY-MATERIAL-001";
    let shares = shamir::split(&SecretBytes::new(secret.to_vec()), 2, 3).unwrap();
    let text = shares[0].to_text();
    let good = text.expose_secret();
    // Change one character in the middle so the checksum fails.
    let mid = good.len() / 2;
    let swapped = if &good[mid..=mid] == "a" { "b" } else { "a" };
    let bad = format!("{}{}{}", &good[..mid], swapped, &good[mid + 1..]);
    let e = Share::parse(&bad).unwrap_err();
    let d = e.details();
    assert!(d.code.starts_with("shamir."), "{d:?}");
    let view = host_view(&d);
    assert!(!view.contains(&bad) && !view.contains(good), "{d:?}");
    assert!(!view.contains("TOP-SECRET"), "{d:?}");
    // Nor does combining too few real shares.
    let e = shamir::combine(&shares[..1]).unwrap_err();
    let d = e.details();
    assert_eq!(d.code, "shamir.too_few_shares");
    assert!(!host_view(&d).contains("TOP-SECRET"));
}

const DOC: &str = "../../docs/ERRORS.md";

/// `docs/ERRORS.md`, rendered from the table.
fn render_doc() -> String {
    let mut out = String::from(
        "# Error codes\n\
         \n\
         <!-- Generated from `strongroom::ERROR_CODES` by\n\
         crates/strongroom/tests/error_details.rs; do not edit by hand. After\n\
         changing the table run\n\
         `STRONGROOM_BLESS=1 cargo test -p strongroom --test error_details`. -->\n\
         \n\
         Every error Strongroom returns describes itself through\n\
         `Error::details()`: a stable **code**, the host **class** a language\n\
         binding raises for it (and that class's **parent**), the message, and\n\
         the error's public facts as named **fields**. Bindings convert these\n\
         mechanically; none maps variants by hand. No field ever holds a secret.\n\
         \n\
         - **Codes** are `snake_case`. Errors of the store itself have flat\n\
         \x20 codes (`sealed`, `decryption_failed`); errors of a family are\n\
         \x20 `family.name` (`secret.cas_mismatch`, `lease.expired`,\n\
         \x20 `protector.wrong_pin`, `key_file.loose_permissions`). A code never\n\
         \x20 changes meaning once released; new errors get new codes.\n\
         - **Classes** are `UpperCamelCase`. Every class derives from its\n\
         \x20 parent; every parent other than `StrongroomError` (`SecretError`,\n\
         \x20 `PolicyError`, `AuditError`, `LeaseError`, `RotationError`,\n\
         \x20 `ShamirError`) derives from `StrongroomError`. The `path.*`,\n\
         \x20 `key_file.*`, `protector.*` and `storage.*` codes share one class\n\
         \x20 per family; the code tells them apart.\n\
         - **Fields** are `snake_case` and never `name`, `message`, `code`,\n\
         \x20 `stack`, `cause` or `args`. Types: `string`, `u64`, `timestamp`\n\
         \x20 (milliseconds since the Unix epoch in the core; a date in the host),\n\
         \x20 `list<string>`, `list<bool>`; a `?` marks a field that may be null.\n\
         - **kind** is the coarser `Error::kind()`, the code audit records carry.\n\
         \n\
         | code | class | parent | fields | kind | meaning |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in ERROR_CODES {
        let fields = if row.fields.is_empty() {
            "-".to_owned()
        } else {
            row.fields
                .iter()
                .map(|f| format!("`{}: {}`", f.name, f.ty.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} | `{}` | {} |\n",
            row.code, row.class, row.parent, fields, row.kind, row.meaning
        ));
    }
    out
}

#[test]
fn docs_errors_md_lists_exactly_the_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let rendered = render_doc();
    if std::env::var_os("STRONGROOM_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let doc = std::fs::read_to_string(&path).unwrap();
    // The codes the doc lists, in order, are the table's.
    let listed: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let table: Vec<&str> = ERROR_CODES.iter().map(|c| c.code).collect();
    assert_eq!(
        listed, table,
        "docs/ERRORS.md lists other codes than ERROR_CODES"
    );
    assert!(
        doc == rendered,
        "docs/ERRORS.md is out of date; run STRONGROOM_BLESS=1 cargo test -p strongroom --test error_details"
    );
}
