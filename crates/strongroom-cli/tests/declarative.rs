//! `plan`, `apply` and `drift` on an SQLite store, the naming rules of
//! `put` and `import`, and the exit codes 24 to 27.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Env, VALUE, fails, ok, stdout};

const POLICIES: &str = r#"
[[policy]]
name = "payments"
[[policy.path]]
pattern = "prod/payments/*"
capabilities = ["read", "list"]

[principals]
payment-svc = ["payments"]

[naming.services]
pattern = "{env}/{service}/{type}"
allowed = { env = ["prod", "staging"] }
"#;

const SECRETS: &str = r#"
[secrets."prod/payments/db"]
owner = "payments-team"
environment = "prod"
rotation_interval = "30d"
generate = { length = 32 }

[secrets."prod/payments/api"]
owner = "payments-team"
tags = ["pci"]
"#;

fn declared(env: &Env) -> String {
    env.files_in(
        "decl",
        &[("policies.toml", POLICIES), ("secrets.toml", SECRETS)],
    )
}

/// The applied record's revision, read through the library.
fn revision(env: &Env) -> Option<u64> {
    env.with_library(async |door| {
        strongroom::declarative::Applied::load(door)
            .await
            .unwrap()
            .map(|a| a.revision)
    })
}

#[test]
fn plan_apply_then_plan_is_empty() {
    let env = Env::init();
    ok(&env.store(&["put", "prod/payments/api"], VALUE.as_bytes()));
    let dir = declared(&env);
    let plan = ok(&env.store(&["plan", &dir], b""));
    assert!(plan.contains("+ policy \"payments\""), "{plan}");
    assert!(plan.contains("+ principal \"payment-svc\""), "{plan}");
    assert!(plan.contains("+ naming rule \"services\""), "{plan}");
    assert!(plan.contains("+ secret prod/payments/db"), "{plan}");
    assert!(plan.contains("~ secret prod/payments/api"), "{plan}");
    assert_eq!(revision(&env), None, "plan writes nothing");

    let applied = ok(&env.store(&["apply", &dir], b""));
    assert!(applied.contains("applied: revision 1"), "{applied}");
    let again = ok(&env.store(&["plan", &dir], b""));
    assert!(again.contains("No changes"), "{again}");
    let nothing = ok(&env.store(&["apply", &dir], b""));
    assert!(
        nothing.contains("nothing to apply (revision 1)"),
        "{nothing}"
    );
    assert_eq!(revision(&env), Some(1));

    // the generated value exists and is in no output, audit record or plan
    let generated = env.reveal("prod/payments/db");
    assert_eq!(generated.len(), 32);
    let json = ok(&env.store(&["plan", &dir, "--json"], b""));
    let drift = ok(&env.store(&["drift", &dir], b""));
    for out in [&plan, &applied, &again, &json, &drift, &env.audit_text()] {
        assert!(!out.contains(&generated), "generated value leaked: {out}");
        assert!(!out.contains(VALUE), "value leaked: {out}");
    }
    // audited under the operator, and the chain still verifies
    let ops: Vec<_> = env
        .audit_records()
        .iter()
        .filter(|r| r.event.operation.as_str() == "policy_change")
        .map(|r| r.event.principal.clone())
        .collect();
    assert_eq!(
        ops,
        ["operator:tester", "operator:tester"],
        "intent and outcome"
    );
    env.audit_verifies();
}

#[test]
fn drift_exits_26_after_a_change_made_outside_the_files() {
    let env = Env::init();
    let dir = declared(&env);
    ok(&env.store(&["apply", &dir], b""));
    ok(&env.store(&["drift", &dir], b""));
    ok(&env.store(&["metadata", "prod/payments/db", "--owner", "eve"], b""));
    let out = env.store(&["drift", &dir], b"");
    fails(&out, 26);
    assert!(
        stdout(&out).contains(
            "secret prod/payments/db: owner is \"eve\" in the store, \"payments-team\" in the files"
        ),
        "{}",
        stdout(&out)
    );
    let json = env.store(&["drift", &dir, "--json"], b"");
    fails(&json, 26);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v["secrets"][0]["fields"][0]["from"], "eve");
    ok(&env.store(&["apply", &dir], b""));
    ok(&env.store(&["drift", &dir], b""));
}

#[test]
fn a_saved_plan_is_refused_after_another_process_changed_the_store() {
    let env = Env::init();
    ok(&env.store(&["put", "prod/payments/api"], VALUE.as_bytes()));
    let dir = declared(&env);
    let plan = ok(&env.store(&["plan", &dir, "--json"], b""));
    let plan_file = env.file("plan.json", &plan);
    // another process (the CLI) writes between plan and apply
    ok(&env.store(&["metadata", "prod/payments/api", "--owner", "eve"], b""));
    let out = env.store(&["apply", &dir, "--plan-file", &plan_file], b"");
    let err = fails(&out, 25);
    assert!(
        err.contains("the store changed since the plan was made"),
        "{err}"
    );
    assert!(err.contains("prod/payments/api"), "{err}");
    // nothing was written: no applied record, no generated secret
    assert_eq!(revision(&env), None);
    fails(&env.store(&["get", "prod/payments/db"], b""), 3);
    let changes = env
        .audit_records()
        .iter()
        .filter(|r| r.event.operation.as_str() == "policy_change")
        .count();
    assert_eq!(changes, 0, "a refused apply leaves only its read record");
    let meta = ok(&env.store(&["metadata", "prod/payments/api"], b""));
    assert!(meta.contains("eve"), "{meta}");

    // a fresh plan applies
    let plan = ok(&env.store(&["plan", &dir, "--json"], b""));
    let plan_file = env.file("plan.json", &plan);
    ok(&env.store(&["apply", &dir, "--plan-file", &plan_file], b""));
    assert_eq!(revision(&env), Some(1));

    // a plan made from other files is refused
    let other = env.files_in("other", &[("a.toml", POLICIES)]);
    let err = fails(
        &env.store(&["apply", &other, "--plan-file", &plan_file], b""),
        25,
    );
    assert!(err.contains("other declaration files"), "{err}");
    assert_eq!(revision(&env), Some(1));
}

#[test]
fn a_value_key_and_bad_files_exit_24_naming_file_and_line() {
    let env = Env::init();
    let file = env.file(
        "bad.toml",
        "[secrets.\"prod/a/b\"]\nowner = \"x\"\nvalue = \"correct-horse-battery-staple-7f3a\"\n",
    );
    for cmd in ["plan", "apply", "drift"] {
        let err = fails(&env.store(&[cmd, &file], b""), 24);
        assert!(err.contains("bad.toml:3"), "{err}");
        assert!(err.contains("never go in declaration files"), "{err}");
    }
    let bad = env.file("syntax.toml", "[principals]\nsvc = [\"p\"\n");
    let err = fails(&env.store(&["plan", &bad], b""), 24);
    assert!(err.contains("syntax.toml:"), "{err}");
    let unknown = env.file("unknown.toml", "[principals]\nsvc = [\"nope\"]\n");
    let err = fails(&env.store(&["plan", &unknown], b""), 24);
    assert!(err.contains("\"nope\""), "{err}");
    let empty = env.files_in("empty", &[]);
    fails(&env.store(&["plan", &empty], b""), 24);
    let missing = env.file("missing.toml", "[secrets.\"prod/x/y\"]\nowner = \"o\"\n");
    let plan = ok(&env.store(&["plan", &missing], b""));
    assert!(plan.contains("! secret prod/x/y"), "{plan}");
    let dup = env.files_in("dup", &[("a.toml", POLICIES), ("b.toml", POLICIES)]);
    let err = fails(&env.store(&["plan", &dup], b""), 24);
    assert!(err.contains("a.toml") && err.contains("b.toml"), "{err}");
    assert_eq!(revision(&env), None);
}

#[test]
fn naming_rules_refuse_put_and_import() {
    let env = Env::init();
    // before any apply, every path is allowed
    ok(&env.store(&["put", "misc/thing"], VALUE.as_bytes()));
    let dir = declared(&env);
    ok(&env.store(&["apply", &dir], b""));
    let err = fails(
        &env.store(&["put", "dev/payments/db"], VALUE.as_bytes()),
        27,
    );
    assert!(err.contains("env must be one of prod, staging"), "{err}");
    fails(&env.store(&["get", "dev/payments/db"], b""), 3);
    ok(&env.store(&["put", "staging/payments/db"], VALUE.as_bytes()));

    let file = env.file("app.env", &format!("GOOD={VALUE}\nOTHER=x\n"));
    // dev/app/good breaks the rule: nothing is imported
    let err = fails(
        &env.store(
            &["import", "--format", "dotenv", &file, "--prefix", "dev/app"],
            b"",
        ),
        27,
    );
    assert!(err.contains("dev/app/good"), "{err}");
    fails(&env.store(&["get", "dev/app/good"], b""), 3);
    fails(&env.store(&["get", "dev/app/other"], b""), 3);
    ok(&env.store(
        &[
            "import", "--format", "dotenv", &file, "--prefix", "prod/app",
        ],
        b"",
    ));
    assert_eq!(env.reveal("prod/app/good"), VALUE);
}

#[test]
fn the_exit_code_tables_list_the_declarative_codes() {
    let env = Env::init();
    let help = ok(&env.run(&["--help"], b""));
    let readme = include_str!("../README.md");
    for code in ["24", "25", "26", "27"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "--help does not list {code}"
        );
        assert!(
            readme.contains(&format!("| {code} |")),
            "the README does not list {code}"
        );
    }
}

const DYNAMIC: &str = r#"
[dynamic.postgres]
connection_secret = "infra/pg/admin-url"

[dynamic.postgres.roles.readonly]
default_ttl_secs = 600
max_ttl_secs = 3600
grants = [{ privileges = ["Connect"], object = { Database = { name = "app" } } }]

[dynamic.postgres.roles.writer]
reassign_owned_to = "app_owner"

[rotation."payments/api-key"]
interval = "30d"
grace_period = "1h"
"#;

#[test]
fn dynamic_roles_and_rotation_schedules_are_planned_applied_and_drift_checked() {
    let env = Env::init();
    let dir = env.files_in("decl", &[("dynamic.toml", DYNAMIC)]);
    let plan = ok(&env.store(&["plan", &dir], b""));
    for line in [
        "+ dynamic \"postgres: role readonly\"",
        "+ dynamic \"postgres: role writer\"",
        "+ dynamic \"postgres: connection_secret\"",
        "+ rotation schedule \"payments/api-key\"",
    ] {
        assert!(plan.contains(line), "{line} missing from: {plan}");
    }
    ok(&env.store(&["apply", &dir], b""));
    ok(&env.store(&["drift", &dir], b""));

    // the roles are the catalog `creds` and `run --creds` use
    let shown = ok(&env.store(&["creds", "show", "--json"], b""));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let names: Vec<_> = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["readonly", "writer"]);
    assert_eq!(v["roles"][0]["max_ttl_secs"], 3600);
    // the schedule is in the applied record, for the engines to follow
    let schedule = env.with_library(async |door| {
        let applied = strongroom::declarative::Applied::load(door)
            .await
            .unwrap()
            .unwrap();
        applied.rotation["payments/api-key"]
    });
    assert_eq!(schedule.interval_secs, Some(30 * 86_400));
    assert_eq!(schedule.grace_period_secs, Some(3600));

    // a role dropped outside the files is drift, and apply restores it
    env.with_library(async |door| {
        let stored = strongroom_sqlx::dynamic::PgCatalog::load(door)
            .await
            .unwrap()
            .unwrap();
        let mut catalog = stored.catalog;
        catalog.roles.remove("writer");
        catalog
            .save(door, Some(stored.revision), "eve")
            .await
            .unwrap();
    });
    let out = env.store(&["drift", &dir], b"");
    fails(&out, 26);
    assert!(
        stdout(&out).contains("dynamic \"postgres: role writer\": declared, not in the store"),
        "{}",
        stdout(&out)
    );
    ok(&env.store(&["apply", &dir], b""));
    ok(&env.store(&["drift", &dir], b""));
}
