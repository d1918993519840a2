//! The internal certificate authority ([`strongroom_pki`]): a mount over a
//! store and a lease manager, every call acting for a principal's handle.
//! Certificates and CRLs cross as DER; a leaf's private key crosses once,
//! as a Buffer (the Rust copy is wiped when it drops).

use std::net::IpAddr;
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, BufferSlice, Env, Object, PromiseRaw};
use napi_derive::napi;
use strongroom_pki::{
    CaCertificate, CaKind, CaSpec, Crl, IssueRequest, IssuedCertificate, KeyType, Pki, PkiError,
    Role, Serial, Usage,
};

use crate::{
    Lifetime, NativeLeaseManager, NativeSecrets, NativeStrongroom, Target, closed_error,
    details_to_js, duration_ms, invalid, ms,
};

/// A PKI error as a JavaScript error, through its details like every core
/// error: core errors keep the core's classes; the CA's own throw their
/// `pki.*` classes (all deriving from `PkiError`).
fn pki_js(e: PkiError) -> napi::Error {
    details_to_js(e.details())
}

fn pki_key_type(name: &str) -> napi::Result<KeyType> {
    match name {
        "ed25519" => Ok(KeyType::Ed25519),
        "ecdsa-p256" => Ok(KeyType::EcdsaP256),
        other => Err(invalid(format!(
            "unknown PKI key type {other:?} (use \"ed25519\" or \"ecdsa-p256\")"
        ))),
    }
}

fn usage(name: &str) -> napi::Result<Usage> {
    match name {
        "server" => Ok(Usage::Server),
        "client" => Ok(Usage::Client),
        other => Err(invalid(format!(
            "unknown usage {other:?} (use \"server\" or \"client\")"
        ))),
    }
}

fn der(b: &[u8]) -> Buffer {
    b.to_vec().into()
}

/// A mount of the internal CA.
#[napi]
pub struct NativePki {
    pki: Pki,
    /// The store's lifetime: calls fail once it is closed.
    life: Arc<Lifetime>,
}

impl NativePki {
    /// The mount and the principal's handle (PKI calls always act for one).
    fn parts(&self, principal: &NativeSecrets) -> napi::Result<(Pki, strongroom::Handle)> {
        if self.life.is_closed() {
            return Err(closed_error("store"));
        }
        if !Arc::ptr_eq(&self.life, &principal.life) {
            return Err(invalid(
                "the principal belongs to another store than this PKI mount",
            ));
        }
        match principal.target()? {
            Target::Handle(h) => Ok((self.pki.clone(), h)),
            Target::Store(_) => Err(invalid(
                "PKI calls act for a principal: give a handle from store.asPrincipal()",
            )),
        }
    }
}

/// What a new CA should be.
#[napi(object)]
pub struct NativeCaSpec {
    /// The subject's common name.
    pub common_name: String,
    /// "ed25519" (the default) or "ecdsa-p256".
    pub key_type: Option<String>,
    /// Validity from now, in ms (whole seconds count; default ten years).
    pub ttl_ms: Option<f64>,
}

/// A CA's public side.
#[napi(object)]
pub struct NativeCaCertificate {
    /// The mount.
    pub mount: String,
    /// "root" or "intermediate".
    pub kind: String,
    /// "ed25519" or "ecdsa-p256".
    pub key_type: String,
    /// The subject's common name.
    pub common_name: String,
    /// Its certificate, DER.
    pub certificate: Buffer,
    /// The certificates above it, nearest first (empty for a root), DER.
    pub parents: Vec<Buffer>,
    /// Start of validity (ms).
    pub not_before_ms: f64,
    /// End of validity (ms).
    pub not_after_ms: f64,
}

impl From<CaCertificate> for NativeCaCertificate {
    fn from(c: CaCertificate) -> Self {
        Self {
            mount: c.mount,
            kind: match c.kind {
                CaKind::Root => "root",
                _ => "intermediate",
            }
            .to_owned(),
            key_type: c.key_type.to_string(),
            common_name: c.common_name,
            certificate: der(&c.certificate),
            parents: c.parents.iter().map(|p| der(p)).collect(),
            not_before_ms: ms(c.not_before),
            not_after_ms: ms(c.not_after),
        }
    }
}

/// Which certificates a role issues.
#[napi(object)]
pub struct NativeRole {
    /// Exact DNS names or one-label patterns (`*.example.com`).
    pub allowed_names: Vec<String>,
    /// Whether `localhost` may be asked for.
    pub allow_localhost: Option<bool>,
    /// Whether IP address SANs may be asked for.
    pub allow_ip_sans: Option<bool>,
    /// Whether wildcard names may be asked for.
    pub allow_wildcard_certificates: Option<bool>,
    /// Allowed key types ("ed25519", "ecdsa-p256").
    pub key_types: Option<Vec<String>>,
    /// Allowed usages ("server", "client").
    pub usages: Option<Vec<String>>,
    /// Default validity (ms); with `max_ttl_ms`.
    pub ttl_ms: Option<f64>,
    /// Longest validity (ms); with `ttl_ms`.
    pub max_ttl_ms: Option<f64>,
}

impl NativeRole {
    fn into_role(self) -> napi::Result<Role> {
        let mut role = Role::new(self.allowed_names);
        if let Some(b) = self.allow_localhost {
            role = role.allow_localhost(b);
        }
        if let Some(b) = self.allow_ip_sans {
            role = role.allow_ip_sans(b);
        }
        if let Some(b) = self.allow_wildcard_certificates {
            role = role.allow_wildcard_certificates(b);
        }
        if let Some(k) = self.key_types {
            role = role.key_types(
                k.iter()
                    .map(|n| pki_key_type(n))
                    .collect::<napi::Result<Vec<_>>>()?,
            );
        }
        if let Some(u) = self.usages {
            role = role.usages(
                u.iter()
                    .map(|n| usage(n))
                    .collect::<napi::Result<Vec<_>>>()?,
            );
        }
        match (self.ttl_ms, self.max_ttl_ms) {
            (None, None) => {}
            (Some(t), Some(m)) => {
                role = role.ttl(duration_ms("ttlMs", t)?, duration_ms("maxTtlMs", m)?);
            }
            _ => return Err(invalid("give both ttlMs and maxTtlMs, or neither")),
        }
        Ok(role)
    }
}

/// A certificate request.
#[napi(object)]
pub struct NativeIssueRequest {
    /// DNS names (subject alternative names).
    pub dns_names: Vec<String>,
    /// IP address SANs.
    pub ip_addresses: Option<Vec<String>>,
    /// The subject's common name.
    pub common_name: Option<String>,
    /// "ed25519" or "ecdsa-p256" (the role's first if none).
    pub key_type: Option<String>,
    /// "server" and/or "client" (the role's if none).
    pub usages: Option<Vec<String>>,
    /// Validity (ms; the role's ttl if none).
    pub ttl_ms: Option<f64>,
}

impl NativeIssueRequest {
    fn into_request(self) -> napi::Result<IssueRequest> {
        let mut r = IssueRequest::new(self.dns_names);
        for ip in self.ip_addresses.unwrap_or_default() {
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| invalid(format!("{ip:?} is not an IP address")))?;
            r = r.ip(addr);
        }
        if let Some(cn) = self.common_name {
            r = r.common_name(cn);
        }
        if let Some(k) = self.key_type {
            r = r.key_type(pki_key_type(&k)?);
        }
        if let Some(u) = self.usages {
            r = r.usages(
                u.iter()
                    .map(|n| usage(n))
                    .collect::<napi::Result<Vec<_>>>()?,
            );
        }
        if let Some(t) = self.ttl_ms {
            r = r.ttl(duration_ms("ttlMs", t)?);
        }
        Ok(r)
    }
}

/// A certificate just issued, as a JavaScript object; the private key is
/// copied into a new Buffer (the Rust copy is wiped when `c` drops).
fn issued_object(env: &Env, c: IssuedCertificate) -> napi::Result<Object<'_>> {
    let mut o = Object::new(env)?;
    o.set("serial", c.serial.to_hex())?;
    o.set("leaseId", c.lease_id.to_string())?;
    o.set("certificate", der(&c.certificate))?;
    o.set(
        "caChain",
        c.ca_chain.iter().map(|p| der(p)).collect::<Vec<_>>(),
    )?;
    o.set("keyType", c.key_type.to_string())?;
    o.set("notBeforeMs", ms(c.not_before))?;
    o.set("notAfterMs", ms(c.not_after))?;
    o.set(
        "privateKey",
        BufferSlice::copy_from(env, c.private_key().expose_secret())?,
    )?;
    Ok(o)
}

/// A signed CRL.
#[napi(object)]
pub struct NativeCrl {
    /// The CRL, DER.
    pub der: Buffer,
    /// Its CRL number.
    pub number: f64,
    /// When it was signed (ms).
    pub this_update_ms: f64,
    /// When the next one is due (ms).
    pub next_update_ms: f64,
    /// The revoked serials on it, lower-case hex.
    pub serials: Vec<String>,
}

impl From<Crl> for NativeCrl {
    fn from(c: Crl) -> Self {
        Self {
            der: der(&c.der),
            number: c.number as f64,
            this_update_ms: ms(c.this_update),
            next_update_ms: ms(c.next_update),
            serials: c.serials.iter().map(Serial::to_hex).collect(),
        }
    }
}

#[napi]
impl NativeStrongroom {
    /// The CA mount `mount` of this store, leasing its certificates from
    /// `leases` (a lease manager of this store, which gets the mount's
    /// revoker).
    #[napi]
    pub fn pki(&self, leases: &NativeLeaseManager, mount: String) -> napi::Result<NativePki> {
        let door = self.handle()?;
        if !Arc::ptr_eq(&self.life, &leases.life) {
            return Err(invalid("the lease manager belongs to another store"));
        }
        let pki = Pki::new(&door, leases.manager()?, &mount).map_err(pki_js)?;
        Ok(NativePki {
            pki,
            life: self.life.clone(),
        })
    }
}

#[napi]
impl NativePki {
    /// The mount's name.
    #[napi(getter)]
    pub fn mount(&self) -> String {
        self.pki.mount().to_owned()
    }

    /// The lease engine of the mount's certificates (`pki-<mount>`).
    #[napi(getter)]
    pub fn engine(&self) -> String {
        self.pki.engine()
    }

    /// Creates the mount's root CA (`sudo` on `pki/<mount>/ca`).
    #[napi]
    pub fn create_root<'env>(
        &self,
        env: &'env Env,
        principal: &NativeSecrets,
        spec: NativeCaSpec,
    ) -> napi::Result<PromiseRaw<'env, NativeCaCertificate>> {
        let (pki, h) = self.parts(principal)?;
        let mut s = CaSpec::new(spec.common_name);
        if let Some(k) = spec.key_type {
            s = s.key_type(pki_key_type(&k)?);
        }
        if let Some(t) = spec.ttl_ms {
            s = s.ttl(duration_ms("ttlMs", t)?);
        }
        env.spawn_future(
            async move { pki.create_root(&h, s).await.map(Into::into).map_err(pki_js) },
        )
    }

    /// The mount's CA (`read` on `pki/<mount>/ca`).
    #[napi]
    pub fn ca<'env>(
        &self,
        env: &'env Env,
        principal: &NativeSecrets,
    ) -> napi::Result<PromiseRaw<'env, NativeCaCertificate>> {
        let (pki, h) = self.parts(principal)?;
        env.spawn_future(async move { pki.ca(&h).await.map(Into::into).map_err(pki_js) })
    }

    /// Creates or replaces role `name` (`sudo` on `pki/<mount>/role/<name>`).
    #[napi]
    pub fn put_role<'env>(
        &self,
        env: &'env Env,
        principal: &NativeSecrets,
        name: String,
        role: NativeRole,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let (pki, h) = self.parts(principal)?;
        let role = role.into_role()?;
        env.spawn_future(async move { pki.put_role(&h, &name, role).await.map_err(pki_js) })
    }

    /// Issues a certificate under `role` (`lease` on
    /// `pki/<mount>/issue/<role>`).
    #[napi(ts_return_type = "Promise<NativeIssuedCertificate>")]
    pub fn issue<'env>(
        &self,
        env: &'env Env,
        principal: &NativeSecrets,
        role: String,
        request: NativeIssueRequest,
    ) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let (pki, h) = self.parts(principal)?;
        let request = request.into_request()?;
        env.spawn_future_with_callback(
            async move { pki.issue(&h, &role, request).await.map_err(pki_js) },
            issued_object,
        )
    }

    /// Revokes the certificate with serial `serial` (hex) by revoking its
    /// lease; resolves to the lease id.
    #[napi]
    pub fn revoke<'env>(
        &self,
        env: &'env Env,
        principal: &NativeSecrets,
        serial: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let (pki, h) = self.parts(principal)?;
        let serial = Serial::from_hex(&serial).map_err(pki_js)?;
        env.spawn_future(async move {
            pki.revoke(&h, &serial)
                .await
                .map(|id| id.to_string())
                .map_err(pki_js)
        })
    }

    /// The current CRL, signing a new one when due (`read` on
    /// `pki/<mount>/crl`).
    #[napi]
    pub fn crl<'env>(
        &self,
        env: &'env Env,
        principal: &NativeSecrets,
    ) -> napi::Result<PromiseRaw<'env, NativeCrl>> {
        let (pki, h) = self.parts(principal)?;
        env.spawn_future(async move { pki.crl(&h).await.map(Into::into).map_err(pki_js) })
    }
}

/// The shape `issue` resolves to (for the type declarations only).
#[napi(object)]
pub struct NativeIssuedCertificate {
    /// The serial, lower-case hex.
    pub serial: String,
    /// The lease that revokes it.
    pub lease_id: String,
    /// The certificate, DER.
    pub certificate: Buffer,
    /// The CA certificates above it, DER.
    pub ca_chain: Vec<Buffer>,
    /// "ed25519" or "ecdsa-p256".
    pub key_type: String,
    /// Start of validity (ms).
    pub not_before_ms: f64,
    /// End of validity (ms).
    pub not_after_ms: f64,
    /// The private key, PKCS#8 DER.
    pub private_key: Buffer,
}
