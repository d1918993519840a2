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
