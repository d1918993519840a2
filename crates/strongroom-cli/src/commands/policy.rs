//! `policy list | show | check`: the policies and principals last applied
//! (`apply` stores them at `sys/declared`), read-only. Policies change only
//! through `plan` and `apply`, so every change is a reviewed file. Each
//! command records a `read_metadata` of `sys/declared` as the operator
//! before it reads the store, as `plan` does.

use strongroom::audit::Operation;
use strongroom::declarative::{Applied, DECLARED_RECORD};
use strongroom::path::SecretPath;
use strongroom::policy::{Access, Capability, Decision, Policy};

use crate::args::{PolicyCheckArgs, PolicyListArgs, PolicyShowArgs};
use crate::exit::{CliResult, Failure};
use crate::operator::Operator;
use crate::print::json;

/// Opens the store, records the read, loads the applied state (`None`:
/// nothing was ever applied) and closes the store.
async fn load(
    store: &crate::args::StoreArgs,
    who: &crate::args::OperatorArgs,
) -> CliResult<Option<Applied>> {
    Operator::run(store, who, true, async |open, op| {
        let event = op
            .event(Operation::ReadMetadata)?
            .with_path(DECLARED_RECORD);
        op.record(event, false).await?;
        Ok(Applied::load(&open.sr).await?)
    })
    .await
}

fn rules_json(p: &Policy) -> serde_json::Value {
    p.rules
        .iter()
        .map(|r| {
            let caps: Vec<&str> = match &r.access {
                Access::Allow(c) => c.iter().map(Capability::as_str).collect(),
                Access::Deny => vec!["deny"],
            };
            serde_json::json!({ "pattern": r.pattern.as_str(), "capabilities": caps })
        })
        .collect()
}

fn caps_text(access: &Access) -> String {
    match access {
        Access::Allow(c) => c
            .iter()
            .map(Capability::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Access::Deny => "deny".to_owned(),
    }
}

/// `policy list`.
pub(crate) async fn list(a: PolicyListArgs) -> CliResult {
    let applied = load(&a.store, &a.operator).await?;
    let (policies, principals): (Vec<&Policy>, Vec<(&String, &Vec<String>)>) = match &applied {
        Some(ap) => (ap.policies.iter().collect(), ap.principals.iter().collect()),
        None => (Vec::new(), Vec::new()),
    };
    if a.json {
        json::print(&serde_json::json!({
            "revision": applied.as_ref().map(|ap| ap.revision),
            "applied_by": applied.as_ref().map(|ap| ap.applied_by.clone()),
            "applied_at": applied.as_ref().map(|ap| ap.applied_at.to_string()),
            "policies": policies.iter().map(|p| serde_json::json!({
                "name": p.name, "rules": p.rules.len(),
            })).collect::<Vec<_>>(),
            "principals": principals.iter().map(|(name, pols)| serde_json::json!({
                "name": name, "policies": pols,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let Some(ap) = &applied else {
        println!("nothing applied yet (see `strongroom plan` and `apply`)");
        return Ok(());
    };
    println!(
        "revision {} applied by {} at {}",
        ap.revision, ap.applied_by, ap.applied_at
    );
    for p in &policies {
        println!("policy {} ({} rule(s))", p.name, p.rules.len());
    }
    for (name, pols) in &principals {
        println!("principal {name}: {}", pols.join(", "));
    }
    Ok(())
}

/// `policy show NAME`.
pub(crate) async fn show(a: PolicyShowArgs) -> CliResult {
    let applied = load(&a.store, &a.operator).await?;
    let policy = applied
        .as_ref()
        .and_then(|ap| ap.policies.get(&a.name))
        .ok_or_else(|| Failure::NotApplied(format!("no applied policy named {:?}", a.name)))?;
    if a.json {
        json::print(&serde_json::json!({
            "name": policy.name,
            "rules": rules_json(policy),
        }));
        return Ok(());
    }
    println!("policy {}", policy.name);
    for r in &policy.rules {
        println!("  {:<40} {}", r.pattern.as_str(), caps_text(&r.access));
    }
    Ok(())
}

/// `policy check --principal NAME PATH`.
pub(crate) async fn check(a: PolicyCheckArgs) -> CliResult {
    let path = SecretPath::parse(&a.path).map_err(Failure::Lib)?;
    let applied = load(&a.store, &a.operator).await?;
    let principal = applied
        .as_ref()
        .and_then(|ap| ap.principal(&a.principal))
        .ok_or_else(|| {
            Failure::NotApplied(format!("no applied principal named {:?}", a.principal))
        })?;
    let set = principal.policy_set();
    let decisions: Vec<(Capability, Decision<'_>)> = Capability::ALL
        .into_iter()
        .map(|c| (c, set.evaluate(c, &path)))
        .collect();
    let granted: Vec<&str> = decisions
        .iter()
        .filter(|(_, d)| d.is_allowed())
        .map(|(c, _)| c.as_str())
        .collect();
    let why = |d: &Decision<'_>| match d {
        Decision::Allowed { rule } => (format!("allowed by {rule}"), Some((*rule).to_owned())),
        Decision::DeniedByRule { rule } => (format!("denied by {rule}"), Some((*rule).to_owned())),
        Decision::NotGranted { rule } => (
            format!("not granted by {rule} (the most specific match)"),
            Some((*rule).to_owned()),
        ),
        Decision::NoMatchingRule => ("no rule matches".to_owned(), None),
    };
    if a.json {
        json::print(&serde_json::json!({
            "principal": a.principal,
            "policies": principal.policies(),
            "path": path.as_str(),
            "capabilities": granted,
            "decisions": decisions.iter().map(|(c, d)| {
                let (_, rule) = why(d);
                serde_json::json!({
                    "capability": c.as_str(),
                    "allowed": d.is_allowed(),
                    "rule": rule,
                })
            }).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "{} on {}: {}",
        a.principal,
        path.as_str(),
        if granted.is_empty() {
            "nothing".to_owned()
        } else {
            granted.join(",")
        }
    );
    for (c, d) in &decisions {
        println!("  {:<8} {}", c.as_str(), why(d).0);
    }
    Ok(())
}
