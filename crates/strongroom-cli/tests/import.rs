//! `strongroom import`: .env files and Vault KV v2 exports.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::{Env, VALUE, fails, ok, stdout};

const DOTENV: &str = r#"# app settings
DB_PASSWORD=correct-horse-battery-staple-7f3a
export API_KEY = 'lit $x \n'   # single quotes: literal
MULTI="a\nb \"q\" \\"
PLAIN=value # a comment
HASH=a#b

  SPACED = x
"#;

#[test]
fn dotenv_import_writes_each_key_under_the_prefix() {
    let env = Env::init();
    let file = env.file("app.env", DOTENV);
    let out = ok(&env.store(
        &[
            "import", "--format", "dotenv", &file, "--prefix", "prod/app",
        ],
        b"",
    ));
    assert!(!out.contains(VALUE), "value printed: {out}");
    assert!(out.contains("imported 6 secret(s)"), "{out}");
    assert_eq!(env.reveal("prod/app/db_password"), VALUE);
    assert_eq!(env.reveal("prod/app/api_key"), "lit $x \\n");
    assert_eq!(env.reveal("prod/app/multi"), "a\nb \"q\" \\");
    assert_eq!(env.reveal("prod/app/plain"), "value");
    assert_eq!(env.reveal("prod/app/hash"), "a#b");
    assert_eq!(env.reveal("prod/app/spaced"), "x");
    // each write is the operator's, audited as `put` is
    let writes = env
        .audit_records()
        .iter()
        .filter(|r| r.event.operation.as_str() == "write")
        .count();
    assert_eq!(writes, 12, "intent and result per secret");
    assert!(
        env.audit_records()
            .iter()
            .any(|r| r.event.operation.as_str() == "list"),
        "the list that looked for existing secrets"
    );
    let text = std::fs::read_to_string(env.path("store.db.audit.jsonl")).unwrap();
    assert!(!text.contains(VALUE));
    env.audit_verifies();
}

#[test]
fn a_bad_line_names_its_number_never_the_value() {
    let env = Env::init();
    let file = env.file("bad.env", &format!("OK=1\n# c\n9BAD={VALUE}\n"));
    let err = fails(
        &env.store(
            &["import", "--format", "dotenv", &file, "--prefix", "p"],
            b"",
        ),
        20,
    );
    assert!(err.contains("line 3"), "{err}");
    let unterminated = env.file("open.env", &format!("A=\"{VALUE}\n"));
    let err = fails(
        &env.store(
            &[
                "import",
                "--format",
                "dotenv",
                &unterminated,
                "--prefix",
                "p",
            ],
            b"",
        ),
        20,
    );
    assert!(
        err.contains("line 1") && err.contains("unterminated"),
        "{err}"
    );
    // nothing written
    fails(&env.store(&["get", "p/ok"], b""), 3);
}

#[test]
fn existing_secrets_are_refused_skipped_or_overwritten() {
    let env = Env::init();
    ok(&env.store(&["put", "p/a"], b"old"));
    let file = env.file("a.env", "A=new\nB=two\n");
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "--format", "dotenv", &file, "--prefix", "p"];
        args.extend_from_slice(extra);
        env.store(&args, b"")
    };
    let err = fails(&import(&[]), 21);
    assert!(err.contains("p/a") && !err.contains("new"), "{err}");
    fails(&env.store(&["get", "p/b"], b""), 3);

    let out = ok(&import(&["--dry-run", "--skip-existing"]));
    assert!(
        out.contains("would write p/b") && out.contains("would skip p/a"),
        "{out}"
    );
    assert!(!out.contains("two"));
    fails(&env.store(&["get", "p/b"], b""), 3);

    ok(&import(&["--skip-existing"]));
    assert_eq!(env.reveal("p/a"), "old");
    assert_eq!(env.reveal("p/b"), "two");

    ok(&import(&["--overwrite"]));
    assert_eq!(env.reveal("p/a"), "new");
    let meta = ok(&env.store(&["metadata", "p/a"], b""));
    assert!(meta.contains("current version: 2"), "{meta}");

    // the two cannot be combined
    fails(&import(&["--overwrite", "--skip-existing"]), 2);
}

#[test]
fn empty_values_need_allow_empty() {
    let env = Env::init();
    let file = env.file("e.env", "EMPTY=\nFULL=x\n");
    let args = ["import", "--format", "dotenv", &file, "--prefix", "p"];
    let err = fails(&env.store(&args, b""), 18);
    assert!(err.contains("p/empty"), "{err}");
    fails(&env.store(&["get", "p/full"], b""), 3);
    let mut allowed = args.to_vec();
    allowed.push("--allow-empty");
    ok(&env.store(&allowed, b""));
    assert_eq!(env.reveal("p/empty"), "");
}

#[test]
fn vault_kv_get_output_is_imported_key_by_key() {
    let env = Env::init();
    let file = env.file(
        "kv.json",
        &format!(
            r#"{{"request_id":"x","lease_id":"","data":{{"data":{{"password":"{VALUE}","user":"app"}},"metadata":{{"version":3}}}},"warnings":null}}"#
        ),
    );
    let out = ok(&env.store(
        &[
            "import",
            "--format",
            "vault-kv2",
            &file,
            "--prefix",
            "prod/db",
        ],
        b"",
    ));
    assert!(!out.contains(VALUE));
    assert_eq!(env.reveal("prod/db/password"), VALUE);
    assert_eq!(env.reveal("prod/db/user"), "app");
}

#[test]
fn vault_multi_secret_map_uses_path_and_key() {
    let env = Env::init();
    let file = env.file(
        "many.json",
        r#"{"app/db": {"user": "u", "pass": "p"}, "app/api/": {"token": "t"}}"#,
    );
    ok(&env.store(
        &[
            "import",
            "--format",
            "vault-kv2",
            &file,
            "--prefix",
            "imported",
        ],
        b"",
    ));
    assert_eq!(env.reveal("imported/app/db/user"), "u");
    assert_eq!(env.reveal("imported/app/db/pass"), "p");
    assert_eq!(env.reveal("imported/app/api/token"), "t");
}

#[test]
fn vault_non_string_values_and_bad_json_are_refused() {
    let env = Env::init();
    let file = env.file("n.json", r#"{"app": {"ok": "v", "port": 5432}}"#);
    let err = fails(
        &env.store(
            &["import", "--format", "vault-kv2", &file, "--prefix", "p"],
            b"",
        ),
        20,
    );
    assert!(
        err.contains("port") && err.contains("not a string"),
        "{err}"
    );
    assert!(!err.contains("5432"), "{err}");
    fails(&env.store(&["get", "p/app/ok"], b""), 3);

    let broken = env.file("b.json", &format!("{{\"app\": {{\"k\": \"{VALUE}\"\n"));
    let err = fails(
        &env.store(
            &["import", "--format", "vault-kv2", &broken, "--prefix", "p"],
            b"",
        ),
        20,
    );
    assert!(err.contains("not JSON"), "{err}");
}

#[test]
fn names_differing_only_in_case_are_refused() {
    let env = Env::init();
    let file = env.file("c.env", "TOKEN=a\ntoken=b\n");
    let err = fails(
        &env.store(
            &["import", "--format", "dotenv", &file, "--prefix", "p"],
            b"",
        ),
        20,
    );
    assert!(err.contains("p/token is given twice"), "{err}");
}

#[test]
fn progress_is_quiet_when_stderr_is_not_a_terminal() {
    let env = Env::init();
    let file = env.file("a.env", "A=1\nB=2\n");
    let o = env.store(
        &["import", "--format", "dotenv", &file, "--prefix", "p"],
        b"",
    );
    ok(&o);
    assert_eq!(support::stderr(&o), "", "stdout: {}", stdout(&o));
}

#[test]
fn progress_is_shown_when_stderr_is_a_terminal() {
    let env = Env::init();
    let file = env.file("a.env", "A=1\nB=2\n");
    let args = ["import", "--format", "dotenv", &file, "--prefix", "p"];
    let Some(o) = env.store_on_terminal(&args) else {
        return;
    };
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("importing: 2/2 secrets"), "{text}");
    assert_eq!(env.reveal("p/b"), "2");
}

#[test]
fn dry_run_writes_nothing_but_records_the_list() {
    let env = Env::init();
    let file = env.file("a.env", &format!("A={VALUE}\n"));
    let before = env.audit_records().len();
    let out = ok(&env.store(
        &[
            "import",
            "--format",
            "dotenv",
            &file,
            "--prefix",
            "p",
            "--dry-run",
        ],
        b"",
    ));
    assert!(out.contains("would write p/a"), "{out}");
    assert!(!out.contains(VALUE));
    fails(&env.store(&["get", "p/a"], b""), 3);
    let records = env.audit_records();
    let new: Vec<&str> = records[before..]
        .iter()
        .map(|r| r.event.operation.as_str())
        .collect();
    // the dry run's `list`, then the `get` that found nothing
    assert_eq!(new, ["list", "read"], "{new:?}");
    env.audit_verifies();
}

#[test]
fn vault_deleted_version_and_bad_names_are_refused() {
    let env = Env::init();
    let deleted = env.file(
        "d.json",
        r#"{"data": {"data": null, "metadata": {"deletion_time": "x"}}}"#,
    );
    let err = fails(
        &env.store(
            &["import", "--format", "vault-kv2", &deleted, "--prefix", "p"],
            b"",
        ),
        20,
    );
    assert!(err.contains("data.data is not an object"), "{err}");
    let spaced = env.file("s.json", r#"{"app": {"a key": "v"}}"#);
    fails(
        &env.store(
            &["import", "--format", "vault-kv2", &spaced, "--prefix", "p"],
            b"",
        ),
        20,
    );
    fails(&env.store(&["get", "p/app/a key"], b""), 11);
}

#[test]
fn the_exit_code_tables_list_the_new_codes() {
    let env = Env::init();
    let help = ok(&env.run(&["--help"], b""));
    let readme = include_str!("../README.md");
    for code in ["18", "20", "21", "22", "23"] {
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
