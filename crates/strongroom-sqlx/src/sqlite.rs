//! The embedded default backend: one SQLite file.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, SqlitePool};
use strongroom::storage::{
    BatchOp, ChangeFeed, Storage, StorageEvent, prefix_upper_bound, scan_lower_bound,
};
use strongroom::{Error, Result, StorageErrorKind};
use tokio::sync::broadcast;

use crate::errors::{describe, sqlite_kind};
use crate::feed::ChangeHub;

/// The schema version this build writes and understands (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;
/// `PRAGMA application_id` of a Strongroom store ("STRM").
const APPLICATION_ID: i64 = 0x5354_524D;
/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections used for reads.
const READERS: u32 = 4;
/// How often the change watcher checks `PRAGMA data_version`.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// The longest wait before the change watcher reopens its connection.
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A [`Storage`] in one SQLite file.
///
/// The file is created on first use with the WAL journal and
/// `synchronous=FULL`, so a batch is on disk when [`Storage::batch`] returns.
/// Records live in one table with `BLOB` keys (bytewise order). The schema
/// version is kept in `PRAGMA user_version`; a file written by a newer
/// Strongroom is refused with [`StorageErrorKind::UnsupportedVersion`], and a
/// damaged file or one that is not a Strongroom store with
/// [`StorageErrorKind::Corrupt`] (the file is not modified).
///
/// Writes go through one connection and use `BEGIN IMMEDIATE`, so writers in
/// one process queue up and writers in other processes wait (up to 10 s) for
/// the file lock instead of failing with "database is locked". Reads use a
/// small pool of their own connections and never block writers.
///
/// Clones are cheap and share the same connections.
///
/// # Change notification
///
/// [`Storage::watch`] feeds get this store's own commits as
/// [`StorageEvent::Changed`] with their keys, as they commit. Commits by
/// other processes (or other `SqliteStore`s on the same file) carry no keys
/// SQLite could tell: the first call to `watch` starts a watcher with a
/// read-only connection of its own that runs `PRAGMA data_version` every
/// 100 ms (a check of a shared-memory counter, no table read). When it moved,
/// the watcher asks this store's writer connection, whose `data_version`
/// moves only for other connections' commits, and if they committed sends
/// [`StorageEvent::Unknown`] (so this store's own commits are never reported
/// twice). It also sends `Unknown` when it starts (commits before then were
/// not watched) and after reopening its connection. It stops when the store
/// is closed or its last clone dropped; the feeds then close.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    writer: SqlitePool,
    readers: SqlitePool,
    changes: Arc<SqliteChanges>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Settings read back from an open [`SqliteStore`], for health checks and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteDiagnostics {
    /// `PRAGMA journal_mode` (`"wal"`).
    pub journal_mode: String,
    /// `PRAGMA synchronous` on the writer connection (2 = FULL).
    pub synchronous: i64,
    /// `PRAGMA busy_timeout` on the writer connection, in milliseconds.
    pub busy_timeout_ms: i64,
    /// `PRAGMA user_version`: the store's schema version.
    pub schema_version: i64,
    /// The number of records.
    pub records: i64,
}

impl SqliteStore {
    /// Opens the store in the file at `path`, creating the file (not its
    /// directory) if it does not exist.
    ///
    /// # File permissions
    ///
    /// A new file is created with mode 0600 whatever the process's umask,
    /// and SQLite gives the `-wal`, `-shm` and `-journal` files it creates
    /// beside it the database file's mode, so they are 0600 too. The mode
    /// of a file that already exists is left as it is (an operator may share
    /// a store with a group on purpose, and a library changing a file it did
    /// not create would surprise them); if the file, or an existing `-wal`
    /// or `-shm` file, grants its group or other users any access, a
    /// `tracing` warning names the file and its mode. Stores created by
    /// earlier versions were 0644 under the usual umask: `chmod 600` them.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] with [`StorageErrorKind::Corrupt`] if the file is not
    /// an SQLite database, is truncated or damaged, or holds another
    /// application's tables; [`StorageErrorKind::UnsupportedVersion`] if a
    /// newer Strongroom wrote it; [`StorageErrorKind::Unavailable`] or
    /// [`StorageErrorKind::Rejected`] if it cannot be opened or written.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        tokio::task::spawn_blocking(move || check_file(&p))
            .await
            .map_err(|e| {
                Error::storage(
                    "sqlite",
                    StorageErrorKind::Other,
                    format!("{}: file check did not finish: {e}", path.display()),
                )
            })??;

        let options = SqliteConnectOptions::new()
            .filename(&path)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(false);
        let changes = Arc::new(SqliteChanges::new());
        let writer_connections = Arc::clone(&changes.writer_connections);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |_, _| {
                // The watcher compares data_version only within one connection.
                writer_connections.fetch_add(1, Ordering::AcqRel);
                Box::pin(std::future::ready(Ok(())))
            })
            .connect_with(options.clone().create_if_missing(true))
            .await
            .map_err(|e| sqlite_error(&path, "cannot open", &e))?;
        let store_writer = writer.clone();
        let result = async {
            // The journal mode is switched only after the file proved to be a
            // Strongroom store, so a foreign or damaged file is not modified.
            init_schema(&path, &writer).await?;
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&writer)
                .await
                .map_err(|e| sqlite_error(&path, "cannot enable the WAL journal", &e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::storage(
                    "sqlite",
                    StorageErrorKind::Rejected,
                    format!(
                        "{}: cannot enable the WAL journal (journal mode stayed {mode:?}); is the file on a network file system?",
                        path.display()
                    ),
                ));
            }
            let readers = SqlitePoolOptions::new()
                .max_connections(READERS)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(
                    options
                        .journal_mode(SqliteJournalMode::Wal)
                        .create_if_missing(false),
                )
                .await
                .map_err(|e| sqlite_error(&path, "cannot open", &e))?;
            Ok(Self {
                path: path.clone(),
                writer: store_writer,
                readers,
                changes,
            })
        }
        .await;
        if result.is_err() {
            writer.close().await;
        }
        result
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the change watcher (feeds from [`Storage::watch`] close) and
    /// closes every connection, checkpointing the WAL into the main file.
    /// Later calls on this store (or its clones) fail with
    /// [`StorageErrorKind::Unavailable`]; `watch` returns `None`. Dropping
    /// the store also closes it, in the background.
    pub async fn close(&self) {
        self.changes.close();
        self.readers.close().await;
        self.writer.close().await;
    }

    /// Reads back the settings that matter for durability and the record count.
    pub async fn diagnostics(&self) -> Result<SqliteDiagnostics> {
        let err = |e: sqlx::Error| sqlite_error(&self.path, "cannot read settings", &e);
        let mut conn = self.writer.acquire().await.map_err(err)?;
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?;
        let busy_timeout_ms: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?;
        let schema_version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?;
        let records: i64 = sqlx::query_scalar("SELECT count(*) FROM strongroom_kv")
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?;
        Ok(SqliteDiagnostics {
            journal_mode,
            synchronous,
            busy_timeout_ms,
            schema_version,
            records,
        })
    }
}

fn sqlite_error(path: &Path, what: &str, e: &sqlx::Error) -> Error {
    let kind = sqlite_kind(e);
    let hint = match kind {
        StorageErrorKind::Corrupt => {
            "; the file is damaged or is not a Strongroom store: restore it from a backup"
        }
        _ => "",
    };
    Error::storage(
        "sqlite",
        kind,
        format!("{}: {what}: {}{hint}", path.display(), describe(e)),
    )
}

fn corrupt(path: &Path, reason: &str) -> Error {
    Error::storage(
        "sqlite",
        StorageErrorKind::Corrupt,
        format!(
            "{}: {reason}; the file was left untouched: restore it from a backup or point Strongroom at another file",
            path.display()
        ),
    )
}

fn be32(header: &[u8], at: usize) -> u32 {
    header
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}

/// Checks an existing file's header before SQLite touches it, so a file that
/// is not a database, or a truncated one, is refused without being modified.
pub(crate) fn check_file(path: &Path) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return create_file(path),
        Err(e) => {
            return Err(Error::storage(
                "sqlite",
                StorageErrorKind::Unavailable,
                format!("{}: cannot read: {e}", path.display()),
            ));
        }
    };
    if !meta.is_file() {
        return Err(Error::storage(
            "sqlite",
            StorageErrorKind::Rejected,
            format!("{}: is not a regular file", path.display()),
        ));
    }
    warn_if_loose(path, &meta);
    for suffix in ["-wal", "-shm"] {
        if let Ok(m) = std::fs::metadata(sibling(path, suffix)) {
            warn_if_loose(&sibling(path, suffix), &m);
        }
    }
    let len = meta.len();
    if len == 0 {
        // SQLite treats an empty file as a new database.
        return Ok(());
    }
    let mut header = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(|e| {
            Error::storage(
                "sqlite",
                StorageErrorKind::Unavailable,
                format!("{}: cannot read: {e}", path.display()),
            )
        })?;
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(corrupt(path, "is not an SQLite database"));
    }
    let raw_page = u32::from(u16::from_be_bytes([header[16], header[17]]));
    let page_size = if raw_page == 1 { 65_536 } else { raw_page };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(corrupt(path, "has an invalid SQLite header (page size)"));
    }
    let wal = sibling(path, "-wal");
    let wal_has_frames = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if wal_has_frames {
        // Pages may still live in the write-ahead log; SQLite checks the rest.
        return Ok(());
    }
    if len % u64::from(page_size) != 0 {
        return Err(corrupt(
            path,
            &format!("is truncated ({len} bytes is not a whole number of {page_size}-byte pages)"),
        ));
    }
    let pages = be32(&header, 28);
    let header_valid = pages > 0 && be32(&header, 24) == be32(&header, 92);
    let expected = u64::from(pages) * u64::from(page_size);
    if header_valid && len < expected {
        return Err(corrupt(
            path,
            &format!("is truncated (the header says {expected} bytes, the file has {len})"),
        ));
    }
    Ok(())
}

/// The permission bits a store file may have: read and write for its owner.
const FILE_MODE: u32 = 0o600;

/// `path` with `suffix` appended (`-wal`, `-shm`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Creates a new, empty store file with mode 0600 whatever the umask, so
/// that SQLite (which gives its `-journal`, `-wal` and `-shm` files the
/// database file's mode) never creates a file another user can read. An
/// empty file is a new database to SQLite. If another process created the
/// file meanwhile, its file is used as it is.
fn create_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path);
    match created {
        // The mode given to open(2) is filtered through the umask, which can
        // only take bits away; set it exactly anyway, in case a default ACL
        // on the directory granted more.
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| {
                Error::storage(
                    "sqlite",
                    StorageErrorKind::Rejected,
                    format!(
                        "{}: cannot set the file's mode to 0600: {e}",
                        path.display()
                    ),
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
                StorageErrorKind::Rejected
            } else {
                StorageErrorKind::Unavailable
            };
            Err(Error::storage(
                "sqlite",
                kind,
                format!("{}: cannot create: {e}", path.display()),
            ))
        }
    }
}

/// Warns (without changing anything) when a store file existed before with
/// permissions for its group or other users.
fn warn_if_loose(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & !FILE_MODE != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:04o}"),
            "the store file can be accessed by users other than its owner; Strongroom leaves an existing file's mode as it is: run `chmod 600` on it (and its -wal and -shm files) unless the group access is intended"
        );
    }
}

/// Creates the table on a new file, or checks an existing file's schema.
async fn init_schema(path: &Path, writer: &SqlitePool) -> Result<()> {
    let err = |e: sqlx::Error| sqlite_error(path, "cannot open the store", &e);
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    let app_id: i64 = sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(Error::storage(
            "sqlite",
            StorageErrorKind::UnsupportedVersion,
            format!(
                "{}: schema version {version} was written by a newer Strongroom (this build reads version {SCHEMA_VERSION}); upgrade Strongroom",
                path.display()
            ),
        ));
    }
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(corrupt(
            path,
            "is an SQLite database of another application",
        ));
    }
    if version == 0 {
        let objects: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        if objects > 0 || app_id != 0 {
            return Err(corrupt(
                path,
                "is an SQLite database but not a Strongroom store (it already has tables)",
            ));
        }
        sqlx::query(
            "CREATE TABLE strongroom_kv (key BLOB NOT NULL PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
        )
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        sqlx::query("PRAGMA application_id = 1398035021")
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query("PRAGMA user_version = 1")
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        return Ok(());
    }
    if app_id != APPLICATION_ID {
        return Err(corrupt(path, "is not a Strongroom store (application id)"));
    }
    let table: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'strongroom_kv'",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(err)?;
    if table != 1 {
        return Err(corrupt(path, "the strongroom_kv table is missing"));
    }
    tx.rollback().await.map_err(err)?;
    // A full page-by-page check would cost a read of the whole file; the
    // quick check verifies every b-tree page and catches truncation and
    // overwritten pages.
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_all(writer)
        .await
        .map_err(err)?;
    if rows.len() != 1 || rows.first().map(String::as_str) != Some("ok") {
        let first = rows.first().cloned().unwrap_or_default();
        return Err(corrupt(
            path,
            &format!("failed SQLite's integrity check: {first}"),
        ));
    }
    Ok(())
}

fn decode_key(path: &Path, key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|e| {
        corrupt(
            path,
            &format!(
                "holds a key that is not UTF-8 ({:?})",
                String::from_utf8_lossy(e.as_bytes())
            ),
        )
    })
}

#[async_trait]
impl Storage for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM strongroom_kv WHERE key = ?1")
            .bind(key.as_bytes())
            .fetch_optional(&self.readers)
            .await
            .map_err(|e| sqlite_error(&self.path, "read failed", &e))
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
                "SELECT key, value FROM strongroom_kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
            )
            .bind(lower)
            .bind(upper)
            .bind(limit),
            None => sqlx::query(
                "SELECT key, value FROM strongroom_kv WHERE key >= ?1 ORDER BY key LIMIT ?2",
            )
            .bind(lower)
            .bind(limit),
        };
        let rows = query
            .fetch_all(&self.readers)
            .await
            .map_err(|e| sqlite_error(&self.path, "scan failed", &e))?;
        rows.into_iter()
            .map(|row| {
                let key: Vec<u8> = row
                    .try_get(0)
                    .map_err(|e| sqlite_error(&self.path, "scan failed", &e))?;
                let value: Vec<u8> = row
                    .try_get(1)
                    .map_err(|e| sqlite_error(&self.path, "scan failed", &e))?;
                Ok((decode_key(&self.path, key)?, value))
            })
            .collect()
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let err = |e: sqlx::Error| sqlite_error(&self.path, "write failed", &e);
        let changed: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                BatchOp::Put { key, .. } | BatchOp::Delete { key } => Some(key.clone()),
                BatchOp::Expect { .. } => None,
            })
            .collect();
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err)?;
        for op in &ops {
            if let BatchOp::Expect { key, value } = op {
                let current: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT value FROM strongroom_kv WHERE key = ?1")
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
                        "INSERT INTO strongroom_kv (key, value) VALUES (?1, ?2) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(key.into_bytes())
                    .bind(value)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                }
                BatchOp::Delete { key } => {
                    sqlx::query("DELETE FROM strongroom_kv WHERE key = ?1")
                        .bind(key.into_bytes())
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
                BatchOp::Expect { .. } => {}
            }
        }
        tx.commit().await.map_err(err)?;
        if !changed.is_empty() {
            self.changes.announce(StorageEvent::Changed(changed));
        }
        Ok(())
    }

    fn watch(&self) -> Option<ChangeFeed> {
        self.changes.subscribe(&self.path, &self.writer)
    }
}

/// The change feeds of one store and its clones, and the watcher task
/// announcing other connections' commits.
struct SqliteChanges {
    hub: ChangeHub,
    /// Connections the writer pool opened (the writer's `data_version` is
    /// comparable only within one connection).
    writer_connections: Arc<AtomicU64>,
}

impl SqliteChanges {
    fn new() -> Self {
        Self {
            hub: ChangeHub::new(),
            writer_connections: Arc::new(AtomicU64::new(0)),
        }
    }

    fn announce(&self, event: StorageEvent) {
        self.hub.announce(event);
    }

    /// A new feed; starts the watcher if it is not running. `None` when the
    /// store is closed or no tokio runtime is there to run the watcher.
    fn subscribe(&self, path: &Path, writer: &SqlitePool) -> Option<ChangeFeed> {
        let (path, writer) = (path.to_path_buf(), writer.clone());
        let connections = Arc::clone(&self.writer_connections);
        self.hub
            .subscribe(|sender| watch_file(path, writer, connections, sender))
    }

    fn close(&self) {
        self.hub.close();
    }
}

/// `PRAGMA data_version` on one connection.
async fn data_version(conn: &mut SqliteConnection) -> std::result::Result<i64, sqlx::Error> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
}

/// The writer connection's identity and `data_version`: it moves only when
/// a connection other than the writer commits. `None` if it cannot be read.
async fn writer_version(writer: &SqlitePool, connections: &AtomicU64) -> Option<(u64, i64)> {
    let mut conn = writer.acquire().await.ok()?;
    // Read while holding the writer's only connection, so this is its number.
    let id = connections.load(Ordering::Acquire);
    let v = data_version(&mut conn).await.ok()?;
    Some((id, v))
}

/// The watcher task: watches through a connection of its own until that
/// fails, then opens another, until aborted.
async fn watch_file(
    path: PathBuf,
    writer: SqlitePool,
    writer_connections: Arc<AtomicU64>,
    tx: broadcast::Sender<StorageEvent>,
) {
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT);
    let mut backoff = WATCH_INTERVAL;
    loop {
        if let Ok(conn) = options.connect().await
            && watch_with(conn, &writer, &writer_connections, &tx).await
        {
            backoff = WATCH_INTERVAL;
        }
        if writer.is_closed() {
            return;
        }
        // The file may be unreadable for a moment; once the watcher is back
        // it says Unknown for whatever happened meanwhile.
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(WATCH_BACKOFF_MAX);
    }
}

/// Every [`WATCH_INTERVAL`] checks on `conn` whether any connection
/// committed, and if one other than the writer did sends
/// [`StorageEvent::Unknown`]; returns when `conn` fails (`true` if it had
/// worked). A baseline is always read before the `Unknown` that covers what
/// it absorbed is sent, so no commit goes unannounced.
async fn watch_with(
    mut conn: SqliteConnection,
    writer: &SqlitePool,
    writer_connections: &AtomicU64,
    tx: &broadcast::Sender<StorageEvent>,
) -> bool {
    let Ok(mut seen) = data_version(&mut conn).await else {
        return false;
    };
    let mut writer_seen = writer_version(writer, writer_connections).await;
    // Commits before now were not watched.
    let _ = tx.send(StorageEvent::Unknown);
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(now) = data_version(&mut conn).await else {
            break;
        };
        if now == seen {
            continue;
        }
        seen = now;
        // Someone committed: this store's writer, or another connection,
        // which the writer's data_version tells.
        let writer_now = writer_version(writer, writer_connections).await;
        let foreign = writer_now.is_none() || writer_now != writer_seen;
        writer_seen = writer_now;
        if foreign {
            let _ = tx.send(StorageEvent::Unknown);
        }
    }
    let _ = conn.close().await;
    true
}
