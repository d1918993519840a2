//! [`AlertEngine`]: the evaluator on the audit log's append path and a
//! bounded queue to a delivery task that calls the sinks.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::{Alert, AlertConfig, AlertError, AlertSink, Evaluator};
use crate::audit::{AuditLog, AuditRecord};

/// Live alerting: evaluates every record an [`AuditLog`] accepts and
/// delivers the alerts to sinks in the background. Cheap to clone (clones
/// share the state).
///
/// Attach it with [`AlertEngine::attach`] (an audit *observer*, not an
/// audit sink: it never counts as having stored a record and cannot fail
/// an append). On the append path it only evaluates the rules (bounded
/// state, no I/O, no await) and puts alerts on a queue of
/// [`Delivery::queue_capacity`](super::Delivery::queue_capacity); when the
/// queue is full the alert is dropped and counted in
/// [`AlertStats::dropped`]. A delivery task (spawned by
/// [`AlertEngine::start`]) hands each alert to every sink in turn, each
/// within [`Delivery::sink_timeout_ms`](super::Delivery::sink_timeout_ms).
/// The task ends once every clone of the engine and every log it is
/// attached to are dropped and the queue is drained.
#[derive(Clone)]
pub struct AlertEngine {
    inner: Arc<Inner>,
}

struct Inner {
    evaluator: Mutex<Evaluator>,
    tx: mpsc::Sender<Alert>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    raised: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    sink_timeouts: AtomicU64,
    changed: Notify,
}

/// Counters of an [`AlertEngine`] since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlertStats {
    /// Alerts the rules raised.
    pub raised: u64,
    /// Alerts handed to every sink (each sink returned or timed out).
    pub delivered: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Sink calls given up after the sink timeout.
    pub sink_timeouts: u64,
}

impl fmt::Debug for AlertEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertEngine")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AlertEngine {
    /// Validates `config` and spawns the delivery task on the current
    /// tokio runtime ([`AlertError::NoRuntime`] outside one).
    pub fn start(config: AlertConfig, sinks: Vec<Arc<dyn AlertSink>>) -> Result<Self, AlertError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AlertError::NoRuntime)?;
        let timeout = config.sink_timeout();
        let (tx, rx) = mpsc::channel(config.delivery.queue_capacity);
        let evaluator = Evaluator::new(config)?;
        let stats = Arc::new(Stats::default());
        runtime.spawn(deliver(rx, sinks, Arc::clone(&stats), timeout));
        Ok(Self {
            inner: Arc::new(Inner {
                evaluator: Mutex::new(evaluator),
                tx,
                stats,
            }),
        })
    }

    /// `log` with this engine observing it (see
    /// [`AuditLog::with_observer`]).
    pub fn attach(&self, log: AuditLog) -> AuditLog {
        log.with_observer(self.observer())
    }

    /// The observer function [`attach`](Self::attach) installs.
    pub fn observer(&self) -> Arc<dyn Fn(&AuditRecord) + Send + Sync> {
        let engine = self.clone();
        Arc::new(move |record: &AuditRecord| engine.observe(record))
    }

    /// Evaluates one record and queues its alerts; never waits. Records
    /// must come in sequence order (the audit log calls its observers so).
    pub fn observe(&self, record: &AuditRecord) {
        let alerts = self
            .inner
            .evaluator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .evaluate(record);
        let stats = &self.inner.stats;
        for alert in alerts {
            stats.raised.fetch_add(1, Ordering::Relaxed);
            if self.inner.tx.try_send(alert).is_err() {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                stats.changed.notify_waiters();
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> AlertStats {
        let s = &self.inner.stats;
        AlertStats {
            raised: s.raised.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            sink_timeouts: s.sink_timeouts.load(Ordering::Relaxed),
        }
    }

    /// Waits until every alert raised so far was delivered or dropped.
    pub async fn settled(&self) {
        let s = &self.inner.stats;
        loop {
            let changed = s.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let st = self.stats();
            if st.delivered + st.dropped >= st.raised {
                return;
            }
            changed.await;
        }
    }

    /// Runs `f` on the evaluator (to inspect how much state it holds).
    pub fn with_evaluator<T>(&self, f: impl FnOnce(&Evaluator) -> T) -> T {
        f(&self
            .inner
            .evaluator
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

/// The delivery task: each queued alert to every sink, in turn.
async fn deliver(
    mut rx: mpsc::Receiver<Alert>,
    sinks: Vec<Arc<dyn AlertSink>>,
    stats: Arc<Stats>,
    timeout: Duration,
) {
    while let Some(alert) = rx.recv().await {
        for sink in &sinks {
            if tokio::time::timeout(timeout, sink.deliver(&alert))
                .await
                .is_err()
            {
                stats.sink_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "strongroom::alerts", sink = sink.name(), "alert sink timed out after {timeout:?}");
            }
        }
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        stats.changed.notify_waiters();
    }
}
