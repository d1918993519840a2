//! Generated role names, `<prefix><definition>_<16 hex digits>`, and the
//! checks every role name passes before a statement names it.
//!
//! Statements that touch a role take an [`EngineRole`], which only this
//! file makes: freshly generated, read from storage and found to be exactly
//! of the generated form for its definition, or listed by the server under
//! the engine's prefix.

use super::definition::validate_definition_name;
use super::error::{PgDynError, PgDynResult};
use super::{MAX_IDENTIFIER_BYTES, SUFFIX_HEX};

/// A role name this engine may act on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct EngineRole(String);

impl EngineRole {
    /// A fresh name for a role of `definition`.
    pub(super) fn generate(prefix: &str, definition: &str) -> PgDynResult<Self> {
        let mut b = [0u8; SUFFIX_HEX / 2];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .map_err(|_| strongroom::Error::Random)?;
        let suffix: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(Self(format!(
            "{prefix}{}_{suffix}",
            stem(prefix, definition)
        )))
    }

    /// A role name read from storage (record `key`), accepted only if it is
    /// exactly what [`EngineRole::generate`] makes for `definition` under
    /// `prefix`.
    pub(super) fn check(
        prefix: &str,
        definition: &str,
        role: &str,
        key: &str,
    ) -> PgDynResult<Self> {
        let refuse = |reason| PgDynError::ForeignRole {
            key: key.to_owned(),
            role: role.chars().take(80).collect(),
            reason,
        };
        if validate_definition_name(definition).is_err() {
            return Err(refuse("the definition it names is not a valid name"));
        }
        let suffix = role
            .strip_prefix(prefix)
            .ok_or_else(|| refuse("it does not carry the engine's prefix"))?
            .strip_prefix(stem(prefix, definition))
            .and_then(|rest| rest.strip_prefix('_'))
            .ok_or_else(|| refuse("it is not a name generated for its definition"))?;
        if role.len() > MAX_IDENTIFIER_BYTES
            || suffix.len() != SUFFIX_HEX
            || !suffix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(refuse("it is not a name generated for its definition"));
        }
        Ok(Self(role.to_owned()))
    }

    /// A role the server listed as starting with `prefix`.
    pub(super) fn listed(prefix: &str, role: &str) -> Option<Self> {
        (!prefix.is_empty() && role.starts_with(prefix) && role.len() <= MAX_IDENTIFIER_BYTES)
            .then(|| Self(role.to_owned()))
    }

    /// The definition part of a generated name (`None` if the name is not
    /// of the generated form). Definition names longer than the room left
    /// appear cut.
    pub(super) fn stem_of<'a>(prefix: &str, role: &'a str) -> Option<&'a str> {
        let rest = role.strip_prefix(prefix)?;
        let cut = rest.len().checked_sub(SUFFIX_HEX + 1)?;
        let (stem, suffix) = rest.split_at_checked(cut)?;
        let hex = suffix.strip_prefix('_')?;
        (!stem.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then_some(stem)
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    pub(super) fn into_string(self) -> String {
        self.0
    }
}

/// The part of `definition` that fits in a role name under `prefix`.
/// Definition names are ASCII, so any cut is on a character boundary.
pub(super) fn stem<'a>(prefix: &str, definition: &'a str) -> &'a str {
    let room = MAX_IDENTIFIER_BYTES
        .saturating_sub(prefix.len())
        .saturating_sub(1 + SUFFIX_HEX);
    definition
        .get(..room.min(definition.len()))
        .unwrap_or(definition)
}
