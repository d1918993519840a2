//! Off-hours schedules: which principals a schedule covers and at which
//! UTC hours they are expected.

use serde::{Deserialize, Serialize};

/// Allowed UTC hours for some principals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Principal names, exact or ending in `*` (a prefix); `["*"]` for all.
    pub principals: Vec<String>,
    /// The hours when access is expected.
    pub hours: Vec<HourRange>,
}

impl Schedule {
    /// A schedule for `principals` allowing `hours`.
    pub fn new<S: Into<String>>(
        principals: impl IntoIterator<Item = S>,
        hours: impl IntoIterator<Item = HourRange>,
    ) -> Self {
        Self {
            principals: principals.into_iter().map(Into::into).collect(),
            hours: hours.into_iter().collect(),
        }
    }

    pub(super) fn applies_to(&self, principal: &str) -> bool {
        self.principals.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => principal.starts_with(prefix),
            None => p == principal,
        })
    }

    pub(super) fn allows_hour(&self, hour: u8) -> bool {
        self.hours.iter().any(|r| r.contains(hour))
    }
}

/// UTC hours from `start` (included) to `end` (excluded), both 0 to 24;
/// wraps past midnight when `start > end` (`22..6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourRange {
    /// The first hour included.
    pub start: u8,
    /// The first hour no longer included.
    pub end: u8,
}

impl HourRange {
    /// `start..end` (UTC).
    pub const fn new(start: u8, end: u8) -> Self {
        Self { start, end }
    }

    fn contains(self, hour: u8) -> bool {
        if self.start <= self.end {
            self.start <= hour && hour < self.end
        } else {
            hour >= self.start || hour < self.end
        }
    }
}
