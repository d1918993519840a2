//! A compiled set of policies: the trie of rules and the decision for a path.

use super::*;

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
pub(super) enum RuleRef {
    Deny(usize),
    Allow(usize),
}

/// A segment trie over the patterns. Each node is reached by exactly one
/// sequence of literal and `+` segments, so a check visits each node at most
/// once, and only nodes on routes that the path's segments follow.
#[derive(Debug, Default, Clone)]
pub(super) struct Node {
    /// Children for literal segments, sorted by segment (binary search is
    /// faster than hashing for the few children a node has).
    pub(super) lit: Vec<(Box<str>, Node)>,
    /// The child for a `+` segment.
    pub(super) plus: Option<Box<Node>>,
    /// Rules whose (non-glob) pattern ends here: they match a path that ends
    /// here.
    pub(super) end: Vec<RuleRef>,
    /// Glob rules: they match if the next path segment starts with the
    /// prefix (anything may follow).
    pub(super) globs: Vec<(Box<str>, RuleRef)>,
}

impl Node {
    pub(super) fn insert(&mut self, pattern: &PathPattern, r: RuleRef) {
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
    pub(super) fn visit(&self, rest: Option<&str>, acc: &mut Matches) {
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
pub(super) struct Matches {
    pub(super) deny: Option<usize>,
    pub(super) best: Option<usize>,
}

impl Matches {
    pub(super) fn add(&mut self, r: RuleRef) {
        match r {
            RuleRef::Deny(i) => self.deny = Some(self.deny.map_or(i, |d| d.min(i))),
            RuleRef::Allow(i) => self.best = Some(self.best.map_or(i, |b| b.min(i))),
        }
    }
}

/// The compiled rules of one or more policies, ready for fast checks.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub(super) deny: Vec<PathPattern>,
    /// Merged by pattern, most specific first.
    pub(super) allow: Vec<(PathPattern, Capabilities)>,
    pub(super) index: Node,
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

    pub(super) fn matches(&self, path: &SecretPath) -> Matches {
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
    pub(super) fn evaluate_linear(
        &self,
        capability: Capability,
        path: &SecretPath,
    ) -> Decision<'_> {
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
