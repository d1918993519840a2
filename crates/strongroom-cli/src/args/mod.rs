//! The command line: every command, argument and help text, as clap reads
//! them. No behaviour here beyond parsing. This file holds the commands,
//! the store and operator arguments shared by all, and the older commands'
//! arguments; the signing, CA, credential, policy and inventory commands'
//! arguments are in the submodules of those names.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use strongroom::audit::Checkpoint;

use crate::exit::EXIT_CODES;

mod approval;
mod creds;
mod inventory;
mod pki;
mod policy;
mod signing;

pub(crate) use approval::*;
pub(crate) use creds::*;
pub(crate) use inventory::*;
pub(crate) use pki::*;
pub(crate) use policy::*;
pub(crate) use signing::*;

/// The database path when `--db` is not given.
pub(crate) const ENV_DB: &str = "STRONGROOM_DB";
/// The key file when no protector option is given (and `keygen`'s default).
pub(crate) const ENV_KEY_FILE: &str = "STRONGROOM_KEY_FILE";
/// The PKCS#11 module when no protector option is given.
pub(crate) const ENV_PKCS11_MODULE: &str = "STRONGROOM_PKCS11_MODULE";
/// The token label when `--token` is not given.
pub(crate) const ENV_PKCS11_TOKEN: &str = "STRONGROOM_PKCS11_TOKEN";
/// The token key label when `--key-label` is not given.
pub(crate) const ENV_PKCS11_KEY_LABEL: &str = "STRONGROOM_PKCS11_KEY_LABEL";
/// The PIN file when `--pin-file` is not given (a path: the PIN itself is
/// never read from the environment).
pub(crate) const ENV_PKCS11_PIN_FILE: &str = "STRONGROOM_PKCS11_PIN_FILE";
/// The Shamir shares file when no protector option is given.
pub(crate) const ENV_SHAMIR_SHARES_FILE: &str = "STRONGROOM_SHAMIR_SHARES_FILE";

/// The most records `rewrap` takes per batch (the library's limit).
const MAX_BATCH: usize = 10_000;

/// Operate a Strongroom store kept in an SQLite file or a PostgreSQL database.
#[derive(Debug, Parser)]
#[command(name = "strongroom", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Writes a new random 256-bit key file (mode 0600); refuses to overwrite.
    Keygen {
        /// Where to write the key.
        #[arg(env = ENV_KEY_FILE)]
        key_file: PathBuf,
    },
    /// Creates a new store in the database, its root key wrapped by the
    /// protector given.
    Init(InitArgs),
    /// Checks that the protector given opens the store (key file, token or
    /// Shamir shares) and says what it opened; audited as `unseal`.
    Unseal(StatusArgs),
    /// Shows key versions, their states and encryption reservations.
    Status(StatusArgs),
    /// Writes a new version of a secret, its value read from stdin.
    Put(PutArgs),
    /// Shows a secret's version facts; with --reveal writes the raw value to stdout.
    Get(GetArgs),
    /// Lists one level under a prefix (folders end in '/'), or every path with --recursive.
    List(ListArgs),
    /// Soft-deletes versions (the current one if none given).
    Delete(VersionsArgs),
    /// Restores soft-deleted versions.
    Undelete(VersionsArgs),
    /// Destroys versions: their sealed bytes are removed for good.
    Destroy(DestroyArgs),
    /// Shows a secret's metadata and version list; with options, changes it first.
    Metadata(MetadataArgs),
    /// Removes a secret entirely: its metadata and every version.
    Purge(PurgeArgs),
    /// Adds a new keyring key version and makes it primary.
    Rotate(StoreCommandArgs),
    /// Makes an active key version primary again.
    Promote(KeyVersionArgs),
    /// Re-seals every record not under the primary key (resumable).
    Rewrap(RewrapArgs),
    /// Sets the minimum decryption version: older key versions are retired.
    Retire(RetireArgs),
    /// Erases a retired key version (refused while records still need it).
    DestroyKey(DestroyKeyArgs),
    /// Replaces the root key with a fresh one wrapped by a new protector.
    RotateRoot(RotateRootArgs),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Runs a command with secrets as environment variables and files,
    /// following their rotation (in place of a .env file).
    Run(RunArgs),
    /// Imports secrets from a .env file or a Vault KV v2 JSON export.
    Import(ImportArgs),
    /// Lease tools: list, look up, renew and revoke leases.
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Dynamic PostgreSQL credentials from the role catalog kept in the
    /// store: configure and show the catalog; issue, renew and revoke.
    #[command(subcommand)]
    Creds(CredsCommand),
    /// Signing keys kept in the store: create, rotate, show, retire
    /// versions. Their private keys never leave the store.
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
    /// Signs stdin (or --file) with a signing key; prints the signature.
    Sign(SignArgs),
    /// Verifies a signature of stdin (or --file); exit 31 if it does not
    /// match.
    Verify(VerifyArgsSig),
    /// Prints a signing key's public key (PEM, or --raw hex, or
    /// --eth-address for secp256k1).
    Pubkey(PubkeyArgs),
    /// The internal certificate authority: create a root CA, define roles,
    /// issue and revoke certificates, publish the CRL.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Policies and principals as last applied (`apply`): list, show, and
    /// what a principal may do on a path.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Lists secrets with their owner, environment, tags and rotation
    /// state, filtered by owner, environment, tag, overdue rotation or
    /// (with the store's audit file) no read for N days.
    Inventory(InventoryArgs),
    /// Approval gates: request, approve, refuse, list and show requests
    /// that let a gated operation run once; set and show the gates.
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// Shows what `apply` would change to make the store what the
    /// declaration files (a TOML file or a directory of them) say.
    Plan(PlanArgs),
    /// Applies the declaration files (or a saved plan of them) in one
    /// atomic write; refused (exit 25) if the store changed since the plan.
    Apply(ApplyArgs),
    /// Reports where the store differs from the declaration files (exit 26
    /// if it does).
    Drift(DriftArgs),
    /// Prints a shell completion script (bash, zsh or fish) to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// The shells `completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompletionShell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LeaseCommand {
    /// Lists the live leases under a prefix (every lease without one).
    List(LeaseListArgs),
    /// Shows one lease (never its revocation data).
    Lookup(LeaseIdArgs),
    /// Renews a lease (needs its engine's revoker: see the README).
    Renew(LeaseRenewArgs),
    /// Revokes a lease now through its engine.
    Revoke(LeaseIdArgs),
    /// Revokes every lease under a prefix.
    RevokePrefix(LeasePrefixArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verifies a JSON-lines audit file with the store's audit key: an
    /// unbroken chain that reaches the store's saved audit head (a file cut
    /// short, even emptied, fails with the missing sequence numbers).
    Verify(VerifyArgs),
}

/// The database and how to unseal it.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The SQLite database file, or a postgres:// URL (then --audit-log is
    /// required; prefer STRONGROOM_DB to keep the password off the command line).
    #[arg(long, value_name = "PATH", env = ENV_DB)]
    pub(crate) db: PathBuf,
    /// Unseal with this key file (from `strongroom keygen`). Default:
    /// $STRONGROOM_KEY_FILE, when no protector option is given.
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// Unseal through this PKCS#11 module (.so). Default:
    /// $STRONGROOM_PKCS11_MODULE, when no protector option is given.
    #[arg(long, value_name = "SO")]
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// The PKCS#11 token's label.
    #[arg(long, value_name = "LABEL", env = ENV_PKCS11_TOKEN)]
    pub(crate) token: Option<String>,
    /// The token key's label.
    #[arg(long, value_name = "LABEL", env = ENV_PKCS11_KEY_LABEL)]
    pub(crate) key_label: Option<String>,
    /// Read the token PIN from this file (mode 0600); otherwise it is read
    /// from the first line of a piped stdin when stdin is not needed for a
    /// value. The PIN itself is never read from the environment.
    #[arg(long, value_name = "FILE", env = ENV_PKCS11_PIN_FILE)]
    pub(crate) pin_file: Option<PathBuf>,
    /// Unseal with Shamir shares read from this file (mode 0600), one share
    /// per line. Default: $STRONGROOM_SHAMIR_SHARES_FILE, when no protector
    /// option is given.
    #[arg(long, value_name = "FILE")]
    pub(crate) shamir_shares_file: Option<PathBuf>,
    /// Open the SQLite store read-only (the default for a file this process
    /// cannot write): reads work, writes are refused, and the audit file is
    /// a chain of its own that the store cannot anchor (verify it with
    /// `audit verify --unanchored`).
    #[arg(long)]
    pub(crate) read_only: bool,
}

/// Who acts on the store, and where the action is audited.
#[derive(Debug, Args)]
pub(crate) struct OperatorArgs {
    /// The operator's name in the audit records (as `operator:NAME`).
    /// Default: $USER, else $LOGNAME, else the numeric user id.
    #[arg(long, value_name = "NAME")]
    pub(crate) operator: Option<String>,
    /// The audit file (JSON lines, created mode 0600, continued by every
    /// command). Default: the database path with `.audit.jsonl` appended.
    #[arg(long, value_name = "PATH")]
    pub(crate) audit_log: Option<PathBuf>,
}

/// A command that takes only the store (and who acts on it).
#[derive(Debug, Args)]
pub(crate) struct StoreCommandArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `init`: the new database and the protector to create.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The SQLite database file (created if missing), or a postgres:// URL
    /// (its table is created if missing; --audit-log is then required).
    #[arg(long, value_name = "PATH", env = ENV_DB)]
    pub(crate) db: PathBuf,
    /// Wrap the root key with this key file (from `strongroom keygen`).
    /// Default: $STRONGROOM_KEY_FILE, when no protector option is given.
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// Wrap the root key with a new key generated on this PKCS#11 module's
    /// token. Default: $STRONGROOM_PKCS11_MODULE, when no protector option
    /// is given.
    #[arg(long, value_name = "SO")]
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// The PKCS#11 token's label.
    #[arg(long, value_name = "LABEL", env = ENV_PKCS11_TOKEN)]
    pub(crate) token: Option<String>,
    /// The label for the new token key.
    #[arg(long, value_name = "LABEL", env = ENV_PKCS11_KEY_LABEL)]
    pub(crate) key_label: Option<String>,
    /// Read the token PIN from this file (mode 0600); otherwise from stdin.
    /// The PIN itself is never read from the environment.
    #[arg(long, value_name = "FILE", env = ENV_PKCS11_PIN_FILE)]
    pub(crate) pin_file: Option<PathBuf>,
    /// Wrap the root key with a key split into N Shamir shares, K needed
    /// (`K/N`); the shares are printed once and stored nowhere.
    #[arg(long, value_name = "K/N", value_parser = parse_k_of_n)]
    pub(crate) shamir: Option<(u8, u8)>,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `rotate-root`: the protector that wraps the new root key.
#[derive(Debug, Args)]
pub(crate) struct NewProtectorArgs {
    /// Keep the store's PKCS#11 protector: generate the next version of its
    /// token key and re-wrap the root key under it.
    #[arg(long, conflicts_with_all = ["new_key_file", "new_pkcs11_module", "new_shamir"])]
    pub(crate) rotate_token_key: bool,
    /// The new protector: this key file.
    #[arg(long, value_name = "FILE")]
    pub(crate) new_key_file: Option<PathBuf>,
    /// The new protector: a new key generated on this PKCS#11 module's token.
    #[arg(long, value_name = "SO")]
    pub(crate) new_pkcs11_module: Option<PathBuf>,
    /// The new token's label.
    #[arg(long, value_name = "LABEL")]
    pub(crate) new_token: Option<String>,
    /// The label for the new token key.
    #[arg(long, value_name = "LABEL")]
    pub(crate) new_key_label: Option<String>,
    /// The new token's PIN file (mode 0600). Required for a new PKCS#11 protector.
    #[arg(long, value_name = "FILE")]
    pub(crate) new_pin_file: Option<PathBuf>,
    /// The new protector: a fresh key split into N shares, K needed (`K/N`).
    #[arg(long, value_name = "K/N", value_parser = parse_k_of_n)]
    pub(crate) new_shamir: Option<(u8, u8)>,
}

/// `plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// A declaration file, or a directory whose *.toml files are merged.
    #[arg(value_name = "DIR_OR_FILE")]
    pub(crate) source: PathBuf,
    /// Print the plan as JSON (for `apply --plan-file`) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// A declaration file, or a directory whose *.toml files are merged.
    #[arg(value_name = "DIR_OR_FILE")]
    pub(crate) source: PathBuf,
    /// Apply this saved plan (from `plan --json`) instead of planning now;
    /// refused (exit 25) unless it was made from these same files and the
    /// store has not changed since.
    #[arg(long, value_name = "FILE")]
    pub(crate) plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
    #[command(flatten)]
    pub(crate) approval: ApprovalArg,
}

/// `drift`.
#[derive(Debug, Args)]
pub(crate) struct DriftArgs {
    /// A declaration file, or a directory whose *.toml files are merged.
    #[arg(value_name = "DIR_OR_FILE")]
    pub(crate) source: PathBuf,
    /// Print the drift as JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The secret's path (e.g. prod/billing/db-password).
    pub(crate) path: String,
    /// Write only if the current version is N (0: only if absent).
    #[arg(long, value_name = "N")]
    pub(crate) cas: Option<u64>,
    /// Store an empty value (without this, an empty stdin is refused,
    /// exit 18: usually a missing redirect, not an intended secret).
    #[arg(long)]
    pub(crate) allow_empty: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The secret's path.
    pub(crate) path: String,
    /// Read this version instead of the current one.
    #[arg(long, value_name = "N")]
    pub(crate) version: Option<u64>,
    /// Write the value itself (raw bytes, no newline) to stdout; with
    /// --json, as a JSON string (base64 if it is not UTF-8).
    #[arg(long)]
    pub(crate) reveal: bool,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) approval: ApprovalArg,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The prefix ("" or "/" for the top).
    #[arg(default_value = "")]
    pub(crate) prefix: String,
    /// List every secret at any depth, as full paths.
    #[arg(long)]
    pub(crate) recursive: bool,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `delete`, `undelete` and `destroy`.
#[derive(Debug, Args)]
pub(crate) struct VersionsArgs {
    /// The secret's path.
    pub(crate) path: String,
    /// Versions, comma-separated (default: the current version).
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    pub(crate) versions: Vec<u64>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `metadata`.
#[derive(Debug, Args)]
pub(crate) struct MetadataArgs {
    /// The secret's path.
    pub(crate) path: String,
    /// Sets the owner.
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// Sets the environment.
    #[arg(long)]
    pub(crate) environment: Option<String>,
    /// Replaces the tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) tags: Option<Vec<String>>,
    /// Sets the number of versions kept (lowering it prunes at once).
    #[arg(long, value_name = "N")]
    pub(crate) max_versions: Option<u32>,
    /// Sets how often the secret should be rotated, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) rotation_interval: Option<u64>,
    /// Resets a field (owner, environment, tags, custom,
    /// rotation_interval, max_versions); may be repeated.
    #[arg(long, value_name = "FIELD")]
    pub(crate) clear: Vec<String>,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `purge`.
#[derive(Debug, Args)]
pub(crate) struct PathArgs {
    /// The secret's path.
    pub(crate) path: String,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `promote` and `destroy-key`.
#[derive(Debug, Args)]
pub(crate) struct KeyVersionArgs {
    /// The key version.
    pub(crate) version: u32,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `rewrap`.
#[derive(Debug, Args)]
pub(crate) struct RewrapArgs {
    /// Records per atomic batch (1 to 10000).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = parse_batch)]
    pub(crate) batch: usize,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `retire`.
#[derive(Debug, Args)]
pub(crate) struct RetireArgs {
    /// The new minimum decryption version.
    #[arg(long, value_name = "N")]
    pub(crate) min_version: u32,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `rotate-root`.
#[derive(Debug, Args)]
pub(crate) struct RotateRootArgs {
    #[command(flatten)]
    pub(crate) approval: ApprovalArg,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
    #[command(flatten)]
    pub(crate) new: NewProtectorArgs,
}

/// `audit verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The audit file (as written by the JSON-lines file sink).
    pub(crate) file: PathBuf,
    /// A checkpoint kept elsewhere (`seq:mac`) the log must also reach and
    /// match. The store's saved audit head is always checked.
    #[arg(long, value_name = "SEQ:MAC", value_parser = parse_checkpoint)]
    pub(crate) checkpoint: Option<Checkpoint>,
    /// A trusted checkpoint (`seq:mac`) to start after.
    #[arg(long, value_name = "SEQ:MAC", value_parser = parse_checkpoint)]
    pub(crate) from: Option<Checkpoint>,
    /// Leave the store's saved head out: for the audit file of a
    /// read-only open, a chain of its own (a truncation is then caught
    /// only by --checkpoint).
    #[arg(long)]
    pub(crate) unanchored: bool,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// A `rewrap` batch size: 1 to [`MAX_BATCH`]; anything else is refused
/// rather than clamped.
fn parse_batch(s: &str) -> std::result::Result<usize, String> {
    let n = s.trim().parse::<usize>().map_err(|e| e.to_string())?;
    if (1..=MAX_BATCH).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between 1 and {MAX_BATCH}, not {n}"))
    }
}

fn parse_k_of_n(s: &str) -> std::result::Result<(u8, u8), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| "expected K/N, e.g. 3/5".to_owned())?;
    let k = k.trim().parse::<u8>().map_err(|e| format!("K: {e}"))?;
    let n = n.trim().parse::<u8>().map_err(|e| format!("N: {e}"))?;
    Ok((k, n))
}

/// `SEQ:MAC` as `audit verify` prints it (surrounding whitespace, as from a
/// copied line, is ignored); the MAC must be 64 lower-case hex digits
/// (another spelling of a MAC is refused, not normalised).
fn parse_checkpoint(s: &str) -> std::result::Result<Checkpoint, String> {
    s.trim().parse::<Checkpoint>().map_err(|e| e.to_string())
}

/// What `run` does when a secret it gave the command changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OnChange {
    /// Rewrite the files, then send --signal to the command.
    Signal,
    /// Rewrite the files, then stop the command (SIGTERM, SIGKILL after
    /// --grace) and start it again with the new environment.
    Restart,
    /// Only rewrite the files.
    None,
}

/// `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Give the secret at SECRET_PATH to the command as the environment
    /// variable NAME (repeatable). The value must be UTF-8 without NUL.
    #[arg(long = "env", value_name = "NAME=SECRET_PATH")]
    pub(crate) env_specs: Vec<String>,
    /// Write the secret at SECRET_PATH to the file DEST (a plain file name,
    /// mode 0600) in a private directory whose path the command gets in
    /// $STRONGROOM_SECRETS_DIR (repeatable).
    #[arg(long = "file", value_name = "SECRET_PATH=DEST")]
    pub(crate) file_specs: Vec<String>,
    /// Issue dynamic PostgreSQL credentials of ROLE (from the store's role
    /// catalog, see `creds`) and give them to the command as PREFIX_USERNAME
    /// and PREFIX_PASSWORD; renewed while it runs, revoked when it ends
    /// (repeatable).
    #[arg(long = "creds", value_name = "PREFIX=ROLE")]
    pub(crate) creds_specs: Vec<String>,
    /// What to do when a secret changes, or credentials must be replaced.
    /// Default: restart when any --env or --creds is given, else signal.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub(crate) on_change: Option<OnChange>,
    /// The signal sent for --on-change signal (name or number).
    #[arg(long, value_name = "SIGNAL", default_value = "HUP")]
    pub(crate) signal: String,
    /// Seconds a stopped command has after SIGTERM before SIGKILL (restart).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) grace: u64,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub(crate) command: Vec<OsString>,
}

/// What `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImportFormat {
    /// KEY=VALUE lines (`export`, comments, quotes).
    Dotenv,
    /// A Vault KV v2 JSON export (`vault kv get -format=json`, or a map of
    /// Vault paths to key/value objects).
    #[value(name = "vault-kv2")]
    VaultKv2,
}

/// `import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The file's format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub(crate) format: ImportFormat,
    /// The file to import.
    pub(crate) file: PathBuf,
    /// The path every imported secret is written under.
    #[arg(long, value_name = "PATH_PREFIX")]
    pub(crate) prefix: String,
    /// Write a new version of secrets that already exist.
    #[arg(long, conflicts_with = "skip_existing")]
    pub(crate) overwrite: bool,
    /// Leave secrets that already exist as they are.
    #[arg(long)]
    pub(crate) skip_existing: bool,
    /// Store empty values (refused otherwise).
    #[arg(long)]
    pub(crate) allow_empty: bool,
    /// Print the paths that would be written (never values); write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// A lease id as printed (`lease_` and 32 hex digits).
fn parse_lease_id(s: &str) -> std::result::Result<strongroom::lease::LeaseId, String> {
    s.trim()
        .parse()
        .map_err(|e: strongroom::Error| e.to_string())
}

/// `lease list`.
#[derive(Debug, Args)]
pub(crate) struct LeaseListArgs {
    /// The path prefix (whole segments); every lease without one.
    pub(crate) prefix: Option<String>,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `lease lookup` and `lease revoke`.
#[derive(Debug, Args)]
pub(crate) struct LeaseIdArgs {
    /// The lease id (`lease_` and 32 hex digits).
    #[arg(value_parser = parse_lease_id)]
    pub(crate) id: strongroom::lease::LeaseId,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `lease renew`.
#[derive(Debug, Args)]
pub(crate) struct LeaseRenewArgs {
    /// The lease id (`lease_` and 32 hex digits).
    #[arg(value_parser = parse_lease_id)]
    pub(crate) id: strongroom::lease::LeaseId,
    /// The new expiry, in seconds from now (capped at the lease's maximum
    /// TTL). Default: the lease's TTL.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) increment: Option<u64>,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}

/// `lease revoke-prefix`.
#[derive(Debug, Args)]
pub(crate) struct LeasePrefixArgs {
    /// The path prefix (whole segments, not empty).
    pub(crate) prefix: String,
    /// Print JSON (field names in the README) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
}
