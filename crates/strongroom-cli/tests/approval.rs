//! `approval ...` and `--approval`: gates set from a file, requests made,
//! approved and refused by distinct operators, each gated command refused
//! without an approved request (exit 33) and run once with one; real
//! processes on one SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::{Env, fails, json, ok};

const GATES: &str = r#"
[[gate]]
operation = "destroy"
pattern = "prod/*"
required = 2
approvers = ["operator:alice", "operator:bob", "operator:carol"]

[[gate]]
operation = "sensitive_read"
pattern = "prod/root/+"
required = 1
approvers = ["operator:alice"]

[[gate]]
operation = "key_destroy"
required = 1
approvers = ["operator:alice"]

[[gate]]
operation = "root_key_rotate"
required = 1
approvers = ["operator:alice"]
"#;

/// `args` as operator `who`.
fn as_(env: &Env, who: &str, args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    all.extend(["--operator", who]);
    env.store(&all, b"")
}

/// A request by `ops` approved by `approvers`; its id.
fn approved(env: &Env, operation: &str, path: Option<&str>, approvers: &[&str]) -> String {
    let mut args = vec!["approval", "request", operation];
    args.extend(path);
    args.extend(["--reason", "ticket OPS-7", "--json"]);
    let v = json(&as_(env, "ops", &args));
    let id = v["id"].as_str().unwrap().to_owned();
    for who in approvers {
        ok(&as_(env, who, &["approval", "approve", &id]));
    }
    id
}

#[test]
fn gated_commands_need_an_approved_request_and_run_once() {
    let env = Env::init();
    let file = env.file("gates.toml", GATES);
    ok(&env.store(&["approval", "gates", "set", &file], b""));
    let v = json(&env.store(&["approval", "gates", "show", "--json"], b""));
    assert_eq!(v["revision"], 1);
    assert_eq!(v["gates"].as_array().unwrap().len(), 4);
    ok(&env.store(&["put", "prod/db"], b"pw-1"));
    ok(&env.store(&["put", "prod/db"], b"pw-2"));

    // destroy: refused without approval, nothing destroyed
    let out = fails(
        &as_(&env, "ops", &["destroy", "prod/db", "--versions", "1"]),
        33,
    );
    assert!(out.contains("needs an approved request"), "{out}");
    let v = json(&as_(
        &env,
        "ops",
        &[
            "approval",
            "request",
            "destroy",
            "prod/db",
            "--reason",
            "ticket OPS-7",
            "--json",
        ],
    ));
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["state"], "pending");
    assert_eq!(v["requester"], "operator:ops");
    // the requester cannot approve; a stranger cannot either
    fails(&as_(&env, "ops", &["approval", "approve", &id]), 33);
    fails(&as_(&env, "mallory", &["approval", "approve", &id]), 33);
    ok(&as_(&env, "alice", &["approval", "approve", &id]));
    fails(&as_(&env, "alice", &["approval", "approve", &id]), 33);
    // one of two: not yet
    fails(
        &as_(
            &env,
            "ops",
            &["destroy", "prod/db", "--versions", "1", "--approval", &id],
        ),
        33,
    );
    let v = json(&as_(&env, "bob", &["approval", "approve", &id, "--json"]));
    assert_eq!(v["state"], "approved");
    // another operator cannot use it; the requester can, once
    fails(
        &as_(
            &env,
            "carol",
            &["destroy", "prod/db", "--versions", "1", "--approval", &id],
        ),
        33,
    );
    ok(&as_(
        &env,
        "ops",
        &["destroy", "prod/db", "--versions", "1", "--approval", &id],
    ));
    let out = fails(
        &as_(
            &env,
            "ops",
            &["destroy", "prod/db", "--versions", "2", "--approval", &id],
        ),
        33,
    );
    assert!(out.contains("used already"), "{out}");
    let v = json(&env.store(&["approval", "show", &id, "--json"], b""));
    assert_eq!(v["state"], "used");
    assert_eq!(v["used_by"], "operator:ops");

    // purge is a destroy too
    fails(&as_(&env, "ops", &["purge", "prod/db"]), 33);
    let id = approved(&env, "destroy", Some("prod/db"), &["alice", "carol"]);
    ok(&as_(&env, "ops", &["purge", "prod/db", "--approval", &id]));

    // sensitive read
    ok(&env.store(&["put", "prod/root/token"], b"t0p"));
    fails(
        &as_(&env, "ops", &["get", "prod/root/token", "--reveal"]),
        33,
    );
    let id = approved(&env, "sensitive_read", Some("prod/root/token"), &["alice"]);
    let out = ok(&as_(
        &env,
        "ops",
        &["get", "prod/root/token", "--reveal", "--approval", &id],
    ));
    assert_eq!(out, "t0p");

    // key destroy
    ok(&env.store(&["rotate"], b""));
    ok(&env.store(&["rewrap"], b""));
    ok(&env.store(&["retire", "--min-version", "2"], b""));
    fails(&as_(&env, "ops", &["destroy-key", "1"]), 33);
    let id = approved(&env, "key_destroy", None, &["alice"]);
    ok(&as_(&env, "ops", &["destroy-key", "1", "--approval", &id]));

    // root key rotation
    let new_key = env.path("new.key").display().to_string();
    ok(&env.run(&["keygen", &new_key], b""));
    fails(
        &as_(&env, "ops", &["rotate-root", "--new-key-file", &new_key]),
        33,
    );
    let id = approved(&env, "root_key_rotate", None, &["alice"]);
    ok(&as_(
        &env,
        "ops",
        &["rotate-root", "--new-key-file", &new_key, "--approval", &id],
    ));
    let out = env.run(
        &[
            "approval",
            "list",
            "--json",
            "--db",
            &env.db(),
            "--key-file",
            &new_key,
        ],
        b"",
    );
    let v = json(&out);
    assert!(
        v.as_array().unwrap().iter().all(|r| r["state"] == "used"),
        "{v}"
    );
}

#[test]
fn refusal_ends_a_request_and_everything_is_audited_without_the_reason() {
    let env = Env::init();
    let file = env.file("gates.toml", GATES);
    ok(&env.store(&["approval", "gates", "set", &file], b""));
    ok(&env.store(&["put", "prod/db"], b"pw"));
    let v = json(&as_(
        &env,
        "ops",
        &[
            "approval",
            "request",
            "destroy",
            "prod/db",
            "--reason",
            "REASON-XYZ",
            "--json",
        ],
    ));
    let id = v["id"].as_str().unwrap().to_owned();
    ok(&as_(&env, "carol", &["approval", "refuse", &id]));
    let out = fails(&as_(&env, "alice", &["approval", "approve", &id]), 33);
    assert!(out.contains("refused by \"operator:carol\""), "{out}");
    let out = ok(&env.store(&["approval", "list"], b""));
    assert!(out.contains(&id) && out.contains("refused"), "{out}");
    // no gate: nothing to request
    fails(
        &as_(
            &env,
            "ops",
            &["approval", "request", "destroy", "dev/db", "--reason", "x"],
        ),
        33,
    );
    // unknown id
    fails(
        &env.store(
            &["approval", "show", "0123456789abcdef0123456789abcdef"],
            b"",
        ),
        3,
    );

    let audit = env.audit_text();
    assert!(
        !audit.contains("REASON-XYZ"),
        "the reason reached the audit file"
    );
    let recs = env.audit_records();
    let ops_of = |id: &str| -> Vec<(String, String)> {
        recs.iter()
            .filter(|r| r.event.request_id == id)
            .map(|r| (r.event.principal.clone(), r.event.operation.to_string()))
            .collect()
    };
    let seen = ops_of(&id);
    assert!(
        seen.contains(&("operator:ops".into(), "approval_request".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("operator:carol".into(), "approval_refuse".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("operator:alice".into(), "approval_approve".into())),
        "{seen:?}"
    );
    assert!(
        recs.iter()
            .any(|r| r.event.operation.to_string() == "approval_gates_set")
    );
    env.audit_verifies();
}

#[test]
fn a_bad_gates_file_names_the_line_and_changes_nothing() {
    let env = Env::init();
    let file = env.file(
        "gates.toml",
        "[[gate]]\noperation = \"destroy\"\npattern = \"prod/*\"\nrequired = 3\napprovers = [\"operator:a\"]\n",
    );
    let out = fails(&env.store(&["approval", "gates", "set", &file], b""), 11);
    assert!(out.contains("line 4"), "{out}");
    let v = json(&env.store(&["approval", "gates", "show", "--json"], b""));
    assert_eq!(v["revision"], 0);
    // exit 33 is in both tables
    let help = ok(&env.run(&["--help"], b""));
    assert!(help.lines().any(|l| l.trim_start().starts_with("33 ")));
    assert!(include_str!("../README.md").contains("| 33 |"));
}

#[test]
fn apply_needs_an_approved_request_when_a_gate_holds_apply_config() {
    let env = Env::init();
    let gates =
        "[[gate]]\noperation = \"apply_config\"\nrequired = 1\napprovers = [\"operator:alice\"]\n";
    let file = env.file("gates.toml", gates);
    ok(&env.store(&["approval", "gates", "set", &file], b""));
    let decl = env.file(
        "decl.toml",
        "[secrets.\"prod/app/db\"]\nowner = \"team\"\ngenerate = { length = 16 }\n",
    );

    let out = fails(&as_(&env, "ops", &["apply", &decl]), 33);
    assert!(out.contains("needs an approved request"), "{out}");
    ok(&as_(&env, "ops", &["plan", &decl]));
    let missing = env.store(&["get", "prod/app/db"], b"");
    assert!(!missing.status.success(), "nothing was applied");

    let id = approved(&env, "apply_config", None, &["alice"]);
    let applied = ok(&as_(&env, "ops", &["apply", &decl, "--approval", &id]));
    assert!(applied.contains("applied: revision 1"), "{applied}");
    // spent: the next change needs a new request
    let more = env.file(
        "decl.toml",
        "[secrets.\"prod/app/db\"]\nowner = \"other-team\"\ngenerate = { length = 16 }\n",
    );
    fails(&as_(&env, "ops", &["apply", &more, "--approval", &id]), 33);
}
