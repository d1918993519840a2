//! The versioned secrets store: check-and-set, versions, deletion states,
//! pruning, metadata, listing, sealing bound to path and version, keyring
//! rotation, leaks and storage faults; every value in a version record of
//! its own (`SecretsOptions::inline_values` off).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::path::SecretPath;
use strongroom::protector::SoftwareProtector;
use strongroom::secrets::{
    MetadataPatch, SecretError, SecretsOptions, SecretsStore, metadata_key, version_key,
};
use strongroom::storage::{DynStorage, FaultyStorage, MemoryStorage, Storage};
use strongroom::{Error, Options, PathError, SecretBytes, Strongroom};

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![42; 32])).unwrap()
}

const T0: u64 = 1_800_000_000;

struct Fixture {
    mem: MemoryStorage,
    clock: Arc<ManualClock>,
    sr: Door,
    store: SecretsStore,
}

/// Every version's value in a version record of its own: the layout these
/// tests look at (tests/secrets_inline.rs covers values kept in the
/// metadata record, the default).
fn own_records() -> SecretsOptions {
    SecretsOptions::default().with_inline_values(false)
}

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        ..Options::default()
    }
}

async fn fixture_with(storage: DynStorage, mem: MemoryStorage, max: u32) -> Fixture {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(T0)));
    let sr = Strongroom::init(storage, &protector(), options(&clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let store = sr.secrets_with(own_records().with_default_max_versions(max));
    Fixture {
        mem,
        clock,
        sr,
        store,
    }
}

async fn fixture() -> Fixture {
    let mem = MemoryStorage::new();
    fixture_with(Arc::new(mem.clone()), mem, 10).await
}

fn secret_err(e: Error) -> SecretError {
    match e {
        Error::Secret(s) => s,
        other => panic!("expected a secrets error, got {other:?}"),
    }
}

async fn value(store: &SecretsStore, path: &str) -> Vec<u8> {
    store
        .get(path)
        .await
        .unwrap()
        .value
        .expose_secret()
        .to_vec()
}

fn p(s: &str) -> SecretPath {
    SecretPath::parse(s).unwrap()
}

#[tokio::test]
async fn cas_create_only_match_and_mismatch() {
    let f = fixture().await;
    let path = "prod/payment-svc/postgres";

    // create-only on an absent secret works, the second time it does not
    let v1 = f.store.put(path, b"pw-1", Some(0)).await.unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.created_at, Timestamp::from_secs(T0));
    let e = secret_err(f.store.put(path, b"pw-x", Some(0)).await.unwrap_err());
    assert_eq!(
        e,
        SecretError::CasMismatch {
            path: path.into(),
            expected: 0,
            current: 1
        }
    );

    // matching version writes
    let v2 = f.store.put(path, b"pw-2", Some(1)).await.unwrap();
    assert_eq!(v2.version, 2);
    // a stale version is refused and the error names the current one
    let e = secret_err(f.store.put(path, b"pw-x", Some(1)).await.unwrap_err());
    assert_eq!(
        e,
        SecretError::CasMismatch {
            path: path.into(),
            expected: 1,
            current: 2
        }
    );
    // a version from the future too
    let e = secret_err(f.store.put(path, b"pw-x", Some(7)).await.unwrap_err());
    assert!(matches!(e, SecretError::CasMismatch { current: 2, .. }));
    // cas on an absent secret reports current 0
    let e = secret_err(f.store.put("prod/other", b"x", Some(3)).await.unwrap_err());
    assert!(matches!(
        e,
        SecretError::CasMismatch {
            expected: 3,
            current: 0,
            ..
        }
    ));
    // refused writes changed nothing
    assert_eq!(value(&f.store, path).await, b"pw-2");
    assert_eq!(f.store.metadata(path).await.unwrap().current_version, 2);
    assert!(f.store.metadata("prod/other").await.is_err());

    // unconditional write
    assert_eq!(f.store.put(path, b"pw-3", None).await.unwrap().version, 3);
    assert_eq!(value(&f.store, path).await, b"pw-3");
}

/// Makes the first `n` metadata reads after [`Rendezvous::arm`] wait for each
/// other, so `n` concurrent writers all read the same state before any of
/// them writes: the race is forced, not left to scheduling luck.
#[derive(Debug)]
struct Rendezvous {
    inner: MemoryStorage,
    barrier: std::sync::Mutex<Option<(Arc<tokio::sync::Barrier>, usize)>>,
}

impl Rendezvous {
    fn arm(&self, n: usize) {
        *self.barrier.lock().unwrap() = Some((Arc::new(tokio::sync::Barrier::new(n)), n));
    }
}

#[async_trait::async_trait]
impl Storage for Rendezvous {
    fn backend(&self) -> &'static str {
        "rendezvous"
    }
    async fn get(&self, key: &str) -> strongroom::Result<Option<Vec<u8>>> {
        let wait = if key.starts_with("kvm/") {
            let mut slot = self.barrier.lock().unwrap();
            match slot.as_mut() {
                Some((b, left)) if *left > 0 => {
                    *left -= 1;
                    Some(b.clone())
                }
                _ => None,
            }
        } else {
            None
        };
        let value = self.inner.get(key).await?;
        if let Some(b) = wait {
            b.wait().await;
        }
        Ok(value)
    }
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> strongroom::Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan(prefix, start_after, limit).await
    }
    async fn batch(&self, ops: Vec<strongroom::storage::BatchOp>) -> strongroom::Result<()> {
        self.inner.batch(ops).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_writers_have_one_winner_across_handles() {
    let mem = MemoryStorage::new();
    let shared = Arc::new(Rendezvous {
        inner: mem.clone(),
        barrier: std::sync::Mutex::new(None),
    });
    let f = fixture_with(shared.clone(), mem, 10).await;
    // a second, independent handle over the same storage ("another process")
    let other = Strongroom::unseal(shared.clone(), &protector(), options(&f.clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap()
        .secrets_with(own_records());
    f.store.put("prod/race", b"v1", Some(0)).await.unwrap();

    for round in 0..5u64 {
        shared.arm(8);
        let mut handles = Vec::new();
        for i in 0..8u8 {
            let s = if i % 2 == 0 {
                f.store.clone()
            } else {
                other.clone()
            };
            handles.push(tokio::spawn(async move {
                s.put("prod/race", &[b'a' + i], Some(round + 1)).await
            }));
        }
        let mut winners = Vec::new();
        for (i, h) in handles.into_iter().enumerate() {
            match h.await.unwrap() {
                Ok(info) => winners.push((i, info.version)),
                Err(Error::Secret(SecretError::CasMismatch {
                    expected, current, ..
                })) => {
                    assert_eq!(expected, round + 1);
                    assert_eq!(current, round + 2);
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (winner, version) = winners[0];
        assert_eq!(version, round + 2);
        let got = other.get("prod/race").await.unwrap();
        assert_eq!(got.value.expose_secret(), &[b'a' + winner as u8]);
        assert_eq!(got.version.version, round + 2);
        // the losers left no sealed value behind
        assert_eq!(
            f.mem.list("s/kv/prod/race@").await.unwrap().len() as u64,
            round + 2
        );
    }

    // unconditional concurrent writers all succeed (the losers of each race
    // re-read and retry) with distinct versions
    shared.arm(8);
    let mut handles = Vec::new();
    for i in 0..8u8 {
        let s = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        handles.push(tokio::spawn(async move {
            s.put("prod/free", &[i], None).await.unwrap().version
        }));
    }
    let mut versions = BTreeSet::new();
    for h in handles {
        versions.insert(h.await.unwrap());
    }
    assert_eq!(versions, (1..=8).collect());
    assert_eq!(
        f.store.metadata("prod/free").await.unwrap().versions.len(),
        8
    );
}

#[tokio::test]
async fn read_latest_and_specific_versions() {
    let f = fixture().await;
    for i in 1..=4u64 {
        f.clock.advance(Duration::from_secs(60));
        f.store
            .put("prod/app/api-key", format!("key-{i}").as_bytes(), None)
            .await
            .unwrap();
    }
    let latest = f.store.get("prod/app/api-key").await.unwrap();
    assert_eq!(latest.value.expose_secret(), b"key-4");
    assert_eq!(latest.version.version, 4);
    assert_eq!(latest.path.as_str(), "prod/app/api-key");
    assert_eq!(latest.version.created_at, Timestamp::from_secs(T0 + 240));
    for i in 1..=4u64 {
        let v = f.store.get_version("prod/app/api-key", i).await.unwrap();
        assert_eq!(v.value.expose_secret(), format!("key-{i}").as_bytes());
        assert_eq!(v.version.version, i);
        assert_eq!(v.version.created_at, Timestamp::from_secs(T0 + 60 * i));
    }
    // never written: a missing secret and a missing version are NotFound
    assert_eq!(
        secret_err(f.store.get("prod/app/nope").await.unwrap_err()),
        SecretError::NotFound {
            path: "prod/app/nope".into(),
            version: None
        }
    );
    for v in [0, 5, u64::MAX] {
        assert_eq!(
            secret_err(
                f.store
                    .get_version("prod/app/api-key", v)
                    .await
                    .unwrap_err()
            ),
            SecretError::NotFound {
                path: "prod/app/api-key".into(),
                version: Some(v)
            }
        );
    }
    // empty and binary values are values
    f.store.put("prod/empty", b"", None).await.unwrap();
    assert!(value(&f.store, "prod/empty").await.is_empty());
    let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    f.store
        .put(
            "prod/bin",
            SecretBytes::new(bin.clone()).expose_secret(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(value(&f.store, "prod/bin").await, bin);
}

#[tokio::test]
async fn delete_undelete_destroy_have_distinct_errors() {
    let f = fixture().await;
    let path = "prod/svc/token";
    for i in 1..=3u8 {
        f.store.put(path, &[b'0' + i], None).await.unwrap();
    }
    let t_del = Timestamp::from_secs(T0 + 10);
    f.clock.advance(Duration::from_secs(10));

    // soft delete of the latest (empty list)
    assert_eq!(f.store.delete(path, &[]).await.unwrap(), vec![3]);
    let e = secret_err(f.store.get(path).await.unwrap_err());
    assert_eq!(
        e,
        SecretError::VersionDeleted {
            path: path.into(),
            version: 3,
            deleted_at: t_del
        }
    );
    // older versions still read; deleted bytes are still in storage
    assert_eq!(
        f.store
            .get_version(path, 2)
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"2"
    );
    assert!(
        f.mem
            .get(&version_key(&p(path), 3))
            .await
            .unwrap()
            .is_some()
    );
    // deleting again is a no-op
    assert!(f.store.delete(path, &[3]).await.unwrap().is_empty());

    // undelete brings it back
    assert_eq!(f.store.undelete(path, &[3]).await.unwrap(), vec![3]);
    assert_eq!(value(&f.store, path).await, b"3");
    assert!(f.store.undelete(path, &[3]).await.unwrap().is_empty());

    // destroy: bytes gone, distinct error, cannot be undeleted
    let t_destroy = Timestamp::from_secs(T0 + 20);
    f.clock.advance(Duration::from_secs(10));
    f.store.delete(path, &[1]).await.unwrap();
    assert_eq!(f.store.destroy(path, &[1, 2]).await.unwrap(), vec![1, 2]);
    for v in [1, 2] {
        assert_eq!(f.mem.get(&version_key(&p(path), v)).await.unwrap(), None);
        assert_eq!(
            secret_err(f.store.get_version(path, v).await.unwrap_err()),
            SecretError::VersionDestroyed {
                path: path.into(),
                version: v,
                destroyed_at: t_destroy
            }
        );
    }
    assert!(matches!(
        secret_err(f.store.undelete(path, &[2]).await.unwrap_err()),
        SecretError::VersionDestroyed { version: 2, .. }
    ));
    assert!(matches!(
        secret_err(f.store.delete(path, &[2]).await.unwrap_err()),
        SecretError::VersionDestroyed { version: 2, .. }
    ));
    assert!(f.store.destroy(path, &[2]).await.unwrap().is_empty());
    // an unknown version fails the whole call and changes nothing
    assert!(matches!(
        secret_err(f.store.delete(path, &[3, 9]).await.unwrap_err()),
        SecretError::NotFound {
            version: Some(9),
            ..
        }
    ));
    assert_eq!(value(&f.store, path).await, b"3");
    // the storage no longer holds the destroyed ciphertexts anywhere
    let keys: Vec<String> = f.mem.snapshot().await.into_keys().collect();
    assert!(
        keys.iter().all(|k| !k.ends_with("@00000000000000000001")),
        "{keys:?}"
    );

    // metadata records states
    let m = f.store.metadata(path).await.unwrap();
    let states: Vec<_> = m
        .versions
        .iter()
        .map(|v| (v.version, v.deleted_at.is_some(), v.destroyed_at))
        .collect();
    assert_eq!(
        states,
        vec![
            (1, true, Some(t_destroy)),
            (2, false, Some(t_destroy)),
            (3, false, None)
        ]
    );

    // a write after deleting the latest gets the next number
    f.store.delete(path, &[]).await.unwrap();
    assert_eq!(f.store.put(path, b"4", Some(3)).await.unwrap().version, 4);
    assert_eq!(value(&f.store, path).await, b"4");

    // operations on an absent secret
    for r in [
        f.store.delete("prod/none", &[]).await,
        f.store.undelete("prod/none", &[1]).await,
        f.store.destroy("prod/none", &[1]).await,
    ] {
        assert!(matches!(
            secret_err(r.unwrap_err()),
            SecretError::NotFound { version: None, .. }
        ));
    }
}

#[tokio::test]
async fn delete_metadata_removes_everything() {
    let f = fixture().await;
    for i in 0..3u8 {
        f.store.put("prod/db", &[i], None).await.unwrap();
    }
    f.store.put("prod/db/replica", b"r", None).await.unwrap();
    f.store.delete("prod/db", &[2]).await.unwrap();
    f.store.delete_metadata("prod/db").await.unwrap();
    let left: Vec<String> = f
        .mem
        .snapshot()
        .await
        .into_keys()
        .filter(|k| k.contains("prod/db"))
        .collect();
    // only the nested secret remains
    assert_eq!(
        left,
        vec![
            metadata_key(&p("prod/db/replica")),
            version_key(&p("prod/db/replica"), 1)
        ]
    );
    assert!(matches!(
        secret_err(f.store.get("prod/db").await.unwrap_err()),
        SecretError::NotFound { version: None, .. }
    ));
    assert!(f.store.metadata("prod/db").await.is_err());
    assert!(matches!(
        secret_err(f.store.delete_metadata("prod/db").await.unwrap_err()),
        SecretError::NotFound { .. }
    ));
    // a new write starts over at version 1 and create-only works again
    assert_eq!(
        f.store
            .put("prod/db", b"new", Some(0))
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(value(&f.store, "prod/db").await, b"new");
    assert_eq!(value(&f.store, "prod/db/replica").await, b"r");
}

#[tokio::test]
async fn max_versions_prunes_oldest_and_removes_their_bytes() {
    let mem = MemoryStorage::new();
    let f = fixture_with(Arc::new(mem.clone()), mem, 3).await;
    let path = "prod/rotating";
    for i in 1..=5u8 {
        f.store.put(path, &[i], None).await.unwrap();
    }
    let m = f.store.metadata(path).await.unwrap();
    assert_eq!((m.oldest_version, m.current_version), (3, 5));
    assert_eq!(m.effective_max_versions, 3);
    assert_eq!(m.max_versions, None);
    assert_eq!(m.versions.len(), 3);
    let stored: Vec<String> = f.mem.list(&format!("s/kv/{path}@")).await.unwrap();
    assert_eq!(
        stored,
        (3..=5)
            .map(|v| version_key(&p(path), v))
            .collect::<Vec<_>>()
    );
    for v in [1, 2] {
        assert_eq!(
            secret_err(f.store.get_version(path, v).await.unwrap_err()),
            SecretError::VersionPruned {
                path: path.into(),
                version: v,
                oldest: 3
            }
        );
    }
    assert_eq!(
        f.store
            .get_version(path, 3)
            .await
            .unwrap()
            .value
            .expose_secret(),
        &[3]
    );

    // per-secret limit: lowering prunes at once, raising keeps more later
    let m = f
        .store
        .update_metadata(path, MetadataPatch::new().max_versions(1))
        .await
        .unwrap();
    assert_eq!((m.oldest_version, m.effective_max_versions), (5, 1));
    assert_eq!(
        f.mem.list(&format!("s/kv/{path}@")).await.unwrap(),
        vec![version_key(&p(path), 5)]
    );
    f.store
        .update_metadata(path, MetadataPatch::new().max_versions(4))
        .await
        .unwrap();
    for i in 6..=9u8 {
        f.store.put(path, &[i], None).await.unwrap();
    }
    let m = f.store.metadata(path).await.unwrap();
    assert_eq!((m.oldest_version, m.current_version), (6, 9));
    // destroyed versions count toward the limit and prune cleanly
    f.store.destroy(path, &[6]).await.unwrap();
    f.store.put(path, &[10], None).await.unwrap();
    assert_eq!(f.store.metadata(path).await.unwrap().oldest_version, 7);

    // out-of-range limits are refused
    for bad in [0, 1001] {
        assert!(matches!(
            secret_err(
                f.store
                    .update_metadata(path, MetadataPatch::new().max_versions(bad))
                    .await
                    .unwrap_err()
            ),
            SecretError::InvalidMetadata { .. }
        ));
    }
}

#[tokio::test]
async fn metadata_round_trip() {
    let f = fixture().await;
    let path = "prod/payment-svc/postgres";
    f.store.put(path, b"one", None).await.unwrap();
    let m = f.store.metadata(path).await.unwrap();
    assert_eq!(m.created_at, Timestamp::from_secs(T0));
    assert_eq!(m.updated_at, Timestamp::from_secs(T0));
    assert_eq!(m.last_rotated_at, None);
    assert_eq!(m.owner, None);
    assert_eq!(m.rotation_due_at(), None);

    f.clock.advance(Duration::from_secs(100));
    let patch = MetadataPatch::new()
        .owner("team-payments")
        .environment("prod")
        .tags(["pci", "db"])
        .custom([("ticket", "SEC-42"), ("runbook", "https://wiki/x")])
        .rotation_interval(Duration::from_secs(86_400));
    let updated = f.store.update_metadata(path, patch).await.unwrap();
    let read = f.store.metadata(path).await.unwrap();
    assert_eq!(updated, read);
    assert_eq!(read.owner.as_deref(), Some("team-payments"));
    assert_eq!(read.environment.as_deref(), Some("prod"));
    assert_eq!(
        read.tags,
        BTreeSet::from(["db".to_owned(), "pci".to_owned()])
    );
    assert_eq!(
        read.custom,
        BTreeMap::from([
            ("runbook".to_owned(), "https://wiki/x".to_owned()),
            ("ticket".to_owned(), "SEC-42".to_owned())
        ])
    );
    assert_eq!(read.rotation_interval, Some(Duration::from_secs(86_400)));
    assert_eq!(read.updated_at, Timestamp::from_secs(T0 + 100));
    assert_eq!(read.created_at, Timestamp::from_secs(T0));
    // rotation is due a day after creation
    assert_eq!(
        read.rotation_due_at(),
        Some(Timestamp::from_secs(T0 + 86_400))
    );
    assert!(!read.rotation_due(Timestamp::from_secs(T0 + 86_399)));
    assert!(read.rotation_due(Timestamp::from_secs(T0 + 86_400)));

    // a new version is a rotation; metadata survives writes
    f.clock.advance(Duration::from_secs(1000));
    f.store.put(path, b"two", Some(1)).await.unwrap();
    let m = f.store.metadata(path).await.unwrap();
    let t = Timestamp::from_secs(T0 + 1100);
    assert_eq!(m.last_rotated_at, Some(t));
    assert_eq!(m.updated_at, t);
    assert_eq!(m.rotation_due_at(), Some(t + Duration::from_secs(86_400)));
    assert_eq!(m.owner.as_deref(), Some("team-payments"));
    assert_eq!((m.oldest_version, m.current_version), (1, 2));
    assert_eq!(m.versions[1].created_at, t);

    // a second handle sees the same metadata (it is stored, not cached)
    let other = Strongroom::unseal(Arc::new(f.mem.clone()), &protector(), options(&f.clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap()
        .secrets_with(own_records());
    assert_eq!(other.metadata(path).await.unwrap(), m);

    // clearing fields
    let mut clear = MetadataPatch::new();
    clear.owner = Some(None);
    clear.rotation_interval = Some(None);
    clear.tags = Some(BTreeSet::new());
    let m = f.store.update_metadata(path, clear).await.unwrap();
    assert_eq!(m.owner, None);
    assert_eq!(m.rotation_interval, None);
    assert!(m.tags.is_empty());
    assert_eq!(m.environment.as_deref(), Some("prod"));

    // bad metadata is refused, and changes nothing
    for bad in [
        MetadataPatch::new().owner(""),
        MetadataPatch::new().tags(["ok", "bad\n"]),
        MetadataPatch::new().tags((0..65).map(|i| format!("t{i}"))),
        MetadataPatch::new().custom([("k", "v".repeat(1025))]),
        MetadataPatch::new().rotation_interval(Duration::from_millis(10)),
    ] {
        assert!(matches!(
            secret_err(f.store.update_metadata(path, bad).await.unwrap_err()),
            SecretError::InvalidMetadata { .. }
        ));
    }
    assert_eq!(f.store.metadata(path).await.unwrap(), m);
    // metadata of an absent secret
    assert!(matches!(
        secret_err(
            f.store
                .update_metadata("prod/none", MetadataPatch::new().owner("x"))
                .await
                .unwrap_err()
        ),
        SecretError::NotFound { .. }
    ));

    // the metadata record is stored sealed (a barrier record bound to its
    // key); its plaintext is the JSON of docs/FORMAT.md
    let raw = f.mem.get(&metadata_key(&p(path))).await.unwrap().unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&raw).is_err());
    let plain =
        f.sr.barrier()
            .get(&metadata_key(&p(path)))
            .await
            .unwrap()
            .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["current_version"], 2);
}

#[tokio::test]
async fn list_one_level_like_vault() {
    let f = fixture().await;
    for path in [
        "prod/payment-svc/postgres",
        "prod/payment-svc/stripe-key",
        "prod/payment-svc/db/replica",
        "prod/auth/jwt-key",
        "prod/top",
        "prod-eu/x",
        "staging/auth/jwt-key",
        "db",
        "db/inner",
    ] {
        f.store.put(path, b"v", None).await.unwrap();
    }
    assert_eq!(
        f.store.list("").await.unwrap(),
        vec!["db", "db/", "prod-eu/", "prod/", "staging/"]
    );
    assert_eq!(
        f.store.list("/").await.unwrap(),
        f.store.list("").await.unwrap()
    );
    assert_eq!(
        f.store.list("prod").await.unwrap(),
        vec!["auth/", "payment-svc/", "top"]
    );
    assert_eq!(
        f.store.list("prod/").await.unwrap(),
        f.store.list("prod").await.unwrap()
    );
    assert_eq!(
        f.store.list("prod/payment-svc").await.unwrap(),
        vec!["db/", "postgres", "stripe-key"]
    );
    assert!(f.store.list("prod/nothing").await.unwrap().is_empty());
    // a secret name is not a folder prefix of its neighbours
    assert!(f.store.list("prod/top").await.unwrap().is_empty());

    let all: Vec<String> = f
        .store
        .list_all("prod")
        .await
        .unwrap()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        all,
        vec![
            "prod/auth/jwt-key",
            "prod/payment-svc/db/replica",
            "prod/payment-svc/postgres",
            "prod/payment-svc/stripe-key",
            "prod/top"
        ]
    );
    assert_eq!(f.store.list_all("").await.unwrap().len(), 9);

    // deleting the only secret in a folder removes the folder from listings
    f.store.delete_metadata("prod/auth/jwt-key").await.unwrap();
    assert_eq!(
        f.store.list("prod").await.unwrap(),
        vec!["payment-svc/", "top"]
    );
    // bad prefixes are path errors
    assert!(matches!(
        f.store.list("prod/../staging").await,
        Err(Error::InvalidPath { .. })
    ));
}

#[tokio::test]
async fn list_pages_through_many_folders_and_secrets() {
    let f = fixture().await;
    let mut expected = Vec::new();
    for i in 0..300u32 {
        f.store
            .put(&format!("big/s{i:03}"), b"v", None)
            .await
            .unwrap();
        expected.push(format!("s{i:03}"));
    }
    for i in 0..40u32 {
        for j in 0..10u32 {
            f.store
                .put(&format!("big/f{i:02}/x{j}"), b"v", None)
                .await
                .unwrap();
        }
        expected.push(format!("f{i:02}/"));
    }
    expected.sort();
    assert_eq!(f.store.list("big").await.unwrap(), expected);
    assert_eq!(f.store.list_all("big").await.unwrap().len(), 700);
}

#[tokio::test]
async fn invalid_paths_are_rejected_everywhere() {
    let f = fixture().await;
    for bad in [
        "",
        "prod/../admin",
        "Prod/x",
        "prod/x ",
        "prod//x",
        "sys/keyring",
        "prod/%2e",
    ] {
        let results = [
            f.store.put(bad, b"v", None).await.map(|_| ()),
            f.store.get(bad).await.map(|_| ()),
            f.store.get_version(bad, 1).await.map(|_| ()),
            f.store.delete(bad, &[]).await.map(|_| ()),
            f.store.undelete(bad, &[1]).await.map(|_| ()),
            f.store.destroy(bad, &[1]).await.map(|_| ()),
            f.store.delete_metadata(bad).await,
            f.store.metadata(bad).await.map(|_| ()),
            f.store
                .update_metadata(bad, MetadataPatch::new())
                .await
                .map(|_| ()),
        ];
        for r in results {
            assert!(
                matches!(r, Err(Error::InvalidPath { .. })),
                "{bad:?}: {r:?}"
            );
        }
    }
    assert!(matches!(
        f.store.put("Prod/x", b"v", None).await,
        Err(Error::InvalidPath {
            reason: PathError::UpperCase,
            ..
        })
    ));
    // nothing reached storage besides the store's own records
    assert!(f.mem.snapshot().await.keys().all(|k| k.starts_with("sys/")));
}

#[tokio::test]
async fn sealed_values_are_bound_to_path_and_version() {
    let f = fixture().await;
    f.store.put("prod/a", b"value-a1", None).await.unwrap();
    f.store.put("prod/a", b"value-a2", None).await.unwrap();
    f.store.put("prod/b", b"value-b1", None).await.unwrap();
    let a1 = f
        .mem
        .get(&version_key(&p("prod/a"), 1))
        .await
        .unwrap()
        .unwrap();

    // moved to another version of the same secret
    f.mem.put(&version_key(&p("prod/a"), 2), &a1).await.unwrap();
    assert!(matches!(
        f.store.get_version("prod/a", 2).await,
        Err(Error::DecryptionFailed)
    ));
    assert!(matches!(
        f.store.get("prod/a").await,
        Err(Error::DecryptionFailed)
    ));
    // moved to another secret
    f.mem.put(&version_key(&p("prod/b"), 1), &a1).await.unwrap();
    assert!(matches!(
        f.store.get("prod/b").await,
        Err(Error::DecryptionFailed)
    ));

    // even with the record envelope rewritten to name the new place, the
    // associated data does not match and the value does not open
    let rec = strongroom::SealedRecord::decode("k", &a1).unwrap();
    let sealed = a1[rec.sealed_offset..].to_vec();
    let forged =
        strongroom::SealedRecord::encode(&strongroom::seal::SealContext::new("prod/b", 1), &sealed)
            .unwrap();
    f.mem
        .put(&version_key(&p("prod/b"), 1), &forged)
        .await
        .unwrap();
    assert!(matches!(
        f.store.get("prod/b").await,
        Err(Error::DecryptionFailed)
    ));
    // the original is untouched and still opens
    assert_eq!(
        f.store
            .get_version("prod/a", 1)
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"value-a1"
    );
}

#[tokio::test]
async fn keyring_rotation_and_rewrap_keep_every_version_readable() {
    let f = fixture().await;
    let path = "prod/svc/key";
    for i in 1..=3u8 {
        f.store.put(path, &[b'a', i], None).await.unwrap();
    }
    f.store.delete(path, &[2]).await.unwrap();
    f.store.destroy(path, &[1]).await.unwrap();
    f.sr.rotate().await.unwrap();
    f.store.put(path, b"after-rotate", None).await.unwrap();
    f.store.put("prod/other", b"o", None).await.unwrap();

    let report = f.sr.rewrap(2).await.unwrap();
    assert!(report.unreadable.is_empty(), "{report:?}");
    assert_eq!(report.rewrapped, 2); // versions 2 and 3; 1 is destroyed
    // the old key can be retired and destroyed: nothing needs it any more
    f.sr.set_min_decryption_version(2).await.unwrap();
    f.sr.destroy_key(1).await.unwrap();

    f.store.undelete(path, &[2]).await.unwrap();
    assert_eq!(
        f.store
            .get_version(path, 2)
            .await
            .unwrap()
            .value
            .expose_secret(),
        &[b'a', 2]
    );
    assert_eq!(
        f.store
            .get_version(path, 3)
            .await
            .unwrap()
            .value
            .expose_secret(),
        &[b'a', 3]
    );
    assert_eq!(value(&f.store, path).await, b"after-rotate");
    assert!(matches!(
        secret_err(f.store.get_version(path, 1).await.unwrap_err()),
        SecretError::VersionDestroyed { .. }
    ));
    // a second handle (reloading the rotated keyring) reads them too
    let other = Strongroom::unseal(Arc::new(f.mem.clone()), &protector(), options(&f.clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap()
        .secrets_with(own_records());
    assert_eq!(
        other
            .get_version(path, 2)
            .await
            .unwrap()
            .value
            .expose_secret(),
        &[b'a', 2]
    );
}

#[tokio::test]
async fn canary_never_leaks_into_storage_errors_or_debug() {
    let f = fixture().await;
    let canary = "canary-3f9c1e7a-never-log-me";
    let path = "prod/canary-svc/password";
    let mut texts: Vec<String> = Vec::new();

    let info = f.store.put(path, canary.as_bytes(), Some(0)).await.unwrap();
    texts.push(format!("{info:?}"));
    // error paths taken while holding the canary
    let e = f
        .store
        .put(path, canary.as_bytes(), Some(0))
        .await
        .unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let e = f
        .store
        .put("Bad/Path", canary.as_bytes(), None)
        .await
        .unwrap_err();
    texts.push(format!("{e} {e:?}"));
    f.store.put(path, canary.as_bytes(), Some(1)).await.unwrap();

    let got = f.store.get(path).await.unwrap();
    assert_eq!(got.value.expose_secret(), canary.as_bytes());
    texts.push(format!("{got:?} {got:#?}"));
    texts.push(format!("{:?}", f.store.get_version(path, 1).await.unwrap()));
    texts.push(format!("{:?}", f.store.metadata(path).await.unwrap()));
    texts.push(format!("{:?}", f.store.list("prod").await.unwrap()));
    texts.push(format!("{:?}", f.store));

    f.store.delete(path, &[1]).await.unwrap();
    let e = f.store.get_version(path, 1).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    f.store.destroy(path, &[1]).await.unwrap();
    let e = f.store.get_version(path, 1).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    // a failing write carrying the canary
    let faulty = FaultyStorage::new(Arc::new(f.mem.clone()));
    let sr2 = Strongroom::unseal(Arc::new(faulty.clone()), &protector(), options(&f.clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    faulty.fail_from_write(1);
    let e = sr2
        .secrets_with(own_records())
        .put(path, canary.as_bytes(), None)
        .await
        .unwrap_err();
    texts.push(format!("{e} {e:?}"));
    // decryption failure of a moved canary
    let raw = f.mem.get(&version_key(&p(path), 2)).await.unwrap().unwrap();
    f.store
        .put("prod/canary-svc/other", b"x", None)
        .await
        .unwrap();
    f.mem
        .put(&version_key(&p("prod/canary-svc/other"), 1), &raw)
        .await
        .unwrap();
    let e = f.store.get("prod/canary-svc/other").await.unwrap_err();
    texts.push(format!("{e} {e:?}"));

    for t in &texts {
        assert!(!t.contains(canary), "canary leaked: {t}");
    }
    for (k, v) in f.mem.snapshot().await {
        assert!(
            !v.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "plaintext canary stored at {k}"
        );
        assert!(!k.contains(canary));
    }
}

#[tokio::test]
async fn storage_faults_leave_the_previous_version_intact() {
    let mem = MemoryStorage::new();
    let faulty = FaultyStorage::new(Arc::new(mem.clone()));
    let f = fixture_with(Arc::new(faulty.clone()), mem, 2).await;
    let path = "prod/fragile";
    f.store.put(path, b"v1", None).await.unwrap();
    f.store.put(path, b"v2", None).await.unwrap();
    f.store
        .update_metadata(path, MetadataPatch::new().owner("ops"))
        .await
        .unwrap();
    let before = f.mem.snapshot().await;
    let meta_before = f.store.metadata(path).await.unwrap();

    faulty.fail_from_write(1);
    // every kind of write fails cleanly ...
    let results = [
        f.store.put(path, b"v3", None).await.map(|_| ()),
        f.store.put(path, b"v3", Some(2)).await.map(|_| ()),
        f.store.put("prod/new", b"n", Some(0)).await.map(|_| ()),
        f.store.delete(path, &[]).await.map(|_| ()),
        f.store.destroy(path, &[1]).await.map(|_| ()),
        f.store.delete_metadata(path).await,
        f.store
            .update_metadata(path, MetadataPatch::new().max_versions(1))
            .await
            .map(|_| ()),
    ];
    for r in results {
        assert!(matches!(r, Err(Error::Storage { .. })), "{r:?}");
    }
    // ... and leaves storage byte-for-byte as it was (no partial writes)
    assert_eq!(f.mem.snapshot().await, before);
    assert_eq!(value(&f.store, path).await, b"v2");
    assert_eq!(
        f.store
            .get_version(path, 1)
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"v1"
    );
    assert_eq!(f.store.metadata(path).await.unwrap(), meta_before);

    faulty.heal();
    // after healing, the CAS on the previous version still works
    assert_eq!(f.store.put(path, b"v3", Some(2)).await.unwrap().version, 3);
    assert_eq!(value(&f.store, path).await, b"v3");
    // and pruning happened in the same write
    assert_eq!(f.store.metadata(path).await.unwrap().oldest_version, 2);
    assert_eq!(f.mem.get(&version_key(&p(path), 1)).await.unwrap(), None);
}

#[tokio::test]
async fn corrupt_metadata_is_reported_not_guessed() {
    let f = fixture().await;
    f.store.put("prod/x", b"v", None).await.unwrap();
    f.mem
        .put(&metadata_key(&p("prod/x")), b"{not json")
        .await
        .unwrap();
    let e = f.store.get("prod/x").await.unwrap_err();
    assert!(
        matches!(&e, Error::CorruptRecord { key, .. } if key == "kvm/prod/x"),
        "{e:?}"
    );
    assert!(matches!(
        f.store.put("prod/x", b"w", None).await,
        Err(Error::CorruptRecord { .. })
    ));
}

#[tokio::test]
async fn sealed_store_refuses_work() {
    let f = fixture().await;
    f.store.put("prod/x", b"v", None).await.unwrap();
    f.sr.seal();
    assert!(matches!(f.store.get("prod/x").await, Err(Error::Sealed)));
    assert!(matches!(
        f.store.put("prod/x", b"w", None).await,
        Err(Error::Sealed)
    ));
    // the failed write changed nothing
    let other = Strongroom::unseal(Arc::new(f.mem.clone()), &protector(), options(&f.clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap()
        .secrets_with(own_records());
    assert_eq!(value(&other, "prod/x").await, b"v");
    assert_eq!(other.metadata("prod/x").await.unwrap().current_version, 1);
}

#[tokio::test]
async fn put_with_reports_create_or_update_and_can_refuse() {
    use strongroom::secrets::WriteKind;
    let f = fixture().await;
    let seen = std::sync::Mutex::new(Vec::new());
    let record = |k: WriteKind| {
        seen.lock().unwrap().push(k);
        Ok(())
    };
    f.store
        .put_with("prod/k", b"1", None, record)
        .await
        .unwrap();
    f.store
        .put_with("prod/k", b"2", Some(1), record)
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![WriteKind::Create, WriteKind::Update]
    );

    // a refusal aborts before anything is sealed or written, and before the
    // CAS check (a refused caller does not learn the current version)
    let before = f.mem.snapshot().await;
    let deny_updates = |k: WriteKind| match k {
        WriteKind::Create => Ok(()),
        _ => Err(Error::InvalidArgument("updates not allowed".into())),
    };
    let e = f
        .store
        .put_with("prod/k", b"3", Some(99), deny_updates)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert_eq!(f.mem.snapshot().await, before);
    assert_eq!(value(&f.store, "prod/k").await, b"2");
    // the same check allows creating another secret
    f.store
        .put_with("prod/new", b"n", Some(0), deny_updates)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_metadata_update_and_cas_write_both_apply() {
    let mem = MemoryStorage::new();
    let shared = Arc::new(Rendezvous {
        inner: mem.clone(),
        barrier: std::sync::Mutex::new(None),
    });
    let f = fixture_with(shared.clone(), mem, 10).await;
    f.store.put("prod/m", b"v1", None).await.unwrap();
    for round in 1..=3u64 {
        // both read the same record; one batch fails its precondition, and
        // the loser re-reads: a metadata change does not move the version,
        // so the CAS write still applies, and the owner change is not lost
        shared.arm(2);
        let (a, b) = (f.store.clone(), f.store.clone());
        let w = tokio::spawn(async move { a.put("prod/m", b"v", Some(round)).await });
        let u = tokio::spawn(async move {
            b.update_metadata("prod/m", MetadataPatch::new().owner(format!("o{round}")))
                .await
        });
        assert_eq!(w.await.unwrap().unwrap().version, round + 1);
        u.await.unwrap().unwrap();
        let m = f.store.metadata("prod/m").await.unwrap();
        assert_eq!(m.current_version, round + 1);
        assert_eq!(m.owner, Some(format!("o{round}")));
    }
}
