//! The operator, while writers write: `cycles` times rotate, rewrap until
//! nothing remains on older versions, retire everything below the primary
//! and destroy the retired versions; after the first cycle, rotate the root
//! key to the software key in `new-key-file` (writers follow through the
//! hand-over record). Prints one line per step; exits non-zero on any
//! failure (a refused destroy included).
//!
//! Usage: `keyring_admin <store-spec> <key-file> <new-key-file> <cycles>`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use strongroom::keyring::KeyState;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, key) = (&args[1], PathBuf::from(&args[2]));
    let new_key = PathBuf::from(&args[3]);
    let cycles: u32 = args[4].parse().unwrap();
    let sr = strongroom_chaos::open_store(spec, &key).await;
    for cycle in 0..cycles {
        // let the writers write under the current primary for a moment
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let new = sr.rotate().await.unwrap();
        println!("cycle {cycle} rotated to {}", new.version);
        let report = sr.rewrap(200).await.unwrap();
        println!(
            "cycle {cycle} rewrap rewrapped={} remaining={} passes={} target={}",
            report.rewrapped, report.remaining, report.passes, report.target_version
        );
        assert!(report.is_complete(), "rewrap left records: {report:?}");
        let primary = sr.keyring().unwrap().primary_version();
        sr.set_min_decryption_version(primary).await.unwrap();
        println!("cycle {cycle} retired below {primary}");
        for k in sr.keys().unwrap() {
            if k.state == KeyState::Retired {
                sr.destroy_key(k.version).await.unwrap();
                println!("cycle {cycle} destroyed {}", k.version);
            }
        }
        if cycle == 0 {
            let p = strongroom::protector::SoftwareProtector::from_key_file(&new_key).unwrap();
            sr.rotate_root_key(&p).await.unwrap();
            println!("cycle {cycle} rotated the root key");
        }
    }
    println!("done");
}
