//! The per-call fast path of `sealValue` / `openValue` for small values.
//!
//! Sealing or opening 1 KiB costs a few hundred nanoseconds; the N-API
//! crossing around it cost more. Measured with `perf` on the class-method
//! form, the largest parts were napi-rs's handling of `&self` (unwrapping the
//! instance, checking its type tag, registering and releasing a borrow in a
//! global map), converting the context path into a fresh `String` (two V8
//! calls and an allocation), and, in JavaScript, copying the sealed value
//! into a new Buffer and slicing the plaintext out of it. So here:
//!
//! - a store is named by a small integer: each [`crate::NativeStrongroom`]
//!   registers its handle in `STORES` and JavaScript passes the number;
//! - the path is copied by V8 straight into a stack buffer (`with_str`);
//! - values are sealed into and opened into Buffers JavaScript allocated
//!   ([`Strongroom::try_seal_value_into`], [`Strongroom::open_value_into`]):
//!   one copy of the bytes, no Rust-side allocation, and the opened Buffer
//!   is exactly the plaintext (the `Secret`'s only copy).
//!
//! The results and errors are the same as the class methods'.

use std::sync::{Arc, PoisonError, RwLock};

use napi::bindgen_prelude::{BigInt, BufferSlice, Either, Env, JsValue, Unknown};
use napi_derive::napi;
use strongroom::Strongroom;
use strongroom::dangerous::Door;
use strongroom::seal::SealContext;

use crate::{context_version, invalid, plain_bytes, to_js};

/// A store's current handle, shared with its `NativeStrongroom` (which
/// replaces the handle on `unseal`).
pub(crate) type Slot = Arc<RwLock<Door>>;

/// Open stores by id; a slot is freed when its `NativeStrongroom` is
/// garbage-collected.
static STORES: RwLock<Vec<Option<Slot>>> = RwLock::new(Vec::new());

/// Registers a store and returns its id.
pub(crate) fn register(slot: Slot) -> u32 {
    let mut stores = STORES.write().unwrap_or_else(PoisonError::into_inner);
    let id = match stores.iter().position(Option::is_none) {
        Some(i) => {
            stores[i] = Some(slot);
            i
        }
        None => {
            stores.push(Some(slot));
            stores.len() - 1
        }
    };
    u32::try_from(id).unwrap_or(u32::MAX)
}

/// Frees a store's id.
pub(crate) fn unregister(id: u32) {
    let mut stores = STORES.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = stores.get_mut(id as usize) {
        *s = None;
    }
    while matches!(stores.last(), Some(None)) {
        stores.pop();
    }
}

/// Calls `f` with the handle of store `id`, without cloning anything.
fn with_store<T>(id: u32, f: impl FnOnce(&Strongroom) -> napi::Result<T>) -> napi::Result<T> {
    // The registry is a list of handles with no invariant a panic could
    // break, so a poisoned lock is used as it is.
    let stores = STORES.read().unwrap_or_else(PoisonError::into_inner);
    let slot = stores
        .get(id as usize)
        .and_then(Option::as_ref)
        .ok_or_else(|| invalid(format!("no open store with id {id}")))?;
    let sr = slot.read().map_err(|_| invalid("store handle poisoned"))?;
    f(&sr)
}

/// The stack buffer for context paths: paths of fewer than
/// `STACK_PATH - 4` bytes are converted without allocating.
const STACK_PATH: usize = 256;

/// Calls `f` with the UTF-8 text of the JavaScript string `s`. Short strings
/// are copied by V8 into a stack buffer in one call; longer ones into a
/// `String`. A value that is not a string is refused (`StringExpected`;
/// `index.js` checks the type first and throws a `TypeError`).
fn with_str<T>(
    env: &Env,
    s: Unknown<'_>,
    f: impl FnOnce(&str) -> napi::Result<T>,
) -> napi::Result<T> {
    let mut stack = [0u8; STACK_PATH];
    let n = utf8_into(env, s, &mut stack)?;
    // The buffer has room for STACK_PATH - 1 bytes and a NUL, and V8 cuts a
    // longer string at a character boundary (characters are at most 4
    // bytes), so a cut-off string fills at least STACK_PATH - 4 bytes.
    if n < STACK_PATH - 4 {
        let text = std::str::from_utf8(&stack[..n])
            .map_err(|_| invalid("context path is not valid UTF-8"))?;
        return f(text);
    }
    let text: String = napi::bindgen_prelude::FromNapiValue::from_unknown(s)?;
    f(&text)
}

/// Copies the UTF-8 encoding of string `s` into `buf` (at most
/// `buf.len() - 1` bytes, then a NUL) and returns the bytes written.
#[allow(unsafe_code)]
fn utf8_into(env: &Env, s: Unknown<'_>, buf: &mut [u8]) -> napi::Result<usize> {
    let mut written = 0usize;
    // SAFETY: `env` and `s.raw()` are the live environment and a value of
    // the current callback scope; `buf` is a writable buffer of `buf.len()`
    // bytes that outlives the call, and N-API writes at most that many bytes
    // (the string, cut at a character boundary, and a NUL) and stores the
    // count, excluding the NUL, in `written`.
    let status = unsafe {
        napi::sys::napi_get_value_string_utf8(
            env.raw(),
            s.raw(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut written,
        )
    };
    if status == napi::sys::Status::napi_string_expected {
        return Err(napi::Error::new(
            napi::Status::StringExpected,
            "context path must be a string",
        ));
    }
    if status != napi::sys::Status::napi_ok {
        return Err(invalid("could not read the context path"));
    }
    Ok(written.min(buf.len()))
}

/// Whether two byte slices share memory.
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
    !a.is_empty() && !b.is_empty() && a0 < b0 + b.len() && b0 < a0 + a.len()
}

/// Seals `plaintext` under store `store`'s primary key into `out` (exactly
/// plaintext length + `SEALED_OVERHEAD` bytes). Returns false, writing
/// nothing, when the key's encryption reservation must first be renewed in
/// storage (then use `NativeStrongroom.sealValue`, which does that).
#[napi]
pub fn seal_value_into(
    env: &Env,
    store: u32,
    plaintext: Either<BufferSlice<'_>, String>,
    mut out: BufferSlice<'_>,
    path: Unknown<'_>,
    version: Either<f64, BigInt>,
) -> napi::Result<bool> {
    let version = context_version(&version)?;
    let plain = plain_bytes(&plaintext);
    if overlap(plain, &out) {
        return Err(invalid("the output buffer overlaps the plaintext"));
    }
    with_str(env, path, |path| {
        with_store(store, |sr| {
            sr.try_seal_value_into(plain, &mut out, &SealContext::new(path, version))
                .map_err(to_js)
        })
    })
}

/// Opens `sealed`, bound to (path, version), with store `store`'s keys into
/// `out` (exactly `sealed.length - SEALED_OVERHEAD` bytes); `sealed` is not
/// changed. On failure `out` holds no plaintext.
#[napi]
pub fn open_value_into(
    env: &Env,
    store: u32,
    sealed: BufferSlice<'_>,
    mut out: BufferSlice<'_>,
    path: Unknown<'_>,
    version: Either<f64, BigInt>,
) -> napi::Result<()> {
    let version = context_version(&version)?;
    if overlap(&sealed, &out) {
        return Err(invalid("the output buffer overlaps the sealed value"));
    }
    with_str(env, path, |path| {
        with_store(store, |sr| {
            sr.open_value_into(&sealed, &mut out, &SealContext::new(path, version))
                .map_err(to_js)
        })
    })
}
