//! `approval request | approve | refuse | list | show | gates set | gates
//! show`, and the `--approval ID` the gated commands (`destroy`, `purge`,
//! `destroy-key`, `rotate-root`) pass to the library.
//!
//! Each acts as the operator (`--operator NAME`, principal
//! `operator:NAME`): requests, decisions and gate changes are audited by
//! the library under that principal; `list`, `show` and `gates show` record
//! a `read_metadata` of `sys/approvals` before they read.

use serde_json::{Value, json};
use strongroom::Handle;
use strongroom::approvals::{self, ApprovalRequest, Decision, GatedOperation, Gates};
use strongroom::audit::Operation;

use crate::args::{
    ApprovalArg, ApprovalCommand, ApprovalGatesCommand, ApprovalGatesSetArgs, ApprovalIdArgs,
    ApprovalListArgs, ApprovalRequestArgs, ApprovalShowArgs, OperatorArgs, StoreArgs,
};
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::print::json as out;

/// The path `list`, `show` and `gates show` record their read on.
const READ_PATH: &str = "sys/approvals";

/// Runs one `approval` command.
pub(crate) async fn run(c: ApprovalCommand) -> CliResult {
    match c {
        ApprovalCommand::Request(a) => request(a).await,
        ApprovalCommand::Approve(a) => decide(a, true).await,
        ApprovalCommand::Refuse(a) => decide(a, false).await,
        ApprovalCommand::List(a) => list(a).await,
        ApprovalCommand::Show(a) => show(a).await,
        ApprovalCommand::Gates(ApprovalGatesCommand::Set(a)) => gates_set(a).await,
        ApprovalCommand::Gates(ApprovalGatesCommand::Show(a)) => gates_show(a).await,
    }
}

/// The operator's handle, giving `--approval` to the gated calls.
pub(crate) fn handle(op: &Operator, a: &ApprovalArg) -> Handle {
    match &a.approval {
        Some(id) => op.secrets().with_approval(id),
        None => op.secrets().clone(),
    }
}

/// `rotate-root` changes the root key through the door, so it runs the
/// gate check itself: `Ok` when no gate holds `root_key_rotate`, else the
/// approved request is used up. Call before anything is recorded or done.
pub(crate) async fn require_root_rotation(
    op: &Operator,
    a: &ApprovalArg,
) -> strongroom::Result<()> {
    approvals::require(&handle(op, a), GatedOperation::RootKeyRotate, "").await
}

fn decisions(ds: &[Decision]) -> Value {
    ds.iter()
        .map(|d| json!({ "principal": d.principal, "at": d.at.to_string() }))
        .collect()
}

fn request_json(r: &ApprovalRequest) -> Value {
    json!({
        "id": r.id,
        "operation": r.operation.as_str(),
        "path": r.path,
        "requester": r.requester,
        "reason": r.reason,
        "created_at": r.created.to_string(),
        "expires_at": r.expires.to_string(),
        "state": r.state.as_str(),
        "approvals": decisions(&r.approvals),
        "refusals": decisions(&r.refusals),
        "used_by": r.used_by,
    })
}

fn print_request(r: &ApprovalRequest, json: bool) {
    if json {
        out::print(&request_json(r));
        return;
    }
    println!("id: {}", r.id);
    println!("operation: {}", r.operation);
    println!("path: {}", r.path);
    println!("requester: {}", r.requester);
    println!("reason: {}", r.reason);
    println!("created: {}", r.created);
    println!("expires: {}", r.expires);
    println!("state: {}", r.state);
    for d in &r.approvals {
        println!("approved by {} at {}", d.principal, d.at);
    }
    for d in &r.refusals {
        println!("refused by {} at {}", d.principal, d.at);
    }
    if let Some(who) = &r.used_by {
        println!("used by {who}");
    }
}

/// `approval request`.
pub(crate) async fn request(a: ApprovalRequestArgs) -> CliResult {
    let path = a.path.clone().unwrap_or_default();
    let r = Operator::run(&a.store, &a.operator, true, async |_, op| {
        audited(
            op.secrets()
                .approvals()
                .request(a.operation, &path, &a.reason, a.ttl)
                .await,
            true,
        )
    })
    .await?;
    print_request(&r, a.json);
    Ok(())
}

/// `approval approve` (`approve`) or `refuse`.
pub(crate) async fn decide(a: ApprovalIdArgs, approve: bool) -> CliResult {
    let r = Operator::run(&a.store, &a.operator, true, async |_, op| {
        let approvals = op.secrets().approvals();
        let result = if approve {
            approvals.approve(&a.id).await
        } else {
            approvals.refuse(&a.id).await
        };
        audited(result, true)
    })
    .await?;
    print_request(&r, a.json);
    Ok(())
}

/// Records the operator's read of the approvals, then runs `f`.
async fn read<T>(
    store: &StoreArgs,
    who: &OperatorArgs,
    f: impl AsyncFnOnce(&Operator) -> CliResult<T>,
) -> CliResult<T> {
    Operator::run(store, who, true, async |_, op| {
        let event = op.event(Operation::ReadMetadata)?.with_path(READ_PATH);
        op.record(event, false).await?;
        f(op).await
    })
    .await
}

/// `approval list`.
pub(crate) async fn list(a: ApprovalListArgs) -> CliResult {
    let all = read(&a.store, &a.operator, async |op| {
        Ok(op.secrets().approvals().list().await?)
    })
    .await?;
    if a.json {
        out::print(&Value::Array(all.iter().map(request_json).collect()));
        return Ok(());
    }
    if all.is_empty() {
        println!("no approval requests");
    }
    for r in &all {
        println!(
            "{} {:<9} {:<16} {} (by {}, {} approval(s), expires {})",
            r.id,
            r.state.as_str(),
            r.operation.as_str(),
            r.path,
            r.requester,
            r.approvals.len(),
            r.expires
        );
    }
    Ok(())
}

/// `approval show`.
pub(crate) async fn show(a: ApprovalShowArgs) -> CliResult {
    let r = read(&a.store, &a.operator, async |op| {
        Ok(op.secrets().approvals().get(&a.id).await?)
    })
    .await?;
    print_request(&r, a.json);
    Ok(())
}

/// `approval gates show`.
pub(crate) async fn gates_show(a: ApprovalListArgs) -> CliResult {
    let stored = read(&a.store, &a.operator, async |op| {
        Ok(op.secrets().approvals().gates().await?)
    })
    .await?;
    if a.json {
        let gates: Vec<Value> = stored
            .gates
            .gates()
            .iter()
            .map(|g| {
                json!({
                    "operation": g.operation().as_str(),
                    "pattern": g.pattern().map(|p| p.as_str()),
                    "required": g.required(),
                    "approvers": g.approvers(),
                })
            })
            .collect();
        out::print(&json!({ "revision": stored.revision, "gates": gates }));
        return Ok(());
    }
    println!("# revision {}", stored.revision);
    print!("{}", stored.gates.to_toml());
    Ok(())
}

/// `approval gates set`: replaces the gates with the file's, conditioned on
/// the revision read just before (another process's change in between is
/// refused, exit 4).
pub(crate) async fn gates_set(a: ApprovalGatesSetArgs) -> CliResult {
    // checked before the store is opened: a bad file costs nothing
    let gates = Gates::from_toml_file(&a.file).map_err(|e| Failure::Lib(e.into()))?;
    let revision = Operator::run(&a.store, &a.operator, true, async |open, op| {
        let current = op.secrets().approvals().gates().await?.revision;
        audited(
            approvals::set_gates(&open.sr, op.secrets(), &gates, current).await,
            true,
        )
    })
    .await?;
    println!("{} gate(s) set (revision {revision})", gates.gates().len());
    Ok(())
}
