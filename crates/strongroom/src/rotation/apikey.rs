//! The generic API-key rotator and the verifier that accepts current and
//! previous keys during the overlap.

use std::sync::RwLock;

use async_trait::async_trait;
use ring::hmac;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::{Credential, RotationContext, Rotator, StagedCredentials, TargetError};
use crate::{Error, Result, SecretBytes};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// How the random part of an API key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiKeyEncoding {
    /// `n` characters from `0-9A-Za-z` (about 5.95 bits each).
    Base62 {
        /// Number of characters.
        chars: usize,
    },
    /// `n` random bytes as lower-case hex (`2n` characters).
    Hex {
        /// Number of random bytes.
        bytes: usize,
    },
}

/// The format of generated API keys: a fixed, non-secret prefix and a
/// random part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyFormat {
    /// The prefix, such as `sk_live_`.
    pub prefix: String,
    /// The random part.
    pub encoding: ApiKeyEncoding,
}

impl ApiKeyFormat {
    /// `prefix` followed by `chars` base62 characters (use at least 22 for
    /// 128 bits).
    pub fn base62(prefix: impl Into<String>, chars: usize) -> Self {
        Self {
            prefix: prefix.into(),
            encoding: ApiKeyEncoding::Base62 { chars },
        }
    }

    /// `prefix` followed by `bytes` random bytes in hex.
    pub fn hex(prefix: impl Into<String>, bytes: usize) -> Self {
        Self {
            prefix: prefix.into(),
            encoding: ApiKeyEncoding::Hex { bytes },
        }
    }

    /// Generates a key of this format.
    pub fn generate(&self) -> Result<SecretBytes> {
        let mut out = Zeroizing::new(self.prefix.as_bytes().to_vec());
        match self.encoding {
            ApiKeyEncoding::Hex { bytes } => {
                let raw = SecretBytes::random(bytes)?;
                for b in raw.expose_secret() {
                    out.push(hex_digit(b >> 4));
                    out.push(hex_digit(b & 0x0f));
                }
            }
            ApiKeyEncoding::Base62 { chars } => {
                // Rejection sampling: bytes >= 248 (= 4 * 62) are skipped so
                // every character is uniform.
                let mut need = chars;
                while need > 0 {
                    let raw = SecretBytes::random(need + need / 8 + 8)?;
                    for &b in raw.expose_secret() {
                        if need == 0 {
                            break;
                        }
                        if b < 248 {
                            out.push(BASE62[usize::from(b % 62)]);
                            need -= 1;
                        }
                    }
                }
            }
        }
        Ok(SecretBytes::new(std::mem::take(&mut *out)))
    }

    /// Whether `key` has this format (prefix, length, alphabet). Not
    /// constant-time in the key's length; use only to reject garbage early.
    pub fn matches(&self, key: &[u8]) -> bool {
        let Some(rest) = key.strip_prefix(self.prefix.as_bytes()) else {
            return false;
        };
        match self.encoding {
            ApiKeyEncoding::Hex { bytes } => {
                rest.len() == bytes * 2
                    && rest
                        .iter()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            }
            ApiKeyEncoding::Base62 { chars } => {
                rest.len() == chars && rest.iter().all(u8::is_ascii_alphanumeric)
            }
        }
    }
}

fn hex_digit(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'a' + n - 10 }
}

/// What a presented key matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Matched {
    /// The current key.
    Current,
    /// The previous key, still accepted during the grace period.
    Previous,
    /// Neither.
    NoMatch,
}

#[derive(Default)]
struct Slots {
    pending: Option<(u64, hmac::Tag)>,
    current: Option<(u64, hmac::Tag)>,
    previous: Option<(u64, hmac::Tag)>,
}

/// Verifies presented API keys against the current and previous versions,
/// in constant time: it keeps only HMACs of the keys (under a random
/// per-verifier key) and compares every slot without early exit.
pub struct ApiKeyVerifier {
    key: hmac::Key,
    slots: RwLock<Slots>,
}

impl std::fmt::Debug for ApiKeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (p, c, v) = self
            .slots
            .read()
            .map(|s| {
                (
                    s.pending.as_ref().map(|x| x.0),
                    s.current.as_ref().map(|x| x.0),
                    s.previous.as_ref().map(|x| x.0),
                )
            })
            .unwrap_or_default();
        f.debug_struct("ApiKeyVerifier")
            .field("pending", &p)
            .field("current", &c)
            .field("previous", &v)
            .finish_non_exhaustive()
    }
}

fn eq_tag(a: &Option<(u64, hmac::Tag)>, t: &hmac::Tag) -> Choice {
    match a {
        Some((_, s)) => s.as_ref().ct_eq(t.as_ref()),
        None => Choice::from(0),
    }
}

impl ApiKeyVerifier {
    /// An empty verifier (accepts nothing) with a fresh random HMAC key.
    pub fn new() -> Result<Self> {
        let raw = SecretBytes::random(32)?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, raw.expose_secret()),
            slots: RwLock::default(),
        })
    }

    /// A verifier loaded from the stored versions (in a process that
    /// verifies but does not rotate; call again after a rotation event).
    pub fn sync(&self, staged: &StagedCredentials) -> Result<()> {
        let tag = |c: &Option<Credential>| {
            c.as_ref().map(|c| {
                (
                    c.version(),
                    hmac::sign(&self.key, c.secret().expose_secret()),
                )
            })
        };
        let mut s = self.write()?;
        s.pending = tag(&staged.pending);
        s.current = tag(&staged.current);
        s.previous = tag(&staged.previous);
        Ok(())
    }

    /// Checks a presented key: current, previous (during the grace period)
    /// or no match. Constant-time with respect to the stored keys.
    pub fn verify(&self, presented: &[u8]) -> Matched {
        let t = hmac::sign(&self.key, presented);
        let Ok(s) = self.slots.read() else {
            return Matched::NoMatch;
        };
        let cur = eq_tag(&s.current, &t);
        let prev = eq_tag(&s.previous, &t);
        if bool::from(cur) {
            Matched::Current
        } else if bool::from(prev) {
            Matched::Previous
        } else {
            Matched::NoMatch
        }
    }

    /// The version a presented key belongs to if it is the staged pending key.
    fn has_pending(&self) -> bool {
        self.slots
            .read()
            .map(|s| s.pending.is_some())
            .unwrap_or(true)
    }

    fn is_pending(&self, presented: &[u8]) -> bool {
        let t = hmac::sign(&self.key, presented);
        self.slots
            .read()
            .map(|s| bool::from(eq_tag(&s.pending, &t)))
            .unwrap_or(false)
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Slots>> {
        self.slots
            .write()
            .map_err(|_| Error::InvalidArgument("api-key verifier lock poisoned".into()))
    }
}

/// Rotates API keys: generates keys of an [`ApiKeyFormat`], and keeps an
/// [`ApiKeyVerifier`] in step (the verifier is the "target system").
#[derive(Debug)]
pub struct ApiKeyRotator {
    format: ApiKeyFormat,
    verifier: std::sync::Arc<ApiKeyVerifier>,
}

impl ApiKeyRotator {
    /// A rotator generating `format` keys for `verifier`.
    pub fn new(format: ApiKeyFormat, verifier: std::sync::Arc<ApiKeyVerifier>) -> Self {
        Self { format, verifier }
    }
}

fn poisoned(_: Error) -> TargetError {
    TargetError::permanent("api-key verifier lock poisoned")
}

#[async_trait]
impl Rotator for ApiKeyRotator {
    fn kind(&self) -> &'static str {
        "api-key"
    }

    async fn create(
        &self,
        ctx: &RotationContext<'_>,
    ) -> std::result::Result<Credential, TargetError> {
        let key = self
            .format
            .generate()
            .map_err(|_| TargetError::transient("random number generator failed"))?;
        Ok(Credential::new(
            ctx.version,
            self.format.prefix.clone(),
            key,
        ))
    }

    async fn set(
        &self,
        _ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> std::result::Result<(), TargetError> {
        let tag = hmac::sign(&self.verifier.key, pending.secret().expose_secret());
        self.verifier.write().map_err(poisoned)?.pending = Some((pending.version(), tag));
        Ok(())
    }

    async fn test(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> std::result::Result<(), TargetError> {
        // `import_current` of a key issued before Strongroom managed it:
        // nothing was set, the key may predate the format, and the verifier
        // learns it when the engine promotes it.
        if ctx.current.is_none() && !self.verifier.has_pending() {
            return if pending.secret().expose_secret().is_empty() {
                Err(TargetError::permanent(
                    "an imported api key cannot be empty",
                ))
            } else {
                Ok(())
            };
        }
        if !self.format.matches(pending.secret().expose_secret()) {
            return Err(TargetError::permanent(
                "generated key does not match the format",
            ));
        }
        if self.verifier.is_pending(pending.secret().expose_secret()) {
            Ok(())
        } else {
            Err(TargetError::transient(
                "the verifier does not know the pending key",
            ))
        }
    }

    async fn promote(
        &self,
        _ctx: &RotationContext<'_>,
        promoted: &Credential,
    ) -> std::result::Result<(), TargetError> {
        let mut s = self.verifier.write().map_err(poisoned)?;
        if s.current.as_ref().map(|c| c.0) == Some(promoted.version()) {
            return Ok(()); // already promoted (repeated after a crash)
        }
        let tag = hmac::sign(&self.verifier.key, promoted.secret().expose_secret());
        s.previous = s.current.take();
        s.current = Some((promoted.version(), tag));
        s.pending = None;
        Ok(())
    }

    async fn rollback(
        &self,
        _ctx: &RotationContext<'_>,
        failed: &Credential,
    ) -> std::result::Result<(), TargetError> {
        let mut s = self.verifier.write().map_err(poisoned)?;
        if s.pending.as_ref().map(|p| p.0) == Some(failed.version()) {
            s.pending = None;
        }
        Ok(())
    }

    async fn revoke(
        &self,
        _ctx: &RotationContext<'_>,
        old: &Credential,
    ) -> std::result::Result<(), TargetError> {
        let mut s = self.verifier.write().map_err(poisoned)?;
        if s.previous.as_ref().map(|p| p.0) == Some(old.version()) {
            s.previous = None;
        }
        Ok(())
    }
}
