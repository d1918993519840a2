//! Leases: the manual clock, the lease manager (async and blocking), Python
//! revokers, lease events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use strongroom::clock::{Clock, ManualClock as CoreManualClock, SystemClock, Timestamp};
use strongroom::lease::{
    DueReport as CoreDueReport, Lease as CoreLease, LeaseConfig, LeaseId,
    LeaseManager as CoreManager, LeaseState, PrefixQuota, PrefixRevocation as CorePrefixRevocation,
};
use strongroom::{Error, SecretBytes};

use crate::lease_events::{LeaseEvents, subscribe};
use crate::revoker::{PyRevoker, awaitable_on_loop};
use crate::{Life, Secret, block, to_py};

pub(crate) fn invalid(msg: impl Into<String>) -> PyErr {
    to_py(Error::InvalidArgument(msg.into()))
}

/// A duration in seconds from an `int`, a `float` or a `datetime.timedelta`.
pub(crate) fn seconds(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = if obj.hasattr("total_seconds")? {
        obj.call_method0("total_seconds")?.extract()?
    } else {
        obj.extract()
            .map_err(|_| PyTypeError::new_err(format!("{what} must be a number of seconds")))?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        invalid(format!(
            "{what} must be a non-negative, finite number of seconds, got {secs}"
        ))
    })
}

fn as_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

// ---------------------------------------------------------------------------
// Clock

/// A clock that moves only when told to, for tests and simulations. Times
/// are milliseconds since the Unix epoch; `advance` takes seconds.
#[pyclass(module = "strongroom", frozen)]
pub struct ManualClock {
    pub(crate) inner: CoreManualClock,
}

#[pymethods]
impl ManualClock {
    /// A clock stopped at `start_ms` (milliseconds since the epoch).
    #[new]
    #[pyo3(signature = (start_ms = 0))]
    fn py_new(start_ms: u64) -> Self {
        Self {
            inner: CoreManualClock::new(Timestamp::from_millis(start_ms)),
        }
    }

    /// The current time, milliseconds since the epoch.
    fn now(&self) -> u64 {
        self.inner.now().as_millis()
    }

    /// Moves the clock forward by `seconds` (a number or a `timedelta`).
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.advance(self::seconds("seconds", seconds)?);
        Ok(())
    }

    /// Sets the clock to `ms` (forward or back).
    fn set(&self, ms: u64) {
        self.inner.set(Timestamp::from_millis(ms));
    }

    fn __repr__(&self) -> String {
        format!("ManualClock({})", self.inner.now().as_millis())
    }
}

/// The clock to use: a [`ManualClock`]'s, or the system clock.
pub(crate) fn clock_of(clock: Option<&ManualClock>) -> Arc<dyn Clock> {
    match clock {
        Some(c) => Arc::new(c.inner.clone()),
        None => Arc::new(SystemClock),
    }
}

// ---------------------------------------------------------------------------
// Plain data

/// A lease: what an engine handed out, and until when. Times are
/// milliseconds since the epoch, durations seconds.
#[pyclass(module = "strongroom", frozen)]
pub struct Lease {
    id: String,
    path: String,
    engine: String,
    issued_at: u64,
    expires_at: u64,
    max_expires_at: u64,
    ttl: f64,
    max_ttl: f64,
    renewable: bool,
    state: &'static str,
    attempts: u32,
    next_try: Option<u64>,
    /// Wiped when the `Lease` is dropped.
    data: SecretBytes,
}

impl From<&CoreLease> for Lease {
    fn from(l: &CoreLease) -> Self {
        let (state, attempts, next_try) = match l.state() {
            LeaseState::Active => ("active", 0, None),
            LeaseState::Revoking { attempts, next_try } => {
                ("revoking", *attempts, Some(next_try.as_millis()))
            }
            LeaseState::Revoked => ("revoked", 0, None),
            LeaseState::Irrevocable { attempts } => ("irrevocable", *attempts, None),
            _ => ("unknown", 0, None),
        };
        Self {
            id: l.id().to_string(),
            path: l.path().to_owned(),
            engine: l.engine().to_owned(),
            issued_at: l.issued_at().as_millis(),
            expires_at: l.expires_at().as_millis(),
            max_expires_at: l.max_expires_at().as_millis(),
            ttl: as_secs(l.ttl()),
            max_ttl: as_secs(l.max_ttl()),
            renewable: l.renewable(),
            state,
            attempts,
            next_try,
            data: SecretBytes::copy_from(l.revocation_data()),
        }
    }
}

impl From<CoreLease> for Lease {
    fn from(l: CoreLease) -> Self {
        Self::from(&l)
    }
}

#[pymethods]
impl Lease {
    /// "lease_" and 32 hex digits; not secret.
    #[getter]
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
    /// The path that issued it.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }
    /// The engine whose revoker takes it back.
    #[getter]
    fn engine(&self) -> &str {
        &self.engine
    }
    /// Issue time (ms since the epoch).
    #[getter]
    fn issued_at(&self) -> u64 {
        self.issued_at
    }
    /// Expiry (ms since the epoch), moved by renewals.
    #[getter]
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
    /// The latest expiry a renewal can reach: issue time plus max TTL (ms).
    #[getter]
    fn max_expires_at(&self) -> u64 {
        self.max_expires_at
    }
    /// The TTL it was issued with (seconds).
    #[getter]
    fn ttl(&self) -> f64 {
        self.ttl
    }
    /// The max TTL (seconds).
    #[getter]
    fn max_ttl(&self) -> f64 {
        self.max_ttl
    }
    /// Whether it may be renewed.
    #[getter]
    fn renewable(&self) -> bool {
        self.renewable
    }
    /// "active", "revoking" (failed so far, being retried), "revoked" or
    /// "irrevocable".
    #[getter]
    fn state(&self) -> &'static str {
        self.state
    }
    /// Failed revocation attempts (0 unless revoking or irrevocable).
    #[getter]
    fn attempts(&self) -> u32 {
        self.attempts
    }
    /// When a failed revocation is tried again (ms), while revoking.
    #[getter]
    fn next_try(&self) -> Option<u64> {
        self.next_try
    }
    /// The engine's revocation data, as a new `Secret` (a copy per call).
    #[getter]
    fn revocation_data(&self, py: Python<'_>) -> Secret {
        Secret::from_slice(py, self.data.expose_secret())
    }

    fn __repr__(&self) -> String {
        format!(
            "Lease(id={:?}, path={:?}, engine={:?}, expires_at={}, state={:?})",
            self.id, self.path, self.engine, self.expires_at, self.state
        )
    }
}

/// What a `run_due()` pass did.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct DueReport {
    /// Leases revoked.
    revoked: usize,
    /// Revocations that failed and were scheduled again.
    deferred: usize,
    /// Leases that became irrevocable.
    irrevocable: usize,
    /// Expiring-soon events sent.
    expiring_soon: usize,
    /// Leases whose processing hit a storage error (retried later).
    errors: usize,
}

impl From<CoreDueReport> for DueReport {
    fn from(r: CoreDueReport) -> Self {
        Self {
            revoked: r.revoked,
            deferred: r.deferred,
            irrevocable: r.irrevocable,
            expiring_soon: r.expiring_soon,
            errors: r.errors,
        }
    }
}

#[pymethods]
impl DueReport {
    fn __repr__(&self) -> String {
        format!(
            "DueReport(revoked={}, deferred={}, irrevocable={}, expiring_soon={}, errors={})",
            self.revoked, self.deferred, self.irrevocable, self.expiring_soon, self.errors
        )
    }
}

/// What `revoke_prefix()` did.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct PrefixRevocation {
    /// Ids of the leases revoked.
    revoked: Vec<String>,
    /// Ids of the leases whose engine failed (being retried, or irrevocable).
    pending: Vec<String>,
}

impl From<CorePrefixRevocation> for PrefixRevocation {
    fn from(r: CorePrefixRevocation) -> Self {
        let ids = |v: Vec<LeaseId>| v.iter().map(ToString::to_string).collect();
        Self {
            revoked: ids(r.revoked),
            pending: ids(r.pending),
        }
    }
}

#[pymethods]
impl PrefixRevocation {
    fn __repr__(&self) -> String {
        format!(
            "PrefixRevocation(revoked={:?}, pending={:?})",
            self.revoked, self.pending
        )
    }
}

// ---------------------------------------------------------------------------
// The manager: the same surface twice, async and blocking.

/// Leases in a store's storage (asyncio API): issue, renew, revoke, expire.
/// Revocation runs the Python revoker registered for the lease's engine.
#[pyclass(module = "strongroom", frozen)]
pub struct LeaseManager {
    inner: Arc<CoreManager>,
    /// The store's open/closed state.
    life: Life,
}

/// The blocking form of [`LeaseManager`] (`strongroom.blocking.LeaseManager`).
#[pyclass(module = "strongroom.blocking", name = "LeaseManager", frozen)]
pub struct BlockingLeaseManager {
    inner: Arc<CoreManager>,
    /// The store's open/closed state.
    life: Life,
}

/// Builds the core manager from the constructor's arguments.
#[allow(clippy::too_many_arguments)]
fn new_manager(
    store: &Bound<'_, PyAny>,
    clock: Option<&ManualClock>,
    max_leases: Option<u64>,
    prefix_quotas: Option<HashMap<String, u64>>,
    expiring_soon_fraction: Option<f64>,
    max_revoke_attempts: u32,
    revoke_timeout: &Bound<'_, PyAny>,
    event_capacity: usize,
) -> PyResult<(Arc<CoreManager>, Life)> {
    if !store.is_instance_of::<crate::Strongroom>()
        && !store.is_instance_of::<crate::BlockingStrongroom>()
    {
        return Err(PyTypeError::new_err(
            if store.is_instance_of::<crate::Storage>() {
                "a lease manager needs an unsealed store (a Strongroom or a blocking.Strongroom), \
                 not a Storage: lease records are sealed under the store's keys"
            } else {
                "expected a Strongroom or a blocking.Strongroom"
            },
        ));
    }
    let (store, life) = crate::store_of(store)?;
    let clock = match clock {
        Some(c) => clock_of(Some(c)),
        None => store.clock().clone(),
    };
    let mut config = LeaseConfig::default();
    config.max_leases = max_leases;
    let mut quotas: Vec<PrefixQuota> = prefix_quotas
        .unwrap_or_default()
        .into_iter()
        .map(|(p, n)| PrefixQuota::new(p, n))
        .collect();
    quotas.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    config.prefix_quotas = quotas;
    config.expiring_soon_fraction = expiring_soon_fraction;
    config.retry.max_attempts = max_revoke_attempts;
    config.revoke_timeout = seconds("revoke_timeout", revoke_timeout)?;
    config.event_capacity = event_capacity;
    store
        .lease_manager(clock, config)
        .map(|m| (Arc::new(m), life))
        .map_err(to_py)
}

fn lease_id(text: &str) -> PyResult<LeaseId> {
    text.parse().map_err(to_py)
}

fn register(m: &CoreManager, engine: String, revoker: &Bound<'_, PyAny>) -> PyResult<()> {
    if !revoker.is_callable() {
        return Err(PyTypeError::new_err(
            "the revoker must be a callable taking a Lease (a function or an async function)",
        ));
    }
    m.register_revoker(
        engine.clone(),
        Arc::new(PyRevoker {
            engine,
            callable: revoker.clone().unbind(),
        }),
    );
    Ok(())
}

fn data_of(data: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    // The core stores revocation data as plain bytes (it is an engine's
    // handle, such as a role name, not a credential).
    Ok(match data {
        Some(d) => crate::secret_input(d)?.expose_secret().to_vec(),
        None => Vec::new(),
    })
}

mod ops {
    //! The shared futures of the async and blocking classes.
    use super::*;

    pub(super) async fn issue(
        m: Arc<CoreManager>,
        path: String,
        engine: String,
        ttl: Duration,
        max_ttl: Duration,
        renewable: bool,
        data: Vec<u8>,
    ) -> strongroom::Result<Lease> {
        m.issue(&path, &engine, ttl, max_ttl, renewable, data)
            .await
            .map(Lease::from)
    }

    pub(super) async fn renew(
        m: Arc<CoreManager>,
        id: LeaseId,
        by: Duration,
    ) -> strongroom::Result<Lease> {
        m.renew(id, by).await.map(Lease::from)
    }

    pub(super) async fn revoke(
        m: Arc<CoreManager>,
        id: LeaseId,
        force: bool,
    ) -> strongroom::Result<Lease> {
        if force {
            m.force_revoke(id).await
        } else {
            m.revoke(id).await
        }
        .map(Lease::from)
    }

    pub(super) async fn revoke_prefix(
        m: Arc<CoreManager>,
        prefix: String,
    ) -> strongroom::Result<PrefixRevocation> {
        m.revoke_prefix(&prefix).await.map(PrefixRevocation::from)
    }

    pub(super) async fn lookup(m: Arc<CoreManager>, id: LeaseId) -> strongroom::Result<Lease> {
        m.lookup(id).await.map(Lease::from)
    }

    pub(super) async fn list(
        m: Arc<CoreManager>,
        prefix: String,
    ) -> strongroom::Result<Vec<String>> {
        Ok(m.list(&prefix)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    pub(super) async fn run_due(m: Arc<CoreManager>) -> strongroom::Result<DueReport> {
        m.run_due().await.map(DueReport::from)
    }
}

/// Both classes' constructors take the same arguments.
macro_rules! manager_new {
    ($t:ident, { $($rest:tt)* }) => {
        #[pymethods]
        impl $t {
            /// A lease manager over `store` (an unsealed `Strongroom` or
            /// `blocking.Strongroom`: lease records are sealed under its
            /// keys), timed by `clock` (if `None`: the store's clock). `max_leases`
            /// bounds live leases; `prefix_quotas` maps path prefixes to
            /// limits; `expiring_soon_fraction` of a TTL passes before an
            /// "expiring_soon" event (`None`: never); revocation is tried
            /// `max_revoke_attempts` times before a lease is irrevocable;
            /// one revoker call may take `revoke_timeout` seconds (async
            /// revokers called from the blocking API are not cut short).
            #[new]
            #[pyo3(signature = (store, clock = None, *, max_leases = None, prefix_quotas = None,
                expiring_soon_fraction = Some(0.75), max_revoke_attempts = 8,
                revoke_timeout = None, event_capacity = 1024))]
            #[allow(clippy::too_many_arguments)]
            fn py_new(
                py: Python<'_>,
                store: &Bound<'_, PyAny>,
                clock: Option<PyRef<'_, ManualClock>>,
                max_leases: Option<u64>,
                prefix_quotas: Option<HashMap<String, u64>>,
                expiring_soon_fraction: Option<f64>,
                max_revoke_attempts: u32,
                revoke_timeout: Option<&Bound<'_, PyAny>>,
                event_capacity: usize,
            ) -> PyResult<Self> {
                let default_timeout = 30u32.into_pyobject(py)?.into_any();
                let (inner, life) = new_manager(
                        store,
                        clock.as_deref(),
                        max_leases,
                        prefix_quotas,
                        expiring_soon_fraction,
                        max_revoke_attempts,
                        revoke_timeout.unwrap_or(&default_timeout),
                        event_capacity,
                    )?;
                Ok(Self { inner, life })
            }

            /// Registers (or replaces) the revoker of `engine`: a callable
            /// taking the `Lease`, sync or async. Returning means revoked;
            /// raising means the revocation failed and is retried (the
            /// exception becomes a `lease_revoker_failed` reason).
            fn register_revoker(&self, engine: String, revoker: &Bound<'_, PyAny>) -> PyResult<()> {
                register(&self.inner, engine, revoker)
            }

            /// A subscription to every lease event from now on.
            fn subscribe(&self) -> LeaseEvents {
                subscribe(&self.inner, &self.life)
            }

            /// Live leases in the store.
            #[getter]
            fn live_leases(&self) -> u64 {
                self.inner.stats().live_leases
            }

            $($rest)*
        }
    };
}

manager_new!(LeaseManager, {
    /// Issues a lease on `path` revoked by `engine`'s revoker, expiring
    /// `ttl` seconds from now (renewals never past `max_ttl`, default
    /// `ttl`). `data` (bytes-like) is handed to the revoker. Resolves to a
    /// `Lease`; `LeaseQuotaExceeded` when a quota is full.
    #[pyo3(signature = (path, engine, ttl, max_ttl = None, renewable = true, data = None))]
    #[allow(clippy::too_many_arguments)]
    fn issue<'py>(
        &self,
        py: Python<'py>,
        path: String,
        engine: String,
        ttl: &Bound<'py, PyAny>,
        max_ttl: Option<&Bound<'py, PyAny>>,
        renewable: bool,
        data: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ttl_d = seconds("ttl", ttl)?;
        let max = max_ttl.map(|m| seconds("max_ttl", m)).transpose()?;
        let data = data_of(data)?;
        let f = ops::issue(
            self.inner.clone(),
            path,
            engine,
            ttl_d,
            max.unwrap_or(ttl_d),
            renewable,
            data,
        );
        awaitable_on_loop(py, &self.life, f)
    }

    /// Renews a lease to expire `increment` seconds from now, capped at its
    /// max TTL. Resolves to the `Lease`.
    fn renew<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        increment: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = ops::renew(
            self.inner.clone(),
            lease_id(id)?,
            seconds("increment", increment)?,
        );
        awaitable_on_loop(py, &self.life, f)
    }

    /// Revokes a lease now through its revoker; resolves to the `Lease`
    /// (state "revoked"). `LeaseRevocationDeferred` if the revoker failed.
    fn revoke<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        awaitable_on_loop(
            py,
            &self.life,
            ops::revoke(self.inner.clone(), lease_id(id)?, false),
        )
    }

    /// Removes a lease whatever its revoker says (tried once).
    fn force_revoke<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        awaitable_on_loop(
            py,
            &self.life,
            ops::revoke(self.inner.clone(), lease_id(id)?, true),
        )
    }

    /// Revokes every lease under `prefix` (whole segments; "" for all);
    /// resolves to a `PrefixRevocation`.
    fn revoke_prefix<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable_on_loop(
            py,
            &self.life,
            ops::revoke_prefix(self.inner.clone(), prefix),
        )
    }

    /// The lease with this id; `LeaseNotFound` once revoked.
    fn lookup<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        awaitable_on_loop(
            py,
            &self.life,
            ops::lookup(self.inner.clone(), lease_id(id)?),
        )
    }

    /// Ids of the live leases under `prefix` ("" for all), in path order.
    #[pyo3(signature = (prefix = String::new()))]
    fn list<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable_on_loop(py, &self.life, ops::list(self.inner.clone(), prefix))
    }

    /// Processes everything due at the clock's time (expiring-soon events,
    /// revocations, retries); resolves to a `DueReport`.
    fn run_due<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable_on_loop(py, &self.life, ops::run_due(self.inner.clone()))
    }

    /// The blocking view of this same manager.
    fn blocking(&self) -> BlockingLeaseManager {
        BlockingLeaseManager {
            inner: self.inner.clone(),
            life: self.life.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "LeaseManager(live_leases={})",
            self.inner.stats().live_leases
        )
    }
});

manager_new!(BlockingLeaseManager, {
    /// Issues a lease (see `strongroom.LeaseManager.issue`).
    #[pyo3(signature = (path, engine, ttl, max_ttl = None, renewable = true, data = None))]
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        py: Python<'_>,
        path: String,
        engine: String,
        ttl: &Bound<'_, PyAny>,
        max_ttl: Option<&Bound<'_, PyAny>>,
        renewable: bool,
        data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Lease> {
        let ttl_d = seconds("ttl", ttl)?;
        let max = max_ttl.map(|m| seconds("max_ttl", m)).transpose()?;
        let data = data_of(data)?;
        let f = ops::issue(
            self.inner.clone(),
            path,
            engine,
            ttl_d,
            max.unwrap_or(ttl_d),
            renewable,
            data,
        );
        self.life.check()?;
        block(py, true, f)
    }

    /// Renews a lease to expire `increment` seconds from now (capped).
    fn renew(&self, py: Python<'_>, id: &str, increment: &Bound<'_, PyAny>) -> PyResult<Lease> {
        let f = ops::renew(
            self.inner.clone(),
            lease_id(id)?,
            seconds("increment", increment)?,
        );
        self.life.check()?;
        block(py, true, f)
    }

    /// Revokes a lease now through its revoker.
    fn revoke(&self, py: Python<'_>, id: &str) -> PyResult<Lease> {
        self.life.check()?;
        block(
            py,
            true,
            ops::revoke(self.inner.clone(), lease_id(id)?, false),
        )
    }

    /// Removes a lease whatever its revoker says (tried once).
    fn force_revoke(&self, py: Python<'_>, id: &str) -> PyResult<Lease> {
        self.life.check()?;
        block(
            py,
            true,
            ops::revoke(self.inner.clone(), lease_id(id)?, true),
        )
    }

    /// Revokes every lease under `prefix` ("" for all).
    fn revoke_prefix(&self, py: Python<'_>, prefix: String) -> PyResult<PrefixRevocation> {
        self.life.check()?;
        block(py, true, ops::revoke_prefix(self.inner.clone(), prefix))
    }

    /// The lease with this id.
    fn lookup(&self, py: Python<'_>, id: &str) -> PyResult<Lease> {
        self.life.check()?;
        block(py, true, ops::lookup(self.inner.clone(), lease_id(id)?))
    }

    /// Ids of the live leases under `prefix` ("" for all).
    #[pyo3(signature = (prefix = String::new()))]
    fn list(&self, py: Python<'_>, prefix: String) -> PyResult<Vec<String>> {
        self.life.check()?;
        block(py, true, ops::list(self.inner.clone(), prefix))
    }

    /// Processes everything due at the clock's time.
    fn run_due(&self, py: Python<'_>) -> PyResult<DueReport> {
        self.life.check()?;
        block(py, true, ops::run_due(self.inner.clone()))
    }

    fn __repr__(&self) -> String {
        format!(
            "LeaseManager(live_leases={})",
            self.inner.stats().live_leases
        )
    }
});

/// The core manager behind a `LeaseManager` or a `blocking.LeaseManager`.
pub(crate) fn manager_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<CoreManager>> {
    if let Ok(m) = obj.cast::<LeaseManager>() {
        return Ok(m.get().inner.clone());
    }
    if let Ok(m) = obj.cast::<BlockingLeaseManager>() {
        return Ok(m.get().inner.clone());
    }
    Err(PyTypeError::new_err(
        "expected a LeaseManager or a blocking.LeaseManager",
    ))
}
