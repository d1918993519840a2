//! The store: what it holds and how it reads a secret's metadata record.

use std::sync::Arc;

use super::cache::ReadCache;
use super::record::{MetaRecord, metadata_key};
use super::{CacheStats, MAX_MAX_VERSIONS, SecretError, SecretsOptions};
use crate::path::SecretPath;
use crate::{Result, Strongroom};

/// The versioned secrets store over a [`Strongroom`]. Cheap to clone.
///
/// Each method here is the one place its operation happens, so checks placed
/// in front of them (policy, audit) cover every path to the data.
#[derive(Debug, Clone)]
pub struct SecretsStore {
    pub(super) sr: Strongroom,
    pub(super) options: SecretsOptions,
    /// Shared by clones.
    pub(super) cache: Option<Arc<ReadCache>>,
}

impl Strongroom {
    /// The versioned secrets store with default options.
    pub(crate) fn secrets(&self) -> SecretsStore {
        SecretsStore::new(self.clone(), SecretsOptions::default())
    }
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
    pub(super) async fn read_meta(
        &self,
        path: &SecretPath,
    ) -> Result<Option<(MetaRecord, Vec<u8>)>> {
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
    pub(super) async fn require_meta(&self, path: &SecretPath) -> Result<MetaRecord> {
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
    pub(super) async fn open_meta(&self, key: &str, raw: Vec<u8>) -> Result<MetaRecord> {
        let plain = self.sr.barrier_open_secret(key, raw).await?;
        MetaRecord::decode(key, plain.expose_secret())
    }

    /// The read cache's hit and miss counts, if the cache is on.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }
}
