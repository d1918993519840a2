//! A writer member: puts `count` secrets `w<id>/k<n>` (value `v<id>-<n>`)
//! through the secrets store, printing `ack <path> <value>` once each put
//! returned (committed and durable). Starts at `first` so a restarted
//! writer continues its numbering.
//!
//! Usage: `keyring_writer <store-spec> <key-file>[:<key-file>...] <id> <first> <count>`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, id) = (&args[1], &args[3]);
    let keys: Vec<PathBuf> = args[2].split(':').map(PathBuf::from).collect();
    let first: u64 = args[4].parse().unwrap();
    let count: u64 = args[5].parse().unwrap();
    let sr = strongroom_chaos::unseal_any(spec, &keys).await;
    let secrets = sr.secrets();
    println!("ready");
    for n in first..first + count {
        let path = format!("w{id}/k{n}");
        let value = format!("v{id}-{n}");
        secrets.put(&path, value.as_bytes(), None).await.unwrap();
        println!("ack {path} {value}");
    }
    println!("done generation={}", sr.keyring_generation().unwrap());
}
