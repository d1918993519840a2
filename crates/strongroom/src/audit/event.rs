//! What an audit record says happened: the event, its operation and
//! outcome, and the HMAC form in which values may appear.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::HMAC_PREFIX;
use crate::SecretBytes;
use crate::path::SecretPath;

/// An HMAC-SHA256 of a value under the store's audit value key, as
/// `hmac-sha256:<64 lower-case hex>`. The only form in which values,
/// passwords and tokens may appear in audit records. Obtain one from
/// [`AuditLog::hmac`](super::AuditLog::hmac).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AuditHmac(pub(super) String);

impl AuditHmac {
    /// The text, `hmac-sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(super) fn is_well_formed(s: &str) -> bool {
        s.strip_prefix(HMAC_PREFIX).is_some_and(|h| {
            h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }
}

impl fmt::Display for AuditHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AuditHmac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if Self::is_well_formed(&s) {
            Ok(Self(s))
        } else {
            Err(serde::de::Error::custom(
                "audit field values must be hmac-sha256:<64 hex>",
            ))
        }
    }
}

/// What was done (or attempted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// Read a secret's value.
    Read,
    /// Read a secret's metadata.
    ReadMetadata,
    /// Write a new secret or version.
    Write,
    /// Change a secret's metadata.
    WriteMetadata,
    /// List paths.
    List,
    /// Soft-delete versions.
    Delete,
    /// Undelete versions.
    Undelete,
    /// Destroy versions.
    Destroy,
    /// Rotate a secret or credential.
    Rotate,
    /// Issue a lease.
    LeaseIssue,
    /// Renew a lease.
    LeaseRenew,
    /// Revoke a lease.
    LeaseRevoke,
    /// Rotate the keyring.
    KeyringRotate,
    /// Rewrap values under a newer key.
    Rewrap,
    /// Unseal the store.
    Unseal,
    /// Seal the store.
    Seal,
    /// Change policies.
    PolicyChange,
    /// Revoke every lease under a path prefix.
    LeaseRevokePrefix,
    /// Remove a lease whatever its engine says.
    LeaseRevokeForce,
    /// Make an older key version primary again.
    KeyPromote,
    /// Retire key versions (raise the minimum decryption version).
    KeyRetire,
    /// Erase a retired key version.
    KeyDestroy,
    /// Replace the root key.
    RootKeyRotate,
    /// Read or verify the audit trail.
    AuditRead,
    /// Open the door to unchecked access ([`crate::dangerous`]).
    DangerousOpen,
    /// Create a signing key ([`crate::signing`]).
    SigningKeyCreate,
    /// Sign with a signing key.
    Sign,
    /// Verify a signature with a signing key.
    Verify,
    /// Ask for a gated operation to run ([`crate::approvals`]).
    ApprovalRequest,
    /// Approve an approval request.
    ApprovalApprove,
    /// Refuse an approval request.
    ApprovalRefuse,
    /// Use an approved request to run the operation it allows.
    ApprovalUse,
    /// Replace the approval gates.
    ApprovalGatesSet,
}

impl Operation {
    /// The snake_case name used in records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadMetadata => "read_metadata",
            Self::Write => "write",
            Self::WriteMetadata => "write_metadata",
            Self::List => "list",
            Self::Delete => "delete",
            Self::Undelete => "undelete",
            Self::Destroy => "destroy",
            Self::Rotate => "rotate",
            Self::LeaseIssue => "lease_issue",
            Self::LeaseRenew => "lease_renew",
            Self::LeaseRevoke => "lease_revoke",
            Self::KeyringRotate => "keyring_rotate",
            Self::Rewrap => "rewrap",
            Self::Unseal => "unseal",
            Self::Seal => "seal",
            Self::PolicyChange => "policy_change",
            Self::LeaseRevokePrefix => "lease_revoke_prefix",
            Self::LeaseRevokeForce => "lease_revoke_force",
            Self::KeyPromote => "key_promote",
            Self::KeyRetire => "key_retire",
            Self::KeyDestroy => "key_destroy",
            Self::RootKeyRotate => "root_key_rotate",
            Self::AuditRead => "audit_read",
            Self::DangerousOpen => "dangerous_open",
            Self::SigningKeyCreate => "signing_key_create",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::ApprovalRequest => "approval_request",
            Self::ApprovalApprove => "approval_approve",
            Self::ApprovalRefuse => "approval_refuse",
            Self::ApprovalUse => "approval_use",
            Self::ApprovalGatesSet => "approval_gates_set",
        }
    }

    /// Whether the operation hands out a secret value (counted as a read by
    /// the [`Inventory`](super::Inventory)).
    pub const fn reveals_secret(self) -> bool {
        matches!(self, Self::Read | Self::LeaseIssue)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// The policy allowed it (written before the operation runs).
    Allowed,
    /// The policy denied it.
    Denied,
    /// It failed.
    Error {
        /// A short machine-readable kind, e.g. `cas_conflict`, `not_found`.
        /// Never a message that could quote a value.
        kind: String,
    },
}

/// One operation to record. Build with [`AuditEvent::new`] and the `with_`
/// methods.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Who acted.
    pub principal: String,
    /// What they did.
    pub operation: Operation,
    /// On which path (absent for store-wide operations). Kept as text so
    /// that a request for an invalid path can be recorded as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The secret version concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The lease concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The caller's request id, to correlate records.
    pub request_id: String,
    /// Named HMACs of values (a value written, a token presented).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, AuditHmac>,
    /// When the operation began (set by [`AuditEvent::new`]; not recorded,
    /// not compared): the start of its duration in the metrics.
    #[serde(skip)]
    pub(crate) started: Option<std::time::Instant>,
}

/// Equal when every recorded field is; when the operation began is not one.
impl PartialEq for AuditEvent {
    fn eq(&self, other: &Self) -> bool {
        self.principal == other.principal
            && self.operation == other.operation
            && self.path == other.path
            && self.version == other.version
            && self.lease_id == other.lease_id
            && self.outcome == other.outcome
            && self.request_id == other.request_id
            && self.fields == other.fields
    }
}

impl Eq for AuditEvent {}

impl AuditEvent {
    /// An allowed event with no path; add details with the `with_` methods.
    pub fn new(
        principal: impl Into<String>,
        operation: Operation,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            principal: principal.into(),
            operation,
            path: None,
            version: None,
            lease_id: None,
            outcome: Outcome::Allowed,
            request_id: request_id.into(),
            fields: BTreeMap::new(),
            started: Some(std::time::Instant::now()),
        }
    }

    /// Sets the path.
    #[must_use]
    pub fn with_path(mut self, path: impl AsRef<str>) -> Self {
        self.path = Some(path.as_ref().to_owned());
        self
    }

    /// Sets the path from a validated path.
    #[must_use]
    pub fn with_secret_path(self, path: &SecretPath) -> Self {
        self.with_path(path.as_str())
    }

    /// Sets the secret version.
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets the lease id.
    #[must_use]
    pub fn with_lease_id(mut self, lease_id: impl Into<String>) -> Self {
        self.lease_id = Some(lease_id.into());
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Adds a named HMAC field.
    #[must_use]
    pub fn with_field(mut self, name: impl Into<String>, value: AuditHmac) -> Self {
        self.fields.insert(name.into(), value);
        self
    }
}

/// A random request id (16 random bytes as hex).
pub fn new_request_id() -> crate::Result<String> {
    let b = SecretBytes::random(16)?;
    Ok(hex::encode(b.expose_secret()))
}
