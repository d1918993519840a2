//! Metrics: the application installs a recorder (here Prometheus, without
//! an HTTP stack), uses the store through a principal's handle, and serves
//! `/metrics` in the Prometheus text format on 127.0.0.1. The example then
//! scrapes itself once and prints what a Prometheus server would see.
//!
//! Run: `cargo run -p strongroom-examples --example metrics [-- <dir>]`
//! (a temporary directory when none is given). Exits non-zero if an
//! expected series is missing, or a path or principal appears in a label.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use strongroom::audit::{FsyncPolicy, JsonlFileSink};
use strongroom::lease::LeaseConfig;
use strongroom::policy::{Policy, Principal};
use strongroom::protector::SoftwareProtector;
use strongroom::{Error, Options, Result, Strongroom};
use strongroom_sqlx::SqliteStore;

fn fail(what: &str) -> Error {
    Error::InvalidArgument(format!("metrics example: {what}"))
}

/// Answers one `GET /metrics` on `listener` with the rendered text.
fn serve_one(listener: TcpListener, prometheus: PrometheusHandle) -> std::io::Result<()> {
    let (stream, _) = listener.accept()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // the rest of the request head, up to the blank line
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let (status, body) = if request_line.starts_with("GET /metrics ") {
        ("200 OK", prometheus.render())
    } else {
        ("404 Not Found", String::new())
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

async fn demo(dir: &Path) -> Result<String> {
    // Once, at start-up: the recorder every metric of the process goes to.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| fail(&e.to_string()))?;

    let key_path = dir.join("root.key");
    SoftwareProtector::generate_key_file(&key_path)?;
    let key = SoftwareProtector::from_key_file(&key_path)?;
    let store = Arc::new(SqliteStore::open(dir.join("secrets.db")).await?);
    let sr = Strongroom::init(store.clone(), &key, Options::default()).await?;
    let sink = Arc::new(JsonlFileSink::open(
        dir.join("audit.jsonl"),
        FsyncPolicy::EveryRecord,
    )?);
    let audit = Arc::new(sr.open_audit_log(vec![sink], None).await?);
    let policy = Policy::from_toml_str(
        r#"
        name = "billing"
        [[path]]
        pattern = "prod/billing/*"
        capabilities = ["create", "update", "read"]
        "#,
    )?;
    let billing = sr.as_principal(Principal::new("billing-svc", [&policy]), audit.clone());
    billing
        .put("prod/billing/stripe-key", b"sk_live_example", None)
        .await?;
    for _ in 0..3 {
        billing.read("prod/billing/stripe-key").await?;
    }
    // denied: another service's secret
    if billing.read("prod/payroll/db-password").await.is_ok() {
        return Err(fail("a denied read succeeded"));
    }
    let door = sr.dangerous("metrics-example", &audit).await?;
    door.lease_manager(sr.clock().clone(), LeaseConfig::default())?
        .record_metrics();

    // The endpoint: one request served on a loopback port, then scraped.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| fail(&e.to_string()))?;
    let addr = listener.local_addr().map_err(|e| fail(&e.to_string()))?;
    let server = std::thread::spawn(move || serve_one(listener, prometheus));
    let mut client = TcpStream::connect(addr).map_err(|e| fail(&e.to_string()))?;
    client
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .map_err(|e| fail(&e.to_string()))?;
    let mut response = String::new();
    client
        .read_to_string(&mut response)
        .map_err(|e| fail(&e.to_string()))?;
    server
        .join()
        .map_err(|_| fail("the server thread panicked"))?
        .map_err(|e| fail(&e.to_string()))?;
    sr.seal();
    store.close().await;
    Ok(response)
}

fn check(response: &str) -> Result<()> {
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| fail("no HTTP body"))?;
    if !response.starts_with("HTTP/1.1 200 OK") {
        return Err(fail("the endpoint did not answer 200"));
    }
    for want in [
        "strongroom_operations_total{operation=\"write\",outcome=\"allowed\"} 1",
        "strongroom_operations_total{operation=\"read\",outcome=\"allowed\"} 3",
        "strongroom_operations_total{operation=\"read\",outcome=\"denied\"} 1",
        "strongroom_operation_duration_seconds",
        "strongroom_keyring_encryptions_reserved{version=\"1\"}",
        "strongroom_leases{state=\"live\"} 0",
    ] {
        if !body.contains(want) {
            return Err(fail(&format!("missing {want}")));
        }
    }
    for never in ["stripe", "payroll", "billing-svc", "sk_live"] {
        if body.contains(never) {
            return Err(fail(&format!("{never} appears in the metrics")));
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let tmp = tempfile::tempdir().map_err(|e| fail(&e.to_string()))?;
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => tmp.path().to_path_buf(),
    };
    let response = demo(&dir).await?;
    check(&response)?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    for line in body
        .lines()
        .filter(|l| l.starts_with("strongroom_") && !l.contains("_bucket"))
    {
        println!("{line}");
    }
    println!("metrics example: ok (served and scraped /metrics on 127.0.0.1)");
    Ok(())
}
