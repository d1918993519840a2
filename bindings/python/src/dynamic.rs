//! Dynamic PostgreSQL credentials from the store's role catalog, from
//! [`strongroom_host::dynamic`]: a fresh login role per request, issued as
//! a lease of a `LeaseManager` whose revocation drops the role.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use strongroom_host::dynamic::{DynamicLogin as HostLogin, DynamicPg as HostDynamic};

use crate::lease::{Lease, manager_of, seconds};
use crate::lifetime::awaitable;
use crate::pg::{BlockingCredentialFeed, CredentialFeed, Feed};
use crate::{Life, Secret, block};

/// A dynamic credential: its lease, the role and its password.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct DynamicLogin {
    /// The lease (revoke or renew it through the lease manager).
    lease: Py<Lease>,
    /// The generated role name.
    username: String,
    /// The generated password.
    password: Py<Secret>,
}

#[pymethods]
impl DynamicLogin {
    fn __repr__(&self) -> String {
        format!(
            "DynamicLogin(lease={:?}, username={:?}, password=<redacted>)",
            self.lease.get().id(),
            self.username
        )
    }
}

struct LoginOut(HostLogin);

impl<'py> IntoPyObject<'py> for LoginOut {
    type Target = DynamicLogin;
    type Output = Bound<'py, DynamicLogin>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let l = self.0;
        Bound::new(
            py,
            DynamicLogin {
                lease: Py::new(py, Lease::from(&l.lease))?,
                username: l.username,
                password: Py::new(
                    py,
                    Secret::from_slice(py, l.password.expose_secret().as_bytes()),
                )?,
            },
        )
    }
}

/// Stores `toml` as the store's role catalog (the format of `strongroom
/// creds configure`) in place of revision `expected_revision` (`None`: none
/// may exist yet); returns the new revision. A catalog that does not check,
/// or a stale revision, raises `InvalidArgument`. Blocks (GIL released).
#[pyfunction]
#[pyo3(signature = (sr, toml, expected_revision = None))]
pub(crate) fn configure_pg_catalog(
    py: Python<'_>,
    sr: &Bound<'_, PyAny>,
    toml: String,
    expected_revision: Option<u64>,
) -> PyResult<u64> {
    let (core, life) = crate::store_of(sr)?;
    life.check()?;
    block(py, true, async move {
        strongroom_host::dynamic::configure(&core, &toml, expected_revision, "python").await
    })
}

#[derive(Clone)]
struct Inner {
    dynamic: Arc<HostDynamic>,
    life: Life,
}

async fn open(
    core: crate::Core,
    leases: Arc<strongroom::lease::LeaseManager>,
    life: Life,
) -> strongroom::Result<Inner> {
    let dynamic = HostDynamic::open(&core, core.handle(), leases).await?;
    Ok(Inner {
        dynamic: Arc::new(dynamic),
        life,
    })
}

fn ttl(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    ttl.map(|t| seconds("ttl", t)).transpose()
}

/// Dynamic PostgreSQL credentials (asyncio API). Open with
/// `await DynamicPg.open(sr, leases)`: loads the stored role catalog, reads
/// its connection secret, connects, and registers the revoker with
/// `leases` (a `LeaseManager` of the same store).
#[pyclass(module = "strongroom", frozen)]
pub struct DynamicPg {
    inner: Inner,
}

/// The blocking form of [`DynamicPg`] (`strongroom.blocking.DynamicPg`).
#[pyclass(module = "strongroom.blocking", name = "DynamicPg", frozen)]
pub struct BlockingDynamicPg {
    inner: Inner,
}

struct AsyncOut(Inner);

impl<'py> IntoPyObject<'py> for AsyncOut {
    type Target = DynamicPg;
    type Output = Bound<'py, DynamicPg>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, DynamicPg { inner: self.0 })
    }
}

#[pymethods]
impl DynamicPg {
    /// Resolves to a `DynamicPg`. No stored catalog raises
    /// `InvalidArgument`; a refused administrative login `StorageError`.
    #[staticmethod]
    fn open<'py>(
        py: Python<'py>,
        sr: &Bound<'py, PyAny>,
        leases: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (core, life) = crate::store_of(sr)?;
        let leases = manager_of(leases)?;
        life.check()?;
        let l = life.clone();
        awaitable(py, Some(&l), async move {
            open(core, leases, life).await.map(AsyncOut)
        })
    }

    /// The catalog's role names.
    fn roles(&self) -> Vec<String> {
        self.inner.dynamic.roles()
    }

    /// Issues a credential of `role` for `ttl` seconds (`None`: the role's
    /// default); resolves to a `DynamicLogin`.
    #[pyo3(signature = (role, ttl = None))]
    fn issue<'py>(
        &self,
        py: Python<'py>,
        role: String,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (d, ttl) = (self.inner.dynamic.clone(), self::ttl(ttl)?);
        awaitable(py, Some(&self.inner.life), async move {
            d.issue(None, &role, ttl).await.map(LoginOut)
        })
    }

    /// A `CredentialFeed` for a pool: a credential of `role` now and a new
    /// one once `refresh_fraction` (0.05 to 0.95) of each lease's TTL has
    /// passed on the store's clock. Resolves to the feed.
    #[pyo3(signature = (role, ttl = None, refresh_fraction = 0.5))]
    fn feed<'py>(
        &self,
        py: Python<'py>,
        role: String,
        ttl: Option<&Bound<'py, PyAny>>,
        refresh_fraction: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (d, ttl, life) = (
            self.inner.dynamic.clone(),
            self::ttl(ttl)?,
            self.inner.life.clone(),
        );
        awaitable(py, Some(&self.inner.life), async move {
            let feed = d.feed(&role, ttl, refresh_fraction).await?;
            Ok::<_, strongroom::Error>(CredentialFeed {
                inner: Feed {
                    feed: Arc::new(feed),
                    life,
                },
            })
        })
    }

    fn __repr__(&self) -> String {
        format!("DynamicPg(roles={:?})", self.inner.dynamic.roles())
    }
}

#[pymethods]
impl BlockingDynamicPg {
    /// As `DynamicPg.open`, blocking.
    #[staticmethod]
    fn open(py: Python<'_>, sr: &Bound<'_, PyAny>, leases: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (core, life) = crate::store_of(sr)?;
        let leases = manager_of(leases)?;
        life.check()?;
        let inner = block(py, true, open(core, leases, life))?;
        Ok(Self { inner })
    }

    /// The catalog's role names.
    fn roles(&self) -> Vec<String> {
        self.inner.dynamic.roles()
    }

    /// Issues a credential of `role` for `ttl` seconds (`None`: the role's
    /// default).
    #[pyo3(signature = (role, ttl = None))]
    fn issue(
        &self,
        py: Python<'_>,
        role: String,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<LoginOut> {
        self.inner.life.check()?;
        let (d, ttl) = (self.inner.dynamic.clone(), self::ttl(ttl)?);
        block(py, true, async move {
            d.issue(None, &role, ttl).await.map(LoginOut)
        })
    }

    /// A blocking `CredentialFeed` for a pool (see `DynamicPg.feed`).
    #[pyo3(signature = (role, ttl = None, refresh_fraction = 0.5))]
    fn feed(
        &self,
        py: Python<'_>,
        role: String,
        ttl: Option<&Bound<'_, PyAny>>,
        refresh_fraction: f64,
    ) -> PyResult<BlockingCredentialFeed> {
        self.inner.life.check()?;
        let (d, ttl) = (self.inner.dynamic.clone(), self::ttl(ttl)?);
        let feed = block(py, true, async move {
            d.feed(&role, ttl, refresh_fraction).await
        })?;
        Ok(BlockingCredentialFeed {
            inner: Feed {
                feed: Arc::new(feed),
                life: self.inner.life.clone(),
            },
        })
    }

    fn __repr__(&self) -> String {
        format!("DynamicPg(roles={:?})", self.inner.dynamic.roles())
    }
}

/// Adds the dynamic-credentials classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DynamicLogin>()?;
    m.add_class::<DynamicPg>()?;
    m.add("BlockingDynamicPg", m.py().get_type::<BlockingDynamicPg>())?;
    m.add_function(wrap_pyfunction!(configure_pg_catalog, m)?)?;
    Ok(())
}
