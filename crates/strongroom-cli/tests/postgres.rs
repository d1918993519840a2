//! The CLI on a PostgreSQL store: `--db` (or `STRONGROOM_DB`) holding a
//! `postgres://` URL, on a private cluster from `strongroom-testpg`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use strongroom_testpg::TestPostgres;
use support::{ok, stderr, stdout};

const VALUE: &str = "pg-cli-value-5c1e9a";

struct Env {
    dir: tempfile::TempDir,
    url: String,
    _pg: std::sync::Arc<TestPostgres>,
}

impl Env {
    fn new(label: &str) -> Self {
        let pg = TestPostgres::shared().expect("a PostgreSQL cluster");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = rt.block_on(pg.fresh_database(label)).unwrap();
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
            url,
            _pg: pg,
        };
        ok(&env.run(&["keygen", &env.key()], b"", &[]));
        env
    }

    fn key(&self) -> String {
        self.dir.path().join("root.key").display().to_string()
    }

    fn audit(&self) -> String {
        self.dir.path().join("audit.jsonl").display().to_string()
    }

    /// Runs the binary with `args` and extra environment `vars`.
    fn run(&self, args: &[&str], stdin: &[u8], vars: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        for (k, _) in std::env::vars() {
            if k.starts_with("STRONGROOM_") || k.starts_with("PG") {
                command.env_remove(k);
            }
        }
        let mut child = command
            .args(args)
            .envs(vars.iter().copied())
            .env("USER", "tester")
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        match child.stdin.take().unwrap().write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
        child.wait_with_output().unwrap()
    }

    /// A store command on the URL with the key file and the audit file.
    fn store(&self, args: &[&str], stdin: &[u8]) -> Output {
        let (key, audit) = (self.key(), self.audit());
        let mut all = args.to_vec();
        all.extend(["--db", &self.url, "--key-file", &key, "--audit-log", &audit]);
        self.run(&all, stdin, &[])
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// The password in a URL (`scheme://user:password@host...`).
fn password(url: &str) -> &str {
    let rest = url.split_once("://").unwrap().1;
    let userinfo = rest.rsplit_once('@').unwrap().0;
    userinfo.split_once(':').unwrap().1
}

#[test]
fn a_postgres_store_is_initialised_written_and_read_from_the_cli() {
    let env = Env::new("cli_pg_round_trip");
    let init = env.store(&["init"], b"");
    let shown = ok(&init);
    assert!(shown.contains("initialised postgres://"), "{shown}");
    // A second init is refused: the table already holds a store.
    let again = env.store(&["init"], b"");
    assert!(!again.status.success());
    assert!(text(&again).contains("already"), "{}", text(&again));

    ok(&env.store(&["put", "prod/db/password"], VALUE.as_bytes()));
    assert_eq!(
        ok(&env.store(&["get", "prod/db/password", "--reveal"], b"")),
        VALUE
    );
    assert!(ok(&env.store(&["list", "prod/db"], b"")).contains("password"));
    let status = ok(&env.store(&["status"], b""));
    assert!(status.contains("database: postgres://"), "{status}");

    // The audit file continues one chain across the commands and reaches
    // the head saved in the PostgreSQL store.
    let (audit, key) = (env.audit(), env.key());
    ok(&env.run(
        &[
            "audit",
            "verify",
            &audit,
            "--db",
            &env.url,
            "--key-file",
            &key,
        ],
        b"",
        &[],
    ));

    // Nothing printed or audited holds the value or the URL's password.
    let secret = password(&env.url);
    for out in [&init, &again] {
        assert!(!text(out).contains(secret));
    }
    let records = std::fs::read_to_string(env.audit()).unwrap();
    assert!(!records.contains(VALUE) && !records.contains(secret));
}

#[test]
fn the_url_can_come_from_the_environment() {
    let env = Env::new("cli_pg_env");
    let (key, audit) = (env.key(), env.audit());
    let vars = [
        ("STRONGROOM_DB", env.url.as_str()),
        ("STRONGROOM_KEY_FILE", key.as_str()),
    ];
    ok(&env.run(&["init", "--audit-log", &audit], b"", &vars));
    ok(&env.run(
        &["put", "app/token", "--audit-log", &audit],
        b"t0k3n",
        &vars,
    ));
    assert_eq!(
        ok(&env.run(
            &["get", "app/token", "--reveal", "--audit-log", &audit],
            b"",
            &vars
        )),
        "t0k3n"
    );
}

#[test]
fn a_postgres_store_needs_an_audit_file_named() {
    let env = Env::new("cli_pg_no_audit");
    let key = env.key();
    let out = env.run(&["init", "--db", &env.url, "--key-file", &key], b"", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--audit-log"));
    assert!(!text(&out).contains(password(&env.url)));
}

#[test]
fn a_refused_login_fails_without_showing_the_password() {
    let env = Env::new("cli_pg_bad_login");
    let wrong = "not-the-password-81d2";
    let rest = env.url.split_once("://").unwrap().1;
    let (userinfo, host) = rest.rsplit_once('@').unwrap();
    let user = userinfo.split_once(':').unwrap().0;
    let url = format!("postgres://{user}:{wrong}@{host}");
    let (key, audit) = (env.key(), env.audit());
    let out = env.run(
        &[
            "init",
            "--db",
            &url,
            "--key-file",
            &key,
            "--audit-log",
            &audit,
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let shown = text(&out);
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!shown.contains(password(&env.url)), "{shown}");
}
