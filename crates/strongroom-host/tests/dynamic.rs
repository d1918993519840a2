//! Dynamic PostgreSQL credentials from the stored role catalog, as the
//! bindings use them, against a real server (a private cluster).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use strongroom::clock::{Clock as _, ManualClock};
use strongroom::lease::LeaseConfig;
use strongroom_host::dynamic::{DynamicPg, configure};
use strongroom_host::storage::HostStorage;
use strongroom_testpg::TestPostgres;

async fn login(url: &str, user: &str, password: &str) -> Result<(), String> {
    let opts = PgConnectOptions::from_str(url)
        .unwrap()
        .username(user)
        .password(password);
    match opts.connect().await {
        Ok(c) => {
            c.close().await.unwrap();
            Ok(())
        }
        Err(sqlx::Error::Database(d)) => Err(d.code().unwrap_or_default().into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_issue_revoke_and_a_feed_that_renews_on_the_clock() {
    let pg = TestPostgres::shared().unwrap();
    let url = pg.fresh_database("hostdyn").await.unwrap();
    let db = PgConnectOptions::from_str(&url)
        .unwrap()
        .get_database()
        .unwrap()
        .to_owned();
    let storage = HostStorage::memory();
    // The server compares VALID UNTIL with its own clock: start at now.
    let clock = ManualClock::new(strongroom::clock::SystemClock.now());
    let door = common::door(&storage, &clock).await;

    // Nothing stored yet: a typed error that says what to do.
    let leases = Arc::new(
        door.lease_manager(Arc::new(clock.clone()), LeaseConfig::default())
            .unwrap(),
    );
    let err = DynamicPg::open(&door, door.handle(), leases.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, strongroom::Error::InvalidArgument(ref m) if m.contains("no role catalog")),
        "{err:?}"
    );

    door.secrets()
        .put("infra/pg/admin-url", url.as_bytes(), None)
        .await
        .unwrap();
    let catalog = format!(
        r#"
connection_secret = "infra/pg/admin-url"

[roles.readonly]
default_ttl_secs = 600
grants = [{{ privileges = ["Connect"], object = {{ Database = {{ name = "{db}" }} }} }}]
"#
    );
    assert_eq!(configure(&door, &catalog, None, "test").await.unwrap(), 1);
    // A stale revision is refused and writes nothing.
    assert!(configure(&door, &catalog, None, "test").await.is_err());
    assert!(
        configure(&door, "not = [toml", Some(1), "test")
            .await
            .is_err()
    );

    let dynamic = DynamicPg::open(&door, door.handle(), leases.clone())
        .await
        .unwrap();
    assert_eq!(dynamic.roles(), vec!["readonly".to_owned()]);
    let issued = dynamic.issue(None, "readonly", None).await.unwrap();
    assert!(!format!("{issued:?}").contains(issued.password.expose_secret()));
    assert_eq!(issued.lease.path(), dynamic.lease_path("readonly"));
    assert_eq!(
        issued.lease.expires_at(),
        clock.now() + Duration::from_secs(600)
    );
    login(&url, &issued.username, issued.password.expose_secret())
        .await
        .unwrap();
    leases.revoke(issued.lease.id()).await.unwrap();
    assert_eq!(
        login(&url, &issued.username, issued.password.expose_secret()).await,
        Err("28P01".to_owned())
    );
    assert!(matches!(
        dynamic.issue(None, "nosuchrole", None).await,
        Err(strongroom::Error::InvalidArgument(_))
    ));

    for bad in [f64::NAN, 0.0, 1.0, f64::INFINITY] {
        assert!(matches!(
            dynamic.feed("readonly", None, bad).await,
            Err(strongroom::Error::InvalidArgument(_))
        ));
    }
    // A feed for a host pool: a new role once half the TTL has passed.
    let feed = dynamic
        .feed("readonly", Some(Duration::from_secs(120)), 0.5)
        .await
        .unwrap();
    let first = feed.login().await.unwrap().unwrap();
    login(
        &url,
        &first.username,
        std::str::from_utf8(first.password.expose_secret()).unwrap(),
    )
    .await
    .unwrap();
    clock.advance(Duration::from_secs(61));
    let mut next = feed.login().await.unwrap().unwrap();
    for _ in 0..200 {
        if next.version != first.version {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        next = feed.login().await.unwrap().unwrap();
    }
    assert!(next.version > first.version, "the feed did not renew");
    assert_ne!(next.username, first.username);
    login(
        &url,
        &next.username,
        std::str::from_utf8(next.password.expose_secret()).unwrap(),
    )
    .await
    .unwrap();
}
