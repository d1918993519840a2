//! Metadata updates of a stored secret: Python keyword arguments to the
//! core's [`MetadataPatch`], and removal of a secret with all its versions.

use std::collections::{BTreeMap, BTreeSet};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use strongroom::secrets::MetadataPatch;

use crate::lease::{invalid, seconds};
use crate::store::{MetadataOut, Target};

/// The fields a patch may change.
const FIELDS: &str = "owner, environment, tags, custom, rotation_interval, max_versions";

/// A patch from keyword arguments: a field left out stays as it is; a
/// field given as `None` is cleared (`tags`/`custom`: emptied,
/// `max_versions`: back to the store default).
pub(crate) fn patch(changes: Option<&Bound<'_, PyDict>>) -> PyResult<MetadataPatch> {
    let mut p = MetadataPatch::new();
    let Some(changes) = changes else {
        return Ok(p);
    };
    for (k, v) in changes.iter() {
        let key: String = k.extract()?;
        let none = v.is_none();
        match key.as_str() {
            "owner" => p.owner = Some(if none { None } else { Some(v.extract()?) }),
            "environment" => p.environment = Some(if none { None } else { Some(v.extract()?) }),
            "tags" => {
                p.tags = Some(if none {
                    BTreeSet::new()
                } else {
                    v.extract::<Vec<String>>()?.into_iter().collect()
                });
            }
            "custom" => {
                p.custom = Some(if none { BTreeMap::new() } else { v.extract()? });
            }
            "rotation_interval" => {
                p.rotation_interval = Some(if none {
                    None
                } else {
                    Some(seconds("rotation_interval", &v)?)
                });
            }
            "max_versions" => p.max_versions = Some(if none { None } else { Some(v.extract()?) }),
            other => {
                return Err(invalid(format!(
                    "unknown metadata field {other:?}: the fields are {FIELDS}"
                )));
            }
        }
    }
    Ok(p)
}

/// Applies `patch` to the secret at `path`; the metadata after it.
pub(crate) async fn update(
    t: Target,
    path: String,
    patch: MetadataPatch,
) -> strongroom::Result<MetadataOut> {
    match &t {
        Target::Store(s) => s.secrets().update_metadata(&path, patch).await,
        Target::Handle(h) => h.update_metadata(&path, patch).await,
    }
    .map(MetadataOut)
}

/// Removes the secret at `path` with every version.
pub(crate) async fn delete(t: Target, path: String) -> strongroom::Result<()> {
    match &t {
        Target::Store(s) => s.secrets().delete_metadata(&path).await,
        Target::Handle(h) => h.delete_metadata(&path).await,
    }
}
