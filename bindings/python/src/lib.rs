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
mod dynamic;
mod errors;
mod inventory;
mod keyring;
mod lease;
mod lease_events;
mod lifetime;
mod metadata;
mod pg;
mod pkcs11;
mod pki;
mod protector;
mod revoker;
mod rotation;
mod sealing;
mod secret;
mod shamir;
mod signing;
mod storage;
mod store;
mod store_async;

use blocking::BlockingStrongroom;
use errors::to_py;
use keyring::{KeyInfo, KeyInfoOut, ReportOut, RewrapReport, keys};
use lifetime::Life;
use protector::{Protector, SoftwareProtector};
use secret::{BytesOut, Secret, SecretOptOut, SecretOut, seal_input, secret_input};
use storage::Storage;
use store::{Change, Target};
use store_async::Strongroom;

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
    dynamic::register(m)?;
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
    m.add_class::<lease_events::LeaseEvent>()?;
    m.add_class::<lease_events::LeaseEvents>()?;
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
