//! What sharing a store between processes costs a write.
//!
//! The keyring-generation check: every sealed write commits with a
//! precondition on `sys/keyring-generation` (one more point read inside the
//! write transaction). Measured as `Strongroom::put_sealed` (the checked
//! path every store write takes) against the same sealed record written
//! with a plain `Storage::batch` (no check), interleaved round by round in
//! one process, on the SQLite store (WAL, synchronous=FULL) and on the
//! in-memory store.
//!
//! Run: `cargo bench -p strongroom-benches --bench multiprocess`
//! (`MP_BENCH_ROUNDS`, `MP_BENCH_WRITES` to change the work per round).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom::protector::SoftwareProtector;
use strongroom::seal::SealContext;
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Options, SecretBytes, Strongroom};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn compare(label: &str, storage: DynStorage, rounds: usize, writes: usize) {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
    let sr = Strongroom::init(storage.clone(), &protector, Options::default())
        .await
        .unwrap();
    let value = vec![0x5a; 1024];
    let (mut checked, mut plain) = (Vec::new(), Vec::new());
    for round in 0..rounds + 1 {
        // alternate which goes first so neither always gets the warm cache
        for which in [round % 2, 1 - round % 2] {
            let start = Instant::now();
            for i in 0..writes {
                let key = format!("s/bench/{which}/{round}/{i}");
                let ctx = SealContext::new("bench", i as u64);
                if which == 0 {
                    sr.put_sealed(&key, &value, &ctx).await.unwrap();
                } else {
                    let op = sr.sealed_put(&key, &value, &ctx).await.unwrap();
                    storage.batch(vec![op]).await.unwrap();
                }
            }
            let per = start.elapsed() / writes as u32;
            if round > 0 {
                // round 0 warms up
                if which == 0 {
                    checked.push(per)
                } else {
                    plain.push(per)
                }
            }
        }
    }
    let (c, p) = (median(checked), median(plain));
    println!(
        "{label:<8} write 1 KiB: with generation check {:>9.1?}  without {:>9.1?}  ratio {:.3}x",
        c,
        p,
        c.as_secs_f64() / p.as_secs_f64()
    );
}

fn main() {
    let rounds = env_or("MP_BENCH_ROUNDS", 15);
    let writes = env_or("MP_BENCH_WRITES", 200);
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        compare(
            "memory",
            Arc::new(MemoryStorage::new()),
            rounds,
            writes * 10,
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let sqlite = strongroom_sqlx::SqliteStore::open(dir.path().join("bench.db"))
            .await
            .unwrap();
        compare("sqlite", Arc::new(sqlite), rounds, writes).await;
    });
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at end: {}", load.trim());
    }
}
