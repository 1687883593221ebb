//! Entra connector benchmarks against the Graph simulator; prints the Markdown kept in
//! BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench entra` (release). Roster runs as its own process (`roster
//! fetch --json`: fetch into the mirror, no plan) so its peak RSS is its own; the Graph
//! simulator runs in this process. `ROSTER_BENCH_ONLY=full,delta,small` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::graph::{GraphSim, GraphState};
use roster_sim::scenario::{EntraSource, entra_source_config};

const TENANT: &str = "8f0e4b1c-2a3d-4e5f-9a6b-7c8d9e0f1a2b";
const CLIENT: &str = "4a5b6c7d-8e9f-4012-8345-6789abcdef01";
const SECRET: &str = "bench-secret";

struct Setup {
    dir: tempfile::TempDir,
    graph: GraphSim,
    _bb: BitbucketSim,
}

async fn setup(d: &Directory) -> Setup {
    let dir = common::data_dir_with(&["entra", "normalize"]);
    let mut g = GraphState::from_directory(d, TENANT, "contoso.example");
    g.add_client(CLIENT, Some(SECRET), &["User.Read.All", "GroupMember.Read.All"]);
    let graph = GraphSim::start(g).await;
    let bb = BitbucketSim::start(BbState::new()).await;
    let source = EntraSource {
        graph_url: graph.url(),
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        secret: SECRET.into(),
        // The simulator answers in microseconds; Graph's own limits are not what is measured.
        source: "budget = { per_second = 1000000, burst = 1000 }".into(),
        ..EntraSource::default()
    };
    std::fs::write(
        dir.path().join("roster.toml"),
        entra_source_config(&source, &bb.url(), ""),
    )
    .unwrap();
    Setup { dir, graph, _bb: bb }
}

async fn fetch(s: &Setup, extra: &'static [&'static str]) -> common::bench::Fetched {
    common::bench::fetch(s.dir.path(), extra, || {
        common::api_calls(s.graph.lock().calls.clone()).0
    })
    .await
}

/// The fewest Graph calls a full listing can make: user pages, group pages and each group's
/// member pages at 999 per page, plus the two "sync from now" delta links and the two counts
/// that size the progress bar.
fn floor(d: &Directory) -> u64 {
    let mut per_group = std::collections::HashMap::<&str, usize>::new();
    for m in &d.memberships {
        *per_group.entry(m.group.as_str()).or_default() += 1;
    }
    let members: usize = d
        .groups
        .iter()
        .map(|g| per_group.get(g.id.as_str()).copied().unwrap_or(0).div_ceil(999).max(1))
        .sum();
    (d.users.len().div_ceil(999) + d.groups.len().div_ceil(999) + members + 4) as u64
}

/// Changes `n` users, from the `from`-th on, the way a working day does: display names, a
/// group joined (one the user is not in yet), soft deletes.
fn change(s: &Setup, d: &Directory, from: usize, n: usize) {
    let mut g = s.graph.lock();
    for (i, u) in d.users.iter().enumerate().skip(from).take(n) {
        match i % 10 {
            0..=6 => g.update_user(&u.id, |x| x.display_name = format!("Changed {i}")),
            // `Directory::generate` puts user k in groups k·7 + {0, 14, 30, 48, 68}: +1 is new.
            7 | 8 => g.add_member(&d.groups[(i * 7 + 1) % d.groups.len()].id, &u.id),
            _ => g.soft_delete_user(&u.id),
        }
    }
}

fn row(name: &str, d: &Directory, o: &common::bench::Fetched, floor: Option<u64>, target: &str) {
    let f = &o.report["summary"]["fetch"][0];
    let rss = o.report["summary"]["peak_rss_mib"].as_f64().unwrap_or(0.0);
    let ratio = floor.map_or("—".to_string(), |fl| format!("{:.3}", o.calls as f64 / fl as f64));
    println!(
        "| {name} | {} users, {} groups, {} memberships | {} | {:.1} s | {} | {ratio} | {} pages, {} users, {} groups, {} memberships, {} removals | {:.0} MiB | {target} |",
        d.users.len(),
        d.groups.len(),
        d.memberships.len(),
        f["mode"].as_str().unwrap_or("?"),
        o.wall.as_secs_f64(),
        o.calls,
        f["pages"],
        f["users"],
        f["groups"],
        f["memberships"],
        f["removals"],
        rss,
    );
}

fn split(o: &common::bench::Fetched) -> String {
    let f = &o.report["summary"]["fetch"][0];
    format!(
        "connector {:.1} s, store {:.1} s",
        f["connector_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
        f["store_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
    )
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "full,delta,small".into());
    let _ = common::plugins_out();
    println!(
        "| scenario | tenant | mode | wall time | Graph calls | calls ÷ floor | read | peak RSS (roster) | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    let mut delta_calls = Vec::new();
    if only.contains("full") || only.contains("delta") {
        let d = Directory::generate(100_000, 5_000, 5);
        let s = setup(&d).await;
        let o = fetch(&s, &[]).await;
        row("(f) full fetch", &d, &o, Some(floor(&d)), "time, calls, RSS reported");
        notes.push(format!("(f) {}; floor = {} calls", split(&o), floor(&d)));
        if only.contains("delta") {
            for (label, from, n) in [
                ("(g) delta, 1 % changed", 0, 1_000),
                ("(h) delta, 0.1 % changed", 1_000, 100),
            ] {
                change(&s, &d, from, n);
                let o = fetch(&s, &["--incremental"]).await;
                assert_eq!(o.report["summary"]["fetch"][0]["mode"], "incremental");
                row(label, &d, &o, None, "calls grow with changes");
                notes.push(format!("{label}: {n} changes, {} calls, {}", o.calls, split(&o)));
                delta_calls.push((n, d.users.len(), o.calls));
            }
        }
    }
    if only.contains("small") {
        let d = Directory::generate(10_000, 500, 5);
        let s = setup(&d).await;
        fetch(&s, &[]).await;
        change(&s, &d, 0, 1_000);
        let o = fetch(&s, &["--incremental"]).await;
        row(
            "(i) delta, 1,000 changes in a 10× smaller tenant",
            &d,
            &o,
            None,
            "calls grow with changes",
        );
        delta_calls.push((1_000, d.users.len(), o.calls));
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
    for (changes, users, calls) in delta_calls {
        // A delta round pages 200 changed users and 200 changed groups at a time: the calls are
        // bounded by the changes (plus the two links' first pages), whatever the tenant's size.
        let bound = 2 * changes.div_ceil(200) as u64 + 2;
        println!("- delta: {changes} changes in a {users}-user tenant → {calls} Graph calls (bound {bound})");
        assert!(
            calls <= bound,
            "a delta of {changes} changes in a {users}-user tenant took {calls} calls, more than {bound}"
        );
    }
}
