//! A lease member: one process of several sharing a store's lease expiry.
//!
//! `serve`: runs a `LeaseManager` with member id `<member>` (claims lasting
//! `<claim-ttl-ms>`, the stored index read again every `<rescan-ms>`) whose
//! revoker prints `revoking <lease id>` as it starts, then appends the id
//! to `<out-dir>/revoked-<member>-<pid>.log` (opened with `O_APPEND`,
//! `fdatasync` after every line) before it returns. The harness counts
//! revocations across killed processes from these files, and the last
//! `revoking` line of a killed process names the lease that was in flight.
//! Prints `ready` once serving; runs until killed.
//!
//! `issue`: issues `<count>` leases on path `chaos/lease` with TTLs spread
//! over `<ttl-min-ms>..<ttl-max-ms>`, `<batch>` per atomic batch, writing
//! their ids to `<out-dir>/issued.log`; prints `issued <n>` after each batch
//! and `issue-done <n> <ms>` at the end.
//!
//! Usage:
//!   `lease_member <store-spec> <key-file> <member> <out-dir> serve <claim-ttl-ms> <rescan-ms>`
//!   `lease_member <store-spec> <key-file> <member> <out-dir> issue <count> <ttl-min-ms> <ttl-max-ms> <batch>`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strongroom::clock::SystemClock;
use strongroom::dangerous::Door;
use strongroom::lease::{Lease, LeaseConfig, LeaseError, LeaseManager, LeaseRequest, Revoker};

const ENGINE: &str = "chaos";
const PATH: &str = "chaos/lease";

/// Appends each revoked lease id to this process's file, durably, before
/// reporting success.
#[derive(Debug)]
struct FileRevoker {
    file: Mutex<File>,
}

impl FileRevoker {
    fn open(path: &Path) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open revocation log");
        Self {
            file: Mutex::new(file),
        }
    }
}

#[async_trait]
impl Revoker for FileRevoker {
    async fn revoke(&self, lease: &Lease) -> strongroom::Result<()> {
        println!("revoking {}", lease.id());
        let failed = |e: std::io::Error| LeaseError::RevokerFailed {
            engine: ENGINE.into(),
            reason: format!("revocation log: {e}"),
        };
        let mut f = self.file.lock().expect("revocation log lock");
        f.write_all(format!("{}\n", lease.id()).as_bytes())
            .map_err(failed)?;
        f.sync_data().map_err(failed)?;
        Ok(())
    }
}

fn manager(sr: &Door, member: &str, claim_ttl: Duration, rescan: Duration) -> LeaseManager {
    let mut config = LeaseConfig::default();
    config.member_id = Some(member.to_owned());
    config.claim_ttl = claim_ttl;
    config.rescan_interval = rescan;
    config.expiring_soon_fraction = None;
    sr.lease_manager(Arc::new(SystemClock), config)
        .expect("lease manager")
}

async fn serve(sr: Door, member: &str, out: &Path, args: &[String]) {
    let claim_ttl = Duration::from_millis(args[0].parse().unwrap());
    let rescan = Duration::from_millis(args[1].parse().unwrap());
    let m = Arc::new(manager(&sr, member, claim_ttl, rescan));
    let log = out.join(format!("revoked-{member}-{}.log", std::process::id()));
    m.register_revoker(ENGINE, Arc::new(FileRevoker::open(&log)));
    let stats = m.restore().await.expect("restore");
    let _task = m.clone().spawn();
    println!("ready loaded={} live={}", stats.loaded, stats.live_leases);
    std::future::pending::<()>().await;
}

async fn issue(sr: Door, member: &str, out: &Path, args: &[String]) {
    let count: usize = args[0].parse().unwrap();
    let ttl_min: u64 = args[1].parse().unwrap();
    let ttl_max: u64 = args[2].parse().unwrap();
    let batch: usize = args[3].parse().unwrap();
    let m = manager(
        &sr,
        member,
        Duration::from_secs(30),
        Duration::from_secs(10),
    );
    // The issuer never revokes; the engine must be known to issue.
    m.register_revoker(
        ENGINE,
        Arc::new(FileRevoker::open(&out.join("issuer-never.log"))),
    );
    let mut ids = File::create(out.join("issued.log")).expect("issued log");
    let mut rng = strongroom_chaos::Rng::seeded();
    let started = Instant::now();
    let mut issued = 0;
    while issued < count {
        let n = batch.min(count - issued);
        let requests = (0..n)
            .map(|_| {
                let ttl =
                    Duration::from_millis(ttl_min + rng.next_u64() % (ttl_max - ttl_min).max(1));
                LeaseRequest::new(PATH, ENGINE, ttl, ttl)
            })
            .collect();
        let leases = m.issue_batch(requests).await.expect("issue batch");
        let mut text = String::with_capacity(leases.len() * 40);
        for l in &leases {
            text.push_str(&l.id().to_string());
            text.push('\n');
        }
        ids.write_all(text.as_bytes()).expect("issued log");
        issued += n;
        println!("issued {issued}");
    }
    ids.sync_all().expect("issued log");
    println!("issue-done {issued} {}", started.elapsed().as_millis());
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, key, member) = (&args[1], PathBuf::from(&args[2]), &args[3]);
    let out = PathBuf::from(&args[4]);
    let sr = strongroom_chaos::open_store(spec, &key).await;
    match args[5].as_str() {
        "serve" => serve(sr, member, &out, &args[6..]).await,
        "issue" => issue(sr, member, &out, &args[6..]).await,
        other => panic!("unknown mode {other}"),
    }
}
