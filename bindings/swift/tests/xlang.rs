//! S2 of bindings/SCENARIOS.md on the Rust side: writes `rust.json` with
//! values sealed by the core, then opens every value every language wrote.

use std::collections::BTreeSet;
use std::path::PathBuf;

use strongroom::SecretBytes;
use strongroom::seal::{Algorithm, DataKey, SealContext, SealedValue};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn xlang_dir() -> PathBuf {
    let dir = std::env::var_os("STRONGROOM_XLANG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target"))
                .join("strongroom-xlang")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn matrix_write_then_open_every_language() {
    let mut values = Vec::new();
    for (alg, kv) in [
        (Algorithm::Aes256Gcm, 1u32),
        (Algorithm::ChaCha20Poly1305, 2),
    ] {
        let key = SecretBytes::random(32).unwrap();
        let plain = format!("sealed by rust with {alg}");
        let path = format!("xlang/rust/{alg}");
        let dk = DataKey::new(alg, key.clone()).unwrap();
        let sealed = dk
            .seal(kv, plain.as_bytes(), &SealContext::new(&path, 11))
            .unwrap();
        values.push(serde_json::json!({
            "algorithm": alg.name(), "key": hex::encode(key.expose_secret()), "key_version": kv,
            "path": path, "version": 11, "plaintext": hex::encode(plain),
            "sealed": hex::encode(sealed.as_bytes()),
        }));
    }
    let doc = serde_json::json!({"writer": "rust", "values": values});
    std::fs::write(
        xlang_dir().join("rust.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();

    let mut writers = BTreeSet::new();
    let files = json_files(&xlang_dir())
        .into_iter()
        .chain(json_files(&root().join("bindings/xlang")));
    for f in files {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for v in doc["values"].as_array().unwrap() {
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            let alg = Algorithm::from_name(&s("algorithm")).unwrap();
            let key = SecretBytes::new(hex::decode(s("key")).unwrap());
            let sealed = SealedValue::from_vec(hex::decode(s("sealed")).unwrap()).unwrap();
            assert_eq!(
                u64::from(sealed.key_version()),
                v["key_version"].as_u64().unwrap()
            );
            let path = s("path");
            let ctx = SealContext::new(&path, v["version"].as_u64().unwrap());
            let opened = DataKey::new(alg, key).unwrap().open(&sealed, &ctx).unwrap();
            assert_eq!(
                opened.expose_secret(),
                hex::decode(s("plaintext")).unwrap(),
                "{}",
                f.display()
            );
        }
        writers.insert(doc["writer"].as_str().unwrap().to_owned());
    }
    for w in ["python", "rust", "uniffi"] {
        assert!(writers.contains(w), "no values from {w}: {writers:?}");
    }
}
