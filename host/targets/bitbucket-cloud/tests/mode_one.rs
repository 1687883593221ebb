//! The Bitbucket Cloud target against the simulator, in a workspace administered in Bitbucket:
//! what a read finds, what each operation sends, the hourly budget across targets sharing a
//! store, and "test connection" in both modes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use roster_engine::{Op, Patience, ReadScope, Target, TargetConfig, TargetState};
use roster_sim::bitbucket_cloud::{Administration, CloudSim, CloudState};
use roster_store::Store;
use roster_store::crypto::Key;
use roster_target_bitbucket_cloud::BitbucketCloudTarget;
use serde_json::{Value, json};

const USER: &str = "roster-bot";
const PASSWORD: &str = "app-password";

fn store() -> Arc<Store> {
    Arc::new(Store::memory(Key::from_bytes([7; 32])).unwrap())
}

/// A workspace `acme` with Roster's own account (an owner) and the groups `developers`
/// (write), `admins` (admin) and `wiki` (no permission).
fn workspace(administration: Administration) -> CloudState {
    let mut s = CloudState::new("acme", administration);
    s.credentials(USER, PASSWORD);
    s.scim_directory("dir-1", "scim-key");
    s.add_group("developers", Some("write"));
    s.add_group("admins", Some("admin"));
    s.add_group("wiki", None);
    let bot = s.add_account(USER, "Roster", "roster@acme.test");
    s.make_owner(&bot);
    s
}

fn config(sim: &CloudSim, extra: Value) -> TargetConfig {
    let mut v = json!({
        "id": "cloud", "kind": "bitbucket-cloud", "workspace": "acme", "username": USER,
        "app_password": {"value": PASSWORD}, "url": sim.url(), "default_groups": ["developers"],
        "max_retries": 1,
    });
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

fn target(sim: &CloudSim, store: &Arc<Store>, extra: Value) -> BitbucketCloudTarget {
    BitbucketCloudTarget::new(
        &config(sim, extra),
        std::path::Path::new("."),
        Patience::Run,
        store.clone(),
    )
    .unwrap()
}

async fn read(t: &BitbucketCloudTarget, people: &BTreeMap<String, Option<String>>) -> TargetState {
    t.read(&ReadScope {
        groups: &BTreeSet::new(),
        people,
        concurrency: 2,
    })
    .await
    .unwrap()
}

fn people(names: &[&str]) -> BTreeMap<String, Option<String>> {
    names
        .iter()
        .map(|n| (n.to_string(), Some(format!("{n}@acme.test"))))
        .collect()
}

/// Requests the simulator served whose path and query start with `prefix`.
fn sent(sim: &CloudSim, method: &str, prefix: &str) -> usize {
    sim.log()
        .entries()
        .iter()
        .filter(|e| e.method.as_str() == method && e.target.starts_with(prefix))
        .count()
}

fn total(sim: &CloudSim) -> usize {
    sim.log().entries().len()
}

async fn apply(t: &BitbucketCloudTarget, op: Op) -> Result<Option<String>, roster_engine::TargetError> {
    t.apply(&op).await.result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_found_by_email_ninety_addresses_a_call_and_remembered() {
    let mut s = workspace(Administration::Bitbucket);
    let mut names = Vec::new();
    for i in 0..200 {
        let name = format!("p{i:03}");
        let id = s.add_account(
            &format!("nick{i}"),
            &format!("Person {i}"),
            &format!("{name}@acme.test"),
        );
        s.join(&id, "developers");
        names.push(name);
    }
    // A member Roster has no name for, whose nickname is a desired person's name.
    let stranger = s.add_account("p001", "Stranger", "stranger@elsewhere.test");
    s.join(&stranger, "wiki");
    let sim = CloudSim::start(s).await;
    let store = store();
    let t = target(&sim, &store, json!({"seats": 500}));

    let mut wanted = people(&names.iter().map(String::as_str).collect::<Vec<_>>());
    wanted.insert("nobody".into(), Some("nobody@acme.test".into()));
    let state = read(&t, &wanted).await;
    // 201 addresses: three lookups of at most 90.
    assert_eq!(sent(&sim, "GET", "/2.0/workspaces/acme/members?q="), 3);
    assert_eq!(state.users.len(), 202, "200 people, the stranger, Roster");
    assert_eq!(state.users["p042"].display_name, "Person 42");
    assert_eq!(state.users["p042"].email.as_deref(), Some("p042@acme.test"));
    assert!(!state.users["p042"].mutable && state.users["p042"].active);
    assert!(state.members["developers"].iter().any(|m| &**m == "p199"));
    let stranger_key = stranger.to_lowercase();
    assert_eq!(
        state.users[&stranger_key].name, stranger,
        "keyed by account id, never a Roster name"
    );
    assert!(state.members["wiki"].iter().any(|m| **m == *stranger_key));
    assert!(state.users.contains_key(USER) && state.admins.contains(USER));
    assert_eq!(state.admin_groups, BTreeSet::from(["admins".to_string()]));
    assert_eq!(
        state.licensing_groups,
        BTreeSet::from(["admins".to_string(), "developers".to_string()])
    );
    assert_eq!((state.seats.in_use, state.seats.limit), (Some(202), Some(500)));
    assert!(state.licensed().contains("p007"));

    // The next read (another target on the same store: another run) asks only for the one
    // address with no account.
    sim.log().clear();
    let t2 = target(&sim, &store, json!({}));
    let again = read(&t2, &wanted).await;
    assert_eq!(sent(&sim, "GET", "/2.0/workspaces/acme/members?q="), 1);
    assert_eq!(again.users.len(), 202);
    assert!(again.users.contains_key("p150"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_pending_until_accepted_then_the_account_is_the_person_s() {
    let sim = CloudSim::start(workspace(Administration::Bitbucket)).await;
    let store = store();
    let t = target(&sim, &store, json!({}));
    let ann = people(&["ann"]);
    read(&t, &ann).await;
    let op = Op::CreateUser {
        user: "ann".into(),
        display_name: "Ann Lee".into(),
        email: "ann@acme.test".into(),
        records: vec![],
    };
    let outcome = t.apply(&op).await;
    assert_eq!(outcome.requests, 1);
    assert!(
        outcome
            .result
            .unwrap()
            .unwrap()
            .contains("invited ann@acme.test into developers")
    );
    let invitations = sim.lock().invitations();
    assert_eq!(invitations.len(), 1);
    assert_eq!(
        (invitations[0].email.as_str(), invitations[0].group_slug.as_str()),
        ("ann@acme.test", "developers")
    );
    // Again (an interrupted run): a note, no second invitation.
    assert!(apply(&t, op).await.unwrap().unwrap().contains("already invited"));

    // Pending, even for a read that does not name her (another run, from the store's record).
    let state = read(&target(&sim, &store, json!({})), &BTreeMap::new()).await;
    assert!(!state.users.contains_key("ann"));
    let pending = &state.pending["ann"];
    assert_eq!(pending.email, "ann@acme.test");
    assert!(pending.since_ms.is_some());
    // Someone else's invitation, to an address no desired person has, is not Roster's.
    sim.lock().add_account("x", "X", "x@acme.test");

    // Adding her to a group before she joined says why nothing happens yet.
    let e = apply(
        &t,
        Op::AddMembers {
            group: "wiki".into(),
            users: vec!["ann".into()],
        },
    )
    .await
    .unwrap_err();
    assert!(
        e.message
            .contains("ann has no Atlassian account in workspace acme yet (invited as ann@acme.test)"),
        "{e}"
    );

    assert!(sim.lock().accept_invitation("ann@acme.test"));
    let state = read(&t, &ann).await;
    assert!(state.pending.is_empty());
    assert_eq!(state.users["ann"].email.as_deref(), Some("ann@acme.test"));
    assert!(state.members["developers"].iter().any(|m| &**m == "ann"));
    assert_eq!(
        apply(
            &t,
            Op::AddMembers {
                group: "wiki".into(),
                users: vec!["ann".into()],
            },
        )
        .await,
        Ok(None)
    );
    assert!(sim.lock().groups()["wiki"].contains("ann@acme.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_sends_what_cloud_allows() {
    let mut s = workspace(Administration::Bitbucket);
    let bob = s.add_account("bobby", "Bob", "bob@acme.test");
    for g in ["developers", "wiki", "admins"] {
        s.join(&bob, g);
    }
    let sim = CloudSim::start(s).await;
    let store = store();
    let t = target(&sim, &store, json!({}));
    read(&t, &people(&["bob"])).await;
    sim.log().clear();

    assert_eq!(
        apply(
            &t,
            Op::CreateGroup {
                group: "QA Team".into()
            }
        )
        .await,
        Ok(None)
    );
    assert_eq!(sent(&sim, "POST", "/1.0/groups/acme"), 1);
    assert!(sim.lock().groups().contains_key("QA Team"));
    assert_eq!(
        apply(
            &t,
            Op::CreateGroup {
                group: "QA Team".into()
            }
        )
        .await,
        Ok(Some("group already existed".into()))
    );

    let add = Op::AddMembers {
        group: "QA Team".into(),
        users: vec!["bob".into()],
    };
    assert_eq!(apply(&t, add.clone()).await, Ok(None));
    assert_eq!(sent(&sim, "PUT", "/1.0/groups/acme/qa-team/members/557058:"), 1);
    assert_eq!(apply(&t, add).await, Ok(Some("bob was already a member".into())));

    let remove = Op::RemoveMember {
        group: "QA Team".into(),
        user: "bob".into(),
    };
    assert_eq!(apply(&t, remove.clone()).await, Ok(None));
    assert_eq!(sent(&sim, "DELETE", "/1.0/groups/acme/qa-team/members/"), 1);
    assert_eq!(apply(&t, remove).await, Ok(Some("was not a member".into())));

    // Deactivation leaves the licensing groups listed, and the others except those kept.
    sim.log().clear();
    let outcome = t
        .apply(&Op::Deactivate {
            user: "bob".into(),
            groups: vec!["developers".into()],
            revoke_permission: true,
            leave_other_groups: Some(vec!["admins".into()]),
        })
        .await;
    assert_eq!(outcome.result, Ok(None));
    assert_eq!(
        outcome.requests, 2,
        "developers, then wiki; the groups were known from the read"
    );
    let member = sim.lock().members()["bob@acme.test"].clone();
    assert_eq!(member.groups, BTreeSet::from(["admins".to_string()]));

    let note = apply(
        &t,
        Op::DeleteUser {
            user: "bob".into(),
            erase: false,
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        note.starts_with("Bitbucket Cloud cannot delete Atlassian accounts"),
        "{note}"
    );
    assert!(note.contains("(admins)"), "{note}");
    assert!(!sim.lock().members().contains_key("bob@acme.test"));

    // What the planner never makes for this target is refused without a call.
    sim.log().clear();
    for op in [
        Op::UpdateUser {
            user: "bob".into(),
            display_name: "B".into(),
            email: "b@x".into(),
            old_display_name: "Bob".into(),
            old_email: None,
        },
        Op::RenameUser {
            from: "bob".into(),
            to: "rob".into(),
            records: vec![],
        },
        Op::DeleteGroup { group: "wiki".into() },
    ] {
        let outcome = t.apply(&op).await;
        let e = outcome.result.unwrap_err();
        assert!(
            e.message
                .ends_with("this plan was not made for this target: reject it and run again"),
            "{e}"
        );
        assert_eq!(outcome.requests, 0);
    }
    assert_eq!(total(&sim), 0);
    // Calls are counted by endpoint, never by id.
    let counted = t.calls().by_endpoint;
    assert!(
        counted.contains_key("DELETE /1.0/groups/{ws}/{slug}/members/{account_id}"),
        "{counted:?}"
    );
    assert!(counted.keys().all(|k| !k.contains("557058")), "{counted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_sends_nothing_and_says_when_the_next_run_continues_across_targets() {
    let sim = CloudSim::start(workspace(Administration::Bitbucket)).await;
    let store = store();
    let budget = json!({"hourly_budget": {"calls": 5, "window_secs": 3600}});
    let t = target(&sim, &store, budget.clone());
    assert_eq!(
        t.call_budget().map(|b| (b.calls, b.window_secs, b.available_now)),
        Some((5, 3600, 5))
    );
    read(&t, &BTreeMap::new()).await; // invitations, members, groups, owners
    assert_eq!(t.call_budget().unwrap().available_now, 1);
    assert_eq!(apply(&t, Op::CreateGroup { group: "qa".into() }).await, Ok(None));
    let before = total(&sim);

    let outcome = t.apply(&Op::CreateGroup { group: "ops".into() }).await;
    let e = outcome.result.unwrap_err();
    assert_eq!(e.status, Some(429));
    assert!(
        e.message.starts_with(
            "Bitbucket Cloud's call budget for workspace acme is spent (5 calls in the last 60 min); the next run after "
        ) && e.message.ends_with(" UTC continues"),
        "{e}"
    );
    assert_eq!(total(&sim), before, "no call was sent");
    assert_eq!(outcome.requests, 0);

    // Another target on the same store (the next run, another process) sees the same window.
    let next = target(&sim, &store, budget);
    assert_eq!(next.call_budget().unwrap().available_now, 0);
    let e = next
        .read(&ReadScope {
            groups: &BTreeSet::new(),
            people: &BTreeMap::new(),
            concurrency: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.status, Some(429));
    assert_eq!(total(&sim), before);
    // Another target id has its own budget.
    let other = target(&sim, &store, json!({"id": "cloud-2", "hourly_budget": {"calls": 5}}));
    assert_eq!(other.call_budget().unwrap().available_now, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_s_own_429_lowers_the_budget_and_holds_it_until_retry_after() {
    let mut s = workspace(Administration::Bitbucket);
    s.hourly_limit(3, Duration::from_secs(3600));
    let sim = CloudSim::start(s).await;
    let store = store();
    let t = target(&sim, &store, json!({}));
    let e = t
        .read(&ReadScope {
            groups: &BTreeSet::new(),
            people: &BTreeMap::new(),
            concurrency: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.status, Some(429));
    assert!(e.message.contains("(3 calls in the last 60 min)"), "{e}");
    assert_eq!(t.calls().throttled, 1, "one 429, not waited on for an hour");
    let b = t.call_budget().unwrap();
    assert_eq!((b.calls, b.available_now), (3, 0));
    // Nothing more is sent until Retry-After has passed.
    let before = total(&sim);
    assert_eq!(
        apply(&t, Op::CreateGroup { group: "x".into() })
            .await
            .unwrap_err()
            .status,
        Some(429)
    );
    assert_eq!(total(&sim), before);
}

/// Invitations of `p00@acme.test`, `p01@acme.test`, …
fn invitees(n: usize) -> Vec<Op> {
    (0..n)
        .map(|i| Op::CreateUser {
            user: format!("p{i:02}"),
            display_name: format!("Person {i:02}"),
            email: format!("p{i:02}@acme.test"),
            records: vec![],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invitation_limit_s_429_is_waited_on_and_leaves_the_hourly_budget_alone() {
    let mut s = workspace(Administration::Bitbucket);
    s.hourly_limit(1000, Duration::from_secs(3600));
    s.invitation_limit(5, Duration::from_secs(2));
    let sim = CloudSim::start(s).await;
    let store = store();
    let budget = json!({"hourly_budget": {"calls": 500, "window_secs": 3600}});
    let t = target(&sim, &store, budget.clone());
    let ops = invitees(12);
    let names: Vec<&str> = ops.iter().map(|o| o.subject()).collect();
    read(&t, &people(&names)).await;
    for op in ops {
        let note = apply(&t, op).await.unwrap().unwrap_or_default();
        assert!(note.contains("invited"), "{note}");
    }
    let sim_state = sim.lock();
    assert_eq!(sim_state.invitations_sent(), 12, "every invitation sent once");
    assert_eq!(sim_state.invitations().len(), 12);
    drop(sim_state);
    let calls = t.calls();
    assert!(calls.throttled >= 1, "the limit was met: {calls:?}");
    assert_eq!(
        calls.by_endpoint["PUT /1.0/users/{ws}/invitations"],
        12 + calls.throttled,
        "each refused invitation was sent again once"
    );
    // The hourly budget is the configured one, and not taken as spent: the next run (another
    // target on the same store) sees it too.
    let b = t.call_budget().unwrap();
    assert_eq!(b.calls, 500);
    let sent: u64 = calls.by_endpoint.values().sum();
    assert_eq!(b.available_now, 500 - sent);
    let next = target(&sim, &store, budget).call_budget().unwrap();
    assert_eq!((next.calls, next.available_now), (500, 500 - sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_limit_429_past_the_retries_fails_that_call_with_429_only() {
    let mut s = workspace(Administration::Bitbucket);
    s.invitation_limit(1, Duration::from_secs(60));
    let sim = CloudSim::start(s).await;
    let store = store();
    let t = target(&sim, &store, json!({"max_retries": 0}));
    let mut ops = invitees(2).into_iter();
    read(&t, &people(&["p00", "p01"])).await;
    assert!(apply(&t, ops.next().unwrap()).await.is_ok());
    let e = apply(&t, ops.next().unwrap()).await.unwrap_err();
    assert_eq!(e.status, Some(429), "the run pauses on it");
    assert!(
        e.message.contains("PUT /1.0/users/{ws}/invitations answered 429"),
        "{e}"
    );
    assert_eq!(t.calls().throttled, 1);
    let b = t.call_budget().unwrap();
    assert_eq!(
        b.calls, 1000,
        "the hourly limit is not lowered to the invitation limit's"
    );
    assert!(b.available_now > 0, "the hour is not taken as spent");
    // Other calls go on at once.
    assert_eq!(apply(&t, Op::CreateGroup { group: "qa".into() }).await, Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_mode_and_what_to_configure() {
    let sim = CloudSim::start(workspace(Administration::Bitbucket)).await;
    let store = store();
    let c = target(&sim, &store, json!({"seats": 10})).check().await;
    assert!(c.ok, "{c:?}");
    assert_eq!(
        c.detail.as_deref(),
        Some("administered in Bitbucket: groups and invitations through the 1.0 API; 1 member of 10 seats")
    );
    assert_eq!((c.licensed_users, c.licensed_users_in_use), (Some(10), Some(1)));

    let scim = json!({"scim": {"directory_id": "dir-1", "api_key": {"value": "scim-key"}}});
    let c = target(&sim, &store, scim.clone()).check().await;
    assert!(!c.ok);
    assert_eq!(
        c.error.as_deref(),
        Some(
            "workspace acme is still administered in Bitbucket; remove [target.scim] (Roster invites people and manages groups through Bitbucket's 1.0 API)"
        )
    );

    sim.lock().set_administration(Administration::AdminHub);
    let moved = "workspace acme is administered at admin.atlassian.com: its groups are read-only and invitations are disabled; add [target.scim] with directory_id and api_key (admin.atlassian.com → Settings → User provisioning → directory API key)";
    let t = target(&sim, &store, json!({}));
    let c = t.check().await;
    assert_eq!((c.ok, c.error.as_deref()), (false, Some(moved)));
    // A read says the same.
    let e = t
        .read(&ReadScope {
            groups: &BTreeSet::new(),
            people: &BTreeMap::new(),
            concurrency: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.message, moved);

    let wrong = target(&sim, &store, json!({"app_password": {"value": "nope"}}))
        .check()
        .await;
    assert!(
        wrong
            .error
            .as_deref()
            .unwrap()
            .contains("refused the credentials of 'roster-bot' (401)"),
        "{wrong:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_user_read_finds_the_person_without_listing_the_workspace() {
    let mut s = workspace(Administration::Bitbucket);
    for i in 0..150 {
        let id = s.add_account(&format!("n{i}"), &format!("P {i}"), &format!("p{i}@acme.test"));
        s.join(&id, "developers");
    }
    let sim = CloudSim::start(s).await;
    let store = store();
    let t = target(&sim, &store, json!({}));
    read(&t, &people(&["p7", "p8"])).await;
    sim.log().clear();

    let names = BTreeSet::from(["p7".to_string()]);
    let state = t.read_accounts(&names, &BTreeSet::new()).await.unwrap();
    assert_eq!(state.users.keys().collect::<Vec<_>>(), ["p7"]);
    assert!(state.members["developers"].iter().any(|m| &**m == "p7"));
    assert_eq!(
        sent(&sim, "GET", "/2.0/workspaces/acme/members"),
        0,
        "no listing of 150 members"
    );
    assert_eq!(total(&sim), 3, "invitations, groups, owners");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_never_waits_on_cloud_s_meter() {
    let mut s = workspace(Administration::Bitbucket);
    s.hourly_limit(1, Duration::from_secs(30));
    let sim = CloudSim::start(s).await;
    let t = BitbucketCloudTarget::new(
        &config(&sim, json!({})),
        std::path::Path::new("."),
        Patience::Check,
        store(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let c = t.check().await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(!c.ok);
    assert!(
        c.error
            .as_deref()
            .unwrap()
            .starts_with("Bitbucket Cloud's call budget for workspace acme is spent"),
        "{c:?}"
    );
}

/// `deprovision = "delete"` is removal from the workspace's groups here: a configured
/// protected group is never changed, so the person stays in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_leaves_it_in_the_protected_groups() {
    let mut s = workspace(Administration::Bitbucket);
    let bob = s.add_account("bobby", "Bob", "bob@acme.test");
    for g in ["developers", "wiki"] {
        s.join(&bob, g);
    }
    let sim = CloudSim::start(s).await;
    let store = store();
    let t = target(&sim, &store, json!({"protected_groups": ["wiki"]}));
    read(&t, &people(&["bob"])).await;
    let note = apply(
        &t,
        Op::DeleteUser {
            user: "bob".into(),
            erase: false,
        },
    )
    .await
    .unwrap()
    .unwrap();
    let member = sim.lock().members()["bob@acme.test"].clone();
    assert_eq!(
        member.groups,
        BTreeSet::from(["wiki".to_string()]),
        "the protected group is kept: {note}"
    );
    assert_eq!(sent(&sim, "DELETE", "/1.0/groups/acme/wiki/"), 0);
}

/// An open invitation takes a seat once accepted, as the guard counts the invitations a plan
/// sends: one an earlier run sent still counts in the seats in use, so invitations spread over
/// runs cannot take the workspace over `seats`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_invitations_from_earlier_runs_count_in_the_seats_in_use() {
    let mut s = workspace(Administration::Bitbucket);
    let bob = s.add_account("bobby", "Bob", "bob@acme.test");
    s.join(&bob, "developers");
    let sim = CloudSim::start(s).await;
    let store = store();
    let t = target(&sim, &store, json!({"seats": 3}));
    let everyone = people(&["bob", "ann"]);
    let before = read(&t, &everyone).await;
    assert_eq!(before.seats.in_use, Some(2), "Roster and bob");
    let invite = Op::CreateUser {
        user: "ann".into(),
        display_name: "Ann Lee".into(),
        email: "ann@acme.test".into(),
        records: vec![],
    };
    apply(&t, invite).await.unwrap();
    let after = read(&target(&sim, &store, json!({"seats": 3})), &everyone).await;
    assert!(after.pending.contains_key("ann"));
    assert_eq!(
        after.seats.in_use,
        Some(3),
        "ann's open invitation takes the third seat once accepted"
    );
}
