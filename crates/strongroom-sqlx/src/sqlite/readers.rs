//! The reader connections: a pool a read borrows one connection from, on the
//! thread that reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use strongroom::Result;

use super::conn::{Access, closed, open_connection, sqlite_error};

/// Idle reader connections kept open; more are opened when more threads
/// read at once, and closed again when they come back to a full pool.
pub(super) const MAX_IDLE: usize = 4;

/// Read-only connections to one file. A read takes one out, runs on the
/// caller's thread and puts it back; nothing is held across an `await`.
pub(super) struct Readers {
    path: PathBuf,
    /// [`Access::ReadOnly`], or [`Access::Immutable`] for a store in a
    /// directory this process cannot write to.
    access: Access,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    /// A pool holding `first` (an open, checked connection).
    pub(super) fn new(path: &Path, access: Access, first: Connection) -> Self {
        Self {
            path: path.to_path_buf(),
            access,
            idle: Mutex::new(vec![first]),
            closed: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A connection list cannot be left half-updated by a panic.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a reader connection; `what` names the operation in errors.
    pub(super) fn with<R>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R> {
        self.run(|c| f(c).map_err(|e| sqlite_error(&self.path, what, &e)))
    }

    /// Runs `f` on a reader connection.
    pub(super) fn run<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed(&self.path));
        }
        let taken = self.idle().pop();
        let conn = match taken {
            Some(c) => c,
            None => open_connection(&self.path, self.access)
                .map_err(|e| sqlite_error(&self.path, "cannot open a reader connection", &e))?,
        };
        let result = f(&conn);
        let mut idle = self.idle();
        // Checked under the lock, so a close that cleared the pool is seen.
        if !self.closed.load(Ordering::Acquire) && idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        result
    }

    /// Closes the idle connections; reads fail from now on, and connections
    /// in use are closed when their read ends.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle().clear();
    }
}
