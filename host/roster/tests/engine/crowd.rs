//! The `crowd` connector end to end: the Jira/Crowd user-server simulator → Roster → the
//! Bitbucket simulator.

use crate::common;

use common::Configured;
use common::changes::working_day;
use common::crowd::{APP, CrowdWorld, fetch_of, jira};
use common::world::{assert_bitbucket_matches, bitbucket, groups_of};
use roster_sim::directory::{DirMembership, Directory};
use roster_sim::kit::{Cut, Fault, FaultRule, RouteMatch, Times};

/// How many of `requests` are `route`.
fn count(requests: &[String], route: &str) -> usize {
    requests.iter().filter(|r| r.as_str() == route).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jira_user_server_syncs_exactly_with_nested_groups_flattened_and_a_second_run_writes_nothing() {
    let d = Directory::generate(300, 40, 3);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (300, 40));
    assert_bitbucket_matches(&w.bb, &d);
    // As Bitbucket's own directory reads it: a token, every user, every group, and one
    // membership document, whatever the size of the directory.
    let requests = w.take_crowd_requests();
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!(count(&requests, "POST /search"), 2, "{requests:?}");
    assert_eq!(count(&requests, "GET /group/membership"), 1, "{requests:?}");
    assert_eq!(count(&requests, "GET /event"), 1, "{requests:?}");
    assert_eq!(f.idp_requests, 4);

    w.assert_a_second_run_writes_nothing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_reads_only_the_events_and_writes_exactly_the_changes() {
    let mut d = Directory::generate(200, 24, 2);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    w.take_crowd_requests();
    let writes_before = w.bb_writes();

    let changes = working_day(&mut d, &w);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_bitbucket_matches(&w.bb, &d);
    assert_eq!(w.bb_writes() - writes_before, changes, "{:?}", r.summary.planned);
    // The events, then each changed user read whole (events carry no attributes): five, for
    // four display names and one email; the membership changes cost nothing more.
    let requests = w.take_crowd_requests();
    let mut expected = vec!["GET /event/{token}".to_string()];
    expected.extend(std::iter::repeat_n("GET /user".to_string(), 5));
    assert_eq!(requests, expected, "the events and the changed users, not a listing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_event_replacing_a_users_groups_and_a_new_nested_group_apply_exactly() {
    let mut d = Directory::generate(60, 12, 2);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    // Crowd's absolute form: one UPDATED event with the user's complete set of groups.
    let who = d.users[10].clone();
    let now: Vec<String> = vec![d.groups[1].id.clone(), d.groups[5].id.clone()];
    d.memberships.retain(|m| m.member != who.id);
    for g in &now {
        d.memberships.push(DirMembership {
            group: g.clone(),
            member: who.id.clone(),
            member_is_group: false,
        });
    }
    let names: Vec<String> = now.iter().map(|g| d.group_name(g)).collect();
    w.idp
        .lock()
        .set_user_groups(&who.username, &names.iter().map(String::as_str).collect::<Vec<_>>());
    // A group nested into another: its members join the parent in Bitbucket.
    let (child, parent) = (d.groups[3].id.clone(), d.groups[8].id.clone());
    d.memberships.push(DirMembership {
        group: parent.clone(),
        member: child.clone(),
        member_is_group: true,
    });
    w.idp
        .lock()
        .add_group_to_group(&d.group_name(&child), &d.group_name(&parent));

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_event_token_falls_back_to_a_full_fetch_and_the_run_says_so() {
    let mut d = Directory::generate(60, 8, 2);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    d.users[1].display_name = "Changed While Expired".into();
    w.idp.lock().update_user(&d.users[1].username, |u| {
        u.display_name = "Changed While Expired".into()
    });
    w.idp.lock().expire_event_tokens();
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert_eq!(f.mode, "full");
    assert!(
        f.fell_back.as_deref().unwrap_or("").contains("EVENT_TOKEN_EXPIRED"),
        "{f:?}"
    );
    assert!(
        r.summary.warnings.iter().any(|w| w.contains("full fetch")),
        "{:?}",
        r.summary.warnings
    );
    assert_bitbucket_matches(&w.bb, &d);
    // The fresh token works again.
    assert_eq!(fetch_of(&w.sync_incremental().await).mode, "incremental");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_incremental_synchronisation_is_read_in_full_and_the_run_says_why() {
    let mut d = Directory::generate(40, 6, 2);
    let mut jira = jira(&d);
    jira.disable_incremental_sync();
    let w = CrowdWorld::new(jira, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    d.users[2].display_name = "Seen By A Full Read".into();
    w.idp
        .lock()
        .update_user(&d.users[2].username, |u| u.display_name = "Seen By A Full Read".into());
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert_eq!(f.mode, "full");
    let why = f.fell_back.as_deref().unwrap_or("");
    assert!(why.contains("incrementalSynchronisationAvailable"), "{why}");
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_membership_document_is_read_group_by_group_with_the_same_result() {
    let d = Directory::generate(80, 10, 2);
    let mut jira = jira(&d);
    jira.without_membership_document();
    let w = CrowdWorld::new(jira, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    let requests = w.take_crowd_requests();
    assert_eq!(count(&requests, "GET /group/user/direct"), 10, "{requests:?}");
    assert_eq!(count(&requests, "GET /group/child-group/direct"), 10, "{requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nested_groups_bitbucket_groups_hold_direct_members_only() {
    let d = Directory::generate(80, 12, 2);
    let mut w = CrowdWorld::new(jira(&d), bitbucket()).await;
    w.source.settings = "use_nested_groups = false".into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let mut direct = d.clone();
    direct.memberships.retain(|m| !m.member_is_group);
    assert_ne!(
        direct.expected_members(),
        d.expected_members(),
        "the sample nests groups"
    );
    assert_bitbucket_matches(&w.bb, &direct);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_in_jira_is_one_rename_in_bitbucket_with_memberships_kept() {
    let d = Directory::generate(50, 8, 2);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    // Incrementally, from the events.
    let old = d.users[7].username.clone();
    let groups = groups_of(&w.bb, &old);
    assert!(groups.len() > 1, "{groups:?}");
    w.idp.lock().rename_user(&old, "renamed.seven");
    let writes = w.bb_writes();
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_eq!(
        r.summary.planned.get("rename-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(w.bb_writes() - writes, 1, "{:?}", r.summary.planned);
    assert_eq!(groups_of(&w.bb, "renamed.seven"), groups);
    assert!(!w.bb.lock().users().contains_key(&old));
    // And in a full read, by the user's key.
    let old = d.users[9].username.clone();
    let groups = groups_of(&w.bb, &old);
    w.idp.lock().rename_user(&old, "renamed.nine");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("rename-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(groups_of(&w.bb, "renamed.nine"), groups);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_application_password_fails_check_with_the_reason_and_a_run_writes_nothing() {
    let d = Directory::generate(20, 3, 1);
    let mut w = CrowdWorld::new(jira(&d), bitbucket()).await;
    w.source.password = "not-the-password".into();
    let c = w.check().await;
    assert!(!c.ok);
    let why = c.error.unwrap();
    assert!(
        why.contains("wrong application name or password") && why.contains(APP),
        "{why}"
    );
    assert!(!why.contains("not-the-password"), "{why}");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_an_address_the_application_does_not_allow_is_refused_and_reported() {
    let d = Directory::generate(20, 3, 1);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    w.idp.lock().set_allowed_addresses(APP, &["10.0.0.0/8", "192.168.7.7"]);
    let c = w.check().await;
    assert!(!c.ok);
    let why = c.error.unwrap();
    assert!(why.contains("127.0.0.1") && why.contains("IP addresses"), "{why}");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
    // Allowing the address (a single one this time) is all it takes.
    w.idp.lock().set_allowed_addresses(APP, &["10.0.0.0/8", "127.0.0.1"]);
    assert!(w.check().await.ok);
    assert_eq!(w.sync().await.state, "succeeded");
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_an_unreachable_url_one_that_is_not_a_crowd_service_and_a_missing_permission() {
    let d = Directory::generate(10, 2, 1);
    let mut w = CrowdWorld::new(jira(&d), bitbucket()).await;
    w.idp.lock().deny_permission(APP);
    let why = w.check().await.error.unwrap();
    assert!(why.contains("permission"), "{why}");
    // Bitbucket's own URL is a web server, but not a user server.
    w.source.server_url = w.bb.url();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("X-Embedded-Crowd-Version"), "{why}");
    // Nothing listens there (a port just freed).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    w.source.server_url = format!("http://{closed}");
    let why = w.check().await.error.unwrap();
    assert!(why.contains(&closed.to_string()), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_mid_fetch_deprovisions_nobody() {
    let d = Directory::generate(100, 10, 2);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    // Two people leave: a complete read would deprovision them.
    let mut after = d.clone();
    for gone in [&d.users[20], &d.users[21]] {
        w.idp.lock().remove_user(&gone.username);
        after.users.retain(|u| u.id != gone.id);
        after.memberships.retain(|m| m.member != gone.id);
    }
    // A users listing cut mid-body, then a server that answers nothing after the users.
    for rule in [
        FaultRule::new(Fault::Reset(Cut::MidBody)).route(RouteMatch::contains("entity-type=user")),
        FaultRule::new(Fault::Reset(Cut::BeforeServing)).skip_first(2),
    ] {
        let id = w.idp.faults().add(rule.times(Times::Always));
        let writes = w.bb_writes();
        let r = w.sync().await;
        assert_eq!(r.state, "failed", "{:?}", r.summary);
        assert_eq!(w.bb_writes(), writes, "{:?}", r.summary.planned);
        assert!(w.idp.faults().fired(id) > 0);
        w.idp.faults().remove(id);
        let licensed = w.bb.lock().licensed_users();
        assert!(licensed.contains(&d.users[20].username), "nobody was deprovisioned");
    }
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&2),
        "{:?}",
        r.summary.planned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_made_inactive_in_jira_is_deactivated_and_comes_back_when_active_again() {
    let d = Directory::generate(40, 6, 2);
    let w = CrowdWorld::new(jira(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let who = d.users[6].username.clone();
    let groups = groups_of(&w.bb, &who);
    w.idp.lock().update_user(&who, |u| u.active = false);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert!(
        !w.bb.lock().licensed_users().contains(&who),
        "no longer holds a licence"
    );
    w.idp.lock().update_user(&who, |u| u.active = true);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert!(w.bb.lock().licensed_users().contains(&who), "licensed again");
    assert_eq!(groups_of(&w.bb, &who), groups, "with the groups it had");
}
