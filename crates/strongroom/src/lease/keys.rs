//! Lease paths and engine names, checked, and the storage keys a lease
//! is kept under.

use super::*;

/// Validates a lease path: lower-case segments of `a-z`, `0-9`, `-`, `_`,
/// `.` separated by single slashes.
pub(super) fn validate_path(path: &str) -> Result<()> {
    let err = |reason| {
        Err(Error::InvalidPath {
            path: path.chars().take(MAX_PATH_LEN).collect(),
            reason,
        })
    };
    if path.is_empty() {
        return err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return err(PathError::TooLong { max: MAX_PATH_LEN });
    }
    let mut depth = 0;
    for seg in path.split('/') {
        depth += 1;
        if seg.is_empty() {
            return err(PathError::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return err(PathError::DotSegment);
        }
        for c in seg.chars() {
            if c.is_ascii_uppercase() {
                return err(PathError::UpperCase);
            }
            if !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.') {
                return err(PathError::BadCharacter(c));
            }
        }
    }
    if depth > MAX_PATH_DEPTH {
        return err(PathError::TooDeep {
            max: MAX_PATH_DEPTH,
        });
    }
    Ok(())
}

pub(super) fn validate_engine(engine: &str) -> Result<()> {
    if engine.is_empty()
        || engine.len() > MAX_ENGINE_LEN
        || !engine
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
    {
        return Err(LeaseError::InvalidEngine {
            engine: engine.chars().take(MAX_ENGINE_LEN).collect(),
        }
        .into());
    }
    Ok(())
}

/// Whether `path` lies under `prefix` by whole segments (`""` holds all).
pub(super) fn under_prefix(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub(super) fn rec_key(id: LeaseId) -> String {
    format!("{REC_PREFIX}{id}")
}

pub(super) fn path_key(path: &str, id: LeaseId) -> String {
    format!("{PATH_PREFIX}{path}/{id}")
}

pub(super) fn count_key(path: &str) -> String {
    format!("{COUNT_PREFIX}{path}")
}

/// Parses a legacy index key, `lease-exp/<16 hex>/lease_<32 hex>`.
pub(super) fn parse_legacy_exp_key(key: &str) -> Option<(Timestamp, LeaseId)> {
    let (t, id) = key.strip_prefix(LEGACY_EXP_PREFIX)?.split_once('/')?;
    if t.len() != 16 {
        return None;
    }
    let t = u64::from_str_radix(t, 16).ok()?;
    Some((Timestamp::from_millis(t), id.parse().ok()?))
}
