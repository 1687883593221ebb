//! Okta connector benchmarks against the Okta simulator; prints the Markdown kept in
//! BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench okta` (release). Roster runs as its own process (`roster fetch
//! --json`: fetch into the mirror, no plan) so its peak RSS is its own; the simulator runs in
//! this process. `ROSTER_BENCH_ONLY=full,delta` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::okta::{OktaSim, OktaState, RateScope};
use roster_sim::scenario::{OktaSource, okta_source_config};

const TOKEN: &str = "bench-token";
/// Okta's largest pages: users (and groups, at the recommended size) and group members.
const USER_PAGE: usize = 200;
const GROUP_PAGE: usize = 200;
const MEMBER_PAGE: usize = 1000;

struct Setup {
    dir: tempfile::TempDir,
    sim: OktaSim,
    _bb: BitbucketSim,
}

async fn setup(d: &Directory) -> Setup {
    let dir = common::data_dir_with(&["okta", "normalize"]);
    let mut o = OktaState::from_directory(d, "okta.example");
    o.add_api_token(TOKEN);
    // Okta's per-minute limits would be all a full fetch of this org measures.
    o.set_rate_limit(RateScope::All, u32::MAX);
    let sim = OktaSim::start(o).await;
    let bb = BitbucketSim::start(BbState::new()).await;
    let source = OktaSource {
        org_url: sim.url(),
        api_token: TOKEN.into(),
        source: "budget = { per_second = 1000000, burst = 1000 }".into(),
        ..OktaSource::default()
    };
    std::fs::write(
        dir.path().join("roster.toml"),
        okta_source_config(&source, &bb.url(), ""),
    )
    .unwrap();
    Setup { dir, sim, _bb: bb }
}

async fn fetch(s: &Setup, extra: &'static [&'static str]) -> common::bench::Fetched {
    common::bench::fetch(s.dir.path(), extra, || s.sim.lock().api_calls()).await
}

/// The fewest calls a full read allows: user pages at 200, group pages at 200, and the member
/// pages at 1,000 of each group that has members (the groups listing's `usersCount` lets an
/// empty group go unread).
fn floor(d: &Directory) -> u64 {
    let members = d.expected_members();
    let pages: usize = d
        .groups
        .iter()
        .map(|g| {
            members
                .get(&d.group_name(&g.id))
                .map_or(0, |m| m.len())
                .div_ceil(MEMBER_PAGE)
        })
        .sum();
    (d.users.len().div_ceil(USER_PAGE) + d.groups.len().div_ceil(GROUP_PAGE) + pages) as u64
}

/// Changes `n` users from the `from`-th on: most display names, some a group joined.
fn change(s: &Setup, d: &Directory, from: usize, n: usize) -> usize {
    let mut o = s.sim.lock();
    let mut groups = std::collections::BTreeSet::new();
    for (i, u) in d.users.iter().enumerate().skip(from).take(n) {
        let id = o.user_id(&u.id);
        match i % 10 {
            0..=7 => o.update_user(&id, |p| {
                p.insert("displayName".into(), format!("Changed {i}").into());
            }),
            _ => {
                let g = o.group_id(&d.groups[(i * 7 + 1) % d.groups.len()].id);
                o.add_member(&g, &id);
                groups.insert(g);
            }
        }
    }
    groups.len()
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "full,delta".into());
    let _ = common::plugins_out();
    println!("| scenario | org | mode | wall time | API calls | calls ÷ floor | read | peak RSS (roster) | split |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let d = Directory::generate(100_000, 5_000, 5);
    let s = setup(&d).await;
    let o = fetch(&s, &[]).await;
    let fl = floor(&d);
    common::bench::fetch_row("(a) full fetch", &d, o.wall, &o.report, o.calls, fl);
    let mut notes = vec![format!("(a) floor = {fl} calls")];
    if only.contains("delta") {
        let n = d.users.len() / 100;
        let groups = change(&s, &d, 0, n);
        let o = fetch(&s, &["--incremental"]).await;
        assert_eq!(o.report["summary"]["fetch"][0]["mode"], "incremental");
        // The changed users' search pages, the changed groups' search pages, and each changed
        // group's members.
        let bound = (n.div_ceil(USER_PAGE) + groups.div_ceil(GROUP_PAGE) + groups) as u64;
        common::bench::fetch_row("(b) incremental, 1 % changed", &d, o.wall, &o.report, o.calls, bound);
        notes.push(format!(
            "(b) {n} changed users, {groups} changed groups → {} calls; bound {bound}",
            o.calls
        ));
        assert!(o.calls <= bound, "{} calls for {n} changes, more than {bound}", o.calls);
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
}
