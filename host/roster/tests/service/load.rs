//! Load: many callers at once against the one-run-per-target rule. Twenty `POST /api/v1/runs`
//! and twenty single-user syncs (a login flow provisioning twenty new hires) arrive together on
//! loopback, each caller asking again while it is refused. Each request is either taken or
//! refused with 409 naming the run in progress — never a 5xx, never two runs of the target at
//! once — every run taken ends in a terminal state, and every new hire is in Bitbucket at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common;

use common::api::ApiWorld;
use common::entra::{EntraWorld, tenant};
use common::world::bitbucket;
use roster_sim::directory::Directory;
use roster_sim::graph::GraphUser;
use serde_json::json;

const CALLERS: usize = 20;
/// Generous: behaviour, not speed (a debug build on two shared cores).
const BOUND: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_and_single_user_syncs_take_turns_and_lose_nothing() {
    let d = Directory::generate(200, 20, 2);
    let w = Arc::new(ApiWorld::start(EntraWorld::new(tenant(&d), bitbucket()).await, "").await);
    let first = w.run(json!({})).await;
    assert_eq!(first["state"], "succeeded", "{first}");

    // Twenty new hires, each in a team, before the next scheduled run.
    let team = d.groups[1].id.clone();
    let hires: Vec<String> = (0..CALLERS).map(|i| format!("hire{i:02}")).collect();
    for h in &hires {
        let id = w.world.idp.lock().add_user(GraphUser {
            user_principal_name: format!("{h}@contoso.example"),
            mail: Some(format!("{h}@contoso.example")),
            display_name: format!("Hire {h}"),
            account_enabled: true,
            user_type: "Member".into(),
            ..GraphUser::default()
        });
        w.world.idp.lock().add_member(&team, &id);
    }

    // Watches the runs in progress for the whole burst: never more than one.
    let done = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (w, done, most) = (w.clone(), done.clone(), most.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(w.service.runs.all().len(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let w = w.clone();
        let mode = ["full", "incremental", "dry-run"][i % 3];
        tasks.push(tokio::spawn(async move {
            // A job that must run: asks again while another run holds the target.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let (status, body) = w.post("/api/v1/runs", &w.operator, json!({"mode": mode})).await;
                if status != 409 || started.elapsed() > BOUND {
                    return (Caller::Run, status, body, attempts);
                }
                assert!(
                    body["error"].as_str().unwrap_or_default().contains("in progress"),
                    "{body}"
                );
                tokio::time::sleep(Duration::from_millis(50 + (attempts % 5) * 20)).await;
            }
        }));
    }
    for h in hires.clone() {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            // A login flow: retried while another run holds the target, as the 409 says.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let (status, body) = w.post("/api/v1/users/sync", &w.operator, json!({"user": h})).await;
                if status != 409 || started.elapsed() > BOUND {
                    return (Caller::User(h), status, body, attempts);
                }
                assert!(body["error"].as_str().unwrap_or_default().contains("run"), "{body}");
                tokio::time::sleep(Duration::from_millis(50 + (attempts % 5) * 20)).await;
            }
        }));
    }

    let (mut taken, mut refused) = (Vec::new(), 0);
    for t in tasks {
        let (caller, status, body, attempts) = t.await.unwrap();
        match caller {
            Caller::Run => {
                refused += attempts - 1;
                assert_eq!(status, 202, "POST /api/v1/runs after {attempts} attempts: {body}");
                taken.push(body["run_id"].as_i64().unwrap());
            }
            Caller::User(h) => {
                refused += attempts - 1;
                assert_eq!(status, 200, "{h} after {attempts} attempts: {body}");
                assert_eq!(body["state"], "succeeded", "{h}: {body}");
            }
        }
    }
    assert_eq!(taken.len(), CALLERS, "every run asked for was taken in its turn");
    for id in &taken {
        let run = w.wait_run_for(*id, BOUND).await;
        let state = run["state"].as_str().unwrap();
        assert!(
            ["succeeded", "planned"].contains(&state),
            "run {id} ended {state}: {run}"
        );
    }
    done.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 1, "runs in progress at once");

    // The record agrees: no two runs of the target overlap in time.
    let mut runs: Vec<_> = w
        .world
        .store
        .runs(1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.state != "refused")
        .collect();
    runs.sort_by_key(|r| r.started_at);
    for pair in runs.windows(2) {
        let end = pair[0].finished_at.expect("every run ended");
        assert!(
            pair[1].started_at >= end,
            "run {} started before run {} ended",
            pair[1].id,
            pair[0].id
        );
    }
    for h in &hires {
        assert!(w.world.bb.lock().users().contains_key(h), "{h} was lost");
    }
    let last = w.run(json!({})).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(
        last["summary"]["planned"].as_object().is_none_or(|p| p.is_empty()),
        "after the burst a run still planned {}",
        last["summary"]["planned"]
    );
    println!(
        "load: {CALLERS} runs and {CALLERS} single-user syncs asked for at once; all taken in turn after {refused} answers of 409; at most {} in progress; {} s",
        most.load(Ordering::SeqCst),
        started.elapsed().as_secs()
    );
}

enum Caller {
    Run,
    User(String),
}
