//! What a [`Barrier`](super::Barrier) remembers of the records it opened,
//! so a batch's precondition on a record it just read is conditioned on
//! the stored bytes at once, without reading and opening the record again.
//!
//! A record read, modified and written back (a lease, an index segment, a
//! count shard) used to cost two reads and two opens: one to read it, one
//! when the batch's precondition named its plaintext. The memo keeps, for
//! the last records read by point reads and short scans, the plaintext they
//! opened to (zeroized on drop) and their stored bytes. A precondition
//! whose plaintext equals the remembered one names the remembered bytes.
//! The storage still checks those bytes when the batch applies, so a record
//! changed meanwhile (by this process or another) fails the batch as
//! before; a record sealed again with the same plaintext (a rewrap) also
//! fails it, and the barrier then forgets what it remembered and checks the
//! plaintext again by reading, so the outcome is what a read would give.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use zeroize::Zeroizing;

/// The most records remembered; the memo is emptied when it is full
/// (read-modify-write cycles are short, so recent entries are what count).
const CAPACITY: usize = 256;
/// Records longer than this are not remembered (the ones read to be
/// rewritten are small).
const MAX_RECORD: usize = 4096;
/// Scans returning at most this many records are remembered (a path's
/// count shards); longer ones (restoring an index) are not.
pub(super) const MAX_SCAN: usize = 16;

/// Remembered records by storage key.
#[derive(Default)]
pub(super) struct Memo {
    records: Mutex<HashMap<String, Remembered>>,
}

struct Remembered {
    plain: Zeroizing<Vec<u8>>,
    stored: Vec<u8>,
}

impl Memo {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Remembered>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers that `stored` at `key` opened to `plain`.
    pub(super) fn remember(&self, key: &str, plain: &[u8], stored: &[u8]) {
        if stored.len() > MAX_RECORD {
            return;
        }
        let mut records = self.records();
        if records.len() >= CAPACITY && !records.contains_key(key) {
            records.clear();
        }
        records.insert(
            key.to_owned(),
            Remembered {
                plain: Zeroizing::new(plain.to_vec()),
                stored: stored.to_vec(),
            },
        );
    }

    /// The stored bytes remembered for `key` if they opened to `plain`.
    pub(super) fn stored(&self, key: &str, plain: &[u8]) -> Option<Vec<u8>> {
        self.records()
            .get(key)
            .filter(|r| r.plain.as_slice() == plain)
            .map(|r| r.stored.clone())
    }

    /// Forgets `keys` (written, or found changed).
    pub(super) fn forget<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut records = self.records();
        for key in keys {
            records.remove(key);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.records().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_stays_bounded_and_skips_large_records() {
        let memo = Memo::default();
        for i in 0..CAPACITY + 44 {
            memo.remember(&format!("k{i}"), b"plain", b"stored");
            assert!(memo.len() <= CAPACITY);
        }
        // Emptied when full: the keys since then are there, older ones not.
        assert_eq!(memo.len(), 44);
        assert_eq!(memo.stored("k0", b"plain"), None);
        assert_eq!(
            memo.stored(&format!("k{}", CAPACITY + 43), b"plain"),
            Some(b"stored".to_vec())
        );
        // A key already remembered is replaced, not counted again.
        memo.remember("k299", b"new", b"again");
        assert_eq!(memo.stored("k299", b"plain"), None);
        assert_eq!(memo.stored("k299", b"new"), Some(b"again".to_vec()));
        // Too large to remember.
        memo.remember("big", b"p", &vec![0; MAX_RECORD + 1]);
        assert_eq!(memo.stored("big", b"p"), None);
        memo.forget(["k299"]);
        assert_eq!(memo.stored("k299", b"new"), None);
    }
}
