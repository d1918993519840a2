//! The PKCS#11 protector against a real SoftHSM2.
//!
//! The tests build their own SoftHSM configuration and tokens in a temporary
//! directory (under Cargo's target tmp dir) before the first `C_Initialize`.
//! SoftHSM2 itself must be installed: run `bash scripts/setup-softhsm.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// One `unsafe` block: setting SOFTHSM2_CONF (see `hsm()`).
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use strongroom::protector::{KeyProtector, conformance};
use strongroom::{Error, ProtectorErrorKind, SecretBytes, SecretString};
use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector, WrapMechanism};

const SO_PIN: &str = "87654321";
const USER_PIN: &str = "1234-user";
/// Tokens created at start (SoftHSM reads its token directory at
/// `C_Initialize`, which happens once per process).
const TOKENS: [&str; 15] = [
    "sr-main",
    "sr-other",
    "sr-pin",
    "sr-kwp",
    "sr-gone",
    "sr-conf",
    "sr-store",
    "sr-debug",
    "sr-del",
    "sr-rot",
    "sr-attrs",
    "sr-reopen",
    "sr-blob1",
    "sr-blob2",
    "sr-guard",
];

const MODULE_CANDIDATES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// SoftHSM 2.6's file object store intermittently fails key generation
/// (`CKR_GENERAL_ERROR`) when other test threads generate keys on, search or
/// delete tokens at the same moment. The tests take turns through this lock;
/// concurrency inside one protector is still tested (`concurrent_use_from_many_tasks`).
static TOKEN_DIR: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

struct Hsm {
    module: PathBuf,
    dir: PathBuf,
}

fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let missing = "SoftHSM2 is not installed: run `bash scripts/setup-softhsm.sh` (installs the softhsm2 package) and re-run the tests";
        let module = MODULE_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{missing} (no libsofthsm2.so in {MODULE_CANDIDATES:?})"));
        match Command::new("softhsm2-util").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            _ => panic!("{missing} (softhsm2-util not found on PATH)"),
        }
        let dir = tempfile::Builder::new()
            .prefix("softhsm-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.display()
            ),
        )
        .unwrap();
        for label in TOKENS {
            let out = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(["--init-token", "--free", "--label", label])
                .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // SAFETY: SoftHSM reads SOFTHSM2_CONF from the process environment
        // in C_Initialize, so it must be set in-process. This runs once,
        // inside the OnceLock, before any PKCS#11 call; every test calls
        // hsm() first, so the other test threads are blocked on this
        // OnceLock rather than reading the environment concurrently.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        Hsm { module, dir }
    })
}

fn config(token: &str, key_label: &str) -> Pkcs11Config {
    let h = hsm();
    Pkcs11Config::new(&h.module, token, SecretString::from(USER_PIN), key_label)
}

fn kind_of(e: &Error) -> ProtectorErrorKind {
    match e {
        Error::Protector {
            protector: "pkcs11",
            kind,
            ..
        } => *kind,
        other => panic!("not a pkcs11 protector error: {other:?}"),
    }
}

#[tokio::test]
async fn conformance_with_aes_gcm() {
    let _exclusive = TOKEN_DIR.write().await;
    let a = Pkcs11Protector::init_key(config("sr-conf", "conf-a"))
        .await
        .unwrap();
    let b = Pkcs11Protector::init_key(config("sr-conf", "conf-b"))
        .await
        .unwrap();
    assert_eq!(a.mechanism(), WrapMechanism::AesGcm);
    let offered = a.token_mechanisms();
    println!("SoftHSM offers: {}", offered.join(" "));
    println!("chosen: {}", a.mechanism());
    assert!(offered.iter().any(|m| m == "CKM_AES_GCM"), "{offered:?}");
    conformance::run_all(&a, &b).await;
}

#[tokio::test]
async fn conformance_with_aes_key_wrap_pad() {
    let _exclusive = TOKEN_DIR.write().await;
    let cfg = |label| config("sr-kwp", label).with_mechanism(WrapMechanism::AesKeyWrapPad);
    let a = Pkcs11Protector::init_key(cfg("kwp-a")).await.unwrap();
    let b = Pkcs11Protector::init_key(cfg("kwp-b")).await.unwrap();
    assert_eq!(a.mechanism(), WrapMechanism::AesKeyWrapPad);
    let info = a.key_info(1).await.unwrap();
    assert_eq!(info.mechanism, WrapMechanism::AesKeyWrapPad);
    conformance::run_all(&a, &b).await;
    // reopening finds the mechanism from the key's attributes
    let c = Pkcs11Protector::open(config("sr-kwp", "kwp-a"))
        .await
        .unwrap();
    assert_eq!(c.mechanism(), WrapMechanism::AesKeyWrapPad);
    let root = SecretBytes::random(32).unwrap();
    assert_eq!(c.unwrap(&a.wrap(&root).await.unwrap()).await.unwrap(), root);
}

#[tokio::test]
async fn token_key_is_sensitive_and_not_extractable() {
    let _exclusive = TOKEN_DIR.write().await;
    let p = Pkcs11Protector::init_key(config("sr-attrs", "attrs"))
        .await
        .unwrap();
    let info = p.key_info(1).await.unwrap();
    assert!(info.token, "{info:?}");
    assert!(info.sensitive, "{info:?}");
    assert!(!info.extractable, "{info:?}");
    assert!(info.never_extractable, "{info:?}");
    assert!(info.local, "generated on the token: {info:?}");
    assert_eq!(info.value_len, 32);
    assert_eq!(info.version, 1);
    assert_eq!(info.label, "attrs");
}

#[tokio::test]
async fn init_refuses_an_existing_key_and_open_finds_it() {
    let _exclusive = TOKEN_DIR.write().await;
    let p = Pkcs11Protector::init_key(config("sr-reopen", "reopen"))
        .await
        .unwrap();
    let root = SecretBytes::random(32).unwrap();
    let wrapped = p.wrap(&root).await.unwrap();
    let e = Pkcs11Protector::init_key(config("sr-reopen", "reopen"))
        .await
        .unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::Config);
    assert!(e.to_string().contains("use Pkcs11Protector::open"), "{e}");
    // a "restart": a fresh protector from the same configuration
    let q = Pkcs11Protector::open(config("sr-reopen", "reopen"))
        .await
        .unwrap();
    assert_eq!(q.current_version(), 1);
    assert_eq!(q.unwrap(&wrapped).await.unwrap(), root);
}

#[tokio::test]
async fn wrong_pin_is_reported() {
    let _exclusive = TOKEN_DIR.write().await;
    let wrong = |label| {
        Pkcs11Config::new(
            &hsm().module,
            "sr-pin",
            SecretString::from("9999-wrong"),
            label,
        )
    };
    // nobody is logged in to this token yet: the token itself says no
    let e = Pkcs11Protector::init_key(wrong("pin-key"))
        .await
        .unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::WrongPin, "{e}");
    assert!(!e.to_string().contains("9999-wrong"), "{e}");
    // the right PIN works
    let p = Pkcs11Protector::init_key(config("sr-pin", "pin-key"))
        .await
        .unwrap();
    // now the process is logged in; a wrong PIN is still refused
    let e = Pkcs11Protector::open(wrong("pin-key")).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::WrongPin, "{e}");
    // and the logged-in protector keeps working
    let root = SecretBytes::random(32).unwrap();
    assert_eq!(p.unwrap(&p.wrap(&root).await.unwrap()).await.unwrap(), root);
}

#[tokio::test]
async fn missing_module_is_reported() {
    let _exclusive = TOKEN_DIR.write().await;
    let _ = hsm();
    let cfg = Pkcs11Config::new(
        "/nonexistent/libpkcs11-missing.so",
        "sr-main",
        SecretString::from(USER_PIN),
        "k",
    );
    let e = Pkcs11Protector::open(cfg).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::ModuleNotFound, "{e}");
    assert!(e.to_string().contains("libpkcs11-missing.so"), "{e}");

    // a file that exists but is no shared library
    let not_a_module = hsm().dir.join("softhsm2.conf");
    let cfg = Pkcs11Config::new(not_a_module, "sr-main", SecretString::from(USER_PIN), "k");
    let e = Pkcs11Protector::open(cfg).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::ModuleNotFound, "{e}");
}

#[tokio::test]
async fn absent_token_is_reported() {
    let _exclusive = TOKEN_DIR.write().await;
    let e = Pkcs11Protector::open(config("no-such-token", "k"))
        .await
        .unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::TokenNotFound, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("no-such-token"), "{msg}");
    assert!(msg.contains("sr-main"), "lists the tokens present: {msg}");
}

#[tokio::test]
async fn absent_key_is_reported() {
    let _exclusive = TOKEN_DIR.write().await;
    let e = Pkcs11Protector::open(config("sr-main", "never-created"))
        .await
        .unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::KeyNotFound, "{e}");
    assert!(e.to_string().contains("init_key"), "{e}");
}

#[tokio::test]
async fn key_deleted_from_the_token_is_reported() {
    let _exclusive = TOKEN_DIR.write().await;
    let p = Pkcs11Protector::init_key(config("sr-del", "deleted"))
        .await
        .unwrap();
    let root = SecretBytes::random(32).unwrap();
    let wrapped = p.wrap(&root).await.unwrap();
    // another process (here: another protector) rotates and deletes version 1
    let q = Pkcs11Protector::open(config("sr-del", "deleted"))
        .await
        .unwrap();
    assert_eq!(q.rotate().await.unwrap(), 2);
    q.destroy_key_version(1).await.unwrap();

    let e = p.unwrap(&wrapped).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::KeyNotFound, "{e}");
    assert!(e.to_string().contains("version 1"), "{e}");
    let e = p.wrap(&root).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::KeyNotFound, "{e}");
    let e = q.destroy_key_version(1).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::KeyNotFound, "{e}");
}

#[tokio::test]
async fn blob_from_another_token_fails_opaquely() {
    let _exclusive = TOKEN_DIR.write().await;
    // same key label and version on two tokens: only the key bytes differ
    let here = Pkcs11Protector::init_key(config("sr-blob1", "shared-label"))
        .await
        .unwrap();
    let there = Pkcs11Protector::init_key(config("sr-blob2", "shared-label"))
        .await
        .unwrap();
    let root = SecretBytes::random(32).unwrap();
    let wrapped = here.wrap(&root).await.unwrap();
    let e = there.unwrap(&wrapped).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::UnwrapFailed, "{e}");
    // no detail from the token (SoftHSM says CKR_GENERAL_ERROR here)
    assert!(!e.to_string().contains("CKR"), "{e}");
    assert!(!e.to_string().contains("GeneralError"), "{e}");
    assert_eq!(here.unwrap(&wrapped).await.unwrap(), root);
}

#[tokio::test]
async fn rotation_inside_the_token() {
    let _exclusive = TOKEN_DIR.write().await;
    let p = Pkcs11Protector::init_key(config("sr-rot", "rotating"))
        .await
        .unwrap();
    let root = SecretBytes::random(32).unwrap();
    let v1 = p.wrap(&root).await.unwrap();
    assert_eq!(Pkcs11Protector::wrapped_key_version(&v1), Some(1));

    assert_eq!(p.rotate().await.unwrap(), 2);
    assert_eq!(p.current_version(), 2);
    assert_eq!(p.key_versions().await.unwrap(), vec![1, 2]);
    let info = p.key_info(2).await.unwrap();
    assert!(info.sensitive && !info.extractable, "{info:?}");

    let v2 = p.rewrap(&v1).await.unwrap();
    assert_eq!(Pkcs11Protector::wrapped_key_version(&v2), Some(2));
    assert_ne!(v1, v2);
    // both open while version 1 is still on the token
    assert_eq!(p.unwrap(&v1).await.unwrap(), root);
    assert_eq!(p.unwrap(&v2).await.unwrap(), root);
    // new wraps use version 2
    let fresh = p.wrap(&root).await.unwrap();
    assert_eq!(Pkcs11Protector::wrapped_key_version(&fresh), Some(2));

    // the current version cannot be removed
    let e = p.destroy_key_version(2).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::Config, "{e}");
    // the old one can, after rewrap
    p.destroy_key_version(1).await.unwrap();
    assert_eq!(p.key_versions().await.unwrap(), vec![2]);
    assert_eq!(p.unwrap(&v2).await.unwrap(), root);
    let e = p.unwrap(&v1).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::KeyNotFound, "{e}");

    // after a restart, open picks the newest version
    let q = Pkcs11Protector::open(config("sr-rot", "rotating"))
        .await
        .unwrap();
    assert_eq!(q.current_version(), 2);
    assert_eq!(q.unwrap(&v2).await.unwrap(), root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_from_many_tasks() {
    let p = Pkcs11Protector::init_key(config("sr-main", "concurrent"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let root = SecretBytes::random(32).unwrap();
                let w = p.wrap(&root).await.unwrap();
                assert_eq!(p.unwrap(&w).await.unwrap(), root);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn pin_never_shows_in_debug() {
    let _exclusive = TOKEN_DIR.write().await;
    let cfg = config("sr-debug", "debug");
    let d = format!("{cfg:?}");
    assert!(!d.contains(USER_PIN), "{d}");
    assert!(d.contains("REDACTED"), "{d}");
    let p = Pkcs11Protector::init_key(cfg).await.unwrap();
    let d = format!("{p:?}");
    assert!(!d.contains(USER_PIN), "{d}");
    assert!(d.contains("sr-debug") && d.contains("debug"), "{d}");
}

#[test]
fn setup_script_exists() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup-softhsm.sh");
    assert!(script.exists(), "{}", script.display());
}

#[tokio::test]
async fn store_unseals_through_the_token_and_bad_attempts_change_nothing() {
    let _exclusive = TOKEN_DIR.write().await;
    use strongroom::seal::SealContext;
    use strongroom::storage::MemoryStorage;
    use strongroom::{Options, Strongroom};

    let mem = MemoryStorage::new();
    let ctx = SealContext::new("app/db", 1);
    {
        let hsm = Pkcs11Protector::init_key(config("sr-store", "store-root"))
            .await
            .unwrap();
        let sr = Strongroom::init(Arc::new(mem.clone()), &hsm, Options::default())
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        sr.put_sealed("s/app/db", b"pw-from-hsm", &ctx)
            .await
            .unwrap();
    }
    let before = mem.snapshot().await;

    // the same key label on another token cannot unseal
    let other = Pkcs11Protector::init_key(config("sr-other", "store-root"))
        .await
        .unwrap();
    let e = Strongroom::unseal(Arc::new(mem.clone()), &other, Options::default())
        .await
        .unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::UnwrapFailed, "{e}");
    assert_eq!(mem.snapshot().await, before);

    // "restart": a fresh protector opened from configuration
    let hsm = Pkcs11Protector::open(config("sr-store", "store-root"))
        .await
        .unwrap();
    let sr = Strongroom::unseal(Arc::new(mem.clone()), &hsm, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let got = sr.get_sealed("s/app/db", &ctx).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), b"pw-from-hsm");
    assert_eq!(mem.snapshot().await, before);
}

/// Deleting an old token key version is refused while a store's root key is
/// still wrapped under it (rotated in the token, but `rotate_root_key` not
/// run yet), and allowed once the root key is re-wrapped.
#[tokio::test]
async fn an_old_token_key_still_wrapping_a_root_key_is_not_destroyed() {
    let _exclusive = TOKEN_DIR.write().await;
    use strongroom::seal::SealContext;
    use strongroom::storage::{DynStorage, MemoryStorage};
    use strongroom::{Options, Strongroom, WrappedRootKey};

    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let ctx = SealContext::new("app/db", 1);
    let hsm = Pkcs11Protector::init_key(config("sr-guard", "guarded"))
        .await
        .unwrap();
    let sr = Strongroom::init(storage.clone(), &hsm, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    sr.put_sealed("s/app/db", b"kept", &ctx).await.unwrap();
    let root = WrappedRootKey::read(&storage).await.unwrap();
    assert_eq!(root.protector_kind, hsm.kind());
    assert_eq!(Pkcs11Protector::wrapped_key_version(&root.wrapped), Some(1));

    assert_eq!(hsm.rotate().await.unwrap(), 2);
    let e = hsm
        .destroy_unused_key_version(1, std::slice::from_ref(&storage))
        .await
        .unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::Config, "{e}");
    assert!(e.to_string().contains("rotate_root_key"), "{e}");
    assert_eq!(
        hsm.key_versions().await.unwrap(),
        vec![1, 2],
        "nothing destroyed"
    );

    sr.rotate_root_key(&hsm).await.unwrap();
    let root = WrappedRootKey::read(&storage).await.unwrap();
    assert_eq!(Pkcs11Protector::wrapped_key_version(&root.wrapped), Some(2));
    hsm.destroy_unused_key_version(1, std::slice::from_ref(&storage))
        .await
        .unwrap();
    assert_eq!(hsm.key_versions().await.unwrap(), vec![2]);
    drop(sr);
    let sr = Strongroom::unseal(storage, &hsm, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let got = sr.get_sealed("s/app/db", &ctx).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), b"kept");
}

#[tokio::test]
async fn removed_token_is_reported() {
    let _exclusive = TOKEN_DIR.write().await;
    let p = Pkcs11Protector::init_key(config("sr-gone", "gone"))
        .await
        .unwrap();
    let root = SecretBytes::random(32).unwrap();
    let wrapped = p.wrap(&root).await.unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", hsm().dir.join("softhsm2.conf"))
        .args(["--delete-token", "--token", "sr-gone"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the protector that was using it
    let e = p.unwrap(&wrapped).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::TokenRemoved, "{e}");
    let e = p.wrap(&root).await.unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::TokenRemoved, "{e}");
    // a new protector does not find it
    let e = Pkcs11Protector::open(config("sr-gone", "gone"))
        .await
        .unwrap_err();
    assert_eq!(kind_of(&e), ProtectorErrorKind::TokenNotFound, "{e}");
}
