//! Leases (S7): a clock (system or manual), the lease manager, and revokers
//! written in the host language (a uniffi foreign trait; Swift: a protocol
//! with an `async throws` method). A revoker that throws becomes the core's
//! `LeaseError::RevokerFailed`, which the manager retries.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use strongroom::clock::{Clock as CoreClock, ManualClock, SystemClock, Timestamp};
use strongroom::lease::{
    Lease as CoreLease, LeaseConfig, LeaseError, LeaseEvent as CoreEvent, LeaseId,
    LeaseManager as CoreManager,
};
use tokio::sync::broadcast;

use crate::Strongroom;
use crate::errors::{Result, invalid};

/// A clock: the system clock, or a manual one that tests move.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct Clock {
    clock: Arc<dyn CoreClock>,
    manual: Option<ManualClock>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.manual.is_some() {
            "manual"
        } else {
            "system"
        };
        write!(f, "Clock({kind}, now_ms={})", self.clock.now().as_millis())
    }
}

impl Clock {
    fn manual_clock(&self) -> Result<&ManualClock> {
        self.manual
            .as_ref()
            .ok_or_else(|| invalid("only a manual clock can be moved"))
    }
}

#[uniffi::export]
impl Clock {
    /// The system clock.
    #[uniffi::constructor]
    pub fn system() -> Arc<Self> {
        Arc::new(Self {
            clock: Arc::new(SystemClock),
            manual: None,
        })
    }

    /// A manual clock stopped at `start_ms` (ms since the Unix epoch).
    #[uniffi::constructor]
    pub fn manual(start_ms: u64) -> Arc<Self> {
        let m = ManualClock::new(Timestamp::from_millis(start_ms));
        Arc::new(Self {
            clock: Arc::new(m.clone()),
            manual: Some(m),
        })
    }

    /// The current time (ms since the Unix epoch).
    pub fn now_ms(&self) -> u64 {
        self.clock.now().as_millis()
    }

    /// Moves a manual clock forward by `by_ms`.
    pub fn advance_ms(&self, by_ms: u64) -> Result<()> {
        self.manual_clock()?.advance(Duration::from_millis(by_ms));
        Ok(())
    }

    /// Sets a manual clock to `to_ms` (forward or back).
    pub fn set_ms(&self, to_ms: u64) -> Result<()> {
        self.manual_clock()?.set(Timestamp::from_millis(to_ms));
        Ok(())
    }
}

/// Public facts about a lease (never its revocation data).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Lease {
    /// "lease_" and 32 hex digits.
    pub id: String,
    /// The path it was issued for.
    pub path: String,
    /// The engine that revokes it.
    pub engine: String,
    /// Issue time (ms since the Unix epoch).
    pub issued_ms: u64,
    /// Current TTL (ms).
    pub ttl_ms: u64,
    /// Maximum TTL (ms).
    pub max_ttl_ms: u64,
    /// Expiry (ms since the Unix epoch).
    pub expires_ms: u64,
    /// The latest expiry renewals may reach (ms since the Unix epoch).
    pub max_expires_ms: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// "active", "revoked", or a description of a pending revocation.
    pub state: String,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<&CoreLease> for Lease {
    fn from(l: &CoreLease) -> Self {
        Self {
            id: l.id().to_string(),
            path: l.path().to_owned(),
            engine: l.engine().to_owned(),
            issued_ms: l.issued_at().as_millis(),
            ttl_ms: ms(l.ttl()),
            max_ttl_ms: ms(l.max_ttl()),
            expires_ms: l.expires_at().as_millis(),
            max_expires_ms: l.max_expires_at().as_millis(),
            renewable: l.renewable(),
            state: l.state().to_string(),
        }
    }
}

/// What happened to a lease (events never carry revocation data).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LeaseEvent {
    /// A lease was issued.
    Issued {
        /// The lease id.
        id: String,
        /// Its path.
        path: String,
        /// When it expires (ms).
        expires_ms: u64,
    },
    /// A lease was renewed.
    Renewed {
        /// The lease id.
        id: String,
        /// Its path.
        path: String,
        /// Its new expiry (ms).
        expires_ms: u64,
        /// Whether the max TTL cut the renewal short.
        capped: bool,
    },
    /// The configured fraction of the lease's TTL has passed.
    ExpiringSoon {
        /// The lease id.
        id: String,
        /// Its path.
        path: String,
        /// When it expires (ms).
        expires_ms: u64,
    },
    /// A lease was revoked.
    Revoked {
        /// The lease id.
        id: String,
        /// Its path.
        path: String,
        /// Whether it was forced.
        forced: bool,
    },
    /// Revocation failed too often; an operator must act.
    Irrevocable {
        /// The lease id.
        id: String,
        /// Its path.
        path: String,
        /// Failed attempts.
        attempts: u32,
        /// The revoker's last failure.
        reason: String,
    },
    /// An event this build of the FFI does not know.
    Other,
}

impl From<CoreEvent> for LeaseEvent {
    fn from(e: CoreEvent) -> Self {
        match e {
            CoreEvent::Issued {
                id,
                path,
                expires_at,
            } => Self::Issued {
                id: id.to_string(),
                path,
                expires_ms: expires_at.as_millis(),
            },
            CoreEvent::Renewed {
                id,
                path,
                expires_at,
                capped,
            } => Self::Renewed {
                id: id.to_string(),
                path,
                expires_ms: expires_at.as_millis(),
                capped,
            },
            CoreEvent::ExpiringSoon {
                id,
                path,
                expires_at,
            } => Self::ExpiringSoon {
                id: id.to_string(),
                path,
                expires_ms: expires_at.as_millis(),
            },
            CoreEvent::Revoked { id, path, forced } => Self::Revoked {
                id: id.to_string(),
                path,
                forced,
            },
            CoreEvent::Irrevocable {
                id,
                path,
                attempts,
                reason,
            } => Self::Irrevocable {
                id: id.to_string(),
                path,
                attempts,
                reason,
            },
            _ => Self::Other,
        }
    }
}

/// What a `runDue()` pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DueReport {
    /// Leases revoked.
    pub revoked: u64,
    /// Revocations that failed and were scheduled again.
    pub deferred: u64,
    /// Leases that became irrevocable.
    pub irrevocable: u64,
    /// Expiring-soon events sent.
    pub expiring_soon: u64,
    /// Entries whose processing hit a storage error (retried later).
    pub errors: u64,
}

/// What `revokePrefix()` did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PrefixRevocation {
    /// Ids of the leases revoked.
    pub revoked: Vec<String>,
    /// Ids of the leases whose revocation failed (being retried or irrevocable).
    pub pending: Vec<String>,
}

/// Settings of a lease manager; every field is optional (core defaults).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LeaseOptions {
    /// The most live leases in the store (nil: unlimited).
    #[uniffi(default = None)]
    pub max_leases: Option<u64>,
    /// Failed revocation attempts after which a lease is irrevocable.
    #[uniffi(default = None)]
    pub max_revoke_attempts: Option<u32>,
    /// How long one revoker call may take before it counts as failed (ms).
    #[uniffi(default = None)]
    pub revoke_timeout_ms: Option<u64>,
}

impl LeaseOptions {
    fn config(&self) -> LeaseConfig {
        let mut c = LeaseConfig::default();
        c.max_leases = self.max_leases;
        if let Some(n) = self.max_revoke_attempts {
            c.retry.max_attempts = n;
        }
        if let Some(t) = self.revoke_timeout_ms {
            c.revoke_timeout = Duration::from_millis(t);
        }
        c
    }
}

/// Why a host-language revoker failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum RevokerError {
    /// The revoker could not take the credential back (the manager retries).
    #[error("{reason}")]
    Failed {
        /// What went wrong (never a secret: it is logged and reported).
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for RevokerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed {
            reason: format!("the revoker raised an unexpected error: {}", e.reason),
        }
    }
}

/// A revoker written in the host language: takes back what a lease stands
/// for (a database role, a token). Must be idempotent; throw
/// `RevokerError.Failed` (or any error) to have the manager retry later.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait LeaseRevoker: Send + Sync {
    /// Revokes `lease`, using the `revocation_data` it was issued with.
    async fn revoke(
        &self,
        lease: Lease,
        revocation_data: Vec<u8>,
    ) -> std::result::Result<(), RevokerError>;
}

/// Adapts a host-language revoker to the core's `Revoker`.
struct ForeignRevoker {
    engine: String,
    inner: Arc<dyn LeaseRevoker>,
}

impl fmt::Debug for ForeignRevoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignRevoker")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl strongroom::lease::Revoker for ForeignRevoker {
    async fn revoke(&self, lease: &CoreLease) -> strongroom::Result<()> {
        let data = lease.revocation_data().to_vec();
        self.inner.revoke(Lease::from(lease), data).await.map_err(
            |RevokerError::Failed { reason }| {
                LeaseError::RevokerFailed {
                    engine: self.engine.clone(),
                    reason: format!("the foreign revoker failed: {reason}"),
                }
                .into()
            },
        )
    }
}

/// Leases in an unsealed store (their records are sealed under its keys):
/// issue, renew, revoke (through registered revokers), expire on
/// `runDue()`, events.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct LeaseManager {
    pub(crate) manager: Arc<CoreManager>,
    /// The store it came from.
    pub(crate) store: crate::StoreId,
    events: Mutex<broadcast::Receiver<CoreEvent>>,
}

impl fmt::Debug for LeaseManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.manager.stats();
        write!(f, "LeaseManager(live_leases={})", s.live_leases)
    }
}

fn lease_id(text: &str) -> Result<LeaseId> {
    Ok(text.parse::<LeaseId>()?)
}

fn ids(v: &[LeaseId]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

#[uniffi::export(async_runtime = "tokio")]
impl LeaseManager {
    /// A manager over `store` (lease records are sealed under its keys),
    /// timed by `clock` (the store's clock if nil). One manager should own
    /// a store's leases at a time.
    #[uniffi::constructor(default(clock = None, options = None))]
    pub fn new(
        store: Arc<Strongroom>,
        clock: Option<Arc<Clock>>,
        options: Option<LeaseOptions>,
    ) -> Result<Arc<Self>> {
        let clock: Arc<dyn CoreClock> = match clock {
            Some(c) => c.clock.clone(),
            None => store.core.clock().clone(),
        };
        let config = options.map(|o| o.config()).unwrap_or_default();
        let m = store.core.lease_manager(clock, config)?;
        let events = Mutex::new(m.subscribe());
        Ok(Arc::new(Self {
            manager: Arc::new(m),
            store: store.id.clone(),
            events,
        }))
    }

    /// Registers `revoker` for `engine` (replacing an earlier one).
    pub fn register_revoker(&self, engine: String, revoker: Arc<dyn LeaseRevoker>) {
        self.manager.register_revoker(
            engine.clone(),
            Arc::new(ForeignRevoker {
                engine,
                inner: revoker,
            }),
        );
    }

    /// Issues a lease on `path` for `engine`; `revocation_data` is kept for
    /// the engine's revoker (never in events or `Lease`).
    #[uniffi::method(default(revocation_data = None))]
    pub async fn issue(
        &self,
        path: String,
        engine: String,
        ttl_ms: u64,
        max_ttl_ms: u64,
        renewable: bool,
        revocation_data: Option<Vec<u8>>,
    ) -> Result<Lease> {
        let l = self
            .manager
            .issue(
                &path,
                &engine,
                Duration::from_millis(ttl_ms),
                Duration::from_millis(max_ttl_ms),
                renewable,
                revocation_data.unwrap_or_default(),
            )
            .await?;
        Ok(Lease::from(&l))
    }

    /// Renews a lease to expire `increment_ms` from now (capped at its max TTL).
    pub async fn renew(&self, id: String, increment_ms: u64) -> Result<Lease> {
        let l = self
            .manager
            .renew(lease_id(&id)?, Duration::from_millis(increment_ms))
            .await?;
        Ok(Lease::from(&l))
    }

    /// Revokes a lease now through its engine's revoker. If the revoker
    /// fails: `LeaseRevocationDeferred` (the manager retries).
    pub async fn revoke(&self, id: String) -> Result<Lease> {
        Ok(Lease::from(&self.manager.revoke(lease_id(&id)?).await?))
    }

    /// Removes a lease whatever its revoker says (tried once, failure ignored).
    pub async fn force_revoke(&self, id: String) -> Result<Lease> {
        Ok(Lease::from(
            &self.manager.force_revoke(lease_id(&id)?).await?,
        ))
    }

    /// Revokes every lease under `prefix` (whole segments; "" for all).
    pub async fn revoke_prefix(&self, prefix: String) -> Result<PrefixRevocation> {
        let r = self.manager.revoke_prefix(&prefix).await?;
        Ok(PrefixRevocation {
            revoked: ids(&r.revoked),
            pending: ids(&r.pending),
        })
    }

    /// The lease with this id (`LeaseInvalidId` for text that is no id,
    /// `LeaseNotFound` if none).
    pub async fn lookup(&self, id: String) -> Result<Lease> {
        Ok(Lease::from(&self.manager.lookup(lease_id(&id)?).await?))
    }

    /// Ids of the live leases under `prefix`.
    pub async fn list(&self, prefix: String) -> Result<Vec<String>> {
        Ok(ids(&self.manager.list(&prefix).await?))
    }

    /// Processes everything due at the clock's current time (expiry,
    /// revocation retries, expiring-soon events).
    pub async fn run_due(&self) -> Result<DueReport> {
        let r = self.manager.run_due().await?;
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        Ok(DueReport {
            revoked: n(r.revoked),
            deferred: n(r.deferred),
            irrevocable: n(r.irrevocable),
            expiring_soon: n(r.expiring_soon),
            errors: n(r.errors),
        })
    }

    /// The events since the last call, oldest first (events a full buffer
    /// could not hold are skipped).
    pub fn take_events(&self) -> Vec<LeaseEvent> {
        use broadcast::error::TryRecvError;
        let mut rx = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(e) => out.push(e.into()),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

/// Why a host-language lease event listener failed (counted, never stops
/// later events).
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum LeaseListenerError {
    /// The listener could not take the event.
    #[error("{reason}")]
    Failed {
        /// What went wrong.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for LeaseListenerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed {
            reason: format!("the listener raised an unexpected error: {}", e.reason),
        }
    }
}

/// Receives lease events as they happen, written in the host language
/// (`LeaseManager.listen`). Called in order, one event at a time, on a
/// blocking thread of the runtime; keep it quick. What it throws is counted
/// (`LeaseSubscription.listenerErrors`) and never stops later events.
#[uniffi::export(with_foreign)]
pub trait LeaseEventListener: Send + Sync {
    /// Takes one event.
    fn on_event(&self, event: LeaseEvent) -> std::result::Result<(), LeaseListenerError>;
}

/// A running `LeaseManager.listen`: events keep coming until `cancel()`
/// (or until the subscription is dropped).
#[derive(uniffi::Object)]
pub struct LeaseSubscription {
    task: tokio::task::JoinHandle<()>,
    delivered: Arc<std::sync::atomic::AtomicU64>,
    skipped: Arc<std::sync::atomic::AtomicU64>,
    errors: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for LeaseSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[uniffi::export]
impl LeaseSubscription {
    /// Stops the events (the one being delivered, if any, finishes).
    pub fn cancel(&self) {
        self.task.abort();
    }

    /// Events handed to the listener.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Events a slow listener fell too far behind to receive.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Listener calls that threw.
    pub fn listener_errors(&self) -> u64 {
        self.errors.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl LeaseManager {
    /// Pushes every event from now on to `listener`, in order (the
    /// push-style form of `takeEvents`, which keeps its own queue).
    pub async fn listen(&self, listener: Arc<dyn LeaseEventListener>) -> Arc<LeaseSubscription> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let mut rx = self.manager.subscribe();
        let (delivered, skipped, errors) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (d, s, e) = (delivered.clone(), skipped.clone(), errors.clone());
        let task = tokio::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(ev) => LeaseEvent::from(ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        s.fetch_add(n, Ordering::Relaxed);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let l = listener.clone();
                // Host code may block: not on the runtime's own threads.
                let failed = tokio::task::spawn_blocking(move || l.on_event(event).is_err())
                    .await
                    .unwrap_or(true);
                d.fetch_add(1, Ordering::Relaxed);
                if failed {
                    e.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Arc::new(LeaseSubscription {
            task,
            delivered,
            skipped,
            errors,
        })
    }
}
