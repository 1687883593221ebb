//! Serving benchmarks of Roster's Crowd endpoint (`/rest/usermanagement/1` on `roster serve`):
//! what Bitbucket's full synchronisation asks of it, at the size issue 21 names. Prints the
//! Markdown kept in BENCHMARKS.md.
//!
//! - (a) the full user search, `POST /search?entity-type=user&max-results=-1&expand=user,attributes`
//!   with `<null-search-restriction/>`: 100,000 users with attributes, in one answer;
//! - (b) the membership document, `GET /group/membership`: 5,000 groups, 500,000 memberships;
//! - (c) a whole full synchronisation by the Bitbucket-like client (tests/common/crowd_directory.rs):
//!   its five calls, parsed into its cache.
//!
//! Each answer is read as a stream and counted (bytes, entities) without being kept, and must
//! hold every user, group and membership: a truncated answer would make Bitbucket delete what
//! is missing. Memory is the server's peak RSS (`VmHWM`) during the scenario, reset before it
//! through `/proc/<pid>/clear_refs`; `roster serve` runs as its own process, so it is its own.
//!
//! `cargo bench -p roster --bench crowd_serve` (release).
//! `ROSTER_BENCH_SERVER=roster|simulator` (default roster) picks the server: the simulator runs
//! in this process (its memory is then this process's, the client's included).
//! `ROSTER_BENCH_SIZE=full|small` (default full for roster, small for the simulator: 10,000 users,
//! 500 groups, 50,000 memberships). `ROSTER_BENCH_ONLY=users,memberships,sync` picks scenarios;
//! `ROSTER_BENCH_RUNS` (default 3) how often each runs (the table gives the median).
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::crowd_directory::{AttributeSync, CrowdDirectory, Nesting, Settings};
use common::crowd_roster::{RosterCrowd, seed_changes};
use roster_sim::crowd::{CrowdSim, CrowdState, Product};
use roster_sim::directory::Directory;

const APP: &str = "bitbucket";
const SIM_PASSWORD: &str = "bench-password";

/// The server under measurement.
enum Server {
    Roster(RosterCrowd),
    Simulator(CrowdSim),
}

impl Server {
    fn url(&self) -> String {
        match self {
            Server::Roster(r) => r.url.clone(),
            Server::Simulator(s) => s.url(),
        }
    }

    fn password(&self) -> String {
        match self {
            Server::Roster(r) => r.password.clone(),
            Server::Simulator(_) => SIM_PASSWORD.into(),
        }
    }

    /// The process whose memory is measured.
    fn pid(&self) -> u32 {
        match self {
            Server::Roster(r) => r.pid(),
            Server::Simulator(_) => std::process::id(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Roster(_) => "roster serve",
            Server::Simulator(_) => "simulator (in-process)",
        }
    }
}

/// Starts `roster serve` (this build's release binary) over a store seeded with `d` through
/// `Store::served_apply`, as the crowd-directory target writes it, each user with one record
/// (its `roster.records` attribute).
fn start_roster(d: &Directory) -> Server {
    let changes = seed_changes(d);
    let seeding = Instant::now();
    let r = RosterCrowd::start(Path::new(env!("CARGO_BIN_EXE_roster")), APP, |store| {
        for c in &changes {
            store.served_apply(c).expect("the served directory takes the change");
        }
    });
    eprintln!(
        "seeded the served directory ({} changes) and started roster serve in {:.1} s",
        changes.len(),
        seeding.elapsed().as_secs_f64()
    );
    Server::Roster(r)
}

/// Starts the Crowd simulator holding `d`, each user with one `roster.records` value, as Roster
/// serves them.
async fn start_simulator(d: &Directory) -> Server {
    let mut s = CrowdState::from_directory(d, Product::Crowd);
    s.add_application(APP, SIM_PASSWORD, &["127.0.0.0/8"]);
    for u in &d.users {
        s.update_user(&u.username, |x| {
            x.attributes = vec![("roster.records".into(), vec![format!("hr:{}", u.id)])];
        });
    }
    Server::Simulator(CrowdSim::start(s).await)
}

/// A `/proc/<pid>/status` figure in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Makes `VmHWM` start again from the current RSS (Linux: `5` into `clear_refs`).
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Counts patterns in a byte stream read in chunks, without keeping it.
struct Counter {
    patterns: Vec<&'static [u8]>,
    counts: Vec<u64>,
    tail: Vec<u8>,
    bytes: u64,
}

impl Counter {
    fn new(patterns: &[&'static str]) -> Counter {
        Counter {
            patterns: patterns.iter().map(|p| p.as_bytes()).collect(),
            counts: vec![0; patterns.len()],
            tail: Vec::new(),
            bytes: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        let mut buf = std::mem::take(&mut self.tail);
        let seen = buf.len();
        buf.extend_from_slice(chunk);
        for (p, n) in self.patterns.iter().zip(self.counts.iter_mut()) {
            // A match lying wholly in the previous tail was counted with the previous chunk.
            *n += buf
                .windows(p.len())
                .enumerate()
                .filter(|(i, w)| i + p.len() > seen && w == p)
                .count() as u64;
        }
        let keep = self.patterns.iter().map(|p| p.len()).max().unwrap_or(1) - 1;
        self.tail = buf[buf.len().saturating_sub(keep)..].to_vec();
    }
}

/// One timed request.
struct Measured {
    wall: Duration,
    first_byte: Duration,
    bytes: u64,
    counts: Vec<u64>,
}

async fn measure(
    http: &reqwest::Client,
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<&'static str>,
    patterns: &[&'static str],
) -> Measured {
    let started = Instant::now();
    let mut req = http
        .request(method, format!("{}{}{path}", s.url(), common::crowd_directory::API))
        .basic_auth(APP, Some(s.password()))
        .header("Accept", "application/xml")
        .header("X-Atlassian-Token", "no-check");
    if let Some(b) = body {
        req = req.header("Content-Type", "application/xml; charset=UTF-8").body(b);
    }
    let mut resp = req.send().await.expect("the server answers");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let first_byte = started.elapsed();
    let mut counter = Counter::new(patterns);
    while let Some(chunk) = resp.chunk().await.expect("the body reads") {
        counter.feed(&chunk);
    }
    Measured {
        wall: started.elapsed(),
        first_byte,
        bytes: counter.bytes,
        counts: counter.counts,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs `f` `runs` times against `s`, resetting the server's peak first; prints the row.
async fn scenario<F, Fut>(name: &str, size: &str, s: &Server, runs: usize, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (Duration, Option<Duration>, u64, String)>,
{
    let pid = s.pid();
    let before = status_mib(pid, "VmRSS:").unwrap_or(0.0);
    let reset = reset_peak(pid);
    let mut walls = Vec::new();
    let mut firsts = Vec::new();
    let mut last = (0, String::new());
    for _ in 0..runs {
        let (wall, first, bytes, what) = f().await;
        walls.push(wall);
        if let Some(fb) = first {
            firsts.push(fb);
        }
        last = (bytes, what);
    }
    let peak = status_mib(pid, "VmHWM:").unwrap_or(0.0);
    let first = if firsts.is_empty() {
        "–".to_string()
    } else {
        format!("{:.2} s", median(firsts).as_secs_f64())
    };
    let bytes = if last.0 == 0 {
        "–".to_string()
    } else {
        format!("{:.1} MiB", mib(last.0))
    };
    println!(
        "| {name} | {} | {size} | {:.2} s | {first} | {bytes} | {} | {before:.0} MiB | {peak:.0} MiB{} |",
        s.name(),
        median(walls).as_secs_f64(),
        last.1,
        if reset { "" } else { " (peak not reset: since start)" },
    );
}

#[tokio::main]
async fn main() {
    let server = std::env::var("ROSTER_BENCH_SERVER").unwrap_or_else(|_| "roster".into());
    let small = match std::env::var("ROSTER_BENCH_SIZE").as_deref() {
        Ok("small") => true,
        Ok("full") => false,
        _ => server == "simulator",
    };
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "users,memberships,sync".into());
    let runs: usize = std::env::var("ROSTER_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    // Issue 21's size: 100,000 users; 5,000 groups with 500,000 direct memberships (5 a user).
    let d = if small {
        Directory::generate(10_000, 500, 5)
    } else {
        Directory::generate(100_000, 5_000, 5)
    };
    let users = d.users.len() as u64;
    let groups = d.groups.len() as u64;
    let memberships = d.memberships.iter().filter(|m| !m.member_is_group).count() as u64;
    let size = format!("{users} users, {groups} groups, {memberships} memberships");
    let s = match server.as_str() {
        "simulator" => start_simulator(&d).await,
        "roster" => tokio::task::spawn_blocking(move || start_roster(&d)).await.unwrap(),
        other => panic!("ROSTER_BENCH_SERVER={other}: roster or simulator"),
    };
    let http = reqwest::Client::new();

    println!(
        "| scenario | server | directory | wall time (median) | first byte | bytes | entities | server RSS before | server peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    if only.contains("users") {
        scenario("(a) full user search with attributes", &size, &s, runs, || async {
            let m = measure(
                &http,
                &s,
                reqwest::Method::POST,
                "/search?entity-type=user&start-index=0&max-results=-1&expand=user%2Cattributes",
                Some("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><null-search-restriction/>"),
                &["<user name=", "<attribute name=\"roster.records\""],
            )
            .await;
            assert_eq!(
                m.counts[0], users,
                "the search answered {} of {users} users",
                m.counts[0]
            );
            assert_eq!(
                m.counts[1], users,
                "{} of {users} users have their records",
                m.counts[1]
            );
            (m.wall, Some(m.first_byte), m.bytes, format!("{} users", m.counts[0]))
        })
        .await;
    }
    if only.contains("memberships") {
        scenario("(b) membership document", &size, &s, runs, || async {
            let m = measure(
                &http,
                &s,
                reqwest::Method::GET,
                "/group/membership",
                None,
                &["<membership ", "<user name="],
            )
            .await;
            assert_eq!(
                m.counts[0], groups,
                "the document has {} of {groups} groups",
                m.counts[0]
            );
            assert_eq!(
                m.counts[1], memberships,
                "the document has {} of {memberships} memberships",
                m.counts[1]
            );
            (
                m.wall,
                Some(m.first_byte),
                m.bytes,
                format!("{} groups, {} memberships", m.counts[0], m.counts[1]),
            )
        })
        .await;
    }
    if only.contains("sync") {
        scenario(
            "(c) Bitbucket full synchronisation (5 calls, parsed)",
            &size,
            &s,
            runs,
            || async {
                let mut dir = CrowdDirectory::new(
                    &s.url(),
                    APP,
                    &s.password(),
                    Settings {
                        user_attributes: AttributeSync::On,
                        group_attributes: AttributeSync::Off,
                        nesting: Nesting::Nested,
                    },
                );
                let started = Instant::now();
                dir.full_sync().await.expect("the full synchronisation succeeds");
                let wall = started.elapsed();
                assert_eq!(dir.cache.users.len() as u64, users);
                assert_eq!(dir.cache.groups.len() as u64, groups);
                assert_eq!(dir.cache.members.len() as u64, memberships);
                (
                    wall,
                    None,
                    0,
                    format!("{} calls, {} users cached", dir.calls().len(), dir.cache.users.len()),
                )
            },
        )
        .await;
    }
}
