//! The operator's audit file: where it is, and opening it so that it
//! continues the store's audit chain (fail closed when it does not).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom::audit::{AuditError, AuditLog, AuditSink, FsyncPolicy, JsonlFileSink};
use strongroom::{Error, Strongroom};

use crate::exit::{CliResult, Failure};

/// What is appended to the database path to name its audit file.
pub(crate) const DEFAULT_SUFFIX: &str = ".audit.jsonl";

/// `explicit` (`--audit-log`), else the database path with
/// [`DEFAULT_SUFFIX`] appended (`store.db` → `store.db.audit.jsonl`). A
/// PostgreSQL store has no path to put it beside: `--audit-log` is then
/// required (a usage error otherwise).
pub(crate) fn audit_path(explicit: Option<&Path>, db: &Path) -> CliResult<PathBuf> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None if crate::backend::postgres_url(db).is_some() => Err(Failure::Usage(
            "a PostgreSQL store needs --audit-log PATH (there is no database file to put it beside)"
                .into(),
        )),
        None => {
            let mut name = OsString::from(db.as_os_str());
            name.push(DEFAULT_SUFFIX);
            Ok(PathBuf::from(name))
        }
    }
}

/// Holds the exclusive lock on an audit file; dropping it unlocks.
#[derive(Debug)]
pub(crate) struct AuditFileLock {
    _file: std::fs::File,
}

fn lock(path: &Path) -> CliResult<AuditFileLock> {
    let fail = |e: std::io::Error| {
        Failure::AuditUnavailable(format!(
            "cannot lock the audit file {}, so nothing was done: {e}",
            path.display()
        ))
    };
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(fail)?;
    file.lock().map_err(fail)?;
    Ok(AuditFileLock { _file: file })
}

/// The audit file at `path` for appending (created mode 0600), every record
/// synced to disk before the command goes on.
pub(crate) fn open_sink(path: &Path) -> CliResult<Arc<dyn AuditSink>> {
    match JsonlFileSink::open(path, FsyncPolicy::EveryRecord) {
        Ok(sink) => Ok(Arc::new(sink)),
        Err(e) => Err(Failure::AuditUnavailable(format!(
            "cannot open the audit file, so nothing was done: {e}"
        ))),
    }
}

/// Opens the audit file at `path` as `sr`'s audit log, continuing the
/// store's chain: the file is verified against the store's saved audit
/// head and the next record follows its last one. A file that is missing
/// while the store has a saved head, cut short, edited or written under
/// another store's key is refused ([`Failure::AuditDiverged`]); one that
/// cannot be opened is [`Failure::AuditUnavailable`]. Either way nothing
/// else has happened yet.
///
/// The file is locked (an exclusive advisory lock, waited for) before it is
/// read, and stays locked while the returned [`AuditFileLock`] lives, so
/// that two commands on one store do not both continue the chain from the
/// same record.
pub(crate) async fn open(sr: &Strongroom, path: &Path) -> CliResult<(AuditLog, AuditFileLock)> {
    let existed = path.try_exists().map_err(|e| {
        Failure::AuditUnavailable(format!(
            "cannot reach the audit file {}, so nothing was done: {e}",
            path.display()
        ))
    })?;
    // A read-only store anchors no log: a new file starts a chain of its own.
    if !existed
        && !sr.is_read_only()
        && let Some(head) = sr.saved_audit_head().await?
    {
        return Err(Failure::AuditDiverged(format!(
            "audit file {} is missing, but this store has audited {} record(s) (its saved audit head); \
             nothing was done: restore the file, or name the store's audit file with --audit-log",
            path.display(),
            head.seq
        )));
    }
    let sink = open_sink(path)?;
    let lock = match lock(path) {
        Ok(lock) => lock,
        Err(f) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            return Err(f);
        }
    };
    match sr.open_audit_log(vec![sink], Some(path)).await {
        Ok(log) => Ok((log, lock)),
        Err(e) => {
            if !existed {
                // Created just now and still empty: leave nothing behind.
                let _ = std::fs::remove_file(path);
            }
            Err(match e {
                Error::Audit(e @ AuditError::ChainBroken { .. }) => {
                    Failure::AuditDiverged(format!(
                        "audit file {} does not continue this store's audit chain ({e}); \
                         nothing was done (`strongroom audit verify` shows where it breaks)",
                        path.display()
                    ))
                }
                Error::Audit(e @ AuditError::Io { .. }) => Failure::AuditUnavailable(format!(
                    "cannot read the audit file, so nothing was done: {e}"
                )),
                e => e.into(),
            })
        }
    }
}
