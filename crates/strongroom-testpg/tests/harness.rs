//! The harness itself: a real server, real password authentication, isolation
//! between databases, and a clean stop.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use sqlx::{ConnectOptions, Connection};
use strongroom_testpg::{TestPostgres, URL_ENV};

#[tokio::test]
async fn shared_server_accepts_the_superuser_and_is_shared() {
    let pg = TestPostgres::shared().unwrap();
    let again = TestPostgres::shared().unwrap();
    assert!(Arc::ptr_eq(&pg, &again));
    let mut conn = sqlx::PgConnection::connect(&pg.superuser_url())
        .await
        .unwrap();
    let is_super: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(is_super);
    let port: String = sqlx::query_scalar("SHOW port")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(port, pg.port().to_string());
    if std::env::var_os(URL_ENV).is_none() {
        let listen: String = sqlx::query_scalar("SHOW listen_addresses")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(listen, "127.0.0.1");
        assert_eq!(pg.host(), "127.0.0.1");
    }
    // TCP connections are authenticated with SCRAM.
    let method: Option<String> =
        sqlx::query_scalar("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' LIMIT 1")
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    if std::env::var_os(URL_ENV).is_none() {
        assert_eq!(method.as_deref(), Some("scram-sha-256"));
    }
    let debug = format!("{pg:?}");
    assert!(!debug.contains(pg.superuser_password().expose_secret()));
    if std::env::var_os(URL_ENV).is_none() {
        // a random password (hex of 24 random bytes), different per cluster
        assert_eq!(pg.superuser_password().expose_secret().len(), 48);
    }
}

#[tokio::test]
async fn wrong_password_fails_with_28p01_and_is_logged() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.url_for(pg.superuser(), "wrong-password", "postgres");
    let err = sqlx::PgConnection::connect(&url).await.unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("28P01"), "{err}");
    if std::env::var_os(URL_ENV).is_none() {
        let log = pg.read_log();
        assert!(
            log.contains("password authentication failed for user \"postgres\""),
            "{log}"
        );
        assert!(pg.log_path().unwrap().is_file());
    }
}

#[tokio::test]
async fn databases_are_isolated() {
    let pg = TestPostgres::shared().unwrap();
    let a = pg.fresh_database("iso").await.unwrap();
    let b = pg.fresh_database("iso").await.unwrap();
    assert_ne!(a, b);
    let mut ca = sqlx::PgConnection::connect(&a).await.unwrap();
    sqlx::query("CREATE TABLE only_in_a (x int)")
        .execute(&mut ca)
        .await
        .unwrap();
    let mut cb = sqlx::PgConnection::connect(&b).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'")
        .fetch_one(&mut cb)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // create_database replaces an existing database of the same name
    let name = "strongroom_replace_me";
    let url = pg.create_database(name).await.unwrap();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let url = pg.create_database(name).await.unwrap();
    let mut c = pg.connect_options(name).connect().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert!(url.ends_with("/strongroom_replace_me"));
}

/// A server of its own, stopped and removed on drop.
#[tokio::test]
async fn dropping_the_last_handle_stops_and_removes_the_cluster() {
    if std::env::var_os(URL_ENV).is_some() {
        // An external server is never stopped; check only that start() uses it.
        let pg = TestPostgres::start().unwrap();
        assert!(pg.dir().is_none() && pg.log_path().is_none());
        return;
    }
    let pg = TestPostgres::start().unwrap();
    let dir = pg.dir().unwrap().to_path_buf();
    assert!(dir.join("data/PG_VERSION").is_file());
    let url = pg.superuser_url();
    let port = pg.port();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
    drop(conn);
    drop(pg);
    assert!(!dir.exists(), "cluster directory left behind");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server still listening"
    );
}

/// A cluster whose owner process died is stopped and removed by the next
/// private cluster that starts.
#[tokio::test]
async fn clusters_of_dead_processes_are_swept() {
    if std::env::var_os(URL_ENV).is_some() {
        return;
    }
    let orphan = TestPostgres::start().unwrap();
    let dir = orphan.dir().unwrap().to_path_buf();
    let port = orphan.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    // Pretend the owner died: name a process that has exited.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(dir.join("owner.pid"), dead.to_string()).unwrap();

    let fresh = TestPostgres::start().unwrap();
    assert!(!dir.exists(), "stale cluster directory not removed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "stale server still listening"
    );
    // The live cluster is untouched.
    let mut conn = sqlx::PgConnection::connect(&fresh.superuser_url())
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
    // Clusters copied from the cached template still get their own password.
    let other = orphan.superuser_password();
    assert_ne!(
        other.expose_secret(),
        fresh.superuser_password().expose_secret()
    );
    let err = sqlx::PgConnection::connect(&fresh.url_for(
        fresh.superuser(),
        other.expose_secret(),
        "postgres",
    ))
    .await
    .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("28P01")
    );
    drop(orphan);
}

/// A TLS cluster: TLS on, `hostssl` only, a certificate that verifies
/// against the cluster's own CA for both 127.0.0.1 and localhost.
#[tokio::test]
async fn tls_cluster_accepts_verified_tls_only() {
    use sqlx::postgres::{PgConnectOptions, PgSslMode};

    let pg = TestPostgres::start_tls().unwrap();
    let ca = pg.tls_root_cert().unwrap().to_path_buf();
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // connect_options verify the certificate
    let mut conn = pg.connect_options("postgres").connect().await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(ssl);
    let rules: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT type FROM pg_hba_file_rules WHERE type <> 'local' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rules, vec!["hostssl".to_owned()]);
    for host in ["127.0.0.1", "localhost"] {
        let mut c = pg
            .connect_options("postgres")
            .host(host)
            .connect()
            .await
            .unwrap();
        sqlx::query("SELECT 1").execute(&mut c).await.unwrap();
    }
    // plaintext is refused
    let plain: PgConnectOptions = pg.connect_options("postgres").ssl_mode(PgSslMode::Disable);
    let err = plain.connect().await.unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("28000"), "{err}");
    // a database made by the harness is reachable over TLS too
    let url = pg.fresh_database("tlsdb").await.unwrap();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut c).await.unwrap();
    let debug = format!("{pg:?}");
    assert!(!debug.contains(pg.superuser_password().expose_secret()));
}
