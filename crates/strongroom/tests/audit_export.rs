//! Audit records shipped to a collector over a socket (JSON lines over TCP,
//! syslog over a Unix socket) with their chain intact, and the required
//! flag: an append fails closed when a required sink refuses it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strongroom::audit::{
    AuditError, AuditEvent, AuditLog, MemorySink, Operation, SocketSink, new_request_id,
    verify_jsonl_file,
};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

async fn store() -> (Strongroom, SecretBytes) {
    let key = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &key, Options::default())
        .await
        .unwrap();
    let door = sr.dangerous_traced("audit-export-test").await.unwrap();
    let audit_key = door.audit_key().unwrap();
    (sr, audit_key)
}

fn event(n: u32) -> AuditEvent {
    AuditEvent::new("svc", Operation::Read, new_request_id().unwrap())
        .with_path(format!("app/s{n}"))
}

/// Waits (bounded) until `lines` holds `n` entries.
async fn until(lines: &Mutex<Vec<String>>, n: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while lines.lock().unwrap().len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the collector received the records");
}

#[tokio::test]
async fn json_lines_over_tcp_arrive_in_order_and_verify_downstream() {
    let (sr, audit_key) = store().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = got.clone();
    tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        let mut lines = BufReader::new(conn).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink_lines.lock().unwrap().push(line);
        }
    });
    let memory = Arc::new(MemorySink::new());
    let log = sr
        .open_audit_log(vec![memory.clone(), Arc::new(SocketSink::tcp(addr))], None)
        .await
        .unwrap();
    for n in 0..5 {
        log.append(event(n)).await.unwrap();
    }
    until(&got, 5).await;
    let collected = got.lock().unwrap().clone();
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
async fn syslog_over_a_unix_socket_is_octet_counted_rfc5424() {
    let (sr, _) = store().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let frames = got.clone();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            // parse complete "LEN SP MSG" frames
            while let Some(sp) = buf.iter().position(|&b| b == b' ') {
                let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
                if buf.len() < sp + 1 + len {
                    break;
                }
                let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
                frames.lock().unwrap().push(msg);
                buf.drain(..sp + 1 + len);
            }
        }
    });
    let memory = Arc::new(MemorySink::new());
    let sink = SocketSink::unix(&path).syslog("host-1", "strongroom");
    let log = sr
        .open_audit_log(vec![memory.clone(), Arc::new(sink)], None)
        .await
        .unwrap();
    for n in 0..3 {
        log.append(event(n)).await.unwrap();
    }
    until(&got, 3).await;
    let frames = got.lock().unwrap().clone();
    for (msg, line) in frames.iter().zip(memory.lines()) {
        assert!(msg.starts_with("<86>1 "), "{msg}");
        let fields: Vec<&str> = msg.splitn(8, ' ').collect();
        assert_eq!(fields[2], "host-1");
        assert_eq!(fields[3], "strongroom");
        assert_eq!(fields[4], std::process::id().to_string());
        assert_eq!(fields[5], "audit");
        assert_eq!(fields[6], "-");
        assert_eq!(fields[7], line);
    }
}

#[tokio::test]
async fn a_required_sink_that_refuses_fails_the_append_closed() {
    let (sr, _) = store().await;
    // a port nobody listens on: connections are refused at once
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");

    // not required: the record is appended through the other sink
    let memory = Arc::new(MemorySink::new());
    let log = sr
        .open_audit_log(vec![memory.clone(), Arc::new(SocketSink::tcp(&addr))], None)
        .await
        .unwrap();
    log.append(event(1)).await.unwrap();
    assert_eq!(memory.lines().len(), 1);

    // required: the append fails (the caller must not go on), though the
    // other sink holds the record and the chain moves past it
    let memory = Arc::new(MemorySink::new());
    let required = SocketSink::tcp(&addr).required(true);
    let log: AuditLog = sr
        .open_audit_log(vec![memory.clone(), Arc::new(required)], None)
        .await
        .unwrap();
    match log.append(event(2)).await {
        Err(AuditError::Sink { sink, message }) => {
            assert_eq!(sink, format!("tcp:{addr}"));
            assert!(message.contains("required"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(memory.lines().len(), 1);
    let next = log.append(event(3)).await.unwrap_err();
    assert!(matches!(next, AuditError::Sink { .. }));
    let seqs: Vec<u64> = memory.records().unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 2);
    assert_eq!(seqs[1], seqs[0] + 1);
}
