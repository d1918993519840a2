//! Node.js binding of Strongroom (napi-rs).
//!
//! Each function converts its arguments, calls the core, and maps the result
//! or error back; no behaviour lives here. The JavaScript layer beside this
//! crate (`index.js`) turns the raw exports into the public API: the
//! `Strongroom` class, the `Secret` wrapper and the typed error classes.
//!
//! Errors cross the boundary as a plain `Error` whose message is
//! [`ERROR_MARK`] followed by a JSON object `{code, message, ...details}`;
//! `index.js` parses it and throws the matching error class. Nothing secret is
//! ever part of an error.
//!
//! Plaintexts come back in JavaScript-owned Buffers: `index.js` copies a
//! sealed value into a fresh Buffer and the core opens it in place there, so
//! that Buffer is the only copy of the plaintext and `Secret.wipe()` zeroes
//! it. Any Rust-side copy (as in `get_sealed`) is zeroized when it drops.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};

use napi::Status;
use napi::bindgen_prelude::{
    BigInt, Buffer, BufferSlice, Either, Env, PromiseRaw, within_runtime_if_available,
};

use napi_derive::napi;
use serde_json::{Value, json};
use strongroom::keyring::{KeyInfo, KeyringOptions};
use strongroom::protector::SoftwareProtector;
use strongroom::seal::{self, Algorithm, DataKey, SealContext};
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Error, KeyFileError, Options, SecretBytes, Strongroom};

/// Prefix of every error message produced by this crate; the JSON payload
/// follows it.
const ERROR_MARK: &str = "\u{1}strongroom:";

/// Plaintexts at least this long are sealed or opened on a worker thread;
/// shorter ones on the calling thread, where the work costs less than the
/// thread hop.
const OFFLOAD_THRESHOLD: usize = 64 * 1024;

// ----- errors -----

/// The stable `code` string and structured details of a core error.
fn classify(e: &Error) -> (&'static str, Value) {
    match e {
        Error::DecryptionFailed => ("ERR_STRONGROOM_DECRYPTION_FAILED", json!({})),
        Error::MalformedSealedValue(_) => ("ERR_STRONGROOM_MALFORMED_SEALED_VALUE", json!({})),
        Error::UnknownKeyVersion { version, latest } => (
            "ERR_STRONGROOM_UNKNOWN_KEY_VERSION",
            json!({ "version": version, "latest": latest }),
        ),
        Error::KeyVersionRetired {
            version,
            state,
            min_decryption_version,
        } => (
            "ERR_STRONGROOM_KEY_VERSION_RETIRED",
            json!({
                "version": version,
                "state": state.to_string(),
                "minDecryptionVersion": min_decryption_version,
            }),
        ),
        Error::InvalidKeyTransition { version, from, to } => (
            "ERR_STRONGROOM_INVALID_KEY_TRANSITION",
            json!({ "version": version, "from": from.to_string(), "to": to.to_string() }),
        ),
        Error::KeyInUse {
            version,
            records,
            example,
        } => (
            "ERR_STRONGROOM_KEY_IN_USE",
            json!({ "version": version, "records": records, "example": example }),
        ),
        Error::InvalidPath { path, reason } => (
            "ERR_STRONGROOM_INVALID_PATH",
            json!({ "path": path, "reason": reason.to_string() }),
        ),
        Error::Sealed => ("ERR_STRONGROOM_SEALED", json!({})),
        Error::AlreadyInitialized => ("ERR_STRONGROOM_ALREADY_INITIALIZED", json!({})),
        Error::NotInitialized => ("ERR_STRONGROOM_NOT_INITIALIZED", json!({})),
        Error::UnsealFailed => ("ERR_STRONGROOM_UNSEAL_FAILED", json!({})),
        Error::KeyFile { path, reason } => (
            "ERR_STRONGROOM_KEY_FILE",
            json!({ "path": path, "reason": key_file_reason(reason) }),
        ),
        Error::Protector {
            protector, kind, ..
        } => (
            "ERR_STRONGROOM_PROTECTOR",
            json!({ "protector": protector, "kind": format!("{kind:?}") }),
        ),
        Error::Storage { backend, kind, .. } => (
            "ERR_STRONGROOM_STORAGE",
            json!({ "backend": backend, "kind": format!("{kind:?}") }),
        ),
        Error::StorageConflict { key } => {
            ("ERR_STRONGROOM_STORAGE_CONFLICT", json!({ "key": key }))
        }
        Error::CorruptRecord { key, .. } => {
            ("ERR_STRONGROOM_CORRUPT_RECORD", json!({ "key": key }))
        }
        Error::Random => ("ERR_STRONGROOM_RANDOM", json!({})),
        Error::InvalidArgument(_) => ("ERR_STRONGROOM_INVALID_ARGUMENT", json!({})),
        Error::Policy(strongroom::policy::PolicyError::Denied {
            principal,
            capability,
            path,
        }) => (
            "ERR_STRONGROOM_POLICY_DENIED",
            json!({ "principal": principal, "capability": capability.to_string(), "path": path }),
        ),
        Error::Secret(strongroom::secrets::SecretError::CasMismatch {
            path,
            expected,
            current,
        }) => (
            "ERR_STRONGROOM_CAS_CONFLICT",
            json!({ "path": path.to_string(), "expected": expected, "current": current }),
        ),
        Error::Lease(strongroom::lease::LeaseError::Expired { .. }) => {
            ("ERR_STRONGROOM_LEASE_EXPIRED", json!({}))
        }
        // Other secrets, policy, audit, lease, rotation and Shamir errors share
        // the base class until they need their own.
        _ => ("ERR_STRONGROOM", json!({})),
    }
}

fn key_file_reason(reason: &KeyFileError) -> &'static str {
    match reason {
        KeyFileError::LoosePermissions { .. } => "LoosePermissions",
        KeyFileError::Io(_) => "Io",
        KeyFileError::BadContent => "BadContent",
        KeyFileError::Exists => "Exists",
        _ => "Other",
    }
}

fn to_js(e: Error) -> napi::Error {
    let (code, mut details) = classify(&e);
    if let Value::Object(map) = &mut details {
        map.insert("code".into(), code.into());
        map.insert("message".into(), e.to_string().into());
    }
    napi::Error::new(Status::GenericFailure, format!("{ERROR_MARK}{details}"))
}

fn invalid(message: impl Into<String>) -> napi::Error {
    to_js(Error::InvalidArgument(message.into()))
}

// ----- argument conversion -----

/// A context version from a JS number (a non-negative safe integer) or bigint.
fn context_version(v: &Either<f64, BigInt>) -> napi::Result<u64> {
    match v {
        Either::A(n) => {
            if n.fract() == 0.0 && *n >= 0.0 && *n <= 9_007_199_254_740_991.0 {
                Ok(*n as u64)
            } else {
                Err(invalid(format!(
                    "version must be a non-negative integer (use a bigint above 2^53), got {n}"
                )))
            }
        }
        Either::B(b) => match b.get_u64() {
            (false, v, true) => Ok(v),
            _ => Err(invalid("version must be a bigint between 0 and 2^64-1")),
        },
    }
}

fn key_version(v: f64) -> napi::Result<u32> {
    if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
        Ok(v as u32)
    } else {
        Err(invalid(format!(
            "a key version is an integer between 0 and 2^32-1, got {v}"
        )))
    }
}

fn algorithm(name: &str) -> napi::Result<Algorithm> {
    Algorithm::from_name(name).ok_or_else(|| {
        invalid(format!(
            "unknown algorithm {name:?} (use \"aes-256-gcm\" or \"chacha20-poly1305\")"
        ))
    })
}

/// A plaintext argument: bytes or a UTF-8 string.
fn plain_bytes<'a>(p: &'a Either<BufferSlice<'_>, String>) -> &'a [u8] {
    match p {
        Either::A(b) => b,
        Either::B(s) => s.as_bytes(),
    }
}

/// Copies a plaintext into a new JavaScript Buffer; the Rust copy is
/// zeroized when `secret` drops at the end of this call.
fn secret_buffer(env: &Env, secret: SecretBytes) -> napi::Result<BufferSlice<'_>> {
    BufferSlice::copy_from(env, secret.expose_secret())
}

/// The unwrapped result of a future that finished on its first poll, or
/// the future itself.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match within_runtime_if_available(|| std::pin::Pin::new(fut).poll(&mut cx)) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

// ----- key info -----

/// Public facts about one key version.
#[napi(object)]
pub struct NativeKeyInfo {
    /// The version number.
    pub version: u32,
    /// "primary", "active", "retired" or "destroyed".
    pub state: String,
    /// "aes-256-gcm" or "chacha20-poly1305".
    pub algorithm: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: f64,
    /// Encryptions reserved so far.
    pub encryptions_reserved: f64,
}

impl From<KeyInfo> for NativeKeyInfo {
    fn from(k: KeyInfo) -> Self {
        Self {
            version: k.version,
            state: k.state.to_string(),
            algorithm: k.algorithm.name().to_owned(),
            created_ms: k.created.as_millis() as f64,
            encryptions_reserved: k.encryptions_reserved as f64,
        }
    }
}

/// What a rewrap did.
#[napi(object)]
pub struct NativeRewrapReport {
    /// Records looked at.
    pub scanned: f64,
    /// Records re-sealed under the primary key.
    pub rewrapped: f64,
    /// Storage keys of records that could not be opened.
    pub unreadable: Vec<String>,
}

// ----- the store -----

/// How the root key is supplied: raw bytes or a key file.
fn protector(key: Option<&[u8]>, key_file: Option<&str>) -> napi::Result<SoftwareProtector> {
    match (key, key_file) {
        (Some(k), None) => SoftwareProtector::from_key(SecretBytes::copy_from(k)).map_err(to_js),
        (None, Some(p)) => SoftwareProtector::from_key_file(p).map_err(to_js),
        _ => Err(invalid("give exactly one of `key` (32 bytes) or `keyFile`")),
    }
}

/// A storage backend that stores can be opened on.
#[napi]
pub struct NativeStorage {
    storage: DynStorage,
}

#[napi]
impl NativeStorage {
    /// A fresh in-memory storage.
    #[napi(factory)]
    pub fn memory() -> Self {
        Self {
            storage: Arc::new(MemoryStorage::new()),
        }
    }

    /// The backend's name ("memory", "sqlite", ...).
    #[napi(getter)]
    pub fn backend(&self) -> String {
        self.storage.backend().to_owned()
    }

    /// Whether the storage already holds a store.
    #[napi]
    pub fn is_initialized<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let storage = self.storage.clone();
        env.spawn_future(async move { Strongroom::is_initialized(&storage).await.map_err(to_js) })
    }
}

/// Opens the storage at `path`: `":memory:"` for a fresh in-memory one,
/// anything else an SQLite file (created if missing).
#[napi]
pub fn open_storage(env: &Env, path: String) -> napi::Result<PromiseRaw<'_, NativeStorage>> {
    env.spawn_future(async move {
        if path == ":memory:" {
            return Ok(NativeStorage::memory());
        }
        let store = strongroom_sqlx::SqliteStore::open(&path)
            .await
            .map_err(to_js)?;
        Ok(NativeStorage {
            storage: Arc::new(store),
        })
    })
}

/// One store: its storage and the current unsealed (or sealed) handle.
#[napi]
pub struct NativeStrongroom {
    storage: DynStorage,
    options: Options,
    current: Arc<RwLock<Strongroom>>,
}

/// Opens a store on `storage`. `mode` is "init" (must be empty), "unseal" (must exist) or "open"
/// (unseal if it exists, else init).
#[napi]
pub fn open_store<'env>(
    env: &'env Env,
    storage: &NativeStorage,
    mode: String,
    key: Option<Buffer>,
    key_file: Option<String>,
    algorithm_name: Option<String>,
) -> napi::Result<PromiseRaw<'env, NativeStrongroom>> {
    let storage = storage.storage.clone();
    let protector = protector(key.as_deref(), key_file.as_deref())?;
    let mut options = Options::default();
    if let Some(name) = algorithm_name {
        options.keyring = KeyringOptions {
            algorithm: algorithm(&name)?,
            ..options.keyring
        };
    }
    if !matches!(mode.as_str(), "init" | "unseal" | "open") {
        return Err(invalid(format!(
            "mode must be init, unseal or open, not {mode:?}"
        )));
    }
    env.spawn_future(async move {
        let init = match mode.as_str() {
            "init" => true,
            "unseal" => false,
            _ => !Strongroom::is_initialized(&storage).await.map_err(to_js)?,
        };
        let sr = if init {
            Strongroom::init(storage.clone(), &protector, options.clone()).await
        } else {
            Strongroom::unseal(storage.clone(), &protector, options.clone()).await
        }
        .map_err(to_js)?;
        Ok(NativeStrongroom {
            storage,
            options,
            current: Arc::new(RwLock::new(sr)),
        })
    })
}

#[napi]
impl NativeStrongroom {
    fn handle(&self) -> napi::Result<Strongroom> {
        self.current
            .read()
            .map(|s| s.clone())
            .map_err(|_| invalid("store handle poisoned"))
    }

    /// Seals `plaintext` under the primary key, bound to (path, version).
    ///
    /// When `out` is given (a Buffer of exactly plaintext length +
    /// `OVERHEAD` bytes) and sealing finishes on this thread, the sealed
    /// value is written into it and `null` returned. Otherwise (no `out`,
    /// a large value, or the key's encryption reservation had to be renewed
    /// in storage) a Promise of a new Buffer is returned.
    #[napi]
    pub fn seal_value<'env>(
        &self,
        env: &'env Env,
        out: Option<BufferSlice<'_>>,
        plaintext: Either<BufferSlice<'_>, String>,
        path: String,
        version: Either<f64, BigInt>,
    ) -> napi::Result<Option<PromiseRaw<'env, Buffer>>> {
        let sr = self.handle()?;
        let version = context_version(&version)?;
        let plain = plain_bytes(&plaintext);
        let mut buf = seal::seal_buffer(plain.len());
        buf.extend_from_slice(plain);
        // Holds the plaintext until it is sealed in place; wiped if sealing fails.
        let mut buf = SecretBytes::new(buf);
        let mut fut = Box::pin(async move {
            sr.seal_value_in_place(buf.expose_secret_mut(), &SealContext::new(&path, version))
                .await
                .map(|()| std::mem::take(buf.expose_secret_mut()))
                .map_err(to_js)
        });
        if let Some(mut out) = out
            && plain.len() < OFFLOAD_THRESHOLD
            && let Some(done) = poll_once(&mut fut)
        {
            let done = done?;
            if out.len() != done.len() {
                return Err(invalid("output buffer has the wrong length"));
            }
            out.copy_from_slice(&done);
            return Ok(None);
        }
        Ok(Some(env.spawn_future(async move {
            fut.await.map(Buffer::from)
        })?))
    }

    /// Opens in place `buf`, a copy of a sealed value bound to (path,
    /// version), and returns the plaintext's length `n`: the plaintext is
    /// `buf[HEADER_LEN..HEADER_LEN + n]`. On failure `buf` holds no
    /// plaintext.
    #[napi]
    pub fn open_value(
        &self,
        mut buf: BufferSlice<'_>,
        path: String,
        version: Either<f64, BigInt>,
    ) -> napi::Result<u32> {
        let sr = self.handle()?;
        let version = context_version(&version)?;
        let n = sr
            .open_value_in_place(&mut buf, &SealContext::new(&path, version))
            .map_err(to_js)?
            .len();
        Ok(n as u32)
    }

    /// Stores `plaintext` sealed at storage key `key` (under "s/").
    #[napi]
    pub fn put_sealed<'env>(
        &self,
        env: &'env Env,
        key: String,
        plaintext: Either<BufferSlice<'_>, String>,
        path: String,
        version: Either<f64, BigInt>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let sr = self.handle()?;
        let version = context_version(&version)?;
        let plain = SecretBytes::copy_from(plain_bytes(&plaintext));
        env.spawn_future(async move {
            sr.put_sealed(
                &key,
                plain.expose_secret(),
                &SealContext::new(&path, version),
            )
            .await
            .map_err(to_js)
        })
    }

    /// Reads and opens the record at `key`; `null` if there is none.
    #[napi]
    pub fn get_sealed<'env>(
        &self,
        env: &'env Env,
        key: String,
        path: String,
        version: Either<f64, BigInt>,
    ) -> napi::Result<PromiseRaw<'env, Option<BufferSlice<'env>>>> {
        let sr = self.handle()?;
        let version = context_version(&version)?;
        env.spawn_future_with_callback(
            async move {
                sr.get_sealed(&key, &SealContext::new(&path, version))
                    .await
                    .map_err(to_js)
            },
            |env, found| found.map(|s| secret_buffer(env, s)).transpose(),
        )
    }

    /// Adds a key version and makes it primary.
    #[napi]
    pub fn rotate<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, NativeKeyInfo>> {
        let sr = self.handle()?;
        env.spawn_future(async move { sr.rotate().await.map(Into::into).map_err(to_js) })
    }

    /// Makes an active key version primary again.
    #[napi]
    pub fn promote<'env>(
        &self,
        env: &'env Env,
        version: f64,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let sr = self.handle()?;
        let version = key_version(version)?;
        env.spawn_future(async move { sr.promote(version).await.map_err(to_js) })
    }

    /// Retires key versions below `min`.
    #[napi]
    pub fn set_min_decryption_version<'env>(
        &self,
        env: &'env Env,
        min: f64,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let sr = self.handle()?;
        let min = key_version(min)?;
        env.spawn_future(async move { sr.set_min_decryption_version(min).await.map_err(to_js) })
    }

    /// Erases a retired key version that no stored record needs.
    #[napi]
    pub fn destroy_key<'env>(
        &self,
        env: &'env Env,
        version: f64,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let sr = self.handle()?;
        let version = key_version(version)?;
        env.spawn_future(async move { sr.destroy_key(version).await.map_err(to_js) })
    }

    /// Re-seals stored records under the primary key.
    #[napi]
    pub fn rewrap<'env>(
        &self,
        env: &'env Env,
        batch_size: f64,
    ) -> napi::Result<PromiseRaw<'env, NativeRewrapReport>> {
        let sr = self.handle()?;
        if !(batch_size >= 1.0 && batch_size.fract() == 0.0) {
            return Err(invalid("batchSize must be a positive integer"));
        }
        let batch = batch_size.min(1e9) as usize;
        env.spawn_future(async move {
            sr.rewrap(batch)
                .await
                .map(|r| NativeRewrapReport {
                    scanned: r.scanned as f64,
                    rewrapped: r.rewrapped as f64,
                    unreadable: r.unreadable,
                })
                .map_err(to_js)
        })
    }

    /// Re-reads the keyring from storage.
    #[napi]
    pub fn reload<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let sr = self.handle()?;
        env.spawn_future(async move { sr.reload().await.map_err(to_js) })
    }

    /// Facts about every key version.
    #[napi]
    pub fn keys(&self) -> napi::Result<Vec<NativeKeyInfo>> {
        Ok(self
            .handle()?
            .keys()
            .map_err(to_js)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Forgets the keys until `unseal` is called.
    #[napi]
    pub fn seal(&self) -> napi::Result<()> {
        self.handle()?.seal();
        Ok(())
    }

    /// Whether the store is sealed.
    #[napi(getter)]
    pub fn is_sealed(&self) -> napi::Result<bool> {
        Ok(self.handle()?.is_sealed())
    }

    /// Unseals the store again with the root key.
    #[napi]
    pub fn unseal<'env>(
        &self,
        env: &'env Env,
        key: Option<Buffer>,
        key_file: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let protector = protector(key.as_deref(), key_file.as_deref())?;
        let storage = self.storage.clone();
        let options = self.options.clone();
        let current = self.current.clone();
        env.spawn_future(async move {
            let sr = Strongroom::unseal(storage, &protector, options)
                .await
                .map_err(to_js)?;
            let mut slot = current
                .write()
                .map_err(|_| invalid("store handle poisoned"))?;
            *slot = sr;
            Ok(())
        })
    }
}

// ----- low-level sealing with a caller's key (test vectors) -----

/// Seals `plaintext` with a raw 32-byte key, writing `key_version` into the
/// header. The nonce is random.
#[napi]
pub fn seal_with_key<'env>(
    env: &'env Env,
    key: BufferSlice<'_>,
    algorithm_name: String,
    key_version_number: f64,
    path: String,
    version: Either<f64, BigInt>,
    plaintext: Either<BufferSlice<'_>, String>,
) -> napi::Result<BufferSlice<'env>> {
    let key =
        DataKey::new(algorithm(&algorithm_name)?, SecretBytes::copy_from(&key)).map_err(to_js)?;
    let ctx_version = context_version(&version)?;
    let sealed = key
        .seal(
            key_version(key_version_number)?,
            plain_bytes(&plaintext),
            &SealContext::new(&path, ctx_version),
        )
        .map_err(to_js)?;
    BufferSlice::copy_from(env, sealed.as_bytes())
}

/// Opens in place `buf`, a copy of a sealed value, with a raw 32-byte key;
/// returns the plaintext length `n` (the plaintext is
/// `buf[HEADER_LEN..HEADER_LEN + n]`).
#[napi]
pub fn open_sealed(
    key: BufferSlice<'_>,
    algorithm_name: String,
    path: String,
    version: Either<f64, BigInt>,
    mut buf: BufferSlice<'_>,
) -> napi::Result<u32> {
    let key =
        DataKey::new(algorithm(&algorithm_name)?, SecretBytes::copy_from(&key)).map_err(to_js)?;
    let ctx_version = context_version(&version)?;
    let n = key
        .open_in_place(&mut buf, &SealContext::new(&path, ctx_version))
        .map_err(to_js)?
        .len();
    Ok(n as u32)
}

/// Creates a key file (mode 0600) holding a fresh random root key.
#[napi]
pub fn generate_key_file(env: &Env, path: String) -> napi::Result<PromiseRaw<'_, ()>> {
    env.spawn_future(async move {
        tokio::task::spawn_blocking(move || SoftwareProtector::generate_key_file(&path))
            .await
            .map_err(|e| invalid(format!("key file task failed: {e}")))?
            .map_err(to_js)
    })
}

/// The keyring key version named in a sealed value's header.
#[napi]
pub fn sealed_key_version(sealed: BufferSlice<'_>) -> napi::Result<u32> {
    seal::header_key_version(&sealed).map_err(to_js)
}

/// Bytes before the plaintext in a sealed value.
#[napi]
pub const SEALED_HEADER_LEN: u32 = seal::HEADER_LEN as u32;

/// Bytes a sealed value adds to its plaintext.
#[napi]
pub const SEALED_OVERHEAD: u32 = seal::OVERHEAD as u32;

/// The error-message prefix that marks a Strongroom error.
#[napi]
pub fn error_mark() -> &'static str {
    ERROR_MARK
}
