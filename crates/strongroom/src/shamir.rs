//! Shamir secret sharing over GF(256), and a key protector built on it.
//!
//! [`split`] cuts a secret into `n` [`Share`]s so that any `k` of them
//! rebuild it with [`combine`] and fewer than `k` reveal nothing about it.
//! Every byte of the secret is the constant term of its own random
//! polynomial of degree `k - 1` over GF(2^8) (the AES field, polynomial
//! `x^8 + x^4 + x^3 + x + 1`); share `x` holds the polynomials' values at `x`.
//!
//! The field arithmetic uses no lookup table: multiplication is
//! shift-and-xor with masks and inversion is exponentiation, so the time
//! taken does not depend on share or secret values (table lookups indexed by
//! secret bytes leak through the cache, as in CVE-2023-25000).
//!
//! Shares carry a format version, a random split id (shares of two splits are
//! told apart), the threshold, their x coordinate and a checksum, so a
//! mistyped share is named rather than silently producing a wrong secret.
//! Their text form is `srs1-` followed by unpadded base64url.
//!
//! ```
//! use strongroom::SecretBytes;
//! use strongroom::shamir::{combine, split, Share};
//!
//! let secret = SecretBytes::from("launch code");
//! let shares = split(&secret, 2, 3)?;
//! let text = shares[2].to_text();
//! let back = Share::parse(text.expose_secret())?;
//! let rebuilt = combine(&[shares[0].clone(), back])?;
//! assert_eq!(rebuilt, secret);
//! # Ok::<(), strongroom::Error>(())
//! ```
//!
//! [`ShamirProtector`] is a [`KeyProtector`] whose key-encryption key exists
//! only as shares: the root key is wrapped under a random 256-bit key that is
//! split at init and rebuilt from `k` shares at unseal.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::protector::{KeyProtector, unwrap_root_key, wrap_root_key};
use crate::seal::{Algorithm, DataKey};
use crate::{Error, Result, SecretBytes, SecretString};

/// The share format version this build writes and reads.
pub const SHARE_FORMAT_VERSION: u8 = 1;

/// Prefix of a share's text form (`srs` = Strongroom share, then the version).
const TEXT_PREFIX: &str = "srs1-";

/// Bytes of the random split id.
const SPLIT_ID_LEN: usize = 8;
/// Bytes of the checksum.
const CHECKSUM_LEN: usize = 4;
/// version, split id, threshold, x.
const SHARE_HEADER_LEN: usize = 1 + SPLIT_ID_LEN + 1 + 1;
/// Domain separation for the checksum.
const CHECKSUM_DOMAIN: &[u8] = b"strongroom shamir share checksum v1\0";
/// Bytes of the key-encryption key a [`ShamirProtector`] splits.
const KEK_LEN: usize = 32;

/// Errors of the Shamir secret sharing over GF(256).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShamirError {
    /// Threshold or share count out of range, or an empty secret.
    #[error("invalid shamir parameters: {reason}")]
    InvalidParameters {
        /// What is wrong.
        reason: String,
    },

    /// No shares at all were given.
    #[error("no shares given")]
    NoShares,

    /// Fewer shares than the threshold.
    #[error("too few shares: {needed} are needed, {given} given")]
    TooFewShares {
        /// The split's threshold.
        needed: u8,
        /// How many distinct shares were given.
        given: usize,
    },

    /// The same share (same x coordinate) was given twice.
    #[error(
        "shares at index {first} and {second} are the same share (x = {x}); give {needed} different shares"
    )]
    DuplicateShare {
        /// The x coordinate both carry.
        x: u8,
        /// Index of the first in the list given.
        first: usize,
        /// Index of the second in the list given.
        second: usize,
        /// The split's threshold.
        needed: u8,
    },

    /// Shares from two different splits were mixed.
    #[error(
        "share at index {index} belongs to split {found}, not to split {expected} like the share at index 0"
    )]
    DifferentSplits {
        /// Index of the odd share in the list given.
        index: usize,
        /// Split id (hex) of the share at index 0.
        expected: String,
        /// Split id (hex) of the odd share.
        found: String,
    },

    /// A share failed its checksum or is malformed (mistyped, truncated).
    #[error("{} is corrupt: {reason}", describe_index(*index))]
    CorruptShare {
        /// Index in the list given, when the share was part of a list.
        index: Option<usize>,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn describe_index(index: Option<usize>) -> String {
    match index {
        Some(i) => format!("share at index {i}"),
        None => "share".to_owned(),
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::Shamir(ShamirError::InvalidParameters {
        reason: reason.into(),
    })
}

fn corrupt(index: Option<usize>, reason: &'static str) -> Error {
    Error::Shamir(ShamirError::CorruptShare { index, reason })
}

// ---------------------------------------------------------------------------
// GF(2^8) arithmetic, constant time.

/// Multiplication in GF(2^8) modulo `x^8 + x^4 + x^3 + x + 1`, by
/// shift-and-xor. Every step runs whatever the operands; bits select through
/// masks, never through branches or table indices.
#[inline]
fn gf_mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut product = 0u8;
    for _ in 0..8 {
        // mask = 0xff when the low bit of b is set, else 0x00
        product ^= a & 0u8.wrapping_sub(b & 1);
        // reduce when the high bit of a shifts out
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// Inverse in GF(2^8) as `a^254` (a fixed chain of squarings and
/// multiplications). The inverse of 0 comes out as 0.
#[inline]
fn gf_inv(a: u8) -> u8 {
    let a2 = gf_mul(a, a);
    let a4 = gf_mul(a2, a2);
    let a8 = gf_mul(a4, a4);
    let a16 = gf_mul(a8, a8);
    let a32 = gf_mul(a16, a16);
    let a64 = gf_mul(a32, a32);
    let a128 = gf_mul(a64, a64);
    // 254 = 2 + 4 + 8 + 16 + 32 + 64 + 128
    let mut r = gf_mul(a2, a4);
    r = gf_mul(r, a8);
    r = gf_mul(r, a16);
    r = gf_mul(r, a32);
    r = gf_mul(r, a64);
    gf_mul(r, a128)
}

// ---------------------------------------------------------------------------
// Shares.

/// One share of a split secret.
///
/// Holds secret material: no `Debug` of the share value, no `Display`, wiped
/// on drop. Its text form ([`Share::to_text`]) is returned as a
/// [`SecretString`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    version: u8,
    split_id: [u8; SPLIT_ID_LEN],
    threshold: u8,
    x: u8,
    y: SecretBytes,
    checksum: [u8; CHECKSUM_LEN],
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("version", &self.version)
            .field("split_id", &self.split_id_hex())
            .field("threshold", &self.threshold)
            .field("x", &self.x)
            .field("len", &self.y.len())
            .finish_non_exhaustive()
    }
}

impl Share {
    fn new(split_id: [u8; SPLIT_ID_LEN], threshold: u8, x: u8, y: SecretBytes) -> Self {
        let mut share = Self {
            version: SHARE_FORMAT_VERSION,
            split_id,
            threshold,
            x,
            y,
            checksum: [0; CHECKSUM_LEN],
        };
        share.checksum = share.compute_checksum();
        share
    }

    /// The format version.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The random id of the split this share came from, as hex. Shares of one
    /// split share it.
    pub fn split_id_hex(&self) -> String {
        hex::encode(self.split_id)
    }

    /// How many shares of the split are needed.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// This share's x coordinate (1 to 255; distinct within a split).
    pub fn x(&self) -> u8 {
        self.x
    }

    /// Length of the shared secret in bytes.
    pub fn secret_len(&self) -> usize {
        self.y.len()
    }

    /// version || split id || threshold || x
    fn header(&self) -> [u8; SHARE_HEADER_LEN] {
        let mut h = [0u8; SHARE_HEADER_LEN];
        h[0] = self.version;
        h[1..1 + SPLIT_ID_LEN].copy_from_slice(&self.split_id);
        h[1 + SPLIT_ID_LEN] = self.threshold;
        h[2 + SPLIT_ID_LEN] = self.x;
        h
    }

    fn compute_checksum(&self) -> [u8; CHECKSUM_LEN] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(CHECKSUM_DOMAIN);
        ctx.update(&self.header());
        ctx.update(self.y.expose_secret());
        let digest = ctx.finish();
        let mut out = [0u8; CHECKSUM_LEN];
        out.copy_from_slice(&digest.as_ref()[..CHECKSUM_LEN]);
        out
    }

    fn checksum_ok(&self) -> bool {
        self.compute_checksum().ct_eq(&self.checksum).into()
    }

    /// The binary encoding: header || y || checksum.
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            SHARE_HEADER_LEN + self.y.len() + CHECKSUM_LEN,
        ));
        out.extend_from_slice(&self.header());
        out.extend_from_slice(self.y.expose_secret());
        out.extend_from_slice(&self.checksum);
        out
    }

    /// The text form, `srs1-` then unpadded base64url of the binary share.
    /// It is secret: hand it to its holder and wipe it.
    pub fn to_text(&self) -> SecretString {
        let bytes = self.encode();
        let mut text = String::with_capacity(TEXT_PREFIX.len() + bytes.len() * 4 / 3 + 4);
        text.push_str(TEXT_PREFIX);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&*bytes, &mut text);
        SecretString::new(text)
    }

    /// Parses a share's text form and verifies its checksum. Surrounding
    /// whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_at(text, None)
    }

    /// Parses several shares; a bad one is named by its index in `texts`.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Self>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Self::parse_at(t.as_ref(), Some(i)))
            .collect()
    }

    fn parse_at(text: &str, index: Option<usize>) -> Result<Self> {
        let text = text.trim();
        let body = text
            .strip_prefix(TEXT_PREFIX)
            .ok_or_else(|| corrupt(index, "does not start with \"srs1-\" (not a share?)"))?;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| corrupt(index, "not valid base64url (mistyped?)"))?,
        );
        Self::decode(&bytes).map_err(|reason| corrupt(index, reason))
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, &'static str> {
        if bytes.len() < SHARE_HEADER_LEN + 1 + CHECKSUM_LEN {
            return Err("too short (truncated?)");
        }
        let (header, rest) = bytes.split_at(SHARE_HEADER_LEN);
        let (y, checksum) = rest.split_at(rest.len() - CHECKSUM_LEN);
        let mut split_id = [0u8; SPLIT_ID_LEN];
        split_id.copy_from_slice(&header[1..1 + SPLIT_ID_LEN]);
        let mut sum = [0u8; CHECKSUM_LEN];
        sum.copy_from_slice(checksum);
        let share = Self {
            version: header[0],
            split_id,
            threshold: header[1 + SPLIT_ID_LEN],
            x: header[2 + SPLIT_ID_LEN],
            y: SecretBytes::copy_from(y),
            checksum: sum,
        };
        if !share.checksum_ok() {
            return Err("checksum mismatch (mistyped or damaged)");
        }
        share.validate()?;
        Ok(share)
    }

    /// Checks a share whose checksum is right.
    fn validate(&self) -> std::result::Result<(), &'static str> {
        if self.version != SHARE_FORMAT_VERSION {
            return Err("unsupported share format version");
        }
        if self.x == 0 {
            return Err("x coordinate 0 is not a valid share");
        }
        if self.threshold < 2 {
            return Err("threshold below 2");
        }
        if self.y.is_empty() {
            return Err("empty share value");
        }
        Ok(())
    }
}

fn random_fill(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Random)
}

/// Splits `secret` into `shares` shares, any `threshold` of which rebuild it.
///
/// Requires `2 <= threshold <= shares <= 255` and a non-empty secret. Shares
/// get x coordinates 1, 2, ... `shares` and one fresh random split id.
pub fn split(secret: &SecretBytes, threshold: u8, shares: u8) -> Result<Vec<Share>> {
    if threshold < 2 {
        return Err(invalid(format!(
            "threshold must be at least 2, got {threshold} (a threshold of 1 would hand out the secret itself)"
        )));
    }
    if shares < threshold {
        return Err(invalid(format!(
            "threshold {threshold} is larger than the number of shares {shares}"
        )));
    }
    if secret.is_empty() {
        return Err(invalid("the secret is empty"));
    }
    let mut split_id = [0u8; SPLIT_ID_LEN];
    random_fill(&mut split_id)?;
    let degree = usize::from(threshold) - 1;
    let mut coefficients = Zeroizing::new(vec![0u8; secret.len() * degree]);
    random_fill(&mut coefficients)?;
    Ok(split_with(
        secret,
        threshold,
        shares,
        split_id,
        &coefficients,
    ))
}

/// [`split`] with given randomness (checked parameters; for vectors).
/// `coefficients[b * (threshold - 1) + (j - 1)]` is the coefficient of
/// `x^j` in the polynomial of secret byte `b`.
fn split_with(
    secret: &SecretBytes,
    threshold: u8,
    shares: u8,
    split_id: [u8; SPLIT_ID_LEN],
    coefficients: &[u8],
) -> Vec<Share> {
    let len = secret.len();
    let degree = usize::from(threshold) - 1;
    let mut out = Vec::with_capacity(usize::from(shares));
    for x in 1..=shares {
        let mut y = Zeroizing::new(vec![0u8; len]);
        for ((yb, &s), coeffs) in y
            .iter_mut()
            .zip(secret.expose_secret())
            .zip(coefficients.chunks_exact(degree))
        {
            // Horner: (((c_d x + c_{d-1}) x + ...) x + c_1) x + s
            let mut acc = 0u8;
            for &c in coeffs.iter().rev() {
                acc = gf_mul(acc, x) ^ c;
            }
            *yb = gf_mul(acc, x) ^ s;
        }
        out.push(Share::new(
            split_id,
            threshold,
            x,
            SecretBytes::new(std::mem::take(&mut *y)),
        ));
    }
    out
}

/// Rebuilds the secret from at least `threshold` shares of one split.
///
/// Every share's checksum is verified first. Shares from different splits,
/// a share given twice and too few shares each fail with their own
/// [`ShamirError`]. Extra shares beyond the threshold are checked but not
/// needed.
pub fn combine(shares: &[Share]) -> Result<SecretBytes> {
    let first = shares.first().ok_or(Error::Shamir(ShamirError::NoShares))?;
    for (i, s) in shares.iter().enumerate() {
        if !s.checksum_ok() {
            return Err(corrupt(Some(i), "checksum mismatch (mistyped or damaged)"));
        }
        s.validate().map_err(|reason| corrupt(Some(i), reason))?;
    }
    for (i, s) in shares.iter().enumerate().skip(1) {
        if s.split_id != first.split_id {
            return Err(Error::Shamir(ShamirError::DifferentSplits {
                index: i,
                expected: first.split_id_hex(),
                found: s.split_id_hex(),
            }));
        }
        if s.threshold != first.threshold || s.y.len() != first.y.len() {
            return Err(corrupt(
                Some(i),
                "threshold or length differs from the other shares of its split",
            ));
        }
    }
    let needed = first.threshold;
    for (i, s) in shares.iter().enumerate() {
        if let Some(j) = shares.iter().take(i).position(|t| t.x == s.x) {
            return Err(Error::Shamir(ShamirError::DuplicateShare {
                x: s.x,
                first: j,
                second: i,
                needed,
            }));
        }
    }
    if shares.len() < usize::from(needed) {
        return Err(Error::Shamir(ShamirError::TooFewShares {
            needed,
            given: shares.len(),
        }));
    }
    let used = shares.get(..usize::from(needed)).unwrap_or(shares);

    // Lagrange interpolation at 0: secret = sum_i y_i * prod_{j != i} x_j / (x_j - x_i)
    // (subtraction is xor in GF(2^8)).
    let mut secret = Zeroizing::new(vec![0u8; first.y.len()]);
    for (i, si) in used.iter().enumerate() {
        let mut num = 1u8;
        let mut den = 1u8;
        for (j, sj) in used.iter().enumerate() {
            if i != j {
                num = gf_mul(num, sj.x);
                den = gf_mul(den, sj.x ^ si.x);
            }
        }
        let basis = gf_mul(num, gf_inv(den));
        for (out, &y) in secret.iter_mut().zip(si.y.expose_secret()) {
            *out ^= gf_mul(basis, y);
        }
    }
    Ok(SecretBytes::new(std::mem::take(&mut *secret)))
}

// ---------------------------------------------------------------------------
// The key protector.

/// A [`KeyProtector`] whose 256-bit key-encryption key exists only as Shamir
/// shares: [`ShamirProtector::generate`] makes the key and splits it,
/// [`ShamirProtector::from_shares`] rebuilds it from `k` shares at unseal.
/// The root key is wrapped and unwrapped exactly as
/// [`SoftwareProtector`](crate::protector::SoftwareProtector) does.
pub struct ShamirProtector {
    kek: DataKey,
    split_id: [u8; SPLIT_ID_LEN],
    threshold: u8,
}

impl fmt::Debug for ShamirProtector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShamirProtector")
            .field("split_id", &hex::encode(self.split_id))
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl ShamirProtector {
    /// Creates a random key-encryption key and splits it into `shares`
    /// shares with threshold `threshold`. Hand each share to its holder
    /// (see [`Share::to_text`]); the protector is ready to wrap the root key.
    pub fn generate(threshold: u8, shares: u8) -> Result<(Self, Vec<Share>)> {
        let key = SecretBytes::random(KEK_LEN)?;
        let parts = split(&key, threshold, shares)?;
        let split_id = parts.first().map(|s| s.split_id).unwrap_or_default();
        let kek = DataKey::new(Algorithm::Aes256Gcm, key)?;
        Ok((
            Self {
                kek,
                split_id,
                threshold,
            },
            parts,
        ))
    }

    /// Rebuilds the key-encryption key from at least `threshold` shares.
    pub fn from_shares(shares: &[Share]) -> Result<Self> {
        let key = combine(shares)?;
        if key.len() != KEK_LEN {
            return Err(invalid(format!(
                "these shares hold a {}-byte secret, not a {KEK_LEN}-byte key-encryption key",
                key.len()
            )));
        }
        let (split_id, threshold) = shares
            .first()
            .map(|s| (s.split_id, s.threshold))
            .unwrap_or_default();
        Ok(Self {
            kek: DataKey::new(Algorithm::Aes256Gcm, key)?,
            split_id,
            threshold,
        })
    }

    /// The split id (hex) of the shares this protector came from.
    pub fn split_id_hex(&self) -> String {
        hex::encode(self.split_id)
    }

    /// The number of shares needed to rebuild the key.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }
}

#[async_trait]
impl KeyProtector for ShamirProtector {
    fn kind(&self) -> &'static str {
        "shamir"
    }

    async fn wrap(&self, root_key: &SecretBytes) -> Result<Vec<u8>> {
        wrap_root_key(&self.kek, root_key)
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
        unwrap_root_key(
            &self.kek,
            wrapped,
            "shamir",
            "the wrapped root key does not open with the key rebuilt from these shares (shares of another split?)",
        )
    }
}

#[cfg(test)]
mod tests;
