//! The stored records of a signing key: the public metadata record (a
//! barrier record at `sign/<name>`) and each version's private key (a
//! caller-sealed record at `s/sign/<name>/v/<n>`).

use serde::{Deserialize, Serialize};

use super::{
    KeyInfo, KeyType, KeyVersionInfo, META_PREFIX, RateLimit, SEALED_KEY_PREFIX, SigningError,
};
use crate::clock::Timestamp;
use crate::{Result, SecretBytes};

/// The format of the metadata record.
pub(super) const RECORD_FORMAT: u32 = 1;
/// The format byte of a sealed private key.
pub(super) const KEY_FORMAT: u8 = 1;

/// One version in the metadata record, with its public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionRecord {
    pub(super) version: u32,
    pub(super) created: Timestamp,
    /// The raw public key, hex.
    pub(super) public_key: String,
}

/// The metadata record of a key (JSON inside the barrier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRecord {
    pub(super) format: u32,
    pub(super) key_type: KeyType,
    pub(super) latest: u32,
    pub(super) min_verify_version: u32,
    pub(super) versions: Vec<VersionRecord>,
    pub(super) rate_limit: Option<RateLimit>,
}

pub(super) fn meta_key(name: &str) -> String {
    format!("{META_PREFIX}{name}")
}

pub(super) fn sealed_key(name: &str, version: u32) -> String {
    format!("{SEALED_KEY_PREFIX}{name}/v/{version}")
}

impl KeyRecord {
    pub(super) fn decode(name: &str, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| SigningError::CorruptRecord {
            key: name.to_owned(),
            reason,
        };
        let rec: Self = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if rec.format != RECORD_FORMAT {
            return Err(bad(format!("unsupported record format {}", rec.format)).into());
        }
        let consistent = rec.latest >= 1
            && rec.min_verify_version >= 1
            && rec.min_verify_version <= rec.latest
            && rec.versions.last().map(|v| v.version) == Some(rec.latest)
            && rec
                .versions
                .iter()
                .enumerate()
                .all(|(i, v)| usize::try_from(v.version).is_ok_and(|n| n == i + 1));
        if !consistent {
            return Err(bad("inconsistent versions".into()).into());
        }
        if rec.rate_limit.is_some_and(|l| l.check().is_err()) {
            return Err(bad("invalid rate limit".into()).into());
        }
        Ok(rec)
    }

    pub(super) fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| crate::Error::InvalidArgument(format!("signing key record: {e}")))
    }

    pub(super) fn info(&self, name: &str) -> KeyInfo {
        KeyInfo {
            name: name.to_owned(),
            key_type: self.key_type,
            latest_version: self.latest,
            min_verify_version: self.min_verify_version,
            versions: self
                .versions
                .iter()
                .map(|v| KeyVersionInfo {
                    version: v.version,
                    created: v.created,
                })
                .collect(),
            rate_limit: self.rate_limit,
        }
    }

    /// The live version `version` (`None`: the newest) with its raw
    /// public key: an unknown version or one below the minimum verify
    /// version is a typed error.
    pub(super) fn live_version(&self, name: &str, version: Option<u32>) -> Result<(u32, Vec<u8>)> {
        let v = version.unwrap_or(self.latest);
        if v == 0 || v > self.latest {
            return Err(SigningError::UnknownVersion {
                key: name.to_owned(),
                version: v,
                latest: self.latest,
            }
            .into());
        }
        if v < self.min_verify_version {
            return Err(SigningError::VersionRetired {
                key: name.to_owned(),
                version: v,
                min_verify_version: self.min_verify_version,
            }
            .into());
        }
        let corrupt = || SigningError::CorruptRecord {
            key: name.to_owned(),
            reason: format!("version {v} has no valid public key"),
        };
        let rec = usize::try_from(v - 1)
            .ok()
            .and_then(|i| self.versions.get(i))
            .ok_or_else(corrupt)?;
        let public = hex::decode(&rec.public_key).map_err(|_| corrupt())?;
        Ok((v, public))
    }
}

/// The plaintext of a sealed private key: format byte, key type byte, then
/// the key material (Ed25519: the 32-byte seed; P-256: the PKCS#8 v1 DER
/// document `ring` generates; secp256k1: the 32-byte scalar).
pub(super) fn encode_private(key_type: KeyType, material: &[u8]) -> SecretBytes {
    let mut out = Vec::with_capacity(2 + material.len());
    out.push(KEY_FORMAT);
    out.push(type_code(key_type));
    out.extend_from_slice(material);
    SecretBytes::new(out)
}

/// The key material of a sealed private key's plaintext, checked against
/// the type the metadata record names.
pub(super) fn decode_private(
    key_type: KeyType,
    plain: &[u8],
) -> std::result::Result<&[u8], &'static str> {
    match plain {
        [KEY_FORMAT, t, rest @ ..] if *t == type_code(key_type) => Ok(rest),
        [KEY_FORMAT, _, ..] => Err("its key type differs from the record's"),
        _ => Err("unsupported private key format"),
    }
}

const fn type_code(key_type: KeyType) -> u8 {
    match key_type {
        KeyType::Ed25519 => 1,
        KeyType::EcdsaP256 => 2,
        KeyType::Secp256k1 => 3,
    }
}
