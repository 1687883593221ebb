//! The `keycloak` connector end to end: the Keycloak simulator → Roster → the Bitbucket
//! simulator.

use crate::common;

use common::Configured;
use common::changes::working_day;
use common::keycloak::{KeycloakWorld, fetch_of, realm};
use common::world::{assert_bitbucket_matches, bitbucket, groups_of};
use roster_sim::directory::Directory;
use roster_sim::keycloak::{GroupsApi, Role};

/// Groups of `d` that hold sub-groups: each costs one `/children` listing.
fn parents(d: &Directory) -> u64 {
    let heads: std::collections::BTreeSet<&str> = d
        .memberships
        .iter()
        .filter(|m| m.member_is_group)
        .map(|m| m.group.as_str())
        .collect();
    heads.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realm_with_sub_groups_syncs_exactly_and_a_second_run_writes_nothing() {
    let d = Directory::generate(300, 40, 3);
    let w = KeycloakWorld::new(realm(&d), bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (300, 40));
    // Sub-groups' members are their parents' members too: the flattened memberships match.
    assert_bitbucket_matches(&w.bb, &d);
    let (calls, by_route) = w.take_calls();
    let token_calls = by_route
        .get("POST /realms/{realm}/protocol/openid-connect/token")
        .copied()
        .unwrap_or(0);
    assert_eq!(f.idp_requests, calls + token_calls, "{by_route:?}");
    let route = |r: &str| by_route.get(r).copied().unwrap_or(0);
    // The paging floor: one page of users and of top-level groups (1,000 a page), one member
    // listing per group, one children listing per group with sub-groups.
    assert_eq!(route("GET /admin/realms/{realm}/users"), 1, "{by_route:?}");
    assert_eq!(route("GET /admin/realms/{realm}/groups"), 1, "{by_route:?}");
    assert_eq!(
        route("GET /admin/realms/{realm}/groups/{id}/members"),
        40,
        "{by_route:?}"
    );
    assert_eq!(
        route("GET /admin/realms/{realm}/groups/{id}/children"),
        parents(&d),
        "{by_route:?}"
    );
    w.assert_a_second_run_writes_nothing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_named_by_path_by_default_and_keycloak_before_23_syncs_the_same() {
    let d = Directory::generate(40, 8, 2);
    let mut k = realm(&d);
    k.set_groups_api(GroupsApi::Inline);
    k.set_auth_prefix();
    let mut w = KeycloakWorld::new(k, bitbucket()).await;
    assert!(w.source.base_url.ends_with("/auth"), "{}", w.source.base_url);
    w.source.settings = String::new();
    assert!(w.check().await.ok, "{:?}", w.check().await.error);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let (_, by_route) = w.take_calls();
    assert!(!by_route.keys().any(|k| k.contains("/children")), "{by_route:?}");
    let groups = w.bb.lock().groups().clone();
    let expected = d.expected_members();
    let deep = "/team-00000/team-00001/team-00002/team-00003";
    assert_eq!(groups.get(deep), expected.get("team-00003"), "{:?}", groups.keys());
    assert_eq!(
        groups.get("/team-00000"),
        expected.get("team-00000"),
        "a parent holds its sub-groups' members"
    );

    // Separate sub-groups: every group holds its direct members only.
    w.source.settings = "subgroups = \"separate\"".into();
    // Parents losing their sub-groups' members is the point here, not a mass removal to stop.
    w.target_extra = concat!(
        "threshold = { count = 500, percent = 100, memberships_removed = 100000, ",
        "people_losing_memberships = { count = 500, percent = 100, floor = 5 }, ",
        "group_members_lost = { percent = 100, floor = 10 } }"
    )
    .into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let direct: std::collections::BTreeSet<String> = d
        .memberships
        .iter()
        .filter(|m| m.group == "g-00000" && !m.member_is_group)
        .map(|m| d.username(&m.member).to_lowercase())
        .collect();
    assert_eq!(w.bb.lock().groups().get("/team-00000"), Some(&direct));
    assert_ne!(Some(&direct), expected.get("team-00000"), "the nesting mattered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_reads_the_realm_in_full_and_writes_only_the_changes() {
    let mut d = Directory::generate(200, 24, 2);
    let w = KeycloakWorld::new(realm(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let (full_calls, _) = w.take_calls();
    let writes_before = w.bb_writes();

    let changes = working_day(&mut d, &w);
    // A deletion, which no changed-since listing would show, is seen too.
    let gone = d.users[150].clone();
    let held = groups_of(&w.bb, &gone.username).len() as u64 - 1;
    let id = w.id(&gone.id);
    w.idp.lock().delete_user(&id);
    d.users.retain(|u| u.id != gone.id);
    d.memberships.retain(|m| m.member != gone.id);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        fetch_of(&r).mode,
        "full",
        "Keycloak keeps no changed-since: no delta token"
    );
    assert_bitbucket_matches(&w.bb, &d);
    assert!(
        !w.bb.lock().licensed_users().contains(&gone.username),
        "the deleted user lost their licence"
    );
    let writes = w.bb_writes() - writes_before;
    // Ten changes; the deleted user deactivated and out of each group that held them.
    assert_eq!(writes, changes + 1 + held, "{:?}", r.summary.planned);
    let (calls, by_route) = w.take_calls();
    assert_eq!(calls, full_calls, "an incremental run costs a full read: {by_route:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_realm_slows_the_run_down_and_it_completes() {
    let d = Directory::generate(120, 12, 2);
    let k = realm(&d);
    // A proxy in front of Keycloak: 20 requests a second, bursts of 5, 429 with Retry-After.
    k.throttle().limit(20.0, 5);
    let mut k = k;
    k.fail_next(2, "/members", 503);
    let w = KeycloakWorld::new(k, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    assert!(fetch_of(&r).idp_throttled >= 3, "{:?}", fetch_of(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_a_wrong_realm_and_missing_roles_are_named_by_check_and_a_run_writes_nothing() {
    let d = Directory::generate(20, 3, 1);
    let mut w = KeycloakWorld::new(realm(&d), bitbucket()).await;
    assert!(w.check().await.ok, "{:?}", w.check().await.error);

    w.source.secret = "not-the-secret".into();
    let why = w.check().await.error.unwrap();
    assert!(
        why.contains("unauthorized_client") && why.contains("client `roster`") && why.contains("Credentials tab"),
        "{why}"
    );
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");
    w.source.secret = common::keycloak::SECRET.into();

    w.source.realm = "acmee".into();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("no realm `acmee`"), "{why}");
    w.source.realm = common::keycloak::REALM.into();

    w.idp.lock().set_roles(common::keycloak::CLIENT, &[Role::QueryGroups]);
    let why = w.check().await.error.unwrap();
    assert!(why.contains("list users") && why.contains("view-users"), "{why}");
    w.idp.lock().set_roles(common::keycloak::CLIENT, &[]);
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_fails_the_run_cleanly_naming_the_page_and_the_field_and_the_next_run_recovers() {
    let d = Directory::generate(30, 4, 1);
    let w = KeycloakWorld::new(realm(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let writes = w.bb_writes();
    w.idp.lock().corrupt_next("/members");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(why.contains("keycloak") && why.contains("/members?first=0"), "{why}");
    assert_eq!(w.bb_writes(), writes, "nothing written, nothing removed");

    // A field of the wrong type is named.
    let id = w.id(&d.users[3].id);
    w.idp.lock().update_user(&id, |u| {
        drop(u.overrides.insert("enabled".into(), serde_json::json!("yes")))
    });
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(
        why.contains("keycloak: list users (page /admin/realms/acme/users?first=0") && why.contains("[3].enabled"),
        "{why}"
    );
    assert_eq!(w.bb_writes(), writes);

    w.idp.lock().update_user(&id, |u| u.overrides.clear());
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
}
