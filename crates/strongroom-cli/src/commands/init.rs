//! Creating things that did not exist: a key file (`keygen`) and a store
//! (`init`).

use std::path::Path;
use std::sync::Arc;

use strongroom::protector::SoftwareProtector;
use strongroom::storage::DynStorage;
use strongroom::{Options, Strongroom};
use strongroom_sqlx::SqliteStore;

use crate::args::InitArgs;
use crate::exit::CliResult;
use crate::print::print_shares;
use crate::protectors::init_protector;

/// `keygen`.
pub(crate) fn keygen(key_file: &Path) -> CliResult {
    SoftwareProtector::generate_key_file(key_file)?;
    println!(
        "wrote a new key file {} (mode 0600); keep it away from the database and its backups",
        key_file.display()
    );
    Ok(())
}

/// `init`.
pub(crate) async fn init(args: InitArgs) -> CliResult {
    let (protector, shares) = init_protector(&args).await?;
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
