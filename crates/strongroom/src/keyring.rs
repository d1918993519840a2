//! The versioned keyring: numbered data keys, one of them primary.
//!
//! Sealing uses the primary key; opening looks the key version up from the
//! sealed value's header. Key versions move through a small lifecycle:
//!
//! ```text
//!            promote                 raise min decryption version
//!   Active ----------> Primary        Active ----------> Retired
//!   Active <---------- Primary        Active <---------- Retired
//!        another key promoted              lower it again
//!
//!   Retired ---------> Destroyed  (only when no stored value needs the key)
//! ```
//!
//! Every key counts its encryptions. Counts are reserved in blocks that are
//! persisted before use, so a crash can waste part of a block but never lets
//! the count go backwards, and blocks reserved by different processes sharing
//! one store never overlap. When the primary key reaches the rotation
//! threshold (by default 3,865,470,566, 90% of 2^32, as NIST SP 800-38D asks
//! for random 96-bit nonces) the keyring rotates itself.
//!
//! The keyring is persisted as one record sealed under the root key; see
//! [`crate::Strongroom`] for the operations that change it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::Timestamp;
use crate::seal::{Algorithm, DataKey, SealContext, SealedValue};
use crate::{Error, Result, SecretBytes};

/// The lifecycle state of a keyring key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyState {
    /// Seals new values and opens old ones. Exactly one key is primary.
    Primary,
    /// Opens values; does not seal.
    Active,
    /// Below the minimum decryption version: opens nothing, still stored.
    Retired,
    /// Key material erased. Final.
    Destroyed,
}

impl KeyState {
    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: KeyState) -> bool {
        use KeyState::*;
        matches!(
            (self, to),
            (Active, Primary)
                | (Primary, Active)
                | (Active, Retired)
                | (Retired, Active)
                | (Retired, Destroyed)
        )
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Destroyed => "destroyed",
        })
    }
}

/// Public facts about one key version. Holds no key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The version number (1, 2, ...).
    pub version: u32,
    /// Its lifecycle state.
    pub state: KeyState,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// When it was created.
    pub created: Timestamp,
    /// Encryptions reserved so far (an upper bound on encryptions done).
    pub encryptions_reserved: u64,
}

/// Tunables of the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyringOptions {
    /// Algorithm for new keys.
    pub algorithm: Algorithm,
    /// Encryptions after which the primary key is replaced automatically.
    pub rotate_after_encryptions: u64,
    /// Encryptions reserved (persisted) at a time.
    pub reservation_block: u64,
}

impl Default for KeyringOptions {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Aes256Gcm,
            rotate_after_encryptions: 3_865_470_566,
            reservation_block: 1 << 16,
        }
    }
}

/// One key version in memory.
pub(crate) struct KeyEntry {
    pub(crate) info: KeyInfo,
    pub(crate) key: Option<DataKey>,
    /// Next encryption number this process may use.
    used: AtomicU64,
    /// End (exclusive) of the block this process reserved.
    reserved: AtomicU64,
}

/// The keyring in memory: keys, primary, minimum decryption version.
pub struct Keyring {
    pub(crate) keys: BTreeMap<u32, KeyEntry>,
    pub(crate) primary: u32,
    pub(crate) min_decryption_version: u32,
    audit_key: SecretBytes,
    /// The keyring generation this copy was loaded at (see
    /// [`crate::KEYRING_GENERATION`]); encoded into the sealed record.
    pub(crate) generation: u64,
    /// The generation the decoded record carried, if any.
    sealed_generation: Option<u64>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary)
            .field("min_decryption_version", &self.min_decryption_version)
            .field(
                "keys",
                &self.keys.values().map(|k| &k.info).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Result of trying to seal without touching storage.
pub(crate) enum TrySeal {
    Sealed,
    /// The local reservation is used up; reserve more and retry.
    NeedsReservation,
}

impl Keyring {
    /// A new keyring with key version 1 as primary.
    pub(crate) fn generate(algorithm: Algorithm, now: Timestamp) -> Result<Self> {
        let mut keys = BTreeMap::new();
        let mut first = new_entry(1, algorithm, now)?;
        first.info.state = KeyState::Primary;
        keys.insert(1, first);
        Ok(Self {
            keys,
            primary: 1,
            min_decryption_version: 1,
            audit_key: SecretBytes::random(32)?,
            generation: 0,
            sealed_generation: None,
        })
    }

    /// The primary key version.
    pub fn primary_version(&self) -> u32 {
        self.primary
    }

    /// The minimum decryption version.
    pub fn min_decryption_version(&self) -> u32 {
        self.min_decryption_version
    }

    /// The keyring generation this copy was loaded at. It grows with every
    /// change that decides which key seals or which keys open (rotate,
    /// promote, retire, destroy), and every sealed write to storage is
    /// conditioned on it (see `Strongroom::commit`).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What a keyring generation stands for: the primary, the minimum
    /// decryption version and each key's state. Reservations do not change
    /// it.
    pub(crate) fn sealing_state(&self) -> (u32, u32, Vec<(u32, KeyState)>) {
        (
            self.primary,
            self.min_decryption_version,
            self.keys.iter().map(|(v, e)| (*v, e.info.state)).collect(),
        )
    }

    /// The key material of `version` whatever its state (short of
    /// destroyed): for re-sealing values this process sealed itself moments
    /// ago under a key that has since been retired elsewhere.
    pub(crate) fn material(&self, version: u32) -> Option<&DataKey> {
        self.keys.get(&version).and_then(|e| e.key.as_ref())
    }

    /// The newest key version.
    pub fn latest_version(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    /// Facts about every key version, oldest first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keys.values().map(|k| k.info.clone()).collect()
    }

    /// The per-store key for audit HMACs.
    pub(crate) fn audit_key(&self) -> &SecretBytes {
        &self.audit_key
    }

    fn primary_entry(&self) -> Result<&KeyEntry> {
        self.keys
            .get(&self.primary)
            .ok_or_else(|| Error::corrupt("sys/keyring", "primary key version is missing"))
    }

    /// Seals in place with the primary key if the local reservation allows.
    pub(crate) fn try_seal_in_place(
        &self,
        buf: &mut Vec<u8>,
        ctx: &SealContext<'_>,
    ) -> Result<TrySeal> {
        self.try_seal_with(|key, version| key.seal_in_place(version, buf, ctx))
    }

    /// Seals `plaintext` into `out` (see [`DataKey::seal_into`]) with the
    /// primary key if the local reservation allows; writes nothing otherwise.
    pub(crate) fn try_seal_into(
        &self,
        plaintext: &[u8],
        out: &mut [u8],
        ctx: &SealContext<'_>,
    ) -> Result<TrySeal> {
        self.try_seal_with(|key, version| key.seal_into(version, plaintext, out, ctx))
    }

    fn try_seal_with(&self, seal: impl FnOnce(&DataKey, u32) -> Result<()>) -> Result<TrySeal> {
        let e = self.primary_entry()?;
        let n = e.used.fetch_add(1, Ordering::AcqRel);
        if n >= e.reserved.load(Ordering::Acquire) {
            return Ok(TrySeal::NeedsReservation);
        }
        let key = e
            .key
            .as_ref()
            .ok_or_else(|| Error::corrupt("sys/keyring", "primary key has no material"))?;
        seal(key, self.primary)?;
        Ok(TrySeal::Sealed)
    }

    /// Whether the primary key has reserved encryptions left locally.
    pub(crate) fn primary_has_room(&self) -> bool {
        self.primary_entry()
            .is_ok_and(|e| e.used.load(Ordering::Acquire) < e.reserved.load(Ordering::Acquire))
    }

    /// Sets the local reservation window of `version`.
    pub(crate) fn set_reservation(&self, version: u32, start: u64, end: u64) {
        if let Some(e) = self.keys.get(&version) {
            e.used.store(start, Ordering::Release);
            e.reserved.store(end, Ordering::Release);
        }
    }

    /// Keeps the local reservation windows of keys that `old` also had.
    pub(crate) fn inherit_reservations(&self, old: &Keyring) {
        for (v, e) in &self.keys {
            if let Some(o) = old.keys.get(v) {
                e.used
                    .store(o.used.load(Ordering::Acquire), Ordering::Release);
                e.reserved
                    .store(o.reserved.load(Ordering::Acquire), Ordering::Release);
            }
        }
    }

    /// The key able to open values sealed under `version`, or why not.
    pub(crate) fn decryption_key(&self, version: u32) -> Result<&DataKey> {
        let e = self.keys.get(&version).ok_or(Error::UnknownKeyVersion {
            version,
            latest: self.latest_version(),
        })?;
        match (e.info.state, &e.key) {
            (KeyState::Primary | KeyState::Active, Some(k)) => Ok(k),
            (state, _) => Err(Error::KeyVersionRetired {
                version,
                state,
                min_decryption_version: self.min_decryption_version,
            }),
        }
    }

    /// Opens a sealed value.
    pub fn open(&self, sealed: &SealedValue, ctx: &SealContext<'_>) -> Result<SecretBytes> {
        self.decryption_key(sealed.key_version())?.open(sealed, ctx)
    }

    /// Opens `sealed` into `out` (exactly `sealed.len() - OVERHEAD` bytes);
    /// see [`DataKey::open_into`].
    pub fn open_into(&self, sealed: &[u8], out: &mut [u8], ctx: &SealContext<'_>) -> Result<()> {
        let v = crate::seal::header_key_version(sealed)?;
        self.decryption_key(v)?.open_into(sealed, out, ctx)
    }

    /// Opens in place.
    pub fn open_in_place<'b>(
        &self,
        buf: &'b mut [u8],
        ctx: &SealContext<'_>,
    ) -> Result<&'b mut [u8]> {
        let v = crate::seal::header_key_version(buf)?;
        self.decryption_key(v)?.open_in_place(buf, ctx)
    }

    // ----- mutations (applied to a copy loaded from storage, then persisted) -----

    /// Adds a new primary key version. Returns it.
    pub(crate) fn rotate(&mut self, algorithm: Algorithm, now: Timestamp) -> Result<u32> {
        let v = self
            .latest_version()
            .checked_add(1)
            .ok_or_else(|| Error::InvalidArgument("key versions exhausted".into()))?;
        self.keys.insert(v, new_entry(v, algorithm, now)?);
        self.set_primary(v)?;
        Ok(v)
    }

    fn transition(&mut self, version: u32, to: KeyState) -> Result<()> {
        let latest = self.latest_version();
        let e = self
            .keys
            .get_mut(&version)
            .ok_or(Error::UnknownKeyVersion { version, latest })?;
        if e.info.state == to {
            return Ok(());
        }
        if !e.info.state.can_become(to) {
            return Err(Error::InvalidKeyTransition {
                version,
                from: e.info.state,
                to,
            });
        }
        e.info.state = to;
        if to == KeyState::Destroyed {
            e.key = None;
        }
        Ok(())
    }

    /// Makes `version` the primary; the old primary becomes active.
    pub(crate) fn set_primary(&mut self, version: u32) -> Result<()> {
        if version == self.primary {
            return Ok(());
        }
        // Check first so a refused promotion changes nothing.
        let state =
            self.keys
                .get(&version)
                .map(|e| e.info.state)
                .ok_or(Error::UnknownKeyVersion {
                    version,
                    latest: self.latest_version(),
                })?;
        if !state.can_become(KeyState::Primary) {
            return Err(Error::InvalidKeyTransition {
                version,
                from: state,
                to: KeyState::Primary,
            });
        }
        let old = self.primary;
        self.transition(old, KeyState::Active)?;
        self.transition(version, KeyState::Primary)?;
        self.primary = version;
        Ok(())
    }

    /// Retires keys below `min`, re-activates retired keys at or above it.
    pub(crate) fn set_min_decryption_version(&mut self, min: u32) -> Result<()> {
        if min == 0 || min > self.primary {
            return Err(Error::InvalidArgument(format!(
                "minimum decryption version must be between 1 and the primary version {}",
                self.primary
            )));
        }
        let versions: Vec<(u32, KeyState)> =
            self.keys.iter().map(|(v, e)| (*v, e.info.state)).collect();
        for (v, state) in versions {
            if v < min && state == KeyState::Active {
                self.transition(v, KeyState::Retired)?;
            } else if v >= min && state == KeyState::Retired {
                self.transition(v, KeyState::Active)?;
            } else if v >= min && state == KeyState::Destroyed {
                return Err(Error::InvalidKeyTransition {
                    version: v,
                    from: state,
                    to: KeyState::Active,
                });
            }
        }
        self.min_decryption_version = min;
        Ok(())
    }

    /// Erases the material of a retired key.
    pub(crate) fn destroy(&mut self, version: u32) -> Result<()> {
        self.transition(version, KeyState::Destroyed)
    }

    /// Reserves the next block of encryptions for the primary key, rotating
    /// first if the key is at its threshold. Returns (version, start, end).
    pub(crate) fn reserve_block(
        &mut self,
        opts: &KeyringOptions,
        now: Timestamp,
    ) -> Result<(u32, u64, u64)> {
        let threshold = opts.rotate_after_encryptions.max(1);
        let at_threshold = self
            .keys
            .get(&self.primary)
            .is_none_or(|e| e.info.encryptions_reserved >= threshold);
        if at_threshold {
            self.rotate(opts.algorithm, now)?;
        }
        let primary = self.primary;
        let e = self
            .keys
            .get_mut(&primary)
            .ok_or_else(|| Error::corrupt("sys/keyring", "primary key version is missing"))?;
        let start = e.info.encryptions_reserved;
        let end = start
            .saturating_add(opts.reservation_block.max(1))
            .min(threshold);
        e.info.encryptions_reserved = end;
        crate::metrics::keyring_reserved(primary, end, threshold);
        Ok((primary, start, end))
    }

    // ----- encoding -----

    /// Encodes the keyring (with key material) for sealing under the root key.
    pub(crate) fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let record = KeyringRecordV1 {
            primary: self.primary,
            min_decryption_version: self.min_decryption_version,
            audit_key: Zeroizing::new(self.audit_key.expose_secret().to_vec()),
            keys: self
                .keys
                .values()
                .map(|e| KeyRecordV1 {
                    version: e.info.version,
                    state: e.info.state,
                    algorithm: e.info.algorithm,
                    created_ms: e.info.created.as_millis(),
                    encryptions_reserved: e.info.encryptions_reserved,
                    material: e
                        .key
                        .as_ref()
                        .map(|k| Zeroizing::new(k.raw().expose_secret().to_vec())),
                })
                .collect(),
        };
        // Written into a buffer of the exact size: a growing vector would
        // leave copies of the key material behind in each block it outgrew.
        let encode_failed =
            |e: postcard::Error| Error::corrupt("sys/keyring", format!("encode: {e}"));
        let len = postcard::serialize_with_flavor(&record, postcard::ser_flavors::Size::default())
            .map_err(encode_failed)?;
        let mut out = Zeroizing::new(vec![0u8; len + 1 + 8]);
        out[0] = KEYRING_RECORD_VERSION;
        postcard::to_slice(&record, &mut out[1..=len]).map_err(encode_failed)?;
        // The generation rides inside the sealed record so the plain counter
        // beside it (`sys/keyring-generation`) can be checked against it.
        out[len + 1..].copy_from_slice(&self.generation.to_be_bytes());
        Ok(out)
    }

    /// Decodes a keyring record's plaintext (as stored sealed under the root
    /// key), checking every invariant. Public for tools and fuzzing; a store
    /// decodes its keyring itself at unseal.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |reason: &str| Error::corrupt("sys/keyring", reason.to_owned());
        let (&version, body) = bytes.split_first().ok_or_else(|| bad("empty record"))?;
        if version != 1 && version != KEYRING_RECORD_VERSION {
            return Err(bad("unsupported keyring record version"));
        }
        let (record, rest): (KeyringRecordV1, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| bad(&format!("undecodable: {e}")))?;
        let sealed_generation = match (version, rest.len()) {
            (1, 0) => None,
            (2, 8) => {
                let mut g = [0u8; 8];
                g.copy_from_slice(rest);
                Some(u64::from_be_bytes(g))
            }
            _ => return Err(bad("trailing bytes after the keyring record")),
        };
        let mut keys = BTreeMap::new();
        let mut primaries = 0;
        for k in record.keys {
            if k.version == 0 || keys.contains_key(&k.version) {
                return Err(bad("zero or duplicate key version"));
            }
            let key = match (&k.material, k.state) {
                (None, KeyState::Destroyed) => None,
                (Some(m), s) if s != KeyState::Destroyed => {
                    Some(DataKey::new(k.algorithm, SecretBytes::copy_from(m))?)
                }
                _ => return Err(bad("key material does not match key state")),
            };
            if k.state == KeyState::Primary {
                primaries += 1;
                if k.version != record.primary {
                    return Err(bad("primary flag on a non-primary key"));
                }
            }
            keys.insert(
                k.version,
                KeyEntry {
                    info: KeyInfo {
                        version: k.version,
                        state: k.state,
                        algorithm: k.algorithm,
                        created: Timestamp::from_millis(k.created_ms),
                        encryptions_reserved: k.encryptions_reserved,
                    },
                    key,
                    used: AtomicU64::new(0),
                    reserved: AtomicU64::new(0),
                },
            );
        }
        if primaries != 1 || !keys.contains_key(&record.primary) {
            return Err(bad("keyring must have exactly one primary key"));
        }
        if record.audit_key.len() != 32 {
            return Err(bad("audit key must be 32 bytes"));
        }
        Ok(Self {
            keys,
            primary: record.primary,
            min_decryption_version: record.min_decryption_version,
            audit_key: SecretBytes::copy_from(&record.audit_key),
            generation: sealed_generation.unwrap_or(0),
            sealed_generation,
        })
    }

    /// The generation recorded inside the sealed keyring record this copy
    /// was decoded from (`None`: a version 1 record, or not decoded).
    pub(crate) fn sealed_generation(&self) -> Option<u64> {
        self.sealed_generation
    }
}

fn new_entry(version: u32, algorithm: Algorithm, now: Timestamp) -> Result<KeyEntry> {
    Ok(KeyEntry {
        info: KeyInfo {
            version,
            state: KeyState::Active,
            algorithm,
            created: now,
            encryptions_reserved: 0,
        },
        key: Some(DataKey::generate(algorithm)?),
        used: AtomicU64::new(0),
        reserved: AtomicU64::new(0),
    })
}

/// First byte of an encoded keyring record: 2 (the version 1 body followed
/// by the keyring generation, 8 bytes big-endian). Version 1 records (no
/// generation) are still read.
pub(crate) const KEYRING_RECORD_VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
struct KeyringRecordV1 {
    primary: u32,
    min_decryption_version: u32,
    audit_key: Zeroizing<Vec<u8>>,
    keys: Vec<KeyRecordV1>,
}

#[derive(Serialize, Deserialize)]
struct KeyRecordV1 {
    version: u32,
    state: KeyState,
    algorithm: Algorithm,
    created_ms: u64,
    encryptions_reserved: u64,
    material: Option<Zeroizing<Vec<u8>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        let mut k = Keyring::generate(Algorithm::Aes256Gcm, Timestamp::from_secs(1)).unwrap();
        k.transition(1, KeyState::Primary).unwrap();
        k
    }

    #[test]
    fn only_legal_transitions() {
        use KeyState::*;
        let all = [Primary, Active, Retired, Destroyed];
        let legal = [
            (Active, Primary),
            (Primary, Active),
            (Active, Retired),
            (Retired, Active),
            (Retired, Destroyed),
        ];
        for a in all {
            for b in all {
                assert_eq!(a.can_become(b), legal.contains(&(a, b)), "{a} -> {b}");
            }
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut k = ring();
        k.rotate(Algorithm::ChaCha20Poly1305, Timestamp::from_secs(2))
            .unwrap();
        k.set_min_decryption_version(2).unwrap();
        k.destroy(1).unwrap();
        let enc = k.encode().unwrap();
        let d = Keyring::decode(&enc).unwrap();
        assert_eq!(d.keys(), k.keys());
        assert_eq!(d.primary, 2);
        assert_eq!(d.min_decryption_version, 2);
        assert_eq!(d.audit_key, k.audit_key);
        assert!(d.keys[&1].key.is_none());
    }

    #[test]
    fn decode_rejects_garbage_without_panic() {
        for bad in [
            &[][..],
            &[2, 0, 0],
            &[1],
            &[1, 0xff, 0xff, 0xff, 0xff, 0x0f],
        ] {
            assert!(matches!(
                Keyring::decode(bad),
                Err(Error::CorruptRecord { .. })
            ));
        }
    }

    #[test]
    fn reservation_rotates_at_threshold() {
        let mut k = ring();
        let opts = KeyringOptions {
            rotate_after_encryptions: 10,
            reservation_block: 4,
            ..Default::default()
        };
        let now = Timestamp::from_secs(5);
        assert_eq!(k.reserve_block(&opts, now).unwrap(), (1, 0, 4));
        assert_eq!(k.reserve_block(&opts, now).unwrap(), (1, 4, 8));
        assert_eq!(k.reserve_block(&opts, now).unwrap(), (1, 8, 10));
        assert_eq!(k.reserve_block(&opts, now).unwrap(), (2, 0, 4));
        assert_eq!(k.keys[&1].info.state, KeyState::Active);
        assert_eq!(k.primary, 2);
    }

    #[test]
    fn primary_cannot_be_retired_or_destroyed() {
        let mut k = ring();
        assert!(matches!(
            k.destroy(1),
            Err(Error::InvalidKeyTransition {
                from: KeyState::Primary,
                ..
            })
        ));
        assert!(k.set_min_decryption_version(2).is_err());
        k.rotate(Algorithm::Aes256Gcm, Timestamp::EPOCH).unwrap();
        // active keys must be retired before they are destroyed
        assert!(matches!(
            k.destroy(1),
            Err(Error::InvalidKeyTransition {
                from: KeyState::Active,
                ..
            })
        ));
        k.set_min_decryption_version(2).unwrap();
        k.destroy(1).unwrap();
        // destroyed is final
        assert!(k.set_min_decryption_version(1).is_err());
        assert!(k.set_primary(1).is_err());
        assert_eq!(k.primary, 2);
    }
}
