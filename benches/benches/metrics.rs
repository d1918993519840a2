//! The metrics' cost on an audited read: `Handle::read` on a memory store
//! with a Prometheus recorder in place (`metrics-exporter-prometheus`, as
//! `examples/metrics.rs` installs it) against the same reads with no
//! recorder (the facade's no-op), interleaved round by round in one
//! process (the order alternates each round; the recorder is scoped to its
//! rounds with `metrics::with_local_recorder`); prints the median of the
//! paired per-round ratios with min-max, and the load average.
//!
//! `cargo bench -p strongroom-benches --bench metrics`
//! (`METRICS_BENCH_ROUNDS`, `METRICS_BENCH_OPS` to change the run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusBuilder;
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Handle, Options, SecretBytes, Strongroom};
use strongroom_benches::{DiscardSink, Figures, Target, env_or, load_average, median};

const KEYS: usize = 100;
const VALUE: usize = 32;

async fn handle(paths: &[String]) -> Handle {
    let p = SoftwareProtector::from_key(SecretBytes::new(vec![1; 32])).expect("key");
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &p, Options::default())
        .await
        .expect("init");
    let door = sr.dangerous_traced("bench").await.expect("door");
    for path in paths {
        door.secrets()
            .put(path, &[7; VALUE], None)
            .await
            .expect("put");
    }
    let log = sr
        .open_audit_log(vec![Arc::new(DiscardSink)], None)
        .await
        .expect("log");
    let rules = vec![Rule::allow("prod/*", [Capability::Read]).expect("rule")];
    let svc = Principal::new("svc", [&Policy::new("svc", rules)]);
    sr.as_principal(svc, Arc::new(log))
}

fn main() {
    let rounds = env_or("METRICS_BENCH_ROUNDS", 51).max(1);
    let ops = env_or("METRICS_BENCH_OPS", 2000).max(1);
    println!(
        "metrics bench: {rounds} interleaved rounds of {ops} Handle::read over {KEYS} secrets of {VALUE} B; load average at start: {}",
        load_average()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let paths: Vec<String> = (0..KEYS).map(|i| format!("prod/svc-{i}/db")).collect();
    let h = rt.block_on(handle(&paths));
    let recorder = PrometheusBuilder::new().build_recorder();
    let rendered = recorder.handle();

    let names = [
        "Handle::read, no recorder",
        "Handle::read, Prometheus recorder",
    ];
    let mut samples: [Vec<f64>; 2] = Default::default();
    let reads = |h: &Handle| {
        let start = Instant::now();
        rt.block_on(async {
            for i in 0..ops {
                black_box(h.read(&paths[i % KEYS]).await.expect("read"));
            }
        });
        start.elapsed().as_nanos() as f64 / ops as f64
    };
    for round in 0..rounds {
        for k in 0..2 {
            let variant = (round + k) % 2;
            let ns = if variant == 0 {
                reads(&h)
            } else {
                metrics::with_local_recorder(&recorder, || reads(&h))
            };
            samples[variant].push(ns);
        }
    }
    for (name, s) in names.iter().zip(&samples) {
        println!(
            "{name:<36} median {:>9.1} ns/read",
            median(s.clone()).unwrap_or(0.0)
        );
    }
    let text = rendered.render();
    assert!(
        text.contains("strongroom_operations_total{operation=\"read\",outcome=\"allowed\"}"),
        "the recorder saw no read"
    );
    let mut figures = Figures::new("metrics");
    let r: Vec<f64> = samples[1]
        .iter()
        .zip(&samples[0])
        .map(|(x, y)| x / y)
        .collect();
    figures.ratio(
        "read with a Prometheus recorder / without",
        "Handle::read, metrics recorded",
        names[0],
        &r,
        Some(Target::AtMost(1.15)),
    );
    figures.save();
    println!("load average at end: {}", load_average());
}
