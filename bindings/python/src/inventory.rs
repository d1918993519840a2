//! The inventory of a store's secrets (metadata, rotation due, last read
//! from the verified audit file, filters), from `strongroom_host::inventory`.

use std::path::PathBuf;

use pyo3::prelude::*;
use strongroom_host::inventory::{self as host, InventoryEntry as HostEntry, InventoryFilter};

use crate::Core;
use crate::lease::seconds;
use crate::store::MetadataOut;

/// One secret of an inventory: its `metadata` (a `SecretMetadata`),
/// whether its rotation is overdue now (`rotation_overdue`) and its last
/// successful value read in the audit file (`last_read_ms`, ms since the
/// epoch; `None` if none was found or no file was given).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct InventoryEntry {
    /// The secret's metadata.
    metadata: Py<PyAny>,
    /// Whether its rotation is overdue.
    rotation_overdue: bool,
    /// Its last value read by the audit file.
    last_read_ms: Option<u64>,
}

#[pymethods]
impl InventoryEntry {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let path = self.metadata.bind(py).getattr("path")?;
        Ok(format!(
            "InventoryEntry(path={}, rotation_overdue={}, last_read_ms={:?})",
            path.repr()?,
            if self.rotation_overdue {
                "True"
            } else {
                "False"
            },
            self.last_read_ms
        ))
    }
}

/// Hands entries to Python.
pub(crate) struct EntriesOut(Vec<HostEntry>);

impl<'py> IntoPyObject<'py> for EntriesOut {
    type Target = pyo3::types::PyList;
    type Output = Bound<'py, pyo3::types::PyList>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let items = self
            .0
            .into_iter()
            .map(|e| {
                let metadata = MetadataOut(e.metadata).into_pyobject(py)?.into_any();
                Py::new(
                    py,
                    InventoryEntry {
                        metadata: metadata.unbind(),
                        rotation_overdue: e.rotation_overdue,
                        last_read_ms: e.last_read.map(|t| t.as_millis()),
                    },
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        pyo3::types::PyList::new(py, items)
    }
}

/// The filter from the keyword arguments.
pub(crate) fn filter(
    owner: Option<String>,
    environment: Option<String>,
    tags: Option<Vec<String>>,
    overdue: bool,
    unread_for: Option<&Bound<'_, PyAny>>,
) -> PyResult<InventoryFilter> {
    Ok(InventoryFilter {
        owner,
        environment,
        tags: tags.unwrap_or_default().into_iter().collect(),
        overdue,
        unread_for: unread_for.map(|u| seconds("unread_for", u)).transpose()?,
    })
}

/// The inventory of the secrets under `prefix`.
pub(crate) async fn collect(
    core: Core,
    prefix: String,
    audit_file: Option<PathBuf>,
    filter: InventoryFilter,
) -> strongroom::Result<EntriesOut> {
    host::collect(&core, &prefix, audit_file.as_deref(), &filter)
        .await
        .map(EntriesOut)
}
