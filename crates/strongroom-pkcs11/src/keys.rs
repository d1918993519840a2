//! The token key: finding, generating and describing its versions, and
//! wrapping and unwrapping with it, all blocking calls into the module.

use std::sync::{Arc, Mutex};

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use ring::rand::{SecureRandom as _, SystemRandom};
use strongroom::{Error, ProtectorErrorKind, Result, SecretBytes, SecretString};
use zeroize::Zeroize as _;

use crate::blob::{Blob, encode_header, key_id, parse_blob, version_of};
use crate::config::{TokenKeyInfo, WrapMechanism};
use crate::error::{err, map, map_unwrap, unwrap_failed};
use crate::token;
use crate::token::Token;

/// AES-GCM IV length.
const IV_LEN: usize = 12;
/// AES-GCM tag length in bits.
const TAG_BITS: u64 = 128;
/// Token key length in bytes (AES-256).
const TOKEN_KEY_LEN: u64 = 32;

/// What a protector holds: the token, the PIN to log in again, the key
/// label, the mechanism asked for new versions, and the current version.
pub(crate) struct Inner {
    pub(crate) token: Arc<Token>,
    pub(crate) pin: SecretString,
    pub(crate) key_label: String,
    pub(crate) preferred: Option<WrapMechanism>,
    /// Current key version and its mechanism.
    pub(crate) current: Mutex<(u32, WrapMechanism)>,
}

/// Picks the mechanism for new keys from what the token offers.
pub(crate) fn choose_mechanism(
    token: &Token,
    preferred: Option<WrapMechanism>,
) -> Result<WrapMechanism> {
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

    pub(crate) fn list_versions(&self) -> Result<Vec<u32>> {
        self.token.with_session(
            &self.pin,
            |s| self.versions(s),
            |e| map(e, "listing token key versions"),
        )
    }

    pub(crate) fn find_key(
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

    pub(crate) fn key_not_found(&self, version: u32) -> Error {
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

    pub(crate) fn key_info(&self, version: u32) -> Result<TokenKeyInfo> {
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
    pub(crate) fn generate(&self, version: u32, mechanism: WrapMechanism) -> Result<()> {
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

    pub(crate) fn wrap(&self, root: &SecretBytes) -> Result<Vec<u8>> {
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

    pub(crate) fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
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

/// Serialises creating and destroying persistent token objects within this
/// process. SoftHSM's file object store fails concurrent key generation on
/// one token with `CKR_GENERAL_ERROR`; these calls are rare (init, rotate,
/// destroy), so one process-wide lock costs nothing that matters.
pub(crate) fn token_objects_lock() -> std::sync::MutexGuard<'static, ()> {
    static TOKEN_OBJECTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TOKEN_OBJECTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
