//! Secrets: `put`, `get`, `list`, `delete`, `undelete`, `destroy`,
//! `metadata`, `purge`. Each acts as the operator through the library's
//! principal-bound handle, so each is audited before it takes effect and
//! before anything is printed (`list` records itself, in the same shape).

use std::io::{Read as _, Write as _};

use strongroom::audit::Operation;
use strongroom::secrets::MetadataPatch;
use strongroom_host::metadata::MetadataUpdate;
use zeroize::Zeroizing;

use crate::args::{ApprovalArg, GetArgs, ListArgs, MetadataArgs, PurgeArgs, PutArgs, VersionsArgs};
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::print::{json, print_version};

/// The largest value `put` reads from stdin (16 MiB).
const MAX_VALUE_LEN: u64 = 16 * 1024 * 1024;

/// `put`: the value comes from stdin.
pub(crate) async fn put(a: PutArgs) -> CliResult {
    // The value comes from stdin, so the PIN (if any) must come from a file.
    let (open, op) = Operator::unseal(&a.store, &a.operator, false).await?;
    let mut value = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_VALUE_LEN + 1)
        .read_to_end(&mut value)
        .map_err(|e| Failure::Io(format!("cannot read the value from stdin: {e}")))?;
    if value.len() as u64 > MAX_VALUE_LEN {
        return Err(Failure::Usage(format!(
            "the value on stdin is longer than {MAX_VALUE_LEN} bytes"
        )));
    }
    if value.is_empty() && !a.allow_empty {
        return Err(Failure::EmptyValue);
    }
    crate::commands::declarative::check_naming(&open.sr, [a.path.as_str()]).await?;
    // audited with the value's HMAC before the store is touched
    let info = audited(op.secrets().put(&a.path, &value, a.cas).await, true)?;
    println!("wrote {} version {}", a.path, info.version);
    open.close().await;
    Ok(())
}

/// `get`: the version's facts, or with `--reveal` the raw value.
pub(crate) async fn get(a: GetArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let secrets = &crate::commands::approval::handle(&op, &a.approval);
    // the read is on record (with the value's HMAC) before it comes back
    let got = match a.version {
        Some(v) => audited(secrets.read_version(&a.path, v).await, false)?,
        None => audited(secrets.read(&a.path).await, false)?,
    };
    if a.json {
        write_json_get(&got, a.reveal)?;
    } else if a.reveal {
        let mut out = std::io::stdout().lock();
        out.write_all(got.value.expose_secret())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::Io(format!("cannot write the value to stdout: {e}")))?;
    } else {
        println!("path: {}", got.path);
        print_version(&got.version);
        println!(
            "value: {} bytes (use --reveal to print it)",
            got.value.len()
        );
    }
    open.close().await;
    Ok(())
}

/// `get --json`: the facts and the length; with `reveal` also the value,
/// as a JSON string if it is UTF-8, else in base64 (`encoding` says which).
/// The value is only ever in wiped buffers here: the document is built
/// as text around it.
fn write_json_get(got: &strongroom::secrets::SecretVersion, reveal: bool) -> CliResult {
    use base64::Engine as _;
    let mut facts = json::version(&got.version);
    facts["path"] = got.path.to_string().into();
    facts["length"] = got.value.len().into();
    if !reveal {
        json::print(&facts);
        return Ok(());
    }
    let bytes = got.value.expose_secret();
    let mut b64 = Zeroizing::new(String::new());
    let (encoding, text): (&str, &str) = match std::str::from_utf8(bytes) {
        Ok(s) => ("utf-8", s),
        Err(_) => {
            b64.reserve(bytes.len().div_ceil(3) * 4 + 4);
            base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut b64);
            ("base64", b64.as_str())
        }
    };
    facts["encoding"] = encoding.into();
    let head = facts.to_string();
    // `head` ends with '}': the value goes in as the last field.
    let mut doc = Zeroizing::new(Vec::with_capacity(head.len() + text.len() * 6 + 16));
    doc.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    doc.extend_from_slice(b",\"value\":");
    serde_json::to_writer(&mut *doc, text)
        .map_err(|e| Failure::Io(format!("cannot format the value: {e}")))?;
    doc.extend_from_slice(b"}\n");
    let mut out = std::io::stdout().lock();
    out.write_all(&doc)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Io(format!("cannot write the value to stdout: {e}")))
}

/// `list`: recorded as the handle records a list (operation `list`, the
/// prefix as given, none for the top), once the store answered and before
/// anything is printed. The handle itself cannot list the top level or
/// every depth.
pub(crate) async fn list(a: ListArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let mut event = op.event(Operation::List)?;
    if !matches!(a.prefix.as_str(), "" | "/") {
        event = event.with_path(&a.prefix);
    }
    let secrets = open.sr.secrets();
    let result = if a.recursive {
        secrets
            .list_all(&a.prefix)
            .await
            .map(|paths| paths.iter().map(ToString::to_string).collect())
    } else {
        secrets.list(&a.prefix).await
    };
    let entries: Vec<String> = op.conclude(event, result, false, |ev, _| ev).await?;
    if a.json {
        json::print(&serde_json::json!({
            "prefix": a.prefix,
            "recursive": a.recursive,
            "entries": entries,
        }));
    } else {
        for entry in entries {
            println!("{entry}");
        }
    }
    open.close().await;
    Ok(())
}

/// What `delete`, `undelete` and `destroy` do to the versions given.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VersionChange {
    Delete,
    Undelete,
    Destroy,
}

/// `delete`, `undelete` or `destroy`.
/// `approval`: the `--approval` of `destroy`.
pub(crate) async fn change_versions(
    a: VersionsArgs,
    change: VersionChange,
    approval: Option<&ApprovalArg>,
) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let secrets = &match approval {
        Some(approval) => crate::commands::approval::handle(&op, approval),
        None => op.secrets().clone(),
    };
    let (changed, verb) = match change {
        VersionChange::Delete => (secrets.delete(&a.path, &a.versions).await, "deleted"),
        VersionChange::Undelete => (secrets.undelete(&a.path, &a.versions).await, "undeleted"),
        VersionChange::Destroy => (secrets.destroy(&a.path, &a.versions).await, "destroyed"),
    };
    let changed = audited(changed, true)?;
    if changed.is_empty() {
        println!("{}: nothing changed", a.path);
    } else {
        let list: Vec<String> = changed.iter().map(u64::to_string).collect();
        println!("{} {verb} version(s) {}", a.path, list.join(", "));
    }
    open.close().await;
    Ok(())
}

/// `purge`.
pub(crate) async fn purge(a: PurgeArgs) -> CliResult {
    let PurgeArgs { path: a, approval } = a;
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let secrets = crate::commands::approval::handle(&op, &approval);
    audited(secrets.delete_metadata(&a.path).await, true)?;
    println!("{} removed with all its versions", a.path);
    open.close().await;
    Ok(())
}

/// `metadata`: changes it if options are given, then shows it.
pub(crate) async fn metadata(a: MetadataArgs) -> CliResult {
    // a bad --clear is refused before the store is opened
    let patch = patch_from(&a)?;
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let secrets = op.secrets();
    let m = if let Some(patch) = patch {
        audited(secrets.update_metadata(&a.path, patch).await, true)?
    } else {
        audited(secrets.metadata(&a.path).await, false)?
    };
    if a.json {
        json::print(&json::metadata(&m));
        open.close().await;
        return Ok(());
    }
    println!("path: {}", m.path);
    println!("current version: {}", m.current_version);
    println!("oldest version: {}", m.oldest_version);
    println!(
        "max versions: {}{}",
        m.effective_max_versions,
        if m.max_versions.is_some() {
            ""
        } else {
            " (store default)"
        }
    );
    println!("created: {}", m.created_at);
    println!("updated: {}", m.updated_at);
    if let Some(t) = m.last_rotated_at {
        println!("last rotated: {t}");
    }
    if let Some(o) = &m.owner {
        println!("owner: {o}");
    }
    if let Some(env) = &m.environment {
        println!("environment: {env}");
    }
    if !m.tags.is_empty() {
        let tags: Vec<&str> = m.tags.iter().map(String::as_str).collect();
        println!("tags: {}", tags.join(", "));
    }
    for (k, v) in &m.custom {
        println!("custom {k}: {v}");
    }
    if let Some(i) = m.rotation_interval {
        println!("rotation interval: {}s", i.as_secs());
    }
    if let Some(due) = m.rotation_due_at() {
        println!("rotation due: {due}");
    }
    println!("versions:");
    for v in &m.versions {
        print!("  ");
        print_version(v);
    }
    open.close().await;
    Ok(())
}

/// The change the options ask for (`None`: they ask for none). The checks
/// are the ones every binding's metadata update makes
/// (`strongroom_host::metadata`).
fn patch_from(a: &MetadataArgs) -> CliResult<Option<MetadataPatch>> {
    let update = MetadataUpdate {
        owner: a.owner.clone(),
        environment: a.environment.clone(),
        tags: a.tags.as_ref().map(|t| t.iter().cloned().collect()),
        custom: None,
        rotation_interval: a.rotation_interval.map(std::time::Duration::from_secs),
        max_versions: a.max_versions,
        clear: a.clear.clone(),
    };
    if update == MetadataUpdate::default() {
        return Ok(None);
    }
    Ok(Some(update.into_patch().map_err(Failure::Lib)?))
}
