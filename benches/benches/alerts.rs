//! The alert engine's cost on an audited read: `Handle::read` on a memory
//! store whose audit log has the engine attached (every rule enabled)
//! against the same read on an identical store without it, interleaved
//! round by round in one process (the order alternates each round); prints
//! the median of the paired per-round ratios with min-max, and the load
//! average.
//!
//! Then the alert latency, from the access to the sink: a read of a path
//! the sensitive-read rule matches, timed from before the read until the
//! alert comes out of a `ChannelSink`'s receiver (the rules, the engine's
//! queue, its delivery task, the sink), against the same read on a store
//! without an engine followed by a hand-off of one message through a
//! forwarding task and two channels (the least an asynchronous alert path
//! costs), interleaved round by round; prints the latency's median and 99th
//! percentile in microseconds and the ratio.
//!
//! `cargo bench -p strongroom-benches --bench alerts`
//! (`ALERTS_BENCH_ROUNDS`, `ALERTS_BENCH_OPS` to change the run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use strongroom::alerts::{
    AlertConfig, AlertEngine, AlertKind, ChannelSink, HourRange, OffHoursRule, Schedule,
    SensitiveReadRule, TracingAlertSink,
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
    latency(&rt, &mut figures, rounds, ops.min(500));
    figures.save();
    let stats = engine.stats();
    println!(
        "alert stats: {} raised, {} dropped; load average at end: {}",
        stats.raised,
        stats.dropped,
        load_average()
    );
}

/// The `p`-th percentile (0-100) of `v`.
fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len().saturating_sub(1)) as f64 * p / 100.0).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// Alert latency from the access to the sink (see the module docs).
fn latency(rt: &tokio::runtime::Runtime, figures: &mut Figures, rounds: usize, ops: usize) {
    const SENSITIVE: &str = "prod/admin/root";
    let (h, plain, engine, mut alerts, tx, mut forwarded) = rt.block_on(async {
        // only the sensitive-read rule, so each read raises exactly one
        // alert (the rate and bulk rules would add their own)
        let config = AlertConfig::from_toml(
            r#"
            new_path.enabled = false
            read_rate.enabled = false
            bulk_access.enabled = false
            off_hours.enabled = false
            repeated_denials.enabled = false
            stale_version.enabled = false
            sensitive_read.patterns = ["prod/admin/*"]
            "#,
        )
        .expect("config");
        let (sink, alerts) = ChannelSink::new(1024);
        let engine = AlertEngine::start(config, vec![Arc::new(sink)]).expect("engine");
        let h = handle(&[SENSITIVE.to_owned()], Some(&engine)).await;
        let plain = handle(&[SENSITIVE.to_owned()], None).await;
        // the baseline's path: a channel into a task that forwards to
        // another channel, as the engine's queue and delivery task do
        let (tx, mut inbox) = tokio::sync::mpsc::channel::<String>(1024);
        let (out, forwarded) = tokio::sync::mpsc::channel::<String>(1024);
        tokio::spawn(async move {
            while let Some(m) = inbox.recv().await {
                let _ = out.send(m).await;
            }
        });
        (h, plain, engine, alerts, tx, forwarded)
    });
    let mut to_sink = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut per = [0.0f64; 2];
        for k in 0..2 {
            let variant = (round + k) % 2;
            let mut total = 0.0;
            rt.block_on(async {
                for _ in 0..ops {
                    let start = Instant::now();
                    let reader = if variant == 0 { &h } else { &plain };
                    black_box(reader.read(SENSITIVE).await.expect("read"));
                    if variant == 0 {
                        let alert = alerts.recv().await.expect("alert");
                        assert_eq!(alert.kind, AlertKind::SensitiveRead);
                    } else {
                        tx.send(SENSITIVE.to_owned()).await.expect("send");
                        black_box(forwarded.recv().await.expect("forwarded"));
                    }
                    let us = start.elapsed().as_nanos() as f64 / 1000.0;
                    total += us;
                    if variant == 0 {
                        to_sink.push(us);
                    }
                }
            });
            per[variant] = total / ops as f64;
        }
        ratios.push(per[0] / per[1]);
    }
    println!(
        "alert latency, access to sink: median {:.1} us, p99 {:.1} us ({} alerts)",
        percentile(to_sink.clone(), 50.0),
        percentile(to_sink.clone(), 99.0),
        to_sink.len()
    );
    figures.ratio(
        "alert latency, read to ChannelSink / read then a forwarded message",
        "Handle::read of a sensitive path until its Alert leaves a ChannelSink",
        "the same read without an engine, then one message through a forwarding task and two channels",
        &ratios,
        None,
    );
    let stats = engine.stats();
    assert_eq!(stats.dropped, 0, "no alert dropped");
    assert_eq!(stats.raised, to_sink.len() as u64, "one alert per read");
}
