//! Secret paths: validated, canonical names such as `prod/payment-svc/postgres`.
//!
//! Every secret, policy check and audit record names a [`SecretPath`]. A path
//! is accepted only if it is already in its one canonical form, so that two
//! different strings can never reach the same secret and a policy written for
//! one path cannot be side-stepped by spelling it another way:
//!
//! - segments are separated by `/`; no empty segment (no leading, trailing or
//!   double slash);
//! - no `.` or `..` segment;
//! - only `a-z`, `0-9`, `-`, `_` and `.`; upper-case letters are rejected
//!   rather than folded (so `Prod/x` cannot alias `prod/x`); whitespace,
//!   control characters, `%` (no percent-encoding) and every non-ASCII
//!   character (so no Unicode look-alikes) are rejected;
//! - at most [`MAX_PATH_BYTES`] bytes and [`MAX_SEGMENTS`] segments;
//! - the first segment `sys` is reserved for Strongroom's own records.
//!
//! The suggested convention is `environment/service/kind`
//! (`prod/payment-svc/postgres`); it is encouraged, not enforced.
//!
//! ```
//! use strongroom::path::SecretPath;
//! let p = SecretPath::parse("prod/payment-svc/postgres")?;
//! assert_eq!(p.segments().collect::<Vec<_>>(), ["prod", "payment-svc", "postgres"]);
//! assert!(p.starts_with(&SecretPath::parse("prod")?));
//! assert!(SecretPath::parse("prod/../admin").is_err());
//! assert!(SecretPath::parse("Prod/x").is_err());
//! # Ok::<(), strongroom::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, PathError};

/// The longest accepted path, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
/// The most segments a path may have.
pub const MAX_SEGMENTS: usize = 32;
/// The first segment reserved for Strongroom's own records.
pub const RESERVED_PREFIX: &str = "sys";

/// A validated, canonical secret path. Paths are not secret: they appear in
/// errors, logs and audit records.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretPath(String);

/// Whether `b` may appear inside a path segment.
pub(crate) fn is_segment_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.')
}

/// Checks the characters of `s` (which may include `/`), returning the first
/// problem. Shared with policy patterns.
pub(crate) fn check_chars(s: &str, extra: &[char]) -> Result<(), PathError> {
    for c in s.chars() {
        if c == '/' || extra.contains(&c) {
            continue;
        }
        if c.is_ascii_uppercase() {
            return Err(PathError::UpperCase);
        }
        if !c.is_ascii() || !is_segment_byte(c as u8) {
            return Err(PathError::BadCharacter(c));
        }
    }
    Ok(())
}

/// Checks one segment's shape (its bytes are already known to be allowed).
fn check_segment(seg: &[u8]) -> Result<(), PathError> {
    match seg {
        [] => Err(PathError::EmptySegment),
        b"." | b".." => Err(PathError::DotSegment),
        _ => Ok(()),
    }
}

/// Truncates a rejected input for an error message (paths are not secret,
/// but an over-long one should not flood a log).
pub(crate) fn shown(s: &str) -> String {
    const SHOWN: usize = 600;
    if s.len() <= SHOWN {
        return s.to_owned();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl SecretPath {
    /// Validates `s` and returns it as a path, or
    /// [`Error::InvalidPath`] saying what is wrong.
    pub fn parse(s: &str) -> crate::Result<Self> {
        Self::validate(s).map_err(|reason| Error::InvalidPath {
            path: shown(s),
            reason,
        })?;
        Ok(Self(s.to_owned()))
    }

    /// The reason `s` is not a valid path, if any. One pass over the bytes.
    pub fn validate(s: &str) -> Result<(), PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong {
                max: MAX_PATH_BYTES,
            });
        }
        let bytes = s.as_bytes();
        let mut seg_start = 0usize;
        let mut segments = 1usize;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'/' {
                check_segment(bytes.get(seg_start..i).unwrap_or(&[]))?;
                seg_start = i + 1;
                segments += 1;
            } else if !is_segment_byte(b) {
                if b.is_ascii_uppercase() {
                    return Err(PathError::UpperCase);
                }
                // The whole character, for the message (non-ASCII included).
                let c = s.get(i..).and_then(|t| t.chars().next()).unwrap_or('?');
                return Err(PathError::BadCharacter(c));
            }
        }
        check_segment(bytes.get(seg_start..).unwrap_or(&[]))?;
        if segments > MAX_SEGMENTS {
            return Err(PathError::TooDeep { max: MAX_SEGMENTS });
        }
        if s.split('/').next() == Some(RESERVED_PREFIX) {
            return Err(PathError::Reserved);
        }
        Ok(())
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, in order.
    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The number of segments.
    pub fn depth(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'/').count() + 1
    }

    /// Whether `prefix` is this path or one of its ancestors, segment by
    /// segment: `prod/app` starts with `prod` but not with `pro`.
    pub fn starts_with(&self, prefix: &SecretPath) -> bool {
        match self.0.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The path one segment longer, `self/segment`.
    pub fn join(&self, segment: &str) -> crate::Result<Self> {
        Self::parse(&format!("{}/{}", self.0, segment))
    }

    /// The parent path, or `None` for a one-segment path.
    pub fn parent(&self) -> Option<SecretPath> {
        self.0.rsplit_once('/').map(|(p, _)| Self(p.to_owned()))
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretPath({:?})", self.0)
    }
}

impl FromStr for SecretPath {
    type Err = Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for SecretPath {
    type Error = Error;
    fn try_from(s: &str) -> crate::Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SecretPath {
    type Error = Error;
    fn try_from(s: String) -> crate::Result<Self> {
        Self::validate(&s).map_err(|reason| Error::InvalidPath {
            path: shown(&s),
            reason,
        })?;
        Ok(Self(s))
    }
}

impl AsRef<str> for SecretPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<SecretPath> for String {
    fn from(p: SecretPath) -> String {
        p.0
    }
}

impl Serialize for SecretPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecretPath::try_from(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> PathError {
        match SecretPath::parse(s) {
            Err(Error::InvalidPath { reason, .. }) => reason,
            other => panic!("{s:?} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn accepts_canonical_paths() {
        for ok in [
            "prod/payment-svc/postgres",
            "a",
            "a.b/c_d/e-f/0",
            ".hidden/x",
            "x/..y",
            "system/x",
            "sysx",
        ] {
            let p = SecretPath::parse(ok).unwrap();
            assert_eq!(p.as_str(), ok);
            assert_eq!(p.to_string(), ok);
        }
        let max = vec!["a"; MAX_SEGMENTS].join("/");
        assert_eq!(SecretPath::parse(&max).unwrap().depth(), MAX_SEGMENTS);
        let long = "a".repeat(MAX_PATH_BYTES);
        assert!(SecretPath::parse(&long).is_ok());
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(reason(""), PathError::Empty);
        assert_eq!(reason("/prod"), PathError::EmptySegment);
        assert_eq!(reason("prod/"), PathError::EmptySegment);
        assert_eq!(reason("prod//x"), PathError::EmptySegment);
        assert_eq!(reason("/"), PathError::EmptySegment);
        assert_eq!(reason("prod/./x"), PathError::DotSegment);
        assert_eq!(reason("prod/../admin"), PathError::DotSegment);
        assert_eq!(reason(".."), PathError::DotSegment);
        assert_eq!(reason("Prod/x"), PathError::UpperCase);
        assert_eq!(reason("prod/X"), PathError::UpperCase);
        assert_eq!(reason("prod/x "), PathError::BadCharacter(' '));
        assert_eq!(reason(" prod/x"), PathError::BadCharacter(' '));
        assert_eq!(reason("prod/x\t"), PathError::BadCharacter('\t'));
        assert_eq!(reason("prod/x\n"), PathError::BadCharacter('\n'));
        assert_eq!(reason("prod/x\0"), PathError::BadCharacter('\0'));
        assert_eq!(reason("prod\\x"), PathError::BadCharacter('\\'));
        assert_eq!(reason("prod/%2e%2e/admin"), PathError::BadCharacter('%'));
        assert_eq!(reason("prod/%2Fadmin"), PathError::BadCharacter('%'));
        assert_eq!(reason("sys"), PathError::Reserved);
        assert_eq!(reason("sys/keyring"), PathError::Reserved);
        assert_eq!(
            reason(&"a".repeat(MAX_PATH_BYTES + 1)),
            PathError::TooLong {
                max: MAX_PATH_BYTES
            }
        );
        assert_eq!(
            reason(&vec!["a"; MAX_SEGMENTS + 1].join("/")),
            PathError::TooDeep { max: MAX_SEGMENTS }
        );
    }

    /// The one-pass validator accepts exactly what the rules, written out
    /// plainly, accept.
    #[test]
    fn validator_agrees_with_the_rules() {
        fn reference(s: &str) -> bool {
            let segs: Vec<&str> = s.split('/').collect();
            !s.is_empty()
                && s.len() <= MAX_PATH_BYTES
                && s.chars()
                    .all(|c| c == '/' || matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
                && segs
                    .iter()
                    .all(|g| !g.is_empty() && *g != "." && *g != "..")
                && segs.len() <= MAX_SEGMENTS
                && segs[0] != "sys"
        }
        let alphabet = ['a', 's', 'y', 'A', '/', '.', '%', ' ', '\u{e9}', '-', '\0'];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 9) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((seed >> (8 + 5 * i)) % alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(SecretPath::validate(&s).is_ok(), reference(&s), "{s:?}");
        }
        for s in ["sys", "sys/a", "sy", "sysa/b", "a/sys"] {
            assert_eq!(SecretPath::validate(s).is_ok(), reference(s), "{s:?}");
        }
    }

    #[test]
    fn rejects_unicode_look_alikes() {
        // Fullwidth "ｐｒｏｄ", Cyrillic 'о' (U+043E) and 'а', a non-breaking
        // space, a zero-width space, a fullwidth solidus and a division slash.
        for s in [
            "\u{ff50}\u{ff52}\u{ff4f}\u{ff44}/x",
            "pr\u{043e}d/x",
            "prod/\u{0430}pp",
            "prod/x\u{00a0}",
            "prod/\u{200b}x",
            "prod\u{ff0f}x",
            "prod\u{2215}x",
            "prod/\u{2024}\u{2024}/x",
            "prod/caf\u{e9}",
        ] {
            assert!(
                matches!(reason(s), PathError::BadCharacter(c) if !c.is_ascii()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn error_names_the_path_and_reason() {
        let e = SecretPath::parse("prod/../admin").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("prod/../admin"), "{msg}");
        assert!(msg.contains("'..'"), "{msg}");
        // An over-long input is cut in the message.
        let e = SecretPath::parse(&"a".repeat(10_000)).unwrap_err();
        assert!(e.to_string().len() < 1_000);
    }

    #[test]
    fn starts_with_is_by_segment() {
        let p = SecretPath::parse("prod/app/db").unwrap();
        assert!(p.starts_with(&SecretPath::parse("prod").unwrap()));
        assert!(p.starts_with(&SecretPath::parse("prod/app").unwrap()));
        assert!(p.starts_with(&p));
        assert!(!p.starts_with(&SecretPath::parse("pro").unwrap()));
        assert!(!p.starts_with(&SecretPath::parse("prod/ap").unwrap()));
        assert!(!p.starts_with(&SecretPath::parse("prod/app/db/x").unwrap()));
        assert_eq!(p.parent().unwrap().as_str(), "prod/app");
        assert!(SecretPath::parse("prod").unwrap().parent().is_none());
        assert_eq!(p.join("x").unwrap().as_str(), "prod/app/db/x");
        assert!(p.join("..").is_err());
        assert!(p.join("a/../b").is_err());
    }

    #[test]
    fn serde_validates() {
        let p = SecretPath::parse("prod/x").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"prod/x\"");
        let back: SecretPath = serde_json::from_str("\"prod/x\"").unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<SecretPath>("\"prod/../x\"").is_err());
        assert!(serde_json::from_str::<SecretPath>("\"Prod/x\"").is_err());
    }
}
