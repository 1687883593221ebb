//! Google Workspace connector benchmarks against the Google simulator; prints the Markdown kept
//! in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench google` (release). Roster runs as its own process (`roster
//! fetch --json`: fetch into the mirror, no plan) so its peak RSS is its own; the simulator runs
//! in this process. `ROSTER_BENCH_ONLY=full,delta` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::google::{GoogleSim, MemberType};
use roster_sim::scenario::{GoogleSource, google_source_config};

/// The Directory API's largest pages: users, groups, members.
const USER_PAGE: usize = 500;
const GROUP_PAGE: usize = 200;
const MEMBER_PAGE: usize = 200;

struct Setup {
    dir: tempfile::TempDir,
    sim: GoogleSim,
    _bb: BitbucketSim,
}

async fn setup(d: &Directory) -> Setup {
    let dir = common::data_dir_with(&["google"]);
    let sim = GoogleSim::start(common::google::account(d)).await;
    let bb = BitbucketSim::start(BbState::new()).await;
    let key_file = common::google::key_file(dir.path());
    let source = GoogleSource {
        api_url: sim.url(),
        token_url: None,
        service_account: common::google::SERVICE_ACCOUNT.into(),
        admin_email: common::google::ADMIN.into(),
        key_file: key_file.display().to_string(),
        settings: String::new(),
        source: "budget = { per_second = 1000000, burst = 1000 }".into(),
    };
    std::fs::write(
        dir.path().join("roster.toml"),
        google_source_config(&source, &bb.url(), ""),
    )
    .unwrap();
    Setup { dir, sim, _bb: bb }
}

async fn fetch(s: &Setup, extra: &'static [&'static str]) -> common::bench::Fetched {
    common::bench::fetch(s.dir.path(), extra, || s.sim.lock().api_calls()).await
}

/// The fewest calls a full read allows: user pages at 500, group pages at 200, and the member
/// pages at 200 of each group that has direct members (users or nested groups; the groups
/// listing's `directMembersCount` lets an empty group go unread).
fn floor(d: &Directory) -> u64 {
    let mut direct = std::collections::HashMap::<&str, usize>::new();
    for m in &d.memberships {
        *direct.entry(m.group.as_str()).or_default() += 1;
    }
    let pages: usize = direct.values().map(|n| n.div_ceil(MEMBER_PAGE)).sum();
    (d.users.len().div_ceil(USER_PAGE) + d.groups.len().div_ceil(GROUP_PAGE) + pages) as u64
}

/// Changes `n` users from the `from`-th on: most names, some a group joined; the groups joined.
fn change(s: &Setup, d: &Directory, from: usize, n: usize) -> usize {
    let mut g = s.sim.lock();
    let mut groups = std::collections::BTreeSet::new();
    for (i, u) in d.users.iter().enumerate().skip(from).take(n) {
        let id = g.id_of(&u.id);
        match i % 10 {
            0..=7 => g.update_user(&id, |x| x.given_name = format!("Changed{i}")),
            _ => {
                let group = g.id_of(&d.groups[(i * 7 + 1) % d.groups.len()].id);
                g.add_member(&group, &id, MemberType::User);
                groups.insert(group);
            }
        }
    }
    groups.len()
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "full,delta".into());
    let _ = common::plugins_out();
    println!(
        "| scenario | account | mode | wall time | API calls | calls ÷ floor | read | peak RSS (roster) | split |"
    );
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
        // No change feed: the users and groups listings again, and each changed group's members.
        let bound = (d.users.len().div_ceil(USER_PAGE) + d.groups.len().div_ceil(GROUP_PAGE) + groups) as u64;
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
