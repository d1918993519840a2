//! `pki ...`: the internal certificate authority.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{OperatorArgs, StoreArgs};

/// `pki ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PkiCommand {
    /// Creates the mount's root CA (its key generated and sealed in the
    /// store, never exported); prints its certificate (PEM).
    CreateRoot(PkiCreateRootArgs),
    /// Writes a role: which names, key types, usages and TTLs it issues.
    Role(PkiRoleArgs),
    /// Issues a certificate under a role into a directory: cert.pem,
    /// chain.pem and key.pem (mode 0600); prints its serial and lease.
    Issue(PkiIssueArgs),
    /// Revokes a certificate by serial (hex): it goes on the next CRL.
    Revoke(PkiSerialArgs),
    /// Prints the mount's current CRL (PEM), signing a new one if due.
    Crl(PkiMountArgs),
    /// Prints the mount's CA certificate chain (PEM).
    Ca(PkiMountArgs),
}

/// The mount every `pki` command acts on.
#[derive(Debug, Args)]
pub(crate) struct PkiMount {
    /// The PKI mount (records under `pki/<mount>/`).
    #[arg(long, default_value = "pki")]
    pub(crate) mount: String,
}

/// `pki create-root`.
#[derive(Debug, Args)]
pub(crate) struct PkiCreateRootArgs {
    /// The CA's common name.
    #[arg(long)]
    pub(crate) common_name: String,
    /// `ed25519` or `ecdsa-p256`.
    #[arg(long, default_value = "ecdsa-p256", value_parser = parse_key_type)]
    pub(crate) key_type: strongroom_pki::KeyType,
    /// The CA certificate's lifetime in days.
    #[arg(long, default_value_t = 3650)]
    pub(crate) ttl_days: u64,
    #[command(flatten)]
    pub(crate) mount: PkiMount,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `pki role`.
#[derive(Debug, Args)]
pub(crate) struct PkiRoleArgs {
    /// The role's name.
    pub(crate) name: String,
    /// A DNS name or `*.domain` pattern the role issues (repeat).
    #[arg(long = "allow", value_name = "NAME", required = true)]
    pub(crate) allowed: Vec<String>,
    /// Also issue `localhost`.
    #[arg(long)]
    pub(crate) allow_localhost: bool,
    /// Also issue IP address SANs.
    #[arg(long)]
    pub(crate) allow_ip_sans: bool,
    /// Key types it issues (repeat; default: both).
    #[arg(long = "key-type", value_parser = parse_key_type)]
    pub(crate) key_types: Vec<strongroom_pki::KeyType>,
    /// Usages it issues: `server`, `client` (repeat; default: both).
    #[arg(long = "usage", value_parser = parse_usage)]
    pub(crate) usages: Vec<strongroom_pki::Usage>,
    /// Default TTL in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub(crate) ttl: u64,
    /// Longest TTL in seconds.
    #[arg(long, default_value_t = 30 * 86_400)]
    pub(crate) max_ttl: u64,
    #[command(flatten)]
    pub(crate) mount: PkiMount,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `pki issue`.
#[derive(Debug, Args)]
pub(crate) struct PkiIssueArgs {
    /// The role.
    pub(crate) role: String,
    /// DNS names for the certificate.
    pub(crate) names: Vec<String>,
    /// IP addresses for the certificate (repeat).
    #[arg(long = "ip")]
    pub(crate) ips: Vec<std::net::IpAddr>,
    /// The common name (default: the first DNS name).
    #[arg(long)]
    pub(crate) common_name: Option<String>,
    /// `ed25519` or `ecdsa-p256` (default: the role's first).
    #[arg(long, value_parser = parse_key_type)]
    pub(crate) key_type: Option<strongroom_pki::KeyType>,
    /// TTL in seconds (default: the role's).
    #[arg(long)]
    pub(crate) ttl: Option<u64>,
    /// Where to write cert.pem, chain.pem and key.pem (created 0700 if
    /// missing; existing files are not overwritten).
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: PathBuf,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) mount: PkiMount,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `pki revoke`.
#[derive(Debug, Args)]
pub(crate) struct PkiSerialArgs {
    /// The certificate's serial (hex, as `pki issue` prints it).
    pub(crate) serial: String,
    #[command(flatten)]
    pub(crate) mount: PkiMount,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `pki crl` and `pki ca`.
#[derive(Debug, Args)]
pub(crate) struct PkiMountArgs {
    #[command(flatten)]
    pub(crate) mount: PkiMount,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

fn parse_key_type(s: &str) -> std::result::Result<strongroom_pki::KeyType, String> {
    match s {
        "ed25519" => Ok(strongroom_pki::KeyType::Ed25519),
        "ecdsa-p256" => Ok(strongroom_pki::KeyType::EcdsaP256),
        _ => Err("use ed25519 or ecdsa-p256".into()),
    }
}

fn parse_usage(s: &str) -> std::result::Result<strongroom_pki::Usage, String> {
    match s {
        "server" => Ok(strongroom_pki::Usage::Server),
        "client" => Ok(strongroom_pki::Usage::Client),
        _ => Err("use server or client".into()),
    }
}
