//! The root key's wrapping key in a PKCS#11 token (an HSM; SoftHSM2 in
//! tests), for `Strongroom.createWithPkcs11` / `unsealWithPkcs11` (S9).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use strongroom::SecretString;
use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector as CoreProtector};

use crate::errors::Result;
use crate::{Storage, Strongroom};

/// A root-key protector whose wrapping key lives in a PKCS#11 token: the
/// module library, the token's label, the user PIN and the token key's
/// label. Constructing it only records the settings; `initKey()` creates
/// the token key (once per key label), `open()` connects to an existing
/// one, and `Strongroom.createWithPkcs11` / `unsealWithPkcs11` connect on
/// first use (so a wrong PIN fails there with `Protector`, kind "wrong pin").
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct Pkcs11Protector {
    config: Pkcs11Config,
    connected: Mutex<Option<CoreProtector>>,
}

impl fmt::Debug for Pkcs11Protector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pkcs11Protector(token={:?}, key={:?}, connected={})",
            self.config.token_label(),
            self.config.key_label(),
            self.connected().is_some()
        )
    }
}

impl Pkcs11Protector {
    fn connected(&self) -> Option<CoreProtector> {
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The core protector: the connected one, else a new connection to the
    /// existing token key (`create`: a newly generated token key).
    async fn connect(&self, create: bool) -> Result<CoreProtector> {
        if !create && let Some(p) = self.connected() {
            return Ok(p);
        }
        let p = if create {
            CoreProtector::init_key(self.config.clone()).await?
        } else {
            CoreProtector::open(self.config.clone()).await?
        };
        *self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(p.clone());
        Ok(p)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Pkcs11Protector {
    /// Records the settings (no I/O). The PIN is moved into memory that is
    /// wiped on drop and is never printed.
    #[uniffi::constructor]
    pub fn new(
        module_path: String,
        token_label: String,
        pin: String,
        key_label: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            config: Pkcs11Config::new(module_path, token_label, SecretString::from(pin), key_label),
            connected: Mutex::new(None),
        })
    }

    /// Generates the token key (AES-256, made in the token, not
    /// extractable) and connects. Fails if the key label is already on the
    /// token.
    pub async fn init_key(&self) -> Result<()> {
        self.connect(true).await.map(drop)
    }

    /// Connects to the existing token key (logs in, finds the key).
    pub async fn open(&self) -> Result<()> {
        self.connect(false).await.map(drop)
    }

    /// The token's label.
    pub fn token_label(&self) -> String {
        self.config.token_label().to_owned()
    }

    /// The token key's label.
    pub fn key_label(&self) -> String {
        self.config.key_label().to_owned()
    }

    /// The PKCS#11 module path.
    pub fn module_path(&self) -> String {
        self.config.module_path().display().to_string()
    }

    /// The token key version new wraps use (nil until connected).
    pub fn key_version(&self) -> Option<u32> {
        self.connected().map(|p| p.current_version())
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Strongroom {
    /// Creates a new store in empty `storage`, its root key wrapped by the
    /// token key of `protector` (call `protector.initKey()` first for a new
    /// token key).
    #[uniffi::constructor]
    pub async fn create_with_pkcs11(
        storage: Arc<Storage>,
        protector: Arc<Pkcs11Protector>,
    ) -> Result<Arc<Self>> {
        let p = protector.connect(false).await?;
        Self::create_with(&storage, &p).await
    }

    /// Opens a store whose root key is wrapped by `protector`'s token key.
    #[uniffi::constructor]
    pub async fn unseal_with_pkcs11(
        storage: Arc<Storage>,
        protector: Arc<Pkcs11Protector>,
    ) -> Result<Arc<Self>> {
        let p = protector.connect(false).await?;
        Self::unseal_with(&storage, &p).await
    }
}
