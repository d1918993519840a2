//! Keyring and root-key administration: `status`, `rotate`, `promote`,
//! `rewrap`, `retire`, `destroy-key`, `rotate-root`. Each acts as the
//! operator through the library's key administration handle (`sys/keyring`),
//! so each change is audited before the keyring is touched, and `status`
//! before anything is printed; `rotate-root` records itself in the same
//! shape, because a new key may be generated on a token first.

use strongroom::RewrapProgress;
use strongroom::audit::Operation;
use strongroom::policy::SystemPath;

use crate::args::{
    DestroyKeyArgs, KeyVersionArgs, RetireArgs, RewrapArgs, RotateRootArgs, StatusArgs,
    StoreCommandArgs,
};
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::print::{json, print_key, print_shares};
use crate::progress::Progress;
use crate::protectors::{Unsealer, new_protector};

/// `status`.
pub(crate) async fn status(a: StatusArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let keys = audited(op.keys().keys().await, false)?;
    let keyring = open.sr.keyring()?;
    if a.json {
        let token_key_version = match &open.protector {
            Unsealer::Pkcs11(p) => Some(p.current_version()),
            _ => None,
        };
        json::print(&serde_json::json!({
            "database": crate::backend::display(&a.store.db),
            "protector": open.protector.as_dyn().kind().to_string(),
            "token_key_version": token_key_version,
            "primary_key_version": keyring.primary_version(),
            "min_decryption_version": keyring.min_decryption_version(),
            "keys": keys.iter().map(json::key).collect::<Vec<_>>(),
        }));
        open.close().await;
        return Ok(());
    }
    println!("database: {}", crate::backend::display(&a.store.db));
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
    for k in &keys {
        print_key(k);
    }
    open.close().await;
    Ok(())
}

/// `unseal`: every command unseals the store for itself; this one only
/// checks that the protector given opens it (useful after `rotate-root`, or
/// to test a set of Shamir shares), and records that it did.
pub(crate) async fn unseal(a: StatusArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let result = async {
        let event = op.event(Operation::Unseal)?;
        op.record(event, false).await?;
        Ok::<_, Failure>(open.sr.keyring()?)
    }
    .await;
    let database = crate::backend::display(&a.store.db);
    let protector = open.protector.as_dyn().kind().to_string();
    let read_only = open.sr.is_read_only();
    open.close().await;
    let keyring = result?;
    if a.json {
        json::print(&serde_json::json!({
            "database": database,
            "protector": protector,
            "primary_key_version": keyring.primary_version(),
            "read_only": read_only,
        }));
    } else {
        println!(
            "unsealed {database} with the {protector} protector; primary key version {}{}",
            keyring.primary_version(),
            if read_only { " (read-only)" } else { "" }
        );
    }
    Ok(())
}

/// `rotate`.
pub(crate) async fn rotate(a: StoreCommandArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let k = audited(op.keys().rotate().await, true)?;
    println!("key version {} is now primary", k.version);
    open.close().await;
    Ok(())
}

/// `promote`.
pub(crate) async fn promote(a: KeyVersionArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    audited(op.keys().promote(a.version).await, true)?;
    println!("key version {} is now primary", a.version);
    open.close().await;
    Ok(())
}

/// `rewrap`.
pub(crate) async fn rewrap(a: RewrapArgs) -> CliResult {
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let mut progress = Progress::on_terminal("rewrap");
    let mut observe = |p: RewrapProgress| {
        progress.update(p.rewrapped_this_pass, p.to_rewrap, "records");
    };
    let report = op.keys().rewrap_with_progress(a.batch, &mut observe).await;
    progress.finish();
    let report = audited(report, true)?;
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
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    audited(op.keys().retire(a.min_version).await, true)?;
    println!("minimum decryption version is now {}", a.min_version);
    open.close().await;
    Ok(())
}

/// `destroy-key`.
pub(crate) async fn destroy_key(a: DestroyKeyArgs) -> CliResult {
    let DestroyKeyArgs { key: a, approval } = a;
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    let keys = crate::commands::approval::handle(&op, &approval).key_admin();
    audited(keys.destroy(a.version).await, true)?;
    println!("key version {} destroyed", a.version);
    open.close().await;
    Ok(())
}

/// `rotate-root`, with a new protector or (`--rotate-token-key`) the next
/// version of the store's token key. Recorded as `root_key_rotate` on
/// `sys/keyring` (as the key administration handle records it): the
/// intent before a key is generated on a token or the token key is
/// rotated, the outcome once the root key is re-wrapped.
pub(crate) async fn rotate_root(a: RotateRootArgs) -> CliResult {
    let RotateRootArgs {
        approval,
        store,
        operator,
        new,
    } = a;
    let (open, op) = Operator::unseal(&store, &operator, true).await?;
    let event = op
        .event(Operation::RootKeyRotate)?
        .with_path(SystemPath::Keyring.as_str());
    // the root key changes through the door: the approval gate is checked
    // here (and a refusal recorded as this command's outcome)
    let gate = crate::commands::approval::require_root_rotation(&op, &approval).await;
    if gate.is_err() {
        let refused = op.conclude(event, gate, true, |ev, _| ev).await;
        open.close().await;
        return refused;
    }
    if new.rotate_token_key {
        let Unsealer::Pkcs11(p) = &open.protector else {
            return Err(Failure::Usage(
                "--rotate-token-key needs the store's PKCS#11 protector (--pkcs11-module ...)"
                    .into(),
            ));
        };
        let old = p.current_version();
        op.record(event.clone(), true).await?;
        let result = async {
            let new_version = p.rotate().await?;
            open.sr.rotate_root_key(p).await?;
            Ok(new_version)
        }
        .await;
        let new_version = op.conclude(event, result, true, |ev, _| ev).await?;
        println!(
            "root key replaced; it is now wrapped by token key version {new_version} (version {old} is no longer needed by this store)"
        );
        open.close().await;
        return Ok(());
    }
    // checked (and a key file or PIN file read) before anything is recorded
    let pending = new_protector(&new)?;
    op.record(event.clone(), true).await?;
    let result = async {
        let (protector, shares) = pending.create().await?;
        open.sr.rotate_root_key(protector.as_ref()).await?;
        Ok((protector.kind(), shares))
    }
    .await;
    let (kind, shares) = op.conclude(event, result, true, |ev, _| ev).await?;
    println!("root key replaced; it is now protected by {kind}");
    if let Some((k, shares)) = shares {
        print_shares(k, &shares);
    }
    open.close().await;
    Ok(())
}
