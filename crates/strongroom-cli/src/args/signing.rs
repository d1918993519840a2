//! `signing-key`, `sign`, `verify`, `pubkey`: signing keys kept in the store.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{OperatorArgs, StoreArgs};

/// `signing-key ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SigningKeyCommand {
    /// Creates a key (version 1), generated inside the library.
    Create(SigningKeyCreateArgs),
    /// Adds a version; new signatures use it, older ones still verify.
    Rotate(SigningKeyNameArgs),
    /// Shows a key's type, versions, minimum verify version and rate limit.
    Info(SigningKeyNameArgs),
    /// Raises the minimum verify version: signatures of older versions stop
    /// verifying.
    Retire(SigningKeyRetireArgs),
}

/// `signing-key create`.
#[derive(Debug, Args)]
pub(crate) struct SigningKeyCreateArgs {
    /// The key's name (a path, e.g. `payments/release`).
    pub(crate) name: String,
    /// `ed25519`, `ecdsa_p256` or `secp256k1`.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) key_type: String,
    /// A rate limit: signatures per second (per process) ...
    #[arg(long, requires = "burst")]
    pub(crate) rate: Option<u32>,
    /// ... and how many at once.
    #[arg(long, requires = "rate")]
    pub(crate) burst: Option<u32>,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `signing-key rotate` and `info`.
#[derive(Debug, Args)]
pub(crate) struct SigningKeyNameArgs {
    /// The key's name.
    pub(crate) name: String,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `signing-key retire`.
#[derive(Debug, Args)]
pub(crate) struct SigningKeyRetireArgs {
    /// The key's name.
    pub(crate) name: String,
    /// The new minimum verify version.
    #[arg(long)]
    pub(crate) min_verify_version: u32,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// What `sign` signs and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SignMode {
    /// The key's own scheme over the message.
    Plain,
    /// secp256k1: an EIP-191 personal message (`0x...` r||s||v).
    EthPersonal,
    /// secp256k1: a 32-byte transaction hash (hex on stdin), EIP-155 `v`.
    EthTxHash,
}

/// `sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The key's name.
    pub(crate) name: String,
    /// Read the message from this file instead of stdin.
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// What to sign.
    #[arg(long, value_enum, default_value = "plain")]
    pub(crate) mode: SignMode,
    /// The EIP-155 chain id (with --mode eth-tx-hash).
    #[arg(long)]
    pub(crate) chain_id: Option<u64>,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgsSig {
    /// The key's name.
    pub(crate) name: String,
    /// The signature as `sign` printed it (`strongroom:v<n>:<base64>`).
    pub(crate) signature: String,
    /// Read the message from this file instead of stdin.
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `pubkey`.
#[derive(Debug, Args)]
pub(crate) struct PubkeyArgs {
    /// The key's name.
    pub(crate) name: String,
    /// A version (default: the newest).
    #[arg(long)]
    pub(crate) version: Option<u32>,
    /// The raw public key in hex instead of PEM.
    #[arg(long, conflicts_with = "eth_address")]
    pub(crate) raw: bool,
    /// The Ethereum address (secp256k1 keys).
    #[arg(long)]
    pub(crate) eth_address: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}
