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

/// How a group's batches are kept apart.
#[derive(Clone, Copy)]
enum Mode {
    /// One after the other in the transaction.
    Direct,
    /// Each inside a savepoint, so a failed statement undoes its batch only.
    Savepoints,
}

/// Why a group's transaction did not commit.
enum GroupFailure {
    /// SQLite failed and the transaction is lost.
    Sql(rusqlite::Error),
    /// A statement failed in [`Mode::Direct`] (this error): run the group
    /// again with savepoints.
    Retry(rusqlite::Error),
}

impl From<rusqlite::Error> for GroupFailure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

/// Values that preconditions read in the open transaction, by key; a write
/// to a key forgets it. Small: a group reads a few keys again and again (the
/// keyring generation), so a short list serves.
#[derive(Default)]
struct Seen {
    values: Vec<(String, Option<Vec<u8>>)>,
}

impl Seen {
    /// The most keys remembered: each lookup is a linear search.
    const MAX: usize = 8;

    /// Whether the value remembered for `key` is `expected`; `None` if
    /// none is. A key found moves to the back, so the keys read again and
    /// again stay while keys read once make way for each other.
    fn matches(&mut self, key: &str, expected: &Option<Vec<u8>>) -> Option<bool> {
        let at = self.values.iter().position(|(k, _)| k == key)?;
        let entry = self.values.remove(at);
        let matches = entry.1 == *expected;
        self.values.push(entry);
        Some(matches)
    }

    fn insert(&mut self, key: &str, value: Option<Vec<u8>>) {
        self.forget(key);
        if self.values.len() >= Self::MAX {
            self.values.remove(0);
        }
        self.values.push((key.to_owned(), value));
    }

    fn forget(&mut self, key: &str) {
        self.values.retain(|(k, _)| k != key);
    }
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

    /// Runs every batch of `group` in one transaction, and the batches that
    /// arrive meanwhile too (their callers would otherwise wait for this
    /// commit, then pay a commit of their own); commits once (one fsync
    /// under `synchronous=FULL`), and only then answers each caller with its
    /// own result. Other requests that arrive meanwhile are put in `others`.
    ///
    /// The batches run without savepoints first: a batch checks all its
    /// preconditions before its first write, so one that fails a
    /// precondition has written nothing. Only a statement that fails (a full
    /// disk, an I/O error) can leave a batch half-written; then the whole
    /// transaction is rolled back and the group runs again with each batch
    /// inside a savepoint of its own, so that batch is rolled back alone.
    fn commit_group(
        &self,
        mut group: Vec<Pending>,
        rx: &mpsc::Receiver<Request>,
        others: &mut Vec<Request>,
    ) {
        let outcomes = match self.run_group(&mut group, Some((rx, others)), Mode::Direct) {
            Err(GroupFailure::Retry(_)) => {
                self.abandon();
                self.run_group(&mut group, None, Mode::Savepoints)
            }
            direct => direct,
        };
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            // (Savepoints never ask for a retry.)
            Err(GroupFailure::Sql(e) | GroupFailure::Retry(e)) => {
                self.abandon();
                for p in group {
                    let _ = p.reply.send(Err(self.error(&e)));
                }
                return;
            }
        };
        for (p, outcome) in group.into_iter().zip(outcomes) {
            let _ = p.reply.send(match outcome {
                Outcome::Applied => Ok(()),
                Outcome::Conflict(key) => Err(Error::StorageConflict { key }),
                Outcome::Failed(e) => Err(e),
            });
        }
    }

    /// Runs the batches of `group` in one transaction and commits it; with
    /// `intake`, also takes in the batches that arrive meanwhile (other
    /// requests go to its list). The outcomes are in `group`'s order.
    fn run_group(
        &self,
        group: &mut Vec<Pending>,
        mut intake: Option<(&mpsc::Receiver<Request>, &mut Vec<Request>)>,
        mode: Mode,
    ) -> std::result::Result<Vec<Outcome>, GroupFailure> {
        // BEGIN IMMEDIATE takes the write lock now, waiting up to the busy
        // timeout for another process's writer, so no statement inside fails
        // with "database is locked".
        self.exec("BEGIN IMMEDIATE")?;
        let holding = std::time::Instant::now();
        let mut outcomes = Vec::with_capacity(group.len());
        // Values the preconditions of this transaction have read, while no
        // batch has written their key since (the keyring generation that
        // every sealed write checks is read once per group).
        let mut seen = Seen::default();
        loop {
            while let Some(p) = group.get(outcomes.len()) {
                outcomes.push(match mode {
                    Mode::Direct => self.apply_direct(&p.ops, &mut seen)?,
                    Mode::Savepoints => self.apply_in_savepoint(&p.ops)?,
                });
            }
            // Take in what arrived while these ran, until nothing more has
            // or the lock has been held long enough.
            let Some((rx, others)) = intake.as_mut() else {
                break;
            };
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
        self.exec("COMMIT")?;
        Ok(outcomes)
    }

    /// Rolls back whatever is left of the group's transaction.
    fn abandon(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Applies one batch in the open transaction without a savepoint. A
    /// failed precondition leaves nothing written; a failed statement asks
    /// for the group to run again with savepoints ([`GroupFailure::Retry`]).
    fn apply_direct(
        &self,
        ops: &[BatchOp],
        seen: &mut Seen,
    ) -> std::result::Result<Outcome, GroupFailure> {
        match self.apply(ops, Some(seen)) {
            Ok(()) => Ok(Outcome::Applied),
            Err(BatchFailure::Conflict(key)) => Ok(Outcome::Conflict(key)),
            // SQLite rolled back the whole transaction: nothing commits.
            Err(BatchFailure::Sql(e)) if self.conn.is_autocommit() => Err(GroupFailure::Sql(e)),
            Err(BatchFailure::Sql(e)) => Err(GroupFailure::Retry(e)),
        }
    }

    /// Applies one batch inside a savepoint of the open transaction: kept if
    /// it applied, rolled back alone if a precondition or a statement failed.
    /// `Err` only when the whole transaction is lost.
    fn apply_in_savepoint(&self, ops: &[BatchOp]) -> rusqlite::Result<Outcome> {
        self.exec("SAVEPOINT strongroom_batch")?;
        let failure = match self.apply(ops, None) {
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
    /// With `seen`, a precondition on a key already read in this transaction
    /// (and not written since) uses that value.
    fn apply(
        &self,
        ops: &[BatchOp],
        mut seen: Option<&mut Seen>,
    ) -> std::result::Result<(), BatchFailure> {
        for op in ops {
            if let BatchOp::Expect { key, value } = op {
                let known = seen.as_deref_mut().and_then(|s| s.matches(key, value));
                let matches = match known {
                    Some(matches) => matches,
                    None => {
                        let current: Option<Vec<u8>> = self
                            .conn
                            .prepare_cached(GET)?
                            .query_row([key.as_bytes()], |r| r.get(0))
                            .optional()?;
                        let matches = current == *value;
                        if let Some(seen) = seen.as_deref_mut() {
                            seen.insert(key, current);
                        }
                        matches
                    }
                };
                if !matches {
                    return Err(BatchFailure::Conflict(key.clone()));
                }
            }
        }
        for op in ops {
            if let (Some(seen), Some(key)) = (seen.as_deref_mut(), op.written_key()) {
                seen.forget(key);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::conn::{Access, enable_wal, init_schema, open_connection};

    fn writer(dir: &Path) -> Writer {
        let path = dir.join("w.db");
        let conn = open_connection(&path, Access::ReadWrite).unwrap();
        init_schema(&path, &conn).unwrap();
        enable_wal(&path, &conn).unwrap();
        Writer { path, conn }
    }

    /// A group of batches and the receivers of their results.
    fn group(batches: Vec<Vec<BatchOp>>) -> (Vec<Pending>, Vec<oneshot::Receiver<Result<()>>>) {
        batches
            .into_iter()
            .map(|ops| {
                let (reply, rx) = oneshot::channel();
                (Pending { ops, reply }, rx)
            })
            .unzip()
    }

    fn results(rxs: Vec<oneshot::Receiver<Result<()>>>) -> Vec<String> {
        rxs.into_iter()
            .map(|mut rx| match rx.try_recv().unwrap() {
                Ok(()) => "ok".to_owned(),
                Err(Error::StorageConflict { key }) => format!("conflict {key}"),
                Err(e) => format!("error {e}"),
            })
            .collect()
    }

    fn get(w: &Writer, key: &str) -> Option<Vec<u8>> {
        w.conn
            .query_row(GET, [key.as_bytes()], |r| r.get(0))
            .optional()
            .unwrap()
    }

    /// Batches of one group see each other's writes in order, also through
    /// the values their preconditions remember: a key read, then written by
    /// a later batch, is read again.
    #[test]
    fn preconditions_in_a_group_see_the_writes_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(dir.path());
        let rx_unused = mpsc::channel::<Request>().1;
        let (pending, rxs) = group(vec![
            vec![BatchOp::expect("g", None), BatchOp::put("k", b"1".to_vec())],
            vec![
                BatchOp::expect("g", None),
                BatchOp::expect("k", Some(b"1".to_vec())),
                BatchOp::put("k", b"2".to_vec()),
            ],
            // stale: k is 2 now
            vec![
                BatchOp::expect("g", None),
                BatchOp::expect("k", Some(b"1".to_vec())),
                BatchOp::put("x", b"no".to_vec()),
            ],
            vec![
                BatchOp::expect("k", Some(b"2".to_vec())),
                BatchOp::put("g", b"7".to_vec()),
            ],
            // g was written by the batch before
            vec![
                BatchOp::expect("g", None),
                BatchOp::put("y", b"no".to_vec()),
            ],
            vec![
                BatchOp::expect("g", Some(b"7".to_vec())),
                BatchOp::delete("k"),
            ],
            vec![
                BatchOp::expect("k", None),
                BatchOp::put("z", b"yes".to_vec()),
            ],
        ]);
        w.commit_group(pending, &rx_unused, &mut Vec::new());
        assert_eq!(
            results(rxs),
            ["ok", "ok", "conflict k", "ok", "conflict g", "ok", "ok"]
        );
        assert_eq!(get(&w, "k"), None);
        assert_eq!(get(&w, "g"), Some(b"7".to_vec()));
        assert_eq!(get(&w, "x"), None);
        assert_eq!(get(&w, "y"), None);
        assert_eq!(get(&w, "z"), Some(b"yes".to_vec()));
    }

    /// A statement that fails after its batch wrote sends the group around
    /// again with savepoints: that batch keeps none of its writes, the
    /// others all of theirs, and it is reported as failed, not as a
    /// conflict.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn a_failed_statement_runs_the_group_again_with_savepoints() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(dir.path());
        let rx_unused = mpsc::channel::<Request>().1;
        let (pending, rxs) = group(vec![
            vec![BatchOp::put("a", b"1".to_vec())],
            vec![
                BatchOp::put("b", b"1".to_vec()),
                BatchOp::put(crate::sqlite::SqliteStore::FAULT_STATEMENT_KEY, vec![1]),
            ],
            vec![BatchOp::expect("b", None), BatchOp::put("c", b"1".to_vec())],
            vec![BatchOp::expect("a", None), BatchOp::put("d", b"1".to_vec())],
        ]);
        w.commit_group(pending, &rx_unused, &mut Vec::new());
        let got = results(rxs);
        assert_eq!(got[0], "ok");
        assert!(got[1].starts_with("error "), "{got:?}");
        assert_eq!(got[2..], ["ok", "conflict a"]);
        assert_eq!(get(&w, "a"), Some(b"1".to_vec()));
        assert_eq!(get(&w, "b"), None);
        assert_eq!(get(&w, "c"), Some(b"1".to_vec()));
        assert_eq!(get(&w, "d"), None);
    }

    /// Keys read once make way for each other; a key read again and again
    /// stays.
    #[test]
    fn remembered_values_keep_the_keys_read_again() {
        let mut seen = Seen::default();
        seen.insert("gen", Some(vec![1]));
        for i in 0..100 {
            assert_eq!(seen.matches("gen", &Some(vec![1])), Some(true));
            seen.insert(&format!("new/{i}"), None);
        }
        assert_eq!(seen.values.len(), Seen::MAX);
        assert_eq!(seen.matches("gen", &Some(vec![2])), Some(false));
        assert_eq!(seen.matches("new/0", &None), None);
        assert_eq!(seen.matches("new/99", &None), Some(true));
        seen.forget("gen");
        assert_eq!(seen.matches("gen", &Some(vec![1])), None);
    }
}
