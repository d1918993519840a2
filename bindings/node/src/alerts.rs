//! Alerts on unusual access ([`strongroom::alerts`]): a
//! [`NativeAlertEngine`] made from a TOML rules text and a JavaScript
//! function, attached to the audit logs the binding opens
//! (`store.openAuditLog({ ..., alerts: engine })`), so every principal
//! handle writing to such a log feeds it.
//!
//! The function is called through a weak `ThreadsafeFunction` from the
//! engine's delivery task, never from the audited call: the operation
//! neither waits for it nor sees it fail. `index.js` wraps the user's
//! function in an async one, so a throw or a rejected Promise both come
//! back here as a failed call and are counted (`callbackErrors`); one call
//! is bounded by the engine's sink timeout (`sinkTimeouts`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use napi::Status;
use napi::bindgen_prelude::{Env, Promise, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use strongroom::alerts::{Alert, AlertConfig, AlertEngine as CoreEngine, AlertError, AlertSink};

use crate::{invalid, ms};

fn config_error(e: AlertError) -> napi::Error {
    invalid(e.to_string())
}

/// One alert (plain data: names, paths, counts; never a value).
#[napi(object)]
pub struct NativeAlert {
    /// The rule that fired: "new_path", "read_rate", "bulk_access",
    /// "off_hours", "repeated_denials", "sensitive_read" or "stale_version".
    pub kind: String,
    /// "info", "warning" or "critical".
    pub severity: String,
    /// Who acted.
    pub principal: String,
    /// The path concerned (`null` for bulk access).
    pub path: Option<String>,
    /// The request id of the audit record that raised it.
    pub request_id: String,
    /// The sequence number of that record.
    pub seq: f64,
    /// One line for people.
    pub summary: String,
    /// The record's time (ms since the Unix epoch, the store's clock).
    pub at_ms: f64,
}

impl From<&Alert> for NativeAlert {
    fn from(a: &Alert) -> Self {
        Self {
            kind: a.kind.as_str().to_owned(),
            severity: a.severity.as_str().to_owned(),
            principal: a.principal.clone(),
            path: a.path.clone(),
            request_id: a.request_id.clone(),
            seq: a.seq as f64,
            summary: a.summary.clone(),
            at_ms: ms(a.at),
        }
    }
}

/// The JavaScript alert function: called with the alert, it returns a
/// Promise (`index.js` makes it async). Weak: it does not keep the process
/// alive.
type JsAlertFn = ThreadsafeFunction<NativeAlert, Promise<()>, NativeAlert, Status, false, true>;

/// The sink handing each alert to the JavaScript function.
struct JsSink {
    callback: JsAlertFn,
    errors: Arc<AtomicU64>,
}

impl std::fmt::Debug for JsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsSink").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl AlertSink for JsSink {
    fn name(&self) -> &str {
        "node"
    }

    async fn deliver(&self, alert: &Alert) {
        // Queued to the JavaScript thread without blocking; a throw there
        // comes back as an Err (call_async_catch), never as a fatal error.
        let result = match self.callback.call_async_catch(alert.into()).await {
            Ok(promise) => promise.await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counters since the engine started.
#[napi(object)]
pub struct NativeAlertStats {
    /// Alerts the rules raised.
    pub raised: f64,
    /// Alerts handed to the function (whether or not it failed).
    pub delivered: f64,
    /// Alerts dropped because the queue was full.
    pub dropped: f64,
    /// Calls given up after the sink timeout.
    pub sink_timeouts: f64,
    /// Calls whose function threw or whose Promise rejected.
    pub callback_errors: f64,
}

/// Live alerting on the audit stream: the rules of a TOML configuration
/// run on every record of the audit logs the engine is attached to; each
/// alert is passed to a JavaScript function.
#[napi]
pub struct NativeAlertEngine {
    pub(crate) inner: CoreEngine,
    errors: Arc<AtomicU64>,
}

#[napi]
impl NativeAlertEngine {
    /// Starts an engine with the rules of `config` (TOML; InvalidArgument
    /// naming the mistake) calling `callback` for each alert.
    #[napi(
        constructor,
        ts_args_type = "config: string, callback: (alert: NativeAlert) => Promise<void>"
    )]
    pub fn new(config: String, callback: JsAlertFn) -> napi::Result<Self> {
        let config = AlertConfig::from_toml(&config).map_err(config_error)?;
        let errors = Arc::new(AtomicU64::new(0));
        let sink = JsSink {
            callback,
            errors: errors.clone(),
        };
        let inner = napi::bindgen_prelude::within_runtime_if_available(|| {
            CoreEngine::start(config, vec![Arc::new(sink)])
        })
        .map_err(config_error)?;
        Ok(Self { inner, errors })
    }

    /// The counters.
    #[napi]
    pub fn stats(&self) -> NativeAlertStats {
        let s = self.inner.stats();
        NativeAlertStats {
            raised: s.raised as f64,
            delivered: s.delivered as f64,
            dropped: s.dropped as f64,
            sink_timeouts: s.sink_timeouts as f64,
            callback_errors: self.errors.load(Ordering::Relaxed) as f64,
        }
    }

    /// Resolves once every alert raised so far was handed to the function
    /// (and its Promise settled), dropped or timed out.
    #[napi]
    pub fn settled<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let e = self.inner.clone();
        env.spawn_future(async move {
            e.settled().await;
            Ok(())
        })
    }
}
