//! The HTTPS alert webhook against real TLS servers on 127.0.0.1: the
//! alert's JSON arrives signed, untrusted or misnamed servers get nothing,
//! a 5xx is retried, a server that never answers is given up within the
//! sink's timeout and never holds up an audited operation.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "webhook_support/mod.rs"]
mod support;
#[path = "tracing_capture/mod.rs"]
mod tracing_capture;

use std::sync::Arc;
use std::time::Duration;

use strongroom::SecretBytes;
use strongroom::alerts::{
    Alert, AlertConfig, AlertEngine, AlertKind, AlertSink, ChannelSink, SIGNATURE_HEADER, Severity,
    WebhookConfig, WebhookSink,
};
use strongroom::audit::{AuditEvent, AuditLog, MemorySink, Operation};
use strongroom::backoff::Backoff;
use strongroom::clock::{ManualClock, Timestamp};
use support::{TestCa, https_receiver};
use tracing_capture::Capture;

const KEY: &[u8] = b"webhook shared key, 32 bytes ...";

/// An engine alerting on reads of `prod/admin/*`, and a log it observes.
fn engine(sinks: Vec<Arc<dyn AlertSink>>, sink_timeout_ms: u64) -> (AlertEngine, AuditLog) {
    let config = AlertConfig::from_toml(&format!(
        "[delivery]\nsink_timeout_ms = {sink_timeout_ms}\n\
         [sensitive_read]\nseverity = \"critical\"\npatterns = [\"prod/admin/*\"]\n"
    ))
    .unwrap();
    let engine = AlertEngine::start(config, sinks).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let log = AuditLog::new(
        SecretBytes::new(vec![7; 32]),
        vec![Arc::new(MemorySink::new())],
        clock,
    )
    .unwrap();
    (engine.clone(), engine.attach(log))
}

fn sensitive_read() -> AuditEvent {
    AuditEvent::new("billing", Operation::Read, "req-42").with_path("prod/admin/root")
}

fn alert() -> Alert {
    Alert {
        kind: AlertKind::SensitiveRead,
        severity: Severity::Critical,
        principal: "billing".to_owned(),
        path: Some("prod/admin/root".to_owned()),
        at: Timestamp::from_secs(1_800_000_000),
        summary: "billing read sensitive path prod/admin/root".to_owned(),
        request_id: "req-42".to_owned(),
        seq: 1,
    }
}

/// No waiting between retries, so the tests do not depend on the clock.
fn no_backoff() -> Backoff {
    Backoff::new(Duration::ZERO, Duration::ZERO)
}

#[tokio::test]
async fn the_alert_arrives_as_signed_json_with_its_fields() {
    let ca = TestCa::new("webhook test CA");
    let (port, mut requests) = https_receiver(ca.acceptor(&["127.0.0.1"]), vec![200]).await;
    let webhook = Arc::new(
        WebhookSink::new(
            &format!("https://127.0.0.1:{port}/hooks/strongroom"),
            &ca.pem(),
        )
        .unwrap()
        .with_signing_key(SecretBytes::copy_from(KEY))
        .unwrap(),
    );
    let (channel, mut alerts) = ChannelSink::new(4);
    let (engine, log) = engine(vec![webhook.clone(), Arc::new(channel)], 10_000);
    log.append(sensitive_read()).await.unwrap();
    engine.settled().await;

    let sent = alerts.recv().await.unwrap();
    assert_eq!(sent.kind, AlertKind::SensitiveRead);
    let request = requests.recv().await.unwrap();
    assert!(
        request
            .head
            .starts_with("POST /hooks/strongroom HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert_eq!(request.header("host").unwrap(), format!("127.0.0.1:{port}"));
    assert_eq!(request.header("content-type").unwrap(), "application/json");
    assert_eq!(request.header("connection").unwrap(), "close");

    // the signature is the HMAC-SHA256 of the exact body under the key
    let signature = request.header(SIGNATURE_HEADER).unwrap();
    let hex_mac = signature.strip_prefix("sha256=").unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY);
    ring::hmac::verify(&key, &request.body, &hex::decode(hex_mac).unwrap()).unwrap();
    let mut forged = request.body.clone();
    forged[0] ^= 1;
    assert!(ring::hmac::verify(&key, &forged, &hex::decode(hex_mac).unwrap()).is_err());

    // the body is the alert, field for field, with its stable names
    let received: Alert = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(received, sent);
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let mut names: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "at",
            "kind",
            "path",
            "principal",
            "request_id",
            "seq",
            "severity",
            "summary"
        ]
    );
    assert_eq!(json["kind"], "sensitive_read");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["path"], "prod/admin/root");
    assert_eq!(json["request_id"], "req-42");

    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.failed, stats.attempts), (1, 0, 1));
    assert_eq!(engine.stats().sink_timeouts, 0);
    let debug = format!("{webhook:?}");
    assert!(!debug.contains("webhook shared key"), "{debug}");
}

#[tokio::test]
async fn an_untrusted_or_misnamed_server_gets_nothing_and_it_is_counted() {
    let ca = TestCa::new("the CA the sink trusts");
    let other = TestCa::new("some other CA");
    let capture = Capture::default();
    let _installed = capture.install();
    for (acceptor, what) in [
        (
            other.acceptor(&["127.0.0.1"]),
            "certificate from an untrusted CA",
        ),
        (
            ca.acceptor(&["collector.example"]),
            "certificate for another name",
        ),
    ] {
        let (port, mut requests) = https_receiver(acceptor, vec![200]).await;
        let webhook = WebhookSink::new(&format!("https://127.0.0.1:{port}/"), &ca.pem())
            .unwrap()
            .with_retries(3, no_backoff());
        webhook.deliver(&alert()).await;
        let stats = webhook.stats();
        // refused at the handshake, and not retried: it would fail the same way
        assert_eq!(
            (stats.delivered, stats.failed, stats.attempts),
            (0, 1, 1),
            "{what}"
        );
        assert!(
            requests.try_recv().is_err(),
            "{what}: a request got through"
        );
    }
    // each failure is logged with its reason, never with the alert's body
    let logged = capture.text();
    assert_eq!(
        logged.matches("alert webhook gave up").count(),
        2,
        "{logged}"
    );
    assert!(logged.contains("invalid peer certificate"), "{logged}");
    assert!(logged.contains("sensitive_read"), "{logged}");
    for body_part in [alert().summary, alert().principal, alert().request_id] {
        assert!(!logged.contains(&body_part), "{body_part} in {logged}");
    }
}

#[tokio::test]
async fn a_server_error_is_retried_until_delivered() {
    let ca = TestCa::new("webhook test CA");
    let (port, mut requests) = https_receiver(ca.acceptor(&["127.0.0.1"]), vec![500, 200]).await;
    let webhook = WebhookSink::new(&format!("https://127.0.0.1:{port}/"), &ca.pem())
        .unwrap()
        .with_retries(2, no_backoff());
    webhook.deliver(&alert()).await;
    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.failed, stats.attempts), (1, 0, 2));
    let first = requests.recv().await.unwrap();
    let second = requests.recv().await.unwrap();
    assert_eq!(first.body, second.body);

    // so is "too many requests"
    let (port, _requests) = https_receiver(ca.acceptor(&["127.0.0.1"]), vec![429, 204]).await;
    let webhook = WebhookSink::new(&format!("https://127.0.0.1:{port}/"), &ca.pem())
        .unwrap()
        .with_retries(2, no_backoff());
    webhook.deliver(&alert()).await;
    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.failed, stats.attempts), (1, 0, 2));

    // a client error is not retried
    let (port, _requests) = https_receiver(ca.acceptor(&["127.0.0.1"]), vec![400, 200]).await;
    let webhook = WebhookSink::new(&format!("https://127.0.0.1:{port}/"), &ca.pem())
        .unwrap()
        .with_retries(2, no_backoff());
    webhook.deliver(&alert()).await;
    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.failed, stats.attempts), (0, 1, 1));

    // retries run out
    let (port, _requests) = https_receiver(ca.acceptor(&["127.0.0.1"]), vec![503]).await;
    let webhook = WebhookSink::new(&format!("https://127.0.0.1:{port}/"), &ca.pem())
        .unwrap()
        .with_retries(2, no_backoff());
    webhook.deliver(&alert()).await;
    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.failed, stats.attempts), (0, 1, 3));
}

/// A TCP server that accepts connections and never says anything; the
/// returned receiver gets one message per connection accepted.
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
async fn a_server_that_never_answers_is_given_up_within_the_sinks_timeout() {
    let ca = TestCa::new("webhook test CA");
    let (port, _accepted) = silent_server().await;
    let webhook = Arc::new(
        WebhookSink::new(&format!("https://127.0.0.1:{port}/"), &ca.pem())
            .unwrap()
            .with_timeout(Duration::from_millis(200)),
    );
    // the engine would wait 60 s: the sink's own timeout ends it first
    let (engine, log) = engine(vec![webhook.clone()], 60_000);
    tokio::time::timeout(Duration::from_secs(30), async {
        log.append(sensitive_read()).await.unwrap();
        engine.settled().await;
    })
    .await
    .expect("the append and the delivery finished");
    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.failed), (0, 1));
    let engine_stats = engine.stats();
    assert_eq!((engine_stats.raised, engine_stats.delivered), (1, 1));
    assert_eq!(engine_stats.sink_timeouts, 0);
}

#[tokio::test]
async fn a_hanging_webhook_does_not_hold_up_the_audited_operation() {
    let ca = TestCa::new("webhook test CA");
    let (port, mut accepted) = silent_server().await;
    let webhook = Arc::new(
        WebhookSink::new(&format!("https://127.0.0.1:{port}/"), &ca.pem())
            .unwrap()
            .with_timeout(Duration::from_secs(120)),
    );
    let (engine, log) = engine(vec![webhook.clone()], 240_000);
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(30), log.append(sensitive_read()))
            .await
            .expect("the append returned")
            .unwrap();
    }
    // the webhook is connected and waiting on its first alert...
    accepted.recv().await.unwrap();
    // ...while every append has returned and all three alerts are queued
    let stats = engine.stats();
    assert_eq!((stats.raised, stats.delivered, stats.dropped), (3, 0, 0));
    let hook = webhook.stats();
    assert_eq!((hook.attempts, hook.delivered, hook.failed), (1, 0, 0));
}

#[tokio::test]
async fn a_webhook_configured_in_toml_delivers() {
    let ca = TestCa::new("webhook test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let (port, mut requests) = https_receiver(ca.acceptor(&["127.0.0.1"]), vec![200]).await;
    let config = AlertConfig::from_toml(&format!(
        "[webhook]\nurl = \"https://127.0.0.1:{port}/in\"\nca_file = {:?}\ntimeout_ms = 3000\n",
        ca_file.to_str().unwrap()
    ))
    .unwrap();
    let webhook = WebhookSink::from_config(config.webhook.as_ref().unwrap()).unwrap();
    webhook.deliver(&alert()).await;
    assert_eq!(webhook.stats().delivered, 1);
    let request = requests.recv().await.unwrap();
    assert!(request.head.starts_with("POST /in HTTP/1.1\r\n"));
    assert!(request.header(SIGNATURE_HEADER).is_none());

    // a missing CA file is named
    let missing = WebhookConfig::new("https://127.0.0.1/", dir.path().join("nope.pem"));
    let err = WebhookSink::from_config(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.pem"), "{err}");
}

#[tokio::test]
async fn a_client_certificate_passes_a_server_that_requires_one() {
    let server_ca = TestCa::new("webhook test CA");
    let client_ca = TestCa::new("client CA");
    let mut server = support::otlp_collector(
        Some(server_ca.acceptor_requiring_client_cert(&["127.0.0.1"], &client_ca)),
        vec![(200, String::new())],
    )
    .await;
    let url = format!("https://127.0.0.1:{}/hook", server.port);

    // with a certificate from the CA the server trusts: delivered
    let config = client_ca.client_config(&server_ca, "strongroom-client", true);
    let webhook = WebhookSink::with_tls_config(&url, config).unwrap();
    webhook.deliver(&alert()).await;
    assert_eq!(webhook.stats().delivered, 1);
    let request = server.requests.recv().await.unwrap();
    assert!(request.head.starts_with("POST /hook HTTP/1.1\r\n"));

    // without one: refused at the server's handshake, nothing delivered
    let config = client_ca.client_config(&server_ca, "strongroom-client", false);
    let webhook = WebhookSink::with_tls_config(&url, config)
        .unwrap()
        .with_retries(0, no_backoff());
    webhook.deliver(&alert()).await;
    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.failed), (0, 1));
    server.handshakes_failed.recv().await.unwrap();
    assert!(server.requests.try_recv().is_err());
}
