//! Dynamic PostgreSQL credentials: a fresh login role per request, revoked
//! when its lease ends.
//!
//! A [`PgRoleDefinition`] says what a role may do (its [`PgGrant`]s, or
//! operator-written creation statements), how it is taken back (revocation
//! statements, what happens to objects it owns) and how long it may live.
//! [`PgDynamicCredentials::issue`] creates a role from it with a generated
//! name (`<prefix><definition>_<16 hex digits>`, at most 63 bytes) and a
//! random password, `VALID UNTIL` the lease's end, and registers the lease
//! with a [`LeaseManager`]. PostgreSQL itself refuses the role after that
//! time even if revocation never runs; renewing the lease moves `VALID
//! UNTIL` (`ALTER ROLE ... VALID UNTIL`), and revoking it (explicitly, by
//! prefix, or on expiry) blocks new logins, terminates the role's sessions,
//! runs the revocation statements, reassigns or drops what the role owns and
//! drops the role. Revocation is idempotent.
//!
//! The administrative connection needs `CREATEROLE` and the privileges it
//! grants (with grant option), not superuser: a non-superuser administrator
//! makes itself a member of each role it creates, in the same transaction,
//! so that it may end the role's sessions and drop what it owns.
//!
//! # Nothing from a caller is pasted into SQL
//!
//! `CREATE ROLE` and `ALTER ROLE` take no bind parameters, so every statement
//! is built on the server: `SELECT format($1, VARIADIC $2::text[])` with the
//! identifiers as `%I` and literals as `%L` arguments, and the result is then
//! executed. Privileges and object kinds are enums, so the only text in a
//! format string is this crate's own keywords or the operator's templates.
//! Templates may contain `{{name}}`, `{{password}}` and `{{expiration}}`,
//! which become `%1$I`, `%2$L` and `%3$L`; any other placeholder is refused,
//! and a `%` in a template is escaped. Object names longer than PostgreSQL's
//! 63-byte identifier limit (which the server would silently truncate to
//! another name) and names containing NUL are refused with a typed error.
//!
//! The password never reaches the server: the role is created with a
//! SCRAM-SHA-256 verifier computed here (`{{password}}` receives the
//! verifier), so neither statement logs nor `pg_stat_activity` can show it.
//!
//! # Crash safety
//!
//! Issuing writes an intent record (`pgdyn/intent/<role>`, through the
//! [`Storage`](strongroom::storage::Storage) trait, created atomically)
//! before `CREATE ROLE`, registers the lease after the role's transaction has
//! committed, and deletes the intent last. [`PgDynamicCredentials::sweep`]
//! (run it at start-up and now and then) reconciles the three: a role with
//! the engine's prefix that no lease owns is dropped once its intent is
//! older than [`PgDynamicConfig::sweep_grace`] (or at once if it has no
//! intent), an intent whose role does not exist is cleared, and a lease
//! whose role no longer exists is revoked. After a crash at any point,
//! then, no role is left that no lease knows about and no lease points at a
//! role that does not exist. Nothing stored here is secret: the password is
//! handed to the caller only.
//!
//! Both records are a version byte (1) followed by postcard: the lease's
//! revocation data is `{ role, definition, revocation format strings,
//! owned-objects action }`, and the intent record is `{ created_at (ms),
//! lease path, that same plan }`. A unit test pins the encoding.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::clock::SystemClock;
//! use strongroom::lease::{LeaseConfig, LeaseManager};
//! use strongroom::storage::DynStorage;
//! use strongroom_sqlx::dynamic::{
//!     PgDynamicConfig, PgDynamicCredentials, PgGrant, PgObject, PgPrivilege, PgRoleDefinition,
//! };
//! use strongroom_sqlx::SqliteStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let storage: DynStorage = Arc::new(SqliteStore::open("strongroom.db").await?);
//! let clock = Arc::new(SystemClock);
//! let leases = Arc::new(LeaseManager::new(storage.clone(), clock.clone(), LeaseConfig::default())?);
//! // An administrative connection: a role with CREATEROLE (and the grants it hands out).
//! let admin = sqlx::PgPool::connect("postgres://admin:pw@127.0.0.1/app").await?;
//! let engine = PgDynamicCredentials::new(admin, leases.clone(), storage, clock, PgDynamicConfig::default())?;
//! engine.sweep().await?; // clean up after a crash of an earlier process
//!
//! let readonly = PgRoleDefinition::new("readonly")?
//!     .grant(PgGrant::new([PgPrivilege::Connect], PgObject::database("app")))
//!     .grant(PgGrant::new([PgPrivilege::Select], PgObject::table("public", "orders")))
//!     .default_ttl(Duration::from_secs(3600))
//!     .max_ttl(Duration::from_secs(24 * 3600));
//! let (lease, cred) = engine.issue(&readonly, None).await?;
//! // cred.username and cred.password log in until the lease ends.
//! # let _ = cred;
//! leases.renew(lease.id(), Duration::from_secs(3600)).await?; // moves VALID UNTIL
//! leases.revoke(lease.id()).await?; // drops the role
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use strongroom::clock::{Clock, Timestamp};
use strongroom::lease::{Lease, LeaseId, LeaseManager, Revoker};
use strongroom::storage::{BatchOp, DynStorage};
use strongroom::{SecretString, StorageErrorKind};

use crate::errors::{describe, pg_kind};

/// PostgreSQL's identifier limit in bytes (`NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_BYTES: usize = 63;
/// The longest definition name.
pub const MAX_DEFINITION_NAME: usize = 64;
/// The longest role-name prefix.
pub const MAX_ROLE_PREFIX: usize = 24;
/// Where intent records live in storage.
pub const INTENT_PREFIX: &str = "pgdyn/intent/";

const RECORD_VERSION: u8 = 1;
const SUFFIX_HEX: usize = 16;
const PASSWORD_LEN: usize = 32;
const SCRAM_ITERATIONS: u32 = 4096;
const SCAN_PAGE: usize = 1024;

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

    /// Storage, leases or randomness failed.
    #[error(transparent)]
    Core(#[from] strongroom::Error),
}

impl PgDynError {
    /// The SQLSTATE of a database failure.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Database { sqlstate, .. } => sqlstate.as_deref(),
            _ => None,
        }
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
            other => strongroom::Error::InvalidArgument(other.to_string()),
        }
    }
}

/// Shorthand for results of this module.
pub type PgDynResult<T> = std::result::Result<T, PgDynError>;

fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> PgDynError {
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
/// [`PgDynamicCredentials::sweep`] cleans up after a crash at each point.
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

/// A privilege in a [`PgGrant`]. The SQL keyword comes from this enum, never
/// from caller text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PgPrivilege {
    /// `SELECT`
    Select,
    /// `INSERT`
    Insert,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
    /// `TRUNCATE`
    Truncate,
    /// `REFERENCES`
    References,
    /// `TRIGGER`
    Trigger,
    /// `USAGE`
    Usage,
    /// `CREATE`
    Create,
    /// `CONNECT`
    Connect,
    /// `TEMPORARY`
    Temporary,
    /// `EXECUTE`
    Execute,
    /// `ALL PRIVILEGES`
    All,
}

impl PgPrivilege {
    fn keyword(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Truncate => "TRUNCATE",
            Self::References => "REFERENCES",
            Self::Trigger => "TRIGGER",
            Self::Usage => "USAGE",
            Self::Create => "CREATE",
            Self::Connect => "CONNECT",
            Self::Temporary => "TEMPORARY",
            Self::Execute => "EXECUTE",
            Self::All => "ALL PRIVILEGES",
        }
    }
}

/// What a [`PgGrant`] is on. Names are quoted by the server (`%I`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PgObject {
    /// `TABLE schema.name` (also views).
    Table {
        /// Schema name.
        schema: String,
        /// Table name.
        name: String,
    },
    /// `SEQUENCE schema.name`.
    Sequence {
        /// Schema name.
        schema: String,
        /// Sequence name.
        name: String,
    },
    /// `ALL TABLES IN SCHEMA schema`.
    AllTablesInSchema {
        /// Schema name.
        schema: String,
    },
    /// `ALL SEQUENCES IN SCHEMA schema`.
    AllSequencesInSchema {
        /// Schema name.
        schema: String,
    },
    /// `SCHEMA name`.
    Schema {
        /// Schema name.
        name: String,
    },
    /// `DATABASE name`.
    Database {
        /// Database name.
        name: String,
    },
    /// Membership in an existing role (`GRANT role TO new_role`); the
    /// grant's privileges are ignored.
    RoleMembership {
        /// The role granted.
        role: String,
    },
}

impl PgObject {
    /// A table (or view) in a schema.
    pub fn table(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self::Table {
            schema: schema.into(),
            name: name.into(),
        }
    }
    /// A sequence in a schema.
    pub fn sequence(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self::Sequence {
            schema: schema.into(),
            name: name.into(),
        }
    }
    /// Every table in a schema (existing now).
    pub fn all_tables_in_schema(schema: impl Into<String>) -> Self {
        Self::AllTablesInSchema {
            schema: schema.into(),
        }
    }
    /// Every sequence in a schema (existing now).
    pub fn all_sequences_in_schema(schema: impl Into<String>) -> Self {
        Self::AllSequencesInSchema {
            schema: schema.into(),
        }
    }
    /// A schema.
    pub fn schema(name: impl Into<String>) -> Self {
        Self::Schema { name: name.into() }
    }
    /// A database.
    pub fn database(name: impl Into<String>) -> Self {
        Self::Database { name: name.into() }
    }
    /// Membership in an existing role.
    pub fn role(role: impl Into<String>) -> Self {
        Self::RoleMembership { role: role.into() }
    }

    /// The `ON ...` clause as a format string, and its identifier arguments.
    fn clause(&self) -> PgDynResult<(&'static str, Vec<&str>)> {
        Ok(match self {
            Self::Table { schema, name } => {
                check_ident("schema", schema)?;
                check_ident("table", name)?;
                ("TABLE %I.%I", vec![schema, name])
            }
            Self::Sequence { schema, name } => {
                check_ident("schema", schema)?;
                check_ident("sequence", name)?;
                ("SEQUENCE %I.%I", vec![schema, name])
            }
            Self::AllTablesInSchema { schema } => {
                check_ident("schema", schema)?;
                ("ALL TABLES IN SCHEMA %I", vec![schema])
            }
            Self::AllSequencesInSchema { schema } => {
                check_ident("schema", schema)?;
                ("ALL SEQUENCES IN SCHEMA %I", vec![schema])
            }
            Self::Schema { name } => {
                check_ident("schema", name)?;
                ("SCHEMA %I", vec![name])
            }
            Self::Database { name } => {
                check_ident("database", name)?;
                ("DATABASE %I", vec![name])
            }
            Self::RoleMembership { role } => {
                check_ident("role", role)?;
                ("", vec![role])
            }
        })
    }
}

/// One grant a new role receives: privileges on an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgGrant {
    /// The privileges (ignored for [`PgObject::RoleMembership`]).
    pub privileges: Vec<PgPrivilege>,
    /// What they are on.
    pub object: PgObject,
}

impl PgGrant {
    /// `GRANT privileges ON object TO <role>`.
    pub fn new(privileges: impl IntoIterator<Item = PgPrivilege>, object: PgObject) -> Self {
        Self {
            privileges: privileges.into_iter().collect(),
            object,
        }
    }

    /// The statement as a format string and its arguments; the new role's
    /// name is the last argument.
    fn statement<'a>(&'a self, role: &'a str) -> PgDynResult<(String, Vec<&'a str>)> {
        let (clause, mut args) = self.object.clause()?;
        let sql = if let PgObject::RoleMembership { .. } = self.object {
            "GRANT %I TO %I".to_owned()
        } else {
            if self.privileges.is_empty() {
                return Err(PgDynError::InvalidIdentifier {
                    what: "grant",
                    name: String::new(),
                    reason: "a grant needs at least one privilege",
                });
            }
            let privs: Vec<&str> = self.privileges.iter().map(|p| p.keyword()).collect();
            format!("GRANT {} ON {clause} TO %I", privs.join(", "))
        };
        args.push(role);
        Ok((sql, args))
    }
}

/// What happens to objects a dynamic role owns when it is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PgOwnedObjects {
    /// `DROP OWNED BY role` (the default): its objects are dropped and its
    /// privileges revoked.
    Drop,
    /// `REASSIGN OWNED BY role TO target`, then `DROP OWNED BY role` (which
    /// then only revokes privileges).
    ReassignTo(String),
}

/// How to create and revoke one kind of dynamic role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgRoleDefinition {
    name: String,
    creation: Vec<String>,
    grants: Vec<PgGrant>,
    revocation: Vec<String>,
    owned: PgOwnedObjects,
    default_ttl: Duration,
    max_ttl: Duration,
}

impl PgRoleDefinition {
    /// A definition with the safe defaults: `CREATE ROLE <name> LOGIN
    /// PASSWORD <pw> VALID UNTIL <lease end>`, no grants, owned objects
    /// dropped on revocation, default TTL one hour, max TTL one day.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidDefinitionName`] unless `name` is 1 to 64
    /// characters from `a-z`, `0-9`, `_`, `-` (it becomes part of role names
    /// and of the lease path).
    pub fn new(name: impl Into<String>) -> PgDynResult<Self> {
        let name = name.into();
        validate_definition_name(&name)?;
        Ok(Self {
            name,
            creation: Vec::new(),
            grants: Vec::new(),
            revocation: Vec::new(),
            owned: PgOwnedObjects::Drop,
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(24 * 3600),
        })
    }

    /// Adds a grant (run after the creation statements, in the same
    /// transaction).
    #[must_use]
    pub fn grant(mut self, grant: PgGrant) -> Self {
        self.grants.push(grant);
        self
    }

    /// Replaces the default `CREATE ROLE` with these statements, run in
    /// order in one transaction. `{{name}}`, `{{password}}` and
    /// `{{expiration}}` are substituted by the server as a quoted identifier
    /// and quoted literals. The statements must create the role with
    /// `VALID UNTIL {{expiration}}` for the database to refuse it on time.
    #[must_use]
    pub fn creation_statements(mut self, statements: impl IntoIterator<Item = String>) -> Self {
        self.creation = statements.into_iter().collect();
        self
    }

    /// Statements run on revocation, before owned objects are handled and
    /// the role is dropped; `{{name}}` is the only placeholder.
    #[must_use]
    pub fn revocation_statements(mut self, statements: impl IntoIterator<Item = String>) -> Self {
        self.revocation = statements.into_iter().collect();
        self
    }

    /// What happens to objects the role owns.
    #[must_use]
    pub fn owned_objects(mut self, owned: PgOwnedObjects) -> Self {
        self.owned = owned;
        self
    }

    /// The TTL when the caller asks for none.
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The longest a role may live, renewals included.
    #[must_use]
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// The definition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The grants.
    pub fn grants(&self) -> &[PgGrant] {
        &self.grants
    }
}

/// A dynamic role's login. The password is shown only by
/// [`SecretString::expose_secret`]; `Debug` redacts it.
pub struct PgCredential {
    /// The generated role name.
    pub username: String,
    /// The generated password.
    pub password: SecretString,
}

impl fmt::Debug for PgCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCredential")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Settings of a [`PgDynamicCredentials`] engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgDynamicConfig {
    /// The lease engine name its revoker is registered under.
    pub engine: String,
    /// The first segment of lease paths: leases are issued under
    /// `<mount>/creds/<definition>`.
    pub mount: String,
    /// Every generated role name starts with this; [`PgDynamicCredentials::sweep`]
    /// treats every role with it as this engine's. Give each engine sharing
    /// a server its own prefix.
    pub role_prefix: String,
    /// How long a sweep leaves an intent alone (the issue may still be
    /// running, here or in another process).
    pub sweep_grace: Duration,
}

impl Default for PgDynamicConfig {
    fn default() -> Self {
        Self {
            engine: "postgres".to_owned(),
            mount: "database".to_owned(),
            role_prefix: "sr_".to_owned(),
            sweep_grace: Duration::from_secs(300),
        }
    }
}

/// What a role's revocation needs; stored as the lease's revocation data
/// and in the intent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RolePlan {
    role: String,
    definition: String,
    /// Revocation statements already turned into format strings.
    revocation: Vec<String>,
    owned: PgOwnedObjects,
}

impl RolePlan {
    fn to_bytes(&self) -> PgDynResult<Vec<u8>> {
        postcard::to_extend(self, vec![RECORD_VERSION]).map_err(|e| PgDynError::CorruptRecord {
            key: self.role.clone(),
            reason: format!("does not encode: {e}"),
        })
    }

    fn from_bytes(key: &str, bytes: &[u8]) -> PgDynResult<Self> {
        decode_versioned(key, bytes)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentRecord {
    created_at: Timestamp,
    path: String,
    plan: RolePlan,
}

fn decode_versioned<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> PgDynResult<T> {
    let corrupt = |reason: String| PgDynError::CorruptRecord {
        key: key.to_owned(),
        reason,
    };
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| corrupt(format!("does not decode: {e}")))
        }
        Some((v, _)) => Err(corrupt(format!("unknown record version {v}"))),
        None => Err(corrupt("empty record".to_owned())),
    }
}

/// Issues PostgreSQL login roles under leases; see the [module
/// docs](self).
pub struct PgDynamicCredentials {
    pool: PgPool,
    leases: Arc<LeaseManager>,
    storage: DynStorage,
    clock: Arc<dyn Clock>,
    config: PgDynamicConfig,
    in_flight: Arc<Mutex<HashSet<String>>>,
    #[cfg(feature = "fault-injection")]
    crash_at: Mutex<Option<CrashPoint>>,
}

impl fmt::Debug for PgDynamicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDynamicCredentials")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Removes a role from the in-flight set when an issue ends (or is dropped).
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    role: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.role);
    }
}

/// What [`PgDynamicCredentials::sweep`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Roles with the prefix that no lease owned, now dropped.
    pub dropped_roles: Vec<String>,
    /// Intent records removed (their issue finished or failed).
    pub cleared_intents: usize,
    /// Leases whose role did not exist, now revoked.
    pub revoked_leases: Vec<LeaseId>,
    /// Intents left alone because their issue may still be running.
    pub in_progress: usize,
}

impl PgDynamicCredentials {
    /// An engine issuing roles through `pool` (a connection with
    /// `CREATEROLE` and the privileges it grants), leases through `leases`,
    /// and intent records in `storage` (normally the lease manager's). Its
    /// revoker is registered with `leases` under `config.engine`.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidRolePrefix`], or a core error for an unusable
    /// engine or mount name.
    pub fn new(
        pool: PgPool,
        leases: Arc<LeaseManager>,
        storage: DynStorage,
        clock: Arc<dyn Clock>,
        config: PgDynamicConfig,
    ) -> PgDynResult<Self> {
        let p = &config.role_prefix;
        if p.is_empty()
            || p.len() > MAX_ROLE_PREFIX
            || !p.starts_with(|c: char| c.is_ascii_lowercase())
            || !p
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        {
            return Err(PgDynError::InvalidRolePrefix {
                prefix: p.chars().take(80).collect(),
            });
        }
        let segment = |v: &str| {
            !v.is_empty()
                && v.len() <= MAX_DEFINITION_NAME
                && v.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        };
        if !segment(&config.mount) || !segment(&config.engine) {
            return Err(strongroom::Error::InvalidArgument(
                "pg dynamic credentials: mount and engine must be 1 to 64 characters from a-z, 0-9, '_', '-'".to_owned(),
            )
            .into());
        }
        leases.register_revoker(
            config.engine.clone(),
            Arc::new(PgRoleRevoker { pool: pool.clone() }),
        );
        Ok(Self {
            pool,
            leases,
            storage,
            clock,
            config,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            #[cfg(feature = "fault-injection")]
            crash_at: Mutex::new(None),
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &PgDynamicConfig {
        &self.config
    }

    /// The role a lease of this engine stands for.
    ///
    /// # Errors
    ///
    /// [`PgDynError::CorruptRecord`] if the lease's revocation data is not
    /// this engine's.
    pub fn role_of(lease: &Lease) -> PgDynResult<String> {
        RolePlan::from_bytes(&lease.id().to_string(), lease.revocation_data()).map(|p| p.role)
    }

    /// The lease path of a definition: `<mount>/creds/<definition>`.
    pub fn lease_path(&self, definition: &PgRoleDefinition) -> String {
        format!("{}/creds/{}", self.config.mount, definition.name)
    }

    /// Stops every later issue at `point`, returning
    /// [`PgDynError::Crashed`] without any clean-up, as if the process had
    /// died there. Drop the engine afterwards.
    #[cfg(feature = "fault-injection")]
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        *self.crash_at.lock().unwrap_or_else(PoisonError::into_inner) = point;
    }

    #[cfg(feature = "fault-injection")]
    fn maybe_crash(&self, point: CrashPoint) -> PgDynResult<()> {
        if *self.crash_at.lock().unwrap_or_else(PoisonError::into_inner) == Some(point) {
            return Err(PgDynError::Crashed(point));
        }
        Ok(())
    }

    #[cfg(not(feature = "fault-injection"))]
    #[inline]
    fn maybe_crash(&self, _point: Point) -> PgDynResult<()> {
        Ok(())
    }

    /// Creates a role from `definition` that lives `ttl` (the definition's
    /// default if `None`, cut to its max TTL), under a renewable lease.
    ///
    /// The role is created, with its grants, in one transaction; the intent
    /// record written first lets [`PgDynamicCredentials::sweep`] drop it if
    /// this process dies before the lease is stored. If storing the lease
    /// fails (a full quota, say) the role is dropped again.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidTtl`], [`PgDynError::InvalidTemplate`] or
    /// [`PgDynError::InvalidIdentifier`] for an unusable definition (nothing
    /// is created); [`PgDynError::Database`] if the server refuses (the
    /// transaction is rolled back); a core lease error such as a quota.
    pub async fn issue(
        &self,
        definition: &PgRoleDefinition,
        ttl: Option<Duration>,
    ) -> PgDynResult<(Lease, PgCredential)> {
        let ttl = ttl.unwrap_or(definition.default_ttl);
        if ttl.is_zero() || definition.max_ttl.is_zero() {
            return Err(PgDynError::InvalidTtl {
                reason: "ttl and max ttl must be positive",
            });
        }
        let ttl = ttl.min(definition.max_ttl);
        let creation = definition
            .creation
            .iter()
            .enumerate()
            .map(|(i, s)| template_to_format(definition, "creation", i, s, true))
            .collect::<PgDynResult<Vec<_>>>()?;
        let revocation = definition
            .revocation
            .iter()
            .enumerate()
            .map(|(i, s)| template_to_format(definition, "revocation", i, s, false))
            .collect::<PgDynResult<Vec<_>>>()?;
        if let PgOwnedObjects::ReassignTo(target) = &definition.owned {
            check_ident("reassign-to role", target)?;
        }
        for g in &definition.grants {
            g.object.clause()?;
        }
        let path = self.lease_path(definition);
        let role = self.role_name(&definition.name)?;
        let password = random_password()?;
        let verifier = scram_verifier(&password)?;
        let plan = RolePlan {
            role: role.clone(),
            definition: definition.name.clone(),
            revocation,
            owned: definition.owned.clone(),
        };
        let _guard = {
            self.in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(role.clone());
            InFlight {
                set: self.in_flight.clone(),
                role: role.clone(),
            }
        };

        // 1. The intent, before anything exists on the server.
        let now = self.clock.now();
        let intent = IntentRecord {
            created_at: now,
            path: path.clone(),
            plan: plan.clone(),
        };
        let intent_key = format!("{INTENT_PREFIX}{role}");
        let intent_bytes = postcard::to_extend(&intent, vec![RECORD_VERSION]).map_err(|e| {
            PgDynError::CorruptRecord {
                key: intent_key.clone(),
                reason: format!("does not encode: {e}"),
            }
        })?;
        self.storage
            .batch(vec![
                BatchOp::expect(intent_key.clone(), None),
                BatchOp::put(intent_key.clone(), intent_bytes),
            ])
            .await?;
        self.maybe_crash(Point::AfterIntent)?;

        // 2. The role and its grants, in one transaction.
        let expiry = now + ttl;
        if let Err(e) = self
            .create_role(definition, &creation, &role, &verifier, expiry)
            .await
        {
            self.storage.delete(&intent_key).await.ok();
            return Err(e);
        }
        self.maybe_crash(Point::AfterCreateRole)?;

        // 3. The lease.
        let revocation_data = plan.to_bytes()?;
        let lease = match self
            .leases
            .issue(
                &path,
                &self.config.engine,
                ttl,
                definition.max_ttl,
                true,
                revocation_data,
            )
            .await
        {
            Ok(l) => l,
            Err(e) => {
                // No lease owns the role: take it back now (the sweep would
                // otherwise do it later).
                if let Err(drop_err) = revoke_role(&self.pool, &plan).await {
                    tracing::warn!(role = %role, error = %drop_err, "dropping a role whose lease failed; the sweep will retry");
                } else {
                    self.storage.delete(&intent_key).await.ok();
                }
                return Err(e.into());
            }
        };
        if lease.expires_at() != expiry {
            // The clock moved while the role was created: align VALID UNTIL
            // with the lease's end.
            if let Err(e) = set_valid_until(&self.pool, &role, lease.expires_at()).await {
                // The caller will not get the password: take the role back.
                if let Err(revoke_err) = self.leases.revoke(lease.id()).await {
                    tracing::warn!(lease = %lease.id(), error = %revoke_err, "revoking a lease whose issue failed; the manager retries");
                }
                return Err(e);
            }
        }
        self.maybe_crash(Point::AfterLease)?;

        // 4. Done: the lease owns the role.
        if let Err(e) = self.storage.delete(&intent_key).await {
            // Harmless: the lease owns the role, and the next sweep clears
            // the intent.
            tracing::warn!(role = %role, error = %e, "cannot delete an intent record; the sweep will");
        }
        self.maybe_crash(Point::AfterIntentCleared)?;
        Ok((
            lease,
            PgCredential {
                username: role,
                password,
            },
        ))
    }

    fn role_name(&self, definition: &str) -> PgDynResult<String> {
        let mut b = [0u8; SUFFIX_HEX / 2];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .map_err(|_| strongroom::Error::Random)?;
        let suffix: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let room = MAX_IDENTIFIER_BYTES
            .saturating_sub(self.config.role_prefix.len())
            .saturating_sub(1 + SUFFIX_HEX);
        // Definition names are ASCII, so any cut is on a character boundary.
        let def: String = definition.chars().take(room).collect();
        Ok(format!("{}{def}_{suffix}", self.config.role_prefix))
    }

    async fn create_role(
        &self,
        definition: &PgRoleDefinition,
        creation: &[String],
        role: &str,
        verifier: &SecretString,
        expiry: Timestamp,
    ) -> PgDynResult<()> {
        let expiry = expiry.to_rfc3339();
        let mut tx = self.pool.begin().await.map_err(db("cannot begin"))?;
        if creation.is_empty() {
            run_format(
                &mut tx,
                "CREATE ROLE %I LOGIN PASSWORD %L VALID UNTIL %L",
                &[role, verifier.expose_secret(), &expiry],
                "cannot create the role",
            )
            .await?;
        } else {
            for stmt in creation {
                run_format(
                    &mut tx,
                    stmt,
                    &[role, verifier.expose_secret(), &expiry],
                    "a creation statement failed",
                )
                .await?;
            }
        }
        for grant in &definition.grants {
            let (sql, args) = grant.statement(role)?;
            run_format(&mut tx, &sql, &args, "a grant failed").await?;
        }
        // A non-superuser administrator (CREATEROLE) must be a member of the
        // role to end its sessions and drop what it owns on revocation.
        let superuser: bool =
            sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&mut *tx)
                .await
                .map_err(db("cannot read the administrator's attributes"))?;
        if !superuser {
            run_format(
                &mut tx,
                "GRANT %I TO CURRENT_USER",
                &[role],
                "cannot make the administrator a member of the role",
            )
            .await?;
        }
        tx.commit()
            .await
            .map_err(db("cannot commit the new role"))?;
        Ok(())
    }

    /// Reconciles roles, intents and leases after a crash; see the [module
    /// docs](self#crash-safety). Safe to run at any time, from any number of
    /// processes: an intent younger than [`PgDynamicConfig::sweep_grace`]
    /// (or one this engine is working on) is left alone.
    ///
    /// # Errors
    ///
    /// A database or storage failure; whatever was done before it stays
    /// done, and the next sweep goes on.
    pub async fn sweep(&self) -> PgDynResult<SweepReport> {
        let mut report = SweepReport::default();
        // Order matters: roles first, then intents, then leases. A role seen
        // here had its intent stored before it was created, and its intent
        // is deleted only after its lease is stored, so a role that is in
        // neither list later read is truly unowned.
        let roles: BTreeSet<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname::text, $1)",
        )
        .bind(&self.config.role_prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(db("cannot list roles"))?
        .into_iter()
        .collect();

        let mut intents: BTreeMap<String, IntentRecord> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage
                .scan(INTENT_PREFIX, after.as_deref(), SCAN_PAGE)
                .await?;
            let done = page.len() < SCAN_PAGE;
            for (key, value) in &page {
                let role = key.get(INTENT_PREFIX.len()..).unwrap_or_default();
                match decode_versioned::<IntentRecord>(key, value) {
                    Ok(rec) if rec.plan.role == role => {
                        intents.insert(role.to_owned(), rec);
                    }
                    _ => {
                        tracing::warn!(key = %key, "unreadable intent record; removing it");
                        self.storage.delete(key).await?;
                        report.cleared_intents += 1;
                    }
                }
            }
            after = page.last().map(|(k, _)| k.clone());
            if done {
                break;
            }
        }

        let mut owned: BTreeMap<String, LeaseId> = BTreeMap::new();
        for id in self.leases.list(&self.config.mount).await? {
            let lease = match self.leases.lookup(id).await {
                Ok(l) => l,
                Err(strongroom::Error::Lease(_)) => continue, // revoked meanwhile
                Err(e) => return Err(e.into()),
            };
            if lease.engine() != self.config.engine {
                continue;
            }
            let plan = RolePlan::from_bytes(&id.to_string(), lease.revocation_data())?;
            owned.insert(plan.role, id);
        }

        let now = self.clock.now();
        let busy = |role: &str, rec: &IntentRecord| {
            self.in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(role)
                || now.saturating_since(rec.created_at) < self.config.sweep_grace
        };

        for role in &roles {
            if owned.contains_key(role) {
                continue;
            }
            let plan = match intents.get(role) {
                Some(rec) if busy(role, rec) => continue,
                Some(rec) => rec.plan.clone(),
                None => RolePlan {
                    role: role.clone(),
                    definition: String::new(),
                    revocation: Vec::new(),
                    owned: PgOwnedObjects::Drop,
                },
            };
            revoke_role(&self.pool, &plan).await?;
            tracing::info!(role = %role, "sweep dropped a role no lease owns");
            report.dropped_roles.push(role.clone());
            if intents.remove(role).is_some() {
                self.storage
                    .delete(&format!("{INTENT_PREFIX}{role}"))
                    .await?;
                report.cleared_intents += 1;
            }
        }

        for (role, rec) in &intents {
            if roles.contains(role) && owned.contains_key(role) {
                // The lease was stored; only the intent's deletion was lost.
                self.storage
                    .delete(&format!("{INTENT_PREFIX}{role}"))
                    .await?;
                report.cleared_intents += 1;
            } else if !roles.contains(role) {
                if busy(role, rec) {
                    report.in_progress += 1;
                    continue;
                }
                self.storage
                    .delete(&format!("{INTENT_PREFIX}{role}"))
                    .await?;
                report.cleared_intents += 1;
            }
        }

        // Leases whose role is gone (dropped by hand, or a revocation whose
        // success was not recorded): revoke them so none points nowhere.
        let missing: Vec<String> = owned
            .keys()
            .filter(|r| !roles.contains(*r))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let exist: HashSet<String> = sqlx::query_scalar(
                "SELECT rolname::text FROM pg_roles WHERE rolname::text = ANY($1)",
            )
            .bind(&missing)
            .fetch_all(&self.pool)
            .await
            .map_err(db("cannot look up roles"))?
            .into_iter()
            .collect();
            for role in missing.iter().filter(|r| !exist.contains(*r)) {
                if let Some(&id) = owned.get(role) {
                    match self.leases.revoke(id).await {
                        Ok(_) => report.revoked_leases.push(id),
                        Err(strongroom::Error::Lease(
                            strongroom::lease::LeaseError::NotFound { .. },
                        )) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(report)
    }
}

#[cfg(feature = "fault-injection")]
use CrashPoint as Point;

/// The issue flow's steps when fault injection is compiled out.
#[cfg(not(feature = "fault-injection"))]
#[derive(Clone, Copy)]
#[allow(clippy::enum_variant_names)]
enum Point {
    AfterIntent,
    AfterCreateRole,
    AfterLease,
    AfterIntentCleared,
}

/// The revoker registered with the lease manager.
#[derive(Debug)]
struct PgRoleRevoker {
    pool: PgPool,
}

#[async_trait]
impl Revoker for PgRoleRevoker {
    async fn revoke(&self, lease: &Lease) -> strongroom::Result<()> {
        let plan = RolePlan::from_bytes(&lease.id().to_string(), lease.revocation_data())?;
        revoke_role(&self.pool, &plan).await.map_err(Into::into)
    }

    async fn renew(&self, lease: &Lease, new_expiry: Timestamp) -> strongroom::Result<()> {
        let plan = RolePlan::from_bytes(&lease.id().to_string(), lease.revocation_data())?;
        set_valid_until(&self.pool, &plan.role, new_expiry)
            .await
            .map_err(Into::into)
    }
}

async fn set_valid_until(pool: &PgPool, role: &str, at: Timestamp) -> PgDynResult<()> {
    let mut conn = pool.acquire().await.map_err(db("cannot connect"))?;
    let r = run_format(
        &mut conn,
        "ALTER ROLE %I VALID UNTIL %L",
        &[role, &at.to_rfc3339()],
        "cannot move valid until",
    )
    .await;
    match r {
        Err(e) if e.sqlstate() == Some("42704") => Err(PgDynError::RoleNotFound {
            role: role.to_owned(),
        }),
        other => other,
    }
}

/// Takes a role back: no new logins, sessions ended, revocation statements,
/// owned objects, `DROP ROLE IF EXISTS`. Idempotent.
async fn revoke_role(pool: &PgPool, plan: &RolePlan) -> PgDynResult<()> {
    let role = plan.role.as_str();
    let mut conn = pool.acquire().await.map_err(db("cannot connect"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname::text = $1)")
            .bind(role)
            .fetch_one(&mut *conn)
            .await
            .map_err(db("cannot look up the role"))?;
    if !exists {
        return Ok(());
    }
    // Block new logins first (committed, so it holds for other sessions),
    // then end the sessions that exist.
    match run_format(
        &mut conn,
        "ALTER ROLE %I NOLOGIN",
        &[role],
        "cannot disable login",
    )
    .await
    {
        Err(e) if e.sqlstate() == Some("42704") => return Ok(()),
        other => other?,
    }
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename::text = $1 AND pid <> pg_backend_pid()",
    )
    .bind(role)
    .execute(&mut *conn)
    .await
    .map_err(db("cannot terminate the role's sessions"))?;

    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(db("cannot begin"))?;
    for stmt in &plan.revocation {
        run_format(&mut tx, stmt, &[role], "a revocation statement failed").await?;
    }
    if let PgOwnedObjects::ReassignTo(target) = &plan.owned {
        run_format(
            &mut tx,
            "REASSIGN OWNED BY %I TO %I",
            &[role, target],
            "cannot reassign owned objects",
        )
        .await?;
    }
    run_format(
        &mut tx,
        "DROP OWNED BY %I",
        &[role],
        "cannot drop owned objects",
    )
    .await?;
    run_format(
        &mut tx,
        "DROP ROLE IF EXISTS %I",
        &[role],
        "cannot drop the role",
    )
    .await?;
    tx.commit().await.map_err(db("cannot commit revocation"))?;
    Ok(())
}

/// Has the server build a statement from a format string and arguments
/// (`%I` identifiers, `%L` literals), then runs it.
async fn run_format(
    conn: &mut PgConnection,
    format_string: &str,
    args: &[&str],
    what: &'static str,
) -> PgDynResult<()> {
    let sql: String = sqlx::query_scalar("SELECT format($1, VARIADIC $2::text[])")
        .bind(format_string)
        .bind(args)
        .fetch_one(&mut *conn)
        .await
        .map_err(db(what))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map_err(db(what))?;
    Ok(())
}

/// Turns a statement template into a `format()` string: `%` is escaped,
/// `{{name}}` becomes `%1$I`, `{{password}}` `%2$L`, `{{expiration}}` `%3$L`.
fn template_to_format(
    definition: &PgRoleDefinition,
    kind: &'static str,
    index: usize,
    template: &str,
    creation: bool,
) -> PgDynResult<String> {
    let bad = |reason: String| PgDynError::InvalidTemplate {
        definition: definition.name.clone(),
        kind,
        index,
        reason,
    };
    if template.contains('\0') {
        return Err(bad("contains a NUL character".to_owned()));
    }
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, tail) = rest.split_at(start);
        out.push_str(&before.replace('%', "%%"));
        let Some(end) = tail.find("}}") else {
            return Err(bad("'{{' without a closing '}}'".to_owned()));
        };
        let key = tail.get(2..end).unwrap_or_default().trim();
        out.push_str(match (key, creation) {
            ("name", _) => "%1$I",
            ("password", true) => "%2$L",
            ("expiration", true) => "%3$L",
            (other, _) => {
                return Err(bad(format!(
                    "unknown placeholder {{{{{}}}}} (allowed: {})",
                    other.chars().take(40).collect::<String>(),
                    if creation {
                        "{{name}}, {{password}}, {{expiration}}"
                    } else {
                        "{{name}}"
                    }
                )));
            }
        });
        rest = tail.get(end + 2..).unwrap_or_default();
    }
    if rest.contains("}}") {
        return Err(bad("'}}' without an opening '{{'".to_owned()));
    }
    out.push_str(&rest.replace('%', "%%"));
    Ok(out)
}

fn validate_definition_name(name: &str) -> PgDynResult<()> {
    let bad = |reason| {
        Err(PgDynError::InvalidDefinitionName {
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_DEFINITION_NAME {
        return bad("it is too long");
    }
    if !name
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    {
        return bad("it has a character outside the allowed set");
    }
    if name.starts_with('-') {
        return bad("it starts with '-'");
    }
    Ok(())
}

/// Object names are quoted by the server, so any text is safe in SQL; these
/// checks refuse names the server would change (truncation past 63 bytes) or
/// cannot carry (NUL).
fn check_ident(what: &'static str, name: &str) -> PgDynResult<()> {
    let bad = |reason| {
        Err(PgDynError::InvalidIdentifier {
            what,
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return bad("it is longer than 63 bytes, which postgres would silently truncate");
    }
    if name.contains('\0') {
        return bad("it contains a NUL character");
    }
    Ok(())
}

/// 32 characters from `A-Z a-z 0-9` (about 190 bits), safe in URLs.
fn random_password() -> PgDynResult<SecretString> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        ring::rand::SecureRandom::fill(&rng, &mut buf).map_err(|_| strongroom::Error::Random)?;
        for &b in &buf {
            // 248 = 4 * 62: reject the rest so every character is equally likely.
            if b < 248
                && out.len() < PASSWORD_LEN
                && let Some(&c) = ALPHABET.get(usize::from(b % 62))
            {
                out.push(char::from(c));
            }
        }
        zeroize_array(&mut buf);
    }
    Ok(SecretString::new(out))
}

fn zeroize_array(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        *b = 0;
    }
    std::hint::black_box(buf);
}

/// A SCRAM-SHA-256 verifier as PostgreSQL stores it
/// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802 /
/// RFC 7677). The password is ASCII, which SASLprep leaves as it is.
fn scram_verifier(password: &SecretString) -> PgDynResult<SecretString> {
    use ring::{digest, hmac, pbkdf2};
    let rng = ring::rand::SystemRandom::new();
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut salt).map_err(|_| strongroom::Error::Random)?;
    let iterations = NonZeroU32::new(SCRAM_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.expose_secret().as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    zeroize_array(&mut salted);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(SecretString::new(format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key.as_ref()),
        b64.encode(server_key.as_ref())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> PgRoleDefinition {
        PgRoleDefinition::new("ro").unwrap()
    }

    #[test]
    fn templates_become_format_strings() {
        let f = template_to_format(
            &def(),
            "creation",
            0,
            "CREATE ROLE {{name}} LOGIN PASSWORD {{ password }} VALID UNTIL {{expiration}}; -- 100%",
            true,
        )
        .unwrap();
        assert_eq!(
            f,
            "CREATE ROLE %1$I LOGIN PASSWORD %2$L VALID UNTIL %3$L; -- 100%%"
        );
        for bad in ["{{user}}", "{{name", "x }} y", "{{password}}"] {
            let e = template_to_format(&def(), "revocation", 1, bad, false).unwrap_err();
            assert!(
                matches!(e, PgDynError::InvalidTemplate { index: 1, .. }),
                "{bad}: {e}"
            );
        }
        // A hostile placeholder body is refused, not pasted.
        let e = template_to_format(&def(), "creation", 0, "{{name'; DROP ROLE x; --}}", true)
            .unwrap_err();
        assert!(matches!(e, PgDynError::InvalidTemplate { .. }));
    }

    #[test]
    fn definition_names_are_checked() {
        for bad in [
            "",
            "Upper",
            "a;b",
            "x\"; DROP ROLE postgres; --",
            "héllo",
            "-x",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(
                    PgRoleDefinition::new(bad),
                    Err(PgDynError::InvalidDefinitionName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(PgRoleDefinition::new("read-only_2").is_ok());
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(check_ident("table", &"t".repeat(63)).is_ok());
        assert!(check_ident("table", &"é".repeat(32)).is_err()); // 64 bytes
        assert!(check_ident("table", "a\0b").is_err());
        assert!(check_ident("table", "").is_err());
        assert!(check_ident("table", "x\"; DROP ROLE postgres; --").is_ok());
    }

    #[test]
    fn passwords_and_verifiers() {
        let p = random_password().unwrap();
        assert_eq!(p.expose_secret().len(), PASSWORD_LEN);
        assert!(p.expose_secret().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, random_password().unwrap());
        let v = scram_verifier(&p).unwrap();
        assert!(v.expose_secret().starts_with("SCRAM-SHA-256$4096:"));
        assert!(!v.expose_secret().contains(p.expose_secret()));
        let c = PgCredential {
            username: "u".into(),
            password: p,
        };
        assert!(!format!("{c:?}").contains(c.password.expose_secret()));
    }

    /// The stored form of revocation data, pinned: a change here needs a
    /// new record version.
    #[test]
    fn revocation_data_vector() {
        let plan = RolePlan {
            role: "sr_ro_00112233".into(),
            definition: "ro".into(),
            revocation: vec!["REVOKE ALL ON t FROM %1$I".into()],
            owned: PgOwnedObjects::ReassignTo("owner".into()),
        };
        let bytes = plan.to_bytes().unwrap();
        assert_eq!(hex(&bytes), VECTOR);
        assert_eq!(RolePlan::from_bytes("k", &bytes).unwrap(), plan);
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(matches!(
            RolePlan::from_bytes("k", &other),
            Err(PgDynError::CorruptRecord { .. })
        ));
        assert!(RolePlan::from_bytes("k", &[]).is_err());
        assert!(RolePlan::from_bytes("k", &bytes[..bytes.len() - 1]).is_err());
    }

    // 01 version | 0e "sr_ro_00112233" | 02 "ro" | 01 (one statement) 19 "REVOKE ALL ON t FROM %1$I" | 01 (ReassignTo) 05 "owner"
    const VECTOR: &str = "010e73725f726f5f303031313232333302726f01195245564f4b4520414c4c204f4e20742046524f4d202531244901056f776e6572";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn grants_render_from_keywords() {
        let g = PgGrant::new(
            [PgPrivilege::Select, PgPrivilege::Insert],
            PgObject::table("public", "t"),
        );
        let (sql, args) = g.statement("r").unwrap();
        assert_eq!(sql, "GRANT SELECT, INSERT ON TABLE %I.%I TO %I");
        assert_eq!(args, ["public", "t", "r"]);
        let (sql, _) = PgGrant::new([], PgObject::role("app"))
            .statement("r")
            .unwrap();
        assert_eq!(sql, "GRANT %I TO %I");
        assert!(
            PgGrant::new([], PgObject::schema("s"))
                .statement("r")
                .is_err()
        );
    }
}
