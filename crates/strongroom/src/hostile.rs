//! The hostile-storage suite every store runs (feature `testing`).
//!
//! [`run`] builds a store holding every kind of record the core writes
//! (secret metadata and values, caller-sealed records, lease records and
//! their indexes and counters, rotation state and staged credentials, the
//! audit head, the keyring and root-key records), then, one record at a
//! time, tampers with the raw storage the way someone with write access to
//! the SQLite file or the PostgreSQL table could:
//!
//! - `flip`: one bit flipped at the start, the middle and the end;
//! - `truncate`: the record cut in half;
//! - `swap`: the record exchanged with another record of the same kind;
//! - `move`: the record moved onto another record of the same kind;
//! - `drop`: the record deleted;
//! - `rollback`: the record replaced by its own older stored value.
//!
//! After each change a fresh process view (a new unseal) reads everything
//! back through the public API and authenticates every record
//! ([`Strongroom::verify_records`]); then the storage is restored exactly.
//! A change is *detected* when that fails with an error. The suite fails on
//! a panic, on any undetected `flip`/`truncate`/`swap`/`move`, and on a read that returns a value never written at that place
//! (another record's plaintext). Undetected `drop`s and `rollback`s are the
//! limitations `SECURITY.md` lists; they are counted, and even then every
//! value read must be one that was really stored there at some point.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::audit::Checkpoint;
use crate::clock::{ManualClock, Timestamp};
use crate::lease::{Lease, LeaseConfig, LeaseId, LeaseManager, Revoker};
use crate::protector::SoftwareProtector;
use crate::rotation::{
    ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier, RotationEngine, RotationOptions, load_staged,
};
use crate::seal::SealContext;
use crate::storage::{BatchOp, DynStorage};
use crate::{Options, Result, SecretBytes, Strongroom};

/// The mutations tried on each record.
pub const MUTATIONS: [&str; 6] = ["flip", "truncate", "swap", "move", "drop", "rollback"];

/// The error kinds a detected change may surface as: tampering is
/// corruption (or, for the root of trust, a failed unseal), never a
/// not-found or an invalid argument.
pub const DETECTION_KINDS: [&str; 3] = ["corrupt_record", "decryption_failed", "unseal_failed"];

/// Counts per (record kind, mutation).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub tried: u64,
    pub detected: u64,
    /// Undetected, and allowed by `SECURITY.md`'s list.
    pub listed: u64,
}

/// What [`run`] found.
#[derive(Debug, Default)]
pub struct HostileReport {
    pub by_kind: BTreeMap<(String, &'static str), Tally>,
    /// Failures: panics, undetected changes outside the list, foreign
    /// plaintext. Empty when the store passed.
    pub failures: Vec<String>,
    /// How detected changes were reported: error kind and how many times.
    pub errors: BTreeMap<&'static str, u64>,
}

impl HostileReport {
    pub fn tried(&self) -> u64 {
        self.by_kind.values().map(|t| t.tried).sum()
    }

    pub fn detected(&self) -> u64 {
        self.by_kind.values().map(|t| t.detected).sum()
    }

    pub fn listed(&self) -> u64 {
        self.by_kind.values().map(|t| t.listed).sum()
    }

    /// A table, one line per record kind and mutation.
    pub fn table(&self) -> String {
        let mut out = String::from("kind                 mutation  tried detected listed\n");
        for ((kind, m), t) in &self.by_kind {
            out.push_str(&format!(
                "{kind:<20} {m:<9} {:>5} {:>8} {:>6}\n",
                t.tried, t.detected, t.listed
            ));
        }
        out.push_str(&format!(
            "total                          {:>5} {:>8} {:>6}\n",
            self.tried(),
            self.detected(),
            self.listed()
        ));
        for (kind, n) in &self.errors {
            out.push_str(&format!("detected as {kind}: {n}\n"));
        }
        out
    }

    /// Panics with every failure if there is any.
    pub fn assert_passed(&self) {
        assert!(
            self.failures.is_empty(),
            "hostile storage suite: {} failures:\n{}\n{}",
            self.failures.len(),
            self.failures.join("\n"),
            self.table()
        );
    }
}

#[derive(Debug)]
struct Noop;

#[async_trait]
impl Revoker for Noop {
    async fn revoke(&self, _lease: &Lease) -> Result<()> {
        Ok(())
    }
}

const SECRETS: [&str; 2] = ["app/db", "app/api"];
const SEALED_KEY: &str = "s/custom/one";
const SEALED_PATH: &str = "custom/one";
const CREDENTIAL: &str = "svc/key";

struct Fixture {
    storage: DynStorage,
    protector: SoftwareProtector,
    clock: Arc<ManualClock>,
    leases: Vec<LeaseId>,
}

impl Fixture {
    fn options(&self) -> Options {
        Options {
            clock: self.clock.clone(),
            ..Options::default()
        }
    }

    fn lease_manager(&self, sr: &Strongroom) -> Result<LeaseManager> {
        let config = LeaseConfig {
            member_id: Some("hostile".into()),
            ..LeaseConfig::default()
        };
        let m = LeaseManager::new(sr, self.clock.clone(), config)?;
        m.register_revoker("noop", Arc::new(Noop));
        Ok(m)
    }

    /// Everything a reader can see, as text, read through a fresh unseal.
    async fn probe(&self) -> Result<BTreeMap<String, String>> {
        let sr = Strongroom::unseal(self.storage.clone(), &self.protector, self.options()).await?;
        let out = self.observe(&sr).await;
        sr.seal();
        out
    }

    async fn observe(&self, sr: &Strongroom) -> Result<BTreeMap<String, String>> {
        let check = sr.verify_records().await?;
        if let Some((key, reason)) = check.failed.first() {
            return Err(crate::Error::corrupt(key.clone(), reason.clone()));
        }
        let mut obs = BTreeMap::new();
        let secrets = sr.secrets();
        for path in SECRETS {
            let meta = match secrets.metadata(path).await {
                Ok(m) => m,
                Err(crate::Error::Secret(crate::secrets::SecretError::NotFound { .. })) => {
                    obs.insert(format!("secret {path}"), "absent".into());
                    continue;
                }
                Err(e) => return Err(e),
            };
            obs.insert(
                format!("secret {path}"),
                format!("current {}", meta.current_version),
            );
            for v in &meta.versions {
                let value = match secrets.get_version(path, v.version).await {
                    Ok(s) => String::from_utf8_lossy(s.value.expose_secret()).into_owned(),
                    Err(crate::Error::Secret(e)) => format!("refused: {e}"),
                    Err(e) => return Err(e),
                };
                obs.insert(
                    format!("secret {path}@{}", v.version),
                    format!("{value} deleted={}", v.deleted_at.is_some()),
                );
            }
        }
        let sealed = sr
            .get_sealed(SEALED_KEY, &SealContext::new(SEALED_PATH, 1))
            .await?;
        obs.insert(
            "sealed".into(),
            sealed.map_or("absent".into(), |s| {
                String::from_utf8_lossy(s.expose_secret()).into_owned()
            }),
        );
        let manager = self.lease_manager(sr)?;
        let stats = manager.restore().await?;
        obs.insert("leases live".into(), stats.live_leases.to_string());
        for id in &self.leases {
            let seen = match manager.lookup(*id).await {
                Ok(l) => format!(
                    "{} expires {:?} data {:?} {:?}",
                    l.path(),
                    l.expires_at(),
                    String::from_utf8_lossy(l.revocation_data()),
                    l.state()
                ),
                Err(crate::Error::Lease(crate::lease::LeaseError::NotFound { .. })) => {
                    "absent".into()
                }
                Err(e) => return Err(e),
            };
            obs.insert(format!("lease {id}"), seen);
        }
        let staged = load_staged(sr, CREDENTIAL).await?;
        for (stage, c) in [
            ("pending", &staged.pending),
            ("current", &staged.current),
            ("previous", &staged.previous),
        ] {
            obs.insert(
                format!("credential {stage}"),
                c.as_ref().map_or("none".into(), |c| {
                    format!(
                        "v{} {} {}",
                        c.version(),
                        c.identity(),
                        String::from_utf8_lossy(c.secret().expose_secret())
                    )
                }),
            );
        }
        obs.insert(
            "audit head".into(),
            format!("{:?}", sr.saved_audit_head().await?),
        );
        Ok(obs)
    }
}

async fn snapshot(storage: &DynStorage) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = storage.scan("", after.as_deref(), 500).await.unwrap();
        let full = page.len() == 500;
        after = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        if !full {
            return out;
        }
    }
}

async fn restore(storage: &DynStorage, to: &BTreeMap<String, Vec<u8>>) {
    let now = snapshot(storage).await;
    let mut ops: Vec<BatchOp> = now
        .keys()
        .filter(|k| !to.contains_key(*k))
        .map(BatchOp::delete)
        .collect();
    for (k, v) in to {
        if now.get(k) != Some(v) {
            ops.push(BatchOp::put(k.clone(), v.clone()));
        }
    }
    if !ops.is_empty() {
        storage.batch(ops).await.unwrap();
    }
}

/// The kind of the record at `key`: its key without the per-record part.
pub fn kind_of(key: &str) -> String {
    if key.starts_with("sys/") {
        return key.to_owned();
    }
    let mut parts = key.splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    if first == "s" {
        return format!("s/{}", parts.next().unwrap_or_default());
    }
    first.to_owned()
}

async fn populate(f: &mut Fixture, sr: &Strongroom) -> Result<RotationEngine> {
    let secrets = sr.secrets();
    secrets.put("app/db", b"db-1", None).await?;
    secrets.put("app/api", b"api-1", None).await?;
    secrets.put("app/api", b"api-2", None).await?;
    secrets.delete("app/api", &[1]).await?;
    sr.put_sealed(SEALED_KEY, b"sealed-1", &SealContext::new(SEALED_PATH, 1))
        .await?;
    let manager = f.lease_manager(sr)?;
    for (path, data) in [("svc/a", "lease-a"), ("svc/b", "lease-b")] {
        let l = manager
            .issue(
                path,
                "noop",
                Duration::from_secs(600),
                Duration::from_secs(3600),
                true,
                data.as_bytes().to_vec(),
            )
            .await?;
        f.leases.push(l.id());
    }
    let verifier = Arc::new(ApiKeyVerifier::new()?);
    let engine = RotationEngine::open(
        sr.clone(),
        CREDENTIAL,
        Arc::new(ApiKeyRotator::new(
            ApiKeyFormat::base62("sk_", 24),
            verifier,
        )),
        RotationOptions::default(),
    )
    .await?;
    engine.rotate_now().await?;
    sr.save_audit_head(&Checkpoint {
        seq: 1,
        mac: "ab".repeat(32),
    })
    .await?;
    Ok(engine)
}

async fn advance(f: &mut Fixture, sr: &Strongroom, engine: &RotationEngine) -> Result<()> {
    f.clock.advance(Duration::from_secs(10));
    // a second key version: later records are sealed under it, and the
    // keyring generation counter appears
    sr.rotate().await?;
    let secrets = sr.secrets();
    secrets.put("app/db", b"db-2", None).await?;
    secrets.delete("app/db", &[1]).await?;
    let manager = f.lease_manager(sr)?;
    manager.renew(f.leases[0], Duration::from_secs(900)).await?;
    let l = manager
        .issue(
            "svc/c",
            "noop",
            Duration::from_secs(600),
            Duration::from_secs(3600),
            true,
            b"lease-c".to_vec(),
        )
        .await?;
    f.leases.push(l.id());
    sr.put_sealed(SEALED_KEY, b"sealed-2", &SealContext::new(SEALED_PATH, 1))
        .await?;
    engine.rotate_now().await?;
    sr.save_audit_head(&Checkpoint {
        seq: 2,
        mac: "cd".repeat(32),
    })
    .await?;
    Ok(())
}

/// Runs the suite over `storage`, which must be empty.
pub async fn run(storage: DynStorage) -> HostileReport {
    let mut f = Fixture {
        storage: storage.clone(),
        protector: SoftwareProtector::from_key(SecretBytes::new(vec![0x42; 32])).unwrap(),
        clock: Arc::new(ManualClock::new(Timestamp::from_secs(1_700_000_000))),
        leases: Vec::new(),
    };
    let sr = Strongroom::init(storage.clone(), &f.protector, f.options())
        .await
        .unwrap();
    let engine = populate(&mut f, &sr).await.unwrap();
    let old = snapshot(&storage).await;
    // Leases issued later are looked up in the old state too (as absent).
    advance(&mut f, &sr, &engine).await.unwrap();
    drop(engine);
    sr.seal();
    let current = snapshot(&storage).await;
    let baseline = f.probe().await.expect("the untouched store reads back");
    restore(&storage, &old).await;
    let before = f.probe().await.expect("the older store reads back");
    restore(&storage, &current).await;

    // Every value any reader saw at each place, in either state.
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for obs in [&baseline, &before] {
        for (k, v) in obs {
            known.entry(k.clone()).or_default().insert(v.clone());
        }
    }

    let keys: Vec<String> = current.keys().cloned().collect();
    let mut report = HostileReport::default();
    for (i, key) in keys.iter().enumerate() {
        let kind = kind_of(key);
        let value = &current[key];
        // another record of the same kind, for swap and move
        let partner = keys
            .iter()
            .skip(i + 1)
            .chain(keys.iter().take(i))
            .find(|k| *k != key && kind_of(k) == kind)
            .cloned();
        for mutation in MUTATIONS {
            let variants: Vec<Vec<BatchOp>> = match mutation {
                "flip" => [0, value.len() / 2, value.len().saturating_sub(1)]
                    .into_iter()
                    .filter(|&at| at < value.len())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|at| {
                        let mut v = value.clone();
                        v[at] ^= 0x01;
                        vec![BatchOp::put(key.clone(), v)]
                    })
                    .collect(),
                "truncate" if value.len() > 1 => {
                    vec![vec![BatchOp::put(
                        key.clone(),
                        value[..value.len() / 2].to_vec(),
                    )]]
                }
                "swap" => partner
                    .iter()
                    .filter(|p| current[*p] != *value)
                    .map(|p| {
                        vec![
                            BatchOp::put(key.clone(), current[p].clone()),
                            BatchOp::put(p.clone(), value.clone()),
                        ]
                    })
                    .collect(),
                "move" => partner
                    .iter()
                    .filter(|p| current[*p] != *value)
                    .map(|p| {
                        vec![
                            BatchOp::delete(key.clone()),
                            BatchOp::put(p.clone(), value.clone()),
                        ]
                    })
                    .collect(),
                "drop" => vec![vec![BatchOp::delete(key.clone())]],
                "rollback" => old
                    .get(key)
                    .filter(|v| *v != value)
                    .map(|v| vec![BatchOp::put(key.clone(), v.clone())])
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            };
            for ops in variants {
                storage.batch(ops).await.unwrap();
                let outcome = {
                    let probe = Fixture {
                        storage: f.storage.clone(),
                        protector: SoftwareProtector::from_key(SecretBytes::new(vec![0x42; 32]))
                            .unwrap(),
                        clock: f.clock.clone(),
                        leases: f.leases.clone(),
                    };
                    tokio::spawn(async move { probe.probe().await }).await
                };
                restore(&storage, &current).await;
                let tally = report.by_kind.entry((kind.clone(), mutation)).or_default();
                tally.tried += 1;
                let what = format!("{mutation} {key}");
                match outcome {
                    Err(join) => report.failures.push(format!("{what}: panicked: {join}")),
                    Ok(Err(e)) => {
                        tally.detected += 1;
                        *report.errors.entry(e.kind()).or_default() += 1;
                        // A protector cannot tell a tampered wrapped root
                        // key from a wrong key: it reports a failed unwrap.
                        let unwrap = key == crate::ROOT_KEY_RECORD && e.kind() == "protector";
                        if !DETECTION_KINDS.contains(&e.kind()) && !unwrap {
                            report
                                .failures
                                .push(format!("{what}: detected as {:?}: {e}", e.kind()));
                        }
                    }
                    Ok(Ok(obs)) => {
                        let strict = matches!(mutation, "flip" | "truncate" | "swap" | "move");
                        if strict {
                            report.failures.push(format!("{what}: not detected"));
                            continue;
                        }
                        tally.listed += 1;
                        for (k, v) in &obs {
                            // a dropped record reads as absent; that is the listed limitation
                            let absent = matches!(v.as_str(), "absent" | "none" | "None");
                            let ok = absent || known.get(k).is_some_and(|seen| seen.contains(v));
                            if !ok {
                                report
                                    .failures
                                    .push(format!("{what}: {k} read {v:?}, never stored there"));
                            }
                        }
                    }
                }
            }
        }
    }
    let after = f.probe().await;
    if after.as_ref().ok() != Some(&baseline) {
        report
            .failures
            .push("the store did not read back unchanged after the suite".into());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_of("s/kv/app/db@0001"), "s/kv");
        assert_eq!(kind_of("kvm/app/db"), "kvm");
        assert_eq!(kind_of("lease-due/0001"), "lease-due");
        assert_eq!(kind_of("sys/keyring"), "sys/keyring");
    }

    #[tokio::test]
    async fn memory_store_passes() {
        let report = run(Arc::new(crate::storage::MemoryStorage::new())).await;
        println!("{}", report.table());
        report.assert_passed();
        assert!(report.tried() > 100, "{}", report.table());
    }
}
