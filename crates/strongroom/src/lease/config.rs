//! A manager's settings: limits, quotas, claims, retries and events.

use super::*;

/// A limit on live leases under a path prefix (whole segments:
/// `database/creds` counts `database/creds/readonly`, not `database/credsx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixQuota {
    /// The path prefix.
    pub prefix: String,
    /// The most live leases allowed under it.
    pub max_leases: u64,
}

impl PrefixQuota {
    /// A quota of `max_leases` under `prefix`.
    pub fn new(prefix: impl Into<String>, max_leases: u64) -> Self {
        Self {
            prefix: prefix.into(),
            max_leases,
        }
    }
}

/// How failed revocations are retried.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Delay after the first failure; doubled after each further failure.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Random reduction of each delay, from 0.0 (none) to 1.0 (anywhere
    /// between zero and the full delay), so retries of many leases spread out.
    pub jitter: f64,
    /// Failed attempts after which a lease becomes irrevocable (at least 1).
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// These settings as the library's [`Backoff`](crate::backoff::Backoff).
    pub fn backoff(&self) -> crate::backoff::Backoff {
        crate::backoff::Backoff::new(self.base, self.max).with_jitter(self.jitter)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: 0.2,
            max_attempts: 8,
        }
    }
}

/// Settings of a [`LeaseManager`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// The most live leases in the store (`None`: unlimited). Live means
    /// active, being revoked or irrevocable.
    pub max_leases: Option<u64>,
    /// Limits under path prefixes.
    pub prefix_quotas: Vec<PrefixQuota>,
    /// When [`LeaseEvent::ExpiringSoon`] is sent, as the fraction of the
    /// lease's TTL (from issue or last renewal) that has passed, in (0, 1);
    /// `None` sends none.
    pub expiring_soon_fraction: Option<f64>,
    /// Retries of failed revocations.
    pub retry: RetryPolicy,
    /// How far ahead of now the in-memory index reaches. Leases due later
    /// stay in storage only and are loaded as the horizon moves.
    pub restore_horizon: Duration,
    /// How long one call to a revoker may take before it counts as failed.
    pub revoke_timeout: Duration,
    /// Events buffered per subscriber before a slow one misses some.
    pub event_capacity: usize,
    /// This manager's member id, the owner named in its claims. Default
    /// (`None`): a random id per manager. Give a process a stable id (1 to
    /// 64 characters from `A-Z a-z 0-9 . _ : -`) so that, started again, it
    /// takes back the claims it held when it stopped without waiting for
    /// them to lapse. Two live managers must never share an id.
    pub member_id: Option<String>,
    /// How long a claim on a due lease lasts without renewal. The holder
    /// renews it while the revoker runs; a member that dies loses its claims
    /// to the others this long after its last renewal. Default 30 s.
    pub claim_ttl: Duration,
    /// How often the stored expiry index is read again for leases that
    /// other managers issued or renewed, or that a dead member had claimed.
    /// Default 10 s.
    pub rescan_interval: Duration,
    /// The audit log the manager appends its own records to, synchronously
    /// and before each effect, failing closed (see "Auditing" in the
    /// [module docs](super); [`LeaseManager::with_audit`] sets it). Default
    /// none: nothing is audited by the manager itself.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
}

impl PartialEq for LeaseConfig {
    /// Settings are equal field by field; audit logs by identity.
    fn eq(&self, other: &Self) -> bool {
        let Self {
            max_leases,
            prefix_quotas,
            expiring_soon_fraction,
            retry,
            restore_horizon,
            revoke_timeout,
            event_capacity,
            member_id,
            claim_ttl,
            rescan_interval,
            audit,
        } = self;
        *max_leases == other.max_leases
            && *prefix_quotas == other.prefix_quotas
            && *expiring_soon_fraction == other.expiring_soon_fraction
            && *retry == other.retry
            && *restore_horizon == other.restore_horizon
            && *revoke_timeout == other.revoke_timeout
            && *event_capacity == other.event_capacity
            && *member_id == other.member_id
            && *claim_ttl == other.claim_ttl
            && *rescan_interval == other.rescan_interval
            && match (audit, &other.audit) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            max_leases: None,
            prefix_quotas: Vec::new(),
            expiring_soon_fraction: Some(0.75),
            retry: RetryPolicy::default(),
            restore_horizon: Duration::from_secs(600),
            revoke_timeout: Duration::from_secs(30),
            event_capacity: 1024,
            member_id: None,
            claim_ttl: Duration::from_secs(30),
            rescan_interval: Duration::from_secs(10),
            audit: None,
        }
    }
}

impl LeaseConfig {
    pub(super) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("lease config: {m}")));
        if let Some(f) = self.expiring_soon_fraction
            && !(f > 0.0 && f < 1.0)
        {
            return bad("expiring_soon_fraction must be between 0 and 1 (exclusive)");
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return bad("retry.jitter must be between 0.0 and 1.0");
        }
        if self.retry.max_attempts == 0 {
            return bad("retry.max_attempts must be at least 1");
        }
        if self.retry.base.is_zero() || self.retry.max < self.retry.base {
            return bad("retry.base must be positive and at most retry.max");
        }
        if self.restore_horizon < Duration::from_millis(2) {
            return bad("restore_horizon must be at least 2 ms");
        }
        if self.event_capacity == 0 {
            return bad("event_capacity must be at least 1");
        }
        if self.claim_ttl < Duration::from_millis(30) {
            return bad("claim_ttl must be at least 30 ms");
        }
        if self.rescan_interval.is_zero() {
            return bad("rescan_interval must be positive");
        }
        if let Some(id) = &self.member_id {
            claim::validate_member_id(id)?;
        }
        for q in &self.prefix_quotas {
            if !q.prefix.is_empty() {
                validate_path(&q.prefix)?;
            }
        }
        Ok(())
    }
}
