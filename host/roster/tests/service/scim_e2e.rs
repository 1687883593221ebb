//! SCIM push end to end, over real HTTP on 127.0.0.1: what an identity provider sends to
//! `/scim/v2/{source}` reaches the Bitbucket simulator through the push runs; a burst of pushes
//! is one plan; and another Roster's `scim` connector reads what was pushed, as from any SCIM
//! service.

use crate::common;

use common::Configured;
use common::push::{Inbound, SOURCE, Target, entra_user, group};
use common::world::{SourceWorld, bitbucket};
use roster_sim::scenario::ScimSource;
use serde_json::json;

/// Licensed accounts that came from the pushes (the simulator's own admin is licensed too).
fn pushed_licensed(bb: &roster_sim::bitbucket::BbState) -> usize {
    bb.licensed_users()
        .iter()
        .filter(|u| u.ends_with("@contoso.example"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_users_and_a_group_reach_bitbucket_and_a_pushed_deactivation_unlicenses() {
    let w = Inbound::start("debounce_seconds = 1\nmax_delay_seconds = 20", Target::Bitbucket("")).await;
    // Thirty people, so that one deactivation stays well under the guard's threshold.
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(w.create("/Users", entra_user(&format!("person{i}"))).await);
    }
    let devs = w.create("/Groups", group("devs", &ids[..10])).await;
    let runs = w.ended(1).await;
    let last = runs.last().unwrap();
    assert_eq!(last.state.as_str(), "succeeded", "{last:?}");
    let name = |i: usize| format!("person{i}@contoso.example");
    {
        let bb = w.bitbucket().lock();
        let u = bb.users().get(&name(0)).expect("a pushed user is in Bitbucket");
        assert_eq!(
            (u.display_name.as_str(), u.email.as_str()),
            ("person0 Example", name(0).as_str())
        );
        assert_eq!(pushed_licensed(&bb), 30);
    }
    let mut expected: Vec<String> = (0..10).map(name).collect();
    expected.sort();
    assert_eq!(w.members("devs"), expected);

    // Entra's legacy deactivation (a string "False") and a member removed as a value array.
    let before = runs.len();
    w.patch(
        &format!("/Users/{}", ids[0]),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    w.patch(
        &format!("/Groups/{devs}"),
        json!([{"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}]),
    )
    .await;
    let runs = w.ended(before + 1).await;
    let last = runs.last().unwrap();
    assert_eq!(last.state.as_str(), "succeeded", "{last:?}");
    let bb = w.bitbucket().lock();
    assert!(
        !bb.licensed_users().contains(&name(0)),
        "the deactivated user keeps no licence"
    );
    let devs = bb.groups().get("devs").cloned().unwrap_or_default();
    assert!(!devs.contains(&name(1)) && devs.contains(&name(2)), "{devs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_three_hundred_member_patches_over_http_makes_one_run() {
    let w = Inbound::start("debounce_seconds = 2\nmax_delay_seconds = 120", Target::Bitbucket("")).await;
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(w.create("/Users", entra_user(&format!("p{i}"))).await);
    }
    let team = w.create("/Groups", group("team", &[])).await;
    let seeded = w.ended(1).await.len();

    // 300 single-member PATCHes, 16 at a time, as Okta and Entra send them.
    let path = format!("/Groups/{team}");
    futures::future::join_all((0..16).map(|lane| {
        let (w, ids, path) = (&w, &ids, &path);
        async move {
            for id in ids.iter().skip(lane).step_by(16) {
                w.patch(
                    path,
                    json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
                )
                .await;
            }
        }
    }))
    .await;
    let runs = w.ended(seeded + 1).await;
    // The wait above returns once a run ended with none in progress: give a stray second run
    // (the failure this test is for) the debounce to start, then count.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let runs_now = w.ended(seeded + 1).await;
    assert_eq!(runs_now.len(), seeded + 1, "one run for the burst: {runs_now:?}");
    let burst = runs.last().unwrap();
    assert_eq!(burst.state.as_str(), "succeeded", "{burst:?}");
    assert_eq!(w.members("team").len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_rosters_scim_connector_reads_what_was_pushed() {
    let inbound = Inbound::start("", Target::None).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(inbound.create("/Users", entra_user(&format!("u{i}"))).await);
    }
    inbound.create("/Groups", group("ops", &ids[..5])).await;
    let (origin, scim_url, token) = (inbound.base.clone(), inbound.scim_url(), inbound.token.clone());
    let w = SourceWorld::assemble(&[("scim", "scim.wasm")], inbound, bitbucket(), 11, |_, _| ScimSource {
        origin,
        base_url: scim_url,
        token,
        settings: "page_size = 5".into(),
        ..ScimSource::default()
    })
    .await;
    let c = w.check().await;
    assert!(c.ok, "{:?}", c.error);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = common::fetch_named(&r, "scim");
    assert_eq!((f.users, f.groups), (12, 1), "{f:?}");
    let bb = w.bb.lock();
    assert_eq!(pushed_licensed(&bb), 12);
    assert_eq!(bb.groups().get("ops").map(|m| m.len()), Some(5));
    assert_eq!(w.idp.store.mirror_users(SOURCE).unwrap().len(), 12);
}
