//! Approval gates: the gates file, the rules of deciding, expiry, running
//! once, several processes on one store, every gated operation, audit.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::audit::{AuditLog, MemorySink, Operation, Outcome};
use crate::clock::{ManualClock, Timestamp};
use crate::policy::{Capability, Policy, Principal, Rule};
use crate::protector::SoftwareProtector;
use crate::storage::{BatchOp, DynStorage, MemoryStorage, Storage};
use crate::{Error, Handle, Options, SecretBytes, Strongroom};

const HOUR: Duration = Duration::from_secs(3600);

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap()
}

/// One "process": a store opened on the shared storage, with its own log.
struct Proc {
    sr: Strongroom,
    sink: Arc<MemorySink>,
    audit: Arc<AuditLog>,
}

impl Proc {
    async fn open(storage: &Arc<MemoryStorage>, clock: &Arc<ManualClock>, init: bool) -> Self {
        Self::open_on(storage.clone(), clock, init).await
    }

    async fn open_on(storage: DynStorage, clock: &Arc<ManualClock>, init: bool) -> Self {
        let options = Options {
            clock: clock.clone(),
            ..Options::default()
        };
        let sr = if init {
            Strongroom::init(storage, &protector(), options).await
        } else {
            Strongroom::unseal(storage, &protector(), options).await
        }
        .unwrap();
        let sink = Arc::new(MemorySink::new());
        let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
        Self { sr, sink, audit }
    }

    /// `name` with every capability on secrets and the keyring.
    fn as_(&self, name: &str) -> Handle {
        let policy = Policy::new(
            "all",
            vec![
                Rule::allow("*", Capability::ALL).unwrap(),
                Rule::allow("sys/keyring", Capability::ALL).unwrap(),
            ],
        );
        self.sr
            .as_principal(Principal::new(name, [&policy]), self.audit.clone())
    }

    async fn set_gates(&self, toml: &str) {
        let door = self.sr.dangerous("test", &self.audit).await.unwrap();
        let rev = door.handle().approvals().gates().await.unwrap().revision;
        set_gates(
            &door,
            door.handle(),
            &Gates::from_toml_str(toml).unwrap(),
            rev,
        )
        .await
        .unwrap();
    }
}

async fn setup() -> (Arc<MemoryStorage>, Arc<ManualClock>, Proc) {
    let storage = Arc::new(MemoryStorage::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000_000)));
    let p = Proc::open(&storage, &clock, true).await;
    (storage, clock, p)
}

const TWO_OF_THREE: &str = r#"
[[gate]]
operation = "destroy"
pattern = "prod/*"
required = 2
approvers = ["alice", "bob", "carol"]
"#;

fn code(e: &Error) -> &'static str {
    e.code()
}

async fn request(h: &Handle, op: GatedOperation, path: &str) -> ApprovalRequest {
    h.approvals()
        .request(op, path, "ticket OPS-1 decommission", HOUR)
        .await
        .unwrap()
}

// ----- the gates file -----

fn parse_err(text: &str) -> (Option<u64>, String) {
    match Gates::from_toml_str(text).unwrap_err() {
        ApprovalError::InvalidGates { line, reason } => (line, reason),
        e => panic!("{e:?}"),
    }
}

#[test]
fn gates_file_errors_name_the_line_and_quote_no_value() {
    let gate = |op: &str, pattern: &str, required: &str, approvers: &str| {
        format!(
            "# gates\n[[gate]]\noperation = {op}\n{pattern}\nrequired = {required}\napprovers = {approvers}\n"
        )
    };
    let cases = [
        (
            gate("\"nuke\"", "pattern = \"a/*\"", "1", "[\"a\"]"),
            3,
            "unknown operation",
        ),
        (
            gate("\"destroy\"", "", "1", "[\"a\"]"),
            3,
            "needs a pattern",
        ),
        (
            gate("\"root_key_rotate\"", "pattern = \"a/*\"", "1", "[\"a\"]"),
            4,
            "whole store",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/../b\"", "1", "[\"a\"]"),
            4,
            "not a valid path pattern",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/*\"", "0", "[\"a\"]"),
            5,
            "at least 1",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/*\"", "-1", "[\"a\"]"),
            5,
            "at least 1",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/*\"", "3", "[\"a\", \"b\"]"),
            5,
            "names only 2 approvers",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/*\"", "1", "[]"),
            6,
            "at least one approver",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/*\"", "1", "[\"a\", \"a\"]"),
            6,
            "distinct",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/*\"", "1", "[\"a b\"]"),
            6,
            "without spaces",
        ),
        (
            gate("\"destroy\"", "pattern = \"a/*\"", "\"hunter2\"", "[\"a\"]"),
            5,
            "invalid type",
        ),
    ];
    for (text, line, says) in cases {
        let (got_line, reason) = parse_err(&text);
        assert_eq!(got_line, Some(line), "{text}: {reason}");
        assert!(reason.contains(says), "{text}: {reason}");
        assert!(!reason.contains("hunter2"), "a value is quoted: {reason}");
        assert!(!reason.contains("nuke"), "a value is quoted: {reason}");
    }
    // unknown keys and duplicates
    let (line, reason) = parse_err("[[gate]]\noperation = \"destroy\"\npatern = \"a\"\n");
    assert_eq!(line, Some(3), "{reason}");
    let dup = format!("{TWO_OF_THREE}\n{TWO_OF_THREE}");
    let (line, reason) = parse_err(&dup);
    assert_eq!(line, Some(11), "{reason}");
    assert!(reason.contains("merge"), "{reason}");
}

#[test]
fn gates_round_trip_and_cover() {
    let g = Gates::from_toml_str(&format!(
        "{TWO_OF_THREE}\n[[gate]]\noperation = \"key_destroy\"\npattern = \"sys/keyring\"\nrequired = 1\napprovers = [\"alice\"]\n"
    ))
    .unwrap();
    assert_eq!(Gates::from_toml_str(&g.to_toml()).unwrap(), g);
    assert_eq!(g.covering(GatedOperation::Destroy, "prod/db").count(), 1);
    assert_eq!(g.covering(GatedOperation::Destroy, "dev/db").count(), 0);
    assert_eq!(
        g.covering(GatedOperation::SensitiveRead, "prod/db").count(),
        0
    );
    assert_eq!(
        g.covering(GatedOperation::KeyDestroy, KEYRING_TARGET)
            .count(),
        1
    );
    assert!(Gate::new(GatedOperation::Destroy, Some("a/*"), 2, ["x"]).is_err());
    assert!(
        Gate::new(
            GatedOperation::Destroy,
            Some("a/*"),
            1,
            Vec::<String>::new()
        )
        .is_err()
    );
    assert!(Gate::new(GatedOperation::ApplyConfig, None, 1, ["x"]).is_ok());
}

// ----- deciding -----

#[tokio::test]
async fn n_of_m_distinct_approvers_self_and_strangers_refused() {
    let (_s, _c, p) = setup().await;
    p.set_gates(TWO_OF_THREE).await;
    let (ops, alice, bob, mallory) = (p.as_("ops"), p.as_("alice"), p.as_("bob"), p.as_("mallory"));
    ops.put("prod/db", b"pw", None).await.unwrap();

    let req = request(&ops, GatedOperation::Destroy, "prod/db").await;
    assert_eq!(req.state, RequestState::Pending);
    assert_eq!(req.requester, "ops");
    assert_eq!(req.expires, req.created + HOUR);

    // the requester approving its own: refused
    let alice_req = request(&alice, GatedOperation::Destroy, "prod/db").await;
    let err = alice.approvals().approve(&alice_req.id).await.unwrap_err();
    assert_eq!(code(&err), "approval.self_approval");
    // a principal no gate names: refused (approve and refuse)
    let err = mallory.approvals().approve(&req.id).await.unwrap_err();
    assert_eq!(code(&err), "approval.not_approver");
    let err = mallory.approvals().refuse(&req.id).await.unwrap_err();
    assert_eq!(code(&err), "approval.not_approver");

    // one approval of two: not yet; the same approver twice counts once
    let r = alice.approvals().approve(&req.id).await.unwrap();
    assert_eq!(r.state, RequestState::Pending);
    let err = alice.approvals().approve(&req.id).await.unwrap_err();
    assert_eq!(code(&err), "approval.already_approved");
    let err = ops
        .with_approval(&req.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.not_approved");
    assert!(matches!(
        err,
        Error::Approval(ApprovalError::NotApproved {
            approvals: 1,
            required: 2,
            ..
        })
    ));
    let r = bob.approvals().approve(&req.id).await.unwrap();
    assert_eq!(r.state, RequestState::Approved);
    assert_eq!(
        r.approvals
            .iter()
            .map(|d| d.principal.as_str())
            .collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    // the unused request did not run: the secret is still there
    assert_eq!(
        ops.read("prod/db").await.unwrap().value.expose_secret(),
        b"pw"
    );

    // nothing to request where no gate holds
    let err = ops
        .approvals()
        .request(GatedOperation::Destroy, "dev/db", "x", HOUR)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.no_gate");
    // unknown and malformed ids
    for id in ["0123456789abcdef0123456789abcdef", "../../sys/keyring"] {
        let err = alice.approvals().approve(id).await.unwrap_err();
        assert_eq!(code(&err), "approval.not_found");
    }
    // bad requests
    for (reason, ttl) in [
        ("", HOUR),
        ("x", Duration::ZERO),
        ("x", MAX_TTL * 2),
        ("a\u{7}", HOUR),
    ] {
        let err = ops
            .approvals()
            .request(GatedOperation::Destroy, "prod/db", reason, ttl)
            .await
            .unwrap_err();
        assert_eq!(code(&err), "approval.invalid_request");
    }
}

#[tokio::test]
async fn one_refusal_ends_it() {
    let (_s, _c, p) = setup().await;
    p.set_gates(TWO_OF_THREE).await;
    let (ops, alice, bob, carol) = (p.as_("ops"), p.as_("alice"), p.as_("bob"), p.as_("carol"));
    ops.put("prod/db", b"pw", None).await.unwrap();
    let req = request(&ops, GatedOperation::Destroy, "prod/db").await;
    alice.approvals().approve(&req.id).await.unwrap();
    let r = carol.approvals().refuse(&req.id).await.unwrap();
    assert_eq!(r.state, RequestState::Refused);
    let err = bob.approvals().approve(&req.id).await.unwrap_err();
    assert!(matches!(
        &err,
        Error::Approval(ApprovalError::Refused { by, .. }) if by == "carol"
    ));
    let err = ops
        .with_approval(&req.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.refused");
    assert_eq!(
        ops.approvals().get(&req.id).await.unwrap().state,
        RequestState::Refused
    );
}

#[tokio::test]
async fn expired_requests_can_be_neither_approved_nor_used() {
    let (_s, clock, p) = setup().await;
    p.set_gates(TWO_OF_THREE).await;
    let (ops, alice, bob) = (p.as_("ops"), p.as_("alice"), p.as_("bob"));
    ops.put("prod/db", b"pw", None).await.unwrap();

    let late = request(&ops, GatedOperation::Destroy, "prod/db").await;
    alice.approvals().approve(&late.id).await.unwrap();
    clock.advance(HOUR);
    let err = bob.approvals().approve(&late.id).await.unwrap_err();
    assert_eq!(code(&err), "approval.expired");
    assert_eq!(
        ops.approvals().get(&late.id).await.unwrap().state,
        RequestState::Expired
    );

    let unused = request(&ops, GatedOperation::Destroy, "prod/db").await;
    alice.approvals().approve(&unused.id).await.unwrap();
    bob.approvals().approve(&unused.id).await.unwrap();
    clock.advance(HOUR + Duration::from_secs(1));
    let err = ops
        .with_approval(&unused.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Approval(ApprovalError::Expired { .. })),
        "{err:?}"
    );
    assert_eq!(ops.read("prod/db").await.unwrap().version.version, 1);

    // prune removes what can no longer run
    assert_eq!(ops.approvals().list().await.unwrap().len(), 2);
    assert_eq!(ops.approvals().prune(Duration::ZERO).await.unwrap(), 2);
    assert!(ops.approvals().list().await.unwrap().is_empty());
}

// ----- running once -----

#[tokio::test]
async fn an_approved_request_runs_once_for_its_operation_path_and_requester() {
    let (_s, _c, p) = setup().await;
    p.set_gates(TWO_OF_THREE).await;
    let (ops, other, alice, bob) = (p.as_("ops"), p.as_("other"), p.as_("alice"), p.as_("bob"));
    for path in ["prod/db", "prod/cache"] {
        ops.put(path, b"v1", None).await.unwrap();
        ops.put(path, b"v2", None).await.unwrap();
    }
    let req = request(&ops, GatedOperation::Destroy, "prod/db").await;
    alice.approvals().approve(&req.id).await.unwrap();
    bob.approvals().approve(&req.id).await.unwrap();

    // another path, another requester, another operation: no
    let err = ops
        .with_approval(&req.id)
        .destroy("prod/cache", &[1])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Approval(ApprovalError::Mismatch { what: "path", .. })
        ),
        "{err:?}"
    );
    let err = other
        .with_approval(&req.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Approval(ApprovalError::Mismatch {
                what: "requester",
                ..
            })
        ),
        "{err:?}"
    );
    // none of those spent it
    assert_eq!(
        ops.with_approval(&req.id)
            .destroy("prod/db", &[1])
            .await
            .unwrap(),
        [1]
    );
    let err = ops
        .with_approval(&req.id)
        .destroy("prod/db", &[2])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.used");
    assert_eq!(
        ops.read("prod/db").await.unwrap().value.expose_secret(),
        b"v2"
    );
    let r = ops.approvals().get(&req.id).await.unwrap();
    assert_eq!(
        (r.state, r.used_by.as_deref()),
        (RequestState::Used, Some("ops"))
    );
    // an operation no gate holds ignores the id
    ops.with_approval(&req.id)
        .put("prod/db", b"v3", None)
        .await
        .unwrap();
}

#[tokio::test]
async fn every_gated_operation_is_refused_without_approval_and_runs_with_it() {
    let (_s, _c, p) = setup().await;
    p.set_gates(
        r#"
[[gate]]
operation = "destroy"
pattern = "prod/*"
required = 1
approvers = ["alice"]
[[gate]]
operation = "sensitive_read"
pattern = "prod/root/+"
required = 1
approvers = ["alice"]
[[gate]]
operation = "root_key_rotate"
required = 1
approvers = ["alice"]
[[gate]]
operation = "key_destroy"
required = 1
approvers = ["alice"]
[[gate]]
operation = "apply_config"
required = 1
approvers = ["alice"]
"#,
    )
    .await;
    let (ops, alice) = (p.as_("ops"), p.as_("alice"));
    let approved = async |op: GatedOperation, path: &str| {
        let r = request(&ops, op, path).await;
        alice.approvals().approve(&r.id).await.unwrap();
        r.id
    };
    ops.put("prod/a", b"1", None).await.unwrap();
    ops.put("prod/b", b"1", None).await.unwrap();
    ops.put("prod/root/token", b"t", None).await.unwrap();

    // destroy
    let err = ops.destroy("prod/a", &[1]).await.unwrap_err();
    assert_eq!(code(&err), "approval.required");
    let id = approved(GatedOperation::Destroy, "prod/a").await;
    ops.with_approval(&id)
        .destroy("prod/a", &[1])
        .await
        .unwrap();
    // delete_metadata destroys every version: the same gate
    let err = ops.delete_metadata("prod/b").await.unwrap_err();
    assert_eq!(code(&err), "approval.required");
    let id = approved(GatedOperation::Destroy, "prod/b").await;
    ops.with_approval(&id)
        .delete_metadata("prod/b")
        .await
        .unwrap();
    // soft delete is not held
    ops.put("prod/c", b"1", None).await.unwrap();
    ops.delete("prod/c", &[]).await.unwrap();

    // sensitive read, latest and by version; other paths read freely
    let err = ops.read("prod/root/token").await.unwrap_err();
    assert_eq!(code(&err), "approval.required");
    let err = ops.read_version("prod/root/token", 1).await.unwrap_err();
    assert_eq!(code(&err), "approval.required");
    let id = approved(GatedOperation::SensitiveRead, "prod/root/token").await;
    let h = ops.with_approval(&id);
    assert_eq!(
        h.read("prod/root/token")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"t"
    );
    assert_eq!(
        code(&h.read_version("prod/root/token", 1).await.unwrap_err()),
        "approval.used"
    );
    ops.put("prod/other", b"o", None).await.unwrap();
    ops.read("prod/other").await.unwrap();

    // key destroy
    let admin = ops.key_admin();
    admin.rotate().await.unwrap();
    admin.rewrap(100).await.unwrap();
    admin.retire(2).await.unwrap();
    let err = admin.destroy(1).await.unwrap_err();
    assert_eq!(code(&err), "approval.required");
    let id = approved(GatedOperation::KeyDestroy, "").await;
    ops.with_approval(&id).key_admin().destroy(1).await.unwrap();

    // root key rotation
    let err = admin.rotate_root_key(&protector()).await.unwrap_err();
    assert_eq!(code(&err), "approval.required");
    let id = approved(GatedOperation::RootKeyRotate, KEYRING_TARGET).await;
    ops.with_approval(&id)
        .key_admin()
        .rotate_root_key(&SoftwareProtector::from_key(SecretBytes::new(vec![6; 32])).unwrap())
        .await
        .unwrap();

    // apply_config through the hook
    let err = require(&ops, GatedOperation::ApplyConfig, "")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.required");
    let id = approved(GatedOperation::ApplyConfig, APPLY_TARGET).await;
    require(&ops.with_approval(&id), GatedOperation::ApplyConfig, "")
        .await
        .unwrap();
    let err = require(&ops.with_approval(&id), GatedOperation::ApplyConfig, "")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.used");

    // the refusals were audited under the operation with the error kind
    let recs = p.sink.records().unwrap();
    assert!(
        recs.iter()
            .any(|r| r.event.operation == Operation::RootKeyRotate
                && r.event.outcome
                    == Outcome::Error {
                        kind: "approval_required".into()
                    })
    );
}

#[tokio::test]
async fn without_gates_nothing_is_held() {
    let (_s, _c, p) = setup().await;
    let ops = p.as_("ops");
    ops.put("prod/db", b"pw", None).await.unwrap();
    ops.read("prod/db").await.unwrap();
    ops.destroy("prod/db", &[1]).await.unwrap();
    require(&ops, GatedOperation::ApplyConfig, "")
        .await
        .unwrap();
    assert_eq!(ops.approvals().gates().await.unwrap().revision, 0);
}

#[tokio::test]
async fn gates_change_with_compare_and_set_on_the_revision() {
    let (_s, _c, p) = setup().await;
    let door = p.sr.dangerous("test", &p.audit).await.unwrap();
    let g = Gates::from_toml_str(TWO_OF_THREE).unwrap();
    assert_eq!(set_gates(&door, door.handle(), &g, 0).await.unwrap(), 1);
    let err = set_gates(&door, door.handle(), &Gates::empty(), 0)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.conflict");
    assert_eq!(
        set_gates(&door, door.handle(), &Gates::empty(), 1)
            .await
            .unwrap(),
        2
    );
    let stored = p.as_("x").approvals().gates().await.unwrap();
    assert_eq!((stored.revision, stored.gates.is_empty()), (2, true));
}

// ----- several processes on one store -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_approvals_from_two_processes_are_all_counted() {
    let (storage, clock, p1) = setup().await;
    let p2 = Proc::open(&storage, &clock, false).await;
    let p3 = Proc::open(&storage, &clock, false).await;
    p1.set_gates(
        r#"
[[gate]]
operation = "destroy"
pattern = "prod/*"
required = 3
approvers = ["alice", "bob", "carol"]
"#,
    )
    .await;
    for _ in 0..10 {
        let req = request(&p1.as_("ops"), GatedOperation::Destroy, "prod/db").await;
        let (a, b, c) = (
            p1.as_("alice").approvals(),
            p2.as_("bob").approvals(),
            p3.as_("carol").approvals(),
        );
        let (ida, idb, idc) = (req.id.clone(), req.id.clone(), req.id.clone());
        let (ra, rb, rc) = tokio::join!(
            tokio::spawn(async move { a.approve(&ida).await }),
            tokio::spawn(async move { b.approve(&idb).await }),
            tokio::spawn(async move { c.approve(&idc).await }),
        );
        for r in [ra, rb, rc] {
            r.unwrap().unwrap();
        }
        let r = p2.as_("x").approvals().get(&req.id).await.unwrap();
        assert_eq!(r.approvals.len(), 3, "an approval was lost");
        assert_eq!(r.state, RequestState::Approved);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_consumers_in_two_processes_run_exactly_once() {
    let (storage, clock, p1) = setup().await;
    let p2 = Proc::open(&storage, &clock, false).await;
    p1.set_gates(
        r#"
[[gate]]
operation = "sensitive_read"
pattern = "prod/*"
required = 1
approvers = ["alice"]
"#,
    )
    .await;
    let door = p1.sr.dangerous("test", &p1.audit).await.unwrap();
    door.secrets().put("prod/db", b"pw", None).await.unwrap();
    for _ in 0..10 {
        let req = request(&p1.as_("ops"), GatedOperation::SensitiveRead, "prod/db").await;
        p2.as_("alice").approvals().approve(&req.id).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let h = if i % 2 == 0 {
                p1.as_("ops")
            } else {
                p2.as_("ops")
            }
            .with_approval(&req.id);
            tasks.push(tokio::spawn(async move { h.read("prod/db").await }));
        }
        let mut ran = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(v) => {
                    assert_eq!(v.value.expose_secret(), b"pw");
                    ran += 1;
                }
                Err(e) => assert_eq!(code(&e), "approval.used", "{e:?}"),
            }
        }
        assert_eq!(ran, 1);
    }
}

// ----- audit -----

#[tokio::test]
async fn request_approve_refuse_and_use_are_audited_without_the_reason() {
    let (_s, _c, p) = setup().await;
    p.set_gates(TWO_OF_THREE).await;
    let (ops, alice, bob, carol) = (p.as_("ops"), p.as_("alice"), p.as_("bob"), p.as_("carol"));
    ops.put("prod/db", b"pw", None).await.unwrap();
    let reason = "REASON-TEXT-42 decommission";
    let req = ops
        .approvals()
        .request(GatedOperation::Destroy, "prod/db", reason, HOUR)
        .await
        .unwrap();
    alice.approvals().approve(&req.id).await.unwrap();
    bob.approvals().approve(&req.id).await.unwrap();
    ops.with_approval(&req.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap();
    let refused = ops
        .approvals()
        .request(GatedOperation::Destroy, "prod/db", reason, HOUR)
        .await
        .unwrap();
    carol.approvals().refuse(&refused.id).await.unwrap();

    let recs = p.sink.records().unwrap();
    let of = |op: Operation, id: &str| -> Vec<(String, Outcome)> {
        recs.iter()
            .filter(|r| r.event.operation == op && r.event.request_id == id)
            .inspect(|r| assert_eq!(r.event.path.as_deref(), Some("prod/db")))
            .map(|r| (r.event.principal.clone(), r.event.outcome.clone()))
            .collect()
    };
    let allowed = |who: &str| vec![(who.to_owned(), Outcome::Allowed); 2];
    assert_eq!(of(Operation::ApprovalRequest, &req.id), allowed("ops"));
    let approves = of(Operation::ApprovalApprove, &req.id);
    assert_eq!(approves.len(), 4);
    assert_eq!(of(Operation::ApprovalUse, &req.id), allowed("ops"));
    assert_eq!(of(Operation::ApprovalRefuse, &refused.id), allowed("carol"));
    for line in p.sink.lines() {
        assert!(
            !line.contains("REASON-TEXT"),
            "the reason reached the audit trail: {line}"
        );
    }
    // a refused decision is audited as denied
    let mallory = p.as_("mallory");
    let r3 = request(&ops, GatedOperation::Destroy, "prod/db").await;
    mallory.approvals().approve(&r3.id).await.unwrap_err();
    let recs = p.sink.records().unwrap();
    let last = recs.last().unwrap();
    assert_eq!(
        (
            last.event.operation,
            &last.event.outcome,
            last.event.request_id.as_str()
        ),
        (Operation::ApprovalApprove, &Outcome::Denied, r3.id.as_str())
    );
}

// ----- a decision landing between a read and its compare-and-set -----

type Interloper = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Storage that, once armed, runs another process's action just before the
/// next batch that writes a request record: that action lands between this
/// process's read of the request and its compare-and-set.
struct Interleaved {
    inner: Arc<MemoryStorage>,
    hook: tokio::sync::Mutex<Option<Interloper>>,
}

impl std::fmt::Debug for Interleaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interleaved")
    }
}

#[async_trait::async_trait]
impl Storage for Interleaved {
    fn backend(&self) -> &'static str {
        "interleaved"
    }
    async fn get(&self, key: &str) -> crate::Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> crate::Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan(prefix, start_after, limit).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> crate::Result<()> {
        let writes_request = ops
            .iter()
            .any(|op| matches!(op, BatchOp::Put { key, .. } if key.starts_with(REQUEST_PREFIX)));
        if writes_request {
            let hook = self.hook.lock().await.take();
            if let Some(run) = hook {
                run.await;
            }
        }
        self.inner.batch(ops).await
    }
}

/// A store whose first process (over [`Interleaved`]) can be interrupted by
/// the second (on the plain storage).
async fn interleaved() -> (Arc<Interleaved>, Proc, Proc) {
    let inner = Arc::new(MemoryStorage::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000_000)));
    let wrapped = Arc::new(Interleaved {
        inner: inner.clone(),
        hook: tokio::sync::Mutex::new(None),
    });
    let p1 = Proc::open_on(wrapped.clone(), &clock, true).await;
    let p2 = Proc::open(&inner, &clock, false).await;
    (wrapped, p1, p2)
}

#[tokio::test]
async fn an_approval_landing_between_read_and_write_is_kept() {
    let (wrapped, p1, p2) = interleaved().await;
    p1.set_gates(TWO_OF_THREE).await;
    let req = request(&p1.as_("ops"), GatedOperation::Destroy, "prod/db").await;
    let (bob, id) = (p2.as_("bob").approvals(), req.id.clone());
    *wrapped.hook.lock().await = Some(Box::pin(async move {
        bob.approve(&id).await.unwrap();
    }));
    // alice read the request before bob's approval was written: her
    // compare-and-set fails, she re-reads, and both approvals count
    let r = p1.as_("alice").approvals().approve(&req.id).await.unwrap();
    assert!(wrapped.hook.lock().await.is_none(), "the interloper ran");
    let who: Vec<&str> = r.approvals.iter().map(|d| d.principal.as_str()).collect();
    assert_eq!(who, ["bob", "alice"]);
    assert_eq!(r.state, RequestState::Approved);
}

#[tokio::test]
async fn a_use_landing_between_read_and_write_leaves_the_other_refused() {
    let (wrapped, p1, p2) = interleaved().await;
    p1.set_gates(TWO_OF_THREE).await;
    let ops1 = p1.as_("ops");
    for _ in 0..3 {
        ops1.put("prod/db", b"v", None).await.unwrap();
    }
    let req = request(&ops1, GatedOperation::Destroy, "prod/db").await;
    p1.as_("alice").approvals().approve(&req.id).await.unwrap();
    p2.as_("bob").approvals().approve(&req.id).await.unwrap();
    let other = p2.as_("ops").with_approval(&req.id);
    *wrapped.hook.lock().await = Some(Box::pin(async move {
        assert_eq!(other.destroy("prod/db", &[1]).await.unwrap(), [1]);
    }));
    let err = ops1
        .with_approval(&req.id)
        .destroy("prod/db", &[2])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "approval.used");
    assert!(wrapped.hook.lock().await.is_none(), "the interloper ran");
    // version 2 was not destroyed
    assert_eq!(
        ops1.read_version("prod/db", 2)
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"v"
    );
}

#[tokio::test]
async fn use_counts_approvals_against_the_gates_as_stored_now() {
    let (_s, _c, p) = setup().await;
    p.set_gates(TWO_OF_THREE).await;
    let (ops, alice, bob) = (p.as_("ops"), p.as_("alice"), p.as_("bob"));
    ops.put("prod/db", b"pw", None).await.unwrap();
    let req = request(&ops, GatedOperation::Destroy, "prod/db").await;
    alice.approvals().approve(&req.id).await.unwrap();
    bob.approvals().approve(&req.id).await.unwrap();
    // the gate is tightened after the approvals: 3 of 3 now
    p.set_gates(&TWO_OF_THREE.replace("required = 2", "required = 3"))
        .await;
    let err = ops
        .with_approval(&req.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Approval(ApprovalError::NotApproved {
                approvals: 2,
                required: 3,
                ..
            })
        ),
        "{err:?}"
    );
    // not spent: the third approval makes it usable
    p.as_("carol").approvals().approve(&req.id).await.unwrap();
    ops.with_approval(&req.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_policy_denial_comes_first_and_spends_nothing() {
    let (_s, _c, p) = setup().await;
    p.set_gates(TWO_OF_THREE).await;
    p.as_("ops").put("prod/db", b"pw", None).await.unwrap();
    let read_only = Policy::new(
        "ro",
        vec![Rule::allow("prod/*", [Capability::Read]).unwrap()],
    );
    let ro =
        p.sr.as_principal(Principal::new("ro", [&read_only]), p.audit.clone());
    let req = request(&ro, GatedOperation::Destroy, "prod/db").await;
    p.as_("alice").approvals().approve(&req.id).await.unwrap();
    p.as_("bob").approvals().approve(&req.id).await.unwrap();
    let err = ro
        .with_approval(&req.id)
        .destroy("prod/db", &[1])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy_denied");
    let r = ro.approvals().get(&req.id).await.unwrap();
    assert_eq!(r.state, RequestState::Approved);
}
