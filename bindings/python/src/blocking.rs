//! `strongroom.blocking.Strongroom`: the store's blocking API, the same
//! methods as the asyncio `Strongroom` running the same futures.

use pyo3::prelude::*;
use strongroom::seal::OVERHEAD;

use crate::*;

/// An unsealed store (blocking API; same methods as `Strongroom`, not
/// awaitables). Exposed as `strongroom.blocking.Strongroom`.
#[pyclass(module = "strongroom.blocking", name = "Strongroom", frozen)]
pub struct BlockingStrongroom {
    pub(crate) core: Core,
    pub(crate) end: End,
}

impl BlockingStrongroom {
    /// The core, or `Closed`.
    pub(crate) fn core(&self) -> PyResult<&Core> {
        self.end.life.check()?;
        Ok(&self.core)
    }

    fn target(&self) -> PyResult<Target> {
        Ok(Target::Store(self.core()?.clone()))
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

    /// Changes the secret's metadata (see `Strongroom.update_secret_metadata`).
    #[pyo3(signature = (path, **changes))]
    fn update_secret_metadata(
        &self,
        py: Python<'_>,
        path: String,
        changes: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<store::MetadataOut> {
        let p = metadata::patch(changes)?;
        block(py, true, metadata::update(self.target()?, path, p))
    }

    /// The inventory of the secrets under `prefix` (see `Strongroom.inventory`).
    #[pyo3(signature = (prefix = String::new(), *, audit_file = None, owner = None,
        environment = None, tags = None, overdue = false, unread_for = None))]
    #[allow(clippy::too_many_arguments)]
    fn inventory(
        &self,
        py: Python<'_>,
        prefix: String,
        audit_file: Option<std::path::PathBuf>,
        owner: Option<String>,
        environment: Option<String>,
        tags: Option<Vec<String>>,
        overdue: bool,
        unread_for: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<inventory::EntriesOut> {
        let f = inventory::filter(owner, environment, tags, overdue, unread_for)?;
        let core = self.core()?.clone();
        block(py, true, inventory::collect(core, prefix, audit_file, f))
    }

    /// Removes the secret with every version.
    fn delete_secret_metadata(&self, py: Python<'_>, path: String) -> PyResult<()> {
        block(py, true, metadata::delete(self.target()?, path))
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
