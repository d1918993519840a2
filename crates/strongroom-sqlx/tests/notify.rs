//! Change notification across store instances: each instance here has its
//! own pool (its own connections), as another process would.
//!
//! PostgreSQL: a batch announces its keys with `pg_notify`, delivered on
//! commit to every other instance's listener. SQLite: another connection's
//! commit moves `PRAGMA data_version`, announced as `Unknown`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use strongroom::storage::{BatchOp, ChangeFeed, Storage, StorageEvent};
use strongroom_sqlx::{PgStore, SqliteStore};
use strongroom_testpg::TestPostgres;
use tokio::sync::broadcast::error::RecvError;

/// How long a test waits for an event: they come within a few
/// milliseconds (PostgreSQL) or 100 ms (SQLite); the margin is for a loaded
/// test machine.
const PATIENCE: Duration = Duration::from_secs(5);

/// The next event, or a panic after [`PATIENCE`].
async fn next(feed: &mut ChangeFeed) -> StorageEvent {
    match tokio::time::timeout(PATIENCE, feed.recv()).await {
        Ok(Ok(event)) => event,
        Ok(Err(e)) => panic!("feed failed: {e}"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// Every event arriving within `quiet`.
async fn drain(feed: &mut ChangeFeed, quiet: Duration) -> Vec<StorageEvent> {
    let mut out = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(quiet, feed.recv()).await {
        out.push(e);
    }
    out
}

/// A feed whose backend watcher is running: the first event a new watcher
/// sends is `Unknown` ("commits before now were not watched").
async fn live_feed(store: &dyn Storage) -> ChangeFeed {
    let mut feed = store.watch().expect("this backend announces changes");
    assert_eq!(next(&mut feed).await, StorageEvent::Unknown);
    feed
}

fn changed(keys: &[&str]) -> StorageEvent {
    StorageEvent::Changed(keys.iter().map(|k| (*k).to_owned()).collect())
}

async fn assert_closed(feed: &mut ChangeFeed) {
    loop {
        match tokio::time::timeout(PATIENCE, feed.recv()).await {
            Ok(Err(RecvError::Closed)) => return,
            Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
            Err(_) => panic!("the feed did not close"),
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// Two stores on one fresh database, its URL, and the server (which stops
/// when the last test holding it lets go).
async fn two_pg_stores(label: &str) -> (PgStore, PgStore, String, Arc<TestPostgres>) {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database(label).await.unwrap();
    let a = PgStore::connect(&url).await.unwrap();
    let b = PgStore::connect(&url).await.unwrap();
    (a, b, url, pg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_commit_reaches_the_other_instance_with_its_keys() {
    let (a, b, _, _pg) = two_pg_stores("notify_keys").await;
    let mut feed = live_feed(&b).await;

    a.put("app/one", b"1").await.unwrap();
    assert_eq!(next(&mut feed).await, changed(&["app/one"]));

    a.batch(vec![
        BatchOp::put("app/two", b"2".to_vec()),
        BatchOp::delete("app/one"),
        BatchOp::expect("app/three", None),
    ])
    .await
    .unwrap();
    // one notice per batch, with the keys it wrote or deleted
    assert_eq!(next(&mut feed).await, changed(&["app/two", "app/one"]));

    // keys that are not plain ASCII arrive as they were written
    let odd = "é/ü x%20\ttab";
    a.put(odd, b"3").await.unwrap();
    assert_eq!(next(&mut feed).await, changed(&[odd]));

    // the notice is sent inside the batch's transaction: when it arrives the
    // value is there to read
    a.put("app/read-after", b"v").await.unwrap();
    assert_eq!(next(&mut feed).await, changed(&["app/read-after"]));
    assert_eq!(b.get("app/read-after").await.unwrap().unwrap(), b"v");
    assert!(
        drain(&mut feed, Duration::from_millis(200))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_failed_and_read_only_batches_announce_nothing() {
    let (a, b, _, _pg) = two_pg_stores("notify_rollback").await;
    let mut feed = live_feed(&b).await;
    a.put("k", b"1").await.unwrap();
    assert_eq!(next(&mut feed).await, changed(&["k"]));

    // a failed precondition rolls back, notice included
    let err = a
        .batch(vec![
            BatchOp::expect("k", Some(b"other".to_vec())),
            BatchOp::put("k", b"2".to_vec()),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, strongroom::Error::StorageConflict { .. }));
    // a batch of preconditions only writes nothing
    a.batch(vec![BatchOp::expect("k", Some(b"1".to_vec()))])
        .await
        .unwrap();
    a.put("after", b"x").await.unwrap();
    assert_eq!(next(&mut feed).await, changed(&["after"]));
    assert!(
        drain(&mut feed, Duration::from_millis(200))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_too_many_keys_for_one_notice_is_unknown() {
    let (a, b, _, _pg) = two_pg_stores("notify_long").await;
    let mut feed = live_feed(&b).await;
    let ops: Vec<BatchOp> = (0..300)
        .map(|i| BatchOp::put(format!("bulk/{i:04}/{}", "x".repeat(40)), vec![1]))
        .collect();
    a.batch(ops).await.unwrap();
    assert_eq!(next(&mut feed).await, StorageEvent::Unknown);
    assert_eq!(b.list("bulk/").await.unwrap().len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_own_commits_are_announced_once_without_the_listener() {
    let (a, _b, _, _pg) = two_pg_stores("notify_own").await;
    let mut feed = live_feed(&a).await;
    // A clone shares the feed and announces too.
    let clone = a.clone();
    a.put("mine", b"1").await.unwrap();
    clone.put("mine/too", b"2").await.unwrap();
    assert_eq!(
        drain(&mut feed, Duration::from_millis(300)).await,
        vec![changed(&["mine"]), changed(&["mine/too"])],
        "own commits: exactly once each, not echoed by the listener"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_listener_reconnects_and_says_unknown() {
    let (a, b, url, _pg) = two_pg_stores("notify_reconnect").await;
    let mut feed = live_feed(&b).await;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "one listener connection");
    // notices sent while it was away are lost: it says so
    assert_eq!(next(&mut feed).await, StorageEvent::Unknown);
    a.put("after/reconnect", b"1").await.unwrap();
    let mut got = next(&mut feed).await;
    if got == StorageEvent::Unknown {
        got = next(&mut feed).await;
    }
    assert_eq!(got, changed(&["after/reconnect"]));
}

/// Connections of the database that last ran `LISTEN`: the listeners.
async fn listeners(admin: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_close_and_drop_stop_the_listener() {
    let (a, b, url, _pg) = two_pg_stores("notify_stop").await;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();

    // Dropping the last clone stops the listener and closes the feeds.
    let mut feed = live_feed(&b).await;
    let clone = b.clone();
    drop(b);
    assert_eq!(listeners(&mut admin).await, 1, "a clone keeps it running");
    drop(clone);
    assert_closed(&mut feed).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while listeners(&mut admin).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener still connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // close() does the same, and watch() answers None afterwards.
    let mut feed = live_feed(&a).await;
    a.close().await;
    assert_closed(&mut feed).await;
    assert!(a.watch().is_none());
}

// -------------------------------------------------------------------- SQLite

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_commit_reaches_the_other_instance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let mut feed = live_feed(&b).await;
    assert!(
        drain(&mut feed, Duration::from_millis(300))
            .await
            .is_empty()
    );

    a.put("app/one", b"1").await.unwrap();
    // another connection's commit: SQLite cannot say which keys
    assert_eq!(next(&mut feed).await, StorageEvent::Unknown);
    assert_eq!(b.get("app/one").await.unwrap().unwrap(), b"1");

    // a plain SQLite connection (as another program would write) counts too
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO strongroom_kv (key, value) VALUES (x'6f74686572', x'01')")
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(next(&mut feed).await, StorageEvent::Unknown);
    // nothing more without commits: one Unknown per change seen
    assert!(
        drain(&mut feed, Duration::from_millis(300))
            .await
            .is_empty()
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_own_commits_carry_keys_and_are_not_reported_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("own.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let mut feed = live_feed(&a).await;
    for i in 0..5 {
        a.put(&format!("mine/{i}"), b"1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    a.batch(vec![
        BatchOp::put("mine/x", b"2".to_vec()),
        BatchOp::delete("mine/0"),
    ])
    .await
    .unwrap();
    let events = drain(&mut feed, Duration::from_millis(400)).await;
    let expected: Vec<StorageEvent> = (0..5)
        .map(|i| StorageEvent::Changed(vec![format!("mine/{i}")]))
        .chain([changed(&["mine/x", "mine/0"])])
        .collect();
    assert_eq!(
        events, expected,
        "own commits once each, with keys; no Unknown"
    );
    a.close().await;
}

/// Commits by this store and by another in the same watch interval: the
/// other's must still be announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_foreign_commit_beside_own_commits_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let mut feed = live_feed(&a).await;
    for round in 0..10 {
        b.put(&format!("theirs/{round}"), b"1").await.unwrap();
        a.put(&format!("mine/{round}"), b"1").await.unwrap();
        let mine = StorageEvent::Changed(vec![format!("mine/{round}")]);
        let (mut saw_mine, mut saw_theirs) = (false, false);
        while !(saw_mine && saw_theirs) {
            let event = next(&mut feed).await;
            saw_mine |= event == mine;
            saw_theirs |= event == StorageEvent::Unknown;
        }
        // the watcher's check for this round is done: nothing left over
        assert!(
            drain(&mut feed, Duration::from_millis(250))
                .await
                .is_empty()
        );
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_close_and_drop_stop_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stop.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let mut feed = live_feed(&a).await;
    a.close().await;
    assert_closed(&mut feed).await;
    assert!(a.watch().is_none());

    let b = SqliteStore::open(&path).await.unwrap();
    let mut feed = live_feed(&b).await;
    let clone = b.clone();
    drop(b);
    clone.put("still", b"open").await.unwrap();
    assert_eq!(next(&mut feed).await, changed(&["still"]));
    drop(clone);
    assert_closed(&mut feed).await;
}

/// A watched store stays a conforming store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_stores_pass_the_conformance_suite() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use strongroom::storage::conformance;

    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    let dir_path = dir.path().to_path_buf();
    conformance::run_all(|| {
        let path = dir_path.join(format!("c{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move {
            let s = SqliteStore::open(path).await.unwrap();
            // starts the watcher, which runs while the store lives
            drop(s.watch());
            s
        }
    })
    .await;

    let pg = TestPostgres::shared().unwrap();
    conformance::run_all(|| {
        let pg = Arc::clone(&pg);
        async move {
            let url = pg.fresh_database("notify_conformance").await.unwrap();
            let s = PgStore::connect(&url).await.unwrap();
            // starts the watcher, which runs while the store lives
            drop(s.watch());
            s
        }
    })
    .await;
}
