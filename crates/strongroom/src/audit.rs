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
//! Normative in `docs/FORMAT.md` ("Audit log records"). One JSON object per
//! line:
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
//! a MAC is compared as text in its one encoding (lower-case hex), so the
//! right MAC spelt another way fails too; a deleted, reordered or inserted
//! record breaks the `seq`/`prev` sequence; truncation at the end is found
//! against a saved [`Checkpoint`] (the `seq` and `mac` of the head). Keep
//! checkpoints where whoever can rewrite the log cannot (the store's own
//! storage, another machine): anyone can read a valid checkpoint off a
//! truncated log.
//!
//! [`Strongroom::verify_audit_file`](crate::Strongroom::verify_audit_file)
//! is the one call for a file a store wrote: it checks the file against the
//! store's saved head (`sys/audit-head`) by default, so a file cut short,
//! even emptied, fails, and takes an [`AuditFileCheck`] for a starting
//! checkpoint or one more checkpoint kept elsewhere. The `strongroom audit
//! verify` command and the bindings call it.
//!
//! # Files
//!
//! `error` (errors), `event` (what a record says), `record` (the chained
//! record, its canonical encoding, checkpoints), `keys` (key derivation and
//! MACs), `log` (the writer and the sink trait), `sinks` (file, tracing,
//! memory), `socket` (export to a collector over TCP, TLS or a Unix
//! socket), `otlp` (export as OpenTelemetry logs over HTTP, feature `tls`),
//! `verify` (chain and file verification), `store` (verification against a
//! store's saved head), `inventory` (who touched what).
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

mod error;
mod event;
mod inventory;
mod keys;
mod log;
#[cfg(feature = "tls")]
mod otlp;
mod record;
mod sinks;
mod socket;
mod store;
mod verify;

use std::time::Duration;

pub use error::{AuditError, ChainBreak, ParseCheckpointError, SinkFailure};
pub use event::{AuditEvent, AuditHmac, Operation, Outcome, new_request_id};
pub use inventory::{AccessSummary, Inventory};
pub use keys::audit_hmac;
pub use log::{AuditLog, AuditSink};
#[cfg(feature = "tls")]
pub use otlp::{DEFAULT_OTLP_RETRIES, DEFAULT_OTLP_TIMEOUT, OTLP_SCOPE_NAME, OtlpSink};
pub use record::{AuditRecord, Checkpoint};
pub use sinks::{FsyncPolicy, JsonlFileSink, MemorySink, TracingSink};
pub use socket::{SocketFormat, SocketSink};
pub use store::AuditFileCheck;
pub use verify::{ChainItem, MAX_RECORD_LINE_BYTES, VerifyReport, verify, verify_jsonl_file};

/// The record format version written by this build.
pub const RECORD_VERSION: u32 = 1;
/// How long a sink may take to accept a record unless configured otherwise.
pub const DEFAULT_SINK_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest audit key accepted, in bytes.
pub const MIN_AUDIT_KEY_BYTES: usize = 32;

const HMAC_PREFIX: &str = "hmac-sha256:";
const GENESIS_MAC: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[cfg(test)]
mod tests;
