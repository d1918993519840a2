//! A rotator member: rotates one PostgreSQL credential with the
//! alternating-users strategy, back to back, until killed. Each rotation
//! first finishes (or rolls back) whatever rotation a killed predecessor
//! left recorded. Every incarnation uses the same lock owner id, so a
//! restarted rotator takes over its predecessor's lock at once.
//!
//! Prints `started in_flight=<step>@<version>|none` once the engine is open,
//! `rotated <version>` after each promotion and `error <message>` when a
//! rotation fails (it is then tried again).
//!
//! Usage: `pool_rotator <store-spec> <key-file> <admin-url> <credential> <role-base> <owner-id>`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use strongroom::rotation::{RotationError, RotationOptions};
use strongroom_sqlx::pool::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use strongroom_sqlx::rotate::PgAlternatingRotator;

/// The engine options every incarnation uses.
fn rotation_options(owner: &str) -> RotationOptions {
    RotationOptions {
        owner_id: Some(owner.to_owned()),
        lock_ttl: Duration::from_secs(10),
        max_attempts: 5,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        // the test counts completed rotations from the history
        history_limit: 1000,
        ..RotationOptions::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, key, admin_url) = (&args[1], PathBuf::from(&args[2]), &args[3]);
    let (credential, base, owner) = (&args[4], &args[5], &args[6]);
    let sr = strongroom_chaos::open_store(spec, &key).await;
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(admin_url)
        .await
        .expect("admin pool");
    let target = PgConnectOptions::from_str(admin_url).expect("admin url");
    let rotator = PgAlternatingRotator::new(admin, target, base).expect("rotator");
    let engine = sr
        .rotation_engine(credential, Arc::new(rotator), rotation_options(owner))
        .await
        .expect("engine");
    let in_flight = engine
        .status()
        .await
        .expect("status")
        .in_flight
        .map_or_else(|| "none".to_owned(), |(step, v)| format!("{step}@{v}"));
    println!("started in_flight={in_flight}");
    loop {
        match engine.rotate_now().await {
            Ok(report) => {
                if let Some(v) = report.promoted {
                    println!("rotated {v}");
                }
            }
            Err(strongroom::Error::Rotation(RotationError::Busy { .. })) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                println!("error {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
