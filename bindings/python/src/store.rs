//! The versioned secrets store, principal handles, policies and audit:
//! converters and the shared futures the async and blocking classes run.

use std::sync::Arc;

use pyo3::prelude::*;
use strongroom::SecretBytes;
use strongroom::audit::{AuditSink, FsyncPolicy, JsonlFileSink};
use strongroom::secrets::{SecretMetadata as CoreMetadata, SecretVersion, VersionInfo as CoreInfo};

use crate::{Core, SecretOut, block, to_py};

/// Facts about one version of a secret (never its value).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct VersionInfo {
    /// The version number.
    version: u64,
    /// When it was written, milliseconds since the Unix epoch.
    created_ms: u64,
    /// When it was soft-deleted, if it is.
    deleted_ms: Option<u64>,
    /// When it was destroyed, if it was.
    destroyed_ms: Option<u64>,
}

impl From<&CoreInfo> for VersionInfo {
    fn from(v: &CoreInfo) -> Self {
        Self {
            version: v.version,
            created_ms: v.created_at.as_millis(),
            deleted_ms: v.deleted_at.map(|t| t.as_millis()),
            destroyed_ms: v.destroyed_at.map(|t| t.as_millis()),
        }
    }
}

#[pymethods]
impl VersionInfo {
    fn __repr__(&self) -> String {
        format!(
            "VersionInfo(version={}, deleted={}, destroyed={})",
            self.version,
            self.deleted_ms.is_some(),
            self.destroyed_ms.is_some()
        )
    }
}

/// A secret's metadata (no values).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct SecretMetadata {
    /// The canonical path.
    path: String,
    /// The newest version.
    current_version: u64,
    /// The oldest version still kept.
    oldest_version: u64,
    /// The secret's own version limit, if set.
    max_versions: Option<u32>,
    /// The version limit in force.
    effective_max_versions: u32,
    /// When version 1 was written (ms since the epoch).
    created_ms: u64,
    /// When the secret last changed (ms since the epoch).
    updated_ms: u64,
    /// The owner, if set.
    owner: Option<String>,
    /// The environment, if set.
    environment: Option<String>,
    /// Tags, sorted.
    tags: Vec<String>,
    /// Custom key-values (not sealed: never secrets).
    custom: std::collections::BTreeMap<String, String>,
    /// How often the secret should be rotated, in seconds, if set.
    rotation_interval: Option<f64>,
    /// When a version last replaced an earlier one (ms since the epoch).
    last_rotated_ms: Option<u64>,
    /// Every kept version, oldest first.
    versions: Vec<Py<VersionInfo>>,
}

#[pymethods]
impl SecretMetadata {
    fn __repr__(&self) -> String {
        format!(
            "SecretMetadata(path={:?}, current_version={})",
            self.path, self.current_version
        )
    }
}

/// Converts core metadata when handed to Python.
pub(crate) struct MetadataOut(pub(crate) CoreMetadata);

impl<'py> IntoPyObject<'py> for MetadataOut {
    type Target = SecretMetadata;
    type Output = Bound<'py, SecretMetadata>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let m = self.0;
        let versions = m
            .versions
            .iter()
            .map(|v| Py::new(py, VersionInfo::from(v)))
            .collect::<PyResult<Vec<_>>>()?;
        Bound::new(
            py,
            SecretMetadata {
                path: m.path.as_str().to_owned(),
                current_version: m.current_version,
                oldest_version: m.oldest_version,
                max_versions: m.max_versions,
                effective_max_versions: m.effective_max_versions,
                created_ms: m.created_at.as_millis(),
                updated_ms: m.updated_at.as_millis(),
                owner: m.owner,
                environment: m.environment,
                tags: m.tags.into_iter().collect(),
                custom: m.custom,
                rotation_interval: m.rotation_interval.map(|d| d.as_secs_f64()),
                last_rotated_ms: m.last_rotated_at.map(|t| t.as_millis()),
                versions,
            },
        )
    }
}

/// Converts a version read (facts and value) into `(VersionInfo, Secret)`.
pub(crate) struct ReadOut(SecretVersion);

impl<'py> IntoPyObject<'py> for ReadOut {
    type Target = pyo3::types::PyTuple;
    type Output = Bound<'py, pyo3::types::PyTuple>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let info = VersionInfo::from(&self.0.version);
        (info, SecretOut(self.0.value)).into_pyobject(py)
    }
}

/// Whom a secrets call goes to: the store itself (no policy, no audit) or
/// a principal's handle (checked and audited).
#[derive(Clone)]
pub(crate) enum Target {
    Store(Core),
    Handle(strongroom::Handle),
}

macro_rules! on_target {
    ($t:expr, $store_op:ident, $handle_op:ident ( $($arg:expr),* )) => {
        match &$t {
            Target::Store(s) => s.secrets().$store_op($($arg),*).await,
            Target::Handle(h) => h.$handle_op($($arg),*).await,
        }
    };
}

pub(crate) async fn put(
    t: Target,
    path: String,
    value: SecretBytes,
    cas: Option<u64>,
) -> strongroom::Result<VersionInfo> {
    on_target!(t, put, put(&path, value.expose_secret(), cas)).map(|v| VersionInfo::from(&v))
}

pub(crate) async fn get(
    t: Target,
    path: String,
    version: Option<u64>,
) -> strongroom::Result<ReadOut> {
    match version {
        Some(v) => on_target!(t, get_version, read_version(&path, v)),
        None => on_target!(t, get, read(&path)),
    }
    .map(ReadOut)
}

pub(crate) async fn list(t: Target, prefix: String) -> strongroom::Result<Vec<String>> {
    on_target!(t, list, list(&prefix))
}

/// Which version-state change [`change`] makes.
#[derive(Clone, Copy)]
pub(crate) enum Change {
    Delete,
    Undelete,
    Destroy,
}

pub(crate) async fn change(
    t: Target,
    op: Change,
    path: String,
    versions: Vec<u64>,
) -> strongroom::Result<Vec<u64>> {
    match op {
        Change::Delete => on_target!(t, delete, delete(&path, &versions)),
        Change::Undelete => on_target!(t, undelete, undelete(&path, &versions)),
        Change::Destroy => on_target!(t, destroy, destroy(&path, &versions)),
    }
}

pub(crate) async fn metadata(t: Target, path: String) -> strongroom::Result<MetadataOut> {
    on_target!(t, metadata, metadata(&path)).map(MetadataOut)
}

/// A policy parsed from TOML.
#[pyclass(module = "strongroom", frozen)]
pub struct Policy {
    pub(crate) inner: strongroom::policy::Policy,
}

#[pymethods]
impl Policy {
    /// Parses a policy from TOML text (raises `PolicyError` with the line
    /// and column of a mistake).
    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<Self> {
        strongroom::policy::Policy::from_toml_str(text)
            .map(|inner| Self { inner })
            .map_err(|e| to_py(e.into()))
    }

    /// The policy's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    fn __repr__(&self) -> String {
        format!("Policy({:?})", self.inner.name)
    }
}

/// An audit log of a store writing to a JSON-lines file. Get one from
/// `sr.open_audit_log(path)`; hand it to `sr.as_principal(...)`.
#[pyclass(module = "strongroom", frozen)]
pub struct AuditLog {
    pub(crate) log: Arc<strongroom::audit::AuditLog>,
    path: String,
}

#[pymethods]
impl AuditLog {
    /// The JSON-lines file the log writes.
    #[getter]
    fn path(&self) -> String {
        self.path.clone()
    }

    fn __repr__(&self) -> String {
        format!("AuditLog({:?})", self.path)
    }
}

/// Opens an audit log to the JSON-lines file `path` (created if missing;
/// an existing file is verified up to the store's saved head first).
/// With `alerts`, the engine observes every record the log writes.
pub(crate) async fn open_audit_log(
    core: Core,
    path: String,
    fsync: bool,
    alerts: Option<strongroom::alerts::AlertEngine>,
) -> strongroom::Result<AuditLog> {
    let policy = if fsync {
        FsyncPolicy::EveryRecord
    } else {
        FsyncPolicy::OsBuffered
    };
    let sink: Arc<dyn AuditSink> = Arc::new(JsonlFileSink::open(&path, policy)?);
    let log = core
        .open_audit_log(vec![sink], Some(std::path::Path::new(&path)))
        .await?;
    let log = match alerts {
        Some(engine) => engine.attach(log),
        None => log,
    };
    Ok(AuditLog {
        log: Arc::new(log),
        path,
    })
}

/// A principal's handle from `policies` and `audit`.
pub(crate) fn principal(
    core: &Core,
    name: String,
    policies: &[PyRef<'_, Policy>],
    audit: &AuditLog,
) -> strongroom::Handle {
    let p = strongroom::policy::Principal::new(name, policies.iter().map(|p| &p.inner));
    core.as_principal(p, audit.log.clone())
}

/// What verifying an audit file saw.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct AuditReport {
    /// Records verified.
    records: u64,
    /// The last record's sequence number (0 for an empty file).
    head_seq: u64,
    /// The last record's MAC.
    head_mac: String,
}

#[pymethods]
impl AuditReport {
    fn __repr__(&self) -> String {
        format!(
            "AuditReport(records={}, head_seq={})",
            self.records, self.head_seq
        )
    }
}

/// Verifies the JSON-lines audit file at `path` with the store's audit key,
/// from its first record up to (at least) the store's saved head. Raises
/// `AuditChainBroken` (with `.seq`) at the first bad record. Blocks (GIL
/// released); `sr` is a `Strongroom` or a `blocking.Strongroom`.
#[pyfunction]
pub(crate) fn verify_audit_file(
    py: Python<'_>,
    path: std::path::PathBuf,
    sr: &Bound<'_, PyAny>,
) -> PyResult<AuditReport> {
    let core = crate::core_of(sr)?;
    block(py, true, async move {
        let r = core
            .verify_audit_file(&path, &strongroom::audit::AuditFileCheck::new())
            .await?;
        Ok(AuditReport {
            records: r.records,
            head_seq: r.head.seq,
            head_mac: r.head.mac,
        })
    })
}

/// A principal's handle to the secrets store (asyncio API): every call is
/// checked against its policies and audited. From `sr.as_principal(...)`.
#[pyclass(module = "strongroom", frozen)]
pub struct Handle {
    pub(crate) inner: strongroom::Handle,
    /// The store's open/closed state: closing the store closes the handle.
    pub(crate) life: crate::Life,
    /// The store's signing-keys engine, for `signing()`.
    pub(crate) signing: Arc<strongroom::signing::SigningKeys>,
}

/// The blocking form of [`Handle`] (`strongroom.blocking.Handle`).
#[pyclass(module = "strongroom.blocking", name = "Handle", frozen)]
pub struct BlockingHandle {
    pub(crate) inner: strongroom::Handle,
    /// The store's open/closed state: closing the store closes the handle.
    pub(crate) life: crate::Life,
    /// The store's signing-keys engine, for `signing()`.
    pub(crate) signing: Arc<strongroom::signing::SigningKeys>,
}

#[pymethods]
impl Handle {
    /// The principal's name.
    #[getter]
    fn principal(&self) -> String {
        self.inner.principal().name().to_owned()
    }

    /// Reads the newest version (or `version`); resolves to `(VersionInfo, Secret)`.
    #[pyo3(signature = (path, version = None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        path: String,
        version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = Target::Handle(self.inner.clone());
        crate::lifetime::awaitable(py, Some(&self.life), get(t, path, version))
    }

    /// Writes a new version; resolves to its `VersionInfo`.
    #[pyo3(signature = (path, value, cas = None))]
    fn put<'py>(
        &self,
        py: Python<'py>,
        path: String,
        value: &Bound<'py, PyAny>,
        cas: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = crate::secret_input(value)?;
        let t = Target::Handle(self.inner.clone());
        crate::lifetime::awaitable(py, Some(&self.life), put(t, path, value, cas))
    }

    /// Names directly under `prefix`; sub-folders end with "/".
    fn list<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let t = Target::Handle(self.inner.clone());
        crate::lifetime::awaitable(py, Some(&self.life), list(t, prefix))
    }

    /// The secret's metadata (capability `read`); resolves to a `SecretMetadata`.
    fn metadata<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        let t = Target::Handle(self.inner.clone());
        crate::lifetime::awaitable(py, Some(&self.life), metadata(t, path))
    }

    /// Changes the secret's metadata (capability `update`; keywords as for
    /// `Strongroom.update_secret_metadata`); resolves to the new
    /// `SecretMetadata`.
    #[pyo3(signature = (path, **changes))]
    fn update_metadata<'py>(
        &self,
        py: Python<'py>,
        path: String,
        changes: Option<&Bound<'py, pyo3::types::PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let p = crate::metadata::patch(changes)?;
        let t = Target::Handle(self.inner.clone());
        crate::lifetime::awaitable(py, Some(&self.life), crate::metadata::update(t, path, p))
    }

    /// Removes the secret with every version (capability `delete`).
    fn delete_metadata<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        let t = Target::Handle(self.inner.clone());
        crate::lifetime::awaitable(py, Some(&self.life), crate::metadata::delete(t, path))
    }

    /// Soft-deletes `versions` (the current one if none; capability
    /// `delete`); resolves to those changed.
    #[pyo3(signature = (path, versions = None))]
    fn delete<'py>(
        &self,
        py: Python<'py>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (t, v) = (
            Target::Handle(self.inner.clone()),
            versions.unwrap_or_default(),
        );
        crate::lifetime::awaitable(py, Some(&self.life), change(t, Change::Delete, path, v))
    }

    /// Restores soft-deleted `versions` (capability `delete`).
    #[pyo3(signature = (path, versions = None))]
    fn undelete<'py>(
        &self,
        py: Python<'py>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (t, v) = (
            Target::Handle(self.inner.clone()),
            versions.unwrap_or_default(),
        );
        crate::lifetime::awaitable(py, Some(&self.life), change(t, Change::Undelete, path, v))
    }

    /// Destroys `versions` for good (the current one if none; capability
    /// `delete`; held by a `destroy` gate); resolves to those changed.
    #[pyo3(signature = (path, versions = None))]
    fn destroy<'py>(
        &self,
        py: Python<'py>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (t, v) = (
            Target::Handle(self.inner.clone()),
            versions.unwrap_or_default(),
        );
        crate::lifetime::awaitable(py, Some(&self.life), change(t, Change::Destroy, path, v))
    }

    /// This principal's approval requests (`strongroom.Approvals`).
    fn approvals(&self) -> crate::approvals::Approvals {
        crate::approvals::Approvals::new(&self.inner, &self.life)
    }

    /// This handle with approval request `id`: its next gated call
    /// (destroy, a sensitive read) uses the approved request up.
    fn with_approval(&self, id: &str) -> Self {
        Self {
            inner: self.inner.with_approval(id),
            life: self.life.clone(),
            signing: self.signing.clone(),
        }
    }

    /// This principal's signing keys (`strongroom.SigningHandle`): every
    /// call checked against its policies on the key's name and audited.
    fn signing(&self) -> crate::signing::SigningHandle {
        crate::signing::SigningHandle::new(&self.inner, &self.signing, &self.life)
    }

    fn __repr__(&self) -> String {
        format!("Handle({:?})", self.inner.principal().name())
    }
}

impl BlockingHandle {
    fn change(
        &self,
        py: Python<'_>,
        op: Change,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Vec<u64>> {
        self.life.check()?;
        let t = Target::Handle(self.inner.clone());
        block(py, true, change(t, op, path, versions.unwrap_or_default()))
    }
}

#[pymethods]
impl BlockingHandle {
    /// The principal's name.
    #[getter]
    fn principal(&self) -> String {
        self.inner.principal().name().to_owned()
    }

    /// Reads the newest version (or `version`): `(VersionInfo, Secret)`.
    #[pyo3(signature = (path, version = None))]
    fn read(&self, py: Python<'_>, path: String, version: Option<u64>) -> PyResult<ReadOut> {
        self.life.check()?;
        let t = Target::Handle(self.inner.clone());
        block(py, true, get(t, path, version))
    }

    /// Writes a new version; returns its `VersionInfo`.
    #[pyo3(signature = (path, value, cas = None))]
    fn put(
        &self,
        py: Python<'_>,
        path: String,
        value: &Bound<'_, PyAny>,
        cas: Option<u64>,
    ) -> PyResult<VersionInfo> {
        let value = crate::secret_input(value)?;
        self.life.check()?;
        let t = Target::Handle(self.inner.clone());
        block(py, true, put(t, path, value, cas))
    }

    /// Names directly under `prefix`; sub-folders end with "/".
    fn list(&self, py: Python<'_>, prefix: String) -> PyResult<Vec<String>> {
        self.life.check()?;
        let t = Target::Handle(self.inner.clone());
        block(py, true, list(t, prefix))
    }

    /// The secret's metadata (capability `read`).
    fn metadata(&self, py: Python<'_>, path: String) -> PyResult<MetadataOut> {
        self.life.check()?;
        block(py, true, metadata(Target::Handle(self.inner.clone()), path))
    }

    /// Changes the secret's metadata (capability `update`).
    #[pyo3(signature = (path, **changes))]
    fn update_metadata(
        &self,
        py: Python<'_>,
        path: String,
        changes: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<MetadataOut> {
        let p = crate::metadata::patch(changes)?;
        self.life.check()?;
        let t = Target::Handle(self.inner.clone());
        block(py, true, crate::metadata::update(t, path, p))
    }

    /// Removes the secret with every version (capability `delete`).
    fn delete_metadata(&self, py: Python<'_>, path: String) -> PyResult<()> {
        self.life.check()?;
        block(
            py,
            true,
            crate::metadata::delete(Target::Handle(self.inner.clone()), path),
        )
    }

    /// Soft-deletes `versions` (the current one if none); returns those changed.
    #[pyo3(signature = (path, versions = None))]
    fn delete(
        &self,
        py: Python<'_>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Vec<u64>> {
        self.change(py, Change::Delete, path, versions)
    }

    /// Restores soft-deleted `versions`; returns those changed.
    #[pyo3(signature = (path, versions = None))]
    fn undelete(
        &self,
        py: Python<'_>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Vec<u64>> {
        self.change(py, Change::Undelete, path, versions)
    }

    /// Destroys `versions` for good (held by a `destroy` gate); returns
    /// those changed.
    #[pyo3(signature = (path, versions = None))]
    fn destroy(
        &self,
        py: Python<'_>,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> PyResult<Vec<u64>> {
        self.change(py, Change::Destroy, path, versions)
    }

    /// This principal's approval requests (`strongroom.blocking.Approvals`).
    fn approvals(&self) -> crate::approvals::BlockingApprovals {
        crate::approvals::BlockingApprovals::new(&self.inner, &self.life)
    }

    /// This handle with approval request `id` (see `Handle.with_approval`).
    fn with_approval(&self, id: &str) -> Self {
        Self {
            inner: self.inner.with_approval(id),
            life: self.life.clone(),
            signing: self.signing.clone(),
        }
    }

    /// This principal's signing keys (`strongroom.blocking.SigningHandle`).
    fn signing(&self) -> crate::signing::BlockingSigningHandle {
        crate::signing::BlockingSigningHandle::new(&self.inner, &self.signing, &self.life)
    }

    fn __repr__(&self) -> String {
        format!("Handle({:?})", self.inner.principal().name())
    }
}
