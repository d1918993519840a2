//! A store the operator may read but not write: reads work, writes are
//! refused and change nothing, and the audit file is a chain of its own
//! (`audit verify --unanchored`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use support::{Env, VALUE, fails, json, ok};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn read_only_flag_reads_and_refuses_writes() {
    let env = Env::init();
    ok(&env.store(&["put", "app/db"], VALUE.as_bytes()));
    let log = env.path("reader.audit.jsonl").display().to_string();
    let ro = |args: &[&str], stdin: &[u8]| {
        let mut all = args.to_vec();
        all.extend(["--read-only", "--audit-log", &log]);
        env.store(&all, stdin)
    };

    assert_eq!(ok(&ro(&["get", "app/db", "--reveal"], b"")), VALUE);
    let listed = json(&ro(&["list", "--json"], b""));
    assert_eq!(listed["entries"], serde_json::json!(["app/"]));
    // a write is refused by the storage (exit 8) and nothing changes
    fails(&ro(&["put", "app/db"], b"other"), 8);
    fails(&ro(&["rotate"], b""), 8);
    assert_eq!(env.reveal("app/db"), VALUE);
    let meta = json(&env.store(&["metadata", "app/db", "--json"], b""));
    assert_eq!(meta["current_version"], 1);

    // the reader's log is its own chain: it verifies only unanchored, and
    // an edit of it is still caught
    let records: Vec<strongroom::audit::AuditRecord> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| strongroom::audit::AuditRecord::from_json_line(l).unwrap())
        .collect();
    assert!(records.iter().any(|r| r.event.operation.as_str() == "read"));
    assert_eq!(records[0].seq, 1);
    ok(&env.store(&["audit", "verify", "--unanchored", &log], b""));
    fails(&env.store(&["audit", "verify", &log], b""), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let edited = env.file("edited.jsonl", &text.replacen("\"read\"", "\"list\"", 1));
    fails(
        &env.store(&["audit", "verify", "--unanchored", &edited], b""),
        1,
    );
    // the store's own file still verifies against its saved head
    env.audit_verifies();
}

/// Runs the CLI as `nobody` (uid 65534) through `setpriv`.
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_strongroom"))
        .args(args)
        .current_dir("/")
        .env_remove("STRONGROOM_DB")
        .env_remove("STRONGROOM_KEY_FILE")
        .env("USER", "reader")
        .output()
        .unwrap()
}

#[test]
fn a_file_this_user_cannot_write_opens_read_only() {
    if !is_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and setpriv to act as another user");
        return;
    }
    let env = Env::init();
    ok(&env.store(&["put", "app/db"], VALUE.as_bytes()));
    // the reader: may read the store and its directory, write neither; its
    // key file is its own, and its audit file lives in a directory it owns
    let out = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(out.path(), Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(env.path("root.key"), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(env.path("store.db"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let log = out.path().join("reader.jsonl").display().to_string();
    let (db, key) = (env.db(), env.key());
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--db", &db, "--key-file", &key, "--audit-log", &log]);
        as_nobody(&all)
    };
    let got = run(&["get", "app/db", "--reveal"]);
    assert_eq!(ok(&got), VALUE);
    let put = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!(
            "printf x | {} put app/db --db {db} --key-file {key} --audit-log {log}",
            env!("CARGO_BIN_EXE_strongroom")
        ))
        .current_dir("/")
        .output()
        .unwrap();
    fails(&put, 8);
    std::fs::set_permissions(env.path("store.db"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(env.path("root.key"), Some(0), Some(0)).unwrap();
    assert_eq!(env.reveal("app/db"), VALUE);
}
