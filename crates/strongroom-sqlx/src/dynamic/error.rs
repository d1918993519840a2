//! The engine's error type, and the fault-injection points.

use strongroom::StorageErrorKind;

use super::{MAX_DEFINITION_NAME, MAX_ROLE_PREFIX};
use crate::errors::{describe, pg_kind};

/// Errors of the dynamic-credentials engine. Messages never contain
/// passwords.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgDynError {
    /// A definition name cannot be used.
    #[error(
        "invalid role definition name {name:?}: {reason} (use 1 to {MAX_DEFINITION_NAME} characters from a-z, 0-9, '_', '-')"
    )]
    InvalidDefinitionName {
        /// The name as given (cut to 80 characters).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An object or role name in a grant or definition cannot be used.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidIdentifier {
        /// Which name ("table", "schema", "reassign-to role", ...).
        what: &'static str,
        /// The name as given (cut to 80 characters).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The configured role prefix cannot be used.
    #[error(
        "invalid role prefix {prefix:?}: use 1 to {MAX_ROLE_PREFIX} characters from a-z, 0-9, '_', starting with a letter"
    )]
    InvalidRolePrefix {
        /// The prefix as given.
        prefix: String,
    },

    /// A statement template has an unknown or malformed placeholder.
    #[error("{kind} statement {index} of definition {definition:?}: {reason}")]
    InvalidTemplate {
        /// The definition's name.
        definition: String,
        /// "creation" or "revocation".
        kind: &'static str,
        /// The statement's position (from 0).
        index: usize,
        /// What is wrong.
        reason: String,
    },

    /// A TTL cannot be used.
    #[error("invalid ttl: {reason}")]
    InvalidTtl {
        /// What is wrong.
        reason: &'static str,
    },

    /// [`PgDynamicCredentials::issue`](super::PgDynamicCredentials::issue)
    /// was given a definition whose revocation differs from the one the
    /// engine holds under the same name.
    #[error(
        "a different role definition named {definition:?} (other revocation statements or owned-objects action) is configured; replace it with PgDynamicCredentials::define, or give the new one its own name"
    )]
    DefinitionConflict {
        /// The definition's name.
        definition: String,
    },

    /// A stored record names a role definition this engine is not
    /// configured with, so the statements to take the role back cannot be
    /// built. Nothing was run; the lease is kept and retried.
    #[error(
        "{key} was issued under role definition {definition:?}, which this engine is not configured with; configure it (PgDynamicCredentials::define) and retry, or force-revoke the lease and drop the role by hand"
    )]
    UnknownDefinition {
        /// The lease id or storage key.
        key: String,
        /// The definition's name.
        definition: String,
    },

    /// A stored record was issued under a definition whose revocation
    /// (statements or owned-objects action) differs from the configured
    /// one of that name. Nothing was run; the lease is kept and retried.
    #[error(
        "{key} was issued under another revocation of role definition {definition:?} than the one configured now; configure the definition it was issued under and retry, or force-revoke the lease and drop the role by hand"
    )]
    DefinitionChanged {
        /// The lease id or storage key.
        key: String,
        /// The definition's name.
        definition: String,
    },

    /// A stored record names a role this engine does not generate (another
    /// prefix, another form, an unrelated role). Nothing was run.
    #[error(
        "{key} names role {role:?}, which this engine does not take back: {reason}; nothing was run"
    )]
    ForeignRole {
        /// The lease id or storage key.
        key: String,
        /// The role name as stored (cut to 80 characters).
        role: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A stored record did not authenticate: it was altered, moved to
    /// another key or lease, or forged. Deliberately says nothing more.
    /// Nothing in it was used.
    #[error("stored record {key} did not authenticate; nothing in it was used")]
    NotAuthentic {
        /// The lease id or storage key.
        key: String,
    },

    /// The role a lease stands for does not exist (any more), so it cannot
    /// be renewed.
    #[error("role {role:?} does not exist; request new credentials")]
    RoleNotFound {
        /// The role name.
        role: String,
    },

    /// The server refused or failed a statement.
    #[error("postgres: {what}: {message}")]
    Database {
        /// What the engine was doing.
        what: &'static str,
        /// The SQLSTATE, if the server sent one.
        sqlstate: Option<String>,
        /// The server's message (never the statement text).
        message: String,
        /// The storage-error class of the failure.
        kind: StorageErrorKind,
    },

    /// A role catalog (TOML or its stored form) cannot be used.
    #[error("role catalog {source_name}: {reason}")]
    InvalidCatalog {
        /// The file, secret or record it came from.
        source_name: String,
        /// What is wrong (never a value of the connection secret).
        reason: String,
    },

    /// The stored role catalog is not at the revision the writer read:
    /// another writer replaced it first. Nothing was written.
    #[error(
        "the role catalog changed since it was read (expected revision {expected:?}, found {found:?}); read it again and retry"
    )]
    CatalogChanged {
        /// The revision the writer expected (`None`: no catalog).
        expected: Option<u64>,
        /// The revision found.
        found: Option<u64>,
    },

    /// Revocation data or an intent record does not decode.
    #[error("stored record {key:?} is corrupt: {reason}")]
    CorruptRecord {
        /// The storage key or lease id.
        key: String,
        /// What is wrong.
        reason: String,
    },

    /// The fault-injection hook stopped the issue flow here (tests only).
    #[cfg(feature = "fault-injection")]
    #[error("simulated crash at {0:?}")]
    Crashed(CrashPoint),

    /// Storage, leases, the keyring or randomness failed.
    #[error(transparent)]
    Core(#[from] strongroom::Error),
}

/// Why [`PgDynamicCredentials::sweep`](super::PgDynamicCredentials::sweep)
/// left a stored record unused (see [`SweepReport::rejected`](super::SweepReport::rejected)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// [`PgDynError::NotAuthentic`].
    NotAuthentic,
    /// [`PgDynError::ForeignRole`].
    ForeignRole,
    /// [`PgDynError::UnknownDefinition`].
    UnknownDefinition,
    /// [`PgDynError::DefinitionChanged`].
    DefinitionChanged,
    /// [`PgDynError::CorruptRecord`].
    Corrupt,
}

impl PgDynError {
    /// The SQLSTATE of a database failure.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Database { sqlstate, .. } => sqlstate.as_deref(),
            _ => None,
        }
    }

    /// Whether this error refuses a stored record (and why), as opposed to
    /// a failure of the server, storage or arguments.
    pub fn rejection(&self) -> Option<Rejection> {
        Some(match self {
            Self::NotAuthentic { .. } => Rejection::NotAuthentic,
            Self::ForeignRole { .. } => Rejection::ForeignRole,
            Self::UnknownDefinition { .. } => Rejection::UnknownDefinition,
            Self::DefinitionChanged { .. } => Rejection::DefinitionChanged,
            Self::CorruptRecord { .. } => Rejection::Corrupt,
            _ => return None,
        })
    }
}

impl From<PgDynError> for strongroom::Error {
    fn from(e: PgDynError) -> Self {
        match e {
            PgDynError::Core(e) => e,
            PgDynError::Database { kind, .. } => {
                strongroom::Error::storage("postgres", kind, e.to_string())
            }
            PgDynError::CorruptRecord { key, reason } => {
                strongroom::Error::CorruptRecord { key, reason }
            }
            // A stored record that is not what this engine wrote is corrupt
            // as far as the core is concerned.
            PgDynError::NotAuthentic { ref key } | PgDynError::ForeignRole { ref key, .. } => {
                strongroom::Error::CorruptRecord {
                    key: key.clone(),
                    reason: e.to_string(),
                }
            }
            other => strongroom::Error::InvalidArgument(other.to_string()),
        }
    }
}

/// Shorthand for results of this module.
pub type PgDynResult<T> = std::result::Result<T, PgDynError>;

pub(super) fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> PgDynError {
    move |e| PgDynError::Database {
        what,
        sqlstate: match &e {
            sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
            _ => None,
        },
        kind: pg_kind(&e),
        message: describe(&e),
    }
}

/// Where the issue flow can be stopped by fault injection, to show that
/// [`PgDynamicCredentials::sweep`](super::PgDynamicCredentials::sweep)
/// cleans up after a crash at each point.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashPoint {
    /// The intent record is stored; no role exists yet.
    AfterIntent,
    /// The role's transaction committed; no lease exists yet.
    AfterCreateRole,
    /// The lease is stored; the intent record still exists.
    AfterLease,
    /// Everything done (intent cleared); the caller never got the password.
    AfterIntentCleared,
}

#[cfg(feature = "fault-injection")]
impl CrashPoint {
    /// Every crash point, in flow order.
    pub const ALL: [CrashPoint; 4] = [
        Self::AfterIntent,
        Self::AfterCreateRole,
        Self::AfterLease,
        Self::AfterIntentCleared,
    ];
}

#[cfg(feature = "fault-injection")]
pub(super) use CrashPoint as Point;

/// The issue flow's steps when fault injection is compiled out.
#[cfg(not(feature = "fault-injection"))]
#[derive(Clone, Copy)]
#[allow(clippy::enum_variant_names)]
pub(super) enum Point {
    AfterIntent,
    AfterCreateRole,
    AfterLease,
    AfterIntentCleared,
}
