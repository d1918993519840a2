//! Lease memory and restore, each next to a naive baseline doing the same
//! work in the same run, the two interleaved round by round (the order
//! alternates each round); every timed row reports the median of the
//! per-round ratios (ours / naive) with their min-max. Memory is counted by
//! a counting global allocator (bytes requested and not yet freed); it is
//! deterministic, so it is taken from the first round.
//!
//! **Index only**, at 1M and 10M leases (the in-memory expiry index alone,
//! not what a manager or its store holds):
//!
//! - memory per lease: an `ExpiryIndex` of N `(due, id)` entries against a
//!   `NaiveIndex` (`BinaryHeap` of `(expiry, id string)` + `HashMap` from id
//!   string to the whole lease with owned strings) of the same N leases;
//! - insert: building each from the same N generated leases (the naive
//!   leases are built before the clock starts; their strings are counted in
//!   its memory, since the index owns them);
//! - pop expired: popping every entry due before the half-day mark from
//!   each (the naive index hands back the whole lease; ours the id, whose
//!   record a manager then reads from storage).
//!
//! **Whole manager**, N leases (default 1M) issued through
//! `LeaseManager::issue_batch` into a `MemoryStorage`:
//!
//! - storage per lease: what the `MemoryStorage` holds for them (sealed
//!   lease records, path keys, packed index segments, per-path counts; the
//!   payload of each kind printed beside) against the same N lease records
//!   sealed through the barrier of another store into a `MemoryStorage` of
//!   its own, one key per lease and nothing else (a naive manager's store);
//! - manager per lease: a `LeaseManager` restored over that store with a
//!   horizon that holds all N in memory, against a `NaiveIndex` of the same
//!   N leases decoded from the same records (and, for reference, the
//!   manager with its default 10-minute horizon);
//! - whole: storage + manager against naive storage + naive index. Each
//!   store's change feed keeps its last 1,024 batches' keys while a
//!   subscriber lags; both stores are flushed with 1,088 one-key batches
//!   before and after each measurement so that buffer counts the same on
//!   both sides.
//!
//! **Restore**, the same store, every row the same input on both sides:
//!
//! - restore, all due in the horizon: `LeaseManager::restore` (reads the
//!   count keys and every index segment through the barrier, decodes the
//!   24-byte entries into an `ExpiryIndex`) against the same scans through
//!   the barrier, the counts summed per path and the same entries decoded
//!   into a `BinaryHeap`;
//! - restore, 10-minute horizon: the same, both stopping at the horizon;
//! - index from full records: scan all N lease records through the barrier,
//!   decode each with `Lease::from_record_bytes` and build an
//!   `ExpiryIndex` of their expiries, against the same scan and decode
//!   building a `NaiveIndex` (what a manager that keeps no stored index
//!   does on restart).
//!
//! Run: `cargo bench -p strongroom-benches --bench lease_memory`
//! (`LEASE_BENCH_SIZES=1000000` to skip the 10M index run;
//! `LEASE_BENCH_RESTORE` leases for the whole-manager part, default
//! 1000000; `LEASE_BENCH_ROUNDS` interleaved rounds, default 3 for the
//! index part and 5 for restore unless set).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::System;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use strongroom::changes::FEED_CAPACITY;
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{
    ExpiryIndex, Lease, LeaseConfig, LeaseId, LeaseManager, LeaseRequest, Revoker,
};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{BatchOp, DynStorage, MemoryStorage};
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_benches::{
    Item, NaiveIndex, NaiveLease, T0, Workload, env_or, load_average, median, naive_lease, path_of,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PAGE: usize = 4096;
const ENTRY: usize = 24;

/// Bytes allocated and not freed since `region` began. stats_alloc already
/// adds a `realloc`'s growth to `bytes_allocated` (and its shrinking to
/// `bytes_deallocated`); `bytes_reallocated` is that same difference again,
/// so it is not added.
fn net_bytes(region: &Region<'_, System>) -> i64 {
    let s = region.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n.max(1) as f64
}

fn ms(d: f64) -> f64 {
    d * 1e3
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn med(v: &[f64]) -> f64 {
    median(v.to_vec()).unwrap_or(f64::NAN)
}

/// Seconds of each side per round, for one row.
#[derive(Default)]
struct Row {
    ours: Vec<f64>,
    naive: Vec<f64>,
}

impl Row {
    fn push(&mut self, ours: Duration, naive: Duration) {
        self.ours.push(ours.as_secs_f64());
        self.naive.push(naive.as_secs_f64());
    }

    /// Median ours, median naive, median paired ratio, min and max ratio.
    fn summary(&self) -> (f64, f64, f64, f64, f64) {
        let r: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.naive)
            .map(|(a, b)| a / b)
            .collect();
        let (lo, hi) = spread(&r);
        (med(&self.ours), med(&self.naive), med(&r), lo, hi)
    }
}

/// Runs `a` and `b` in the order given, timing each.
fn pair<A, B>(
    ours_first: bool,
    a: impl FnOnce() -> A,
    b: impl FnOnce() -> B,
) -> ((Duration, A), (Duration, B)) {
    fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
        let start = Instant::now();
        let v = f();
        (start.elapsed(), v)
    }
    if ours_first {
        let x = timed(a);
        (x, timed(b))
    } else {
        let y = timed(b);
        (timed(a), y)
    }
}

// ---------------------------------------------------------------- index only

struct IndexSide {
    bytes: i64,
    insert: Duration,
    pop: Duration,
    popped: usize,
}

fn index_ours(items: &[Item], half: u64) -> IndexSide {
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    let mut ours = ExpiryIndex::new();
    for it in items {
        ours.insert(
            Timestamp::from_millis(it.expires_at),
            LeaseId::from_u128(it.id),
        );
    }
    let insert = start.elapsed();
    let bytes = net_bytes(&region);
    let start = Instant::now();
    let mut popped = 0usize;
    while let Some(e) = ours.pop_due(Timestamp::from_millis(half)) {
        black_box(e);
        popped += 1;
    }
    let pop = start.elapsed();
    IndexSide {
        bytes,
        insert,
        pop,
        popped,
    }
}

fn index_naive(items: &[Item], half: u64) -> IndexSide {
    let region = Region::new(GLOBAL);
    let leases: Vec<_> = items.iter().map(naive_lease).collect();
    let start = Instant::now();
    let mut naive = NaiveIndex::default();
    for l in leases {
        naive.insert(l);
    }
    let insert = start.elapsed();
    let bytes = net_bytes(&region);
    let start = Instant::now();
    let mut popped = 0usize;
    while let Some(l) = naive.pop_due(half) {
        black_box(l);
        popped += 1;
    }
    let pop = start.elapsed();
    IndexSide {
        bytes,
        insert,
        pop,
        popped,
    }
}

fn index_figures(n: usize, rounds: usize) {
    let mut w = Workload::new(42);
    let items: Vec<_> = (0..n).map(|_| w.item()).collect();
    let half = T0 + 43_200_000;
    let (mut insert, mut pop) = (Row::default(), Row::default());
    let mut bytes = None;
    let mut popped = 0;
    for round in 0..rounds {
        let ours_first = round % 2 == 0;
        let ((_, ours), (_, naive)) = pair(
            ours_first,
            || index_ours(&items, half),
            || index_naive(&items, half),
        );
        assert_eq!(ours.popped, naive.popped);
        popped = ours.popped;
        bytes.get_or_insert((ours.bytes, naive.bytes));
        insert.push(ours.insert, naive.insert);
        pop.push(ours.pop, naive.pop);
        eprintln!(
            "index {n} round {round}: insert {:.0}/{:.0} ns, pop {:.0}/{:.0} ns (compact/naive)",
            ns_per(ours.insert, n),
            ns_per(naive.insert, n),
            ns_per(ours.pop, popped),
            ns_per(naive.pop, popped)
        );
    }
    let (ours_bytes, naive_bytes) = bytes.unwrap_or_default();
    let per_ours = ours_bytes as f64 / n as f64;
    let per_naive = naive_bytes as f64 / n as f64;
    println!("== index only (ExpiryIndex vs NaiveIndex), {n} leases, {rounds} rounds ==");
    println!(
        "memory per lease:  compact {per_ours:8.1} B   naive {per_naive:8.1} B   ratio {:.3}",
        per_ours / per_naive
    );
    let (o, v, r, lo, hi) = insert.summary();
    println!(
        "insert:            compact {:8.1} ns  naive {:8.1} ns  ratio {r:.3} (min {lo:.3}, max {hi:.3})",
        o * 1e9 / n as f64,
        v * 1e9 / n as f64
    );
    let (o, v, r, lo, hi) = pop.summary();
    println!(
        "pop expired:       compact {:8.1} ns  naive {:8.1} ns  ratio {r:.3} (min {lo:.3}, max {hi:.3})  ({popped} popped)",
        o * 1e9 / popped.max(1) as f64,
        v * 1e9 / popped.max(1) as f64
    );
}

// ------------------------------------------------------------- whole manager

#[derive(Debug)]
struct Noop;

#[async_trait::async_trait]
impl Revoker for Noop {
    async fn revoke(&self, _lease: &Lease) -> strongroom::Result<()> {
        Ok(())
    }
}

fn manager(store: &Door, clock: &Arc<ManualClock>, horizon: Duration) -> LeaseManager {
    let mut config = LeaseConfig::default();
    config.restore_horizon = horizon;
    let m = store.lease_manager(clock.clone(), config).unwrap();
    m.register_revoker("postgres", Arc::new(Noop));
    m
}

async fn new_store() -> (Door, DynStorage) {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
    let store = Strongroom::init(
        Arc::new(MemoryStorage::new()),
        &protector,
        Options::default(),
    )
    .await
    .unwrap();
    let door = store.dangerous_traced("bench").await.unwrap();
    let raw = door.storage().clone();
    (door, raw)
}

/// Fills the store's change-feed buffer with one-key batches, so what it
/// holds is the same small amount before and after a measurement.
async fn flush_feed(raw: &DynStorage) {
    for _ in 0..FEED_CAPACITY + 64 {
        raw.batch(vec![BatchOp::put("bench/flush", vec![0])])
            .await
            .unwrap();
    }
    raw.batch(vec![BatchOp::delete("bench/flush")])
        .await
        .unwrap();
    tokio::task::yield_now().await;
}

/// Every record under `prefix`, paged.
async fn scan_all(storage: &DynStorage, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut after: Option<String> = None;
    let mut out = Vec::new();
    loop {
        let page = storage.scan(prefix, after.as_deref(), PAGE).await.unwrap();
        after = page.last().map(|(k, _)| k.clone());
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            return out;
        }
    }
}

/// Calls `f` on each record under `prefix` up to the first key for which
/// `stop` holds, in pages of `first` records doubling up to 4096 (the
/// barrier opens every record of a page it returns; restore reads the
/// index segments in pages growing from 64 the same way).
async fn scan_each(
    storage: &DynStorage,
    prefix: &str,
    first: usize,
    stop: impl Fn(&str) -> bool,
    mut f: impl FnMut(&str, &[u8]),
) {
    let mut after: Option<String> = None;
    let mut size = first;
    loop {
        let page = storage.scan(prefix, after.as_deref(), size).await.unwrap();
        let full = page.len() == size;
        size = (size * 2).min(PAGE);
        for (k, v) in &page {
            if stop(k) {
                return;
            }
            f(k, v);
        }
        if !full {
            return;
        }
        after = page.last().map(|(k, _)| k.clone());
    }
}

/// Bucket start of an index segment key `lease-due/<16 hex>/<2 hex>`.
fn bucket_of(key: &str) -> u64 {
    let hex = &key["lease-due/".len().."lease-due/".len() + 16];
    u64::from_str_radix(hex, 16).unwrap()
}

/// The naive restore of the same stored entries: the count keys summed
/// per path, the segments up to `until` read and their 24-byte entries
/// decoded into a heap.
async fn naive_restore(storage: &DynStorage, until: u64) -> usize {
    let mut counts: HashMap<String, i64> = HashMap::new();
    scan_each(
        storage,
        "lease-count/",
        PAGE,
        |_| false,
        |k, v| {
            let path = k["lease-count/".len()..]
                .split_once('#')
                .map_or(&k["lease-count/".len()..], |(p, _)| p);
            let n = i64::from_be_bytes(v.try_into().unwrap());
            *counts.entry(path.to_owned()).or_default() += n;
        },
    )
    .await;
    let mut heap: BinaryHeap<Reverse<(u64, u128)>> = BinaryHeap::new();
    scan_each(
        storage,
        "lease-due/",
        64,
        |k| bucket_of(k) > until,
        |_, v| {
            assert_eq!(v[0], 1, "segment version");
            for e in v[1..].chunks_exact(ENTRY) {
                let t = u64::from_be_bytes(e[..8].try_into().unwrap());
                let id = u128::from_be_bytes(e[8..].try_into().unwrap());
                if t <= until {
                    heap.push(Reverse((t, id)));
                }
            }
        },
    )
    .await;
    black_box(&counts);
    heap.len()
}

fn naive_of(l: &Lease) -> NaiveLease {
    NaiveLease {
        id: l.id().to_string(),
        path: l.path().to_owned(),
        issued_at: l.issued_at().as_millis(),
        ttl: l.ttl().as_millis() as u64,
        max_ttl: l.max_ttl().as_millis() as u64,
        expires_at: l.expires_at().as_millis(),
        renewable: l.renewable(),
        state: 0,
    }
}

fn whole_figures(n: usize, rounds: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
    let (store, raw) = rt.block_on(new_store());
    let storage: DynStorage = store.barrier();
    rt.block_on(flush_feed(&raw));

    // Storage: everything issuing n leases leaves in the MemoryStorage (the
    // issuing manager's horizon holds none of them in memory; it is dropped
    // before counting).
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    {
        let issuer = manager(&store, &clock, Duration::from_millis(2));
        let mut w = Workload::new(7);
        rt.block_on(async {
            let mut left = n;
            while left > 0 {
                let k = left.min(1000);
                let requests = (0..k)
                    .map(|_| {
                        let it = w.item();
                        let ttl = Duration::from_millis(it.expires_at - T0);
                        LeaseRequest::new(path_of(it.path), "postgres", ttl, ttl)
                            .revocation_data(format!("sr_{:024x}", it.id >> 32).into_bytes())
                    })
                    .collect();
                issuer.issue_batch(requests).await.unwrap();
                left -= k;
            }
        });
    }
    let fill = start.elapsed();
    rt.block_on(flush_feed(&raw));
    let store_bytes = net_bytes(&region);

    // Payload of each kind of key, as stored (sealed).
    let kinds = ["lease/", "lease-path/", "lease-due/", "lease-count/"];
    let payload: Vec<(usize, usize)> = kinds
        .iter()
        .map(|p| {
            let all = rt.block_on(scan_all(&raw, p));
            (
                all.len(),
                all.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
            )
        })
        .collect();
    assert_eq!(payload[0].0, n);

    // The manager's own memory, restored over that store.
    let horizon_all = Duration::from_secs(3 * 86_400);
    let horizon_default = LeaseConfig::default().restore_horizon;
    let manager_bytes = |horizon: Duration| {
        let region = Region::new(GLOBAL);
        let m = manager(&store, &clock, horizon);
        let loaded = rt.block_on(m.restore()).unwrap().loaded;
        let bytes = net_bytes(&region);
        drop(m);
        (bytes, loaded)
    };
    let (mgr_all, loaded_all) = manager_bytes(horizon_all);
    assert_eq!(loaded_all, n);
    let (mgr_default, loaded_default) = manager_bytes(horizon_default);

    // The naive side: the same records (plaintext, as the barrier returns
    // them), sealed into a store of their own, one key per lease.
    let records = rt.block_on(scan_all(&storage, "lease/"));
    let (naive_store, naive_raw) = rt.block_on(new_store());
    let naive_barrier = naive_store.barrier();
    rt.block_on(flush_feed(&naive_raw));
    let region = Region::new(GLOBAL);
    rt.block_on(async {
        for chunk in records.chunks(1000) {
            let ops = chunk
                .iter()
                .map(|(k, v)| BatchOp::put(k.clone(), v.clone()))
                .collect();
            naive_barrier.batch(ops).await.unwrap();
        }
        flush_feed(&naive_raw).await;
    });
    let naive_store_bytes = net_bytes(&region);
    let region = Region::new(GLOBAL);
    let mut naive = NaiveIndex::default();
    for (_, v) in &records {
        naive.insert(naive_of(&Lease::from_record_bytes(v).unwrap()));
    }
    let naive_index_bytes = net_bytes(&region);
    assert_eq!(naive.len(), n);
    drop(naive);
    drop(records);
    drop(naive_barrier);
    drop(naive_store);
    drop(naive_raw);

    let per = |b: i64| b as f64 / n as f64;
    println!(
        "== whole manager, {n} leases in MemoryStorage (issued with issue_batch of 1000 in {:.1} s) ==",
        fill.as_secs_f64()
    );
    let detail: Vec<String> = kinds
        .iter()
        .zip(&payload)
        .map(|(k, (count, bytes))| format!("{k} {count} keys {:.1} B", *bytes as f64 / n as f64))
        .collect();
    println!(
        "storage per lease:        strongroom {:7.1} B   naive (one sealed record per lease) {:7.1} B   ratio {:.3}",
        per(store_bytes),
        per(naive_store_bytes),
        per(store_bytes) / per(naive_store_bytes)
    );
    println!(
        "  payload per lease (key + sealed value, before allocator and map overhead): {}",
        detail.join(", ")
    );
    println!(
        "manager per lease, all {loaded_all} in memory: strongroom {:7.1} B   naive index {:7.1} B   ratio {:.3}",
        per(mgr_all),
        per(naive_index_bytes),
        per(mgr_all) / per(naive_index_bytes)
    );
    println!(
        "manager per lease, default {}-min horizon ({loaded_default} in memory): {:7.1} B",
        horizon_default.as_secs() / 60,
        per(mgr_default)
    );
    let naive_whole = per(naive_store_bytes) + per(naive_index_bytes);
    println!(
        "whole (storage + manager), all in memory:   strongroom {:7.1} B   naive (storage + index) {:7.1} B   ratio {:.3}",
        per(store_bytes) + per(mgr_all),
        naive_whole,
        (per(store_bytes) + per(mgr_all)) / naive_whole
    );
    println!(
        "whole (storage + manager), default horizon: strongroom {:7.1} B   naive (storage + index) {:7.1} B   ratio {:.3}",
        per(store_bytes) + per(mgr_default),
        naive_whole,
        (per(store_bytes) + per(mgr_default)) / naive_whole
    );

    // Restore, interleaved.
    let all_until = T0 + horizon_all.as_millis() as u64;
    let default_until = T0 + horizon_default.as_millis() as u64;
    let mut rows: [Row; 3] = Default::default();
    for round in 0..rounds {
        let ours_first = round % 2 == 0;
        let ((a, loaded), (b, heap)) = pair(
            ours_first,
            || {
                let m = manager(&store, &clock, horizon_all);
                let loaded = rt.block_on(m.restore()).unwrap().loaded;
                black_box(&m);
                loaded
            },
            || rt.block_on(naive_restore(&storage, all_until)),
        );
        assert_eq!((loaded, heap), (n, n));
        rows[0].push(a, b);

        let ((c, loaded), (d, heap)) = pair(
            ours_first,
            || {
                let m = manager(&store, &clock, horizon_default);
                let loaded = rt.block_on(m.restore()).unwrap().loaded;
                black_box(&m);
                loaded
            },
            || rt.block_on(naive_restore(&storage, default_until)),
        );
        assert_eq!(loaded, heap);
        rows[1].push(c, d);

        let ((e, ours_len), (f, naive_len)) = pair(
            ours_first,
            || {
                rt.block_on(async {
                    let mut entries = Vec::new();
                    scan_each(
                        &storage,
                        "lease/",
                        PAGE,
                        |_| false,
                        |_, v| {
                            let l = Lease::from_record_bytes(v).unwrap();
                            entries.push((l.expires_at(), l.id()));
                        },
                    )
                    .await;
                    let mut ix = ExpiryIndex::new();
                    ix.extend(entries);
                    black_box(&ix);
                    ix.len()
                })
            },
            || {
                rt.block_on(async {
                    let mut ix = NaiveIndex::default();
                    scan_each(
                        &storage,
                        "lease/",
                        PAGE,
                        |_| false,
                        |_, v| {
                            ix.insert(naive_of(&Lease::from_record_bytes(v).unwrap()));
                        },
                    )
                    .await;
                    black_box(&ix);
                    ix.len()
                })
            },
        );
        assert_eq!((ours_len, naive_len), (n, n));
        rows[2].push(e, f);
        eprintln!(
            "restore {n} round {round}: all {:.1}/{:.1} ms, horizon {:.2}/{:.2} ms, from records {:.0}/{:.0} ms (ours/naive)",
            ms(a.as_secs_f64()),
            ms(b.as_secs_f64()),
            ms(c.as_secs_f64()),
            ms(d.as_secs_f64()),
            ms(e.as_secs_f64()),
            ms(f.as_secs_f64())
        );
    }
    println!(
        "== restore, {n} leases in MemoryStorage, {rounds} rounds (medians; ratio = median of per-round ratios) =="
    );
    let labels = [
        format!("restore, all {n} due in horizon vs naive decode of the same segments"),
        format!(
            "restore, 10-min horizon ({loaded_default} due) vs naive decode of the same segments"
        ),
        format!("ExpiryIndex from the {n} full records vs NaiveIndex from the same records"),
    ];
    for (label, row) in labels.iter().zip(&rows) {
        let (o, v, r, lo, hi) = row.summary();
        println!(
            "{label}: {:.2} ms vs {:.2} ms, ratio {r:.3} (min {lo:.3}, max {hi:.3})",
            ms(o),
            ms(v)
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    println!("lease_memory: load average at start {}", load_average());
    let sizes: Vec<usize> = std::env::var("LEASE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    let rounds = std::env::var("LEASE_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok());
    for n in sizes {
        index_figures(n, rounds.unwrap_or(3).max(1));
    }
    let restore_n = env_or("LEASE_BENCH_RESTORE", 1_000_000);
    whole_figures(restore_n, rounds.unwrap_or(5).max(1));
    println!("lease_memory: load average at end {}", load_average());
}
