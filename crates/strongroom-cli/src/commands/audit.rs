//! `audit verify`: checking an audit file against the store's saved head.

use strongroom::Error;
use strongroom::audit::{AuditError, AuditFileCheck};

use crate::args::VerifyArgs;
use crate::exit::{CliResult, Failure};
use crate::store::Open;

/// `audit verify`.
pub(crate) async fn verify(a: VerifyArgs) -> CliResult {
    let VerifyArgs {
        file,
        checkpoint,
        from,
        unanchored,
        json,
        store,
    } = a;
    let open = Open::unseal(&store, true).await?;
    // The library checks the file against the store's saved head
    // (so a truncated or emptied file fails) and against the
    // checkpoints given here.
    let mut check = AuditFileCheck::new();
    if unanchored {
        check = check.without_saved_head();
    }
    if let Some(cp) = from {
        check = check.with_from(cp);
    }
    if let Some(cp) = checkpoint {
        check = check.with_checkpoint(cp);
    }
    let verified = open.sr.verify_audit_file(&file, &check).await;
    open.close().await;
    match verified {
        Ok(report) if json => {
            crate::print::json::print(&serde_json::json!({
                "ok": true,
                "records": report.records,
                "head": report.head.to_string(),
                "saved_head": report.saved_head.map(|h| h.to_string()),
            }));
            Ok(())
        }
        Ok(report) => {
            println!(
                "ok: {} record(s) verified; head {}",
                report.records, report.head
            );
            // What it was checked against, for the operator (stdout
            // keeps the one line scripts parse).
            match report.saved_head {
                _ if unanchored => eprintln!("store's saved head: not checked (--unanchored)"),
                Some(h) => eprintln!("store's saved head: {h} (reached)"),
                None => eprintln!("store's saved head: none (nothing audited yet)"),
            }
            Ok(())
        }
        Err(Error::Audit(e @ AuditError::ChainBroken { .. })) => Err(Failure::ChainBroken(e)),
        Err(Error::Audit(AuditError::Io { path, message })) => {
            Err(Failure::Io(format!("audit file {path}: {message}")))
        }
        Err(e) => Err(Failure::Lib(e)),
    }
}
