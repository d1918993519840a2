//! Lease index figures at 1M and 10M leases, each next to the naive
//! `BinaryHeap` + `HashMap` index measured in the same run:
//!
//! - memory per lease (bytes requested from the allocator, counted by a
//!   counting global allocator);
//! - insert cost and pop-expired cost;
//! - restore time of 1M leases through `LeaseManager::restore` over a
//!   `MemoryStorage`, against a plain decode loop of the same records
//!   (lease records are sealed: restore and the naive restore open each
//!   record they read through the store's barrier; the plain decode loop
//!   decodes records opened beforehand).
//!
//! Run: `cargo bench -p strongroom-benches --bench lease_memory`
//! (`LEASE_BENCH_SIZES=1000000` to skip the 10M run).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{ExpiryIndex, Lease, LeaseConfig, LeaseId, LeaseManager, Revoker};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_benches::{NaiveIndex, T0, Workload, naive_lease, path_of};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn net_bytes(region: &Region<'_, System>) -> i64 {
    let s = region.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn index_figures(n: usize) {
    let mut w = Workload::new(42);
    let items: Vec<_> = (0..n).map(|_| w.item()).collect();
    let half = T0 + 43_200_000;

    // The compact index.
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    let mut ours = ExpiryIndex::new();
    for it in &items {
        ours.insert(
            Timestamp::from_millis(it.expires_at),
            LeaseId::from_u128(it.id),
        );
    }
    let ours_insert = start.elapsed();
    let ours_bytes = net_bytes(&region);
    let start = Instant::now();
    let mut ours_popped = 0usize;
    while let Some(e) = ours.pop_due(Timestamp::from_millis(half)) {
        black_box(e);
        ours_popped += 1;
    }
    let ours_pop = start.elapsed();
    drop(ours);

    // The naive index, leases built beforehand (their strings are counted,
    // since the index owns them once inserted).
    let region = Region::new(GLOBAL);
    let leases: Vec<_> = items.iter().map(naive_lease).collect();
    let start = Instant::now();
    let mut naive = NaiveIndex::default();
    for l in leases {
        naive.insert(l);
    }
    let naive_insert = start.elapsed();
    let naive_bytes = net_bytes(&region);
    let start = Instant::now();
    let mut naive_popped = 0usize;
    while let Some(l) = naive.pop_due(half) {
        black_box(l);
        naive_popped += 1;
    }
    let naive_pop = start.elapsed();
    assert_eq!(ours_popped, naive_popped);
    drop(naive);

    let per_ours = ours_bytes as f64 / n as f64;
    let per_naive = naive_bytes as f64 / n as f64;
    println!("== lease index, {n} leases ==");
    println!(
        "memory per lease:  compact {per_ours:8.1} B   naive {per_naive:8.1} B   ratio {:.3}",
        per_ours / per_naive
    );
    println!(
        "insert:            compact {:8.1} ns  naive {:8.1} ns  ratio {:.3}  (compact {:.2} M/s)",
        ns_per(ours_insert, n),
        ns_per(naive_insert, n),
        ours_insert.as_secs_f64() / naive_insert.as_secs_f64(),
        n as f64 / ours_insert.as_secs_f64() / 1e6
    );
    println!(
        "pop expired:       compact {:8.1} ns  naive {:8.1} ns  ratio {:.3}  ({ours_popped} popped)",
        ns_per(ours_pop, ours_popped),
        ns_per(naive_pop, naive_popped),
        ours_pop.as_secs_f64() / naive_pop.as_secs_f64()
    );
}

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

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn restore_figures(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
    let store = rt
        .block_on(Strongroom::init(
            Arc::new(MemoryStorage::new()),
            &protector,
            Options::default(),
        ))
        .unwrap();
    let store = rt.block_on(store.dangerous_traced("bench")).unwrap();
    // What the lease manager reads and writes: records opened on the way in.
    let storage: DynStorage = store.barrier();
    let issuer = manager(&store, &clock, Duration::from_secs(600));
    let mut w = Workload::new(7);
    let start = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            let it = w.item();
            let ttl = Duration::from_millis(it.expires_at - T0);
            let data = format!("sr_{:024x}", it.id >> 32).into_bytes();
            issuer
                .issue(&path_of(it.path), "postgres", ttl, ttl, true, data)
                .await
                .unwrap();
        }
    });
    let issue_time = start.elapsed();
    drop(issuer);

    let records: Vec<Vec<u8>> = rt.block_on(async {
        let mut after: Option<String> = None;
        let mut records = Vec::new();
        loop {
            let page = storage
                .scan("lease/", after.as_deref(), 4096)
                .await
                .unwrap();
            after = page.last().map(|(k, _)| k.clone());
            let last_page = page.len() < 4096;
            records.extend(page.into_iter().map(|(_, v)| v));
            if last_page {
                return records;
            }
        }
    });
    assert_eq!(records.len(), n);

    let (decode, decoded) = best_of(3, || {
        let mut ok = 0usize;
        for r in &records {
            ok += usize::from(black_box(Lease::from_record_bytes(r)).is_ok());
        }
        ok
    });
    assert_eq!(decoded, n);

    let (scan_only, scanned) = best_of(3, || {
        rt.block_on(async {
            let mut after: Option<String> = None;
            let mut count = 0usize;
            loop {
                let page = storage
                    .scan("lease-due/", after.as_deref(), 4096)
                    .await
                    .unwrap();
                count += page.len();
                if page.len() < 4096 {
                    return count;
                }
                after = page.last().map(|(k, _)| k.clone());
            }
        })
    });
    assert!(
        scanned > 0 && scanned < n,
        "packed index segments: {scanned}"
    );

    // What a load-everything restart costs: scan every record and decode it.
    let (naive_restore, naive_loaded) = best_of(3, || {
        rt.block_on(async {
            let mut after: Option<String> = None;
            let mut leases = Vec::new();
            loop {
                let page = storage
                    .scan("lease/", after.as_deref(), 4096)
                    .await
                    .unwrap();
                for (_, v) in &page {
                    leases.push(Lease::from_record_bytes(v).unwrap());
                }
                if page.len() < 4096 {
                    return leases.len();
                }
                after = page.last().map(|(k, _)| k.clone());
            }
        })
    });
    assert_eq!(naive_loaded, n);

    let (restore_all, loaded) = best_of(3, || {
        let m = manager(&store, &clock, Duration::from_secs(3 * 86_400));
        let stats = rt.block_on(m.restore()).unwrap();
        black_box(&m);
        stats.loaded
    });
    assert_eq!(loaded, n);

    let (restore_horizon, loaded_soon) = best_of(3, || {
        let m = manager(&store, &clock, Duration::from_secs(600));
        rt.block_on(m.restore()).unwrap().loaded
    });

    println!("== restore, {n} leases in MemoryStorage ==");
    println!(
        "issue through LeaseManager::issue: {:.1} us/lease",
        issue_time.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "plain decode of {n} records:       {:8.1} ms ({:.1} ns/record)",
        decode.as_secs_f64() * 1e3,
        ns_per(decode, n)
    );
    println!(
        "(storage scan of the {scanned} index segments alone: {:.1} ms)",
        scan_only.as_secs_f64() * 1e3
    );
    println!(
        "restore, all {n} due in horizon:   {:8.1} ms  ratio to plain decode {:.3}",
        restore_all.as_secs_f64() * 1e3,
        restore_all.as_secs_f64() / decode.as_secs_f64()
    );
    println!(
        "naive restore (scan + decode every record): {:8.1} ms  restore-all / naive {:.3}",
        naive_restore.as_secs_f64() * 1e3,
        restore_all.as_secs_f64() / naive_restore.as_secs_f64()
    );
    println!(
        "restore, 10 min horizon ({loaded_soon} due): {:8.1} ms  ratio to plain decode {:.3}",
        restore_horizon.as_secs_f64() * 1e3,
        restore_horizon.as_secs_f64() / decode.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let sizes: Vec<usize> = std::env::var("LEASE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    for n in sizes {
        index_figures(n);
    }
    let restore_n = std::env::var("LEASE_BENCH_RESTORE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    restore_figures(restore_n);
}
