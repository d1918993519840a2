//! Multi-process test support: members are real OS processes (the binaries
//! in `src/bin`) that open one store (a SQLite file or a PostgreSQL
//! database) and are SIGKILLed at random points by the tests in `tests/`.
//!
//! A member reports through lines on its standard output; the harness reads
//! them back ([`Member::lines`]) and decides from storage and those reports
//! whether anything was lost.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use strongroom::dangerous::Door;
use strongroom::protector::SoftwareProtector;
use strongroom::storage::DynStorage;
use strongroom::{Options, Strongroom};
use strongroom_sqlx::{PgStore, SqliteStore};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Where a member's store lives: `sqlite:<path>` or a `postgres://` URL.
pub async fn open_storage(spec: &str) -> DynStorage {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        Arc::new(SqliteStore::open(path).await.expect("open sqlite store"))
    } else {
        Arc::new(
            PgStore::connect(spec)
                .await
                .expect("connect postgres store"),
        )
    }
}

/// Unseals the store at `spec` with the first of `key_files` (software root
/// keys) that opens it: a member restarted after a root-key rotation is
/// given the old and the new key file.
pub async fn unseal_any(spec: &str, key_files: &[PathBuf]) -> Door {
    let storage = open_storage(spec).await;
    let mut last = Vec::new();
    for k in key_files {
        let protector = SoftwareProtector::from_key_file(k).expect("key file");
        match Strongroom::unseal(storage.clone(), &protector, Options::default()).await {
            Ok(sr) => return sr.dangerous_traced("chaos").await.expect("door"),
            Err(e) => last.push(format!("{}: {e}", k.display())),
        }
    }
    panic!("no key file opens the store: {last:?}")
}

/// Opens (and on first use initialises) the store at `spec` with the
/// software root key in `key_file`. Safe to race from several processes:
/// the loser of the initialisation unseals what the winner wrote.
pub async fn open_store(spec: &str, key_file: &Path) -> Door {
    let storage = open_storage(spec).await;
    let protector = SoftwareProtector::from_key_file(key_file).expect("key file");
    if Strongroom::is_initialized(&storage).await.unwrap() {
        return Strongroom::unseal(storage, &protector, Options::default())
            .await
            .expect("unseal")
            .dangerous_traced("chaos")
            .await
            .expect("unseal");
    }
    match Strongroom::init(storage.clone(), &protector, Options::default()).await {
        Ok(sr) => sr.dangerous_traced("chaos").await.expect("door"),
        Err(strongroom::Error::AlreadyInitialized) => {
            Strongroom::unseal(storage, &protector, Options::default())
                .await
                .expect("unseal")
                .dangerous_traced("chaos")
                .await
                .expect("unseal")
        }
        Err(e) => panic!("init: {e}"),
    }
}

/// A fresh directory with a software root key file, for one scenario.
pub struct Scenario {
    pub dir: tempfile::TempDir,
}

impl Scenario {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        SoftwareProtector::generate_key_file(dir.path().join("root.key")).expect("key file");
        Self { dir }
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("root.key")
    }

    /// A SQLite store spec inside this scenario's directory.
    pub fn sqlite_spec(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("store.db").display())
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh PostgreSQL database on the private test cluster, and the handle
/// that keeps the cluster running: hold it for as long as members use the
/// database (the cluster stops when the last handle drops).
pub struct PgDatabase {
    /// The superuser URL of the database (a store spec for members).
    pub url: String,
    /// The cluster.
    pub cluster: Arc<strongroom_testpg::TestPostgres>,
}

/// A fresh PostgreSQL database on the shared private test cluster (started
/// from the machine's `initdb` on first use).
pub async fn postgres_db(label: &str) -> PgDatabase {
    let cluster = strongroom_testpg::TestPostgres::shared().expect("test postgres");
    let url = cluster.fresh_database(label).await.expect("fresh database");
    PgDatabase { url, cluster }
}

/// The path of one of this crate's member binaries (built by cargo for the
/// integration tests).
pub fn member_bin(name: &str) -> PathBuf {
    // Integration tests run from target/<profile>/deps; binaries sit one up.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join(name)
}

/// One member process and the lines it printed.
pub struct Member {
    pub name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    collected: Vec<String>,
}

impl Member {
    /// Starts binary `bin` with `args`; stdout lines are collected, stderr
    /// is passed through (so a member's panic shows in the test output).
    pub fn spawn(name: impl Into<String>, bin: &str, args: &[String]) -> Self {
        let mut child = Command::new(member_bin(bin))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = r.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name: name.into(),
            child,
            lines: rx,
            collected: Vec::new(),
        }
    }

    /// SIGKILL: no destructors, no flush, like a power cut for this process.
    /// Returns once everything the process printed has been collected.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.drain().await;
    }

    /// After exit: collects the last lines still in the pipe.
    async fn drain(&mut self) {
        while let Ok(Some(l)) =
            tokio::time::timeout(Duration::from_secs(5), self.lines.recv()).await
        {
            self.collected.push(l);
        }
    }

    /// Waits for the process to exit and for its last lines to be read
    /// from the pipe; returns whether it exited with 0.
    pub async fn wait(&mut self) -> bool {
        let ok = self
            .child
            .wait()
            .await
            .map(|s| s.success())
            .unwrap_or(false);
        // The reader task may still hold lines printed just before the exit.
        self.drain().await;
        ok
    }

    /// Waits at most `limit`; `None` if still running.
    pub async fn wait_timeout(&mut self, limit: Duration) -> Option<bool> {
        tokio::time::timeout(limit, self.wait()).await.ok()
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Every line printed so far (after a kill or exit: every line).
    pub async fn lines(&mut self) -> &[String] {
        while let Ok(l) = self.lines.try_recv() {
            self.collected.push(l);
        }
        &self.collected
    }

    /// Waits until a line starting with `prefix` is printed; returns it.
    pub async fn wait_for_line(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        if let Some(l) = self.collected.iter().find(|l| l.starts_with(prefix)) {
            return Some(l.clone());
        }
        loop {
            let l = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()??;
            self.collected.push(l.clone());
            if l.starts_with(prefix) {
                return Some(l);
            }
        }
    }
}

/// A small deterministic PRNG for kill schedules (seeded, printed by tests
/// so a failing schedule can be replayed).
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Self {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let mut b = [0u8; 8];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
                u64::from_le_bytes(b)
            });
        eprintln!("chaos seed: CHAOS_SEED={seed}");
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next_u64() % (hi - lo).max(1))
    }
}
