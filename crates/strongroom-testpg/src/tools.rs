//! Running the server's programs, and the small helpers a cluster needs
//! (a free port, a random password, error wrapping).

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strongroom::SecretString;

use crate::{BINDIR_ENV, Result, TestPgError};

pub(crate) fn io(what: &str, source: std::io::Error) -> TestPgError {
    TestPgError::Io {
        what: what.to_owned(),
        source,
    }
}

pub(crate) fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| io(&format!("cannot write {}", path.display()), e))
}

pub(crate) fn pg_command(bindir: &Path, program: &str, as_postgres: bool) -> Command {
    let exe = bindir.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub(crate) fn run(c: &mut Command) -> Result<Output> {
    let name = describe(c);
    check(&name, c.output())
}

pub(crate) fn check(name: &str, out: std::io::Result<Output>) -> Result<Output> {
    let out = out.map_err(|e| io(&format!("cannot run {name}"), e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(TestPgError::Command {
            command: name.to_owned(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

pub(crate) fn running_as_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// Finds the directory holding `initdb` and `pg_ctl`.
pub fn find_bindir() -> Result<PathBuf> {
    let mut searched = Vec::new();
    if let Ok(dir) = std::env::var(BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
        searched.push(format!("{BINDIR_ENV}={}", dir.display()));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
            searched.push(format!("pg_config --bindir ({})", dir.display()));
        }
    } else {
        searched.push("pg_config (not installed)".to_owned());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| has_server(p))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    searched.push("/usr/lib/postgresql/*/bin".to_owned());
    Err(TestPgError::BinariesNotFound {
        searched: searched.join(", "),
    })
}

pub(crate) fn free_port() -> Result<u16> {
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| io("cannot pick a free port", e))?;
    let port = l
        .local_addr()
        .map_err(|e| io("cannot pick a free port", e))?
        .port();
    Ok(port)
}

pub(crate) fn random_password() -> Result<SecretString> {
    let bytes = strongroom::SecretBytes::random(24).map_err(|e| {
        io(
            "cannot generate a password",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let mut s = String::with_capacity(48);
    for b in bytes.expose_secret() {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(SecretString::new(s))
}
