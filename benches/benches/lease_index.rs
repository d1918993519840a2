//! The lease expiry index (`ExpiryIndex`) at 1M leases against the naive
//! `BinaryHeap` + `HashMap` index (`strongroom_benches::NaiveIndex`),
//! interleaved round by round in one process (the order alternates each
//! round); each row reports the median of the per-round ratios (compact /
//! naive) with their min-max, and the load average.
//!
//! - **bulk insert**: building each index from the same N generated leases,
//!   one insert at a time (the naive side's leases, with their owned
//!   strings, are built before its clock starts);
//! - **steady-state pop-expired**: on each index as built, pop the earliest
//!   due entry and insert a new lease, so the size stays N; the new leases
//!   are generated before the clock starts, the same ones on both sides
//!   (the naive side's as `NaiveLease`s).
//!
//! Memory per lease, 10M leases, whole-manager memory and restore time are
//! in the `lease_memory` bench.
//!
//! Run: `cargo bench -p strongroom-benches --bench lease_index`
//! (`LEASE_INDEX_N` leases, default 1000000; `LEASE_INDEX_ROUNDS`, default
//! 7; `LEASE_INDEX_OPS` pop+insert operations per side per round, default
//! 200000).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use strongroom::clock::Timestamp;
use strongroom::lease::{ExpiryIndex, LeaseId};
use strongroom_benches::{
    Item, NaiveIndex, NaiveLease, Workload, env_or, load_average, median, naive_lease,
};

fn items(seed: u64, n: usize) -> Vec<Item> {
    let mut w = Workload::new(seed);
    (0..n).map(|_| w.item()).collect()
}

fn build_ours(items: &[Item]) -> (Duration, ExpiryIndex) {
    let start = Instant::now();
    let mut ix = ExpiryIndex::new();
    for it in items {
        ix.insert(
            Timestamp::from_millis(it.expires_at),
            LeaseId::from_u128(it.id),
        );
    }
    (start.elapsed(), ix)
}

fn build_naive(items: &[Item]) -> (Duration, NaiveIndex) {
    let leases: Vec<_> = items.iter().map(naive_lease).collect();
    let start = Instant::now();
    let mut ix = NaiveIndex::default();
    for l in leases {
        ix.insert(l);
    }
    (start.elapsed(), ix)
}

fn steady_ours(ix: &mut ExpiryIndex, refill: &[Item]) -> Duration {
    let start = Instant::now();
    for it in refill {
        // Everything is due at Timestamp::MAX; the size stays constant.
        let e = ix.pop_due(Timestamp::MAX).unwrap();
        ix.insert(
            Timestamp::from_millis(it.expires_at),
            LeaseId::from_u128(it.id),
        );
        black_box(e);
    }
    start.elapsed()
}

fn steady_naive(ix: &mut NaiveIndex, refill: Vec<NaiveLease>) -> Duration {
    let start = Instant::now();
    for l in refill {
        let popped = ix.pop_due(u64::MAX).unwrap();
        ix.insert(l);
        black_box(popped);
    }
    start.elapsed()
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn report(label: &str, ours: &[f64], naive: &[f64]) {
    let ratios: Vec<f64> = ours.iter().zip(naive).map(|(a, b)| a / b).collect();
    let (lo, hi) = spread(&ratios);
    let m = |v: &[f64]| median(v.to_vec()).unwrap_or(f64::NAN);
    println!(
        "{label:<26} compact {:8.1} ns  naive {:8.1} ns  ratio {:.3} (min {lo:.3}, max {hi:.3})",
        m(ours),
        m(naive),
        m(&ratios)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let n = env_or("LEASE_INDEX_N", 1_000_000).max(1);
    let rounds = env_or("LEASE_INDEX_ROUNDS", 7).max(1);
    let ops = env_or("LEASE_INDEX_OPS", 200_000).max(1);
    println!(
        "lease_index: {n} leases, {rounds} interleaved rounds, {ops} pop+insert per side per round; load average at start {}",
        load_average()
    );
    let base = items(42, n);
    let (mut ins_ours, mut ins_naive) = (Vec::new(), Vec::new());
    let (mut pop_ours, mut pop_naive) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let refill = items(1000 + round as u64, ops);
        let naive_refill: Vec<NaiveLease> = refill.iter().map(naive_lease).collect();
        let ours_first = round % 2 == 0;

        // Bulk insert; each index is kept for the steady-state phase.
        let ((a, mut ours), (b, mut naive)) = if ours_first {
            let x = build_ours(&base);
            (x, build_naive(&base))
        } else {
            let y = build_naive(&base);
            (build_ours(&base), y)
        };
        assert_eq!((ours.len(), naive.len()), (n, n));
        ins_ours.push(a.as_nanos() as f64 / n as f64);
        ins_naive.push(b.as_nanos() as f64 / n as f64);

        let (c, d) = if ours_first {
            let c = steady_ours(&mut ours, &refill);
            (c, steady_naive(&mut naive, naive_refill))
        } else {
            let d = steady_naive(&mut naive, naive_refill);
            (steady_ours(&mut ours, &refill), d)
        };
        assert_eq!((ours.len(), naive.len()), (n, n));
        pop_ours.push(c.as_nanos() as f64 / ops as f64);
        pop_naive.push(d.as_nanos() as f64 / ops as f64);
        drop(ours);
        drop(naive);
        eprintln!(
            "round {round}: insert {:.0}/{:.0} ns, pop+insert {:.0}/{:.0} ns (compact/naive)",
            ins_ours[round], ins_naive[round], pop_ours[round], pop_naive[round]
        );
    }
    report("bulk insert, per lease:", &ins_ours, &ins_naive);
    report("pop expired + insert:", &pop_ours, &pop_naive);
    println!("lease_index: load average at end {}", load_average());
}
