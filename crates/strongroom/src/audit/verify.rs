//! Verifying a chain: records in memory, or a JSON-lines file.

use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use subtle::ConstantTimeEq;

use super::keys::AuditKeys;
use super::{AuditError, AuditRecord, ChainBreak, Checkpoint, RECORD_VERSION};
use crate::SecretBytes;

/// Something [`verify`] can check: a parsed record, or a raw JSON line
/// (which must also be byte-for-byte the form the writer produces).
pub trait ChainItem {
    /// The record, or why it is malformed.
    fn into_record(self) -> Result<AuditRecord, String>;
}

impl ChainItem for AuditRecord {
    fn into_record(self) -> Result<AuditRecord, String> {
        Ok(self)
    }
}

impl ChainItem for &AuditRecord {
    fn into_record(self) -> Result<AuditRecord, String> {
        Ok(self.clone())
    }
}

impl ChainItem for &str {
    fn into_record(self) -> Result<AuditRecord, String> {
        let line = self.strip_suffix('\n').unwrap_or(self);
        let record: AuditRecord = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let again = serde_json::to_string(&record).map_err(|e| e.to_string())?;
        if again != line {
            return Err("the line is not in the canonical form the writer produces".into());
        }
        Ok(record)
    }
}

impl ChainItem for String {
    fn into_record(self) -> Result<AuditRecord, String> {
        self.as_str().into_record()
    }
}

impl ChainItem for &String {
    fn into_record(self) -> Result<AuditRecord, String> {
        self.as_str().into_record()
    }
}

impl<T: ChainItem, E: fmt::Display> ChainItem for Result<T, E> {
    fn into_record(self) -> Result<AuditRecord, String> {
        self.map_err(|e| e.to_string())?.into_record()
    }
}

/// One entry of a chain as [`verify_chain`] reads it: a record, or why the
/// entry is not one. Every [`ChainItem`] is one (a malformed item is
/// [`ChainBreak::Malformed`]); the lines of a file say more.
pub(super) trait ChainEntry {
    /// The record, or what is wrong with the entry.
    fn into_entry(self) -> Result<AuditRecord, ChainBreak>;
}

impl<T: ChainItem> ChainEntry for T {
    fn into_entry(self) -> Result<AuditRecord, ChainBreak> {
        self.into_record().map_err(ChainBreak::Malformed)
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records verified (after the `from` checkpoint).
    pub records: u64,
    /// The first verified record's seq, if any.
    pub first_seq: Option<u64>,
    /// The head after the last record (save it to check truncation later).
    pub head: Checkpoint,
    /// The store's saved audit head the chain was checked against and
    /// reached ([`Strongroom::verify_audit_file`](crate::Strongroom::verify_audit_file)
    /// only; `None` when the store has none, and from [`verify`]).
    pub saved_head: Option<Checkpoint>,
}

/// The longest line accepted in an audit file, newline excluded (1 MiB).
/// Records the library writes are a few hundred bytes; a longer line is
/// reported as [`ChainBreak::LineTooLong`] after reading at most one byte
/// more than this, so verifying (or [resuming a log
/// from](crate::Strongroom::open_audit_log)) an endless file takes bounded
/// memory.
pub const MAX_RECORD_LINE_BYTES: usize = 1 << 20;

/// Verifies a chain. `from` is a trusted checkpoint to start after (records
/// at or before it are skipped, the one at its seq must match it); without
/// it the chain must start at seq 1. `expect_head` is a saved checkpoint
/// the chain must reach (and match): without it truncation at the end
/// cannot be seen (to verify a file against a store's saved head, use
/// [`Strongroom::verify_audit_file`](crate::Strongroom::verify_audit_file)).
/// Returns the first broken record.
///
/// MACs are compared as text in the one encoding the writer produces
/// (lower-case hex): a record or checkpoint carrying the right MAC in
/// another encoding does not verify.
pub fn verify<I>(
    records: I,
    audit_key: &SecretBytes,
    from: Option<&Checkpoint>,
    expect_head: Option<&Checkpoint>,
) -> Result<VerifyReport, AuditError>
where
    I: IntoIterator,
    I::Item: ChainItem,
{
    let heads: Vec<_> = expect_head.into_iter().collect();
    verify_chain(records, audit_key, from, &heads)
}

/// [`verify`] against any number of checkpoints the chain must reach.
pub(super) fn verify_chain<I>(
    records: I,
    audit_key: &SecretBytes,
    from: Option<&Checkpoint>,
    heads: &[&Checkpoint],
) -> Result<VerifyReport, AuditError>
where
    I: IntoIterator,
    I::Item: ChainEntry,
{
    let keys = AuditKeys::derive(audit_key)?;
    let start = from.cloned().unwrap_or_else(Checkpoint::genesis);
    let broken = |seq: u64, reason: ChainBreak| AuditError::ChainBroken { seq, reason };
    let mismatch = |seq: u64| broken(seq, ChainBreak::CheckpointMismatch);
    // A checkpoint in another encoding can match no record: say so at once.
    if !start.is_canonical() {
        return Err(mismatch(start.seq));
    }
    for h in heads {
        if !h.is_canonical() || (h.seq == start.seq && !ct_eq(&h.mac, &start.mac)) {
            return Err(mismatch(h.seq));
        }
    }
    // Every checkpoint whose seq this record has must name its MAC.
    let check_heads = |record: &AuditRecord| -> Result<(), AuditError> {
        match heads
            .iter()
            .find(|h| h.seq == record.seq && !ct_eq(&h.mac, &record.mac))
        {
            Some(h) => Err(mismatch(h.seq)),
            None => Ok(()),
        }
    };
    let mut last = start.seq;
    let mut prev = start.mac.clone();
    let mut count = 0u64;
    let mut first_seq = None;
    let mut skipping = from.is_some();
    for item in records {
        let expected = last.checked_add(1).ok_or(AuditError::SequenceExhausted)?;
        let record = item.into_entry().map_err(|r| broken(expected, r))?;
        if record.v != RECORD_VERSION {
            return Err(broken(expected, ChainBreak::UnsupportedVersion(record.v)));
        }
        if skipping && record.seq <= start.seq {
            if record.seq == start.seq && !ct_eq(&record.mac, &start.mac) {
                return Err(mismatch(start.seq));
            }
            check_heads(&record)?;
            continue;
        }
        skipping = false;
        if record.seq != expected {
            return Err(broken(
                expected,
                ChainBreak::UnexpectedSeq {
                    expected,
                    found: record.seq,
                },
            ));
        }
        if !ct_eq(&record.prev, &prev) {
            return Err(broken(expected, ChainBreak::PrevMismatch));
        }
        if !keys.record_mac_ok(&record) {
            return Err(broken(expected, ChainBreak::BadMac));
        }
        check_heads(&record)?;
        last = record.seq;
        prev = record.mac;
        count += 1;
        first_seq.get_or_insert(last);
    }
    // The furthest checkpoint the chain does not reach, if any.
    if let Some(h) = heads.iter().filter(|h| h.seq > last).max_by_key(|h| h.seq) {
        return Err(broken(
            last + 1,
            ChainBreak::Truncated {
                last,
                checkpoint: h.seq,
            },
        ));
    }
    Ok(VerifyReport {
        records: count,
        first_seq,
        head: Checkpoint {
            seq: last,
            mac: prev,
        },
        saved_head: None,
    })
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Verifies a JSON-lines audit file (as written by [`JsonlFileSink`](super::JsonlFileSink));
/// see [`verify`]. The file must be exactly the writer's lines, each ended
/// by a newline: an empty line, a carriage return or a line that is not
/// UTF-8 is reported as malformed, and a line longer than
/// [`MAX_RECORD_LINE_BYTES`] as [`ChainBreak::LineTooLong`] (read no
/// further). A last line without its newline is accepted if it is a whole
/// record; a partial one (a crash mid-write) is malformed.
///
/// This checks the file against `expect_head` only; to check it against
/// the store's saved head use
/// [`Strongroom::verify_audit_file`](crate::Strongroom::verify_audit_file).
pub fn verify_jsonl_file(
    path: impl AsRef<Path>,
    audit_key: &SecretBytes,
    from: Option<&Checkpoint>,
    expect_head: Option<&Checkpoint>,
) -> Result<VerifyReport, AuditError> {
    let heads: Vec<_> = expect_head.into_iter().collect();
    verify_file(path.as_ref(), audit_key, from, &heads)
}

/// [`verify_jsonl_file`] against any number of checkpoints.
pub(super) fn verify_file(
    path: &Path,
    audit_key: &SecretBytes,
    from: Option<&Checkpoint>,
    heads: &[&Checkpoint],
) -> Result<VerifyReport, AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut lines = FileLines {
        reader: std::io::BufReader::new(file),
        failed: None,
        done: false,
        line: 0,
    };
    let result = verify_chain(&mut lines, audit_key, from, heads);
    // A read error ends the lines early; report it rather than what the
    // chain looked like up to there.
    match lines.failed {
        Some(e) => Err(io(e)),
        None => result,
    }
}

/// The lines of an audit file, each at most [`MAX_RECORD_LINE_BYTES`],
/// without their newline. A read error ends the iteration and is kept in
/// `failed`; a line too long ends it after that line's entry.
struct FileLines<R> {
    reader: R,
    failed: Option<std::io::Error>,
    done: bool,
    /// The number of the last line read, from 1.
    line: u64,
}

/// One line of an audit file, or what is wrong with it.
struct FileLine(Result<String, ChainBreak>);

impl ChainEntry for FileLine {
    fn into_entry(self) -> Result<AuditRecord, ChainBreak> {
        self.0?.into_entry()
    }
}

impl<R: BufRead> Iterator for FileLines<R> {
    type Item = FileLine;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        // At most one byte more than a line may have: memory stays bounded
        // whatever the file holds.
        let limit = MAX_RECORD_LINE_BYTES as u64 + 1;
        match (&mut self.reader).take(limit).read_until(b'\n', &mut buf) {
            Err(e) => {
                self.failed = Some(e);
                self.done = true;
                None
            }
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                self.line += 1;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                } else if buf.len() > MAX_RECORD_LINE_BYTES {
                    self.done = true;
                    return Some(FileLine(Err(ChainBreak::LineTooLong {
                        line: self.line,
                        limit: MAX_RECORD_LINE_BYTES,
                    })));
                }
                if buf.is_empty() {
                    return Some(FileLine(Err(ChainBreak::Malformed(
                        "empty line (the writer writes none)".into(),
                    ))));
                }
                Some(FileLine(String::from_utf8(buf).map_err(|_| {
                    ChainBreak::Malformed("line is not UTF-8".to_owned())
                })))
            }
        }
    }
}
