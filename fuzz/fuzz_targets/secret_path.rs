//! Validates arbitrary text as a secret path (and as a policy pattern).
//! Must never panic. Acceptance agrees with the documented rules; an
//! accepted path is its own canonical form and survives every conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::path::{MAX_PATH_BYTES, MAX_SEGMENTS, RESERVED_PREFIX, SecretPath};
use strongroom::policy::PathPattern;

/// The rules of the `path` module docs, written out plainly.
fn documented_valid(s: &str) -> bool {
    let segs: Vec<&str> = s.split('/').collect();
    !s.is_empty()
        && s.len() <= MAX_PATH_BYTES
        && segs.len() <= MAX_SEGMENTS
        && segs[0] != RESERVED_PREFIX
        && segs.iter().all(|g| {
            !g.is_empty()
                && *g != "."
                && *g != ".."
                && g.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let valid = SecretPath::validate(s).is_ok();
    assert_eq!(valid, documented_valid(s), "{s:?}");
    let parsed = SecretPath::parse(s);
    assert_eq!(parsed.is_ok(), valid);
    let from_json = serde_json::from_str::<SecretPath>(&serde_json::to_string(s).unwrap());
    assert_eq!(from_json.is_ok(), valid);
    let pattern = PathPattern::parse(s);
    if let Ok(pat) = &pattern {
        assert_eq!(pat.as_str(), s);
        assert_eq!(PathPattern::parse(&pat.to_string()).unwrap(), *pat);
    }
    let Ok(p) = parsed else {
        return;
    };
    assert_eq!(p.as_str(), s);
    assert_eq!(p.to_string(), s);
    assert_eq!(from_json.unwrap(), p);
    assert_eq!(
        serde_json::from_str::<SecretPath>(&serde_json::to_string(&p).unwrap()).unwrap(),
        p
    );
    assert_eq!(p.depth(), p.segments().count());
    assert!(p.starts_with(&p));
    if let Some(parent) = p.parent() {
        assert_eq!(SecretPath::parse(parent.as_str()).unwrap(), parent);
        assert_eq!(parent.depth() + 1, p.depth());
        assert!(p.starts_with(&parent) && !parent.starts_with(&p));
    } else {
        assert_eq!(p.depth(), 1);
    }
    if let Ok(child) = p.join("x") {
        assert!(child.starts_with(&p));
        assert_eq!(child.parent().as_ref(), Some(&p));
    }
    // A valid path is an exact pattern matching itself only.
    let pat = pattern.expect("a valid path is a valid pattern");
    assert!(pat.is_exact() && pat.matches(&p));
    if let Ok(child) = p.join("x") {
        assert!(!pat.matches(&child));
        let below = PathPattern::parse(&format!("{s}/*")).unwrap();
        assert!(below.matches(&child) && !below.matches(&p));
    }
    assert!(PathPattern::parse(&format!("{s}*")).unwrap().matches(&p));
});
