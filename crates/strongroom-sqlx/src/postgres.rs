//! PostgreSQL backend: one table shared by any number of processes.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use strongroom::storage::{BatchOp, Storage, prefix_upper_bound, scan_lower_bound};
use strongroom::{Error, Result, StorageErrorKind};

use crate::errors::pg;

/// The schema version this build writes, kept in the table's comment.
const SCHEMA_VERSION: u32 = 1;
/// The table comment that marks a Strongroom table and its schema version.
const COMMENT_PREFIX: &str = "strongroom kv schema ";
/// First key of every advisory lock this backend takes ("STRM"), so its
/// locks do not collide with other users of the same database.
const LOCK_CLASS: i32 = 0x5354_524D;
/// How long [`PgStore::connect`] waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Storage`] in the PostgreSQL table `strongroom_kv`
/// (`key BYTEA PRIMARY KEY, value BYTEA NOT NULL`).
///
/// Each batch runs in one transaction. Before checking preconditions the
/// batch takes a transaction-scoped advisory lock on every key it reads or
/// writes (in a fixed order, so batches never deadlock), so concurrent
/// compare-and-set from any number of connections, pools or processes has
/// exactly one winner, including two writers that both expect a key to be
/// absent.
///
/// The table is created if missing. Its comment records the schema version;
/// a table written by a newer Strongroom is refused with
/// [`StorageErrorKind::UnsupportedVersion`].
///
/// Errors: an unreachable server is [`StorageErrorKind::Unavailable`], a
/// rejected login or missing privilege is [`StorageErrorKind::Rejected`].
/// Connection URLs never appear in errors or `Debug` output.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) with
    /// a pool of up to 10 connections, and creates the table if missing.
    ///
    /// The password is taken from the URL only (percent-encoded), never from
    /// `PGPASSWORD` or `~/.pgpass`; to build the connection some other way
    /// (TLS settings, a password from elsewhere) use [`PgStore::from_pool`].
    ///
    /// # Errors
    ///
    /// [`StorageErrorKind::Unavailable`] if no connection could be made within
    /// 10 seconds; [`StorageErrorKind::Rejected`] if the server refused the
    /// login, the URL is malformed, or the role may not create or use the
    /// table.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut options: sqlx::postgres::PgConnectOptions = url.parse().map_err(|_| {
            Error::storage(
                "postgres",
                StorageErrorKind::Rejected,
                "the connection URL is malformed (expected postgres://user:password@host:port/database)",
            )
        })?;
        if !url_has_password(url) {
            // sqlx would fall back to PGPASSWORD and ~/.pgpass; a password is
            // only ever taken from what the caller passed.
            options = options.password("");
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| pg("cannot connect", e))?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (so the caller chooses its size, timeouts and
    /// TLS), and creates the table if missing.
    ///
    /// # Errors
    ///
    /// As for [`PgStore::connect`].
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        let store = Self { pool };
        store.init_schema().await?;
        Ok(store)
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool's connections. Later calls fail with
    /// [`StorageErrorKind::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn init_schema(&self) -> Result<()> {
        let err = |e| pg("cannot prepare the strongroom_kv table", e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        // Serialise schema creation between instances starting together.
        sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind(LOCK_CLASS)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let comment: Option<Option<String>> = sqlx::query_scalar(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c \
             WHERE c.oid = to_regclass('strongroom_kv')",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        match comment {
            None => {
                sqlx::query(
                    "CREATE TABLE strongroom_kv (key BYTEA PRIMARY KEY, value BYTEA NOT NULL)",
                )
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                sqlx::query("COMMENT ON TABLE strongroom_kv IS 'strongroom kv schema 1'")
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)?;
                Ok(())
            }
            Some(comment) => {
                let version = comment
                    .as_deref()
                    .and_then(|c| c.strip_prefix(COMMENT_PREFIX))
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match version {
                    Some(v) if v > SCHEMA_VERSION => Err(Error::storage(
                        "postgres",
                        StorageErrorKind::UnsupportedVersion,
                        format!(
                            "table strongroom_kv has schema version {v}, written by a newer Strongroom (this build reads version {SCHEMA_VERSION}); upgrade Strongroom"
                        ),
                    )),
                    Some(_) => Ok(()),
                    None => Err(Error::storage(
                        "postgres",
                        StorageErrorKind::Corrupt,
                        "a table named strongroom_kv exists but is not a Strongroom table (its comment does not name a schema version); use another database or schema",
                    )),
                }
            }
        }
    }
}

/// Whether a connection URL carries a password (`user:password@` or a
/// `password=` query parameter).
fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let authority = authority.split('/').next().unwrap_or("");
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    in_userinfo || query.split('&').any(|kv| kv.starts_with("password="))
}

/// The advisory lock key for a storage key: 32 bits of its SHA-256. Two keys
/// sharing a lock only serialise their writers; they never conflict.
fn lock_id(key: &str) -> i32 {
    let digest = ring_digest(key.as_bytes());
    i32::from_be_bytes(digest)
}

fn ring_digest(bytes: &[u8]) -> [u8; 4] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 4];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

fn op_key(op: &BatchOp) -> &str {
    match op {
        BatchOp::Put { key, .. } | BatchOp::Delete { key } | BatchOp::Expect { key, .. } => key,
    }
}

async fn lock_keys(tx: &mut Transaction<'static, Postgres>, ops: &[BatchOp]) -> Result<()> {
    let ids: BTreeSet<i32> = ops.iter().map(|op| lock_id(op_key(op))).collect();
    for id in ids {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(|e| pg("cannot lock keys", e))?;
    }
    Ok(())
}

#[async_trait]
impl Storage for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM strongroom_kv WHERE key = $1")
            .bind(key.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| pg("read failed", e))
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lower = scan_lower_bound(prefix, start_after);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let query = match prefix_upper_bound(prefix) {
            Some(upper) => sqlx::query(
                "SELECT key, value FROM strongroom_kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
            )
            .bind(lower)
            .bind(upper)
            .bind(limit),
            None => sqlx::query(
                "SELECT key, value FROM strongroom_kv WHERE key >= $1 ORDER BY key LIMIT $2",
            )
            .bind(lower)
            .bind(limit),
        };
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| pg("scan failed", e))?;
        rows.into_iter()
            .map(|row| {
                let key: Vec<u8> = row.try_get(0).map_err(|e| pg("scan failed", e))?;
                let value: Vec<u8> = row.try_get(1).map_err(|e| pg("scan failed", e))?;
                let key = String::from_utf8(key).map_err(|e| {
                    Error::storage(
                        "postgres",
                        StorageErrorKind::Corrupt,
                        format!(
                            "table strongroom_kv holds a key that is not UTF-8 ({:?})",
                            String::from_utf8_lossy(e.as_bytes())
                        ),
                    )
                })?;
                Ok((key, value))
            })
            .collect()
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let err = |e| pg("write failed", e);
        // Read committed whatever the database's default: each check below
        // must see the commits of writers that held the key locks before us.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(err)?;
        lock_keys(&mut tx, &ops).await?;
        // Every writer of these keys holds their locks, and each statement
        // below takes a fresh snapshot, so these reads see the latest commit.
        for op in &ops {
            if let BatchOp::Expect { key, value } = op {
                let current: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT value FROM strongroom_kv WHERE key = $1")
                        .bind(key.as_bytes())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(err)?;
                if current != *value {
                    tx.rollback().await.map_err(err)?;
                    return Err(Error::StorageConflict { key: key.clone() });
                }
            }
        }
        for op in ops {
            match op {
                BatchOp::Put { key, value } => {
                    sqlx::query(
                        "INSERT INTO strongroom_kv (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    )
                    .bind(key.into_bytes())
                    .bind(value)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                }
                BatchOp::Delete { key } => {
                    sqlx::query("DELETE FROM strongroom_kv WHERE key = $1")
                        .bind(key.into_bytes())
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
                BatchOp::Expect { .. } => {}
            }
        }
        tx.commit().await.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_passwords_in_urls() {
        assert!(url_has_password("postgres://u:p@h:5432/db"));
        assert!(url_has_password("postgres://u:p%40x@h/db?sslmode=disable"));
        assert!(url_has_password(
            "postgres://u@h/db?sslmode=disable&password=x"
        ));
        assert!(!url_has_password("postgres://u@h:5432/db"));
        assert!(!url_has_password("postgres://h/db"));
        assert!(!url_has_password("not a url"));
    }

    #[test]
    fn lock_ids_are_stable() {
        // Every instance, whatever its build, must map a key to the same lock.
        assert_eq!(lock_id(""), i32::from_be_bytes([0xe3, 0xb0, 0xc4, 0x42]));
        assert_ne!(lock_id("a"), lock_id("b"));
    }
}
