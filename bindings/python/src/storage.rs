//! `Storage`: where a store keeps its records (from `strongroom-host`).

use pyo3::prelude::*;
use strongroom_host::storage::HostStorage;

use crate::{block, runtime};

/// Where a store keeps its records.
#[pyclass(module = "strongroom", frozen)]
#[derive(Clone)]
pub struct Storage {
    /// The backend and what closing it needs.
    pub(crate) inner: HostStorage,
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
