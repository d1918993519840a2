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
//! - **an age limit** ([`CacheOptions::max_age`], by the store's clock): no
//!   entry is served older than that, whatever the feed did (backends
//!   without a feed rely on it alone).
//!
//! A read that raced with an invalidation does not fill the cache (a
//! generation counter is taken before the read and checked before the
//! insert), so a value older than an invalidation is never cached after it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::{METADATA_PREFIX, SecretVersion};
use crate::changes::StorageEvent;
use crate::clock::Timestamp;
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

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Insertion order, oldest first: seq -> path.
    order: BTreeMap<u64, String>,
    bytes: usize,
    next_seq: u64,
}

impl State {
    fn remove(&mut self, path: &str) {
        if let Some(e) = self.entries.remove(path) {
            self.order.remove(&e.seq);
            self.bytes -= e.read.value.len();
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
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
    state: Mutex<State>,
    /// Bumped by every invalidation.
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
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
            state: Mutex::new(State::default()),
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            follower: OnceLock::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent map (every
        // method updates it in one step); go on with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
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

    /// The cached current version of `path`, if fresh.
    pub(crate) fn get(&self, path: &str, now: Timestamp) -> Option<Arc<SecretVersion>> {
        let mut state = self.state();
        let hit = match state.entries.get(path) {
            Some(e) if now.saturating_since(e.at) <= self.options.max_age => Some(e.read.clone()),
            Some(_) => {
                state.remove(path);
                None
            }
            None => None,
        };
        drop(state);
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
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
        state.remove(path);
        while state.entries.len() >= o.max_entries || state.bytes + len > o.max_bytes {
            let Some((_, oldest)) = state.order.pop_first() else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.bytes -= e.read.value.len();
            }
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
    }

    /// Drops `paths` (and fails every read in flight to fill the cache).
    pub(crate) fn invalidate<'a>(&self, paths: impl IntoIterator<Item = &'a str>) {
        let mut state = self.state();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for p in paths {
            state.remove(p);
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        self.generation.fetch_add(1, Ordering::AcqRel);
        state.clear();
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
        let before = cache.generation();
        // A writer drops the path while the read was in flight.
        cache.invalidate(["app/db"]);
        cache.insert(before, &read("app/db", 1, b"old"), now);
        assert!(cache.get("app/db", now).is_none());
        // A read that started after it is cached.
        let after = cache.generation();
        cache.insert(after, &read("app/db", 2, b"new"), now);
        let hit = cache.get("app/db", now).unwrap();
        assert_eq!(
            (hit.version.version, hit.value.expose_secret()),
            (2, &b"new"[..])
        );
        // Clearing also fails reads in flight.
        let during = cache.generation();
        cache.clear();
        cache.insert(during, &read("app/x", 1, b"x"), now);
        assert!(cache.get("app/x", now).is_none());
    }
}
