//! Alerts on unusual access (`strongroom::alerts`): an `AlertEngine` from a
//! TOML rules text and a host-language `AlertListener`, attached to audit
//! logs the binding opens (`Strongroom.openAuditLogWithAlerts(path:alerts:fsync:)`),
//! so every principal handle writing to such a log feeds it.
//!
//! The listener is called for each alert on a blocking thread of the
//! runtime (never with the audited call waiting); anything it throws is
//! counted (`AlertEngineStats.listenerErrors`) and never stops
//! later alerts.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use strongroom::alerts::{
    Alert as CoreAlert, AlertConfig, AlertEngine as CoreEngine, AlertError, AlertSink,
};

use crate::errors::Result;

fn config_error(e: AlertError) -> strongroom::Error {
    strongroom::Error::InvalidArgument(e.to_string())
}

/// One alert (names, paths, counts; never a value).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Alert {
    /// The rule that fired: `new_path`, `read_rate`, `bulk_access`,
    /// `off_hours`, `repeated_denials`, `sensitive_read`, `stale_version`.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Who acted.
    pub principal: String,
    /// The path concerned (nil for bulk access).
    pub path: Option<String>,
    /// The request id of the audit record that raised it.
    pub request_id: String,
    /// The sequence number of that record.
    pub seq: u64,
    /// One line for people.
    pub summary: String,
    /// The record's time (ms since the Unix epoch).
    pub at_ms: u64,
}

impl From<&CoreAlert> for Alert {
    fn from(a: &CoreAlert) -> Self {
        Self {
            kind: a.kind.as_str().to_owned(),
            severity: a.severity.as_str().to_owned(),
            principal: a.principal.clone(),
            path: a.path.clone(),
            request_id: a.request_id.clone(),
            seq: a.seq,
            summary: a.summary.clone(),
            at_ms: a.at.as_millis(),
        }
    }
}

/// Why a host-language alert listener failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum AlertListenerError {
    /// The listener could not take the alert (counted).
    #[error("{reason}")]
    Failed {
        /// What went wrong.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for AlertListenerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed {
            reason: format!("the listener raised an unexpected error: {}", e.reason),
        }
    }
}

/// Receives alerts, written in the host language. Called once per alert,
/// off the audited call's path; keep it quick (hand the alert to a queue).
#[uniffi::export(with_foreign)]
pub trait AlertListener: Send + Sync {
    /// Takes one alert.
    fn on_alert(&self, alert: Alert) -> std::result::Result<(), AlertListenerError>;
}

/// The sink handing each alert to the listener.
struct ForeignSink {
    listener: Arc<dyn AlertListener>,
    errors: Arc<AtomicU64>,
}

impl fmt::Debug for ForeignSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignSink").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl AlertSink for ForeignSink {
    fn name(&self) -> &str {
        "foreign"
    }

    async fn deliver(&self, alert: &CoreAlert) {
        let (listener, errors, alert) = (
            self.listener.clone(),
            self.errors.clone(),
            Alert::from(alert),
        );
        // Host code may block: not on the runtime's own thread.
        let _ = tokio::task::spawn_blocking(move || {
            if listener.on_alert(alert).is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await;
    }
}

/// An alert engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct AlertEngineStats {
    /// Alerts the rules raised.
    pub raised: u64,
    /// Alerts handed to the listener (it returned or timed out).
    pub delivered: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Listener calls given up after the sink timeout.
    pub sink_timeouts: u64,
    /// Listener calls that threw.
    pub listener_errors: u64,
}

/// Live alerting on the audit stream: the rules of a TOML config run on
/// every record of the audit logs it is attached to; each alert goes to
/// the listener.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct AlertEngine {
    pub(crate) inner: CoreEngine,
    errors: Arc<AtomicU64>,
}

impl fmt::Debug for AlertEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.stats();
        write!(
            f,
            "AlertEngine(raised={}, delivered={}, dropped={})",
            s.raised, s.delivered, s.dropped
        )
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl AlertEngine {
    /// Starts an engine with the rules of `config` (TOML; fails with
    /// `.InvalidArgument` naming the mistake) calling `listener`.
    #[uniffi::constructor]
    pub async fn start(config: String, listener: Arc<dyn AlertListener>) -> Result<Arc<Self>> {
        let config = AlertConfig::from_toml(&config).map_err(config_error)?;
        let errors = Arc::new(AtomicU64::new(0));
        let sink = ForeignSink {
            listener,
            errors: errors.clone(),
        };
        let inner = CoreEngine::start(config, vec![Arc::new(sink)]).map_err(config_error)?;
        Ok(Arc::new(Self { inner, errors }))
    }

    /// The counters since the engine started.
    pub fn stats(&self) -> AlertEngineStats {
        let s = self.inner.stats();
        AlertEngineStats {
            raised: s.raised,
            delivered: s.delivered,
            dropped: s.dropped,
            sink_timeouts: s.sink_timeouts,
            listener_errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// Returns once every alert raised so far was delivered or dropped.
    pub async fn settled(&self) {
        self.inner.settled().await;
    }
}
