//! Shamir shares (`srs1-...` texts) and a root key that exists only as
//! shares: conversion over `strongroom_host::shamir`.

use std::fmt;
use std::sync::Arc;

use strongroom::SecretBytes;

use crate::errors::Result;
use crate::{Secret, Storage, Strongroom};

/// Splits `secret` into `shares` share texts, any `threshold` of which
/// rebuild it (`shamirCombine`). Each text is secret: hand it to its holder.
#[uniffi::export]
pub fn shamir_split(secret: Vec<u8>, threshold: u8, shares: u8) -> Result<Vec<String>> {
    let secret = SecretBytes::new(secret);
    Ok(strongroom_host::shamir::split(&secret, threshold, shares)?
        .iter()
        .map(|t| t.expose_secret().to_owned())
        .collect())
}

/// Rebuilds a secret from at least `threshold` share texts. A mistyped
/// share, shares of different splits or too few fail with `Shamir`.
#[uniffi::export]
pub fn shamir_combine(shares: Vec<String>) -> Result<Arc<Secret>> {
    Ok(Secret::new(strongroom_host::shamir::combine(&shares)?))
}

/// A root-key protector whose key-encryption key exists only as shares.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct ShamirProtector {
    inner: strongroom::shamir::ShamirProtector,
}

impl fmt::Debug for ShamirProtector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A new random key-encryption key split into `shares` shares, any
/// `threshold` of which rebuild it: the protector and the share texts.
#[uniffi::export]
pub fn generate_shamir_protector(threshold: u8, shares: u8) -> Result<ShamirSetup> {
    let (inner, texts) = strongroom_host::shamir::generate_protector(threshold, shares)?;
    Ok(ShamirSetup {
        protector: Arc::new(ShamirProtector { inner }),
        shares: texts.iter().map(|t| t.expose_secret().to_owned()).collect(),
    })
}

/// A new Shamir protector and the share texts to hand out.
#[derive(uniffi::Record)]
pub struct ShamirSetup {
    /// The protector, ready to create a store or take over its root key.
    pub protector: Arc<ShamirProtector>,
    /// The share texts (secret), one per holder.
    pub shares: Vec<String>,
}

#[uniffi::export]
impl ShamirProtector {
    /// The protector rebuilt from at least `threshold` share texts.
    #[uniffi::constructor]
    pub fn from_shares(shares: Vec<String>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            inner: strongroom_host::shamir::protector(&shares)?,
        }))
    }

    /// How many shares rebuild the key.
    pub fn threshold(&self) -> u8 {
        self.inner.threshold()
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Strongroom {
    /// Creates a new store in empty `storage`, its root key wrapped by the
    /// key the Shamir shares rebuild.
    #[uniffi::constructor]
    pub async fn create_with_shamir(
        storage: Arc<Storage>,
        protector: Arc<ShamirProtector>,
    ) -> Result<Arc<Self>> {
        Self::create_with(&storage, &protector.inner).await
    }

    /// Opens a store whose root key the Shamir shares' key wraps.
    #[uniffi::constructor]
    pub async fn unseal_with_shamir(
        storage: Arc<Storage>,
        protector: Arc<ShamirProtector>,
    ) -> Result<Arc<Self>> {
        Self::unseal_with(&storage, &protector.inner).await
    }

    /// Replaces the root key with a fresh one wrapped by the Shamir
    /// shares' key (as `rotateRootKey` does for a software key): from now on
    /// the store unseals with those shares.
    pub async fn rotate_root_key_to_shamir(&self, protector: Arc<ShamirProtector>) -> Result<()> {
        Ok(self.core.rotate_root_key(&protector.inner).await?)
    }
}
