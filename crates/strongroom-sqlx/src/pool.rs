//! The self-healing PostgreSQL pool: a [`sqlx::PgPool`] whose login
//! credentials come from a rotated credential (or, through
//! [`CredentialSource`], from a dynamic lease).
//!
//! - **Proactive**: when the source reports a change, the pool's connect
//!   options are swapped (`Pool::set_connect_options`). A [`RotatedSource`]
//!   watches the credential's rotation record in storage
//!   ([`strongroom::storage::Storage::watch`]: PostgreSQL `LISTEN/NOTIFY`,
//!   SQLite `data_version`, or polling where the store cannot announce), so
//!   a rotation done by another process reaches the pool within about a
//!   second, before any login fails. When the login role changes
//!   (alternating users, a new dynamic role), connections opened before the
//!   swap are closed gradually as they are released after use (each at a
//!   jittered point within [`HealingOptions::recycle_window`], at most one
//!   per window / pool size), never while in use. A new password for the
//!   same role (single-user rotation) leaves open sessions valid, so they
//!   are kept and only new logins use the new password. If the current
//!   version stops logging in without a promotion (a single-user rotation
//!   just set the pending password), the pool moves to whichever stored
//!   version works.
//! - **Reactive**: when a login fails with a credential error, one refresh
//!   runs for all waiting callers (single flight): it reads the stored
//!   versions (a consistent snapshot of the rotation record), tries them in
//!   the order pending, current, previous, reads again if the rotation moved
//!   on meanwhile, swaps to the first that logs in, and the callers retry
//!   their operation. After a refresh that found nothing working, callers
//!   try again when the source reports a change, when another caller's
//!   refresh swaps, or after a short backoff (100 ms doubling to 1 s),
//!   whichever comes first. The whole operation, retries included, is
//!   bounded by [`HealingOptions::budget`].
//!
//! What is a credential failure ([`classify`]): SQLSTATE `28P01` (wrong or
//! expired password, dropped role). `28000` only when
//! [`HealingOptions::external_auth`] is set (LDAP, PAM, ... report bad
//! credentials that way), and never when it is a `pg_hba.conf` rejection.
//! `3D000` (no such database), `53300` (too many connections), `57P03`
//! (starting up), network and TLS errors are returned as they are, with no
//! refresh. A `28000` for a role that may not log in (how a revoked dynamic
//! role looks while it is dropped) gets one refresh per operation: the pool
//! moves to another stored version if one logs in, and returns the error at
//! once if every stored version is refused that way. (sqlx's pool itself waits out `53300` and `57P03` until its
//! acquire timeout; the healing pool caps that timeout at the budget.)

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use strongroom::changes::{ChangeWatcher, DEFAULT_FALLBACK, StorageEvent};
use strongroom::dangerous::Door;
use strongroom::rotation::{
    Credential, RotationEngine, RotationEvent, RotationStep, STATE_PREFIX, StagedCredentials,
    StepOutcome,
};
use tokio::sync::{broadcast, watch};

/// The sqlx this pool is built on, for the operations given to
/// [`HealingPool::run`] (they receive its [`PgPool`]) by crates that do not
/// depend on sqlx themselves.
pub use sqlx;

/// How a connection or query error is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The credentials were refused: refresh and retry.
    Credential,
    /// `pg_hba.conf` rejected the connection (`28000`): not a credential
    /// problem, never retried.
    HbaRejected,
    /// Another authorization failure (`28000` without external auth, e.g. a
    /// role without `LOGIN`).
    NotAuthorized,
    /// The database does not exist (`3D000`).
    DatabaseMissing,
    /// Too many connections (`53300`).
    TooManyConnections,
    /// The server cannot accept connections now (`57P03`).
    Unavailable,
    /// The server ended the session (`57P01`, e.g. when a revoked role's
    /// sessions are terminated): the statement was rolled back; retried
    /// (bounded) on a fresh connection.
    Terminated,
    /// A network, TLS or timeout error.
    Network,
    /// Anything else (query errors and the like).
    Other,
}

/// Classifies an error (see the module docs). `external_auth`: the server
/// authenticates this role through an external method (LDAP, PAM, RADIUS,
/// ...), which reports bad credentials as `28000`.
pub fn classify(err: &sqlx::Error, external_auth: bool) -> ErrorClass {
    match err {
        sqlx::Error::Database(d) => {
            let code = d.code();
            classify_code(code.as_deref().unwrap_or(""), d.message(), external_auth)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorClass::Network,
        _ => ErrorClass::Other,
    }
}

/// Classifies a SQLSTATE with its server message (the message only matters
/// for `28000`, to recognise `pg_hba.conf` rejections; servers running with
/// non-English `lc_messages` are treated as if it were one).
pub fn classify_code(code: &str, message: &str, external_auth: bool) -> ErrorClass {
    match code {
        "28P01" => ErrorClass::Credential,
        "28000" if message.contains("pg_hba.conf") => ErrorClass::HbaRejected,
        "28000" if external_auth && message.is_ascii() => ErrorClass::Credential,
        "28000" => ErrorClass::NotAuthorized,
        "3D000" => ErrorClass::DatabaseMissing,
        "53300" => ErrorClass::TooManyConnections,
        "57P03" => ErrorClass::Unavailable,
        "57P01" => ErrorClass::Terminated,
        c if c.starts_with("08") => ErrorClass::Network,
        _ => ErrorClass::Other,
    }
}

/// Where the pool's credentials come from.
#[async_trait]
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The name shown in errors and events.
    fn name(&self) -> &str;

    /// The stored versions (for a lease: just `current`).
    async fn staged(&self) -> strongroom::Result<StagedCredentials>;

    /// Resolves when the credentials may have changed (a promotion, a new
    /// lease). The default never resolves (reactive healing only).
    async fn changed(&self) {
        std::future::pending::<()>().await;
    }
}

/// How often a [`RotatedSource`] reads the rotation record when the store
/// cannot announce changes.
pub const POLL_WITHOUT_NOTICES: Duration = Duration::from_millis(500);

/// How many times a consistent read of the stored versions is attempted
/// before the last read is used as it is.
const SNAPSHOT_ATTEMPTS: usize = 8;

/// A [`CredentialSource`] over a rotated credential in a [`Strongroom`].
///
/// It follows the credential's rotation record in storage: a change written
/// by any process sharing the store (a promotion, a roll-back, a pending
/// password set in the target) is reported through
/// [`CredentialSource::changed`] as soon as the store announces it (see
/// [`strongroom::storage::Storage::watch`]), and otherwise within the
/// polling interval ([`POLL_WITHOUT_NOTICES`] when the store cannot
/// announce; [`DEFAULT_FALLBACK`], for lost notices, when it can). With an
/// engine in the same process ([`RotatedSource::with_engine`]) it also
/// reports that engine's steps as they happen.
pub struct RotatedSource {
    sr: Door,
    name: String,
    state_key: String,
    events: Option<tokio::sync::Mutex<broadcast::Receiver<RotationEvent>>>,
    watch: tokio::sync::Mutex<RecordWatch>,
    notified: bool,
}

/// The storage side of a [`RotatedSource`]'s change reports.
struct RecordWatch {
    watcher: ChangeWatcher,
    /// The rotation record as the polling fallback last read it (`None`: not
    /// read yet).
    polled: Option<Option<Vec<u8>>>,
}

impl fmt::Debug for RotatedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatedSource")
            .field("name", &self.name)
            .field("events", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

impl RotatedSource {
    /// Reads credential `name` from `sr` and follows its rotation record in
    /// storage (rotations done by any process). Give each pool its own
    /// source: change reports are consumed by the pool that waits for them.
    pub fn new(sr: Door, name: &str) -> Self {
        let watch = Self::watch_store(&sr, None);
        Self {
            state_key: format!("{STATE_PREFIX}{name}"),
            name: name.to_owned(),
            sr,
            events: None,
            notified: watch.watcher.is_notified(),
            watch: tokio::sync::Mutex::new(watch),
        }
    }

    /// Reads the engine's credential, follows its events and its rotation
    /// record in storage.
    pub fn with_engine(sr: Door, engine: &RotationEngine) -> Self {
        let mut source = Self::new(sr, engine.name());
        source.events = Some(tokio::sync::Mutex::new(engine.subscribe()));
        source
    }

    /// Reads the rotation record every `every` when no notice arrives (by
    /// default [`POLL_WITHOUT_NOTICES`] if the store cannot announce
    /// changes, [`DEFAULT_FALLBACK`] if it can).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        let watch = Self::watch_store(&self.sr, Some(every));
        self.notified = watch.watcher.is_notified();
        self.watch = tokio::sync::Mutex::new(watch);
        self
    }

    /// Whether the store announces changes (otherwise only polling finds
    /// them).
    pub fn is_notified(&self) -> bool {
        self.notified
    }

    fn watch_store(sr: &Door, every: Option<Duration>) -> RecordWatch {
        let feed = sr.storage().watch();
        let every = every.unwrap_or(if feed.is_some() {
            DEFAULT_FALLBACK
        } else {
            POLL_WITHOUT_NOTICES
        });
        RecordWatch {
            watcher: ChangeWatcher::new(feed, every),
            polled: None,
        }
    }

    /// Resolves when the rotation record changes in storage.
    async fn record_changed(&self) {
        let mut w = self.watch.lock().await;
        loop {
            match w.watcher.next().await {
                StorageEvent::Changed(keys) => {
                    // Version records change only in the same batch as the
                    // rotation record.
                    if keys.contains(&self.state_key) {
                        return;
                    }
                }
                StorageEvent::Unknown => {
                    // Lost notices or the polling interval: compare the record.
                    match self.sr.storage().get(&self.state_key).await {
                        Ok(now) => {
                            let changed = w.polled.as_ref() != Some(&now);
                            w.polled = Some(now);
                            if changed {
                                return;
                            }
                        }
                        Err(e) => tracing::debug!(
                            credential = %self.name,
                            error = %e,
                            "could not read the rotation record; polling again"
                        ),
                    }
                }
            }
        }
    }

    /// Resolves when the in-process engine completes a step that changes
    /// what works.
    async fn engine_changed(events: &tokio::sync::Mutex<broadcast::Receiver<RotationEvent>>) {
        let mut rx = events.lock().await;
        loop {
            match rx.recv().await {
                Ok(ev)
                    if ev.outcome == StepOutcome::Completed
                        && matches!(
                            ev.step,
                            RotationStep::Promote
                                | RotationStep::SetInTarget
                                | RotationStep::RollBack
                        ) =>
                {
                    return;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    return std::future::pending().await;
                }
            }
        }
    }
}

#[async_trait]
impl CredentialSource for RotatedSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// The stored versions as of one state of the rotation record. The
    /// engine deletes a version record only in the batch that also rewrites
    /// the rotation record, so a read during which the record did not change
    /// saw every version that state names. (Reading the record and then the
    /// versions it names, while a rotator elsewhere runs back to back, can
    /// otherwise find them all revoked and deleted: an empty list.)
    async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        let storage = self.sr.storage();
        let mut before = storage.get(&self.state_key).await?;
        let mut last = StagedCredentials::default();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            last = self.sr.load_staged(&self.name).await?;
            let after = storage.get(&self.state_key).await?;
            if after == before {
                return Ok(last);
            }
            before = after;
        }
        // Still changing: a partial read is acceptable here, since a
        // refresh that finds nothing working in it reads again.
        tracing::debug!(credential = %self.name, "rotation record kept changing while read");
        Ok(last)
    }

    async fn changed(&self) {
        match &self.events {
            None => self.record_changed().await,
            Some(events) => {
                tokio::select! {
                    () = self.record_changed() => {}
                    () = Self::engine_changed(events) => {}
                }
            }
        }
    }
}

/// Settings of a [`HealingPool`].
#[derive(Clone, Debug)]
pub struct HealingOptions {
    /// The longest one operation may take, healing and retries included.
    /// Default 10 s.
    pub budget: Duration,
    /// Treat `28000` (other than `pg_hba.conf` rejections) as a credential
    /// failure: set when the server uses LDAP, PAM or another external
    /// method for this role. Default false.
    pub external_auth: bool,
    /// After a swap, connections opened with the old credentials are closed
    /// at jittered points within this window. Default 30 s.
    pub recycle_window: Duration,
}

impl Default for HealingOptions {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(10),
            external_auth: false,
            recycle_window: Duration::from_secs(30),
        }
    }
}

/// Errors of the healing pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealingError {
    /// The server refused every stored version of the credential and no new
    /// one arrived within the budget. `tried` is never empty (an empty
    /// store is [`HealingError::NoStoredVersion`]).
    #[error(
        "credential {credential:?}: the server refused every stored version (tried {tried:?}) and none worked within {budget:?}; rotate or re-issue the credential"
    )]
    NoWorkingCredential {
        /// The credential name.
        credential: String,
        /// The versions refused: those the last failed refresh tried and
        /// those the operation's own logins used.
        tried: Vec<u64>,
        /// The time budget.
        budget: Duration,
    },
    /// No stored version of the credential could be read, so there was
    /// nothing to log in with.
    #[error(
        "credential {credential:?}: the store holds no readable version to log in with (not rotated or imported yet, or its version records were removed); rotate or import the credential"
    )]
    NoStoredVersion {
        /// The credential name.
        credential: String,
        /// The time budget.
        budget: Duration,
    },
    /// The operation did not finish within the budget.
    #[error("operation did not finish within the {budget:?} budget")]
    BudgetExceeded {
        /// The time budget.
        budget: Duration,
    },
    /// A database error that healing does not handle, as it came.
    #[error("{class:?}: {source}")]
    Database {
        /// Its classification.
        class: ErrorClass,
        /// The error.
        #[source]
        source: sqlx::Error,
    },
    /// The credential could not be read from the store.
    #[error("credential source: {0}")]
    Source(#[from] strongroom::Error),
}

/// Counters (no secrets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolMetrics {
    /// Reactive refreshes run (one per single-flight group).
    pub refreshes: u64,
    /// Operations retried after a credential failure.
    pub retries: u64,
    /// Operations that failed (any error returned).
    pub failures: u64,
    /// Connect-option swaps (proactive and reactive).
    pub swaps: u64,
    /// Connections closed by the gradual recycling.
    pub recycled: u64,
}

/// What the pool did, for subscribers (no secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// Switched to a credential version.
    Swapped {
        /// The version now used for new connections.
        version: u64,
        /// The role it logs in as.
        identity: String,
        /// Whether a login failure caused it (false: a source change).
        reactive: bool,
    },
    /// A refresh found no working version.
    RefreshFailed {
        /// The versions tried.
        tried: Vec<u64>,
    },
    /// An operation is retried after a credential failure.
    Retrying {
        /// The version that was refused.
        version: u64,
    },
}

/// The first wait before a caller tries again after a failed refresh; it
/// doubles per failed refresh up to [`RETRY_MAX`].
const RETRY_INITIAL: Duration = Duration::from_millis(100);
/// The longest wait before a caller tries again after a failed refresh.
const RETRY_MAX: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Counters {
    refreshes: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    swaps: AtomicU64,
    recycled: AtomicU64,
}

/// Recycling state read by the pool's connection callbacks.
struct Recycle {
    origin: Instant,
    /// Milliseconds since `origin` of the last swap; u64::MAX: none.
    swapped_at_ms: AtomicU64,
    /// Start of the current recycling wave (the first swap after the last
    /// wave ended), so frequent swaps do not postpone recycling forever.
    wave_start_ms: AtomicU64,
    window_ms: u64,
    /// At most one connection is closed per `spacing_ms` (window divided by
    /// the pool size), so recycling never turns into a login storm however
    /// often credentials change.
    spacing_ms: u64,
    /// Milliseconds since `origin` of the last close; u64::MAX: none.
    last_close_ms: AtomicU64,
    recycled: Arc<Counters>,
}

impl Recycle {
    /// Whether a connection of this age should be closed now.
    fn should_close(&self, age: Duration) -> bool {
        let swapped = self.swapped_at_ms.load(Ordering::Relaxed);
        if swapped == u64::MAX {
            return false;
        }
        let now_ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let created_ms = now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(0));
        // A connection whose login began before the swap finishes after it,
        // still with the old credentials; so connections created up to a
        // grace period after the swap are recycled too (a new-credential one
        // among them just reconnects once).
        let grace = self.window_ms.min(2_000);
        if created_ms >= swapped.saturating_add(grace) {
            return false;
        }
        // A per-connection point in [0, window): a hash of its creation time.
        let jitter = created_ms
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
            % self.window_ms.max(1);
        let wave = self.wave_start_ms.load(Ordering::Relaxed).min(swapped);
        if now_ms.saturating_sub(wave) < jitter {
            return false;
        }
        let last = self.last_close_ms.load(Ordering::Relaxed);
        if last != u64::MAX && now_ms.saturating_sub(last) < self.spacing_ms {
            return false;
        }
        // one winner per spacing interval
        let close = self
            .last_close_ms
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if close {
            self.recycled.recycled.fetch_add(1, Ordering::Relaxed);
        }
        close
    }
}

struct Inner {
    pool: PgPool,
    base: PgConnectOptions,
    source: Arc<dyn CredentialSource>,
    options: HealingOptions,
    /// Bumped at every swap; a caller whose failure predates a swap retries.
    generation: AtomicU64,
    /// Bumped at every refresh attempt (single flight).
    refresh_epoch: AtomicU64,
    refresh_lock: tokio::sync::Mutex<RefreshOutcome>,
    active: Mutex<(u64, String)>,
    /// Bumped at every source change the watcher handled and at every
    /// swap: wakes callers waiting after a failed refresh.
    changes: watch::Sender<u64>,
    counters: Arc<Counters>,
    recycle: Arc<Recycle>,
    events: broadcast::Sender<PoolEvent>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Clone, Debug, Default)]
struct RefreshOutcome {
    ok: bool,
    tried: Vec<u64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut w) = self.watcher.lock()
            && let Some(h) = w.take()
        {
            h.abort();
        }
    }
}

/// A self-healing pool (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct HealingPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for HealingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealingPool")
            .field("source", &self.inner.source.name())
            .field("version", &self.active_version())
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

fn options_for(base: &PgConnectOptions, c: &Credential) -> Result<PgConnectOptions, HealingError> {
    let pw = std::str::from_utf8(c.secret().expose_secret()).map_err(|_| {
        HealingError::Source(strongroom::Error::InvalidArgument(
            "stored password is not UTF-8".into(),
        ))
    })?;
    Ok(base
        .clone()
        .username(c.identity())
        .password(pw)
        .disable_statement_logging())
}

impl HealingPool {
    /// Opens a pool to `base` (host, port, database, TLS; its user and
    /// password are replaced) with credentials from `source`. Finds a working
    /// stored version first, within the budget. `pool_options`' acquire
    /// timeout is capped at the budget.
    pub async fn connect(
        base: PgConnectOptions,
        pool_options: PgPoolOptions,
        source: Arc<dyn CredentialSource>,
        options: HealingOptions,
    ) -> Result<Self, HealingError> {
        let counters = Arc::new(Counters::default());
        let window_ms = u64::try_from(options.recycle_window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let recycle = Arc::new(Recycle {
            origin: Instant::now(),
            swapped_at_ms: AtomicU64::new(u64::MAX),
            wave_start_ms: AtomicU64::new(u64::MAX),
            window_ms,
            spacing_ms: window_ms / u64::from(pool_options.get_max_connections().max(1)),
            last_close_ms: AtomicU64::new(u64::MAX),
            recycled: counters.clone(),
        });
        let (first, first_opts) =
            match tokio::time::timeout(options.budget, find_working(&base, &*source, &options))
                .await
            {
                Ok(Ok(Search { found: Some(c), .. })) => {
                    let o = options_for(&base, &c)?;
                    (c, o)
                }
                Ok(Ok(Search { found: None, tried })) if tried.is_empty() => {
                    return Err(HealingError::NoStoredVersion {
                        credential: source.name().to_owned(),
                        budget: options.budget,
                    });
                }
                Ok(Ok(Search { found: None, tried })) => {
                    return Err(HealingError::NoWorkingCredential {
                        credential: source.name().to_owned(),
                        tried,
                        budget: options.budget,
                    });
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(HealingError::BudgetExceeded {
                        budget: options.budget,
                    });
                }
            };
        let timeout = pool_options.get_acquire_timeout().min(options.budget);
        let r1 = recycle.clone();
        // Old connections are closed after use (on release, off the
        // caller's path), never while picked up for a query.
        let pool = pool_options
            .acquire_timeout(timeout)
            .after_release(move |_conn, meta| {
                let keep = !r1.should_close(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .connect_lazy_with(first_opts);
        let (events, _) = broadcast::channel(256);
        let inner = Arc::new(Inner {
            pool,
            base,
            source,
            options,
            generation: AtomicU64::new(0),
            refresh_epoch: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(RefreshOutcome {
                ok: true,
                tried: vec![first.version()],
            }),
            active: Mutex::new((first.version(), first.identity().to_owned())),
            changes: watch::channel(0).0,
            counters,
            recycle,
            events,
            watcher: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let source = inner.source.clone();
        let handle = tokio::spawn(watch_source(weak, source));
        if let Ok(mut w) = inner.watcher.lock() {
            *w = Some(handle);
        }
        Ok(Self { inner })
    }

    /// The underlying sqlx pool (no healing around direct use).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The credential version new connections use.
    pub fn active_version(&self) -> u64 {
        self.inner.active.lock().map(|a| a.0).unwrap_or(0)
    }

    /// The role new connections log in as.
    pub fn active_identity(&self) -> String {
        self.inner
            .active
            .lock()
            .map(|a| a.1.clone())
            .unwrap_or_default()
    }

    /// The counters.
    pub fn metrics(&self) -> PoolMetrics {
        let c = &self.inner.counters;
        PoolMetrics {
            refreshes: c.refreshes.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            swaps: c.swaps.load(Ordering::Relaxed),
            recycled: c.recycled.load(Ordering::Relaxed),
        }
    }

    /// Events (swaps, failed refreshes, retries).
    pub fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        self.inner.events.subscribe()
    }

    /// Runs `op` against the pool, healing and retrying it after credential
    /// failures, within the budget. `op` may run more than once, so it must
    /// be safe to repeat (a login failure happens before any statement runs
    /// on that connection, but an `op` using several connections may have
    /// done work on an earlier one).
    ///
    /// ```no_run
    /// # async fn demo(pool: strongroom_sqlx::pool::HealingPool)
    /// #     -> Result<(), strongroom_sqlx::pool::HealingError> {
    /// let n: i64 = pool
    ///     .run(|p| async move { sqlx::query_scalar("SELECT 1::int8").fetch_one(&p).await })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, HealingError>
    where
        F: FnMut(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let budget = self.inner.options.budget;
        let deadline = tokio::time::Instant::now() + budget;
        // What this operation saw, for its error if it runs out of time:
        // the versions its own logins were refused with, and the outcome
        // of the last failed refresh it took part in.
        let mut refused: Vec<u64> = Vec::new();
        let mut last_failed: Option<RefreshOutcome> = None;
        let mut terminated = 0u32;
        let mut not_authorized_seen = false;
        let mut retry_wait = RETRY_INITIAL;
        let r = tokio::time::timeout_at(deadline, async {
            loop {
                let generation = self.inner.generation.load(Ordering::Acquire);
                let epoch = self.inner.refresh_epoch.load(Ordering::Acquire);
                let version = self.active_version();
                let err = match op(self.inner.pool.clone()).await {
                    Ok(t) => return Ok(t),
                    Err(e) => e,
                };
                let class = classify(&err, self.inner.options.external_auth);
                if class == ErrorClass::Terminated && terminated < 3 {
                    // The server killed the session (its role was revoked
                    // after the pool moved on): the statement was rolled
                    // back, so run the operation again on another connection.
                    terminated += 1;
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // A role that may not log in (`28000`) is how a revoked
                // dynamic role looks while it is being dropped: worth one
                // refresh, which moves to another stored version if one
                // works and otherwise returns the error at once.
                let auth_retry = match class {
                    ErrorClass::Credential => true,
                    ErrorClass::NotAuthorized if !not_authorized_seen => {
                        not_authorized_seen = true;
                        true
                    }
                    _ => false,
                };
                if !auth_retry {
                    return Err(HealingError::Database { class, source: err });
                }
                if !refused.contains(&version) {
                    refused.push(version);
                }
                self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                let _ = self.inner.events.send(PoolEvent::Retrying { version });
                if self.inner.generation.load(Ordering::Acquire) != generation {
                    continue; // someone already swapped
                }
                let outcome = self.refresh(epoch, retry_wait).await?;
                if outcome.ok {
                    retry_wait = RETRY_INITIAL;
                } else {
                    last_failed = Some(outcome);
                    retry_wait = (retry_wait * 2).min(RETRY_MAX);
                }
            }
        })
        .await;
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                // Out of time: if the server refused our logins, say which
                // versions were refused (this operation's own, and those
                // its last failed refresh tried), or that none was stored.
                let credential = self.inner.source.name().to_owned();
                match last_failed {
                    _ if refused.is_empty() => Err(HealingError::BudgetExceeded { budget }),
                    Some(o) if o.tried.is_empty() => {
                        Err(HealingError::NoStoredVersion { credential, budget })
                    }
                    last_failed => {
                        let mut tried = last_failed.map(|o| o.tried).unwrap_or_default();
                        for v in refused {
                            if !tried.contains(&v) {
                                tried.push(v);
                            }
                        }
                        Err(HealingError::NoWorkingCredential {
                            credential,
                            tried,
                            budget,
                        })
                    }
                }
            }
        };
        if r.is_err() {
            self.inner.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// One refresh for every caller that failed at `epoch` (single flight);
    /// returns its outcome. When nothing works, returns after the source
    /// reports a change, after any swap (another caller's refresh found a
    /// working version), or after `wait`, whichever comes first: the caller
    /// then tries again (the caller's deadline bounds it all). Waiting for
    /// a change alone is not enough: a change can go unannounced (a source
    /// that cannot announce, a lost notice, a pending version refused a
    /// moment before the rotator set it).
    async fn refresh(&self, epoch: u64, wait: Duration) -> Result<RefreshOutcome, HealingError> {
        let inner = &self.inner;
        let mut changes = inner.changes.subscribe();
        let outcome = {
            let mut last = inner.refresh_lock.lock().await;
            if inner.refresh_epoch.load(Ordering::Acquire) == epoch {
                inner.counters.refreshes.fetch_add(1, Ordering::Relaxed);
                let found = find_working(&inner.base, &*inner.source, &inner.options).await;
                *last = match found {
                    Ok(Search {
                        found: Some(c),
                        tried,
                    }) => {
                        if let Err(e) = self.swap(&c, true) {
                            inner.refresh_epoch.fetch_add(1, Ordering::AcqRel);
                            return Err(e);
                        }
                        RefreshOutcome { ok: true, tried }
                    }
                    Ok(Search { found: None, tried }) => {
                        tracing::warn!(
                            credential = inner.source.name(),
                            ?tried,
                            "no stored version logs in"
                        );
                        let _ = inner.events.send(PoolEvent::RefreshFailed {
                            tried: tried.clone(),
                        });
                        RefreshOutcome { ok: false, tried }
                    }
                    Err(e) => {
                        inner.refresh_epoch.fetch_add(1, Ordering::AcqRel);
                        return Err(e);
                    }
                };
                inner.refresh_epoch.fetch_add(1, Ordering::AcqRel);
            }
            last.clone()
        };
        if !outcome.ok {
            let _ = tokio::time::timeout(wait, async {
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
            .await;
        }
        Ok(outcome)
    }

    fn swap(&self, c: &Credential, reactive: bool) -> Result<(), HealingError> {
        swap_inner(&self.inner, c, reactive)
    }
}

fn swap_inner(inner: &Inner, c: &Credential, reactive: bool) -> Result<(), HealingError> {
    let opts = options_for(&inner.base, c)?;
    inner.pool.set_connect_options(opts);
    let same_role = match inner.active.lock() {
        Ok(mut a) => {
            let same = a.1 == c.identity();
            *a = (c.version(), c.identity().to_owned());
            same
        }
        Err(_) => false,
    };
    // Connections logged in as another role are recycled: that role may be
    // revoked (a lease ends, the other alternating user's password changes
    // next). A new password for the same role (a single-user rotation)
    // leaves open sessions valid, so they are kept: closing them would only
    // send more logins into the rotation's window.
    if !same_role {
        let now_ms =
            u64::try_from(inner.recycle.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let r = &inner.recycle;
        let wave = r.wave_start_ms.load(Ordering::Relaxed);
        if wave == u64::MAX || now_ms.saturating_sub(wave) > r.window_ms {
            r.wave_start_ms.store(now_ms, Ordering::Relaxed);
        }
        r.swapped_at_ms.store(now_ms, Ordering::Relaxed);
    }
    inner.generation.fetch_add(1, Ordering::AcqRel);
    inner.counters.swaps.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        version = c.version(),
        identity = c.identity(),
        reactive,
        "pool credentials swapped"
    );
    let _ = inner.events.send(PoolEvent::Swapped {
        version: c.version(),
        identity: c.identity().to_owned(),
        reactive,
    });
    // Callers waiting after a failed refresh try again with this version.
    inner.changes.send_modify(|n| *n += 1);
    Ok(())
}

/// What a search of the stored versions found.
struct Search {
    /// The first version that logged in.
    found: Option<Credential>,
    /// The versions tried, in order, each once. Empty: no version was
    /// stored (or readable) to try.
    tried: Vec<u64>,
}

/// Tries the stored versions (pending, current, previous) with a direct
/// login each; returns the first that works. Reads the source again while
/// the stored versions keep changing (at most `MAX_PASSES` reads): a
/// rotation running meanwhile may have promoted a version refused a moment
/// ago because its password was not set yet, or stored a new one.
/// `Err` is an error no refresh can help with.
async fn find_working(
    base: &PgConnectOptions,
    source: &dyn CredentialSource,
    options: &HealingOptions,
) -> Result<Search, HealingError> {
    const MAX_PASSES: usize = 3;
    let mut tried = Vec::new();
    let mut refused = false;
    let mut not_authorized = None;
    let mut last_read: Option<Vec<u64>> = None;
    for _pass in 0..MAX_PASSES {
        let staged = source.staged().await?;
        let read: Vec<u64> = staged.in_try_order().map(Credential::version).collect();
        if last_read.as_ref() == Some(&read) {
            // every version of this state was tried already
            break;
        }
        last_read = Some(read);
        for c in staged.in_try_order() {
            if !tried.contains(&c.version()) {
                tried.push(c.version());
            }
            let opts = options_for(base, c)?;
            match opts.connect().await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(Search {
                        found: Some(c.clone()),
                        tried,
                    });
                }
                Err(e) => match classify(&e, options.external_auth) {
                    ErrorClass::Credential => refused = true,
                    // another stored version may still log in
                    ErrorClass::NotAuthorized => not_authorized = Some(e),
                    class => return Err(HealingError::Database { class, source: e }),
                },
            }
        }
    }
    match not_authorized {
        // Every version that failed was refused as a role, not a password:
        // no refresh can help.
        Some(e) if !refused => Err(HealingError::Database {
            class: ErrorClass::NotAuthorized,
            source: e,
        }),
        _ => Ok(Search { found: None, tried }),
    }
}

/// A [`CredentialSource`] over dynamic PostgreSQL credentials: it holds a
/// lease and, once `refresh_fraction` of the lease's TTL has passed by the
/// clock, issues a fresh credential (a new login role) and reports the
/// change, so the pool swaps before the old lease ends. The previous
/// credential stays in `previous` and keeps working until its own lease ends
/// (PostgreSQL refuses it after `VALID UNTIL`, and revocation terminates its
/// sessions); with the default fraction of one half, the pool has half a TTL
/// to recycle its old connections, which must exceed
/// [`HealingOptions::recycle_window`]; give the pool an `idle_timeout` well
/// under half the TTL too, so an idle connection opened with the old role is
/// closed before that role is revoked.
pub struct LeaseSource {
    engine: Arc<crate::dynamic::PgDynamicCredentials>,
    definition: crate::dynamic::PgRoleDefinition,
    ttl: Option<Duration>,
    clock: Arc<dyn strongroom::clock::Clock>,
    refresh_fraction: f64,
    slots: tokio::sync::Mutex<LeaseSlots>,
}

struct LeaseSlots {
    version: u64,
    refresh_at: strongroom::clock::Timestamp,
    current: Option<Credential>,
    previous: Option<Credential>,
}

impl fmt::Debug for LeaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseSource")
            .field("definition", &self.definition.name())
            .field("refresh_fraction", &self.refresh_fraction)
            .finish_non_exhaustive()
    }
}

impl LeaseSource {
    /// Issues the first credential from `definition` (TTL `ttl`, or the
    /// definition's default) and refreshes at `refresh_fraction` (0.05..=0.95)
    /// of each lease's TTL.
    pub async fn new(
        engine: Arc<crate::dynamic::PgDynamicCredentials>,
        definition: crate::dynamic::PgRoleDefinition,
        ttl: Option<Duration>,
        clock: Arc<dyn strongroom::clock::Clock>,
        refresh_fraction: f64,
    ) -> strongroom::Result<Self> {
        let source = Self {
            engine,
            definition,
            ttl,
            clock,
            refresh_fraction: refresh_fraction.clamp(0.05, 0.95),
            slots: tokio::sync::Mutex::new(LeaseSlots {
                version: 0,
                refresh_at: strongroom::clock::Timestamp::MAX,
                current: None,
                previous: None,
            }),
        };
        source.replace().await?;
        Ok(source)
    }

    /// Issues a new credential now; the current one becomes `previous`.
    pub async fn replace(&self) -> strongroom::Result<()> {
        let (lease, cred) = self
            .engine
            .issue(&self.definition, self.ttl)
            .await
            .map_err(strongroom::Error::from)?;
        let mut slots = self.slots.lock().await;
        slots.version += 1;
        let life = lease.expires_at().saturating_since(lease.issued_at());
        slots.refresh_at = lease.issued_at() + life.mul_f64(self.refresh_fraction);
        let next = Credential::new(
            slots.version,
            cred.username.clone(),
            strongroom::SecretBytes::copy_from(cred.password.expose_secret().as_bytes()),
        );
        slots.previous = slots.current.replace(next);
        Ok(())
    }
}

#[async_trait]
impl CredentialSource for LeaseSource {
    fn name(&self) -> &str {
        self.definition.name()
    }

    async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        let slots = self.slots.lock().await;
        Ok(StagedCredentials {
            pending: None,
            current: slots.current.clone(),
            previous: slots.previous.clone(),
        })
    }

    async fn changed(&self) {
        loop {
            let at = self.slots.lock().await.refresh_at;
            self.clock.sleep_until(at).await;
            match self.replace().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, definition = self.definition.name(), "could not issue a replacement credential; retrying");
                    // Try again a little later by the same clock; the old
                    // lease is still valid until its end.
                    let retry = self.clock.now() + Duration::from_secs(1);
                    self.slots.lock().await.refresh_at = retry;
                }
            }
        }
    }
}

/// Follows the source: on each change, move to the current version if it
/// is newer than the active one (or the active one is no longer stored),
/// and wake callers waiting after a failed refresh.
async fn watch_source(weak: Weak<Inner>, source: Arc<dyn CredentialSource>) {
    loop {
        source.changed().await;
        let Some(inner) = weak.upgrade() else { return };
        follow(&inner).await;
        inner.changes.send_modify(|n| *n += 1);
    }
}

async fn follow(inner: &Inner) {
    let staged = match inner.source.staged().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(credential = inner.source.name(), error = %e, "could not read the stored versions after a change");
            return;
        }
    };
    let Some(cur) = &staged.current else { return };
    let active = inner.active.lock().map(|a| a.0).unwrap_or(0);
    let still_stored = staged.in_try_order().any(|c| c.version() == active);
    if cur.version() > active || !still_stored {
        let _ = swap_inner(inner, cur, false);
        return;
    }
    // Still on current while a pending version of the same role is being
    // set (a single-user rotation): check that current still logs in (the
    // rotation may just have replaced its password) and if not, move to
    // whichever stored version works, before callers fail on it. A pending
    // version of another role (alternating users) cannot break current. An
    // active version newer than current is a pending one a refresh found
    // working: kept until it is promoted.
    let same_role = staged
        .pending
        .as_ref()
        .is_some_and(|p| p.identity() == cur.identity());
    if cur.version() != active || !same_role {
        return;
    }
    let Ok(opts) = options_for(&inner.base, cur) else {
        return;
    };
    let refused = match opts.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            false
        }
        Err(e) => classify(&e, inner.options.external_auth) == ErrorClass::Credential,
    };
    if refused
        && let Ok(Search { found: Some(c), .. }) =
            find_working(&inner.base, &*inner.source, &inner.options).await
    {
        let _ = swap_inner(inner, &c, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(classify_code("28P01", "", false), ErrorClass::Credential);
        let hba = "pg_hba.conf rejects connection for host \"127.0.0.1\"";
        assert_eq!(classify_code("28000", hba, true), ErrorClass::HbaRejected);
        assert_eq!(
            classify_code("28000", "x", false),
            ErrorClass::NotAuthorized
        );
        assert_eq!(classify_code("28000", "x", true), ErrorClass::Credential);
        assert_eq!(
            classify_code("3D000", "", true),
            ErrorClass::DatabaseMissing
        );
        assert_eq!(
            classify_code("53300", "", true),
            ErrorClass::TooManyConnections
        );
        assert_eq!(classify_code("57P03", "", true), ErrorClass::Unavailable);
        assert_eq!(classify_code("08006", "", true), ErrorClass::Network);
        assert_eq!(classify_code("42P01", "", true), ErrorClass::Other);
    }

    fn meta(age_ms: u64) -> Duration {
        Duration::from_millis(age_ms)
    }

    #[test]
    fn recycling_closes_only_connections_older_than_the_swap_and_all_within_the_window() {
        let r = Recycle {
            origin: Instant::now() - Duration::from_secs(100),
            swapped_at_ms: AtomicU64::new(u64::MAX),
            wave_start_ms: AtomicU64::new(u64::MAX),
            window_ms: 1000,
            spacing_ms: 0,
            last_close_ms: AtomicU64::new(u64::MAX),
            recycled: Arc::default(),
        };
        // no swap yet: nothing closes
        assert!(!r.should_close(meta(50_000)));
        let now = u64::try_from(r.origin.elapsed().as_millis()).unwrap();
        // a swap 2 windows ago: every older connection closes, newer ones stay
        r.swapped_at_ms.store(now - 2000, Ordering::Relaxed);
        r.wave_start_ms.store(now - 2000, Ordering::Relaxed);
        for age in [2_500, 3_000, 10_000, 50_000] {
            assert!(r.should_close(meta(age)), "age {age}");
        }
        assert!(!r.should_close(meta(1_000)));
        // a swap just now: old connections close gradually (not all at once)
        r.swapped_at_ms.store(now, Ordering::Relaxed);
        r.wave_start_ms.store(now, Ordering::Relaxed);
        let closed = (0..200u64)
            .filter(|i| r.should_close(meta(5_000 + i * 7)))
            .count();
        assert!(closed < 100, "{closed} of 200 closed at once");
        assert!(r.recycled.recycled.load(Ordering::Relaxed) >= 4);

        // spacing: after one close, no other until the interval passes
        let spaced = Recycle {
            spacing_ms: 60_000,
            last_close_ms: AtomicU64::new(u64::MAX),
            origin: r.origin,
            swapped_at_ms: AtomicU64::new(now - 2000),
            wave_start_ms: AtomicU64::new(now - 2000),
            window_ms: 1000,
            recycled: Arc::default(),
        };
        assert!(spaced.should_close(meta(10_000)));
        assert!(!spaced.should_close(meta(10_000)));
        assert!(!spaced.should_close(meta(20_000)));
    }
}
