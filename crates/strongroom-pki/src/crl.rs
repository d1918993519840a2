//! Revocation: the revoker the lease manager calls, the revoked set, and
//! the CRL the CA signs from it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams};
use rustls_pki_types::CertificateRevocationListDer;
use strongroom::Handle;
use strongroom::audit::Operation;
use strongroom::clock::{Clock, Timestamp};
use strongroom::lease::{Lease, LeaseId, Revoker};
use strongroom::policy::Capability;
use strongroom::storage::{BatchOp, DynStorage};

use crate::Serial;
use crate::ca::to_offset;
use crate::engine::{Pki, PkiOptions, audited, whole_seconds};
use crate::error::{PkiError, Result};
use crate::issue::RevocationData;
use crate::record::{
    self, CertRecord, CrlRecord, FORMAT, Keys, Record, RevokedEntry, RevokedRecord,
};

/// A signed certificate revocation list.
#[derive(Clone, PartialEq, Eq)]
pub struct Crl {
    /// The CRL, DER.
    pub der: CertificateRevocationListDer<'static>,
    /// Its CRL number: larger for every newer CRL of the mount.
    pub number: u64,
    /// When it was signed.
    pub this_update: Timestamp,
    /// When it stops being current.
    pub next_update: Timestamp,
    /// The serials it lists.
    pub serials: Vec<Serial>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl")
            .field("number", &self.number)
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("serials", &self.serials)
            .finish_non_exhaustive()
    }
}

/// Marks a certificate's serial revoked when its lease is revoked or
/// expires (registered per mount by [`Pki::new`]).
pub(crate) struct CertRevoker {
    pub(crate) mount: String,
    pub(crate) keys: Keys,
    pub(crate) barrier: DynStorage,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: PkiOptions,
}

impl fmt::Debug for CertRevoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertRevoker")
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Revoker for CertRevoker {
    async fn revoke(&self, lease: &Lease) -> strongroom::Result<()> {
        self.mark_revoked(lease).await.map_err(|e| match e {
            PkiError::Core(e) => e,
            other => strongroom::Error::InvalidArgument(other.to_string()),
        })
    }
}

impl CertRevoker {
    /// Adds the lease's serial to the revoked set (unless the certificate
    /// has expired anyway) and removes its live record, in one
    /// compare-and-set batch, retried on conflict. Idempotent.
    async fn mark_revoked(&self, lease: &Lease) -> Result<()> {
        let data: RevocationData =
            serde_json::from_slice(lease.revocation_data()).map_err(|e| PkiError::BadRecord {
                key: format!("lease {}", lease.id()),
                reason: format!("revocation data: {e}"),
            })?;
        let serial = Serial::from_hex(&data.serial)?;
        let cert_key = self.keys.cert(&serial.to_hex());
        let revoked_key = self.keys.revoked();
        let mut retries = self.options.retry.retries();
        loop {
            let now = whole_seconds(self.clock.now());
            let current = record::read::<RevokedRecord>(&self.barrier, &revoked_key).await?;
            let (mut set, expected) = match current {
                Some((set, plain)) => (set, Some(plain)),
                None => (
                    RevokedRecord {
                        format: FORMAT,
                        ..RevokedRecord::default()
                    },
                    None,
                ),
            };
            let before = set.clone();
            set.entries.retain(|_, e| e.not_after > now);
            if data.not_after > now {
                set.entries.entry(serial.to_hex()).or_insert(RevokedEntry {
                    revoked_at: now,
                    not_after: data.not_after,
                });
            }
            let mut ops = vec![BatchOp::delete(cert_key.clone())];
            if set != before {
                set.revision = before.revision.saturating_add(1);
                ops.push(BatchOp::expect(revoked_key.clone(), expected));
                ops.push(BatchOp::put(revoked_key.clone(), set.encode()?));
            }
            match self.barrier.batch(ops).await {
                Ok(()) => return Ok(()),
                Err(strongroom::Error::StorageConflict { .. })
                    if retries.attempts() + 1 < self.options.max_attempts =>
                {
                    tokio::time::sleep(retries.next_delay()).await;
                }
                Err(strongroom::Error::StorageConflict { .. }) => {
                    return Err(PkiError::Contended {
                        key: revoked_key,
                        attempts: self.options.max_attempts,
                    });
                }
                Err(e) => return Err(record::storage_error(&revoked_key, e)),
            }
        }
    }
}

impl Pki {
    /// Revokes the live certificate `serial` through its lease: the same
    /// as revoking the lease through
    /// [`Handle::leases`](strongroom::Handle::leases) (capability `lease`
    /// on the lease's path, audit operation `lease_revoke`). The serial is
    /// on the next [`crl`](Self::crl).
    pub async fn revoke(&self, handle: &Handle, serial: &Serial) -> Result<LeaseId> {
        let key = self.inner.keys.cert(&serial.to_hex());
        let Some((rec, _)) = record::read::<CertRecord>(&self.inner.barrier, &key).await? else {
            return Err(PkiError::UnknownCertificate {
                mount: self.mount().to_owned(),
                serial: serial.to_hex(),
            });
        };
        let id: LeaseId =
            rec.lease_id
                .parse()
                .map_err(|e: strongroom::Error| PkiError::BadRecord {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
        handle.leases(&self.inner.manager).revoke(id).await?;
        Ok(id)
    }

    /// The mount's current CRL (capability `read` on `pki/<mount>/crl`),
    /// signed by its CA. A new one is signed, with the next CRL number,
    /// when the revoked set changed since the stored one, a serial on it
    /// expired, or half of [`PkiOptions::crl_lifetime`] has passed;
    /// otherwise the stored one is returned. Entries are left out (and
    /// pruned from the set) once the certificate they name has expired. Processes sharing the store agree on one CRL
    /// per number (compare-and-set).
    pub async fn crl(&self, handle: &Handle) -> Result<Crl> {
        audited(
            handle,
            Operation::Read,
            &self.path("crl"),
            &[Capability::Read],
            self.current_crl(),
            |ev, _| ev,
        )
        .await
    }

    async fn current_crl(&self) -> Result<Crl> {
        let keys = &self.inner.keys;
        let (crl_key, revoked_key) = (keys.crl(), keys.revoked());
        let lifetime = self.inner.options.crl_lifetime;
        let mut retries = self.inner.options.retry.retries();
        loop {
            let now = self.now();
            let (mut revoked, revoked_plain) =
                match record::read::<RevokedRecord>(&self.inner.barrier, &revoked_key).await? {
                    Some((r, plain)) => (r, Some(plain)),
                    None => (RevokedRecord::default(), None),
                };
            let stored = record::read::<CrlRecord>(&self.inner.barrier, &crl_key).await?;
            // Entries whose certificate has expired leave the set (and the CRL).
            let before = revoked.entries.len();
            revoked.entries.retain(|_, e| e.not_after > now);
            let pruned = revoked.entries.len() != before;
            if let Some((crl, _)) = &stored
                && !pruned
                && crl.revision == revoked.revision
                && now < crl.this_update + lifetime / 2
            {
                return to_crl(&crl_key, crl);
            }
            let mut ops = Vec::new();
            if pruned {
                revoked.format = FORMAT;
                revoked.revision = revoked.revision.saturating_add(1);
                ops.push(BatchOp::expect(revoked_key.clone(), revoked_plain));
                ops.push(BatchOp::put(revoked_key.clone(), revoked.encode()?));
            }
            let number = stored
                .as_ref()
                .map_or(0, |(c, _)| c.number)
                .saturating_add(1);
            let signer = self.signer().await?;
            let mut revoked_certs = Vec::new();
            for (hex, entry) in &revoked.entries {
                let serial = Serial::from_hex(hex)?;
                revoked_certs.push(RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(serial.as_bytes()),
                    revocation_time: to_offset(entry.revoked_at)?,
                    reason_code: None,
                    invalidity_date: None,
                });
            }
            let next_update = now + lifetime;
            let params = CertificateRevocationListParams {
                this_update: to_offset(now)?,
                next_update: to_offset(next_update)?,
                crl_number: rcgen::SerialNumber::from(number),
                issuing_distribution_point: None,
                revoked_certs,
                key_identifier_method: KeyIdMethod::Sha256,
            };
            let signed = params.signed_by(&signer.issuer).map_err(PkiError::cert)?;
            let rec = CrlRecord {
                format: FORMAT,
                number,
                revision: revoked.revision,
                this_update: now,
                next_update,
                der: signed.der().to_vec(),
            };
            ops.push(BatchOp::expect(
                crl_key.clone(),
                stored.map(|(_, plain)| plain),
            ));
            ops.push(BatchOp::put(crl_key.clone(), rec.encode()?));
            match self.inner.barrier.batch(ops).await {
                Ok(()) => return to_crl(&crl_key, &rec),
                Err(strongroom::Error::StorageConflict { .. })
                    if retries.attempts() + 1 < self.inner.options.max_attempts =>
                {
                    tokio::time::sleep(retries.next_delay()).await;
                }
                Err(strongroom::Error::StorageConflict { .. }) => {
                    return Err(PkiError::Contended {
                        key: crl_key,
                        attempts: self.inner.options.max_attempts,
                    });
                }
                Err(e) => return Err(record::storage_error(&crl_key, e)),
            }
        }
    }
}

/// The public form of a stored CRL; the serials are read back from the
/// signed CRL itself.
fn to_crl(key: &str, rec: &CrlRecord) -> Result<Crl> {
    let bad = |reason: String| PkiError::BadRecord {
        key: key.to_owned(),
        reason,
    };
    let (_, parsed) =
        x509_parser::parse_x509_crl(&rec.der).map_err(|e| bad(format!("CRL: {e}")))?;
    let serials = parsed
        .iter_revoked_certificates()
        .map(|r| Serial::from_bytes(r.raw_serial()))
        .collect();
    Ok(Crl {
        der: CertificateRevocationListDer::from(rec.der.clone()),
        number: rec.number,
        this_update: rec.this_update,
        next_update: rec.next_update,
        serials,
    })
}
