//! SqliteStore group commit: concurrent batches share one transaction and
//! one fsync, and each caller still gets exactly its own result.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use strongroom::Error;
use strongroom::storage::{BatchOp, Storage};
use strongroom_sqlx::SqliteStore;
use tokio::sync::Barrier;

/// The highest number of frames the write-ahead log has held: the WAL
/// file only grows (it restarts from its start after a checkpoint, which
/// needs 1000 frames), and each commit appends at least one frame.
fn wal_frames(db: &Path) -> u64 {
    let wal = format!("{}-wal", db.display());
    let len = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    len.saturating_sub(32) / (4096 + 24)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Ok,
    Conflict(String),
}

/// 192 batches that should apply, 64 whose precondition fails, and 32 racing
/// compare-and-sets on one key, all released at once: each caller gets its
/// own outcome, every applied batch is visible, every refused one left
/// nothing, exactly one CAS wins, and the batches went out in far fewer
/// commits than there were batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_get_their_own_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let n = 256usize;
    let racers = 32usize;
    let mut seed: Vec<BatchOp> = (0..n)
        .map(|i| BatchOp::put(format!("slot/{i:03}"), vec![0u8]))
        .collect();
    seed.push(BatchOp::put("shared", vec![0u8]));
    seed.extend((0..n).map(|i| BatchOp::put(format!("gone/{i:03}"), vec![7u8])));
    store.batch(seed).await.unwrap();
    let frames_before = wal_frames(&path);

    let barrier = Arc::new(Barrier::new(n + racers));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        // every fourth batch expects a value the slot never had
        let expected = if i % 4 == 0 { vec![9u8] } else { vec![0u8] };
        tasks.push(tokio::spawn(async move {
            let ops = vec![
                BatchOp::expect(format!("slot/{i:03}"), Some(expected)),
                BatchOp::put(format!("slot/{i:03}"), vec![1u8]),
                BatchOp::put(format!("out/{i:03}"), (i as u32).to_be_bytes().to_vec()),
                BatchOp::delete(format!("gone/{i:03}")),
            ];
            barrier.wait().await;
            (i, store.batch(ops).await)
        }));
    }
    for r in 0..racers {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let ops = vec![
                BatchOp::expect("shared", Some(vec![0u8])),
                BatchOp::put("shared", vec![100 + r as u8]),
            ];
            barrier.wait().await;
            (n + r, store.batch(ops).await)
        }));
    }
    let mut results = vec![None; n + racers];
    for t in tasks {
        let (i, r) = t.await.unwrap();
        results[i] = Some(match r {
            Ok(()) => Got::Ok,
            Err(Error::StorageConflict { key }) => Got::Conflict(key),
            Err(e) => panic!("batch {i} failed: {e}"),
        });
    }

    for (i, got) in results.iter().take(n).enumerate() {
        let got = got.as_ref().unwrap();
        let slot = store.get(&format!("slot/{i:03}")).await.unwrap();
        let out = store.get(&format!("out/{i:03}")).await.unwrap();
        let gone = store.get(&format!("gone/{i:03}")).await.unwrap();
        if i % 4 == 0 {
            assert_eq!(*got, Got::Conflict(format!("slot/{i:03}")), "batch {i}");
            assert_eq!(slot, Some(vec![0u8]), "refused batch {i} wrote its slot");
            assert_eq!(out, None, "refused batch {i} wrote out/");
            assert_eq!(gone, Some(vec![7u8]), "refused batch {i} deleted");
        } else {
            assert_eq!(*got, Got::Ok, "batch {i}");
            assert_eq!(slot, Some(vec![1u8]));
            assert_eq!(out, Some((i as u32).to_be_bytes().to_vec()));
            assert_eq!(gone, None);
        }
    }
    let racing = &results[n..];
    let winners: Vec<usize> = racing
        .iter()
        .enumerate()
        .filter(|(_, g)| **g == Some(Got::Ok))
        .map(|(r, _)| r)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one CAS wins: {racing:?}");
    for g in racing {
        assert!(
            matches!(g, Some(Got::Ok)) || *g == Some(Got::Conflict("shared".into())),
            "{g:?}"
        );
    }
    assert_eq!(
        store.get("shared").await.unwrap(),
        Some(vec![100 + winners[0] as u8])
    );

    // Applied batches: 192 + 1. Committed one by one they would append at
    // least that many WAL frames.
    let applied = (n - n / 4 + 1) as u64;
    let frames = wal_frames(&path) - frames_before;
    eprintln!("{applied} applied batches took {frames} WAL frames");
    assert!(
        frames < applied / 2,
        "{applied} batches appended {frames} WAL frames: they were not grouped"
    );

    // And all of it is on disk: a fresh store on the file sees the same.
    store.close().await;
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.list("out/").await.unwrap().len(), n - n / 4);
    assert_eq!(again.list("gone/").await.unwrap().len(), n / 4);
    // Closed before the directory goes: a connection still open on a
    // deleted file can confuse SQLite about a new file given the same inode.
    again.close().await;
}

/// A batch whose statement fails after it wrote is rolled back alone: the
/// batches committed with it keep their writes, it keeps none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_failing_midway_is_rolled_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("fault.db"))
        .await
        .unwrap();
    let n = 64usize;
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let mut ops = vec![BatchOp::put(format!("k/{i:02}"), vec![i as u8])];
            if i % 8 == 3 {
                // written, then the statement after it fails
                ops.push(BatchOp::put(SqliteStore::FAULT_STATEMENT_KEY, vec![1]));
            }
            barrier.wait().await;
            (i, store.batch(ops).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        let stored = store.get(&format!("k/{i:02}")).await.unwrap();
        if i % 8 == 3 {
            match r {
                Err(Error::Storage { backend, .. }) => assert_eq!(backend, "sqlite"),
                other => panic!("faulty batch {i}: {other:?}"),
            }
            assert_eq!(stored, None, "faulty batch {i} left its first write");
        } else {
            r.unwrap();
            assert_eq!(stored, Some(vec![i as u8]));
        }
    }
    assert_eq!(
        store.get(SqliteStore::FAULT_STATEMENT_KEY).await.unwrap(),
        None
    );
    assert_eq!(store.list("k/").await.unwrap().len(), n - n / 8);
    store.close().await;
}

/// Writes queued when the store is closed are committed before it closes;
/// writes after it fail as unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("close.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..32u8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.put(&format!("q/{i:02}"), &[i]).await
        }));
    }
    // let some puts reach the queue, then close while others are on the way
    tokio::task::yield_now().await;
    store.close().await;
    let mut acknowledged = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => acknowledged.push(true),
            Err(Error::Storage {
                kind: strongroom::StorageErrorKind::Unavailable,
                ..
            }) => acknowledged.push(false),
            Err(e) => panic!("a put failed otherwise: {e}"),
        }
    }
    assert!(matches!(
        store.put("late", b"x").await,
        Err(Error::Storage {
            kind: strongroom::StorageErrorKind::Unavailable,
            ..
        })
    ));
    assert!(
        !Path::new(&format!("{}-wal", path.display())).exists(),
        "closing checkpoints and removes the WAL"
    );
    let again = SqliteStore::open(&path).await.unwrap();
    for (i, ok) in acknowledged.iter().enumerate() {
        if *ok {
            assert_eq!(
                again.get(&format!("q/{i:02}")).await.unwrap(),
                Some(vec![i as u8])
            );
        }
    }
    again.close().await;
}
