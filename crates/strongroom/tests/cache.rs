//! The opt-in read cache of the secrets store: hits, invalidation by this
//! store's writes, by other writers through the change feed, by age (a
//! `ManualClock`; nothing sleeps), and its bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::protector::SoftwareProtector;
use strongroom::secrets::{CacheOptions, CacheStats, SecretsOptions, SecretsStore};
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};

async fn store() -> (Door, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let options = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, options)
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    (sr, clock)
}

fn cached(door: &Door, cache: CacheOptions) -> SecretsStore {
    door.secrets_with(SecretsOptions::default().with_cache(cache))
}

async fn value(s: &SecretsStore, path: &str) -> Vec<u8> {
    s.get(path).await.unwrap().value.expose_secret().to_vec()
}

fn stats(s: &SecretsStore) -> (u64, u64) {
    let CacheStats { hits, misses, .. } = s.cache_stats().unwrap();
    (hits, misses)
}

/// Lets the cache's feed follower run (a current-thread runtime): yields
/// until `done` or gives up after many turns. No timer is involved.
async fn until(mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..10_000 {
        if done().await {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

#[tokio::test]
async fn the_cache_is_off_unless_asked_for() {
    let (door, _) = store().await;
    assert!(door.secrets().cache_stats().is_none());
    assert_eq!(SecretsOptions::default().cache, None);
}

#[tokio::test]
async fn a_second_read_is_a_hit_and_own_writes_are_seen_at_once() {
    let (door, _) = store().await;
    let s = cached(&door, CacheOptions::default());
    s.put("app/db", b"one", None).await.unwrap();
    assert_eq!(value(&s, "app/db").await, b"one");
    assert_eq!(value(&s, "app/db").await, b"one");
    assert_eq!(stats(&s), (1, 1));
    // A clone shares the cache; its write drops the entry before returning.
    let clone = s.clone();
    clone.put("app/db", b"two", None).await.unwrap();
    assert_eq!(value(&s, "app/db").await, b"two");
    s.delete("app/db", &[]).await.unwrap();
    let err = s.get("app/db").await.unwrap_err();
    assert_eq!(err.kind(), "version_deleted", "{err:?}");
    // The hit carries the version's facts too.
    s.put("app/db", b"three", None).await.unwrap();
    let a = s.get("app/db").await.unwrap();
    let b = s.get("app/db").await.unwrap();
    assert_eq!((a.version, a.path.as_str()), (b.version, b.path.as_str()));
    assert_eq!(b.version.version, 3);
}

#[tokio::test]
async fn another_writer_is_seen_once_the_store_announces_it() {
    let (door, _) = store().await;
    let s = cached(&door, CacheOptions::default());
    let other = door.secrets(); // another store: its writes reach `s` by the feed
    other.put("app/db", b"one", None).await.unwrap();
    assert_eq!(value(&s, "app/db").await, b"one");
    other.put("app/db", b"two", None).await.unwrap();
    assert!(until(async || value(&s, "app/db").await == b"two").await);
    other.delete_metadata("app/db").await.unwrap();
    assert!(until(async || s.get("app/db").await.is_err()).await);
}

#[tokio::test]
async fn no_entry_is_served_past_its_age() {
    let (door, clock) = store().await;
    let age = Duration::from_secs(5);
    let s = cached(&door, CacheOptions::default().with_max_age(age));
    s.put("app/db", b"one", None).await.unwrap();
    value(&s, "app/db").await;
    clock.advance(age);
    value(&s, "app/db").await;
    assert_eq!(stats(&s), (1, 1), "at the limit: still a hit");
    clock.advance(Duration::from_millis(1));
    value(&s, "app/db").await;
    assert_eq!(stats(&s), (1, 2), "past it: read again");
}

#[tokio::test]
async fn the_cache_is_bounded_in_entries_and_bytes() {
    let (door, _) = store().await;
    let s = cached(
        &door,
        CacheOptions::default()
            .with_max_entries(2)
            .with_max_bytes(10),
    );
    for (p, v) in [("a", "1234"), ("b", "1234"), ("c", "1234")] {
        s.put(p, v.as_bytes(), None).await.unwrap();
        value(&s, p).await;
    }
    // "a" was evicted (oldest, three entries > 2); "b" and "c" remain.
    value(&s, "c").await;
    value(&s, "b").await;
    assert_eq!(stats(&s), (2, 3));
    value(&s, "a").await;
    assert_eq!(stats(&s), (2, 4));
    // A value larger than every entry together is never kept.
    s.put("big", &[7; 11], None).await.unwrap();
    value(&s, "big").await;
    value(&s, "big").await;
    assert_eq!(stats(&s), (2, 6));
    // Bytes bound: an 8-byte value evicts the oldest entries until it fits.
    s.put("d", b"12345678", None).await.unwrap();
    value(&s, "d").await;
    value(&s, "d").await;
    assert_eq!(stats(&s), (3, 7));
}

#[tokio::test]
async fn a_principals_cached_reads_are_still_checked_and_audited() {
    use strongroom::audit::{MemorySink, Operation, Outcome};
    use strongroom::policy::{Capability, Policy, Principal, Rule};
    let (door, _) = store().await;
    let s = cached(&door, CacheOptions::default());
    s.put("app/db", b"pw", None).await.unwrap();
    s.put("other/db", b"pw", None).await.unwrap();
    value(&s, "other/db").await; // cached, but not for this principal
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(door.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let policy = Policy::new(
        "app",
        vec![Rule::allow("app/*", [Capability::Read]).unwrap()],
    );
    let h = strongroom::Handle::new(s.clone(), Principal::new("app", [&policy]), audit);
    h.read("app/db").await.unwrap();
    h.read("app/db").await.unwrap();
    assert_eq!(
        h.read("other/db").await.unwrap_err().kind(),
        "policy_denied"
    );
    let reads: Vec<Outcome> = sink
        .records()
        .unwrap()
        .into_iter()
        .filter(|r| r.event.operation == Operation::Read)
        .map(|r| r.event.outcome)
        .collect();
    assert_eq!(
        reads,
        vec![Outcome::Allowed, Outcome::Allowed, Outcome::Denied]
    );
    assert_eq!(stats(&s).0, 1, "the second read was a hit");
}

#[tokio::test]
async fn get_shared_hands_out_the_cached_copy() {
    let (door, _) = store().await;
    let s = cached(&door, CacheOptions::default());
    s.put("app/db", b"one", None).await.unwrap();
    let a = s.get_shared("app/db").await.unwrap();
    let b = s.get_shared("app/db").await.unwrap();
    assert!(Arc::ptr_eq(&a, &b), "the same cached copy");
    // Paths have one spelling: others are refused, cached or not.
    for bad in ["/app/db", "app//db", "app/../etc"] {
        assert_eq!(s.get_shared(bad).await.unwrap_err().kind(), "invalid_path");
    }
    // Without a cache, each call reads anew.
    let plain = door.secrets();
    let x = plain.get_shared("app/db").await.unwrap();
    let y = plain.get_shared("app/db").await.unwrap();
    assert!(!Arc::ptr_eq(&x, &y));
    assert_eq!(x.value.expose_secret(), b"one");
}

#[tokio::test]
async fn a_sealed_store_serves_nothing_from_its_cache() {
    let (door, _) = store().await;
    let s = cached(&door, CacheOptions::default());
    s.put("app/db", b"one", None).await.unwrap();
    value(&s, "app/db").await;
    value(&s, "app/db").await;
    assert_eq!(stats(&s), (1, 1));
    door.seal();
    assert_eq!(s.get("app/db").await.unwrap_err().kind(), "sealed");
    assert_eq!(s.get_shared("app/db").await.unwrap_err().kind(), "sealed");
    assert_eq!(stats(&s), (1, 1), "no hit after the seal");
}

/// Readers on several OS threads and a writer share one cache while it
/// evicts (two entries for three paths): no read returns a version older
/// than one whose write had returned before the read began, and every read
/// is counted once as a hit or a miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_on_many_threads_never_see_a_version_older_than_an_acknowledged_write() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (door, _) = store().await;
    let s = cached(&door, CacheOptions::default().with_max_entries(2));
    let paths = ["app/a", "app/b", "app/c"];
    for p in paths {
        s.put(p, b"v", None).await.unwrap();
    }
    // The newest version of app/a whose put has returned.
    let acknowledged = Arc::new(AtomicU64::new(1));
    const READERS: u64 = 6;
    const READS: u64 = 2_000;
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (s, acknowledged) = (s.clone(), acknowledged.clone());
        readers.push(tokio::spawn(async move {
            for i in 0..READS {
                let path = paths[usize::try_from((r + i) % 3).unwrap()];
                let floor = acknowledged.load(Ordering::SeqCst);
                let got = s.get(path).await.unwrap().version.version;
                if path == "app/a" {
                    assert!(got >= floor, "read version {got} after {floor} was written");
                }
            }
        }));
    }
    for _ in 0..200 {
        let v = s.put("app/a", b"v", None).await.unwrap().version;
        acknowledged.store(v, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    for reader in readers {
        reader.await.unwrap();
    }
    let (hits, misses) = stats(&s);
    assert_eq!(hits + misses, READERS * READS);
    assert!(hits > 0 && misses > 0, "hits {hits}, misses {misses}");
}
