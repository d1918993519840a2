//! `inventory`: every secret under a prefix with its owner, environment,
//! tags and rotation state, filtered by those and, given the store's audit
//! file, by how long ago its value was last read.
//!
//! The listing is recorded like `list --recursive`, and each secret's
//! metadata is read through the operator's handle (one `read_metadata`
//! record each), so an inventory is on record like any other read. Values
//! are never read. The last read of a secret is the newest record in the
//! audit file with operation `read`, outcome `allowed` and that path; the
//! file is verified against the store's saved head first (as `audit
//! verify` does), so an edited file is refused rather than believed.

use std::path::Path;
use std::time::Duration;

use strongroom::Error;
use strongroom::audit::{AuditError, Operation};
use strongroom::clock::Timestamp;
use strongroom::dangerous::Door;
use strongroom_host::inventory::{self, InventoryFilter};

use crate::args::InventoryArgs;
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::print::json;

/// `inventory`.
pub(crate) async fn inventory(a: InventoryArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let now = open.sr.strongroom().clock().now();
    let filter = InventoryFilter {
        owner: a.owner.clone(),
        environment: a.environment.clone(),
        tags: a.tags.iter().cloned().collect(),
        overdue: a.overdue,
        unread_for: a
            .unread_days
            .map(|days| Duration::from_secs(u64::from(days) * 86_400)),
    };
    let last_reads = match &a.audit_file {
        Some(file) => Some(last_reads(&open.sr, file).await?),
        None => None,
    };

    let mut event = op.event(Operation::List)?;
    if !matches!(a.prefix.as_str(), "" | "/") {
        event = event.with_path(&a.prefix);
    }
    let listed = open.sr.secrets().list_all(&a.prefix).await;
    let paths = op.conclude(event, listed, false, |ev, _| ev).await?;

    let mut entries = Vec::new();
    for path in paths {
        let meta = audited(op.secrets().metadata(path.as_str()).await, false)?;
        let entry = inventory::entry(meta, now, last_reads.as_ref());
        if filter.keeps(&entry, now) {
            entries.push(entry);
        }
    }
    open.close().await;

    if a.json {
        let items: Vec<_> = entries
            .iter()
            .map(|e| {
                let mut v = json::metadata(&e.metadata);
                v["rotation_overdue"] = e.rotation_overdue.into();
                // null without an audit file, or with no read found in it
                v["last_read_at"] = e
                    .last_read
                    .map_or(serde_json::Value::Null, |t| t.to_string().into());
                v
            })
            .collect();
        json::print(&serde_json::json!({
            "prefix": a.prefix,
            "now": now.to_string(),
            "secrets": items,
        }));
        return Ok(());
    }
    println!(
        "{:<40} {:<16} {:<10} {:<8} {:<26} {:<26} tags",
        "path", "owner", "env", "version", "rotation due", "last read"
    );
    for e in &entries {
        let m = &e.metadata;
        let due = match m.rotation_due_at() {
            Some(t) if e.rotation_overdue => format!("{t} (overdue)"),
            Some(t) => t.to_string(),
            None => "-".into(),
        };
        let last_read = match (&a.audit_file, e.last_read) {
            (None, _) => "-".to_owned(),
            (Some(_), None) => "never".to_owned(),
            (Some(_), Some(t)) => t.to_string(),
        };
        let tags: Vec<&str> = m.tags.iter().map(String::as_str).collect();
        println!(
            "{:<40} {:<16} {:<10} {:<8} {:<26} {:<26} {}",
            m.path.as_str(),
            m.owner.as_deref().unwrap_or("-"),
            m.environment.as_deref().unwrap_or("-"),
            m.current_version,
            due,
            last_read,
            tags.join(",")
        );
    }
    Ok(())
}

/// The newest successful value read of each path in the audit file at
/// `file`, after the file is verified against the store's saved head.
async fn last_reads(
    sr: &Door,
    file: &Path,
) -> CliResult<std::collections::HashMap<String, Timestamp>> {
    match inventory::last_reads(sr, file).await {
        Ok(reads) => Ok(reads),
        Err(Error::Audit(e @ AuditError::ChainBroken { .. })) => Err(Failure::ChainBroken(e)),
        Err(Error::Audit(AuditError::Io { path, message })) => {
            Err(Failure::Io(format!("audit file {path}: {message}")))
        }
        Err(e) => Err(Failure::Lib(e)),
    }
}
