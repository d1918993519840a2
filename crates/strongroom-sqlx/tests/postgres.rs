//! PgStore against a real PostgreSQL server (a private cluster per test
//! binary from strongroom-testpg, or `STRONGROOM_TEST_PG_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use strongroom::storage::{BatchOp, Storage, conformance};
use strongroom::{Error, StorageErrorKind};
use strongroom_sqlx::PgStore;
use strongroom_testpg::TestPostgres;

fn storage_kind(e: &Error) -> Option<StorageErrorKind> {
    match e {
        Error::Storage { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[tokio::test]
async fn conformance_suite() {
    let pg = TestPostgres::shared().unwrap();
    conformance::run_all(|| {
        let pg = Arc::clone(&pg);
        async move {
            let url = pg.fresh_database("conformance").await.unwrap();
            PgStore::connect(&url).await.unwrap()
        }
    })
    .await;
}

#[tokio::test]
async fn reopen_after_close() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("reopen").await.unwrap();
    conformance::reopen_after_close(|| {
        let url = url.clone();
        async move { PgStore::connect(&url).await.unwrap() }
    })
    .await;
    let s = PgStore::connect(&url).await.unwrap();
    s.close().await;
    let err = s.get("persist/a").await.unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageErrorKind::Unavailable),
        "{err}"
    );
}

/// Many stores (separate pools, as separate processes would have) race on
/// create-only and compare-and-set: exactly one winner each time, and no
/// increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_across_instances_has_one_winner() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("race").await.unwrap();
    let mut stores = Vec::new();
    for _ in 0..6 {
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .connect(&url)
            .await
            .unwrap();
        stores.push(Arc::new(PgStore::from_pool(pool).await.unwrap()));
    }

    // Expect-absent races: every round, all instances try to create the key.
    for round in 0..20 {
        let key = format!("create/{round}");
        let mut handles = Vec::new();
        for (i, s) in stores.iter().enumerate() {
            for j in 0..2u8 {
                let s = Arc::clone(s);
                let key = key.clone();
                handles.push(tokio::spawn(async move {
                    s.compare_and_set(&key, None, Some(&[i as u8, j]))
                        .await
                        .unwrap()
                }));
            }
        }
        let mut wins = 0;
        for h in handles {
            wins += usize::from(h.await.unwrap());
        }
        assert_eq!(wins, 1, "round {round}");
    }

    // A create-only batch races plain puts of the same key: a batch that
    // expected absence must never overwrite a committed value.
    stores[0].put("counter", &0u64.to_be_bytes()).await.unwrap();
    let mut handles = Vec::new();
    let per_task = 15u64;
    for (i, s) in stores.iter().enumerate() {
        let s = Arc::clone(s);
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                loop {
                    let cur = s.get("counter").await.unwrap().unwrap();
                    let n = u64::from_be_bytes(cur.as_slice().try_into().unwrap());
                    let ok = s
                        .compare_and_set("counter", Some(&cur), Some(&(n + 1).to_be_bytes()))
                        .await
                        .unwrap();
                    if ok {
                        break;
                    }
                }
            }
            i
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let got = stores[1].get("counter").await.unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(got.as_slice().try_into().unwrap()),
        per_task * stores.len() as u64
    );
}

/// Batches with several preconditions over overlapping keys, issued in
/// opposite orders from different instances, neither deadlock nor lose
/// atomicity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_do_not_deadlock() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("overlap").await.unwrap();
    let a = Arc::new(PgStore::connect(&url).await.unwrap());
    let b = Arc::new(PgStore::connect(&url).await.unwrap());
    a.put("x", b"0").await.unwrap();
    a.put("y", b"0").await.unwrap();
    let mut handles = Vec::new();
    for t in 0..8usize {
        let s = if t % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        handles.push(tokio::spawn(async move {
            let (first, second) = if t % 2 == 0 { ("x", "y") } else { ("y", "x") };
            for _ in 0..10 {
                loop {
                    let v1 = s.get(first).await.unwrap().unwrap();
                    let v2 = s.get(second).await.unwrap().unwrap();
                    let n: u32 = std::str::from_utf8(&v1).unwrap().parse().unwrap();
                    let next = (n + 1).to_string().into_bytes();
                    // keep x == y: move both together
                    let r = s
                        .batch(vec![
                            BatchOp::expect(first, Some(v1.clone())),
                            BatchOp::expect(second, Some(v2.clone())),
                            BatchOp::put(second, next.clone()),
                            BatchOp::put(first, next),
                        ])
                        .await;
                    match r {
                        Ok(()) => break,
                        Err(Error::StorageConflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    let all = async {
        for h in handles {
            h.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("batches deadlocked");
    assert_eq!(a.get("x").await.unwrap().unwrap(), b"80");
    assert_eq!(a.get("y").await.unwrap().unwrap(), b"80");
}

#[tokio::test]
async fn wrong_password_is_rejected_and_hidden() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.url_for(pg.superuser(), "not-the-password", "postgres");
    let err = PgStore::connect(&url).await.unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageErrorKind::Rejected),
        "{err}"
    );
    let text = format!("{err} {err:?}");
    assert!(text.contains("28P01"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(
        !text.contains(pg.superuser_password().expose_secret()),
        "{text}"
    );
    // No password in the URL: refused, nothing taken from PGPASSWORD or ~/.pgpass.
    let url = format!(
        "postgres://{}@{}:{}/postgres",
        pg.superuser(),
        pg.host(),
        pg.port()
    );
    let err = PgStore::connect(&url).await.unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageErrorKind::Rejected),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy(&format!("postgres://u:p@127.0.0.1:{port}/db"))
        .unwrap();
    let err = PgStore::from_pool(pool).await.unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageErrorKind::Unavailable),
        "{err}"
    );
    let err = PgStore::connect("not a url").await.unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageErrorKind::Rejected),
        "{err}"
    );
}

#[tokio::test]
async fn unprivileged_role_is_rejected() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("noprivs").await.unwrap();
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("DROP ROLE IF EXISTS strongroom_noprivs")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE ROLE strongroom_noprivs LOGIN PASSWORD 'np-pw'")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        .execute(&admin)
        .await
        .unwrap();
    let db = url.rsplit('/').next().unwrap();
    let err = PgStore::connect(&pg.url_for("strongroom_noprivs", "np-pw", db))
        .await
        .unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageErrorKind::Rejected),
        "{err}"
    );
    admin.close().await;
}

#[tokio::test]
async fn newer_schema_and_foreign_tables_are_refused() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("schema").await.unwrap();
    let s = PgStore::connect(&url).await.unwrap();
    s.put("a", b"1").await.unwrap();
    sqlx::query("COMMENT ON TABLE strongroom_kv IS 'strongroom kv schema 2'")
        .execute(s.pool())
        .await
        .unwrap();
    let err = PgStore::connect(&url).await.unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageErrorKind::UnsupportedVersion),
        "{err}"
    );
    sqlx::query("COMMENT ON TABLE strongroom_kv IS NULL")
        .execute(s.pool())
        .await
        .unwrap();
    let err = PgStore::connect(&url).await.unwrap_err();
    assert_eq!(storage_kind(&err), Some(StorageErrorKind::Corrupt), "{err}");
    // The original data was not touched.
    sqlx::query("COMMENT ON TABLE strongroom_kv IS 'strongroom kv schema 1'")
        .execute(s.pool())
        .await
        .unwrap();
    let again = PgStore::connect(&url).await.unwrap();
    assert_eq!(again.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
}

#[tokio::test]
async fn many_instances_create_the_table_together() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("together").await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        handles.push(tokio::spawn(async move { PgStore::connect(&url).await }));
    }
    for h in handles {
        let s = h.await.unwrap().unwrap();
        assert_eq!(s.backend(), "postgres");
        assert!(!format!("{s:?}").contains(pg.superuser_password().expose_secret()));
    }
}
