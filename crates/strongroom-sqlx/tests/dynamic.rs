//! Dynamic PostgreSQL credentials against a real server (a private cluster
//! per test binary from strongroom-testpg, or `STRONGROOM_TEST_PG_URL`).
//!
//! Roles are cluster-wide, so every test gives its engine its own role
//! prefix and sweeps only that.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};
use strongroom::clock::{Clock, ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{Lease, LeaseConfig, LeaseError, LeaseId, LeaseManager, Revoker};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{
    KEYRING_GENERATION, KEYRING_RECORD, Options, ROOT_KEY_RECORD, ROOT_UPGRADE_RECORD, SecretBytes,
    Strongroom,
};
use strongroom_sqlx::PgStore;
use strongroom_sqlx::dynamic::{
    CrashPoint, INTENT_PREFIX, LEGACY_INTENT_PREFIX, PgCredential, PgDynError, PgDynamicConfig,
    PgDynamicCredentials, PgGrant, PgObject, PgOwnedObjects, PgPrivilege, PgRoleDefinition,
    REVOCATION_KEY_RECORD, Rejection,
};
use strongroom_testpg::TestPostgres;

const MIN: Duration = Duration::from_secs(60);

fn real_now() -> Timestamp {
    Timestamp::from_millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

struct Env {
    pg: Arc<TestPostgres>,
    db: String,
    admin: PgPool,
    storage: DynStorage,
    store: Door,
    clock: Arc<ManualClock>,
    leases: Arc<LeaseManager>,
    engine: PgDynamicCredentials,
    prefix: String,
}

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![0x5a; 32])).unwrap()
}

fn options(clock: Arc<dyn Clock>) -> Options {
    Options {
        clock,
        ..Options::default()
    }
}

/// The store over `storage`: created on first use, unsealed after that (as
/// a restarted process does).
async fn open_store(storage: &DynStorage, clock: Arc<dyn Clock>) -> Door {
    if Strongroom::is_initialized(storage).await.unwrap() {
        Strongroom::unseal(storage.clone(), &protector(), options(clock))
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap()
    } else {
        Strongroom::init(storage.clone(), &protector(), options(clock))
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap()
    }
}

impl Env {
    async fn new(label: &str) -> Self {
        Self::with_storage(label, Arc::new(MemoryStorage::new())).await
    }

    async fn with_storage(label: &str, storage: DynStorage) -> Self {
        Self::with_config(label, storage, LeaseConfig::default()).await
    }

    async fn with_config(label: &str, storage: DynStorage, lease_config: LeaseConfig) -> Self {
        let pg = TestPostgres::shared().unwrap();
        let url = pg.fresh_database(label).await.unwrap();
        let db = url.rsplit('/').next().unwrap().to_owned();
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(real_now()));
        let prefix = format!("sr_{label}_");
        let store = open_store(&storage, clock.clone()).await;
        let leases = Arc::new(store.lease_manager(clock.clone(), lease_config).unwrap());
        let engine = PgDynamicCredentials::new(
            admin.clone(),
            leases.clone(),
            store.clone(),
            clock.clone(),
            config(&prefix),
        )
        .unwrap();
        Self {
            pg,
            db,
            admin,
            storage,
            store,
            clock,
            leases,
            engine,
            prefix,
        }
    }

    /// A new store, lease manager and engine over the same storage, as
    /// after a process restart. The new engine is configured with
    /// `definitions`.
    async fn restart(&mut self, definitions: &[&PgRoleDefinition]) {
        self.store = open_store(&self.storage, self.clock.clone()).await;
        self.leases = Arc::new(
            self.store
                .lease_manager(self.clock.clone(), LeaseConfig::default())
                .unwrap(),
        );
        self.engine = PgDynamicCredentials::new(
            self.admin.clone(),
            self.leases.clone(),
            self.store.clone(),
            self.clock.clone(),
            config(&self.prefix),
        )
        .unwrap();
        for d in definitions {
            self.engine.define(d).unwrap();
        }
    }

    async fn login(&self, cred: &PgCredential) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect(&self.pg.url_for(
            &cred.username,
            cred.password.expose_secret(),
            &self.db,
        ))
        .await
    }

    async fn exec(&self, sql: &'static str) {
        self.admin.execute(sql).await.unwrap();
    }

    async fn role_exists(&self, role: &str) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }

    async fn prefixed_roles(&self) -> BTreeSet<String> {
        sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname::text, $1)",
        )
        .bind(&self.prefix)
        .fetch_all(&self.admin)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// `rolvaliduntil` in milliseconds since the epoch.
    async fn valid_until(&self, role: &str) -> u64 {
        let ms: f64 = sqlx::query_scalar(
            "SELECT (extract(epoch FROM rolvaliduntil) * 1000)::float8 FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_one(&self.admin)
        .await
        .unwrap();
        ms.round() as u64
    }

    /// The role names the engine's live leases own.
    async fn leased_roles(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for id in self.leases.list("database").await.unwrap() {
            let lease = self.leases.lookup(id).await.unwrap();
            out.insert(self.engine.role_of(&lease).await.unwrap());
        }
        out
    }

    async fn drop_role_by_hand(&self, role: &str) {
        let sql: String = sqlx::query_scalar("SELECT format('DROP ROLE %I', $1::text)")
            .bind(role)
            .fetch_one(&self.admin)
            .await
            .unwrap();
        self.admin.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
}

fn config(prefix: &str) -> PgDynamicConfig {
    let mut c = PgDynamicConfig::default();
    c.role_prefix = prefix.to_owned();
    c
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn readonly(db: &str) -> PgRoleDefinition {
    PgRoleDefinition::new("app")
        .unwrap()
        .grant(PgGrant::new([PgPrivilege::Connect], PgObject::database(db)))
        .grant(PgGrant::new(
            [PgPrivilege::Usage],
            PgObject::schema("public"),
        ))
        .grant(PgGrant::new(
            [PgPrivilege::Select],
            PgObject::table("public", "allowed"),
        ))
        .default_ttl(10 * MIN)
        .max_ttl(60 * MIN)
}

#[tokio::test]
async fn issue_login_query_renew_revoke() {
    let env = Env::new("life").await;
    env.exec("CREATE TABLE allowed (x int); INSERT INTO allowed VALUES (1), (2); CREATE TABLE forbidden (x int)")
        .await;
    let t0 = Instant::now();
    let (lease, cred) = env.engine.issue(&readonly(&env.db), None).await.unwrap();
    let issue_ms = t0.elapsed().as_millis();
    assert!(
        cred.username.starts_with("sr_life_app_"),
        "{}",
        cred.username
    );
    assert!(cred.username.len() <= 63);
    assert!(!format!("{cred:?}").contains(cred.password.expose_secret()));
    assert_eq!(lease.path(), "database/creds/app");
    assert_eq!(lease.expires_at(), env.clock.now() + 10 * MIN);
    // VALID UNTIL is the lease's end.
    assert_eq!(
        env.valid_until(&cred.username).await,
        lease.expires_at().as_millis()
    );
    // No intent is left behind by a finished issue.
    assert!(env.storage.list(INTENT_PREFIX).await.unwrap().is_empty());
    // The plaintext password never reached the server: it stores a verifier.
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&cred.username)
        .fetch_one(&env.admin)
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"));
    assert!(!env.pg.read_log().contains(cred.password.expose_secret()));

    let mut conn = env.login(&cred).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM allowed")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let denied = sqlx::query("SELECT * FROM forbidden")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&denied).as_deref(), Some("42501"), "{denied}");
    let denied = sqlx::query("INSERT INTO allowed VALUES (3)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&denied).as_deref(), Some("42501"), "{denied}");

    // Renew: the lease and VALID UNTIL move together.
    env.clock.advance(5 * MIN);
    let renewed = env.leases.renew(lease.id(), 30 * MIN).await.unwrap();
    assert_eq!(renewed.expires_at(), env.clock.now() + 30 * MIN);
    assert_eq!(
        env.valid_until(&cred.username).await,
        renewed.expires_at().as_millis()
    );

    // Revoke: the open session is ended, the role is gone, and a new login
    // fails the way every failed password does.
    let t1 = Instant::now();
    env.leases.revoke(lease.id()).await.unwrap();
    let revoke_ms = t1.elapsed().as_millis();
    assert!(!env.role_exists(&cred.username).await);
    assert!(
        sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
        "the role's session survived revocation"
    );
    let err = env.login(&cred).await.unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");
    let log = env.pg.read_log();
    assert!(
        log.contains(&format!("Role \"{}\" does not exist", cred.username)),
        "server log does not say why the login failed"
    );
    // Gone for the manager too; a second revoke is a typed not-found.
    assert!(matches!(
        env.leases.revoke(lease.id()).await.unwrap_err(),
        strongroom::Error::Lease(LeaseError::NotFound { .. })
    ));
    println!("issue {issue_ms} ms, revoke {revoke_ms} ms");
}

#[tokio::test]
async fn expiry_by_the_clock_revokes_and_postgres_enforces_valid_until() {
    let env = Env::new("expiry").await;
    env.exec("CREATE TABLE allowed (x int)").await;
    let def = readonly(&env.db);
    let (lease, cred) = env.engine.issue(&def, Some(MIN)).await.unwrap();
    env.login(&cred).await.unwrap().close().await.unwrap();

    env.clock.advance(MIN - Duration::from_millis(1));
    let report = env.leases.run_due().await.unwrap();
    assert_eq!(report.revoked, 0);
    assert!(env.role_exists(&cred.username).await);

    env.clock.advance(Duration::from_millis(1));
    let report = env.leases.run_due().await.unwrap();
    assert_eq!(report.revoked, 1);
    assert!(!env.role_exists(&cred.username).await);
    assert!(env.leases.lookup(lease.id()).await.is_err());
    let err = env.login(&cred).await.unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");

    // VALID UNTIL alone refuses a role whose lease ended, even if revocation
    // never ran: an engine whose clock is two hours behind issues a role
    // whose one-minute lease ended (by the server's clock) long ago.
    env.clock.set(real_now() - 120 * MIN);
    let (_late, stale) = env.engine.issue(&def, Some(MIN)).await.unwrap();
    assert!(env.role_exists(&stale.username).await);
    let err = env.login(&stale).await.unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");
    assert!(
        env.pg.read_log().contains(&format!(
            "User \"{}\" has an expired password",
            stale.username
        )),
        "server log does not name the expired VALID UNTIL"
    );
}

#[tokio::test]
async fn renewal_is_capped_at_max_ttl() {
    let env = Env::new("cap").await;
    let def = PgRoleDefinition::new("capped")
        .unwrap()
        .default_ttl(5 * MIN)
        .max_ttl(10 * MIN);
    // Asking for more than max TTL at issue is cut to max TTL.
    let (long, long_cred) = env.engine.issue(&def, Some(600 * MIN)).await.unwrap();
    assert_eq!(long.expires_at(), long.issued_at() + 10 * MIN);
    assert_eq!(
        env.valid_until(&long_cred.username).await,
        long.expires_at().as_millis()
    );

    let (lease, cred) = env.engine.issue(&def, None).await.unwrap();
    let hard_end = lease.issued_at() + 10 * MIN;
    env.clock.advance(4 * MIN);
    let r = env.leases.renew(lease.id(), 60 * MIN).await.unwrap();
    assert_eq!(r.expires_at(), hard_end);
    assert_eq!(env.valid_until(&cred.username).await, hard_end.as_millis());
    // Within a second of max TTL a renewal does not push the end out.
    env.clock.set(hard_end - Duration::from_millis(500));
    let r = env.leases.renew(lease.id(), 60 * MIN).await.unwrap();
    assert_eq!(r.expires_at(), hard_end);
    assert_eq!(env.valid_until(&cred.username).await, hard_end.as_millis());
    env.clock.set(hard_end);
    assert!(env.leases.renew(lease.id(), MIN).await.is_err());
    assert_eq!(env.leases.run_due().await.unwrap().revoked, 2);
    assert!(!env.role_exists(&cred.username).await);
    assert!(!env.role_exists(&long_cred.username).await);
}

#[tokio::test]
async fn renewing_a_lease_whose_role_was_dropped_fails_and_revoke_is_idempotent() {
    let env = Env::new("gone").await;
    let def = PgRoleDefinition::new("gone").unwrap();
    let (lease, cred) = env.engine.issue(&def, None).await.unwrap();
    env.drop_role_by_hand(&cred.username).await;
    let err = env.leases.renew(lease.id(), MIN).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    // Revoking a lease whose role is already gone succeeds.
    env.leases.revoke(lease.id()).await.unwrap();
}

#[tokio::test]
async fn hostile_inputs_are_quoted_or_refused() {
    let env = Env::new("hostile").await;
    env.exec("CREATE TABLE allowed (x int)").await;
    let hostile = [
        "x\"; DROP ROLE postgres; --",
        "it's; DROP TABLE allowed; --",
        "tablé_ü_😀",
        "%I %L %s %%",
        "{{name}}",
    ];
    for name in hostile {
        let sql = format!(
            "CREATE TABLE {} (v int); INSERT INTO {0} VALUES (7)",
            quote_ident(name)
        );
        env.admin.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    let mut def = PgRoleDefinition::new("h").unwrap().grant(PgGrant::new(
        [PgPrivilege::Connect],
        PgObject::database(env.db.clone()),
    ));
    for name in hostile {
        def = def.grant(PgGrant::new(
            [PgPrivilege::Select],
            PgObject::table("public", name),
        ));
    }
    let (_lease, cred) = env.engine.issue(&def, None).await.unwrap();
    let mut conn = env.login(&cred).await.unwrap();
    for name in hostile {
        let sql = format!("SELECT v FROM {}", quote_ident(name));
        let v: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(v, 7, "{name}");
    }
    conn.close().await.unwrap();

    // A hostile name that is no object: the server says so, nothing is left.
    let before = env.prefixed_roles().await;
    for (object, code) in [
        (
            PgObject::table("public", "'; DROP TABLE allowed; --"),
            "42P01",
        ),
        (
            PgObject::all_tables_in_schema("public; DROP ROLE postgres"),
            "3F000",
        ),
        (PgObject::role("postgres\"; --"), "42704"),
    ] {
        let def = PgRoleDefinition::new("h2")
            .unwrap()
            .grant(PgGrant::new([PgPrivilege::Select], object.clone()));
        let err = env.engine.issue(&def, None).await.unwrap_err();
        assert_eq!(err.sqlstate(), Some(code), "{object:?}: {err}");
    }
    assert_eq!(env.prefixed_roles().await, before);
    assert!(env.storage.list(INTENT_PREFIX).await.unwrap().is_empty());

    // Names the server would change or cannot carry are refused before
    // anything happens.
    for object in [
        PgObject::table("public", "t".repeat(64)),
        PgObject::table("public", "é".repeat(32)),
        PgObject::table("public", "nul\0byte"),
        PgObject::schema(""),
    ] {
        let def = PgRoleDefinition::new("h3")
            .unwrap()
            .grant(PgGrant::new([PgPrivilege::Usage], object.clone()));
        assert!(
            matches!(
                env.engine.issue(&def, None).await,
                Err(PgDynError::InvalidIdentifier { .. })
            ),
            "{object:?}"
        );
    }
    let def = PgRoleDefinition::new("h4")
        .unwrap()
        .owned_objects(PgOwnedObjects::ReassignTo("x".repeat(80)));
    assert!(matches!(
        env.engine.issue(&def, None).await,
        Err(PgDynError::InvalidIdentifier { .. })
    ));

    // Hostile definition names are refused with a typed error; the longest
    // allowed one is cut to fit a 63-byte role name and works.
    for name in [
        "x\"; DROP ROLE postgres; --",
        "a'b",
        "semi;colon",
        "ünïcode",
        "UPPER",
        &"a".repeat(65),
    ] {
        assert!(
            matches!(
                PgRoleDefinition::new(name),
                Err(PgDynError::InvalidDefinitionName { .. })
            ),
            "{name:?}"
        );
    }
    let long = PgRoleDefinition::new("d".repeat(64)).unwrap();
    let (_l, cred) = env.engine.issue(&long, None).await.unwrap();
    assert_eq!(cred.username.len(), 63);
    assert!(env.role_exists(&cred.username).await);
    let mut conn = env.login(&cred).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();

    // Unknown placeholders in templates are refused.
    let bad = PgRoleDefinition::new("h5")
        .unwrap()
        .creation_statements(["CREATE ROLE {{name}} PASSWORD {{secret}}".to_owned()]);
    assert!(matches!(
        env.engine.issue(&bad, None).await,
        Err(PgDynError::InvalidTemplate { .. })
    ));

    // Engine settings that would reach role names or lease paths are checked.
    for prefix in ["", "Sr_", "sr\"; --", "1sr_", "ŝr_", &"s".repeat(25)] {
        let r = PgDynamicCredentials::new(
            env.admin.clone(),
            env.leases.clone(),
            env.store.clone(),
            env.clock.clone(),
            config(prefix),
        );
        assert!(
            matches!(r, Err(PgDynError::InvalidRolePrefix { .. })),
            "{prefix:?}"
        );
    }
    let mut bad_mount = config("sr_hostile_");
    bad_mount.mount = "db/../x".into();
    assert!(
        PgDynamicCredentials::new(
            env.admin.clone(),
            env.leases.clone(),
            env.store.clone(),
            env.clock.clone(),
            bad_mount,
        )
        .is_err()
    );

    // Everything still stands.
    assert!(env.role_exists("postgres").await);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM allowed")
        .fetch_one(&env.admin)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(env.prefixed_roles().await, env.leased_roles().await);
}

#[tokio::test]
async fn a_refused_lease_leaves_no_role() {
    let mut lease_config = LeaseConfig::default();
    lease_config.max_leases = Some(1);
    let env = Env::with_config("quota", Arc::new(MemoryStorage::new()), lease_config).await;
    let def = PgRoleDefinition::new("q").unwrap();
    let (_lease, cred) = env.engine.issue(&def, None).await.unwrap();
    let err = env.engine.issue(&def, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            PgDynError::Core(strongroom::Error::Lease(LeaseError::QuotaExceeded { .. }))
        ),
        "{err}"
    );
    assert_eq!(
        env.prefixed_roles().await,
        BTreeSet::from([cred.username.clone()])
    );
    assert!(env.storage.list(INTENT_PREFIX).await.unwrap().is_empty());
}

/// The administrator needs no superuser: CREATEROLE and grant options do.
#[tokio::test]
async fn a_createrole_administrator_issues_and_revokes() {
    let env = Env::new("nosuper").await;
    env.exec(
        "CREATE TABLE allowed (x int); INSERT INTO allowed VALUES (1); \
         CREATE ROLE nosuper_admin LOGIN CREATEROLE PASSWORD 'adminpw'; \
         GRANT SELECT ON allowed TO nosuper_admin WITH GRANT OPTION; \
         GRANT CREATE ON SCHEMA public TO nosuper_admin WITH GRANT OPTION",
    )
    .await;
    let sql = format!(
        "GRANT CONNECT ON DATABASE {} TO nosuper_admin WITH GRANT OPTION",
        quote_ident(&env.db)
    );
    env.admin.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    let admin = PgPool::connect(&env.pg.url_for("nosuper_admin", "adminpw", &env.db))
        .await
        .unwrap();
    let leases = Arc::new(
        env.store
            .lease_manager(env.clock.clone(), LeaseConfig::default())
            .unwrap(),
    );
    let engine = PgDynamicCredentials::new(
        admin,
        leases.clone(),
        env.store.clone(),
        env.clock.clone(),
        config(&env.prefix),
    )
    .unwrap();
    let def = PgRoleDefinition::new("app")
        .unwrap()
        .grant(PgGrant::new(
            [PgPrivilege::Connect],
            PgObject::database(env.db.clone()),
        ))
        .grant(PgGrant::new(
            [PgPrivilege::Create],
            PgObject::schema("public"),
        ))
        .grant(PgGrant::new(
            [PgPrivilege::Select],
            PgObject::table("public", "allowed"),
        ));
    let (lease, cred) = engine.issue(&def, None).await.unwrap();
    let mut conn = env.login(&cred).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM allowed")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 1);
    conn.execute("CREATE TABLE made_by_dynamic (x int)")
        .await
        .unwrap();
    leases.renew(lease.id(), 30 * MIN).await.unwrap();
    leases.revoke(lease.id()).await.unwrap();
    assert!(!env.role_exists(&cred.username).await);
    assert!(sqlx::query("SELECT 1").execute(&mut conn).await.is_err());
    let err = env.login(&cred).await.unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");
}

#[tokio::test]
async fn templates_and_owned_objects() {
    let env = Env::new("tmpl").await;
    env.exec("CREATE ROLE tmpl_owner NOLOGIN").await;
    let create = |name: &str| {
        PgRoleDefinition::new(name)
            .unwrap()
            .creation_statements([
                "CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}} CONNECTION LIMIT 3".to_owned(),
                "GRANT CREATE, USAGE ON SCHEMA public TO {{name}}".to_owned(),
            ])
            .revocation_statements(["REVOKE CREATE ON SCHEMA public FROM {{name}}".to_owned()])
    };
    let keep = create("keep").owned_objects(PgOwnedObjects::ReassignTo("tmpl_owner".into()));
    let drop = create("drop");

    let (kl, kc) = env.engine.issue(&keep, None).await.unwrap();
    let (dl, dc) = env.engine.issue(&drop, None).await.unwrap();
    let limit: i32 = sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
        .bind(&kc.username)
        .fetch_one(&env.admin)
        .await
        .unwrap();
    assert_eq!(limit, 3);
    assert_eq!(
        env.valid_until(&kc.username).await,
        kl.expires_at().as_millis()
    );
    let mut c = env.login(&kc).await.unwrap();
    c.execute("CREATE TABLE kept_table (x int)").await.unwrap();
    let mut c = env.login(&dc).await.unwrap();
    c.execute("CREATE TABLE dropped_table (x int)")
        .await
        .unwrap();

    env.leases.revoke(kl.id()).await.unwrap();
    env.leases.revoke(dl.id()).await.unwrap();
    assert!(!env.role_exists(&kc.username).await);
    assert!(!env.role_exists(&dc.username).await);
    let owner: Option<String> =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'kept_table'")
            .fetch_optional(&env.admin)
            .await
            .unwrap();
    assert_eq!(owner.as_deref(), Some("tmpl_owner"));
    let dropped: Option<String> = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE tablename = 'dropped_table'",
    )
    .fetch_optional(&env.admin)
    .await
    .unwrap();
    assert_eq!(dropped, None);
}

#[tokio::test]
async fn sweep_after_a_crash_at_each_step() {
    let mut env = Env::new("crash").await;
    let def = PgRoleDefinition::new("c").unwrap();
    for point in CrashPoint::ALL {
        env.engine.crash_at(Some(point));
        let err = env.engine.issue(&def, None).await.unwrap_err();
        assert!(matches!(err, PgDynError::Crashed(p) if p == point), "{err}");
        let roles_at_crash = env.prefixed_roles().await;
        // The process dies here: a new store, manager and engine over the
        // same storage, configured with the same definition.
        env.restart(&[&def]).await;

        // A sweep right away leaves a fresh intent alone (its issue might
        // still be running in another process)...
        let early = env.engine.sweep().await.unwrap();
        assert!(early.dropped_roles.is_empty(), "{point:?}: {early:?}");
        assert_eq!(env.prefixed_roles().await, roles_at_crash);
        // ...and once the grace period has passed, reconciles.
        env.clock.advance(6 * MIN);
        let report = env.engine.sweep().await.unwrap();
        let roles = env.prefixed_roles().await;
        let leased = env.leased_roles().await;
        assert_eq!(roles, leased, "{point:?}: {report:?}");
        assert!(
            env.storage.list(INTENT_PREFIX).await.unwrap().is_empty(),
            "{point:?}"
        );
        match point {
            CrashPoint::AfterIntent => {
                assert!(report.dropped_roles.is_empty());
                assert_eq!(report.cleared_intents, 1);
            }
            CrashPoint::AfterCreateRole => {
                assert_eq!(report.dropped_roles.len(), 1, "{report:?}");
                assert_eq!(report.cleared_intents, 1);
            }
            CrashPoint::AfterLease => {
                // The lease exists, so even the early sweep may clear the
                // intent: only its deletion was lost.
                assert!(report.dropped_roles.is_empty());
                assert_eq!(early.cleared_intents, 1);
            }
            CrashPoint::AfterIntentCleared => {
                assert!(report.dropped_roles.is_empty());
                assert_eq!(report.cleared_intents, 0);
            }
            other => panic!("untested crash point {other:?}"),
        }
        // Every lease of the engine owns a role that exists (checked by
        // leased == roles) and revoking them all leaves no role.
        let revoked = env.leases.revoke_prefix("database").await.unwrap();
        assert!(revoked.pending.is_empty());
        assert!(env.prefixed_roles().await.is_empty(), "{point:?}");
    }
    env.engine.crash_at(None);

    // A stray role with the prefix and no intent is dropped at once; a lease
    // whose role was dropped by hand is revoked.
    let stray = format!("{}stray", env.prefix);
    let sql: String = sqlx::query_scalar("SELECT format('CREATE ROLE %I LOGIN', $1::text)")
        .bind(&stray)
        .fetch_one(&env.admin)
        .await
        .unwrap();
    env.admin.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    let (orphan, ocred) = env.engine.issue(&def, None).await.unwrap();
    let (kept, kcred) = env.engine.issue(&def, None).await.unwrap();
    env.drop_role_by_hand(&ocred.username).await;
    let report = env.engine.sweep().await.unwrap();
    assert_eq!(report.dropped_roles, vec![stray.clone()]);
    assert_eq!(report.revoked_leases, vec![orphan.id()]);
    assert!(env.leases.lookup(orphan.id()).await.is_err());
    assert!(env.leases.lookup(kept.id()).await.is_ok());
    assert_eq!(
        env.prefixed_roles().await,
        BTreeSet::from([kcred.username.clone()])
    );
    // A sweep with nothing to do changes nothing.
    let again = env.engine.sweep().await.unwrap();
    assert_eq!(again, Default::default());
}

#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl Revoker for Counting {
    async fn revoke(&self, _lease: &Lease) -> strongroom::Result<()> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// 10,000 live leases (a cheap revoker) and three real roles in a PgStore;
/// a new manager restores them and revokes each as it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_ten_thousand_live_leases_resumes_expirations() {
    const N: usize = 10_000;
    let pg = TestPostgres::shared().unwrap();
    let store_url = pg.fresh_database("restart_store").await.unwrap();
    let store = PgStore::connect(&store_url).await.unwrap();
    let storage: DynStorage = Arc::new(store.clone());
    let mut env = Env::with_storage("restart", storage.clone()).await;

    // Fast path: issue the cheap leases in memory, then copy the records
    // into the PgStore in large batches. Lease records are sealed under the
    // store's keyring, so the memory copy starts from the store's root key
    // and keyring records and is unsealed like another process of the store.
    let t0 = Instant::now();
    let mem = MemoryStorage::new();
    let mem_storage: DynStorage = Arc::new(mem.clone());
    for key in [
        ROOT_KEY_RECORD,
        KEYRING_RECORD,
        KEYRING_GENERATION,
        ROOT_UPGRADE_RECORD,
    ] {
        if let Some(value) = storage.get(key).await.unwrap() {
            mem_storage.put(key, &value).await.unwrap();
        }
    }
    let staging_store = open_store(&mem_storage, env.clock.clone()).await;
    let staging = staging_store
        .lease_manager(env.clock.clone(), LeaseConfig::default())
        .unwrap();
    staging.register_revoker("cheap", Arc::new(Counting::default()));
    for i in 0..N {
        // TTLs from 1 to 40 minutes.
        let ttl = Duration::from_secs(60 + (i as u64 * 7919) % (39 * 60));
        staging
            .issue(
                &format!("cheap/creds/r{}", i % 50),
                "cheap",
                ttl,
                2 * ttl,
                true,
                vec![1],
            )
            .await
            .unwrap();
    }
    let issue_ms = t0.elapsed().as_millis();
    let t1 = Instant::now();
    // Loading fixtures: one INSERT of every record (the store's batch API
    // would take a lock per key, about 10 s for these 40,000 records). The
    // keyring record comes back too (an upsert): it carries the encryptions
    // the staging copy reserved, so no process of the store reuses them.
    let (keys, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = mem
        .snapshot()
        .await
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v))
        .unzip();
    sqlx::query(
        "INSERT INTO strongroom_kv (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(&keys)
    .bind(&values)
    .execute(store.pool())
    .await
    .unwrap();
    let copy_ms = t1.elapsed().as_millis();

    env.restart(&[]).await;
    let def = PgRoleDefinition::new("r").unwrap();
    let mut creds = Vec::new();
    for ttl in [5 * MIN, 20 * MIN, 35 * MIN] {
        creds.push(env.engine.issue(&def, Some(ttl)).await.unwrap().1);
    }
    for c in &creds {
        env.login(c).await.unwrap().close().await.unwrap();
    }

    // Restart: a new manager over a new connection to the same database.
    let storage2: DynStorage = Arc::new(PgStore::connect(&store_url).await.unwrap());
    env.storage = storage2;
    env.restart(&[&def]).await;
    let counter = Arc::new(Counting::default());
    env.leases.register_revoker("cheap", counter.clone());
    let t2 = Instant::now();
    let restored = env.leases.restore().await.unwrap();
    let restore_ms = t2.elapsed().as_millis();
    assert_eq!(restored.live_leases, (N + 3) as u64);
    // Only leases due within the 10-minute horizon are in memory.
    assert!(restored.loaded < N / 2, "{restored:?}");
    assert!(env.engine.sweep().await.unwrap().dropped_roles.is_empty());

    // Ten minutes on: the leases due by then are revoked, the rest stay.
    env.clock.advance(10 * MIN);
    let t3 = Instant::now();
    let first = env.leases.run_due().await.unwrap();
    let first_ms = t3.elapsed().as_millis();
    let after_first = counter.0.load(Ordering::Relaxed);
    assert!(after_first > 0 && after_first < N, "{after_first}");
    assert_eq!(first.revoked, after_first + 1, "{first:?}");
    assert!(!env.role_exists(&creds[0].username).await);
    assert!(env.role_exists(&creds[1].username).await);
    assert_eq!(
        sqlstate(&env.login(&creds[0]).await.unwrap_err()).as_deref(),
        Some("28P01")
    );
    env.login(&creds[1]).await.unwrap().close().await.unwrap();

    // Past every lease's end: everything is revoked.
    env.clock.advance(40 * MIN);
    let t4 = Instant::now();
    let rest = env.leases.run_due().await.unwrap();
    let rest_ms = t4.elapsed().as_millis();
    assert_eq!(counter.0.load(Ordering::Relaxed), N);
    assert_eq!(first.revoked + rest.revoked, N + 3);
    assert_eq!(env.leases.stats().live_leases, 0);
    assert!(env.prefixed_roles().await.is_empty());
    for c in &creds[1..] {
        assert_eq!(
            sqlstate(&env.login(c).await.unwrap_err()).as_deref(),
            Some("28P01")
        );
    }
    println!(
        "{N} leases: issue in memory {issue_ms} ms, copy to PgStore {copy_ms} ms, restore {restore_ms} ms ({} in memory), first run_due {first_ms} ms ({} revoked), rest {rest_ms} ms ({} revoked)",
        restored.loaded, first.revoked, rest.revoked
    );
}

const CHILD_DB: &str = "STRONGROOM_DYN_CHILD_DB";
const CHILD_STORE: &str = "STRONGROOM_DYN_CHILD_STORE";
const CHILD_PREFIX: &str = "STRONGROOM_DYN_CHILD_PREFIX";
const CHILD_ABORT_AT: &str = "STRONGROOM_DYN_CHILD_ABORT_AT";

/// The child process of `killed_processes_leave_nothing_unowned`: when
/// started by it (the variables above set), issues roles in a loop over a
/// SQLite store, revoking every third one, and prints a line after each
/// issue, until it is killed; or, with `CHILD_ABORT_AT` set to an index of
/// [`CrashPoint::ALL`], issues one role and then kills itself (SIGKILL: no
/// destructors, no clean-up) at that point of the second issue. Run directly it has nothing to do.
#[test]
fn child_process_entry() {
    let (Ok(db), Ok(store), Ok(prefix)) = (
        std::env::var(CHILD_DB),
        std::env::var(CHILD_STORE),
        std::env::var(CHILD_PREFIX),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use std::io::Write;
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&db)
            .await
            .unwrap();
        let storage: DynStorage =
            Arc::new(strongroom_sqlx::SqliteStore::open(&store).await.unwrap());
        let clock = Arc::new(ManualClock::new(real_now()));
        let store = open_store(&storage, clock.clone()).await;
        let leases = Arc::new(
            store
                .lease_manager(clock.clone(), LeaseConfig::default())
                .unwrap(),
        );
        let engine =
            PgDynamicCredentials::new(admin, leases.clone(), store, clock, config(&prefix))
                .unwrap();
        let def = PgRoleDefinition::new("k").unwrap();
        let abort_at = std::env::var(CHILD_ABORT_AT)
            .ok()
            .map(|i| CrashPoint::ALL[i.parse::<usize>().unwrap()]);
        for i in 0u64.. {
            if i == 1 && abort_at.is_some() {
                engine.crash_at(abort_at);
            }
            let (lease, cred) = match engine.issue(&def, None).await {
                Ok(issued) => issued,
                Err(PgDynError::Crashed(_)) => {
                    // Die as a killed process does: SIGKILL, no clean-up.
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &std::process::id().to_string()])
                        .status();
                    std::process::exit(101)
                }
                Err(e) => panic!("{e}"),
            };
            println!("issued {}", cred.username);
            std::io::stdout().flush().unwrap();
            if i % 3 == 2 {
                leases.revoke(lease.id()).await.unwrap();
            }
        }
    });
}

/// Kills a child process that issues and revokes roles, at a different
/// moment each round (right after its k-th issue, while the next issue or
/// revocation is under way), then checks that a sweep leaves exactly the
/// roles that leases own, no intents, and no lease without its role.
#[test]
fn killed_processes_leave_nothing_unowned() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pg = TestPostgres::shared().unwrap();
    let url = rt.block_on(pg.fresh_database("kill")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store.db");
    let prefix = "sr_kill_";
    let mut issued = 0;
    // Killed by the parent at a moment that varies with the round.
    for round in 0..6 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &url)
            .env(CHILD_STORE, &store_path)
            .env(CHILD_PREFIX, prefix)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < round + 1 {
            let line = lines.next().expect("the child stopped early").unwrap();
            if line.starts_with("issued ") {
                seen += 1;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        issued += seen;
    }
    for (i, point) in CrashPoint::ALL.iter().enumerate() {
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &url)
            .env(CHILD_STORE, &store_path)
            .env(CHILD_PREFIX, prefix)
            .env(CHILD_ABORT_AT, i.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "{point:?}: the child was not killed"
        );
        issued += 1;
    }

    rt.block_on(async {
        let storage: DynStorage = Arc::new(
            strongroom_sqlx::SqliteStore::open(&store_path)
                .await
                .unwrap(),
        );
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();
        // Later than every intent's grace period.
        let clock = Arc::new(ManualClock::new(real_now() + 10 * MIN));
        let store = open_store(&storage, clock.clone()).await;
        let leases = Arc::new(
            store
                .lease_manager(clock.clone(), LeaseConfig::default())
                .unwrap(),
        );
        let engine =
            PgDynamicCredentials::new(admin.clone(), leases.clone(), store, clock, config(prefix))
                .unwrap();
        // The definition the children issued under, as this process is
        // configured.
        engine.define(&PgRoleDefinition::new("k").unwrap()).unwrap();
        let report = engine.sweep().await.unwrap();
        let roles: BTreeSet<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname::text, $1)",
        )
        .bind(prefix)
        .fetch_all(&admin)
        .await
        .unwrap()
        .into_iter()
        .collect();
        let mut leased = BTreeSet::new();
        for id in leases.list("database").await.unwrap() {
            let lease = leases.lookup(id).await.unwrap();
            leased.insert(engine.role_of(&lease).await.unwrap());
        }
        assert_eq!(roles, leased, "{report:?}");
        assert!(storage.list(INTENT_PREFIX).await.unwrap().is_empty());
        // The child that died after creating a role and before storing
        // its lease left one role to drop; those that died after their
        // intent or their lease, one intent each to clear.
        assert_eq!(report.dropped_roles.len(), 1, "{report:?}");
        assert!(report.cleared_intents >= 2, "{report:?}");
        assert!(!roles.is_empty());
        println!(
            "killed 10 children after {issued} issues: {} roles leased, sweep {report:?}",
            roles.len()
        );
        // Revoking everything leaves no role behind.
        assert!(leases.revoke_prefix("").await.unwrap().pending.is_empty());
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_roles WHERE starts_with(rolname::text, $1)",
        )
        .bind(prefix)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(left, 0);
    });
}

// ----- hostile storage: nothing read from storage is executed -----

/// Version 1 revocation data, as written before records were
/// authenticated (and as an attacker may write it now).
#[derive(serde::Serialize)]
struct LegacyPlan<'a> {
    role: &'a str,
    definition: &'a str,
    revocation: Vec<&'a str>,
    owned: PgOwnedObjects,
}

/// Version 1 revocation data naming `role` and `definition`, with
/// statements that would hurt `victim` (and the administrator) if run.
fn legacy_plan(role: &str, definition: &str, victim: &str) -> Vec<u8> {
    let hurt_victim = format!("ALTER ROLE {victim} LOGIN SUPERUSER PASSWORD 'owned'");
    let plan = LegacyPlan {
        role,
        definition,
        // Format strings as version 1 stored them: run with %1$I = the role.
        revocation: vec![
            "DROP TABLE victim",
            "ALTER ROLE postgres NOSUPERUSER NOLOGIN",
            &hurt_victim,
            "GRANT postgres TO %1$I",
        ],
        owned: PgOwnedObjects::ReassignTo(victim.into()),
    };
    postcard::to_extend(&plan, vec![1]).unwrap()
}

impl Env {
    /// An unrelated role (no engine prefix) for hostile records to name.
    fn victim(&self) -> String {
        format!("victim_{}", self.prefix.trim_start_matches("sr_"))
    }

    /// A table `victim` with one row, and the unrelated role.
    async fn make_victims(&self) {
        let victim = quote_ident(&self.victim());
        // Roles are cluster-wide: one left by an earlier run goes first.
        let sql = format!(
            "DROP ROLE IF EXISTS {victim}; CREATE ROLE {victim} NOLOGIN; \
             CREATE TABLE victim (x int); INSERT INTO victim VALUES (1)"
        );
        self.admin.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
}

/// Version 2 revocation data's fields (behind the version byte, before the
/// 32-byte tag).
#[derive(serde::Serialize, serde::Deserialize)]
struct RoleRef {
    role: String,
    definition: String,
    digest: [u8; 32],
}

fn decode_v2(data: &[u8]) -> RoleRef {
    assert_eq!(data[0], 2);
    postcard::from_bytes(&data[1..data.len() - 32]).unwrap()
}

/// `data` with its fields replaced and its tag kept.
fn reencode_v2(data: &[u8], f: impl FnOnce(&mut RoleRef)) -> Vec<u8> {
    let mut r = decode_v2(data);
    f(&mut r);
    let mut out = postcard::to_extend(&r, vec![2]).unwrap();
    out.extend_from_slice(&data[data.len() - 32..]);
    out
}

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// Replaces a lease's revocation data inside its stored record, through
/// `storage` = the store's barrier: lease records are sealed, so a raw edit
/// by someone who can only write the database fails the barrier's
/// authentication before the engine sees it. Editing through the barrier
/// tests the engine's own checks behind it.
async fn tamper_revocation_data(storage: &DynStorage, id: LeaseId, new: &[u8]) {
    let key = format!("lease/{id}");
    let rec = storage.get(&key).await.unwrap().unwrap();
    let old = Lease::from_record_bytes(&rec)
        .unwrap()
        .revocation_data()
        .to_vec();
    let needle = [varint(old.len()), old].concat();
    let at = rec
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("the revocation data is not in the lease record");
    let mut out = rec[..at].to_vec();
    out.extend_from_slice(&varint(new.len()));
    out.extend_from_slice(new);
    out.extend_from_slice(&rec[at + needle.len()..]);
    assert_eq!(
        Lease::from_record_bytes(&out).unwrap().revocation_data(),
        new
    );
    storage.put(&key, &out).await.unwrap();
}

/// What a hostile record would have changed, checked unchanged.
async fn assert_victims_untouched(env: &Env) {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM victim")
        .fetch_one(&env.admin)
        .await
        .expect("the victim table is gone");
    assert_eq!(n, 1);
    let (sup, login, until): (bool, bool, Option<f64>) = sqlx::query_as(
        "SELECT rolsuper, rolcanlogin, extract(epoch FROM rolvaliduntil)::float8 FROM pg_roles WHERE rolname = 'postgres'",
    )
    .fetch_one(&env.admin)
    .await
    .unwrap();
    assert!(sup && login && until.is_none(), "postgres was altered");
    let (sup, login, until): (bool, bool, Option<f64>) = sqlx::query_as(
        "SELECT rolsuper, rolcanlogin, extract(epoch FROM rolvaliduntil)::float8 FROM pg_roles WHERE rolname = $1",
    )
    .bind(env.victim())
    .fetch_one(&env.admin)
    .await
    .expect("the victim role is gone");
    assert!(
        !sup && !login && until.is_none(),
        "the victim role was altered"
    );
    let owned: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tableowner = $1")
        .bind(env.victim())
        .fetch_one(&env.admin)
        .await
        .unwrap();
    assert_eq!(owned, 0, "objects were reassigned to the victim role");
}

/// The revocation data of live leases is altered in storage: hostile
/// statements, an unrelated or administrative role, another lease's role,
/// flipped bits, a damaged or missing record key. Each is refused with a
/// typed error before the server is touched; the leases stay for a retry
/// or a forced revocation; the victims are untouched.
#[tokio::test]
async fn tampered_revocation_data_is_refused_and_runs_nothing() {
    let env = Env::new("tamper").await;
    env.make_victims().await;
    let victim = env.victim();
    let def = PgRoleDefinition::new("app")
        .unwrap()
        .grant(PgGrant::new(
            [PgPrivilege::Connect],
            PgObject::database(env.db.clone()),
        ))
        .grant(PgGrant::new(
            [PgPrivilege::Usage, PgPrivilege::Create],
            PgObject::schema("public"),
        ));
    let (_other, other_cred) = env.engine.issue(&def, None).await.unwrap();
    let other = other_cred.username.clone();
    let p = env.prefix.clone();

    type Tamper = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    type Expected = fn(&PgDynError) -> bool;
    let cases: Vec<(&str, Tamper, Expected)> = vec![
        (
            "a bit flipped in the fields",
            Box::new(|d| {
                let mut d = d.to_vec();
                d[5] ^= 0x01;
                d
            }),
            |e| matches!(e, PgDynError::NotAuthentic { .. }),
        ),
        (
            "a bit flipped in the tag",
            Box::new(|d| {
                let mut d = d.to_vec();
                let last = d.len() - 1;
                d[last] ^= 0x80;
                d
            }),
            |e| matches!(e, PgDynError::NotAuthentic { .. }),
        ),
        (
            "the tag cut off",
            Box::new(|d| d[..d.len() - 32].to_vec()),
            |e| matches!(e, PgDynError::NotAuthentic { .. }),
        ),
        {
            let other = other.clone();
            (
                "another live role of the engine",
                Box::new(move |d| reencode_v2(d, |r| r.role = other.clone())),
                |e| matches!(e, PgDynError::NotAuthentic { .. }),
            )
        },
        {
            let v = victim.clone();
            (
                "an unrelated role",
                Box::new(move |d| reencode_v2(d, |r| r.role = v.clone())),
                |e| matches!(e, PgDynError::NotAuthentic { .. }),
            )
        },
        {
            let v = victim.clone();
            (
                "version 1: an unrelated role and hostile statements",
                Box::new(move |_| legacy_plan(&v, "app", &v)),
                |e| matches!(e, PgDynError::ForeignRole { .. }),
            )
        },
        {
            let v = victim.clone();
            (
                "version 1: the administrator",
                Box::new(move |_| legacy_plan("postgres", "app", &v)),
                |e| matches!(e, PgDynError::ForeignRole { .. }),
            )
        },
        {
            let (p, v) = (p.clone(), victim.clone());
            (
                "version 1: the prefix, but not a generated name",
                Box::new(move |_| legacy_plan(&format!("{p}app_victim"), "app", &v)),
                |e| matches!(e, PgDynError::ForeignRole { .. }),
            )
        },
        {
            let (p, v) = (p.clone(), victim.clone());
            (
                "version 1: a definition the lease path does not name",
                Box::new(move |_| legacy_plan(&format!("{p}rw_0011223344556677"), "rw", &v)),
                |e| matches!(e, PgDynError::ForeignRole { .. }),
            )
        },
        {
            let (p, v) = (p.clone(), victim.clone());
            (
                "version 1: a hostile definition name",
                Box::new(move |_| {
                    legacy_plan(
                        &format!("{p}x\"_0011223344556677"),
                        "x\"; DROP TABLE victim; --",
                        &v,
                    )
                }),
                |e| matches!(e, PgDynError::ForeignRole { .. }),
            )
        },
        (
            "an unknown version",
            Box::new(|d| {
                let mut d = d.to_vec();
                d[0] = 9;
                d
            }),
            |e| matches!(e, PgDynError::CorruptRecord { .. }),
        ),
        ("empty", Box::new(|_| Vec::new()), |e| {
            matches!(e, PgDynError::CorruptRecord { .. })
        }),
    ];

    let mut refused = Vec::new();
    let mut tried = 0;
    // The role of the lease whose record still names it (only its tag was
    // altered).
    let mut still_claimed = None;
    for (what, tamper, expected) in &cases {
        let (lease, cred) = env.engine.issue(&def, None).await.unwrap();
        let valid_until = env.valid_until(&cred.username).await;
        let data = env
            .leases
            .lookup(lease.id())
            .await
            .unwrap()
            .revocation_data()
            .to_vec();
        tamper_revocation_data(&env.store.barrier(), lease.id(), &tamper(&data)).await;
        let stored = env.leases.lookup(lease.id()).await.unwrap();
        let err = env.engine.role_of(&stored).await.unwrap_err();
        assert!(expected(&err), "{what}: {err}");
        assert!(!err.to_string().contains("DROP TABLE"), "{what}: {err}");
        // Renewal and revocation are refused the same way, before the
        // server is touched: the lease stays, its role is as it was.
        env.clock.advance(Duration::from_secs(1));
        let renew = env.leases.renew(lease.id(), MIN).await.unwrap_err();
        assert!(
            renew.to_string().contains(&err.to_string()),
            "{what}: {renew}"
        );
        let revoke = env.leases.revoke(lease.id()).await.unwrap_err();
        match &revoke {
            strongroom::Error::Lease(LeaseError::RevocationDeferred { reason, .. }) => {
                assert!(reason.contains(&err.to_string()), "{what}: {reason}")
            }
            other => panic!("{what}: {other}"),
        }
        assert!(env.leases.lookup(lease.id()).await.is_ok(), "{what}");
        assert!(env.role_exists(&cred.username).await, "{what}");
        assert_eq!(env.valid_until(&cred.username).await, valid_until, "{what}");
        assert!(env.role_exists(&other).await, "{what}");
        assert_victims_untouched(&env).await;
        refused.push(lease.id());
        if *what == "a bit flipped in the tag" {
            still_claimed = Some(cred.username.clone());
        }
        tried += 1;
    }
    let still_claimed = still_claimed.unwrap();

    // A definition never configured, or configured differently now.
    let ghost = format!("{p}ghost_0011223344556677");
    let lease = env
        .leases
        .issue(
            "database/creds/ghost",
            "postgres",
            MIN,
            MIN,
            true,
            legacy_plan(&ghost, "ghost", &victim),
        )
        .await
        .unwrap();
    let err = env.engine.role_of(&lease).await.unwrap_err();
    assert!(
        matches!(&err, PgDynError::UnknownDefinition { definition, .. } if definition == "ghost"),
        "{err}"
    );
    assert!(env.leases.revoke(lease.id()).await.is_err());
    assert!(env.leases.lookup(lease.id()).await.is_ok());
    refused.push(lease.id());
    tried += 1;

    let changed = PgRoleDefinition::new("changed").unwrap();
    let (lease, cred) = env.engine.issue(&changed, None).await.unwrap();
    // The issue of a same-named definition with other revocation is refused...
    let revoking = changed
        .clone()
        .revocation_statements(["REVOKE ALL ON victim FROM {{name}}".to_owned()]);
    assert!(matches!(
        env.engine.issue(&revoking, None).await,
        Err(PgDynError::DefinitionConflict { .. })
    ));
    // ...and once it is configured on purpose, the lease issued under the
    // old one is refused until that is configured again.
    env.engine.define(&revoking).unwrap();
    let err = env.engine.role_of(&lease).await.unwrap_err();
    assert!(matches!(err, PgDynError::DefinitionChanged { .. }), "{err}");
    assert!(env.leases.revoke(lease.id()).await.is_err());
    assert!(env.role_exists(&cred.username).await);
    env.engine.define(&changed).unwrap();
    env.leases.revoke(lease.id()).await.unwrap();
    assert!(!env.role_exists(&cred.username).await);
    tried += 1;

    // The record key: damaged, then gone. Every version 2 lease is refused
    // until it is back.
    let (lease, cred) = env.engine.issue(&def, None).await.unwrap();
    let key_bytes = env
        .storage
        .get(REVOCATION_KEY_RECORD)
        .await
        .unwrap()
        .unwrap();
    let mut flipped = key_bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    env.storage
        .put(REVOCATION_KEY_RECORD, &flipped)
        .await
        .unwrap();
    let err = env.engine.role_of(&lease).await.unwrap_err();
    assert!(
        matches!(&err, PgDynError::NotAuthentic { key } if key == REVOCATION_KEY_RECORD),
        "{err}"
    );
    assert!(env.engine.issue(&def, None).await.is_err());
    assert!(env.leases.revoke(lease.id()).await.is_err());
    env.storage.delete(REVOCATION_KEY_RECORD).await.unwrap();
    let err = env.engine.role_of(&lease).await.unwrap_err();
    assert!(matches!(err, PgDynError::NotAuthentic { .. }), "{err}");
    assert!(env.role_exists(&cred.username).await);
    env.storage
        .put(REVOCATION_KEY_RECORD, &key_bytes)
        .await
        .unwrap();
    assert_eq!(env.engine.role_of(&lease).await.unwrap(), cred.username);
    env.leases.revoke(lease.id()).await.unwrap();
    assert!(!env.role_exists(&cred.username).await);
    tried += 2;
    assert_victims_untouched(&env).await;

    // The sweep refuses the same records and keeps their leases. A role a
    // refused record still claims stays; the others those leases stood for
    // are no longer named by any record, so the sweep drops them as roles
    // no lease owns, with the configured statements.
    let report = env.engine.sweep().await.unwrap();
    let rejected: BTreeSet<String> = report.rejected.iter().map(|(k, _)| k.clone()).collect();
    let expected: BTreeSet<String> = refused.iter().map(|id| id.to_string()).collect();
    assert_eq!(rejected, expected, "{report:?}");
    assert!(report.revoked_leases.is_empty(), "{report:?}");
    assert!(
        report
            .rejected
            .iter()
            .any(|(_, why)| *why == Rejection::UnknownDefinition)
    );
    assert_eq!(
        env.prefixed_roles().await,
        BTreeSet::from([other.clone(), still_claimed.clone()]),
        "{report:?}"
    );
    assert_victims_untouched(&env).await;

    // The way out for the refused leases is the forced revocation.
    for id in &refused {
        env.leases.force_revoke(*id).await.unwrap();
        assert!(env.leases.lookup(*id).await.is_err());
    }
    let report = env.engine.sweep().await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(report.dropped_roles, vec![still_claimed]);
    assert_eq!(env.prefixed_roles().await, BTreeSet::from([other.clone()]));
    assert_victims_untouched(&env).await;
    println!("revocation data: {tried} tampered records tried, {tried} refused");
}

/// A version 1 lease (written before authentication) whose stored
/// statements were made hostile is still revoked, but only with the
/// statements and owned-objects action of the configured definition.
#[tokio::test]
async fn a_version_1_lease_is_revoked_from_configuration_only() {
    let env = Env::new("legacy").await;
    env.make_victims().await;
    let victim = env.victim();
    let def = PgRoleDefinition::new("app")
        .unwrap()
        .grant(PgGrant::new(
            [PgPrivilege::Connect],
            PgObject::database(env.db.clone()),
        ))
        .grant(PgGrant::new(
            [PgPrivilege::Usage, PgPrivilege::Create],
            PgObject::schema("public"),
        ));
    let (lease, cred) = env.engine.issue(&def, None).await.unwrap();
    let mut conn = env.login(&cred).await.unwrap();
    conn.execute("CREATE TABLE made_by_dynamic (x int)")
        .await
        .unwrap();
    conn.close().await.unwrap();
    tamper_revocation_data(
        &env.store.barrier(),
        lease.id(),
        &legacy_plan(&cred.username, "app", &victim),
    )
    .await;
    let stored = env.leases.lookup(lease.id()).await.unwrap();
    assert_eq!(env.engine.role_of(&stored).await.unwrap(), cred.username);
    env.leases.revoke(lease.id()).await.unwrap();
    assert!(!env.role_exists(&cred.username).await);
    // The configured action (drop) ran, not the stored one (reassign to
    // dyn_victim), and none of the stored statements.
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'made_by_dynamic'")
            .fetch_one(&env.admin)
            .await
            .unwrap();
    assert_eq!(left, 0);
    assert_victims_untouched(&env).await;
}

/// Intent records altered in storage: one rolled over another role's, one
/// with a flipped bit, and version 1 intents naming an unrelated role, the
/// administrator, and (with hostile statements) one of the engine's own
/// roles. The sweep refuses the first four with typed reasons, drops the
/// engine's roles with the configured statements only, and touches nothing
/// else.
#[tokio::test]
async fn tampered_intent_records_are_refused_by_the_sweep() {
    let mut env = Env::new("intent").await;
    env.make_victims().await;
    let victim = env.victim();
    let def = PgRoleDefinition::new("app").unwrap();
    // Four issues that die after creating their role: four roles, four
    // sealed intents, no lease.
    env.engine.crash_at(Some(CrashPoint::AfterCreateRole));
    for _ in 0..4 {
        env.engine.issue(&def, None).await.unwrap_err();
    }
    env.engine.crash_at(None);
    let intents = env.storage.scan(INTENT_PREFIX, None, 100).await.unwrap();
    assert_eq!(intents.len(), 4);
    let roles: Vec<String> = intents
        .iter()
        .map(|(k, _)| k[INTENT_PREFIX.len()..].to_owned())
        .collect();
    assert_eq!(env.prefixed_roles().await, roles.iter().cloned().collect());
    // The intent is sealed: its fields are not in the clear (only its
    // storage key, which names the role, is).
    for (_, v) in &intents {
        assert!(!v.windows(14).any(|w| w == b"database/creds"));
    }

    // 0: rolled over role 1's intent.
    env.storage.put(&intents[1].0, &intents[0].1).await.unwrap();
    // 2: a bit flipped in the sealed bytes.
    let mut flipped = intents[2].1.clone();
    let mid = flipped.len() - 20;
    flipped[mid] ^= 0x04;
    env.storage.put(&intents[2].0, &flipped).await.unwrap();
    // 3: replaced by a version 1 intent with hostile statements.
    let legacy_intent = |role: &str| {
        let mut b = vec![1u8];
        b.extend_from_slice(&varint(1_000));
        b.extend_from_slice(&varint("database/creds/app".len()));
        b.extend_from_slice(b"database/creds/app");
        b.extend_from_slice(&legacy_plan(role, "app", &victim)[1..]);
        b
    };
    env.storage.delete(&intents[3].0).await.unwrap();
    let own_legacy = format!("{LEGACY_INTENT_PREFIX}{}", roles[3]);
    env.storage
        .put(&own_legacy, &legacy_intent(&roles[3]))
        .await
        .unwrap();
    // Version 1 intents for an unrelated role and for the administrator.
    let victim_key = format!("{LEGACY_INTENT_PREFIX}{victim}");
    let admin_key = format!("{LEGACY_INTENT_PREFIX}postgres");
    env.storage
        .put(&victim_key, &legacy_intent(&victim))
        .await
        .unwrap();
    env.storage
        .put(&admin_key, &legacy_intent("postgres"))
        .await
        .unwrap();
    // A sealed intent whose key names the administrator.
    let sealed_admin = format!("{INTENT_PREFIX}postgres");
    env.storage.put(&sealed_admin, &intents[0].1).await.unwrap();

    env.restart(&[&def]).await;
    env.clock.advance(6 * MIN);
    let report = env.engine.sweep().await.unwrap();
    let mut rejected = report.rejected.clone();
    rejected.sort();
    let mut expected = vec![
        (intents[1].0.clone(), Rejection::NotAuthentic),
        (intents[2].0.clone(), Rejection::NotAuthentic),
        (victim_key, Rejection::ForeignRole),
        (admin_key, Rejection::ForeignRole),
        (sealed_admin, Rejection::NotAuthentic),
    ];
    expected.sort();
    assert_eq!(rejected, expected, "{report:?}");
    // Every role of the engine is dropped (no lease owns any); nothing
    // else is.
    let dropped: BTreeSet<String> = report.dropped_roles.iter().cloned().collect();
    assert_eq!(dropped, roles.iter().cloned().collect(), "{report:?}");
    assert!(env.prefixed_roles().await.is_empty());
    assert!(env.storage.list(INTENT_PREFIX).await.unwrap().is_empty());
    assert!(
        env.storage
            .list(LEGACY_INTENT_PREFIX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_victims_untouched(&env).await;
    assert_eq!(env.engine.sweep().await.unwrap(), Default::default());
}
