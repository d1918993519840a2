//! Signing keys that never leave (`strongroom::signing`) as a principal:
//! `Handle.signing()` gives a `SigningHandle` whose calls are checked
//! against the principal's policies and audited. What comes back is key
//! information, public keys and signatures; never key material.

use std::sync::Arc;

use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use strongroom::signing::{
    EthSignature as CoreEthSignature, KeyInfo as CoreKeyInfo, KeyOptions, KeyType,
    PublicKey as CorePublicKey, RateLimit as CoreRateLimit, Signature as CoreSignature,
    SigningHandle as CoreSigningHandle,
};

use crate::lifetime::Life;
use crate::{block, secret_input, to_py};

/// Runs `fut` as the async API (an awaitable) or the blocking API (the
/// result, GIL released), whichever the calling class is.
pub(crate) fn run<T>(
    py: Python<'_>,
    blocking: bool,
    life: &Life,
    fut: impl Future<Output = strongroom::Result<T>> + Send + 'static,
) -> PyResult<Py<PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    if blocking {
        life.check()?;
        block(py, true, fut)?.into_py_any(py)
    } else {
        crate::lifetime::awaitable(py, Some(life), fut).map(Bound::unbind)
    }
}

fn invalid(msg: impl Into<String>) -> PyErr {
    to_py(strongroom::Error::InvalidArgument(msg.into()))
}

/// A per-key token bucket: `burst` signatures at once, refilled at
/// `per_second` (each at least 1).
#[pyclass(module = "strongroom", frozen, get_all, eq)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Signatures per second, sustained.
    per_second: u32,
    /// Signatures allowed at once.
    burst: u32,
}

impl RateLimit {
    fn core(self) -> PyResult<CoreRateLimit> {
        CoreRateLimit::new(self.per_second, self.burst).map_err(to_py)
    }
}

#[pymethods]
impl RateLimit {
    /// A limit of `per_second` sustained with bursts of `burst`; raises
    /// `SigningInvalidRateLimit` if either is 0.
    #[new]
    fn py_new(per_second: u32, burst: u32) -> PyResult<Self> {
        let limit = Self { per_second, burst };
        limit.core()?;
        Ok(limit)
    }

    fn __repr__(&self) -> String {
        format!(
            "RateLimit(per_second={}, burst={})",
            self.per_second, self.burst
        )
    }
}

/// What is known about a signing key (no key material). Times are
/// milliseconds since the Unix epoch.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct SigningKeyInfo {
    /// The key's name.
    name: String,
    /// "ed25519", "ecdsa_p256" or "secp256k1".
    key_type: String,
    /// The newest version, used to sign.
    latest_version: u32,
    /// Signatures of older versions no longer verify.
    min_verify_version: u32,
    /// Every version as `(version, created_ms)`, oldest first.
    versions: Vec<(u32, u64)>,
    /// The rate limit, if any.
    rate_limit: Option<RateLimit>,
}

impl From<CoreKeyInfo> for SigningKeyInfo {
    fn from(k: CoreKeyInfo) -> Self {
        Self {
            name: k.name,
            key_type: k.key_type.as_str().to_owned(),
            latest_version: k.latest_version,
            min_verify_version: k.min_verify_version,
            versions: k
                .versions
                .iter()
                .map(|v| (v.version, v.created.as_millis()))
                .collect(),
            rate_limit: k.rate_limit.map(|r| RateLimit {
                per_second: r.per_second,
                burst: r.burst,
            }),
        }
    }
}

#[pymethods]
impl SigningKeyInfo {
    fn __repr__(&self) -> String {
        format!(
            "SigningKeyInfo(name={:?}, key_type={:?}, latest_version={}, min_verify_version={})",
            self.name, self.key_type, self.latest_version, self.min_verify_version
        )
    }
}

/// A signature and the key version that made it. Its text form
/// (`str(sig)`, `to_text()`) is `strongroom:v<version>:<base64>`.
#[pyclass(module = "strongroom", frozen, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    inner: CoreSignature,
}

#[pymethods]
impl Signature {
    /// A signature of key version `version` with bytes `data`.
    #[new]
    fn py_new(version: u32, data: &[u8]) -> Self {
        Self {
            inner: CoreSignature::new(version, data.to_vec()),
        }
    }

    /// Parses the text form `strongroom:v<version>:<base64>`; raises
    /// `SigningBadSignatureEncoding` for anything else.
    #[staticmethod]
    fn from_text(text: &str) -> PyResult<Self> {
        text.parse().map(|inner| Self { inner }).map_err(to_py)
    }

    /// The key version that made it.
    #[getter]
    fn version(&self) -> u32 {
        self.inner.version()
    }

    /// The signature bytes (Ed25519: 64; ECDSA P-256: ASN.1 DER;
    /// secp256k1: 65, `r || s || recovery id`).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    /// The text form `strongroom:v<version>:<base64>`.
    fn to_text(&self) -> String {
        self.inner.to_text()
    }

    fn __str__(&self) -> String {
        self.inner.to_text()
    }

    fn __repr__(&self) -> String {
        format!("Signature({:?})", self.inner.to_text())
    }
}

/// A signature given as a `Signature` or its text form.
fn signature_of(obj: &Bound<'_, PyAny>) -> PyResult<CoreSignature> {
    if let Ok(s) = obj.cast::<Signature>() {
        return Ok(s.get().inner.clone());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_str()?.parse().map_err(to_py);
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "expected a Signature or its text form (str)",
    ))
}

/// A public key of one version of a signing key: the only key material
/// that leaves.
#[pyclass(module = "strongroom", frozen)]
pub struct PublicKey {
    inner: CorePublicKey,
}

#[pymethods]
impl PublicKey {
    /// "ed25519", "ecdsa_p256" or "secp256k1".
    #[getter]
    fn key_type(&self) -> &'static str {
        self.inner.key_type().as_str()
    }

    /// The key version it belongs to.
    #[getter]
    fn version(&self) -> u32 {
        self.inner.version()
    }

    /// The raw key: 32 bytes for Ed25519, the 65-byte uncompressed point
    /// for P-256 and secp256k1.
    #[getter]
    fn raw<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.raw())
    }

    /// The EIP-55 Ethereum address of a secp256k1 key; `None` otherwise.
    #[getter]
    fn eth_address(&self) -> Option<String> {
        self.inner.eth_address()
    }

    /// The X.509 SubjectPublicKeyInfo, DER.
    fn spki_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.spki_der())
    }

    /// The SubjectPublicKeyInfo as PEM (`-----BEGIN PUBLIC KEY-----`).
    fn spki_pem(&self) -> String {
        self.inner.spki_pem()
    }

    fn __repr__(&self) -> String {
        format!(
            "PublicKey(key_type={:?}, version={})",
            self.key_type(),
            self.version()
        )
    }
}

/// An Ethereum signature (`r`, `s`, `v`) made by a secp256k1 key.
#[pyclass(module = "strongroom", frozen)]
pub struct EthSignature {
    inner: CoreEthSignature,
}

#[pymethods]
impl EthSignature {
    /// The key version that made it.
    #[getter]
    fn version(&self) -> u32 {
        self.inner.version()
    }

    /// `r`, 32 bytes big-endian.
    #[getter]
    fn r<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.r())
    }

    /// `s`, 32 bytes big-endian (low `s`).
    #[getter]
    fn s<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.s())
    }

    /// 27 or 28 for personal messages; `chain_id * 2 + 35` plus the
    /// recovery id for EIP-155 transactions.
    #[getter]
    fn v(&self) -> u64 {
        self.inner.v()
    }

    /// The recovery id (0 or 1).
    #[getter]
    fn recovery_id(&self) -> u8 {
        self.inner.recovery_id()
    }

    /// `r || s || v`, `v` big-endian in as few bytes as it takes (65 bytes
    /// whenever `v` < 256).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// `to_bytes()` as `0x`-prefixed lower-case hex.
    fn to_hex(&self) -> String {
        self.inner.to_hex()
    }

    fn __repr__(&self) -> String {
        format!(
            "EthSignature(version={}, rsv={:?})",
            self.inner.version(),
            self.inner.to_hex()
        )
    }
}

/// A principal's signing keys (asyncio API): every call is checked
/// against its policies on the key's name and audited. From
/// `handle.signing()`.
#[pyclass(module = "strongroom", frozen)]
pub struct SigningHandle {
    inner: CoreSigningHandle,
    life: Life,
}

/// The blocking form of [`SigningHandle`] (`strongroom.blocking.SigningHandle`).
#[pyclass(module = "strongroom.blocking", name = "SigningHandle", frozen)]
pub struct BlockingSigningHandle {
    inner: CoreSigningHandle,
    life: Life,
}

impl SigningHandle {
    const BLOCKING: bool = false;
}

impl BlockingSigningHandle {
    const BLOCKING: bool = true;
}

/// `handle.signing()` for the async and blocking handles.
pub(crate) fn signing_handle(
    handle: &strongroom::Handle,
    keys: &Arc<strongroom::signing::SigningKeys>,
    life: &Life,
) -> (CoreSigningHandle, Life) {
    (handle.signing(keys), life.clone())
}

fn bytes_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    Ok(secret_input(obj)?.expose_secret().to_vec())
}

/// Both classes have the same methods; only how results come back
/// differs (`run`).
macro_rules! signing_methods {
    ($t:ident) => {
        #[pymethods]
        impl $t {
            /// The principal's name.
            #[getter]
            fn principal(&self) -> String {
                self.inner.handle().principal().name().to_owned()
            }

            /// Creates key `name` of `key_type` ("ed25519", "ecdsa_p256"
            /// or "secp256k1") inside the store, optionally rate-limited
            /// (capability `create`); gives its `SigningKeyInfo`.
            #[pyo3(signature = (name, key_type, rate_limit = None))]
            fn create_key(
                &self,
                py: Python<'_>,
                name: String,
                key_type: &str,
                rate_limit: Option<PyRef<'_, RateLimit>>,
            ) -> PyResult<Py<PyAny>> {
                let key_type: KeyType = key_type.parse().map_err(to_py)?;
                let mut options = KeyOptions::default();
                if let Some(r) = rate_limit {
                    options = options.with_rate_limit(r.core()?);
                }
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.create_key(&name, key_type, options)
                        .await
                        .map(SigningKeyInfo::from)
                })
            }

            /// Adds a version to key `name`, which signs from now on
            /// (capability `rotate`).
            fn rotate_key(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.rotate_key(&name).await.map(SigningKeyInfo::from)
                })
            }

            /// Raises key `name`'s minimum verify version: signatures of
            /// older versions then raise `SigningVersionRetired`
            /// (capability `update`).
            fn set_min_verify_version(
                &self,
                py: Python<'_>,
                name: String,
                version: u32,
            ) -> PyResult<Py<PyAny>> {
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.set_min_verify_version(&name, version)
                        .await
                        .map(SigningKeyInfo::from)
                })
            }

            /// Sets (or with `None` removes) key `name`'s rate limit
            /// (capability `update`).
            fn set_rate_limit(
                &self,
                py: Python<'_>,
                name: String,
                rate_limit: Option<PyRef<'_, RateLimit>>,
            ) -> PyResult<Py<PyAny>> {
                let limit = rate_limit.map(|r| r.core()).transpose()?;
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.set_rate_limit(&name, limit)
                        .await
                        .map(SigningKeyInfo::from)
                })
            }

            /// Key `name`'s `SigningKeyInfo` (capability `read`).
            fn key_info(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.key_info(&name).await.map(SigningKeyInfo::from)
                })
            }

            /// The `PublicKey` of key `name` (its newest version, or
            /// `version`; capability `read`).
            #[pyo3(signature = (name, version = None))]
            fn public_key(
                &self,
                py: Python<'_>,
                name: String,
                version: Option<u32>,
            ) -> PyResult<Py<PyAny>> {
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.public_key(&name, version)
                        .await
                        .map(|inner| PublicKey { inner })
                })
            }

            /// The EIP-55 Ethereum address of secp256k1 key `name`
            /// (capability `read`).
            #[pyo3(signature = (name, version = None))]
            fn eth_address(
                &self,
                py: Python<'_>,
                name: String,
                version: Option<u32>,
            ) -> PyResult<Py<PyAny>> {
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.eth_address(&name, version).await
                })
            }

            /// Signs `message` (bytes-like) with key `name`'s newest
            /// version (capability `sign`); gives a `Signature`.
            fn sign(
                &self,
                py: Python<'_>,
                name: String,
                message: &Bound<'_, PyAny>,
            ) -> PyResult<Py<PyAny>> {
                let msg = bytes_of(message)?;
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.sign(&name, &msg).await.map(|inner| Signature { inner })
                })
            }

            /// Whether `signature` (a `Signature` or its text form) is key
            /// `name`'s over `message` (capability `read`). A retired
            /// version raises `SigningVersionRetired`.
            fn verify(
                &self,
                py: Python<'_>,
                name: String,
                message: &Bound<'_, PyAny>,
                signature: &Bound<'_, PyAny>,
            ) -> PyResult<Py<PyAny>> {
                let msg = bytes_of(message)?;
                let sig = signature_of(signature)?;
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.verify(&name, &msg, &sig).await
                })
            }

            /// Signs `message` as an EIP-191 personal message with
            /// secp256k1 key `name` (capability `sign`); gives an
            /// `EthSignature` (`v` 27 or 28).
            fn eth_sign_personal_message(
                &self,
                py: Python<'_>,
                name: String,
                message: &Bound<'_, PyAny>,
            ) -> PyResult<Py<PyAny>> {
                let msg = bytes_of(message)?;
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.eth_sign_personal_message(&name, &msg)
                        .await
                        .map(|inner| EthSignature { inner })
                })
            }

            /// Signs a 32-byte transaction hash for EIP-155 chain
            /// `chain_id` with secp256k1 key `name` (capability `sign`).
            fn eth_sign_transaction_hash(
                &self,
                py: Python<'_>,
                name: String,
                hash: &Bound<'_, PyAny>,
                chain_id: u64,
            ) -> PyResult<Py<PyAny>> {
                let hash: [u8; 32] = bytes_of(hash)?.try_into().map_err(|v: Vec<u8>| {
                    invalid(format!("a transaction hash is 32 bytes, not {}", v.len()))
                })?;
                let h = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    h.eth_sign_transaction_hash(&name, &hash, chain_id)
                        .await
                        .map(|inner| EthSignature { inner })
                })
            }

            fn __repr__(&self) -> String {
                format!(
                    "SigningHandle({:?})",
                    self.inner.handle().principal().name()
                )
            }
        }
    };
}

signing_methods!(SigningHandle);
signing_methods!(BlockingSigningHandle);

impl SigningHandle {
    pub(crate) fn new(
        handle: &strongroom::Handle,
        keys: &Arc<strongroom::signing::SigningKeys>,
        life: &Life,
    ) -> Self {
        let (inner, life) = signing_handle(handle, keys, life);
        Self { inner, life }
    }
}

impl BlockingSigningHandle {
    pub(crate) fn new(
        handle: &strongroom::Handle,
        keys: &Arc<strongroom::signing::SigningKeys>,
        life: &Life,
    ) -> Self {
        let (inner, life) = signing_handle(handle, keys, life);
        Self { inner, life }
    }
}
