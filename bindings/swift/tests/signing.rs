//! Signatures made through the FFI's `SigningHandle` verify with `ring`
//! against the public key the FFI hands out (an implementation other than
//! the engine's own `verify`), and not for another message.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey, VerificationAlgorithm};
use strongroom_ffi::{Policy, SoftwareProtector, Storage, Strongroom};

const POLICY: &str = r#"
name = "signer"
[[path]]
pattern = "release/*"
capabilities = ["create", "read", "sign"]
"#;

fn audit_path() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "strongroom-ffi-signing-{}-{nanos}.jsonl",
        std::process::id()
    ))
}

#[tokio::test]
async fn signatures_verify_with_ring() {
    let room = Strongroom::create(
        Storage::memory(),
        SoftwareProtector::from_key(vec![7; 32]).unwrap(),
    )
    .await
    .unwrap();
    let path = audit_path();
    let audit = room
        .open_audit_log(path.display().to_string(), false)
        .await
        .unwrap();
    let policy = Policy::from_toml(POLICY.into()).unwrap();
    let signer = room
        .as_principal("ci".into(), vec![policy], audit)
        .signing();

    let algorithms: [(&str, &'static dyn VerificationAlgorithm); 2] = [
        ("ed25519", &ED25519),
        ("ecdsa_p256", &ECDSA_P256_SHA256_ASN1),
    ];
    let msg = b"artifact bytes";
    for (key_type, alg) in algorithms {
        let name = format!("release/{key_type}");
        signer
            .create_key(name.clone(), key_type.into(), None)
            .await
            .unwrap();
        let sig = signer.sign(name.clone(), msg.to_vec()).await.unwrap();
        let public = signer.public_key(name.clone(), None).await.unwrap();
        assert_eq!(public.key_type, key_type);
        let key = UnparsedPublicKey::new(alg, &public.raw);
        key.verify(msg, &sig.bytes)
            .unwrap_or_else(|_| panic!("{key_type}: ring rejects the signature"));
        assert!(
            key.verify(b"artifact bytez", &sig.bytes).is_err(),
            "{key_type}"
        );
    }
    let _ = std::fs::remove_file(path);
}
