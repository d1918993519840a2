//! The self-healing pool over a dynamic lease: 16 workers query through the
//! pool while the lease reaches its refresh point (the clock is moved, never
//! slept) and a new login role is issued and swapped in: no query fails.
//! Then the old lease ends and is revoked, and the pool goes on working.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgPoolOptions;
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::lease::LeaseConfig;
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_sqlx::dynamic::{
    PgDynamicConfig, PgDynamicCredentials, PgGrant, PgObject, PgPrivilege, PgRoleDefinition,
};
use strongroom_sqlx::pool::{
    CredentialSource, HealingOptions, HealingPool, LeaseSource, PoolEvent,
};
use strongroom_testpg::TestPostgres;

const MIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_survives_a_dynamic_lease_expiring_and_being_replaced() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("leasepool").await.unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let admin = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(
        "CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2)",
    ))
    .execute(&admin)
    .await
    .unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(
        now.as_millis() as u64
    )));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let store = Strongroom::init(
        storage.clone(),
        &SoftwareProtector::from_key(SecretBytes::new(vec![3; 32])).unwrap(),
        Options {
            clock: clock.clone(),
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .dangerous_traced("test")
    .await
    .unwrap();
    let leases = Arc::new(
        store
            .lease_manager(clock.clone(), LeaseConfig::default())
            .unwrap(),
    );
    let mut config = PgDynamicConfig::default();
    config.role_prefix = "sr_lp_".into();
    let engine = Arc::new(
        PgDynamicCredentials::new(admin.clone(), leases.clone(), store, clock.clone(), config)
            .unwrap(),
    );
    let definition = PgRoleDefinition::new("app")
        .unwrap()
        .grant(PgGrant::new(
            [PgPrivilege::Connect],
            PgObject::database(&db),
        ))
        .grant(PgGrant::new(
            [PgPrivilege::Usage],
            PgObject::schema("public"),
        ))
        .grant(PgGrant::new(
            [PgPrivilege::Select],
            PgObject::table("public", "items"),
        ))
        .default_ttl(10 * MIN)
        .max_ttl(60 * MIN);
    let source = Arc::new(
        LeaseSource::new(engine.clone(), definition, None, clock.clone(), 0.5)
            .await
            .unwrap(),
    );
    let first = source.staged().await.unwrap().current.unwrap();
    let pool = Arc::new(
        HealingPool::connect(
            pg.connect_options(&db),
            // idle_timeout: connections that sit idle are closed too, so none
            // opened with the old role lingers until its lease ends.
            PgPoolOptions::new()
                .max_connections(8)
                .idle_timeout(Duration::from_secs(1)),
            source.clone(),
            HealingOptions {
                recycle_window: Duration::from_millis(200),
                ..HealingOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let mut events = pool.subscribe();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (pool, stop, ok, failed) = (pool.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = pool
                    .run(|p| async move {
                        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM items")
                            .fetch_one(&p)
                            .await
                    })
                    .await;
                match r {
                    Ok(2) => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("query failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let wait_for = |n: u64| {
        let ok = ok.clone();
        async move {
            while ok.load(Ordering::Relaxed) < n {
                tokio::task::yield_now().await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait_for(200))
        .await
        .unwrap();

    // Half the TTL passes: the source issues a new role and the pool swaps.
    clock.advance(5 * MIN + Duration::from_secs(1));
    let swapped = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(PoolEvent::Swapped {
                version,
                identity,
                reactive,
            }) = events.recv().await
            {
                return (version, identity, reactive);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(swapped.0, 2);
    assert!(!swapped.2, "the swap was proactive");
    assert_ne!(swapped.1, first.identity());
    let before = ok.load(Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(30), wait_for(before + 400))
        .await
        .unwrap();

    // The first lease reaches its end under load (10 min after issue; the
    // replacement's own refresh point is later): the lease manager revokes
    // its role, terminating any session still open with it.
    clock.advance(5 * MIN - Duration::from_secs(1));
    let report = leases.run_due().await.unwrap();
    assert_eq!(report.revoked, 1);
    let before = ok.load(Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(30), wait_for(before + 400))
        .await
        .unwrap();

    // The second lease's refresh point and its end pass at once: the lease
    // manager may revoke it before the source has issued the third and the
    // pool swapped (logins then fail with 28000 or 28P01, sessions with
    // 57P01). The pool heals either way.
    clock.advance(5 * MIN + Duration::from_secs(2));
    let report = leases.run_due().await.unwrap();
    assert_eq!(report.revoked, 1);
    let before = ok.load(Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(30), wait_for(before + 400))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no query failed while leases were replaced and revoked under load"
    );
    assert_eq!(pool.active_version(), 3);
    let role_left: Option<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname = $1")
            .bind(first.identity())
            .fetch_optional(&admin)
            .await
            .unwrap();
    assert_eq!(role_left, None, "the first lease's role was dropped");
    let m = pool.metrics();
    println!(
        "queries ok: {}, failed: {}, swaps: {}, recycled: {}, refreshes: {}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        m.swaps,
        m.recycled,
        m.refreshes
    );
}
