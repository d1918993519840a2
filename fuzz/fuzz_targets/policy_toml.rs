//! Parses arbitrary text as policy TOML. Must never panic. A policy that
//! parses, written back as TOML, parses to the same policy; the compiled
//! set (segment trie) decides every check, on secret paths and on the
//! reserved `sys/...` paths, as a linear scan over the rules does under the
//! documented precedence and deny coverage.
//!
//! Input: up to four policy documents separated by 0x01, then 0x00, then
//! paths to check, one per line.
#![no_main]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use strongroom::path::SecretPath;
use strongroom::policy::{
    Access, Capabilities, Capability, Decision, PathPattern, Policy, PolicySet, SystemPath,
};

fn toml_string(s: &str) -> String {
    // A JSON string is a TOML basic string for text without DEL or C1
    // controls, which policy names and patterns cannot hold.
    serde_json::to_string(s).unwrap()
}

fn to_toml(p: &Policy) -> String {
    let mut out = format!("name = {}\n", toml_string(&p.name));
    for r in &p.rules {
        let caps: Vec<String> = match r.access {
            Access::Deny => vec![toml_string("deny")],
            Access::Allow(c) => c.iter().map(|c| toml_string(c.as_str())).collect(),
        };
        out += &format!(
            "[[path]]\npattern = {}\ncapabilities = [{}]\n",
            toml_string(r.pattern.as_str()),
            caps.join(", ")
        );
    }
    out
}

/// The documented specificity key (larger is more specific).
fn specificity(p: &str) -> (usize, bool, Reverse<usize>, usize, &str) {
    let first = p.find(['+', '*']).unwrap_or(usize::MAX);
    let plus = p
        .trim_end_matches('*')
        .split('/')
        .filter(|s| *s == "+")
        .count();
    (first, !p.ends_with('*'), Reverse(plus), p.len(), p)
}

/// The documented pattern semantics, segment by segment.
fn naive_matches(pattern: &str, path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    match pattern.strip_suffix('*') {
        Some(body) => {
            let pieces: Vec<&str> = body.split('/').collect();
            let last = pieces.len() - 1;
            if segs.len() < pieces.len() {
                return false;
            }
            pieces[..last]
                .iter()
                .zip(&segs)
                .all(|(p, s)| *p == "+" || p == s)
                && segs[last].starts_with(pieces[last])
        }
        None => {
            let pieces: Vec<&str> = pattern.split('/').collect();
            pieces.len() == segs.len() && pieces.iter().zip(&segs).all(|(p, s)| *p == "+" || p == s)
        }
    }
}

/// The documented deny coverage: what the pattern matches and, for a
/// pattern ending in `/*`, the path it is the inside of.
fn naive_denies(pattern: &str, path: &str) -> bool {
    naive_matches(pattern, path)
        || pattern
            .strip_suffix("/*")
            .is_some_and(|parent| naive_matches(parent, path))
}

/// The reference decision over deny patterns (in text order) and allow
/// rules (most specific first) that take part.
fn reference<'a>(
    deny: &BTreeSet<&'a str>,
    ranked: &[(&'a str, Capabilities)],
    path: &str,
    cap: Capability,
    takes_part: impl Fn(&str) -> bool,
) -> Decision<'a> {
    if let Some(t) = deny
        .iter()
        .copied()
        .find(|t| takes_part(t) && naive_denies(t, path))
    {
        return Decision::DeniedByRule { rule: t };
    }
    match ranked
        .iter()
        .copied()
        .find(|(t, _)| takes_part(t) && naive_matches(t, path))
    {
        Some((t, c)) if c.contains(cap) => Decision::Allowed { rule: t },
        Some((t, _)) => Decision::NotGranted { rule: t },
        None => Decision::NoMatchingRule,
    }
}

/// Whether a pattern starts with the literal segment `sys` (the only rules
/// that reach reserved paths).
fn is_system(pattern: &str) -> bool {
    pattern.split('/').next() == Some("sys")
}

/// Paths a pattern is likely to match or nearly match.
fn paths_near(pattern: &str, out: &mut Vec<String>) {
    let body: String = pattern
        .trim_end_matches('*')
        .split('/')
        .map(|s| if s == "+" { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    let body = body.trim_end_matches('/').to_owned();
    out.push(format!("{body}/y"));
    out.push(format!("{body}y/z"));
    if let Some((parent, _)) = body.rsplit_once('/') {
        out.push(parent.to_owned());
    }
    out.push(body);
}

fuzz_target!(|data: &[u8]| {
    let (docs, paths) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut policies = Vec::new();
    for doc in docs.split(|&b| b == 1).take(4) {
        let Ok(text) = std::str::from_utf8(doc) else {
            continue;
        };
        let Ok(p) = Policy::from_toml_str(text) else {
            continue;
        };
        let again = to_toml(&p);
        let q = Policy::from_toml_str(&again)
            .unwrap_or_else(|e| panic!("re-encoded policy does not parse: {e}\n{again}"));
        assert_eq!(p, q);
        policies.push(p);
    }

    let set = PolicySet::new(&policies);
    // The allow list is in the documented precedence order.
    let order: Vec<&str> = set.precedence().collect();
    for w in order.windows(2) {
        assert!(specificity(w[0]) > specificity(w[1]), "{w:?}");
    }

    // The reference: deny rules by pattern text, allow rules merged by
    // pattern and ranked by specificity.
    let mut patterns: BTreeMap<&str, &PathPattern> = BTreeMap::new();
    let mut deny: BTreeSet<&str> = BTreeSet::new();
    let mut allow: BTreeMap<&str, Capabilities> = BTreeMap::new();
    for r in policies.iter().flat_map(|p| &p.rules) {
        let t = r.pattern.as_str();
        patterns.insert(t, &r.pattern);
        match r.access {
            Access::Deny => {
                deny.insert(t);
            }
            Access::Allow(c) => {
                let e = allow.entry(t).or_insert(Capabilities::NONE);
                *e = e.union(c);
            }
        }
    }
    let mut ranked: Vec<(&str, Capabilities)> = allow.into_iter().collect();
    ranked.sort_by(|a, b| specificity(b.0).cmp(&specificity(a.0)));
    assert_eq!(order, ranked.iter().map(|r| r.0).collect::<Vec<_>>());

    let mut candidates: Vec<String> = Vec::new();
    if let Ok(text) = std::str::from_utf8(paths) {
        candidates.extend(text.lines().take(8).map(str::to_owned));
    }
    for t in patterns.keys().take(8) {
        paths_near(t, &mut candidates);
    }
    for c in &candidates {
        let Ok(path) = SecretPath::parse(c) else {
            continue;
        };
        for (t, p) in &patterns {
            assert_eq!(p.matches(&path), naive_matches(t, c), "{t:?} on {c:?}");
            assert_eq!(p.denies(&path), naive_denies(t, c), "{t:?} on {c:?}");
        }
        let caps = set.capabilities(&path);
        for cap in Capability::ALL {
            let expected = reference(&deny, &ranked, c, cap, |_| true);
            assert_eq!(set.evaluate(cap, &path), expected, "{cap} on {c:?}");
            assert_eq!(set.allows(cap, &path), caps.contains(cap));
        }
    }
    for sys in [SystemPath::Keyring, SystemPath::Audit] {
        for cap in Capability::ALL {
            let expected = reference(&deny, &ranked, sys.as_str(), cap, is_system);
            assert_eq!(set.evaluate_system(cap, sys), expected, "{cap} on {sys}");
        }
    }
});
