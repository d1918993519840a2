//! What a caller plugs in: the rotator for a target, the audit hook, and
//! the engine's options.

use super::*;

/// The hook the audit trail connects to. Called for every event before the
/// engine acts on it; an error refuses the step (fail closed).
#[async_trait]
pub trait RotationAudit: Send + Sync + fmt::Debug {
    /// Records one event.
    async fn record(&self, event: &RotationEvent) -> std::result::Result<(), String>;
}

/// An error from a [`Rotator`]. Its message must never contain a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    pub(super) message: String,
    pub(super) retryable: bool,
}

impl TargetError {
    /// An error worth retrying (a timeout, a lost connection).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// An error that retrying will not fix (a refused permission).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a [`Rotator`] is told about the rotation it takes part in.
#[derive(Debug)]
pub struct RotationContext<'a> {
    /// The credential name.
    pub credential: &'a str,
    /// The version being worked on.
    pub version: u64,
    /// The current version, if any.
    pub current: Option<&'a Credential>,
    /// The previous version, if any.
    pub previous: Option<&'a Credential>,
}

/// How to rotate a credential in one kind of target system. Every method
/// must be idempotent: after a crash the engine repeats the recorded step.
#[async_trait]
pub trait Rotator: Send + Sync + fmt::Debug {
    /// A short name of the target kind ("postgres-alternating", "api-key").
    fn kind(&self) -> &'static str;

    /// Generates a fresh credential (no effect on the target yet).
    async fn create(
        &self,
        ctx: &RotationContext<'_>,
    ) -> std::result::Result<Credential, TargetError>;

    /// Installs `pending` in the target system.
    async fn set(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> std::result::Result<(), TargetError>;

    /// Checks that `pending` works in the target system.
    async fn test(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> std::result::Result<(), TargetError>;

    /// Called when `promoted` becomes current (`ctx.current` is the version
    /// it replaces). Default: nothing to do.
    async fn promote(
        &self,
        _ctx: &RotationContext<'_>,
        _promoted: &Credential,
    ) -> std::result::Result<(), TargetError> {
        Ok(())
    }

    /// Undoes `failed`, a pending credential that could not be set or
    /// tested, so that `ctx.current` works. Default: [`Rotator::revoke`].
    async fn rollback(
        &self,
        ctx: &RotationContext<'_>,
        failed: &Credential,
    ) -> std::result::Result<(), TargetError> {
        self.revoke(ctx, failed).await
    }

    /// Makes `old` stop working in the target (it is no longer stored).
    async fn revoke(
        &self,
        ctx: &RotationContext<'_>,
        old: &Credential,
    ) -> std::result::Result<(), TargetError>;
}

/// Settings of a [`RotationEngine`].
#[derive(Clone, Debug)]
pub struct RotationOptions {
    /// How long `previous` stays valid after a promotion. Default 1 hour.
    pub grace_period: Duration,
    /// Rotate automatically this long after the last promotion (used by
    /// [`RotationEngine::spawn_schedule`]). Default none (on demand only).
    pub interval: Option<Duration>,
    /// Attempts per step before giving up (at least 1). Default 5.
    pub max_attempts: u32,
    /// The first retry delay; doubles per attempt. Default 1 s.
    pub backoff_initial: Duration,
    /// The longest retry delay. Default 60 s.
    pub backoff_max: Duration,
    /// How long a rotation lock lasts without renewal. The holder renews it
    /// at every step and, while a step runs, every third of this (a
    /// heartbeat), so only a dead or stalled holder loses it. Another engine
    /// takes over a lapsed lock and finishes or rolls back the recorded
    /// step. Default 15 s.
    pub lock_ttl: Duration,
    /// The lock owner id (a stable member id, such as the host or pod
    /// name). Default: random per engine. A process restarting with the
    /// same id takes over its own unexpired lock at once. Two live engines
    /// must not share an id.
    pub owner_id: Option<String>,
    /// Versions kept in the history. Default 64.
    pub history_limit: usize,
    /// The audit hook, called with every event before the engine acts.
    pub audit: Option<Arc<dyn RotationAudit>>,
}

impl Default for RotationOptions {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(3600),
            interval: None,
            max_attempts: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            lock_ttl: Duration::from_secs(15),
            owner_id: None,
            history_limit: 64,
            audit: None,
        }
    }
}
