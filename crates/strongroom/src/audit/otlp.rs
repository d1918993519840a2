//! [`OtlpSink`]: each audit record sent to an OpenTelemetry collector as an
//! OTLP/HTTP logs request in JSON (feature `tls`). The encoding, what
//! counts as accepted, why it is written by hand and the limitations are
//! in [`OtlpSink`]'s docs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::{Value, json};

use super::{AuditError, AuditRecord, AuditSink, Outcome};
use crate::SecretBytes;
use crate::backoff::Backoff;
use crate::https::{Client, Failure, Mode, Response, Url};

/// Default bound on one record's delivery, retries and waits included:
/// below the log's [`DEFAULT_SINK_TIMEOUT`](super::DEFAULT_SINK_TIMEOUT),
/// so the sink gives up (with its reason) before the log cuts it off.
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(4);

/// Default number of retries after a failed first attempt.
pub const DEFAULT_OTLP_RETRIES: u32 = 2;

/// The instrumentation scope name of the log records.
pub const OTLP_SCOPE_NAME: &str = "strongroom.audit";

/// Sends every audit record to an OpenTelemetry collector's OTLP/HTTP logs
/// endpoint as OTLP JSON (see [Encoding](#encoding)),
/// in addition to (not instead of) the log's other sinks.
///
/// - **Trust**: with [`new`](Self::new) the collector's certificate must
///   chain to one of the CA certificates given (PEM) and name the URL's
///   host; [`with_tls_config`](Self::with_tls_config) takes a rustls client
///   configuration of your own (a client certificate for mutual TLS).
///   Plain `http://` is accepted only by [`plain_loopback`](Self::plain_loopback)
///   and only for `127.0.0.1`, `::1` or `localhost` (a collector agent on
///   the same host).
/// - **Headers**: [`header`](Self::header) adds a header to every request
///   (an API key for a hosted collector); its value is kept as
///   [`SecretBytes`], never printed by `Debug` nor put in an error.
/// - **Connections**: one connection, kept alive between records when the
///   collector allows it; a failed or timed-out request drops it and the
///   next record connects again.
/// - **Required**: by default a record the collector refuses is still
///   appended if another sink takes it (and the failure is logged); mark
///   the sink [`required`](Self::required) to make the operation fail
///   closed instead (see [`AuditSink::required`]).
///
/// # Encoding
///
/// Each record is one `POST` to the logs endpoint (`/v1/logs`) with
/// `Content-Type: application/json` and an `ExportLogsServiceRequest` in
/// the OTLP JSON encoding, as the OTLP specification's "JSON Protobuf
/// Encoding" section says (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>,
/// `docs/specification.md` in `open-telemetry/opentelemetry-proto`): the
/// proto3 JSON mapping with lowerCamelCase field names, enum fields as
/// integers, and 64-bit integers (`timeUnixNano`, `observedTimeUnixNano`,
/// `intValue`) as decimal strings (clarified in
/// `open-telemetry/opentelemetry-specification` pull request 1637):
///
/// ```text
/// {"resourceLogs":[{
///   "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"strongroom"}}]},
///   "scopeLogs":[{
///     "scope":{"name":"strongroom.audit","version":"<crate version>"},
///     "logRecords":[{
///       "timeUnixNano":"1795320399123000000",      -- the record's time
///       "observedTimeUnixNano":"1795320399125000000", -- when the sink sent it
///       "severityNumber":9, "severityText":"INFO",   -- 13 / WARN when denied or an error
///       "body":{"stringValue":"<the record's JSON line>"},
///       "attributes":[
///         {"key":"strongroom.audit.seq","value":{"intValue":"7"}},
///         {"key":"strongroom.audit.principal","value":{"stringValue":"payment-svc"}},
///         {"key":"strongroom.audit.operation","value":{"stringValue":"read"}},
///         {"key":"strongroom.audit.outcome","value":{"stringValue":"allowed"}},
///         {"key":"strongroom.audit.request_id","value":{"stringValue":"9f1c..."}},
///         {"key":"strongroom.audit.path","value":{"stringValue":"prod/payment-svc/postgres"}}
///       ]}]}]}]}
/// ```
///
/// The body is the record's JSON line byte for byte as
/// [`JsonlFileSink`](super::JsonlFileSink) writes it, chain MACs included:
/// a collector that writes the bodies out as lines can check them with
/// [`verify_jsonl_file`](super::verify_jsonl_file). The attributes repeat
/// fields of the record for searching; like the record they never hold a
/// secret value (records hold only HMACs of values).
///
/// # Acceptance
///
/// A `2xx` answer is acceptance, unless its body is an
/// `ExportLogsServiceResponse` whose `partialSuccess.rejectedLogRecords` is
/// above zero: the record was refused. A connection failure, a `5xx`, `408`
/// or `429` is retried with backoff; a certificate the trust anchors do not
/// accept and other statuses are not. Retries and waits fit in the sink's
/// own timeout ([`DEFAULT_OTLP_TIMEOUT`]), which should stay below the
/// log's sink timeout ([`AuditLog::with_sink_timeout`](super::AuditLog::with_sink_timeout),
/// default 5 s); the log cuts the sink off at its timeout in any case.
///
/// # Why by hand
///
/// The `opentelemetry` SDK and `opentelemetry-otlp` crates would pull an
/// HTTP or gRPC stack and protobuf code into every application that links
/// the library, and are built around a logger provider the application
/// installs and log processors that decide when a record leaves (batching
/// by default). The audit log needs each record's delivery to succeed or
/// fail within the append (so a [`required`](Self::required) sink can fail
/// it closed) and the body byte-exact for the chain MACs. The request is
/// small and fixed, so it is written here with `serde_json` over the
/// library's own HTTP/1.1 client (shared with the alert webhook). The
/// [`metrics`](crate::metrics) module docs explain a similar choice: an
/// embedded library should not pick the exporter, start threads or pull an
/// HTTP stack into every application.
///
/// # Limitations
///
/// - OTLP/HTTP JSON only: OTLP/protobuf (`application/x-protobuf`) and
///   OTLP/gRPC are not supported.
/// - No batching: one request (one log record) per audit record, sent
///   while the append waits, on one kept-alive connection when the
///   collector allows it, so each append costs at least one round trip to
///   the collector.
/// - No compression and no HTTP/2.
/// - Trust anchors are the caller's; there is no system or bundled root
///   store.
///
/// # Example
///
/// ```no_run
/// # async fn demo(audit_key: strongroom::SecretBytes) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use strongroom::SecretBytes;
/// use strongroom::audit::{AuditLog, FsyncPolicy, JsonlFileSink, OtlpSink};
/// use strongroom::clock::SystemClock;
///
/// let ca_pem = std::fs::read("/etc/strongroom/collector-ca.pem")?;
/// let otlp = OtlpSink::new("https://collector.internal:4318/v1/logs", &ca_pem)?
///     .service_name("payments")
///     .header("X-Api-Key", SecretBytes::from("collector token"))?
///     .required(true);
/// let file = JsonlFileSink::open("/var/log/strongroom/audit.jsonl", FsyncPolicy::EveryRecord)?;
/// let log = AuditLog::new(audit_key, vec![Arc::new(file), Arc::new(otlp)], Arc::new(SystemClock))?;
/// # let _ = log; Ok(()) }
/// ```
pub struct OtlpSink {
    name: String,
    client: Client,
    service_name: String,
    headers: Vec<(String, SecretBytes)>,
    timeout: Duration,
    retries: u32,
    backoff: Backoff,
    required: bool,
    attempts: AtomicU64,
}

impl fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), "[REDACTED]"))
            .collect();
        f.debug_struct("OtlpSink")
            .field("url", &self.client.url().display())
            .field("service_name", &self.service_name)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl OtlpSink {
    /// A sink POSTing to `url` (`https://host[:port]/v1/logs`), trusting
    /// the CA certificates in `ca_pem` (one or more PEM `CERTIFICATE`
    /// blocks).
    pub fn new(url: &str, ca_pem: &[u8]) -> Result<Self, AuditError> {
        let config = crate::https::tls_client_config(ca_pem).map_err(|m| sink_error(url, m))?;
        Self::with_tls_config(url, config)
    }

    /// A sink POSTing to an `https://` `url` with a rustls client
    /// configuration of your own (other trust anchors, a client
    /// certificate for mutual TLS). The server name checked is the URL's
    /// host.
    pub fn with_tls_config(
        url: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, AuditError> {
        let parsed = Url::parse(url, "OTLP endpoint", false).map_err(|m| sink_error(url, m))?;
        Self::build(parsed, Some(config))
    }

    /// A sink POSTing over plain HTTP to a collector on this host: `url`
    /// must be `http://127.0.0.1[:port]/...`, `http://[::1]...` or
    /// `http://localhost...`; any other host is refused here. Records
    /// cross the loopback interface unencrypted, readable by anyone who
    /// can capture it on this host.
    pub fn plain_loopback(url: &str) -> Result<Self, AuditError> {
        if !url.starts_with("http://") {
            return Err(sink_error(
                url,
                "plain_loopback takes an http:// URL; use OtlpSink::new for https://".to_owned(),
            ));
        }
        let parsed = Url::parse(url, "OTLP endpoint", true).map_err(|m| sink_error(url, m))?;
        Self::build(parsed, None)
    }

    fn build(url: Url, config: Option<Arc<rustls::ClientConfig>>) -> Result<Self, AuditError> {
        let name = format!("otlp:{}", url.display());
        let client =
            Client::new(url, config, Mode::KeepAlive).map_err(|message| AuditError::Sink {
                sink: name.clone(),
                message,
            })?;
        Ok(Self {
            name,
            client,
            service_name: "strongroom".to_owned(),
            headers: Vec::new(),
            timeout: DEFAULT_OTLP_TIMEOUT,
            retries: DEFAULT_OTLP_RETRIES,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
                .with_jitter(0.5),
            required: false,
            attempts: AtomicU64::new(0),
        })
    }

    /// The `service.name` resource attribute (default `strongroom`).
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Adds a header to every request, e.g. an API key for a hosted
    /// collector. `name` must be an HTTP token other than the headers the
    /// client writes itself (`Host`, `Content-Type`, `Content-Length`,
    /// `Connection`, `Transfer-Encoding`, `User-Agent`); `value` must be
    /// visible ASCII, spaces or tabs. The value is kept as a secret.
    pub fn header(mut self, name: &str, value: SecretBytes) -> Result<Self, AuditError> {
        if !crate::https::valid_header_name(name) {
            return Err(self.error(format!("{name:?} cannot be set as a header")));
        }
        if !crate::https::valid_header_value(value.expose_secret()) {
            return Err(self.error(format!(
                "the value of header {name} holds characters a header cannot carry"
            )));
        }
        self.headers.push((name.to_owned(), value));
        Ok(self)
    }

    /// Bounds each record's delivery, retries and waits included (default
    /// [`DEFAULT_OTLP_TIMEOUT`]). Keep it below the log's sink timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a failed first attempt (default
    /// [`DEFAULT_OTLP_RETRIES`]), waiting as `backoff` says between them
    /// (default 100 ms doubling to 1 s, jittered).
    #[must_use]
    pub fn with_retries(mut self, retries: u32, backoff: Backoff) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Whether an operation must fail when this sink refuses its record
    /// (default `false`; see [`AuditSink::required`]).
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    fn error(&self, message: String) -> AuditError {
        AuditError::Sink {
            sink: self.name.clone(),
            message,
        }
    }

    /// The `ExportLogsServiceRequest` carrying `record`, whose JSON line
    /// is `line`.
    fn encode(&self, record: &AuditRecord, line: &str) -> Result<Vec<u8>, AuditError> {
        let event = &record.event;
        let (severity_number, severity_text, outcome) = match &event.outcome {
            Outcome::Allowed => (9, "INFO", "allowed"),
            Outcome::Denied => (13, "WARN", "denied"),
            Outcome::Error { .. } => (13, "WARN", "error"),
        };
        let string = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
        let mut attributes = vec![
            json!({"key": "strongroom.audit.seq", "value": {"intValue": record.seq.to_string()}}),
            string("strongroom.audit.principal", &event.principal),
            string("strongroom.audit.operation", event.operation.as_str()),
            string("strongroom.audit.outcome", outcome),
            string("strongroom.audit.request_id", &event.request_id),
        ];
        if let Some(path) = &event.path {
            attributes.push(string("strongroom.audit.path", path));
        }
        let observed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let time = u128::from(record.time.as_millis()) * 1_000_000;
        let request = json!({
            "resourceLogs": [{
                "resource": {
                    "attributes": [string("service.name", &self.service_name)]
                },
                "scopeLogs": [{
                    "scope": {"name": OTLP_SCOPE_NAME, "version": env!("CARGO_PKG_VERSION")},
                    "logRecords": [{
                        "timeUnixNano": time.to_string(),
                        "observedTimeUnixNano": observed.to_string(),
                        "severityNumber": severity_number,
                        "severityText": severity_text,
                        "body": {"stringValue": line},
                        "attributes": attributes,
                    }]
                }]
            }]
        });
        serde_json::to_vec(&request)
            .map_err(|e| self.error(format!("cannot encode the OTLP request: {e}")))
    }
}

/// A `2xx` is accepted unless its body reports rejected log records.
fn check(response: &Response) -> Result<(), Failure> {
    if !(200..300).contains(&response.status) {
        return Err(Failure::status(response.status));
    }
    let Ok(answer) = serde_json::from_slice::<Value>(&response.body) else {
        // An empty or non-JSON body: nothing says a record was rejected.
        return Ok(());
    };
    let partial = &answer["partialSuccess"];
    let rejected = match &partial["rejectedLogRecords"] {
        Value::String(s) => s.parse::<i64>().unwrap_or(1),
        Value::Number(n) => n.as_i64().unwrap_or(1),
        _ => 0,
    };
    if rejected > 0 {
        let message: String = partial["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        return Err(Failure {
            reason: format!("the collector rejected {rejected} log record(s): {message:?}"),
            retry: false,
        });
    }
    Ok(())
}

fn sink_error(url: &str, message: String) -> AuditError {
    // The URL is only named when it parsed: it could hold anything.
    let name = Url::parse(url, "OTLP endpoint", true)
        .map_or_else(|_| "otlp".to_owned(), |u| format!("otlp:{}", u.display()));
    AuditError::Sink {
        sink: name,
        message,
    }
}

#[async_trait::async_trait]
impl AuditSink for OtlpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn required(&self) -> bool {
        self.required
    }

    async fn write(&self, record: &AuditRecord, line: &str) -> Result<(), AuditError> {
        let body = self.encode(record, line)?;
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.expose_secret()))
            .collect();
        let send = self.client.send(
            "application/json",
            &headers,
            &body,
            self.retries,
            &self.backoff,
            &self.attempts,
            check,
        );
        match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(self.error(reason)),
            Err(_) => Err(self.error(format!("timed out after {:?}", self.timeout))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn partial_success_with_rejections_is_a_refusal() {
        assert!(check(&response(200, "")).is_ok());
        assert!(check(&response(200, "{}")).is_ok());
        assert!(check(&response(200, r#"{"partialSuccess":{}}"#)).is_ok());
        assert!(
            check(&response(
                200,
                r#"{"partialSuccess":{"rejectedLogRecords":"0"}}"#
            ))
            .is_ok()
        );
        for body in [
            r#"{"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"too old"}}"#,
            r#"{"partialSuccess":{"rejectedLogRecords":1}}"#,
        ] {
            let f = check(&response(200, body)).unwrap_err();
            assert!(!f.retry, "{body}");
            assert!(f.reason.contains("rejected 1"), "{}", f.reason);
        }
        assert!(check(&response(503, "")).unwrap_err().retry);
        assert!(check(&response(429, "")).unwrap_err().retry);
        assert!(check(&response(408, "")).unwrap_err().retry);
        assert!(check(&response(502, "")).unwrap_err().retry);
        assert!(!check(&response(400, "")).unwrap_err().retry);
    }

    #[test]
    fn header_values_are_never_printed() {
        let sink = OtlpSink::plain_loopback("http://127.0.0.1:4318/v1/logs")
            .unwrap()
            .header("X-Api-Key", SecretBytes::from("very secret token"))
            .unwrap();
        let debug = format!("{sink:?}");
        assert!(
            debug.contains("X-Api-Key") && debug.contains("[REDACTED]"),
            "{debug}"
        );
        assert!(!debug.contains("very secret"), "{debug}");
        let err = OtlpSink::plain_loopback("http://127.0.0.1:4318/v1/logs")
            .unwrap()
            .header("X-Api-Key", SecretBytes::from("bad\r\nvalue secret"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
        assert!(
            OtlpSink::plain_loopback("http://127.0.0.1/")
                .unwrap()
                .header("Content-Length", SecretBytes::from("1"))
                .is_err()
        );
    }
}
