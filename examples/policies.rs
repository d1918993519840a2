//! Policies and audit: two services, each bound to its policy file, use one
//! SQLite-backed store through principal-bound handles; every request,
//! allowed or denied, lands in a chained JSON-lines audit file that is
//! verified at the end.
//!
//! Run: `cargo run -p strongroom-examples --example policies [-- <dir>]`
//! (a temporary directory when none is given). Exits non-zero if any
//! expectation fails.

use std::path::Path;
use std::sync::Arc;

use strongroom::audit::{FsyncPolicy, Inventory, JsonlFileSink, Outcome, verify_jsonl_file};
use strongroom::policy::PolicyRegistry;
use strongroom::protector::SoftwareProtector;
use strongroom::storage::DynStorage;
use strongroom::{Error, Options, Result, Strongroom};
use strongroom_sqlx::SqliteStore;

const PAYMENT_POLICY: &str = r#"# What the payment service may touch.
name = "payment-svc"

[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["create", "read", "update", "list"]

[[path]]
pattern = "prod/payment-svc/admin/*"
capabilities = ["deny"]
"#;

const AUDITOR_POLICY: &str = r#"# Read-only access to production metadata listings.
name = "auditor"

[[path]]
pattern = "prod*"
capabilities = ["list"]
"#;

fn expect(ok: bool, what: &str) -> Result<()> {
    if ok {
        println!("  ok: {what}");
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "expectation failed: {what}"
        )))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let tmp = tempfile::tempdir().map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            println!(
                "working in a fresh temporary directory {} (removed at exit)",
                tmp.path().display()
            );
            tmp.path().to_path_buf()
        }
    };
    run(&dir).await
}

async fn run(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::InvalidArgument(e.to_string());
    // A store in a SQLite file, its root key in a 0600 key file.
    let key_file = dir.join("policies-example.key");
    let db = dir.join("policies-example.db");
    let audit_file = dir.join("policies-example-audit.jsonl");
    for f in [&key_file, &db, &audit_file] {
        let _ = std::fs::remove_file(f);
    }
    SoftwareProtector::generate_key_file(&key_file)?;
    let protector = SoftwareProtector::from_key_file(&key_file)?;
    let storage: DynStorage = Arc::new(SqliteStore::open(&db).await?);
    let sr = Strongroom::init(storage, &protector, Options::default())
        .await?
        .dangerous_traced("example")
        .await?;

    // Policies live in version control as files.
    let mut registry = PolicyRegistry::new();
    for (name, text) in [("payment-svc", PAYMENT_POLICY), ("auditor", AUDITOR_POLICY)] {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, text).map_err(io)?;
        registry.load_toml_file(&file)?;
    }
    let payment = registry.principal("payment-svc", &["payment-svc"])?;
    let auditor = registry.principal("auditor", &["auditor"])?;

    // One audit log for the store, writing a chained JSON-lines file.
    let sink = Arc::new(JsonlFileSink::open(&audit_file, FsyncPolicy::EveryRecord)?);
    let log = Arc::new(sr.open_audit_log(vec![sink], Some(&audit_file)).await?);
    let pay = sr.as_principal(payment, log.clone());
    let aud = sr.as_principal(auditor, log.clone());

    println!("payment-svc:");
    let v = pay
        .put("prod/payment-svc/postgres", b"pg-password-1", Some(0))
        .await?;
    expect(v.version == 1, "creates prod/payment-svc/postgres")?;
    pay.put("prod/payment-svc/postgres", b"pg-password-2", Some(1))
        .await?;
    let read = pay.read("prod/payment-svc/postgres").await?;
    expect(
        read.version.version == 2 && read.value.expose_secret() == b"pg-password-2",
        "reads version 2 (value not printed)",
    )?;
    let denied = pay.read("prod/billing/stripe-key").await;
    expect(
        matches!(&denied, Err(e) if e.kind() == "policy_denied"),
        "may not read prod/billing/stripe-key (default deny)",
    )?;
    let denied = pay.put("prod/payment-svc/admin/root", b"x", None).await;
    expect(
        matches!(&denied, Err(e) if e.kind() == "policy_denied"),
        "may not write under the denied admin/ subtree",
    )?;
    let bypass = pay.read("prod/payment-svc/../billing/stripe-key").await;
    expect(
        matches!(&bypass, Err(e) if e.kind() == "invalid_path"),
        "a '..' bypass is rejected as an invalid path",
    )?;

    println!("auditor:");
    let listed = aud.list("prod/payment-svc").await?;
    expect(listed == ["postgres"], "lists prod/payment-svc")?;
    let denied = aud.read("prod/payment-svc/postgres").await;
    expect(
        matches!(&denied, Err(e) if e.kind() == "policy_denied"),
        "may list but not read",
    )?;

    // Verify the whole file against the head saved in the store.
    let head = sr
        .saved_audit_head()
        .await?
        .ok_or_else(|| Error::InvalidArgument("no audit head saved".into()))?;
    let report = verify_jsonl_file(&audit_file, &sr.audit_key()?, None, Some(&head))?;
    println!(
        "audit: {} records in {} verify up to seq {}",
        report.records,
        audit_file.display(),
        report.head.seq
    );
    let text = std::fs::read_to_string(&audit_file).map_err(io)?;
    expect(
        !text.contains("pg-password"),
        "no value appears in the audit file",
    )?;
    let records = text
        .lines()
        .map(strongroom::audit::AuditRecord::from_json_line)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let denials = records
        .iter()
        .filter(|r| r.event.outcome == Outcome::Denied)
        .count();
    expect(denials == 3, "three denials recorded")?;
    let hmac = log.hmac(b"pg-password-2");
    expect(
        records
            .iter()
            .any(|r| r.event.fields.values().any(|h| *h == hmac)),
        "an auditor holding a known value finds its writes and reads by HMAC",
    )?;
    let inventory = Inventory::from_records(&records);
    for s in inventory.readers("prod/payment-svc/postgres") {
        println!(
            "  prod/payment-svc/postgres read by {} {} time(s), last at {}",
            s.principal,
            s.reads,
            s.last_read.map(|t| t.to_rfc3339()).unwrap_or_default()
        );
    }
    Ok(())
}
