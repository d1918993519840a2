//! PostgreSQL password rotation and the credential feed Python pools log
//! in with, from [`strongroom_host::pg`]. The pools themselves (asyncpg,
//! psycopg, SQLAlchemy) are wired in `python/strongroom/pg.py`.

use std::sync::Arc;

use pyo3::prelude::*;
use strongroom::rotation::RotationOptions;
use strongroom_host::pg::{
    AfterError as HostAfterError, CredentialFeed as HostFeed, PgLogin as HostLogin,
    PgRotation as HostRotation, PgRotationMode,
};

use crate::lifetime::awaitable;
use crate::rotation::{RotationReport, RotationStatus, StagedOut, options};
use crate::{Core, Life, Secret, block};

/// A login for one new connection: the stored version it came from, the
/// role and its password (a `Secret`; `repr` never shows it).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct PgLogin {
    /// The stored version (give it back to `after_error`).
    version: u64,
    /// The role to log in as.
    username: String,
    /// The password.
    password: Py<Secret>,
}

#[pymethods]
impl PgLogin {
    fn __repr__(&self) -> String {
        format!(
            "PgLogin(version={}, username={:?}, password=<redacted>)",
            self.version, self.username
        )
    }
}

fn login(py: Python<'_>, l: HostLogin) -> PyResult<Bound<'_, PgLogin>> {
    let password = Py::new(py, Secret::from_slice(py, l.password.expose_secret()))?;
    Bound::new(
        py,
        PgLogin {
            version: l.version,
            username: l.username,
            password,
        },
    )
}

/// Hands an optional login to Python (`None` if nothing is stored yet).
struct LoginOut(Option<HostLogin>);

impl<'py> IntoPyObject<'py> for LoginOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        match self.0 {
            Some(l) => Ok(login(py, l)?.into_any()),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

/// What a pool should do after a server error: `kind` is `"retry"` (a
/// refused login and another stored version to try: `login`),
/// `"no-other-credential"` (a refused login and nothing else to try: raise
/// the server's error) or `"not-a-credential-error"` (raise it; the feed
/// did nothing).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct AfterError {
    /// `"retry"`, `"no-other-credential"` or `"not-a-credential-error"`.
    kind: &'static str,
    /// The login to connect with next, for `"retry"`.
    login: Option<Py<PgLogin>>,
}

#[pymethods]
impl AfterError {
    fn __repr__(&self) -> String {
        let v = self.login.as_ref().map(|l| l.get().version);
        format!("AfterError(kind={:?}, version={v:?})", self.kind)
    }
}

struct AfterOut(HostAfterError);

impl<'py> IntoPyObject<'py> for AfterOut {
    type Target = AfterError;
    type Output = Bound<'py, AfterError>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let (kind, login) = match self.0 {
            HostAfterError::Retry(l) => ("retry", Some(login(py, l)?.unbind())),
            HostAfterError::NoOtherCredential => ("no-other-credential", None),
            _ => ("not-a-credential-error", None),
        };
        Bound::new(py, AfterError { kind, login })
    }
}

/// The feed and the store's open/closed state.
#[derive(Clone)]
pub(crate) struct Feed {
    pub(crate) feed: Arc<HostFeed>,
    pub(crate) life: Life,
}

/// The logins a pool uses for new connections (asyncio API), read from a
/// rotated credential's stored versions. After a refused login (SQLSTATE
/// 28P01) `after_error` records the refused version once, however many
/// connections report it, and gives the next login to try.
#[pyclass(module = "strongroom", frozen)]
pub struct CredentialFeed {
    pub(crate) inner: Feed,
}

/// The blocking form of [`CredentialFeed`] (`strongroom.blocking.CredentialFeed`).
#[pyclass(module = "strongroom.blocking", name = "CredentialFeed", frozen)]
pub struct BlockingCredentialFeed {
    pub(crate) inner: Feed,
}

fn feed_of(sr: &Bound<'_, PyAny>, name: &str, external_auth: bool) -> PyResult<Feed> {
    let (core, life) = crate::store_of(sr)?;
    Ok(Feed {
        feed: Arc::new(HostFeed::rotated(core, name).external_auth(external_auth)),
        life,
    })
}

/// Both feed classes' synchronous methods.
macro_rules! feed_common {
    ($t:ident, { $($rest:tt)* }) => {
        #[pymethods]
        impl $t {
            /// A feed of rotated credential `name` in store `sr` (any
            /// process may rotate it). `external_auth=True` when the server
            /// checks the role's password through LDAP, PAM or RADIUS
            /// (a bad password then comes as 28000).
            #[staticmethod]
            #[pyo3(signature = (sr, name, *, external_auth = false))]
            fn rotated(sr: &Bound<'_, PyAny>, name: &str, external_auth: bool) -> PyResult<Self> {
                Ok(Self { inner: feed_of(sr, name, external_auth)? })
            }

            /// How many refreshes refused logins caused (one per refused
            /// version, however many connections saw it).
            #[getter]
            fn refreshes(&self) -> u64 {
                self.inner.feed.refreshes()
            }

            fn __repr__(&self) -> String {
                format!("CredentialFeed(refreshes={})", self.inner.feed.refreshes())
            }

            $($rest)*
        }
    };
}

feed_common!(CredentialFeed, {
    /// The login for a new connection; resolves to a `PgLogin`, or `None`
    /// when nothing was rotated or imported yet.
    fn login<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let f = self.inner.feed.clone();
        awaitable(py, Some(&self.inner.life), async move {
            f.login().await.map(LoginOut)
        })
    }

    /// Tells the feed the server answered a login with `version` with
    /// SQLSTATE `sqlstate` and `message`; resolves to an `AfterError`.
    fn after_error<'py>(
        &self,
        py: Python<'py>,
        version: u64,
        sqlstate: String,
        message: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = self.inner.feed.clone();
        awaitable(py, Some(&self.inner.life), async move {
            f.after_error(version, &sqlstate, &message)
                .await
                .map(AfterOut)
        })
    }

    /// The blocking view of this same feed (shares its refusals).
    fn blocking(&self) -> BlockingCredentialFeed {
        BlockingCredentialFeed {
            inner: self.inner.clone(),
        }
    }
});

feed_common!(BlockingCredentialFeed, {
    /// The login for a new connection (`None` if nothing is stored yet).
    fn login(&self, py: Python<'_>) -> PyResult<LoginOut> {
        self.inner.life.check()?;
        let f = self.inner.feed.clone();
        block(py, true, async move { f.login().await.map(LoginOut) })
    }

    /// As `CredentialFeed.after_error`; returns an `AfterError`.
    fn after_error(
        &self,
        py: Python<'_>,
        version: u64,
        sqlstate: String,
        message: String,
    ) -> PyResult<AfterOut> {
        self.inner.life.check()?;
        let f = self.inner.feed.clone();
        block(py, true, async move {
            f.after_error(version, &sqlstate, &message)
                .await
                .map(AfterOut)
        })
    }
});

/// The rotation, its feed's store and the store's open/closed state.
#[derive(Clone)]
struct Inner {
    rot: Arc<HostRotation>,
    core: Core,
    name: String,
    life: Life,
}

fn mode(mode: &str) -> PyResult<PgRotationMode> {
    match mode {
        "alternating" => Ok(PgRotationMode::Alternating),
        "single" => Ok(PgRotationMode::SingleUser),
        other => Err(crate::lease::invalid(format!(
            "mode must be \"alternating\" or \"single\", got {other:?}"
        ))),
    }
}

async fn open(
    core: Core,
    life: Life,
    name: String,
    admin_url: String,
    role: String,
    mode: PgRotationMode,
    options: RotationOptions,
) -> strongroom::Result<Inner> {
    let rot = HostRotation::open(&core, &name, &admin_url, &role, mode, options).await?;
    Ok(Inner {
        rot: Arc::new(rot),
        core,
        name,
        life,
    })
}

mod ops {
    //! The shared futures of the async and blocking classes.
    use super::*;

    pub(super) async fn rotate_now(i: Inner) -> strongroom::Result<RotationReport> {
        i.rot.engine().rotate_now().await.map(RotationReport::from)
    }

    pub(super) async fn staged(i: Inner) -> strongroom::Result<StagedOut> {
        i.rot.engine().staged().await.map(StagedOut)
    }

    pub(super) async fn status(i: Inner) -> strongroom::Result<RotationStatus> {
        i.rot.engine().status().await.map(RotationStatus::from)
    }

    pub(super) async fn revoke_due(i: Inner) -> strongroom::Result<bool> {
        i.rot.engine().revoke_due().await
    }

    pub(super) async fn close(i: Inner) -> strongroom::Result<()> {
        i.rot.close().await;
        Ok(())
    }
}

/// A rotated PostgreSQL password (asyncio API): the credential `name` in
/// the store, for `role` on the server and database of `admin_url`,
/// administered through `admin_url`'s login (a role with `CREATEROLE`).
/// `mode="alternating"` uses two login roles `<role>_a` / `<role>_b`
/// (created if missing) so logins never fail during a rotation;
/// `mode="single"` changes the one role's password. Open with
/// `await PgRotation.open(sr, name, admin_url, role, ...)`.
#[pyclass(module = "strongroom", frozen)]
pub struct PgRotation {
    inner: Inner,
}

/// The blocking form of [`PgRotation`] (`strongroom.blocking.PgRotation`).
#[pyclass(module = "strongroom.blocking", name = "PgRotation", frozen)]
pub struct BlockingPgRotation {
    inner: Inner,
}

struct AsyncOut(Inner);

impl<'py> IntoPyObject<'py> for AsyncOut {
    type Target = PgRotation;
    type Output = Bound<'py, PgRotation>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, PgRotation { inner: self.0 })
    }
}

impl Inner {
    fn feed(&self, external_auth: bool) -> Feed {
        Feed {
            feed: Arc::new(
                HostFeed::rotated(self.core.clone(), &self.name).external_auth(external_auth),
            ),
            life: self.life.clone(),
        }
    }
}

/// Both rotation classes' synchronous methods.
macro_rules! pg_common {
    ($t:ident, { $($rest:tt)* }) => {
        #[pymethods]
        impl $t {
            /// The credential's name.
            #[getter]
            fn name(&self) -> String {
                self.inner.name.clone()
            }

            fn __repr__(&self) -> String {
                format!("PgRotation({:?})", self.inner.name)
            }

            $($rest)*
        }
    };
}

pg_common!(PgRotation, {
    /// Opens the rotation (does not rotate); resolves to a `PgRotation`.
    /// A malformed URL, a refused login or missing privileges raise
    /// `StorageError` (never quoting the URL).
    #[staticmethod]
    #[pyo3(signature = (sr, name, admin_url, role, *, mode = "alternating", grace_period = None))]
    fn open<'py>(
        py: Python<'py>,
        sr: &Bound<'py, PyAny>,
        name: String,
        admin_url: String,
        role: String,
        mode: &str,
        grace_period: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (core, life) = crate::store_of(sr)?;
        let (mode, options) = (self::mode(mode)?, options(grace_period)?);
        let l = life.clone();
        awaitable(py, Some(&l), async move {
            open(core, life, name, admin_url, role, mode, options)
                .await
                .map(AsyncOut)
        })
    }

    /// Rotates now (revoking a previous version first): creates, sets,
    /// tests and promotes a new password. Resolves to a `RotationReport`.
    fn rotate_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(
            py,
            Some(&self.inner.life),
            ops::rotate_now(self.inner.clone()),
        )
    }

    /// The stored versions; resolves to `Staged`.
    fn staged<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, Some(&self.inner.life), ops::staged(self.inner.clone()))
    }

    /// The non-secret state; resolves to a `RotationStatus`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, Some(&self.inner.life), ops::status(self.inner.clone()))
    }

    /// Revokes the previous password if its grace period (on the store's
    /// clock) is over; resolves to whether it revoked one.
    fn revoke_due<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(
            py,
            Some(&self.inner.life),
            ops::revoke_due(self.inner.clone()),
        )
    }

    /// A new `CredentialFeed` of this credential for a pool.
    #[pyo3(signature = (*, external_auth = false))]
    fn credential_feed(&self, external_auth: bool) -> PyResult<CredentialFeed> {
        self.inner.life.check()?;
        Ok(CredentialFeed {
            inner: self.inner.feed(external_auth),
        })
    }

    /// Closes the administrative connections (awaitable).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, None, ops::close(self.inner.clone()))
    }

    /// The blocking view of this same rotation.
    fn blocking(&self) -> BlockingPgRotation {
        BlockingPgRotation {
            inner: self.inner.clone(),
        }
    }
});

pg_common!(BlockingPgRotation, {
    /// Opens the rotation (does not rotate).
    #[staticmethod]
    #[pyo3(signature = (sr, name, admin_url, role, *, mode = "alternating", grace_period = None))]
    fn open(
        py: Python<'_>,
        sr: &Bound<'_, PyAny>,
        name: String,
        admin_url: String,
        role: String,
        mode: &str,
        grace_period: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (core, life) = crate::store_of(sr)?;
        let (mode, options) = (self::mode(mode)?, options(grace_period)?);
        let inner = block(
            py,
            true,
            open(core, life, name, admin_url, role, mode, options),
        )?;
        Ok(Self { inner })
    }

    /// Rotates now; returns a `RotationReport`.
    fn rotate_now(&self, py: Python<'_>) -> PyResult<RotationReport> {
        self.inner.life.check()?;
        block(py, true, ops::rotate_now(self.inner.clone()))
    }

    /// The stored versions.
    fn staged(&self, py: Python<'_>) -> PyResult<StagedOut> {
        self.inner.life.check()?;
        block(py, true, ops::staged(self.inner.clone()))
    }

    /// The non-secret state.
    fn status(&self, py: Python<'_>) -> PyResult<RotationStatus> {
        self.inner.life.check()?;
        block(py, true, ops::status(self.inner.clone()))
    }

    /// Revokes the previous password if its grace period is over.
    fn revoke_due(&self, py: Python<'_>) -> PyResult<bool> {
        self.inner.life.check()?;
        block(py, true, ops::revoke_due(self.inner.clone()))
    }

    /// A new blocking `CredentialFeed` of this credential.
    #[pyo3(signature = (*, external_auth = false))]
    fn credential_feed(&self, external_auth: bool) -> PyResult<BlockingCredentialFeed> {
        self.inner.life.check()?;
        Ok(BlockingCredentialFeed {
            inner: self.inner.feed(external_auth),
        })
    }

    /// Closes the administrative connections.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block(py, true, ops::close(self.inner.clone()))
    }
});

/// Adds the PostgreSQL classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PgLogin>()?;
    m.add_class::<AfterError>()?;
    m.add_class::<CredentialFeed>()?;
    m.add(
        "BlockingCredentialFeed",
        m.py().get_type::<BlockingCredentialFeed>(),
    )?;
    m.add_class::<PgRotation>()?;
    m.add(
        "BlockingPgRotation",
        m.py().get_type::<BlockingPgRotation>(),
    )?;
    Ok(())
}
