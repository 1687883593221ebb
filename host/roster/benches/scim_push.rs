//! SCIM push benchmarks: sustained pushes per second on loopback, and the delay from a push to
//! the Bitbucket write; prints the Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench scim_push` (release). Everything runs in this process: the
//! Bitbucket simulator, Roster's service with its SCIM endpoint on 127.0.0.1, and the pushing
//! clients (`CLIENTS` at a time, as an IdP's provisioning workers). The floor for pushes is the
//! same clients reading `/ServiceProviderConfig` (the same HTTP, token check and rate cap, no
//! write); the floor for the delay is the debounce the source is configured with.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::push::{Inbound, Target, entra_user, group};
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;

const CLIENTS: usize = 32;
const USERS: usize = 5_000;
const ROUNDS: usize = 5;

/// Sends `n` requests made by `make`, `CLIENTS` at a time; the requests per second, and how
/// many were not answered with a 2xx.
async fn rate<F, Fut>(n: usize, make: F) -> (f64, usize)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let t = Instant::now();
    let failed = futures::stream::iter(0..n)
        .map(make)
        .buffer_unordered(CLIENTS)
        .filter(|s| std::future::ready(!(200..300).contains(s)))
        .count()
        .await;
    (n as f64 / t.elapsed().as_secs_f64(), failed)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Pushes per second for creations, single-member PATCHes and Okta's GET-then-PUT, against
/// the read-only floor.
async fn throughput() -> Vec<String> {
    // A rate cap far above what the clients reach: the figure is Roster's, not the cap's.
    let w = Inbound::start(
        "requests_per_minute = 10000000\ndebounce_seconds = 5",
        Target::Bitbucket(""),
    )
    .await;
    let (floor, _) = rate(USERS, |_| async {
        w.scim(Method::GET, "/ServiceProviderConfig", None).await.0
    })
    .await;
    let t = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..USERS)
        .map(|i| w.create("/Users", entra_user(&format!("u{i}"))))
        .buffered(CLIENTS)
        .collect()
        .await;
    let creates = USERS as f64 / t.elapsed().as_secs_f64();
    let team = w.create("/Groups", group("team", &[])).await;
    let path = format!("/Groups/{team}");
    let (patch, patch_failed) = rate(USERS, |i| {
        let (w, path, id) = (&w, &path, &ids[i]);
        async move {
            w.patch(
                path,
                json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
            )
            .await
        }
    })
    .await;
    let (put, put_failed) = rate(USERS / 5, |i| {
        let (w, id) = (&w, &ids[i]);
        async move {
            let (_, mut user) = w.scim(Method::GET, &format!("/Users/{id}"), None).await;
            user["displayName"] = json!(format!("Renamed {i}"));
            w.scim(Method::PUT, &format!("/Users/{id}"), Some(user)).await.0
        }
    })
    .await;
    // Everything pushed reaches Bitbucket: the last push run carries the rest.
    let runs = w.ended(1).await;
    let mut waited = 0;
    while w.members("team").len() < USERS && waited < 600 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
    }
    let runs_after = w.ended(runs.len()).await;
    assert_eq!(
        w.members("team").len(),
        USERS,
        "every pushed membership reached Bitbucket"
    );
    let row =
        |what: &str, per_s: f64, failed: usize| format!("| {what} | {per_s:.0} | {:.2} | {failed} |", per_s / floor);
    vec![
        format!(
            "{USERS} users, then {USERS} single-member PATCHes of one group, {} Okta GET+PUT profile updates; {CLIENTS} clients; push runs that carried it all to Bitbucket: {}",
            USERS / 5,
            runs_after.len()
        ),
        String::new(),
        "| pushes | per second | ÷ floor | not 2xx |".into(),
        "|---|---|---|---|".into(),
        format!("| floor: GET /ServiceProviderConfig (no write) | {floor:.0} | 1.00 | 0 |"),
        row("POST /Users (Entra's user, enterprise extension)", creates, 0),
        row(
            "PATCH /Groups/{id}: add one member (group of up to 5,000)",
            patch,
            patch_failed,
        ),
        row(
            "GET then PUT /Users/{id} (Okta's profile update), per pair",
            put,
            put_failed,
        ),
    ]
}

/// The delay from a pushed new hire (user created, added to a group) to their account and
/// membership in Bitbucket, with this debounce.
async fn delay(debounce: u64) -> (Duration, Duration) {
    let w = Inbound::start(
        &format!("debounce_seconds = {debounce}\nmax_delay_seconds = 60"),
        Target::Bitbucket(""),
    )
    .await;
    // A realistic directory to plan against: 1,000 people, one group.
    let ids: Vec<String> = futures::stream::iter(0..1000)
        .map(|i| w.create("/Users", entra_user(&format!("staff{i}"))))
        .buffered(CLIENTS)
        .collect()
        .await;
    let team = w.create("/Groups", group("team", &ids)).await;
    let mut runs = w.ended(1).await.len();
    let mut delays = Vec::new();
    for round in 0..ROUNDS {
        let name = format!("hire{round}");
        let t = Instant::now();
        let id = w.create("/Users", entra_user(&name)).await;
        w.patch(
            &format!("/Groups/{team}"),
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
        let username = format!("{name}@contoso.example");
        while !w.members("team").contains(&username) {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "{username} never reached Bitbucket"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(t.elapsed());
        runs = w.ended(runs + 1).await.len();
    }
    let m = median(delays);
    (m, m.saturating_sub(Duration::from_secs(debounce)))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rows = throughput().await;
    println!("### SCIM push (issue 17)\n");
    println!("`cargo bench -p roster --bench scim_push` (release, loopback, one process).\n");
    for r in rows {
        println!("{r}");
    }
    println!(
        "\n| new hire pushed (POST user + PATCH group) → in Bitbucket's group, median of {ROUNDS} | delay | delay − debounce (the run) |"
    );
    println!("|---|---|---|");
    for debounce in [1, 5] {
        let (d, run) = delay(debounce).await;
        println!(
            "| debounce_seconds = {debounce} (1,000 people in the directory) | {:.2} s | {:.2} s |",
            d.as_secs_f64(),
            run.as_secs_f64()
        );
    }
}
