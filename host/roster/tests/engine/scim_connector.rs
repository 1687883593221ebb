//! The `scim` connector end to end: PyPI's `scim2-server` (a real SCIM 2.0 service, started by
//! the test on 127.0.0.1 and filled through its own SCIM API) → Roster → the Bitbucket
//! simulator. A test is skipped, saying so, only when scim2-server is not installed and pip
//! cannot install it.

use crate::common;

use common::Configured;
use common::scim::{ScimWorld, fetch_of, server};
use common::world::{SourceWorld, assert_bitbucket_matches, bitbucket};
use roster_sim::directory::Directory;
use roster_sim::scenario::ScimSource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_syncs_users_groups_and_nested_memberships_and_a_deactivation_follows() {
    let mut d = Directory::generate(30, 6, 2);
    let Some(w) = ScimWorld::new(&d, bitbucket(), "").await else {
        return;
    };
    let c = w.check().await;
    assert!(c.ok, "{:?}", c.error);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (30, 6));
    // Nested groups' members are their parents' members too: the flattened memberships match.
    assert_bitbucket_matches(&w.bb, &d);

    w.assert_a_second_run_writes_nothing().await;

    // An IdP deactivates a user with a path-less PATCH; the next run follows.
    let u = d.users.iter_mut().find(|u| u.active).expect("an active user");
    w.idp
        .replace_user(&u.id, serde_json::json!({"active": false}))
        .await
        .expect("PATCH");
    u.active = false;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_users_than_a_page_are_read_page_by_page_to_the_total() {
    let d = Directory::generate(23, 3, 1);
    let Some(w) = ScimWorld::new(&d, bitbucket(), "page_size = 5").await else {
        return;
    };
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert_eq!((f.users, f.groups), (23, 3));
    // 23 users in pages of 5 (each after the first asks one more, for the item of overlap):
    // five pages of users, one of groups.
    assert_eq!(f.idp_requests, 6, "{f:?}");
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_a_url_that_is_not_scim_and_a_bad_filter_are_named_and_nothing_is_written() {
    let d = Directory::generate(8, 2, 1);
    let Some(mut w) = ScimWorld::new(&d, bitbucket(), "").await else {
        return;
    };

    w.source.token = "not-the-token".into();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("`token` secret") && why.contains("SCIM 401"), "{why}");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");
    w.source.token = common::scim::TOKEN.into();

    w.source.base_url = format!("{}/scim", w.idp.origin());
    let why = w.check().await.error.unwrap();
    assert!(why.contains("not a SCIM 2.0 service"), "{why}");
    w.source.base_url = w.idp.base_url();

    w.source.settings = "user_filter = \"userName eq\"".into();
    let why = w.check().await.error.unwrap();
    assert!(
        why.contains("InvalidFilter") && why.contains("correct user_filter"),
        "{why}"
    );
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);

    w.source.settings = format!("user_filter = 'userName eq \"{}\"'", d.users[0].username);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).users, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_fails_the_run_naming_the_page_and_the_field() {
    let fake = roster_sim::scim2_server::fake_service(serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 1,
        "Resources": [{"id": "u-1", "active": true}],
    }))
    .await
    .unwrap();
    let w = SourceWorld::assemble(&[("scim", "scim.wasm")], fake, bitbucket(), 11, |s, _| ScimSource {
        origin: s.url(),
        base_url: format!("{}/v2", s.url()),
        token: "any".into(),
        ..ScimSource::default()
    })
    .await;
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(
        why.contains("scim: list users (page /Users?startIndex=1&count=100)") && why.contains("userName"),
        "{why}"
    );
    assert_eq!(w.bb_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_reads_everything_as_scim_has_no_change_feed_and_writes_only_the_change() {
    let mut d = Directory::generate(10, 2, 1);
    let Some(s) = server(&d).await else { return };
    let w = ScimWorld::over(s, bitbucket(), "").await;
    assert_eq!(w.sync().await.state, "succeeded");
    let u = d.users.iter_mut().find(|u| u.active).expect("an active user");
    u.display_name = "Renamed Person".into();
    w.idp
        .replace_user(&u.id, serde_json::json!({"displayName": "Renamed Person"}))
        .await
        .expect("PATCH");
    let writes = w.bb_writes();
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert_eq!((f.mode.as_str(), f.users, f.groups), ("full", 10, 2), "{f:?}");
    assert_eq!(w.bb_writes(), writes + 1, "one user's details: {:?}", r.summary.planned);
    assert_bitbucket_matches(&w.bb, &d);
}
