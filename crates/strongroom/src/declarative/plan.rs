//! Planning: the differences between the declared state and the store, what
//! the plan read (so apply can refuse a changed store), and drift.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::document::{digest, format_interval};
use super::section::{self, Section, SectionRead};
use super::state::read_record;
use super::{DeclarativeError, Declared, RotationSpec, SecretSpec};
use crate::dangerous::Door;
use crate::path::SecretPath;
use crate::secrets::{
    MetadataPatch, SecretError, SecretMetadata, metadata_plaintext, metadata_state,
};

/// Format version of a serialised [`Plan`].
pub const PLAN_FORMAT: u32 = 1;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Declared, not yet in the store.
    Create,
    /// In both, different.
    Update,
    /// In the store, no longer declared.
    Delete,
}

/// What kind of object a [`Change`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A policy.
    Policy,
    /// A principal.
    Principal,
    /// A naming rule.
    NamingRule,
    /// A rotation schedule.
    RotationSchedule,
    /// An item of a `[dynamic.<name>]` section, named `<name>: <item>`.
    Dynamic,
    /// The alert rules (one object, named `alerts`).
    AlertRules,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Policy => "policy",
            Self::Principal => "principal",
            Self::NamingRule => "naming rule",
            Self::RotationSchedule => "rotation schedule",
            Self::Dynamic => "dynamic",
            Self::AlertRules => "alert rules",
        })
    }
}

/// A policy, principal, naming rule, rotation schedule or section item that
/// differs from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What kind of object.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// What happens to it.
    pub action: Action,
}

/// What happens to a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretAction {
    /// Created with a random value (`generate`) and the declared metadata.
    Generate,
    /// Its metadata is set to the declared one.
    UpdateMetadata,
}

/// One metadata field: its value in the store and in the files (values
/// shown as text; never a secret's value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `owner`, `environment`, `tags`, `rotation_interval` or
    /// `max_versions`.
    pub field: String,
    /// In the store (`None`: unset).
    pub from: Option<String>,
    /// In the files (`None`: unset).
    pub to: Option<String>,
}

/// A secret whose metadata (or existence) differs from the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretChange {
    /// The secret's path.
    pub path: String,
    /// What happens to it.
    pub action: SecretAction,
    /// The fields that change.
    pub fields: Vec<FieldChange>,
    /// For [`SecretAction::Generate`]: the generated value's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_length: Option<u32>,
}

/// What the plan read of one declared secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRead {
    /// The secret's path.
    pub path: String,
    /// SHA-256 of its metadata record as read (`None`: absent).
    pub metadata_digest: Option<String>,
    /// Its current version as read (`None`: absent).
    pub current_version: Option<u64>,
}

/// The differences between declared state and a store, with what was read
/// to find them. Serialises to JSON with these field names (stable within
/// [`PLAN_FORMAT`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// [`PLAN_FORMAT`].
    pub format: u32,
    /// [`Declared::digest`] of the files planned from.
    pub declared_digest: String,
    /// The declared state itself (no secret values).
    pub declared: Declared,
    /// The applied record's revision as read (`None`: never applied).
    pub applied_revision: Option<u64>,
    /// SHA-256 of the applied record as read.
    pub applied_digest: Option<String>,
    /// Policies, principals, naming rules, rotation schedules and section
    /// items that change.
    pub changes: Vec<Change>,
    /// Secrets that change.
    pub secrets: Vec<SecretChange>,
    /// Declared secrets that do not exist and have no `generate`: nothing
    /// is done for them (their metadata is set by the first apply after
    /// they are written).
    pub missing: Vec<String>,
    /// Every declared secret as read.
    pub reads: Vec<SecretRead>,
    /// Every declared section's record as read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<SectionRead>,
}

impl Plan {
    /// Whether applying changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.secrets.is_empty()
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A plan read back from [`Plan::to_json`].
    pub fn from_json(text: &str) -> Result<Self, DeclarativeError> {
        let bad = |reason: String| DeclarativeError::BadRecord {
            what: "plan",
            reason,
        };
        let plan: Self = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if plan.format != PLAN_FORMAT {
            return Err(bad(format!("unsupported plan format {}", plan.format)));
        }
        if plan.declared.digest() != plan.declared_digest {
            return Err(bad("its declared state does not match its digest".into()));
        }
        Ok(plan)
    }

    /// Checks that this plan was made from `declared` (e.g. the files of
    /// the reviewed commit).
    pub fn matches(&self, declared: &Declared) -> Result<(), DeclarativeError> {
        let files = declared.digest();
        if files == self.declared_digest {
            Ok(())
        } else {
            Err(DeclarativeError::PlanDoesNotMatchFiles {
                plan: self.declared_digest.clone(),
                files,
            })
        }
    }
}

fn quoted(s: &Option<String>) -> String {
    s.as_ref().map_or("(unset)".into(), |v| format!("{v:?}"))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            writeln!(f, "No changes: the store matches the declaration files.")?;
        }
        let (mut add, mut change, mut remove) = (0, 0, 0);
        for c in &self.changes {
            let sign = match c.action {
                Action::Create => {
                    add += 1;
                    '+'
                }
                Action::Update => {
                    change += 1;
                    '~'
                }
                Action::Delete => {
                    remove += 1;
                    '-'
                }
            };
            writeln!(f, "  {sign} {} {:?}", c.kind, c.name)?;
        }
        for s in &self.secrets {
            match s.action {
                SecretAction::Generate => {
                    add += 1;
                    writeln!(
                        f,
                        "  + secret {} (value generated on apply: {} characters, never shown)",
                        s.path,
                        s.generate_length.unwrap_or(0)
                    )?;
                }
                SecretAction::UpdateMetadata => {
                    change += 1;
                    writeln!(f, "  ~ secret {}", s.path)?;
                }
            }
            for fc in &s.fields {
                writeln!(
                    f,
                    "      {}: {} -> {}",
                    fc.field,
                    quoted(&fc.from),
                    quoted(&fc.to)
                )?;
            }
        }
        for m in &self.missing {
            writeln!(
                f,
                "  ! secret {m}: declared but not in the store (no generate): nothing to do"
            )?;
        }
        if !self.is_empty() {
            writeln!(
                f,
                "Plan: {add} to add, {change} to change, {remove} to remove."
            )?;
        }
        Ok(())
    }
}

/// The patch that makes a secret's metadata what `spec` declares.
pub(super) fn patch_of(spec: &SecretSpec) -> MetadataPatch {
    let mut p = MetadataPatch::new();
    p.owner = Some(spec.owner.clone());
    p.environment = Some(spec.environment.clone());
    p.tags = Some(spec.tags.clone());
    p.rotation_interval = Some(spec.rotation_interval_secs.map(Duration::from_secs));
    p.max_versions = Some(spec.max_versions);
    p
}

fn tags_text(tags: &std::collections::BTreeSet<String>) -> Option<String> {
    (!tags.is_empty()).then(|| tags.iter().cloned().collect::<Vec<_>>().join(", "))
}

/// The fields where `current` (`None`: absent) differs from `spec`.
fn field_changes(current: Option<&SecretMetadata>, spec: &SecretSpec) -> Vec<FieldChange> {
    let store = |f: fn(&SecretMetadata) -> Option<String>| current.and_then(f);
    let rows = [
        ("owner", store(|m| m.owner.clone()), spec.owner.clone()),
        (
            "environment",
            store(|m| m.environment.clone()),
            spec.environment.clone(),
        ),
        ("tags", store(|m| tags_text(&m.tags)), tags_text(&spec.tags)),
        (
            "rotation_interval",
            store(|m| m.rotation_interval.map(|d| format_interval(d.as_secs()))),
            spec.rotation_interval_secs.map(format_interval),
        ),
        (
            "max_versions",
            store(|m| m.max_versions.map(|n| n.to_string())),
            spec.max_versions.map(|n| n.to_string()),
        ),
    ];
    rows.into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| FieldChange {
            field: field.into(),
            from,
            to,
        })
        .collect()
}

/// Reads a secret's metadata and the digest of the very record it came
/// from (read again until two reads agree).
async fn read_secret(
    door: &Door,
    path: &SecretPath,
) -> Result<(Option<SecretMetadata>, Option<String>), DeclarativeError> {
    let sr = door.strongroom();
    let store = door.secrets();
    for _ in 0..8 {
        let before = metadata_plaintext(sr, path).await?;
        let meta = match store.metadata(path.as_str()).await {
            Ok(m) => Some(m),
            Err(crate::Error::Secret(SecretError::NotFound { .. })) => None,
            Err(e) => return Err(e.into()),
        };
        let after = metadata_plaintext(sr, path).await?;
        if before == after {
            return Ok((
                meta,
                after.map(|raw| digest(metadata_state(raw.expose_secret()))),
            ));
        }
    }
    Err(crate::Error::from(SecretError::Contended {
        path: path.as_str().to_owned(),
        attempts: 8,
    })
    .into())
}

fn diff_maps<V: PartialEq>(
    kind: Kind,
    declared: &BTreeMap<String, V>,
    applied: Option<&BTreeMap<String, V>>,
    out: &mut Vec<Change>,
) {
    let empty = BTreeMap::new();
    let applied = applied.unwrap_or(&empty);
    for (name, v) in declared {
        let action = match applied.get(name) {
            None => Action::Create,
            Some(a) if a != v => Action::Update,
            Some(_) => continue,
        };
        out.push(Change {
            kind,
            name: name.clone(),
            action,
        });
    }
    for name in applied.keys().filter(|n| !declared.contains_key(*n)) {
        out.push(Change {
            kind,
            name: name.clone(),
            action: Action::Delete,
        });
    }
}

/// The plan that makes the store what `declared` says: see the
/// [module docs](super). Reads only. Files that declare a `[dynamic]`
/// section need [`plan_with`].
pub async fn plan(door: &Door, declared: &Declared) -> Result<Plan, DeclarativeError> {
    plan_with(door, declared, &[]).await
}

/// [`plan`], with the [`Section`]s that check and store the files'
/// `[dynamic.<name>]` tables; a declared table with no section of its name
/// is [`DeclarativeError::UnknownSection`].
pub async fn plan_with(
    door: &Door,
    declared: &Declared,
    sections: &[&dyn Section],
) -> Result<Plan, DeclarativeError> {
    plan_reporting(door, declared, sections, &|_, _| {}).await
}

/// [`plan_with`], calling `progress(done, total)` after each declared
/// secret it reads (the long part of a plan of many secrets), for a
/// progress line.
pub async fn plan_reporting(
    door: &Door,
    declared: &Declared,
    sections: &[&dyn Section],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Plan, DeclarativeError> {
    let applied = read_record(door).await?;
    let rec = applied.as_ref().map(|(r, _)| r);
    let mut changes = Vec::new();
    diff_maps(
        Kind::Policy,
        &declared.policies,
        rec.map(|r| &r.policies),
        &mut changes,
    );
    diff_maps(
        Kind::Principal,
        &declared.principals,
        rec.map(|r| &r.principals),
        &mut changes,
    );
    diff_maps(
        Kind::NamingRule,
        &declared.naming.rules,
        rec.map(|r| &r.naming.rules),
        &mut changes,
    );
    diff_maps::<RotationSpec>(
        Kind::RotationSchedule,
        &declared.rotation,
        rec.map(|r| &r.rotation),
        &mut changes,
    );
    let one = |v: &Option<serde_json::Value>| -> BTreeMap<String, serde_json::Value> {
        v.iter().map(|v| ("alerts".to_owned(), v.clone())).collect()
    };
    diff_maps(
        Kind::AlertRules,
        &one(&declared.alerts),
        rec.map(|r| one(&r.alerts)).as_ref(),
        &mut changes,
    );
    let mut section_reads = Vec::new();
    for (name, table) in &declared.dynamic {
        let section = section::find(sections, name)?;
        let failed = section::failed(name);
        let declared_items = section.items(table).map_err(&failed)?;
        let raw = door.barrier().get(section.record_key()).await?;
        let stored_items = match &raw {
            Some(raw) => Some(section.stored_items(raw).map_err(&failed)?),
            None => None,
        };
        let mut items = Vec::new();
        diff_maps(
            Kind::Dynamic,
            &declared_items,
            stored_items.as_ref(),
            &mut items,
        );
        changes.extend(items.into_iter().map(|mut c| {
            c.name = format!("{name}: {}", c.name);
            c
        }));
        section_reads.push(SectionRead {
            name: name.clone(),
            record_key: section.record_key().to_owned(),
            digest: raw.as_ref().map(|r| digest(r)),
        });
    }
    let (mut secrets, mut missing, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    let total = declared.secrets.len();
    for (done, (path, spec)) in declared.secrets.iter().enumerate() {
        let p = SecretPath::parse(path)?;
        let (meta, metadata_digest) = read_secret(door, &p).await?;
        progress(done + 1, total);
        reads.push(SecretRead {
            path: path.clone(),
            metadata_digest,
            current_version: meta.as_ref().map(|m| m.current_version),
        });
        let fields = field_changes(meta.as_ref(), spec);
        match (&meta, spec.generate) {
            (None, Some(g)) => secrets.push(SecretChange {
                path: path.clone(),
                action: SecretAction::Generate,
                fields,
                generate_length: Some(g.length),
            }),
            (None, None) => missing.push(path.clone()),
            (Some(_), _) if !fields.is_empty() => secrets.push(SecretChange {
                path: path.clone(),
                action: SecretAction::UpdateMetadata,
                fields,
                generate_length: None,
            }),
            (Some(_), _) => {}
        }
    }
    Ok(Plan {
        format: PLAN_FORMAT,
        declared_digest: declared.digest(),
        declared: declared.clone(),
        applied_revision: rec.map(|r| r.revision),
        applied_digest: applied.as_ref().map(|(_, raw)| digest(raw)),
        changes,
        secrets,
        missing,
        reads,
        sections: section_reads,
    })
}

/// Changes made outside the declaration files: where the store (the
/// applied record, secrets' metadata) differs from what the files say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Drift {
    /// The applied record's revision (`None`: never applied).
    pub applied_revision: Option<u64>,
    /// Policies, principals, naming rules, rotation schedules and section
    /// items that differ from the store (`create`: declared, not in the
    /// store; `delete`: in the store, no longer declared).
    pub changes: Vec<Change>,
    /// Secrets whose metadata differs (`from`: the store, `to`: the
    /// files), and generated secrets missing from the store.
    pub secrets: Vec<SecretChange>,
}

impl Drift {
    /// Whether the store matches the files.
    pub fn is_clean(&self) -> bool {
        self.changes.is_empty() && self.secrets.is_empty()
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return writeln!(f, "No drift: the store matches the declaration files.");
        }
        for c in &self.changes {
            // a section's items are in its own record, the rest in the
            // applied record
            let held = match c.kind {
                Kind::Dynamic => "the store",
                _ => "the applied record",
            };
            match c.action {
                Action::Create => {
                    writeln!(f, "  {} {:?}: declared, not in {held}", c.kind, c.name)?
                }
                Action::Update => writeln!(f, "  {} {:?}: differs from {held}", c.kind, c.name)?,
                Action::Delete => writeln!(
                    f,
                    "  {} {:?}: in {held}, no longer declared",
                    c.kind, c.name
                )?,
            }
        }
        for s in &self.secrets {
            if s.action == SecretAction::Generate {
                writeln!(
                    f,
                    "  secret {}: declared with generate, not in the store",
                    s.path
                )?;
                continue;
            }
            for fc in &s.fields {
                writeln!(
                    f,
                    "  secret {}: {} is {} in the store, {} in the files",
                    s.path,
                    fc.field,
                    quoted(&fc.from),
                    quoted(&fc.to)
                )?;
            }
        }
        Ok(())
    }
}

/// What differs between the store and `declared`: see [`Drift`]. Reads
/// only. Files that declare a `[dynamic]` section need [`drift_with`].
pub async fn drift(door: &Door, declared: &Declared) -> Result<Drift, DeclarativeError> {
    drift_with(door, declared, &[]).await
}

/// [`drift`], with the [`Section`]s of the files' `[dynamic]` tables.
pub async fn drift_with(
    door: &Door,
    declared: &Declared,
    sections: &[&dyn Section],
) -> Result<Drift, DeclarativeError> {
    let p = plan_with(door, declared, sections).await?;
    Ok(Drift {
        applied_revision: p.applied_revision,
        changes: p.changes,
        secrets: p.secrets,
    })
}
