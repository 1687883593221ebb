//! `scim` connector benchmarks against PyPI's `scim2-server` (a real SCIM 2.0 service, run as
//! its own process on 127.0.0.1); prints the Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench scim` (release). Roster runs as its own process (`roster
//! fetch --json`: fetch into the mirror, no plan) so its peak RSS is its own.
//! `ROSTER_BENCH_ONLY=full,large,incremental` picks scenarios. The requests are those the
//! fetch reports (the server counts none).
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::scenario::{ScimSource, scim_source_config};
use roster_sim::scim2_server::Scim2Server;

const TOKEN: &str = "bench-token";

struct Setup {
    dir: tempfile::TempDir,
    server: Scim2Server,
    bb: BitbucketSim,
}

async fn setup(d: &Directory) -> Setup {
    let dir = common::data_dir_with(&["scim"]);
    let server = Scim2Server::start(TOKEN)
        .await
        .expect("scim2-server starts (./dev test installs it)");
    let loading = std::time::Instant::now();
    server.load(d).await.expect("the directory loads");
    eprintln!("loaded scim2-server in {:.1} s", loading.elapsed().as_secs_f64());
    let bb = BitbucketSim::start(BbState::new()).await;
    Setup { dir, server, bb }
}

/// Writes the configuration with `page_size`.
fn configure(s: &Setup, page_size: u32) {
    let source = ScimSource {
        origin: s.server.origin(),
        base_url: s.server.base_url(),
        token: TOKEN.into(),
        settings: format!("page_size = {page_size}"),
        source: "budget = { per_second = 1000000, burst = 1000 }".into(),
    };
    std::fs::write(
        s.dir.path().join("roster.toml"),
        scim_source_config(&source, &s.bb.url(), ""),
    )
    .unwrap();
}

/// The fewest requests a full read allows at `page_size`: the users' pages and the groups' pages
/// (members come with the groups), the last page ending each listing at `totalResults`.
fn floor(d: &Directory, page_size: u32) -> u64 {
    let pages = |n: usize| n.div_ceil(page_size as usize).max(1) as u64;
    pages(d.users.len()) + pages(d.groups.len())
}

async fn fetch(s: &Setup, extra: &'static [&'static str]) -> (common::bench::Fetched, u64) {
    let o = common::bench::fetch(s.dir.path(), extra, || 0).await;
    let requests = o.report["summary"]["fetch"][0]["idp_requests"].as_u64().unwrap_or(0);
    (o, requests)
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "full,large,incremental".into());
    let _ = common::plugins_out();
    let d = Directory::generate(10_000, 500, 3);
    let s = setup(&d).await;
    println!(
        "| scenario | service | mode | wall time | requests | requests ÷ floor | read | peak RSS (roster) | split |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    if only.contains("full") {
        configure(&s, 100);
        let (o, n) = fetch(&s, &[]).await;
        common::bench::fetch_row(
            "(a) full fetch, page_size 100",
            &d,
            o.wall,
            &o.report,
            n,
            floor(&d, 100),
        );
        notes.push(format!("floor at page_size 100 = {} requests", floor(&d, 100)));
    }
    if only.contains("large") {
        configure(&s, 1000);
        let (o, n) = fetch(&s, &[]).await;
        common::bench::fetch_row(
            "(b) full fetch, page_size 1000",
            &d,
            o.wall,
            &o.report,
            n,
            floor(&d, 1000),
        );
        notes.push(format!("floor at page_size 1000 = {} requests", floor(&d, 1000)));
    }
    if only.contains("incremental") {
        // SCIM has no change feed: an incremental run reads the service in full.
        configure(&s, 100);
        let (o, n) = fetch(&s, &["--incremental"]).await;
        assert_eq!(o.report["summary"]["fetch"][0]["mode"], "full");
        common::bench::fetch_row(
            "(c) --incremental (a full read)",
            &d,
            o.wall,
            &o.report,
            n,
            floor(&d, 100),
        );
        notes.push(format!("(c) {n} requests: an incremental run costs a full read"));
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
}
