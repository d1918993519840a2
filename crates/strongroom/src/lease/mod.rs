//! Leases: everything that expires.
//!
//! A [`Lease`] records something an engine handed out (a database role, a
//! token, a certificate) together with when it must end and the data its
//! engine needs to take it back. The [`LeaseManager`] issues, renews and
//! revokes leases, revokes them on expiry through the [`Revoker`] registered
//! for their engine, retries failed revocations with exponential backoff and
//! jitter, marks a lease [`LeaseState::Irrevocable`] after a bounded number of
//! attempts, and tells subscribers what happened ([`LeaseEvent`]).
//!
//! # Storage layout
//!
//! Everything goes through [`Storage`](crate::storage::Storage), each change
//! in one atomic batch:
//!
//! | key | value |
//! | --- | --- |
//! | `lease/<id>` | the lease record (a version byte, then postcard) |
//! | `lease-due/<time bucket, 16 hex>/<shard, 2 hex>` | the expiry index: packed `(due time, id)` entries of one ~65 s bucket and shard |
//! | `lease-path/<path>/<id>` | empty: the path index, for prefix revocation and listing |
//! | `lease-count/<path>` | live leases under that exact path (u64, big-endian) |
//!
//! A lease's due time is when it next needs attention: its expiring-soon
//! time, then its expiry, then (while revocation is being retried) its next
//! try. On start, [`LeaseManager::restore`] reads only the index segments
//! due within the restore horizon and the per-path counts; later leases are
//! loaded as the horizon moves. (Stores written before the packed index,
//! with one `lease-exp/<due>/<id>` key per lease, are converted on the first
//! restore, in atomic batches that can be re-run after a crash.) Memory holds 24 bytes per due-soon lease in
//! an [`ExpiryIndex`]; full lease records are read from storage when needed.
//!
//! One manager should own a given storage at a time.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::clock::{ManualClock, Timestamp};
//! use strongroom::lease::{Lease, LeaseConfig, LeaseManager, Revoker};
//! use strongroom::storage::MemoryStorage;
//!
//! #[derive(Debug)]
//! struct Noop;
//! #[async_trait::async_trait]
//! impl Revoker for Noop {
//!     async fn revoke(&self, _lease: &Lease) -> strongroom::Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
//! let manager = LeaseManager::new(Arc::new(MemoryStorage::new()), clock.clone(), LeaseConfig::default())?;
//! manager.register_revoker("noop", Arc::new(Noop));
//! let lease = manager
//!     .issue("noop/creds/app", "noop", Duration::from_secs(60), Duration::from_secs(300), true, Vec::new())
//!     .await?;
//! clock.advance(Duration::from_secs(61));
//! let report = manager.run_due().await?;
//! assert_eq!(report.revoked, 1);
//! assert!(manager.lookup(lease.id()).await.is_err());
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```

mod index;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, OnceCell, broadcast};

pub use index::ExpiryIndex;

use crate::clock::{Clock, Timestamp};
use crate::storage::{BatchOp, DynStorage};
use crate::{Error, PathError, Result};

const RECORD_VERSION: u8 = 1;
const REC_PREFIX: &str = "lease/";
/// The index layout before packed segments (converted on restore).
const LEGACY_EXP_PREFIX: &str = "lease-exp/";
const PATH_PREFIX: &str = "lease-path/";
const COUNT_PREFIX: &str = "lease-count/";
const ID_PREFIX: &str = "lease_";
const SCAN_PAGE: usize = 4096;
const MAX_PATH_LEN: usize = 512;
const MAX_PATH_DEPTH: usize = 32;
const MAX_ENGINE_LEN: usize = 64;

/// Errors of the leases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// No lease with this id exists (never issued, or already revoked).
    #[error("lease {id} not found: it was never issued or has been revoked")]
    NotFound {
        /// The lease id.
        id: LeaseId,
    },

    /// The text is not a lease id.
    #[error("invalid lease id {text:?}: expected 'lease_' followed by 32 lower-case hex digits")]
    InvalidId {
        /// The text as given (ids are not secret).
        text: String,
    },

    /// The lease was issued as not renewable.
    #[error("lease {id} is not renewable; request a new lease instead")]
    NotRenewable {
        /// The lease id.
        id: LeaseId,
    },

    /// The lease has already expired; it will be (or is being) revoked.
    #[error("lease {id} expired at {expired_at}; request a new lease instead")]
    Expired {
        /// The lease id.
        id: LeaseId,
        /// When it expired.
        expired_at: Timestamp,
    },

    /// The lease is being revoked or is irrevocable, so it cannot be renewed.
    #[error("lease {id} is {state} and cannot be renewed; request a new lease instead")]
    NotActive {
        /// The lease id.
        id: LeaseId,
        /// Its state.
        state: LeaseState,
    },

    /// Issuing would exceed a lease quota.
    #[error(
        "lease quota exceeded: {scope} allows {limit} live lease(s) and {count} exist; revoke leases or raise the quota"
    )]
    QuotaExceeded {
        /// Which quota refused the lease.
        scope: QuotaScope,
        /// The quota's limit.
        limit: u64,
        /// Live leases counted against it now.
        count: u64,
    },

    /// No revoker is registered for the lease's engine.
    #[error("no revoker is registered for engine {engine:?}; call register_revoker first")]
    NoRevoker {
        /// The engine name.
        engine: String,
    },

    /// A TTL argument cannot be used.
    #[error("invalid ttl: {reason}")]
    InvalidTtl {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An engine name cannot be used.
    #[error(
        "invalid engine name {engine:?}: use 1 to {MAX_ENGINE_LEN} characters from a-z, 0-9, '-', '_'"
    )]
    InvalidEngine {
        /// The engine name as given.
        engine: String,
    },

    /// The engine failed to revoke the lease; the manager retries it later.
    #[error(
        "revoking lease {id} failed (attempt {attempts}): {reason}; the manager retries at {next_try}"
    )]
    RevocationDeferred {
        /// The lease id.
        id: LeaseId,
        /// Failed attempts so far.
        attempts: u32,
        /// When the manager tries again.
        next_try: Timestamp,
        /// The engine's error message.
        reason: String,
    },

    /// Revocation failed too often: the lease is irrevocable until revoked
    /// again successfully or forced with [`LeaseManager::force_revoke`].
    #[error(
        "lease {id} is irrevocable after {attempts} failed revocation attempts ({reason}); fix the engine and revoke again, or force_revoke it"
    )]
    Irrevocable {
        /// The lease id.
        id: LeaseId,
        /// Failed attempts so far.
        attempts: u32,
        /// The engine's last error message.
        reason: String,
    },

    /// A revoker failed for a reason of its own (a binding's callback threw,
    /// a target system refused). Revokers return this; the manager turns it
    /// into a retry and, after too many, [`LeaseError::Irrevocable`].
    #[error("the revoker of engine {engine:?} failed: {reason}")]
    RevokerFailed {
        /// The engine name.
        engine: String,
        /// What went wrong (never a secret).
        reason: String,
    },
}

/// The quota a refused lease ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaScope {
    /// The store-wide limit, [`LeaseConfig::max_leases`].
    Total,
    /// A [`PrefixQuota`] on a path prefix.
    Prefix(String),
}

impl fmt::Display for QuotaScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Total => f.write_str("the store-wide quota"),
            Self::Prefix(p) => write!(f, "the quota on prefix {p:?}"),
        }
    }
}

/// A lease id: 128 random bits, written `lease_` and 32 lower-case hex digits.
///
/// Ids are unguessable but not secret: they may appear in logs and audit
/// records. They are never derived from secrets.
///
/// ```
/// use strongroom::lease::LeaseId;
/// let id: LeaseId = "lease_000000000000000000000000000000ff".parse()?;
/// assert_eq!(id.as_u128(), 255);
/// assert_eq!(id.to_string(), "lease_000000000000000000000000000000ff");
/// # Ok::<(), strongroom::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(u128);

impl LeaseId {
    /// A fresh id from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        let mut b = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .map_err(|_| Error::Random)?;
        Ok(Self(u128::from_be_bytes(b)))
    }

    /// From the numeric form.
    pub const fn from_u128(v: u128) -> Self {
        Self(v)
    }

    /// The numeric form.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ID_PREFIX}{:032x}", self.0)
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for LeaseId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || LeaseError::InvalidId {
            text: s.chars().take(80).collect(),
        };
        let hex = s.strip_prefix(ID_PREFIX).ok_or_else(bad)?;
        if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad().into());
        }
        u128::from_str_radix(hex, 16)
            .map(Self)
            .map_err(|_| bad().into())
    }
}

/// Where a lease is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LeaseState {
    /// Live and usable until it expires.
    Active,
    /// Expired or revoked, and the engine has failed to revoke it so far.
    Revoking {
        /// Failed attempts so far.
        attempts: u32,
        /// When the manager tries again.
        next_try: Timestamp,
    },
    /// The engine confirmed the revocation (the record is then deleted, so
    /// this state is only seen on values returned by revoke calls).
    Revoked,
    /// Revocation failed too often; needs an operator (revoke or force).
    Irrevocable {
        /// Failed attempts.
        attempts: u32,
    },
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Active => f.write_str("active"),
            Self::Revoking { attempts, next_try } => {
                write!(
                    f,
                    "being revoked ({attempts} failed attempt(s), next at {next_try})"
                )
            }
            Self::Revoked => f.write_str("revoked"),
            Self::Irrevocable { attempts } => {
                write!(f, "irrevocable after {attempts} failed attempt(s)")
            }
        }
    }
}

/// A lease: something an engine handed out, and when and how to take it back.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    id: LeaseId,
    path: String,
    engine: String,
    issued_at: Timestamp,
    ttl: Duration,
    max_ttl: Duration,
    expires_at: Timestamp,
    expiring_soon_at: Timestamp,
    warned: bool,
    renewable: bool,
    state: LeaseState,
    revocation_data: Vec<u8>,
}

impl fmt::Debug for Lease {
    // Revocation data is the engine's business (a role name, a serial
    // number); print only its size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("engine", &self.engine)
            .field("issued_at", &self.issued_at)
            .field("ttl", &self.ttl)
            .field("max_ttl", &self.max_ttl)
            .field("expires_at", &self.expires_at)
            .field("renewable", &self.renewable)
            .field("state", &self.state)
            .field(
                "revocation_data",
                &format_args!("[{} bytes]", self.revocation_data.len()),
            )
            .finish()
    }
}

impl Lease {
    /// The lease id.
    pub fn id(&self) -> LeaseId {
        self.id
    }
    /// The path that issued it, e.g. `database/creds/readonly`.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The engine that revokes it.
    pub fn engine(&self) -> &str {
        &self.engine
    }
    /// When it was issued.
    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }
    /// The TTL it was issued with (at most the max TTL).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// The longest it may live, counted from issue.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }
    /// When it expires (moved by renewals).
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
    /// The latest expiry any renewal can reach: issue time plus max TTL.
    pub fn max_expires_at(&self) -> Timestamp {
        self.issued_at + self.max_ttl
    }
    /// When [`LeaseEvent::ExpiringSoon`] is sent for it.
    pub fn expiring_soon_at(&self) -> Timestamp {
        self.expiring_soon_at
    }
    /// Whether it may be renewed.
    pub fn renewable(&self) -> bool {
        self.renewable
    }
    /// Where it is in its life.
    pub fn state(&self) -> &LeaseState {
        &self.state
    }
    /// The engine's data for revoking it, stored as given.
    pub fn revocation_data(&self) -> &[u8] {
        &self.revocation_data
    }

    /// When the manager next has to look at this lease, if ever.
    fn due_at(&self) -> Option<Timestamp> {
        match self.state {
            LeaseState::Active if !self.warned && self.expiring_soon_at < self.expires_at => {
                Some(self.expiring_soon_at)
            }
            LeaseState::Active => Some(self.expires_at),
            LeaseState::Revoking { next_try, .. } => Some(next_try),
            LeaseState::Revoked | LeaseState::Irrevocable { .. } => None,
        }
    }

    /// Encodes the stored record: a version byte, then postcard.
    pub fn to_record_bytes(&self) -> Result<Vec<u8>> {
        let rec = RecordV1 {
            id: self.id.0,
            path: &self.path,
            engine: &self.engine,
            issued_at: self.issued_at,
            ttl_ms: millis(self.ttl),
            max_ttl_ms: millis(self.max_ttl),
            expires_at: self.expires_at,
            expiring_soon_at: self.expiring_soon_at,
            warned: self.warned,
            renewable: self.renewable,
            state: self.state.clone(),
            revocation_data: &self.revocation_data,
        };
        postcard::to_extend(&rec, vec![RECORD_VERSION])
            .map_err(|e| Error::InvalidArgument(format!("lease record does not encode: {e}")))
    }

    /// Decodes a stored record written by [`Lease::to_record_bytes`].
    pub fn from_record_bytes(bytes: &[u8]) -> Result<Self> {
        let key = "lease record";
        let (version, body) = bytes
            .split_first()
            .ok_or_else(|| Error::corrupt(key, "empty record"))?;
        if *version != RECORD_VERSION {
            return Err(Error::corrupt(
                key,
                format!("unknown lease record version {version}"),
            ));
        }
        let rec: RecordV1Owned = postcard::from_bytes(body)
            .map_err(|e| Error::corrupt(key, format!("lease record does not decode: {e}")))?;
        Ok(Self {
            id: LeaseId(rec.id),
            path: rec.path,
            engine: rec.engine,
            issued_at: rec.issued_at,
            ttl: Duration::from_millis(rec.ttl_ms),
            max_ttl: Duration::from_millis(rec.max_ttl_ms),
            expires_at: rec.expires_at,
            expiring_soon_at: rec.expiring_soon_at,
            warned: rec.warned,
            renewable: rec.renewable,
            state: rec.state,
            revocation_data: rec.revocation_data,
        })
    }
}

#[derive(Serialize)]
struct RecordV1<'a> {
    id: u128,
    path: &'a str,
    engine: &'a str,
    issued_at: Timestamp,
    ttl_ms: u64,
    max_ttl_ms: u64,
    expires_at: Timestamp,
    expiring_soon_at: Timestamp,
    warned: bool,
    renewable: bool,
    state: LeaseState,
    #[serde(with = "bytes_as_slice")]
    revocation_data: &'a [u8],
}

#[derive(Deserialize)]
struct RecordV1Owned {
    id: u128,
    path: String,
    engine: String,
    issued_at: Timestamp,
    ttl_ms: u64,
    max_ttl_ms: u64,
    expires_at: Timestamp,
    expiring_soon_at: Timestamp,
    warned: bool,
    renewable: bool,
    state: LeaseState,
    #[serde(with = "bytes_as_slice")]
    revocation_data: Vec<u8>,
}

/// Bytes as one serde byte string (length then raw bytes) rather than a
/// sequence of `u8` values: the same bytes in postcard, decoded in one copy.
mod bytes_as_slice {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_bytes(V)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Takes back what an engine handed out. One per engine, registered with
/// [`LeaseManager::register_revoker`].
///
/// Revocation must be idempotent: the manager may call `revoke` again for a
/// lease whose earlier revocation succeeded but could not be recorded (a
/// storage fault, a crash), and must then get `Ok`. Error messages must not
/// contain secrets: they are logged and reported in events.
#[async_trait]
pub trait Revoker: Send + Sync + fmt::Debug {
    /// Revokes what `lease` stands for, using its
    /// [`revocation_data`](Lease::revocation_data).
    async fn revoke(&self, lease: &Lease) -> Result<()>;

    /// Called before a renewal is recorded, so an engine can move its own
    /// expiry (PostgreSQL's `VALID UNTIL`) to `new_expiry`. An error refuses
    /// the renewal and leaves the lease as it was. The default does nothing.
    async fn renew(&self, lease: &Lease, new_expiry: Timestamp) -> Result<()> {
        let _ = (lease, new_expiry);
        Ok(())
    }
}

/// A limit on live leases under a path prefix (whole segments:
/// `database/creds` counts `database/creds/readonly`, not `database/credsx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixQuota {
    /// The path prefix.
    pub prefix: String,
    /// The most live leases allowed under it.
    pub max_leases: u64,
}

impl PrefixQuota {
    /// A quota of `max_leases` under `prefix`.
    pub fn new(prefix: impl Into<String>, max_leases: u64) -> Self {
        Self {
            prefix: prefix.into(),
            max_leases,
        }
    }
}

/// How failed revocations are retried.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Delay after the first failure; doubled after each further failure.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Random reduction of each delay, from 0.0 (none) to 1.0 (anywhere
    /// between zero and the full delay), so retries of many leases spread out.
    pub jitter: f64,
    /// Failed attempts after which a lease becomes irrevocable (at least 1).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: 0.2,
            max_attempts: 8,
        }
    }
}

/// Settings of a [`LeaseManager`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// The most live leases in the store (`None`: unlimited). Live means
    /// active, being revoked or irrevocable.
    pub max_leases: Option<u64>,
    /// Limits under path prefixes.
    pub prefix_quotas: Vec<PrefixQuota>,
    /// When [`LeaseEvent::ExpiringSoon`] is sent, as the fraction of the
    /// lease's TTL (from issue or last renewal) that has passed, in (0, 1);
    /// `None` sends none.
    pub expiring_soon_fraction: Option<f64>,
    /// Retries of failed revocations.
    pub retry: RetryPolicy,
    /// How far ahead of now the in-memory index reaches. Leases due later
    /// stay in storage only and are loaded as the horizon moves.
    pub restore_horizon: Duration,
    /// How long one call to a revoker may take before it counts as failed.
    pub revoke_timeout: Duration,
    /// Events buffered per subscriber before a slow one misses some.
    pub event_capacity: usize,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            max_leases: None,
            prefix_quotas: Vec::new(),
            expiring_soon_fraction: Some(0.75),
            retry: RetryPolicy::default(),
            restore_horizon: Duration::from_secs(600),
            revoke_timeout: Duration::from_secs(30),
            event_capacity: 1024,
        }
    }
}

impl LeaseConfig {
    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("lease config: {m}")));
        if let Some(f) = self.expiring_soon_fraction
            && !(f > 0.0 && f < 1.0)
        {
            return bad("expiring_soon_fraction must be between 0 and 1 (exclusive)");
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return bad("retry.jitter must be between 0.0 and 1.0");
        }
        if self.retry.max_attempts == 0 {
            return bad("retry.max_attempts must be at least 1");
        }
        if self.retry.base.is_zero() || self.retry.max < self.retry.base {
            return bad("retry.base must be positive and at most retry.max");
        }
        if self.restore_horizon < Duration::from_millis(2) {
            return bad("restore_horizon must be at least 2 ms");
        }
        if self.event_capacity == 0 {
            return bad("event_capacity must be at least 1");
        }
        for q in &self.prefix_quotas {
            if !q.prefix.is_empty() {
                validate_path(&q.prefix)?;
            }
        }
        Ok(())
    }
}

/// What happened to a lease. Events never carry revocation data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseEvent {
    /// A lease was issued.
    Issued {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// When it expires.
        expires_at: Timestamp,
    },
    /// A lease was renewed.
    Renewed {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// Its new expiry.
        expires_at: Timestamp,
        /// Whether the max TTL cut the renewal short.
        capped: bool,
    },
    /// The configured fraction of a lease's TTL has passed: refresh now.
    ExpiringSoon {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// When it expires.
        expires_at: Timestamp,
    },
    /// A lease was revoked.
    Revoked {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// Whether it was forced (the engine may not have revoked it).
        forced: bool,
    },
    /// Revocation failed too often; an operator must act.
    Irrevocable {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// Failed attempts.
        attempts: u32,
        /// The engine's last error message.
        reason: String,
    },
}

/// What [`LeaseManager::run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DueReport {
    /// Leases revoked.
    pub revoked: usize,
    /// Revocations that failed and were scheduled again.
    pub deferred: usize,
    /// Leases that became irrevocable.
    pub irrevocable: usize,
    /// Expiring-soon events sent.
    pub expiring_soon: usize,
    /// Entries whose processing hit a storage error (retried later).
    pub errors: usize,
}

/// What [`LeaseManager::revoke_prefix`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrefixRevocation {
    /// Leases revoked.
    pub revoked: Vec<LeaseId>,
    /// Leases whose revocation failed and is being retried or is irrevocable.
    pub pending: Vec<LeaseId>,
}

/// What [`LeaseManager::restore`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreStats {
    /// Index entries due within the horizon, now in memory.
    pub loaded: usize,
    /// Live leases in storage (from the per-path counts).
    pub live_leases: u64,
}

/// A snapshot of the manager's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStats {
    /// Index entries held in memory.
    pub in_memory: usize,
    /// Live leases in the store.
    pub live_leases: u64,
    /// Every lease due at or before this time is in memory.
    pub loaded_until: Timestamp,
}

/// The background expiry task of [`LeaseManager::spawn`]. Dropping the handle
/// stops the task.
#[derive(Debug)]
pub struct TaskHandle {
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TaskHandle {
    /// Whether the task has stopped.
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops the task and waits until it has stopped. A lease it was
    /// processing goes back into the manager's index, so the next
    /// [`LeaseManager::run_due`] picks it up.
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
            // The task never panics; a cancellation error is the expected
            // outcome.
            let _ = h.await;
        }
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

/// Puts a popped index entry back if its processing is abandoned (the
/// background task cancelled mid-way), so no due lease is forgotten.
struct Requeue<'a> {
    mem: &'a Mutex<Mem>,
    entry: Option<(Timestamp, LeaseId)>,
}

impl Drop for Requeue<'_> {
    fn drop(&mut self) {
        if let Some((t, id)) = self.entry.take() {
            self.mem
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .index
                .insert(t, id);
        }
    }
}

/// Validates a lease path: lower-case segments of `a-z`, `0-9`, `-`, `_`,
/// `.` separated by single slashes.
fn validate_path(path: &str) -> Result<()> {
    let err = |reason| {
        Err(Error::InvalidPath {
            path: path.chars().take(MAX_PATH_LEN).collect(),
            reason,
        })
    };
    if path.is_empty() {
        return err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return err(PathError::TooLong { max: MAX_PATH_LEN });
    }
    let mut depth = 0;
    for seg in path.split('/') {
        depth += 1;
        if seg.is_empty() {
            return err(PathError::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return err(PathError::DotSegment);
        }
        for c in seg.chars() {
            if c.is_ascii_uppercase() {
                return err(PathError::UpperCase);
            }
            if !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.') {
                return err(PathError::BadCharacter(c));
            }
        }
    }
    if depth > MAX_PATH_DEPTH {
        return err(PathError::TooDeep {
            max: MAX_PATH_DEPTH,
        });
    }
    Ok(())
}

fn validate_engine(engine: &str) -> Result<()> {
    if engine.is_empty()
        || engine.len() > MAX_ENGINE_LEN
        || !engine
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
    {
        return Err(LeaseError::InvalidEngine {
            engine: engine.chars().take(MAX_ENGINE_LEN).collect(),
        }
        .into());
    }
    Ok(())
}

/// Whether `path` lies under `prefix` by whole segments (`""` holds all).
fn under_prefix(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn rec_key(id: LeaseId) -> String {
    format!("{REC_PREFIX}{id}")
}

fn path_key(path: &str, id: LeaseId) -> String {
    format!("{PATH_PREFIX}{path}/{id}")
}

fn count_key(path: &str) -> String {
    format!("{COUNT_PREFIX}{path}")
}

/// Parses a legacy index key, `lease-exp/<16 hex>/lease_<32 hex>`.
fn parse_legacy_exp_key(key: &str) -> Option<(Timestamp, LeaseId)> {
    let (t, id) = key.strip_prefix(LEGACY_EXP_PREFIX)?.split_once('/')?;
    if t.len() != 16 {
        return None;
    }
    let t = u64::from_str_radix(t, 16).ok()?;
    Some((Timestamp::from_millis(t), id.parse().ok()?))
}

/// Index segments being rewritten in one batch: each is read once, on first
/// touch, and written back with a check that it is still as read (`write`
/// `None`: deleted once empty).
#[derive(Default)]
struct SegmentEdits {
    segments: std::collections::BTreeMap<String, ReadWrite>,
}

/// A segment's value as read and as it will be written.
type ReadWrite = (Option<Vec<u8>>, Option<Vec<u8>>);

impl SegmentEdits {
    /// The value to write for segment `key`, read from storage on first touch.
    async fn slot(&mut self, storage: &DynStorage, key: &str) -> Result<&mut Option<Vec<u8>>> {
        let read = if self.segments.contains_key(key) {
            None
        } else {
            Some(storage.get(key).await?)
        };
        let (_, write) = self.segments.entry(key.to_owned()).or_insert_with(|| {
            let read = read.flatten();
            (read.clone(), read)
        });
        Ok(write)
    }

    async fn add(&mut self, storage: &DynStorage, t: Timestamp, id: LeaseId) -> Result<()> {
        let key = segment::key(t, id);
        let write = self.slot(storage, &key).await?;
        *write = Some(segment::add(&key, write.take(), t, id)?);
        Ok(())
    }

    async fn remove(&mut self, storage: &DynStorage, t: Timestamp, id: LeaseId) -> Result<()> {
        let key = segment::key(t, id);
        let write = self.slot(storage, &key).await?;
        *write = segment::remove(&key, write.take(), t, id)?;
        Ok(())
    }

    fn push_ops(self, ops: &mut Vec<BatchOp>) {
        for (key, (read, write)) in self.segments {
            ops.push(BatchOp::expect(key.clone(), read));
            ops.push(match write {
                Some(v) => BatchOp::put(key, v),
                None => BatchOp::delete(key),
            });
        }
    }
}

/// In-memory bookkeeping, guarded by a std mutex never held across `.await`.
#[derive(Debug, Default)]
struct Mem {
    index: ExpiryIndex,
    loaded_until: Timestamp,
    path_counts: HashMap<String, u64>,
    total: u64,
    /// Parallel to `LeaseConfig::prefix_quotas`.
    quota_counts: Vec<u64>,
}

enum Change {
    Put(Lease),
    Delete,
}

enum Attempt {
    Revoked(Lease),
    Deferred {
        attempts: u32,
        next_try: Timestamp,
        reason: String,
    },
    Irrevocable {
        attempts: u32,
        reason: String,
    },
    Gone,
}

/// Issues, renews, revokes and expires leases.
#[derive(Debug)]
pub struct LeaseManager {
    storage: DynStorage,
    clock: Arc<dyn Clock>,
    config: LeaseConfig,
    revokers: RwLock<HashMap<String, Arc<dyn Revoker>>>,
    mem: Mutex<Mem>,
    /// Serialises storage changes so counts and index stay consistent.
    write: tokio::sync::Mutex<()>,
    restored: OnceCell<RestoreStats>,
    events: broadcast::Sender<LeaseEvent>,
    wake: Notify,
}

impl LeaseManager {
    /// A manager over `storage`. Call [`LeaseManager::restore`] before use
    /// (every operation restores on first use if it has not been called).
    pub fn new(storage: DynStorage, clock: Arc<dyn Clock>, config: LeaseConfig) -> Result<Self> {
        config.validate()?;
        let (events, _) = broadcast::channel(config.event_capacity);
        let mem = Mem {
            quota_counts: vec![0; config.prefix_quotas.len()],
            ..Mem::default()
        };
        Ok(Self {
            storage,
            clock,
            config,
            revokers: RwLock::new(HashMap::new()),
            mem: Mutex::new(mem),
            write: tokio::sync::Mutex::new(()),
            restored: OnceCell::new(),
            events,
            wake: Notify::new(),
        })
    }

    /// The manager's settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Registers (or replaces) the revoker for `engine`.
    pub fn register_revoker(&self, engine: impl Into<String>, revoker: Arc<dyn Revoker>) {
        self.revokers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(engine.into(), revoker);
    }

    /// A receiver of every lease event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LeaseEvent> {
        self.events.subscribe()
    }

    /// Bookkeeping figures.
    pub fn stats(&self) -> LeaseStats {
        let mem = self.mem();
        LeaseStats {
            in_memory: mem.index.len(),
            live_leases: mem.total,
            loaded_until: mem.loaded_until,
        }
    }

    fn mem(&self) -> MutexGuard<'_, Mem> {
        self.mem.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, event: LeaseEvent) {
        // No subscribers is not an error.
        let _ = self.events.send(event);
    }

    fn revoker(&self, engine: &str) -> Option<Arc<dyn Revoker>> {
        self.revokers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(engine)
            .cloned()
    }

    /// Loads the per-path counts and the index entries due within the
    /// restore horizon. Runs once; later calls return the first result.
    /// Leases being revoked when the previous process stopped are due at
    /// their next try, so their revocation continues.
    pub async fn restore(&self) -> Result<RestoreStats> {
        self.restored
            .get_or_try_init(|| self.load_initial())
            .await
            .copied()
    }

    async fn load_initial(&self) -> Result<RestoreStats> {
        let _w = self.write.lock().await;
        self.convert_legacy_index().await?;
        let mut counts = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage
                .scan(COUNT_PREFIX, after.as_deref(), SCAN_PAGE)
                .await?;
            let done = page.len() < SCAN_PAGE;
            for (key, value) in &page {
                let path = key.get(COUNT_PREFIX.len()..).unwrap_or_default();
                let n = <[u8; 8]>::try_from(value.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| Error::corrupt(key.clone(), "lease count is not 8 bytes"))?;
                counts.insert(path.to_owned(), n);
            }
            after = page.last_key();
            if done {
                break;
            }
        }
        let until = self.clock.now() + self.config.restore_horizon;
        let mut entries = Vec::new();
        self.scan_index(None, until, &mut entries).await?;
        let loaded = entries.len();
        let mut mem = self.mem();
        mem.index.extend(entries);
        mem.loaded_until = until;
        mem.total = counts.values().sum();
        mem.quota_counts = self
            .config
            .prefix_quotas
            .iter()
            .map(|q| {
                counts
                    .iter()
                    .filter(|(p, _)| under_prefix(p, &q.prefix))
                    .map(|(_, n)| n)
                    .sum()
            })
            .collect();
        mem.path_counts = counts;
        Ok(RestoreStats {
            loaded,
            live_leases: mem.total,
        })
    }

    /// Index entries after `from` (exclusive) up to `until` (inclusive).
    async fn scan_index(
        &self,
        from: Option<Timestamp>,
        until: Timestamp,
        out: &mut Vec<(Timestamp, LeaseId)>,
    ) -> Result<()> {
        let mut after = from.map(segment::scan_start);
        loop {
            let page = self
                .storage
                .scan(segment::DUE_PREFIX, after.as_deref(), SCAN_PAGE)
                .await?;
            let done = page.len() < SCAN_PAGE;
            for (key, value) in &page {
                let bucket = segment::bucket_of_key(key)
                    .ok_or_else(|| Error::corrupt(key.clone(), "bad lease index segment key"))?;
                if bucket > until.as_millis() {
                    return Ok(());
                }
                segment::decode_into(key, value, from, until, out)?;
            }
            after = page.last_key();
            if done {
                return Ok(());
            }
        }
    }

    /// Converts a store's legacy per-lease index keys into segments, one
    /// page at a time, each page in one atomic batch (segments checked
    /// unchanged, entries added once, legacy keys deleted), so a crash
    /// midway leaves a store this converts again correctly.
    async fn convert_legacy_index(&self) -> Result<()> {
        loop {
            let page = self
                .storage
                .scan(LEGACY_EXP_PREFIX, None, SCAN_PAGE)
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            let mut edits = SegmentEdits::default();
            let mut ops = Vec::with_capacity(page.len() + 16);
            for (key, _) in &page {
                let (t, id) = parse_legacy_exp_key(key)
                    .ok_or_else(|| Error::corrupt(key.clone(), "bad lease index key"))?;
                edits.add(&self.storage, t, id).await?;
                ops.push(BatchOp::delete(key.clone()));
            }
            edits.push_ops(&mut ops);
            self.storage.batch(ops).await?;
        }
    }

    /// Moves the horizon forward when half of it has been used up.
    async fn advance_horizon(&self, now: Timestamp) -> Result<()> {
        let half = self.config.restore_horizon / 2;
        if now + half <= self.mem().loaded_until {
            return Ok(());
        }
        let _w = self.write.lock().await;
        let from = self.mem().loaded_until;
        let until = now + self.config.restore_horizon;
        if until <= from {
            return Ok(());
        }
        let mut entries = Vec::new();
        self.scan_index(Some(from), until, &mut entries).await?;
        let mut mem = self.mem();
        mem.index.extend(entries);
        mem.loaded_until = until;
        Ok(())
    }

    async fn get(&self, id: LeaseId) -> Result<Option<Lease>> {
        let key = rec_key(id);
        match self.storage.get(&key).await? {
            None => Ok(None),
            Some(bytes) => Lease::from_record_bytes(&bytes)
                .map(Some)
                .map_err(|e| match e {
                    Error::CorruptRecord { reason, .. } => Error::CorruptRecord { key, reason },
                    other => other,
                }),
        }
    }

    /// Writes a change of one lease in one batch and mirrors it in memory.
    /// The caller holds `self.write` and passes the lease as stored now.
    async fn commit(&self, id: LeaseId, old: Option<&Lease>, change: Change) -> Result<()> {
        let mut ops = Vec::with_capacity(5);
        let old_due = old.and_then(Lease::due_at);
        let (path, delta): (String, i64) = match (&change, old) {
            (Change::Put(new), old) => (new.path.clone(), if old.is_none() { 1 } else { 0 }),
            (Change::Delete, Some(old)) => (old.path.clone(), -1),
            (Change::Delete, None) => return Ok(()),
        };
        let new_due = match &change {
            Change::Put(new) => new.due_at(),
            Change::Delete => None,
        };
        if old_due != new_due {
            self.index_ops(id, old_due, new_due, &mut ops).await?;
        }
        match &change {
            Change::Put(new) => {
                ops.push(BatchOp::put(rec_key(id), new.to_record_bytes()?));
                if old.is_none() {
                    ops.push(BatchOp::put(path_key(&path, id), Vec::new()));
                }
            }
            Change::Delete => {
                ops.push(BatchOp::delete(rec_key(id)));
                ops.push(BatchOp::delete(path_key(&path, id)));
            }
        }
        let new_count = if delta != 0 {
            let current = self.mem().path_counts.get(&path).copied().unwrap_or(0);
            let n = current.saturating_add_signed(delta);
            ops.push(if n == 0 {
                BatchOp::delete(count_key(&path))
            } else {
                BatchOp::put(count_key(&path), n.to_be_bytes().to_vec())
            });
            Some(n)
        } else {
            None
        };
        self.storage.batch(ops).await?;

        let mut mem = self.mem();
        let mut woke_earlier = false;
        if let Some(t) = old_due
            && old_due != new_due
        {
            mem.index.remove(t, id);
        }
        if let Some(t) = new_due
            && t <= mem.loaded_until
        {
            woke_earlier = mem.index.first().is_none_or(|(first, _)| t < first);
            mem.index.insert(t, id);
        }
        if let Some(n) = new_count {
            if n == 0 {
                mem.path_counts.remove(&path);
            } else {
                mem.path_counts.insert(path.clone(), n);
            }
            mem.total = mem.total.saturating_add_signed(delta);
            for (i, q) in self.config.prefix_quotas.iter().enumerate() {
                if under_prefix(&path, &q.prefix)
                    && let Some(c) = mem.quota_counts.get_mut(i)
                {
                    *c = c.saturating_add_signed(delta);
                }
            }
        }
        drop(mem);
        if woke_earlier {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The batch operations that move `id`'s index entry from `old_due` to
    /// `new_due`: each touched segment is read, checked unchanged when the
    /// batch applies, and rewritten (or deleted once empty).
    async fn index_ops(
        &self,
        id: LeaseId,
        old_due: Option<Timestamp>,
        new_due: Option<Timestamp>,
        ops: &mut Vec<BatchOp>,
    ) -> Result<()> {
        let mut edits = SegmentEdits::default();
        if let Some(t) = old_due {
            edits.remove(&self.storage, t, id).await?;
        }
        if let Some(t) = new_due {
            edits.add(&self.storage, t, id).await?;
        }
        edits.push_ops(ops);
        Ok(())
    }

    fn expiring_soon_at(&self, from: Timestamp, expires_at: Timestamp) -> Timestamp {
        match self.config.expiring_soon_fraction {
            Some(f) => {
                let span = expires_at.saturating_since(from).as_millis() as f64;
                from + Duration::from_millis((span * f) as u64)
            }
            None => expires_at,
        }
    }

    /// Issues a lease for `path`, revoked through `engine`'s revoker.
    ///
    /// The lease expires after `ttl` (cut to `max_ttl`); renewals never take
    /// it past `max_ttl` after issue. `revocation_data` is stored as given
    /// and handed to the revoker. Refused with
    /// [`LeaseError::QuotaExceeded`] when a quota is full.
    pub async fn issue(
        &self,
        path: &str,
        engine: &str,
        ttl: Duration,
        max_ttl: Duration,
        renewable: bool,
        revocation_data: Vec<u8>,
    ) -> Result<Lease> {
        validate_path(path)?;
        validate_engine(engine)?;
        if ttl.is_zero() || max_ttl.is_zero() {
            return Err(LeaseError::InvalidTtl {
                reason: "ttl and max_ttl must be positive",
            }
            .into());
        }
        if self.revoker(engine).is_none() {
            return Err(LeaseError::NoRevoker {
                engine: engine.to_owned(),
            }
            .into());
        }
        self.restore().await?;
        let ttl = ttl.min(max_ttl);
        let id = LeaseId::generate()?;
        let _w = self.write.lock().await;
        self.check_quotas(path)?;
        let now = self.clock.now();
        let expires_at = now + ttl;
        let lease = Lease {
            id,
            path: path.to_owned(),
            engine: engine.to_owned(),
            issued_at: now,
            ttl,
            max_ttl,
            expires_at,
            expiring_soon_at: self.expiring_soon_at(now, expires_at),
            warned: false,
            renewable,
            state: LeaseState::Active,
            revocation_data,
        };
        self.commit(id, None, Change::Put(lease.clone())).await?;
        self.emit(LeaseEvent::Issued {
            id,
            path: lease.path.clone(),
            expires_at,
        });
        Ok(lease)
    }

    fn check_quotas(&self, path: &str) -> Result<()> {
        let mem = self.mem();
        if let Some(limit) = self.config.max_leases
            && mem.total >= limit
        {
            return Err(LeaseError::QuotaExceeded {
                scope: QuotaScope::Total,
                limit,
                count: mem.total,
            }
            .into());
        }
        for (q, &count) in self.config.prefix_quotas.iter().zip(&mem.quota_counts) {
            if under_prefix(path, &q.prefix) && count >= q.max_leases {
                return Err(LeaseError::QuotaExceeded {
                    scope: QuotaScope::Prefix(q.prefix.clone()),
                    limit: q.max_leases,
                    count,
                }
                .into());
            }
        }
        Ok(())
    }

    /// The lease with this id.
    pub async fn lookup(&self, id: LeaseId) -> Result<Lease> {
        self.get(id)
            .await?
            .ok_or_else(|| LeaseError::NotFound { id }.into())
    }

    /// Ids of the live leases under `prefix` (whole segments; `""` for all),
    /// in path order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<LeaseId>> {
        let scan_prefix = if prefix.is_empty() {
            PATH_PREFIX.to_owned()
        } else {
            validate_path(prefix)?;
            format!("{PATH_PREFIX}{prefix}/")
        };
        let keys = self.storage.list(&scan_prefix).await?;
        keys.iter()
            .map(|k| {
                k.rsplit('/')
                    .next()
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(|| Error::corrupt(k.clone(), "bad lease path index key"))
            })
            .collect()
    }

    /// Renews an active, renewable lease to expire `increment` from now, but
    /// never later than its issue time plus max TTL. The engine's
    /// [`Revoker::renew`] runs first; if it fails the lease is unchanged.
    pub async fn renew(&self, id: LeaseId, increment: Duration) -> Result<Lease> {
        if increment.is_zero() {
            return Err(LeaseError::InvalidTtl {
                reason: "the renewal increment must be positive",
            }
            .into());
        }
        self.restore().await?;
        let now = self.clock.now();
        let lease = self.renewable_lease(id, now).await?;
        let hard_end = lease.max_expires_at();
        let wanted = now + increment;
        let new_expiry = wanted.min(hard_end);
        let revoker = self
            .revoker(&lease.engine)
            .ok_or_else(|| LeaseError::NoRevoker {
                engine: lease.engine.clone(),
            })?;
        revoker.renew(&lease, new_expiry).await?;

        let _w = self.write.lock().await;
        let current = self.renewable_lease(id, now).await?;
        let mut renewed = current.clone();
        renewed.expires_at = new_expiry;
        renewed.expiring_soon_at = self.expiring_soon_at(now, new_expiry);
        renewed.warned = false;
        self.commit(id, Some(&current), Change::Put(renewed.clone()))
            .await?;
        self.emit(LeaseEvent::Renewed {
            id,
            path: renewed.path.clone(),
            expires_at: new_expiry,
            capped: wanted > hard_end,
        });
        Ok(renewed)
    }

    async fn renewable_lease(&self, id: LeaseId, now: Timestamp) -> Result<Lease> {
        let lease = self.lookup(id).await?;
        if lease.state != LeaseState::Active {
            return Err(LeaseError::NotActive {
                id,
                state: lease.state,
            }
            .into());
        }
        if now >= lease.expires_at {
            return Err(LeaseError::Expired {
                id,
                expired_at: lease.expires_at,
            }
            .into());
        }
        if !lease.renewable {
            return Err(LeaseError::NotRenewable { id }.into());
        }
        Ok(lease)
    }

    /// Revokes a lease now through its engine. On success the lease is
    /// deleted and returned in state [`LeaseState::Revoked`]. On failure the
    /// manager keeps retrying and this returns
    /// [`LeaseError::RevocationDeferred`] (or [`LeaseError::Irrevocable`]
    /// once attempts are used up).
    pub async fn revoke(&self, id: LeaseId) -> Result<Lease> {
        self.restore().await?;
        let lease = self.lookup(id).await?;
        match self.attempt_revocation(lease, false).await? {
            Attempt::Revoked(l) => Ok(l),
            Attempt::Deferred {
                attempts,
                next_try,
                reason,
            } => Err(LeaseError::RevocationDeferred {
                id,
                attempts,
                next_try,
                reason,
            }
            .into()),
            Attempt::Irrevocable { attempts, reason } => Err(LeaseError::Irrevocable {
                id,
                attempts,
                reason,
            }
            .into()),
            Attempt::Gone => Err(LeaseError::NotFound { id }.into()),
        }
    }

    /// Removes a lease whatever its engine says, for irrevocable leases an
    /// operator has cleaned up by hand. The revoker is tried once; its
    /// failure is logged and ignored. Sends [`LeaseEvent::Revoked`] with
    /// `forced: true`.
    pub async fn force_revoke(&self, id: LeaseId) -> Result<Lease> {
        self.restore().await?;
        let lease = self.lookup(id).await?;
        match self.attempt_revocation(lease, true).await? {
            Attempt::Revoked(l) => Ok(l),
            _ => Err(LeaseError::NotFound { id }.into()),
        }
    }

    /// Revokes every lease under `prefix` (whole segments; `""` for all).
    /// Leases whose engine fails are left to the retry schedule and listed
    /// as pending.
    pub async fn revoke_prefix(&self, prefix: &str) -> Result<PrefixRevocation> {
        self.restore().await?;
        let mut out = PrefixRevocation::default();
        for id in self.list(prefix).await? {
            let Some(lease) = self.get(id).await? else {
                continue;
            };
            match self.attempt_revocation(lease, false).await? {
                Attempt::Revoked(_) => out.revoked.push(id),
                Attempt::Deferred { .. } | Attempt::Irrevocable { .. } => out.pending.push(id),
                Attempt::Gone => {}
            }
        }
        Ok(out)
    }

    /// Calls the engine, then records the outcome.
    async fn attempt_revocation(&self, lease: Lease, force: bool) -> Result<Attempt> {
        let id = lease.id;
        let outcome = self.call_revoker(&lease).await;
        let _w = self.write.lock().await;
        let Some(current) = self.get(id).await? else {
            return Ok(Attempt::Gone);
        };
        let now = self.clock.now();
        match outcome {
            Err(reason) if !force => {
                let attempts = match current.state {
                    LeaseState::Revoking { attempts, .. }
                    | LeaseState::Irrevocable { attempts } => attempts,
                    _ => 0,
                }
                .saturating_add(1);
                let mut next = current.clone();
                if attempts >= self.config.retry.max_attempts {
                    next.state = LeaseState::Irrevocable { attempts };
                    self.commit(id, Some(&current), Change::Put(next)).await?;
                    tracing::error!(lease = %id, attempts, %reason, "lease is irrevocable");
                    self.emit(LeaseEvent::Irrevocable {
                        id,
                        path: current.path.clone(),
                        attempts,
                        reason: reason.clone(),
                    });
                    Ok(Attempt::Irrevocable { attempts, reason })
                } else {
                    let next_try = now + self.backoff(attempts);
                    next.state = LeaseState::Revoking { attempts, next_try };
                    self.commit(id, Some(&current), Change::Put(next)).await?;
                    tracing::warn!(lease = %id, attempts, %reason, %next_try, "lease revocation failed; retrying");
                    Ok(Attempt::Deferred {
                        attempts,
                        next_try,
                        reason,
                    })
                }
            }
            result => {
                if let Err(reason) = &result {
                    tracing::warn!(lease = %id, %reason, "forced revocation: the engine failed; removing the lease anyway");
                }
                self.commit(id, Some(&current), Change::Delete).await?;
                self.emit(LeaseEvent::Revoked {
                    id,
                    path: current.path.clone(),
                    forced: force,
                });
                let mut done = current;
                done.state = LeaseState::Revoked;
                Ok(Attempt::Revoked(done))
            }
        }
    }

    /// Runs the lease's revoker with the timeout; the error is a message.
    async fn call_revoker(&self, lease: &Lease) -> std::result::Result<(), String> {
        let Some(revoker) = self.revoker(&lease.engine) else {
            return Err(format!(
                "no revoker is registered for engine {:?}",
                lease.engine
            ));
        };
        match tokio::time::timeout(self.config.revoke_timeout, revoker.revoke(lease)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the revoker did not answer within {:?}",
                self.config.revoke_timeout
            )),
        }
    }

    /// The delay before retry number `attempts` (1 after the first failure).
    fn backoff(&self, attempts: u32) -> Duration {
        let p = &self.config.retry;
        let shift = attempts.saturating_sub(1).min(30);
        let full = p
            .base
            .checked_mul(1u32 << shift)
            .unwrap_or(p.max)
            .min(p.max);
        if p.jitter <= 0.0 {
            return full;
        }
        let mut b = [0u8; 4];
        let r = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b) {
            Ok(()) => f64::from(u32::from_be_bytes(b)) / f64::from(u32::MAX),
            Err(_) => 0.0,
        };
        let factor = 1.0 - p.jitter * r;
        Duration::try_from_secs_f64(full.as_secs_f64() * factor)
            .unwrap_or(full)
            .max(Duration::from_millis(1))
    }

    /// Processes everything due at the clock's current time: sends
    /// expiring-soon events, revokes expired leases and retries failed
    /// revocations. A lease whose engine fails is rescheduled and the others
    /// go on. Tests call this directly after moving a `ManualClock`.
    pub async fn run_due(&self) -> Result<DueReport> {
        self.restore().await?;
        let now = self.clock.now();
        self.advance_horizon(now).await?;
        let mut report = DueReport::default();
        loop {
            let next = self.mem().index.pop_due(now);
            let Some((t, id)) = next else {
                break;
            };
            let mut requeue = Requeue {
                mem: &self.mem,
                entry: Some((t, id)),
            };
            let result = self.process_due(id, now, &mut report).await;
            requeue.entry = None;
            if let Err(e) = result {
                tracing::warn!(lease = %id, error = %e, "processing a due lease failed; retrying later");
                report.errors += 1;
                // Keep it in memory so it is tried again; a stale entry is
                // harmless because processing re-reads the stored record.
                let retry = now + self.config.retry.base;
                self.mem().index.insert(retry, id);
            }
        }
        Ok(report)
    }

    /// Alias of [`LeaseManager::run_due`].
    pub async fn tick(&self) -> Result<DueReport> {
        self.run_due().await
    }

    async fn process_due(&self, id: LeaseId, now: Timestamp, report: &mut DueReport) -> Result<()> {
        let Some(lease) = self.get(id).await? else {
            return Ok(());
        };
        match lease.due_at() {
            Some(t) if t <= now => {}
            // Not due (renewed, or an older entry): its current entry, if
            // any, is elsewhere in the index.
            _ => return Ok(()),
        }
        if lease.state == LeaseState::Active && now < lease.expires_at {
            return self.mark_expiring_soon(id, now, report).await;
        }
        match self.attempt_revocation(lease, false).await? {
            Attempt::Revoked(_) => report.revoked += 1,
            Attempt::Deferred { .. } => report.deferred += 1,
            Attempt::Irrevocable { .. } => report.irrevocable += 1,
            Attempt::Gone => {}
        }
        Ok(())
    }

    async fn mark_expiring_soon(
        &self,
        id: LeaseId,
        now: Timestamp,
        report: &mut DueReport,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let Some(current) = self.get(id).await? else {
            return Ok(());
        };
        if current.state != LeaseState::Active || current.warned || now >= current.expires_at {
            return Ok(());
        }
        let mut next = current.clone();
        next.warned = true;
        self.commit(id, Some(&current), Change::Put(next)).await?;
        self.emit(LeaseEvent::ExpiringSoon {
            id,
            path: current.path.clone(),
            expires_at: current.expires_at,
        });
        report.expiring_soon += 1;
        Ok(())
    }

    /// When the background task must next wake: the earliest entry in
    /// memory, or when the horizon needs moving.
    fn next_wake(&self) -> Timestamp {
        let mem = self.mem();
        // One millisecond after the point where `advance_horizon` loads more.
        let refill = mem.loaded_until - self.config.restore_horizon / 2 + Duration::from_millis(1);
        match mem.index.first() {
            Some((t, _)) => t.min(refill),
            None => refill,
        }
    }

    /// Writes every lease event to `audit` as principal `"lease-manager"`:
    /// issue, renewal, revocation (forced or not) and irrevocable leases
    /// (outcome error `irrevocable`, so an operator is told). Events carry
    /// the lease id and path, never revocation data. If the audit task falls
    /// behind the event stream, the number of events it missed is itself
    /// audited (`lease_events_lost`) so the gap is visible in the trail.
    /// Dropping the returned handle stops the task.
    pub fn audit_events(&self, audit: Arc<crate::audit::AuditLog>) -> TaskHandle {
        use crate::audit::{AuditEvent, Operation, Outcome};
        use tokio::sync::broadcast::error::RecvError;
        let mut rx = self.subscribe();
        let handle = tokio::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(event) => match event_to_audit(event) {
                        Some(e) => e,
                        None => continue,
                    },
                    Err(RecvError::Closed) => return,
                    Err(RecvError::Lagged(missed)) => {
                        AuditEvent::new("lease-manager", Operation::LeaseRevoke, "lease-events")
                            .with_outcome(Outcome::Error {
                                kind: format!("lease_events_lost:{missed}"),
                            })
                    }
                };
                if let Err(e) = audit.append(event).await {
                    tracing::error!(error = %e, "lease audit event could not be written");
                }
            }
        });
        TaskHandle {
            handle: Some(handle),
        }
    }

    /// Starts the background task that runs [`LeaseManager::run_due`]
    /// whenever something is due: it waits on the clock's `sleep_until` for
    /// the next deadline, or on a notification when an earlier lease is
    /// issued. Dropping the handle stops it. Needs a Tokio runtime.
    pub fn spawn(self: Arc<Self>) -> TaskHandle {
        let handle = tokio::spawn(async move { self.run_forever().await });
        TaskHandle {
            handle: Some(handle),
        }
    }

    async fn run_forever(&self) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = match self.run_due().await {
                Ok(_) => self.next_wake(),
                Err(e) => {
                    tracing::warn!(error = %e, "lease expiry run failed; retrying");
                    self.clock.now() + self.config.retry.base
                }
            };
            if wake_at <= self.clock.now() {
                // Due work appeared while running (or the horizon needs
                // moving): go round again, yielding to other tasks first.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = self.clock.sleep_until(wake_at) => {}
                () = &mut notified => {}
            }
        }
    }
}

/// The key of the last record of a scan page, for paging.
trait LastKey {
    fn last_key(&self) -> Option<String>;
}

impl LastKey for Vec<(String, Vec<u8>)> {
    fn last_key(&self) -> Option<String> {
        self.last().map(|(k, _)| k.clone())
    }
}

/// The audit form of a lease event (`None` for events that are not audited).
fn event_to_audit(event: LeaseEvent) -> Option<crate::audit::AuditEvent> {
    use crate::audit::{AuditEvent, Operation, Outcome};
    let (op, id, path, outcome) = match event {
        LeaseEvent::Issued { id, path, .. } => (Operation::LeaseIssue, id, path, Outcome::Allowed),
        LeaseEvent::Renewed { id, path, .. } => (Operation::LeaseRenew, id, path, Outcome::Allowed),
        LeaseEvent::Revoked { id, path, .. } => {
            (Operation::LeaseRevoke, id, path, Outcome::Allowed)
        }
        LeaseEvent::Irrevocable { id, path, .. } => (
            Operation::LeaseRevoke,
            id,
            path,
            Outcome::Error {
                kind: "irrevocable".into(),
            },
        ),
        LeaseEvent::ExpiringSoon { .. } => return None,
    };
    let text = id.to_string();
    Some(
        AuditEvent::new("lease-manager", op, text.clone())
            .with_path(path)
            .with_lease_id(text)
            .with_outcome(outcome),
    )
}
