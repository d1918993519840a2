//! The process-wide PKCS#11 state: one initialised context per module, one
//! handle per token with a pool of logged-in sessions.
//!
//! `C_Initialize` may be called once per process and module, and the login
//! state belongs to the application (every session of a token shares it), so
//! both live here, in statics, shared by every protector.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ring::digest;
use ring::rand::{SecureRandom as _, SystemRandom};
use strongroom::{Error, ProtectorErrorKind, Result, SecretString};
use subtle::ConstantTimeEq as _;

use crate::error::{err, map};

/// Sessions kept open per token beyond those in use.
const MAX_IDLE_SESSIONS: usize = 8;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind
    // (a list of sessions, a digest); carrying on is safe.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Initialised contexts by canonical module path.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(Default::default)
}

/// Token handles by (canonical module path, token label).
type TokenMap = HashMap<(PathBuf, String), Arc<Token>>;

fn tokens() -> &'static Mutex<TokenMap> {
    static TOKENS: OnceLock<Mutex<TokenMap>> = OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// The context for `path`, loading and initialising the module on first use.
fn module(path: &Path) -> Result<(PathBuf, Pkcs11)> {
    let canonical = std::fs::canonicalize(path).map_err(|e| {
        err(
            ProtectorErrorKind::ModuleNotFound,
            format!(
                "PKCS#11 module {} cannot be opened: {e} (install the HSM vendor's library; for SoftHSM2 run scripts/setup-softhsm.sh)",
                path.display()
            ),
        )
    })?;
    let mut modules = lock(modules());
    if let Some(ctx) = modules.get(&canonical) {
        return Ok((canonical, ctx.clone()));
    }
    let ctx = Pkcs11::new(&canonical).map_err(|e| match e {
        CkError::LibraryLoading(e) => err(
            ProtectorErrorKind::ModuleNotFound,
            format!(
                "{} is not a loadable PKCS#11 module: {e}",
                canonical.display()
            ),
        ),
        other => map(other, &format!("loading {}", canonical.display())),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone else in this process initialised the module: share it.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(map(e, "initialising the PKCS#11 module")),
    }
    modules.insert(canonical.clone(), ctx.clone());
    Ok((canonical, ctx))
}

/// One token in one module, shared by every protector that uses it.
pub(crate) struct Token {
    pub(crate) ctx: Pkcs11,
    pub(crate) slot: Slot,
    pub(crate) label: String,
    idle: Mutex<Vec<Session>>,
    /// Salted digest of the PIN this process logged in with, if any.
    login: Mutex<Option<[u8; 32]>>,
    salt: [u8; 16],
    /// Every mechanism the token offers.
    pub(crate) mechanisms: Vec<MechanismType>,
}

impl Token {
    /// Finds (or reuses) the token labelled `label` in the module at `path`.
    pub(crate) fn open(path: &Path, label: &str) -> Result<Arc<Self>> {
        let (canonical, ctx) = module(path)?;
        let key = (canonical, label.to_owned());
        let mut tokens = lock(tokens());
        if let Some(t) = tokens.get(&key) {
            // Still the same token in the same slot? (A token pulled out and
            // put back may come back in another slot.)
            match t.ctx.get_token_info(t.slot) {
                Ok(info) if info.label().trim_end() == label => return Ok(Arc::clone(t)),
                _ => {
                    tokens.remove(&key);
                }
            }
        }
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| map(e, "listing slots"))?;
        let mut found = None;
        let mut labels = Vec::new();
        for slot in slots {
            let info = match ctx.get_token_info(slot) {
                Ok(info) => info,
                // A token pulled out (or deleted) while we looked is simply
                // not there; SoftHSM says CKR_GENERAL_ERROR for a deleted one.
                Err(e) => {
                    tracing::debug!(slot = slot.id(), error = %e, "skipping unreadable slot");
                    continue;
                }
            };
            let this = info.label().trim_end();
            if this == label {
                found = Some(slot);
                break;
            }
            labels.push(this.to_owned());
        }
        let slot = found.ok_or_else(|| {
            err(
                ProtectorErrorKind::TokenNotFound,
                format!(
                    "no token labelled {label:?} in {} (tokens present: {labels:?})",
                    key.0.display()
                ),
            )
        })?;
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(|e| map(e, "listing the token's mechanisms"))?;
        tracing::debug!(
            token = %label,
            mechanisms = ?mechanisms,
            "found PKCS#11 token"
        );
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| Error::Random)?;
        let token = Arc::new(Self {
            ctx,
            slot,
            label: label.to_owned(),
            idle: Mutex::new(Vec::new()),
            login: Mutex::new(None),
            salt,
            mechanisms,
        });
        tokens.insert(key, Arc::clone(&token));
        Ok(token)
    }

    /// Whether the token is still in its slot.
    pub(crate) fn is_present(&self) -> bool {
        matches!(self.ctx.get_token_info(self.slot), Ok(info) if info.label().trim_end() == self.label)
    }

    fn pin_digest(&self, pin: &SecretString) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(pin.expose_secret().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// A session from the pool, or a new read-write one.
    fn checkout(&self) -> Result<Session> {
        if let Some(s) = lock(&self.idle).pop() {
            return Ok(s);
        }
        self.ctx
            .open_rw_session(self.slot)
            .map_err(|e| map(e, &format!("opening a session on token {:?}", self.label)))
    }

    fn checkin(&self, session: Session) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
        // else: dropped, which closes it; the pool keeps others open so the
        // login state survives.
    }

    /// Logs the user in with `pin`. Already logged in with the same PIN is
    /// fine; already logged in (by this process) with another PIN is
    /// reported as a wrong PIN, since the token cannot be asked again
    /// without logging every other user of it out.
    pub(crate) fn login(&self, pin: &SecretString) -> Result<()> {
        let mut state = lock(&self.login);
        let digest = self.pin_digest(pin);
        let session = self.checkout()?;
        let auth = AuthPin::from(pin.expose_secret().to_owned());
        let r = session.login(UserType::User, Some(&auth));
        let dead = matches!(&r, Err(e) if crate::error::session_is_dead(e));
        if !dead {
            self.checkin(session);
        }
        match r {
            Ok(()) => {
                *state = Some(digest);
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => match *state {
                Some(known) if !bool::from(known.ct_eq(&digest)) => Err(err(
                    ProtectorErrorKind::WrongPin,
                    format!(
                        "token {:?} is logged in by this process with a different PIN",
                        self.label
                    ),
                )),
                Some(_) => Ok(()),
                // Logged in by other code in this process: nothing to compare.
                None => Ok(()),
            },
            Err(e) => Err(map(e, &format!("logging in to token {:?}", self.label))),
        }
    }

    /// Runs `op` on a pooled session, logging in again (once) if the token
    /// forgot the login.
    pub(crate) fn with_session<T>(
        &self,
        pin: &SecretString,
        op: impl Fn(&Session) -> std::result::Result<T, CkError>,
        on_error: impl Fn(CkError) -> Error,
    ) -> Result<T> {
        for attempt in 0..2 {
            let session = self.checkout()?;
            let r = op(&session);
            match &r {
                Err(e) if crate::error::session_is_dead(e) => drop(session),
                _ => self.checkin(session),
            }
            match r {
                Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) if attempt == 0 => {
                    self.login(pin)?;
                }
                Ok(v) => return Ok(v),
                Err(e) => return Err(on_error(e)),
            }
        }
        Err(err(
            ProtectorErrorKind::Device,
            format!("token {:?} keeps forgetting the login", self.label),
        ))
    }
}
