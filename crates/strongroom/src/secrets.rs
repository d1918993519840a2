//! The versioned secrets store.
//!
//! Secrets are addressed by [`SecretPath`]s. The suggested naming convention
//! is `environment/service/kind`, for example `prod/payment-svc/postgres` or
//! `staging/billing/stripe-api-key`: policies can then grant a service
//! `prod/payment-svc/*` and an environment's operators `prod/*`. The
//! convention is encouraged, not enforced ([`naming_convention`] splits a path
//! that follows it); any valid path works.
//!
//! Every write creates a new version (1, 2, 3, ...). Each version's value is
//! sealed under the keyring with the path and the version number as
//! associated data, so a sealed value copied to another path or version does
//! not open ([`Error::DecryptionFailed`]). By default a current value of up
//! to [`MAX_INLINE_VALUE`] bytes is kept inside the secret's metadata record
//! instead, sealed with it and bound to its key, and moves to a record of
//! its own when the next version is written
//! ([`SecretsOptions::inline_values`]): a read of the current version is
//! then one storage read and one decryption.
//!
//! - [`SecretsStore::put`] writes, optionally with check-and-set: `cas = None`
//!   writes unconditionally, `Some(0)` only creates, `Some(n)` succeeds only
//!   if `n` is the current version; otherwise [`SecretError::CasMismatch`]
//!   carries the current version.
//! - [`SecretsStore::get`] / [`SecretsStore::get_version`] read; a
//!   soft-deleted version, a destroyed version, a pruned version and one that
//!   never existed are four distinct errors.
//! - [`SecretsStore::delete`] soft-deletes (reversible with
//!   [`SecretsStore::undelete`]); [`SecretsStore::destroy`] removes the
//!   sealed bytes from storage for good; [`SecretsStore::delete_metadata`]
//!   removes the secret with every version.
//! - Each secret keeps at most `max_versions` versions (the store's default,
//!   10 unless configured, or a per-secret value); writing beyond it prunes
//!   the oldest, whose sealed bytes are removed.
//! - Metadata ([`SecretMetadata`]): owner, environment, tags, custom
//!   key-values, rotation interval, times, and per-version state.
//!
//! Every change is one atomic [`Storage::batch`](crate::storage::Storage::batch)
//! whose precondition is the metadata record as it was read, so concurrent
//! writers (in this process or another one sharing the storage) cannot both
//! win; the loser re-reads and either retries (`cas = None`) or gets
//! [`SecretError::CasMismatch`]. A failed write changes nothing.
//!
//! The storage layout and record encodings are described in `docs/FORMAT.md`
//! ("Secrets store records").
//!
//! # Read cache
//!
//! Off by default: a store keeps no plaintext between calls unless its
//! options say so ([`SecretsOptions::with_cache`], then
//! [`Door::secrets_with`](crate::dangerous::Door::secrets_with) or
//! [`Handle::new`](crate::Handle::new) over that store). With it on,
//! [`SecretsStore::get`] keeps the current version of secrets it read, as
//! [`SecretBytes`] (wiped when dropped or evicted), shared by the store's
//! clones, bounded by [`CacheOptions`] (entries, value bytes, age). An entry
//! is dropped:
//! - by this store's own writes to its path, before the write returns;
//! - when the store announces a change to the path (its change feed; within
//!   the backend's notification delay: at once for this process's writes on
//!   the memory and SQLite stores, about 100 ms for another process's on
//!   SQLite, one `NOTIFY` on PostgreSQL); a notice naming no keys, a lost
//!   notice or a closed feed drops every entry;
//! - when it is older than [`CacheOptions::max_age`] (one second by
//!   default) by the store's clock, whatever the feed did.
//!
//! So a cached read is never older than `max_age` (the age of a hit is
//! read from the coarse system clock when that shows it well inside the
//! limit, by a quarter of `max_age`, and from the exact clock otherwise; see
//! [`Clock::now_coarse`](crate::clock::Clock::now_coarse)), and normally no
//! older than the notification delay. Once the store is sealed, reads fail with
//! [`Error::Sealed`] whether cached or not, and the first such read empties
//! the cache. [`SecretsStore::get_version`],
//! [`SecretsStore::metadata`] and [`SecretsStore::list`] always read
//! storage. Through a principal's [`Handle`](crate::Handle), the policy
//! check and the audit record happen on every read, hit or miss.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::secrets::SecretError;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Error, Options, SecretBytes, Strongroom};
//!
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, Options::default()).await?;
//! // unchecked access (no principal) goes through the door; see `Handle`
//! // for a principal's checked and audited access
//! let secrets = sr.dangerous_traced("example").await?.secrets();
//!
//! let v1 = secrets.put("prod/payment-svc/postgres", b"pw-1", Some(0)).await?;
//! assert_eq!(v1.version, 1);
//! // a stale check-and-set loses and learns the current version
//! let err = secrets.put("prod/payment-svc/postgres", b"pw-x", Some(0)).await.unwrap_err();
//! assert!(matches!(err, Error::Secret(SecretError::CasMismatch { current: 1, .. })));
//! secrets.put("prod/payment-svc/postgres", b"pw-2", Some(1)).await?;
//!
//! let latest = secrets.get("prod/payment-svc/postgres").await?;
//! assert_eq!((latest.version.version, latest.value.expose_secret()), (2, &b"pw-2"[..]));
//! assert_eq!(secrets.list("prod").await?, vec!["payment-svc/"]);
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::path::SecretPath;
use crate::seal::SealContext;
use crate::storage::BatchOp;
use crate::{Error, Result, SecretBytes, Strongroom};

mod cache;
mod watch;

use cache::ReadCache;
pub use cache::{CacheOptions, CacheStats};

pub use watch::{SecretChange, SecretWatch};

/// Storage prefix of the metadata records: `kvm/<path>` (barrier records;
/// with [`SecretsOptions::inline_values`], the current version's value too).
pub const METADATA_PREFIX: &str = "kvm/";
/// Storage prefix of the sealed version records: `s/kv/<path>@<version>`.
pub const VERSION_PREFIX: &str = "s/kv/";
/// The store-wide default for the number of versions kept per secret.
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// The largest accepted `max_versions`.
pub const MAX_MAX_VERSIONS: u32 = 1000;

/// Format version of the metadata record.
const METADATA_FORMAT: u8 = 1;
/// Format version of a metadata record followed by the current version's
/// value (see [`SecretsOptions::inline_values`]).
const METADATA_FORMAT_INLINE: u8 = 2;
/// The largest value [`SecretsOptions::inline_values`] keeps in the
/// metadata record; a larger one gets a version record of its own.
pub const MAX_INLINE_VALUE: usize = 4096;
/// How many times a write is retried when another writer changed the secret
/// between our read and our write (only for writes without `cas`).
const MAX_ATTEMPTS: usize = 32;
/// Characters that sort after every character allowed in a path; used to
/// skip a whole folder in a scan.
const AFTER_ALL_PATH_CHARS: char = '~';

const MAX_TAGS: usize = 64;
const MAX_CUSTOM: usize = 64;
const MAX_LABEL_BYTES: usize = 128;
const MAX_TEXT_BYTES: usize = 1024;

/// Errors of the versioned secrets store. Paths and version numbers appear in
/// messages; values never do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No secret at this path, or the secret never had this version.
    #[error("{}", not_found_message(.path, *.version))]
    NotFound {
        /// The path.
        path: String,
        /// The requested version, if a specific one was asked for.
        version: Option<u64>,
    },
    /// The version was soft-deleted; `undelete` brings it back.
    #[error("secret {path} version {version} was deleted at {deleted_at}; undelete it to read it")]
    VersionDeleted {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// When it was deleted.
        deleted_at: Timestamp,
    },
    /// The version was destroyed: its sealed value is gone for good.
    #[error(
        "secret {path} version {version} was destroyed at {destroyed_at} and cannot be recovered"
    )]
    VersionDestroyed {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// When it was destroyed.
        destroyed_at: Timestamp,
    },
    /// The version was pruned because the secret keeps only `max_versions`
    /// versions; it is gone for good.
    #[error(
        "secret {path} version {version} was pruned (the oldest kept version is {oldest}); raise max_versions to keep more"
    )]
    VersionPruned {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// The oldest version still kept.
        oldest: u64,
    },
    /// A check-and-set write found another current version.
    #[error(
        "check-and-set failed for secret {path}: expected current version {expected}, found {current}; re-read and retry"
    )]
    CasMismatch {
        /// The path.
        path: String,
        /// The version the caller expected to be current (0: absent).
        expected: u64,
        /// The actual current version (0: absent).
        current: u64,
    },
    /// Metadata or an option is out of bounds.
    #[error("invalid metadata for secret {path}: {reason}")]
    InvalidMetadata {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Other writers kept changing the secret; the write gave up.
    #[error("secret {path} kept changing concurrently ({attempts} attempts); retry later")]
    Contended {
        /// The path.
        path: String,
        /// How many attempts were made.
        attempts: usize,
    },
}

fn not_found_message(path: &str, version: Option<u64>) -> String {
    match version {
        Some(v) => format!("secret {path} has no version {v}"),
        None => format!("no secret at {path}"),
    }
}

/// Splits a path that follows the `environment/service/kind` convention into
/// its three parts; `None` for paths of another shape (which are allowed).
///
/// ```
/// use strongroom::path::SecretPath;
/// use strongroom::secrets::naming_convention;
/// let p = SecretPath::parse("prod/payment-svc/postgres")?;
/// assert_eq!(naming_convention(&p), Some(("prod", "payment-svc", "postgres")));
/// assert_eq!(naming_convention(&SecretPath::parse("misc/thing")?), None);
/// # Ok::<(), strongroom::Error>(())
/// ```
pub fn naming_convention(path: &SecretPath) -> Option<(&str, &str, &str)> {
    let mut s = path.segments();
    match (s.next(), s.next(), s.next(), s.next()) {
        (Some(e), Some(svc), Some(k), None) => Some((e, svc, k)),
        _ => None,
    }
}

/// How a [`SecretsStore`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretsOptions {
    /// Versions kept per secret unless the secret sets its own
    /// `max_versions`. Clamped to `1..=`[`MAX_MAX_VERSIONS`].
    pub default_max_versions: u32,
    /// The read cache of [`SecretsStore::get`] (see [`CacheOptions`] and
    /// the "Read cache" section of the [module docs](self)); `None`, the
    /// default, keeps no plaintext between calls.
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

// ----- stored records -----

/// The metadata record at `kvm/<path>` (JSON, format 1; or format 2, the
/// JSON followed by the current version's value; see docs/FORMAT.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetaRecord {
    /// Format 1, or 2 exactly when `inline` is set (see
    /// [`MetaRecord::set_inline`]).
    format: u8,
    current_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_versions: Option<u32>,
    created_at: Timestamp,
    updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_rotated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    tags: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    custom: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation_interval_secs: Option<u64>,
    versions: BTreeMap<u64, VersionRecord>,
    /// The current version's value, kept in this record (format 2).
    #[serde(skip)]
    inline: Option<SecretBytes>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct VersionRecord {
    created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    destroyed_at: Option<Timestamp>,
}

impl VersionRecord {
    fn info(&self, version: u64) -> VersionInfo {
        VersionInfo {
            version,
            created_at: self.created_at,
            deleted_at: self.deleted_at,
            destroyed_at: self.destroyed_at,
        }
    }
}

impl MetaRecord {
    fn oldest_version(&self) -> u64 {
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
    fn set_inline(&mut self, value: Option<SecretBytes>) {
        self.format = if value.is_some() {
            METADATA_FORMAT_INLINE
        } else {
            METADATA_FORMAT
        };
        self.inline = value;
    }

    /// The value kept in this record, if any, leaving none (format 1).
    fn take_inline(&mut self) -> Option<SecretBytes> {
        let value = self.inline.take();
        self.set_inline(None);
        value
    }

    /// A new record for a secret whose first version is written at `now`.
    fn first(now: Timestamp) -> Self {
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

    fn public(&self, path: &SecretPath, default_max: u32) -> SecretMetadata {
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
    fn readable(&self, path: &SecretPath, version: u64) -> Result<VersionRecord, SecretError> {
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
    fn apply_patch(&mut self, patch: MetadataPatch, now: Timestamp) {
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
    fn prune(&mut self, path: &SecretPath, max: u32) -> Vec<BatchOp> {
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
fn version_key_prefix(path: &SecretPath) -> String {
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

fn parse_prefix(prefix: &str) -> Result<Option<SecretPath>> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() && prefix.len() <= 1 {
        return Ok(None);
    }
    SecretPath::parse(trimmed).map(Some)
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

// ----- the store -----

/// The versioned secrets store over a [`Strongroom`]. Cheap to clone.
///
/// Each method here is the one place its operation happens, so checks placed
/// in front of them (policy, audit) cover every path to the data.
#[derive(Debug, Clone)]
pub struct SecretsStore {
    sr: Strongroom,
    options: SecretsOptions,
    /// Shared by clones.
    cache: Option<Arc<ReadCache>>,
}

impl Strongroom {
    /// The versioned secrets store with default options.
    pub(crate) fn secrets(&self) -> SecretsStore {
        SecretsStore::new(self.clone(), SecretsOptions::default())
    }
}

/// What a mutation of the metadata record decided.
enum Change<T> {
    /// Write the record (and the extra operations) and return `T`.
    Write(Box<MetaRecord>, Vec<BatchOp>, T),
    /// Delete the record (and apply the extra operations), return `T`.
    Remove(Vec<BatchOp>, T),
}

impl SecretsStore {
    /// A store over `sr`.
    pub(crate) fn new(sr: Strongroom, mut options: SecretsOptions) -> Self {
        options.default_max_versions = options.default_max_versions.clamp(1, MAX_MAX_VERSIONS);
        let cache = options.cache.map(ReadCache::new);
        Self { sr, options, cache }
    }

    /// The store's options.
    pub fn options(&self) -> SecretsOptions {
        self.options
    }

    /// The [`Strongroom`] underneath.
    pub fn strongroom(&self) -> &Strongroom {
        &self.sr
    }

    /// The metadata record of `path`, with the bytes it is stored as.
    async fn read_meta(&self, path: &SecretPath) -> Result<Option<(MetaRecord, Vec<u8>)>> {
        let key = metadata_key(path);
        match self.sr.barrier_get_stored(&key).await? {
            Some(rec) => Ok(Some((
                MetaRecord::decode(&key, rec.plain.expose_secret())?,
                rec.stored,
            ))),
            None => Ok(None),
        }
    }

    /// The metadata record of `path` (read without keeping its stored
    /// bytes: nothing is conditioned on them).
    async fn require_meta(&self, path: &SecretPath) -> Result<MetaRecord> {
        let key = metadata_key(path);
        match self.sr.storage().get(&key).await? {
            Some(raw) => self.open_meta(&key, raw).await,
            None => Err(SecretError::NotFound {
                path: path.as_str().to_owned(),
                version: None,
            }
            .into()),
        }
    }

    /// Opens and decodes the metadata record `raw` read from `key` (its
    /// plaintext, which can hold a value, is wiped).
    async fn open_meta(&self, key: &str, raw: Vec<u8>) -> Result<MetaRecord> {
        let plain = self.sr.barrier_open_secret(key, raw).await?;
        MetaRecord::decode(key, plain.expose_secret())
    }

    /// Read-modify-write of a secret's metadata record, atomically with the
    /// operations `f` adds, retried while other writers interfere. `f` gets
    /// the record as read (`None`: no secret) and decides; its errors end the
    /// loop (a CAS check inside `f` therefore sees the freshest record).
    async fn mutate<T, F, Fut>(&self, path: &SecretPath, mut f: F) -> Result<T>
    where
        F: FnMut(Option<MetaRecord>) -> Fut,
        Fut: std::future::Future<Output = Result<Change<T>>>,
    {
        let key = metadata_key(path);
        for _ in 0..MAX_ATTEMPTS {
            // Conditioned on the stored bytes just read: the barrier need
            // not read and open the record again.
            let (current, stored) = match self.read_meta(path).await? {
                Some((m, stored)) => (Some(m), Some(stored)),
                None => (None, None),
            };
            let mut ops = vec![BatchOp::expect(key.clone(), stored)];
            let out = match f(current).await? {
                Change::Write(rec, extra, out) => {
                    ops.extend(extra);
                    ops.push(BatchOp::put(key.clone(), rec.encode()?));
                    out
                }
                Change::Remove(extra, out) => {
                    ops.extend(extra);
                    ops.push(BatchOp::delete(key.clone()));
                    out
                }
            };
            let written = self.sr.barrier_batch(ops).await;
            if let Some(cache) = &self.cache {
                // Also on failure: the batch may have committed.
                cache.invalidate([path.as_str()]);
            }
            match written {
                Ok(()) => return Ok(out),
                Err(Error::StorageConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SecretError::Contended {
            path: path.as_str().to_owned(),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Writes a new version of the secret at `path`.
    ///
    /// `cas`: `None` writes unconditionally; `Some(0)` only if the secret
    /// does not exist; `Some(n)` only if `n` is the current version.
    /// Otherwise fails with [`SecretError::CasMismatch`] carrying the current
    /// version. Versions beyond the limit are pruned in the same atomic write.
    pub async fn put(&self, path: &str, value: &[u8], cas: Option<u64>) -> Result<VersionInfo> {
        self.put_with(path, value, cas, |_| Ok(())).await
    }

    /// [`SecretsStore::put`] with a check that learns whether this write
    /// creates the secret or updates it, decided on the same read the atomic
    /// write is conditioned on (so a policy distinguishing `create` from
    /// `update` cannot be raced). `authorize` runs before the value is sealed,
    /// possibly more than once if concurrent writers force a retry; an error
    /// from it aborts the write and is returned as is.
    pub async fn put_with<A>(
        &self,
        path: &str,
        value: &[u8],
        cas: Option<u64>,
        authorize: A,
    ) -> Result<VersionInfo>
    where
        A: Fn(WriteKind) -> Result<()> + Send + Sync,
    {
        let path = SecretPath::parse(path)?;
        let authorize = &authorize;
        let default_max = self.options.default_max_versions;
        let path_ref = &path;
        self.mutate(path_ref, |current| async move {
            // authorise first, so a refused caller learns nothing (not even
            // the current version from a CAS mismatch)
            authorize(if current.is_some() {
                WriteKind::Update
            } else {
                WriteKind::Create
            })?;
            let current_version = current.as_ref().map_or(0, |m| m.current_version);
            if let Some(expected) = cas
                && expected != current_version
            {
                return Err(SecretError::CasMismatch {
                    path: path_ref.as_str().to_owned(),
                    expected,
                    current: current_version,
                }
                .into());
            }
            let now = self.sr.clock().now();
            let version = current_version.checked_add(1).ok_or_else(|| {
                Error::InvalidArgument(format!("secret {path_ref} has run out of version numbers"))
            })?;
            let mut rec = match current {
                Some(mut m) => {
                    m.last_rotated_at = Some(now);
                    m
                }
                None => MetaRecord::first(now),
            };
            let previous = rec.current_version;
            let moved = rec.take_inline();
            rec.current_version = version;
            rec.updated_at = now;
            let vrec = VersionRecord {
                created_at: now,
                deleted_at: None,
                destroyed_at: None,
            };
            rec.versions.insert(version, vrec);
            let mut ops = self.place_value(&mut rec, path_ref, value).await?;
            ops.extend(rec.prune(path_ref, rec.max_versions.unwrap_or(default_max)));
            // The previous version's value, kept in the metadata record until
            // now, moves to a version record of its own (unless just pruned).
            if let Some(moved) = moved
                && rec
                    .versions
                    .get(&previous)
                    .is_some_and(|v| v.destroyed_at.is_none())
            {
                let ctx = SealContext::new(path_ref.as_str(), previous);
                ops.push(
                    self.sr
                        .sealed_put(
                            &version_key(path_ref, previous),
                            moved.expose_secret(),
                            &ctx,
                        )
                        .await?,
                );
            }
            Ok(Change::Write(Box::new(rec), ops, vrec.info(version)))
        })
        .await
    }

    /// Where the value of `rec`'s new current version goes: into `rec`
    /// (with [`SecretsOptions::inline_values`] and a small value) or a
    /// version record of its own, whose sealed write is returned.
    async fn place_value(
        &self,
        rec: &mut MetaRecord,
        path: &SecretPath,
        value: &[u8],
    ) -> Result<Vec<BatchOp>> {
        if self.options.inline_values && value.len() <= MAX_INLINE_VALUE {
            rec.set_inline(Some(SecretBytes::copy_from(value)));
            return Ok(Vec::new());
        }
        rec.set_inline(None);
        let version = rec.current_version;
        let ctx = SealContext::new(path.as_str(), version);
        Ok(vec![
            self.sr
                .sealed_put(&version_key(path, version), value, &ctx)
                .await?,
        ])
    }

    /// Reads the current version of the secret at `path` (from the read
    /// cache when it is on and holds a fresh copy).
    pub async fn get(&self, path: &str) -> Result<SecretVersion> {
        if self.cache.is_none() {
            return self.read_current(SecretPath::parse(path)?).await;
        }
        let shared = self.get_shared(path).await?;
        Ok(SecretVersion {
            path: shared.path.clone(),
            version: shared.version,
            value: shared.value.clone(),
        })
    }

    /// [`SecretsStore::get`] without copying a cached value: the cache's own
    /// copy, shared (with the read cache off, a new one).
    ///
    pub async fn get_shared(&self, path: &str) -> Result<Arc<SecretVersion>> {
        if let Some(answer) = self.cached(path) {
            return answer;
        }
        // Boxed, so the future of a hit stays small.
        Box::pin(self.get_shared_miss(path)).await
    }

    /// The cache's answer for `path`, if it has one: a fresh copy, or
    /// `Sealed`. `None` when the read must go to storage.
    #[inline]
    fn cached(&self, path: &str) -> Option<Result<Arc<SecretVersion>>> {
        let cache = self.cache.as_ref()?;
        // Follow the feed before the first read, so no change after it is
        // missed.
        cache.follow(|| self.sr.storage().watch());
        // A sealed store serves nothing, cached or not, and forgets what
        // its cache held.
        if self.sr.is_sealed() {
            cache.clear();
            return Some(Err(Error::Sealed));
        }
        // Only valid paths are cached, and a path is valid only in its one
        // canonical spelling: a hit needs no parsing.
        cache.get(path, self.sr.clock().as_ref()).map(Ok)
    }

    async fn get_shared_miss(&self, path: &str) -> Result<Arc<SecretVersion>> {
        let Some(cache) = &self.cache else {
            return Ok(Arc::new(self.read_current(SecretPath::parse(path)?).await?));
        };
        // Taken before the read: an entry's age counts from here.
        let now = self.sr.clock().now();
        let canonical = SecretPath::parse(path)?;
        let generation = cache.generation();
        let read = Arc::new(self.read_current(canonical).await?);
        cache.insert(generation, &read, now);
        Ok(read)
    }

    /// The read cache's hit and miss counts, if the cache is on.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }

    /// A value kept in the metadata record needs no other read; with
    /// [`SecretsOptions::inline_values`] off, the metadata and the newest
    /// version record come back from one storage read
    /// ([`Storage::get_with_last`]). When the newest record is not the
    /// current version's (destroyed, or the two reads of a backend without
    /// a combined read disagree), or a value expected in the metadata record
    /// is not there, the current version is read by key as
    /// [`SecretsStore::get_version`] does.
    ///
    /// [`Storage::get_with_last`]: crate::storage::Storage::get_with_last
    async fn read_current(&self, path: SecretPath) -> Result<SecretVersion> {
        let meta_key = metadata_key(&path);
        let storage = self.sr.storage();
        let (raw, last) = if self.options.inline_values {
            (storage.get(&meta_key).await?, None)
        } else {
            storage
                .get_with_last(&meta_key, &version_key_prefix(&path))
                .await?
        };
        let Some(raw) = raw else {
            return Err(SecretError::NotFound {
                path: path.as_str().to_owned(),
                version: None,
            }
            .into());
        };
        let meta = self.open_meta(&meta_key, raw).await?;
        let version = meta.current_version;
        match last {
            // The newest version record is the current version's (and the
            // value is not in the metadata record).
            Some((key, bytes))
                if meta.inline.is_none()
                    && version_key_names(&key) == Some((path.as_str(), version)) =>
            {
                let vrec = meta.readable(&path, version)?;
                let ctx = SealContext::new(path.as_str(), version);
                let value = self.sr.open_record(&key, bytes, &ctx).await?;
                Ok(SecretVersion {
                    version: vrec.info(version),
                    path,
                    value,
                })
            }
            _ => self.read_version(path, meta, version).await,
        }
    }

    /// Reads version `version` of the secret at `path`.
    pub async fn get_version(&self, path: &str, version: u64) -> Result<SecretVersion> {
        let path = SecretPath::parse(path)?;
        let meta = self.require_meta(&path).await?;
        self.read_version(path, meta, version).await
    }

    /// Version `version` of `path` as `meta` lists it: from `meta` itself
    /// when it holds that version's value, else from its version record.
    async fn read_version(
        &self,
        path: SecretPath,
        meta: MetaRecord,
        version: u64,
    ) -> Result<SecretVersion> {
        let vrec = meta.readable(&path, version)?;
        if let Some(value) = meta.inline.filter(|_| version == meta.current_version) {
            return Ok(SecretVersion {
                version: vrec.info(version),
                path,
                value,
            });
        }
        let key = version_key(&path, version);
        let ctx = SealContext::new(path.as_str(), version);
        let value = match self.sr.get_sealed(&key, &ctx).await? {
            Some(v) => v,
            None => {
                // Destroyed, pruned or deleted between our two reads: report
                // what the metadata says now.
                let now = self.require_meta(&path).await?;
                now.readable(&path, version)?;
                return Err(Error::corrupt(
                    key,
                    "the metadata lists this version but its sealed value is missing",
                ));
            }
        };
        Ok(SecretVersion {
            version: vrec.info(version),
            path,
            value,
        })
    }

    /// Lists one level under `prefix` (`""` or `"/"` for the top), like
    /// Vault: secret names as they are, folders with a trailing `/`, sorted,
    /// relative to the prefix. A name can appear twice, as a secret and a
    /// folder (`db` and `db/`), when both `prod/db` and `prod/db/x` exist.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let base = match parse_prefix(prefix)? {
            Some(p) => format!("{METADATA_PREFIX}{p}/"),
            None => METADATA_PREFIX.to_owned(),
        };
        let storage = self.sr.storage();
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = storage.scan(&base, after.as_deref(), 256).await?;
            let Some((last, _)) = page.last() else { break };
            let mut next_after = last.clone();
            let full = page.len() == 256;
            for (key, _) in &page {
                let Some(rest) = key.strip_prefix(&base) else {
                    continue;
                };
                match rest.split_once('/') {
                    Some((folder, _)) => {
                        let entry = format!("{folder}/");
                        if out.last() != Some(&entry) {
                            out.push(entry);
                        }
                        // skip everything else inside this folder
                        next_after = format!("{base}{folder}/{AFTER_ALL_PATH_CHARS}");
                        break;
                    }
                    None => out.push(rest.to_owned()),
                }
            }
            if !full && next_after == *last {
                break;
            }
            after = Some(next_after);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Every secret at or under `prefix` (`""` for all), at any depth, as
    /// full paths in order.
    pub async fn list_all(&self, prefix: &str) -> Result<Vec<SecretPath>> {
        let base = parse_prefix(prefix)?;
        let scan_prefix = match &base {
            Some(p) => metadata_key(p),
            None => METADATA_PREFIX.to_owned(),
        };
        let mut out = Vec::new();
        for key in self.sr.storage().list(&scan_prefix).await? {
            let Some(rest) = key.strip_prefix(METADATA_PREFIX) else {
                continue;
            };
            let Ok(p) = SecretPath::parse(rest) else {
                continue;
            };
            if base.as_ref().is_none_or(|b| p.starts_with(b)) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Soft-deletes `versions` (the current version if empty). Reads of a
    /// deleted version fail with [`SecretError::VersionDeleted`] until
    /// [`SecretsStore::undelete`]. Deleting a deleted version is a no-op; a
    /// destroyed, pruned or unknown version fails and nothing changes.
    /// Returns the versions that changed.
    pub async fn delete(&self, path: &str, versions: &[u64]) -> Result<Vec<u64>> {
        self.change_versions(path, versions, VersionOp::Delete)
            .await
    }

    /// Restores soft-deleted `versions`. Undeleting a live version is a
    /// no-op; a destroyed, pruned or unknown version fails and nothing
    /// changes. Returns the versions that changed.
    pub async fn undelete(&self, path: &str, versions: &[u64]) -> Result<Vec<u64>> {
        self.change_versions(path, versions, VersionOp::Undelete)
            .await
    }

    /// Destroys `versions` (the current version if empty): their sealed
    /// bytes are removed from storage and cannot be recovered; the metadata
    /// remembers when. Destroying a destroyed version is a no-op. Returns the
    /// versions that changed.
    pub async fn destroy(&self, path: &str, versions: &[u64]) -> Result<Vec<u64>> {
        self.change_versions(path, versions, VersionOp::Destroy)
            .await
    }

    async fn change_versions(
        &self,
        path: &str,
        versions: &[u64],
        op: VersionOp,
    ) -> Result<Vec<u64>> {
        let path = SecretPath::parse(path)?;
        let path_ref = &path;
        self.mutate(path_ref, |current| async move {
            let mut rec = current.ok_or_else(|| SecretError::NotFound {
                path: path_ref.as_str().to_owned(),
                version: None,
            })?;
            let targets: BTreeSet<u64> = if versions.is_empty() {
                BTreeSet::from([rec.current_version])
            } else {
                versions.iter().copied().collect()
            };
            let now = self.sr.clock().now();
            let mut changed = Vec::new();
            let mut ops = Vec::new();
            let current_version = rec.current_version;
            let mut destroyed_current = false;
            for v in targets {
                // classify first: unknown and pruned versions always fail
                let readable = rec.readable(path_ref, v);
                let Some(vrec) = rec.versions.get_mut(&v) else {
                    readable?;
                    continue;
                };
                match op {
                    VersionOp::Delete => match readable {
                        Ok(_) => {
                            vrec.deleted_at = Some(now);
                            changed.push(v);
                        }
                        Err(SecretError::VersionDeleted { .. }) => {}
                        Err(e) => return Err(e.into()),
                    },
                    VersionOp::Undelete => match readable {
                        Ok(_) => {}
                        Err(SecretError::VersionDeleted { .. }) => {
                            vrec.deleted_at = None;
                            changed.push(v);
                        }
                        Err(e) => return Err(e.into()),
                    },
                    VersionOp::Destroy => {
                        if vrec.destroyed_at.is_none() {
                            vrec.destroyed_at = Some(now);
                            ops.push(BatchOp::delete(version_key(path_ref, v)));
                            destroyed_current |= v == current_version;
                            changed.push(v);
                        }
                    }
                }
            }
            if destroyed_current {
                // A value kept in the metadata record goes with it.
                rec.set_inline(None);
            }
            if !changed.is_empty() {
                rec.updated_at = now;
            }
            Ok(Change::Write(Box::new(rec), ops, changed))
        })
        .await
    }

    /// Removes the secret at `path` entirely: its metadata and every
    /// version's sealed bytes. Afterwards the path reads as never written
    /// and a new write starts again at version 1.
    pub async fn delete_metadata(&self, path: &str) -> Result<()> {
        let path = SecretPath::parse(path)?;
        let path_ref = &path;
        let storage = self.sr.storage();
        self.mutate(path_ref, |current| async move {
            if current.is_none() {
                return Err(SecretError::NotFound {
                    path: path_ref.as_str().to_owned(),
                    version: None,
                }
                .into());
            }
            // Every sealed record of this path, whatever the metadata says.
            let ops = storage
                .list(&version_key_prefix(path_ref))
                .await?
                .into_iter()
                .map(BatchOp::delete)
                .collect();
            Ok(Change::Remove(ops, ()))
        })
        .await
    }

    /// The metadata of the secret at `path`.
    pub async fn metadata(&self, path: &str) -> Result<SecretMetadata> {
        let path = SecretPath::parse(path)?;
        let rec = self.require_meta(&path).await?;
        Ok(rec.public(&path, self.options.default_max_versions))
    }

    /// Changes the metadata of the secret at `path` and returns the result.
    /// Lowering `max_versions` prunes the oldest versions in the same atomic
    /// write.
    pub async fn update_metadata(
        &self,
        path: &str,
        patch: MetadataPatch,
    ) -> Result<SecretMetadata> {
        let path = SecretPath::parse(path)?;
        validate_patch(&path, &patch)?;
        let default_max = self.options.default_max_versions;
        let path_ref = &path;
        let patch_ref = &patch;
        self.mutate(path_ref, |current| async move {
            let mut rec = current.ok_or_else(|| SecretError::NotFound {
                path: path_ref.as_str().to_owned(),
                version: None,
            })?;
            rec.apply_patch(patch_ref.clone(), self.sr.clock().now());
            let ops = rec.prune(path_ref, rec.max_versions.unwrap_or(default_max));
            let public = rec.public(path_ref, default_max);
            Ok(Change::Write(Box::new(rec), ops, public))
        })
        .await
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

#[derive(Debug, Clone, Copy)]
enum VersionOp {
    Delete,
    Undelete,
    Destroy,
}

fn validate_patch(path: &SecretPath, patch: &MetadataPatch) -> Result<(), SecretError> {
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

// ----- batches spanning several secrets (for `declarative::apply`) -----

impl SecretsStore {
    /// The operations that apply `patch` to the metadata of `path` inside a
    /// batch the caller commits through the barrier, conditioned on the
    /// record still being `current` (its plaintext as read through the
    /// barrier; `None`: absent). With `current` absent and `initial` given,
    /// the batch creates the secret with `initial` as version 1; with both
    /// absent, only the condition is returned.
    pub(crate) async fn conditional_metadata_ops(
        &self,
        path: &SecretPath,
        current: Option<&[u8]>,
        patch: &MetadataPatch,
        initial: Option<&[u8]>,
    ) -> Result<Vec<BatchOp>> {
        validate_patch(path, patch)?;
        let key = metadata_key(path);
        let now = self.sr.clock().now();
        let mut ops = vec![BatchOp::expect(key.clone(), current.map(<[u8]>::to_vec))];
        let mut rec = match (current, initial) {
            (Some(raw), _) => MetaRecord::decode(&key, raw)?,
            (None, Some(value)) => {
                let vrec = VersionRecord {
                    created_at: now,
                    deleted_at: None,
                    destroyed_at: None,
                };
                let mut rec = MetaRecord::first(now);
                rec.current_version = 1;
                rec.versions.insert(1, vrec);
                ops.extend(self.place_value(&mut rec, path, value).await?);
                rec
            }
            (None, None) => return Ok(ops),
        };
        rec.apply_patch(patch.clone(), now);
        ops.extend(
            rec.prune(
                path,
                rec.max_versions
                    .unwrap_or(self.options.default_max_versions),
            ),
        );
        ops.push(BatchOp::put(key, rec.encode()?));
        if let Some(cache) = &self.cache {
            cache.invalidate([path.as_str()]);
        }
        Ok(ops)
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
        let doc = include_str!("../../../docs/FORMAT.md");
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

    #[test]
    fn prefixes_parse() {
        assert_eq!(parse_prefix("").unwrap(), None);
        assert_eq!(parse_prefix("/").unwrap(), None);
        assert_eq!(parse_prefix("prod/").unwrap().unwrap().as_str(), "prod");
        assert!(parse_prefix("prod//").is_err());
        assert!(parse_prefix("../x").is_err());
    }
}
