//! Least-privilege path policies and the principals they bind to.
//!
//! A [`Policy`] is a named list of [`Rule`]s; each rule maps a path pattern
//! to a set of [`Capability`]s, or to `deny`. A [`Principal`] (a service
//! identity) holds the policies it was given, compiled once into a
//! [`PolicySet`], and every operation asks [`authorize`] first. Nothing is
//! allowed unless a rule allows it (default deny).
//!
//! # Patterns
//!
//! | pattern            | matches                                          | does not match              |
//! |--------------------|--------------------------------------------------|-----------------------------|
//! | `prod/app/db`      | exactly `prod/app/db`                            | `prod/app/db/x`             |
//! | `prod/app/*`       | every path below `prod/app`                      | `prod/app` itself           |
//! | `prod/app*`        | `prod/app`, `prod/apple`, `prod/app/x/y`         | `prod/ap`                   |
//! | `prod/+/db`        | `prod/<any one segment>/db`                      | `prod/db`, `prod/a/b/db`    |
//! | `+/app/*`          | `<any env>/app/<anything>`                       | `prod/other/x`              |
//! | `*`                | every path                                       |                             |
//!
//! `*` may appear only at the very end of a pattern and matches any run of
//! characters, `/` included (a string-prefix glob, as in Vault). `+` must be
//! a whole segment and matches exactly one segment. In a **deny** rule a
//! pattern ending in `/*` also covers the path it is the inside of:
//! `prod/app/admin/*` = deny denies `prod/app/admin` itself too, and
//! `prod/+/admin/*` = deny denies `prod/<any>/admin` (an allow rule
//! `prod/app/*` still does not match `prod/app`). Every other character
//! obeys the [path rules](crate::path): lower-case, no `.`/`..` segments, no
//! empty segments.
//!
//! # Precedence
//!
//! 1. **`deny` wins.** If *any* rule of any of the principal's policies that
//!    matches the path says `deny`, the request is denied, whatever else
//!    matches. A deny fences a subtree, including the path at its root (a
//!    deny on `x/*` covers `x`: a secret named like the folder it fences);
//!    it cannot be carved out by a more specific allow.
//! 2. **Otherwise the most specific matching rule decides alone**; its
//!    capabilities are the only ones granted (a more specific rule can narrow
//!    what a broader one granted). Rules with the *same* pattern in
//!    different policies of one principal are merged (their capabilities are
//!    united) before this step.
//! 3. **No matching rule: denied** (default deny).
//!
//! Specificity compares two patterns by these keys in order (the first that
//! differs decides), as Vault's priority matching does:
//!
//! 1. the position of the first wildcard (`+` or `*`): later is more
//!    specific, and a pattern without wildcards (exact) beats any with one;
//! 2. a pattern not ending in `*` beats one ending in `*`;
//! 3. fewer `+` segments beat more;
//! 4. a longer pattern beats a shorter one;
//! 5. finally the lexicographically larger pattern wins (a tie-break that
//!    makes the order total and deterministic: of `a/+/b/+` and `a/+/+/c`,
//!    both matching `a/x/b/c`, `a/+/b/+` wins because `b` sorts after `+`).
//!
//! Worked examples (each row is checked by a test in this module):
//!
//! | rules                                                     | request                   | result  | why                                    |
//! |-----------------------------------------------------------|---------------------------|---------|----------------------------------------|
//! | `prod/app/*` = read                                       | read `prod/app/db`        | allowed | glob matches                           |
//! | `prod/app/*` = read                                       | read `prod/app`           | denied  | `prod/app/*` needs a segment below     |
//! | `prod/app/*` = read                                       | update `prod/app/db`      | denied  | capability not granted                 |
//! | `prod/app/*` = read, `prod/app/db` = update               | read `prod/app/db`        | denied  | exact rule is more specific, narrows   |
//! | `prod/app/*` = read, `prod/app/db` = update               | update `prod/app/db`      | allowed | exact rule                             |
//! | `prod/*` = read, `prod/app/*` = list                      | read `prod/app/x`         | denied  | first wildcard later in `prod/app/*`   |
//! | `prod/+/db` = read, `prod/app/*` = list                   | read `prod/app/db`        | denied  | first wildcard later in `prod/app/*`   |
//! | `prod/+/db` = read, `+/app/*` = list                      | read `prod/app/db`        | allowed | first wildcard later in `prod/+/db`    |
//! | `prod/+/db` = read, `prod/+/*` = list                     | read `prod/app/db`        | allowed | not ending in `*` beats ending in `*`  |
//! | `+/+/db` = read, `+/app/db` = list                        | read `prod/app/db`        | denied  | first wildcard at same place, fewer `+`|
//! | `prod/*` = read, `prod/secret/*` = deny                   | read `prod/secret/k`      | denied  | deny wins                              |
//! | `prod/*` = deny, `prod/app/db` = read                     | read `prod/app/db`        | denied  | deny wins even over a more specific rule |
//! | `prod/app/*` = read, `prod/app/admin/*` = deny            | read `prod/app/admin`     | denied  | a deny on `x/*` covers `x`             |
//! | `prod/app/*` = read, `prod/+/admin/*` = deny              | read `prod/app/admin`     | denied  | the same with a `+`                    |
//! | `prod/*` = read                                           | read `staging/db`         | denied  | no rule matches: default deny          |
//! | policy A `prod/*` = read, policy B `prod/*` = update      | update `prod/x`           | allowed | same pattern merged across policies    |
//!
//! # Loading from TOML
//!
//! Policies live in version control as TOML, a Vault-HCL-like shape:
//!
//! ```toml
//! name = "payment-svc"
//! description = "what the payment service may touch"   # optional
//!
//! [[path]]
//! pattern = "prod/payment-svc/*"
//! capabilities = ["read", "list"]
//!
//! [[path]]
//! pattern = "prod/payment-svc/admin/*"
//! capabilities = ["deny"]
//! ```
//!
//! Any mistake (bad TOML, an unknown key, an unknown capability, an invalid
//! pattern, a pattern listed twice, `deny` mixed with other capabilities, an
//! empty list) is a [`PolicyError::Parse`] with the 1-based line and column
//! of the offending text.
//!
//! ```
//! use strongroom::path::SecretPath;
//! use strongroom::policy::{authorize, Capability, Policy, Principal};
//! let policy = Policy::from_toml_str(r#"
//!     name = "payment-svc"
//!     [[path]]
//!     pattern = "prod/payment-svc/*"
//!     capabilities = ["read", "list"]
//! "#)?;
//! let svc = Principal::new("payment-svc", [&policy]);
//! let db = SecretPath::parse("prod/payment-svc/postgres")?;
//! authorize(&svc, Capability::Read, &db)?;
//! assert!(authorize(&svc, Capability::Update, &db).is_err());
//! # Ok::<(), strongroom::Error>(())
//! ```
//!
//! # Cost
//!
//! Patterns are parsed once and indexed in a segment trie (literal segments
//! by binary search, `+` as a side branch, globs at the node of their last literal
//! segment). A check walks only the trie nodes the path's segments lead to,
//! each at most once, and ranks the matches by precomputed precedence: its
//! cost depends on the path's depth and the matching rules, not on the
//! number of rules. No allocation unless the request is denied (the error
//! carries owned names).
//!
//! # Reserved paths (`sys/...`)
//!
//! Secret paths never start with `sys` ([path rules](crate::path)); that
//! prefix names Strongroom's own objects, the [`SystemPath`]s:
//! `sys/keyring` (key administration, needs `sudo`; listing key versions
//! needs `read`) and `sys/audit` (reading and verifying the audit trail,
//! needs `read`). They are checked with [`Principal::authorize_system`], as
//! the [`authorized`](crate::authorized) handles do.
//!
//! A rule names them with a pattern whose **first segment is the literal
//! `sys`**: `sys/keyring`, `sys/+`, `sys/*` (the bare pattern `sys` is
//! refused: it names nothing). Only such rules take part in a check of a
//! reserved path, and they never match a secret path. So `*`, `+/...` and
//! every other pattern starting with a wildcard, allow or deny, leave the
//! reserved paths alone: granting `*` = `sudo` gives no key administration,
//! and key administration is granted only by a rule that says `sys/...`.
//! Among the `sys/...` rules the usual precedence applies (deny wins, then
//! the most specific rule).
//!
//! ```toml
//! name = "key-admin"
//! [[path]]
//! pattern = "sys/keyring"
//! capabilities = ["sudo", "read"]
//! ```

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::path::{self, MAX_PATH_BYTES, MAX_SEGMENTS, RESERVED_PREFIX, SecretPath};

/// Errors of the path policies and principals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The principal's policies do not grant the capability on the path.
    #[error("principal {principal:?} may not {capability} {path:?}")]
    Denied {
        /// The principal's name.
        principal: String,
        /// The capability asked for.
        capability: Capability,
        /// The path (paths are not secret).
        path: String,
    },

    /// A policy file is wrong at this place.
    #[error("policy {source_name}:{line}:{column}: {message}")]
    Parse {
        /// Where the text came from: a file path, or `<string>`.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong there.
        message: String,
    },

    /// A pattern given in code is invalid.
    #[error("invalid policy pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A capability name is not one of the known ones.
    #[error(
        "unknown capability {0:?} (expected read, create, update, delete, list, rotate, lease, sudo or deny)"
    )]
    UnknownCapability(String),

    /// A principal names a policy that is not loaded.
    #[error("no policy named {0:?} is loaded")]
    UnknownPolicy(String),

    /// A policy file could not be read.
    #[error("cannot read policy file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

/// Something a principal may do to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Capability {
    /// Read a secret's value or metadata.
    Read,
    /// Write a secret that does not exist yet.
    Create,
    /// Write a new version of an existing secret, or change its metadata.
    Update,
    /// Delete, undelete or destroy versions.
    Delete,
    /// List paths below a prefix.
    List,
    /// Rotate a secret or credential.
    Rotate,
    /// Obtain a lease (dynamic credentials).
    Lease,
    /// Privileged operations (keyring rotation, policy changes).
    Sudo,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 8] = [
        Capability::Read,
        Capability::Create,
        Capability::Update,
        Capability::Delete,
        Capability::List,
        Capability::Rotate,
        Capability::Lease,
        Capability::Sudo,
    ];

    /// The lower-case name used in policy files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Rotate => "rotate",
            Self::Lease => "lease",
            Self::Sudo => "sudo",
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| PolicyError::UnknownCapability(s.to_owned()))
    }
}

/// A set of capabilities (a bit set; copying is free).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u16);

impl Capabilities {
    /// The empty set.
    pub const NONE: Self = Self(0);

    /// Whether `c` is in the set.
    pub const fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// The set with `c` added.
    #[must_use]
    pub const fn with(self, c: Capability) -> Self {
        Self(self.0 | c.bit())
    }

    /// The union of two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter().fold(Self::NONE, Self::with)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What a rule grants: some capabilities, or a deny that overrides all else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Grants these capabilities (when this is the most specific match).
    Allow(Capabilities),
    /// Denies everything on matching paths, whatever other rules say (for
    /// a pattern ending in `/*`, also on the path it is the inside of).
    Deny,
}

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// Must equal this text.
    Lit(Box<str>),
    /// `+`: any one segment.
    Any,
    /// The last segment of a `*` pattern: any segment starting with this
    /// text, followed by anything.
    Prefix(Box<str>),
}

/// A compiled path pattern (see the [module docs](self) for the syntax).
#[derive(Clone)]
pub struct PathPattern {
    text: Box<str>,
    segs: Box<[Seg]>,
    /// Bytes of `text` before the first wildcard: every matching path starts
    /// with them, which rejects most non-matches with one comparison.
    literal_len: usize,
    plus: usize,
    glob: bool,
}

/// The specificity of a pattern: larger is more specific (see the module
/// docs for the order).
type Specificity<'a> = (usize, bool, Reverse<usize>, usize, &'a str);

impl PathPattern {
    /// Parses a pattern.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Self::compile(text).map_err(|reason| PolicyError::InvalidPattern {
            pattern: path::shown(text),
            reason,
        })
    }

    fn compile(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the pattern is empty".into());
        }
        if text.len() > MAX_PATH_BYTES + 1 {
            return Err(format!("longer than {} bytes", MAX_PATH_BYTES + 1));
        }
        let (body, glob) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body.contains('*') {
            return Err("'*' is allowed only at the end of a pattern".into());
        }
        path::check_chars(body, &['+']).map_err(|e| e.to_string())?;
        let pieces: Vec<&str> = body.split('/').collect();
        if pieces.len() > MAX_SEGMENTS {
            return Err(format!("more than {MAX_SEGMENTS} segments"));
        }
        let last = pieces.len() - 1;
        let mut segs = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            if glob && i == last {
                if piece.contains('+') {
                    return Err("'+' must be a whole segment ('+*' is not allowed)".into());
                }
                segs.push(Seg::Prefix((*piece).into()));
                continue;
            }
            if piece.is_empty() {
                return Err("empty segment (double, leading or trailing '/')".into());
            }
            if *piece == "." || *piece == ".." {
                return Err("'.' and '..' segments are not allowed".into());
            }
            if *piece == "+" {
                segs.push(Seg::Any);
            } else if piece.contains('+') {
                return Err("'+' must be a whole segment".into());
            } else {
                segs.push(Seg::Lit((*piece).into()));
            }
        }
        // `sys/...` patterns name reserved paths only (see "Reserved paths").
        if matches!(&segs[..], [Seg::Lit(l)] if &**l == RESERVED_PREFIX) {
            return Err(
                "the bare 'sys' prefix names nothing; name a reserved path such as 'sys/keyring'"
                    .into(),
            );
        }
        let literal_len = text.find(['+', '*']).unwrap_or(text.len());
        let plus = segs.iter().filter(|s| matches!(s, Seg::Any)).count();
        Ok(Self {
            text: text.into(),
            segs: segs.into_boxed_slice(),
            literal_len,
            plus,
            glob,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` matches. Allocates nothing.
    pub fn matches(&self, path: &SecretPath) -> bool {
        let s = path.as_str();
        if !s
            .as_bytes()
            .starts_with(self.text.as_bytes().get(..self.literal_len).unwrap_or(&[]))
        {
            return false;
        }
        let mut parts = s.split('/');
        for seg in self.segs.iter() {
            let Some(part) = parts.next() else {
                return false;
            };
            match seg {
                Seg::Lit(l) => {
                    if part != &**l {
                        return false;
                    }
                }
                Seg::Any => {}
                Seg::Prefix(p) => return part.starts_with(&**p),
            }
        }
        parts.next().is_none()
    }

    /// Whether a deny rule with this pattern covers `path`: every path it
    /// matches and, for a pattern ending in `/*`, the path it is the inside
    /// of (`prod/app/*` covers `prod/app`; see the [module docs](self)).
    /// Allocates nothing.
    pub fn denies(&self, path: &SecretPath) -> bool {
        if self.matches(path) {
            return true;
        }
        let Some((Seg::Prefix(last), parent)) = self.segs.split_last() else {
            return false;
        };
        if !last.is_empty() || parent.is_empty() {
            return false;
        }
        let mut parts = path.as_str().split('/');
        parent.iter().all(|seg| match (seg, parts.next()) {
            (Seg::Lit(l), Some(part)) => part == &**l,
            (Seg::Any, Some(_)) => true,
            _ => false,
        }) && parts.next().is_none()
    }

    /// Whether the pattern has no wildcard.
    pub fn is_exact(&self) -> bool {
        self.literal_len == self.text.len()
    }

    fn specificity(&self) -> Specificity<'_> {
        let first_wildcard = if self.is_exact() {
            usize::MAX
        } else {
            self.literal_len
        };
        (
            first_wildcard,
            !self.glob,
            Reverse(self.plus),
            self.text.len(),
            &self.text,
        )
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathPattern({:?})", self.text)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for PathPattern {}

impl FromStr for PathPattern {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        Self::parse(s)
    }
}

/// One rule of a policy: a pattern and what it grants or denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The paths the rule applies to.
    pub pattern: PathPattern,
    /// What it grants, or deny.
    pub access: Access,
}

impl Rule {
    /// A rule granting `capabilities` on `pattern`.
    pub fn allow(
        pattern: &str,
        capabilities: impl IntoIterator<Item = Capability>,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            pattern: PathPattern::parse(pattern)?,
            access: Access::Allow(capabilities.into_iter().collect()),
        })
    }

    /// A rule denying everything on `pattern`.
    pub fn deny(pattern: &str) -> Result<Self, PolicyError> {
        Ok(Self {
            pattern: PathPattern::parse(pattern)?,
            access: Access::Deny,
        })
    }
}

/// A named list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name (principals refer to it by this).
    pub name: String,
    /// Its rules, in file order (order does not affect evaluation).
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: toml::Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    path: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    pattern: toml::Spanned<String>,
    capabilities: toml::Spanned<Vec<toml::Spanned<String>>>,
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// The largest policy file [`Policy::from_toml_file`] reads (1 MiB).
pub const MAX_POLICY_FILE_LEN: u64 = 1 << 20;

impl Policy {
    /// A policy from rules built in code.
    pub fn new(name: impl Into<String>, rules: Vec<Rule>) -> Self {
        Self {
            name: name.into(),
            rules,
        }
    }

    /// Parses a policy from TOML text (see the [module docs](self)).
    pub fn from_toml_str(text: &str) -> Result<Self, PolicyError> {
        Self::from_toml_named(text, "<string>")
    }

    /// Reads and parses a policy file.
    /// Files longer than [`MAX_POLICY_FILE_LEN`] are refused without being
    /// read whole.
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Self, PolicyError> {
        use std::io::Read as _;
        let path = path.as_ref();
        let io = |message: String| PolicyError::Io {
            path: path.display().to_string(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| io(e.to_string()))?;
        let mut bytes = Vec::new();
        file.take(MAX_POLICY_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io(e.to_string()))?;
        if bytes.len() as u64 > MAX_POLICY_FILE_LEN {
            return Err(io(format!(
                "policy file is larger than {MAX_POLICY_FILE_LEN} bytes"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|_| io("policy file is not UTF-8".into()))?;
        Self::from_toml_named(&text, &path.display().to_string())
    }

    fn from_toml_named(text: &str, source_name: &str) -> Result<Self, PolicyError> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_column(text, span.start);
            PolicyError::Parse {
                source_name: source_name.to_owned(),
                line,
                column,
                message,
            }
        };
        let file: PolicyFile = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim_end().to_owned()))?;
        let name = file.name.get_ref();
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(at(
                file.name.span(),
                "the policy name must be non-empty text without control characters".into(),
            ));
        }
        let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
        let mut rules = Vec::with_capacity(file.path.len());
        for r in &file.path {
            let ptext = r.pattern.get_ref();
            let pattern = PathPattern::compile(ptext).map_err(|reason| {
                at(
                    r.pattern.span(),
                    format!("invalid pattern {ptext:?}: {reason}"),
                )
            })?;
            if seen.insert(ptext, ()).is_some() {
                return Err(at(
                    r.pattern.span(),
                    format!("pattern {ptext:?} appears twice in this policy; merge the rules"),
                ));
            }
            let caps = r.capabilities.get_ref();
            if caps.is_empty() {
                return Err(at(
                    r.capabilities.span(),
                    "empty capability list (use [\"deny\"] to deny, or remove the rule)".into(),
                ));
            }
            let mut set = Capabilities::NONE;
            let mut deny = false;
            for c in caps {
                if c.get_ref() == "deny" {
                    deny = true;
                } else {
                    let cap = c
                        .get_ref()
                        .parse::<Capability>()
                        .map_err(|e| at(c.span(), e.to_string()))?;
                    set = set.with(cap);
                }
            }
            if deny && !set.is_empty() {
                return Err(at(
                    r.capabilities.span(),
                    "\"deny\" cannot be combined with other capabilities".into(),
                ));
            }
            rules.push(Rule {
                pattern,
                access: if deny {
                    Access::Deny
                } else {
                    Access::Allow(set)
                },
            });
        }
        Ok(Self {
            name: name.clone(),
            rules,
        })
    }
}

/// How a check was decided, borrowing the deciding pattern (for audit and
/// debugging; building it allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The most specific matching rule grants the capability.
    Allowed {
        /// The deciding pattern.
        rule: &'a str,
    },
    /// A matching rule says deny.
    DeniedByRule {
        /// The deny pattern.
        rule: &'a str,
    },
    /// The most specific matching rule does not grant the capability.
    NotGranted {
        /// The deciding pattern.
        rule: &'a str,
    },
    /// No rule matches the path.
    NoMatchingRule,
}

impl Decision<'_> {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// A rule as the index refers to it: its position in the deny list or in
/// the specificity-sorted allow list.
#[derive(Debug, Clone, Copy)]
enum RuleRef {
    Deny(usize),
    Allow(usize),
}

/// A segment trie over the patterns. Each node is reached by exactly one
/// sequence of literal and `+` segments, so a check visits each node at most
/// once, and only nodes on routes that the path's segments follow.
#[derive(Debug, Default, Clone)]
struct Node {
    /// Children for literal segments, sorted by segment (binary search is
    /// faster than hashing for the few children a node has).
    lit: Vec<(Box<str>, Node)>,
    /// The child for a `+` segment.
    plus: Option<Box<Node>>,
    /// Rules whose (non-glob) pattern ends here: they match a path that ends
    /// here.
    end: Vec<RuleRef>,
    /// Glob rules: they match if the next path segment starts with the
    /// prefix (anything may follow).
    globs: Vec<(Box<str>, RuleRef)>,
}

impl Node {
    fn insert(&mut self, pattern: &PathPattern, r: RuleRef) {
        let mut node = self;
        for seg in pattern.segs.iter() {
            match seg {
                Seg::Lit(l) => {
                    let i = match node.lit.binary_search_by(|(k, _)| (**k).cmp(&**l)) {
                        Ok(i) => i,
                        Err(i) => {
                            node.lit.insert(i, (l.clone(), Node::default()));
                            i
                        }
                    };
                    match node.lit.get_mut(i) {
                        Some((_, child)) => node = child,
                        None => return,
                    }
                }
                Seg::Any => node = node.plus.get_or_insert_with(Box::default),
                Seg::Prefix(p) => {
                    node.globs.push((p.clone(), r));
                    // A deny on `x/*` also covers `x`, the path ending here.
                    if p.is_empty() && matches!(r, RuleRef::Deny(_)) && pattern.segs.len() > 1 {
                        node.end.push(r);
                    }
                    return;
                }
            }
        }
        node.end.push(r);
    }

    /// Visits every rule matching `rest` (the path's remaining segments,
    /// `None` once all are consumed).
    fn visit(&self, rest: Option<&str>, acc: &mut Matches) {
        let Some(rest) = rest else {
            self.end.iter().for_each(|r| acc.add(*r));
            return;
        };
        let (seg, tail) = match rest.split_once('/') {
            Some((seg, tail)) => (seg, Some(tail)),
            None => (rest, None),
        };
        for (prefix, r) in &self.globs {
            if seg.starts_with(&**prefix) {
                acc.add(*r);
            }
        }
        if let Ok(i) = self.lit.binary_search_by(|(k, _)| (**k).cmp(seg))
            && let Some((_, child)) = self.lit.get(i)
        {
            child.visit(tail, acc);
        }
        if let Some(child) = &self.plus {
            child.visit(tail, acc);
        }
    }
}

/// The outcome of a walk: the first deny found and the most specific allow.
#[derive(Default)]
struct Matches {
    deny: Option<usize>,
    best: Option<usize>,
}

impl Matches {
    fn add(&mut self, r: RuleRef) {
        match r {
            RuleRef::Deny(i) => self.deny = Some(self.deny.map_or(i, |d| d.min(i))),
            RuleRef::Allow(i) => self.best = Some(self.best.map_or(i, |b| b.min(i))),
        }
    }
}

/// The compiled rules of one or more policies, ready for fast checks.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    deny: Vec<PathPattern>,
    /// Merged by pattern, most specific first.
    allow: Vec<(PathPattern, Capabilities)>,
    index: Node,
}

impl PolicySet {
    /// Compiles the union of `policies` (same patterns merged, deny rules
    /// separated, allow rules sorted by specificity, all indexed by segment).
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Self {
        let mut deny: BTreeMap<&str, &PathPattern> = BTreeMap::new();
        let mut allow: BTreeMap<&str, (&PathPattern, Capabilities)> = BTreeMap::new();
        for policy in policies {
            for rule in &policy.rules {
                match rule.access {
                    Access::Deny => {
                        deny.insert(rule.pattern.as_str(), &rule.pattern);
                    }
                    Access::Allow(caps) => {
                        allow
                            .entry(rule.pattern.as_str())
                            .and_modify(|e| e.1 = e.1.union(caps))
                            .or_insert((&rule.pattern, caps));
                    }
                }
            }
        }
        let deny: Vec<PathPattern> = deny.into_values().cloned().collect();
        let mut allow: Vec<(PathPattern, Capabilities)> =
            allow.into_values().map(|(p, c)| (p.clone(), c)).collect();
        allow.sort_by(|a, b| b.0.specificity().cmp(&a.0.specificity()));
        let mut index = Node::default();
        for (i, p) in deny.iter().enumerate() {
            index.insert(p, RuleRef::Deny(i));
        }
        for (i, (p, _)) in allow.iter().enumerate() {
            index.insert(p, RuleRef::Allow(i));
        }
        Self { deny, allow, index }
    }

    fn matches(&self, path: &SecretPath) -> Matches {
        let mut m = Matches::default();
        self.index.visit(Some(path.as_str()), &mut m);
        m
    }

    /// Decides `capability` on `path`, saying which rule decided.
    pub fn evaluate(&self, capability: Capability, path: &SecretPath) -> Decision<'_> {
        let m = self.matches(path);
        if let Some(p) = m.deny.and_then(|i| self.deny.get(i)) {
            return Decision::DeniedByRule { rule: p.as_str() };
        }
        match m.best.and_then(|i| self.allow.get(i)) {
            Some((p, caps)) if caps.contains(capability) => Decision::Allowed { rule: p.as_str() },
            Some((p, _)) => Decision::NotGranted { rule: p.as_str() },
            None => Decision::NoMatchingRule,
        }
    }

    /// Everything granted on `path` (empty if denied or nothing matches).
    pub fn capabilities(&self, path: &SecretPath) -> Capabilities {
        let m = self.matches(path);
        if m.deny.is_some() {
            return Capabilities::NONE;
        }
        m.best
            .and_then(|i| self.allow.get(i))
            .map_or(Capabilities::NONE, |(_, c)| *c)
    }

    /// Whether `capability` on `path` is allowed.
    pub fn allows(&self, capability: Capability, path: &SecretPath) -> bool {
        self.evaluate(capability, path).is_allowed()
    }

    /// The allow patterns in precedence order (most specific first).
    pub fn precedence(&self) -> impl Iterator<Item = &str> {
        self.allow.iter().map(|(p, _)| p.as_str())
    }

    /// The same decision by trying every pattern in turn: the reference
    /// the index is tested against.
    #[cfg(test)]
    fn evaluate_linear(&self, capability: Capability, path: &SecretPath) -> Decision<'_> {
        if let Some(p) = self.deny.iter().find(|p| p.denies(path)) {
            return Decision::DeniedByRule { rule: p.as_str() };
        }
        match self.allow.iter().find(|(p, _)| p.matches(path)) {
            Some((p, caps)) if caps.contains(capability) => Decision::Allowed { rule: p.as_str() },
            Some((p, _)) => Decision::NotGranted { rule: p.as_str() },
            None => Decision::NoMatchingRule,
        }
    }
}

/// A service identity and its compiled policies. Cheap to clone (the
/// compiled set is shared).
#[derive(Debug, Clone)]
pub struct Principal {
    name: Arc<str>,
    policies: Arc<[String]>,
    set: Arc<PolicySet>,
}

impl Principal {
    /// A principal holding `policies`.
    pub fn new<'a>(
        name: impl Into<String>,
        policies: impl IntoIterator<Item = &'a Policy>,
    ) -> Self {
        let policies: Vec<&Policy> = policies.into_iter().collect();
        Self {
            name: name.into().into(),
            policies: policies.iter().map(|p| p.name.clone()).collect(),
            set: Arc::new(PolicySet::new(policies)),
        }
    }

    /// The principal's name (as it appears in audit records).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of its policies.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }

    /// Its compiled rules.
    pub fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// Checks `capability` on `path`; see [`authorize`].
    pub fn authorize(&self, capability: Capability, path: &SecretPath) -> Result<(), PolicyError> {
        authorize(self, capability, path)
    }
}

/// Allows the request, or returns [`PolicyError::Denied`]. Allocates only
/// when denying.
pub fn authorize(
    principal: &Principal,
    capability: Capability,
    path: &SecretPath,
) -> Result<(), PolicyError> {
    if principal.set.allows(capability, path) {
        Ok(())
    } else {
        Err(PolicyError::Denied {
            principal: principal.name.to_string(),
            capability,
            path: path.as_str().to_owned(),
        })
    }
}

/// A reserved path naming one of Strongroom's own objects (see "Reserved
/// paths" in the [module docs](self)). Only rules whose pattern starts with
/// the literal segment `sys` match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SystemPath {
    /// `sys/keyring`: key administration (`sudo`) and key listing (`read`).
    Keyring,
    /// `sys/audit`: reading and verifying the audit trail (`read`).
    Audit,
}

impl SystemPath {
    /// The path as text, `sys/...`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Keyring => "sys/keyring",
            Self::Audit => "sys/audit",
        }
    }
}

impl fmt::Display for SystemPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PolicySet {
    /// Decides `capability` on a reserved path: only rules whose pattern
    /// starts with the literal segment `sys` take part.
    pub fn evaluate_system(&self, capability: Capability, path: SystemPath) -> Decision<'_> {
        let mut m = Matches::default();
        let rest = path.as_str().split_once('/').map(|(_, rest)| rest);
        if let Ok(i) = self
            .index
            .lit
            .binary_search_by(|(k, _)| (**k).cmp(RESERVED_PREFIX))
            && let Some((_, sys)) = self.index.lit.get(i)
        {
            sys.visit(rest, &mut m);
        }
        if let Some(p) = m.deny.and_then(|i| self.deny.get(i)) {
            return Decision::DeniedByRule { rule: p.as_str() };
        }
        match m.best.and_then(|i| self.allow.get(i)) {
            Some((p, caps)) if caps.contains(capability) => Decision::Allowed { rule: p.as_str() },
            Some((p, _)) => Decision::NotGranted { rule: p.as_str() },
            None => Decision::NoMatchingRule,
        }
    }
}

impl Principal {
    /// Checks `capability` on the reserved path `path`, or returns
    /// [`PolicyError::Denied`] naming it.
    pub fn authorize_system(
        &self,
        capability: Capability,
        path: SystemPath,
    ) -> Result<(), PolicyError> {
        if self.set.evaluate_system(capability, path).is_allowed() {
            Ok(())
        } else {
            Err(PolicyError::Denied {
                principal: self.name.to_string(),
                capability,
                path: path.as_str().to_owned(),
            })
        }
    }
}

/// Loaded policies by name, from which principals are built.
#[derive(Debug, Clone, Default)]
pub struct PolicyRegistry {
    by_name: BTreeMap<String, Policy>,
}

impl PolicyRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a policy, returning the one it replaced.
    pub fn insert(&mut self, policy: Policy) -> Option<Policy> {
        self.by_name.insert(policy.name.clone(), policy)
    }

    /// Reads a policy file and adds it, returning its name.
    pub fn load_toml_file(
        &mut self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<String, PolicyError> {
        let p = Policy::from_toml_file(path)?;
        let name = p.name.clone();
        self.insert(p);
        Ok(name)
    }

    /// A policy by name.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.by_name.get(name)
    }

    /// A principal holding the named policies.
    pub fn principal(&self, name: &str, policies: &[&str]) -> Result<Principal, PolicyError> {
        let found = policies
            .iter()
            .map(|n| {
                self.by_name
                    .get(*n)
                    .ok_or_else(|| PolicyError::UnknownPolicy((*n).to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Principal::new(name, found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    fn p(s: &str) -> SecretPath {
        SecretPath::parse(s).unwrap()
    }

    fn pat(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    #[test]
    fn pattern_matching() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "prod/app/db",
                &["prod/app/db"],
                &["prod/app/db/x", "prod/app", "prod/app/dbx"],
            ),
            (
                "prod/app/*",
                &["prod/app/db", "prod/app/x/y"],
                &["prod/app", "prod/apple", "prod"],
            ),
            (
                "prod/app*",
                &["prod/app", "prod/apple", "prod/app/x/y"],
                &["prod/ap", "prod"],
            ),
            (
                "prod/+/db",
                &["prod/a/db", "prod/b/db"],
                &["prod/db", "prod/a/b/db", "prod/a/db/x"],
            ),
            (
                "+/app/*",
                &["prod/app/x", "dev/app/x/y"],
                &["prod/other/x", "prod/app"],
            ),
            ("prod/+/*", &["prod/a/b", "prod/a/b/c"], &["prod/a", "prod"]),
            ("prod/+", &["prod/a"], &["prod", "prod/a/b"]),
            ("*", &["a", "prod/x/y"], &[]),
            ("+", &["a"], &["a/b"]),
        ];
        for (pattern, yes, no) in cases {
            let pp = pat(pattern);
            for y in *yes {
                assert!(pp.matches(&p(y)), "{pattern} should match {y}");
            }
            for n in *no {
                assert!(!pp.matches(&p(n)), "{pattern} should not match {n}");
            }
        }
    }

    #[test]
    fn invalid_patterns() {
        for bad in [
            "",
            "prod/*/x",
            "prod/**",
            "prod//x",
            "/prod",
            "prod/",
            "prod/../x",
            "prod/./*",
            "Prod/*",
            "prod/a+/x",
            "prod/+*",
            "prod/x y",
            "prod/%2e/x",
            "sys",
            "pr\u{043e}d/*",
        ] {
            assert!(
                PathPattern::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    /// The precedence table of the module docs, row by row.
    #[test]
    fn precedence_table() {
        type Row<'a> = (&'a [(&'a str, &'a [&'a str])], Capability, &'a str, bool);
        let rows: &[Row<'_>] = &[
            (&[("prod/app/*", &["read"])], Read, "prod/app/db", true),
            (&[("prod/app/*", &["read"])], Read, "prod/app", false),
            (&[("prod/app/*", &["read"])], Update, "prod/app/db", false),
            (
                &[("prod/app/*", &["read"]), ("prod/app/db", &["update"])],
                Read,
                "prod/app/db",
                false,
            ),
            (
                &[("prod/app/*", &["read"]), ("prod/app/db", &["update"])],
                Update,
                "prod/app/db",
                true,
            ),
            (
                &[("prod/*", &["read"]), ("prod/app/*", &["list"])],
                Read,
                "prod/app/x",
                false,
            ),
            (
                &[("prod/+/db", &["read"]), ("prod/app/*", &["list"])],
                Read,
                "prod/app/db",
                false,
            ),
            (
                &[("prod/+/db", &["read"]), ("+/app/*", &["list"])],
                Read,
                "prod/app/db",
                true,
            ),
            (
                &[("prod/+/db", &["read"]), ("prod/+/*", &["list"])],
                Read,
                "prod/app/db",
                true,
            ),
            (
                &[("+/+/db", &["read"]), ("+/app/db", &["list"])],
                Read,
                "prod/app/db",
                false,
            ),
            (
                &[("prod/*", &["read"]), ("prod/secret/*", &["deny"])],
                Read,
                "prod/secret/k",
                false,
            ),
            (
                &[("prod/*", &["deny"]), ("prod/app/db", &["read"])],
                Read,
                "prod/app/db",
                false,
            ),
            (
                &[("prod/app/*", &["read"]), ("prod/app/admin/*", &["deny"])],
                Read,
                "prod/app/admin",
                false,
            ),
            (
                &[("prod/app/*", &["read"]), ("prod/+/admin/*", &["deny"])],
                Read,
                "prod/app/admin",
                false,
            ),
            (&[("prod/*", &["read"])], Read, "staging/db", false),
        ];
        for (i, &(rules, cap, path, allowed)) in rows.iter().enumerate() {
            let policy = Policy::new(
                "t",
                rules
                    .iter()
                    .map(|(pattern, caps)| {
                        if caps.first() == Some(&"deny") {
                            Rule::deny(pattern).unwrap()
                        } else {
                            Rule::allow(pattern, caps.iter().map(|c| c.parse().unwrap())).unwrap()
                        }
                    })
                    .collect(),
            );
            let who = Principal::new("svc", [&policy]);
            assert_eq!(
                authorize(&who, cap, &p(path)).is_ok(),
                allowed,
                "row {i}: {rules:?} {cap} {path}"
            );
        }
        // Last row: the same pattern in two policies is merged.
        let a = Policy::new("a", vec![Rule::allow("prod/*", [Read]).unwrap()]);
        let b = Policy::new("b", vec![Rule::allow("prod/*", [Update]).unwrap()]);
        let who = Principal::new("svc", [&a, &b]);
        assert!(authorize(&who, Update, &p("prod/x")).is_ok());
        assert!(authorize(&who, Read, &p("prod/x")).is_ok());
        assert!(authorize(&who, Delete, &p("prod/x")).is_err());
    }

    #[test]
    fn specificity_order() {
        let policy = Policy::new(
            "t",
            [
                "*",
                "prod/*",
                "prod/+/*",
                "prod/+/db",
                "prod/app/*",
                "prod/app*",
                "prod/app/db",
                "+/app/db",
            ]
            .iter()
            .map(|s| Rule::allow(s, [Read]).unwrap())
            .collect(),
        );
        let set = PolicySet::new([&policy]);
        let order: Vec<&str> = set.precedence().collect();
        assert_eq!(
            order,
            [
                "prod/app/db",
                "prod/app/*",
                "prod/app*",
                "prod/+/db",
                "prod/*",
                "prod/+/*",
                "+/app/db",
                "*"
            ]
        );
    }

    #[test]
    fn lexicographic_tie_break() {
        let policy = Policy::new(
            "t",
            vec![
                Rule::allow("a/+/b/+", [Read]).unwrap(),
                Rule::allow("a/+/+/c", [List]).unwrap(),
            ],
        );
        let set = PolicySet::new([&policy]);
        assert_eq!(
            set.evaluate(Read, &p("a/x/b/c")),
            Decision::Allowed { rule: "a/+/b/+" }
        );
        assert_eq!(
            set.evaluate(List, &p("a/x/b/c")),
            Decision::NotGranted { rule: "a/+/b/+" }
        );
    }

    #[test]
    fn decision_names_the_rule_and_default_deny() {
        let policy = Policy::new(
            "t",
            vec![
                Rule::allow("prod/*", [Read, List]).unwrap(),
                Rule::deny("prod/admin/*").unwrap(),
            ],
        );
        let set = PolicySet::new([&policy]);
        assert_eq!(
            set.evaluate(Read, &p("prod/x")),
            Decision::Allowed { rule: "prod/*" }
        );
        assert_eq!(
            set.evaluate(Update, &p("prod/x")),
            Decision::NotGranted { rule: "prod/*" }
        );
        assert_eq!(
            set.evaluate(Read, &p("prod/admin/k")),
            Decision::DeniedByRule {
                rule: "prod/admin/*"
            }
        );
        assert_eq!(set.evaluate(Read, &p("dev/x")), Decision::NoMatchingRule);
        assert_eq!(
            set.capabilities(&p("prod/x")),
            Capabilities::NONE.with(Read).with(List)
        );
        assert!(set.capabilities(&p("prod/admin/k")).is_empty());

        let nobody = Principal::new("nobody", []);
        for cap in Capability::ALL {
            let err = authorize(&nobody, cap, &p("prod/x")).unwrap_err();
            assert_eq!(
                err,
                PolicyError::Denied {
                    principal: "nobody".into(),
                    capability: cap,
                    path: "prod/x".into()
                }
            );
        }
        let msg = authorize(&nobody, Read, &p("prod/x"))
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "principal \"nobody\" may not read \"prod/x\"");
    }

    /// A deny on `x/*` covers `x` (and with `+`, every `x` it names), for
    /// every capability; an allow on `x/*` still does not grant `x`; a deny
    /// whose last segment is a partial glob covers nothing more.
    #[test]
    fn deny_on_a_subtree_covers_its_root() {
        let rules = |deny: &str| {
            PolicySet::new([&Policy::new(
                "t",
                vec![
                    Rule::allow("prod/app/*", Capability::ALL).unwrap(),
                    Rule::deny(deny).unwrap(),
                ],
            )])
        };
        for deny in ["prod/app/admin/*", "prod/+/admin/*", "+/app/admin/*"] {
            let set = rules(deny);
            for cap in Capability::ALL {
                assert_eq!(
                    set.evaluate(cap, &p("prod/app/admin")),
                    Decision::DeniedByRule { rule: deny },
                    "{deny} {cap}"
                );
                assert!(!set.allows(cap, &p("prod/app/admin/x")), "{deny} {cap}");
            }
            assert!(set.capabilities(&p("prod/app/admin")).is_empty());
            // neighbours stay allowed
            assert!(set.allows(Read, &p("prod/app/administrator")), "{deny}");
            assert!(set.allows(Read, &p("prod/app/x")), "{deny}");
        }
        let pattern = PathPattern::parse("prod/+/admin/*").unwrap();
        assert!(pattern.denies(&p("prod/x/admin")));
        assert!(!pattern.matches(&p("prod/x/admin")));
        assert!(!pattern.denies(&p("prod/x")));
        assert!(!pattern.denies(&p("prod/x/admin2")));
        assert!(!pattern.denies(&p("prod/x/y/admin")));
        // a deny ending in a partial segment (`adm*`) covers what it matches
        let set = rules("prod/app/adm*");
        assert!(!set.allows(Read, &p("prod/app/admin")));
        assert!(set.allows(Read, &p("prod/app/x")));
        // allow rules keep their meaning
        let set = PolicySet::new([&Policy::new(
            "t",
            vec![Rule::allow("prod/app/*", [Read]).unwrap()],
        )]);
        assert!(!set.allows(Read, &p("prod/app")));
    }

    /// The trie index decides exactly as trying every pattern in order.
    #[test]
    fn index_agrees_with_linear_evaluation() {
        let patterns = [
            "*", "+", "+/*", "a", "a*", "a/*", "a/+", "a/+/*", "a/+/c", "a/b", "a/b*", "a/b/*",
            "a/b/c", "a/bc/*", "+/b/c", "+/+/c", "+/b/*", "a/+/+", "b/*", "a/b/c/d*",
        ];
        let paths = [
            "a",
            "b",
            "ab",
            "a/b",
            "a/bc",
            "a/b/c",
            "a/b/cd",
            "a/x/c",
            "x/b/c",
            "x/y/c",
            "a/b/c/d",
            "a/b/c/de/f",
            "b/c",
            "c",
            "x/b/q",
        ];
        // Many rule subsets, with deny mixed in, checked for every path and
        // capability.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut rules = Vec::new();
            for pat in patterns {
                match next() % 5 {
                    0 => rules.push(Rule::deny(pat).unwrap()),
                    1 => rules.push(Rule::allow(pat, [Read]).unwrap()),
                    2 => rules.push(Rule::allow(pat, [List, Update]).unwrap()),
                    _ => {}
                }
            }
            let set = PolicySet::new([&Policy::new("t", rules)]);
            for path in paths {
                for cap in [Read, List, Update] {
                    assert_eq!(
                        set.evaluate(cap, &p(path)),
                        set.evaluate_linear(cap, &p(path)),
                        "{path}"
                    );
                }
            }
        }
    }

    #[test]
    fn loads_toml() {
        let text = r#"
name = "payment-svc"
description = "payments"

[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["read", "list"]

[[path]]
pattern = "prod/payment-svc/admin/*"
capabilities = ["deny"]
"#;
        let policy = Policy::from_toml_str(text).unwrap();
        assert_eq!(policy.name, "payment-svc");
        assert_eq!(policy.rules.len(), 2);
        assert_eq!(policy.rules[1].access, Access::Deny);
        let mut reg = PolicyRegistry::new();
        reg.insert(policy);
        let svc = reg.principal("payment-svc", &["payment-svc"]).unwrap();
        assert!(svc.authorize(Read, &p("prod/payment-svc/postgres")).is_ok());
        assert!(
            svc.authorize(Read, &p("prod/payment-svc/admin/root"))
                .is_err()
        );
        assert_eq!(
            reg.principal("x", &["nope"]).unwrap_err(),
            PolicyError::UnknownPolicy("nope".into())
        );
    }

    fn parse_err(text: &str) -> (usize, usize, String) {
        match Policy::from_toml_str(text) {
            Err(PolicyError::Parse {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn toml_errors_point_at_the_line() {
        let head = "name = \"p\"\n\n[[path]]\n";
        // Unknown capability: line 5, at the bad string.
        let (l, c, m) = parse_err(&format!(
            "{head}pattern = \"prod/*\"\ncapabilities = [\"read\", \"raed\"]\n"
        ));
        assert_eq!((l, c), (5, 25), "{m}");
        assert!(m.contains("raed"), "{m}");
        // Invalid pattern: line 4, at the value.
        let (l, c, m) = parse_err(&format!(
            "{head}pattern = \"prod/../x\"\ncapabilities = [\"read\"]\n"
        ));
        assert_eq!((l, c), (4, 11), "{m}");
        assert!(m.contains("'..'"), "{m}");
        // Upper case in a pattern.
        let (l, _, m) = parse_err(&format!(
            "{head}pattern = \"Prod/*\"\ncapabilities = [\"read\"]\n"
        ));
        assert_eq!(l, 4, "{m}");
        // Unknown key.
        let (l, _, m) = parse_err(&format!(
            "{head}pattern = \"prod/*\"\ncapabilites = [\"read\"]\n"
        ));
        assert_eq!(l, 5, "{m}");
        assert!(m.contains("capabilites"), "{m}");
        // TOML syntax error.
        let (l, _, m) = parse_err(&format!(
            "{head}pattern = \"prod/*\ncapabilities = [\"read\"]\n"
        ));
        assert_eq!(l, 4, "{m}");
        // deny mixed with others.
        let (l, c, m) = parse_err(&format!(
            "{head}pattern = \"prod/*\"\ncapabilities = [\"deny\", \"read\"]\n"
        ));
        assert_eq!((l, c), (5, 16), "{m}");
        // Empty list.
        let (l, _, m) = parse_err(&format!("{head}pattern = \"prod/*\"\ncapabilities = []\n"));
        assert_eq!(l, 5, "{m}");
        // A duplicate pattern: the second one is reported.
        let (l, _, m) = parse_err(&format!(
            "{head}pattern = \"prod/*\"\ncapabilities = [\"read\"]\n[[path]]\npattern = \"prod/*\"\ncapabilities = [\"list\"]\n"
        ));
        assert_eq!(l, 7, "{m}");
        // Wrong type.
        let (l, _, m) = parse_err(&format!("{head}pattern = 3\ncapabilities = [\"read\"]\n"));
        assert_eq!(l, 4, "{m}");
        // Missing name.
        let (_, _, m) = parse_err("[[path]]\npattern = \"prod/*\"\ncapabilities = [\"read\"]\n");
        assert!(m.contains("name"), "{m}");
        // The message names the place.
        let e = Policy::from_toml_str(
            "name = \"p\"\n[[path]]\npattern = \"a//b\"\ncapabilities=[\"read\"]",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("policy <string>:3:11: invalid pattern"),
            "{e}"
        );
    }

    #[test]
    fn toml_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        std::fs::write(
            &f,
            "name = \"p\"\n[[path]]\npattern = \"x\"\ncapabilities = [\"fly\"]\n",
        )
        .unwrap();
        let e = Policy::from_toml_file(&f).unwrap_err();
        assert!(e.to_string().contains("bad.toml:4:17"), "{e}");
        let e = Policy::from_toml_file(dir.path().join("missing.toml")).unwrap_err();
        assert!(matches!(e, PolicyError::Io { .. }));
    }

    #[test]
    fn unicode_columns_count_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }

    /// A row of the reserved-path table: rules (`["deny"]` for deny),
    /// request, expected result.
    type ReservedRow<'a> = (&'a [(&'a str, &'a [&'a str])], Capability, SystemPath, bool);

    /// Reserved paths are reached only by rules that name `sys` literally.
    #[test]
    fn reserved_paths_need_a_sys_rule() {
        let (kr, au) = (SystemPath::Keyring, SystemPath::Audit);
        let all: &[&str] = &["read", "list", "rotate", "lease", "sudo"];
        let rows: &[ReservedRow<'_>] = &[
            // wildcards in the first segment never reach a reserved path
            (&[("*", all)], Sudo, kr, false),
            (&[("+/*", all)], Sudo, kr, false),
            (&[("sys*", all)], Sudo, kr, false),
            // exact, `+` and `*` rules under `sys`
            (&[("sys/keyring", &["sudo"])], Sudo, kr, true),
            (&[("sys/keyring", &["sudo"])], Sudo, au, false),
            (&[("sys/keyring", &["read"])], Sudo, kr, false),
            (&[("sys/+", &["read"])], Read, au, true),
            (&[("sys/*", &["read"])], Read, au, true),
            // deny wins among sys rules; a wildcard deny does not reach them
            (
                &[("sys/keyring", &["sudo"]), ("sys/*", &["deny"])],
                Sudo,
                kr,
                false,
            ),
            (
                &[("sys/keyring", &["sudo"]), ("*", &["deny"])],
                Sudo,
                kr,
                true,
            ),
        ];
        for (rules, cap, path, want) in rules_iter(rows) {
            let got = Principal::new("p", [&Policy::new("p", rules)])
                .authorize_system(cap, path)
                .is_ok();
            assert_eq!(got, want, "{cap} {path}");
        }
        // a sys rule never matches a secret path, and `sys` alone is refused
        let rule = Rule::allow("sys/*", Capability::ALL).unwrap();
        let set = PolicySet::new([&Policy::new("p", vec![rule])]);
        assert!(!set.allows(Read, &p("system/x")));
        assert!(PathPattern::parse("sys").is_err());
        let toml = "name = 'k'\n[[path]]\npattern = 'sys/keyring'\ncapabilities = ['sudo']\n";
        assert!(Policy::from_toml_str(toml).is_ok());
        // the denial names the reserved path
        let err = Principal::new("p", [])
            .authorize_system(Sudo, kr)
            .unwrap_err();
        assert!(err.to_string().contains("sys/keyring"), "{err}");
    }

    /// Builds the rules of each row of a table.
    fn rules_iter<'a>(
        rows: &'a [ReservedRow<'a>],
    ) -> impl Iterator<Item = (Vec<Rule>, Capability, SystemPath, bool)> + 'a {
        rows.iter().map(|(rules, cap, path, want)| {
            let rules = rules
                .iter()
                .map(|(pattern, caps)| {
                    if caps == &["deny"] {
                        Rule::deny(pattern).unwrap()
                    } else {
                        Rule::allow(pattern, caps.iter().map(|c| c.parse().unwrap())).unwrap()
                    }
                })
                .collect();
            (rules, *cap, *path, *want)
        })
    }
}
