//! What the barrier costs the secrets store, and what auditing costs a read.
//!
//! Before the barrier, a secret's metadata record was plain JSON: a read was
//! one storage read and a JSON decode of the metadata, then the sealed value
//! read and opened; a write checked and replaced the JSON and stored the
//! sealed value in one batch. The baseline here does exactly that work
//! against the same storage (its metadata kept in plain JSON under other
//! keys), and is measured against `SecretsStore::get`/`put` (metadata sealed
//! and authenticated through the barrier), interleaved round by round in one
//! process, on the SQLite store (the embedded default: WAL,
//! synchronous=FULL) and on the in-memory store.
//!
//! The audit's cost: `Handle::read` (policy check, audit record with the
//! value's HMAC appended to a JSON-lines file, head saved) against
//! `SecretsStore::get`, same rounds.
//!
//! Run: `cargo bench -p strongroom-benches --bench barrier`
//! (`BARRIER_BENCH_ROUNDS`, `BARRIER_BENCH_OPS`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom::audit::{FsyncPolicy, JsonlFileSink};
use strongroom::dangerous::Door;
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::seal::SealContext;
use strongroom::storage::{BatchOp, DynStorage, MemoryStorage};
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

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The pre-barrier read: plain JSON metadata, then the sealed value.
async fn baseline_get(sr: &Door, storage: &DynStorage, path: &str) -> usize {
    let raw = storage
        .get(&format!("plain-kvm/{path}"))
        .await
        .unwrap()
        .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let v = meta["current_version"].as_u64().unwrap();
    let key = format!("s/kv/{path}@{v:020}");
    let value = sr
        .get_sealed(&key, &SealContext::new(path, v))
        .await
        .unwrap()
        .unwrap();
    value.len()
}

/// The pre-barrier create: plain JSON metadata checked absent and written
/// with the sealed value in one batch.
async fn baseline_put(sr: &Door, storage: &DynStorage, path: &str, value: &[u8]) {
    let key = format!("plain-kvm/{path}");
    let current = storage.get(&key).await.unwrap();
    assert!(current.is_none());
    let meta = serde_json::json!({
        "format": 1, "current_version": 1, "created_at": 1, "updated_at": 1,
        "versions": {"1": {"created_at": 1}},
    });
    let op = sr
        .sealed_put(
            &format!("s/kv/{path}@{:020}", 1),
            value,
            &SealContext::new(path, 1),
        )
        .await
        .unwrap();
    // the same generation precondition `Strongroom::commit` adds (it
    // refuses unsealed records now, so the baseline adds it itself)
    let generation = sr.keyring_generation().unwrap();
    storage
        .batch(vec![
            BatchOp::expect(key.clone(), None),
            BatchOp::put(key, serde_json::to_vec(&meta).unwrap()),
            op,
            BatchOp::expect(
                strongroom::KEYRING_GENERATION,
                (generation > 0).then(|| generation.to_be_bytes().to_vec()),
            ),
        ])
        .await
        .unwrap();
}

async fn compare(label: &str, storage: DynStorage, rounds: usize, ops: usize) {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
    let sr = Strongroom::init(storage.clone(), &protector, Options::default())
        .await
        .unwrap()
        .dangerous_traced("bench")
        .await
        .unwrap();
    let secrets = sr.secrets();
    let value = vec![0x5a; 256];
    // the secrets both reads read: one through the store, one in the old layout
    let path = "prod/payment-svc/postgres";
    secrets.put(path, &value, None).await.unwrap();
    let plain_meta = sr
        .barrier()
        .get(&format!("kvm/{path}"))
        .await
        .unwrap()
        .unwrap();
    storage
        .put(&format!("plain-kvm/{path}"), &plain_meta)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let sink =
        JsonlFileSink::open(dir.path().join("audit.jsonl"), FsyncPolicy::OsBuffered).unwrap();
    let audit = Arc::new(sr.open_audit_log(vec![Arc::new(sink)], None).await.unwrap());
    let who = Principal::new(
        "payment-svc",
        [&Policy::new(
            "svc",
            vec![Rule::allow("prod/payment-svc/*", [Capability::Read]).unwrap()],
        )],
    );
    let handle = sr.as_principal(who, audit);

    let mut t: [Vec<Duration>; 7] = Default::default();
    for round in 0..=rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..7).collect()
        } else {
            (0..7).rev().collect()
        };
        for which in order {
            let start = Instant::now();
            for i in 0..ops {
                match which {
                    0 => {
                        secrets.get(path).await.unwrap();
                    }
                    1 => {
                        baseline_get(&sr, &storage, path).await;
                    }
                    2 => {
                        let p = format!("bench/new/r{round}/n{i}");
                        secrets.put(&p, &value, Some(0)).await.unwrap();
                    }
                    3 => {
                        let p = format!("bench/old/r{round}/n{i}");
                        baseline_put(&sr, &storage, &p, &value).await;
                    }
                    4 => {
                        handle.read(path).await.unwrap();
                    }
                    6 => {
                        let p = format!("bench/raw/r{round}/n{i}");
                        let op = sr
                            .sealed_put(&format!("s/kv/{p}@1"), &value, &SealContext::new(&p, 1))
                            .await
                            .unwrap();
                        sr.barrier()
                            .batch(vec![
                                BatchOp::expect(format!("kvm/{p}"), None),
                                BatchOp::put(format!("kvm/{p}"), b"{}".to_vec()),
                                op,
                            ])
                            .await
                            .unwrap();
                    }
                    _ => {
                        secrets.get(path).await.unwrap();
                    }
                }
            }
            if round > 0 {
                t[which].push(start.elapsed() / ops as u32);
            }
        }
    }
    let m: Vec<Duration> = t.into_iter().map(median).collect();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "{label:<7} get: barrier {:>9.1?}  pre-barrier {:>9.1?}  ratio {:.2}x",
        m[0],
        m[1],
        ratio(m[0], m[1])
    );
    println!(
        "{label:<7} put (create, 256 B): barrier {:>9.1?}  pre-barrier {:>9.1?}  ratio {:.2}x",
        m[2],
        m[3],
        ratio(m[2], m[3])
    );
    println!("{label:<7} barrier batch alone: {:>9.1?}", m[6]);
    println!(
        "{label:<7} audited read (handle, JSONL file, OS-buffered): {:>9.1?}  plain get {:>9.1?}  ratio {:.2}x  (+{:.1?} per operation)",
        m[4],
        m[5],
        ratio(m[4], m[5]),
        m[4].saturating_sub(m[5])
    );
}

fn main() {
    let rounds = env_or("BARRIER_BENCH_ROUNDS", 15);
    let ops = env_or("BARRIER_BENCH_OPS", 200);
    println!("load average before: {}", load());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        compare("memory", Arc::new(MemoryStorage::new()), rounds, ops * 5).await;
        let dir = tempfile::tempdir().unwrap();
        let sqlite = strongroom_sqlx::SqliteStore::open(dir.path().join("bench.db"))
            .await
            .unwrap();
        compare("sqlite", Arc::new(sqlite), rounds, ops).await;
    });
    println!("load average after: {}", load());
}
