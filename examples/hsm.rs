//! The root key in an HSM: a store whose root key is wrapped by an AES-256
//! key inside a PKCS#11 token (here SoftHSM2), unsealed through the token
//! after a restart.
//!
//! Needs SoftHSM2 (`bash scripts/setup-softhsm.sh`). Run with
//! `cargo run -p strongroom-examples --example hsm`. The example creates a
//! throw-away SoftHSM token in a temporary directory; with a real HSM you
//! would pass its module path, token label and a PIN from your secret source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use strongroom::protector::KeyProtector;
use strongroom::seal::SealContext;
use strongroom::storage::DynStorage;
use strongroom::{Error, Options, SecretBytes, SecretString, Strongroom};
use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector};
use strongroom_sqlx::SqliteStore;

const MODULES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];
const TOKEN: &str = "strongroom-demo";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(module) = MODULES.iter().map(PathBuf::from).find(|p| p.exists()) else {
        eprintln!("SoftHSM2 is not installed: run `bash scripts/setup-softhsm.sh` first");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir()?;
    println!(
        "working in a fresh temporary directory {} (token, database; removed at exit)",
        dir.path().display()
    );
    // A PIN for the demo token. In production it comes from your secret
    // source (a prompt, a secrets file), never from a literal or the env.
    let pin = SecretString::from(hex(&SecretBytes::random(8)?));
    let conf = make_token(dir.path(), &pin)?;
    // SAFETY: SoftHSM reads SOFTHSM2_CONF from the environment at
    // C_Initialize. This runs first thing in main, before the runtime or any
    // other thread exists, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(demo(module, pin, dir.path().join("store.db")))
}

async fn demo(
    module: PathBuf,
    pin: SecretString,
    db_path: PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = Pkcs11Config::new(&module, TOKEN, pin.clone(), "strongroom-root-kek");
    let storage: DynStorage = Arc::new(SqliteStore::open(&db_path).await?);
    let db = SealContext::new("apps/billing/db-password", 1);

    // --- first run: create the token key and the store -------------------
    {
        let hsm = Pkcs11Protector::init_key(config.clone()).await?;
        let info = hsm.key_info(hsm.current_version()).await?;
        println!(
            "token key {:?} v{} generated in token {:?}: mechanism {}, sensitive={}, extractable={}",
            info.label,
            info.version,
            hsm.token_label(),
            hsm.mechanism(),
            info.sensitive,
            info.extractable
        );
        let vault = Strongroom::init(Arc::clone(&storage), &hsm, Options::default())
            .await?
            .dangerous_traced("example")
            .await?;
        vault
            .put_sealed(
                "s/apps/billing/db-password",
                b"correct horse battery staple",
                &db,
            )
            .await?;
        println!("store initialised; one secret sealed");
    } // vault and protector dropped: the process "restarts"

    // --- a wrong PIN cannot unseal -----------------------------------------
    let wrong = Pkcs11Config::new(
        &module,
        TOKEN,
        SecretString::from("0000"),
        "strongroom-root-kek",
    );
    match Pkcs11Protector::open(wrong).await {
        Err(e @ Error::Protector { .. }) => println!("wrong PIN refused: {e}"),
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("a wrong PIN was accepted".into()),
    }

    // --- second run: a new process opens the file and unseals through the token
    drop(storage);
    let storage: DynStorage = Arc::new(SqliteStore::open(&db_path).await?);
    let hsm = Pkcs11Protector::open(config).await?;
    let vault = Strongroom::unseal(Arc::clone(&storage), &hsm, Options::default())
        .await?
        .dangerous_traced("example")
        .await?;
    let secret = vault
        .get_sealed("s/apps/billing/db-password", &db)
        .await?
        .ok_or("the secret is gone")?;
    assert_eq!(secret.expose_secret(), b"correct horse battery staple");
    println!(
        "unsealed through {} (key v{}); read back {} bytes, as stored",
        hsm.kind(),
        hsm.current_version(),
        secret.len()
    );

    // --- rotate the token key: new key version in the token, root re-wrapped,
    //     old token key destroyed; the store still unseals ----------------------
    let old_version = hsm.current_version();
    hsm.rotate().await?;
    vault.rotate_root_key(&hsm).await?;
    // refused if a store's root key were still wrapped under the old version
    hsm.destroy_unused_key_version(old_version, std::slice::from_ref(&storage))
        .await?;
    drop(vault);
    let vault = Strongroom::unseal(Arc::clone(&storage), &hsm, Options::default())
        .await?
        .dangerous_traced("example")
        .await?;
    let again = vault
        .get_sealed("s/apps/billing/db-password", &db)
        .await?
        .ok_or("the secret is gone")?;
    assert_eq!(again.expose_secret(), b"correct horse battery staple");
    println!(
        "token key rotated v{old_version} -> v{} (old key destroyed); unsealed again: ok",
        hsm.current_version()
    );
    Ok(())
}

/// Writes a SoftHSM configuration in `dir` and creates the demo token.
fn make_token(dir: &Path, pin: &SecretString) -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir.join("tokens"))?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.display()
        ),
    )?;
    let so_pin = hex(&SecretBytes::random(8)?);
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            &so_pin,
        ])
        .args(["--pin", pin.expose_secret()])
        .output()
        .map_err(|e| format!("softhsm2-util: {e} (run `bash scripts/setup-softhsm.sh`)"))?;
    if !out.status.success() {
        return Err(format!(
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(conf)
}

fn hex(bytes: &SecretBytes) -> String {
    bytes
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
