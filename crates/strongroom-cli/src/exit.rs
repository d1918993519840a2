//! What can go wrong, and the exit code each failure ends the process with.
//! The table printed by `--help` and the one in the README say the same.

use std::path::PathBuf;

use strongroom::audit::AuditError;
use strongroom::declarative::DeclarativeError;
use strongroom::lease::LeaseError;
use strongroom::secrets::SecretError;
use strongroom::{Error, ProtectorErrorKind};

/// The exit-code table, printed after `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   audit verify: the chain does not verify or stops before the store's saved
      head or a given checkpoint (the first broken or missing seq is printed)
  2   usage error (bad or missing arguments)
  3   secret or version not found, deleted, destroyed or pruned; lease not found;
      policy or principal not applied; no such signing key or version; pki: no
      such CA, role or certificate
  4   check-and-set mismatch or concurrent change; re-read and retry (also: a
      signing key or CA of that name exists already)
  5   unseal failed: wrong key file, wrong shares, wrong PIN or tampered root key
  6   key file refused (loose permissions, bad content, already exists, unreadable)
  7   key protector or HSM error (module, token, key, mechanism, PIN locked)
  8   storage error (database unreadable or unavailable)
  9   store state: no database, not initialised, already initialised, or sealed
  10  keyring refused the change (unknown, retired or still-used key version);
      verify: the signature's signing key version is retired
  11  invalid argument or secret path
  12  input/output error of the command itself (stdin, PIN, shares or audit file)
  13  rewrap finished but records remain on older key versions
  14  other error
  15  a stored record is corrupt: edited, forged, moved or damaged at rest
  16  a sealed value did not open (decryption failed)
  17  the audit file does not continue the store's audit chain (cut short,
      edited, deleted or another store's): the command did nothing; run
      `strongroom audit verify` on it to see where it breaks
  18  put or import refused an empty value (nothing was written); give
      --allow-empty to store one
  19  run: a secret cannot be an environment variable (not UTF-8, or holds NUL);
      the command was not started
  20  import: the file cannot be read in the format given (the line or Vault
      path is named, never a value); nothing was written
  21  import: secrets already exist at the paths listed; nothing was written
      (give --overwrite or --skip-existing)
  22  lease revoke, revoke-prefix: revocation pending (no revoker for the
      lease's engine in this process, or the engine failed); the lease is
      marked as being revoked and its application's lease manager finishes it
  23  lease renew: the lease cannot be renewed (not renewable, expired, being
      revoked, or its engine is not available in this process)
  24  plan, apply, drift: the declaration files cannot be read (the file and
      line are named; also a `value` key, a name declared in two files or a
      principal naming an undeclared policy); nothing was written
  25  apply: the store changed since the plan, or the plan file was made from
      other files or cannot be read; nothing was written: plan again
  26  drift: the store differs from the declaration files (listed on stdout)
  27  put, import: the path does not follow the applied naming rules; nothing
      was written
  28  creds: the role catalog cannot be used (a bad catalog file, no catalog
      stored, a role it does not define, or a definition that does not check);
      nothing was changed
  29  creds: the PostgreSQL server cannot be reached or refused the statement
      or login (its SQLSTATE is printed)
  30  pki: the request is outside the role (name, key type, usage, TTL) or
      invalid; nothing was issued
  31  verify: the signature does not verify (a well-formed signature of a
      live key version that does not match the message)
  32  sign: the key's rate limit is reached in this process; retry later
  33  an approval gate refused: the operation needs an approved request
      (--approval ID) or the one given is not approved, refused, expired, used
      already or for another operation, path or operator; or approve/refuse:
      the operator is not an approver of the request (or is its requester, or
      approved it already); or request: no gate holds the operation there.
      Nothing was done
  126 run: the command could not be started (not executable, or another error)
  127 run: the command was not found
Once its command has started, run exits with the command's exit code, or with
128+N when the command was killed by signal N.

Environment (a command-line option wins over its variable):
  STRONGROOM_DB                  --db
  STRONGROOM_KEY_FILE            --key-file (and keygen's KEY_FILE)
  STRONGROOM_PKCS11_MODULE       --pkcs11-module
  STRONGROOM_PKCS11_TOKEN        --token
  STRONGROOM_PKCS11_KEY_LABEL    --key-label
  STRONGROOM_PKCS11_PIN_FILE     --pin-file (a path; a PIN is never read from
                                 the environment)
  STRONGROOM_SHAMIR_SHARES_FILE  --shamir-shares-file
The protector variables (KEY_FILE, PKCS11_MODULE, SHAMIR_SHARES_FILE) are read
only when no protector option is given, so any protector option replaces them.

Every command but keygen and audit verify appends a record to the audit file
(--audit-log, default: the database path + .audit.jsonl) before it takes effect
or prints anything, as principal operator:NAME (--operator, else $USER, else
$LOGNAME, else the numeric uid). If the record cannot be written, the command
does nothing and exits 12 (or 17).";

/// What went wrong, grouped by what the operator can do about it.
#[derive(Debug)]
pub(crate) enum Failure {
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
    /// `init`: the database already holds a store.
    AlreadyInitialized(String),
    /// `put` read an empty value and `--allow-empty` was not given.
    EmptyValue,
    /// Rewrap left unreadable records.
    RewrapIncomplete(u64),
    /// The operator's audit file cannot be opened or created: nothing was
    /// done.
    AuditUnavailable(String),
    /// The operator's audit file does not continue the store's chain
    /// (truncated, edited, missing, another store's): nothing was done.
    AuditDiverged(String),
    /// `run`: a bad `--env`, `--file` or `--signal` (a usage error).
    RunSpec(String),
    /// `run`: no command after `--`.
    NoCommand,
    /// `run`: a secret cannot be given as an environment variable.
    EnvValue {
        /// The variable's name.
        name: String,
        /// The secret's path (never its value).
        path: String,
        /// What is wrong with the value.
        why: &'static str,
    },
    /// `run`: the command could not be started.
    CommandNotStarted {
        /// The program as given.
        program: String,
        /// Why.
        error: std::io::Error,
    },
    /// `import`: the file cannot be parsed.
    ImportParse {
        /// The file as given.
        file: String,
        /// The line, where known.
        line: Option<usize>,
        /// What is wrong (never a value).
        why: String,
    },
    /// `import`: secrets exist at these paths.
    ImportConflict(Vec<String>),
    /// `import`: these paths would get empty values.
    ImportEmpty(Vec<String>),
    /// A lease error, with what the operator should know about it.
    Lease {
        /// The library's error.
        error: Error,
        /// What it means here.
        hint: &'static str,
    },
    /// `lease revoke-prefix`: this many leases were left pending.
    LeasesPending(usize),
    /// Declaration files, plans, applies and naming rules.
    Declarative(DeclarativeError),
    /// `drift` found differences (printed on stdout).
    Drift,
    /// `pki`: the certificate authority refused or failed.
    Pki(strongroom_pki::PkiError),
    /// `creds`: dynamic PostgreSQL credentials failed.
    Dynamic(strongroom_sqlx::dynamic::PgDynError),
    /// `verify`: the signature does not match.
    BadSignature,
    /// `policy`: no applied policy or principal of that name.
    NotApplied(String),
    /// An audit record of the command was refused. For a change this may
    /// be its outcome record: the change was then made.
    AuditWrite {
        /// Why.
        error: AuditError,
        /// Whether the command changes the store.
        change: bool,
    },
}

/// What every command returns.
pub(crate) type CliResult<T = ()> = std::result::Result<T, Failure>;

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Lib(e)
    }
}

impl From<strongroom_sqlx::dynamic::PgDynError> for Failure {
    fn from(e: strongroom_sqlx::dynamic::PgDynError) -> Self {
        match e {
            strongroom_sqlx::dynamic::PgDynError::Core(e) => Self::Lib(e),
            e => Self::Dynamic(e),
        }
    }
}

impl From<strongroom_pki::PkiError> for Failure {
    fn from(e: strongroom_pki::PkiError) -> Self {
        match e {
            strongroom_pki::PkiError::Core(e) => Self::Lib(e),
            e => Self::Pki(e),
        }
    }
}

impl From<DeclarativeError> for Failure {
    fn from(e: DeclarativeError) -> Self {
        match e {
            DeclarativeError::Store(Error::Audit(error)) => Self::AuditWrite {
                error,
                change: true,
            },
            DeclarativeError::Store(e) => Self::Lib(e),
            e => Self::Declarative(e),
        }
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
            Self::EmptyValue => f.write_str(
                "the value on stdin is empty (nothing was written); pipe the value in, or give --allow-empty to store an empty value",
            ),
            Self::RewrapIncomplete(n) => write!(
                f,
                "rewrap left {n} record(s) on older key versions (unreadable ones listed above); do not retire those versions yet"
            ),
            Self::AuditUnavailable(m) | Self::AuditDiverged(m) | Self::RunSpec(m) => {
                f.write_str(m)
            }
            Self::NoCommand => f.write_str(
                "no command to run: give it after `--` (strongroom run --env NAME=PATH -- CMD ARGS...)",
            ),
            Self::EnvValue { name, path, why } => write!(
                f,
                "the secret at {path} cannot be the environment variable {name}: its value {why}; the command was not started (give it with --file instead)"
            ),
            Self::ImportParse {
                file,
                line: Some(n),
                why,
            } => write!(f, "{file} line {n}: {why}; nothing was written"),
            Self::ImportParse {
                file,
                line: None,
                why,
            } => write!(f, "{file}: {why}; nothing was written"),
            Self::ImportConflict(paths) => write!(
                f,
                "{} secret(s) already exist, nothing was written (give --overwrite or --skip-existing): {}",
                paths.len(),
                paths.join(", ")
            ),
            Self::ImportEmpty(paths) => write!(
                f,
                "empty value(s) for {}; nothing was written (give --allow-empty to store them)",
                paths.join(", ")
            ),
            Self::Lease { error, hint } => write!(f, "{error}; {hint}"),
            Self::Declarative(e) => write!(f, "{e}"),
            Self::NotApplied(what) => write!(f, "{what}"),
            Self::AlreadyInitialized(db) => write!(
                f,
                "{db} already holds a Strongroom store; nothing was changed. Every other command opens it with its protector (`strongroom unseal` checks that one does)"
            ),
            Self::BadSignature => write!(f, "the signature does not verify"),
            Self::Dynamic(e) => write!(f, "{e}"),
            Self::Pki(e) => write!(f, "{e}"),
            Self::Drift => f.write_str(
                "drift: the store differs from the declaration files (listed above)",
            ),
            Self::LeasesPending(n) => write!(
                f,
                "{n} lease(s) are pending revocation (listed above): this command has no revoker for their engine \
                 (or the engine failed), so a lease manager that has one finishes them when it next runs"
            ),
            Self::CommandNotStarted { program, error } => {
                write!(f, "cannot start the command {program:?}: {error}")
            }
            Self::AuditWrite {
                error,
                change: false,
            } => write!(f, "{error}; nothing was shown"),
            Self::AuditWrite {
                error,
                change: true,
            } => write!(
                f,
                "{error}; if this was the record of the outcome, the change was made: check before retrying"
            ),
        }
    }
}

impl Failure {
    /// The process exit code (see [`EXIT_CODES`]).
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::ChainBroken(_) => 1,
            Self::Usage(_) | Self::RunSpec(_) | Self::NoCommand => 2,
            Self::Io(_) | Self::AuditUnavailable(_) | Self::AuditWrite { .. } => 12,
            Self::AuditDiverged(_) => 17,
            Self::NoDatabase(_) | Self::AlreadyInitialized(_) => 9,
            Self::RewrapIncomplete(_) => 13,
            Self::EmptyValue | Self::ImportEmpty(_) => 18,
            Self::ImportParse { .. } => 20,
            Self::ImportConflict(_) => 21,
            Self::EnvValue { .. } => 19,
            Self::CommandNotStarted { error, .. } => {
                if error.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                }
            }
            Self::Lib(e) | Self::Lease { error: e, .. } => lib_exit_code(e),
            Self::LeasesPending(_) => 22,
            Self::Declarative(e) => match e {
                DeclarativeError::StoreChangedSincePlan { .. }
                | DeclarativeError::PlanDoesNotMatchFiles { .. }
                | DeclarativeError::BadRecord { what: "plan", .. } => 25,
                DeclarativeError::BadRecord { .. } => 15,
                DeclarativeError::Naming(_) => 27,
                DeclarativeError::Store(e) => lib_exit_code(e),
                _ => 24,
            },
            Self::Drift => 26,
            Self::NotApplied(_) => 3,
            Self::BadSignature => 31,
            Self::Pki(e) => {
                use strongroom_pki::PkiError as P;
                match e {
                    P::UnknownCa { .. } | P::UnknownRole { .. } | P::UnknownCertificate { .. } => 3,
                    P::CaExists { .. } | P::Contended { .. } => 4,
                    P::BadRecord { .. } => 15,
                    P::Core(e) => lib_exit_code(e),
                    _ => 30,
                }
            }
            Self::Dynamic(e) => {
                use strongroom_sqlx::dynamic::PgDynError as D;
                match e {
                    D::CatalogChanged { .. } => 4,
                    D::Database { .. } | D::RoleNotFound { .. } => 29,
                    D::CorruptRecord { .. } | D::NotAuthentic { .. } | D::ForeignRole { .. } => 15,
                    D::Core(e) => lib_exit_code(e),
                    _ => 28,
                }
            }
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
        Error::Lease(LeaseError::NotFound { .. }) => 3,
        Error::Lease(LeaseError::RevocationDeferred { .. } | LeaseError::Irrevocable { .. }) => 22,
        Error::Lease(
            LeaseError::NoRevoker { .. }
            | LeaseError::NotRenewable { .. }
            | LeaseError::Expired { .. }
            | LeaseError::NotActive { .. },
        ) => 23,
        Error::Lease(LeaseError::InvalidId { .. } | LeaseError::InvalidTtl { .. }) => 11,
        Error::InvalidPath { .. } | Error::InvalidArgument(_) | Error::Secret(_) => 11,
        Error::Naming(_) => 27,
        Error::Approval(e) => {
            use strongroom::approvals::ApprovalError as V;
            match e {
                V::NotFound { .. } => 3,
                V::Conflict { .. } => 4,
                V::InvalidGates { .. } | V::InvalidRequest { .. } => 11,
                _ => 33,
            }
        }
        Error::Signing(e) => {
            use strongroom::signing::SigningError as S;
            match e {
                S::UnknownKey { .. } | S::UnknownVersion { .. } => 3,
                S::KeyExists { .. } | S::Conflict { .. } => 4,
                S::VersionRetired { .. } => 10,
                S::CorruptKey { .. } | S::CorruptRecord { .. } => 15,
                S::RateLimited { .. } => 32,
                _ => 11,
            }
        }
        _ => 14,
    }
}
