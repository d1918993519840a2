//! Where alerts go: the [`AlertSink`] trait and the sinks shipped with the
//! library (a channel, `tracing`, a callback).

use std::fmt;

use super::Alert;

/// A destination for alerts. Called by the engine's delivery task, one
/// alert at a time, never on the audited operation's path; a call that
/// takes longer than the configured sink timeout is given up.
#[async_trait::async_trait]
pub trait AlertSink: Send + Sync + fmt::Debug {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// Takes one alert.
    async fn deliver(&self, alert: &Alert);
}

/// Sends alerts into a tokio `mpsc` channel. When the receiver lags, the
/// delivery waits (up to the sink timeout), so alerts back up in the
/// engine's bounded queue and, past its capacity, are dropped and counted.
#[derive(Debug)]
pub struct ChannelSink {
    tx: tokio::sync::mpsc::Sender<Alert>,
}

impl ChannelSink {
    /// A sink and the receiving end of its channel of `capacity` alerts.
    pub fn new(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<Alert>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }
}

#[async_trait::async_trait]
impl AlertSink for ChannelSink {
    fn name(&self) -> &str {
        "channel"
    }

    async fn deliver(&self, alert: &Alert) {
        // A closed receiver means nobody listens any more: nothing to do.
        let _ = self.tx.send(alert.clone()).await;
    }
}

/// Emits each alert as a `tracing` event at `warn` level (target
/// `strongroom::alerts`), with the kind, severity, principal, path and
/// request id as fields and the summary as the message.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingAlertSink;

#[async_trait::async_trait]
impl AlertSink for TracingAlertSink {
    fn name(&self) -> &str {
        "tracing"
    }

    async fn deliver(&self, alert: &Alert) {
        tracing::warn!(
            target: "strongroom::alerts",
            kind = alert.kind.as_str(),
            severity = alert.severity.as_str(),
            principal = %alert.principal,
            path = alert.path.as_deref().unwrap_or(""),
            request_id = %alert.request_id,
            seq = alert.seq,
            "{}",
            alert.summary
        );
    }
}

/// Calls a function with each alert (on the delivery task).
pub struct CallbackSink {
    name: String,
    f: Box<dyn Fn(&Alert) + Send + Sync>,
}

impl CallbackSink {
    /// A sink named `name` calling `f`.
    pub fn new(name: impl Into<String>, f: impl Fn(&Alert) + Send + Sync + 'static) -> Self {
        Self {
            name: name.into(),
            f: Box::new(f),
        }
    }
}

impl fmt::Debug for CallbackSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl AlertSink for CallbackSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, alert: &Alert) {
        (self.f)(alert);
    }
}
