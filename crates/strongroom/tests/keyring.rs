//! The store facade: init/unseal/seal, sealing values, keyring rotation,
//! rewrap, reservation of encryption counts, and bad input.

use std::sync::Arc;

use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::keyring::{KeyState, KeyringOptions};
use strongroom::protector::SoftwareProtector;
use strongroom::seal::{SealContext, SealedValue};
use strongroom::storage::{DynStorage, FaultyStorage, MemoryStorage, Storage};
use strongroom::{Error, Options, ProtectorErrorKind, SecretBytes, Strongroom};

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![42; 32])).unwrap()
}

fn options(threshold: u64, block: u64) -> Options {
    Options {
        keyring: KeyringOptions {
            rotate_after_encryptions: threshold,
            reservation_block: block,
            ..Default::default()
        },
        clock: Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000))),
        ..Options::default()
    }
}

async fn fresh() -> (MemoryStorage, Door) {
    let mem = MemoryStorage::new();
    let sr = Strongroom::init(Arc::new(mem.clone()), &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    (mem, sr)
}

#[tokio::test]
async fn init_unseal_seal_lifecycle() {
    let (mem, sr) = fresh().await;
    let ctx = SealContext::new("prod/db", 1);
    let sealed = sr.seal_value(b"pw-1", &ctx).await.unwrap();
    assert_eq!(
        sr.open_value(&sealed, &ctx).unwrap().expose_secret(),
        b"pw-1"
    );

    let storage: DynStorage = Arc::new(mem.clone());
    assert!(matches!(
        Strongroom::init(storage.clone(), &protector(), Options::default()).await,
        Err(Error::AlreadyInitialized)
    ));
    // "restart": a second handle over the same storage opens the same values
    let again = Strongroom::unseal(storage.clone(), &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    assert_eq!(
        again.open_value(&sealed, &ctx).unwrap().expose_secret(),
        b"pw-1"
    );

    sr.seal();
    assert!(sr.is_sealed());
    assert!(matches!(sr.open_value(&sealed, &ctx), Err(Error::Sealed)));
    assert!(matches!(
        sr.seal_value(b"x", &ctx).await,
        Err(Error::Sealed)
    ));
    assert!(matches!(sr.rotate().await, Err(Error::Sealed)));
    // other handles are unaffected
    assert!(again.open_value(&sealed, &ctx).is_ok());
}

#[tokio::test]
async fn unseal_errors_are_clear() {
    let empty: DynStorage = Arc::new(MemoryStorage::new());
    assert!(matches!(
        Strongroom::unseal(empty, &protector(), Options::default()).await,
        Err(Error::NotInitialized)
    ));
    let (mem, _sr) = fresh().await;
    let wrong = SoftwareProtector::from_key(SecretBytes::new(vec![43; 32])).unwrap();
    let e = Strongroom::unseal(Arc::new(mem.clone()), &wrong, Options::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Protector {
                kind: ProtectorErrorKind::UnwrapFailed,
                ..
            }
        ),
        "{e:?}"
    );
    // a corrupted keyring record: the root key unwraps but the keyring does not open
    let mut kr = mem.get(strongroom::KEYRING_RECORD).await.unwrap().unwrap();
    let n = kr.len();
    kr[n - 1] ^= 1;
    mem.put(strongroom::KEYRING_RECORD, &kr).await.unwrap();
    let e = Strongroom::unseal(Arc::new(mem.clone()), &protector(), Options::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnsealFailed), "{e:?}");
}

#[tokio::test]
async fn storage_sees_no_plaintext() {
    let (mem, sr) = fresh().await;
    let canary = b"canary-value-5d1e7b";
    for v in 1..=3 {
        let ctx = SealContext::new("prod/canary", v);
        sr.put_sealed(&format!("s/kv/prod/canary/{v}"), canary, &ctx)
            .await
            .unwrap();
    }
    for (k, v) in mem.snapshot().await {
        assert!(
            !v.windows(canary.len()).any(|w| w == canary),
            "plaintext at {k}"
        );
    }
}

#[tokio::test]
async fn rotate_rewrap_retire_destroy() {
    let (mem, sr) = fresh().await;
    for i in 0..25u64 {
        let path = format!("app/{i}");
        sr.put_sealed(
            &format!("s/t/{i:03}"),
            path.as_bytes(),
            &SealContext::new(&path, i),
        )
        .await
        .unwrap();
    }
    let v2 = sr.rotate().await.unwrap();
    assert_eq!((v2.version, v2.state), (2, KeyState::Primary));
    let ctx = SealContext::new("x", 0);
    assert_eq!(sr.seal_value(b"x", &ctx).await.unwrap().key_version(), 2);

    // v1 cannot be destroyed while records need it, nor while active
    sr.set_min_decryption_version(2).await.unwrap();
    let e = sr.destroy_key(1).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::KeyInUse {
                version: 1,
                records: 25,
                ..
            }
        ),
        "{e:?}"
    );
    // retired: records under v1 are refused with a typed error
    let e = sr
        .get_sealed("s/t/000", &SealContext::new("app/0", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::KeyVersionRetired { version: 1, .. }),
        "{e:?}"
    );
    // rewrap reports them unreadable and changes nothing
    let r = sr.rewrap(10).await.unwrap();
    assert_eq!(r.unreadable.len(), 25);
    sr.set_min_decryption_version(1).await.unwrap();

    let r = sr.rewrap(10).await.unwrap();
    assert_eq!((r.scanned, r.rewrapped), (25, 25));
    assert!(r.unreadable.is_empty());
    let r = sr.rewrap(10).await.unwrap();
    assert_eq!(r.rewrapped, 0, "rewrap is idempotent");
    for (k, v) in mem.snapshot().await {
        if let Some(rest) = k.strip_prefix("s/") {
            let rec = strongroom::SealedRecord::decode(&k, &v).unwrap();
            assert_eq!(
                strongroom::seal::header_key_version(&v[rec.sealed_offset..]).unwrap(),
                2,
                "{rest}"
            );
        }
    }
    sr.set_min_decryption_version(2).await.unwrap();
    sr.destroy_key(1).await.unwrap();
    let keys = sr.keys().unwrap();
    assert_eq!(keys[0].state, KeyState::Destroyed);
    for i in 0..25u64 {
        let path = format!("app/{i}");
        let got = sr
            .get_sealed(&format!("s/t/{i:03}"), &SealContext::new(&path, i))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.expose_secret(), path.as_bytes());
    }
    // promote back to a destroyed key is refused; state unchanged
    assert!(matches!(
        sr.promote(1).await,
        Err(Error::InvalidKeyTransition {
            version: 1,
            from: KeyState::Destroyed,
            ..
        })
    ));
    assert_eq!(sr.keyring().unwrap().primary_version(), 2);
}

#[tokio::test]
async fn rewrap_resumes_after_a_crash() {
    let mem = MemoryStorage::new();
    let faulty = FaultyStorage::new(Arc::new(mem.clone()));
    let storage: DynStorage = Arc::new(faulty.clone());
    let sr = Strongroom::init(storage.clone(), &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    for i in 0..40u64 {
        sr.put_sealed(
            &format!("s/r/{i:03}"),
            &i.to_be_bytes(),
            &SealContext::new("r", i),
        )
        .await
        .unwrap();
    }
    sr.rotate().await.unwrap();
    faulty.fail_from_write(3); // two batches of 10 land, the third fails
    assert!(matches!(sr.rewrap(10).await, Err(Error::Storage { .. })));
    faulty.heal();
    // cursor format 2 (a barrier record: stored sealed): target version 2,
    // then the last key done
    assert!(
        !mem.get(strongroom::REWRAP_CURSOR)
            .await
            .unwrap()
            .unwrap()
            .ends_with(b"s/r/019")
    );
    assert_eq!(
        sr.barrier()
            .get(strongroom::REWRAP_CURSOR)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"\x02\x00\x00\x00\x02s/r/019"[..])
    );
    // a new process resumes from the cursor
    let sr2 = Strongroom::unseal(storage, &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let r = sr2.rewrap(10).await.unwrap();
    assert_eq!((r.scanned, r.rewrapped), (20, 20));
    assert_eq!((r.target_version, r.remaining, r.passes), (2, 0, 1));
    assert!(r.is_complete());
    assert_eq!(mem.get(strongroom::REWRAP_CURSOR).await.unwrap(), None);
    for i in 0..40u64 {
        let v = sr2
            .get_sealed(&format!("s/r/{i:03}"), &SealContext::new("r", i))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.expose_secret(), &i.to_be_bytes());
    }
}

/// The reported failure: a rewrap killed halfway, another rotation, then a
/// rewrap again used to resume the old cursor, skip the first half and
/// report success with records left on the older key.
#[tokio::test]
async fn rewrap_after_a_rotation_in_between_starts_over_and_leaves_nothing_behind() {
    let mem = MemoryStorage::new();
    let faulty = FaultyStorage::new(Arc::new(mem.clone()));
    let storage: DynStorage = Arc::new(faulty.clone());
    let sr = Strongroom::init(storage.clone(), &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    for i in 0..60u64 {
        sr.put_sealed(&format!("s/r/{i:03}"), b"v", &SealContext::new("r", i))
            .await
            .unwrap();
    }
    sr.rotate().await.unwrap(); // v2
    faulty.fail_from_write(4);
    assert!(sr.rewrap(10).await.is_err()); // 30 on v2, 30 on v1, cursor at 029
    faulty.heal();
    sr.rotate().await.unwrap(); // v3: the cursor's target is stale
    let r = sr.rewrap(10).await.unwrap();
    assert_eq!(r.target_version, 3);
    assert_eq!(r.remaining, 0, "{r:?}");
    assert_eq!(r.rewrapped, 60);
    let versions: Vec<u32> = mem
        .snapshot()
        .await
        .iter()
        .filter(|(k, _)| k.starts_with("s/"))
        .map(|(k, v)| {
            let rec = strongroom::SealedRecord::decode(k, v).unwrap();
            strongroom::seal::header_key_version(&v[rec.sealed_offset..]).unwrap()
        })
        .collect();
    assert_eq!(versions.len(), 60);
    assert!(versions.iter().all(|v| *v == 3), "{versions:?}");
    // retiring v1 and v2 now loses nothing
    sr.set_min_decryption_version(3).await.unwrap();
    for i in 0..60u64 {
        sr.get_sealed(&format!("s/r/{i:03}"), &SealContext::new("r", i))
            .await
            .unwrap()
            .unwrap();
    }
}

/// A record rewrap cannot open is counted as remaining: the report is not
/// complete and the CLI exits non-zero.
#[tokio::test]
async fn rewrap_counts_unreadable_records_as_remaining() {
    let mem = MemoryStorage::new();
    let sr = Strongroom::init(Arc::new(mem.clone()), &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    for i in 0..5u64 {
        sr.put_sealed(&format!("s/r/{i}"), b"v", &SealContext::new("r", i))
            .await
            .unwrap();
    }
    let mut bad = mem.get("s/r/2").await.unwrap().unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    mem.put("s/r/2", &bad).await.unwrap();
    sr.rotate().await.unwrap();
    let r = sr.rewrap(100).await.unwrap();
    assert_eq!(r.unreadable, vec!["s/r/2".to_owned()]);
    assert_eq!((r.rewrapped, r.remaining), (4, 1));
    assert!(!r.is_complete());
}

/// A process whose keyring is stale (another process rotated and retired
/// the key it seals with) cannot store a value under the retired key: its
/// write conflicts on the generation, reloads, re-seals and lands under the
/// new primary.
#[tokio::test]
async fn a_stale_process_never_stores_under_a_retired_key() {
    let mem = MemoryStorage::new();
    let a = Strongroom::init(Arc::new(mem.clone()), &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    // b: a second "process" on the same storage, with no change notices
    // (plain wrapper without watch) so its keyring really is stale
    let b = Strongroom::unseal(
        Arc::new(FaultyStorage::new(Arc::new(NoWatch(mem.clone())))),
        &protector(),
        Options::default(),
    )
    .await
    .unwrap()
    .dangerous_traced("test")
    .await
    .unwrap();
    assert_eq!(b.keyring().unwrap().primary_version(), 1);
    a.rotate().await.unwrap();
    a.set_min_decryption_version(2).await.unwrap();
    assert_eq!(a.keyring_generation().unwrap(), 2);
    // b still believes v1 is primary
    assert_eq!(b.keyring().unwrap().primary_version(), 1);
    b.put_sealed("s/x/1", b"payload", &SealContext::new("x", 1))
        .await
        .unwrap();
    assert_eq!(b.keyring().unwrap().primary_version(), 2);
    let raw = mem.get("s/x/1").await.unwrap().unwrap();
    let rec = strongroom::SealedRecord::decode("s/x/1", &raw).unwrap();
    assert_eq!(
        strongroom::seal::header_key_version(&raw[rec.sealed_offset..]).unwrap(),
        2
    );
    // and v1 can be destroyed without losing it
    a.destroy_key(1).await.unwrap();
    let got = a
        .get_sealed("s/x/1", &SealContext::new("x", 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), b"payload");
    // the secrets store's writes go the same way
    a.rotate().await.unwrap();
    a.set_min_decryption_version(3).await.unwrap();
    b.secrets().put("app/db", b"pw", None).await.unwrap();
    // s/x/1 is still on v2 (destroying it would lose it): rewrap first
    assert!(matches!(
        a.destroy_key(2).await,
        Err(Error::KeyInUse {
            version: 2,
            records: 1,
            ..
        })
    ));
    // rewrap refuses to open under a retired key, so bring v2 back first
    a.set_min_decryption_version(2).await.unwrap();
    assert!(a.rewrap(100).await.unwrap().is_complete());
    a.set_min_decryption_version(3).await.unwrap();
    a.destroy_key(2).await.unwrap();
    assert_eq!(
        a.secrets()
            .get("app/db")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"pw"
    );
}

/// A storage without change notices (a plain delegate).
#[derive(Debug)]
struct NoWatch(MemoryStorage);

#[async_trait::async_trait]
impl strongroom::storage::Storage for NoWatch {
    fn backend(&self) -> &'static str {
        "nowatch"
    }
    async fn get(&self, key: &str) -> strongroom::Result<Option<Vec<u8>>> {
        self.0.get(key).await
    }
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> strongroom::Result<Vec<(String, Vec<u8>)>> {
        self.0.scan(prefix, start_after, limit).await
    }
    async fn batch(&self, ops: Vec<strongroom::storage::BatchOp>) -> strongroom::Result<()> {
        self.0.batch(ops).await
    }
}

#[tokio::test]
async fn keyring_rotates_itself_at_the_threshold() {
    let mem = MemoryStorage::new();
    let sr = Strongroom::init(Arc::new(mem.clone()), &protector(), options(10, 4))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let ctx = SealContext::new("c", 0);
    let mut versions = Vec::new();
    for _ in 0..25 {
        versions.push(sr.seal_value(b"x", &ctx).await.unwrap().key_version());
    }
    assert_eq!(versions.iter().filter(|v| **v == 1).count(), 10);
    assert_eq!(versions.iter().filter(|v| **v == 2).count(), 10);
    assert_eq!(versions.iter().filter(|v| **v == 3).count(), 5);
    let keys = sr.keys().unwrap();
    assert_eq!(keys[0].encryptions_reserved, 10);
    assert_eq!(keys[2].state, KeyState::Primary);
}

#[tokio::test]
async fn encryption_count_never_goes_backwards_across_a_crash() {
    let mem = MemoryStorage::new();
    let storage: DynStorage = Arc::new(mem.clone());
    let sr = Strongroom::init(storage.clone(), &protector(), options(1000, 8))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let ctx = SealContext::new("c", 0);
    for _ in 0..3 {
        sr.seal_value(b"x", &ctx).await.unwrap();
    }
    assert_eq!(sr.keys().unwrap()[0].encryptions_reserved, 8);
    drop(sr); // crash: 5 reserved encryptions are lost, never reused
    let sr = Strongroom::unseal(storage.clone(), &protector(), options(1000, 8))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    sr.seal_value(b"x", &ctx).await.unwrap();
    assert_eq!(sr.keys().unwrap()[0].encryptions_reserved, 16);

    // two processes sharing the store reserve disjoint blocks
    let other = Strongroom::unseal(storage, &protector(), options(1000, 8))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    other.seal_value(b"x", &ctx).await.unwrap();
    assert_eq!(other.keys().unwrap()[0].encryptions_reserved, 24);
    for _ in 0..8 {
        sr.seal_value(b"x", &ctx).await.unwrap();
    }
    sr.reload().await.unwrap();
    assert_eq!(sr.keys().unwrap()[0].encryptions_reserved, 32);
}

#[tokio::test]
async fn another_process_rotation_is_picked_up_on_read() {
    let mem = MemoryStorage::new();
    let storage: DynStorage = Arc::new(mem.clone());
    let a = Strongroom::init(storage.clone(), &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let b = Strongroom::unseal(storage, &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    a.rotate().await.unwrap();
    let ctx = SealContext::new("shared/x", 1);
    a.put_sealed("s/x", b"from-a", &ctx).await.unwrap();
    let got = b.get_sealed("s/x", &ctx).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), b"from-a");
    assert_eq!(b.keyring().unwrap().primary_version(), 2);
}

#[tokio::test]
async fn bad_sealed_values_get_typed_errors_and_lose_nothing() {
    let (mem, sr) = fresh().await;
    let ctx = SealContext::new("prod/db", 4);
    sr.put_sealed("s/db", b"pw", &ctx).await.unwrap();
    let good = mem.get("s/db").await.unwrap().unwrap();
    // moved to another path or version
    for other in [
        SealContext::new("prod/other", 4),
        SealContext::new("prod/db", 5),
    ] {
        assert!(matches!(
            sr.get_sealed("s/db", &other).await,
            Err(Error::DecryptionFailed)
        ));
    }
    // envelope rewritten to claim the other context: still fails (AAD)
    let moved_ctx = SealContext::new("prod/other", 4);
    let rec = strongroom::SealedRecord::decode("s/db", &good).unwrap();
    let forged = strongroom::SealedRecord::encode(&moved_ctx, &good[rec.sealed_offset..]).unwrap();
    mem.put("s/moved", &forged).await.unwrap();
    assert!(matches!(
        sr.get_sealed("s/moved", &moved_ctx).await,
        Err(Error::DecryptionFailed)
    ));
    // truncated envelope
    mem.put("s/trunc", &good[..5]).await.unwrap();
    assert!(matches!(
        sr.get_sealed("s/trunc", &ctx).await,
        Err(Error::CorruptRecord { .. })
    ));
    // unknown key version in the header
    let mut unknown = good.clone();
    let off = rec.sealed_offset + 4;
    unknown[off..off + 4].copy_from_slice(&99u32.to_be_bytes());
    mem.put("s/unknown", &unknown).await.unwrap();
    let e = sr.get_sealed("s/unknown", &ctx).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnknownKeyVersion {
                version: 99,
                latest: 1
            }
        ),
        "{e:?}"
    );
    // a value sealed directly: flipped tag
    let sealed = sr.seal_value(b"abc", &ctx).await.unwrap();
    let mut t = sealed.clone().into_bytes();
    let n = t.len();
    t[n - 1] ^= 0x80;
    assert!(matches!(
        sr.open_value(&SealedValue::from_vec(t).unwrap(), &ctx),
        Err(Error::DecryptionFailed)
    ));
    // nothing was lost
    assert_eq!(
        sr.get_sealed("s/db", &ctx)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        b"pw"
    );
    assert_eq!(mem.get("s/db").await.unwrap().unwrap(), good);
}

#[tokio::test]
async fn sealed_records_must_live_under_the_sealed_prefix() {
    let (_mem, sr) = fresh().await;
    let e = sr
        .put_sealed("kv/x", b"v", &SealContext::new("x", 0))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)));
}

#[tokio::test]
async fn debug_output_holds_no_keys() {
    let (_mem, sr) = fresh().await;
    let d = format!("{sr:?} {:?}", sr.keyring().unwrap());
    assert!(d.contains("Strongroom"));
    let audit = sr.audit_key().unwrap();
    assert!(!d.contains(&hex::encode(audit.expose_secret())));
}

#[tokio::test]
async fn open_value_into_opens_into_a_caller_buffer_with_the_keyring_checks() {
    let (_mem, sr) = fresh().await;
    let ctx = SealContext::new("prod/db", 1);
    let old = sr.seal_value(b"pw-1", &ctx).await.unwrap();
    let mut out = [0u8; 4];
    sr.open_value_into(old.as_bytes(), &mut out, &ctx).unwrap();
    assert_eq!(&out, b"pw-1");
    sr.rotate().await.unwrap();
    sr.set_min_decryption_version(2).await.unwrap();
    let mut out = [0u8; 4];
    assert!(matches!(
        sr.open_value_into(old.as_bytes(), &mut out, &ctx),
        Err(Error::KeyVersionRetired { version: 1, .. })
    ));
    assert_eq!(out, [0u8; 4]);
    let mut bad = old.as_bytes().to_vec();
    bad[4..8].copy_from_slice(&99u32.to_be_bytes());
    assert!(matches!(
        sr.open_value_into(&bad, &mut out, &ctx),
        Err(Error::UnknownKeyVersion { version: 99, .. })
    ));
    sr.seal();
    assert!(matches!(
        sr.open_value_into(old.as_bytes(), &mut out, &ctx),
        Err(Error::Sealed)
    ));
}

#[tokio::test]
async fn try_seal_value_into_waits_for_nothing_and_reports_a_needed_reservation() {
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let options = Options {
        keyring: KeyringOptions {
            reservation_block: 2,
            ..KeyringOptions::default()
        },
        ..Options::default()
    };
    let sr = Strongroom::init(storage, &protector(), options)
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let ctx = SealContext::new("prod/db", 1);
    let mut sealed = Vec::new();
    for _ in 0..2 {
        let mut out = vec![0u8; 4 + strongroom::seal::OVERHEAD];
        assert!(sr.try_seal_value_into(b"pw-1", &mut out, &ctx).unwrap());
        sealed.push(out);
    }
    let mut out = vec![0u8; 4 + strongroom::seal::OVERHEAD];
    assert!(!sr.try_seal_value_into(b"pw-1", &mut out, &ctx).unwrap());
    assert!(out.iter().all(|&b| b == 0), "nothing written");
    // seal_value reserves a new block; the fast path works again after it.
    sr.seal_value(b"pw-2", &ctx).await.unwrap();
    assert!(sr.try_seal_value_into(b"pw-1", &mut out, &ctx).unwrap());
    sealed.push(out);
    for s in sealed {
        let v = SealedValue::from_vec(s).unwrap();
        assert_eq!(sr.open_value(&v, &ctx).unwrap().expose_secret(), b"pw-1");
    }
}

#[tokio::test]
async fn root_key_rotation_moves_to_another_protector() {
    let (mem, sr) = fresh().await;
    let storage: DynStorage = Arc::new(mem.clone());
    let ctx = SealContext::new("prod/db", 1);
    sr.put_sealed("s/db", b"pw", &ctx).await.unwrap();
    let before = mem.get("s/db").await.unwrap();
    let new = SoftwareProtector::from_key(SecretBytes::new(vec![77; 32])).unwrap();
    sr.rotate_root_key(&new).await.unwrap();
    // the old protector no longer opens the store; the new one does
    let e = Strongroom::unseal(storage.clone(), &protector(), Options::default())
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Protector {
            kind: ProtectorErrorKind::UnwrapFailed,
            ..
        }
    ));
    let again = Strongroom::unseal(storage, &new, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    assert_eq!(
        again
            .get_sealed("s/db", &ctx)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        b"pw"
    );
    // values were not touched, and the running handle keeps working
    assert_eq!(mem.get("s/db").await.unwrap(), before);
    sr.rotate().await.unwrap();
    again.reload().await.unwrap();
    assert_eq!(again.keyring().unwrap().primary_version(), 2);
}

/// A process still holding the old root key follows a root-key rotation
/// made by another process (through the hand-over record) while it is
/// within the grace period, and fails closed with a typed error after it.
#[tokio::test]
async fn other_processes_follow_a_root_key_rotation_within_the_grace_period() {
    let mem = MemoryStorage::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let opts = |block: u64| Options {
        keyring: KeyringOptions {
            reservation_block: block,
            ..KeyringOptions::default()
        },
        clock: clock.clone(),
        ..Options::default()
    };
    let a = Strongroom::init(Arc::new(mem.clone()), &protector(), opts(4))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let stale = |block| {
        let mem = mem.clone();
        let o = opts(block);
        async move {
            Strongroom::unseal(Arc::new(NoWatch(mem)), &protector(), o)
                .await
                .unwrap()
                .dangerous_traced("test")
                .await
                .unwrap()
        }
    };
    let b = stale(4).await;
    let c = stale(4).await;
    let new = SoftwareProtector::from_key(SecretBytes::new(vec![77; 32])).unwrap();
    a.rotate_root_key(&new).await.unwrap();
    assert!(
        mem.get(strongroom::ROOT_UPGRADE_RECORD)
            .await
            .unwrap()
            .is_some()
    );
    // b writes well past its reserved block (4): each new reservation needs
    // the keyring, now sealed under a root b never saw
    for i in 0..20u64 {
        b.put_sealed(&format!("s/b/{i}"), b"v", &SealContext::new("b", i))
            .await
            .unwrap();
    }
    b.rotate().await.unwrap();
    a.reload().await.unwrap();
    assert_eq!(a.keyring().unwrap().primary_version(), 2);
    for i in 0..20u64 {
        a.get_sealed(&format!("s/b/{i}"), &SealContext::new("b", i))
            .await
            .unwrap()
            .unwrap();
    }
    // c was paused past the grace period: the hand-over is refused (and
    // swept); c fails closed and nothing it holds is written
    clock.advance(strongroom::ROOT_UPGRADE_GRACE + std::time::Duration::from_secs(1));
    assert!(matches!(c.reload().await, Err(Error::UnsealFailed)));
    assert!(
        mem.get(strongroom::ROOT_UPGRADE_RECORD)
            .await
            .unwrap()
            .is_none()
    );
    // unsealing again with the new protector is the way back
    let c = Strongroom::unseal(Arc::new(mem.clone()), &new, opts(4))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    assert_eq!(c.keyring().unwrap().primary_version(), 2);
}
