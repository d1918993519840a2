//! Python bindings for Strongroom.
//!
//! Every method converts its arguments, calls the core, and maps the result
//! or error back; there is no logic here. Async methods return awaitables
//! driven by a tokio runtime this module owns; blocking methods run the same
//! futures on that runtime with the GIL released.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use strongroom::keyring::KeyInfo as CoreKeyInfo;
use strongroom::seal::{Algorithm, DataKey, OVERHEAD, SealContext, SealedValue};
use strongroom::signing::SigningKeys;
use strongroom::{Options, RewrapReport as CoreRewrapReport, SecretBytes};
use strongroom_host::storage::HostStorage;
use zeroize::{Zeroize as _, Zeroizing};

mod alerts;
mod approvals;
mod errors;
mod lease;
mod lifetime;
mod pg;
mod pkcs11;
mod pki;
mod protector;
mod rotation;
mod shamir;
mod signing;
mod store;

use errors::to_py;
use lifetime::Life;
use protector::{Protector, SoftwareProtector};
use store::{Change, Target};

/// The store as the binding holds it: through the door to unchecked access
/// ([`strongroom::dangerous`]), opened once per store as [`CALLER`].
type Core = strongroom::dangerous::Door;
/// The caller name of the binding's door (audited as `dangerous:<CALLER>`).
const CALLER: &str = "python";

fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Values at least this large are sealed and opened with the GIL released;
/// smaller ones take well under a microsecond, less than releasing and
/// re-taking the GIL costs.
const DETACH_THRESHOLD: usize = 4096;

/// Runs a core future to completion on the binding's runtime.
///
/// With `detach_now` the GIL is released from the start (every call that
/// touches storage, and large values). Otherwise (sealing a small value) the
/// future is first polled once with the GIL held, inside the runtime's
/// context; if it has to wait (a key reservation written to storage), the
/// GIL is released and the runtime drives it to completion.
fn block<T: Send>(
    py: Python<'_>,
    detach_now: bool,
    fut: impl Future<Output = strongroom::Result<T>> + Send,
) -> PyResult<T> {
    let mut fut = std::pin::pin!(fut);
    if !detach_now {
        let polled = {
            let _ctx = runtime().enter();
            let mut cx = Context::from_waker(Waker::noop());
            fut.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(r) = polled {
            return r.map_err(to_py);
        }
    }
    py.detach(|| runtime().block_on(fut)).map_err(to_py)
}

/// Runs CPU-only core work, with the GIL released for large values.
fn compute<T: Send>(
    py: Python<'_>,
    len: usize,
    f: impl FnOnce() -> strongroom::Result<T> + Send,
) -> PyResult<T> {
    if len >= DETACH_THRESHOLD {
        py.detach(f)
    } else {
        f()
    }
    .map_err(to_py)
}

/// Wraps a core future as a Python awaitable (not tied to a store).
fn awaitable<'py, T>(
    py: Python<'py>,
    fut: impl Future<Output = strongroom::Result<T>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    lifetime::awaitable(py, None, fut)
}

fn algorithm(name: &str) -> PyResult<Algorithm> {
    Algorithm::from_name(name).ok_or_else(|| {
        to_py(strongroom::Error::InvalidArgument(format!(
            "unknown algorithm {name:?} (use \"aes-256-gcm\" or \"chacha20-poly1305\")"
        )))
    })
}

/// Copies bytes-like input (`bytes`, `bytearray`, `memoryview`, or a
/// [`Secret`]) into a buffer that is wiped on drop.
fn secret_input(obj: &Bound<'_, PyAny>) -> PyResult<SecretBytes> {
    if let Ok(s) = obj.cast::<Secret>() {
        return s.get().to_secret(obj.py());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(SecretBytes::copy_from(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(SecretBytes::new(b.to_vec()));
    }
    let b = PyBytes::new(obj.py(), &[]).get_type().call1((obj,))?;
    let b = b.cast::<PyBytes>()?;
    Ok(SecretBytes::copy_from(b.as_bytes()))
}

/// Copies bytes-like input into a buffer laid out for sealing in place
/// (header room, then the plaintext); wiped on drop.
fn seal_input(obj: &Bound<'_, PyAny>) -> PyResult<Zeroizing<Vec<u8>>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let b = b.as_bytes();
        let mut buf = Zeroizing::new(strongroom::seal::seal_buffer(b.len()));
        buf.extend_from_slice(b);
        return Ok(buf);
    }
    let s = secret_input(obj)?;
    let mut buf = Zeroizing::new(strongroom::seal::seal_buffer(s.len()));
    buf.extend_from_slice(s.expose_secret());
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Secret

/// A secret returned by Strongroom.
///
/// Its value lives in a `bytearray` owned by this object; `repr()` and
/// `str()` never show it. `wipe()` overwrites it with zeros (also done when
/// the object is garbage-collected). `reveal()` returns an immutable `bytes`
/// copy that Python cannot wipe; `as_bytearray()` gives the backing buffer
/// itself, which `wipe()` zeroes.
#[pyclass(module = "strongroom", frozen)]
pub struct Secret {
    buf: Py<PyByteArray>,
}

impl Secret {
    fn new(py: Python<'_>, value: SecretBytes) -> Self {
        // `value` is wiped when it drops at the end of this function.
        Self::from_slice(py, value.expose_secret())
    }

    fn from_slice(py: Python<'_>, value: &[u8]) -> Self {
        Self {
            buf: PyByteArray::new(py, value).unbind(),
        }
    }

    fn to_secret(&self, py: Python<'_>) -> PyResult<SecretBytes> {
        Ok(SecretBytes::new(self.buf.bind(py).to_vec()))
    }

    fn zero(&self, py: Python<'_>) {
        let buf = self.buf.bind(py);
        // SAFETY: we hold the GIL (`py`) and run no Python code while the
        // slice lives, so nothing can resize or free the bytearray under it;
        // the slice is dropped before this function returns.
        #[allow(unsafe_code)]
        let bytes = unsafe { buf.as_bytes_mut() };
        bytes.zeroize();
    }
}

/// Converts a core secret into a [`Secret`] when handed to Python.
struct SecretOut(SecretBytes);

impl<'py> IntoPyObject<'py> for SecretOut {
    type Target = Secret;
    type Output = Bound<'py, Secret>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, Secret::new(py, self.0))
    }
}

#[pymethods]
impl Secret {
    /// A new secret holding a copy of `value`.
    #[new]
    fn py_new(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self::new(value.py(), secret_input(value)?))
    }

    /// An immutable copy of the value. Python cannot wipe `bytes`: prefer
    /// `as_bytearray()` or use the copy briefly.
    fn reveal<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = PyBytes::new(py, &[])
            .get_type()
            .call1((self.buf.bind(py),))?;
        Ok(b.cast_into::<PyBytes>()?)
    }

    /// The backing `bytearray` itself (not a copy); `wipe()` zeroes it.
    fn as_bytearray<'py>(&self, py: Python<'py>) -> Bound<'py, PyByteArray> {
        self.buf.bind(py).clone()
    }

    /// Overwrites the value with zeros.
    fn wipe(&self, py: Python<'_>) {
        self.zero(py);
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.buf.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Secret([REDACTED; {} bytes])", self.buf.bind(py).len())
    }

    fn __str__(&self, py: Python<'_>) -> String {
        self.__repr__(py)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "a Secret cannot be pickled",
        ))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        Python::attach(|py| self.zero(py));
    }
}

// ---------------------------------------------------------------------------
// Storage, protectors, plain data

/// Where a store keeps its records.
#[pyclass(module = "strongroom", frozen)]
#[derive(Clone)]
pub struct Storage {
    /// The backend and what closing it needs.
    inner: HostStorage,
}

#[pymethods]
impl Storage {
    /// In-memory storage (lost when the last reference goes).
    #[staticmethod]
    fn memory() -> Self {
        Self {
            inner: HostStorage::memory(),
        }
    }

    /// An SQLite store in the file at `path` (created if missing; its
    /// directory must exist). Blocks while it opens, GIL released.
    #[staticmethod]
    fn sqlite(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let store = block(py, true, strongroom_sqlx::SqliteStore::open(path))?;
        Ok(Self {
            inner: HostStorage::sqlite(store),
        })
    }

    /// The store at `location`: `"memory:"`, `"sqlite:<path>"` or a plain
    /// file path, or a `postgres://user:password@host/database` URL (the
    /// password never appears in errors or `repr`). Blocks while it
    /// connects, GIL released.
    #[staticmethod]
    fn open(py: Python<'_>, location: String) -> PyResult<Self> {
        let inner = block(py, true, async move { HostStorage::open(&location).await })?;
        Ok(Self { inner })
    }

    /// The backend's name ("memory", "sqlite", "postgres").
    #[getter]
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    /// Whether the storage already holds an initialised store (blocking).
    fn is_initialized(&self, py: Python<'_>) -> PyResult<bool> {
        let s = self.inner.storage().clone();
        block(py, true, async move {
            strongroom::Strongroom::is_initialized(&s).await
        })
    }

    /// Closes the backend's connections (an SQLite file, a PostgreSQL
    /// pool); a store opened on it closes it too. Idempotent. Blocks, GIL
    /// released.
    fn close(&self, py: Python<'_>) {
        let s = self.inner.clone();
        py.detach(|| runtime().block_on(async move { s.close().await }));
    }

    fn __repr__(&self) -> String {
        format!("Storage({:?})", self.inner.backend())
    }
}

/// Public facts about one key version.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct KeyInfo {
    /// The version number.
    version: u32,
    /// "primary", "active", "retired" or "destroyed".
    state: String,
    /// "aes-256-gcm" or "chacha20-poly1305".
    algorithm: String,
    /// Creation time, milliseconds since the Unix epoch.
    created_ms: u64,
    /// Encryptions reserved so far.
    encryptions_reserved: u64,
}

impl From<CoreKeyInfo> for KeyInfo {
    fn from(k: CoreKeyInfo) -> Self {
        Self {
            version: k.version,
            state: k.state.to_string(),
            algorithm: k.algorithm.name().into(),
            created_ms: k.created.as_millis(),
            encryptions_reserved: k.encryptions_reserved,
        }
    }
}

#[pymethods]
impl KeyInfo {
    fn __repr__(&self) -> String {
        format!(
            "KeyInfo(version={}, state={:?}, algorithm={:?})",
            self.version, self.state, self.algorithm
        )
    }
}

/// What a rewrap did.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct RewrapReport {
    /// Records looked at.
    scanned: u64,
    /// Records re-sealed under the primary key.
    rewrapped: u64,
    /// Storage keys of records that could not be opened (left untouched).
    unreadable: Vec<String>,
    /// The key version everything was re-sealed to.
    target_version: u32,
    /// Records still under another key version (unreadable ones included);
    /// retire older versions only when this is 0.
    remaining: u64,
}

impl From<CoreRewrapReport> for RewrapReport {
    fn from(r: CoreRewrapReport) -> Self {
        Self {
            scanned: r.scanned,
            rewrapped: r.rewrapped,
            target_version: r.target_version,
            remaining: r.remaining,
            unreadable: r.unreadable,
        }
    }
}

#[pymethods]
impl RewrapReport {
    fn __repr__(&self) -> String {
        format!(
            "RewrapReport(scanned={}, rewrapped={}, unreadable={:?}, target_version={}, remaining={})",
            self.scanned, self.rewrapped, self.unreadable, self.target_version, self.remaining
        )
    }
}

fn keys(core: &Core) -> PyResult<Vec<KeyInfo>> {
    Ok(core
        .keys()
        .map_err(to_py)?
        .into_iter()
        .map(KeyInfo::from)
        .collect())
}

fn bytes_out(py: Python<'_>, v: Vec<u8>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &v)
}

// ---------------------------------------------------------------------------
// The store: the same surface twice, async and blocking.

/// An unsealed store (asyncio API). Create with `await Strongroom.init(...)`
/// or `await Strongroom.unseal(...)`.
#[pyclass(module = "strongroom", frozen)]
pub struct Strongroom {
    core: Core,
    end: End,
}

/// An unsealed store (blocking API; same methods as `Strongroom`, not
/// awaitables). Exposed as `strongroom.blocking.Strongroom`.
#[pyclass(module = "strongroom.blocking", name = "Strongroom", frozen)]
pub struct BlockingStrongroom {
    core: Core,
    end: End,
}

/// What closing a store needs, shared by its async and blocking views.
#[derive(Clone, Debug)]
struct End {
    /// Closed state, shared with lease managers, rotations, handles and
    /// event subscriptions made from this store.
    life: Life,
    /// The storage backend, closed by `close()` so an SQLite file or a
    /// PostgreSQL pool is released even while other objects still hold the
    /// core.
    storage: HostStorage,
    /// The store's one signing-keys engine, made on first use and shared by
    /// every principal handle of the store (rate limits are counted per
    /// engine).
    signing: Arc<OnceLock<Arc<SigningKeys>>>,
}

impl End {
    fn new(storage: &Storage) -> Self {
        Self {
            life: Life::default(),
            storage: storage.inner.clone(),
            signing: Arc::default(),
        }
    }

    /// The store's signing-keys engine.
    fn signing_keys(&self, core: &Core) -> Arc<SigningKeys> {
        self.signing
            .get_or_init(|| Arc::new(core.signing_keys()))
            .clone()
    }

    /// Closes the store (idempotent): in-flight awaitables and event
    /// subscriptions end, later calls raise `Closed`, the SQLite store is
    /// closed (queued writes committed first, WAL checkpointed). Blocks
    /// with the GIL released while the file closes.
    fn close(&self, py: Python<'_>) {
        if !self.life.close() {
            return;
        }
        let s = self.storage.clone();
        py.detach(|| runtime().block_on(async move { s.close().await }));
    }
}

struct AsyncOut(Core, End);

impl<'py> IntoPyObject<'py> for AsyncOut {
    type Target = Strongroom;
    type Output = Bound<'py, Strongroom>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(
            py,
            Strongroom {
                core: self.0,
                end: self.1,
            },
        )
    }
}

struct ReportOut(CoreRewrapReport);

impl<'py> IntoPyObject<'py> for ReportOut {
    type Target = RewrapReport;
    type Output = Bound<'py, RewrapReport>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, RewrapReport::from(self.0))
    }
}

struct KeyInfoOut(CoreKeyInfo);

impl<'py> IntoPyObject<'py> for KeyInfoOut {
    type Target = KeyInfo;
    type Output = Bound<'py, KeyInfo>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, KeyInfo::from(self.0))
    }
}

struct SecretOptOut(Option<SecretBytes>);

impl<'py> IntoPyObject<'py> for SecretOptOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        match self.0 {
            Some(s) => Ok(SecretOut(s).into_pyobject(py)?.into_any()),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

struct BytesOut(Vec<u8>);

impl<'py> IntoPyObject<'py> for BytesOut {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Ok(bytes_out(py, self.0))
    }
}

/// Seals `buf` (from [`seal_input`]) in place; returns the sealed bytes.
async fn seal_value(
    core: Core,
    mut buf: Zeroizing<Vec<u8>>,
    path: String,
    version: u64,
) -> strongroom::Result<BytesOut> {
    core.seal_value_in_place(&mut buf, &SealContext::new(&path, version))
        .await?;
    Ok(BytesOut(std::mem::take(&mut *buf)))
}

fn open_value(
    core: &Core,
    sealed: &[u8],
    path: &str,
    version: u64,
) -> strongroom::Result<SecretBytes> {
    let mut buf = Zeroizing::new(sealed.to_vec());
    let plain = core.open_value_in_place(&mut buf, &SealContext::new(path, version))?;
    Ok(SecretBytes::copy_from(plain))
}

async fn put_sealed(
    core: Core,
    key: String,
    plaintext: SecretBytes,
    path: String,
    version: u64,
) -> strongroom::Result<()> {
    core.put_sealed(
        &key,
        plaintext.expose_secret(),
        &SealContext::new(&path, version),
    )
    .await
}

async fn get_sealed(
    core: Core,
    key: String,
    path: String,
    version: u64,
) -> strongroom::Result<SecretOptOut> {
    Ok(SecretOptOut(
        core.get_sealed(&key, &SealContext::new(&path, version))
            .await?,
    ))
}

impl Strongroom {
    /// The core, or `Closed`.
    fn core(&self) -> PyResult<&Core> {
        self.end.life.check()?;
        Ok(&self.core)
    }

    fn target(&self) -> PyResult<Target> {
        Ok(Target::Store(self.core()?.clone()))
    }

    /// Wraps a future of this store as an awaitable that ends with `Closed`
    /// when the store is closed.
    fn run<'py, T>(
        &self,
        py: Python<'py>,
        fut: impl Future<Output = strongroom::Result<T>> + Send + 'static,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        lifetime::awaitable(py, Some(&self.end.life), fut)
    }
}

impl BlockingStrongroom {
    /// The core, or `Closed`.
    fn core(&self) -> PyResult<&Core> {
        self.end.life.check()?;
        Ok(&self.core)
    }

    fn target(&self) -> PyResult<Target> {
        Ok(Target::Store(self.core()?.clone()))
    }
}

/// Store options with `clock` (the system clock if `None`).
fn options(clock: Option<&lease::ManualClock>) -> Options {
    let mut o = Options::default();
    if clock.is_some() {
        o.clock = lease::clock_of(clock);
    }
    o
}

/// The core store behind a `Strongroom` or a `blocking.Strongroom`, and
/// its open/closed state; `Closed` if it is closed.
fn store_of(obj: &Bound<'_, PyAny>) -> PyResult<(Core, Life)> {
    if let Ok(s) = obj.cast::<Strongroom>() {
        let s = s.get();
        return Ok((s.core()?.clone(), s.end.life.clone()));
    }
    let s = obj.cast::<BlockingStrongroom>()?;
    let s = s.get();
    Ok((s.core()?.clone(), s.end.life.clone()))
}

/// The core store behind a `Strongroom` or a `blocking.Strongroom`.
fn core_of(obj: &Bound<'_, PyAny>) -> PyResult<Core> {
    store_of(obj).map(|(c, _)| c)
}

#[pymethods]
impl Strongroom {
    /// Creates a new store in empty `storage` (awaitable). `protector` is a
    /// `SoftwareProtector`, a `ShamirProtector` or a `Pkcs11Protector`; `clock` (a `ManualClock`)
    /// times rotation grace periods and records (default: system clock).
    #[staticmethod]
    #[pyo3(signature = (storage, protector, clock = None))]
    fn init<'py>(
        py: Python<'py>,
        storage: &Storage,
        protector: &Bound<'py, PyAny>,
        clock: Option<PyRef<'py, lease::ManualClock>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (s, p) = (
            storage.inner.storage().clone(),
            Protector::from_py(protector)?,
        );
        let o = options(clock.as_deref());
        let end = End::new(storage);
        awaitable(py, async move {
            let p = p.resolve().await?;
            strongroom::Strongroom::init(s, &*p, o)
                .await?
                .dangerous_traced(CALLER)
                .await
                .map(|c| AsyncOut(c, end))
        })
    }

    /// Opens an initialised store (awaitable); arguments as for `init`.
    #[staticmethod]
    #[pyo3(signature = (storage, protector, clock = None))]
    fn unseal<'py>(
        py: Python<'py>,
        storage: &Storage,
        protector: &Bound<'py, PyAny>,
        clock: Option<PyRef<'py, lease::ManualClock>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (s, p) = (
            storage.inner.storage().clone(),
            Protector::from_py(protector)?,
        );
        let o = options(clock.as_deref());
        let end = End::new(storage);
        awaitable(py, async move {
            let p = p.resolve().await?;
            strongroom::Strongroom::unseal(s, &*p, o)
                .await?
                .dangerous_traced(CALLER)
                .await
                .map(|c| AsyncOut(c, end))
        })
    }

    /// Forgets the keys; later calls raise `Sealed`.
    fn seal(&self) -> PyResult<()> {
        self.core()?.seal();
        Ok(())
    }

    /// Whether `seal()` was called.
    #[getter]
    fn is_sealed(&self) -> bool {
        self.core.is_sealed()
    }

    /// Closes the store (idempotent): pending awaitables of this store and
    /// of lease managers, rotations, handles and event subscriptions made
    /// from it end (`Closed`; subscriptions stop), later calls raise
    /// `Closed`, and an SQLite file is closed (queued writes committed).
    /// Blocks briefly with the GIL released. Also done by `async with`.
    fn close(&self, py: Python<'_>) {
        self.end.close(py);
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.end.life.is_closed()
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().end.life.check()?;
        let py = slf.py();
        let this = slf.unbind();
        awaitable(py, async move { Ok(this) })
    }

    #[pyo3(signature = (*_args))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _args: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let end = self.end.clone();
        // Closing waits for the SQLite writer: on a blocking thread.
        lifetime::awaitable(py, None, async move {
            tokio::task::spawn_blocking(move || {
                end.life.close();
                runtime().block_on(async move { end.storage.close().await });
            })
            .await
            .map_err(|_| strongroom::Error::InvalidArgument("close failed".into()))?;
            Ok::<_, strongroom::Error>(false)
        })
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().end.life.check()?;
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.end.close(py);
        false
    }

    /// Seals `plaintext` bound to `path` and `version`; resolves to `bytes`.
    fn seal_value<'py>(
        &self,
        py: Python<'py>,
        plaintext: &Bound<'py, PyAny>,
        path: String,
        version: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let buf = seal_input(plaintext)?;
        self.run(py, seal_value(self.core()?.clone(), buf, path, version))
    }

    /// Opens a sealed value bound to `path` and `version`; resolves to a `Secret`.
    fn open_value<'py>(
        &self,
        py: Python<'py>,
        sealed: Vec<u8>,
        path: String,
        version: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core()?.clone();
        self.run(py, async move {
            open_value(&core, &sealed, &path, version).map(SecretOut)
        })
    }

    /// Stores `plaintext` sealed at storage key `key` (under "s/").
    fn put_sealed<'py>(
        &self,
        py: Python<'py>,
        key: String,
        plaintext: &Bound<'py, PyAny>,
        path: String,
        version: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let plaintext = secret_input(plaintext)?;
        self.run(
            py,
            put_sealed(self.core()?.clone(), key, plaintext, path, version),
        )
    }

    /// Reads and opens the sealed record at `key`; resolves to a `Secret` or `None`.
    fn get_sealed<'py>(
        &self,
        py: Python<'py>,
        key: String,
        path: String,
        version: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, get_sealed(self.core()?.clone(), key, path, version))
    }

    /// Adds a key version and makes it primary; resolves to its `KeyInfo`.
    fn rotate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core()?.clone();
        self.run(py, async move { core.rotate().await.map(KeyInfoOut) })
    }

    /// Makes an active key version primary again.
    fn promote<'py>(&self, py: Python<'py>, version: u32) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core()?.clone();
        self.run(py, async move { core.promote(version).await })
    }

    /// Retires every key version below `min`.
    fn set_min_decryption_version<'py>(
        &self,
        py: Python<'py>,
        min: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core()?.clone();
        self.run(
            py,
            async move { core.set_min_decryption_version(min).await },
        )
    }

    /// Erases a retired key version (refused while records need it).
    fn destroy_key<'py>(&self, py: Python<'py>, version: u32) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core()?.clone();
        self.run(py, async move { core.destroy_key(version).await })
    }

    /// Re-seals stored records under the primary key; resolves to a `RewrapReport`.
    #[pyo3(signature = (batch_size = 500))]
    fn rewrap<'py>(&self, py: Python<'py>, batch_size: usize) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core()?.clone();
        self.run(
            py,
            async move { core.rewrap(batch_size).await.map(ReportOut) },
        )
    }

    /// Re-reads the keyring from storage.
    fn reload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core()?.clone();
        self.run(py, async move { core.reload().await })
    }

    /// Wraps the root key with `protector` (software, Shamir or PKCS#11)
    /// instead; later unseals need it. Stored values are not re-sealed.
    fn rotate_root_key<'py>(
        &self,
        py: Python<'py>,
        protector: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (core, p) = (self.core()?.clone(), Protector::from_py(protector)?);
        self.run(py, protector::rotate_root_key(core, p))
    }

    /// Facts about every key version.
    fn keys(&self) -> PyResult<Vec<KeyInfo>> {
        keys(self.core()?)
    }

    // ----- versioned secrets (no policy, no audit), principals, audit -----

    /// Writes a new version of the secret at `path`; `cas` is the expected
    /// current version (0: must not exist). Resolves to its `VersionInfo`.
    #[pyo3(signature = (path, value, cas = None))]
    fn put_secret<'py>(
        &self,
        py: Python<'py>,
        path: String,
        value: &Bound<'py, PyAny>,
        cas: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = secret_input(value)?;
        self.run(py, store::put(self.target()?, path, value, cas))
    }

    /// Reads the newest version (or `version`); resolves to `(VersionInfo, Secret)`.
    #[pyo3(signature = (path, version = None))]
    fn get_secret<'py>(
        &self,
        py: Python<'py>,
        path: String,
        version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, store::get(self.target()?, path, version))
    }

    /// Names directly under `prefix`; sub-folders end with "/".
    fn list_secrets<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, store::list(self.target()?, prefix))
    }

    /// Soft-deletes `versions` (the current one if none); resolves to those changed.
    #[pyo3(signature = (path, versions = None))]
    fn delete_secret<'py>(
        &self,
        py: Python<'py>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = versions.unwrap_or_default();
        self.run(py, store::change(self.target()?, Change::Delete, path, v))
    }

    /// Restores soft-deleted `versions`; resolves to those changed.
    #[pyo3(signature = (path, versions = None))]
    fn undelete_secret<'py>(
        &self,
        py: Python<'py>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = versions.unwrap_or_default();
        self.run(py, store::change(self.target()?, Change::Undelete, path, v))
    }

    /// Destroys `versions` (the current one if none) for good; resolves to those changed.
    #[pyo3(signature = (path, versions = None))]
    fn destroy_secret<'py>(
        &self,
        py: Python<'py>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = versions.unwrap_or_default();
        self.run(py, store::change(self.target()?, Change::Destroy, path, v))
    }

    /// The secret's metadata; resolves to a `SecretMetadata`.
    fn secret_metadata<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, store::metadata(self.target()?, path))
    }

    /// Opens an audit log writing to the JSON-lines file `path` (created if
    /// missing; an existing file is first verified up to the store's saved
    /// head). With `alerts` (an `AlertEngine`), the engine sees every record
    /// the log writes. Resolves to an `AuditLog`.
    #[pyo3(signature = (path, fsync = true, alerts = None))]
    fn open_audit_log<'py>(
        &self,
        py: Python<'py>,
        path: String,
        fsync: bool,
        alerts: Option<PyRef<'py, alerts::AlertEngine>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let alerts = alerts.map(|a| a.inner.clone());
        let core = self.core()?.clone();
        self.run(py, store::open_audit_log(core, path, fsync, alerts))
    }

    /// Replaces the store's approval gates with those of the gates file
    /// text `toml` if their revision is still `expected_revision` (0 when
    /// never set; see `handle.approvals().gates()`), through the binding's
    /// door to unchecked access; resolves to the new revision
    /// (`ApprovalConflict` if they changed meanwhile). Audited under
    /// `operator` (a `Handle`), or the door's `dangerous:python` if `None`.
    #[pyo3(signature = (toml, expected_revision, operator = None))]
    fn set_gates<'py>(
        &self,
        py: Python<'py>,
        toml: &str,
        expected_revision: u64,
        operator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let operator = approvals::operator_of(operator)?;
        let fut = approvals::set_gates(self.core()?, toml, expected_revision, operator)?;
        self.run(py, fut)
    }

    /// A handle through which `name`, holding `policies`, uses the secrets
    /// store: every call checked and audited to `audit`.
    fn as_principal(
        &self,
        name: String,
        policies: Vec<PyRef<'_, store::Policy>>,
        audit: &store::AuditLog,
    ) -> PyResult<store::Handle> {
        let core = self.core()?;
        Ok(store::Handle {
            inner: store::principal(core, name, &policies, audit),
            life: self.end.life.clone(),
            signing: self.end.signing_keys(core),
        })
    }

    /// The blocking view of this same store (closing either closes both).
    fn blocking(&self) -> BlockingStrongroom {
        BlockingStrongroom {
            core: self.core.clone(),
            end: self.end.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.core)
    }
}

#[pymethods]
impl BlockingStrongroom {
    /// Creates a new store in empty `storage` (see `strongroom.Strongroom.init`).
    #[staticmethod]
    #[pyo3(signature = (storage, protector, clock = None))]
    fn init(
        py: Python<'_>,
        storage: &Storage,
        protector: &Bound<'_, PyAny>,
        clock: Option<PyRef<'_, lease::ManualClock>>,
    ) -> PyResult<Self> {
        let (s, p) = (
            storage.inner.storage().clone(),
            Protector::from_py(protector)?,
        );
        let end = End::new(storage);
        let o = options(clock.as_deref());
        let core = block(py, true, async move {
            let p = p.resolve().await?;
            strongroom::Strongroom::init(s, &*p, o)
                .await?
                .dangerous_traced(CALLER)
                .await
        })?;
        Ok(Self { core, end })
    }

    /// Opens an initialised store.
    #[staticmethod]
    #[pyo3(signature = (storage, protector, clock = None))]
    fn unseal(
        py: Python<'_>,
        storage: &Storage,
        protector: &Bound<'_, PyAny>,
        clock: Option<PyRef<'_, lease::ManualClock>>,
    ) -> PyResult<Self> {
        let (s, p) = (
            storage.inner.storage().clone(),
            Protector::from_py(protector)?,
        );
        let end = End::new(storage);
        let o = options(clock.as_deref());
        let core = block(py, true, async move {
            let p = p.resolve().await?;
            strongroom::Strongroom::unseal(s, &*p, o)
                .await?
                .dangerous_traced(CALLER)
                .await
        })?;
        Ok(Self { core, end })
    }

    /// Forgets the keys; later calls raise `Sealed`.
    fn seal(&self) -> PyResult<()> {
        self.core()?.seal();
        Ok(())
    }

    /// Closes the store (see `strongroom.Strongroom.close`); idempotent.
    /// Also done by `with`.
    fn close(&self, py: Python<'_>) {
        self.end.close(py);
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.end.life.is_closed()
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().end.life.check()?;
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.end.close(py);
        false
    }

    /// Whether `seal()` was called.
    #[getter]
    fn is_sealed(&self) -> bool {
        self.core.is_sealed()
    }

    /// Seals `plaintext` bound to `path` and `version`.
    fn seal_value<'py>(
        &self,
        py: Python<'py>,
        plaintext: &Bound<'py, PyAny>,
        path: String,
        version: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        // `bytes` are immutable and read in place; anything else is copied
        // into a buffer wiped on drop.
        let owned;
        let plain: &[u8] = match plaintext.cast::<PyBytes>() {
            Ok(b) => b.as_bytes(),
            Err(_) => {
                owned = secret_input(plaintext)?;
                owned.expose_secret()
            }
        };
        let (core, ctx) = (self.core()?, SealContext::new(&path, version));
        let large = plain.len() >= DETACH_THRESHOLD;
        // Seal straight into the result's buffer (not yet visible to any
        // Python code, so it may be written with the GIL released).
        let mut result = Ok(());
        let out = PyBytes::new_with(py, plain.len() + OVERHEAD, |out| {
            result = (|| {
                if !large && core.try_seal_value_into(plain, out, &ctx)? {
                    return Ok(());
                }
                py.detach(|| {
                    if core.try_seal_value_into(plain, out, &ctx)? {
                        return Ok(());
                    }
                    // The primary key needs encryptions reserved in storage.
                    let sealed = runtime().block_on(core.seal_value(plain, &ctx))?;
                    out.copy_from_slice(sealed.as_bytes());
                    Ok(())
                })
            })();
            Ok(())
        })?;
        result.map_err(to_py)?;
        Ok(out)
    }

    /// Opens a sealed value bound to `path` and `version`.
    fn open_value<'py>(
        &self,
        py: Python<'py>,
        sealed: &[u8],
        path: &str,
        version: u64,
    ) -> PyResult<Bound<'py, Secret>> {
        let (core, ctx) = (self.core()?, SealContext::new(path, version));
        if sealed.len() < DETACH_THRESHOLD {
            let mut buf = Zeroizing::new(sealed.to_vec());
            let plain = core.open_value_in_place(&mut buf, &ctx).map_err(to_py)?;
            return Bound::new(py, Secret::from_slice(py, plain));
        }
        // Large: copy, open and write the plaintext into a fresh bytearray
        // with the GIL released.
        let len = sealed.len().saturating_sub(OVERHEAD);
        let secret = Secret {
            buf: PyByteArray::new_with(py, len, |_| Ok(()))?.unbind(),
        };
        let target = secret.buf.bind(py);
        // SAFETY: the bytearray was just created and no Python code holds a
        // reference to it, so nothing can read, resize or free it while the
        // slice is written below, with or without the GIL.
        #[allow(unsafe_code)]
        let dst = unsafe { target.as_bytes_mut() };
        py.detach(|| {
            let mut buf = Zeroizing::new(sealed.to_vec());
            let plain = core.open_value_in_place(&mut buf, &ctx)?;
            dst.get_mut(..plain.len())
                .ok_or_else(|| strongroom::Error::InvalidArgument("length mismatch".into()))?
                .copy_from_slice(plain);
            Ok(())
        })
        .map_err(to_py)?;
        Bound::new(py, secret)
    }

    /// Stores `plaintext` sealed at storage key `key` (under "s/").
    fn put_sealed(
        &self,
        py: Python<'_>,
        key: String,
        plaintext: &Bound<'_, PyAny>,
        path: String,
        version: u64,
    ) -> PyResult<()> {
        let plaintext = secret_input(plaintext)?;
        block(
            py,
            true,
            put_sealed(self.core()?.clone(), key, plaintext, path, version),
        )
    }

    /// Reads and opens the sealed record at `key`; `None` if absent.
    fn get_sealed<'py>(
        &self,
        py: Python<'py>,
        key: String,
        path: String,
        version: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        block(
            py,
            true,
            get_sealed(self.core()?.clone(), key, path, version),
        )?
        .into_pyobject(py)
    }

    /// Adds a key version and makes it primary.
    fn rotate(&self, py: Python<'_>) -> PyResult<KeyInfo> {
        let core = self.core()?.clone();
        block(py, true, async move { core.rotate().await }).map(KeyInfo::from)
    }

    /// Makes an active key version primary again.
    fn promote(&self, py: Python<'_>, version: u32) -> PyResult<()> {
        let core = self.core()?.clone();
        block(py, true, async move { core.promote(version).await })
    }

    /// Retires every key version below `min`.
    fn set_min_decryption_version(&self, py: Python<'_>, min: u32) -> PyResult<()> {
        let core = self.core()?.clone();
        block(py, true, async move {
            core.set_min_decryption_version(min).await
        })
    }

    /// Erases a retired key version (refused while records need it).
    fn destroy_key(&self, py: Python<'_>, version: u32) -> PyResult<()> {
        let core = self.core()?.clone();
        block(py, true, async move { core.destroy_key(version).await })
    }

    /// Re-seals stored records under the primary key.
    #[pyo3(signature = (batch_size = 500))]
    fn rewrap(&self, py: Python<'_>, batch_size: usize) -> PyResult<RewrapReport> {
        let core = self.core()?.clone();
        block(py, true, async move { core.rewrap(batch_size).await }).map(RewrapReport::from)
    }

    /// Re-reads the keyring from storage.
    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        let core = self.core()?.clone();
        block(py, true, async move { core.reload().await })
    }

    /// Wraps the root key with `protector` instead.
    fn rotate_root_key(&self, py: Python<'_>, protector: &Bound<'_, PyAny>) -> PyResult<()> {
        let (core, p) = (self.core()?.clone(), Protector::from_py(protector)?);
        block(py, true, protector::rotate_root_key(core, p))
    }

    /// Facts about every key version.
    fn keys(&self) -> PyResult<Vec<KeyInfo>> {
        keys(self.core()?)
    }

    // ----- versioned secrets (no policy, no audit), principals, audit -----

    /// Writes a new version of the secret at `path`; `cas` is the expected
    /// current version (0: must not exist). Returns its `VersionInfo`.
    #[pyo3(signature = (path, value, cas = None))]
    fn put_secret(
        &self,
        py: Python<'_>,
        path: String,
        value: &Bound<'_, PyAny>,
        cas: Option<u64>,
    ) -> PyResult<store::VersionInfo> {
        let value = secret_input(value)?;
        block(py, true, store::put(self.target()?, path, value, cas))
    }

    /// Reads the newest version (or `version`): `(VersionInfo, Secret)`.
    #[pyo3(signature = (path, version = None))]
    fn get_secret(
        &self,
        py: Python<'_>,
        path: String,
        version: Option<u64>,
    ) -> PyResult<store::ReadOut> {
        block(py, true, store::get(self.target()?, path, version))
    }

    /// Names directly under `prefix`; sub-folders end with "/".
    fn list_secrets(&self, py: Python<'_>, prefix: String) -> PyResult<Vec<String>> {
        block(py, true, store::list(self.target()?, prefix))
    }

    /// Soft-deletes `versions` (the current one if none); returns those changed.
    #[pyo3(signature = (path, versions = None))]
    fn delete_secret(
        &self,
        py: Python<'_>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Vec<u64>> {
        let v = versions.unwrap_or_default();
        block(
            py,
            true,
            store::change(self.target()?, Change::Delete, path, v),
        )
    }

    /// Restores soft-deleted `versions`; returns those changed.
    #[pyo3(signature = (path, versions = None))]
    fn undelete_secret(
        &self,
        py: Python<'_>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Vec<u64>> {
        let v = versions.unwrap_or_default();
        block(
            py,
            true,
            store::change(self.target()?, Change::Undelete, path, v),
        )
    }

    /// Destroys `versions` (the current one if none) for good; returns those changed.
    #[pyo3(signature = (path, versions = None))]
    fn destroy_secret(
        &self,
        py: Python<'_>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Vec<u64>> {
        let v = versions.unwrap_or_default();
        block(
            py,
            true,
            store::change(self.target()?, Change::Destroy, path, v),
        )
    }

    /// The secret's metadata.
    fn secret_metadata(&self, py: Python<'_>, path: String) -> PyResult<store::MetadataOut> {
        block(py, true, store::metadata(self.target()?, path))
    }

    /// Opens an audit log writing to the JSON-lines file `path` (created if
    /// missing; an existing file is first verified up to the store's saved
    /// head).
    #[pyo3(signature = (path, fsync = true, alerts = None))]
    fn open_audit_log(
        &self,
        py: Python<'_>,
        path: String,
        fsync: bool,
        alerts: Option<PyRef<'_, alerts::AlertEngine>>,
    ) -> PyResult<store::AuditLog> {
        let alerts = alerts.map(|a| a.inner.clone());
        let core = self.core()?.clone();
        block(py, true, store::open_audit_log(core, path, fsync, alerts))
    }

    /// Replaces the store's approval gates (see `strongroom.Strongroom.set_gates`);
    /// returns the new revision.
    #[pyo3(signature = (toml, expected_revision, operator = None))]
    fn set_gates(
        &self,
        py: Python<'_>,
        toml: &str,
        expected_revision: u64,
        operator: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let operator = approvals::operator_of(operator)?;
        let fut = approvals::set_gates(self.core()?, toml, expected_revision, operator)?;
        block(py, true, fut)
    }

    /// A handle through which `name`, holding `policies`, uses the secrets
    /// store: every call checked and audited to `audit`.
    fn as_principal(
        &self,
        name: String,
        policies: Vec<PyRef<'_, store::Policy>>,
        audit: &store::AuditLog,
    ) -> PyResult<store::BlockingHandle> {
        let core = self.core()?;
        Ok(store::BlockingHandle {
            inner: store::principal(core, name, &policies, audit),
            life: self.end.life.clone(),
            signing: self.end.signing_keys(core),
        })
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.core)
    }
}

// ---------------------------------------------------------------------------
// Low-level sealing with a caller-supplied key (format vectors, interop).

/// Seals `plaintext` with a 32-byte `key` of `algorithm`, writing
/// `key_version` into the header; the nonce is random. Returns the sealed bytes.
#[pyfunction]
fn seal_with_key<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    algorithm: &str,
    key_version: u32,
    path: &str,
    version: u64,
    plaintext: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = DataKey::new(self::algorithm(algorithm)?, secret_input(key)?).map_err(to_py)?;
    let plaintext = secret_input(plaintext)?;
    let sealed = compute(py, plaintext.len(), || {
        key.seal(
            key_version,
            plaintext.expose_secret(),
            &SealContext::new(path, version),
        )
    })?;
    Ok(bytes_out(py, sealed.into_bytes()))
}

/// Opens `sealed` with a 32-byte `key` of `algorithm`, bound to `path` and
/// `version`. Returns a `Secret`.
#[pyfunction]
fn open_sealed<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    algorithm: &str,
    path: &str,
    version: u64,
    sealed: &[u8],
) -> PyResult<Bound<'py, Secret>> {
    let key = DataKey::new(self::algorithm(algorithm)?, secret_input(key)?).map_err(to_py)?;
    let opened = compute(py, sealed.len(), || {
        let sealed = SealedValue::parse(sealed)?;
        key.open(&sealed, &SealContext::new(path, version))
    })?;
    Bound::new(py, Secret::new(py, opened))
}

/// The key version named in a sealed value's header.
#[pyfunction]
fn sealed_key_version(sealed: &[u8]) -> PyResult<u32> {
    strongroom::seal::header_key_version(sealed).map_err(to_py)
}

/// The native module; `strongroom/__init__.py` re-exports it.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(2)
        .thread_name("strongroom")
        .enable_time()
        .enable_io();
    pyo3_async_runtimes::tokio::init(builder);
    errors::register(m)?;
    lifetime::register(m)?;
    m.add_class::<Secret>()?;
    m.add_class::<Storage>()?;
    m.add_class::<SoftwareProtector>()?;
    shamir::register(m)?;
    pg::register(m)?;
    m.add_class::<KeyInfo>()?;
    m.add_class::<RewrapReport>()?;
    m.add_class::<Strongroom>()?;
    m.add(
        "BlockingStrongroom",
        m.py().get_type::<BlockingStrongroom>(),
    )?;
    m.add_class::<store::VersionInfo>()?;
    m.add_class::<store::SecretMetadata>()?;
    m.add_class::<store::Policy>()?;
    m.add_class::<store::AuditLog>()?;
    m.add_class::<store::AuditReport>()?;
    m.add_class::<store::Handle>()?;
    m.add("BlockingHandle", m.py().get_type::<store::BlockingHandle>())?;
    m.add_function(wrap_pyfunction!(store::verify_audit_file, m)?)?;
    m.add_class::<pkcs11::Pkcs11Protector>()?;
    m.add_class::<lease::ManualClock>()?;
    m.add_class::<lease::Lease>()?;
    m.add_class::<lease::LeaseEvent>()?;
    m.add_class::<lease::LeaseEvents>()?;
    m.add_class::<lease::DueReport>()?;
    m.add_class::<lease::PrefixRevocation>()?;
    m.add_class::<lease::LeaseManager>()?;
    m.add(
        "BlockingLeaseManager",
        m.py().get_type::<lease::BlockingLeaseManager>(),
    )?;
    m.add_class::<signing::RateLimit>()?;
    m.add_class::<signing::SigningKeyInfo>()?;
    m.add_class::<signing::Signature>()?;
    m.add_class::<signing::PublicKey>()?;
    m.add_class::<signing::EthSignature>()?;
    m.add_class::<signing::SigningHandle>()?;
    m.add(
        "BlockingSigningHandle",
        m.py().get_type::<signing::BlockingSigningHandle>(),
    )?;
    pki::register(m)?;
    approvals::register(m)?;
    alerts::register(m)?;
    m.add_class::<rotation::Matched>()?;
    m.add_class::<rotation::Credential>()?;
    m.add_class::<rotation::Staged>()?;
    m.add_class::<rotation::RotationStatus>()?;
    m.add_class::<rotation::RotationReport>()?;
    m.add_class::<rotation::ApiKeyRotation>()?;
    m.add(
        "BlockingApiKeyRotation",
        m.py().get_type::<rotation::BlockingApiKeyRotation>(),
    )?;
    m.add_function(wrap_pyfunction!(seal_with_key, m)?)?;
    m.add_function(wrap_pyfunction!(open_sealed, m)?)?;
    m.add_function(wrap_pyfunction!(sealed_key_version, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
