//! `policy list | show | check`: the applied policies, read back; and the
//! decision for a principal on a path, with the rule that makes it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::{Env, fails, json, ok};

const DECL: &str = r#"
[[policy]]
name = "payments"
[[policy.path]]
pattern = "prod/payments/*"
capabilities = ["read", "list"]
[[policy.path]]
pattern = "prod/payments/admin/*"
capabilities = ["deny"]

[[policy]]
name = "rotator"
[[policy.path]]
pattern = "prod/+/db"
capabilities = ["rotate"]

[principals]
payment-svc = ["payments", "rotator"]
"#;

fn applied(env: &Env) {
    let dir = env.files_in("decl", &[("policies.toml", DECL)]);
    ok(&env.store(&["apply", &dir], b""));
}

#[test]
fn nothing_applied_lists_nothing_and_names_are_not_found() {
    let env = Env::init();
    let v = json(&env.store(&["policy", "list", "--json"], b""));
    assert!(v["revision"].is_null());
    assert_eq!(v["policies"], serde_json::json!([]));
    fails(&env.store(&["policy", "show", "payments"], b""), 3);
    fails(
        &env.store(&["policy", "check", "--principal", "x", "a/b"], b""),
        3,
    );
}

#[test]
fn list_show_and_check_read_the_applied_state() {
    let env = Env::init();
    applied(&env);
    let v = json(&env.store(&["policy", "list", "--json"], b""));
    assert_eq!(v["revision"], 1);
    assert_eq!(v["applied_by"], "operator:tester");
    let names: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payments", "rotator"]);
    assert_eq!(
        v["principals"],
        serde_json::json!([{ "name": "payment-svc", "policies": ["payments", "rotator"] }])
    );
    let text = ok(&env.store(&["policy", "list"], b""));
    assert!(
        text.contains("principal payment-svc: payments, rotator"),
        "{text}"
    );

    let shown = json(&env.store(&["policy", "show", "payments", "--json"], b""));
    assert_eq!(
        shown["rules"],
        serde_json::json!([
            { "pattern": "prod/payments/*", "capabilities": ["read", "list"] },
            { "pattern": "prod/payments/admin/*", "capabilities": ["deny"] },
        ])
    );
    fails(&env.store(&["policy", "show", "nope"], b""), 3);

    let check = |path: &str| {
        json(&env.store(
            &[
                "policy",
                "check",
                "--principal",
                "payment-svc",
                path,
                "--json",
            ],
            b"",
        ))
    };
    let db = check("prod/payments/db");
    // the most specific rule decides: prod/payments/* beats prod/+/db
    assert_eq!(db["capabilities"], serde_json::json!(["read", "list"]));
    let read = db["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["capability"] == "read")
        .unwrap()
        .clone();
    assert_eq!(read["allowed"], true);
    assert_eq!(read["rule"], "prod/payments/*");
    let admin = check("prod/payments/admin/key");
    assert_eq!(admin["capabilities"], serde_json::json!([]));
    assert_eq!(admin["decisions"][0]["rule"], "prod/payments/admin/*");
    let other = check("prod/web/db");
    assert_eq!(other["capabilities"], serde_json::json!(["rotate"]));
    let none = check("staging/x");
    assert_eq!(none["capabilities"], serde_json::json!([]));
    assert!(none["decisions"][0]["rule"].is_null());

    let text = ok(&env.store(
        &[
            "policy",
            "check",
            "--principal",
            "payment-svc",
            "prod/payments/admin/key",
        ],
        b"",
    ));
    assert!(text.contains("nothing"), "{text}");
    assert!(text.contains("denied by prod/payments/admin/*"), "{text}");
    fails(
        &env.store(&["policy", "check", "--principal", "nobody", "a/b"], b""),
        3,
    );
    fails(
        &env.store(
            &["policy", "check", "--principal", "payment-svc", "Bad Path"],
            b"",
        ),
        11,
    );
    // every read of the applied state is on record
    let reads = env
        .audit_records()
        .iter()
        .filter(|r| {
            r.event.operation.as_str() == "read_metadata"
                && r.event.path.as_deref() == Some("sys/declared")
        })
        .count();
    assert!(reads >= 7, "{reads}");
    env.audit_verifies();
}
