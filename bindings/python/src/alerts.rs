//! Alerts on unusual access (`strongroom::alerts`): an `AlertEngine` made
//! from a TOML rules text and a Python callable, attached to audit logs the
//! binding opens (`sr.open_audit_log(path, alerts=engine)`), so every
//! principal handle writing to such a log feeds it.
//!
//! The callable runs for each alert on a blocking-pool thread of the
//! binding's runtime (never on a runtime worker, never with the audited
//! call waiting), with the GIL taken through [`crate::lifetime::attach`].
//! An exception it raises goes to `sys.unraisablehook` and is counted; it
//! never stops later alerts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use strongroom::alerts::{
    Alert as CoreAlert, AlertConfig, AlertEngine as CoreEngine, AlertError, AlertSink,
};

use crate::{runtime, to_py};

fn config_error(e: AlertError) -> PyErr {
    to_py(strongroom::Error::InvalidArgument(e.to_string()))
}

/// One alert (plain data: names, paths, counts; never a value).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct Alert {
    /// The rule that fired: "new_path", "read_rate", "bulk_access",
    /// "off_hours", "repeated_denials", "sensitive_read" or "stale_version".
    kind: &'static str,
    /// "info", "warning" or "critical".
    severity: &'static str,
    /// Who acted.
    principal: String,
    /// The path concerned (`None` for bulk access).
    path: Option<String>,
    /// The request id of the audit record that raised it.
    request_id: String,
    /// The sequence number of that record.
    seq: u64,
    /// One line for people.
    summary: String,
    /// The record's time, milliseconds since the Unix epoch.
    at_ms: u64,
}

impl From<&CoreAlert> for Alert {
    fn from(a: &CoreAlert) -> Self {
        Self {
            kind: a.kind.as_str(),
            severity: a.severity.as_str(),
            principal: a.principal.clone(),
            path: a.path.clone(),
            request_id: a.request_id.clone(),
            seq: a.seq,
            summary: a.summary.clone(),
            at_ms: a.at.as_millis(),
        }
    }
}

#[pymethods]
impl Alert {
    fn __repr__(&self) -> String {
        format!(
            "Alert(kind={:?}, severity={:?}, principal={:?}, path={:?}, seq={})",
            self.kind, self.severity, self.principal, self.path, self.seq
        )
    }
}

/// The sink handing each alert to the Python callable.
struct PySink {
    callback: Arc<Py<PyAny>>,
    errors: Arc<AtomicU64>,
}

impl std::fmt::Debug for PySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PySink").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl AlertSink for PySink {
    fn name(&self) -> &str {
        "python"
    }

    async fn deliver(&self, alert: &CoreAlert) {
        let alert = Alert::from(alert);
        let (callback, errors) = (self.callback.clone(), self.errors.clone());
        // Entering Python takes the GIL: on a blocking thread, not a worker.
        let _ = tokio::task::spawn_blocking(move || {
            crate::lifetime::attach(|py| {
                let cb = callback.bind(py);
                if let Err(e) = cb.call1((alert,)) {
                    errors.fetch_add(1, Ordering::Relaxed);
                    e.write_unraisable(py, Some(cb));
                }
            })
        })
        .await;
    }
}

/// Live alerting on the audit stream: the rules of `config` (TOML, as in
/// `strongroom::alerts::AlertConfig`) run on every record of the audit
/// logs it is attached to (`sr.open_audit_log(path, alerts=engine)`);
/// each alert is passed to `callback(alert)` on a worker thread.
#[pyclass(module = "strongroom", frozen)]
pub struct AlertEngine {
    pub(crate) inner: CoreEngine,
    errors: Arc<AtomicU64>,
}

#[pymethods]
impl AlertEngine {
    /// Starts an engine with the rules of `config` (TOML text; raises
    /// `InvalidArgument` naming the mistake) calling `callback`.
    #[new]
    fn py_new(config: &str, callback: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(
                "the alert callback must be a callable taking an Alert",
            ));
        }
        let config = AlertConfig::from_toml(config).map_err(config_error)?;
        let errors = Arc::new(AtomicU64::new(0));
        let sink = PySink {
            callback: Arc::new(callback.clone().unbind()),
            errors: errors.clone(),
        };
        let _rt = runtime().enter();
        let inner = CoreEngine::start(config, vec![Arc::new(sink)]).map_err(config_error)?;
        Ok(Self { inner, errors })
    }

    /// Counters since the engine started: a dict with "raised",
    /// "delivered", "dropped" (queue full), "sink_timeouts" and
    /// "callback_errors" (exceptions the callback raised).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("raised", s.raised)?;
        d.set_item("delivered", s.delivered)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("sink_timeouts", s.sink_timeouts)?;
        d.set_item("callback_errors", self.errors.load(Ordering::Relaxed))?;
        Ok(d)
    }

    /// Awaitable: resolves once every alert raised so far was handed to the
    /// callback (and it returned) or dropped.
    fn settled<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let e = self.inner.clone();
        crate::lifetime::awaitable(py, None, async move {
            e.settled().await;
            Ok::<(), strongroom::Error>(())
        })
    }

    /// Blocking form of `settled()` (GIL released while waiting).
    fn wait_settled(&self, py: Python<'_>) {
        let e = self.inner.clone();
        py.detach(|| runtime().block_on(async move { e.settled().await }));
    }

    fn __repr__(&self) -> String {
        let s = self.inner.stats();
        format!(
            "AlertEngine(raised={}, delivered={}, dropped={})",
            s.raised, s.delivered, s.dropped
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Alert>()?;
    m.add_class::<AlertEngine>()?;
    Ok(())
}
