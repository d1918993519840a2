//! `pki`: a root CA whose key stays in the store, a role, certificates
//! issued into files (the key only in a 0600 file), refusals outside the
//! role, revocation onto the CRL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use support::{Env, fails, json, ok, stdout};

/// The DER inside a PEM text's first block.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn create_issue_revoke_and_crl() {
    let env = Env::init();
    let root = ok(&env.store(&["pki", "create-root", "--common-name", "Test Root"], b""));
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----\n"), "{root}");
    // a second root on the same mount is refused
    fails(
        &env.store(&["pki", "create-root", "--common-name", "Other"], b""),
        4,
    );
    ok(&env.store(
        &[
            "pki",
            "role",
            "web",
            "--allow",
            "*.svc.test",
            "--ttl",
            "3600",
            "--max-ttl",
            "7200",
        ],
        b"",
    ));

    let dir = env.path("certs");
    let d = dir.display().to_string();
    let out = env.store(
        &[
            "pki",
            "issue",
            "web",
            "api.svc.test",
            "--out-dir",
            &d,
            "--json",
        ],
        b"",
    );
    let issued = json(&out);
    let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(
        std::fs::metadata(dir.join("key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(!stdout(&out).contains(key.lines().nth(1).unwrap()));
    assert!(!env.audit_text().contains(key.lines().nth(1).unwrap()));
    let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    assert!(contains(&der(&cert), b"api.svc.test"));
    let chain = std::fs::read_to_string(dir.join("chain.pem")).unwrap();
    assert_eq!(der(&chain), der(&root));
    assert_eq!(ok(&env.store(&["pki", "ca"], b"")), root);

    // the files are never replaced
    fails(
        &env.store(&["pki", "issue", "web", "b.svc.test", "--out-dir", &d], b""),
        12,
    );
    // outside the role: refused, nothing issued
    let other = env.path("other").display().to_string();
    fails(
        &env.store(
            &["pki", "issue", "web", "db.example.com", "--out-dir", &other],
            b"",
        ),
        30,
    );
    fails(
        &env.store(
            &[
                "pki",
                "issue",
                "web",
                "a.svc.test",
                "--ttl",
                "9999",
                "--out-dir",
                &other,
            ],
            b"",
        ),
        30,
    );
    fails(
        &env.store(
            &["pki", "issue", "nope", "a.svc.test", "--out-dir", &other],
            b"",
        ),
        3,
    );

    let serial = issued["serial"].as_str().unwrap().to_owned();
    let serial_bytes = hex_bytes(&serial);
    let before = ok(&env.store(&["pki", "crl"], b""));
    assert!(!contains(&der(&before), &serial_bytes));
    ok(&env.store(&["pki", "revoke", &serial], b""));
    let after = ok(&env.store(&["pki", "crl"], b""));
    assert!(after.starts_with("-----BEGIN X509 CRL-----"));
    assert!(contains(&der(&after), &serial_bytes));
    // the certificate's lease is gone
    let lease = issued["lease_id"].as_str().unwrap();
    fails(&env.store(&["lease", "lookup", lease], b""), 3);
    fails(&env.store(&["pki", "revoke", "00ff"], b""), 3);
    env.audit_verifies();
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
