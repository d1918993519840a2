//! Reads arbitrary bytes as the dynamic PostgreSQL engine's stored records:
//! a lease's revocation data (version 1 role plan, or version 2 role
//! reference with its MAC) and a version 1 intent record. Must never panic.
//! A role reference that decodes, sealed for a lease, opens to the same
//! reference for that lease only, and any one-bit change makes it fail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_sqlx::fuzzing::{
    parse_legacy_intent, parse_revocation_data, seal_revocation_body, unverified_role,
};

const ENGINE: &str = "postgres";
const PATH: &str = "pgdyn/creds/readonly";

fuzz_target!(|data: &[u8]| {
    let _ = parse_revocation_data(ENGINE, PATH, data);
    let _ = unverified_role(data);
    let _ = parse_legacy_intent(data);

    let Some((sealed, expected)) = seal_revocation_body(ENGINE, PATH, data) else {
        return;
    };
    assert_eq!(
        parse_revocation_data(ENGINE, PATH, &sealed).unwrap(),
        expected
    );
    assert!(unverified_role(&sealed).is_some());
    assert!(parse_revocation_data(ENGINE, "pgdyn/creds/other", &sealed).is_err());
    assert!(parse_revocation_data("other", PATH, &sealed).is_err());
    let bit = data.first().map_or(0, |&b| usize::from(b)) * 7 + data.len();
    let mut flipped = sealed.clone();
    let i = (bit / 8) % flipped.len();
    flipped[i] ^= 1 << (bit % 8);
    assert!(parse_revocation_data(ENGINE, PATH, &flipped).is_err());
});
