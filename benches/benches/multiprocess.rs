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
//! Lease expiry throughput: `LEASES` due leases on one SQLite file revoked
//! by 1 lease manager against 4 managers (each with its own store instance
//! and connections, sharing the work through atomic claims), alternating
//! round by round.
//!
//! Run: `cargo bench -p strongroom-benches --bench multiprocess`
//! (`MP_BENCH_ROUNDS`, `MP_BENCH_WRITES`, `MP_BENCH_LEASES` to change the
//! work per round).
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
        .unwrap()
        .dangerous_traced("bench")
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

/// Counts revocations.
#[derive(Debug, Default)]
struct Count(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl strongroom::lease::Revoker for Count {
    async fn revoke(&self, _lease: &strongroom::lease::Lease) -> strongroom::Result<()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Seconds to revoke `leases` due leases with `managers` managers.
async fn expire_with(managers: usize, leases: usize) -> (Duration, usize) {
    use strongroom::clock::{ManualClock, Timestamp};
    use strongroom::lease::{LeaseConfig, LeaseRequest};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leases.db");
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let count = Arc::new(Count::default());
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
    let open = || async {
        let s: DynStorage = Arc::new(strongroom_sqlx::SqliteStore::open(&file).await.unwrap());
        let sr = if Strongroom::is_initialized(&s).await.unwrap() {
            Strongroom::unseal(s, &protector, Options::default()).await
        } else {
            Strongroom::init(s, &protector, Options::default()).await
        }
        .unwrap()
        .dangerous_traced("bench")
        .await
        .unwrap();
        let m = sr
            .lease_manager(clock.clone(), LeaseConfig::default())
            .unwrap();
        m.register_revoker("bench", count.clone());
        m
    };
    let setup = open().await;
    for chunk in 0..leases.div_ceil(1000) {
        let n = 1000.min(leases - chunk * 1000);
        let reqs = (0..n)
            .map(|i| {
                LeaseRequest::new(
                    format!("bench/creds/{chunk}-{i}"),
                    "bench",
                    Duration::from_secs(60),
                    Duration::from_secs(60),
                )
            })
            .collect();
        setup.issue_batch(reqs).await.unwrap();
    }
    drop(setup);
    clock.advance(Duration::from_secs(61));
    let mut members = Vec::new();
    for _ in 0..managers {
        let m = open().await;
        m.restore().await.unwrap();
        members.push(Arc::new(m));
    }
    let start = Instant::now();
    let tasks: Vec<_> = members
        .iter()
        .map(|m| {
            let (m, count) = (m.clone(), count.clone());
            tokio::spawn(async move {
                while count.0.load(std::sync::atomic::Ordering::Relaxed) < leases {
                    let r = m.run_due().await.unwrap();
                    if r.revoked == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (
        start.elapsed(),
        count.0.load(std::sync::atomic::Ordering::Relaxed),
    )
}

async fn lease_expiry(rounds: usize, leases: usize) {
    let (mut one, mut four) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for managers in if round % 2 == 0 { [1, 4] } else { [4, 1] } {
            let (d, revoked) = expire_with(managers, leases).await;
            assert!(revoked >= leases);
            if managers == 1 {
                one.push(d)
            } else {
                four.push(d)
            }
        }
    }
    let (a, b) = (median(one), median(four));
    let rate = |d: Duration| leases as f64 / d.as_secs_f64();
    println!(
        "sqlite   lease expiry, {leases} due leases: 1 manager {:>8.0}/s  4 managers {:>8.0}/s  ratio {:.2}x (duplicates: none possible without crashes; asserted in the chaos tests)",
        rate(a),
        rate(b),
        rate(b) / rate(a)
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
        lease_expiry(rounds.min(6), env_or("MP_BENCH_LEASES", 3000)).await;
    });
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at end: {}", load.trim());
    }
}
