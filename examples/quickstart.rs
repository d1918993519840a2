//! Quickstart: the embedded default, a SQLite file plus a software root key.
//!
//! Initialises a store, seals and reads secrets, rotates the keyring,
//! rewraps every stored value under the new key, retires and destroys the old
//! key, and reopens the store as a restarted process would.
//!
//! Run: `cargo run -p strongroom-examples --example quickstart` (a fresh
//! temporary directory, removed at exit, so it can be run again and again),
//! or with `-- <dir>` to keep the key file and database in an empty
//! directory of your own.

use std::path::PathBuf;
use std::sync::Arc;

use strongroom::protector::SoftwareProtector;
use strongroom::seal::SealContext;
use strongroom::storage::DynStorage;
use strongroom::{Options, Result, Strongroom};
use strongroom_sqlx::SqliteStore;

#[tokio::main]
async fn main() -> Result<()> {
    // A key file must sit in a directory only its owner can write (not
    // /tmp itself): a private temporary directory unless one is given.
    let scratch =
        tempfile::tempdir().map_err(|e| strongroom::Error::InvalidArgument(e.to_string()))?;
    let dir: PathBuf = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => {
            println!(
                "working in a fresh temporary directory {} (removed at exit; give a directory to keep the files)",
                scratch.path().display()
            );
            scratch.path().to_path_buf()
        }
    };
    let key_file = dir.join("root.key");
    let db = dir.join("strongroom.db");

    // 1. A root key file (mode 0600) and a new store in a SQLite file.
    SoftwareProtector::generate_key_file(&key_file)?;
    let key = SoftwareProtector::from_key_file(&key_file)?;
    let storage: DynStorage = Arc::new(SqliteStore::open(&db).await?);
    let sr = Strongroom::init(storage.clone(), &key, Options::default())
        .await?
        .dangerous_traced("example")
        .await?;
    println!(
        "initialised {} (key file {})",
        db.display(),
        key_file.display()
    );

    // 2. Write secrets to the versioned store; each value is sealed and bound
    //    to its path and version. cas = Some(0) means "create only".
    let secrets = [
        ("prod/payment-svc/postgres", "pg-password-1"),
        ("prod/payment-svc/stripe-key", "sk_live_example"),
        ("staging/search/api-token", "tok-example"),
    ];
    let store = sr.secrets();
    for (path, value) in secrets {
        let v = store.put(path, value.as_bytes(), Some(0)).await?;
        println!("wrote {path} version {}", v.version);
    }
    // A second version, then read latest and version 1.
    store.put(secrets[0].0, b"pg-password-2", Some(1)).await?;
    let latest = store.get(secrets[0].0).await?;
    let first = store.get_version(secrets[0].0, 1).await?;
    println!(
        "read {} -> version {} ({} bytes; values are never printed), version 1 still readable: {}",
        secrets[0].0,
        latest.version.version,
        latest.value.len(),
        first.value.expose_secret() == b"pg-password-1"
    );
    println!("list prod/ -> {:?}", store.list("prod").await?);

    // Low-level sealing is available too: seal a value bound to a context.
    let ctx = SealContext::new("prod/payment-svc/webhook", 1);
    let sealed = sr.seal_value(b"whsec_example", &ctx).await?;
    assert_eq!(
        sr.open_value(&sealed, &ctx)?.expose_secret(),
        b"whsec_example"
    );

    // 3. Rotate the keyring: new values use key version 2, old ones still open.
    let v2 = sr.rotate().await?;
    println!("rotated: primary key is now version {}", v2.version);

    // 4. Rewrap every stored value under version 2 (no plaintext returned).
    let report = sr.rewrap(100).await?;
    println!(
        "rewrapped {} of {} records ({} unreadable)",
        report.rewrapped,
        report.scanned,
        report.unreadable.len()
    );

    // 5. Retire and destroy version 1: nothing needs it any more.
    sr.set_min_decryption_version(2).await?;
    sr.destroy_key(1).await?;
    for k in sr.keys()? {
        println!("key version {}: {}", k.version, k.state);
    }

    // 6. "Restart": forget the keys, close the file, reopen, unseal, read.
    sr.seal();
    drop(sr);
    drop(storage);
    let key = SoftwareProtector::from_key_file(&key_file)?;
    let storage: DynStorage = Arc::new(SqliteStore::open(&db).await?);
    let sr = Strongroom::unseal(storage, &key, Options::default())
        .await?
        .dangerous_traced("example")
        .await?;
    let store = sr.secrets();
    for (path, value) in &secrets[1..] {
        let got = store.get(path).await?;
        assert_eq!(got.value.expose_secret(), value.as_bytes(), "{path}");
    }
    let got = store.get(secrets[0].0).await?;
    assert_eq!(got.value.expose_secret(), b"pg-password-2");
    println!("reopened and read back {} secrets: ok", secrets.len());

    // 7. Neither the database file nor its WAL holds any plaintext.
    for entry in
        std::fs::read_dir(&dir).map_err(|e| strongroom::Error::InvalidArgument(e.to_string()))?
    {
        let path = entry
            .map_err(|e| strongroom::Error::InvalidArgument(e.to_string()))?
            .path();
        if !path.to_string_lossy().contains("strongroom.db") {
            continue;
        }
        let raw =
            std::fs::read(&path).map_err(|e| strongroom::Error::InvalidArgument(e.to_string()))?;
        for value in secrets
            .iter()
            .map(|(_, v)| v.as_bytes())
            .chain([&b"pg-password-2"[..]])
        {
            assert!(
                !raw.windows(value.len()).any(|w| w == value),
                "plaintext in {}",
                path.display()
            );
        }
    }
    println!("no plaintext in {}*: ok", db.display());
    Ok(())
}
