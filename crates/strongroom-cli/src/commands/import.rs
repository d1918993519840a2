//! `import`: secrets from a `.env` file or a Vault KV v2 JSON export, each
//! written as the operator through the audited handle (as `put` writes).
//!
//! The file is read and every entry checked (names, paths, empty values)
//! before the store is opened; existing secrets are found with one audited
//! `list` of the prefix before anything is written. The library has no
//! multi-secret atomic write, so an interrupted import leaves the secrets
//! written so far; `--skip-existing` resumes it.

use std::io::Read as _;
use std::path::Path;

use strongroom::audit::Operation;
use strongroom::path::SecretPath;
use zeroize::Zeroizing;

use crate::args::{ImportArgs, ImportFormat};
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::progress::Progress;

/// The largest import file read (64 MiB).
const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

/// One secret to write: its full path and value.
struct Entry {
    path: String,
    value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("path", &self.path)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// `import`.
pub(crate) async fn import(a: ImportArgs) -> CliResult {
    let text = read_file(&a.file)?;
    let shown = a.file.display().to_string();
    let prefix = a.prefix.trim_end_matches('/');
    let entries = match a.format {
        ImportFormat::Dotenv => parse_dotenv(&text, prefix, &shown)?,
        ImportFormat::VaultKv2 => parse_vault_kv2(&text, prefix, &shown)?,
    };
    check_entries(&entries, a.allow_empty, &shown)?;

    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let paths = entries.iter().map(|e| e.path.as_str());
    crate::commands::declarative::check_naming(&open.sr, paths).await?;
    let done = write_entries(&a, &op, &open, prefix, &entries).await;
    open.close().await;
    done
}

async fn write_entries(
    a: &ImportArgs,
    op: &Operator,
    open: &crate::store::Open,
    prefix: &str,
    entries: &[Entry],
) -> CliResult {
    // One audited `list` of the prefix (as `list --recursive` records it).
    let event = op.event(Operation::List)?.with_path(prefix);
    let listed = open.sr.secrets().list_all(prefix).await.map(
        |paths| -> std::collections::HashSet<String> {
            paths.iter().map(ToString::to_string).collect()
        },
    );
    let existing = op.conclude(event, listed, false, |ev, _| ev).await?;
    let conflicts: Vec<String> = entries
        .iter()
        .filter(|e| existing.contains(&e.path))
        .map(|e| e.path.clone())
        .collect();
    if !conflicts.is_empty() && !a.overwrite && !a.skip_existing {
        return Err(Failure::ImportConflict(conflicts));
    }
    let todo: Vec<&Entry> = entries
        .iter()
        .filter(|e| a.overwrite || !existing.contains(&e.path))
        .collect();
    let skipped = entries.len() - todo.len();
    if a.dry_run {
        for e in &todo {
            println!("would write {}", e.path);
        }
        for p in conflicts.iter().filter(|_| !a.overwrite) {
            println!("would skip {p} (exists)");
        }
        println!(
            "dry run: {} secret(s) would be written, {skipped} skipped; nothing was written",
            todo.len()
        );
        return Ok(());
    }
    let mut progress = Progress::on_terminal("importing");
    let mut written = 0usize;
    let mut raced = 0usize;
    for (i, e) in todo.iter().enumerate() {
        // Without --overwrite, create only: a secret made meanwhile is not
        // replaced.
        let cas = if a.overwrite { None } else { Some(0) };
        match audited(op.secrets().put(&e.path, &e.value, cas).await, true) {
            Ok(info) => {
                written += 1;
                println!("wrote {} version {}", e.path, info.version);
            }
            Err(Failure::Lib(strongroom::Error::Secret(
                strongroom::secrets::SecretError::CasMismatch { .. },
            ))) if a.skip_existing => {
                raced += 1;
                println!("skipped {} (created meanwhile)", e.path);
            }
            Err(f) => {
                progress.finish();
                eprintln!(
                    "strongroom: import stopped after writing {written} of {} secret(s); \
                     re-run with --skip-existing to resume",
                    todo.len()
                );
                return Err(f);
            }
        }
        progress.update(i as u64 + 1, todo.len() as u64, "secrets");
    }
    progress.finish();
    println!(
        "imported {written} secret(s), skipped {} existing",
        skipped + raced
    );
    Ok(())
}

fn read_file(path: &Path) -> CliResult<Zeroizing<String>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Io(format!("cannot open {}: {e}", path.display())))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Io(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(Failure::Usage(format!(
            "{} is longer than {MAX_FILE_LEN} bytes",
            path.display()
        )));
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| Failure::ImportParse {
        file: path.display().to_string(),
        line: None,
        why: format!("not UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Paths valid and distinct, values non-empty unless allowed.
fn check_entries(entries: &[Entry], allow_empty: bool, file: &str) -> CliResult {
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        if let Err(err) = SecretPath::parse(&e.path) {
            return Err(Failure::ImportParse {
                file: file.to_owned(),
                line: None,
                why: format!("{err}"),
            });
        }
        if !seen.insert(e.path.as_str()) {
            return Err(Failure::ImportParse {
                file: file.to_owned(),
                line: None,
                why: format!(
                    "{} is given twice (names are lower-cased into paths)",
                    e.path
                ),
            });
        }
    }
    let empty: Vec<String> = entries
        .iter()
        .filter(|e| e.value.is_empty())
        .map(|e| e.path.clone())
        .collect();
    if !empty.is_empty() && !allow_empty {
        return Err(Failure::ImportEmpty(empty));
    }
    Ok(())
}

/// `prefix/rest`, with `rest`'s ASCII letters lower-cased (secret paths
/// are lower-case; environment names usually are not).
fn join(prefix: &str, rest: &str) -> String {
    let rest = rest.to_ascii_lowercase();
    if prefix.is_empty() {
        rest
    } else {
        format!("{prefix}/{rest}")
    }
}

fn valid_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Parses a `.env` file (see the README for the grammar).
fn parse_dotenv(text: &str, prefix: &str, file: &str) -> CliResult<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let bad = |why: &str| Failure::ImportParse {
            file: file.to_owned(),
            line: Some(line_no),
            why: why.to_owned(),
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => line,
        };
        let Some((key, rest)) = line.split_once('=') else {
            return Err(bad("expected KEY=VALUE"));
        };
        let key = key.trim_end();
        if !valid_env_name(key) {
            return Err(bad(
                "the name before '=' is not a valid environment variable name (letters, digits, '_', not starting with a digit)",
            ));
        }
        let value = parse_dotenv_value(rest.trim_start()).map_err(bad)?;
        out.push(Entry {
            path: join(prefix, key),
            value,
        });
    }
    Ok(out)
}

/// The value after `=` (leading blanks removed). Errors never quote it.
fn parse_dotenv_value(v: &str) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let rest_ok = |after: &str| {
        let after = after.trim_start();
        after.is_empty() || after.starts_with('#')
    };
    let mut out = Zeroizing::new(Vec::with_capacity(v.len()));
    if let Some(body) = v.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated single-quoted value")?;
        if !rest_ok(&body[end + 1..]) {
            return Err("unexpected text after the closing quote");
        }
        out.extend_from_slice(&body.as_bytes()[..end]);
        return Ok(out);
    }
    if let Some(body) = v.strip_prefix('"') {
        let mut chars = body.char_indices();
        let mut buf = [0u8; 4];
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    if !rest_ok(&body[i + 1..]) {
                        return Err("unexpected text after the closing quote");
                    }
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push(b'\n'),
                    Some((_, '"')) => out.push(b'"'),
                    Some((_, '\\')) => out.push(b'\\'),
                    Some((_, other)) => {
                        out.push(b'\\');
                        out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    }
                    None => return Err("unterminated double-quoted value"),
                },
                c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
            }
        }
        return Err("unterminated double-quoted value");
    }
    // Unquoted: a `#` after a blank starts a comment.
    let mut end = v.len();
    let bytes = v.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b'#' && matches!(bytes[i - 1], b' ' | b'\t') {
            end = i;
            break;
        }
    }
    if v.starts_with('#') {
        end = 0;
    }
    out.extend_from_slice(v[..end].trim_end().as_bytes());
    Ok(out)
}

/// Parses a Vault KV v2 export (see the README for the shapes accepted).
fn parse_vault_kv2(text: &str, prefix: &str, file: &str) -> CliResult<Vec<Entry>> {
    use serde_json::Value;
    let bad = |why: String| Failure::ImportParse {
        file: file.to_owned(),
        line: None,
        why,
    };
    // serde_json's syntax errors give a line and column, never content.
    let doc: Value = serde_json::from_str(text).map_err(|e| Failure::ImportParse {
        file: file.to_owned(),
        line: Some(e.line()),
        why: format!(
            "not JSON ({:?} error at column {})",
            e.classify(),
            e.column()
        ),
    })?;
    let Value::Object(top) = doc else {
        return Err(bad("expected a JSON object".into()));
    };
    let mut out = Vec::new();
    // `vault kv get -format=json`: {"data": {"data": {...}, "metadata": {...}}}
    if let Some(Value::Object(inner)) = top.get("data")
        && inner.contains_key("metadata")
        && inner.contains_key("data")
    {
        let Some(Value::Object(kv)) = inner.get("data") else {
            return Err(bad(
                "data.data is not an object (a deleted or destroyed version?)".into(),
            ));
        };
        push_kv(&mut out, prefix, "", kv).map_err(bad)?;
        return Ok(out);
    }
    // {"vault/path": {"key": "value", ...}, ...}
    for (vault_path, secret) in &top {
        let Value::Object(kv) = secret else {
            return Err(bad(format!(
                "the secret {vault_path:?} is not an object of key/value pairs"
            )));
        };
        let vault_path = vault_path.trim_matches('/');
        if vault_path.is_empty() {
            return Err(bad("an empty Vault path".into()));
        }
        push_kv(&mut out, prefix, vault_path, kv).map_err(bad)?;
    }
    Ok(out)
}

fn push_kv(
    out: &mut Vec<Entry>,
    prefix: &str,
    vault_path: &str,
    kv: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let base = if vault_path.is_empty() {
        prefix.to_owned()
    } else {
        join(prefix, vault_path)
    };
    for (key, value) in kv {
        let serde_json::Value::String(s) = value else {
            return Err(format!(
                "the value of key {key:?}{} is not a string (only string values are imported)",
                if vault_path.is_empty() {
                    String::new()
                } else {
                    format!(" in {vault_path:?}")
                }
            ));
        };
        out.push(Entry {
            path: join(&base, key),
            value: Zeroizing::new(s.as_bytes().to_vec()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn one(v: &str) -> String {
        String::from_utf8(parse_dotenv_value(v).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn dotenv_values() {
        assert_eq!(one("plain"), "plain");
        assert_eq!(one("plain # comment"), "plain");
        assert_eq!(one("a#b"), "a#b");
        assert_eq!(one("'lit \\n $x' # c"), "lit \\n $x");
        assert_eq!(one(r#""a\nb \"q\" \\ \t""#), "a\nb \"q\" \\ \\t");
        assert_eq!(one(""), "");
        assert_eq!(one("# only a comment"), "");
        assert!(parse_dotenv_value("'open").is_err());
        assert!(parse_dotenv_value("\"open").is_err());
        assert!(parse_dotenv_value("\"a\" b").is_err());
    }

    #[test]
    fn dotenv_lines() {
        let e = parse_dotenv("# c\n\nexport A=1\nB = 2\r\n", "p", "f").unwrap();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["p/a", "p/b"]);
        assert_eq!(&e[1].value[..], b"2");
        let err = parse_dotenv("A=1\n1BAD=secretvalue\n", "p", "f").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(!msg.contains("secretvalue"), "{msg}");
    }
}
