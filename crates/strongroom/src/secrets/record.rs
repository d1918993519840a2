//! The stored records of the secrets store (docs/FORMAT.md, "Secrets store
//! records") and the storage keys they live at.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::SecretsOptions;
use super::{
    METADATA_PREFIX, MetadataPatch, SecretError, SecretMetadata, VERSION_PREFIX, VersionInfo,
};
use crate::clock::Timestamp;
use crate::path::SecretPath;
use crate::storage::BatchOp;
use crate::{Error, Result, SecretBytes, Strongroom};

/// Format version of the metadata record.
const METADATA_FORMAT: u8 = 1;
/// Format version of a metadata record followed by the current version's
/// value (see [`SecretsOptions::inline_values`]).
const METADATA_FORMAT_INLINE: u8 = 2;

/// The metadata record at `kvm/<path>` (JSON, format 1; or format 2, the
/// JSON followed by the current version's value; see docs/FORMAT.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetaRecord {
    /// Format 1, or 2 exactly when `inline` is set (see
    /// [`MetaRecord::set_inline`]).
    format: u8,
    pub(super) current_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) max_versions: Option<u32>,
    pub(super) created_at: Timestamp,
    pub(super) updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_rotated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) environment: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(super) tags: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) custom: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rotation_interval_secs: Option<u64>,
    pub(super) versions: BTreeMap<u64, VersionRecord>,
    /// The current version's value, kept in this record (format 2).
    #[serde(skip)]
    pub(super) inline: Option<SecretBytes>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct VersionRecord {
    pub(super) created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) destroyed_at: Option<Timestamp>,
}

impl VersionRecord {
    pub(super) fn info(&self, version: u64) -> VersionInfo {
        VersionInfo {
            version,
            created_at: self.created_at,
            deleted_at: self.deleted_at,
            destroyed_at: self.destroyed_at,
        }
    }
}

impl MetaRecord {
    pub(super) fn oldest_version(&self) -> u64 {
        self.versions
            .keys()
            .next()
            .copied()
            .unwrap_or(self.current_version)
    }

    pub(crate) fn decode(key: &str, bytes: &[u8]) -> Result<Self> {
        let invalid =
            |e: &dyn fmt::Display| Error::corrupt(key, format!("metadata is not valid: {e}"));
        // The JSON object, then (format 2) the value's bytes.
        let mut objects = serde_json::Deserializer::from_slice(bytes).into_iter::<Self>();
        let mut rec = match objects.next() {
            Some(Ok(rec)) => rec,
            Some(Err(e)) => return Err(invalid(&e)),
            None => return Err(invalid(&"the record is empty")),
        };
        let rest = bytes.get(objects.byte_offset()..).unwrap_or_default();
        match rec.format {
            METADATA_FORMAT => {
                if !rest.iter().all(u8::is_ascii_whitespace) {
                    return Err(invalid(&"bytes after the JSON object"));
                }
            }
            METADATA_FORMAT_INLINE => {
                if !rec.versions.contains_key(&rec.current_version) {
                    return Err(invalid(&"the current version is not listed"));
                }
                rec.inline = Some(SecretBytes::copy_from(rest));
            }
            other => {
                return Err(Error::corrupt(
                    key,
                    format!("unsupported metadata format {other}"),
                ));
            }
        }
        Ok(rec)
    }

    /// The record's bytes: the JSON object, then the inline value if any
    /// (appended last, so no reallocation leaves a copy of it behind; the
    /// barrier wipes the buffer once sealed).
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let inline = self
            .inline
            .as_ref()
            .map_or(&[][..], SecretBytes::expose_secret);
        let mut out = Vec::with_capacity(256 + 64 * self.versions.len() + inline.len());
        serde_json::to_writer(&mut out, self)
            .map_err(|e| Error::InvalidArgument(format!("metadata does not encode: {e}")))?;
        out.extend_from_slice(inline);
        Ok(out)
    }

    /// Keeps `value` as the current version's value in this record (format
    /// 2), or none (format 1).
    pub(super) fn set_inline(&mut self, value: Option<SecretBytes>) {
        self.format = if value.is_some() {
            METADATA_FORMAT_INLINE
        } else {
            METADATA_FORMAT
        };
        self.inline = value;
    }

    /// The value kept in this record, if any, leaving none (format 1).
    pub(super) fn take_inline(&mut self) -> Option<SecretBytes> {
        let value = self.inline.take();
        self.set_inline(None);
        value
    }

    /// A new record for a secret whose first version is written at `now`.
    pub(super) fn first(now: Timestamp) -> Self {
        MetaRecord {
            format: METADATA_FORMAT,
            current_version: 0,
            max_versions: None,
            created_at: now,
            updated_at: now,
            last_rotated_at: None,
            owner: None,
            environment: None,
            tags: BTreeSet::new(),
            custom: BTreeMap::new(),
            rotation_interval_secs: None,
            versions: BTreeMap::new(),
            inline: None,
        }
    }

    pub(super) fn public(&self, path: &SecretPath, default_max: u32) -> SecretMetadata {
        SecretMetadata {
            path: path.clone(),
            current_version: self.current_version,
            oldest_version: self.oldest_version(),
            max_versions: self.max_versions,
            effective_max_versions: self.max_versions.unwrap_or(default_max),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_rotated_at: self.last_rotated_at,
            owner: self.owner.clone(),
            environment: self.environment.clone(),
            tags: self.tags.clone(),
            custom: self.custom.clone(),
            rotation_interval: self.rotation_interval_secs.map(Duration::from_secs),
            versions: self.versions.iter().map(|(v, r)| r.info(*v)).collect(),
        }
    }

    /// Looks up `version` and classifies why it cannot be read, if it cannot.
    pub(super) fn readable(
        &self,
        path: &SecretPath,
        version: u64,
    ) -> Result<VersionRecord, SecretError> {
        let p = || path.as_str().to_owned();
        let Some(rec) = self.versions.get(&version) else {
            let oldest = self.oldest_version();
            return Err(if version >= 1 && version < oldest {
                SecretError::VersionPruned {
                    path: p(),
                    version,
                    oldest,
                }
            } else {
                SecretError::NotFound {
                    path: p(),
                    version: Some(version),
                }
            });
        };
        if let Some(destroyed_at) = rec.destroyed_at {
            return Err(SecretError::VersionDestroyed {
                path: p(),
                version,
                destroyed_at,
            });
        }
        if let Some(deleted_at) = rec.deleted_at {
            return Err(SecretError::VersionDeleted {
                path: p(),
                version,
                deleted_at,
            });
        }
        Ok(*rec)
    }

    /// Sets what `patch` names (`None` fields stay as they are) and marks
    /// the record updated at `now`.
    pub(super) fn apply_patch(&mut self, patch: MetadataPatch, now: Timestamp) {
        if let Some(o) = patch.owner {
            self.owner = o;
        }
        if let Some(e) = patch.environment {
            self.environment = e;
        }
        if let Some(t) = patch.tags {
            self.tags = t;
        }
        if let Some(c) = patch.custom {
            self.custom = c;
        }
        if let Some(r) = patch.rotation_interval {
            self.rotation_interval_secs = r.map(|d| d.as_secs());
        }
        if let Some(m) = patch.max_versions {
            self.max_versions = m;
        }
        self.updated_at = now;
    }

    /// Removes the oldest versions beyond `max`; returns the storage
    /// operations that delete their sealed bytes.
    pub(super) fn prune(&mut self, path: &SecretPath, max: u32) -> Vec<BatchOp> {
        let mut ops = Vec::new();
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        while self.versions.len() > max {
            let Some((v, rec)) = self.versions.pop_first() else {
                break;
            };
            if rec.destroyed_at.is_none() {
                ops.push(BatchOp::delete(version_key(path, v)));
            }
        }
        ops
    }
}

/// The plaintext of the metadata record of `path` (wiped when dropped: it
/// can hold the current value), for callers that condition a batch on it.
pub(crate) async fn metadata_plaintext(
    sr: &Strongroom,
    path: &SecretPath,
) -> Result<Option<SecretBytes>> {
    let key = metadata_key(path);
    match sr.storage().get(&key).await? {
        Some(raw) => sr.barrier_open_secret(&key, raw).await.map(Some),
        None => Ok(None),
    }
}

/// The part of a metadata record's plaintext that describes the secret:
/// the JSON object, without a value kept after it. Every write changes it
/// (the current version and `updated_at` move), so a digest of it tells
/// whether the record changed without being a digest of the value.
pub(crate) fn metadata_state(plain: &[u8]) -> &[u8] {
    let mut objects =
        serde_json::Deserializer::from_slice(plain).into_iter::<serde::de::IgnoredAny>();
    match objects.next() {
        Some(Ok(_)) => plain.get(..objects.byte_offset()).unwrap_or(plain),
        _ => plain,
    }
}

/// The storage key of the metadata record of `path`.
pub fn metadata_key(path: &SecretPath) -> String {
    [METADATA_PREFIX, path.as_str()].concat()
}

/// The storage key of the sealed value of `path` at `version`. `@` cannot
/// appear in a path, so no two (path, version) pairs share a key, and the
/// version is zero-padded so a secret's versions sort in order.
pub fn version_key(path: &SecretPath, version: u64) -> String {
    let mut key = version_key_prefix(path);
    push_version(&mut key, version);
    key
}

/// The path and version a version record's storage key names, if `key` is
/// one (`s/kv/<path>@<20 digits>`): the context its sealed value must carry.
pub(crate) fn version_key_names(key: &str) -> Option<(&str, u64)> {
    let (path, digits) = key.strip_prefix(VERSION_PREFIX)?.rsplit_once('@')?;
    if digits.len() != VERSION_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((path, digits.parse().ok()?))
}

/// The digits [`version_key`] gives a version: 20, zero-padded.
const VERSION_DIGITS: usize = 20;

/// The prefix every version key of `path` starts with, with room for the
/// version's digits.
pub(super) fn version_key_prefix(path: &SecretPath) -> String {
    let mut key =
        String::with_capacity(VERSION_PREFIX.len() + path.as_str().len() + 1 + VERSION_DIGITS);
    key.push_str(VERSION_PREFIX);
    key.push_str(path.as_str());
    key.push('@');
    key
}

/// Appends `version` zero-padded to [`VERSION_DIGITS`] digits (a `u64` has
/// at most 20), without the formatting machinery (reads and writes build
/// these keys).
fn push_version(key: &mut String, mut version: u64) {
    let mut digits = [b'0'; VERSION_DIGITS];
    for d in digits.iter_mut().rev() {
        // `version % 10` is below 10, so the cast cannot truncate.
        *d = b'0' + (version % 10) as u8;
        version /= 10;
    }
    for &d in &digits {
        key.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_are_unique_and_ordered() {
        let a = SecretPath::parse("prod/a").unwrap();
        let a1 = SecretPath::parse("prod/a/1").unwrap();
        assert_eq!(version_key(&a, 1), "s/kv/prod/a@00000000000000000001");
        for v in [0, 7, 10, 99_999, 1 << 40, u64::MAX - 1, u64::MAX] {
            assert_eq!(version_key(&a, v), format!("s/kv/prod/a@{v:020}"));
        }
        assert!(version_key(&a, 9) < version_key(&a, 10));
        assert!(!version_key(&a1, 1).starts_with(&version_key_prefix(&a)));
        assert_eq!(
            version_key_names(&version_key(&a1, 12)),
            Some(("prod/a/1", 12))
        );
        assert_eq!(
            version_key_names(&version_key(&a, u64::MAX)),
            Some(("prod/a", u64::MAX))
        );
        for other in [
            "kvm/prod/a",
            "s/kv/prod/a@1",
            "s/kv/prod/a",
            "s/other/x@00000000000000000001",
        ] {
            assert_eq!(version_key_names(other), None, "{other}");
        }
        assert_eq!(metadata_key(&a), "kvm/prod/a");
    }

    #[test]
    fn metadata_record_round_trips_and_checks_format() {
        let rec = MetaRecord {
            format: METADATA_FORMAT,
            current_version: 2,
            max_versions: Some(3),
            created_at: Timestamp::from_secs(1),
            updated_at: Timestamp::from_secs(2),
            last_rotated_at: Some(Timestamp::from_secs(2)),
            owner: Some("team-pay".into()),
            environment: None,
            tags: BTreeSet::from(["pci".to_owned()]),
            custom: BTreeMap::new(),
            rotation_interval_secs: Some(86_400),
            versions: BTreeMap::from([(
                2,
                VersionRecord {
                    created_at: Timestamp::from_secs(2),
                    deleted_at: None,
                    destroyed_at: None,
                },
            )]),
            inline: None,
        };
        let bytes = rec.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"format\":1,"), "{text}");
        let back = MetaRecord::decode("k", &bytes).unwrap();
        assert_eq!(back.current_version, 2);
        assert_eq!(back.oldest_version(), 2);
        assert!(back.inline.is_none());
        let corrupt = |bytes: &[u8]| {
            matches!(
                MetaRecord::decode("k", bytes),
                Err(Error::CorruptRecord { .. })
            )
        };
        let future = text.replace("\"format\":1", "\"format\":3");
        assert!(corrupt(future.as_bytes()));
        // Format 1 has nothing after the object.
        assert!(corrupt(format!("{text}x").as_bytes()));

        // Format 2: the value follows the object, whatever its bytes.
        let mut inline = rec.clone();
        let value = b" }{\"format\":1}\x00\xff";
        inline.set_inline(Some(SecretBytes::copy_from(value)));
        let bytes = inline.encode().unwrap();
        assert!(bytes.starts_with(b"{\"format\":2,"));
        assert!(bytes.ends_with(value));
        let back = MetaRecord::decode("k", &bytes).unwrap();
        assert_eq!(back.inline.unwrap().expose_secret(), value);
        assert_eq!(metadata_state(&bytes), &bytes[..bytes.len() - value.len()]);
        assert_eq!(metadata_state(text.as_bytes()), text.as_bytes());
        // An empty value is a value.
        inline.set_inline(Some(SecretBytes::default()));
        let back = MetaRecord::decode("k", &inline.encode().unwrap()).unwrap();
        assert_eq!(back.inline.unwrap().expose_secret(), b"");
        // A format-2 record names a current version it lists.
        inline.versions.clear();
        assert!(corrupt(&inline.encode().unwrap()));
        // Back to format 1 when the value goes.
        let mut plain = rec.clone();
        plain.set_inline(Some(SecretBytes::copy_from(b"v")));
        plain.set_inline(None);
        assert_eq!(plain.encode().unwrap(), rec.encode().unwrap());
        assert!(matches!(
            MetaRecord::decode("k", b"\xff"),
            Err(Error::CorruptRecord { .. })
        ));
    }

    #[test]
    fn format_doc_example_decodes() {
        // the example in docs/FORMAT.md, "Secrets store records"
        let doc = include_str!("../../../../docs/FORMAT.md");
        let start = doc.find("{\"format\":1,\"current_version\":3").unwrap();
        let end = start + doc[start..].find("\n```").unwrap();
        let rec = MetaRecord::decode("kvm/x", &doc.as_bytes()[start..end]).unwrap();
        assert_eq!(rec.current_version, 3);
        assert_eq!(rec.oldest_version(), 2);
        assert_eq!(rec.rotation_interval_secs, Some(2_592_000));
        let v2 = rec.versions.get(&2).unwrap();
        assert_eq!(
            v2.deleted_at,
            Some(Timestamp::from_millis(1_800_000_060_000))
        );
        assert_eq!(v2.destroyed_at, None);
    }
}
