//! Applying a plan: one atomic storage batch conditioned on everything the
//! plan read, audited under the operator's principal.

use serde::Serialize;

use super::DeclarativeError;
use super::document::digest;
use super::plan::{Kind, Plan, SecretAction, patch_of};
use super::section::{self, Section};
use super::state::{APPLIED_FORMAT, AppliedRecord, DECLARED_RECORD, read_record};
use crate::audit::{AuditEvent, Operation, Outcome, new_request_id};
use crate::dangerous::Door;
use crate::path::SecretPath;
use crate::secrets::{metadata_key, metadata_plaintext, metadata_state};
use crate::storage::BatchOp;
use crate::vault::UnsentOps;
use crate::{Error, Handle, SecretBytes};

/// The characters of generated values.
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// What [`apply`] did. Never holds a generated value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ApplyReport {
    /// The applied record's revision now (unchanged if nothing was to do).
    pub revision: u64,
    /// Whether anything was written.
    pub written: bool,
    /// Secrets created with a generated value.
    pub generated: Vec<String>,
    /// Secrets whose metadata was set.
    pub metadata_updated: Vec<String>,
}

/// `length` random letters and digits from the library's random source
/// (rejection sampling, so every character is equally likely).
fn random_value(length: u32) -> Result<SecretBytes, Error> {
    let length = length as usize;
    let mut value = SecretBytes::new(Vec::with_capacity(length));
    while value.len() < length {
        let bytes = SecretBytes::random(64)?;
        for &b in bytes.expose_secret() {
            if value.len() == length {
                break;
            }
            if usize::from(b) < 248 {
                value
                    .expose_secret_mut()
                    .push(ALPHABET[usize::from(b) % ALPHABET.len()]);
            }
        }
    }
    Ok(value)
}

fn changed(what: impl Into<String>) -> DeclarativeError {
    DeclarativeError::StoreChangedSincePlan { what: what.into() }
}

/// Applies `plan` in one atomic batch, or refuses with
/// [`DeclarativeError::StoreChangedSincePlan`] (nothing written) if the
/// applied record or any secret the plan read changed since. Audited under
/// `operator`'s principal: an intent record per object before the batch,
/// its outcome after. `operator`'s policies are not checked (the door
/// already grants everything); it names who acted. When an
/// [approval gate](crate::approvals) holds `apply_config`, a plan that
/// changes anything needs `operator` to carry an approved request
/// ([`Handle::with_approval`]), used up before the batch (so spent even if
/// the batch then finds the store changed); without one the apply fails
/// with the approval error and writes nothing. A plan of files with a
/// `[dynamic]` section needs [`apply_with`].
pub async fn apply(
    door: &Door,
    plan: &Plan,
    operator: &Handle,
) -> Result<ApplyReport, DeclarativeError> {
    apply_with(door, plan, operator, &[]).await
}

/// [`apply`], with the [`Section`]s of the plan's `[dynamic]` tables: each
/// section's record is conditioned on the plan's read of it and, when one
/// of its items changes, replaced by the section's
/// [`encode`](Section::encode) in the same batch.
pub async fn apply_with(
    door: &Door,
    plan: &Plan,
    operator: &Handle,
    sections: &[&dyn Section],
) -> Result<ApplyReport, DeclarativeError> {
    apply_reporting(door, plan, operator, sections, &|_, _| {}).await
}

/// [`apply_with`], calling `progress(done, total)` after each secret the
/// plan read is read again (the long part of an apply of many secrets),
/// for a progress line.
pub async fn apply_reporting(
    door: &Door,
    plan: &Plan,
    operator: &Handle,
    sections: &[&dyn Section],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ApplyReport, DeclarativeError> {
    if plan.declared.digest() != plan.declared_digest {
        return Err(DeclarativeError::BadRecord {
            what: "plan",
            reason: "its declared state does not match its digest".into(),
        });
    }
    let barrier = door.barrier();
    // 1. Everything the plan read must be as it was.
    let applied = read_record(door).await?;
    if applied.as_ref().map(|(_, raw)| digest(raw)) != plan.applied_digest {
        return Err(changed(DECLARED_RECORD));
    }
    let mut current = Vec::with_capacity(plan.reads.len());
    for (done, read) in plan.reads.iter().enumerate() {
        let path = SecretPath::parse(&read.path)?;
        let raw = metadata_plaintext(door.strongroom(), &path).await?;
        progress(done + 1, plan.reads.len());
        if raw
            .as_ref()
            .map(|r| digest(metadata_state(r.expose_secret())))
            != read.metadata_digest
        {
            return Err(changed(&read.path));
        }
        current.push((path, raw));
    }
    let mut section_records = Vec::with_capacity(plan.sections.len());
    for read in &plan.sections {
        let section = section::find(sections, &read.name)?;
        if section.record_key() != read.record_key {
            return Err(section::failed(&read.name)(format!(
                "the plan keeps it at {:?}, this program at {:?}",
                read.record_key,
                section.record_key()
            )));
        }
        let raw = barrier.get(&read.record_key).await?;
        if raw.as_ref().map(|r| digest(r)) != read.digest {
            return Err(changed(&read.record_key));
        }
        section_records.push((section, raw));
    }
    let revision = plan.applied_revision.unwrap_or(0);
    if plan.is_empty() {
        return Ok(ApplyReport {
            revision,
            written: false,
            generated: Vec::new(),
            metadata_updated: Vec::new(),
        });
    }

    // An approval gate on `apply_config` holds everything below: the
    // operator's approved request is used up before anything is written.
    crate::approvals::require(operator, crate::approvals::GatedOperation::ApplyConfig, "").await?;

    // 2. One batch: conditions on every read, then the writes.
    let store = door.secrets();
    // Wiped if an error drops it before it is sent: a metadata record's
    // plaintext can hold a value.
    let mut ops = UnsentOps(vec![BatchOp::expect(
        DECLARED_RECORD,
        applied.as_ref().map(|(_, raw)| raw.clone()),
    )]);
    let mut events = Vec::new();
    let mut report = ApplyReport {
        revision: revision + 1,
        written: true,
        generated: Vec::new(),
        metadata_updated: Vec::new(),
    };
    for (path, raw) in &current {
        let change = plan.secrets.iter().find(|s| s.path == path.as_str());
        let Some(change) = change else {
            ops.push(BatchOp::expect(
                metadata_key(path),
                raw.as_ref().map(|r| r.expose_secret().to_vec()),
            ));
            continue;
        };
        let spec = plan.declared.secrets.get(path.as_str()).ok_or_else(|| {
            DeclarativeError::BadRecord {
                what: "plan",
                reason: format!("secret {path} changes but is not declared"),
            }
        })?;
        let patch = patch_of(spec);
        let event = |op| -> Result<AuditEvent, Error> {
            Ok(
                AuditEvent::new(operator.principal().name(), op, new_request_id()?)
                    .with_secret_path(path),
            )
        };
        match (change.action, spec.generate) {
            (SecretAction::Generate, Some(g)) => {
                let value = random_value(g.length)?;
                ops.extend(
                    store
                        .conditional_metadata_ops(path, None, &patch, Some(value.expose_secret()))
                        .await?,
                );
                events.push(event(Operation::Write)?.with_version(1));
                report.generated.push(path.to_string());
            }
            (SecretAction::UpdateMetadata, _) => {
                ops.extend(
                    store
                        .conditional_metadata_ops(
                            path,
                            raw.as_ref().map(SecretBytes::expose_secret),
                            &patch,
                            None,
                        )
                        .await?,
                );
                events.push(event(Operation::WriteMetadata)?);
                report.metadata_updated.push(path.to_string());
            }
            (SecretAction::Generate, None) => {
                return Err(DeclarativeError::BadRecord {
                    what: "plan",
                    reason: format!("secret {path} is to be generated but has no generate"),
                });
            }
        }
    }
    for (section, raw) in &section_records {
        let name = section.name();
        let key = section.record_key();
        ops.push(BatchOp::expect(key, raw.clone()));
        let prefix = format!("{name}: ");
        let touched = plan
            .changes
            .iter()
            .any(|c| c.kind == Kind::Dynamic && c.name.starts_with(&prefix));
        if !touched {
            continue;
        }
        let table = plan
            .declared
            .dynamic
            .get(name)
            .ok_or_else(|| DeclarativeError::BadRecord {
                what: "plan",
                reason: format!("section {name} was read but is not declared"),
            })?;
        let bytes = section
            .encode(table, raw.as_deref(), operator.principal().name())
            .map_err(section::failed(name))?;
        ops.push(BatchOp::put(key, bytes));
        events.push(
            AuditEvent::new(
                operator.principal().name(),
                Operation::PolicyChange,
                new_request_id()?,
            )
            .with_path(key),
        );
    }
    let record = AppliedRecord {
        format: APPLIED_FORMAT,
        revision: report.revision,
        applied_by: operator.principal().name().to_owned(),
        applied_at: door.clock().now(),
        policies: plan.declared.policies.clone(),
        principals: plan.declared.principals.clone(),
        naming: plan.declared.naming.clone(),
        rotation: plan.declared.rotation.clone(),
        alerts: plan.declared.alerts.clone(),
    };
    let bytes = serde_json::to_vec(&record)
        .map_err(|e| Error::InvalidArgument(format!("applied record does not encode: {e}")))?;
    ops.push(BatchOp::put(DECLARED_RECORD, bytes));
    events.insert(
        0,
        AuditEvent::new(
            operator.principal().name(),
            Operation::PolicyChange,
            new_request_id()?,
        )
        .with_path(DECLARED_RECORD)
        .with_version(report.revision),
    );

    // 3. Intents on record before the store changes, then the batch, then
    // the outcomes.
    for e in &events {
        operator.audit_record(e.clone()).await?;
    }
    let result = barrier.batch(ops.send()).await;
    let outcome = match &result {
        Ok(()) => None,
        Err(e) => Some(Outcome::Error {
            kind: e.kind().to_owned(),
        }),
    };
    for e in events {
        let e = match &outcome {
            Some(o) => e.with_outcome(o.clone()),
            None => e,
        };
        operator.audit_record(e).await?;
    }
    match result {
        Ok(()) => Ok(report),
        Err(Error::StorageConflict { key }) => Err(changed(key)),
        Err(e) => Err(e.into()),
    }
}
