#![allow(clippy::unwrap_used, clippy::expect_used)]

use strongroom::clock::Timestamp;

use super::definition::{
    CompiledDefinition, PgGrant, PgObject, PgOwnedObjects, PgPrivilege, PgRoleDefinition,
    check_ident, template_to_format,
};
use super::error::PgDynError;
use super::naming::{EngineRole, stem};
use super::password::{PASSWORD_LEN, PgCredential, random_password, scram_verifier};
use super::record::{
    IntentRecord, LegacyPlan, RecordKey, RoleRef, legacy_intent, legacy_revocation,
    unverified_role, version_of,
};

fn def() -> PgRoleDefinition {
    PgRoleDefinition::new("ro").unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn templates_become_format_strings() {
    let f = template_to_format(
        &def(),
        "creation",
        0,
        "CREATE ROLE {{name}} LOGIN PASSWORD {{ password }} VALID UNTIL {{expiration}}; -- 100%",
        true,
    )
    .unwrap();
    assert_eq!(
        f,
        "CREATE ROLE %1$I LOGIN PASSWORD %2$L VALID UNTIL %3$L; -- 100%%"
    );
    for bad in ["{{user}}", "{{name", "x }} y", "{{password}}"] {
        let e = template_to_format(&def(), "revocation", 1, bad, false).unwrap_err();
        assert!(
            matches!(e, PgDynError::InvalidTemplate { index: 1, .. }),
            "{bad}: {e}"
        );
    }
    // A hostile placeholder body is refused, not pasted.
    let e =
        template_to_format(&def(), "creation", 0, "{{name'; DROP ROLE x; --}}", true).unwrap_err();
    assert!(matches!(e, PgDynError::InvalidTemplate { .. }));
}

#[test]
fn definition_names_are_checked() {
    for bad in [
        "",
        "Upper",
        "a;b",
        "x\"; DROP ROLE postgres; --",
        "héllo",
        "-x",
        &"a".repeat(65),
    ] {
        assert!(
            matches!(
                PgRoleDefinition::new(bad),
                Err(PgDynError::InvalidDefinitionName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(PgRoleDefinition::new("read-only_2").is_ok());
}

#[test]
fn identifiers_are_checked() {
    assert!(check_ident("table", &"t".repeat(63)).is_ok());
    assert!(check_ident("table", &"é".repeat(32)).is_err()); // 64 bytes
    assert!(check_ident("table", "a\0b").is_err());
    assert!(check_ident("table", "").is_err());
    assert!(check_ident("table", "x\"; DROP ROLE postgres; --").is_ok());
}

#[test]
fn passwords_and_verifiers() {
    let p = random_password().unwrap();
    assert_eq!(p.expose_secret().len(), PASSWORD_LEN);
    assert!(p.expose_secret().bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(p, random_password().unwrap());
    let v = scram_verifier(&p).unwrap();
    assert!(v.expose_secret().starts_with("SCRAM-SHA-256$4096:"));
    assert!(!v.expose_secret().contains(p.expose_secret()));
    let c = PgCredential {
        username: "u".into(),
        password: p,
    };
    assert!(!format!("{c:?}").contains(c.password.expose_secret()));
}

#[test]
fn role_names_are_generated_and_checked() {
    let r = EngineRole::generate("sr_", "ro").unwrap();
    assert!(r.as_str().starts_with("sr_ro_") && r.as_str().len() == 3 + 3 + 16);
    assert_eq!(EngineRole::stem_of("sr_", r.as_str()), Some("ro"));
    EngineRole::check("sr_", "ro", r.as_str(), "k").unwrap();
    // The longest definition is cut so the name fits 63 bytes.
    let long = "d".repeat(64);
    let r = EngineRole::generate("sr_long_", &long).unwrap();
    assert_eq!(r.as_str().len(), 63);
    EngineRole::check("sr_long_", &long, r.as_str(), "k").unwrap();
    assert_eq!(
        EngineRole::stem_of("sr_long_", r.as_str()),
        Some(stem("sr_long_", &long))
    );

    let refused = |prefix: &str, definition: &str, role: &str| {
        matches!(
            EngineRole::check(prefix, definition, role, "k"),
            Err(PgDynError::ForeignRole { .. })
        )
    };
    for role in [
        "postgres",
        "victim",
        "sr_ro",
        "sr_ro_",
        "sr_ro_0011223344556677x",
        "sr_ro_001122334455667",
        "sr_ro_00112233445566778",
        "sr_ro_00112233445566GG",
        "sr_ro_0011223344556677; DROP ROLE postgres",
        "sr_other_0011223344556677",
        "xsr_ro_0011223344556677",
        "SR_ro_0011223344556677",
        "sr_ro_0011223344556677\0",
        "",
    ] {
        assert!(refused("sr_", "ro", role), "{role:?}");
    }
    // The definition named must be a valid name too.
    assert!(refused("sr_", "r\"o", "sr_r\"o_0011223344556677"));
    assert!(refused("sr_", "", "sr__0011223344556677"));
    EngineRole::check("sr_", "ro", "sr_ro_0011223344556677", "k").unwrap();
    assert!(EngineRole::listed("sr_", "postgres").is_none());
    assert!(EngineRole::stem_of("sr_", "sr_stray").is_none());
}

#[test]
fn grants_render_from_keywords() {
    let g = PgGrant::new(
        [PgPrivilege::Select, PgPrivilege::Insert],
        PgObject::table("public", "t"),
    );
    let (sql, args) = g.statement("r").unwrap();
    assert_eq!(sql, "GRANT SELECT, INSERT ON TABLE %I.%I TO %I");
    assert_eq!(args, ["public", "t", "r"]);
    let (sql, _) = PgGrant::new([], PgObject::role("app"))
        .statement("r")
        .unwrap();
    assert_eq!(sql, "GRANT %I TO %I");
    assert!(
        PgGrant::new([], PgObject::schema("s"))
            .statement("r")
            .is_err()
    );
}

fn role_ref() -> RoleRef {
    RoleRef {
        role: "sr_ro_0011223344556677".into(),
        definition: "ro".into(),
        digest: [0xab; 32],
    }
}

/// The digest covers what revocation runs, and only that.
#[test]
fn revocation_digest_vector() {
    let d = PgRoleDefinition::new("ro")
        .unwrap()
        .revocation_statements(["REVOKE ALL ON t FROM {{name}}".to_owned()])
        .owned_objects(PgOwnedObjects::ReassignTo("owner".into()));
    let c = CompiledDefinition::new(&d).unwrap();
    assert_eq!(c.revocation, ["REVOKE ALL ON t FROM %1$I"]);
    assert_eq!(hex(&c.digest), DIGEST_VECTOR);
    // Grants and TTLs do not change it; statements and owned objects do.
    let same = d
        .clone()
        .grant(PgGrant::new(
            [PgPrivilege::Select],
            PgObject::table("p", "t"),
        ))
        .default_ttl(std::time::Duration::from_secs(5));
    assert_eq!(CompiledDefinition::new(&same).unwrap().digest, c.digest);
    let other = d.clone().owned_objects(PgOwnedObjects::Drop);
    assert_ne!(CompiledDefinition::new(&other).unwrap().digest, c.digest);
    let other = d.revocation_statements(Vec::new());
    assert_ne!(CompiledDefinition::new(&other).unwrap().digest, c.digest);
}

// SHA-256("strongroom/pgdyn/revocation-digest/v1\0" ||
//   01 19 "REVOKE ALL ON t FROM %1$I" 01 05 "owner")
// (checked with Python's hashlib when written)
const DIGEST_VECTOR: &str = "8390b3df99fadcb5802a9ac683725a0f5c35e72ef200f87fbc4031f97cc82593";

/// Version 2 revocation data, pinned: a change here needs a new version.
#[test]
fn revocation_data_v2_vector() {
    let key = RecordKey::from_bytes(&[7u8; 32]);
    let path = "database/creds/ro";
    let bytes = key.seal_revocation("postgres", path, &role_ref()).unwrap();
    assert_eq!(hex(&bytes), V2_VECTOR);
    assert_eq!(version_of("k", &bytes).unwrap(), 2);
    assert_eq!(
        key.open_revocation("k", "postgres", path, &bytes).unwrap(),
        role_ref()
    );
    assert_eq!(
        unverified_role(&bytes).as_deref(),
        Some("sr_ro_0011223344556677")
    );

    let refused =
        |r: Result<RoleRef, PgDynError>| matches!(r, Err(PgDynError::NotAuthentic { .. }));
    // Another key, engine or lease path.
    assert!(refused(
        RecordKey::from_bytes(&[8u8; 32]).open_revocation("k", "postgres", path, &bytes)
    ));
    assert!(refused(key.open_revocation("k", "postgres2", path, &bytes)));
    assert!(refused(key.open_revocation(
        "k",
        "postgres",
        "database/creds/rw",
        &bytes
    )));
    // Every flipped bit, truncation and extension.
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            assert!(
                refused(key.open_revocation("k", "postgres", path, &b)),
                "byte {i} bit {bit}"
            );
        }
    }
    for n in 0..bytes.len() {
        assert!(refused(key.open_revocation(
            "k",
            "postgres",
            path,
            &bytes[..n]
        )));
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(refused(key.open_revocation("k", "postgres", path, &longer)));
    // Another role with the original tag.
    let mut other = role_ref();
    other.role = "sr_ro_8899aabbccddeeff".into();
    let forged = key.seal_revocation("postgres", path, &other).unwrap();
    let mut swapped = forged[..forged.len() - 32].to_vec();
    swapped.extend_from_slice(&bytes[bytes.len() - 32..]);
    assert!(refused(
        key.open_revocation("k", "postgres", path, &swapped)
    ));
}

// 02 | 16 "sr_ro_0011223344556677" | 02 "ro" | 32 x ab | HMAC-SHA256 tag under
// 32 x 07 (checked with Python's hmac when written)
const V2_VECTOR: &str = concat!(
    "021673725f726f5f3030313132323333343435353636373702726f",
    "abababababababababababababababababababababababababababababababab",
    "b07d70c7193a256457a13f03b5adde8c370883f43edd57a63c84e298a2dd6222"
);

/// Version 1 revocation data (written before authentication) still
/// decodes, to its role and definition names only.
#[test]
fn revocation_data_v1_vector() {
    let bytes = unhex(V1_VECTOR);
    let r = legacy_revocation("k", &bytes).unwrap();
    assert_eq!(r.role, "sr_ro_00112233");
    assert_eq!(r.definition, "ro");
    assert_eq!(r.digest, None);
    // The encoder of version 1 wrote exactly this.
    let plan = LegacyPlan {
        role: "sr_ro_00112233".into(),
        definition: "ro".into(),
        revocation: vec!["REVOKE ALL ON t FROM %1$I".into()],
        owned: PgOwnedObjects::ReassignTo("owner".into()),
    };
    assert_eq!(postcard::to_extend(&plan, vec![1]).unwrap(), bytes);
    let mut other = bytes.clone();
    other[0] = 3;
    assert!(matches!(
        version_of("k", &other),
        Err(PgDynError::CorruptRecord { .. })
    ));
    assert!(version_of("k", &[]).is_err());
    assert!(legacy_revocation("k", &bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(legacy_revocation("k", &longer).is_err());
}

// 01 version | 0e "sr_ro_00112233" | 02 "ro" | 01 (one statement) 19 "REVOKE ALL ON t FROM %1$I" | 01 (ReassignTo) 05 "owner"
const V1_VECTOR: &str = "010e73725f726f5f303031313232333302726f01195245564f4b4520414c4c204f4e20742046524f4d202531244901056f776e6572";

/// The plaintext of a version 2 intent record (sealed in storage), and a
/// version 1 intent (plain), pinned.
#[test]
fn intent_vectors() {
    let rec = IntentRecord {
        created_at: Timestamp::from_millis(1_000),
        path: "database/creds/ro".into(),
        role: role_ref(),
    };
    let plain = postcard::to_extend(&rec, vec![2]).unwrap();
    assert_eq!(hex(&plain), INTENT_V2_VECTOR);

    let v1 = {
        let mut b = vec![1, 0xe8, 0x07, 17];
        b.extend_from_slice(b"database/creds/ro");
        b.extend_from_slice(&unhex(V1_VECTOR)[1..]);
        b
    };
    let old = legacy_intent("pgdyn/intent/sr_ro_00112233", &v1).unwrap();
    assert_eq!(old.created_at, Timestamp::from_millis(1_000));
    assert_eq!(old.path, "database/creds/ro");
    assert_eq!(old.role.role, "sr_ro_00112233");
    assert_eq!(old.role.digest, None);
    assert!(legacy_intent("k", &v1[..v1.len() - 2]).is_err());
}

// 02 | e807 (1000 ms) | 11 "database/creds/ro" | 16 "sr_ro_0011223344556677" | 02 "ro" | 32 x ab
const INTENT_V2_VECTOR: &str = concat!(
    "02e8071164617461626173652f63726564732f726f",
    "1673725f726f5f3030313132323333343435353636373702726f",
    "abababababababababababababababababababababababababababababababab"
);

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
