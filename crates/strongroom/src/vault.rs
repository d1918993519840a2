//! [`Strongroom`]: one store, its keyring, its storage and its root-key protector.

mod barrier;
mod coherence;
mod rewrap;
mod root;

pub(crate) use barrier::UnsentOps;
pub use barrier::{BARRIER_CONTEXT_VERSION, Barrier, RecordCheck, is_pre_unseal};

pub use coherence::KEYRING_GENERATION;
pub use rewrap::{RewrapObserver, RewrapProgress, RewrapReport};
pub use root::{ROOT_UPGRADE_GRACE, ROOT_UPGRADE_RECORD};

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::keyring::{KeyInfo, Keyring, KeyringOptions, TrySeal};
use crate::protector::KeyProtector;
use crate::seal::{self, Algorithm, DataKey, SealContext, SealedValue};
use crate::storage::{BatchOp, DynStorage};
use crate::{Error, Result, SecretBytes};

/// Storage key of the protector-wrapped root key.
pub const ROOT_KEY_RECORD: &str = "sys/root-key";
/// Storage key of the keyring record (sealed under the root key).
pub const KEYRING_RECORD: &str = "sys/keyring";
/// Storage key of the rewrap progress cursor.
pub const REWRAP_CURSOR: &str = "sys/rewrap-cursor";
/// Prefix under which every keyring-sealed record lives (see [`SealedRecord`]).
pub const SEALED_PREFIX: &str = "s/";

const ROOT_RECORD_VERSION: u8 = 1;
/// Read-modify-write attempts on the keyring record before giving up.
const KEYRING_ATTEMPTS: usize = 16;

/// How a store is opened.
#[derive(Clone)]
pub struct Options {
    /// Keyring tunables.
    pub keyring: KeyringOptions,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// How often the store re-checks the keyring generation in storage when
    /// the backend announces no change ([`crate::storage::Storage::watch`]):
    /// the fallback for lost notices and for backends that cannot announce.
    /// Correctness never depends on it (every sealed write is conditioned on
    /// the generation); it bounds how long an idle process keeps a stale
    /// keyring in memory.
    pub refresh_fallback: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            keyring: KeyringOptions::default(),
            clock: Arc::new(SystemClock),
            refresh_fallback: crate::changes::DEFAULT_FALLBACK,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("keyring", &self.keyring)
            .field("clock", &self.clock)
            .field("refresh_fallback", &self.refresh_fallback)
            .finish()
    }
}

/// An unsealed store: the keyring in memory over a storage and a protector.
///
/// Cloning is cheap and clones share state. See the crate docs for an example.
#[derive(Clone)]
pub struct Strongroom {
    inner: Arc<Inner>,
}

struct Inner {
    storage: DynStorage,
    root: RwLock<Option<Arc<DataKey>>>,
    keyring: RwLock<Option<Arc<Keyring>>>,
    /// Set once by [`Strongroom::seal`], before the keys are dropped; a
    /// sealed store stays sealed.
    sealed: AtomicBool,
    /// Coalesces audit-head saves.
    head_saver: crate::handle::HeadSaver,
    write_lock: tokio::sync::Mutex<()>,
    options: Options,
    protector_kind: &'static str,
}

impl fmt::Debug for Strongroom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Strongroom")
            .field("storage", &self.inner.storage.backend())
            .field("protector", &self.inner.protector_kind)
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

fn root_context() -> SealContext<'static> {
    SealContext::new(KEYRING_RECORD, 0)
}

impl Strongroom {
    /// Creates a new store in empty `storage`: a fresh root key wrapped by
    /// `protector`, and a keyring with key version 1. Fails with
    /// [`Error::AlreadyInitialized`] if the storage already holds a store.
    pub async fn init(
        storage: DynStorage,
        protector: &dyn KeyProtector,
        options: Options,
    ) -> Result<Self> {
        if storage.get(ROOT_KEY_RECORD).await?.is_some() {
            return Err(Error::AlreadyInitialized);
        }
        let root_raw = SecretBytes::random(seal::KEY_LEN)?;
        let wrapped = protector.wrap(&root_raw).await?;
        let root = DataKey::new(Algorithm::Aes256Gcm, root_raw)?;
        let mut keyring = Keyring::generate(options.keyring.algorithm, options.clock.now())?;
        let (v, start, end) = keyring.reserve_block(&options.keyring, options.clock.now())?;
        let sealed = root.seal(0, &keyring.encode()?, &root_context())?;
        let root_record = encode_root_record(protector.kind(), &wrapped)?;
        storage
            .batch(vec![
                BatchOp::expect(ROOT_KEY_RECORD, None),
                BatchOp::expect(KEYRING_RECORD, None),
                BatchOp::put(ROOT_KEY_RECORD, root_record),
                BatchOp::put(KEYRING_RECORD, sealed.into_bytes()),
            ])
            .await
            .map_err(|e| match e {
                Error::StorageConflict { .. } => Error::AlreadyInitialized,
                e => e,
            })?;
        keyring.set_reservation(v, start, end);
        Ok(Self::assemble(
            storage,
            protector.kind(),
            options,
            root,
            keyring,
        ))
    }

    /// Opens an initialised store: unwraps the root key through `protector`
    /// and loads the keyring.
    pub async fn unseal(
        storage: DynStorage,
        protector: &dyn KeyProtector,
        options: Options,
    ) -> Result<Self> {
        let record = match WrappedRootKey::read(&storage).await {
            // A keyring without its root key is a damaged store, not an empty one.
            Err(Error::NotInitialized) if storage.get(KEYRING_RECORD).await?.is_some() => {
                return Err(Error::corrupt(
                    ROOT_KEY_RECORD,
                    "missing, but the store holds a keyring",
                ));
            }
            r => r?,
        };
        if record.protector_kind != protector.kind() {
            return Err(Error::InvalidArgument(format!(
                "this store's root key is protected by {:?}, not by {:?}",
                record.protector_kind,
                protector.kind()
            )));
        }
        let root_raw = protector.unwrap(&record.wrapped).await?;
        let root = DataKey::new(Algorithm::Aes256Gcm, root_raw).map_err(|_| Error::UnsealFailed)?;
        let keyring = load_keyring(&storage, &root).await?.keyring;
        Ok(Self::assemble(
            storage,
            protector.kind(),
            options,
            root,
            keyring,
        ))
    }

    /// Whether `storage` already holds an initialised store.
    /// A store that lost one of its root-key and keyring records still
    /// counts as initialised (it is damaged, not empty).
    pub async fn is_initialized(storage: &DynStorage) -> Result<bool> {
        Ok(storage.get(ROOT_KEY_RECORD).await?.is_some()
            || storage.get(KEYRING_RECORD).await?.is_some())
    }

    fn assemble(
        storage: DynStorage,
        protector_kind: &'static str,
        options: Options,
        root: DataKey,
        keyring: Keyring,
    ) -> Self {
        let sr = Self {
            inner: Arc::new(Inner {
                storage,
                root: RwLock::new(Some(Arc::new(root))),
                keyring: RwLock::new(Some(Arc::new(keyring))),
                sealed: AtomicBool::new(false),
                head_saver: crate::handle::HeadSaver::default(),
                write_lock: tokio::sync::Mutex::new(()),
                options,
                protector_kind,
            }),
        };
        coherence::spawn_refresher(&sr);
        sr
    }

    /// Forgets the root key and the keyring (their memory is wiped when the
    /// last operation using them finishes). Every later call on this store or
    /// its clones fails with [`Error::Sealed`]; unseal again to continue.
    pub fn seal(&self) {
        self.inner.sealed.store(true, Ordering::Release);
        if let Ok(mut k) = self.inner.keyring.write() {
            k.take();
        }
        if let Ok(mut r) = self.inner.root.write() {
            r.take();
        }
    }

    /// Whether [`Strongroom::seal`] was called.
    pub fn is_sealed(&self) -> bool {
        self.inner.sealed.load(Ordering::Acquire)
    }

    /// The storage underneath.
    pub(crate) fn storage(&self) -> &DynStorage {
        &self.inner.storage
    }

    /// The audit-head save coalescer.
    pub(crate) fn head_saver(&self) -> &crate::handle::HeadSaver {
        &self.inner.head_saver
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.options.clock
    }

    /// The keyring in memory.
    pub(crate) fn keyring(&self) -> Result<Arc<Keyring>> {
        self.inner
            .keyring
            .read()
            .ok()
            .and_then(|k| k.clone())
            .ok_or(Error::Sealed)
    }

    fn root(&self) -> Result<Arc<DataKey>> {
        self.inner
            .root
            .read()
            .ok()
            .and_then(|k| k.clone())
            .ok_or(Error::Sealed)
    }

    /// The store's audit HMAC key (kept in the keyring).
    pub(crate) fn audit_key(&self) -> Result<SecretBytes> {
        Ok(self.keyring()?.audit_key().clone())
    }

    /// Facts about every key version.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        Ok(self.keyring()?.keys())
    }

    // ----- sealing values -----

    /// Seals `plaintext` under the primary key, bound to `context`.
    pub async fn seal_value(
        &self,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<SealedValue> {
        let mut buf = seal::seal_buffer(plaintext.len());
        buf.extend_from_slice(plaintext);
        self.seal_value_in_place(&mut buf, context).await?;
        SealedValue::from_vec(buf)
    }

    /// Seals in place: `buf` comes from [`seal::seal_buffer`] with the
    /// plaintext appended, and leaves as the sealed value. No copy of the
    /// plaintext is made, which matters for large values.
    pub async fn seal_value_in_place(
        &self,
        buf: &mut Vec<u8>,
        context: &SealContext<'_>,
    ) -> Result<()> {
        loop {
            match self.keyring()?.try_seal_in_place(buf, context)? {
                TrySeal::Sealed => return Ok(()),
                TrySeal::NeedsReservation => self.reserve().await?,
            }
        }
    }

    /// Seals `plaintext` into `out` (exactly `plaintext.len() +`
    /// [`seal::OVERHEAD`] bytes, e.g. a buffer owned by a host language)
    /// without waiting. Returns `Ok(false)` and writes nothing when the
    /// primary key first needs a new block of encryptions reserved in
    /// storage; [`Strongroom::seal_value`] does that reservation.
    pub fn try_seal_value_into(
        &self,
        plaintext: &[u8],
        out: &mut [u8],
        context: &SealContext<'_>,
    ) -> Result<bool> {
        Ok(matches!(
            self.keyring()?.try_seal_into(plaintext, out, context)?,
            TrySeal::Sealed
        ))
    }

    /// Opens a sealed value bound to `context`.
    pub fn open_value(
        &self,
        sealed: &SealedValue,
        context: &SealContext<'_>,
    ) -> Result<SecretBytes> {
        self.keyring()?.open(sealed, context)
    }

    /// Opens `sealed` into `out`, which must be exactly `sealed.len() -`
    /// [`seal::OVERHEAD`] bytes (e.g. a buffer owned by a host language):
    /// one copy of the ciphertext, decrypted in `out`; `sealed` is not
    /// modified. The counterpart of [`Strongroom::try_seal_value_into`].
    /// On failure `out` holds no plaintext.
    pub fn open_value_into(
        &self,
        sealed: &[u8],
        out: &mut [u8],
        context: &SealContext<'_>,
    ) -> Result<()> {
        self.keyring()?.open_into(sealed, out, context)
    }

    /// Opens in place; returns the plaintext as a slice of `buf`.
    pub fn open_value_in_place<'b>(
        &self,
        buf: &'b mut [u8],
        context: &SealContext<'_>,
    ) -> Result<&'b mut [u8]> {
        self.keyring()?.open_in_place(buf, context)
    }

    // ----- keyring administration -----

    /// Adds a new key version and makes it primary. Returns it.
    pub(crate) async fn rotate(&self) -> Result<KeyInfo> {
        let alg = self.inner.options.keyring.algorithm;
        let now = self.clock().now();
        let v = self
            .mutate_keyring(|k| {
                let v = k.rotate(alg, now)?;
                Ok((v, Some(v)))
            })
            .await?;
        self.key_info(v)
    }

    /// Makes an active key version primary again.
    pub(crate) async fn promote(&self, version: u32) -> Result<()> {
        self.mutate_keyring(|k| k.set_primary(version).map(|()| ((), Some(version))))
            .await
    }

    /// Sets the minimum decryption version: older keys are retired (they open
    /// nothing until the minimum is lowered again).
    pub(crate) async fn set_min_decryption_version(&self, min: u32) -> Result<()> {
        self.mutate_keyring(|k| k.set_min_decryption_version(min).map(|()| ((), None)))
            .await
    }

    /// Erases a retired key version. Refused with [`Error::KeyInUse`] while any
    /// stored record is still sealed under it.
    ///
    /// Safe while other processes write: the scan starts only after the
    /// stored keyring shows the version retired, from then on no process can
    /// commit a value sealed under it (every sealed write is conditioned on
    /// the keyring generation, see [`Strongroom::commit`]), and the erasure
    /// is committed only if the keyring is still the one the scan started
    /// from; otherwise the scan runs again.
    pub(crate) async fn destroy_key(&self, version: u32) -> Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        for _ in 0..KEYRING_ATTEMPTS {
            let (root, mut loaded) = self.load_current().await?;
            // refuse at once what the lifecycle refuses (not retired, unknown)
            loaded.keyring.destroy(version)?;
            let mut in_use = 0u64;
            let mut example = None;
            self.scan_sealed(|key, bytes| {
                if seal::header_key_version(record_sealed_bytes(bytes)?).ok() == Some(version) {
                    in_use += 1;
                    example.get_or_insert_with(|| key.to_owned());
                }
                Ok(())
            })
            .await?;
            if let Some(example) = example {
                return Err(Error::KeyInUse {
                    version,
                    records: in_use,
                    example,
                });
            }
            match self.store_keyring(&root, loaded, true).await? {
                Some(fresh) => {
                    self.install(fresh);
                    return Ok(());
                }
                None => continue,
            }
        }
        Err(Error::StorageConflict {
            key: KEYRING_RECORD.into(),
        })
    }

    /// Re-reads the keyring from storage (another process may have rotated).
    pub async fn reload(&self) -> Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        let fresh = self.load_current().await?.1.keyring;
        self.install(fresh);
        Ok(())
    }

    /// Replaces the root key with a fresh one wrapped by `protector`, which
    /// may be the same protector (after rotating its own key, e.g. a new HSM
    /// token key version) or another one (moving from a key file to an HSM).
    /// The keyring is re-sealed under the new root key and both records are
    /// written in one atomic batch, so a crash leaves either the old or the
    /// new root in force, never a mix. Values sealed by the keyring are
    /// untouched.
    ///
    /// Other processes sharing the store follow the rotation through a
    /// hand-over record that expires after [`ROOT_UPGRADE_GRACE`] (see
    /// `FORMAT.md`); retire the old protector's key only after that.
    pub(crate) async fn rotate_root_key(&self, protector: &dyn KeyProtector) -> Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        let storage = &self.inner.storage;
        let new_raw = SecretBytes::random(seal::KEY_LEN)?;
        let wrapped = protector.wrap(&new_raw).await?;
        // Prove the protector can unwrap what it wrapped before relying on it.
        if protector.unwrap(&wrapped).await? != new_raw {
            return Err(Error::protector(
                protector.kind(),
                crate::ProtectorErrorKind::UnwrapFailed,
                "the new protector did not return the root key it wrapped",
            ));
        }
        let new_root = DataKey::new(Algorithm::Aes256Gcm, new_raw.clone())?;
        // Other processes rewrite the keyring record (reservations, key
        // changes) at any time: on a conflict, load again and retry.
        for _ in 0..KEYRING_ATTEMPTS {
            let (old_root, mut loaded) = self.load_current().await?;
            let old_record = storage
                .get(ROOT_KEY_RECORD)
                .await?
                .ok_or(Error::NotInitialized)?;
            let handover = self.root_upgrade_ops(&old_root, &new_raw)?;
            let next_generation = loaded.keyring.generation.checked_add(1).ok_or_else(|| {
                Error::corrupt(KEYRING_GENERATION, "keyring generation exhausted")
            })?;
            loaded.keyring.generation = next_generation;
            let sealed = new_root.seal(0, &loaded.keyring.encode()?, &root_context())?;
            let mut ops = vec![
                BatchOp::expect(ROOT_KEY_RECORD, Some(old_record)),
                BatchOp::expect(KEYRING_RECORD, Some(loaded.raw)),
                BatchOp::expect(KEYRING_GENERATION, loaded.generation_raw),
                BatchOp::put(
                    ROOT_KEY_RECORD,
                    encode_root_record(protector.kind(), &wrapped)?,
                ),
                BatchOp::put(KEYRING_RECORD, sealed.into_bytes()),
                // every live process hears of it and follows (see vault/root.rs)
                BatchOp::put(
                    KEYRING_GENERATION,
                    coherence::encode_generation(next_generation),
                ),
            ];
            ops.extend(handover);
            match storage.batch(ops).await {
                Ok(()) => {
                    if let Ok(mut slot) = self.inner.root.write() {
                        *slot = Some(Arc::new(new_root));
                    }
                    drop(_guard);
                    return self.reload().await;
                }
                Err(Error::StorageConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::StorageConflict {
            key: KEYRING_RECORD.into(),
        })
    }

    fn key_info(&self, version: u32) -> Result<KeyInfo> {
        self.keys()?
            .into_iter()
            .find(|k| k.version == version)
            .ok_or(Error::UnknownKeyVersion { version, latest: 0 })
    }

    fn install(&self, fresh: Keyring) {
        if let Ok(mut slot) = self.inner.keyring.write() {
            // Checked under the lock `seal` also takes: a sealed store is
            // never handed keys again.
            if self.is_sealed() {
                return;
            }
            if let Some(old) = slot.as_ref() {
                fresh.inherit_reservations(old);
            }
            *slot = Some(Arc::new(fresh));
        }
    }

    /// Reserves the next block of encryptions for the primary key.
    async fn reserve(&self) -> Result<()> {
        if self.keyring()?.primary_has_room() {
            return Ok(());
        }
        let opts = self.inner.options.keyring;
        let now = self.clock().now();
        let mut block = None;
        self.mutate_keyring_with(
            |k| {
                let r = k.reserve_block(&opts, now)?;
                block = Some(r);
                Ok(((), None))
            },
            |k| k.primary_has_room(),
        )
        .await?;
        if let (Some((v, start, end)), Ok(k)) = (block, self.keyring()) {
            k.set_reservation(v, start, end);
        }
        Ok(())
    }

    async fn mutate_keyring<T>(
        &self,
        f: impl FnMut(&mut Keyring) -> Result<(T, Option<u32>)>,
    ) -> Result<T> {
        self.mutate_keyring_with(f, |_| false).await.and_then(|t| {
            t.ok_or_else(|| Error::InvalidArgument("keyring mutation skipped".into()))
        })
    }

    /// Read-modify-write of the stored keyring, retried on concurrent change.
    /// `f` returns a value and optionally a key version that became primary
    /// (which then gets a fresh reservation block). `skip` is checked under
    /// the lock; if true nothing is done and `None` returned.
    async fn mutate_keyring_with<T>(
        &self,
        mut f: impl FnMut(&mut Keyring) -> Result<(T, Option<u32>)>,
        skip: impl Fn(&Keyring) -> bool,
    ) -> Result<Option<T>> {
        let _guard = self.inner.write_lock.lock().await;
        if skip(&*self.keyring()?) {
            return Ok(None);
        }
        let opts = self.inner.options.keyring;
        for _ in 0..KEYRING_ATTEMPTS {
            let (root, mut loaded) = self.load_current().await?;
            let before = loaded.keyring.sealing_state();
            let (out, new_primary) = f(&mut loaded.keyring)?;
            let reservation = match new_primary {
                Some(_) => Some(loaded.keyring.reserve_block(&opts, self.clock().now())?),
                None => None,
            };
            // A reservation that crossed the rotation threshold rotated too.
            let bump = loaded.keyring.sealing_state() != before;
            if let Some(fresh) = self.store_keyring(&root, loaded, bump).await? {
                if let Some((v, start, end)) = reservation {
                    fresh.set_reservation(v, start, end);
                }
                self.install(fresh);
                return Ok(Some(out));
            }
        }
        Err(Error::StorageConflict {
            key: KEYRING_RECORD.into(),
        })
    }

    /// Writes a changed keyring back, on the condition that the stored one
    /// is still `loaded.raw`; with `bump`, the generation moves on in the
    /// same atomic batch. `None` when another process changed it first.
    async fn store_keyring(
        &self,
        root: &DataKey,
        loaded: LoadedKeyring,
        bump: bool,
    ) -> Result<Option<Keyring>> {
        let LoadedKeyring {
            mut keyring,
            raw,
            generation_raw,
        } = loaded;
        let mut ops = vec![BatchOp::expect(KEYRING_RECORD, Some(raw))];
        if bump {
            let next = keyring.generation.checked_add(1).ok_or_else(|| {
                Error::corrupt(KEYRING_GENERATION, "keyring generation exhausted")
            })?;
            ops.push(BatchOp::expect(KEYRING_GENERATION, generation_raw));
            ops.push(BatchOp::put(
                KEYRING_GENERATION,
                coherence::encode_generation(next),
            ));
            keyring.generation = next;
        }
        // sealed with the generation it is stored at
        let sealed = root.seal(0, &keyring.encode()?, &root_context())?;
        ops.push(BatchOp::put(KEYRING_RECORD, sealed.into_bytes()));
        match self.inner.storage.batch(ops).await {
            Ok(()) => Ok(Some(keyring)),
            Err(Error::StorageConflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ----- sealed records -----

    /// Builds a batch operation that stores `plaintext` sealed at storage key
    /// `key` (which must start with [`SEALED_PREFIX`]), bound to `context`.
    pub(crate) async fn sealed_put(
        &self,
        key: &str,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<BatchOp> {
        Ok(BatchOp::put(
            key,
            self.seal_record(key, plaintext, context).await?,
        ))
    }

    async fn seal_record(
        &self,
        key: &str,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<Vec<u8>> {
        if !key.starts_with(SEALED_PREFIX) {
            return Err(Error::InvalidArgument(format!(
                "sealed records live under {SEALED_PREFIX:?}, not at {key:?}"
            )));
        }
        if context.version() == BARRIER_CONTEXT_VERSION {
            return Err(Error::InvalidArgument(format!(
                "context version {BARRIER_CONTEXT_VERSION} is reserved for barrier records"
            )));
        }
        self.seal_envelope(plaintext, context).await
    }

    /// Seals `plaintext` for `context` into a [`SealedRecord`], without the
    /// checks callers of [`Strongroom::sealed_put`] are held to (used to
    /// re-seal records that are already stored, barrier records included).
    async fn seal_envelope(&self, plaintext: &[u8], context: &SealContext<'_>) -> Result<Vec<u8>> {
        let sealed = self.seal_value(plaintext, context).await?;
        SealedRecord::encode(context, sealed.as_bytes())
    }

    /// Stores `plaintext` sealed at `key`, bound to `context`.
    pub(crate) async fn put_sealed(
        &self,
        key: &str,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<()> {
        let op = self.sealed_put(key, plaintext, context).await?;
        self.commit(vec![op]).await
    }

    /// Reads and opens the sealed record at `key`, which must have been
    /// stored for `context`. A record moved from another key or context
    /// fails with [`Error::DecryptionFailed`].
    pub(crate) async fn get_sealed(
        &self,
        key: &str,
        context: &SealContext<'_>,
    ) -> Result<Option<SecretBytes>> {
        let Some(bytes) = self.inner.storage.get(key).await? else {
            return Ok(None);
        };
        self.open_record(key, bytes, context).await.map(Some)
    }

    /// Opens a sealed record's bytes as read from `key`.
    pub(crate) async fn open_record(
        &self,
        key: &str,
        bytes: Vec<u8>,
        context: &SealContext<'_>,
    ) -> Result<SecretBytes> {
        let start = {
            let rec = SealedRecord::decode(key, &bytes)?;
            if rec.path != context.path() || rec.version != context.version() {
                return Err(Error::DecryptionFailed);
            }
            rec.sealed_offset
        };
        let mut buf = bytes;
        let opened = match self.open_value_in_place(&mut buf[start..], context) {
            Err(Error::UnknownKeyVersion { version, latest }) if version > latest => {
                // Another process may have rotated: reload once.
                self.reload().await?;
                self.open_value_in_place(&mut buf[start..], context)?.len()
            }
            r => r?.len(),
        };
        let from = start + seal::HEADER_LEN;
        buf.copy_within(from..from + opened, 0);
        buf.truncate(opened);
        Ok(SecretBytes::new(buf))
    }

    /// Calls `f` with every keyring-sealed record: everything but the
    /// pre-unseal records (see [`is_pre_unseal`]).
    async fn scan_sealed(&self, mut f: impl FnMut(&str, &[u8]) -> Result<()>) -> Result<()> {
        let mut after: Option<String> = None;
        loop {
            let page = self.inner.storage.scan("", after.as_deref(), 500).await?;
            for (k, v) in &page {
                if !is_pre_unseal(k) {
                    f(k, v)?;
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == 500 => after = Some(k.clone()),
                _ => return Ok(()),
            }
        }
    }
}

/// A store's root key as its protector wrapped it (`sys/root-key`): which
/// protector, and the wrapped blob. Not secret; useful to tell which
/// protector key version a store still needs (for example before deleting
/// an old HSM key version).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappedRootKey {
    /// The protector's kind, as [`KeyProtector::kind`] names it.
    pub protector_kind: String,
    /// The protector's wrapped blob.
    pub wrapped: Vec<u8>,
}

impl WrappedRootKey {
    /// Reads the record of the store in `storage`; [`Error::NotInitialized`]
    /// if there is none, [`Error::CorruptRecord`] if it cannot be parsed.
    pub async fn read(storage: &DynStorage) -> Result<Self> {
        let record = storage
            .get(ROOT_KEY_RECORD)
            .await?
            .ok_or(Error::NotInitialized)?;
        let bad = |r: &str| Error::corrupt(ROOT_KEY_RECORD, r.to_owned());
        let (&ver, rest) = record.split_first().ok_or_else(|| bad("empty"))?;
        if ver != ROOT_RECORD_VERSION {
            return Err(bad("unsupported root key record version"));
        }
        let (&kind_len, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
        let kind_len = usize::from(kind_len);
        if rest.len() < kind_len {
            return Err(bad("truncated"));
        }
        let (kind, wrapped) = rest.split_at(kind_len);
        let protector_kind = std::str::from_utf8(kind)
            .map_err(|_| bad("protector kind is not UTF-8"))?
            .to_owned();
        Ok(Self {
            protector_kind,
            wrapped: wrapped.to_vec(),
        })
    }
}

pub(crate) fn encode_root_record(kind: &str, wrapped: &[u8]) -> Result<Vec<u8>> {
    let kind_len = u8::try_from(kind.len())
        .map_err(|_| Error::InvalidArgument("protector kind longer than 255 bytes".into()))?;
    let mut record = Vec::with_capacity(2 + kind.len() + wrapped.len());
    record.push(ROOT_RECORD_VERSION);
    record.push(kind_len);
    record.extend_from_slice(kind.as_bytes());
    record.extend_from_slice(wrapped);
    Ok(record)
}

/// The keyring as stored: decoded, with the exact bytes read (for
/// compare-and-set) and the generation record's bytes.
struct LoadedKeyring {
    keyring: Keyring,
    raw: Vec<u8>,
    generation_raw: Option<Vec<u8>>,
}

/// Reads of the generation/keyring pair before a counter that keeps moving
/// underneath is reported as a conflict.
const LOAD_ATTEMPTS: usize = 8;

async fn load_keyring(storage: &DynStorage, root: &DataKey) -> Result<LoadedKeyring> {
    for _ in 0..LOAD_ATTEMPTS {
        // The generation first: a keyring read after it is at least that
        // new, so a stale pair can only make a sealed write conflict.
        let generation_raw = storage.get(KEYRING_GENERATION).await?;
        let generation = coherence::decode_generation(generation_raw.as_deref())?;
        let raw = storage
            .get(KEYRING_RECORD)
            .await?
            .ok_or_else(|| Error::corrupt(KEYRING_RECORD, "missing"))?;
        let sealed = SealedValue::parse(&raw).map_err(|_| Error::UnsealFailed)?;
        let plain = root
            .open(&sealed, &root_context())
            .map_err(|_| Error::UnsealFailed)?;
        let plain = Zeroizing::new(plain.expose_secret().to_vec());
        let mut keyring = Keyring::decode(&plain)?;
        if let Some(sealed_generation) = keyring.sealed_generation()
            && sealed_generation != generation
        {
            // The counter only grows and moves with the keyring in one
            // batch: if it did not move while the keyring was read, the
            // pair disagrees because someone wrote the counter alone.
            let again = storage.get(KEYRING_GENERATION).await?;
            if again == generation_raw {
                return Err(Error::corrupt(
                    KEYRING_GENERATION,
                    format!(
                        "holds {generation}, but the keyring was sealed at generation {sealed_generation}"
                    ),
                ));
            }
            continue;
        }
        keyring.generation = generation;
        return Ok(LoadedKeyring {
            keyring,
            raw,
            generation_raw,
        });
    }
    Err(Error::StorageConflict {
        key: KEYRING_GENERATION.into(),
    })
}

fn record_sealed_bytes(bytes: &[u8]) -> Result<&[u8]> {
    let r = SealedRecord::decode("", bytes)?;
    Ok(&bytes[r.sealed_offset..])
}

/// The envelope of a keyring-sealed record in storage (format v1):
///
/// ```text
/// 1 byte   record version (1)
/// 2 bytes  context path length, big-endian
/// n bytes  context path (UTF-8)
/// 8 bytes  context version, big-endian
/// rest     the sealed value (see `docs/FORMAT.md`)
/// ```
///
/// The context travels with the record so `Strongroom::rewrap` can re-seal
/// it without knowing who wrote it; readers still supply the context they
/// expect, and a mismatch fails like any other decryption failure.
#[derive(Debug)]
pub struct SealedRecord<'a> {
    /// The context path.
    pub path: &'a str,
    /// The context version.
    pub version: u64,
    /// Offset of the sealed value within the record.
    pub sealed_offset: usize,
}

impl<'a> SealedRecord<'a> {
    /// Encodes a record.
    pub fn encode(context: &SealContext<'_>, sealed: &[u8]) -> Result<Vec<u8>> {
        let path = context.path().as_bytes();
        let len = u16::try_from(path.len())
            .map_err(|_| Error::InvalidArgument("context path longer than 65535 bytes".into()))?;
        let mut out = Vec::with_capacity(11 + path.len() + sealed.len());
        out.push(1);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(path);
        out.extend_from_slice(&context.version().to_be_bytes());
        out.extend_from_slice(sealed);
        Ok(out)
    }

    /// Decodes the envelope of the record stored at `key`.
    pub fn decode(key: &str, bytes: &'a [u8]) -> Result<Self> {
        let bad = |r: &str| Error::corrupt(key, r.to_owned());
        let (&v, rest) = bytes.split_first().ok_or_else(|| bad("empty record"))?;
        if v != 1 {
            return Err(bad("unsupported sealed record version"));
        }
        let len_bytes = rest.get(..2).ok_or_else(|| bad("truncated"))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let path = rest.get(2..2 + len).ok_or_else(|| bad("truncated"))?;
        let path = std::str::from_utf8(path).map_err(|_| bad("path is not UTF-8"))?;
        let ver = rest
            .get(2 + len..2 + len + 8)
            .ok_or_else(|| bad("truncated"))?;
        let mut v8 = [0u8; 8];
        v8.copy_from_slice(ver);
        Ok(Self {
            path,
            version: u64::from_be_bytes(v8),
            sealed_offset: 1 + 2 + len + 8,
        })
    }
}
