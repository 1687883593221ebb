//! The `entra` connector end to end: the Graph simulator → Roster → the Bitbucket simulator.

use crate::common;

use std::collections::BTreeSet;

use common::Configured;
use common::changes::working_day;
use common::entra::{CLIENT, EntraWorld, TENANT, app_tenant, fetch_of, tenant};
use common::world::{assert_bitbucket_matches, bitbucket, groups_of};
use roster_sim::directory::Directory;
use roster_sim::graph::GraphUser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_groups_nested_three_deep_syncs_exactly_and_a_second_run_writes_nothing() {
    let d = Directory::generate(300, 40, 3);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (300, 40));
    assert_bitbucket_matches(&w.bb, &d);
    let (calls, by_route) = w.take_graph_calls();
    assert_eq!(
        f.idp_requests,
        calls + by_route.get("POST /token").copied().unwrap_or(0)
    );
    assert_eq!(by_route.get("GET /groups/{id}/members"), Some(&40), "{by_route:?}");
    w.assert_a_second_run_writes_nothing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_run_after_ten_changes_makes_a_handful_of_graph_calls_and_exactly_ten_writes() {
    let mut d = Directory::generate(200, 24, 2);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    w.take_graph_calls();
    let writes_before = w.bb_writes();

    let changes = working_day(&mut d, &w);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_bitbucket_matches(&w.bb, &d);
    assert_eq!(w.bb_writes() - writes_before, changes, "{:?}", r.summary.planned);
    let (calls, by_route) = w.take_graph_calls();
    assert!(calls <= 4, "a handful of Graph calls, not a listing: {by_route:?}");
    let routes: BTreeSet<&str> = by_route.keys().map(String::as_str).collect();
    assert!(
        routes.is_subset(&BTreeSet::from([
            "GET /users/delta",
            "GET /groups/delta",
            "POST /token"
        ])),
        "{routes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_deleted_user_is_disabled_and_comes_back_with_memberships_when_restored() {
    let d = Directory::generate(40, 8, 2);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.sync().await;
    let victim = &d.users[7];
    let groups_before = groups_of(&w.bb, &victim.username);
    assert!(groups_before.len() >= 2, "{groups_before:?}");

    w.idp.lock().soft_delete_user(&victim.id);
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

    w.idp.lock().restore_user(&victim.id);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(groups_of(&w.bb, &victim.username), groups_before);
    assert_bitbucket_matches(&w.bb, &d);
}

/// Under `deprovision = "delete"`, `@removed: deleted` deletes the account, while
/// `@removed: changed` (soft-deleted, restorable for 30 days) only disables it, so a restore
/// brings the same account back with its groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_and_hard_deletes_differ_under_the_delete_policy() {
    let d = Directory::generate(30, 4, 2);
    let mut w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.target_extra = "deprovision = \"delete\"".into();
    assert_eq!(w.sync().await.state, "succeeded");
    let (gone, binned) = (d.users[3].clone(), d.users[4].clone());
    assert!(w.bb.lock().users().contains_key(&gone.username));
    let groups_before = groups_of(&w.bb, &binned.username);
    assert!(groups_before.len() >= 2, "{groups_before:?}");
    w.idp.lock().hard_delete_user(&gone.id);
    w.idp.lock().soft_delete_user(&binned.id);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("delete-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert!(!w.bb.lock().users().contains_key(&gone.username), "deleted");
    assert!(
        w.bb.lock().users().contains_key(&binned.username),
        "soft-deleted: kept, disabled"
    );
    assert!(!w.bb.lock().licensed_users().contains(&binned.username));

    w.idp.lock().restore_user(&binned.id);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert!(
        !r.summary.planned.contains_key("create-user"),
        "the same account: {:?}",
        r.summary.planned
    );
    assert_eq!(groups_of(&w.bb, &binned.username), groups_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_that_expires_mid_run_is_renewed_and_the_run_completes() {
    let d = Directory::generate(120, 12, 2);
    let mut g = tenant(&d);
    g.set_token_call_limit(Some(5));
    let w = EntraWorld::new(g, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    let (tokens, refused) = {
        let g = w.idp.lock();
        (g.token_calls, g.refused_tokens)
    };
    assert!(
        tokens >= 3 && refused >= 2,
        "tokens were renewed after Graph refused them ({tokens} token requests, {refused} refused)"
    );
    let f = fetch_of(&r);
    assert!(f.complete && f.users == 120 && f.groups == 12, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_really_expires_is_renewed_before_use() {
    let d = Directory::generate(60, 6, 2);
    let mut g = tenant(&d);
    // Two seconds: the connector renews at half the lifetime, and Graph refuses expired ones.
    g.set_token_lifetime(2);
    g.throttle_every(4, Some(1));
    let w = EntraWorld::new(g, bitbucket()).await;
    let started = std::time::Instant::now();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    assert!(started.elapsed().as_secs_f64() > 2.0, "the run outlived one token");
    let g = w.idp.lock();
    assert!(g.token_calls >= 2, "{} token requests", g.token_calls);
    assert_eq!(g.refused_tokens, 0, "renewed before it expired, never after a refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_tenant_slows_the_run_down_and_it_completes() {
    let d = Directory::generate(120, 12, 2);
    let mut g = tenant(&d);
    g.throttle_every(3, Some(0));
    g.throttle_next(2, 503, Some(1));
    let w = EntraWorld::new(g, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
    let f = fetch_of(&r);
    let throttled = w.idp.lock().throttled;
    assert!(throttled >= 5, "{throttled}");
    assert_eq!(f.idp_throttled, throttled, "the run reports each 429/503 it waited out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_falls_back_to_a_full_fetch_with_the_right_result() {
    let mut d = Directory::generate(60, 8, 2);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.sync().await;
    d.users[1].display_name = "Changed While Expired".into();
    w.idp
        .lock()
        .update_user(&d.users[1].id, |u| u.display_name = "Changed While Expired".into());
    w.idp.lock().expire_delta_tokens();
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert_eq!(f.mode, "full");
    assert!(
        f.fell_back.as_deref().unwrap_or("").contains("syncStateNotFound"),
        "{f:?}"
    );
    assert!(
        r.summary.warnings.iter().any(|w| w.contains("full fetch")),
        "{:?}",
        r.summary.warnings
    );
    assert_bitbucket_matches(&w.bb, &d);
    // The fresh token works again.
    w.take_graph_calls();
    assert_eq!(fetch_of(&w.sync_incremental().await).mode, "incremental");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_reset_410_also_falls_back_to_a_full_fetch() {
    let d = Directory::generate(20, 4, 1);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.sync().await;
    w.idp.lock().reset_sync();
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded");
    assert_eq!(fetch_of(&r).mode, "full");
    assert!(fetch_of(&r).fell_back.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_assignment_scope_expands_a_nested_assigned_group_and_nothing_else() {
    let (g, _) = app_tenant();
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.source.settings = "scope = \"app\"\napp_id = \"0a1b2c3d-0000-4000-8000-00000000b17b\"".into();
    assert!(w.check().await.ok);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let bb = w.bb.lock();
    let users: BTreeSet<&str> = bb
        .users()
        .keys()
        .map(String::as_str)
        .filter(|u| *u != "admin")
        .collect();
    assert_eq!(
        users,
        BTreeSet::from(["ann", "ben", "cat", "dan"]),
        "eve is not assigned"
    );
    let members = |g: &str| bb.groups().get(g).cloned().unwrap_or_default();
    assert_eq!(
        members("bb-a"),
        BTreeSet::from(["ann".into(), "ben".into(), "cat".into()])
    );
    assert_eq!(members("bb-b"), BTreeSet::from(["ben".into(), "cat".into()]));
    assert_eq!(members("bb-c"), BTreeSet::from(["cat".into()]));
    assert!(
        !bb.groups().contains_key("marketing"),
        "an unassigned group is not synced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_scope_follows_joins_and_leaves_incrementally() {
    let (g, _) = app_tenant();
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.source.settings = "scope = \"groups\"\ngroups = [\"bb-a\"]".into();
    // One of four accounts leaving is 25 %: over the default threshold, and expected here.
    w.target_extra = "threshold = { count = 50, percent = 100 }".into();
    assert_eq!(w.sync().await.state, "succeeded");
    let (eve, c, ben, b) = {
        let g = w.idp.lock();
        (
            g.user_id_by_upn("eve@contoso.example").unwrap(),
            g.group_id_by_name("bb-c").unwrap(),
            g.user_id_by_upn("ben@contoso.example").unwrap(),
            g.group_id_by_name("bb-b").unwrap(),
        )
    };
    assert!(!w.bb.lock().users().contains_key("eve"));
    // eve joins a group nested two levels down; ben leaves the only scope group he was in.
    w.idp.lock().add_member(&c, &eve);
    w.idp.lock().remove_member(&b, &ben);
    w.idp.lock().update_user(&ben, |u| u.display_name = "Ben Out".into());
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    let bb = w.bb.lock();
    assert!(bb.groups()["bb-a"].contains("eve") && bb.groups()["bb-c"].contains("eve"));
    assert!(
        !bb.licensed_users().contains("ben"),
        "ben left the scope and was disabled"
    );
    assert!(!bb.groups()["bb-a"].contains("ben"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_the_nesting_of_a_scope_refetches_the_scope_in_full() {
    let (g, _) = app_tenant();
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.source.settings = "scope = \"groups\"\ngroups = [\"bb-a\"]".into();
    w.sync().await;
    let (a, marketing) = {
        let g = w.idp.lock();
        (
            g.group_id_by_name("bb-a").unwrap(),
            g.group_id_by_name("marketing").unwrap(),
        )
    };
    w.idp.lock().add_member(&a, &marketing);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "full", "{:?}", fetch_of(&r));
    assert!(
        w.bb.lock().groups()["bb-a"].contains("eve"),
        "marketing's members are in scope now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_secret_fails_check_with_the_reason_and_a_run_fails_cleanly_with_zero_writes() {
    let d = Directory::generate(20, 3, 1);
    let mut w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.source.secret = "not-the-secret".into();
    let c = w.check().await;
    assert!(!c.ok);
    let why = c.error.unwrap();
    assert!(
        why.contains("client secret was refused") && why.contains("AADSTS7000215"),
        "{why}"
    );
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert!(
        r.summary.warnings.iter().any(|x| x.contains("AADSTS7000215")),
        "{:?}",
        r.summary.warnings
    );
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_bad_tenant_missing_permissions_and_unknown_groups() {
    let d = Directory::generate(5, 2, 1);
    let mut g = tenant(&d);
    g.add_client("limited-app", Some("limited-secret"), &["GroupMember.Read.All"]);
    g.add_client("users-only-app", Some("users-only-secret"), &["User.Read.All"]);
    let mut w = EntraWorld::new(g, bitbucket()).await;
    assert!(w.check().await.ok, "{:?}", w.check().await.error);

    w.source.tenant_id = "nosuch.onmicrosoft.com".into();
    let started = std::time::Instant::now();
    let why = w.check().await.error.unwrap();
    assert!(started.elapsed() < common::PROMPT, "check answers promptly");
    assert!(
        why.contains("tenant_id `nosuch.onmicrosoft.com`") && why.contains("AADSTS90002"),
        "{why}"
    );

    w.source.tenant_id = common::entra::TENANT.into();
    w.source.client_id = "limited-app".into();
    w.source.secret = "limited-secret".into();
    w.source.settings = "scope = \"app\"\napp_id = \"0a1b2c3d-0000-4000-8000-00000000b17b\"".into();
    let why = w.check().await.error.unwrap();
    assert!(
        why.contains("User.Read.All") && why.contains("Application.Read.All") && !why.contains("GroupMember"),
        "{why}"
    );

    // Users readable, groups and their members not.
    w.source.client_id = "users-only-app".into();
    w.source.secret = "users-only-secret".into();
    w.source.settings = String::new();
    let why = w.check().await.error.unwrap();
    assert!(
        why.contains("GroupMember.Read.All") && !why.contains("User.Read.All") && why.contains("users-only-app"),
        "{why}"
    );

    w.source.client_id = CLIENT.into();
    w.source.secret = common::entra::SECRET.into();
    w.source.settings = "scope = \"groups\"\ngroups = [\"team-00000\", \"no-such-team\"]".into();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("unknown group `no-such-team`"), "{why}");

    w.source.settings = "username_attribute = \"employeeNumber\"".into();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("username_attribute"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_credentials_sign_in_with_a_host_signed_assertion() {
    let d = Directory::generate(10, 2, 1);
    let mut g = tenant(&d);
    let fixtures = common::repo().join("host/roster/tests/fixtures");
    let public = std::fs::read_to_string(fixtures.join("test-rsa-pub.pem")).unwrap();
    g.add_client_certificate(CLIENT, &public, "E32CDD3040D06194F9DB3F904A78046BFA71FAEC");
    let mut w = EntraWorld::new(g, bitbucket()).await;
    let url = w.idp.url();
    w.source.settings = "auth = \"certificate\"\ncertificate_thumbprint = \"E3:2C:DD:30:40:D0:61:94:F9:DB:3F:90:4A:78:04:6B:FA:71:FA:EC\"".into();
    w.source.secrets = format!(
        "[[source.secrets]]\nname = \"certificate_key\"\nkind = \"signing-key\"\nfile = \"{}\"\nclient_id = \"{CLIENT}\"\naudience = \"{url}/{TENANT}/oauth2/v2.0/token\"",
        fixtures.join("test-rsa-key.pem").display()
    );
    assert!(w.check().await.ok, "{:?}", w.check().await.error);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);

    // The wrong certificate is refused with a reason that says what to compare.
    w.source.settings =
        "auth = \"certificate\"\ncertificate_thumbprint = \"0000000000000000000000000000000000000000\"".into();
    let why = w.check().await.error.unwrap();
    assert!(why.contains("certificate assertion was refused"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_get_their_email_from_mail_or_other_mails_as_configured() {
    let d = Directory::generate(3, 1, 1);
    let mut g = tenant(&d);
    g.add_user(GraphUser {
        user_principal_name: "gus_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
        mail: None,
        other_mails: vec!["gus@fabrikam.com".into()],
        display_name: "Gus Guest".into(),
        account_enabled: true,
        user_type: "Guest".into(),
        ..GraphUser::default()
    });
    g.add_user(GraphUser {
        user_principal_name: "hal_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
        mail: Some("hal.mail@fabrikam.com".into()),
        other_mails: vec!["hal.other@fabrikam.com".into()],
        display_name: "Hal Guest".into(),
        account_enabled: true,
        user_type: "Guest".into(),
        ..GraphUser::default()
    });
    // Invited as a member (userType Member), still a guest: `#EXT#` in the UPN says so.
    g.add_user(GraphUser {
        user_principal_name: "ivy_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
        mail: None,
        other_mails: vec!["ivy@fabrikam.com".into()],
        display_name: "Ivy Member-Guest".into(),
        account_enabled: true,
        user_type: "Member".into(),
        ..GraphUser::default()
    });
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.target_extra = "threshold = { count = 50, percent = 100 }".into();
    w.sync().await;
    {
        let bb = w.bb.lock();
        // normalize strips the domain of the email the guest is known by.
        assert_eq!(bb.users()["gus"].email, "gus@fabrikam.com");
        assert_eq!(bb.users()["hal.mail"].email, "hal.mail@fabrikam.com");
        assert_eq!(bb.users()["ivy"].email, "ivy@fabrikam.com");
    }
    w.source.settings = "guest_email = \"other-mails\"\ninclude_guests = true".into();
    w.sync().await;
    assert_eq!(w.bb.lock().users()["hal.other"].email, "hal.other@fabrikam.com");
    w.source.settings = "include_guests = false".into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded");
    assert!(
        !w.bb.lock().licensed_users().contains("gus"),
        "guests excluded are deprovisioned"
    );
    assert!(
        !w.bb.lock().licensed_users().contains("ivy"),
        "a member-typed #EXT# account is a guest too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_filter_scopes_the_tenant_and_follows_changes_incrementally() {
    let mut d = Directory::generate(20, 2, 1);
    d.users[0].active = true;
    let mut g = tenant(&d);
    for (i, u) in d.users.iter().enumerate() {
        let dept = if i % 2 == 0 { "Engineering" } else { "Sales" };
        g.update_user(&u.id, |x| x.department = Some(dept.into()));
    }
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.source.settings = "user_filter = \"department eq 'Engineering'\"".into();
    assert_eq!(w.sync().await.state, "succeeded");
    let mut licensed = w.bb.lock().licensed_users();
    licensed.remove("admin");
    assert_eq!(licensed.len(), 10, "{licensed:?}");
    assert!(licensed.contains("user000000") && !licensed.contains("user000001"));
    // user 2 moves to Sales (leaves the filter), user 3 to Engineering (joins it).
    w.idp
        .lock()
        .update_user(&d.users[2].id, |x| x.department = Some("Sales".into()));
    w.idp
        .lock()
        .update_user(&d.users[3].id, |x| x.department = Some("Engineering".into()));
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    let licensed = w.bb.lock().licensed_users();
    assert!(
        !licensed.contains("user000002") && licensed.contains("user000003"),
        "{licensed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_graph_answer_fails_the_run_cleanly_and_the_next_run_recovers() {
    let d = Directory::generate(30, 4, 1);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.idp.lock().corrupt_next("/groups");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    let why = fetch_of(&r).error.clone().unwrap();
    assert!(
        why.contains("not the JSON expected") || why.contains("OData collection"),
        "{why}"
    );
    assert_eq!(w.bb_writes(), 0);
    assert!(
        w.store.mirror_users("entra").unwrap().is_empty(),
        "the mirror is untouched"
    );
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded");
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_scope_settings_never_continue_an_old_delta_token() {
    let (g, _) = app_tenant();
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.sync().await;
    w.source.settings = "scope = \"groups\"\ngroups = [\"bb-b\"]".into();
    let r = w.sync_incremental().await;
    let f = fetch_of(&r);
    assert_eq!(f.mode, "full");
    assert!(
        f.fell_back
            .as_deref()
            .unwrap_or("")
            .contains("scope or attributes changed"),
        "{f:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_delta_object_is_read_again_instead_of_blanking_the_record() {
    let mut d = Directory::generate(30, 3, 1);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.sync().await;
    // Graph describes the changed user by id and display name only.
    w.idp.lock().delta_minimal = true;
    d.users[5].email = "moved@example.com".into();
    w.idp
        .lock()
        .update_user(&d.users[5].id, |u| u.mail = Some("moved@example.com".into()));
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_bitbucket_matches(&w.bb, &d);
    assert_eq!(
        r.summary.planned.get("update-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_enters_the_group_filter_arrives_with_all_its_members() {
    let d = Directory::generate(40, 8, 2);
    let mut w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.source.settings = "group_filter = \"startswith(displayName,'team-0000')\"".into();
    // The rename takes the old group from its 10 members: a quarter of these 40 people, which
    // the default threshold holds (in Bitbucket the old name carried the permissions).
    w.target_extra = "threshold = { people_losing_memberships = { count = 100, percent = 100, floor = 5 } }".into();
    w.sync().await;
    assert!(w.bb.lock().groups().contains_key("team-00003"));
    // A group outside the filter is renamed into it: its existing members come with it.
    let gid = d.groups[7].id.clone();
    w.idp
        .lock()
        .update_group(&gid, |x| x.display_name = "team-00009".into());
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    let mut renamed = d.clone();
    renamed.groups[7].name = "team-00009".into();
    let want = &renamed.expected_members()["team-00009"];
    assert!(!want.is_empty());
    assert_eq!(w.bb.lock().groups().get("team-00009"), Some(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn including_guests_again_is_a_full_fetch_that_brings_them_back() {
    let d = Directory::generate(5, 1, 1);
    let mut g = tenant(&d);
    g.add_user(GraphUser {
        user_principal_name: "gus_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
        mail: Some("gus@fabrikam.com".into()),
        display_name: "Gus Guest".into(),
        account_enabled: true,
        user_type: "Guest".into(),
        ..GraphUser::default()
    });
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.source.settings = "include_guests = false".into();
    w.sync().await;
    assert!(!w.bb.lock().users().contains_key("gus"));
    w.source.settings = "include_guests = true".into();
    let r = w.sync_incremental().await;
    let f = fetch_of(&r);
    assert_eq!(f.mode, "full", "{f:?}");
    assert!(w.bb.lock().users().contains_key("gus"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_link_graph_does_not_know_falls_back_to_a_full_fetch() {
    let d = Directory::generate(10, 2, 1);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    w.sync().await;
    // The stored links now carry a token this tenant never issued.
    let db = rusqlite::Connection::open(w.rt.dir.path().join("roster.db")).unwrap();
    let n = db
        .execute(
            "UPDATE cursors SET delta_token = replace(delta_token, 'deltatoken=', 'deltatoken=XX') WHERE source = 'entra'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert_eq!(f.mode, "full", "{f:?}");
    assert!(f.fell_back.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_scope_follows_a_direct_user_incrementally_and_refetches_when_assignments_change() {
    let (g, sp) = app_tenant();
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.source.settings = format!("scope = \"app\"\napp_id = \"{}\"", common::entra::APP_ID);
    w.target_extra = "threshold = { count = 50, percent = 100 }".into();
    assert_eq!(w.sync().await.state, "succeeded");
    let (dan, eve, a) = {
        let g = w.idp.lock();
        (
            g.user_id_by_upn("dan@contoso.example").unwrap(),
            g.user_id_by_upn("eve@contoso.example").unwrap(),
            g.group_id_by_name("bb-a").unwrap(),
        )
    };
    // A directly assigned user changes; an unassigned one changes too (and costs nothing).
    w.idp.lock().update_user(&dan, |u| u.display_name = "Dan Direct".into());
    w.idp
        .lock()
        .update_user(&eve, |u| u.display_name = "Eve Elsewhere".into());
    w.take_graph_calls();
    let r = w.sync_incremental().await;
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_eq!(w.bb.lock().users()["dan"].display_name, "Dan Direct");
    assert!(!w.bb.lock().users().contains_key("eve"));
    let (_, calls) = w.take_graph_calls();
    assert!(!calls.contains_key("GET /users/{id}/transitiveMemberOf"), "{calls:?}");
    // The group is unassigned: the scope is read again in full.
    w.idp.lock().unassign(&sp, &a);
    let r = w.sync_incremental().await;
    let f = fetch_of(&r);
    assert_eq!(f.mode, "full", "{f:?}");
    assert!(f.fell_back.as_deref().unwrap_or("").contains("assigned"), "{f:?}");
    let licensed = w.bb.lock().licensed_users();
    assert!(licensed.contains("dan") && !licensed.contains("cat"), "{licensed:?}");
}

/// The full fetch asks Graph for exactly the attributes a mapping needs (the documented list,
/// plus configured extension attributes) 999 at a time, and an extension attribute reaches the
/// mirror, where mappings read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_fetch_selects_the_mapped_attributes_999_at_a_time_with_extension_attributes() {
    const EXT: &str = "extension_5f2a9c1e00004000800000000000b17b_costCenter";
    let d = Directory::generate(12, 2, 1);
    let mut g = tenant(&d);
    g.register_extension(EXT);
    let id = d.users[2].id.clone();
    g.update_user(&id, |u| {
        u.extensions.insert(EXT.into(), serde_json::json!("CC-4711"));
    });
    let mut w = EntraWorld::new(g, bitbucket()).await;
    w.source.settings = format!("extension_attributes = [\"{EXT}\"]");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let requests: Vec<String> = w.idp.lock().requests.iter().cloned().collect();
    let listing = requests
        .iter()
        .find(|r| r.starts_with("GET /v1.0/users?") && r.contains("$top=999"))
        .unwrap_or_else(|| panic!("no user listing 999 at a time: {requests:#?}"));
    let select: BTreeSet<&str> = listing
        .split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .find_map(|p| p.strip_prefix("$select="))
        .unwrap_or_else(|| panic!("no $select: {listing}"))
        .split(',')
        .collect();
    for a in [
        "id",
        "userPrincipalName",
        "mail",
        "displayName",
        "givenName",
        "surname",
        "accountEnabled",
        "employeeId",
        "department",
        "onPremisesSamAccountName",
        "otherMails",
        EXT,
    ] {
        assert!(select.contains(a), "{a} missing from {listing}");
    }
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /v1.0/groups?") && r.contains("$top=999")),
        "{requests:#?}"
    );
    let mirror = w.store.mirror_users("entra").unwrap();
    let user = mirror.iter().find(|u| u.ext_id == id).unwrap();
    assert!(
        user.attributes.iter().any(|(k, v)| k == EXT && v == "CC-4711"),
        "{:?}",
        user.attributes
    );
}
