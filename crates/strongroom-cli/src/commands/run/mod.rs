//! `run`: starts a command with secrets as environment variables
//! (`--env`) and files (`--file`), in place of a `.env` file, and follows
//! their rotation until the command ends.
//!
//! The values are read as the operator through the audited handle (one
//! `read` record each) and go to the child only: `run` never prints them
//! and never puts them in its own environment; its copies are wiped once
//! the child has them. The store is then watched: when a referenced
//! secret's current version changes, every value is read again, the files
//! are replaced atomically, and the command is signalled, restarted or
//! left alone (`--on-change`). Signals `run` receives are passed on; when
//! the command ends, `run` removes the files, seals and closes the store,
//! and exits with the command's code.
//!
//! Files: `spec` (the arguments, checked), `values` (reading the secrets),
//! `files` (the private directory), `child` (starting, signalling,
//! stopping and reaping).

mod child;
mod creds;
mod files;
mod spec;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitStatus;

use strongroom::dangerous::Door;
use strongroom::secrets::SecretWatch;

use crate::args::{OnChange, RunArgs};
use crate::exit::CliResult;
use crate::operator::Identity;
use crate::store::Open;

use child::{Forwarder, Launch, Reaper, Running, Supervisor, exit_code};
use creds::DynCreds;
use files::SecretsDir;
use spec::RunPlan;
use values::{Values, current_versions};

/// `run`: the command's exit code once it has ended (128 + N if signal N
/// killed it); a failure before it started.
pub(crate) async fn run(a: RunArgs) -> CliResult<u8> {
    let plan = RunPlan::from_args(&a)?;
    let id = Identity::from_args(&a.operator, &a.store.db)?;
    // Caught from here on: a SIGTERM while the store opens is passed on to
    // the command once it has started, not lost with `run`.
    let forwarder = Forwarder::install()?;
    let reaper = Reaper::new()?;
    // The command inherits stdin, so a PIN must come from --pin-file.
    let open = Open::unseal(&a.store, false).await?;
    let result = supervise(&open.sr, &id, &plan, forwarder, reaper).await;
    open.close().await;
    result
}

/// Everything after the store is open; the directory is removed whatever
/// happens (on drop when an error returns early).
async fn supervise(
    sr: &Door,
    id: &Identity,
    plan: &RunPlan,
    forwarder: Forwarder,
    reaper: Reaper,
) -> CliResult<u8> {
    let paths = plan.paths();
    let dir = if plan.files.is_empty() {
        None
    } else {
        Some(SecretsDir::create()?)
    };
    // Watching starts before the first read, so no change after it is missed.
    let mut watch = if paths.is_empty() {
        None
    } else {
        Some(sr.secrets().watch("")?)
    };
    let values = Values::read(sr, id, &paths, watch.is_some()).await?;
    let mut known = values.versions();
    if let Some(dir) = &dir {
        write_files(dir, plan, &values)?;
    }
    // Credentials last: nothing that can still fail before the command
    // starts leaves a role behind (a failed start revokes them).
    let mut creds = DynCreds::issue(sr, id, &plan.creds).await?;
    let mut env = values.env(plan)?;
    env.extend(creds.env());
    let running = match Running::spawn(&Launch {
        command: &plan.command,
        env,
        dir: dir.as_ref().map(SecretsDir::path),
    }) {
        Ok(r) => r,
        Err(f) => {
            creds.revoke_all(sr, id).await;
            return Err(f);
        }
    };
    drop(values);

    let mut sup = Supervisor::new(running, forwarder, reaper);
    let mut follow = Follow {
        sr,
        id,
        plan,
        paths: &paths,
        dir: dir.as_ref(),
        known: &mut known,
        warned: BTreeSet::new(),
    };
    let code = loop {
        tokio::select! {
            status = sup.wait() => break status.map(exit_code),
            () = next_change(watch.as_mut()) => {
                match follow.changed(&mut sup, &creds).await {
                    Ok(Some(status)) => break Ok(exit_code(status)),
                    Ok(None) => {}
                    Err(f) => break Err(f),
                }
            }
            () = creds.wait_due() => {
                match follow.renewed(&mut sup, &mut creds).await {
                    Ok(Some(status)) => break Ok(exit_code(status)),
                    Ok(None) => {}
                    Err(f) => break Err(f),
                }
            }
        }
    };
    creds.revoke_all(sr, id).await;
    let code = code?;
    drop(sup);
    drop(watch);
    if let Some(dir) = dir
        && let Err(f) = dir.remove()
    {
        eprintln!("strongroom: warning: {f}");
    }
    Ok(code)
}

/// The next notice of the store's watch (never, without one).
async fn next_change(watch: Option<&mut SecretWatch>) {
    match watch {
        Some(w) => {
            // Which paths does not matter: the versions are compared.
            w.next().await;
        }
        None => std::future::pending().await,
    }
}

/// Writes every `--file` secret into `dir`.
fn write_files(dir: &SecretsDir, plan: &RunPlan, values: &Values) -> CliResult {
    for f in &plan.files {
        dir.write(&f.dest, values.get(&f.path)?)?;
    }
    Ok(())
}

/// What following the secrets needs between notices.
struct Follow<'a> {
    sr: &'a Door,
    id: &'a Identity,
    plan: &'a RunPlan,
    paths: &'a [String],
    dir: Option<&'a SecretsDir>,
    /// The version of each path the command has now.
    known: &'a mut BTreeMap<String, u64>,
    /// Paths whose version cannot be checked, already warned about.
    warned: BTreeSet<String>,
}

impl Follow<'_> {
    /// After a notice: if a referenced secret's current version moved, reads
    /// every value again, replaces the files and applies `--on-change`.
    /// `Some` when the command ended for good (a signal to end it arrived
    /// during a restart).
    async fn changed(
        &mut self,
        sup: &mut Supervisor,
        creds: &DynCreds,
    ) -> CliResult<Option<ExitStatus>> {
        let mut latest = BTreeMap::new();
        for (path, version) in current_versions(self.sr, self.paths).await {
            match version {
                Ok(v) => {
                    self.warned.remove(&path);
                    latest.insert(path, v);
                }
                Err(e) => {
                    if self.warned.insert(path.clone()) {
                        eprintln!(
                            "strongroom: warning: cannot check the version of {path} ({e}); the command keeps what it has"
                        );
                    }
                }
            }
        }
        if latest.iter().all(|(p, v)| self.known.get(p) == Some(v)) {
            return Ok(None);
        }
        let values = match Values::read(self.sr, self.id, self.paths, false).await {
            Ok(values) => values,
            Err(f) => {
                eprintln!(
                    "strongroom: warning: a secret changed but cannot be read ({f}); the command keeps what it has"
                );
                // Not tried again until a version moves again.
                self.known.extend(latest);
                return Ok(None);
            }
        };
        *self.known = values.versions();
        if let Some(dir) = self.dir
            && let Err(f) = write_files(dir, self.plan, &values)
        {
            eprintln!("strongroom: warning: {f}");
        }
        match self.plan.on_change {
            OnChange::None => Ok(None),
            OnChange::Signal => {
                sup.signal(self.plan.signal);
                Ok(None)
            }
            OnChange::Restart => self.restart(sup, &values, creds).await,
        }
    }

    /// When a credentials lease is due: renews or replaces them; replaced
    /// credentials reach the command by a restart (`--on-change restart`),
    /// after which the old leases are revoked. A failed round is a warning
    /// (retried later): the command keeps what it has.
    async fn renewed(
        &mut self,
        sup: &mut Supervisor,
        creds: &mut DynCreds,
    ) -> CliResult<Option<ExitStatus>> {
        let replaced = match creds.renew_due(self.sr, self.id).await {
            Ok(r) => r,
            Err(f) => {
                eprintln!(
                    "strongroom: warning: credentials not renewed ({f}); the command keeps what it has"
                );
                return Ok(None);
            }
        };
        if !replaced {
            return Ok(None);
        }
        if self.plan.on_change != OnChange::Restart {
            eprintln!(
                "strongroom: warning: new credentials were issued; the command keeps the old ones until they expire (only --on-change restart hands it new ones)"
            );
            return Ok(None);
        }
        let values = match Values::read(self.sr, self.id, self.paths, false).await {
            Ok(values) => values,
            Err(f) => {
                eprintln!("strongroom: warning: not restarted: a secret cannot be read ({f})");
                return Ok(None);
            }
        };
        let ended = self.restart(sup, &values, creds).await?;
        if ended.is_none() {
            creds.revoke_replaced(self.sr, self.id).await;
        }
        Ok(ended)
    }

    /// Stops the command and starts it again with `values`, unless a value
    /// cannot be an environment variable (then it keeps running) or a
    /// signal to end it arrived meanwhile (then its end is returned).
    async fn restart(
        &self,
        sup: &mut Supervisor,
        values: &Values,
        creds: &DynCreds,
    ) -> CliResult<Option<ExitStatus>> {
        let env = match values.env(self.plan) {
            Ok(mut env) => {
                env.extend(creds.env());
                env
            }
            Err(f) => {
                eprintln!("strongroom: warning: not restarted: {f}");
                return Ok(None);
            }
        };
        let status = sup.stop(self.plan.grace).await?;
        if sup.ending() {
            return Ok(Some(status));
        }
        sup.replace(Running::spawn(&Launch {
            command: &self.plan.command,
            env,
            dir: self.dir.map(SecretsDir::path),
        })?);
        Ok(None)
    }
}
