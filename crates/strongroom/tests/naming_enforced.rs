//! Naming rules hold on every write through a principal's handle, including
//! rules another process applied after this one started; a refusal is typed
//! and audited, and nothing is written.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use strongroom::audit::{MemorySink, Outcome};
use strongroom::declarative::{Declared, apply, plan};
use strongroom::policy::{Policy, Principal};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Error, Options, SecretBytes, Strongroom};

const RULES: &str = r#"
[naming.services]
pattern = "{env}/{service}/{type}"
allowed = { env = ["prod", "staging"] }
"#;

#[tokio::test]
async fn every_handle_write_follows_the_applied_rules() {
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let key = SoftwareProtector::from_key(SecretBytes::new(vec![6; 32])).unwrap();
    let sr = Strongroom::init(storage.clone(), &key, Options::default())
        .await
        .unwrap();
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
    let policy = Policy::from_toml_str(
        r#"
        name = "all"
        [[path]]
        pattern = "*"
        capabilities = ["create", "update", "read"]
        "#,
    )
    .unwrap();
    let app = sr.as_principal(Principal::new("app", [&policy]), audit.clone());
    // nothing applied yet: any valid path
    app.put("dev/x", b"1", None).await.unwrap();

    // another process (another Strongroom on the same storage) applies rules
    let other = Strongroom::unseal(storage.clone(), &key, Options::default())
        .await
        .unwrap();
    let other_audit = Arc::new(
        other
            .open_audit_log(vec![Arc::new(MemorySink::new())], None)
            .await
            .unwrap(),
    );
    let door = other.dangerous("operator", &other_audit).await.unwrap();
    let declared = Declared::from_toml_str(RULES, "rules.toml").unwrap();
    let p = plan(&door, &declared).await.unwrap();
    apply(&door, &p, door.handle()).await.unwrap();

    // this process's next write follows them
    app.put("prod/pay/db", b"2", None).await.unwrap();
    let refused = app.put("dev/pay/db", b"3", None).await.unwrap_err();
    match &refused {
        Error::Naming(v) => {
            assert_eq!(v.path, "dev/pay/db");
            assert!(v.reason.contains("env"), "{}", v.reason);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(refused.kind(), "naming_violation");
    let d = refused.details();
    assert_eq!(d.code, "naming.violation");
    // nothing written, and the refusal on record (no intent before it)
    assert!(matches!(
        app.read("dev/pay/db").await.unwrap_err(),
        Error::Secret(_)
    ));
    let records = sink.records().unwrap();
    let on_path: Vec<_> = records
        .iter()
        .filter(|r| r.event.path.as_deref() == Some("dev/pay/db"))
        .filter(|r| r.event.operation.as_str() == "write")
        .collect();
    assert_eq!(on_path.len(), 1);
    assert_eq!(
        on_path[0].event.outcome,
        Outcome::Error {
            kind: "naming_violation".into()
        }
    );
    // the door's unchecked store does not check them
    let own_door = sr.dangerous("test", &audit).await.unwrap();
    own_door
        .secrets()
        .put("dev/pay/db", b"4", None)
        .await
        .unwrap();
}
