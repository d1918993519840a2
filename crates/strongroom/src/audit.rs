//! The tamper-evident audit trail.
//!
//! Every operation, allowed or denied, is described by an [`AuditEvent`] and
//! handed to [`AuditLog::append`] *before* any secret leaves the library. The
//! log numbers it, chains it to its predecessor with a MAC and writes it to
//! every [`AuditSink`]. If no sink accepts it, `append` fails with
//! [`AuditError::NoSinkAccepted`] and the caller must not carry out the
//! operation (fail closed).
//!
//! # What a record holds
//!
//! Time, principal, operation, path, secret version or lease id, outcome
//! (allowed, denied, or error with its kind), a request id, and optional
//! named fields whose values can only be an [`AuditHmac`]:
//! `hmac-sha256:<hex>` of a value (a password written, a token) under a key
//! derived from the store's audit key. An auditor holding a known value can
//! ask [`AuditLog::hmac`] (or [`audit_hmac`], given the audit key) for its
//! HMAC and search the log for it; the log itself never reveals the value.
//!
//! # Record format (version 1)
//!
//! One JSON object per line:
//!
//! ```text
//! {"v":1,"seq":7,"time":1795320399123,"event":{"principal":"payment-svc",
//!  "operation":"read","path":"prod/payment-svc/postgres","version":3,
//!  "outcome":{"result":"allowed"},"request_id":"9f1c...",
//!  "fields":{"token":"hmac-sha256:5d1e..."}},"prev":"<64 hex>","mac":"<64 hex>"}
//! ```
//!
//! `time` is milliseconds since the Unix epoch. Records carry consecutive
//! `seq` numbers from 1. Absent optional fields are left out.
//!
//! Keys: HKDF-SHA256 with salt `strongroom audit v1` over the audit key
//! gives a 32-byte *chain key* (info `chain mac`) and a 32-byte *value key*
//! (info `value hmac`). Field values are `hmac-sha256:` + hex of
//! HMAC-SHA256(value key, value).
//!
//! `mac` is hex of HMAC-SHA256(chain key, canonical encoding), where the
//! canonical encoding is independent of JSON formatting. With `str(x)` =
//! 8-byte big-endian length then the UTF-8 bytes, and `opt(x)` = byte 0 if
//! absent, else byte 1 then `str(x)`:
//!
//! ```text
//! "strongroom-audit\0"  u32be(v)  u64be(seq)  u64be(time)
//! str(principal)  str(operation)  opt(path)  opt(u64be(version))  opt(lease_id)
//! outcome: 1 (allowed) | 2 (denied) | 3 str(kind) (error)
//! str(request_id)  u64be(number of fields)  {str(name) str(value)} in name order
//! str(prev)      -- the predecessor's mac as hex; 64 '0's for seq 1
//! ```
//!
//! Vectors: `crates/strongroom/tests/vectors/audit-v1.json` (key, lines,
//! head, value HMACs), reproduced byte for byte by a unit test and checked
//! by an independent Python implementation beside it
//! (`verify_audit_v1.py`, standard library only).
//!
//! # Verification
//!
//! [`verify`] and [`verify_jsonl_file`] walk a chain and report the first
//! broken record as [`AuditError::ChainBroken`]: an edited record fails its
//! MAC (or, for raw lines, is not in the canonical form the writer produces);
//! a deleted, reordered or inserted record breaks the `seq`/`prev` sequence;
//! truncation at the end is found against a saved [`Checkpoint`] (the
//! `seq` and `mac` of the head). Keep checkpoints where whoever can rewrite
//! the log cannot (the store's own storage, another machine): anyone can
//! read a valid checkpoint off a truncated log.
//!
//! ```
//! # async fn demo() -> Result<(), strongroom::audit::AuditError> {
//! use std::sync::Arc;
//! use strongroom::audit::*;
//! use strongroom::clock::{ManualClock, Timestamp};
//! use strongroom::SecretBytes;
//!
//! let key = SecretBytes::new(vec![7u8; 32]);
//! let sink = Arc::new(MemorySink::new());
//! let log = AuditLog::new(key.clone(), vec![sink.clone()], Arc::new(ManualClock::new(Timestamp::EPOCH)))?;
//! let event = AuditEvent::new("payment-svc", Operation::Read, "req-1")
//!     .with_path("prod/payment-svc/postgres")
//!     .with_version(3)
//!     .with_field("token", log.hmac(b"s.3cr3t"));
//! let record = log.append(event).await?;
//! assert_eq!(record.seq, 1);
//! let report = verify(sink.lines(), &key, None, Some(&log.head().await))?;
//! assert_eq!(report.records, 1);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use ring::{hkdf, hmac};
use serde::{Deserialize, Deserializer, Serialize};
use subtle::ConstantTimeEq;

use crate::SecretBytes;
use crate::clock::{Clock, Timestamp};
use crate::path::SecretPath;

/// The record format version written by this build.
pub const RECORD_VERSION: u32 = 1;
/// How long a sink may take to accept a record unless configured otherwise.
pub const DEFAULT_SINK_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest audit key accepted, in bytes.
pub const MIN_AUDIT_KEY_BYTES: usize = 32;

const HMAC_PREFIX: &str = "hmac-sha256:";
const GENESIS_MAC: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

    /// A sink failed to write a record (returned by [`AuditSink::write`]).
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
    /// The record at a checkpoint's seq has another MAC than the checkpoint.
    #[error("record differs from the saved checkpoint")]
    CheckpointMismatch,
    /// The chain ends before the saved checkpoint.
    #[error("log ends at seq {last} but the checkpoint is at seq {checkpoint} (truncated)")]
    Truncated {
        /// The last record present.
        last: u64,
        /// The checkpoint's seq.
        checkpoint: u64,
    },
}

/// An HMAC-SHA256 of a value under the store's audit value key, as
/// `hmac-sha256:<64 lower-case hex>`. The only form in which values,
/// passwords and tokens may appear in audit records. Obtain one from
/// [`AuditLog::hmac`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AuditHmac(String);

impl AuditHmac {
    /// The text, `hmac-sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_well_formed(s: &str) -> bool {
        s.strip_prefix(HMAC_PREFIX).is_some_and(|h| {
            h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }
}

impl fmt::Display for AuditHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AuditHmac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if Self::is_well_formed(&s) {
            Ok(Self(s))
        } else {
            Err(serde::de::Error::custom(
                "audit field values must be hmac-sha256:<64 hex>",
            ))
        }
    }
}

/// What was done (or attempted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// Read a secret's value.
    Read,
    /// Read a secret's metadata.
    ReadMetadata,
    /// Write a new secret or version.
    Write,
    /// Change a secret's metadata.
    WriteMetadata,
    /// List paths.
    List,
    /// Soft-delete versions.
    Delete,
    /// Undelete versions.
    Undelete,
    /// Destroy versions.
    Destroy,
    /// Rotate a secret or credential.
    Rotate,
    /// Issue a lease.
    LeaseIssue,
    /// Renew a lease.
    LeaseRenew,
    /// Revoke a lease.
    LeaseRevoke,
    /// Rotate the keyring.
    KeyringRotate,
    /// Rewrap values under a newer key.
    Rewrap,
    /// Unseal the store.
    Unseal,
    /// Seal the store.
    Seal,
    /// Change policies.
    PolicyChange,
}

impl Operation {
    /// The snake_case name used in records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadMetadata => "read_metadata",
            Self::Write => "write",
            Self::WriteMetadata => "write_metadata",
            Self::List => "list",
            Self::Delete => "delete",
            Self::Undelete => "undelete",
            Self::Destroy => "destroy",
            Self::Rotate => "rotate",
            Self::LeaseIssue => "lease_issue",
            Self::LeaseRenew => "lease_renew",
            Self::LeaseRevoke => "lease_revoke",
            Self::KeyringRotate => "keyring_rotate",
            Self::Rewrap => "rewrap",
            Self::Unseal => "unseal",
            Self::Seal => "seal",
            Self::PolicyChange => "policy_change",
        }
    }

    /// Whether the operation hands out a secret value (counted as a read by
    /// the [`Inventory`]).
    pub const fn reveals_secret(self) -> bool {
        matches!(self, Self::Read | Self::LeaseIssue)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// The policy allowed it (written before the operation runs).
    Allowed,
    /// The policy denied it.
    Denied,
    /// It failed.
    Error {
        /// A short machine-readable kind, e.g. `cas_conflict`, `not_found`.
        /// Never a message that could quote a value.
        kind: String,
    },
}

/// One operation to record. Build with [`AuditEvent::new`] and the `with_`
/// methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Who acted.
    pub principal: String,
    /// What they did.
    pub operation: Operation,
    /// On which path (absent for store-wide operations). Kept as text so
    /// that a request for an invalid path can be recorded as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The secret version concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The lease concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The caller's request id, to correlate records.
    pub request_id: String,
    /// Named HMACs of values (a value written, a token presented).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, AuditHmac>,
}

impl AuditEvent {
    /// An allowed event with no path; add details with the `with_` methods.
    pub fn new(
        principal: impl Into<String>,
        operation: Operation,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            principal: principal.into(),
            operation,
            path: None,
            version: None,
            lease_id: None,
            outcome: Outcome::Allowed,
            request_id: request_id.into(),
            fields: BTreeMap::new(),
        }
    }

    /// Sets the path.
    #[must_use]
    pub fn with_path(mut self, path: impl AsRef<str>) -> Self {
        self.path = Some(path.as_ref().to_owned());
        self
    }

    /// Sets the path from a validated path.
    #[must_use]
    pub fn with_secret_path(self, path: &SecretPath) -> Self {
        self.with_path(path.as_str())
    }

    /// Sets the secret version.
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets the lease id.
    #[must_use]
    pub fn with_lease_id(mut self, lease_id: impl Into<String>) -> Self {
        self.lease_id = Some(lease_id.into());
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Adds a named HMAC field.
    #[must_use]
    pub fn with_field(mut self, name: impl Into<String>, value: AuditHmac) -> Self {
        self.fields.insert(name.into(), value);
        self
    }
}

/// `hmac-sha256:<hex>` of `value` under the value key derived from
/// `audit_key`: what [`AuditLog::hmac`] returns, for an auditor who holds
/// the audit key and a known value but no running log.
pub fn audit_hmac(audit_key: &SecretBytes, value: &[u8]) -> Result<AuditHmac, AuditError> {
    Ok(AuditKeys::derive(audit_key)?.value_hmac(value))
}

/// A random request id (16 random bytes as hex).
pub fn new_request_id() -> crate::Result<String> {
    let b = SecretBytes::random(16)?;
    Ok(hex::encode(b.expose_secret()))
}

/// A chained audit record, as written to sinks.
///
/// The fields are public so that records can be inspected; changing one
/// makes [`verify`] fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// The record format version ([`RECORD_VERSION`]).
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
    fn canonical(&self) -> Vec<u8> {
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
}

/// The two keys derived from the audit key.
struct AuditKeys {
    chain: hmac::Key,
    value: hmac::Key,
}

impl AuditKeys {
    fn derive(audit_key: &SecretBytes) -> Result<Self, AuditError> {
        if audit_key.len() < MIN_AUDIT_KEY_BYTES {
            return Err(AuditError::WeakKey {
                len: audit_key.len(),
            });
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"strongroom audit v1")
            .extract(audit_key.expose_secret());
        let key = |info: &'static [u8]| -> Result<hmac::Key, AuditError> {
            let infos = [info];
            let okm = prk
                .expand(&infos, hmac::HMAC_SHA256)
                .map_err(|_| AuditError::Encode("key derivation failed".into()))?;
            Ok(hmac::Key::from(okm))
        };
        Ok(Self {
            chain: key(b"chain mac")?,
            value: key(b"value hmac")?,
        })
    }

    fn value_hmac(&self, value: &[u8]) -> AuditHmac {
        let tag = hmac::sign(&self.value, value);
        AuditHmac(format!("{HMAC_PREFIX}{}", hex::encode(tag.as_ref())))
    }

    fn record_mac(&self, record: &AuditRecord) -> String {
        hex::encode(hmac::sign(&self.chain, &record.canonical()).as_ref())
    }

    fn record_mac_ok(&self, record: &AuditRecord) -> bool {
        match hex::decode(&record.mac) {
            Ok(tag) => hmac::verify(&self.chain, &record.canonical(), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// A destination for audit records. Implementations must be cheap to call
/// concurrently and must not log the line anywhere else.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// A short name for errors (`"file:/var/log/strongroom.jsonl"`).
    fn name(&self) -> &str;

    /// Durably accepts one record. `line` is the record's JSON line without
    /// a newline. Return `Ok` only once the record is stored as far as this
    /// sink promises. May be cancelled (dropped) on timeout.
    async fn write(&self, record: &AuditRecord, line: &str) -> Result<(), AuditError>;
}

/// The chained audit log: the one writer of a chain.
pub struct AuditLog {
    keys: AuditKeys,
    sinks: Vec<Arc<dyn AuditSink>>,
    clock: Arc<dyn Clock>,
    sink_timeout: Duration,
    head: tokio::sync::Mutex<Checkpoint>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("keys", &"[REDACTED]")
            .field("sinks", &self.sinks)
            .field("sink_timeout", &self.sink_timeout)
            .finish_non_exhaustive()
    }
}

type SinkWrite<'a> = Pin<Box<dyn Future<Output = Result<(), SinkFailure>> + Send + 'a>>;

impl AuditLog {
    /// A new chain starting at seq 1. `audit_key` (at least 32 bytes) is the
    /// store's audit key; the chain and value keys are derived from it.
    pub fn new(
        audit_key: SecretBytes,
        sinks: Vec<Arc<dyn AuditSink>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuditError> {
        Self::resume(audit_key, sinks, clock, Checkpoint::genesis())
    }

    /// Continues a chain after `head` (the checkpoint saved when the previous
    /// log stopped).
    pub fn resume(
        audit_key: SecretBytes,
        sinks: Vec<Arc<dyn AuditSink>>,
        clock: Arc<dyn Clock>,
        head: Checkpoint,
    ) -> Result<Self, AuditError> {
        if sinks.is_empty() {
            return Err(AuditError::NoSinks);
        }
        Ok(Self {
            keys: AuditKeys::derive(&audit_key)?,
            sinks,
            clock,
            sink_timeout: DEFAULT_SINK_TIMEOUT,
            head: tokio::sync::Mutex::new(head),
        })
    }

    /// Sets how long each sink may take per record (default
    /// [`DEFAULT_SINK_TIMEOUT`]).
    #[must_use]
    pub fn with_sink_timeout(mut self, timeout: Duration) -> Self {
        self.sink_timeout = timeout;
        self
    }

    /// `hmac-sha256:<hex>` of `value` under the audit value key: the form in
    /// which a value may appear in a record, and how an auditor finds a
    /// known value in the log.
    pub fn hmac(&self, value: &[u8]) -> AuditHmac {
        self.keys.value_hmac(value)
    }

    /// The current head of the chain.
    pub async fn head(&self) -> Checkpoint {
        self.head.lock().await.clone()
    }

    /// Numbers, chains and writes `event` to every sink (concurrently, each
    /// within the sink timeout). Appends are serialised: records reach each
    /// sink in sequence order.
    ///
    /// Succeeds if at least one sink accepted the record (failures of the
    /// others are logged with `tracing::warn!`; their copies now have a gap
    /// that verification will show). If none did, returns
    /// [`AuditError::NoSinkAccepted`], the sequence number is not used, and
    /// the caller must not go on with the operation.
    ///
    /// Cancel-safe in the sense that matters for the chain: if the returned
    /// future is dropped while sinks are writing, the head still moves past
    /// the record (some sink may hold it), so no sequence number is ever
    /// used twice; sinks that did not get it show a gap.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let head = self.head.lock().await;
        let seq = head
            .seq
            .checked_add(1)
            .ok_or(AuditError::SequenceExhausted)?;
        let mut record = AuditRecord {
            v: RECORD_VERSION,
            seq,
            time: self.clock.now(),
            event,
            prev: head.mac.clone(),
            mac: String::new(),
        };
        record.mac = self.keys.record_mac(&record);
        let line = record.to_json_line()?;
        // From here on, if this future is dropped (the caller gave up) some
        // sinks may already hold the record: the head must then move past
        // it, or the next record would reuse its seq.
        let mut head = AdvanceOnDrop {
            head,
            next: Some(record.checkpoint()),
        };

        let timeout = self.sink_timeout;
        let (rec, line_ref) = (&record, line.as_str());
        let mut writes: Vec<Option<SinkWrite<'_>>> = self
            .sinks
            .iter()
            .map(|sink| {
                let fut: SinkWrite<'_> = Box::pin(async move {
                    match tokio::time::timeout(timeout, sink.write(rec, line_ref)).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(SinkFailure {
                            sink: sink.name().to_owned(),
                            timed_out: false,
                            message: e.to_string(),
                        }),
                        Err(_) => Err(SinkFailure {
                            sink: sink.name().to_owned(),
                            timed_out: true,
                            message: format!("timed out after {timeout:?}"),
                        }),
                    }
                });
                Some(fut)
            })
            .collect();
        let mut results: Vec<Option<Result<(), SinkFailure>>> =
            writes.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (slot, result) in writes.iter_mut().zip(results.iter_mut()) {
                if let Some(fut) = slot {
                    match fut.as_mut().poll(cx) {
                        Poll::Ready(r) => {
                            *result = Some(r);
                            *slot = None;
                        }
                        Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        drop(writes);

        let mut accepted = 0usize;
        let mut failures = Vec::new();
        for r in results.into_iter().flatten() {
            match r {
                Ok(()) => accepted += 1,
                Err(f) => failures.push(f),
            }
        }
        if accepted == 0 {
            head.next = None;
            return Err(AuditError::NoSinkAccepted { seq, failures });
        }
        for f in &failures {
            tracing::warn!(target: "strongroom::audit", seq, sink = %f.sink, "audit sink did not accept a record: {}", f.message);
        }
        drop(head);
        Ok(record)
    }
}

/// Holds the chain head while an append is in flight and moves it to `next`
/// when dropped, unless `next` was cleared (no sink accepted the record).
struct AdvanceOnDrop<'a> {
    head: tokio::sync::MutexGuard<'a, Checkpoint>,
    next: Option<Checkpoint>,
}

impl Drop for AdvanceOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(next) = self.next.take() {
            *self.head = next;
        }
    }
}

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

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records verified (after the `from` checkpoint).
    pub records: u64,
    /// The first verified record's seq, if any.
    pub first_seq: Option<u64>,
    /// The head after the last record (save it to check truncation later).
    pub head: Checkpoint,
}

/// Verifies a chain. `from` is a trusted checkpoint to start after (records
/// at or before it are skipped, the one at its seq must match it); without
/// it the chain must start at seq 1. `expect_head` is a saved checkpoint
/// the chain must reach (and match): without it truncation at the end
/// cannot be seen. Returns the first broken record.
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
    let keys = AuditKeys::derive(audit_key)?;
    let start = from.cloned().unwrap_or_else(Checkpoint::genesis);
    let broken = |seq: u64, reason: ChainBreak| AuditError::ChainBroken { seq, reason };
    let mut last = start.seq;
    let mut prev = start.mac.clone();
    let mut count = 0u64;
    let mut first_seq = None;
    let mut skipping = from.is_some();
    for item in records {
        let expected = last.checked_add(1).ok_or(AuditError::SequenceExhausted)?;
        let record = item
            .into_record()
            .map_err(|m| broken(expected, ChainBreak::Malformed(m)))?;
        if record.v != RECORD_VERSION {
            return Err(broken(expected, ChainBreak::UnsupportedVersion(record.v)));
        }
        if skipping && record.seq <= start.seq {
            if record.seq == start.seq && !ct_eq(&record.mac, &start.mac) {
                return Err(broken(start.seq, ChainBreak::CheckpointMismatch));
            }
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
        if let Some(h) = expect_head
            && h.seq == record.seq
            && !ct_eq(&h.mac, &record.mac)
        {
            return Err(broken(h.seq, ChainBreak::CheckpointMismatch));
        }
        last = record.seq;
        prev = record.mac;
        count += 1;
        first_seq.get_or_insert(last);
    }
    if let Some(h) = expect_head
        && last < h.seq
    {
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
    })
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Verifies a JSON-lines audit file (as written by [`JsonlFileSink`]); see
/// [`verify`]. An empty last line is ignored; a partial last line (a crash
/// mid-write) is reported as malformed.
pub fn verify_jsonl_file(
    path: impl AsRef<Path>,
    audit_key: &SecretBytes,
    from: Option<&Checkpoint>,
    expect_head: Option<&Checkpoint>,
) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let io = |e: std::io::Error| AuditError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let lines = std::io::BufReader::new(file)
        .lines()
        .filter(|l| !matches!(l, Ok(s) if s.is_empty()));
    verify(lines, audit_key, from, expect_head)
}

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
/// one [`AuditLog`] per sink.
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

/// What one principal did to one path, summed over records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSummary {
    /// The path.
    pub path: String,
    /// The principal.
    pub principal: String,
    /// Allowed operations that handed out a secret (reads, leases).
    pub reads: u64,
    /// When it last did so.
    pub last_read: Option<Timestamp>,
    /// Every allowed operation it performed there.
    pub operations: BTreeSet<Operation>,
    /// Its last allowed operation there.
    pub last_access: Option<Timestamp>,
    /// Denied attempts.
    pub denied: u64,
    /// Its last denied attempt.
    pub last_denied: Option<Timestamp>,
}

/// Who touched what, built from audit records (verify them first).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Keyed by (path, principal).
    entries: BTreeMap<(String, String), AccessSummary>,
}

impl Inventory {
    /// Sums up `records` (records without a path are ignored).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Self {
        let mut entries: BTreeMap<(String, String), AccessSummary> = BTreeMap::new();
        for r in records {
            let e = &r.event;
            let Some(path) = &e.path else { continue };
            let s = entries
                .entry((path.clone(), e.principal.clone()))
                .or_insert_with(|| AccessSummary {
                    path: path.clone(),
                    principal: e.principal.clone(),
                    reads: 0,
                    last_read: None,
                    operations: BTreeSet::new(),
                    last_access: None,
                    denied: 0,
                    last_denied: None,
                });
            match e.outcome {
                Outcome::Allowed => {
                    s.operations.insert(e.operation);
                    s.last_access = s.last_access.max(Some(r.time));
                    if e.operation.reveals_secret() {
                        s.reads += 1;
                        s.last_read = s.last_read.max(Some(r.time));
                    }
                }
                Outcome::Denied => {
                    s.denied += 1;
                    s.last_denied = s.last_denied.max(Some(r.time));
                }
                Outcome::Error { .. } => {}
            }
        }
        Self { entries }
    }

    /// The principals that read `path`, with how often and when last,
    /// by principal name.
    pub fn readers(&self, path: &str) -> Vec<&AccessSummary> {
        self.entries
            .values()
            .filter(|s| s.path == path && s.reads > 0)
            .collect()
    }

    /// Every path `principal` touched or tried to (allowed, denied or
    /// failed), by path.
    pub fn touched_by(&self, principal: &str) -> Vec<&AccessSummary> {
        self.entries
            .values()
            .filter(|s| s.principal == principal)
            .collect()
    }
}

#[cfg(test)]
mod tests;
