//! `inventory`: secrets filtered by metadata and last read.

use std::path::PathBuf;

use clap::Args;

use super::{OperatorArgs, StoreArgs};

/// `inventory`.
#[derive(Debug, Args)]
pub(crate) struct InventoryArgs {
    /// Only secrets at or under this prefix ("" for all).
    #[arg(default_value = "")]
    pub(crate) prefix: String,
    /// Only secrets with this owner.
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// Only secrets in this environment.
    #[arg(long)]
    pub(crate) environment: Option<String>,
    /// Only secrets with every tag given (repeat, or comma-separated).
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub(crate) tags: Vec<String>,
    /// Only secrets whose rotation is due (rotation interval elapsed since
    /// the last rotation or creation).
    #[arg(long)]
    pub(crate) overdue: bool,
    /// Only secrets with no successful value read recorded in the last N
    /// days of the audit file given with --audit-file.
    #[arg(long, value_name = "N", requires = "audit_file")]
    pub(crate) unread_days: Option<u32>,
    /// The store's audit file (JSON lines) to find the last read of each
    /// secret in; it is verified against the store's saved head first, like
    /// `audit verify`.
    #[arg(long, value_name = "FILE")]
    pub(crate) audit_file: Option<PathBuf>,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}
