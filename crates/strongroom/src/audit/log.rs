//! The chain's one writer ([`AuditLog`]) and the [`AuditSink`] trait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::keys::AuditKeys;
use super::{
    AuditError, AuditEvent, AuditHmac, AuditRecord, Checkpoint, DEFAULT_SINK_TIMEOUT,
    RECORD_VERSION, SinkFailure,
};
use crate::SecretBytes;
use crate::clock::Clock;

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

    /// Whether an append must fail when this sink refuses the record (or
    /// times out), even if other sinks accepted it: the operation then does
    /// not happen (fail closed), and the record stays in the sinks that
    /// took it (its sequence number is used). Default `false`: an append
    /// succeeds when any sink accepts it.
    fn required(&self) -> bool {
        false
    }
}

/// The chained audit log: the one writer of a chain.
pub struct AuditLog {
    keys: AuditKeys,
    sinks: Vec<Arc<dyn AuditSink>>,
    clock: Arc<dyn Clock>,
    sink_timeout: Duration,
    head: tokio::sync::Mutex<Checkpoint>,
    observers: Vec<AuditObserver>,
}

/// Called with each record once a sink has accepted it (see
/// [`AuditLog::with_observer`]).
type AuditObserver = Arc<dyn Fn(&AuditRecord) + Send + Sync>;

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("keys", &"[REDACTED]")
            .field("sinks", &self.sinks)
            .field("sink_timeout", &self.sink_timeout)
            .field("observers", &self.observers.len())
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
            observers: Vec::new(),
        })
    }

    /// Adds an observer: a function called with every record once at least
    /// one sink accepted it, in sequence order, before `append` returns.
    /// An observer is not a sink: it does not count towards acceptance and
    /// cannot fail an append. It runs on the append path, so it must return
    /// quickly and never block (hand work to a queue). The alert engine
    /// ([`crate::alerts`]) attaches itself this way.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Fn(&AuditRecord) + Send + Sync>) -> Self {
        self.observers.push(observer);
        self
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
        let mut required_failure = None;
        for (sink, r) in self.sinks.iter().zip(results) {
            match r {
                Some(Ok(())) => accepted += 1,
                Some(Err(f)) => {
                    if sink.required() && required_failure.is_none() {
                        required_failure = Some(AuditError::Sink {
                            sink: f.sink.clone(),
                            message: format!("a required sink refused the record: {}", f.message),
                        });
                    }
                    failures.push(f);
                }
                None => {}
            }
        }
        if accepted == 0 {
            head.next = None;
            return Err(AuditError::NoSinkAccepted { seq, failures });
        }
        for f in &failures {
            tracing::warn!(target: "strongroom::audit", seq, sink = %f.sink, "audit sink did not accept a record: {}", f.message);
        }
        if let Some(e) = required_failure {
            // Other sinks hold the record: the head moves past it.
            return Err(e);
        }
        for observe in &self.observers {
            observe(&record);
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
