//! The keyring's public facts: `KeyInfo` and `RewrapReport`.

use pyo3::prelude::*;
use strongroom::RewrapReport as CoreRewrapReport;
use strongroom::keyring::KeyInfo as CoreKeyInfo;

use crate::Core;
use crate::errors::to_py;

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

pub(crate) fn keys(core: &Core) -> PyResult<Vec<KeyInfo>> {
    Ok(core
        .keys()
        .map_err(to_py)?
        .into_iter()
        .map(KeyInfo::from)
        .collect())
}

pub(crate) struct ReportOut(pub(crate) CoreRewrapReport);

impl<'py> IntoPyObject<'py> for ReportOut {
    type Target = RewrapReport;
    type Output = Bound<'py, RewrapReport>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, RewrapReport::from(self.0))
    }
}

pub(crate) struct KeyInfoOut(pub(crate) CoreKeyInfo);

impl<'py> IntoPyObject<'py> for KeyInfoOut {
    type Target = KeyInfo;
    type Output = Bound<'py, KeyInfo>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, KeyInfo::from(self.0))
    }
}
