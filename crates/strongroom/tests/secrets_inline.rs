//! `SecretsOptions::inline_values` (the default): the current version's
//! value kept in the metadata record (format 2 in docs/FORMAT.md), moved to a version record
//! of its own by the next write, gone with a destroy; read and updated by
//! stores with the option off (another process sharing the storage); sealed,
//! rewrapped and authenticated like every metadata record.

use std::sync::Arc;

use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::path::SecretPath;
use strongroom::protector::SoftwareProtector;
use strongroom::secrets::{
    MAX_INLINE_VALUE, MetadataPatch, SecretError, SecretsOptions, SecretsStore, metadata_key,
    version_key,
};
use strongroom::storage::{FaultyStorage, MemoryStorage, Storage};
use strongroom::{Error, Options, SecretBytes, Strongroom};

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![42; 32])).unwrap()
}

struct Fixture {
    mem: MemoryStorage,
    faulty: FaultyStorage,
    clock: Arc<ManualClock>,
    door: Door,
    /// Inline values on.
    store: SecretsStore,
}

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        ..Options::default()
    }
}

async fn fixture() -> Fixture {
    let mem = MemoryStorage::new();
    let faulty = FaultyStorage::new(Arc::new(mem.clone()));
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let door = Strongroom::init(Arc::new(faulty.clone()), &protector(), options(&clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let store = door.secrets_with(inline());
    Fixture {
        mem,
        faulty,
        clock,
        door,
        store,
    }
}

fn inline() -> SecretsOptions {
    SecretsOptions::default().with_inline_values(true)
}

impl Fixture {
    /// A second handle over the same storage ("another process") with
    /// `options`.
    async fn other(&self, options: SecretsOptions) -> SecretsStore {
        Strongroom::unseal(
            Arc::new(self.mem.clone()),
            &protector(),
            self::options(&self.clock),
        )
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap()
        .secrets_with(options)
    }

    async fn stored(&self, key: &str) -> Option<Vec<u8>> {
        self.mem.get(key).await.unwrap()
    }

    async fn has_version_record(&self, path: &str, version: u64) -> bool {
        self.stored(&version_key(&p(path), version)).await.is_some()
    }
}

fn p(s: &str) -> SecretPath {
    SecretPath::parse(s).unwrap()
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

async fn value_at(store: &SecretsStore, path: &str, version: u64) -> Vec<u8> {
    let v = store.get_version(path, version).await.unwrap();
    assert_eq!(v.version.version, version);
    v.value.expose_secret().to_vec()
}

fn secret_err(e: Error) -> SecretError {
    match e {
        Error::Secret(s) => s,
        other => panic!("expected a secrets error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_current_value_lives_in_the_metadata_record_until_the_next_write() {
    let f = fixture().await;
    let path = "prod/db/password";
    let v1 = f.store.put(path, b"first", None).await.unwrap();
    assert_eq!(v1.version, 1);
    // One record: no version record of its own.
    assert!(!f.has_version_record(path, 1).await);
    assert!(f.stored(&metadata_key(&p(path))).await.is_some());

    // A read of the current version is one storage read.
    let before = f.faulty.reads();
    let got = f.store.get(path).await.unwrap();
    assert_eq!(f.faulty.reads() - before, 1);
    assert_eq!(got.value.expose_secret(), b"first");
    assert_eq!(got.version.version, 1);
    assert_eq!(value_at(&f.store, path, 1).await, b"first");

    // The next write moves it to its version record, sealed for (path, 1).
    f.store.put(path, b"second", Some(1)).await.unwrap();
    assert!(f.has_version_record(path, 1).await);
    assert!(!f.has_version_record(path, 2).await);
    assert_eq!(value(&f.store, path).await, b"second");
    assert_eq!(value_at(&f.store, path, 1).await, b"first");
    assert_eq!(value_at(&f.store, path, 2).await, b"second");
    let meta = f.store.metadata(path).await.unwrap();
    assert_eq!(meta.current_version, 2);
    assert_eq!(meta.versions.len(), 2);

    // Check-and-set works on the same record.
    assert!(matches!(
        secret_err(f.store.put(path, b"x", Some(1)).await.unwrap_err()),
        SecretError::CasMismatch { current: 2, .. }
    ));
    // Nothing anywhere in storage holds a value in the clear.
    for key in f.mem.list("").await.unwrap() {
        let stored = f.stored(&key).await.unwrap();
        for v in [&b"first"[..], b"second"] {
            assert!(!stored.windows(v.len()).any(|w| w == v), "{key}");
        }
    }
}

#[tokio::test]
async fn values_over_the_limit_get_a_record_of_their_own() {
    let f = fixture().await;
    let path = "prod/tls/bundle";
    let big = vec![7u8; MAX_INLINE_VALUE + 1];
    let edge = vec![8u8; MAX_INLINE_VALUE];
    f.store.put(path, &big, None).await.unwrap();
    assert!(f.has_version_record(path, 1).await);
    assert_eq!(value(&f.store, path).await, big);
    // At the limit: inline; the big first version stays where it is.
    f.store.put(path, &edge, None).await.unwrap();
    assert!(!f.has_version_record(path, 2).await);
    assert_eq!(value(&f.store, path).await, edge);
    assert_eq!(value_at(&f.store, path, 1).await, big);
    // Over it again: the inline version 2 moves out, version 3 has its own.
    f.store.put(path, &big, None).await.unwrap();
    assert!(f.has_version_record(path, 2).await);
    assert!(f.has_version_record(path, 3).await);
    assert_eq!(value_at(&f.store, path, 2).await, edge);
    assert_eq!(value(&f.store, path).await, big);
}

#[tokio::test]
async fn delete_undelete_and_destroy_of_an_inline_version() {
    let f = fixture().await;
    let path = "prod/api/key";
    f.store.put(path, b"one", None).await.unwrap();
    f.store.delete(path, &[]).await.unwrap();
    assert!(matches!(
        secret_err(f.store.get(path).await.unwrap_err()),
        SecretError::VersionDeleted { version: 1, .. }
    ));
    f.store.undelete(path, &[1]).await.unwrap();
    assert_eq!(value(&f.store, path).await, b"one");

    // Destroyed: the value goes with it, so the next write has nothing to
    // move into a record for version 1.
    f.store.destroy(path, &[]).await.unwrap();
    assert!(matches!(
        secret_err(f.store.get(path).await.unwrap_err()),
        SecretError::VersionDestroyed { version: 1, .. }
    ));
    f.store.put(path, b"two", None).await.unwrap();
    assert!(!f.has_version_record(path, 1).await);
    assert!(matches!(
        secret_err(f.store.get_version(path, 1).await.unwrap_err()),
        SecretError::VersionDestroyed { version: 1, .. }
    ));
    assert_eq!(value(&f.store, path).await, b"two");

    // A soft-deleted inline version still moves out, and reads back once
    // undeleted.
    f.store.delete(path, &[2]).await.unwrap();
    f.store.put(path, b"three", None).await.unwrap();
    assert!(f.has_version_record(path, 2).await);
    f.store.undelete(path, &[2]).await.unwrap();
    assert_eq!(value_at(&f.store, path, 2).await, b"two");

    // Removing the secret removes everything.
    f.store.delete_metadata(path).await.unwrap();
    assert!(f.mem.list("s/kv/").await.unwrap().is_empty());
    assert!(f.stored(&metadata_key(&p(path))).await.is_none());
}

#[tokio::test]
async fn a_pruned_inline_version_is_not_moved() {
    let f = fixture().await;
    let path = "prod/one/only";
    f.store.put(path, b"a", None).await.unwrap();
    f.store
        .update_metadata(path, MetadataPatch::new().max_versions(1))
        .await
        .unwrap();
    f.store.put(path, b"b", None).await.unwrap();
    assert!(f.mem.list("s/kv/").await.unwrap().is_empty());
    assert!(matches!(
        secret_err(f.store.get_version(path, 1).await.unwrap_err()),
        SecretError::VersionPruned { version: 1, .. }
    ));
    assert_eq!(value(&f.store, path).await, b"b");
}

#[tokio::test]
async fn stores_with_the_option_off_read_and_keep_inline_values() {
    let f = fixture().await;
    let plain = f
        .other(SecretsOptions::default().with_inline_values(false))
        .await;
    let path = "prod/mixed/secret";
    f.store.put(path, b"inline-1", None).await.unwrap();
    // Read through the combined read of a store with the option off.
    assert_eq!(value(&plain, path).await, b"inline-1");
    assert_eq!(value_at(&plain, path, 1).await, b"inline-1");
    // Its metadata change keeps the value in the record.
    plain
        .update_metadata(path, MetadataPatch::new().owner("team-db"))
        .await
        .unwrap();
    assert_eq!(value(&f.store, path).await, b"inline-1");
    assert!(!f.has_version_record(path, 1).await);
    // Its write moves version 1 out and gives version 2 its own record.
    plain.put(path, b"plain-2", None).await.unwrap();
    assert!(f.has_version_record(path, 1).await);
    assert!(f.has_version_record(path, 2).await);
    assert_eq!(value(&f.store, path).await, b"plain-2");
    assert_eq!(value_at(&f.store, path, 1).await, b"inline-1");
    // And the inline store reads a secret written without the option (one
    // more read: the value is in its own record).
    plain.put("prod/mixed/old", b"old", None).await.unwrap();
    assert_eq!(value(&f.store, "prod/mixed/old").await, b"old");
    assert_eq!(
        f.store.metadata(path).await.unwrap().owner.as_deref(),
        Some("team-db")
    );
}

#[tokio::test]
async fn inline_values_survive_rotation_rewrap_and_the_old_keys_destruction() {
    let f = fixture().await;
    f.store.put("prod/a", b"before-rotate", None).await.unwrap();
    f.store.put("prod/b", b"b1", None).await.unwrap();
    f.store.put("prod/b", b"b2", None).await.unwrap();
    f.door.rotate().await.unwrap();
    let report = f.door.rewrap(2).await.unwrap();
    assert!(report.unreadable.is_empty(), "{report:?}");
    f.door.set_min_decryption_version(2).await.unwrap();
    f.door.destroy_key(1).await.unwrap();
    assert_eq!(value(&f.store, "prod/a").await, b"before-rotate");
    assert_eq!(value(&f.store, "prod/b").await, b"b2");
    assert_eq!(value_at(&f.store, "prod/b", 1).await, b"b1");
    let other = f.other(inline()).await;
    assert_eq!(value(&other, "prod/a").await, b"before-rotate");
    assert!(f.door.verify_records().await.unwrap().is_clean());
}

#[tokio::test]
async fn a_tampered_or_truncated_metadata_record_is_a_corrupt_record() {
    let f = fixture().await;
    let path = "prod/tamper/me";
    f.store.put(path, b"value", None).await.unwrap();
    let key = metadata_key(&p(path));
    let good = f.stored(&key).await.unwrap();
    let corrupt = |e: Error| matches!(&e, Error::CorruptRecord { key: k, .. } if *k == key);
    for bad in [
        good[..good.len() - 1].to_vec(),
        {
            let mut b = good.clone();
            let last = b.len() - 1;
            b[last] ^= 1;
            b
        },
        [good.clone(), b"x".to_vec()].concat(),
    ] {
        f.mem.put(&key, &bad).await.unwrap();
        let e = f.store.get(path).await.unwrap_err();
        assert!(corrupt(e), "get");
        let e = f.store.put(path, b"w", None).await.unwrap_err();
        assert!(corrupt(e), "put");
    }
    // Nothing was lost: the good record reads again.
    f.mem.put(&key, &good).await.unwrap();
    assert_eq!(value(&f.store, path).await, b"value");
}

#[tokio::test]
async fn concurrent_writers_on_both_options_lose_nothing() {
    let f = fixture().await;
    let plain = f
        .other(SecretsOptions::default().with_inline_values(false))
        .await;
    let path = "prod/race/inline";
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let s = if i % 2 == 0 {
            f.store.clone()
        } else {
            plain.clone()
        };
        tasks.push(tokio::spawn(async move {
            s.put(path, &[b'v', i], None).await.unwrap().version
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=16).collect::<Vec<_>>());
    // Every kept version reads back as one of the written values.
    let meta = f.store.metadata(path).await.unwrap();
    assert_eq!(meta.current_version, 16);
    for v in meta.versions.iter().map(|v| v.version) {
        let got = value_at(&f.store, path, v).await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], b'v');
    }
}

#[tokio::test]
async fn an_inline_canary_never_leaks_into_storage_errors_or_debug() {
    let f = fixture().await;
    let canary = "canary-8d2e4b1f-inline-never-log-me";
    let path = "prod/canary/inline";
    let mut texts: Vec<String> = Vec::new();
    let info = f.store.put(path, canary.as_bytes(), Some(0)).await.unwrap();
    texts.push(format!("{info:?}"));
    let e = f
        .store
        .put(path, canary.as_bytes(), Some(0))
        .await
        .unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let got = f.store.get(path).await.unwrap();
    assert_eq!(got.value.expose_secret(), canary.as_bytes());
    texts.push(format!("{got:?} {got:#?}"));
    texts.push(format!("{:?}", f.store.metadata(path).await.unwrap()));
    texts.push(format!("{:?}", f.store.list("prod").await.unwrap()));
    texts.push(format!("{:?}", f.store));
    f.store.delete(path, &[]).await.unwrap();
    let e = f.store.get(path).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    f.store.undelete(path, &[]).await.unwrap();
    // A metadata record moved to another secret's key.
    f.store.put("prod/canary/other", b"x", None).await.unwrap();
    let raw = f.stored(&metadata_key(&p(path))).await.unwrap();
    f.mem
        .put(&metadata_key(&p("prod/canary/other")), &raw)
        .await
        .unwrap();
    let e = f.store.get("prod/canary/other").await.unwrap_err();
    assert!(matches!(e, Error::CorruptRecord { .. }), "{e:?}");
    texts.push(format!("{e} {e:?}"));
    let check = f.door.verify_records().await.unwrap();
    assert_eq!(check.failed.len(), 1, "{check:?}");
    texts.push(format!("{check:?}"));
    for t in &texts {
        assert!(!t.contains(canary), "canary leaked: {t}");
    }
    for (k, v) in f.mem.snapshot().await {
        assert!(
            !v.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "plaintext canary stored at {k}"
        );
    }
}
