//! SqliteStore: conformance, durability settings, damaged files, concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection;
use strongroom::storage::{BatchOp, Storage, conformance};
use strongroom::{Error, StorageErrorKind};
use strongroom_sqlx::SqliteStore;

fn expect_kind(result: strongroom::Result<SqliteStore>, kind: StorageErrorKind, path: &Path) {
    match result {
        Err(Error::Storage {
            backend,
            kind: k,
            message,
        }) => {
            eprintln!("{kind:?}: {message}");
            assert_eq!(backend, "sqlite");
            assert_eq!(k, kind, "{message}");
            assert!(
                message.contains(&path.display().to_string()),
                "message should name the file: {message}"
            );
        }
        Err(other) => panic!("expected a {kind:?} storage error, got {other:?}"),
        Ok(store) => panic!("expected a {kind:?} storage error, opened {store:?}"),
    }
}

/// Fills a store with enough records to span many pages, then closes it.
async fn filled_store(path: &Path) {
    let s = SqliteStore::open(path).await.unwrap();
    for chunk in 0..20 {
        let ops = (0..100)
            .map(|i| BatchOp::put(format!("r/{chunk:02}/{i:03}"), vec![chunk as u8; 900]))
            .collect();
        s.batch(ops).await.unwrap();
    }
    s.close().await;
}

#[tokio::test]
async fn conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    let dir_path = dir.path().to_path_buf();
    conformance::run_all(|| {
        let path = dir_path.join(format!("c{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move { SqliteStore::open(path).await.unwrap() }
    })
    .await;
}

#[tokio::test]
async fn reopen_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reopen.db");
    conformance::reopen_after_close(|| {
        let path = path.clone();
        async move { SqliteStore::open(path).await.unwrap() }
    })
    .await;
    // and after an explicit close too
    let s = SqliteStore::open(&path).await.unwrap();
    s.put("persist/c", b"3").await.unwrap();
    s.close().await;
    assert!(matches!(
        s.get("persist/c").await,
        Err(Error::Storage {
            kind: StorageErrorKind::Unavailable,
            ..
        })
    ));
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.list("persist/").await.unwrap().len(), 3);
}

#[tokio::test]
async fn creates_the_file_with_wal_and_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let s = SqliteStore::open(&path).await.unwrap();
    assert!(path.is_file());
    s.put("a", b"1").await.unwrap();
    let d = s.diagnostics().await.unwrap();
    assert_eq!(d.journal_mode.to_ascii_lowercase(), "wal");
    assert_eq!(d.synchronous, 2, "synchronous must be FULL (2)");
    assert!(d.busy_timeout_ms >= 1000, "{d:?}");
    assert_eq!(d.schema_version, 1);
    assert_eq!(d.records, 1);
    s.close().await;
    // WAL mode is recorded in the file header itself (bytes 18 and 19 are 2).
    let header = std::fs::read(&path).unwrap();
    assert_eq!(&header[..16], b"SQLite format 3\0");
    assert_eq!((header[18], header[19]), (2, 2));
    // and a plain connection sees the table with BLOB keys
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let ty: String = sqlx::query_scalar("SELECT typeof(key) FROM strongroom_kv")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(ty, "blob");
}

#[tokio::test]
async fn garbage_file_is_corrupt_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    // deterministic noise, several pages long
    let mut x: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..16_384)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    expect_kind(
        SqliteStore::open(&path).await,
        StorageErrorKind::Corrupt,
        &path,
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
    assert!(!dir.path().join("garbage.db-wal").exists());

    // short files and text files too
    std::fs::write(&path, b"hello").unwrap();
    expect_kind(
        SqliteStore::open(&path).await,
        StorageErrorKind::Corrupt,
        &path,
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
}

#[tokio::test]
async fn truncated_store_is_corrupt_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, cut) in [("mid-page", 0usize), ("page-aligned", 1)] {
        let path = dir.path().join(format!("{name}.db"));
        filled_store(&path).await;
        let full = std::fs::read(&path).unwrap();
        assert!(full.len() > 100_000, "{}", full.len());
        assert!(!Path::new(&format!("{}-wal", path.display())).exists());
        let half = if cut == 0 {
            full.len() / 2 + 123
        } else {
            full.len() / 2 / 4096 * 4096
        };
        std::fs::write(&path, &full[..half]).unwrap();
        expect_kind(
            SqliteStore::open(&path).await,
            StorageErrorKind::Corrupt,
            &path,
        );
        assert_eq!(std::fs::read(&path).unwrap(), &full[..half], "{name}");
    }
}

#[tokio::test]
async fn damaged_page_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    filled_store(&path).await;
    let mut bytes = std::fs::read(&path).unwrap();
    // Overwrite a b-tree page in the middle, keeping the file header intact.
    let page = 4096;
    let start = (bytes.len() / page / 2) * page;
    for b in &mut bytes[start..start + page] {
        *b = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    expect_kind(
        SqliteStore::open(&path).await,
        StorageErrorKind::Corrupt,
        &path,
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn foreign_sqlite_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
        sqlx::query("CREATE TABLE notes (body TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    expect_kind(
        SqliteStore::open(&path).await,
        StorageErrorKind::Corrupt,
        &path,
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let s = SqliteStore::open(&path).await.unwrap();
    s.put("a", b"1").await.unwrap();
    s.close().await;
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("PRAGMA user_version = 2")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    expect_kind(
        SqliteStore::open(&path).await,
        StorageErrorKind::UnsupportedVersion,
        &path,
    );
}

#[tokio::test]
async fn missing_directory_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("no/such/dir/s.db");
    expect_kind(
        SqliteStore::open(&path).await,
        StorageErrorKind::Unavailable,
        &path,
    );
}

/// Two stores on one file (separate connections, as two processes would
/// have) and many tasks each: every write succeeds, none sees "database is
/// locked", and CAS increments are never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_do_not_fail_with_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let a = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path).await.unwrap());
    a.put("counter", &0u64.to_be_bytes()).await.unwrap();
    let tasks = 16;
    let rounds = 25u64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let s = if t % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for r in 0..rounds {
                s.put(&format!("w/{t:02}/{r:03}"), &[t as u8; 64])
                    .await
                    .map_err(|e| format!("put: {e}"))?;
                loop {
                    let cur = s.get("counter").await.map_err(|e| format!("get: {e}"))?;
                    let cur = cur.unwrap();
                    let n = u64::from_be_bytes(cur.as_slice().try_into().unwrap());
                    if s.compare_and_set("counter", Some(&cur), Some(&(n + 1).to_be_bytes()))
                        .await
                        .map_err(|e| format!("cas: {e}"))?
                    {
                        break;
                    }
                    conflicts += 1;
                }
            }
            Ok::<u64, String>(conflicts)
        }));
    }
    for h in handles {
        let r = h.await.unwrap();
        assert!(r.is_ok(), "a writer failed: {r:?}");
    }
    let total = tasks as u64 * rounds;
    let got = b.get("counter").await.unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(got.as_slice().try_into().unwrap()),
        total
    );
    assert_eq!(a.list("w/").await.unwrap().len() as u64, total);
}

#[tokio::test]
async fn debug_names_only_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let s = SqliteStore::open(&path).await.unwrap();
    let text = format!("{s:?}");
    assert!(text.contains("d.db"), "{text}");
    assert_eq!(s.backend(), "sqlite");
    assert_eq!(s.path(), path);
}

/// A copy taken while the store is open (as after a crash: the newest
/// commits are only in the write-ahead log) opens with every commit.
#[tokio::test]
async fn crash_copy_with_write_ahead_log_opens_with_all_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let s = SqliteStore::open(&path).await.unwrap();
    for i in 0..50u32 {
        s.put(&format!("k/{i:02}"), &i.to_be_bytes()).await.unwrap();
    }
    let wal = dir.path().join("live.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "commits should sit in the WAL"
    );
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(&wal, dir.path().join("copy.db-wal")).unwrap();
    s.close().await;

    let c = SqliteStore::open(&copy).await.unwrap();
    let all = c.scan("k/", None, 100).await.unwrap();
    assert_eq!(all.len(), 50);
    assert_eq!(all[49], ("k/49".to_owned(), 49u32.to_be_bytes().to_vec()));
}

/// The mode bits of `path`.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A new store file and the `-wal` and `-shm` files SQLite makes beside it
/// are 0600 under the usual umask of 022 (which would give 0644). The umask
/// is per process, so the test runs itself again in a child process started
/// by `sh` after `umask 022`, rather than change the umask of the process
/// running the other tests.
#[test]
fn new_store_files_are_owner_only_under_umask_022() {
    const CHILD: &str = "STRONGROOM_TEST_UMASK_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 022 && exec \"$@\"")
            .arg("sh")
            .arg(exe)
            .args([
                "--exact",
                "new_store_files_are_owner_only_under_umask_022",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the child should have run the test:\n{stdout}"
        );
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        status.lines().any(|l| l == "Umask:\t0022"),
        "the child should run under umask 022"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        let s = SqliteStore::open(&path).await.unwrap();
        s.put("k/1", b"sealed bytes").await.unwrap();
        let wal = dir.path().join("fresh.db-wal");
        let shm = dir.path().join("fresh.db-shm");
        assert_eq!(mode_of(&path), 0o600, "database file");
        assert_eq!(mode_of(&wal), 0o600, "write-ahead log");
        assert_eq!(mode_of(&shm), 0o600, "shared-memory index");
        // and a file created by sqlite as a control: 0644 under this umask
        let control = dir.path().join("control.db");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&control)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::query("CREATE TABLE t (x)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert_eq!(mode_of(&control), 0o644, "sqlite's own default");
        s.close().await;
    });
}

/// An existing file keeps its mode: the store opens (with a warning) and
/// does not chmod a file it did not create.
#[tokio::test]
async fn existing_store_file_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let s = SqliteStore::open(&path).await.unwrap();
    s.put("k", b"v").await.unwrap();
    assert_eq!(mode_of(&path), 0o640);
    assert_eq!(mode_of(&dir.path().join("shared.db-wal")), 0o640);
    s.close().await;
}

/// Open descriptors of this process on files whose path starts with `prefix`.
fn open_files_under(prefix: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| t.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_the_watcher_and_leaves_no_wal_or_open_file() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let db = dir.path().join(format!("w{i}.db"));
        let store = SqliteStore::open(&db).await.unwrap();
        let mut feed = store.watch().expect("a feed");
        store.put("k", b"v").await.unwrap();
        // The watcher is up once it has said Unknown for what it missed. On
        // a loaded machine its read connection may still be retrying to
        // open (busy file, backing off); close must end it then too.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Ok(Ok(strongroom::storage::StorageEvent::Unknown)) | Err(_) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("the feed failed before close: {e:?}"),
            }
        }
        store.close().await;
        let wal = db.with_extension("db-wal");
        assert!(!wal.exists(), "run {i}: {} left behind", wal.display());
        assert_eq!(
            open_files_under(dir.path()),
            0,
            "run {i}: a connection is still open"
        );
    }
}
