//! Shipping audit records to a collector over a socket: JSON lines, or
//! syslog (RFC 5424 messages with RFC 6587 octet-counting framing) over
//! TCP, TLS over TCP (feature `tls`) or a Unix stream socket.

use std::fmt;
use std::path::PathBuf;

use tokio::io::AsyncWriteExt as _;

use super::{AuditError, AuditRecord, AuditSink};

/// How [`SocketSink`] frames each record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketFormat {
    /// The record's JSON line and a newline: byte for byte what
    /// [`JsonlFileSink`](super::JsonlFileSink) writes, so a collector that
    /// stores the lines can verify them with
    /// [`verify_jsonl_file`](super::verify_jsonl_file).
    JsonLines,
    /// An RFC 5424 syslog message (facility `authpriv`, severity `info`,
    /// the record's time, `hostname`, `app_name`, this process's id, message
    /// id `audit`, no structured data) whose message is the JSON line,
    /// framed by octet counting (RFC 6587: the length, a space, the
    /// message), as rsyslog, syslog-ng and most collectors accept over TCP.
    Syslog {
        /// The HOSTNAME field (`-` for none).
        hostname: String,
        /// The APP-NAME field.
        app_name: String,
    },
}

/// Where [`SocketSink`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Tcp(String),
    Unix(PathBuf),
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    Unix(tokio::net::UnixStream),
}

/// TLS to the collector: the client configuration and the name its
/// certificate must carry.
#[cfg(feature = "tls")]
#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: rustls_pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Stream {
    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            #[cfg(feature = "tls")]
            Self::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Self::Unix(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }
}

/// Sends every record to a collector over TCP, TLS over TCP or a Unix
/// stream socket, in addition to (not instead of) the log's other sinks.
///
/// The connection is made on the first record and kept; a write that fails
/// or is cut by the timeout drops it, and the next record connects again.
/// A record counts as accepted once it is written to the socket (handed to
/// the operating system), not once the collector stored it: durability is
/// the collector's. The log's sink timeout ([`AuditLog::with_sink_timeout`](super::AuditLog::with_sink_timeout))
/// bounds each write, connecting and the TLS handshake included, so a slow
/// or dead collector costs an operation at most that long.
///
/// With `SocketSink::tls` (feature `tls`, on by default) the TCP
/// connection is wrapped in TLS (rustls, TLS 1.2 or 1.3): the collector's
/// certificate must chain to one of the CA certificates given and carry
/// the server name given, or nothing is sent and the record is refused
/// like any other failed write.
///
/// By default the sink is not required: a record it refuses is still
/// appended if another sink accepts it (and the failure is logged). Mark
/// it [`required`](SocketSink::required) to make the operation fail closed
/// when the collector does not take the record (see [`AuditSink::required`]).
///
/// Records arrive in sequence order with their chain MACs, so a collector
/// that keeps them can verify the chain downstream; a record refused here
/// (collector down) shows there as a gap in the sequence.
pub struct SocketSink {
    name: String,
    target: Target,
    format: SocketFormat,
    required: bool,
    #[cfg(feature = "tls")]
    tls: Option<Tls>,
    conn: tokio::sync::Mutex<Option<Stream>>,
}

impl fmt::Debug for SocketSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SocketSink");
        d.field("target", &self.target)
            .field("format", &self.format)
            .field("required", &self.required);
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls);
        d.finish_non_exhaustive()
    }
}

impl SocketSink {
    fn new(name: String, target: Target) -> Self {
        Self {
            name,
            target,
            format: SocketFormat::JsonLines,
            required: false,
            #[cfg(feature = "tls")]
            tls: None,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// A sink connecting over TCP to `addr` (`host:port`), sending JSON
    /// lines. Nothing is connected until the first record.
    pub fn tcp(addr: impl Into<String>) -> Self {
        let addr = addr.into();
        Self::new(format!("tcp:{addr}"), Target::Tcp(addr))
    }

    /// A sink connecting to the Unix stream socket at `path`, sending JSON
    /// lines.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self::new(format!("unix:{}", path.display()), Target::Unix(path))
    }

    /// Frames records as RFC 5424 syslog messages (see [`SocketFormat::Syslog`]).
    #[must_use]
    pub fn syslog(mut self, hostname: impl Into<String>, app_name: impl Into<String>) -> Self {
        self.format = SocketFormat::Syslog {
            hostname: hostname.into(),
            app_name: app_name.into(),
        };
        self
    }

    /// Whether an operation must fail when this sink refuses its record
    /// (default `false`; see [`AuditSink::required`]).
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Connects over TLS (a [`tcp`](Self::tcp) sink only): the collector's
    /// certificate must chain to one of the CA certificates in `ca_pem`
    /// (PEM `CERTIFICATE` blocks; no system or bundled roots are used) and
    /// be valid for `server_name` (a DNS name or an IP address). The sink's
    /// name becomes `tls:host:port`.
    #[cfg(feature = "tls")]
    pub fn tls(self, ca_pem: &[u8], server_name: &str) -> Result<Self, AuditError> {
        let config =
            crate::https::tls_client_config(ca_pem).map_err(|message| AuditError::Sink {
                sink: self.name.clone(),
                message,
            })?;
        self.tls_with_config(config, server_name)
    }

    /// Connects over TLS with a rustls client configuration of your own
    /// (other trust anchors, a client certificate for mutual TLS); the
    /// collector's certificate must be valid for `server_name`.
    #[cfg(feature = "tls")]
    pub fn tls_with_config(
        mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<Self, AuditError> {
        let err = |message: String| AuditError::Sink {
            sink: self.name.clone(),
            message,
        };
        let Target::Tcp(addr) = &self.target else {
            return Err(err("TLS is only for TCP collectors".to_owned()));
        };
        let server_name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|_| err(format!("{server_name:?} is not a DNS name or IP address")))?;
        self.name = format!("tls:{addr}");
        self.tls = Some(Tls {
            connector: tokio_rustls::TlsConnector::from(config),
            server_name,
        });
        Ok(self)
    }

    /// The bytes sent for `record`.
    fn frame(&self, record: &AuditRecord, line: &str) -> Vec<u8> {
        match &self.format {
            SocketFormat::JsonLines => {
                let mut buf = Vec::with_capacity(line.len() + 1);
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                buf
            }
            SocketFormat::Syslog { hostname, app_name } => {
                // <PRI>: facility authpriv (10) * 8 + severity info (6).
                let msg = format!(
                    "<86>1 {} {} {} {} audit - {line}",
                    record.time,
                    field(hostname),
                    field(app_name),
                    std::process::id()
                );
                format!("{} {msg}", msg.len()).into_bytes()
            }
        }
    }

    async fn connect(&self) -> std::io::Result<Stream> {
        Ok(match &self.target {
            Target::Tcp(addr) => {
                let s = tokio::net::TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                #[cfg(feature = "tls")]
                if let Some(tls) = &self.tls {
                    let s = tls.connector.connect(tls.server_name.clone(), s).await?;
                    return Ok(Stream::Tls(Box::new(s)));
                }
                Stream::Tcp(s)
            }
            Target::Unix(path) => Stream::Unix(tokio::net::UnixStream::connect(path).await?),
        })
    }
}

/// A syslog header field: printable ASCII without spaces, at most 48
/// characters; `-` when empty.
fn field(s: &str) -> String {
    let out: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(48)
        .collect();
    if out.is_empty() { "-".to_owned() } else { out }
}

#[async_trait::async_trait]
impl AuditSink for SocketSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn required(&self) -> bool {
        self.required
    }

    async fn write(&self, record: &AuditRecord, line: &str) -> Result<(), AuditError> {
        let buf = self.frame(record, line);
        let err = |message: String| AuditError::Sink {
            sink: self.name.clone(),
            message,
        };
        // One record at a time, in order; the log's timeout bounds the wait.
        let mut conn = self.conn.lock().await;
        // Taken out while writing: a write cancelled half way (timeout)
        // leaves no connection behind, so the next record starts on a new
        // one instead of after a torn frame.
        let mut stream = match conn.take() {
            Some(s) => s,
            None => self
                .connect()
                .await
                .map_err(|e| err(format!("cannot connect: {e}")))?,
        };
        stream
            .write_all(&buf)
            .await
            .map_err(|e| err(format!("cannot write: {e}")))?;
        *conn = Some(stream);
        Ok(())
    }
}
