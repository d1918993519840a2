//! Output shared by several commands: key and version lines, Shamir shares.

use strongroom::keyring::KeyInfo;
use strongroom::secrets::VersionInfo;
use strongroom::shamir::Share;

/// One line of the key table (`status`).
pub(crate) fn print_key(k: &KeyInfo) {
    println!(
        "{:<8} {:<10} {:<18} {:<26} {}",
        k.version,
        k.state.to_string(),
        k.algorithm.to_string(),
        k.created.to_string(),
        k.encryptions_reserved
    );
}

/// One line of a secret's version facts.
pub(crate) fn print_version(v: &VersionInfo) {
    let mut line = format!("version {} created {}", v.version, v.created_at);
    if let Some(t) = v.deleted_at {
        line.push_str(&format!(", deleted {t}"));
    }
    if let Some(t) = v.destroyed_at {
        line.push_str(&format!(", destroyed {t}"));
    }
    println!("{line}");
}

/// The shares on stdout, one per line and nothing else, the warning on
/// stderr: they are shown once and stored nowhere.
pub(crate) fn print_shares(k: u8, shares: &[Share]) {
    eprintln!(
        "WARNING: the {} shares below are shown once and stored nowhere; {k} of them are needed to unseal. \
         Give each to a different holder now; lost shares cannot be recovered.",
        shares.len()
    );
    for s in shares {
        let text = s.to_text();
        println!("{}", text.expose_secret());
    }
}

/// JSON output (`--json`): one document on stdout, field names as the
/// README lists them; times as RFC 3339 strings.
pub(crate) mod json {
    use serde_json::{Value, json};
    use strongroom::clock::Timestamp;
    use strongroom::keyring::KeyInfo;
    use strongroom::secrets::{SecretMetadata, VersionInfo};

    fn time(t: Option<Timestamp>) -> Value {
        t.map_or(Value::Null, |t| Value::String(t.to_string()))
    }

    /// A version's facts.
    pub(crate) fn version(v: &VersionInfo) -> Value {
        json!({
            "version": v.version,
            "created_at": v.created_at.to_string(),
            "deleted_at": time(v.deleted_at),
            "destroyed_at": time(v.destroyed_at),
        })
    }

    /// A keyring key version.
    pub(crate) fn key(k: &KeyInfo) -> Value {
        json!({
            "version": k.version,
            "state": k.state.to_string(),
            "algorithm": k.algorithm.to_string(),
            "created_at": k.created.to_string(),
            "encryptions_reserved": k.encryptions_reserved,
        })
    }

    /// A secret's metadata.
    pub(crate) fn metadata(m: &SecretMetadata) -> Value {
        json!({
            "path": m.path.to_string(),
            "current_version": m.current_version,
            "oldest_version": m.oldest_version,
            "max_versions": m.max_versions,
            "effective_max_versions": m.effective_max_versions,
            "created_at": m.created_at.to_string(),
            "updated_at": m.updated_at.to_string(),
            "last_rotated_at": time(m.last_rotated_at),
            "owner": m.owner,
            "environment": m.environment,
            "tags": m.tags,
            "custom": m.custom,
            "rotation_interval_secs": m.rotation_interval.map(|d| d.as_secs()),
            "rotation_due_at": time(m.rotation_due_at()),
            "versions": m.versions.iter().map(version).collect::<Vec<_>>(),
        })
    }

    /// Prints `v` on one line.
    pub(crate) fn print(v: &Value) {
        println!("{v}");
    }
}
