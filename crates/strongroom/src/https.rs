//! The one HTTP client in the library (feature `tls`): HTTP/1.1 `POST`s
//! over rustls, written here so the library links no HTTP stack. Used by
//! the alert webhook ([`crate::alerts::WebhookSink`]) and the OTLP audit
//! sink ([`crate::audit::OtlpSink`]).
//!
//! - URLs: `https://host[:port][/path]`; `http://` only for a loopback
//!   host (`127.0.0.1`, `::1`, `localhost`) and only when the caller opts
//!   in ([`Url::parse`]'s `allow_loopback_http`).
//! - Two ways to use a connection ([`Mode`]): one request per connection
//!   (`Connection: close`, only the status line read), or keep-alive: the
//!   whole response is read (head up to [`MAX_HEAD_BYTES`], body up to
//!   [`MAX_BODY_BYTES`], `Content-Length` or chunked) and the connection is
//!   kept for the next request when the response is framed by
//!   `Content-Length` and the server did not say `Connection: close`. A
//!   failed or cancelled request drops the connection.
//! - [`Failure`] says whether another attempt could do better; the retry
//!   loop ([`Client::send`]) waits as a [`Backoff`] says between attempts.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use crate::backoff::Backoff;

/// How much of a response head (status line and headers) is read in
/// keep-alive mode.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest response body read in keep-alive mode.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much is read for the status line in [`Mode::Close`].
pub(crate) const MAX_STATUS_BYTES: usize = 4096;

/// The parts of a URL the client needs.
#[derive(Debug, Clone)]
pub(crate) struct Url {
    /// `false` for a loopback `http://` URL.
    pub(crate) tls: bool,
    /// What to connect to (an IPv6 address without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host[:port]` as written, for the `Host` header.
    pub(crate) authority: String,
    /// The path and query (`/` when none).
    pub(crate) path: String,
    server_name: ServerName<'static>,
}

impl Url {
    /// Parses `url`; `what` names it in errors ("webhook"). Plain
    /// `http://` is accepted only when `allow_loopback_http` is set and the
    /// host is `127.0.0.1`, `::1` or `localhost`.
    pub(crate) fn parse(url: &str, what: &str, allow_loopback_http: bool) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            if !allow_loopback_http {
                return Err(format!(
                    "the {what} URL must start with https:// (plain HTTP is not supported)"
                ));
            }
            (false, rest)
        } else {
            return Err(format!("the {what} URL must start with https://"));
        };
        if let Some(c) = url
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control() || *c == '#')
        {
            return Err(format!("the {what} URL must not contain {c:?}"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(format!(
                "the {what} URL must not hold a user name or password"
            ));
        }
        let (host, port) =
            if let Some(v6) = authority.strip_prefix('[') {
                let (host, tail) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("the {what} URL's IPv6 host lacks its ']'"))?;
                match tail {
                    "" => (host, None),
                    _ => (
                        host,
                        Some(tail.strip_prefix(':').ok_or_else(|| {
                            format!("the {what} URL has text after its IPv6 host")
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
            return Err(format!("the {what} URL has no host"));
        }
        if !tls && !matches!(host, "127.0.0.1" | "::1" | "localhost") {
            return Err(format!(
                "the {what} URL may use plain http:// only for a loopback host \
                 (127.0.0.1, ::1, localhost), not {host:?}"
            ));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("the {what} URL's port {p:?} is not a port number"))?,
        };
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| {
            format!("the {what} URL's host {host:?} is not a DNS name or IP address")
        })?;
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
            server_name,
        })
    }

    /// `https://host[:port]/path` (or `http://`), for names and logs.
    pub(crate) fn display(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }
}

/// A rustls client configuration (ring provider, TLS 1.2 and 1.3) trusting
/// exactly the CA certificates in `ca_pem`.
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

/// Whether `name` is an HTTP header name (an RFC 9110 token) the client
/// will send as given, and not one it writes itself.
pub(crate) fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && ![
            "host",
            "content-length",
            "content-type",
            "connection",
            "transfer-encoding",
            "user-agent",
        ]
        .iter()
        .any(|own| own.eq_ignore_ascii_case(name))
}

/// Whether `value` can be a header value: visible ASCII, spaces and tabs,
/// no CR, LF or NUL.
pub(crate) fn valid_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// How the client uses its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One request per connection, `Connection: close`; only the status
    /// line is read (within [`MAX_STATUS_BYTES`]).
    Close,
    /// Persistent connections: the whole response is read and the
    /// connection reused when the server allows it.
    KeepAlive,
}

/// A response: its status and (in keep-alive mode) its body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Why one attempt failed, and whether another could do better.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) reason: String,
    pub(crate) retry: bool,
}

impl Failure {
    /// A certificate or protocol error from rustls is not retried (the
    /// next handshake would fail the same way); other I/O errors are.
    pub(crate) fn io(what: &str, e: &std::io::Error) -> Self {
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

    /// A status that is not a success: `5xx`, `408` and `429` are retried,
    /// others are not.
    pub(crate) fn status(status: u16) -> Self {
        Self {
            reason: format!("the endpoint answered {status}"),
            retry: status >= 500 || status == 408 || status == 429,
        }
    }

    fn protocol(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retry: true,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// An open connection and the bytes read past the last response.
struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

/// An HTTP/1.1 client for one URL.
pub(crate) struct Client {
    url: Url,
    connector: Option<tokio_rustls::TlsConnector>,
    mode: Mode,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.display())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `url`; `config` is used for `https://` URLs and must
    /// be given for them.
    pub(crate) fn new(
        url: Url,
        config: Option<Arc<rustls::ClientConfig>>,
        mode: Mode,
    ) -> Result<Self, String> {
        let connector = match (url.tls, config) {
            (true, Some(config)) => Some(tokio_rustls::TlsConnector::from(config)),
            (true, None) => return Err("an https:// URL needs a TLS configuration".to_owned()),
            (false, _) => None,
        };
        Ok(Self {
            url,
            connector,
            mode,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// The URL.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// `POST`s `body` until `check` accepts the response, a failure is not
    /// worth retrying, or `retries` retries are spent, waiting as
    /// `backoff` says between attempts; each attempt is counted in
    /// `attempts`. The caller bounds the whole with its timeout.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send(
        &self,
        content_type: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        retries: u32,
        backoff: &Backoff,
        attempts: &AtomicU64,
        check: impl Fn(&Response) -> Result<(), Failure>,
    ) -> Result<(), String> {
        let mut delays = backoff.retries();
        let mut attempt = 0;
        loop {
            attempt += 1;
            attempts.fetch_add(1, Ordering::Relaxed);
            let failure = match self.post(content_type, headers, body).await {
                Ok(response) => match check(&response) {
                    Ok(()) => return Ok(()),
                    Err(failure) => failure,
                },
                Err(failure) => failure,
            };
            if !failure.retry || attempt > retries {
                return Err(format!(
                    "{} (attempt {attempt} of {})",
                    failure.reason,
                    retries + 1
                ));
            }
            tokio::time::sleep(delays.next_delay()).await;
        }
    }

    /// One request: on a kept connection if there is one (and, if that
    /// one turns out closed before any answer, once more on a new one),
    /// else on a new connection.
    pub(crate) async fn post(
        &self,
        content_type: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<Response, Failure> {
        let request = self.request(content_type, headers, body);
        // One request at a time; taken out while in use, so a request
        // that fails or is cancelled (timeout) leaves no connection behind.
        let mut slot = self.conn.lock().await;
        if let Some(mut conn) = slot.take() {
            match self.exchange(&mut conn, &request).await {
                Ok((response, keep)) => {
                    if keep {
                        *slot = Some(conn);
                    }
                    return Ok(response);
                }
                // The server closed the idle connection: try a new one.
                Err(Exchange::Unanswered(_)) => {}
                Err(Exchange::Failed(failure)) => return Err(failure),
            }
        }
        let mut conn = self.connect().await?;
        match self.exchange(&mut conn, &request).await {
            Ok((response, keep)) => {
                if keep {
                    *slot = Some(conn);
                }
                Ok(response)
            }
            Err(Exchange::Unanswered(failure) | Exchange::Failed(failure)) => Err(failure),
        }
    }

    /// The request's bytes (wiped when dropped: headers may hold tokens).
    fn request(
        &self,
        content_type: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Zeroizing<Vec<u8>> {
        let mut request = Zeroizing::new(Vec::with_capacity(256 + body.len()));
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: strongroom/{}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            self.url.path,
            self.url.authority,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        request.extend_from_slice(head.as_bytes());
        if self.mode == Mode::Close {
            request.extend_from_slice(b"Connection: close\r\n");
        }
        for (name, value) in headers {
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        request
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let tcp = tokio::net::TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|e| Failure::io("cannot connect", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| Failure::io("cannot connect", &e))?;
        let io: Box<dyn Io> = match &self.connector {
            Some(connector) => Box::new(
                connector
                    .connect(self.url.server_name.clone(), tcp)
                    .await
                    .map_err(|e| Failure::io("TLS handshake failed", &e))?,
            ),
            None => Box::new(tcp),
        };
        Ok(Conn {
            io,
            buf: Vec::new(),
        })
    }

    /// Writes the request and reads the response; whether the connection
    /// may be used again.
    async fn exchange(
        &self,
        conn: &mut Conn,
        request: &[u8],
    ) -> Result<(Response, bool), Exchange> {
        let sent = async {
            conn.io.write_all(request).await?;
            conn.io.flush().await
        };
        if let Err(e) = sent.await {
            return Err(Exchange::Unanswered(Failure::io(
                "cannot send the request",
                &e,
            )));
        }
        match self.mode {
            Mode::Close => read_status(conn)
                .await
                .map(|status| {
                    (
                        Response {
                            status,
                            body: Vec::new(),
                        },
                        false,
                    )
                })
                .map_err(Exchange::Failed),
            Mode::KeepAlive => read_response(conn).await,
        }
    }
}

/// How an exchange failed: before any byte of an answer (a kept
/// connection the server had closed), or later.
enum Exchange {
    Unanswered(Failure),
    Failed(Failure),
}

impl Conn {
    /// Reads more into `buf`; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = self.io.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

/// Reads until the status line is complete (at most
/// [`MAX_STATUS_BYTES`]) and returns its code.
async fn read_status(conn: &mut Conn) -> Result<u16, Failure> {
    loop {
        if let Some(end) = conn.buf.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&conn.buf[..end]).ok_or_else(|| {
                Failure::protocol("the endpoint's answer is not an HTTP/1.x status line")
            });
        }
        if conn.buf.len() >= MAX_STATUS_BYTES {
            return Err(Failure::protocol(format!(
                "no status line in the first {MAX_STATUS_BYTES} bytes"
            )));
        }
        match conn.fill().await {
            Ok(0) => {
                return Err(Failure::protocol(
                    "the endpoint closed the connection without an answer",
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::io("cannot read the response", &e)),
        }
    }
}

/// Reads a whole response (keep-alive mode); whether the connection may
/// carry another request.
async fn read_response(conn: &mut Conn) -> Result<(Response, bool), Exchange> {
    let head_end = loop {
        if let Some(i) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if conn.buf.len() >= MAX_HEAD_BYTES {
            return Err(Exchange::Failed(Failure::protocol(format!(
                "the response head is longer than {MAX_HEAD_BYTES} bytes"
            ))));
        }
        let empty = conn.buf.is_empty();
        let failed = |f: Failure| {
            if empty {
                Exchange::Unanswered(f)
            } else {
                Exchange::Failed(f)
            }
        };
        match conn.fill().await {
            Ok(0) => {
                return Err(failed(Failure::protocol(
                    "the endpoint closed the connection without an answer",
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(failed(Failure::io("cannot read the response", &e))),
        }
    };
    let fail = |reason: &str| Exchange::Failed(Failure::protocol(reason.to_owned()));
    let head = std::str::from_utf8(&conn.buf[..head_end])
        .map_err(|_| fail("the response head is not text"))?
        .to_owned();
    conn.buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line.as_bytes())
        .ok_or_else(|| fail("the endpoint's answer is not an HTTP/1.x status line"))?;
    let mut keep = status_line.starts_with("HTTP/1.1 ");
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(fail("a response header line has no ':'"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| fail("the response's Content-Length is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(fail("the response has two different Content-Lengths"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                return Err(fail("the response's transfer coding is not supported"));
            }
        } else if name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
        {
            keep = false;
        }
    }
    let no_body = (100..200).contains(&status) || status == 204 || status == 304;
    let body = if no_body {
        Vec::new()
    } else if chunked {
        keep = false;
        read_chunked(conn).await.map_err(Exchange::Failed)?
    } else if let Some(len) = length {
        if len > MAX_BODY_BYTES {
            return Err(fail("the response body is too large"));
        }
        read_exact(conn, len).await.map_err(Exchange::Failed)?
    } else {
        // Delimited by the end of the stream.
        keep = false;
        loop {
            if conn.buf.len() > MAX_BODY_BYTES {
                return Err(fail("the response body is too large"));
            }
            match conn.fill().await {
                Ok(0) => break std::mem::take(&mut conn.buf),
                Ok(_) => {}
                Err(e) => {
                    return Err(Exchange::Failed(Failure::io(
                        "cannot read the response",
                        &e,
                    )));
                }
            }
        }
    };
    // Bytes beyond the response (the server talking out of turn): do not
    // reuse the connection.
    if !conn.buf.is_empty() {
        keep = false;
    }
    Ok((Response { status, body }, keep))
}

/// Takes `len` bytes off the connection.
async fn read_exact(conn: &mut Conn, len: usize) -> Result<Vec<u8>, Failure> {
    while conn.buf.len() < len {
        match conn.fill().await {
            Ok(0) => {
                return Err(Failure::protocol(
                    "the endpoint closed the connection in the middle of its answer",
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::io("cannot read the response", &e)),
        }
    }
    Ok(conn.buf.drain(..len).collect())
}

/// Takes one line (without its CRLF) off the connection.
async fn read_line(conn: &mut Conn) -> Result<String, Failure> {
    loop {
        if let Some(i) = conn.buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = conn.buf.drain(..i + 2).take(i).collect();
            return String::from_utf8(line)
                .map_err(|_| Failure::protocol("a chunked body's line is not text"));
        }
        if conn.buf.len() > MAX_STATUS_BYTES {
            return Err(Failure::protocol("a chunked body's line is too long"));
        }
        match conn.fill().await {
            Ok(0) => {
                return Err(Failure::protocol(
                    "the endpoint closed the connection in the middle of its answer",
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::io("cannot read the response", &e)),
        }
    }
}

/// Reads a chunked body (RFC 9112 section 7.1), at most [`MAX_BODY_BYTES`];
/// trailers are read and ignored.
async fn read_chunked(conn: &mut Conn) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let line = read_line(conn).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| Failure::protocol("a chunk size is not a hex number"))?;
        if size == 0 {
            while !read_line(conn).await?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Err(Failure::protocol("the response body is too large"));
        }
        body.extend_from_slice(&read_exact(conn, size).await?);
        if !read_line(conn).await?.is_empty() {
            return Err(Failure::protocol("a chunk does not end with CRLF"));
        }
    }
}

/// `HTTP/1.1 200 OK` → 200.
pub(crate) fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_parse_and_plain_http_is_for_loopback_on_request() {
        let u = Url::parse("https://alerts.example.com/hook?x=1", "test", false).unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("alerts.example.com", 443, true)
        );
        assert_eq!(u.path, "/hook?x=1");
        assert_eq!(u.authority, "alerts.example.com");
        let u = Url::parse("https://127.0.0.1:8443", "test", false).unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8443, "/")
        );
        let u = Url::parse("https://[::1]:9000/a", "test", false).unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.authority, "[::1]:9000");
        assert_eq!(
            Url::parse("https://h?q", "test", false).unwrap().path,
            "/?q"
        );
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
            assert!(Url::parse(bad, "test", false).is_err(), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:4318/v1/logs",
            "http://[::1]:4318/v1/logs",
            "http://localhost/v1/logs",
        ] {
            let u = Url::parse(ok, "test", true).unwrap();
            assert!(!u.tls, "{ok}");
            assert!(Url::parse(ok, "test", false).is_err(), "{ok}");
        }
        assert_eq!(Url::parse("http://localhost/", "t", true).unwrap().port, 80);
        for bad in [
            "http://collector:4318/v1/logs",
            "http://10.0.0.1/",
            "http://127.0.0.2/",
            "http://localhost.example.com/",
            "ftp://127.0.0.1/",
        ] {
            assert!(Url::parse(bad, "test", true).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_names_and_values() {
        assert!(valid_header_name("Authorization"));
        assert!(valid_header_name("x-api-key"));
        for bad in ["", "a b", "a:b", "Host", "content-length", "Connection"] {
            assert!(!valid_header_name(bad), "{bad}");
        }
        assert!(valid_header_value(b"Bearer abc\t123"));
        assert!(!valid_header_value(b"abc\r\nX-Injected: 1"));
        assert!(!valid_header_value(b"a\0b"));
    }

    async fn conn_over(bytes: &[u8]) -> Conn {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(bytes).await.unwrap();
        drop(a);
        Conn {
            io: Box::new(b),
            buf: Vec::new(),
        }
    }

    #[tokio::test]
    async fn responses_are_read_whole_and_keep_alive_only_when_framed() {
        let ok = |r: Result<(Response, bool), Exchange>| match r {
            Ok(v) => v,
            Err(Exchange::Failed(f) | Exchange::Unanswered(f)) => panic!("{}", f.reason),
        };
        let mut c = conn_over(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
        let (r, keep) = ok(read_response(&mut c).await);
        assert_eq!((r.status, r.body.as_slice(), keep), (200, &b"{}"[..], true));

        let mut c =
            conn_over(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").await;
        assert!(!ok(read_response(&mut c).await).1);

        let mut c = conn_over(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        assert!(!ok(read_response(&mut c).await).1);

        let mut c = conn_over(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
        )
        .await;
        let (r, keep) = ok(read_response(&mut c).await);
        assert_eq!((r.body.as_slice(), keep), (&b"abcde"[..], false));

        let mut c = conn_over(b"HTTP/1.1 503 Busy\r\n\r\nuntil the end").await;
        let (r, keep) = ok(read_response(&mut c).await);
        assert_eq!(
            (r.status, r.body.as_slice(), keep),
            (503, &b"until the end"[..], false)
        );

        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            let mut c = conn_over(bad).await;
            assert!(read_response(&mut c).await.is_err());
        }
        let mut c = conn_over(b"").await;
        assert!(matches!(
            read_response(&mut c).await,
            Err(Exchange::Unanswered(_))
        ));
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 500"), Some(500));
        assert_eq!(parse_status_line(b"HTTP/2 200 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH"), None);
    }
}
