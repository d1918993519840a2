//! Types for bytes and text that must not leak.
//!
//! [`SecretBytes`] and [`SecretString`] wipe their memory when dropped, print
//! only a redaction through `Debug`, have no `Display`, and hand out their
//! contents only through an explicit `expose_secret` call, so a secret can be
//! found in code review by searching for that one word.

use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{Ordering, compiler_fence};

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes that hold a secret: a key, a password, a plaintext.
///
/// ```
/// use strongroom::SecretBytes;
/// let s = SecretBytes::from(b"hunter2".to_vec());
/// assert_eq!(format!("{s:?}"), "SecretBytes([REDACTED; 7 bytes])");
/// assert_eq!(s.expose_secret(), b"hunter2");
/// ```
///
/// Dropping (or zeroizing) it overwrites its whole allocation, contents and
/// spare capacity, with zeros.
#[derive(Clone, Default)]
pub struct SecretBytes(Vec<u8>);

/// Overwrites `v`'s whole allocation (contents and spare capacity) with
/// zeros and empties it.
///
/// One `memset`-speed pass: the `zeroize` crate's `Vec<u8>` wipe writes one
/// byte per volatile store, which takes about as long as decrypting the
/// bytes did. The zeros are not optimised away because the compiler must
/// assume that `black_box` reads them before the memory is freed or reused.
fn wipe(v: &mut Vec<u8>) {
    v.clear();
    // With the length at zero, the spare capacity is the whole allocation.
    let all = v.spare_capacity_mut();
    all.fill(MaybeUninit::new(0));
    std::hint::black_box(all);
    compiler_fence(Ordering::SeqCst);
}

impl Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        wipe(&mut self.0);
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl ZeroizeOnDrop for SecretBytes {}

impl SecretBytes {
    /// Wraps bytes; the vector is moved, not copied, so no stray copy remains.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies a slice into a new secret. The caller remains responsible for
    /// wiping the source.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Fills a new secret of `len` bytes from the operating system's RNG.
    pub fn random(len: usize) -> crate::Result<Self> {
        let mut v = vec![0u8; len];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut v)
            .map_err(|_| crate::Error::Random)?;
        Ok(Self(v))
    }

    /// The secret bytes. Every use of a secret goes through this call.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Mutable access to the secret bytes, for in-place operations.
    pub fn expose_secret_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Converts into a secret string if the bytes are UTF-8; on failure the
    /// bytes are wiped and `None` is returned.
    pub fn into_string(mut self) -> Option<SecretString> {
        let bytes = std::mem::take(&mut self.0);
        match String::from_utf8(bytes) {
            Ok(s) => Some(SecretString(s)),
            Err(e) => {
                let _wiped = Zeroizing::new(e.into_bytes());
                None
            }
        }
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&str> for SecretBytes {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}

/// Text that holds a secret, such as a password.
///
/// ```
/// use strongroom::SecretString;
/// let pw = SecretString::from("correct horse");
/// assert_eq!(format!("{pw:?}"), "SecretString([REDACTED])");
/// ```
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a string (moved, not copied).
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The secret text.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Converts into secret bytes without copying.
    pub fn into_bytes(mut self) -> SecretBytes {
        SecretBytes(std::mem::take(&mut self.0).into_bytes())
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl PartialEq for SecretString {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretBytes::from("canary-7f3a");
        assert!(!format!("{s:?}").contains("canary"));
        let t = SecretString::from("canary-7f3a");
        assert!(!format!("{t:?}").contains("canary"));
        assert!(!format!("{:#?}", Some(&t)).contains("canary"));
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(SecretBytes::from("a"), SecretBytes::from("a"));
        assert_ne!(SecretBytes::from("a"), SecretBytes::from("b"));
        assert_ne!(SecretBytes::from("a"), SecretBytes::from("ab"));
    }

    #[test]
    fn non_utf8_into_string_is_none() {
        assert!(SecretBytes::new(vec![0xff, 0xfe]).into_string().is_none());
        let s = SecretBytes::from("ok").into_string();
        assert_eq!(
            s.map(|s| s.expose_secret().to_owned()).as_deref(),
            Some("ok")
        );
    }
}
