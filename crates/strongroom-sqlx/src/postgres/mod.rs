//! PostgreSQL backend: one table shared by any number of processes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use strongroom::backoff::Backoff;
use strongroom::storage::{
    BatchOp, ChangeFeed, LastRecord, Storage, StorageEvent, prefix_upper_bound, scan_lower_bound,
};
use strongroom::{Error, Result, StorageErrorKind};

use crate::errors::pg;

mod batch;
mod notice;

use batch::{apply_writes, failed_precondition, lock_keys};
use notice::{PgChanges, notice_payload};

/// The schema version this build writes, kept in the table's comment.
const SCHEMA_VERSION: u32 = 1;
/// The table comment that marks a Strongroom table and its schema version.
const COMMENT_PREFIX: &str = "strongroom kv schema ";
/// First key of every advisory lock this backend takes ("STRM"), so its
/// locks do not collide with other users of the same database.
const LOCK_CLASS: i32 = 0x5354_524D;
/// How long [`PgStore::connect`] waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `LISTEN/NOTIFY` channel every batch announces its keys on.
const CHANNEL: &str = "strongroom_kv";
/// The first word of a notice payload: the payload format's version.
const NOTICE_VERSION: &str = "sr1";
/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7999;
/// The first and the longest wait before the listener reconnects.
const LISTEN_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// A [`Storage`] in the PostgreSQL table `strongroom_kv`
/// (`key BYTEA PRIMARY KEY, value BYTEA NOT NULL`).
///
/// Each batch runs in one transaction. Before checking preconditions the
/// batch takes a transaction-scoped advisory lock on every key it reads or
/// writes (in a fixed order, so batches never deadlock), so concurrent
/// compare-and-set from any number of connections, pools or processes has
/// exactly one winner, including two writers that both expect a key to be
/// absent. Whatever its size, a batch is at most six round trips: `BEGIN`,
/// the locks (one statement), the preconditions (one), the deletes (one),
/// the puts (one), `COMMIT`.
///
/// The table is created if missing. Its comment records the schema version;
/// a table written by a newer Strongroom is refused with
/// [`StorageErrorKind::UnsupportedVersion`].
///
/// # TLS
///
/// Connections go through rustls (ring provider). [`PgStore::connect`]
/// honours `sslmode` in the URL as libpq does: `disable`, `prefer` (the
/// default, unless `PGSSLMODE` says otherwise: TLS when the server offers it,
/// certificate not checked), `require` (TLS or no connection, certificate
/// not checked), `verify-ca` (the certificate must chain to a trusted root)
/// and `verify-full` (and name the host: a DNS name or, for an address such
/// as `127.0.0.1`, an IP address entry). `sslrootcert=/path/ca.pem` adds
/// the PEM certificates in that file to the trusted roots; note that the
/// trusted roots also hold the public web PKI roots (webpki-roots), which
/// libpq does not trust by default. Use `verify-full` with `sslrootcert`
/// naming your own CA in production:
///
/// ```text
/// postgres://app:pw@db.internal:5432/secrets?sslmode=verify-full&sslrootcert=/etc/strongroom/db-ca.pem
/// ```
///
/// A certificate that does not verify, a server without TLS when `sslmode`
/// requires it, or a server that refuses the encryption choice (a
/// `hostssl`-only `pg_hba.conf` and `sslmode=disable`) fail with
/// [`StorageErrorKind::Rejected`]: retrying cannot help, the configuration
/// must change. The message names the cause (for example "invalid peer
/// certificate: UnknownIssuer"), never the URL or the password.
///
/// # Change notification
///
/// Every batch that writes or deletes keys sends one `pg_notify` on the
/// channel `strongroom_kv` inside its transaction (from the statement that
/// takes its key locks, so no extra round trip), and the notice is
/// delivered only if the batch commits. [`Storage::watch`] starts, on its first call, a listener (one
/// more connection, made with the pool's current connect options, so
/// rotated credentials and TLS settings apply) that turns these notices
/// into [`StorageEvent::Changed`] with the keys. The store's own commits are
/// announced to its feeds directly when they commit (not again by the
/// listener). The listener sends [`StorageEvent::Unknown`] when it starts
/// listening and after every reconnection, as notices may have been missed
/// meanwhile. It stops when the last clone of the store is dropped or on
/// [`PgStore::close`]; the feeds then close.
///
/// The notice payload (format `sr1`) is one line `sr1 <origin>`, then one
/// line per key with bytes outside printable ASCII and `%` percent-encoded;
/// a batch whose keys do not fit PostgreSQL's 8000-byte payload limit sends
/// `sr1 <origin> unknown` instead, which becomes [`StorageEvent::Unknown`].
/// Channels are per database: stores in other schemas of the same database
/// hear each other's notices (harmless, they only cause rereads).
///
/// # Errors
///
/// An unreachable server is [`StorageErrorKind::Unavailable`], a rejected
/// login, missing privilege or failed TLS verification is
/// [`StorageErrorKind::Rejected`]. Connection URLs never appear in errors or
/// `Debug` output.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    changes: Arc<PgChanges>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`,
    /// optionally `?sslmode=verify-full&sslrootcert=/path/ca.pem`; see
    /// [TLS](PgStore#tls)) with a pool of up to 10 connections, and creates
    /// the table if missing.
    ///
    /// The password is taken from the URL only (percent-encoded), never from
    /// `PGPASSWORD` or `~/.pgpass`; to build the connection some other way
    /// (client certificates, a password from elsewhere) use
    /// [`PgStore::from_pool`].
    ///
    /// # Errors
    ///
    /// [`StorageErrorKind::Unavailable`] if no connection could be made within
    /// 10 seconds; [`StorageErrorKind::Rejected`] if the server refused the
    /// login or the connection's encryption, the server's certificate did
    /// not verify, the URL is malformed (an unknown `sslmode` included), or
    /// the role may not create or use the table.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut options: sqlx::postgres::PgConnectOptions = url.parse().map_err(|_| {
            Error::storage(
                "postgres",
                StorageErrorKind::Rejected,
                "the connection URL is malformed (expected postgres://user:password@host:port/database, optionally with ?sslmode=disable|prefer|require|verify-ca|verify-full and sslrootcert=<file>)",
            )
        })?;
        check_certificate_files(url)?;
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
        let store = Self {
            pool,
            changes: Arc::new(PgChanges::new()),
        };
        store.init_schema().await?;
        Ok(store)
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stops the change listener (feeds from [`Storage::watch`] close) and
    /// closes the pool's connections. Later calls fail with
    /// [`StorageErrorKind::Unavailable`]; `watch` returns `None`.
    pub async fn close(&self) {
        self.changes.close();
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

/// Refuses a URL whose `sslrootcert`, `sslcert` or `sslkey` names a file
/// that cannot be read, with a message naming the parameter (sqlx would
/// report only "No such file or directory" on connecting).
fn check_certificate_files(url: &str) -> Result<()> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let param = match name {
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => "sslrootcert",
            "sslcert" | "ssl-cert" => "sslcert",
            "sslkey" | "ssl-key" => "sslkey",
            _ => continue,
        };
        let value = query_decode(value);
        let trimmed = value.trim();
        if trimmed.starts_with("-----BEGIN") && trimmed.ends_with("-----") {
            // PEM given inline
            continue;
        }
        if let Err(e) = std::fs::File::open(&value) {
            return Err(Error::storage(
                "postgres",
                StorageErrorKind::Rejected,
                format!("{param} names a file that cannot be read ({value}: {e})"),
            ));
        }
    }
    Ok(())
}

/// Decodes a URL query value (`%XX` escapes, `+` for a space).
fn query_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A key read back from the table, which only ever stores UTF-8 keys.
fn decode_key(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|e| {
        Error::storage(
            "postgres",
            StorageErrorKind::Corrupt,
            format!(
                "table strongroom_kv holds a key that is not UTF-8 ({:?})",
                String::from_utf8_lossy(e.as_bytes())
            ),
        )
    })
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
                Ok((decode_key(key)?, value))
            })
            .collect()
    }

    async fn get_with_last(
        &self,
        key: &str,
        prefix: &str,
    ) -> Result<(Option<Vec<u8>>, LastRecord)> {
        // One statement, so one snapshot and one round trip.
        let query = match prefix_upper_bound(prefix) {
            Some(upper) => sqlx::query(
                "SELECT 0, key, value FROM strongroom_kv WHERE key = $1 \
                 UNION ALL (SELECT 1, key, value FROM strongroom_kv \
                 WHERE key >= $2 AND key < $3 ORDER BY key DESC LIMIT 1)",
            )
            .bind(key.as_bytes())
            .bind(prefix.as_bytes())
            .bind(upper),
            None => sqlx::query(
                "SELECT 0, key, value FROM strongroom_kv WHERE key = $1 \
                 UNION ALL (SELECT 1, key, value FROM strongroom_kv \
                 WHERE key >= $2 ORDER BY key DESC LIMIT 1)",
            )
            .bind(key.as_bytes())
            .bind(prefix.as_bytes()),
        };
        let err = |e| pg("read failed", e);
        let rows = query.fetch_all(&self.pool).await.map_err(err)?;
        let mut out = (None, None);
        for row in rows {
            let tag: i32 = row.try_get(0).map_err(err)?;
            let value: Vec<u8> = row.try_get(2).map_err(err)?;
            if tag == 0 {
                out.0 = Some(value);
            } else {
                let k: Vec<u8> = row.try_get(1).map_err(err)?;
                out.1 = Some((decode_key(k)?, value));
            }
        }
        Ok(out)
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
        let changed: Vec<String> = ops
            .iter()
            .filter_map(BatchOp::written_key)
            .map(str::to_owned)
            .collect();
        // One notice per batch that writes, announcing its keys.
        let notice = (!changed.is_empty()).then(|| notice_payload(&self.changes.origin, &changed));
        lock_keys(&mut tx, &ops, notice).await?;
        // Every writer of these keys holds their locks, and each statement
        // below takes a fresh snapshot, so these reads see the latest commit.
        if let Some(key) = failed_precondition(&mut tx, &ops).await? {
            tx.rollback().await.map_err(err)?;
            return Err(Error::StorageConflict { key });
        }
        apply_writes(&mut tx, ops).await?;
        tx.commit().await.map_err(err)?;
        if !changed.is_empty() {
            self.changes.announce(StorageEvent::Changed(changed));
        }
        Ok(())
    }

    fn watch(&self) -> Option<ChangeFeed> {
        self.changes.subscribe(&self.pool)
    }
}

#[cfg(test)]
mod tests {
    use super::batch::lock_id;
    use super::notice::{new_origin, parse_notice};
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
    fn certificate_files_must_be_readable() {
        assert!(check_certificate_files("postgres://u:p@h/db?sslmode=require").is_ok());
        let err = check_certificate_files(
            "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Fno%2Fsuch%20ca.pem",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sslrootcert") && text.contains("/no/such ca.pem"),
            "{text}"
        );
        assert!(!text.contains("u:p"), "{text}");
        assert!(check_certificate_files("postgres://h/db?sslkey=/no/such/key").is_err());
        assert!(
            check_certificate_files(
                "postgres://h/db?sslrootcert=-----BEGIN%20CERTIFICATE-----x-----END%20CERTIFICATE-----"
            )
            .is_ok()
        );
    }

    #[test]
    fn notices_round_trip_and_skip_their_origin() {
        let keys = vec![
            "kvm/app/db".to_owned(),
            "s/kv/a b%\nc@0001".to_owned(),
            "é/ü".to_owned(),
        ];
        let payload = notice_payload("00ff", &keys);
        assert!(payload.is_ascii());
        assert_eq!(payload.lines().count(), 4);
        assert_eq!(
            parse_notice(&payload, "abcd"),
            Some(StorageEvent::Changed(keys))
        );
        assert_eq!(parse_notice(&payload, "00ff"), None);
        // too long for one notice: Unknown
        let many: Vec<String> = (0..200).map(|i| format!("some/long/key/{i:060}")).collect();
        let payload = notice_payload("00ff", &many);
        assert!(payload.len() <= MAX_PAYLOAD);
        assert_eq!(parse_notice(&payload, "abcd"), Some(StorageEvent::Unknown));
        // other formats and damaged payloads: Unknown
        for other in ["", "sr2 x\nk", "sr1 x\nbad%zz", "sr1 x\n%ff", "sr1 x"] {
            assert_eq!(
                parse_notice(other, "abcd"),
                Some(StorageEvent::Unknown),
                "{other:?}"
            );
        }
        assert_ne!(new_origin(), new_origin());
    }

    #[test]
    fn lock_ids_are_stable() {
        // Every instance, whatever its build, must map a key to the same lock.
        assert_eq!(lock_id(""), i32::from_be_bytes([0xe3, 0xb0, 0xc4, 0x42]));
        assert_ne!(lock_id("a"), lock_id("b"));
    }
}
