//! A chained record, its canonical encoding (what the MAC covers) and the
//! chain head ([`Checkpoint`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{AuditError, AuditEvent, GENESIS_MAC, Outcome, ParseCheckpointError};
use crate::clock::Timestamp;

/// A chained audit record, as written to sinks.
///
/// The fields are public so that records can be inspected; changing one
/// makes [`verify`](super::verify) fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// The record format version ([`RECORD_VERSION`](super::RECORD_VERSION)).
    pub v: u32,
    /// The sequence number, from 1, consecutive.
    pub seq: u64,
    /// When it was appended.
    pub time: Timestamp,
    /// What happened.
    pub event: AuditEvent,
    /// The predecessor's MAC (hex; 64 zeros for the first record).
    pub prev: String,
    /// This record's MAC (hex).
    pub mac: String,
}

impl AuditRecord {
    /// The record as its one JSON line (without the newline).
    pub fn to_json_line(&self) -> Result<String, AuditError> {
        serde_json::to_string(self).map_err(|e| AuditError::Encode(e.to_string()))
    }

    /// Parses a JSON line (does not verify it).
    pub fn from_json_line(line: &str) -> Result<Self, AuditError> {
        serde_json::from_str(line).map_err(|e| AuditError::MalformedRecord(e.to_string()))
    }

    /// The chain head after this record.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            seq: self.seq,
            mac: self.mac.clone(),
        }
    }

    /// The canonical bytes the MAC covers (everything but `mac`).
    pub(super) fn canonical(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(b"strongroom-audit\0");
        b.extend_from_slice(&self.v.to_be_bytes());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.time.as_millis().to_be_bytes());
        let e = &self.event;
        put_str(&mut b, &e.principal);
        put_str(&mut b, e.operation.as_str());
        put_opt(&mut b, e.path.as_deref().map(str::as_bytes));
        put_opt(
            &mut b,
            e.version.map(u64::to_be_bytes).as_ref().map(|a| &a[..]),
        );
        put_opt(&mut b, e.lease_id.as_deref().map(str::as_bytes));
        match &e.outcome {
            Outcome::Allowed => b.push(1),
            Outcome::Denied => b.push(2),
            Outcome::Error { kind } => {
                b.push(3);
                put_str(&mut b, kind);
            }
        }
        put_str(&mut b, &e.request_id);
        b.extend_from_slice(&(e.fields.len() as u64).to_be_bytes());
        for (k, v) in &e.fields {
            put_str(&mut b, k);
            put_str(&mut b, v.as_str());
        }
        put_str(&mut b, &self.prev);
        b
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn put_opt(b: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            b.extend_from_slice(&(v.len() as u64).to_be_bytes());
            b.extend_from_slice(v);
        }
    }
}

/// The head of a chain: the last record's `seq` and `mac`. Save it (outside
/// the log's reach) to detect truncation later, or to resume a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last record's sequence number (0 before any record).
    pub seq: u64,
    /// The last record's MAC (hex).
    pub mac: String,
}

impl Checkpoint {
    /// The head of an empty chain.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            mac: GENESIS_MAC.to_owned(),
        }
    }

    /// Whether the MAC is in the one encoding the writer produces: 64
    /// lower-case hex digits.
    pub fn is_canonical(&self) -> bool {
        is_canonical_mac(&self.mac)
    }
}

/// Whether `mac` is 64 lower-case hex digits (the only encoding of a MAC
/// that verifies).
pub(super) fn is_canonical_mac(mac: &str) -> bool {
    mac.len() == 64 && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `seq:mac`, as `strongroom audit verify` prints and accepts it.
impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.mac)
    }
}

/// Parses `seq:mac` (the [`Display`](fmt::Display) form). The MAC must be
/// 64 lower-case hex digits: another encoding of a MAC is refused rather
/// than normalised.
impl FromStr for Checkpoint {
    type Err = ParseCheckpointError;

    fn from_str(s: &str) -> Result<Self, ParseCheckpointError> {
        let bad = |why: &str| ParseCheckpointError(why.to_owned());
        let (seq, mac) = s
            .split_once(':')
            .ok_or_else(|| bad("expected SEQ:MAC as printed by a previous verify"))?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("SEQ must be a decimal number"));
        }
        let seq = seq
            .parse::<u64>()
            .map_err(|_| bad("SEQ is larger than 2^64 - 1"))?;
        if !is_canonical_mac(mac) {
            return Err(bad("MAC must be 64 lower-case hex digits"));
        }
        Ok(Self {
            seq,
            mac: mac.to_owned(),
        })
    }
}
