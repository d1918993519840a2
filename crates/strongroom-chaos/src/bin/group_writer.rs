//! A group-commit writer member: `tasks` concurrent tasks on one store,
//! each committing `count` batches (`Expect` the key absent, then put it),
//! printing `ack <key> <value>` once each batch returned (committed and
//! durable). With many tasks at once, the SQLite store commits their
//! batches in shared transactions.
//!
//! Usage: `group_writer <store-spec> <id> <tasks> <count>`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use strongroom::storage::BatchOp;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, id) = (&args[1], args[2].clone());
    let tasks: usize = args[3].parse().unwrap();
    let count: usize = args[4].parse().unwrap();
    let storage = strongroom_chaos::open_storage(spec).await;
    println!("ready");
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (storage, id) = (storage.clone(), id.clone());
        handles.push(tokio::spawn(async move {
            for n in 0..count {
                let key = format!("g{id}/t{t:02}/{n:05}");
                let value = format!("v{id}-{t}-{n}");
                storage
                    .batch(vec![
                        BatchOp::expect(key.clone(), None),
                        BatchOp::put(key.clone(), value.as_bytes().to_vec()),
                    ])
                    .await
                    .unwrap();
                println!("ack {key} {value}");
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    println!("done");
}
