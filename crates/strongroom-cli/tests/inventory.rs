//! `inventory`: secrets filtered by owner, environment, tag, overdue
//! rotation and (with the audit file) no read for N days; never a value.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use strongroom::clock::{Clock as _, ManualClock, SystemClock};
use support::{Env, VALUE, fails, json, ok};

fn paths(v: &serde_json::Value) -> Vec<String> {
    v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_owned())
        .collect()
}

/// Writes `path` through the library with the clock `days` days back, so
/// its creation (and so its rotation due date) lies in the past.
fn put_in_the_past(env: &Env, path: &str, days: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let past = SystemClock.now() - Duration::from_secs(days * 86_400);
        let sqlite = Arc::new(strongroom_sqlx::SqliteStore::open(env.db()).await.unwrap());
        let protector = strongroom::protector::SoftwareProtector::from_key_file(env.key()).unwrap();
        let options = strongroom::Options {
            clock: Arc::new(ManualClock::new(past)),
            ..strongroom::Options::default()
        };
        let door = strongroom::Strongroom::unseal(sqlite.clone(), &protector, options)
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        door.secrets()
            .put(path, VALUE.as_bytes(), None)
            .await
            .unwrap();
        door.seal();
        sqlite.close().await;
    });
}

#[test]
fn filters_by_owner_environment_and_tags() {
    let env = Env::init();
    for p in [
        "prod/pay/db",
        "prod/pay/api",
        "staging/pay/db",
        "prod/web/db",
    ] {
        ok(&env.store(&["put", p], VALUE.as_bytes()));
    }
    ok(&env.store(
        &[
            "metadata",
            "prod/pay/db",
            "--owner",
            "payments",
            "--environment",
            "prod",
            "--tags",
            "pci,db",
        ],
        b"",
    ));
    ok(&env.store(
        &[
            "metadata",
            "prod/pay/api",
            "--owner",
            "payments",
            "--environment",
            "prod",
            "--tags",
            "pci",
        ],
        b"",
    ));
    ok(&env.store(
        &[
            "metadata",
            "staging/pay/db",
            "--owner",
            "payments",
            "--environment",
            "staging",
        ],
        b"",
    ));

    let all = json(&env.store(&["inventory", "--json"], b""));
    assert_eq!(paths(&all).len(), 4);
    let owned = json(&env.store(&["inventory", "--owner", "payments", "--json"], b""));
    assert_eq!(
        paths(&owned),
        ["prod/pay/api", "prod/pay/db", "staging/pay/db"]
    );
    let prod = json(&env.store(
        &[
            "inventory",
            "--owner",
            "payments",
            "--environment",
            "prod",
            "--json",
        ],
        b"",
    ));
    assert_eq!(paths(&prod), ["prod/pay/api", "prod/pay/db"]);
    let tagged = json(&env.store(&["inventory", "--tag", "pci", "--tag", "db", "--json"], b""));
    assert_eq!(paths(&tagged), ["prod/pay/db"]);
    let under = json(&env.store(&["inventory", "prod", "--json"], b""));
    assert_eq!(
        paths(&under),
        ["prod/pay/api", "prod/pay/db", "prod/web/db"]
    );

    // text form: one line per secret, and never a value
    let text = ok(&env.store(&["inventory", "--owner", "payments"], b""));
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(!text.contains(VALUE));
    // each metadata read is on record, no value read is
    let records = env.audit_records();
    assert!(
        records
            .iter()
            .any(|r| r.event.operation.as_str() == "read_metadata")
    );
    assert!(!records.iter().any(|r| r.event.operation.as_str() == "read"));
    env.audit_verifies();
}

#[test]
fn overdue_rotation_is_found() {
    let env = Env::init();
    put_in_the_past(&env, "prod/old", 10);
    ok(&env.store(&["put", "prod/fresh"], VALUE.as_bytes()));
    ok(&env.store(&["put", "prod/no-interval"], VALUE.as_bytes()));
    for p in ["prod/old", "prod/fresh"] {
        ok(&env.store(&["metadata", p, "--rotation-interval", "86400"], b""));
    }
    let due = json(&env.store(&["inventory", "--overdue", "--json"], b""));
    assert_eq!(paths(&due), ["prod/old"]);
    assert_eq!(due["secrets"][0]["rotation_overdue"], true);
    let all = json(&env.store(&["inventory", "--json"], b""));
    let fresh = all["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "prod/fresh")
        .unwrap();
    assert_eq!(fresh["rotation_overdue"], false);
    assert!(fresh["rotation_due_at"].is_string());
    let text = ok(&env.store(&["inventory", "--overdue"], b""));
    assert!(text.contains("(overdue)"), "{text}");
}

#[test]
fn unread_days_uses_the_verified_audit_file() {
    let env = Env::init();
    for p in ["app/read", "app/unread"] {
        ok(&env.store(&["put", p], VALUE.as_bytes()));
    }
    ok(&env.store(&["get", "app/read"], b""));
    let audit = env.path("store.db.audit.jsonl").display().to_string();

    let unread = json(&env.store(
        &[
            "inventory",
            "--unread-days",
            "30",
            "--audit-file",
            &audit,
            "--json",
        ],
        b"",
    ));
    assert_eq!(paths(&unread), ["app/unread"]);
    assert!(unread["secrets"][0]["last_read_at"].is_null());
    let all = json(&env.store(&["inventory", "--audit-file", &audit, "--json"], b""));
    let read = &all["secrets"][0];
    assert_eq!(read["path"], "app/read");
    assert!(read["last_read_at"].is_string());

    // --unread-days without the file is a usage error
    fails(&env.store(&["inventory", "--unread-days", "30"], b""), 2);

    // an edited file is refused, not believed: drop the read's record
    let text = std::fs::read_to_string(&audit).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !(l.contains("\"operation\":\"read\"") && l.contains("app/read")))
        .collect();
    assert!(kept.len() < text.lines().count());
    let edited = env.file("edited.jsonl", &(kept.join("\n") + "\n"));
    fails(
        &env.store(
            &["inventory", "--unread-days", "30", "--audit-file", &edited],
            b"",
        ),
        1,
    );
}
