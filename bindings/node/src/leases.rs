//! Leases: the lease manager, its events and background tasks, and
//! revokers whose work is done by JavaScript functions.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use napi::Status;
use napi::bindgen_prelude::{BufferSlice, Env, PromiseRaw};
use napi_derive::napi;

use crate::{
    Error, Lifetime, NativeClock, NativeStrongroom, closed_error, duration_ms, invalid, ms, to_js,
};

/// The background tasks of one lease manager.
#[derive(Default)]
pub(crate) struct LeaseTasks {
    /// The expiry scheduler (`LeaseManager::spawn`), while started.
    pub(crate) scheduler: Mutex<Option<strongroom::lease::TaskHandle>>,
    /// Event forwarders to JavaScript callbacks, by id.
    pub(crate) watchers: Mutex<Vec<(u32, tokio::task::AbortHandle)>>,
    pub(crate) next_watcher: std::sync::atomic::AtomicU32,
}

impl LeaseTasks {
    pub(crate) fn is_running(&self) -> bool {
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
            || !self
                .watchers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
    }

    /// Aborts the event forwarders and takes the scheduler (which stops
    /// when dropped, or when awaited with `stop()`).
    pub(crate) fn stop_all(&self) -> Option<strongroom::lease::TaskHandle> {
        for (_, w) in self
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            w.abort();
        }
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A revoker for leases that stand for nothing outside the store: revoking
/// one succeeds at once.
#[derive(Debug)]
pub(crate) struct NoopRevoker;

#[async_trait::async_trait]
impl strongroom::lease::Revoker for NoopRevoker {
    async fn revoke(&self, _lease: &strongroom::lease::Lease) -> strongroom::Result<()> {
        Ok(())
    }
}

/// Public facts about a lease (never its revocation data).
#[napi(object)]
pub struct NativeLease {
    /// "lease_" and 32 hex digits.
    pub id: String,
    /// The path it was issued for.
    pub path: String,
    /// The engine that revokes it.
    pub engine: String,
    /// Issue time (ms).
    pub issued_ms: f64,
    /// Current TTL (ms).
    pub ttl_ms: f64,
    /// Maximum TTL (ms).
    pub max_ttl_ms: f64,
    /// Expiry (ms).
    pub expires_ms: f64,
    /// The latest expiry renewals may reach (ms).
    pub max_expires_ms: f64,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// "active", "revoked", or a description of a pending revocation.
    pub state: String,
}

impl From<strongroom::lease::Lease> for NativeLease {
    fn from(l: strongroom::lease::Lease) -> Self {
        Self {
            id: l.id().to_string(),
            path: l.path().to_owned(),
            engine: l.engine().to_owned(),
            issued_ms: ms(l.issued_at()),
            ttl_ms: l.ttl().as_millis() as f64,
            max_ttl_ms: l.max_ttl().as_millis() as f64,
            expires_ms: ms(l.expires_at()),
            max_expires_ms: ms(l.max_expires_at()),
            renewable: l.renewable(),
            state: l.state().to_string(),
        }
    }
}

/// A lease event.
#[napi(object)]
pub struct NativeLeaseEvent {
    /// "issued", "renewed", "expiring_soon", "revoked", "irrevocable" or "other".
    pub kind: String,
    /// The lease id.
    pub id: Option<String>,
    /// The lease's path.
    pub path: Option<String>,
    /// The expiry, for issued / renewed / expiring_soon (ms).
    pub expires_ms: Option<f64>,
    /// Renewed: whether the max TTL cut the renewal short.
    pub capped: Option<bool>,
    /// Revoked: whether it was forced (the engine may not have revoked it).
    pub forced: Option<bool>,
    /// Irrevocable: failed attempts.
    pub attempts: Option<u32>,
    /// Irrevocable: the engine's last error message.
    pub reason: Option<String>,
}

impl From<strongroom::lease::LeaseEvent> for NativeLeaseEvent {
    fn from(e: strongroom::lease::LeaseEvent) -> Self {
        use strongroom::lease::LeaseEvent as E;
        let mut out = Self {
            kind: "other".to_owned(),
            id: None,
            path: None,
            expires_ms: None,
            capped: None,
            forced: None,
            attempts: None,
            reason: None,
        };
        let (kind, id, path) = match e {
            E::Issued {
                id,
                path,
                expires_at,
            } => {
                out.expires_ms = Some(ms(expires_at));
                ("issued", id, path)
            }
            E::Renewed {
                id,
                path,
                expires_at,
                capped,
            } => {
                out.expires_ms = Some(ms(expires_at));
                out.capped = Some(capped);
                ("renewed", id, path)
            }
            E::ExpiringSoon {
                id,
                path,
                expires_at,
            } => {
                out.expires_ms = Some(ms(expires_at));
                ("expiring_soon", id, path)
            }
            E::Revoked { id, path, forced } => {
                out.forced = Some(forced);
                ("revoked", id, path)
            }
            E::Irrevocable {
                id,
                path,
                attempts,
                reason,
            } => {
                out.attempts = Some(attempts);
                out.reason = Some(reason);
                ("irrevocable", id, path)
            }
            _ => return out,
        };
        out.kind = kind.to_owned();
        out.id = Some(id.to_string());
        out.path = Some(path);
        out
    }
}

/// What a runDue() pass did.
#[napi(object)]
pub struct NativeDueReport {
    /// Leases revoked.
    pub revoked: u32,
    /// Revocations that failed and were rescheduled.
    pub deferred: u32,
    /// Leases that became irrevocable.
    pub irrevocable: u32,
    /// Expiring-soon events sent.
    pub expiring_soon: u32,
    /// Leases that could not be processed.
    pub errors: u32,
}

/// What revokePrefix() did.
#[napi(object)]
pub struct NativePrefixRevocation {
    /// Leases revoked.
    pub revoked: Vec<String>,
    /// Leases whose revocation failed and is retried (or is irrevocable).
    pub pending: Vec<String>,
}

/// Leases over a store's storage, with the built-in "noop" engine.
#[napi]
pub struct NativeLeaseManager {
    pub(crate) manager: Arc<strongroom::lease::LeaseManager>,
    pub(crate) events:
        std::sync::Mutex<tokio::sync::broadcast::Receiver<strongroom::lease::LeaseEvent>>,
    /// The store's lifetime: calls fail once it is closed.
    pub(crate) life: Arc<Lifetime>,
    /// Its scheduler and event forwarders (also held by the store, which
    /// stops them on close).
    pub(crate) tasks: Arc<LeaseTasks>,
}

impl Drop for NativeLeaseManager {
    fn drop(&mut self) {
        drop(self.tasks.stop_all());
    }
}

impl NativeLeaseManager {
    /// The manager, unless its store is closed.
    pub(crate) fn manager(&self) -> napi::Result<Arc<strongroom::lease::LeaseManager>> {
        if self.life.is_closed() {
            return Err(closed_error("store"));
        }
        Ok(self.manager.clone())
    }
}

pub(crate) fn lease_id(text: &str) -> napi::Result<strongroom::lease::LeaseId> {
    text.parse().map_err(to_js)
}

#[napi]
impl NativeLeaseManager {
    /// Issues a lease on `path` for `engine` ("noop" is built in).
    #[napi]
    #[allow(clippy::too_many_arguments)] // one per JavaScript argument
    pub fn issue<'env>(
        &self,
        env: &'env Env,
        path: String,
        engine: String,
        ttl_ms: f64,
        max_ttl_ms: f64,
        renewable: bool,
        data: Option<BufferSlice<'_>>,
    ) -> napi::Result<PromiseRaw<'env, NativeLease>> {
        let m = self.manager()?;
        let ttl = duration_ms("ttlMs", ttl_ms)?;
        let max_ttl = duration_ms("maxTtlMs", max_ttl_ms)?;
        let data = data.map(|d| d.to_vec()).unwrap_or_default();
        env.spawn_future(async move {
            m.issue(&path, &engine, ttl, max_ttl, renewable, data)
                .await
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// Renews a lease to expire `increment_ms` from now (capped by max TTL).
    #[napi]
    pub fn renew<'env>(
        &self,
        env: &'env Env,
        id: String,
        increment_ms: f64,
    ) -> napi::Result<PromiseRaw<'env, NativeLease>> {
        let m = self.manager()?;
        let id = lease_id(&id)?;
        let inc = duration_ms("incrementMs", increment_ms)?;
        env.spawn_future(async move { m.renew(id, inc).await.map(Into::into).map_err(to_js) })
    }

    /// Revokes a lease now.
    #[napi]
    pub fn revoke<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, NativeLease>> {
        let m = self.manager()?;
        let id = lease_id(&id)?;
        env.spawn_future(async move { m.revoke(id).await.map(Into::into).map_err(to_js) })
    }

    /// Removes a lease whatever its engine says (the revoker is tried once
    /// and its failure ignored), for leases an operator cleaned up by hand.
    #[napi]
    pub fn force_revoke<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, NativeLease>> {
        let m = self.manager()?;
        let id = lease_id(&id)?;
        env.spawn_future(async move { m.force_revoke(id).await.map(Into::into).map_err(to_js) })
    }

    /// Revokes every lease under `prefix` (whole segments; "" for all).
    #[napi]
    pub fn revoke_prefix<'env>(
        &self,
        env: &'env Env,
        prefix: String,
    ) -> napi::Result<PromiseRaw<'env, NativePrefixRevocation>> {
        let m = self.manager()?;
        env.spawn_future(async move {
            let r = m.revoke_prefix(&prefix).await.map_err(to_js)?;
            let ids =
                |v: Vec<strongroom::lease::LeaseId>| v.iter().map(ToString::to_string).collect();
            Ok(NativePrefixRevocation {
                revoked: ids(r.revoked),
                pending: ids(r.pending),
            })
        })
    }

    /// The lease with this id.
    #[napi]
    pub fn lookup<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, NativeLease>> {
        let m = self.manager()?;
        let id = lease_id(&id)?;
        env.spawn_future(async move { m.lookup(id).await.map(Into::into).map_err(to_js) })
    }

    /// Ids of the live leases under `prefix`.
    #[napi]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        prefix: String,
    ) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let m = self.manager()?;
        env.spawn_future(async move {
            m.list(&prefix)
                .await
                .map(|ids| ids.iter().map(ToString::to_string).collect())
                .map_err(to_js)
        })
    }

    /// Processes everything due at the clock's current time.
    #[napi]
    pub fn run_due<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, NativeDueReport>> {
        let m = self.manager()?;
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        env.spawn_future(async move {
            let r = m.run_due().await.map_err(to_js)?;
            Ok(NativeDueReport {
                revoked: n(r.revoked),
                deferred: n(r.deferred),
                irrevocable: n(r.irrevocable),
                expiring_soon: n(r.expiring_soon),
                errors: n(r.errors),
            })
        })
    }

    /// The events since the last call (oldest first); events the buffer
    /// could not hold are skipped.
    #[napi]
    pub fn take_events(&self) -> napi::Result<Vec<NativeLeaseEvent>> {
        use tokio::sync::broadcast::error::TryRecvError;
        let mut rx = self
            .events
            .lock()
            .map_err(|_| invalid("lease events poisoned"))?;
        let mut out = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(e) => out.push(e.into()),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

#[napi]
impl NativeStrongroom {
    /// A lease manager over this store (its lease records are sealed under
    /// the store's keys), timed by `clock` (the store's clock if none), with
    /// the "noop" engine registered; at most `max_leases` live leases if
    /// given.
    #[napi]
    pub fn lease_manager(
        &self,
        clock: Option<&NativeClock>,
        max_leases: Option<f64>,
    ) -> napi::Result<NativeLeaseManager> {
        let store = self.handle()?;
        let clock = match clock {
            Some(c) => c.clock.clone(),
            None => store.clock().clone(),
        };
        let mut config = strongroom::lease::LeaseConfig::default();
        config.max_leases = max_leases
            .map(|n| {
                if n.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&n) {
                    Ok(n as u64)
                } else {
                    Err(invalid(format!(
                        "maxLeases must be a positive integer, got {n}"
                    )))
                }
            })
            .transpose()?;
        let m = store.lease_manager(clock, config).map_err(to_js)?;
        m.register_revoker("noop", Arc::new(NoopRevoker));
        let events = std::sync::Mutex::new(m.subscribe());
        let tasks = Arc::new(LeaseTasks::default());
        self.life.track(&tasks);
        Ok(NativeLeaseManager {
            manager: Arc::new(m),
            events,
            life: self.life.clone(),
            tasks,
        })
    }
}

/// A JavaScript revocation callback: called with the lease, it returns a
/// Promise that resolves when the engine took the credential back (a
/// rejection defers the revocation; the manager retries).
pub(crate) type JsRevokeFn = napi::threadsafe_function::ThreadsafeFunction<
    NativeRevokeRequest,
    napi::bindgen_prelude::Promise<()>,
    NativeRevokeRequest,
    Status,
    false,
    true,
>;

/// What a JavaScript revoker is called with: the lease and the revocation
/// data it was issued with.
#[napi(object)]
pub struct NativeRevokeRequest {
    /// The lease.
    pub lease: NativeLease,
    /// The revocation data given to `issue`.
    pub data: napi::bindgen_prelude::Uint8Array,
}

/// A revoker whose work is done by a JavaScript function.
pub(crate) struct JsRevoker {
    pub(crate) engine: String,
    pub(crate) revoke: JsRevokeFn,
}

impl std::fmt::Debug for JsRevoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsRevoker")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl strongroom::lease::Revoker for JsRevoker {
    async fn revoke(&self, lease: &strongroom::lease::Lease) -> strongroom::Result<()> {
        let failed = |e: napi::Error| {
            Error::from(strongroom::lease::LeaseError::RevokerFailed {
                engine: self.engine.clone(),
                reason: format!("the JavaScript revoker threw: {}", e.reason),
            })
        };
        let promise = self
            .revoke
            .call_async(NativeRevokeRequest {
                lease: lease.clone().into(),
                data: lease.revocation_data().to_vec().into(),
            })
            .await
            .map_err(failed)?;
        promise.await.map_err(failed)
    }
}

#[napi]
impl NativeLeaseManager {
    /// Registers `engine`, whose revocations call `revoke(lease)` (an async
    /// JavaScript function). It does not keep the process alive.
    #[napi(
        ts_args_type = "engine: string, revoke: (request: NativeRevokeRequest) => Promise<void>"
    )]
    pub fn register_engine(&self, engine: String, revoke: JsRevokeFn) -> napi::Result<()> {
        self.manager()?
            .register_revoker(engine.clone(), Arc::new(JsRevoker { engine, revoke }));
        Ok(())
    }

    /// Starts the background scheduler: it revokes expired leases (and
    /// sends expiring-soon events) when the manager's clock reaches them
    /// (a manual clock wakes it when advanced), with no `runDue()` calls.
    /// It runs on the addon's worker threads, does not keep the process
    /// alive, and stops on `stop()`, on the store's `close()`, or when the
    /// manager is garbage-collected. Returns false if it was running.
    #[napi]
    pub fn start(&self) -> napi::Result<bool> {
        let m = self.manager()?;
        let mut slot = self
            .tasks
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(false);
        }
        *slot = Some(napi::bindgen_prelude::within_runtime_if_available(|| {
            m.spawn()
        }));
        self.life.track(&self.tasks);
        Ok(true)
    }

    /// Stops the scheduler and waits until it has stopped (a lease it was
    /// working on is picked up by the next run). Resolves to whether it
    /// was running.
    #[napi]
    pub fn stop<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let task = self
            .tasks
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        env.spawn_future(async move {
            Ok(match task {
                Some(t) => {
                    t.stop().await;
                    true
                }
                None => false,
            })
        })
    }

    /// Whether the scheduler is running.
    #[napi(getter)]
    pub fn is_running(&self) -> bool {
        self.tasks
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Calls `callback` with every lease event from now on, as it happens
    /// (through a ThreadsafeFunction that does not keep the process alive).
    /// Returns the id to give to `unwatchEvents`. A callback that falls
    /// more than 1024 events behind misses the oldest.
    #[napi(ts_args_type = "callback: (event: NativeLeaseEvent) => void")]
    pub fn watch_events(&self, callback: JsEventFn) -> napi::Result<u32> {
        use napi::threadsafe_function::ThreadsafeFunctionCallMode;
        use tokio::sync::broadcast::error::RecvError;
        let mut rx = self.manager()?.subscribe();
        let task = napi::bindgen_prelude::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let status =
                            callback.call(e.into(), ThreadsafeFunctionCallMode::NonBlocking);
                        if status == Status::Closing {
                            // The JavaScript environment is going away.
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let id = self.tasks.next_watcher.fetch_add(1, Ordering::Relaxed);
        self.tasks
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, task.abort_handle()));
        self.life.track(&self.tasks);
        Ok(id)
    }

    /// Stops the event forwarder `id`; returns whether it existed.
    #[napi]
    pub fn unwatch_events(&self, id: u32) -> bool {
        let mut w = self
            .tasks
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match w.iter().position(|(i, _)| *i == id) {
            Some(p) => {
                w.swap_remove(p).1.abort();
                true
            }
            None => false,
        }
    }
}

/// A JavaScript lease-event callback.
pub(crate) type JsEventFn = napi::threadsafe_function::ThreadsafeFunction<
    NativeLeaseEvent,
    (),
    NativeLeaseEvent,
    Status,
    false,
    true,
>;
