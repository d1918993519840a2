//! What an alert says: which rule fired, how serious it is, who and where.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Which rule raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// A principal read a path it had not read before, after its learning
    /// period.
    NewPath,
    /// A principal's reads in the current window far exceed its moving
    /// average.
    ReadRate,
    /// A principal read or listed more distinct paths in a sliding window
    /// than allowed.
    BulkAccess,
    /// A principal acted outside its configured hours.
    OffHours,
    /// A principal was denied repeatedly within a window.
    RepeatedDenials,
    /// A principal read a path marked sensitive.
    SensitiveRead,
    /// A principal read a secret version older than the newest one seen.
    StaleVersion,
}

impl AlertKind {
    /// The snake_case name (as in configuration and tracing output).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NewPath => "new_path",
            Self::ReadRate => "read_rate",
            Self::BulkAccess => "bulk_access",
            Self::OffHours => "off_hours",
            Self::RepeatedDenials => "repeated_denials",
            Self::SensitiveRead => "sensitive_read",
            Self::StaleVersion => "stale_version",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth recording.
    Info,
    /// Worth a look.
    Warning,
    /// Worth waking someone.
    Critical,
}

impl Severity {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert, raised by a rule on one audit record.
///
/// Built only from the record's principal, operation, path, version,
/// outcome, request id and time, and from counts: never from a value or an
/// HMAC field (audit records hold no values; alerts do not even repeat
/// their HMACs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule that fired.
    pub kind: AlertKind,
    /// Its configured severity.
    pub severity: Severity,
    /// Who acted.
    pub principal: String,
    /// The path concerned, if one record's path is the point (absent for
    /// bulk access, which is about many paths).
    pub path: Option<String>,
    /// The time of the record that raised it.
    pub at: Timestamp,
    /// One line for people: names, counts and paths only.
    pub summary: String,
    /// The request id of the record that raised it.
    pub request_id: String,
    /// The sequence number of the record that raised it.
    pub seq: u64,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {} at {}: {}",
            self.severity, self.kind, self.at, self.summary
        )
    }
}
