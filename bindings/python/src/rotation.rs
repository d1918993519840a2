//! Rotation of API keys: staged versions (current / pending / previous) and
//! a verifier that accepts current and previous during the overlap.

use pyo3::prelude::*;
use pyo3::types::PyString;
use strongroom::SecretBytes;
use strongroom::rotation::{
    Credential as CoreCredential, Matched as CoreMatched, RotationOptions,
    RotationReport as CoreReport, RotationStatus as CoreStatus, StagedCredentials,
};
use strongroom_host::apikey::{ApiKeyRotation as HostRotation, ApiKeySpec};

use crate::errors::to_py;
use crate::lease::seconds;
use crate::{Core, Secret, block, secret_input};

/// Which stored version a presented API key matched.
#[pyclass(module = "strongroom", eq, eq_int, frozen, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Matched {
    /// The current key.
    Current,
    /// The previous key, still accepted during the grace period.
    Previous,
    /// Neither (or revoked).
    NoMatch,
}

impl From<CoreMatched> for Matched {
    fn from(m: CoreMatched) -> Self {
        match m {
            CoreMatched::Current => Self::Current,
            CoreMatched::Previous => Self::Previous,
            _ => Self::NoMatch,
        }
    }
}

/// One stored version of a rotated credential. `secret` is a `Secret`
/// (redacted when printed).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct Credential {
    /// The version number.
    version: u64,
    /// The non-secret identity (the key prefix for API keys).
    identity: String,
    /// The secret itself.
    secret: Py<Secret>,
}

#[pymethods]
impl Credential {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Credential(version={}, identity={:?}, secret={})",
            self.version,
            self.identity,
            self.secret.get().__repr__(py)
        )
    }
}

fn credential(py: Python<'_>, c: Option<CoreCredential>) -> PyResult<Option<Py<Credential>>> {
    c.map(|c| {
        let secret = Py::new(py, Secret::from_slice(py, c.secret().expose_secret()))?;
        Py::new(
            py,
            Credential {
                version: c.version(),
                identity: c.identity().to_owned(),
                secret,
            },
        )
    })
    .transpose()
}

/// The stored versions by stage; each `None` or a `Credential`.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct Staged {
    /// The version being introduced, while a rotation is in flight.
    pending: Option<Py<Credential>>,
    /// The version clients use.
    current: Option<Py<Credential>>,
    /// The version before, accepted until the grace period ends.
    previous: Option<Py<Credential>>,
}

#[pymethods]
impl Staged {
    fn __repr__(&self, py: Python<'_>) -> String {
        let v = |c: &Option<Py<Credential>>| c.as_ref().map(|c| c.bind(py).get().version);
        format!(
            "Staged(pending={:?}, current={:?}, previous={:?})",
            v(&self.pending),
            v(&self.current),
            v(&self.previous)
        )
    }
}

/// Converts staged credentials (secrets wiped on drop) when handed to Python.
pub(crate) struct StagedOut(pub(crate) StagedCredentials);

impl<'py> IntoPyObject<'py> for StagedOut {
    type Target = Staged;
    type Output = Bound<'py, Staged>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let s = self.0;
        Bound::new(
            py,
            Staged {
                pending: credential(py, s.pending)?,
                current: credential(py, s.current)?,
                previous: credential(py, s.previous)?,
            },
        )
    }
}

/// The non-secret state of a rotated credential. Times are ms since the
/// epoch.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct RotationStatus {
    /// The pending version, if any.
    pending: Option<u64>,
    /// The current version, if any.
    current: Option<u64>,
    /// The previous version, if any.
    previous: Option<u64>,
    /// When the previous version is due to be revoked.
    revoke_previous_at: Option<u64>,
    /// When the current version was promoted.
    last_promoted: Option<u64>,
    /// The recorded step in flight and its version, e.g. ("set-in-target", 3).
    in_flight: Option<(String, u64)>,
    /// Every version in the bounded history, oldest first.
    history: Vec<u64>,
}

impl From<CoreStatus> for RotationStatus {
    fn from(s: CoreStatus) -> Self {
        Self {
            pending: s.pending,
            current: s.current,
            previous: s.previous,
            revoke_previous_at: s.revoke_previous_at.map(|t| t.as_millis()),
            last_promoted: s.last_promoted.map(|t| t.as_millis()),
            in_flight: s.in_flight.map(|(step, v)| (step.to_string(), v)),
            history: s.history.iter().map(|h| h.version).collect(),
        }
    }
}

#[pymethods]
impl RotationStatus {
    fn __repr__(&self) -> String {
        format!(
            "RotationStatus(pending={:?}, current={:?}, previous={:?})",
            self.pending, self.current, self.previous
        )
    }
}

/// What one rotation call did.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct RotationReport {
    /// The version promoted to current, if any.
    promoted: Option<u64>,
    /// The previous version revoked, if any.
    revoked: Option<u64>,
}

impl From<CoreReport> for RotationReport {
    fn from(r: CoreReport) -> Self {
        Self {
            promoted: r.promoted,
            revoked: r.revoked,
        }
    }
}

#[pymethods]
impl RotationReport {
    fn __repr__(&self) -> String {
        format!(
            "RotationReport(promoted={:?}, revoked={:?})",
            self.promoted, self.revoked
        )
    }
}

/// The rotation (engine and verifier, from [`strongroom_host::apikey`]) and
/// the store's open/closed state.
#[derive(Clone)]
struct Inner {
    rot: HostRotation,
    /// The store's open/closed state.
    life: crate::Life,
}

async fn open(
    core: Core,
    life: crate::Life,
    name: String,
    spec: ApiKeySpec,
    options: RotationOptions,
) -> strongroom::Result<Inner> {
    let rot = HostRotation::open(&core, &name, spec, options).await?;
    Ok(Inner { rot, life })
}

pub(crate) fn options(grace_period: Option<&Bound<'_, PyAny>>) -> PyResult<RotationOptions> {
    let mut o = RotationOptions::default();
    if let Some(g) = grace_period {
        o.grace_period = seconds("grace_period", g)?;
    }
    Ok(o)
}

/// The key format: `chars` base62 characters (32 if neither is given) or
/// `hex_bytes` random bytes in hex, checked by the host layer's rules.
fn spec(prefix: &str, chars: Option<usize>, hex_bytes: Option<usize>) -> PyResult<ApiKeySpec> {
    match (chars, hex_bytes) {
        (Some(_), Some(_)) => Err(crate::lease::invalid(
            "give chars= (base62) or hex_bytes= (hex), not both",
        )),
        (_, Some(bytes)) => ApiKeySpec::hex(prefix, bytes).map_err(to_py),
        (chars, None) => ApiKeySpec::base62(prefix, chars.unwrap_or(32)).map_err(to_py),
    }
}

/// The presented key as bytes, copied into a buffer wiped on drop.
fn presented(obj: &Bound<'_, PyAny>) -> PyResult<SecretBytes> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(SecretBytes::copy_from(s.to_str()?.as_bytes()));
    }
    secret_input(obj)
}

mod ops {
    //! The shared futures of the async and blocking classes.
    use super::*;

    pub(super) async fn rotate_now(i: Inner) -> strongroom::Result<RotationReport> {
        i.rot.engine().rotate_now().await.map(RotationReport::from)
    }

    pub(super) async fn staged(i: Inner) -> strongroom::Result<StagedOut> {
        i.rot.staged().await.map(StagedOut)
    }

    pub(super) async fn status(i: Inner) -> strongroom::Result<RotationStatus> {
        i.rot.engine().status().await.map(RotationStatus::from)
    }

    pub(super) async fn revoke_due(i: Inner) -> strongroom::Result<bool> {
        i.rot.engine().revoke_due().await
    }

    pub(super) async fn import_current(i: Inner, key: SecretBytes) -> strongroom::Result<u64> {
        i.rot.import_current(key).await
    }

    pub(super) async fn refresh(i: Inner) -> strongroom::Result<()> {
        i.rot.refresh().await
    }
}

/// Rotation of one API key (asyncio API): keys `prefix` + `chars` base62
/// characters (16 to 1024, default 32) or `hex_bytes` random bytes in hex
/// (12 to 1024), versions sealed in the store, and a verifier that accepts
/// the current key and, for `grace_period` seconds after a rotation, the
/// previous one. Open with `await ApiKeyRotation.open(sr, name, ...)`.
#[pyclass(module = "strongroom", frozen)]
pub struct ApiKeyRotation {
    inner: Inner,
}

/// The blocking form of [`ApiKeyRotation`] (`strongroom.blocking.ApiKeyRotation`).
#[pyclass(module = "strongroom.blocking", name = "ApiKeyRotation", frozen)]
pub struct BlockingApiKeyRotation {
    inner: Inner,
}

struct AsyncOut(Inner);

impl<'py> IntoPyObject<'py> for AsyncOut {
    type Target = ApiKeyRotation;
    type Output = Bound<'py, ApiKeyRotation>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, ApiKeyRotation { inner: self.0 })
    }
}

/// Both classes' synchronous methods.
macro_rules! rotation_common {
    ($t:ident, { $($rest:tt)* }) => {
        #[pymethods]
        impl $t {
            /// The credential's name.
            #[getter]
            fn name(&self) -> String {
                self.inner.rot.name().to_owned()
            }

            /// Checks a presented key (str or bytes-like) against the
            /// current and previous keys, in constant time; CPU only.
            fn verify(&self, presented: &Bound<'_, PyAny>) -> PyResult<Matched> {
                let p = self::presented(presented)?;
                Ok(self.inner.rot.verify(p.expose_secret()).into())
            }

            fn __repr__(&self) -> String {
                format!("ApiKeyRotation({:?})", self.inner.rot.name())
            }

            $($rest)*
        }
    };
}

rotation_common!(ApiKeyRotation, {
    /// Opens the rotation of credential `name` in store `sr` (either
    /// store class); resolves to an `ApiKeyRotation` whose verifier knows
    /// the versions already stored.
    #[staticmethod]
    #[pyo3(signature = (sr, name, *, prefix = String::from("sk_"), chars = None, hex_bytes = None, grace_period = None))]
    fn open<'py>(
        py: Python<'py>,
        sr: &Bound<'py, PyAny>,
        name: String,
        prefix: String,
        chars: Option<usize>,
        hex_bytes: Option<usize>,
        grace_period: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (core, life) = crate::store_of(sr)?;
        let (spec, options) = (spec(&prefix, chars, hex_bytes)?, options(grace_period)?);
        let l = life.clone();
        crate::lifetime::awaitable(py, Some(&l), async move {
            open(core, life, name, spec, options).await.map(AsyncOut)
        })
    }

    /// Rotates now (revoking a previous version first, since its slot is
    /// reused): creates, sets, tests and promotes a new key. Resolves to a
    /// `RotationReport`.
    fn rotate_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::lifetime::awaitable(
            py,
            Some(&self.inner.life),
            ops::rotate_now(self.inner.clone()),
        )
    }

    /// The stored versions; resolves to `Staged` (secrets as `Secret`).
    fn staged<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::lifetime::awaitable(py, Some(&self.inner.life), ops::staged(self.inner.clone()))
    }

    /// The non-secret state; resolves to a `RotationStatus`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::lifetime::awaitable(py, Some(&self.inner.life), ops::status(self.inner.clone()))
    }

    /// Revokes the previous key if its grace period is over (also finishes
    /// an interrupted rotation); resolves to whether it revoked one.
    fn revoke_due<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::lifetime::awaitable(
            py,
            Some(&self.inner.life),
            ops::revoke_due(self.inner.clone()),
        )
    }

    /// Stores a key issued before Strongroom managed it (str or
    /// bytes-like; it need not match the format) as the current version, so
    /// the next rotation keeps it valid as `previous` through the grace
    /// period. Resolves to its version. Raises `RotationAlreadyInitialized`
    /// if a current version exists.
    fn import_current<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = self::presented(key)?;
        crate::lifetime::awaitable(
            py,
            Some(&self.inner.life),
            ops::import_current(self.inner.clone(), key),
        )
    }

    /// Re-reads the stored versions into the verifier (after another engine
    /// or process rotated).
    fn refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::lifetime::awaitable(py, Some(&self.inner.life), ops::refresh(self.inner.clone()))
    }

    /// The blocking view of this same rotation.
    fn blocking(&self) -> BlockingApiKeyRotation {
        BlockingApiKeyRotation {
            inner: self.inner.clone(),
        }
    }
});

rotation_common!(BlockingApiKeyRotation, {
    /// Opens the rotation of credential `name` in store `sr`.
    #[staticmethod]
    #[pyo3(signature = (sr, name, *, prefix = String::from("sk_"), chars = None, hex_bytes = None, grace_period = None))]
    fn open(
        py: Python<'_>,
        sr: &Bound<'_, PyAny>,
        name: String,
        prefix: String,
        chars: Option<usize>,
        hex_bytes: Option<usize>,
        grace_period: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (core, life) = crate::store_of(sr)?;
        let (spec, options) = (spec(&prefix, chars, hex_bytes)?, options(grace_period)?);
        let inner = block(py, true, open(core, life, name, spec, options))?;
        Ok(Self { inner })
    }

    /// Rotates now; returns a `RotationReport`.
    fn rotate_now(&self, py: Python<'_>) -> PyResult<RotationReport> {
        self.inner.life.check()?;
        block(py, true, ops::rotate_now(self.inner.clone()))
    }

    /// The stored versions (secrets as `Secret`).
    fn staged(&self, py: Python<'_>) -> PyResult<StagedOut> {
        self.inner.life.check()?;
        block(py, true, ops::staged(self.inner.clone()))
    }

    /// The non-secret state.
    fn status(&self, py: Python<'_>) -> PyResult<RotationStatus> {
        self.inner.life.check()?;
        block(py, true, ops::status(self.inner.clone()))
    }

    /// Revokes the previous key if its grace period is over.
    fn revoke_due(&self, py: Python<'_>) -> PyResult<bool> {
        self.inner.life.check()?;
        block(py, true, ops::revoke_due(self.inner.clone()))
    }

    /// Stores an existing key as the current version; returns its version.
    fn import_current(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<u64> {
        let key = self::presented(key)?;
        self.inner.life.check()?;
        block(py, true, ops::import_current(self.inner.clone(), key))
    }

    /// Re-reads the stored versions into the verifier.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.life.check()?;
        block(py, true, ops::refresh(self.inner.clone()))
    }
});
