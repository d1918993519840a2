//! `audit verify` of logs written through the library: good and tampered
//! logs, checkpoints, and the store's saved audit head.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::Path;
use std::sync::Arc;

use strongroom::audit::{AuditEvent, AuditLog, Checkpoint, FsyncPolicy, JsonlFileSink, Operation};
use strongroom::dangerous::Door;
use support::{Env, fails, ok, stderr};

/// Writes an audit log through the library with the store's audit key;
/// the checkpoint of its last record.
async fn write_audit_log(door: &Door, file: &Path, records: u64) -> Checkpoint {
    let sink = Arc::new(JsonlFileSink::open(file, FsyncPolicy::EveryRecord).unwrap());
    let log = AuditLog::new(door.audit_key().unwrap(), vec![sink], door.clock().clone()).unwrap();
    let mut head = None;
    for i in 0..records {
        let record = log
            .append(
                AuditEvent::new("svc-billing", Operation::Read, format!("req-{i}"))
                    .with_path("prod/billing/db-password"),
            )
            .await
            .unwrap();
        head = Some(record.checkpoint());
    }
    head.expect("at least one record")
}

#[test]
fn audit_verify_good_and_tampered() {
    // an application's log over a store the CLI never touched (every CLI
    // command audits, and would save a head this log does not reach)
    let env = Env::init_by_library();
    let log = env.path("audit.jsonl");
    env.with_library(async |door| write_audit_log(door, &log, 4).await);
    let log_s = log.display().to_string();

    let out = ok(&env.store(&["audit", "verify", &log_s], b""));
    assert!(
        out.starts_with("ok: 4 record(s) verified; head 4:"),
        "{out}"
    );
    let head = out.trim().rsplit_once("head ").unwrap().1.to_owned();
    // the saved head matches
    ok(&env.store(&["audit", "verify", &log_s, "--checkpoint", &head], b""));

    // truncated: the last record removed, caught by the checkpoint
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let truncated = env.path("truncated.jsonl");
    std::fs::write(&truncated, format!("{}\n", lines[..3].join("\n"))).unwrap();
    let t = truncated.display().to_string();
    ok(&env.store(&["audit", "verify", &t], b""));
    let e = fails(
        &env.store(&["audit", "verify", &t, "--checkpoint", &head], b""),
        1,
    );
    assert!(e.contains("seq 4"), "{e}");

    // an edited record: the first broken seq is reported
    let tampered = env.path("tampered.jsonl");
    std::fs::write(&tampered, text.replacen("req-1", "req-X", 1)).unwrap();
    let e = fails(
        &env.store(&["audit", "verify", &tampered.display().to_string()], b""),
        1,
    );
    assert!(e.contains("broken at seq 2"), "{e}");

    // another store's key does not verify this log
    let other = Env::init();
    let e = fails(&other.store(&["audit", "verify", &log_s], b""), 1);
    assert!(e.contains("seq 1"), "{e}");
}

#[test]
fn audit_verify_checks_the_saved_head_by_default() {
    // an application's log and saved head (the CLI's own log is tested below)
    let env = Env::init_by_library();
    let log = env.path("audit.jsonl");
    // and its head saved in the store, as a handle does after every record
    env.with_library(async |door| {
        let head = write_audit_log(door, &log, 6).await;
        door.save_audit_head(&head).await.unwrap();
    });
    let log_s = log.display().to_string();
    let verify = |file: &str, extra: &[&str]| {
        let mut args = vec!["audit", "verify", file];
        args.extend_from_slice(extra);
        env.store(&args, b"")
    };

    // The complete log passes and reaches the saved head.
    let o = verify(&log_s, &[]);
    let out = ok(&o);
    assert!(
        out.starts_with("ok: 6 record(s) verified; head 6:"),
        "{out}"
    );
    let head = out
        .lines()
        .next()
        .unwrap()
        .rsplit_once("head ")
        .unwrap()
        .1
        .to_owned();
    assert!(
        stderr(&o).contains(&format!("store's saved head: {head} (reached)")),
        "{}",
        stderr(&o)
    );
    // An explicit checkpoint still works.
    ok(&verify(&log_s, &["--checkpoint", &head]));

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let variant = |name: &str, lines: &[String]| -> String {
        let p = env.path(name);
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };

    // Truncating the last N records fails without --checkpoint, naming the
    // missing sequence numbers.
    for n in [1usize, 2, 5] {
        let f = variant(&format!("cut{n}.jsonl"), &lines[..6 - n]);
        let e = fails(&verify(&f, &[]), 1);
        let last = 6 - n;
        assert!(
            e.contains(&format!("broken at seq {}", last + 1))
                && e.contains(&format!("ends at seq {last}"))
                && e.contains("saved head is at seq 6")
                && e.contains("truncated"),
            "{e}"
        );
    }
    // An emptied file fails.
    let f = variant("empty.jsonl", &[]);
    let e = fails(&verify(&f, &[]), 1);
    assert!(
        e.contains("broken at seq 1") && e.contains("the log is empty"),
        "{e}"
    );
    // A deleted file is an input/output error, not a pass.
    let e = fails(
        &verify(&env.path("gone.jsonl").display().to_string(), &[]),
        12,
    );
    assert!(e.contains("gone.jsonl"), "{e}");

    // The last record's MAC upper-cased (same MAC, another spelling).
    let mut upper = lines.clone();
    let (before, mac) = upper[5].rsplit_once("\"mac\":\"").unwrap();
    upper[5] = format!("{before}\"mac\":\"{}", mac.to_ascii_uppercase());
    let f = variant("upper.jsonl", &upper);
    let e = fails(&verify(&f, &[]), 1);
    assert!(e.contains("broken at seq 6") && e.contains("MAC"), "{e}");

    // Reordered records.
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    let f = variant("swapped.jsonl", &swapped);
    let e = fails(&verify(&f, &[]), 1);
    assert!(e.contains("broken at seq 4"), "{e}");

    // An edited record.
    let mut edited = lines.clone();
    edited[2] = edited[2].replace("req-2", "req-X");
    assert_ne!(edited[2], lines[2]);
    let f = variant("edited.jsonl", &edited);
    let e = fails(&verify(&f, &[]), 1);
    assert!(e.contains("broken at seq 3"), "{e}");

    // A checkpoint spelt in upper case is a usage error.
    let (seq, mac) = head.split_once(':').unwrap();
    let upper_cp = format!("{seq}:{}", mac.to_ascii_uppercase());
    let e = fails(&verify(&log_s, &["--checkpoint", &upper_cp]), 2);
    assert!(e.contains("lower-case hex"), "{e}");
}
