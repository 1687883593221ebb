//! The `onelogin` connector end to end: the OneLogin simulator → Roster → the Bitbucket
//! simulator.

use crate::common;

use std::time::Duration;

use common::Configured;
use common::changes::working_day;
use common::onelogin::{OneLoginWorld, account, fetch_of};
use common::world::{assert_bitbucket_matches, bitbucket, groups_of};
use roster_sim::directory::Directory;
use roster_sim::onelogin::CredentialScope;

/// OneLogin's status number for a suspended user.
const SUSPENDED: i64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_syncs_exactly_and_a_second_run_writes_nothing() {
    let d = Directory::generate(300, 40, 3);
    let w = OneLoginWorld::new(account(&d), bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (300, 40));
    assert_bitbucket_matches(&w.bb, &d);
    let (calls, by_route) = w.take_calls();
    assert_eq!(
        f.idp_requests,
        calls + by_route.get("POST /auth/oauth2/v2/token").copied().unwrap_or(0),
        "{by_route:?}"
    );
    w.assert_a_second_run_writes_nothing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_after_ten_changes_makes_calls_bounded_by_them_and_exactly_ten_writes() {
    let mut d = Directory::generate(200, 24, 2);
    let w = OneLoginWorld::new(account(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    w.take_calls();
    let writes_before = w.bb_writes();

    let changes = working_day(&mut d, &w);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_bitbucket_matches(&w.bb, &d);
    assert_eq!(w.bb_writes() - writes_before, changes, "{:?}", r.summary.planned);
    let (calls, by_route) = w.take_calls();
    // One users page, the roles listing, and one roles request per changed user (ten at most).
    assert!(
        calls <= 12,
        "calls grow with the changes, not the account: {by_route:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_user_is_disabled_incrementally_and_a_deleted_one_by_the_next_full_fetch() {
    let mut d = Directory::generate(40, 6, 2);
    let w = OneLoginWorld::new(account(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let (suspended, deleted) = (d.users[7].clone(), d.users[8].clone());
    assert!(groups_of(&w.bb, &suspended.username).len() >= 2);
    let id = w.user(&suspended.id);
    w.idp.lock().set_status(id, SUSPENDED);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert!(!w.bb.lock().licensed_users().contains(&suspended.username));
    assert!(
        w.bb.lock().users().contains_key(&suspended.username),
        "disabled, not deleted"
    );

    let id = w.user(&deleted.id);
    w.idp.lock().delete_user(id);
    d.users.retain(|u| u.id != deleted.id);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).users, 39);
    assert!(!w.bb.lock().licensed_users().contains(&deleted.username));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_account_slows_the_run_down_and_it_completes() {
    let d = Directory::generate(120, 12, 2);
    let mut o = account(&d);
    // A window of a second (an hour at OneLogin) so that spending it costs the test little.
    o.set_rate_limit_window(Duration::from_secs(1));
    o.set_rate_limit(8);
    o.throttle_next(2);
    let w = OneLoginWorld::new(o, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    assert!(fetch_of(&r).idp_throttled >= 2, "{:?}", fetch_of(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_secret_fails_check_with_the_reason_and_a_run_writes_nothing() {
    let d = Directory::generate(20, 3, 1);
    let mut w = OneLoginWorld::new(account(&d), bitbucket()).await;
    w.source.secret = "not-the-secret".into();
    let c = w.check().await;
    assert!(!c.ok);
    let why = c.error.unwrap();
    assert!(why.contains("Authentication Failure"), "{why}");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_fails_the_run_cleanly_naming_the_page_and_the_next_run_recovers() {
    let d = Directory::generate(30, 4, 1);
    let w = OneLoginWorld::new(account(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let writes = w.bb_writes();
    w.idp.lock().corrupt_next("/api/2/users");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(why.contains("onelogin") && why.contains("/api/2/users"), "{why}");
    assert_eq!(w.bb_writes(), writes, "nothing written, nothing removed");

    // A field of the wrong type is named.
    let id = w.user(&d.users[3].id);
    w.idp.lock().update_user(id, |u| {
        u.overrides.insert("status".into(), serde_json::json!("active"));
    });
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(why.contains("status"), "{why}");
    assert_eq!(w.bb_writes(), writes);

    w.idp.lock().update_user(id, |u| u.overrides.clear());
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_groups_both_become_bitbucket_groups_and_check_names_a_credential_that_cannot_read() {
    let d = Directory::generate(20, 3, 1);
    let mut o = account(&d);
    o.add_credential("auth-only", "auth-only-secret", CredentialScope::AuthenticationOnly);
    let contractors = o.add_group("Contractors");
    let (ann, ben) = (o.user_id(&d.users[0].id), o.user_id(&d.users[1].id));
    o.set_user_group(ann, Some(contractors));
    o.set_user_group(ben, Some(contractors));
    let mut w = OneLoginWorld::new(o, bitbucket()).await;
    w.source.settings = "groups_from = \"roles-and-groups\"".into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).groups, 4, "three roles and one group");
    let members = w.bb.lock().groups().get("Contractors").cloned().unwrap_or_default();
    let expected = [d.users[0].username.clone(), d.users[1].username.clone()];
    assert_eq!(members, expected.into_iter().collect(), "the group's two users");

    w.source.client_id = "auth-only".into();
    w.source.secret = "auth-only-secret".into();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("Read users") || why.contains("Read All"), "{why}");
}
