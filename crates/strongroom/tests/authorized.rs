//! The authorised facade for leases, rotation, key administration and the
//! audit trail: each operation allowed with the right capability, denied
//! (typed, and audited) without it or on another path, fail-closed audit,
//! and the manager's lossless lease audit. Time moves only through a
//! `ManualClock`; nothing sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strongroom::audit::{
    AuditError, AuditFileCheck, AuditLog, AuditRecord, AuditSink, FsyncPolicy, JsonlFileSink,
    MemorySink, Operation, Outcome, verify,
};
use strongroom::authorized::STAGED_HMAC_FIELDS;
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{
    LEASE_MANAGER_PRINCIPAL, Lease, LeaseConfig, LeaseId, LeaseManager, LeaseRequest, Revoker,
};
use strongroom::policy::{Capability, Policy, PolicyError, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::rotation::{
    ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier, RotationEngine, RotationOptions,
};
use strongroom::storage::MemoryStorage;
use strongroom::{Error, Handle, Options, SecretBytes, Strongroom};

use Capability::{Lease as LeaseCap, List, Read, Rotate, Sudo};

const START: Timestamp = Timestamp::from_secs(1_800_000_000);
const MIN: Duration = Duration::from_secs(60);

/// Records what it was asked to revoke.
#[derive(Debug, Default)]
struct TestRevoker {
    revoked: Mutex<Vec<LeaseId>>,
}

impl TestRevoker {
    fn revoked(&self) -> Vec<LeaseId> {
        self.revoked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Revoker for TestRevoker {
    async fn revoke(&self, lease: &Lease) -> strongroom::Result<()> {
        self.revoked.lock().unwrap().push(lease.id());
        Ok(())
    }
}

/// Refuses every record.
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

/// Accepts records while it is open, refuses them while it is closed.
#[derive(Debug, Default)]
struct SwitchSink {
    closed: Mutex<bool>,
    inner: MemorySink,
}

impl SwitchSink {
    fn close(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
    }
}

#[async_trait::async_trait]
impl AuditSink for SwitchSink {
    fn name(&self) -> &str {
        "switch"
    }
    async fn write(&self, r: &AuditRecord, l: &str) -> Result<(), AuditError> {
        if *self.closed.lock().unwrap() {
            return Err(AuditError::Sink {
                sink: "switch".into(),
                message: "refused".into(),
            });
        }
        self.inner.write(r, l).await
    }
}

struct Fixture {
    clock: Arc<ManualClock>,
    sr: Door,
    sink: Arc<MemorySink>,
    audit: Arc<AuditLog>,
    manager: Arc<LeaseManager>,
    revoker: Arc<TestRevoker>,
}

fn protector(byte: u8) -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![byte; 32])).unwrap()
}

async fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(START));
    let options = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector(7), options)
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let (manager, revoker) = manager(&sr, &clock, None);
    Fixture {
        clock,
        sr,
        sink,
        audit,
        manager,
        revoker,
    }
}

fn manager(
    sr: &Door,
    clock: &Arc<ManualClock>,
    audit: Option<Arc<AuditLog>>,
) -> (Arc<LeaseManager>, Arc<TestRevoker>) {
    let mut config = LeaseConfig::default();
    config.retry.jitter = 0.0;
    config.retry.base = Duration::from_secs(10);
    let mut m = sr.lease_manager(clock.clone(), config).unwrap();
    if let Some(a) = audit {
        m = m.with_audit(a);
    }
    let revoker = Arc::new(TestRevoker::default());
    m.register_revoker("db", revoker.clone());
    (Arc::new(m), revoker)
}

impl Fixture {
    fn principal(&self, name: &str, rules: &[(&str, &[Capability])]) -> Handle {
        self.principal_on(self.audit.clone(), name, rules)
    }

    fn principal_on(
        &self,
        audit: Arc<AuditLog>,
        name: &str,
        rules: &[(&str, &[Capability])],
    ) -> Handle {
        let rules = rules
            .iter()
            .map(|(p, caps)| {
                if caps.is_empty() {
                    Rule::deny(p).unwrap()
                } else {
                    Rule::allow(p, caps.iter().copied()).unwrap()
                }
            })
            .collect();
        let policy = Policy::new(name, rules);
        self.sr.as_principal(Principal::new(name, [&policy]), audit)
    }

    /// A principal allowed everything on secret paths (not on `sys/...`).
    fn root(&self) -> Handle {
        self.principal("root", &[("*", &Capability::ALL)])
    }

    fn records(&self) -> Vec<AuditRecord> {
        self.sink.records().unwrap()
    }

    fn last(&self) -> AuditRecord {
        self.records().pop().expect("a record")
    }

    async fn live(&self) -> Vec<LeaseId> {
        self.manager.list("").await.unwrap()
    }

    fn chain_verifies(&self) {
        let report = verify(self.sink.lines(), &self.sr.audit_key().unwrap(), None, None).unwrap();
        assert_eq!(report.records as usize, self.sink.lines().len());
    }
}

fn request(path: &str) -> LeaseRequest {
    LeaseRequest::new(path, "db", MIN, 10 * MIN)
}

/// The error is a typed policy denial of `cap` on `path`.
fn assert_denied<T: std::fmt::Debug>(r: strongroom::Result<T>, cap: Capability, path: &str) {
    match r {
        Err(Error::Policy(PolicyError::Denied {
            capability,
            path: p,
            ..
        })) => {
            assert_eq!((capability, p.as_str()), (cap, path));
        }
        other => panic!("expected a denial of {cap} on {path}, got {other:?}"),
    }
}

/// The last record is a denial of `op` by `principal` on `path`.
fn assert_denied_record(rec: &AuditRecord, principal: &str, op: Operation, path: &str) {
    assert_eq!(rec.event.principal, principal);
    assert_eq!(rec.event.operation, op);
    assert_eq!(rec.event.outcome, Outcome::Denied);
    assert_eq!(rec.event.path.as_deref(), Some(path));
}

fn is_audit_error<T>(r: &strongroom::Result<T>) -> bool {
    matches!(r, Err(Error::Audit(AuditError::NoSinkAccepted { .. })))
}

// ----- leases -----

#[tokio::test]
async fn lease_operations_are_allowed_with_lease_and_audited_around_the_effect() {
    let f = fixture().await;
    let app = f.principal("app", &[("db/app/*", &[LeaseCap])]);
    let leases = app.leases(&f.manager);

    let lease = leases.issue(request("db/app/ro")).await.unwrap();
    assert_eq!(f.live().await, [lease.id()]);
    let recs = f.records();
    assert_eq!(recs.len(), 2, "intent and result");
    let (intent, result) = (&recs[0].event, &recs[1].event);
    assert_eq!(intent.operation, Operation::LeaseIssue);
    assert_eq!(intent.outcome, Outcome::Allowed);
    assert_eq!(intent.lease_id, None, "written before the lease exists");
    assert_eq!(intent.path.as_deref(), Some("db/app/ro"));
    assert_eq!(result.lease_id, Some(lease.id().to_string()));
    assert_eq!(intent.request_id, result.request_id);

    let batch = leases
        .issue_batch(vec![request("db/app/a"), request("db/app/b")])
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(leases.lookup(lease.id()).await.unwrap().path(), "db/app/ro");

    f.clock.advance(MIN / 2);
    let renewed = leases.renew(lease.id(), 2 * MIN).await.unwrap();
    assert!(renewed.expires_at() > lease.expires_at());
    assert_eq!(f.last().event.operation, Operation::LeaseRenew);
    assert_eq!(f.last().event.lease_id, Some(lease.id().to_string()));

    leases.revoke(lease.id()).await.unwrap();
    assert_eq!(f.revoker.revoked(), [lease.id()]);
    let last = f.last();
    assert_eq!(last.event.operation, Operation::LeaseRevoke);
    assert_eq!(last.event.path.as_deref(), Some("db/app/ro"));
    assert_eq!(f.live().await.len(), 2);
    f.chain_verifies();
}

#[tokio::test]
async fn lease_operations_are_denied_without_the_lease_capability() {
    let f = fixture().await;
    let reader = f.principal("reader", &[("db/app/*", &[Read, List, Rotate])]);
    let leases = reader.leases(&f.manager);
    assert_denied(
        leases.issue(request("db/app/ro")).await,
        LeaseCap,
        "db/app/ro",
    );
    assert_denied_record(&f.last(), "reader", Operation::LeaseIssue, "db/app/ro");
    assert!(f.live().await.is_empty(), "nothing issued");
    assert_denied(
        leases.issue_batch(vec![request("db/app/ro")]).await,
        LeaseCap,
        "db/app/ro",
    );
    assert!(f.live().await.is_empty());

    // leases the principal did not issue, on its own paths: still no
    let lease = f
        .root()
        .leases(&f.manager)
        .issue(request("db/app/ro"))
        .await
        .unwrap();
    assert_denied(leases.renew(lease.id(), MIN).await, LeaseCap, "db/app/ro");
    assert_denied_record(&f.last(), "reader", Operation::LeaseRenew, "db/app/ro");
    assert_eq!(f.last().event.lease_id, Some(lease.id().to_string()));
    assert_denied(leases.revoke(lease.id()).await, LeaseCap, "db/app/ro");
    assert_denied_record(&f.last(), "reader", Operation::LeaseRevoke, "db/app/ro");
    assert_denied(leases.lookup(lease.id()).await, LeaseCap, "db/app/ro");
    assert!(f.revoker.revoked().is_empty());
    assert_eq!(f.live().await, [lease.id()]);
    f.chain_verifies();
}

#[tokio::test]
async fn leases_under_another_path_are_out_of_reach_even_by_id() {
    let f = fixture().await;
    let app = f
        .principal("app", &[("db/app/*", &[LeaseCap, Sudo])])
        .leases(&f.manager);
    assert_denied(
        app.issue(request("db/billing/rw")).await,
        LeaseCap,
        "db/billing/rw",
    );
    assert_denied_record(&f.last(), "app", Operation::LeaseIssue, "db/billing/rw");
    // one bad request refuses the whole batch
    assert_denied(
        app.issue_batch(vec![request("db/app/ro"), request("db/billing/rw")])
            .await,
        LeaseCap,
        "db/billing/rw",
    );
    assert!(f.live().await.is_empty());

    let billing = f
        .root()
        .leases(&f.manager)
        .issue(request("db/billing/rw"))
        .await
        .unwrap();
    // knowing the id is not enough: the lease's own path is checked
    assert_denied(app.revoke(billing.id()).await, LeaseCap, "db/billing/rw");
    assert_denied_record(&f.last(), "app", Operation::LeaseRevoke, "db/billing/rw");
    assert_eq!(f.last().event.lease_id, Some(billing.id().to_string()));
    assert_denied(
        app.force_revoke(billing.id()).await,
        LeaseCap,
        "db/billing/rw",
    );
    assert_denied(
        app.renew(billing.id(), MIN).await,
        LeaseCap,
        "db/billing/rw",
    );
    assert!(f.revoker.revoked().is_empty());
    assert_eq!(f.live().await, [billing.id()]);
    // listing its own prefix is allowed with `list` only; another's is not
    let lister = f
        .principal("lister", &[("db/app", &[List])])
        .leases(&f.manager);
    assert!(lister.list("db/app").await.unwrap().is_empty());
    assert_denied(lister.list("db/billing").await, List, "db/billing");
    // an unknown id is an audited error, not a denial
    let unknown = LeaseId::generate().unwrap();
    let err = app.revoke(unknown).await.unwrap_err();
    assert_eq!(err.kind(), "lease_not_found");
    assert_eq!(
        f.last().event.outcome,
        Outcome::Error {
            kind: "lease_not_found".into()
        }
    );
    f.chain_verifies();
}

#[tokio::test]
async fn forced_and_prefix_revocation_need_sudo() {
    let f = fixture().await;
    let lease_only = f
        .principal("lease-only", &[("db/app*", &[LeaseCap])])
        .leases(&f.manager);
    let a = lease_only.issue(request("db/app/a")).await.unwrap();
    let b = lease_only.issue(request("db/app/b")).await.unwrap();
    assert_denied(lease_only.force_revoke(a.id()).await, Sudo, "db/app/a");
    assert_denied_record(
        &f.last(),
        "lease-only",
        Operation::LeaseRevokeForce,
        "db/app/a",
    );
    assert_denied(lease_only.revoke_prefix("db/app").await, Sudo, "db/app");
    assert_denied_record(
        &f.last(),
        "lease-only",
        Operation::LeaseRevokePrefix,
        "db/app",
    );
    assert!(f.revoker.revoked().is_empty());

    let admin = f
        .principal("admin", &[("db/app*", &[LeaseCap, Sudo])])
        .leases(&f.manager);
    admin.force_revoke(a.id()).await.unwrap();
    assert_eq!(f.last().event.operation, Operation::LeaseRevokeForce);
    assert_eq!(f.revoker.revoked(), [a.id()]);
    let c = admin.issue(request("db/app/c")).await.unwrap();
    let out = admin.revoke_prefix("db/app").await.unwrap();
    let mut revoked = out.revoked.clone();
    revoked.sort();
    let mut want = vec![b.id(), c.id()];
    want.sort();
    assert_eq!(revoked, want);
    assert!(f.live().await.is_empty());
    // intent, then one record per lease revoked
    let recs = f.records();
    let tail: Vec<_> = recs[recs.len() - 3..].iter().map(|r| &r.event).collect();
    assert!(
        tail.iter()
            .all(|e| e.operation == Operation::LeaseRevokePrefix)
    );
    assert_eq!(tail[0].lease_id, None);
    assert!(tail[1..].iter().all(|e| e.lease_id.is_some()));
    // the top level cannot be revoked through a handle
    assert_eq!(
        admin.revoke_prefix("").await.unwrap_err().kind(),
        "invalid_path"
    );
    f.chain_verifies();
}

#[tokio::test]
async fn prefix_revocation_stops_at_a_denied_subtree() {
    let f = fixture().await;
    let admin = f
        .principal(
            "admin",
            &[("db/app*", &[LeaseCap, Sudo]), ("db/app/admin/*", &[])],
        )
        .leases(&f.manager);
    let mine = admin.issue(request("db/app/ro")).await.unwrap();
    let fenced = f
        .root()
        .leases(&f.manager)
        .issue(request("db/app/admin/rw"))
        .await
        .unwrap();
    assert_denied(
        admin.revoke_prefix("db/app").await,
        LeaseCap,
        "db/app/admin/rw",
    );
    let last = f.last();
    assert_denied_record(
        &last,
        "admin",
        Operation::LeaseRevokePrefix,
        "db/app/admin/rw",
    );
    assert_eq!(last.event.lease_id, Some(fenced.id().to_string()));
    assert!(f.revoker.revoked().is_empty(), "nothing revoked");
    assert_eq!(f.live().await.len(), 2);
    // listing leaves the fenced lease out
    let lister = f
        .principal(
            "lister",
            &[
                ("db/app", &[List]),
                ("db/app/*", &[LeaseCap]),
                ("db/app/admin/*", &[]),
            ],
        )
        .leases(&f.manager);
    assert_eq!(lister.list("db/app").await.unwrap(), [mine.id()]);
}

// ----- rotation -----

async fn engine(f: &Fixture, name: &str) -> Arc<RotationEngine> {
    let verifier = Arc::new(ApiKeyVerifier::new().unwrap());
    let rotator = ApiKeyRotator::new(ApiKeyFormat::base62("sk_", 32), verifier);
    Arc::new(
        f.sr.rotation_engine(name, Arc::new(rotator), RotationOptions::default())
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn rotation_needs_rotate_and_reading_staged_needs_read() {
    let f = fixture().await;
    let payments = engine(&f, "payments/api-key").await;
    let billing = engine(&f, "billing/api-key").await;
    let rotator = f.principal("rotator", &[("payments/*", &[Rotate])]);
    let reader = f.principal("reader", &[("payments/*", &[Read])]);

    // without `rotate`: denied, nothing rotated
    let r = reader.rotation(&payments);
    assert_denied(r.rotate_now().await, Rotate, "payments/api-key");
    assert_denied_record(&f.last(), "reader", Operation::Rotate, "payments/api-key");
    assert_denied(r.resume().await, Rotate, "payments/api-key");
    assert_denied(r.revoke_due().await, Rotate, "payments/api-key");
    assert_denied(
        r.import_current("k", SecretBytes::from("sk_x")).await,
        Rotate,
        "payments/api-key",
    );
    assert!(r.spawn_schedule().await.is_err());
    assert_eq!(payments.status().await.unwrap().current, None);

    // with it: rotated; intent then result with the version promoted
    let w = rotator.rotation(&payments);
    let report = w.rotate_now().await.unwrap();
    assert_eq!(report.promoted, Some(1));
    let last = f.last();
    assert_eq!(last.event.operation, Operation::Rotate);
    assert_eq!(last.event.version, Some(1));
    assert_eq!(last.event.principal, "rotator");
    w.resume().await.unwrap();
    assert!(!w.revoke_due().await.unwrap());
    // another credential: denied
    assert_denied(
        rotator.rotation(&billing).rotate_now().await,
        Rotate,
        "billing/api-key",
    );
    assert_eq!(billing.status().await.unwrap().current, None);

    // reading the staged secrets needs `read`
    assert_denied(w.staged().await, Read, "payments/api-key");
    assert_denied(w.status().await, Read, "payments/api-key");
    let staged = r.staged().await.unwrap();
    let secret = staged.current.as_ref().unwrap().secret().clone();
    let last = f.last();
    assert_eq!(last.event.operation, Operation::Read);
    assert_eq!(last.event.version, Some(1));
    assert_eq!(
        last.event.fields.get(STAGED_HMAC_FIELDS[1]),
        Some(&f.audit.hmac(secret.expose_secret()))
    );
    assert_eq!(r.status().await.unwrap().current, Some(1));
    // no record holds the secret itself
    let text = String::from_utf8_lossy(secret.expose_secret()).into_owned();
    assert!(f.sink.lines().iter().all(|l| !l.contains(&text)));
    f.chain_verifies();
}

#[tokio::test]
async fn importing_a_credential_records_its_hmac_only() {
    let f = fixture().await;
    let payments = engine(&f, "payments/api-key").await;
    let rotator = f.principal("rotator", &[("payments/*", &[Rotate])]);
    let secret = "sk_imported0123456789012345678901";
    let v = rotator
        .rotation(&payments)
        .import_current("k", SecretBytes::from(secret))
        .await
        .unwrap();
    assert_eq!(v, 1);
    let last = f.last();
    assert_eq!(last.event.version, Some(1));
    assert_eq!(
        last.event.fields.get("value_hmac"),
        Some(&f.audit.hmac(secret.as_bytes()))
    );
    assert!(f.sink.lines().iter().all(|l| !l.contains(secret)));
}

// ----- key administration -----

#[tokio::test]
async fn key_administration_needs_sudo_on_sys_keyring() {
    let f = fixture().await;
    // everything on every secret path is not enough
    let root = f.root().key_admin();
    assert_denied(root.rotate().await, Sudo, "sys/keyring");
    assert_denied_record(&f.last(), "root", Operation::KeyringRotate, "sys/keyring");
    assert_denied(root.promote(1).await, Sudo, "sys/keyring");
    assert_denied(root.retire(1).await, Sudo, "sys/keyring");
    assert_denied(root.destroy(1).await, Sudo, "sys/keyring");
    assert_denied(root.rewrap(10).await, Sudo, "sys/keyring");
    assert_denied(
        root.rotate_root_key(&protector(9)).await,
        Sudo,
        "sys/keyring",
    );
    assert_denied(root.keys().await, Read, "sys/keyring");
    assert_denied_record(&f.last(), "root", Operation::ReadMetadata, "sys/keyring");
    // `read` lists but does not administer
    let reader = f
        .principal("reader", &[("sys/keyring", &[Read])])
        .key_admin();
    assert_eq!(reader.keys().await.unwrap().len(), 1);
    assert_denied(reader.rotate().await, Sudo, "sys/keyring");
    assert_eq!(f.sr.keys().unwrap().len(), 1, "not rotated");

    let admin = f.principal("keys", &[("sys/keyring", &[Sudo])]).key_admin();
    assert_eq!(admin.rotate().await.unwrap().version, 2);
    assert_eq!(f.sr.keys().unwrap().len(), 2);
    admin.promote(1).await.unwrap();
    assert_eq!(f.sr.keyring().unwrap().primary_version(), 1);
    admin.promote(2).await.unwrap();
    let report = admin.rewrap(100).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    admin.retire(2).await.unwrap();
    admin.destroy(1).await.unwrap();
    admin.rotate_root_key(&protector(9)).await.unwrap();

    // intent and result per operation, with the versions
    let ops: Vec<(Operation, Option<u64>)> = f
        .records()
        .iter()
        .filter(|r| r.event.principal == "keys")
        .map(|r| (r.event.operation, r.event.version))
        .collect();
    assert_eq!(
        ops,
        [
            (Operation::KeyringRotate, None),
            (Operation::KeyringRotate, Some(2)),
            (Operation::KeyPromote, Some(1)),
            (Operation::KeyPromote, Some(1)),
            (Operation::KeyPromote, Some(2)),
            (Operation::KeyPromote, Some(2)),
            (Operation::Rewrap, None),
            (Operation::Rewrap, Some(2)),
            (Operation::KeyRetire, Some(2)),
            (Operation::KeyRetire, Some(2)),
            (Operation::KeyDestroy, Some(1)),
            (Operation::KeyDestroy, Some(1)),
            (Operation::RootKeyRotate, None),
            (Operation::RootKeyRotate, None),
        ]
    );
    f.chain_verifies();
}

#[tokio::test]
async fn wildcard_rules_do_not_reach_reserved_paths() {
    let f = fixture().await;
    for pattern in ["*", "+/*", "+/keyring"] {
        let h = f
            .principal("wild", &[(pattern, &Capability::ALL)])
            .key_admin();
        assert_denied(h.rotate().await, Sudo, "sys/keyring");
    }
    // a deny on every secret path does not take a sys grant away
    let h = f
        .principal("keys", &[("sys/keyring", &[Sudo]), ("*", &[])])
        .key_admin();
    h.rotate().await.unwrap();
    // a deny under sys does
    let h = f
        .principal("keys", &[("sys/keyring", &[Sudo]), ("sys/*", &[])])
        .key_admin();
    assert_denied(h.rotate().await, Sudo, "sys/keyring");
    assert_eq!(f.sr.keys().unwrap().len(), 2);
}

// ----- the audit trail -----

#[tokio::test]
async fn reading_the_audit_trail_needs_read_on_sys_audit() {
    let f = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let sink = Arc::new(JsonlFileSink::open(&file, FsyncPolicy::OsBuffered).unwrap());
    let log = Arc::new(f.sr.open_audit_log(vec![sink], None).await.unwrap());
    let nobody = f.principal_on(log.clone(), "nobody", &[("*", &Capability::ALL)]);
    assert_denied(
        nobody
            .audit_trail()
            .verify_file(&file, &AuditFileCheck::new())
            .await,
        Read,
        "sys/audit",
    );
    assert_denied(nobody.audit_trail().saved_head().await, Read, "sys/audit");
    let auditor = f.principal_on(log, "auditor", &[("sys/audit", &[Read])]);
    let report = auditor
        .audit_trail()
        .verify_file(&file, &AuditFileCheck::new())
        .await
        .unwrap();
    // two denials and the verification's own intent
    assert_eq!(report.records, 3);
    let head = auditor.audit_trail().saved_head().await.unwrap().unwrap();
    assert!(head.seq >= 4);
}

// ----- fail closed -----

#[tokio::test]
async fn nothing_happens_when_no_sink_accepts_the_record() {
    let f = fixture().await;
    let failing = Arc::new(
        f.sr.open_audit_log(vec![Arc::new(FailingSink)], None)
            .await
            .unwrap(),
    );
    let all: &[(&str, &[Capability])] = &[
        ("*", &Capability::ALL),
        ("sys/keyring", &[Sudo, Read]),
        ("sys/audit", &[Read]),
    ];
    let h = f.principal_on(failing.clone(), "root", all);
    // lease not issued
    assert!(is_audit_error(
        &h.leases(&f.manager).issue(request("db/app/ro")).await
    ));
    assert!(f.live().await.is_empty());
    // lease not revoked (issued by a principal whose log works)
    let lease = f
        .root()
        .leases(&f.manager)
        .issue(request("db/app/ro"))
        .await
        .unwrap();
    let leases = h.leases(&f.manager);
    assert!(is_audit_error(&leases.revoke(lease.id()).await));
    assert!(is_audit_error(&leases.force_revoke(lease.id()).await));
    assert!(is_audit_error(&leases.revoke_prefix("db").await));
    assert!(is_audit_error(&leases.renew(lease.id(), 5 * MIN).await));
    assert!(f.revoker.revoked().is_empty());
    assert_eq!(
        f.manager.lookup(lease.id()).await.unwrap().expires_at(),
        lease.expires_at()
    );
    // key not rotated, nothing promoted or retired
    let keys = h.key_admin();
    assert!(is_audit_error(&keys.rotate().await));
    assert!(is_audit_error(&keys.retire(1).await));
    assert_eq!(f.sr.keys().unwrap().len(), 1);
    // credential not rotated, staged secrets not handed out
    let payments = engine(&f, "payments/api-key").await;
    let rot = h.rotation(&payments);
    assert!(is_audit_error(&rot.rotate_now().await));
    assert_eq!(payments.status().await.unwrap().current, None);
    assert!(is_audit_error(&rot.staged().await));
    // a denial that cannot be recorded fails with the audit error too
    let nobody = f.principal_on(failing, "nobody", &[]);
    assert!(is_audit_error(&nobody.key_admin().rotate().await));
    assert!(is_audit_error(
        &nobody.leases(&f.manager).revoke(lease.id()).await
    ));
}

#[tokio::test]
async fn an_audited_manager_refuses_what_it_cannot_record() {
    let f = fixture().await;
    let failing = Arc::new(
        f.sr.open_audit_log(vec![Arc::new(FailingSink)], None)
            .await
            .unwrap(),
    );
    let (manager, revoker) = manager(&f.sr, &f.clock, Some(failing));
    assert!(is_audit_error(
        &manager
            .issue("db/app/ro", "db", MIN, MIN, true, Vec::new())
            .await
    ));
    assert!(manager.list("").await.unwrap().is_empty());
    assert_eq!(manager.stats().live_leases, 0);
    // a lease the store holds (issued by an unaudited manager on the same
    // store) is not revoked by the audited one
    let lease = f
        .manager
        .issue("db/app/ro", "db", MIN, MIN, true, Vec::new())
        .await
        .unwrap();
    assert!(is_audit_error(&manager.revoke(lease.id()).await));
    assert!(is_audit_error(&manager.renew(lease.id(), MIN).await));
    assert!(revoker.revoked().is_empty());
    assert!(manager.lookup(lease.id()).await.is_ok());
}

// ----- lossless lease audit -----

/// Operation counts per lease id, of the manager's own records.
fn manager_records(recs: &[AuditRecord]) -> HashMap<String, Vec<(Operation, Outcome)>> {
    let mut by_lease: HashMap<String, Vec<(Operation, Outcome)>> = HashMap::new();
    for r in recs {
        if r.event.principal == LEASE_MANAGER_PRINCIPAL {
            let id = r.event.lease_id.clone().expect("a lease id");
            by_lease
                .entry(id)
                .or_default()
                .push((r.event.operation, r.event.outcome.clone()));
        }
    }
    by_lease
}

#[tokio::test]
async fn every_issue_and_expiry_has_exactly_one_record() {
    let f = fixture().await;
    let (manager, revoker) = manager(&f.sr, &f.clock, Some(f.audit.clone()));
    const N: usize = 40;
    let mut ids = Vec::new();
    for i in 0..N / 2 {
        let ttl = MIN + Duration::from_secs(i as u64);
        let lease = manager
            .issue(&format!("db/app/l{i}"), "db", ttl, ttl, true, Vec::new())
            .await
            .unwrap();
        ids.push(lease.id());
    }
    let batch = (0..N / 2)
        .map(|i| LeaseRequest::new(format!("db/batch/l{i}"), "db", MIN, MIN))
        .collect();
    ids.extend(
        manager
            .issue_batch(batch)
            .await
            .unwrap()
            .iter()
            .map(Lease::id),
    );
    // the expiring-soon pass, then expiry
    f.clock.advance(MIN / 2);
    manager.run_due().await.unwrap();
    f.clock.advance(2 * MIN);
    let report = manager.run_due().await.unwrap();
    assert_eq!(report.revoked, N);
    assert_eq!(revoker.revoked().len(), N);
    assert!(manager.list("").await.unwrap().is_empty());

    let by_lease = manager_records(&f.records());
    assert_eq!(by_lease.len(), N);
    for id in &ids {
        assert_eq!(
            by_lease[&id.to_string()],
            [
                (Operation::LeaseIssue, Outcome::Allowed),
                (Operation::LeaseRevoke, Outcome::Allowed)
            ],
            "{id}"
        );
    }
    assert_eq!(f.records().len(), 2 * N);
    f.chain_verifies();
}

#[tokio::test]
async fn an_expiry_that_cannot_be_recorded_waits_for_the_audit() {
    let f = fixture().await;
    let sink = Arc::new(SwitchSink::default());
    let log = Arc::new(f.sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let (manager, revoker) = manager(&f.sr, &f.clock, Some(log));
    let mut ids = Vec::new();
    for i in 0..3 {
        let path = format!("db/app/l{i}");
        ids.push(
            manager
                .issue(&path, "db", MIN, MIN, true, Vec::new())
                .await
                .unwrap()
                .id(),
        );
    }
    f.clock.advance(2 * MIN);
    sink.close(true);
    let report = manager.run_due().await.unwrap();
    assert_eq!(report.revoked, 0, "no revocation without its record");
    assert!(report.errors > 0);
    assert!(revoker.revoked().is_empty());
    assert_eq!(manager.list("").await.unwrap().len(), 3, "still due");
    // the sink is back: the next pass after the retry delay revokes them
    sink.close(false);
    f.clock.advance(Duration::from_secs(10));
    let report = manager.run_due().await.unwrap();
    assert_eq!(report.revoked, 3);
    assert_eq!(revoker.revoked().len(), 3);
    let recs = sink.inner.records().unwrap();
    let by_lease = manager_records(&recs);
    for id in &ids {
        assert_eq!(
            by_lease[&id.to_string()],
            [
                (Operation::LeaseIssue, Outcome::Allowed),
                (Operation::LeaseRevoke, Outcome::Allowed)
            ]
        );
    }
    verify(&recs, &f.sr.audit_key().unwrap(), None, None).unwrap();
}

// ----- the door to unchecked access -----

/// A store opened without the door: only what needs no policy.
async fn bare_store() -> Strongroom {
    Strongroom::init(
        Arc::new(MemoryStorage::new()),
        &protector(7),
        Options::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn opening_the_door_is_audited_before_it_is_handed_out() {
    let sr = bare_store().await;
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let door = sr.dangerous("migration-job", &audit).await.unwrap();
    let recs = sink.records().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].event.principal, "dangerous:migration-job");
    assert_eq!(recs[0].event.operation, Operation::DangerousOpen);
    assert_eq!(recs[0].event.outcome, Outcome::Allowed);
    // Unchecked calls through the door write nothing more.
    door.secrets().put("app/db", b"pw", None).await.unwrap();
    assert_eq!(
        door.secrets()
            .get("app/db")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"pw"
    );
    assert_eq!(sink.records().unwrap().len(), 1);
    // The door's record does not move the saved head on its own.
    assert_eq!(sr.saved_audit_head().await.unwrap(), None);
    let report = verify(sink.lines(), &door.audit_key().unwrap(), None, None).unwrap();
    assert_eq!(report.records, 1);
}

#[tokio::test]
async fn no_door_opens_when_no_sink_accepts_its_record() {
    let sr = bare_store().await;
    let audit = Arc::new(
        sr.open_audit_log(vec![Arc::new(FailingSink)], None)
            .await
            .unwrap(),
    );
    let err = sr.dangerous("job", &audit).await.unwrap_err();
    assert!(matches!(err, Error::Audit(_)), "{err:?}");
}

#[tokio::test]
async fn door_callers_are_named_plainly() {
    let sr = bare_store().await;
    let long = "x".repeat(strongroom::dangerous::MAX_CALLER_LEN + 1);
    for bad in ["", "line\nbreak", "nul\0", long.as_str()] {
        let err = sr.dangerous_traced(bad).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_argument", "{bad:?}");
    }
    let ok = "y".repeat(strongroom::dangerous::MAX_CALLER_LEN);
    sr.dangerous_traced(&ok).await.unwrap();
}

#[tokio::test]
async fn key_administration_through_the_door_is_audited_as_its_principal() {
    let sr = bare_store().await;
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let door = sr.dangerous("ops", &audit).await.unwrap();
    assert_eq!(door.key_admin().rotate().await.unwrap().version, 2);
    // A secret through the door's handle is audited too.
    door.handle().put("app/x", b"v", None).await.unwrap();
    let ops: Vec<(String, Operation, Outcome)> = sink
        .records()
        .unwrap()
        .into_iter()
        .map(|r| (r.event.principal, r.event.operation, r.event.outcome))
        .collect();
    let who = "dangerous:ops".to_owned();
    assert_eq!(
        ops,
        vec![
            (who.clone(), Operation::DangerousOpen, Outcome::Allowed),
            (who.clone(), Operation::KeyringRotate, Outcome::Allowed),
            (who.clone(), Operation::KeyringRotate, Outcome::Allowed),
            (who.clone(), Operation::Write, Outcome::Allowed),
            (who, Operation::Write, Outcome::Allowed),
        ]
    );
    // Raw key administration through the door records nothing.
    door.rotate().await.unwrap();
    assert_eq!(sink.records().unwrap().len(), 5);
    assert_eq!(door.keys().unwrap().len(), 3);
}

#[tokio::test]
async fn a_traced_door_leaves_the_stores_audit_file_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let sr = bare_store().await;
    let open_file_log = || async {
        let sink = Arc::new(JsonlFileSink::open(&file, FsyncPolicy::OsBuffered).unwrap());
        Arc::new(sr.open_audit_log(vec![sink], Some(&file)).await.unwrap())
    };
    let log = open_file_log().await;
    let door = sr.dangerous("svc", &log).await.unwrap();
    door.handle().put("app/a", b"1", None).await.unwrap();
    let head = sr.saved_audit_head().await.unwrap().unwrap();
    drop(log);
    // Doors opened with logs of their own (tracing) never move the head.
    for _ in 0..3 {
        sr.dangerous_traced("tool").await.unwrap();
    }
    assert_eq!(sr.saved_audit_head().await.unwrap(), Some(head));
    let log = open_file_log().await;
    let door = sr.dangerous("svc", &log).await.unwrap();
    door.handle().put("app/b", b"2", None).await.unwrap();
    let check = AuditFileCheck::new();
    let report = sr.verify_audit_file(&file, &check).await.unwrap();
    assert_eq!(report.records, 6);
}

// ----- sealed records -----

#[tokio::test]
async fn sealed_records_need_create_and_update_to_store_and_read_to_open() {
    use Capability::{Create, Update};
    use strongroom::seal::SealContext;
    let f = fixture().await;
    let ctx = SealContext::new("app/token", 1);
    let reader = f.principal("reader", &[("app/*", &[Read])]);
    assert_denied(
        reader.put_sealed("s/app", b"tok", &ctx).await,
        Create,
        "app/token",
    );
    assert_denied_record(&f.last(), "reader", Operation::Write, "app/token");
    let creator = f.principal("creator", &[("app/*", &[Create])]);
    assert_denied(
        creator.put_sealed("s/app", b"tok", &ctx).await,
        Update,
        "app/token",
    );
    assert!(reader.get_sealed("s/app", &ctx).await.unwrap().is_none());

    let writer = f.principal("writer", &[("app/*", &[Create, Update])]);
    writer
        .put_sealed("s/app", b"tok-secret", &ctx)
        .await
        .unwrap();
    let got = reader.get_sealed("s/app", &ctx).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), b"tok-secret");
    let last = f.last();
    assert_eq!(
        (
            last.event.principal.as_str(),
            last.event.operation,
            last.event.outcome
        ),
        ("reader", Operation::Read, Outcome::Allowed)
    );
    assert_eq!(last.event.version, Some(1));
    // Another context path: the writer's rules do not reach it.
    let other = SealContext::new("billing/token", 1);
    assert_denied(
        writer.get_sealed("s/app", &other).await,
        Read,
        "billing/token",
    );
    assert!(!format!("{:?}", f.sink.lines()).contains("tok-secret"));
    f.chain_verifies();
}

#[tokio::test]
async fn rewrap_with_progress_counts_its_work_then_reports_each_batch() {
    let f = fixture().await;
    let root = f.root();
    for i in 0..25 {
        // Two versions: the first moves to a version record of its own.
        root.put(&format!("app/s{i}"), b"v1", None).await.unwrap();
        root.put(&format!("app/s{i}"), b"v2", None).await.unwrap();
    }
    let admin = f.principal("keys", &[("sys/keyring", &[Sudo])]).key_admin();
    assert_eq!(admin.rotate().await.unwrap().version, 2);
    let mut seen = Vec::new();
    let mut observe = |p: strongroom::RewrapProgress| seen.push(p);
    let report = admin.rewrap_with_progress(10, &mut observe).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    // first the count (nothing done yet), then one report per committed batch
    let first = seen[0];
    assert_eq!((first.pass, first.rewrapped_this_pass), (1, 0));
    assert!(
        first.to_rewrap >= 50,
        "25 secrets: metadata records (with version 2) and version 1's records"
    );
    assert!(
        seen.len() >= 6,
        "{} reports: a count and five batches",
        seen.len()
    );
    for pair in seen.windows(2) {
        assert!(pair[1].scanned >= pair[0].scanned && pair[1].rewrapped >= pair[0].rewrapped);
    }
    let last = *seen.last().unwrap();
    assert_eq!(last.rewrapped, report.rewrapped);
    assert_eq!(
        last.rewrapped_this_pass, first.to_rewrap,
        "the count was the work"
    );
    // audited as a rewrap, intent and outcome
    let ops: Vec<Operation> = f
        .records()
        .iter()
        .filter(|r| r.event.principal == "keys")
        .map(|r| r.event.operation)
        .collect();
    assert_eq!(ops[ops.len() - 2..], [Operation::Rewrap, Operation::Rewrap]);
    f.chain_verifies();
}
