//! The uniffi FFI of Strongroom: the surface Swift (and, for testing here,
//! uniffi's Python bindings) see. Each function converts, calls the core and
//! maps the result; async functions run on uniffi's tokio support.
//!
//! This file holds the keyring and sealing surface; `store` the versioned
//! secrets, policies, handles and audit; `lease` leases and host-language
//! revokers; `rotation` API-key rotation; `pkcs11` the PKCS#11 root key;
//! `shamir` Shamir shares and the Shamir root key; `errors` the one error
//! enum.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use strongroom::keyring::{KeyInfo as CoreKeyInfo, KeyState as CoreKeyState};
use strongroom::protector::SoftwareProtector as CoreProtector;
use strongroom::seal::{Algorithm, DataKey, SealContext, SealedValue};
use strongroom::storage::DynStorage;
use strongroom::{Error, Options, RewrapReport as CoreRewrapReport, SecretBytes};
use strongroom_host::storage::HostStorage;
use zeroize::Zeroize as _;

uniffi::setup_scaffolding!();

mod alerts;
mod approvals;
mod errors;
mod lease;
mod metadata;
mod pkcs11;
mod pki;
mod postgres;
mod rotation;
mod shamir;
mod signing;
mod store;

pub use alerts::{Alert, AlertEngine, AlertEngineStats, AlertListener, AlertListenerError};
pub use approvals::{ApprovalDecision, ApprovalGate, ApprovalGates, ApprovalRequest, Approvals};
use errors::Result;
pub use errors::{
    BINDING_ONLY_CASES, ErrorCodeInfo, ErrorFieldSpec, FieldValue, StrongroomError, error_codes,
};
pub use lease::{
    Clock, DueReport, Lease, LeaseEvent, LeaseEventListener, LeaseListenerError, LeaseManager,
    LeaseOptions, LeaseRevoker, LeaseSubscription, PrefixRevocation, RevokerError,
};
pub use metadata::{InventoryEntry, InventoryFilter, MetadataUpdate};
pub use pkcs11::Pkcs11Protector;
pub use pki::{CaCertificate, Crl, IssueRequest, IssuedCertificate, Pki, PkiRole};
pub use postgres::{
    CredentialFeed, DynamicLogin, DynamicPg, PgAfterError, PgLogin, PgRotation, PgRotationMode,
    configure_pg_catalog,
};
pub use rotation::{
    ApiKeyFormat, ApiKeyVerifier, Credential, Matched, RotationEngine, RotationOptions,
    RotationReport, RotationStatus, RotationVersion, StagedCredentials,
};
pub use shamir::{
    ShamirProtector, ShamirSetup, generate_shamir_protector, shamir_combine, shamir_split,
};
pub use signing::{
    EthSignature, PublicKey, RateLimit, Signature, SigningHandle, SigningKeyInfo,
    SigningKeyVersion, parse_signature,
};
pub use store::{
    AuditLog, AuditReport, Handle, Policy, SecretMetadata, SecretRead, VersionInfo,
    verify_audit_file,
};

/// The store as the binding holds it: through the door to unchecked access
/// ([`strongroom::dangerous`]), opened once per store as [`CALLER`].
type Core = strongroom::dangerous::Door;
/// The caller name of the binding's door (audited as `dangerous:<CALLER>`).
const CALLER: &str = "swift";

fn algorithm(name: &str) -> Result<Algorithm> {
    Algorithm::from_name(name).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "unknown algorithm {name:?} (use \"aes-256-gcm\" or \"chacha20-poly1305\")"
        ))
        .into()
    })
}

/// A secret returned by Strongroom. Its description is a redaction; `wipe()`
/// zeroes the Rust-owned buffer. Copies returned by `reveal()` belong to the
/// host language and are not wiped by this object.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display)]
pub struct Secret {
    value: Mutex<SecretBytes>,
}

impl Secret {
    fn new(value: SecretBytes) -> Arc<Self> {
        Arc::new(Self {
            value: Mutex::new(value),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut SecretBytes) -> T) -> T {
        match self.value.lock() {
            Ok(mut v) => f(&mut v),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([REDACTED; {} bytes])", self.with(|v| v.len()))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[uniffi::export]
impl Secret {
    /// A copy of the value (host-language memory, not wiped by `wipe()`).
    pub fn reveal(&self) -> Vec<u8> {
        self.with(|v| v.expose_secret().to_vec())
    }

    /// Overwrites the value with zeros (the length is kept).
    pub fn wipe(&self) {
        self.with(|v| v.expose_secret_mut().as_mut_slice().zeroize());
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.with(|v| v.len() as u64)
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.with(|v| v.is_empty())
    }
}

/// Where a store keeps its records.
#[derive(uniffi::Object)]
pub struct Storage {
    inner: DynStorage,
    /// The backend, for closing it.
    host: HostStorage,
}

impl Storage {
    fn from_host(host: HostStorage) -> Arc<Self> {
        Arc::new(Self {
            inner: host.storage().clone(),
            host,
        })
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Storage {
    /// In-memory storage.
    #[uniffi::constructor]
    pub fn memory() -> Arc<Self> {
        Self::from_host(HostStorage::memory())
    }

    /// An SQLite store in the file at `path` (created if missing).
    #[uniffi::constructor]
    pub async fn sqlite(path: String) -> Result<Arc<Self>> {
        Ok(Self::from_host(HostStorage::sqlite(
            strongroom_sqlx::SqliteStore::open(path).await?,
        )))
    }

    /// The store at `location`: `memory:`, `sqlite:<path>` or a file path,
    /// or a `postgres://user:password@host:port/database` URL (a fleet
    /// shares it). The URL never appears in errors. A refused login fails
    /// with `Storage` (kind `rejected`), an unreachable server with kind
    /// `unavailable`.
    #[uniffi::constructor]
    pub async fn open(location: String) -> Result<Arc<Self>> {
        Ok(Self::from_host(HostStorage::open(&location).await?))
    }

    /// The backend's name (`memory`, `sqlite`, `postgres`).
    pub fn backend(&self) -> String {
        self.inner.backend().into()
    }

    /// Whether the storage holds an initialised store.
    pub async fn is_initialized(&self) -> Result<bool> {
        Ok(strongroom::Strongroom::is_initialized(&self.inner).await?)
    }

    /// Closes the backend's connections; later calls through it fail with
    /// `Storage`. Closing twice is harmless.
    pub async fn close(&self) {
        self.host.close().await;
    }
}

/// A root-key protector holding a 256-bit key in process memory.
#[derive(uniffi::Object)]
pub struct SoftwareProtector {
    inner: CoreProtector,
}

#[uniffi::export]
impl SoftwareProtector {
    /// From 32 key bytes.
    #[uniffi::constructor]
    pub fn from_key(key: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            inner: CoreProtector::from_key(SecretBytes::new(key))?,
        }))
    }

    /// From a key file (one line of base64, mode 0600).
    #[uniffi::constructor]
    pub fn from_key_file(path: String) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            inner: CoreProtector::from_key_file(path)?,
        }))
    }
}

/// Writes a new key file holding a fresh random key (mode 0600; never
/// overwrites).
#[uniffi::export]
pub fn generate_key_file(path: String) -> Result<()> {
    Ok(CoreProtector::generate_key_file(path)?)
}

/// A key version's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyState {
    /// Seals new values and opens old ones.
    Primary,
    /// Opens values.
    Active,
    /// Opens nothing until the minimum decryption version is lowered.
    Retired,
    /// Key material erased.
    Destroyed,
}

/// Public facts about one key version.
#[derive(Debug, Clone, uniffi::Record)]
pub struct KeyInfo {
    /// The version number.
    pub version: u32,
    /// Its state.
    pub state: KeyState,
    /// "aes-256-gcm" or "chacha20-poly1305".
    pub algorithm: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Encryptions reserved so far.
    pub encryptions_reserved: u64,
}

impl From<CoreKeyInfo> for KeyInfo {
    fn from(k: CoreKeyInfo) -> Self {
        Self {
            version: k.version,
            state: match k.state {
                CoreKeyState::Primary => KeyState::Primary,
                CoreKeyState::Active => KeyState::Active,
                CoreKeyState::Retired => KeyState::Retired,
                CoreKeyState::Destroyed => KeyState::Destroyed,
            },
            algorithm: k.algorithm.name().into(),
            created_ms: k.created.as_millis(),
            encryptions_reserved: k.encryptions_reserved,
        }
    }
}

/// What a rewrap did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RewrapReport {
    /// Records looked at.
    pub scanned: u64,
    /// Records re-sealed under the primary key.
    pub rewrapped: u64,
    /// Storage keys of records that could not be opened.
    pub unreadable: Vec<String>,
}

impl From<CoreRewrapReport> for RewrapReport {
    fn from(r: CoreRewrapReport) -> Self {
        Self {
            scanned: r.scanned,
            rewrapped: r.rewrapped,
            unreadable: r.unreadable,
        }
    }
}

/// Which `Strongroom` object a handle, lease manager or PKI mount came
/// from, so that objects of two stores are not mixed.
#[derive(Clone)]
pub(crate) struct StoreId(Arc<()>);

impl StoreId {
    fn new() -> Self {
        Self(Arc::new(()))
    }

    /// Whether both came from the same `Strongroom` object.
    pub(crate) fn same(&self, other: &StoreId) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// An unsealed store.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct Strongroom {
    core: Core,
    id: StoreId,
    /// The store's one signing-keys engine (its rate limits are per
    /// engine), made on first use and shared by every principal's handle.
    signing: OnceLock<Arc<strongroom::signing::SigningKeys>>,
}

impl Strongroom {
    fn from_core(core: Core) -> Arc<Self> {
        Arc::new(Self {
            core,
            id: StoreId::new(),
            signing: OnceLock::new(),
        })
    }

    /// A new store in empty `storage`, its root key wrapped by `protector`.
    pub(crate) async fn create_with(
        storage: &Storage,
        protector: &dyn strongroom::protector::KeyProtector,
    ) -> Result<Arc<Self>> {
        let core =
            strongroom::Strongroom::init(storage.inner.clone(), protector, Options::default())
                .await?
                .dangerous_traced(crate::CALLER)
                .await?;
        Ok(Self::from_core(core))
    }

    /// The store in `storage`, unsealed with `protector`.
    pub(crate) async fn unseal_with(
        storage: &Storage,
        protector: &dyn strongroom::protector::KeyProtector,
    ) -> Result<Arc<Self>> {
        let core =
            strongroom::Strongroom::unseal(storage.inner.clone(), protector, Options::default())
                .await?
                .dangerous_traced(crate::CALLER)
                .await?;
        Ok(Self::from_core(core))
    }

    /// The store's signing-keys engine.
    pub(crate) fn signing_keys(&self) -> Arc<strongroom::signing::SigningKeys> {
        self.signing
            .get_or_init(|| Arc::new(self.core.signing_keys()))
            .clone()
    }
}

impl fmt::Debug for Strongroom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.core, f)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Strongroom {
    /// Creates a new store in empty `storage`.
    #[uniffi::constructor]
    pub async fn create(
        storage: Arc<Storage>,
        protector: Arc<SoftwareProtector>,
    ) -> Result<Arc<Self>> {
        Self::create_with(&storage, &protector.inner).await
    }

    /// Opens an initialised store.
    #[uniffi::constructor]
    pub async fn unseal(
        storage: Arc<Storage>,
        protector: Arc<SoftwareProtector>,
    ) -> Result<Arc<Self>> {
        Self::unseal_with(&storage, &protector.inner).await
    }

    /// Replaces the root key with a fresh one wrapped by `protector` (a new
    /// software key, or the same one): from now on the store unseals with
    /// it. The keyring is re-sealed in one atomic write; sealed values are
    /// untouched; other processes sharing the store follow the rotation
    /// (retire the old key only after the hand-over grace period, see
    /// FORMAT.md).
    pub async fn rotate_root_key(&self, protector: Arc<SoftwareProtector>) -> Result<()> {
        Ok(self.core.rotate_root_key(&protector.inner).await?)
    }

    /// Forgets the keys; later calls fail with `Sealed`.
    pub fn seal(&self) {
        self.core.seal();
    }

    /// Whether `seal()` was called.
    pub fn is_sealed(&self) -> bool {
        self.core.is_sealed()
    }

    /// Seals `plaintext` bound to `path` and `version`.
    pub async fn seal_value(
        &self,
        plaintext: Vec<u8>,
        path: String,
        version: u64,
    ) -> Result<Vec<u8>> {
        let plaintext = SecretBytes::new(plaintext);
        let sealed = self
            .core
            .seal_value(plaintext.expose_secret(), &SealContext::new(&path, version))
            .await?;
        Ok(sealed.into_bytes())
    }

    /// Opens a sealed value bound to `path` and `version`.
    pub fn open_value(&self, sealed: Vec<u8>, path: String, version: u64) -> Result<Arc<Secret>> {
        let sealed = SealedValue::from_vec(sealed)?;
        let opened = self
            .core
            .open_value(&sealed, &SealContext::new(&path, version))?;
        Ok(Secret::new(opened))
    }

    /// Stores `plaintext` sealed at storage key `key` (under "s/").
    pub async fn put_sealed(
        &self,
        key: String,
        plaintext: Vec<u8>,
        path: String,
        version: u64,
    ) -> Result<()> {
        let plaintext = SecretBytes::new(plaintext);
        Ok(self
            .core
            .put_sealed(
                &key,
                plaintext.expose_secret(),
                &SealContext::new(&path, version),
            )
            .await?)
    }

    /// Reads and opens the sealed record at `key`; nil if absent.
    pub async fn get_sealed(
        &self,
        key: String,
        path: String,
        version: u64,
    ) -> Result<Option<Arc<Secret>>> {
        let got = self
            .core
            .get_sealed(&key, &SealContext::new(&path, version))
            .await?;
        Ok(got.map(Secret::new))
    }

    /// Adds a key version and makes it primary.
    pub async fn rotate(&self) -> Result<KeyInfo> {
        Ok(self.core.rotate().await?.into())
    }

    /// Makes an active key version primary again.
    pub async fn promote(&self, version: u32) -> Result<()> {
        Ok(self.core.promote(version).await?)
    }

    /// Retires every key version below `min`.
    pub async fn set_min_decryption_version(&self, min: u32) -> Result<()> {
        Ok(self.core.set_min_decryption_version(min).await?)
    }

    /// Erases a retired key version (refused while records need it).
    pub async fn destroy_key(&self, version: u32) -> Result<()> {
        Ok(self.core.destroy_key(version).await?)
    }

    /// Re-seals stored records under the primary key.
    pub async fn rewrap(&self, batch_size: u32) -> Result<RewrapReport> {
        Ok(self.core.rewrap(batch_size as usize).await?.into())
    }

    /// Re-reads the keyring from storage.
    pub async fn reload(&self) -> Result<()> {
        Ok(self.core.reload().await?)
    }

    /// Facts about every key version.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        Ok(self.core.keys()?.into_iter().map(KeyInfo::from).collect())
    }
}

/// Seals `plaintext` with a caller's 32-byte `key`; the nonce is random.
#[uniffi::export]
pub fn seal_with_key(
    key: Vec<u8>,
    algorithm: String,
    key_version: u32,
    path: String,
    version: u64,
    plaintext: Vec<u8>,
) -> Result<Vec<u8>> {
    let key = DataKey::new(self::algorithm(&algorithm)?, SecretBytes::new(key))?;
    let plaintext = SecretBytes::new(plaintext);
    let sealed = key.seal(
        key_version,
        plaintext.expose_secret(),
        &SealContext::new(&path, version),
    )?;
    Ok(sealed.into_bytes())
}

/// Opens `sealed` with a caller's 32-byte `key`.
#[uniffi::export]
pub fn open_sealed(
    key: Vec<u8>,
    algorithm: String,
    path: String,
    version: u64,
    sealed: Vec<u8>,
) -> Result<Arc<Secret>> {
    let key = DataKey::new(self::algorithm(&algorithm)?, SecretBytes::new(key))?;
    let sealed = SealedValue::from_vec(sealed)?;
    Ok(Secret::new(
        key.open(&sealed, &SealContext::new(&path, version))?,
    ))
}

/// The key version named in a sealed value's header.
#[uniffi::export]
pub fn sealed_key_version(sealed: Vec<u8>) -> Result<u32> {
    Ok(strongroom::seal::header_key_version(&sealed)?)
}
