//! Roster against a Bitbucket that answers at a real server's pace (the simulator's latency and
//! capacity): the configured number of requests in flight at every stage, order kept with many
//! in flight, every 503 retried, and an adaptive limit that backs off and says where it settled.

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

fn target(sim: &BitbucketSim, concurrency: Value) -> BitbucketDcTarget {
    let config: TargetConfig = serde_json::from_value(json!({
        "url": sim.url(),
        "username": "admin",
        "password": {"value": "password"},
        "concurrency": concurrency,
        "budget": {"per_second": 100000, "burst": 100000},
    }))
    .unwrap();
    config.validate_policy().unwrap();
    BitbucketDcTarget::new(&config, Path::new("."), Patience::Run).unwrap()
}

fn paced(latency_ms: u64, capacity: Option<Capacity>) -> PaceSettings {
    PaceSettings {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::ZERO,
        capacity,
    }
}

fn op(op: Op) -> PlannedOp {
    PlannedOp {
        op,
        reason: "test".into(),
    }
}

fn create(user: &str) -> PlannedOp {
    op(Op::CreateUser {
        user: user.into(),
        display_name: user.to_uppercase(),
        email: format!("{user}@example.com"),
        records: vec![("hr".into(), user.into())],
    })
}

/// Applies `ops` through the engine's apply stage; its counts of done and failed operations.
async fn run(target: &BitbucketDcTarget, ops: &[PlannedOp], concurrency: usize) -> (usize, usize) {
    let store = Store::memory(Key::from_bytes([7; 32])).unwrap();
    let ctx = ApplyContext {
        target,
        store: &store,
        target_id: "bitbucket",
        run_id: 1,
        plan_id: "plan",
        concurrency,
    };
    let out = apply(&ctx, ops, &Quiet).await;
    assert!(out.stopped_by.is_none(), "{:?}", out.stopped_by);
    (out.applied.done, out.applied.failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_in_flight_keep_the_order_a_plan_needs() {
    let mut state = BbState::new();
    state.add_user("old-name", "Old", "old@example.com", true);
    let sim = BitbucketSim::start(state).await;
    // A wide jitter: a call sent later is often answered first, as on a real server.
    sim.pace().set(PaceSettings {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(80),
        capacity: None,
    });
    let t = target(&sim, json!(16));
    // Groups, a rename, creates, then additions that name the new name and the new accounts:
    // with 16 in flight across stages, each addition must still come after what it names.
    let mut ops = vec![
        op(Op::CreateGroup { group: "g0".into() }),
        op(Op::CreateGroup { group: "g1".into() }),
    ];
    ops.push(op(Op::RenameUser {
        from: "old-name".into(),
        to: "new-name".into(),
        records: vec![("hr".into(), "old".into())],
    }));
    let users: Vec<String> = (0..64).map(|i| format!("u{i:02}")).collect();
    ops.extend(users.iter().map(|u| create(u)));
    ops.push(op(Op::UpdateUser {
        user: "u63".into(),
        display_name: "Renamed Display".into(),
        email: "u63@example.com".into(),
        old_display_name: "U63".into(),
        old_email: Some("u63@example.com".into()),
    }));
    for (g, half) in [("g0", &users[..32]), ("g1", &users[32..])] {
        let mut members: Vec<String> = half.to_vec();
        members.push("new-name".into());
        ops.push(op(Op::AddMembers {
            group: g.into(),
            users: members,
        }));
    }
    let (done, failed) = run(&t, &ops, 16).await;
    assert_eq!((done, failed), (ops.len(), 0), "an operation ran before what it needs");
    let s = sim.lock();
    assert_eq!(s.groups()["g0"].len(), 33);
    assert_eq!(s.groups()["g1"].len(), 33);
    assert!(s.groups()["g1"].contains("new-name"));
    assert_eq!(s.users()["u63"].display_name, "Renamed Display");
    drop(s);
    // Bitbucket's add-users is all or nothing: one sent before an account existed answers 404
    // (and the target then adds one by one), which would hide a broken order from the counts.
    let early: Vec<String> = sim
        .log()
        .entries()
        .into_iter()
        .filter(|l| l.status.is_some_and(|s| s.as_u16() == 404))
        .map(|l| format!("{} {}", l.method, l.target))
        .collect();
    assert!(early.is_empty(), "sent before what they need: {early:?}");
    assert_eq!(sim.pace().counts().peak_in_flight, 16, "the limit was not kept full");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_read_keeps_every_place_in_flight() {
    let mut state = BbState::new();
    for i in 0..2_500 {
        state.add_user(&format!("p{i:04}"), "P", &format!("p{i}@example.com"), true);
    }
    let mut groups = BTreeSet::new();
    for g in 0..96 {
        let name = format!("team{g:02}");
        state.add_group(&name, &["p0001", "p0002"]);
        groups.insert(name);
    }
    let sim = BitbucketSim::start(state).await;
    sim.pace().set(paced(30, None));
    let t = target(&sim, json!(8));
    let people = Default::default();
    let began = Instant::now();
    let read = t
        .read(&ReadScope {
            groups: &groups,
            people: &people,
            concurrency: 8,
        })
        .await
        .unwrap();
    let took = began.elapsed();
    assert_eq!(read.members.len(), 96);
    assert_eq!(read.users.len(), 2_501);
    // 3 users pages + groups + 2 permission listings + licence + 96 member listings = 103 calls:
    // at 8 in flight the floor is 13 round trips of 30 ms; stage by stage it took 16 or more.
    let calls: u64 = t.calls().by_endpoint.values().sum();
    assert_eq!(calls, 103);
    assert_eq!(sim.pace().counts().peak_in_flight, 8);
    let floor = Duration::from_millis(30) * (calls as u32).div_ceil(8);
    assert!(took < floor * 2, "read took {took:?} against a floor of {floor:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_capacity_every_503_is_retried() {
    let sim = BitbucketSim::start(BbState::new()).await;
    // A queue of 2 keeps the overload to a third of the requests, so retries, not luck on a
    // loaded machine, decide the outcome.
    sim.pace().set(paced(20, Some(Capacity { pool: 2, queue: 2 })));
    let t = target(&sim, json!(6));
    let ops: Vec<PlannedOp> = (0..24).map(|i| create(&format!("c{i:02}"))).collect();
    let (done, failed) = run(&t, &ops, 6).await;
    assert_eq!((done, failed), (24, 0));
    assert!(
        sim.pace().counts().overloaded > 0,
        "the server was never past its capacity"
    );
    assert_eq!(sim.lock().users().len(), 25);
    assert_eq!(t.calls().concurrency, None, "a fixed limit reports no settling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adaptive_limit_backs_off_on_503_and_the_summary_says_where_it_settled() {
    let sim = BitbucketSim::start(BbState::new()).await;
    sim.pace().set(paced(20, Some(Capacity { pool: 3, queue: 1 })));
    let t = target(&sim, json!({"adaptive": {"initial": 8, "max": 16}}));
    let ops: Vec<PlannedOp> = (0..160).map(|i| create(&format!("a{i:03}"))).collect();
    let (done, failed) = run(&t, &ops, 16).await;
    assert_eq!((done, failed), (160, 0), "a 503 was left unretried");
    let settled = t
        .calls()
        .concurrency
        .expect("an adaptive limit reports where it settled");
    assert!(settled.backoffs > 0, "{settled:?}");
    assert!(
        settled.limit < 8 && settled.lowest < 8,
        "it should settle below its start of 8 at a server of 3 + 1: {settled:?}"
    );
    assert_eq!(sim.lock().users().len(), 161);
}
