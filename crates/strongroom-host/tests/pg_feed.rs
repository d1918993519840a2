//! The credential feed host pools use, against a real PostgreSQL server
//! (a private cluster from strongroom-testpg).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::rotation::RotationOptions;
use strongroom_host::pg::{AfterError, CredentialFeed, PgLogin, PgRotation, PgRotationMode};
use strongroom_host::storage::HostStorage;
use strongroom_testpg::TestPostgres;

/// Logs in as `login` on `url`'s server and database; the server's SQLSTATE
/// and message on failure.
async fn try_login(url: &str, login: &PgLogin) -> Result<(), (String, String)> {
    let opts = PgConnectOptions::from_str(url)
        .unwrap()
        .username(&login.username)
        .password(std::str::from_utf8(login.password.expose_secret()).unwrap());
    match opts.connect().await {
        Ok(c) => {
            c.close().await.unwrap();
            Ok(())
        }
        Err(sqlx::Error::Database(d)) => Err((
            d.code().unwrap_or_default().into_owned(),
            d.message().to_owned(),
        )),
        Err(e) => panic!("not a server refusal: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_password_moves_every_waiter_to_the_current_one_with_one_refresh() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("hostfeed").await.unwrap();
    // The store is on the same server, as a fleet would run it.
    let storage = HostStorage::open(&url).await.unwrap();
    assert_eq!(storage.backend(), "postgres");
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let door = common::door(&storage, &clock).await;
    let options = RotationOptions {
        grace_period: Duration::from_secs(60),
        ..RotationOptions::default()
    };
    let rotation = PgRotation::open(
        &door,
        "db/app",
        &url,
        "hostfeed_app",
        PgRotationMode::Alternating,
        options,
    )
    .await
    .unwrap();
    let feed = Arc::new(CredentialFeed::rotated(door.clone(), "db/app"));
    assert!(feed.login().await.unwrap().is_none(), "nothing rotated yet");

    rotation.engine().rotate_now().await.unwrap();
    let first = feed.login().await.unwrap().unwrap();
    try_login(&url, &first).await.unwrap();

    // Rotate, then let the grace period pass so the first version is revoked.
    rotation.engine().rotate_now().await.unwrap();
    clock.advance(Duration::from_secs(61));
    assert!(rotation.engine().revoke_due().await.unwrap());
    let (code, message) = try_login(&url, &first).await.unwrap_err();
    assert_eq!(code, "28P01");

    // Sixteen connections report the same refusal at once: one refresh.
    let mut waiters = Vec::new();
    for _ in 0..16 {
        let (feed, code, message) = (feed.clone(), code.clone(), message.clone());
        let v = first.version;
        waiters.push(tokio::spawn(async move {
            feed.after_error(v, &code, &message).await.unwrap()
        }));
    }
    for w in waiters {
        match w.await.unwrap() {
            AfterError::Retry(next) => {
                assert!(next.version > first.version);
                try_login(&url, &next).await.unwrap();
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
    assert_eq!(feed.refreshes(), 1);

    // libpq's text without a SQLSTATE is a refusal too (already recorded
    // for this version: no new refresh).
    assert!(matches!(
        feed.after_error(
            first.version,
            "",
            "FATAL:  password authentication failed for user \"x\""
        )
        .await
        .unwrap(),
        AfterError::Retry(_)
    ));
    assert_eq!(feed.refreshes(), 1);
    // Not a refused login: the feed does nothing.
    assert!(matches!(
        feed.after_error(first.version, "42P01", "relation does not exist")
            .await
            .unwrap(),
        AfterError::NotACredentialError
    ));
    let current = feed.login().await.unwrap().unwrap();
    assert!(current.version > first.version);
    assert!(
        !format!("{current:?}")
            .contains(std::str::from_utf8(current.password.expose_secret()).unwrap())
    );
    rotation.close().await;
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_user_window_falls_over_to_the_pending_version() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("hostfeed1").await.unwrap();
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("CREATE ROLE hostfeed_single LOGIN")
        .execute(&admin)
        .await
        .unwrap();
    let storage = HostStorage::memory();
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let door = common::door(&storage, &clock).await;
    let rotation = PgRotation::open(
        &door,
        "db/single",
        &url,
        "hostfeed_single",
        PgRotationMode::SingleUser,
        RotationOptions::default(),
    )
    .await
    .unwrap();
    let feed = CredentialFeed::rotated(door.clone(), "db/single");
    rotation.engine().rotate_now().await.unwrap();
    let old = feed.login().await.unwrap().unwrap();
    try_login(&url, &old).await.unwrap();
    // Another rotation changes the password; a client still holding the old
    // one is refused and the feed hands it the new current version.
    rotation.engine().rotate_now().await.unwrap();
    let (code, message) = try_login(&url, &old).await.unwrap_err();
    match feed
        .after_error(old.version, &code, &message)
        .await
        .unwrap()
    {
        AfterError::Retry(next) => try_login(&url, &next).await.unwrap(),
        other => panic!("expected a retry, got {other:?}"),
    }
    // When every stored version is refused, the feed says so.
    let now = feed.login().await.unwrap().unwrap();
    sqlx::query("ALTER ROLE hostfeed_single PASSWORD 'changed-behind-our-back-1'")
        .execute(&admin)
        .await
        .unwrap();
    let (code, message) = try_login(&url, &now).await.unwrap_err();
    let mut outcome = feed
        .after_error(now.version, &code, &message)
        .await
        .unwrap();
    while let AfterError::Retry(next) = outcome {
        let (code, message) = try_login(&url, &next).await.unwrap_err();
        outcome = feed
            .after_error(next.version, &code, &message)
            .await
            .unwrap();
    }
    assert!(matches!(outcome, AfterError::NoOtherCredential));
    rotation.close().await;
}

#[tokio::test]
async fn a_refused_admin_login_is_a_typed_error_without_the_password() {
    let pg = TestPostgres::shared().unwrap();
    let bad = pg.url_for("postgres", "wrong-password-hunter2", "postgres");
    let storage = HostStorage::memory();
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let door = common::door(&storage, &clock).await;
    let err = PgRotation::open(
        &door,
        "db/x",
        &bad,
        "hostfeed_x",
        PgRotationMode::Alternating,
        RotationOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            strongroom::Error::Storage {
                kind: strongroom::StorageErrorKind::Rejected,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    let err = HostStorage::open(&bad).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}
