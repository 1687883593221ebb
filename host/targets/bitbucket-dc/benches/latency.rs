//! Roster against a Bitbucket that answers at a real server's pace (issue 19): the Bitbucket
//! simulator with a fixed latency (plus 10 % jitter) per call and, for the adaptive runs, a
//! worker pool smaller than Roster's default concurrency. The target's two stages that talk to
//! Bitbucket are measured as a run drives them — the apply stage of an initial sync (through
//! the engine's `apply`, the store recording every operation) and the read of a resync with
//! nothing changed — and each against its floor: calls × latency ÷ the requests in flight the
//! server sustains (Roster's limit, or the server's pool when that is smaller).
//!
//! `cargo bench -p roster-target-bitbucket-dc --bench latency`; `ROSTER_BENCH_LATENCY_MS=20,50`
//! picks the latencies, `ROSTER_BENCH_ONLY=default,adaptive,fixed-over` the configurations,
//! `ROSTER_BENCH_SIZE=users,groups,memberships` the directory (10000,1000,200000).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use roster_engine::apply::{ApplyContext, apply};
use roster_engine::{Op, Patience, PlannedOp, Quiet, ReadScope, Target, TargetConfig};
use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::kit::{Capacity, PaceSettings};
use roster_store::Store;
use roster_store::crypto::Key;
use roster_target_bitbucket_dc::BitbucketDcTarget;
use serde_json::{Value, json};

/// The server's pool in the adaptive runs: below Roster's default of 8.
const POOL: usize = 4;
/// Requests that may queue for it before it answers 503.
const QUEUE: usize = 2;
/// Users per add-users call (Roster's default `batch_size`).
const BATCH: usize = 500;
const DEFAULT_GROUP: &str = "bitbucket-users";

struct Size {
    users: usize,
    groups: usize,
    memberships: usize,
}

fn size() -> Size {
    let v: Vec<usize> = std::env::var("ROSTER_BENCH_SIZE")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    match v.as_slice() {
        [u, g, m] => Size {
            users: *u,
            groups: *g,
            memberships: *m,
        },
        _ => Size {
            users: 10_000,
            groups: 1_000,
            memberships: 200_000,
        },
    }
}

/// The initial sync's plan as the planner makes it for an empty Bitbucket: the groups, the
/// accounts, then each group's members in calls of 500 (every user in the licensing group).
fn plan(size: &Size) -> Vec<PlannedOp> {
    let op = |op| PlannedOp {
        op,
        reason: "bench".into(),
    };
    let user = |i: usize| format!("user{i:06}");
    let mut ops: Vec<PlannedOp> = std::iter::once(DEFAULT_GROUP.to_string())
        .chain((0..size.groups).map(|g| format!("group{g:05}")))
        .map(|group| op(Op::CreateGroup { group }))
        .collect();
    ops.extend((0..size.users).map(|i| {
        op(Op::CreateUser {
            user: user(i),
            display_name: format!("User {i}"),
            email: format!("{}@example.com", user(i)),
            records: vec![("hr".into(), i.to_string())],
        })
    }));
    let per_user = size.memberships / size.users.max(1);
    let mut members: Vec<Vec<String>> = vec![Vec::new(); size.groups];
    for i in 0..size.users {
        for k in 0..per_user {
            // Spread evenly, no user twice in a group.
            members[(i * 7 + k * (size.groups / per_user.max(1)).max(1)) % size.groups].push(user(i));
        }
    }
    let everyone: Vec<String> = (0..size.users).map(user).collect();
    let adds = std::iter::once((DEFAULT_GROUP.to_string(), everyone)).chain(
        members
            .into_iter()
            .enumerate()
            .map(|(g, m)| (format!("group{g:05}"), m)),
    );
    for (group, mut m) in adds {
        m.sort();
        m.dedup();
        for chunk in m.chunks(BATCH) {
            ops.push(op(Op::AddMembers {
                group: group.clone(),
                users: chunk.to_vec(),
            }));
        }
    }
    ops
}

fn target(sim: &BitbucketSim, concurrency: &Value) -> BitbucketDcTarget {
    let config: TargetConfig = serde_json::from_value(json!({
        "url": sim.url(),
        "username": "admin",
        "password": {"value": "password"},
        "concurrency": concurrency,
        // Bitbucket's own rate limit is not what is measured here (issue 3's (e) is).
        "budget": {"per_second": 1000000, "burst": 1000000},
    }))
    .expect("bench target config");
    config.validate_policy().expect("bench target policy");
    BitbucketDcTarget::new(&config, Path::new("."), Patience::Run).expect("bench target")
}

struct Config {
    name: &'static str,
    concurrency: Value,
    capacity: Option<Capacity>,
}

fn configs() -> Vec<Config> {
    let only = std::env::var("ROSTER_BENCH_ONLY").unwrap_or_else(|_| "default,adaptive".into());
    let capacity = Some(Capacity {
        pool: POOL,
        queue: QUEUE,
    });
    [
        Config {
            name: "default",
            concurrency: json!(8),
            capacity: None,
        },
        Config {
            name: "adaptive",
            concurrency: json!("adaptive"),
            capacity,
        },
        Config {
            name: "fixed-over",
            concurrency: json!(8),
            capacity,
        },
    ]
    .into_iter()
    .filter(|c| only.split(',').any(|o| o.trim() == c.name))
    .collect()
}

struct Measured {
    wall: Duration,
    calls: u64,
    floor: Duration,
    overloaded: u64,
    peak: usize,
    settled: String,
    failed: usize,
}

fn print(stage: &str, latency: u64, c: &Config, m: &Measured) {
    let server = match c.capacity {
        Some(cap) => format!("pool {}, queue {}", cap.pool, cap.queue),
        None => "unlimited".into(),
    };
    println!(
        "| {stage} | {latency} ms | {} ({}) | {server} | {:.2} s | {} | {:.2} s | **{:.3}×** | {} | {} | {} | {} |",
        c.name,
        c.concurrency,
        m.wall.as_secs_f64(),
        m.calls,
        m.floor.as_secs_f64(),
        m.wall.as_secs_f64() / m.floor.as_secs_f64(),
        m.overloaded,
        m.peak,
        m.settled,
        m.failed,
    );
}

/// The requests in flight the server sustains: Roster's limit, or the server's pool when that
/// is smaller (an adaptive limit may go up to 32).
fn sustained(c: &Config) -> usize {
    let roster = c.concurrency.as_u64().map_or(32, |n| n as usize);
    c.capacity.map_or(roster, |cap| cap.pool.min(roster))
}

fn settled(t: &BitbucketDcTarget) -> String {
    match t.calls().concurrency {
        Some(s) => format!("{} ({}–{}, {} back-offs)", s.limit, s.lowest, s.highest, s.backoffs),
        None => "fixed".into(),
    }
}

async fn initial_sync(size: &Size, latency: u64, c: &Config, dir: &Path) -> (BitbucketSim, Measured) {
    let sim = BitbucketSim::start(BbState::new()).await;
    let pace = PaceSettings {
        latency: Duration::from_millis(latency),
        jitter: Duration::from_millis(latency / 10),
        capacity: c.capacity,
    };
    sim.pace().set(pace);
    let t = target(&sim, &c.concurrency);
    let ops = plan(size);
    let path = dir.join(format!("bench-{}-{latency}.db", c.name));
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&path, Key::from_bytes([9; 32])).expect("bench store");
    let ctx = ApplyContext {
        target: &t,
        store: &store,
        target_id: "bitbucket",
        run_id: 1,
        plan_id: "bench",
        concurrency: c.concurrency.as_u64().map_or(32, |n| n as usize),
    };
    let began = Instant::now();
    let out = apply(&ctx, &ops, &Quiet).await;
    let wall = began.elapsed();
    let calls: u64 = t.calls().by_endpoint.values().sum();
    let floor = Duration::from_millis(latency) * (calls as u32) / sustained(c) as u32;
    let counts = sim.pace().counts();
    let m = Measured {
        wall,
        calls,
        floor,
        overloaded: counts.overloaded,
        peak: counts.peak_in_flight,
        settled: settled(&t),
        failed: out.applied.failed + out.applied.stopped,
    };
    assert_eq!(out.applied.done, ops.len(), "{:?}", out.stopped_by);
    (sim, m)
}

async fn resync_read(sim: &BitbucketSim, latency: u64, c: &Config) -> Measured {
    sim.pace().reset_counts();
    let t = target(sim, &c.concurrency);
    let groups: BTreeSet<String> = sim.lock().groups().keys().cloned().collect();
    let people = Default::default();
    let began = Instant::now();
    let read = t
        .read(&ReadScope {
            groups: &groups,
            people: &people,
            concurrency: c.concurrency.as_u64().map_or(32, |n| n as usize),
        })
        .await
        .expect("resync read");
    let wall = began.elapsed();
    assert_eq!(read.members.len(), groups.len());
    let calls: u64 = t.calls().by_endpoint.values().sum();
    let counts = sim.pace().counts();
    Measured {
        wall,
        calls,
        floor: Duration::from_millis(latency) * (calls as u32) / sustained(c) as u32,
        overloaded: counts.overloaded,
        peak: counts.peak_in_flight,
        settled: settled(&t),
        failed: 0,
    }
}

fn main() {
    let latencies: Vec<u64> = std::env::var("ROSTER_BENCH_LATENCY_MS")
        .unwrap_or_else(|_| "20,50".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let size = size();
    let dir = std::env::temp_dir().join(format!("roster-latency-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench folder");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{} users, {} groups, {} memberships; jitter 10 % of the latency",
        size.users, size.groups, size.memberships
    );
    println!(
        "| stage | latency | Roster's concurrency | server capacity | wall | calls | floor | wall ÷ floor | 503s (all retried) | peak in flight at the server | limit settled | not done |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    rt.block_on(async {
        for &latency in &latencies {
            for c in configs() {
                let (sim, m) = initial_sync(&size, latency, &c, &dir).await;
                print("initial sync: apply", latency, &c, &m);
                let m = resync_read(&sim, latency, &c).await;
                print("resync, nothing changed: read", latency, &c, &m);
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
