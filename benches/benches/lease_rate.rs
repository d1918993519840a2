//! Lease issue and expiry per second on the SQLite and PostgreSQL stores,
//! each against the raw storage write of a record of the same size in the
//! same run, and how both costs grow with the number of leases held.
//!
//! Setup, per store: `Strongroom::init` over the store (software
//! protector, `Options::default()`), a `Door` from `dangerous_traced`, and
//! one `LeaseManager` (`LeaseConfig::default()`, a `ManualClock` the bench
//! moves, a revoker that does nothing). The store is filled with long-lived
//! background leases (30 to 31 days, over 200 paths, through `issue_batch`
//! in chunks of 1,000) up to each size in turn (1k, 10k, 100k), and
//! measured at each. Measured leases are shaped like a database
//! credential's: one of the same 200 paths (`LEASE_RATE_PATHS` to change),
//! a TTL of 60 to 120 s, 27 bytes of revocation data.
//!
//! The SQLite store is a file in a temporary directory (WAL,
//! `synchronous=FULL`: every batch waits for an fsync, shared by a group).
//! PostgreSQL is the private cluster `strongroom_testpg` starts, which runs
//! with `fsync = off` (or the server named by `STRONGROOM_TEST_PG_URL`), a
//! fresh database, the store from `PgStore::connect` (a pool of 10); there
//! round trips, not the disk, set the pace. If it cannot start, the bench
//! prints `postgres: skipped (reason)` and goes on.
//!
//! Each round, at each size, runs these pairs one after the other; within
//! a pair the lease side and the raw side alternate which goes first:
//!
//! - **issue, 1 issuer**: `LeaseManager::issue` one after another, against
//!   one raw `Storage::batch` per record on the store under the barrier
//!   (`door.storage()`): a precondition that the key is absent and a put of
//!   a value as long as the stored (sealed) lease record, under a random
//!   key shaped like a lease's.
//! - **issue, 64 issuers**: the same from 64 tokio tasks at once (the
//!   SQLite store commits concurrent batches as one group).
//! - **issue_batch of 64**: `LeaseManager::issue_batch` of 64 requests,
//!   against one raw batch creating 64 such records.
//! - **expiry**: the clock is moved past every lease issued in the round
//!   and one `LeaseManager::run_due` revokes them all (claim, revoker call,
//!   the `revoked` mark, clean-up of record, path key, index entry and
//!   count), against one raw batch per record deleting each of the raw
//!   records written in the round (a precondition that it holds the value
//!   written, then the delete), one after another as the scheduler does.
//!
//! So a ratio is what the lease layer costs over the store write that a
//! lease at least needs. Each round gives one ratio per pair (lease time
//! per lease over raw time per record); the report is the median of those
//! paired ratios with their min-max, next to the median rates. Growth is
//! the median time per lease at each size over the median at the first
//! size (medians of different stages, not paired).
//!
//! The store is wrapped in a counter of its calls (a relaxed atomic add per
//! call), so each lease row also says how many gets, scans and batches (and
//! operations in them) a lease cost the store; the raw side costs one batch
//! of two operations per record (one batch of 128 per 64 records for
//! `issue_batch`).
//!
//! Run: `cargo bench -p strongroom-benches --bench lease_rate`.
//! Environment: `LEASE_RATE_SIZES` (leases held, comma-separated, default
//! `1000,10000,100000`; add `1000000` for 1M), `LEASE_RATE_ROUNDS` per size
//! (default 5), `LEASE_RATE_SINGLE` leases per round from one issuer
//! (default 60), `LEASE_RATE_TASKS` concurrent issuers (default 64) and
//! `LEASE_RATE_PER_TASK` leases each (default 2), `LEASE_RATE_BATCHES`
//! `issue_batch` calls of 64 per round (default 2), `LEASE_RATE_PG=0` to
//! skip PostgreSQL, `LEASE_RATE_SQLITE=0` to skip SQLite. Most of a default
//! run (about 4 minutes on a quiet machine, 6 under a load of 4) is filling
//! PostgreSQL to 100k leases: `issue_batch` there costs about a millisecond
//! or two per lease, a round trip per key and operation of the batch.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{Lease, LeaseConfig, LeaseManager, LeaseRequest, Revoker};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{BatchOp, ChangeFeed, DynStorage, Storage};
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_benches::{T0, Workload, env_or, load_average, median, path_of};
use strongroom_sqlx::{PgStore, SqliteStore};
use strongroom_testpg::TestPostgres;

const ENGINE: &str = "bench";
const BATCH: usize = 64;
const FILL_CHUNK: usize = 1000;
/// Measured leases live 60 to 120 s; the clock moves this far per round.
const ROUND_STEP: Duration = Duration::from_secs(121);

#[derive(Debug)]
struct Noop;

#[async_trait::async_trait]
impl Revoker for Noop {
    async fn revoke(&self, _lease: &Lease) -> strongroom::Result<()> {
        Ok(())
    }
}

/// The store under test with its calls counted (get, scan, batch and the
/// operations in batches), so the report can say how many store calls a
/// lease costs. Forwards every method either backend implements.
#[derive(Debug)]
struct Counting {
    inner: DynStorage,
    calls: [AtomicU64; 4],
}

/// Calls of each kind: gets, scans, batches, operations in batches.
type Calls = [u64; 4];

impl Counting {
    fn new(inner: DynStorage) -> Self {
        Self {
            inner,
            calls: Default::default(),
        }
    }

    fn snapshot(&self) -> Calls {
        std::array::from_fn(|i| self.calls[i].load(Ordering::Relaxed))
    }

    fn count(&self, i: usize, n: u64) {
        self.calls[i].fetch_add(n, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl Storage for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn get(&self, key: &str) -> strongroom::Result<Option<Vec<u8>>> {
        self.count(0, 1);
        self.inner.get(key).await
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> strongroom::Result<Vec<(String, Vec<u8>)>> {
        self.count(1, 1);
        self.inner.scan(prefix, start_after, limit).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> strongroom::Result<()> {
        self.count(2, 1);
        self.count(3, ops.len() as u64);
        self.inner.batch(ops).await
    }

    fn watch(&self) -> Option<ChangeFeed> {
        self.inner.watch()
    }
}

#[derive(Clone, Debug)]
struct Knobs {
    sizes: Vec<usize>,
    rounds: usize,
    single: usize,
    tasks: usize,
    per_task: usize,
    batches: usize,
}

impl Knobs {
    fn from_env() -> Self {
        let sizes = std::env::var("LEASE_RATE_SIZES")
            .ok()
            .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
        Self {
            sizes,
            rounds: env_or("LEASE_RATE_ROUNDS", 5).max(1),
            single: env_or("LEASE_RATE_SINGLE", 60).max(1),
            tasks: env_or("LEASE_RATE_TASKS", 64).max(1),
            per_task: env_or("LEASE_RATE_PER_TASK", 2).max(1),
            batches: env_or("LEASE_RATE_BATCHES", 2).max(1),
        }
    }

    fn per_round(&self) -> usize {
        self.single + self.tasks * self.per_task + self.batches * BATCH
    }
}

/// Paths the measured leases are spread over (`LEASE_RATE_PATHS`).
static PATHS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// A measured lease: path, TTL, revocation data (27 bytes).
fn measured(w: &mut Workload) -> (String, Duration, Vec<u8>) {
    let paths = *PATHS.get_or_init(|| env_or("LEASE_RATE_PATHS", 200).clamp(1, 1000) as u64);
    let path = path_of((w.next_u64() % paths) as u32);
    let ttl = Duration::from_millis(60_000 + w.next_u64() % 60_000);
    let data = format!("sr_{:024x}", w.next_u64()).into_bytes();
    (path, ttl, data)
}

/// A random raw key as long as a lease record's (`lease/lease_<32 hex>`).
fn raw_key(w: &mut Workload) -> String {
    format!("rawrec/lease_{:016x}{:016x}", w.next_u64(), w.next_u64())
}

/// One store under test.
struct Rig {
    name: String,
    counted: Arc<Counting>,
    raw: DynStorage,
    manager: Arc<LeaseManager>,
    clock: Arc<ManualClock>,
    /// The raw value: as long as a stored lease record.
    value: Vec<u8>,
    w: Workload,
    held: usize,
    /// Store calls of the last lease-side measurement.
    last: Calls,
}

/// Per-lease (or per-record) seconds of each pair, one entry per round.
#[derive(Default, Clone)]
struct Pair {
    lease: Vec<f64>,
    raw: Vec<f64>,
    /// Store calls of the lease side, summed over rounds, and its leases.
    calls: Calls,
    leases: u64,
}

impl Pair {
    fn push(&mut self, lease: Duration, raw: Duration, n: usize, calls: Calls) {
        self.lease.push(lease.as_secs_f64() / n as f64);
        self.raw.push(raw.as_secs_f64() / n as f64);
        for (sum, c) in self.calls.iter_mut().zip(calls) {
            *sum += c;
        }
        self.leases += n as u64;
    }

    /// Store calls per lease: gets, scans, batches, operations.
    fn calls_per_lease(&self) -> String {
        let per = |i: usize| self.calls[i] as f64 / self.leases.max(1) as f64;
        format!(
            "{:.2} gets, {:.2} scans, {:.2} batches ({:.1} ops)",
            per(0),
            per(1),
            per(2),
            per(3)
        )
    }

    fn ratios(&self) -> Vec<f64> {
        self.lease
            .iter()
            .zip(&self.raw)
            .map(|(a, b)| a / b)
            .collect()
    }
}

const PAIRS: [&str; 4] = [
    "issue, 1 issuer",
    "issue, N issuers",
    "issue_batch of 64",
    "expiry (run_due)",
];

fn m(v: &[f64]) -> f64 {
    median(v.to_vec()).unwrap_or(f64::NAN)
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

impl Rig {
    async fn new(name: String, storage: DynStorage) -> Self {
        let counted = Arc::new(Counting::new(storage));
        let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
        let door: Door = Strongroom::init(counted.clone(), &protector, Options::default())
            .await
            .unwrap()
            .dangerous_traced("lease-rate-bench")
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        let manager = Arc::new(
            door.lease_manager(clock.clone(), LeaseConfig::default())
                .unwrap(),
        );
        manager.register_revoker(ENGINE, Arc::new(Noop));
        manager.restore().await.unwrap();
        let raw = door.storage().clone();
        // The size of a stored lease record, as the store holds it (sealed).
        let mut w = Workload::new(99);
        let (path, ttl, data) = measured(&mut w);
        let probe = manager
            .issue(&path, ENGINE, ttl, ttl, true, data)
            .await
            .unwrap();
        let stored = raw
            .get(&format!("lease/{}", probe.id()))
            .await
            .unwrap()
            .expect("the lease record is stored");
        manager.revoke(probe.id()).await.unwrap();
        Self {
            name,
            counted,
            raw,
            manager,
            clock,
            value: vec![0x5a; stored.len()],
            w: Workload::new(42),
            held: 0,
            last: Calls::default(),
        }
    }

    /// Keeps the store calls made since `before` as the last measurement's.
    fn counted_since(&mut self, before: Calls) {
        let now = self.counted.snapshot();
        self.last = std::array::from_fn(|i| now[i] - before[i]);
    }

    /// Issues long-lived background leases until `to` are held.
    async fn fill(&mut self, to: usize) -> Duration {
        let start = Instant::now();
        while self.held < to {
            let n = (to - self.held).min(FILL_CHUNK);
            let requests = (0..n)
                .map(|_| {
                    let it = self.w.item();
                    // 30 to 31 days: never due while the bench runs.
                    let ttl = Duration::from_millis(30 * 86_400_000 + (it.expires_at - T0));
                    LeaseRequest::new(path_of(it.path), ENGINE, ttl, ttl)
                        .revocation_data(format!("sr_{:024x}", it.id >> 32).into_bytes())
                })
                .collect();
            self.manager.issue_batch(requests).await.unwrap();
            self.held += n;
        }
        start.elapsed()
    }

    async fn lease_single(&mut self, n: usize) -> Duration {
        let requests: Vec<_> = (0..n).map(|_| measured(&mut self.w)).collect();
        let before = self.counted.snapshot();
        let start = Instant::now();
        for (path, ttl, data) in requests {
            self.manager
                .issue(&path, ENGINE, ttl, ttl, true, data)
                .await
                .unwrap();
        }
        let elapsed = start.elapsed();
        self.counted_since(before);
        elapsed
    }

    async fn raw_single(&mut self, n: usize, keys: &mut Vec<String>) -> Duration {
        let fresh: Vec<_> = (0..n).map(|_| raw_key(&mut self.w)).collect();
        let start = Instant::now();
        for key in &fresh {
            self.raw
                .batch(vec![
                    BatchOp::expect(key.clone(), None),
                    BatchOp::put(key.clone(), self.value.clone()),
                ])
                .await
                .unwrap();
        }
        let elapsed = start.elapsed();
        keys.extend(fresh);
        elapsed
    }

    async fn lease_tasks(&mut self, tasks: usize, per: usize) -> Duration {
        let start = Arc::new(tokio::sync::Barrier::new(tasks + 1));
        let mut handles = Vec::with_capacity(tasks);
        for _ in 0..tasks {
            let requests: Vec<_> = (0..per).map(|_| measured(&mut self.w)).collect();
            let (manager, start) = (Arc::clone(&self.manager), Arc::clone(&start));
            handles.push(tokio::spawn(async move {
                start.wait().await;
                for (path, ttl, data) in requests {
                    manager
                        .issue(&path, ENGINE, ttl, ttl, true, data)
                        .await
                        .unwrap();
                }
            }));
        }
        let before = self.counted.snapshot();
        start.wait().await;
        let t = Instant::now();
        for h in handles {
            h.await.unwrap();
        }
        let elapsed = t.elapsed();
        self.counted_since(before);
        elapsed
    }

    async fn raw_tasks(&mut self, tasks: usize, per: usize, keys: &mut Vec<String>) -> Duration {
        let start = Arc::new(tokio::sync::Barrier::new(tasks + 1));
        let mut handles = Vec::with_capacity(tasks);
        for _ in 0..tasks {
            let mine: Vec<_> = (0..per).map(|_| raw_key(&mut self.w)).collect();
            keys.extend(mine.iter().cloned());
            let (raw, start, value) = (self.raw.clone(), Arc::clone(&start), self.value.clone());
            handles.push(tokio::spawn(async move {
                start.wait().await;
                for key in mine {
                    raw.batch(vec![
                        BatchOp::expect(key.clone(), None),
                        BatchOp::put(key, value.clone()),
                    ])
                    .await
                    .unwrap();
                }
            }));
        }
        start.wait().await;
        let t = Instant::now();
        for h in handles {
            h.await.unwrap();
        }
        t.elapsed()
    }

    async fn lease_batches(&mut self, calls: usize) -> Duration {
        let calls: Vec<Vec<LeaseRequest>> = (0..calls)
            .map(|_| {
                (0..BATCH)
                    .map(|_| {
                        let (path, ttl, data) = measured(&mut self.w);
                        LeaseRequest::new(path, ENGINE, ttl, ttl).revocation_data(data)
                    })
                    .collect()
            })
            .collect();
        let before = self.counted.snapshot();
        let start = Instant::now();
        for requests in calls {
            self.manager.issue_batch(requests).await.unwrap();
        }
        let elapsed = start.elapsed();
        self.counted_since(before);
        elapsed
    }

    async fn raw_batches(&mut self, calls: usize, keys: &mut Vec<String>) -> Duration {
        let calls: Vec<Vec<String>> = (0..calls)
            .map(|_| (0..BATCH).map(|_| raw_key(&mut self.w)).collect())
            .collect();
        let start = Instant::now();
        for batch in &calls {
            let mut ops = Vec::with_capacity(2 * BATCH);
            for key in batch {
                ops.push(BatchOp::expect(key.clone(), None));
                ops.push(BatchOp::put(key.clone(), self.value.clone()));
            }
            self.raw.batch(ops).await.unwrap();
        }
        let elapsed = start.elapsed();
        keys.extend(calls.into_iter().flatten());
        elapsed
    }

    /// One `run_due` after the clock moved past the round's leases.
    async fn lease_expiry(&mut self, expected: usize) -> Duration {
        let before = self.counted.snapshot();
        let start = Instant::now();
        let report = self.manager.run_due().await.unwrap();
        let elapsed = start.elapsed();
        self.counted_since(before);
        assert_eq!(report.errors, 0, "{report:?}");
        assert_eq!(report.revoked, expected, "{report:?}");
        assert_eq!(self.manager.run_due().await.unwrap().revoked, 0);
        elapsed
    }

    async fn raw_expiry(&mut self, keys: &mut Vec<String>) -> Duration {
        let start = Instant::now();
        for key in keys.iter() {
            self.raw
                .batch(vec![
                    BatchOp::expect(key.clone(), Some(self.value.clone())),
                    BatchOp::delete(key.clone()),
                ])
                .await
                .unwrap();
        }
        let elapsed = start.elapsed();
        keys.clear();
        elapsed
    }

    /// One round at the current size: the four pairs, lease side first in
    /// even rounds.
    async fn round(&mut self, k: &Knobs, lease_first: bool, out: &mut [Pair; 4]) -> String {
        let mut keys = Vec::new();
        let (a, b) = if lease_first {
            let a = self.lease_single(k.single).await;
            (a, self.raw_single(k.single, &mut keys).await)
        } else {
            let b = self.raw_single(k.single, &mut keys).await;
            (self.lease_single(k.single).await, b)
        };
        out[0].push(a, b, k.single, self.last);
        let n = k.tasks * k.per_task;
        let (c, d) = if lease_first {
            let c = self.lease_tasks(k.tasks, k.per_task).await;
            (c, self.raw_tasks(k.tasks, k.per_task, &mut keys).await)
        } else {
            let d = self.raw_tasks(k.tasks, k.per_task, &mut keys).await;
            (self.lease_tasks(k.tasks, k.per_task).await, d)
        };
        out[1].push(c, d, n, self.last);
        let nb = k.batches * BATCH;
        let (e, f) = if lease_first {
            let e = self.lease_batches(k.batches).await;
            (e, self.raw_batches(k.batches, &mut keys).await)
        } else {
            let f = self.raw_batches(k.batches, &mut keys).await;
            (self.lease_batches(k.batches).await, f)
        };
        out[2].push(e, f, nb, self.last);
        let total = k.per_round();
        assert_eq!(keys.len(), total);
        self.clock.advance(ROUND_STEP);
        let (g, h) = if lease_first {
            let g = self.lease_expiry(total).await;
            (g, self.raw_expiry(&mut keys).await)
        } else {
            let h = self.raw_expiry(&mut keys).await;
            (self.lease_expiry(total).await, h)
        };
        out[3].push(g, h, total, self.last);
        let us = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
        format!(
            "issue1 {:.0}/{:.0} us, issue{} {:.0}/{:.0} us, batch64 {:.1}/{:.1} us, expiry {:.0}/{:.0} us (lease/raw per lease)",
            us(a, k.single),
            us(b, k.single),
            k.tasks,
            us(c, n),
            us(d, n),
            us(e, nb),
            us(f, nb),
            us(g, total),
            us(h, total)
        )
    }
}

/// Runs every size on one store and prints its figures.
async fn run(mut rig: Rig, k: &Knobs) {
    println!(
        "== {}: lease record {} B as stored; {} leases per round ({} from 1 issuer, {}x{} from {} issuers, {}x{} by issue_batch); load average {} ==",
        rig.name,
        rig.value.len(),
        k.per_round(),
        k.single,
        k.tasks,
        k.per_task,
        k.tasks,
        k.batches,
        BATCH,
        load_average()
    );
    let mut by_size: Vec<(usize, [Pair; 4])> = Vec::new();
    for &size in &k.sizes {
        let before = rig.held;
        let filled = rig.fill(size).await;
        if rig.held > before {
            eprintln!(
                "{}: filled {} background leases in {:.1} s (issue_batch of {FILL_CHUNK})",
                rig.name,
                rig.held - before,
                filled.as_secs_f64()
            );
        }
        let mut pairs: [Pair; 4] = Default::default();
        for round in 0..k.rounds {
            let line = rig.round(k, round % 2 == 0, &mut pairs).await;
            eprintln!("{} held {size} round {round}: {line}", rig.name);
        }
        let tasks_label = format!("issue, {} issuers", k.tasks);
        for (i, pair) in pairs.iter().enumerate() {
            let label = if i == 1 {
                tasks_label.as_str()
            } else {
                PAIRS[i]
            };
            let r = pair.ratios();
            let (lo, hi) = spread(&r);
            println!(
                "{} held {size:>7}: {label:<22} lease {:>8.0}/s  raw {:>8.0}/s  lease/raw {:>6.2}x (min {lo:.2}x, max {hi:.2}x); store calls per lease: {}",
                rig.name,
                1.0 / m(&pair.lease),
                1.0 / m(&pair.raw),
                m(&r),
                pair.calls_per_lease()
            );
        }
        by_size.push((size, pairs));
    }
    if let Some((first, base)) = by_size.first() {
        for (size, pairs) in by_size.iter().skip(1) {
            let g: Vec<String> = (0..4)
                .map(|i| {
                    format!(
                        "{} {:.2}x (raw {:.2}x)",
                        if i == 1 { "issue N" } else { PAIRS[i] },
                        m(&pairs[i].lease) / m(&base[i].lease),
                        m(&pairs[i].raw) / m(&base[i].raw)
                    )
                })
                .collect();
            println!(
                "{} growth, time per lease at {size} over {first} held: {}",
                rig.name,
                g.join("; ")
            );
        }
    }
    println!("{}: load average after {}", rig.name, load_average());
}

fn main() {
    let k = Knobs::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "lease_rate: sizes {:?}, {} rounds per size; load average at start {}",
        k.sizes,
        k.rounds,
        load_average()
    );

    if env_or("LEASE_RATE_SQLITE", 1) != 0 {
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let store = SqliteStore::open(dir.path().join("leases.db"))
                .await
                .unwrap();
            let rig = Rig::new("sqlite".into(), Arc::new(store.clone()) as DynStorage).await;
            run(rig, &k).await;
            store.close().await;
        });
    }

    if env_or("LEASE_RATE_PG", 1) != 0 {
        match TestPostgres::shared() {
            Err(e) => println!("postgres: skipped ({e})"),
            Ok(pg) => rt.block_on(async {
                let store = match pg.fresh_database("lease_rate").await {
                    Ok(url) => PgStore::connect(&url).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match store {
                    Err(e) => println!("postgres: skipped ({e})"),
                    Ok(store) => {
                        let rig =
                            Rig::new("postgres".into(), Arc::new(store.clone()) as DynStorage)
                                .await;
                        run(rig, &k).await;
                        store.close().await;
                    }
                }
            }),
        }
    }
}
