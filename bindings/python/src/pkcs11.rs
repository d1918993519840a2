//! The root key's wrapping key in a PKCS#11 token (an HSM; SoftHSM2 in
//! tests), and the protector argument of `init` / `unseal`.

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyString;
use strongroom::SecretString;
use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector as CoreProtector};

use crate::{block, secret_input};

/// A root-key protector whose wrapping key lives in a PKCS#11 token: the
/// module library, the token's label, the user PIN and the token key's
/// label. Constructing it only records the settings; `init_key()` creates
/// the token key (once per key label), `open()` connects to an existing
/// one, and `Strongroom.init` / `unseal` connect on first use (so a wrong
/// PIN raises `ProtectorError` there, with `kind == "wrong pin"`).
#[pyclass(module = "strongroom", frozen)]
pub struct Pkcs11Protector {
    pub(crate) config: Pkcs11Config,
    pub(crate) connected: Arc<Mutex<Option<CoreProtector>>>,
}

impl Pkcs11Protector {
    fn connected(&self) -> Option<CoreProtector> {
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Connects `config` (opening the existing token key) unless already connected.
pub(crate) async fn connect(
    config: Pkcs11Config,
    slot: Arc<Mutex<Option<CoreProtector>>>,
    create: bool,
) -> strongroom::Result<CoreProtector> {
    if !create && let Some(p) = slot.lock().unwrap_or_else(PoisonError::into_inner).clone() {
        return Ok(p);
    }
    let p = if create {
        CoreProtector::init_key(config).await?
    } else {
        CoreProtector::open(config).await?
    };
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(p.clone());
    Ok(p)
}

#[pymethods]
impl Pkcs11Protector {
    /// Records the settings; no I/O. `pin` is a `str` or bytes-like (a
    /// `bytearray` can be zeroed afterwards); it is copied into memory
    /// wiped on drop and never printed.
    #[new]
    fn py_new(
        module_path: std::path::PathBuf,
        token_label: String,
        pin: &Bound<'_, PyAny>,
        key_label: String,
    ) -> PyResult<Self> {
        let pin = if let Ok(s) = pin.cast::<PyString>() {
            SecretString::from(s.to_str()?)
        } else {
            let b = secret_input(pin)?;
            let text = std::str::from_utf8(b.expose_secret())
                .map_err(|_| crate::lease::invalid("the PIN must be UTF-8 text"))?;
            SecretString::from(text)
        };
        Ok(Self {
            config: Pkcs11Config::new(module_path, token_label, pin, key_label),
            connected: Arc::new(Mutex::new(None)),
        })
    }

    /// Generates the token key (AES-256, made in the token, not
    /// extractable) and connects. Fails if the key label is already on the
    /// token. Blocks, GIL released.
    fn init_key(&self, py: Python<'_>) -> PyResult<()> {
        let (c, s) = (self.config.clone(), self.connected.clone());
        block(py, true, async move { connect(c, s, true).await.map(drop) })
    }

    /// Connects to the existing token key (logs in, finds the key).
    /// Blocks, GIL released.
    fn open(&self, py: Python<'_>) -> PyResult<()> {
        let (c, s) = (self.config.clone(), self.connected.clone());
        block(
            py,
            true,
            async move { connect(c, s, false).await.map(drop) },
        )
    }

    /// The token's label.
    #[getter]
    fn token_label(&self) -> String {
        self.config.token_label().to_owned()
    }

    /// The token key's label.
    #[getter]
    fn key_label(&self) -> String {
        self.config.key_label().to_owned()
    }

    /// The PKCS#11 module path.
    #[getter]
    fn module_path(&self) -> std::path::PathBuf {
        self.config.module_path().to_owned()
    }

    /// The token key version new wraps use (`None` until connected).
    #[getter]
    fn key_version(&self) -> Option<u32> {
        self.connected().map(|p| p.current_version())
    }

    fn __repr__(&self) -> String {
        format!(
            "Pkcs11Protector(token={:?}, key={:?}, connected={})",
            self.config.token_label(),
            self.config.key_label(),
            if self.connected().is_some() {
                "True"
            } else {
                "False"
            }
        )
    }
}
