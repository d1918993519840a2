//! Alerts on unusual access: rules evaluated on the audit stream.
//!
//! An [`AlertEngine`] observes an [`AuditLog`](crate::audit::AuditLog):
//! every record a sink accepted is run through the rules as it is appended,
//! and each [`Alert`] raised goes through a bounded queue to the
//! [`AlertSink`]s ([`ChannelSink`], [`TracingAlertSink`], [`CallbackSink`],
//! `WebhookSink` (HTTPS, feature `tls`) or your own). [`Evaluator`] is the
//! same rules without the queue, for replaying a log offline.
//!
//! # Rules
//!
//! Each is configured by its own struct in [`AlertConfig`] (in code with
//! the `with_` methods, or from TOML with [`AlertConfig::from_toml`]) and
//! can be disabled on its own. "Reads" are allowed records of operation
//! `read` or `lease_issue` (the operations that hand out a value).
//!
//! 1. [`NewPathRule`] ([`AlertKind::NewPath`]): a principal reads a path it
//!    has not read before, once its learning period is over.
//! 2. [`ReadRateRule`] ([`AlertKind::ReadRate`]): reads in the current
//!    window exceed `factor` times the principal's moving average, and at
//!    least `min_count`.
//! 3. [`BulkAccessRule`] ([`AlertKind::BulkAccess`]): more than N distinct
//!    paths read or listed within a sliding window.
//! 4. [`OffHoursRule`] ([`AlertKind::OffHours`]): any record of a principal
//!    outside the UTC hours of the first [`Schedule`] matching its name.
//! 5. [`RepeatedDenialsRule`] ([`AlertKind::RepeatedDenials`]): N denied
//!    records of a principal within a window.
//! 6. [`SensitiveReadRule`] ([`AlertKind::SensitiveRead`]): a read of a
//!    path matching one of the sensitive [`PathPattern`](crate::policy::PathPattern)s.
//! 7. [`StaleVersionRule`] ([`AlertKind::StaleVersion`]): an allowed `read`
//!    record whose version is lower than the newest version of that path
//!    the engine has seen in an allowed `write` (result), `read` or
//!    `read_metadata` record. That is what records let one detect: they
//!    carry the version read, not whether it was retired, so a version
//!    newer than any the engine saw since it started, or a newer version
//!    written by another process's log, is unknown to it; leases and
//!    dynamic credentials are not covered.
//!
//! # Time and memory
//!
//! Time is each record's own `time`, which the audit log stamps from the
//! store's [`Clock`](crate::clock::Clock): a
//! [`ManualClock`](crate::clock::ManualClock) drives the rules in tests,
//! and replaying a log gives the alerts it gave live. Memory is bounded by
//! [`Limits`]: at most `max_principals` principals (default 10 000), each
//! with at most `max_paths_per_principal` paths (default 1 000) for the
//! new-path and bulk rules, and `max_versioned_paths` paths (default
//! 100 000) for the stale-version rule; the least recently seen entry is
//! dropped when a map is full. A dropped principal starts a new learning
//! period (no new-path alerts for it meanwhile); a dropped path may be
//! reported as new again.
//!
//! # Never in the way
//!
//! The engine is an audit observer ([`AuditLog::with_observer`](crate::audit::AuditLog::with_observer)),
//! not an audit sink: it does not count towards "some sink accepted the
//! record" and cannot fail an operation. On the append path it evaluates
//! the rules under a mutex (no I/O, no await) and `try_send`s the alerts;
//! a full queue drops the alert and counts it ([`AlertStats::dropped`]).
//! Sinks run on a separate task, each call bounded by a timeout.
//!
//! # Limitations
//!
//! - The webhook's HTTP client is minimal: HTTPS only, one `POST` per
//!   connection, no proxy, no redirects, no HTTP/2; trust anchors are the
//!   caller's (no system or bundled root store).
//! - State lives in memory only: a restart starts every learning period and
//!   baseline afresh.
//! - One engine sees one log: processes sharing a store each alert on their
//!   own traffic.
//! - Only what a record says is used: alerts name principals, operations,
//!   paths, versions, counts and request ids, never values (records hold
//!   none) nor the records' HMAC fields.
//! - Alerts dropped on a full queue are counted, not retried.
//! - The stale-version rule can fire on a race: a read that got the newest
//!   version is recorded after a concurrent write's record of a newer one.
//! - Detection, not prevention: the operation was allowed and audited
//!   before its alert is raised.
//!
//! # Webhook
//!
//! `WebhookSink` (feature `tls`, on by default) POSTs each alert's JSON
//! form (the [`Alert`] fields: names, paths, counts, request ids; never a
//! secret value or an audit HMAC) to an `https://` URL over rustls. The
//! server's certificate must chain to a CA certificate you give (PEM) and
//! name the URL's host. With a signing key, each request carries
//! `X-Strongroom-Signature: sha256=<hex>`, the HMAC-SHA256 of the body, so
//! the receiver can check it came from you. Connection failures and `5xx`,
//! `408` and `429` answers are retried with backoff, all within the sink's
//! own timeout (default 4 s); alerts given up are counted in
//! `WebhookSink::stats` and logged without their body.
//!
//! ```no_run
//! # #[cfg(feature = "tls")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::alerts::{AlertConfig, AlertEngine, WebhookSink};
//! use strongroom::SecretBytes;
//!
//! let ca_pem = std::fs::read("/etc/strongroom/alerts-ca.pem")?;
//! let webhook = WebhookSink::new("https://alerts.internal:8443/strongroom", &ca_pem)?
//!     .with_signing_key(SecretBytes::new(std::fs::read("/etc/strongroom/webhook.key")?))?
//!     .with_timeout(Duration::from_secs(3));
//! let engine = AlertEngine::start(AlertConfig::default(), vec![Arc::new(webhook)])?;
//! # let _ = engine; Ok(()) }
//! ```
//!
//! # Example
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::alerts::*;
//! use strongroom::audit::{AuditEvent, AuditLog, MemorySink, Operation};
//! use strongroom::clock::{ManualClock, Timestamp};
//! use strongroom::SecretBytes;
//!
//! let config = AlertConfig::from_toml(
//!     r#"
//!     [new_path]
//!     learning_period_secs = 3600
//!     [sensitive_read]
//!     patterns = ["prod/admin/*"]
//!     "#,
//! )?;
//! let (sink, mut alerts) = ChannelSink::new(16);
//! let engine = AlertEngine::start(config, vec![Arc::new(sink)])?;
//!
//! let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
//! let log = AuditLog::new(
//!     SecretBytes::new(vec![7; 32]),
//!     vec![Arc::new(MemorySink::new())],
//!     clock.clone(),
//! )?;
//! let log = engine.attach(log);
//! let read = |path: &str| AuditEvent::new("billing", Operation::Read, "req").with_path(path);
//!
//! log.append(read("prod/billing/db")).await?; // learning
//! clock.advance(Duration::from_secs(2 * 3600));
//! log.append(read("prod/billing/db")).await?; // known: no alert
//! log.append(read("prod/admin/root")).await?; // new and sensitive
//!
//! let first = alerts.recv().await.unwrap();
//! assert_eq!(first.kind, AlertKind::NewPath);
//! assert_eq!(first.path.as_deref(), Some("prod/admin/root"));
//! assert_eq!(alerts.recv().await.unwrap().kind, AlertKind::SensitiveRead);
//! engine.settled().await;
//! assert_eq!(engine.stats().raised, 2);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

mod alert;
mod config;
mod engine;
mod error;
mod rules;
mod schedule;
mod sinks;
mod state;
#[cfg(feature = "tls")]
mod webhook;

pub use alert::{Alert, AlertKind, Severity};
pub use config::{
    AlertConfig, BulkAccessRule, Delivery, Limits, NewPathRule, OffHoursRule, ReadRateRule,
    RepeatedDenialsRule, SensitiveReadRule, StaleVersionRule, WebhookConfig,
};
pub use engine::{AlertEngine, AlertStats};
pub use error::AlertError;
pub use rules::Evaluator;
pub use schedule::{HourRange, Schedule};
pub use sinks::{AlertSink, CallbackSink, ChannelSink, TracingAlertSink};
#[cfg(feature = "tls")]
pub use webhook::{
    DEFAULT_WEBHOOK_RETRIES, DEFAULT_WEBHOOK_TIMEOUT, MAX_RESPONSE_BYTES, SIGNATURE_HEADER,
    WebhookSink, WebhookStats,
};

#[cfg(test)]
mod tests;
