//! What gates and requests are: the gated operations, a request and its
//! states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ApprovalError;
use crate::clock::Timestamp;

/// The storage key of the system path key operations are gated on.
pub const KEYRING_TARGET: &str = "sys/keyring";
/// The path [`GatedOperation::ApplyConfig`] is gated on (the applied
/// record's key, [`crate::declarative::DECLARED_RECORD`]).
pub const APPLY_TARGET: &str = crate::declarative::DECLARED_RECORD;

/// An operation that a gate can hold until enough approvers agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GatedOperation {
    /// Destroying secret versions for good ([`Handle::destroy`](crate::Handle::destroy))
    /// or a secret with all its versions ([`Handle::delete_metadata`](crate::Handle::delete_metadata)).
    Destroy,
    /// Replacing the root key ([`KeyAdmin::rotate_root_key`](crate::authorized::KeyAdmin::rotate_root_key)).
    RootKeyRotate,
    /// Erasing a retired key version ([`KeyAdmin::destroy`](crate::authorized::KeyAdmin::destroy)).
    KeyDestroy,
    /// Reading a secret whose path a gate of this operation matches
    /// ([`Handle::read`](crate::Handle::read), [`Handle::read_version`](crate::Handle::read_version)).
    SensitiveRead,
    /// Applying declared configuration (checked with [`require`](super::require)
    /// by the code that applies).
    ApplyConfig,
}

impl GatedOperation {
    /// Every gated operation.
    pub const ALL: [Self; 5] = [
        Self::Destroy,
        Self::RootKeyRotate,
        Self::KeyDestroy,
        Self::SensitiveRead,
        Self::ApplyConfig,
    ];

    /// The `snake_case` name used in gates files, records and errors.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Destroy => "destroy",
            Self::RootKeyRotate => "root_key_rotate",
            Self::KeyDestroy => "key_destroy",
            Self::SensitiveRead => "sensitive_read",
            Self::ApplyConfig => "apply_config",
        }
    }

    /// For a store-wide operation, the one system path it acts on
    /// (`sys/keyring` for the key operations, `sys/declared` for applying
    /// configuration); `None` for operations on secret paths.
    pub const fn system_target(self) -> Option<&'static str> {
        match self {
            Self::RootKeyRotate | Self::KeyDestroy => Some(KEYRING_TARGET),
            Self::ApplyConfig => Some(APPLY_TARGET),
            Self::Destroy | Self::SensitiveRead => None,
        }
    }
}

impl fmt::Display for GatedOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GatedOperation {
    type Err = ApprovalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| ApprovalError::InvalidRequest {
                reason: "unknown operation: use destroy, root_key_rotate, key_destroy, sensitive_read or apply_config".into(),
            })
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Enough approvers agreed; not yet used.
    Approved,
    /// An approver refused it; it never runs.
    Refused,
    /// It ran (once).
    Used,
    /// Its time to live ran out before it was used.
    Expired,
}

impl RequestState {
    /// `pending`, `approved`, `refused`, `used` or `expired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Refused => "refused",
            Self::Used => "used",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One approver's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The approver.
    pub principal: String,
    /// When (the store's clock).
    pub at: Timestamp,
}

/// A request to run one gated operation on one path once, and what the
/// approvers said. Read with [`Approvals::get`](super::Approvals::get).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalRequest {
    /// The request id (32 lower-case hex digits).
    pub id: String,
    /// The operation it allows.
    pub operation: GatedOperation,
    /// The path it allows it on (canonical; the system path for the key
    /// operations and configuration).
    pub path: String,
    /// Who asked (and alone may use it).
    pub requester: String,
    /// Why, as the requester wrote it (kept in the request record, never
    /// in the audit trail).
    pub reason: String,
    /// When it was made.
    pub created: Timestamp,
    /// When it expires unless used.
    pub expires: Timestamp,
    /// Where it stands, as of the read (a pending or approved request
    /// past its expiry reads as [`RequestState::Expired`]).
    pub state: RequestState,
    /// The approvals, in order.
    pub approvals: Vec<Decision>,
    /// The refusals (at most one ends it; kept as a list for the record).
    pub refusals: Vec<Decision>,
    /// Who used it, once used.
    pub used_by: Option<String>,
}
