//! Criterion benchmarks of the lease expiry index at 1M leases, against the
//! naive `BinaryHeap` + `HashMap` index: bulk insert, and steady-state
//! pop-expired (pop the earliest due lease and insert a new one). Memory per
//! lease, 10M leases and restore time are in the `lease_memory` bench.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strongroom::clock::Timestamp;
use strongroom::lease::{ExpiryIndex, LeaseId};
use strongroom_benches::{Item, NaiveIndex, Workload, naive_lease};

const N: usize = 1_000_000;

fn items(n: usize) -> Vec<Item> {
    let mut w = Workload::new(42);
    (0..n).map(|_| w.item()).collect()
}

fn build_ours(items: &[Item]) -> ExpiryIndex {
    let mut ix = ExpiryIndex::new();
    for it in items {
        ix.insert(
            Timestamp::from_millis(it.expires_at),
            LeaseId::from_u128(it.id),
        );
    }
    ix
}

fn insert(c: &mut Criterion) {
    let items = items(N);
    let mut g = c.benchmark_group("lease_index_insert_1m");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("compact", |b| b.iter(|| black_box(build_ours(&items))));
    g.bench_function("naive", |b| {
        b.iter_batched(
            || items.iter().map(naive_lease).collect::<Vec<_>>(),
            |leases| {
                let mut ix = NaiveIndex::default();
                for l in leases {
                    ix.insert(l);
                }
                ix
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn pop_expired(c: &mut Criterion) {
    let items = items(N);
    let mut g = c.benchmark_group("lease_index_pop_expired_1m");
    g.throughput(Throughput::Elements(1));

    let mut ours = build_ours(&items);
    let mut w = Workload::new(9);
    g.bench_function("compact", |b| {
        b.iter(|| {
            // Everything is due at u64::MAX; keep the size constant.
            let e = ours.pop_due(Timestamp::MAX).unwrap();
            let it = w.item();
            ours.insert(
                Timestamp::from_millis(it.expires_at),
                LeaseId::from_u128(it.id),
            );
            black_box(e)
        })
    });

    let mut naive = NaiveIndex::default();
    for it in &items {
        naive.insert(naive_lease(it));
    }
    let mut w = Workload::new(9);
    g.bench_function("naive", |b| {
        b.iter(|| {
            let l = naive.pop_due(u64::MAX).unwrap();
            naive.insert(naive_lease(&w.item()));
            black_box(l)
        })
    });
    g.finish();
}

criterion_group!(benches, insert, pop_expired);
criterion_main!(benches);
