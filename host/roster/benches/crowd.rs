//! Jira/Crowd connector benchmarks against the user-server simulator; prints the Markdown kept
//! in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench crowd` (release). Roster runs as its own process (`roster
//! fetch --json`: fetch into the mirror, no plan) so its peak RSS is its own; the simulator
//! runs in this process. `ROSTER_BENCH_ONLY=full,delta,per-group` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::crowd::{CrowdSim, CrowdState, Product};
use roster_sim::directory::Directory;
use roster_sim::scenario::{CrowdSource, crowd_source_config};

const APP: &str = "roster";
const PASSWORD: &str = "bench-password";

struct Setup {
    dir: tempfile::TempDir,
    crowd: CrowdSim,
    _bb: BitbucketSim,
}

async fn setup(d: &Directory, membership: Membership) -> Setup {
    let dir = common::data_dir_with(&["crowd"]);
    let mut state = CrowdState::from_directory(d, Product::Jira);
    state.add_application(APP, PASSWORD, &["127.0.0.0/8"]);
    if membership == Membership::PerGroup {
        state.without_membership_document();
    }
    let crowd = CrowdSim::start(state).await;
    let bb = BitbucketSim::start(BbState::new()).await;
    let source = CrowdSource {
        server_url: crowd.url(),
        application: APP.into(),
        password: PASSWORD.into(),
        source: "budget = { per_second = 1000000, burst = 1000 }".into(),
        ..CrowdSource::default()
    };
    std::fs::write(
        dir.path().join("roster.toml"),
        crowd_source_config(&source, &bb.url(), ""),
    )
    .unwrap();
    Setup { dir, crowd, _bb: bb }
}

/// How the server gives memberships.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Membership {
    /// One `/group/membership` document (Crowd REST 1.1 and later).
    Document,
    /// 404 on the document: two listings per group, as older servers make clients do.
    PerGroup,
}

async fn fetch(s: &Setup, extra: &'static [&'static str]) -> common::bench::Fetched {
    common::bench::fetch(s.dir.path(), extra, || s.crowd.lock().calls()).await
}

/// Changes `n` users from the `from`-th on, the way a working day does: display names, a group
/// joined, a group left, a user removed. Returns how many users were changed in place (each is
/// read again with its attributes).
fn change(s: &Setup, d: &Directory, from: usize, n: usize) -> u64 {
    let mut c = s.crowd.lock();
    let mut updated = 0;
    for (i, u) in d.users.iter().enumerate().skip(from).take(n) {
        match i % 10 {
            0..=5 => {
                c.update_user(&u.username, |x| x.display_name = format!("Changed {i}"));
                updated += 1;
            }
            6 | 7 => c.add_user_to_group(&u.username, &d.groups[(i * 7 + 1) % d.groups.len()].name),
            8 => {
                if let Some(g) = c.user_groups(&u.username).first().cloned() {
                    c.remove_user_from_group(&u.username, &g);
                }
            }
            _ => c.remove_user(&u.username),
        }
    }
    updated
}

fn row(name: &str, d: &Directory, o: &common::bench::Fetched, floor: u64) {
    common::bench::fetch_row(name, d, o.wall, &o.report, o.calls, floor);
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "full,delta,per-group".into());
    let _ = common::plugins_out();
    // The size Atlassian quotes for a remote Crowd directory's full synchronisation (about four
    // minutes): 10,000 users, 1,000 groups, 200,000 direct memberships.
    let d = Directory::generate(10_000, 1_000, 20);
    println!(
        "| scenario | directory | mode | wall time | Jira requests | requests ÷ floor | read | peak RSS (roster) | split |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    if only.contains("full") || only.contains("delta") {
        let s = setup(&d, Membership::Document).await;
        // Floor: a token, the users, the groups, the membership document.
        let o = fetch(&s, &[]).await;
        row("(j) full fetch", &d, &o, 4);
        if only.contains("delta") {
            let updated = change(&s, &d, 0, 100);
            let o = fetch(&s, &["--incremental"]).await;
            assert_eq!(o.report["summary"]["fetch"][0]["mode"], "incremental", "{}", o.report);
            // Floor: the events since the token, and each changed user read with its attributes
            // (events carry none).
            row("(k) incremental, 100 changes", &d, &o, 1 + updated);
        }
    }
    if only.contains("per-group") {
        let s = setup(&d, Membership::PerGroup).await;
        let o = fetch(&s, &[]).await;
        // Floor without the document: a token, users, groups, and two listings per group.
        row(
            "(l) full fetch, server without `/group/membership`",
            &d,
            &o,
            3 + 2 * d.groups.len() as u64,
        );
    }
}
