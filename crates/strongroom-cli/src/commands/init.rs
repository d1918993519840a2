//! Creating things that did not exist: a key file (`keygen`) and a store
//! (`init`).

use std::path::Path;

use strongroom::audit::Operation;
use strongroom::dangerous::Door;
use strongroom::policy::SystemPath;
use strongroom::protector::SoftwareProtector;
use strongroom::{Options, Strongroom};

use crate::args::InitArgs;
use crate::audit_log;
use crate::backend::{self, Backend};
use crate::exit::{CliResult, Failure};
use crate::operator::{Identity, Operator};
use crate::print::print_shares;
use crate::protectors::init_protector;

/// `keygen`. No store is involved, so nothing is audited.
pub(crate) fn keygen(key_file: &Path) -> CliResult {
    SoftwareProtector::generate_key_file(key_file)?;
    println!(
        "wrote a new key file {} (mode 0600); keep it away from the database and its backups",
        key_file.display()
    );
    Ok(())
}

/// `init`. The audit key is made with the store, so the store's first
/// record (operation `keyring_rotate` on `sys/keyring` with the primary key
/// version: key version 1 made and made primary) can only follow its
/// creation. What can fail closed does: the audit file must be new or
/// empty and writable before anything is created (no token key, no
/// database), and if the record cannot be written after all, the database
/// this command created is removed again.
pub(crate) async fn init(args: InitArgs) -> CliResult {
    let id = Identity::from_args(&args.operator, &args.db)?;
    let pending = init_protector(&args)?;
    // A PostgreSQL database always exists already (only its table may not).
    let db_existed = backend::postgres_url(&args.db).is_some() || exists(&args.db)?;
    if db_existed {
        let backend = Backend::open(&args.db).await?;
        let initialised = Strongroom::is_initialized(&backend.storage()).await;
        backend.close().await;
        if initialised? {
            return Err(Failure::AlreadyInitialized(backend::display(&args.db)));
        }
    }
    let audit_existed = prepare_audit_file(&id.audit_path)?;
    let forget_audit_file = || {
        if !audit_existed {
            let _ = std::fs::remove_file(&id.audit_path);
        }
    };

    let (protector, shares) = match pending.create().await {
        Ok(p) => p,
        Err(e) => {
            forget_audit_file();
            return Err(e.into());
        }
    };
    let backend = Backend::open(&args.db).await?;
    let storage = backend.storage();
    let opened = async {
        Strongroom::init(storage, protector.as_ref(), Options::default())
            .await?
            .dangerous_traced(crate::store::CALLER)
            .await
    };
    let sr = match opened.await {
        Ok(sr) => sr,
        Err(e) => {
            backend.close().await;
            forget_audit_file();
            return Err(e.into());
        }
    };
    let primary = sr.keyring()?.primary_version();
    if let Err(f) = record_init(&sr, &id, primary).await {
        sr.seal();
        backend.close().await;
        if !db_existed {
            // Only an SQLite file this command created (a PostgreSQL
            // database always existed before).
            remove_database(&args.db);
        }
        forget_audit_file();
        return Err(match f {
            Failure::AuditWrite { error, .. } => Failure::AuditUnavailable(format!(
                "the store's first audit record could not be written ({error}); \
                 the new store was removed again"
            )),
            f => f,
        });
    }
    sr.seal();
    backend.close().await;
    let done = format!(
        "initialised {} (protector: {}, primary key version {primary})",
        backend::display(&args.db),
        protector.kind(),
    );
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

/// Writes the store's first audit record.
async fn record_init(sr: &Door, id: &Identity, primary: u32) -> CliResult {
    let op = Operator::start(sr, id).await?;
    let event = op
        .event(Operation::KeyringRotate)?
        .with_path(SystemPath::Keyring.as_str())
        .with_version(u64::from(primary));
    op.record(event, true).await
}

/// Checks that the audit file at `path` is absent or empty (a file with
/// records belongs to another store's chain) and that it can be opened for
/// appending (creating it, mode 0600). Returns whether it existed.
fn prepare_audit_file(path: &Path) -> CliResult<bool> {
    let existed = exists(path)?;
    if existed {
        let meta = std::fs::metadata(path).map_err(|e| {
            Failure::AuditUnavailable(format!("audit file {}: {e}", path.display()))
        })?;
        if !meta.is_file() {
            return Err(Failure::AuditUnavailable(format!(
                "audit file {} is not a regular file; nothing was done",
                path.display()
            )));
        }
        if meta.len() > 0 {
            return Err(Failure::AuditDiverged(format!(
                "audit file {} already holds records (another store's?); nothing was done: \
                 move it away or name another file with --audit-log",
                path.display()
            )));
        }
    }
    drop(audit_log::open_sink(path)?);
    Ok(existed)
}

fn exists(path: &Path) -> CliResult<bool> {
    path.try_exists()
        .map_err(|e| Failure::Io(format!("cannot reach {}: {e}", path.display())))
}

/// Removes a database this command created, with SQLite's side files.
fn remove_database(db: &Path) {
    let _ = std::fs::remove_file(db);
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
}
