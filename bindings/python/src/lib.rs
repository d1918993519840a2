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
use strongroom::seal::SealContext;
use strongroom::signing::SigningKeys;
use strongroom::{Options, SecretBytes};
use strongroom_host::storage::HostStorage;
use zeroize::Zeroizing;

mod alerts;
mod approvals;
mod blocking;
mod errors;
mod inventory;
mod keyring;
mod lease;
mod lifetime;
mod metadata;
mod pg;
mod pkcs11;
mod pki;
mod protector;
mod rotation;
mod sealing;
mod secret;
mod shamir;
mod signing;
mod storage;
mod store;

use blocking::BlockingStrongroom;
use errors::to_py;
use keyring::{KeyInfo, KeyInfoOut, ReportOut, RewrapReport, keys};
use lifetime::Life;
use protector::{Protector, SoftwareProtector};
use secret::{BytesOut, Secret, SecretOptOut, SecretOut, seal_input, secret_input};
use storage::Storage;
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

// ---------------------------------------------------------------------------
// The store: the same surface twice, async and blocking.

/// An unsealed store (asyncio API). Create with `await Strongroom.init(...)`
/// or `await Strongroom.unseal(...)`.
#[pyclass(module = "strongroom", frozen)]
pub struct Strongroom {
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

    /// Changes the secret's metadata: keywords `owner`, `environment`,
    /// `tags`, `custom`, `rotation_interval`, `max_versions` (left out:
    /// unchanged; `None`: cleared). Resolves to the new `SecretMetadata`.
    #[pyo3(signature = (path, **changes))]
    fn update_secret_metadata<'py>(
        &self,
        py: Python<'py>,
        path: String,
        changes: Option<&Bound<'py, pyo3::types::PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let p = metadata::patch(changes)?;
        self.run(py, metadata::update(self.target()?, path, p))
    }

    /// Every secret under `prefix` with its metadata, whether its rotation
    /// is overdue and (given the store's `audit_file`, verified first) its
    /// last read, filtered by the keywords; resolves to a list of
    /// `InventoryEntry`. Values are never read.
    #[pyo3(signature = (prefix = String::new(), *, audit_file = None, owner = None,
        environment = None, tags = None, overdue = false, unread_for = None))]
    #[allow(clippy::too_many_arguments)]
    fn inventory<'py>(
        &self,
        py: Python<'py>,
        prefix: String,
        audit_file: Option<std::path::PathBuf>,
        owner: Option<String>,
        environment: Option<String>,
        tags: Option<Vec<String>>,
        overdue: bool,
        unread_for: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = inventory::filter(owner, environment, tags, overdue, unread_for)?;
        let core = self.core()?.clone();
        self.run(py, inventory::collect(core, prefix, audit_file, f))
    }

    /// Removes the secret with every version (the path reads as never
    /// written); resolves to `None`.
    fn delete_secret_metadata<'py>(
        &self,
        py: Python<'py>,
        path: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, metadata::delete(self.target()?, path))
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
    m.add_class::<inventory::InventoryEntry>()?;
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
    m.add_function(wrap_pyfunction!(sealing::seal_with_key, m)?)?;
    m.add_function(wrap_pyfunction!(sealing::open_sealed, m)?)?;
    m.add_function(wrap_pyfunction!(sealing::sealed_key_version, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
