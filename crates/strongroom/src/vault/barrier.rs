//! The barrier: every record the library stores is sealed under the keyring
//! and bound to its storage key.
//!
//! Three kinds of record exist in storage:
//!
//! - **Pre-unseal records** ([`is_pre_unseal`]): the protector-wrapped root
//!   key, the keyring (sealed under the root key), the keyring generation
//!   counter and the root-key hand-over (sealed under the old root key).
//!   They must be readable before the keyring is, so the root key or the
//!   protector authenticates them instead.
//! - **Caller-sealed records** (keys under [`SEALED_PREFIX`]): secret
//!   values, staged credentials, dynamic-credential intents. Their writer
//!   seals them with its own context (a secret's path and version) through
//!   [`Strongroom::sealed_put`].
//! - **Barrier records**: everything else (secret metadata, lease records
//!   and their indexes, rotation state, the audit head, the rewrap cursor).
//!   They are stored as [`SealedRecord`]s whose context is the storage key
//!   itself with the reserved version [`BARRIER_CONTEXT_VERSION`], so a
//!   record that is edited, moved to another key or forged fails to open
//!   with [`Error::CorruptRecord`].
//!
//! Modules reach storage through [`Strongroom::barrier`], a
//! [`Storage`](crate::storage::Storage) that seals on the way in and opens
//! on the way out, so their record logic stays what it was. Preconditions
//! (`BatchOp::Expect`) name plaintext: the barrier conditions the batch on
//! the exact stored bytes that open to it. Those are bytes it reads and
//! opens now, or, in the view a lease manager writes through
//! ([`Strongroom::barrier_remembering`]), the bytes it opened on a recent
//! read of the record (see [`memo`]). A read-modify-write that read the
//! record with [`Strongroom::barrier_get_stored`] (which opened and so
//! authenticated it) calls [`Strongroom::barrier_batch`] with those stored
//! bytes itself. Either way the storage checks the stored
//! bytes when the batch applies. Every batch goes through
//! [`Strongroom::commit`], so barrier records are held to the keyring
//! generation like every other sealed write.
//!
//! What the barrier does not detect (a record replaced by an older sealed
//! copy of itself, a record deleted) is listed in `SECURITY.md`.

mod memo;

use std::sync::Arc;

use async_trait::async_trait;

use crate::changes::ChangeFeed;
use crate::seal::SealContext;
use crate::storage::{BatchOp, DynStorage, LastRecord, Storage};
use crate::{Error, Result, SEALED_PREFIX, SecretBytes};

use super::{KEYRING_GENERATION, KEYRING_RECORD, ROOT_KEY_RECORD, ROOT_UPGRADE_RECORD};
use super::{SealedRecord, Strongroom};
use memo::Memo;

/// The context version of barrier records. Secret versions start at 1 and
/// callers of `Strongroom::sealed_put` cannot use it, so no caller-sealed
/// record can pass for a barrier record.
pub const BARRIER_CONTEXT_VERSION: u64 = u64::MAX;

/// Whether the record at `key` is read before unseal (and is therefore not
/// a barrier record).
pub fn is_pre_unseal(key: &str) -> bool {
    matches!(
        key,
        ROOT_KEY_RECORD | KEYRING_RECORD | KEYRING_GENERATION | ROOT_UPGRADE_RECORD
    )
}

/// Whether the barrier passes the record at `key` through untouched: a
/// pre-unseal record or one its writer sealed itself.
fn passes_through(key: &str) -> bool {
    key.starts_with(SEALED_PREFIX) || is_pre_unseal(key)
}

/// A barrier record as read ([`Strongroom::barrier_get_stored`]).
pub(crate) struct StoredRecord {
    /// What the record opened to (wiped when dropped: a secret's metadata
    /// record can hold its current value).
    pub(crate) plain: SecretBytes,
    /// The bytes in storage.
    pub(crate) stored: Vec<u8>,
}

/// The storage every module of the library writes through: see the module
/// docs. Obtained from `Strongroom::barrier`; cheap to clone.
#[derive(Clone)]
pub struct Barrier {
    sr: Strongroom,
    /// What this view remembers of the records it opened (see [`memo`]);
    /// only the views that read and write the same records again and again
    /// have one.
    memo: Option<Arc<Memo>>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("storage", &self.sr.inner.storage.backend())
            .finish()
    }
}

impl Strongroom {
    /// The store's storage behind the barrier: values written through it are
    /// sealed under the keyring and bound to their key; values read through
    /// it are opened and authenticated (a tampered or moved record fails
    /// with [`Error::CorruptRecord`]). Keys under [`SEALED_PREFIX`] and the
    /// pre-unseal records pass through unchanged.
    pub(crate) fn barrier(&self) -> DynStorage {
        Arc::new(Barrier {
            sr: self.clone(),
            memo: None,
        })
    }

    /// [`Strongroom::barrier`] that remembers the records it opens by point
    /// reads and short scans, so a batch conditioned on one of them reads
    /// nothing again (see [`memo`]); for a lease manager, which rewrites
    /// the records it reads.
    pub(crate) fn barrier_remembering(&self) -> DynStorage {
        Arc::new(Barrier {
            sr: self.clone(),
            memo: Some(Arc::default()),
        })
    }

    /// Seals `plaintext` as the barrier record stored at `key`.
    pub(crate) async fn barrier_seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let ctx = SealContext::new(key, BARRIER_CONTEXT_VERSION);
        let sealed = self.seal_value(plaintext, &ctx).await?;
        SealedRecord::encode(&ctx, sealed.as_bytes())
    }

    /// Opens the barrier record `raw` read from `key`.
    pub(crate) async fn barrier_open(&self, key: &str, raw: Vec<u8>) -> Result<Vec<u8>> {
        Ok(self
            .barrier_open_secret(key, raw)
            .await?
            .expose_secret()
            .to_vec())
    }

    /// [`Strongroom::barrier_open`] into a buffer wiped when dropped.
    pub(crate) async fn barrier_open_secret(&self, key: &str, raw: Vec<u8>) -> Result<SecretBytes> {
        let ctx = SealContext::new(key, BARRIER_CONTEXT_VERSION);
        match self.open_record(key, raw, &ctx).await {
            Err(Error::DecryptionFailed) => Err(Error::corrupt(
                key,
                "record failed authentication (edited, moved or forged)",
            )),
            other => other,
        }
    }

    /// The barrier record at `key` with the bytes it is stored as, so a
    /// batch can be conditioned on exactly those bytes (see
    /// [`Strongroom::barrier_batch`]) without reading and opening the
    /// record a second time.
    pub(crate) async fn barrier_get_stored(&self, key: &str) -> Result<Option<StoredRecord>> {
        let Some(stored) = self.inner.storage.get(key).await? else {
            return Ok(None);
        };
        let plain = if passes_through(key) {
            SecretBytes::copy_from(&stored)
        } else {
            self.barrier_open_secret(key, stored.clone()).await?
        };
        Ok(Some(StoredRecord { plain, stored }))
    }

    /// Applies `ops` through the barrier: puts are sealed; the values of
    /// preconditions are the stored bytes (as [`StoredRecord::stored`] or
    /// [`Strongroom::stored_opening_to`] gave them) and pass unchanged.
    /// The plaintext of every put is wiped once sealed (or when sealing
    /// fails).
    pub(crate) async fn barrier_batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        // Wiped if sealing fails part-way.
        let mut ops = UnsentOps(ops);
        for op in ops.iter_mut() {
            if let BatchOp::Put { key, value } = op
                && !passes_through(key)
            {
                let sealed = self.barrier_seal(key, value).await?;
                wipe(std::mem::replace(value, sealed));
            }
        }
        self.commit(ops.send()).await
    }

    /// The stored bytes of the barrier record at `key`, read now, if they
    /// open to `expected` (a precondition is then conditioned on them);
    /// [`Error::StorageConflict`] if the record is absent or opens to
    /// something else.
    async fn stored_opening_to(&self, key: &str, expected: &[u8]) -> Result<Vec<u8>> {
        let conflict = || Error::StorageConflict {
            key: key.to_owned(),
        };
        let raw = self.inner.storage.get(key).await?.ok_or_else(conflict)?;
        let plain = self.barrier_open_secret(key, raw.clone()).await?;
        if plain.expose_secret() != expected {
            return Err(conflict());
        }
        Ok(raw)
    }

    async fn barrier_read(&self, key: &str, raw: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        match raw {
            Some(raw) if !passes_through(key) => self.barrier_open(key, raw).await.map(Some),
            other => Ok(other),
        }
    }
}

/// Batch operations not yet sent: dropped unsent (an error on the way),
/// the plaintext they can carry (a barrier put's record, a precondition
/// naming a record's plaintext, which for a secret's metadata can hold its
/// value) is wiped.
pub(crate) struct UnsentOps(pub(crate) Vec<BatchOp>);

impl UnsentOps {
    /// The operations, to send.
    pub(crate) fn send(mut self) -> Vec<BatchOp> {
        std::mem::take(&mut self.0)
    }
}

impl std::ops::Deref for UnsentOps {
    type Target = Vec<BatchOp>;
    fn deref(&self) -> &Vec<BatchOp> {
        &self.0
    }
}

impl std::ops::DerefMut for UnsentOps {
    fn deref_mut(&mut self) -> &mut Vec<BatchOp> {
        &mut self.0
    }
}

impl Drop for UnsentOps {
    fn drop(&mut self) {
        for op in &mut self.0 {
            if let BatchOp::Put { value, .. }
            | BatchOp::Expect {
                value: Some(value), ..
            } = op
            {
                wipe(std::mem::take(value));
            }
        }
    }
}

/// Wipes `plain` as [`SecretBytes`] does when dropped.
fn wipe(plain: Vec<u8>) {
    drop(SecretBytes::new(plain));
}

#[async_trait]
impl Storage for Barrier {
    fn backend(&self) -> &'static str {
        self.sr.inner.storage.backend()
    }

    fn is_read_only(&self) -> bool {
        self.sr.inner.storage.is_read_only()
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let raw = self.sr.inner.storage.get(key).await?;
        match raw {
            Some(raw) if !passes_through(key) => {
                let Some(memo) = &self.memo else {
                    return self.sr.barrier_open(key, raw).await.map(Some);
                };
                let plain = self.sr.barrier_open(key, raw.clone()).await?;
                memo.remember(key, &plain, &raw);
                Ok(Some(plain))
            }
            other => Ok(other),
        }
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let page = self
            .sr
            .inner
            .storage
            .scan(prefix, start_after, limit)
            .await?;
        let memo = self.memo.as_ref().filter(|_| limit <= memo::MAX_SCAN);
        let mut out = Vec::with_capacity(page.len());
        for (key, raw) in page {
            if passes_through(&key) {
                out.push((key, raw));
                continue;
            }
            let stored = memo.map(|_| raw.clone());
            let value = self.sr.barrier_open(&key, raw).await?;
            if let (Some(memo), Some(stored)) = (memo, stored) {
                memo.remember(&key, &value, &stored);
            }
            out.push((key, value));
        }
        Ok(out)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.sr.inner.storage.list(prefix).await
    }

    async fn get_with_last(
        &self,
        key: &str,
        prefix: &str,
    ) -> Result<(Option<Vec<u8>>, LastRecord)> {
        let (raw, last) = self.sr.inner.storage.get_with_last(key, prefix).await?;
        let value = self.sr.barrier_read(key, raw).await?;
        let last = match last {
            Some((k, raw)) => {
                let v = self.sr.barrier_read(&k, Some(raw)).await?;
                Some((k, v.unwrap_or_default()))
            }
            None => None,
        };
        Ok((value, last))
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        // Preconditions on records this view remembers name their stored
        // bytes now; the rest are read and opened.
        let memo = self.memo.as_deref();
        let mut recalled = Vec::new();
        // Resolved in place; wiped if a failed precondition read ends this
        // early.
        let mut ops = UnsentOps(ops);
        for (at, op) in ops.iter_mut().enumerate() {
            let BatchOp::Expect {
                key,
                value: Some(value),
            } = op
            else {
                continue;
            };
            if passes_through(key) {
                continue;
            }
            let expected = SecretBytes::new(std::mem::take(value));
            *value = match memo.and_then(|m| m.stored(key, expected.expose_secret())) {
                Some(stored) => {
                    recalled.push((at, expected));
                    stored
                }
                None => {
                    self.sr
                        .stored_opening_to(key, expected.expose_secret())
                        .await?
                }
            };
        }
        let resolved = ops.send();
        let Some(memo) = memo else {
            return self.sr.barrier_batch(resolved).await;
        };
        let retry = (!recalled.is_empty()).then(|| resolved.clone());
        let written: Vec<String> = resolved
            .iter()
            .filter_map(BatchOp::written_key)
            .map(str::to_owned)
            .collect();
        let outcome = self.sr.barrier_batch(resolved).await;
        memo.forget(written.iter().map(String::as_str));
        let Some(mut retry) = retry else {
            return outcome;
        };
        // A remembered record that is no longer stored as remembered may
        // still open to the expected plaintext (sealed again by a rewrap):
        // forget it and check the plaintext by reading, as without the memo.
        match outcome {
            Err(Error::StorageConflict { key })
                if recalled.iter().any(|&(i, _)| retry[i].key() == key) =>
            {
                memo.forget(recalled.iter().map(|&(i, _)| retry[i].key()));
                for (i, expected) in recalled {
                    let key = retry[i].key().to_owned();
                    let stored = self
                        .sr
                        .stored_opening_to(&key, expected.expose_secret())
                        .await?;
                    retry[i] = BatchOp::Expect {
                        key,
                        value: Some(stored),
                    };
                }
                self.sr.barrier_batch(retry).await
            }
            other => other,
        }
    }

    fn watch(&self) -> Option<ChangeFeed> {
        self.sr.inner.storage.watch()
    }
}

/// What [`Strongroom::verify_records`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordCheck {
    /// Records authenticated.
    pub checked: u64,
    /// Records that failed, with the reason (storage key, reason).
    pub failed: Vec<(String, String)>,
}

impl RecordCheck {
    /// Whether every record authenticated.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty()
    }
}

impl Strongroom {
    /// Authenticates every keyring-sealed record in storage without
    /// returning any plaintext: barrier records against their storage key,
    /// caller-sealed records against the context they carry, and a secret's
    /// version record also against the path and version its key names.
    /// Records that are edited, forged, moved between barrier keys or moved
    /// between secrets' version keys are reported; whether another
    /// caller-sealed record sits at the key its reader expects is checked by
    /// that reader (rotation) when it reads. Rolled-back and deleted records
    /// are not detected (see `SECURITY.md`).
    pub async fn verify_records(&self) -> Result<RecordCheck> {
        let mut check = RecordCheck::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.inner.storage.scan("", after.as_deref(), 500).await?;
            for (key, raw) in &page {
                if is_pre_unseal(key) {
                    continue;
                }
                check.checked += 1;
                let outcome = if key.starts_with(SEALED_PREFIX) {
                    match SealedRecord::decode(key, raw) {
                        Ok(rec) => match crate::secrets::version_key_names(key) {
                            Some(named) if named != (rec.path, rec.version) => Err(Error::corrupt(
                                key,
                                "holds the sealed value of another secret or version",
                            )),
                            _ => {
                                let path = rec.path.to_owned();
                                let ctx = SealContext::new(&path, rec.version);
                                self.open_record(key, raw.clone(), &ctx).await.map(drop)
                            }
                        },
                        Err(e) => Err(e),
                    }
                } else {
                    self.barrier_open_secret(key, raw.clone()).await.map(drop)
                };
                match outcome {
                    Ok(()) => {}
                    Err(Error::Sealed) => return Err(Error::Sealed),
                    Err(e) => check.failed.push((key.clone(), e.to_string())),
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == 500 => after = Some(k.clone()),
                _ => return Ok(check),
            }
        }
    }
}

#[cfg(test)]
mod tests;
