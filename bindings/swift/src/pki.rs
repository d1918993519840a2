//! The internal certificate authority (`strongroom-pki`): `Pki(store:
//! leaseManager:mount:)`, every call acting for a principal's `Handle`.
//! Certificates and CRLs cross as DER bytes with PEM strings beside them;
//! a leaf's private key crosses once, as a `Secret` holding PKCS#8 DER
//! bytes, and `IssuedCertificate`'s description never shows it.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use strongroom_pki::{
    CaCertificate as CoreCa, CaKind, CaSpec, Crl as CoreCrl, IssueRequest as CoreRequest,
    IssuedCertificate as CoreIssued, KeyType, Pki as CorePki, Role, Serial, Usage,
};

use crate::errors::{Result, invalid};
use crate::lease::LeaseManager;
use crate::store::Handle;
use crate::{Secret, StoreId, Strongroom};
use strongroom::pem::encode as pem;

/// Certificates as consecutive PEM blocks.
fn pem_chain<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> String {
    certs.into_iter().map(|c| pem("CERTIFICATE", c)).collect()
}

fn key_type(name: &str) -> Result<KeyType> {
    match name {
        "ed25519" => Ok(KeyType::Ed25519),
        "ecdsa-p256" => Ok(KeyType::EcdsaP256),
        other => Err(invalid(format!(
            "unknown certificate key type {other:?} (use \"ed25519\" or \"ecdsa-p256\")"
        ))),
    }
}

fn key_types(names: &[String]) -> Result<Vec<KeyType>> {
    names.iter().map(|n| key_type(n)).collect()
}

fn usages(names: &[String]) -> Result<Vec<Usage>> {
    names
        .iter()
        .map(|n| match n.as_str() {
            "server" => Ok(Usage::Server),
            "client" => Ok(Usage::Client),
            other => Err(invalid(format!(
                "unknown usage {other:?} (use \"server\" or \"client\")"
            ))),
        })
        .collect()
}

/// A CA's public side: its certificate and the chain above it (the CA's
/// private key never leaves the store).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CaCertificate {
    /// The mount.
    pub mount: String,
    /// "root" or "intermediate".
    pub kind: String,
    /// "ed25519" or "ecdsa-p256".
    pub key_type: String,
    /// The subject's common name.
    pub common_name: String,
    /// The CA's certificate, DER.
    pub certificate: Vec<u8>,
    /// The CA's certificate, PEM.
    pub certificate_pem: String,
    /// The certificates above it (DER), ending with the root; empty for a
    /// root.
    pub parents: Vec<Vec<u8>>,
    /// The certificate followed by its parents, PEM.
    pub chain_pem: String,
    /// Start of validity (ms since the Unix epoch).
    pub not_before_ms: u64,
    /// End of validity (ms since the Unix epoch).
    pub not_after_ms: u64,
}

impl From<CoreCa> for CaCertificate {
    fn from(c: CoreCa) -> Self {
        let parents: Vec<Vec<u8>> = c.parents.iter().map(|p| p.as_ref().to_vec()).collect();
        let chain_pem = pem_chain(
            std::iter::once(c.certificate.as_ref()).chain(parents.iter().map(Vec::as_slice)),
        );
        Self {
            mount: c.mount,
            kind: match c.kind {
                CaKind::Root => "root",
                _ => "intermediate",
            }
            .to_owned(),
            key_type: c.key_type.to_string(),
            common_name: c.common_name,
            certificate_pem: pem("CERTIFICATE", &c.certificate),
            certificate: c.certificate.as_ref().to_vec(),
            parents,
            chain_pem,
            not_before_ms: c.not_before.as_millis(),
            not_after_ms: c.not_after.as_millis(),
        }
    }
}

/// Which certificates a role issues. Unset fields take the crate's
/// defaults (both key types, both usages, ttl 1 h, max ttl 24 h).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PkiRole {
    /// Exact DNS names or one-label patterns such as "*.example.com".
    pub allowed_names: Vec<String>,
    /// Whether "localhost" may be asked for.
    #[uniffi(default = false)]
    pub allow_localhost: bool,
    /// Whether IP address SANs may be asked for.
    #[uniffi(default = false)]
    pub allow_ip_sans: bool,
    /// Whether wildcard names may be asked for.
    #[uniffi(default = false)]
    pub allow_wildcard_certificates: bool,
    /// Allowed key types ("ed25519", "ecdsa-p256"); the first is the
    /// default of a request.
    #[uniffi(default = None)]
    pub key_types: Option<Vec<String>>,
    /// Allowed usages ("server", "client").
    #[uniffi(default = None)]
    pub usages: Option<Vec<String>>,
    /// Default validity (ms; whole seconds count).
    #[uniffi(default = None)]
    pub ttl_ms: Option<u64>,
    /// Longest validity (ms; whole seconds count).
    #[uniffi(default = None)]
    pub max_ttl_ms: Option<u64>,
}

impl PkiRole {
    fn core(&self) -> Result<Role> {
        let mut role = Role::new(self.allowed_names.iter().cloned())
            .allow_localhost(self.allow_localhost)
            .allow_ip_sans(self.allow_ip_sans)
            .allow_wildcard_certificates(self.allow_wildcard_certificates);
        if let Some(k) = &self.key_types {
            role = role.key_types(key_types(k)?);
        }
        if let Some(u) = &self.usages {
            role = role.usages(usages(u)?);
        }
        let ttl = self.ttl_ms.map_or(role.ttl, Duration::from_millis);
        let max_ttl = self.max_ttl_ms.map_or(role.max_ttl, Duration::from_millis);
        Ok(role.ttl(ttl, max_ttl))
    }
}

/// A certificate request. Unset fields take the role's defaults.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IssueRequest {
    /// DNS names (subject alternative names).
    pub dns_names: Vec<String>,
    /// IP address SANs (if the role allows them).
    #[uniffi(default = None)]
    pub ip_addresses: Option<Vec<String>>,
    /// The subject's common name.
    #[uniffi(default = None)]
    pub common_name: Option<String>,
    /// "ed25519" or "ecdsa-p256" (the role's first if nil).
    #[uniffi(default = None)]
    pub key_type: Option<String>,
    /// "server" and/or "client" (the role's if nil).
    #[uniffi(default = None)]
    pub usages: Option<Vec<String>>,
    /// Validity (ms; the role's ttl if nil).
    #[uniffi(default = None)]
    pub ttl_ms: Option<u64>,
}

impl IssueRequest {
    fn core(&self) -> Result<CoreRequest> {
        let mut r = CoreRequest::new(self.dns_names.iter().cloned());
        for ip in self.ip_addresses.iter().flatten() {
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| invalid(format!("{ip:?} is not an IP address")))?;
            r = r.ip(addr);
        }
        if let Some(cn) = &self.common_name {
            r = r.common_name(cn.clone());
        }
        if let Some(k) = &self.key_type {
            r = r.key_type(key_type(k)?);
        }
        if let Some(u) = &self.usages {
            r = r.usages(usages(u)?);
        }
        if let Some(t) = self.ttl_ms {
            r = r.ttl(Duration::from_millis(t));
        }
        Ok(r)
    }
}

/// A certificate just issued and its private key. The key exists only here
/// (never stored, logged or audited) and is wiped when this object is
/// freed; the description never shows it.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display)]
pub struct IssuedCertificate {
    inner: CoreIssued,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IssuedCertificate(serial={:?}, lease_id={:?}, key_type={:?}, private_key=[REDACTED])",
            self.inner.serial.to_hex(),
            self.inner.lease_id.to_string(),
            self.inner.key_type.to_string()
        )
    }
}

impl fmt::Display for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[uniffi::export]
impl IssuedCertificate {
    /// The serial, lower-case hex.
    pub fn serial(&self) -> String {
        self.inner.serial.to_hex()
    }

    /// The lease standing for it: revoking the lease revokes the
    /// certificate.
    pub fn lease_id(&self) -> String {
        self.inner.lease_id.to_string()
    }

    /// "ed25519" or "ecdsa-p256".
    pub fn key_type(&self) -> String {
        self.inner.key_type.to_string()
    }

    /// Start of validity (ms since the Unix epoch).
    pub fn not_before_ms(&self) -> u64 {
        self.inner.not_before.as_millis()
    }

    /// End of validity, and of the lease (ms since the Unix epoch).
    pub fn not_after_ms(&self) -> u64 {
        self.inner.not_after.as_millis()
    }

    /// The certificate, DER.
    pub fn certificate(&self) -> Vec<u8> {
        self.inner.certificate.as_ref().to_vec()
    }

    /// The issuing CA's certificate and the ones above it (DER), ending
    /// with the root.
    pub fn ca_chain(&self) -> Vec<Vec<u8>> {
        self.inner
            .ca_chain
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect()
    }

    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.inner.certificate)
    }

    /// The certificate followed by the CA chain, PEM (what a TLS server
    /// presents).
    pub fn chain_pem(&self) -> String {
        pem_chain(
            std::iter::once(self.inner.certificate.as_ref())
                .chain(self.inner.ca_chain.iter().map(|c| c.as_ref())),
        )
    }

    /// The private key, PKCS#8 DER, as a new `Secret` (bytes only: no PEM
    /// form; `reveal()` gives a copy the host language owns).
    pub fn private_key(&self) -> Arc<Secret> {
        Secret::new(self.inner.private_key().clone())
    }
}

/// A CRL signed by the mount's CA.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Crl {
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// The CRL, PEM (`-----BEGIN X509 CRL-----`).
    pub pem: String,
    /// The CRL number.
    pub number: u64,
    /// When it was signed (ms since the Unix epoch).
    pub this_update_ms: u64,
    /// When it stops being valid (ms since the Unix epoch).
    pub next_update_ms: u64,
    /// The revoked serials on it, lower-case hex.
    pub serials: Vec<String>,
}

impl From<CoreCrl> for Crl {
    fn from(c: CoreCrl) -> Self {
        Self {
            pem: pem("X509 CRL", &c.der),
            der: c.der.as_ref().to_vec(),
            number: c.number,
            this_update_ms: c.this_update.as_millis(),
            next_update_ms: c.next_update.as_millis(),
            serials: c.serials.iter().map(Serial::to_hex).collect(),
        }
    }
}

/// One mount of the internal certificate authority over a store, its
/// certificates leased through a lease manager of the same store. Every
/// method takes the `Handle` of the principal it acts for, checks its
/// policies and audits the call.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct Pki {
    inner: CorePki,
    store: StoreId,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pki({:?})", self.inner.mount())
    }
}

impl Pki {
    /// The mount and the principal's handle, refusing another store's.
    fn parts(&self, principal: &Handle) -> Result<(CorePki, strongroom::Handle)> {
        if !self.store.same(&principal.store) {
            return Err(invalid(
                "the principal belongs to another store than this PKI mount",
            ));
        }
        Ok((self.inner.clone(), principal.inner.clone()))
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Pki {
    /// The mount `mount` (1 to 64 of a-z, 0-9, '-', '_') of the CA in
    /// `store`, its certificates leased through `lease_manager` (a lease
    /// manager of the same store, which gets the mount's revoker for engine
    /// `"pki-<mount>"`). Build one per mount and process.
    #[uniffi::constructor]
    pub fn new(
        store: Arc<Strongroom>,
        lease_manager: Arc<LeaseManager>,
        mount: String,
    ) -> Result<Arc<Self>> {
        if !store.id.same(&lease_manager.store) {
            return Err(invalid("the lease manager belongs to another store"));
        }
        let inner = CorePki::new(&store.core, lease_manager.manager.clone(), &mount)?;
        Ok(Arc::new(Self {
            inner,
            store: store.id.clone(),
        }))
    }

    /// The mount's name.
    pub fn mount(&self) -> String {
        self.inner.mount().to_owned()
    }

    /// The lease engine of the mount's certificates, `"pki-<mount>"`.
    pub fn engine(&self) -> String {
        self.inner.engine()
    }

    /// Creates the mount's self-signed root CA named `common_name` (key
    /// "ed25519" if nil, or "ecdsa-p256"; valid `ttl_ms`, ten years if
    /// nil). Needs `sudo` on `pki/<mount>/ca`.
    #[uniffi::method(default(key_type = None, ttl_ms = None))]
    pub async fn create_root(
        &self,
        principal: Arc<Handle>,
        common_name: String,
        key_type: Option<String>,
        ttl_ms: Option<u64>,
    ) -> Result<CaCertificate> {
        let (pki, h) = self.parts(&principal)?;
        let mut spec = CaSpec::new(common_name);
        if let Some(k) = key_type {
            spec = spec.key_type(self::key_type(&k)?);
        }
        if let Some(t) = ttl_ms {
            spec = spec.ttl(Duration::from_millis(t));
        }
        Ok(pki.create_root(&h, spec).await?.into())
    }

    /// The mount's CA (`read` on `pki/<mount>/ca`).
    pub async fn ca(&self, principal: Arc<Handle>) -> Result<CaCertificate> {
        let (pki, h) = self.parts(&principal)?;
        Ok(pki.ca(&h).await?.into())
    }

    /// Defines or replaces role `name` (`sudo` on `pki/<mount>/role/<name>`).
    pub async fn put_role(
        &self,
        principal: Arc<Handle>,
        name: String,
        role: PkiRole,
    ) -> Result<()> {
        let (pki, h) = self.parts(&principal)?;
        let role = role.core()?;
        Ok(pki.put_role(&h, &name, role).await?)
    }

    /// Issues a certificate from `role` (`lease` on
    /// `pki/<mount>/issue/<role>`); its lease ends with it. A name the role
    /// does not allow fails with `PkiNameNotAllowed` (code
    /// "pki.name_not_allowed").
    pub async fn issue(
        &self,
        principal: Arc<Handle>,
        role: String,
        request: IssueRequest,
    ) -> Result<Arc<IssuedCertificate>> {
        let (pki, h) = self.parts(&principal)?;
        let request = request.core()?;
        let inner = pki.issue(&h, &role, request).await?;
        Ok(Arc::new(IssuedCertificate { inner }))
    }

    /// Revokes the live certificate with serial `serial` (hex) by revoking
    /// its lease (`lease` on the lease's path); gives the lease id. The
    /// serial is on the next CRL.
    pub async fn revoke(&self, principal: Arc<Handle>, serial: String) -> Result<String> {
        let (pki, h) = self.parts(&principal)?;
        let serial = Serial::from_hex(&serial)?;
        Ok(pki.revoke(&h, &serial).await?.to_string())
    }

    /// The mount's current CRL (`read` on `pki/<mount>/crl`): a new one,
    /// with the next CRL number, when the revoked set changed, a serial on
    /// it expired or half its lifetime passed; otherwise the last one.
    pub async fn crl(&self, principal: Arc<Handle>) -> Result<Crl> {
        let (pki, h) = self.parts(&principal)?;
        Ok(pki.crl(&h).await?.into())
    }
}
