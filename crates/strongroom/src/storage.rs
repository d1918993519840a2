//! The storage seam: an ordered key/value store with atomic batches.
//!
//! Backends store only sealed bytes and opaque records: Strongroom seals every
//! secret before it reaches a [`Storage`]. Keys are UTF-8 strings ordered by
//! their bytes. Every backend runs the same conformance suite
//! (`conformance`, behind the `testing` feature).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::RwLock;

pub use crate::changes::{ChangeFeed, StorageEvent};
use crate::{Error, Result, StorageErrorKind};

/// One step of an atomic [`Storage::batch`].
#[derive(Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Write `value` at `key`.
    Put {
        /// The storage key.
        key: String,
        /// The bytes to store.
        value: Vec<u8>,
    },
    /// Remove `key` (no error if absent).
    Delete {
        /// The storage key.
        key: String,
    },
    /// A precondition: `key` must currently hold `value` (`None`: be absent).
    /// If any precondition fails the whole batch is refused with
    /// [`Error::StorageConflict`] and nothing is written.
    Expect {
        /// The storage key.
        key: String,
        /// The value the key must hold now, or `None` for absent.
        value: Option<Vec<u8>>,
    },
}

impl std::fmt::Debug for BatchOp {
    // Values are sealed bytes, but there is no reason to print them either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Put { key, value } => write!(f, "Put({key:?}, {} bytes)", value.len()),
            Self::Delete { key } => write!(f, "Delete({key:?})"),
            Self::Expect { key, value } => {
                write!(
                    f,
                    "Expect({key:?}, {:?} bytes)",
                    value.as_ref().map(Vec::len)
                )
            }
        }
    }
}

impl BatchOp {
    /// A put.
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    /// A delete.
    pub fn delete(key: impl Into<String>) -> Self {
        Self::Delete { key: key.into() }
    }
    /// A precondition.
    pub fn expect(key: impl Into<String>, value: Option<Vec<u8>>) -> Self {
        Self::Expect {
            key: key.into(),
            value,
        }
    }
    /// The storage key this step names.
    pub fn key(&self) -> &str {
        match self {
            Self::Put { key, .. } | Self::Delete { key } | Self::Expect { key, .. } => key,
        }
    }
    /// The key this step writes or deletes (`None` for a precondition).
    pub fn written_key(&self) -> Option<&str> {
        match self {
            Self::Put { key, .. } | Self::Delete { key } => Some(key),
            Self::Expect { .. } => None,
        }
    }
}

/// The last record under a prefix, if any: its key and value
/// ([`Storage::get_with_last`]).
pub type LastRecord = Option<(String, Vec<u8>)>;

/// An ordered key/value store. Implementations must be safe to share between
/// tasks and must make [`Storage::batch`] atomic and durable when it returns.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// A short name for errors and metrics ("memory", "sqlite", "postgres").
    fn backend(&self) -> &'static str;

    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Writes `value` at `key`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.batch(vec![BatchOp::put(key, value)]).await
    }

    /// Removes `key`; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool> {
        let existed = self.get(key).await?.is_some();
        self.batch(vec![BatchOp::delete(key)]).await?;
        Ok(existed)
    }

    /// Up to `limit` records whose key starts with `prefix` and sorts after
    /// `start_after` (exclusive), in ascending key order.
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>>;

    /// All keys starting with `prefix`, ascending.
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.scan(prefix, after.as_deref(), 1000).await?;
            let done = page.len() < 1000;
            after = page.last().map(|(k, _)| k.clone());
            out.extend(page.into_iter().map(|(k, _)| k));
            if done {
                return Ok(out);
            }
        }
    }

    /// The value at `key` and the last record (in key order) whose key
    /// starts with `prefix`, read together: a secret's read takes its
    /// metadata and its newest version this way, in one round trip. The
    /// SQLite, PostgreSQL and memory stores read both in one statement (one
    /// snapshot); this default reads them one after the other, so callers
    /// must check that the two agree (a secrets read falls back to reading
    /// the version it wants by key when they do not).
    async fn get_with_last(
        &self,
        key: &str,
        prefix: &str,
    ) -> Result<(Option<Vec<u8>>, LastRecord)> {
        let value = self.get(key).await?;
        let mut last = None;
        let mut after: Option<String> = None;
        loop {
            let page = self.scan(prefix, after.as_deref(), 1000).await?;
            let done = page.len() < 1000;
            if let Some(l) = page.into_iter().last() {
                after = Some(l.0.clone());
                last = Some(l);
            }
            if done {
                return Ok((value, last));
            }
        }
    }

    /// Applies every operation atomically, or none of them.
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()>;

    /// Notices of what every process sharing this store commits, or `None`
    /// when the backend cannot announce changes (consumers then poll; see
    /// [`crate::changes::ChangeWatcher`]). A notice arrives only after its
    /// batch committed. Notices may be lost; consumers must treat a lagging
    /// or closed feed as [`StorageEvent::Unknown`].
    fn watch(&self) -> Option<ChangeFeed> {
        None
    }

    /// Whether this store was opened read-only and refuses every write
    /// (an SQLite file opened with `SqliteStore::open_read_only`). The
    /// library then saves no audit chain head in it (see
    /// [`Strongroom::open_audit_log`](crate::Strongroom::open_audit_log)).
    fn is_read_only(&self) -> bool {
        false
    }

    /// Sets `key` to `new` (`None`: delete) only if it currently holds
    /// `expected` (`None`: absent). Returns `false` on a mismatch.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        let mut ops = vec![BatchOp::expect(key, expected.map(<[u8]>::to_vec))];
        ops.push(match new {
            Some(v) => BatchOp::put(key, v),
            None => BatchOp::delete(key),
        });
        match self.batch(ops).await {
            Ok(()) => Ok(true),
            Err(Error::StorageConflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Shared, type-erased storage: the common currency between components.
pub type DynStorage = Arc<dyn Storage>;

/// The smallest key greater than every key that starts with `prefix`, or
/// `None` when no such key exists (empty prefix or all 0xff). Backends use it
/// to turn a prefix into a range.
pub fn prefix_upper_bound(prefix: &str) -> Option<Vec<u8>> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return Some(bytes);
        }
    }
    None
}

/// The smallest key (inclusive) a [`Storage::scan`] of `prefix` after
/// `start_after` may return: the key just after `start_after` when that sorts
/// at or after the prefix, otherwise the prefix itself. Backends pair it with
/// [`prefix_upper_bound`] to turn a scan into a key range.
pub fn scan_lower_bound(prefix: &str, start_after: Option<&str>) -> Vec<u8> {
    match start_after {
        Some(a) if a >= prefix => {
            let mut b = a.as_bytes().to_vec();
            b.push(0);
            b
        }
        _ => prefix.as_bytes().to_vec(),
    }
}

/// An in-memory store, for tests and ephemeral use. Clones share the same
/// data and announce their writes to each other's [`Storage::watch`] feeds.
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    map: Arc<RwLock<BTreeMap<String, Vec<u8>>>>,
    events: tokio::sync::broadcast::Sender<StorageEvent>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self {
            map: Arc::default(),
            events: tokio::sync::broadcast::channel(crate::changes::FEED_CAPACITY).0,
        }
    }
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record, for tests that inspect what was stored.
    pub async fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.read().await.clone()
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read().await.get(key).cloned())
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let map = self.map.read().await;
        let lower = match start_after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        Ok(map
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn get_with_last(
        &self,
        key: &str,
        prefix: &str,
    ) -> Result<(Option<Vec<u8>>, LastRecord)> {
        use std::ops::Bound;
        let map = self.map.read().await;
        let value = map.get(key).cloned();
        let upper = match prefix_upper_bound(prefix).map(String::from_utf8) {
            Some(Ok(u)) => Bound::Excluded(u),
            _ => Bound::Unbounded,
        };
        let last = map
            .range((Bound::Included(prefix.to_owned()), upper))
            .rev()
            .find(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()));
        Ok((value, last))
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        let mut map = self.map.write().await;
        for op in &ops {
            if let BatchOp::Expect { key, value } = op
                && map.get(key) != value.as_ref()
            {
                return Err(Error::StorageConflict { key: key.clone() });
            }
        }
        let mut changed = Vec::new();
        for op in ops {
            match op {
                BatchOp::Put { key, value } => {
                    changed.push(key.clone());
                    map.insert(key, value);
                }
                BatchOp::Delete { key } => {
                    changed.push(key.clone());
                    map.remove(&key);
                }
                BatchOp::Expect { .. } => {}
            }
        }
        drop(map);
        if !changed.is_empty() {
            // no receivers is fine
            let _ = self.events.send(StorageEvent::Changed(changed));
        }
        Ok(())
    }

    fn watch(&self) -> Option<ChangeFeed> {
        Some(self.events.subscribe())
    }
}

/// A storage wrapper that fails on command, for fault-injection tests: the
/// Nth write (counting from 1) and every write after it fail until
/// [`FaultyStorage::heal`] is called.
#[derive(Debug, Clone)]
pub struct FaultyStorage {
    inner: DynStorage,
    state: Arc<std::sync::Mutex<FaultState>>,
}

#[derive(Debug, Default)]
struct FaultState {
    writes: u64,
    reads: u64,
    fail_from: Option<u64>,
}

impl FaultyStorage {
    /// Wraps `inner`; no faults until [`FaultyStorage::fail_from_write`].
    pub fn new(inner: DynStorage) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    /// Makes the `n`th write from now (1 = the next one) and all later writes fail.
    pub fn fail_from_write(&self, n: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.fail_from = Some(s.writes + n.max(1));
        }
    }

    /// Stops failing.
    pub fn heal(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.fail_from = None;
        }
    }

    /// How many writes were attempted.
    pub fn writes(&self) -> u64 {
        self.state.lock().map(|s| s.writes).unwrap_or(0)
    }

    /// How many point reads (`get`, `get_with_last`) were made.
    pub fn reads(&self) -> u64 {
        self.state.lock().map(|s| s.reads).unwrap_or(0)
    }

    fn count_read(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.reads += 1;
        }
    }
}

#[async_trait]
impl Storage for FaultyStorage {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.count_read();
        self.inner.get(key).await
    }
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan(prefix, start_after, limit).await
    }
    async fn get_with_last(
        &self,
        key: &str,
        prefix: &str,
    ) -> Result<(Option<Vec<u8>>, LastRecord)> {
        self.count_read();
        self.inner.get_with_last(key, prefix).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        let fail = {
            let mut s = self
                .state
                .lock()
                .map_err(|_| Error::storage("faulty", StorageErrorKind::Other, "lock poisoned"))?;
            s.writes += 1;
            s.fail_from.is_some_and(|n| s.writes >= n)
        };
        if fail {
            return Err(Error::storage(
                "faulty",
                StorageErrorKind::Other,
                "injected write failure",
            ));
        }
        self.inner.batch(ops).await
    }
    fn watch(&self) -> Option<ChangeFeed> {
        self.inner.watch()
    }
}

/// The conformance suite every [`Storage`] backend runs.
///
/// ```text
/// #[tokio::test]
/// async fn conformance() {
///     strongroom::storage::conformance::run_all(|| async { my_store().await }).await;
/// }
/// ```
#[cfg(any(test, feature = "testing"))]
#[allow(clippy::unwrap_used, missing_docs)]
pub mod conformance {
    use std::future::Future;

    use super::*;

    /// Runs every check against fresh stores from `open`. `open` must return
    /// a store over empty storage.
    pub async fn run_all<S, F, Fut>(open: F)
    where
        S: Storage + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = S>,
    {
        get_put_delete(&open().await).await;
        ordering_and_prefixes(&open().await).await;
        get_with_last(&open().await).await;
        scan_paging(&open().await).await;
        batches_are_atomic(&open().await).await;
        last_operation_on_a_key_wins(&open().await).await;
        compare_and_set(&open().await).await;
        binary_values(&open().await).await;
        concurrent_cas_has_one_winner(Arc::new(open().await)).await;
    }

    /// Basic get/put/delete.
    pub async fn get_put_delete(s: &dyn Storage) {
        assert_eq!(s.get("a").await.unwrap(), None);
        s.put("a", b"1").await.unwrap();
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
        s.put("a", b"2").await.unwrap();
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert!(s.delete("a").await.unwrap());
        assert!(!s.delete("a").await.unwrap());
        assert_eq!(s.get("a").await.unwrap(), None);
        // empty values are values, not absence
        s.put("empty", b"").await.unwrap();
        assert_eq!(s.get("empty").await.unwrap().as_deref(), Some(&b""[..]));
    }

    /// Keys come back in byte order and prefixes do not leak neighbours.
    pub async fn ordering_and_prefixes(s: &dyn Storage) {
        for k in [
            "b/2", "b/10", "a/1", "b/1", "ba", "b", "c/1", "b/\u{e9}", "b/~",
        ] {
            s.put(k, k.as_bytes()).await.unwrap();
        }
        assert_eq!(
            s.list("b/").await.unwrap(),
            vec!["b/1", "b/10", "b/2", "b/~", "b/\u{e9}"]
        );
        assert_eq!(s.list("b").await.unwrap().len(), 7);
        assert_eq!(s.list("").await.unwrap().len(), 9);
        assert!(s.list("z").await.unwrap().is_empty());
        // LIKE/GLOB metacharacters in prefixes are literal
        s.put("p%x", b"").await.unwrap();
        s.put("p_x", b"").await.unwrap();
        s.put("pax", b"").await.unwrap();
        assert_eq!(s.list("p%").await.unwrap(), vec!["p%x"]);
        assert_eq!(s.list("p_").await.unwrap(), vec!["p_x"]);
    }

    /// `scan` pages with `start_after` and `limit`.
    pub async fn get_with_last(s: &dyn Storage) {
        s.batch(vec![
            BatchOp::put("m/a", b"meta".to_vec()),
            BatchOp::put("v/a@01", b"one".to_vec()),
            BatchOp::put("v/a@02", b"two".to_vec()),
            BatchOp::put("v/a@", b"bare".to_vec()),
            BatchOp::put("v/a@02x", b"after".to_vec()),
            BatchOp::put("v/a~", b"outside".to_vec()),
            BatchOp::put("v/b@01", b"other".to_vec()),
        ])
        .await
        .unwrap();
        let (value, last) = s.get_with_last("m/a", "v/a@").await.unwrap();
        assert_eq!(value.as_deref(), Some(&b"meta"[..]));
        assert_eq!(last, Some(("v/a@02x".to_owned(), b"after".to_vec())));
        s.delete("v/a@02x").await.unwrap();
        let (_, last) = s.get_with_last("m/a", "v/a@").await.unwrap();
        assert_eq!(last, Some(("v/a@02".to_owned(), b"two".to_vec())));
        // Either side may be missing.
        let (value, last) = s.get_with_last("m/none", "v/none@").await.unwrap();
        assert_eq!((value, last), (None, None));
        let (value, last) = s.get_with_last("m/none", "v/b@").await.unwrap();
        assert_eq!(value, None);
        assert_eq!(last, Some(("v/b@01".to_owned(), b"other".to_vec())));
        // A prefix whose upper bound does not exist (all 0xFF is not UTF-8,
        // so the highest char stands in): the last record still counts.
        s.put("\u{10FFFF}", b"top").await.unwrap();
        let (_, last) = s.get_with_last("m/a", "\u{10FFFF}").await.unwrap();
        assert_eq!(last, Some(("\u{10FFFF}".to_owned(), b"top".to_vec())));
    }

    pub async fn scan_paging(s: &dyn Storage) {
        for i in 0..25u32 {
            s.put(&format!("k/{i:03}"), &i.to_be_bytes()).await.unwrap();
        }
        s.put("k0", b"x").await.unwrap();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = s.scan("k/", after.as_deref(), 7).await.unwrap();
            assert!(page.len() <= 7);
            if page.is_empty() {
                break;
            }
            after = Some(page.last().unwrap().0.clone());
            seen.extend(page);
        }
        assert_eq!(seen.len(), 25);
        for (i, (k, v)) in seen.iter().enumerate() {
            assert_eq!(k, &format!("k/{i:03}"));
            assert_eq!(v, &(i as u32).to_be_bytes());
        }
        // start_after before the prefix starts at the prefix
        assert_eq!(s.scan("k/", Some("a"), 1).await.unwrap()[0].0, "k/000");
    }

    /// A failed precondition writes nothing.
    pub async fn batches_are_atomic(s: &dyn Storage) {
        s.put("x", b"old").await.unwrap();
        let err = s
            .batch(vec![
                BatchOp::put("y", b"new".to_vec()),
                BatchOp::delete("x"),
                BatchOp::expect("x", Some(b"other".to_vec())),
            ])
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::StorageConflict { ref key } if key == "x"),
            "{err:?}"
        );
        assert_eq!(s.get("y").await.unwrap(), None);
        assert_eq!(s.get("x").await.unwrap().as_deref(), Some(&b"old"[..]));
        s.batch(vec![
            BatchOp::expect("x", Some(b"old".to_vec())),
            BatchOp::expect("y", None),
            BatchOp::put("y", b"new".to_vec()),
            BatchOp::delete("x"),
        ])
        .await
        .unwrap();
        assert_eq!(s.get("y").await.unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(s.get("x").await.unwrap(), None);
    }

    /// Within a batch the last operation on a key decides it (a put then a
    /// delete, a delete then a put, two puts), and of several failing
    /// preconditions the first in the batch's order is the one reported.
    pub async fn last_operation_on_a_key_wins(s: &dyn Storage) {
        s.put("k1", b"a").await.unwrap();
        s.batch(vec![
            BatchOp::put("k1", b"b".to_vec()),
            BatchOp::delete("k1"),
            BatchOp::delete("k2"),
            BatchOp::put("k2", b"c".to_vec()),
            BatchOp::put("k3", b"d".to_vec()),
            BatchOp::put("k3", b"e".to_vec()),
        ])
        .await
        .unwrap();
        assert_eq!(s.get("k1").await.unwrap(), None);
        assert_eq!(s.get("k2").await.unwrap().as_deref(), Some(&b"c"[..]));
        assert_eq!(s.get("k3").await.unwrap().as_deref(), Some(&b"e"[..]));
        let err = s
            .batch(vec![
                BatchOp::expect("k3", Some(b"e".to_vec())),
                BatchOp::expect("k2", Some(b"wrong".to_vec())),
                BatchOp::expect("k1", Some(b"wrong".to_vec())),
                BatchOp::put("k4", b"f".to_vec()),
            ])
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::StorageConflict { ref key } if key == "k2"),
            "{err:?}"
        );
        assert_eq!(s.get("k4").await.unwrap(), None);
    }

    /// Compare-and-set semantics, including create-only and delete.
    pub async fn compare_and_set(s: &dyn Storage) {
        assert!(s.compare_and_set("c", None, Some(b"1")).await.unwrap());
        assert!(!s.compare_and_set("c", None, Some(b"2")).await.unwrap());
        assert!(
            !s.compare_and_set("c", Some(b"0"), Some(b"2"))
                .await
                .unwrap()
        );
        assert!(
            s.compare_and_set("c", Some(b"1"), Some(b"2"))
                .await
                .unwrap()
        );
        assert_eq!(s.get("c").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert!(s.compare_and_set("c", Some(b"2"), None).await.unwrap());
        assert_eq!(s.get("c").await.unwrap(), None);
    }

    /// Arbitrary bytes survive unchanged.
    pub async fn binary_values(s: &dyn Storage) {
        let v: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        s.put("bin", &v).await.unwrap();
        assert_eq!(s.get("bin").await.unwrap().unwrap(), v);
    }

    /// Of many concurrent CAS writers from the same expectation, exactly one wins.
    pub async fn concurrent_cas_has_one_winner(s: Arc<dyn Storage>) {
        s.put("race", b"0").await.unwrap();
        let mut handles = Vec::new();
        for i in 0..8u8 {
            let s = Arc::clone(&s);
            handles.push(tokio::spawn(async move {
                s.compare_and_set("race", Some(b"0"), Some(&[b'a' + i]))
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for h in handles {
            if h.await.unwrap() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
    }

    /// Data written before closing is there after reopening. `open_at` opens
    /// (or creates) the store at a fixed location each time it is called.
    pub async fn reopen_after_close<S, F, Fut>(open_at: F)
    where
        S: Storage + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = S>,
    {
        {
            let s = open_at().await;
            s.put("persist/a", b"1").await.unwrap();
            s.batch(vec![BatchOp::put("persist/b", b"2".to_vec())])
                .await
                .unwrap();
            drop(s);
        }
        let s = open_at().await;
        assert_eq!(
            s.list("persist/").await.unwrap(),
            vec!["persist/a", "persist/b"]
        );
        assert_eq!(
            s.get("persist/b").await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_conformance() {
        conformance::run_all(|| async { MemoryStorage::new() }).await;
    }

    #[test]
    fn upper_bound() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some(&b"ac"[..]));
        assert_eq!(prefix_upper_bound(""), None);
    }

    #[tokio::test]
    async fn faulty_storage_fails_the_nth_write() {
        let f = FaultyStorage::new(Arc::new(MemoryStorage::new()));
        f.fail_from_write(2);
        f.put("a", b"1").await.unwrap();
        assert!(matches!(f.put("b", b"2").await, Err(Error::Storage { .. })));
        assert_eq!(f.get("b").await.unwrap(), None);
        f.heal();
        f.put("b", b"2").await.unwrap();
    }
}
