//! Signing keys: sign and verify per second for each key type through
//! `SigningHandle` (policy check, audit records with the message's HMAC,
//! the key's record re-read from a memory store, the cached key) against
//! `ring` (Ed25519, ECDSA P-256) and `k256` + Keccak-256 (secp256k1) doing
//! the same signature directly, interleaved round by round in one process
//! (the order alternates each round); prints each variant's rate, the
//! median of the paired per-round ratios with min-max, and the load
//! average.
//!
//! `cargo bench -p strongroom-benches --bench signing`
//! (`SIGNING_BENCH_ROUNDS`, `SIGNING_BENCH_OPS` to change the run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use k256::ecdsa::{SigningKey, VerifyingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, UnparsedPublicKey,
};
use sha3::{Digest, Keccak256};
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::signing::{KeyOptions, KeyType, Signature, SigningHandle};
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_benches::{DiscardSink, Figures, env_or, load_average, median};

const MSG: &[u8] = b"a message to sign: the digest of release artifact 0123456789abcdef";

/// A memory store with one key of each type, and a principal's handle.
async fn handle() -> SigningHandle {
    let p = SoftwareProtector::from_key(SecretBytes::new(vec![1; 32])).expect("key");
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &p, Options::default())
        .await
        .expect("init");
    let log = Arc::new(
        sr.open_audit_log(vec![Arc::new(DiscardSink)], None)
            .await
            .expect("log"),
    );
    let keys = Arc::new(
        sr.dangerous_traced("bench")
            .await
            .expect("door")
            .signing_keys(),
    );
    let rules = vec![
        Rule::allow(
            "bench/*",
            [Capability::Create, Capability::Sign, Capability::Read],
        )
        .expect("rule"),
    ];
    let svc = Principal::new("svc", [&Policy::new("svc", rules)]);
    let h = sr.as_principal(svc, log).signing(&keys);
    for t in KeyType::ALL {
        h.create_key(&name(t), t, KeyOptions::default())
            .await
            .expect("create");
    }
    h
}

fn name(t: KeyType) -> String {
    format!("bench/{t}")
}

/// The same work without Strongroom: the bare signer and verifier.
struct Direct {
    ed: Ed25519KeyPair,
    p256: EcdsaKeyPair,
    k1: SigningKey,
    rng: SystemRandom,
}

impl Direct {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::from_seed_unchecked(&[3; 32]).expect("ed25519");
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("p256");
        let p256 = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref(), &rng)
            .expect("p256");
        let k1 = SigningKey::from_slice(&[5; 32]).expect("k256");
        Self { ed, p256, k1, rng }
    }

    fn sign(&self, t: KeyType) -> Vec<u8> {
        match t {
            KeyType::Ed25519 => self.ed.sign(MSG).as_ref().to_vec(),
            KeyType::EcdsaP256 => self
                .p256
                .sign(&self.rng, MSG)
                .expect("sign")
                .as_ref()
                .to_vec(),
            _ => {
                let hash: [u8; 32] = Keccak256::digest(MSG).into();
                let (sig, recid) = self.k1.sign_prehash_recoverable(&hash).expect("sign");
                let mut out = sig.to_bytes().to_vec();
                out.push(recid.to_byte());
                out
            }
        }
    }

    fn verify(&self, t: KeyType, sig: &[u8]) -> bool {
        match t {
            KeyType::Ed25519 => UnparsedPublicKey::new(&ED25519, self.ed.public_key().as_ref())
                .verify(MSG, sig)
                .is_ok(),
            KeyType::EcdsaP256 => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, self.p256.public_key().as_ref())
                    .verify(MSG, sig)
                    .is_ok()
            }
            _ => {
                // as the engine does: parse the stored point, recover, compare
                let point = self.k1.verifying_key().to_encoded_point(false);
                let expected = VerifyingKey::from_sec1_bytes(point.as_bytes()).expect("point");
                let hash: [u8; 32] = Keccak256::digest(MSG).into();
                let parsed = k256::ecdsa::Signature::from_slice(&sig[..64]).expect("sig");
                let recid = k256::ecdsa::RecoveryId::from_byte(sig[64]).expect("recid");
                VerifyingKey::recover_from_prehash(&hash, &parsed, recid)
                    .is_ok_and(|k| k == expected)
            }
        }
    }
}

fn main() {
    let rounds = env_or("SIGNING_BENCH_ROUNDS", 21).max(1);
    let ops = env_or("SIGNING_BENCH_OPS", 500).max(1);
    println!(
        "signing bench: {rounds} interleaved rounds of {ops} operations per variant, {}-byte message; load average at start: {}",
        MSG.len(),
        load_average()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let h = rt.block_on(handle());
    let direct = Direct::new();
    let sigs: Vec<(KeyType, Signature, Vec<u8>)> = KeyType::ALL
        .into_iter()
        .map(|t| {
            let s = rt.block_on(h.sign(&name(t), MSG)).expect("sign");
            (t, s, direct.sign(t))
        })
        .collect();

    let mut figures = Figures::new("signing");
    for (t, ours, theirs) in &sigs {
        let key = name(*t);
        let lib = if *t == KeyType::Secp256k1 {
            "k256"
        } else {
            "ring"
        };
        // [sign handle, sign direct, verify handle, verify direct], ns/op
        let mut samples: [Vec<f64>; 4] = Default::default();
        for round in 0..rounds {
            for k in 0..2 {
                let handle_first = (round + k) % 2 == 0;
                // sign
                let start = Instant::now();
                if handle_first {
                    rt.block_on(async {
                        for _ in 0..ops {
                            black_box(h.sign(&key, MSG).await.expect("sign"));
                        }
                    });
                    samples[0].push(start.elapsed().as_nanos() as f64 / ops as f64);
                } else {
                    for _ in 0..ops {
                        black_box(direct.sign(*t));
                    }
                    samples[1].push(start.elapsed().as_nanos() as f64 / ops as f64);
                }
                // verify
                let start = Instant::now();
                if handle_first {
                    rt.block_on(async {
                        for _ in 0..ops {
                            assert!(h.verify(&key, MSG, ours).await.expect("verify"));
                        }
                    });
                    samples[2].push(start.elapsed().as_nanos() as f64 / ops as f64);
                } else {
                    for _ in 0..ops {
                        assert!(direct.verify(*t, theirs));
                    }
                    samples[3].push(start.elapsed().as_nanos() as f64 / ops as f64);
                }
            }
        }
        let per_sec = |s: &Vec<f64>| 1e9 / median(s.clone()).unwrap_or(f64::NAN);
        println!(
            "{t:<11} sign: SigningHandle {:>8.0}/s, {lib} {:>8.0}/s; verify: SigningHandle {:>8.0}/s, {lib} {:>8.0}/s",
            per_sec(&samples[0]),
            per_sec(&samples[1]),
            per_sec(&samples[2]),
            per_sec(&samples[3]),
        );
        let ratio = |a: &Vec<f64>, b: &Vec<f64>| -> Vec<f64> {
            a.iter().zip(b).map(|(x, y)| x / y).collect()
        };
        figures.ratio(
            &format!("{t} sign time, SigningHandle / {lib}"),
            "SigningHandle::sign",
            &format!("{lib} sign of the same message"),
            &ratio(&samples[0], &samples[1]),
            None,
        );
        figures.ratio(
            &format!("{t} verify time, SigningHandle / {lib}"),
            "SigningHandle::verify",
            &format!("{lib} verify of the same message"),
            &ratio(&samples[2], &samples[3]),
            None,
        );
    }
    figures.save();
    println!("load average at end: {}", load_average());
}
