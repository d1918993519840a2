//! `signing-key`, `sign`, `verify`, `pubkey`: keys created in the store,
//! signatures that verify until their version is retired, only public keys
//! printed, and the message never in the audit file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::{Env, fails, json, ok};

const MESSAGE: &str = "release v1.2.3 sha256:9f2c-unique-message";

#[test]
fn sign_verify_rotate_retire() {
    let env = Env::init();
    let created = json(&env.store(
        &[
            "signing-key",
            "create",
            "release/ed",
            "--type",
            "ed25519",
            "--json",
        ],
        b"",
    ));
    assert_eq!(created["latest_version"], 1);
    assert_eq!(created["key_type"], "ed25519");
    fails(
        &env.store(
            &["signing-key", "create", "release/ed", "--type", "ed25519"],
            b"",
        ),
        4,
    );
    fails(
        &env.store(
            &["signing-key", "create", "release/x", "--type", "rsa"],
            b"",
        ),
        11,
    );

    let v1 = ok(&env.store(&["sign", "release/ed"], MESSAGE.as_bytes()));
    let v1 = v1.trim().to_owned();
    assert!(v1.starts_with("strongroom:v1:"), "{v1}");
    ok(&env.store(&["verify", "release/ed", &v1], MESSAGE.as_bytes()));
    fails(&env.store(&["verify", "release/ed", &v1], b"tampered"), 31);
    fails(
        &env.store(
            &["verify", "release/ed", "strongroom:v1:!!"],
            MESSAGE.as_bytes(),
        ),
        11,
    );

    let rotated = json(&env.store(&["signing-key", "rotate", "release/ed", "--json"], b""));
    assert_eq!(rotated["latest_version"], 2);
    let v2 = ok(&env.store(&["sign", "release/ed", "--json"], MESSAGE.as_bytes()));
    let v2: serde_json::Value = serde_json::from_str(&v2).unwrap();
    assert_eq!(v2["version"], 2);
    // the old signature still verifies, until version 1 is retired
    ok(&env.store(&["verify", "release/ed", &v1], MESSAGE.as_bytes()));
    ok(&env.store(
        &[
            "signing-key",
            "retire",
            "release/ed",
            "--min-verify-version",
            "2",
        ],
        b"",
    ));
    fails(
        &env.store(&["verify", "release/ed", &v1], MESSAGE.as_bytes()),
        10,
    );
    let v2 = v2["signature"].as_str().unwrap();
    ok(&env.store(&["verify", "release/ed", v2], MESSAGE.as_bytes()));

    let pem = ok(&env.store(&["pubkey", "release/ed"], b""));
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(
        ok(&env.store(&["pubkey", "release/ed", "--raw"], b""))
            .trim()
            .len(),
        64
    );
    fails(
        &env.store(&["pubkey", "release/ed", "--eth-address"], b""),
        11,
    );
    fails(&env.store(&["sign", "nope"], MESSAGE.as_bytes()), 3);

    // the audit file holds the message's HMAC, never the message
    let text = env.audit_text();
    assert!(!text.contains(MESSAGE));
    let signs = env
        .audit_records()
        .into_iter()
        .filter(|r| r.event.operation.as_str() == "sign")
        .collect::<Vec<_>>();
    assert!(!signs.is_empty());
    assert!(
        signs
            .iter()
            .any(|r| r.event.fields.contains_key("message_hmac"))
    );
    env.audit_verifies();
}

#[test]
fn ethereum_keys() {
    let env = Env::init();
    ok(&env.store(
        &["signing-key", "create", "wallet/hot", "--type", "secp256k1"],
        b"",
    ));
    let addr = ok(&env.store(&["pubkey", "wallet/hot", "--eth-address"], b""));
    let addr = addr.trim();
    assert!(addr.starts_with("0x") && addr.len() == 42, "{addr}");

    let personal = ok(&env.store(&["sign", "wallet/hot", "--mode", "eth-personal"], b"hello"));
    let personal = personal.trim();
    assert!(
        personal.starts_with("0x") && personal.len() == 2 + 130,
        "{personal}"
    );
    let v = u8::from_str_radix(&personal[personal.len() - 2..], 16).unwrap();
    assert!(v == 27 || v == 28, "{v}");

    let hash = "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53";
    let tx = ok(&env.store(
        &[
            "sign",
            "wallet/hot",
            "--mode",
            "eth-tx-hash",
            "--chain-id",
            "1",
        ],
        hash.as_bytes(),
    ));
    let tx = tx.trim();
    let v = u8::from_str_radix(&tx[tx.len() - 2..], 16).unwrap();
    assert!(v == 37 || v == 38, "{v}");
    // a chain id only with a transaction hash, and a hash of 32 bytes
    fails(
        &env.store(&["sign", "wallet/hot", "--chain-id", "1"], b"x"),
        2,
    );
    fails(
        &env.store(
            &[
                "sign",
                "wallet/hot",
                "--mode",
                "eth-tx-hash",
                "--chain-id",
                "1",
            ],
            b"0xabcd",
        ),
        2,
    );
    // an Ethereum mode on an Ed25519 key is refused
    ok(&env.store(&["signing-key", "create", "k/ed", "--type", "ed25519"], b""));
    fails(
        &env.store(&["sign", "k/ed", "--mode", "eth-personal"], b"hello"),
        11,
    );
}
