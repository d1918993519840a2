//! `creds ...`: dynamic PostgreSQL credentials from the store's role catalog.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{LeaseIdArgs, LeaseRenewArgs, OperatorArgs, StoreArgs};

/// `creds ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CredsCommand {
    /// Stores the role catalog (a TOML file) in place of the one stored.
    Configure(CredsConfigureArgs),
    /// Shows the stored role catalog (the connection secret's path, never
    /// its value).
    Show(CredsShowArgs),
    /// Issues credentials for a role: a new PostgreSQL login role and its
    /// lease. The password is printed only with --reveal.
    Issue(CredsIssueArgs),
    /// Renews a lease of these credentials (the role's VALID UNTIL moves).
    Renew(LeaseRenewArgs),
    /// Revokes a lease of these credentials: the role is dropped now.
    Revoke(LeaseIdArgs),
}

/// `creds configure`.
#[derive(Debug, Args)]
pub(crate) struct CredsConfigureArgs {
    /// The catalog file (TOML).
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `creds show`.
#[derive(Debug, Args)]
pub(crate) struct CredsShowArgs {
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `creds issue`.
#[derive(Debug, Args)]
pub(crate) struct CredsIssueArgs {
    /// The role (a definition in the catalog).
    pub(crate) role: String,
    /// The lease's TTL (default: the role's default TTL; capped at its
    /// max TTL).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) ttl: Option<u64>,
    /// Also print the password (else only the lease and the user name).
    #[arg(long)]
    pub(crate) reveal: bool,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}
