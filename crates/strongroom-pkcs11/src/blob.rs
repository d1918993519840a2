//! The wrapped blob: its header (format version 1, see the crate docs)
//! and the key version it names.

use strongroom::{ProtectorErrorKind, Result};

use crate::WrapMechanism;
use crate::error::err;

/// Format version of wrapped blobs.
const BLOB_VERSION: u8 = 1;

pub(crate) fn key_id(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

pub(crate) fn version_of(id: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(id).ok().map(u32::from_be_bytes)
}

/// A parsed wrapped blob.
pub(crate) struct Blob<'a> {
    pub(crate) header: &'a [u8],
    pub(crate) mechanism: WrapMechanism,
    pub(crate) version: u32,
    pub(crate) label: &'a [u8],
    pub(crate) body: &'a [u8],
}

pub(crate) fn encode_header(
    mechanism: WrapMechanism,
    version: u32,
    label: &str,
) -> Result<Vec<u8>> {
    let len = u8::try_from(label.len()).map_err(|_| {
        err(
            ProtectorErrorKind::Config,
            "key label longer than 255 bytes",
        )
    })?;
    let mut h = Vec::with_capacity(7 + label.len());
    h.push(BLOB_VERSION);
    h.push(mechanism.id());
    h.extend_from_slice(&version.to_be_bytes());
    h.push(len);
    h.extend_from_slice(label.as_bytes());
    Ok(h)
}

pub(crate) fn parse_blob(bytes: &[u8]) -> Option<Blob<'_>> {
    let (&version_byte, rest) = bytes.split_first()?;
    if version_byte != BLOB_VERSION {
        return None;
    }
    let (&mech, rest) = rest.split_first()?;
    let mechanism = WrapMechanism::from_id(mech)?;
    let kv = rest.get(..4)?;
    let version = version_of(kv)?;
    let (&len, rest) = rest.get(4..)?.split_first()?;
    let label = rest.get(..usize::from(len))?;
    let body = rest.get(usize::from(len)..)?;
    let header = bytes.get(..7 + usize::from(len))?;
    if body.is_empty() {
        return None;
    }
    Some(Blob {
        header,
        mechanism,
        version,
        label,
        body,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Pkcs11Protector;

    #[test]
    fn blob_header_round_trips_and_rejects_damage() {
        let mut blob = encode_header(WrapMechanism::AesGcm, 7, "root").unwrap();
        blob.extend_from_slice(&[0xAA; 60]);
        let b = parse_blob(&blob).unwrap();
        assert_eq!(b.version, 7);
        assert_eq!(b.mechanism, WrapMechanism::AesGcm);
        assert_eq!(b.label, b"root");
        assert_eq!(b.header, &blob[..11]);
        assert_eq!(b.body.len(), 60);
        assert_eq!(Pkcs11Protector::wrapped_key_version(&blob), Some(7));

        let mut bad_version = blob.clone();
        bad_version[0] = 2;
        assert!(parse_blob(&bad_version).is_none());
        let mut bad_mech = blob.clone();
        bad_mech[1] = 9;
        assert!(parse_blob(&bad_mech).is_none());
        // label longer than the blob, header only, empty
        let mut long_label = blob[..7].to_vec();
        long_label[6] = 200;
        assert!(parse_blob(&long_label).is_none());
        assert!(parse_blob(&blob[..11]).is_none());
        assert!(parse_blob(&[]).is_none());
        assert!(encode_header(WrapMechanism::AesGcm, 1, &"x".repeat(256)).is_err());
    }
}
