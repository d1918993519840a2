//! Creating a mount's CA (a root, or an intermediate signed by another
//! mount's CA) and loading its signing key.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use strongroom::audit::Operation;
use strongroom::clock::Timestamp;
use strongroom::policy::Capability;
use strongroom::seal::SealContext;
use strongroom::storage::BatchOp;
use strongroom::{Handle, SecretBytes};

use crate::engine::{Pki, audited, conclude};
use crate::error::{PkiError, Result};
use crate::record::{self, CaKind, CaRecord, FORMAT, Record};
use crate::{KeyType, Serial};

/// The version of the CA key's seal context.
const CA_KEY_CONTEXT_VERSION: u64 = 1;

/// What a new CA should be.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CaSpec {
    /// The subject's common name.
    pub common_name: String,
    /// The CA key's type.
    pub key_type: KeyType,
    /// How long the CA certificate is valid from now.
    pub ttl: Duration,
}

impl CaSpec {
    /// A CA named `common_name` with an Ed25519 key, valid ten years.
    pub fn new(common_name: impl Into<String>) -> Self {
        Self {
            common_name: common_name.into(),
            key_type: KeyType::Ed25519,
            ttl: Duration::from_secs(10 * 365 * 24 * 3600),
        }
    }

    /// The key type.
    #[must_use]
    pub fn key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }

    /// The validity, from now (whole seconds).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A CA's public side: its certificate and the chain above it. The
/// private key never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    /// The mount it belongs to.
    pub mount: String,
    /// Root or intermediate.
    pub kind: CaKind,
    /// Its key type.
    pub key_type: KeyType,
    /// Its subject's common name.
    pub common_name: String,
    /// Its certificate.
    pub certificate: CertificateDer<'static>,
    /// The certificates above it, nearest first, ending with the root
    /// (empty for a root).
    pub parents: Vec<CertificateDer<'static>>,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
}

impl CaCertificate {
    fn from_record(mount: &str, r: &CaRecord) -> Self {
        Self {
            mount: mount.to_owned(),
            kind: r.kind,
            key_type: r.key_type,
            common_name: r.common_name.clone(),
            certificate: CertificateDer::from(r.cert.clone()),
            parents: r
                .parents
                .iter()
                .cloned()
                .map(CertificateDer::from)
                .collect(),
            not_before: r.not_before,
            not_after: r.not_after,
        }
    }

    /// The root at the top of the chain (the certificate itself for a
    /// root): the trust anchor.
    pub fn root(&self) -> &CertificateDer<'static> {
        self.parents.last().unwrap_or(&self.certificate)
    }

    /// Its certificate followed by the ones above it.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        let mut out = Vec::with_capacity(1 + self.parents.len());
        out.push(self.certificate.clone());
        out.extend(self.parents.iter().cloned());
        out
    }
}

/// A CA's signing key, unsealed, with its record. Kept in memory by the
/// mount once loaded; never printed.
pub(crate) struct CaSigner {
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) record: CaRecord,
}

impl fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaSigner")
            .field("common_name", &self.record.common_name)
            .finish_non_exhaustive()
    }
}

/// The parameters a CA's certificate is made from, and that its issuer is
/// rebuilt from when its key is loaded (same subject, same key usages).
fn ca_params(common_name: &str, kind: CaKind) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(match kind {
        CaKind::Root => BasicConstraints::Unconstrained,
        CaKind::Intermediate => BasicConstraints::Constrained(0),
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = kind == CaKind::Intermediate;
    params
}

pub(crate) fn to_offset(t: Timestamp) -> Result<time::OffsetDateTime> {
    let secs = i64::try_from(t.as_secs())
        .map_err(|_| PkiError::cert(format!("time {t} is out of range")))?;
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(PkiError::cert)
}

/// The format byte of the CA key record's plaintext.
const CA_KEY_FORMAT: u8 = 1;

fn key_type_byte(key_type: KeyType) -> u8 {
    match key_type {
        KeyType::Ed25519 => 1,
        KeyType::EcdsaP256 => 2,
    }
}

/// The CA key record's plaintext: format, key type, then the PKCS#8 DER
/// document `ring` generated.
fn encode_ca_key(key_type: KeyType, key: &KeyPair) -> SecretBytes {
    let der = key.serialized_der();
    let mut out = Vec::with_capacity(2 + der.len());
    out.push(CA_KEY_FORMAT);
    out.push(key_type_byte(key_type));
    out.extend_from_slice(der);
    SecretBytes::new(out)
}

/// Loads a CA key record's plaintext, checking its format and that its
/// type is the one the CA record names.
fn decode_ca_key(key: &str, key_type: KeyType, plain: &SecretBytes) -> Result<KeyPair> {
    let bad = |reason: String| PkiError::BadRecord {
        key: key.to_owned(),
        reason,
    };
    match plain.expose_secret() {
        [CA_KEY_FORMAT, t, der @ ..] if *t == key_type_byte(key_type) => {
            KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der),
                key_type.algorithm(),
            )
            .map_err(|e| bad(format!("the CA's key does not load: {e}")))
        }
        [CA_KEY_FORMAT, ..] => Err(bad(format!(
            "the CA's key is not of the CA record's type {key_type}"
        ))),
        _ => Err(bad("unsupported CA key format".into())),
    }
}

impl Pki {
    /// Creates this mount's CA as a self-signed root (capability `sudo`
    /// on `pki/<mount>/ca`). Its key is generated here and sealed in the
    /// store; only the certificate is returned. Creation is a
    /// compare-and-set: if any process created this mount's CA first, this
    /// fails with [`PkiError::CaExists`] and the stored CA stays.
    pub async fn create_root(&self, handle: &Handle, spec: CaSpec) -> Result<CaCertificate> {
        let path = self.path("ca");
        audited(
            handle,
            Operation::Write,
            &path,
            &[Capability::Sudo],
            self.create(handle, spec, None),
            |ev, _| ev,
        )
        .await
    }

    /// Creates this mount's CA as an intermediate signed by `parent`'s CA
    /// (another mount of the same store; capability `sudo` on both
    /// `pki/<mount>/ca` and `pki/<parent>/ca`). As
    /// [`create_root`](Self::create_root) otherwise; it may not outlive
    /// its parent.
    pub async fn create_intermediate(
        &self,
        handle: &Handle,
        spec: CaSpec,
        parent: &Pki,
    ) -> Result<CaCertificate> {
        if parent.mount() == self.mount() {
            return Err(PkiError::InvalidRequest {
                reason: "an intermediate needs another mount's CA as its parent".into(),
            });
        }
        let parent_event = handle
            .admit_external(Operation::Write, &parent.path("ca"), &[Capability::Sudo])
            .await?;
        let result = audited(
            handle,
            Operation::Write,
            &self.path("ca"),
            &[Capability::Sudo],
            self.create(handle, spec, Some(parent)),
            |ev, _| ev,
        )
        .await;
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(e) => Err(PkiError::InvalidRequest {
                reason: format!("the intermediate was not created: {e}"),
            }),
        };
        // Only a failure to record comes back as a core error here.
        if let Err(PkiError::Core(audit)) =
            conclude(handle, parent_event, outcome, |ev, _| ev).await
        {
            return Err(PkiError::Core(audit));
        }
        result
    }

    async fn create(
        &self,
        handle: &Handle,
        spec: CaSpec,
        parent: Option<&Pki>,
    ) -> Result<CaCertificate> {
        if spec.common_name.is_empty() || spec.common_name.len() > 64 {
            return Err(PkiError::InvalidRequest {
                reason: "a CA's common name is 1 to 64 bytes".into(),
            });
        }
        if spec.ttl.as_secs() == 0 {
            return Err(PkiError::InvalidRequest {
                reason: "a CA's ttl must be at least one second".into(),
            });
        }
        let keys = &self.inner.keys;
        // Refuse early (the batch below decides races).
        if self.inner.barrier.get(&keys.ca()).await?.is_some() {
            return Err(PkiError::CaExists {
                mount: self.mount().to_owned(),
            });
        }
        let now = self.now();
        let not_after = now + spec.ttl;
        let kind = if parent.is_some() {
            CaKind::Intermediate
        } else {
            CaKind::Root
        };
        let key = spec.key_type.generate()?;
        let mut params = ca_params(&spec.common_name, kind);
        params.not_before = to_offset(now)?;
        params.not_after = to_offset(not_after)?;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(
            Serial::random()?.as_bytes(),
        ));
        let (cert, parents, parent_mount) = match parent {
            None => (
                params.self_signed(&key).map_err(PkiError::cert)?,
                vec![],
                None,
            ),
            Some(parent) => {
                let signer = parent.signer().await?;
                if not_after > signer.record.not_after {
                    return Err(PkiError::OutlivesCa {
                        requested: not_after,
                        ca_not_after: signer.record.not_after,
                    });
                }
                let cert = params
                    .signed_by(&key, &signer.issuer)
                    .map_err(PkiError::cert)?;
                let mut parents = vec![signer.record.cert.clone()];
                parents.extend(signer.record.parents.iter().cloned());
                (cert, parents, Some(parent.mount().to_owned()))
            }
        };
        let rec = CaRecord {
            format: FORMAT,
            kind,
            key_type: spec.key_type,
            common_name: spec.common_name.clone(),
            cert: cert.der().to_vec(),
            parents,
            parent_mount,
            not_before: now,
            not_after,
            created_by: handle.principal().name().to_owned(),
        };
        let pkcs8 = encode_ca_key(spec.key_type, &key);
        let (key_key, key_path) = keys.ca_key();
        let ctx = SealContext::new(&key_path, CA_KEY_CONTEXT_VERSION);
        let sealed_key = self
            .inner
            .door
            .sealed_put(&key_key, pkcs8.expose_secret(), &ctx)
            .await?;
        drop(pkcs8);
        let ops = vec![
            BatchOp::expect(keys.ca(), None),
            BatchOp::expect(key_key.clone(), None),
            BatchOp::put(keys.ca(), rec.encode()?),
            sealed_key,
        ];
        match self.inner.barrier.batch(ops).await {
            Ok(()) => {}
            Err(strongroom::Error::StorageConflict { .. }) => {
                return Err(PkiError::CaExists {
                    mount: self.mount().to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(CaCertificate::from_record(self.mount(), &rec))
    }

    /// This mount's CA certificate and chain (capability `read` on
    /// `pki/<mount>/ca`).
    pub async fn ca(&self, handle: &Handle) -> Result<CaCertificate> {
        audited(
            handle,
            Operation::Read,
            &self.path("ca"),
            &[Capability::Read],
            async {
                let rec = self.load_ca_record().await?;
                Ok(CaCertificate::from_record(self.mount(), &rec))
            },
            |ev, _| ev,
        )
        .await
    }

    pub(crate) async fn load_ca_record(&self) -> Result<CaRecord> {
        match record::read::<CaRecord>(&self.inner.barrier, &self.inner.keys.ca()).await? {
            Some((rec, _)) => Ok(rec),
            None => Err(PkiError::UnknownCa {
                mount: self.mount().to_owned(),
            }),
        }
    }

    /// The CA's signer, unsealed once per process and kept.
    pub(crate) async fn signer(&self) -> Result<Arc<CaSigner>> {
        self.inner
            .signer
            .get_or_try_init(|| async {
                let record = self.load_ca_record().await?;
                let (key_key, key_path) = self.inner.keys.ca_key();
                let ctx = SealContext::new(&key_path, CA_KEY_CONTEXT_VERSION);
                let sealed = self
                    .inner
                    .door
                    .get_sealed(&key_key, &ctx)
                    .await
                    .map_err(|e| record::storage_error(&key_key, e))?
                    .ok_or_else(|| PkiError::BadRecord {
                        key: key_key.clone(),
                        reason: "the CA's key record is missing".into(),
                    })?;
                let key = decode_ca_key(&key_key, record.key_type, &sealed)?;
                drop(sealed);
                let issuer = Issuer::new(ca_params(&record.common_name, record.kind), key);
                Ok(Arc::new(CaSigner { issuer, record }))
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_key_records_carry_format_and_type() {
        for kt in [KeyType::Ed25519, KeyType::EcdsaP256] {
            let key = kt.generate().unwrap();
            let plain = encode_ca_key(kt, &key);
            assert_eq!(plain.expose_secret()[..2], [1, key_type_byte(kt)]);
            let back = decode_ca_key("k", kt, &plain).unwrap();
            assert_eq!(back.public_key_raw(), key.public_key_raw());
        }
        let key = KeyType::Ed25519.generate().unwrap();
        let plain = encode_ca_key(KeyType::Ed25519, &key);
        let e = decode_ca_key("k", KeyType::EcdsaP256, &plain).unwrap_err();
        assert_eq!(e.kind(), "pki_bad_record");
        let mut v = plain.expose_secret().to_vec();
        v[0] = 2;
        let e = decode_ca_key("k", KeyType::Ed25519, &SecretBytes::new(v)).unwrap_err();
        assert_eq!(e.kind(), "pki_bad_record");
        let e = decode_ca_key("k", KeyType::Ed25519, &SecretBytes::new(vec![1, 1, 0])).unwrap_err();
        assert_eq!(e.kind(), "pki_bad_record");
    }
}
