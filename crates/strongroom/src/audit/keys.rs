//! The chain and value keys derived from the store's audit key.

use ring::{hkdf, hmac};
use subtle::ConstantTimeEq;

use super::{AuditError, AuditHmac, AuditRecord, HMAC_PREFIX, MIN_AUDIT_KEY_BYTES};
use crate::SecretBytes;

/// `hmac-sha256:<hex>` of `value` under the value key derived from
/// `audit_key`: what [`AuditLog::hmac`](super::AuditLog::hmac) returns, for an auditor who holds
/// the audit key and a known value but no running log.
pub fn audit_hmac(audit_key: &SecretBytes, value: &[u8]) -> Result<AuditHmac, AuditError> {
    Ok(AuditKeys::derive(audit_key)?.value_hmac(value))
}

/// The two keys derived from the audit key.
pub(super) struct AuditKeys {
    chain: hmac::Key,
    value: hmac::Key,
}

impl AuditKeys {
    pub(super) fn derive(audit_key: &SecretBytes) -> Result<Self, AuditError> {
        if audit_key.len() < MIN_AUDIT_KEY_BYTES {
            return Err(AuditError::WeakKey {
                len: audit_key.len(),
            });
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"strongroom audit v1")
            .extract(audit_key.expose_secret());
        let key = |info: &'static [u8]| -> Result<hmac::Key, AuditError> {
            let infos = [info];
            let okm = prk
                .expand(&infos, hmac::HMAC_SHA256)
                .map_err(|_| AuditError::Encode("key derivation failed".into()))?;
            Ok(hmac::Key::from(okm))
        };
        Ok(Self {
            chain: key(b"chain mac")?,
            value: key(b"value hmac")?,
        })
    }

    pub(super) fn value_hmac(&self, value: &[u8]) -> AuditHmac {
        let tag = hmac::sign(&self.value, value);
        AuditHmac(format!("{HMAC_PREFIX}{}", hex::encode(tag.as_ref())))
    }

    pub(super) fn record_mac(&self, record: &AuditRecord) -> String {
        hex::encode(hmac::sign(&self.chain, &record.canonical()).as_ref())
    }

    /// Whether `record.mac` is exactly the text the writer produces for it:
    /// the MAC in lower-case hex. The text is compared (in constant time),
    /// not its decoding, so another encoding of the right MAC (upper case,
    /// mixed case) is rejected like a wrong MAC.
    pub(super) fn record_mac_ok(&self, record: &AuditRecord) -> bool {
        let expected = self.record_mac(record);
        expected.as_bytes().ct_eq(record.mac.as_bytes()).into()
    }
}
