//! `strongroom lease ...`: leases issued by an application (here the test
//! process, through the library, on the same SQLite file), then listed,
//! looked up, renewed and revoked through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strongroom::clock::{Clock as _, ManualClock, SystemClock};
use strongroom::lease::{Lease, LeaseConfig, Revoker};
use support::{Env, VALUE, fails, json, ok, stdout};

/// Counts revocations; the application's engine.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

impl Revoker for Counting {
    fn revoke<'a, 'b, 'c>(
        &'a self,
        _lease: &'b Lease,
    ) -> std::pin::Pin<Box<dyn Future<Output = strongroom::Result<()>> + Send + 'c>>
    where
        'a: 'c,
        'b: 'c,
    {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// Issues leases at `paths` (engine `testdb`, TTL 1 h, max 2 h, renewable,
/// revocation data holding `VALUE`); their ids.
fn issue(env: &Env, paths: &[&str]) -> Vec<String> {
    env.with_library(async |door| {
        let m = door
            .lease_manager(Arc::new(SystemClock), LeaseConfig::default())
            .unwrap();
        m.register_revoker("testdb", Arc::new(Counting::default()));
        let mut ids = Vec::new();
        for p in paths {
            let l = m
                .issue(
                    p,
                    "testdb",
                    Duration::from_secs(3600),
                    Duration::from_secs(7200),
                    true,
                    VALUE.as_bytes().to_vec(),
                )
                .await
                .unwrap();
            ids.push(l.id().to_string());
        }
        ids
    })
}

/// The application's manager, some time later, runs what is due; how many
/// leases its revoker revoked.
fn application_runs_due(env: &Env) -> usize {
    env.with_library(async |door| {
        let later = SystemClock.now() + Duration::from_secs(300);
        let m = door
            .lease_manager(Arc::new(ManualClock::new(later)), LeaseConfig::default())
            .unwrap();
        let counting = Arc::new(Counting::default());
        m.register_revoker("testdb", counting.clone());
        m.run_due().await.unwrap();
        counting.0.load(Ordering::SeqCst)
    })
}

#[track_caller]
fn no_revocation_data(o: &std::process::Output) {
    assert!(!stdout(o).contains(VALUE), "revocation data printed");
}

#[test]
fn list_and_lookup_show_leases_but_never_their_revocation_data() {
    let env = Env::init();
    let ids = issue(&env, &["db/creds/app", "db/creds/ro", "cache/creds/app"]);

    let o = env.store(&["lease", "list"], b"");
    let text = ok(&o);
    no_revocation_data(&o);
    for id in &ids {
        assert!(text.contains(id.as_str()), "{text}");
    }
    assert!(
        text.contains("db/creds/app") && text.contains("active"),
        "{text}"
    );

    let o = env.store(&["lease", "list", "db", "--json"], b"");
    no_revocation_data(&o);
    let v = json(&o);
    assert_eq!(v["prefix"], "db");
    let listed: Vec<&str> = v["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&"db/creds/app") && listed.contains(&"db/creds/ro"));

    let o = env.store(&["lease", "lookup", &ids[0], "--json"], b"");
    no_revocation_data(&o);
    let l = json(&o);
    assert_eq!(l["id"], ids[0].as_str());
    assert_eq!(l["path"], "db/creds/app");
    assert_eq!(l["engine"], "testdb");
    assert_eq!(l["state"], "active");
    assert_eq!(l["ttl_secs"], 3600);
    assert_eq!(l["max_ttl_secs"], 7200);
    assert_eq!(l["renewable"], true);
    assert!(l["failed_attempts"].is_null() && l["next_try"].is_null());
    for f in ["issued_at", "expires_at", "max_expires_at"] {
        assert!(l[f].is_string(), "{f}");
    }
    let text = ok(&env.store(&["lease", "lookup", &ids[0]], b""));
    assert!(text.contains("engine: testdb"), "{text}");

    // the operator's reads are on record, the file verifies, and it holds
    // no revocation data
    let ops: Vec<(String, String)> = env
        .audit_records()
        .iter()
        .map(|r| {
            (
                r.event.principal.clone(),
                r.event.operation.as_str().to_owned(),
            )
        })
        .collect();
    assert!(ops.contains(&("operator:tester".into(), "list".into())));
    assert!(ops.contains(&("operator:tester".into(), "read_metadata".into())));
    let file = std::fs::read_to_string(env.path("store.db.audit.jsonl")).unwrap();
    assert!(!file.contains(VALUE));
    env.audit_verifies();
}

#[test]
fn unknown_and_malformed_ids() {
    let env = Env::init();
    issue(&env, &["db/creds/app"]);
    let missing = "lease_0000000000000000000000000000abcd";
    let err = fails(&env.store(&["lease", "lookup", missing], b""), 3);
    assert!(err.contains("not found"), "{err}");
    fails(&env.store(&["lease", "revoke", missing], b""), 3);
    fails(&env.store(&["lease", "lookup", "not-a-lease"], b""), 2);
    fails(&env.store(&["lease", "revoke-prefix", "/"], b""), 2);
}

#[test]
fn revoke_without_the_engine_is_pending_until_the_application_finishes_it() {
    let env = Env::init();
    let ids = issue(&env, &["db/creds/app"]);
    let err = fails(&env.store(&["lease", "revoke", &ids[0]], b""), 22);
    assert!(err.contains("no revoker is registered for engine"), "{err}");
    assert!(
        err.contains("the application that issued the lease"),
        "{err}"
    );

    let l = json(&env.store(&["lease", "lookup", &ids[0], "--json"], b""));
    assert_eq!(l["state"], "revoking");
    assert_eq!(l["failed_attempts"], 1);
    assert!(l["next_try"].is_string());

    // the application's manager, which has the revoker, finishes it
    assert_eq!(application_runs_due(&env), 1);
    fails(&env.store(&["lease", "lookup", &ids[0]], b""), 3);

    let records = env.audit_records();
    let revokes: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.event.operation.as_str() == "lease_revoke")
        .map(|r| (r.event.principal.as_str(), r.event.operation.as_str()))
        .collect();
    assert!(
        revokes.iter().any(|(p, _)| *p == "operator:tester"),
        "{revokes:?}"
    );
    assert!(
        revokes.iter().any(|(p, _)| *p == "lease-manager"),
        "the manager's own record: {revokes:?}"
    );
    env.audit_verifies();
}

#[test]
fn revoke_prefix_lists_revoked_and_pending() {
    let env = Env::init();
    let ids = issue(&env, &["db/creds/app", "db/creds/ro", "cache/creds/app"]);
    let o = env.store(&["lease", "revoke-prefix", "db", "--json"], b"");
    fails(&o, 22);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["prefix"], "db");
    assert_eq!(v["revoked"], serde_json::json!([]));
    let mut pending: Vec<String> = v["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    pending.sort();
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(pending, want);
    // the lease outside the prefix is untouched
    let l = json(&env.store(&["lease", "lookup", &ids[2], "--json"], b""));
    assert_eq!(l["state"], "active");
    assert_eq!(application_runs_due(&env), 2);
    let v = json(&env.store(&["lease", "list", "--json"], b""));
    assert_eq!(v["leases"].as_array().unwrap().len(), 1);
    env.audit_verifies();
}

#[test]
fn renew_needs_the_engine_and_changes_nothing_without_it() {
    let env = Env::init();
    let ids = issue(&env, &["db/creds/app"]);
    let before = json(&env.store(&["lease", "lookup", &ids[0], "--json"], b""));
    let err = fails(
        &env.store(&["lease", "renew", &ids[0], "--increment", "600"], b""),
        23,
    );
    assert!(
        err.contains("no revoker is registered for engine \"testdb\""),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    fails(&env.store(&["lease", "renew", &ids[0]], b""), 23);
    let after = json(&env.store(&["lease", "lookup", &ids[0], "--json"], b""));
    assert_eq!(before["expires_at"], after["expires_at"]);
    fails(
        &env.store(&["lease", "renew", &ids[0], "--increment", "0"], b""),
        11,
    );
    env.audit_verifies();
}
