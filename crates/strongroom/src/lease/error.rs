//! The lease errors, and which quota a refusal names.

use super::*;

/// Errors of the leases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// No lease with this id exists (never issued, or already revoked).
    #[error("lease {id} not found: it was never issued or has been revoked")]
    NotFound {
        /// The lease id.
        id: LeaseId,
    },

    /// The text is not a lease id.
    #[error("invalid lease id {text:?}: expected 'lease_' followed by 32 lower-case hex digits")]
    InvalidId {
        /// The text as given (ids are not secret).
        text: String,
    },

    /// The lease was issued as not renewable.
    #[error("lease {id} is not renewable; request a new lease instead")]
    NotRenewable {
        /// The lease id.
        id: LeaseId,
    },

    /// The lease has already expired; it will be (or is being) revoked.
    #[error("lease {id} expired at {expired_at}; request a new lease instead")]
    Expired {
        /// The lease id.
        id: LeaseId,
        /// When it expired.
        expired_at: Timestamp,
    },

    /// The lease is being revoked or is irrevocable, so it cannot be renewed.
    #[error("lease {id} is {state} and cannot be renewed; request a new lease instead")]
    NotActive {
        /// The lease id.
        id: LeaseId,
        /// Its state.
        state: LeaseState,
    },

    /// Issuing would exceed a lease quota.
    #[error(
        "lease quota exceeded: {scope} allows {limit} live lease(s) and {count} exist; revoke leases or raise the quota"
    )]
    QuotaExceeded {
        /// Which quota refused the lease.
        scope: QuotaScope,
        /// The quota's limit.
        limit: u64,
        /// Live leases counted against it now.
        count: u64,
    },

    /// No revoker is registered for the lease's engine.
    #[error("no revoker is registered for engine {engine:?}; call register_revoker first")]
    NoRevoker {
        /// The engine name.
        engine: String,
    },

    /// A TTL argument cannot be used.
    #[error("invalid ttl: {reason}")]
    InvalidTtl {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An engine name cannot be used.
    #[error(
        "invalid engine name {engine:?}: use 1 to {MAX_ENGINE_LEN} characters from a-z, 0-9, '-', '_'"
    )]
    InvalidEngine {
        /// The engine name as given.
        engine: String,
    },

    /// The engine failed to revoke the lease; the manager retries it later.
    #[error(
        "revoking lease {id} failed (attempt {attempts}): {reason}; the manager retries at {next_try}"
    )]
    RevocationDeferred {
        /// The lease id.
        id: LeaseId,
        /// Failed attempts so far.
        attempts: u32,
        /// When the manager tries again.
        next_try: Timestamp,
        /// The engine's error message.
        reason: String,
    },

    /// Revocation failed too often: the lease is irrevocable until revoked
    /// again successfully or forced with [`LeaseManager::force_revoke`].
    #[error(
        "lease {id} is irrevocable after {attempts} failed revocation attempts ({reason}); fix the engine and revoke again, or force_revoke it"
    )]
    Irrevocable {
        /// The lease id.
        id: LeaseId,
        /// Failed attempts so far.
        attempts: u32,
        /// The engine's last error message.
        reason: String,
    },

    /// A revoker failed for a reason of its own (a binding's callback threw,
    /// a target system refused). Revokers return this; the manager turns it
    /// into a retry and, after too many, [`LeaseError::Irrevocable`].
    #[error("the revoker of engine {engine:?} failed: {reason}")]
    RevokerFailed {
        /// The engine name.
        engine: String,
        /// What went wrong (never a secret).
        reason: String,
    },
}

/// The quota a refused lease ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaScope {
    /// The store-wide limit, [`LeaseConfig::max_leases`].
    Total,
    /// A [`PrefixQuota`] on a path prefix.
    Prefix(String),
}

impl fmt::Display for QuotaScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Total => f.write_str("the store-wide quota"),
            Self::Prefix(p) => write!(f, "the quota on prefix {p:?}"),
        }
    }
}
