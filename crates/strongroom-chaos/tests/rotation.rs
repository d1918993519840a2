//! A rotation holder SIGKILLed in the middle of a rotation (its target's
//! `set` step hangs, so the kill lands mid-step with the lock held and
//! renewed): another process, already waiting on the lock, takes it once it
//! lapses (the default 15 s lock TTL) and completes the rotation forward, or
//! rolls it back when the target refuses the new key, within 30 s of the
//! kill. A holder restarted with the same owner id takes its own lock back
//! at once. Timings are printed (`--nocapture`).

use std::time::{Duration, Instant};

use strongroom_chaos::{Member, Rng, Scenario, open_store, postgres_db};

const NAME: &str = "chaos/api-key";
const LIMIT: Duration = Duration::from_secs(30);

fn member(spec: &str, key: &str, owner: &str, mode: &[&str]) -> Member {
    let mut args = vec![spec.to_owned(), key.to_owned(), owner.to_owned()];
    args.extend(mode.iter().map(|s| (*s).to_owned()));
    Member::spawn(owner, "rotation_member", &args)
}

/// Version 1 current, then a holder stuck in setting version 2.
async fn holder_stuck_in_set(spec: &str, key: &str, owner: &str) -> Member {
    let mut init = member(spec, key, "proc-init", &["init"]);
    assert_eq!(
        init.wait_timeout(Duration::from_secs(60)).await,
        Some(true),
        "init failed: {:?}",
        init.lines().await
    );
    let mut holder = member(spec, key, owner, &["hold"]);
    let entered = holder
        .wait_for_line("set-entered", Duration::from_secs(60))
        .await;
    assert_eq!(entered.as_deref(), Some("set-entered 2"));
    holder
}

/// Waits for the taker's `done` line; returns it and the time since `since`.
async fn done_within(taker: &mut Member, since: Instant) -> (String, Duration) {
    let done = taker
        .wait_for_line("done", LIMIT + Duration::from_secs(10))
        .await;
    let took = since.elapsed();
    match done {
        Some(done) => (done, took),
        None => panic!("no takeover: {:?}", taker.lines().await),
    }
}

async fn killed_holder_is_replaced(label: &str, spec: &str, scenario: &Scenario, refuse: bool) {
    let key = scenario.key_file().display().to_string();
    drop(open_store(spec, &scenario.key_file()).await);
    let mut holder = holder_stuck_in_set(spec, &key, "proc-a").await;
    let mode: &[&str] = if refuse {
        &["takeover", "fail-test"]
    } else {
        &["takeover"]
    };
    let mut taker = member(spec, &key, "proc-b", mode);
    assert!(
        taker
            .wait_for_line("busy proc-a", Duration::from_secs(60))
            .await
            .is_some(),
        "{:?}",
        taker.lines().await
    );
    // The holder lives on a while, renewing its lock: the taker waits.
    let mut rng = Rng::seeded();
    tokio::time::sleep(rng.millis(500, 4_000)).await;
    assert!(
        !taker.lines().await.iter().any(|l| l.starts_with("done")),
        "took over from a live holder"
    );
    holder.kill9().await;
    let killed = Instant::now();
    let (done, took) = done_within(&mut taker, killed).await;
    eprintln!(
        "{label}: holder SIGKILLed mid-step; {done} {:.1} s after the kill",
        took.as_secs_f64()
    );
    assert!(taker.wait_timeout(Duration::from_secs(10)).await == Some(true));
    assert!(took < LIMIT, "took {took:?}");
    let lines = taker.lines().await.to_vec();
    let sr = open_store(spec, &scenario.key_file()).await;
    let staged = sr.load_staged(NAME).await.unwrap();
    assert!(staged.pending.is_none());
    if refuse {
        assert_eq!(done, "done current=Some(1) rolled-back=true");
        assert_eq!(staged.current.unwrap().version(), 1);
        assert!(
            lines.iter().any(|l| l == "event RollBack 2 completed"),
            "{lines:?}"
        );
    } else {
        assert_eq!(done, "done current=Some(2) rolled-back=false");
        assert_eq!(staged.current.unwrap().version(), 2);
        assert_eq!(staged.previous.unwrap().version(), 1);
        for step in ["SetInTarget", "TestPending", "Promote"] {
            let want = format!("event {step} 2 completed");
            assert!(lines.contains(&want), "{want}: {lines:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rotation_holder_is_completed_forward_by_another_process_on_sqlite() {
    let scenario = Scenario::new();
    killed_holder_is_replaced("sqlite", &scenario.sqlite_spec(), &scenario, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rotation_holder_is_rolled_back_by_another_process_on_postgres() {
    let scenario = Scenario::new();
    let db = postgres_db("chaos_rotation").await;
    killed_holder_is_replaced("postgres", &db.url, &scenario, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_holder_restarted_with_its_owner_id_takes_its_lock_back_at_once() {
    let scenario = Scenario::new();
    let spec = scenario.sqlite_spec();
    let key = scenario.key_file().display().to_string();
    drop(open_store(&spec, &scenario.key_file()).await);
    let mut holder = holder_stuck_in_set(&spec, &key, "node-1").await;
    holder.kill9().await;
    let killed = Instant::now();
    let mut restarted = member(&spec, &key, "node-1", &["takeover"]);
    let (done, took) = done_within(&mut restarted, killed).await;
    eprintln!(
        "restart with the same owner id: {done} {:.1} s after the kill",
        took.as_secs_f64()
    );
    assert_eq!(done, "done current=Some(2) rolled-back=false");
    assert!(
        took < Duration::from_secs(10),
        "waited for its own lock to lapse: {took:?}"
    );
}
