//! Crash trials: `roster sync` SIGKILLed at random points of fetch, plan and apply, again and
//! again, over a directory that changes between kills. After every kill the database passes
//! `PRAGMA integrity_check` and the next command marks the killed run `interrupted`; every few
//! kills (and at the end) a run to completion must reach exactly what the directory says, with
//! no duplicate account and no lost membership, and a further run must plan nothing.
//!
//! `small_crash_trial` (3 kills) runs with `./dev test`; `crash_trial` (50 kills over 2,000
//! users) is ignored by `cargo test` and run by `.ci/run`. `ROSTER_CRASH_SEED=N` replays a trial.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use crate::common;

use common::Configured;
use common::world::{World, assert_bitbucket_matches, bitbucket};
use roster_sim::directory::Directory;

/// A small, seeded generator (splitmix64): a trial replays from its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// The newest run's id (0: none yet).
fn newest_run(c: &rusqlite::Connection) -> i64 {
    c.query_row("SELECT COALESCE(MAX(id), 0) FROM runs", [], |r| r.get(0))
        .unwrap()
}

/// Where a run stood when it was killed, read from what it left in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Before the run was recorded (the process was starting, loading plugins).
    Start,
    /// Reading the source into staging.
    Fetch,
    /// Fetch promoted; transforming, merging, reading Bitbucket, planning, guarding.
    Plan,
    /// Writing to Bitbucket (some operation has a result).
    Apply,
}

const TARGETS: [Phase; 3] = [Phase::Fetch, Phase::Plan, Phase::Apply];

struct Trial {
    w: World,
    base: Directory,
    rng: Rng,
    /// Length of each phase (ms) in the last run that completed.
    span: BTreeMap<Phase, u64>,
}

impl Trial {
    fn db(&self) -> PathBuf {
        self.w.rt.dir.path().join("roster.db")
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.db()).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    /// `roster ARGS…` over the world's data folder, as an operator would run it.
    fn roster(&self, args: &[&str]) -> Command {
        use base64::Engine as _;
        let config = self.w.rt.dir.path().join("roster.toml");
        std::fs::write(&config, self.w.config_text()).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_roster"));
        c.arg("--data-dir")
            .arg(self.w.rt.dir.path())
            .arg("--plugins-dir")
            .arg(self.w.rt.plugins_dir())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("ROSTER_LOG", "error")
            .env(
                "ROSTER_SECRET_KEY",
                base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
            );
        c
    }

    /// The export changes a little before each run: about 3 % of the people are gone from it
    /// (each comes back later), and about 2 % of the memberships of those who stay, so every
    /// run has deprovisioning, restoring and membership changes to apply.
    fn vary(&mut self) -> Directory {
        let mut d = self.base.clone();
        let gone: BTreeSet<String> = d
            .users
            .iter()
            .filter(|_| self.rng.below(100) < 3)
            .map(|u| u.id.clone())
            .collect();
        d.users.retain(|u| !gone.contains(&u.id));
        let rng = &mut self.rng;
        d.memberships
            .retain(|m| !gone.contains(&m.member) && (m.member_is_group || rng.below(100) >= 2));
        self.w.write(&d);
        d
    }

    fn newest_run(&self) -> i64 {
        newest_run(&self.sqlite())
    }

    /// Where run `id` (if it was recorded) stands, from its rows.
    fn phase_of(&self, c: &rusqlite::Connection, id: i64) -> Phase {
        let count = |sql: &str| -> i64 { c.query_row(sql, [id], |r| r.get(0)).unwrap() };
        let started: Option<i64> = c
            .query_row("SELECT started_at FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .ok();
        let Some(started) = started else {
            return Phase::Start;
        };
        if count("SELECT count(*) FROM results WHERE run_id = ?1") > 0 {
            return Phase::Apply;
        }
        if count("SELECT count(*) FROM plans WHERE run_id = ?1") > 0 {
            return Phase::Plan;
        }
        let promoted: i64 = c
            .query_row(
                "SELECT count(*) FROM cursors WHERE source = 'hr' AND updated_at >= ?1",
                [started],
                |r| r.get(0),
            )
            .unwrap();
        if promoted > 0 { Phase::Plan } else { Phase::Fetch }
    }

    /// Starts `roster sync`, waits until it reaches `aim`, then kills it after a random part of
    /// that phase's usual length. Returns the run it killed (0: killed before recording one)
    /// and where it was, or none when the run ended first.
    async fn kill_during(&mut self, aim: Phase) -> Option<(i64, Phase)> {
        let before = self.newest_run();
        let out = self.w.rt.dir.path().join("killed-run.json");
        let mut child: Child = self
            .roster(&["sync", "--json"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let poll = self.sqlite();
        let started = Instant::now();
        let delay = Duration::from_millis(self.rng.below(self.span[&aim].max(20)));
        let mut reached: Option<Instant> = None;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "roster sync failed on its own: {status}");
                let report = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
                self.learn(&report);
                return None;
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "the run never reached {aim:?}"
            );
            let id = newest_run(&poll);
            if reached.is_none() && id > before && self.phase_of(&poll, id) >= aim {
                reached = Some(Instant::now());
            }
            if reached.is_some_and(|at| at.elapsed() >= delay) {
                child.kill().unwrap();
                child.wait().unwrap();
                let id = self.newest_run();
                let id = if id > before { id } else { 0 };
                // The kill can land after the run recorded its end, while the process was
                // printing its report: that run ended before its kill, as if it had exited.
                let ended: Option<String> = self
                    .sqlite()
                    .query_row("SELECT state FROM runs WHERE id = ?1", [id], |r| r.get(0))
                    .ok()
                    .filter(|state: &String| state != "running");
                if ended.is_some() {
                    return None;
                }
                return Some((id, self.phase_of(&self.sqlite(), id)));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Takes each phase's length from a completed run's stage times: the next kills aim
    /// within runs like it.
    fn learn(&mut self, report: &serde_json::Value) {
        let stage = |k: &str| report["summary"]["stage_ms"][k].as_u64().unwrap_or(0);
        self.span.insert(Phase::Fetch, stage("fetch"));
        self.span.insert(
            Phase::Plan,
            stage("transform") + stage("merge") + stage("read") + stage("plan") + stage("guard"),
        );
        self.span.insert(Phase::Apply, stage("apply"));
    }

    /// `roster sync --json` to completion; its report.
    fn sync_to_end(&mut self) -> serde_json::Value {
        let out = self.roster(&["sync", "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        self.learn(&report);
        report
    }

    /// A run to completion reaches exactly `d`: every expected user and membership, no
    /// duplicate or stray account, nothing failed; a further run plans nothing.
    fn converge(&mut self, d: &Directory) {
        let r = self.sync_to_end();
        assert_eq!(r["state"], "succeeded", "{r:#}");
        assert_eq!(r["summary"]["applied"]["failed"], 0, "{r:#}");
        assert_eq!(
            r["summary"]["collisions"].as_array().map_or(0, Vec::len),
            0,
            "accounts a killed run created are Roster's own: {r:#}"
        );
        assert_bitbucket_matches(&self.w.sim, d);
        let known: BTreeSet<String> = self.base.users.iter().map(|u| u.username.to_lowercase()).collect();
        let users: Vec<String> = self.w.sim.lock().users().keys().cloned().collect();
        let stray: Vec<&String> = users.iter().filter(|u| *u != "admin" && !known.contains(*u)).collect();
        assert!(stray.is_empty(), "accounts nobody asked for: {stray:?}");
        assert!(users.len() <= known.len() + 1, "{} accounts", users.len());
        let again = self.sync_to_end();
        assert_eq!(again["state"], "succeeded");
        assert!(
            again["summary"]["planned"].as_object().is_none_or(|p| p.is_empty()),
            "a run after convergence planned {}",
            again["summary"]["planned"]
        );
    }
}

/// `kills` kills over `users` users in `groups` groups, converging every `converge_every`.
async fn trial(kills: usize, converge_every: usize, users: usize, groups: usize) {
    let seed = std::env::var("ROSTER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!(
        "crash trial: seed {seed} (ROSTER_CRASH_SEED={seed} replays it); {kills} kills, {users} users, {groups} groups"
    );
    let base = Directory::generate(users, groups, 3);
    let mut w = World::new(&base, bitbucket()).await;
    // The export changes between kills by design: the guard would hold such plans otherwise.
    w.target_extra = concat!(
        "budget = { per_second = 1000, burst = 1000 }\n",
        "[target.threshold]\ncount = 1000000\npercent = 100\n",
        "people_losing_memberships = { count = 1000000, percent = 100, floor = 5 }\n",
        "memberships_removed = 1000000\ngroup_members_lost = { percent = 100, floor = 10 }\n",
        "renames = { count = 1000000, percent = 100, floor = 5 }\n",
        "email_changes = { count = 1000000, percent = 100, floor = 5 }\n",
        "[target.threshold.window]\ndays = 1\ndeprovisions = 1000000\nmemberships_removed = 1000000\n",
        "renames = 1000000\nemail_changes = 1000000\n",
    )
    .into();
    let mut t = Trial {
        w,
        base,
        rng: Rng(seed),
        span: TARGETS.iter().map(|p| (*p, 0)).collect(),
    };
    // First guesses; each completed run's stage times replace them.
    t.span.insert(Phase::Fetch, 500);
    t.span.insert(Phase::Plan, 500);
    t.span.insert(Phase::Apply, 2000);

    let mut per_phase: BTreeMap<Phase, usize> = BTreeMap::new();
    let (mut integrity_ok, mut interrupted_ok, mut converged, mut ended_first) = (0, 0, 0, 0);
    let mut d = t.vary();
    let started = Instant::now();
    let mut done = 0;
    while done < kills {
        let aim = TARGETS[t.rng.below(3) as usize];
        let Some((run, phase)) = t.kill_during(aim).await else {
            // The run ended before the kill: it changed things; the next one gets a new export.
            ended_first += 1;
            d = t.vary();
            continue;
        };
        done += 1;
        *per_phase.entry(phase).or_default() += 1;

        let check: String = t
            .sqlite()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "integrity after kill {done} ({phase:?}, run {run})");
        integrity_ok += 1;

        if run > 0 {
            // The next command to open the store (here `roster runs show`) closes the run.
            let out = t.roster(&["runs", "show", &run.to_string()]).output().unwrap();
            let shown: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            assert_eq!(
                shown["state"], "interrupted",
                "run {run} killed during {phase:?}: {shown:#}"
            );
            assert!(
                shown["finished_at"]
                    .as_str()
                    .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
                "{shown:#}"
            );
            let why = shown["error"].as_str().unwrap_or_default();
            assert!(why.contains("ended before the run did"), "{why}");
            interrupted_ok += 1;
        }
        let running: i64 = t
            .sqlite()
            .query_row("SELECT count(*) FROM runs WHERE state = 'running'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(running, 0, "no run stays `running` after a restart");

        if done % converge_every == 0 || done == kills {
            t.converge(&d);
            converged += 1;
        }
        d = t.vary();
    }
    let staged: i64 = t
        .sqlite()
        .query_row(
            "SELECT (SELECT count(*) FROM staging_users) + (SELECT count(*) FROM staging_memberships)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(staged, 0, "killed fetches leave no staging rows behind");
    println!(
        "crash trial: {done} kills in {:.0} s — per phase {per_phase:?}; integrity ok {integrity_ok}/{done}; \
         marked interrupted {interrupted_ok}/{}; converged {converged}/{converged}; runs that ended before their kill {ended_first}; \
         phase lengths last seen (ms) {:?}",
        started.elapsed().as_secs_f64(),
        done - per_phase.get(&Phase::Start).copied().unwrap_or(0),
        t.span
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_crash_trial() {
    trial(3, 3, 300, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "50 SIGKILLs of a 2,000-user sync take minutes; run by .ci/run"]
async fn crash_trial() {
    trial(50, 10, 2000, 200).await;
}
