//! How the root key is supplied: raw bytes, a key file, a PKCS#11 token
//! key or Shamir shares.

use std::sync::Arc;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use strongroom::SecretBytes;
use strongroom::protector::SoftwareProtector;

use crate::{invalid, shamir, to_js};

/// Where a PKCS#11 token keeps the key that wraps the root key.
#[napi(object)]
pub struct NativePkcs11Options {
    /// The module library, e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub module: String,
    /// The token's label.
    pub token_label: String,
    /// The user PIN (UTF-8 bytes).
    pub pin: Buffer,
    /// The label of the token key.
    pub key_label: String,
}

/// How the root key is supplied: raw bytes, a key file, a key in a
/// PKCS#11 token, or a key that exists only as Shamir shares.
pub(crate) enum RootKey {
    Software(Box<SoftwareProtector>),
    Pkcs11(strongroom_pkcs11::Pkcs11Config),
    Shamir(Arc<strongroom::shamir::ShamirProtector>),
}

impl RootKey {
    pub(crate) fn from_args(
        key: Option<&[u8]>,
        key_file: Option<&str>,
        pkcs11: Option<NativePkcs11Options>,
        shamir: Option<&shamir::NativeShamirProtector>,
    ) -> napi::Result<Self> {
        match (key, key_file, pkcs11, shamir) {
            (Some(k), None, None, None) => SoftwareProtector::from_key(SecretBytes::copy_from(k))
                .map(|p| Self::Software(Box::new(p)))
                .map_err(to_js),
            (None, Some(p), None, None) => SoftwareProtector::from_key_file(p)
                .map(|p| Self::Software(Box::new(p)))
                .map_err(to_js),
            (None, None, None, Some(s)) => Ok(Self::Shamir(s.inner.clone())),
            (None, None, Some(o), None) => {
                let pin = SecretBytes::copy_from(&o.pin)
                    .into_string()
                    .ok_or_else(|| invalid("the PKCS#11 PIN is not UTF-8"))?;
                Ok(Self::Pkcs11(strongroom_pkcs11::Pkcs11Config::new(
                    o.module,
                    o.token_label,
                    pin,
                    o.key_label,
                )))
            }
            _ => Err(invalid(
                "give exactly one of `key` (32 bytes), `keyFile`, `pkcs11` or `shamir`",
            )),
        }
    }

    /// The protector. A PKCS#11 token key is generated when `create` (for
    /// a new store; refused if the token already holds one with that label)
    /// and opened otherwise.
    pub(crate) async fn protector(
        self,
        create: bool,
    ) -> strongroom::Result<Arc<dyn strongroom::protector::KeyProtector>> {
        use strongroom_pkcs11::Pkcs11Protector;
        Ok(match self {
            Self::Software(p) => Arc::new(*p),
            Self::Shamir(p) => p,
            Self::Pkcs11(c) if create => Arc::new(Pkcs11Protector::init_key(c).await?),
            Self::Pkcs11(c) => Arc::new(Pkcs11Protector::open(c).await?),
        })
    }
}
