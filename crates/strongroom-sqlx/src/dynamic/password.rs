//! The credential handed out: a random password, and the SCRAM-SHA-256
//! verifier the server receives instead of it.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;
use strongroom::SecretString;

use super::error::PgDynResult;

pub(super) const PASSWORD_LEN: usize = 32;
const SCRAM_ITERATIONS: u32 = 4096;

/// A dynamic role's login. The password is shown only by
/// [`SecretString::expose_secret`]; `Debug` redacts it.
pub struct PgCredential {
    /// The generated role name.
    pub username: String,
    /// The generated password.
    pub password: SecretString,
}

impl fmt::Debug for PgCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCredential")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// 32 characters from `A-Z a-z 0-9` (about 190 bits), safe in URLs.
pub(super) fn random_password() -> PgDynResult<SecretString> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        ring::rand::SecureRandom::fill(&rng, &mut buf).map_err(|_| strongroom::Error::Random)?;
        for &b in &buf {
            // 248 = 4 * 62: reject the rest so every character is equally likely.
            if b < 248
                && out.len() < PASSWORD_LEN
                && let Some(&c) = ALPHABET.get(usize::from(b % 62))
            {
                out.push(char::from(c));
            }
        }
        zeroize_array(&mut buf);
    }
    Ok(SecretString::new(out))
}

fn zeroize_array(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        *b = 0;
    }
    std::hint::black_box(buf);
}

/// A SCRAM-SHA-256 verifier as PostgreSQL stores it
/// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802 /
/// RFC 7677). The password is ASCII, which SASLprep leaves as it is.
pub(super) fn scram_verifier(password: &SecretString) -> PgDynResult<SecretString> {
    use ring::{digest, hmac, pbkdf2};
    let rng = ring::rand::SystemRandom::new();
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut salt).map_err(|_| strongroom::Error::Random)?;
    let iterations = NonZeroU32::new(SCRAM_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.expose_secret().as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    zeroize_array(&mut salted);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(SecretString::new(format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key.as_ref()),
        b64.encode(server_key.as_ref())
    )))
}
