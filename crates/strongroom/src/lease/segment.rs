//! The stored expiry index: packed segments of `(due time, lease id)`.
//!
//! A lease's due-time entry lives in the segment of its time bucket (2^16 ms,
//! about 65 s) and its shard (the id's low bits, [`SHARDS`] per bucket):
//!
//! ```text
//! key:   lease-due/<bucket start, 16 hex digits of ms>/<shard, 2 hex digits>
//! value: 0x01, then 24 bytes per entry: due time (u64 ms, big-endian),
//!        lease id (u128, big-endian); in no particular order
//! ```
//!
//! Restoring a million leases then reads a few thousand values instead of a
//! million keys, and decoding an entry is two fixed-width reads. A change
//! rewrites one or two segments; sharding keeps a segment to a few hundred
//! entries even when thousands of leases fall due in the same minute.

use super::LeaseId;
use crate::Error;
use crate::Result;
use crate::clock::Timestamp;

/// Key prefix of the segments.
pub(super) const DUE_PREFIX: &str = "lease-due/";
/// Segments per time bucket.
pub(super) const SHARDS: u128 = 16;
const BUCKET_MS: u64 = 1 << 16;
const VERSION: u8 = 1;
const ENTRY: usize = 24;

fn bucket(t: Timestamp) -> u64 {
    t.as_millis() & !(BUCKET_MS - 1)
}

/// The segment of entry `(t, id)` as (bucket start, shard): what
/// [`key`] names.
pub(super) fn segment_of(t: Timestamp, id: LeaseId) -> (u64, u8) {
    // SHARDS is 16: the shard fits a u8.
    (bucket(t), (id.as_u128() % SHARDS) as u8)
}

/// The segment holding the entry `(t, id)`.
pub(super) fn key(t: Timestamp, id: LeaseId) -> String {
    format!(
        "{DUE_PREFIX}{:016x}/{:02x}",
        bucket(t),
        id.as_u128() % SHARDS
    )
}

/// An exclusive scan start that includes every segment of `t`'s bucket and
/// later ones.
pub(super) fn scan_start(t: Timestamp) -> String {
    format!("{DUE_PREFIX}{:016x}/", bucket(t))
}

/// The bucket start of a segment key, if it is one.
pub(super) fn bucket_of_key(key: &str) -> Option<u64> {
    let rest = key.strip_prefix(DUE_PREFIX)?;
    let (b, shard) = rest.split_once('/')?;
    if b.len() != 16 || shard.len() != 2 {
        return None;
    }
    u8::from_str_radix(shard, 16).ok()?;
    u64::from_str_radix(b, 16).ok()
}

fn entry_bytes(t: Timestamp, id: LeaseId) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..8].copy_from_slice(&t.as_millis().to_be_bytes());
    e[8..].copy_from_slice(&id.as_u128().to_be_bytes());
    e
}

fn entries<'a>(key: &str, value: &'a [u8]) -> Result<std::slice::ChunksExact<'a, u8>> {
    match value.split_first() {
        Some((&VERSION, rest)) if rest.len() % ENTRY == 0 => Ok(rest.chunks_exact(ENTRY)),
        Some((&VERSION, _)) => Err(Error::corrupt(
            key.to_owned(),
            "lease index segment length is not a whole number of entries",
        )),
        _ => Err(Error::corrupt(
            key.to_owned(),
            "unknown lease index segment version",
        )),
    }
}

fn decode(chunk: &[u8]) -> (Timestamp, LeaseId) {
    let mut t = [0u8; 8];
    let mut id = [0u8; 16];
    t.copy_from_slice(&chunk[..8]);
    id.copy_from_slice(&chunk[8..]);
    (
        Timestamp::from_millis(u64::from_be_bytes(t)),
        LeaseId::from_u128(u128::from_be_bytes(id)),
    )
}

/// Appends the entries of one segment due in `(from, until]` to `out`.
pub(crate) fn decode_into(
    key: &str,
    value: &[u8],
    from: Option<Timestamp>,
    until: Timestamp,
    out: &mut Vec<(Timestamp, LeaseId)>,
) -> Result<()> {
    for chunk in entries(key, value)? {
        let (t, id) = decode(chunk);
        if t <= until && from.is_none_or(|f| t > f) {
            out.push((t, id));
        }
    }
    Ok(())
}

/// Adds `(t, id)` to a segment's value (`None`: no segment yet); unchanged
/// if already present.
pub(crate) fn add(key: &str, value: Option<Vec<u8>>, t: Timestamp, id: LeaseId) -> Result<Vec<u8>> {
    let mut value = value.unwrap_or_else(|| vec![VERSION]);
    let e = entry_bytes(t, id);
    if !entries(key, &value)?.any(|c| c == e) {
        value.extend_from_slice(&e);
    }
    Ok(value)
}

/// Removes `(t, id)` from a segment's value; `None` if the segment is then
/// empty (delete it).
pub(crate) fn remove(
    key: &str,
    value: Option<Vec<u8>>,
    t: Timestamp,
    id: LeaseId,
) -> Result<Option<Vec<u8>>> {
    let Some(mut value) = value else {
        return Ok(None);
    };
    let e = entry_bytes(t, id);
    if let Some(i) = entries(key, &value)?.position(|c| c == e) {
        let at = 1 + i * ENTRY;
        let last = value.len() - ENTRY;
        value.copy_within(last.., at);
        value.truncate(last);
    }
    Ok((value.len() > 1).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_bucket_and_scan_starts_include_the_bucket() {
        let a = key(Timestamp::from_millis(5), LeaseId::from_u128(0xff));
        let b = key(Timestamp::from_millis(BUCKET_MS - 1), LeaseId::from_u128(1));
        let c = key(Timestamp::from_millis(BUCKET_MS), LeaseId::from_u128(0));
        assert_eq!(a, "lease-due/0000000000000000/0f");
        assert_eq!(b, "lease-due/0000000000000000/01");
        assert!(a < c && b < c);
        let start = scan_start(Timestamp::from_millis(BUCKET_MS + 7));
        assert!(start < c && start > a);
        assert_eq!(bucket_of_key(&c), Some(BUCKET_MS));
        assert_eq!(bucket_of_key("lease-due/zz/01"), None);
        assert_eq!(bucket_of_key("lease-due/0000000000000000/1"), None);
    }

    #[test]
    fn add_remove_and_decode() {
        let k = "lease-due/0000000000000000/00";
        let (t1, t2, t3) = (
            Timestamp::from_millis(10),
            Timestamp::from_millis(20),
            Timestamp::from_millis(30),
        );
        let (i1, i2, i3) = (
            LeaseId::from_u128(u128::MAX),
            LeaseId::from_u128(16),
            LeaseId::from_u128(32),
        );
        let v = add(k, None, t1, i1).unwrap();
        let v = add(k, Some(v), t2, i2).unwrap();
        let v = add(k, Some(v), t2, i2).unwrap(); // no duplicate
        let v = add(k, Some(v), t3, i3).unwrap();
        assert_eq!(v.len(), 1 + 3 * ENTRY);
        let mut out = Vec::new();
        decode_into(k, &v, Some(t1), t2, &mut out).unwrap();
        assert_eq!(out, vec![(t2, i2)]);
        let v = remove(k, Some(v), t1, i1).unwrap().unwrap();
        let v = remove(k, Some(v), t1, i1).unwrap().unwrap(); // absent: unchanged
        let mut out = Vec::new();
        decode_into(k, &v, None, Timestamp::MAX, &mut out).unwrap();
        out.sort();
        assert_eq!(out, vec![(t2, i2), (t3, i3)]);
        let v = remove(k, Some(v), t2, i2).unwrap().unwrap();
        assert_eq!(remove(k, Some(v), t3, i3).unwrap(), None);
    }

    #[test]
    fn corrupt_segments_are_typed_errors() {
        let k = "lease-due/0000000000000000/00";
        let mut out = Vec::new();
        for bad in [&[][..], &[2u8][..], &[1u8, 0, 0][..]] {
            let e = decode_into(k, bad, None, Timestamp::MAX, &mut out).unwrap_err();
            assert!(matches!(e, Error::CorruptRecord { .. }), "{e:?}");
            assert!(add(k, Some(bad.to_vec()), Timestamp::MAX, LeaseId::from_u128(1)).is_err());
        }
    }
}
