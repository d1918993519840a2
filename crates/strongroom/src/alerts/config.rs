//! Rule configuration: one struct per rule, built in code or read from
//! TOML, checked by [`AlertConfig::validate`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AlertError, Schedule, Severity};
use crate::policy::PathPattern;

/// Every rule's settings, the memory limits and the delivery settings.
///
/// Every rule is enabled by default; the two that need lists
/// ([`OffHoursRule`], [`SensitiveReadRule`]) do nothing until given some.
/// In TOML each rule is a table named as its field; unknown keys are
/// refused:
///
/// ```toml
/// [new_path]
/// learning_period_secs = 604800
///
/// [read_rate]
/// window_secs = 600
/// factor = 5.0
/// min_count = 20
///
/// [sensitive_read]
/// severity = "critical"
/// patterns = ["prod/admin/*"]
///
/// [[off_hours.schedules]]
/// principals = ["reporting-*"]
/// hours = [{ start = 8, end = 18 }]
///
/// [webhook]
/// url = "https://alerts.internal:8443/strongroom"
/// ca_file = "/etc/strongroom/alerts-ca.pem"
/// timeout_ms = 4000
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// How much state the engine keeps.
    pub limits: Limits,
    /// How alerts reach the sinks.
    pub delivery: Delivery,
    /// Rule 1: a path never read before.
    pub new_path: NewPathRule,
    /// Rule 2: a read rate far above the principal's baseline.
    pub read_rate: ReadRateRule,
    /// Rule 3: many distinct paths in a sliding window.
    pub bulk_access: BulkAccessRule,
    /// Rule 4: access outside configured hours.
    pub off_hours: OffHoursRule,
    /// Rule 5: repeated denials.
    pub repeated_denials: RepeatedDenialsRule,
    /// Rule 6: reads of sensitive paths.
    pub sensitive_read: SensitiveReadRule,
    /// Rule 7: reads of a superseded version.
    pub stale_version: StaleVersionRule,
    /// Where a webhook sink posts, if the configuration names one (the
    /// engine does not build sinks: pass this to `WebhookSink::from_config`,
    /// feature `tls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
}

/// The `[webhook]` table: an HTTPS endpoint for alerts. The signing key is
/// not configured here (a file of settings is no place for a secret): give
/// it to `WebhookSink::with_signing_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint, `https://host[:port][/path]`.
    pub url: String,
    /// A PEM file of the CA certificates the endpoint's certificate must
    /// chain to.
    pub ca_file: std::path::PathBuf,
    /// The bound on one alert's delivery, retries included (default
    /// 4 000); must be below `delivery.sink_timeout_ms`.
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after a failed first attempt (default 2).
    #[serde(default = "default_webhook_retries")]
    pub retries: u32,
}

pub(super) const fn default_webhook_timeout_ms() -> u64 {
    4_000
}

pub(super) const fn default_webhook_retries() -> u32 {
    2
}

impl WebhookConfig {
    /// A configuration for `url` trusting the CAs in `ca_file`, with the
    /// default timeout and retries.
    pub fn new(url: impl Into<String>, ca_file: impl Into<std::path::PathBuf>) -> Self {
        Self {
            url: url.into(),
            ca_file: ca_file.into(),
            timeout_ms: default_webhook_timeout_ms(),
            retries: default_webhook_retries(),
        }
    }
}

/// Memory bounds. When a map is full, the least recently seen entry is
/// dropped (its history is forgotten: a dropped principal starts a new
/// learning period, a dropped path may be reported as new again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Principals tracked (default 10 000).
    pub max_principals: usize,
    /// Paths remembered per principal, for the new-path and bulk rules
    /// (default 1 000).
    pub max_paths_per_principal: usize,
    /// Paths whose newest version is remembered, for the stale-version
    /// rule (default 100 000).
    pub max_versioned_paths: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_principals: 10_000,
            max_paths_per_principal: 1_000,
            max_versioned_paths: 100_000,
        }
    }
}

/// How alerts reach the sinks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delivery {
    /// Alerts waiting for the sinks; more are dropped and counted
    /// (default 1 024).
    pub queue_capacity: usize,
    /// How long one sink may take with one alert before it is given up
    /// (default 5 s).
    pub sink_timeout_ms: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            sink_timeout_ms: 5_000,
        }
    }
}

/// Rule 1: a principal reads (operation `read` or `lease_issue`, allowed) a
/// path it has not read since the engine started tracking it, once its
/// learning period (from the first record of that principal the engine
/// saw) is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewPathRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The alert's severity (default warning).
    pub severity: Severity,
    /// How long a principal's reads are only learned (default 7 days).
    pub learning_period_secs: u64,
}

impl Default for NewPathRule {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Warning,
            learning_period_secs: 7 * 86_400,
        }
    }
}

/// Rule 2: time is cut into fixed windows (aligned to the Unix epoch); a
/// principal's allowed reads in the current window are compared with an
/// exponential moving average of its reads per window (empty windows
/// count as zero). Fires once per window when the count reaches
/// `min_count` and exceeds `factor` times the average, after `warmup_windows`
/// windows of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadRateRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The alert's severity (default warning).
    pub severity: Severity,
    /// The window (default 600 s).
    pub window_secs: u64,
    /// How many times the average counts as far above (default 5).
    pub factor: f64,
    /// Fewer reads than this in a window never fire (default 20).
    pub min_count: u64,
    /// Windows of history needed before the rule fires (default 6).
    pub warmup_windows: u32,
    /// The moving average's weight of the newest window, in (0, 1]
    /// (default 0.2).
    pub smoothing: f64,
}

impl Default for ReadRateRule {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Warning,
            window_secs: 600,
            factor: 5.0,
            min_count: 20,
            warmup_windows: 6,
            smoothing: 0.2,
        }
    }
}

/// Rule 3: more than `max_distinct_paths` distinct paths read (`read`,
/// `lease_issue`) or listed (`list`, the prefix counts as a path), allowed,
/// within the last `window_secs`. Fires once, then stays quiet for one
/// window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkAccessRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The alert's severity (default critical).
    pub severity: Severity,
    /// Distinct paths allowed in a window (default 50). Must be below
    /// [`Limits::max_paths_per_principal`].
    pub max_distinct_paths: usize,
    /// The sliding window (default 300 s).
    pub window_secs: u64,
}

impl Default for BulkAccessRule {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Critical,
            max_distinct_paths: 50,
            window_secs: 300,
        }
    }
}

/// Rule 4: any record of a principal (whatever the operation or outcome)
/// at a UTC hour outside the hours of the first schedule whose principal
/// patterns match it. Principals no schedule matches are not checked.
/// Fires at most once per principal per `cooldown_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OffHoursRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The alert's severity (default warning).
    pub severity: Severity,
    /// Schedules, first match wins.
    pub schedules: Vec<Schedule>,
    /// Quiet time after an alert, per principal (default 3 600 s).
    pub cooldown_secs: u64,
}

impl Default for OffHoursRule {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Warning,
            schedules: Vec::new(),
            cooldown_secs: 3_600,
        }
    }
}

/// Rule 5: `threshold` denied records of one principal within
/// `window_secs`. Fires, then counts afresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepeatedDenialsRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The alert's severity (default warning).
    pub severity: Severity,
    /// Denials that fire (default 5).
    pub threshold: usize,
    /// The window (default 600 s).
    pub window_secs: u64,
}

impl Default for RepeatedDenialsRule {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Warning,
            threshold: 5,
            window_secs: 600,
        }
    }
}

/// Rule 6: every allowed `read` or `lease_issue` of a path matching one of
/// `patterns` ([`PathPattern`] syntax).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensitiveReadRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The alert's severity (default info).
    pub severity: Severity,
    /// The sensitive paths.
    pub patterns: Vec<String>,
}

impl Default for SensitiveReadRule {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Info,
            patterns: Vec::new(),
        }
    }
}

/// Rule 7: an allowed `read` whose record carries a version lower than the
/// newest version of that path the engine has seen in any record (an
/// allowed `write` result, `read` or `read_metadata` carrying a version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaleVersionRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The alert's severity (default warning).
    pub severity: Severity,
}

impl Default for StaleVersionRule {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Warning,
        }
    }
}

impl AlertConfig {
    /// Reads a configuration from TOML (missing tables and keys take their
    /// defaults) and validates it.
    pub fn from_toml(text: &str) -> Result<Self, AlertError> {
        let config: Self = toml::from_str(text).map_err(|e| AlertError::Toml(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Sets the memory limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the delivery settings.
    #[must_use]
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Sets rule 1.
    #[must_use]
    pub fn with_new_path(mut self, rule: NewPathRule) -> Self {
        self.new_path = rule;
        self
    }

    /// Sets rule 2.
    #[must_use]
    pub fn with_read_rate(mut self, rule: ReadRateRule) -> Self {
        self.read_rate = rule;
        self
    }

    /// Sets rule 3.
    #[must_use]
    pub fn with_bulk_access(mut self, rule: BulkAccessRule) -> Self {
        self.bulk_access = rule;
        self
    }

    /// Sets rule 4.
    #[must_use]
    pub fn with_off_hours(mut self, rule: OffHoursRule) -> Self {
        self.off_hours = rule;
        self
    }

    /// Sets rule 5.
    #[must_use]
    pub fn with_repeated_denials(mut self, rule: RepeatedDenialsRule) -> Self {
        self.repeated_denials = rule;
        self
    }

    /// Sets rule 6.
    #[must_use]
    pub fn with_sensitive_read(mut self, rule: SensitiveReadRule) -> Self {
        self.sensitive_read = rule;
        self
    }

    /// Sets rule 7.
    #[must_use]
    pub fn with_stale_version(mut self, rule: StaleVersionRule) -> Self {
        self.stale_version = rule;
        self
    }

    /// Checks every setting; the sensitive patterns must parse.
    pub fn validate(&self) -> Result<(), AlertError> {
        self.compiled_patterns().map(drop)
    }

    /// Validates and compiles the sensitive patterns.
    pub(super) fn compiled_patterns(&self) -> Result<Vec<PathPattern>, AlertError> {
        let bad =
            |rule: &'static str, reason: String| Err(AlertError::InvalidRule { rule, reason });
        let l = &self.limits;
        if l.max_principals == 0 || l.max_paths_per_principal == 0 || l.max_versioned_paths == 0 {
            return bad("limits", "every limit must be at least 1".into());
        }
        if self.delivery.queue_capacity == 0 {
            return bad("delivery", "queue_capacity must be at least 1".into());
        }
        let r = &self.read_rate;
        if r.window_secs == 0 {
            return bad("read_rate", "window_secs must be at least 1".into());
        }
        if !(r.factor.is_finite() && r.factor >= 1.0) {
            return bad(
                "read_rate",
                format!("factor must be at least 1, not {}", r.factor),
            );
        }
        if !(r.smoothing > 0.0 && r.smoothing <= 1.0) {
            return bad(
                "read_rate",
                format!("smoothing must be in (0, 1], not {}", r.smoothing),
            );
        }
        let b = &self.bulk_access;
        if b.window_secs == 0 || b.max_distinct_paths == 0 {
            return bad(
                "bulk_access",
                "window_secs and max_distinct_paths must be at least 1".into(),
            );
        }
        if b.max_distinct_paths >= l.max_paths_per_principal {
            return bad(
                "bulk_access",
                format!(
                    "max_distinct_paths ({}) must be below limits.max_paths_per_principal ({})",
                    b.max_distinct_paths, l.max_paths_per_principal
                ),
            );
        }
        for s in &self.off_hours.schedules {
            if s.principals.is_empty() {
                return bad("off_hours", "a schedule names no principals".into());
            }
            if let Some(h) = s.hours.iter().find(|h| h.start > 24 || h.end > 24) {
                return bad(
                    "off_hours",
                    format!("hours run from 0 to 24, not {}..{}", h.start, h.end),
                );
            }
        }
        if let Some(w) = &self.webhook {
            if !w.url.starts_with("https://") {
                return bad("webhook", "url must start with https://".into());
            }
            if w.timeout_ms == 0 || w.timeout_ms >= self.delivery.sink_timeout_ms {
                return bad(
                    "webhook",
                    format!(
                        "timeout_ms ({}) must be at least 1 and below delivery.sink_timeout_ms ({})",
                        w.timeout_ms, self.delivery.sink_timeout_ms
                    ),
                );
            }
        }
        let d = &self.repeated_denials;
        if d.threshold == 0 || d.window_secs == 0 {
            return bad(
                "repeated_denials",
                "threshold and window_secs must be at least 1".into(),
            );
        }
        self.sensitive_read
            .patterns
            .iter()
            .map(|p| {
                PathPattern::parse(p).map_err(|e| AlertError::InvalidRule {
                    rule: "sensitive_read",
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    pub(super) fn sink_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery.sink_timeout_ms)
    }
}
