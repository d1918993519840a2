//! A metadata change as hosts express it: the fields to set, and the names
//! of the fields to reset, turned into the core's
//! [`MetadataPatch`] with one set of
//! checks for every binding.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use strongroom::secrets::MetadataPatch;

/// The fields [`MetadataUpdate::clear`] may name.
pub const CLEARABLE: [&str; 6] = [
    "owner",
    "environment",
    "tags",
    "custom",
    "rotation_interval",
    "max_versions",
];

/// What to change in a secret's metadata; fields left `None` (and not
/// named in `clear`) keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    /// New owner.
    pub owner: Option<String>,
    /// New environment.
    pub environment: Option<String>,
    /// New tag set (replaces the old one).
    pub tags: Option<BTreeSet<String>>,
    /// New custom key-values (replace the old ones).
    pub custom: Option<BTreeMap<String, String>>,
    /// New rotation interval.
    pub rotation_interval: Option<Duration>,
    /// New version limit; lowering it prunes the oldest versions at once.
    pub max_versions: Option<u32>,
    /// Fields to reset (see [`CLEARABLE`]): no owner, environment or
    /// rotation interval, no tags or custom values, the store's default
    /// version limit.
    pub clear: Vec<String>,
}

impl MetadataUpdate {
    /// The core's patch.
    ///
    /// # Errors
    ///
    /// [`strongroom::Error::InvalidArgument`] for an unknown name in
    /// `clear`, or a field both set and cleared. The core checks the
    /// values themselves when the patch is applied.
    pub fn into_patch(self) -> strongroom::Result<MetadataPatch> {
        let mut clear = BTreeSet::new();
        for name in &self.clear {
            if !CLEARABLE.contains(&name.as_str()) {
                return Err(strongroom::Error::InvalidArgument(format!(
                    "cannot clear metadata field {name:?}: use one of {}",
                    CLEARABLE.join(", ")
                )));
            }
            clear.insert(name.as_str());
        }
        let set = [
            ("owner", self.owner.is_some()),
            ("environment", self.environment.is_some()),
            ("tags", self.tags.is_some()),
            ("custom", self.custom.is_some()),
            ("rotation_interval", self.rotation_interval.is_some()),
            ("max_versions", self.max_versions.is_some()),
        ];
        if let Some((name, _)) = set.iter().find(|(n, is_set)| *is_set && clear.contains(n)) {
            return Err(strongroom::Error::InvalidArgument(format!(
                "metadata field {name:?} is both set and cleared"
            )));
        }
        let mut patch = MetadataPatch::new();
        patch.owner = pick(&clear, "owner", self.owner);
        patch.environment = pick(&clear, "environment", self.environment);
        patch.rotation_interval = pick(&clear, "rotation_interval", self.rotation_interval);
        patch.max_versions = pick(&clear, "max_versions", self.max_versions);
        patch.tags = if clear.contains("tags") {
            Some(BTreeSet::new())
        } else {
            self.tags
        };
        patch.custom = if clear.contains("custom") {
            Some(BTreeMap::new())
        } else {
            self.custom
        };
        Ok(patch)
    }
}

/// A field of the patch: reset if cleared, else set if given, else kept.
fn pick<T>(clear: &BTreeSet<&str>, name: &str, v: Option<T>) -> Option<Option<T>> {
    if clear.contains(name) {
        Some(None)
    } else {
        v.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keep_and_clear() {
        let p = MetadataUpdate {
            owner: Some("payments".into()),
            clear: vec!["environment".into(), "tags".into()],
            ..MetadataUpdate::default()
        }
        .into_patch()
        .ok();
        let p = p.as_ref();
        assert_eq!(
            p.and_then(|p| p.owner.clone()),
            Some(Some("payments".into()))
        );
        assert_eq!(p.and_then(|p| p.environment.clone()), Some(None));
        assert_eq!(p.and_then(|p| p.tags.clone()), Some(BTreeSet::new()));
        assert_eq!(p.and_then(|p| p.max_versions), None);
        for bad in [
            MetadataUpdate {
                clear: vec!["path".into()],
                ..MetadataUpdate::default()
            },
            MetadataUpdate {
                owner: Some("x".into()),
                clear: vec!["owner".into()],
                ..MetadataUpdate::default()
            },
        ] {
            assert!(matches!(
                bad.into_patch(),
                Err(strongroom::Error::InvalidArgument(_))
            ));
        }
    }
}
