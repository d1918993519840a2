//! Audit export to an OTLP/HTTP collector on 127.0.0.1 (over TLS, and plain
//! HTTP on loopback): the OTLP JSON is well formed and carries the record's
//! exact JSON line, which verifies downstream; records share one kept-alive
//! connection; a 503 is retried; a collector that never answers costs an
//! append at most the log's timeout and fails it closed only when the sink
//! is required; an untrusted certificate, a partial success with rejected
//! records and plain HTTP to another host are refused.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "webhook_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use strongroom::SecretBytes;
use strongroom::audit::{
    AuditError, AuditEvent, AuditLog, AuditSink, MemorySink, Operation, OtlpSink, Outcome,
    verify_jsonl_file,
};
use strongroom::backoff::Backoff;
use strongroom::clock::{ManualClock, Timestamp};
use support::{TestCa, otlp_collector};

const TIME_MS: u64 = 1_800_000_000_123;

fn audit_key() -> SecretBytes {
    SecretBytes::new(vec![9; 32])
}

/// A log writing to a memory sink and `sink`.
fn log(sink: OtlpSink) -> (AuditLog, Arc<MemorySink>) {
    let memory = Arc::new(MemorySink::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(TIME_MS)));
    let sinks: Vec<Arc<dyn AuditSink>> = vec![memory.clone(), Arc::new(sink)];
    (AuditLog::new(audit_key(), sinks, clock).unwrap(), memory)
}

fn event(n: u32) -> AuditEvent {
    AuditEvent::new("payment-svc", Operation::Read, format!("req-{n}"))
        .with_path(format!("prod/app/s{n}"))
}

fn no_backoff() -> Backoff {
    Backoff::new(Duration::ZERO, Duration::ZERO)
}

/// The attributes of an OTLP `KeyValue` list as (key, value object).
fn attributes(list: &Value) -> Vec<(String, Value)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv["key"].as_str().unwrap().to_owned(), kv["value"].clone()))
        .collect()
}

fn string_attr(list: &Value, key: &str) -> Option<String> {
    attributes(list)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v["stringValue"].as_str().unwrap().to_owned())
}

/// Checks one OTLP request against the line the memory sink got; returns
/// the body (the record's JSON line).
fn check_request(json: &Value, line: &str, seq: u64, denied: bool) -> String {
    let resource_logs = json["resourceLogs"].as_array().unwrap();
    assert_eq!(resource_logs.len(), 1);
    let resource = &resource_logs[0];
    assert_eq!(
        string_attr(&resource["resource"]["attributes"], "service.name").as_deref(),
        Some("payments")
    );
    let scope_logs = resource["scopeLogs"].as_array().unwrap();
    assert_eq!(scope_logs.len(), 1);
    assert_eq!(scope_logs[0]["scope"]["name"], "strongroom.audit");
    assert_eq!(scope_logs[0]["scope"]["version"], env!("CARGO_PKG_VERSION"));
    let records = scope_logs[0]["logRecords"].as_array().unwrap();
    assert_eq!(records.len(), 1, "one log record per request");
    let r = &records[0];
    // 64-bit integers are decimal strings in OTLP JSON
    assert_eq!(r["timeUnixNano"], format!("{TIME_MS}000000"));
    let observed: u128 = r["observedTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(observed > 0);
    if denied {
        assert_eq!(
            (r["severityNumber"].as_u64(), r["severityText"].as_str()),
            (Some(13), Some("WARN"))
        );
    } else {
        assert_eq!(
            (r["severityNumber"].as_u64(), r["severityText"].as_str()),
            (Some(9), Some("INFO"))
        );
    }
    let body = r["body"]["stringValue"].as_str().unwrap();
    assert_eq!(
        body, line,
        "the body is the record's JSON line, byte for byte"
    );
    let attrs = &r["attributes"];
    let seq_attr = attributes(attrs)
        .into_iter()
        .find(|(k, _)| k == "strongroom.audit.seq")
        .unwrap()
        .1;
    assert_eq!(seq_attr["intValue"], seq.to_string());
    let record: Value = serde_json::from_str(line).unwrap();
    let event = &record["event"];
    assert_eq!(
        string_attr(attrs, "strongroom.audit.principal").unwrap(),
        event["principal"]
    );
    assert_eq!(
        string_attr(attrs, "strongroom.audit.operation").unwrap(),
        event["operation"]
    );
    assert_eq!(
        string_attr(attrs, "strongroom.audit.request_id").unwrap(),
        event["request_id"]
    );
    assert_eq!(
        string_attr(attrs, "strongroom.audit.path").unwrap(),
        event["path"]
    );
    assert_eq!(
        string_attr(attrs, "strongroom.audit.outcome").unwrap(),
        if denied { "denied" } else { "allowed" }
    );
    let mut keys: Vec<String> = attributes(attrs).into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "strongroom.audit.operation",
            "strongroom.audit.outcome",
            "strongroom.audit.path",
            "strongroom.audit.principal",
            "strongroom.audit.request_id",
            "strongroom.audit.seq",
        ]
    );
    body.to_owned()
}

/// Sends five records (the third denied) through `sink` to `collector`,
/// checks every request and verifies the bodies as a JSON-lines file.
async fn five_records_arrive_and_verify(sink: OtlpSink, collector: &mut support::Collector) {
    let (log, memory) = log(sink);
    for n in 1..=5 {
        let mut e = event(n);
        if n == 3 {
            e = e.with_outcome(Outcome::Denied);
        }
        log.append(e).await.unwrap();
    }
    let lines = memory.lines();
    let mut bodies = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let request = collector.requests.recv().await.unwrap();
        assert!(
            request.head.starts_with("POST /v1/logs HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        assert_eq!(request.header("content-type").unwrap(), "application/json");
        assert_eq!(
            request.header("host").unwrap(),
            format!("127.0.0.1:{}", collector.port)
        );
        assert_eq!(request.header("x-api-key").unwrap(), "collector token");
        assert!(request.header("connection").is_none());
        let json: Value = serde_json::from_slice(&request.body).unwrap();
        bodies.push(check_request(&json, line, i as u64 + 1, i == 2));
    }
    // five records, one connection
    assert_eq!(collector.connections.load(Ordering::SeqCst), 1);

    // the collector writes the bodies as lines: the chain verifies...
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("collected.jsonl");
    std::fs::write(&file, bodies.join("\n") + "\n").unwrap();
    let report = verify_jsonl_file(&file, &audit_key(), None, Some(&log.head().await)).unwrap();
    assert_eq!(report.records, 5);
    // ...and an edited body does not
    let edited = bodies.join("\n").replacen("prod/app/s2", "prod/app/s7", 1) + "\n";
    std::fs::write(&file, edited).unwrap();
    assert!(verify_jsonl_file(&file, &audit_key(), None, None).is_err());
}

#[tokio::test]
async fn records_arrive_as_otlp_json_over_tls_on_one_connection_and_verify_downstream() {
    let ca = TestCa::new("collector CA");
    let mut collector = otlp_collector(
        Some(ca.acceptor(&["127.0.0.1"])),
        vec![(200, "{}".to_owned())],
    )
    .await;
    let sink = OtlpSink::new(
        &format!("https://127.0.0.1:{}/v1/logs", collector.port),
        &ca.pem(),
    )
    .unwrap()
    .service_name("payments")
    .header("X-Api-Key", SecretBytes::from("collector token"))
    .unwrap()
    .required(true);
    let debug = format!("{sink:?}");
    assert!(!debug.contains("collector token"), "{debug}");
    five_records_arrive_and_verify(sink, &mut collector).await;
}

#[tokio::test]
async fn records_arrive_over_plain_http_on_loopback() {
    // an empty 200 (no body) is acceptance too
    let mut collector = otlp_collector(None, vec![(200, String::new())]).await;
    let sink = OtlpSink::plain_loopback(&format!("http://127.0.0.1:{}/v1/logs", collector.port))
        .unwrap()
        .service_name("payments")
        .header("X-Api-Key", SecretBytes::from("collector token"))
        .unwrap()
        .required(true);
    five_records_arrive_and_verify(sink, &mut collector).await;
}

#[tokio::test]
async fn a_503_is_retried_until_delivered() {
    let ca = TestCa::new("collector CA");
    let mut collector = otlp_collector(
        Some(ca.acceptor(&["127.0.0.1"])),
        vec![(503, String::new()), (200, "{}".to_owned())],
    )
    .await;
    let sink = OtlpSink::new(
        &format!("https://127.0.0.1:{}/v1/logs", collector.port),
        &ca.pem(),
    )
    .unwrap()
    .with_retries(2, no_backoff())
    .required(true);
    let (log, memory) = log(sink);
    log.append(event(1)).await.unwrap();
    let first = collector.requests.recv().await.unwrap();
    let second = collector.requests.recv().await.unwrap();
    assert_eq!(first.body, second.body);
    assert_eq!(memory.lines().len(), 1);
}

#[tokio::test]
async fn partial_success_with_rejected_records_is_a_refusal() {
    let ca = TestCa::new("collector CA");
    let answer = r#"{"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"too old"}}"#;
    let mut collector = otlp_collector(
        Some(ca.acceptor(&["127.0.0.1"])),
        vec![(200, answer.to_owned())],
    )
    .await;
    let sink = OtlpSink::new(
        &format!("https://127.0.0.1:{}/v1/logs", collector.port),
        &ca.pem(),
    )
    .unwrap()
    .with_retries(2, no_backoff())
    .required(true);
    let (log, memory) = log(sink);
    match log.append(event(1)).await {
        Err(AuditError::Sink { message, .. }) => {
            assert!(message.contains("required"), "{message}");
            assert!(message.contains("rejected 1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // not retried: one request
    collector.requests.recv().await.unwrap();
    assert!(collector.requests.try_recv().is_err());
    assert_eq!(memory.lines().len(), 1);
}

/// Accepts connections and never answers; holds them open.
async fn silent_server() -> (u16, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    (port, rx)
}

#[tokio::test]
async fn a_collector_that_never_answers_costs_at_most_the_logs_timeout() {
    let ca = TestCa::new("collector CA");
    let (port, mut accepted) = silent_server().await;
    for required in [true, false] {
        // the sink would wait 120 s: the log's timeout cuts it off first
        let sink = OtlpSink::new(&format!("https://127.0.0.1:{port}/v1/logs"), &ca.pem())
            .unwrap()
            .with_timeout(Duration::from_secs(120))
            .required(required);
        let (log, memory) = log(sink);
        let log = log.with_sink_timeout(Duration::from_millis(300));
        let result = tokio::time::timeout(Duration::from_secs(30), log.append(event(1)))
            .await
            .expect("the append returned");
        accepted.recv().await.unwrap();
        if required {
            match result {
                Err(AuditError::Sink { message, .. }) => {
                    assert!(message.contains("required"), "{message}");
                    assert!(message.contains("timed out"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        } else {
            result.unwrap();
        }
        // the memory sink holds the record either way
        assert_eq!(memory.lines().len(), 1);
    }
}

#[tokio::test]
async fn an_untrusted_or_misnamed_collector_gets_nothing() {
    let trusted = TestCa::new("collector CA");
    let other = TestCa::new("some other CA");
    for (acceptor, what) in [
        (other.acceptor(&["127.0.0.1"]), "untrusted CA"),
        (trusted.acceptor(&["collector.example"]), "another name"),
    ] {
        let mut collector = otlp_collector(Some(acceptor), vec![(200, "{}".to_owned())]).await;
        let sink = OtlpSink::new(
            &format!("https://127.0.0.1:{}/v1/logs", collector.port),
            &trusted.pem(),
        )
        .unwrap()
        .with_retries(3, no_backoff())
        .required(true);
        let (log, memory) = log(sink);
        match log.append(event(1)).await {
            Err(AuditError::Sink { message, .. }) => {
                assert!(message.contains("required"), "{what}: {message}");
                assert!(
                    message.contains("invalid peer certificate"),
                    "{what}: {message}"
                );
                // a certificate error is not retried
                assert!(message.contains("attempt 1 of 4"), "{what}: {message}");
            }
            other => panic!("{what}: {other:?}"),
        }
        // the handshake failed at the collector and no request arrived
        collector.handshakes_failed.recv().await.unwrap();
        assert!(collector.requests.try_recv().is_err(), "{what}");
        assert_eq!(memory.lines().len(), 1, "{what}");
    }
}

#[test]
fn plain_http_is_only_for_loopback_and_only_on_request() {
    let ca = TestCa::new("collector CA");
    for url in [
        "http://collector:4318/v1/logs",
        "http://10.0.0.1:4318/v1/logs",
        "http://127.0.0.2:4318/v1/logs",
        "https://127.0.0.1:4318/v1/logs",
    ] {
        assert!(OtlpSink::plain_loopback(url).is_err(), "{url}");
    }
    for url in [
        "http://127.0.0.1:4318/v1/logs",
        "http://[::1]:4318/v1/logs",
        "http://localhost:4318/v1/logs",
    ] {
        assert!(OtlpSink::plain_loopback(url).is_ok(), "{url}");
        // the TLS constructors take https:// only
        assert!(OtlpSink::new(url, &ca.pem()).is_err(), "{url}");
    }
    assert!(OtlpSink::new("https://collector:4318/v1/logs", b"no PEM").is_err());
    assert!(
        OtlpSink::new("https://collector:4318/v1/logs", &ca.pem())
            .unwrap()
            .header("Host", SecretBytes::from("x"))
            .is_err()
    );
}

/// A plain-HTTP collector that answers each connection's first request
/// with a 200 and closes it, saying `Connection: close` when `say_close`
/// (else silently, as a collector's idle timeout does); counts connections.
async fn one_request_per_connection(
    say_close: bool,
) -> (
    u16,
    tokio::sync::mpsc::UnboundedReceiver<support::Request>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let Some(request) = support::read_request(&mut tcp).await else {
                continue;
            };
            let _ = tx.send(request);
            let close = if say_close {
                "Connection: close\r\n"
            } else {
                ""
            };
            let response = format!("HTTP/1.1 200 OK\r\n{close}Content-Length: 2\r\n\r\n{{}}");
            let _ = tcp.write_all(response.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
    });
    (port, rx, connections)
}

#[tokio::test]
async fn a_connection_the_collector_closes_is_not_reused() {
    for say_close in [true, false] {
        let (port, mut requests, connections) = one_request_per_connection(say_close).await;
        // no retries: a kept connection found closed is replaced within
        // the same attempt
        let sink = OtlpSink::plain_loopback(&format!("http://127.0.0.1:{port}/v1/logs"))
            .unwrap()
            .with_retries(0, no_backoff())
            .required(true);
        let (log, memory) = log(sink);
        for n in 1..=3 {
            log.append(event(n)).await.unwrap();
        }
        for line in memory.lines() {
            let request = requests.recv().await.unwrap();
            let json: Value = serde_json::from_slice(&request.body).unwrap();
            let body = &json["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"];
            assert_eq!(body["stringValue"].as_str().unwrap(), line);
        }
        assert_eq!(
            connections.load(Ordering::SeqCst),
            3,
            "say_close: {say_close}"
        );
    }
}

#[tokio::test]
async fn a_client_certificate_passes_a_collector_that_requires_one() {
    let server_ca = TestCa::new("collector CA");
    let client_ca = TestCa::new("client CA");
    let mut collector = otlp_collector(
        Some(server_ca.acceptor_requiring_client_cert(&["127.0.0.1"], &client_ca)),
        vec![(200, "{}".to_owned())],
    )
    .await;
    let url = format!("https://127.0.0.1:{}/v1/logs", collector.port);
    let config = client_ca.client_config(&server_ca, "strongroom-client", true);
    let sink = OtlpSink::with_tls_config(&url, config)
        .unwrap()
        .required(true);
    let (first, memory) = log(sink);
    first.append(event(1)).await.unwrap();
    let request = collector.requests.recv().await.unwrap();
    let json: Value = serde_json::from_slice(&request.body).unwrap();
    let body = &json["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"];
    assert_eq!(body["stringValue"].as_str().unwrap(), memory.lines()[0]);

    // without one: refused, and a required sink fails the append closed
    let config = client_ca.client_config(&server_ca, "strongroom-client", false);
    let sink = OtlpSink::with_tls_config(&url, config)
        .unwrap()
        .with_retries(0, no_backoff())
        .required(true);
    let (second, _) = log(sink);
    assert!(matches!(
        second.append(event(2)).await,
        Err(AuditError::Sink { .. })
    ));
    collector.handshakes_failed.recv().await.unwrap();
    assert!(collector.requests.try_recv().is_err());
}

#[tokio::test]
async fn a_request_cut_by_the_timeout_drops_the_connection() {
    // The first connection is held without an answer; later ones are
    // served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stalled, _) = listener.accept().await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        support::serve(tcp, tx, answered, Arc::new(vec![(200, "{}".to_owned())])).await;
        drop(stalled);
    });
    let sink = OtlpSink::plain_loopback(&format!("http://127.0.0.1:{port}/v1/logs"))
        .unwrap()
        // long enough for the served request on a loaded machine; the
        // stalled one always runs into it
        .with_timeout(Duration::from_secs(2))
        .required(true);
    let (log, memory) = log(sink);
    match log.append(event(1)).await {
        Err(AuditError::Sink { message, .. }) => {
            assert!(message.contains("timed out"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // the next record goes over a new connection, which is answered
    log.append(event(2)).await.unwrap();
    let request = requests.recv().await.unwrap();
    let json: Value = serde_json::from_slice(&request.body).unwrap();
    let body = &json["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"];
    assert_eq!(body["stringValue"].as_str().unwrap(), memory.lines()[1]);
}

#[tokio::test]
async fn a_connection_dropped_without_an_answer_is_retried() {
    // The first connection is closed as soon as it is accepted; the
    // second is served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (dropped, _) = listener.accept().await.unwrap();
        drop(dropped);
        let (tcp, _) = listener.accept().await.unwrap();
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        support::serve(tcp, tx, answered, Arc::new(vec![(200, "{}".to_owned())])).await;
    });
    let sink = OtlpSink::plain_loopback(&format!("http://127.0.0.1:{port}/v1/logs"))
        .unwrap()
        .with_retries(1, no_backoff())
        .required(true);
    let (log, memory) = log(sink);
    log.append(event(1)).await.unwrap();
    let request = requests.recv().await.unwrap();
    let json: Value = serde_json::from_slice(&request.body).unwrap();
    let body = &json["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"];
    assert_eq!(body["stringValue"].as_str().unwrap(), memory.lines()[0]);
}
