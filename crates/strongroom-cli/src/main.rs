//! `strongroom`: the operator command for a Strongroom store kept in an
//! SQLite file. It parses arguments, calls the library and formats the
//! result; every operation is the library's. See the crate README for the
//! commands and the exit codes.
#![forbid(unsafe_code)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use strongroom::audit::{AuditError, AuditFileCheck, Checkpoint};
use strongroom::keyring::KeyInfo;
use strongroom::protector::{KeyProtector, SoftwareProtector};
use strongroom::secrets::{MetadataPatch, SecretError, VersionInfo};
use strongroom::shamir::{ShamirProtector, Share};
use strongroom::storage::DynStorage;
use strongroom::{Error, Options, ProtectorErrorKind, SecretString, Strongroom};
use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector};
use strongroom_sqlx::SqliteStore;
use zeroize::Zeroizing;

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   audit verify: the chain does not verify or stops before the store's saved
      head or a given checkpoint (the first broken or missing seq is printed)
  2   usage error (bad or missing arguments)
  3   secret or version not found, deleted, destroyed or pruned
  4   check-and-set mismatch or concurrent change; re-read and retry
  5   unseal failed: wrong key file, wrong shares, wrong PIN or tampered root key
  6   key file refused (loose permissions, bad content, already exists, unreadable)
  7   key protector or HSM error (module, token, key, mechanism, PIN locked)
  8   storage error (database unreadable or unavailable)
  9   store state: no database, not initialised, already initialised, or sealed
  10  keyring refused the change (unknown, retired or still-used key version)
  11  invalid argument or secret path
  12  input/output error of the command itself (stdin, PIN, shares or audit file)
  13  rewrap finished but records remain on older key versions
  14  other error
  15  a stored record is corrupt: edited, forged, moved or damaged at rest
  16  a sealed value did not open (decryption failed)";

/// Operate a Strongroom store kept in an SQLite file.
#[derive(Debug, Parser)]
#[command(name = "strongroom", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a new random 256-bit key file (mode 0600); refuses to overwrite.
    Keygen {
        /// Where to write the key.
        key_file: PathBuf,
    },
    /// Creates a new store in the database, its root key wrapped by the
    /// protector given.
    Init(InitArgs),
    /// Shows key versions, their states and encryption reservations.
    Status(StoreArgs),
    /// Writes a new version of a secret, its value read from stdin.
    Put {
        /// The secret's path (e.g. prod/billing/db-password).
        path: String,
        /// Write only if the current version is N (0: only if absent).
        #[arg(long, value_name = "N")]
        cas: Option<u64>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Shows a secret's version facts; with --reveal writes the raw value to stdout.
    Get {
        /// The secret's path.
        path: String,
        /// Read this version instead of the current one.
        #[arg(long, value_name = "N")]
        version: Option<u64>,
        /// Write the value itself (raw bytes, no newline) to stdout.
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Lists one level under a prefix (folders end in '/'), or every path with --recursive.
    List {
        /// The prefix ("" or "/" for the top).
        #[arg(default_value = "")]
        prefix: String,
        /// List every secret at any depth, as full paths.
        #[arg(long)]
        recursive: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Soft-deletes versions (the current one if none given).
    Delete(VersionsArgs),
    /// Restores soft-deleted versions.
    Undelete(VersionsArgs),
    /// Destroys versions: their sealed bytes are removed for good.
    Destroy(VersionsArgs),
    /// Shows a secret's metadata and version list; with options, changes it first.
    Metadata {
        /// The secret's path.
        path: String,
        /// Sets the owner.
        #[arg(long)]
        owner: Option<String>,
        /// Sets the environment.
        #[arg(long)]
        environment: Option<String>,
        /// Replaces the tags (comma-separated).
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        /// Sets the number of versions kept (lowering it prunes at once).
        #[arg(long, value_name = "N")]
        max_versions: Option<u32>,
        /// Sets how often the secret should be rotated, in seconds.
        #[arg(long, value_name = "SECONDS")]
        rotation_interval: Option<u64>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Removes a secret entirely: its metadata and every version.
    Purge {
        /// The secret's path.
        path: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Adds a new keyring key version and makes it primary.
    Rotate(StoreArgs),
    /// Makes an active key version primary again.
    Promote {
        /// The key version.
        version: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-seals every record not under the primary key (resumable).
    Rewrap {
        /// Records per atomic batch.
        #[arg(long, value_name = "N", default_value_t = 500)]
        batch: usize,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Sets the minimum decryption version: older key versions are retired.
    Retire {
        /// The new minimum decryption version.
        #[arg(long, value_name = "N")]
        min_version: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Erases a retired key version (refused while records still need it).
    DestroyKey {
        /// The key version.
        version: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replaces the root key with a fresh one wrapped by a new protector.
    RotateRoot {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        new: NewProtectorArgs,
    },
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verifies a JSON-lines audit file with the store's audit key: an
    /// unbroken chain that reaches the store's saved audit head (a file cut
    /// short, even emptied, fails with the missing sequence numbers).
    Verify {
        /// The audit file (as written by the JSON-lines file sink).
        file: PathBuf,
        /// A checkpoint kept elsewhere (`seq:mac`) the log must also reach and
        /// match. The store's saved audit head is always checked.
        #[arg(long, value_name = "SEQ:MAC", value_parser = parse_checkpoint)]
        checkpoint: Option<Checkpoint>,
        /// A trusted checkpoint (`seq:mac`) to start after.
        #[arg(long, value_name = "SEQ:MAC", value_parser = parse_checkpoint)]
        from: Option<Checkpoint>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The database and how to unseal it.
#[derive(Debug, Args)]
struct StoreArgs {
    /// The SQLite database file.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Unseal with this key file (from `strongroom keygen`).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Unseal through this PKCS#11 module (.so).
    #[arg(long, value_name = "SO")]
    pkcs11_module: Option<PathBuf>,
    /// The PKCS#11 token's label.
    #[arg(long, value_name = "LABEL")]
    token: Option<String>,
    /// The token key's label.
    #[arg(long, value_name = "LABEL")]
    key_label: Option<String>,
    /// Read the token PIN from this file (mode 0600); otherwise it is read
    /// from the first line of a piped stdin when stdin is not needed for a value.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Unseal with Shamir shares read from this file (mode 0600), one share per line.
    #[arg(long, value_name = "FILE")]
    shamir_shares_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// The SQLite database file (created if missing).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Wrap the root key with this key file (from `strongroom keygen`).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Wrap the root key with a new key generated on this PKCS#11 module's token.
    #[arg(long, value_name = "SO")]
    pkcs11_module: Option<PathBuf>,
    /// The PKCS#11 token's label.
    #[arg(long, value_name = "LABEL")]
    token: Option<String>,
    /// The label for the new token key.
    #[arg(long, value_name = "LABEL")]
    key_label: Option<String>,
    /// Read the token PIN from this file (mode 0600); otherwise from stdin.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Wrap the root key with a key split into N Shamir shares, K needed
    /// (`K/N`); the shares are printed once and stored nowhere.
    #[arg(long, value_name = "K/N", value_parser = parse_k_of_n)]
    shamir: Option<(u8, u8)>,
}

#[derive(Debug, Args)]
struct NewProtectorArgs {
    /// Keep the store's PKCS#11 protector: generate the next version of its
    /// token key and re-wrap the root key under it.
    #[arg(long, conflicts_with_all = ["new_key_file", "new_pkcs11_module", "new_shamir"])]
    rotate_token_key: bool,
    /// The new protector: this key file.
    #[arg(long, value_name = "FILE")]
    new_key_file: Option<PathBuf>,
    /// The new protector: a new key generated on this PKCS#11 module's token.
    #[arg(long, value_name = "SO")]
    new_pkcs11_module: Option<PathBuf>,
    /// The new token's label.
    #[arg(long, value_name = "LABEL")]
    new_token: Option<String>,
    /// The label for the new token key.
    #[arg(long, value_name = "LABEL")]
    new_key_label: Option<String>,
    /// The new token's PIN file (mode 0600). Required for a new PKCS#11 protector.
    #[arg(long, value_name = "FILE")]
    new_pin_file: Option<PathBuf>,
    /// The new protector: a fresh key split into N shares, K needed (`K/N`).
    #[arg(long, value_name = "K/N", value_parser = parse_k_of_n)]
    new_shamir: Option<(u8, u8)>,
}

#[derive(Debug, Args)]
struct VersionsArgs {
    /// The secret's path.
    path: String,
    /// Versions, comma-separated (default: the current version).
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    versions: Vec<u64>,
    #[command(flatten)]
    store: StoreArgs,
}

/// What went wrong, grouped by what the operator can do about it.
#[derive(Debug)]
enum Failure {
    /// An error from the library.
    Lib(Error),
    /// Arguments that clap cannot check on its own.
    Usage(String),
    /// The command's own input or output.
    Io(String),
    /// `audit verify` found a broken chain.
    ChainBroken(AuditError),
    /// The database file does not exist.
    NoDatabase(PathBuf),
    /// Rewrap left unreadable records.
    RewrapIncomplete(u64),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Lib(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lib(e) => write!(f, "{e}"),
            Self::Usage(m) | Self::Io(m) => f.write_str(m),
            Self::ChainBroken(e) => write!(f, "{e}"),
            Self::NoDatabase(p) => write!(
                f,
                "no database at {}; run `strongroom init` first",
                p.display()
            ),
            Self::RewrapIncomplete(n) => write!(
                f,
                "rewrap left {n} record(s) on older key versions (unreadable ones listed above); do not retire those versions yet"
            ),
        }
    }
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::ChainBroken(_) => 1,
            Self::Usage(_) => 2,
            Self::Io(_) => 12,
            Self::NoDatabase(_) => 9,
            Self::RewrapIncomplete(_) => 13,
            Self::Lib(e) => lib_exit_code(e),
        }
    }
}

fn lib_exit_code(e: &Error) -> u8 {
    match e {
        Error::Secret(
            SecretError::NotFound { .. }
            | SecretError::VersionDeleted { .. }
            | SecretError::VersionDestroyed { .. }
            | SecretError::VersionPruned { .. },
        ) => 3,
        Error::Secret(SecretError::CasMismatch { .. } | SecretError::Contended { .. })
        | Error::StorageConflict { .. } => 4,
        Error::UnsealFailed
        | Error::Protector {
            kind: ProtectorErrorKind::UnwrapFailed | ProtectorErrorKind::WrongPin,
            ..
        }
        | Error::Shamir(_) => 5,
        Error::KeyFile { .. } => 6,
        Error::Protector { .. } => 7,
        Error::Storage { .. } => 8,
        Error::CorruptRecord { .. } => 15,
        Error::DecryptionFailed => 16,
        Error::NotInitialized | Error::AlreadyInitialized | Error::Sealed => 9,
        Error::UnknownKeyVersion { .. }
        | Error::KeyVersionRetired { .. }
        | Error::InvalidKeyTransition { .. }
        | Error::KeyInUse { .. } => 10,
        Error::InvalidPath { .. } | Error::InvalidArgument(_) | Error::Secret(_) => 11,
        _ => 14,
    }
}

type CliResult<T = ()> = std::result::Result<T, Failure>;

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
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("strongroom: error: {f}");
            ExitCode::from(f.exit_code())
        }
    }
}

async fn run(command: Command) -> CliResult {
    match command {
        Command::Keygen { key_file } => {
            SoftwareProtector::generate_key_file(&key_file)?;
            println!(
                "wrote a new key file {} (mode 0600); keep it away from the database and its backups",
                key_file.display()
            );
            Ok(())
        }
        Command::Init(args) => init(args).await,
        Command::Status(store) => {
            let open = Open::unseal(&store, true).await?;
            let sr = &open.sr;
            let keyring = sr.keyring()?;
            println!("database: {}", store.db.display());
            println!("protector: {}", open.protector.as_dyn().kind());
            if let Unsealer::Pkcs11(p) = &open.protector {
                println!("token key version: {}", p.current_version());
            }
            println!("primary key version: {}", keyring.primary_version());
            println!(
                "minimum decryption version: {}",
                keyring.min_decryption_version()
            );
            println!(
                "{:<8} {:<10} {:<18} {:<26} encryptions reserved",
                "version", "state", "algorithm", "created"
            );
            for k in sr.keys()? {
                print_key(&k);
            }
            open.close().await;
            Ok(())
        }
        Command::Put { path, cas, store } => {
            // The value comes from stdin, so the PIN (if any) must come from a file.
            let open = Open::unseal(&store, false).await?;
            let mut value = Zeroizing::new(Vec::new());
            std::io::stdin()
                .read_to_end(&mut value)
                .map_err(|e| Failure::Io(format!("cannot read the value from stdin: {e}")))?;
            let info = open.sr.secrets().put(&path, &value, cas).await?;
            println!("wrote {path} version {}", info.version);
            open.close().await;
            Ok(())
        }
        Command::Get {
            path,
            version,
            reveal,
            store,
        } => {
            let open = Open::unseal(&store, true).await?;
            let secrets = open.sr.secrets();
            let got = match version {
                Some(v) => secrets.get_version(&path, v).await?,
                None => secrets.get(&path).await?,
            };
            if reveal {
                let mut out = std::io::stdout().lock();
                out.write_all(got.value.expose_secret())
                    .and_then(|()| out.flush())
                    .map_err(|e| Failure::Io(format!("cannot write the value to stdout: {e}")))?;
            } else {
                println!("path: {}", got.path);
                print_version(&got.version);
                println!(
                    "value: {} bytes (use --reveal to print it)",
                    got.value.len()
                );
            }
            open.close().await;
            Ok(())
        }
        Command::List {
            prefix,
            recursive,
            store,
        } => {
            let open = Open::unseal(&store, true).await?;
            let secrets = open.sr.secrets();
            if recursive {
                for p in secrets.list_all(&prefix).await? {
                    println!("{p}");
                }
            } else {
                for entry in secrets.list(&prefix).await? {
                    println!("{entry}");
                }
            }
            open.close().await;
            Ok(())
        }
        Command::Delete(a) => change_versions(a, VersionChange::Delete).await,
        Command::Undelete(a) => change_versions(a, VersionChange::Undelete).await,
        Command::Destroy(a) => change_versions(a, VersionChange::Destroy).await,
        Command::Purge { path, store } => {
            let open = Open::unseal(&store, true).await?;
            open.sr.secrets().delete_metadata(&path).await?;
            println!("{path} removed with all its versions");
            open.close().await;
            Ok(())
        }
        Command::Metadata {
            path,
            owner,
            environment,
            tags,
            max_versions,
            rotation_interval,
            store,
        } => {
            let open = Open::unseal(&store, true).await?;
            let mut patch = MetadataPatch::new();
            let mut changed = false;
            if let Some(o) = owner {
                patch = patch.owner(o);
                changed = true;
            }
            if let Some(e) = environment {
                patch = patch.environment(e);
                changed = true;
            }
            if let Some(t) = tags {
                patch = patch.tags(t);
                changed = true;
            }
            if let Some(n) = max_versions {
                patch = patch.max_versions(n);
                changed = true;
            }
            if let Some(secs) = rotation_interval {
                patch = patch.rotation_interval(std::time::Duration::from_secs(secs));
                changed = true;
            }
            let secrets = open.sr.secrets();
            let m = if changed {
                secrets.update_metadata(&path, patch).await?
            } else {
                secrets.metadata(&path).await?
            };
            println!("path: {}", m.path);
            println!("current version: {}", m.current_version);
            println!("oldest version: {}", m.oldest_version);
            println!(
                "max versions: {}{}",
                m.effective_max_versions,
                if m.max_versions.is_some() {
                    ""
                } else {
                    " (store default)"
                }
            );
            println!("created: {}", m.created_at);
            println!("updated: {}", m.updated_at);
            if let Some(t) = m.last_rotated_at {
                println!("last rotated: {t}");
            }
            if let Some(o) = &m.owner {
                println!("owner: {o}");
            }
            if let Some(env) = &m.environment {
                println!("environment: {env}");
            }
            if !m.tags.is_empty() {
                let tags: Vec<&str> = m.tags.iter().map(String::as_str).collect();
                println!("tags: {}", tags.join(", "));
            }
            for (k, v) in &m.custom {
                println!("custom {k}: {v}");
            }
            if let Some(i) = m.rotation_interval {
                println!("rotation interval: {}s", i.as_secs());
            }
            if let Some(due) = m.rotation_due_at() {
                println!("rotation due: {due}");
            }
            println!("versions:");
            for v in &m.versions {
                print!("  ");
                print_version(v);
            }
            open.close().await;
            Ok(())
        }
        Command::Rotate(store) => {
            let open = Open::unseal(&store, true).await?;
            let k = open.sr.rotate().await?;
            println!("key version {} is now primary", k.version);
            open.close().await;
            Ok(())
        }
        Command::Promote { version, store } => {
            let open = Open::unseal(&store, true).await?;
            open.sr.promote(version).await?;
            println!("key version {version} is now primary");
            open.close().await;
            Ok(())
        }
        Command::Rewrap { batch, store } => {
            let open = Open::unseal(&store, true).await?;
            let report = open.sr.rewrap(batch).await?;
            open.close().await;
            println!(
                "scanned {} record(s), re-sealed {} under key version {} ({} pass(es)); {} record(s) remain on other versions",
                report.scanned,
                report.rewrapped,
                report.target_version,
                report.passes,
                report.remaining
            );
            for key in &report.unreadable {
                println!("unreadable: {key}");
            }
            if report.is_complete() {
                Ok(())
            } else {
                Err(Failure::RewrapIncomplete(report.remaining))
            }
        }
        Command::Retire { min_version, store } => {
            let open = Open::unseal(&store, true).await?;
            open.sr.set_min_decryption_version(min_version).await?;
            println!("minimum decryption version is now {min_version}");
            open.close().await;
            Ok(())
        }
        Command::DestroyKey { version, store } => {
            let open = Open::unseal(&store, true).await?;
            open.sr.destroy_key(version).await?;
            println!("key version {version} destroyed");
            open.close().await;
            Ok(())
        }
        Command::RotateRoot { store, new } if new.rotate_token_key => {
            let open = Open::unseal(&store, true).await?;
            let Unsealer::Pkcs11(p) = &open.protector else {
                return Err(Failure::Usage(
                    "--rotate-token-key needs the store's PKCS#11 protector (--pkcs11-module ...)"
                        .into(),
                ));
            };
            let old = p.current_version();
            let new_version = p.rotate().await?;
            open.sr.rotate_root_key(p).await?;
            println!(
                "root key replaced; it is now wrapped by token key version {new_version} (version {old} is no longer needed by this store)"
            );
            open.close().await;
            Ok(())
        }
        Command::RotateRoot { store, new } => {
            let open = Open::unseal(&store, true).await?;
            let (protector, shares) = new_protector(&new).await?;
            open.sr.rotate_root_key(protector.as_ref()).await?;
            println!(
                "root key replaced; it is now protected by {}",
                protector.kind()
            );
            if let Some((k, shares)) = shares {
                print_shares(k, &shares);
            }
            open.close().await;
            Ok(())
        }
        Command::Audit(AuditCommand::Verify {
            file,
            checkpoint,
            from,
            store,
        }) => {
            let open = Open::unseal(&store, true).await?;
            // The library checks the file against the store's saved head
            // (so a truncated or emptied file fails) and against the
            // checkpoints given here.
            let mut check = AuditFileCheck::new();
            if let Some(cp) = from {
                check = check.with_from(cp);
            }
            if let Some(cp) = checkpoint {
                check = check.with_checkpoint(cp);
            }
            let verified = open.sr.verify_audit_file(&file, &check).await;
            open.close().await;
            match verified {
                Ok(report) => {
                    println!(
                        "ok: {} record(s) verified; head {}",
                        report.records, report.head
                    );
                    // What it was checked against, for the operator (stdout
                    // keeps the one line scripts parse).
                    match report.saved_head {
                        Some(h) => eprintln!("store's saved head: {h} (reached)"),
                        None => eprintln!("store's saved head: none (nothing audited yet)"),
                    }
                    Ok(())
                }
                Err(Error::Audit(e @ AuditError::ChainBroken { .. })) => {
                    Err(Failure::ChainBroken(e))
                }
                Err(Error::Audit(AuditError::Io { path, message })) => {
                    Err(Failure::Io(format!("audit file {path}: {message}")))
                }
                Err(e) => Err(Failure::Lib(e)),
            }
        }
    }
}

async fn init(args: InitArgs) -> CliResult {
    let chosen = [
        args.key_file.is_some(),
        args.pkcs11_module.is_some(),
        args.shamir.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(Failure::Usage(
            "give exactly one of --key-file, --pkcs11-module (with --token and --key-label) or --shamir K/N".into(),
        ));
    }
    let mut shares = None;
    let protector: Box<dyn KeyProtector> = if let Some(f) = &args.key_file {
        Box::new(SoftwareProtector::from_key_file(f)?)
    } else if let Some(module) = &args.pkcs11_module {
        let config = pkcs11_config(
            module,
            args.token.as_deref(),
            args.key_label.as_deref(),
            args.pin_file.as_deref(),
            true,
        )?;
        Box::new(Pkcs11Protector::init_key(config).await?)
    } else if let Some((k, n)) = args.shamir {
        let (p, s) = ShamirProtector::generate(k, n)?;
        shares = Some((k, s));
        Box::new(p)
    } else {
        return Err(Failure::Usage("no protector given".into()));
    };
    let sqlite = Arc::new(SqliteStore::open(&args.db).await?);
    let storage: DynStorage = sqlite.clone();
    let result = Strongroom::init(storage, protector.as_ref(), Options::default()).await;
    sqlite.close().await;
    let sr = result?;
    let done = format!(
        "initialised {} (protector: {}, primary key version {})",
        args.db.display(),
        protector.kind(),
        sr.keyring()?.primary_version()
    );
    sr.seal();
    match shares {
        // stdout carries only the shares, so it can go straight to a file
        Some((k, shares)) => {
            eprintln!("{done}");
            print_shares(k, &shares);
        }
        None => println!("{done}"),
    }
    Ok(())
}

fn print_shares(k: u8, shares: &[Share]) {
    eprintln!(
        "WARNING: the {} shares below are shown once and stored nowhere; {k} of them are needed to unseal. \
         Give each to a different holder now; lost shares cannot be recovered.",
        shares.len()
    );
    for s in shares {
        let text = s.to_text();
        println!("{}", text.expose_secret());
    }
}

async fn new_protector(
    a: &NewProtectorArgs,
) -> CliResult<(Box<dyn KeyProtector>, Option<(u8, Vec<Share>)>)> {
    let chosen = [
        a.new_key_file.is_some(),
        a.new_pkcs11_module.is_some(),
        a.new_shamir.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(Failure::Usage(
            "give exactly one new protector: --new-key-file, --new-pkcs11-module (with --new-token, --new-key-label, --new-pin-file) or --new-shamir K/N".into(),
        ));
    }
    if let Some(f) = &a.new_key_file {
        return Ok((Box::new(SoftwareProtector::from_key_file(f)?), None));
    }
    if let Some(module) = &a.new_pkcs11_module {
        let config = pkcs11_config(
            module,
            a.new_token.as_deref(),
            a.new_key_label.as_deref(),
            a.new_pin_file.as_deref(),
            false,
        )?;
        return Ok((Box::new(Pkcs11Protector::init_key(config).await?), None));
    }
    if let Some((k, n)) = a.new_shamir {
        let (p, s) = ShamirProtector::generate(k, n)?;
        return Ok((Box::new(p), Some((k, s))));
    }
    Err(Failure::Usage("no new protector given".into()))
}

#[derive(Debug, Clone, Copy)]
enum VersionChange {
    Delete,
    Undelete,
    Destroy,
}

async fn change_versions(a: VersionsArgs, change: VersionChange) -> CliResult {
    let open = Open::unseal(&a.store, true).await?;
    let secrets = open.sr.secrets();
    let (changed, verb) = match change {
        VersionChange::Delete => (secrets.delete(&a.path, &a.versions).await?, "deleted"),
        VersionChange::Undelete => (secrets.undelete(&a.path, &a.versions).await?, "undeleted"),
        VersionChange::Destroy => (secrets.destroy(&a.path, &a.versions).await?, "destroyed"),
    };
    if changed.is_empty() {
        println!("{}: nothing changed", a.path);
    } else {
        let list: Vec<String> = changed.iter().map(u64::to_string).collect();
        println!("{} {verb} version(s) {}", a.path, list.join(", "));
    }
    open.close().await;
    Ok(())
}

fn print_key(k: &KeyInfo) {
    println!(
        "{:<8} {:<10} {:<18} {:<26} {}",
        k.version,
        k.state.to_string(),
        k.algorithm.to_string(),
        k.created.to_string(),
        k.encryptions_reserved
    );
}

fn print_version(v: &VersionInfo) {
    let mut line = format!("version {} created {}", v.version, v.created_at);
    if let Some(t) = v.deleted_at {
        line.push_str(&format!(", deleted {t}"));
    }
    if let Some(t) = v.destroyed_at {
        line.push_str(&format!(", destroyed {t}"));
    }
    println!("{line}");
}

/// The protector a store was unsealed with.
enum Unsealer {
    Other(Box<dyn KeyProtector>),
    Pkcs11(Pkcs11Protector),
}

impl Unsealer {
    fn as_dyn(&self) -> &dyn KeyProtector {
        match self {
            Self::Other(p) => p.as_ref(),
            Self::Pkcs11(p) => p,
        }
    }
}

/// An unsealed store over its SQLite file.
struct Open {
    sr: Strongroom,
    sqlite: Arc<SqliteStore>,
    protector: Unsealer,
}

impl Open {
    /// Opens `--db` (which must exist) and unseals it with the protector
    /// given. `stdin_free`: whether the PIN may be read from stdin.
    async fn unseal(a: &StoreArgs, stdin_free: bool) -> CliResult<Self> {
        if !a.db.exists() {
            return Err(Failure::NoDatabase(a.db.clone()));
        }
        let protector = store_protector(a, stdin_free).await?;
        let sqlite = Arc::new(SqliteStore::open(&a.db).await?);
        let storage: DynStorage = sqlite.clone();
        match Strongroom::unseal(storage, protector.as_dyn(), Options::default()).await {
            Ok(sr) => Ok(Self {
                sr,
                sqlite,
                protector,
            }),
            Err(e) => {
                sqlite.close().await;
                Err(e.into())
            }
        }
    }

    async fn close(self) {
        self.sr.seal();
        self.sqlite.close().await;
    }
}

async fn store_protector(a: &StoreArgs, stdin_free: bool) -> CliResult<Unsealer> {
    let chosen = [
        a.key_file.is_some(),
        a.pkcs11_module.is_some(),
        a.shamir_shares_file.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(Failure::Usage(
            "give exactly one of --key-file, --pkcs11-module (with --token and --key-label) or --shamir-shares-file".into(),
        ));
    }
    if let Some(f) = &a.key_file {
        return Ok(Unsealer::Other(Box::new(SoftwareProtector::from_key_file(
            f,
        )?)));
    }
    if let Some(module) = &a.pkcs11_module {
        let config = pkcs11_config(
            module,
            a.token.as_deref(),
            a.key_label.as_deref(),
            a.pin_file.as_deref(),
            stdin_free,
        )?;
        return Ok(Unsealer::Pkcs11(Pkcs11Protector::open(config).await?));
    }
    if let Some(f) = &a.shamir_shares_file {
        let text = read_private_file(f, "shares file")?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let shares = Share::parse_all(&lines)?;
        return Ok(Unsealer::Other(Box::new(ShamirProtector::from_shares(
            &shares,
        )?)));
    }
    Err(Failure::Usage("no protector given".into()))
}

fn pkcs11_config(
    module: &Path,
    token: Option<&str>,
    key_label: Option<&str>,
    pin_file: Option<&Path>,
    stdin_free: bool,
) -> CliResult<Pkcs11Config> {
    let (Some(token), Some(key_label)) = (token, key_label) else {
        return Err(Failure::Usage(
            "a PKCS#11 protector needs the token label and the key label".into(),
        ));
    };
    let pin = match pin_file {
        Some(f) => {
            let text = read_private_file(f, "PIN file")?;
            SecretString::new(first_line(&text))
        }
        None if stdin_free => {
            use std::io::IsTerminal as _;
            if std::io::stdin().is_terminal() {
                return Err(Failure::Usage(
                    "stdin is a terminal and the PIN would be echoed: give --pin-file or pipe the PIN in".into(),
                ));
            }
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| Failure::Io(format!("cannot read the PIN from stdin: {e}")))?;
            SecretString::new(first_line(&line))
        }
        None => {
            return Err(Failure::Usage(
                "this command reads stdin for something else: give the PIN with --pin-file".into(),
            ));
        }
    };
    if pin.expose_secret().is_empty() {
        return Err(Failure::Usage("the PIN is empty".into()));
    }
    Ok(Pkcs11Config::new(module, token, pin, key_label))
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_owned()
}

/// Reads a file holding secret material, refusing one that others can read.
fn read_private_file(path: &Path, what: &str) -> CliResult<Zeroizing<String>> {
    use std::os::unix::fs::PermissionsExt as _;
    let io = |e: std::io::Error| Failure::Io(format!("{what} {}: {e}", path.display()));
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::Io(format!(
            "{what} {}: mode {mode:04o} lets other users read it; run chmod 600 on it",
            path.display()
        )));
    }
    Ok(Zeroizing::new(std::fs::read_to_string(path).map_err(io)?))
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
