//! What the engine stores, and how it is authenticated.
//!
//! - **Revocation data** (inside the lease record): version 2 is
//!   `0x02 || postcard(RoleRef) || HMAC-SHA256 tag`, the tag keyed by the
//!   engine's record key and bound to the lease's engine and path. Version
//!   1 (`0x01 || postcard{role, definition, statements, owned}`, no MAC)
//!   is still read, but only its role and definition names are used.
//! - **Intent records** (`s/pgdyn/intent/<role>`): a sealed record (the
//!   store's keyring, context = the storage key) holding
//!   `0x02 || postcard{created_at, path, RoleRef}`. Version 1 intents
//!   (`pgdyn/intent/<role>`, plain postcard) are still read by the sweep.
//! - **The record key** (`s/pgdyn/revocation-key`): a sealed record holding
//!   `0x01 || 32 random bytes`, created once per store.
//!
//! `docs/FORMAT.md` ("Dynamic PostgreSQL credentials") is the normative
//! description; the unit tests pin the bytes.

use serde::{Deserialize, Serialize};
use strongroom::SecretBytes;
use strongroom::clock::Timestamp;
use strongroom::dangerous::Door;
use strongroom::seal::SealContext;
use strongroom::storage::BatchOp;
use zeroize::Zeroizing;

use super::REVOCATION_KEY_RECORD;
use super::definition::PgOwnedObjects;
use super::error::{PgDynError, PgDynResult};

/// Revocation data and intents written before authentication (read only).
pub(super) const V1: u8 = 1;
/// Revocation data and intents written now.
pub(crate) const V2: u8 = 2;
/// The record key's plaintext version.
const KEY_RECORD_VERSION: u8 = 1;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 32;
/// Domain label of the revocation-data MAC.
pub(super) const MAC_LABEL: &[u8] = b"strongroom/pgdyn/revocation-data/v2\0";
/// Version of the seal context of intent records and the record key.
const CONTEXT_VERSION: u64 = 0;

/// What a stored record says about a role: its name, the definition it was
/// issued under and the digest of that definition's revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoleRef {
    pub(super) role: String,
    pub(super) definition: String,
    pub(super) digest: [u8; 32],
}

/// A role reference as read from storage: authenticated (version 2), or
/// from an unauthenticated version 1 record, whose role must then pass the
/// name checks and whose definition can only be taken from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredRef {
    pub(super) role: String,
    pub(super) definition: String,
    /// `None` for a version 1 record.
    pub(super) digest: Option<[u8; 32]>,
}

impl From<RoleRef> for StoredRef {
    fn from(r: RoleRef) -> Self {
        Self {
            role: r.role,
            definition: r.definition,
            digest: Some(r.digest),
        }
    }
}

/// The version 1 plan, stored before records were authenticated. Its
/// statements and owned-objects action are decoded to check the framing and
/// then ignored: nothing read from storage is executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LegacyPlan {
    pub(super) role: String,
    pub(super) definition: String,
    pub(super) revocation: Vec<String>,
    pub(super) owned: PgOwnedObjects,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LegacyIntent {
    created_at: Timestamp,
    path: String,
    plan: LegacyPlan,
}

/// An intent record: a role is about to be created, or was and its lease
/// may not be stored yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IntentRecord {
    pub(super) created_at: Timestamp,
    pub(super) path: String,
    pub(super) role: RoleRef,
}

/// An intent as read back: when it was written and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredIntent {
    pub(super) created_at: Timestamp,
    pub(super) path: String,
    pub(super) role: StoredRef,
}

fn corrupt(key: &str, reason: impl Into<String>) -> PgDynError {
    PgDynError::CorruptRecord {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn not_authentic(key: &str) -> PgDynError {
    PgDynError::NotAuthentic {
        key: key.to_owned(),
    }
}

/// Postcard with no trailing bytes.
fn decode_exact<T: for<'de> Deserialize<'de>>(key: &str, body: &[u8]) -> PgDynResult<T> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(corrupt(key, "trailing bytes")),
        Err(e) => Err(corrupt(key, format!("does not decode: {e}"))),
    }
}

fn encode_versioned<T: Serialize>(key: &str, version: u8, value: &T) -> PgDynResult<Vec<u8>> {
    postcard::to_extend(value, vec![version])
        .map_err(|e| corrupt(key, format!("does not encode: {e}")))
}

/// The key that authenticates revocation data: 32 random bytes kept sealed
/// under the store's keyring at [`REVOCATION_KEY_RECORD`], so it is rewrapped
/// with the keyring and its key version cannot be destroyed while it is
/// stored. Loaded for each operation that needs it, never cached.
pub(crate) struct RecordKey(ring::hmac::Key);

impl RecordKey {
    fn context() -> SealContext<'static> {
        SealContext::new(REVOCATION_KEY_RECORD, CONTEXT_VERSION)
    }

    pub(crate) fn from_bytes(raw: &[u8]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, raw))
    }

    fn from_plaintext(plain: &SecretBytes) -> PgDynResult<Self> {
        match plain.expose_secret().split_first() {
            Some((&KEY_RECORD_VERSION, raw)) if raw.len() == KEY_LEN => Ok(Self::from_bytes(raw)),
            Some((&KEY_RECORD_VERSION, _)) => Err(corrupt(REVOCATION_KEY_RECORD, "not 32 bytes")),
            Some((v, _)) => Err(corrupt(
                REVOCATION_KEY_RECORD,
                format!("unknown record version {v}"),
            )),
            None => Err(corrupt(REVOCATION_KEY_RECORD, "empty record")),
        }
    }

    /// The store's record key, if one was created.
    pub(super) async fn load(store: &Door) -> PgDynResult<Option<Self>> {
        match store
            .get_sealed(REVOCATION_KEY_RECORD, &Self::context())
            .await
        {
            Ok(Some(plain)) => Self::from_plaintext(&plain).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(sealed_error(REVOCATION_KEY_RECORD, e)),
        }
    }

    /// The store's record key, created (once, whichever process is first)
    /// if there is none.
    pub(super) async fn load_or_create(store: &Door) -> PgDynResult<Self> {
        for _ in 0..4 {
            if let Some(key) = Self::load(store).await? {
                return Ok(key);
            }
            let raw = SecretBytes::random(KEY_LEN)?;
            let mut plain = Zeroizing::new(Vec::with_capacity(1 + KEY_LEN));
            plain.push(KEY_RECORD_VERSION);
            plain.extend_from_slice(raw.expose_secret());
            let put = store
                .sealed_put(REVOCATION_KEY_RECORD, &plain, &Self::context())
                .await?;
            match store
                .commit(vec![BatchOp::expect(REVOCATION_KEY_RECORD, None), put])
                .await
            {
                Ok(()) => return Ok(Self::from_bytes(raw.expose_secret())),
                // Another process created it first: read theirs.
                Err(strongroom::Error::StorageConflict { key }) if key == REVOCATION_KEY_RECORD => {
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(strongroom::Error::StorageConflict {
            key: REVOCATION_KEY_RECORD.to_owned(),
        }
        .into())
    }

    fn message(engine: &str, path: &str, body: &[u8]) -> Vec<u8> {
        let mut m =
            Vec::with_capacity(MAC_LABEL.len() + 8 + engine.len() + path.len() + body.len());
        m.extend_from_slice(MAC_LABEL);
        for part in [engine.as_bytes(), path.as_bytes()] {
            m.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            m.extend_from_slice(part);
        }
        m.extend_from_slice(body);
        m
    }

    /// Encodes version 2 revocation data for a lease of `engine` at `path`.
    pub(crate) fn seal_revocation(
        &self,
        engine: &str,
        path: &str,
        role: &RoleRef,
    ) -> PgDynResult<Vec<u8>> {
        let mut out = encode_versioned(&role.role, V2, role)?;
        let tag = ring::hmac::sign(&self.0, &Self::message(engine, path, &out));
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Checks and decodes version 2 revocation data of a lease of `engine`
    /// at `path` (`key` names the lease in errors).
    pub(crate) fn open_revocation(
        &self,
        key: &str,
        engine: &str,
        path: &str,
        data: &[u8],
    ) -> PgDynResult<RoleRef> {
        let cut = data
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&n| n > 1)
            .ok_or_else(|| not_authentic(key))?;
        let (body, tag) = data.split_at(cut);
        if body.first() != Some(&V2) {
            return Err(not_authentic(key));
        }
        ring::hmac::verify(&self.0, &Self::message(engine, path, body), tag)
            .map_err(|_| not_authentic(key))?;
        decode_exact(key, body.get(1..).unwrap_or_default())
    }
}

/// The version of a revocation-data or intent record.
pub(crate) fn version_of(key: &str, data: &[u8]) -> PgDynResult<u8> {
    match data.first() {
        Some(&v) if v == V1 || v == V2 => Ok(v),
        Some(v) => Err(corrupt(key, format!("unknown record version {v}"))),
        None => Err(corrupt(key, "empty record")),
    }
}

/// Decodes version 1 (unauthenticated) revocation data.
pub(crate) fn legacy_revocation(key: &str, data: &[u8]) -> PgDynResult<StoredRef> {
    match data.split_first() {
        Some((&V1, body)) => {
            let plan: LegacyPlan = decode_exact(key, body)?;
            Ok(StoredRef {
                role: plan.role,
                definition: plan.definition,
                digest: None,
            })
        }
        _ => Err(corrupt(key, "not a version 1 record")),
    }
}

/// The role a version 2 record claims, read without checking its tag: only
/// ever used to leave that role alone.
pub(crate) fn unverified_role(data: &[u8]) -> Option<String> {
    match data.split_first()? {
        (&V1, body) => postcard::from_bytes::<LegacyPlan>(body)
            .ok()
            .map(|p| p.role),
        (&V2, rest) => {
            let body = rest.get(..rest.len().checked_sub(TAG_LEN)?)?;
            postcard::from_bytes::<RoleRef>(body).ok().map(|r| r.role)
        }
        _ => None,
    }
}

/// Maps a failure to open a sealed record to this engine's errors: any
/// failure of the record itself is [`PgDynError::NotAuthentic`].
fn sealed_error(key: &str, e: strongroom::Error) -> PgDynError {
    match e {
        strongroom::Error::DecryptionFailed
        | strongroom::Error::MalformedSealedValue(_)
        | strongroom::Error::CorruptRecord { .. } => not_authentic(key),
        e => PgDynError::Core(e),
    }
}

/// The seal context of the intent record at `key`: the key itself, so a
/// record moved to another key does not open.
fn intent_context(key: &str) -> SealContext<'_> {
    SealContext::new(key, CONTEXT_VERSION)
}

/// The batch operation that stores `intent` sealed at `key`.
pub(super) async fn seal_intent(
    store: &Door,
    key: &str,
    intent: &IntentRecord,
) -> PgDynResult<BatchOp> {
    let plain = Zeroizing::new(encode_versioned(key, V2, intent)?);
    Ok(store.sealed_put(key, &plain, &intent_context(key)).await?)
}

/// Opens the sealed (version 2) intent record read from `key`.
pub(super) async fn open_intent(
    store: &Door,
    key: &str,
    bytes: Vec<u8>,
) -> PgDynResult<StoredIntent> {
    let plain = store
        .open_record(key, bytes, &intent_context(key))
        .await
        .map_err(|e| sealed_error(key, e))?;
    match plain.expose_secret().split_first() {
        Some((&V2, body)) => {
            let rec: IntentRecord = decode_exact(key, body)?;
            Ok(StoredIntent {
                created_at: rec.created_at,
                path: rec.path,
                role: rec.role.into(),
            })
        }
        Some((v, _)) => Err(corrupt(key, format!("unknown record version {v}"))),
        None => Err(corrupt(key, "empty record")),
    }
}

/// Decodes a version 1 (plain, unauthenticated) intent record.
pub(crate) fn legacy_intent(key: &str, bytes: &[u8]) -> PgDynResult<StoredIntent> {
    match bytes.split_first() {
        Some((&V1, body)) => {
            let rec: LegacyIntent = decode_exact(key, body)?;
            Ok(StoredIntent {
                created_at: rec.created_at,
                path: rec.path,
                role: StoredRef {
                    role: rec.plan.role,
                    definition: rec.plan.definition,
                    digest: None,
                },
            })
        }
        Some((v, _)) => Err(corrupt(key, format!("unknown record version {v}"))),
        None => Err(corrupt(key, "empty record")),
    }
}
