//! The self-healing PostgreSQL pool: a [`sqlx::PgPool`] whose login
//! credentials come from a rotated credential (or, through
//! [`CredentialSource`], from a dynamic lease).
//!
//! - **Proactive**: when the source reports a change (a rotation promoted a
//!   new version), the pool's connect options are swapped
//!   (`Pool::set_connect_options`). When the login role changes
//!   (alternating users, a new dynamic role), connections opened before the
//!   swap are closed gradually as they are released after use (each at a
//!   jittered point within [`HealingOptions::recycle_window`], at most one
//!   per window / pool size), never while in use. A new password for the
//!   same role (single-user rotation) leaves open sessions valid, so they
//!   are kept and only new logins use the new password. If the current version stops
//!   logging in without a promotion (a single-user rotation just set the
//!   pending password), the pool moves to whichever stored version works.
//! - **Reactive**: when a login fails with a credential error, one refresh
//!   runs for all waiting callers (single flight): it tries the stored
//!   versions in the order pending, current, previous, swaps to the first
//!   that logs in, and the callers retry their operation. After a refresh
//!   that found nothing working, callers wait for the source to change. The
//!   whole operation, retries included, is bounded by
//!   [`HealingOptions::budget`].
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
use strongroom::Strongroom;
use strongroom::rotation::{
    Credential, RotationEngine, RotationEvent, RotationStep, StagedCredentials, StepOutcome,
    load_staged,
};
use tokio::sync::{broadcast, watch};

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

/// A [`CredentialSource`] over a rotated credential in a [`Strongroom`].
/// With an engine in the same process ([`RotatedSource::with_engine`]) it
/// reports promotions as they happen.
pub struct RotatedSource {
    sr: Strongroom,
    name: String,
    events: Option<tokio::sync::Mutex<broadcast::Receiver<RotationEvent>>>,
}

impl fmt::Debug for RotatedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatedSource")
            .field("name", &self.name)
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl RotatedSource {
    /// Reads credential `name` from `sr` (changes are noticed only on login
    /// failures).
    pub fn new(sr: Strongroom, name: &str) -> Self {
        Self {
            sr,
            name: name.to_owned(),
            events: None,
        }
    }

    /// Reads the engine's credential and follows its events.
    pub fn with_engine(sr: Strongroom, engine: &RotationEngine) -> Self {
        Self {
            sr,
            name: engine.name().to_owned(),
            events: Some(tokio::sync::Mutex::new(engine.subscribe())),
        }
    }
}

#[async_trait]
impl CredentialSource for RotatedSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        load_staged(&self.sr, &self.name).await
    }

    async fn changed(&self) {
        let Some(events) = &self.events else {
            return std::future::pending().await;
        };
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
    /// one arrived within the budget.
    #[error(
        "credential {credential:?}: the server refused every stored version (tried {tried:?}) and none worked within {budget:?}; rotate or re-issue the credential"
    )]
    NoWorkingCredential {
        /// The credential name.
        credential: String,
        /// The versions tried in the last refresh.
        tried: Vec<u64>,
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
    /// A copy of the last completed refresh's outcome, readable at any time.
    last_outcome: Mutex<RefreshOutcome>,
    active: Mutex<(u64, String)>,
    /// Bumped by the watcher at every source change.
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
                Ok(Ok((Some(c), _))) => {
                    let o = options_for(&base, &c)?;
                    (c, o)
                }
                Ok(Ok((None, tried))) | Ok(Err(FindError::None(tried))) => {
                    return Err(HealingError::NoWorkingCredential {
                        credential: source.name().to_owned(),
                        tried,
                        budget: options.budget,
                    });
                }
                Ok(Err(FindError::Fatal(e))) => return Err(e),
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
            last_outcome: Mutex::new(RefreshOutcome {
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
        let mut refused = false;
        let mut terminated = 0u32;
        let mut not_authorized_seen = false;
        let r = tokio::time::timeout_at(deadline, async {
            loop {
                let generation = self.inner.generation.load(Ordering::Acquire);
                let epoch = self.inner.refresh_epoch.load(Ordering::Acquire);
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
                refused = true;
                let version = self.active_version();
                self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                let _ = self.inner.events.send(PoolEvent::Retrying { version });
                if self.inner.generation.load(Ordering::Acquire) != generation {
                    continue; // someone already swapped
                }
                self.refresh(epoch).await?;
            }
        })
        .await;
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                // Out of time: if the server refused our login, say so,
                // with what the last completed refresh tried.
                let last = self
                    .inner
                    .last_outcome
                    .lock()
                    .map(|o| o.clone())
                    .unwrap_or_default();
                if refused {
                    Err(HealingError::NoWorkingCredential {
                        credential: self.inner.source.name().to_owned(),
                        tried: if last.ok { Vec::new() } else { last.tried },
                        budget,
                    })
                } else {
                    Err(HealingError::BudgetExceeded { budget })
                }
            }
        };
        if r.is_err() {
            self.inner.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// One refresh for every caller that failed at `epoch` (single flight).
    /// Returns once a working version is in place or, if none works, after
    /// the source reports a change (the caller's deadline bounds the wait).
    async fn refresh(&self, epoch: u64) -> Result<(), HealingError> {
        let inner = &self.inner;
        let mut changes = inner.changes.subscribe();
        let outcome = {
            let mut last = inner.refresh_lock.lock().await;
            if inner.refresh_epoch.load(Ordering::Acquire) == epoch {
                inner.counters.refreshes.fetch_add(1, Ordering::Relaxed);
                *last = match find_working(&inner.base, &*inner.source, &inner.options).await {
                    Ok((Some(c), tried)) => {
                        self.swap(&c, true)?;
                        RefreshOutcome { ok: true, tried }
                    }
                    Ok((None, tried)) | Err(FindError::None(tried)) => {
                        let _ = inner.events.send(PoolEvent::RefreshFailed {
                            tried: tried.clone(),
                        });
                        RefreshOutcome { ok: false, tried }
                    }
                    Err(FindError::Fatal(e)) => {
                        inner.refresh_epoch.fetch_add(1, Ordering::AcqRel);
                        return Err(e);
                    }
                };
                inner.refresh_epoch.fetch_add(1, Ordering::AcqRel);
                if let Ok(mut copy) = inner.last_outcome.lock() {
                    *copy = last.clone();
                }
            }
            last.clone()
        };
        if !outcome.ok {
            // Nothing works now: wait for the source to change (or the deadline).
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        Ok(())
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
    Ok(())
}

enum FindError {
    None(Vec<u64>),
    Fatal(HealingError),
}

/// Tries the stored versions (pending, current, previous) with a direct
/// login each; returns the first that works.
async fn find_working(
    base: &PgConnectOptions,
    source: &dyn CredentialSource,
    options: &HealingOptions,
) -> Result<(Option<Credential>, Vec<u64>), FindError> {
    let mut tried = Vec::new();
    let mut refused = false;
    let mut not_authorized = None;
    // A second pass reads the store again: a rotation that set a new
    // password while the first pass was logging in has stored that version
    // first (write-ahead), so it is found without waiting for the promotion.
    for _pass in 0..2 {
        let staged = source
            .staged()
            .await
            .map_err(|e| FindError::Fatal(e.into()))?;
        let mut new_versions = false;
        for c in staged.in_try_order() {
            if tried.contains(&c.version()) {
                continue;
            }
            new_versions = true;
            tried.push(c.version());
            let opts = options_for(base, c).map_err(FindError::Fatal)?;
            match opts.connect().await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok((Some(c.clone()), tried));
                }
                Err(e) => match classify(&e, options.external_auth) {
                    ErrorClass::Credential => refused = true,
                    // another stored version may still log in
                    ErrorClass::NotAuthorized => not_authorized = Some(e),
                    class => {
                        return Err(FindError::Fatal(HealingError::Database {
                            class,
                            source: e,
                        }));
                    }
                },
            }
        }
        if !new_versions {
            break;
        }
    }
    match not_authorized {
        // Every version that failed was refused as a role, not a password:
        // no refresh can help.
        Some(e) if !refused => Err(FindError::Fatal(HealingError::Database {
            class: ErrorClass::NotAuthorized,
            source: e,
        })),
        _ => Err(FindError::None(tried)),
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

/// Follows the source: on each change, swap proactively to the current
/// version if it differs, and wake callers waiting after a failed refresh.
async fn watch_source(weak: Weak<Inner>, source: Arc<dyn CredentialSource>) {
    loop {
        source.changed().await;
        let Some(inner) = weak.upgrade() else { return };
        if let Ok(staged) = source.staged().await
            && let Some(cur) = staged.current
        {
            let active = inner.active.lock().map(|a| a.0).unwrap_or(0);
            if cur.version() != active {
                let _ = swap_inner(&inner, &cur, false);
            } else if let Ok(opts) = options_for(&inner.base, &cur) {
                // Still on current: check it still logs in (a single-user
                // rotation may just have replaced its password) and if not,
                // move to whichever stored version works, before callers
                // fail on it.
                let refused = match opts.connect().await {
                    Ok(conn) => {
                        let _ = conn.close().await;
                        false
                    }
                    Err(e) => classify(&e, inner.options.external_auth) == ErrorClass::Credential,
                };
                if refused
                    && let Ok((Some(c), _)) =
                        find_working(&inner.base, &*inner.source, &inner.options).await
                {
                    let _ = swap_inner(&inner, &c, false);
                }
            }
        }
        inner.changes.send_modify(|n| *n += 1);
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
