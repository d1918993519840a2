//! Approval gates (`strongroom::approvals`) as a principal: `Handle.approvals()`
//! gives an `Approvals` (ask, approve, refuse, read requests and the gates);
//! `Handle.with_approval(id)` a handle whose gated calls use up that
//! request; `Strongroom.set_gates(...)` replaces the gates through the
//! binding's door. Converters only: every rule is the core's.

use pyo3::prelude::*;
use strongroom::approvals::{
    self, ApprovalRequest as CoreRequest, Decision, GatedOperation, Gates, StoredGates,
};

use crate::lifetime::Life;
use crate::signing::run;
use crate::{Core, to_py};

/// One approval request, as read (plain data; no secret). Times are
/// milliseconds since the Unix epoch (the store's clock).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct ApprovalRequest {
    /// The request id (32 lower-case hex digits).
    id: String,
    /// The operation it allows: "destroy", "sensitive_read",
    /// "root_key_rotate", "key_destroy" or "apply_config".
    operation: &'static str,
    /// The canonical path (the system path for store-wide operations).
    path: String,
    /// Who asked (and alone may use it).
    requester: String,
    /// Why, as the requester wrote it.
    reason: String,
    /// "pending", "approved", "refused", "used" or "expired".
    state: &'static str,
    /// `(principal, at_ms)` of each approval, in order.
    approvals: Vec<(String, u64)>,
    /// `(principal, at_ms)` of each refusal.
    refusals: Vec<(String, u64)>,
    /// When it was made.
    created_ms: u64,
    /// When it expires unless used.
    expires_ms: u64,
    /// Who used it, once used.
    used_by: Option<String>,
}

fn decisions(d: &[Decision]) -> Vec<(String, u64)> {
    d.iter()
        .map(|d| (d.principal.clone(), d.at.as_millis()))
        .collect()
}

impl From<CoreRequest> for ApprovalRequest {
    fn from(r: CoreRequest) -> Self {
        Self {
            approvals: decisions(&r.approvals),
            refusals: decisions(&r.refusals),
            id: r.id,
            operation: r.operation.as_str(),
            path: r.path,
            requester: r.requester,
            reason: r.reason,
            state: r.state.as_str(),
            created_ms: r.created.as_millis(),
            expires_ms: r.expires.as_millis(),
            used_by: r.used_by,
        }
    }
}

#[pymethods]
impl ApprovalRequest {
    fn __repr__(&self) -> String {
        format!(
            "ApprovalRequest(id={:?}, operation={:?}, path={:?}, requester={:?}, state={:?}, approvals={})",
            self.id,
            self.operation,
            self.path,
            self.requester,
            self.state,
            self.approvals.len()
        )
    }
}

/// One gate: `operation` on paths `pattern` matches runs once `required`
/// of `approvers` approved.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct Gate {
    /// The operation held.
    operation: &'static str,
    /// The path pattern (`None` for the store-wide operations).
    pattern: Option<String>,
    /// Approvals needed (N).
    required: u32,
    /// Who may approve or refuse (M).
    approvers: Vec<String>,
}

#[pymethods]
impl Gate {
    fn __repr__(&self) -> String {
        format!(
            "Gate(operation={:?}, pattern={:?}, required={}, approvers={:?})",
            self.operation, self.pattern, self.required, self.approvers
        )
    }
}

/// The store's gates and their revision (0 and no gates if never set).
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct ApprovalGates {
    /// 0 if never set, then one more per change: pass it to `set_gates`.
    revision: u64,
    /// The gates.
    gates: Vec<Py<Gate>>,
    /// The gates as a gates file (TOML).
    toml: String,
}

#[pymethods]
impl ApprovalGates {
    fn __repr__(&self) -> String {
        format!(
            "ApprovalGates(revision={}, gates={})",
            self.revision,
            self.gates.len()
        )
    }
}

/// Converts the stored gates when handed to Python.
struct GatesOut(StoredGates);

impl<'py> IntoPyObject<'py> for GatesOut {
    type Target = ApprovalGates;
    type Output = Bound<'py, ApprovalGates>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let g = self.0;
        let gates = g
            .gates
            .gates()
            .iter()
            .map(|gate| {
                Py::new(
                    py,
                    Gate {
                        operation: gate.operation().as_str(),
                        pattern: gate.pattern().map(|p| p.as_str().to_owned()),
                        required: gate.required(),
                        approvers: gate.approvers().to_vec(),
                    },
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        Bound::new(
            py,
            ApprovalGates {
                revision: g.revision,
                toml: g.gates.to_toml(),
                gates,
            },
        )
    }
}

/// A principal's approval requests (asyncio API): ask, approve, refuse,
/// read. From `handle.approvals()`. Every change is audited under the
/// principal.
#[pyclass(module = "strongroom", frozen)]
pub struct Approvals {
    inner: approvals::Approvals,
    life: Life,
}

/// The blocking form of [`Approvals`] (`strongroom.blocking.Approvals`).
#[pyclass(module = "strongroom.blocking", name = "Approvals", frozen)]
pub struct BlockingApprovals {
    inner: approvals::Approvals,
    life: Life,
}

impl Approvals {
    const BLOCKING: bool = false;

    pub(crate) fn new(handle: &strongroom::Handle, life: &Life) -> Self {
        Self {
            inner: handle.approvals(),
            life: life.clone(),
        }
    }
}

impl BlockingApprovals {
    const BLOCKING: bool = true;

    pub(crate) fn new(handle: &strongroom::Handle, life: &Life) -> Self {
        Self {
            inner: handle.approvals(),
            life: life.clone(),
        }
    }
}

fn operation(name: &str) -> PyResult<GatedOperation> {
    name.parse::<GatedOperation>()
        .map_err(|e| to_py(strongroom::Error::from(e)))
}

macro_rules! approvals_methods {
    ($ty:ident) => {
        #[pymethods]
        impl $ty {
            /// The principal acting.
            #[getter]
            fn principal(&self) -> String {
                self.inner.handle().principal().name().to_owned()
            }

            /// Asks for `operation` ("destroy", "sensitive_read",
            /// "root_key_rotate", "key_destroy", "apply_config") on `path`
            /// ("" for the store-wide operations) to run once within `ttl`
            /// seconds (a number or a timedelta), for `reason`. Gives the
            /// `ApprovalRequest`; `ApprovalNoGate` if no gate holds it.
            #[pyo3(signature = (operation, path, reason, ttl))]
            fn request(
                &self,
                py: Python<'_>,
                operation: &str,
                path: String,
                reason: String,
                ttl: &Bound<'_, PyAny>,
            ) -> PyResult<Py<PyAny>> {
                let op = self::operation(operation)?;
                let ttl = crate::lease::seconds("ttl", ttl)?;
                let a = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    a.request(op, &path, &reason, ttl)
                        .await
                        .map(ApprovalRequest::from)
                })
            }

            /// Approves request `id` as this principal (an approver a gate
            /// names, not the requester); gives the request as it now stands.
            fn approve(&self, py: Python<'_>, id: String) -> PyResult<Py<PyAny>> {
                let a = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    a.approve(&id).await.map(ApprovalRequest::from)
                })
            }

            /// Refuses request `id` as this principal (an approver a gate
            /// names): it can never run.
            fn refuse(&self, py: Python<'_>, id: String) -> PyResult<Py<PyAny>> {
                let a = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    a.refuse(&id).await.map(ApprovalRequest::from)
                })
            }

            /// Request `id` (`ApprovalNotFound` if there is none).
            fn get(&self, py: Python<'_>, id: String) -> PyResult<Py<PyAny>> {
                let a = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    a.get(&id).await.map(ApprovalRequest::from)
                })
            }

            /// Every stored request, oldest first.
            fn list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                let a = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    a.list()
                        .await
                        .map(|v| v.into_iter().map(ApprovalRequest::from).collect::<Vec<_>>())
                })
            }

            /// The store's gates and their revision (`ApprovalGates`).
            fn gates(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                let a = self.inner.clone();
                run(py, Self::BLOCKING, &self.life, async move {
                    a.gates().await.map(GatesOut)
                })
            }

            fn __repr__(&self) -> String {
                format!("Approvals({:?})", self.inner.handle().principal().name())
            }
        }
    };
}

approvals_methods!(Approvals);
approvals_methods!(BlockingApprovals);

/// `set_gates` of both store classes: parses `toml` and replaces the gates
/// if their revision is still `expected_revision`, audited under
/// `operator` (the door's own `dangerous:python` handle if `None`).
pub(crate) fn set_gates(
    core: &Core,
    toml: &str,
    expected_revision: u64,
    operator: Option<strongroom::Handle>,
) -> PyResult<impl Future<Output = strongroom::Result<u64>> + Send + 'static> {
    let gates = Gates::from_toml_str(toml).map_err(|e| to_py(e.into()))?;
    let door = core.clone();
    Ok(async move {
        let operator = operator.unwrap_or_else(|| door.handle().clone());
        approvals::set_gates(&door, &operator, &gates, expected_revision).await
    })
}

/// The core handle behind a `Handle` or `blocking.Handle` given as `operator`.
pub(crate) fn operator_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<strongroom::Handle>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(h) = obj.cast::<crate::store::Handle>() {
        return Ok(Some(h.get().inner.clone()));
    }
    Ok(Some(
        obj.cast::<crate::store::BlockingHandle>()?
            .get()
            .inner
            .clone(),
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ApprovalRequest>()?;
    m.add_class::<Gate>()?;
    m.add_class::<ApprovalGates>()?;
    m.add_class::<Approvals>()?;
    m.add("BlockingApprovals", m.py().get_type::<BlockingApprovals>())?;
    Ok(())
}
