//! A real rustls server and real clients over TCP on 127.0.0.1, mutual
//! TLS, with certificates renewed under load; expired and revoked client
//! certificates refused.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use strongroom::Handle;
use strongroom::clock::Timestamp;
use strongroom_pki::{
    CaSpec, CertResolver, IssueRequest, KeyType, Pki, ReloadableClientVerifier, Serial,
    TrustConfig, Usage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use x509_parser::prelude::{FromDer, X509Certificate};

use common::*;

fn serial_of(cert: &[u8]) -> Serial {
    let (_, c) = X509Certificate::from_der(cert).unwrap();
    Serial::from_bytes(c.raw_serial())
}

/// The server: answers "ping" with "pong" on every accepted connection,
/// noting the client certificates' serials and every failed handshake.
struct Server {
    addr: SocketAddr,
    failed: Arc<AtomicU64>,
    client_serials: Arc<Mutex<BTreeSet<Serial>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_server(config: rustls::ServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let failed = Arc::new(AtomicU64::new(0));
    let client_serials = Arc::new(Mutex::new(BTreeSet::new()));
    let (f, s) = (failed.clone(), client_serials.clone());
    let task = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, failed, serials) = (acceptor.clone(), f.clone(), s.clone());
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                if let Some(chain) = tls.get_ref().1.peer_certificates() {
                    serials.lock().await.insert(serial_of(&chain[0]));
                }
                let mut buf = [0u8; 5];
                if tls.read_exact(&mut buf).await.is_ok() && &buf == b"ping\n" {
                    let _ = tls.write_all(b"pong\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    Server {
        addr,
        failed,
        client_serials,
        task,
    }
}

/// Waits (up to five seconds) until `counter` reaches `n`; its value.
async fn wait_for(counter: &AtomicU64, n: u64) -> u64 {
    for _ in 0..500 {
        if counter.load(Ordering::Relaxed) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    counter.load(Ordering::Relaxed)
}

/// One request; the serial of the server's certificate.
async fn request(connector: &TlsConnector, addr: SocketAddr) -> std::io::Result<Serial> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let serial = serial_of(&tls.get_ref().1.peer_certificates().unwrap()[0]);
    tls.write_all(b"ping\n").await?;
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await?;
    if &buf != b"pong\n" {
        return Err(std::io::Error::other("wrong answer"));
    }
    Ok(serial)
}

async fn setup(start: Timestamp) -> (World, Process) {
    let (world, p) = World::new(start).await;
    p.pki
        .create_root(&p.admin, CaSpec::new("Root").key_type(KeyType::EcdsaP256))
        .await
        .unwrap();
    p.pki.put_role(&p.admin, "web", web_role()).await.unwrap();
    (world, p)
}

async fn server_resolver(pki: &Pki, app: &Handle) -> Arc<CertResolver> {
    let req = IssueRequest::new(["localhost"])
        .ip("127.0.0.1".parse().unwrap())
        .usages([Usage::Server]);
    CertResolver::new(pki, app, "web", req).await.unwrap()
}

async fn client_resolver(pki: &Pki, app: &Handle, i: usize) -> Arc<CertResolver> {
    let req = IssueRequest::new([format!("c{i}.svc.example.com")]).usages([Usage::Client]);
    CertResolver::new(pki, app, "web", req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_under_load_survives_repeated_renewals_and_refuses_revoked_clients() {
    let (_world, p) = setup(real_now()).await;
    let ca = p.pki.ca(&p.app).await.unwrap();
    let crl = p.pki.crl(&p.app).await.unwrap();
    let trust = TrustConfig::new(&ca).with_crl(&crl);
    let server_res = server_resolver(&p.pki, &p.app).await;
    let verifier = ReloadableClientVerifier::new(trust.client_verifier().unwrap());
    let mut config = trust
        .server_config(verifier.clone(), server_res.clone())
        .unwrap();
    config.send_tls13_tickets = 0;
    let server = start_server(config).await;

    const CLIENTS: usize = 64;
    const RESOLVERS: usize = 8;
    let mut client_res = vec![];
    let mut connectors = vec![];
    for i in 0..RESOLVERS {
        let r = client_resolver(&p.pki, &p.app, i).await;
        let mut config = trust.client_config(Some(r.clone())).unwrap();
        // every request a full handshake: a resumed session would not
        // show the certificates again
        config.resumption = rustls::client::Resumption::disabled();
        connectors.push(TlsConnector::from(Arc::new(config)));
        client_res.push(r);
    }
    let first_server_serial = server_res.serial();

    // the load: 64 clients, each request a new connection and handshake
    let run_for = Duration::from_millis(2500);
    let deadline = Instant::now() + run_for;
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen_server = Arc::new(Mutex::new(BTreeSet::new()));
    let mut clients = vec![];
    for i in 0..CLIENTS {
        let connector = connectors[i % RESOLVERS].clone();
        let (ok, errors, seen) = (ok.clone(), errors.clone(), seen_server.clone());
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match request(&connector, addr).await {
                    Ok(serial) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        seen.lock().await.insert(serial);
                    }
                    Err(e) => errors.lock().await.push(e.to_string()),
                }
            }
        }));
    }
    // renewals of the server's and every client's certificate, every 250 ms
    let mut rounds = 0;
    while Instant::now() + Duration::from_millis(250) < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        server_res.renew().await.unwrap();
        for r in &client_res {
            r.renew().await.unwrap();
        }
        rounds += 1;
    }
    for c in clients {
        c.await.unwrap();
    }
    let errors = errors.lock().await.clone();
    assert!(
        errors.is_empty(),
        "{} failed requests: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(
        server.failed.load(Ordering::Relaxed),
        0,
        "failed handshakes on the server"
    );
    let ok = ok.load(Ordering::Relaxed);
    assert!(ok >= CLIENTS as u64, "only {ok} requests");
    assert!(rounds >= 3, "only {rounds} renewal rounds");
    assert_eq!(server_res.renewals(), rounds);
    assert_ne!(server_res.serial(), first_server_serial);
    // renewed certificates were really served, on both sides
    let seen_server = seen_server.lock().await.len();
    assert!(
        seen_server >= 3,
        "clients saw {seen_server} server certificates"
    );
    let seen_clients = server.client_serials.lock().await.len();
    assert!(
        seen_clients > RESOLVERS * 2,
        "server saw {seen_clients} client certificates"
    );
    println!(
        "{ok} mutual-TLS requests, {rounds} renewal rounds, {seen_server} server and {seen_clients} client certificates seen"
    );

    // revoke one client's certificate: refused once the server's verifier
    // has the new CRL, while the others still get through
    let revoked = client_res[0].serial();
    request(&connectors[0], server.addr).await.unwrap();
    p.pki.revoke(&p.app, &revoked).await.unwrap();
    let crl = p.pki.crl(&p.app).await.unwrap();
    assert!(crl.serials.contains(&revoked));
    let before = server.failed.load(Ordering::Relaxed);
    // the old verifier knows nothing of it yet
    request(&connectors[0], server.addr).await.unwrap();
    verifier.replace(
        TrustConfig::new(&ca)
            .with_crl(&crl)
            .client_verifier()
            .unwrap(),
    );
    assert!(request(&connectors[0], server.addr).await.is_err());
    request(&connectors[1], server.addr).await.unwrap();
    assert_eq!(wait_for(&server.failed, before + 1).await, before + 1);
    // a renewed certificate for that client gets through again
    client_res[0].renew().await.unwrap();
    request(&connectors[0], server.addr).await.unwrap();
    server.task.abort();
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused() {
    // the store's clock five hours behind: certificates issued then with a
    // one-hour TTL have expired by real time as well
    let now = real_now();
    let (world, p) = setup(Timestamp::from_secs(now.as_secs() - 5 * 3600)).await;
    let expired = client_resolver(&p.pki, &p.app, 1).await;
    assert!(expired.not_after() < now);
    world.clock.set(now);
    let fresh = client_resolver(&p.pki, &p.app, 2).await;
    let server_res = server_resolver(&p.pki, &p.app).await;
    let ca = p.pki.ca(&p.app).await.unwrap();
    let trust = TrustConfig::new(&ca).with_crl(&p.pki.crl(&p.app).await.unwrap());
    let server = start_server(
        trust
            .server_config(trust.client_verifier().unwrap(), server_res)
            .unwrap(),
    )
    .await;
    let connector = |r: &Arc<CertResolver>| {
        TlsConnector::from(Arc::new(trust.client_config(Some(r.clone())).unwrap()))
    };
    request(&connector(&fresh), server.addr).await.unwrap();
    assert!(request(&connector(&expired), server.addr).await.is_err());
    assert_eq!(wait_for(&server.failed, 1).await, 1);
    // and a client refuses a server whose certificate has expired
    world
        .clock
        .set(Timestamp::from_secs(now.as_secs() - 5 * 3600));
    let old_server = server_resolver(&p.pki, &p.app).await;
    let server2 = start_server(
        trust
            .server_config(trust.client_verifier().unwrap(), old_server)
            .unwrap(),
    )
    .await;
    assert!(request(&connector(&fresh), server2.addr).await.is_err());
    server.task.abort();
    server2.task.abort();
}

#[tokio::test]
async fn the_background_task_renews_on_the_store_clock_and_stops_on_drop() {
    let (world, p) = setup(Timestamp::from_secs(1_800_000_000)).await;
    let r = client_resolver(&p.pki, &p.app, 1).await;
    let first = r.serial();
    assert_eq!(
        r.renew_at(),
        Timestamp::from_secs(1_800_000_000) + HOUR * 2 / 3
    );
    assert!(!r.renew_if_due().await.unwrap());
    let task = r.spawn_renewal();
    // not due: nothing happens
    world.clock.advance(Duration::from_secs(30 * 60));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.serial(), first);
    // due: renewed without anyone calling
    world.clock.advance(Duration::from_secs(11 * 60));
    let mut waited = 0;
    while r.renewals() == 0 && waited < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(r.renewals(), 1);
    let second = r.serial();
    assert_ne!(second, first);
    assert_eq!(
        r.renew_at(),
        Timestamp::from_secs(1_800_000_000 + 41 * 60) + HOUR * 2 / 3
    );
    // dropped: no more renewals
    drop(task);
    world.clock.advance(2 * HOUR);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.serial(), second);
    // the application's own tick still works
    assert!(r.renew_if_due().await.unwrap());
    assert_ne!(r.serial(), second);
}
