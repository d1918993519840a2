//! Unit tests of the rules on hand-made records (the store-driven day of
//! traffic is in `tests/alerts.rs`).

use std::time::Duration;

use super::*;
use crate::audit::{AuditEvent, AuditRecord, Operation, Outcome, RECORD_VERSION};
use crate::clock::Timestamp;

/// Midnight UTC.
const DAY0: u64 = 1_800_057_600;

struct Script {
    ev: Evaluator,
    seq: u64,
    now: Timestamp,
}

impl Script {
    fn new(config: AlertConfig) -> Self {
        Self {
            ev: Evaluator::new(config).unwrap(),
            seq: 0,
            now: Timestamp::from_secs(DAY0),
        }
    }

    fn at(&mut self, secs: u64) -> &mut Self {
        self.now = Timestamp::from_secs(DAY0 + secs);
        self
    }

    fn advance(&mut self, secs: u64) -> &mut Self {
        self.now = self.now + Duration::from_secs(secs);
        self
    }

    fn push(&mut self, event: AuditEvent) -> Vec<Alert> {
        self.seq += 1;
        let record = AuditRecord {
            v: RECORD_VERSION,
            seq: self.seq,
            time: self.now,
            event,
            prev: String::new(),
            mac: String::new(),
        };
        self.ev.evaluate(&record)
    }

    fn read(&mut self, who: &str, path: &str) -> Vec<Alert> {
        self.push(AuditEvent::new(who, Operation::Read, "r").with_path(path))
    }

    fn kinds(&mut self, who: &str, path: &str) -> Vec<AlertKind> {
        self.read(who, path).iter().map(|a| a.kind).collect()
    }
}

fn only(rule: &str) -> AlertConfig {
    let mut c = AlertConfig::default();
    c.new_path.enabled = rule == "new_path";
    c.read_rate.enabled = rule == "read_rate";
    c.bulk_access.enabled = rule == "bulk_access";
    c.off_hours.enabled = rule == "off_hours";
    c.repeated_denials.enabled = rule == "repeated_denials";
    c.sensitive_read.enabled = rule == "sensitive_read";
    c.stale_version.enabled = rule == "stale_version";
    c
}

#[test]
fn new_paths_alert_only_after_the_learning_period() {
    let mut cfg = only("new_path");
    cfg.new_path.learning_period_secs = 3600;
    let mut s = Script::new(cfg);
    assert!(s.read("svc", "a/b").is_empty());
    assert!(
        s.advance(1800).read("svc", "a/c").is_empty(),
        "still learning"
    );
    s.advance(1800);
    assert!(s.read("svc", "a/b").is_empty());
    assert!(s.read("svc", "a/c").is_empty());
    let alerts = s.read("svc", "a/d");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::NewPath);
    assert_eq!(alerts[0].path.as_deref(), Some("a/d"));
    assert!(s.read("svc", "a/d").is_empty(), "learned once reported");
    // Denied or listed paths are not reads.
    let denied = AuditEvent::new("svc", Operation::Read, "r")
        .with_path("a/e")
        .with_outcome(Outcome::Denied);
    assert!(s.push(denied).is_empty());
    // Another principal has its own learning period.
    assert!(s.read("other", "a/d").is_empty());
}

#[test]
fn the_read_rate_rule_needs_history_a_minimum_and_a_factor() {
    let mut cfg = only("read_rate");
    cfg.read_rate = ReadRateRule {
        window_secs: 60,
        factor: 5.0,
        min_count: 20,
        warmup_windows: 3,
        ..ReadRateRule::default()
    };
    let mut s = Script::new(cfg);
    // A burst before any history: no alert.
    for _ in 0..50 {
        assert!(s.read("svc", "a/b").is_empty());
    }
    // Ten quiet windows of 3 reads each bring the average down.
    for _ in 0..10 {
        s.advance(60);
        for _ in 0..3 {
            assert!(s.read("svc", "a/b").is_empty());
        }
    }
    s.advance(60);
    let mut fired = Vec::new();
    for _ in 0..40 {
        fired.extend(s.kinds("svc", "a/b"));
    }
    assert_eq!(fired, vec![AlertKind::ReadRate], "once per window");
    // A low-traffic principal does not flap: 1 read a window, then 10.
    for _ in 0..10 {
        s.advance(60);
        s.read("quiet", "x/y");
    }
    s.advance(60);
    for _ in 0..10 {
        assert!(s.read("quiet", "x/y").is_empty(), "below min_count");
    }
}

#[test]
fn bulk_access_counts_distinct_paths_in_a_sliding_window() {
    let mut cfg = only("bulk_access");
    cfg.bulk_access.max_distinct_paths = 5;
    cfg.bulk_access.window_secs = 60;
    let mut s = Script::new(cfg);
    // The same path many times is not bulk.
    for _ in 0..20 {
        assert!(s.read("svc", "a/b").is_empty());
    }
    // Six distinct paths spread over more than a window: not bulk.
    for i in 0..6 {
        s.advance(20);
        assert!(s.read("svc", &format!("a/p{i}")).is_empty(), "{i}");
    }
    // Six within a window (a listing counts).
    s.advance(120);
    let mut fired = Vec::new();
    for i in 0..5 {
        fired.extend(s.kinds("svc", &format!("b/p{i}")));
    }
    let list = AuditEvent::new("svc", Operation::List, "r").with_path("b");
    fired.extend(s.push(list).iter().map(|a| a.kind));
    for i in 5..9 {
        fired.extend(s.kinds("svc", &format!("b/p{i}")));
    }
    assert_eq!(fired, vec![AlertKind::BulkAccess], "once per window");
}

#[test]
fn off_hours_follow_the_first_matching_schedule_and_wrap_midnight() {
    let mut cfg = only("off_hours");
    cfg.off_hours.schedules = vec![
        Schedule::new(["night-*"], [HourRange::new(22, 6)]),
        Schedule::new(["*"], [HourRange::new(8, 18)]),
    ];
    cfg.off_hours.cooldown_secs = 600;
    let mut s = Script::new(cfg);
    assert!(s.at(23 * 3600).read("night-batch", "a/b").is_empty());
    assert!(s.at(3 * 3600).read("night-batch", "a/b").is_empty());
    assert_eq!(
        s.at(12 * 3600).kinds("night-batch", "a/b"),
        [AlertKind::OffHours]
    );
    assert!(s.at(9 * 3600).read("web", "a/b").is_empty());
    assert_eq!(s.at(7 * 3600).kinds("web", "a/b"), [AlertKind::OffHours]);
    assert!(s.advance(60).read("web", "a/b").is_empty(), "cooldown");
    assert_eq!(s.advance(600).kinds("web", "a/b"), [AlertKind::OffHours]);
    assert!(
        s.at(18 * 3600).read("web", "a/b").len() == 1,
        "end excluded"
    );
}

#[test]
fn repeated_denials_fire_at_the_threshold_within_the_window() {
    let mut cfg = only("repeated_denials");
    cfg.repeated_denials.threshold = 3;
    cfg.repeated_denials.window_secs = 60;
    let mut s = Script::new(cfg);
    let denied = |p: &str| {
        AuditEvent::new("svc", Operation::Read, "r")
            .with_path(p)
            .with_outcome(Outcome::Denied)
    };
    assert!(s.push(denied("a/1")).is_empty());
    assert!(s.advance(50).push(denied("a/2")).is_empty());
    assert!(
        s.advance(50).push(denied("a/3")).is_empty(),
        "first expired"
    );
    let alerts = s.advance(5).push(denied("a/4"));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::RepeatedDenials);
    assert_eq!(alerts[0].path.as_deref(), Some("a/4"));
    assert!(s.push(denied("a/5")).is_empty(), "counts afresh");
}

#[test]
fn sensitive_reads_match_path_patterns() {
    let mut cfg = only("sensitive_read");
    cfg.sensitive_read.patterns = vec!["prod/admin/*".into(), "prod/+/root".into()];
    let mut s = Script::new(cfg);
    assert_eq!(s.kinds("a", "prod/admin/x"), [AlertKind::SensitiveRead]);
    assert_eq!(s.kinds("a", "prod/db/root"), [AlertKind::SensitiveRead]);
    assert!(s.read("a", "prod/db/user").is_empty());
    let list = AuditEvent::new("a", Operation::List, "r").with_path("prod/admin");
    assert!(s.push(list).is_empty(), "a listing reveals no value");
}

#[test]
fn stale_versions_are_reads_below_the_newest_version_seen() {
    let mut s = Script::new(only("stale_version"));
    let read_v = |v: u64| {
        AuditEvent::new("svc", Operation::Read, "r")
            .with_path("a/b")
            .with_version(v)
    };
    assert!(s.push(read_v(1)).is_empty());
    let write = AuditEvent::new("root", Operation::Write, "w")
        .with_path("a/b")
        .with_version(2);
    assert!(s.push(write).is_empty());
    assert!(s.push(read_v(2)).is_empty());
    let alerts = s.push(read_v(1));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::StaleVersion);
    // A failed write's version teaches nothing.
    let failed = AuditEvent::new("root", Operation::Write, "w")
        .with_path("a/b")
        .with_version(9)
        .with_outcome(Outcome::Error {
            kind: "cas_conflict".into(),
        });
    assert!(s.push(failed).is_empty());
    assert!(s.push(read_v(2)).is_empty());
}

#[test]
fn memory_stays_within_the_limits() {
    let mut cfg = AlertConfig::default().with_limits(Limits {
        max_principals: 50,
        max_paths_per_principal: 20,
        max_versioned_paths: 30,
    });
    cfg.bulk_access.max_distinct_paths = 10;
    let mut s = Script::new(cfg);
    for p in 0..200 {
        for i in 0..100 {
            let e = AuditEvent::new(format!("svc-{p}"), Operation::Read, "r")
                .with_path(format!("a/{p}/{i}"))
                .with_version(1);
            s.push(e);
        }
        s.advance(1);
    }
    assert_eq!(s.ev.principals_tracked(), 50);
    assert_eq!(s.ev.max_paths_tracked(), 20);
    assert_eq!(s.ev.versioned_paths_tracked(), 30);
    // The most recent principal survived, the oldest did not.
    assert!(s.ev.tracks_principal("svc-199"));
    assert!(!s.ev.tracks_principal("svc-0"));
}

#[test]
fn toml_configures_every_rule_and_refuses_mistakes() {
    let cfg = AlertConfig::from_toml(
        r#"
        [limits]
        max_principals = 10
        [new_path]
        enabled = false
        [read_rate]
        factor = 3.5
        severity = "critical"
        [bulk_access]
        max_distinct_paths = 7
        [[off_hours.schedules]]
        principals = ["batch-*"]
        hours = [{ start = 22, end = 6 }]
        [repeated_denials]
        threshold = 2
        [sensitive_read]
        patterns = ["prod/admin/*"]
        [stale_version]
        severity = "info"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.limits.max_principals, 10);
    assert!(!cfg.new_path.enabled);
    assert_eq!(cfg.read_rate.factor, 3.5);
    assert_eq!(cfg.read_rate.severity, Severity::Critical);
    assert_eq!(cfg.read_rate.window_secs, 600, "defaults fill the rest");
    assert_eq!(cfg.bulk_access.max_distinct_paths, 7);
    assert_eq!(cfg.off_hours.schedules[0].hours, [HourRange::new(22, 6)]);
    assert_eq!(cfg.repeated_denials.threshold, 2);
    assert_eq!(cfg.stale_version.severity, Severity::Info);
    assert_eq!(AlertConfig::from_toml("").unwrap(), AlertConfig::default());

    for bad in [
        "[read_rate]\nfactr = 2.0",
        "[read_rate]\nfactor = 0.5",
        "[sensitive_read]\npatterns = [\"a/*/b\"]",
        "[[off_hours.schedules]]\nprincipals = [\"x\"]\nhours = [{ start = 3, end = 25 }]",
        "[bulk_access]\nmax_distinct_paths = 5000",
        "[limits]\nmax_principals = 0",
        "[webhook]\nurl = \"http://h/\"\nca_file = \"ca.pem\"",
        "[webhook]\nurl = \"https://h/\"",
        "[webhook]\nurl = \"https://h/\"\nca_file = \"ca.pem\"\ntimeout_ms = 5000",
        "[webhook]\nurl = \"https://h/\"\nca_file = \"ca.pem\"\ntimeout_ms = 0",
        "[webhook]\nurl = \"https://h/\"\nca_file = \"ca.pem\"\nsecret = \"x\"",
    ] {
        assert!(AlertConfig::from_toml(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_webhook_table_parses_with_defaults_and_round_trips() {
    let cfg = AlertConfig::from_toml(
        "[delivery]\nsink_timeout_ms = 9000\n\
         [webhook]\nurl = \"https://alerts.example/hook\"\nca_file = \"/etc/ca.pem\"\ntimeout_ms = 8000\n",
    )
    .unwrap();
    let webhook = cfg.webhook.clone().unwrap();
    assert_eq!(webhook.url, "https://alerts.example/hook");
    assert_eq!(webhook.ca_file, std::path::Path::new("/etc/ca.pem"));
    assert_eq!((webhook.timeout_ms, webhook.retries), (8000, 2));
    let defaults =
        AlertConfig::from_toml("[webhook]\nurl = \"https://h/\"\nca_file = \"c\"").unwrap();
    assert_eq!(
        defaults.webhook,
        Some(WebhookConfig::new("https://h/", "c"))
    );
    assert_eq!(defaults.webhook.unwrap().timeout_ms, 4000);
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<AlertConfig>(&json).unwrap(), cfg);
    let none = serde_json::to_string(&AlertConfig::default()).unwrap();
    assert!(!none.contains("webhook"), "{none}");
}

#[test]
fn disabled_rules_raise_nothing() {
    let mut cfg = only("none");
    cfg.sensitive_read.patterns = vec!["*".into()];
    cfg.off_hours.schedules = vec![Schedule::new(["*"], [HourRange::new(0, 0)])];
    let mut s = Script::new(cfg);
    for i in 0..100 {
        s.advance(3600);
        assert!(s.read("svc", &format!("a/{i}")).is_empty());
    }
}
