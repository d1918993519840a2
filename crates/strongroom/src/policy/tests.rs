use super::document::line_column;
use super::*;
use Capability::*;

fn p(s: &str) -> SecretPath {
    SecretPath::parse(s).unwrap()
}

fn pat(s: &str) -> PathPattern {
    PathPattern::parse(s).unwrap()
}

#[test]
fn pattern_matching() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "prod/app/db",
            &["prod/app/db"],
            &["prod/app/db/x", "prod/app", "prod/app/dbx"],
        ),
        (
            "prod/app/*",
            &["prod/app/db", "prod/app/x/y"],
            &["prod/app", "prod/apple", "prod"],
        ),
        (
            "prod/app*",
            &["prod/app", "prod/apple", "prod/app/x/y"],
            &["prod/ap", "prod"],
        ),
        (
            "prod/+/db",
            &["prod/a/db", "prod/b/db"],
            &["prod/db", "prod/a/b/db", "prod/a/db/x"],
        ),
        (
            "+/app/*",
            &["prod/app/x", "dev/app/x/y"],
            &["prod/other/x", "prod/app"],
        ),
        ("prod/+/*", &["prod/a/b", "prod/a/b/c"], &["prod/a", "prod"]),
        ("prod/+", &["prod/a"], &["prod", "prod/a/b"]),
        ("*", &["a", "prod/x/y"], &[]),
        ("+", &["a"], &["a/b"]),
    ];
    for (pattern, yes, no) in cases {
        let pp = pat(pattern);
        for y in *yes {
            assert!(pp.matches(&p(y)), "{pattern} should match {y}");
        }
        for n in *no {
            assert!(!pp.matches(&p(n)), "{pattern} should not match {n}");
        }
    }
}

#[test]
fn invalid_patterns() {
    for bad in [
        "",
        "prod/*/x",
        "prod/**",
        "prod//x",
        "/prod",
        "prod/",
        "prod/../x",
        "prod/./*",
        "Prod/*",
        "prod/a+/x",
        "prod/+*",
        "prod/x y",
        "prod/%2e/x",
        "sys",
        "pr\u{043e}d/*",
    ] {
        assert!(
            PathPattern::parse(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
}

/// The precedence table of the module docs, row by row.
#[test]
fn precedence_table() {
    type Row<'a> = (&'a [(&'a str, &'a [&'a str])], Capability, &'a str, bool);
    let rows: &[Row<'_>] = &[
        (&[("prod/app/*", &["read"])], Read, "prod/app/db", true),
        (&[("prod/app/*", &["read"])], Read, "prod/app", false),
        (&[("prod/app/*", &["read"])], Update, "prod/app/db", false),
        (
            &[("prod/app/*", &["read"]), ("prod/app/db", &["update"])],
            Read,
            "prod/app/db",
            false,
        ),
        (
            &[("prod/app/*", &["read"]), ("prod/app/db", &["update"])],
            Update,
            "prod/app/db",
            true,
        ),
        (
            &[("prod/*", &["read"]), ("prod/app/*", &["list"])],
            Read,
            "prod/app/x",
            false,
        ),
        (
            &[("prod/+/db", &["read"]), ("prod/app/*", &["list"])],
            Read,
            "prod/app/db",
            false,
        ),
        (
            &[("prod/+/db", &["read"]), ("+/app/*", &["list"])],
            Read,
            "prod/app/db",
            true,
        ),
        (
            &[("prod/+/db", &["read"]), ("prod/+/*", &["list"])],
            Read,
            "prod/app/db",
            true,
        ),
        (
            &[("+/+/db", &["read"]), ("+/app/db", &["list"])],
            Read,
            "prod/app/db",
            false,
        ),
        (
            &[("prod/*", &["read"]), ("prod/secret/*", &["deny"])],
            Read,
            "prod/secret/k",
            false,
        ),
        (
            &[("prod/*", &["deny"]), ("prod/app/db", &["read"])],
            Read,
            "prod/app/db",
            false,
        ),
        (
            &[("prod/app/*", &["read"]), ("prod/app/admin/*", &["deny"])],
            Read,
            "prod/app/admin",
            false,
        ),
        (
            &[("prod/app/*", &["read"]), ("prod/+/admin/*", &["deny"])],
            Read,
            "prod/app/admin",
            false,
        ),
        (&[("prod/*", &["read"])], Read, "staging/db", false),
    ];
    for (i, &(rules, cap, path, allowed)) in rows.iter().enumerate() {
        let policy = Policy::new(
            "t",
            rules
                .iter()
                .map(|(pattern, caps)| {
                    if caps.first() == Some(&"deny") {
                        Rule::deny(pattern).unwrap()
                    } else {
                        Rule::allow(pattern, caps.iter().map(|c| c.parse().unwrap())).unwrap()
                    }
                })
                .collect(),
        );
        let who = Principal::new("svc", [&policy]);
        assert_eq!(
            authorize(&who, cap, &p(path)).is_ok(),
            allowed,
            "row {i}: {rules:?} {cap} {path}"
        );
    }
    // Last row: the same pattern in two policies is merged.
    let a = Policy::new("a", vec![Rule::allow("prod/*", [Read]).unwrap()]);
    let b = Policy::new("b", vec![Rule::allow("prod/*", [Update]).unwrap()]);
    let who = Principal::new("svc", [&a, &b]);
    assert!(authorize(&who, Update, &p("prod/x")).is_ok());
    assert!(authorize(&who, Read, &p("prod/x")).is_ok());
    assert!(authorize(&who, Delete, &p("prod/x")).is_err());
}

#[test]
fn specificity_order() {
    let policy = Policy::new(
        "t",
        [
            "*",
            "prod/*",
            "prod/+/*",
            "prod/+/db",
            "prod/app/*",
            "prod/app*",
            "prod/app/db",
            "+/app/db",
        ]
        .iter()
        .map(|s| Rule::allow(s, [Read]).unwrap())
        .collect(),
    );
    let set = PolicySet::new([&policy]);
    let order: Vec<&str> = set.precedence().collect();
    assert_eq!(
        order,
        [
            "prod/app/db",
            "prod/app/*",
            "prod/app*",
            "prod/+/db",
            "prod/*",
            "prod/+/*",
            "+/app/db",
            "*"
        ]
    );
}

#[test]
fn lexicographic_tie_break() {
    let policy = Policy::new(
        "t",
        vec![
            Rule::allow("a/+/b/+", [Read]).unwrap(),
            Rule::allow("a/+/+/c", [List]).unwrap(),
        ],
    );
    let set = PolicySet::new([&policy]);
    assert_eq!(
        set.evaluate(Read, &p("a/x/b/c")),
        Decision::Allowed { rule: "a/+/b/+" }
    );
    assert_eq!(
        set.evaluate(List, &p("a/x/b/c")),
        Decision::NotGranted { rule: "a/+/b/+" }
    );
}

#[test]
fn decision_names_the_rule_and_default_deny() {
    let policy = Policy::new(
        "t",
        vec![
            Rule::allow("prod/*", [Read, List]).unwrap(),
            Rule::deny("prod/admin/*").unwrap(),
        ],
    );
    let set = PolicySet::new([&policy]);
    assert_eq!(
        set.evaluate(Read, &p("prod/x")),
        Decision::Allowed { rule: "prod/*" }
    );
    assert_eq!(
        set.evaluate(Update, &p("prod/x")),
        Decision::NotGranted { rule: "prod/*" }
    );
    assert_eq!(
        set.evaluate(Read, &p("prod/admin/k")),
        Decision::DeniedByRule {
            rule: "prod/admin/*"
        }
    );
    assert_eq!(set.evaluate(Read, &p("dev/x")), Decision::NoMatchingRule);
    assert_eq!(
        set.capabilities(&p("prod/x")),
        Capabilities::NONE.with(Read).with(List)
    );
    assert!(set.capabilities(&p("prod/admin/k")).is_empty());

    let nobody = Principal::new("nobody", []);
    for cap in Capability::ALL {
        let err = authorize(&nobody, cap, &p("prod/x")).unwrap_err();
        assert_eq!(
            err,
            PolicyError::Denied {
                principal: "nobody".into(),
                capability: cap,
                path: "prod/x".into()
            }
        );
    }
    let msg = authorize(&nobody, Read, &p("prod/x"))
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "principal \"nobody\" may not read \"prod/x\"");
}

/// A deny on `x/*` covers `x` (and with `+`, every `x` it names), for
/// every capability; an allow on `x/*` still does not grant `x`; a deny
/// whose last segment is a partial glob covers nothing more.
#[test]
fn deny_on_a_subtree_covers_its_root() {
    let rules = |deny: &str| {
        PolicySet::new([&Policy::new(
            "t",
            vec![
                Rule::allow("prod/app/*", Capability::ALL).unwrap(),
                Rule::deny(deny).unwrap(),
            ],
        )])
    };
    for deny in ["prod/app/admin/*", "prod/+/admin/*", "+/app/admin/*"] {
        let set = rules(deny);
        for cap in Capability::ALL {
            assert_eq!(
                set.evaluate(cap, &p("prod/app/admin")),
                Decision::DeniedByRule { rule: deny },
                "{deny} {cap}"
            );
            assert!(!set.allows(cap, &p("prod/app/admin/x")), "{deny} {cap}");
        }
        assert!(set.capabilities(&p("prod/app/admin")).is_empty());
        // neighbours stay allowed
        assert!(set.allows(Read, &p("prod/app/administrator")), "{deny}");
        assert!(set.allows(Read, &p("prod/app/x")), "{deny}");
    }
    let pattern = PathPattern::parse("prod/+/admin/*").unwrap();
    assert!(pattern.denies(&p("prod/x/admin")));
    assert!(!pattern.matches(&p("prod/x/admin")));
    assert!(!pattern.denies(&p("prod/x")));
    assert!(!pattern.denies(&p("prod/x/admin2")));
    assert!(!pattern.denies(&p("prod/x/y/admin")));
    // a deny ending in a partial segment (`adm*`) covers what it matches
    let set = rules("prod/app/adm*");
    assert!(!set.allows(Read, &p("prod/app/admin")));
    assert!(set.allows(Read, &p("prod/app/x")));
    // allow rules keep their meaning
    let set = PolicySet::new([&Policy::new(
        "t",
        vec![Rule::allow("prod/app/*", [Read]).unwrap()],
    )]);
    assert!(!set.allows(Read, &p("prod/app")));
}

/// The trie index decides exactly as trying every pattern in order.
#[test]
fn index_agrees_with_linear_evaluation() {
    let patterns = [
        "*", "+", "+/*", "a", "a*", "a/*", "a/+", "a/+/*", "a/+/c", "a/b", "a/b*", "a/b/*",
        "a/b/c", "a/bc/*", "+/b/c", "+/+/c", "+/b/*", "a/+/+", "b/*", "a/b/c/d*",
    ];
    let paths = [
        "a",
        "b",
        "ab",
        "a/b",
        "a/bc",
        "a/b/c",
        "a/b/cd",
        "a/x/c",
        "x/b/c",
        "x/y/c",
        "a/b/c/d",
        "a/b/c/de/f",
        "b/c",
        "c",
        "x/b/q",
    ];
    // Many rule subsets, with deny mixed in, checked for every path and
    // capability.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut rules = Vec::new();
        for pat in patterns {
            match next() % 5 {
                0 => rules.push(Rule::deny(pat).unwrap()),
                1 => rules.push(Rule::allow(pat, [Read]).unwrap()),
                2 => rules.push(Rule::allow(pat, [List, Update]).unwrap()),
                _ => {}
            }
        }
        let set = PolicySet::new([&Policy::new("t", rules)]);
        for path in paths {
            for cap in [Read, List, Update] {
                assert_eq!(
                    set.evaluate(cap, &p(path)),
                    set.evaluate_linear(cap, &p(path)),
                    "{path}"
                );
            }
        }
    }
}

#[test]
fn loads_toml() {
    let text = r#"
name = "payment-svc"
description = "payments"

[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["read", "list"]

[[path]]
pattern = "prod/payment-svc/admin/*"
capabilities = ["deny"]
"#;
    let policy = Policy::from_toml_str(text).unwrap();
    assert_eq!(policy.name, "payment-svc");
    assert_eq!(policy.rules.len(), 2);
    assert_eq!(policy.rules[1].access, Access::Deny);
    let mut reg = PolicyRegistry::new();
    reg.insert(policy);
    let svc = reg.principal("payment-svc", &["payment-svc"]).unwrap();
    assert!(svc.authorize(Read, &p("prod/payment-svc/postgres")).is_ok());
    assert!(
        svc.authorize(Read, &p("prod/payment-svc/admin/root"))
            .is_err()
    );
    assert_eq!(
        reg.principal("x", &["nope"]).unwrap_err(),
        PolicyError::UnknownPolicy("nope".into())
    );
}

fn parse_err(text: &str) -> (usize, usize, String) {
    match Policy::from_toml_str(text) {
        Err(PolicyError::Parse {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn toml_errors_point_at_the_line() {
    let head = "name = \"p\"\n\n[[path]]\n";
    // Unknown capability: line 5, at the bad string.
    let (l, c, m) = parse_err(&format!(
        "{head}pattern = \"prod/*\"\ncapabilities = [\"read\", \"raed\"]\n"
    ));
    assert_eq!((l, c), (5, 25), "{m}");
    assert!(m.contains("raed"), "{m}");
    // Invalid pattern: line 4, at the value.
    let (l, c, m) = parse_err(&format!(
        "{head}pattern = \"prod/../x\"\ncapabilities = [\"read\"]\n"
    ));
    assert_eq!((l, c), (4, 11), "{m}");
    assert!(m.contains("'..'"), "{m}");
    // Upper case in a pattern.
    let (l, _, m) = parse_err(&format!(
        "{head}pattern = \"Prod/*\"\ncapabilities = [\"read\"]\n"
    ));
    assert_eq!(l, 4, "{m}");
    // Unknown key.
    let (l, _, m) = parse_err(&format!(
        "{head}pattern = \"prod/*\"\ncapabilites = [\"read\"]\n"
    ));
    assert_eq!(l, 5, "{m}");
    assert!(m.contains("capabilites"), "{m}");
    // TOML syntax error.
    let (l, _, m) = parse_err(&format!(
        "{head}pattern = \"prod/*\ncapabilities = [\"read\"]\n"
    ));
    assert_eq!(l, 4, "{m}");
    // deny mixed with others.
    let (l, c, m) = parse_err(&format!(
        "{head}pattern = \"prod/*\"\ncapabilities = [\"deny\", \"read\"]\n"
    ));
    assert_eq!((l, c), (5, 16), "{m}");
    // Empty list.
    let (l, _, m) = parse_err(&format!("{head}pattern = \"prod/*\"\ncapabilities = []\n"));
    assert_eq!(l, 5, "{m}");
    // A duplicate pattern: the second one is reported.
    let (l, _, m) = parse_err(&format!(
        "{head}pattern = \"prod/*\"\ncapabilities = [\"read\"]\n[[path]]\npattern = \"prod/*\"\ncapabilities = [\"list\"]\n"
    ));
    assert_eq!(l, 7, "{m}");
    // Wrong type.
    let (l, _, m) = parse_err(&format!("{head}pattern = 3\ncapabilities = [\"read\"]\n"));
    assert_eq!(l, 4, "{m}");
    // Missing name.
    let (_, _, m) = parse_err("[[path]]\npattern = \"prod/*\"\ncapabilities = [\"read\"]\n");
    assert!(m.contains("name"), "{m}");
    // The message names the place.
    let e = Policy::from_toml_str(
        "name = \"p\"\n[[path]]\npattern = \"a//b\"\ncapabilities=[\"read\"]",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("policy <string>:3:11: invalid pattern"),
        "{e}"
    );
}

#[test]
fn toml_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "name = \"p\"\n[[path]]\npattern = \"x\"\ncapabilities = [\"fly\"]\n",
    )
    .unwrap();
    let e = Policy::from_toml_file(&f).unwrap_err();
    assert!(e.to_string().contains("bad.toml:4:17"), "{e}");
    let e = Policy::from_toml_file(dir.path().join("missing.toml")).unwrap_err();
    assert!(matches!(e, PolicyError::Io { .. }));
}

#[test]
fn unicode_columns_count_characters() {
    assert_eq!(line_column("ab\ncé d", 7), (2, 4));
    assert_eq!(line_column("x", 99), (1, 2));
}

/// A row of the reserved-path table: rules (`["deny"]` for deny),
/// request, expected result.
type ReservedRow<'a> = (&'a [(&'a str, &'a [&'a str])], Capability, SystemPath, bool);

/// Reserved paths are reached only by rules that name `sys` literally.
#[test]
fn reserved_paths_need_a_sys_rule() {
    let (kr, au) = (SystemPath::Keyring, SystemPath::Audit);
    let all: &[&str] = &["read", "list", "rotate", "lease", "sudo"];
    let rows: &[ReservedRow<'_>] = &[
        // wildcards in the first segment never reach a reserved path
        (&[("*", all)], Sudo, kr, false),
        (&[("+/*", all)], Sudo, kr, false),
        (&[("sys*", all)], Sudo, kr, false),
        // exact, `+` and `*` rules under `sys`
        (&[("sys/keyring", &["sudo"])], Sudo, kr, true),
        (&[("sys/keyring", &["sudo"])], Sudo, au, false),
        (&[("sys/keyring", &["read"])], Sudo, kr, false),
        (&[("sys/+", &["read"])], Read, au, true),
        (&[("sys/*", &["read"])], Read, au, true),
        // deny wins among sys rules; a wildcard deny does not reach them
        (
            &[("sys/keyring", &["sudo"]), ("sys/*", &["deny"])],
            Sudo,
            kr,
            false,
        ),
        (
            &[("sys/keyring", &["sudo"]), ("*", &["deny"])],
            Sudo,
            kr,
            true,
        ),
    ];
    for (rules, cap, path, want) in rules_iter(rows) {
        let got = Principal::new("p", [&Policy::new("p", rules)])
            .authorize_system(cap, path)
            .is_ok();
        assert_eq!(got, want, "{cap} {path}");
    }
    // a sys rule never matches a secret path, and `sys` alone is refused
    let rule = Rule::allow("sys/*", Capability::ALL).unwrap();
    let set = PolicySet::new([&Policy::new("p", vec![rule])]);
    assert!(!set.allows(Read, &p("system/x")));
    assert!(PathPattern::parse("sys").is_err());
    let toml = "name = 'k'\n[[path]]\npattern = 'sys/keyring'\ncapabilities = ['sudo']\n";
    assert!(Policy::from_toml_str(toml).is_ok());
    // the denial names the reserved path
    let err = Principal::new("p", [])
        .authorize_system(Sudo, kr)
        .unwrap_err();
    assert!(err.to_string().contains("sys/keyring"), "{err}");
}

/// Builds the rules of each row of a table.
fn rules_iter<'a>(
    rows: &'a [ReservedRow<'a>],
) -> impl Iterator<Item = (Vec<Rule>, Capability, SystemPath, bool)> + 'a {
    rows.iter().map(|(rules, cap, path, want)| {
        let rules = rules
            .iter()
            .map(|(pattern, caps)| {
                if caps == &["deny"] {
                    Rule::deny(pattern).unwrap()
                } else {
                    Rule::allow(pattern, caps.iter().map(|c| c.parse().unwrap())).unwrap()
                }
            })
            .collect();
        (rules, *cap, *path, *want)
    })
}
