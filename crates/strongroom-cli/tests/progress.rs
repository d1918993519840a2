//! Progress lines on long work: shown on a terminal, absent otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Env, ok};

/// A store with `n` secrets and a second key version to rewrap to.
fn store_to_rewrap(n: usize) -> Env {
    let env = Env::init();
    for i in 0..n {
        ok(&env.store(&["put", &format!("app/s{i}")], b"value"));
    }
    ok(&env.store(&["rotate"], b""));
    env
}

#[test]
fn rewrap_shows_progress_with_rate_and_eta_on_a_terminal() {
    let env = store_to_rewrap(12);
    let Some(o) = env.store_on_terminal(&["rewrap", "--batch", "5"]) else {
        return;
    };
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    // 12 secrets: one metadata record each (the value inside), under key 1
    assert!(text.contains("rewrap: 0/12 records"), "{text}");
    assert!(text.contains("rewrap: 12/12 records"), "{text}");
    assert!(text.contains("/s, ETA "), "{text}");
    assert!(text.contains("0 record(s) remain"), "{text}");
}

#[test]
fn rewrap_prints_no_progress_when_stderr_is_not_a_terminal() {
    let env = store_to_rewrap(3);
    let out = env.store(&["rewrap", "--batch", "2"], b"");
    ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
