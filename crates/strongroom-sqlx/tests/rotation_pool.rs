//! PostgreSQL rotators and the self-healing pool against a real server
//! (a private cluster from strongroom-testpg, or `STRONGROOM_TEST_PG_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use strongroom::clock::{ManualClock, SystemClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::protector::SoftwareProtector;
use strongroom::rotation::{Credential, RotationOptions, Rotator, StagedCredentials};
use strongroom::storage::{DynStorage, FaultyStorage, MemoryStorage};
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_sqlx::pool::{
    ErrorClass, HealingError, HealingOptions, HealingPool, RotatedSource, classify, classify_code,
};
use strongroom_sqlx::rotate::{PgAlternatingRotator, PgSingleUserRotator};
use strongroom_testpg::TestPostgres;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The process's metrics recorder (installed once for this test binary:
/// other tests record into it too, so assertions are lower bounds).
fn metrics_snapshotter() -> &'static metrics_util::debugging::Snapshotter {
    static SNAP: std::sync::OnceLock<metrics_util::debugging::Snapshotter> =
        std::sync::OnceLock::new();
    SNAP.get_or_init(|| {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this test binary");
        snapshotter
    })
}

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    metrics_util::debugging::DebugValue,
)>;

/// The value of counter `name` with label `label` (if given), summed, in
/// `snap` (a snapshot drains what it reports: take one per check).
fn counter(snap: &Snapshot, name: &str, label: Option<(&str, &str)>) -> u64 {
    snap.iter()
        .filter(|(k, _, _, _)| k.key().name() == name)
        .filter(|(k, _, _, _)| {
            label.is_none_or(|(lk, lv)| k.key().labels().any(|l| l.key() == lk && l.value() == lv))
        })
        .map(|(_, _, _, v)| match v {
            metrics_util::debugging::DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

fn unique(label: &str) -> String {
    format!(
        "t{}_{}_{label}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

struct Env {
    pg: Arc<TestPostgres>,
    admin: PgPool,
    /// Host, port and database of the test database (no user).
    target: PgConnectOptions,
}

impl Env {
    async fn new(label: &str) -> Self {
        let pg = TestPostgres::shared().unwrap();
        let url = pg.fresh_database(label).await.unwrap();
        let admin_opts = PgConnectOptions::from_str(&url)
            .unwrap()
            .disable_statement_logging();
        let db = admin_opts.get_database().unwrap().to_owned();
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(admin_opts)
            .await
            .unwrap();
        let target = PgConnectOptions::new()
            .host(pg.host())
            .port(pg.port())
            .database(&db);
        Self { pg, admin, target }
    }

    async fn exec(&self, template: &'static str, a: &str, b: Option<&str>) {
        let mut q = sqlx::query_scalar::<_, String>(template).bind(a);
        if let Some(b) = b {
            q = q.bind(b);
        }
        let stmt = q.fetch_one(&self.admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
            .execute(&self.admin)
            .await
            .unwrap();
    }

    async fn login(&self, c: &Credential) -> Result<(), sqlx::Error> {
        let opts = self
            .target
            .clone()
            .username(c.identity())
            .password(std::str::from_utf8(c.secret().expose_secret()).unwrap());
        let conn = opts.connect().await?;
        conn.close().await
    }
}

async fn store(clock: Arc<dyn strongroom::clock::Clock>, storage: DynStorage) -> Door {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    Strongroom::init(
        storage,
        &protector,
        Options {
            clock,
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .dangerous_traced("test")
    .await
    .unwrap()
}

fn fast() -> RotationOptions {
    RotationOptions {
        grace_period: Duration::from_secs(3600),
        max_attempts: 3,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..RotationOptions::default()
    }
}

fn code(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.code().unwrap_or_default().into_owned(),
        other => format!("{other}"),
    }
}

/// Each error class produced by the real server, and the healing pool's
/// reaction to each: no refresh, an immediate error.
#[tokio::test]
async fn classification_against_the_real_server() {
    let env = Env::new("classify").await;
    let role = unique("cls");
    env.exec(
        "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
        &role,
        Some("right-pw"),
    )
    .await;
    let good = Credential::new(1, role.clone(), SecretBytes::from("right-pw"));
    env.login(&good).await.unwrap();

    // 28P01: wrong password
    let wrong = Credential::new(1, role.clone(), SecretBytes::from("wrong-pw"));
    let e = env.login(&wrong).await.unwrap_err();
    assert_eq!(code(&e), "28P01");
    assert_eq!(classify(&e, false), ErrorClass::Credential);

    // 3D000: missing database
    let e = env
        .target
        .clone()
        .database("no_such_database_here")
        .username(&role)
        .password("right-pw")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "3D000");
    assert_eq!(classify(&e, true), ErrorClass::DatabaseMissing);

    // network: nothing listens on this port
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = env
        .target
        .clone()
        .port(port)
        .username(&role)
        .password("x")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(classify(&e, true), ErrorClass::Network, "{e}");

    // 28000 without pg_hba: a role that may not log in
    let nologin = unique("nologin");
    env.exec(
        "SELECT format('CREATE ROLE %I NOLOGIN PASSWORD %L', $1::text, $2::text)",
        &nologin,
        Some("pw"),
    )
    .await;
    let e = env
        .login(&Credential::new(
            1,
            nologin.clone(),
            SecretBytes::from("pw"),
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "28000");
    assert_eq!(classify(&e, false), ErrorClass::NotAuthorized);
    assert_eq!(classify(&e, true), ErrorClass::Credential);

    // 28000 from a pg_hba.conf reject line: never a credential failure
    let rejected = unique("hba");
    env.exec(
        "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
        &rejected,
        Some("pw"),
    )
    .await;
    let hba_file: String = sqlx::query_scalar("SHOW hba_file")
        .fetch_one(&env.admin)
        .await
        .unwrap();
    let old = std::fs::read_to_string(&hba_file).unwrap();
    std::fs::write(
        &hba_file,
        format!("host all {rejected} 127.0.0.1/32 reject\n{old}"),
    )
    .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&env.admin)
        .await
        .unwrap();
    let hba_cred = Credential::new(1, rejected.clone(), SecretBytes::from("pw"));
    // the postmaster applies the reload asynchronously: try a bounded number
    // of logins until the reject line is in force
    let mut hba_err = None;
    for _ in 0..500 {
        match env.login(&hba_cred).await {
            Ok(()) => tokio::task::yield_now().await,
            Err(e) => {
                hba_err = Some(e);
                break;
            }
        }
    }
    let e = hba_err.expect("the pg_hba reject line took effect");
    assert_eq!(code(&e), "28000", "{e}");
    assert_eq!(classify(&e, false), ErrorClass::HbaRejected);
    assert_eq!(classify(&e, true), ErrorClass::HbaRejected);

    // 53300: connection limit
    let limited = unique("limited");
    env.exec(
        "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L CONNECTION LIMIT 0', $1::text, $2::text)",
        &limited,
        Some("pw"),
    )
    .await;
    let e = env
        .login(&Credential::new(
            1,
            limited.clone(),
            SecretBytes::from("pw"),
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "53300");
    assert_eq!(classify(&e, true), ErrorClass::TooManyConnections);

    // 57P03 needs a server of its own in a smart shutdown (see
    // a_server_refusing_new_connections_is_unavailable_not_a_credential_failure);
    // the starting-up message classifies the same way:
    assert_eq!(
        classify_code("57P03", "the database system is starting up", true),
        ErrorClass::Unavailable
    );

    // The healing pool: none of these triggers a refresh loop; each fails
    // at once with its class, well within the budget.
    let budget = Duration::from_secs(5);
    for (name, cred_role, db, expect) in [
        ("hba", rejected.as_str(), None, ErrorClass::HbaRejected),
        (
            "db",
            role.as_str(),
            Some("no_such_database_here"),
            ErrorClass::DatabaseMissing,
        ),
        (
            "limit",
            limited.as_str(),
            None,
            ErrorClass::TooManyConnections,
        ),
        ("nologin", nologin.as_str(), None, ErrorClass::NotAuthorized),
    ] {
        let source = Arc::new(FixedSource(StagedCredentials {
            current: Some(Credential::new(
                1,
                cred_role,
                SecretBytes::from(if cred_role == role { "right-pw" } else { "pw" }),
            )),
            ..StagedCredentials::default()
        }));
        let mut base = env.target.clone();
        if let Some(db) = db {
            base = base.database(db);
        }
        let start = Instant::now();
        let err = HealingPool::connect(
            base,
            PgPoolOptions::new(),
            source,
            HealingOptions {
                budget,
                ..HealingOptions::default()
            },
        )
        .await
        .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "{name} looped");
        match err {
            HealingError::Database { class, .. } => assert_eq!(class, expect, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }

    // restore pg_hba.conf for other tests
    std::fs::write(&hba_file, old).unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&env.admin)
        .await
        .unwrap();
    drop(env.pg);
}

/// A source with fixed credentials.
#[derive(Debug)]
struct FixedSource(StagedCredentials);

#[async_trait::async_trait]
impl strongroom_sqlx::pool::CredentialSource for FixedSource {
    fn name(&self) -> &str {
        "fixed"
    }
    async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn alternating_roles_share_objects_and_both_work_through_the_switch() {
    let env = Env::new("alt").await;
    let base = unique("app");
    // an admin session that logs every statement, to check that no password
    // reaches the server's log
    let logging_admin = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            env.admin
                .connect_options()
                .as_ref()
                .clone()
                .options([("log_statement", "all")]),
        )
        .await
        .unwrap();
    let rot = PgAlternatingRotator::new(logging_admin, env.target.clone(), &base).unwrap();
    rot.ensure_roles().await.unwrap();
    rot.ensure_roles().await.unwrap(); // idempotent
    let sr = store(Arc::new(SystemClock), Arc::new(MemoryStorage::new())).await;
    let engine = sr
        .rotation_engine("db/app", Arc::new(rot.clone()), fast())
        .await
        .unwrap();
    engine.rotate_now().await.unwrap();
    let v1 = engine.staged().await.unwrap().current.unwrap();
    assert_eq!(v1.identity(), format!("{base}_a"));
    engine.rotate_now().await.unwrap();
    let staged = engine.staged().await.unwrap();
    let v2 = staged.current.clone().unwrap();
    assert_eq!(v2.identity(), format!("{base}_b"));
    // both valid until the previous is revoked
    env.login(&v1).await.unwrap();
    env.login(&v2).await.unwrap();
    // the server stored a SCRAM verifier and never saw the password
    let stored: String =
        sqlx::query_scalar("SELECT rolpassword::text FROM pg_authid WHERE rolname = $1")
            .bind(v2.identity())
            .fetch_one(&env.admin)
            .await
            .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    let log = env.pg.read_log();
    if env.pg.log_path().is_some() {
        assert!(log.contains("ALTER ROLE"), "statement logging is on");
    }
    for v in [&v1, &v2] {
        let pw = std::str::from_utf8(v.secret().expose_secret()).unwrap();
        assert!(!log.contains(pw), "a password reached the server log");
    }

    // an object created by _a is usable and droppable by _b
    let opts = |c: &Credential| {
        env.target
            .clone()
            .username(c.identity())
            .password(std::str::from_utf8(c.secret().expose_secret()).unwrap())
    };
    let mut a = opts(&v1).connect().await.unwrap();
    sqlx::query("CREATE TABLE shared_t (x int)")
        .execute(&mut a)
        .await
        .unwrap();
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = 'shared_t'",
    )
    .fetch_one(&mut a)
    .await
    .unwrap();
    assert_eq!(owner, format!("{base}_owner"));
    let mut b = opts(&v2).connect().await.unwrap();
    sqlx::query("INSERT INTO shared_t VALUES (1)")
        .execute(&mut b)
        .await
        .unwrap();
    sqlx::query("DROP TABLE shared_t")
        .execute(&mut b)
        .await
        .unwrap();

    // revoking previous disables _a's password; _b keeps working
    let e3 = sr
        .rotation_engine(
            "db/app",
            Arc::new(rot.clone()),
            RotationOptions {
                grace_period: Duration::ZERO,
                ..fast()
            },
        )
        .await
        .unwrap();
    // grace was an hour when promoted; a rotation revokes previous early
    e3.rotate_now().await.unwrap();
    assert_eq!(code(&env.login(&v1).await.unwrap_err()), "28P01");
    env.login(&v2).await.unwrap();
    let v3 = e3.staged().await.unwrap().current.unwrap();
    assert_eq!(v3.identity(), format!("{base}_a"));
    env.login(&v3).await.unwrap();
}

/// Rotation under load: 64 workers query through the healing pool in a
/// loop while the credential is rotated back to back, first with
/// alternating users, then with a single user. No query may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_test_64_workers_zero_failures_during_rotation() {
    let env = Env::new("load").await;
    for mode in ["alternating", "single-user"] {
        let sr = store(Arc::new(SystemClock), Arc::new(MemoryStorage::new())).await;
        let rotator: Arc<dyn Rotator> = if mode == "alternating" {
            let r = PgAlternatingRotator::new(env.admin.clone(), env.target.clone(), &unique("ld"))
                .unwrap();
            r.ensure_roles().await.unwrap();
            Arc::new(r)
        } else {
            let role = unique("single");
            env.exec(
                "SELECT format('CREATE ROLE %I LOGIN', $1::text)",
                &role,
                None,
            )
            .await;
            Arc::new(PgSingleUserRotator::new(
                env.admin.clone(),
                env.target.clone(),
                &role,
            ))
        };
        let engine = Arc::new(
            sr.rotation_engine("db/load", rotator, fast())
                .await
                .unwrap(),
        );
        engine.rotate_now().await.unwrap();
        let pool = HealingPool::connect(
            env.target.clone(),
            PgPoolOptions::new()
                .max_connections(16)
                // short lifetimes force new logins throughout the test
                .max_lifetime(Duration::from_millis(1500)),
            Arc::new(RotatedSource::with_engine(sr.clone(), &engine)),
            HealingOptions {
                budget: Duration::from_secs(10),
                recycle_window: Duration::from_millis(200),
                ..HealingOptions::default()
            },
        )
        .await
        .unwrap();

        let run_for = Duration::from_secs(5);
        let end = Instant::now() + run_for;
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for _ in 0..64 {
            let pool = pool.clone();
            let ok = ok.clone();
            let failed = failed.clone();
            workers.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let r = pool
                        .run(|p| async move {
                            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&p).await
                        })
                        .await;
                    match r {
                        Ok(1) => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(_) | Err(_) => {
                            if let Err(e) = r {
                                eprintln!("query failed: {e}");
                            }
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        let rotations = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    engine.rotate_now().await.unwrap();
                    n += 1;
                }
                n
            })
        };
        for w in workers {
            w.await.unwrap();
        }
        let rotations = rotations.await.unwrap();
        let m = pool.metrics();
        println!(
            "load test ({mode}): {} queries ok, {} failed, {rotations} rotations, {} refreshes, {} retries, {} swaps, {} connections recycled in {run_for:?}",
            ok.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            m.refreshes,
            m.retries,
            m.swaps,
            m.recycled
        );
        assert_eq!(failed.load(Ordering::Relaxed), 0, "{mode}");
        assert!(ok.load(Ordering::Relaxed) > 200, "{mode}");
        assert!(rotations >= 2, "{mode}: only {rotations} rotations");
        assert!(m.swaps >= rotations / 2, "{mode}: {m:?}");
        assert_eq!(m.failures, 0);
        if mode == "alternating" {
            // both roles stay valid: every swap is proactive, no login fails
            assert_eq!(m.refreshes, 0, "{m:?}");
            assert!(m.recycled > 0, "old connections are recycled: {m:?}");
        } else {
            // a new password for the same role leaves open sessions valid:
            // none is closed early (only max_lifetime ends them)
            assert_eq!(m.recycled, 0, "{m:?}");
        }
        pool.pool().close().await;
    }
}

/// Crash points between every rotation step against the real server, with
/// a probe that logs in continuously with whatever is stored and never
/// finds every stored credential invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_never_leave_no_working_credential() {
    let env = Arc::new(Env::new("crash").await);
    for mode in ["alternating", "single-user"] {
        let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
        let mem = MemoryStorage::new();
        let faulty = FaultyStorage::new(Arc::new(mem.clone()));
        let sr = store(Arc::new(clock.clone()), Arc::new(faulty.clone())).await;
        let probe_sr = sr.clone();
        let rotator: Arc<dyn Rotator> = if mode == "alternating" {
            let r = PgAlternatingRotator::new(env.admin.clone(), env.target.clone(), &unique("cr"))
                .unwrap();
            r.ensure_roles().await.unwrap();
            Arc::new(r)
        } else {
            let role = unique("crs");
            env.exec(
                "SELECT format('CREATE ROLE %I LOGIN', $1::text)",
                &role,
                None,
            )
            .await;
            Arc::new(PgSingleUserRotator::new(
                env.admin.clone(),
                env.target.clone(),
                &role,
            ))
        };
        let opts = || RotationOptions {
            owner_id: Some("the-service".into()),
            ..fast()
        };
        let open = || sr.rotation_engine("db/crash", rotator.clone(), opts());
        let engine = open().await.unwrap();
        engine.rotate_now().await.unwrap();
        drop(engine);

        // The probe: log in with every stored version until one works.
        // A violation is two full passes over the same stored state with
        // no working credential (a password change can flip which version
        // works between two attempts of one pass).
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(AtomicU64::new(0));
        let probes = Arc::new(AtomicU64::new(0));
        let probe = {
            let (env, stop, violations, probes) = (
                env.clone(),
                stop.clone(),
                violations.clone(),
                probes.clone(),
            );
            tokio::spawn(async move {
                let mut failed_state: Option<Vec<u8>> = None;
                while !stop.load(Ordering::SeqCst) {
                    let state = probe_sr.storage().get("rot/db/crash").await.unwrap();
                    let staged = probe_sr.load_staged("db/crash").await.unwrap();
                    let mut works = false;
                    for c in staged.in_try_order() {
                        if env.login(c).await.is_ok() {
                            works = true;
                            break;
                        }
                    }
                    probes.fetch_add(1, Ordering::Relaxed);
                    if works {
                        failed_state = None;
                    } else if failed_state.is_some() && failed_state == state {
                        violations.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed_state = state;
                    }
                }
            })
        };

        let mut crash_points = 0;
        for n in 1..=16u64 {
            let engine = open().await.unwrap();
            let before = engine.status().await.unwrap().current.unwrap();
            faulty.fail_from_write(n);
            let r = engine.rotate_now().await;
            drop(engine); // the crash
            faulty.heal();
            if r.is_ok() {
                break;
            }
            crash_points += 1;
            // restart with the same owner id: takes over its own lock
            let engine = open().await.unwrap();
            engine.resume().await.unwrap();
            let st = engine.status().await.unwrap();
            assert!(
                st.in_flight.is_none() && st.pending.is_none(),
                "{mode} n={n}"
            );
            let cur = engine.staged().await.unwrap().current.unwrap();
            assert!(cur.version() >= before, "{mode} n={n}");
            env.login(&cur)
                .await
                .unwrap_or_else(|e| panic!("{mode} n={n}: current does not work: {e}"));
            clock.advance(Duration::from_secs(1));
        }
        stop.store(true, Ordering::SeqCst);
        probe.await.unwrap();
        println!(
            "crash points ({mode}): {crash_points} crashes resumed, {} probe passes, {} violations",
            probes.load(Ordering::Relaxed),
            violations.load(Ordering::SeqCst)
        );
        assert!(crash_points >= 6, "{mode}: {crash_points}");
        assert_eq!(violations.load(Ordering::SeqCst), 0, "{mode}");
        assert!(probes.load(Ordering::Relaxed) > 0);
        let _ = mem;
    }
}

/// Reactive healing with single flight: a pool that does not follow the
/// engine finds its password changed; all 32 concurrent callers share one
/// refresh and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_failure_heals_with_one_refresh_for_all_callers() {
    // drained first: the snapshot at the end holds what came after
    let _ = metrics_snapshotter().snapshot();
    let env = Env::new("flight").await;
    let role = unique("fl");
    env.exec(
        "SELECT format('CREATE ROLE %I LOGIN', $1::text)",
        &role,
        None,
    )
    .await;
    // A store that announces nothing and a source that does not poll: the
    // pool learns of the rotation only from the refused logins.
    let quiet = GateStorage::new(Arc::new(MemoryStorage::new()));
    let sr = store(Arc::new(SystemClock), Arc::new(quiet)).await;
    let engine = sr
        .rotation_engine(
            "db/flight",
            Arc::new(PgSingleUserRotator::new(
                env.admin.clone(),
                env.target.clone(),
                &role,
            )),
            fast(),
        )
        .await
        .unwrap();
    engine.rotate_now().await.unwrap();
    let pool = HealingPool::connect(
        env.target.clone(),
        PgPoolOptions::new().max_connections(8),
        Arc::new(
            RotatedSource::new(sr.clone(), "db/flight").poll_interval(Duration::from_secs(3600)),
        ),
        HealingOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(pool.active_version(), 1);
    // the pool holds no connection yet; the password changes under it
    engine.rotate_now().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            pool.run(|p| async move {
                sqlx::query_scalar::<_, String>("SELECT session_user::text")
                    .fetch_one(&p)
                    .await
            })
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), role);
    }
    let m = pool.metrics();
    assert_eq!(m.refreshes, 1, "{m:?}");
    assert!(m.retries >= 1, "{m:?}");
    assert_eq!(m.failures, 0);
    assert_eq!(pool.active_version(), 2);
    // the same through the metrics facade, and the rotation's steps timed
    let snap: Snapshot = metrics_snapshotter().snapshot().into_vec();
    assert!(counter(&snap, strongroom_sqlx::pool::POOL_REFRESHES, None) >= 1);
    assert!(
        counter(
            &snap,
            strongroom_sqlx::pool::POOL_LOGIN_REFUSALS,
            Some(("class", "credential"))
        ) >= 1
    );
    assert!(snap.iter().any(|(k, _, _, _)| {
        k.key().name() == strongroom::metrics::ROTATION_STEP_SECONDS
            && k.key()
                .labels()
                .any(|l| l.key() == "step" && l.value() == "promote")
    }));
}

/// A revoked credential with nothing to replace it: a clear error once the
/// budget is spent, not a hang and not a refresh loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_credential_without_replacement_fails_after_the_budget() {
    let env = Env::new("revoked").await;
    let role = unique("rv");
    env.exec(
        "SELECT format('CREATE ROLE %I LOGIN', $1::text)",
        &role,
        None,
    )
    .await;
    let sr = store(Arc::new(SystemClock), Arc::new(MemoryStorage::new())).await;
    let engine = sr
        .rotation_engine(
            "db/revoked",
            Arc::new(PgSingleUserRotator::new(
                env.admin.clone(),
                env.target.clone(),
                &role,
            )),
            fast(),
        )
        .await
        .unwrap();
    engine.rotate_now().await.unwrap();
    let budget = Duration::from_secs(3);
    let pool = HealingPool::connect(
        env.target.clone(),
        PgPoolOptions::new(),
        Arc::new(RotatedSource::with_engine(sr.clone(), &engine)),
        HealingOptions {
            budget,
            ..HealingOptions::default()
        },
    )
    .await
    .unwrap();
    // revoked out of band
    env.exec(
        "SELECT format('ALTER ROLE %I PASSWORD NULL', $1::text)",
        &role,
        None,
    )
    .await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            pool.run(|p| async move { sqlx::query("SELECT 1").execute(&p).await })
                .await
        }));
    }
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        match &err {
            HealingError::NoWorkingCredential {
                tried, budget: b, ..
            } => {
                assert_eq!(tried, &vec![1]);
                assert_eq!(*b, budget);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("refused every stored version"));
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= budget, "{elapsed:?}");
    assert!(elapsed < budget + Duration::from_secs(3), "{elapsed:?}");
    let m = pool.metrics();
    // Callers try again after a backoff (100 ms doubling to 1 s) in case a
    // change went unannounced: a handful of shared refreshes over the
    // budget, not a loop.
    assert!((1..=12).contains(&m.refreshes), "no refresh loop: {m:?}");
    assert_eq!(m.failures, 8);
    // a new version arriving heals the pool
    engine.rotate_now().await.unwrap();
    pool.run(|p| async move { sqlx::query("SELECT 1").execute(&p).await })
        .await
        .unwrap();
}

/// `57P03` from a real server: a cluster of this test's own in a smart
/// shutdown keeps its open session but refuses new logins with "the
/// database system is shutting down". That is not a credential failure: no
/// refresh, the error comes back at once.
#[tokio::test]
async fn a_server_refusing_new_connections_is_unavailable_not_a_credential_failure() {
    let pg = TestPostgres::start().unwrap();
    let admin_opts = pg.connect_options("postgres");
    let mut held = admin_opts.connect().await.unwrap();
    sqlx::query("CREATE ROLE shutdown_probe LOGIN PASSWORD 'probe-pw'")
        .execute(&mut held)
        .await
        .unwrap();
    if !pg.begin_smart_shutdown().unwrap() {
        eprintln!("external server: not shutting it down; 57P03 checked by code only");
        return;
    }
    let target = admin_opts
        .clone()
        .username("shutdown_probe")
        .password("probe-pw");
    // The postmaster changes state asynchronously: poll (bounded) until it
    // refuses new logins.
    let mut refused = None;
    for _ in 0..500 {
        match target.connect().await {
            Ok(c) => {
                let _ = c.close().await;
                tokio::task::yield_now().await;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("the server refuses new logins during a smart shutdown");
    assert_eq!(code(&e), "57P03", "{e}");
    assert_eq!(classify(&e, true), ErrorClass::Unavailable);

    let source = Arc::new(FixedSource(StagedCredentials {
        current: Some(Credential::new(
            1,
            "shutdown_probe",
            SecretBytes::from("probe-pw"),
        )),
        ..StagedCredentials::default()
    }));
    let start = Instant::now();
    let err = HealingPool::connect(
        admin_opts.clone(),
        PgPoolOptions::new(),
        source,
        HealingOptions {
            budget: Duration::from_secs(5),
            ..HealingOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "no refresh loop");
    match err {
        HealingError::Database { class, .. } => assert_eq!(class, ErrorClass::Unavailable),
        other => panic!("{other:?}"),
    }
    // the open session still works; closing it lets the shutdown finish
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut held)
        .await
        .unwrap();
    assert_eq!(one, 1);
    held.close().await.unwrap();
}

/// A store that announces no changes (no `watch`) and whose next read of
/// one key can be held after the value was read, as if the reading task had
/// been descheduled right then, until the test lets it go: how a pool in a
/// loaded process reads a rotation state that rotations in another process
/// overtake before it reads the versions the state names.
#[derive(Debug, Clone)]
struct GateStorage {
    inner: DynStorage,
    gate: Arc<Gate>,
}

#[derive(Debug, Default)]
struct Gate {
    armed: std::sync::Mutex<Option<String>>,
    held: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl GateStorage {
    fn new(inner: DynStorage) -> Self {
        Self {
            inner,
            gate: Arc::default(),
        }
    }

    /// Holds the next read of `key` (after reading it) until [`Self::release`].
    fn arm(&self, key: &str) {
        *self.gate.armed.lock().unwrap() = Some(key.to_owned());
    }

    /// Waits until a read is held.
    async fn held(&self) {
        self.gate.held.notified().await;
    }

    fn release(&self) {
        self.gate.release.notify_one();
    }
}

#[async_trait::async_trait]
impl strongroom::storage::Storage for GateStorage {
    fn backend(&self) -> &'static str {
        "gate"
    }
    async fn get(&self, key: &str) -> strongroom::Result<Option<Vec<u8>>> {
        let value = self.inner.get(key).await?;
        let hold = {
            let mut armed = self.gate.armed.lock().unwrap();
            if armed.as_deref() == Some(key) {
                *armed = None;
                true
            } else {
                false
            }
        };
        if hold {
            self.gate.held.notify_one();
            self.gate.release.notified().await;
        }
        Ok(value)
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
        self.inner.batch(ops).await
    }
}

/// `RotatedSource::staged` reads one state of the rotation record: held
/// after reading the record while two rotations revoke and delete both
/// versions it names, it reads again and returns the versions stored now,
/// not an empty (or partial) list.
#[tokio::test]
async fn the_rotated_source_reads_a_consistent_snapshot() {
    use strongroom::rotation::{ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier};
    use strongroom_sqlx::pool::CredentialSource;
    let mem = MemoryStorage::new();
    let sr = store(Arc::new(SystemClock), Arc::new(mem.clone())).await;
    let rotator = ApiKeyRotator::new(
        ApiKeyFormat::base62("sk_", 32),
        Arc::new(ApiKeyVerifier::new().unwrap()),
    );
    let engine = sr
        .rotation_engine("api/snap", Arc::new(rotator), fast())
        .await
        .unwrap();
    engine.rotate_now().await.unwrap();
    engine.rotate_now().await.unwrap();
    let gate = GateStorage::new(Arc::new(mem.clone()));
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    let reader_sr = Strongroom::unseal(Arc::new(gate.clone()), &protector, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let source = Arc::new(RotatedSource::new(reader_sr, "api/snap"));
    gate.arm("rot/api/snap");
    let read = {
        let source = source.clone();
        tokio::spawn(async move { source.staged().await })
    };
    gate.held().await; // the record read names v2 (current) and v1
    engine.rotate_now().await.unwrap(); // v1 deleted
    engine.rotate_now().await.unwrap(); // v2 deleted
    gate.release();
    let staged = read.await.unwrap().unwrap();
    let versions: Vec<u64> = staged.in_try_order().map(Credential::version).collect();
    assert_eq!(versions, vec![4, 3]);
}

/// The "tried []" failure, made deterministic. A pool in a process that does
/// not rotate has its active version revoked by rotations elsewhere; the
/// refresh its next query starts reads the rotation state, and before it
/// reads the versions that state names, two more rotations revoke and delete
/// them (a loaded worker process against a rotator running back to back).
/// The refresh must still find the version that is current by then, and
/// the query must not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_state_read_is_overtaken_by_rotations_finds_the_current_version() {
    let env = Env::new("overtaken").await;
    let mem = MemoryStorage::new();
    let sr = store(Arc::new(SystemClock), Arc::new(mem.clone())).await;
    let rot =
        PgAlternatingRotator::new(env.admin.clone(), env.target.clone(), &unique("ov")).unwrap();
    rot.ensure_roles().await.unwrap();
    let engine = sr
        .rotation_engine("db/ov", Arc::new(rot), fast())
        .await
        .unwrap();
    engine.rotate_now().await.unwrap();
    engine.rotate_now().await.unwrap(); // v2 (role _b) current, v1 previous

    // The pool's process opens the same store through the gate.
    let gate = GateStorage::new(Arc::new(mem.clone()));
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    let pool_sr = Strongroom::unseal(Arc::new(gate.clone()), &protector, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let budget = Duration::from_secs(3);
    let pool = HealingPool::connect(
        env.target.clone(),
        PgPoolOptions::new().max_connections(2),
        // no notices (the gate announces nothing) and no polling: the pool
        // learns of the rotations only through a refused login
        Arc::new(RotatedSource::new(pool_sr, "db/ov").poll_interval(Duration::from_secs(3600))),
        HealingOptions {
            budget,
            ..HealingOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(pool.active_version(), 2);

    // Two rotations elsewhere: v2 is revoked (role _b gets v4's password).
    engine.rotate_now().await.unwrap();
    engine.rotate_now().await.unwrap();
    assert_eq!(engine.status().await.unwrap().current, Some(4));

    // The next query's login is refused; its refresh reads the state
    // (current v4, previous v3) and is held there.
    gate.arm("rot/db/ov");
    let mut events = pool.subscribe();
    let start = Instant::now();
    let query = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.run(|p| async move {
                sqlx::query_scalar::<_, String>("SELECT session_user::text")
                    .fetch_one(&p)
                    .await
            })
            .await
        })
    };
    gate.held().await;
    // Meanwhile two more rotations revoke and delete v3 and v4.
    engine.rotate_now().await.unwrap();
    engine.rotate_now().await.unwrap();
    let current = engine.staged().await.unwrap().current.unwrap();
    assert_eq!(current.version(), 6);
    gate.release();

    let r = query.await.unwrap();
    let elapsed = start.elapsed();
    match r {
        Ok(user) => assert_eq!(user, current.identity()),
        Err(e) => panic!("the query failed after {elapsed:?}: {e}"),
    }
    assert!(elapsed < budget, "{elapsed:?}");
    assert_eq!(pool.active_version(), 6);
    let m = pool.metrics();
    assert_eq!(m.failures, 0);
    // The one refresh found v6 itself (it saw the record change while it
    // read, and read again), rather than failing and trying again later.
    assert_eq!(m.refreshes, 1, "{m:?}");
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, strongroom_sqlx::pool::PoolEvent::RefreshFailed { .. }),
            "{ev:?}"
        );
    }
}

/// A source whose stored versions the test sets, and that never reports
/// changes (like a rotated credential whose rotator runs elsewhere).
#[derive(Debug)]
struct SwitchSource(std::sync::Mutex<StagedCredentials>);

#[async_trait::async_trait]
impl strongroom_sqlx::pool::CredentialSource for SwitchSource {
    fn name(&self) -> &str {
        "switch"
    }
    async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        Ok(self.0.lock().unwrap().clone())
    }
}

/// The second half of "tried []": a caller whose refresh found nothing
/// working waited for a source change that a source without change reports
/// never sends, while another caller's later refresh healed the pool; at the
/// end of its budget it failed and, the last refresh having succeeded,
/// reported an empty list. It must instead resume once the pool works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_parked_after_a_failed_refresh_resumes_when_the_pool_heals() {
    let env = Env::new("parked").await;
    let role = unique("pk");
    env.exec(
        "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
        &role,
        Some("pw-1"),
    )
    .await;
    let v1 = Credential::new(1, role.clone(), SecretBytes::from("pw-1"));
    let source = Arc::new(SwitchSource(std::sync::Mutex::new(StagedCredentials {
        current: Some(v1),
        ..StagedCredentials::default()
    })));
    let budget = Duration::from_secs(4);
    let pool = HealingPool::connect(
        env.target.clone(),
        PgPoolOptions::new().max_connections(2),
        source.clone(),
        HealingOptions {
            budget,
            ..HealingOptions::default()
        },
    )
    .await
    .unwrap();
    // The password changes before the new version is visible to the pool.
    env.exec(
        "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
        &role,
        Some("pw-2"),
    )
    .await;
    let mut events = pool.subscribe();
    let start = Instant::now();
    let parked = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.run(|p| async move { sqlx::query("SELECT 1").execute(&p).await })
                .await
        })
    };
    tokio::time::timeout(budget, async {
        while !matches!(
            events.recv().await,
            Ok(strongroom_sqlx::pool::PoolEvent::RefreshFailed { .. })
        ) {}
    })
    .await
    .expect("the first refresh found nothing working");
    // The new version arrives; another caller heals the pool.
    *source.0.lock().unwrap() = StagedCredentials {
        current: Some(Credential::new(2, role.clone(), SecretBytes::from("pw-2"))),
        ..StagedCredentials::default()
    };
    pool.run(|p| async move { sqlx::query("SELECT 1").execute(&p).await })
        .await
        .unwrap();
    assert_eq!(pool.active_version(), 2);
    let r = parked.await.unwrap();
    let elapsed = start.elapsed();
    if let Err(e) = r {
        panic!("the parked caller failed after {elapsed:?}: {e}");
    }
    assert!(elapsed < budget / 2, "{elapsed:?}");
}

/// A credential with no stored version: the error says so, instead of
/// listing no tried versions; at connect time, and for an operation whose
/// login is refused after the credential's records were removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_without_stored_versions_is_reported_as_such() {
    let env = Env::new("noversion").await;
    let sr = store(Arc::new(SystemClock), Arc::new(MemoryStorage::new())).await;
    let err = HealingPool::connect(
        env.target.clone(),
        PgPoolOptions::new(),
        Arc::new(RotatedSource::new(sr.clone(), "db/never-rotated")),
        HealingOptions::default(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HealingError::NoStoredVersion { .. }), "{msg}");
    assert!(!msg.contains("tried []"), "{msg}");
    assert!(msg.contains("no readable version"), "{msg}");

    let role = unique("gone");
    env.exec(
        "SELECT format('CREATE ROLE %I LOGIN', $1::text)",
        &role,
        None,
    )
    .await;
    let engine = sr
        .rotation_engine(
            "db/gone",
            Arc::new(PgSingleUserRotator::new(
                env.admin.clone(),
                env.target.clone(),
                &role,
            )),
            fast(),
        )
        .await
        .unwrap();
    engine.rotate_now().await.unwrap();
    let budget = Duration::from_secs(1);
    let pool = HealingPool::connect(
        env.target.clone(),
        PgPoolOptions::new(),
        Arc::new(RotatedSource::new(sr.clone(), "db/gone")),
        HealingOptions {
            budget,
            ..HealingOptions::default()
        },
    )
    .await
    .unwrap();
    sr.storage()
        .batch(vec![
            strongroom::storage::BatchOp::delete("rot/db/gone"),
            strongroom::storage::BatchOp::delete("s/rot/db/gone/v/1"),
        ])
        .await
        .unwrap();
    env.exec(
        "SELECT format('ALTER ROLE %I PASSWORD NULL', $1::text)",
        &role,
        None,
    )
    .await;
    let err = pool
        .run(|p| async move { sqlx::query("SELECT 1").execute(&p).await })
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HealingError::NoStoredVersion { .. }), "{msg}");
    assert!(msg.contains("no readable version"), "{msg}");
}

/// A rotation done by another process (here: another `Strongroom` over the
/// same store, with the engine; the pool's has none) reaches the pool
/// through the store's change notices, within a second and before any
/// login fails; where the store cannot announce, the polling fallback does
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_in_another_process_reaches_the_pool_within_a_second() {
    let env = Env::new("notice").await;
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    for notified in [true, false] {
        let mem = MemoryStorage::new();
        // the pool's store: the same records, announced or not
        let pool_storage: DynStorage = if notified {
            Arc::new(mem.clone())
        } else {
            Arc::new(GateStorage::new(Arc::new(mem.clone())))
        };
        let sr = store(Arc::new(SystemClock), Arc::new(mem.clone())).await;
        let rot = PgAlternatingRotator::new(env.admin.clone(), env.target.clone(), &unique("nt"))
            .unwrap();
        rot.ensure_roles().await.unwrap();
        let engine = sr
            .rotation_engine("db/notice", Arc::new(rot), fast())
            .await
            .unwrap();
        engine.rotate_now().await.unwrap();
        let pool_sr = Strongroom::unseal(pool_storage, &protector, Options::default())
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        let source = if notified {
            // notices only: the polling fallback would take an hour
            RotatedSource::new(pool_sr, "db/notice").poll_interval(Duration::from_secs(3600))
        } else {
            RotatedSource::new(pool_sr, "db/notice")
        };
        assert_eq!(source.is_notified(), notified);
        let pool = HealingPool::connect(
            env.target.clone(),
            PgPoolOptions::new().max_connections(2),
            Arc::new(source),
            HealingOptions::default(),
        )
        .await
        .unwrap();
        let mut events = pool.subscribe();
        for expected in 2..=4u64 {
            engine.rotate_now().await.unwrap();
            let rotated = Instant::now();
            let swapped = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    if let Ok(strongroom_sqlx::pool::PoolEvent::Swapped {
                        version, reactive, ..
                    }) = events.recv().await
                        && version == expected
                    {
                        return reactive;
                    }
                }
            })
            .await;
            let reactive = swapped.unwrap_or_else(|_| {
                panic!("notified={notified}: version {expected} did not reach the pool within 1 s")
            });
            assert!(!reactive, "notified={notified}: the swap was proactive");
            eprintln!(
                "notified={notified}: version {expected} reached the pool {:?} after the rotation returned",
                rotated.elapsed()
            );
            assert_eq!(pool.active_version(), expected);
        }
        let user: String = pool
            .run(|p| async move {
                sqlx::query_scalar("SELECT session_user::text")
                    .fetch_one(&p)
                    .await
            })
            .await
            .unwrap();
        let current = engine.staged().await.unwrap().current.unwrap();
        assert_eq!(user, current.identity());
        let m = pool.metrics();
        assert_eq!(
            m.refreshes, 0,
            "notified={notified}: no login was refused: {m:?}"
        );
        pool.pool().close().await;
    }
}
