//! Sync benchmarks against the Bitbucket simulator; prints the Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench sync` (release). Roster runs as its own process (the release
//! `roster` binary) so its peak RSS is its own; the simulator runs in this process.
//! `ROSTER_BENCH_ONLY=a,b,c,e,j` picks scenarios. `ROSTER_BENCH_BASELINE=path/to/roster` also
//! runs (a)–(c) with that binary, alternating with this build's, and prints the ratios: two
//! builds compared against the same simulator in one run. `ROSTER_BENCH_LATENCY_MS`,
//! `ROSTER_BENCH_JITTER_MS`, `ROSTER_BENCH_CAPACITY` and `ROSTER_BENCH_QUEUE` give the simulator
//! a real server's pace (see `roster_sim::kit::pace`); `ROSTER_BENCH_CONCURRENCY` sets the
//! target's `concurrency` (`8`, `"adaptive"`, `{ adaptive = { max = 32 } }`).
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

/// The export's form: what an administrator hands the `file` connector.
#[derive(Clone, Copy)]
enum Form {
    Json,
    JsonLines,
}

impl Form {
    fn file(self) -> &'static str {
        match self {
            Form::Json => "directory.json",
            Form::JsonLines => "directory.jsonl",
        }
    }
}

async fn setup(d: &Directory, sim_state: BbState, budget: &str) -> Setup {
    setup_as(d, sim_state, budget, Form::JsonLines).await
}

async fn setup_as(d: &Directory, sim_state: BbState, budget: &str, form: Form) -> Setup {
    let dir = common::data_dir_with(&["file", "normalize"]);
    std::fs::create_dir_all(dir.path().join("idp")).unwrap();
    let path = dir.path().join("idp").join(form.file());
    match form {
        Form::Json => d.write_json(&path).unwrap(),
        Form::JsonLines => d.write_jsonl(&path).unwrap(),
    }
    let sim = BitbucketSim::start(sim_state).await;
    sim.pace().set(pace_from_env());
    let concurrency =
        std::env::var("ROSTER_BENCH_CONCURRENCY").map_or(String::new(), |c| format!("\nconcurrency = {c}"));
    let config = roster_sim::scenario::file_source_config(
        &sim.url(),
        "idp",
        form.file(),
        &format!("budget = {budget}{concurrency}"),
    );
    std::fs::write(dir.path().join("roster.toml"), config).unwrap();
    Setup { dir, sim }
}

/// The simulator's pace from the environment (none unless set).
fn pace_from_env() -> roster_sim::kit::PaceSettings {
    let n = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    roster_sim::kit::PaceSettings {
        latency: Duration::from_millis(n("ROSTER_BENCH_LATENCY_MS").unwrap_or(0)),
        jitter: Duration::from_millis(n("ROSTER_BENCH_JITTER_MS").unwrap_or(0)),
        capacity: n("ROSTER_BENCH_CAPACITY").map(|pool| roster_sim::kit::Capacity {
            pool: pool.max(1) as usize,
            queue: n("ROSTER_BENCH_QUEUE").unwrap_or(0) as usize,
        }),
    }
}

struct Outcome {
    wall: Duration,
    report: serde_json::Value,
    peak_rss_mib: f64,
}

/// Runs `roster sync --json` as a child and measures it. The peak RSS is the one Roster reports
/// for itself (`VmHWM`): a child's rusage would also count pages of this process at spawn time.
async fn sync(s: &Setup, extra: &'static [&'static str]) -> Outcome {
    run(s, "sync", extra).await
}

/// Runs `roster COMMAND --json` as a child and measures it.
async fn run(s: &Setup, command: &'static str, extra: &'static [&'static str]) -> Outcome {
    run_with(&PathBuf::from(env!("CARGO_BIN_EXE_roster")), s, command, extra).await
}

/// [`run`] with another `roster` binary.
async fn run_with(bin: &Path, s: &Setup, command: &'static str, extra: &'static [&'static str]) -> Outcome {
    let (bin, data) = (bin.to_path_buf(), s.dir.path().to_path_buf());
    let args: Vec<&str> = std::iter::once(command).chain(extra.iter().copied()).collect();
    let (wall, report) = tokio::task::spawn_blocking(move || common::roster_json_with(&bin, &data, &args))
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
    let timed: Vec<(&str, u64)> = ["fetch", "transform", "merge", "read", "plan", "guard", "apply"]
        .into_iter()
        .filter_map(|k| st[k].as_u64().map(|v| (k, v)))
        .collect();
    // What no stage times: the process starting, the store opening, plugins loading, the
    // desired state and the run record being saved.
    let outside = o.wall.as_secs_f64() - timed.iter().map(|(_, v)| *v as f64 / 1000.0).sum::<f64>();
    timed
        .iter()
        .map(|(k, v)| format!("{k} {:.1} s", *v as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
        + &fetch_split
        + &format!("; outside the stages {outside:.1} s")
}

fn check_state(sim: &BitbucketSim, d: &Directory) {
    let s = sim.lock();
    assert_eq!(s.users().len(), d.users.len() + 1, "every user created");
    assert_eq!(s.groups().len(), d.groups.len() + 1, "every group created");
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "a,b,c,e,j".into());
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
    if only.contains('j') {
        json_against_jsonl().await;
    }
    if let Some(base) = std::env::var_os("ROSTER_BENCH_BASELINE") {
        against_baseline(Path::new(&base)).await;
    }
}

/// (a)–(c) with this build and a baseline build, alternating which goes first, each on its own
/// copy of the same data and simulator state: the ratios of wall time and peak RSS.
async fn against_baseline(base: &Path) {
    let this = PathBuf::from(env!("CARGO_BIN_EXE_roster"));
    println!();
    println!("| scenario | this build | baseline | this ÷ baseline (time) | peak RSS this / baseline |");
    println!("|---|---|---|---|---|");
    let scenarios = [("(a)", 10_000, 1_000, 20), ("(b) + (c)", 100_000, 5_000, 5)];
    for (n, (label, users, groups, per_user)) in scenarios.into_iter().enumerate() {
        let d = Directory::generate(users, groups, per_user);
        // Which build goes first alternates, so neither always meets a warmer machine.
        let order = if n % 2 == 0 { [0, 1] } else { [1, 0] };
        let bins = [this.clone(), base.to_path_buf()];
        let mut outs: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
        for i in order {
            let s = setup(&d, state(), UNLIMITED).await;
            outs[i].push(run_with(&bins[i], &s, "sync", &[]).await);
            if users > 10_000 {
                outs[i].push(run_with(&bins[i], &s, "sync", &[]).await);
                outs[i].push(run_with(&bins[i], &s, "sync", &["--incremental"]).await);
            }
        }
        let names = ["initial sync", "resync", "resync --incremental"];
        for (k, name) in names.iter().enumerate().take(outs[0].len()) {
            let (a, b) = (&outs[0][k], &outs[1][k]);
            println!(
                "| {label} {name} | {:.1} s | {:.1} s | {:.2}× | {:.0} / {:.0} MiB |",
                a.wall.as_secs_f64(),
                b.wall.as_secs_f64(),
                a.wall.as_secs_f64() / b.wall.as_secs_f64(),
                a.peak_rss_mib,
                b.peak_rss_mib
            );
        }
    }
}

/// (j) The same export read as `.json` and as `.jsonl` (`roster fetch`: read into the mirror,
/// no plan): a page must cost what it reads in either form, so the two take about as long.
async fn json_against_jsonl() {
    let d = Directory::generate(10_000, 1_000, 20);
    println!();
    println!("| (j) export form | data | fetch wall time | pages | connector | store | peak RSS (roster) |");
    println!("|---|---|---|---|---|---|---|");
    let mut walls = Vec::new();
    for (label, form) in [(".json", Form::Json), (".jsonl", Form::JsonLines)] {
        let s = setup_as(&d, state(), UNLIMITED, form).await;
        let o = run(&s, "fetch", &[]).await;
        let f = &o.report["summary"]["fetch"][0];
        assert_eq!(f["complete"], true, "{}", o.report);
        println!(
            "| {label} | {} users, {} groups, {} memberships | {:.2} s | {} | {:.2} s | {:.2} s | {:.0} MiB |",
            d.users.len(),
            d.groups.len(),
            d.memberships.len(),
            o.wall.as_secs_f64(),
            f["pages"],
            f["connector_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
            f["store_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
            o.peak_rss_mib
        );
        walls.push(o.wall.as_secs_f64());
    }
    println!();
    println!(
        "- (j) `.json` ÷ `.jsonl` = {:.2}×, measured in this run",
        walls[0] / walls[1]
    );
}
