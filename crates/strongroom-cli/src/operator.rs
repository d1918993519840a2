//! The operator principal: who a command acts as, the policy that lets it
//! do everything (whoever holds the protector can anyway), and how its
//! actions reach the audit file before they take effect.
//!
//! Secrets go through the library's principal-bound [`Handle`] and key
//! administration through its [`KeyAdmin`], so their records are the
//! library's own: for a change, an intent record before the store is
//! touched and an outcome record after it; for a read, one record after
//! the store answered and before anything is shown. What those cannot
//! express (`list` of the top level or of every depth, root-key rotation
//! with a key generated on a token first, `init`) is recorded here in the
//! same shapes ([`Operator::record`], [`Operator::conclude`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom::audit::{AuditEvent, Operation, Outcome, new_request_id};
use strongroom::authorized::KeyAdmin;
use strongroom::dangerous::Door;
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::{Error, Handle};

use crate::args::{OperatorArgs, StoreArgs};
use crate::audit_log::{self, AuditFileLock};
use crate::exit::{CliResult, Failure};
use crate::store::Open;

/// The longest operator name accepted, in bytes.
const NAME_MAX: usize = 64;
/// What principal names of operators start with.
const PRINCIPAL_PREFIX: &str = "operator:";

/// Who acts and where it is audited, settled from the arguments before
/// the store is opened (so a bad name is a usage error that costs nothing).
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// `operator:<name>`.
    pub(crate) principal: String,
    /// The audit file.
    pub(crate) audit_path: PathBuf,
}

impl Identity {
    /// The name from `--operator`, else `$USER`, else `$LOGNAME`, else the
    /// numeric real user id; the audit file from `--audit-log`, else next
    /// to the database.
    pub(crate) fn from_args(a: &OperatorArgs, db: &Path) -> CliResult<Self> {
        Ok(Self {
            principal: format!(
                "{PRINCIPAL_PREFIX}{}",
                operator_name(a.operator.as_deref())?
            ),
            audit_path: audit_log::audit_path(a.audit_log.as_deref(), db)?,
        })
    }
}

fn operator_name(explicit: Option<&str>) -> CliResult<String> {
    if let Some(name) = explicit {
        check_name(name).map_err(|why| Failure::Usage(format!("--operator {name:?} {why}")))?;
        return Ok(name.to_owned());
    }
    // Names only: nothing secret is ever read from the environment.
    for var in ["USER", "LOGNAME"] {
        if let Ok(name) = std::env::var(var)
            && check_name(&name).is_ok()
        {
            return Ok(name);
        }
    }
    real_uid().map(|uid| uid.to_string()).ok_or_else(|| {
        Failure::Usage(
            "no operator name: give --operator NAME (USER and LOGNAME are unset and the user id cannot be read)"
                .into(),
        )
    })
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("is empty".into())
    } else if name.len() > NAME_MAX {
        Err(format!("is longer than {NAME_MAX} bytes"))
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err("contains a space or a control character".into())
    } else {
        Ok(())
    }
}

/// The real user id, from the first field of the `Uid:` line of
/// `/proc/self/status` (the standard library has no `getuid`, and this
/// crate has no `unsafe`); `None` where that cannot be read.
fn real_uid() -> Option<u32> {
    use std::io::Read as _;
    let mut status = String::new();
    std::fs::File::open("/proc/self/status")
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut status)
        .ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// Everything, secrets and the reserved `sys/` paths alike: the operator
/// holds the store's protector, so a narrower policy would protect nothing;
/// the point is the audit record.
fn operator_policy() -> CliResult<Policy> {
    let rules = vec![
        Rule::allow("*", Capability::ALL).map_err(Error::from)?,
        Rule::allow("sys/*", Capability::ALL).map_err(Error::from)?,
    ];
    Ok(Policy::new("operator", rules))
}

/// An operator acting on an unsealed store, audited to its audit file.
pub(crate) struct Operator {
    handle: Handle,
    sr: Door,
    /// The audit file stays locked while the operator acts.
    _lock: AuditFileLock,
}

impl Operator {
    /// Settles who acts from `who`, unseals the store and opens its audit
    /// file; nothing is recorded yet. `stdin_free`: whether the PIN may be
    /// read from stdin.
    pub(crate) async fn unseal(
        store: &StoreArgs,
        who: &OperatorArgs,
        stdin_free: bool,
    ) -> CliResult<(Open, Self)> {
        let id = Identity::from_args(who, &store.db)?;
        let open = Open::unseal(store, stdin_free).await?;
        match Self::start(&open.sr, &id).await {
            Ok(op) => Ok((open, op)),
            Err(f) => {
                open.close().await;
                Err(f)
            }
        }
    }

    /// [`Operator::unseal`], then `f` with the store and the operator; the
    /// store is sealed and closed whatever `f` returns.
    pub(crate) async fn run<T>(
        store: &StoreArgs,
        who: &OperatorArgs,
        stdin_free: bool,
        f: impl AsyncFnOnce(&Open, &Operator) -> CliResult<T>,
    ) -> CliResult<T> {
        let (open, op) = Self::unseal(store, who, stdin_free).await?;
        let result = f(&open, &op).await;
        open.close().await;
        result
    }

    /// `id` acting on `sr`, its audit file opened to continue the chain.
    pub(crate) async fn start(sr: &Door, id: &Identity) -> CliResult<Self> {
        let principal = Principal::new(id.principal.clone(), [&operator_policy()?]);
        let (log, lock) = audit_log::open(sr, &id.audit_path).await?;
        Ok(Self {
            handle: sr.as_principal(principal, Arc::new(log)),
            sr: sr.clone(),
            _lock: lock,
        })
    }

    /// The secrets store as this operator.
    pub(crate) fn secrets(&self) -> &Handle {
        &self.handle
    }

    /// Key administration as this operator.
    pub(crate) fn keys(&self) -> KeyAdmin {
        self.handle.key_admin()
    }

    /// A new event of `op` by this operator, with a fresh request id.
    pub(crate) fn event(&self, op: Operation) -> CliResult<AuditEvent> {
        Ok(AuditEvent::new(
            self.handle.principal().name(),
            op,
            new_request_id()?,
        ))
    }

    /// Appends `event` to the audit file and saves the new chain head in
    /// the store, as the library's handles do after every record. An error
    /// means the record is not safely on file: the caller must stop.
    pub(crate) async fn record(&self, event: AuditEvent, change: bool) -> CliResult {
        let rec = audited(self.handle.audit_log().append(event).await, change)?;
        self.sr.save_audit_head(&rec.checkpoint()).await?;
        Ok(())
    }

    /// Records how `result` ended under `event`'s request id (`decorate`
    /// adds what a success produced), then hands the result back; if that
    /// record is refused, the audit error instead.
    pub(crate) async fn conclude<T>(
        &self,
        event: AuditEvent,
        result: strongroom::Result<T>,
        change: bool,
        decorate: impl FnOnce(AuditEvent, &T) -> AuditEvent,
    ) -> CliResult<T> {
        match result {
            Ok(out) => {
                self.record(decorate(event, &out), change).await?;
                Ok(out)
            }
            Err(e) => {
                let kind = e.kind().to_owned();
                self.record(event.with_outcome(Outcome::Error { kind }), change)
                    .await?;
                Err(e.into())
            }
        }
    }
}

/// A library result from an audited call: an audit error becomes
/// [`Failure::AuditWrite`] (exit 12); `change` says whether the call
/// changes the store (then a refused outcome record means the change was
/// made).
pub(crate) fn audited<T>(result: Result<T, impl Into<Error>>, change: bool) -> CliResult<T> {
    result.map_err(|e| match e.into() {
        Error::Audit(error) => Failure::AuditWrite { error, change },
        e => Failure::Lib(e),
    })
}
