//! The in-memory expiry index: which lease needs attention next.
//!
//! One entry is 24 bytes, (time in milliseconds, lease id as two `u64`
//! halves), kept in a `BTreeSet` so the earliest entry is found, popped and
//! removed in logarithmic time. It holds no path, engine or revocation data:
//! those stay in storage and are read when a lease comes due, so memory per
//! lease stays a few dozen bytes even at ten million leases.

use std::collections::BTreeSet;

use super::LeaseId;
use crate::clock::Timestamp;

/// An ordered set of `(due time, lease id)` entries.
///
/// ```
/// use strongroom::clock::Timestamp;
/// use strongroom::lease::{ExpiryIndex, LeaseId};
/// let mut index = ExpiryIndex::new();
/// index.insert(Timestamp::from_secs(20), LeaseId::from_u128(2));
/// index.insert(Timestamp::from_secs(10), LeaseId::from_u128(1));
/// assert_eq!(index.pop_due(Timestamp::from_secs(15)), Some((Timestamp::from_secs(10), LeaseId::from_u128(1))));
/// assert_eq!(index.pop_due(Timestamp::from_secs(15)), None);
/// assert_eq!(index.len(), 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct ExpiryIndex {
    // (u64, u64, u64) is 24 bytes with 8-byte alignment, where (u64, u128)
    // would be 32 because u128 is 16-byte aligned.
    set: BTreeSet<(u64, u64, u64)>,
}

fn split(id: LeaseId) -> (u64, u64) {
    let v = id.as_u128();
    ((v >> 64) as u64, v as u64)
}

fn join(hi: u64, lo: u64) -> LeaseId {
    LeaseId::from_u128((u128::from(hi) << 64) | u128::from(lo))
}

impl ExpiryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries the index holds.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Adds an entry; returns `false` if it was already there.
    pub fn insert(&mut self, at: Timestamp, id: LeaseId) -> bool {
        let (hi, lo) = split(id);
        self.set.insert((at.as_millis(), hi, lo))
    }

    /// Removes an entry; returns whether it was there.
    pub fn remove(&mut self, at: Timestamp, id: LeaseId) -> bool {
        let (hi, lo) = split(id);
        self.set.remove(&(at.as_millis(), hi, lo))
    }

    /// The earliest entry.
    pub fn first(&self) -> Option<(Timestamp, LeaseId)> {
        self.set
            .first()
            .map(|&(t, hi, lo)| (Timestamp::from_millis(t), join(hi, lo)))
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, LeaseId)> {
        match self.set.first() {
            Some(&(t, _, _)) if t <= now.as_millis() => self
                .set
                .pop_first()
                .map(|(t, hi, lo)| (Timestamp::from_millis(t), join(hi, lo))),
            _ => None,
        }
    }

    /// Adds many entries at once. Much faster than one insert at a time when
    /// the batch is large compared with the index (a restart), because the
    /// tree is then built in bulk.
    pub fn extend<I: IntoIterator<Item = (Timestamp, LeaseId)>>(&mut self, entries: I) {
        let entries = entries.into_iter().map(|(t, id)| {
            let (hi, lo) = split(id);
            (t.as_millis(), hi, lo)
        });
        if self.set.is_empty() {
            self.set = entries.collect();
            return;
        }
        let mut batch: BTreeSet<_> = entries.collect();
        if batch.len() >= self.set.len() / 8 {
            self.set.append(&mut batch);
        } else {
            self.set.extend(batch);
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.set.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_id_order() {
        let mut ix = ExpiryIndex::new();
        let big = LeaseId::from_u128(u128::MAX - 1);
        let small = LeaseId::from_u128(3);
        assert!(ix.insert(Timestamp::from_millis(5), big));
        assert!(ix.insert(Timestamp::from_millis(5), small));
        assert!(!ix.insert(Timestamp::from_millis(5), small));
        assert!(ix.insert(Timestamp::from_millis(1), big));
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.first(), Some((Timestamp::from_millis(1), big)));
        assert_eq!(ix.pop_due(Timestamp::from_millis(0)), None);
        assert_eq!(
            ix.pop_due(Timestamp::from_millis(9)),
            Some((Timestamp::from_millis(1), big))
        );
        assert_eq!(
            ix.pop_due(Timestamp::from_millis(9)),
            Some((Timestamp::from_millis(5), small))
        );
        assert!(ix.remove(Timestamp::from_millis(5), big));
        assert!(!ix.remove(Timestamp::from_millis(5), big));
        assert!(ix.is_empty());
    }

    #[test]
    fn extend_in_bulk_and_in_small_batches() {
        let mut ix = ExpiryIndex::new();
        ix.extend(
            (0..100u64).map(|i| (Timestamp::from_millis(i), LeaseId::from_u128(u128::from(i)))),
        );
        assert_eq!(ix.len(), 100);
        // A small batch, including a duplicate and an earlier entry.
        ix.extend([
            (Timestamp::from_millis(5), LeaseId::from_u128(5)),
            (Timestamp::from_millis(0), LeaseId::from_u128(999)),
        ]);
        assert_eq!(ix.len(), 101);
        // A large batch.
        ix.extend(
            (100..300u64).map(|i| (Timestamp::from_millis(i), LeaseId::from_u128(u128::from(i)))),
        );
        assert_eq!(ix.len(), 301);
        let mut prev = None;
        let mut n = 0;
        while let Some(e) = ix.pop_due(Timestamp::MAX) {
            assert!(prev < Some(e));
            prev = Some(e);
            n += 1;
        }
        assert_eq!(n, 301);
    }
}
