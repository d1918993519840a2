//! Issuing certificates under a role, each one a lease.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use strongroom::audit::Operation;
use strongroom::clock::Timestamp;
use strongroom::lease::{LeaseId, LeaseRequest};
use strongroom::policy::Capability;
use strongroom::storage::BatchOp;
use strongroom::{Handle, SecretBytes};

use crate::ca::to_offset;
use crate::engine::{Pki, audited};
use crate::error::{PkiError, Result};
use crate::record::{self, CertRecord, FORMAT, Record, RoleRecord};
use crate::role::check_name;
use crate::{KeyType, Role, Usage};

/// A certificate serial number: 16 random bytes, the first in `1..=0x7f`
/// (positive, and always 16 bytes long in DER). Printed as lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    pub(crate) fn random() -> Result<Self> {
        let mut b = strongroom::SecretBytes::random(16)?
            .expose_secret()
            .to_vec();
        if let Some(first) = b.first_mut() {
            *first = *first % 0x7f + 1;
        }
        Ok(Self(b))
    }

    /// The serial's bytes (big-endian, as in the certificate).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// From the bytes of a certificate's serial number field.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Lower-case hex, as in storage keys.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// From hex (either case); 1 to 20 bytes.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = hex::decode(text).map_err(|e| PkiError::InvalidRequest {
            reason: format!("serial {text:?} is not hex: {e}"),
        })?;
        if bytes.is_empty() || bytes.len() > 20 {
            return Err(PkiError::InvalidRequest {
                reason: "a serial is 1 to 20 bytes".into(),
            });
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

/// What to issue. The role decides what is allowed; unset fields take the
/// role's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssueRequest {
    /// The subject's common name; by default the first DNS name (or the
    /// first IP address).
    pub common_name: Option<String>,
    /// DNS name SANs (lower case; `localhost` and `*.domain` if the role
    /// allows them).
    pub dns_names: Vec<String>,
    /// IP address SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// The key type; by default the role's first.
    pub key_type: Option<KeyType>,
    /// The usages; by default every usage the role allows.
    pub usages: Vec<Usage>,
    /// The TTL; by default the role's.
    pub ttl: Option<Duration>,
}

impl IssueRequest {
    /// A request for `dns_names`.
    pub fn new<S: Into<String>>(dns_names: impl IntoIterator<Item = S>) -> Self {
        Self {
            dns_names: dns_names.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Adds an IP address SAN.
    #[must_use]
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip_addresses.push(ip);
        self
    }

    /// Sets the common name.
    #[must_use]
    pub fn common_name(mut self, cn: impl Into<String>) -> Self {
        self.common_name = Some(cn.into());
        self
    }

    /// Sets the key type.
    #[must_use]
    pub fn key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = Some(key_type);
        self
    }

    /// Sets the usages.
    #[must_use]
    pub fn usages(mut self, usages: impl IntoIterator<Item = Usage>) -> Self {
        self.usages = usages.into_iter().collect();
        self
    }

    /// Sets the TTL (whole seconds are kept).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// An issued certificate and its private key. The key is generated inside
/// the library and exists only here: it is not stored, logged or audited.
/// `Debug` prints everything but the key.
pub struct IssuedCertificate {
    /// The serial.
    pub serial: Serial,
    /// The lease that stands for it: revoking the lease revokes the
    /// certificate.
    pub lease_id: LeaseId,
    /// The certificate.
    pub certificate: CertificateDer<'static>,
    /// The issuing CA's certificate followed by the ones above it, ending
    /// with the root.
    pub ca_chain: Vec<CertificateDer<'static>>,
    /// The key type.
    pub key_type: KeyType,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity (and of the lease).
    pub not_after: Timestamp,
    private_key: SecretBytes,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("serial", &self.serial)
            .field("lease_id", &self.lease_id)
            .field("key_type", &self.key_type)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("private_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl IssuedCertificate {
    /// The private key, PKCS#8 DER, wiped when dropped.
    pub fn private_key(&self) -> &SecretBytes {
        &self.private_key
    }

    /// A copy of the private key for rustls. rustls's key type does not
    /// wipe itself; drop it as soon as it is loaded.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            self.private_key.expose_secret().to_vec(),
        ))
    }

    /// The certificate followed by [`ca_chain`](Self::ca_chain) without
    /// the root: what a TLS peer sends.
    pub fn tls_chain(&self) -> Vec<CertificateDer<'static>> {
        let mut out = vec![self.certificate.clone()];
        let above = self.ca_chain.len().saturating_sub(1);
        out.extend(self.ca_chain.iter().take(above).cloned());
        out
    }
}

/// The lease's revocation data: enough to put the serial on the CRL even
/// if the certificate's record is gone.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevocationData {
    pub(crate) format: u8,
    pub(crate) serial: String,
    pub(crate) not_after: Timestamp,
}

/// A request resolved against its role.
struct Resolved {
    common_name: String,
    key_type: KeyType,
    usages: Vec<Usage>,
    ttl: Duration,
}

fn resolve(role_name: &str, role: &Role, req: &IssueRequest) -> Result<Resolved> {
    let invalid = |reason: &str| {
        Err(PkiError::InvalidRequest {
            reason: reason.to_owned(),
        })
    };
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return invalid("name at least one DNS name or IP address");
    }
    for name in &req.dns_names {
        role.check_dns_name(role_name, name)?;
    }
    for ip in &req.ip_addresses {
        role.check_ip(role_name, *ip)?;
    }
    let common_name = match &req.common_name {
        Some(cn) => {
            // The common name must be one of the SANs.
            let listed = req.dns_names.iter().any(|n| n == cn)
                || req.ip_addresses.iter().any(|ip| ip.to_string() == *cn);
            if !listed {
                return invalid("the common name must also be requested as a SAN");
            }
            cn.clone()
        }
        None => match (req.dns_names.first(), req.ip_addresses.first()) {
            (Some(n), _) => n.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return invalid("no name to use as the common name"),
        },
    };
    let key_type = match req.key_type {
        Some(k) => k,
        None => match role.key_types.first() {
            Some(k) => *k,
            None => return invalid("the role allows no key type"),
        },
    };
    if !role.key_types.contains(&key_type) {
        return Err(PkiError::KeyTypeNotAllowed {
            role: role_name.to_owned(),
            requested: key_type,
            allowed: role
                .key_types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let usages = if req.usages.is_empty() {
        role.usages.clone()
    } else {
        req.usages.clone()
    };
    for u in &usages {
        if !role.usages.contains(u) {
            return Err(PkiError::UsageNotAllowed {
                role: role_name.to_owned(),
                requested: *u,
            });
        }
    }
    let ttl = Duration::from_secs(req.ttl.unwrap_or(role.ttl).as_secs());
    if ttl.is_zero() {
        return invalid("the ttl must be at least one second");
    }
    if ttl > role.max_ttl {
        return Err(PkiError::TtlOverMax {
            role: role_name.to_owned(),
            requested: ttl,
            max: role.max_ttl,
        });
    }
    Ok(Resolved {
        common_name,
        key_type,
        usages,
        ttl,
    })
}

impl Pki {
    /// Defines or replaces role `name` (capability `sudo` on
    /// `pki/<mount>/role/<name>`).
    pub async fn put_role(&self, handle: &Handle, name: &str, role: Role) -> Result<()> {
        check_name("role", name)?;
        audited(
            handle,
            Operation::Write,
            &self.path(&format!("role/{name}")),
            &[Capability::Sudo],
            async {
                role.validate()?;
                let rec = RoleRecord {
                    format: FORMAT,
                    role,
                };
                self.inner
                    .barrier
                    .put(&self.inner.keys.role(name), &rec.encode()?)
                    .await?;
                Ok(())
            },
            |ev, _| ev,
        )
        .await
    }

    /// Role `name` (capability `read` on `pki/<mount>/role/<name>`).
    pub async fn role(&self, handle: &Handle, name: &str) -> Result<Role> {
        check_name("role", name)?;
        audited(
            handle,
            Operation::Read,
            &self.path(&format!("role/{name}")),
            &[Capability::Read],
            self.load_role(name),
            |ev, _| ev,
        )
        .await
    }

    async fn load_role(&self, name: &str) -> Result<Role> {
        let key = self.inner.keys.role(name);
        match record::read::<RoleRecord>(&self.inner.barrier, &key).await? {
            Some((rec, _)) => Ok(rec.role),
            None => Err(PkiError::UnknownRole {
                mount: self.mount().to_owned(),
                role: name.to_owned(),
            }),
        }
    }

    /// Issues a certificate under role `role` (capability `lease` on
    /// `pki/<mount>/issue/<role>`; audit operation `lease_issue`, with the
    /// lease id once issued). The request is checked against the role, the
    /// key pair generated here, the certificate signed by the mount's CA
    /// and leased for its whole validity (not renewable: renew by issuing
    /// again). A refusal by the role is audited as an error
    /// (`invalid_argument`, with this crate's error kind in the message).
    pub async fn issue(
        &self,
        handle: &Handle,
        role: &str,
        request: IssueRequest,
    ) -> Result<IssuedCertificate> {
        check_name("role", role)?;
        let path = self.path(&format!("issue/{role}"));
        audited(
            handle,
            Operation::LeaseIssue,
            &path,
            &[Capability::Lease],
            self.issue_unchecked(&path, role, request),
            |ev, c| ev.with_lease_id(c.lease_id.to_string()),
        )
        .await
    }

    async fn issue_unchecked(
        &self,
        path: &str,
        role_name: &str,
        request: IssueRequest,
    ) -> Result<IssuedCertificate> {
        let role = self.load_role(role_name).await?;
        let r = resolve(role_name, &role, &request)?;
        let signer = self.signer().await?;
        let not_before = self.now();
        let not_after = not_before + r.ttl;
        if not_after > signer.record.not_after {
            return Err(PkiError::OutlivesCa {
                requested: not_after,
                ca_not_after: signer.record.not_after,
            });
        }
        let serial = Serial::random()?;
        let key = r.key_type.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, r.common_name.as_str());
        params.distinguished_name = dn;
        params.not_before = to_offset(not_before)?;
        params.not_after = to_offset(not_after)?;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = r
            .usages
            .iter()
            .map(|u| match u {
                Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
                Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        params.use_authority_key_identifier_extension = true;
        for name in &request.dns_names {
            let ia5 = rcgen::string::Ia5String::try_from(name.as_str()).map_err(PkiError::cert)?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        for ip in &request.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let cert = params
            .signed_by(&key, &signer.issuer)
            .map_err(PkiError::cert)?;
        let private_key = SecretBytes::new(key.serialize_der());
        drop(key);

        let data = serde_json::to_vec(&RevocationData {
            format: FORMAT,
            serial: serial.to_hex(),
            not_after,
        })
        .map_err(PkiError::cert)?;
        let lease = LeaseRequest::new(path, self.engine(), r.ttl, r.ttl)
            .renewable(false)
            .revocation_data(data);
        let lease = self
            .inner
            .manager
            .issue_batch(vec![lease])
            .await?
            .pop()
            .ok_or_else(|| PkiError::InvalidRequest {
                reason: "the lease manager issued no lease".into(),
            })?;
        let rec = CertRecord {
            format: FORMAT,
            role: role_name.to_owned(),
            lease_id: lease.id().to_string(),
            not_after,
            cert: cert.der().to_vec(),
        };
        let written = match rec.encode() {
            Ok(bytes) => {
                let key = self.inner.keys.cert(&serial.to_hex());
                self.inner
                    .barrier
                    .batch(vec![BatchOp::put(key, bytes)])
                    .await
                    .map_err(PkiError::from)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            // The certificate is never handed out: take its lease back.
            if let Err(revoke) = self.inner.manager.revoke(lease.id()).await {
                tracing::warn!(serial = %serial, error = %revoke, "revoking the lease of an unrecorded certificate failed");
            }
            return Err(e);
        }
        let mut ca_chain = vec![CertificateDer::from(signer.record.cert.clone())];
        ca_chain.extend(
            signer
                .record
                .parents
                .iter()
                .cloned()
                .map(CertificateDer::from),
        );
        Ok(IssuedCertificate {
            serial,
            lease_id: lease.id(),
            certificate: cert.der().clone(),
            ca_chain,
            key_type: r.key_type,
            not_before,
            not_after,
            private_key,
        })
    }
}
