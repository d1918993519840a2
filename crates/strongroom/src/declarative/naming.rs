//! Naming rules: the shapes secret paths must have, e.g.
//! `{env}/{service}/{type}` with `env` one of `prod`, `staging`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::NamingViolation;

/// One naming rule: a pattern of `/`-separated segments, each a literal or
/// a `{placeholder}`, and the values allowed per placeholder (a
/// placeholder without a list takes any one segment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamingRule {
    /// The pattern, e.g. `{env}/{service}/{type}`.
    pub pattern: String,
    /// Allowed values per placeholder, e.g. `env = ["prod", "staging"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allowed: BTreeMap<String, Vec<String>>,
}

enum Seg<'a> {
    Literal(&'a str),
    Placeholder(&'a str),
}

fn segments(pattern: &str) -> impl Iterator<Item = Seg<'_>> {
    pattern.split('/').map(
        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Seg::Placeholder(name),
            None => Seg::Literal(s),
        },
    )
}

impl NamingRule {
    /// A rule, checked: non-empty segments, placeholders a whole segment
    /// and used once, `allowed` naming only placeholders of the pattern
    /// and never empty.
    pub fn new(
        pattern: impl Into<String>,
        allowed: BTreeMap<String, Vec<String>>,
    ) -> Result<Self, String> {
        let rule = Self {
            pattern: pattern.into(),
            allowed,
        };
        rule.validate()?;
        Ok(rule)
    }

    /// Checks the rule's own shape (see [`NamingRule::new`]).
    pub fn validate(&self) -> Result<(), String> {
        let mut names = Vec::new();
        for seg in segments(&self.pattern) {
            match seg {
                Seg::Literal("") => {
                    return Err(format!("pattern {:?} has an empty segment", self.pattern));
                }
                Seg::Literal(s) if s.contains(['{', '}']) => {
                    return Err(format!(
                        "pattern {:?}: a placeholder must be a whole segment, not {s:?}",
                        self.pattern
                    ));
                }
                Seg::Literal(_) => {}
                Seg::Placeholder(n) if n.is_empty() || names.contains(&n) => {
                    return Err(format!(
                        "pattern {:?}: placeholder {{{n}}} is empty or used twice",
                        self.pattern
                    ));
                }
                Seg::Placeholder(n) => names.push(n),
            }
        }
        for (name, values) in &self.allowed {
            if !names.contains(&name.as_str()) {
                return Err(format!(
                    "allowed values for {name:?}, which is no placeholder of {:?}",
                    self.pattern
                ));
            }
            if values.is_empty() {
                return Err(format!("the allowed values for {name:?} are an empty list"));
            }
        }
        Ok(())
    }

    /// Why `path` does not follow this rule, or `None` if it does.
    fn mismatch(&self, path: &str) -> Option<String> {
        let pattern: Vec<Seg<'_>> = segments(&self.pattern).collect();
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != pattern.len() {
            return Some(format!("{} segments, not {}", pattern.len(), parts.len()));
        }
        for (seg, part) in pattern.iter().zip(&parts) {
            match seg {
                Seg::Literal(l) if l != part => {
                    return Some(format!("segment {part:?} is not {l:?}"));
                }
                Seg::Placeholder(n) => match self.allowed.get(*n) {
                    Some(values) if !values.iter().any(|v| v == part) => {
                        return Some(format!("{n} must be one of {}", values.join(", ")));
                    }
                    _ if part.is_empty() => return Some(format!("{n} is empty")),
                    _ => {}
                },
                Seg::Literal(_) => {}
            }
        }
        None
    }
}

/// The naming rules of a store, by name. A path follows them if it
/// matches at least one rule; with no rules every path does.
///
/// ```
/// use std::collections::BTreeMap;
/// use strongroom::declarative::{NamingRule, NamingRules};
/// let mut rules = NamingRules::default();
/// let allowed = BTreeMap::from([("env".to_owned(), vec!["prod".to_owned(), "staging".to_owned()])]);
/// rules.rules.insert("services".into(), NamingRule::new("{env}/{service}/{type}", allowed).unwrap());
/// assert!(rules.check("prod/payments/db").is_ok());
/// assert!(rules.check("dev/payments/db").is_err());
/// assert!(rules.check("prod/payments").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NamingRules {
    /// The rules, by name.
    pub rules: BTreeMap<String, NamingRule>,
}

impl NamingRules {
    /// Whether there are no rules (then every path follows them).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `Ok` if `path` matches at least one rule (or there are none);
    /// otherwise a [`NamingViolation`] saying why for each rule.
    pub fn check(&self, path: &str) -> Result<(), NamingViolation> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let mut why = Vec::new();
        for (name, rule) in &self.rules {
            match rule.mismatch(path) {
                None => return Ok(()),
                Some(reason) => why.push(format!("rule {name:?} ({}): {reason}", rule.pattern)),
            }
        }
        Err(NamingViolation {
            path: path.to_owned(),
            reason: why.join("; "),
        })
    }
}
