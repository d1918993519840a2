//! The self-healing pool across processes: 64 workers (two worker processes
//! of 32 tasks, each process with its own pool, connections living 1 s)
//! query a private PostgreSQL cluster while a rotator process rotates their
//! credential back to back (alternating users) and is SIGKILLed 20 times at
//! random moments, each time restarted with the same lock owner id so that
//! it resumes or rolls back what its predecessor left. The store the
//! credential lives in is PostgreSQL too (the fleet case): the workers learn
//! of rotations through its change notices. No query may fail.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom::rotation::RotationOptions;
use strongroom_chaos::{Member, Rng, Scenario, open_store, postgres_db};
use strongroom_sqlx::pool::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use strongroom_sqlx::pool::sqlx::{ConnectOptions, Connection};
use strongroom_sqlx::rotate::PgAlternatingRotator;

const CREDENTIAL: &str = "db/chaos-app";
const ROLE_BASE: &str = "chaos_app";
const OWNER: &str = "pool-rotator";
const WORKER_PROCESSES: usize = 2;
const TASKS_PER_WORKER: usize = 32;
const KILLS: usize = 20;
const LIFETIME_MS: &str = "1000";

/// The numbers a worker reports at the end.
#[derive(Debug, Default)]
struct WorkerReport {
    queries: u64,
    failed: u64,
    proactive: u64,
    reactive: u64,
    refreshes: u64,
}

fn parse_done(line: &str) -> WorkerReport {
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    WorkerReport {
        queries: field("queries"),
        failed: field("failed"),
        proactive: field("proactive"),
        reactive: field("reactive"),
        refreshes: field("refreshes"),
    }
}

async fn rotations_in(m: &mut Member) -> (u64, Vec<String>) {
    let lines = m.lines().await;
    let rotated = lines.iter().filter(|l| l.starts_with("rotated ")).count() as u64;
    let errors = lines
        .iter()
        .filter(|l| l.starts_with("error "))
        .cloned()
        .collect();
    (rotated, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_query_fails_while_the_rotator_is_killed_20_times() {
    let started = Instant::now();
    let scenario = Scenario::new();
    let key = scenario.key_file().display().to_string();
    let store_db = postgres_db("poolchaos_store").await;
    let target_db = postgres_db("poolchaos_target").await;

    // Set up before the members start: the login roles and a first version.
    let sr = open_store(&store_db.url, &scenario.key_file()).await;
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&target_db.url)
        .await
        .unwrap();
    let target = PgConnectOptions::from_str(&target_db.url).unwrap();
    let rotator = Arc::new(PgAlternatingRotator::new(admin, target.clone(), ROLE_BASE).unwrap());
    rotator.ensure_roles().await.unwrap();
    let options = || RotationOptions {
        owner_id: Some(OWNER.to_owned()),
        lock_ttl: Duration::from_secs(10),
        history_limit: 1000,
        ..RotationOptions::default()
    };
    sr.rotation_engine(CREDENTIAL, rotator.clone(), options())
        .await
        .unwrap()
        .rotate_now()
        .await
        .unwrap();

    let stop_file = scenario.dir.path().join("stop");
    let mut workers: Vec<Member> = (0..WORKER_PROCESSES)
        .map(|i| {
            Member::spawn(
                format!("worker{i}"),
                "pool_worker",
                &[
                    store_db.url.clone(),
                    key.clone(),
                    target_db.url.clone(),
                    CREDENTIAL.to_owned(),
                    TASKS_PER_WORKER.to_string(),
                    LIFETIME_MS.to_owned(),
                    stop_file.display().to_string(),
                ],
            )
        })
        .collect();
    for w in &mut workers {
        let ready = w
            .wait_for_line("ready", Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("{} did not start", w.name));
        eprintln!("{}: {ready}", w.name);
    }

    let rotator_args = [
        store_db.url.clone(),
        key.clone(),
        target_db.url.clone(),
        CREDENTIAL.to_owned(),
        ROLE_BASE.to_owned(),
        OWNER.to_owned(),
    ];
    let mut rng = Rng::seeded();
    let mut reported = 0u64;
    let mut resumed = 0u64;
    let mut rotation_errors = Vec::new();
    let mut rotator_proc = Member::spawn("rotator0", "pool_rotator", &rotator_args);
    for kill in 1..=KILLS {
        // A random moment of the rotator's working life (its start, about a
        // second on this loaded machine, is not counted): resuming what the
        // last one left, or anywhere in a rotation that follows.
        let up = rotator_proc
            .wait_for_line("started", Duration::from_secs(30))
            .await;
        assert!(up.is_some(), "{} did not start", rotator_proc.name);
        tokio::time::sleep(rng.millis(0, 1500)).await;
        rotator_proc.kill9().await;
        let (n, errors) = rotations_in(&mut rotator_proc).await;
        reported += n;
        rotation_errors.extend(errors);
        if rotator_proc
            .lines()
            .await
            .iter()
            .any(|l| l.starts_with("started in_flight=") && !l.ends_with("=none"))
        {
            resumed += 1;
        }
        rotator_proc = Member::spawn(format!("rotator{kill}"), "pool_rotator", &rotator_args);
    }
    // One more stretch without kills, then the last kill.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rotator_proc.kill9().await;
    let (n, errors) = rotations_in(&mut rotator_proc).await;
    reported += n;
    rotation_errors.extend(errors);
    // The pools must have followed the last rotations before they stop.
    tokio::time::sleep(Duration::from_millis(500)).await;

    std::fs::write(&stop_file, b"stop").unwrap();
    let mut total = WorkerReport::default();
    for w in &mut workers {
        let Some(done) = w.wait_for_line("done", Duration::from_secs(60)).await else {
            let name = w.name.clone();
            panic!("{name} did not finish: {:?}", w.lines().await);
        };
        assert_eq!(
            w.wait_timeout(Duration::from_secs(30)).await,
            Some(true),
            "{} exited badly",
            w.name
        );
        let failures: Vec<String> = w
            .lines()
            .await
            .iter()
            .filter(|l| l.starts_with("failed "))
            .cloned()
            .collect();
        for f in failures.iter().take(10) {
            eprintln!("{}: {f}", w.name);
        }
        eprintln!("{}: {done}", w.name);
        let r = parse_done(&done);
        total.queries += r.queries;
        total.failed += r.failed;
        total.proactive += r.proactive;
        total.reactive += r.reactive;
        total.refreshes += r.refreshes;
    }

    // What the last kill left is finished or rolled back by a new engine
    // with the same owner id, and the current version logs in.
    let engine = sr
        .rotation_engine(CREDENTIAL, rotator.clone(), options())
        .await
        .unwrap();
    engine.resume().await.unwrap();
    let status = engine.status().await.unwrap();
    assert!(
        status.in_flight.is_none() && status.pending.is_none(),
        "{status:?}"
    );
    let current = engine.staged().await.unwrap().current.unwrap();
    // Rotations completed during the run: promotions after the first
    // version (a rotation a killed rotator left is completed by the next,
    // whose own report names only its last promotion, so the store counts).
    let history = &status.history;
    let promoted = history.iter().filter(|h| h.promoted.is_some()).count() as u64;
    let rotations = promoted.saturating_sub(1);
    let rolled_back = history.iter().filter(|h| h.failed.is_some()).count();
    assert!(
        history.first().is_some_and(|h| h.version == 1),
        "history kept from the first version: {history:?}"
    );
    let conn = target
        .clone()
        .username(current.identity())
        .password(std::str::from_utf8(current.secret().expose_secret()).unwrap())
        .connect()
        .await
        .expect("the current version logs in");
    conn.close().await.unwrap();

    eprintln!(
        "pool chaos: {} queries by {} workers in {} processes, {} failed; {rotations} rotations completed ({reported} reported by the rotator that finished them, {rolled_back} rolled back), {KILLS} kills (+1 at the end), {resumed} restarts found a rotation in flight, {} rotation errors; swaps {} proactive / {} reactive, {} refreshes; current version {}; {:?}",
        total.queries,
        WORKER_PROCESSES * TASKS_PER_WORKER,
        WORKER_PROCESSES,
        total.failed,
        rotation_errors.len(),
        total.proactive,
        total.reactive,
        total.refreshes,
        current.version(),
        started.elapsed()
    );
    for e in rotation_errors.iter().take(5) {
        eprintln!("rotation error: {e}");
    }
    assert_eq!(total.failed, 0, "queries failed");
    assert!(total.queries > 1000, "only {} queries", total.queries);
    assert!(rotations >= 10, "only {rotations} rotations completed");
    assert!(
        total.proactive > 0,
        "no pool learned of a rotation by notice"
    );
    drop(store_db);
    drop(target_db);
}
