//! The principal-bound handle: policy checks, bypass attempts, audit of every
//! operation, fail-closed behaviour, tamper detection, restarts, inventory.

#[path = "tracing_capture/mod.rs"]
mod tracing_capture;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strongroom::audit::{
    AuditError, AuditLog, AuditRecord, AuditSink, ChainBreak, FsyncPolicy, Inventory,
    JsonlFileSink, MemorySink, Operation, Outcome, TracingSink, verify, verify_jsonl_file,
};
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::handle::{AUDIT_HEAD_RECORD, VALUE_HMAC_FIELD};
use strongroom::policy::{Capability, Policy, PolicyError, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::secrets::{MetadataPatch, SecretError};
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Error, Handle, Options, SecretBytes, Strongroom};
use tracing_capture::Capture;

const CANARY: &str = "canary-7f3e9d1c-never-log-me";
const CANARY2: &str = "canary-2-a8b7c6d5-never-log-me";

async fn store() -> (Door, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let sr = store_on(storage, clock.clone(), true).await;
    (sr, clock)
}

async fn store_on(storage: DynStorage, clock: Arc<ManualClock>, init: bool) -> Door {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![42; 32])).unwrap();
    let options = Options {
        clock,
        ..Options::default()
    };
    if init {
        Strongroom::init(storage, &protector, options)
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap()
    } else {
        Strongroom::unseal(storage, &protector, options)
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap()
    }
}

fn principal(name: &str, rules: Vec<Rule>) -> Principal {
    Principal::new(name, [&Policy::new(name, rules)])
}

fn allow(pattern: &str, caps: &[Capability]) -> Rule {
    Rule::allow(pattern, caps.iter().copied()).unwrap()
}

fn root() -> Principal {
    principal("root", vec![allow("*", &Capability::ALL)])
}

async fn memory_log(sr: &Door) -> (Arc<AuditLog>, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::new());
    let log = sr.open_audit_log(vec![sink.clone()], None).await.unwrap();
    (Arc::new(log), sink)
}

fn records(sink: &MemorySink) -> Vec<AuditRecord> {
    sink.records().unwrap()
}

/// Fails every write.
#[derive(Debug)]
struct FailingSink;

#[async_trait::async_trait]
impl AuditSink for FailingSink {
    fn name(&self) -> &str {
        "failing"
    }
    async fn write(&self, _r: &AuditRecord, _l: &str) -> Result<(), AuditError> {
        Err(AuditError::Sink {
            sink: "failing".into(),
            message: "disk full".into(),
        })
    }
}

/// Never answers.
#[derive(Debug)]
struct HungSink;

#[async_trait::async_trait]
impl AuditSink for HungSink {
    fn name(&self) -> &str {
        "hung"
    }
    async fn write(&self, _r: &AuditRecord, _l: &str) -> Result<(), AuditError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Accepts records while `budget` lasts, then fails.
#[derive(Debug)]
struct BudgetSink {
    budget: Mutex<u64>,
    inner: MemorySink,
}

impl BudgetSink {
    fn new() -> Self {
        Self {
            budget: Mutex::new(u64::MAX),
            inner: MemorySink::new(),
        }
    }
    fn allow(&self, n: u64) {
        *self.budget.lock().unwrap() = n;
    }
}

#[async_trait::async_trait]
impl AuditSink for BudgetSink {
    fn name(&self) -> &str {
        "budget"
    }
    async fn write(&self, r: &AuditRecord, l: &str) -> Result<(), AuditError> {
        {
            let mut b = self.budget.lock().unwrap();
            if *b == 0 {
                return Err(AuditError::Sink {
                    sink: "budget".into(),
                    message: "refused".into(),
                });
            }
            *b -= 1;
        }
        self.inner.write(r, l).await
    }
}

fn is_denied(r: &Result<impl Sized, Error>) -> bool {
    matches!(r, Err(Error::Policy(PolicyError::Denied { .. })))
}

/// Runs `cap` through the handle on `path`; `Ok(true)` if allowed.
async fn attempt(h: &Handle, cap: Capability, path: &str) -> bool {
    match cap {
        Capability::Read => !is_denied(&h.read(path).await),
        Capability::Create => !is_denied(&h.put(path, b"v", Some(0)).await),
        Capability::Update => !is_denied(&h.put(path, b"v", None).await),
        Capability::Delete => !is_denied(&h.delete(path, &[]).await),
        Capability::List => !is_denied(&h.list(path).await),
        other => panic!("not a store capability: {other}"),
    }
}

#[tokio::test]
async fn precedence_table_through_the_handle() {
    use Capability::*;
    type Row = (
        &'static [(&'static str, &'static [Capability])],
        Capability,
        &'static str,
        bool,
    );
    const DENY: &[Capability] = &[];
    // (rules (an empty capability list means deny), capability, path, allowed)
    let table: &[Row] = &[
        (&[("prod/app/*", &[Read])], Read, "prod/app/db", true),
        (&[("prod/app/*", &[Read])], Read, "prod/app", false),
        (&[("prod/app/*", &[Read])], Update, "prod/app/db", false),
        (
            &[("prod/app/*", &[Read]), ("prod/app/db", &[Update])],
            Read,
            "prod/app/db",
            false,
        ),
        (
            &[("prod/app/*", &[Read]), ("prod/app/db", &[Update])],
            Update,
            "prod/app/db",
            true,
        ),
        (
            &[("prod/*", &[Read]), ("prod/app/*", &[List])],
            Read,
            "prod/app/x",
            false,
        ),
        (
            &[("prod/+/db", &[Read]), ("prod/app/*", &[List])],
            Read,
            "prod/app/db",
            false,
        ),
        (
            &[("prod/+/db", &[Read]), ("+/app/*", &[List])],
            Read,
            "prod/app/db",
            true,
        ),
        (
            &[("prod/+/db", &[Read]), ("prod/+/*", &[List])],
            Read,
            "prod/app/db",
            true,
        ),
        (
            &[("+/+/db", &[Read]), ("+/app/db", &[List])],
            Read,
            "prod/app/db",
            false,
        ),
        (
            &[("prod/*", &[Read]), ("prod/secret/*", DENY)],
            Read,
            "prod/secret/k",
            false,
        ),
        (
            &[("prod/*", DENY), ("prod/app/db", &[Read])],
            Read,
            "prod/app/db",
            false,
        ),
        (&[("prod/*", &[Read])], Read, "staging/db", false),
        (&[("prod/*", &[Create])], Create, "prod/new", true),
        (&[("prod/*", &[Update])], Create, "prod/new", false),
        (&[("prod/*", &[Create])], Update, "prod/app/db", false),
        (&[("prod/*", &[Update])], Update, "prod/app/db", true),
        (&[("prod/*", &[Delete])], Delete, "prod/app/db", true),
        (&[("prod/*", &[Read, List])], Delete, "prod/app/db", false),
        (&[("prod/app", &[List])], List, "prod/app", true),
        (&[("prod/app*", &[List])], List, "prod/app", true),
        (&[("prod/app/*", &[List])], List, "prod/app", false),
        (&[("prod/app", &[Read])], List, "prod/app", false),
    ];
    for (i, (rules, cap, path, allowed)) in table.iter().enumerate() {
        let (sr, _) = store().await;
        sr.secrets()
            .put("prod/app/db", b"seed", None)
            .await
            .unwrap();
        let rules = rules
            .iter()
            .map(|(p, caps)| {
                if caps.is_empty() {
                    Rule::deny(p).unwrap()
                } else {
                    allow(p, caps)
                }
            })
            .collect();
        let (log, sink) = memory_log(&sr).await;
        let h = sr.as_principal(principal("svc", rules), log);
        assert_eq!(
            attempt(&h, *cap, path).await,
            *allowed,
            "row {i}: {cap} {path}"
        );
        let recs = records(&sink);
        let first = recs.first().expect("every attempt is audited");
        assert_eq!(first.event.path.as_deref(), Some(*path), "row {i}");
        assert_eq!(
            first.event.outcome == Outcome::Denied,
            !allowed,
            "row {i}: {recs:?}"
        );
    }
}

#[tokio::test]
async fn bypass_attempts_are_rejected_and_audited() {
    let (sr, _) = store().await;
    sr.secrets()
        .put("prod/app/db", CANARY.as_bytes(), None)
        .await
        .unwrap();
    sr.secrets()
        .put("admin/root", CANARY.as_bytes(), None)
        .await
        .unwrap();
    let (log, sink) = memory_log(&sr).await;
    let h = sr.as_principal(
        principal(
            "svc",
            vec![allow("prod/*", &[Capability::Read, Capability::Update])],
        ),
        log,
    );
    let bypasses = [
        "prod/../admin/root",
        "prod/./app/db",
        "prod//app/db",
        "/prod/app/db",
        "prod/app/db/",
        "Prod/app/db",
        "PROD/APP/DB",
        "prod/app/db ",
        " prod/app/db",
        "prod/app/db\t",
        "prod/app/db\n",
        "prod/%2e%2e/admin/root",
        "prod%2fapp%2fdb",
        "prod/app/d\u{0431}",               // Cyrillic be
        "pr\u{043e}d/app/db",               // Cyrillic o
        "prod/app/db\u{200b}",              // zero-width space
        "prod\u{2215}app\u{2215}db",        // division slash
        "prod/\u{ff0e}\u{ff0e}/admin/root", // full-width dots
        "prod/app/db\0",
        "sys/audit-head",
    ];
    for (i, raw) in bypasses.iter().enumerate() {
        let read = h.read(raw).await;
        assert!(
            matches!(read, Err(Error::InvalidPath { .. })),
            "{raw:?}: {read:?}"
        );
        let put = h.put(raw, b"x", None).await;
        assert!(matches!(put, Err(Error::InvalidPath { .. })), "{raw:?}");
        let recs = records(&sink);
        assert_eq!(recs.len(), 2 * (i + 1), "{raw:?}: one record per attempt");
        for r in &recs[2 * i..] {
            assert_eq!(r.event.path.as_deref(), Some(*raw));
            assert_eq!(
                r.event.outcome,
                Outcome::Error {
                    kind: "invalid_path".into()
                }
            );
            assert!(r.event.version.is_none());
        }
    }
    // nothing was written anywhere by the attempts
    assert_eq!(
        sr.secrets()
            .metadata("prod/app/db")
            .await
            .unwrap()
            .current_version,
        1
    );
    assert!(sr.secrets().list_all("").await.unwrap().len() == 2);
    verify(sink.lines(), &sr.audit_key().unwrap(), None, None).unwrap();
}

#[tokio::test]
async fn default_deny_without_a_matching_rule() {
    let (sr, _) = store().await;
    sr.secrets().put("prod/app/db", b"x", None).await.unwrap();
    let (log, sink) = memory_log(&sr).await;
    let nobody = sr.as_principal(Principal::new("nobody", []), log.clone());
    let elsewhere = sr.as_principal(
        principal("staging-svc", vec![allow("staging/*", &Capability::ALL)]),
        log,
    );
    for h in [&nobody, &elsewhere] {
        assert!(is_denied(&h.read("prod/app/db").await));
        assert!(is_denied(&h.read_version("prod/app/db", 1).await));
        assert!(is_denied(&h.metadata("prod/app/db").await));
        assert!(is_denied(&h.list("prod").await));
        assert!(is_denied(&h.put("prod/app/db", b"y", None).await));
        assert!(is_denied(&h.put("prod/app/new", b"y", Some(0)).await));
        assert!(is_denied(
            &h.update_metadata("prod/app/db", MetadataPatch::new().owner("me"))
                .await
        ));
        assert!(is_denied(&h.delete("prod/app/db", &[]).await));
        assert!(is_denied(&h.undelete("prod/app/db", &[1]).await));
        assert!(is_denied(&h.destroy("prod/app/db", &[1]).await));
        assert!(is_denied(&h.delete_metadata("prod/app/db").await));
    }
    let recs = records(&sink);
    assert_eq!(recs.len(), 22);
    assert!(recs.iter().all(|r| r.event.outcome == Outcome::Denied));
    // the store is untouched
    let m = sr.secrets().metadata("prod/app/db").await.unwrap();
    assert_eq!((m.current_version, m.owner), (1, None));
    assert!(sr.secrets().get("prod/app/new").await.is_err());
}

#[tokio::test]
async fn create_only_and_update_only_principals() {
    let (sr, _) = store().await;
    let (log, sink) = memory_log(&sr).await;
    let creator = sr.as_principal(
        principal("creator", vec![allow("prod/*", &[Capability::Create])]),
        log.clone(),
    );
    let updater = sr.as_principal(
        principal("updater", vec![allow("prod/*", &[Capability::Update])]),
        log,
    );
    assert!(is_denied(&updater.put("prod/a", b"1", None).await));
    assert_eq!(creator.put("prod/a", b"1", None).await.unwrap().version, 1);
    let err = creator.put("prod/a", b"2", None).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Policy(PolicyError::Denied {
                capability: Capability::Update,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(updater.put("prod/a", b"2", None).await.unwrap().version, 2);
    let ops: Vec<(String, Outcome, Option<u64>)> = records(&sink)
        .into_iter()
        .map(|r| (r.event.principal, r.event.outcome, r.event.version))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("updater".into(), Outcome::Denied, None),
            ("creator".into(), Outcome::Allowed, None), // intent
            ("creator".into(), Outcome::Allowed, Some(1)), // result
            ("creator".into(), Outcome::Denied, None),
            ("updater".into(), Outcome::Allowed, None),
            ("updater".into(), Outcome::Allowed, Some(2)),
        ]
    );
}

#[tokio::test]
async fn canary_never_reaches_audit_output_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (sr, _) = store().await;
    let file = dir.path().join("audit.jsonl");
    let mem = Arc::new(MemorySink::new());
    let capture = Capture::default();
    let _installed = capture.install();
    let log = Arc::new(
        sr.open_audit_log(
            vec![
                mem.clone(),
                Arc::new(JsonlFileSink::open(&file, FsyncPolicy::EveryRecord).unwrap()),
                Arc::new(TracingSink),
            ],
            None,
        )
        .await
        .unwrap(),
    );
    let h = sr.as_principal(root(), log.clone());
    let outsider = sr.as_principal(principal("outsider", vec![]), log.clone());
    let p = "prod/payment-svc/postgres";
    let mut texts: Vec<String> = Vec::new();
    let mut note = |r: Result<String, Error>| match r {
        Ok(s) => texts.push(s),
        Err(e) => {
            texts.push(e.to_string());
            texts.push(format!("{e:?}"));
        }
    };

    note(
        h.put(p, CANARY.as_bytes(), Some(0))
            .await
            .map(|v| format!("{v:?}")),
    );
    note(
        h.put(p, CANARY.as_bytes(), Some(0))
            .await
            .map(|v| format!("{v:?}")),
    ); // cas conflict
    note(
        h.put(p, CANARY2.as_bytes(), Some(1))
            .await
            .map(|v| format!("{v:?}")),
    );
    let v = h.read(p).await.unwrap();
    assert_eq!(v.value.expose_secret(), CANARY2.as_bytes());
    note(Ok(format!("{v:?}")));
    let v1 = h.read_version(p, 1).await.unwrap();
    assert_eq!(v1.value.expose_secret(), CANARY.as_bytes());
    note(Ok(format!("{v1:?} {h:?}")));
    note(h.metadata(p).await.map(|m| format!("{m:?}")));
    note(h.list("prod/payment-svc").await.map(|l| format!("{l:?}")));
    note(
        h.update_metadata(p, MetadataPatch::new().owner("payments"))
            .await
            .map(|m| format!("{m:?}")),
    );
    note(h.delete(p, &[1]).await.map(|v| format!("{v:?}")));
    note(h.read_version(p, 1).await.map(|v| format!("{v:?}")));
    note(h.undelete(p, &[1]).await.map(|v| format!("{v:?}")));
    note(h.destroy(p, &[1]).await.map(|v| format!("{v:?}")));
    note(h.read_version(p, 1).await.map(|v| format!("{v:?}")));
    note(outsider.read(p).await.map(|v| format!("{v:?}")));
    note(
        outsider
            .put(p, CANARY.as_bytes(), None)
            .await
            .map(|v| format!("{v:?}")),
    );
    note(
        h.put("prod/../x", CANARY.as_bytes(), None)
            .await
            .map(|v| format!("{v:?}")),
    );
    note(h.delete_metadata(p).await.map(|v| format!("{v:?}")));
    note(h.read(p).await.map(|v| format!("{v:?}")));

    let outputs = [
        ("memory", mem.lines().join("\n")),
        ("jsonl", std::fs::read_to_string(&file).unwrap()),
        ("tracing", capture.text()),
        ("errors and debug output", texts.join("\n")),
    ];
    for (name, text) in &outputs {
        assert!(!text.is_empty(), "{name} is empty");
        for canary in [CANARY, CANARY2] {
            assert!(!text.contains(canary), "{name} holds the canary");
            assert!(!text.contains(&hex_of(canary)), "{name} holds it in hex");
        }
    }
    // ...but an auditor holding the value finds every write and read of it
    let hmac = log.hmac(CANARY.as_bytes());
    let recs = records(&mem);
    let with_canary: Vec<(Operation, Outcome, Option<u64>)> = recs
        .iter()
        .filter(|r| r.event.fields.get(VALUE_HMAC_FIELD) == Some(&hmac))
        .map(|r| (r.event.operation, r.event.outcome.clone(), r.event.version))
        .collect();
    assert_eq!(
        with_canary,
        vec![
            (Operation::Write, Outcome::Allowed, None),
            (Operation::Write, Outcome::Allowed, Some(1)),
            (Operation::Write, Outcome::Allowed, None),
            (
                Operation::Write,
                Outcome::Error {
                    kind: "cas_mismatch".into()
                },
                Some(1)
            ),
            (Operation::Read, Outcome::Allowed, Some(1)),
            (Operation::Write, Outcome::Denied, None),
            (
                Operation::Write,
                Outcome::Error {
                    kind: "invalid_path".into()
                },
                None
            ),
        ]
    );
    assert!(capture.text().contains(hmac.as_str()));
    let head = sr.saved_audit_head().await.unwrap().unwrap();
    assert_eq!(head, log.head().await);
    verify_jsonl_file(&file, &sr.audit_key().unwrap(), None, Some(&head)).unwrap();
    verify(mem.lines(), &sr.audit_key().unwrap(), None, Some(&head)).unwrap();
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn cas_conflict_is_typed_and_audited() {
    let (sr, _) = store().await;
    let (log, sink) = memory_log(&sr).await;
    let h = sr.as_principal(root(), log);
    h.put("prod/a", b"1", Some(0)).await.unwrap();
    h.put("prod/a", b"2", Some(1)).await.unwrap();
    let err = h.put("prod/a", b"3", Some(1)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Secret(SecretError::CasMismatch {
                expected: 1,
                current: 2,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "cas_mismatch");
    let last = records(&sink).pop().unwrap();
    assert_eq!(
        last.event.outcome,
        Outcome::Error {
            kind: "cas_mismatch".into()
        }
    );
    assert_eq!(last.event.version, Some(2));
    assert_eq!(h.read("prod/a").await.unwrap().value.expose_secret(), b"2");
}

#[tokio::test]
async fn reads_of_deleted_and_destroyed_versions_are_distinct_and_audited() {
    let (sr, _) = store().await;
    let (log, sink) = memory_log(&sr).await;
    let h = sr.as_principal(root(), log);
    h.put("prod/a", b"1", None).await.unwrap();
    h.put("prod/a", b"2", None).await.unwrap();
    assert_eq!(h.delete("prod/a", &[1]).await.unwrap(), vec![1]);
    assert_eq!(
        h.read_version("prod/a", 1).await.unwrap_err().kind(),
        "version_deleted"
    );
    assert_eq!(h.destroy("prod/a", &[1]).await.unwrap(), vec![1]);
    assert_eq!(
        h.read_version("prod/a", 1).await.unwrap_err().kind(),
        "version_destroyed"
    );
    assert_eq!(
        h.read_version("prod/a", 9).await.unwrap_err().kind(),
        "not_found"
    );
    let kinds: Vec<String> = records(&sink)
        .into_iter()
        .filter(|r| r.event.operation == Operation::Read)
        .map(|r| match r.event.outcome {
            Outcome::Error { kind } => format!("{kind}@{:?}", r.event.version),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "version_deleted@Some(1)",
            "version_destroyed@Some(1)",
            "not_found@Some(9)"
        ]
    );
}

#[tokio::test]
async fn fail_closed_when_the_only_sink_fails() {
    let (sr, _) = store().await;
    sr.secrets()
        .put("prod/a", CANARY.as_bytes(), None)
        .await
        .unwrap();
    let log = Arc::new(
        sr.open_audit_log(vec![Arc::new(FailingSink)], None)
            .await
            .unwrap(),
    );
    let h = sr.as_principal(root(), log);
    let err = h.read("prod/a").await.unwrap_err();
    assert!(
        matches!(&err, Error::Audit(AuditError::NoSinkAccepted { .. })),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(CANARY));
    // a denial that cannot be recorded still fails (with the audit error)
    let nobody = sr.as_principal(Principal::new("nobody", []), h.audit_log().clone());
    assert!(matches!(
        nobody.read("prod/a").await,
        Err(Error::Audit(AuditError::NoSinkAccepted { .. }))
    ));
    // writes: the intent cannot be recorded, so nothing is written
    assert!(matches!(
        h.put("prod/b", b"new", None).await,
        Err(Error::Audit(_))
    ));
    assert!(matches!(
        sr.secrets().get("prod/b").await,
        Err(Error::Secret(SecretError::NotFound { .. }))
    ));
    assert!(matches!(
        h.destroy("prod/a", &[1]).await,
        Err(Error::Audit(_))
    ));
    assert_eq!(
        sr.secrets()
            .get("prod/a")
            .await
            .unwrap()
            .value
            .expose_secret(),
        CANARY.as_bytes()
    );
    assert_eq!(sr.saved_audit_head().await.unwrap(), None);
}

#[tokio::test]
async fn write_ahead_intent_then_result() {
    let (sr, _) = store().await;
    let sink = Arc::new(BudgetSink::new());
    let log = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let h = sr.as_principal(root(), log);
    // the intent is accepted, the result is not: the write happened, the
    // caller gets the audit error, and the log shows the intent
    sink.allow(1);
    let err = h.put("prod/a", b"v1", None).await.unwrap_err();
    assert!(matches!(err, Error::Audit(_)), "{err:?}");
    assert_eq!(sr.secrets().get("prod/a").await.unwrap().version.version, 1);
    let recs = sink.inner.records().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].event.operation, Operation::Write);
    assert_eq!(recs[0].event.outcome, Outcome::Allowed);
    assert_eq!(recs[0].event.version, None);
    // a read whose record is refused hands nothing out
    sink.allow(0);
    assert!(matches!(h.read("prod/a").await, Err(Error::Audit(_))));
    // with the sink back, the chain continues without a gap
    sink.allow(u64::MAX);
    h.read("prod/a").await.unwrap();
    let recs = sink.inner.records().unwrap();
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    verify(&recs, &sr.audit_key().unwrap(), None, None).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hung_sink_times_out_and_the_call_returns() {
    let (sr, _) = store().await;
    sr.secrets().put("prod/a", b"v", None).await.unwrap();
    let log = sr
        .open_audit_log(vec![Arc::new(HungSink)], None)
        .await
        .unwrap()
        .with_sink_timeout(Duration::from_millis(50));
    let h = sr.as_principal(root(), Arc::new(log));
    let err = h.read("prod/a").await.unwrap_err();
    match err {
        Error::Audit(AuditError::NoSinkAccepted { failures, .. }) => {
            assert_eq!(failures.len(), 1);
            assert!(failures[0].timed_out);
        }
        other => panic!("{other:?}"),
    }
    // and with a healthy sink beside it, calls go through after the timeout
    let mem = Arc::new(MemorySink::new());
    let log = sr
        .open_audit_log(vec![Arc::new(HungSink), mem.clone()], None)
        .await
        .unwrap()
        .with_sink_timeout(Duration::from_millis(50));
    let h = sr.as_principal(root(), Arc::new(log));
    assert_eq!(h.read("prod/a").await.unwrap().value.expose_secret(), b"v");
    assert_eq!(mem.lines().len(), 1);
}

/// Records from a short session through handles.
async fn session() -> (Door, Vec<String>) {
    let (sr, clock) = store().await;
    let (log, sink) = memory_log(&sr).await;
    let h = sr.as_principal(root(), log);
    for i in 0..4u8 {
        h.put("prod/a", &[i], None).await.unwrap();
        clock.advance(Duration::from_secs(1));
        h.read("prod/a").await.unwrap();
    }
    (sr, sink.lines())
}

fn broken_at(r: Result<strongroom::audit::VerifyReport, AuditError>) -> (u64, ChainBreak) {
    match r {
        Err(AuditError::ChainBroken { seq, reason }) => (seq, reason),
        other => panic!("not detected: {other:?}"),
    }
}

#[tokio::test]
async fn tampering_with_handle_records_is_detected() {
    let (sr, lines) = session().await;
    let key = sr.audit_key().unwrap();
    let head = sr.saved_audit_head().await.unwrap().unwrap();
    assert_eq!(head.seq, 12);
    verify(&lines, &key, None, Some(&head)).unwrap();

    // modify: the principal of record 5
    let mut edited = lines.clone();
    edited[4] = edited[4].replace("\"principal\":\"root\"", "\"principal\":\"mallory\"");
    assert_ne!(edited[4], lines[4]);
    assert_eq!(
        broken_at(verify(&edited, &key, None, Some(&head))),
        (5, ChainBreak::BadMac)
    );
    // modify: the version read
    let mut edited = lines.clone();
    edited[2] = edited[2].replace("\"version\":1", "\"version\":7");
    assert_ne!(edited[2], lines[2]);
    assert_eq!(broken_at(verify(&edited, &key, None, Some(&head))).0, 3);

    // delete record 6
    let mut deleted = lines.clone();
    deleted.remove(5);
    let (seq, reason) = broken_at(verify(&deleted, &key, None, Some(&head)));
    assert_eq!(seq, 6);
    assert!(matches!(
        reason,
        ChainBreak::UnexpectedSeq {
            expected: 6,
            found: 7
        }
    ));

    // reorder records 3 and 4
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    let (seq, reason) = broken_at(verify(&reordered, &key, None, Some(&head)));
    assert_eq!(seq, 3);
    assert!(matches!(
        reason,
        ChainBreak::UnexpectedSeq {
            expected: 3,
            found: 4
        }
    ));

    // insert a replayed copy of record 2 after record 7
    let mut inserted = lines.clone();
    inserted.insert(7, lines[1].clone());
    let (seq, reason) = broken_at(verify(&inserted, &key, None, Some(&head)));
    assert_eq!(seq, 8);
    assert!(matches!(
        reason,
        ChainBreak::UnexpectedSeq {
            expected: 8,
            found: 2
        }
    ));

    // truncate the last three records: only the saved head shows it
    let truncated = &lines[..9];
    verify(truncated, &key, None, None).unwrap();
    let (seq, reason) = broken_at(verify(truncated, &key, None, Some(&head)));
    assert_eq!(seq, 10);
    assert!(matches!(
        reason,
        ChainBreak::Truncated {
            last: 9,
            checkpoint: 12
        }
    ));
}

#[tokio::test]
async fn a_restarted_log_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));

    // first process
    {
        let sr = store_on(storage.clone(), clock.clone(), true).await;
        let sink = Arc::new(JsonlFileSink::open(&file, FsyncPolicy::EveryRecord).unwrap());
        let log = sr.open_audit_log(vec![sink], Some(&file)).await.unwrap();
        let h = sr.as_principal(root(), Arc::new(log));
        h.put("prod/a", b"1", None).await.unwrap();
        h.read("prod/a").await.unwrap();
        assert_eq!(sr.saved_audit_head().await.unwrap().unwrap().seq, 3);
    }
    // second process: same storage, same file
    let sr = store_on(storage.clone(), clock.clone(), false).await;
    let sink = Arc::new(JsonlFileSink::open(&file, FsyncPolicy::EveryRecord).unwrap());
    let log = Arc::new(sr.open_audit_log(vec![sink], Some(&file)).await.unwrap());
    assert_eq!(log.head().await.seq, 3);
    let h = sr.as_principal(root(), log);
    h.read("prod/a").await.unwrap();
    h.put("prod/a", b"2", None).await.unwrap();
    let head = sr.saved_audit_head().await.unwrap().unwrap();
    assert_eq!(head.seq, 6);
    let report = verify_jsonl_file(&file, &sr.audit_key().unwrap(), None, Some(&head)).unwrap();
    assert_eq!((report.records, report.head), (6, head.clone()));

    // without the file, the chain resumes from the saved head
    let mem = Arc::new(MemorySink::new());
    let log = sr.open_audit_log(vec![mem.clone()], None).await.unwrap();
    let h = sr.as_principal(root(), Arc::new(log));
    h.read("prod/a").await.unwrap();
    let mut all: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    all.extend(mem.lines());
    let head = sr.saved_audit_head().await.unwrap().unwrap();
    assert_eq!(head.seq, 7);
    verify(&all, &sr.audit_key().unwrap(), None, Some(&head)).unwrap();

    // a truncated file is refused at startup
    let text = std::fs::read_to_string(&file).unwrap();
    let short: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, short).unwrap();
    let err = sr.open_audit_log(vec![mem], Some(&file)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Audit(AuditError::ChainBroken {
                reason: ChainBreak::Truncated { .. },
                ..
            })
        ),
        "{err:?}"
    );
    // the head record sits under the reserved prefix
    assert!(storage.get(AUDIT_HEAD_RECORD).await.unwrap().is_some());
}

#[tokio::test]
async fn inventory_from_handle_records() {
    let (sr, clock) = store().await;
    let (log, sink) = memory_log(&sr).await;
    let admin = sr.as_principal(root(), log.clone());
    let pay = sr.as_principal(
        principal(
            "payment-svc",
            vec![allow("prod/payment-svc/*", &[Capability::Read])],
        ),
        log.clone(),
    );
    let billing = sr.as_principal(
        principal("billing", vec![allow("prod/*", &[Capability::Read])]),
        log,
    );
    let db = "prod/payment-svc/postgres";
    admin.put(db, b"pw", None).await.unwrap();
    admin.put("prod/billing/key", b"k", None).await.unwrap();
    let t0 = clock.now_for_test();
    pay.read(db).await.unwrap();
    clock.advance(Duration::from_secs(60));
    billing.read(db).await.unwrap();
    clock.advance(Duration::from_secs(60));
    let t_last = clock.now_for_test();
    pay.read(db).await.unwrap();
    assert!(pay.read("prod/billing/key").await.is_err());
    billing.read("prod/billing/key").await.unwrap();

    let recs = records(&sink);
    verify(&recs, &sr.audit_key().unwrap(), None, None).unwrap();
    let inv = Inventory::from_records(&recs);
    let readers: Vec<(&str, u64, Option<Timestamp>)> = inv
        .readers(db)
        .into_iter()
        .map(|s| (s.principal.as_str(), s.reads, s.last_read))
        .collect();
    assert_eq!(
        readers,
        vec![
            ("billing", 1, Some(t0 + Duration::from_secs(60))),
            ("payment-svc", 2, Some(t_last)),
        ]
    );
    let touched: Vec<(&str, u64, u64)> = inv
        .touched_by("payment-svc")
        .into_iter()
        .map(|s| (s.path.as_str(), s.reads, s.denied))
        .collect();
    assert_eq!(touched, vec![("prod/billing/key", 0, 1), (db, 2, 0)]);
    let admin_paths: Vec<&str> = inv
        .touched_by("root")
        .into_iter()
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(admin_paths, vec!["prod/billing/key", db]);
}

trait NowForTest {
    fn now_for_test(&self) -> Timestamp;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> Timestamp {
        strongroom::clock::Clock::now(self)
    }
}

#[test]
fn error_kinds_are_stable_codes() {
    assert_eq!(Error::DecryptionFailed.kind(), "decryption_failed");
    assert_eq!(Error::Sealed.kind(), "sealed");
    let denied: Error = PolicyError::Denied {
        principal: "p".into(),
        capability: Capability::Read,
        path: "x".into(),
    }
    .into();
    assert_eq!(denied.kind(), "policy_denied");
    assert_eq!(Error::from(AuditError::NoSinks).kind(), "audit_no_sinks");
    let k = Error::from(SecretError::NotFound {
        path: "a".into(),
        version: None,
    })
    .kind();
    assert!(
        k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{k}"
    );
}

#[tokio::test]
async fn request_ids_tie_intent_to_result() {
    let (sr, _) = store().await;
    let (log, sink) = memory_log(&sr).await;
    let h = sr.as_principal(root(), log);
    h.put("prod/a", b"1", None).await.unwrap();
    h.put("prod/a", b"2", None).await.unwrap();
    h.read("prod/a").await.unwrap();
    let ids: Vec<String> = records(&sink)
        .into_iter()
        .map(|r| r.event.request_id)
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[2], ids[3]);
    assert_ne!(ids[1], ids[2]);
    assert_ne!(ids[3], ids[4]);
    assert!(ids.iter().all(|i| i.len() == 32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_handles_keep_one_chain_and_the_saved_head_current() {
    let (sr, _) = store().await;
    sr.secrets().put("prod/a", b"v", None).await.unwrap();
    let (log, sink) = memory_log(&sr).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let h = sr.as_principal(
            principal(
                &format!("svc-{i}"),
                vec![allow("prod/*", &[Capability::Read])],
            ),
            log.clone(),
        );
        tasks.spawn(async move {
            for _ in 0..8 {
                h.read("prod/a").await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let head = sr.saved_audit_head().await.unwrap().unwrap();
    assert_eq!(head, log.head().await);
    assert_eq!(head.seq, 128);
    verify(sink.lines(), &sr.audit_key().unwrap(), None, Some(&head)).unwrap();
}

#[tokio::test]
async fn a_missing_audit_file_with_a_saved_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (sr, _) = store().await;
    let (log, _sink) = memory_log(&sr).await;
    sr.as_principal(root(), log)
        .put("prod/a", b"1", None)
        .await
        .unwrap();
    let missing = dir.path().join("gone.jsonl");
    let err = sr
        .open_audit_log(vec![Arc::new(MemorySink::new())], Some(&missing))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Audit(AuditError::Io { .. })),
        "{err:?}"
    );
}

/// A watch through a handle needs `list` on the prefix, is audited, and
/// reports paths (never values) written by another store instance on the
/// same storage (another process, as far as the handle can tell).
#[tokio::test]
async fn watch_needs_list_and_reports_other_writers_paths() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let mem = MemoryStorage::new();
    let writer = store_on(Arc::new(mem.clone()), clock.clone(), true).await;
    let reader = store_on(Arc::new(mem.clone()), clock, false).await;
    let (log, sink) = memory_log(&reader).await;
    let lister = reader.as_principal(
        principal(
            "lister",
            vec![
                allow("prod", &[Capability::List]),
                allow("prod/*", &[Capability::List]),
            ],
        ),
        log.clone(),
    );
    let reader_only = reader.as_principal(
        principal("reader", vec![allow("prod", &[Capability::Read])]),
        log,
    );
    assert!(matches!(
        reader_only.watch("prod").await,
        Err(Error::Policy(PolicyError::Denied { .. }))
    ));
    assert!(lister.watch("admin").await.is_err());
    let mut w = lister.watch("prod").await.unwrap();
    writer
        .secrets()
        .put("admin/x", CANARY.as_bytes(), None)
        .await
        .unwrap();
    writer
        .secrets()
        .put("prod/db", CANARY.as_bytes(), None)
        .await
        .unwrap();
    assert_eq!(
        w.next().await,
        strongroom::secrets::SecretChange::Changed(vec!["prod/db".into()])
    );
    let recs = records(&sink);
    let outcomes: Vec<_> = recs
        .iter()
        .map(|r| (r.event.principal.clone(), r.event.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("reader".into(), Outcome::Denied),
            ("lister".into(), Outcome::Denied),
            ("lister".into(), Outcome::Allowed),
        ]
    );
}

/// With `prod/app/*` allowed and `prod/app/admin/*` denied (or the same
/// deny with a `+`), the secret at `prod/app/admin` can be neither read nor
/// overwritten, its subtree cannot be listed, and listing `prod/app` or
/// `prod` shows nothing of the denied subtree nor of paths no rule grants.
#[tokio::test]
async fn a_deny_on_a_subtree_covers_its_root_and_list_hides_it() {
    use Capability::*;
    for deny in ["prod/app/admin/*", "prod/+/admin/*"] {
        let (sr, _) = store().await;
        let (log, sink) = memory_log(&sr).await;
        let admin = sr.as_principal(root(), log.clone());
        for path in [
            "prod/app/admin",
            "prod/app/admin/root-pw",
            "prod/app/admin/deep/x",
            "prod/app/administrator",
            "prod/app/cache/url",
            "prod/app/db",
            "prod/other/x",
            "prod/top",
        ] {
            admin.put(path, CANARY.as_bytes(), None).await.unwrap();
        }
        let svc = sr.as_principal(
            principal(
                "svc",
                vec![
                    allow("prod/app/*", &[Read, Create, Update, List]),
                    allow("prod/app", &[List]),
                    allow("prod", &[List]),
                    Rule::deny(deny).unwrap(),
                ],
            ),
            log.clone(),
        );
        let before = records(&sink).len();

        assert!(is_denied(&svc.read("prod/app/admin").await), "{deny}");
        assert!(is_denied(&svc.metadata("prod/app/admin").await), "{deny}");
        assert!(
            is_denied(&svc.put("prod/app/admin", CANARY2.as_bytes(), None).await),
            "{deny}"
        );
        assert!(is_denied(&svc.list("prod/app/admin").await), "{deny}");
        assert!(is_denied(&svc.read("prod/app/admin/root-pw").await));
        // not overwritten
        let v = admin.read("prod/app/admin").await.unwrap();
        assert_eq!(
            (v.version.version, v.value.expose_secret()),
            (1, CANARY.as_bytes())
        );
        // neighbours are untouched by the deny
        assert!(svc.read("prod/app/administrator").await.is_ok());
        assert!(svc.read("prod/app/db").await.is_ok());

        assert_eq!(
            svc.list("prod/app").await.unwrap(),
            ["administrator", "cache/", "db"],
            "{deny}"
        );
        // `other/` and `top`: no capability at all; `app/`: some under it
        assert_eq!(svc.list("prod").await.unwrap(), ["app/"], "{deny}");
        // the root principal sees everything
        assert_eq!(
            admin.list("prod/app").await.unwrap(),
            ["admin", "admin/", "administrator", "cache/", "db"]
        );
        assert_eq!(admin.list("prod").await.unwrap(), ["app/", "other/", "top"]);

        // Every denial was audited as one.
        let denied: Vec<_> = records(&sink)[before..]
            .iter()
            .filter(|r| r.event.outcome == Outcome::Denied)
            .map(|r| (r.event.operation, r.event.path.clone().unwrap()))
            .collect();
        assert_eq!(denied.len(), 5, "{denied:?}");
        assert!(denied.iter().all(|(_, p)| p.starts_with("prod/app/admin")));
    }
}

/// A watch, like `list`, does not report paths in a subtree the principal is
/// denied: a change there is skipped, the next visible one is reported.
#[tokio::test]
async fn watch_hides_a_denied_subtree() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let mem = MemoryStorage::new();
    let writer = store_on(Arc::new(mem.clone()), clock.clone(), true).await;
    let reader = store_on(Arc::new(mem.clone()), clock, false).await;
    let (log, _sink) = memory_log(&reader).await;
    let svc = reader.as_principal(
        principal(
            "svc",
            vec![
                allow("prod/app", &[Capability::List]),
                allow("prod/app/*", &[Capability::List, Capability::Read]),
                Rule::deny("prod/app/admin/*").unwrap(),
            ],
        ),
        log,
    );
    let mut w = svc.watch("prod/app").await.unwrap();
    for path in ["prod/app/admin", "prod/app/admin/root-key", "prod/app/db"] {
        writer
            .secrets()
            .put(path, CANARY.as_bytes(), None)
            .await
            .unwrap();
    }
    assert_eq!(
        w.next().await,
        strongroom::secrets::SecretChange::Changed(vec!["prod/app/db".into()])
    );
}

/// Memory storage whose writes let other tasks run first (as an fsync does) and that
/// counts the writes of the saved audit head.
#[derive(Debug)]
struct SlowWrites {
    inner: MemoryStorage,
    head_writes: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl strongroom::storage::Storage for SlowWrites {
    fn backend(&self) -> &'static str {
        "slow"
    }
    async fn get(&self, key: &str) -> strongroom::Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> strongroom::Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan(prefix, start_after, limit).await
    }
    async fn batch(&self, ops: Vec<strongroom::storage::BatchOp>) -> strongroom::Result<()> {
        use strongroom::storage::BatchOp;
        if ops
            .iter()
            .any(|op| matches!(op, BatchOp::Put { key, .. } if key == AUDIT_HEAD_RECORD))
        {
            self.head_writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        // Slow storage (a stand-in for fsync): other tasks run meanwhile.
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        self.inner.batch(ops).await
    }
}

#[tokio::test]
async fn concurrent_audited_reads_share_their_head_saves() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let storage = Arc::new(SlowWrites {
        inner: MemoryStorage::new(),
        head_writes: Default::default(),
    });
    let sr = store_on(storage.clone(), clock, true).await;
    sr.secrets().put("app/db", b"value", None).await.unwrap();
    let (log, sink) = memory_log(&sr).await;
    let h = Arc::new(sr.as_principal(root(), log));
    let before = storage
        .head_writes
        .load(std::sync::atomic::Ordering::SeqCst);
    let reads: Vec<_> = (0..64)
        .map(|_| {
            let h = Arc::clone(&h);
            tokio::spawn(async move { h.read("app/db").await.map(|r| r.version.version) })
        })
        .collect();
    for r in reads {
        assert_eq!(r.await.unwrap().unwrap(), 1);
    }
    let writes = storage
        .head_writes
        .load(std::sync::atomic::Ordering::SeqCst)
        - before;
    assert!(
        (1..=8).contains(&writes),
        "64 concurrent reads saved the head {writes} times"
    );
    // Every read returned after a head covering its record was saved: the
    // saved head is the last record's.
    let last = sink.records().unwrap().last().unwrap().checkpoint();
    assert_eq!(sr.saved_audit_head().await.unwrap().unwrap(), last);
}
