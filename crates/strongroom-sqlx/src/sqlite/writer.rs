//! The writer thread: owns the one read-write connection and commits the
//! batches waiting for it together (group commit).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension};
use strongroom::storage::BatchOp;
use strongroom::{Error, Result, StorageErrorKind};
use tokio::sync::oneshot;

use super::SqliteDiagnostics;
use super::conn::{DELETE, GET, PUT, data_version, diagnostics, sqlite_error};

/// The most batches committed in one transaction. A longer queue is
/// committed in several transactions, so a group's latency stays bounded.
pub(super) const MAX_GROUP: usize = 512;
/// How long a group keeps taking in batches that arrive while it runs: the
/// write lock is held meanwhile, and other processes' writers wait for it
/// (up to the busy timeout), so a busy process must not keep it for long.
pub(super) const MAX_GROUP_HOLD: std::time::Duration = std::time::Duration::from_millis(20);
/// The pause after a long group, so other processes' writers get the lock.
const LOCK_GAP: std::time::Duration = std::time::Duration::from_millis(2);

/// What the store asks of its writer thread.
pub(super) enum Request {
    /// Apply `ops` atomically; the reply comes once the commit is durable.
    Batch {
        ops: Vec<BatchOp>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// The writer connection's `PRAGMA data_version` (`None`: unreadable).
    DataVersion { reply: oneshot::Sender<Option<i64>> },
    /// Settings as the writer connection sees them.
    Diagnostics {
        reply: oneshot::Sender<Result<SqliteDiagnostics>>,
    },
    /// Close the connection (checkpointing the WAL if it is the last one
    /// on the file) and stop; replies when done.
    Close { reply: oneshot::Sender<()> },
}

/// Starts the writer thread with `conn`.
pub(super) fn spawn(path: &Path, conn: Connection) -> Result<mpsc::Sender<Request>> {
    let (tx, rx) = mpsc::channel();
    let writer = Writer {
        path: path.to_path_buf(),
        conn,
    };
    std::thread::Builder::new()
        .name("strongroom-sqlite-writer".into())
        .spawn(move || writer.run(&rx))
        .map_err(|e| {
            Error::storage(
                "sqlite",
                StorageErrorKind::Unavailable,
                format!("{}: cannot start the writer thread: {e}", path.display()),
            )
        })?;
    Ok(tx)
}

struct Writer {
    path: PathBuf,
    conn: Connection,
}

/// One batch of a group and the caller waiting for it.
struct Pending {
    ops: Vec<BatchOp>,
    reply: oneshot::Sender<Result<()>>,
}

/// How one batch fared inside the group's transaction.
enum Outcome {
    /// Applied (and released into the group's transaction).
    Applied,
    /// A precondition failed on this key; the batch was rolled back alone.
    Conflict(String),
    /// SQLite failed on this batch; it was rolled back alone.
    Failed(Error),
}

/// Why a batch did not apply.
enum BatchFailure {
    Conflict(String),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for BatchFailure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl Writer {
    fn run(self, rx: &mpsc::Receiver<Request>) {
        // Ends when every sender is gone (the store and its clones dropped)
        // or on Close; dropping the connection closes it.
        while let Ok(first) = rx.recv() {
            let mut group = Vec::new();
            let mut others = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next {
                match request {
                    Request::Batch { ops, reply } => group.push(Pending { ops, reply }),
                    other => others.push(other),
                }
                next = if group.len() < MAX_GROUP {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if !group.is_empty() {
                let started = std::time::Instant::now();
                self.commit_group(group, rx, &mut others);
                // Under sustained load this thread would take the write lock
                // again at once; SQLite's lock is not fair, and other
                // processes' writers poll for it (up to every 100 ms), so
                // leave it free for a moment after a long group.
                if started.elapsed() >= MAX_GROUP_HOLD / 2 {
                    std::thread::sleep(LOCK_GAP);
                }
            }
            for request in others {
                match request {
                    Request::Batch { .. } => {}
                    Request::DataVersion { reply } => {
                        let _ = reply.send(data_version(&self.conn).ok());
                    }
                    Request::Diagnostics { reply } => {
                        let _ = reply.send(diagnostics(&self.path, &self.conn));
                    }
                    Request::Close { reply } => {
                        // A connection checkpoints the WAL into the file and
                        // removes it when it closes last, but only if it has
                        // read through the WAL: one that never has since
                        // the switch to WAL (a store opened and closed
                        // unused) would leave the file behind.
                        let _ = self
                            .conn
                            .execute_batch("SELECT count(*) FROM sqlite_schema");
                        drop(self);
                        let _ = reply.send(());
                        return;
                    }
                }
            }
        }
    }

    fn error(&self, e: &rusqlite::Error) -> Error {
        sqlite_error(&self.path, "write failed", e)
    }

    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// Runs every batch of `group` in one transaction, each inside its own
    /// savepoint, and the batches that arrive meanwhile too (their callers
    /// would otherwise wait for this commit, then pay a commit of their
    /// own); commits once (one fsync under `synchronous=FULL`), and only
    /// then answers each caller with its own result. Other requests that
    /// arrive meanwhile are put in `others`.
    fn commit_group(
        &self,
        mut group: Vec<Pending>,
        rx: &mpsc::Receiver<Request>,
        others: &mut Vec<Request>,
    ) {
        // BEGIN IMMEDIATE takes the write lock now, waiting up to the busy
        // timeout for another process's writer, so no statement inside fails
        // with "database is locked".
        if let Err(e) = self.exec("BEGIN IMMEDIATE") {
            for p in group {
                let _ = p.reply.send(Err(self.error(&e)));
            }
            return;
        }
        let holding = std::time::Instant::now();
        let mut outcomes = Vec::with_capacity(group.len());
        loop {
            while let Some(p) = group.get(outcomes.len()) {
                match self.apply_in_savepoint(&p.ops) {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(e) => {
                        // The transaction itself is lost (SQLite rolled it
                        // back, or a savepoint could not be undone): nothing
                        // commits.
                        self.abandon();
                        for p in group {
                            let _ = p.reply.send(Err(self.error(&e)));
                        }
                        return;
                    }
                }
            }
            // Take in what arrived while these ran, until nothing more has
            // or the lock has been held long enough.
            if holding.elapsed() >= MAX_GROUP_HOLD {
                break;
            }
            let before = group.len();
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(Request::Batch { ops, reply }) => group.push(Pending { ops, reply }),
                    Ok(other) => others.push(other),
                    Err(_) => break,
                }
            }
            if group.len() == before {
                break;
            }
        }
        if let Err(e) = self.exec("COMMIT") {
            self.abandon();
            for p in group {
                let _ = p.reply.send(Err(self.error(&e)));
            }
            return;
        }
        for (p, outcome) in group.into_iter().zip(outcomes) {
            let _ = p.reply.send(match outcome {
                Outcome::Applied => Ok(()),
                Outcome::Conflict(key) => Err(Error::StorageConflict { key }),
                Outcome::Failed(e) => Err(e),
            });
        }
    }

    /// Rolls back whatever is left of the group's transaction.
    fn abandon(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Applies one batch inside a savepoint of the open transaction: kept if
    /// it applied, rolled back alone if a precondition or a statement failed.
    /// `Err` only when the whole transaction is lost.
    fn apply_in_savepoint(&self, ops: &[BatchOp]) -> rusqlite::Result<Outcome> {
        self.exec("SAVEPOINT strongroom_batch")?;
        let failure = match self.apply(ops) {
            Ok(()) => {
                self.exec("RELEASE strongroom_batch")?;
                return Ok(Outcome::Applied);
            }
            Err(f) => f,
        };
        if self.conn.is_autocommit() {
            // An error such as SQLITE_FULL or an I/O error can make SQLite
            // roll back the whole transaction.
            return Err(match failure {
                BatchFailure::Sql(e) => e,
                BatchFailure::Conflict(_) => {
                    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(1), None)
                }
            });
        }
        self.exec("ROLLBACK TO strongroom_batch")?;
        self.exec("RELEASE strongroom_batch")?;
        Ok(match failure {
            BatchFailure::Conflict(key) => Outcome::Conflict(key),
            BatchFailure::Sql(e) => Outcome::Failed(self.error(&e)),
        })
    }

    /// Checks every precondition of the batch, then applies its writes.
    fn apply(&self, ops: &[BatchOp]) -> std::result::Result<(), BatchFailure> {
        for op in ops {
            if let BatchOp::Expect { key, value } = op {
                let current: Option<Vec<u8>> = self
                    .conn
                    .prepare_cached(GET)?
                    .query_row([key.as_bytes()], |r| r.get(0))
                    .optional()?;
                if current != *value {
                    return Err(BatchFailure::Conflict(key.clone()));
                }
            }
        }
        for op in ops {
            match op {
                BatchOp::Put { key, value } => {
                    self.conn
                        .prepare_cached(PUT)?
                        .execute((key.as_bytes(), value.as_slice()))?;
                    #[cfg(feature = "fault-injection")]
                    if key == super::SqliteStore::FAULT_STATEMENT_KEY {
                        // Fails after this batch wrote, as a full disk would.
                        self.conn
                            .execute_batch("SELECT * FROM strongroom_fault_no_such_table")?;
                    }
                }
                BatchOp::Delete { key } => {
                    self.conn
                        .prepare_cached(DELETE)?
                        .execute([key.as_bytes()])?;
                }
                BatchOp::Expect { .. } => {}
            }
        }
        Ok(())
    }
}
