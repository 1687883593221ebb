//! Sync benchmarks against the Bitbucket simulator; prints the Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench sync` (release). Roster runs as its own process (the release
//! `roster` binary) so its peak RSS is its own; the simulator runs in this process.
//! `ROSTER_BENCH_ONLY=a,b,c,e` picks scenarios.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use roster_sim::bitbucket::{BbState, BitbucketSim, Permission};
use roster_sim::directory::Directory;

struct Setup {
    dir: tempfile::TempDir,
    sim: BitbucketSim,
}

const UNLIMITED: &str = "{ per_second = 1000000, burst = 1000 }";

fn st_clone(_: &BbState) -> BbState {
    let mut s = state();
    s.set_rate_limit(5.0, 60);
    s
}

fn state() -> BbState {
    let mut s = BbState::new();
    s.add_group("bitbucket-users", &[]);
    s.grant_group("bitbucket-users", Permission::LicensedUser);
    s
}

async fn setup(d: &Directory, sim_state: BbState, budget: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for p in ["file", "normalize"] {
        std::fs::copy(common::component(p), plugins.join(format!("{p}.wasm"))).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("idp")).unwrap();
    d.write_jsonl(&dir.path().join("idp/directory.jsonl")).unwrap();
    let sim = BitbucketSim::start(sim_state).await;
    let config =
        roster_sim::scenario::file_source_config(&sim.url(), "idp", "directory.jsonl", &format!("budget = {budget}"));
    std::fs::write(dir.path().join("roster.toml"), config).unwrap();
    Setup { dir, sim }
}

struct Outcome {
    wall: Duration,
    report: serde_json::Value,
    peak_rss_mib: f64,
}

/// Runs `roster sync --json` as a child and measures it. The peak RSS is the one Roster reports
/// for itself (`VmHWM`): a child's rusage would also count pages of this process at spawn time.
async fn sync(s: &Setup, extra: &'static [&'static str]) -> Outcome {
    let data: PathBuf = s.dir.path().to_path_buf();
    let args: Vec<&str> = std::iter::once("sync").chain(extra.iter().copied()).collect();
    let (wall, report) = tokio::task::spawn_blocking(move || common::roster_json(&data, &args))
        .await
        .unwrap();
    let peak_rss_mib = report["summary"]["peak_rss_mib"]
        .as_f64()
        .expect("the run summary reports peak_rss_mib (Linux)");
    Outcome {
        wall,
        report,
        peak_rss_mib,
    }
}

fn writes(r: &serde_json::Value) -> u64 {
    r["summary"]["api_calls"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with("GET "))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

fn calls(r: &serde_json::Value) -> u64 {
    r["summary"]["api_calls_total"].as_u64().unwrap()
}

/// user creates + group creates + ⌈adds per group ÷ 500⌉ (default group included).
fn floor(d: &Directory) -> u64 {
    let adds: usize = d
        .expected_members()
        .values()
        .map(|m| m.len().div_ceil(500))
        .sum::<usize>()
        + d.users.len().div_ceil(500);
    (d.users.len() + d.groups.len() + adds) as u64
}

fn row(name: &str, d: &Directory, o: &Outcome, target: &str) {
    println!(
        "| {name} | {} users, {} groups, {} direct / {} flattened memberships | {:.1} s | {} | {} | {:.0} MiB | {target} |",
        d.users.len(),
        d.groups.len(),
        d.memberships.len(),
        d.flattened_count(),
        o.wall.as_secs_f64(),
        calls(&o.report),
        writes(&o.report),
        o.peak_rss_mib
    );
}

fn stages(o: &Outcome) -> String {
    let f = &o.report["summary"]["fetch"][0];
    let st = &o.report["summary"]["stage_ms"];
    let fetch_split = format!(
        " (connector {:.1} s, store {:.1} s)",
        f["connector_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
        f["store_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
    );
    ["fetch", "transform", "merge", "read", "plan", "guard", "apply"]
        .iter()
        .filter_map(|k| st[k].as_u64().map(|v| format!("{k} {:.1} s", v as f64 / 1000.0)))
        .collect::<Vec<_>>()
        .join(", ")
        + &fetch_split
}

fn check_state(sim: &BitbucketSim, d: &Directory) {
    let s = sim.lock();
    assert_eq!(s.users().len(), d.users.len() + 1, "every user created");
    assert_eq!(s.groups().len(), d.groups.len() + 1, "every group created");
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "a,b,c,e".into());
    let _ = common::plugins_out();
    let _ = Path::new(".");
    println!("| scenario | data | wall time | Bitbucket calls | writes | peak RSS (roster) | target |");
    println!("|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    if only.contains('a') {
        let d = Directory::generate(10_000, 1_000, 20);
        let s = setup(&d, state(), UNLIMITED).await;
        let o = sync(&s, &[]).await;
        check_state(&s.sim, &d);
        row("(a) initial sync", &d, &o, "≤ 10 s");
        notes.push(format!(
            "(a) stages: {}; writes ÷ floor = {} ÷ {} = {:.3}",
            stages(&o),
            writes(&o.report),
            floor(&d),
            writes(&o.report) as f64 / floor(&d) as f64
        ));
    }
    if only.contains('b') || only.contains('c') {
        let d = Directory::generate(100_000, 5_000, 5);
        let s = setup(&d, state(), UNLIMITED).await;
        let o = sync(&s, &[]).await;
        check_state(&s.sim, &d);
        row("(b) initial sync", &d, &o, "≤ 60 s, ≤ 300 MB");
        notes.push(format!(
            "(b) stages: {}; (d) writes ÷ floor = {} ÷ {} = {:.3}",
            stages(&o),
            writes(&o.report),
            floor(&d),
            writes(&o.report) as f64 / floor(&d) as f64
        ));
        let o = sync(&s, &[]).await;
        assert_eq!(writes(&o.report), 0, "a resync with nothing changed writes nothing");
        row("(c) resync, nothing changed", &d, &o, "0 writes, ≤ 10 s");
        notes.push(format!("(c) stages: {}", stages(&o)));
        let o = sync(&s, &["--incremental"]).await;
        assert_eq!(writes(&o.report), 0);
        row(
            "(c) resync, nothing changed, `--incremental`",
            &d,
            &o,
            "0 writes, ≤ 10 s",
        );
        notes.push(format!("(c, incremental) stages: {}", stages(&o)));
    }
    if only.contains('e') {
        let d = Directory::generate(300, 20, 1);
        let mut st = state();
        st.set_rate_limit(5.0, 60);
        for (label, budget) in [
            (
                "budget matched to Bitbucket's (5/s, burst 60)",
                "{ per_second = 5, burst = 60 }",
            ),
            ("default budget, learning from 429s", UNLIMITED),
        ] {
            let s = setup(&d, st_clone(&st), budget).await;
            let o = sync(&s, &[]).await;
            let c = calls(&o.report);
            row(
                &format!("(e) Bitbucket limited to 5 req/s, burst 60; {label}"),
                &d,
                &o,
                "≤ 1.1 × calls ÷ 5",
            );
            notes.push(format!(
                "(e) {label}: {c} calls; calls ÷ 5 = {:.1} s, measured {:.1} s = {:.2}×; counting the free burst of 60, (calls − 60) ÷ 5 = {:.1} s = {:.2}×; 429s received: {}",
                c as f64 / 5.0,
                o.wall.as_secs_f64(),
                o.wall.as_secs_f64() / (c as f64 / 5.0),
                c.saturating_sub(60) as f64 / 5.0,
                o.wall.as_secs_f64() / (c.saturating_sub(60) as f64 / 5.0),
                o.report["summary"]["throttled"]
            ));
        }
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
}
