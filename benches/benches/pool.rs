//! Query latency through the self-healing pool versus a plain sqlx pool, in
//! the same run against the same server: at rest, and while the wrapper's
//! credential is rotated back to back (alternating users, then a single
//! user). Both pools run at the same time with the same number of workers,
//! so they see the same machine and server load; the plain pool logs in as
//! a role that is never rotated.
//!
//! Run: `cargo bench --bench pool` (starts a private PostgreSQL cluster
//! through strongroom-testpg, or uses `STRONGROOM_TEST_PG_URL`).
//! Environment: `POOL_BENCH_SECS` (default 5) per phase, `POOL_BENCH_WORKERS`
//! (default 8) per pool, `POOL_BENCH_ROTATE_EVERY_MS` (default 0: rotations
//! back to back; otherwise a pause between rotations), `POOL_BENCH_MAX_LIFETIME_MS`
//! (default none: connections live on; set it to make both pools log in
//! again all the time, so new logins land inside single-user rotation windows).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use strongroom::clock::SystemClock;
use strongroom::protector::SoftwareProtector;
use strongroom::rotation::{RotationOptions, Rotator};
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_sqlx::pool::{HealingOptions, HealingPool, RotatedSource};
use strongroom_sqlx::rotate::{PgAlternatingRotator, PgSingleUserRotator};
use strongroom_testpg::TestPostgres;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Default)]
struct Samples {
    micros: Vec<u64>,
    failures: u64,
}

impl Samples {
    fn pct(&mut self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        self.micros.sort_unstable();
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        self.micros[i.min(self.micros.len() - 1)] as f64 / 1000.0
    }
}

async fn exec(admin: &PgPool, template: &'static str, a: &str, b: Option<&str>) -> BenchResult<()> {
    let mut q = sqlx::query_scalar::<_, String>(template).bind(a);
    if let Some(b) = b {
        q = q.bind(b);
    }
    let stmt = q.fetch_one(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
        .execute(admin)
        .await?;
    Ok(())
}

/// Runs `workers` loops of `SELECT 1` on each pool for `secs`, in parallel.
async fn measure(
    plain: &PgPool,
    healing: &HealingPool,
    workers: usize,
    run_for: Duration,
) -> (Samples, Samples) {
    let end = Instant::now() + run_for;
    let mut plain_tasks = Vec::new();
    let mut heal_tasks = Vec::new();
    for _ in 0..workers {
        let p = plain.clone();
        plain_tasks.push(tokio::spawn(async move {
            let mut s = Samples::default();
            while Instant::now() < end {
                let t = Instant::now();
                match sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&p).await {
                    Ok(_) => s.micros.push(t.elapsed().as_micros() as u64),
                    Err(_) => s.failures += 1,
                }
            }
            s
        }));
        let h = healing.clone();
        heal_tasks.push(tokio::spawn(async move {
            let mut s = Samples::default();
            while Instant::now() < end {
                let t = Instant::now();
                let r =
                    h.run(|p| async move {
                        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&p).await
                    })
                    .await;
                match r {
                    Ok(_) => s.micros.push(t.elapsed().as_micros() as u64),
                    Err(e) => {
                        eprintln!("wrapper query failed: {e}");
                        s.failures += 1;
                    }
                }
            }
            s
        }));
    }
    let mut out = (Samples::default(), Samples::default());
    for t in plain_tasks {
        if let Ok(s) = t.await {
            out.0.micros.extend(s.micros);
            out.0.failures += s.failures;
        }
    }
    for t in heal_tasks {
        if let Ok(s) = t.await {
            out.1.micros.extend(s.micros);
            out.1.failures += s.failures;
        }
    }
    out
}

fn report(phase: &str, plain: &mut Samples, heal: &mut Samples, extra: &str) {
    let (p50, p99) = (plain.pct(0.50), plain.pct(0.99));
    let (h50, h99) = (heal.pct(0.50), heal.pct(0.99));
    println!(
        "{phase:<28} plain: n={:>7} p50={p50:>7.3}ms p99={p99:>7.3}ms fail={} | wrapper: n={:>7} p50={h50:>7.3}ms p99={h99:>7.3}ms fail={} | ratio p50={:.2} p99={:.2} added p99={:+.3}ms {extra}",
        plain.micros.len(),
        plain.failures,
        heal.micros.len(),
        heal.failures,
        h50 / p50,
        h99 / p99,
        h99 - p99,
    );
}

fn main() -> BenchResult<()> {
    let secs: u64 = std::env::var("POOL_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let workers: usize = std::env::var("POOL_BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let run_for = Duration::from_secs(secs);
    let pace = Duration::from_millis(
        std::env::var("POOL_BENCH_ROTATE_EVERY_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    let lifetime = std::env::var("POOL_BENCH_MAX_LIFETIME_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_millis);
    let pool_options = move || {
        PgPoolOptions::new()
            .max_connections(workers as u32)
            .max_lifetime(lifetime)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let pg = TestPostgres::shared()?;
    rt.block_on(async {
        let url = pg.fresh_database("poolbench").await?;
        let admin_opts = PgConnectOptions::from_str(&url)?.disable_statement_logging();
        let db = admin_opts.get_database().unwrap_or("postgres").to_owned();
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(admin_opts)
            .await?;
        let target = PgConnectOptions::new()
            .host(pg.host())
            .port(pg.port())
            .database(&db);

        // the plain pool: a fixed role
        exec(
            &admin,
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
            "bench_plain",
            Some("bench-plain-pw"),
        )
        .await?;
        let plain = pool_options()
            .connect_with(
                target
                    .clone()
                    .username("bench_plain")
                    .password("bench-plain-pw"),
            )
            .await?;

        println!(
            "pool benchmark: {workers} workers per pool, {secs}s per phase, SELECT 1, both pools at once, pause between rotations {pace:?}, connection lifetime {lifetime:?}"
        );
        for mode in ["alternating", "single-user"] {
            let protector = SoftwareProtector::from_key(SecretBytes::new(vec![3; 32]))?;
            let sr = Strongroom::init(
                Arc::new(MemoryStorage::new()),
                &protector,
                Options {
                    clock: Arc::new(SystemClock),
                    ..Options::default()
                },
            )
            .await?
            .dangerous_traced("bench")
            .await?;
            let rotator: Arc<dyn Rotator> = if mode == "alternating" {
                let r = PgAlternatingRotator::new(admin.clone(), target.clone(), "bench_alt")?;
                r.ensure_roles().await?;
                Arc::new(r)
            } else {
                exec(
                    &admin,
                    "SELECT format('CREATE ROLE %I LOGIN', $1::text)",
                    "bench_single",
                    None,
                )
                .await?;
                Arc::new(PgSingleUserRotator::new(
                    admin.clone(),
                    target.clone(),
                    "bench_single",
                ))
            };
            let engine = Arc::new(
                sr.rotation_engine("bench/db",
                    rotator,
                    RotationOptions {
                        backoff_initial: Duration::from_millis(10),
                        backoff_max: Duration::from_millis(100),
                        ..RotationOptions::default()
                    },
                )
                .await?,
            );
            engine.rotate_now().await?;
            let healing = HealingPool::connect(
                target.clone(),
                pool_options(),
                Arc::new(RotatedSource::with_engine(sr.clone(), &engine)),
                HealingOptions {
                    budget: Duration::from_secs(10),
                    recycle_window: Duration::from_secs(1),
                    ..HealingOptions::default()
                },
            )
            .await?;
            // warm both pools
            let _ = measure(&plain, &healing, workers, Duration::from_millis(500)).await;

            let (mut p, mut h) = measure(&plain, &healing, workers, run_for).await;
            report(&format!("{mode} at rest"), &mut p, &mut h, "");

            let stop = Arc::new(AtomicBool::new(false));
            let rotations = Arc::new(AtomicU64::new(0));
            let rotator_task = {
                let (engine, stop, rotations) = (engine.clone(), stop.clone(), rotations.clone());
                tokio::spawn(async move {
                    let mut errors = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        match engine.rotate_now().await {
                            Ok(_) => {
                                rotations.fetch_add(1, Ordering::Relaxed);
                                if !pace.is_zero() {
                                    tokio::time::sleep(pace).await;
                                }
                            }
                            Err(e) => {
                                eprintln!("rotation failed: {e}");
                                errors += 1;
                            }
                        }
                    }
                    errors
                })
            };
            let before = healing.metrics();
            let (mut p, mut h) = measure(&plain, &healing, workers, run_for).await;
            stop.store(true, Ordering::Relaxed);
            let rotation_errors = rotator_task.await.unwrap_or(u64::MAX);
            let m = healing.metrics();
            report(
                &format!("{mode} during rotation"),
                &mut p,
                &mut h,
                &format!(
                    "| rotations={} rotation_errors={rotation_errors} refreshes={} retries={} swaps={} recycled={}",
                    rotations.load(Ordering::Relaxed),
                    m.refreshes - before.refreshes,
                    m.retries - before.retries,
                    m.swaps - before.swaps,
                    m.recycled - before.recycled,
                ),
            );
            healing.pool().close().await;
        }
        plain.close().await;
        BenchResult::Ok(())
    })?;
    drop(pg);
    Ok(())
}
