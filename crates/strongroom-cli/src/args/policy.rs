//! `policy ...`: the applied policies, read back.

use clap::{Args, Subcommand};

use super::{OperatorArgs, StoreArgs};

/// `policy ...`: the applied policies, read-only (they change through
/// `plan` and `apply`, so every change is a reviewed file).
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Lists the applied policies and principals.
    List(PolicyListArgs),
    /// Shows one applied policy's rules.
    Show(PolicyShowArgs),
    /// What an applied principal may do on a path, and which rule decides.
    Check(PolicyCheckArgs),
}

/// `policy list`.
#[derive(Debug, Args)]
pub(crate) struct PolicyListArgs {
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `policy show`.
#[derive(Debug, Args)]
pub(crate) struct PolicyShowArgs {
    /// The policy's name.
    pub(crate) name: String,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `policy check`.
#[derive(Debug, Args)]
pub(crate) struct PolicyCheckArgs {
    /// The applied principal.
    #[arg(long)]
    pub(crate) principal: String,
    /// The path to check.
    pub(crate) path: String,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}
