//! Principals, the reserved `sys/` paths, authorisation and the registry of
//! named policies.

use super::*;

/// A service identity and its compiled policies. Cheap to clone (the
/// compiled set is shared).
#[derive(Debug, Clone)]
pub struct Principal {
    pub(super) name: Arc<str>,
    pub(super) policies: Arc<[String]>,
    pub(super) set: Arc<PolicySet>,
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
/// paths" in the [module docs](super)). Only rules whose pattern starts with
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
    pub(super) by_name: BTreeMap<String, Policy>,
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

    /// Every policy, by name in order.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.by_name.values()
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
