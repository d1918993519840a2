//! The engine, its stored state and how that state and the staged
//! credentials are read.

use super::*;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub(super) format: u32,
    pub(super) next_version: u64,
    pub(super) current: Option<u64>,
    pub(super) pending: Option<u64>,
    pub(super) previous: Option<u64>,
    pub(super) revoke_after: Option<Timestamp>,
    pub(super) last_promoted: Option<Timestamp>,
    pub(super) op: Option<Op>,
    pub(super) lock: Option<Lock>,
    pub(super) history: Vec<VersionInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Op {
    pub(super) step: RotationStep,
    pub(super) version: u64,
    /// Why a roll-back is running (the step that failed).
    #[serde(default)]
    pub(super) cause: Option<RotationStep>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Lock {
    pub(super) owner: String,
    pub(super) expires: Timestamp,
}

impl State {
    pub(super) fn info_mut(&mut self, version: u64) -> Option<&mut VersionInfo> {
        self.history.iter_mut().rev().find(|h| h.version == version)
    }
}

/// What one call to the engine did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// The version promoted to current, if any.
    pub promoted: Option<u64>,
    /// The previous version revoked, if any.
    pub revoked: Option<u64>,
    /// A version rolled back (the rotation failed), with the failed step.
    pub rolled_back: Option<(u64, RotationStep)>,
}

/// Runs rotations of one credential. Cheap to share behind an `Arc`.
pub struct RotationEngine {
    pub(super) sr: Strongroom,
    pub(super) name: String,
    pub(super) state_key: String,
    pub(super) context_path: String,
    pub(super) rotator: Arc<dyn Rotator>,
    pub(super) options: RotationOptions,
    pub(super) owner: String,
    pub(super) events: broadcast::Sender<RotationEvent>,
    pub(super) local: tokio::sync::Mutex<()>,
    pub(super) wake: Notify,
    pub(super) last_error: std::sync::Mutex<Option<String>>,
}

impl fmt::Debug for RotationEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationEngine")
            .field("credential", &self.name)
            .field("rotator", &self.rotator.kind())
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Checks a credential name: 1 to 200 bytes of `a-z 0-9 - _ .` in
/// `/`-separated segments, none empty, `.` or `..`.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(RotationError::InvalidName {
            name: name.chars().take(64).collect(),
            reason,
        }
        .into())
    };
    if name.is_empty() || name.len() > 200 {
        return bad("must be 1 to 200 bytes");
    }
    if !name.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b'/')
    }) {
        return bad("use only a-z, 0-9, '-', '_', '.' and '/'");
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("empty, '.' or '..' segment");
    }
    Ok(())
}

pub(super) fn sealed_key(name: &str, version: u64) -> String {
    format!("{SEALED_VERSION_PREFIX}{name}/v/{version}")
}

pub(super) fn random_owner() -> Result<String> {
    Ok(format!(
        "engine-{}",
        hex::encode(SecretBytes::random(8)?.expose_secret())
    ))
}

/// Reads the stored versions of credential `name` without an engine (for a
/// pool in a process that does not rotate).
pub(crate) async fn load_staged(sr: &Strongroom, name: &str) -> Result<StagedCredentials> {
    validate_name(name)?;
    let state = read_state(sr, name).await?.1;
    staged_from(sr, name, &state).await
}

pub(super) async fn read_state(sr: &Strongroom, name: &str) -> Result<(Option<Vec<u8>>, State)> {
    let key = format!("{STATE_PREFIX}{name}");
    let raw = sr.barrier().get(&key).await?;
    let state = match &raw {
        None => State {
            format: STATE_FORMAT,
            next_version: 1,
            ..State::default()
        },
        Some(bytes) => {
            let s: State =
                serde_json::from_slice(bytes).map_err(|e| RotationError::CorruptState {
                    credential: name.to_owned(),
                    reason: e.to_string(),
                })?;
            if s.format != STATE_FORMAT {
                return Err(RotationError::CorruptState {
                    credential: name.to_owned(),
                    reason: format!("unsupported state format {}", s.format),
                }
                .into());
            }
            s
        }
    };
    Ok((raw, state))
}

pub(super) async fn load_version(
    sr: &Strongroom,
    name: &str,
    version: u64,
) -> Result<Option<Credential>> {
    let key = sealed_key(name, version);
    let path = format!("{STATE_PREFIX}{name}");
    let Some(plain) = sr
        .get_sealed(&key, &SealContext::new(&path, version))
        .await?
    else {
        return Ok(None);
    };
    Credential::decode(&key, version, &plain).map(Some)
}

pub(super) async fn staged_from(
    sr: &Strongroom,
    name: &str,
    state: &State,
) -> Result<StagedCredentials> {
    let mut out = StagedCredentials::default();
    if let Some(v) = state.pending {
        out.pending = load_version(sr, name, v).await?;
    }
    if let Some(v) = state.current {
        out.current = load_version(sr, name, v).await?;
    }
    if let Some(v) = state.previous {
        out.previous = load_version(sr, name, v).await?;
    }
    Ok(out)
}

/// A locked, in-progress session over the state record.
pub(super) struct Session {
    pub(super) raw: Option<Vec<u8>>,
    pub(super) state: State,
}
