//! `approval ...` and the `--approval ID` of the gated commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use strongroom::approvals::GatedOperation;

use super::{KeyVersionArgs, OperatorArgs, PathArgs, StoreArgs, VersionsArgs};

/// `approval ...`: requests that let a gated operation run once, and the
/// gates that say which operations need them.
#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalCommand {
    /// Asks for a gated operation on a path to run once; prints the
    /// request id to give the approvers and then `--approval`.
    Request(ApprovalRequestArgs),
    /// Approves a request as the operator (an approver its gates name,
    /// not its requester).
    Approve(ApprovalIdArgs),
    /// Refuses a request as one of its approvers: it can never run.
    Refuse(ApprovalIdArgs),
    /// Lists the stored requests and their states.
    List(ApprovalListArgs),
    /// Shows one request: its reason, approvals and refusals.
    Show(ApprovalShowArgs),
    /// The gates: which operations on which paths need how many approvals
    /// from whom.
    #[command(subcommand)]
    Gates(ApprovalGatesCommand),
}

/// `approval gates ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalGatesCommand {
    /// Replaces the store's gates with those of a TOML file (`[[gate]]`
    /// tables with operation, pattern, required, approvers).
    Set(ApprovalGatesSetArgs),
    /// Shows the store's gates (as a gates file, or --json).
    Show(ApprovalListArgs),
}

fn parse_operation(s: &str) -> Result<GatedOperation, String> {
    s.parse()
        .map_err(|e: strongroom::approvals::ApprovalError| e.to_string())
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    strongroom::declarative::parse_interval(s)
        .ok_or_else(|| "a time such as 90s, 30m, 12h or 7d".to_owned())
}

/// `approval request`.
#[derive(Debug, Args)]
pub(crate) struct ApprovalRequestArgs {
    /// The operation: destroy, sensitive_read (with a secret path),
    /// root_key_rotate, key_destroy or apply_config (no path).
    #[arg(value_parser = parse_operation)]
    pub(crate) operation: GatedOperation,
    /// The secret path (destroy, sensitive_read).
    pub(crate) path: Option<String>,
    /// Why (shown to the approvers; kept in the request, not in the audit
    /// file).
    #[arg(long)]
    pub(crate) reason: String,
    /// How long the request may wait for approvals and its use.
    #[arg(long, value_name = "TIME", default_value = "1h", value_parser = parse_ttl)]
    pub(crate) ttl: Duration,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `approval approve` and `refuse`.
#[derive(Debug, Args)]
pub(crate) struct ApprovalIdArgs {
    /// The request id.
    pub(crate) id: String,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `approval show`.
#[derive(Debug, Args)]
pub(crate) struct ApprovalShowArgs {
    /// The request id.
    pub(crate) id: String,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `approval list` and `approval gates show`.
#[derive(Debug, Args)]
pub(crate) struct ApprovalListArgs {
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `approval gates set`.
#[derive(Debug, Args)]
pub(crate) struct ApprovalGatesSetArgs {
    /// The gates file (TOML); an empty file removes every gate.
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `--approval ID`.
#[derive(Debug, Args)]
pub(crate) struct ApprovalArg {
    /// An approved request (`strongroom approval request`) this command
    /// uses up: needed where an approval gate holds the operation.
    #[arg(long, value_name = "ID")]
    pub(crate) approval: Option<String>,
}

/// `destroy`.
#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    pub(crate) versions: VersionsArgs,
    #[command(flatten)]
    pub(crate) approval: ApprovalArg,
}

/// `purge`.
#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    pub(crate) path: PathArgs,
    #[command(flatten)]
    pub(crate) approval: ApprovalArg,
}

/// `destroy-key`.
#[derive(Debug, Args)]
pub(crate) struct DestroyKeyArgs {
    #[command(flatten)]
    pub(crate) key: KeyVersionArgs,
    #[command(flatten)]
    pub(crate) approval: ApprovalArg,
}
