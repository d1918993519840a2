//! The SQLite store against Python's `sqlite3` on the same file, and group
//! commit.
//!
//! Point reads: `Storage::get` on a `SqliteStore` and, in a persistent
//! `python3` child driven over stdin/stdout, `SELECT value FROM
//! strongroom_kv WHERE key = ?` with `execute(...).fetchone()` on a
//! read-only `sqlite3` connection to the same file, the same keys in the
//! same (shuffled) order. Python times its own loop with
//! `time.perf_counter_ns` and replies with the elapsed nanoseconds, so the
//! pipe is not counted. The two run interleaved, round by round, in
//! alternating order; each round gives one ratio (store / Python), and the
//! report is the median of those ratios with their spread.
//!
//! Group commit: batches shaped like a secret write (a precondition that
//! the key is absent, the value of 256 bytes and a 64-byte metadata record)
//! from 1, 8 and 64 concurrent writers, each round measuring the three
//! after one another; the ratios 8/1 and 64/1 are taken per round.
//!
//! Run: `cargo bench -p strongroom-benches --bench sqlite_store`
//! (`SQLITE_BENCH_KEYS` records in the file, default 100000;
//! `SQLITE_BENCH_ROUNDS`, default 15; `SQLITE_BENCH_READS` per side per
//! round, default 20000; `SQLITE_BENCH_BATCHES` per writer count per round
//! for one writer, default 300, and 100 per writer for 8 and 64).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom::storage::{BatchOp, Storage};
use strongroom_benches::{Figures, Target, Workload, env_or, load_average, median};
use strongroom_sqlx::SqliteStore;

/// The Python side: loads the keys, then answers `run START COUNT` with
/// `ELAPSED_NS FOUND` for COUNT point reads from key START on.
const PYTHON: &str = r#"
import sqlite3, sys, time
path, keys_file = sys.argv[1], sys.argv[2]
keys = [line.rstrip("\n").encode() for line in open(keys_file)]
con = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
q = "SELECT value FROM strongroom_kv WHERE key = ?"
print("ready", flush=True)
for line in sys.stdin:
    _, start, count = line.split()
    start, count, n = int(start), int(count), len(keys)
    found = 0
    t = time.perf_counter_ns()
    for i in range(start, start + count):
        row = con.execute(q, (keys[i % n],)).fetchone()
        if row is not None:
            found += 1
    elapsed = time.perf_counter_ns() - t
    print(elapsed, found, flush=True)
"#;

struct Python {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Python {
    fn start(db: &std::path::Path, keys: &std::path::Path) -> Self {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PYTHON)
            .arg(db)
            .arg(keys)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the baseline");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "python3 did not start: {line:?}");
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// `count` reads from key `start` on: the time Python measured.
    fn run(&mut self, start: usize, count: usize) -> Duration {
        writeln!(self.stdin, "run {start} {count}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let ns: u64 = parts.next().unwrap().parse().unwrap();
        let found: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(found, count, "python found {found} of {count} keys");
        Duration::from_nanos(ns)
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` reads through the store from key `start` on.
async fn store_reads(store: &SqliteStore, keys: &[String], start: usize, count: usize) -> Duration {
    let t = Instant::now();
    let mut found = 0;
    for i in start..start + count {
        if store.get(&keys[i % keys.len()]).await.unwrap().is_some() {
            found += 1;
        }
    }
    let elapsed = t.elapsed();
    assert_eq!(found, count);
    elapsed
}

/// Batches per second with `writers` concurrent writers, each committing
/// `per_writer` batches under `tag`. `Spread`: each writer in a key range
/// of its own (a group's batches touch as many b-tree leaves as there are
/// writers); `Adjacent`: the writers' i-th keys sort next to each other (a
/// group's batches share a few leaves, as time-ordered keys do).
async fn batch_rate(
    store: &SqliteStore,
    tag: &str,
    keys: Keys,
    writers: usize,
    per_writer: usize,
) -> f64 {
    let value = vec![0x5au8; 256];
    let meta = vec![0xa5u8; 64];
    let start = Arc::new(tokio::sync::Barrier::new(writers + 1));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, start) = (store.clone(), Arc::clone(&start));
        let (value, meta) = (value.clone(), meta.clone());
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for i in 0..per_writer {
                let key = match keys {
                    Keys::Spread => format!("gc/{tag}/w{w:02}/{i:05}"),
                    Keys::Adjacent => format!("gc/{tag}/{i:05}/w{w:02}"),
                };
                store
                    .batch(vec![
                        BatchOp::expect(key.clone(), None),
                        BatchOp::put(key.clone(), value.clone()),
                        BatchOp::put(format!("{key}/meta"), meta.clone()),
                    ])
                    .await
                    .unwrap();
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

#[derive(Clone, Copy, Debug)]
enum Keys {
    Spread,
    Adjacent,
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn main() {
    let n_keys = env_or("SQLITE_BENCH_KEYS", 100_000);
    let rounds = env_or("SQLITE_BENCH_ROUNDS", 15);
    let reads = env_or("SQLITE_BENCH_READS", 20_000);
    let single = env_or("SQLITE_BENCH_BATCHES", 300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let load_before = load_average();
    let mut figures = Figures::new("sqlite_store");

    // Keys shaped like a secret's records, values the size of a sealed one.
    let mut keys: Vec<String> = (0..n_keys)
        .map(|i| format!("s/kv/svc{:03}/secret{i:07}@{:020}", i % 500, 1))
        .collect();
    let store = rt.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        for chunk in keys.chunks(2000) {
            store
                .batch(
                    chunk
                        .iter()
                        .map(|k| BatchOp::put(k.clone(), vec![0x42u8; 200]))
                        .collect(),
                )
                .await
                .unwrap();
        }
        store
    });
    // Read in a shuffled order, the same on both sides.
    let mut w = Workload::new(7);
    for i in (1..keys.len()).rev() {
        let j = (w.next_u64() % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    let keys_file = dir.path().join("keys.txt");
    std::fs::write(&keys_file, keys.join("\n") + "\n").unwrap();
    let mut python = Python::start(&db, &keys_file);

    // Warm both (page cache, statement caches).
    rt.block_on(store_reads(&store, &keys, 0, reads.min(n_keys)));
    python.run(0, reads.min(n_keys));

    // Group commit writes go to a file of their own, so the file the
    // reads measure neither grows nor carries a long WAL.
    let writes = rt
        .block_on(SqliteStore::open(dir.path().join("writes.db")))
        .unwrap();

    let mut read_ratios = Vec::new();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let shapes = [Keys::Spread, Keys::Adjacent];
    // per shape: rates at 1, 8, 64 writers, and the per-round ratios 8/1, 64/1
    let mut rates = vec![[Vec::new(), Vec::new(), Vec::new()]; shapes.len()];
    let mut ratios = vec![[Vec::new(), Vec::new()]; shapes.len()];
    for round in 0..rounds {
        let start = (round * reads) % n_keys;
        let (a, b) = if round % 2 == 0 {
            let a = rt.block_on(store_reads(&store, &keys, start, reads));
            (a, python.run(start, reads))
        } else {
            let b = python.run(start, reads);
            (rt.block_on(store_reads(&store, &keys, start, reads)), b)
        };
        let per = |d: Duration| d.as_nanos() as f64 / reads as f64;
        ours.push(per(a));
        theirs.push(per(b));
        read_ratios.push(per(a) / per(b));
        let mut line = format!(
            "round {round}: get {:.2} us vs python {:.2} us ({:.2}x)",
            per(a) / 1000.0,
            per(b) / 1000.0,
            per(a) / per(b)
        );

        for (k, keys) in shapes.iter().enumerate() {
            let tag = |w: usize| format!("{keys:?}{round}w{w}");
            let [one, eight, sixty_four] = rt.block_on(async {
                [
                    batch_rate(&writes, &tag(1), *keys, 1, single).await,
                    batch_rate(&writes, &tag(8), *keys, 8, 100).await,
                    batch_rate(&writes, &tag(64), *keys, 64, 100).await,
                ]
            });
            for (v, r) in rates[k].iter_mut().zip([one, eight, sixty_four]) {
                v.push(r);
            }
            ratios[k][0].push(eight / one);
            ratios[k][1].push(sixty_four / one);
            line +=
                &format!("; {keys:?} batches/s 1: {one:.0}, 8: {eight:.0}, 64: {sixty_four:.0}");
        }
        eprintln!("{line}");
    }
    drop(python);
    rt.block_on(store.close());
    rt.block_on(writes.close());

    let m = |v: &[f64]| median(v.to_vec()).unwrap_or(f64::NAN);
    println!(
        "sqlite store, {n_keys} records, {rounds} rounds; load average before {load_before}, after {}",
        load_average()
    );
    let (lo, hi) = spread(&read_ratios);
    println!(
        "point read: Storage::get {:.2} us, python sqlite3 {:.2} us (medians); ratio median {:.2}x (min {lo:.2}x, max {hi:.2}x)",
        m(&ours) / 1000.0,
        m(&theirs) / 1000.0,
        m(&read_ratios)
    );
    figures.ratio(
        "point read / python sqlite3",
        "Storage::get on SqliteStore",
        "python3 sqlite3 execute().fetchone() on the same file",
        &read_ratios,
        Some(Target::AtMost(1.5)),
    );
    for (k, keys) in shapes.iter().enumerate() {
        figures.ratio(
            &format!("group commit 8 writers / 1, {keys:?} keys"),
            "Storage::batch (3 ops) on SqliteStore",
            "the same with one writer",
            &ratios[k][0],
            None,
        );
        figures.ratio(
            &format!("group commit 64 writers / 1, {keys:?} keys"),
            "Storage::batch (3 ops) on SqliteStore",
            "the same with one writer",
            &ratios[k][1],
            None,
        );
    }
    figures.save();
    for (k, keys) in shapes.iter().enumerate() {
        let [w1, w8, w64] = &rates[k];
        let [r8, r64] = &ratios[k];
        let (lo8, hi8) = spread(r8);
        let (lo64, hi64) = spread(r64);
        println!(
            "group commit, {keys:?} keys: batches/s (medians) 1 writer {:.0}, 8 writers {:.0}, 64 writers {:.0}; vs 1 writer: 8 writers {:.1}x (min {lo8:.1}x, max {hi8:.1}x), 64 writers {:.1}x (min {lo64:.1}x, max {hi64:.1}x)",
            m(w1),
            m(w8),
            m(w64),
            m(r8),
            m(r64)
        );
    }
}
