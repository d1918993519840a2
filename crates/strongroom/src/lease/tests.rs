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

#[test]
fn record_round_trip_and_version_check() {
    let lease = Lease {
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
    };
    let bytes = lease.to_record_bytes().unwrap();
    assert_eq!(bytes[0], RECORD_VERSION);
    assert_eq!(Lease::from_record_bytes(&bytes).unwrap(), lease);
    let mut wrong = bytes.clone();
    wrong[0] = 9;
    assert!(matches!(
        Lease::from_record_bytes(&wrong),
        Err(Error::CorruptRecord { .. })
    ));
    assert!(matches!(
        Lease::from_record_bytes(&bytes[..bytes.len() - 3]),
        Err(Error::CorruptRecord { .. })
    ));
    let dbg = format!("{lease:?}");
    assert!(
        !dbg.contains("role-x") && dbg.contains("[6 bytes]"),
        "{dbg}"
    );
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

#[test]
fn backoff_doubles_up_to_the_max_and_jitter_only_shortens() {
    let clock = Arc::new(crate::clock::ManualClock::new(Timestamp::from_secs(1)));
    let storage = Arc::new(crate::storage::MemoryStorage::new());
    let mut config = LeaseConfig::default();
    config.retry.base = Duration::from_secs(2);
    config.retry.max = Duration::from_secs(20);
    config.retry.jitter = 0.0;
    let m = LeaseManager::new(storage.clone(), clock.clone(), config.clone()).unwrap();
    let got: Vec<u64> = (1..=6).map(|a| m.backoff(a).as_secs()).collect();
    assert_eq!(got, [2, 4, 8, 16, 20, 20]);
    assert_eq!(m.backoff(u32::MAX), Duration::from_secs(20));
    config.retry.jitter = 0.5;
    let m = LeaseManager::new(storage, clock, config).unwrap();
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

#[test]
fn bad_config_is_refused() {
    let clock = Arc::new(crate::clock::ManualClock::new(Timestamp::from_secs(1)));
    let storage: DynStorage = Arc::new(crate::storage::MemoryStorage::new());
    let c = LeaseConfig {
        expiring_soon_fraction: Some(1.5),
        ..LeaseConfig::default()
    };
    assert!(LeaseManager::new(storage.clone(), clock.clone(), c).is_err());
    let mut c = LeaseConfig::default();
    c.retry.max_attempts = 0;
    assert!(LeaseManager::new(storage.clone(), clock.clone(), c).is_err());
    let c = LeaseConfig {
        prefix_quotas: vec![PrefixQuota::new("Bad//prefix", 3)],
        ..LeaseConfig::default()
    };
    assert!(LeaseManager::new(storage, clock, c).is_err());
}
