//! [`WebhookSink`]: each alert POSTed as JSON to an HTTPS URL, over rustls,
//! optionally signed with HMAC-SHA256 (feature `tls`).
//!
//! The HTTP client is the minimum a webhook needs, written here so the
//! library links no HTTP stack: one HTTP/1.1 `POST` per connection
//! (`Connection: close`), the status line read back, at most
//! [`MAX_RESPONSE_BYTES`] of the response looked at.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::config::{default_webhook_retries, default_webhook_timeout_ms};
use super::{Alert, AlertError, AlertSink, WebhookConfig};
use crate::SecretBytes;
use crate::backoff::Backoff;

/// The header carrying the body's signature: `sha256=` and the lower-case
/// hex HMAC-SHA256 of the exact body bytes under the shared key.
pub const SIGNATURE_HEADER: &str = "X-Strongroom-Signature";

/// How much of a response is read (the status line must be within it).
pub const MAX_RESPONSE_BYTES: usize = 4096;

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
    url: WebhookUrl,
    connector: tokio_rustls::TlsConnector,
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
        let config = tls_client_config(ca_pem).map_err(invalid)?;
        Self::with_tls_config(url, config)
    }

    /// A sink POSTing to `url` with a rustls client configuration of your
    /// own (other trust anchors, a client certificate for mutual TLS). The
    /// server name checked is still the URL's host.
    pub fn with_tls_config(
        url: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, AlertError> {
        let url = WebhookUrl::parse(url).map_err(invalid)?;
        Ok(Self {
            name: format!("webhook:https://{}{}", url.authority, url.path),
            url,
            connector: tokio_rustls::TlsConnector::from(config),
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

    /// Tries until a `2xx`, a failure not worth retrying, or no retries
    /// left.
    async fn send(&self, body: &[u8], signature: Option<&str>) -> Result<(), String> {
        let mut delays = self.backoff.retries();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let failure = match self.post(body, signature).await {
                Ok(status) if (200..300).contains(&status) => return Ok(()),
                Ok(status) => Failure {
                    reason: format!("the endpoint answered {status}"),
                    retry: status >= 500 || status == 408 || status == 429,
                },
                Err(failure) => failure,
            };
            if !failure.retry || attempt > self.retries {
                return Err(format!(
                    "{} (attempt {attempt} of {})",
                    failure.reason,
                    self.retries + 1
                ));
            }
            tokio::time::sleep(delays.next_delay()).await;
        }
    }

    /// One connection, one request; the response's status code.
    async fn post(&self, body: &[u8], signature: Option<&str>) -> Result<u16, Failure> {
        let tcp = tokio::net::TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|e| Failure::io("cannot connect", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| Failure::io("cannot connect", &e))?;
        let mut tls = self
            .connector
            .connect(self.url.server_name.clone(), tcp)
            .await
            .map_err(|e| Failure::io("TLS handshake failed", &e))?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: strongroom/{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.url.path,
            self.url.authority,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        if let Some(signature) = signature {
            head.push_str(&format!("{SIGNATURE_HEADER}: sha256={signature}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        tls.write_all(&request)
            .await
            .map_err(|e| Failure::io("cannot send the request", &e))?;
        tls.flush()
            .await
            .map_err(|e| Failure::io("cannot send the request", &e))?;
        read_status(&mut tls).await
    }
}

/// Reads until the status line is complete (at most
/// [`MAX_RESPONSE_BYTES`]) and returns its code.
async fn read_status(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<u16, Failure> {
    let mut buf = vec![0; MAX_RESPONSE_BYTES];
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&buf[..end]).ok_or_else(|| Failure {
                reason: "the endpoint's answer is not an HTTP/1.x status line".to_owned(),
                retry: true,
            });
        }
        if len == buf.len() {
            return Err(Failure {
                reason: format!("no status line in the first {MAX_RESPONSE_BYTES} bytes"),
                retry: true,
            });
        }
        let n = match stream.read(&mut buf[len..]).await {
            Ok(n) => n,
            Err(e) => return Err(Failure::io("cannot read the response", &e)),
        };
        if n == 0 {
            return Err(Failure {
                reason: "the endpoint closed the connection without an answer".to_owned(),
                retry: true,
            });
        }
        len += n;
    }
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// Why one attempt failed, and whether another could do better.
struct Failure {
    reason: String,
    retry: bool,
}

impl Failure {
    /// A certificate or protocol error from rustls is not retried (the
    /// next handshake would fail the same way); other I/O errors are.
    fn io(what: &str, e: &std::io::Error) -> Self {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls {
            Some(tls) => Self {
                reason: format!("{what}: {tls}"),
                retry: false,
            },
            None => Self {
                reason: format!("{what}: {e}"),
                retry: true,
            },
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
                match tokio::time::timeout(self.timeout, self.send(&body, signature.as_deref()))
                    .await
                {
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

/// The parts of an `https://` URL the client needs.
#[derive(Debug, Clone)]
struct WebhookUrl {
    /// What to connect to (an IPv6 address without brackets).
    host: String,
    port: u16,
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// The path and query (`/` when none).
    path: String,
    server_name: ServerName<'static>,
}

impl WebhookUrl {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("https://").ok_or_else(|| {
            "the webhook URL must start with https:// (plain HTTP is not supported)".to_owned()
        })?;
        if let Some(c) = url
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control() || *c == '#')
        {
            return Err(format!("the webhook URL must not contain {c:?}"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err("the webhook URL must not hold a user name or password".to_owned());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, tail) = v6
                .split_once(']')
                .ok_or_else(|| "the webhook URL's IPv6 host lacks its ']'".to_owned())?;
            match tail {
                "" => (host, None),
                _ => (
                    host,
                    Some(tail.strip_prefix(':').ok_or_else(|| {
                        "the webhook URL has text after its IPv6 host".to_owned()
                    })?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("the webhook URL has no host".to_owned());
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("the webhook URL's port {p:?} is not a port number"))?,
        };
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| {
            format!("the webhook URL's host {host:?} is not a DNS name or IP address")
        })?;
        Ok(Self {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
            server_name,
        })
    }
}

/// A rustls client configuration (ring provider, TLS 1.2 and 1.3) trusting
/// exactly the CA certificates in `ca_pem`. Shared with the audit
/// socket sink.
pub(crate) fn tls_client_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| format!("the CA certificates are not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a CA certificate is not usable as a trust anchor: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no CA certificate (PEM CERTIFICATE block) was given".to_owned());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("cannot set up TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_parse_and_plain_http_is_refused() {
        let u = WebhookUrl::parse("https://alerts.example.com/hook?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("alerts.example.com", 443));
        assert_eq!(u.authority, "alerts.example.com");
        assert_eq!(u.path, "/hook?x=1");
        let u = WebhookUrl::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8443, "/")
        );
        let u = WebhookUrl::parse("https://[::1]:9000/a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.authority, "[::1]:9000");
        let u = WebhookUrl::parse("https://h?q").unwrap();
        assert_eq!(u.path, "/?q");
        for bad in [
            "http://127.0.0.1/hook",
            "https://",
            "https://user:pw@host/",
            "https://host:0/",
            "https://host:99999/",
            "https://host/a b",
            "https://host/a\r\nX: y",
            "https://host/#frag",
            "https://[::1/",
            "https://bad_host!/",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 500"), Some(500));
        assert_eq!(parse_status_line(b"HTTP/2 200 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH"), None);
    }

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
