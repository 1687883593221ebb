//! Mode two against the Bitbucket Cloud simulator's SCIM directory: what a read sees, what each
//! operation leaves in the directory, and what an administrator is told when it goes wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use roster_engine::{Op, Patience, ReadScope, TargetConfig};
use roster_http::BudgetConfig;
use roster_sim::bitbucket_cloud::{Administration, CloudSim, CloudState};
use roster_sim::kit::Fault;
use roster_store::Store;
use roster_store::crypto::Key;

use super::Scim;
use crate::http::{Api, ApiConfig, Credential};
use crate::settings::Settings;

const DIR: &str = "dir-1";
const KEY: &str = "scim-key";

/// A simulator, the target's settings and its SCIM side.
struct World {
    sim: CloudSim,
    settings: Settings,
    store: Arc<Store>,
    scim: Scim,
}

fn settings(url: &str, directory_id: &str, key: &str) -> Settings {
    let config: TargetConfig = serde_json::from_value(serde_json::json!({
        "id": "cloud",
        "kind": "bitbucket-cloud",
        "workspace": "acme",
        "username": "roster-bot",
        "app_password": {"value": "p"},
        "url": url,
        "seats": 50,
        "licensed_groups": ["bitbucket-users"],
        "admin_groups": ["site-admins"],
        "scim": {"directory_id": directory_id, "api_key": {"value": key}, "url": url},
    }))
    .unwrap();
    Settings::of(&config).unwrap()
}

fn scim_for(settings: &Settings, store: &Arc<Store>) -> Scim {
    let s = settings.scim.as_ref().unwrap();
    let key = settings.scim_key(std::path::Path::new(".")).unwrap().unwrap();
    let api = Api::new(ApiConfig {
        service: "Atlassian SCIM",
        base: s.url.clone(),
        credential: Credential::Bearer(key),
        pacing: BudgetConfig {
            per_second: 10_000.0,
            burst: 10_000,
        },
        meter: None,
        max_retries: 0,
        timeout: Duration::from_secs(10),
        patience: Patience::Run,
    })
    .unwrap();
    Scim::new(s, api, store.clone(), "cloud")
}

/// A workspace at admin.atlassian.com with `bitbucket-users` (licensing), `site-admins` and
/// `devs`, and bob (licensed), cat (licensed, deactivated) and dan (in no group).
async fn world() -> World {
    world_with(DIR, KEY).await
}

async fn world_with(directory_id: &str, key: &str) -> World {
    let mut state = CloudState::new("acme", Administration::AdminHub);
    state.scim_directory(DIR, KEY);
    for g in ["bitbucket-users", "site-admins", "devs"] {
        state.add_group(g, None);
    }
    let bob = state.add_account("bob", "Bob Byrne", "bob@x.com");
    let cat = state.add_account("cat", "Cat Chu", "cat@x.com");
    state.add_account("dan", "Dan Dee", "dan@x.com");
    state.join(&bob, "bitbucket-users");
    state.join(&cat, "bitbucket-users");
    let sim = CloudSim::start(state).await;
    let settings = settings(&sim.url(), directory_id, key);
    let store = Arc::new(Store::memory(Key::from_bytes([3; 32])).unwrap());
    let scim = scim_for(&settings, &store);
    let w = World {
        sim,
        settings,
        store,
        scim,
    };
    if key == KEY && directory_id == DIR {
        // cat leaves through the directory, as an administrator would.
        let id = w.sim.lock().scim_users()["cat@x.com"].id.clone();
        let body = super::wire::active(false);
        w.scim
            .api
            .send(
                reqwest::Method::PATCH,
                "test",
                &w.scim.path.user(&id),
                &[],
                &crate::http::Body::Json(body),
            )
            .await
            .unwrap();
    }
    w
}

fn people(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(n, e)| (n.to_string(), Some(e.to_string())))
        .collect()
}

impl World {
    async fn read(&self, people: &BTreeMap<String, Option<String>>) -> roster_engine::TargetState {
        let groups: BTreeSet<String> = ["devs".to_string()].into();
        let scope = ReadScope {
            groups: &groups,
            people,
            concurrency: 4,
        };
        self.scim.read(&scope, &self.settings).await.unwrap()
    }

    async fn apply(&self, op: Op) -> Result<Option<String>, crate::error::CloudError> {
        self.scim.apply(&op).await
    }

    fn writes(&self) -> u64 {
        self.sim.lock().writes()
    }

    fn active(&self, email: &str) -> bool {
        self.sim.lock().scim_users()[email].active
    }
}

fn create(user: &str, display_name: &str, email: &str) -> Op {
    Op::CreateUser {
        user: user.into(),
        display_name: display_name.into(),
        email: email.into(),
        records: Vec::new(),
    }
}

#[tokio::test]
async fn a_full_read_pages_through_users_and_groups_and_counts_the_licensed_seats() {
    let w = world().await;
    {
        let mut s = w.sim.lock();
        for i in 0..230 {
            let id = s.add_account(&format!("p{i}"), &format!("Person {i}"), &format!("p{i}@x.com"));
            if i % 2 == 0 {
                s.join(&id, "bitbucket-users");
            }
        }
    }
    w.sim.log().clear();
    let state = w.read(&people(&[("bob", "Bob@X.com")])).await;

    assert_eq!(state.users.len(), 233);
    // bob is keyed by Roster's name (found by his address), the others by their userName.
    assert_eq!(state.users["bob"].name, "bob");
    assert_eq!(state.users["bob"].email.as_deref(), Some("bob@x.com"));
    assert_eq!(state.users["bob"].display_name, "Bob Byrne");
    assert!(state.users["p7@x.com"].active && state.users["p7@x.com"].mutable);
    assert!(!state.users["cat@x.com"].active, "cat was deactivated");
    assert_eq!(
        state.groups,
        ["bitbucket-users", "devs", "site-admins"].map(String::from).into()
    );
    assert_eq!(state.members["bitbucket-users"].len(), 117);
    assert!(state.members["bitbucket-users"].iter().any(|m| &**m == "bob"));
    assert!(state.members["devs"].is_empty() && state.members["site-admins"].is_empty());
    assert_eq!(state.licensing_groups, ["bitbucket-users".to_string()].into());
    assert_eq!(state.admin_groups, ["site-admins".to_string()].into());
    // 115 even-numbered people and bob; cat is in the group but deactivated.
    assert_eq!(state.seats.in_use, Some(116));
    assert_eq!(state.seats.limit, Some(50));

    let pages: Vec<String> = w
        .sim
        .log()
        .entries()
        .into_iter()
        .filter(|e| e.target.contains("/Users?"))
        .map(|e| e.target)
        .collect();
    assert_eq!(pages.len(), 3, "233 users are three pages of 100: {pages:?}");
    assert!(pages.iter().any(|p| p.contains("startIndex=201")));

    // bob's name is remembered: a later read without his address still knows him.
    let again = w.read(&BTreeMap::new()).await;
    assert!(again.users.contains_key("bob") && !again.users.contains_key("bob@x.com"));
}

#[tokio::test]
async fn each_operation_lands_in_the_directory() {
    let w = world().await;
    w.read(&people(&[("bob", "bob@x.com")])).await;

    assert_eq!(w.apply(create("ann", "Ann Lee", "ann@x.com")).await.unwrap(), None);
    let ann = w.sim.lock().scim_users()["ann@x.com"].clone();
    assert!(ann.active);
    assert_eq!((ann.display_name.as_str(), ann.given_name.as_str()), ("Ann Lee", "Ann"));

    assert_eq!(w.apply(Op::CreateGroup { group: "team-a".into() }).await.unwrap(), None);
    assert!(w.sim.lock().scim_groups().contains_key("team-a"));

    w.sim.log().clear();
    let users = vec!["ann".to_string(), "bob".to_string()];
    w.apply(Op::AddMembers {
        group: "team-a".into(),
        users,
    })
    .await
    .unwrap();
    let patches = w
        .sim
        .log()
        .entries()
        .into_iter()
        .filter(|e| e.method == "PATCH")
        .count();
    assert_eq!(patches, 1, "both members in one PATCH");
    assert_eq!(
        w.sim.lock().scim_groups()["team-a"],
        ["ann@x.com".to_string(), "bob@x.com".to_string()].into()
    );

    w.apply(Op::UpdateUser {
        user: "ann".into(),
        display_name: "Ann Lee-Park".into(),
        email: "ann.park@x.com".into(),
        old_display_name: "Ann Lee".into(),
        old_email: Some("ann@x.com".into()),
    })
    .await
    .unwrap();
    let users = w.sim.lock().scim_users();
    assert_eq!(users["ann.park@x.com"].display_name, "Ann Lee-Park");
    assert!(!users.contains_key("ann@x.com"));

    w.apply(Op::RemoveMember {
        group: "team-a".into(),
        user: "bob".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        w.sim.lock().scim_groups()["team-a"],
        ["ann.park@x.com".to_string()].into()
    );

    // A new run, a new process: ann is still ann (remembered when she was created), though
    // her address changed.
    let fresh = scim_for(&w.settings, &w.store);
    let groups = BTreeSet::from(["team-a".to_string()]);
    let none = BTreeMap::new();
    let scope = ReadScope {
        groups: &groups,
        people: &none,
        concurrency: 1,
    };
    let state = fresh.read(&scope, &w.settings).await.unwrap();
    assert_eq!(state.users["ann"].email.as_deref(), Some("ann.park@x.com"));
    assert!(state.members["team-a"].iter().any(|m| &**m == "ann"));
}

#[tokio::test]
async fn an_operation_on_a_name_the_read_did_not_see_finds_it_in_the_directory() {
    let w = world().await;
    // No read: dan is found by the filter on his userName.
    w.apply(Op::AddMembers {
        group: "devs".into(),
        users: vec!["dan@x.com".into()],
    })
    .await
    .unwrap();
    assert!(w.sim.lock().scim_groups()["devs"].contains("dan@x.com"));
    let filtered = w
        .sim
        .log()
        .entries()
        .iter()
        .filter(|e| e.target.contains("filter="))
        .count();
    assert_eq!(filtered, 2, "one lookup for the group, one for the user");
}

#[tokio::test]
async fn deactivation_and_enabling_again() {
    let w = world().await;
    w.read(&people(&[("bob", "bob@x.com")])).await;

    let deactivate = Op::Deactivate {
        user: "bob".into(),
        groups: Vec::new(),
        revoke_permission: false,
        leave_other_groups: None,
    };
    assert_eq!(w.apply(deactivate.clone()).await.unwrap(), None);
    assert!(!w.active("bob@x.com"));
    assert!(
        w.sim.lock().scim_groups()["bitbucket-users"].contains("bob@x.com"),
        "memberships stay"
    );
    let state = w.read(&BTreeMap::new()).await;
    assert!(!state.users["bob"].active);
    assert_eq!(state.seats.in_use, Some(0), "a deactivated user takes no seat");

    // Enabled again in the identity provider: the planner adopts the disabled account.
    let adopt = Op::AdoptUser {
        user: "bob".into(),
        records: Vec::new(),
    };
    let note = w.apply(adopt.clone()).await.unwrap();
    assert!(note.is_some_and(|n| n.contains("activated again")));
    assert!(w.active("bob@x.com"));
    // Adopting an active account writes nothing.
    let before = w.writes();
    assert_eq!(w.apply(adopt).await.unwrap(), None);
    assert_eq!(w.writes(), before);
}

#[tokio::test]
async fn deactivation_leaves_other_groups_when_the_policy_says_so() {
    let w = world().await;
    let bob = w.sim.lock().scim_users()["bob@x.com"].account_id.clone();
    w.sim.lock().join(&bob, "devs");
    w.sim.lock().join(&bob, "site-admins");
    w.read(&people(&[("bob", "bob@x.com")])).await;
    w.apply(Op::Deactivate {
        user: "bob".into(),
        groups: Vec::new(),
        revoke_permission: false,
        leave_other_groups: Some(vec!["site-admins".into()]),
    })
    .await
    .unwrap();
    let groups = w.sim.lock().scim_groups();
    assert!(!groups["devs"].contains("bob@x.com") && !groups["bitbucket-users"].contains("bob@x.com"));
    assert!(groups["site-admins"].contains("bob@x.com"), "a kept group is kept");
    assert!(!w.active("bob@x.com"));
}

#[tokio::test]
async fn delete_deactivates_and_says_so() {
    let w = world().await;
    w.read(&people(&[("bob", "bob@x.com")])).await;
    let note = w
        .apply(Op::DeleteUser {
            user: "bob".into(),
            erase: true,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(note.contains("deactivates on delete"), "{note}");
    assert!(
        note.contains("admin.atlassian.com"),
        "erasing is said to be done there: {note}"
    );
    assert!(!w.active("bob@x.com"), "the account stays, deactivated");
}

#[tokio::test]
async fn renames_and_group_deletions_are_refused_without_a_call() {
    let w = world().await;
    w.read(&BTreeMap::new()).await;
    w.sim.log().clear();
    let rename = w
        .apply(Op::RenameUser {
            from: "bob".into(),
            to: "robert".into(),
            records: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(rename.to_string().contains("keyed by account id"), "{rename}");
    let delete = w.apply(Op::DeleteGroup { group: "devs".into() }).await.unwrap_err();
    assert!(delete.to_string().contains("keeps the groups"), "{delete}");
    assert!(w.sim.log().entries().is_empty());
}

#[tokio::test]
async fn creating_an_address_the_directory_has_links_it() {
    let w = world().await;
    w.read(&BTreeMap::new()).await;
    // cat was provisioned by hand (and deactivated since); Roster now creates her.
    let note = w.apply(create("cat", "Cat Chu", "cat@x.com")).await.unwrap().unwrap();
    assert!(note.contains("already existed") && note.contains("activated"), "{note}");
    assert!(w.active("cat@x.com"));
    let state = w.read(&BTreeMap::new()).await;
    assert!(state.users.contains_key("cat") && !state.users.contains_key("cat@x.com"));
}

#[tokio::test]
async fn a_conflict_elsewhere_says_what_to_do() {
    let w = world().await;
    // The directory refuses the address, and has no user with it: another organisation's.
    w.sim.faults().fail_next(1, "/Users", Fault::status(409));
    let e = w.apply(create("eve", "Eve", "eve@other.org")).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("eve <eve@other.org>"), "{text}");
    assert!(
        text.contains("claim its domain") && text.contains("another address"),
        "{text}"
    );
}

#[tokio::test]
async fn a_key_the_directory_refuses_names_the_setting() {
    let w = world_with(DIR, "wrong-key").await;
    let groups = BTreeSet::new();
    let none = BTreeMap::new();
    let scope = ReadScope {
        groups: &groups,
        people: &none,
        concurrency: 1,
    };
    let e = w.scim.read(&scope, &w.settings).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(e.to_string().contains("[target.scim] api_key"), "{e}");
    let e = w.scim.check(&w.settings).await.unwrap_err();
    assert!(e.to_string().contains("User provisioning"), "{e}");
}

#[tokio::test]
async fn an_unknown_directory_names_the_setting() {
    let w = world_with("dir-2", KEY).await;
    let e = w.scim.check(&w.settings).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(
        e.to_string().contains("no SCIM directory dir-2") && e.to_string().contains("directory_id"),
        "{e}"
    );
    let e = w.apply(create("ann", "Ann", "ann@x.com")).await.unwrap_err();
    assert!(e.to_string().contains("directory_id"), "{e}");
}

#[tokio::test]
async fn check_says_where_the_workspace_is_administered() {
    let w = world().await;
    let c = w.scim.check(&w.settings).await.unwrap();
    assert!(
        c.detail.contains("admin.atlassian.com") && c.detail.contains("SCIM directory dir-1"),
        "{}",
        c.detail
    );
    assert!(c.detail.contains("3 users"), "{}", c.detail);
}

#[tokio::test]
async fn a_single_user_read_finds_the_name_without_reading_everyone() {
    let w = world().await;
    w.read(&people(&[("bob", "bob@x.com")])).await;
    w.apply(create("ann", "Ann Lee", "ann@x.com")).await.unwrap();
    w.apply(Op::AddMembers {
        group: "devs".into(),
        users: vec!["ann".into(), "bob".into()],
    })
    .await
    .unwrap();

    // Another process: only the store knows who ann and bob are.
    let fresh = scim_for(&w.settings, &w.store);
    w.sim.log().clear();
    let names = BTreeSet::from(["ann".to_string(), "nobody".to_string()]);
    let groups = BTreeSet::from(["devs".to_string()]);
    let state = fresh.read_accounts(&names, &groups, &w.settings).await.unwrap();
    assert_eq!(state.users.keys().collect::<Vec<_>>(), ["ann"]);
    assert_eq!(state.users["ann"].email.as_deref(), Some("ann@x.com"));
    assert_eq!(
        state.members["devs"].iter().map(|m| &**m).collect::<Vec<_>>(),
        ["ann"],
        "bob is not asked about"
    );
    assert!(state.groups.contains("bitbucket-users") && state.members.contains_key("bitbucket-users"));
    assert_eq!(state.seats.in_use, None, "a partial read does not count seats");
    let user_listings = w
        .sim
        .log()
        .entries()
        .iter()
        .filter(|e| e.target.contains("/Users") && !e.target.contains("filter="))
        .filter(|e| !e.target.contains("/Users/"))
        .count();
    assert_eq!(user_listings, 0, "no full listing of users");
}

/// Roster signs in to Bitbucket with an API token as `bob@x.com`, who is also the desired
/// person `bob`: keyed by that name, the account is still the one Roster acts as, and so never
/// changed (deactivating it would lock Roster out of the workspace).
#[tokio::test]
async fn the_account_roster_acts_as_stays_protected_under_a_roster_name() {
    let mut w = world().await;
    let mut config: TargetConfig = serde_json::from_value(serde_json::json!({
        "id": "cloud", "kind": "bitbucket-cloud", "workspace": "acme", "username": "Bob@X.com",
        "api_token": {"value": "t"}, "url": w.sim.url(),
        "licensed_groups": ["bitbucket-users"],
        "scim": {"directory_id": DIR, "api_key": {"value": KEY}, "url": w.sim.url()},
    }))
    .unwrap();
    config.id = "cloud".into();
    w.settings = Settings::of(&config).unwrap();
    let state = w.read(&people(&[("bob", "bob@x.com")])).await;
    assert!(state.users.contains_key("bob"));
    assert!(
        state.admins.contains("bob"),
        "the acting account is protected: {:?}",
        state.admins
    );
}
