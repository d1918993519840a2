//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a
//! public API and not covered by semver).
//!
//! Thin wrappers around the crate-private decoders of what the dynamic
//! PostgreSQL credentials engine stores (revocation data inside lease
//! records, version 1 intent records) and around the SQLite file header
//! check. Decoded values come back as their `Debug` text, which is equal
//! exactly when the values are.

use std::path::Path;

use crate::dynamic::PgDynResult;
use crate::dynamic::record::{self, RecordKey, RoleRef, StoredRef, V2};

/// The record key the revocation-data wrappers authenticate with.
const RECORD_KEY: [u8; 32] = [0x5a; 32];
/// The name decoders give the record in errors.
const KEY: &str = "lease_fuzz";

/// Reads revocation data of a lease of `engine` at `path` as the engine
/// does before it revokes: version 2 is checked against the fixed record
/// key and decoded, version 1 is decoded unauthenticated.
pub fn parse_revocation_data(engine: &str, path: &str, data: &[u8]) -> PgDynResult<String> {
    let stored: StoredRef = if record::version_of(KEY, data)? == V2 {
        RecordKey::from_bytes(&RECORD_KEY)
            .open_revocation(KEY, engine, path, data)?
            .into()
    } else {
        record::legacy_revocation(KEY, data)?
    };
    Ok(format!("{stored:?}"))
}

/// The role a revocation record claims, read without checking its tag (what
/// the sweep leaves alone).
pub fn unverified_role(data: &[u8]) -> Option<String> {
    record::unverified_role(data)
}

/// Decodes `body` as the role reference of version 2 revocation data (the
/// bytes between the version byte and the tag) and seals it as the engine
/// does for a lease of `engine` at `path`: the sealed data and the `Debug`
/// text [`parse_revocation_data`] must give back for it.
pub fn seal_revocation_body(engine: &str, path: &str, body: &[u8]) -> Option<(Vec<u8>, String)> {
    let role = match postcard::take_from_bytes::<RoleRef>(body) {
        Ok((role, [])) => role,
        _ => return None,
    };
    let sealed = RecordKey::from_bytes(&RECORD_KEY)
        .seal_revocation(engine, path, &role)
        .ok()?;
    Some((sealed, format!("{:?}", StoredRef::from(role))))
}

/// Decodes a version 1 (plain) intent record, as the sweep reads one.
pub fn parse_legacy_intent(bytes: &[u8]) -> PgDynResult<String> {
    record::legacy_intent("pgdyn/intent/fuzz", bytes).map(|i| format!("{i:?}"))
}

/// The check `SqliteStore::open` makes of an existing file's header (and
/// size, and `-wal` sibling) before SQLite opens it.
pub fn check_sqlite_file(path: &Path) -> strongroom::Result<()> {
    crate::sqlite::check_file(path)
}
