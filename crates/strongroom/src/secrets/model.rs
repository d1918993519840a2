//! What the secrets store takes and returns: its options, a secret's
//! versions and metadata, changes to the metadata and their bounds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::{CacheOptions, DEFAULT_MAX_VERSIONS, MAX_MAX_VERSIONS, SecretError};
#[cfg(doc)]
use super::{MAX_INLINE_VALUE, SecretsStore};
use crate::SecretBytes;
use crate::clock::Timestamp;
use crate::path::SecretPath;

const MAX_TAGS: usize = 64;
const MAX_CUSTOM: usize = 64;
const MAX_LABEL_BYTES: usize = 128;
const MAX_TEXT_BYTES: usize = 1024;

/// How a [`SecretsStore`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretsOptions {
    /// Versions kept per secret unless the secret sets its own
    /// `max_versions`. Clamped to `1..=`[`MAX_MAX_VERSIONS`].
    pub default_max_versions: u32,
    /// The read cache of [`SecretsStore::get`] (see [`CacheOptions`] and
    /// the "Read cache" section of the [module docs](crate::secrets));
    /// `None`, the default, keeps no plaintext between calls.
    pub cache: Option<CacheOptions>,
    /// Whether a write keeps the new current version's value (up to
    /// [`MAX_INLINE_VALUE`] bytes) inside the secret's metadata record
    /// instead of a version record of its own, so a read of the current
    /// version is one record and one decryption, and creating a secret
    /// writes one record. The value moves to its own version record when
    /// the next version is written. On by default. A metadata record
    /// written this way (format 2 in docs/FORMAT.md) is refused as a corrupt
    /// record by builds from before format 2, so turn it off while such a
    /// build still shares the store. Every build since reads and updates
    /// such records whatever this option says.
    pub inline_values: bool,
}

impl Default for SecretsOptions {
    fn default() -> Self {
        Self {
            default_max_versions: DEFAULT_MAX_VERSIONS,
            cache: None,
            inline_values: true,
        }
    }
}

impl SecretsOptions {
    /// Options with `default_max_versions` set.
    pub fn with_default_max_versions(mut self, n: u32) -> Self {
        self.default_max_versions = n;
        self
    }

    /// Options with the read cache on, bounded by `cache`.
    pub fn with_cache(mut self, cache: CacheOptions) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Options with [`SecretsOptions::inline_values`] set.
    pub fn with_inline_values(mut self, on: bool) -> Self {
        self.inline_values = on;
        self
    }
}

/// Facts about one version of a secret (never its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The version number (1 for the first write).
    pub version: u64,
    /// When it was written.
    pub created_at: Timestamp,
    /// When it was soft-deleted, if it is.
    pub deleted_at: Option<Timestamp>,
    /// When it was destroyed, if it was.
    pub destroyed_at: Option<Timestamp>,
}

/// A secret's value at one version, with that version's facts.
pub struct SecretVersion {
    /// The secret's path.
    pub path: SecretPath,
    /// Facts about the version.
    pub version: VersionInfo,
    /// The value.
    pub value: SecretBytes,
}

impl fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVersion")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("value", &self.value)
            .finish()
    }
}

/// A secret's metadata. Not secret: it holds no values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretMetadata {
    /// The path.
    pub path: SecretPath,
    /// The current (newest) version.
    pub current_version: u64,
    /// The oldest version still kept (older ones were pruned).
    pub oldest_version: u64,
    /// This secret's own version limit; `None` uses the store default.
    pub max_versions: Option<u32>,
    /// The version limit in force (own or store default).
    pub effective_max_versions: u32,
    /// When version 1 was written.
    pub created_at: Timestamp,
    /// When the secret or its metadata last changed.
    pub updated_at: Timestamp,
    /// When a version replaced an earlier one last (`None` while only
    /// version 1 was ever written).
    pub last_rotated_at: Option<Timestamp>,
    /// Who owns the secret (a team, a person, a service).
    pub owner: Option<String>,
    /// The environment (`prod`, `staging`, ...).
    pub environment: Option<String>,
    /// Free-form tags.
    pub tags: BTreeSet<String>,
    /// Custom key-values. Not sealed: never put secrets here.
    pub custom: BTreeMap<String, String>,
    /// How often the secret should be rotated.
    pub rotation_interval: Option<Duration>,
    /// Every kept version, oldest first.
    pub versions: Vec<VersionInfo>,
}

impl SecretMetadata {
    /// When the next rotation is due: the last rotation (or creation) plus
    /// the rotation interval; `None` without an interval.
    pub fn rotation_due_at(&self) -> Option<Timestamp> {
        self.rotation_interval
            .map(|i| self.last_rotated_at.unwrap_or(self.created_at) + i)
    }

    /// Whether a rotation is due at `now`.
    pub fn rotation_due(&self, now: Timestamp) -> bool {
        self.rotation_due_at().is_some_and(|due| now >= due)
    }
}

/// A change to a secret's metadata: each `Some` field replaces the stored
/// one (`Some(None)` clears an optional field); `None` leaves it alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataPatch {
    /// New owner.
    pub owner: Option<Option<String>>,
    /// New environment.
    pub environment: Option<Option<String>>,
    /// New tag set (replaces the old one).
    pub tags: Option<BTreeSet<String>>,
    /// New custom key-values (replace the old ones).
    pub custom: Option<BTreeMap<String, String>>,
    /// New rotation interval.
    pub rotation_interval: Option<Option<Duration>>,
    /// New per-secret version limit (`Some(None)`: use the store default).
    /// Lowering it prunes the oldest versions at once.
    pub max_versions: Option<Option<u32>>,
}

impl MetadataPatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(Some(owner.into()));
        self
    }
    /// Sets the environment.
    pub fn environment(mut self, env: impl Into<String>) -> Self {
        self.environment = Some(Some(env.into()));
        self
    }
    /// Replaces the tags.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }
    /// Replaces the custom key-values.
    pub fn custom<I, K, V>(mut self, kv: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.custom = Some(kv.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }
    /// Sets the rotation interval.
    pub fn rotation_interval(mut self, every: Duration) -> Self {
        self.rotation_interval = Some(Some(every));
        self
    }
    /// Sets the per-secret version limit.
    pub fn max_versions(mut self, n: u32) -> Self {
        self.max_versions = Some(Some(n));
        self
    }
}

/// Whether a write creates a secret or adds a version to an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteKind {
    /// No secret exists at the path: this write creates version 1.
    Create,
    /// The secret exists: this write adds a version.
    Update,
}

/// Checks `patch` against the bounds on metadata: labels (owner,
/// environment, tags, custom keys), counts, text sizes, the rotation
/// interval and `max_versions`.
pub(super) fn validate_patch(path: &SecretPath, patch: &MetadataPatch) -> Result<(), SecretError> {
    if let Some(Some(o)) = &patch.owner {
        check_label(path, "owner", o, MAX_LABEL_BYTES)?;
    }
    if let Some(Some(e)) = &patch.environment {
        check_label(path, "environment", e, MAX_LABEL_BYTES)?;
    }
    if let Some(tags) = &patch.tags {
        if tags.len() > MAX_TAGS {
            return Err(SecretError::InvalidMetadata {
                path: path.as_str().to_owned(),
                reason: format!("more than {MAX_TAGS} tags"),
            });
        }
        for t in tags {
            check_label(path, "tag", t, MAX_LABEL_BYTES)?;
        }
    }
    if let Some(custom) = &patch.custom {
        if custom.len() > MAX_CUSTOM {
            return Err(SecretError::InvalidMetadata {
                path: path.as_str().to_owned(),
                reason: format!("more than {MAX_CUSTOM} custom entries"),
            });
        }
        for (k, v) in custom {
            check_label(path, "custom key", k, MAX_LABEL_BYTES)?;
            if v.len() > MAX_TEXT_BYTES {
                return Err(SecretError::InvalidMetadata {
                    path: path.as_str().to_owned(),
                    reason: format!("custom value for {k:?} is longer than {MAX_TEXT_BYTES} bytes"),
                });
            }
        }
    }
    if let Some(Some(i)) = patch.rotation_interval
        && i.as_secs() == 0
    {
        return Err(SecretError::InvalidMetadata {
            path: path.as_str().to_owned(),
            reason: "rotation interval must be at least one second".into(),
        });
    }
    if let Some(Some(n)) = patch.max_versions {
        check_max_versions(path, n)?;
    }
    Ok(())
}

fn check_label(path: &SecretPath, what: &str, s: &str, max: usize) -> Result<(), SecretError> {
    let bad = |reason: String| SecretError::InvalidMetadata {
        path: path.as_str().to_owned(),
        reason,
    };
    if s.is_empty() {
        return Err(bad(format!("{what} is empty")));
    }
    if s.len() > max {
        return Err(bad(format!("{what} is longer than {max} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(format!("{what} contains a control character")));
    }
    Ok(())
}

fn check_max_versions(path: &SecretPath, n: u32) -> Result<(), SecretError> {
    if n == 0 || n > MAX_MAX_VERSIONS {
        return Err(SecretError::InvalidMetadata {
            path: path.as_str().to_owned(),
            reason: format!("max_versions must be between 1 and {MAX_MAX_VERSIONS}, not {n}"),
        });
    }
    Ok(())
}
