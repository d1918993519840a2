//! The secrets store's read cache: a hit of `SecretsStore::get_shared` and
//! of `SecretsStore::get`, and a miss of `get` (memory store), against a
//! std `HashMap` get plus an `Arc` clone of the same value (the issue's
//! baseline, SipHash), and against the same map hashed with foldhash as the
//! cache's own map is, interleaved round by round in one process (the order
//! rotates each round); prints the median of the paired per-round ratios
//! with min-max, and the load average.
//!
//! Then hits from several threads at once (`CACHE_BENCH_THREADS`, default
//! 4, more than this machine's two cores): every thread reads the one
//! cached store, against the same threads reading one shared `HashMap`
//! with no lock at all (the floor), the two alternating round by round;
//! the figure is the time per read over all threads.
//!
//! `cargo bench -p strongroom-benches --bench cache`
//! (`CACHE_BENCH_ROUNDS`, `CACHE_BENCH_OPS` to change the run;
//! `CACHE_BENCH_ONLY=N` runs variant N alone, for a profiler).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use strongroom::protector::SoftwareProtector;
use strongroom::secrets::{CacheOptions, SecretsOptions};
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_benches::{Figures, Target, env_or, load_average, median};

const KEYS: usize = 100;
const VALUE: usize = 32;

fn main() {
    let rounds = env_or("CACHE_BENCH_ROUNDS", 101).max(1);
    let ops = env_or("CACHE_BENCH_OPS", 2000).max(1);
    println!(
        "cache bench: {rounds} interleaved rounds of {ops} reads over {KEYS} secrets of {VALUE} B; load average at start: {}",
        load_average()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let paths: Vec<String> = (0..KEYS).map(|i| format!("prod/svc-{i}/db")).collect();
    let (cached, plain) = rt.block_on(async {
        let p = SoftwareProtector::from_key(SecretBytes::new(vec![1; 32])).expect("key");
        let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &p, Options::default())
            .await
            .expect("init")
            .dangerous_traced("bench")
            .await
            .expect("door");
        let plain = sr.secrets();
        for path in &paths {
            plain.put(path, &[7; VALUE], None).await.expect("put");
        }
        let cached = sr.secrets_with(SecretsOptions::default().with_cache(CacheOptions::default()));
        (cached, plain)
    });
    let map: HashMap<String, Arc<Vec<u8>>> = paths
        .iter()
        .map(|p| (p.clone(), Arc::new(vec![7; VALUE])))
        .collect();
    // The same map hashed as the cache's own map is (foldhash).
    let fold: HashMap<String, Arc<Vec<u8>>, foldhash::quality::RandomState> = paths
        .iter()
        .map(|p| (p.clone(), Arc::new(vec![7; VALUE])))
        .collect();

    // ns per read, one sample per variant per round
    let mut samples: [Vec<f64>; 5] = Default::default();
    let names = [
        "HashMap get + Arc clone",
        "cache hit, get",
        "cache miss (no cache), get",
        "cache hit, get_shared",
        "HashMap (foldhash) + Arc",
    ];
    // `CACHE_BENCH_ONLY=N` runs variant N alone (for profiling).
    let only = std::env::var("CACHE_BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    for round in 0..rounds {
        for k in 0..5 {
            let variant = (round + k) % 5;
            if only.is_some_and(|o| o != variant) {
                continue;
            }
            let start = Instant::now();
            match variant {
                0 => {
                    for i in 0..ops {
                        black_box(map.get(black_box(paths[i % KEYS].as_str())).map(Arc::clone));
                    }
                }
                1 => rt.block_on(async {
                    for i in 0..ops {
                        black_box(cached.get(&paths[i % KEYS]).await.expect("get"));
                    }
                }),
                2 => rt.block_on(async {
                    for i in 0..ops {
                        black_box(plain.get(&paths[i % KEYS]).await.expect("get"));
                    }
                }),
                3 => rt.block_on(async {
                    for i in 0..ops {
                        black_box(cached.get_shared(&paths[i % KEYS]).await.expect("get"));
                    }
                }),
                _ => {
                    for i in 0..ops {
                        black_box(
                            fold.get(black_box(paths[i % KEYS].as_str()))
                                .map(Arc::clone),
                        );
                    }
                }
            }
            samples[variant].push(start.elapsed().as_nanos() as f64 / ops as f64);
        }
    }
    for (name, s) in names.iter().zip(&samples) {
        println!(
            "{name:<26} median {:>9.1} ns/read",
            median(s.clone()).unwrap_or(0.0)
        );
    }
    let mut figures = Figures::new("cache");
    let mut ratio = |a: usize, b: usize, label: &str, api: &str, target: Option<Target>| {
        let r: Vec<f64> = samples[a]
            .iter()
            .zip(&samples[b])
            .map(|(x, y)| x / y)
            .collect();
        figures.ratio(label, api, names[b], &r, target);
    };
    ratio(
        3,
        0,
        "cache hit (get_shared) / HashMap+Arc",
        "SecretsStore::get_shared, cache on",
        Some(Target::AtMost(2.0)),
    );
    ratio(
        3,
        4,
        "cache hit (get_shared) / foldhash map",
        "SecretsStore::get_shared, cache on",
        None,
    );
    ratio(
        1,
        0,
        "cache hit (get) / HashMap+Arc",
        "SecretsStore::get, cache on",
        None,
    );
    ratio(
        2,
        0,
        "cache miss / HashMap+Arc",
        "SecretsStore::get, cache off",
        None,
    );
    ratio(2, 1, "cache miss / cache hit", "SecretsStore::get", None);

    let threads = env_or("CACHE_BENCH_THREADS", 4).max(1);
    let per_thread = ops * 25;
    let shared = &map;
    let (cached_ref, paths_ref) = (&cached, &paths);
    // [shared map, cache hits], ns per read over all threads
    let mut contended: [Vec<f64>; 2] = Default::default();
    for round in 0..rounds {
        for k in 0..2 {
            let variant = (round + k) % 2;
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    s.spawn(move || {
                        let path = |i: usize| paths_ref[(i + t) % KEYS].as_str();
                        if variant == 0 {
                            for i in 0..per_thread {
                                black_box(shared.get(black_box(path(i))).map(Arc::clone));
                            }
                            return;
                        }
                        // Each thread's own runtime, built inside the
                        // timed part (about 1% of it, charged to the
                        // cache's side).
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("runtime");
                        rt.block_on(async {
                            for i in 0..per_thread {
                                black_box(cached_ref.get_shared(path(i)).await.expect("get"));
                            }
                        });
                    });
                }
            });
            contended[variant]
                .push(start.elapsed().as_nanos() as f64 / (per_thread * threads) as f64);
        }
    }
    println!(
        "{threads} threads: shared HashMap (no lock) median {:.1} ns/read, cache hit (get_shared) {:.1} ns/read",
        median(contended[0].clone()).unwrap_or(0.0),
        median(contended[1].clone()).unwrap_or(0.0)
    );
    let r: Vec<f64> = contended[1]
        .iter()
        .zip(&contended[0])
        .map(|(x, y)| x / y)
        .collect();
    figures.ratio(
        &format!("cache hit (get_shared), {threads} threads / shared HashMap+Arc, no lock"),
        "SecretsStore::get_shared, cache on, several threads",
        "HashMap get + Arc clone, shared by the threads, no lock",
        &r,
        None,
    );
    figures.save();
    let stats = cached.cache_stats().unwrap_or_default();
    println!(
        "cache stats: {} hits, {} misses; load average at end: {}",
        stats.hits,
        stats.misses,
        load_average()
    );
}
