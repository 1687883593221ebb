//! Bitbucket Cloud as a target, against the Cloud simulator; prints the Markdown kept in
//! BENCHMARKS.md ("Bitbucket Cloud as a target (issue 20)").
//!
//! `cargo bench -p roster --bench cloud` (release). Roster runs as its own process (the release
//! `roster` binary, `roster sync --json`), one process per run as a scheduler would start it, so
//! its call budget is what the store remembers between runs; the simulator runs in this process
//! and counts every request it answers (429s included) in its request log, independently of
//! what Roster reports. `ROSTER_BENCH_ONLY=a,b,c` picks scenarios:
//! (a) a workspace administered at admin.atlassian.com, provisioned through SCIM;
//! (b) a workspace administered in Bitbucket: invitations, then memberships once accepted;
//! (c) a plan larger than the call budget, spread over runs.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use roster_sim::bitbucket_cloud::{Administration, AutoAccept, CloudSim, CloudState, MAX_EMAILS};
use roster_sim::directory::Directory;

const WORKSPACE: &str = "acme";
const USER: &str = "admin";
const APP_PASSWORD: &str = "app-password";
const DIRECTORY_ID: &str = "dir-1";
const SCIM_KEY: &str = "scim-key";
/// Mode one's invite group and everyone's default group.
const DEVELOPERS: &str = "developers";
/// Mode two's group granting Bitbucket.
const LICENSED: &str = "bitbucket-users";
/// Roster's request pacing out of the way: the scenarios measure calls and Cloud's meter.
const UNPACED: &str = "budget = { per_second = 1000000, burst = 1000 }";
/// Members one SCIM PATCH of a group carries (the target's `MEMBERS_PER_PATCH`).
const SCIM_MEMBERS_PER_CALL: usize = 100;
/// Resources per page of Bitbucket's 2.0 listings and of SCIM's (`pagelen`, `count`).
const PAGE: usize = 100;

/// How the workspace is administered, as the scenario configures it.
#[derive(Clone, Copy)]
enum Mode {
    /// In Bitbucket (mode one): invitations and 1.0 groups.
    Bitbucket,
    /// At admin.atlassian.com (mode two): SCIM.
    AdminHub,
}

struct Setup {
    dir: tempfile::TempDir,
    sim: CloudSim,
}

/// A workspace administered in Bitbucket: the group `developers` and Roster's own account in
/// it, an owner; invitations wait until the bench accepts them.
fn workspace() -> CloudState {
    let mut s = CloudState::new(WORKSPACE, Administration::Bitbucket);
    s.credentials(USER, APP_PASSWORD);
    s.add_group(DEVELOPERS, Some("write"));
    let me = s.add_account(USER, "Roster", "admin@example.com");
    s.join(&me, DEVELOPERS);
    s.make_owner(&me);
    s.auto_accept(AutoAccept::Never);
    s
}

/// A workspace moved to admin.atlassian.com, its SCIM directory empty but for the group that
/// grants Bitbucket.
fn admin_hub() -> CloudState {
    let mut s = CloudState::new(WORKSPACE, Administration::AdminHub);
    s.credentials(USER, APP_PASSWORD);
    s.scim_directory(DIRECTORY_ID, SCIM_KEY);
    s.add_group(LICENSED, None);
    s.product_access(&[LICENSED]);
    s
}

fn config(url: &str, mode: Mode, hourly_budget: &str) -> String {
    let target = match mode {
        Mode::Bitbucket => format!(r#"default_groups = ["{DEVELOPERS}"]"#),
        Mode::AdminHub => format!(
            r#"default_groups = ["{LICENSED}"]
licensed_groups = ["{LICENSED}"]

[target.scim]
directory_id = "{DIRECTORY_ID}"
api_key = {{ value = "{SCIM_KEY}" }}
url = "{url}""#
        ),
    };
    format!(
        r#"[[source]]
id = "hr"
plugin = "file"
files = "idp"
settings = {{ path = "directory.jsonl" }}

[[source.transforms]]
plugin = "normalize"

[target]
kind = "bitbucket-cloud"
url = "{url}"
workspace = "{WORKSPACE}"
username = "{USER}"
app_password = {{ value = "{APP_PASSWORD}" }}
{UNPACED}
hourly_budget = {hourly_budget}
{target}
"#
    )
}

async fn setup(d: &Directory, state: CloudState, mode: Mode, hourly_budget: &str) -> Setup {
    let dir = common::data_dir_with(&["file", "normalize"]);
    std::fs::create_dir_all(dir.path().join("idp")).unwrap();
    d.write_jsonl(&dir.path().join("idp").join("directory.jsonl")).unwrap();
    let sim = CloudSim::start(state).await;
    std::fs::write(dir.path().join("roster.toml"), config(&sim.url(), mode, hourly_budget)).unwrap();
    Setup { dir, sim }
}

/// What the simulator answered during one run.
#[derive(Default, Clone, Copy)]
struct Answered {
    /// Every request, 429s included.
    calls: u64,
    /// GETs.
    reads: u64,
    /// POST/PUT/PATCH/DELETE answered 2xx.
    writes: u64,
    /// Answered 429.
    throttled: u64,
}

impl Answered {
    fn of(log: &[roster_sim::kit::Logged]) -> Answered {
        let mut a = Answered::default();
        for e in log {
            a.calls += 1;
            let ok = e.status.is_some_and(|s| s.is_success());
            if e.status.is_some_and(|s| s.as_u16() == 429) {
                a.throttled += 1;
            } else if e.method == http::Method::GET {
                a.reads += 1;
            } else if ok {
                a.writes += 1;
            }
        }
        a
    }
}

/// One `roster sync` process.
struct Run {
    wall: Duration,
    report: serde_json::Value,
    answered: Answered,
}

impl Run {
    fn state(&self) -> &str {
        self.report["state"].as_str().unwrap_or("?")
    }

    fn planned(&self) -> u64 {
        self.report["summary"]["planned"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum())
    }

    fn applied(&self, key: &str) -> u64 {
        self.report["summary"]["applied"][key].as_u64().unwrap_or(0)
    }

    /// Calls Roster reports it made.
    fn roster_calls(&self) -> u64 {
        self.report["summary"]["api_calls_total"].as_u64().unwrap_or(0)
    }

    fn stages(&self) -> String {
        let st = &self.report["summary"]["stage_ms"];
        ["fetch", "transform", "merge", "read", "plan", "guard", "apply"]
            .iter()
            .filter_map(|k| st[k].as_u64().map(|v| format!("{k} {:.2} s", v as f64 / 1000.0)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn eta(&self) -> &serde_json::Value {
        &self.report["summary"]["eta"]
    }
}

/// Runs `roster sync --json` as a child, as a scheduler would: a paused run exits non-zero, so
/// the exit status is not asserted here — the report's `state` says how the run ended, and a
/// run that printed no report fails the bench.
async fn sync(s: &Setup) -> Run {
    s.sim.log().clear();
    let (left_before, writes_before) = {
        let st = s.sim.lock();
        (st.calls_left(USER), st.writes())
    };
    let data = s.dir.path().to_path_buf();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_roster"));
    let (wall, report) = tokio::task::spawn_blocking(move || roster_sync(&bin, &data))
        .await
        .unwrap();
    let log = s.sim.log().entries();
    let answered = if log.len() < roster_sim::kit::RequestLog::CAPACITY {
        Answered::of(&log)
    } else {
        // More calls than the request log keeps: Cloud's own meter counted every Bitbucket
        // call (the scenario sets a limit it never reaches), and its write counter the writes.
        let st = s.sim.lock();
        let (Some(before), Some(after)) = (left_before, st.calls_left(USER)) else {
            panic!("a run made more calls than the request log keeps, and Cloud's meter is off");
        };
        let failed = report["summary"]["applied"]["failed"].as_u64().unwrap_or(0);
        assert_eq!(
            failed, 0,
            "reads are counted as calls − writes only when no write failed"
        );
        let calls = before - after;
        let writes = st.writes() - writes_before;
        Answered {
            calls,
            reads: calls - writes,
            writes,
            throttled: 0,
        }
    };
    let run = Run { wall, report, answered };
    // Roster's report and Cloud's count must agree: a run's own call count is what an
    // administrator reads its cost from.
    assert_eq!(
        run.roster_calls(),
        run.answered.calls,
        "calls Roster reported against calls Cloud answered"
    );
    run
}

fn roster_sync(bin: &Path, data: &Path) -> (Duration, serde_json::Value) {
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(data.join("roster.toml"))
        .args(["sync", "--json"])
        .env("ROSTER_SECRET_KEY", "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=")
        .output()
        .expect("running roster");
    let wall = started.elapsed();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "roster printed no JSON report ({e}; exit {:?})\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (wall, report)
}

fn assert_state(r: &Run, want: &str) {
    assert_eq!(
        r.state(),
        want,
        "warnings: {}",
        serde_json::to_string(&r.report["summary"]["warnings"]).unwrap()
    );
}

fn pages(n: usize) -> u64 {
    n.div_ceil(PAGE).max(1) as u64
}

fn ratio(a: u64, b: u64) -> String {
    format!("{:.3}", a as f64 / b as f64)
}

fn data(d: &Directory) -> String {
    format!(
        "{} people, {} groups, {} flattened memberships",
        d.users.len(),
        d.groups.len(),
        d.flattened_count()
    )
}

/// One row: scenario, data, wall time, calls (reads + writes), the floor and the ratio, 429s.
fn row(name: &str, data: &str, r: &Run, floor: u64) {
    let a = r.answered;
    println!(
        "| {name} | {data} | {:.2} s | {} ({} reads + {} writes) | {floor} | {} | {} | {} |",
        r.wall.as_secs_f64(),
        a.calls,
        a.reads,
        a.writes,
        ratio(a.calls, floor),
        a.throttled,
        r.state()
    );
}

#[tokio::main]
async fn main() {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "a,b,c".into());
    let _ = common::plugins_out();
    println!(
        "| scenario | data | wall time | calls Cloud answered (reads + writes) | floor | calls ÷ floor | 429s | run ended |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    if only.contains('a') {
        admin_hub_sync(&mut notes).await;
    }
    if only.contains('b') {
        workspace_invitations(&mut notes).await;
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
    if only.contains('c') {
        // 1,400 fits three windows with each run's read; 1,450 needs a fourth once the later
        // runs' reads are counted, which the first plan's ETA does not foresee.
        for people in [1_400, 1_450] {
            over_budget(people, Scheduler::AfterWindow).await;
        }
        // A scheduler that does not wait for the window: runs that find the budget spent
        // must pause (not fail) and cost nothing.
        over_budget(1_400, Scheduler::Every(Duration::from_secs(1))).await;
    }
}

/// (a) Mode two: an initial sync through SCIM, then a resync with nothing changed.
async fn admin_hub_sync(notes: &mut Vec<String>) {
    let d = Directory::generate(2_000, 100, 2);
    let s = setup(&d, admin_hub(), Mode::AdminHub, "{ calls = 1000, window_secs = 3600 }").await;
    let expected = d.expected_members();
    let people = d.users.len();
    // The directory listings (users, then groups) at the start, and the probe of where the
    // workspace is administered (Bitbucket's 1.0 invitations: 403 naming admin.atlassian.com).
    let first_reads = 1 + pages(0) + pages(1);
    let member_calls: usize = expected
        .values()
        .map(|m| m.len().div_ceil(SCIM_MEMBERS_PER_CALL))
        .sum::<usize>()
        + people.div_ceil(SCIM_MEMBERS_PER_CALL);
    let first_writes = (people + d.groups.len() + member_calls) as u64;
    let r = sync(&s).await;
    assert_state(&r, "succeeded");
    {
        let st = s.sim.lock();
        assert_eq!(st.scim_users().len(), people, "every person created");
        let groups = st.scim_groups();
        for (g, members) in &expected {
            let got: std::collections::BTreeSet<String> = groups
                .get(g)
                .unwrap_or_else(|| panic!("group {g} created"))
                .iter()
                .map(|e| e.split('@').next().unwrap().to_string())
                .collect();
            assert_eq!(&got, members, "members of {g}");
        }
        assert_eq!(groups.get(LICENSED).map(|m| m.len()), Some(people));
    }
    row(
        "(a) admin.atlassian.com (SCIM): initial sync",
        &data(&d),
        &r,
        first_writes + first_reads,
    );
    notes.push(format!(
        "(a) initial sync: writes {} ÷ floor {} (user creates {} + group creates {} + Σ⌈members ÷ {SCIM_MEMBERS_PER_CALL}⌉ {member_calls}, `bitbucket-users` included) = {}; reads {} (floor {first_reads}: the mode probe and one page each of the empty directory's users and groups); Roster reported {} calls; applied {} done, {} failed; stages: {}",
        r.answered.writes,
        first_writes,
        people,
        d.groups.len(),
        ratio(r.answered.writes, first_writes),
        r.answered.reads,
        r.roster_calls(),
        r.applied("done"),
        r.applied("failed"),
        r.stages()
    ));
    // A resync reads the directory whole: users and groups, page by page, and the probe.
    let resync_reads = 1 + pages(people) + pages(d.groups.len() + 1);
    let r = sync(&s).await;
    assert_state(&r, "succeeded");
    assert_eq!(r.answered.writes, 0, "a resync with nothing changed writes nothing");
    row(
        "(a) admin.atlassian.com (SCIM): resync, nothing changed",
        &data(&d),
        &r,
        resync_reads,
    );
    notes.push(format!(
        "(a) resync: {} calls, all reads, against the floor of {resync_reads} (the probe + {} user pages + {} group pages); stages: {}",
        r.answered.calls,
        pages(people),
        pages(d.groups.len() + 1),
        r.stages()
    ));
    // The first resync also records which directory user is which Roster name (found by
    // email); a second shows the steady state.
    let again = sync(&s).await;
    assert_state(&again, "succeeded");
    assert_eq!(again.answered.writes, 0, "a resync with nothing changed writes nothing");
    row(
        "(a) admin.atlassian.com (SCIM): second resync, nothing changed",
        &data(&d),
        &again,
        resync_reads,
    );
    notes.push(format!(
        "(a) second resync: {} calls; read stage {:.2} s against the first resync's {:.2} s; stages: {}",
        again.answered.calls,
        again.report["summary"]["stage_ms"]["read"].as_u64().unwrap_or(0) as f64 / 1000.0,
        r.report["summary"]["stage_ms"]["read"].as_u64().unwrap_or(0) as f64 / 1000.0,
        again.stages()
    ));
    // What the read costs the simulator itself: it renders the whole directory for each page.
    let url = format!(
        "{}/scim/directory/{DIRECTORY_ID}/Users?startIndex=1&count={PAGE}",
        s.sim.url()
    );
    let client = reqwest::Client::new();
    let mut took = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let answer = client.get(&url).bearer_auth(SCIM_KEY).send().await.unwrap();
        assert!(answer.status().is_success());
        answer.bytes().await.unwrap();
        took.push(t.elapsed().as_secs_f64());
    }
    took.sort_by(f64::total_cmp);
    notes.push(format!(
        "(a) one page of 100 users from the simulator, fetched by the bench itself: {:.1} ms (median of 5); × {} pages = {:.2} s of the resync's read stage is the simulator's",
        took[2] * 1000.0,
        pages(people),
        took[2] * pages(people) as f64
    ));
}

/// The read a mode-one run needs: the invitations (also the mode probe), the members' pages,
/// the groups with their members (one 1.0 call), the owners' page, and one lookup per 90
/// addresses whose account Roster does not know yet.
fn workspace_reads(members: usize, unknown_addresses: usize, owners: usize) -> u64 {
    1 + pages(members) + 1 + pages(owners) + unknown_addresses.div_ceil(MAX_EMAILS) as u64
}

/// (b) Mode one: the first run invites everyone (and creates the groups); everyone accepts;
/// the second run gives the memberships; the third writes nothing.
async fn workspace_invitations(notes: &mut Vec<String>) {
    let d = Directory::generate(2_000, 100, 2);
    let mut state = workspace();
    // A meter Roster never reaches: it counts every call of a run larger than the request log.
    state.hourly_limit(1_000_000, Duration::from_secs(3600));
    let s = setup(&d, state, Mode::Bitbucket, "{ calls = 1000000, window_secs = 3600 }").await;
    let people = d.users.len();
    let expected = d.expected_members();
    let memberships: usize = expected.values().map(|m| m.len()).sum();

    // Run 1: the workspace holds only Roster's account; nobody's account is known.
    let reads = workspace_reads(1, people, 1);
    let writes = (people + d.groups.len()) as u64;
    let r1 = sync(&s).await;
    assert_state(&r1, "succeeded");
    {
        let st = s.sim.lock();
        let invited = st.invitations();
        assert_eq!(invited.len(), people, "everyone invited");
        assert!(invited.iter().all(|i| i.sent == 1), "each invitation sent once");
    }
    row("(b) workspace: run 1, invitations", &data(&d), &r1, reads + writes);
    notes.push(format!(
        "(b) run 1: writes {} ÷ floor {writes} ({people} invitations + {} group creates) = {}; reads {} ÷ floor {reads} (invitations 1 + member pages 1 + groups 1 + owners 1 + ⌈{people} ÷ {MAX_EMAILS}⌉ email lookups) = {}; stages: {}",
        r1.answered.writes,
        d.groups.len(),
        ratio(r1.answered.writes, writes),
        r1.answered.reads,
        ratio(r1.answered.reads, reads),
        r1.stages()
    ));

    {
        let mut st = s.sim.lock();
        for u in &d.users {
            assert!(st.accept_invitation(&u.email), "{} was invited", u.email);
        }
    }

    // Run 2: everyone joined `developers` on accepting; their accounts are found by address.
    let reads = workspace_reads(people + 1, people, 1);
    let writes = memberships as u64;
    let r2 = sync(&s).await;
    assert_state(&r2, "succeeded");
    {
        let st = s.sim.lock();
        let groups = st.groups();
        for (g, members) in &expected {
            let got = groups.get(g).map_or(0, |m| m.len());
            assert_eq!(got, members.len(), "members of {g}");
        }
    }
    row("(b) workspace: run 2, memberships", &data(&d), &r2, reads + writes);
    notes.push(format!(
        "(b) run 2: writes {} ÷ floor {writes} (one call per membership) = {}; reads {} ÷ floor {reads} (invitations 1 + member pages {} + groups 1 + owners 1 + ⌈{people} ÷ {MAX_EMAILS}⌉ email lookups) = {}; stages: {}",
        r2.answered.writes,
        ratio(r2.answered.writes, writes),
        r2.answered.reads,
        pages(people + 1),
        ratio(r2.answered.reads, reads),
        r2.stages()
    ));

    // Run 3: nothing to do; every account is known, so no lookup.
    let reads = workspace_reads(people + 1, 0, 1);
    let r3 = sync(&s).await;
    assert_state(&r3, "succeeded");
    assert_eq!(r3.answered.writes, 0, "a third run writes nothing");
    row("(b) workspace: run 3, nothing changed", &data(&d), &r3, reads);
    notes.push(format!(
        "(b) run 3: {} calls, all reads, ÷ floor {reads} (no lookups: every account is known) = {}; stages: {}",
        r3.answered.calls,
        ratio(r3.answered.calls, reads),
        r3.stages()
    ));
}

/// When the next run starts after a paused one.
#[derive(Clone, Copy)]
enum Scheduler {
    /// Once a full window has passed since the paused run ended (all its calls aged out), as a
    /// scheduler honouring the paused run's "next run after" would.
    AfterWindow,
    /// This long after the paused run ended, whatever the budget.
    Every(Duration),
}

/// (c) A plan larger than the call budget: `people` invitations against 500 calls per 5 s window,
/// the same in Roster's `hourly_budget` and the simulator's meter; `scheduler` starts the runs.
async fn over_budget(people: usize, scheduler: Scheduler) {
    const CALLS: u64 = 500;
    const WINDOW: Duration = Duration::from_secs(5);
    let d = Directory::generate(people, 0, 0);
    let mut state = workspace();
    state.hourly_limit(CALLS, WINDOW);
    let budget = format!("{{ calls = {CALLS}, window_secs = {} }}", WINDOW.as_secs());
    let s = setup(&d, state, Mode::Bitbucket, &budget).await;

    let started = Instant::now();
    let mut runs: Vec<Run> = Vec::new();
    loop {
        let r = sync(&s).await;
        let paused = r.state() == "paused";
        assert!(
            paused || r.state() == "succeeded",
            "run {} ended {}: {}",
            runs.len() + 1,
            r.state(),
            serde_json::to_string(&r.report["summary"]["warnings"]).unwrap()
        );
        runs.push(r);
        if !paused {
            break;
        }
        assert!(runs.len() < 40, "still paused after 40 runs");
        let wait = match scheduler {
            Scheduler::AfterWindow => WINDOW + Duration::from_millis(100),
            Scheduler::Every(d) => d,
        };
        tokio::time::sleep(wait).await;
    }
    let wall = started.elapsed();

    let plan_writes = runs[0].planned();
    let total = runs.iter().fold(Answered::default(), |t, r| Answered {
        calls: t.calls + r.answered.calls,
        reads: t.reads + r.answered.reads,
        writes: t.writes + r.answered.writes,
        throttled: t.throttled + r.answered.throttled,
    });
    let (sent_once, invited) = {
        let st = s.sim.lock();
        let inv = st.invitations();
        (inv.iter().all(|i| i.sent == 1), inv.len())
    };
    let eta = runs[0].eta().clone();
    let runs_predicted = eta["runs_needed"].as_u64().unwrap_or(0);
    let windows = total.calls.div_ceil(CALLS);
    let floor = WINDOW.as_secs_f64() * windows as f64;
    let strict = WINDOW.as_secs_f64() * windows.saturating_sub(1) as f64;

    println!();
    println!(
        "(c) A plan larger than the budget — `ROSTER_BENCH_ONLY=c`: {people} invitations (a plan of {people} writes; each run also reads 4 calls + ⌈{people} ÷ {MAX_EMAILS}⌉ = {} address lookups), Roster's `hourly_budget = {budget}` and the simulator's meter the same (500 calls in any 5 s); {}:",
        people.div_ceil(MAX_EMAILS),
        match scheduler {
            Scheduler::AfterWindow => "the next run starts a window (5 s) after a paused one ends".to_string(),
            Scheduler::Every(d) => format!(
                "the next run starts {} s after a paused one ends, whatever the budget",
                d.as_secs()
            ),
        }
    );
    println!();
    println!(
        "| run | state | wall time | calls Cloud answered | reads | writes | 429s | applied done / failed / not started | ETA at plan time (calls needed, allowed now, runs) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, r) in runs.iter().enumerate() {
        let e = r.eta();
        println!(
            "| {} | {} | {:.2} s | {} | {} | {} | {} | {} / {} / {} | {}, {}, {} |",
            i + 1,
            r.state(),
            r.wall.as_secs_f64(),
            r.answered.calls,
            r.answered.reads,
            r.answered.writes,
            r.answered.throttled,
            r.applied("done"),
            r.applied("failed"),
            r.applied("stopped"),
            e["calls_needed"],
            e["available_now"],
            e["runs_needed"]
        );
    }
    println!();
    println!(
        "- (c) {people}: runs: {} taken, {runs_predicted} predicted by the first plan's ETA ({}).",
        runs.len(),
        serde_json::to_string(&eta).unwrap()
    );
    println!(
        "- (c) {people}: writes: {} ÷ the plan's {plan_writes} = {} ({invited} invitations pending, each sent once: {sent_once}).",
        total.writes,
        ratio(total.writes, plan_writes)
    );
    println!(
        "- (c) {people}: calls, reads included: {} ({} reads + {} writes; {} ÷ the plan's writes); 429s: {}.",
        total.calls,
        total.reads,
        total.writes,
        ratio(total.calls, plan_writes),
        total.throttled
    );
    println!(
        "- (c) {people}: wall time {:.1} s (runs {:.1} s + waits between them); floor: ⌈{} calls ÷ {CALLS}⌉ = {windows} windows × {} s = {floor:.0} s → {:.2}×; the last window's calls can go as soon as it opens, so the strict lower bound is {} × 5 s = {strict:.0} s → {:.2}×.",
        wall.as_secs_f64(),
        runs.iter().map(|r| r.wall.as_secs_f64()).sum::<f64>(),
        total.calls,
        WINDOW.as_secs(),
        wall.as_secs_f64() / floor,
        windows.saturating_sub(1),
        wall.as_secs_f64() / strict.max(f64::MIN_POSITIVE)
    );
    let by_run: BTreeMap<usize, String> = runs.iter().enumerate().map(|(i, r)| (i + 1, r.stages())).collect();
    for (i, st) in by_run {
        println!("- (c) {people}: run {i} stages: {st}");
    }
}
