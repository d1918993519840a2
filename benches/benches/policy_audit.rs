//! Cost of a policy check and of an audit append, beside a plain storage
//! read, measured in the same run so the overhead ratio can be reported.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let who = principal();
    let allowed = SecretPath::parse("prod/svc-23/postgres").unwrap();
    let denied = SecretPath::parse("dev/other/thing").unwrap();

    let storage = MemoryStorage::new();
    rt.block_on(storage.put("secrets/prod/svc-23/postgres/v1", &[7u8; 200]))
        .unwrap();

    let mut g = c.benchmark_group("per_operation");
    g.bench_function("storage_get_memory", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                storage
                    .get("secrets/prod/svc-23/postgres/v1")
                    .await
                    .unwrap(),
            )
        })
    });
    g.bench_function("policy_check_allowed", |b| {
        b.iter(|| authorize(black_box(&who), Capability::Read, black_box(&allowed)).is_ok())
    });
    g.bench_function("policy_check_denied", |b| {
        b.iter(|| authorize(black_box(&who), Capability::Read, black_box(&denied)).is_err())
    });
    g.bench_function("secret_path_parse", |b| {
        b.iter(|| SecretPath::parse(black_box("prod/svc-23/postgres")).unwrap())
    });

    let key = SecretBytes::new(vec![1u8; 32]);
    let null_log =
        AuditLog::new(key.clone(), vec![Arc::new(NullSink)], Arc::new(SystemClock)).unwrap();
    let event = AuditEvent::new("payment-svc", Operation::Read, "req-0123456789abcdef")
        .with_path("prod/svc-23/postgres")
        .with_version(3);
    g.bench_function("audit_append_null_sink", |b| {
        b.to_async(&rt)
            .iter(|| async { null_log.append(event.clone()).await.unwrap() })
    });

    let path = std::env::temp_dir().join(format!("strongroom-bench-{}.jsonl", std::process::id()));
    let file = JsonlFileSink::open(&path, FsyncPolicy::OsBuffered).unwrap();
    let file_log = AuditLog::new(key, vec![Arc::new(file)], Arc::new(SystemClock)).unwrap();
    g.bench_function("audit_append_file_os_buffered", |b| {
        b.to_async(&rt)
            .iter(|| async { file_log.append(event.clone()).await.unwrap() })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);

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
    let mut g = c.benchmark_group("policy/check");
    g.bench_function("plain-store-read", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.get("prod/svc-23/postgres").await.unwrap()) })
    });
    g.bench_function("strongroom-read-with-policy-and-audit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(handle.read("prod/svc-23/postgres").await.unwrap()) })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
