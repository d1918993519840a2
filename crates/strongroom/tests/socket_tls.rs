//! Audit export over TLS to a collector on 127.0.0.1: the collector gets
//! the JSON lines and verifies the chain; a collector whose certificate the
//! sink does not trust gets nothing, and a required sink then fails the
//! append closed; a write cut by the timeout drops the connection.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "webhook_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use strongroom::audit::{
    AuditError, AuditEvent, MemorySink, Operation, SocketSink, new_request_id, verify_jsonl_file,
};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use support::TestCa;
use tokio::io::{AsyncBufReadExt as _, BufReader};

async fn store() -> (Strongroom, SecretBytes) {
    let key = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &key, Options::default())
        .await
        .unwrap();
    let door = sr.dangerous_traced("socket-tls-test").await.unwrap();
    let audit_key = door.audit_key().unwrap();
    (sr, audit_key)
}

fn event(n: u32) -> AuditEvent {
    AuditEvent::new("svc", Operation::Read, new_request_id().unwrap())
        .with_path(format!("app/s{n}"))
}

/// A TLS collector on 127.0.0.1 sending each line it reads to the returned
/// channel; its address.
async fn collector(
    acceptor: tokio_rustls::TlsAcceptor,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut lines = BufReader::new(tls).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn json_lines_over_tls_arrive_and_verify_downstream() {
    let (sr, audit_key) = store().await;
    let ca = TestCa::new("collector CA");
    let (addr, mut received) = collector(ca.acceptor(&["collector.example"])).await;
    let sink = SocketSink::tcp(&addr)
        .tls(&ca.pem(), "collector.example")
        .unwrap()
        .required(true);
    assert!(format!("{sink:?}").contains("collector.example"));
    let memory = Arc::new(MemorySink::new());
    let log = sr
        .open_audit_log(vec![memory.clone(), Arc::new(sink)], None)
        .await
        .unwrap();
    for n in 0..5 {
        log.append(event(n)).await.unwrap();
    }
    let mut collected = Vec::new();
    for _ in 0..5 {
        collected.push(received.recv().await.unwrap());
    }
    assert_eq!(collected, memory.lines());

    // the collector's copy verifies with the store's audit key
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("collected.jsonl");
    std::fs::write(&file, collected.join("\n") + "\n").unwrap();
    let report = verify_jsonl_file(&file, &audit_key, None, None).unwrap();
    assert_eq!(report.records, 5);
    // and an edit there is caught
    let edited = collected.join("\n").replacen("app/s1", "app/s9", 1) + "\n";
    std::fs::write(&file, edited).unwrap();
    assert!(verify_jsonl_file(&file, &audit_key, None, None).is_err());
}

#[tokio::test]
async fn a_required_tls_sink_fails_closed_on_an_untrusted_or_misnamed_collector() {
    let (sr, _) = store().await;
    let trusted = TestCa::new("collector CA");
    let untrusted = TestCa::new("some other CA");
    for (acceptor, what) in [
        (untrusted.acceptor(&["collector.example"]), "untrusted CA"),
        (trusted.acceptor(&["elsewhere.example"]), "another name"),
    ] {
        let (addr, mut received) = collector(acceptor).await;
        let sink = SocketSink::tcp(&addr)
            .tls(&trusted.pem(), "collector.example")
            .unwrap()
            .required(true);
        let memory = Arc::new(MemorySink::new());
        let log = sr
            .open_audit_log(vec![memory.clone(), Arc::new(sink)], None)
            .await
            .unwrap();
        match log.append(event(1)).await {
            Err(AuditError::Sink { sink, message }) => {
                assert_eq!(sink, format!("tls:{addr}"), "{what}");
                assert!(message.contains("required"), "{what}: {message}");
            }
            other => panic!("{what}: {other:?}"),
        }
        // the other sink kept the record; the collector got nothing
        assert_eq!(memory.lines().len(), 1, "{what}");
        assert!(received.try_recv().is_err(), "{what}");
    }
}

#[tokio::test]
async fn a_write_cut_by_the_timeout_drops_the_connection() {
    let (sr, _) = store().await;
    let ca = TestCa::new("collector CA");
    let acceptor = ca.acceptor(&["127.0.0.1"]);
    // The first connection is held without a handshake (the write times
    // out); later ones are served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stalled, _) = listener.accept().await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut lines = BufReader::new(tls).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
        drop(stalled);
    });
    let sink = Arc::new(
        SocketSink::tcp(&addr)
            .tls(&ca.pem(), "127.0.0.1")
            .unwrap()
            .required(true),
    );
    let memory = Arc::new(MemorySink::new());
    // the stalled handshake is cut by a short timeout: the append fails closed
    let short = sr
        .open_audit_log(vec![memory.clone(), sink.clone()], None)
        .await
        .unwrap()
        .with_sink_timeout(Duration::from_millis(200));
    match short.append(event(1)).await {
        Err(AuditError::Sink { message, .. }) => {
            assert!(message.contains("timed out"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    drop(short);
    // the sink's next record (through a log with the default timeout, so
    // a slow machine's handshake is not cut) connects again: a new
    // connection, served, and the record arrives
    let log = sr
        .open_audit_log(vec![memory.clone(), sink], None)
        .await
        .unwrap();
    let second = log.append(event(2)).await.unwrap();
    let line = received.recv().await.unwrap();
    assert_eq!(line, *memory.lines().last().unwrap());
    assert!(line.contains(&format!("\"seq\":{}", second.seq)), "{line}");
}

#[test]
fn tls_is_for_tcp_collectors_with_valid_names_and_anchors() {
    let ca = TestCa::new("collector CA");
    assert!(
        SocketSink::unix("/tmp/collector.sock")
            .tls(&ca.pem(), "c.example")
            .is_err()
    );
    assert!(
        SocketSink::tcp("127.0.0.1:1")
            .tls(b"no PEM here", "c.example")
            .is_err()
    );
    assert!(
        SocketSink::tcp("127.0.0.1:1")
            .tls(&ca.pem(), "not a name!")
            .is_err()
    );
}

#[tokio::test]
async fn a_client_certificate_passes_a_collector_that_requires_one() {
    let (sr, _) = store().await;
    let server_ca = TestCa::new("collector CA");
    let client_ca = TestCa::new("client CA");
    let acceptor = server_ca.acceptor_requiring_client_cert(&["collector.example"], &client_ca);
    // A collector reporting each handshake (Ok or Err) and each line.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (handshakes_tx, mut handshakes) = tokio::sync::mpsc::unbounded_channel();
    let (lines_tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    let _ = handshakes_tx.send(Err(e.to_string()));
                    continue;
                }
            };
            let _ = handshakes_tx.send(Ok(()));
            let mut lines = BufReader::new(tls).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = lines_tx.send(line);
            }
        }
    });

    // with a certificate from the CA the collector trusts: the record arrives
    let config = client_ca.client_config(&server_ca, "strongroom-client", true);
    let sink = SocketSink::tcp(&addr)
        .tls_with_config(config, "collector.example")
        .unwrap()
        .required(true);
    let memory = Arc::new(MemorySink::new());
    let log = sr
        .open_audit_log(vec![memory.clone(), Arc::new(sink)], None)
        .await
        .unwrap();
    log.append(event(1)).await.unwrap();
    handshakes.recv().await.unwrap().unwrap();
    assert_eq!(received.recv().await.unwrap(), memory.lines()[0]);
    drop(log);

    // without one: the collector refuses the handshake and gets no line
    // (under TLS 1.3 the client may finish its side of the handshake and
    // write before the refusal reaches it, so the sink is not required
    // here and the append's result is not what is checked)
    let config = client_ca.client_config(&server_ca, "strongroom-client", false);
    let sink = SocketSink::tcp(&addr)
        .tls_with_config(config, "collector.example")
        .unwrap();
    let memory = Arc::new(MemorySink::new());
    let log = sr
        .open_audit_log(vec![memory.clone(), Arc::new(sink)], None)
        .await
        .unwrap();
    let _ = log.append(event(2)).await;
    let refused = handshakes.recv().await.unwrap().unwrap_err();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    assert!(received.try_recv().is_err());
}
