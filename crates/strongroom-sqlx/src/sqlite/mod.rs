//! The embedded default backend: one SQLite file, through `rusqlite`.

mod conn;
mod file;
mod readers;
mod watch;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use async_trait::async_trait;
use rusqlite::OptionalExtension;
use strongroom::storage::{
    BatchOp, ChangeFeed, LastRecord, Storage, StorageEvent, prefix_upper_bound, scan_lower_bound,
};
use strongroom::{Error, Result, StorageErrorKind};
use tokio::sync::oneshot;

use crate::feed::ChangeHub;
use conn::{
    Access, GET, GET_WITH_LAST, GET_WITH_LAST_FROM, SCAN_FROM, SCAN_RANGE, closed, open_connection,
    sqlite_error,
};
#[cfg(feature = "fuzzing")]
pub(crate) use file::check_file;
use file::corrupt;
use readers::Readers;
use writer::Request;

/// A [`Storage`] in one SQLite file.
///
/// The file is created on first use with the WAL journal and
/// `synchronous=FULL`, so a batch is on disk when [`Storage::batch`] returns.
/// Records live in one table with `BLOB` keys (bytewise order). The schema
/// version is kept in `PRAGMA user_version`; a file written by a newer
/// Strongroom is refused with [`StorageErrorKind::UnsupportedVersion`], and a
/// damaged file or one that is not a Strongroom store with
/// [`StorageErrorKind::Corrupt`] (the file is not modified).
/// [`SqliteStore::open_read_only`] opens a store without writing to it,
/// also when the file itself is read-only.
///
/// # Reads
///
/// A point read ([`Storage::get`]) runs on the calling task's thread, on a
/// read-only connection borrowed from a small pool, with its statement
/// prepared once per connection: a lookup in a WAL file whose pages the OS
/// caches takes a few microseconds, less than handing the read to another
/// thread and waking the task again would cost (a median of 0.87-1.15x
/// Python's `sqlite3` point read on the same file, 7-12 µs, on a shared
/// 2-core machine; see `docs/BENCHMARKS.md`). A page that is not
/// in the OS cache is read from disk on that thread. Scans, which may read
/// many pages, run on tokio's blocking threads. Reads never wait for
/// writers.
///
/// # Writes and group commit
///
/// Writes go to one writer thread that owns the only read-write connection.
/// Batches that arrive while it is busy wait in its queue; it then takes all
/// of them (up to 512) and runs them one after another in one
/// `BEGIN IMMEDIATE` transaction: a batch's preconditions are all checked,
/// in queue order against what the batches before it wrote, before it
/// writes anything, so a batch whose precondition fails writes nothing and
/// gets its own [`Error::StorageConflict`] while the others go on. If a
/// statement fails (a full disk, an I/O error), the transaction is rolled
/// back and the group runs again with each batch in a `SAVEPOINT` of its
/// own, so only the failing batch is rolled back and gets the error. One
/// `COMMIT` then makes the whole group durable with one fsync, and
/// only after it returns is each caller answered. If the transaction itself
/// fails (the commit, or an error SQLite answers by rolling back), every
/// batch in the group gets the error and none is written. Under load this
/// turns many fsyncs into one: 64 concurrent writers commit about 10-28x
/// the batches per second of one writer when their keys sort near each
/// other, and 6-10x when each writes a key range of its own (then every
/// batch dirties a b-tree page of its own, and the pages written to the
/// WAL, not the fsyncs, set the pace). The batches that arrive while a
/// group runs join it before it commits, so groups fill up without any
/// added wait; a lone writer pays one commit per batch, as before.
///
/// `BEGIN IMMEDIATE` takes the file's write lock up front, so writers in
/// other processes (or other `SqliteStore`s on the same file) wait for it
/// (up to 10 s) instead of failing with "database is locked". A batch whose
/// caller stops waiting (its future dropped) is still committed.
///
/// Clones are cheap and share the same connections and writer thread.
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
/// is closed or its last clone dropped; the feeds then close. A store
/// opened read-only has no writer, so every commit it sees is announced as
/// `Unknown`.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// What the clones of one store share. Fields drop in order: the readers
/// close before the writer thread is told to stop, so the writer closes
/// last and checkpoints the WAL.
struct Inner {
    path: PathBuf,
    readers: Arc<Readers>,
    /// This store's feeds, and the watcher announcing other connections'
    /// commits.
    changes: ChangeHub,
    /// `None` for a store opened read-only.
    writer: Option<mpsc::Sender<Request>>,
    /// How reader connections open the file.
    access: Access,
    closed: Arc<AtomicBool>,
    /// Wakes the file watcher to end at close.
    stop: Arc<tokio::sync::Notify>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("read_only", &self.inner.writer.is_none())
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

/// Runs blocking work (opening files, SQLite calls) on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    path: &Path,
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::storage(
            "sqlite",
            StorageErrorKind::Other,
            format!("{}: {what} did not finish: {e}", path.display()),
        )
    })?
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
        let (writer_conn, reader) = blocking(&path, "opening the store", move || {
            file::check_file(&p)?;
            let writer = open_connection(&p, Access::ReadWrite)
                .map_err(|e| sqlite_error(&p, "cannot open", &e))?;
            // The journal mode is switched only after the file proved to be
            // a Strongroom store, so a foreign or damaged file is not modified.
            conn::init_schema(&p, &writer)?;
            conn::enable_wal(&p, &writer)?;
            let reader = open_connection(&p, Access::ReadOnly)
                .map_err(|e| sqlite_error(&p, "cannot open", &e))?;
            Ok((writer, reader))
        })
        .await?;
        let writer = writer::spawn(&path, writer_conn)?;
        Ok(Self::assemble(path, Access::ReadOnly, reader, Some(writer)))
    }

    /// Opens an existing store for reading only. Nothing is written to the
    /// store, and the file and its directory may be read-only (a backup, a
    /// read-only mount, a store owned by another user that this one may
    /// read). [`Storage::batch`] (and every write) fails with
    /// [`StorageErrorKind::Rejected`]; reads, scans and [`Storage::watch`]
    /// work and see what writers elsewhere commit.
    ///
    /// SQLite reads a WAL store through its `-shm` file, which it creates
    /// if it is missing. When it cannot (the directory is read-only) and no
    /// `-wal` file exists either, no process is writing the store, and it
    /// is opened as an immutable file (`immutable=1`): a snapshot that does
    /// not see commits a writer who can write the directory makes later.
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`], and [`StorageErrorKind::Unavailable`] if the
    /// file does not exist, [`StorageErrorKind::Corrupt`] if it is not yet a
    /// Strongroom store.
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let (reader, access) = blocking(&path, "opening the store", move || {
            file::check_file_read_only(&p)?;
            let open = |access| {
                let reader =
                    open_connection(&p, access).map_err(|e| sqlite_error(&p, "cannot open", &e))?;
                conn::check_schema_read_only(&p, &reader)?;
                Ok(reader)
            };
            match open(Access::ReadOnly) {
                Ok(reader) => Ok((reader, Access::ReadOnly)),
                // No -shm file and no way to create one, but no -wal file
                // either: nobody writes to this store, so it is read as a
                // file that does not change.
                Err(e) if conn::needs_shm(&e) && !file::sibling(&p, "-wal").exists() => {
                    Ok((open(Access::Immutable)?, Access::Immutable))
                }
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(Self::assemble(path, access, reader, None))
    }

    fn assemble(
        path: PathBuf,
        access: Access,
        reader: rusqlite::Connection,
        writer: Option<mpsc::Sender<Request>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                readers: Arc::new(Readers::new(&path, access, reader)),
                access,
                changes: ChangeHub::new(),
                writer,
                closed: Arc::new(AtomicBool::new(false)),
                stop: Arc::new(tokio::sync::Notify::new()),
                path,
            }),
        }
    }

    /// With the `fault-injection` feature, a put to this key is written and
    /// then fails with an SQLite error, as a statement failing halfway
    /// through a batch would (for tests of group commit's rollback).
    #[cfg(feature = "fault-injection")]
    pub const FAULT_STATEMENT_KEY: &'static str = "strongroom-fault/sqlite-statement-fails";

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the store was opened with [`SqliteStore::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.writer.is_none()
    }

    /// Stops the change watcher (feeds from [`Storage::watch`] close) and
    /// closes every connection, checkpointing the WAL into the main file
    /// (batches already queued are committed first). Later calls on this
    /// store (or its clones) fail with [`StorageErrorKind::Unavailable`];
    /// `watch` returns `None`. Dropping the last clone also closes it, in
    /// the background.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        // The watcher ends (and closes its connection) before we go on, so
        // the last connection to close is the writer's, which checkpoints
        // and removes the WAL file.
        self.inner.stop.notify_one();
        if let Some(task) = self.inner.changes.take_task() {
            let abort = task.abort_handle();
            if tokio::time::timeout(WATCHER_STOP, task).await.is_err() {
                abort.abort();
            }
        }
        self.inner.changes.close();
        self.inner.readers.close();
        if let Some(writer) = &self.inner.writer {
            let (reply, done) = oneshot::channel();
            if writer.send(Request::Close { reply }).is_ok() {
                let _ = done.await;
            }
        }
    }

    /// Reads back the settings that matter for durability and the record
    /// count (through the writer connection, or a reader if read-only).
    pub async fn diagnostics(&self) -> Result<SqliteDiagnostics> {
        let Some(writer) = &self.inner.writer else {
            return self
                .inner
                .readers
                .run(|c| conn::diagnostics(&self.inner.path, c));
        };
        let (reply, answer) = oneshot::channel();
        self.check_open()?;
        writer
            .send(Request::Diagnostics { reply })
            .map_err(|_| closed(&self.inner.path))?;
        answer.await.map_err(|_| closed(&self.inner.path))?
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed(&self.inner.path));
        }
        Ok(())
    }
}

/// How long [`SqliteStore::close`] waits for the file watcher to end (one
/// `data_version` poll in flight at most) before it aborts it.
const WATCHER_STOP: std::time::Duration = std::time::Duration::from_secs(5);

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

    fn is_read_only(&self) -> bool {
        SqliteStore::is_read_only(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        // On this thread: see "Reads" in the type's documentation.
        self.inner.readers.with("read failed", |c| {
            c.prepare_cached(GET)?
                .query_row([key.as_bytes()], |r| r.get(0))
                .optional()
        })
    }

    async fn get_with_last(
        &self,
        key: &str,
        prefix: &str,
    ) -> Result<(Option<Vec<u8>>, LastRecord)> {
        // On this thread, like `get`: two point lookups in one statement.
        let upper = prefix_upper_bound(prefix);
        let rows = self.inner.readers.with("read failed", |c| {
            let map = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            };
            match &upper {
                Some(upper) => c
                    .prepare_cached(GET_WITH_LAST)?
                    .query_map((key.as_bytes(), prefix.as_bytes(), upper), map)?
                    .collect::<rusqlite::Result<Vec<_>>>(),
                None => c
                    .prepare_cached(GET_WITH_LAST_FROM)?
                    .query_map((key.as_bytes(), prefix.as_bytes()), map)?
                    .collect(),
            }
        })?;
        let mut out = (None, None);
        for (tag, k, value) in rows {
            if tag == 0 {
                out.0 = Some(value);
            } else {
                out.1 = Some((decode_key(&self.inner.path, k)?, value));
            }
        }
        Ok(out)
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
        self.check_open()?;
        let lower = scan_lower_bound(prefix, start_after);
        let upper = prefix_upper_bound(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let readers = Arc::clone(&self.inner.readers);
        let rows = blocking(&self.inner.path, "a scan", move || {
            readers.with("scan failed", |c| {
                let map = |r: &rusqlite::Row<'_>| Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?));
                match upper {
                    Some(upper) => c
                        .prepare_cached(SCAN_RANGE)?
                        .query_map((lower, upper, limit), map)?
                        .collect::<rusqlite::Result<Vec<(Vec<u8>, Vec<u8>)>>>(),
                    None => c
                        .prepare_cached(SCAN_FROM)?
                        .query_map((lower, limit), map)?
                        .collect(),
                }
            })
        })
        .await?;
        rows.into_iter()
            .map(|(key, value)| Ok((decode_key(&self.inner.path, key)?, value)))
            .collect()
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let Some(writer) = &self.inner.writer else {
            return Err(Error::storage(
                "sqlite",
                StorageErrorKind::Rejected,
                format!(
                    "{}: the store was opened read-only",
                    self.inner.path.display()
                ),
            ));
        };
        self.check_open()?;
        let changed: Vec<String> = ops
            .iter()
            .filter_map(BatchOp::written_key)
            .map(str::to_owned)
            .collect();
        let (reply, answer) = oneshot::channel();
        writer
            .send(Request::Batch { ops, reply })
            .map_err(|_| closed(&self.inner.path))?;
        answer.await.map_err(|_| closed(&self.inner.path))??;
        if !changed.is_empty() {
            self.inner.changes.announce(StorageEvent::Changed(changed));
        }
        Ok(())
    }

    fn watch(&self) -> Option<ChangeFeed> {
        if self.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let path = self.inner.path.clone();
        let (access, writer) = (self.inner.access, self.inner.writer.clone());
        let closed = Arc::clone(&self.inner.closed);
        let stop = Arc::clone(&self.inner.stop);
        self.inner
            .changes
            .subscribe(|sender| watch::watch_file(path, access, writer, closed, stop, sender))
    }
}
