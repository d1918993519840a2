//! Change notices across processes: a secret written in this process
//! reaches a watching member process (`watch_member`) within 1 s while its
//! polling fallback is 5 s, so it came by notice (PostgreSQL `LISTEN/NOTIFY`,
//! SQLite `PRAGMA data_version`), not by polling. Prints p50/p99/max of the
//! propagation latency: from the write's return here (its commit is
//! acknowledged) to the member's read of the new value, both on this
//! machine's real-time clock; and of the writes themselves.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strongroom_chaos::{Member, Scenario, open_store, postgres_db};

const PATH: &str = "app/watched";
const WRITES: usize = 50;
/// The member's polling fallback: a value seen within 1 s came by notice.
const FALLBACK_MS: u64 = 5000;
const LIMIT: Duration = Duration::from_secs(1);

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The time in a `seen <value> <unix_nanos>` line.
fn seen_at(line: &str) -> u128 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn nanos_to_duration(nanos: u128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `p50 .. ms, p99 .. ms, max .. ms`.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(samples[samples.len() - 1])
    )
}

async fn propagation(backend: &str, spec: String, scenario: &Scenario) {
    let writer = open_store(&spec, &scenario.key_file()).await;
    let secrets = writer.secrets();
    let args = vec![
        spec,
        scenario.key_file().display().to_string(),
        PATH.to_owned(),
        FALLBACK_MS.to_string(),
    ];
    let mut member = Member::spawn("watcher", "watch_member", &args);
    let watching = member
        .wait_for_line("watching ", Duration::from_secs(60))
        .await
        .expect("the member did not start");
    assert_eq!(watching, "watching notified=true", "{backend}");

    // Its feed may take a moment to go live (the listener connects, the
    // SQLite watcher reads its first data_version): write until it hears one.
    let mut warm = false;
    for i in 0..10 {
        let value = format!("warmup-{i}");
        secrets.put(PATH, value.as_bytes(), None).await.unwrap();
        if member
            .wait_for_line(&format!("seen {value} "), LIMIT)
            .await
            .is_some()
        {
            warm = true;
            break;
        }
    }
    assert!(warm, "{backend}: the member never saw a write");

    let mut latencies = Vec::with_capacity(WRITES);
    let mut writes = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        // Writes at varied offsets from the member's SQLite check ticks
        // (100 ms apart), which waiting for each "seen" would otherwise
        // line every write up with.
        tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 101)).await;
        let value = format!("value-{i}");
        let start = unix_nanos();
        secrets.put(PATH, value.as_bytes(), None).await.unwrap();
        let acked = unix_nanos();
        writes.push(nanos_to_duration(acked - start));
        let line = member
            .wait_for_line(&format!("seen {value} "), LIMIT)
            .await
            .unwrap_or_else(|| {
                panic!("{backend}: write {i} not seen by the other process within {LIMIT:?}")
            });
        // (the member may read the value a moment before the put returns)
        latencies.push(nanos_to_duration(seen_at(&line).saturating_sub(acked)));
    }
    member.kill9().await;
    eprintln!(
        "{backend}: {WRITES} secret writes seen by another process: propagation {}; the writes took {} (fallback poll {FALLBACK_MS} ms)",
        summary(latencies),
        summary(writes)
    );
    // PostgreSQL names the paths; SQLite only says "something changed"
    // (a resync), within 100 ms rather than the 5 s fallback.
    let lines = member.lines().await;
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    eprintln!(
        "{backend}: the member got {} changed and {} resync reports",
        count("event changed"),
        count("event resync")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_written_in_one_process_is_seen_in_another_within_1s_on_sqlite() {
    let scenario = Scenario::new();
    let spec = scenario.sqlite_spec();
    propagation("sqlite", spec, &scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_written_in_one_process_is_seen_in_another_within_1s_on_postgres() {
    let scenario = Scenario::new();
    let db = postgres_db("notify").await;
    propagation("postgres", db.url.clone(), &scenario).await;
    drop(db);
}
