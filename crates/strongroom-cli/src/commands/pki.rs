//! The internal certificate authority (`strongroom-pki`): `pki create-root
//! | role | issue | revoke | crl | ca`. Each acts as the operator through
//! the library's checked, audited operations; the mount's revoker is
//! registered with this process's lease manager, so `revoke` finishes here.
//!
//! `issue` writes the leaf's private key only to `key.pem` (mode 0600) in
//! the directory given, never to stdout; the CA's key never leaves the
//! store.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use strongroom_pki::{CaSpec, IssueRequest, Pki, Role, Serial};
use zeroize::Zeroizing;

use crate::args::{PkiCommand, PkiCreateRootArgs, PkiIssueArgs, PkiMountArgs, PkiRoleArgs};
use crate::exit::{CliResult, Failure};
use crate::operator::Operator;
use crate::print::json;

/// `pki ...`.
pub(crate) async fn pki(c: PkiCommand) -> CliResult {
    match c {
        PkiCommand::CreateRoot(a) => create_root(a).await,
        PkiCommand::Role(a) => role(a).await,
        PkiCommand::Issue(a) => issue(a).await,
        PkiCommand::Revoke(a) => {
            let serial = Serial::from_hex(&a.serial)?;
            with_pki(&a.store, &a.operator, &a.mount.mount, async |op, pki| {
                let lease = pki.revoke(op.secrets(), &serial).await?;
                println!("revoked {} (lease {lease})", serial.to_hex());
                Ok(())
            })
            .await
        }
        PkiCommand::Crl(a) => crl(a).await,
        PkiCommand::Ca(a) => {
            with_pki(&a.store, &a.operator, &a.mount.mount, async |op, pki| {
                let ca = pki.ca(op.secrets()).await?;
                for cert in ca.chain() {
                    print!("{}", pem("CERTIFICATE", cert.as_ref()).as_str());
                }
                Ok(())
            })
            .await
        }
    }
}

/// Runs `f` as the operator with the mount, then closes the store.
async fn with_pki<T>(
    store: &crate::args::StoreArgs,
    who: &crate::args::OperatorArgs,
    mount: &str,
    f: impl AsyncFnOnce(&Operator, &Pki) -> CliResult<T>,
) -> CliResult<T> {
    Operator::run(store, who, true, async |open, op| {
        let manager = crate::commands::leases::manager(&open.sr, op.secrets())?;
        let pki = Pki::new(&open.sr, manager, mount)?;
        f(op, &pki).await
    })
    .await
}

/// `der` as PEM, built in a wiped buffer (also used for the leaf's key).
fn pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    strongroom::pem::encode_into(label, der, &mut out);
    out
}

/// `pki create-root`.
async fn create_root(a: PkiCreateRootArgs) -> CliResult {
    let spec = CaSpec::new(a.common_name)
        .key_type(a.key_type)
        .ttl(Duration::from_secs(a.ttl_days.saturating_mul(86_400)));
    with_pki(&a.store, &a.operator, &a.mount.mount, async |op, pki| {
        let ca = pki.create_root(op.secrets(), spec).await?;
        eprintln!(
            "root CA {:?} ({}) of mount {} valid until {}",
            ca.common_name, ca.key_type, ca.mount, ca.not_after
        );
        print!("{}", pem("CERTIFICATE", ca.certificate.as_ref()).as_str());
        Ok(())
    })
    .await
}

/// `pki role NAME`.
async fn role(a: PkiRoleArgs) -> CliResult {
    let mut role = Role::new(a.allowed.clone())
        .allow_localhost(a.allow_localhost)
        .allow_ip_sans(a.allow_ip_sans)
        .ttl(Duration::from_secs(a.ttl), Duration::from_secs(a.max_ttl));
    if !a.key_types.is_empty() {
        role = role.key_types(a.key_types.clone());
    }
    if !a.usages.is_empty() {
        role = role.usages(a.usages.clone());
    }
    with_pki(&a.store, &a.operator, &a.mount.mount, async |op, pki| {
        pki.put_role(op.secrets(), &a.name, role).await?;
        println!("role {} of mount {} written", a.name, a.mount.mount);
        Ok(())
    })
    .await
}

/// Creates `path` with `text`, mode 0600, refusing to replace a file.
fn write_new(path: &Path, text: &str) -> CliResult {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::Io(format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Failure::Io(format!("{}: {e}", path.display())))
}

/// `pki issue ROLE NAME...`.
async fn issue(a: PkiIssueArgs) -> CliResult {
    if a.names.is_empty() && a.ips.is_empty() {
        return Err(Failure::Usage(
            "pki issue needs at least one DNS name or --ip".into(),
        ));
    }
    // The directory first: a bad one costs nothing.
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&a.out_dir)
            .map_err(|e| Failure::Io(format!("{}: {e}", a.out_dir.display())))?;
        for f in ["cert.pem", "chain.pem", "key.pem"] {
            if a.out_dir.join(f).exists() {
                return Err(Failure::Io(format!(
                    "{} exists; give a new --out-dir",
                    a.out_dir.join(f).display()
                )));
            }
        }
    }
    let mut req = IssueRequest::new(a.names.clone());
    for ip in &a.ips {
        req = req.ip(*ip);
    }
    if let Some(cn) = &a.common_name {
        req = req.common_name(cn.clone());
    }
    if let Some(k) = a.key_type {
        req = req.key_type(k);
    }
    if let Some(t) = a.ttl {
        req = req.ttl(Duration::from_secs(t));
    }
    let cert = with_pki(&a.store, &a.operator, &a.mount.mount, async |op, pki| {
        Ok(pki.issue(op.secrets(), &a.role, req).await?)
    })
    .await?;
    write_new(
        &a.out_dir.join("key.pem"),
        &pem("PRIVATE KEY", cert.private_key().expose_secret()),
    )?;
    write_new(
        &a.out_dir.join("cert.pem"),
        &pem("CERTIFICATE", cert.certificate.as_ref()),
    )?;
    let mut chain = String::new();
    for c in &cert.ca_chain {
        chain.push_str(&pem("CERTIFICATE", c.as_ref()));
    }
    write_new(&a.out_dir.join("chain.pem"), &chain)?;
    if a.json {
        json::print(&serde_json::json!({
            "serial": cert.serial.to_hex(),
            "lease_id": cert.lease_id.to_string(),
            "key_type": cert.key_type.to_string(),
            "not_before": cert.not_before.to_string(),
            "not_after": cert.not_after.to_string(),
            "dir": a.out_dir.display().to_string(),
        }));
    } else {
        println!("serial: {}", cert.serial.to_hex());
        println!("lease: {}", cert.lease_id);
        println!("not after: {}", cert.not_after);
        println!(
            "wrote {}/cert.pem, chain.pem, key.pem (0600)",
            a.out_dir.display()
        );
    }
    Ok(())
}

/// `pki crl`.
async fn crl(a: PkiMountArgs) -> CliResult {
    with_pki(&a.store, &a.operator, &a.mount.mount, async |op, pki| {
        let crl = pki.crl(op.secrets()).await?;
        eprintln!(
            "CRL number {}, {} serial(s), next update {}",
            crl.number,
            crl.serials.len(),
            crl.next_update
        );
        print!("{}", pem("X509 CRL", crl.der.as_ref()).as_str());
        Ok(())
    })
    .await
}
