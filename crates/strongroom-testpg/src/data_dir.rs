//! Cluster directories: making one (from the cached template when there
//! is one), setting its superuser password, and sweeping the ones killed
//! test processes left behind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use strongroom::SecretString;

use crate::tools::{check, io, pg_command, run};
use crate::{Result, SUPERUSER, TestPgError};

/// The file in a cluster directory naming the process that owns it.
pub(crate) const OWNER_FILE: &str = "owner.pid";
/// The prefix of every cluster directory in the temporary directory.
pub(crate) const DIR_PREFIX: &str = "strongroom-testpg-";
/// The prefix of the cached template clusters in the temporary directory.
const TEMPLATE_PREFIX: &str = "strongroom-pgtemplate-";

/// Stops and removes clusters left behind by test processes that were killed
/// before they could stop their server (their owner process is gone).
pub(crate) fn sweep_stale_clusters(bindir: &Path, as_postgres: bool) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        // No owner file yet: another process is creating it right now.
        let Some(pid) = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = pg_command(bindir, "pg_ctl", as_postgres)
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .output();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Creates the cluster's data directory in `dir/data` with `password` for
/// the superuser: a copy of this machine's cached template cluster (fast), or
/// a fresh `initdb` (about 3 s) that then becomes the template.
pub(crate) fn create_data_dir(
    bindir: &Path,
    as_postgres: bool,
    dir: &Path,
    password: &SecretString,
) -> Result<()> {
    let data = dir.join("data");
    let template = template_dir(bindir);
    if let Some(template) = &template
        && template.join("PG_VERSION").is_file()
    {
        let copied = run(Command::new("cp").arg("-a").arg(template).arg(&data))
            .and_then(|_| set_password(bindir, as_postgres, &data, password));
        if copied.is_ok() {
            return Ok(());
        }
        // A damaged template: forget it and initdb afresh.
        let _ = std::fs::remove_dir_all(template);
        let _ = std::fs::remove_dir_all(&data);
    }
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, format!("{}\n", password.expose_secret()))
        .map_err(|e| io("cannot write the password file", e))?;
    if as_postgres {
        run(Command::new("chown").arg("postgres:").arg(&pwfile))?;
    }
    let initdb = pg_command(bindir, "initdb", as_postgres)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8", "--no-locale", "--no-sync"])
        .output();
    // The password file is not needed once the cluster exists.
    let _ = std::fs::remove_file(&pwfile);
    check("initdb", initdb)?;
    if let Some(template) = template {
        // Publish the template atomically; another process may win the race.
        let mut tmp = template.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_dir_all(&tmp);
        if run(Command::new("cp").arg("-a").arg(&data).arg(&tmp)).is_ok()
            && std::fs::rename(&tmp, &template).is_err()
        {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(())
}

/// Where the template cluster for these binaries lives: keyed by the user
/// and the exact server version, so an upgrade gets a new template.
fn template_dir(bindir: &Path) -> Option<PathBuf> {
    let out = Command::new(bindir.join("pg_ctl"))
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let version: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    Some(std::env::temp_dir().join(format!(
        "{TEMPLATE_PREFIX}{uid}-{}",
        version.trim_matches('_')
    )))
}

/// Gives the superuser of a stopped cluster a new password (single-user mode,
/// the password travelling on stdin, never on a command line).
fn set_password(
    bindir: &Path,
    as_postgres: bool,
    data: &Path,
    password: &SecretString,
) -> Result<()> {
    use std::io::Write;
    let mut child = pg_command(bindir, "postgres", as_postgres)
        .arg("--single")
        .arg("-D")
        .arg(data)
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io("cannot run postgres --single", e))?;
    // The password is hex, so it needs no escaping inside the literal.
    let statement = format!(
        "ALTER ROLE {SUPERUSER} PASSWORD '{}';\n",
        password.expose_secret()
    );
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(statement.as_bytes())
            .map_err(|e| io("cannot write to postgres --single", e))?;
    }
    let out = child.wait_with_output();
    let out = check("postgres --single", out)?;
    let text = String::from_utf8_lossy(&out.stderr);
    if text.contains("ERROR") {
        return Err(TestPgError::Command {
            command: "postgres --single (ALTER ROLE)".to_owned(),
            status: "error".to_owned(),
            output: text.into_owned(),
        });
    }
    Ok(())
}
