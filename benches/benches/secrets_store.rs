//! The secrets store end to end, each figure against a baseline doing the
//! same work in the same process, interleaved round by round.
//!
//! 1. **SQLite reads** (`SqliteStore`, WAL, synchronous=FULL, software root
//!    key): `door.secrets().get(path)` of a random existing secret, written
//!    as a default `put` writes it (its value inside its metadata record,
//!    `SecretsOptions::inline_values`), against the raw point read of a
//!    sealed version record of the same size class
//!    (`door.storage().get("s/kv/<path>@<version>")`) of a twin secret, on
//!    the same store. The twins have every value in a version record of
//!    their own (the layout with `inline_values` off): a fifth column is
//!    `get` of them through a store with the option off, and a third reads
//!    both of a twin's records raw (the metadata record `kvm/<path>` and
//!    the version record), the storage work that layout cannot avoid. A
//!    fourth reads the same version records with Python's
//!    `sqlite3` (`execute(...).fetchone()` on a read-only connection to the
//!    same file, in a persistent `python3` child that times its own loop),
//!    the reference the SQLite store's point read is held to. Optionally (`SECRETS_BENCH_HANDLE_READS` > 0) a principal's
//!    `Handle::read` of the same secrets (policy check, audit record to a
//!    JSON-lines file with `FsyncPolicy::OsBuffered`, audit head saved in
//!    the store) against `get`. Measured at each size in
//!    `SECRETS_BENCH_SIZES`: the store grows from one size to the next, and
//!    every read picks a secret at random among all of them.
//! 2. **SQLite writes**: `secrets().put` of new secrets from 1, 8 and 64
//!    concurrent writers (tokio tasks on a 2-worker runtime, each writer
//!    its own paths), and from 1 and 64 writers with `inline_values` off
//!    (two records per new secret), against one raw row write per transaction on the same
//!    store (`door.storage().batch(vec![BatchOp::put(..)])`: the benches
//!    crate has no `rusqlite`, so the raw write goes through the store's own
//!    writer thread, one `BEGIN IMMEDIATE` .. `COMMIT` and fsync per row)
//!    from 1 and 64 writers, and an independent yardstick: one `INSERT` per
//!    autocommit transaction through sqlx's SQLite driver on a file of its
//!    own in the same directory (WAL, synchronous=FULL), one writer. Puts
//!    go to a store of their own, so the read store does not change.
//! 3. **Memory store** (`MemoryStorage`): `secrets().get` (values in the
//!    metadata records, as written by default) against a
//!    `HashMap<String, Arc<Vec<u8>>>` get plus an `Arc` clone of the same
//!    value, and `Handle::read` against `get`.
//! 4. **PostgreSQL** (a private cluster from `strongroom_testpg`, or the
//!    server named by `STRONGROOM_TEST_PG_URL`; `PgStore::connect`):
//!    `secrets().get` against plain sqlx `SELECT value FROM bench_kv WHERE
//!    key = $1` on a copy of the store's own table (same rows, same keys,
//!    same index), reading the version records of the twin secrets (values
//!    in records of their own); `secrets().put` of a
//!    new secret against a plain `INSERT` of one row (autocommit: one row
//!    per transaction) into a table of its own. If the server cannot start,
//!    the section prints `postgres: skipped (reason)`.
//!
//! Stores are filled through the door in batches of whole secrets: the
//! metadata record `put` wrote for a template secret (its plaintext names
//! no path, so it is the same for every secret written at that moment; with
//! the value inside it for the default layout) is stored for each path
//! through `door.barrier()` (which seals it under the record's own key),
//! for the twins together with the value sealed by `door.sealed_put`, so
//! every record is sealed by the library as `put` seals it, many secrets
//! per transaction. Every measured read checks the value it got.
//!
//! Each round measures every variant of a comparison once, in an order
//! that rotates from round to round; each round yields one paired ratio per
//! comparison, and the report gives the median ratio with min-max, the
//! medians of the absolute figures and the load average at the start and
//! end of each section.
//!
//! Run: `cargo bench -p strongroom-benches --bench secrets_store`.
//! Environment (defaults in brackets):
//! - `SECRETS_BENCH_SIZES` secrets in the SQLite read store, ascending,
//!   comma-separated [1000,100000] (1000000 works; the fill then takes a
//!   few minutes);
//! - `SECRETS_BENCH_ROUNDS` rounds per SQLite comparison [31];
//! - `SECRETS_BENCH_READS` reads per variant per round [10000];
//! - `SECRETS_BENCH_HANDLE_READS` `Handle::read`s per round on SQLite, each
//!   saves the audit head with a durable write (0 turns the row off) [100];
//! - `SECRETS_BENCH_PUTS` puts per round for one writer, and for each raw
//!   baseline [300]; `SECRETS_BENCH_PUTS_8`, `SECRETS_BENCH_PUTS_64` puts
//!   per writer at 8 and 64 writers [100, 40];
//! - `SECRETS_BENCH_VALUE` value bytes [64];
//! - `SECRETS_BENCH_PARTS`, a comma list of `reads`, `writes`, `memory`,
//!   `postgres`: the parts to run [all four];
//! - `SECRETS_BENCH_MEM_KEYS`, `SECRETS_BENCH_MEM_ROUNDS`,
//!   `SECRETS_BENCH_MEM_OPS` for the memory store [1000, 51, 5000];
//! - `SECRETS_BENCH_PG_KEYS`, `SECRETS_BENCH_PG_ROUNDS`,
//!   `SECRETS_BENCH_PG_READS`, `SECRETS_BENCH_PG_PUTS` for PostgreSQL
//!   [10000, 21, 2000, 200]; `SECRETS_BENCH_PG=0` skips it. A private
//!   cluster is switched to `fsync = on` (strongroom-testpg starts its
//!   clusters with `fsync = off`) unless `SECRETS_BENCH_PG_FSYNC=0`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use sqlx::ConnectOptions;
use strongroom::audit::{FsyncPolicy, JsonlFileSink};
use strongroom::dangerous::Door;
use strongroom::path::SecretPath;
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::seal::SealContext;
use strongroom::secrets::{SecretsOptions, SecretsStore, metadata_key, version_key};
use strongroom::storage::{BatchOp, DynStorage, MemoryStorage};
use strongroom::{Handle, Options, SecretBytes, Strongroom};
use strongroom_benches::{Figures, Target, Workload, env_or, load_average, median};
use strongroom_sqlx::{PgStore, SqliteStore};
use tokio::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The run's figures for `report.py`, filled as the parts run.
static FIGURES: std::sync::Mutex<Option<Figures>> = std::sync::Mutex::new(None);

/// Records the per-round ratios `a / b` as a figure (the part prints its
/// own lines).
fn figure(name: &str, api: &str, baseline: &str, a: &[f64], b: &[f64], target: Option<Target>) {
    if let Some(f) = FIGURES.lock().unwrap().as_mut() {
        f.record(name, api, baseline, &ratios(a, b), target);
    }
}

/// Median, min and max of per-round samples.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(v.to_vec()).unwrap_or(f64::NAN), min, max)
}

/// `a[i] / b[i]` for each round.
fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// "1.23x (min 1.10x, max 1.40x)" for the per-round ratios `a / b`.
fn ratio_text(a: &[f64], b: &[f64]) -> String {
    let (m, lo, hi) = stats(&ratios(a, b));
    format!("{m:.2}x (min {lo:.2}x, max {hi:.2}x)")
}

fn med(v: &[f64]) -> f64 {
    stats(v).0
}

fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut w = Workload::new(seed);
    for i in (1..v.len()).rev() {
        let j = (w.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// The path of secret number `i`: `environment/service/kind`-shaped, 500
/// services.
fn secret_path(i: usize) -> String {
    format!("prod/svc-{:03}/secret-{i:07}", i % 500)
}

/// The same secret as written by default (`SecretsOptions::inline_values`:
/// its value in the metadata record); [`secret_path`]s have their values in
/// version records of their own.
fn inline_path(i: usize) -> String {
    format!("inline/svc-{:03}/secret-{i:07}", i % 500)
}

/// Every value in a version record of its own (the layout before
/// `SecretsOptions::inline_values`).
fn own_records() -> SecretsOptions {
    SecretsOptions::default().with_inline_values(false)
}

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![0x42; 32])).unwrap()
}

async fn open_door(storage: DynStorage) -> Door {
    Strongroom::init(storage, &protector(), Options::default())
        .await
        .unwrap()
        .dangerous_traced("bench")
        .await
        .unwrap()
}

/// The metadata record `put` writes for a new secret, as plaintext (see the
/// module docs).
async fn metadata_template(door: &Door, value: &[u8], n: usize, inline: bool) -> Vec<u8> {
    let path = format!("bench/template/fill-{n}-{inline}");
    let options = SecretsOptions::default().with_inline_values(inline);
    door.secrets_with(options)
        .put(&path, value, Some(0))
        .await
        .unwrap();
    door.barrier()
        .get(&metadata_key(&SecretPath::parse(&path).unwrap()))
        .await
        .unwrap()
        .unwrap()
}

/// Adds secrets `from..to` (each at version 1 with `value`), `chunk`
/// secrets per transaction; with `inline`, at [`inline_path`]s, their values
/// in their metadata records.
async fn fill(door: &Door, from: usize, to: usize, value: &[u8], chunk: usize, inline: bool) {
    let meta = metadata_template(door, value, from, inline).await;
    let barrier = door.barrier();
    let mut i = from;
    while i < to {
        let end = (i + chunk).min(to);
        let mut ops = Vec::with_capacity(3 * (end - i));
        for n in i..end {
            let name = if inline {
                inline_path(n)
            } else {
                secret_path(n)
            };
            let path = SecretPath::parse(&name).unwrap();
            let key = metadata_key(&path);
            ops.push(BatchOp::expect(key.clone(), None));
            ops.push(BatchOp::put(key, meta.clone()));
            if inline {
                continue;
            }
            ops.push(
                door.sealed_put(
                    &version_key(&path, 1),
                    value,
                    &SealContext::new(path.as_str(), 1),
                )
                .await
                .unwrap(),
            );
        }
        barrier.batch(ops).await.unwrap();
        i = end;
    }
}

/// The secrets one round reads: paths, and the raw keys of their records.
struct ReadSet {
    paths: Vec<String>,
    /// The same secrets' [`inline_path`]s.
    inline_paths: Vec<String>,
    meta_keys: Vec<String>,
    version_keys: Vec<String>,
}

impl ReadSet {
    /// `count` secrets drawn at random (with replacement) from the first
    /// `size`.
    fn random(w: &mut Workload, size: usize, count: usize) -> Self {
        let mut set = Self {
            paths: Vec::with_capacity(count),
            inline_paths: Vec::with_capacity(count),
            meta_keys: Vec::with_capacity(count),
            version_keys: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let i = (w.next_u64() % size as u64) as usize;
            let path = SecretPath::parse(&secret_path(i)).unwrap();
            set.inline_paths.push(inline_path(i));
            set.meta_keys.push(metadata_key(&path));
            set.version_keys.push(version_key(&path, 1));
            set.paths.push(path.as_str().to_owned());
        }
        set
    }
}

/// Python's `sqlite3` reading the same file (a persistent `python3` child,
/// as in `sqlite_store`): `run FILE` reads the keys listed in FILE, one
/// point read each, times its own loop and answers `ELAPSED_NS FOUND`.
const PYTHON: &str = r#"
import sqlite3, sys, time
con = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
q = "SELECT value FROM strongroom_kv WHERE key = ?"
print("ready", flush=True)
for line in sys.stdin:
    keys = [k.rstrip("\n").encode() for k in open(line.split(None, 1)[1].strip())]
    found = 0
    t = time.perf_counter_ns()
    for k in keys:
        if con.execute(q, (k,)).fetchone() is not None:
            found += 1
    print(time.perf_counter_ns() - t, found, flush=True)
"#;

struct PyReader {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    keys_file: std::path::PathBuf,
}

impl PyReader {
    /// `None` without a working `python3`.
    fn start(db: &std::path::Path, dir: &std::path::Path) -> Option<Self> {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(PYTHON)
            .arg(db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = std::io::BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        (line.trim() == "ready").then(|| Self {
            child,
            stdin,
            stdout,
            keys_file: dir.join("py-keys.txt"),
        })
    }

    /// ns per point read of `keys`.
    fn run(&mut self, keys: &[String]) -> f64 {
        use std::io::{BufRead, Write};
        std::fs::write(&self.keys_file, keys.join("\n") + "\n").unwrap();
        writeln!(self.stdin, "run {}", self.keys_file.display()).unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let ns: f64 = parts.next().unwrap().parse().unwrap();
        let found: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(
            found,
            keys.len(),
            "python found {found} of {} keys",
            keys.len()
        );
        ns / keys.len() as f64
    }
}

impl Drop for PyReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ns per `secrets().get`.
async fn time_gets(secrets: &SecretsStore, paths: &[String], value_len: usize) -> f64 {
    let t = Instant::now();
    for p in paths {
        let v = secrets.get(p).await.unwrap();
        assert_eq!(v.value.expose_secret().len(), value_len);
        black_box(v);
    }
    t.elapsed().as_nanos() as f64 / paths.len() as f64
}

/// ns per raw point read of each key.
async fn time_raw(storage: &DynStorage, keys: &[String]) -> f64 {
    let t = Instant::now();
    for k in keys {
        black_box(storage.get(k).await.unwrap().expect("record present"));
    }
    t.elapsed().as_nanos() as f64 / keys.len() as f64
}

/// ns per pair of raw point reads (a secret's metadata record, then its
/// version record).
async fn time_raw_pair(storage: &DynStorage, meta: &[String], version: &[String]) -> f64 {
    let t = Instant::now();
    for (m, v) in meta.iter().zip(version) {
        black_box(storage.get(m).await.unwrap().expect("record present"));
        black_box(storage.get(v).await.unwrap().expect("record present"));
    }
    t.elapsed().as_nanos() as f64 / meta.len() as f64
}

/// ns per `Handle::read`.
async fn time_handle(handle: &Handle, paths: &[String], value_len: usize) -> f64 {
    let t = Instant::now();
    for p in paths {
        let v = handle.read(p).await.unwrap();
        assert_eq!(v.value.expose_secret().len(), value_len);
        black_box(v);
    }
    t.elapsed().as_nanos() as f64 / paths.len() as f64
}

/// A principal allowed to read every `prod/...` secret, auditing to a
/// JSON-lines file in `dir`.
async fn reader_handle(door: &Door, dir: &std::path::Path, name: &str) -> Handle {
    let sink =
        JsonlFileSink::open(dir.join(format!("{name}.jsonl")), FsyncPolicy::OsBuffered).unwrap();
    let audit = Arc::new(
        door.open_audit_log(vec![Arc::new(sink)], None)
            .await
            .unwrap(),
    );
    let policy = Policy::new(
        "reader",
        vec![
            Rule::allow("prod/*", [Capability::Read]).unwrap(),
            Rule::allow("inline/*", [Capability::Read]).unwrap(),
        ],
    );
    door.as_principal(Principal::new(name, [&policy]), audit)
}

/// Operations per second with `writers` tasks, each doing `per_writer`
/// calls of `op(writer, i)` after a common start.
async fn rate<F, Fut>(writers: usize, per_writer: usize, op: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Arc::new(tokio::sync::Barrier::new(writers + 1));
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let (op, start) = (Arc::clone(&op), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for i in 0..per_writer {
                op(w, i).await;
            }
        }));
    }
    start.wait().await;
    let t = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    (writers * per_writer) as f64 / t.elapsed().as_secs_f64()
}

async fn secrets_put_rate(
    secrets: &SecretsStore,
    tag: String,
    writers: usize,
    per_writer: usize,
    value: Arc<Vec<u8>>,
) -> f64 {
    let secrets = secrets.clone();
    rate(writers, per_writer, move |w, i| {
        let (secrets, value) = (secrets.clone(), Arc::clone(&value));
        let path = format!("put/{tag}/w{w:02}/s{i:05}");
        async move {
            secrets.put(&path, &value, None).await.unwrap();
        }
    })
    .await
}

async fn raw_put_rate(
    storage: &DynStorage,
    tag: String,
    writers: usize,
    per_writer: usize,
    record: Arc<Vec<u8>>,
) -> f64 {
    let storage = storage.clone();
    rate(writers, per_writer, move |w, i| {
        let (storage, record) = (storage.clone(), Arc::clone(&record));
        let key = format!("raw/{tag}/w{w:02}/s{i:05}");
        async move {
            storage
                .batch(vec![BatchOp::put(key, record.to_vec())])
                .await
                .unwrap();
        }
    })
    .await
}

/// Inserts per second, one row per autocommit transaction, one writer.
async fn sqlx_sqlite_rate(
    conn: &mut sqlx::SqliteConnection,
    tag: &str,
    n: usize,
    record: &[u8],
) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        sqlx::query("INSERT INTO kv (key, value) VALUES (?1, ?2)")
            .bind(format!("raw/{tag}/s{i:05}").into_bytes())
            .bind(record)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn sizes() -> Vec<usize> {
    let mut v: Vec<usize> = std::env::var("SECRETS_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    v.sort_unstable();
    v.dedup();
    if v.is_empty() {
        v = vec![1000, 100_000];
    }
    v
}

// ----- 1. SQLite reads -----

fn sqlite_reads(rt: &Runtime, dir: &std::path::Path, value: &[u8]) {
    let rounds = env_or("SECRETS_BENCH_ROUNDS", 31).max(1);
    let reads = env_or("SECRETS_BENCH_READS", 10_000).max(1);
    let handle_reads = env_or("SECRETS_BENCH_HANDLE_READS", 100);
    let load_start = load_average();
    let store = rt
        .block_on(SqliteStore::open(dir.join("reads.db")))
        .unwrap();
    let storage: DynStorage = Arc::new(store.clone());
    let door = rt.block_on(open_door(storage.clone()));
    let secrets = door.secrets();
    let own_secrets = door.secrets_with(own_records());
    let handle = (handle_reads > 0).then(|| rt.block_on(reader_handle(&door, dir, "reader")));
    let mut python = PyReader::start(&dir.join("reads.db"), dir);
    if python.is_none() {
        eprintln!("sqlite reads: no python3, the sqlite3 baseline is skipped");
    }
    let mut w = Workload::new(11);
    let mut filled = 0;
    let mut lines = Vec::new();
    for size in sizes() {
        let t = Instant::now();
        rt.block_on(fill(&door, filled, size, value, 1000, false));
        rt.block_on(fill(&door, filled, size, value, 1000, true));
        filled = size;
        eprintln!(
            "sqlite reads: filled to {size} secrets in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // warm the page cache and the statement caches
        let warm = ReadSet::random(&mut w, size, reads);
        rt.block_on(time_gets(&secrets, &warm.inline_paths, value.len()));
        rt.block_on(time_gets(&own_secrets, &warm.paths, value.len()));

        // ns per op, one sample per round: get (values in the metadata
        // records, as written by default), raw read of a version record,
        // two raw reads, Python's sqlite3 reading the version records, get
        // of secrets whose values have records of their own; and
        // Handle::read beside a `get` of the same few secrets
        let mut t: [Vec<f64>; 5] = Default::default();
        let (mut h, mut h_get) = (Vec::new(), Vec::new());
        let variants = 6;
        for round in 0..rounds {
            let set = ReadSet::random(&mut w, size, reads);
            for k in 0..variants {
                let v = (round + k) % variants;
                rt.block_on(async {
                    match v {
                        0 => t[0].push(time_gets(&secrets, &set.inline_paths, value.len()).await),
                        1 => t[1].push(time_raw(&storage, &set.version_keys).await),
                        2 => t[2]
                            .push(time_raw_pair(&storage, &set.meta_keys, &set.version_keys).await),
                        3 => {
                            if let Some(py) = python.as_mut() {
                                t[3].push(py.run(&set.version_keys));
                            }
                        }
                        4 => t[4].push(time_gets(&own_secrets, &set.paths, value.len()).await),
                        _ if handle.is_none() => {}
                        _ => {
                            // the pair alternates its order too
                            let handle = handle.as_ref().unwrap();
                            let few = &set.inline_paths[..handle_reads.min(reads)];
                            if round % 2 == 0 {
                                h.push(time_handle(handle, few, value.len()).await);
                                h_get.push(time_gets(&secrets, few, value.len()).await);
                            } else {
                                h_get.push(time_gets(&secrets, few, value.len()).await);
                                h.push(time_handle(handle, few, value.len()).await);
                            }
                        }
                    }
                });
            }
            eprintln!(
                "  {size} secrets, round {round}: get {:.2} us, raw read {:.2} us, two raw reads {:.2} us, python {:.2} us, get own records {:.2} us{}",
                t[0][round] / 1e3,
                t[1][round] / 1e3,
                t[2][round] / 1e3,
                t[3].get(round).copied().unwrap_or(f64::NAN) / 1e3,
                t[4][round] / 1e3,
                h.last()
                    .map(|x| format!(", Handle::read {:.1} us", x / 1e3))
                    .unwrap_or_default(),
            );
        }
        figure(
            &format!("sqlite get / raw point read, {size} secrets"),
            "Door::secrets().get on SqliteStore",
            "Storage::get of the version record, same store",
            &t[0],
            &t[1],
            Some(Target::AtMost(2.0)),
        );
        if !t[3].is_empty() {
            figure(
                &format!("sqlite get / python sqlite3 point read, {size} secrets"),
                "Door::secrets().get on SqliteStore",
                "python3 sqlite3 execute().fetchone() of the version record, same file",
                &t[0],
                &t[3],
                Some(Target::AtMost(2.0)),
            );
            lines.push(format!(
                "sqlite, {size} secrets: secrets().get {:.2} us vs python sqlite3 point read of the version record {:.2} us: {}",
                med(&t[0]) / 1e3,
                med(&t[3]) / 1e3,
                ratio_text(&t[0], &t[3]),
            ));
        }
        figure(
            &format!("sqlite get, own version records / raw point read, {size} secrets"),
            "Door::secrets_with(inline_values off).get on SqliteStore",
            "Storage::get of the version record, same store",
            &t[4],
            &t[1],
            None,
        );
        figure(
            &format!("sqlite get, own version records / two raw point reads, {size} secrets"),
            "Door::secrets_with(inline_values off).get on SqliteStore",
            "Storage::get of the metadata and of the version record",
            &t[4],
            &t[2],
            None,
        );
        lines.push(format!(
            "sqlite, {size} secrets: with every value in a record of its own (inline_values off), get {:.2} us: vs raw point read {}, vs two raw point reads (metadata + version record, {:.2} us) {}; secrets().get vs it: {}",
            med(&t[4]) / 1e3,
            ratio_text(&t[4], &t[1]),
            med(&t[2]) / 1e3,
            ratio_text(&t[4], &t[2]),
            ratio_text(&t[0], &t[4]),
        ));
        lines.push(format!(
            "sqlite, {size} secrets: secrets().get {:.2} us vs raw point read of the version record {:.2} us: {} [target <= 2x: {}]",
            med(&t[0]) / 1e3,
            med(&t[1]) / 1e3,
            ratio_text(&t[0], &t[1]),
            if med(&ratios(&t[0], &t[1])) <= 2.0 { "met" } else { "MISSED" },
        ));
        if handle.is_some() {
            lines.push(format!(
                "sqlite, {size} secrets: Handle::read {:.1} us vs secrets().get {:.1} us of the same {} secrets: {}",
                med(&h) / 1e3,
                med(&h_get) / 1e3,
                handle_reads.min(reads),
                ratio_text(&h, &h_get),
            ));
        }
    }
    rt.block_on(store.close());
    println!(
        "== sqlite reads: {rounds} rounds of {reads} random reads per variant, {} B values; load average at start {load_start}, at end {}",
        value.len(),
        load_average()
    );
    for l in lines {
        println!("{l}");
    }
}

// ----- 2. SQLite writes -----

fn sqlite_writes(rt: &Runtime, dir: &std::path::Path, value: &[u8]) {
    let rounds = env_or("SECRETS_BENCH_ROUNDS", 31).max(1);
    let single = env_or("SECRETS_BENCH_PUTS", 300).max(1);
    let per8 = env_or("SECRETS_BENCH_PUTS_8", 100).max(1);
    let per64 = env_or("SECRETS_BENCH_PUTS_64", 40).max(1);
    let load_start = load_average();
    let store = rt
        .block_on(SqliteStore::open(dir.join("writes.db")))
        .unwrap();
    let storage: DynStorage = Arc::new(store.clone());
    let door = rt.block_on(open_door(storage.clone()));
    let secrets = door.secrets();
    let own_secrets = door.secrets_with(own_records());
    let value = Arc::new(value.to_vec());
    // The raw rows carry a real sealed version record.
    let record = rt.block_on(async {
        own_secrets.put("put/sample", &value, None).await.unwrap();
        let key = version_key(&SecretPath::parse("put/sample").unwrap(), 1);
        Arc::new(storage.get(&key).await.unwrap().unwrap())
    });
    let mut plain = rt.block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("plain.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    });
    // warm up: one of each
    rt.block_on(async {
        secrets_put_rate(&secrets, "warm".into(), 8, 10, Arc::clone(&value)).await;
        secrets_put_rate(&own_secrets, "warm-own".into(), 8, 10, Arc::clone(&value)).await;
        raw_put_rate(&storage, "warm".into(), 8, 10, Arc::clone(&record)).await;
        sqlx_sqlite_rate(&mut plain, "warm", 50, &record).await;
    });

    // puts per second: secrets 1, 8, 64; raw 1, 64; sqlx 1; secrets with
    // every value in a record of its own 1, 64
    let names = [
        "put 1", "put 8", "put 64", "raw 1", "raw 64", "sqlx 1", "own 1", "own 64",
    ];
    let mut r: [Vec<f64>; 8] = Default::default();
    for round in 0..rounds {
        for k in 0..names.len() {
            let v = (round + k) % names.len();
            let tag = format!("r{round}v{v}");
            let rate = rt.block_on(async {
                match v {
                    0 => secrets_put_rate(&secrets, tag, 1, single, Arc::clone(&value)).await,
                    1 => secrets_put_rate(&secrets, tag, 8, per8, Arc::clone(&value)).await,
                    2 => secrets_put_rate(&secrets, tag, 64, per64, Arc::clone(&value)).await,
                    3 => raw_put_rate(&storage, tag, 1, single, Arc::clone(&record)).await,
                    4 => raw_put_rate(&storage, tag, 64, per64, Arc::clone(&record)).await,
                    5 => sqlx_sqlite_rate(&mut plain, &tag, single, &record).await,
                    6 => secrets_put_rate(&own_secrets, tag, 1, single, Arc::clone(&value)).await,
                    _ => secrets_put_rate(&own_secrets, tag, 64, per64, Arc::clone(&value)).await,
                }
            });
            r[v].push(rate);
        }
        eprintln!(
            "  writes round {round}: {}",
            names
                .iter()
                .zip(&r)
                .map(|(n, v)| format!("{n}: {:.0}/s", v[round]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    rt.block_on(async {
        store.close().await;
        let _ = sqlx::Connection::close(plain).await;
    });
    let r64 = med(&ratios(&r[2], &r[0]));
    figure(
        "sqlite put, 64 writers / 1 writer",
        "Door::secrets().put on SqliteStore, new secrets",
        "the same with one writer",
        &r[2],
        &r[0],
        Some(Target::AtLeast(10.0)),
    );
    figure(
        "sqlite put, own version records, 64 writers / 1 writer",
        "Door::secrets_with(inline_values off).put on SqliteStore, new secrets",
        "the same with one writer",
        &r[7],
        &r[6],
        None,
    );
    figure(
        "sqlite put, 8 writers / 1 writer",
        "Door::secrets().put on SqliteStore, new secrets",
        "the same with one writer",
        &r[1],
        &r[0],
        None,
    );
    figure(
        "sqlite put rate / raw row write rate, 1 writer",
        "Door::secrets().put on SqliteStore",
        "Storage::batch of one put, same store",
        &r[0],
        &r[3],
        None,
    );
    println!(
        "== sqlite writes (new secrets, WAL + synchronous=FULL): {rounds} rounds; load average at start {load_start}, at end {}",
        load_average()
    );
    println!(
        "sqlite put, puts/s (medians): 1 writer {:.0}, 8 writers {:.0}, 64 writers {:.0}; 8 vs 1 writer {}, 64 vs 1 writer {} [target 64 >= 10x 1: {}]",
        med(&r[0]),
        med(&r[1]),
        med(&r[2]),
        ratio_text(&r[1], &r[0]),
        ratio_text(&r[2], &r[0]),
        if r64 >= 10.0 { "met" } else { "MISSED" },
    );
    println!(
        "sqlite put, every value in a record of its own (inline_values off), puts/s (medians): 1 writer {:.0}, 64 writers {:.0}; 64 vs 1 writer {}; secrets().put vs it: 1 writer {}, 64 writers {}",
        med(&r[6]),
        med(&r[7]),
        ratio_text(&r[7], &r[6]),
        ratio_text(&r[0], &r[6]),
        ratio_text(&r[2], &r[7]),
    );
    println!(
        "sqlite put, 1 writer: secrets().put {:.0}/s vs one raw row write per transaction (storage().batch, one put) {:.0}/s: {}",
        med(&r[0]),
        med(&r[3]),
        ratio_text(&r[0], &r[3]),
    );
    println!(
        "sqlite put, 64 writers: secrets().put {:.0}/s vs raw row writes (storage().batch, one put each, group commit) {:.0}/s: {}",
        med(&r[2]),
        med(&r[4]),
        ratio_text(&r[2], &r[4]),
    );
    println!(
        "sqlite put, 1 writer: secrets().put {:.0}/s vs sqlx sqlite INSERT, one row per autocommit transaction, own file {:.0}/s: {}",
        med(&r[0]),
        med(&r[5]),
        ratio_text(&r[0], &r[5]),
    );
}

// ----- 3. Memory store -----

fn memory(rt: &Runtime, dir: &std::path::Path, value: &[u8]) {
    let keys = env_or("SECRETS_BENCH_MEM_KEYS", 1000).max(1);
    let rounds = env_or("SECRETS_BENCH_MEM_ROUNDS", 51).max(1);
    let ops = env_or("SECRETS_BENCH_MEM_OPS", 5000).max(1);
    let load_start = load_average();
    let door = rt.block_on(open_door(Arc::new(MemoryStorage::new())));
    let secrets = door.secrets();
    rt.block_on(fill(&door, 0, keys, value, 1000, true));
    let handle = rt.block_on(reader_handle(&door, dir, "memory-reader"));
    let map: HashMap<String, Arc<Vec<u8>>> = (0..keys)
        .map(|i| (inline_path(i), Arc::new(value.to_vec())))
        .collect();
    let mut paths: Vec<String> = (0..keys).map(inline_path).collect();
    shuffle(&mut paths, 5);
    let at = |i: usize| &paths[i % keys];

    let mut t: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let v = (round + k) % 3;
            let off = round * ops;
            let start = Instant::now();
            match v {
                0 => {
                    for i in off..off + ops {
                        black_box(map.get(black_box(at(i).as_str())).map(Arc::clone));
                    }
                }
                1 => rt.block_on(async {
                    for i in off..off + ops {
                        black_box(secrets.get(at(i)).await.unwrap());
                    }
                }),
                _ => rt.block_on(async {
                    for i in off..off + ops {
                        black_box(handle.read(at(i)).await.unwrap());
                    }
                }),
            }
            t[v].push(start.elapsed().as_nanos() as f64 / ops as f64);
        }
    }
    println!(
        "== memory store: {keys} secrets of {} B, {rounds} rounds of {ops} reads per variant; load average at start {load_start}, at end {}",
        value.len(),
        load_average()
    );
    figure(
        "memory get / HashMap get + Arc clone",
        "Door::secrets().get on MemoryStorage, no cache",
        "HashMap get + Arc clone",
        &t[1],
        &t[0],
        None,
    );
    println!(
        "memory: secrets().get {:.0} ns vs HashMap get + Arc clone {:.1} ns: {}",
        med(&t[1]),
        med(&t[0]),
        ratio_text(&t[1], &t[0]),
    );
    println!(
        "memory: Handle::read {:.0} ns vs secrets().get {:.0} ns: {}",
        med(&t[2]),
        med(&t[1]),
        ratio_text(&t[2], &t[1]),
    );
}

// ----- 4. PostgreSQL -----

fn postgres(rt: &Runtime, value: &[u8]) {
    if env_or("SECRETS_BENCH_PG", 1) == 0 {
        println!("== postgres: skipped (SECRETS_BENCH_PG=0)");
        return;
    }
    let load_start = load_average();
    let pg = match strongroom_testpg::TestPostgres::shared() {
        Ok(pg) => pg,
        Err(e) => {
            println!("== postgres: skipped ({e})");
            return;
        }
    };
    match rt.block_on(postgres_run(&pg, value, &load_start)) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
        }
        Err(e) => println!("== postgres: skipped ({e})"),
    }
}

async fn postgres_run(
    pg: &strongroom_testpg::TestPostgres,
    value: &[u8],
    load_start: &str,
) -> Result<Vec<String>, BoxError> {
    let keys = env_or("SECRETS_BENCH_PG_KEYS", 10_000).max(1);
    let rounds = env_or("SECRETS_BENCH_PG_ROUNDS", 21).max(1);
    let reads = env_or("SECRETS_BENCH_PG_READS", 2000).max(1);
    let puts = env_or("SECRETS_BENCH_PG_PUTS", 200).max(1);
    let url = pg.fresh_database("secretsbench").await?;
    let fsync = server_fsync(pg, &url).await?;
    let store = PgStore::connect(&url).await?;
    let storage: DynStorage = Arc::new(store.clone());
    let door = open_door(storage.clone()).await;
    let secrets = door.secrets();
    let t = Instant::now();
    fill(&door, 0, keys, value, 200, false).await;
    fill(&door, 0, keys, value, 200, true).await;
    eprintln!(
        "postgres: filled {keys} secrets in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // The plain side: its own pool of the store's size, a copy of the
    // store's table (same rows and keys), and a table for inserts.
    let plain = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await?;
    for sql in [
        "CREATE TABLE bench_kv (key BYTEA PRIMARY KEY, value BYTEA NOT NULL)",
        "INSERT INTO bench_kv SELECT key, value FROM strongroom_kv",
        "CREATE TABLE bench_write (key BYTEA PRIMARY KEY, value BYTEA NOT NULL)",
        "VACUUM ANALYZE bench_kv",
        "VACUUM ANALYZE strongroom_kv",
    ] {
        sqlx::query(sql).execute(&plain).await?;
    }
    let record = storage
        .get(&version_key(&SecretPath::parse(&secret_path(0))?, 1))
        .await?
        .ok_or("no version record")?;

    let plain_reads = |keys: Vec<String>| {
        let plain = plain.clone();
        async move {
            let t = Instant::now();
            for k in &keys {
                let v: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT value FROM bench_kv WHERE key = $1")
                        .bind(k.as_bytes())
                        .fetch_optional(&plain)
                        .await
                        .unwrap();
                black_box(v.expect("row present"));
            }
            t.elapsed().as_nanos() as f64 / keys.len() as f64
        }
    };
    let mut w = Workload::new(23);
    // warm
    let warm = ReadSet::random(&mut w, keys, reads.min(500));
    time_gets(&secrets, &warm.inline_paths, value.len()).await;
    plain_reads(warm.version_keys).await;

    // ns per get: secrets, plain; puts per second: secrets, plain
    let mut t: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        let set = ReadSet::random(&mut w, keys, reads);
        for k in 0..4 {
            let v = (round + k) % 4;
            let x = match v {
                0 => time_gets(&secrets, &set.inline_paths, value.len()).await,
                1 => plain_reads(set.version_keys.clone()).await,
                2 => {
                    let start = Instant::now();
                    for i in 0..puts {
                        secrets
                            .put(&format!("put/r{round}/s{i:05}"), value, None)
                            .await?;
                    }
                    puts as f64 / start.elapsed().as_secs_f64()
                }
                _ => {
                    let start = Instant::now();
                    for i in 0..puts {
                        sqlx::query("INSERT INTO bench_write (key, value) VALUES ($1, $2)")
                            .bind(format!("raw/r{round}/s{i:05}").into_bytes())
                            .bind(&record)
                            .execute(&plain)
                            .await?;
                    }
                    puts as f64 / start.elapsed().as_secs_f64()
                }
            };
            t[v].push(x);
        }
        eprintln!(
            "  postgres round {round}: get {:.0} us, plain select {:.0} us, put {:.0}/s, plain insert {:.0}/s",
            t[0][round] / 1e3,
            t[1][round] / 1e3,
            t[2][round],
            t[3][round]
        );
    }
    plain.close().await;
    store.close().await;
    figure(
        "postgres get / plain sqlx SELECT",
        "Door::secrets().get on PgStore",
        "sqlx SELECT value WHERE key = $1, same server",
        &t[0],
        &t[1],
        None,
    );
    figure(
        "postgres put rate / plain sqlx INSERT rate",
        "Door::secrets().put on PgStore",
        "sqlx INSERT, one row per transaction, same server",
        &t[2],
        &t[3],
        None,
    );
    Ok(vec![
        format!(
            "== postgres ({keys} secrets, {rounds} rounds of {reads} reads and {puts} puts per side, one writer; server fsync {fsync}); load average at start {load_start}, at end {}",
            load_average()
        ),
        format!(
            "postgres: secrets().get {:.0} us vs plain sqlx SELECT value .. WHERE key = $1 of the version record {:.0} us: {}",
            med(&t[0]) / 1e3,
            med(&t[1]) / 1e3,
            ratio_text(&t[0], &t[1]),
        ),
        format!(
            "postgres: secrets().put {:.0}/s vs plain sqlx INSERT, one row per autocommit transaction, {:.0}/s: {} (put/insert rate)",
            med(&t[2]),
            med(&t[3]),
            ratio_text(&t[2], &t[3]),
        ),
    ])
}

/// Makes commits durable on a private cluster (strongroom-testpg starts
/// them with `fsync = off`; `SECRETS_BENCH_PG_FSYNC=0` keeps that) and
/// says how the server runs. A server named by `STRONGROOM_TEST_PG_URL` is
/// left as it is.
async fn server_fsync(pg: &strongroom_testpg::TestPostgres, url: &str) -> Result<String, BoxError> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    let private = pg.dir().is_some();
    if private && env_or("SECRETS_BENCH_PG_FSYNC", 1) != 0 {
        sqlx::query("ALTER SYSTEM SET fsync = on")
            .execute(&mut conn)
            .await?;
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .await?;
        // every backend takes the new setting before its next command
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let on: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(&mut conn)
        .await?;
    let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut conn)
        .await?;
    let _ = sqlx::Connection::close(conn).await;
    Ok(format!(
        "{on}, synchronous_commit {sync}, {} server",
        if private { "private" } else { "external" }
    ))
}

fn main() {
    let value: Vec<u8> = (0..env_or("SECRETS_BENCH_VALUE", 64).max(1))
        .map(|i| i as u8)
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    *FIGURES.lock().unwrap() = Some(Figures::new("secrets_store"));
    println!(
        "secrets store bench; load average at start {}",
        load_average()
    );
    let parts = std::env::var("SECRETS_BENCH_PARTS")
        .unwrap_or_else(|_| "reads,writes,memory,postgres".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    if part("reads") {
        sqlite_reads(&rt, dir.path(), &value);
    }
    if part("writes") {
        sqlite_writes(&rt, dir.path(), &value);
    }
    if part("memory") {
        memory(&rt, dir.path(), &value);
    }
    if part("postgres") {
        postgres(&rt, &value);
    }
    if let Some(f) = FIGURES.lock().unwrap().take() {
        f.save();
    }
    println!(
        "secrets store bench done in {:.0} s; load average at end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
}
