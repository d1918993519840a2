//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a
//! public API and not covered by semver).
//!
//! Thin wrappers around the crate-private decoders of stored records, so
//! that the fuzz targets call the very functions the library reads storage
//! with. Each `parse_*` decodes; where the record has an encoder, the
//! matching `encode_*` writes the decoded value back, so a target can check
//! that decode, encode, decode gives the same value. Records that are
//! stored behind the barrier are fuzzed here as their plaintext (what the
//! barrier hands the decoder once the envelope opens).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::clock::Timestamp;
use crate::lease::{Lease, LeaseId};
use crate::rotation::Credential;
use crate::storage::{BatchOp, MemoryStorage, Storage as _};
use crate::{Error, KeyFileError, ROOT_KEY_RECORD, Result, SecretBytes, WrappedRootKey};

/// The key the lease index decoders name in their errors.
const SEGMENT_KEY: &str = "lease-due/0000000000000000/00";

/// Runs a future that never waits (in-memory storage, uncontended locks)
/// to completion; `None` if it would have had to wait.
fn ready<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Decodes a secret's metadata record (`kvm/<path>`, JSON) and encodes the
/// result again.
pub fn parse_metadata(bytes: &[u8]) -> Result<Vec<u8>> {
    crate::secrets::MetaRecord::decode("kvm/fuzz", bytes)?.encode()
}

/// Decodes a lease record (`lease/<id>`, version 1 or 2).
pub fn parse_lease_record(bytes: &[u8]) -> Result<Lease> {
    crate::lease::record::decode(bytes)
}

/// Encodes a lease record (version 2), as the lease manager stores it.
pub fn encode_lease_record(lease: &Lease) -> Result<Vec<u8>> {
    crate::lease::record::encode(lease)
}

/// The entries of a stored expiry-index segment due in `(from, until]`, in
/// stored order.
pub fn parse_lease_segment(
    bytes: &[u8],
    from: Option<Timestamp>,
    until: Timestamp,
) -> Result<Vec<(Timestamp, LeaseId)>> {
    let mut out = Vec::new();
    crate::lease::segment::decode_into(SEGMENT_KEY, bytes, from, until, &mut out)?;
    Ok(out)
}

/// Adds an entry to a segment's stored value (`None`: no segment yet).
pub fn lease_segment_add(value: Option<Vec<u8>>, t: Timestamp, id: LeaseId) -> Result<Vec<u8>> {
    crate::lease::segment::add(SEGMENT_KEY, value, t, id)
}

/// Removes an entry from a segment's stored value; `None` once it is empty.
pub fn lease_segment_remove(
    value: Option<Vec<u8>>,
    t: Timestamp,
    id: LeaseId,
) -> Result<Option<Vec<u8>>> {
    crate::lease::segment::remove(SEGMENT_KEY, value, t, id)
}

/// Decodes a rotation engine's state record (`rotation/<name>`, JSON) and
/// encodes the result again.
pub fn parse_rotation_state(bytes: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: serde_json::Error| Error::corrupt("rotation/fuzz", e.to_string());
    let state: crate::rotation::State = serde_json::from_slice(bytes).map_err(bad)?;
    serde_json::to_vec(&state).map_err(bad)
}

/// Decodes a stored credential version (the plaintext of a sealed
/// `rotation` version record).
pub fn parse_rotation_credential(bytes: &[u8]) -> Result<Credential> {
    Credential::decode("s/rotation/fuzz/v/1", 1, &SecretBytes::copy_from(bytes))
}

/// Encodes a credential version as the rotation engine seals it.
pub fn encode_rotation_credential(credential: &Credential) -> Result<SecretBytes> {
    credential
        .encode()
        .map(|b| SecretBytes::copy_from(b.as_slice()))
}

/// Decodes the saved audit chain head (`sys/audit-head`, JSON) and encodes
/// the result again.
pub fn parse_audit_head(bytes: &[u8]) -> Result<Vec<u8>> {
    let bad =
        |e: serde_json::Error| Error::corrupt(crate::handle::AUDIT_HEAD_RECORD, e.to_string());
    let head: crate::handle::HeadRecord = serde_json::from_slice(bytes).map_err(bad)?;
    serde_json::to_vec(&head).map_err(bad)
}

/// Reads `bytes` as the root-key record (`sys/root-key`) through
/// [`WrappedRootKey::read`] over an in-memory store.
pub fn parse_root_key_record(bytes: &[u8]) -> Result<WrappedRootKey> {
    let storage = MemoryStorage::new();
    let put = storage.batch(vec![BatchOp::put(ROOT_KEY_RECORD, bytes.to_vec())]);
    ready(put).ok_or_else(|| Error::InvalidArgument("memory storage waited".into()))??;
    let storage: crate::storage::DynStorage = Arc::new(storage);
    ready(WrappedRootKey::read(&storage))
        .ok_or_else(|| Error::InvalidArgument("memory storage waited".into()))?
}

/// Encodes a root-key record, as a store writes it at initialisation.
pub fn encode_root_key_record(kind: &str, wrapped: &[u8]) -> Result<Vec<u8>> {
    crate::vault::encode_root_record(kind, wrapped)
}

/// Decodes the text of a key file (as read from disk, before UTF-8 is
/// checked) into its 32-byte key.
pub fn parse_key_file(bytes: &[u8]) -> std::result::Result<SecretBytes, KeyFileError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| KeyFileError::Io("stream did not contain valid UTF-8".into()))?;
    crate::protector::parse_key_file_text(text)
}
