//! Gates: which operation on which paths needs how many approvals from
//! whom; built in code or parsed from TOML, validated either way.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{ApprovalError, Decision, GatedOperation};
use crate::path::SecretPath;
use crate::policy::PathPattern;

/// The longest gates file [`Gates::from_toml_str`] accepts (1 MiB).
pub const MAX_GATES_FILE_LEN: usize = 1 << 20;
/// The most gates a store holds.
pub const MAX_GATES: usize = 1024;
/// The most approvers one gate names.
pub const MAX_APPROVERS: usize = 256;
/// The longest principal name a gate names, in bytes.
const MAX_PRINCIPAL_LEN: usize = 256;

/// One gate: `operation` on a path `pattern` matches runs only once
/// `required` (N) distinct principals of `approvers` (M) approved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    operation: GatedOperation,
    pattern: Option<PathPattern>,
    required: u32,
    approvers: Vec<String>,
}

impl Gate {
    /// A gate, validated: `pattern` is a policy path pattern for
    /// [`Destroy`](GatedOperation::Destroy) and
    /// [`SensitiveRead`](GatedOperation::SensitiveRead) (required), and
    /// absent (or the operation's [system target](GatedOperation::system_target))
    /// for the store-wide operations; `approvers` are distinct principal
    /// names; `1 <= required <= approvers.len()`.
    pub fn new(
        operation: GatedOperation,
        pattern: Option<&str>,
        required: u32,
        approvers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, ApprovalError> {
        let approvers: Vec<String> = approvers.into_iter().map(Into::into).collect();
        let invalid = |reason: String| ApprovalError::InvalidGates { line: None, reason };
        let pattern = check_pattern(operation, pattern).map_err(|r| invalid(r.into()))?;
        check_approvers(&approvers).map_err(invalid)?;
        check_required(required, approvers.len()).map_err(invalid)?;
        Ok(Self {
            operation,
            pattern,
            required,
            approvers,
        })
    }

    /// The operation held.
    pub fn operation(&self) -> GatedOperation {
        self.operation
    }

    /// The path pattern (`None` for the store-wide operations).
    pub fn pattern(&self) -> Option<&PathPattern> {
        self.pattern.as_ref()
    }

    /// Approvals needed (N).
    pub fn required(&self) -> u32 {
        self.required
    }

    /// The principals who may approve or refuse (M of them).
    pub fn approvers(&self) -> &[String] {
        &self.approvers
    }

    /// Whether this gate holds `operation` on `path` (canonical secret
    /// path, or the operation's system target).
    pub fn covers(&self, operation: GatedOperation, path: &str) -> bool {
        if operation != self.operation {
            return false;
        }
        match (&self.pattern, operation.system_target()) {
            (_, Some(target)) => path == target,
            (Some(p), None) => SecretPath::parse(path).is_ok_and(|sp| p.matches(&sp)),
            (None, None) => false,
        }
    }

    /// As [`Gate::covers`], for a parsed secret path.
    pub(crate) fn covers_secret(&self, operation: GatedOperation, path: &SecretPath) -> bool {
        operation == self.operation && self.pattern.as_ref().is_some_and(|p| p.matches(path))
    }

    /// How many of `approvals` count for this gate.
    pub(crate) fn count(&self, approvals: &[Decision]) -> u64 {
        let n = approvals
            .iter()
            .filter(|d| self.approvers.contains(&d.principal))
            .count();
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    pub(super) fn to_spec(&self) -> GateSpec {
        GateSpec {
            operation: self.operation,
            pattern: self.pattern.as_ref().map(|p| p.as_str().to_owned()),
            required: self.required,
            approvers: self.approvers.clone(),
        }
    }
}

fn check_pattern(
    operation: GatedOperation,
    pattern: Option<&str>,
) -> Result<Option<PathPattern>, &'static str> {
    match (operation.system_target(), pattern) {
        (Some(_), None) => Ok(None),
        (Some(target), Some(p)) if p == target => Ok(None),
        (Some(_), Some(_)) => Err(
            "this operation acts on the whole store: leave out pattern (or give its system path)",
        ),
        (None, None) => Err("this operation needs a pattern (the secret paths it holds)"),
        (None, Some(p)) => PathPattern::parse(p).map(Some).map_err(|_| {
            "the pattern is not a valid path pattern (an exact path, a `*` suffix glob or `+` segments)"
        }),
    }
}

fn check_approvers(approvers: &[String]) -> Result<(), String> {
    if approvers.is_empty() {
        return Err("a gate needs at least one approver".into());
    }
    if approvers.len() > MAX_APPROVERS {
        return Err(format!("a gate names at most {MAX_APPROVERS} approvers"));
    }
    let mut seen = BTreeSet::new();
    for a in approvers {
        if a.is_empty()
            || a.len() > MAX_PRINCIPAL_LEN
            || a.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!(
                "an approver must be a principal name of 1 to {MAX_PRINCIPAL_LEN} bytes without spaces or control characters"
            ));
        }
        if !seen.insert(a.as_str()) {
            return Err(
                "an approver is named twice in one gate; approvers must be distinct".into(),
            );
        }
    }
    Ok(())
}

fn check_required(required: u32, approvers: usize) -> Result<(), String> {
    if required == 0 {
        return Err("required must be at least 1".into());
    }
    if usize::try_from(required).map_or(true, |r| r > approvers) {
        return Err(format!(
            "required is {required} but the gate names only {approvers} approvers"
        ));
    }
    Ok(())
}

/// A gate as stored (JSON inside the barrier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GateSpec {
    pub(super) operation: GatedOperation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pattern: Option<String>,
    pub(super) required: u32,
    pub(super) approvers: Vec<String>,
}

impl GateSpec {
    pub(super) fn to_gate(&self) -> Result<Gate, ApprovalError> {
        Gate::new(
            self.operation,
            self.pattern.as_deref(),
            self.required,
            self.approvers.iter().cloned(),
        )
    }
}

/// The store's gates: every gate that holds an operation (validated as a
/// whole: no two gates for the same operation and pattern).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    gates: Vec<Gate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatesFile {
    #[serde(default)]
    gate: Vec<GateFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    operation: toml::Spanned<String>,
    #[serde(default)]
    pattern: Option<toml::Spanned<String>>,
    required: toml::Spanned<i64>,
    approvers: toml::Spanned<Vec<String>>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> u64 {
    let end = offset.min(text.len());
    let n = text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A TOML error message with every quoted value taken out (messages of
/// type errors quote the value found).
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.trim_end().chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                quoted = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

impl Gates {
    /// Gates from a list, validated as a whole.
    pub fn new(gates: Vec<Gate>) -> Result<Self, ApprovalError> {
        if gates.len() > MAX_GATES {
            return Err(ApprovalError::InvalidGates {
                line: None,
                reason: format!("at most {MAX_GATES} gates"),
            });
        }
        let mut seen = BTreeSet::new();
        for g in &gates {
            if !seen.insert((g.operation, g.pattern.as_ref().map(PathPattern::as_str))) {
                return Err(ApprovalError::InvalidGates {
                    line: None,
                    reason: format!(
                        "two gates hold {} on the same pattern; merge them",
                        g.operation
                    ),
                });
            }
        }
        Ok(Self { gates })
    }

    /// No gates: every operation runs without approval.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a gates file: `[[gate]]` tables with `operation`, `pattern`
    /// (for `destroy` and `sensitive_read`), `required` and `approvers`.
    /// Errors name the line and never quote a value from the file.
    ///
    /// ```
    /// use strongroom::approvals::{Gates, GatedOperation};
    /// let gates = Gates::from_toml_str(r#"
    ///     [[gate]]
    ///     operation = "destroy"
    ///     pattern = "prod/*"
    ///     required = 2
    ///     approvers = ["alice", "bob", "carol"]
    ///
    ///     [[gate]]
    ///     operation = "root_key_rotate"
    ///     required = 1
    ///     approvers = ["alice", "bob"]
    /// "#)?;
    /// assert!(gates.covering(GatedOperation::Destroy, "prod/db").next().is_some());
    /// assert!(gates.covering(GatedOperation::Destroy, "dev/db").next().is_none());
    ///
    /// let err = Gates::from_toml_str("[[gate]]\noperation = \"destroy\"\npattern = \"a/*\"\nrequired = 3\napprovers = [\"a\"]\n")
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid approval gates (line 4): required is 3 but the gate names only 1 approvers");
    /// # Ok::<(), strongroom::approvals::ApprovalError>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, ApprovalError> {
        if text.len() > MAX_GATES_FILE_LEN {
            return Err(ApprovalError::InvalidGates {
                line: None,
                reason: format!("the file is larger than {MAX_GATES_FILE_LEN} bytes"),
            });
        }
        let at = |span: Range<usize>, reason: String| ApprovalError::InvalidGates {
            line: Some(line_of(text, span.start)),
            reason,
        };
        let file: GatesFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at(span, without_values(e.message()))
        })?;
        let mut gates = Vec::with_capacity(file.gate.len());
        let mut seen = BTreeSet::new();
        for g in &file.gate {
            let operation: GatedOperation = g.operation.get_ref().parse().map_err(|_| {
                at(
                    g.operation.span(),
                    "unknown operation: use destroy, root_key_rotate, key_destroy, sensitive_read or apply_config".into(),
                )
            })?;
            let pattern_span = g
                .pattern
                .as_ref()
                .map_or_else(|| g.operation.span(), toml::Spanned::span);
            let pattern =
                check_pattern(operation, g.pattern.as_ref().map(|p| p.get_ref().as_str()))
                    .map_err(|r| at(pattern_span.clone(), r.into()))?;
            check_approvers(g.approvers.get_ref()).map_err(|r| at(g.approvers.span(), r))?;
            let required = u32::try_from(*g.required.get_ref())
                .map_err(|_| at(g.required.span(), "required must be at least 1".into()))?;
            check_required(required, g.approvers.get_ref().len())
                .map_err(|r| at(g.required.span(), r))?;
            if !seen.insert((operation, pattern.as_ref().map(|p| p.as_str().to_owned()))) {
                return Err(at(
                    pattern_span,
                    format!(
                        "a gate holding {operation} on the same pattern appears earlier; merge them"
                    ),
                ));
            }
            gates.push(Gate {
                operation,
                pattern,
                required,
                approvers: g.approvers.get_ref().clone(),
            });
        }
        Self::new(gates)
    }

    /// Reads and parses a gates file ([`Gates::from_toml_str`]).
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Self, ApprovalError> {
        use std::io::Read as _;
        let path = path.as_ref();
        let unreadable = |e: std::io::Error| ApprovalError::InvalidGates {
            line: None,
            reason: format!("cannot read {}: {e}", path.display()),
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(unreadable)?
            .take(u64::try_from(MAX_GATES_FILE_LEN + 1).unwrap_or(u64::MAX))
            .read_to_string(&mut text)
            .map_err(unreadable)?;
        Self::from_toml_str(&text)
    }

    /// The gates, in order.
    pub fn gates(&self) -> &[Gate] {
        &self.gates
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.gates.is_empty()
    }

    /// The gates that hold `operation` on `path`.
    pub fn covering<'a>(
        &'a self,
        operation: GatedOperation,
        path: &'a str,
    ) -> impl Iterator<Item = &'a Gate> + 'a {
        self.gates.iter().filter(move |g| g.covers(operation, path))
    }

    /// Whether any gate holds `operation` on the secret path `path`.
    pub(crate) fn holds_secret(&self, operation: GatedOperation, path: &SecretPath) -> bool {
        self.gates.iter().any(|g| g.covers_secret(operation, path))
    }

    /// Whether `principal` approves for some gate holding `operation` on
    /// `path`.
    pub(crate) fn is_approver(
        &self,
        operation: GatedOperation,
        path: &str,
        principal: &str,
    ) -> bool {
        self.covering(operation, path)
            .any(|g| g.approvers.iter().any(|a| a == principal))
    }

    /// `None` when `approvals` satisfy every gate holding `operation` on
    /// `path` (and at least one does); otherwise the first short gate's
    /// (counted, required).
    pub(crate) fn shortfall(
        &self,
        operation: GatedOperation,
        path: &str,
        approvals: &[Decision],
    ) -> Option<(u64, u64)> {
        let mut any = false;
        for g in self.covering(operation, path) {
            any = true;
            let n = g.count(approvals);
            if n < u64::from(g.required) {
                return Some((n, u64::from(g.required)));
            }
        }
        if any { None } else { Some((0, 0)) }
    }

    pub(super) fn to_specs(&self) -> Vec<GateSpec> {
        self.gates.iter().map(Gate::to_spec).collect()
    }

    /// The gates as a TOML file [`Gates::from_toml_str`] reads back.
    pub fn to_toml(&self) -> String {
        // A JSON string is a TOML basic string (same escapes).
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut out = String::new();
        for (i, g) in self.gates.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("[[gate]]\n");
            out.push_str(&format!("operation = {}\n", quote(g.operation.as_str())));
            if let Some(p) = &g.pattern {
                out.push_str(&format!("pattern = {}\n", quote(p.as_str())));
            }
            out.push_str(&format!("required = {}\n", g.required));
            let approvers: Vec<String> = g.approvers.iter().map(|a| quote(a)).collect();
            out.push_str(&format!("approvers = [{}]\n", approvers.join(", ")));
        }
        out
    }
}
