//! Signing keys that never leave (`strongroom::signing`) as a principal:
//! `Handle.signing()` gives a `SigningHandle` over the store's one
//! signing-keys engine, every call checked against the principal's
//! policies on the key's name and audited. What crosses the FFI is key
//! information, public keys and signatures; never key material.

use std::fmt;
use std::sync::Arc;

use strongroom::SecretBytes;
use strongroom::signing::{
    EthSignature as CoreEthSignature, KeyInfo as CoreKeyInfo, KeyOptions, KeyType,
    PublicKey as CorePublicKey, RateLimit as CoreRateLimit, Signature as CoreSignature,
    SigningError, SigningHandle as CoreSigningHandle,
};

use crate::errors::{Result, invalid};
use crate::store::Handle;

/// A per-key token bucket: `burst` signatures at once, refilled at
/// `per_second` (each at least 1, else `SigningInvalidRateLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct RateLimit {
    /// Signatures per second, sustained.
    pub per_second: u32,
    /// Signatures allowed at once.
    pub burst: u32,
}

impl RateLimit {
    fn core(self) -> Result<CoreRateLimit> {
        Ok(CoreRateLimit::new(self.per_second, self.burst)?)
    }
}

/// One version of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SigningKeyVersion {
    /// The version number (from 1).
    pub version: u32,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
}

/// What is known about a signing key (no key material).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SigningKeyInfo {
    /// The key's name.
    pub name: String,
    /// "ed25519", "ecdsa_p256" or "secp256k1".
    pub key_type: String,
    /// The newest version, used to sign.
    pub latest_version: u32,
    /// Signatures of older versions no longer verify.
    pub min_verify_version: u32,
    /// Every version, oldest first.
    pub versions: Vec<SigningKeyVersion>,
    /// The rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

impl From<CoreKeyInfo> for SigningKeyInfo {
    fn from(k: CoreKeyInfo) -> Self {
        Self {
            name: k.name,
            key_type: k.key_type.as_str().to_owned(),
            latest_version: k.latest_version,
            min_verify_version: k.min_verify_version,
            versions: k
                .versions
                .iter()
                .map(|v| SigningKeyVersion {
                    version: v.version,
                    created_ms: v.created.as_millis(),
                })
                .collect(),
            rate_limit: k.rate_limit.map(|r| RateLimit {
                per_second: r.per_second,
                burst: r.burst,
            }),
        }
    }
}

/// A public key of one version of a signing key: the only key material
/// that leaves.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PublicKey {
    /// "ed25519", "ecdsa_p256" or "secp256k1".
    pub key_type: String,
    /// The key version it belongs to.
    pub version: u32,
    /// The raw key: 32 bytes for Ed25519, the 65-byte uncompressed point
    /// for P-256 and secp256k1.
    pub raw: Vec<u8>,
    /// The X.509 SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// The SubjectPublicKeyInfo as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub spki_pem: String,
    /// The EIP-55 Ethereum address of a secp256k1 key; nil otherwise.
    pub eth_address: Option<String>,
}

impl From<CorePublicKey> for PublicKey {
    fn from(p: CorePublicKey) -> Self {
        Self {
            key_type: p.key_type().as_str().to_owned(),
            version: p.version(),
            raw: p.raw().to_vec(),
            spki_der: p.spki_der(),
            spki_pem: p.spki_pem(),
            eth_address: p.eth_address(),
        }
    }
}

/// A signature and the key version that made it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Signature {
    /// The key version that made it.
    pub version: u32,
    /// The signature bytes (Ed25519: 64; ECDSA P-256: ASN.1 DER;
    /// secp256k1: 65, `r || s || recovery id`).
    pub bytes: Vec<u8>,
    /// The text form, `strongroom:v<version>:<base64>`.
    pub text: String,
}

impl From<CoreSignature> for Signature {
    fn from(s: CoreSignature) -> Self {
        Self {
            version: s.version(),
            bytes: s.as_bytes().to_vec(),
            text: s.to_text(),
        }
    }
}

impl Signature {
    /// The core's signature: the record's text, parsed strictly, which must
    /// say the same as its `version` and `bytes`.
    fn core(&self) -> Result<CoreSignature> {
        let parsed: CoreSignature = self.text.parse()?;
        if parsed.version() != self.version || parsed.as_bytes() != self.bytes.as_slice() {
            return Err(strongroom::Error::from(SigningError::BadSignatureEncoding {
                reason: "the signature's text does not match its version and bytes",
            })
            .into());
        }
        Ok(parsed)
    }
}

/// Parses a signature's text form `strongroom:v<version>:<base64>`
/// strictly (anything else: `SigningBadSignatureEncoding`).
#[uniffi::export]
pub fn parse_signature(text: String) -> Result<Signature> {
    Ok(text.parse::<CoreSignature>()?.into())
}

/// An Ethereum signature (`r`, `s`, `v`) made by a secp256k1 key.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EthSignature {
    /// The key version that made it.
    pub version: u32,
    /// `r`, 32 bytes big-endian.
    pub r: Vec<u8>,
    /// `s`, 32 bytes big-endian (low `s`).
    pub s: Vec<u8>,
    /// 27 or 28 for personal messages; `chain_id * 2 + 35` plus the
    /// recovery id for EIP-155 transactions.
    pub v: u64,
    /// The recovery id (0 or 1).
    pub recovery_id: u8,
    /// `r || s || v`, `v` big-endian in as few bytes as it takes (65 bytes
    /// whenever `v` < 256).
    pub bytes: Vec<u8>,
    /// `bytes` as `0x`-prefixed lower-case hex.
    pub hex: String,
}

impl From<CoreEthSignature> for EthSignature {
    fn from(e: CoreEthSignature) -> Self {
        Self {
            version: e.version(),
            r: e.r().to_vec(),
            s: e.s().to_vec(),
            v: e.v(),
            recovery_id: e.recovery_id(),
            bytes: e.to_bytes(),
            hex: e.to_hex(),
        }
    }
}

/// A principal's signing keys: every call is checked against its policies
/// on the key's name as a path (`create`, `rotate`, `update`, `read`,
/// `sign`) and audited; a signature's audit records carry a keyed HMAC of
/// what was signed, never the message. From `Handle.signing()`.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct SigningHandle {
    inner: CoreSigningHandle,
}

impl fmt::Debug for SigningHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningHandle({:?})",
            self.inner.handle().principal().name()
        )
    }
}

#[uniffi::export]
impl Handle {
    /// This principal's signing keys (the store's one signing-keys engine,
    /// shared by every handle of the store, so its rate limits hold across
    /// them).
    pub fn signing(&self) -> Arc<SigningHandle> {
        Arc::new(SigningHandle {
            inner: self.inner.signing(&self.signing),
        })
    }
}

fn key_type(name: &str) -> Result<KeyType> {
    name.parse().map_err(|_| {
        invalid(format!(
            "unknown key type {name:?} (use \"ed25519\", \"ecdsa_p256\" or \"secp256k1\")"
        ))
    })
}

/// A message from the host language: from here on wiped on drop.
fn message(bytes: Vec<u8>) -> SecretBytes {
    SecretBytes::new(bytes)
}

#[uniffi::export(async_runtime = "tokio")]
impl SigningHandle {
    /// The principal's name.
    pub fn principal(&self) -> String {
        self.inner.handle().principal().name().to_owned()
    }

    /// Creates key `name` of `key_type` ("ed25519", "ecdsa_p256" or
    /// "secp256k1") inside the store, optionally rate-limited (capability
    /// `create`).
    #[uniffi::method(default(rate_limit = None))]
    pub async fn create_key(
        &self,
        name: String,
        key_type: String,
        rate_limit: Option<RateLimit>,
    ) -> Result<SigningKeyInfo> {
        let key_type = self::key_type(&key_type)?;
        let mut options = KeyOptions::default();
        if let Some(r) = rate_limit {
            options = options.with_rate_limit(r.core()?);
        }
        Ok(self
            .inner
            .create_key(&name, key_type, options)
            .await?
            .into())
    }

    /// Adds a version to key `name`, which signs from now on (capability
    /// `rotate`).
    pub async fn rotate_key(&self, name: String) -> Result<SigningKeyInfo> {
        Ok(self.inner.rotate_key(&name).await?.into())
    }

    /// Raises key `name`'s minimum verify version: signatures of older
    /// versions then fail with `SigningVersionRetired` (capability `update`).
    pub async fn set_min_verify_version(
        &self,
        name: String,
        version: u32,
    ) -> Result<SigningKeyInfo> {
        Ok(self
            .inner
            .set_min_verify_version(&name, version)
            .await?
            .into())
    }

    /// Sets (or with nil removes) key `name`'s rate limit (capability
    /// `update`).
    pub async fn set_rate_limit(
        &self,
        name: String,
        rate_limit: Option<RateLimit>,
    ) -> Result<SigningKeyInfo> {
        let limit = rate_limit.map(RateLimit::core).transpose()?;
        Ok(self.inner.set_rate_limit(&name, limit).await?.into())
    }

    /// What is known about key `name` (capability `read`).
    pub async fn key_info(&self, name: String) -> Result<SigningKeyInfo> {
        Ok(self.inner.key_info(&name).await?.into())
    }

    /// The public key of key `name`'s newest version, or of `version`
    /// (capability `read`).
    #[uniffi::method(default(version = None))]
    pub async fn public_key(&self, name: String, version: Option<u32>) -> Result<PublicKey> {
        Ok(self.inner.public_key(&name, version).await?.into())
    }

    /// The EIP-55 Ethereum address of the secp256k1 key `name` (its newest
    /// version, or `version`; capability `read`).
    #[uniffi::method(default(version = None))]
    pub async fn eth_address(&self, name: String, version: Option<u32>) -> Result<String> {
        Ok(self.inner.eth_address(&name, version).await?)
    }

    /// Signs `message` with key `name`'s newest version (capability `sign`).
    pub async fn sign(&self, name: String, message: Vec<u8>) -> Result<Signature> {
        let msg = self::message(message);
        Ok(self.inner.sign(&name, msg.expose_secret()).await?.into())
    }

    /// Whether `signature` is key `name`'s over `message` (capability
    /// `read`): false for a signature that does not verify; a retired
    /// version fails with `SigningVersionRetired`. The record's `text` must
    /// match its `version` and `bytes` (else `SigningBadSignatureEncoding`).
    pub async fn verify(
        &self,
        name: String,
        message: Vec<u8>,
        signature: Signature,
    ) -> Result<bool> {
        let sig = signature.core()?;
        let msg = self::message(message);
        Ok(self.inner.verify(&name, msg.expose_secret(), &sig).await?)
    }

    /// `verify` with the signature's text form
    /// `strongroom:v<version>:<base64>`.
    pub async fn verify_text(
        &self,
        name: String,
        message: Vec<u8>,
        signature: String,
    ) -> Result<bool> {
        let sig: CoreSignature = signature.parse()?;
        let msg = self::message(message);
        Ok(self.inner.verify(&name, msg.expose_secret(), &sig).await?)
    }

    /// Signs `message` as an EIP-191 personal message with the secp256k1
    /// key `name` (capability `sign`); `v` is 27 or 28.
    pub async fn eth_sign_personal_message(
        &self,
        name: String,
        message: Vec<u8>,
    ) -> Result<EthSignature> {
        let msg = self::message(message);
        Ok(self
            .inner
            .eth_sign_personal_message(&name, msg.expose_secret())
            .await?
            .into())
    }

    /// Signs a 32-byte transaction hash for EIP-155 chain `chain_id` with
    /// the secp256k1 key `name` (capability `sign`).
    pub async fn eth_sign_transaction_hash(
        &self,
        name: String,
        hash: Vec<u8>,
        chain_id: u64,
    ) -> Result<EthSignature> {
        let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| {
            invalid(format!(
                "a transaction hash is 32 bytes, not {}",
                hash.len()
            ))
        })?;
        Ok(self
            .inner
            .eth_sign_transaction_hash(&name, &hash, chain_id)
            .await?
            .into())
    }
}
