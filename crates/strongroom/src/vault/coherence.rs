//! One keyring for every process sharing a store.
//!
//! The mechanism, in full:
//!
//! - `sys/keyring-generation` holds a counter (8 bytes, big-endian; absent
//!   means 0). Every keyring change that decides which key seals or which
//!   keys open (rotate, promote, retire, destroy, and a reservation that
//!   crossed the rotation threshold) increments it in the same atomic batch
//!   as the keyring record. Reserving encryptions does not.
//! - Every batch that stores a keyring-sealed record goes through
//!   [`Strongroom::commit`], which adds a precondition: the stored
//!   generation is the one this process sealed under, and every sealed value
//!   in the batch is under that generation's primary key. A process whose
//!   keyring is stale therefore cannot store anything: its batch conflicts,
//!   it reloads the keyring, re-seals the values under the new primary and
//!   tries again.
//! - Hence, once a keyring change is committed, no value sealed under the
//!   keyring it replaced can be stored by any process, live or dead. A key
//!   version that is retired stays unused for new records, and
//!   [`Strongroom::destroy_key`] only has to scan what is already stored.
//! - Processes learn of new generations early through the backend's change
//!   notices ([`crate::storage::Storage::watch`]) and, failing those, every
//!   [`crate::Options::refresh_fallback`]; that only saves a conflict, it is
//!   not what makes writes safe.
//!
//! Values a caller seals with [`Strongroom::seal_value`] and keeps outside
//! the store are the caller's to re-seal: no store precondition covers them.

use std::sync::{Arc, Weak};

use crate::changes::ChangeWatcher;
use crate::keyring::Keyring;
use crate::seal::{self, SealContext};
use crate::storage::BatchOp;
use crate::{Error, Result};

use super::{Inner, KEYRING_RECORD, SealedRecord, Strongroom};

/// Storage key of the keyring generation counter (8 bytes, big-endian).
pub const KEYRING_GENERATION: &str = "sys/keyring-generation";

/// Attempts of a sealed write before it gives up with a conflict.
const COMMIT_ATTEMPTS: usize = 16;

pub(super) fn encode_generation(generation: u64) -> Vec<u8> {
    generation.to_be_bytes().to_vec()
}

pub(super) fn decode_generation(raw: Option<&[u8]>) -> Result<u64> {
    match raw {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b)
            .map(u64::from_be_bytes)
            .map_err(|_| Error::corrupt(KEYRING_GENERATION, "not 8 bytes")),
    }
}

/// The precondition that pins a batch to `generation`.
fn generation_expect(generation: u64) -> BatchOp {
    BatchOp::expect(
        KEYRING_GENERATION,
        (generation > 0).then(|| encode_generation(generation)),
    )
}

/// The key version a sealed put was sealed under, if `op` is one.
fn sealed_put_version(op: &BatchOp) -> Option<Result<u32>> {
    match op {
        BatchOp::Put { key, value } if !super::is_pre_unseal(key) => Some(
            SealedRecord::decode(key, value)
                .and_then(|r| seal::header_key_version(&value[r.sealed_offset..])),
        ),
        _ => None,
    }
}

impl Strongroom {
    /// Applies `ops` atomically, on the condition that the keyring
    /// generation in storage is the one this process sealed them under.
    ///
    /// Every write of keyring-sealed records (the secrets store, rotation,
    /// [`Strongroom::put_sealed`]) goes through here. When another process
    /// changed the keyring first, the batch conflicts on
    /// [`KEYRING_GENERATION`]; this reloads the keyring, re-seals the sealed
    /// values of `ops` under the new primary key (the plaintext never leaves
    /// this function) and tries again. Other conflicts are returned as
    /// [`Error::StorageConflict`] for the caller to handle as before.
    pub(crate) async fn commit(&self, mut ops: Vec<BatchOp>) -> Result<()> {
        if !ops.iter().any(|op| sealed_put_version(op).is_some()) {
            return self.inner.storage.batch(ops).await;
        }
        // The keyring that sealed `ops` (or an older view of the same keys).
        let mut opener = self.keyring()?;
        for _ in 0..COMMIT_ATTEMPTS {
            let ring = self.keyring()?;
            if !self.reseal_stale(&mut ops, &opener, &ring).await? {
                // sealing needed a reservation that installed a newer keyring
                opener = ring;
                continue;
            }
            let mut batch = ops.clone();
            batch.push(generation_expect(ring.generation()));
            match self.inner.storage.batch(batch).await {
                Ok(()) => return Ok(()),
                Err(Error::StorageConflict { key }) if key == KEYRING_GENERATION => {
                    self.reload().await?;
                    opener = ring;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::StorageConflict {
            key: KEYRING_GENERATION.into(),
        })
    }

    /// Re-seals, under `ring`'s primary key, every sealed put of `ops` that
    /// is under another key (opening it with `opener`, the keyring that
    /// sealed it). Returns false if a value still is not under `ring`'s
    /// primary afterwards (the keyring moved on while sealing).
    async fn reseal_stale(
        &self,
        ops: &mut [BatchOp],
        opener: &Keyring,
        ring: &Keyring,
    ) -> Result<bool> {
        let primary = ring.primary_version();
        let mut settled = true;
        for op in ops.iter_mut() {
            let Some(version) = sealed_put_version(op) else {
                continue;
            };
            let version = version?;
            if version == primary {
                continue;
            }
            let BatchOp::Put { key, value } = op else {
                continue;
            };
            let rec = SealedRecord::decode(key, value)?;
            let path = rec.path.to_owned();
            let ctx = SealContext::new(&path, rec.version);
            let start = rec.sealed_offset;
            let key_for = opener
                .material(version)
                .or_else(|| ring.material(version))
                .ok_or(Error::KeyVersionRetired {
                    version,
                    state: crate::keyring::KeyState::Destroyed,
                    min_decryption_version: ring.min_decryption_version(),
                })?;
            let mut buf = zeroize::Zeroizing::new(value[start..].to_vec());
            let plain = key_for.open_in_place(&mut buf, &ctx)?;
            let fresh = self.seal_envelope(plain, &ctx).await?;
            if sealed_put_version(&BatchOp::put(key.clone(), fresh.clone()))
                .transpose()?
                .is_some_and(|v| v != primary)
            {
                settled = false;
            }
            *value = fresh;
        }
        Ok(settled)
    }

    /// The generation of the keyring this process holds.
    pub fn keyring_generation(&self) -> Result<u64> {
        Ok(self.keyring()?.generation())
    }

    /// Reloads the keyring if the stored generation differs from the one in
    /// memory (one point read when nothing changed).
    pub(super) async fn refresh_if_changed(&self) -> Result<bool> {
        let stored = super::coherence::decode_generation(
            self.inner.storage.get(KEYRING_GENERATION).await?.as_deref(),
        )?;
        if stored == self.keyring()?.generation() {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }
}

/// Starts the task that keeps this process's keyring fresh: it wakes on
/// change notices for `sys/keyring*` (or on the fallback timer) and reloads
/// when the stored generation moved. It holds only a weak reference and ends
/// when the store is dropped or sealed. Outside a Tokio runtime nothing is
/// started (the write path stays correct without it).
pub(super) fn spawn_refresher(sr: &Strongroom) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Inner> = Arc::downgrade(&sr.inner);
    let mut watcher =
        ChangeWatcher::new(sr.inner.storage.watch(), sr.inner.options.refresh_fallback);
    runtime.spawn(async move {
        loop {
            let event = watcher.next().await;
            let Some(inner) = weak.upgrade() else { return };
            let sr = Strongroom { inner };
            if sr.is_sealed() {
                return;
            }
            if event.touches(KEYRING_RECORD)
                && let Err(e) = sr.refresh_if_changed().await
            {
                tracing::debug!(error = %e, "keyring refresh failed; the next write will retry");
            }
            if event == crate::changes::StorageEvent::Unknown
                && let Err(e) = sr.sweep_root_upgrade().await
            {
                tracing::debug!(error = %e, "could not remove an expired root-key hand-over");
            }
        }
    });
}
