//! `roster preview`: a source's transform chain over its mirror or sample records, record by
//! record, with the rule that decided at each step.

use std::path::Path;

use anyhow::Context;
use roster_directory::Sample;
use roster_directory::transform::{StepTrace, Traces, UserView};

use crate::Cli;

fn user(v: &UserView) -> String {
    let mut s = v.username.clone();
    if let Some(e) = &v.email {
        s.push_str(&format!(" <{e}>"));
    }
    if let Some(d) = &v.display_name {
        s.push_str(&format!(" \"{d}\""));
    }
    if !v.active {
        s.push_str(" (inactive)");
    }
    s
}

fn why(t: &StepTrace) -> String {
    match (&t.error, &t.reason) {
        (Some(e), _) => format!(" — error: {e}"),
        (None, Some(r)) => format!(" — {r}"),
        (None, None) => String::new(),
    }
}

fn print(traces: &Traces) {
    for w in &traces.warnings {
        println!("warning: {w}");
    }
    for u in &traces.users {
        println!("user {} (id {})", user(&u.before), u.id);
        for s in &u.steps {
            let what = match &s.user {
                Some(v) => format!("→ {}", user(v)),
                None => s.outcome.clone(),
            };
            println!("  {:<16} {what}{}", s.plugin, why(s));
        }
        match &u.after {
            Some(v) => println!("  = {}", user(v)),
            None => println!("  = left out"),
        }
    }
    for g in &traces.groups {
        let after = if g.after.is_empty() {
            "left out".to_string()
        } else {
            g.after.join(", ")
        };
        println!("group {} (id {}) = {after}", g.before, g.id);
        for s in &g.steps {
            let names = s.groups.as_ref().map(|n| n.join(", ")).unwrap_or_default();
            println!("  {:<16} {} {names}{}", s.plugin, s.outcome, why(s));
        }
    }
}

/// `roster preview`
pub async fn run(
    cli: &Cli,
    source: &str,
    sample: Option<&Path>,
    only: Option<&str>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let sample = sample
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Sample::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        })
        .transpose()?;
    let runner = super::runner(cli).await?;
    let mut traces = runner.preview(source, sample).await?;
    let (users, groups) = traces.narrow(only, limit);
    if json {
        println!("{}", serde_json::to_string_pretty(&traces)?);
    } else {
        print(&traces);
        println!(
            "{} of {users} user(s) and {} of {groups} group(s) shown; nothing was written",
            traces.users.len(),
            traces.groups.len()
        );
    }
    Ok(())
}
