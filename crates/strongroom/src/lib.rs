//! # Strongroom
//!
//! An embeddable secrets manager: secrets sealed at rest under a versioned
//! keyring whose root key can live in an HSM, leases that expire, rotation
//! that never breaks traffic, least-privilege policies and a tamper-evident
//! audit trail, all inside your process.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod authorized;
pub mod backoff;
pub mod changes;
pub mod clock;
pub mod dangerous;
pub mod declarative;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handle;
#[cfg(any(test, feature = "testing"))]
pub mod hostile;
#[cfg(feature = "tls")]
mod https;
pub mod keyring;
pub mod lease;
pub mod metrics;
pub mod path;
pub mod pem;
pub mod policy;
pub mod protector;
pub mod rotation;
pub mod seal;
mod secret;
pub mod secrets;
pub mod shamir;
pub mod signing;
pub mod storage;
mod vault;

pub use error::{
    ERROR_CODES, Error, ErrorCode, ErrorDetails, FieldSpec, FieldType, FieldValue, KeyFileError,
    PathError, ProtectorErrorKind, RESERVED_FIELD_NAMES, ROOT_CLASS, Result, StorageErrorKind,
};
pub use handle::Handle;
pub use secret::{SecretBytes, SecretString};
pub use vault::{
    BARRIER_CONTEXT_VERSION, Barrier, KEYRING_GENERATION, KEYRING_RECORD, Options, REWRAP_CURSOR,
    ROOT_KEY_RECORD, ROOT_UPGRADE_GRACE, ROOT_UPGRADE_RECORD, RecordCheck, RewrapObserver,
    RewrapProgress, RewrapReport, SEALED_PREFIX, SealedRecord, Strongroom, WrappedRootKey,
    is_pre_unseal,
};
