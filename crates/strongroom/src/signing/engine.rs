//! The engine: [`SigningKeys`] creates, rotates, loads and uses keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::eth;
use super::limits::RateLimiter;
use super::material::{self, KeyPair};
use super::record::{
    KeyRecord, RECORD_FORMAT, VersionRecord, decode_private, encode_private, meta_key, sealed_key,
};
use super::{
    EthSignature, KeyInfo, KeyOptions, KeyType, PublicKey, RateLimit, Signature, SigningError,
};
use crate::path::SecretPath;
use crate::seal::SealContext;
use crate::storage::BatchOp;
use crate::{Error, Result, SecretBytes, Strongroom};

/// Parsed private keys kept before the cache is emptied and refilled.
const MAX_CACHED: usize = 1024;

/// The signing keys of one store: creates and rotates keys, signs and
/// verifies. Its own methods are unchecked (it is built through the
/// [`Door`](crate::dangerous::Door)); wrap it with
/// [`Handle::signing`](crate::Handle::signing) for a principal. Cheap to
/// share behind an `Arc`; one per process is what the rate limits assume.
pub struct SigningKeys {
    sr: Strongroom,
    cache: Mutex<HashMap<(String, u32), Arc<KeyPair>>>,
    limits: RateLimiter,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("SigningKeys")
            .field("cached_versions", &cached)
            .finish_non_exhaustive()
    }
}

/// The canonical key name: a [`SecretPath`].
fn canonical(name: &str) -> Result<String> {
    Ok(SecretPath::parse(name)?.as_str().to_owned())
}

/// A stored key's metadata, with the plaintext it was read from (for the
/// compare-and-set of the next write).
pub(super) struct Loaded {
    pub(super) raw: Vec<u8>,
    pub(super) rec: KeyRecord,
}

impl SigningKeys {
    pub(crate) fn new(sr: Strongroom) -> Self {
        Self {
            sr,
            cache: Mutex::new(HashMap::new()),
            limits: RateLimiter::default(),
        }
    }

    pub(super) async fn load(&self, name: &str) -> Result<Loaded> {
        let read = self.sr.barrier().get(&meta_key(name)).await;
        if matches!(read, Err(Error::Sealed)) {
            // The store was sealed: drop the parsed keys now rather than
            // when the engine is dropped (nothing can be signed anyway).
            self.forget_keys();
        }
        let Some(raw) = read? else {
            return Err(SigningError::UnknownKey {
                key: name.to_owned(),
            }
            .into());
        };
        let rec = KeyRecord::decode(name, &raw)?;
        Ok(Loaded { raw, rec })
    }

    /// Writes `rec` over `before` (`None`: the key must not exist) with
    /// the sealed private key of a new version, in one conditional batch.
    pub(super) async fn write(
        &self,
        name: &str,
        before: Option<Vec<u8>>,
        rec: &KeyRecord,
        private: Option<(u32, SecretBytes)>,
    ) -> Result<()> {
        let key = meta_key(name);
        let creating = before.is_none();
        // the records this batch is conditioned on
        let mut ours = vec![key.clone()];
        let mut ops = vec![
            BatchOp::expect(key.clone(), before),
            BatchOp::put(key.clone(), rec.encode()?),
        ];
        if let Some((version, plain)) = private {
            let ctx = SealContext::new(&key, u64::from(version));
            let skey = sealed_key(name, version);
            ops.push(BatchOp::expect(skey.clone(), None));
            ops.push(
                self.sr
                    .sealed_put(&skey, plain.expose_secret(), &ctx)
                    .await?,
            );
            ours.push(skey);
        }
        match self.sr.barrier().batch(ops).await {
            // Another process wrote this key's records first. A conflict on
            // anything else (the keyring generation) is returned as it is.
            Err(Error::StorageConflict { key: k }) if ours.contains(&k) => {
                let key = name.to_owned();
                Err(if creating {
                    SigningError::KeyExists { key }
                } else {
                    SigningError::Conflict { key }
                }
                .into())
            }
            other => other,
        }
    }

    /// Creates key `name` of `key_type` with a fresh random version 1.
    /// If the key exists (or another process creates it first), fails
    /// with [`SigningError::KeyExists`].
    pub async fn create_key(
        &self,
        name: &str,
        key_type: KeyType,
        options: KeyOptions,
    ) -> Result<KeyInfo> {
        let (material, public) = material::generate(key_type)?;
        self.store_new(name, key_type, options, material, public)
            .await
    }

    async fn store_new(
        &self,
        name: &str,
        key_type: KeyType,
        options: KeyOptions,
        material: SecretBytes,
        public: Vec<u8>,
    ) -> Result<KeyInfo> {
        let name = canonical(name)?;
        if let Some(limit) = options.rate_limit {
            limit.check()?;
        }
        if self.sr.barrier().get(&meta_key(&name)).await?.is_some() {
            return Err(SigningError::KeyExists { key: name }.into());
        }
        let rec = KeyRecord {
            format: RECORD_FORMAT,
            key_type,
            latest: 1,
            min_verify_version: 1,
            versions: vec![VersionRecord {
                version: 1,
                created: self.sr.clock().now(),
                public_key: hex::encode(&public),
            }],
            rate_limit: options.rate_limit,
        };
        let private = encode_private(key_type, material.expose_secret());
        self.write(&name, None, &rec, Some((1, private))).await?;
        Ok(rec.info(&name))
    }

    /// Imports key material as version 1 of a new key: for the published
    /// test vectors only, never public API.
    #[cfg(test)]
    pub(crate) async fn import_key(
        &self,
        name: &str,
        key_type: KeyType,
        material: SecretBytes,
    ) -> Result<KeyInfo> {
        let public = material::parse(key_type, material.expose_secret())
            .map_err(|r| Error::InvalidArgument(r.into()))?
            .public_raw();
        self.store_new(name, key_type, KeyOptions::default(), material, public)
            .await
    }

    /// Adds a fresh random version to key `name`, which signs from now on
    /// (in every process: each signature re-reads the key's record). Older
    /// versions still verify down to the minimum verify version. A
    /// concurrent change fails with [`SigningError::Conflict`].
    pub async fn rotate_key(&self, name: &str) -> Result<KeyInfo> {
        let name = canonical(name)?;
        let Loaded { raw, mut rec } = self.load(&name).await?;
        let (material, public) = material::generate(rec.key_type)?;
        let version = rec.latest.checked_add(1).ok_or_else(|| {
            Error::InvalidArgument(format!("signing key {name:?} has run out of versions"))
        })?;
        rec.latest = version;
        rec.versions.push(VersionRecord {
            version,
            created: self.sr.clock().now(),
            public_key: hex::encode(&public),
        });
        let private = encode_private(rec.key_type, material.expose_secret());
        self.write(&name, Some(raw), &rec, Some((version, private)))
            .await?;
        Ok(rec.info(&name))
    }

    /// Raises key `name`'s minimum verify version to `version` (at most
    /// the newest): signatures of older versions then fail to verify with
    /// [`SigningError::VersionRetired`]. Lowering it is refused.
    pub async fn set_min_verify_version(&self, name: &str, version: u32) -> Result<KeyInfo> {
        let name = canonical(name)?;
        let Loaded { raw, mut rec } = self.load(&name).await?;
        if version < rec.min_verify_version || version > rec.latest {
            return Err(SigningError::InvalidMinVerifyVersion {
                key: name,
                requested: version,
                current: rec.min_verify_version,
                latest: rec.latest,
            }
            .into());
        }
        rec.min_verify_version = version;
        self.write(&name, Some(raw), &rec, None).await?;
        Ok(rec.info(&name))
    }

    /// Sets (or with `None` removes) key `name`'s rate limit.
    pub async fn set_rate_limit(&self, name: &str, limit: Option<RateLimit>) -> Result<KeyInfo> {
        let name = canonical(name)?;
        if let Some(l) = limit {
            l.check()?;
        }
        let Loaded { raw, mut rec } = self.load(&name).await?;
        rec.rate_limit = limit;
        self.write(&name, Some(raw), &rec, None).await?;
        Ok(rec.info(&name))
    }

    /// What is known about key `name` (no key material).
    pub async fn key_info(&self, name: &str) -> Result<KeyInfo> {
        let name = canonical(name)?;
        Ok(self.load(&name).await?.rec.info(&name))
    }

    /// The public key of `version` of key `name` (`None`: the newest). A
    /// version below the minimum verify version is
    /// [`SigningError::VersionRetired`].
    pub async fn public_key(&self, name: &str, version: Option<u32>) -> Result<PublicKey> {
        let name = canonical(name)?;
        let rec = self.load(&name).await?.rec;
        let (v, raw) = rec.live_version(&name, version)?;
        Ok(PublicKey::new(rec.key_type, v, raw))
    }

    /// The Ethereum address of `version` of the secp256k1 key `name`
    /// (`None`: the newest), EIP-55 checksummed.
    pub async fn eth_address(&self, name: &str, version: Option<u32>) -> Result<String> {
        let key = self.public_key(name, version).await?;
        let name = canonical(name)?;
        require_secp256k1(&name, key.key_type(), "eth_address")?;
        key.eth_address().ok_or_else(|| {
            SigningError::CorruptRecord {
                key: name,
                reason: "the public key is not an uncompressed point".into(),
            }
            .into()
        })
    }

    /// Checks the key's rate limit and returns its newest version's key
    /// pair (`rec` is the record just read).
    async fn signer(&self, name: &str, rec: &KeyRecord) -> Result<(u32, Arc<KeyPair>)> {
        if let Some(limit) = rec.rate_limit {
            self.limits.take(name, limit, self.sr.clock().now())?;
        }
        let (version, public) = rec.live_version(name, None)?;
        let pair = self.key_pair(name, rec, version, &public).await?;
        Ok((version, pair))
    }

    /// The parsed private key of `version`, from the cache or opened from
    /// its sealed record (and checked against the public key on record).
    async fn key_pair(
        &self,
        name: &str,
        rec: &KeyRecord,
        version: u32,
        public: &[u8],
    ) -> Result<Arc<KeyPair>> {
        let id = (name.to_owned(), version);
        if let Some(pair) = self.cached(&id) {
            return Ok(pair);
        }
        let corrupt = |reason| {
            Error::from(SigningError::CorruptKey {
                key: name.to_owned(),
                version,
                reason,
            })
        };
        let ctx_path = meta_key(name);
        let ctx = SealContext::new(&ctx_path, u64::from(version));
        let plain = match self.sr.get_sealed(&sealed_key(name, version), &ctx).await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(corrupt("its sealed record is missing")),
            Err(Error::DecryptionFailed) => {
                return Err(corrupt("its sealed record failed authentication"));
            }
            Err(Error::CorruptRecord { .. } | Error::MalformedSealedValue(_)) => {
                return Err(corrupt("its sealed record is malformed"));
            }
            Err(e) => return Err(e),
        };
        let material = decode_private(rec.key_type, plain.expose_secret()).map_err(corrupt)?;
        let pair = material::parse(rec.key_type, material).map_err(corrupt)?;
        if pair.public_raw() != public {
            return Err(corrupt("it does not match its public key"));
        }
        let pair = Arc::new(pair);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(id, Arc::clone(&pair));
        Ok(pair)
    }

    /// Empties the cache of parsed private keys.
    fn forget_keys(&self) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// How many parsed private keys are cached.
    #[cfg(test)]
    pub(super) fn cached_keys(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    fn cached(&self, id: &(String, u32)) -> Option<Arc<KeyPair>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Signs `msg` with the newest version of key `name` (see [`KeyType`]
    /// for each algorithm's signature), within the key's rate limit.
    pub async fn sign(&self, name: &str, msg: &[u8]) -> Result<Signature> {
        let name = canonical(name)?;
        let rec = self.load(&name).await?.rec;
        let (version, pair) = self.signer(&name, &rec).await?;
        Ok(Signature::new(version, pair.sign(msg)?))
    }

    /// Whether `sig` is a valid signature of `msg` by key `name` in the
    /// version it names: `Ok(false)` for a signature that does not verify,
    /// [`SigningError::UnknownVersion`] or [`SigningError::VersionRetired`]
    /// for a version that does not exist or is below the minimum verify
    /// version.
    pub async fn verify(&self, name: &str, msg: &[u8], sig: &Signature) -> Result<bool> {
        let name = canonical(name)?;
        let rec = self.load(&name).await?.rec;
        let (_, public) = rec.live_version(&name, Some(sig.version()))?;
        Ok(material::verify(rec.key_type, &public, msg, sig.as_bytes()))
    }

    /// Signs the EIP-191 personal message `msg` (see
    /// [`personal_message_hash`](super::personal_message_hash)) with the
    /// newest version of the secp256k1 key `name`: `v` is 27 or 28.
    pub async fn eth_sign_personal_message(&self, name: &str, msg: &[u8]) -> Result<EthSignature> {
        self.eth_sign(
            name,
            &eth::personal_message_hash(msg),
            None,
            "eth_sign_personal_message",
        )
        .await
    }

    /// Signs an EIP-155 transaction's signing hash (Keccak-256 of its RLP
    /// with `chain_id, 0, 0`) with the newest version of the secp256k1 key
    /// `name`: `v` is `chain_id * 2 + 35` plus the recovery id.
    pub async fn eth_sign_transaction_hash(
        &self,
        name: &str,
        hash: &[u8; 32],
        chain_id: u64,
    ) -> Result<EthSignature> {
        // refuse a chain id whose `v` could overflow before signing
        eth::eip155_v(chain_id, 1)?;
        self.eth_sign(name, hash, Some(chain_id), "eth_sign_transaction_hash")
            .await
    }

    async fn eth_sign(
        &self,
        name: &str,
        hash: &[u8; 32],
        chain_id: Option<u64>,
        operation: &'static str,
    ) -> Result<EthSignature> {
        let name = canonical(name)?;
        let rec = self.load(&name).await?.rec;
        require_secp256k1(&name, rec.key_type, operation)?;
        let (version, pair) = self.signer(&name, &rec).await?;
        let (r, s, recid) = pair.sign_prehash_recoverable(hash)?;
        let v = match chain_id {
            Some(id) => eth::eip155_v(id, recid)?,
            None => eth::personal_v(recid),
        };
        Ok(EthSignature { version, r, s, v })
    }
}

fn require_secp256k1(name: &str, key_type: KeyType, operation: &'static str) -> Result<()> {
    if key_type == KeyType::Secp256k1 {
        return Ok(());
    }
    Err(SigningError::WrongKeyType {
        key: name.to_owned(),
        key_type,
        operation,
        needed: KeyType::Secp256k1,
    }
    .into())
}
