//! The inventory: every secret under a prefix with its owner, environment,
//! tags and rotation state, filtered by those and, given the store's audit
//! file, by how long ago its value was last read. The CLI's `inventory`
//! and the bindings share it.
//!
//! Values are never read. The last read of a secret is the newest record in
//! the audit file with operation `read`, outcome `allowed` and that path;
//! the file is verified against the store's saved head first (as `audit
//! verify` does), so an edited file is refused rather than believed.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use strongroom::audit::{AuditError, AuditFileCheck, AuditRecord, Operation, Outcome};
use strongroom::clock::Timestamp;
use strongroom::dangerous::Door;
use strongroom::secrets::SecretMetadata;

/// Which secrets an inventory keeps (every field empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryFilter {
    /// Only secrets with this owner.
    pub owner: Option<String>,
    /// Only secrets in this environment.
    pub environment: Option<String>,
    /// Only secrets carrying every one of these tags.
    pub tags: BTreeSet<String>,
    /// Only secrets whose rotation is overdue.
    pub overdue: bool,
    /// Only secrets not read for at least this long (by the audit file;
    /// never read counts as not read).
    pub unread_for: Option<Duration>,
}

/// One secret of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryEntry {
    /// Its metadata.
    pub metadata: SecretMetadata,
    /// Whether its rotation is overdue now.
    pub rotation_overdue: bool,
    /// Its last successful value read in the audit file (`None`: none
    /// found, or no file given).
    pub last_read: Option<Timestamp>,
}

impl InventoryFilter {
    /// Whether `e` passes every filter given, at `now`.
    #[must_use]
    pub fn keeps(&self, e: &InventoryEntry, now: Timestamp) -> bool {
        let m = &e.metadata;
        if self
            .owner
            .as_ref()
            .is_some_and(|o| m.owner.as_ref() != Some(o))
        {
            return false;
        }
        if self
            .environment
            .as_ref()
            .is_some_and(|env| m.environment.as_ref() != Some(env))
        {
            return false;
        }
        if !self.tags.iter().all(|t| m.tags.contains(t)) {
            return false;
        }
        if self.overdue && !e.rotation_overdue {
            return false;
        }
        if let Some(window) = self.unread_for {
            let cutoff = now - window;
            if e.last_read.is_some_and(|t| t >= cutoff) {
                return false;
            }
        }
        true
    }
}

/// The newest successful value read of each path in the audit file at
/// `file`, after the file is verified against `door`'s store.
///
/// # Errors
///
/// [`strongroom::Error::Audit`] with [`AuditError::ChainBroken`] for an
/// edited file, [`AuditError::Io`] for one that cannot be read (or changed
/// while it was read).
pub async fn last_reads(
    door: &Door,
    file: &Path,
) -> strongroom::Result<HashMap<String, Timestamp>> {
    door.verify_audit_file(file, &AuditFileCheck::new()).await?;
    let io = |message: String| {
        strongroom::Error::Audit(AuditError::Io {
            path: file.display().to_string(),
            message,
        })
    };
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| io(e.to_string()))?;
    let mut out: HashMap<String, Timestamp> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // verified above; a line that does not parse now changed since
        let record = AuditRecord::from_json_line(line)
            .map_err(|e| io(format!("changed while read: {e}")))?;
        let ev = &record.event;
        if ev.operation != Operation::Read || ev.outcome != Outcome::Allowed {
            continue;
        }
        if let Some(path) = &ev.path {
            let newest = out.entry(path.clone()).or_insert(record.time);
            *newest = (*newest).max(record.time);
        }
    }
    Ok(out)
}

/// The entry of `metadata` at `now`, with its last read from `reads`.
#[must_use]
pub fn entry(
    metadata: SecretMetadata,
    now: Timestamp,
    reads: Option<&HashMap<String, Timestamp>>,
) -> InventoryEntry {
    let last_read = reads.and_then(|m| m.get(metadata.path.as_str()).copied());
    InventoryEntry {
        rotation_overdue: metadata.rotation_due(now),
        metadata,
        last_read,
    }
}

/// The inventory of the secrets under `prefix` in `door`'s store
/// (unchecked: the caller holds the door), at the store clock's now.
///
/// # Errors
///
/// As for [`last_reads`], and storage errors.
pub async fn collect(
    door: &Door,
    prefix: &str,
    audit_file: Option<&Path>,
    filter: &InventoryFilter,
) -> strongroom::Result<Vec<InventoryEntry>> {
    let now = door.clock().now();
    let reads = match audit_file {
        Some(f) => Some(last_reads(door, f).await?),
        None => None,
    };
    let secrets = door.secrets();
    let mut out = Vec::new();
    for path in secrets.list_all(prefix).await? {
        let e = entry(secrets.metadata(path.as_str()).await?, now, reads.as_ref());
        if filter.keeps(&e, now) {
            out.push(e);
        }
    }
    Ok(out)
}
