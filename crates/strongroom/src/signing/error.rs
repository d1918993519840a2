//! The signing errors.

use std::time::Duration;

use super::KeyType;

/// Errors of the signing keys. None of them quotes a key, a message or a
/// signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// No signing key has this name.
    #[error("no signing key named {key:?}; create it first")]
    UnknownKey {
        /// The key's name.
        key: String,
    },
    /// A signing key of this name exists already (perhaps created a moment
    /// ago by another process).
    #[error("signing key {key:?} exists already; rotate it to get a new version")]
    KeyExists {
        /// The key's name.
        key: String,
    },
    /// The key has no such version.
    #[error("signing key {key:?} has no version {version}: its versions are 1..={latest}")]
    UnknownVersion {
        /// The key's name.
        key: String,
        /// The version asked for.
        version: u32,
        /// The newest version.
        latest: u32,
    },
    /// The version is below the key's minimum verify version: signatures
    /// made with it no longer verify.
    #[error(
        "signing key {key:?} version {version} is retired: the minimum verify version is {min_verify_version}"
    )]
    VersionRetired {
        /// The key's name.
        key: String,
        /// The version asked for.
        version: u32,
        /// The key's minimum verify version.
        min_verify_version: u32,
    },
    /// The operation needs another type of key (Ethereum signatures need a
    /// secp256k1 key).
    #[error("signing key {key:?} is {key_type}; {operation} needs a {needed} key")]
    WrongKeyType {
        /// The key's name.
        key: String,
        /// The key's type.
        key_type: KeyType,
        /// The operation refused.
        operation: &'static str,
        /// The type it needs.
        needed: KeyType,
    },
    /// The key's rate limit is exhausted in this process.
    #[error("signing key {key:?} is rate limited; retry after {} ms", retry_after.as_millis())]
    RateLimited {
        /// The key's name.
        key: String,
        /// When a signature will be allowed again, at the earliest.
        retry_after: Duration,
    },
    /// A signature's text form or bytes cannot be parsed.
    #[error("malformed signature: {reason}")]
    BadSignatureEncoding {
        /// What is wrong.
        reason: &'static str,
    },
    /// The key's record changed under this call (another process rotated or
    /// reconfigured it); re-read and retry.
    #[error("signing key {key:?} changed concurrently; retry")]
    Conflict {
        /// The key's name.
        key: String,
    },
    /// A stored private key cannot be opened or parsed.
    #[error("signing key {key:?} version {version} cannot be loaded: {reason}")]
    CorruptKey {
        /// The key's name.
        key: String,
        /// The version.
        version: u32,
        /// What is wrong (never key material).
        reason: &'static str,
    },
    /// The key's metadata record cannot be read.
    #[error("the record of signing key {key:?} is corrupt: {reason}")]
    CorruptRecord {
        /// The key's name.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The minimum verify version can only be raised, up to the newest
    /// version.
    #[error(
        "signing key {key:?}: minimum verify version {requested} refused (it is {current}, the newest version is {latest}); it can only be raised, up to the newest version"
    )]
    InvalidMinVerifyVersion {
        /// The key's name.
        key: String,
        /// The version asked for.
        requested: u32,
        /// The current minimum verify version.
        current: u32,
        /// The newest version.
        latest: u32,
    },
    /// A rate limit that cannot be enforced (zero rate or burst).
    #[error("invalid rate limit: {reason}")]
    InvalidRateLimit {
        /// What is wrong.
        reason: &'static str,
    },
    /// An EIP-155 chain id whose `v` (`chain_id * 2 + 35 + recovery id`)
    /// does not fit in 64 bits, or zero.
    #[error("invalid chain id {chain_id}: use 1 up to (2^64 - 37) / 2, rounded down")]
    InvalidChainId {
        /// The chain id given.
        chain_id: u64,
    },
}
