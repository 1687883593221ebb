//! `roster sync`, `roster plan …`, `roster runs …`.

use clap::Subcommand;
use roster_engine::Tripped;
use roster_model::RunState;
use roster_serve::{RunReport, SyncOptions};

use super::progress::Bars;
use crate::Cli;

/// `roster plan …`
#[derive(Subcommand)]
pub enum PlanCommand {
    /// Shows a plan: every operation with its reason, and the guard's verdict.
    Show {
        /// Plan id (printed by `roster sync` and `roster runs list`).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approves a held plan and applies exactly its operations.
    Approve {
        /// Plan id.
        id: String,
        /// The plan's hash as shown by `roster plan show` (at least its first 8 characters).
        #[arg(long)]
        hash: String,
    },
    /// Rejects a held plan.
    Reject {
        /// Plan id.
        id: String,
    },
}

/// `roster runs …`
#[derive(Subcommand)]
pub enum RunsCommand {
    /// The newest runs.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only runs of this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// One run's summary.
    Show {
        /// Run id.
        id: i64,
    },
    /// One run's per-object results.
    Export {
        /// Run id.
        id: i64,
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
    },
}

/// Prints a run report for people.
pub fn print_report_pub(r: &RunReport) {
    print_report(r)
}

fn print_fetches(s: &roster_serve::Summary) {
    for f in &s.fetch {
        if f.mode == "push" {
            // Nothing to fetch: the source pushes its changes, each already in its mirror.
            println!(
                "  fetch {:<12} pushed to Roster: nothing fetched; its mirror holds what it last pushed",
                f.source
            );
            continue;
        }
        let status = if f.complete {
            "complete".to_string()
        } else {
            format!("INCOMPLETE: {}", f.error.as_deref().unwrap_or("?"))
        };
        let throttled = if f.idp_throttled > 0 {
            format!(" ({} throttled)", f.idp_throttled)
        } else {
            String::new()
        };
        println!(
            "  fetch {:<12} {:<11} {} pages, {} users, {} groups, {} memberships, {} removals, {} requests{throttled} — {status}",
            f.source, f.mode, f.pages, f.users, f.groups, f.memberships, f.removals, f.idp_requests
        );
    }
}

fn print_report(r: &RunReport) {
    let s = &r.summary;
    if r.target.is_empty() {
        println!("run {}: {}", r.run_id, r.state);
    } else {
        println!("run {} ({}): {}", r.run_id, r.target, r.state);
    }
    print_fetches(s);
    if let Some(first) = s.directory_from_run {
        println!("  sources fetched and merged once, by run {first}");
    }
    if let (Some(id), Some(hash)) = (&r.plan_id, &r.plan_hash) {
        println!("  plan {id} (hash {})", &hash[..16]);
    }
    if s.planned.is_empty() {
        println!("  nothing to change");
    }
    for (kind, n) in &s.planned {
        println!("  {kind:<16} {n}");
    }
    if let Some(g) = &s.guard {
        // The target's own licence as it always read (summaries from before verdicts listed
        // licences have only that), then each application's.
        let apps: Vec<_> = g
            .licences
            .iter()
            .filter(|l| l.of == roster_engine::LicenceOf::Application)
            .collect();
        if apps.is_empty() || g.licences.iter().any(|l| l.of == roster_engine::LicenceOf::Target) {
            let limit = g.seat_limit.map_or("unlimited".to_string(), |l| l.to_string());
            println!(
                "  licence: {} in use of {limit}; licensed users {} → {}",
                g.seats_in_use, g.licensed_before, g.licensed_after
            );
        }
        for l in apps {
            println!("  licence of {}: {}", l.name, l.words());
        }
        println!(
            "  takes away: {} deprovisioned, {} membership(s) of {} person(s), {} renamed, {} email changed",
            g.deprovisions, g.memberships_removed, g.people_losing_memberships, g.renames, g.email_changes
        );
        for t in &g.tripped {
            println!("  {}", tripped_line(t));
        }
    }
    if s.applied.done + s.applied.failed > 0 {
        println!("  applied: {} done, {} failed", s.applied.done, s.applied.failed);
    }
    println!("  Bitbucket calls: {} ({} throttled)", s.api_calls_total, s.throttled);
    if let Some(c) = &s.concurrency {
        println!(
            "  concurrency: adaptive, settled at {} in flight (between {} and {}, {} back-off(s))",
            c.limit, c.lowest, c.highest, c.backoffs
        );
    }
    if let Some(eta) = &s.eta {
        println!("  {}", eta_line(eta));
    }
    let order = ["fetch", "transform", "merge", "read", "plan", "guard", "apply"];
    let stages: Vec<String> = order
        .iter()
        .filter_map(|k| s.stage_ms.get(*k).map(|v| format!("{k} {v} ms")))
        .collect();
    println!("  time: {}", stages.join(", "));
    for c in &s.collisions {
        println!("  COLLISION {}: {}", c.subject, c.why);
    }
    for k in s.skipped.iter().take(20) {
        println!("  skipped {}: {}", k.subject, k.why);
    }
    for w in &s.warnings {
        println!("  warning: {w}");
    }
}

/// The plan against the target's call budget: `ETA: about 2500 call(s); 300 allowed now, 1000
/// per 1 h: 4 runs, done in about 3 h`.
fn eta_line(eta: &roster_engine::Eta) -> String {
    let when = match (eta.runs_needed, eta.seconds_until_done) {
        (Some(runs), _) if runs <= 1 => "done this run".to_string(),
        (Some(runs), Some(secs)) => format!("{runs} runs, done in about {}", roster_engine::budget::duration(secs)),
        _ => format!("never: a read alone takes {} call(s) of the window", eta.read_calls),
    };
    format!(
        "ETA: about {} call(s); {} allowed now, {} per {}: {when}",
        eta.calls_needed,
        eta.available_now,
        eta.calls_per_window,
        roster_engine::budget::duration(eta.window_secs)
    )
}

/// One tripped rule of the guard: `tripped group-members-lost (devs): 3000 over 50 % of 3000`.
fn tripped_line(t: &Tripped) -> String {
    let group = t.group.as_deref().map(|g| format!(" ({g})")).unwrap_or_default();
    format!("tripped {}{group}: {} over {}", t.rule.name(), t.counted, t.limit)
}

/// A run that applied what the target's call budget allowed and stopped: not a failure, and
/// not done.
#[derive(Debug, thiserror::Error)]
#[error(
    "run {0} paused: the target's call budget is spent before the plan was done; the next run continues it (see the ETA above)"
)]
pub struct Paused(pub i64);

/// `roster sync`: every target (or the one named), one run each, printed in turn. It fails when
/// any run did not succeed (a held plan included), after every target had its turn.
pub async fn sync(cli: &Cli, opts: &SyncOptions, json: bool) -> anyhow::Result<()> {
    let runner = super::runner(cli).await?;
    let runs = runner.sync_each(opts, &Bars::default()).await?;
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for (run_id, result) in runs {
        match result {
            Ok(r) => reports.push(r),
            Err(e) => failures.push(format!("run {run_id} failed: {e}")),
        }
    }
    if json {
        // One target: its report, as before; several: an array of them.
        if reports.len() == 1 && failures.is_empty() {
            println!("{}", serde_json::to_string_pretty(&reports[0])?);
        } else {
            println!("{}", serde_json::to_string_pretty(&reports)?);
        }
    } else {
        for report in &reports {
            print_report(report);
            if report.state == RunState::Held {
                let (id, hash) = (
                    report.plan_id.as_deref().unwrap_or("?"),
                    report.plan_hash.as_deref().unwrap_or("?"),
                );
                println!(
                    "review: roster plan show {id}\napprove: roster plan approve {id} --hash {}",
                    &hash[..16.min(hash.len())]
                );
            }
        }
    }
    // A single failed run is the error itself, as with one target.
    if let [only] = failures.as_slice()
        && reports.is_empty()
    {
        anyhow::bail!("{only}");
    }
    let mut ended: Vec<String> = failures;
    let mut paused = None;
    for r in &reports {
        match r.state.as_str() {
            "succeeded" | "planned" => {}
            "paused" => paused = paused.or(Some(r.run_id)),
            other => ended.push(format!("run {} ({}) ended {other}", r.run_id, r.target)),
        }
    }
    if !ended.is_empty() {
        anyhow::bail!("{}", ended.join("; "));
    }
    match paused {
        Some(id) => Err(Paused(id).into()),
        None => Ok(()),
    }
}

/// `roster check`
pub async fn check(cli: &Cli, sources: &[String], json: bool) -> anyhow::Result<()> {
    let runner = super::runner(cli).await?;
    let reports = runner.check(sources).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            match &r.error {
                None => println!("ok      {} ({}) in {} ms", r.source, r.plugin, r.ms),
                Some(e) => println!("FAILED  {} ({}) in {} ms: {e}", r.source, r.plugin, r.ms),
            }
        }
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        anyhow::bail!("{failed} source(s) failed their check");
    }
    Ok(())
}

/// `roster fetch`
pub async fn fetch(cli: &Cli, opts: &SyncOptions, json: bool) -> anyhow::Result<()> {
    let runner = super::runner(cli).await?;
    let report = runner.fetch(opts, &Bars::default()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("run {}: {}", report.run_id, report.state);
        print_fetches(&report.summary);
        if let Some(ms) = report.summary.stage_ms.get("fetch") {
            println!("  time: fetch {ms} ms");
        }
        for w in &report.summary.warnings {
            println!("  warning: {w}");
        }
    }
    if report.state != RunState::Succeeded {
        anyhow::bail!("run {} ended {}", report.run_id, report.state);
    }
    Ok(())
}

/// `roster plan …`
pub async fn plan(cli: &Cli, cmd: &PlanCommand) -> anyhow::Result<()> {
    match cmd {
        PlanCommand::Show { id, json } => {
            let clock = super::time::Clock::from_cli(cli)?;
            let store = super::store(cli)?;
            let plan = store.plan(id)?;
            let ops = store.plan_ops(id)?;
            if *json {
                let list: Vec<_> = ops
                    .iter()
                    .map(|(seq, _, _, detail, _)| serde_json::json!({"seq": seq, "op": detail}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"plan": clock.json_times(serde_json::to_value(&plan)?), "operations": list})
                    )?
                );
                return Ok(());
            }
            println!(
                "plan {} for {} — {} — made {} — hash {}",
                plan.id,
                plan.target,
                plan.state,
                clock.show(plan.created_at),
                plan.hash
            );
            if let Some(g) = &plan.guard {
                for key in ["held", "refused"] {
                    if let Some(why) = g.get(key).and_then(|v| v.as_str()) {
                        println!("{key}: {why}");
                    }
                }
                let tripped: Vec<Tripped> = g
                    .get("tripped")
                    .and_then(|t| serde_json::from_value(t.clone()).ok())
                    .unwrap_or_default();
                for t in &tripped {
                    println!("{}", tripped_line(t));
                }
                let licences: Vec<roster_engine::LicenceView> = g
                    .get("licences")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                for l in &licences {
                    println!("licence of {}: {}", l.name, l.words());
                }
            }
            for (seq, kind, subject, detail, reason) in &ops {
                let extra = match kind.as_str() {
                    "add-members" => format!(" +{}", detail["users"].as_array().map_or(0, Vec::len)),
                    "rename-user" => format!(" (from {})", detail["from"].as_str().unwrap_or("?")),
                    _ => String::new(),
                };
                println!("{seq:>6} {kind:<16} {subject}{extra} — {reason}");
            }
            println!("{} operation(s)", ops.len());
            Ok(())
        }
        PlanCommand::Approve { id, hash } => {
            let runner = super::runner(cli).await?;
            let report = runner.approve(id, hash, &super::actor(), "", &Bars::default()).await?;
            print_report(&report);
            if report.state != RunState::Succeeded {
                anyhow::bail!("applying plan {id} ended {}", report.state);
            }
            Ok(())
        }
        PlanCommand::Reject { id } => {
            let runner = super::runner(cli).await?;
            runner.reject(id, &super::actor(), "")?;
            println!("plan {id} rejected");
            Ok(())
        }
    }
}

/// `roster runs …`
pub fn runs(cli: &Cli, cmd: &RunsCommand) -> anyhow::Result<()> {
    let clock = super::time::Clock::from_cli(cli)?;
    let store = super::store(cli)?;
    match cmd {
        RunsCommand::List { limit, target } => {
            println!(
                "{:>5} {:<10} {:<12} {:<10} {:<16} {:<24} PLAN",
                "RUN", "STATE", "MODE", "TRIGGER", "TARGET", "STARTED"
            );
            let filter = roster_store::RunFilter {
                target: target.as_deref(),
                ..Default::default()
            };
            for r in store.runs_filtered(&filter, *limit)? {
                println!(
                    "{:>5} {:<10} {:<12} {:<10} {:<16} {:<24} {}",
                    r.id,
                    r.state,
                    r.mode,
                    r.trigger,
                    r.target,
                    clock.show(r.started_at),
                    r.plan_id.unwrap_or_default()
                );
            }
        }
        RunsCommand::Show { id } => {
            let run = clock.json_times(serde_json::to_value(store.run(*id)?)?);
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
        RunsCommand::Export { id, format } => {
            let rows = roster_engine::export_rows(&store, *id)?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&rows)?),
                "csv" => print!("{}", roster_engine::export_csv(&rows)),
                other => anyhow::bail!("unknown format `{other}`; use json or csv"),
            }
        }
    }
    Ok(())
}
