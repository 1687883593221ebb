//! The `google` connector end to end: the Google Workspace simulator → Roster → the Bitbucket
//! simulator, signing in as a service account whose JSON key file the host reads.

use crate::common;

use common::Configured;
use common::google::{CLIENT_ID, GoogleWorld, account, fetch_of};
use common::world::{assert_bitbucket_matches, bitbucket};
use roster_sim::directory::{DirMembership, Directory};
use roster_sim::google::{MemberType, USER_SCOPE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_nested_groups_syncs_exactly_and_a_second_run_writes_nothing() {
    let d = Directory::generate(300, 40, 3);
    let w = GoogleWorld::new(account(&d), bitbucket()).await;
    assert!(w.check().await.ok, "{:?}", w.check().await.error);
    w.take_google_calls();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (300, 40));
    // The chains g ⊃ g+1 ⊃ g+2 ⊃ g+3 are flattened by Roster: Bitbucket holds nested members.
    assert_bitbucket_matches(&w.bb, &d);
    let (calls, by_route) = w.take_google_calls();
    assert_eq!(f.idp_requests, calls + 1, "and the token request: {by_route:?}");
    // One page of users (500 a page), one of groups (200), one members page per group.
    assert_eq!(by_route.get("GET /admin/directory/v1/users"), Some(&1), "{by_route:?}");
    assert_eq!(by_route.get("GET /admin/directory/v1/groups"), Some(&1), "{by_route:?}");
    assert!(calls <= 2 + 40, "{by_route:?}");
    assert_eq!(
        w.idp.lock().token_calls,
        2,
        "one token for check, one for the whole run"
    );
    w.assert_a_second_run_writes_nothing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_lists_users_and_groups_and_reads_only_the_changed_groups() {
    let mut d = Directory::generate(200, 24, 2);
    let w = GoogleWorld::new(account(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    w.take_google_calls();
    let writes_before = w.bb_writes();

    // Five display names, three users joining head groups, two leaving others: ten writes.
    for i in 0..5 {
        d.users[i].display_name = format!("Renamed User{i}");
        let id = w.id(&d.users[i].id);
        w.idp.lock().update_user(&id, |u| {
            u.given_name = "Renamed".into();
            u.family_name = format!("User{i}");
        });
    }
    let heads = d.head_groups();
    let expected = d.expected_members();
    for h in &heads[..3] {
        let members = &expected[&d.group_name(h)];
        let newcomer = d.users[5..]
            .iter()
            .find(|u| !members.contains(&u.username))
            .unwrap()
            .id
            .clone();
        d.memberships.push(DirMembership {
            group: h.clone(),
            member: newcomer.clone(),
            member_is_group: false,
        });
        let (g, u) = (w.id(h), w.id(&newcomer));
        w.idp.lock().add_member(&g, &u, MemberType::User);
    }
    for h in &heads[3..5] {
        let leaver = d
            .only_direct_members(h)
            .into_iter()
            .find(|u| u.as_str() > "u-000005")
            .unwrap();
        d.memberships.retain(|m| !(&m.group == h && m.member == leaver));
        let (g, u) = (w.id(h), w.id(&leaver));
        w.idp.lock().remove_member(&g, &u);
    }

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_bitbucket_matches(&w.bb, &d);
    assert_eq!(w.bb_writes() - writes_before, 10, "{:?}", r.summary.planned);
    let (calls, by_route) = w.take_google_calls();
    // The users page, the groups page, and the members of the five changed groups.
    assert_eq!(calls, 2 + 5, "{by_route:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_quota_is_backed_off_by_the_host_and_completes() {
    let d = Directory::generate(120, 12, 2);
    let mut g = account(&d);
    g.quota_next(2);
    let w = GoogleWorld::new(g, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    assert!(fetch_of(&r).idp_throttled >= 2, "{:?}", fetch_of(&r));
    assert_eq!(w.idp.lock().throttled, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_named_by_check_and_a_run_writes_nothing() {
    let d = Directory::generate(20, 3, 1);
    let mut w = GoogleWorld::new(account(&d), bitbucket()).await;
    // No domain-wide delegation for the service account's client id.
    w.idp.lock().delegate(CLIENT_ID, &[]);
    let c = w.check().await;
    let why = c.error.unwrap();
    assert!(
        why.contains("unauthorized_client") && why.contains("Domain-wide delegation"),
        "{why}"
    );
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");

    // Delegated the users scope only: the groups scope is named.
    w.idp.lock().delegate(CLIENT_ID, &[USER_SCOPE]);
    let why = w.check().await.error.unwrap();
    assert!(
        why.contains("does not grant https://www.googleapis.com/auth/admin.directory.group.readonly"),
        "{why}"
    );

    // Delegated, but acting for a user who is no admin.
    w.idp
        .lock()
        .delegate(CLIENT_ID, &[USER_SCOPE, roster_sim::google::GROUP_SCOPE]);
    w.source.admin_email = d.users[0].email.clone();
    w.take_google_calls();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("Not Authorized") && why.contains("Admin roles"), "{why}");
    // A 403 that is no quota refusal is not retried by the host: one request per listing.
    let (_, by_route) = w.take_google_calls();
    assert_eq!(by_route.get("GET /admin/directory/v1/users"), Some(&1), "{by_route:?}");
    assert_eq!(w.sync().await.state, "failed");
    assert_eq!(w.bb_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_google_does_not_hold_for_the_service_account_is_named_by_check() {
    let d = Directory::generate(4, 1, 1);
    let mut g = roster_sim::google::GoogleState::from_directory(&d, "example.com");
    // The service account's registered key is not the one in the key file Roster was given.
    g.add_service_account(
        common::google::SERVICE_ACCOUNT,
        CLIENT_ID,
        common::google::KEY_ID,
        "revoked",
    );
    g.delegate(CLIENT_ID, &[USER_SCOPE, roster_sim::google::GROUP_SCOPE]);
    g.set_admin(common::google::ADMIN, true);
    let w = GoogleWorld::new(g, bitbucket()).await;
    let why = w.check().await.error.unwrap();
    assert!(
        why.contains("Invalid JWT Signature") && why.contains("create a new JSON key"),
        "{why}"
    );
    assert_eq!(w.sync().await.state, "failed");
    assert_eq!(w.bb_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_fails_the_run_cleanly_naming_the_page_and_the_field() {
    let d = Directory::generate(30, 4, 1);
    let w = GoogleWorld::new(account(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let writes = w.bb_writes();
    w.idp.lock().malform_next_users_page();
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(
        why.contains("google: list users")
            && why.contains("/admin/directory/v1/users?customer=my_customer")
            && why.contains("primaryEmail"),
        "{why}"
    );
    assert_eq!(w.bb_writes(), writes, "nothing written, nothing removed");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded");
    assert_bitbucket_matches(&w.bb, &d);
}
