//! # Strongroom
//!
//! An embeddable secrets manager: secrets sealed at rest under a versioned
//! keyring whose root key can live in an HSM, leases that expire, rotation
//! that never breaks traffic, least-privilege policies and a tamper-evident
//! audit trail, all inside your process.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod clock;
mod error;
pub mod keyring;
pub mod lease;
pub mod policy;
pub mod protector;
pub mod rotation;
pub mod seal;
pub mod secrets;
mod secret;
pub mod shamir;
pub mod storage;

pub use error::{
    Error, KeyFileError, PathError, ProtectorErrorKind, Result, StorageErrorKind,
};
pub use secret::{SecretBytes, SecretString};
