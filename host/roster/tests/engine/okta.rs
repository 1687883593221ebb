//! The `okta` connector end to end: the Okta simulator → Roster → the Bitbucket simulator.

use crate::common;

use common::Configured;
use common::changes::working_day;
use common::okta::{OktaWorld, fetch_of, org};
use common::world::{assert_bitbucket_matches, bitbucket, groups_of};
use roster_sim::directory::Directory;
use roster_sim::okta::{RateScope, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_syncs_exactly_and_a_second_run_writes_nothing() {
    let d = Directory::generate(300, 40, 3);
    let w = OktaWorld::new(org(&d), bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (300, 40));
    assert_bitbucket_matches(&w.bb, &d);
    let (calls, by_route) = w.take_okta_calls();
    assert_eq!(f.idp_requests, calls, "{by_route:?}");
    let member_calls = by_route.get("GET /api/v1/groups/{id}/users").copied().unwrap_or(0);
    assert!(member_calls <= 40, "one member listing per group at most: {by_route:?}");
    w.assert_a_second_run_writes_nothing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_after_ten_changes_makes_a_handful_of_calls_and_exactly_ten_writes() {
    let mut d = Directory::generate(200, 24, 2);
    let w = OktaWorld::new(org(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    w.take_okta_calls();
    let writes_before = w.bb_writes();

    let changes = working_day(&mut d, &w);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_bitbucket_matches(&w.bb, &d);
    assert_eq!(w.bb_writes() - writes_before, changes, "{:?}", r.summary.planned);
    let (calls, by_route) = w.take_okta_calls();
    // One users search, one groups search, and one member listing per changed group (five).
    assert!(calls <= 7, "calls grow with the changes, not the org: {by_route:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deprovisioned_user_is_disabled_by_an_incremental_run_and_seen_by_a_full_one() {
    let d = Directory::generate(40, 6, 2);
    let w = OktaWorld::new(org(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let victim = &d.users[7];
    assert!(groups_of(&w.bb, &victim.username).len() >= 2);
    let id = w.user(&victim.id);
    w.idp.lock().set_status(&id, Status::Deprovisioned);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert!(!w.bb.lock().licensed_users().contains(&victim.username));
    assert!(
        w.bb.lock().users().contains_key(&victim.username),
        "disabled, not deleted"
    );

    // A full fetch lists the deprovisioned user too (a plain listing would hide it): it stays
    // one inactive user, not a vanished one.
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).users, 40);
    assert!(r.summary.planned.is_empty(), "{:?}", r.summary.planned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_org_slows_the_run_down_and_it_completes() {
    let d = Directory::generate(120, 12, 2);
    let mut o = org(&d);
    // A window of a second (a minute at Okta) so that spending it costs the test little.
    o.set_rate_window(std::time::Duration::from_secs(1));
    o.set_rate_limit(RateScope::All, 6);
    o.throttle_next(3);
    let w = OktaWorld::new(o, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    assert!(fetch_of(&r).idp_throttled >= 3, "{:?}", fetch_of(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_fails_check_with_the_reason_and_a_run_writes_nothing() {
    let d = Directory::generate(20, 3, 1);
    let mut w = OktaWorld::new(org(&d), bitbucket()).await;
    w.source.api_token = "not-the-token".into();
    let c = w.check().await;
    assert!(!c.ok);
    let why = c.error.unwrap();
    assert!(why.contains("E0000011") && why.contains("API token"), "{why}");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert!(
        r.summary.warnings.iter().any(|x| x.contains("E0000011")),
        "{:?}",
        r.summary.warnings
    );
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_fails_the_run_cleanly_naming_the_page_and_the_next_run_recovers() {
    let d = Directory::generate(30, 4, 1);
    let w = OktaWorld::new(org(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let writes = w.bb_writes();
    w.idp.lock().corrupt_next("/api/v1/groups");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(why.contains("okta") && why.contains("/api/v1/groups"), "{why}");
    assert_eq!(w.bb_writes(), writes, "nothing written, nothing removed");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded");
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_app_signs_in_with_a_host_signed_assertion_and_check_names_each_missing_scope() {
    let d = Directory::generate(12, 2, 1);
    let fixtures = common::repo().join("host/roster/tests/fixtures");
    let public = std::fs::read_to_string(fixtures.join("test-rsa-pub.pem")).unwrap();
    let mut o = org(&d);
    o.add_service_app(
        "0oaroster",
        &public,
        "roster-key",
        &["okta.users.read", "okta.groups.read"],
    );
    o.add_service_app("0oahalf", &public, "roster-key", &["okta.users.read"]);
    let mut w = OktaWorld::new(o, bitbucket()).await;
    let token_url = w.idp.token_url();
    let service_app = |client: &str| {
        (
            format!("auth = \"service-app\"\nclient_id = \"{client}\"\nkey_id = \"roster-key\""),
            format!(
                "[[source.secrets]]\nname = \"private_key\"\nkind = \"signing-key\"\nfile = \"{}\"\nclient_id = \"{client}\"\naudience = \"{token_url}\"",
                fixtures.join("test-rsa-key.pem").display()
            ),
        )
    };
    (w.source.settings, w.source.secrets) = service_app("0oaroster");
    assert!(w.check().await.ok, "{:?}", w.check().await.error);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);

    // An app granted users but not groups (nor apps, for the app scope): both named at once.
    let (settings, secrets) = service_app("0oahalf");
    w.source.settings = format!("{settings}\nscope = \"app\"\napp_id = \"0oanosuchapp\"");
    w.source.secrets = secrets;
    let why = w.check().await.error.unwrap();
    assert!(
        why.contains("okta.groups.read") && why.contains("okta.apps.read") && !why.contains("okta.users.read "),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_an_unknown_group_and_an_unknown_app() {
    let d = Directory::generate(8, 3, 1);
    let mut w = OktaWorld::new(org(&d), bitbucket()).await;
    w.source.settings = format!(
        "scope = \"groups\"\ngroups = [\"{}\", \"no-such-team\"]",
        d.groups[0].name
    );
    let why = w.check().await.error.unwrap();
    assert!(why.contains("no-such-team"), "{why}");

    w.source.settings = "scope = \"app\"\napp_id = \"0oa1nosuchapp0000000\"".into();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("0oa1nosuchapp0000000"), "{why}");

    let app = {
        let mut o = w.idp.lock();
        let app = o.add_app("Bitbucket");
        let g = o.group_id(&d.groups[0].id);
        o.assign_group(&app, &g);
        app
    };
    w.source.settings = format!("scope = \"app\"\napp_id = \"{app}\"");
    assert!(w.check().await.ok, "{:?}", w.check().await.error);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).groups, 1, "only the assigned group");
}
