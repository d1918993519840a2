//! Signing keys that never leave ([`strongroom::signing`]): the store's
//! [`SigningKeys`] directly (unchecked, unaudited) or a principal's
//! [`SigningHandle`] over them (checked against its policies and audited).
//! Only signatures and public keys cross to JavaScript.

use std::sync::Arc;

use napi::bindgen_prelude::{BigInt, Buffer, BufferSlice, Either, Env, PromiseRaw};
use napi_derive::napi;
use strongroom::signing::{
    EthSignature, KeyInfo, KeyOptions, KeyType, PublicKey, RateLimit, Signature, SigningHandle,
    SigningKeys,
};

use crate::{
    Lifetime, NativeSecrets, NativeStrongroom, Target, closed_error, context_version, invalid, ms,
    plain_bytes, to_js,
};

/// Whom the signing calls go to: the store's engine (no policy, no audit)
/// or a principal's handle over it.
#[derive(Clone)]
enum Signer {
    Keys(Arc<SigningKeys>),
    Handle(SigningHandle),
}

/// Signing keys, directly or through a principal.
#[napi]
pub struct NativeSigningKeys {
    signer: Signer,
    /// The engine (shared by the principals' handles made from it).
    keys: Arc<SigningKeys>,
    /// The store's lifetime: calls fail once it is closed.
    life: Arc<Lifetime>,
}

impl NativeSigningKeys {
    fn signer(&self) -> napi::Result<Signer> {
        if self.life.is_closed() {
            return Err(closed_error("store"));
        }
        Ok(self.signer.clone())
    }
}

/// Runs `$op` with the same arguments on the engine or the handle;
/// evaluates to the core's `Result`.
macro_rules! on_signer {
    ($s:expr, $op:ident ( $($arg:expr),* )) => {
        match &$s {
            Signer::Keys(k) => k.$op($($arg),*).await,
            Signer::Handle(h) => h.$op($($arg),*).await,
        }
    };
}

/// One version of a signing key.
#[napi(object)]
pub struct NativeSigningKeyVersion {
    /// The version number (from 1).
    pub version: u32,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: f64,
}

/// A per-key rate limit.
#[napi(object)]
pub struct NativeRateLimit {
    /// Signatures per second, sustained (at least 1).
    pub per_second: u32,
    /// Signatures allowed at once (at least 1).
    pub burst: u32,
}

/// What is known about a signing key (no key material).
#[napi(object)]
pub struct NativeSigningKeyInfo {
    /// The key's name.
    pub name: String,
    /// "ed25519", "ecdsa_p256" or "secp256k1".
    pub key_type: String,
    /// The newest version, used to sign.
    pub latest_version: u32,
    /// Signatures of older versions no longer verify.
    pub min_verify_version: u32,
    /// Every version, oldest first.
    pub versions: Vec<NativeSigningKeyVersion>,
    /// The rate limit, if any.
    pub rate_limit: Option<NativeRateLimit>,
}

impl From<KeyInfo> for NativeSigningKeyInfo {
    fn from(k: KeyInfo) -> Self {
        Self {
            name: k.name,
            key_type: k.key_type.as_str().to_owned(),
            latest_version: k.latest_version,
            min_verify_version: k.min_verify_version,
            versions: k
                .versions
                .into_iter()
                .map(|v| NativeSigningKeyVersion {
                    version: v.version,
                    created_ms: ms(v.created),
                })
                .collect(),
            rate_limit: k.rate_limit.map(|r| NativeRateLimit {
                per_second: r.per_second,
                burst: r.burst,
            }),
        }
    }
}

/// A public key of one version of a signing key.
#[napi(object)]
pub struct NativePublicKey {
    /// "ed25519", "ecdsa_p256" or "secp256k1".
    pub key_type: String,
    /// The version it belongs to.
    pub version: u32,
    /// The raw key: 32 bytes (Ed25519) or the 65-byte uncompressed point.
    pub raw: Buffer,
    /// The SubjectPublicKeyInfo, DER.
    pub spki_der: Buffer,
    /// The SubjectPublicKeyInfo, PEM.
    pub spki_pem: String,
    /// For secp256k1, the EIP-55 Ethereum address.
    pub eth_address: Option<String>,
}

impl From<PublicKey> for NativePublicKey {
    fn from(p: PublicKey) -> Self {
        Self {
            key_type: p.key_type().as_str().to_owned(),
            version: p.version(),
            raw: p.raw().to_vec().into(),
            spki_der: p.spki_der().into(),
            spki_pem: p.spki_pem(),
            eth_address: p.eth_address(),
        }
    }
}

/// A signature and the key version that made it.
#[napi(object)]
pub struct NativeSignature {
    /// The key version that made it.
    pub version: u32,
    /// The signature bytes.
    pub bytes: Buffer,
    /// The text form, `strongroom:v<version>:<base64>`.
    pub text: String,
}

impl From<Signature> for NativeSignature {
    fn from(s: Signature) -> Self {
        Self {
            version: s.version(),
            bytes: s.as_bytes().to_vec().into(),
            text: s.to_text(),
        }
    }
}

/// An Ethereum signature.
#[napi(object)]
pub struct NativeEthSignature {
    /// The key version that made it.
    pub version: u32,
    /// `r`, 32 bytes big-endian.
    pub r: Buffer,
    /// `s`, 32 bytes big-endian (low half).
    pub s: Buffer,
    /// `v`: a number, or a bigint above 2^53 - 1.
    pub v: Either<f64, BigInt>,
    /// The recovery id (0 or 1).
    pub recovery_id: u32,
    /// `r || s || v` (65 bytes whenever `v` < 256).
    pub bytes: Buffer,
    /// `bytes` as `0x`-prefixed lower-case hex.
    pub hex: String,
}

impl From<EthSignature> for NativeEthSignature {
    fn from(e: EthSignature) -> Self {
        let v = e.v();
        Self {
            version: e.version(),
            r: e.r().to_vec().into(),
            s: e.s().to_vec().into(),
            v: if v <= 9_007_199_254_740_991 {
                Either::A(v as f64)
            } else {
                Either::B(BigInt::from(v))
            },
            recovery_id: u32::from(e.recovery_id()),
            bytes: e.to_bytes().into(),
            hex: e.to_hex(),
        }
    }
}

fn key_type(name: &str) -> napi::Result<KeyType> {
    name.parse().map_err(to_js)
}

fn rate_limit(per_second: Option<u32>, burst: Option<u32>) -> napi::Result<Option<RateLimit>> {
    match (per_second, burst) {
        (None, None) => Ok(None),
        (Some(p), Some(b)) => RateLimit::new(p, b).map(Some).map_err(to_js),
        _ => Err(invalid(
            "a rate limit needs both perSecond and burst (or neither)",
        )),
    }
}

/// Parses a signature's text form `strongroom:v<version>:<base64>`.
#[napi]
pub fn parse_signature(text: String) -> napi::Result<NativeSignature> {
    text.parse::<Signature>()
        .map(NativeSignature::from)
        .map_err(to_js)
}

#[napi]
impl NativeStrongroom {
    /// The store's signing keys, made from the store as it is now (no
    /// policy checks, no audit). Rate limits are enforced per object: keep
    /// one per process.
    #[napi]
    pub fn signing_keys(&self) -> napi::Result<NativeSigningKeys> {
        let keys = Arc::new(self.handle()?.signing_keys());
        Ok(NativeSigningKeys {
            signer: Signer::Keys(keys.clone()),
            keys,
            life: self.life.clone(),
        })
    }
}

#[napi]
impl NativeSecrets {
    /// `keys` as this principal: every call checked against its policies on
    /// the key's name and audited. Refused for the store's own secrets
    /// object, which has no principal, and for another store's keys.
    #[napi]
    pub fn signing(&self, keys: &NativeSigningKeys) -> napi::Result<NativeSigningKeys> {
        if !Arc::ptr_eq(&self.life, &keys.life) {
            return Err(invalid(
                "the signing keys belong to another store than this principal",
            ));
        }
        match self.target()? {
            Target::Handle(h) => Ok(NativeSigningKeys {
                signer: Signer::Handle(h.signing(&keys.keys)),
                keys: keys.keys.clone(),
                life: keys.life.clone(),
            }),
            Target::Store(_) => Err(invalid(
                "signing through a principal needs a principal's handle (store.asPrincipal()); \
                 use the signing keys directly for unchecked access",
            )),
        }
    }
}

#[napi]
impl NativeSigningKeys {
    /// The principal's name, or `null` for the store's own engine.
    #[napi(getter)]
    pub fn principal(&self) -> Option<String> {
        match &self.signer {
            Signer::Handle(h) => Some(h.handle().principal().name().to_owned()),
            Signer::Keys(_) => None,
        }
    }

    /// Creates key `name` of `key_type` ("ed25519", "ecdsa_p256",
    /// "secp256k1"), with a rate limit if both parts are given.
    #[napi]
    pub fn create_key<'env>(
        &self,
        env: &'env Env,
        name: String,
        key_type_name: String,
        per_second: Option<u32>,
        burst: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, NativeSigningKeyInfo>> {
        let s = self.signer()?;
        let kt = key_type(&key_type_name)?;
        let mut options = KeyOptions::default();
        if let Some(limit) = rate_limit(per_second, burst)? {
            options = options.with_rate_limit(limit);
        }
        env.spawn_future(async move {
            on_signer!(s, create_key(&name, kt, options))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// Adds a version, which signs from now on.
    #[napi]
    pub fn rotate_key<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> napi::Result<PromiseRaw<'env, NativeSigningKeyInfo>> {
        let s = self.signer()?;
        env.spawn_future(async move {
            on_signer!(s, rotate_key(&name))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// Raises the minimum verify version (retiring older versions).
    #[napi]
    pub fn set_min_verify_version<'env>(
        &self,
        env: &'env Env,
        name: String,
        version: u32,
    ) -> napi::Result<PromiseRaw<'env, NativeSigningKeyInfo>> {
        let s = self.signer()?;
        env.spawn_future(async move {
            on_signer!(s, set_min_verify_version(&name, version))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// Sets the rate limit (both parts), or removes it (neither).
    #[napi]
    pub fn set_rate_limit<'env>(
        &self,
        env: &'env Env,
        name: String,
        per_second: Option<u32>,
        burst: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, NativeSigningKeyInfo>> {
        let s = self.signer()?;
        let limit = rate_limit(per_second, burst)?;
        env.spawn_future(async move {
            on_signer!(s, set_rate_limit(&name, limit))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// What is known about key `name`.
    #[napi]
    pub fn key_info<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> napi::Result<PromiseRaw<'env, NativeSigningKeyInfo>> {
        let s = self.signer()?;
        env.spawn_future(async move {
            on_signer!(s, key_info(&name))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// The public key of `version` (the newest if none).
    #[napi]
    pub fn public_key<'env>(
        &self,
        env: &'env Env,
        name: String,
        version: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, NativePublicKey>> {
        let s = self.signer()?;
        env.spawn_future(async move {
            on_signer!(s, public_key(&name, version))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// The Ethereum address of a secp256k1 key's `version` (the newest if
    /// none).
    #[napi]
    pub fn eth_address<'env>(
        &self,
        env: &'env Env,
        name: String,
        version: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let s = self.signer()?;
        env.spawn_future(async move { on_signer!(s, eth_address(&name, version)).map_err(to_js) })
    }

    /// Signs `message` (bytes or UTF-8 text) with the newest version.
    #[napi]
    pub fn sign<'env>(
        &self,
        env: &'env Env,
        name: String,
        message: Either<BufferSlice<'_>, String>,
    ) -> napi::Result<PromiseRaw<'env, NativeSignature>> {
        let s = self.signer()?;
        let msg = plain_bytes(&message).to_vec();
        env.spawn_future(async move {
            on_signer!(s, sign(&name, &msg))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// Whether `signature` (its text form) is a valid signature of
    /// `message` by key `name`; rejects for a retired or unknown version.
    #[napi]
    pub fn verify<'env>(
        &self,
        env: &'env Env,
        name: String,
        message: Either<BufferSlice<'_>, String>,
        signature: String,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let s = self.signer()?;
        let msg = plain_bytes(&message).to_vec();
        let sig: Signature = signature.parse().map_err(to_js)?;
        env.spawn_future(async move { on_signer!(s, verify(&name, &msg, &sig)).map_err(to_js) })
    }

    /// Signs an EIP-191 personal message with the secp256k1 key `name`.
    #[napi]
    pub fn eth_sign_personal_message<'env>(
        &self,
        env: &'env Env,
        name: String,
        message: Either<BufferSlice<'_>, String>,
    ) -> napi::Result<PromiseRaw<'env, NativeEthSignature>> {
        let s = self.signer()?;
        let msg = plain_bytes(&message).to_vec();
        env.spawn_future(async move {
            on_signer!(s, eth_sign_personal_message(&name, &msg))
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// Signs a 32-byte EIP-155 transaction hash for `chain_id` with the
    /// secp256k1 key `name`.
    #[napi]
    pub fn eth_sign_transaction_hash<'env>(
        &self,
        env: &'env Env,
        name: String,
        hash: BufferSlice<'_>,
        chain_id: Either<f64, BigInt>,
    ) -> napi::Result<PromiseRaw<'env, NativeEthSignature>> {
        let s = self.signer()?;
        let hash: [u8; 32] = hash[..].try_into().map_err(|_| {
            invalid(format!(
                "a transaction hash is 32 bytes, got {}",
                hash.len()
            ))
        })?;
        let chain_id = context_version(&chain_id)
            .map_err(|_| invalid("chainId must be a non-negative integer or bigint"))?;
        env.spawn_future(async move {
            on_signer!(s, eth_sign_transaction_hash(&name, &hash, chain_id))
                .map(Into::into)
                .map_err(to_js)
        })
    }
}
