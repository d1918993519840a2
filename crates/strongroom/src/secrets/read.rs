//! Reads: current and past versions (through the read cache when it is
//! on), listings, metadata.

use std::sync::Arc;

use super::record::{MetaRecord, metadata_key, version_key, version_key_names, version_key_prefix};
use super::{METADATA_PREFIX, SecretError, SecretMetadata, SecretVersion, SecretsStore};
use crate::path::SecretPath;
use crate::seal::SealContext;
use crate::{Error, Result};

/// Characters that sort after every character allowed in a path; used to
/// skip a whole folder in a scan.
const AFTER_ALL_PATH_CHARS: char = '~';

impl SecretsStore {
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

    /// The metadata of the secret at `path`.
    pub async fn metadata(&self, path: &str) -> Result<SecretMetadata> {
        let path = SecretPath::parse(path)?;
        let rec = self.require_meta(&path).await?;
        Ok(rec.public(&path, self.options.default_max_versions))
    }
}

fn parse_prefix(prefix: &str) -> Result<Option<SecretPath>> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() && prefix.len() <= 1 {
        return Ok(None);
    }
    SecretPath::parse(trimmed).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse() {
        assert_eq!(parse_prefix("").unwrap(), None);
        assert_eq!(parse_prefix("/").unwrap(), None);
        assert_eq!(parse_prefix("prod/").unwrap().unwrap().as_str(), "prod");
        assert!(parse_prefix("prod//").is_err());
        assert!(parse_prefix("../x").is_err());
    }
}
