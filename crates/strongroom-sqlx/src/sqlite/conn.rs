//! Opening connections, checking the schema, and mapping SQLite's errors.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use strongroom::{Error, Result, StorageErrorKind};

use super::SqliteDiagnostics;
use super::file::corrupt;

/// The schema version this build writes and understands (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;
/// The most page cache one connection keeps, in KiB (`PRAGMA cache_size`
/// takes it negated). Pages are cached as they are read, so a small store
/// never uses this much.
pub(super) const PAGE_CACHE_KIB: i64 = 16 * 1024;

/// `PRAGMA application_id` of a Strongroom store ("STRM").
const APPLICATION_ID: i64 = 0x5354_524D;
/// How long a connection waits for another process's lock.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements each connection keeps (rusqlite's statement cache).
const STATEMENT_CACHE: usize = 16;

/// Point read of one record.
pub(super) const GET: &str = "SELECT value FROM strongroom_kv WHERE key = ?1";
/// One record by key (tagged 0) and the last record in a key range (tagged
/// 1), in one statement: one read transaction, one snapshot.
pub(super) const GET_WITH_LAST: &str = "SELECT 0, key, value FROM strongroom_kv WHERE key = ?1 \
     UNION ALL SELECT 1, key, value FROM (SELECT key, value FROM strongroom_kv \
     WHERE key >= ?2 AND key < ?3 ORDER BY key DESC LIMIT 1)";
/// The same with a range to the end of the table.
pub(super) const GET_WITH_LAST_FROM: &str = "SELECT 0, key, value FROM strongroom_kv WHERE key = ?1 \
     UNION ALL SELECT 1, key, value FROM (SELECT key, value FROM strongroom_kv \
     WHERE key >= ?2 ORDER BY key DESC LIMIT 1)";
/// Insert or replace one record.
pub(super) const PUT: &str = "INSERT INTO strongroom_kv (key, value) VALUES (?1, ?2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";
/// Remove one record.
pub(super) const DELETE: &str = "DELETE FROM strongroom_kv WHERE key = ?1";
/// A range of records, bounded above.
pub(super) const SCAN_RANGE: &str =
    "SELECT key, value FROM strongroom_kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3";
/// A range of records to the end of the table.
pub(super) const SCAN_FROM: &str =
    "SELECT key, value FROM strongroom_kv WHERE key >= ?1 ORDER BY key LIMIT ?2";

/// How a connection opens the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Read and write, creating the file if it is missing (though
    /// [`super::file::check_file`] normally made it already).
    ReadWrite,
    /// Read only; SQLite still needs the `-shm` file of a WAL store to exist
    /// or to be creatable.
    ReadOnly,
    /// Read only, as a file nobody changes (`immutable=1`): no locks and no
    /// `-shm` file, for a store without a `-wal` file in a directory this
    /// process cannot write to.
    Immutable,
}

/// Opens one connection with the busy timeout and `synchronous=FULL`.
pub(super) fn open_connection(path: &Path, access: Access) -> rusqlite::Result<Connection> {
    // Each connection is used by one thread at a time (the writer thread,
    // or a reader taken out of the pool), so SQLite's own mutex is not needed.
    let no_mutex = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match access {
        Access::ReadWrite => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | no_mutex,
        )?,
        Access::ReadOnly => {
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | no_mutex)?
        }
        Access::Immutable => Connection::open_with_flags(
            format!("{}?immutable=1", file_uri(path)),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | no_mutex,
        )?,
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    // A page cache of up to PAGE_CACHE_KIB per connection (SQLite's default
    // is 2 MiB): the b-tree's interior pages of a store of a million
    // secrets stay cached, so a point read touches one leaf page.
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// `path` as an SQLite `file:` URI, every byte but unreserved ones and `/`
/// percent-encoded (so `?`, `#` and `%` in a file name stay part of it).
fn file_uri(path: &Path) -> String {
    use std::fmt::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(char::from(b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri
}

/// Whether opening read-only failed because SQLite could not create the
/// `-shm` file (or open the WAL): SQLITE_READONLY or SQLITE_CANTOPEN.
pub(super) fn needs_shm(e: &Error) -> bool {
    matches!(
        e,
        Error::Storage {
            kind: StorageErrorKind::Rejected | StorageErrorKind::Unavailable,
            ..
        }
    )
}

/// Classifies an SQLite failure by its (extended) result code.
pub(super) fn sqlite_kind(e: &rusqlite::Error) -> StorageErrorKind {
    let Some(failure) = e.sqlite_error() else {
        return StorageErrorKind::Other;
    };
    match failure.extended_code & 0xff {
        // SQLITE_CORRUPT, SQLITE_NOTADB
        11 | 26 => StorageErrorKind::Corrupt,
        // SQLITE_PERM, SQLITE_READONLY, SQLITE_FULL, SQLITE_AUTH
        3 | 8 | 13 | 23 => StorageErrorKind::Rejected,
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_PROTOCOL
        5 | 6 | 10 | 14 | 15 => StorageErrorKind::Unavailable,
        _ => StorageErrorKind::Other,
    }
}

/// A storage error naming the file, what failed and SQLite's message and code.
pub(super) fn sqlite_error(path: &Path, what: &str, e: &rusqlite::Error) -> Error {
    let kind = sqlite_kind(e);
    let hint = match kind {
        StorageErrorKind::Corrupt => {
            "; the file is damaged or is not a Strongroom store: restore it from a backup"
        }
        _ => "",
    };
    let code = e
        .sqlite_error()
        .map(|f| format!(" (code {})", f.extended_code))
        .unwrap_or_default();
    Error::storage(
        "sqlite",
        kind,
        format!("{}: {what}: {e}{code}{hint}", path.display()),
    )
}

/// The error for any call on a closed store.
pub(super) fn closed(path: &Path) -> Error {
    Error::storage(
        "sqlite",
        StorageErrorKind::Unavailable,
        format!("{}: the store is closed", path.display()),
    )
}

fn newer_version(path: &Path, version: i64) -> Error {
    Error::storage(
        "sqlite",
        StorageErrorKind::UnsupportedVersion,
        format!(
            "{}: schema version {version} was written by a newer Strongroom (this build reads version {SCHEMA_VERSION}); upgrade Strongroom",
            path.display()
        ),
    )
}

fn pragma_i64(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, name, |r| r.get(0))
}

/// Creates the table on a new file, or checks an existing file's schema,
/// through the writer connection. Nothing is written to an existing file.
pub(super) fn init_schema(path: &Path, conn: &Connection) -> Result<()> {
    let err = |e: rusqlite::Error| sqlite_error(path, "cannot open the store", &e);
    // An existing store is checked without the write lock, which busy
    // writers in other processes may hold for a long time.
    if ids(path, conn)?.0 > 0 {
        check_table(path, conn)?;
        return quick_check(path, conn);
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let created = create_or_check(path, conn);
    let end = match created {
        Ok(true) => "COMMIT",
        _ => "ROLLBACK",
    };
    let ended = conn.execute_batch(end).map_err(err);
    if created? {
        ended?;
        return Ok(());
    }
    // Rolling back a transaction that only read cannot lose anything.
    drop(ended);
    quick_check(path, conn)
}

/// Inside `BEGIN IMMEDIATE`: `Ok(true)` when it created the schema on an
/// empty database, `Ok(false)` when an existing store checked out.
fn create_or_check(path: &Path, conn: &Connection) -> Result<bool> {
    let err = |e: rusqlite::Error| sqlite_error(path, "cannot open the store", &e);
    let (version, app_id) = ids(path, conn)?;
    if version == 0 {
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(err)?;
        if objects > 0 || app_id != 0 {
            return Err(corrupt(
                path,
                "is an SQLite database but not a Strongroom store (it already has tables)",
            ));
        }
        conn.execute_batch(
            "CREATE TABLE strongroom_kv (key BLOB NOT NULL PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
             PRAGMA application_id = 1398035021;
             PRAGMA user_version = 1;",
        )
        .map_err(err)?;
        return Ok(true);
    }
    check_table(path, conn)?;
    Ok(false)
}

/// `user_version` and `application_id`, refusing a newer schema or another
/// application's database.
fn ids(path: &Path, conn: &Connection) -> Result<(i64, i64)> {
    let err = |e: rusqlite::Error| sqlite_error(path, "cannot open the store", &e);
    let version = pragma_i64(conn, "user_version").map_err(err)?;
    let app_id = pragma_i64(conn, "application_id").map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(newer_version(path, version));
    }
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(corrupt(
            path,
            "is an SQLite database of another application",
        ));
    }
    Ok((version, app_id))
}

fn check_table(path: &Path, conn: &Connection) -> Result<()> {
    let err = |e: rusqlite::Error| sqlite_error(path, "cannot open the store", &e);
    let (_, app_id) = ids(path, conn)?;
    if app_id != APPLICATION_ID {
        return Err(corrupt(path, "is not a Strongroom store (application id)"));
    }
    let table: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'strongroom_kv'",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if table != 1 {
        return Err(corrupt(path, "the strongroom_kv table is missing"));
    }
    Ok(())
}

/// A full page-by-page check would cost a read of the whole file; the
/// quick check verifies every b-tree page and catches truncation and
/// overwritten pages.
fn quick_check(path: &Path, conn: &Connection) -> Result<()> {
    let err = |e: rusqlite::Error| sqlite_error(path, "cannot open the store", &e);
    let mut stmt = conn.prepare("PRAGMA quick_check").map_err(err)?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(err)?
        .collect::<rusqlite::Result<_>>()
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

/// Checks a store opened read-only: it must already be a Strongroom store
/// of a version this build reads, and pass the quick check.
pub(super) fn check_schema_read_only(path: &Path, conn: &Connection) -> Result<()> {
    let (version, _) = ids(path, conn)?;
    if version == 0 {
        return Err(corrupt(
            path,
            "is not a Strongroom store yet (no schema): a read-only open cannot create one",
        ));
    }
    check_table(path, conn)?;
    quick_check(path, conn)
}

/// Switches the file to the WAL journal (after the schema check, so a
/// foreign or damaged file is not modified).
pub(super) fn enable_wal(path: &Path, conn: &Connection) -> Result<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| sqlite_error(path, "cannot enable the WAL journal", &e))?;
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
    Ok(())
}

/// The settings that matter for durability, and the record count, as
/// `conn` sees them.
pub(super) fn diagnostics(path: &Path, conn: &Connection) -> Result<SqliteDiagnostics> {
    let err = |e: rusqlite::Error| sqlite_error(path, "cannot read settings", &e);
    let journal_mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .map_err(err)?;
    Ok(SqliteDiagnostics {
        journal_mode,
        synchronous: pragma_i64(conn, "synchronous").map_err(err)?,
        busy_timeout_ms: pragma_i64(conn, "busy_timeout").map_err(err)?,
        schema_version: pragma_i64(conn, "user_version").map_err(err)?,
        records: conn
            .query_row("SELECT count(*) FROM strongroom_kv", [], |r| r.get(0))
            .map_err(err)?,
    })
}

/// `PRAGMA data_version` of `conn`: it moves when another connection commits.
pub(super) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    pragma_i64(conn, "data_version")
}
