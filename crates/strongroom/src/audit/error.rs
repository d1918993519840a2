//! The audit trail's errors.

use std::fmt;

use super::MIN_AUDIT_KEY_BYTES;

/// Errors of the tamper-evident audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// No sink accepted the event: the operation must not proceed.
    #[error(
        "no audit sink accepted event seq {seq} ({}); the operation was refused",
        SinkFailure::list(failures)
    )]
    NoSinkAccepted {
        /// The sequence number the event would have had (it is reused).
        seq: u64,
        /// Why each sink failed.
        failures: Vec<SinkFailure>,
    },

    /// A sink failed to write a record (returned by [`AuditSink::write`](super::AuditSink::write)).
    #[error("audit sink {sink}: {message}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// What went wrong.
        message: String,
    },

    /// The chain is broken at this record.
    #[error("audit chain broken at seq {seq}: {reason}")]
    ChainBroken {
        /// The first record that does not verify (for a missing record, the
        /// sequence number that was expected there).
        seq: u64,
        /// What is wrong.
        reason: ChainBreak,
    },

    /// A line is not an audit record of a known format.
    #[error("malformed audit record: {0}")]
    MalformedRecord(String),

    /// The audit key is too short.
    #[error("the audit key has {len} bytes; at least {MIN_AUDIT_KEY_BYTES} are needed")]
    WeakKey {
        /// Its length.
        len: usize,
    },

    /// An audit log needs at least one sink.
    #[error("an audit log needs at least one sink")]
    NoSinks,

    /// The sequence number space is used up (2^64 records).
    #[error("audit sequence numbers exhausted")]
    SequenceExhausted,

    /// A file could not be opened or read.
    #[error("audit file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },

    /// A record could not be encoded (should not happen).
    #[error("cannot encode audit record: {0}")]
    Encode(String),
}

/// Why one sink did not accept a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkFailure {
    /// The sink's name.
    pub sink: String,
    /// Whether it timed out (rather than returning an error).
    pub timed_out: bool,
    /// A description.
    pub message: String,
}

impl SinkFailure {
    fn list(failures: &[SinkFailure]) -> String {
        failures
            .iter()
            .map(|f| format!("{}: {}", f.sink, f.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for SinkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.sink, self.message)
    }
}

/// What is wrong with a chain at the reported record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The record is not valid JSON of the record format, or is not in the
    /// exact form the writer produces (extra fields, reformatting).
    #[error("malformed record: {0}")]
    Malformed(String),
    /// A record format version this build does not know.
    #[error("unsupported record version {0}")]
    UnsupportedVersion(u32),
    /// A record is missing, moved or inserted.
    #[error("expected seq {expected}, found seq {found} (record deleted, reordered or inserted)")]
    UnexpectedSeq {
        /// The sequence number that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The record does not name its predecessor's MAC.
    #[error("the record does not follow its predecessor (prev MAC differs)")]
    PrevMismatch,
    /// The record's MAC does not verify: its content was changed.
    #[error("MAC does not verify (record edited or forged)")]
    BadMac,
    /// The record at a checkpoint's seq has another MAC than the checkpoint
    /// (or the checkpoint's MAC is not in the canonical lower-case hex).
    #[error("the record differs from the saved head or checkpoint at this seq")]
    CheckpointMismatch,
    /// A line of an audit file is longer than
    /// [`MAX_RECORD_LINE_BYTES`](super::MAX_RECORD_LINE_BYTES): no record
    /// the writer produces is, and the rest of the line was not read (so an
    /// endless file cannot exhaust memory).
    #[error(
        "line {line} of the audit file is longer than {limit} bytes: not a record the writer produces (the rest of it was not read)"
    )]
    LineTooLong {
        /// The line's number in the file, from 1.
        line: u64,
        /// The longest line accepted, in bytes without the newline.
        limit: usize,
    },
    /// The chain ends before a saved head or checkpoint it must reach:
    /// records were cut off the end (or the whole log was emptied). The
    /// error's seq is the first missing record.
    #[error("{}", truncated_message(*last, *checkpoint))]
    Truncated {
        /// The last record present (0 for an empty log).
        last: u64,
        /// The seq of the saved head or checkpoint.
        checkpoint: u64,
    },
}

fn truncated_message(last: u64, checkpoint: u64) -> String {
    let missing = if last.saturating_add(1) == checkpoint {
        format!("record {checkpoint} is missing")
    } else {
        format!(
            "records {} to {checkpoint} are missing",
            last.saturating_add(1)
        )
    };
    if last == 0 {
        format!("the log is empty but the saved head is at seq {checkpoint} ({missing}: truncated)")
    } else {
        format!(
            "the log ends at seq {last} but the saved head is at seq {checkpoint} ({missing}: truncated)"
        )
    }
}

/// A checkpoint given as text is not `seq:mac` with a canonical MAC (from
/// [`Checkpoint::from_str`](std::str::FromStr::from_str)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed audit checkpoint: {0}")]
pub struct ParseCheckpointError(pub(super) String);
