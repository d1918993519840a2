//! Root-key protectors: the software one, and the protector argument of
//! `init`, `unseal` and `rotate_root_key` (software, Shamir or PKCS#11).

use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use strongroom::protector::{KeyProtector, SoftwareProtector as CoreProtector};
use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector as Pkcs11Core};

use crate::errors::to_py;
use crate::pkcs11::{Pkcs11Protector, connect};
use crate::shamir::ShamirProtector;
use crate::{Core, secret_input};

/// A root-key protector holding a 256-bit key in process memory.
#[pyclass(module = "strongroom", frozen)]
pub struct SoftwareProtector {
    pub(crate) inner: Arc<CoreProtector>,
}

#[pymethods]
impl SoftwareProtector {
    /// From 32 key bytes.
    #[staticmethod]
    fn from_key(key: &Bound<'_, PyAny>) -> PyResult<Self> {
        let key = secret_input(key)?;
        Ok(Self {
            inner: Arc::new(CoreProtector::from_key(key).map_err(to_py)?),
        })
    }

    /// From a key file (one line of base64, mode 0600).
    #[staticmethod]
    fn from_key_file(path: std::path::PathBuf) -> PyResult<Self> {
        Ok(Self {
            inner: Arc::new(CoreProtector::from_key_file(path).map_err(to_py)?),
        })
    }

    /// Writes a new key file with a fresh random key (mode 0600; never
    /// overwrites).
    #[staticmethod]
    fn generate_key_file(path: std::path::PathBuf) -> PyResult<()> {
        CoreProtector::generate_key_file(path).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// The protector given to `init` / `unseal`: resolved inside their future.
pub(crate) enum Protector {
    Software(Arc<strongroom::protector::SoftwareProtector>),
    Pkcs11(Pkcs11Config, Arc<Mutex<Option<Pkcs11Core>>>),
    /// A protector ready to use (Shamir).
    Ready(Arc<dyn KeyProtector>),
}

impl Protector {
    pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(p) = obj.cast::<SoftwareProtector>() {
            return Ok(Self::Software(p.get().inner.clone()));
        }
        if let Ok(p) = obj.cast::<ShamirProtector>() {
            return Ok(Self::Ready(p.get().inner.clone()));
        }
        if let Ok(p) = obj.cast::<Pkcs11Protector>() {
            let p = p.get();
            return Ok(Self::Pkcs11(p.config.clone(), p.connected.clone()));
        }
        Err(PyTypeError::new_err(
            "protector must be a SoftwareProtector, a ShamirProtector or a Pkcs11Protector",
        ))
    }

    /// The core protector, connecting a PKCS#11 token on first use.
    pub(crate) async fn resolve(self) -> strongroom::Result<Arc<dyn KeyProtector>> {
        Ok(match self {
            Self::Software(p) => p,
            Self::Ready(p) => p,
            Self::Pkcs11(c, s) => Arc::new(connect(c, s, false).await?),
        })
    }
}

/// Replaces the store's root key with one wrapped by `protector` (the
/// records are not touched: only the keyring's wrapping changes).
pub(crate) async fn rotate_root_key(core: Core, protector: Protector) -> strongroom::Result<()> {
    let p = protector.resolve().await?;
    core.rotate_root_key(&*p).await
}
