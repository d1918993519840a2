//! The stored lease record, `lease/<id>`: a version byte, then postcard.
//!
//! Version 2 (written now) is version 1 followed by the claim, an
//! `Option` of (owner, until, revoked). Version 1 records, written before
//! several managers could share a store, decode with no claim. See
//! `docs/FORMAT.md` ("Lease records").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Lease, LeaseClaim, LeaseId, LeaseState};
use crate::clock::Timestamp;
use crate::{Error, Result};

/// The version written.
pub(super) const RECORD_VERSION: u8 = 2;
/// The version before claims; still read.
pub(super) const RECORD_V1: u8 = 1;

#[derive(Serialize)]
struct Fields<'a> {
    id: u128,
    path: &'a str,
    engine: &'a str,
    issued_at: Timestamp,
    ttl_ms: u64,
    max_ttl_ms: u64,
    expires_at: Timestamp,
    expiring_soon_at: Timestamp,
    warned: bool,
    renewable: bool,
    state: &'a LeaseState,
    #[serde(with = "bytes_as_slice")]
    revocation_data: &'a [u8],
}

#[derive(Deserialize)]
struct FieldsOwned {
    id: u128,
    path: String,
    engine: String,
    issued_at: Timestamp,
    ttl_ms: u64,
    max_ttl_ms: u64,
    expires_at: Timestamp,
    expiring_soon_at: Timestamp,
    warned: bool,
    renewable: bool,
    state: LeaseState,
    #[serde(with = "bytes_as_slice")]
    revocation_data: Vec<u8>,
}

#[derive(Serialize)]
struct ClaimFields<'a> {
    owner: &'a str,
    until: Timestamp,
    revoked: bool,
}

#[derive(Deserialize)]
struct ClaimFieldsOwned {
    owner: String,
    until: Timestamp,
    revoked: bool,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn encode_error(e: postcard::Error) -> Error {
    Error::InvalidArgument(format!("lease record does not encode: {e}"))
}

/// Encodes `lease` as a version 2 record.
pub(crate) fn encode(lease: &Lease) -> Result<Vec<u8>> {
    let fields = Fields {
        id: lease.id.as_u128(),
        path: &lease.path,
        engine: &lease.engine,
        issued_at: lease.issued_at,
        ttl_ms: millis(lease.ttl),
        max_ttl_ms: millis(lease.max_ttl),
        expires_at: lease.expires_at,
        expiring_soon_at: lease.expiring_soon_at,
        warned: lease.warned,
        renewable: lease.renewable,
        state: &lease.state,
        revocation_data: &lease.revocation_data,
    };
    let claim = lease.claim.as_ref().map(|c| ClaimFields {
        owner: &c.owner,
        until: c.until,
        revoked: c.revoked,
    });
    let out = postcard::to_extend(&fields, vec![RECORD_VERSION]).map_err(encode_error)?;
    postcard::to_extend(&claim, out).map_err(encode_error)
}

/// Decodes a version 1 or 2 record.
pub(crate) fn decode(bytes: &[u8]) -> Result<Lease> {
    let key = "lease record";
    let bad =
        |e: postcard::Error| Error::corrupt(key, format!("lease record does not decode: {e}"));
    let (version, body) = bytes
        .split_first()
        .ok_or_else(|| Error::corrupt(key, "empty record"))?;
    let (rec, claim) = match *version {
        RECORD_V1 => (
            postcard::from_bytes::<FieldsOwned>(body).map_err(bad)?,
            None,
        ),
        RECORD_VERSION => {
            let (rec, rest) = postcard::take_from_bytes::<FieldsOwned>(body).map_err(bad)?;
            let (claim, rest) =
                postcard::take_from_bytes::<Option<ClaimFieldsOwned>>(rest).map_err(bad)?;
            if !rest.is_empty() {
                return Err(Error::corrupt(key, "trailing bytes after the lease record"));
            }
            (rec, claim)
        }
        other => {
            return Err(Error::corrupt(
                key,
                format!("unknown lease record version {other}"),
            ));
        }
    };
    Ok(Lease {
        id: LeaseId::from_u128(rec.id),
        path: rec.path,
        engine: rec.engine,
        issued_at: rec.issued_at,
        ttl: Duration::from_millis(rec.ttl_ms),
        max_ttl: Duration::from_millis(rec.max_ttl_ms),
        expires_at: rec.expires_at,
        expiring_soon_at: rec.expiring_soon_at,
        warned: rec.warned,
        renewable: rec.renewable,
        state: rec.state,
        revocation_data: rec.revocation_data,
        claim: claim.map(|c| LeaseClaim {
            owner: c.owner,
            until: c.until,
            revoked: c.revoked,
        }),
    })
}

/// Bytes as one serde byte string (length then raw bytes) rather than a
/// sequence of `u8` values: the same bytes in postcard, decoded in one copy.
mod bytes_as_slice {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_bytes(V)
    }
}
