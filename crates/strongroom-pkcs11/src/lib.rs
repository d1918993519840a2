//! # strongroom-pkcs11
//!
//! A [`KeyProtector`] that keeps the key wrapping Strongroom's root key inside
//! a PKCS#11 token (an HSM, a smart card, or SoftHSM2 for tests). The token
//! key is an AES-256 secret key generated in the token, marked sensitive and
//! not extractable: the root key is sent to the token to be wrapped and comes
//! back unwrapped, but the token key never leaves it.
//!
//! ```no_run
//! # async fn demo() -> strongroom::Result<()> {
//! use strongroom::{SecretBytes, SecretString};
//! use strongroom::protector::KeyProtector;
//! use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector};
//!
//! let pin = SecretString::from("1234"); // from your secret source, never a literal
//! let config = Pkcs11Config::new("/usr/lib/softhsm/libsofthsm2.so", "strongroom", pin, "root-kek");
//! let hsm = Pkcs11Protector::init_key(config).await?; // once; later Pkcs11Protector::open
//! let root = SecretBytes::random(32)?;
//! let wrapped = hsm.wrap(&root).await?;
//! assert_eq!(hsm.unwrap(&wrapped).await?, root);
//! # Ok(()) }
//! ```
//!
//! ## Mechanisms
//! The token key wraps the root key with `CKM_AES_GCM` encryption when the
//! token offers it (authenticated, and the blob header is bound as
//! associated data), else with `CKM_AES_KEY_WRAP_PAD` (RFC 5649) through
//! `C_WrapKey`/`C_UnwrapKey`. [`Pkcs11Protector::mechanism`] says which was
//! chosen and [`Pkcs11Protector::token_mechanisms`] lists what the token
//! offers.
//!
//! ## Wrapped blob (format version 1)
//! `version (1) || mechanism (1) || key version (u32 BE) || label length (1)
//! || label || body`, where the body is `IV (12) || ciphertext || tag (16)`
//! for AES-GCM (associated data: everything before the body) and the
//! RFC 5649 output for key wrap with padding.
//!
//! ## Process-wide state
//! One PKCS#11 context per module per process (`C_Initialize` runs once),
//! one pool of logged-in sessions per token; every call into the module runs
//! on `tokio::task::spawn_blocking`.
#![deny(missing_docs)]
// This crate contains no unsafe code of its own: cryptoki wraps the FFI.
#![forbid(unsafe_code)]

mod blob;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod protector;
mod token;

pub use config::{Pkcs11Config, TokenKeyInfo, WrapMechanism};
pub use protector::Pkcs11Protector;
#[cfg(doc)]
use strongroom::protector::KeyProtector;
