//! Node.js binding of Strongroom (napi-rs).
//!
//! Each function converts its arguments, calls the core, and maps the result
//! or error back; no behaviour lives here. The JavaScript layer beside this
//! crate (`index.js`) turns the raw exports into the public API: the
//! `Strongroom` class, the `Secret` wrapper and the typed error classes.
//!
//! Errors cross the boundary as a plain `Error` whose message is
//! `ERROR_MARK` followed by the JSON of [`Error::details`]
//! (`{code, class, parent, message, ...fields}`); `index.js` parses it and
//! throws the class the core's error table names, made from that table
//! ([`error_codes_json`]). Nothing secret is
//! ever part of an error.
//!
//! Plaintexts come back in JavaScript-owned Buffers: `openValue` decrypts
//! straight into a Buffer `index.js` allocated (see [`fast`]), so that Buffer
//! is the only copy of the plaintext and `Secret.wipe()` zeroes it. Any
//! Rust-side copy (as in `get_sealed`) is zeroized when it drops.

pub mod alerts;
pub mod approvals;
pub mod clock;
pub mod fast;
pub mod leases;
pub mod metadata;
pub mod pki;
pub mod postgres;
pub mod root_key;
pub mod rotation;
pub mod secrets;
pub mod shamir;
pub mod signing;
pub mod storage;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use napi::Status;
use napi::bindgen_prelude::{BigInt, Buffer, BufferSlice, Either, Env, PromiseRaw};

use napi_derive::napi;
use serde_json::{Value, json};
use strongroom::dangerous::Door;
use strongroom::keyring::{KeyInfo, KeyringOptions};
use strongroom::protector::SoftwareProtector;
use strongroom::seal::{self, Algorithm, DataKey, SealContext};
use strongroom::storage::DynStorage;
use strongroom::{ERROR_CODES, Error, ErrorDetails, FieldValue, Options, SecretBytes, Strongroom};

use clock::{NativeClock, duration_ms};
use leases::{LeaseTasks, NativeLease, NativeLeaseManager};
use root_key::{NativePkcs11Options, RootKey};
use secrets::{NativeSecretMetadata, NativeSecrets, Target};
use storage::NativeStorage;

/// The caller name of the binding's door to unchecked access
/// ([`strongroom::dangerous`]), audited as `dangerous:node`.
const CALLER: &str = "node";

/// Prefix of every error message produced by this crate; the JSON payload
/// follows it.
const ERROR_MARK: &str = "\u{1}strongroom:";

// ----- errors -----

/// The wire form of a core error, made mechanically from
/// [`Error::details`]: `{code, class, parent, message, ...fields}` with the
/// fields under the table's names, timestamps as integer milliseconds since
/// the Unix epoch, absent values as `null` and lists as arrays.
/// `index.js` throws the error class the table names for `class`.
fn details_json(d: ErrorDetails) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("code".into(), d.code.into());
    map.insert("class".into(), d.class.into());
    map.insert("parent".into(), d.parent.into());
    map.insert("message".into(), d.message.into());
    for (name, value) in d.fields {
        map.insert(name.into(), field_json(value));
    }
    Value::Object(map)
}

fn field_json(v: FieldValue) -> Value {
    match v {
        FieldValue::Str(s) => s.into(),
        FieldValue::U64(n) => n.into(),
        FieldValue::Time(t) => t.as_millis().into(),
        FieldValue::StrList(l) => l.into(),
        FieldValue::BoolList(l) => l.into(),
        // Null, and any kind a newer core adds.
        _ => Value::Null,
    }
}

/// The core's error table ([`ERROR_CODES`]) as JSON: an array of
/// `{code, class, parent, kind, fields: [[name, type], ...], meaning}`.
/// `index.js` makes the error classes from it.
#[napi]
pub fn error_codes_json() -> String {
    let rows: Vec<Value> = ERROR_CODES
        .iter()
        .map(|r| {
            json!({
                "code": r.code,
                "class": r.class,
                "parent": r.parent,
                "kind": r.kind,
                "fields": r.fields.iter().map(|f| json!([f.name, f.ty.name()])).collect::<Vec<_>>(),
                "meaning": r.meaning,
            })
        })
        .collect();
    Value::Array(rows).to_string()
}

/// A timestamp as milliseconds since the Unix epoch.
fn ms(t: strongroom::clock::Timestamp) -> f64 {
    t.as_millis() as f64
}

fn to_js(e: Error) -> napi::Error {
    details_to_js(e.details())
}

/// Any error's details (the core's, or the internal CA's `pki.*` ones) as a
/// JavaScript error; `index.js` throws the class they name.
fn details_to_js(d: ErrorDetails) -> napi::Error {
    let details = details_json(d);
    napi::Error::new(Status::GenericFailure, format!("{ERROR_MARK}{details}"))
}

fn invalid(message: impl Into<String>) -> napi::Error {
    to_js(Error::InvalidArgument(message.into()))
}

/// The error of any call on a closed object (`what`: "store", "storage",
/// "lease manager"). The core has no such error: a closed store is this
/// binding's notion, so the code is the binding's own.
fn closed_error(what: &str) -> napi::Error {
    let details = json!({
        "code": "closed",
        "class": "Closed",
        "parent": strongroom::ROOT_CLASS,
        "message": format!("the {what} is closed"),
    });
    napi::Error::new(Status::GenericFailure, format!("{ERROR_MARK}{details}"))
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
    /// The key version everything was re-sealed to.
    pub target_version: u32,
    /// Records still under another key version (unreadable ones included).
    pub remaining: f64,
}

// ----- the store -----

/// One store: its storage and the current unsealed (or sealed) handle.
#[napi]
pub struct NativeStrongroom {
    storage: DynStorage,
    options: Options,
    current: fast::Slot,
    /// The store's id for the `sealValueInto` / `openValueInto` fast path.
    id: u32,
    /// Whether it is closed, and the background tasks close() stops.
    life: Arc<Lifetime>,
}

impl NativeStrongroom {
    fn new(storage: DynStorage, options: Options, sr: Door) -> Self {
        let current = Arc::new(RwLock::new(sr));
        let id = fast::register(current.clone());
        Self {
            storage,
            options,
            current,
            id,
            life: Arc::default(),
        }
    }
}

impl Drop for NativeStrongroom {
    fn drop(&mut self) {
        // The id stays taken until the object is garbage-collected (not at
        // close), so a closed store's id never names another store.
        fast::unregister(self.id);
        self.life.stop_tasks();
    }
}

/// A store's lifetime: whether `close()` was called, and the lease
/// managers' background tasks (schedulers, event forwarders) it stops.
#[derive(Default)]
struct Lifetime {
    closed: AtomicBool,
    tasks: Mutex<Vec<Arc<LeaseTasks>>>,
}

impl Lifetime {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops every background task; returns the schedulers to wait for.
    fn stop_tasks(&self) -> Vec<strongroom::lease::TaskHandle> {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        tasks.iter().filter_map(|t| t.stop_all()).collect()
    }

    /// Keeps `tasks` for close(), dropping the entries of managers with
    /// nothing running.
    fn track(&self, tasks: &Arc<LeaseTasks>) {
        let mut all = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|t| Arc::strong_count(t) > 1 || t.is_running());
        if !all.iter().any(|t| Arc::ptr_eq(t, tasks)) {
            all.push(tasks.clone());
        }
    }
}

/// Opens a store on `storage`. `mode` is "init" (must be empty), "unseal" (must exist) or "open"
/// (unseal if it exists, else init). `clock` times the store (records,
/// approval requests; the system clock if none).
#[napi]
#[allow(clippy::too_many_arguments)] // one per JavaScript argument
pub fn open_store<'env>(
    env: &'env Env,
    storage: &NativeStorage,
    mode: String,
    key: Option<Buffer>,
    key_file: Option<String>,
    algorithm_name: Option<String>,
    pkcs11: Option<NativePkcs11Options>,
    clock: Option<&NativeClock>,
    shamir: Option<&shamir::NativeShamirProtector>,
) -> napi::Result<PromiseRaw<'env, NativeStrongroom>> {
    let storage = storage.host.storage().clone();
    let root = RootKey::from_args(key.as_deref(), key_file.as_deref(), pkcs11, shamir)?;
    let mut options = Options::default();
    if let Some(c) = clock {
        options.clock = c.clock.clone();
    }
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
        let protector = root.protector(init).await.map_err(to_js)?;
        let sr = if init {
            Strongroom::init(storage.clone(), protector.as_ref(), options.clone()).await
        } else {
            Strongroom::unseal(storage.clone(), protector.as_ref(), options.clone()).await
        }
        .map_err(to_js)?
        .dangerous_traced(CALLER)
        .await
        .map_err(to_js)?;
        Ok(NativeStrongroom::new(storage, options, sr))
    })
}

#[napi]
impl NativeStrongroom {
    /// The id naming this store in `sealValueInto` / `openValueInto`.
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    fn handle(&self) -> napi::Result<Door> {
        if self.life.is_closed() {
            return Err(closed_error("store"));
        }
        self.current
            .read()
            .map(|s| s.clone())
            .map_err(|_| invalid("store handle poisoned"))
    }

    /// Seals `plaintext` under the primary key, bound to (path, version),
    /// on a worker thread: for large values, and for small ones when the
    /// key's encryption reservation must be renewed in storage first (the
    /// `sealValueInto` fast path said so). Resolves to a new Buffer.
    #[napi]
    pub fn seal_value<'env>(
        &self,
        env: &'env Env,
        plaintext: Either<BufferSlice<'_>, String>,
        path: String,
        version: Either<f64, BigInt>,
    ) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let sr = self.handle()?;
        let version = context_version(&version)?;
        let plain = plain_bytes(&plaintext);
        let mut buf = seal::seal_buffer(plain.len());
        buf.extend_from_slice(plain);
        // Holds the plaintext until it is sealed in place; wiped if sealing fails.
        let mut buf = SecretBytes::new(buf);
        env.spawn_future(async move {
            sr.seal_value_in_place(buf.expose_secret_mut(), &SealContext::new(&path, version))
                .await
                .map(|()| Buffer::from(std::mem::take(buf.expose_secret_mut())))
                .map_err(to_js)
        })
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
                    target_version: r.target_version,
                    remaining: r.remaining as f64,
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

    /// Whether close() was called.
    #[napi(getter)]
    pub fn is_closed(&self) -> bool {
        self.life.is_closed()
    }

    /// Closes the store: later calls (on it and on the lease managers and
    /// secrets stores made from it) fail with `Closed` (code "closed"); the
    /// keys are forgotten (which also ends the core's keyring refresher);
    /// the lease managers' schedulers and event forwarders are stopped and
    /// awaited. Idempotent. The storage is the caller's to close.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let first = !self.life.closed.swap(true, Ordering::AcqRel);
        let door = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let schedulers = if first {
            door.seal();
            self.life.stop_tasks()
        } else {
            Vec::new()
        };
        env.spawn_future(async move {
            for s in schedulers {
                s.stop().await;
            }
            drop(door);
            Ok(())
        })
    }

    /// Replaces the root key with a fresh one wrapped by the protector
    /// given (`key`, `keyFile` or a Shamir protector): from then on the
    /// store unseals only with that one. Secrets and keys stay as they are.
    #[napi]
    pub fn rotate_root_key<'env>(
        &self,
        env: &'env Env,
        key: Option<Buffer>,
        key_file: Option<String>,
        shamir: Option<&shamir::NativeShamirProtector>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let door = self.handle()?;
        let root = RootKey::from_args(key.as_deref(), key_file.as_deref(), None, shamir)?;
        env.spawn_future(async move {
            let protector = root.protector(true).await.map_err(to_js)?;
            door.rotate_root_key(protector.as_ref())
                .await
                .map_err(to_js)
        })
    }

    /// Unseals the store again with the root key.
    #[napi]
    pub fn unseal<'env>(
        &self,
        env: &'env Env,
        key: Option<Buffer>,
        key_file: Option<String>,
        pkcs11: Option<NativePkcs11Options>,
        shamir: Option<&shamir::NativeShamirProtector>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        if self.life.is_closed() {
            return Err(closed_error("store"));
        }
        let root = RootKey::from_args(key.as_deref(), key_file.as_deref(), pkcs11, shamir)?;
        let storage = self.storage.clone();
        let options = self.options.clone();
        let current = self.current.clone();
        let life = self.life.clone();
        env.spawn_future(async move {
            let protector = root.protector(false).await.map_err(to_js)?;
            let sr = Strongroom::unseal(storage, protector.as_ref(), options)
                .await
                .map_err(to_js)?
                .dangerous_traced(CALLER)
                .await
                .map_err(to_js)?;
            let mut slot = current
                .write()
                .map_err(|_| invalid("store handle poisoned"))?;
            if life.is_closed() {
                // Closed while unsealing: stay closed and sealed.
                sr.seal();
                return Err(closed_error("store"));
            }
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
