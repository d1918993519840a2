//! Keyring rotate + rewrap + retire + destroy, and a root-key rotation to a
//! new key file, while 4 writer processes write, one of them SIGKILLed and
//! restarted mid-run: every acknowledged write is still readable afterwards
//! (from a process unsealed with the new root key), on SQLite and on
//! PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use strongroom::keyring::KeyState;
use strongroom_chaos::{Member, Rng, Scenario, open_store, postgres_db};

const WRITERS: usize = 4;
const PER_WRITER: u64 = 400;
const CYCLES: u32 = 3;

async fn run(spec: String, scenario: &Scenario) {
    let key = scenario.key_file().display().to_string();
    let new_key_file = scenario.dir.path().join("root-2.key");
    strongroom::protector::SoftwareProtector::generate_key_file(&new_key_file).unwrap();
    let new_key = new_key_file.display().to_string();
    let both = format!("{key}:{new_key}");
    // initialise before the members race for it
    let sr = open_store(&spec, &scenario.key_file()).await;
    drop(sr);
    let mut rng = Rng::seeded();
    let arg = |s: &str| s.to_owned();
    let mut writers: Vec<Member> = (0..WRITERS)
        .map(|i| {
            Member::spawn(
                format!("w{i}"),
                "keyring_writer",
                &[
                    spec.clone(),
                    both.clone(),
                    i.to_string(),
                    arg("0"),
                    PER_WRITER.to_string(),
                ],
            )
        })
        .collect();
    for w in &mut writers {
        assert!(
            w.wait_for_line("ready", Duration::from_secs(60))
                .await
                .is_some()
        );
    }
    let mut admin = Member::spawn(
        "admin",
        "keyring_admin",
        &[
            spec.clone(),
            key.clone(),
            new_key.clone(),
            CYCLES.to_string(),
        ],
    );
    // SIGKILL writer 0 at a random moment, then restart it where it stopped
    tokio::time::sleep(rng.millis(200, 1500)).await;
    writers[0].kill9().await;
    let acked0 = acks(writers[0].lines().await).len() as u64;
    eprintln!("killed w0 after {acked0} acknowledged writes");
    let mut restarted = Member::spawn(
        "w0b",
        "keyring_writer",
        &[
            spec.clone(),
            both.clone(),
            arg("0"),
            acked0.to_string(),
            (PER_WRITER - acked0).to_string(),
        ],
    );
    assert!(
        admin.wait_timeout(Duration::from_secs(240)).await == Some(true),
        "admin failed: {:?}",
        admin.lines().await
    );
    let mut acknowledged = BTreeMap::new();
    for w in writers
        .iter_mut()
        .skip(1)
        .chain(std::iter::once(&mut restarted))
    {
        assert!(
            w.wait_timeout(Duration::from_secs(240)).await == Some(true),
            "writer {} failed",
            w.name
        );
    }
    for w in writers.iter_mut().chain(std::iter::once(&mut restarted)) {
        acknowledged.extend(acks(w.lines().await));
    }
    eprintln!("admin: {:?}", admin.lines().await);
    // Every acknowledged write is readable, from a process unsealed with the
    // new root key (the old one no longer opens the store).
    let sr = strongroom_chaos::unseal_any(&spec, std::slice::from_ref(&new_key_file)).await;
    let secrets = sr.secrets();
    let mut lost = Vec::new();
    for (path, value) in &acknowledged {
        match secrets.get(path).await {
            Ok(v) if v.value.expose_secret() == value.as_bytes() => {}
            other => lost.push((path.clone(), other.err().map(|e| e.to_string()))),
        }
    }
    let keys = sr.keys().unwrap();
    let destroyed = keys
        .iter()
        .filter(|k| k.state == KeyState::Destroyed)
        .count();
    eprintln!(
        "acknowledged writes: {}, lost or unreadable: {}, key versions destroyed: {destroyed}, generation {}",
        acknowledged.len(),
        lost.len(),
        sr.keyring_generation().unwrap()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(acknowledged.len() as u64, WRITERS as u64 * PER_WRITER);
    assert_eq!(destroyed, CYCLES as usize);
}

fn acks(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("ack "))
        .filter_map(|l| l.split_once(' '))
        .map(|(p, v)| (p.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_changes_lose_no_acknowledged_write_on_sqlite() {
    let s = Scenario::new();
    run(s.sqlite_spec(), &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_changes_lose_no_acknowledged_write_on_postgres() {
    let s = Scenario::new();
    let db = postgres_db("chaos_keyring").await;
    run(db.url.clone(), &s).await;
}
