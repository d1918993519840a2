//! Signing keys as a principal: [`SigningHandle`].

use std::fmt;
use std::sync::Arc;

use super::gate::{self, admit, change, conclude};
use crate::audit::{AuditEvent, AuditHmac, Operation};
use crate::policy::Capability;
use crate::signing::{
    EthSignature, KeyInfo, KeyOptions, KeyType, MESSAGE_HMAC_FIELD, PublicKey, RateLimit,
    Signature, SigningKeys,
};
use crate::{Handle, Result};

/// A principal's view of the [`SigningKeys`]: every call checked against
/// its policies on the key's name as a path, and audited (see the
/// [module docs](super)). Obtain one with [`Handle::signing`]. Cheap to
/// clone.
///
/// | method | capability | audit operation |
/// | --- | --- | --- |
/// | [`create_key`](Self::create_key) | `create` | `signing_key_create` |
/// | [`rotate_key`](Self::rotate_key) | `rotate` | `rotate` |
/// | [`set_min_verify_version`](Self::set_min_verify_version), [`set_rate_limit`](Self::set_rate_limit) | `update` | `write_metadata` |
/// | [`key_info`](Self::key_info), [`public_key`](Self::public_key), [`eth_address`](Self::eth_address) | `read` | `read_metadata` |
/// | [`sign`](Self::sign), [`eth_sign_personal_message`](Self::eth_sign_personal_message), [`eth_sign_transaction_hash`](Self::eth_sign_transaction_hash) | `sign` | `sign` |
/// | [`verify`](Self::verify) | `read` | `verify` |
///
/// Signing and verifying are audited like changes: the intent (with the
/// keyed HMAC of what is signed in field
/// [`MESSAGE_HMAC_FIELD`](crate::signing::MESSAGE_HMAC_FIELD), never the
/// message) before the key is used, then the outcome with the key version.
/// A signature is handed out only once its record is accepted.
#[derive(Clone)]
pub struct SigningHandle {
    handle: Handle,
    keys: Arc<SigningKeys>,
}

impl fmt::Debug for SigningHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningHandle")
            .field("principal", &self.handle.principal().name())
            .finish_non_exhaustive()
    }
}

impl SigningHandle {
    pub(crate) fn new(handle: Handle, keys: Arc<SigningKeys>) -> Self {
        Self { handle, keys }
    }

    /// The principal's handle this one acts through.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// A new event of `op` on key `name`, checked for `cap`.
    async fn admit(&self, op: Operation, name: &str, cap: Capability) -> Result<AuditEvent> {
        let event = gate::event(&self.handle, op)?.with_path(name);
        admit(&self.handle, &event, name, &[cap]).await?;
        Ok(event)
    }

    fn hmac(&self, msg: &[u8]) -> AuditHmac {
        self.handle.audit_log().hmac(msg)
    }

    /// Creates key `name` ([`SigningKeys::create_key`]; capability
    /// `create`). The result record carries version 1.
    #[tracing::instrument(name = "SigningHandle::create_key", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn create_key(
        &self,
        name: &str,
        key_type: KeyType,
        options: KeyOptions,
    ) -> Result<KeyInfo> {
        let event = self
            .admit(Operation::SigningKeyCreate, name, Capability::Create)
            .await?;
        let run = self.keys.create_key(name, key_type, options);
        change(&self.handle, event, run, |i| {
            Some(u64::from(i.latest_version))
        })
        .await
    }

    /// Adds a version to key `name` ([`SigningKeys::rotate_key`];
    /// capability `rotate`). The result record carries the new version.
    #[tracing::instrument(name = "SigningHandle::rotate_key", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn rotate_key(&self, name: &str) -> Result<KeyInfo> {
        let event = self
            .admit(Operation::Rotate, name, Capability::Rotate)
            .await?;
        change(&self.handle, event, self.keys.rotate_key(name), |i| {
            Some(u64::from(i.latest_version))
        })
        .await
    }

    /// Raises key `name`'s minimum verify version
    /// ([`SigningKeys::set_min_verify_version`]; capability `update`).
    #[tracing::instrument(name = "SigningHandle::set_min_verify_version", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn set_min_verify_version(&self, name: &str, version: u32) -> Result<KeyInfo> {
        let event = self
            .admit(Operation::WriteMetadata, name, Capability::Update)
            .await?;
        let run = self.keys.set_min_verify_version(name, version);
        change(&self.handle, event, run, |i| {
            Some(u64::from(i.min_verify_version))
        })
        .await
    }

    /// Sets or removes key `name`'s rate limit
    /// ([`SigningKeys::set_rate_limit`]; capability `update`).
    #[tracing::instrument(name = "SigningHandle::set_rate_limit", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn set_rate_limit(&self, name: &str, limit: Option<RateLimit>) -> Result<KeyInfo> {
        let event = self
            .admit(Operation::WriteMetadata, name, Capability::Update)
            .await?;
        change(
            &self.handle,
            event,
            self.keys.set_rate_limit(name, limit),
            |_| None,
        )
        .await
    }

    /// What is known about key `name` ([`SigningKeys::key_info`];
    /// capability `read`).
    #[tracing::instrument(name = "SigningHandle::key_info", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn key_info(&self, name: &str) -> Result<KeyInfo> {
        let event = self
            .admit(Operation::ReadMetadata, name, Capability::Read)
            .await?;
        let result = self.keys.key_info(name).await;
        conclude(&self.handle, event, result, |ev, i| {
            ev.with_version(u64::from(i.latest_version))
        })
        .await
    }

    /// The public key of a version of key `name`
    /// ([`SigningKeys::public_key`]; capability `read`).
    #[tracing::instrument(name = "SigningHandle::public_key", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn public_key(&self, name: &str, version: Option<u32>) -> Result<PublicKey> {
        let event = self
            .admit(Operation::ReadMetadata, name, Capability::Read)
            .await?;
        let result = self.keys.public_key(name, version).await;
        conclude(&self.handle, event, result, |ev, k| {
            ev.with_version(u64::from(k.version()))
        })
        .await
    }

    /// The Ethereum address of a version of the secp256k1 key `name`
    /// ([`SigningKeys::eth_address`]; capability `read`).
    #[tracing::instrument(name = "SigningHandle::eth_address", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn eth_address(&self, name: &str, version: Option<u32>) -> Result<String> {
        let event = self
            .admit(Operation::ReadMetadata, name, Capability::Read)
            .await?;
        let result = self.keys.eth_address(name, version).await;
        conclude(&self.handle, event, result, |ev, _| ev).await
    }

    /// Signs `msg` with the newest version of key `name`
    /// ([`SigningKeys::sign`]; capability `sign`).
    #[tracing::instrument(name = "SigningHandle::sign", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn sign(&self, name: &str, msg: &[u8]) -> Result<Signature> {
        let event = self.admit(Operation::Sign, name, Capability::Sign).await?;
        let event = event.with_field(MESSAGE_HMAC_FIELD, self.hmac(msg));
        change(&self.handle, event, self.keys.sign(name, msg), |s| {
            Some(u64::from(s.version()))
        })
        .await
    }

    /// Verifies `sig` of `msg` with key `name` ([`SigningKeys::verify`];
    /// capability `read`): `Ok(false)` for a signature that does not
    /// verify, a typed error for an unknown or retired version.
    #[tracing::instrument(name = "SigningHandle::verify", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn verify(&self, name: &str, msg: &[u8], sig: &Signature) -> Result<bool> {
        let event = self
            .admit(Operation::Verify, name, Capability::Read)
            .await?
            .with_field(MESSAGE_HMAC_FIELD, self.hmac(msg))
            .with_version(u64::from(sig.version()));
        let result = self.keys.verify(name, msg, sig).await;
        conclude(&self.handle, event, result, |ev, _| ev).await
    }

    /// Signs the EIP-191 personal message `msg` with the secp256k1 key
    /// `name` ([`SigningKeys::eth_sign_personal_message`]; capability
    /// `sign`). The records carry the HMAC of `msg`.
    #[tracing::instrument(name = "SigningHandle::eth_sign_personal_message", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn eth_sign_personal_message(&self, name: &str, msg: &[u8]) -> Result<EthSignature> {
        let event = self.admit(Operation::Sign, name, Capability::Sign).await?;
        let event = event.with_field(MESSAGE_HMAC_FIELD, self.hmac(msg));
        let run = self.keys.eth_sign_personal_message(name, msg);
        change(&self.handle, event, run, |s| Some(u64::from(s.version()))).await
    }

    /// Signs an EIP-155 transaction hash with the secp256k1 key `name`
    /// ([`SigningKeys::eth_sign_transaction_hash`]; capability `sign`).
    /// The records carry the HMAC of the hash.
    #[tracing::instrument(name = "SigningHandle::eth_sign_transaction_hash", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn eth_sign_transaction_hash(
        &self,
        name: &str,
        hash: &[u8; 32],
        chain_id: u64,
    ) -> Result<EthSignature> {
        let event = self.admit(Operation::Sign, name, Capability::Sign).await?;
        let event = event.with_field(MESSAGE_HMAC_FIELD, self.hmac(hash));
        let run = self.keys.eth_sign_transaction_hash(name, hash, chain_id);
        change(&self.handle, event, run, |s| Some(u64::from(s.version()))).await
    }
}
