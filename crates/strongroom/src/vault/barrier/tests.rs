//! The barrier's memo: preconditions on records it just read cost no
//! second read, and still fail exactly when a read would have said so.

use std::sync::Arc;

use super::Barrier;
use crate::protector::SoftwareProtector;
use crate::storage::{BatchOp, DynStorage, FaultyStorage, MemoryStorage, Storage};
use crate::{Error, Options, SecretBytes, Strongroom};

const KEY: &str = "test/record";

struct Fixture {
    /// Counts point reads.
    storage: FaultyStorage,
    /// Two stores on the same storage, as two processes would have.
    one: Strongroom,
    other: Strongroom,
}

impl Fixture {
    async fn new() -> Self {
        let storage = FaultyStorage::new(Arc::new(MemoryStorage::new()));
        let dyn_storage: DynStorage = Arc::new(storage.clone());
        let protector = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
        let one = Strongroom::init(dyn_storage.clone(), &protector, Options::default())
            .await
            .unwrap();
        let other = Strongroom::unseal(dyn_storage, &protector, Options::default())
            .await
            .unwrap();
        Self {
            storage,
            one,
            other,
        }
    }

    /// Writes `value` at `KEY` and reads it back through this store's
    /// barrier (which remembers it); returns that barrier and the other
    /// store's.
    async fn with_record(&self, value: &[u8]) -> (Barrier, Barrier) {
        let (b, theirs) = (barrier(&self.one), barrier(&self.other));
        b.batch(vec![BatchOp::put(KEY, value.to_vec())])
            .await
            .unwrap();
        assert_eq!(b.get(KEY).await.unwrap().as_deref(), Some(value));
        (b, theirs)
    }

    fn gets(&self) -> u64 {
        self.storage.reads()
    }

    /// The raw bytes stored at `KEY`.
    async fn stored(&self) -> Vec<u8> {
        self.storage.get(KEY).await.unwrap().unwrap()
    }
}

fn barrier(sr: &Strongroom) -> Barrier {
    Barrier {
        sr: sr.clone(),
        memo: Some(Arc::default()),
    }
}

/// Expect `KEY` to open to `old`, write `new`.
fn swap(old: &[u8], new: &[u8]) -> Vec<BatchOp> {
    vec![
        BatchOp::expect(KEY, Some(old.to_vec())),
        BatchOp::put(KEY, new.to_vec()),
    ]
}

#[tokio::test]
async fn a_precondition_on_a_record_just_read_reads_nothing_more() {
    let f = Fixture::new().await;
    let (b, _) = f.with_record(b"v1").await;
    assert_eq!(b.memo.as_ref().unwrap().len(), 1);
    let before = f.gets();
    b.batch(swap(b"v1", b"v2")).await.unwrap();
    assert_eq!(f.gets(), before, "the precondition read the record again");
    // The write is forgotten, so the next read-modify-write reads it.
    assert_eq!(b.memo.as_ref().unwrap().len(), 0);
    assert_eq!(b.get(KEY).await.unwrap().as_deref(), Some(&b"v2"[..]));
    // A barrier that never read the record reads and opens it.
    let fresh = barrier(&f.one);
    let before = f.gets();
    fresh.batch(swap(b"v2", b"v3")).await.unwrap();
    assert_eq!(f.gets(), before + 1);
}

#[tokio::test]
async fn a_record_changed_by_another_process_fails_the_batch() {
    let f = Fixture::new().await;
    let (b, theirs) = f.with_record(b"v1").await;
    theirs.get(KEY).await.unwrap();
    theirs.batch(swap(b"v1", b"theirs")).await.unwrap();
    // What this barrier remembers is out of date: nothing is written.
    let e = b.batch(swap(b"v1", b"mine")).await.unwrap_err();
    assert!(
        matches!(e, Error::StorageConflict { ref key } if key == KEY),
        "{e:?}"
    );
    assert_eq!(b.get(KEY).await.unwrap().as_deref(), Some(&b"theirs"[..]));
    // Read again, the swap goes through.
    b.batch(swap(b"theirs", b"mine")).await.unwrap();
    assert_eq!(
        theirs.get(KEY).await.unwrap().as_deref(),
        Some(&b"mine"[..])
    );
}

#[tokio::test]
async fn a_record_sealed_again_with_the_same_plaintext_still_passes() {
    let f = Fixture::new().await;
    let (b, theirs) = f.with_record(b"same").await;
    let remembered = f.stored().await;
    // Another process writes the same plaintext: new nonce, new bytes (as
    // a rewrap does).
    theirs
        .batch(vec![BatchOp::put(KEY, b"same".to_vec())])
        .await
        .unwrap();
    assert_ne!(f.stored().await, remembered);
    // The remembered bytes no longer match, but the record opens to what
    // the batch expects: it applies, as it would have without the memo.
    b.batch(swap(b"same", b"next")).await.unwrap();
    assert_eq!(
        theirs.get(KEY).await.unwrap().as_deref(),
        Some(&b"next"[..])
    );
    // And a plaintext that differs still fails, after the fresh read too.
    b.get(KEY).await.unwrap();
    theirs
        .batch(vec![BatchOp::put(KEY, b"changed".to_vec())])
        .await
        .unwrap();
    let e = b.batch(swap(b"next", b"lost")).await.unwrap_err();
    assert!(matches!(e, Error::StorageConflict { .. }), "{e:?}");
    assert_eq!(b.get(KEY).await.unwrap().as_deref(), Some(&b"changed"[..]));
}

#[tokio::test]
async fn a_deleted_record_fails_a_precondition_on_it() {
    let f = Fixture::new().await;
    let (b, theirs) = f.with_record(b"v1").await;
    theirs.batch(vec![BatchOp::delete(KEY)]).await.unwrap();
    let e = b.batch(swap(b"v1", b"v2")).await.unwrap_err();
    assert!(matches!(e, Error::StorageConflict { .. }), "{e:?}");
    assert_eq!(b.get(KEY).await.unwrap(), None);
}

#[tokio::test]
async fn short_scans_are_remembered_and_long_ones_are_not() {
    let f = Fixture::new().await;
    let b = barrier(&f.one);
    let ops = (0..20)
        .map(|i| BatchOp::put(format!("test/many/{i:02}"), vec![i]))
        .collect();
    b.batch(ops).await.unwrap();
    assert_eq!(b.scan("test/many/", None, 100).await.unwrap().len(), 20);
    assert_eq!(b.memo.as_ref().unwrap().len(), 0);
    assert_eq!(b.scan("test/many/", None, 8).await.unwrap().len(), 8);
    assert_eq!(b.memo.as_ref().unwrap().len(), 8);
    let before = f.gets();
    b.batch(vec![
        BatchOp::expect("test/many/03", Some(vec![3])),
        BatchOp::put("test/many/03", vec![33]),
    ])
    .await
    .unwrap();
    assert_eq!(f.gets(), before);
    assert_eq!(b.get("test/many/03").await.unwrap(), Some(vec![33]));
}
