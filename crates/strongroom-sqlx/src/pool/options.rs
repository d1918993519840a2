//! The pool's options, errors, metrics and events.

use super::*;

/// Settings of a [`HealingPool`].
#[derive(Clone, Debug)]
pub struct HealingOptions {
    /// The longest one operation may take, healing and retries included.
    /// Default 10 s.
    pub budget: Duration,
    /// Treat `28000` (other than `pg_hba.conf` rejections) as a credential
    /// failure: set when the server uses LDAP, PAM or another external
    /// method for this role. Default false.
    pub external_auth: bool,
    /// After a swap, connections opened with the old credentials are closed
    /// at jittered points within this window. Default 30 s.
    pub recycle_window: Duration,
}

impl Default for HealingOptions {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(10),
            external_auth: false,
            recycle_window: Duration::from_secs(30),
        }
    }
}

/// Errors of the healing pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealingError {
    /// The server refused every stored version of the credential and no new
    /// one arrived within the budget. `tried` is never empty (an empty
    /// store is [`HealingError::NoStoredVersion`]).
    #[error(
        "credential {credential:?}: the server refused every stored version (tried {tried:?}) and none worked within {budget:?}; rotate or re-issue the credential"
    )]
    NoWorkingCredential {
        /// The credential name.
        credential: String,
        /// The versions refused: those the last failed refresh tried and
        /// those the operation's own logins used.
        tried: Vec<u64>,
        /// The time budget.
        budget: Duration,
    },
    /// No stored version of the credential could be read, so there was
    /// nothing to log in with.
    #[error(
        "credential {credential:?}: the store holds no readable version to log in with (not rotated or imported yet, or its version records were removed); rotate or import the credential"
    )]
    NoStoredVersion {
        /// The credential name.
        credential: String,
        /// The time budget.
        budget: Duration,
    },
    /// The operation did not finish within the budget.
    #[error("operation did not finish within the {budget:?} budget")]
    BudgetExceeded {
        /// The time budget.
        budget: Duration,
    },
    /// A database error that healing does not handle, as it came.
    #[error("{class:?}: {source}")]
    Database {
        /// Its classification.
        class: ErrorClass,
        /// The error.
        #[source]
        source: sqlx::Error,
    },
    /// The credential could not be read from the store.
    #[error("credential source: {0}")]
    Source(#[from] strongroom::Error),
}

/// Counters (no secrets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolMetrics {
    /// Reactive refreshes run (one per single-flight group).
    pub refreshes: u64,
    /// Operations retried after a credential failure.
    pub retries: u64,
    /// Operations that failed (any error returned).
    pub failures: u64,
    /// Connect-option swaps (proactive and reactive).
    pub swaps: u64,
    /// Connections closed by the gradual recycling.
    pub recycled: u64,
}

/// What the pool did, for subscribers (no secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// Switched to a credential version.
    Swapped {
        /// The version now used for new connections.
        version: u64,
        /// The role it logs in as.
        identity: String,
        /// Whether a login failure caused it (false: a source change).
        reactive: bool,
    },
    /// A refresh found no working version.
    RefreshFailed {
        /// The versions tried.
        tried: Vec<u64>,
    },
    /// An operation is retried after a credential failure.
    Retrying {
        /// The version that was refused.
        version: u64,
    },
}
