//! The records the CA keeps in the store, all behind the barrier (sealed
//! under the keyring and bound to their storage key), as versioned JSON.
//!
//! | key | record |
//! | --- | --- |
//! | `pki/<mount>/ca` | [`CaRecord`]: the CA certificate, its chain, key type |
//! | `s/pki/<mount>/ca-key` | the CA's PKCS#8 private key, sealed for context (`pki/<mount>/ca-key`, 1) |
//! | `pki/<mount>/role/<name>` | [`RoleRecord`] |
//! | `pki/<mount>/cert/<serial-hex>` | [`CertRecord`]: one live certificate and its lease |
//! | `pki/<mount>/revoked` | [`RevokedRecord`]: revoked serials not yet expired |
//! | `pki/<mount>/crl` | [`CrlRecord`]: the last CRL signed |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use strongroom::clock::Timestamp;
use strongroom::storage::DynStorage;

use crate::error::{PkiError, Result};
use crate::{KeyType, Role};

/// The format version every record of this crate carries.
pub(crate) const FORMAT: u8 = 1;

/// Storage keys of one mount.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    mount: String,
}

impl Keys {
    pub(crate) fn new(mount: &str) -> Self {
        Self {
            mount: mount.to_owned(),
        }
    }
    pub(crate) fn ca(&self) -> String {
        format!("pki/{}/ca", self.mount)
    }
    /// The sealed record of the CA key, and the path its context names.
    pub(crate) fn ca_key(&self) -> (String, String) {
        let path = format!("pki/{}/ca-key", self.mount);
        (format!("{}{path}", strongroom::SEALED_PREFIX), path)
    }
    pub(crate) fn role(&self, name: &str) -> String {
        format!("pki/{}/role/{name}", self.mount)
    }
    pub(crate) fn cert(&self, serial_hex: &str) -> String {
        format!("pki/{}/cert/{serial_hex}", self.mount)
    }
    pub(crate) fn revoked(&self) -> String {
        format!("pki/{}/revoked", self.mount)
    }
    pub(crate) fn crl(&self) -> String {
        format!("pki/{}/crl", self.mount)
    }
}

/// Bytes as lower-case hex in JSON.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// A list of byte strings as hex in JSON.
pub(crate) mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub(crate) fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for b in list {
            seq.serialize_element(&hex::encode(b))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        list.into_iter()
            .map(|t| hex::decode(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Whether a CA is self-signed or signed by another mount's CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaKind {
    /// A self-signed root.
    Root,
    /// Signed by the CA of another mount in the same store.
    Intermediate,
}

/// `pki/<mount>/ca`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaRecord {
    pub(crate) format: u8,
    pub(crate) kind: CaKind,
    pub(crate) key_type: KeyType,
    pub(crate) common_name: String,
    /// The CA's own certificate (DER).
    #[serde(with = "hex_bytes")]
    pub(crate) cert: Vec<u8>,
    /// The certificates above it, nearest first, ending with the root
    /// (empty for a root).
    #[serde(with = "hex_list")]
    pub(crate) parents: Vec<Vec<u8>>,
    /// The mount of the CA that signed it (intermediates only).
    pub(crate) parent_mount: Option<String>,
    pub(crate) not_before: Timestamp,
    pub(crate) not_after: Timestamp,
    pub(crate) created_by: String,
}

/// `pki/<mount>/role/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleRecord {
    pub(crate) format: u8,
    pub(crate) role: Role,
}

/// `pki/<mount>/cert/<serial-hex>`: a live certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertRecord {
    pub(crate) format: u8,
    pub(crate) role: String,
    pub(crate) lease_id: String,
    pub(crate) not_after: Timestamp,
    #[serde(with = "hex_bytes")]
    pub(crate) cert: Vec<u8>,
}

/// One revoked serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokedEntry {
    pub(crate) revoked_at: Timestamp,
    /// The certificate's own expiry: after it the entry is pruned.
    pub(crate) not_after: Timestamp,
}

/// `pki/<mount>/revoked`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokedRecord {
    pub(crate) format: u8,
    /// One more on every change.
    pub(crate) revision: u64,
    /// By serial in lower-case hex.
    pub(crate) entries: BTreeMap<String, RevokedEntry>,
}

/// `pki/<mount>/crl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CrlRecord {
    pub(crate) format: u8,
    /// The CRL number in the CRL (one more per CRL signed).
    pub(crate) number: u64,
    /// The revision of the revoked set it reflects.
    pub(crate) revision: u64,
    pub(crate) this_update: Timestamp,
    pub(crate) next_update: Timestamp,
    #[serde(with = "hex_bytes")]
    pub(crate) der: Vec<u8>,
}

/// Something stored as a versioned JSON record.
pub(crate) trait Record: Serialize + DeserializeOwned {
    fn format(&self) -> u8;

    fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| PkiError::Certificate(format!("encoding a record: {e}")))
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| PkiError::BadRecord {
            key: key.to_owned(),
            reason,
        };
        let rec: Self = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if rec.format() != FORMAT {
            return Err(bad(format!("unsupported format {}", rec.format())));
        }
        Ok(rec)
    }
}

impl Record for CaRecord {
    fn format(&self) -> u8 {
        self.format
    }
}
impl Record for RoleRecord {
    fn format(&self) -> u8 {
        self.format
    }
}
impl Record for CertRecord {
    fn format(&self) -> u8 {
        self.format
    }
}
impl Record for RevokedRecord {
    fn format(&self) -> u8 {
        self.format
    }
}
impl Record for CrlRecord {
    fn format(&self) -> u8 {
        self.format
    }
}

/// A failed authentication of a barrier record becomes
/// [`PkiError::BadRecord`]; other core errors pass through.
pub(crate) fn storage_error(key: &str, e: strongroom::Error) -> PkiError {
    match e {
        strongroom::Error::CorruptRecord { .. } | strongroom::Error::DecryptionFailed => {
            PkiError::BadRecord {
                key: key.to_owned(),
                reason: e.to_string(),
            }
        }
        other => PkiError::Core(other),
    }
}

/// Reads and decodes the record at `key` with its plaintext (for a later
/// compare-and-set), or `None`.
pub(crate) async fn read<R: Record>(
    barrier: &DynStorage,
    key: &str,
) -> Result<Option<(R, Vec<u8>)>> {
    match barrier.get(key).await.map_err(|e| storage_error(key, e))? {
        Some(raw) => Ok(Some((R::decode(key, &raw)?, raw))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    //! Checked-in vectors of every record's plaintext (format 1): each
    //! decodes, and encodes back to the same bytes.

    use std::time::Duration;

    use super::*;
    use crate::Usage;

    fn roundtrip<R: Record + std::fmt::Debug>(vector: &str) -> R {
        let rec = R::decode("k", vector.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(rec.encode().unwrap()).unwrap(), vector);
        rec
    }

    #[test]
    fn ca_record_vector() {
        let v = r#"{"format":1,"kind":"intermediate","key_type":"ecdsa-p256","common_name":"Int","cert":"3082","parents":["30820001"],"parent_mount":"root","not_before":1800000000000,"not_after":1800360000000,"created_by":"ops"}"#;
        let r: CaRecord = roundtrip(v);
        assert_eq!(r.kind, CaKind::Intermediate);
        assert_eq!(r.key_type, KeyType::EcdsaP256);
        assert_eq!(r.cert, [0x30, 0x82]);
        assert_eq!(r.parents, [vec![0x30, 0x82, 0, 1]]);
        assert_eq!(r.not_after, Timestamp::from_secs(1_800_360_000));
        let root = r#"{"format":1,"kind":"root","key_type":"ed25519","common_name":"Root","cert":"30","parents":[],"parent_mount":null,"not_before":0,"not_after":1000,"created_by":"ops"}"#;
        let r: CaRecord = roundtrip(root);
        assert_eq!((r.kind, r.key_type), (CaKind::Root, KeyType::Ed25519));
    }

    #[test]
    fn role_record_vector() {
        let v = r#"{"format":1,"role":{"allowed_names":["api.example.com","*.svc.example.com"],"allow_localhost":true,"allow_ip_sans":false,"allow_wildcard_certificates":false,"key_types":["ed25519","ecdsa-p256"],"usages":["server","client"],"ttl":3600,"max_ttl":86400}}"#;
        let r: RoleRecord = roundtrip(v);
        assert_eq!(
            r.role,
            Role::new(["api.example.com", "*.svc.example.com"])
                .allow_localhost(true)
                .usages([Usage::Server, Usage::Client])
                .ttl(Duration::from_secs(3600), Duration::from_secs(86_400))
        );
    }

    #[test]
    fn cert_revoked_and_crl_record_vectors() {
        let cert = r#"{"format":1,"role":"web","lease_id":"lease_000102030405060708090a0b0c0d0e0f","not_after":1800003600000,"cert":"3082"}"#;
        let c: CertRecord = roundtrip(cert);
        assert_eq!(c.role, "web");
        let revoked = r#"{"format":1,"revision":3,"entries":{"0a0b":{"revoked_at":1800000100000,"not_after":1800003600000}}}"#;
        let r: RevokedRecord = roundtrip(revoked);
        assert_eq!(r.revision, 3);
        assert_eq!(
            r.entries["0a0b"].revoked_at,
            Timestamp::from_secs(1_800_000_100)
        );
        let crl = r#"{"format":1,"number":7,"revision":3,"this_update":1800000100000,"next_update":1800086500000,"der":"3082"}"#;
        let c: CrlRecord = roundtrip(crl);
        assert_eq!((c.number, c.revision), (7, 3));
    }

    #[test]
    fn other_formats_unknown_fields_and_bad_hex_are_refused() {
        for bad in [
            r#"{"format":2,"revision":0,"entries":{}}"#,
            r#"{"format":1,"revision":0,"entries":{},"extra":1}"#,
            r#"{"format":1,"revision":0}"#,
            "not json",
        ] {
            let e = RevokedRecord::decode("pki/m/revoked", bad.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), "pki_bad_record", "{bad}");
        }
        let e = CrlRecord::decode(
            "k",
            br#"{"format":1,"number":1,"revision":0,"this_update":0,"next_update":1,"der":"zz"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), "pki_bad_record");
    }
}
