//! Shamir shares (`srs1-...` texts) and a root key that exists only as
//! shares: conversion over [`strongroom_host::shamir`].

use std::sync::Arc;

use napi::bindgen_prelude::{BufferSlice, Either, Env};
use napi_derive::napi;
use strongroom::SecretBytes;
use strongroom::shamir::ShamirProtector;

use crate::{invalid, plain_bytes, secret_buffer, to_js};

/// A share count or threshold from JavaScript (the core checks the rest).
fn count(what: &str, v: u32) -> napi::Result<u8> {
    u8::try_from(v).map_err(|_| invalid(format!("{what} must be at most 255, got {v}")))
}

/// Splits `secret` into `shares` share texts, any `threshold` of which
/// rebuild it. Each text is secret: hand it to its holder.
#[napi]
pub fn shamir_split(
    secret: Either<BufferSlice<'_>, String>,
    threshold: u32,
    shares: u32,
) -> napi::Result<Vec<String>> {
    let (threshold, shares) = (count("threshold", threshold)?, count("shares", shares)?);
    let secret = SecretBytes::copy_from(plain_bytes(&secret));
    Ok(strongroom_host::shamir::split(&secret, threshold, shares)
        .map_err(to_js)?
        .iter()
        .map(|t| t.expose_secret().to_owned())
        .collect())
}

/// Rebuilds a secret from at least `threshold` share texts into a new
/// Buffer (the Rust copy is wiped).
#[napi]
pub fn shamir_combine(env: &Env, shares: Vec<String>) -> napi::Result<BufferSlice<'_>> {
    secret_buffer(
        env,
        strongroom_host::shamir::combine(&shares).map_err(to_js)?,
    )
}

/// A root-key protector whose key-encryption key exists only as shares.
#[napi]
pub struct NativeShamirProtector {
    pub(crate) inner: Arc<ShamirProtector>,
}

/// A new Shamir protector and the share texts to hand out.
#[napi]
pub struct NativeShamirSetup {
    protector: Option<NativeShamirProtector>,
    shares: Vec<String>,
}

#[napi]
impl NativeShamirSetup {
    /// The protector (taken once).
    #[napi]
    pub fn take_protector(&mut self) -> Option<NativeShamirProtector> {
        self.protector.take()
    }

    /// The share texts (taken once: the setup forgets them).
    #[napi]
    pub fn take_shares(&mut self) -> Vec<String> {
        std::mem::take(&mut self.shares)
    }
}

/// A new random key-encryption key split into `shares` shares, any
/// `threshold` of which rebuild it.
#[napi]
pub fn generate_shamir_protector(threshold: u32, shares: u32) -> napi::Result<NativeShamirSetup> {
    let (threshold, shares) = (count("threshold", threshold)?, count("shares", shares)?);
    let (inner, texts) =
        strongroom_host::shamir::generate_protector(threshold, shares).map_err(to_js)?;
    Ok(NativeShamirSetup {
        protector: Some(NativeShamirProtector {
            inner: Arc::new(inner),
        }),
        shares: texts.iter().map(|t| t.expose_secret().to_owned()).collect(),
    })
}

#[napi]
impl NativeShamirProtector {
    /// The protector rebuilt from at least `threshold` share texts.
    #[napi(factory)]
    pub fn from_shares(shares: Vec<String>) -> napi::Result<Self> {
        Ok(Self {
            inner: Arc::new(strongroom_host::shamir::protector(&shares).map_err(to_js)?),
        })
    }

    /// How many shares rebuild the key.
    #[napi(getter)]
    pub fn threshold(&self) -> u32 {
        u32::from(self.inner.threshold())
    }

    /// The split id (hex) of the shares (not secret).
    #[napi(getter)]
    pub fn split_id(&self) -> String {
        self.inner.split_id_hex()
    }
}
