//! Test TLS servers for the webhook, audit socket TLS and OTLP tests: a CA
//! and server (and client) certificates made with rcgen, tokio-rustls
//! acceptors (one requiring a client certificate), a small HTTP/1.1
//! receiver and a keep-alive OTLP collector.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> Vec<u8> {
        self.issuer.pem().into_bytes()
    }

    /// A TLS acceptor presenting a certificate for `names` (DNS names or
    /// IP addresses) issued by this CA.
    pub fn acceptor(&self, names: &[&str]) -> tokio_rustls::TlsAcceptor {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// A TLS acceptor presenting a certificate for `names` issued by this
    /// CA and requiring a client certificate issued by `client_ca`.
    pub fn acceptor_requiring_client_cert(
        &self,
        names: &[&str],
        client_ca: &TestCa,
    ) -> tokio_rustls::TlsAcceptor {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(client_ca.roots()),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// This CA as a rustls root store.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }

    /// A rustls client configuration trusting `server_ca`, presenting a
    /// client certificate (for `name`) issued by this CA when
    /// `with_cert`, none otherwise.
    pub fn client_config(
        &self,
        server_ca: &TestCa,
        name: &str,
        with_cert: bool,
    ) -> Arc<rustls::ClientConfig> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(server_ca.roots());
        if !with_cert {
            return Arc::new(builder.with_no_client_auth());
        }
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            builder
                .with_client_auth_cert(vec![cert.der().clone()], key)
                .unwrap(),
        )
    }
}

/// One HTTP request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Reads one request (head and `Content-Length` body) from `stream`.
pub async fn read_request(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut request = Request {
        head,
        body: buf[head_end + 4..].to_vec(),
    };
    let len: usize = request.header("content-length")?.parse().ok()?;
    while request.body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

/// An HTTPS receiver on 127.0.0.1: answers the requests it reads with the
/// statuses in `statuses`, in turn (the last one repeated), and sends each
/// request it read to the returned channel. Returns its port.
pub async fn https_receiver(
    acceptor: tokio_rustls::TlsAcceptor,
    statuses: Vec<u16>,
) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Request>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut answered = 0;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            // A client that refuses our certificate ends the handshake.
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let Some(request) = read_request(&mut tls).await else {
                continue;
            };
            let status = statuses[answered.min(statuses.len() - 1)];
            answered += 1;
            let _ = tx.send(request);
            let body = "ok";
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    (port, rx)
}

/// A test OTLP/HTTP collector on 127.0.0.1 (TLS with `acceptor`, plain
/// HTTP without): keeps connections alive, answers the requests it reads
/// with `answers` (status, body) in turn (the last one repeated), and
/// sends each request to `requests`. `connections` counts the TCP
/// connections accepted, `handshakes_failed` the TLS handshakes that
/// failed.
pub struct Collector {
    pub port: u16,
    pub requests: tokio::sync::mpsc::UnboundedReceiver<Request>,
    pub connections: Arc<AtomicUsize>,
    pub handshakes_failed: tokio::sync::mpsc::UnboundedReceiver<()>,
}

pub async fn otlp_collector(
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    answers: Vec<(u16, String)>,
) -> Collector {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, requests) = tokio::sync::mpsc::unbounded_channel();
    let (failed_tx, handshakes_failed) = tokio::sync::mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(answers);
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let (acceptor, tx, failed_tx) = (acceptor.clone(), tx.clone(), failed_tx.clone());
            let (answered, answers) = (answered.clone(), answers.clone());
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(tls) => serve(tls, tx, answered, answers).await,
                        Err(_) => {
                            let _ = failed_tx.send(());
                        }
                    },
                    None => serve(tcp, tx, answered, answers).await,
                }
            });
        }
    });
    Collector {
        port,
        requests,
        connections,
        handshakes_failed,
    }
}

pub async fn serve(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    tx: tokio::sync::mpsc::UnboundedSender<Request>,
    answered: Arc<AtomicUsize>,
    answers: Arc<Vec<(u16, String)>>,
) {
    while let Some(request) = read_request(&mut stream).await {
        let n = answered.fetch_add(1, Ordering::SeqCst);
        let (status, body) = &answers[n.min(answers.len() - 1)];
        let _ = tx.send(request);
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}
