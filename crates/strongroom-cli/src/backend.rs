//! Where a store lives: an SQLite file, or a PostgreSQL database named by a
//! `postgres://` (or `postgresql://`) URL given as `--db` or `STRONGROOM_DB`.

use std::path::Path;
use std::sync::Arc;

use strongroom::storage::DynStorage;
use strongroom_sqlx::{PgStore, SqliteStore};

use crate::exit::{CliResult, Failure};

/// An open storage backend.
pub(crate) enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

/// The PostgreSQL URL `db` holds, if it is one.
pub(crate) fn postgres_url(db: &Path) -> Option<&str> {
    db.to_str()
        .filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// `db` as messages show it: a file path as it is; a URL with its password
/// (and everything before the host) left out.
pub(crate) fn display(db: &Path) -> String {
    match postgres_url(db) {
        Some(url) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = host.split_once('?').map_or(host, |(h, _)| h);
            format!("{scheme}://{host}")
        }
        None => db.display().to_string(),
    }
}

impl Backend {
    /// Opens `db`: connects to the PostgreSQL database its URL names
    /// (creating the store's table if missing), or opens the SQLite file
    /// (creating it if missing).
    pub(crate) async fn open(db: &Path) -> CliResult<Self> {
        Ok(match postgres_url(db) {
            Some(url) => Self::Postgres(Arc::new(PgStore::connect(url).await?)),
            None => Self::Sqlite(Arc::new(SqliteStore::open(db).await?)),
        })
    }

    /// Opens an existing store for a command: as [`Backend::open`], but an
    /// SQLite file is opened read-only when `read_only` is asked or this
    /// process cannot write the file (then every write is refused and
    /// reads work). A PostgreSQL store has no read-only open here.
    pub(crate) async fn open_for_use(db: &Path, read_only: bool) -> CliResult<Self> {
        if postgres_url(db).is_some() {
            if read_only {
                return Err(Failure::Usage(
                    "--read-only is for SQLite files; for PostgreSQL, connect as a role that may only read".into(),
                ));
            }
            return Self::open(db).await;
        }
        let writable = rustix::fs::access(db, rustix::fs::Access::WRITE_OK).is_ok();
        if read_only || !writable {
            return Ok(Self::Sqlite(Arc::new(
                SqliteStore::open_read_only(db).await?,
            )));
        }
        Self::open(db).await
    }

    /// The storage, for the library.
    pub(crate) fn storage(&self) -> DynStorage {
        match self {
            Self::Sqlite(s) => s.clone(),
            Self::Postgres(p) => p.clone(),
        }
    }

    /// Closes the file or the connections (and the change watcher).
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_credentials() {
        let shown = display(Path::new(
            "postgres://app:hunter2@db.example:5432/vault?sslmode=require",
        ));
        assert_eq!(shown, "postgres://db.example:5432/vault");
        assert_eq!(display(Path::new("/srv/store.db")), "/srv/store.db");
        assert!(postgres_url(Path::new("postgresql://h/d")).is_some());
        assert!(postgres_url(Path::new("./postgres.db")).is_none());
    }
}
