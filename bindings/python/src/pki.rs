//! The internal certificate authority (`strongroom-pki`): `Pki(store,
//! lease_manager, mount)`, every call acting for a principal's `Handle`.
//! Certificates and CRLs come back as DER bytes (with PEM helpers); a
//! leaf's private key comes back once, as PKCS#8 DER bytes, and is never
//! shown by `repr()`.

use std::net::IpAddr;
use std::time::Duration;

use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use strongroom::SecretBytes;
use strongroom_pki::{
    CaCertificate as CoreCa, CaKind, CaSpec, Crl as CoreCrl, IssueRequest,
    IssuedCertificate as CoreIssued, KeyType, Pki as CorePki, PkiError, Role, Serial, Usage,
};

use crate::errors::pki_to_py;
use crate::lease::seconds;
use crate::lifetime::{IntoPyErr, Life};
use strongroom::pem::encode as pem;

impl IntoPyErr for PkiError {
    fn into_py_err(self) -> PyErr {
        pki_to_py(self)
    }
}

fn invalid(msg: impl Into<String>) -> PyErr {
    crate::to_py(strongroom::Error::InvalidArgument(msg.into()))
}

/// Runs `fut` as the async API (an awaitable) or the blocking API (the
/// result, GIL released).
fn run<T>(
    py: Python<'_>,
    blocking: bool,
    life: &Life,
    fut: impl Future<Output = Result<T, PkiError>> + Send + 'static,
) -> PyResult<Py<PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    if blocking {
        life.check()?;
        py.detach(|| crate::runtime().block_on(fut))
            .map_err(pki_to_py)?
            .into_py_any(py)
    } else {
        crate::lifetime::awaitable(py, Some(life), fut).map(Bound::unbind)
    }
}

fn key_type(name: &str) -> PyResult<KeyType> {
    [KeyType::Ed25519, KeyType::EcdsaP256]
        .into_iter()
        .find(|k| k.to_string() == name)
        .ok_or_else(|| {
            invalid(format!(
                "unknown certificate key type {name:?} (use \"ed25519\" or \"ecdsa-p256\")"
            ))
        })
}

fn usage(name: &str) -> PyResult<Usage> {
    [Usage::Server, Usage::Client]
        .into_iter()
        .find(|u| u.to_string() == name)
        .ok_or_else(|| {
            invalid(format!(
                "unknown usage {name:?} (use \"server\" or \"client\")"
            ))
        })
}

fn handle_of(obj: &Bound<'_, PyAny>) -> PyResult<strongroom::Handle> {
    if let Ok(h) = obj.cast::<crate::store::Handle>() {
        return Ok(h.get().inner.clone());
    }
    if let Ok(h) = obj.cast::<crate::store::BlockingHandle>() {
        return Ok(h.get().inner.clone());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "expected a principal's Handle (from as_principal)",
    ))
}

/// A CA's public side: its certificate and the chain above it. Times are
/// milliseconds since the Unix epoch.
#[pyclass(module = "strongroom", frozen)]
pub struct CaCertificate {
    /// The mount.
    #[pyo3(get)]
    mount: String,
    /// "root" or "intermediate".
    #[pyo3(get)]
    kind: &'static str,
    /// "ed25519" or "ecdsa-p256".
    #[pyo3(get)]
    key_type: String,
    /// The subject's common name.
    #[pyo3(get)]
    common_name: String,
    /// Start of validity.
    #[pyo3(get)]
    not_before_ms: u64,
    /// End of validity.
    #[pyo3(get)]
    not_after_ms: u64,
    certificate: Vec<u8>,
    parents: Vec<Vec<u8>>,
}

impl From<CoreCa> for CaCertificate {
    fn from(c: CoreCa) -> Self {
        Self {
            mount: c.mount,
            kind: match c.kind {
                CaKind::Root => "root",
                CaKind::Intermediate => "intermediate",
            },
            key_type: c.key_type.to_string(),
            common_name: c.common_name,
            not_before_ms: c.not_before.as_millis(),
            not_after_ms: c.not_after.as_millis(),
            certificate: c.certificate.as_ref().to_vec(),
            parents: c.parents.iter().map(|p| p.as_ref().to_vec()).collect(),
        }
    }
}

#[pymethods]
impl CaCertificate {
    /// The CA's certificate, DER.
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.certificate)
    }

    /// The certificates above it (DER), ending with the root; empty for a
    /// root.
    #[getter]
    fn parents<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.parents.iter().map(|p| PyBytes::new(py, p)).collect()
    }

    /// The CA's certificate as PEM.
    fn pem(&self) -> String {
        pem("CERTIFICATE", &self.certificate)
    }

    fn __repr__(&self) -> String {
        format!(
            "CaCertificate(mount={:?}, kind={:?}, common_name={:?})",
            self.mount, self.kind, self.common_name
        )
    }
}

/// An issued certificate and its private key. The key exists only here
/// (not stored, logged or audited); `repr()` never shows it. Times are
/// milliseconds since the Unix epoch.
#[pyclass(module = "strongroom", frozen)]
pub struct IssuedCertificate {
    /// The serial, hex.
    #[pyo3(get)]
    serial: String,
    /// The lease standing for it: revoking the lease revokes the
    /// certificate.
    #[pyo3(get)]
    lease_id: String,
    /// "ed25519" or "ecdsa-p256".
    #[pyo3(get)]
    key_type: String,
    /// Start of validity.
    #[pyo3(get)]
    not_before_ms: u64,
    /// End of validity (and of the lease).
    #[pyo3(get)]
    not_after_ms: u64,
    certificate: Vec<u8>,
    ca_chain: Vec<Vec<u8>>,
    /// PKCS#8 DER, wiped when this object is freed.
    private_key: SecretBytes,
}

impl From<CoreIssued> for IssuedCertificate {
    fn from(c: CoreIssued) -> Self {
        Self {
            serial: c.serial.to_hex(),
            lease_id: c.lease_id.to_string(),
            key_type: c.key_type.to_string(),
            not_before_ms: c.not_before.as_millis(),
            not_after_ms: c.not_after.as_millis(),
            certificate: c.certificate.as_ref().to_vec(),
            ca_chain: c.ca_chain.iter().map(|p| p.as_ref().to_vec()).collect(),
            private_key: SecretBytes::copy_from(c.private_key().expose_secret()),
        }
    }
}

#[pymethods]
impl IssuedCertificate {
    /// The certificate, DER.
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.certificate)
    }

    /// The issuing CA's certificate and the ones above it (DER), ending
    /// with the root.
    #[getter]
    fn ca_chain<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.ca_chain.iter().map(|p| PyBytes::new(py, p)).collect()
    }

    /// The private key, PKCS#8 DER: an immutable `bytes` copy that Python
    /// cannot wipe; load it and drop it.
    #[getter]
    fn private_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.private_key.expose_secret())
    }

    /// The certificate as PEM.
    fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.certificate)
    }

    /// The certificate followed by the CA chain, PEM (what a TLS server
    /// presents).
    fn chain_pem(&self) -> String {
        std::iter::once(&self.certificate)
            .chain(&self.ca_chain)
            .map(|c| pem("CERTIFICATE", c))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "IssuedCertificate(serial={:?}, lease_id={:?}, key_type={:?}, private_key=[REDACTED])",
            self.serial, self.lease_id, self.key_type
        )
    }
}

/// A CRL signed by the mount's CA. Times are milliseconds since the Unix
/// epoch.
#[pyclass(module = "strongroom", frozen)]
pub struct Crl {
    /// The CRL number.
    #[pyo3(get)]
    number: u64,
    /// When it was signed.
    #[pyo3(get)]
    this_update_ms: u64,
    /// When it stops being valid.
    #[pyo3(get)]
    next_update_ms: u64,
    /// The revoked serials on it, hex.
    #[pyo3(get)]
    serials: Vec<String>,
    der: Vec<u8>,
}

impl From<CoreCrl> for Crl {
    fn from(c: CoreCrl) -> Self {
        Self {
            number: c.number,
            this_update_ms: c.this_update.as_millis(),
            next_update_ms: c.next_update.as_millis(),
            serials: c.serials.iter().map(Serial::to_hex).collect(),
            der: c.der.as_ref().to_vec(),
        }
    }
}

#[pymethods]
impl Crl {
    /// The CRL, DER.
    #[getter]
    fn der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.der)
    }

    /// The CRL as PEM (`-----BEGIN X509 CRL-----`).
    fn pem(&self) -> String {
        pem("X509 CRL", &self.der)
    }

    fn __repr__(&self) -> String {
        format!("Crl(number={}, serials={:?})", self.number, self.serials)
    }
}

/// One mount of the internal certificate authority (asyncio API). Built
/// once per process from an unsealed store and its lease manager (whose
/// `run_due()` / revocations then cover the certificates); every method
/// takes the `Handle` of the principal it acts for, checks its policies
/// and audits the call.
#[pyclass(module = "strongroom", frozen)]
pub struct Pki {
    inner: CorePki,
    life: Life,
}

/// The blocking form of [`Pki`] (`strongroom.blocking.Pki`).
#[pyclass(module = "strongroom.blocking", name = "Pki", frozen)]
pub struct BlockingPki {
    inner: CorePki,
    life: Life,
}

impl Pki {
    const BLOCKING: bool = false;
}

impl BlockingPki {
    const BLOCKING: bool = true;
}

fn new_pki(
    store: &Bound<'_, PyAny>,
    lease_manager: &Bound<'_, PyAny>,
    mount: &str,
) -> PyResult<(CorePki, Life)> {
    let (door, life) = crate::store_of(store)?;
    let manager = crate::lease::manager_of(lease_manager)?;
    let pki = CorePki::new(&door, manager, mount).map_err(pki_to_py)?;
    Ok((pki, life))
}

fn ttl_of(what: &str, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    obj.map(|o| seconds(what, o)).transpose()
}

/// Both classes have the same methods; only how results come back
/// differs (`run`).
macro_rules! pki_methods {
    ($t:ident) => {
        #[pymethods]
        impl $t {
            /// The mount `mount` of the CA in `store` (a `Strongroom` or
            /// `blocking.Strongroom`), its certificates leased through
            /// `lease_manager` (a `LeaseManager` of the same store; its
            /// revoker for engine "pki-<mount>" is registered here).
            #[new]
            fn py_new(
                store: &Bound<'_, PyAny>,
                lease_manager: &Bound<'_, PyAny>,
                mount: &str,
            ) -> PyResult<Self> {
                let (inner, life) = new_pki(store, lease_manager, mount)?;
                Ok(Self { inner, life })
            }

            /// The mount's name.
            #[getter]
            fn mount(&self) -> String {
                self.inner.mount().to_owned()
            }

            /// Creates the mount's self-signed root CA named
            /// `common_name` (key "ed25519" or "ecdsa-p256", valid `ttl`
            /// seconds, default ten years); gives its `CaCertificate`.
            /// The CA's private key never leaves the store.
            #[pyo3(signature = (handle, common_name, key_type = "ed25519", ttl = None))]
            fn create_root(
                &self,
                py: Python<'_>,
                handle: &Bound<'_, PyAny>,
                common_name: String,
                key_type: &str,
                ttl: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Py<PyAny>> {
                let h = handle_of(handle)?;
                let mut spec = CaSpec::new(common_name).key_type(self::key_type(key_type)?);
                if let Some(ttl) = ttl_of("ttl", ttl)? {
                    spec = spec.ttl(ttl);
                }
                let pki = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    pki.create_root(&h, spec).await.map(CaCertificate::from)
                })
            }

            /// The mount's `CaCertificate`.
            fn ca(&self, py: Python<'_>, handle: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                let h = handle_of(handle)?;
                let pki = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    pki.ca(&h).await.map(CaCertificate::from)
                })
            }

            /// Defines (or replaces) role `name`: which names it issues
            /// for (exact DNS names or one-label patterns such as
            /// "*.example.com"), key types and usages ("server",
            /// "client"; default both), and TTLs in seconds (default 1 h,
            /// max 24 h).
            #[pyo3(signature = (handle, name, allowed_names, *, allow_localhost = false,
                allow_ip_sans = false, allow_wildcard_certificates = false, key_types = None,
                usages = None, ttl = None, max_ttl = None))]
            #[allow(clippy::too_many_arguments)]
            fn put_role(
                &self,
                py: Python<'_>,
                handle: &Bound<'_, PyAny>,
                name: String,
                allowed_names: Vec<String>,
                allow_localhost: bool,
                allow_ip_sans: bool,
                allow_wildcard_certificates: bool,
                key_types: Option<Vec<String>>,
                usages: Option<Vec<String>>,
                ttl: Option<&Bound<'_, PyAny>>,
                max_ttl: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Py<PyAny>> {
                let h = handle_of(handle)?;
                let mut role = Role::new(allowed_names)
                    .allow_localhost(allow_localhost)
                    .allow_ip_sans(allow_ip_sans)
                    .allow_wildcard_certificates(allow_wildcard_certificates);
                if let Some(k) = key_types {
                    role = role.key_types(
                        k.iter().map(|k| key_type(k)).collect::<PyResult<Vec<_>>>()?,
                    );
                }
                if let Some(u) = usages {
                    role = role.usages(u.iter().map(|u| usage(u)).collect::<PyResult<Vec<_>>>()?);
                }
                let ttl = ttl_of("ttl", ttl)?.unwrap_or(role.ttl);
                let max_ttl = ttl_of("max_ttl", max_ttl)?.unwrap_or(role.max_ttl);
                role = role.ttl(ttl, max_ttl);
                let pki = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    pki.put_role(&h, &name, role).await
                })
            }

            /// Issues a certificate from `role` for `dns_names` (and
            /// `ip_addresses`, if the role allows IP SANs); gives an
            /// `IssuedCertificate` whose lease ends with it. A name the
            /// role does not allow raises `PkiNameNotAllowed` (a
            /// `PkiError`; code "pki.name_not_allowed").
            #[pyo3(signature = (handle, role, dns_names, *, common_name = None,
                ip_addresses = None, key_type = None, usages = None, ttl = None))]
            #[allow(clippy::too_many_arguments)]
            fn issue(
                &self,
                py: Python<'_>,
                handle: &Bound<'_, PyAny>,
                role: String,
                dns_names: Vec<String>,
                common_name: Option<String>,
                ip_addresses: Option<Vec<String>>,
                key_type: Option<&str>,
                usages: Option<Vec<String>>,
                ttl: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Py<PyAny>> {
                let h = handle_of(handle)?;
                let mut req = IssueRequest::new(dns_names);
                for ip in ip_addresses.unwrap_or_default() {
                    let ip: IpAddr = ip
                        .parse()
                        .map_err(|_| invalid(format!("{ip:?} is not an IP address")))?;
                    req = req.ip(ip);
                }
                if let Some(cn) = common_name {
                    req = req.common_name(cn);
                }
                if let Some(k) = key_type {
                    req = req.key_type(self::key_type(k)?);
                }
                if let Some(u) = usages {
                    req = req.usages(u.iter().map(|u| usage(u)).collect::<PyResult<Vec<_>>>()?);
                }
                if let Some(ttl) = ttl_of("ttl", ttl)? {
                    req = req.ttl(ttl);
                }
                let pki = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    pki.issue(&h, &role, req).await.map(IssuedCertificate::from)
                })
            }

            /// Revokes the live certificate with serial `serial` (hex)
            /// through its lease; gives the lease id. The serial is on
            /// the next CRL.
            fn revoke(
                &self,
                py: Python<'_>,
                handle: &Bound<'_, PyAny>,
                serial: &str,
            ) -> PyResult<Py<PyAny>> {
                let h = handle_of(handle)?;
                let serial = Serial::from_hex(serial).map_err(pki_to_py)?;
                let pki = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    pki.revoke(&h, &serial).await.map(|id| id.to_string())
                })
            }

            /// The mount's current `Crl`, signed by its CA (a new one
            /// when the revoked set changed or half its lifetime passed).
            fn crl(&self, py: Python<'_>, handle: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                let h = handle_of(handle)?;
                let pki = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    pki.crl(&h).await.map(Crl::from)
                })
            }

            fn __repr__(&self) -> String {
                format!("Pki({:?})", self.inner.mount())
            }
        }
    };
}

pki_methods!(Pki);
pki_methods!(BlockingPki);

/// Adds the CA's classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CaCertificate>()?;
    m.add_class::<IssuedCertificate>()?;
    m.add_class::<Crl>()?;
    m.add_class::<Pki>()?;
    m.add("BlockingPki", m.py().get_type::<BlockingPki>())?;
    Ok(())
}
