//! A pool worker member: `tasks` tasks run queries through one self-healing
//! pool (credentials from a rotated credential in the store, rotated by
//! another process; connections live at most `lifetime-ms`) until the file
//! `stop-file` exists.
//!
//! Prints `ready notified=<bool>` once the pool works, `failed <error>` for
//! each failed query, and at the end
//! `done queries=<n> failed=<n> proactive=<n> reactive=<n> refreshes=<n> retries=<n> recycled=<n>`
//! (proactive/reactive: swaps after a change notice / after a refused login).
//!
//! Usage: `pool_worker <store-spec> <key-file> <target-url> <credential> <tasks> <lifetime-ms> <stop-file>`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use strongroom_sqlx::pool::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use strongroom_sqlx::pool::{HealingOptions, HealingPool, PoolEvent, RotatedSource, sqlx};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, key, target_url) = (&args[1], PathBuf::from(&args[2]), &args[3]);
    let credential = &args[4];
    let tasks: usize = args[5].parse().unwrap();
    let lifetime = Duration::from_millis(args[6].parse().unwrap());
    let stop_file = PathBuf::from(&args[7]);
    let sr = strongroom_chaos::open_store(spec, &key).await;
    let source = RotatedSource::new(sr, credential);
    let notified = source.is_notified();
    let pool = HealingPool::connect(
        PgConnectOptions::from_str(target_url).expect("target url"),
        PgPoolOptions::new()
            .max_connections(8)
            .max_lifetime(lifetime),
        Arc::new(source),
        HealingOptions {
            budget: Duration::from_secs(10),
            recycle_window: Duration::from_secs(1),
            ..HealingOptions::default()
        },
    )
    .await
    .expect("healing pool");

    let proactive = Arc::new(AtomicU64::new(0));
    let reactive = Arc::new(AtomicU64::new(0));
    let mut events = pool.subscribe();
    {
        let (proactive, reactive) = (proactive.clone(), reactive.clone());
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(PoolEvent::Swapped { reactive: true, .. }) => {
                        reactive.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(PoolEvent::Swapped { .. }) => {
                        proactive.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop_file.exists() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    println!("ready notified={notified}");
    let queries = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (pool, stop, queries, failed) =
            (pool.clone(), stop.clone(), queries.clone(), failed.clone());
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r =
                    pool.run(|p| async move {
                        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&p).await
                    })
                    .await;
                queries.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(1) => {}
                    Ok(n) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        println!("failed wrong answer {n}");
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        println!("failed {e}");
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let m = pool.metrics();
    println!(
        "done queries={} failed={} proactive={} reactive={} refreshes={} retries={} recycled={}",
        queries.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        proactive.load(Ordering::Relaxed),
        reactive.load(Ordering::Relaxed),
        m.refreshes,
        m.retries,
        m.recycled
    );
    pool.pool().close().await;
}
