//! End-to-end tests of the `strongroom` binary over real SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const VALUE: &str = "correct-horse-battery-staple-7f3a";

/// Every variable the binary reads in place of an option.
const STRONGROOM_VARS: [&str; 7] = [
    "STRONGROOM_DB",
    "STRONGROOM_KEY_FILE",
    "STRONGROOM_PKCS11_MODULE",
    "STRONGROOM_PKCS11_TOKEN",
    "STRONGROOM_PKCS11_KEY_LABEL",
    "STRONGROOM_PKCS11_PIN_FILE",
    "STRONGROOM_SHAMIR_SHARES_FILE",
];

struct Env {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
    /// Variables removed from the child's environment.
    unset: Vec<String>,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            vars: Vec::new(),
            // the caller's own settings must not reach the commands tested
            unset: STRONGROOM_VARS.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db(&self) -> String {
        self.path("store.db").display().to_string()
    }

    fn key(&self) -> String {
        self.path("root.key").display().to_string()
    }

    /// Runs the binary with `args`, feeding `stdin`.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        for k in &self.unset {
            command.env_remove(k);
        }
        let mut child = command
            .args(args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // a command that exits without reading stdin closes the pipe early
        match child.stdin.take().unwrap().write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a store command with `--db` and `--key-file` appended.
    fn store(&self, args: &[&str], stdin: &[u8]) -> Output {
        let db = self.db();
        let key = self.key();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--db", &db, "--key-file", &key]);
        self.run(&all, stdin)
    }

    fn init(&self) {
        ok(&self.run(&["keygen", &self.key()], b""));
        ok(&self.run(
            &["init", "--db", &self.db(), "--key-file", &self.key()],
            b"",
        ));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    assert!(!stderr(o).contains(VALUE), "value leaked to stderr");
    stdout(o)
}

#[track_caller]
fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    assert!(!stderr(o).contains(VALUE), "value leaked to stderr");
    stderr(o)
}

#[test]
fn full_lifecycle_across_invocations() {
    let env = Env::new();
    env.init();
    // the key file was written owner-only
    let mode = std::fs::metadata(env.key()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let out = ok(&env.store(&["put", "prod/billing/db-password"], VALUE.as_bytes()));
    assert!(out.contains("version 1"), "{out}");
    ok(&env.store(&["put", "prod/billing/api-key", "--cas", "0"], b"k1"));
    // a CAS mismatch has its own exit code
    fails(
        &env.store(&["put", "prod/billing/api-key", "--cas", "0"], b"k2"),
        4,
    );

    // without --reveal: metadata only, never the value
    let meta = ok(&env.store(&["get", "prod/billing/db-password"], b""));
    assert!(!meta.contains(VALUE), "{meta}");
    assert!(meta.contains("version 1"), "{meta}");
    assert!(meta.contains(&format!("{} bytes", VALUE.len())), "{meta}");

    // with --reveal: exactly the raw bytes
    let revealed = env.store(&["get", "prod/billing/db-password", "--reveal"], b"");
    ok(&revealed);
    assert_eq!(revealed.stdout, VALUE.as_bytes());

    assert_eq!(ok(&env.store(&["list"], b"")), "prod/\n");
    assert_eq!(
        ok(&env.store(&["list", "prod/billing"], b"")),
        "api-key\ndb-password\n"
    );
    assert_eq!(
        ok(&env.store(&["list", "--recursive"], b"")),
        "prod/billing/api-key\nprod/billing/db-password\n"
    );

    let rot = ok(&env.store(&["rotate"], b""));
    assert!(rot.contains("key version 2 is now primary"), "{rot}");
    // every sealed record moves to key 2: the two values and the records
    // the barrier seals beside them (metadata, and later the audit head)
    let rw = ok(&env.store(&["rewrap", "--batch", "1"], b""));
    assert!(rw.contains("under key version 2"), "{rw}");
    assert!(rw.contains("; 0 record(s) remain"), "{rw}");
    assert!(!rw.contains("re-sealed 0 "), "{rw}");

    let status = ok(&env.store(&["status"], b""));
    assert!(status.contains("primary key version: 2"), "{status}");
    assert!(status.contains("protector: software"), "{status}");
    let line1 = status.lines().find(|l| l.starts_with("1 ")).unwrap();
    assert!(line1.contains("active"), "{status}");
    let line2 = status.lines().find(|l| l.starts_with("2 ")).unwrap();
    assert!(line2.contains("primary"), "{status}");
    assert!(!status.contains(VALUE));

    // key 1 protects nothing after rewrap: retire and destroy it
    ok(&env.store(&["retire", "--min-version", "2"], b""));
    ok(&env.store(&["destroy-key", "1"], b""));
    let status = ok(&env.store(&["status"], b""));
    let line1 = status.lines().find(|l| l.starts_with("1 ")).unwrap();
    assert!(line1.contains("destroyed"), "{status}");
    // destroying the primary is refused by the keyring
    fails(&env.store(&["destroy-key", "2"], b""), 10);

    // a fresh process still reads the value back (now under key 2)
    let again = env.store(&["get", "prod/billing/db-password", "--reveal"], b"");
    ok(&again);
    assert_eq!(again.stdout, VALUE.as_bytes());

    // versions: delete, read fails with the not-found class, undelete, destroy
    ok(&env.store(&["put", "prod/billing/db-password"], b"second-value"));
    let out = ok(&env.store(
        &["delete", "prod/billing/db-password", "--versions", "2"],
        b"",
    ));
    assert!(out.contains("deleted version(s) 2"), "{out}");
    fails(&env.store(&["get", "prod/billing/db-password"], b""), 3);
    ok(&env.store(
        &["undelete", "prod/billing/db-password", "--versions", "2"],
        b"",
    ));
    ok(&env.store(
        &["destroy", "prod/billing/db-password", "--versions", "1"],
        b"",
    ));
    let e = fails(
        &env.store(
            &[
                "get",
                "prod/billing/db-password",
                "--version",
                "1",
                "--reveal",
            ],
            b"",
        ),
        3,
    );
    assert!(e.contains("destroyed"), "{e}");
    let meta = ok(&env.store(&["metadata", "prod/billing/db-password"], b""));
    assert!(meta.contains("current version: 2"), "{meta}");
    assert!(meta.contains("destroyed"), "{meta}");
    assert!(!meta.contains(VALUE));

    // metadata changes, then purge
    let meta = ok(&env.store(
        &[
            "metadata",
            "prod/billing/api-key",
            "--owner",
            "team-billing",
            "--tags",
            "pci,db",
            "--rotation-interval",
            "86400",
            "--max-versions",
            "3",
        ],
        b"",
    ));
    assert!(meta.contains("owner: team-billing"), "{meta}");
    assert!(meta.contains("tags: db, pci"), "{meta}");
    assert!(meta.contains("rotation interval: 86400s"), "{meta}");
    assert!(meta.contains("max versions: 3\n"), "{meta}");
    let again = ok(&env.store(&["metadata", "prod/billing/api-key"], b""));
    assert!(again.contains("owner: team-billing"), "{again}");
    // fields reset with --clear; a bad one is refused and changes nothing
    let cleared = ok(&env.store(
        &[
            "metadata",
            "prod/billing/api-key",
            "--clear",
            "owner",
            "--clear",
            "tags",
        ],
        b"",
    ));
    assert!(!cleared.contains("owner:"), "{cleared}");
    assert!(!cleared.contains("tags:"), "{cleared}");
    assert!(cleared.contains("max versions: 3\n"), "{cleared}");
    let e = fails(
        &env.store(
            &["metadata", "prod/billing/api-key", "--clear", "path"],
            b"",
        ),
        11,
    );
    assert!(e.contains("cannot clear metadata field"), "{e}");
    let e = fails(
        &env.store(
            &[
                "metadata",
                "prod/billing/api-key",
                "--owner",
                "x",
                "--clear",
                "owner",
            ],
            b"",
        ),
        11,
    );
    assert!(e.contains("both set and cleared"), "{e}");
    ok(&env.store(&["purge", "prod/billing/api-key"], b""));
    fails(&env.store(&["metadata", "prod/billing/api-key"], b""), 3);
    assert_eq!(
        ok(&env.store(&["list", "--recursive"], b"")),
        "prod/billing/db-password\n"
    );

    // errors of other classes
    fails(&env.store(&["get", "prod/nothing-here"], b""), 3);
    fails(&env.store(&["get", "Prod/Bad"], b""), 11);
    fails(
        &env.run(&["init", "--db", &env.db(), "--key-file", &env.key()], b""),
        9,
    );

    // the value never reached the database file in clear
    let raw = std::fs::read(env.path("store.db")).unwrap();
    assert!(!raw.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
}

#[test]
fn loose_key_file_is_refused_with_a_clear_message() {
    let env = Env::new();
    env.init();
    std::fs::set_permissions(env.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = fails(&env.store(&["status"], b""), 6);
    assert!(e.contains("chmod 600"), "{e}");
    assert!(e.contains("644"), "{e}");
    // keygen refuses to overwrite
    std::fs::set_permissions(env.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = fails(&env.run(&["keygen", &env.key()], b""), 6);
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn wrong_key_file_fails_to_unseal() {
    let env = Env::new();
    env.init();
    ok(&env.store(&["put", "app/token"], VALUE.as_bytes()));
    let other = env.path("other.key").display().to_string();
    ok(&env.run(&["keygen", &other], b""));
    let e = fails(
        &env.run(
            &[
                "get",
                "app/token",
                "--reveal",
                "--db",
                &env.db(),
                "--key-file",
                &other,
            ],
            b"",
        ),
        5,
    );
    assert!(e.contains("wrong key file"), "{e}");
    assert!(
        !stdout(&env.run(
            &[
                "get",
                "app/token",
                "--reveal",
                "--db",
                &env.db(),
                "--key-file",
                &other
            ],
            b""
        ))
        .contains(VALUE)
    );
    // a missing database is reported, not created
    let missing = env.path("missing.db").display().to_string();
    let e = fails(
        &env.run(&["status", "--db", &missing, "--key-file", &env.key()], b""),
        9,
    );
    assert!(e.contains("strongroom init"), "{e}");
    assert!(!Path::new(&missing).exists());
    // a file that is not a database is a storage error
    let junk = env.path("junk.db");
    std::fs::write(&junk, vec![0x5a_u8; 8192]).unwrap();
    let junk = junk.display().to_string();
    fails(
        &env.run(&["status", "--db", &junk, "--key-file", &env.key()], b""),
        8,
    );
    // two protectors at once is a usage error
    let shares = env.path("s.txt").display().to_string();
    fails(
        &env.run(
            &[
                "status",
                "--db",
                &env.db(),
                "--key-file",
                &env.key(),
                "--shamir-shares-file",
                &shares,
            ],
            b"",
        ),
        2,
    );
}

#[test]
fn shamir_init_prints_shares_once_and_unseals_with_k() {
    let env = Env::new();
    let db = env.db();
    let out = env.run(&["init", "--db", &db, "--shamir", "2/3"], b"");
    let shares = ok(&out);
    let lines: Vec<&str> = shares.lines().collect();
    assert_eq!(lines.len(), 3, "{shares}");
    assert!(lines.iter().all(|l| l.starts_with("srs1-")));
    assert!(stderr(&out).contains("shown once"), "{}", stderr(&out));
    // no share is stored in the database
    let raw = std::fs::read(env.path("store.db")).unwrap();
    for l in &lines {
        assert!(!raw.windows(l.len()).any(|w| w == l.as_bytes()));
    }
    let write = |name: &str, content: &str, mode: u32| {
        let p = env.path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.display().to_string()
    };
    let two = write(
        "two.txt",
        &format!("# holders A and C\n{}\n{}\n", lines[0], lines[2]),
        0o600,
    );
    let one = write("one.txt", &format!("{}\n", lines[1]), 0o600);
    let loose = write("loose.txt", &format!("{}\n{}\n", lines[0], lines[1]), 0o640);

    ok(&env.run(
        &["put", "a/b", "--db", &db, "--shamir-shares-file", &two],
        VALUE.as_bytes(),
    ));
    let got = env.run(
        &[
            "get",
            "a/b",
            "--reveal",
            "--db",
            &db,
            "--shamir-shares-file",
            &two,
        ],
        b"",
    );
    ok(&got);
    assert_eq!(got.stdout, VALUE.as_bytes());
    let e = fails(
        &env.run(&["status", "--db", &db, "--shamir-shares-file", &one], b""),
        5,
    );
    assert!(e.contains("too few shares"), "{e}");
    let e = fails(
        &env.run(
            &["status", "--db", &db, "--shamir-shares-file", &loose],
            b"",
        ),
        12,
    );
    assert!(e.contains("chmod 600"), "{e}");
}

#[test]
fn rotate_root_moves_to_a_new_key_file() {
    let env = Env::new();
    env.init();
    ok(&env.store(&["put", "a/b"], VALUE.as_bytes()));
    let new_key = env.path("new.key").display().to_string();
    ok(&env.run(&["keygen", &new_key], b""));
    let out = ok(&env.store(&["rotate-root", "--new-key-file", &new_key], b""));
    assert!(out.contains("software"), "{out}");
    // the old key no longer opens the store; the new one does
    fails(&env.store(&["status"], b""), 5);
    let got = env.run(
        &[
            "get",
            "a/b",
            "--reveal",
            "--db",
            &env.db(),
            "--key-file",
            &new_key,
        ],
        b"",
    );
    ok(&got);
    assert_eq!(got.stdout, VALUE.as_bytes());
}

/// A private SoftHSM2 token directory with one token, for this test only.
fn softhsm_env() -> Env {
    let mut env = Env::new();
    let tokens = env.path("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = env.path("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", "cli-test"])
        .args(["--so-pin", "12345678", "--pin", "1234"])
        .output()
        .expect("softhsm2-util must be installed (apt-get install softhsm2)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.vars
        .push(("SOFTHSM2_CONF".into(), conf.display().to_string()));
    env
}

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

#[test]
fn pkcs11_protector_on_softhsm() {
    let env = softhsm_env();
    let db = env.db();
    let pin_file = env.path("pin");
    std::fs::write(&pin_file, "1234\n").unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pin = pin_file.display().to_string();
    let hsm = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        v.extend(
            [
                "--db",
                &db,
                "--pkcs11-module",
                MODULE,
                "--token",
                "cli-test",
                "--key-label",
                "root",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        v
    };
    let run = |args: Vec<String>, stdin: &[u8]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&a, stdin)
    };

    // init generates the token key; the PIN comes from a file
    let out = ok(&run(hsm(&["init", "--pin-file", &pin]), b""));
    assert!(out.contains("protector: pkcs11"), "{out}");
    // put reads the value from stdin, so the PIN must come from a file
    let e = fails(&run(hsm(&["put", "a/b"]), VALUE.as_bytes()), 2);
    assert!(e.contains("--pin-file"), "{e}");
    ok(&run(
        hsm(&["put", "a/b", "--pin-file", &pin]),
        VALUE.as_bytes(),
    ));
    // get takes the PIN from stdin
    let got = run(hsm(&["get", "a/b", "--reveal"]), b"1234\n");
    ok(&got);
    assert_eq!(got.stdout, VALUE.as_bytes());
    let status = ok(&run(hsm(&["status"]), b"1234\n"));
    assert!(status.contains("protector: pkcs11"), "{status}");
    // a wrong PIN is an unseal failure, and the PIN is not echoed
    let e = fails(&run(hsm(&["status"]), b"9999\n"), 5);
    assert!(!e.contains("9999"), "{e}");
    // rotate the token key and re-wrap the root key under the new version
    let out = ok(&run(
        hsm(&["rotate-root", "--rotate-token-key", "--pin-file", &pin]),
        b"",
    ));
    assert!(out.contains("token key version 2"), "{out}");
    let status = ok(&run(hsm(&["status"]), b"1234\n"));
    assert!(status.contains("token key version: 2"), "{status}");
    let got = run(hsm(&["get", "a/b", "--reveal", "--pin-file", &pin]), b"");
    ok(&got);
    assert_eq!(got.stdout, VALUE.as_bytes());
    // --rotate-token-key needs a PKCS#11 store
    let other = Env::new();
    other.init();
    fails(&other.store(&["rotate-root", "--rotate-token-key"], b""), 2);
    // a wrong token label is a protector error
    let mut args = hsm(&["status", "--pin-file", &pin]);
    let i = args.iter().position(|a| a == "cli-test").unwrap();
    args[i] = "no-such-token".into();
    fails(&run(args, b""), 7);
}

/// A rewrap that leaves anything on an older key version says how much and
/// exits 13, so a script never retires a version that still protects data.
#[test]
fn rewrap_exits_13_while_records_remain_on_older_versions() {
    let env = Env::new();
    env.init();
    ok(&env.store(&["put", "app/a"], b"value-a"));
    ok(&env.store(&["put", "app/b"], b"value-b"));
    // a second version: the first moves to a version record of its own
    ok(&env.store(&["put", "app/b"], b"value-b2"));
    ok(&env.store(&["rotate"], b""));
    // tamper with one stored record so it cannot be re-sealed
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use strongroom::storage::Storage as _;
        let sqlite = strongroom_sqlx::SqliteStore::open(env.db()).await.unwrap();
        let key = sqlite.list("s/kv/app/b").await.unwrap().remove(0);
        let mut raw = sqlite.get(&key).await.unwrap().unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        sqlite.put(&key, &raw).await.unwrap();
        sqlite.close().await;
    });
    let out = fails(&env.store(&["rewrap"], b""), 13);
    assert!(out.contains("1 record(s) on older key versions"), "{out}");
    let out = env.store(&["rewrap"], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 record(s) remain"), "{stdout}");
    assert!(stdout.contains("unreadable: s/kv/app/b@"), "{stdout}");
}

/// A metadata record edited in the SQLite file is a corrupt record (exit
/// 15, its key named); a secret value moved to another version's place does
/// not open (exit 16). Neither prints a value. (The current version's value
/// is inside the metadata record; versions 1 and 2 have records of their
/// own.)
#[test]
fn tampered_records_exit_with_their_own_codes() {
    use strongroom::storage::Storage as _;
    let env = Env::new();
    env.init();
    ok(&env.store(&["put", "prod/app/db"], VALUE.as_bytes()));
    ok(&env.store(&["put", "prod/app/db"], b"second-value"));
    ok(&env.store(&["put", "prod/app/db"], b"third-value"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = env.db();
    let (meta, v1, v2) = rt.block_on(async {
        let s = strongroom_sqlx::SqliteStore::open(&db).await.unwrap();
        let meta = s.get("kvm/prod/app/db").await.unwrap().unwrap();
        let versions = s.scan("s/kv/prod/app/db@", None, 10).await.unwrap();
        s.close().await;
        (meta, versions[0].clone(), versions[1].clone())
    });
    let write = |key: &str, value: &[u8]| {
        let db = db.clone();
        rt.block_on(async {
            let s = strongroom_sqlx::SqliteStore::open(&db).await.unwrap();
            s.put(key, value).await.unwrap();
            s.close().await;
        });
    };

    let mut edited = meta.clone();
    let mid = edited.len() / 2;
    edited[mid] ^= 1;
    write("kvm/prod/app/db", &edited);
    let e = fails(&env.store(&["get", "prod/app/db"], b""), 15);
    assert!(e.contains("kvm/prod/app/db"), "{e}");
    write("kvm/prod/app/db", &meta);

    // version 1's sealed bytes at version 2's key
    write(&v2.0, &v1.1);
    let v2_args = ["get", "prod/app/db", "--version", "2", "--reveal"];
    let e = fails(&env.store(&v2_args, b""), 16);
    assert!(!e.contains(VALUE), "{e}");
    write(&v2.0, &v2.1);
    let out = ok(&env.store(&v2_args, b""));
    assert!(out.contains("second-value"), "{out}");
    let out = ok(&env.store(&["get", "prod/app/db", "--reveal"], b""));
    assert!(out.contains("third-value"), "{out}");
}

// ----- the operator's audit trail -----

/// The records of the CLI's default audit file, parsed.
fn audit_records(env: &Env) -> Vec<strongroom::audit::AuditRecord> {
    std::fs::read_to_string(env.path("store.db.audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| strongroom::audit::AuditRecord::from_json_line(l).unwrap())
        .collect()
}

/// (principal, operation, outcome) of each record.
fn audit_summary(records: &[strongroom::audit::AuditRecord]) -> Vec<(String, String, String)> {
    use strongroom::audit::Outcome;
    records
        .iter()
        .map(|r| {
            let outcome = match &r.event.outcome {
                Outcome::Allowed => "allowed".to_owned(),
                Outcome::Denied => "denied".to_owned(),
                Outcome::Error { kind } => kind.clone(),
            };
            (
                r.event.principal.clone(),
                r.event.operation.as_str().to_owned(),
                outcome,
            )
        })
        .collect()
}

fn summary(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(p, o, r)| ((*p).to_owned(), (*o).to_owned(), (*r).to_owned()))
        .collect()
}

/// Every command that touches the store leaves its records in the audit
/// file next to the database, under `operator:<name>`, values only as
/// HMACs; the file verifies against the store's saved head.
#[test]
fn every_operator_action_is_audited_and_the_file_verifies() {
    let mut env = Env::new();
    env.vars.push(("USER".into(), "alice".into()));
    env.init();
    let file = env.path("store.db.audit.jsonl");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    ok(&env.store(&["put", "prod/app/db"], VALUE.as_bytes()));
    let got = env.store(&["get", "prod/app/db", "--reveal"], b"");
    ok(&got);
    assert_eq!(got.stdout, VALUE.as_bytes());
    ok(&env.store(&["list", "--recursive"], b""));
    ok(&env.store(&["put", "prod/app/db", "--operator", "bob"], b"second"));
    ok(&env.store(&["delete", "prod/app/db", "--versions", "2"], b""));
    ok(&env.store(&["rotate"], b""));
    ok(&env.store(&["rewrap"], b""));
    ok(&env.store(&["status"], b""));
    fails(&env.store(&["get", "prod/app/missing"], b""), 3);
    let new_key = env.path("new.key").display().to_string();
    ok(&env.run(&["keygen", &new_key], b""));
    ok(&env.store(&["rotate-root", "--new-key-file", &new_key], b""));

    let records = audit_records(&env);
    let a = "operator:alice";
    assert_eq!(
        audit_summary(&records),
        summary(&[
            (a, "keyring_rotate", "allowed"), // init
            (a, "write", "allowed"),          // put: intent, result
            (a, "write", "allowed"),
            (a, "read", "allowed"), // get: before the value is shown
            (a, "list", "allowed"),
            ("operator:bob", "write", "allowed"),
            ("operator:bob", "write", "allowed"),
            (a, "delete", "allowed"),
            (a, "delete", "allowed"),
            (a, "keyring_rotate", "allowed"),
            (a, "keyring_rotate", "allowed"),
            (a, "rewrap", "allowed"),
            (a, "rewrap", "allowed"),
            (a, "read_metadata", "allowed"), // status
            (a, "read", "not_found"),
            (a, "root_key_rotate", "allowed"),
            (a, "root_key_rotate", "allowed"),
        ])
    );
    // intent and result of one action share a request id; actions do not
    assert_eq!(records[1].event.request_id, records[2].event.request_id);
    assert_ne!(records[2].event.request_id, records[3].event.request_id);
    // the write's result and the read name the version; the key rotation
    // names the new key version
    assert_eq!(records[2].event.version, Some(1));
    assert_eq!(records[3].event.version, Some(1));
    assert_eq!(records[8].event.version, Some(2));
    assert_eq!(records[10].event.version, Some(2));
    assert_eq!(records[3].event.path.as_deref(), Some("prod/app/db"));
    assert_eq!(records[9].event.path.as_deref(), Some("sys/keyring"));
    // the value written and the value read appear as the same keyed HMAC
    let written = records[1].event.fields.get("value_hmac").unwrap();
    let read = records[3].event.fields.get("value_hmac").unwrap();
    assert_eq!(written, read);
    assert!(written.as_str().starts_with("hmac-sha256:"), "{written}");
    assert_ne!(
        records[5].event.fields.get("value_hmac").unwrap(),
        written,
        "another value, another HMAC"
    );
    // never the value itself
    let raw = std::fs::read(&file).unwrap();
    assert!(!raw.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
    assert!(!raw.windows(6).any(|w| w == b"second"));

    // the file verifies against the store's saved head (now under the new key)
    let out = ok(&env.run(
        &[
            "audit",
            "verify",
            &file.display().to_string(),
            "--db",
            &env.db(),
            "--key-file",
            &new_key,
        ],
        b"",
    ));
    assert!(
        out.starts_with(&format!("ok: {} record(s) verified", records.len())),
        "{out}"
    );
}

/// A chain cut short (the store's saved head is ahead of the file), or a
/// file deleted, stops the next command before it does anything.
#[test]
fn truncated_or_missing_audit_file_stops_the_next_command() {
    let env = Env::new();
    env.init();
    ok(&env.store(&["put", "app/token"], VALUE.as_bytes()));
    ok(&env.store(&["put", "app/token"], b"second"));
    let file = env.path("store.db.audit.jsonl");
    let full = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    assert_eq!(lines.len(), 5);

    // the last record removed
    let cut = format!("{}\n", lines[..4].join("\n"));
    std::fs::write(&file, &cut).unwrap();
    let e = fails(&env.store(&["put", "app/token"], b"third"), 17);
    assert!(e.contains("truncated") && e.contains("seq 5"), "{e}");
    let e = fails(&env.store(&["get", "app/token", "--reveal"], b""), 17);
    assert!(e.contains("truncated"), "{e}");
    let out = env.store(&["get", "app/token", "--reveal"], b"");
    assert!(out.stdout.is_empty(), "nothing is shown");
    fails(&env.store(&["rotate"], b""), 17);
    // nothing was appended to the file either
    assert_eq!(std::fs::read_to_string(&file).unwrap(), cut);
    // emptied
    std::fs::write(&file, "").unwrap();
    fails(&env.store(&["status"], b""), 17);
    // deleted
    std::fs::remove_file(&file).unwrap();
    let e = fails(&env.store(&["status"], b""), 17);
    assert!(e.contains("missing"), "{e}");
    assert!(!file.exists(), "a missing file is not recreated");

    // restored: the chain goes on, and none of the refused commands had
    // an effect (still version 2, key version 1)
    std::fs::write(&file, &full).unwrap();
    let got = env.store(&["get", "app/token", "--reveal"], b"");
    ok(&got);
    assert_eq!(got.stdout, b"second");
    let status = ok(&env.store(&["status"], b""));
    assert!(status.contains("primary key version: 1"), "{status}");
    ok(&env.store(&["audit", "verify", &file.display().to_string()], b""));
    assert_eq!(audit_records(&env).len(), 7);
}

/// An audit file that cannot be written refuses the command before the
/// store is touched.
#[test]
fn unwritable_audit_file_fails_closed() {
    let env = Env::new();
    env.init();
    // a directory is no file, whoever runs the test
    let dir = env.path("audit-dir");
    std::fs::create_dir(&dir).unwrap();
    let dir_s = dir.display().to_string();
    let e = fails(
        &env.store(
            &["put", "app/token", "--audit-log", &dir_s],
            VALUE.as_bytes(),
        ),
        12,
    );
    assert!(e.contains("audit"), "{e}");
    // the secret was not written (read back with the store's own audit file)
    fails(&env.store(&["get", "app/token"], b""), 3);

    // a read-only audit file (unless the test runs as root, which may
    // write it anyway)
    let file = env.path("store.db.audit.jsonl");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    let writable = std::fs::OpenOptions::new().append(true).open(&file).is_ok();
    if !writable {
        fails(&env.store(&["put", "app/token"], VALUE.as_bytes()), 12);
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    fails(&env.store(&["get", "app/token"], b""), 3);

    // init refuses before it creates anything
    let other = env.path("other.db").display().to_string();
    fails(
        &env.run(
            &[
                "init",
                "--db",
                &other,
                "--key-file",
                &env.key(),
                "--audit-log",
                &dir_s,
            ],
            b"",
        ),
        12,
    );
    assert!(!Path::new(&other).exists());
    // ... and an audit file with another store's records is not reused
    let used = env.path("store.db.audit.jsonl").display().to_string();
    let e = fails(
        &env.run(
            &[
                "init",
                "--db",
                &other,
                "--key-file",
                &env.key(),
                "--audit-log",
                &used,
            ],
            b"",
        ),
        17,
    );
    assert!(e.contains("already holds records"), "{e}");
    assert!(!Path::new(&other).exists());
}

/// The operator's name: --operator, else USER, else LOGNAME, else the uid;
/// a name that could garble a record is refused.
#[test]
fn operator_name_comes_from_the_option_or_the_environment() {
    let mut env = Env::new();
    env.vars.push(("USER".into(), "carol".into()));
    env.vars.push(("LOGNAME".into(), "dave".into()));
    env.init();
    ok(&env.store(&["list"], b""));
    ok(&env.store(&["list", "--operator", "erin"], b""));
    env.vars.retain(|(k, _)| k != "USER");
    env.unset.push("USER".into());
    ok(&env.store(&["list"], b""));
    env.vars.clear();
    env.unset.push("LOGNAME".into());
    ok(&env.store(&["list"], b""));
    for bad in ["", "two words", "line\nbreak", &"x".repeat(65)] {
        fails(&env.store(&["list", "--operator", bad], b""), 2);
    }
    let principals: Vec<String> = audit_records(&env)
        .into_iter()
        .map(|r| r.event.principal)
        .collect();
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        principals,
        [
            "operator:carol".to_owned(),
            "operator:carol".to_owned(),
            "operator:erin".to_owned(),
            "operator:dave".to_owned(),
            format!("operator:{uid}"),
        ]
    );
}

/// Commands running at the same time on one store take turns on the audit
/// file, so the chain stays one chain.
#[test]
fn concurrent_commands_keep_one_chain() {
    let env = Env::new();
    env.init();
    std::thread::scope(|s| {
        for i in 0..6 {
            let env = &env;
            s.spawn(move || {
                let path = format!("app/s{i}");
                ok(&env.store(&["put", &path], format!("value-{i}").as_bytes()));
            });
        }
    });
    let file = env.path("store.db.audit.jsonl").display().to_string();
    let out = ok(&env.store(&["audit", "verify", &file], b""));
    assert!(out.starts_with("ok: 13 record(s) verified"), "{out}");
    assert_eq!(ok(&env.store(&["list", "app"], b"")).lines().count(), 6);
}

/// Reads are bounded: a value over 16 MiB on stdin is refused (exit 2) and
/// nothing is written.
#[test]
fn an_oversized_value_on_stdin_is_refused() {
    let env = Env::new();
    env.init();
    let big = vec![b'x'; 16 * 1024 * 1024 + 1];
    let e = fails(&env.store(&["put", "prod/app/huge"], &big), 2);
    assert!(e.contains("longer than"), "{e}");
    fails(&env.store(&["get", "prod/app/huge"], b""), 3);
}

#[test]
fn db_and_key_file_come_from_the_environment() {
    let mut env = Env::new();
    env.vars = vec![
        ("STRONGROOM_DB".into(), env.db()),
        ("STRONGROOM_KEY_FILE".into(), env.key()),
    ];
    // keygen, init, put and get with no --db and no --key-file at all
    ok(&env.run(&["keygen"], b""));
    ok(&env.run(&["init"], b""));
    ok(&env.run(&["put", "app/token"], VALUE.as_bytes()));
    let got = env.run(&["get", "app/token", "--reveal"], b"");
    assert_eq!(ok(&got), VALUE);
    let status = ok(&env.run(&["status"], b""));
    assert!(
        status.contains(&format!("database: {}", env.db())),
        "{status}"
    );

    // --help names the variables
    let help = ok(&env.run(&["get", "--help"], b""));
    assert!(help.contains("STRONGROOM_DB"), "{help}");
    let help = ok(&env.run(&["--help"], b""));
    for var in STRONGROOM_VARS {
        assert!(help.contains(var), "{var} missing from --help:\n{help}");
    }
}

#[test]
fn options_win_over_the_environment() {
    let mut env = Env::new();
    env.init();
    // a second store and key the variables point at
    let other_db = env.path("other.db").display().to_string();
    let other_key = env.path("other.key").display().to_string();
    ok(&env.run(&["keygen", &other_key], b""));
    ok(&env.run(&["init", "--db", &other_db, "--key-file", &other_key], b""));
    env.vars = vec![
        ("STRONGROOM_DB".into(), other_db.clone()),
        ("STRONGROOM_KEY_FILE".into(), other_key.clone()),
    ];
    // both options given: the variables are not used
    ok(&env.store(&["put", "only/in/main"], b"v"));
    assert_eq!(ok(&env.run(&["list", "--recursive"], b"")), "");
    assert_eq!(
        ok(&env.store(&["list", "--recursive"], b"")),
        "only/in/main\n"
    );
    // --db alone wins over STRONGROOM_DB; the key from the variable is then
    // the wrong one for this store
    fails(&env.run(&["status", "--db", &env.db()], b""), 5);
    // --key-file alone wins over STRONGROOM_KEY_FILE
    ok(&env.run(
        &["status", "--db", &env.db(), "--key-file", &env.key()],
        b"",
    ));
    fails(&env.run(&["status", "--key-file", &env.key()], b""), 5);
    // another protector option replaces the key file variable entirely
    let e = fails(
        &env.run(
            &[
                "status",
                "--shamir-shares-file",
                &env.path("none").display().to_string(),
            ],
            b"",
        ),
        12,
    );
    assert!(e.contains("shares file"), "{e}");
}

#[test]
fn empty_put_is_refused_unless_allowed() {
    let env = Env::new();
    env.init();
    let e = fails(&env.store(&["put", "app/empty"], b""), 18);
    assert!(e.contains("--allow-empty"), "{e}");
    // nothing was written
    fails(&env.store(&["get", "app/empty"], b""), 3);

    let out = ok(&env.store(&["put", "app/empty", "--allow-empty"], b""));
    assert!(out.contains("version 1"), "{out}");
    let got = env.store(&["get", "app/empty", "--reveal"], b"");
    assert_eq!(ok(&got), "");
}

#[test]
fn rewrap_batch_out_of_range_is_refused() {
    let env = Env::new();
    env.init();
    for batch in ["0", "10001"] {
        let e = fails(&env.store(&["rewrap", "--batch", batch], b""), 2);
        assert!(e.contains("between 1 and 10000"), "{e}");
    }
    ok(&env.store(&["rewrap", "--batch", "10000"], b""));
}
