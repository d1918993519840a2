//! Mapping PKCS#11 return values to Strongroom's protector errors.

use cryptoki::error::{Error as CkError, RvError};
use strongroom::{Error, ProtectorErrorKind};

/// The protector name in errors.
pub(crate) const PROTECTOR: &str = "pkcs11";

/// The one message of a failed unwrap, whatever the cause.
pub(crate) const UNWRAP_FAILED: &str = "the wrapped root key does not open with this token key (wrapped by another token or key, or damaged)";

pub(crate) fn err(kind: ProtectorErrorKind, message: impl Into<String>) -> Error {
    Error::protector(PROTECTOR, kind, message)
}

pub(crate) fn unwrap_failed() -> Error {
    err(ProtectorErrorKind::UnwrapFailed, UNWRAP_FAILED)
}

/// The protector error kind for a PKCS#11 return value.
pub(crate) fn kind_of(rv: RvError) -> ProtectorErrorKind {
    use ProtectorErrorKind as K;
    match rv {
        RvError::PinIncorrect | RvError::PinLenRange | RvError::PinInvalid => K::WrongPin,
        RvError::PinLocked | RvError::PinExpired => K::PinLocked,
        RvError::TokenNotPresent
        | RvError::DeviceRemoved
        | RvError::SessionHandleInvalid
        | RvError::SessionClosed => K::TokenRemoved,
        RvError::TokenNotRecognized | RvError::SlotIdInvalid => K::TokenNotFound,
        RvError::KeyHandleInvalid
        | RvError::ObjectHandleInvalid
        | RvError::WrappingKeyHandleInvalid
        | RvError::UnwrappingKeyHandleInvalid => K::KeyNotFound,
        RvError::MechanismInvalid | RvError::MechanismParamInvalid => K::MechanismUnsupported,
        _ => K::Device,
    }
}

/// Maps a cryptoki error, saying what was being done. Never includes PINs or
/// key material (cryptoki errors carry neither).
pub(crate) fn map(e: CkError, doing: &str) -> Error {
    match e {
        CkError::LibraryLoading(e) => err(
            ProtectorErrorKind::ModuleNotFound,
            format!("{doing}: could not load the PKCS#11 module: {e}"),
        ),
        CkError::Pkcs11(rv, function) => {
            let kind = kind_of(rv);
            let hint = match kind {
                ProtectorErrorKind::WrongPin => " (check the user PIN)",
                ProtectorErrorKind::PinLocked => {
                    " (the token's security officer must unlock or reset the user PIN)"
                }
                ProtectorErrorKind::TokenRemoved => " (is the token still connected?)",
                ProtectorErrorKind::KeyNotFound => " (was the token key deleted?)",
                _ => "",
            };
            err(kind, format!("{doing}: {function} returned {rv:?}{hint}"))
        }
        other => err(ProtectorErrorKind::Device, format!("{doing}: {other}")),
    }
}

/// Maps a failure of the decrypt or unwrap step: anything but a lost token
/// or login becomes the one opaque [`ProtectorErrorKind::UnwrapFailed`]
/// (SoftHSM reports a GCM tag mismatch as `CKR_GENERAL_ERROR`).
pub(crate) fn map_unwrap(e: CkError) -> Error {
    if let CkError::Pkcs11(rv, _) = &e {
        match kind_of(*rv) {
            ProtectorErrorKind::TokenRemoved
            | ProtectorErrorKind::WrongPin
            | ProtectorErrorKind::PinLocked => return map(e, "unwrapping the root key"),
            _ => {}
        }
        if *rv == RvError::UserNotLoggedIn {
            return map(e, "unwrapping the root key");
        }
    }
    unwrap_failed()
}

/// Whether a session that returned this error should be thrown away rather
/// than go back to the pool.
pub(crate) fn session_is_dead(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::TokenNotPresent
                | RvError::DeviceRemoved
                | RvError::DeviceError,
            _
        )
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cryptoki::context::Function;

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
            let e = map(CkError::Pkcs11(rv, Function::Login), "testing");
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
            let e = map_unwrap(CkError::Pkcs11(rv, Function::Decrypt));
            assert_eq!(
                e.to_string(),
                format!("key protector pkcs11: unwrap failed: {}", UNWRAP_FAILED)
            );
        }
        // but a pulled token is still reported as such
        let e = map_unwrap(CkError::Pkcs11(RvError::DeviceRemoved, Function::Decrypt));
        assert!(matches!(
            e,
            Error::Protector {
                kind: K::TokenRemoved,
                ..
            }
        ));
    }
}
