//! A watching member: unseals the store, watches the secret at `<path>`
//! through [`strongroom::secrets::SecretsStore::watch_with_fallback`] and,
//! whenever a report may concern it, reads it and prints
//! `seen <value> <unix_nanos>` if the value is not the one it printed last.
//! Every report is printed too: `event changed <unix_nanos>` or
//! `event resync <unix_nanos>` (a resync is the backend saying "something
//! changed" without naming it, or the polling fallback firing).
//!
//! Usage: `watch_member <store-spec> <key-file> <path> <fallback-ms>`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strongroom::secrets::{SecretChange, SecretError, SecretsStore};

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The secret's current value as text (`None` while it does not exist).
async fn read(secrets: &SecretsStore, path: &str) -> Option<String> {
    match secrets.get(path).await {
        Ok(v) => Some(String::from_utf8_lossy(v.value.expose_secret()).into_owned()),
        Err(strongroom::Error::Secret(SecretError::NotFound { .. })) => None,
        Err(e) => panic!("read {path}: {e}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, key_file, path) = (&args[1], PathBuf::from(&args[2]), &args[3]);
    let fallback = Duration::from_millis(args[4].parse().unwrap());
    let sr = strongroom_chaos::open_store(spec, &key_file).await;
    let secrets = sr.secrets();
    let mut watch = secrets.watch_with_fallback(path, fallback).unwrap();
    println!("watching notified={}", watch.is_notified());
    let mut last = read(&secrets, path).await;
    if let Some(v) = &last {
        println!("seen {v} {}", unix_nanos());
    }
    loop {
        let change = watch.next().await;
        let at = unix_nanos();
        let concerns_path = match &change {
            SecretChange::Changed(paths) => {
                println!("event changed {at}");
                paths.iter().any(|p| p == path)
            }
            SecretChange::Resync => {
                println!("event resync {at}");
                true
            }
        };
        if !concerns_path {
            continue;
        }
        let now = read(&secrets, path).await;
        if now != last {
            if let Some(v) = &now {
                println!("seen {v} {}", unix_nanos());
            }
            last = now;
        }
    }
}
