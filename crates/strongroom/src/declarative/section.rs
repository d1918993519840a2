//! Sections kept by other crates: a `[dynamic.<name>]` table of the files,
//! planned and applied with the rest, stored in a barrier record of its
//! own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DeclarativeError;

/// A part of the declared state that another crate defines and stores,
/// such as the PostgreSQL role catalog of `strongroom-sqlx`: the files'
/// `[dynamic.<name>]` table, kept in one barrier record at
/// [`record_key`](Section::record_key).
///
/// The plan compares the section's items (named parts, such as one role
/// definition each) in the files with those of the stored record, and
/// apply writes [`encode`](Section::encode)'s record in the same atomic
/// batch as everything else, conditioned on the record as the plan read
/// it. A section the files do not declare is left alone. Errors are
/// reasons that never quote a value.
pub trait Section: Send + Sync {
    /// The table's name under `[dynamic]`.
    fn name(&self) -> &str;

    /// The storage key of the barrier record the section keeps.
    fn record_key(&self) -> &str;

    /// Checks the declared table (as JSON) and returns its items by name.
    ///
    /// # Errors
    ///
    /// Why the table does not check.
    fn items(
        &self,
        declared: &serde_json::Value,
    ) -> Result<BTreeMap<String, serde_json::Value>, String>;

    /// The items of the stored record, `raw` as read through the barrier.
    ///
    /// # Errors
    ///
    /// Why the record does not decode.
    fn stored_items(&self, raw: &[u8]) -> Result<BTreeMap<String, serde_json::Value>, String>;

    /// The record to store for the declared table, replacing `stored`
    /// (`None`: there is none yet), written by principal `written_by`.
    ///
    /// # Errors
    ///
    /// Why the table or the stored record does not check.
    fn encode(
        &self,
        declared: &serde_json::Value,
        stored: Option<&[u8]>,
        written_by: &str,
    ) -> Result<Vec<u8>, String>;
}

/// What the plan read of a declared section's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionRead {
    /// The section's name.
    pub name: String,
    /// Its record's storage key.
    pub record_key: String,
    /// SHA-256 of the record as read (`None`: absent).
    pub digest: Option<String>,
}

/// The section named `name` among `sections`.
pub(super) fn find<'a>(
    sections: &[&'a dyn Section],
    name: &str,
) -> Result<&'a dyn Section, DeclarativeError> {
    sections
        .iter()
        .copied()
        .find(|s| s.name() == name)
        .ok_or_else(|| DeclarativeError::UnknownSection {
            name: name.to_owned(),
        })
}

/// Turns a section's reason into the error naming it.
pub(super) fn failed(name: &str) -> impl Fn(String) -> DeclarativeError + '_ {
    move |reason| DeclarativeError::Section {
        name: name.to_owned(),
        reason,
    }
}
