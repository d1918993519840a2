//! What a manager reports: lease events and the summaries of its runs.

use super::*;

/// What happened to a lease. Events never carry revocation data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseEvent {
    /// A lease was issued.
    Issued {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// When it expires.
        expires_at: Timestamp,
    },
    /// A lease was renewed.
    Renewed {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// Its new expiry.
        expires_at: Timestamp,
        /// Whether the max TTL cut the renewal short.
        capped: bool,
    },
    /// The configured fraction of a lease's TTL has passed: refresh now.
    ExpiringSoon {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// When it expires.
        expires_at: Timestamp,
    },
    /// A lease was revoked.
    Revoked {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// Whether it was forced (the engine may not have revoked it).
        forced: bool,
    },
    /// Revocation failed too often; an operator must act.
    Irrevocable {
        /// The lease id.
        id: LeaseId,
        /// Its path.
        path: String,
        /// Failed attempts.
        attempts: u32,
        /// The engine's last error message.
        reason: String,
    },
}

/// What [`LeaseManager::run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DueReport {
    /// Leases revoked.
    pub revoked: usize,
    /// Revocations that failed and were scheduled again.
    pub deferred: usize,
    /// Leases that became irrevocable.
    pub irrevocable: usize,
    /// Expiring-soon events sent.
    pub expiring_soon: usize,
    /// Entries whose processing hit a storage error, or whose audit record
    /// was refused (retried later).
    pub errors: usize,
}

/// What [`LeaseManager::revoke_prefix`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrefixRevocation {
    /// Leases revoked.
    pub revoked: Vec<LeaseId>,
    /// Leases whose revocation failed and is being retried or is irrevocable.
    pub pending: Vec<LeaseId>,
}

/// What [`LeaseManager::restore`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreStats {
    /// Index entries due within the horizon, now in memory.
    pub loaded: usize,
    /// Live leases in storage (from the per-path counts).
    pub live_leases: u64,
}

/// A snapshot of the manager's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStats {
    /// Index entries held in memory.
    pub in_memory: usize,
    /// Live leases in the store.
    pub live_leases: u64,
    /// Every lease due at or before this time is in memory.
    pub loaded_until: Timestamp,
}
