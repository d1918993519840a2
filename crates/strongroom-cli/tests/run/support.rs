//! What the `run` tests share: a store in a temporary directory, the
//! binary run against it, and waiting with a deadline.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const VALUE: &str = "correct-horse-battery-staple-7f3a";
pub(crate) const FILE_VALUE: &str = "tls-private-key-9c1e-not-for-eyes";
pub(crate) const NEW_VALUE: &str = "rotated-value-5d2b-second-version";

/// How long anything a test waits for may take (CI machines are loaded).
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// Every variable the binary reads in place of an option.
pub(crate) const STRONGROOM_VARS: [&str; 8] = [
    "STRONGROOM_DB",
    "STRONGROOM_KEY_FILE",
    "STRONGROOM_PKCS11_MODULE",
    "STRONGROOM_PKCS11_TOKEN",
    "STRONGROOM_PKCS11_KEY_LABEL",
    "STRONGROOM_PKCS11_PIN_FILE",
    "STRONGROOM_SHAMIR_SHARES_FILE",
    "STRONGROOM_SECRETS_DIR",
];

/// A store in a temporary directory, and an `out/` folder for what the
/// commands report.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(env.out()).unwrap();
        ok(&env.output(&["keygen", &env.key()], b""));
        ok(&env.output(&["init", "--db", &env.db(), "--key-file", &env.key()], b""));
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

    /// Where the commands write what they saw.
    pub(crate) fn out(&self) -> PathBuf {
        self.path("out")
    }

    pub(crate) fn out_file(&self, name: &str) -> PathBuf {
        self.out().join(name)
    }

    pub(crate) fn read_out(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.out_file(name)).ok()
    }

    /// The binary with `args`, none of the caller's STRONGROOM_ variables.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        for k in STRONGROOM_VARS {
            command.env_remove(k);
        }
        command.args(args).current_dir(self.dir.path());
        command
    }

    /// Runs the binary to its end, feeding `stdin`.
    pub(crate) fn output(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .command(args)
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

    pub(crate) fn store_args(&self) -> Vec<String> {
        [
            "--db",
            &self.db(),
            "--key-file",
            &self.key(),
            "--operator",
            "tester",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// `strongroom put PATH` with `value` on stdin, as its own process.
    pub(crate) fn put(&self, path: &str, value: &[u8]) {
        let mut args = vec!["put".to_owned(), path.to_owned()];
        args.extend(self.store_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&self.output(&args, value));
    }

    /// `strongroom run <opts> -- sh -c SCRIPT sh OUT_DIR`: the script finds
    /// the output folder in `$1`.
    pub(crate) fn run_args(&self, opts: &[&str], script: &str) -> Vec<String> {
        let mut args = vec!["run".to_owned()];
        args.extend(self.store_args());
        args.extend(opts.iter().map(|s| (*s).to_owned()));
        args.extend(["--", "sh", "-c", script, "sh"].map(str::to_owned));
        args.push(self.out().display().to_string());
        args
    }

    /// Starts `strongroom run`, its stdout and stderr going to files.
    pub(crate) fn spawn_run(&self, opts: &[&str], script: &str) -> Child {
        let args = self.run_args(opts, script);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.command(&args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.path("run.stdout")).unwrap())
            .stderr(std::fs::File::create(self.path("run.stderr")).unwrap())
            .spawn()
            .unwrap()
    }

    /// `strongroom run` to its end.
    pub(crate) fn run(&self, opts: &[&str], script: &str) -> Output {
        let args = self.run_args(opts, script);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.output(&args, b"")
    }

    /// `strongroom audit verify` on the store's audit file succeeds.
    #[track_caller]
    pub(crate) fn verify_audit(&self) {
        let mut args = vec![
            "audit".to_owned(),
            "verify".to_owned(),
            self.path("store.db.audit.jsonl").display().to_string(),
        ];
        args.extend(self.store_args()[..4].iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&self.output(&args, b""));
    }

    /// What the `spawn_run` process wrote to stdout and stderr.
    pub(crate) fn run_output(&self) -> String {
        let out = std::fs::read_to_string(self.path("run.stdout")).unwrap();
        let err = std::fs::read_to_string(self.path("run.stderr")).unwrap();
        format!("stdout: {out}\nstderr: {err}")
    }
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No value stored by these tests appears in `text`.
#[track_caller]
pub(crate) fn no_value_in(text: &str) {
    for v in [VALUE, FILE_VALUE, NEW_VALUE] {
        assert!(!text.contains(v), "a secret value leaked: {text}");
    }
}

#[track_caller]
pub(crate) fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    no_value_in(&stderr(o));
    stdout(o)
}

#[track_caller]
pub(crate) fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    no_value_in(&stdout(o));
    no_value_in(&stderr(o));
    stderr(o)
}

/// Waits until `cond` holds, failing the test after [`DEADLINE`].
#[track_caller]
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to end, killing it and failing after [`DEADLINE`].
#[track_caller]
pub(crate) fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("strongroom run did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn send(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// `unshare` with a new PID namespace, or `None` where it cannot run.
pub(crate) fn pid_namespace() -> Option<Command> {
    let args = [
        "--user",
        "--map-root-user",
        "--pid",
        "--fork",
        "--mount-proc",
    ];
    let probe = Command::new("unshare")
        .args(args)
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return None;
    }
    let mut command = Command::new("unshare");
    command.args(args);
    Some(command)
}

/// A fresh directory on a tmpfs (under /dev/shm), or `None` where there is
/// none: as `$XDG_RUNTIME_DIR` it is where `run` makes its directory.
pub(crate) fn tmpfs_dir() -> Option<tempfile::TempDir> {
    let out = Command::new("stat")
        .args(["-f", "-c", "%T", "/dev/shm"])
        .output()
        .ok()?;
    if String::from_utf8_lossy(&out.stdout).trim() != "tmpfs" {
        return None;
    }
    tempfile::tempdir_in("/dev/shm").ok()
}
