//! PgStore over TLS, against a private cluster that accepts TLS only
//! (`hostssl` lines, a server certificate from a CA made for the test).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strongroom::storage::{Storage, StorageEvent, conformance};
use strongroom::{Error, StorageErrorKind};
use strongroom_sqlx::PgStore;
use strongroom_testpg::{TestCertificates, TestPostgres};

fn kind_and_message(e: &Error) -> (StorageErrorKind, String) {
    match e {
        Error::Storage { kind, message, .. } => (*kind, message.clone()),
        other => panic!("expected a storage error, got {other:?}"),
    }
}

/// A URL for database `db` on the TLS cluster with `params` appended.
fn url(pg: &TestPostgres, db: &str, params: &str) -> String {
    format!("{}?{params}", pg.database_url(db))
}

fn verify_full(ca: &Path) -> String {
    format!("sslmode=verify-full&sslrootcert={}", ca.display())
}

/// Whether the store's own connection is encrypted (`pg_stat_ssl`).
async fn uses_tls(store: &PgStore) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// The error must name neither the password nor the URL.
fn assert_hides_secrets(pg: &TestPostgres, e: &Error, url: &str) {
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains(pg.superuser_password().expose_secret()),
        "{text}"
    );
    assert!(!text.contains(url), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_right_ca_is_a_working_store() {
    let pg = TestPostgres::shared_tls().unwrap();
    let ca = pg.tls_root_cert().unwrap().to_path_buf();
    let db = pg.fresh_database("tls_ok").await.unwrap();
    let db = db.rsplit('/').next().unwrap().to_owned();
    let u = url(&pg, &db, &verify_full(&ca));
    let store = PgStore::connect(&u).await.unwrap();
    assert!(uses_tls(&store).await);
    store.put("over/tls", b"sealed").await.unwrap();
    assert_eq!(store.get("over/tls").await.unwrap().unwrap(), b"sealed");

    // The change listener connects with the same TLS settings.
    let other = PgStore::connect(&u).await.unwrap();
    let mut feed = other.watch().unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, StorageEvent::Unknown);
    store.put("over/tls/2", b"x").await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, StorageEvent::Changed(vec!["over/tls/2".to_owned()]));

    // "localhost" is in the certificate too.
    let by_name = u.replace("@127.0.0.1:", "@localhost:");
    let s = PgStore::connect(&by_name).await.unwrap();
    assert!(uses_tls(&s).await);

    conformance::run_all(|| {
        let pg = Arc::clone(&pg);
        let ca = ca.clone();
        async move {
            let db = pg.fresh_database("tls_conf").await.unwrap();
            let db = db.rsplit('/').next().unwrap().to_owned();
            PgStore::connect(&url(&pg, &db, &verify_full(&ca)))
                .await
                .unwrap()
        }
    })
    .await;
}

#[tokio::test]
async fn verify_full_with_a_wrong_ca_is_rejected_without_secrets() {
    let pg = TestPostgres::shared_tls().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("other-ca.crt");
    TestCertificates::generate(&["127.0.0.1", "localhost"])
        .unwrap()
        .write_ca(&wrong)
        .unwrap();
    for mode in ["verify-full", "verify-ca"] {
        let u = url(
            &pg,
            "postgres",
            &format!("sslmode={mode}&sslrootcert={}", wrong.display()),
        );
        let started = std::time::Instant::now();
        let err = PgStore::connect(&u).await.unwrap_err();
        let (kind, message) = kind_and_message(&err);
        eprintln!("{mode}, wrong CA: {kind:?}: {message}");
        assert_eq!(kind, StorageErrorKind::Rejected, "{message}");
        assert!(message.contains("TLS"), "{message}");
        assert!(message.contains("UnknownIssuer"), "{message}");
        assert_hides_secrets(&pg, &err, &u);
        // refused at once, not after the connect timeout
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

/// A server whose certificate, from the right CA, names another host:
/// `verify-full` refuses it, `verify-ca` accepts it.
#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_name() {
    let certs = TestCertificates::generate(&["db.example"]).unwrap();
    let pg = TestPostgres::start_tls_with(&certs).unwrap();
    let ca = pg.tls_root_cert().unwrap();
    let u = url(&pg, "postgres", &verify_full(ca));
    let err = PgStore::connect(&u).await.unwrap_err();
    let (kind, message) = kind_and_message(&err);
    eprintln!("verify-full, certificate for another name: {kind:?}: {message}");
    assert_eq!(kind, StorageErrorKind::Rejected, "{message}");
    assert!(message.contains("certificate"), "{message}");
    assert_hides_secrets(&pg, &err, &u);

    let ca_only = url(
        &pg,
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    );
    let s = PgStore::connect(&ca_only).await.unwrap();
    assert!(uses_tls(&s).await);
    s.close().await;
}

#[tokio::test]
async fn plaintext_is_refused_and_require_works() {
    let pg = TestPostgres::shared_tls().unwrap();
    let u = url(&pg, "postgres", "sslmode=disable");
    let err = PgStore::connect(&u).await.unwrap_err();
    let (kind, message) = kind_and_message(&err);
    eprintln!("sslmode=disable against hostssl only: {kind:?}: {message}");
    assert_eq!(kind, StorageErrorKind::Rejected, "{message}");
    assert!(message.contains("no encryption"), "{message}");
    assert!(message.contains("28000"), "{message}");
    assert_hides_secrets(&pg, &err, &u);

    // require: encrypted, certificate not checked
    let s = PgStore::connect(&url(&pg, "postgres", "sslmode=require"))
        .await
        .unwrap();
    assert!(uses_tls(&s).await);
    s.put("required", b"1").await.unwrap();
    // prefer (no sslmode at all): encrypted when the server offers it
    let s = PgStore::connect(&pg.database_url("postgres"))
        .await
        .unwrap();
    assert!(uses_tls(&s).await);
}

/// A server without TLS: `require` and `verify-full` refuse to go on in
/// plaintext, with a typed error.
#[tokio::test]
async fn require_against_a_server_without_tls_is_rejected() {
    let plain = TestPostgres::shared().unwrap();
    let u = format!("{}?sslmode=require", plain.database_url("postgres"));
    let err = PgStore::connect(&u).await.unwrap_err();
    let (kind, message) = kind_and_message(&err);
    eprintln!("require, server without TLS: {kind:?}: {message}");
    assert_eq!(kind, StorageErrorKind::Rejected, "{message}");
    assert!(message.contains("TLS"), "{message}");
    assert_hides_secrets(&plain, &err, &u);
}

#[tokio::test]
async fn an_unknown_sslmode_is_rejected() {
    let pg = TestPostgres::shared_tls().unwrap();
    let u = url(&pg, "postgres", "sslmode=sometimes");
    let err = PgStore::connect(&u).await.unwrap_err();
    let (kind, message) = kind_and_message(&err);
    assert_eq!(kind, StorageErrorKind::Rejected, "{message}");
    assert!(message.contains("sslmode"), "{message}");
    assert_hides_secrets(&pg, &err, &u);
}

#[tokio::test]
async fn a_missing_root_certificate_file_is_rejected() {
    let pg = TestPostgres::shared_tls().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.crt");
    let u = url(&pg, "postgres", &verify_full(&missing));
    let err = PgStore::connect(&u).await.unwrap_err();
    let (kind, message) = kind_and_message(&err);
    eprintln!("missing sslrootcert: {kind:?}: {message}");
    assert_eq!(kind, StorageErrorKind::Rejected, "{message}");
    assert!(message.contains("sslrootcert"), "{message}");
    assert_hides_secrets(&pg, &err, &u);
}
