//! Configuration as code: `plan`, `apply`, `drift`, and the naming-rule
//! check of `put` and `import`. The work is the library's
//! (`strongroom::declarative`); this file loads the files, calls it and
//! prints. Each command records a `read_metadata` of `sys/declared` as the
//! operator before it reads the store; `apply` is audited by the library
//! under the operator (an intent per change before the write, its outcome
//! after).

use std::path::Path;

use strongroom::audit::Operation;
use strongroom::dangerous::Door;
use strongroom::declarative::{self, Applied, DECLARED_RECORD, DeclarativeError, Declared, Plan};
use strongroom::path::SecretPath;

use crate::args::{ApplyArgs, DriftArgs, PlanArgs};
use crate::exit::{CliResult, Failure};
use crate::operator::Operator;
use crate::progress::Progress;

/// The largest plan file `apply --plan-file` reads (16 MiB).
const MAX_PLAN_LEN: u64 = 16 << 20;

/// The `[dynamic.<name>]` sections the CLI manages: the PostgreSQL role
/// catalog that `creds` and `run --creds` use.
const SECTIONS: [&dyn declarative::Section; 1] = [&strongroom_sqlx::dynamic::PgCatalogSection];

/// A progress line of `label` (shown only when stderr is a terminal) as
/// the library's `(done, total)` callback, in secrets read.
fn progress_line(label: &'static str) -> impl Fn(usize, usize) + Sync {
    let line = std::sync::Mutex::new(Progress::on_terminal(label));
    move |done, total| {
        if let Ok(mut line) = line.lock() {
            line.update(done as u64, total as u64, "secrets");
            if done == total {
                line.finish();
            }
        }
    }
}

/// Reads the declaration files before the store is opened (a mistake in
/// them costs nothing).
fn load(source: &Path) -> CliResult<Declared> {
    Ok(Declared::load(source)?)
}

/// Records that the operator reads the declared state.
async fn record_read(op: &Operator) -> CliResult {
    let event = op
        .event(Operation::ReadMetadata)?
        .with_path(DECLARED_RECORD);
    op.record(event, false).await
}

/// `plan`: the changes, as text or JSON.
pub(crate) async fn plan(a: PlanArgs) -> CliResult {
    let declared = load(&a.source)?;
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    record_read(&op).await?;
    let plan =
        declarative::plan_reporting(&open.sr, &declared, &SECTIONS, &progress_line("planning"))
            .await?;
    if a.json {
        println!("{}", plan.to_json());
    } else {
        print!("{plan}");
    }
    open.close().await;
    Ok(())
}

fn read_plan(path: &Path) -> CliResult<Plan> {
    use std::io::Read as _;
    let shown = path.display();
    let bad = |reason: String| {
        Failure::Declarative(DeclarativeError::BadRecord {
            what: "plan",
            reason: format!("{shown}: {reason}"),
        })
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(|e| bad(e.to_string()))?
        .take(MAX_PLAN_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    if text.len() as u64 > MAX_PLAN_LEN {
        return Err(bad(format!("larger than {MAX_PLAN_LEN} bytes")));
    }
    Ok(Plan::from_json(&text)?)
}

/// `apply`: plans now (or takes the saved plan), prints it and applies it.
pub(crate) async fn apply(a: ApplyArgs) -> CliResult {
    let declared = load(&a.source)?;
    let saved = match &a.plan_file {
        Some(f) => {
            let plan = read_plan(f)?;
            plan.matches(&declared)?;
            Some(plan)
        }
        None => None,
    };
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    record_read(&op).await?;
    let plan = match saved {
        Some(p) => p,
        None => {
            declarative::plan_reporting(&open.sr, &declared, &SECTIONS, &progress_line("planning"))
                .await?
        }
    };
    print!("{plan}");
    let report = declarative::apply_reporting(
        &open.sr,
        &plan,
        &crate::commands::approval::handle(&op, &a.approval),
        &SECTIONS,
        &progress_line("applying"),
    )
    .await?;
    if report.written {
        println!(
            "applied: revision {} ({} generated, {} metadata updated; generated values are never shown)",
            report.revision,
            report.generated.len(),
            report.metadata_updated.len()
        );
    } else {
        println!("nothing to apply (revision {})", report.revision);
    }
    open.close().await;
    Ok(())
}

/// `drift`: exit 0 when the store matches the files, 26 when it does not.
pub(crate) async fn drift(a: DriftArgs) -> CliResult {
    let declared = load(&a.source)?;
    let (open, op) = Operator::unseal(&a.store, &a.operator, true).await?;
    record_read(&op).await?;
    let drift = declarative::drift_with(&open.sr, &declared, &SECTIONS).await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&drift).unwrap_or_default()
        );
    } else {
        print!("{drift}");
    }
    open.close().await;
    if drift.is_clean() {
        Ok(())
    } else {
        Err(Failure::Drift)
    }
}

/// Refuses (exit 27) a path that does not follow the applied naming rules,
/// when an applied record with naming rules exists. Paths that are not
/// valid are left to the write, which refuses them itself.
pub(crate) async fn check_naming<'a>(
    door: &Door,
    paths: impl IntoIterator<Item = &'a str>,
) -> CliResult {
    let Some(applied) = Applied::load(door).await? else {
        return Ok(());
    };
    for p in paths {
        if let Ok(path) = SecretPath::parse(p) {
            applied
                .naming
                .check(path.as_str())
                .map_err(|e| Failure::Declarative(e.into()))?;
        }
    }
    Ok(())
}
