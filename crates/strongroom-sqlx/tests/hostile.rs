//! The core's hostile-storage suite over the real backends: every record
//! kind tampered with in the SQLite file and the PostgreSQL table (bits
//! flipped, records swapped, moved, dropped, rolled back), each change
//! either detected or one of the rollbacks `SECURITY.md` lists.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use strongroom::hostile;
use strongroom_sqlx::{PgStore, SqliteStore};
use strongroom_testpg::TestPostgres;

#[tokio::test]
async fn sqlite_store_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("hostile.db"))
        .await
        .unwrap();
    let report = hostile::run(Arc::new(store)).await;
    println!("{}", report.table());
    report.assert_passed();
    assert!(report.tried() > 150, "{}", report.table());
}

#[tokio::test]
async fn postgres_store_detects_tampering() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("hostile").await.unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let report = hostile::run(Arc::new(store)).await;
    println!("{}", report.table());
    report.assert_passed();
    assert!(report.tried() > 150, "{}", report.table());
}
