//! PEM text (RFC 7468): DER in base64, 64 characters a line, between
//! `-----BEGIN <label>-----` and `-----END <label>-----`. One encoder for
//! public keys, certificates, CRLs and the private keys of issued
//! certificates.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// Appends `der` as a PEM block labelled `label` to `out`. The base64 text
/// passes through a wiped buffer only, so a private key's PEM can be built
/// into a caller's wiped buffer without a stray copy.
pub fn encode_into(label: &str, der: &[u8], out: &mut String) {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    out.reserve(b64.len() + b64.len() / 64 + 2 * label.len() + 34);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // base64 is ASCII: every 64-byte chunk is a str boundary
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// `der` as a PEM block labelled `label` (for public data; use
/// [`encode_into`] with a wiped buffer for a private key).
pub fn encode(label: &str, der: &[u8]) -> String {
    let mut out = String::new();
    encode_into(label, der, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_64_between_the_labels() {
        let text = encode("CERTIFICATE", &[0xab; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        // 100 bytes are 136 base64 characters: 64, 64, 8
        let widths: Vec<usize> = lines[1..4].iter().map(|l| l.len()).collect();
        assert_eq!(widths, [64, 64, 8]);
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
        assert_eq!(lines.len(), 5);
        assert!(text.ends_with('\n'));
        let body: String = lines[1..4].concat();
        assert_eq!(STANDARD.decode(body).unwrap(), vec![0xab; 100]);
        assert_eq!(encode("X", &[]), "-----BEGIN X-----\n-----END X-----\n");
    }
}
