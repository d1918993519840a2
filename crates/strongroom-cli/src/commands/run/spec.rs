//! What `run` was asked to do, checked before anything is opened: the
//! `--env` and `--file` specs, the reaction to a change, the signal.

use std::collections::BTreeSet;
use std::ffi::OsString;

use rustix::process::Signal;

use crate::args::{OnChange, RunArgs};
use crate::exit::{CliResult, Failure};

/// `--env NAME=SECRET_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSpec {
    /// The variable's name.
    pub(crate) name: String,
    /// The secret's path.
    pub(crate) path: String,
}

/// `--file SECRET_PATH=DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSpec {
    /// The secret's path.
    pub(crate) path: String,
    /// The file's name inside the private directory.
    pub(crate) dest: String,
}

/// `--creds PREFIX=ROLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredsSpec {
    /// The variables' prefix: `<prefix>_USERNAME`, `<prefix>_PASSWORD`.
    pub(crate) prefix: String,
    /// The role in the store's catalog.
    pub(crate) role: String,
}

impl CredsSpec {
    /// The user name's variable.
    pub(crate) fn user_var(&self) -> String {
        format!("{}_USERNAME", self.prefix)
    }

    /// The password's variable.
    pub(crate) fn password_var(&self) -> String {
        format!("{}_PASSWORD", self.prefix)
    }
}

/// Everything `run` was asked for.
#[derive(Debug)]
pub(crate) struct RunPlan {
    pub(crate) envs: Vec<EnvSpec>,
    pub(crate) files: Vec<FileSpec>,
    pub(crate) creds: Vec<CredsSpec>,
    pub(crate) on_change: OnChange,
    /// Sent for [`OnChange::Signal`].
    pub(crate) signal: Signal,
    /// How long a stopped child has between SIGTERM and SIGKILL.
    pub(crate) grace: std::time::Duration,
    /// The program and its arguments.
    pub(crate) command: Vec<OsString>,
}

impl RunPlan {
    /// Checks the arguments; nothing is opened yet.
    pub(crate) fn from_args(a: &RunArgs) -> CliResult<Self> {
        let envs = a
            .env_specs
            .iter()
            .map(|s| parse_env(s))
            .collect::<CliResult<Vec<_>>>()?;
        let files = a
            .file_specs
            .iter()
            .map(|s| parse_file(s))
            .collect::<CliResult<Vec<_>>>()?;
        let creds = a
            .creds_specs
            .iter()
            .map(|s| parse_creds(s))
            .collect::<CliResult<Vec<_>>>()?;
        let mut names = BTreeSet::new();
        if let Some(dup) = envs.iter().find(|e| !names.insert(e.name.clone())) {
            return Err(Failure::RunSpec(format!(
                "--env {} is given twice",
                dup.name
            )));
        }
        for c in &creds {
            for var in [c.user_var(), c.password_var()] {
                if !names.insert(var.clone()) {
                    return Err(Failure::RunSpec(format!(
                        "--creds {}={}: the variable {var} is given twice",
                        c.prefix, c.role
                    )));
                }
            }
        }
        let mut dests = BTreeSet::new();
        if let Some(dup) = files.iter().find(|f| !dests.insert(f.dest.as_str())) {
            return Err(Failure::RunSpec(format!(
                "--file destination {} is given twice",
                dup.dest
            )));
        }
        if a.command.is_empty() {
            return Err(Failure::NoCommand);
        }
        let on_change = a
            .on_change
            .unwrap_or(if envs.is_empty() && creds.is_empty() {
                OnChange::Signal
            } else {
                OnChange::Restart
            });
        Ok(Self {
            envs,
            files,
            creds,
            on_change,
            signal: parse_signal(&a.signal)?,
            grace: std::time::Duration::from_secs(a.grace),
            command: a.command.clone(),
        })
    }

    /// Every secret path referenced, once each, in order.
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.envs
            .iter()
            .map(|e| &e.path)
            .chain(self.files.iter().map(|f| &f.path))
            .filter(|p| seen.insert(p.as_str()))
            .cloned()
            .collect()
    }
}

fn parse_env(spec: &str) -> CliResult<EnvSpec> {
    let bad = |why: &str| Failure::RunSpec(format!("--env {spec:?}: {why}"));
    let (name, path) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=SECRET_PATH"))?;
    if name.is_empty() {
        return Err(bad("the variable name is empty"));
    }
    if path.is_empty() {
        return Err(bad("the secret path is empty"));
    }
    Ok(EnvSpec {
        name: name.to_owned(),
        path: path.to_owned(),
    })
}

fn parse_creds(spec: &str) -> CliResult<CredsSpec> {
    let bad = |why: &str| Failure::RunSpec(format!("--creds {spec:?}: {why}"));
    let (prefix, role) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected PREFIX=ROLE"))?;
    let var_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if prefix.is_empty()
        || !prefix.chars().all(var_char)
        || prefix.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(bad(
            "the prefix must be a variable name (letters, digits, '_', not starting with a digit)",
        ));
    }
    if role.is_empty() {
        return Err(bad("the role is empty"));
    }
    Ok(CredsSpec {
        prefix: prefix.to_owned(),
        role: role.to_owned(),
    })
}

fn parse_file(spec: &str) -> CliResult<FileSpec> {
    let bad = |why: &str| Failure::RunSpec(format!("--file {spec:?}: {why}"));
    // The path may not hold '=' (a secret path has no '='); DEST is the rest.
    let (path, dest) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected SECRET_PATH=DEST"))?;
    if path.is_empty() {
        return Err(bad("the secret path is empty"));
    }
    check_dest(dest).map_err(bad)?;
    Ok(FileSpec {
        path: path.to_owned(),
        dest: dest.to_owned(),
    })
}

/// A destination is one plain file name: not empty, no '/', not `.` or
/// `..`, no NUL, and not a name `run` uses for its temporary files.
fn check_dest(dest: &str) -> Result<(), &'static str> {
    if dest.is_empty() {
        Err("the destination file name is empty")
    } else if dest.contains('/') {
        Err("the destination must be a plain file name (no '/')")
    } else if dest == "." || dest == ".." || dest.contains("..") {
        Err("the destination must be a plain file name (no '..')")
    } else if dest.contains('\0') {
        Err("the destination holds a NUL byte")
    } else if dest.starts_with(super::files::TEMP_PREFIX) {
        Err("the destination may not start with .strongroom-tmp")
    } else {
        Ok(())
    }
}

/// The signals `--signal` accepts by name, with and without `SIG`.
const SIGNALS: [(&str, Signal); 9] = [
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("TERM", Signal::TERM),
    ("USR1", Signal::USR1),
    ("USR2", Signal::USR2),
    ("WINCH", Signal::WINCH),
    ("ALRM", Signal::ALARM),
    ("CONT", Signal::CONT),
];

fn parse_signal(s: &str) -> CliResult<Signal> {
    let upper = s.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, sig)) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Ok(*sig);
    }
    name.parse::<i32>()
        .ok()
        .and_then(Signal::from_named_raw)
        .ok_or_else(|| {
            Failure::RunSpec(format!(
                "--signal {s:?}: not a signal name (HUP, INT, QUIT, TERM, USR1, USR2, WINCH, ALRM, CONT) or number"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_specs() {
        assert_eq!(
            parse_env("DB_PASSWORD=prod/app/db").unwrap(),
            EnvSpec {
                name: "DB_PASSWORD".into(),
                path: "prod/app/db".into()
            }
        );
        for bad in ["NOEQUALS", "=prod/x", "NAME="] {
            assert!(matches!(parse_env(bad), Err(Failure::RunSpec(_))), "{bad}");
        }
    }

    #[test]
    fn creds_specs() {
        let c = parse_creds("DB=readonly").unwrap();
        assert_eq!(
            (c.user_var(), c.password_var()),
            ("DB_USERNAME".into(), "DB_PASSWORD".into())
        );
        for bad in ["DB", "=r", "DB=", "1DB=r", "D-B=r"] {
            assert!(
                matches!(parse_creds(bad), Err(Failure::RunSpec(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn file_destinations_are_plain_names() {
        assert_eq!(parse_file("prod/tls/key=tls.key").unwrap().dest, "tls.key");
        for bad in [
            "prod/x",
            "prod/x=",
            "=a",
            "prod/x=a/b",
            "prod/x=..",
            "prod/x=.",
            "prod/x=../a",
            "prod/x=/etc/passwd",
            "prod/x=.strongroom-tmp-a",
        ] {
            assert!(matches!(parse_file(bad), Err(Failure::RunSpec(_))), "{bad}");
        }
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("HUP").unwrap(), Signal::HUP);
        assert_eq!(parse_signal("sigusr1").unwrap(), Signal::USR1);
        assert_eq!(parse_signal("15").unwrap(), Signal::TERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
