//! Revocation through leases, the signed CRL, its numbers, pruning, and
//! revocations from two processes at once.

mod common;

use std::time::Duration;

use strongroom::audit::{Operation, Outcome};
use strongroom::clock::Timestamp;
use strongroom_pki::{CaCertificate, CaSpec, Crl, IssueRequest, KeyType, Serial};
use x509_parser::prelude::{FromDer, X509Certificate};

use common::*;

/// Verifies the CRL's signature with the CA's public key (ring), and
/// returns its number and serials as parsed from the DER.
fn verify_crl(crl_der: &[u8], ca: &CaCertificate) -> Result<(String, Vec<Serial>), String> {
    let (_, crl) = x509_parser::parse_x509_crl(crl_der).map_err(|e| e.to_string())?;
    let (_, ca_cert) = X509Certificate::from_der(&ca.certificate).map_err(|e| e.to_string())?;
    let alg: &dyn ring::signature::VerificationAlgorithm = match ca.key_type {
        KeyType::Ed25519 => &ring::signature::ED25519,
        KeyType::EcdsaP256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
        other => return Err(format!("no verifier for {other}")),
    };
    let key = ring::signature::UnparsedPublicKey::new(
        alg,
        ca_cert.public_key().subject_public_key.data.to_vec(),
    );
    key.verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
        .map_err(|_| "bad signature".to_owned())?;
    if crl.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err("issuer is not the CA".into());
    }
    let number = crl.crl_number().ok_or("no CRL number")?.to_string();
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| Serial::from_bytes(r.raw_serial()))
        .collect();
    Ok((number, serials))
}

fn sorted(mut v: Vec<Serial>) -> Vec<Serial> {
    v.sort();
    v
}

#[tokio::test]
async fn a_revoked_lease_puts_the_serial_on_a_signed_crl_with_growing_numbers() {
    for key_type in [KeyType::Ed25519, KeyType::EcdsaP256] {
        let start = Timestamp::from_secs(1_800_000_000);
        let (world, p) = World::new(start).await;
        let ca = p
            .pki
            .create_root(&p.admin, CaSpec::new("Root").key_type(key_type))
            .await
            .unwrap();
        p.pki.put_role(&p.admin, "web", web_role()).await.unwrap();
        let issue = || {
            p.pki
                .issue(&p.app, "web", IssueRequest::new(["api.example.com"]))
        };
        let (a, b, c) = (
            issue().await.unwrap(),
            issue().await.unwrap(),
            issue().await.unwrap(),
        );

        let empty = p.pki.crl(&p.app).await.unwrap();
        assert_eq!(empty.number, 1);
        assert!(empty.serials.is_empty());
        assert_eq!(
            verify_crl(&empty.der, &ca).unwrap(),
            ("1".to_owned(), vec![])
        );
        assert_eq!(
            empty.next_update,
            empty.this_update + Duration::from_secs(24 * 3600)
        );

        // revoke by serial (through the lease) ...
        p.pki.revoke(&p.app, &a.serial).await.unwrap();
        let one = p.pki.crl(&p.app).await.unwrap();
        assert_eq!(one.number, 2);
        assert_eq!(one.serials, vec![a.serial.clone()]);
        assert_eq!(
            verify_crl(&one.der, &ca).unwrap(),
            ("2".to_owned(), vec![a.serial.clone()])
        );
        // ... and by lease id, through the principal's lease handle
        p.app.leases(&p.manager).revoke(b.lease_id).await.unwrap();
        let two = p.pki.crl(&p.app).await.unwrap();
        assert_eq!(two.number, 3);
        assert_eq!(
            sorted(two.serials.clone()),
            sorted(vec![a.serial.clone(), b.serial.clone()])
        );
        assert_eq!(verify_crl(&two.der, &ca).unwrap().0, "3");
        assert!(!two.serials.contains(&c.serial));

        // a tampered CRL fails verification
        let mut bad = two.der.to_vec();
        let at = bad.len() / 3;
        bad[at] ^= 1;
        assert!(verify_crl(&bad, &ca).is_err());

        // nothing changed: the same CRL; half its lifetime later: a new one
        assert_eq!(p.pki.crl(&p.app).await.unwrap(), two);
        world.clock.advance(Duration::from_secs(12 * 3600 + 1));
        // (the certificates have expired by now: a new CRL leaves them out)
        let later = p.pki.crl(&p.app).await.unwrap();
        assert_eq!(later.number, 4);
        assert!(later.serials.is_empty());
        assert_eq!(
            verify_crl(&later.der, &ca).unwrap(),
            ("4".to_owned(), vec![])
        );

        // revoking again, or an unknown serial, is a typed error
        let again = p.pki.revoke(&p.app, &a.serial).await.unwrap_err();
        assert_eq!(again.kind(), "pki_unknown_certificate");

        // the revocations are audited as lease revocations by the app
        let records = p.sink.records().unwrap();
        let revokes = records
            .iter()
            .filter(|r| {
                r.event.principal == "app"
                    && r.event.operation == Operation::LeaseRevoke
                    && r.event.outcome == Outcome::Allowed
            })
            .count();
        assert_eq!(revokes, 4, "intent and result, twice");
    }
}

#[tokio::test]
async fn revoking_needs_lease_on_the_issuing_path() {
    let (_world, p) = World::new(Timestamp::from_secs(1_800_000_000)).await;
    p.pki
        .create_root(&p.admin, CaSpec::new("Root"))
        .await
        .unwrap();
    p.pki.put_role(&p.admin, "admin", web_role()).await.unwrap();
    let c = p
        .pki
        .issue(&p.admin, "admin", IssueRequest::new(["api.example.com"]))
        .await
        .unwrap();
    let r = p.pki.revoke(&p.app, &c.serial).await;
    assert_eq!(r.unwrap_err().kind(), "policy_denied");
    assert!(p.pki.crl(&p.app).await.unwrap().serials.is_empty());
    p.pki.revoke(&p.admin, &c.serial).await.unwrap();
    assert_eq!(p.pki.crl(&p.app).await.unwrap().serials, vec![c.serial]);
}

#[tokio::test]
async fn expiry_is_the_backstop_and_adds_nothing_to_the_crl() {
    let start = Timestamp::from_secs(1_800_000_000);
    let (world, p) = World::new(start).await;
    p.pki
        .create_root(&p.admin, CaSpec::new("Root"))
        .await
        .unwrap();
    p.pki.put_role(&p.admin, "web", web_role()).await.unwrap();
    let short = p
        .pki
        .issue(
            &p.app,
            "web",
            IssueRequest::new(["api.example.com"]).ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let long = p
        .pki
        .issue(&p.app, "web", IssueRequest::new(["api.example.com"]))
        .await
        .unwrap();
    // revoked while valid: listed until its own expiry, then pruned
    p.pki.revoke(&p.app, &long.serial).await.unwrap();
    world.clock.advance(Duration::from_secs(61));
    let report = p.manager.tick().await.unwrap();
    assert_eq!(report.revoked, 1, "{report:?}");
    assert!(p.manager.lookup(short.lease_id).await.is_err());
    let crl = p.pki.crl(&p.app).await.unwrap();
    assert_eq!(crl.serials, vec![long.serial.clone()]);
    // the expired certificate's record is gone
    assert_eq!(
        p.pki
            .revoke(&p.app, &short.serial)
            .await
            .unwrap_err()
            .kind(),
        "pki_unknown_certificate"
    );
    world.clock.advance(HOUR);
    let crl = p.pki.crl(&p.app).await.unwrap();
    assert!(crl.serials.is_empty());
}

#[tokio::test]
async fn two_processes_revoking_at_once_lose_no_serial() {
    let (world, a) = World::new(Timestamp::from_secs(1_800_000_000)).await;
    let b = world.join().await;
    a.pki
        .create_root(&a.admin, CaSpec::new("Root"))
        .await
        .unwrap();
    a.pki.put_role(&a.admin, "web", web_role()).await.unwrap();
    let mut serials = vec![];
    for i in 0..16 {
        let p = if i % 2 == 0 { &a } else { &b };
        let c = p
            .pki
            .issue(&p.app, "web", IssueRequest::new(["api.example.com"]))
            .await
            .unwrap();
        serials.push(c.serial);
    }
    let (ra, rb) = tokio::join!(
        async {
            for s in serials.iter().step_by(2) {
                a.pki.revoke(&a.app, s).await.unwrap();
            }
        },
        async {
            for s in serials.iter().skip(1).step_by(2) {
                b.pki.revoke(&b.app, s).await.unwrap();
            }
        },
    );
    let _ = (ra, rb);
    let from_a = a.pki.crl(&a.app).await.unwrap();
    let from_b = b.pki.crl(&b.app).await.unwrap();
    assert_eq!(from_a, from_b, "one CRL per number");
    assert_eq!(sorted(from_a.serials.clone()), sorted(serials));
    // concurrent CRL requests from both processes agree on one number each
    let (x, y): (Result<Crl, _>, Result<Crl, _>) =
        tokio::join!(a.pki.crl(&a.app), b.pki.crl(&b.app));
    assert_eq!(x.unwrap().number, y.unwrap().number);
}
