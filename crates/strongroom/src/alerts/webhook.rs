//! [`WebhookSink`]: each alert POSTed as JSON to an HTTPS URL, over rustls,
//! optionally signed with HMAC-SHA256 (feature `tls`).
//!
//! The HTTP client is the library's own (`crate::https`, shared with the
//! OTLP audit sink), so the library links no HTTP stack; the webhook uses
//! it one HTTP/1.1 `POST` per connection (`Connection: close`), the status
//! line read back, at most [`MAX_RESPONSE_BYTES`] of the response looked
//! at.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::{default_webhook_retries, default_webhook_timeout_ms};
use super::{Alert, AlertError, AlertSink, WebhookConfig};
use crate::SecretBytes;
use crate::backoff::Backoff;
use crate::https::{Client, Failure, Mode, Url};

/// The header carrying the body's signature: `sha256=` and the lower-case
/// hex HMAC-SHA256 of the exact body bytes under the shared key.
pub const SIGNATURE_HEADER: &str = "X-Strongroom-Signature";

/// How much of a response is read (the status line must be within it).
pub const MAX_RESPONSE_BYTES: usize = crate::https::MAX_STATUS_BYTES;

/// Default bound on one alert's delivery, retries included (below the
/// engine's default sink timeout of 5 s, so the sink gives up, and counts
/// it, before the engine cuts it off).
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_millis(default_webhook_timeout_ms());

/// Default number of retries after a first failed attempt.
pub const DEFAULT_WEBHOOK_RETRIES: u32 = default_webhook_retries();

/// Sends each alert to an HTTPS endpoint: `POST` of the alert's JSON form
/// (the [`Alert`] fields, which hold names, paths, counts and request ids,
/// never secret values nor audit HMACs) with `Content-Type:
/// application/json`.
///
/// - **Trust** is the caller's: the server's certificate must chain to one
///   of the CA certificates given (PEM) and name the URL's host (a DNS name
///   or an IP address); there is no bundled or system root store. Only
///   `https://` URLs are accepted.
/// - **Authenticity**: with [`with_signing_key`](Self::with_signing_key)
///   each request carries [`SIGNATURE_HEADER`]`: sha256=<hex>`, the
///   HMAC-SHA256 of the body, so the receiver can check who sent it (the
///   key is kept as [`SecretBytes`] and never printed).
/// - **Bounded**: connecting, the TLS handshake, the request and the
///   response of every attempt, and the waits between attempts, all fit in
///   one timeout ([`DEFAULT_WEBHOOK_TIMEOUT`]). A connection failure, a
///   `5xx`, `408` or `429` is retried (at most
///   [`DEFAULT_WEBHOOK_RETRIES`] times, with backoff); a certificate the
///   trust anchors do not accept and other statuses are not.
/// - **Counted**: [`stats`](Self::stats) says how many alerts were
///   delivered (a `2xx`) and how many were given up; each given-up alert
///   is logged with `tracing` at `warn` (target `strongroom::alerts`) with
///   the reason, never the body.
///
/// The sink runs on the [`AlertEngine`](super::AlertEngine)'s delivery
/// task, so a slow or unreachable endpoint never delays an audited
/// operation; alerts beyond the engine's queue are dropped and counted
/// there.
pub struct WebhookSink {
    name: String,
    client: Client,
    signing_key: Option<SecretBytes>,
    timeout: Duration,
    retries: u32,
    backoff: Backoff,
    stats: Arc<Counters>,
}

/// Counters of a [`WebhookSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookStats {
    /// Alerts the endpoint answered with a `2xx`.
    pub delivered: u64,
    /// Alerts given up: every attempt failed, a status or certificate was
    /// not retried, or the timeout (the sink's or the engine's) ran out.
    pub failed: u64,
    /// Attempts made (connections opened or tried), retries included.
    pub attempts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    attempts: AtomicU64,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.name)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink POSTing to `url` (`https://host[:port][/path]`), trusting
    /// the CA certificates in `ca_pem` (one or more PEM `CERTIFICATE`
    /// blocks).
    pub fn new(url: &str, ca_pem: &[u8]) -> Result<Self, AlertError> {
        let config = crate::https::tls_client_config(ca_pem).map_err(invalid)?;
        Self::with_tls_config(url, config)
    }

    /// A sink POSTing to `url` with a rustls client configuration of your
    /// own (other trust anchors, a client certificate for mutual TLS). The
    /// server name checked is still the URL's host.
    pub fn with_tls_config(
        url: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, AlertError> {
        let url = Url::parse(url, "webhook", false).map_err(invalid)?;
        Ok(Self {
            name: format!("webhook:{}", url.display()),
            client: Client::new(url, Some(config), Mode::Close).map_err(invalid)?,
            signing_key: None,
            timeout: DEFAULT_WEBHOOK_TIMEOUT,
            retries: DEFAULT_WEBHOOK_RETRIES,
            backoff: default_backoff(),
            stats: Arc::new(Counters::default()),
        })
    }

    /// A sink as a [`WebhookConfig`] says (its `ca_file` is read now).
    pub fn from_config(config: &WebhookConfig) -> Result<Self, AlertError> {
        let ca_pem = std::fs::read(&config.ca_file).map_err(|e| {
            invalid(format!(
                "cannot read the webhook CA file {}: {e}",
                config.ca_file.display()
            ))
        })?;
        Ok(Self::new(&config.url, &ca_pem)?
            .with_timeout(Duration::from_millis(config.timeout_ms))
            .with_retries(config.retries, default_backoff()))
    }

    /// Signs every body with HMAC-SHA256 under `key` (see
    /// [`SIGNATURE_HEADER`]). The key must have at least 16 bytes.
    pub fn with_signing_key(mut self, key: SecretBytes) -> Result<Self, AlertError> {
        if key.expose_secret().len() < 16 {
            return Err(invalid(
                "the webhook signing key must have at least 16 bytes".to_owned(),
            ));
        }
        self.signing_key = Some(key);
        Ok(self)
    }

    /// Bounds each alert's delivery, retries and waits included (default
    /// [`DEFAULT_WEBHOOK_TIMEOUT`]). Keep it below the engine's
    /// [`sink_timeout_ms`](super::Delivery::sink_timeout_ms).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a failed first attempt (default
    /// [`DEFAULT_WEBHOOK_RETRIES`]), waiting as `backoff` says between
    /// them (default 100 ms doubling to 1 s, jittered).
    #[must_use]
    pub fn with_retries(mut self, retries: u32, backoff: Backoff) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// The counters since the sink was made.
    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            delivered: self.stats.delivered.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            attempts: self.stats.attempts.load(Ordering::Relaxed),
        }
    }
}

/// Counts the alert as failed unless [`disarm`](Self::disarm)ed: a
/// delivery the engine's timeout cancels is counted too.
struct FailOnDrop<'a>(Option<&'a Counters>);

impl FailOnDrop<'_> {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for FailOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(counters) = self.0 {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[async_trait::async_trait]
impl AlertSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, alert: &Alert) {
        let mut pending = FailOnDrop(Some(&self.stats));
        let outcome = match serde_json::to_vec(alert) {
            Ok(body) => {
                let signature = self.signing_key.as_ref().map(|key| sign(key, &body));
                let header = signature.map(|s| format!("sha256={s}"));
                let headers: Vec<(&str, &[u8])> = header
                    .iter()
                    .map(|h| (SIGNATURE_HEADER, h.as_bytes()))
                    .collect();
                let send = self.client.send(
                    "application/json",
                    &headers,
                    &body,
                    self.retries,
                    &self.backoff,
                    &self.stats.attempts,
                    |response| match response.status {
                        200..=299 => Ok(()),
                        status => Err(Failure::status(status)),
                    },
                );
                match tokio::time::timeout(self.timeout, send).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("timed out after {:?}", self.timeout)),
                }
            }
            Err(e) => Err(format!("cannot encode the alert: {e}")),
        };
        match outcome {
            Ok(()) => {
                pending.disarm();
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => tracing::warn!(
                target: "strongroom::alerts",
                sink = %self.name,
                kind = alert.kind.as_str(),
                seq = alert.seq,
                "alert webhook gave up: {reason}"
            ),
        }
    }
}

/// 100 ms doubling to 1 s, jittered by up to half.
fn default_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).with_jitter(0.5)
}

/// The lower-case hex HMAC-SHA256 of `body` under `key`.
fn sign(key: &SecretBytes, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose_secret());
    hex::encode(ring::hmac::sign(&key, body).as_ref())
}

fn invalid(reason: String) -> AlertError {
    AlertError::InvalidRule {
        rule: "webhook",
        reason,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_signing_key_is_never_printed_and_must_be_long_enough() {
        assert!(WebhookSink::new("https://h/", b"not pem").is_err());
        let empty = || {
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            )
        };
        let sink = WebhookSink::with_tls_config("https://h/", empty()).unwrap();
        assert!(
            sink.with_signing_key(SecretBytes::new(vec![1; 15]))
                .is_err()
        );
        let sink = WebhookSink::with_tls_config("https://h/", empty())
            .unwrap()
            .with_signing_key(SecretBytes::new(b"0123456789abcdef-key".to_vec()))
            .unwrap();
        let debug = format!("{sink:?}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        // RFC 4231 test case 2.
        let key = SecretBytes::new(b"Jefe".to_vec());
        assert_eq!(
            sign(&key, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
