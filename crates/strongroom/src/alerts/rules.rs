//! The rules: [`Evaluator`] turns each audit record into the alerts it
//! raises, keeping bounded state per principal.

use std::fmt;

use super::state::{Lru, PrincipalState};
use super::{Alert, AlertConfig, AlertError, AlertKind, Severity};
use crate::audit::{AuditRecord, Operation, Outcome};
use crate::path::SecretPath;
use crate::policy::PathPattern;

const MS_PER_SEC: u64 = 1000;

/// Evaluates the rules of an [`AlertConfig`] on audit records, one at a
/// time, in sequence order. Synchronous and deterministic: time is the
/// records' own `time` (stamped by the audit log from the store's
/// [`Clock`](crate::clock::Clock)), so replaying a log gives the same
/// alerts. [`AlertEngine`](super::AlertEngine) wraps one for live use.
pub struct Evaluator {
    config: AlertConfig,
    sensitive: Vec<PathPattern>,
    principals: Lru<PrincipalState>,
    /// The newest version seen per path (stale-version rule).
    versions: Lru<u64>,
}

impl fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evaluator")
            .field("principals", &self.principals.len())
            .field("versioned_paths", &self.versions.len())
            .finish_non_exhaustive()
    }
}

/// One rule's verdict before it becomes an [`Alert`].
struct Hit {
    kind: AlertKind,
    severity: Severity,
    path: Option<String>,
    summary: String,
}

impl Evaluator {
    /// An evaluator with no history. Fails if the configuration does not
    /// validate.
    pub fn new(config: AlertConfig) -> Result<Self, AlertError> {
        let sensitive = config.compiled_patterns()?;
        Ok(Self {
            principals: Lru::new(config.limits.max_principals),
            versions: Lru::new(config.limits.max_versioned_paths),
            sensitive,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// How many principals are tracked now (at most
    /// [`Limits::max_principals`](super::Limits::max_principals)).
    pub fn principals_tracked(&self) -> usize {
        self.principals.len()
    }

    /// The largest number of paths remembered for any principal, by the
    /// new-path or the bulk rule (at most
    /// [`Limits::max_paths_per_principal`](super::Limits::max_paths_per_principal)).
    pub fn max_paths_tracked(&self) -> usize {
        self.principals
            .values()
            .map(|p| p.known_paths.len().max(p.recent.len()))
            .max()
            .unwrap_or(0)
    }

    /// Whether `principal` is tracked now.
    pub fn tracks_principal(&self, principal: &str) -> bool {
        self.principals.contains(principal)
    }

    /// How many paths have a newest version remembered (at most
    /// [`Limits::max_versioned_paths`](super::Limits::max_versioned_paths)).
    pub fn versioned_paths_tracked(&self) -> usize {
        self.versions.len()
    }

    /// The alerts `record` raises, in rule order (the numbering of the
    /// [module docs](super)), after updating the state with it.
    pub fn evaluate(&mut self, record: &AuditRecord) -> Vec<Alert> {
        let mut hits = Vec::new();
        let now = record.time;
        let e = &record.event;
        let allowed = e.outcome == Outcome::Allowed;
        let reads = allowed && e.operation.reveals_secret() && e.path.is_some();
        let max_paths = self.config.limits.max_paths_per_principal;
        let stale = self.stale_version(record);
        let sensitive = self.sensitive_read(record);
        let cfg = &self.config;
        let st = self
            .principals
            .get_or_insert_with(&e.principal, || PrincipalState::new(now, max_paths));
        let path = e.path.as_deref();

        // 1. A path never read before.
        if cfg.new_path.enabled
            && reads
            && let Some(p) = path
        {
            let learned =
                now.saturating_since(st.first_seen).as_secs() >= cfg.new_path.learning_period_secs;
            if !st.known_paths.contains(p) && learned {
                hits.push(Hit {
                    kind: AlertKind::NewPath,
                    severity: cfg.new_path.severity,
                    path: Some(p.to_owned()),
                    summary: format!(
                        "{} read {p}, a path it had not read before ({})",
                        e.principal, e.operation
                    ),
                });
            }
            st.known_paths.get_or_insert_with(p, || ());
        }

        // 2. A read rate far above the baseline.
        let r = &cfg.read_rate;
        if r.enabled && reads {
            let window_ms = r.window_secs.saturating_mul(MS_PER_SEC);
            let count = st.rate.count_read(now, window_ms, r.smoothing);
            let average = st.rate.average;
            if !st.rate.fired
                && st.rate.windows_seen >= u64::from(r.warmup_windows)
                && count >= r.min_count
                && count as f64 > r.factor * average
            {
                st.rate.fired = true;
                hits.push(Hit {
                    kind: AlertKind::ReadRate,
                    severity: r.severity,
                    path: path.map(str::to_owned),
                    summary: format!(
                        "{} made {count} reads in the current {} s window, against an average of {average:.1} per window",
                        e.principal, r.window_secs
                    ),
                });
            }
        }

        // 3. Many distinct paths in a sliding window.
        let b = &cfg.bulk_access;
        let listed = allowed && e.operation == Operation::List;
        if b.enabled
            && (reads || listed)
            && let Some(p) = path
        {
            let since = now - std::time::Duration::from_secs(b.window_secs);
            *st.recent.get_or_insert_with(p, || now) = now;
            if st.recent.len() > b.max_distinct_paths {
                st.recent.retain(|t| *t >= since);
            }
            let distinct = st.recent.len();
            if distinct > b.max_distinct_paths && now >= st.bulk_quiet_until {
                st.bulk_quiet_until = now + std::time::Duration::from_secs(b.window_secs);
                hits.push(Hit {
                        kind: AlertKind::BulkAccess,
                        severity: b.severity,
                        path: None,
                        summary: format!(
                            "{} read or listed {distinct} distinct paths within {} s (limit {}); latest {p}",
                            e.principal, b.window_secs, b.max_distinct_paths
                        ),
                    });
            }
        }

        // 4. Outside the configured hours.
        let o = &cfg.off_hours;
        if o.enabled && now >= st.off_hours_quiet_until {
            let hour = ((now.as_secs() % 86_400) / 3_600) as u8;
            let schedule = o.schedules.iter().find(|s| s.applies_to(&e.principal));
            if schedule.is_some_and(|s| !s.allows_hour(hour)) {
                st.off_hours_quiet_until = now + std::time::Duration::from_secs(o.cooldown_secs);
                hits.push(Hit {
                    kind: AlertKind::OffHours,
                    severity: o.severity,
                    path: path.map(str::to_owned),
                    summary: format!(
                        "{} did {} at {hour:02}:xx UTC, outside its configured hours",
                        e.principal, e.operation
                    ),
                });
            }
        }

        // 5. Repeated denials.
        let d = &cfg.repeated_denials;
        if d.enabled && e.outcome == Outcome::Denied {
            let since = now - std::time::Duration::from_secs(d.window_secs);
            st.denials.push_back(now);
            while st.denials.front().is_some_and(|t| *t < since) {
                st.denials.pop_front();
            }
            if st.denials.len() >= d.threshold {
                let n = st.denials.len();
                st.denials.clear();
                hits.push(Hit {
                    kind: AlertKind::RepeatedDenials,
                    severity: d.severity,
                    path: path.map(str::to_owned),
                    summary: format!(
                        "{} was denied {n} times within {} s; latest {} of {}",
                        e.principal,
                        d.window_secs,
                        e.operation,
                        path.unwrap_or("(no path)")
                    ),
                });
            }
        }

        hits.extend(sensitive);
        hits.extend(stale);
        hits.into_iter()
            .map(|h| Alert {
                kind: h.kind,
                severity: h.severity,
                principal: e.principal.clone(),
                path: h.path,
                at: now,
                summary: h.summary,
                request_id: e.request_id.clone(),
                seq: record.seq,
            })
            .collect()
    }

    /// Rule 6: a read of a sensitive path.
    fn sensitive_read(&self, record: &AuditRecord) -> Option<Hit> {
        let rule = &self.config.sensitive_read;
        let e = &record.event;
        if !rule.enabled || self.sensitive.is_empty() || e.outcome != Outcome::Allowed {
            return None;
        }
        if !e.operation.reveals_secret() {
            return None;
        }
        let raw = e.path.as_deref()?;
        let path = SecretPath::parse(raw).ok()?;
        let pattern = self.sensitive.iter().find(|p| p.matches(&path))?;
        Some(Hit {
            kind: AlertKind::SensitiveRead,
            severity: rule.severity,
            path: Some(raw.to_owned()),
            summary: format!(
                "{} read {raw} ({}), marked sensitive by {}",
                e.principal,
                e.operation,
                pattern.as_str()
            ),
        })
    }

    /// Rule 7: a read of a version older than the newest seen; also learns the
    /// newest version from every allowed record that carries one.
    fn stale_version(&mut self, record: &AuditRecord) -> Option<Hit> {
        let e = &record.event;
        if e.outcome != Outcome::Allowed {
            return None;
        }
        let learns = matches!(
            e.operation,
            Operation::Read | Operation::ReadMetadata | Operation::Write
        );
        let (Some(raw), Some(version)) = (e.path.as_deref(), e.version) else {
            return None;
        };
        if !learns {
            return None;
        }
        let newest = self.versions.get_or_insert_with(raw, || version);
        let seen = *newest;
        *newest = seen.max(version);
        let rule = &self.config.stale_version;
        if rule.enabled && e.operation == Operation::Read && version < seen {
            return Some(Hit {
                kind: AlertKind::StaleVersion,
                severity: rule.severity,
                path: Some(raw.to_owned()),
                summary: format!(
                    "{} read version {version} of {raw}; version {seen} is newer",
                    e.principal
                ),
            });
        }
        None
    }
}
