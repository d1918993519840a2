//! Configuration as code through the public API: plan, apply, drift, the
//! applied record, and refusal when the store changed since the plan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom::audit::{AuditLog, MemorySink, Operation};
use strongroom::dangerous::Door;
use strongroom::declarative::{
    self, Action, Applied, DeclarativeError, Declared, Kind, Plan, SecretAction,
};
use strongroom::policy::{Capability, Policy, Principal, Rule};
use strongroom::protector::SoftwareProtector;
use strongroom::secrets::MetadataPatch;
use strongroom::storage::MemoryStorage;
use strongroom::{Handle, Options, SecretBytes, Strongroom};

const FILES: &str = r#"
[[policy]]
name = "payments"
[[policy.path]]
pattern = "prod/payments/*"
capabilities = ["read", "list"]

[principals]
payment-svc = ["payments"]

[secrets."prod/payments/db"]
owner = "payments-team"
environment = "prod"
tags = ["pci"]
rotation_interval = "30d"
max_versions = 5
generate = { length = 24 }

[secrets."prod/payments/api"]
owner = "payments-team"

[naming.services]
pattern = "{env}/{service}/{type}"
allowed = { env = ["prod", "staging"] }
"#;

struct Fixture {
    storage: Arc<MemoryStorage>,
    door: Door,
    operator: Handle,
    sink: Arc<MemorySink>,
}

async fn fixture() -> Fixture {
    let storage = Arc::new(MemoryStorage::new());
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![9; 32])).unwrap();
    let sr = Strongroom::init(storage.clone(), &protector, Options::default())
        .await
        .unwrap();
    let door = sr.dangerous_traced("test").await.unwrap();
    let sink = Arc::new(MemorySink::new());
    let log: AuditLog = door.open_audit_log(vec![sink.clone()], None).await.unwrap();
    let policy = Policy::new("operator", vec![Rule::allow("*", Capability::ALL).unwrap()]);
    let operator = door.as_principal(Principal::new("operator:alice", [&policy]), Arc::new(log));
    Fixture {
        storage,
        door,
        operator,
        sink,
    }
}

fn declared() -> Declared {
    Declared::from_toml_str(FILES, "files.toml").unwrap()
}

#[tokio::test]
async fn the_plan_of_an_empty_store_creates_everything() {
    let f = fixture().await;
    // a secret written before the first apply gets its metadata set
    f.door
        .secrets()
        .put("prod/payments/api", b"k", None)
        .await
        .unwrap();
    let plan = declarative::plan(&f.door, &declared()).await.unwrap();
    assert_eq!(plan.applied_revision, None);
    let kinds: Vec<_> = plan.changes.iter().map(|c| (c.kind, c.action)).collect();
    assert_eq!(
        kinds,
        [
            (Kind::Policy, Action::Create),
            (Kind::Principal, Action::Create),
            (Kind::NamingRule, Action::Create)
        ]
    );
    let actions: Vec<_> = plan
        .secrets
        .iter()
        .map(|s| (s.path.as_str(), s.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("prod/payments/api", SecretAction::UpdateMetadata),
            ("prod/payments/db", SecretAction::Generate)
        ]
    );
    assert_eq!(plan.reads.len(), 2);
    let text = plan.to_string();
    assert!(text.contains("+ policy \"payments\""), "{text}");
    assert!(text.contains("~ secret prod/payments/api"), "{text}");
    assert!(
        text.contains("owner: (unset) -> \"payments-team\""),
        "{text}"
    );
    assert!(
        text.contains("Plan: 4 to add, 1 to change, 0 to remove."),
        "{text}"
    );
    // the JSON has stable field names and reads back
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["changes"][0]["action"], "create");
    assert_eq!(json["secrets"][1]["action"], "generate");
    assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
    plan.matches(&declared()).unwrap();
    let other = Declared::from_toml_str("[principals]\n", "x").unwrap();
    assert!(matches!(
        plan.matches(&other),
        Err(DeclarativeError::PlanDoesNotMatchFiles { .. })
    ));
}

#[tokio::test]
async fn apply_then_plan_is_empty_and_the_state_reads_back() {
    let f = fixture().await;
    let plan = declarative::plan(&f.door, &declared()).await.unwrap();
    assert_eq!(plan.missing, ["prod/payments/api"]);
    let report = declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap();
    assert_eq!(report.revision, 1);
    assert_eq!(report.generated, ["prod/payments/db"]);
    let again = declarative::plan(&f.door, &declared()).await.unwrap();
    assert!(again.is_empty(), "{again}");
    assert_eq!(again.applied_revision, Some(1));
    assert!(again.to_string().contains("No changes"));
    // applying an empty plan writes nothing
    let before = f.storage.snapshot().await;
    let r = declarative::apply(&f.door, &again, &f.operator)
        .await
        .unwrap();
    assert!(!r.written);
    assert_eq!(before, f.storage.snapshot().await);

    let meta = f.door.secrets().metadata("prod/payments/db").await.unwrap();
    assert_eq!(meta.owner.as_deref(), Some("payments-team"));
    assert_eq!(meta.max_versions, Some(5));
    assert_eq!(meta.rotation_interval.unwrap().as_secs(), 30 * 86_400);

    let applied = Applied::load(&f.door).await.unwrap().unwrap();
    assert_eq!(applied.revision, 1);
    assert_eq!(applied.applied_by, "operator:alice");
    assert!(applied.naming.check("prod/payments/db").is_ok());
    assert!(applied.naming.check("dev/payments/db").is_err());
    let svc = applied.principal("payment-svc").unwrap();
    let db = strongroom::path::SecretPath::parse("prod/payments/db").unwrap();
    svc.authorize(Capability::Read, &db).unwrap();
    assert!(svc.authorize(Capability::Update, &db).is_err());

    // audited under the operator: intents, then outcomes
    let ops: Vec<_> = f
        .sink
        .records()
        .unwrap()
        .iter()
        .map(|r| (r.event.principal.clone(), r.event.operation))
        .collect();
    assert_eq!(ops.len(), 4);
    assert!(ops.iter().all(|(p, _)| p == "operator:alice"));
    assert_eq!(ops[0].1, Operation::PolicyChange);
    assert_eq!(ops[1].1, Operation::Write);

    // removing a policy from the files plans its removal
    let mut fewer = declared();
    fewer.principals.clear();
    fewer.policies.clear();
    let p = declarative::plan(&f.door, &fewer).await.unwrap();
    assert!(p.to_string().contains("- policy \"payments\""), "{p}");
    declarative::apply(&f.door, &p, &f.operator).await.unwrap();
    assert_eq!(Applied::load(&f.door).await.unwrap().unwrap().revision, 2);
}

#[tokio::test]
async fn a_metadata_change_made_outside_shows_as_drift() {
    let f = fixture().await;
    let plan = declarative::plan(&f.door, &declared()).await.unwrap();
    declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap();
    assert!(
        declarative::drift(&f.door, &declared())
            .await
            .unwrap()
            .is_clean()
    );

    f.door
        .secrets()
        .update_metadata("prod/payments/db", MetadataPatch::new().owner("eve"))
        .await
        .unwrap();
    let drift = declarative::drift(&f.door, &declared()).await.unwrap();
    assert!(!drift.is_clean());
    let text = drift.to_string();
    assert!(
        text.contains(
            "secret prod/payments/db: owner is \"eve\" in the store, \"payments-team\" in the files"
        ),
        "{text}"
    );
    // a plan puts it back
    let plan = declarative::plan(&f.door, &declared()).await.unwrap();
    declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap();
    assert!(
        declarative::drift(&f.door, &declared())
            .await
            .unwrap()
            .is_clean()
    );
    let meta = f.door.secrets().metadata("prod/payments/db").await.unwrap();
    assert_eq!(meta.owner.as_deref(), Some("payments-team"));
    // a field the files leave out is managed (cleared on apply); custom
    // key-values are not
    f.door
        .secrets()
        .update_metadata(
            "prod/payments/db",
            MetadataPatch::new().tags(["extra"]).custom([("k", "v")]),
        )
        .await
        .unwrap();
    let mut no_tags = declared();
    no_tags
        .secrets
        .get_mut("prod/payments/db")
        .unwrap()
        .tags
        .clear();
    let text = declarative::drift(&f.door, &no_tags)
        .await
        .unwrap()
        .to_string();
    assert_eq!(
        text.trim(),
        "secret prod/payments/db: tags is \"extra\" in the store, (unset) in the files"
    );
    let plan = declarative::plan(&f.door, &no_tags).await.unwrap();
    declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap();
    let meta = f.door.secrets().metadata("prod/payments/db").await.unwrap();
    assert!(meta.tags.is_empty());
    assert_eq!(meta.custom["k"], "v");

    // a generated secret removed outside, and policies no longer declared
    f.door
        .secrets()
        .delete_metadata("prod/payments/db")
        .await
        .unwrap();
    let mut fewer = declared();
    fewer.principals.clear();
    fewer.policies.clear();
    let text = declarative::drift(&f.door, &fewer)
        .await
        .unwrap()
        .to_string();
    assert!(
        text.contains("secret prod/payments/db: declared with generate, not in the store"),
        "{text}"
    );
    assert!(
        text.contains("policy \"payments\": in the applied record, no longer declared"),
        "{text}"
    );
}

#[tokio::test]
async fn apply_refuses_a_store_changed_since_the_plan_and_writes_nothing() {
    let f = fixture().await;
    let first = declarative::plan(&f.door, &declared()).await.unwrap();
    declarative::apply(&f.door, &first, &f.operator)
        .await
        .unwrap();

    // a secret's metadata changes between plan and apply
    let mut changed = declared();
    changed.secrets.get_mut("prod/payments/db").unwrap().owner = Some("new-team".into());
    let plan = declarative::plan(&f.door, &changed).await.unwrap();
    f.door
        .secrets()
        .update_metadata(
            "prod/payments/db",
            MetadataPatch::new().environment("staging"),
        )
        .await
        .unwrap();
    let before = f.storage.snapshot().await;
    let audited = f.sink.records().unwrap().len();
    let e = declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, DeclarativeError::StoreChangedSincePlan { what } if what == "prod/payments/db"),
        "{e:?}"
    );
    assert_eq!(before, f.storage.snapshot().await, "nothing may be written");
    assert_eq!(audited, f.sink.records().unwrap().len());

    // an untouched declared secret's new version refuses too (the plan read it)
    let plan = declarative::plan(&f.door, &changed).await.unwrap();
    f.door
        .secrets()
        .put("prod/payments/db", b"v2", None)
        .await
        .unwrap();
    let e = declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DeclarativeError::StoreChangedSincePlan { .. }),
        "{e:?}"
    );

    // another apply between plan and apply changes the applied record
    let plan = declarative::plan(&f.door, &changed).await.unwrap();
    let mut other = changed.clone();
    other.naming.rules.clear();
    let p2 = declarative::plan(&f.door, &other).await.unwrap();
    declarative::apply(&f.door, &p2, &f.operator).await.unwrap();
    let before = f.storage.snapshot().await;
    let e = declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, DeclarativeError::StoreChangedSincePlan { what } if what == "sys/declared"),
        "{e:?}"
    );
    assert_eq!(before, f.storage.snapshot().await);

    // a secret created where the plan would generate one
    let mut generating = declared();
    generating.secrets.clear();
    generating.secrets.insert(
        "prod/payments/new".into(),
        declared().secrets["prod/payments/db"].clone(),
    );
    let plan = declarative::plan(&f.door, &generating).await.unwrap();
    f.door
        .secrets()
        .put("prod/payments/new", b"x", None)
        .await
        .unwrap();
    let e = declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DeclarativeError::StoreChangedSincePlan { .. }),
        "{e:?}"
    );
    assert_eq!(
        f.door
            .secrets()
            .get("prod/payments/new")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"x"
    );
}

#[tokio::test]
async fn generated_values_exist_and_appear_in_no_output() {
    let f = fixture().await;
    let plan = declarative::plan(&f.door, &declared()).await.unwrap();
    let report = declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap();
    let got = f.door.secrets().get("prod/payments/db").await.unwrap();
    let value = std::str::from_utf8(got.value.expose_secret())
        .unwrap()
        .to_owned();
    assert_eq!(value.len(), 24);
    assert!(value.chars().all(|c| c.is_ascii_alphanumeric()));
    let drift = declarative::drift(&f.door, &declared()).await.unwrap();
    let next = declarative::plan(&f.door, &declared()).await.unwrap();
    let outputs = [
        plan.to_string(),
        plan.to_json(),
        format!("{plan:?}"),
        format!("{report:?}"),
        drift.to_string(),
        format!("{drift:?}"),
        next.to_json(),
        format!("{:?}", f.sink.records().unwrap()),
        format!("{:?}", Applied::load(&f.door).await.unwrap()),
    ];
    for o in outputs {
        assert!(!o.contains(&value), "the generated value leaked: {o}");
    }
    // a second store generates another value
    let g = fixture().await;
    let plan = declarative::plan(&g.door, &declared()).await.unwrap();
    declarative::apply(&g.door, &plan, &g.operator)
        .await
        .unwrap();
    let other = g.door.secrets().get("prod/payments/db").await.unwrap();
    assert_ne!(other.value.expose_secret(), value.as_bytes());
}

#[tokio::test]
async fn a_directory_of_files_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), FILES).unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "[secrets.\"staging/payments/db\"]\nowner = \"x\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not toml").unwrap();
    let d = Declared::load(dir.path()).unwrap();
    assert_eq!(d.secrets.len(), 3);
    std::fs::write(
        dir.path().join("c.toml"),
        "[principals]\npayment-svc = [\"payments\"]\n",
    )
    .unwrap();
    let e = Declared::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("a.toml") && e.contains("c.toml"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Declared::load(empty.path()),
        Err(DeclarativeError::Io { .. })
    ));
}

#[tokio::test]
async fn plan_and_apply_report_progress_per_secret_read() {
    let f = fixture().await;
    let seen = std::sync::Mutex::new(Vec::new());
    let record = |done: usize, total: usize| seen.lock().unwrap().push((done, total));
    let plan = declarative::plan_reporting(&f.door, &declared(), &[], &record)
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [(1, 2), (2, 2)]);
    seen.lock().unwrap().clear();
    declarative::apply_reporting(&f.door, &plan, &f.operator, &[], &record)
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [(1, 2), (2, 2)]);
}

#[tokio::test]
async fn alert_rules_are_declared_applied_and_start_an_engine() {
    let f = fixture().await;
    let files = r#"
        [alerts.new_path]
        learning_period_secs = 600
        [alerts.sensitive_read]
        patterns = ["prod/admin/*"]
        [alerts.webhook]
        url = "https://alerts.example.com/hook"
        ca_file = "/etc/strongroom/alerts-ca.pem"
    "#;
    let declared = Declared::from_toml_str(files, "alerts.toml").unwrap();
    let plan = declarative::plan(&f.door, &declared).await.unwrap();
    assert!(
        plan.to_string().contains("+ alert rules \"alerts\""),
        "{plan}"
    );
    declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap();
    assert!(
        declarative::plan(&f.door, &declared)
            .await
            .unwrap()
            .is_empty()
    );

    // an application starts its engine from the applied rules
    let applied = Applied::load(&f.door).await.unwrap().unwrap();
    let config = applied.alerts.expect("applied alert rules");
    assert_eq!(config.new_path.learning_period_secs, 600);
    assert_eq!(config.sensitive_read.patterns, ["prod/admin/*"]);
    // the webhook's endpoint and CA file, for WebhookSink::from_config
    let webhook = config.webhook.clone().expect("webhook");
    assert_eq!(webhook.url, "https://alerts.example.com/hook");
    assert_eq!(
        webhook.ca_file,
        std::path::Path::new("/etc/strongroom/alerts-ca.pem")
    );
    let (sink, _rx) = strongroom::alerts::ChannelSink::new(4);
    let engine = strongroom::alerts::AlertEngine::start(config, vec![Arc::new(sink)]).unwrap();
    drop(engine);

    // a changed threshold is an update; rules no longer declared, a removal
    let changed = files.replace("600", "900");
    let changed = Declared::from_toml_str(&changed, "alerts.toml").unwrap();
    let plan = declarative::plan(&f.door, &changed).await.unwrap();
    assert!(
        plan.to_string().contains("~ alert rules \"alerts\""),
        "{plan}"
    );
    let none = Declared::default();
    let drift = declarative::drift(&f.door, &none).await.unwrap();
    assert_eq!(drift.changes.len(), 1);
    assert_eq!(
        (drift.changes[0].kind, drift.changes[0].action),
        (Kind::AlertRules, Action::Delete)
    );

    // a webhook key has no place in the files
    let keyed = "[alerts.webhook]\nurl = \"https://a.example/h\"\nca_file = \"ca.pem\"\nsigning_key = \"hunter2\"\n";
    let err = Declared::from_toml_str(keyed, "alerts.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown field") && !err.contains("hunter2"),
        "{err}"
    );

    // a bad rule is refused naming the file and line
    let bad = "[alerts.read_rate]\nfactor = -1.0\n";
    match Declared::from_toml_str(bad, "alerts.toml") {
        Err(DeclarativeError::Parse {
            source_name,
            line,
            message,
            ..
        }) => {
            assert_eq!((source_name.as_str(), line), ("alerts.toml", 1));
            assert!(message.contains("read_rate"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_approval_gate_on_apply_config_holds_the_apply_until_approved() {
    use std::time::Duration;
    use strongroom::Error;
    use strongroom::approvals::{self, ApprovalError, GatedOperation, Gates};

    let f = fixture().await;
    let gates = Gates::from_toml_str(
        "[[gate]]\noperation = \"apply_config\"\nrequired = 1\napprovers = [\"bob\"]\n",
    )
    .unwrap();
    approvals::set_gates(&f.door, f.door.handle(), &gates, 0)
        .await
        .unwrap();
    let plan = declarative::plan(&f.door, &declared()).await.unwrap();

    // without an approved request: refused, nothing written
    match declarative::apply(&f.door, &plan, &f.operator).await {
        Err(DeclarativeError::Store(Error::Approval(ApprovalError::Required { .. }))) => {}
        other => panic!("{other:?}"),
    }
    assert!(Applied::load(&f.door).await.unwrap().is_none());

    // asked by the operator, approved by bob: applied once
    let req = f
        .operator
        .approvals()
        .request(
            GatedOperation::ApplyConfig,
            "",
            "quarterly policy review",
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let policy = Policy::new("all", vec![Rule::allow("*", Capability::ALL).unwrap()]);
    let bob = f.door.as_principal(
        Principal::new("bob", [&policy]),
        f.operator.audit_log().clone(),
    );
    bob.approvals().approve(&req.id).await.unwrap();
    let approved = f.operator.with_approval(&req.id);
    declarative::apply(&f.door, &plan, &approved).await.unwrap();
    assert_eq!(Applied::load(&f.door).await.unwrap().unwrap().revision, 1);

    // the same request does not apply a second change
    let mut more = declared();
    more.principals
        .insert("other".into(), vec!["payments".into()]);
    let plan = declarative::plan(&f.door, &more).await.unwrap();
    match declarative::apply(&f.door, &plan, &approved).await {
        Err(DeclarativeError::Store(e)) => assert_eq!(e.code(), "approval.used"),
        other => panic!("{other:?}"),
    }
    // a plan with nothing to do needs no approval
    let plan = declarative::plan(&f.door, &declared()).await.unwrap();
    assert!(plan.is_empty());
    declarative::apply(&f.door, &plan, &f.operator)
        .await
        .unwrap();
}
