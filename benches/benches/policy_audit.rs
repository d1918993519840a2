//! Cost of a policy check and of an audit append, beside a plain storage
//! read, and the whole cost of a read through a principal's handle (path,
//! policy check, the read, an audit record to a discarding sink) against
//! the same `SecretsStore::get` without them. Every variant runs one sample
//! of `POLICY_BENCH_OPS` operations per round, in an order that rotates
//! from round to round, all in one process; each figure is the median of
//! the per-round ratios against the plain memory-store read (or, for the
//! handle, against the plain secrets read), with min-max and the load
//! average.
//!
//! `cargo bench -p strongroom-benches --bench policy_audit`
//! (`POLICY_BENCH_ROUNDS`, default 101; `POLICY_BENCH_OPS`, default 2000).

use std::hint::black_box;
use std::sync::Arc;

use std::time::Instant;

use strongroom::SecretBytes;
use strongroom::audit::{
    AuditError, AuditEvent, AuditLog, AuditRecord, AuditSink, FsyncPolicy, JsonlFileSink, Operation,
};
use strongroom::clock::SystemClock;
use strongroom::path::SecretPath;
use strongroom::policy::{Capability, Policy, Principal, Rule, authorize};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{MemoryStorage, Storage};
use strongroom::{Options, Strongroom};
use strongroom_benches::{Figures, env_or, load_average, median};

/// Discards records: isolates the chaining and encoding cost.
#[derive(Debug)]
struct NullSink;

#[async_trait::async_trait]
impl AuditSink for NullSink {
    fn name(&self) -> &str {
        "null"
    }
    async fn write(&self, _r: &AuditRecord, line: &str) -> Result<(), AuditError> {
        black_box(line);
        Ok(())
    }
}

/// A principal with a realistic policy: 40 services' rules, globs, `+`
/// wildcards and denies.
fn principal() -> Principal {
    let mut rules = Vec::new();
    for i in 0..40 {
        rules.push(
            Rule::allow(
                &format!("prod/svc-{i}/*"),
                [Capability::Read, Capability::List],
            )
            .unwrap(),
        );
        rules.push(Rule::allow(&format!("staging/svc-{i}/db"), [Capability::Read]).unwrap());
    }
    rules.push(Rule::allow("+/shared/*", [Capability::Read]).unwrap());
    rules.push(Rule::deny("prod/svc-7/admin/*").unwrap());
    rules.push(Rule::deny("prod/+/root").unwrap());
    Principal::new("payment-svc", [&Policy::new("bench", rules)])
}

/// The variants, in their index order.
const NAMES: [&str; 8] = [
    "Storage::get (memory)",
    "policy check, allowed",
    "policy check, denied",
    "SecretPath::parse",
    "audit append, null sink",
    "audit append, file (OS-buffered)",
    "SecretsStore::get (door, memory)",
    "Handle::read (policy + audit)",
];

fn main() {
    let rounds = env_or("POLICY_BENCH_ROUNDS", 101).max(1);
    let ops = env_or("POLICY_BENCH_OPS", 2000).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut figures = Figures::new("policy_audit");
    println!(
        "policy_audit bench: {rounds} interleaved rounds of {ops} operations per variant; load average at start: {}",
        load_average()
    );
    let who = principal();
    let allowed = SecretPath::parse("prod/svc-23/postgres").unwrap();
    let denied = SecretPath::parse("dev/other/thing").unwrap();

    let storage = MemoryStorage::new();
    rt.block_on(storage.put("secrets/prod/svc-23/postgres/v1", &[7u8; 200]))
        .unwrap();

    let key = SecretBytes::new(vec![1u8; 32]);
    let null_log =
        AuditLog::new(key.clone(), vec![Arc::new(NullSink)], Arc::new(SystemClock)).unwrap();
    let event = AuditEvent::new("payment-svc", Operation::Read, "req-0123456789abcdef")
        .with_path("prod/svc-23/postgres")
        .with_version(3);
    let path = std::env::temp_dir().join(format!("strongroom-bench-{}.jsonl", std::process::id()));
    let file = JsonlFileSink::open(&path, FsyncPolicy::OsBuffered).unwrap();
    let file_log = AuditLog::new(key, vec![Arc::new(file)], Arc::new(SystemClock)).unwrap();

    // A plain secrets-store read against the same read through a
    // principal-bound handle: canonical path, policy check, the same
    // `SecretsStore::get`, an audit append (HMAC of the value, chain MAC,
    // JSON encoding) to a discarding sink, and the saved audit head.
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![9u8; 32])).unwrap();
    let sr = rt
        .block_on(Strongroom::init(
            Arc::new(MemoryStorage::new()),
            &protector,
            Options::default(),
        ))
        .unwrap();
    let sr = rt.block_on(sr.dangerous_traced("bench")).unwrap();
    let store = sr.secrets();
    rt.block_on(store.put("prod/svc-23/postgres", &[7u8; 32], None))
        .unwrap();
    let log = rt
        .block_on(sr.open_audit_log(vec![Arc::new(NullSink)], None))
        .unwrap();
    let handle = sr.as_principal(who.clone(), Arc::new(log));

    let mut samples: [Vec<f64>; NAMES.len()] = Default::default();
    for round in 0..rounds {
        for k in 0..NAMES.len() {
            let variant = (round + k) % NAMES.len();
            let start = Instant::now();
            match variant {
                0 => rt.block_on(async {
                    for _ in 0..ops {
                        black_box(
                            storage
                                .get("secrets/prod/svc-23/postgres/v1")
                                .await
                                .unwrap(),
                        );
                    }
                }),
                1 => {
                    for _ in 0..ops {
                        black_box(
                            authorize(black_box(&who), Capability::Read, black_box(&allowed))
                                .is_ok(),
                        );
                    }
                }
                2 => {
                    for _ in 0..ops {
                        black_box(
                            authorize(black_box(&who), Capability::Read, black_box(&denied))
                                .is_err(),
                        );
                    }
                }
                3 => {
                    for _ in 0..ops {
                        black_box(SecretPath::parse(black_box("prod/svc-23/postgres")).unwrap());
                    }
                }
                4 => rt.block_on(async {
                    for _ in 0..ops {
                        null_log.append(event.clone()).await.unwrap();
                    }
                }),
                5 => rt.block_on(async {
                    for _ in 0..ops {
                        file_log.append(event.clone()).await.unwrap();
                    }
                }),
                6 => rt.block_on(async {
                    for _ in 0..ops {
                        black_box(store.get("prod/svc-23/postgres").await.unwrap());
                    }
                }),
                _ => rt.block_on(async {
                    for _ in 0..ops {
                        black_box(handle.read("prod/svc-23/postgres").await.unwrap());
                    }
                }),
            }
            samples[variant].push(start.elapsed().as_nanos() as f64 / ops as f64);
        }
    }
    let _ = std::fs::remove_file(&path);
    for (name, s) in NAMES.iter().zip(&samples) {
        println!(
            "{name:<34} median {:>9.1} ns/op",
            median(s.clone()).unwrap_or(f64::NAN)
        );
    }
    let ratios = |a: usize, b: usize| -> Vec<f64> {
        samples[a]
            .iter()
            .zip(&samples[b])
            .map(|(x, y)| x / y)
            .collect()
    };
    for (v, name) in NAMES.iter().enumerate().take(6).skip(1) {
        figures.ratio(
            &format!("{name} / {}", NAMES[0]),
            name,
            NAMES[0],
            &ratios(v, 0),
            None,
        );
    }
    figures.ratio(
        "read through a principal / plain secrets read",
        "Handle::read (policy check + audit record, null sink)",
        "Door::secrets().get on the same store",
        &ratios(7, 6),
        None,
    );
    figures.save();
}
