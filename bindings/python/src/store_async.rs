//! `strongroom.Strongroom`: the store's asyncio API (methods return
//! awaitables); `blocking.rs` has the same surface, blocking.

use std::future::Future;

use pyo3::prelude::*;

use crate::*;

/// An unsealed store (asyncio API). Create with `await Strongroom.init(...)`
/// or `await Strongroom.unseal(...)`.
#[pyclass(module = "strongroom", frozen)]
pub struct Strongroom {
    pub(crate) core: Core,
    pub(crate) end: End,
}

impl Strongroom {
    /// The core, or `Closed`.
    pub(crate) fn core(&self) -> PyResult<&Core> {
        self.end.life.check()?;
        Ok(&self.core)
    }

    pub(crate) fn target(&self) -> PyResult<Target> {
        Ok(Target::Store(self.core()?.clone()))
    }

    /// Wraps a future of this store as an awaitable that ends with `Closed`
    /// when the store is closed.
    pub(crate) fn run<'py, T>(
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
