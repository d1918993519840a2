//! `--json` on the read commands: stdout is one JSON document with the
//! field names the README lists.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use base64::Engine as _;
use support::{Env, VALUE, fails, json, ok};

#[test]
fn get_json_gives_facts_without_the_value() {
    let env = Env::init();
    ok(&env.store(&["put", "prod/app/db"], VALUE.as_bytes()));
    let o = env.store(&["get", "prod/app/db", "--json"], b"");
    assert!(!support::stdout(&o).contains(VALUE));
    let v = json(&o);
    assert_eq!(v["path"], "prod/app/db");
    assert_eq!(v["version"], 1);
    assert_eq!(v["length"], VALUE.len());
    assert!(v["created_at"].is_string());
    assert!(v["deleted_at"].is_null());
    assert!(v["destroyed_at"].is_null());
    assert!(v.get("value").is_none());
}

#[test]
fn get_reveal_json_is_utf8_text_or_base64() {
    let env = Env::init();
    let text = "line one\n\"quoted\" \\ é";
    ok(&env.store(&["put", "p/text"], text.as_bytes()));
    let v = json(&env.store(&["get", "p/text", "--reveal", "--json"], b""));
    assert_eq!(v["encoding"], "utf-8");
    assert_eq!(v["value"], text);
    assert_eq!(v["length"], text.len());
    assert_eq!(v["path"], "p/text");

    let binary = [0xff_u8, 0x00, 0xfe, 0x41];
    ok(&env.store(&["put", "p/bin"], &binary));
    let v = json(&env.store(&["get", "p/bin", "--reveal", "--json"], b""));
    assert_eq!(v["encoding"], "base64");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, binary);
    assert_eq!(v["version"], 1);
}

#[test]
fn list_json() {
    let env = Env::init();
    ok(&env.store(&["put", "prod/app/a"], b"1"));
    ok(&env.store(&["put", "prod/db"], b"2"));
    let v = json(&env.store(&["list", "prod", "--json"], b""));
    assert_eq!(v["prefix"], "prod");
    assert_eq!(v["recursive"], false);
    assert_eq!(v["entries"], serde_json::json!(["app/", "db"]));
    let v = json(&env.store(&["list", "--recursive", "--json"], b""));
    assert_eq!(v["entries"], serde_json::json!(["prod/app/a", "prod/db"]));
    assert_eq!(v["recursive"], true);
}

#[test]
fn metadata_json() {
    let env = Env::init();
    ok(&env.store(&["put", "p/s"], b"1"));
    ok(&env.store(&["put", "p/s"], b"2"));
    ok(&env.store(&["delete", "p/s", "--versions", "1"], b""));
    let v = json(&env.store(
        &[
            "metadata",
            "p/s",
            "--owner",
            "team-a",
            "--tags",
            "x,y",
            "--rotation-interval",
            "3600",
            "--json",
        ],
        b"",
    ));
    assert_eq!(v["path"], "p/s");
    assert_eq!(v["current_version"], 2);
    assert_eq!(v["oldest_version"], 1);
    assert!(v["max_versions"].is_null());
    assert!(v["effective_max_versions"].as_u64().unwrap() > 0);
    assert_eq!(v["owner"], "team-a");
    assert!(v["environment"].is_null());
    assert_eq!(v["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(v["custom"], serde_json::json!({}));
    assert_eq!(v["rotation_interval_secs"], 3600);
    assert!(v["rotation_due_at"].is_string());
    assert!(v["last_rotated_at"].is_string());
    assert!(v["created_at"].is_string() && v["updated_at"].is_string());
    let versions = v["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[0]["deleted_at"].is_string());
    assert_eq!(versions[1]["version"], 2);
}

#[test]
fn status_json() {
    let env = Env::init();
    ok(&env.store(&["rotate"], b""));
    let v = json(&env.store(&["status", "--json"], b""));
    assert_eq!(v["database"], env.db());
    assert!(v["protector"].is_string());
    assert!(v["token_key_version"].is_null());
    assert_eq!(v["primary_key_version"], 2);
    assert_eq!(v["min_decryption_version"], 1);
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        for field in [
            "version",
            "state",
            "algorithm",
            "created_at",
            "encryptions_reserved",
        ] {
            assert!(k.get(field).is_some(), "{field} missing in {k}");
        }
    }
}

#[test]
fn audit_verify_json() {
    let env = Env::init();
    ok(&env.store(&["put", "p/a"], b"1"));
    let file = env.path("store.db.audit.jsonl").display().to_string();
    let v = json(&env.store(&["audit", "verify", &file, "--json"], b""));
    assert_eq!(v["ok"], true);
    let records = v["records"].as_u64().unwrap();
    assert_eq!(records, env.audit_records().len() as u64);
    let head = v["head"].as_str().unwrap();
    let (seq, mac) = head.split_once(':').unwrap();
    seq.parse::<u64>().unwrap();
    assert_eq!(mac.len(), 64);
    assert_eq!(v["saved_head"], v["head"]);
    // a failure stays on stderr with its exit code
    std::fs::write(&file, "").unwrap();
    let o = env.store(&["audit", "verify", &file, "--json"], b"");
    fails(&o, 1);
    assert!(o.stdout.is_empty());
}
