//! The protector: a handle on one token key that wraps Strongroom's root
//! key, rotates the key and retires old versions.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use strongroom::protector::KeyProtector;
use strongroom::{ProtectorErrorKind, Result, SecretBytes};

use crate::blob::parse_blob;
use crate::config::{Pkcs11Config, TokenKeyInfo, WrapMechanism};
use crate::error::{err, map};
use crate::keys::{Inner, choose_mechanism, token_objects_lock};
use crate::token::Token;
use crate::{error, token};

/// A [`KeyProtector`] backed by an AES-256 key inside a PKCS#11 token.
///
/// Cheap to clone; clones share the current key version.
#[derive(Clone)]
pub struct Pkcs11Protector {
    inner: Arc<Inner>,
}

impl fmt::Debug for Pkcs11Protector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (version, mechanism) = self.current();
        f.debug_struct("Pkcs11Protector")
            .field("token", &self.inner.token.label)
            .field("key_label", &self.inner.key_label)
            .field("key_version", &version)
            .field("mechanism", &mechanism)
            .finish_non_exhaustive()
    }
}

/// Runs blocking PKCS#11 work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        err(
            ProtectorErrorKind::Device,
            format!("the PKCS#11 worker task failed: {e}"),
        )
    })?
}

impl Pkcs11Protector {
    fn connect(config: &Pkcs11Config) -> Result<Arc<Token>> {
        config.check()?;
        let token = Token::open(&config.module_path, &config.token_label)?;
        token.login(&config.pin)?;
        Ok(token)
    }

    /// Generates version 1 of the token key (AES-256, on the token,
    /// sensitive, not extractable) and returns a protector using it. Fails
    /// with a configuration error if the key label is already on the token
    /// (use [`Pkcs11Protector::open`] for that).
    pub async fn init_key(config: Pkcs11Config) -> Result<Self> {
        blocking(move || {
            let token = Self::connect(&config)?;
            let mechanism = choose_mechanism(&token, config.mechanism)?;
            let inner = Inner {
                token,
                pin: config.pin,
                key_label: config.key_label,
                preferred: config.mechanism,
                current: Mutex::new((1, mechanism)),
            };
            let existing = inner.list_versions()?;
            if let Some(v) = existing.last() {
                return Err(err(
                    ProtectorErrorKind::Config,
                    format!(
                        "token {:?} already holds key {:?} (version {v}); use Pkcs11Protector::open",
                        inner.token.label, inner.key_label
                    ),
                ));
            }
            inner.generate(1, mechanism)?;
            Ok(Self {
                inner: Arc::new(inner),
            })
        })
        .await
    }

    /// Opens the newest version of an existing token key.
    pub async fn open(config: Pkcs11Config) -> Result<Self> {
        blocking(move || {
            let token = Self::connect(&config)?;
            let inner = Inner {
                token,
                pin: config.pin,
                key_label: config.key_label,
                preferred: config.mechanism,
                current: Mutex::new((0, WrapMechanism::AesGcm)),
            };
            let latest = inner.list_versions()?.last().copied().ok_or_else(|| {
                err(
                    ProtectorErrorKind::KeyNotFound,
                    format!(
                        "token {:?} holds no key labelled {:?}; run Pkcs11Protector::init_key first",
                        inner.token.label, inner.key_label
                    ),
                )
            })?;
            let info = inner.key_info(latest)?;
            *token::lock(&inner.current) = (latest, info.mechanism);
            Ok(Self {
                inner: Arc::new(inner),
            })
        })
        .await
    }

    fn current(&self) -> (u32, WrapMechanism) {
        *token::lock(&self.inner.current)
    }

    /// The key version new wraps use.
    pub fn current_version(&self) -> u32 {
        self.current().0
    }

    /// The mechanism new wraps use.
    pub fn mechanism(&self) -> WrapMechanism {
        self.current().1
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.inner.token.label
    }

    /// The token key's label.
    pub fn key_label(&self) -> &str {
        &self.inner.key_label
    }

    /// Every mechanism the token offers, by name (`CKM_...`).
    pub fn token_mechanisms(&self) -> Vec<String> {
        self.inner
            .token
            .mechanisms
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The versions of the token key on the token, ascending.
    pub async fn key_versions(&self) -> Result<Vec<u32>> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.list_versions()).await
    }

    /// The token's view of a key version's attributes.
    pub async fn key_info(&self, version: u32) -> Result<TokenKeyInfo> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.key_info(version)).await
    }

    /// Generates the next token key version and makes it current. Rewrap the
    /// stored root key with [`Pkcs11Protector::rewrap`], then remove the old
    /// version with [`Pkcs11Protector::destroy_key_version`].
    pub async fn rotate(&self) -> Result<u32> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mechanism = choose_mechanism(&inner.token, inner.preferred)?;
            let next = inner
                .list_versions()?
                .last()
                .copied()
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| err(ProtectorErrorKind::Config, "key versions exhausted"))?;
            inner.generate(next, mechanism)?;
            *token::lock(&inner.current) = (next, mechanism);
            Ok(next)
        })
        .await
    }

    /// Unwraps a blob made under any version still on the token and wraps
    /// the root key again under the current version.
    pub async fn rewrap(&self, wrapped: &[u8]) -> Result<Vec<u8>> {
        let inner = Arc::clone(&self.inner);
        let wrapped = wrapped.to_vec();
        blocking(move || {
            let root = inner.unwrap(&wrapped)?;
            inner.wrap(&root)
        })
        .await
    }

    /// The key version a wrapped blob needs, if the blob is well formed.
    pub fn wrapped_key_version(wrapped: &[u8]) -> Option<u32> {
        parse_blob(wrapped).map(|b| b.version)
    }

    /// Deletes an old token key version, after checking that none of
    /// `stores` still has its root key wrapped under it (run
    /// [`KeyAdmin::rotate_root_key`](strongroom::authorized::KeyAdmin::rotate_root_key)
    /// with this protector after [`Pkcs11Protector::rotate`] first). A store
    /// whose root key another protector holds is not affected and passes.
    /// Refused with a `Config` error naming the version otherwise.
    pub async fn destroy_unused_key_version(
        &self,
        version: u32,
        stores: &[strongroom::storage::DynStorage],
    ) -> Result<()> {
        for storage in stores {
            let record = strongroom::WrappedRootKey::read(storage).await?;
            if record.protector_kind == self.kind()
                && Self::wrapped_key_version(&record.wrapped) == Some(version)
            {
                return Err(err(
                    ProtectorErrorKind::Config,
                    format!(
                        "token key version {version} still wraps a store's root key (storage {}); run rotate_root_key with this protector first",
                        storage.backend()
                    ),
                ));
            }
        }
        self.destroy_key_version(version).await
    }

    /// Deletes an old token key version. Blobs wrapped under it can no longer
    /// be unwrapped. The current version cannot be deleted. Prefer
    /// [`Pkcs11Protector::destroy_unused_key_version`], which checks the
    /// stores first.
    pub async fn destroy_key_version(&self, version: u32) -> Result<()> {
        if version == self.current_version() {
            return Err(err(
                ProtectorErrorKind::Config,
                format!("version {version} is the current token key; rotate first"),
            ));
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let found = inner.token.with_session(
                &inner.pin,
                |s| match inner.find_key(s, version)? {
                    Some(h) => {
                        let _writing = token_objects_lock();
                        s.destroy_object(h).map(|()| true)
                    }
                    None => Ok(false),
                },
                |e| map(e, "destroying a token key version"),
            )?;
            if !found {
                return Err(inner.key_not_found(version));
            }
            tracing::info!(
                token = %inner.token.label,
                key_label = %inner.key_label,
                version,
                "destroyed a token key version"
            );
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl KeyProtector for Pkcs11Protector {
    fn kind(&self) -> &'static str {
        error::PROTECTOR
    }

    async fn wrap(&self, root_key: &SecretBytes) -> Result<Vec<u8>> {
        let inner = Arc::clone(&self.inner);
        let root = root_key.clone();
        blocking(move || inner.wrap(&root)).await
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
        let inner = Arc::clone(&self.inner);
        let wrapped = wrapped.to_vec();
        blocking(move || inner.unwrap(&wrapped)).await
    }
}
