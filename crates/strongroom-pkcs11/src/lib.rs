//! # strongroom-pkcs11
//!
//! A [`KeyProtector`] that keeps the key wrapping Strongroom's root key inside
//! a PKCS#11 token (an HSM, a smart card, or SoftHSM2 for tests). The token
//! key is an AES-256 secret key generated in the token, marked sensitive and
//! not extractable: the root key is sent to the token to be wrapped and comes
//! back unwrapped, but the token key never leaves it.
//!
//! ```no_run
//! # async fn demo() -> strongroom::Result<()> {
//! use strongroom::{SecretBytes, SecretString};
//! use strongroom::protector::KeyProtector;
//! use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector};
//!
//! let pin = SecretString::from("1234"); // from your secret source, never a literal
//! let config = Pkcs11Config::new("/usr/lib/softhsm/libsofthsm2.so", "strongroom", pin, "root-kek");
//! let hsm = Pkcs11Protector::init_key(config).await?; // once; later Pkcs11Protector::open
//! let root = SecretBytes::random(32)?;
//! let wrapped = hsm.wrap(&root).await?;
//! assert_eq!(hsm.unwrap(&wrapped).await?, root);
//! # Ok(()) }
//! ```
//!
//! ## Mechanisms
//! The token key wraps the root key with `CKM_AES_GCM` encryption when the
//! token offers it (authenticated, and the blob header is bound as
//! associated data), else with `CKM_AES_KEY_WRAP_PAD` (RFC 5649) through
//! `C_WrapKey`/`C_UnwrapKey`. [`Pkcs11Protector::mechanism`] says which was
//! chosen and [`Pkcs11Protector::token_mechanisms`] lists what the token
//! offers.
//!
//! ## Wrapped blob (format version 1)
//! `version (1) || mechanism (1) || key version (u32 BE) || label length (1)
//! || label || body`, where the body is `IV (12) || ciphertext || tag (16)`
//! for AES-GCM (associated data: everything before the body) and the
//! RFC 5649 output for key wrap with padding.
//!
//! ## Process-wide state
//! One PKCS#11 context per module per process (`C_Initialize` runs once),
//! one pool of logged-in sessions per token; every call into the module runs
//! on `tokio::task::spawn_blocking`.
#![deny(missing_docs)]
// This crate contains no unsafe code of its own: cryptoki wraps the FFI.
#![forbid(unsafe_code)]

mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod token;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cryptoki::error::Error as CkError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use ring::rand::{SecureRandom as _, SystemRandom};
use strongroom::protector::KeyProtector;
use strongroom::{Error, ProtectorErrorKind, Result, SecretBytes, SecretString};
use zeroize::Zeroize as _;

use crate::error::{err, map, map_unwrap, unwrap_failed};
use crate::token::Token;

/// Format version of wrapped blobs.
const BLOB_VERSION: u8 = 1;
/// AES-GCM IV length.
const IV_LEN: usize = 12;
/// AES-GCM tag length in bits.
const TAG_BITS: u64 = 128;
/// Token key length in bytes (AES-256).
const TOKEN_KEY_LEN: u64 = 32;

/// How the token key wraps the root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WrapMechanism {
    /// `CKM_AES_GCM` through `C_Encrypt`/`C_Decrypt`, with a random 96-bit IV
    /// and the blob header as associated data.
    AesGcm,
    /// `CKM_AES_KEY_WRAP_PAD` (RFC 5649) through `C_WrapKey`/`C_UnwrapKey`.
    AesKeyWrapPad,
}

impl WrapMechanism {
    fn id(self) -> u8 {
        match self {
            Self::AesGcm => 1,
            Self::AesKeyWrapPad => 2,
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::AesGcm),
            2 => Some(Self::AesKeyWrapPad),
            _ => None,
        }
    }

    fn mechanism_type(self) -> MechanismType {
        match self {
            Self::AesGcm => MechanismType::AES_GCM,
            Self::AesKeyWrapPad => MechanismType::AES_KEY_WRAP_PAD,
        }
    }
}

impl fmt::Display for WrapMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AesGcm => "CKM_AES_GCM",
            Self::AesKeyWrapPad => "CKM_AES_KEY_WRAP_PAD",
        })
    }
}

/// Where the token key lives and how to reach it.
///
/// The PIN comes from the caller (a secret store, a prompt, a file the
/// operator chose); it is never read from the environment and never logged.
/// `Debug` redacts it.
#[derive(Clone)]
pub struct Pkcs11Config {
    module_path: PathBuf,
    token_label: String,
    pin: SecretString,
    key_label: String,
    mechanism: Option<WrapMechanism>,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module_path", &self.module_path)
            .field("token_label", &self.token_label)
            .field("pin", &"[REDACTED]")
            .field("key_label", &self.key_label)
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

impl Pkcs11Config {
    /// A configuration: the module library, the token's label (not a slot
    /// id, which may change), the user PIN, and the label of the token key.
    pub fn new(
        module_path: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin: SecretString,
        key_label: impl Into<String>,
    ) -> Self {
        Self {
            module_path: module_path.into(),
            token_label: token_label.into(),
            pin,
            key_label: key_label.into(),
            mechanism: None,
        }
    }

    /// Forces a wrapping mechanism for keys this protector generates
    /// (default: AES-GCM when offered, else AES key wrap with padding).
    pub fn with_mechanism(mut self, mechanism: WrapMechanism) -> Self {
        self.mechanism = Some(mechanism);
        self
    }

    /// The module path.
    pub fn module_path(&self) -> &std::path::Path {
        &self.module_path
    }

    /// The token label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// The token key's label.
    pub fn key_label(&self) -> &str {
        &self.key_label
    }

    fn check(&self) -> Result<()> {
        if self.token_label.is_empty() || self.token_label.len() > 32 {
            return Err(err(
                ProtectorErrorKind::Config,
                "the token label must be 1 to 32 characters",
            ));
        }
        if self.key_label.is_empty() || self.key_label.len() > 255 {
            return Err(err(
                ProtectorErrorKind::Config,
                "the key label must be 1 to 255 bytes",
            ));
        }
        if self.pin.expose_secret().is_empty() {
            return Err(err(ProtectorErrorKind::Config, "the PIN is empty"));
        }
        Ok(())
    }
}

/// Attributes of a token key as the token reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenKeyInfo {
    /// `CKA_LABEL`.
    pub label: String,
    /// The key version (`CKA_ID`, 4 bytes big-endian).
    pub version: u32,
    /// `CKA_TOKEN`: stored on the token (not a session object).
    pub token: bool,
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_LOCAL`: generated on the token.
    pub local: bool,
    /// `CKA_VALUE_LEN` in bytes.
    pub value_len: u64,
    /// The mechanism the key's usage attributes allow.
    pub mechanism: WrapMechanism,
}

/// A [`KeyProtector`] backed by an AES-256 key inside a PKCS#11 token.
///
/// Cheap to clone; clones share the current key version.
#[derive(Clone)]
pub struct Pkcs11Protector {
    inner: Arc<Inner>,
}

struct Inner {
    token: Arc<Token>,
    pin: SecretString,
    key_label: String,
    preferred: Option<WrapMechanism>,
    /// Current key version and its mechanism.
    current: Mutex<(u32, WrapMechanism)>,
}

impl fmt::Debug for Pkcs11Protector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (version, mechanism) = self.current();
        f.debug_struct("Pkcs11Protector")
            .field("token", &self.inner.token.label)
            .field("key_label", &self.inner.key_label)
            .field("key_version", &version)
            .field("mechanism", &mechanism)
            .finish_non_exhaustive()
    }
}

/// Runs blocking PKCS#11 work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        err(
            ProtectorErrorKind::Device,
            format!("the PKCS#11 worker task failed: {e}"),
        )
    })?
}

fn key_id(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

fn version_of(id: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(id).ok().map(u32::from_be_bytes)
}

/// Picks the mechanism for new keys from what the token offers.
fn choose_mechanism(token: &Token, preferred: Option<WrapMechanism>) -> Result<WrapMechanism> {
    let supports = |m: WrapMechanism| -> bool {
        let t = m.mechanism_type();
        if !token.mechanisms.contains(&t) {
            return false;
        }
        match token.ctx.get_mechanism_info(token.slot, t) {
            Ok(info) => match m {
                WrapMechanism::AesGcm => info.encrypt() && info.decrypt(),
                WrapMechanism::AesKeyWrapPad => info.wrap() && info.unwrap(),
            },
            Err(_) => false,
        }
    };
    let keygen_ok = token.mechanisms.contains(&MechanismType::AES_KEY_GEN)
        && token
            .ctx
            .get_mechanism_info(token.slot, MechanismType::AES_KEY_GEN)
            .map(|i| i.generate() && i.max_key_size() >= 32 && i.min_key_size() <= 32)
            .unwrap_or(false);
    if !keygen_ok {
        return Err(err(
            ProtectorErrorKind::MechanismUnsupported,
            format!(
                "token {:?} cannot generate AES-256 keys (CKM_AES_KEY_GEN)",
                token.label
            ),
        ));
    }
    let candidates: &[WrapMechanism] = match preferred {
        Some(WrapMechanism::AesGcm) => &[WrapMechanism::AesGcm],
        Some(WrapMechanism::AesKeyWrapPad) => &[WrapMechanism::AesKeyWrapPad],
        None => &[WrapMechanism::AesGcm, WrapMechanism::AesKeyWrapPad],
    };
    candidates
        .iter()
        .copied()
        .find(|&m| supports(m))
        .ok_or_else(|| {
            err(
                ProtectorErrorKind::MechanismUnsupported,
                format!(
                    "token {:?} offers none of {candidates:?} for wrapping with an AES key",
                    token.label
                ),
            )
        })
}

/// A parsed wrapped blob.
struct Blob<'a> {
    header: &'a [u8],
    mechanism: WrapMechanism,
    version: u32,
    label: &'a [u8],
    body: &'a [u8],
}

fn encode_header(mechanism: WrapMechanism, version: u32, label: &str) -> Result<Vec<u8>> {
    let len = u8::try_from(label.len()).map_err(|_| {
        err(
            ProtectorErrorKind::Config,
            "key label longer than 255 bytes",
        )
    })?;
    let mut h = Vec::with_capacity(7 + label.len());
    h.push(BLOB_VERSION);
    h.push(mechanism.id());
    h.extend_from_slice(&version.to_be_bytes());
    h.push(len);
    h.extend_from_slice(label.as_bytes());
    Ok(h)
}

fn parse_blob(bytes: &[u8]) -> Option<Blob<'_>> {
    let (&version_byte, rest) = bytes.split_first()?;
    if version_byte != BLOB_VERSION {
        return None;
    }
    let (&mech, rest) = rest.split_first()?;
    let mechanism = WrapMechanism::from_id(mech)?;
    let kv = rest.get(..4)?;
    let version = version_of(kv)?;
    let (&len, rest) = rest.get(4..)?.split_first()?;
    let label = rest.get(..usize::from(len))?;
    let body = rest.get(usize::from(len)..)?;
    let header = bytes.get(..7 + usize::from(len))?;
    if body.is_empty() {
        return None;
    }
    Some(Blob {
        header,
        mechanism,
        version,
        label,
        body,
    })
}

impl Inner {
    /// All versions of the key label on the token, ascending.
    fn versions(&self, session: &Session) -> std::result::Result<Vec<u32>, CkError> {
        let handles = session.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
        ])?;
        let mut versions = Vec::with_capacity(handles.len());
        for h in handles {
            for a in session.get_attributes(h, &[AttributeType::Id])? {
                if let Attribute::Id(id) = a
                    && let Some(v) = version_of(&id)
                {
                    versions.push(v);
                }
            }
        }
        versions.sort_unstable();
        versions.dedup();
        Ok(versions)
    }

    fn list_versions(&self) -> Result<Vec<u32>> {
        self.token.with_session(
            &self.pin,
            |s| self.versions(s),
            |e| map(e, "listing token key versions"),
        )
    }

    fn find_key(
        &self,
        session: &Session,
        version: u32,
    ) -> std::result::Result<Option<ObjectHandle>, CkError> {
        Ok(session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(self.key_label.as_bytes().to_vec()),
                Attribute::Id(key_id(version)),
            ])?
            .into_iter()
            .next())
    }

    fn key_not_found(&self, version: u32) -> Error {
        if !self.token.is_present() {
            return err(
                ProtectorErrorKind::TokenRemoved,
                format!(
                    "token {:?} is no longer in slot {} (removed or deleted?)",
                    self.token.label,
                    self.token.slot.id()
                ),
            );
        }
        err(
            ProtectorErrorKind::KeyNotFound,
            format!(
                "token key {:?} version {version} is not on token {:?} (deleted, or another token?)",
                self.key_label, self.token.label
            ),
        )
    }

    fn key_info(&self, version: u32) -> Result<TokenKeyInfo> {
        let attrs = self.token.with_session(
            &self.pin,
            |s| {
                let Some(h) = self.find_key(s, version)? else {
                    return Ok(None);
                };
                s.get_attributes(
                    h,
                    &[
                        AttributeType::Token,
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::NeverExtractable,
                        AttributeType::Local,
                        AttributeType::ValueLen,
                        AttributeType::Encrypt,
                        AttributeType::Wrap,
                    ],
                )
                .map(Some)
            },
            |e| map(e, "reading token key attributes"),
        )?;
        let attrs = attrs.ok_or_else(|| self.key_not_found(version))?;
        let mut info = TokenKeyInfo {
            label: self.key_label.clone(),
            version,
            token: false,
            sensitive: false,
            extractable: true,
            never_extractable: false,
            local: false,
            value_len: 0,
            mechanism: WrapMechanism::AesGcm,
        };
        let (mut encrypt, mut wrap) = (false, false);
        for a in attrs {
            match a {
                Attribute::Token(v) => info.token = v,
                Attribute::Sensitive(v) => info.sensitive = v,
                Attribute::Extractable(v) => info.extractable = v,
                Attribute::NeverExtractable(v) => info.never_extractable = v,
                Attribute::Local(v) => info.local = v,
                Attribute::ValueLen(v) => info.value_len = u64::from(v),
                Attribute::Encrypt(v) => encrypt = v,
                Attribute::Wrap(v) => wrap = v,
                _ => {}
            }
        }
        info.mechanism = match (encrypt, wrap) {
            (true, _) => WrapMechanism::AesGcm,
            (false, true) => WrapMechanism::AesKeyWrapPad,
            (false, false) => {
                return Err(err(
                    ProtectorErrorKind::Config,
                    format!(
                        "token key {:?} version {version} allows neither encryption nor wrapping",
                        self.key_label
                    ),
                ));
            }
        };
        Ok(info)
    }

    /// Generates a new key version in the token.
    fn generate(&self, version: u32, mechanism: WrapMechanism) -> Result<()> {
        let gcm = mechanism == WrapMechanism::AesGcm;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(TOKEN_KEY_LEN.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
            Attribute::Id(key_id(version)),
            Attribute::Encrypt(gcm),
            Attribute::Decrypt(gcm),
            Attribute::Wrap(!gcm),
            Attribute::Unwrap(!gcm),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
        ];
        self.token.with_session(
            &self.pin,
            |s| {
                let _writing = token_objects_lock();
                s.generate_key(&Mechanism::AesKeyGen, &template)
            },
            |e| map(e, "generating the token key"),
        )?;
        tracing::info!(
            token = %self.token.label,
            key_label = %self.key_label,
            version,
            %mechanism,
            "generated a token key"
        );
        Ok(())
    }

    fn wrap(&self, root: &SecretBytes) -> Result<Vec<u8>> {
        let (version, mechanism) = *token::lock(&self.current);
        let mut blob = encode_header(mechanism, version, &self.key_label)?;
        let header = blob.clone();
        let mut iv = [0u8; IV_LEN];
        SystemRandom::new()
            .fill(&mut iv)
            .map_err(|_| Error::Random)?;
        let body = self.token.with_session(
            &self.pin,
            |s| {
                let Some(key) = self.find_key(s, version)? else {
                    return Ok(None);
                };
                match mechanism {
                    WrapMechanism::AesGcm => {
                        // A retry (after a lost login) never reaches the
                        // token twice with this IV: the first try failed
                        // before encrypting.
                        let mut iv_param = iv;
                        let params = GcmParams::new(&mut iv_param, &header, TAG_BITS.into())?;
                        let ct =
                            s.encrypt(&Mechanism::AesGcm(params), key, root.expose_secret())?;
                        let mut body = iv.to_vec();
                        body.extend_from_slice(&ct);
                        Ok(Some(body))
                    }
                    WrapMechanism::AesKeyWrapPad => {
                        let mut template = vec![
                            Attribute::Class(ObjectClass::SECRET_KEY),
                            Attribute::KeyType(KeyType::GENERIC_SECRET),
                            Attribute::Token(false),
                            Attribute::Private(true),
                            Attribute::Sensitive(true),
                            Attribute::Extractable(true),
                            Attribute::Value(root.expose_secret().to_vec()),
                        ];
                        let created = s.create_object(&template);
                        for a in &mut template {
                            if let Attribute::Value(v) = a {
                                v.zeroize();
                            }
                        }
                        let tmp = created?;
                        let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, key, tmp);
                        let destroyed = s.destroy_object(tmp);
                        let wrapped = wrapped?;
                        destroyed?;
                        Ok(Some(wrapped))
                    }
                }
            },
            |e| map(e, "wrapping the root key"),
        )?;
        let body = body.ok_or_else(|| self.key_not_found(version))?;
        blob.extend_from_slice(&body);
        Ok(blob)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
        let blob = parse_blob(wrapped).ok_or_else(unwrap_failed)?;
        if blob.label != self.key_label.as_bytes() {
            return Err(err(
                ProtectorErrorKind::UnwrapFailed,
                format!(
                    "the root key was wrapped by token key {:?}, this protector uses {:?}",
                    String::from_utf8_lossy(blob.label),
                    self.key_label
                ),
            ));
        }
        let plain = self.token.with_session(
            &self.pin,
            |s| {
                let Some(key) = self.find_key(s, blob.version)? else {
                    return Ok(Err(self.key_not_found(blob.version)));
                };
                Ok(self.unwrap_with(s, key, &blob))
            },
            |e| map(e, "unwrapping the root key"),
        )??;
        Ok(plain)
    }

    /// The cryptographic step of unwrap; every failure is opaque.
    fn unwrap_with(&self, s: &Session, key: ObjectHandle, blob: &Blob<'_>) -> Result<SecretBytes> {
        match blob.mechanism {
            WrapMechanism::AesGcm => {
                let (iv, ct) = blob
                    .body
                    .split_at_checked(IV_LEN)
                    .ok_or_else(unwrap_failed)?;
                if ct.len() < 16 {
                    return Err(unwrap_failed());
                }
                let mut iv = <[u8; IV_LEN]>::try_from(iv).map_err(|_| unwrap_failed())?;
                let params =
                    GcmParams::new(&mut iv, blob.header, TAG_BITS.into()).map_err(map_unwrap)?;
                s.decrypt(&Mechanism::AesGcm(params), key, ct)
                    .map(SecretBytes::new)
                    .map_err(map_unwrap)
            }
            WrapMechanism::AesKeyWrapPad => {
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ];
                let tmp = s
                    .unwrap_key(&Mechanism::AesKeyWrapPad, key, blob.body, &template)
                    .map_err(map_unwrap)?;
                let value = s.get_attributes(tmp, &[AttributeType::Value]);
                let destroyed = s.destroy_object(tmp);
                let mut out = None;
                for a in value.map_err(map_unwrap)? {
                    if let Attribute::Value(v) = a {
                        out = Some(SecretBytes::new(v));
                    }
                }
                destroyed.map_err(|e| map(e, "destroying the temporary unwrapped key"))?;
                out.ok_or_else(unwrap_failed)
            }
        }
    }
}

impl Pkcs11Protector {
    fn connect(config: &Pkcs11Config) -> Result<Arc<Token>> {
        config.check()?;
        let token = Token::open(&config.module_path, &config.token_label)?;
        token.login(&config.pin)?;
        Ok(token)
    }

    /// Generates version 1 of the token key (AES-256, on the token,
    /// sensitive, not extractable) and returns a protector using it. Fails
    /// with a configuration error if the key label is already on the token
    /// (use [`Pkcs11Protector::open`] for that).
    pub async fn init_key(config: Pkcs11Config) -> Result<Self> {
        blocking(move || {
            let token = Self::connect(&config)?;
            let mechanism = choose_mechanism(&token, config.mechanism)?;
            let inner = Inner {
                token,
                pin: config.pin,
                key_label: config.key_label,
                preferred: config.mechanism,
                current: Mutex::new((1, mechanism)),
            };
            let existing = inner.list_versions()?;
            if let Some(v) = existing.last() {
                return Err(err(
                    ProtectorErrorKind::Config,
                    format!(
                        "token {:?} already holds key {:?} (version {v}); use Pkcs11Protector::open",
                        inner.token.label, inner.key_label
                    ),
                ));
            }
            inner.generate(1, mechanism)?;
            Ok(Self {
                inner: Arc::new(inner),
            })
        })
        .await
    }

    /// Opens the newest version of an existing token key.
    pub async fn open(config: Pkcs11Config) -> Result<Self> {
        blocking(move || {
            let token = Self::connect(&config)?;
            let inner = Inner {
                token,
                pin: config.pin,
                key_label: config.key_label,
                preferred: config.mechanism,
                current: Mutex::new((0, WrapMechanism::AesGcm)),
            };
            let latest = inner.list_versions()?.last().copied().ok_or_else(|| {
                err(
                    ProtectorErrorKind::KeyNotFound,
                    format!(
                        "token {:?} holds no key labelled {:?}; run Pkcs11Protector::init_key first",
                        inner.token.label, inner.key_label
                    ),
                )
            })?;
            let info = inner.key_info(latest)?;
            *token::lock(&inner.current) = (latest, info.mechanism);
            Ok(Self {
                inner: Arc::new(inner),
            })
        })
        .await
    }

    fn current(&self) -> (u32, WrapMechanism) {
        *token::lock(&self.inner.current)
    }

    /// The key version new wraps use.
    pub fn current_version(&self) -> u32 {
        self.current().0
    }

    /// The mechanism new wraps use.
    pub fn mechanism(&self) -> WrapMechanism {
        self.current().1
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.inner.token.label
    }

    /// The token key's label.
    pub fn key_label(&self) -> &str {
        &self.inner.key_label
    }

    /// Every mechanism the token offers, by name (`CKM_...`).
    pub fn token_mechanisms(&self) -> Vec<String> {
        self.inner
            .token
            .mechanisms
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The versions of the token key on the token, ascending.
    pub async fn key_versions(&self) -> Result<Vec<u32>> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.list_versions()).await
    }

    /// The token's view of a key version's attributes.
    pub async fn key_info(&self, version: u32) -> Result<TokenKeyInfo> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.key_info(version)).await
    }

    /// Generates the next token key version and makes it current. Rewrap the
    /// stored root key with [`Pkcs11Protector::rewrap`], then remove the old
    /// version with [`Pkcs11Protector::destroy_key_version`].
    pub async fn rotate(&self) -> Result<u32> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mechanism = choose_mechanism(&inner.token, inner.preferred)?;
            let next = inner
                .list_versions()?
                .last()
                .copied()
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| err(ProtectorErrorKind::Config, "key versions exhausted"))?;
            inner.generate(next, mechanism)?;
            *token::lock(&inner.current) = (next, mechanism);
            Ok(next)
        })
        .await
    }

    /// Unwraps a blob made under any version still on the token and wraps
    /// the root key again under the current version.
    pub async fn rewrap(&self, wrapped: &[u8]) -> Result<Vec<u8>> {
        let inner = Arc::clone(&self.inner);
        let wrapped = wrapped.to_vec();
        blocking(move || {
            let root = inner.unwrap(&wrapped)?;
            inner.wrap(&root)
        })
        .await
    }

    /// The key version a wrapped blob needs, if the blob is well formed.
    pub fn wrapped_key_version(wrapped: &[u8]) -> Option<u32> {
        parse_blob(wrapped).map(|b| b.version)
    }

    /// Deletes an old token key version, after checking that none of
    /// `stores` still has its root key wrapped under it (run
    /// [`KeyAdmin::rotate_root_key`](strongroom::authorized::KeyAdmin::rotate_root_key)
    /// with this protector after [`Pkcs11Protector::rotate`] first). A store
    /// whose root key another protector holds is not affected and passes.
    /// Refused with a `Config` error naming the version otherwise.
    pub async fn destroy_unused_key_version(
        &self,
        version: u32,
        stores: &[strongroom::storage::DynStorage],
    ) -> Result<()> {
        for storage in stores {
            let record = strongroom::WrappedRootKey::read(storage).await?;
            if record.protector_kind == self.kind()
                && Self::wrapped_key_version(&record.wrapped) == Some(version)
            {
                return Err(err(
                    ProtectorErrorKind::Config,
                    format!(
                        "token key version {version} still wraps a store's root key (storage {}); run rotate_root_key with this protector first",
                        storage.backend()
                    ),
                ));
            }
        }
        self.destroy_key_version(version).await
    }

    /// Deletes an old token key version. Blobs wrapped under it can no longer
    /// be unwrapped. The current version cannot be deleted. Prefer
    /// [`Pkcs11Protector::destroy_unused_key_version`], which checks the
    /// stores first.
    pub async fn destroy_key_version(&self, version: u32) -> Result<()> {
        if version == self.current_version() {
            return Err(err(
                ProtectorErrorKind::Config,
                format!("version {version} is the current token key; rotate first"),
            ));
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let found = inner.token.with_session(
                &inner.pin,
                |s| match inner.find_key(s, version)? {
                    Some(h) => {
                        let _writing = token_objects_lock();
                        s.destroy_object(h).map(|()| true)
                    }
                    None => Ok(false),
                },
                |e| map(e, "destroying a token key version"),
            )?;
            if !found {
                return Err(inner.key_not_found(version));
            }
            tracing::info!(
                token = %inner.token.label,
                key_label = %inner.key_label,
                version,
                "destroyed a token key version"
            );
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl KeyProtector for Pkcs11Protector {
    fn kind(&self) -> &'static str {
        error::PROTECTOR
    }

    async fn wrap(&self, root_key: &SecretBytes) -> Result<Vec<u8>> {
        let inner = Arc::clone(&self.inner);
        let root = root_key.clone();
        blocking(move || inner.wrap(&root)).await
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
        let inner = Arc::clone(&self.inner);
        let wrapped = wrapped.to_vec();
        blocking(move || inner.unwrap(&wrapped)).await
    }
}

/// Serialises creating and destroying persistent token objects within this
/// process. SoftHSM's file object store fails concurrent key generation on
/// one token with `CKR_GENERAL_ERROR`; these calls are rare (init, rotate,
/// destroy), so one process-wide lock costs nothing that matters.
fn token_objects_lock() -> std::sync::MutexGuard<'static, ()> {
    static TOKEN_OBJECTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TOKEN_OBJECTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cryptoki::context::Function;
    use cryptoki::error::RvError;

    #[test]
    fn blob_header_round_trips_and_rejects_damage() {
        let mut blob = encode_header(WrapMechanism::AesGcm, 7, "root").unwrap();
        blob.extend_from_slice(&[0xAA; 60]);
        let b = parse_blob(&blob).unwrap();
        assert_eq!(b.version, 7);
        assert_eq!(b.mechanism, WrapMechanism::AesGcm);
        assert_eq!(b.label, b"root");
        assert_eq!(b.header, &blob[..11]);
        assert_eq!(b.body.len(), 60);
        assert_eq!(Pkcs11Protector::wrapped_key_version(&blob), Some(7));

        let mut bad_version = blob.clone();
        bad_version[0] = 2;
        assert!(parse_blob(&bad_version).is_none());
        let mut bad_mech = blob.clone();
        bad_mech[1] = 9;
        assert!(parse_blob(&bad_mech).is_none());
        // label longer than the blob, header only, empty
        let mut long_label = blob[..7].to_vec();
        long_label[6] = 200;
        assert!(parse_blob(&long_label).is_none());
        assert!(parse_blob(&blob[..11]).is_none());
        assert!(parse_blob(&[]).is_none());
        assert!(encode_header(WrapMechanism::AesGcm, 1, &"x".repeat(256)).is_err());
    }

    #[test]
    fn return_values_map_to_actionable_kinds() {
        use ProtectorErrorKind as K;
        let cases = [
            (RvError::PinIncorrect, K::WrongPin),
            (RvError::PinLocked, K::PinLocked),
            (RvError::TokenNotPresent, K::TokenRemoved),
            (RvError::DeviceRemoved, K::TokenRemoved),
            (RvError::KeyHandleInvalid, K::KeyNotFound),
            (RvError::MechanismInvalid, K::MechanismUnsupported),
            (RvError::SlotIdInvalid, K::TokenNotFound),
            (RvError::GeneralError, K::Device),
        ];
        for (rv, kind) in cases {
            let e = error::map(CkError::Pkcs11(rv, Function::Login), "testing");
            assert!(
                matches!(e, Error::Protector { protector: "pkcs11", kind: k, .. } if k == kind),
                "{rv:?}: {e:?}"
            );
        }
        // a failed unwrap says nothing more, whatever the token said
        for rv in [
            RvError::GeneralError,
            RvError::EncryptedDataInvalid,
            RvError::WrappedKeyInvalid,
            RvError::KeyFunctionNotPermitted,
        ] {
            let e = error::map_unwrap(CkError::Pkcs11(rv, Function::Decrypt));
            assert_eq!(
                e.to_string(),
                format!(
                    "key protector pkcs11: unwrap failed: {}",
                    error::UNWRAP_FAILED
                )
            );
        }
        // but a pulled token is still reported as such
        let e = error::map_unwrap(CkError::Pkcs11(RvError::DeviceRemoved, Function::Decrypt));
        assert!(matches!(
            e,
            Error::Protector {
                kind: K::TokenRemoved,
                ..
            }
        ));
    }
}
