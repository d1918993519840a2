//! Issuing through a principal's handle: role enforcement, audit, the
//! certificate's contents, chain verification, CA creation races and
//! tampered records.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use strongroom::audit::{Operation, Outcome};
use strongroom::clock::Timestamp;
use strongroom_pki::{CaKind, CaSpec, IssueRequest, KeyType, PkiError, Role, Usage};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use common::*;

fn unix(t: Timestamp) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(t.as_secs()))
}

#[tokio::test]
async fn issues_a_certificate_the_role_allows_and_it_verifies() {
    let start = Timestamp::from_secs(1_800_000_000);
    let (world, p) = World::new(start).await;
    let ca = p
        .pki
        .create_root(&p.admin, CaSpec::new("Strongroom Test Root"))
        .await
        .unwrap();
    assert_eq!(ca.kind, CaKind::Root);
    p.pki.put_role(&p.admin, "web", web_role()).await.unwrap();
    world.clock.advance(Duration::from_secs(10));
    let now = start + Duration::from_secs(10);

    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let issued = p
        .pki
        .issue(
            &p.app,
            "web",
            IssueRequest::new(["api.example.com", "a.svc.example.com"])
                .ip(ip)
                .key_type(KeyType::EcdsaP256)
                .usages([Usage::Server])
                .ttl(2 * HOUR),
        )
        .await
        .unwrap();
    assert_eq!(issued.not_before, now);
    assert_eq!(issued.not_after, now + 2 * HOUR);
    assert!(!format!("{issued:?}").contains(&hex_of(issued.private_key().expose_secret())));
    assert!(format!("{issued:?}").contains("redacted"));

    let (_, cert) = X509Certificate::from_der(&issued.certificate).unwrap();
    let (_, ca_cert) = X509Certificate::from_der(&ca.certificate).unwrap();
    assert_eq!(cert.validity().not_before.timestamp() as u64, now.as_secs());
    assert_eq!(
        cert.validity().not_after.timestamp() as u64,
        (now + 2 * HOUR).as_secs()
    );
    assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
    assert_eq!(cert.raw_serial(), issued.serial.as_bytes());
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    let mut dns = vec![];
    let mut ips = vec![];
    for n in &sans.value.general_names {
        match n {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) => ips.push(b.to_vec()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(dns, ["api.example.com", "a.svc.example.com"]);
    assert_eq!(ips, [vec![10, 1, 2, 3]]);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
    let ca_ku = ca_cert.key_usage().unwrap().unwrap().value;
    assert!(ca_ku.key_cert_sign() && ca_ku.crl_sign());

    // The chain verifies with webpki (through rustls) at the clock's time,
    // for a name in the certificate, and not for another or after expiry.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.root().clone()).unwrap();
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
    let name = ServerName::try_from("api.example.com").unwrap();
    verifier
        .verify_server_cert(&issued.certificate, &[], &name, &[], unix(now))
        .unwrap();
    let ip_name = ServerName::try_from("10.1.2.3").unwrap();
    verifier
        .verify_server_cert(&issued.certificate, &[], &ip_name, &[], unix(now))
        .unwrap();
    let other = ServerName::try_from("www.example.com").unwrap();
    assert!(
        verifier
            .verify_server_cert(&issued.certificate, &[], &other, &[], unix(now))
            .is_err()
    );
    let later = now + 3 * HOUR;
    assert!(
        verifier
            .verify_server_cert(&issued.certificate, &[], &name, &[], unix(later))
            .is_err()
    );

    // The lease stands for the certificate's whole validity.
    let lease = p.manager.lookup(issued.lease_id).await.unwrap();
    assert_eq!(lease.path(), "pki/int/issue/web");
    assert_eq!(lease.engine(), "pki-int");
    assert_eq!(lease.expires_at(), issued.not_after);
    assert!(!lease.renewable());

    // No audit record holds the private key, and the issue is recorded
    // with its lease id.
    let key_hex = hex_of(issued.private_key().expose_secret());
    for line in p.sink.lines() {
        assert!(!line.contains(&key_hex));
    }
    let records = p.sink.records().unwrap();
    assert!(records.iter().any(|r| r.event.principal == "app"
        && r.event.operation == Operation::LeaseIssue
        && r.event.outcome == Outcome::Allowed
        && r.event.lease_id.as_deref() == Some(issued.lease_id.to_string().as_str())));
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn the_role_decides_names_ips_ttls_key_types_and_usages() {
    let (_world, p) = World::new(Timestamp::from_secs(1_800_000_000)).await;
    p.pki
        .create_root(&p.admin, CaSpec::new("Root").key_type(KeyType::EcdsaP256))
        .await
        .unwrap();
    let strict = Role::new(["api.example.com", "*.svc.example.com"])
        .key_types([KeyType::Ed25519])
        .usages([Usage::Client])
        .ttl(HOUR, 2 * HOUR);
    p.pki.put_role(&p.admin, "web", strict).await.unwrap();
    let issue = |req: IssueRequest| {
        let p = &p;
        async move { p.pki.issue(&p.app, "web", req).await }
    };
    let kind = |r: Result<_, PkiError>| r.map(|_| ()).unwrap_err().kind();

    // names: exact, one label under the pattern; not deeper, not the
    // domain itself, not localhost, not a wildcard
    issue(IssueRequest::new(["api.example.com"])).await.unwrap();
    let ok = issue(IssueRequest::new(["x.svc.example.com"]))
        .await
        .unwrap();
    assert_eq!(ok.key_type, KeyType::Ed25519);
    for name in [
        "a.b.svc.example.com",
        "svc.example.com",
        "www.example.com",
        "localhost",
        "*.svc.example.com",
    ] {
        let r = issue(IssueRequest::new([name])).await;
        assert_eq!(kind(r), "pki_name_not_allowed", "{name}");
    }
    // IP SANs
    let r = issue(IssueRequest::new(["api.example.com"]).ip("127.0.0.1".parse().unwrap())).await;
    assert_eq!(kind(r), "pki_name_not_allowed");
    // TTLs
    let r =
        issue(IssueRequest::new(["api.example.com"]).ttl(2 * HOUR + Duration::from_secs(1))).await;
    assert!(matches!(
        r.as_ref().map(|_| ()).unwrap_err(),
        PkiError::TtlOverMax { .. }
    ));
    let c = issue(IssueRequest::new(["api.example.com"]).ttl(2 * HOUR))
        .await
        .unwrap();
    assert_eq!(c.not_after, c.not_before + 2 * HOUR);
    // key types and usages
    let r = issue(IssueRequest::new(["api.example.com"]).key_type(KeyType::EcdsaP256)).await;
    assert_eq!(kind(r), "pki_key_type_not_allowed");
    let r = issue(IssueRequest::new(["api.example.com"]).usages([Usage::Server])).await;
    assert_eq!(kind(r), "pki_usage_not_allowed");
    // an unknown role (the principal may lease there) and a bad role name
    let r = p
        .pki
        .issue(&p.admin, "nope", IssueRequest::new(["api.example.com"]))
        .await;
    assert_eq!(kind(r), "pki_unknown_role");
    let r = p
        .pki
        .issue(&p.admin, "No/pe", IssueRequest::new(["a"]))
        .await;
    assert_eq!(kind(r), "pki_invalid_name");

    // every refusal by the role was audited as an error after its intent
    // (the malformed role name names no path and is refused before)
    let records = p.sink.records().unwrap();
    let errors = records
        .iter()
        .filter(|r| {
            r.event.operation == Operation::LeaseIssue
                && matches!(&r.event.outcome, Outcome::Error { kind } if kind == "invalid_argument")
        })
        .count();
    assert_eq!(errors, 10);
}

#[tokio::test]
async fn policy_denials_are_audited_and_nothing_is_issued() {
    let (_world, p) = World::new(Timestamp::from_secs(1_800_000_000)).await;
    // the app may not create a CA or change roles
    let r = p.pki.create_root(&p.app, CaSpec::new("Root")).await;
    assert_eq!(r.unwrap_err().kind(), "policy_denied");
    p.pki
        .create_root(&p.admin, CaSpec::new("Root"))
        .await
        .unwrap();
    let r = p.pki.put_role(&p.app, "web", web_role()).await;
    assert_eq!(r.unwrap_err().kind(), "policy_denied");
    p.pki.put_role(&p.admin, "web", web_role()).await.unwrap();
    p.pki.put_role(&p.admin, "admin", web_role()).await.unwrap();
    // the app may lease from "web" only
    let r = p
        .pki
        .issue(&p.app, "admin", IssueRequest::new(["api.example.com"]))
        .await;
    assert_eq!(r.unwrap_err().kind(), "policy_denied");
    assert!(p.manager.list("pki/int/issue").await.unwrap().is_empty());

    let records = p.sink.records().unwrap();
    let denied: Vec<_> = records
        .iter()
        .filter(|r| r.event.outcome == Outcome::Denied)
        .map(|r| (r.event.operation, r.event.path.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        denied,
        [
            (Operation::Write, "pki/int/ca".to_owned()),
            (Operation::Write, "pki/int/role/web".to_owned()),
            (Operation::LeaseIssue, "pki/int/issue/admin".to_owned()),
        ]
    );
}

#[tokio::test]
async fn an_intermediate_is_signed_by_a_root_of_the_same_store() {
    let start = Timestamp::from_secs(1_800_000_000);
    let (_world, p) = World::new(start).await;
    let root_mount = p.mount("root");
    let root = root_mount
        .create_root(&p.admin, CaSpec::new("Root").key_type(KeyType::EcdsaP256))
        .await
        .unwrap();
    // it may not outlive its parent
    let r = p
        .pki
        .create_intermediate(
            &p.admin,
            CaSpec::new("Int").ttl(Duration::from_secs(20 * 365 * 24 * 3600)),
            &root_mount,
        )
        .await;
    assert_eq!(r.unwrap_err().kind(), "pki_outlives_ca");
    let int = p
        .pki
        .create_intermediate(&p.admin, CaSpec::new("Int").ttl(100 * HOUR), &root_mount)
        .await
        .unwrap();
    assert_eq!(int.kind, CaKind::Intermediate);
    assert_eq!(int.parents, vec![root.certificate.clone()]);
    assert_eq!(int.root(), &root.certificate);
    let (_, int_cert) = X509Certificate::from_der(&int.certificate).unwrap();
    let (_, root_cert) = X509Certificate::from_der(&root.certificate).unwrap();
    assert_eq!(int_cert.issuer().as_raw(), root_cert.subject().as_raw());
    assert!(int_cert.basic_constraints().unwrap().unwrap().value.ca);

    p.pki.put_role(&p.admin, "web", web_role()).await.unwrap();
    let leaf = p
        .pki
        .issue(&p.app, "web", IssueRequest::new(["api.example.com"]))
        .await
        .unwrap();
    assert_eq!(
        leaf.ca_chain,
        vec![int.certificate.clone(), root.certificate.clone()]
    );
    assert_eq!(
        leaf.tls_chain(),
        vec![leaf.certificate.clone(), int.certificate.clone()]
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.certificate.clone()).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let name = ServerName::try_from("api.example.com").unwrap();
    verifier
        .verify_server_cert(
            &leaf.certificate,
            std::slice::from_ref(&int.certificate),
            &name,
            &[],
            unix(start),
        )
        .unwrap();
    // without the intermediate the chain does not reach the root
    assert!(
        verifier
            .verify_server_cert(&leaf.certificate, &[], &name, &[], unix(start))
            .is_err()
    );
}

#[tokio::test]
async fn two_processes_creating_one_ca_get_one_ca_and_a_typed_error() {
    let (world, a) = World::new(Timestamp::from_secs(1_800_000_000)).await;
    let b = world.join().await;
    for round in 0..5 {
        let mount = format!("race{round}");
        let (pa, pb) = (a.mount(&mount), b.mount(&mount));
        let (ra, rb) = tokio::join!(
            pa.create_root(&a.admin, CaSpec::new("A")),
            pb.create_root(&b.admin, CaSpec::new("B")),
        );
        let (winner, loser) = match (ra, rb) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("expected one winner, got {other:?}"),
        };
        assert!(matches!(loser, PkiError::CaExists { .. }), "{loser}");
        // both processes see the winner's CA, and both issue under it
        assert_eq!(pa.ca(&a.admin).await.unwrap(), winner);
        assert_eq!(pb.ca(&b.admin).await.unwrap(), winner);
        pa.put_role(&a.admin, "web", web_role()).await.unwrap();
        let from_b = pb
            .issue(&b.app, "web", IssueRequest::new(["api.example.com"]))
            .await
            .unwrap();
        let (_, cert) = X509Certificate::from_der(&from_b.certificate).unwrap();
        let (_, ca) = X509Certificate::from_der(&winner.certificate).unwrap();
        assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
    }
    // a second creation later is refused too
    a.pki
        .create_root(&a.admin, CaSpec::new("first"))
        .await
        .unwrap();
    let again = b.pki.create_root(&b.admin, CaSpec::new("again")).await;
    assert_eq!(again.unwrap_err().kind(), "pki_ca_exists");
}

#[tokio::test]
async fn tampered_records_are_typed_errors_not_panics() {
    let (world, p) = World::new(Timestamp::from_secs(1_800_000_000)).await;
    p.pki
        .create_root(&p.admin, CaSpec::new("Root"))
        .await
        .unwrap();
    p.pki.put_role(&p.admin, "web", web_role()).await.unwrap();
    // flip one byte of the sealed role record
    let key = "pki/int/role/web";
    let mut raw = world.storage.get(key).await.unwrap().unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    world.storage.put(key, &raw).await.unwrap();
    let r = p
        .pki
        .issue(&p.app, "web", IssueRequest::new(["api.example.com"]))
        .await;
    assert!(matches!(r, Err(PkiError::BadRecord { .. })), "{r:?}");
    // a record moved to another key fails too
    let ca = world.storage.get("pki/int/ca").await.unwrap().unwrap();
    world.storage.put("pki/other/ca", &ca).await.unwrap();
    let r = p.mount("other").ca(&p.admin).await;
    assert_eq!(r.unwrap_err().kind(), "pki_bad_record");
    // and the CA key, loaded by a fresh process, is checked as well
    let q = world.join().await;
    let key_rec = "s/pki/int/ca-key";
    let mut raw = world.storage.get(key_rec).await.unwrap().unwrap();
    let mid = raw.len() / 2;
    raw[mid] ^= 0x40;
    world.storage.put(key_rec, &raw).await.unwrap();
    q.pki.put_role(&q.admin, "web", web_role()).await.unwrap();
    let r = q
        .pki
        .issue(&q.app, "web", IssueRequest::new(["api.example.com"]))
        .await;
    assert_eq!(r.map(|_| ()).unwrap_err().kind(), "pki_bad_record");
}
