//! Short leases (1-3 s TTLs, issued in atomic batches by a setup process)
//! expiring across 4 lease-manager processes, three of which are
//! SIGKILLed at random moments and restarted (the first and third with
//! their member id, so they take their claims back at once; the second
//! with a new id, so its old claims pass to the others when they lapse).
//! Every lease must be revoked, and a lease may be revoked twice only if
//! its revocation was in flight in a killed process (the last `revoking`
//! line that process printed). On SQLite and on PostgreSQL.
//!
//! The documented size is 100,000 leases per store. The SQLite run uses it
//! by default (about 5 minutes in a debug build on a 2-core machine); the
//! PostgreSQL run defaults to 20,000 (about 2 minutes; 100,000 take about 7:
//! the PostgreSQL store makes one round trip per key and operation of a
//! batch, and every revocation commits once before the next starts).
//! `CHAOS_LEASES=<n>` sets the count for both, e.g. `CHAOS_LEASES=100000`
//! for the documented size everywhere. Counts and timings are printed
//! (`--nocapture` to see them).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use strongroom_chaos::{Member, Rng, Scenario, open_storage, open_store, postgres_db};

const MEMBERS: usize = 4;
const KILLS: usize = 3;
const CLAIM_TTL_MS: &str = "4000";
const RESCAN_MS: &str = "1000";
const TTL_MIN_MS: &str = "1000";
const TTL_MAX_MS: &str = "3000";
const ISSUE_BATCH: &str = "1000";

/// The stores run one after the other, so each has the machine's two cores
/// (and its timings mean something).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The documented size of the scenario.
const DOCUMENTED_LEASES: usize = 100_000;

fn lease_count(default: usize) -> usize {
    std::env::var("CHAOS_LEASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Cluster<'a> {
    spec: &'a str,
    key: String,
    out: String,
}

impl Cluster<'_> {
    async fn serve(&self, member: &str) -> Member {
        let mut m = Member::spawn(
            member,
            "lease_member",
            &[
                self.spec.to_owned(),
                self.key.clone(),
                member.to_owned(),
                self.out.clone(),
                "serve".into(),
                CLAIM_TTL_MS.into(),
                RESCAN_MS.into(),
            ],
        );
        assert!(
            m.wait_for_line("ready", Duration::from_secs(60))
                .await
                .is_some(),
            "member {member} did not start: {:?}",
            m.lines().await
        );
        m
    }
}

/// Revocations per lease id, from every member's log; and per log file.
fn revocations(out: &Path) -> (HashMap<String, u32>, Vec<(String, usize)>) {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut per_file = Vec::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("revoked-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut n = 0;
        for line in text.lines() {
            *counts.entry(line.to_owned()).or_default() += 1;
            n += 1;
        }
        per_file.push((name, n));
    }
    per_file.sort();
    (counts, per_file)
}

async fn run(label: &str, spec: &str, scenario: &Scenario, n: usize) {
    let out = scenario.dir.path().join("leases");
    std::fs::create_dir_all(&out).unwrap();
    // initialise the store before the members race for it
    drop(open_store(spec, &scenario.key_file()).await);
    let cluster = Cluster {
        spec,
        key: scenario.key_file().display().to_string(),
        out: out.display().to_string(),
    };
    // Setup: one process issues every lease, in atomic batches.
    let mut issuer = Member::spawn(
        "issuer",
        "lease_member",
        &[
            spec.to_owned(),
            cluster.key.clone(),
            "issuer".into(),
            cluster.out.clone(),
            "issue".into(),
            n.to_string(),
            TTL_MIN_MS.into(),
            TTL_MAX_MS.into(),
            ISSUE_BATCH.into(),
        ],
    );

    let issued_ok = issuer.wait_timeout(Duration::from_secs(900)).await;
    assert_eq!(
        issued_ok,
        Some(true),
        "issuer failed: {:?}",
        issuer.lines().await.last()
    );
    let issue_time = issuer
        .lines()
        .await
        .iter()
        .find_map(|l| l.strip_prefix("issue-done "))
        .and_then(|rest| rest.split(' ').nth(1))
        .map(str::to_owned)
        .unwrap_or_default();
    // By now every lease has expired: the members share the work.
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let id = format!("m{i}");
        let m = cluster.serve(&id).await;
        members.push((id, m));
    }
    let started = Instant::now();

    // Three SIGKILLs at random moments while the leases are revoked.
    let mut rng = Rng::seeded();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut killed = Vec::new();
    for k in 0..KILLS {
        tokio::time::sleep(rng.millis(1_500, 5_000)).await;
        let slot = (rng.next_u64() % MEMBERS as u64) as usize;
        let (id, member) = &mut members[slot];
        member.kill9().await;
        let lines = member.lines().await;
        let started_revocations = lines.iter().filter(|l| l.starts_with("revoking ")).count();
        let last = lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("revoking "))
            .map(str::to_owned);
        eprintln!(
            "{label}: kill {k} at {:?}: {id} had started {started_revocations} revocations; last: {last:?}",
            started.elapsed()
        );
        in_flight.extend(last);
        killed.push(id.clone());
        // Restart: the second one comes back under a new member id.
        let new_id = if k == 1 {
            format!("{id}-new")
        } else {
            id.clone()
        };
        let m = cluster.serve(&new_id).await;
        members[slot] = (new_id, m);
    }

    let storage = open_storage(spec).await;
    let deadline = Instant::now() + Duration::from_secs(900);
    while !storage.scan("lease/", None, 1).await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} leases still live",
            storage.list("lease/").await.unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    // Nothing is left to revoke, so nothing is in flight: stop everyone.
    for (_, m) in &mut members {
        m.kill9().await;
    }

    let issued: Vec<String> = std::fs::read_to_string(out.join("issued.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(issued.len(), n);
    let issued_set: HashSet<&String> = issued.iter().collect();
    assert_eq!(issued_set.len(), n);
    let (counts, per_file) = revocations(&out);
    let missing = issued.iter().filter(|id| !counts.contains_key(*id)).count();
    let unknown: Vec<_> = counts
        .keys()
        .filter(|id| !issued_set.contains(id))
        .collect();
    let duplicates: Vec<(&String, u32)> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(id, c)| (id, *c))
        .collect();
    let unexplained: Vec<_> = duplicates
        .iter()
        .filter(|(id, _)| !in_flight.contains(*id))
        .collect();
    let extra: u32 = duplicates.iter().map(|(_, c)| c - 1).sum();
    eprintln!(
        "{label}: {n} leases, {MEMBERS} members, {KILLS} SIGKILLs ({killed:?}); \
         issued in {issue_time} ms; all revoked {:.1} s after the members started; \
         {} revoked twice or more ({extra} extra revocations), all of them in flight at a kill \
         ({} leases were in flight at the kills); revocations per process log: {per_file:?}",
        elapsed.as_secs_f64(),
        duplicates.len(),
        in_flight.len(),
    );
    assert_eq!(missing, 0, "{missing} leases were never revoked");
    assert!(unknown.is_empty(), "revoked but never issued: {unknown:?}");
    assert!(
        unexplained.is_empty(),
        "revoked twice without being in flight at a kill: {unexplained:?}"
    );
    assert!(duplicates.iter().all(|(_, c)| *c == 2), "{duplicates:?}");
    // Nothing of the leases is left: records, index segments, path keys,
    // counts (two members that took the count to zero at the same moment
    // can leave shards summing to zero, which a manager's restore deletes).
    let store = open_store(spec, &scenario.key_file()).await;
    let manager = store
        .lease_manager(
            std::sync::Arc::new(strongroom::clock::SystemClock),
            strongroom::lease::LeaseConfig::default(),
        )
        .unwrap();
    assert_eq!(manager.restore().await.unwrap().live_leases, 0);
    let left = storage.list("lease").await.unwrap();
    assert!(
        left.is_empty(),
        "{} lease keys left: {:?}",
        left.len(),
        &left[..left.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_revoked_once_across_killed_members_on_sqlite() {
    let _one = ONE_AT_A_TIME.lock().await;
    let scenario = Scenario::new();
    let n = lease_count(DOCUMENTED_LEASES);
    run("sqlite", &scenario.sqlite_spec(), &scenario, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_revoked_once_across_killed_members_on_postgres() {
    let _one = ONE_AT_A_TIME.lock().await;
    let scenario = Scenario::new();
    let db = postgres_db("chaos_leases").await;
    let n = lease_count(20_000);
    run("postgres", &db.url, &scenario, n).await;
}
