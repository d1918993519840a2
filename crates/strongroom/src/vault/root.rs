//! Root-key rotation while other processes run.
//!
//! [`Strongroom::rotate_root_key`] re-seals the keyring under a new root key.
//! Other live processes still hold the old root in memory: they cannot open
//! the new keyring record, and they cannot write a keyring under the old
//! root either (every keyring write is a compare-and-set on the record they
//! can no longer read). So that they follow instead of failing, the rotation
//! leaves a short-lived hand-over record in the same atomic batch, as Vault
//! does for its standbys:
//!
//! ```text
//! sys/root-upgrade, format 1
//! 1 byte   format (1)
//! 8 bytes  expiry, Unix milliseconds, big-endian
//! rest     the new root key sealed under the OLD root key
//!          (AES-256-GCM, key version 0, context ("sys/root-upgrade", expiry))
//! ```
//!
//! A process whose root key no longer opens the keyring opens the hand-over
//! with its old root, adopts the new root and carries on. The rotation also
//! moves the keyring generation on, so every live process hears of it within
//! the notification latency (or the refresh fallback) rather than at its
//! next reservation. The record is refused after its expiry
//! ([`ROOT_UPGRADE_GRACE`] after the rotation) and deleted by the first
//! process that finds it expired. A process that was paused for longer than
//! that fails with [`Error::UnsealFailed`] and must be unsealed again with
//! the new protector.
//!
//! Until the record expires, whoever holds the old root key (the old
//! protector plus a copy of the old `sys/root-key` record) can learn the new
//! one: retire the old protector's key only after the grace period.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::seal::{Algorithm, DataKey, SealContext, SealedValue};
use crate::storage::BatchOp;
use crate::{Error, Result, SecretBytes};

use super::{LoadedKeyring, Strongroom, load_keyring};

/// Storage key of the root-key hand-over record.
pub const ROOT_UPGRADE_RECORD: &str = "sys/root-upgrade";
/// How long other processes may follow a root-key rotation.
pub const ROOT_UPGRADE_GRACE: Duration = Duration::from_secs(120);

const FORMAT: u8 = 1;

/// The hand-over record for `new_raw`, sealed under `old_root`.
pub(super) fn encode_upgrade(
    old_root: &DataKey,
    new_raw: &SecretBytes,
    expires: Timestamp,
) -> Result<Vec<u8>> {
    let ms = expires.as_millis();
    let sealed = old_root.seal(
        0,
        new_raw.expose_secret(),
        &SealContext::new(ROOT_UPGRADE_RECORD, ms),
    )?;
    let mut out = Vec::with_capacity(9 + sealed.as_bytes().len());
    out.push(FORMAT);
    out.extend_from_slice(&ms.to_be_bytes());
    out.extend_from_slice(sealed.as_bytes());
    Ok(out)
}

/// The expiry of a hand-over record and its sealed part.
fn parse_upgrade(raw: &[u8]) -> Result<(u64, &[u8])> {
    let bad = |r: &str| Error::corrupt(ROOT_UPGRADE_RECORD, r.to_owned());
    let (&format, rest) = raw.split_first().ok_or_else(|| bad("empty"))?;
    if format != FORMAT {
        return Err(bad("unsupported format"));
    }
    let ms = rest.get(..8).ok_or_else(|| bad("truncated"))?;
    let ms = u64::from_be_bytes(<[u8; 8]>::try_from(ms).map_err(|_| bad("truncated"))?);
    Ok((ms, &rest[8..]))
}

impl Strongroom {
    /// The root key and the keyring as stored, following a root-key rotation
    /// made by another process if this one's root is out of date.
    pub(super) async fn load_current(&self) -> Result<(Arc<DataKey>, LoadedKeyring)> {
        let root = self.root()?;
        match load_keyring(&self.inner.storage, &root).await {
            Err(Error::UnsealFailed) => {
                let Some(new_root) = self.adopt_root_upgrade(&root).await? else {
                    return Err(Error::UnsealFailed);
                };
                let loaded = load_keyring(&self.inner.storage, &new_root).await?;
                Ok((new_root, loaded))
            }
            r => Ok((root, r?)),
        }
    }

    /// Opens the hand-over record with `old_root` and installs the new root.
    async fn adopt_root_upgrade(&self, old_root: &DataKey) -> Result<Option<Arc<DataKey>>> {
        let Some(raw) = self.inner.storage.get(ROOT_UPGRADE_RECORD).await? else {
            return Ok(None);
        };
        let (expires_ms, sealed) = parse_upgrade(&raw)?;
        if self.clock().now().as_millis() >= expires_ms {
            self.sweep_root_upgrade().await?;
            return Ok(None);
        }
        let sealed = SealedValue::parse(sealed).map_err(|_| Error::UnsealFailed)?;
        let Ok(new_raw) =
            old_root.open(&sealed, &SealContext::new(ROOT_UPGRADE_RECORD, expires_ms))
        else {
            // a hand-over from a rotation this process's root is not the
            // predecessor of (it missed more than one rotation)
            return Ok(None);
        };
        let new_root = Arc::new(DataKey::new(Algorithm::Aes256Gcm, new_raw)?);
        if let Ok(mut slot) = self.inner.root.write() {
            *slot = Some(new_root.clone());
        }
        tracing::info!("followed a root-key rotation made by another process");
        Ok(Some(new_root))
    }

    /// Deletes the hand-over record if it has expired.
    pub(super) async fn sweep_root_upgrade(&self) -> Result<()> {
        let Some(raw) = self.inner.storage.get(ROOT_UPGRADE_RECORD).await? else {
            return Ok(());
        };
        let expired = parse_upgrade(&raw)
            .map(|(ms, _)| self.clock().now().as_millis() >= ms)
            .unwrap_or(true);
        if expired {
            self.inner
                .storage
                .compare_and_set(ROOT_UPGRADE_RECORD, Some(&raw), None)
                .await?;
        }
        Ok(())
    }

    /// The hand-over operations a root-key rotation adds to its batch.
    pub(super) fn root_upgrade_ops(
        &self,
        old_root: &DataKey,
        new_raw: &SecretBytes,
    ) -> Result<Vec<BatchOp>> {
        let expires = self.clock().now() + ROOT_UPGRADE_GRACE;
        Ok(vec![BatchOp::put(
            ROOT_UPGRADE_RECORD,
            encode_upgrade(old_root, new_raw, expires)?,
        )])
    }
}
