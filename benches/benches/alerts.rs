//! The alert engine's cost on an audited read: `Handle::read` on a memory
//! store whose audit log has the engine attached (every rule enabled)
//! against the same read on an identical store without it, interleaved
//! round by round in one process (the order alternates each round); prints
//! the median of the paired per-round ratios with min-max, and the load
//! average.
//!
//! `cargo bench -p strongroom-benches --bench alerts`
//! (`ALERTS_BENCH_ROUNDS`, `ALERTS_BENCH_OPS` to change the run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use strongroom::alerts::{
    AlertConfig, AlertEngine, HourRange, OffHoursRule, Schedule, SensitiveReadRule,
    TracingAlertSink,
};
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Handle, Options, SecretBytes, Strongroom};
use strongroom_benches::{DiscardSink, Figures, Target, env_or, load_average, median};

const KEYS: usize = 100;
const VALUE: usize = 32;

/// A store with `KEYS` secrets and a handle of one principal allowed to
/// read them, its audit log observed by `engine` if given.
async fn handle(paths: &[String], engine: Option<&AlertEngine>) -> Handle {
    let p = SoftwareProtector::from_key(SecretBytes::new(vec![1; 32])).expect("key");
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &p, Options::default())
        .await
        .expect("init")
        .dangerous_traced("bench")
        .await
        .expect("door");
    let plain = sr.secrets();
    for path in paths {
        plain.put(path, &[7; VALUE], None).await.expect("put");
    }
    let log = sr
        .open_audit_log(vec![Arc::new(DiscardSink)], None)
        .await
        .expect("log");
    let log = match engine {
        Some(e) => e.attach(log),
        None => log,
    };
    let rules = vec![Rule::allow("prod/*", [Capability::Read]).expect("rule")];
    let svc = Principal::new("svc", [&Policy::new("svc", rules)]);
    sr.as_principal(svc, Arc::new(log))
}

fn main() {
    let rounds = env_or("ALERTS_BENCH_ROUNDS", 51).max(1);
    let ops = env_or("ALERTS_BENCH_OPS", 2000).max(1);
    println!(
        "alerts bench: {rounds} interleaved rounds of {ops} Handle::read over {KEYS} secrets of {VALUE} B; load average at start: {}",
        load_average()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let paths: Vec<String> = (0..KEYS).map(|i| format!("prod/svc-{i}/db")).collect();
    let (engine, plain, observed) = rt.block_on(async {
        // Every rule runs on every read; none matches this traffic but the
        // rate rule (at most once per window).
        let config = AlertConfig::default()
            .with_sensitive_read(SensitiveReadRule {
                patterns: vec!["prod/admin/*".into()],
                ..SensitiveReadRule::default()
            })
            .with_off_hours(OffHoursRule {
                schedules: vec![Schedule::new(["*"], [HourRange::new(0, 24)])],
                ..OffHoursRule::default()
            });
        let engine = AlertEngine::start(config, vec![Arc::new(TracingAlertSink)]).expect("engine");
        let plain = handle(&paths, None).await;
        let observed = handle(&paths, Some(&engine)).await;
        (engine, plain, observed)
    });

    let names = ["Handle::read, no alerts", "Handle::read, alert engine"];
    let mut samples: [Vec<f64>; 2] = Default::default();
    for round in 0..rounds {
        for k in 0..2 {
            let variant = (round + k) % 2;
            let h = if variant == 0 { &plain } else { &observed };
            let start = Instant::now();
            rt.block_on(async {
                for i in 0..ops {
                    black_box(h.read(&paths[i % KEYS]).await.expect("read"));
                }
            });
            samples[variant].push(start.elapsed().as_nanos() as f64 / ops as f64);
        }
    }
    for (name, s) in names.iter().zip(&samples) {
        println!(
            "{name:<28} median {:>9.1} ns/read",
            median(s.clone()).unwrap_or(0.0)
        );
    }
    let mut figures = Figures::new("alerts");
    let r: Vec<f64> = samples[1]
        .iter()
        .zip(&samples[0])
        .map(|(x, y)| x / y)
        .collect();
    figures.ratio(
        "read with alert engine / without",
        "Handle::read, AlertEngine attached",
        names[0],
        &r,
        Some(Target::AtMost(1.15)),
    );
    figures.save();
    let stats = engine.stats();
    println!(
        "alert stats: {} raised, {} dropped; load average at end: {}",
        stats.raised,
        stats.dropped,
        load_average()
    );
}
