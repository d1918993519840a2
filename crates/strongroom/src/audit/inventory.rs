//! Who touched what: summaries built from verified records.

use std::collections::{BTreeMap, BTreeSet};

use super::{AuditRecord, Operation, Outcome};
use crate::clock::Timestamp;

/// What one principal did to one path, summed over records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSummary {
    /// The path.
    pub path: String,
    /// The principal.
    pub principal: String,
    /// Allowed operations that handed out a secret (reads, leases).
    pub reads: u64,
    /// When it last did so.
    pub last_read: Option<Timestamp>,
    /// Every allowed operation it performed there.
    pub operations: BTreeSet<Operation>,
    /// Its last allowed operation there.
    pub last_access: Option<Timestamp>,
    /// Denied attempts.
    pub denied: u64,
    /// Its last denied attempt.
    pub last_denied: Option<Timestamp>,
}

/// Who touched what, built from audit records (verify them first).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Keyed by (path, principal).
    entries: BTreeMap<(String, String), AccessSummary>,
}

impl Inventory {
    /// Sums up `records` (records without a path are ignored).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Self {
        let mut entries: BTreeMap<(String, String), AccessSummary> = BTreeMap::new();
        for r in records {
            let e = &r.event;
            let Some(path) = &e.path else { continue };
            let s = entries
                .entry((path.clone(), e.principal.clone()))
                .or_insert_with(|| AccessSummary {
                    path: path.clone(),
                    principal: e.principal.clone(),
                    reads: 0,
                    last_read: None,
                    operations: BTreeSet::new(),
                    last_access: None,
                    denied: 0,
                    last_denied: None,
                });
            match e.outcome {
                Outcome::Allowed => {
                    s.operations.insert(e.operation);
                    s.last_access = s.last_access.max(Some(r.time));
                    if e.operation.reveals_secret() {
                        s.reads += 1;
                        s.last_read = s.last_read.max(Some(r.time));
                    }
                }
                Outcome::Denied => {
                    s.denied += 1;
                    s.last_denied = s.last_denied.max(Some(r.time));
                }
                Outcome::Error { .. } => {}
            }
        }
        Self { entries }
    }

    /// The principals that read `path`, with how often and when last,
    /// by principal name.
    pub fn readers(&self, path: &str) -> Vec<&AccessSummary> {
        self.entries
            .values()
            .filter(|s| s.path == path && s.reads > 0)
            .collect()
    }

    /// Every path `principal` touched or tried to (allowed, denied or
    /// failed), by path.
    pub fn touched_by(&self, principal: &str) -> Vec<&AccessSummary> {
        self.entries
            .values()
            .filter(|s| s.principal == principal)
            .collect()
    }
}
