//! Unit tests of the file format and the naming rules.
#![allow(clippy::unwrap_used)]

use super::*;

const GOOD: &str = r#"
[[policy]]
name = "payments"
description = "what payments may touch"
[[policy.path]]
pattern = "prod/payments/*"
capabilities = ["list", "read"]
[[policy.path]]
pattern = "prod/payments/admin/*"
capabilities = ["deny"]

[principals]
payment-svc = ["payments"]

[secrets."prod/payments/db"]
owner = "payments-team"
environment = "prod"
tags = ["pci", "db"]
rotation_interval = "30d"
max_versions = 5
generate = { length = 24 }

[naming.services]
pattern = "{env}/{service}/{type}"
allowed = { env = ["prod", "staging"] }
"#;

fn parse_err(text: &str) -> DeclarativeError {
    Declared::from_toml_str(text, "f.toml").unwrap_err()
}

#[test]
fn a_full_file_parses() {
    let d = Declared::from_toml_str(GOOD, "f.toml").unwrap();
    let p = &d.policies["payments"];
    assert_eq!(p.rules.len(), 2);
    assert_eq!(p.rules[0].capabilities, ["read", "list"]);
    assert_eq!(p.rules[1].capabilities, ["deny"]);
    assert_eq!(d.principals["payment-svc"], ["payments"]);
    let s = &d.secrets["prod/payments/db"];
    assert_eq!(s.rotation_interval_secs, Some(30 * 86_400));
    assert_eq!(s.max_versions, Some(5));
    assert_eq!(s.generate, Some(Generate { length: 24 }));
    assert!(d.naming.check("staging/payments/db").is_ok());
    let policy = p.to_policy("payments").unwrap();
    assert_eq!(policy.rules.len(), 2);
}

#[test]
fn a_value_key_is_refused_naming_file_and_line() {
    let e = parse_err("[secrets.\"prod/a/b\"]\nowner = \"x\"\nvalue = \"hunter2\"\n");
    match &e {
        DeclarativeError::ValueInFile {
            source_name,
            line,
            path,
        } => {
            assert_eq!(
                (source_name.as_str(), *line, path.as_str()),
                ("f.toml", 3, "prod/a/b")
            );
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("never go in declaration files"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn bad_toml_names_file_and_line() {
    let e = parse_err("[principals]\na = [\"p\"]\n\n[secrets.\"x/y\"]\nowner = 3\n");
    match e {
        DeclarativeError::Parse {
            source_name, line, ..
        } => assert_eq!((source_name.as_str(), line), ("f.toml", 5)),
        other => panic!("{other:?}"),
    }
    let e = parse_err(
        "[[policy]]\nname = \"p\"\n[[policy.path]]\npattern = \"a/*\"\ncapabilities = [\"fly\"]\n",
    );
    assert!(
        matches!(e, DeclarativeError::Parse { line: 5, .. }),
        "{e:?}"
    );
    let e = parse_err("unknown = 1\n");
    assert!(
        matches!(e, DeclarativeError::Parse { line: 1, .. }),
        "{e:?}"
    );
    let e = parse_err("[secrets.\"a/b\"]\nrotation_interval = \"soon\"\n");
    assert!(
        matches!(e, DeclarativeError::Parse { line: 2, .. }),
        "{e:?}"
    );
}

#[test]
fn duplicates_across_files_name_both_files() {
    let a = Declared::from_toml_str(
        "[principals]\nsvc = [\"p\"]\n[[policy]]\nname = \"p\"\n",
        "a.toml",
    )
    .unwrap();
    let b = Declared::from_toml_str("[principals]\nsvc = [\"p\"]\n", "b.toml").unwrap();
    let e = Declared::merge(vec![("a.toml".into(), a), ("b.toml".into(), b)]).unwrap_err();
    match e {
        DeclarativeError::Duplicate {
            kind,
            name,
            first,
            second,
        } => assert_eq!(
            (kind, name.as_str(), first.as_str(), second.as_str()),
            ("principal", "svc", "a.toml", "b.toml")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_principal_needs_declared_policies() {
    let a = Declared::from_toml_str("[principals]\nsvc = [\"nope\"]\n", "a.toml").unwrap();
    let e = Declared::merge(vec![("a.toml".into(), a)]).unwrap_err();
    assert!(matches!(e, DeclarativeError::UnknownPolicy { .. }), "{e:?}");
}

#[test]
fn naming_rules_check_paths() {
    let d = Declared::from_toml_str(GOOD, "f.toml").unwrap();
    assert!(d.naming.check("prod/payments/db").is_ok());
    let e = d.naming.check("dev/payments/db").unwrap_err();
    assert!(e.reason.contains("env must be one of prod, staging"), "{e}");
    assert!(d.naming.check("prod/payments").is_err());
    assert!(NamingRules::default().check("anything/at/all").is_ok());
    assert!(NamingRule::new("{a}/{a}", Default::default()).is_err());
    assert!(NamingRule::new("x{a}/b", Default::default()).is_err());
    let e = parse_err("[naming.r]\npattern = \"{env}\"\nallowed = { team = [\"a\"] }\n");
    assert!(matches!(e, DeclarativeError::Parse { .. }), "{e:?}");
}

#[test]
fn intervals_round_trip() {
    assert_eq!(parse_interval("30d").unwrap().as_secs(), 2_592_000);
    assert_eq!(parse_interval("90m").unwrap().as_secs(), 5400);
    assert!(parse_interval("0d").is_none() && parse_interval("d").is_none());
    assert_eq!(format_interval(2_592_000), "30d");
    assert_eq!(format_interval(5400), "90m");
    assert_eq!(format_interval(61), "61s");
}

#[test]
fn the_digest_follows_the_content() {
    let a = Declared::from_toml_str(GOOD, "a.toml").unwrap();
    let b = Declared::from_toml_str(GOOD, "b.toml").unwrap();
    assert_eq!(a.digest(), b.digest());
    let c = Declared::from_toml_str(&GOOD.replace("max_versions = 5", "max_versions = 6"), "c")
        .unwrap();
    assert_ne!(a.digest(), c.digest());
}

/// The applied record's plaintext, format 1, as stored inside the barrier
/// at `sys/declared` (a vector: a change to the format fails here).
const APPLIED_V1: &str = r#"{"format":1,"revision":3,"applied_by":"operator:alice","applied_at":1800000000,"policies":{"payments":{"rules":[{"pattern":"prod/payments/*","capabilities":["read","list"]}]}},"principals":{"payment-svc":["payments"]},"naming":{"services":{"pattern":"{env}/{service}/{type}","allowed":{"env":["prod","staging"]}}}}"#;

#[test]
fn the_applied_record_format_1_vector_decodes_and_encodes_the_same() {
    let rec = state::AppliedRecord::decode(APPLIED_V1.as_bytes()).unwrap();
    assert_eq!(rec.revision, 3);
    assert_eq!(rec.principals["payment-svc"], ["payments"]);
    assert!(rec.naming.check("staging/payments/db").is_ok());
    assert_eq!(serde_json::to_string(&rec).unwrap(), APPLIED_V1);
    // rotation schedules are a last field, left out when there are none
    let with = format!(
        "{},\"rotation\":{{\"db\":{{\"interval_secs\":60}}}}}}",
        &APPLIED_V1[..APPLIED_V1.len() - 1]
    );
    let rec = state::AppliedRecord::decode(with.as_bytes()).unwrap();
    assert_eq!(rec.rotation["db"].interval_secs, Some(60));
    assert_eq!(serde_json::to_string(&rec).unwrap(), with);
    let other = APPLIED_V1.replace("\"format\":1", "\"format\":2");
    assert!(matches!(
        state::AppliedRecord::decode(other.as_bytes()),
        Err(DeclarativeError::BadRecord { .. })
    ));
}

#[test]
fn rotation_schedules_parse_and_bad_ones_name_the_line() {
    let d = Declared::from_toml_str(
        "[rotation.\"payments/api-key\"]\ninterval = \"30d\"\n\n[rotation.db]\ngrace_period = \"90m\"\n",
        "f.toml",
    )
    .unwrap();
    assert_eq!(
        d.rotation["payments/api-key"],
        RotationSpec {
            interval_secs: Some(30 * 86_400),
            grace_period_secs: None
        }
    );
    assert_eq!(d.rotation["db"].grace_period_secs, Some(5400));
    let line = |text: &str| match parse_err(text) {
        DeclarativeError::Parse { line, message, .. } => (line, message),
        other => panic!("{other:?}"),
    };
    let (l, m) = line("[rotation.db]\ninterval = \"soon\"\n");
    assert_eq!(l, 2);
    assert!(m.contains("interval \"soon\""), "{m}");
    let (_, m) = line("[rotation.\"Bad Name\"]\ninterval = \"1d\"\n");
    assert!(m.contains("Bad Name"), "{m}");
    let (_, m) = line("[rotation.db]\n");
    assert!(m.contains("give an interval"), "{m}");
    let (l, m) = line("[rotation.db]\ninterval = \"1d\"\nevery = \"1d\"\n");
    assert_eq!(l, 3);
    assert!(m.contains("unknown field"), "{m}");
    // the same schedule in two files is a duplicate
    let a = Declared::from_toml_str("[rotation.db]\ninterval = \"1d\"\n", "a.toml").unwrap();
    let b = Declared::from_toml_str("[rotation.db]\ninterval = \"2d\"\n", "b.toml").unwrap();
    assert!(matches!(
        Declared::merge(vec![("a.toml".into(), a), ("b.toml".into(), b)]),
        Err(DeclarativeError::Duplicate {
            kind: "rotation schedule",
            ..
        })
    ));
}
