//! Sealing: authenticated encryption of values bound to where they live.
//!
//! A [`SealedValue`] is a self-describing byte string (format v1, see
//! `docs/FORMAT.md`):
//!
//! ```text
//! offset  size  field
//! 0       2     magic "SR" (0x53 0x52)
//! 2       1     format version (1)
//! 3       1     algorithm (1 = AES-256-GCM, 2 = ChaCha20-Poly1305)
//! 4       4     keyring key version, big-endian u32
//! 8       12    nonce
//! 20      n     ciphertext
//! 20+n    16    tag
//! ```
//!
//! The associated data is the 20-byte header followed by the
//! [`SealContext`] (path and version), so a value moved to another path or
//! version, or relabelled with another key version or algorithm, fails to
//! open. All failures after framing checks are one opaque
//! [`Error::DecryptionFailed`].
//!
//! Nonces are random 96-bit values drawn from a per-thread pool that is
//! refilled from the OS 64 nonces at a time (one `getrandom` call per 64
//! seals instead of one per seal). The pool remembers the process id it was
//! filled in and compares it with the current one on every draw; a pool that
//! finds itself in another process discards its unused nonces before handing
//! out another, so a parent and its forked child never share a nonce. The
//! process id is the check that holds for every kind of fork: a
//! `pthread_atfork` handler (also registered, where possible) does not run
//! for glibc's `_Fork()` or a raw `fork`/`clone` system call.

use std::cell::RefCell;
use std::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, SecretBytes};

/// Magic bytes at the start of every sealed value.
pub const MAGIC: [u8; 2] = *b"SR";
/// The sealed-value format version this build writes.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 20;
/// Bytes of authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Length of keys for both algorithms.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The AEAD algorithm of a key and of the values it sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Algorithm {
    /// AES-256-GCM (the default; fastest with AES-NI).
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305 (constant-time without AES hardware).
    ChaCha20Poly1305,
}

impl Algorithm {
    /// The id written into sealed values.
    pub const fn id(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::ChaCha20Poly1305 => 2,
        }
    }

    /// The algorithm with this id, if any.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Aes256Gcm),
            2 => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The name used in documents and test vectors.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }

    /// The algorithm with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Aes256Gcm, Self::ChaCha20Poly1305]
            .into_iter()
            .find(|a| a.name() == name)
    }

    fn cipher(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a sealed value lives: bound into the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    path: &'a str,
    version: u64,
}

impl<'a> SealContext<'a> {
    /// A context for `path` at `version`.
    pub const fn new(path: &'a str, version: u64) -> Self {
        Self { path, version }
    }

    /// The path.
    pub const fn path(&self) -> &'a str {
        self.path
    }

    /// The version.
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// Calls `f` with the associated data:
    /// header || u32-BE path length || path || u64-BE version.
    /// Built on the stack for paths up to 200 bytes (no allocation).
    fn with_aad<T>(&self, header: &[u8; HEADER_LEN], f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let len = u32::try_from(self.path.len())
            .map_err(|_| Error::InvalidArgument("context path longer than 4 GiB".into()))?;
        let total = HEADER_LEN + 4 + self.path.len() + 8;
        let fill = |aad: &mut [u8]| {
            let (h, rest) = aad.split_at_mut(HEADER_LEN);
            h.copy_from_slice(header);
            let (l, rest) = rest.split_at_mut(4);
            l.copy_from_slice(&len.to_be_bytes());
            let (p, v) = rest.split_at_mut(self.path.len());
            p.copy_from_slice(self.path.as_bytes());
            v.copy_from_slice(&self.version.to_be_bytes());
        };
        let mut stack = [0u8; 232];
        if let Some(aad) = stack.get_mut(..total) {
            fill(aad);
            Ok(f(aad))
        } else {
            let mut heap = vec![0u8; total];
            fill(&mut heap);
            Ok(f(&heap))
        }
    }
}

/// A sealed value: header, ciphertext and tag. Not secret; safe to store.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    bytes: Vec<u8>,
}

impl fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedValue")
            .field("algorithm", &self.algorithm())
            .field("key_version", &self.key_version())
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Checks framing and returns (algorithm, key version).
fn parse_header(bytes: &[u8]) -> Result<(Algorithm, u32)> {
    if bytes.len() < OVERHEAD {
        return Err(Error::MalformedSealedValue(
            "shorter than the 36-byte header and tag",
        ));
    }
    if bytes[0..2] != MAGIC {
        return Err(Error::MalformedSealedValue(
            "bad magic (not a sealed value)",
        ));
    }
    if bytes[2] != FORMAT_VERSION {
        return Err(Error::MalformedSealedValue("unsupported format version"));
    }
    let alg =
        Algorithm::from_id(bytes[3]).ok_or(Error::MalformedSealedValue("unknown algorithm id"))?;
    let mut kv = [0u8; 4];
    kv.copy_from_slice(&bytes[4..8]);
    Ok((alg, u32::from_be_bytes(kv)))
}

impl SealedValue {
    /// Parses and checks the framing of `bytes` (copies them).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        Self::from_vec(bytes.to_vec())
    }

    /// Like [`SealedValue::parse`] without copying.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        parse_header(&bytes)?;
        Ok(Self { bytes })
    }

    /// The algorithm named in the header.
    pub fn algorithm(&self) -> Algorithm {
        Algorithm::from_id(self.bytes[3]).unwrap_or_default()
    }

    /// The keyring key version named in the header.
    pub fn key_version(&self) -> u32 {
        header_key_version(&self.bytes).unwrap_or(0)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Length of the plaintext inside.
    pub fn plaintext_len(&self) -> usize {
        self.bytes.len() - OVERHEAD
    }
}

/// The key version in a sealed value's header, after framing checks.
pub fn header_key_version(bytes: &[u8]) -> Result<u32> {
    parse_header(bytes).map(|(_, v)| v)
}

/// A buffer ready for [`DataKey::seal_in_place`]: `HEADER_LEN` bytes of room
/// for the header, then `plaintext`, with capacity for the tag. Large values
/// should be written straight into such a buffer instead of copied.
pub fn seal_buffer(plaintext_capacity: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(OVERHEAD + plaintext_capacity);
    v.resize(HEADER_LEN, 0);
    v
}

/// A sealed value's parts, after framing checks.
struct SealedParts<'s> {
    header: [u8; HEADER_LEN],
    ciphertext: &'s [u8],
    tag: [u8; TAG_LEN],
}

/// A 256-bit data-encryption key with its algorithm. No `Debug` of the key,
/// and the key is wiped on drop.
///
/// The cipher's key (an AWS-LC `EVP_AEAD_CTX`, which holds the raw key
/// bytes or an expanded schedule that begins with them) lives in one
/// allocation of AWS-LC's own from the moment it is built until it is
/// dropped: the Rust value holds only a pointer to it, so moving the key
/// copies no key bytes, and AWS-LC overwrites the allocation with zeros
/// when it frees it. The stack the key was built on is scrubbed before and
/// after, so no copy stays behind there either.
pub struct DataKey {
    algorithm: Algorithm,
    key: LessSafeKey,
    raw: SecretBytes,
}

/// Bytes of stack [`scrub_stack`] overwrites: more than building a cipher
/// key uses below the caller's frame.
const STACK_SCRUB_LEN: usize = 32 * 1024;

/// Overwrites the stack below the caller's frame with zeros, wiping what
/// the functions it called left there (building a cipher key can leave
/// copies of the key, or values derived from it, in the frames of the
/// functions that expand it).
#[inline(never)]
pub(crate) fn scrub_stack() {
    let mut area = [0u8; STACK_SCRUB_LEN];
    // The zeros must really be written: the compiler has to assume
    // `black_box` reads them.
    std::hint::black_box(&mut area);
}

/// Builds the cipher's key for `raw`. Never inlined, so every stack copy
/// made on the way lies below the caller's frame, where [`scrub_stack`]
/// reaches it.
#[inline(never)]
fn cipher_key(algorithm: Algorithm, raw: &[u8]) -> Result<LessSafeKey> {
    let unbound = UnboundKey::new(algorithm.cipher(), raw)
        .map_err(|_| Error::InvalidArgument("key rejected by the cipher".into()))?;
    Ok(LessSafeKey::new(unbound))
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// A key from 32 raw bytes.
    pub fn new(algorithm: Algorithm, raw: SecretBytes) -> Result<Self> {
        if raw.len() != KEY_LEN {
            return Err(Error::InvalidArgument(format!(
                "a {algorithm} key is {KEY_LEN} bytes, got {}",
                raw.len()
            )));
        }
        // Scrub before, so the stack below holds nothing of another key,
        // and after, to wipe the copies the building left.
        scrub_stack();
        let key = cipher_key(algorithm, raw.expose_secret());
        scrub_stack();
        Ok(Self {
            algorithm,
            key: key?,
            raw,
        })
    }

    /// A fresh random key.
    pub fn generate(algorithm: Algorithm) -> Result<Self> {
        Self::new(algorithm, SecretBytes::random(KEY_LEN)?)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw key bytes, for wrapping the key under another key.
    pub(crate) fn raw(&self) -> &SecretBytes {
        &self.raw
    }

    /// Seals `plaintext` (copying it once into the output).
    pub fn seal(
        &self,
        key_version: u32,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<SealedValue> {
        let mut buf = seal_buffer(plaintext.len());
        buf.extend_from_slice(plaintext);
        self.seal_in_place(key_version, &mut buf, context)?;
        Ok(SealedValue { bytes: buf })
    }

    /// Seals in place. On entry `buf[HEADER_LEN..]` is the plaintext and the
    /// first `HEADER_LEN` bytes are room for the header (see
    /// [`seal_buffer`]); on return `buf` is the whole sealed value. The
    /// plaintext is never copied.
    pub fn seal_in_place(
        &self,
        key_version: u32,
        buf: &mut Vec<u8>,
        context: &SealContext<'_>,
    ) -> Result<()> {
        let nonce = next_nonce()?;
        self.seal_in_place_with_nonce(key_version, nonce, buf, context)
    }

    /// Seals `plaintext` into `out`, which must be exactly
    /// `plaintext.len() + OVERHEAD` bytes (for example a buffer a host
    /// language owns), copying the plaintext once. On error `out` holds no
    /// plaintext.
    pub fn seal_into(
        &self,
        key_version: u32,
        plaintext: &[u8],
        out: &mut [u8],
        context: &SealContext<'_>,
    ) -> Result<()> {
        if out.len() != plaintext.len() + OVERHEAD {
            return Err(Error::InvalidArgument(format!(
                "seal_into needs an output of {} bytes, got {}",
                plaintext.len() + OVERHEAD,
                out.len()
            )));
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..2].copy_from_slice(&MAGIC);
        header[2] = FORMAT_VERSION;
        header[3] = self.algorithm.id();
        header[4..8].copy_from_slice(&key_version.to_be_bytes());
        header[8..20].copy_from_slice(&next_nonce()?);
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        head.copy_from_slice(&header);
        body.copy_from_slice(plaintext);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[8..20]);
        let sealed = context.with_aad(&header, |aad| {
            self.key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *body,
            )
        });
        match sealed.and_then(|r| {
            r.map_err(|_| Error::InvalidArgument("plaintext too long for the cipher".into()))
        }) {
            Ok(tag) => {
                tag_out.copy_from_slice(tag.as_ref());
                Ok(())
            }
            Err(e) => {
                zeroize::Zeroize::zeroize(body);
                Err(e)
            }
        }
    }

    pub(crate) fn seal_in_place_with_nonce(
        &self,
        key_version: u32,
        nonce: [u8; NONCE_LEN],
        buf: &mut Vec<u8>,
        context: &SealContext<'_>,
    ) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::InvalidArgument(
                "seal_in_place needs HEADER_LEN bytes of room before the plaintext".into(),
            ));
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..2].copy_from_slice(&MAGIC);
        header[2] = FORMAT_VERSION;
        header[3] = self.algorithm.id();
        header[4..8].copy_from_slice(&key_version.to_be_bytes());
        header[8..20].copy_from_slice(&nonce);
        buf[..HEADER_LEN].copy_from_slice(&header);
        let tag = context
            .with_aad(&header, |aad| {
                self.key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut buf[HEADER_LEN..],
                )
            })?
            .map_err(|_| Error::InvalidArgument("plaintext too long for the cipher".into()))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens a sealed value into a new secret.
    ///
    /// The secret's buffer is allocated once, with room for exactly the
    /// plaintext; the ciphertext is copied into it once and decrypted there,
    /// and the same buffer becomes the [`SecretBytes`] (no second copy, no
    /// reallocation). The buffer belongs to a `SecretBytes` before the first
    /// byte is decrypted, so a failed open wipes it on the way out, and a
    /// successful one is wiped when the secret is dropped.
    pub fn open(&self, sealed: &SealedValue, context: &SealContext<'_>) -> Result<SecretBytes> {
        let parts = self.split(&sealed.bytes)?;
        let mut body = Vec::with_capacity(parts.ciphertext.len());
        body.extend_from_slice(parts.ciphertext);
        let mut secret = SecretBytes::new(body);
        self.decrypt_in_place(&parts, secret.expose_secret_mut(), context)?;
        Ok(secret)
    }

    /// Opens `sealed` into `out`, which must be exactly `sealed.len() -
    /// OVERHEAD` bytes (for example a buffer a host language owns): the
    /// ciphertext is copied once into `out` and decrypted there, and
    /// `sealed` is left as it was. The counterpart of [`DataKey::seal_into`].
    /// On failure `out` is zeroed.
    pub fn open_into(
        &self,
        sealed: &[u8],
        out: &mut [u8],
        context: &SealContext<'_>,
    ) -> Result<()> {
        parse_header(sealed)?;
        let body_len = sealed.len() - OVERHEAD;
        if out.len() != body_len {
            return Err(Error::InvalidArgument(format!(
                "open_into needs an output of {body_len} bytes, got {}",
                out.len()
            )));
        }
        let parts = self.split(sealed)?;
        out.copy_from_slice(parts.ciphertext);
        let opened = self.decrypt_in_place(&parts, out, context);
        if opened.is_err() {
            zeroize::Zeroize::zeroize(out);
        }
        opened
    }

    /// Checks the framing of `sealed` and that this key's algorithm sealed
    /// it, and splits it into header, ciphertext and tag.
    fn split<'s>(&self, sealed: &'s [u8]) -> Result<SealedParts<'s>> {
        let (alg, _) = parse_header(sealed)?;
        if alg != self.algorithm {
            return Err(Error::DecryptionFailed);
        }
        let (head, rest) = sealed.split_at(HEADER_LEN);
        let (ciphertext, tag_bytes) = rest.split_at(rest.len() - TAG_LEN);
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(head);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(tag_bytes);
        Ok(SealedParts {
            header,
            ciphertext,
            tag,
        })
    }

    /// Decrypts `body`, a copy of `parts.ciphertext`, in place. On failure
    /// `body` may hold unauthenticated plaintext: the caller wipes it.
    fn decrypt_in_place(
        &self,
        parts: &SealedParts<'_>,
        body: &mut [u8],
        context: &SealContext<'_>,
    ) -> Result<()> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&parts.header[8..20]);
        context
            .with_aad(&parts.header, |aad| {
                self.key.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &parts.tag,
                    body,
                )
            })?
            .map(|_| ())
            .map_err(|_| Error::DecryptionFailed)
    }

    /// Opens in place; returns the plaintext as a slice of `buf`. On failure
    /// the buffer's contents are unspecified but hold no plaintext.
    pub fn open_in_place<'b>(
        &self,
        buf: &'b mut [u8],
        context: &SealContext<'_>,
    ) -> Result<&'b mut [u8]> {
        let (alg, _) = parse_header(buf)?;
        if alg != self.algorithm {
            return Err(Error::DecryptionFailed);
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&buf[..HEADER_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[8..20]);
        // `parse_header` checked that the header and the tag fit.
        let body_len = buf.len() - OVERHEAD;
        let (body, tag) = buf[HEADER_LEN..].split_at_mut(body_len);
        context
            .with_aad(&header, |aad| {
                self.key.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    tag,
                    body,
                )
            })?
            .map_err(|_| Error::DecryptionFailed)
    }
}

/// Nonces drawn per OS random call.
const NONCES_PER_REFILL: usize = 64;

/// How a pool notices that it now lives in a forked child. Both checks run
/// on every draw: the process id catches every fork (including those that
/// skip `pthread_atfork` handlers); the atfork counter, where the handler
/// could be registered, is kept as a second, independent signal.
struct ForkCheck {
    /// The process the pool's nonces were drawn in.
    pid: u32,
    /// A counter bumped by a `pthread_atfork` child handler, if registered.
    atfork: Option<forkguard::atfork::Guard>,
}

impl ForkCheck {
    fn new() -> Self {
        Self {
            pid: std::process::id(),
            atfork: forkguard::atfork::Guard::try_new().ok(),
        }
    }

    /// True once in a process other than the one of the last call.
    fn forked(&mut self) -> bool {
        // Both checks always run (no short-circuit), so each keeps its own
        // state current.
        let atfork = self.atfork.as_mut().is_some_and(|g| g.detected_fork());
        let now = std::process::id();
        let moved = std::mem::replace(&mut self.pid, now) != now;
        atfork | moved
    }
}

struct NoncePool {
    fork: ForkCheck,
    next: usize,
    buf: [u8; NONCE_LEN * NONCES_PER_REFILL],
}

impl NoncePool {
    /// Discards every unused nonce (so none can be handed out again).
    fn discard(&mut self) {
        self.buf.fill(0);
        self.next = NONCES_PER_REFILL;
    }
}

thread_local! {
    static NONCES: RefCell<Option<NoncePool>> = const { RefCell::new(None) };
}

/// A fresh random 96-bit nonce from the per-thread pool. The pool is refilled
/// from the OS when empty, and its unused nonces are discarded when it finds
/// itself in a process other than the one that filled it (checked on every
/// draw), so a parent and its child never hand out the same nonce.
fn next_nonce() -> Result<[u8; NONCE_LEN]> {
    NONCES.with(|slot| {
        let mut slot = slot.borrow_mut();
        let pool = slot.get_or_insert_with(|| NoncePool {
            fork: ForkCheck::new(),
            next: NONCES_PER_REFILL,
            buf: [0; NONCE_LEN * NONCES_PER_REFILL],
        });
        if pool.fork.forked() {
            pool.discard();
        }
        if pool.next >= NONCES_PER_REFILL {
            if SystemRandom::new().fill(&mut pool.buf).is_err() {
                pool.discard();
                return Err(Error::Random);
            }
            pool.next = 0;
        }
        let i = pool.next * NONCE_LEN;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&pool.buf[i..i + NONCE_LEN]);
        // Forget the used nonce so it cannot be handed out again.
        pool.buf[i..i + NONCE_LEN].fill(0);
        pool.next += 1;
        Ok(nonce)
    })
}

#[cfg(test)]
mod tests;
