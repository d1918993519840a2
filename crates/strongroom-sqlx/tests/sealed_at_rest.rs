//! Storage only ever sees sealed bytes: a canary written through every path
//! of the store is never found in the SQLite file or its WAL, and a store
//! opened from the file after a restart reads it back.

use std::sync::Arc;

use strongroom::protector::SoftwareProtector;
use strongroom::seal::SealContext;
use strongroom::storage::DynStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_sqlx::SqliteStore;

const CANARY: &[u8] = b"canary-3b9f2e71-never-in-plaintext";

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[tokio::test]
async fn sqlite_file_holds_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let key = SoftwareProtector::from_key(SecretBytes::new(vec![9; 32])).unwrap();
    let storage: DynStorage = Arc::new(SqliteStore::open(&db).await.unwrap());
    let sr = Strongroom::init(storage.clone(), &key, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let secrets = sr.secrets();
    for _ in 0..3 {
        secrets.put("prod/app/db", CANARY, None).await.unwrap();
    }
    sr.put_sealed("s/raw", CANARY, &SealContext::new("raw", 1))
        .await
        .unwrap();
    sr.rotate().await.unwrap();
    sr.rewrap(10).await.unwrap();
    // while the WAL still holds the writes
    assert_eq!(files_contain(dir.path(), CANARY), Vec::<String>::new());
    drop(secrets);
    drop(sr);
    drop(storage);

    let storage: DynStorage = Arc::new(SqliteStore::open(&db).await.unwrap());
    let sr = Strongroom::unseal(storage, &key, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let got = sr.secrets().get("prod/app/db").await.unwrap();
    assert_eq!(got.value.expose_secret(), CANARY);
    assert_eq!(got.version.version, 3);
    assert_eq!(files_contain(dir.path(), CANARY), Vec::<String>::new());
}
