//! The gate's checks and records (the handles are tested through the public
//! API in `tests/authorized.rs`).

use std::sync::Arc;

use super::gate;
use crate::audit::{MemorySink, Operation, Outcome};
use crate::path::SecretPath;
use crate::policy::{Capability, Policy, Principal, Rule, SystemPath};
use crate::protector::SoftwareProtector;
use crate::storage::MemoryStorage;
use crate::{Error, Handle, Options, SecretBytes, Strongroom};

async fn handle(rules: Vec<Rule>) -> (Handle, Arc<MemorySink>) {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![3; 32])).unwrap();
    let sr = Strongroom::init(
        Arc::new(MemoryStorage::new()),
        &protector,
        Options::default(),
    )
    .await
    .unwrap();
    let sink = Arc::new(MemorySink::new());
    let log = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let principal = Principal::new("p", [&Policy::new("p", rules)]);
    (sr.as_principal(principal, log), sink)
}

#[tokio::test]
async fn every_capability_is_checked_and_one_denial_recorded() {
    let (h, sink) = handle(vec![Rule::allow("a/*", [Capability::Lease]).unwrap()]).await;
    let path = SecretPath::parse("a/b").unwrap();
    let event = gate::event(&h, Operation::LeaseRevokeForce)
        .unwrap()
        .with_path("a/b");
    gate::check(&h, &event, &path, &[Capability::Lease])
        .await
        .unwrap();
    assert!(sink.lines().is_empty(), "an allowed check records nothing");
    let err = gate::check(&h, &event, &path, &[Capability::Lease, Capability::Sudo])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sudo"), "{err}");
    let recs = sink.records().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].event.outcome, Outcome::Denied);
    assert_eq!(recs[0].event.path.as_deref(), Some("a/b"));
    assert_eq!(recs[0].event.principal, "p");
}

#[tokio::test]
async fn invalid_paths_and_reserved_paths() {
    let (h, sink) = handle(vec![
        Rule::allow("sys/keyring", [Capability::Sudo]).unwrap(),
    ])
    .await;
    let event = gate::event(&h, Operation::LeaseIssue).unwrap();
    // a secret path may not name a reserved path
    let err = gate::admit(&h, &event, "sys/keyring", &[Capability::Lease])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
    gate::admit_system(&h, &event, SystemPath::Keyring, Capability::Sudo)
        .await
        .unwrap();
    assert!(
        gate::admit_system(&h, &event, SystemPath::Audit, Capability::Read)
            .await
            .is_err()
    );
    let outcomes: Vec<Outcome> = sink
        .records()
        .unwrap()
        .into_iter()
        .map(|r| r.event.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Error {
                kind: "invalid_path".into()
            },
            Outcome::Denied
        ]
    );
}
