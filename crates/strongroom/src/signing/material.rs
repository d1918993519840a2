//! Key material: generating, parsing, signing and verifying with `ring`
//! (Ed25519, P-256) and `k256` (secp256k1).

use k256::ecdsa::{RecoveryId, Signature as K256Signature, SigningKey, VerifyingKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, UnparsedPublicKey,
};

use super::KeyType;
use super::eth::keccak256;
use crate::{Error, Result, SecretBytes};

/// A parsed private key. `ring`'s key pairs are not wiped when dropped
/// (see `SECURITY.md`); `k256`'s signing key is.
pub(super) enum KeyPair {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
    Secp256k1(SigningKey),
}

/// A fresh key of `key_type`: its material (as sealed) and raw public key.
pub(super) fn generate(key_type: KeyType) -> Result<(SecretBytes, Vec<u8>)> {
    let rng = SystemRandom::new();
    let material = match key_type {
        KeyType::Ed25519 | KeyType::Secp256k1 => loop {
            let mut seed = SecretBytes::new(vec![0; 32]);
            rng.fill(seed.expose_secret_mut())
                .map_err(|_| Error::Random)?;
            // a secp256k1 scalar must be below the group order (and
            // non-zero): draw again in the rare case it is not
            if key_type == KeyType::Ed25519 || SigningKey::from_slice(seed.expose_secret()).is_ok()
            {
                break seed;
            }
        },
        KeyType::EcdsaP256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .map_err(|_| Error::Random)?;
            SecretBytes::copy_from(doc.as_ref())
        }
    };
    let pair = parse(key_type, material.expose_secret())
        .map_err(|r| Error::InvalidArgument(format!("generated {key_type} key: {r}")))?;
    let public = pair.public_raw();
    Ok((material, public))
}

/// Parses key material as [`generate`] makes it.
pub(super) fn parse(
    key_type: KeyType,
    material: &[u8],
) -> std::result::Result<KeyPair, &'static str> {
    match key_type {
        KeyType::Ed25519 => Ed25519KeyPair::from_seed_unchecked(material)
            .map(KeyPair::Ed25519)
            .map_err(|_| "not an Ed25519 seed"),
        KeyType::EcdsaP256 => EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            material,
            &SystemRandom::new(),
        )
        .map(KeyPair::EcdsaP256)
        .map_err(|_| "not a P-256 PKCS#8 key"),
        KeyType::Secp256k1 => SigningKey::from_slice(material)
            .map(KeyPair::Secp256k1)
            .map_err(|_| "not a secp256k1 scalar"),
    }
}

impl KeyPair {
    /// The raw public key (see [`PublicKey::raw`](super::PublicKey::raw)).
    pub(super) fn public_raw(&self) -> Vec<u8> {
        match self {
            Self::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Self::EcdsaP256(k) => k.public_key().as_ref().to_vec(),
            Self::Secp256k1(k) => k
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// Signs `msg` (secp256k1: its Keccak-256, `r || s || recovery id`).
    pub(super) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        match self {
            Self::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Self::EcdsaP256(k) => k
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Random),
            Self::Secp256k1(_) => {
                let (r, s, recid) = self.sign_prehash_recoverable(&keccak256(msg))?;
                Ok([&r[..], &s[..], &[recid]].concat())
            }
        }
    }

    /// Signs a 32-byte hash with secp256k1 (RFC 6979, low `s`): `r`, `s`
    /// and the recovery id. Other key types are refused by the caller.
    pub(super) fn sign_prehash_recoverable(
        &self,
        hash: &[u8; 32],
    ) -> Result<([u8; 32], [u8; 32], u8)> {
        let Self::Secp256k1(k) = self else {
            return Err(Error::InvalidArgument(
                "only secp256k1 keys sign hashes".into(),
            ));
        };
        let (sig, recid) = k
            .sign_prehash_recoverable(hash)
            .map_err(|_| Error::InvalidArgument("secp256k1 signing failed".into()))?;
        let (sig, recid) = match sig.normalize_s() {
            Some(low) => (
                low,
                RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced()),
            ),
            None => (sig, recid),
        };
        let bytes = sig.to_bytes();
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        Ok((r, s, recid.to_byte()))
    }
}

/// Whether `sig` is a valid signature of `msg` by the raw public key
/// `public` of type `key_type` (as [`KeyPair::sign`] makes them).
pub(crate) fn verify(key_type: KeyType, public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    match key_type {
        KeyType::Ed25519 => UnparsedPublicKey::new(&ED25519, public)
            .verify(msg, sig)
            .is_ok(),
        KeyType::EcdsaP256 => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public)
            .verify(msg, sig)
            .is_ok(),
        KeyType::Secp256k1 => verify_secp256k1_prehash(public, &keccak256(msg), sig),
    }
}

/// Whether the 65-byte `r || s || recovery id` `sig` of `hash` recovers
/// to the raw public key `public` (`s` must be low).
pub(super) fn verify_secp256k1_prehash(public: &[u8], hash: &[u8; 32], sig: &[u8]) -> bool {
    let [rs @ .., recid] = sig else {
        return false;
    };
    if rs.len() != 64 {
        return false;
    }
    let (Ok(sig), Some(recid)) = (K256Signature::from_slice(rs), RecoveryId::from_byte(*recid))
    else {
        return false;
    };
    if sig.normalize_s().is_some() {
        return false;
    }
    let Ok(expected) = VerifyingKey::from_sec1_bytes(public) else {
        return false;
    };
    VerifyingKey::recover_from_prehash(hash, &sig, recid).is_ok_and(|k| k == expected)
}
