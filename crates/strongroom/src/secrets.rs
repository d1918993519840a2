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

mod cache;
mod error;
mod model;
mod read;
mod record;
mod store;
mod watch;
mod write;

pub use cache::{CacheOptions, CacheStats};
pub use error::SecretError;
pub use model::{
    MetadataPatch, SecretMetadata, SecretVersion, SecretsOptions, VersionInfo, WriteKind,
};
#[cfg(feature = "fuzzing")]
pub(crate) use record::MetaRecord;
pub use record::{metadata_key, version_key};
pub(crate) use record::{metadata_plaintext, metadata_state, version_key_names};
pub use store::SecretsStore;
pub use watch::{SecretChange, SecretWatch};

use crate::path::SecretPath;
#[cfg(doc)]
use crate::{Error, SecretBytes};

/// Storage prefix of the metadata records: `kvm/<path>` (barrier records;
/// with [`SecretsOptions::inline_values`], the current version's value too).
pub const METADATA_PREFIX: &str = "kvm/";
/// Storage prefix of the sealed version records: `s/kv/<path>@<version>`.
pub const VERSION_PREFIX: &str = "s/kv/";
/// The store-wide default for the number of versions kept per secret.
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// The largest accepted `max_versions`.
pub const MAX_MAX_VERSIONS: u32 = 1000;

/// The largest value [`SecretsOptions::inline_values`] keeps in the
/// metadata record; a larger one gets a version record of its own.
pub const MAX_INLINE_VALUE: usize = 4096;

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
