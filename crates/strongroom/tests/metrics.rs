//! The metrics recorded through the facade: each operation counted once by
//! its outcome (never its intent), with a duration; keyring reservations;
//! rotation steps; lease gauges; and no path or principal in any label.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use strongroom::audit::MemorySink;
use strongroom::lease::LeaseConfig;
use strongroom::policy::{Policy, Principal};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};

type Entry = (
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
);

fn labels(k: &CompositeKey) -> Vec<(String, String)> {
    k.key()
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect()
}

fn find<'a>(
    snap: &'a [Entry],
    kind: MetricKind,
    name: &str,
    want: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snap.iter()
        .find(|(k, _, _, _)| {
            let l = labels(k);
            k.kind() == kind
                && k.key().name() == name
                && want
                    .iter()
                    .all(|(wk, wv)| l.iter().any(|(k, v)| k == wk && v == wv))
        })
        .map(|(_, _, _, v)| v)
}

fn run(snapshotter: &Snapshotter, recorder: &DebuggingRecorder) -> Vec<Entry> {
    metrics::with_local_recorder(recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let key = SoftwareProtector::from_key(SecretBytes::new(vec![3; 32])).unwrap();
                let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &key, Options::default())
                    .await
                    .unwrap();
                let audit = Arc::new(
                    sr.open_audit_log(vec![Arc::new(MemorySink::new())], None)
                        .await
                        .unwrap(),
                );
                let policy = Policy::from_toml_str(
                    r#"
                    name = "app"
                    [[path]]
                    pattern = "app/*"
                    capabilities = ["read", "create", "update"]
                    "#,
                )
                .unwrap();
                let app =
                    sr.as_principal(Principal::new("svc-principal", [&policy]), audit.clone());
                app.put("app/secret-path-name", b"v", None).await.unwrap();
                app.read("app/secret-path-name").await.unwrap();
                app.read("app/secret-path-name").await.unwrap();
                assert!(app.read("other/denied-path").await.is_err());
                assert!(app.read("app/missing").await.is_err());
                let door = sr.dangerous("metrics-test", &audit).await.unwrap();
                let manager = door
                    .lease_manager(sr.clock().clone(), LeaseConfig::default())
                    .unwrap();
                manager.record_metrics();
            })
    });
    snapshotter.snapshot().into_vec()
}

#[test]
fn operations_are_counted_once_by_outcome_with_durations() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let snap = run(&snapshotter, &recorder);

    let count = |op: &str, outcome: &str| match find(
        &snap,
        MetricKind::Counter,
        strongroom::metrics::OPERATIONS,
        &[("operation", op), ("outcome", outcome)],
    ) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{other:?}"),
    };
    // the write's intent record is not counted, its outcome is: once
    assert_eq!(count("write", "allowed"), 1);
    assert_eq!(count("read", "allowed"), 2);
    assert_eq!(count("read", "denied"), 1);
    assert_eq!(count("read", "not_found"), 1);
    match find(
        &snap,
        MetricKind::Histogram,
        strongroom::metrics::OPERATION_SECONDS,
        &[("operation", "read"), ("outcome", "allowed")],
    ) {
        Some(DebugValue::Histogram(v)) => {
            assert_eq!(v.len(), 2);
            assert!(v.iter().all(|d| d.into_inner() >= 0.0));
        }
        other => panic!("{other:?}"),
    }
    // keyring reservations, against the rotation limit
    assert!(matches!(
        find(&snap, MetricKind::Gauge, strongroom::metrics::KEYRING_ENCRYPTIONS, &[("version", "1")]),
        Some(DebugValue::Gauge(g)) if g.into_inner() >= 1.0
    ));
    assert!(matches!(
        find(&snap, MetricKind::Gauge, strongroom::metrics::KEYRING_ROTATION_LIMIT, &[]),
        Some(DebugValue::Gauge(g)) if g.into_inner() > 1e9
    ));
    assert!(
        find(
            &snap,
            MetricKind::Gauge,
            strongroom::metrics::LEASES,
            &[("state", "live")]
        )
        .is_some()
    );

    // no path or principal in any label
    for (k, _, _, _) in &snap {
        for (_, v) in labels(k) {
            assert!(
                !v.contains("secret-path-name") && !v.contains("denied-path"),
                "{v}"
            );
            assert!(!v.contains("svc-principal"), "{v}");
        }
    }
}
