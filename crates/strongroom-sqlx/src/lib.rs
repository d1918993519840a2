//! SQLite and PostgreSQL storage backends for Strongroom, and dynamic
//! PostgreSQL credentials.
//!
//! [`dynamic::PgDynamicCredentials`] issues a fresh PostgreSQL login role per
//! request under a [`strongroom::lease::Lease`]: generated name and password,
//! `VALID UNTIL` at the lease's end (moved on renewal), the grants its
//! [`dynamic::PgRoleDefinition`] names, all in one transaction; revocation
//! ends the role's sessions and drops it; every statement is quoted by the
//! server; an intent record and [`dynamic::PgDynamicCredentials::sweep`] make
//! it crash-safe. See the [`dynamic`] module.
//!
//! Both types implement [`strongroom::storage::Storage`]: an ordered key/value
//! store with atomic batches and preconditions. Strongroom seals every secret
//! before it reaches storage, so these backends only ever hold sealed bytes.
//!
//! - [`SqliteStore`] is the embedded default: one file, WAL journal,
//!   `synchronous=FULL`, created on first use.
//! - [`PgStore`] keeps records in one PostgreSQL table, `strongroom_kv`, and is
//!   safe to share between many processes: preconditions are checked under
//!   per-key transaction locks, so concurrent compare-and-set has exactly one
//!   winner.
//!
//! Keys are compared by their bytes in both backends (`BLOB` in SQLite,
//! `BYTEA` in PostgreSQL), so ordering matches the in-memory store.
//!
//! # Example
//!
//! ```
//! use strongroom::storage::{BatchOp, Storage};
//! use strongroom_sqlx::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> strongroom::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("strongroom.db")).await?;
//!
//! store.put("app/a", b"sealed bytes").await?;
//! // A batch with a precondition: applied only if "app/b" is still absent.
//! store
//!     .batch(vec![
//!         BatchOp::expect("app/b", None),
//!         BatchOp::put("app/b", b"more sealed bytes".to_vec()),
//!     ])
//!     .await?;
//! assert_eq!(store.list("app/").await?, vec!["app/a", "app/b"]);
//! store.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! PostgreSQL works the same way once connected:
//!
//! ```no_run
//! # async fn demo() -> strongroom::Result<()> {
//! use strongroom::storage::Storage;
//! let store = strongroom_sqlx::PgStore::connect("postgres://app:pw@127.0.0.1/secrets").await?;
//! store.put("app/a", b"sealed bytes").await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod dynamic;
mod errors;
mod feed;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod postgres;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::{SqliteDiagnostics, SqliteStore};

/// The name of the table both backends keep their records in.
pub const TABLE: &str = "strongroom_kv";
pub mod pool;
pub mod rotate;
