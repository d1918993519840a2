//! Dynamic credentials and the audit: with an audit log on the lease
//! manager, an issue is recorded before the role exists on the server, and
//! when no sink accepts the record nothing is created and no password is
//! returned (fail closed). Against a real server (strongroom-testpg).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use strongroom::audit::{AuditError, AuditLog, AuditRecord, AuditSink, MemorySink, Operation};
use strongroom::clock::SystemClock;
use strongroom::lease::LeaseConfig;
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_sqlx::dynamic::{PgDynamicConfig, PgDynamicCredentials, PgRoleDefinition};
use strongroom_testpg::TestPostgres;

/// A sink that refuses every record.
#[derive(Debug)]
struct Refusing;

#[async_trait]
impl AuditSink for Refusing {
    fn name(&self) -> &str {
        "refusing"
    }
    async fn write(&self, _r: &AuditRecord, _line: &str) -> Result<(), AuditError> {
        Err(AuditError::Sink {
            sink: "refusing".into(),
            message: "disk full".into(),
        })
    }
}

/// A sink that, for each record, notes how many of the engine's roles
/// exist on the server at that moment.
#[derive(Debug)]
struct Probing {
    pool: sqlx::PgPool,
    prefix: String,
    seen: std::sync::Mutex<Vec<i64>>,
}

#[async_trait]
impl AuditSink for Probing {
    fn name(&self) -> &str {
        "probing"
    }
    async fn write(&self, _r: &AuditRecord, _line: &str) -> Result<(), AuditError> {
        let n = roles_with_prefix(&self.pool, &self.prefix).await;
        self.seen.lock().unwrap().push(n);
        Ok(())
    }
}

async fn roles_with_prefix(pool: &sqlx::PgPool, prefix: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)")
        .bind(prefix)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn issue_is_audited_before_the_role_exists_and_fails_closed() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("dynaudit").await.unwrap();
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![3; 32])).unwrap();
    let store = Strongroom::init(
        Arc::new(MemoryStorage::new()),
        &protector,
        Options::default(),
    )
    .await
    .unwrap()
    .dangerous_traced("test")
    .await
    .unwrap();
    let def = PgRoleDefinition::new("audited").unwrap();
    let engine_for = |audit: Arc<AuditLog>, prefix: &str| {
        let leases = Arc::new(
            store
                .lease_manager(Arc::new(SystemClock), LeaseConfig::default())
                .unwrap()
                .with_audit(audit),
        );
        let mut config = PgDynamicConfig::default();
        config.role_prefix = prefix.to_owned();
        PgDynamicCredentials::new(
            admin.clone(),
            leases,
            store.clone(),
            Arc::new(SystemClock),
            config,
        )
        .unwrap()
    };

    // No sink accepts: nothing is created, no password comes back.
    let refusing = Arc::new(
        AuditLog::new(
            store.audit_key().unwrap(),
            vec![Arc::new(Refusing)],
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let engine = engine_for(refusing, "sr_aud_no_");
    let err = engine
        .issue(&def, Some(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("audit") || err.to_string().contains("sink"),
        "{err}"
    );
    assert_eq!(roles_with_prefix(&admin, "sr_aud_no_").await, 0);

    // A working sink: the issue record comes first, then the lease's.
    let sink = Arc::new(MemorySink::new());
    let probe = Arc::new(Probing {
        pool: admin.clone(),
        prefix: "sr_aud_ok_".into(),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let log = Arc::new(
        AuditLog::new(
            store.audit_key().unwrap(),
            vec![sink.clone(), probe.clone()],
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let engine = engine_for(log, "sr_aud_ok_");
    let (lease, cred) = engine
        .issue(&def, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(roles_with_prefix(&admin, "sr_aud_ok_").await, 1);
    let seen = probe.seen.lock().unwrap().clone();
    assert_eq!(
        seen.first(),
        Some(&0),
        "the first record precedes the role: {seen:?}"
    );
    let records = sink.records().unwrap();
    assert!(records.len() >= 2, "{records:?}");
    let first = &records[0].event;
    assert_eq!(first.principal, "dynamic:postgres");
    assert_eq!(first.operation, Operation::LeaseIssue);
    assert_eq!(first.path.as_deref(), Some(lease.path()));
    assert!(
        records
            .iter()
            .any(|r| r.event.lease_id.as_deref() == Some(&lease.id().to_string())),
        "the lease itself is audited"
    );
    let text = format!("{records:?}");
    assert!(
        !text.contains(cred.password.expose_secret()),
        "no password in the audit"
    );
}

/// Through a principal's handle: `lease` on the lease path is needed; a
/// refusal is audited and creates nothing; an allowed issue is recorded
/// (intent before the role, outcome with the lease id) under the principal.
#[tokio::test]
async fn issue_as_a_principal_is_checked_and_audited() {
    use strongroom::audit::Outcome;
    use strongroom::policy::{Capability, Policy, Principal, Rule};
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("dynprincipal").await.unwrap();
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![4; 32])).unwrap();
    let store = Strongroom::init(
        Arc::new(MemoryStorage::new()),
        &protector,
        Options::default(),
    )
    .await
    .unwrap()
    .dangerous_traced("test")
    .await
    .unwrap();
    let leases = Arc::new(
        store
            .lease_manager(Arc::new(SystemClock), LeaseConfig::default())
            .unwrap(),
    );
    let mut config = PgDynamicConfig::default();
    config.role_prefix = "sr_who_".to_owned();
    let engine = PgDynamicCredentials::new(
        admin.clone(),
        leases,
        store.clone(),
        Arc::new(SystemClock),
        config,
    )
    .unwrap();
    let readonly = PgRoleDefinition::new("readonly").unwrap();
    let writer = PgRoleDefinition::new("writer").unwrap();
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(
        store
            .open_audit_log(vec![sink.clone()], None)
            .await
            .unwrap(),
    );
    let policy = Policy::new(
        "app",
        vec![Rule::allow(&engine.lease_path(&readonly), [Capability::Lease]).unwrap()],
    );
    let app = store.as_principal(Principal::new("app", [&policy]), audit);

    let err = engine
        .issue_as(&app, &writer, Some(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("may not lease"), "{err}");
    assert_eq!(roles_with_prefix(&admin, "sr_who_").await, 0);

    let (lease, cred) = engine
        .issue_as(&app, &readonly, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(roles_with_prefix(&admin, "sr_who_").await, 1);
    let mine: Vec<(Option<String>, Outcome, Option<String>)> = sink
        .records()
        .unwrap()
        .into_iter()
        .filter(|r| r.event.principal == "app")
        .map(|r| (r.event.path, r.event.outcome, r.event.lease_id))
        .collect();
    assert_eq!(
        mine,
        vec![
            (Some(engine.lease_path(&writer)), Outcome::Denied, None),
            (Some(engine.lease_path(&readonly)), Outcome::Allowed, None),
            (
                Some(engine.lease_path(&readonly)),
                Outcome::Allowed,
                Some(lease.id().to_string())
            ),
        ]
    );
    let text = format!("{:?}", sink.lines());
    assert!(!text.contains(cred.password.expose_secret()));
}
