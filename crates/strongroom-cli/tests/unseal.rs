//! `unseal`: checks that a protector opens the store, and is what a second
//! `init` points to.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::{Env, fails, json, ok, stderr};

#[test]
fn unseal_checks_the_protector_and_init_points_to_it() {
    let env = Env::init();
    let again = env.run(&["init", "--db", &env.db(), "--key-file", &env.key()], b"");
    fails(&again, 9);
    let said = stderr(&again);
    assert!(said.contains("already holds a Strongroom store"), "{said}");
    assert!(said.contains("strongroom unseal"), "{said}");

    let v = json(&env.store(&["unseal", "--json"], b""));
    assert_eq!(v["protector"], "software");
    assert_eq!(v["primary_key_version"], 1);
    assert_eq!(v["read_only"], false);
    let text = ok(&env.store(&["unseal"], b""));
    assert!(text.starts_with("unsealed "), "{text}");
    let records = env.audit_records();
    assert!(
        records
            .iter()
            .any(|r| r.event.operation.as_str() == "unseal"
                && r.event.principal == "operator:tester")
    );

    // another key does not open it: exit 5, nothing recorded as unsealed
    let other = env.path("other.key").display().to_string();
    ok(&env.run(&["keygen", &other], b""));
    let before = env.audit_records().len();
    fails(
        &env.run(&["unseal", "--db", &env.db(), "--key-file", &other], b""),
        5,
    );
    assert_eq!(env.audit_records().len(), before);
    env.audit_verifies();
}
