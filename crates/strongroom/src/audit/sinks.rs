//! The sinks shipped with the library: a JSON-lines file, `tracing`, memory.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{AuditError, AuditRecord, AuditSink};

/// When [`JsonlFileSink`] forces records to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `fdatasync` after every record, before `write` returns: an
    /// acknowledged record survives a crash or power loss. The default.
    #[default]
    EveryRecord,
    /// Hand each record to the operating system and return: survives a
    /// process crash, not a power loss. Faster.
    OsBuffered,
}

/// Appends records as JSON lines to a file.
///
/// The file is opened in append mode (created with mode 0600 on Unix); each
/// record is written with one `write` call of the whole line and its
/// newline, then synced according to the [`FsyncPolicy`]. Writes run on
/// tokio's blocking pool, one at a time, so lines stay in sequence order. A
/// write abandoned on timeout still completes in the background and later
/// writes wait for it (each within the log's sink timeout), so a hung disk
/// costs each append at most the timeout and the records it refuses show as
/// a gap when this file is verified. Use one `JsonlFileSink` per file and
/// one [`AuditLog`](super::AuditLog) per sink.
pub struct JsonlFileSink {
    name: String,
    path: PathBuf,
    file: Arc<tokio::sync::Mutex<std::fs::File>>,
    fsync: FsyncPolicy,
}

impl fmt::Debug for JsonlFileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlFileSink")
            .field("path", &self.path)
            .field("fsync", &self.fsync)
            .finish()
    }
}

impl JsonlFileSink {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: impl AsRef<Path>, fsync: FsyncPolicy) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&path).map_err(|e| AuditError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            name: format!("file:{}", path.display()),
            path,
            file: Arc::new(tokio::sync::Mutex::new(file)),
            fsync,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait::async_trait]
impl AuditSink for JsonlFileSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, _record: &AuditRecord, line: &str) -> Result<(), AuditError> {
        // Appends are serialised by the log, so the lock is only held here
        // by an earlier write still running in the blocking pool (a slow or
        // hung disk, or a caller that gave up). Waiting for it keeps lines in
        // order; the log's sink timeout bounds the wait.
        let guard = Arc::clone(&self.file).lock_owned().await;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let sync = self.fsync == FsyncPolicy::EveryRecord;
        let err = |message: String| AuditError::Sink {
            sink: self.name.clone(),
            message,
        };
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f: &std::fs::File = &guard;
            f.write_all(&buf)?;
            if sync {
                f.sync_data()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| err(format!("write task failed: {e}")))?
        .map_err(|e| err(e.to_string()))
    }
}

/// Emits each record as a `tracing` event (`info!`, target
/// `strongroom::audit`, the JSON line as the message). Accepts as soon as
/// the event is emitted; durability is the subscriber's business.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

#[async_trait::async_trait]
impl AuditSink for TracingSink {
    fn name(&self) -> &str {
        "tracing"
    }

    async fn write(&self, record: &AuditRecord, line: &str) -> Result<(), AuditError> {
        tracing::info!(target: "strongroom::audit", seq = record.seq, "{line}");
        Ok(())
    }
}

/// Keeps records in memory, for tests and short-lived tools.
#[derive(Debug, Default)]
pub struct MemorySink {
    lines: std::sync::Mutex<Vec<String>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The JSON lines received, in order.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The records received, parsed.
    pub fn records(&self) -> Result<Vec<AuditRecord>, AuditError> {
        self.lines()
            .iter()
            .map(|l| AuditRecord::from_json_line(l))
            .collect()
    }
}

#[async_trait::async_trait]
impl AuditSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    async fn write(&self, _record: &AuditRecord, line: &str) -> Result<(), AuditError> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line.to_owned());
        Ok(())
    }
}
