//! SqliteStore::open_read_only: reads and watches a store without writing
//! to it, also where the file and its directory cannot be written.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use strongroom::storage::{BatchOp, Storage, StorageEvent};
use strongroom::{Error, StorageErrorKind};
use strongroom_sqlx::SqliteStore;

fn kind_of(r: strongroom::Result<impl std::fmt::Debug>) -> StorageErrorKind {
    match r {
        Err(Error::Storage { kind, message, .. }) => {
            eprintln!("{kind:?}: {message}");
            kind
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_sees_writers_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let writer = SqliteStore::open(&path).await.unwrap();
    writer.put("a/1", b"one").await.unwrap();

    let ro = SqliteStore::open_read_only(&path).await.unwrap();
    assert!(ro.is_read_only() && !writer.is_read_only());
    assert!(format!("{ro:?}").contains("read_only: true"));
    assert_eq!(ro.get("a/1").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(ro.list("a/").await.unwrap(), vec!["a/1"]);
    assert_eq!(
        kind_of(ro.put("a/2", b"two").await),
        StorageErrorKind::Rejected
    );
    assert_eq!(
        kind_of(ro.batch(vec![BatchOp::delete("a/1")]).await),
        StorageErrorKind::Rejected
    );
    assert_eq!(writer.get("a/2").await.unwrap(), None);
    assert_eq!(ro.diagnostics().await.unwrap().records, 1);

    // what the writer commits is seen, and announced as Unknown
    let mut feed = ro.watch().unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), feed.recv()).await;
    assert_eq!(first.unwrap().unwrap(), StorageEvent::Unknown);
    writer.put("a/3", b"three").await.unwrap();
    assert_eq!(ro.get("a/3").await.unwrap(), Some(b"three".to_vec()));
    let next = tokio::time::timeout(Duration::from_secs(5), feed.recv()).await;
    assert_eq!(next.unwrap().unwrap(), StorageEvent::Unknown);

    ro.close().await;
    assert_eq!(kind_of(ro.get("a/1").await), StorageErrorKind::Unavailable);
    // the writer is unaffected
    assert_eq!(writer.get("a/1").await.unwrap(), Some(b"one".to_vec()));
    writer.close().await;
}

#[tokio::test]
async fn errors_are_typed_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    assert_eq!(
        kind_of(SqliteStore::open_read_only(&missing).await),
        StorageErrorKind::Unavailable
    );
    assert!(!missing.exists(), "a read-only open created the file");

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        kind_of(SqliteStore::open_read_only(&empty).await),
        StorageErrorKind::Corrupt
    );
    assert_eq!(std::fs::read(&empty).unwrap(), b"");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert_eq!(
        kind_of(SqliteStore::open_read_only(&garbage).await),
        StorageErrorKind::Corrupt
    );

    let foreign = dir.path().join("foreign.db");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE notes (body TEXT)").unwrap();
    }
    let before = std::fs::read(&foreign).unwrap();
    assert_eq!(
        kind_of(SqliteStore::open_read_only(&foreign).await),
        StorageErrorKind::Corrupt
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), before);

    let future = dir.path().join("future.db");
    SqliteStore::open(&future).await.unwrap().close().await;
    {
        let c = rusqlite::Connection::open(&future).unwrap();
        c.execute_batch("PRAGMA user_version = 2").unwrap();
    }
    assert_eq!(
        kind_of(SqliteStore::open_read_only(&future).await),
        StorageErrorKind::UnsupportedVersion
    );
}

const CHILD: &str = "STRONGROOM_TEST_READ_ONLY_CHILD";

/// In the child: opens the store named by the environment read-only and
/// checks it holds `expect` at `key`, then that writing is refused.
fn child_check(spec: &str) {
    let mut parts = spec.splitn(3, '\n');
    let (db, key, expect) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // this process really cannot write here
        assert!(
            std::fs::OpenOptions::new().append(true).open(db).is_err(),
            "the child can write the store file"
        );
        let ro = SqliteStore::open_read_only(db).await.unwrap();
        assert_eq!(ro.get(key).await.unwrap(), Some(expect.as_bytes().to_vec()));
        assert_eq!(
            kind_of(ro.put("child/wrote", b"x").await),
            StorageErrorKind::Rejected
        );
        ro.close().await;
        println!("child read {key}");
    });
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// Runs [`child_check`] as a user who may read but not write the store and
/// its directory: `nobody` through `setpriv` when the tests run as root
/// (root writes anywhere), this process otherwise (after taking the write
/// bits away).
fn check_as_reader(dir: &Path, db: &Path, key: &str, expect: &str) {
    let spec = format!("{}\n{key}\n{expect}", db.display());
    let entries = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = entries(dir);
    if is_root() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_store_this_user_cannot_write_opens_read_only",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, &spec)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("child read {key}")),
            "the child should have read:\n{stdout}\n{stderr}"
        );
    } else {
        std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        child_check(&spec);
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert_eq!(entries(dir), before, "the reader created or removed files");
}

/// A store in a directory, and a file, that the reading user cannot write:
/// closed cleanly (no `-wal`, and no `-shm` can be made: read as an
/// immutable file), and while a writer has it open (its `-wal` and `-shm`
/// readable, a record only in the WAL).
#[test]
fn a_store_this_user_cannot_write_opens_read_only() {
    if let Some(spec) = std::env::var_os(CHILD) {
        child_check(&spec.into_string().unwrap());
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shared.db");
        let s = SqliteStore::open(&db).await.unwrap();
        s.put("k/closed", b"on disk").await.unwrap();
        s.close().await;
        assert!(!dir.path().join("shared.db-wal").exists());
        check_as_reader(dir.path(), &db, "k/closed", "on disk");

        if is_root() {
            // A live writer: the record is only in its WAL.
            let w = SqliteStore::open(&db).await.unwrap();
            w.put("k/live", b"in the wal").await.unwrap();
            assert!(dir.path().join("shared.db-wal").exists());
            check_as_reader(dir.path(), &db, "k/live", "in the wal");
            w.close().await;
        }
    });
}
