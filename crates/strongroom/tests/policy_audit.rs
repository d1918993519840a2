//! The policy check -> audit append -> operation flow through the public
//! API, as the principal-bound store handle will run it.

use std::sync::Arc;

use strongroom::audit::{
    AuditEvent, AuditLog, FsyncPolicy, Inventory, JsonlFileSink, MemorySink, Operation, Outcome,
    verify, verify_jsonl_file,
};
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::path::SecretPath;
use strongroom::policy::{Capability, PolicyError, PolicyRegistry};
use strongroom::{Error, SecretBytes};

const CANARY: &str = "canary-e1d2c3b4-do-not-log";

/// What a handle does for one request: check, audit, then act. Returns the
/// value only if the policy allowed it and the audit record was accepted.
async fn read(
    log: &AuditLog,
    who: &strongroom::policy::Principal,
    raw_path: &str,
    request_id: &str,
    stored: &str,
) -> Result<String, Error> {
    let event = AuditEvent::new(who.name(), Operation::Read, request_id).with_path(raw_path);
    let path = match SecretPath::parse(raw_path) {
        Ok(p) => p,
        Err(e) => {
            log.append(event.with_outcome(Outcome::Error {
                kind: "invalid_path".into(),
            }))
            .await?;
            return Err(e);
        }
    };
    if let Err(denied) = who.authorize(Capability::Read, &path) {
        log.append(event.with_outcome(Outcome::Denied)).await?;
        return Err(denied.into());
    }
    log.append(
        event
            .with_version(1)
            .with_field("value", log.hmac(stored.as_bytes())),
    )
    .await?;
    Ok(stored.to_owned())
}

#[tokio::test]
async fn checked_and_audited_reads() {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("payment-svc.toml");
    std::fs::write(
        &policy_file,
        r#"name = "payment-svc"

[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["read", "list"]

[[path]]
pattern = "prod/payment-svc/admin/*"
capabilities = ["deny"]
"#,
    )
    .unwrap();
    let mut registry = PolicyRegistry::new();
    assert_eq!(
        registry.load_toml_file(&policy_file).unwrap(),
        "payment-svc"
    );
    let svc = registry.principal("payment-svc", &["payment-svc"]).unwrap();

    let key = SecretBytes::random(32).unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let file = Arc::new(JsonlFileSink::open(&audit_path, FsyncPolicy::EveryRecord).unwrap());
    let mem = Arc::new(MemorySink::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let log = AuditLog::new(key.clone(), vec![file, mem.clone()], clock).unwrap();

    let mut errors = Vec::new();
    assert_eq!(
        read(&log, &svc, "prod/payment-svc/postgres", "r1", CANARY)
            .await
            .unwrap(),
        CANARY
    );
    // Denied by the deny rule, by default deny, and bypass attempts.
    for (i, path) in [
        "prod/payment-svc/admin/root",
        "prod/billing/postgres",
        "prod/payment-svc/../billing/postgres",
        "Prod/payment-svc/postgres",
        "prod/payment-svc/postgres ",
        "prod/payment-svc/%2e%2e/billing",
        "prod/payment-svc/p\u{043e}stgres",
    ]
    .into_iter()
    .enumerate()
    {
        let err = read(&log, &svc, path, &format!("d{i}"), CANARY)
            .await
            .unwrap_err();
        errors.push(err.to_string());
        match (i, &err) {
            (0 | 1, Error::Policy(PolicyError::Denied { capability, .. })) => {
                assert_eq!(*capability, Capability::Read)
            }
            (2.., Error::InvalidPath { .. }) => {}
            _ => panic!("{path}: {err:?}"),
        }
    }

    // Nothing anywhere holds the canary; the HMAC lets an auditor find it.
    let file_text = std::fs::read_to_string(&audit_path).unwrap();
    let needle = log.hmac(CANARY.as_bytes());
    assert!(!file_text.contains(CANARY));
    assert!(!mem.lines().join("\n").contains(CANARY));
    assert!(errors.iter().all(|e| !e.contains(CANARY)), "{errors:?}");
    assert_eq!(file_text.matches(needle.as_str()).count(), 1);

    // Both copies verify against the head.
    let head = log.head().await;
    assert_eq!(head.seq, 8);
    verify_jsonl_file(&audit_path, &key, None, Some(&head)).unwrap();
    verify(mem.lines(), &key, None, Some(&head)).unwrap();

    let records = mem.records().unwrap();
    let outcomes: Vec<&Outcome> = records.iter().map(|r| &r.event.outcome).collect();
    assert_eq!(outcomes[0], &Outcome::Allowed);
    assert_eq!(outcomes[1], &Outcome::Denied);
    assert_eq!(outcomes[2], &Outcome::Denied);
    assert!(
        outcomes[3..]
            .iter()
            .all(|o| matches!(o, Outcome::Error { kind } if kind == "invalid_path"))
    );
    let inv = Inventory::from_records(&records);
    let readers = inv.readers("prod/payment-svc/postgres");
    assert_eq!(readers.len(), 1);
    assert_eq!(readers[0].principal, "payment-svc");
    assert_eq!(inv.touched_by("payment-svc").len(), 8);
}
