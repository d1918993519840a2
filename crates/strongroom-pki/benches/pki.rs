//! The internal CA's costs, each against a baseline doing the same work
//! without Strongroom, interleaved round by round in one process (the
//! order alternates each round); prints the median of the paired
//! per-round ratios with min-max, and the load average.
//!
//! - **Issue**: `Pki::issue` through a principal's handle (role check,
//!   policy check, two audit records, key generation, signing, a lease and
//!   a certificate record written through the barrier) against `rcgen`
//!   alone generating the same key type and signing the same certificate.
//! - **Handshake**: a full TLS 1.3 handshake in memory (rustls client and
//!   server, no TCP, no resumption) with the server's certificate from a
//!   `CertResolver` against the same certificate and key loaded with
//!   `with_single_cert`.
//!
//! `cargo bench -p strongroom-pki --bench pki`
//! (`PKI_BENCH_ROUNDS`, `PKI_BENCH_ISSUES`, `PKI_BENCH_HANDSHAKES` to change
//! the run). Saves `target/strongroom-bench/pki.json` like the benches in
//! `benches/`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConnection, ServerConnection};
use strongroom::audit::{AuditError, AuditRecord, AuditSink};
use strongroom::lease::LeaseConfig;
use strongroom::policy::{Policy, Principal};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Handle, Options, SecretBytes, Strongroom};
use strongroom_pki::{CaSpec, CertResolver, IssueRequest, KeyType, Pki, Role, TrustConfig, Usage};

/// Accepts every record and keeps none (the audit's own cost without I/O).
#[derive(Debug)]
struct DiscardSink;

#[async_trait::async_trait]
impl AuditSink for DiscardSink {
    fn name(&self) -> &str {
        "discard"
    }
    async fn write(&self, _record: &AuditRecord, line: &str) -> Result<(), AuditError> {
        black_box(line);
        Ok(())
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A store, a mount with a P-256 root and role `web`, and a principal
/// allowed to lease from it.
async fn setup() -> (Pki, Handle, Handle) {
    let p = SoftwareProtector::from_key(SecretBytes::new(vec![1; 32])).expect("key");
    let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &p, Options::default())
        .await
        .expect("init");
    let audit = Arc::new(
        sr.open_audit_log(vec![Arc::new(DiscardSink)], None)
            .await
            .expect("log"),
    );
    let door = sr.dangerous("bench", &audit).await.expect("door");
    let manager = Arc::new(
        door.lease_manager(sr.clock().clone(), LeaseConfig::default())
            .expect("manager"),
    );
    let pki = Pki::new(&door, manager, "bench").expect("mount");
    let admin = door.handle().clone();
    pki.create_root(
        &admin,
        CaSpec::new("Bench Root").key_type(KeyType::EcdsaP256),
    )
    .await
    .expect("root");
    let role = Role::new(["*.svc.example.com"]).allow_localhost(true);
    pki.put_role(&admin, "web", role).await.expect("role");
    let policy = Policy::from_toml_str(
        "name = \"app\"\n[[path]]\npattern = \"pki/bench/issue/web\"\ncapabilities = [\"lease\"]\n",
    )
    .expect("policy");
    let app = sr.as_principal(Principal::new("app", [&policy]), audit);
    (pki, admin, app)
}

/// What `Pki::issue` does to make a certificate, with rcgen alone.
fn rcgen_issue(issuer: &Issuer<'static, KeyPair>, n: usize) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "a.svc.example.com");
    params.distinguished_name = dn;
    params.serial_number = Some(rcgen::SerialNumber::from(n as u64 + 1));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = vec![SanType::DnsName(
        "a.svc.example.com".try_into().expect("name"),
    )];
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.der().to_vec(), key.serialize_der())
}

fn rcgen_issuer() -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Issuer::new(params, key)
}

/// One full handshake between `client` and `server` in memory.
fn handshake(client: &Arc<rustls::ClientConfig>, server: &Arc<rustls::ServerConfig>) {
    let name = ServerName::try_from("localhost").expect("name");
    let mut c = ClientConnection::new(client.clone(), name).expect("client");
    let mut s = ServerConnection::new(server.clone()).expect("server");
    let mut buf = Vec::with_capacity(8192);
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("client write");
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).expect("server read");
        }
        s.process_new_packets().expect("server handshake");
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).expect("server write");
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).expect("client read");
        }
        c.process_new_packets().expect("client handshake");
    }
    black_box((&c, &s));
}

struct Figure {
    name: &'static str,
    api: &'static str,
    baseline: &'static str,
    ratios: Vec<f64>,
}

impl Figure {
    fn line(&self) -> String {
        let lo = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .ratios
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        format!(
            "{}: {:.2}x (min {lo:.2}x, max {hi:.2}x, {} rounds)",
            self.name,
            median(self.ratios.clone()),
            self.ratios.len()
        )
    }

    fn json(&self) -> String {
        let num = |x: f64| {
            if x.is_finite() {
                format!("{x}")
            } else {
                "null".to_owned()
            }
        };
        let lo = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .ratios
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        format!(
            "{{\"name\": {:?}, \"api\": {:?}, \"baseline\": {:?}, \"median\": {}, \"min\": {}, \"max\": {}, \"rounds\": {}, \"target\": null}}",
            self.name,
            self.api,
            self.baseline,
            num(median(self.ratios.clone())),
            num(lo),
            num(hi),
            self.ratios.len()
        )
    }
}

fn save(load_start: &str, figures: &[Figure]) {
    use std::path::PathBuf;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("strongroom-bench");
    let rows: Vec<String> = figures.iter().map(Figure::json).collect();
    let body = format!(
        "{{\"bench\": \"pki\", \"load_start\": {load_start:?}, \"load_end\": {:?}, \"figures\": [\n  {}\n]}}\n",
        load_average(),
        rows.join(",\n  ")
    );
    let file = dir.join("pki.json");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, body)) {
        Ok(()) => println!("results: {}", file.display()),
        Err(e) => eprintln!("could not save {}: {e}", file.display()),
    }
}

fn main() {
    let rounds = env_or("PKI_BENCH_ROUNDS", 21).max(1);
    let issues = env_or("PKI_BENCH_ISSUES", 200).max(1);
    let handshakes = env_or("PKI_BENCH_HANDSHAKES", 200).max(1);
    let load_start = load_average();
    println!(
        "pki bench: {rounds} interleaved rounds of {issues} issues and {handshakes} handshakes (ECDSA P-256); load average at start: {load_start}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (pki, admin, app) = rt.block_on(setup());
    let issuer = rcgen_issuer();
    let request = IssueRequest::new(["a.svc.example.com"]).key_type(KeyType::EcdsaP256);

    // the handshake's two servers: the resolver's certificate, and the same
    // certificate and key loaded statically
    let (resolver, trust) = rt.block_on(async {
        let req = IssueRequest::new(["localhost"])
            .key_type(KeyType::EcdsaP256)
            .usages([Usage::Server]);
        let resolver = CertResolver::new(&pki, &app, "web", req)
            .await
            .expect("resolver");
        let ca = pki.ca(&admin).await.expect("ca");
        (resolver, ca)
    });
    let trust = TrustConfig::new(&trust);
    let provider = trust.provider().clone();
    let with_resolver = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    let static_issued = rt.block_on(
        pki.issue(
            &app,
            "web",
            IssueRequest::new(["localhost"])
                .key_type(KeyType::EcdsaP256)
                .usages([Usage::Server]),
        ),
    );
    let static_issued = static_issued.expect("issue");
    let with_static = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            static_issued.tls_chain(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                static_issued.private_key().expose_secret().to_vec(),
            )),
        )
        .expect("static cert");
    let servers = [Arc::new(with_static), Arc::new(with_resolver)];
    let mut client = trust.client_config(None).expect("client");
    client.resumption = rustls::client::Resumption::disabled();
    let client = Arc::new(client);

    let mut issue_ns: [Vec<f64>; 2] = Default::default();
    let mut hs_ns: [Vec<f64>; 2] = Default::default();
    let mut serial = 0usize;
    for round in 0..rounds {
        for k in 0..2 {
            let variant = (round + k) % 2;
            let start = Instant::now();
            if variant == 0 {
                for _ in 0..issues {
                    serial += 1;
                    black_box(rcgen_issue(&issuer, serial));
                }
            } else {
                rt.block_on(async {
                    for _ in 0..issues {
                        black_box(
                            pki.issue(&app, "web", request.clone())
                                .await
                                .expect("issue"),
                        );
                    }
                });
            }
            issue_ns[variant].push(start.elapsed().as_nanos() as f64 / issues as f64);
        }
        for k in 0..2 {
            let variant = (round + k) % 2;
            let start = Instant::now();
            for _ in 0..handshakes {
                handshake(&client, &servers[variant]);
            }
            hs_ns[variant].push(start.elapsed().as_nanos() as f64 / handshakes as f64);
        }
    }
    let per_sec = |ns: &[f64]| 1e9 / median(ns.to_vec());
    println!(
        "{:<44} median {:>8.0} certificates/s",
        "rcgen alone (key + sign)",
        per_sec(&issue_ns[0])
    );
    println!(
        "{:<44} median {:>8.0} certificates/s",
        "Pki::issue through a handle",
        per_sec(&issue_ns[1])
    );
    println!(
        "{:<44} median {:>8.1} us/handshake",
        "handshake, with_single_cert",
        median(hs_ns[0].clone()) / 1e3
    );
    println!(
        "{:<44} median {:>8.1} us/handshake",
        "handshake, CertResolver",
        median(hs_ns[1].clone()) / 1e3
    );
    let ratio = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x / y).collect::<Vec<_>>();
    let figures = [
        Figure {
            name: "issue through the handle / rcgen alone (time per certificate)",
            api: "Pki::issue",
            baseline: "rcgen KeyPair::generate_for + CertificateParams::signed_by",
            ratios: ratio(&issue_ns[1], &issue_ns[0]),
        },
        Figure {
            name: "handshake with CertResolver / with_single_cert",
            api: "CertResolver as ResolvesServerCert",
            baseline: "ServerConfig::with_single_cert",
            ratios: ratio(&hs_ns[1], &hs_ns[0]),
        },
    ];
    for f in &figures {
        println!("{}", f.line());
    }
    save(&load_start, &figures);
    println!("load average at end: {}", load_average());
}
