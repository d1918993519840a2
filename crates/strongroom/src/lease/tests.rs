#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn lease_id_text_round_trip() {
    let id = LeaseId::generate().unwrap();
    let text = id.to_string();
    assert!(text.starts_with("lease_"));
    assert_eq!(text.len(), 6 + 32);
    assert_eq!(text.parse::<LeaseId>().unwrap(), id);
    assert_ne!(LeaseId::generate().unwrap(), id);
    for bad in [
        "",
        "lease_",
        "lease_00",
        "LEASE_000000000000000000000000000000ff",
        "lease_000000000000000000000000000000FF",
        "lease_+00000000000000000000000000000ff",
        "lease_000000000000000000000000000000ff0",
        "token_000000000000000000000000000000ff",
    ] {
        let err = bad.parse::<LeaseId>().unwrap_err();
        assert!(
            matches!(err, Error::Lease(LeaseError::InvalidId { .. })),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn legacy_index_keys_parse() {
    let id = LeaseId::from_u128(0xabc);
    assert_eq!(
        parse_legacy_exp_key("lease-exp/0000000000000009/lease_00000000000000000000000000000abc"),
        Some((Timestamp::from_millis(9), id))
    );
    assert_eq!(parse_legacy_exp_key("lease-exp/zz/lease_0"), None);
    assert_eq!(
        parse_legacy_exp_key("lease-exp/0000000000000009-lease_00000000000000000000000000000abc"),
        None
    );
}

fn sample_lease() -> Lease {
    Lease {
        id: LeaseId::from_u128(7),
        path: "database/creds/readonly".into(),
        engine: "postgres".into(),
        issued_at: Timestamp::from_secs(100),
        ttl: Duration::from_secs(60),
        max_ttl: Duration::from_secs(600),
        expires_at: Timestamp::from_secs(160),
        expiring_soon_at: Timestamp::from_secs(145),
        warned: true,
        renewable: true,
        state: LeaseState::Revoking {
            attempts: 2,
            next_try: Timestamp::from_secs(170),
        },
        revocation_data: b"role-x".to_vec(),
        claim: None,
    }
}

#[test]
fn record_round_trip_and_version_check() {
    let mut lease = sample_lease();
    let bytes = lease.to_record_bytes().unwrap();
    assert_eq!(bytes[0], record::RECORD_VERSION);
    assert_eq!(Lease::from_record_bytes(&bytes).unwrap(), lease);
    lease.claim = Some(LeaseClaim {
        owner: "node-1".into(),
        until: Timestamp::from_secs(190),
        revoked: true,
    });
    let claimed = lease.to_record_bytes().unwrap();
    assert_eq!(Lease::from_record_bytes(&claimed).unwrap(), lease);
    let mut wrong = bytes.clone();
    wrong[0] = 9;
    assert!(matches!(
        Lease::from_record_bytes(&wrong),
        Err(Error::CorruptRecord { .. })
    ));
    for cut in [1, 3] {
        assert!(matches!(
            Lease::from_record_bytes(&bytes[..bytes.len() - cut]),
            Err(Error::CorruptRecord { .. })
        ));
    }
    let mut trailing = claimed.clone();
    trailing.push(0);
    assert!(matches!(
        Lease::from_record_bytes(&trailing),
        Err(Error::CorruptRecord { .. })
    ));
    let dbg = format!("{lease:?}");
    assert!(
        !dbg.contains("role-x") && dbg.contains("[6 bytes]"),
        "{dbg}"
    );
}

/// The record vectors documented in docs/FORMAT.md ("Lease records"): a
/// version 1 record (written before claims) still decodes, with no claim,
/// and version 2 records encode to exactly these bytes.
#[test]
fn record_vectors() {
    let lease = sample_lease();
    let v2 = hex::encode(lease.to_record_bytes().unwrap());
    assert_eq!(v2, V2_UNCLAIMED);
    let mut claimed = lease.clone();
    claimed.claim = Some(LeaseClaim {
        owner: "node-1".into(),
        until: Timestamp::from_secs(190),
        revoked: false,
    });
    assert_eq!(hex::encode(claimed.to_record_bytes().unwrap()), V2_CLAIMED);
    // Version 1 is version 2 without the claim.
    let mut v1 = hex::decode(V2_UNCLAIMED).unwrap();
    v1[0] = record::RECORD_V1;
    v1.pop();
    assert_eq!(hex::encode(&v1), V1);
    assert_eq!(
        Lease::from_record_bytes(&hex::decode(V1).unwrap()).unwrap(),
        lease
    );
}

/// Written by the version 1 encoder (before claims), byte for byte.
const V1: &str = "01071764617461626173652f63726564732f726561646f6e6c7908706f737467726573a08d06e0d403c0cf2480e209e8ec080101010290b00a06726f6c652d78";
const V2_UNCLAIMED: &str = "02071764617461626173652f63726564732f726561646f6e6c7908706f737467726573a08d06e0d403c0cf2480e209e8ec080101010290b00a06726f6c652d7800";
const V2_CLAIMED: &str = "02071764617461626173652f63726564732f726561646f6e6c7908706f737467726573a08d06e0d403c0cf2480e209e8ec080101010290b00a06726f6c652d7801066e6f64652d31b0cc0b00";

#[test]
fn member_ids_are_checked() {
    for ok in ["node-1", "host.example:8080", "A_b-9"] {
        claim::validate_member_id(ok).unwrap();
    }
    for bad in ["", "with space", "slash/id", &"x".repeat(65)] {
        assert!(claim::validate_member_id(bad).is_err(), "{bad:?}");
    }
    let a = claim::random_member_id().unwrap();
    assert!(a.starts_with("member-") && a.len() == 23, "{a}");
    assert_ne!(a, claim::random_member_id().unwrap());
}

#[test]
fn paths_are_validated() {
    for ok in ["database/creds/readonly", "a", "pki/issue/web-1.example_x"] {
        validate_path(ok).unwrap();
    }
    let cases: [(&str, PathError); 6] = [
        ("", PathError::Empty),
        ("a//b", PathError::EmptySegment),
        ("/a", PathError::EmptySegment),
        ("a/../b", PathError::DotSegment),
        ("a/B", PathError::UpperCase),
        ("a/b c", PathError::BadCharacter(' ')),
    ];
    for (path, want) in cases {
        match validate_path(path) {
            Err(Error::InvalidPath { reason, .. }) => assert_eq!(reason, want, "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(under_prefix("database/creds/ro", "database/creds"));
    assert!(under_prefix("database/creds", "database/creds"));
    assert!(!under_prefix("database/credsx", "database/creds"));
    assert!(under_prefix("anything", ""));
}

/// A store over fresh memory storage, under a fixed test key.
async fn test_store() -> Strongroom {
    let protector =
        crate::protector::SoftwareProtector::from_key(crate::SecretBytes::new(vec![7; 32]))
            .unwrap();
    Strongroom::init(
        Arc::new(crate::storage::MemoryStorage::new()),
        &protector,
        crate::Options::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn backoff_doubles_up_to_the_max_and_jitter_only_shortens() {
    let clock = Arc::new(crate::clock::ManualClock::new(Timestamp::from_secs(1)));
    let store = test_store().await;
    let mut config = LeaseConfig::default();
    config.retry.base = Duration::from_secs(2);
    config.retry.max = Duration::from_secs(20);
    config.retry.jitter = 0.0;
    let m = LeaseManager::new(&store, clock.clone(), config.clone()).unwrap();
    let got: Vec<u64> = (1..=6).map(|a| m.backoff(a).as_secs()).collect();
    assert_eq!(got, [2, 4, 8, 16, 20, 20]);
    assert_eq!(m.backoff(u32::MAX), Duration::from_secs(20));
    config.retry.jitter = 0.5;
    let m = LeaseManager::new(&store, clock, config).unwrap();
    let mut distinct = std::collections::HashSet::new();
    for _ in 0..50 {
        let d = m.backoff(3);
        assert!(
            d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
            "{d:?}"
        );
        distinct.insert(d);
    }
    assert!(distinct.len() > 1, "jitter varies the delay");
}

#[tokio::test]
async fn bad_config_is_refused() {
    let clock = Arc::new(crate::clock::ManualClock::new(Timestamp::from_secs(1)));
    let store = test_store().await;
    let c = LeaseConfig {
        expiring_soon_fraction: Some(1.5),
        ..LeaseConfig::default()
    };
    assert!(LeaseManager::new(&store, clock.clone(), c).is_err());
    let mut c = LeaseConfig::default();
    c.retry.max_attempts = 0;
    assert!(LeaseManager::new(&store, clock.clone(), c).is_err());
    let c = LeaseConfig {
        prefix_quotas: vec![PrefixQuota::new("Bad//prefix", 3)],
        ..LeaseConfig::default()
    };
    assert!(LeaseManager::new(&store, clock, c).is_err());
}
