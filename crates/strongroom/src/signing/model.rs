//! What the signing keys hand out: key types and options, key information,
//! public keys and signatures with their text form.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::SigningError;
use crate::clock::Timestamp;

/// The algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyType {
    /// Ed25519 (RFC 8032) through `ring`: 64-byte signatures of the message.
    Ed25519,
    /// ECDSA on P-256 with SHA-256 through `ring`: ASN.1 DER signatures.
    EcdsaP256,
    /// ECDSA on secp256k1 through `k256`, over Keccak-256 as Ethereum
    /// does: 65-byte `r || s || recovery id` signatures (low `s`).
    Secp256k1,
}

impl KeyType {
    /// Every key type.
    pub const ALL: [KeyType; 3] = [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Secp256k1];

    /// The stable name in records and text: `ed25519`, `ecdsa_p256`,
    /// `secp256k1`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa_p256",
            Self::Secp256k1 => "secp256k1",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| crate::Error::InvalidArgument(format!("unknown key type {s:?}")))
    }
}

/// A per-key token bucket: `burst` signatures at once, refilled at
/// `per_second`. Stored in the key's record; enforced by each process on
/// its own (see [`SigningKeys`](super::SigningKeys)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Signatures per second, sustained (at least 1).
    pub per_second: u32,
    /// Signatures allowed at once (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// A limit of `per_second` sustained with bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> crate::Result<Self> {
        let limit = Self { per_second, burst };
        limit.check()?;
        Ok(limit)
    }

    pub(super) fn check(&self) -> crate::Result<()> {
        if self.per_second == 0 {
            return Err(SigningError::InvalidRateLimit {
                reason: "per_second must be at least 1",
            }
            .into());
        }
        if self.burst == 0 {
            return Err(SigningError::InvalidRateLimit {
                reason: "burst must be at least 1",
            }
            .into());
        }
        Ok(())
    }
}

/// Options of a new key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyOptions {
    /// The key's rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

impl KeyOptions {
    /// Options with a rate limit.
    #[must_use]
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
}

/// One version of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersionInfo {
    /// The version number (from 1).
    pub version: u32,
    /// When it was created.
    pub created: Timestamp,
}

/// What is known about a key: no key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// Its algorithm.
    pub key_type: KeyType,
    /// The newest version, used to sign.
    pub latest_version: u32,
    /// Signatures of older versions no longer verify.
    pub min_verify_version: u32,
    /// Every version, oldest first.
    pub versions: Vec<KeyVersionInfo>,
    /// The rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

/// A signature and the key version that made it.
///
/// Its text form is `strongroom:v<version>:<base64>` (standard alphabet,
/// padded), e.g. `strongroom:v3:MEUCIQ...`; [`Signature::from_str`]
/// accepts exactly that form and nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    version: u32,
    bytes: Vec<u8>,
}

/// Signatures longer than this are refused when parsed (the longest made
/// is a 72-byte P-256 DER signature).
const MAX_SIGNATURE_LEN: usize = 512;
const TEXT_PREFIX: &str = "strongroom:v";

impl Signature {
    /// A signature of `version`.
    pub fn new(version: u32, bytes: Vec<u8>) -> Self {
        Self { version, bytes }
    }

    /// The key version that made it.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The signature bytes (see [`KeyType`] for each algorithm's encoding).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text form, `strongroom:v<version>:<base64>`.
    pub fn to_text(&self) -> String {
        format!(
            "{TEXT_PREFIX}{}:{}",
            self.version,
            STANDARD.encode(&self.bytes)
        )
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for Signature {
    type Err = crate::Error;

    /// Parses `strongroom:v<version>:<base64>` strictly: a version from 1
    /// without leading zeros, canonical padded base64 of 1 to 512 bytes.
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = |reason| crate::Error::from(SigningError::BadSignatureEncoding { reason });
        let rest = s
            .strip_prefix(TEXT_PREFIX)
            .ok_or_else(|| bad("expected strongroom:v<version>:<base64>"))?;
        let (ver, b64) = rest
            .split_once(':')
            .ok_or_else(|| bad("expected strongroom:v<version>:<base64>"))?;
        if ver.is_empty() || ver.len() > 10 || !ver.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the version is not a number"));
        }
        if ver.starts_with('0') {
            return Err(bad("the version must start at 1, without leading zeros"));
        }
        let version: u32 = ver.parse().map_err(|_| bad("the version is too large"))?;
        if b64.len() > MAX_SIGNATURE_LEN * 4 / 3 + 4 {
            return Err(bad("the signature is too long"));
        }
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| bad("the signature is not padded standard base64"))?;
        if bytes.is_empty() {
            return Err(bad("the signature is empty"));
        }
        if STANDARD.encode(&bytes) != b64 {
            return Err(bad("the signature's base64 is not canonical"));
        }
        Ok(Self { version, bytes })
    }
}

/// A public key of one version of a signing key: the only key material
/// that leaves the engine.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_type: KeyType,
    version: u32,
    raw: Vec<u8>,
}

/// The DER prefix of each key type's SubjectPublicKeyInfo, up to the key.
const SPKI_ED25519: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const SPKI_P256: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_SECP256K1: &[u8] = &[
    0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00,
];

impl PublicKey {
    pub(super) fn new(key_type: KeyType, version: u32, raw: Vec<u8>) -> Self {
        Self {
            key_type,
            version,
            raw,
        }
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The version it belongs to.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The raw public key: 32 bytes for Ed25519, the 65-byte uncompressed
    /// point (`04 || x || y`) for P-256 and secp256k1.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The X.509 SubjectPublicKeyInfo, DER (RFC 8410 for Ed25519, RFC 5480
    /// for the two ECDSA curves, uncompressed point).
    pub fn spki_der(&self) -> Vec<u8> {
        let prefix = match self.key_type {
            KeyType::Ed25519 => SPKI_ED25519,
            KeyType::EcdsaP256 => SPKI_P256,
            KeyType::Secp256k1 => SPKI_SECP256K1,
        };
        [prefix, &self.raw].concat()
    }

    /// The SubjectPublicKeyInfo as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn spki_pem(&self) -> String {
        crate::pem::encode("PUBLIC KEY", &self.spki_der())
    }

    /// For a secp256k1 key, its Ethereum address (the last 20 bytes of
    /// Keccak-256 of the point's `x || y`) in EIP-55 mixed-case hex with
    /// `0x`; `None` for other key types.
    pub fn eth_address(&self) -> Option<String> {
        match self.key_type {
            KeyType::Secp256k1 => super::eth::address_of_point(&self.raw),
            _ => None,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_type", &self.key_type)
            .field("version", &self.version)
            .field("raw", &hex::encode(&self.raw))
            .finish()
    }
}

/// An Ethereum signature: `r`, `s` and `v`, made by a secp256k1 key.
#[derive(Clone, PartialEq, Eq)]
pub struct EthSignature {
    pub(super) version: u32,
    pub(super) r: [u8; 32],
    pub(super) s: [u8; 32],
    pub(super) v: u64,
}

impl EthSignature {
    /// The key version that made it.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// `r`, big-endian.
    pub fn r(&self) -> &[u8; 32] {
        &self.r
    }

    /// `s`, big-endian (always in the lower half of the group order).
    pub fn s(&self) -> &[u8; 32] {
        &self.s
    }

    /// `v`: 27 or 28 for personal messages; `chain_id * 2 + 35` plus the
    /// recovery id for EIP-155 transactions.
    pub fn v(&self) -> u64 {
        self.v
    }

    /// The recovery id (0 or 1).
    pub fn recovery_id(&self) -> u8 {
        let base = if self.v >= 35 { 35 } else { 27 };
        u8::from((self.v - base) % 2 == 1)
    }

    /// `r || s || v` with `v` big-endian in as few bytes as it takes: 65
    /// bytes whenever `v` < 256 (personal messages, chain ids up to 110).
    pub fn to_bytes(&self) -> Vec<u8> {
        let v = self.v.to_be_bytes();
        let start = v.iter().position(|&b| b != 0).unwrap_or(7);
        [&self.r[..], &self.s[..], &v[start..]].concat()
    }

    /// [`to_bytes`](Self::to_bytes) as `0x`-prefixed lower-case hex.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for EthSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EthSignature")
            .field("version", &self.version)
            .field("rsv", &self.to_hex())
            .finish()
    }
}
