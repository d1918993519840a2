//! Sealing and opening through Strongroom against raw `ring` in the same run.
//!
//! Baselines: `ring/in-place` seals in place with a counter nonce (the
//! cheapest possible AEAD call), `ring/fresh-nonce` adds an OS-random nonce
//! per call (what naive code does). Strongroom includes its header, the
//! associated-data context, the keyring lookup, the encryption count and its
//! pooled random nonce. `benches/report.py` prints the ratios.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use strongroom::protector::SoftwareProtector;
use strongroom::seal::{HEADER_LEN, SealContext, seal_buffer};
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};

const SIZES: &[(usize, &str)] = &[
    (32, "32B"),
    (1024, "1KiB"),
    (64 * 1024, "64KiB"),
    (1024 * 1024, "1MiB"),
];

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let sr = rt.block_on(async {
        let p = SoftwareProtector::from_key(SecretBytes::new(vec![1; 32])).expect("key");
        Strongroom::init(Arc::new(MemoryStorage::new()), &p, Options::default())
            .await
            .expect("init")
    });
    let ring_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[1; 32]).expect("key"));
    let rng = SystemRandom::new();
    let ctx = SealContext::new("prod/payment-svc/postgres", 7);
    let aad = [0u8; 64];

    for &(size, name) in SIZES {
        let mut g = c.benchmark_group(format!("seal/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut counter = 0u64;
        let mut buf = vec![0xA5u8; size];
        g.bench_function("ring-in-place", |b| {
            b.iter(|| {
                counter += 1;
                let mut n = [0u8; 12];
                n[4..].copy_from_slice(&counter.to_be_bytes());
                let tag = ring_key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(n),
                        Aad::from(&aad[..]),
                        &mut buf,
                    )
                    .expect("seal");
                let _ = black_box(tag);
            })
        });
        g.bench_function("ring-fresh-nonce", |b| {
            b.iter(|| {
                let mut n = [0u8; 12];
                rng.fill(&mut n).expect("rng");
                let tag = ring_key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(n),
                        Aad::from(&aad[..]),
                        &mut buf,
                    )
                    .expect("seal");
                let _ = black_box(tag);
            })
        });
        if size <= 1024 {
            let plaintext = vec![0xA5u8; size];
            g.bench_function("strongroom", |b| {
                b.to_async(&rt).iter(|| async {
                    black_box(sr.seal_value(&plaintext, &ctx).await.expect("seal"))
                })
            });
        }
        let mut sbuf = seal_buffer(size);
        sbuf.resize(HEADER_LEN + size, 0xA5);
        g.bench_function("strongroom-in-place", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        sbuf.truncate(HEADER_LEN + size);
                        sr.seal_value_in_place(&mut sbuf, &ctx).await.expect("seal");
                    }
                    start.elapsed()
                })
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("open/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut ring_sealed = vec![0x5Au8; size];
        let n = [9u8; 12];
        let tag = ring_key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(n),
                Aad::from(&aad[..]),
                &mut ring_sealed,
            )
            .expect("seal");
        ring_sealed.extend_from_slice(tag.as_ref());
        g.bench_function("ring-in-place", |b| {
            b.iter_batched_ref(
                || ring_sealed.clone(),
                |c| {
                    let pt = ring_key
                        .open_in_place(Nonce::assume_unique_for_key(n), Aad::from(&aad[..]), c)
                        .expect("open");
                    black_box(pt.len());
                },
                BatchSize::LargeInput,
            )
        });
        let sealed = rt
            .block_on(sr.seal_value(&vec![0x5Au8; size], &ctx))
            .expect("seal");
        g.bench_function("strongroom-in-place", |b| {
            b.iter_batched_ref(
                || sealed.as_bytes().to_vec(),
                |c| {
                    let pt = sr.open_value_in_place(c, &ctx).expect("open");
                    black_box(pt.len());
                },
                BatchSize::LargeInput,
            )
        });
        if size <= 1024 {
            g.bench_function("strongroom", |b| {
                b.iter(|| black_box(sr.open_value(&sealed, &ctx).expect("open")))
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
