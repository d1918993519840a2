//! The command `run` supervises: starting it with its environment,
//! forwarding signals to it, stopping it for a restart, reaping orphans
//! when `run` is PID 1, and turning its end into an exit code.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal, WaitOptions};
use tokio::signal::unix::SignalKind;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::exit::{CliResult, Failure};

use super::files::DIR_VAR;

/// The signals `run` passes on to the command.
const FORWARDED: [Signal; 6] = [
    Signal::TERM,
    Signal::INT,
    Signal::HUP,
    Signal::QUIT,
    Signal::USR1,
    Signal::USR2,
];

/// Forwarded signals that ask the command to end: after one of them a
/// restart does not start the command again.
const ENDING: [Signal; 3] = [Signal::TERM, Signal::INT, Signal::QUIT];

/// The signals `run` receives, once installed: their default action (end
/// `run`) is replaced by passing them to the command.
pub(crate) struct Forwarder {
    rx: mpsc::UnboundedReceiver<Signal>,
    tasks: Vec<JoinHandle<()>>,
}

impl Forwarder {
    /// Catches the [`FORWARDED`] signals from now on (a signal that arrives
    /// before the command starts is passed on once it has).
    pub(crate) fn install() -> CliResult<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for sig in FORWARDED {
            let mut stream = tokio::signal::unix::signal(SignalKind::from_raw(sig.as_raw()))
                .map_err(|e| Failure::Io(format!("cannot catch signal {}: {e}", sig.as_raw())))?;
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            }));
        }
        Ok(Self { rx, tasks })
    }

    /// The next signal caught (cancel safe).
    async fn recv(&mut self) -> Signal {
        match self.rx.recv().await {
            Some(sig) => sig,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// When `run` is PID 1 (in a container), it reaps every child that ends,
/// not only the command: orphans are re-parented to it.
pub(crate) struct Reaper {
    sigchld: Option<tokio::signal::unix::Signal>,
    /// Statuses of the command's processes reaped here rather than by
    /// tokio, by pid.
    reaped: HashMap<i32, ExitStatus>,
}

impl Reaper {
    /// Reaps only when this process is PID 1.
    pub(crate) fn new() -> CliResult<Self> {
        let sigchld = if rustix::process::getpid().is_init() {
            Some(
                tokio::signal::unix::signal(SignalKind::child())
                    .map_err(|e| Failure::Io(format!("cannot catch SIGCHLD: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            sigchld,
            reaped: HashMap::new(),
        })
    }

    /// Waits for a SIGCHLD (forever when not PID 1).
    async fn next(&mut self) {
        match self.sigchld.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Reaps every ended child (`waitpid(-1, WNOHANG)` until none is left).
    /// The status of `command` (the supervised child) is kept for
    /// [`Reaper::take`], so reaping it here steals nothing.
    fn reap(&mut self, command: i32) {
        while let Ok(Some((pid, status))) = rustix::process::waitpid(None, WaitOptions::NOHANG) {
            if pid.as_raw_nonzero().get() == command {
                self.reaped
                    .insert(command, ExitStatus::from_raw(status.as_raw()));
            }
        }
    }

    fn take(&mut self, pid: i32) -> Option<ExitStatus> {
        self.reaped.remove(&pid)
    }
}

/// What the command is started with.
pub(crate) struct Launch<'a> {
    /// The program and its arguments.
    pub(crate) command: &'a [OsString],
    /// Variables `(name, value)`; each value already checked (UTF-8, no
    /// NUL). Borrowed: the caller's zeroizing buffers are the only copies
    /// `run` keeps.
    pub(crate) env: Vec<(&'a str, &'a [u8])>,
    /// The private directory, when there are files.
    pub(crate) dir: Option<&'a Path>,
}

/// The command, started.
pub(crate) struct Running {
    child: tokio::process::Child,
    pid: i32,
}

impl Running {
    /// Starts the command, its secrets set on the child only (never in
    /// `run`'s own environment).
    pub(crate) fn spawn(launch: &Launch<'_>) -> CliResult<Self> {
        let (program, args) = launch.command.split_first().ok_or(Failure::NoCommand)?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).kill_on_drop(false);
        match launch.dir {
            Some(dir) => cmd.env(DIR_VAR, dir),
            None => cmd.env_remove(DIR_VAR),
        };
        for (name, value) in &launch.env {
            cmd.env(name, OsStr::from_bytes(value));
        }
        let spawned = cmd.spawn();
        // The command's copies of the values go with it, now.
        drop(cmd);
        let child = spawned.map_err(|error| Failure::CommandNotStarted {
            program: program.to_string_lossy().into_owned(),
            error,
        })?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| Failure::Io("the command started without a process id".into()))?;
        Ok(Self { child, pid })
    }

    fn send(&self, sig: Signal) {
        if let Some(pid) = Pid::from_raw(self.pid) {
            // It may have ended already: then there is nobody to tell.
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
}

/// The command under supervision, with the signals `run` catches.
pub(crate) struct Supervisor {
    running: Running,
    forwarder: Forwarder,
    reaper: Reaper,
    /// Whether a signal asking the command to end was passed on.
    ending: bool,
}

impl Supervisor {
    pub(crate) fn new(running: Running, forwarder: Forwarder, reaper: Reaper) -> Self {
        Self {
            running,
            forwarder,
            reaper,
            ending: false,
        }
    }

    /// Whether SIGTERM, SIGINT or SIGQUIT was passed on to the command.
    pub(crate) fn ending(&self) -> bool {
        self.ending
    }

    /// Sends `sig` to the command.
    pub(crate) fn signal(&self, sig: Signal) {
        self.running.send(sig);
    }

    /// Supervises a newly started command in place of the last one.
    pub(crate) fn replace(&mut self, running: Running) {
        self.running = running;
    }

    /// Waits for the command to end, passing on every signal caught and
    /// reaping orphans meanwhile. Cancel safe.
    pub(crate) async fn wait(&mut self) -> CliResult<ExitStatus> {
        loop {
            tokio::select! {
                status = self.running.child.wait() => {
                    return match status {
                        Ok(status) => Ok(status),
                        // PID 1 reaped it first: its status is kept.
                        Err(e) => {
                            self.reaper.reap(self.running.pid);
                            self.reaper.take(self.running.pid).ok_or_else(|| {
                                Failure::Io(format!("lost the command's exit status: {e}"))
                            })
                        }
                    };
                }
                sig = self.forwarder.recv() => {
                    self.ending |= ENDING.contains(&sig);
                    self.running.send(sig);
                }
                () = self.reaper.next() => self.reaper.reap(self.running.pid),
            }
        }
    }

    /// Stops the command: SIGTERM, then SIGKILL if it has not ended
    /// after `grace`. Signals caught meanwhile are passed on.
    pub(crate) async fn stop(&mut self, grace: Duration) -> CliResult<ExitStatus> {
        self.running.send(Signal::TERM);
        if let Ok(status) = tokio::time::timeout(grace, self.wait()).await {
            return status;
        }
        self.running.send(Signal::KILL);
        self.wait().await
    }
}

/// `run`'s exit code for the command's end: its own code, or 128 + the
/// signal that killed it.
pub(crate) fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        // killed by SIGKILL (9)
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
