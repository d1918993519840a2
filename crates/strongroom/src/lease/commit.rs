//! Writing lease changes: one atomic batch per change set, safe when several
//! managers (in one process or many) share the storage.
//!
//! Every lease record is written only if it still holds the bytes it was
//! read with, so two managers never both act on one version of a lease. The
//! keys every manager touches (index segments, per-path counts) are read,
//! checked unchanged when the batch applies, and read again and retried when
//! another manager changed them first.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    Lease, LeaseId, LeaseManager, REC_PREFIX, count_key, path_key, rec_key, segment, under_prefix,
};
use crate::clock::Timestamp;
use crate::storage::{BatchOp, DynStorage};
use crate::{Error, Result};

/// Attempts of one commit whose shared keys keep changing under it.
const MAX_TRIES: u32 = 64;

/// A lease record as read, with its exact bytes for the write's check.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) lease: Lease,
    pub(super) bytes: Vec<u8>,
}

/// One lease's change in a commit.
pub(super) struct LeaseWrite {
    pub(super) id: LeaseId,
    /// The record as read (`None`: a new lease).
    pub(super) old: Option<Stored>,
    /// The lease to store (`None`: delete it with its path key and index
    /// entry).
    pub(super) new: Option<Lease>,
}

impl LeaseWrite {
    pub(super) fn create(lease: Lease) -> Self {
        Self {
            id: lease.id,
            old: None,
            new: Some(lease),
        }
    }

    pub(super) fn update(old: &Stored, new: Lease) -> Self {
        Self {
            id: old.lease.id,
            old: Some(old.clone()),
            new: Some(new),
        }
    }

    pub(super) fn delete(old: &Stored) -> Self {
        Self {
            id: old.lease.id,
            old: Some(old.clone()),
            new: None,
        }
    }
}

/// What a commit did.
pub(super) enum Committed {
    /// Everything was written; the new records as stored, one per write
    /// (`None` for deletions).
    Done(Vec<Option<Stored>>),
    /// This lease's record is no longer as read: nothing was written.
    RecordChanged(LeaseId),
}

/// Index segments being rewritten in one batch: each is read once, on first
/// touch, and written back with a check that it is still as read (`write`
/// `None`: deleted once empty).
#[derive(Default)]
pub(super) struct SegmentEdits {
    segments: BTreeMap<String, ReadWrite>,
}

/// A segment's value as read and as it will be written.
type ReadWrite = (Option<Vec<u8>>, Option<Vec<u8>>);

impl SegmentEdits {
    /// The value to write for segment `key`, read from storage on first touch.
    async fn slot(&mut self, storage: &DynStorage, key: &str) -> Result<&mut Option<Vec<u8>>> {
        let read = if self.segments.contains_key(key) {
            None
        } else {
            Some(storage.get(key).await?)
        };
        let (_, write) = self.segments.entry(key.to_owned()).or_insert_with(|| {
            let read = read.flatten();
            (read.clone(), read)
        });
        Ok(write)
    }

    pub(super) async fn add(
        &mut self,
        storage: &DynStorage,
        t: Timestamp,
        id: LeaseId,
    ) -> Result<()> {
        let key = segment::key(t, id);
        let write = self.slot(storage, &key).await?;
        *write = Some(segment::add(&key, write.take(), t, id)?);
        Ok(())
    }

    pub(super) async fn remove(
        &mut self,
        storage: &DynStorage,
        t: Timestamp,
        id: LeaseId,
    ) -> Result<()> {
        let key = segment::key(t, id);
        let write = self.slot(storage, &key).await?;
        *write = segment::remove(&key, write.take(), t, id)?;
        Ok(())
    }

    pub(super) fn push_ops(self, ops: &mut Vec<BatchOp>) {
        for (key, (read, write)) in self.segments {
            if read == write {
                continue;
            }
            ops.push(BatchOp::expect(key.clone(), read));
            ops.push(match write {
                Some(v) => BatchOp::put(key, v),
                None => BatchOp::delete(key),
            });
        }
    }
}

/// Shards of each path's live-lease count. Every issue and clean-up
/// changes a count; spreading a path's count over several keys (each commit
/// changes one, chosen at random) keeps managers from conflicting on it.
const COUNT_SHARDS: u64 = 8;

/// One count key's contribution to its path's count: the key
/// `lease-count/<path>` (written before shards, a u64) or a shard
/// `lease-count/<path>#<k>` (an i64: one shard may go below zero when its
/// leases were issued under another shard). Both 8 bytes, big-endian.
pub(super) fn count_value(key: &str, value: &[u8]) -> Result<i128> {
    let bytes = <[u8; 8]>::try_from(value)
        .map_err(|_| Error::corrupt(key.to_owned(), "lease count is not 8 bytes"))?;
    Ok(if key.contains('#') {
        i128::from(i64::from_be_bytes(bytes))
    } else {
        i128::from(u64::from_be_bytes(bytes))
    })
}

/// The path a count key counts (its shard suffix cut off).
pub(super) fn count_path(key_after_prefix: &str) -> &str {
    key_after_prefix
        .split_once('#')
        .map_or(key_after_prefix, |(path, _)| path)
}

fn shard_value(n: i128) -> Vec<u8> {
    i64::try_from(n)
        .unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
        .to_be_bytes()
        .to_vec()
}

/// A small generator for jitter and shuffling (not for secrets).
pub(super) struct Jitter(u64);

impl Jitter {
    pub(super) fn seeded() -> Self {
        let mut b = [0u8; 8];
        // Falls back to a fixed seed: jitter only spreads load.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        Self(u64::from_le_bytes(b) | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(super) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

impl LeaseManager {
    /// Reads one lease record with its bytes.
    pub(super) async fn get_stored(&self, id: LeaseId) -> Result<Option<Stored>> {
        let key = rec_key(id);
        match self.storage.get(&key).await? {
            None => Ok(None),
            Some(bytes) => match Lease::from_record_bytes(&bytes) {
                Ok(lease) => Ok(Some(Stored { lease, bytes })),
                Err(Error::CorruptRecord { reason, .. }) => {
                    Err(Error::CorruptRecord { key, reason })
                }
                Err(other) => Err(other),
            },
        }
    }

    /// Writes `writes` (at most one per lease) in one atomic batch and
    /// mirrors them in memory: each record only if it is still as read, the
    /// index entries moved where the due time changed, path keys and
    /// per-path counts kept in step. Retries, reading them again, while
    /// only segments or counts changed under it.
    pub(super) async fn commit(&self, writes: &[LeaseWrite]) -> Result<Committed> {
        let _w = self.write.lock().await;
        self.commit_locked(writes).await
    }

    /// [`LeaseManager::commit`] for a caller that holds `self.write`.
    pub(super) async fn commit_locked(&self, writes: &[LeaseWrite]) -> Result<Committed> {
        let mut stored = Vec::with_capacity(writes.len());
        for w in writes {
            stored.push(match &w.new {
                Some(l) => Some(Stored {
                    lease: l.clone(),
                    bytes: l.to_record_bytes()?,
                }),
                None => None,
            });
        }
        let mut deltas: BTreeMap<&str, i64> = BTreeMap::new();
        for w in writes {
            match (&w.old, &w.new) {
                (None, Some(new)) => *deltas.entry(new.path.as_str()).or_default() += 1,
                (Some(old), None) => *deltas.entry(old.lease.path.as_str()).or_default() -= 1,
                _ => {}
            }
        }
        deltas.retain(|_, d| *d != 0);

        let mut jitter = None;
        let mut tries = 0;
        loop {
            tries += 1;
            // Records first, so that a changed record is the conflict named.
            let mut ops = Vec::with_capacity(writes.len() * 4 + 2 * deltas.len() + 8);
            for w in writes {
                ops.push(BatchOp::expect(
                    rec_key(w.id),
                    w.old.as_ref().map(|o| o.bytes.clone()),
                ));
            }
            let mut edits = SegmentEdits::default();
            for (w, new) in writes.iter().zip(&stored) {
                let old_due = w.old.as_ref().and_then(|o| o.lease.due_at());
                let new_due = w.new.as_ref().and_then(Lease::due_at);
                if old_due != new_due {
                    if let Some(t) = old_due {
                        edits.remove(&self.storage, t, w.id).await?;
                    }
                    if let Some(t) = new_due {
                        edits.add(&self.storage, t, w.id).await?;
                    }
                }
                match (new, &w.old) {
                    (Some(new), old) => {
                        ops.push(BatchOp::put(rec_key(w.id), new.bytes.clone()));
                        if old.is_none() {
                            ops.push(BatchOp::put(path_key(&new.lease.path, w.id), Vec::new()));
                        }
                    }
                    (None, Some(old)) => {
                        ops.push(BatchOp::delete(rec_key(w.id)));
                        ops.push(BatchOp::delete(path_key(&old.lease.path, w.id)));
                    }
                    (None, None) => {}
                }
            }
            let mut counts = Vec::with_capacity(deltas.len());
            for (&path, &delta) in &deltas {
                let j = jitter.get_or_insert_with(Jitter::seeded);
                let (n, count_ops) = self.count_ops(path, delta, j).await?;
                ops.extend(count_ops);
                counts.push((path, n));
            }
            edits.push_ops(&mut ops);
            match self.storage.batch(ops).await {
                Ok(()) => {
                    self.mirror(writes, &counts);
                    return Ok(Committed::Done(stored));
                }
                Err(Error::StorageConflict { key }) if key.starts_with(REC_PREFIX) => {
                    let id = key
                        .get(REC_PREFIX.len()..)
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| Error::corrupt(key.clone(), "bad lease record key"))?;
                    return Ok(Committed::RecordChanged(id));
                }
                Err(Error::StorageConflict { key }) if tries < MAX_TRIES => {
                    // Another manager changed a segment or count first.
                    tracing::trace!(%key, tries, "lease commit conflict; retrying");
                    let j = jitter.get_or_insert_with(Jitter::seeded);
                    if tries > 2 {
                        let cap = 1u64 << tries.min(6);
                        tokio::time::sleep(Duration::from_millis(j.below(cap) + 1)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The operations that add `delta` to `path`'s count (one random shard,
    /// checked unchanged; a count key from before shards is folded into it)
    /// and the path's new count. When the count reaches zero, every key of
    /// the path is checked unchanged and deleted, so a path without leases
    /// leaves nothing behind. One scan reads all of the path's keys: the
    /// unsharded key sorts first, then `#0..#7`, then other paths.
    async fn count_ops(
        &self,
        path: &str,
        delta: i64,
        jitter: &mut Jitter,
    ) -> Result<(u64, Vec<BatchOp>)> {
        let base = count_key(path);
        let shard_prefix = format!("{base}#");
        let page = self
            .storage
            .scan(&base, None, 1 + COUNT_SHARDS as usize)
            .await?;
        let mut read = BTreeMap::new();
        let mut total = i128::from(delta);
        for (key, value) in page {
            if key == base || key.starts_with(&shard_prefix) {
                total += count_value(&key, &value)?;
                read.insert(key, value);
            }
        }
        let mut ops = Vec::with_capacity(2 * read.len() + 2);
        if total <= 0 {
            let all = std::iter::once(base.clone())
                .chain((0..COUNT_SHARDS).map(|k| format!("{shard_prefix}{k}")));
            for key in all {
                let value = read.remove(&key);
                let present = value.is_some();
                ops.push(BatchOp::expect(key.clone(), value));
                if present {
                    ops.push(BatchOp::delete(key));
                }
            }
            return Ok((0, ops));
        }
        let shard_key = format!("{shard_prefix}{}", jitter.below(COUNT_SHARDS));
        let mut new_shard = i128::from(delta);
        if let Some(value) = read.remove(&base) {
            new_shard += count_value(&base, &value)?;
            ops.push(BatchOp::expect(base.clone(), Some(value)));
            ops.push(BatchOp::delete(base));
        }
        let shard = read.remove(&shard_key);
        if let Some(value) = &shard {
            new_shard += count_value(&shard_key, value)?;
        }
        ops.push(BatchOp::expect(shard_key.clone(), shard));
        ops.push(if new_shard == 0 {
            BatchOp::delete(shard_key)
        } else {
            BatchOp::put(shard_key, shard_value(new_shard))
        });
        Ok((u64::try_from(total).unwrap_or(u64::MAX), ops))
    }

    /// Mirrors a committed batch in memory: index entries and counts.
    fn mirror(&self, writes: &[LeaseWrite], counts: &[(&str, u64)]) {
        let mut mem = self.mem();
        let mut woke_earlier = false;
        for w in writes {
            let old_due = w.old.as_ref().and_then(|o| o.lease.due_at());
            let new_due = w.new.as_ref().and_then(Lease::due_at);
            if old_due == new_due {
                continue;
            }
            if let Some(t) = old_due {
                mem.index.remove(t, w.id);
            }
            if let Some(t) = new_due
                && t <= mem.loaded_until
            {
                woke_earlier |= mem.index.first().is_none_or(|(first, _)| t < first);
                mem.index.insert(t, w.id);
            }
        }
        for &(path, n) in counts {
            let before = if n == 0 {
                mem.path_counts.remove(path)
            } else {
                mem.path_counts.insert(path.to_owned(), n)
            }
            .unwrap_or(0);
            // What this manager had not seen of the others' changes is
            // folded in here too.
            let change = i128::from(n) - i128::from(before);
            let apply = |c: &mut u64| {
                *c = u64::try_from((i128::from(*c) + change).max(0)).unwrap_or(u64::MAX);
            };
            apply(&mut mem.total);
            for (i, q) in self.config.prefix_quotas.iter().enumerate() {
                if under_prefix(path, &q.prefix)
                    && let Some(c) = mem.quota_counts.get_mut(i)
                {
                    apply(c);
                }
            }
        }
        drop(mem);
        if woke_earlier {
            self.wake.notify_one();
        }
    }
}
