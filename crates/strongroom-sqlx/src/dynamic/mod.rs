//! Dynamic PostgreSQL credentials: a fresh login role per request, revoked
//! when its lease ends.
//!
//! A [`PgRoleDefinition`] says what a role may do (its [`PgGrant`]s, or
//! operator-written creation statements), how it is taken back (revocation
//! statements, what happens to objects it owns) and how long it may live.
//! [`PgDynamicCredentials::issue`] creates a role from it with a generated
//! name (`<prefix><definition>_<16 hex digits>`, at most 63 bytes) and a
//! random password, `VALID UNTIL` the lease's end, and registers the lease
//! with a [`LeaseManager`](strongroom::lease::LeaseManager). PostgreSQL
//! itself refuses the role after that time even if revocation never runs;
//! renewing the lease moves `VALID UNTIL` (`ALTER ROLE ... VALID UNTIL`),
//! and revoking it (explicitly, by prefix, or on expiry) blocks new logins,
//! terminates the role's sessions, runs the revocation statements,
//! reassigns or drops what the role owns and drops the role. Revocation is
//! idempotent.
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
//! # Nothing read from storage is executed
//!
//! Storage is untrusted. What the engine stores about a role (the lease's
//! revocation data, the intent record) names the role, the definition it
//! was issued under and a digest of that definition's revocation; it holds
//! no SQL. Revocation and renewal rebuild their statements from the
//! definition this process is configured with
//! ([`PgDynamicCredentials::define`], or the definition given to
//! [`issue`](PgDynamicCredentials::issue)), looked up by name; before any
//! statement runs:
//!
//! - revocation data must authenticate: an HMAC-SHA256 tag under the
//!   store's record key (kept sealed by the keyring), bound to the lease's
//!   engine and path. Otherwise [`PgDynError::NotAuthentic`];
//! - the role must be exactly of the generated form for its definition,
//!   under the engine's prefix, and the definition must be the one the
//!   lease path names. Otherwise [`PgDynError::ForeignRole`];
//! - the definition must be configured, with the same revocation
//!   (statements and owned-objects action) as when the role was issued.
//!   Otherwise [`PgDynError::UnknownDefinition`] or
//!   [`PgDynError::DefinitionChanged`].
//!
//! A refused revocation leaves the lease in place; the lease manager
//! retries it and, after its attempts, marks it irrevocable, so an operator
//! can configure the definition or force-revoke the lease.
//! [`PgDynamicCredentials::role_of`] makes the same checks.
//!
//! Records written before authentication (version 1) are still read: their
//! role and definition names pass the same name and configuration checks,
//! and the statements stored in them are ignored.
//!
//! # Crash safety
//!
//! Issuing writes an intent record (`s/pgdyn/intent/<role>`, sealed under
//! the store's keyring with its storage key as context, created
//! atomically) before `CREATE ROLE`, registers the lease after the role's
//! transaction has committed, and deletes the intent last.
//! [`PgDynamicCredentials::sweep`] (run it at start-up and now and then)
//! reconciles the three: a role with the engine's prefix that no lease owns
//! is dropped once its intent is older than [`PgDynamicConfig::sweep_grace`]
//! (or at once if it has no intent), an intent whose role does not exist is
//! cleared, and a lease whose role no longer exists is revoked. After a
//! crash at any point, then, no role is left that no lease knows about and
//! no lease points at a role that does not exist. Nothing stored here is
//! secret: the password is handed to the caller only.
//!
//! The stored formats are in `docs/FORMAT.md` ("Dynamic PostgreSQL
//! credentials"); unit tests pin them.
//!
//! # Audit
//!
//! Attach an audit log to the lease manager
//! ([`LeaseManager::with_audit`](strongroom::lease::LeaseManager::with_audit)):
//! the engine then records each issue (principal `dynamic:<engine>`) before
//! the role exists on the server, and the manager records the lease before
//! it is stored and every renewal and revocation before it takes effect. If
//! no sink accepts a record the operation does not happen (an issue creates
//! no role and returns no password).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::lease::LeaseConfig;
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::DynStorage;
//! use strongroom::{Options, Strongroom};
//! use strongroom_sqlx::dynamic::{
//!     PgDynamicConfig, PgDynamicCredentials, PgGrant, PgObject, PgPrivilege, PgRoleDefinition,
//! };
//! use strongroom_sqlx::SqliteStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let storage: DynStorage = Arc::new(SqliteStore::open("strongroom.db").await?);
//! let protector = SoftwareProtector::from_key_file("strongroom.key")?;
//! let store = Strongroom::unseal(storage, &protector, Options::default()).await?;
//! // The engine and the manager act without a principal: through the door
//! // (wrap the manager in `Handle::leases` for a principal's checked use).
//! let store = store.dangerous_traced("pg-dynamic").await?;
//! let clock = store.clock().clone();
//! let leases = Arc::new(store.lease_manager(clock.clone(), LeaseConfig::default())?);
//! // An administrative connection: a role with CREATEROLE (and the grants it hands out).
//! let admin = sqlx::PgPool::connect("postgres://admin:pw@127.0.0.1/app").await?;
//! let engine = PgDynamicCredentials::new(admin, leases.clone(), store, clock, PgDynamicConfig::default())?;
//!
//! let readonly = PgRoleDefinition::new("readonly")?
//!     .grant(PgGrant::new([PgPrivilege::Connect], PgObject::database("app")))
//!     .grant(PgGrant::new([PgPrivilege::Select], PgObject::table("public", "orders")))
//!     .default_ttl(Duration::from_secs(3600))
//!     .max_ttl(Duration::from_secs(24 * 3600));
//! // Every definition whose leases may be live, before leases are revoked.
//! engine.define(&readonly)?;
//! engine.sweep().await?; // clean up after a crash of an earlier process
//!
//! let (lease, cred) = engine.issue(&readonly, None).await?;
//! // cred.username and cred.password log in until the lease ends.
//! # let _ = cred;
//! leases.renew(lease.id(), Duration::from_secs(3600)).await?; // moves VALID UNTIL
//! leases.revoke(lease.id()).await?; // drops the role
//! # Ok(())
//! # }
//! ```

pub mod catalog;
mod definition;
mod engine;
mod error;
mod naming;
mod password;
pub(crate) mod record;
mod server;
mod sweep;
#[cfg(test)]
mod tests;

pub use catalog::{PgCatalog, PgCatalogSection, PgRoleSpec, StoredCatalog};
pub use definition::{PgGrant, PgObject, PgOwnedObjects, PgPrivilege, PgRoleDefinition};
pub use engine::{PgDynamicConfig, PgDynamicCredentials};
#[cfg(feature = "fault-injection")]
pub use error::CrashPoint;
pub use error::{PgDynError, PgDynResult, Rejection};
pub use password::PgCredential;
pub use sweep::SweepReport;

/// PostgreSQL's identifier limit in bytes (`NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_BYTES: usize = 63;
/// The longest definition name.
pub const MAX_DEFINITION_NAME: usize = 64;
/// The longest role-name prefix.
pub const MAX_ROLE_PREFIX: usize = 24;
/// Where intent records live in storage (sealed records, version 2).
pub const INTENT_PREFIX: &str = "s/pgdyn/intent/";
/// Where version 1 intent records (plain, unauthenticated) were written;
/// the sweep still reads and clears them.
pub const LEGACY_INTENT_PREFIX: &str = "pgdyn/intent/";
/// The sealed record holding the key that authenticates revocation data.
pub const REVOCATION_KEY_RECORD: &str = "s/pgdyn/revocation-key";

/// Hex digits in a generated role name's random suffix.
const SUFFIX_HEX: usize = 16;
