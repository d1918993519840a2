//! The secrets `run` hands to its command: read as the operator through
//! the audited handle (one `read` record each), and the version numbers it
//! watches for a change.

use std::collections::BTreeMap;

use strongroom::SecretBytes;
use strongroom::audit::Operation;
use strongroom::dangerous::Door;

use crate::exit::{CliResult, Failure};
use crate::operator::{Identity, Operator, audited};

use super::spec::RunPlan;

/// One secret's current version, read.
pub(crate) struct Fetched {
    /// Its version number.
    pub(crate) version: u64,
    /// The value; wiped when dropped.
    pub(crate) value: SecretBytes,
}

/// The values read in one go, by path.
pub(crate) struct Values(BTreeMap<String, Fetched>);

impl Values {
    /// Reads the current version of every path as the operator `id`: the
    /// audit file is locked, opened to continue the chain, each read
    /// recorded, and the file unlocked again on return (so other commands
    /// can act on the store while the command runs). With `record_watch`,
    /// a `list` record (no path, as `strongroom list` records the top) is
    /// written first: the change watch `run` then starts.
    pub(crate) async fn read(
        sr: &Door,
        id: &Identity,
        paths: &[String],
        record_watch: bool,
    ) -> CliResult<Self> {
        let op = Operator::start(sr, id).await?;
        if record_watch {
            let event = op.event(Operation::List)?;
            op.conclude(event, Ok(()), false, |ev, ()| ev).await?;
        }
        let mut out = BTreeMap::new();
        for path in paths {
            let got = audited(op.secrets().read(path).await, false)?;
            out.insert(
                path.clone(),
                Fetched {
                    version: got.version.version,
                    value: got.value,
                },
            );
        }
        Ok(Self(out))
    }

    /// The value read for `path` (one of the paths read).
    pub(crate) fn get(&self, path: &str) -> CliResult<&[u8]> {
        self.0
            .get(path)
            .map(|f| f.value.expose_secret())
            .ok_or_else(|| Failure::Io(format!("the secret at {path} was not read")))
    }

    /// The version numbers read, by path.
    pub(crate) fn versions(&self) -> BTreeMap<String, u64> {
        self.0.iter().map(|(p, f)| (p.clone(), f.version)).collect()
    }

    /// The environment for the command, each value checked: UTF-8 without
    /// NUL, else [`Failure::EnvValue`] naming the variable and the path.
    pub(crate) fn env<'a>(&'a self, plan: &'a RunPlan) -> CliResult<Vec<(&'a str, &'a [u8])>> {
        plan.envs
            .iter()
            .map(|e| {
                let value = self.get(&e.path)?;
                let why = if std::str::from_utf8(value).is_err() {
                    Some("is not valid UTF-8")
                } else if value.contains(&0) {
                    Some("holds a NUL byte")
                } else {
                    None
                };
                match why {
                    Some(why) => Err(Failure::EnvValue {
                        name: e.name.clone(),
                        path: e.path.clone(),
                        why,
                    }),
                    None => Ok((e.name.as_str(), value)),
                }
            })
            .collect()
    }
}

/// The current version number of each path, from the secrets' metadata
/// (version numbers only, no value: not audited), or why it cannot be read.
pub(crate) async fn current_versions(
    sr: &Door,
    paths: &[String],
) -> BTreeMap<String, Result<u64, String>> {
    let secrets = sr.secrets();
    let mut out = BTreeMap::new();
    for path in paths {
        let version = secrets
            .metadata(path)
            .await
            .map(|m| m.current_version)
            .map_err(|e| e.to_string());
        out.insert(path.clone(), version);
    }
    out
}
