//! Signing keys: the handle's checks and records, several processes on one
//! store, rotation and retirement, rate limits, tampering (the published
//! vectors are in `vectors`).

use std::sync::Arc;
use std::time::Duration;

use super::*;
use super::{material, record};
use crate::audit::{AuditLog, MemorySink, Operation, Outcome};
use crate::clock::{ManualClock, Timestamp};
use crate::policy::{Capability, Policy, Principal, Rule};
use crate::protector::SoftwareProtector;
use crate::storage::{MemoryStorage, Storage};
use crate::{Error, Options, SecretBytes, Strongroom};

pub(super) const ALL_CAPS: [Capability; 5] = [
    Capability::Create,
    Capability::Rotate,
    Capability::Update,
    Capability::Read,
    Capability::Sign,
];

/// One "process": a store opened on the shared storage, with its own audit
/// log and its own engine.
pub(super) struct Proc {
    sr: Strongroom,
    sink: Arc<MemorySink>,
    audit: Arc<AuditLog>,
    pub(super) keys: Arc<SigningKeys>,
}

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![9; 32])).unwrap()
}

async fn first(storage: &Arc<MemoryStorage>, clock: &Arc<ManualClock>) -> Proc {
    let options = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let sr = Strongroom::init(storage.clone(), &protector(), options)
        .await
        .unwrap();
    proc_of(sr).await
}

async fn another(storage: &Arc<MemoryStorage>, clock: &Arc<ManualClock>) -> Proc {
    let options = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let sr = Strongroom::unseal(storage.clone(), &protector(), options)
        .await
        .unwrap();
    proc_of(sr).await
}

async fn proc_of(sr: Strongroom) -> Proc {
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let keys = Arc::new(sr.dangerous_traced("test").await.unwrap().signing_keys());
    Proc {
        sr,
        sink,
        audit,
        keys,
    }
}

pub(super) async fn setup() -> (Arc<MemoryStorage>, Arc<ManualClock>, Proc) {
    let storage = Arc::new(MemoryStorage::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000_000)));
    let p = first(&storage, &clock).await;
    (storage, clock, p)
}

impl Proc {
    pub(super) fn handle(&self, caps: &[Capability]) -> SigningHandle {
        let rules = vec![Rule::allow("keys/*", caps.iter().copied()).unwrap()];
        let principal = Principal::new("app", [&Policy::new("app", rules)]);
        self.sr
            .as_principal(principal, self.audit.clone())
            .signing(&self.keys)
    }

    /// A fresh engine on the same store (nothing cached).
    async fn fresh_keys(&self) -> SigningKeys {
        self.sr
            .dangerous_traced("test")
            .await
            .unwrap()
            .signing_keys()
    }
}

fn signing_kind(e: &Error) -> &'static str {
    e.kind()
}

#[tokio::test]
async fn every_key_type_signs_verifies_and_exports_only_public_keys() {
    let (_, _, p) = setup().await;
    let h = p.handle(&ALL_CAPS);
    for (t, raw_len, spki_len, name) in [
        (KeyType::Ed25519, 32, 44, "keys/ed"),
        (KeyType::EcdsaP256, 65, 91, "keys/p256"),
        (KeyType::Secp256k1, 65, 88, "keys/k1"),
    ] {
        let info = h.create_key(name, t, KeyOptions::default()).await.unwrap();
        assert_eq!((info.key_type, info.latest_version), (t, 1));
        let sig = h.sign(name, b"payload").await.unwrap();
        assert_eq!(sig.version(), 1);
        assert!(h.verify(name, b"payload", &sig).await.unwrap(), "{t}");
        assert!(!h.verify(name, b"payloaD", &sig).await.unwrap(), "{t}");
        let mut bent = sig.as_bytes().to_vec();
        let last = bent.len() - 2;
        bent[last] ^= 1;
        let bent = Signature::new(1, bent);
        assert!(!h.verify(name, b"payload", &bent).await.unwrap(), "{t}");
        let public = h.public_key(name, None).await.unwrap();
        assert_eq!(public.raw().len(), raw_len);
        let der = public.spki_der();
        assert_eq!(der.len(), spki_len);
        assert!(der.ends_with(public.raw()));
        assert!(
            public
                .spki_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        // the signature verifies against the exported key alone
        assert!(material::verify(
            t,
            public.raw(),
            b"payload",
            sig.as_bytes()
        ));
    }
    let addr = h.eth_address("keys/k1", None).await.unwrap();
    assert!(addr.starts_with("0x") && addr.len() == 42);
    // Ethereum operations need a secp256k1 key
    let err = h
        .eth_sign_personal_message("keys/ed", b"m")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "signing_wrong_key_type");
    assert_eq!(err.details().code, "signing.wrong_key_type");
    let err = h.eth_address("keys/p256", None).await.unwrap_err();
    assert_eq!(err.kind(), "signing_wrong_key_type");
}

#[tokio::test]
async fn denials_are_audited_and_signatures_recorded_by_hmac_only() {
    let (_, _, p) = setup().await;
    let admin = p.handle(&ALL_CAPS);
    admin
        .create_key("keys/release", KeyType::Ed25519, KeyOptions::default())
        .await
        .unwrap();
    // `read` but no `sign`: refused and audited
    let reader = p.handle(&[Capability::Read]);
    let err = reader
        .sign("keys/release", b"secret message")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy_denied");
    let err = reader
        .create_key("keys/other", KeyType::Ed25519, KeyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy_denied");
    // outside the policy's paths
    let err = admin.sign("elsewhere/key", b"x").await.unwrap_err();
    assert_eq!(err.kind(), "policy_denied");

    let msg = b"transfer 100 to alice";
    let sig = admin.sign("keys/release", msg).await.unwrap();
    let records = p.sink.records().unwrap();
    let denied: Vec<_> = records
        .iter()
        .filter(|r| r.event.outcome == Outcome::Denied)
        .map(|r| (r.event.operation, r.event.path.clone().unwrap()))
        .collect();
    assert_eq!(
        denied,
        [
            (Operation::Sign, "keys/release".to_owned()),
            (Operation::SigningKeyCreate, "keys/other".to_owned()),
            (Operation::Sign, "elsewhere/key".to_owned()),
        ]
    );
    let signs: Vec<_> = records
        .iter()
        .filter(|r| r.event.operation == Operation::Sign && r.event.outcome == Outcome::Allowed)
        .collect();
    // intent, then outcome with the version
    assert_eq!(signs.len(), 2);
    assert_eq!(signs[0].event.version, None);
    assert_eq!(signs[1].event.version, Some(1));
    let expected = p.audit.hmac(msg);
    for r in &signs {
        assert_eq!(r.event.fields.get(MESSAGE_HMAC_FIELD), Some(&expected));
    }
    let text = p.sink.lines().join("\n");
    assert!(
        !text.contains("transfer 100"),
        "the message leaked into the trail"
    );
    assert!(!text.contains(&hex::encode(msg)));
    let sig_b64 = sig.to_text();
    assert!(!text.contains(&sig_b64["strongroom:v1:".len()..]));
}

#[tokio::test]
async fn two_processes_create_once_and_follow_each_others_rotations() {
    let (storage, clock, a) = setup().await;
    let b = another(&storage, &clock).await;
    let (ha, hb) = (a.handle(&ALL_CAPS), b.handle(&ALL_CAPS));

    // concurrent creation: one winner, the other a typed error
    let (ra, rb) = tokio::join!(
        ha.create_key("keys/shared", KeyType::Secp256k1, KeyOptions::default()),
        hb.create_key("keys/shared", KeyType::Secp256k1, KeyOptions::default()),
    );
    let kinds: Vec<_> = [&ra, &rb]
        .iter()
        .map(|r| r.as_ref().map(|_| "ok").unwrap_or_else(signing_kind))
        .collect();
    assert!(
        kinds == ["ok", "signing_key_exists"] || kinds == ["signing_key_exists", "ok"],
        "{kinds:?}"
    );
    // both see the same key
    let pa = ha.public_key("keys/shared", None).await.unwrap();
    let pb = hb.public_key("keys/shared", None).await.unwrap();
    assert_eq!(pa, pb);

    let old = ha.sign("keys/shared", b"m").await.unwrap();
    assert_eq!(old.version(), 1);
    // B rotates; A's next signature uses version 2
    assert_eq!(
        hb.rotate_key("keys/shared").await.unwrap().latest_version,
        2
    );
    let new = ha.sign("keys/shared", b"m").await.unwrap();
    assert_eq!(new.version(), 2);
    assert!(hb.verify("keys/shared", b"m", &new).await.unwrap());
    // the old signature still verifies, in both processes
    assert!(ha.verify("keys/shared", b"m", &old).await.unwrap());
    assert!(hb.verify("keys/shared", b"m", &old).await.unwrap());
    // until B raises the minimum verify version
    hb.set_min_verify_version("keys/shared", 2).await.unwrap();
    let err = ha.verify("keys/shared", b"m", &old).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Signing(SigningError::VersionRetired {
            version: 1,
            min_verify_version: 2,
            ..
        })
    ));
    assert!(ha.verify("keys/shared", b"m", &new).await.unwrap());
    // lowering it again is refused
    let err = ha
        .set_min_verify_version("keys/shared", 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "signing_invalid_min_verify_version");
    // versions that never existed are typed too
    let ghost = Signature::new(7, new.as_bytes().to_vec());
    let err = ha.verify("keys/shared", b"m", &ghost).await.unwrap_err();
    assert_eq!(err.kind(), "signing_unknown_version");
    let err = ha.public_key("keys/shared", Some(1)).await.unwrap_err();
    assert_eq!(err.kind(), "signing_version_retired");
    let err = ha.sign("keys/missing", b"m").await.unwrap_err();
    assert_eq!(err.kind(), "signing_unknown_key");
}

/// The writes are compare-and-set on the metadata record: a creator that
/// passed its existence check before another process wrote, or a rotation
/// that read a record since changed, loses with a typed error and writes
/// nothing.
#[tokio::test]
async fn writes_over_a_stale_read_are_refused() {
    let (storage, clock, a) = setup().await;
    let b = another(&storage, &clock).await;
    a.keys
        .create_key("keys/cas", KeyType::Ed25519, KeyOptions::default())
        .await
        .unwrap();
    let stale = b.keys.load("keys/cas").await.unwrap();
    // B creates as if the key were absent (its check ran before A wrote)
    let err = b
        .keys
        .write("keys/cas", None, &stale.rec, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "signing_key_exists");
    // A rotates; B's write over what it read before is a conflict
    a.keys.rotate_key("keys/cas").await.unwrap();
    let mut rec = stale.rec.clone();
    rec.min_verify_version = 1;
    let err = b
        .keys
        .write("keys/cas", Some(stale.raw), &rec, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "signing_conflict");
    assert_eq!(a.keys.key_info("keys/cas").await.unwrap().latest_version, 2);
}

#[tokio::test]
async fn concurrent_rotations_have_one_winner() {
    let (storage, clock, a) = setup().await;
    let b = another(&storage, &clock).await;
    a.keys
        .create_key("keys/r", KeyType::Ed25519, KeyOptions::default())
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(a.keys.rotate_key("keys/r"), b.keys.rotate_key("keys/r"));
    let oks = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    let conflicts = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(Error::Signing(SigningError::Conflict { .. }))))
        .count();
    // either both ran one after the other, or one lost the race (typed)
    assert_eq!(oks + conflicts, 2);
    assert!(oks >= 1);
    let info = a.keys.key_info("keys/r").await.unwrap();
    assert_eq!(usize::try_from(info.latest_version).unwrap(), 1 + oks);
}

#[tokio::test]
async fn the_rate_limit_is_a_token_bucket_on_the_store_clock() {
    let (_, clock, p) = setup().await;
    let h = p.handle(&ALL_CAPS);
    let limit = RateLimit::new(2, 3).unwrap();
    h.create_key(
        "keys/limited",
        KeyType::Ed25519,
        KeyOptions::default().with_rate_limit(limit),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        h.sign("keys/limited", b"m").await.unwrap();
    }
    let err = h.sign("keys/limited", b"m").await.unwrap_err();
    match &err {
        Error::Signing(SigningError::RateLimited { retry_after, .. }) => {
            assert_eq!(*retry_after, Duration::from_millis(500));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.details().code, "signing.rate_limited");
    // the refusal is audited as an error outcome
    let last = p.sink.records().unwrap().pop().unwrap();
    assert_eq!(
        last.event.outcome,
        Outcome::Error {
            kind: "signing_rate_limited".into()
        }
    );
    clock.advance(Duration::from_millis(499));
    assert!(h.sign("keys/limited", b"m").await.is_err());
    clock.advance(Duration::from_millis(1));
    h.sign("keys/limited", b"m").await.unwrap();
    // a full refill gives the burst, not more
    clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        h.sign("keys/limited", b"m").await.unwrap();
    }
    assert!(h.sign("keys/limited", b"m").await.is_err());
    // removing the limit lifts it; invalid limits are refused
    h.set_rate_limit("keys/limited", None).await.unwrap();
    h.sign("keys/limited", b"m").await.unwrap();
    let err = RateLimit::new(0, 1).unwrap_err();
    assert_eq!(err.kind(), "signing_invalid_rate_limit");
}

#[tokio::test]
async fn a_tampered_or_missing_private_key_is_a_typed_error() {
    let (storage, _, p) = setup().await;
    p.keys
        .create_key("keys/t", KeyType::EcdsaP256, KeyOptions::default())
        .await
        .unwrap();
    let key = record::sealed_key("keys/t", 1);
    let mut raw = storage.get(&key).await.unwrap().unwrap();
    let n = raw.len();
    raw[n - 20] ^= 0x40;
    storage.put(&key, &raw).await.unwrap();
    let fresh = p.fresh_keys().await;
    let err = fresh.sign("keys/t", b"m").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Signing(SigningError::CorruptKey { version: 1, .. })
        ),
        "{err:?}"
    );
    // truncated
    storage.put(&key, &raw[..5]).await.unwrap();
    let err = fresh.sign("keys/t", b"m").await.unwrap_err();
    assert_eq!(err.kind(), "signing_corrupt_key");
    // gone
    storage.delete(&key).await.unwrap();
    let err = fresh.sign("keys/t", b"m").await.unwrap_err();
    assert_eq!(err.kind(), "signing_corrupt_key");
    // verification needs only the public metadata
    let info = fresh.key_info("keys/t").await.unwrap();
    assert_eq!(info.latest_version, 1);
    // an edited metadata record fails authentication
    let meta = record::meta_key("keys/t");
    let mut raw = storage.get(&meta).await.unwrap().unwrap();
    let n = raw.len();
    raw[n - 3] ^= 1;
    storage.put(&meta, &raw).await.unwrap();
    let err = fresh.key_info("keys/t").await.unwrap_err();
    assert_eq!(err.kind(), "corrupt_record");
}

#[tokio::test]
async fn signing_survives_keyring_rotation_rewrap_and_retirement() {
    let (_, _, p) = setup().await;
    let h = p.handle(&ALL_CAPS);
    for (t, name) in [
        (KeyType::Ed25519, "keys/a"),
        (KeyType::EcdsaP256, "keys/b"),
        (KeyType::Secp256k1, "keys/c"),
    ] {
        h.create_key(name, t, KeyOptions::default()).await.unwrap();
    }
    let door = p.sr.dangerous_traced("ops").await.unwrap();
    let before = door.rotate().await.unwrap();
    door.rewrap(100).await.unwrap();
    door.set_min_decryption_version(before.version)
        .await
        .unwrap();
    // a fresh engine must open every record under the new keyring version
    let keys = Arc::new(p.fresh_keys().await);
    let principal = Principal::new(
        "app",
        [&Policy::new(
            "app",
            vec![Rule::allow("keys/*", ALL_CAPS).unwrap()],
        )],
    );
    let h = p.sr.as_principal(principal, p.audit.clone()).signing(&keys);
    for name in ["keys/a", "keys/b", "keys/c"] {
        let sig = h.sign(name, b"after rewrap").await.unwrap();
        assert!(h.verify(name, b"after rewrap", &sig).await.unwrap());
    }
    assert!(door.strongroom().verify_records().await.unwrap().is_clean());
}

#[tokio::test]
async fn sealing_the_store_stops_signing_and_drops_the_cached_keys() {
    let (_, _, p) = setup().await;
    let h = p.handle(&ALL_CAPS);
    h.create_key("keys/s", KeyType::Ed25519, KeyOptions::default())
        .await
        .unwrap();
    h.sign("keys/s", b"m").await.unwrap();
    assert_eq!(p.keys.cached_keys(), 1);
    p.sr.seal();
    let err = p.keys.sign("keys/s", b"m").await.unwrap_err();
    assert_eq!(err.kind(), "sealed");
    assert_eq!(p.keys.cached_keys(), 0);
}

#[test]
fn the_signature_text_form_is_parsed_strictly() {
    let sig = Signature::new(3, vec![1, 2, 3, 4]);
    assert_eq!(sig.to_text(), "strongroom:v3:AQIDBA==");
    assert_eq!("strongroom:v3:AQIDBA==".parse::<Signature>().unwrap(), sig);
    for bad in [
        "",
        "strongroom:v3",
        "strongroom:3:AQIDBA==",
        "Strongroom:v3:AQIDBA==",
        "strongroom:v0:AQIDBA==",
        "strongroom:v03:AQIDBA==",
        "strongroom:v-3:AQIDBA==",
        "strongroom:v+3:AQIDBA==",
        "strongroom:v4294967296:AQIDBA==",
        "strongroom:v3:",
        "strongroom:v3:AQIDBA",
        "strongroom:v3:AQIDBB==",
        "strongroom:v3:AQID BA==",
        "strongroom:v3:AQIDBA==\n",
        "strongroom:v3:AQIDBA==:x",
    ] {
        let err = bad.parse::<Signature>().unwrap_err();
        assert_eq!(err.kind(), "signing_bad_signature_encoding", "{bad:?}");
    }
    let long = format!("strongroom:v1:{}", "A".repeat(2000));
    assert!(long.parse::<Signature>().is_err());
}

/// The stored formats of `docs/FORMAT.md` ("Signing key records"), byte
/// for byte: a metadata record as written there decodes, re-encodes to the
/// same JSON, and the private key plaintext has its documented layout.
#[test]
fn the_record_formats_are_the_documented_ones() {
    let json = r#"{"format":1,"key_type":"secp256k1","latest":2,"min_verify_version":2,"versions":[{"version":1,"created":1000,"public_key":"04aa"},{"version":2,"created":2000,"public_key":"04bb"}],"rate_limit":{"per_second":5,"burst":10}}"#;
    let rec = record::KeyRecord::decode("keys/x", json.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(rec.encode().unwrap()).unwrap(), json);
    let info = rec.info("keys/x");
    assert_eq!(
        (info.key_type, info.latest_version, info.min_verify_version),
        (KeyType::Secp256k1, 2, 2)
    );
    assert_eq!(info.rate_limit, Some(RateLimit::new(5, 10).unwrap()));
    for bad in [
        json.replace(r#""format":1"#, r#""format":2"#),
        json.replace(r#""latest":2"#, r#""latest":3"#),
        json.replace(r#""min_verify_version":2"#, r#""min_verify_version":0"#),
        json.replace(r#""burst":10"#, r#""burst":0"#),
        json.replace(r#""key_type":"secp256k1""#, r#""key_type":"rsa""#),
        json.replace(r#""format":1,"#, r#""format":1,"extra":1,"#),
    ] {
        let err = record::KeyRecord::decode("keys/x", bad.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), "signing_corrupt_record", "{bad}");
    }
    let plain = record::encode_private(KeyType::EcdsaP256, &[7, 8, 9]);
    assert_eq!(plain.expose_secret(), &[1, 2, 7, 8, 9]);
    assert_eq!(
        record::decode_private(KeyType::EcdsaP256, plain.expose_secret()),
        Ok(&[7u8, 8, 9][..])
    );
    assert!(record::decode_private(KeyType::Ed25519, plain.expose_secret()).is_err());
    assert_eq!(
        record::encode_private(KeyType::Ed25519, &[]).expose_secret(),
        &[1, 1]
    );
    assert_eq!(
        record::encode_private(KeyType::Secp256k1, &[]).expose_secret(),
        &[1, 3]
    );
    assert_eq!(record::meta_key("a/b"), "sign/a/b");
    assert_eq!(record::sealed_key("a/b", 12), "s/sign/a/b/v/12");
}
