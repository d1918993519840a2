//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a
//! public API and not covered by semver): the parser and header encoder of
//! the wrapped root-key blob this protector stores.

use strongroom::Result;

use crate::WrapMechanism;

/// A parsed blob's fields (the parser's borrowed view, copied out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFields {
    /// The wrapping mechanism.
    pub mechanism: WrapMechanism,
    /// The token key version.
    pub version: u32,
    /// The token key label.
    pub label: Vec<u8>,
    /// The header bytes (the AES-GCM associated data).
    pub header: Vec<u8>,
    /// The wrapped key (IV and ciphertext, or the key-wrap output).
    pub body: Vec<u8>,
}

/// Parses a wrapped blob as `unwrap` does before it reaches the token.
pub fn parse_blob(bytes: &[u8]) -> Option<BlobFields> {
    crate::blob::parse_blob(bytes).map(|b| BlobFields {
        mechanism: b.mechanism,
        version: b.version,
        label: b.label.to_vec(),
        header: b.header.to_vec(),
        body: b.body.to_vec(),
    })
}

/// The blob header `wrap` writes for `mechanism`, key `version` and `label`.
pub fn encode_header(mechanism: WrapMechanism, version: u32, label: &str) -> Result<Vec<u8>> {
    crate::blob::encode_header(mechanism, version, label)
}
