//! Rules and policies, built in code or loaded from TOML.

use super::*;

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
pub(super) struct PolicyFile {
    pub(super) name: toml::Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) path: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    pub(super) pattern: toml::Spanned<String>,
    pub(super) capabilities: toml::Spanned<Vec<toml::Spanned<String>>>,
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
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

    /// Parses a policy from TOML text (see the [module docs](super)).
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

    pub(super) fn from_toml_named(text: &str, source_name: &str) -> Result<Self, PolicyError> {
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
