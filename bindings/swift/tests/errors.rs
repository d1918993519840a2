//! The mapping of core errors onto the FFI's `StrongroomError`: the right
//! case, its fields, and the core's stable code on every case.

use std::sync::Arc;

use strongroom::Error;
use strongroom::clock::Timestamp;
use strongroom::lease::{LeaseError, LeaseId};
use strongroom::secrets::SecretError;
use strongroom_ffi::{
    LeaseManager, LeaseOptions, SoftwareProtector, Storage, Strongroom, StrongroomError as E,
};

fn code_of(e: &E) -> &str {
    match e {
        E::DecryptionFailed { code, .. }
        | E::NotFound { code, .. }
        | E::VersionDestroyed { code, .. }
        | E::CasConflict { code, .. }
        | E::SecretStore { code, .. }
        | E::LeaseInvalidId { code, .. }
        | E::LeaseRevokerFailed { code, .. }
        | E::Lease { code, .. }
        | E::InvalidArgument { code, .. } => code,
        other => panic!("unexpected case {other:?}"),
    }
}

#[test]
fn cases_fields_and_codes() {
    let cases: Vec<Error> = vec![
        Error::DecryptionFailed,
        Error::Secret(SecretError::NotFound {
            path: "a/b".into(),
            version: Some(3),
        }),
        Error::Secret(SecretError::VersionPruned {
            path: "a/b".into(),
            version: 1,
            oldest: 4,
        }),
        Error::Secret(SecretError::CasMismatch {
            path: "a/b".into(),
            expected: 1,
            current: 2,
        }),
        Error::Secret(SecretError::Contended {
            path: "a/b".into(),
            attempts: 9,
        }),
        Error::Lease(LeaseError::InvalidId { text: "x".into() }),
        Error::Lease(LeaseError::RevokerFailed {
            engine: "e".into(),
            reason: "r".into(),
        }),
        Error::Lease(LeaseError::NoRevoker { engine: "e".into() }),
        Error::InvalidArgument("bad".into()),
    ];
    for core in cases {
        let (kind, message) = (core.kind(), core.to_string());
        let ffi = E::from(core);
        assert_eq!(code_of(&ffi), kind, "{ffi:?}");
        assert_eq!(ffi.to_string(), message);
    }

    let e = E::from(Error::Secret(SecretError::VersionPruned {
        path: "a/b".into(),
        version: 1,
        oldest: 4,
    }));
    assert!(matches!(
        e,
        E::VersionDestroyed { ref path, version: 1, destroyed_ms: None, ref code, .. }
            if path == "a/b" && code == "version_pruned"
    ));
    let e = E::from(Error::Lease(LeaseError::Expired {
        id: "lease_0123456789abcdef0123456789abcdef"
            .parse::<LeaseId>()
            .unwrap(),
        expired_at: Timestamp::from_millis(42),
    }));
    assert!(matches!(
        e,
        E::LeaseExpired { ref id, expired_ms: 42, ref code, .. }
            if id == "lease_0123456789abcdef0123456789abcdef" && code == "lease_expired"
    ));
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
    assert!(matches!(e, E::LeaseInvalidId { ref text, .. } if text == "nope"));
    let e = mgr
        .issue("a/b".into(), "none".into(), 1000, 2000, true, None)
        .await
        .unwrap_err();
    assert!(matches!(e, E::Lease { ref code, .. } if code == "lease_no_revoker"));
    let _: Arc<LeaseManager> = mgr;
}
