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
//! records of one call share a request id (and so do those of `issue` calls
//! written together: see [`issue_batch`](LeaseManager::issue_batch)). A
//! write-ahead record with no error record after it for the same request id
//! means the operation went through (or, after a crash, may have: revokers
//! are idempotent and another member finishes a revocation it finds
//! claimed).
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
//!
//! # Files
//!
//! One job each: `model` (a lease, its id and state, a request, the
//! engine's [`Revoker`]), `error`, `config`, `events` (events and run
//! summaries), `keys` (path and engine checks, storage keys), `manager`
//! (building one, bookkeeping, restoring memory), `lifecycle` (issue,
//! lookup, renew, revoke), `claim` (sharing expiry work between managers),
//! `commit` (the checked batches), `index` and `segment` (the expiry
//! index in memory and in storage), `record` (the stored form), `audit`
//! (records before effects) and `scheduler` (the background task).

mod audit;
mod claim;
mod commit;
mod config;
mod error;
mod events;
mod index;
mod keys;
mod lifecycle;
mod manager;
mod model;
pub(crate) mod record;
mod scheduler;
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
pub use config::{LeaseConfig, PrefixQuota, RetryPolicy};
pub use error::{LeaseError, QuotaScope};
pub use events::{DueReport, LeaseEvent, LeaseStats, PrefixRevocation, RestoreStats};
pub use index::ExpiryIndex;
pub use model::{Lease, LeaseClaim, LeaseId, LeaseRequest, LeaseState, Revoker};
pub use scheduler::TaskHandle;

use keys::{
    count_key, parse_legacy_exp_key, path_key, rec_key, under_prefix, validate_engine,
    validate_path,
};

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
    /// Issue requests waiting to be written together.
    issues: Mutex<lifecycle::IssueQueue>,
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
