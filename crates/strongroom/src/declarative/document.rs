//! The declaration files: their TOML shape, reading a file or a directory
//! of them, and the merged [`Declared`] state.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DeclarativeError, NamingRule, NamingRules};
use crate::path::SecretPath;
use crate::policy::{Access, Capability, PathPattern, Policy, PolicyError, Rule};
use crate::secrets::MAX_MAX_VERSIONS;

/// The largest declaration file read (1 MiB).
pub const MAX_FILE_LEN: u64 = 1 << 20;
/// The longest value `generate` makes, in characters.
pub const MAX_GENERATE_LENGTH: u32 = 4096;

/// One rule of a declared policy, as in a policy file's `[[path]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// The path pattern.
    pub pattern: String,
    /// The capabilities (`["deny"]` to deny), in canonical order.
    pub capabilities: Vec<String>,
}

/// A declared policy (its name is its key in [`Declared::policies`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// The optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The rules, in file order.
    pub rules: Vec<RuleSpec>,
}

impl PolicySpec {
    /// The policy named `name` these rules make.
    pub fn to_policy(&self, name: &str) -> Result<Policy, PolicyError> {
        let rules = self
            .rules
            .iter()
            .map(|r| {
                if r.capabilities.iter().any(|c| c == "deny") {
                    Rule::deny(&r.pattern)
                } else {
                    let caps = r
                        .capabilities
                        .iter()
                        .map(|c| c.parse::<Capability>())
                        .collect::<Result<Vec<_>, _>>()?;
                    Rule::allow(&r.pattern, caps)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy::new(name, rules))
    }
}

/// Creating a secret's value on apply when the secret does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// Characters of the value (letters and digits), 1 to
    /// [`MAX_GENERATE_LENGTH`].
    pub length: u32,
}

/// A secret's declared metadata. Every field is managed: one left out is
/// absent in the store (no owner, no tags, the store's default
/// `max_versions`). Custom key-values are not managed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSpec {
    /// The owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The tags.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// The rotation interval, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_interval_secs: Option<u64>,
    /// The secret's own version limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u32>,
    /// Create a random value on apply if the secret does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<Generate>,
}

/// A rotated credential's declared schedule (its name is its key in
/// [`Declared::rotation`]). A field left out falls back to the engine's own
/// [`RotationOptions`](crate::rotation::RotationOptions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSpec {
    /// Rotate this long after the last promotion, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// How long `previous` stays valid after a promotion, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_secs: Option<u64>,
}

/// The declared state: every file merged. Holds no secret values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    /// Policies by name.
    pub policies: BTreeMap<String, PolicySpec>,
    /// Principals by name: the names of their policies.
    pub principals: BTreeMap<String, Vec<String>>,
    /// Secrets' metadata by path.
    pub secrets: BTreeMap<String, SecretSpec>,
    /// Naming rules by name.
    pub naming: NamingRules,
    /// Rotation schedules by credential name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rotation: BTreeMap<String, RotationSpec>,
    /// The alert rules (`[alerts]`, an
    /// [`AlertConfig`](crate::alerts::AlertConfig) with its defaults filled
    /// in), as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<serde_json::Value>,
    /// Sections kept by other crates (`[dynamic.<name>]`, such as the
    /// PostgreSQL role catalog), as JSON, checked by their
    /// [`Section`](super::Section) when planned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    policy: Vec<PolicyFile>,
    #[serde(default)]
    principals: BTreeMap<String, toml::Spanned<Vec<String>>>,
    #[serde(default)]
    secrets: BTreeMap<String, toml::Spanned<SecretFile>>,
    #[serde(default)]
    naming: BTreeMap<String, toml::Spanned<NamingRule>>,
    #[serde(default)]
    rotation: BTreeMap<String, toml::Spanned<RotationFile>>,
    #[serde(default)]
    dynamic: BTreeMap<String, toml::Spanned<toml::Table>>,
    #[serde(default)]
    alerts: Option<toml::Spanned<crate::alerts::AlertConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationFile {
    interval: Option<toml::Spanned<String>>,
    grace_period: Option<toml::Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: toml::Spanned<String>,
    #[serde(default)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    owner: Option<String>,
    environment: Option<String>,
    #[serde(default)]
    tags: BTreeSet<String>,
    rotation_interval: Option<toml::Spanned<String>>,
    max_versions: Option<toml::Spanned<u32>>,
    generate: Option<Generate>,
    value: Option<toml::Spanned<toml::Value>>,
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

/// Parses a duration written `<n>s`, `<n>m`, `<n>h` or `<n>d`.
pub fn parse_interval(text: &str) -> Option<Duration> {
    let (n, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// A duration in the largest unit that divides it (`30d`, `90m`, `7s`).
pub fn format_interval(secs: u64) -> String {
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= len && secs.is_multiple_of(len) {
            return format!("{}{unit}", secs / len);
        }
    }
    format!("{secs}s")
}

impl Declared {
    /// Parses one declaration file's text; `source_name` names it in errors.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Self, DeclarativeError> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_column(text, span.start);
            DeclarativeError::Parse {
                source_name: source_name.to_owned(),
                line,
                column,
                message,
            }
        };
        let doc: FileDoc = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim_end().to_owned()))?;
        let seconds = |field: &str, text: Option<&toml::Spanned<String>>| match text {
            None => Ok(None),
            Some(t) => parse_interval(t.get_ref())
                .map(|d| Some(d.as_secs()))
                .ok_or_else(|| {
                    at(
                        t.span(),
                        format!(
                            "{field} {:?} is not a number followed by s, m, h or d",
                            t.get_ref()
                        ),
                    )
                }),
        };
        let mut out = Self::default();
        for p in doc.policy {
            let name = p.name.get_ref().clone();
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                return Err(at(
                    p.name.span(),
                    "a policy name must be non-empty text".into(),
                ));
            }
            let mut rules = Vec::new();
            for r in &p.path {
                let pattern = r.pattern.get_ref();
                PathPattern::parse(pattern).map_err(|e| at(r.pattern.span(), e.to_string()))?;
                if rules.iter().any(|x: &RuleSpec| &x.pattern == pattern) {
                    return Err(at(
                        r.pattern.span(),
                        format!("pattern {pattern:?} appears twice in policy {name:?}"),
                    ));
                }
                let caps = r.capabilities.get_ref();
                let deny = caps.iter().any(|c| c.get_ref() == "deny");
                if caps.is_empty() || (deny && caps.len() > 1) {
                    return Err(at(
                        r.capabilities.span(),
                        "give [\"deny\"] alone, or a non-empty list of capabilities".into(),
                    ));
                }
                let access = if deny {
                    Access::Deny
                } else {
                    let mut set = Vec::new();
                    for c in caps {
                        set.push(
                            c.get_ref()
                                .parse::<Capability>()
                                .map_err(|e| at(c.span(), e.to_string()))?,
                        );
                    }
                    Access::Allow(set.into_iter().collect())
                };
                rules.push(RuleSpec {
                    pattern: pattern.clone(),
                    capabilities: match access {
                        Access::Allow(set) => set.iter().map(|c| c.to_string()).collect(),
                        _ => vec!["deny".into()],
                    },
                });
            }
            let spec = PolicySpec {
                description: p.description,
                rules,
            };
            if out.policies.insert(name.clone(), spec).is_some() {
                return Err(at(p.name.span(), format!("policy {name:?} appears twice")));
            }
        }
        for (name, policies) in doc.principals {
            if policies.get_ref().is_empty() {
                return Err(at(
                    policies.span(),
                    format!("principal {name:?} has no policies"),
                ));
            }
            out.principals.insert(name, policies.into_inner());
        }
        for (path, spanned) in doc.secrets {
            let span = spanned.span();
            let s = spanned.into_inner();
            if let Some(v) = &s.value {
                let (line, _) = line_column(text, v.span().start);
                return Err(DeclarativeError::ValueInFile {
                    source_name: source_name.to_owned(),
                    line,
                    path,
                });
            }
            let canonical = SecretPath::parse(&path)
                .map_err(|e| at(span.clone(), format!("secret {path:?}: {e}")))?;
            if canonical.as_str() != path {
                return Err(at(
                    span,
                    format!("secret {path:?}: write it as {canonical:?}"),
                ));
            }
            let rotation_interval_secs =
                seconds("rotation_interval", s.rotation_interval.as_ref())?;
            if let Some(m) = &s.max_versions
                && !(1..=MAX_MAX_VERSIONS).contains(m.get_ref())
            {
                return Err(at(
                    m.span(),
                    format!("max_versions must be between 1 and {MAX_MAX_VERSIONS}"),
                ));
            }
            if let Some(g) = s.generate
                && !(1..=MAX_GENERATE_LENGTH).contains(&g.length)
            {
                return Err(at(
                    span,
                    format!("generate.length must be between 1 and {MAX_GENERATE_LENGTH}"),
                ));
            }
            out.secrets.insert(
                path,
                SecretSpec {
                    owner: s.owner,
                    environment: s.environment,
                    tags: s.tags,
                    rotation_interval_secs,
                    max_versions: s.max_versions.map(toml::Spanned::into_inner),
                    generate: s.generate,
                },
            );
        }
        for (name, rule) in doc.naming {
            let span = rule.span();
            let rule = rule.into_inner();
            rule.validate()
                .map_err(|e| at(span, format!("naming rule {name:?}: {e}")))?;
            out.naming.rules.insert(name, rule);
        }
        for (name, spanned) in doc.rotation {
            let span = spanned.span();
            crate::rotation::validate_name(&name)
                .map_err(|e| at(span.clone(), format!("rotation {name:?}: {e}")))?;
            let r = spanned.into_inner();
            let spec = RotationSpec {
                interval_secs: seconds("interval", r.interval.as_ref())?,
                grace_period_secs: seconds("grace_period", r.grace_period.as_ref())?,
            };
            if spec == RotationSpec::default() {
                return Err(at(
                    span,
                    format!("rotation {name:?}: give an interval, a grace_period or both"),
                ));
            }
            out.rotation.insert(name, spec);
        }
        if let Some(alerts) = doc.alerts {
            let span = alerts.span();
            let config = alerts.into_inner();
            config
                .validate()
                .map_err(|e| at(span.clone(), e.to_string()))?;
            let value =
                serde_json::to_value(&config).map_err(|e| at(span, format!("alerts: {e}")))?;
            out.alerts = Some(value);
        }
        for (name, table) in doc.dynamic {
            let value = serde_json::to_value(table.get_ref())
                .map_err(|e| at(table.span(), format!("dynamic {name:?}: {e}")))?;
            out.dynamic.insert(name, value);
        }
        Ok(out)
    }

    /// Reads a declaration file, or every `*.toml` file of a directory (not
    /// its subdirectories), and merges them: a name declared in two files
    /// is an error naming both; a directory without `*.toml` files is an
    /// error too (so an empty checkout never plans to remove everything).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DeclarativeError> {
        let path = path.as_ref();
        let io = |p: &Path, e: String| DeclarativeError::Io {
            path: p.display().to_string(),
            message: e,
        };
        let meta = std::fs::metadata(path).map_err(|e| io(path, e.to_string()))?;
        let files = if meta.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(|e| io(path, e.to_string()))? {
                let p = entry.map_err(|e| io(path, e.to_string()))?.path();
                if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
                    files.push(p);
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(io(path, "the directory holds no *.toml file".into()));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut parsed = Vec::new();
        for f in files {
            let text = read_limited(&f).map_err(|e| io(&f, e))?;
            let name = f.display().to_string();
            parsed.push((name.clone(), Self::from_toml_str(&text, &name)?));
        }
        Self::merge(parsed)
    }

    /// Merges parsed files (file name, contents); checks that principals
    /// name declared policies.
    pub fn merge(files: Vec<(String, Self)>) -> Result<Self, DeclarativeError> {
        let mut out = Self::default();
        let mut origin: BTreeMap<(&'static str, String), String> = BTreeMap::new();
        let mut claim = |kind: &'static str, name: &str, file: &str| match origin
            .insert((kind, name.to_owned()), file.to_owned())
        {
            Some(first) => Err(DeclarativeError::Duplicate {
                kind,
                name: name.to_owned(),
                first,
                second: file.to_owned(),
            }),
            None => Ok(()),
        };
        for (file, d) in files {
            for (k, v) in d.policies {
                claim("policy", &k, &file)?;
                out.policies.insert(k, v);
            }
            for (k, v) in d.principals {
                claim("principal", &k, &file)?;
                out.principals.insert(k, v);
            }
            for (k, v) in d.secrets {
                claim("secret", &k, &file)?;
                out.secrets.insert(k, v);
            }
            for (k, v) in d.naming.rules {
                claim("naming rule", &k, &file)?;
                out.naming.rules.insert(k, v);
            }
            for (k, v) in d.rotation {
                claim("rotation schedule", &k, &file)?;
                out.rotation.insert(k, v);
            }
            if let Some(a) = d.alerts {
                claim("alerts table", "alerts", &file)?;
                out.alerts = Some(a);
            }
            for (k, v) in d.dynamic {
                claim("dynamic section", &k, &file)?;
                out.dynamic.insert(k, v);
            }
        }
        for (principal, policies) in &out.principals {
            if let Some(missing) = policies.iter().find(|p| !out.policies.contains_key(*p)) {
                return Err(DeclarativeError::UnknownPolicy {
                    principal: principal.clone(),
                    policy: missing.clone(),
                });
            }
        }
        Ok(out)
    }

    /// The SHA-256 of the declared state's canonical JSON, in hex: what a
    /// [`Plan`](super::Plan) records to be matched to its files.
    pub fn digest(&self) -> String {
        digest(&serde_json::to_vec(self).unwrap_or_default())
    }
}

/// SHA-256 in hex.
pub(super) fn digest(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(format!("the file is larger than {MAX_FILE_LEN} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "the file is not UTF-8".into())
}
