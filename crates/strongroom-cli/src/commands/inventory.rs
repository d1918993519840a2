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

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use strongroom::Error;
use strongroom::audit::{AuditError, AuditFileCheck, AuditRecord, Operation, Outcome};
use strongroom::clock::Timestamp;
use strongroom::dangerous::Door;
use strongroom::secrets::SecretMetadata;

use crate::args::InventoryArgs;
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::print::json;

/// One line of the inventory.
struct Entry {
    meta: SecretMetadata,
    /// The last successful value read in the audit file (`None`: none
    /// found, or no file given).
    last_read: Option<Timestamp>,
}

/// `inventory`.
pub(crate) async fn inventory(a: InventoryArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let now = open.sr.strongroom().clock().now();
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
        let last_read = last_reads
            .as_ref()
            .and_then(|m| m.get(path.as_str()).copied());
        let entry = Entry { meta, last_read };
        if keep(&a, &entry, now) {
            entries.push(entry);
        }
    }
    open.close().await;

    if a.json {
        let items: Vec<_> = entries
            .iter()
            .map(|e| {
                let mut v = json::metadata(&e.meta);
                v["rotation_overdue"] = e.meta.rotation_due(now).into();
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
        let m = &e.meta;
        let due = match m.rotation_due_at() {
            Some(t) if m.rotation_due(now) => format!("{t} (overdue)"),
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

/// Whether `e` passes every filter given.
fn keep(a: &InventoryArgs, e: &Entry, now: Timestamp) -> bool {
    let m = &e.meta;
    if a.owner
        .as_ref()
        .is_some_and(|o| m.owner.as_ref() != Some(o))
    {
        return false;
    }
    if a.environment
        .as_ref()
        .is_some_and(|env| m.environment.as_ref() != Some(env))
    {
        return false;
    }
    if !a.tags.iter().all(|t| m.tags.contains(t)) {
        return false;
    }
    if a.overdue && !m.rotation_due(now) {
        return false;
    }
    if let Some(days) = a.unread_days {
        let window = Duration::from_secs(u64::from(days) * 86_400);
        let cutoff = now - window;
        if e.last_read.is_some_and(|t| t >= cutoff) {
            return false;
        }
    }
    true
}

/// The newest successful value read of each path in the audit file at
/// `file`, after the file is verified against the store's saved head.
async fn last_reads(sr: &Door, file: &Path) -> CliResult<HashMap<String, Timestamp>> {
    match sr.verify_audit_file(file, &AuditFileCheck::new()).await {
        Ok(_) => {}
        Err(Error::Audit(e @ AuditError::ChainBroken { .. })) => {
            return Err(Failure::ChainBroken(e));
        }
        Err(Error::Audit(AuditError::Io { path, message })) => {
            return Err(Failure::Io(format!("audit file {path}: {message}")));
        }
        Err(e) => return Err(Failure::Lib(e)),
    }
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| Failure::Io(format!("audit file {}: {e}", file.display())))?;
    let mut out: HashMap<String, Timestamp> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // verified above; a line that does not parse now changed since
        let record = AuditRecord::from_json_line(line).map_err(|e| {
            Failure::Io(format!(
                "audit file {} changed while read: {e}",
                file.display()
            ))
        })?;
        let ev = &record.event;
        if ev.operation != Operation::Read || ev.outcome != Outcome::Allowed {
            continue;
        }
        if let Some(path) = &ev.path {
            let newest = out.entry(path.clone()).or_insert(record.time);
            if record.time > *newest {
                *newest = record.time;
            }
        }
    }
    Ok(out)
}
