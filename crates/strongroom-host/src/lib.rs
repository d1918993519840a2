//! The layer Strongroom's language bindings (Python, Node, Swift) share.
//!
//! A binding converts: host values in, host values out, errors through
//! [`strongroom::Error::details`]. Everything a binding would otherwise
//! compose from several core calls lives here once, so the three bindings
//! validate the same way and cannot drift:
//!
//! - [`storage`]: opening a store by location (`memory:`, an SQLite file,
//!   a `postgres://` URL) and closing it.
//! - [`apikey`]: an API-key rotation (engine, rotator and the verifier it
//!   keeps in step), with one set of rules for the key format.
//! - [`dynamic`]: dynamic PostgreSQL credentials from the store's role
//!   catalog, issued as leases.
//! - [`inventory`]: every secret under a prefix with its metadata and
//!   last read, filtered (the CLI's `inventory` uses it too).
//! - [`metadata`]: a metadata change as fields to set and names to reset.
//! - [`pg`]: a PostgreSQL password rotation and the [`pg::CredentialFeed`]
//!   a host-language pool (asyncpg, psycopg, node-postgres) asks for its
//!   login, which refreshes once for all waiters after a refused login
//!   (`28P01`).
//! - [`shamir`]: Shamir shares as the `srs1-...` texts hosts hand out.
//! - [`time`]: millisecond timestamps and durations, the one unit of time
//!   the bindings use.

#![forbid(unsafe_code)]

pub mod apikey;
pub mod dynamic;
pub mod inventory;
pub mod metadata;
pub mod pg;
pub mod shamir;
pub mod storage;
pub mod time;
