//! The healing pool: its shared state, connecting with the newest working
//! credential, and swapping credentials in place.

use super::*;
use strongroom::backoff::Backoff;

/// The wait before a caller tries again after a failed refresh: 100 ms,
/// doubling per failed refresh up to 1 s.
pub(super) const RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));

/// Counter (the `metrics` facade, see `strongroom::metrics`): credential
/// refreshes run by healing pools.
pub const POOL_REFRESHES: &str = "strongroom_pool_refreshes_total";
/// Counter: credential swaps (a pool moved to other credentials).
pub const POOL_SWAPS: &str = "strongroom_pool_swaps_total";
/// Counter: operations whose login the server refused, by `class`
/// (`credential` for `28P01`, `not_authorized`, `hba_rejected`).
pub const POOL_LOGIN_REFUSALS: &str = "strongroom_pool_login_refusals_total";

/// The label of a refused login's class, if it is one.
fn login_refusal_label(class: ErrorClass) -> Option<&'static str> {
    match class {
        ErrorClass::Credential => Some("credential"),
        ErrorClass::NotAuthorized => Some("not_authorized"),
        ErrorClass::HbaRejected => Some("hba_rejected"),
        _ => None,
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) refreshes: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) swaps: AtomicU64,
    pub(super) recycled: AtomicU64,
}

/// Recycling state read by the pool's connection callbacks.
pub(super) struct Recycle {
    pub(super) origin: Instant,
    /// Milliseconds since `origin` of the last swap; u64::MAX: none.
    pub(super) swapped_at_ms: AtomicU64,
    /// Start of the current recycling wave (the first swap after the last
    /// wave ended), so frequent swaps do not postpone recycling forever.
    pub(super) wave_start_ms: AtomicU64,
    pub(super) window_ms: u64,
    /// At most one connection is closed per `spacing_ms` (window divided by
    /// the pool size), so recycling never turns into a login storm however
    /// often credentials change.
    pub(super) spacing_ms: u64,
    /// Milliseconds since `origin` of the last close; u64::MAX: none.
    pub(super) last_close_ms: AtomicU64,
    pub(super) recycled: Arc<Counters>,
}

impl Recycle {
    /// Whether a connection of this age should be closed now.
    pub(super) fn should_close(&self, age: Duration) -> bool {
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

pub(super) struct Inner {
    pub(super) pool: PgPool,
    pub(super) base: PgConnectOptions,
    pub(super) source: Arc<dyn CredentialSource>,
    pub(super) options: HealingOptions,
    /// Bumped at every swap; a caller whose failure predates a swap retries.
    pub(super) generation: AtomicU64,
    /// Bumped at every refresh attempt (single flight).
    pub(super) refresh_epoch: AtomicU64,
    pub(super) refresh_lock: tokio::sync::Mutex<RefreshOutcome>,
    pub(super) active: Mutex<(u64, String)>,
    /// Bumped at every source change the watcher handled and at every
    /// swap: wakes callers waiting after a failed refresh.
    pub(super) changes: watch::Sender<u64>,
    pub(super) counters: Arc<Counters>,
    pub(super) recycle: Arc<Recycle>,
    pub(super) events: broadcast::Sender<PoolEvent>,
    pub(super) watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct RefreshOutcome {
    pub(super) ok: bool,
    pub(super) tried: Vec<u64>,
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
    pub(super) inner: Arc<Inner>,
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

pub(super) fn options_for(
    base: &PgConnectOptions,
    c: &Credential,
) -> Result<PgConnectOptions, HealingError> {
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
        // The pool generation a `28000` was last seen under.
        let mut not_authorized_at: Option<u64> = None;
        // Refreshes that failed in a row: each waits longer (`RETRY`).
        let mut failed = 0u32;
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
                if let Some(label) = login_refusal_label(class) {
                    ::metrics::counter!(POOL_LOGIN_REFUSALS, "class" => label).increment(1);
                }
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
                // refresh per pool generation (a swap since the last one
                // means this login used other credentials), which moves to
                // another stored version if one works and otherwise returns
                // the error at once.
                let auth_retry = match class {
                    ErrorClass::Credential => true,
                    ErrorClass::NotAuthorized if not_authorized_at != Some(generation) => {
                        not_authorized_at = Some(generation);
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
                let outcome = self.refresh(epoch, RETRY.delay(failed + 1)).await?;
                if outcome.ok {
                    failed = 0;
                } else {
                    last_failed = Some(outcome);
                    failed = failed.saturating_add(1);
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
    pub(super) async fn refresh(
        &self,
        epoch: u64,
        wait: Duration,
    ) -> Result<RefreshOutcome, HealingError> {
        let inner = &self.inner;
        let mut changes = inner.changes.subscribe();
        let outcome = {
            let mut last = inner.refresh_lock.lock().await;
            if inner.refresh_epoch.load(Ordering::Acquire) == epoch {
                inner.counters.refreshes.fetch_add(1, Ordering::Relaxed);
                ::metrics::counter!(POOL_REFRESHES).increment(1);
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

    pub(super) fn swap(&self, c: &Credential, reactive: bool) -> Result<(), HealingError> {
        swap_inner(&self.inner, c, reactive)
    }
}

pub(super) fn swap_inner(
    inner: &Inner,
    c: &Credential,
    reactive: bool,
) -> Result<(), HealingError> {
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
    ::metrics::counter!(POOL_SWAPS).increment(1);
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
pub(super) struct Search {
    /// The first version that logged in.
    pub(super) found: Option<Credential>,
    /// The versions tried, in order, each once. Empty: no version was
    /// stored (or readable) to try.
    pub(super) tried: Vec<u64>,
}

/// Tries the stored versions (pending, current, previous) with a direct
/// login each; returns the first that works. Reads the source again while
/// the stored versions keep changing (at most `MAX_PASSES` reads): a
/// rotation running meanwhile may have promoted a version refused a moment
/// ago because its password was not set yet, or stored a new one.
/// `Err` is an error no refresh can help with.
pub(super) async fn find_working(
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
