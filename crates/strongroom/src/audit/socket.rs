//! Shipping audit records to a collector over a socket: JSON lines, or
//! syslog (RFC 5424 messages with RFC 6587 octet-counting framing) over
//! TCP or a Unix stream socket.

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
    Unix(tokio::net::UnixStream),
}

impl Stream {
    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => {
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

/// Sends every record to a collector over TCP or a Unix stream socket, in
/// addition to (not instead of) the log's other sinks.
///
/// The connection is made on the first record and kept; a write that fails
/// drops it, and the next record connects again. A record counts as
/// accepted once it is written to the socket (handed to the operating
/// system), not once the collector stored it: durability is the
/// collector's. The log's sink timeout ([`AuditLog::with_sink_timeout`](super::AuditLog::with_sink_timeout))
/// bounds each write, connecting included, so a slow or dead collector
/// costs an operation at most that long.
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
    conn: tokio::sync::Mutex<Option<Stream>>,
}

impl fmt::Debug for SocketSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketSink")
            .field("target", &self.target)
            .field("format", &self.format)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl SocketSink {
    fn new(name: String, target: Target) -> Self {
        Self {
            name,
            target,
            format: SocketFormat::JsonLines,
            required: false,
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
