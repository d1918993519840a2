//! Shamir sharing: a secret split into `srs1-...` share texts (any
//! `threshold` of them rebuild it), and the Shamir root-key protector.
//! The text form and every check come from [`strongroom_host::shamir`].

use std::sync::Arc;

use pyo3::prelude::*;
use strongroom::SecretString;
use strongroom::shamir::ShamirProtector as CoreShamir;
use strongroom_host::shamir as host;
use zeroize::Zeroizing;

use crate::errors::to_py;
use crate::{SecretOut, secret_input};

/// A share count or threshold as the core takes it (1 to 255).
fn count(what: &str, n: i64) -> PyResult<u8> {
    u8::try_from(n).map_err(|_| {
        crate::lease::invalid(format!(
            "{what} must be between 1 and 255 (Shamir shares are numbered by one byte), got {n}"
        ))
    })
}

fn texts_out(texts: Vec<SecretString>) -> Vec<String> {
    texts.iter().map(|t| t.expose_secret().to_owned()).collect()
}

/// The share texts given by Python, wiped when dropped.
fn texts_in(shares: Vec<String>) -> Vec<Zeroizing<String>> {
    shares.into_iter().map(Zeroizing::new).collect()
}

/// Splits `secret` (bytes-like or a `Secret`) into `shares` share texts
/// (`srs1-...`), any `threshold` of which rebuild it with
/// [`shamir_combine`]. Fewer than `threshold` reveal nothing about it.
#[pyfunction]
pub(crate) fn shamir_split(
    secret: &Bound<'_, PyAny>,
    threshold: i64,
    shares: i64,
) -> PyResult<Vec<String>> {
    let secret = secret_input(secret)?;
    let (k, n) = (count("threshold", threshold)?, count("shares", shares)?);
    host::split(&secret, k, n).map(texts_out).map_err(to_py)
}

/// Rebuilds a secret from share texts; returns a `Secret`. Too few shares,
/// a mistyped or altered share, a share given twice or shares of different
/// splits raise a `ShamirError` subclass naming the problem.
#[pyfunction]
pub(crate) fn shamir_combine(shares: Vec<String>) -> PyResult<SecretOut> {
    let texts = texts_in(shares);
    let refs: Vec<&str> = texts.iter().map(|t| t.as_str()).collect();
    host::combine(&refs).map(SecretOut).map_err(to_py)
}

/// A root-key protector whose key-encryption key is split into Shamir
/// shares: `generate(threshold, shares)` makes one (for `init` or
/// `rotate_root_key`) and returns the share texts to hand to their
/// holders; `from_shares(texts)` rebuilds it from `threshold` of them (for
/// `unseal`).
#[pyclass(module = "strongroom", frozen)]
pub struct ShamirProtector {
    pub(crate) inner: Arc<CoreShamir>,
}

#[pymethods]
impl ShamirProtector {
    /// A new random key-encryption key split into `shares` share texts,
    /// `threshold` of them needed; returns `(protector, share_texts)`.
    #[staticmethod]
    fn generate(threshold: i64, shares: i64) -> PyResult<(Self, Vec<String>)> {
        let (k, n) = (count("threshold", threshold)?, count("shares", shares)?);
        let (p, texts) = host::generate_protector(k, n).map_err(to_py)?;
        Ok((Self { inner: Arc::new(p) }, texts_out(texts)))
    }

    /// The protector rebuilt from share texts (at least its threshold).
    #[staticmethod]
    fn from_shares(shares: Vec<String>) -> PyResult<Self> {
        let texts = texts_in(shares);
        let refs: Vec<&str> = texts.iter().map(|t| t.as_str()).collect();
        let p = host::protector(&refs).map_err(to_py)?;
        Ok(Self { inner: Arc::new(p) })
    }

    /// The number of shares needed.
    #[getter]
    fn threshold(&self) -> u8 {
        self.inner.threshold()
    }

    /// The split id (hex) shared by the shares of one split.
    #[getter]
    fn split_id(&self) -> String {
        self.inner.split_id_hex()
    }

    fn __repr__(&self) -> String {
        format!(
            "ShamirProtector(split_id={:?}, threshold={})",
            self.inner.split_id_hex(),
            self.inner.threshold()
        )
    }
}

/// Adds the Shamir functions and class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ShamirProtector>()?;
    m.add_function(wrap_pyfunction!(shamir_split, m)?)?;
    m.add_function(wrap_pyfunction!(shamir_combine, m)?)?;
    Ok(())
}
