//! Verifying an audit file against the store that wrote it: the one entry
//! point the CLI and the bindings call.

use std::path::Path;

use super::verify::verify_file;
use super::{AuditError, Checkpoint, VerifyReport};
use crate::{Result, Strongroom};

/// What [`Strongroom::verify_audit_file`] checks besides the chain and the
/// store's saved head. The default checks the whole file against the saved
/// head only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditFileCheck {
    /// A trusted checkpoint to start after: the file may begin after it and
    /// the record at its seq, if present, must match it.
    pub from: Option<Checkpoint>,
    /// A checkpoint kept elsewhere (another machine, a ticket) that the file
    /// must also reach and match. It adds to the saved head, which can be
    /// lowered by whoever can write the store; it does not replace it.
    pub checkpoint: Option<Checkpoint>,
    /// Leave the store's saved head out: for the log of a process that
    /// opened the store read-only, which is a chain of its own that no
    /// saved head anchors (see [`Strongroom::open_audit_log`]). The chain
    /// is still checked, and `checkpoint` if given; a truncation is caught
    /// only by that checkpoint.
    pub unanchored: bool,
}

impl AuditFileCheck {
    /// The default: the whole file, against the store's saved head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts after the trusted checkpoint `from`.
    #[must_use]
    pub fn with_from(mut self, from: Checkpoint) -> Self {
        self.from = Some(from);
        self
    }

    /// Leaves the store's saved head out (see the field `unanchored`).
    #[must_use]
    pub fn without_saved_head(mut self) -> Self {
        self.unanchored = true;
        self
    }

    /// Also requires the file to reach and match `checkpoint`.
    #[must_use]
    pub fn with_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }
}

impl Strongroom {
    /// Verifies the JSON-lines audit file at `path` (as written by
    /// [`JsonlFileSink`](super::JsonlFileSink)) with this store's audit key,
    /// against the store's saved audit head
    /// ([`Strongroom::saved_audit_head`]) and whatever `check` adds.
    ///
    /// The file must be an unbroken chain (see [`verify`](super::verify))
    /// and must reach the saved head and match it there: a file that ends
    /// before it, including an empty file, fails with
    /// [`ChainBreak::Truncated`](super::ChainBreak::Truncated) naming the
    /// last record present and the head's seq; a file whose record at the
    /// head's seq has another MAC fails with
    /// [`ChainBreak::CheckpointMismatch`](super::ChainBreak::CheckpointMismatch).
    /// Both come as [`AuditError::ChainBroken`] with the first seq at fault.
    /// A store with no saved head (nothing audited yet through a handle)
    /// accepts any complete chain, an empty file included. A missing file
    /// is an [`AuditError::Io`].
    ///
    /// The saved head is read before the file. Writers append a record to
    /// their sinks before they save the head, so a file being appended to
    /// while it is verified still reaches the head read.
    ///
    /// Reads and hashes the file on tokio's blocking pool.
    pub async fn verify_audit_file(
        &self,
        path: impl AsRef<Path>,
        check: &AuditFileCheck,
    ) -> Result<VerifyReport> {
        let key = self.audit_key()?;
        let saved = match check.unanchored {
            true => None,
            false => self.saved_audit_head().await?,
        };
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let check = check.clone();
        let task = tokio::task::spawn_blocking(move || {
            let heads: Vec<&Checkpoint> = saved.iter().chain(check.checkpoint.as_ref()).collect();
            let mut report = verify_file(&path, &key, check.from.as_ref(), &heads)?;
            report.saved_head = saved;
            Ok::<_, AuditError>(report)
        });
        match task.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(AuditError::Io {
                path: shown,
                message: format!("verification did not finish: {e}"),
            }
            .into()),
        }
    }
}
