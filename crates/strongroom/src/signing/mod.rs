//! Signing keys that never leave: named, versioned Ed25519, ECDSA P-256
//! and secp256k1 (Ethereum) keys, created inside from the operating
//! system's random generator, sealed at rest, and used only to sign. What
//! leaves is signatures and public keys (raw, SubjectPublicKeyInfo DER or
//! PEM, and for secp256k1 the Ethereum address), nothing else.
//!
//! - **Versions.** A key signs with its newest version;
//!   [`SigningKeys::rotate_key`] adds one. Signatures carry the version that
//!   made them and verify with any version from the key's minimum verify
//!   version up, which the owner raises
//!   ([`SigningKeys::set_min_verify_version`]) to retire old versions: their
//!   signatures then fail with [`SigningError::VersionRetired`].
//! - **Signatures.** Ed25519: 64 bytes (RFC 8032). ECDSA P-256 with
//!   SHA-256: ASN.1 DER (randomised by `ring`). secp256k1: over the
//!   Keccak-256 of the message, 65 bytes `r || s || recovery id` with low
//!   `s` (RFC 6979, deterministic). Ethereum signatures
//!   ([`SigningKeys::eth_sign_personal_message`] for EIP-191 personal
//!   messages, [`SigningKeys::eth_sign_transaction_hash`] for EIP-155
//!   transaction hashes) come back as an [`EthSignature`] (`r`, `s`, `v`).
//!   A [`Signature`]'s text form is `strongroom:v<version>:<base64>`.
//! - **Rate limits.** A key may carry a token bucket ([`RateLimit`]:
//!   `per_second` and `burst`, stored in its record). Each
//!   [`SigningKeys`] enforces it on its own, timed by the store's
//!   [`Clock`](crate::clock::Clock): two processes each get the full rate.
//!   A signature over the limit fails with [`SigningError::RateLimited`]
//!   and its `retry_after`.
//! - **Principals.** [`Handle::signing`](crate::Handle::signing) gives a
//!   [`SigningHandle`] whose calls are checked against the principal's
//!   policies on the key's name as a path and audited; every signature
//!   needs the `sign` capability and its audit records carry a keyed HMAC
//!   of what was signed (field `message_hmac`), never the message.
//!
//! Storage layout for a key named `name` (see `docs/FORMAT.md`):
//!
//! - `sign/<name>`: the metadata record (a barrier record, JSON, format
//!   1): key type, newest and minimum verify versions, each version's
//!   creation time and public key, the rate limit;
//! - `s/sign/<name>/v/<n>`: version `n`'s private key, sealed with context
//!   (`sign/<name>`, `n`).
//!
//! Every change is one conditional batch over the metadata record, so
//! concurrent creators in several processes get one winner (the others
//! [`SigningError::KeyExists`]) and concurrent rotations one winner (the
//! others [`SigningError::Conflict`]). Signing re-reads the metadata record
//! each time, so another process's rotation signs from the next call on;
//! parsed private keys are cached per version (versions never change).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use strongroom::audit::MemorySink;
//! use strongroom::policy::{Policy, Principal};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::signing::{KeyOptions, KeyType, Signature};
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Options, SecretBytes, Strongroom};
//!
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, Options::default()).await?;
//! let audit = Arc::new(sr.open_audit_log(vec![Arc::new(MemorySink::new())], None).await?);
//! let keys = Arc::new(sr.dangerous("setup", &audit).await?.signing_keys());
//!
//! let policy = Policy::from_toml_str(r#"
//!     name = "release"
//!     [[path]]
//!     pattern = "release/*"
//!     capabilities = ["create", "sign", "read", "rotate"]
//! "#)?;
//! let signer = sr.as_principal(Principal::new("ci", [&policy]), audit.clone()).signing(&keys);
//!
//! signer.create_key("release/artifacts", KeyType::Ed25519, KeyOptions::default()).await?;
//! let sig = signer.sign("release/artifacts", b"artifact bytes").await?;
//! assert!(sig.to_text().starts_with("strongroom:v1:"));
//! let parsed: Signature = sig.to_text().parse()?;
//! assert!(signer.verify("release/artifacts", b"artifact bytes", &parsed).await?);
//! assert!(!signer.verify("release/artifacts", b"other bytes", &parsed).await?);
//!
//! // only the public key leaves
//! let public = signer.public_key("release/artifacts", None).await?;
//! assert_eq!(public.raw().len(), 32);
//! assert!(public.spki_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Files
//!
//! `model` (key types, options, information, signatures, public keys),
//! `record` (the stored records), `material` (generating, parsing and
//! using key material), `engine` ([`SigningKeys`]), `eth` (Ethereum
//! hashes, `v` and addresses), `limits` (rate limits), `error`, and the
//! tests: `tests` (behaviour) and `vectors` (published test vectors).

mod engine;
mod error;
mod eth;
mod limits;
mod material;
mod model;
mod record;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

pub use crate::authorized::SigningHandle;
pub use engine::SigningKeys;
pub use error::SigningError;
pub use eth::{keccak256, personal_message_hash};
pub use model::{
    EthSignature, KeyInfo, KeyOptions, KeyType, KeyVersionInfo, PublicKey, RateLimit, Signature,
};

/// Storage prefix of the keys' metadata records (barrier records).
pub const META_PREFIX: &str = "sign/";
/// Storage prefix of the keys' sealed private keys.
pub const SEALED_KEY_PREFIX: &str = "s/sign/";
/// The audit field holding the keyed HMAC of what was signed or verified.
pub const MESSAGE_HMAC_FIELD: &str = "message_hmac";
