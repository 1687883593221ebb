//! LDAP connector benchmarks against a real, throwaway OpenLDAP server (slapd on 127.0.0.1,
//! StartTLS with a test CA); prints the Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench ldap` (release). Roster runs as its own process (`roster fetch
//! --json`, `roster sync --json`) so its peak RSS is its own; slapd runs as its own process too,
//! and the Bitbucket simulator in this one. `ROSTER_BENCH_ONLY=full,delta,sync` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::scenario::{LdapSource, ldap_source_config};
use roster_sim::slapd::{Layout, SizeLimit, Slapd};

/// Entries per paged-results page: Active Directory's `MaxPageSize`, the most a connector can
/// ask of every server.
const PAGE_SIZE: u32 = 1000;

struct Setup {
    dir: tempfile::TempDir,
    slapd: Slapd,
    _bb: BitbucketSim,
}

async fn setup(d: &Directory) -> Setup {
    let dir = common::data_dir_with(&["ldap"]);
    let loaded = d.clone();
    // slapadd before the server starts: ldapadd takes about 13 s at this size, slapadd 1 s;
    // the tests load with ldapadd, and `slapd` tests show both give the same directory.
    let slapd = tokio::task::spawn_blocking(move || {
        Slapd::start_loaded(SizeLimit::Unlimited, &loaded, &Layout::default()).expect("slapd starts loaded")
    })
    .await
    .unwrap();
    let bb = BitbucketSim::start(BbState::new()).await;
    let mut source = LdapSource::for_server(&slapd);
    source.settings = format!("page_size = {PAGE_SIZE}");
    source.source = "budget = { per_second = 1000000, burst = 1000 }".into();
    // Bitbucket's own rate limit (the target's default budget, 200 writes a second) would be
    // all an initial sync measures.
    let target = "budget = { per_second = 1000000, burst = 1000 }";
    std::fs::write(
        dir.path().join("roster.toml"),
        ldap_source_config(&source, &bb.url(), target),
    )
    .unwrap();
    Setup { dir, slapd, _bb: bb }
}

struct Outcome {
    wall: Duration,
    report: serde_json::Value,
}

async fn roster(data: &Path, args: &'static [&'static str]) -> Outcome {
    let data = data.to_path_buf();
    let (wall, report) = tokio::task::spawn_blocking(move || common::roster_json(&data, args))
        .await
        .unwrap();
    Outcome { wall, report }
}

fn row(name: &str, d: &Directory, o: &Outcome, floor: u64) {
    common::bench::fetch_row(
        name,
        d,
        o.wall,
        &o.report,
        o.report["summary"]["fetch"][0]["idp_requests"].as_u64().unwrap_or(0),
        floor,
    );
}

/// Searches one pass over `n` entries takes at `PAGE_SIZE` a page.
fn pages(n: usize) -> u64 {
    n.div_ceil(PAGE_SIZE as usize).max(1) as u64
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "full,delta,sync".into());
    let _ = common::plugins_out();
    // The size of Atlassian's remote-directory figures (a 10,000-user LDAP directory takes
    // about five minutes to synchronise in Bitbucket's own LDAP directory): 10,000 users,
    // 1,000 groups, 200,000 memberships.
    let mut d = Directory::generate(10_000, 1_000, 20);
    println!(
        "| scenario | directory | mode | wall time | LDAP searches | searches ÷ floor | read | peak RSS (roster) | split |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // Floor of a full read: one paged pass over the users and one over the groups.
    let full_floor = pages(d.users.len()) + pages(d.groups.len());
    if only.contains("full") || only.contains("delta") {
        let s = setup(&d).await;
        // The load is stamped a day old; in a directory in use the newest change is a recent
        // one, and an incremental read continues from it.
        d.users[0].display_name = "Changed After The Load".into();
        s.slapd
            .set_display_name(&d.users[0].username, &d.users[0].display_name)
            .expect("ldapmodify");
        let o = roster(s.dir.path(), &["fetch"]).await;
        row("(m) full fetch", &d, &o, full_floor);
        if only.contains("delta") {
            let mut day = d.clone();
            let slapd = &s.slapd;
            slapd.working_day(&mut day, 100).expect("100 changes");
            let o = roster(s.dir.path(), &["fetch", "--incremental"]).await;
            assert_eq!(o.report["summary"]["fetch"][0]["mode"], "incremental", "{}", o.report);
            // Floor: one search for the changed users, one for the changed groups.
            row("(n) incremental, 100 changes", &d, &o, 2);
            d = day;
        }
    }
    if only.contains("sync") {
        let s = setup(&d).await;
        let o = roster(s.dir.path(), &["sync"]).await;
        assert_eq!(o.report["state"], "succeeded", "{}", o.report);
        row(
            "(o) first full sync into the Bitbucket simulator (fetch, plan, apply)",
            &d,
            &o,
            full_floor,
        );
    }
}
