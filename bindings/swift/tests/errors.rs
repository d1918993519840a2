//! The FFI's `StrongroomError` against the core's error table: its cases
//! are exactly the table's classes (plus the binding-only `Other`), and
//! core errors convert to the table's class, code and fields.

use std::collections::BTreeSet;
use std::sync::Arc;

use strongroom::clock::Timestamp;
use strongroom::lease::{LeaseError, LeaseId};
use strongroom::secrets::SecretError;
use strongroom::{ERROR_CODES, Error};
use strongroom_ffi::{
    BINDING_ONLY_CASES, FieldValue, LeaseManager, LeaseOptions, SoftwareProtector, Storage,
    Strongroom, StrongroomError as E, error_codes,
};

#[test]
fn cases_are_the_tables_classes() {
    let classes: BTreeSet<&str> = ERROR_CODES.iter().map(|r| r.class).collect();
    let cases: BTreeSet<&str> = E::CASES.iter().copied().collect();
    assert_eq!(cases.len(), E::CASES.len(), "a case is declared twice");
    let binding_only: BTreeSet<&str> = BINDING_ONLY_CASES.iter().copied().collect();
    assert!(binding_only.is_disjoint(&classes), "{binding_only:?}");
    let expected: BTreeSet<&str> = classes.union(&binding_only).copied().collect();
    assert_eq!(
        cases, expected,
        "StrongroomError's cases differ from ERROR_CODES' classes: \
         add or remove cases in bindings/swift/src/errors.rs"
    );
}

#[test]
fn error_codes_is_the_table() {
    let rows = error_codes();
    assert_eq!(rows.len(), ERROR_CODES.len());
    for (row, core) in rows.iter().zip(ERROR_CODES) {
        assert_eq!(row.code, core.code);
        assert_eq!(row.class_name, core.class);
        assert_eq!(row.parent, core.parent);
        assert_eq!(row.kind, core.kind);
        let names: Vec<&str> = row.fields.iter().map(|f| f.name.as_str()).collect();
        let core_names: Vec<&str> = core.fields.iter().map(|f| f.name).collect();
        assert_eq!(names, core_names, "{}", core.code);
    }
}

fn check(core: Error) -> E {
    let d = core.details();
    let ffi = E::from(core);
    assert_eq!(ffi.class(), d.class, "{ffi:?}");
    assert_eq!(ffi.code(), d.code);
    assert_eq!(ffi.to_string(), d.message);
    let names: BTreeSet<&str> = ffi.fields().keys().map(String::as_str).collect();
    let row = d.row().expect("code in the table");
    let table: BTreeSet<&str> = row.fields.iter().map(|f| f.name).collect();
    assert_eq!(names, table, "{}", d.code);
    ffi
}

#[test]
fn core_errors_convert_to_the_tables_class_code_and_fields() {
    check(Error::DecryptionFailed);
    check(Error::Random);
    check(Error::InvalidArgument("bad".into()));
    check(Error::Secret(SecretError::Contended {
        path: "a/b".into(),
        attempts: 9,
    }));
    check(Error::Lease(LeaseError::InvalidId { text: "x".into() }));
    check(Error::Lease(LeaseError::NoRevoker { engine: "e".into() }));

    let e = check(Error::Secret(SecretError::NotFound {
        path: "a/b".into(),
        version: None,
    }));
    assert!(matches!(e, E::SecretNotFound { ref code, .. } if code == "secret.not_found"));
    assert_eq!(e.fields()["version"], FieldValue::Null);

    let e = check(Error::Secret(SecretError::VersionPruned {
        path: "a/b".into(),
        version: 1,
        oldest: 4,
    }));
    assert!(matches!(e, E::SecretVersionPruned { .. }));
    assert_eq!(e.fields()["oldest"], FieldValue::U64 { value: 4 });

    let e = check(Error::Secret(SecretError::CasMismatch {
        path: "a/b".into(),
        expected: 1,
        current: 2,
    }));
    assert!(matches!(e, E::SecretCasMismatch { .. }));
    assert_eq!(
        e.fields()["path"],
        FieldValue::Str {
            value: "a/b".into()
        }
    );

    let e = check(Error::Lease(LeaseError::Expired {
        id: "lease_0123456789abcdef0123456789abcdef"
            .parse::<LeaseId>()
            .unwrap(),
        expired_at: Timestamp::from_millis(42),
    }));
    assert!(matches!(e, E::LeaseExpired { ref code, .. } if code == "lease.expired"));
    assert_eq!(e.fields()["expired_at"], FieldValue::Time { ms: 42 });
}

#[tokio::test]
async fn lease_manager_from_rust() {
    let protector = SoftwareProtector::from_key(vec![7; 32]).unwrap();
    let store = Strongroom::create(Storage::memory(), protector)
        .await
        .unwrap();
    let mgr = LeaseManager::new(
        store,
        None,
        Some(LeaseOptions {
            max_leases: Some(1),
            max_revoke_attempts: None,
            revoke_timeout_ms: None,
        }),
    )
    .unwrap();
    let e = mgr.lookup("nope".into()).await.unwrap_err();
    assert!(matches!(e, E::LeaseInvalidId { .. }));
    assert_eq!(
        e.fields()["text"],
        FieldValue::Str {
            value: "nope".into()
        }
    );
    let e = mgr
        .issue("a/b".into(), "none".into(), 1000, 2000, true, None)
        .await
        .unwrap_err();
    assert!(matches!(e, E::LeaseNoRevoker { ref code, .. } if code == "lease.no_revoker"));
    let _: Arc<LeaseManager> = mgr;
}
