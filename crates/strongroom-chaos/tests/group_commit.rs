//! Group commit under SIGKILL: a process with 32 tasks writing at once (so
//! the SQLite store commits their batches in shared transactions) is killed
//! at random moments, three times; every batch it acknowledged is in the
//! file afterwards, with its value.

use std::collections::BTreeMap;
use std::time::Duration;

use strongroom_chaos::{Member, Rng, Scenario, open_storage};

const TASKS: usize = 32;
const PER_TASK: usize = 2000;
const KILLS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_group_commit_writer_loses_no_acknowledged_batch_on_sqlite() {
    let scenario = Scenario::new();
    let spec = scenario.sqlite_spec();
    let mut rng = Rng::seeded();
    let mut acknowledged = BTreeMap::new();
    for round in 0..KILLS {
        let mut w = Member::spawn(
            format!("g{round}"),
            "group_writer",
            &[
                spec.clone(),
                round.to_string(),
                TASKS.to_string(),
                PER_TASK.to_string(),
            ],
        );
        assert!(
            w.wait_for_line("ready", Duration::from_secs(60))
                .await
                .is_some()
        );
        tokio::time::sleep(rng.millis(300, 1500)).await;
        w.kill9().await;
        let lines = w.lines().await;
        assert!(
            !lines.iter().any(|l| l == "done"),
            "the writer finished before it was killed; write more"
        );
        let before = acknowledged.len();
        for l in lines {
            if let Some(rest) = l.strip_prefix("ack ") {
                let (k, v) = rest.split_once(' ').unwrap();
                acknowledged.insert(k.to_owned(), v.to_owned());
            }
        }
        eprintln!(
            "round {round}: killed after {} acknowledged batches",
            acknowledged.len() - before
        );
    }
    assert!(acknowledged.len() > 100, "too few writes to test anything");
    let storage = open_storage(&spec).await;
    let mut lost = Vec::new();
    for (k, v) in &acknowledged {
        if storage.get(k).await.unwrap().as_deref() != Some(v.as_bytes()) {
            lost.push(k.clone());
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged batches lost: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(10)]
    );
}
