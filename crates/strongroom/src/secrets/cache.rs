//! The opt-in read cache of a [`SecretsStore`](super::SecretsStore): the
//! current version of recently read secrets, kept as [`SecretBytes`],
//! bounded in entries, bytes and age, and dropped on every change this
//! process makes or the store announces.
//!
//! Freshness rests on three things:
//! - **this store's writes** drop their path before the write returns;
//! - **the store's change feed** ([`Storage::watch`](crate::storage::Storage::watch)):
//!   a background task drops the path of every metadata record another
//!   writer (another `SecretsStore`, another process) changed, as soon as
//!   the backend announces it, and drops everything on a notice that names
//!   no keys, a lost notice or a closed feed;
//! - **an age limit** ([`CacheOptions::max_age`], by the store's clock; a
//!   hit trusts the cheap coarse clock only with a margin, see
//!   [`ReadCache::get`]): no
//!   entry is served older than that, whatever the feed did (backends
//!   without a feed rely on it alone).
//!
//! A read that raced with an invalidation does not fill the cache (a
//! generation counter is taken before the read and checked before the
//! insert), so a value older than an invalidation is never cached after it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use spin::mutex::{SpinMutex, SpinMutexGuard};

use super::{METADATA_PREFIX, SecretVersion};
use crate::changes::StorageEvent;
use crate::clock::{Clock, Timestamp};
use crate::storage::ChangeFeed;

/// Bounds of a [`SecretsStore`](super::SecretsStore)'s read cache
/// ([`SecretsOptions::with_cache`](super::SecretsOptions::with_cache)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Secrets kept at most (the oldest entry is dropped first).
    pub max_entries: usize,
    /// Value bytes kept at most, over all entries; a value larger than
    /// this is never cached.
    pub max_bytes: usize,
    /// The oldest an entry may be when served.
    pub max_age: Duration,
}

impl Default for CacheOptions {
    /// 1,024 secrets, 1 MiB of values, one second.
    fn default() -> Self {
        Self {
            max_entries: 1024,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(1),
        }
    }
}

impl CacheOptions {
    /// Options with `max_entries` set.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Options with `max_bytes` set.
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Options with `max_age` set.
    pub fn with_max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }
}

/// One cached current version.
struct Entry {
    read: Arc<SecretVersion>,
    /// When it was read, by the store's clock.
    at: Timestamp,
    /// Its key in [`State::order`].
    seq: u64,
}

/// The entries by path. Hashed with foldhash (seeded per process), not
/// SipHash: a hit is mostly hashing, and only paths of secrets that exist
/// and were read get in, at most `max_entries` of them, so there is no
/// flood of chosen keys to resist.
type Entries = HashMap<String, Entry, foldhash::quality::RandomState>;

#[derive(Default)]
struct State {
    entries: Entries,
    /// Insertion order, oldest first: seq -> path.
    order: BTreeMap<u64, String>,
    bytes: usize,
    next_seq: u64,
    hits: u64,
    misses: u64,
}

impl State {
    /// Takes `path`'s entry out. The caller drops it after releasing the
    /// lock: dropping the last reference to a value wipes it.
    fn remove(&mut self, path: &str) -> Option<Entry> {
        let e = self.entries.remove(path)?;
        self.order.remove(&e.seq);
        self.bytes -= e.read.value.len();
        Some(e)
    }

    /// Takes every entry out, for the caller to drop after releasing the
    /// lock.
    fn clear(&mut self) -> Entries {
        self.order.clear();
        self.bytes = 0;
        std::mem::take(&mut self.entries)
    }
}

/// Counts of a cache's hits and misses (for tests and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads served from the cache.
    pub hits: u64,
    /// Reads that went to storage.
    pub misses: u64,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("options", &self.options)
            .field("entries", &self.state().entries.len())
            .finish_non_exhaustive()
    }
}

pub(crate) struct ReadCache {
    options: CacheOptions,
    /// Held only for map operations: never across I/O or an `await`, and
    /// never while a value is wiped (entries taken out are dropped after
    /// it is released). A spin lock that yields the CPU while it waits:
    /// releasing it is a plain store, where a `std` mutex's release is an
    /// atomic swap, and on a hit that is one of the four atomic operations
    /// (lock, `Arc` clone, release, the caller's `Arc` drop) that dominate
    /// its cost.
    state: SpinMutex<State, spin::relax::Yield>,
    /// Bumped by every invalidation.
    generation: AtomicU64,
    /// The feed follower, started on first use.
    follower: OnceLock<Follower>,
}

/// Aborts the feed follower when the cache goes.
struct Follower(Option<tokio::task::JoinHandle<()>>);

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl ReadCache {
    pub(crate) fn new(options: CacheOptions) -> Arc<Self> {
        Arc::new(Self {
            options,
            state: SpinMutex::new(State::default()),
            generation: AtomicU64::new(0),
            follower: OnceLock::new(),
        })
    }

    /// The lock is released when a panic unwinds past its guard, and
    /// every method leaves the map consistent at each step.
    fn state(&self) -> SpinMutexGuard<'_, State> {
        self.state.lock()
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let state = self.state();
        CacheStats {
            hits: state.hits,
            misses: state.misses,
        }
    }

    /// Starts following `feed` (once); `None` (a backend without a feed):
    /// entries then live until their age limit.
    pub(crate) fn follow(self: &Arc<Self>, feed: impl FnOnce() -> Option<ChangeFeed>) {
        self.follower.get_or_init(|| {
            let Some(mut feed) = feed() else {
                return Follower(None);
            };
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return Follower(None);
            };
            let cache: Weak<Self> = Arc::downgrade(self);
            Follower(Some(rt.spawn(async move {
                loop {
                    let event = feed.recv().await;
                    let Some(cache) = cache.upgrade() else {
                        return;
                    };
                    match event {
                        Ok(StorageEvent::Changed(keys)) => {
                            let paths: Vec<&str> = keys
                                .iter()
                                .filter_map(|k| k.strip_prefix(METADATA_PREFIX))
                                .collect();
                            if !paths.is_empty() {
                                cache.invalidate(paths);
                            }
                        }
                        Ok(StorageEvent::Unknown)
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            cache.clear();
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            cache.clear();
                            return;
                        }
                    }
                }
            })))
        });
    }

    /// The generation to pass to [`ReadCache::insert`] after a read.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached current version of `path`, if fresh by `clock`.
    ///
    /// Every hit checks an age, and an exact clock reading costs more than
    /// the rest of the hit, so the age is first read from the coarse clock
    /// ([`Clock::now_coarse`]), which is never ahead: an entry it shows to
    /// be younger than the limit by a margin (a quarter of `max_age`, and
    /// at least four steps of the coarse clock) is served; a closer case is
    /// decided by [`Clock::now`]. The coarse clock would have to lag by
    /// more than the margin for an entry older than `max_age` to be served.
    pub(crate) fn get(&self, path: &str, clock: &dyn Clock) -> Option<Arc<SecretVersion>> {
        // In whole milliseconds, the clocks' unit.
        let max_age = u64::try_from(self.options.max_age.as_millis()).unwrap_or(u64::MAX);
        let (coarse, step) = clock.now_coarse();
        let step = u64::try_from(step.as_millis()).unwrap_or(u64::MAX);
        let margin = (max_age / 4).max(step.saturating_mul(4));
        let age = |now: Timestamp, at: Timestamp| now.as_millis().saturating_sub(at.as_millis());
        let mut state = self.state();
        let (hit, stale) = match state.entries.get(path) {
            Some(e)
                if age(coarse, e.at).saturating_add(margin) <= max_age
                    || age(clock.now(), e.at) <= max_age =>
            {
                (Some(e.read.clone()), None)
            }
            Some(_) => (None, state.remove(path)),
            None => (None, None),
        };
        if hit.is_some() {
            state.hits += 1;
        } else {
            state.misses += 1;
        }
        drop(state);
        drop(stale);
        hit
    }

    /// Caches `read` as its path's current version, unless an
    /// invalidation happened since `generation` was taken (the read may be
    /// stale).
    pub(crate) fn insert(&self, generation: u64, read: &Arc<SecretVersion>, now: Timestamp) {
        let o = self.options;
        let len = read.value.len();
        if o.max_entries == 0 || len > o.max_bytes {
            return;
        }
        let path = read.path.as_str();
        let mut state = self.state();
        // Checked under the lock, which invalidations also take.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let mut dropped: Vec<Entry> = state.remove(path).into_iter().collect();
        while state.entries.len() >= o.max_entries || state.bytes + len > o.max_bytes {
            let Some((_, oldest)) = state.order.pop_first() else {
                break;
            };
            dropped.extend(state.remove(&oldest));
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.order.insert(seq, path.to_owned());
        state.bytes += len;
        state.entries.insert(
            path.to_owned(),
            Entry {
                read: read.clone(),
                at: now,
                seq,
            },
        );
        drop(state);
        drop(dropped);
    }

    /// Drops `paths` (and fails every read in flight to fill the cache).
    pub(crate) fn invalidate<'a>(&self, paths: impl IntoIterator<Item = &'a str>) {
        let mut state = self.state();
        self.generation.fetch_add(1, Ordering::AcqRel);
        let dropped: Vec<Entry> = paths.into_iter().filter_map(|p| state.remove(p)).collect();
        drop(state);
        drop(dropped);
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        self.generation.fetch_add(1, Ordering::AcqRel);
        let dropped = state.clear();
        drop(state);
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretBytes;
    use crate::path::SecretPath;
    use crate::secrets::VersionInfo;

    fn read(path: &str, version: u64, value: &[u8]) -> Arc<SecretVersion> {
        Arc::new(SecretVersion {
            path: SecretPath::parse(path).unwrap(),
            version: VersionInfo {
                version,
                created_at: Timestamp::from_secs(1),
                deleted_at: None,
                destroyed_at: None,
            },
            value: SecretBytes::from(value.to_vec()),
        })
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_cached() {
        let cache = ReadCache::new(CacheOptions::default());
        let now = Timestamp::from_secs(10);
        let clock = crate::clock::ManualClock::new(now);
        let before = cache.generation();
        // A writer drops the path while the read was in flight.
        cache.invalidate(["app/db"]);
        cache.insert(before, &read("app/db", 1, b"old"), now);
        assert!(cache.get("app/db", &clock).is_none());
        // A read that started after it is cached.
        let after = cache.generation();
        cache.insert(after, &read("app/db", 2, b"new"), now);
        let hit = cache.get("app/db", &clock).unwrap();
        assert_eq!(
            (hit.version.version, hit.value.expose_secret()),
            (2, &b"new"[..])
        );
        // Clearing also fails reads in flight.
        let during = cache.generation();
        cache.clear();
        cache.insert(during, &read("app/x", 1, b"x"), now);
        assert!(cache.get("app/x", &clock).is_none());
    }

    #[test]
    fn an_entry_is_served_only_while_its_age_is_within_the_limit() {
        use crate::clock::ManualClock;
        let cache =
            ReadCache::new(CacheOptions::default().with_max_age(Duration::from_millis(100)));
        let at = Timestamp::from_secs(10);
        let clock = ManualClock::new(at);
        cache.insert(cache.generation(), &read("app/db", 1, b"v"), at);
        clock.advance(Duration::from_millis(100));
        assert!(
            cache.get("app/db", &clock).is_some(),
            "100 ms old is within the limit"
        );
        clock.advance(Duration::from_millis(1));
        assert!(cache.get("app/db", &clock).is_none(), "101 ms old is not");
        clock.set(at);
        assert!(
            cache.get("app/db", &clock).is_none(),
            "a stale entry is removed"
        );
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 2 });
    }

    /// A clock whose coarse reading lags its exact one by `lag`.
    #[derive(Debug)]
    struct Lagging {
        now: Timestamp,
        lag: Duration,
    }

    impl Clock for Lagging {
        fn now(&self) -> Timestamp {
            self.now
        }
        fn sleep_until(&self, _: Timestamp) -> crate::clock::Sleep {
            Box::pin(std::future::pending())
        }
        fn now_coarse(&self) -> (Timestamp, Duration) {
            (self.now - self.lag, Duration::from_millis(4))
        }
    }

    #[test]
    fn close_cases_are_decided_by_the_exact_clock() {
        let cache =
            ReadCache::new(CacheOptions::default().with_max_age(Duration::from_millis(1000)));
        let at = Timestamp::from_secs(10);
        let fill =
            |cache: &ReadCache| cache.insert(cache.generation(), &read("app/db", 1, b"v"), at);
        fill(&cache);
        // 1,010 ms old, but the coarse clock says 990 ms: inside the
        // margin, so the exact clock decides, and refuses it.
        let clock = Lagging {
            now: at + Duration::from_millis(1010),
            lag: Duration::from_millis(20),
        };
        assert!(cache.get("app/db", &clock).is_none());
        // 700 ms old, the coarse clock says 680: served on its word.
        fill(&cache);
        let clock = Lagging {
            now: at + Duration::from_millis(700),
            lag: Duration::from_millis(20),
        };
        assert!(cache.get("app/db", &clock).is_some());
    }
}
