//! Helpers shared by the import, JSON, lease, audit-verify and other tests
//! (copied in part from `cli.rs`, which keeps its own).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

/// A value no output may contain.
pub(crate) const VALUE: &str = "correct-horse-battery-staple-7f3a";

const STRONGROOM_VARS: [&str; 7] = [
    "STRONGROOM_DB",
    "STRONGROOM_KEY_FILE",
    "STRONGROOM_PKCS11_MODULE",
    "STRONGROOM_PKCS11_TOKEN",
    "STRONGROOM_PKCS11_KEY_LABEL",
    "STRONGROOM_PKCS11_PIN_FILE",
    "STRONGROOM_SHAMIR_SHARES_FILE",
];

/// A temporary directory with a store in it.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    /// A directory with a key file and an initialised store.
    pub(crate) fn init() -> Self {
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        ok(&env.run(&["keygen", &env.key()], b""));
        ok(&env.run(&["init", "--db", &env.db(), "--key-file", &env.key()], b""));
        env
    }

    /// A directory with a key file and a store created through the library,
    /// as an embedding application would: no CLI audit record, no saved
    /// audit head.
    pub(crate) fn init_by_library() -> Self {
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        ok(&env.run(&["keygen", &env.key()], b""));
        env.library(true, async |_| ());
        env
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn db(&self) -> String {
        self.path("store.db").display().to_string()
    }

    pub(crate) fn key(&self) -> String {
        self.path("root.key").display().to_string()
    }

    /// Writes `text` to the file `name` in the directory; its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    /// Writes `files` (name, text) into the subdirectory `dir` (created if
    /// missing); the directory's path.
    pub(crate) fn files_in(&self, dir: &str, files: &[(&str, &str)]) -> String {
        let d = self.path(dir);
        std::fs::create_dir_all(&d).unwrap();
        for (name, text) in files {
            std::fs::write(d.join(name), text).unwrap();
        }
        d.display().to_string()
    }

    /// The default audit file's text.
    pub(crate) fn audit_text(&self) -> String {
        std::fs::read_to_string(self.path("store.db.audit.jsonl")).unwrap()
    }

    /// Runs the binary with `args`, feeding `stdin`.
    pub(crate) fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        for k in STRONGROOM_VARS {
            command.env_remove(k);
        }
        let mut child = command
            .args(args)
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

    /// Runs a store command with `--db` and `--key-file` appended.
    pub(crate) fn store(&self, args: &[&str], stdin: &[u8]) -> Output {
        let db = self.db();
        let key = self.key();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--db", &db, "--key-file", &key]);
        self.run(&all, stdin)
    }

    /// `get --reveal PATH`, as text.
    pub(crate) fn reveal(&self, path: &str) -> String {
        ok(&self.store(&["get", path, "--reveal"], b""))
    }

    /// The records of the default audit file, parsed.
    pub(crate) fn audit_records(&self) -> Vec<strongroom::audit::AuditRecord> {
        std::fs::read_to_string(self.path("store.db.audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| strongroom::audit::AuditRecord::from_json_line(l).unwrap())
            .collect()
    }

    /// The default audit file verifies against the store's saved head.
    pub(crate) fn audit_verifies(&self) {
        let file = self.path("store.db.audit.jsonl").display().to_string();
        ok(&self.store(&["audit", "verify", &file], b""));
    }

    /// Opens the store through the library (as an embedding application
    /// would) and runs `f` on it, then seals and closes it.
    pub(crate) fn with_library<T>(
        &self,
        f: impl AsyncFnOnce(&strongroom::dangerous::Door) -> T,
    ) -> T {
        self.library(false, f)
    }

    /// Creates (`init`) or unseals the store through the library, runs `f`
    /// on it, then seals and closes it.
    fn library<T>(&self, init: bool, f: impl AsyncFnOnce(&strongroom::dangerous::Door) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sqlite = Arc::new(strongroom_sqlx::SqliteStore::open(self.db()).await.unwrap());
            let protector =
                strongroom::protector::SoftwareProtector::from_key_file(self.key()).unwrap();
            let options = strongroom::Options::default();
            let sr = if init {
                strongroom::Strongroom::init(sqlite.clone(), &protector, options).await
            } else {
                strongroom::Strongroom::unseal(sqlite.clone(), &protector, options).await
            };
            let door = sr.unwrap().dangerous_traced("test").await.unwrap();
            let out = f(&door).await;
            door.seal();
            sqlite.close().await;
            out
        })
    }
}

impl Env {
    /// Runs a store command (`--db` and `--key-file` appended) on a
    /// pseudo-terminal through util-linux `script`, which writes the
    /// terminal's output (stdout and stderr together) to its stdout.
    /// `None` where there is no `script`.
    pub(crate) fn store_on_terminal(&self, args: &[&str]) -> Option<Output> {
        if Command::new("script").arg("--version").output().is_err() {
            eprintln!("skipped: no `script` to make a terminal");
            return None;
        }
        let mut cmd = env!("CARGO_BIN_EXE_strongroom").to_owned();
        for a in args
            .iter()
            .copied()
            .chain(["--db", &self.db(), "--key-file", &self.key()])
        {
            cmd.push(' ');
            cmd.push_str(a);
        }
        let mut command = Command::new("script");
        for k in STRONGROOM_VARS {
            command.env_remove(k);
        }
        Some(
            command
                .args(["-qec", &cmd, "/dev/null"])
                .env("USER", "tester")
                .current_dir(self.dir.path())
                .output()
                .unwrap(),
        )
    }
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Succeeded, and no value on stderr; its stdout.
#[track_caller]
pub(crate) fn ok(o: &Output) -> String {
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

/// Failed with `code`, and no value on stderr; its stderr.
#[track_caller]
pub(crate) fn fails(o: &Output, code: i32) -> String {
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

/// Parses stdout as one JSON document.
#[track_caller]
pub(crate) fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}
