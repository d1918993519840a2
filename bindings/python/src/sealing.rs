//! Low-level sealing with a caller-supplied key (format vectors, interop).

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use strongroom::seal::{Algorithm, DataKey, SealContext, SealedValue};

use crate::errors::to_py;
use crate::secret::bytes_out;
use crate::{Secret, compute, secret_input};

pub(crate) fn algorithm(name: &str) -> PyResult<Algorithm> {
    Algorithm::from_name(name).ok_or_else(|| {
        to_py(strongroom::Error::InvalidArgument(format!(
            "unknown algorithm {name:?} (use \"aes-256-gcm\" or \"chacha20-poly1305\")"
        )))
    })
}

/// Seals `plaintext` with a 32-byte `key` of `algorithm`, writing
/// `key_version` into the header; the nonce is random. Returns the sealed bytes.
#[pyfunction]
pub(crate) fn seal_with_key<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    algorithm: &str,
    key_version: u32,
    path: &str,
    version: u64,
    plaintext: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = DataKey::new(self::algorithm(algorithm)?, secret_input(key)?).map_err(to_py)?;
    let plaintext = secret_input(plaintext)?;
    let sealed = compute(py, plaintext.len(), || {
        key.seal(
            key_version,
            plaintext.expose_secret(),
            &SealContext::new(path, version),
        )
    })?;
    Ok(bytes_out(py, sealed.into_bytes()))
}

/// Opens `sealed` with a 32-byte `key` of `algorithm`, bound to `path` and
/// `version`. Returns a `Secret`.
#[pyfunction]
pub(crate) fn open_sealed<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    algorithm: &str,
    path: &str,
    version: u64,
    sealed: &[u8],
) -> PyResult<Bound<'py, Secret>> {
    let key = DataKey::new(self::algorithm(algorithm)?, secret_input(key)?).map_err(to_py)?;
    let opened = compute(py, sealed.len(), || {
        let sealed = SealedValue::parse(sealed)?;
        key.open(&sealed, &SealContext::new(path, version))
    })?;
    Bound::new(py, Secret::new(py, opened))
}

/// The key version named in a sealed value's header.
#[pyfunction]
pub(crate) fn sealed_key_version(sealed: &[u8]) -> PyResult<u32> {
    strongroom::seal::header_key_version(sealed).map_err(to_py)
}
