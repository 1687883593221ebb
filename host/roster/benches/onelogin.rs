//! OneLogin connector benchmarks against the OneLogin simulator; prints the Markdown kept in
//! BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench onelogin` (release). Roster runs as its own process (`roster
//! fetch --json`: fetch into the mirror, no plan) so its peak RSS is its own; the simulator runs
//! in this process. `ROSTER_BENCH_ONLY=full,delta` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::onelogin::{CredentialScope, OneLoginSim, OneLoginState};
use roster_sim::scenario::{OneLoginSource, onelogin_source_config};

const CLIENT: &str = "bench-client";
const SECRET: &str = "bench-secret";
/// OneLogin's largest page (`limit`).
const PAGE: usize = 1000;

struct Setup {
    dir: tempfile::TempDir,
    sim: OneLoginSim,
    _bb: BitbucketSim,
}

async fn setup(d: &Directory) -> Setup {
    let dir = common::data_dir_with(&["onelogin"]);
    let mut o = OneLoginState::from_directory(d);
    o.add_credential(CLIENT, SECRET, CredentialScope::ReadUsers);
    // OneLogin's default 5,000 calls an hour is less than one full fetch of this account needs
    // (see the floor); what is measured here is the connector, not the wait.
    o.set_rate_limit(u32::MAX);
    let sim = OneLoginSim::start(o).await;
    let bb = BitbucketSim::start(BbState::new()).await;
    let source = OneLoginSource {
        api_url: sim.url(),
        client_id: CLIENT.into(),
        secret: SECRET.into(),
        source: "budget = { per_second = 1000000, burst = 1000 }".into(),
        ..OneLoginSource::default()
    };
    std::fs::write(
        dir.path().join("roster.toml"),
        onelogin_source_config(&source, &bb.url(), ""),
    )
    .unwrap();
    Setup { dir, sim, _bb: bb }
}

async fn fetch(s: &Setup, extra: &'static [&'static str]) -> common::bench::Fetched {
    common::bench::fetch(s.dir.path(), extra, || common::api_calls(s.sim.lock().calls.clone()).0).await
}

/// The fewest calls a full read allows: user pages and role pages at 1,000, and each role's
/// member pages (a role with no members still costs its one call).
fn floor(d: &Directory) -> u64 {
    let members = d.expected_members();
    let roles: usize = d
        .groups
        .iter()
        .map(|g| {
            members
                .get(&d.group_name(&g.id))
                .map_or(0, |m| m.len())
                .div_ceil(PAGE)
                .max(1)
        })
        .sum();
    (d.users.len().div_ceil(PAGE) + d.groups.len().div_ceil(PAGE) + roles) as u64
}

/// Changes `n` users from the `from`-th on: most display names, some a role joined.
fn change(s: &Setup, d: &Directory, from: usize, n: usize) {
    let mut o = s.sim.lock();
    for (i, u) in d.users.iter().enumerate().skip(from).take(n) {
        let id = o.user_id(&u.id);
        match i % 10 {
            0..=7 => o.update_user(id, |x| x.lastname = format!("Changed {i}")),
            _ => {
                let role = o.role_id(&d.groups[(i * 7 + 1) % d.groups.len()].id);
                o.assign_role(id, role);
            }
        }
    }
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
        change(&s, &d, 0, n);
        let o = fetch(&s, &["--incremental"]).await;
        assert_eq!(o.report["summary"]["fetch"][0]["mode"], "incremental");
        // The changed users' pages, each changed user's roles, and the roles listing.
        let bound = (n.div_ceil(PAGE) + n + d.groups.len().div_ceil(PAGE)) as u64;
        common::bench::fetch_row("(b) incremental, 1 % changed", &d, o.wall, &o.report, o.calls, bound);
        notes.push(format!("(b) {n} changed users → {} calls; bound {bound}", o.calls));
        assert!(o.calls <= bound, "{} calls for {n} changes, more than {bound}", o.calls);
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
}
