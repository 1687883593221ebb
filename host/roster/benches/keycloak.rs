//! Keycloak connector benchmarks against the Keycloak simulator; prints the Markdown kept in
//! BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench keycloak` (release). Roster runs as its own process (`roster
//! fetch --json`: fetch into the mirror, no plan) so its peak RSS is its own; the simulator runs
//! in this process. `ROSTER_BENCH_ONLY=full,incremental` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::keycloak::{KeycloakSim, KeycloakState, Role};
use roster_sim::scenario::{KeycloakSource, keycloak_source_config};

const SECRET: &str = "bench-secret";
/// The connector's `max` for every listing (its default `page_size`).
const PAGE: usize = 1000;

struct Setup {
    dir: tempfile::TempDir,
    sim: KeycloakSim,
    _bb: BitbucketSim,
}

async fn setup(d: &Directory) -> Setup {
    let dir = common::data_dir_with(&["keycloak"]);
    let mut k = KeycloakState::from_directory("acme", d);
    k.add_client("roster", SECRET, &[Role::ViewUsers, Role::QueryGroups]);
    let sim = KeycloakSim::start(k).await;
    let bb = BitbucketSim::start(BbState::new()).await;
    let source = KeycloakSource {
        server_url: sim.url(),
        base_url: sim.base_url(),
        realm: "acme".into(),
        client_id: "roster".into(),
        secret: SECRET.into(),
        settings: "group_names = \"name\"".into(),
        source: "budget = { per_second = 1000000, burst = 1000 }".into(),
    };
    std::fs::write(
        dir.path().join("roster.toml"),
        keycloak_source_config(&source, &bb.url(), ""),
    )
    .unwrap();
    Setup { dir, sim, _bb: bb }
}

async fn fetch(s: &Setup, extra: &'static [&'static str]) -> common::bench::Fetched {
    common::bench::fetch(s.dir.path(), extra, || s.sim.lock().api_calls()).await
}

/// Requests to list `n` items by `first`/`max` at [`PAGE`]: a short page ends a listing, so a
/// listing of exactly k pages takes one more, empty, page.
fn listing(n: usize) -> usize {
    n / PAGE + 1
}

/// The fewest calls a full read allows: the users, the top-level groups, every group's direct
/// members, and the sub-groups of every group that has some (`subGroupCount` spares the others).
fn floor(d: &Directory) -> u64 {
    let mut direct = std::collections::BTreeMap::<&str, usize>::new();
    let mut children = std::collections::BTreeMap::<&str, usize>::new();
    let mut nested = std::collections::BTreeSet::<&str>::new();
    for m in &d.memberships {
        if m.member_is_group {
            *children.entry(&m.group).or_default() += 1;
            nested.insert(&m.member);
        } else {
            *direct.entry(&m.group).or_default() += 1;
        }
    }
    let top = d.groups.iter().filter(|g| !nested.contains(g.id.as_str())).count();
    let members: usize = d
        .groups
        .iter()
        .map(|g| listing(direct.get(g.id.as_str()).copied().unwrap_or(0)))
        .sum();
    let subgroups: usize = children.values().map(|c| listing(*c)).sum();
    (listing(d.users.len()) + listing(top) + members + subgroups) as u64
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "full,incremental".into());
    let _ = common::plugins_out();
    println!("| scenario | realm | mode | wall time | API calls | calls ÷ floor | read | peak RSS (roster) | split |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let d = Directory::generate(100_000, 5_000, 5);
    let s = setup(&d).await;
    let fl = floor(&d);
    let mut notes = vec![format!("floor = {fl} calls")];
    if only.contains("full") {
        let o = fetch(&s, &[]).await;
        common::bench::fetch_row("(a) full fetch", &d, o.wall, &o.report, o.calls, fl);
    }
    if only.contains("incremental") {
        // Keycloak has no changed-since: an incremental run reads the realm in full.
        let o = fetch(&s, &["--incremental"]).await;
        assert_eq!(o.report["summary"]["fetch"][0]["mode"], "full");
        common::bench::fetch_row("(b) --incremental (a full read)", &d, o.wall, &o.report, o.calls, fl);
        notes.push(format!(
            "(b) {} calls, as (a): an incremental run costs a full read",
            o.calls
        ));
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
}
