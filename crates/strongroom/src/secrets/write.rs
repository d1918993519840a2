//! Writes: new versions, version state, metadata, removal; each one atomic
//! batch conditioned on the metadata record as read.

use std::collections::BTreeSet;

use super::model::validate_patch;
use super::record::{MetaRecord, VersionRecord, metadata_key, version_key, version_key_prefix};
use super::{
    MAX_INLINE_VALUE, MetadataPatch, SecretError, SecretMetadata, SecretsStore, VersionInfo,
    WriteKind,
};
use crate::path::SecretPath;
use crate::seal::SealContext;
use crate::storage::BatchOp;
use crate::{Error, Result, SecretBytes};

/// How many times a write is retried when another writer changed the secret
/// between our read and our write (only for writes without `cas`).
const MAX_ATTEMPTS: usize = 32;

/// What a mutation of the metadata record decided.
enum Change<T> {
    /// Write the record (and the extra operations) and return `T`.
    Write(Box<MetaRecord>, Vec<BatchOp>, T),
    /// Delete the record (and apply the extra operations), return `T`.
    Remove(Vec<BatchOp>, T),
}

impl SecretsStore {
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

#[derive(Debug, Clone, Copy)]
enum VersionOp {
    Delete,
    Undelete,
    Destroy,
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
