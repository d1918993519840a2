//! Opening a store by location, and closing it.
//!
//! A binding's `open("...")` takes one string:
//!
//! | location | store |
//! | --- | --- |
//! | `memory:` | in memory, lost when the last reference goes |
//! | `postgres://...`, `postgresql://...` | [`PgStore`] (shared by a fleet) |
//! | `sqlite:<path>` or a plain path | [`SqliteStore`] in that file |
//!
//! A PostgreSQL URL carries the password; it never appears in an error or
//! in `Debug` output ([`HostStorage`] prints only its backend).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom_sqlx::{PgStore, SqliteStore};

/// Where a store lives, parsed from a binding's location string.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// `memory:`.
    Memory,
    /// `sqlite:<path>` or a plain path.
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            // the URL may hold a password
            Self::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

impl Location {
    /// Parses a location (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`strongroom::Error::InvalidArgument`] for an empty location or an
    /// unknown scheme (`mysql://...`); the message quotes only the scheme.
    pub fn parse(location: &str) -> strongroom::Result<Self> {
        if location == "memory:" {
            return Ok(Self::Memory);
        }
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Ok(Self::Postgres(location.to_owned()));
        }
        let path = location.strip_prefix("sqlite:").unwrap_or(location);
        let path = path.strip_prefix("//").unwrap_or(path);
        if let Some((scheme, _)) = location.split_once("://")
            && scheme != "sqlite"
        {
            return Err(strongroom::Error::InvalidArgument(format!(
                "unknown store location scheme {scheme:?}: use memory:, sqlite:<path>, a file path or postgres://user:password@host/database"
            )));
        }
        if path.is_empty() {
            return Err(strongroom::Error::InvalidArgument(
                "the store location is empty: use memory:, sqlite:<path>, a file path or postgres://..."
                    .to_owned(),
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// An open storage backend and what closing it needs.
#[derive(Clone)]
pub struct HostStorage {
    storage: DynStorage,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Memory,
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl fmt::Debug for HostStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostStorage")
            .field("backend", &self.storage.backend())
            .finish_non_exhaustive()
    }
}

impl HostStorage {
    /// Opens the store at `location` (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// As for [`Location::parse`], [`SqliteStore::open`] and
    /// [`PgStore::connect`] (a refused login is a storage error of kind
    /// `Rejected`, an unreachable server `Unavailable`).
    pub async fn open(location: &str) -> strongroom::Result<Self> {
        match Location::parse(location)? {
            Location::Memory => Ok(Self::memory()),
            Location::Sqlite(path) => Ok(Self::sqlite(SqliteStore::open(path).await?)),
            Location::Postgres(url) => Ok(Self::postgres(PgStore::connect(&url).await?)),
        }
    }

    /// A new in-memory store.
    #[must_use]
    pub fn memory() -> Self {
        Self {
            storage: Arc::new(MemoryStorage::new()),
            backend: Backend::Memory,
        }
    }

    /// An SQLite store already open.
    #[must_use]
    pub fn sqlite(store: SqliteStore) -> Self {
        Self {
            storage: Arc::new(store.clone()),
            backend: Backend::Sqlite(store),
        }
    }

    /// A PostgreSQL store already connected.
    #[must_use]
    pub fn postgres(store: PgStore) -> Self {
        Self {
            storage: Arc::new(store.clone()),
            backend: Backend::Postgres(store),
        }
    }

    /// The storage, for [`strongroom::Strongroom::init`] and friends.
    #[must_use]
    pub fn storage(&self) -> &DynStorage {
        &self.storage
    }

    /// The backend's name (`"memory"`, `"sqlite"`, `"postgres"`).
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.storage.backend()
    }

    /// The PostgreSQL store, if this is one (for dynamic credentials and
    /// rotations that administer the same server).
    #[must_use]
    pub fn as_postgres(&self) -> Option<&PgStore> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            _ => None,
        }
    }

    /// Closes the backend's connections (SQLite: its connections and
    /// writer thread; PostgreSQL: its pool and change listener). Later
    /// calls through the storage fail with a storage error; closing twice
    /// is harmless. A memory store has nothing to close.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Memory => {}
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(Location::parse("memory:").ok(), Some(Location::Memory));
        assert_eq!(
            Location::parse("sqlite:/tmp/a.db").ok(),
            Some(Location::Sqlite("/tmp/a.db".into()))
        );
        assert_eq!(
            Location::parse("sqlite:///tmp/a.db").ok(),
            Some(Location::Sqlite("/tmp/a.db".into()))
        );
        assert_eq!(
            Location::parse("store.db").ok(),
            Some(Location::Sqlite("store.db".into()))
        );
        let pg = Location::parse("postgres://u:hunter2@h/db");
        assert!(matches!(pg, Ok(Location::Postgres(_))));
        assert!(!format!("{pg:?}").contains("hunter2"));
    }

    #[test]
    fn bad_locations_are_refused_without_echoing_them() {
        for bad in ["", "sqlite:", "mysql://u:hunter2@h/db"] {
            let err = Location::parse(bad).err();
            assert!(
                matches!(&err, Some(strongroom::Error::InvalidArgument(_))),
                "{bad:?}: {err:?}"
            );
            assert!(!format!("{err:?}").contains("hunter2"));
        }
    }
}
