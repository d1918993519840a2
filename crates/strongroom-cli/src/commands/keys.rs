//! Keyring and root-key administration: `status`, `rotate`, `promote`,
//! `rewrap`, `retire`, `destroy-key`, `rotate-root`.

use crate::args::{KeyVersionArgs, RetireArgs, RewrapArgs, RotateRootArgs, StoreArgs};
use crate::exit::{CliResult, Failure};
use crate::print::{print_key, print_shares};
use crate::protectors::{Unsealer, new_protector};
use crate::store::Open;

/// `status`.
pub(crate) async fn status(store: StoreArgs) -> CliResult {
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

/// `rotate`.
pub(crate) async fn rotate(store: StoreArgs) -> CliResult {
    let open = Open::unseal(&store, true).await?;
    let k = open.sr.rotate().await?;
    println!("key version {} is now primary", k.version);
    open.close().await;
    Ok(())
}

/// `promote`.
pub(crate) async fn promote(a: KeyVersionArgs) -> CliResult {
    let open = Open::unseal(&a.store, true).await?;
    open.sr.promote(a.version).await?;
    println!("key version {} is now primary", a.version);
    open.close().await;
    Ok(())
}

/// `rewrap`.
pub(crate) async fn rewrap(a: RewrapArgs) -> CliResult {
    let open = Open::unseal(&a.store, true).await?;
    let report = open.sr.rewrap(a.batch).await?;
    open.close().await;
    println!(
        "scanned {} record(s), re-sealed {} under key version {} ({} pass(es)); {} record(s) remain on other versions",
        report.scanned, report.rewrapped, report.target_version, report.passes, report.remaining
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

/// `retire`.
pub(crate) async fn retire(a: RetireArgs) -> CliResult {
    let open = Open::unseal(&a.store, true).await?;
    open.sr.set_min_decryption_version(a.min_version).await?;
    println!("minimum decryption version is now {}", a.min_version);
    open.close().await;
    Ok(())
}

/// `destroy-key`.
pub(crate) async fn destroy_key(a: KeyVersionArgs) -> CliResult {
    let open = Open::unseal(&a.store, true).await?;
    open.sr.destroy_key(a.version).await?;
    println!("key version {} destroyed", a.version);
    open.close().await;
    Ok(())
}

/// `rotate-root`, with a new protector or (`--rotate-token-key`) the next
/// version of the store's token key.
pub(crate) async fn rotate_root(a: RotateRootArgs) -> CliResult {
    let RotateRootArgs { store, new } = a;
    let open = Open::unseal(&store, true).await?;
    if new.rotate_token_key {
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
        return Ok(());
    }
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
