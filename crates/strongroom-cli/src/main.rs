//! `strongroom`: the operator command for a Strongroom store kept in an
//! SQLite file or a PostgreSQL database. It parses arguments, calls the
//! library and formats the result; every operation is the library's. See
//! the crate README for the commands and the exit codes.
//!
//! Files: `args` (the command line), `exit` (failures and exit codes),
//! `protectors` (key protectors from arguments), `backend` (SQLite or
//! PostgreSQL), `store` (opening and unsealing a store), `operator` (the
//! operator principal every command acts as, and its audit records),
//! `audit_log` (the operator's audit file), `print` (shared output),
//! `progress` (progress lines on a terminal), `commands/*` (one file per
//! group of commands; `commands/run/` for `run`, which supervises a
//! child). This file parses, dispatches and exits.
#![forbid(unsafe_code)]

mod args;
mod audit_log;
mod backend;
mod commands;
mod exit;
mod operator;
mod print;
mod progress;
mod protectors;
mod store;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{AuditCommand, Cli, Command, CredsCommand, PolicyCommand, SigningKeyCommand};
use crate::commands::secrets::VersionChange;
use crate::commands::{
    approval, audit, completions, creds, declarative, import, init, inventory, keys, leases, pki,
    policy, run, secrets, signing,
};
use crate::exit::CliResult;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strongroom: error: cannot start the async runtime: {e}");
            return ExitCode::from(14);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("strongroom: error: {f}");
            ExitCode::from(f.exit_code())
        }
    }
}

/// Runs one command; the exit code on success (0, or for `run` the
/// command's own).
async fn run(command: Command) -> CliResult<u8> {
    let done = match command {
        Command::Keygen { key_file } => init::keygen(&key_file),
        Command::Init(a) => init::init(a).await,
        Command::Unseal(a) => keys::unseal(a).await,
        Command::Status(store) => keys::status(store).await,
        Command::Put(a) => secrets::put(a).await,
        Command::Get(a) => secrets::get(a).await,
        Command::List(a) => secrets::list(a).await,
        Command::Delete(a) => secrets::change_versions(a, VersionChange::Delete, None).await,
        Command::Undelete(a) => secrets::change_versions(a, VersionChange::Undelete, None).await,
        Command::Destroy(a) => {
            let (versions, approval) = (a.versions, a.approval);
            secrets::change_versions(versions, VersionChange::Destroy, Some(&approval)).await
        }
        Command::Metadata(a) => secrets::metadata(a).await,
        Command::Purge(a) => secrets::purge(a).await,
        Command::Rotate(store) => keys::rotate(store).await,
        Command::Promote(a) => keys::promote(a).await,
        Command::Rewrap(a) => keys::rewrap(a).await,
        Command::Retire(a) => keys::retire(a).await,
        Command::DestroyKey(a) => keys::destroy_key(a).await,
        Command::RotateRoot(a) => keys::rotate_root(a).await,
        Command::Audit(AuditCommand::Verify(a)) => audit::verify(a).await,
        Command::Run(a) => return run::run(a).await,
        Command::Import(a) => import::import(a).await,
        Command::Lease(c) => leases::lease(c).await,
        Command::Inventory(a) => inventory::inventory(a).await,
        Command::Creds(CredsCommand::Configure(a)) => creds::configure(a).await,
        Command::Creds(CredsCommand::Show(a)) => creds::show(a).await,
        Command::Creds(CredsCommand::Issue(a)) => creds::issue(a).await,
        Command::Creds(CredsCommand::Renew(a)) => leases::renew(a, true).await,
        Command::Creds(CredsCommand::Revoke(a)) => leases::revoke(a, true).await,
        Command::Pki(c) => pki::pki(c).await,
        Command::SigningKey(SigningKeyCommand::Create(a)) => signing::create(a).await,
        Command::SigningKey(SigningKeyCommand::Rotate(a)) => signing::rotate(a).await,
        Command::SigningKey(SigningKeyCommand::Info(a)) => signing::info(a).await,
        Command::SigningKey(SigningKeyCommand::Retire(a)) => signing::retire(a).await,
        Command::Sign(a) => signing::sign(a).await,
        Command::Verify(a) => signing::verify(a).await,
        Command::Pubkey(a) => signing::pubkey(a).await,
        Command::Policy(PolicyCommand::List(a)) => policy::list(a).await,
        Command::Policy(PolicyCommand::Show(a)) => policy::show(a).await,
        Command::Policy(PolicyCommand::Check(a)) => policy::check(a).await,
        Command::Approval(c) => approval::run(c).await,
        Command::Plan(a) => declarative::plan(a).await,
        Command::Apply(a) => declarative::apply(a).await,
        Command::Drift(a) => declarative::drift(a).await,
        Command::Completions { shell } => completions::completions(shell),
    };
    done.map(|()| 0)
}
