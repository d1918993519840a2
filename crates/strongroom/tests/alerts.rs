//! Alerts on unusual access, through the real audited API: a scripted day
//! of traffic on a memory store driven by a `ManualClock`, with one
//! injected anomaly per rule; secret values never reach alert text; a hung
//! alert sink does not hold up reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strongroom::alerts::{
    Alert, AlertConfig, AlertEngine, AlertError, AlertKind, AlertSink, BulkAccessRule,
    CallbackSink, ChannelSink, Delivery, HourRange, NewPathRule, OffHoursRule, ReadRateRule,
    RepeatedDenialsRule, Schedule, SensitiveReadRule, TracingAlertSink,
};
use strongroom::audit::{AuditLog, MemorySink};
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Handle, Options, SecretBytes, Strongroom};

/// In every secret value; must never appear in an alert.
const MARKER: &str = "MARKER-b7e4c1-secret-value-never-in-alerts";
/// Midnight UTC.
const DAY0: u64 = 1_800_057_600;

async fn store(clock: Arc<ManualClock>) -> Door {
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![42; 32])).unwrap();
    let options = Options {
        clock,
        ..Options::default()
    };
    Strongroom::init(storage, &protector, options)
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap()
}

fn principal(name: &str, rules: &[(&str, &[Capability])]) -> Principal {
    let rules = rules
        .iter()
        .map(|(p, caps)| Rule::allow(p, caps.iter().copied()).unwrap())
        .collect();
    Principal::new(name, [&Policy::new(name, rules)])
}

const READ: &[Capability] = &[Capability::Read];

fn day_config() -> AlertConfig {
    AlertConfig::default()
        .with_new_path(NewPathRule {
            learning_period_secs: 2 * 3600,
            ..NewPathRule::default()
        })
        .with_read_rate(ReadRateRule {
            window_secs: 600,
            factor: 5.0,
            min_count: 20,
            warmup_windows: 6,
            ..ReadRateRule::default()
        })
        .with_bulk_access(BulkAccessRule {
            max_distinct_paths: 20,
            window_secs: 300,
            ..BulkAccessRule::default()
        })
        .with_off_hours(OffHoursRule {
            schedules: vec![Schedule::new(["reporting-*"], [HourRange::new(8, 18)])],
            ..OffHoursRule::default()
        })
        .with_repeated_denials(RepeatedDenialsRule {
            threshold: 5,
            window_secs: 600,
            ..RepeatedDenialsRule::default()
        })
        .with_sensitive_read(SensitiveReadRule {
            patterns: vec!["prod/admin/*".into()],
            ..SensitiveReadRule::default()
        })
}

struct Day {
    clock: Arc<ManualClock>,
    root: Handle,
    payment: Handle,
    orders: Handle,
    reporting: Handle,
    ci: Handle,
    ops: Handle,
}

impl Day {
    async fn new(engine: &AlertEngine) -> (Self, Arc<MemorySink>) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(DAY0)));
        let sr = store(clock.clone()).await;
        let sink = Arc::new(MemorySink::new());
        let log = sr.open_audit_log(vec![sink.clone()], None).await.unwrap();
        let log: Arc<AuditLog> = Arc::new(engine.attach(log));
        let h = |p: Principal| sr.as_principal(p, log.clone());
        let day = Self {
            clock,
            root: h(principal("root", &[("*", &Capability::ALL)])),
            payment: h(principal("payment-svc", &[("prod/payment/*", READ)])),
            orders: h(principal(
                "orders-svc",
                &[("prod/orders/*", READ), ("prod/payment/*", READ)],
            )),
            reporting: h(principal("reporting-svc", &[("prod/reporting/*", READ)])),
            ci: h(principal(
                "ci-deployer",
                &[("prod/bulk/*", READ), ("prod/bulk", &[Capability::List])],
            )),
            ops: h(principal("ops-admin", &[("prod/admin/*", READ)])),
        };
        let mut paths = vec![
            "prod/payment/db".to_owned(),
            "prod/payment/api-key".to_owned(),
            "prod/orders/db".to_owned(),
            "prod/reporting/warehouse".to_owned(),
            "prod/admin/root".to_owned(),
        ];
        paths.extend((0..30).map(|i| format!("prod/bulk/item-{i}")));
        for p in &paths {
            day.root
                .put(p, format!("{MARKER}:{p}").as_bytes(), None)
                .await
                .unwrap();
        }
        (day, sink)
    }

    fn at_minute(&self, minute: u64) {
        self.clock.set(Timestamp::from_secs(DAY0 + minute * 60));
    }

    /// Each service's usual reads for this minute.
    async fn ordinary(&self, minute: u64) {
        if minute.is_multiple_of(5) {
            self.payment.read("prod/payment/db").await.unwrap();
            self.payment.read("prod/payment/api-key").await.unwrap();
        }
        if minute.is_multiple_of(2) {
            self.orders.read("prod/orders/db").await.unwrap();
        }
        if (8 * 60..18 * 60).contains(&minute) && minute.is_multiple_of(10) {
            self.reporting
                .read("prod/reporting/warehouse")
                .await
                .unwrap();
        }
    }
}

/// What an injected anomaly must raise: (minute, kind, principal, path).
type Expected = (u64, AlertKind, &'static str, Option<&'static str>);

#[tokio::test]
async fn a_day_of_traffic_raises_exactly_the_injected_anomalies() {
    let (channel, mut rx) = ChannelSink::new(4096);
    let called = Arc::new(AtomicUsize::new(0));
    let counter = called.clone();
    let callback = CallbackSink::new("count", move |_: &Alert| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let engine =
        AlertEngine::start(day_config(), vec![Arc::new(channel), Arc::new(callback)]).unwrap();
    let (day, audit) = Day::new(&engine).await;

    let mut expected: Vec<Expected> = Vec::new();
    for minute in 0..24 * 60 {
        day.at_minute(minute);
        match minute {
            // A service reads a path it never read before.
            720 => {
                day.orders.read("prod/payment/db").await.unwrap();
                expected.push((
                    minute,
                    AlertKind::NewPath,
                    "orders-svc",
                    Some("prod/payment/db"),
                ));
            }
            // A known path, at fifteen times the usual rate.
            843 => {
                for _ in 0..60 {
                    day.payment.read("prod/payment/db").await.unwrap();
                }
                expected.push((
                    minute,
                    AlertKind::ReadRate,
                    "payment-svc",
                    Some("prod/payment/db"),
                ));
            }
            // A new principal lists and reads everything under a prefix.
            960 => {
                day.ci.list("prod/bulk").await.unwrap();
                for i in 0..25 {
                    day.ci.read(&format!("prod/bulk/item-{i}")).await.unwrap();
                }
                expected.push((minute, AlertKind::BulkAccess, "ci-deployer", None));
            }
            // A service probes a path it may not read.
            1110 => {
                for _ in 0..5 {
                    assert!(day.orders.read("prod/admin/root").await.is_err());
                }
                expected.push((
                    minute,
                    AlertKind::RepeatedDenials,
                    "orders-svc",
                    Some("prod/admin/root"),
                ));
            }
            // A read of a sensitive secret.
            1200 => {
                day.ops.read("prod/admin/root").await.unwrap();
                expected.push((
                    minute,
                    AlertKind::SensitiveRead,
                    "ops-admin",
                    Some("prod/admin/root"),
                ));
            }
            // A rotation (no alert), then a read of the superseded version.
            1260 => {
                day.root
                    .put("prod/orders/db", format!("{MARKER}:v2").as_bytes(), None)
                    .await
                    .unwrap();
            }
            1290 => {
                let old = day.orders.read_version("prod/orders/db", 1).await.unwrap();
                assert_eq!(old.version.version, 1);
                expected.push((
                    minute,
                    AlertKind::StaleVersion,
                    "orders-svc",
                    Some("prod/orders/db"),
                ));
            }
            // The reporting job at 23:00.
            1380 => {
                day.reporting
                    .read("prod/reporting/warehouse")
                    .await
                    .unwrap();
                expected.push((
                    minute,
                    AlertKind::OffHours,
                    "reporting-svc",
                    Some("prod/reporting/warehouse"),
                ));
            }
            _ => {}
        }
        day.ordinary(minute).await;
    }

    tokio::time::timeout(Duration::from_secs(30), engine.settled())
        .await
        .expect("alerts delivered");
    let mut alerts = Vec::new();
    while let Ok(a) = rx.try_recv() {
        alerts.push(a);
    }
    type Owned = (u64, AlertKind, String, Option<String>);
    let got: Vec<Owned> = alerts
        .iter()
        .map(|a| {
            (
                (a.at.as_secs() - DAY0) / 60,
                a.kind,
                a.principal.clone(),
                a.path.clone(),
            )
        })
        .collect();
    let expected: Vec<Owned> = expected
        .iter()
        .map(|(m, k, p, path)| (*m, *k, p.to_string(), path.map(str::to_owned)))
        .collect();
    assert_eq!(got, expected, "{alerts:#?}");

    let stats = engine.stats();
    assert_eq!(stats.raised, 7);
    assert_eq!(stats.delivered, 7);
    assert_eq!(stats.dropped, 0);
    assert_eq!(
        called.load(Ordering::Relaxed),
        7,
        "every sink got every alert"
    );
    // The alert names the record that raised it.
    let records = audit.records().unwrap();
    assert!(records.len() > 1400, "{} records", records.len());
    for a in &alerts {
        let r = records.iter().find(|r| r.seq == a.seq).unwrap();
        assert_eq!(r.event.request_id, a.request_id);
        assert_eq!(r.event.principal, a.principal);
    }
    // Nothing of a value in any form of any alert.
    for a in &alerts {
        for text in [
            a.summary.clone(),
            format!("{a:?}"),
            a.to_string(),
            serde_json::to_string(a).unwrap(),
        ] {
            assert!(!text.contains(MARKER), "{text}");
            assert!(!text.contains("hmac-sha256"), "{text}");
        }
    }
    assert!(!format!("{engine:?}").contains(MARKER));
    // Six principals besides nobody; every path set within its cap.
    engine.with_evaluator(|ev| {
        assert_eq!(ev.principals_tracked(), 6);
        assert!(ev.max_paths_tracked() <= ev.config().limits.max_paths_per_principal);
    });
}

/// Never returns.
#[derive(Debug)]
struct HungSink;

#[async_trait::async_trait]
impl AlertSink for HungSink {
    fn name(&self) -> &str {
        "hung"
    }
    async fn deliver(&self, _alert: &Alert) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test]
async fn a_hung_alert_sink_does_not_hold_up_reads() {
    let config = AlertConfig::default()
        .with_sensitive_read(SensitiveReadRule {
            patterns: vec!["prod/*".into()],
            ..SensitiveReadRule::default()
        })
        .with_delivery(Delivery {
            queue_capacity: 2,
            sink_timeout_ms: 3_600_000,
        });
    let engine = AlertEngine::start(config, vec![Arc::new(HungSink)]).unwrap();
    let (day, audit) = Day::new(&engine).await;
    let before = audit.records().unwrap().len();
    for _ in 0..50 {
        let read = tokio::time::timeout(Duration::from_secs(10), day.ops.read("prod/admin/root"));
        let v = read.await.expect("the read completes").unwrap();
        assert!(v.value.expose_secret().starts_with(MARKER.as_bytes()));
    }
    assert_eq!(
        audit.records().unwrap().len(),
        before + 50,
        "every read audited"
    );
    let stats = engine.stats();
    assert_eq!(stats.raised, 50);
    assert_eq!(stats.delivered, 0, "the sink never returned");
    // At most one alert in the sink and two in the queue.
    assert!(stats.dropped >= 47, "{stats:?}");
}

#[test]
fn the_engine_needs_a_runtime() {
    assert!(matches!(
        AlertEngine::start(AlertConfig::default(), vec![]),
        Err(AlertError::NoRuntime)
    ));
}

/// Refuses every record.
#[derive(Debug)]
struct FailingSink;

#[async_trait::async_trait]
impl strongroom::audit::AuditSink for FailingSink {
    fn name(&self) -> &str {
        "failing"
    }
    async fn write(
        &self,
        _r: &strongroom::audit::AuditRecord,
        _l: &str,
    ) -> Result<(), strongroom::audit::AuditError> {
        Err(strongroom::audit::AuditError::Sink {
            sink: "failing".into(),
            message: "disk full".into(),
        })
    }
}

#[tokio::test]
async fn the_engine_is_no_audit_sink_and_sees_only_accepted_records() {
    use strongroom::audit::{AuditError as AE, AuditEvent, Operation};
    let config = AlertConfig::default().with_sensitive_read(SensitiveReadRule {
        patterns: vec!["*".into()],
        ..SensitiveReadRule::default()
    });
    let engine = AlertEngine::start(config, vec![Arc::new(TracingAlertSink)]).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(DAY0)));
    let read = AuditEvent::new("svc", Operation::Read, "r").with_path("prod/a");
    // With only a failing sink the append still fails: the engine does not
    // count as having stored the record, and raises nothing for it.
    let failing = engine.attach(
        AuditLog::new(
            SecretBytes::new(vec![7; 32]),
            vec![Arc::new(FailingSink)],
            clock.clone(),
        )
        .unwrap(),
    );
    assert!(matches!(
        failing.append(read.clone()).await,
        Err(AE::NoSinkAccepted { .. })
    ));
    engine.settled().await;
    assert_eq!(engine.stats().raised, 0);
    // Accepted by one of two sinks: observed once.
    let half = engine.attach(
        AuditLog::new(
            SecretBytes::new(vec![7; 32]),
            vec![Arc::new(FailingSink), Arc::new(MemorySink::new())],
            clock,
        )
        .unwrap(),
    );
    half.append(read).await.unwrap();
    engine.settled().await;
    assert_eq!(engine.stats().raised, 1);
    assert_eq!(engine.stats().delivered, 1);
}
