//! `PkiError::details` against the core's one error table,
//! `strongroom::ERROR_CODES`, checked exactly as the core's
//! `crates/strongroom/tests/error_details.rs` checks `Error::details`: every
//! variant has a code in the table with the table's class, parent, kind and
//! fields, and every `pki.*` row is produced by some variant (the core's
//! test leaves the `pki.*` rows to this one).

use std::collections::BTreeSet;
use std::time::Duration;

use strongroom::clock::Timestamp;
use strongroom::{ERROR_CODES, ErrorCode, FieldType, FieldValue, RESERVED_FIELD_NAMES};
use strongroom_pki::{KeyType, PkiError, Usage};

/// One error of every variant of the crate.
fn samples() -> Vec<PkiError> {
    vec![
        PkiError::Core(strongroom::Error::Sealed),
        PkiError::InvalidName {
            what: "role",
            name: "Web Servers".into(),
        },
        PkiError::CaExists {
            mount: "pki".into(),
        },
        PkiError::UnknownCa {
            mount: "pki".into(),
        },
        PkiError::UnknownRole {
            mount: "pki".into(),
            role: "web".into(),
        },
        PkiError::InvalidRole {
            reason: "allowed_domains is empty".into(),
        },
        PkiError::NameNotAllowed {
            role: "web".into(),
            name: "evil.example.org".into(),
            reason: "not under an allowed domain",
        },
        PkiError::TtlOverMax {
            role: "web".into(),
            requested: Duration::from_secs(7200),
            max: Duration::from_secs(3600),
        },
        PkiError::OutlivesCa {
            requested: Timestamp::from_millis(2_000_000),
            ca_not_after: Timestamp::from_millis(1_000_000),
        },
        PkiError::KeyTypeNotAllowed {
            role: "web".into(),
            requested: KeyType::EcdsaP256,
            allowed: "ed25519".into(),
        },
        PkiError::UsageNotAllowed {
            role: "web".into(),
            requested: Usage::Client,
        },
        PkiError::InvalidRequest {
            reason: "no names".into(),
        },
        PkiError::UnknownCertificate {
            mount: "pki".into(),
            serial: "0a1b".into(),
        },
        PkiError::BadRecord {
            key: "pki/pki/ca".into(),
            reason: "authentication failed".into(),
        },
        PkiError::Certificate("bad key".into()),
        PkiError::Tls("no certificates".into()),
        PkiError::Contended {
            key: "pki/pki/crl".into(),
            attempts: 16,
        },
    ]
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

fn check_against_table(e: &PkiError) -> &'static ErrorCode {
    let d = e.details();
    let row = ErrorCode::lookup(d.code)
        .unwrap_or_else(|| panic!("{e:?}: code {} is not in ERROR_CODES", d.code));
    assert_eq!(d.row(), Some(row));
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
        assert!(!RESERVED_FIELD_NAMES.contains(name), "{e:?}: field {name}");
    }
    row
}

#[test]
fn every_variant_has_a_pki_code_in_the_table_with_its_fields() {
    let mut seen = BTreeSet::new();
    for e in samples() {
        let row = check_against_table(&e);
        if matches!(e, PkiError::Core(_)) {
            assert!(!row.code.starts_with("pki."), "{e:?}");
        } else {
            assert!(row.code.starts_with("pki."), "{e:?}");
            assert_eq!(row.parent, "PkiError", "{e:?}");
        }
        seen.insert(row.code);
    }
    let table: BTreeSet<&str> = ERROR_CODES
        .iter()
        .map(|c| c.code)
        .filter(|c| c.starts_with("pki."))
        .collect();
    let unused: Vec<_> = table.difference(&seen).collect();
    assert!(
        unused.is_empty(),
        "pki codes no sample produced: {unused:?}"
    );
}

#[test]
fn core_errors_keep_the_core_details() {
    let core = strongroom::Error::StorageConflict {
        key: "pki/pki/ca".into(),
    };
    let expected = core.details();
    assert_eq!(PkiError::Core(core).details(), expected);
}

#[test]
fn fields_carry_the_values() {
    let d = PkiError::TtlOverMax {
        role: "web".into(),
        requested: Duration::from_millis(7_200_500),
        max: Duration::from_secs(3600),
    }
    .details();
    assert_eq!(d.code, "pki.ttl_over_max");
    assert_eq!(d.field("requested_secs"), Some(&FieldValue::U64(7200)));
    assert_eq!(d.field("max_secs"), Some(&FieldValue::U64(3600)));
    let d = PkiError::NameNotAllowed {
        role: "web".into(),
        name: "evil.example.org".into(),
        reason: "not under an allowed domain",
    }
    .details();
    assert_eq!(
        d.field("requested_name"),
        Some(&FieldValue::Str("evil.example.org".into()))
    );
    let d = PkiError::KeyTypeNotAllowed {
        role: "web".into(),
        requested: KeyType::EcdsaP256,
        allowed: "ed25519".into(),
    }
    .details();
    assert_eq!(
        d.field("requested"),
        Some(&FieldValue::Str(KeyType::EcdsaP256.to_string()))
    );
    let d = PkiError::OutlivesCa {
        requested: Timestamp::from_millis(2_000_000),
        ca_not_after: Timestamp::from_millis(1_000_000),
    }
    .details();
    assert_eq!(
        d.field("ca_not_after"),
        Some(&FieldValue::Time(Timestamp::from_millis(1_000_000)))
    );
}
