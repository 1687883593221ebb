//! Single-user sync (provision on demand) end to end: `POST /api/v1/users/sync` for a person who
//! just appeared in Entra ID, against the Graph and Bitbucket simulators after a full sync of the
//! tenant; prints the Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench single_user` (release). Everything runs in this process: the
//! simulators, Roster's service and API; the time is the HTTP call's, end to end.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::api::ApiWorld;
use common::entra::{EntraWorld, tenant};
use common::world::bitbucket;
use roster_sim::directory::Directory;
use roster_sim::graph::GraphUser;
use serde_json::json;

const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn measure(users: usize, groups: usize) -> (Duration, Duration, serde_json::Value) {
    let d = Directory::generate(users, groups, 3);
    let mut w = EntraWorld::new(tenant(&d), bitbucket()).await;
    // The first full sync only sets the scene: it need not respect a production rate limit.
    w.target_extra = "budget = { per_second = 100000.0, burst = 100000 }".into();
    w.source.source = "budget = { per_second = 1000000, burst = 1000 }".into();
    let api = ApiWorld::start(w, "").await;
    let (_, s) = api.post("/api/v1/runs", &api.operator, json!({})).await;
    let first = api
        .wait_run_for(s["run_id"].as_i64().unwrap(), Duration::from_secs(1800))
        .await;
    assert_eq!(first["state"], "succeeded", "{first}");
    let mut times = Vec::new();
    let mut last = serde_json::Value::Null;
    for i in 0..ROUNDS {
        let name = format!("newhire{i}");
        let id = api.world.idp.lock().add_user(GraphUser {
            user_principal_name: format!("{name}@contoso.example"),
            mail: Some(format!("{name}@contoso.example")),
            display_name: format!("New Hire {i}"),
            account_enabled: true,
            user_type: "Member".into(),
            ..GraphUser::default()
        });
        let group = d.groups[(i * 3) % d.groups.len()].id.clone();
        api.world.idp.lock().add_member(&group, &id);
        let started = Instant::now();
        let (status, run) = api
            .post("/api/v1/users/sync", &api.operator, json!({"user": name}))
            .await;
        times.push(started.elapsed());
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["state"], "succeeded", "{run}");
        assert!(api.world.bb.lock().users().contains_key(&name));
        last = run;
    }
    let full = Duration::from_millis(
        first["finished_at"].as_i64().unwrap() as u64 - first["started_at"].as_i64().unwrap() as u64,
    );
    (median(times), full, last)
}

#[tokio::main]
async fn main() {
    let _ = common::plugins_out();
    println!(
        "| tenant | full sync first | single-user sync, end to end (median of {ROUNDS}) | stages of the last one | Graph + Bitbucket calls | target |"
    );
    println!("|---|---|---|---|---|---|");
    for (users, groups) in [(10_000, 500), (100_000, 5_000)] {
        let (t, full, run) = measure(users, groups).await;
        let s = &run["summary"];
        let stages: Vec<String> = ["fetch", "transform", "merge", "read", "plan", "apply"]
            .iter()
            .filter_map(|k| s["stage_ms"][k].as_u64().map(|v| format!("{k} {v} ms")))
            .collect();
        println!(
            "| {users} users, {groups} groups | {:.1} s | {:.0} ms | {} | {} Graph, {} Bitbucket | ≤ 2 s |",
            full.as_secs_f64(),
            t.as_secs_f64() * 1000.0,
            stages.join(", "),
            s["fetch"][0]["idp_requests"],
            s["api_calls_total"],
        );
    }
}
