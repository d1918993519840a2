//! The applied record: the policies, principals and naming rules last
//! applied, stored sealed at [`DECLARED_RECORD`] with a revision number.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DeclarativeError, NamingRules, PolicySpec, RotationSpec};
use crate::clock::Timestamp;
use crate::dangerous::Door;
use crate::policy::{PolicyRegistry, Principal};

/// The storage key of the applied record (a barrier record: sealed under
/// the keyring and bound to this key, like every record of the library).
pub const DECLARED_RECORD: &str = "sys/declared";

/// Format version of the applied record.
pub const APPLIED_FORMAT: u8 = 1;

/// The applied record as stored (JSON inside the barrier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AppliedRecord {
    pub(super) format: u8,
    pub(super) revision: u64,
    pub(super) applied_by: String,
    pub(super) applied_at: Timestamp,
    #[serde(default)]
    pub(super) policies: BTreeMap<String, PolicySpec>,
    #[serde(default)]
    pub(super) principals: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) naming: NamingRules,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) rotation: BTreeMap<String, RotationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) alerts: Option<serde_json::Value>,
}

impl AppliedRecord {
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, DeclarativeError> {
        let bad = |reason: String| DeclarativeError::BadRecord {
            what: DECLARED_RECORD,
            reason,
        };
        let rec: Self = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if rec.format != APPLIED_FORMAT {
            return Err(bad(format!("unsupported format {}", rec.format)));
        }
        Ok(rec)
    }
}

/// Reads the applied record and its plaintext (`None`: never applied).
pub(super) async fn read_record(
    door: &Door,
) -> Result<Option<(AppliedRecord, Vec<u8>)>, DeclarativeError> {
    match door.barrier().get(DECLARED_RECORD).await? {
        Some(raw) => Ok(Some((AppliedRecord::decode(&raw)?, raw))),
        None => Ok(None),
    }
}

/// One part of the applied record, read from the store by a caller that
/// needs only that part (the other fields are skipped, not built): `None`
/// when nothing was applied. An applied record that does not decode is a
/// corrupt record.
async fn applied_part<T: serde::de::DeserializeOwned>(
    sr: &crate::Strongroom,
) -> crate::Result<Option<T>> {
    /// The record's format and the part `T` names.
    #[derive(Deserialize)]
    struct Part<T> {
        format: u8,
        #[serde(flatten)]
        part: T,
    }
    let Some(raw) = sr.barrier().get(DECLARED_RECORD).await? else {
        return Ok(None);
    };
    let corrupt = |reason: String| crate::Error::corrupt(DECLARED_RECORD, reason);
    let rec: Part<T> = serde_json::from_slice(&raw).map_err(|e| corrupt(e.to_string()))?;
    if rec.format != APPLIED_FORMAT {
        return Err(corrupt(format!("unsupported format {}", rec.format)));
    }
    Ok(Some(rec.part))
}

/// Checks `path` against the applied naming rules, read from the store
/// (one barrier read per call, so a rule applied by another process holds
/// for the next write): `Ok` when nothing was applied, no rule is set or a
/// rule matches; [`Error::Naming`](crate::Error::Naming) otherwise. An
/// applied record that does not decode is a corrupt record.
pub(crate) async fn check_naming(sr: &crate::Strongroom, path: &str) -> crate::Result<()> {
    #[derive(Deserialize)]
    struct NamingOnly {
        #[serde(default)]
        naming: NamingRules,
    }
    match applied_part::<NamingOnly>(sr).await? {
        Some(rec) => rec.naming.check(path).map_err(crate::Error::from),
        None => Ok(()),
    }
}

/// The applied rotation schedule of credential `name`, read from the store
/// (one barrier read per call, so a schedule applied by another process
/// holds from the engine's next look): `None` when nothing was applied or
/// no schedule names it. An applied record that does not decode is a
/// corrupt record.
pub(crate) async fn applied_rotation(
    sr: &crate::Strongroom,
    name: &str,
) -> crate::Result<Option<RotationSpec>> {
    #[derive(Deserialize)]
    struct RotationOnly {
        #[serde(default)]
        rotation: BTreeMap<String, RotationSpec>,
    }
    Ok(applied_part::<RotationOnly>(sr)
        .await?
        .and_then(|mut rec| rec.rotation.remove(name)))
}

/// The state last applied, read back for an application to build its
/// principals (and check its paths) from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Applied {
    /// The revision (1 for the first apply, then one more per apply).
    pub revision: u64,
    /// The principal that applied it.
    pub applied_by: String,
    /// When.
    pub applied_at: Timestamp,
    /// The policies.
    pub policies: PolicyRegistry,
    /// Principals by name: the names of their policies.
    pub principals: BTreeMap<String, Vec<String>>,
    /// The naming rules.
    pub naming: NamingRules,
    /// Rotation schedules by credential name.
    pub rotation: BTreeMap<String, RotationSpec>,
    /// The alert rules, for an
    /// [`AlertEngine`](crate::alerts::AlertEngine) (`None`: none applied).
    pub alerts: Option<crate::alerts::AlertConfig>,
}

impl Applied {
    /// Reads the applied record (one storage read); `None` if nothing was
    /// ever applied.
    pub async fn load(door: &Door) -> Result<Option<Self>, DeclarativeError> {
        let Some((rec, _)) = read_record(door).await? else {
            return Ok(None);
        };
        let mut policies = PolicyRegistry::new();
        for (name, spec) in &rec.policies {
            let policy = spec
                .to_policy(name)
                .map_err(|e| DeclarativeError::BadRecord {
                    what: DECLARED_RECORD,
                    reason: e.to_string(),
                })?;
            policies.insert(policy);
        }
        let alerts = match rec.alerts {
            None => None,
            Some(value) => {
                let bad = |reason: String| DeclarativeError::BadRecord {
                    what: DECLARED_RECORD,
                    reason,
                };
                let config: crate::alerts::AlertConfig =
                    serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
                config.validate().map_err(|e| bad(e.to_string()))?;
                Some(config)
            }
        };
        Ok(Some(Self {
            alerts,
            revision: rec.revision,
            applied_by: rec.applied_by,
            applied_at: rec.applied_at,
            policies,
            principals: rec.principals,
            naming: rec.naming,
            rotation: rec.rotation,
        }))
    }

    /// The applied principal `name` with its policies, or `None` if no
    /// principal of that name was applied.
    pub fn principal(&self, name: &str) -> Option<Principal> {
        let names = self.principals.get(name)?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.policies.principal(name, &names).ok()
    }
}
