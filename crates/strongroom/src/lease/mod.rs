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
//! | `lease/<id>` | the lease record (a version byte, then postcard; with the claim of the manager revoking it, if any) |
//! | `lease-due/<time bucket, 16 hex>/<shard, 2 hex>` | the expiry index: packed `(due time, id)` entries of one ~65 s bucket and shard |
//! | `lease-path/<path>/<id>` | empty: the path index, for prefix revocation and listing |
//! | `lease-count/<path>#<k>` | live leases under that exact path: the sum of 8 shards (i64, big-endian; before shards, one u64 at `lease-count/<path>`) |
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
//! # Several managers, one store
//!
//! Any number of managers, in one process or many, may share a storage
//! (the replicas of a service on one PostgreSQL database, a service and the
//! operator's CLI on one SQLite file). They share the expiry work: a due
//! lease is claimed in one compare-and-set on its record before its revoker
//! runs, the claim names the manager ([`LeaseConfig::member_id`]) and lapses
//! after [`LeaseConfig::claim_ttl`] unless renewed, which the holder does
//! while the revoker runs. Without crashes every lease is revoked once. A
//! member that dies loses its claims to the others when they lapse, or at
//! once to a manager started again with its member id; only a revocation
//! that was under way at the crash runs again (revokers are idempotent).
//! Revocation on request, renewal and expiry check the record they read is
//! unchanged when they write, so they never act on the same lease version
//! twice. Index segments and counts, which every manager edits, are written
//! with the same check and retried when another manager was first. Managers
//! learn of leases others issued by reading the index again every
//! [`LeaseConfig::rescan_interval`]. Quotas are checked against the counts a
//! manager has seen (exact for one manager; with several, as of each one's
//! last change under a path).
//!
//! # Auditing
//!
//! With an audit log attached ([`LeaseConfig::audit`] or
//! [`LeaseManager::with_audit`]), the manager writes, as principal
//! [`LEASE_MANAGER_PRINCIPAL`]:
//!
//! | when | operation | outcome |
//! | --- | --- | --- |
//! | before a lease is stored ([`issue`](LeaseManager::issue), [`issue_batch`](LeaseManager::issue_batch)), one per lease | `lease_issue` | `allowed` |
//! | before the engine is asked to renew ([`renew`](LeaseManager::renew)) | `lease_renew` | `allowed` |
//! | before a lease is claimed for revocation on request ([`revoke`](LeaseManager::revoke), [`revoke_prefix`](LeaseManager::revoke_prefix)) | `lease_revoke` | `allowed` |
//! | the same for [`force_revoke`](LeaseManager::force_revoke) | `lease_revoke_force` | `allowed` |
//! | before the revoker of an expired lease runs ([`run_due`](LeaseManager::run_due)) | `lease_revoke` | `allowed` |
//! | before a failed revocation is recorded (retry or irrevocable) | `lease_revoke` | error `lease_revocation_deferred` / `lease_irrevocable` |
//! | after an issue or renewal that was recorded and then failed | as above | error with the error's kind |
//!
//! Each record carries the lease id and path, never revocation data; the
//! records of one call share a request id. A write-ahead record with no
//! error record after it for the same request id means the operation went
//! through (or, after a crash, may have: revokers are idempotent and
//! another member finishes a revocation it finds claimed).
//!
//! **Fail closed.** For calls, a record that no sink accepts fails the call
//! with the audit error before anything changed. For expiry, a lease whose
//! record is refused is not revoked now: it stays claimed by this manager
//! and due, and is tried again (with a new record) after
//! [`RetryPolicy::base`], so a revocation never runs unaudited and none is
//! lost while the audit sinks are down. The rest of that batch is set
//! aside the same way without another attempt, so a hung sink costs one
//! sink timeout per batch, not one per lease. A failed revocation whose
//! error record is refused is not recorded either: the lease stays claimed
//! and is tried again later.
//!
//! These appends do not save the audit head in the store; the next
//! [`Handle`](crate::Handle) record saves a head past them, and
//! [`Strongroom::open_audit_log`](crate::Strongroom::open_audit_log)
//! resumes from the log file's last record either way.
//!
//! A principal reaches leases through a
//! [`LeaseHandle`](crate::authorized::LeaseHandle), which checks its
//! `lease` (and for forced and prefix revocation `sudo`) capability and
//! writes the principal's own records (denied, intent, result) besides
//! these. [`LeaseManager::audit_events`], which audited from the lossy
//! event channel, is deprecated in favour of this.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::clock::{ManualClock, Timestamp};
//! use strongroom::lease::{Lease, LeaseConfig, LeaseManager, Revoker};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Options, SecretBytes, Strongroom};
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
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let store = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, Options::default()).await?;
//! let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
//! // direct use of a manager is unchecked: it is built through the door
//! // (wrap it in `Handle::leases` to check a principal's policies)
//! let door = store.dangerous_traced("lease-setup").await?;
//! let manager = door.lease_manager(clock.clone(), LeaseConfig::default())?;
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

mod audit;
mod claim;
mod commit;
mod index;
pub(crate) mod record;
pub(crate) mod segment;
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

use commit::{Committed, LeaseWrite, Stored};

pub use audit::LEASE_MANAGER_PRINCIPAL;
pub use index::ExpiryIndex;

use crate::audit::Operation;
use crate::clock::{Clock, Timestamp};
use crate::storage::{BatchOp, DynStorage};
use crate::{Error, PathError, Result, Strongroom};

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
    claim: Option<LeaseClaim>,
}

/// A manager's hold on a lease while it revokes it: which member, until
/// when (by that member's clock), and whether the engine has already
/// confirmed the revocation (only the clean-up of the records is left).
///
/// Managers sharing a store claim a due lease in one compare-and-set before
/// calling its revoker, so only one of them calls it. A member that dies
/// holding a claim loses it to the others once `until` has passed; a
/// manager started again with the same member id takes its own claims back
/// at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClaim {
    owner: String,
    until: Timestamp,
    revoked: bool,
}

impl LeaseClaim {
    /// The member id of the manager holding the claim.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// When the claim lapses unless its holder renews it.
    pub fn until(&self) -> Timestamp {
        self.until
    }
    /// Whether the engine confirmed the revocation (clean-up is pending).
    pub fn revoked(&self) -> bool {
        self.revoked
    }
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
            .field("claim", &self.claim)
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

    /// Failed revocation attempts so far.
    fn failed_attempts(&self) -> u32 {
        match self.state {
            LeaseState::Revoking { attempts, .. } | LeaseState::Irrevocable { attempts } => {
                attempts
            }
            _ => 0,
        }
    }

    /// Who is revoking this lease right now, if a manager has claimed it.
    pub fn claim(&self) -> Option<&LeaseClaim> {
        self.claim.as_ref()
    }

    /// Encodes the stored record: a version byte, then postcard (see
    /// `docs/FORMAT.md`, "Lease records").
    pub fn to_record_bytes(&self) -> Result<Vec<u8>> {
        record::encode(self)
    }

    /// Decodes a stored record written by [`Lease::to_record_bytes`] (this
    /// version or the one before).
    pub fn from_record_bytes(bytes: &[u8]) -> Result<Self> {
        record::decode(bytes)
    }
}

/// One lease to issue with [`LeaseManager::issue_batch`].
#[derive(Clone)]
pub struct LeaseRequest {
    path: String,
    engine: String,
    ttl: Duration,
    max_ttl: Duration,
    renewable: bool,
    revocation_data: Vec<u8>,
}

impl fmt::Debug for LeaseRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseRequest")
            .field("path", &self.path)
            .field("engine", &self.engine)
            .field("ttl", &self.ttl)
            .field("max_ttl", &self.max_ttl)
            .field("renewable", &self.renewable)
            .field(
                "revocation_data",
                &format_args!("[{} bytes]", self.revocation_data.len()),
            )
            .finish()
    }
}

impl LeaseRequest {
    /// A renewable lease for `path`, revoked through `engine`'s revoker,
    /// expiring after `ttl` (cut to `max_ttl`), with no revocation data.
    pub fn new(
        path: impl Into<String>,
        engine: impl Into<String>,
        ttl: Duration,
        max_ttl: Duration,
    ) -> Self {
        Self {
            path: path.into(),
            engine: engine.into(),
            ttl,
            max_ttl,
            renewable: true,
            revocation_data: Vec::new(),
        }
    }

    /// The path the lease is for.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the lease may be renewed (default true).
    pub fn renewable(mut self, renewable: bool) -> Self {
        self.renewable = renewable;
        self
    }

    /// The engine's data for revoking it, stored as given.
    pub fn revocation_data(mut self, data: Vec<u8>) -> Self {
        self.revocation_data = data;
        self
    }
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
#[derive(Debug, Clone)]
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
    /// This manager's member id, the owner named in its claims. Default
    /// (`None`): a random id per manager. Give a process a stable id (1 to
    /// 64 characters from `A-Z a-z 0-9 . _ : -`) so that, started again, it
    /// takes back the claims it held when it stopped without waiting for
    /// them to lapse. Two live managers must never share an id.
    pub member_id: Option<String>,
    /// How long a claim on a due lease lasts without renewal. The holder
    /// renews it while the revoker runs; a member that dies loses its claims
    /// to the others this long after its last renewal. Default 30 s.
    pub claim_ttl: Duration,
    /// How often the stored expiry index is read again for leases that
    /// other managers issued or renewed, or that a dead member had claimed.
    /// Default 10 s.
    pub rescan_interval: Duration,
    /// The audit log the manager appends its own records to, synchronously
    /// and before each effect, failing closed (see "Auditing" in the
    /// [module docs](self); [`LeaseManager::with_audit`] sets it). Default
    /// none: nothing is audited by the manager itself.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
}

impl PartialEq for LeaseConfig {
    /// Settings are equal field by field; audit logs by identity.
    fn eq(&self, other: &Self) -> bool {
        let Self {
            max_leases,
            prefix_quotas,
            expiring_soon_fraction,
            retry,
            restore_horizon,
            revoke_timeout,
            event_capacity,
            member_id,
            claim_ttl,
            rescan_interval,
            audit,
        } = self;
        *max_leases == other.max_leases
            && *prefix_quotas == other.prefix_quotas
            && *expiring_soon_fraction == other.expiring_soon_fraction
            && *retry == other.retry
            && *restore_horizon == other.restore_horizon
            && *revoke_timeout == other.revoke_timeout
            && *event_capacity == other.event_capacity
            && *member_id == other.member_id
            && *claim_ttl == other.claim_ttl
            && *rescan_interval == other.rescan_interval
            && match (audit, &other.audit) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
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
            member_id: None,
            claim_ttl: Duration::from_secs(30),
            rescan_interval: Duration::from_secs(10),
            audit: None,
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
        if self.claim_ttl < Duration::from_millis(30) {
            return bad("claim_ttl must be at least 30 ms");
        }
        if self.rescan_interval.is_zero() {
            return bad("rescan_interval must be positive");
        }
        if let Some(id) = &self.member_id {
            claim::validate_member_id(id)?;
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
    /// Entries whose processing hit a storage error, or whose audit record
    /// was refused (retried later).
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

/// In-memory bookkeeping, guarded by a std mutex never held across `.await`.
#[derive(Debug, Default)]
struct Mem {
    index: ExpiryIndex,
    loaded_until: Timestamp,
    path_counts: HashMap<String, u64>,
    total: u64,
    /// Parallel to `LeaseConfig::prefix_quotas`.
    quota_counts: Vec<u64>,
    /// When the stored index is next read again for others' changes.
    next_rescan: Timestamp,
    /// Leases to look at again that are not stored index entries: ones
    /// another member holds (at its claim's end) and ones whose processing
    /// failed (at the retry).
    recheck: ExpiryIndex,
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
    /// Serialises this manager's commits (other managers are kept apart
    /// by the checks in each batch).
    write: tokio::sync::Mutex<()>,
    restored: OnceCell<RestoreStats>,
    events: broadcast::Sender<LeaseEvent>,
    wake: Notify,
    /// This manager's member id: the owner of its claims.
    member: String,
    /// Leases a task of this manager is working on (claimed or about to
    /// be), so two tasks of one manager never both act on a lease.
    in_flight: Mutex<std::collections::HashSet<LeaseId>>,
    /// Told whenever a lease leaves `in_flight`.
    released: Notify,
}

impl LeaseManager {
    /// A manager over `store`'s storage, behind its barrier (every lease
    /// record, index segment and counter is sealed under the keyring and
    /// bound to its storage key; see [`Strongroom::barrier`]). Call
    /// [`LeaseManager::restore`] before use (every operation restores on
    /// first use if it has not been called).
    pub(crate) fn new(
        store: &Strongroom,
        clock: Arc<dyn Clock>,
        config: LeaseConfig,
    ) -> Result<Self> {
        config.validate()?;
        let storage = store.barrier();
        let member = match &config.member_id {
            Some(id) => id.clone(),
            None => claim::random_member_id()?,
        };
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
            member,
            in_flight: Mutex::default(),
            released: Notify::new(),
        })
    }

    /// This manager's member id, the owner named in its claims
    /// ([`LeaseConfig::member_id`], or the random one it was given).
    pub fn member_id(&self) -> &str {
        &self.member
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
            in_memory: mem.index.len() + mem.recheck.len(),
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
        // Per path: the count, and its keys as read.
        let mut sums: HashMap<String, (i128, Vec<StoredKey>)> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage
                .scan(COUNT_PREFIX, after.as_deref(), SCAN_PAGE)
                .await?;
            let done = page.len() < SCAN_PAGE;
            after = page.last_key();
            for (key, value) in page {
                let path = commit::count_path(key.get(COUNT_PREFIX.len()..).unwrap_or_default());
                let n = commit::count_value(&key, &value)?;
                let entry = sums.entry(path.to_owned()).or_default();
                entry.0 += n;
                entry.1.push((key, value));
            }
            if done {
                break;
            }
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        for (path, (n, keys)) in sums {
            if n > 0 {
                counts.insert(path, u64::try_from(n).unwrap_or(u64::MAX));
            } else {
                self.drop_zero_count(keys).await?;
            }
        }
        let now = self.clock.now();
        let until = now + self.config.restore_horizon;
        let mut entries = Vec::new();
        self.scan_index(None, until, &mut entries).await?;
        let loaded = entries.len();
        let mut mem = self.mem();
        mem.index.extend(entries);
        mem.loaded_until = until;
        mem.next_rescan = now + self.config.rescan_interval;
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

    /// Deletes the count keys of a path whose count is zero (two managers
    /// that each took the count down concurrently, in different shards, can
    /// leave such keys). Each key must be unchanged: deleting keys that sum
    /// to zero leaves any other change to the count intact. A conflict
    /// leaves them for a later restore.
    async fn drop_zero_count(&self, keys: Vec<StoredKey>) -> Result<()> {
        let mut ops = Vec::with_capacity(2 * keys.len());
        for (key, value) in keys {
            ops.push(BatchOp::expect(key.clone(), Some(value)));
            ops.push(BatchOp::delete(key));
        }
        match self.storage.batch(ops).await {
            Ok(()) | Err(Error::StorageConflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Index entries after `from` (exclusive) up to `until` (inclusive).
    async fn scan_index(
        &self,
        from: Option<Timestamp>,
        until: Timestamp,
        out: &mut Vec<(Timestamp, LeaseId)>,
    ) -> Result<()> {
        let mut after = from.map(segment::scan_start);
        // Pages grow from small: every segment read is opened through the
        // barrier, and the scan usually stops at the horizon long before a
        // full page (a bucket is at most 16 segments).
        let mut page_size = 64;
        loop {
            let page = self
                .storage
                .scan(segment::DUE_PREFIX, after.as_deref(), page_size)
                .await?;
            let done = page.len() < page_size;
            page_size = (page_size * 2).min(SCAN_PAGE);
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
            let mut edits = commit::SegmentEdits::default();
            let mut ops = Vec::with_capacity(page.len() + 16);
            for (key, _) in &page {
                let (t, id) = parse_legacy_exp_key(key)
                    .ok_or_else(|| Error::corrupt(key.clone(), "bad lease index key"))?;
                edits.add(&self.storage, t, id).await?;
                ops.push(BatchOp::delete(key.clone()));
            }
            edits.push_ops(&mut ops);
            match self.storage.batch(ops).await {
                // Another manager converted (part of) this page first: the
                // next scan sees what is left.
                Ok(()) | Err(Error::StorageConflict { .. }) => {}
                Err(e) => return Err(e),
            }
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
        let request = LeaseRequest::new(path, engine, ttl, max_ttl)
            .renewable(renewable)
            .revocation_data(revocation_data);
        self.issue_batch(vec![request])
            .await?
            .pop()
            .ok_or_else(|| Error::InvalidArgument("no lease was issued".into()))
    }

    /// Issues several leases in one atomic write: all of them or, on any
    /// error, none. Quotas count the whole batch. Much faster than one
    /// [`LeaseManager::issue`] per lease when many leases start at once,
    /// because each index segment and count is written once per batch.
    pub async fn issue_batch(&self, requests: Vec<LeaseRequest>) -> Result<Vec<Lease>> {
        for r in &requests {
            validate_path(&r.path)?;
            validate_engine(&r.engine)?;
            if r.ttl.is_zero() || r.max_ttl.is_zero() {
                return Err(LeaseError::InvalidTtl {
                    reason: "ttl and max_ttl must be positive",
                }
                .into());
            }
            if self.revoker(&r.engine).is_none() {
                return Err(LeaseError::NoRevoker {
                    engine: r.engine.clone(),
                }
                .into());
            }
        }
        self.restore().await?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let _w = self.write.lock().await;
        self.check_quotas(&requests)?;
        let now = self.clock.now();
        let mut writes = Vec::with_capacity(requests.len());
        for r in requests {
            let ttl = r.ttl.min(r.max_ttl);
            let expires_at = now + ttl;
            writes.push(LeaseWrite::create(Lease {
                id: LeaseId::generate()?,
                path: r.path,
                engine: r.engine,
                issued_at: now,
                ttl,
                max_ttl: r.max_ttl,
                expires_at,
                expiring_soon_at: self.expiring_soon_at(now, expires_at),
                warned: false,
                renewable: r.renewable,
                state: LeaseState::Active,
                revocation_data: r.revocation_data,
                claim: None,
            }));
        }
        // Write-ahead: each lease is on the audit record before it exists.
        let audit = self.audit_request()?;
        for lease in writes.iter().filter_map(|w| w.new.as_ref()) {
            self.audit_intent(&audit, Operation::LeaseIssue, lease.id, &lease.path)
                .await?;
        }
        let committed = match self.commit_locked(&writes).await {
            Ok(Committed::Done(_)) => Ok(()),
            Ok(Committed::RecordChanged(id)) => Err(Error::InvalidArgument(format!(
                "the new lease id {id} is already taken; issue again"
            ))),
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            for lease in writes.iter().filter_map(|w| w.new.as_ref()) {
                self.audit_failure_or_log(&audit, Operation::LeaseIssue, lease.id, &lease.path, &e)
                    .await;
            }
            return Err(e);
        }
        drop(_w);
        let leases: Vec<Lease> = writes.into_iter().filter_map(|w| w.new).collect();
        for lease in &leases {
            self.emit(LeaseEvent::Issued {
                id: lease.id,
                path: lease.path.clone(),
                expires_at: lease.expires_at,
            });
        }
        Ok(leases)
    }

    /// Refuses `requests` if they would take a quota past its limit. The
    /// counts are this manager's view: exact for one manager, and for
    /// several managers as of each one's last change under a path.
    fn check_quotas(&self, requests: &[LeaseRequest]) -> Result<()> {
        let mem = self.mem();
        let n = requests.len() as u64;
        if let Some(limit) = self.config.max_leases
            && mem.total.saturating_add(n) > limit
        {
            return Err(LeaseError::QuotaExceeded {
                scope: QuotaScope::Total,
                limit,
                count: mem.total,
            }
            .into());
        }
        for (q, &count) in self.config.prefix_quotas.iter().zip(&mem.quota_counts) {
            let k = requests
                .iter()
                .filter(|r| under_prefix(&r.path, &q.prefix))
                .count() as u64;
            if k > 0 && count.saturating_add(k) > q.max_leases {
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
        self.get_stored(id)
            .await?
            .map(|s| s.lease)
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
    /// A lease that a manager has claimed for revocation cannot be renewed.
    pub async fn renew(&self, id: LeaseId, increment: Duration) -> Result<Lease> {
        if increment.is_zero() {
            return Err(LeaseError::InvalidTtl {
                reason: "the renewal increment must be positive",
            }
            .into());
        }
        self.restore().await?;
        let now = self.clock.now();
        let current = self.renewable_lease(id, now).await?;
        let hard_end = current.lease.max_expires_at();
        let wanted = now + increment;
        let new_expiry = wanted.min(hard_end);
        let revoker = self
            .revoker(&current.lease.engine)
            .ok_or_else(|| LeaseError::NoRevoker {
                engine: current.lease.engine.clone(),
            })?;
        // Write-ahead: on record before the engine or the store changes.
        let audit = self.audit_request()?;
        let path = current.lease.path.clone();
        self.audit_intent(&audit, Operation::LeaseRenew, id, &path)
            .await?;
        let renewed = self
            .renew_recorded(id, current, revoker, now, new_expiry, wanted > hard_end)
            .await;
        if let Err(e) = &renewed {
            self.audit_failure_or_log(&audit, Operation::LeaseRenew, id, &path, e)
                .await;
        }
        renewed
    }

    /// The effect of [`LeaseManager::renew`] once it is on record.
    async fn renew_recorded(
        &self,
        id: LeaseId,
        mut current: Stored,
        revoker: Arc<dyn Revoker>,
        now: Timestamp,
        new_expiry: Timestamp,
        capped: bool,
    ) -> Result<Lease> {
        revoker.renew(&current.lease, new_expiry).await?;

        loop {
            let mut renewed = current.lease.clone();
            renewed.expires_at = new_expiry;
            renewed.expiring_soon_at = self.expiring_soon_at(now, new_expiry);
            renewed.warned = false;
            match self
                .commit(&[LeaseWrite::update(&current, renewed.clone())])
                .await?
            {
                Committed::Done(_) => {
                    self.emit(LeaseEvent::Renewed {
                        id,
                        path: renewed.path.clone(),
                        expires_at: new_expiry,
                        capped,
                    });
                    return Ok(renewed);
                }
                // Changed since read (another manager claimed, renewed or
                // warned it): check it again.
                Committed::RecordChanged(_) => current = self.renewable_lease(id, now).await?,
            }
        }
    }

    async fn renewable_lease(&self, id: LeaseId, now: Timestamp) -> Result<Stored> {
        let stored = self
            .get_stored(id)
            .await?
            .ok_or(LeaseError::NotFound { id })?;
        let lease = &stored.lease;
        if let Some(claim) = &lease.claim {
            // Claimed for revocation: expired by the claimer's clock, or
            // being revoked on request.
            return Err(match lease.state {
                LeaseState::Active => LeaseError::Expired {
                    id,
                    expired_at: lease.expires_at.min(now),
                },
                _ => LeaseError::NotActive {
                    id,
                    state: LeaseState::Revoking {
                        attempts: lease.failed_attempts(),
                        next_try: claim.until,
                    },
                },
            }
            .into());
        }
        if lease.state != LeaseState::Active {
            return Err(LeaseError::NotActive {
                id,
                state: lease.state.clone(),
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
        Ok(stored)
    }

    /// Revokes a lease now through its engine. On success the lease is
    /// deleted and returned in state [`LeaseState::Revoked`]. On failure the
    /// manager keeps retrying and this returns
    /// [`LeaseError::RevocationDeferred`] (or [`LeaseError::Irrevocable`]
    /// once attempts are used up).
    ///
    /// The lease is claimed before its revoker runs, so a manager expiring
    /// it at the same moment (in this process or another) does not revoke
    /// it too. If another manager holds it, this waits up to
    /// [`LeaseConfig::revoke_timeout`] for that manager to finish; still
    /// unfinished, it returns [`LeaseError::RevocationDeferred`] with the
    /// claim's end as the next try.
    pub async fn revoke(&self, id: LeaseId) -> Result<Lease> {
        self.restore().await?;
        match self.revoke_one(id, false, true).await? {
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
    /// `forced: true`. A lease another manager is revoking is left to it
    /// ([`LeaseError::RevocationDeferred`]).
    pub async fn force_revoke(&self, id: LeaseId) -> Result<Lease> {
        self.restore().await?;
        match self.revoke_one(id, true, true).await? {
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
            _ => Err(LeaseError::NotFound { id }.into()),
        }
    }

    /// Revokes every lease under `prefix` (whole segments; `""` for all).
    /// Leases whose engine fails are left to the retry schedule and listed
    /// as pending, as are leases another manager is revoking right now.
    pub async fn revoke_prefix(&self, prefix: &str) -> Result<PrefixRevocation> {
        self.restore().await?;
        let ids = self.list(prefix).await?;
        self.revoke_each(&ids).await
    }

    /// Revokes each of `ids` as [`LeaseManager::revoke_prefix`] does (not
    /// waiting for leases another manager is revoking; ids already gone
    /// are skipped): the authorised prefix revocation revokes exactly the
    /// leases it checked.
    pub(crate) async fn revoke_each(&self, ids: &[LeaseId]) -> Result<PrefixRevocation> {
        self.restore().await?;
        let mut out = PrefixRevocation::default();
        for &id in ids {
            match self.revoke_one(id, false, false).await? {
                Attempt::Revoked(_) => out.revoked.push(id),
                Attempt::Deferred { .. } | Attempt::Irrevocable { .. } => out.pending.push(id),
                Attempt::Gone => {}
            }
        }
        Ok(out)
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

    /// Alias of [`LeaseManager::run_due`].
    pub async fn tick(&self) -> Result<DueReport> {
        self.run_due().await
    }

    /// When the background task must next wake: the earliest entry in
    /// memory, when the horizon needs moving, or when the stored index is
    /// next read again.
    fn next_wake(&self) -> Timestamp {
        let mem = self.mem();
        // One millisecond after the point where `advance_horizon` loads more.
        let refill = mem.loaded_until - self.config.restore_horizon / 2 + Duration::from_millis(1);
        [mem.index.first(), mem.recheck.first()]
            .into_iter()
            .flatten()
            .map(|(t, _)| t)
            .fold(refill.min(mem.next_rescan), Timestamp::min)
    }

    /// **Deprecated:** attach the log with [`LeaseManager::with_audit`] (or
    /// [`LeaseConfig::audit`]) instead, which appends each record on the
    /// operation's own path before its effect and fails closed; this task
    /// reads the event channel afterwards and can fall behind, lose events
    /// (it then records only how many) and only log a failed append. Kept
    /// for existing callers; do not use both on one log (records would be
    /// written twice).
    ///
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

/// A storage key and its value as read.
type StoredKey = (String, Vec<u8>);

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
