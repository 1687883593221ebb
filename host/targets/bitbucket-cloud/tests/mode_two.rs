//! The Bitbucket Cloud target in a workspace administered at admin.atlassian.com (mode two,
//! `[target.scim]`), against the simulator: the mode named by "test connection" and by a read,
//! and the engine's runs through the SCIM directory — people created, found by email and
//! remembered, a second run that writes nothing, deactivation and enabling again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use roster_engine::{
    Accounts, AddMembers, Disable, Engine, Groups, Profiles, Quiet, ReadScope, Reconcile, Reconciled, Rename, Scope,
    Target, TargetConfig, WhileHeld, Writes,
};
use roster_model::{Desired, Person, RunMode, RunState, Trigger};
use roster_sim::bitbucket_cloud::{Administration, CloudSim, CloudState};
use roster_store::Store;
use roster_store::crypto::Key;
use roster_target_bitbucket_cloud::BitbucketCloudTarget;
use serde_json::{Value, json};

const USER: &str = "roster-bot";
const PASSWORD: &str = "app-password";

/// A workspace `acme` moved to admin.atlassian.com, its directory `dir-1`, the groups
/// `bitbucket-users` (granting Bitbucket) and `site-admins`, and bob, provisioned by hand.
fn workspace(administration: Administration) -> CloudState {
    let mut s = CloudState::new("acme", administration);
    s.credentials(USER, PASSWORD);
    s.scim_directory("dir-1", "scim-key");
    s.add_group("bitbucket-users", None);
    s.add_group("site-admins", None);
    s.product_access(&["bitbucket-users"]);
    let bob = s.add_account("bob", "Bob Byrne", "bob@x.com");
    s.join(&bob, "bitbucket-users");
    s
}

fn config(sim: &CloudSim, extra: Value) -> TargetConfig {
    let mut v = json!({
        "id": "cloud", "kind": "bitbucket-cloud", "workspace": "acme", "username": USER,
        "app_password": {"value": PASSWORD}, "url": sim.url(),
        "default_groups": ["bitbucket-users"],
        "licensed_groups": ["bitbucket-users"], "admin_groups": ["site-admins"], "seats": 10,
        "scim": {"directory_id": "dir-1", "api_key": {"value": "scim-key"}, "url": sim.url()},
        "adopt_existing_users": true,
        "threshold": {"count": 100, "percent": 100.0},
        "max_retries": 1,
    });
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

fn target(store: &Arc<Store>, config: &TargetConfig) -> Arc<BitbucketCloudTarget> {
    Arc::new(
        BitbucketCloudTarget::new(
            config,
            std::path::Path::new("."),
            roster_engine::Patience::Run,
            store.clone(),
        )
        .unwrap(),
    )
}

fn store() -> Arc<Store> {
    Arc::new(Store::memory(Key::from_bytes([5; 32])).unwrap())
}

fn person(name: &str, display: &str, active: bool) -> (String, Person) {
    (
        name.to_string(),
        Person {
            username: name.to_string(),
            email: Some(format!("{name}@x.com")),
            display_name: Some(display.to_string()),
            active,
            records: vec![("hr".to_string(), format!("id-{name}"))],
        },
    )
}

/// ann and bob, both in `devs`; ann `active` or not.
fn desired(ann_active: bool) -> Desired {
    let persons: BTreeMap<String, Person> =
        [person("ann", "Ann Lee", ann_active), person("bob", "Bob Byrne", true)].into();
    let devs: BTreeSet<Arc<str>> = persons
        .iter()
        .filter(|(_, p)| p.active)
        .map(|(k, _)| Arc::from(k.as_str()))
        .collect();
    Desired {
        persons,
        groups: [("devs".to_string(), devs)].into(),
        ..Desired::default()
    }
}

async fn run(engine: &Engine, desired: Desired) -> Reconciled {
    let id = engine.policy().id.clone();
    let run_id = engine
        .store()
        .create_run(Trigger::Cli, RunMode::Full, &id, &["hr".to_string()])
        .unwrap();
    let r = Reconcile {
        run_id,
        writes: Writes::Apply,
        actor: "test",
        incomplete: &[],
        scope: Scope::Everyone,
        while_held: WhileHeld::Replan,
    };
    engine.reconcile(&r, desired, &Quiet).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_provision_through_the_directory_and_a_second_run_writes_nothing() {
    let sim = CloudSim::start(workspace(Administration::AdminHub)).await;
    let store = store();
    let config = config(&sim, json!({}));
    let t = target(&store, &config);
    let caps = t.capabilities();
    assert_eq!(
        (
            caps.rename,
            caps.add_members,
            caps.disable,
            caps.groups,
            caps.accounts,
            caps.profiles
        ),
        (
            Rename::Unsupported,
            AddMembers::Bulk,
            Disable::Native,
            Groups::Keep,
            Accounts::Create,
            Profiles::Managed
        )
    );
    let engine = Engine::new(store.clone(), t.clone(), config.clone());

    let first = run(&engine, desired(true)).await;
    assert_eq!(first.state, RunState::Succeeded, "{first:?}");
    assert_eq!(first.applied.failed, 0, "{first:?}");
    assert!(
        first.collisions.is_empty(),
        "bob is found by his address: {:?}",
        first.collisions
    );
    assert_eq!(first.planned.get("create-user"), Some(&1), "{:?}", first.planned);
    assert_eq!(first.planned.get("adopt-user"), Some(&1), "{:?}", first.planned);
    {
        let s = sim.lock();
        let users = s.scim_users();
        assert!(users["ann@x.com"].active);
        assert_eq!(users["ann@x.com"].display_name, "Ann Lee");
        let groups = s.scim_groups();
        let both: BTreeSet<String> = ["ann@x.com".to_string(), "bob@x.com".to_string()].into();
        assert_eq!(groups["devs"], both);
        assert_eq!(groups["bitbucket-users"], both);
    }
    assert!(
        first
            .calls
            .by_endpoint
            .keys()
            .any(|k| k == "POST /scim/directory/{directoryId}/Users"),
        "calls are counted by template: {:?}",
        first.calls.by_endpoint
    );

    // The next run, by a new process: nothing to do, nothing written.
    let writes = sim.lock().writes();
    let engine = Engine::new(store.clone(), target(&store, &config), config.clone());
    let second = run(&engine, desired(true)).await;
    assert_eq!(second.state, RunState::Succeeded);
    assert!(
        second.planned.is_empty(),
        "a second run plans nothing: {:?}",
        second.planned
    );
    assert_eq!(sim.lock().writes(), writes);

    // ann leaves: deactivated in the directory, her memberships left as they are.
    let third = run(&engine, desired(false)).await;
    assert_eq!(third.planned.get("deactivate-user"), Some(&1), "{:?}", third.planned);
    assert!(!sim.lock().scim_users()["ann@x.com"].active);
    let state = engine
        .target()
        .read(&ReadScope {
            groups: &BTreeSet::new(),
            people: &BTreeMap::new(),
            concurrency: 1,
        })
        .await
        .unwrap();
    assert_eq!(state.seats.in_use, Some(1), "only bob takes a seat");

    // ann is back: the same account, active again.
    let fourth = run(&engine, desired(true)).await;
    assert_eq!(fourth.applied.failed, 0, "{fourth:?}");
    assert_eq!(
        fourth.planned.get("adopt-user"),
        Some(&1),
        "enabled again: {:?}",
        fourth.planned
    );
    assert_eq!(fourth.planned.get("create-user"), None, "{:?}", fourth.planned);
    assert!(sim.lock().scim_users()["ann@x.com"].active);
    let fifth = run(&engine, desired(true)).await;
    assert!(fifth.planned.is_empty(), "{:?}", fifth.planned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_read_name_the_mode() {
    let sim = CloudSim::start(workspace(Administration::AdminHub)).await;
    let store = store();
    let config = config(&sim, json!({}));
    let c = target(&store, &config).check().await;
    assert!(c.ok, "{c:?}");
    let detail = c.detail.unwrap();
    assert!(
        detail.starts_with("administered at admin.atlassian.com: users and groups through SCIM directory dir-1"),
        "{detail}"
    );

    let wrong = config_with_key(&sim, "nope");
    let c = target(&store, &wrong).check().await;
    assert!(!c.ok);
    assert!(c.error.unwrap().contains("[target.scim] api_key"));

    // [target.scim] set, but the workspace is still administered in Bitbucket.
    sim.lock().set_administration(Administration::Bitbucket);
    let still = "workspace acme is still administered in Bitbucket; remove [target.scim] (Roster invites people and manages groups through Bitbucket's 1.0 API)";
    let t = target(&store, &config);
    assert_eq!(t.check().await.error.as_deref(), Some(still));
    let e = t
        .read(&ReadScope {
            groups: &BTreeSet::new(),
            people: &BTreeMap::new(),
            concurrency: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.message, still);
}

fn config_with_key(sim: &CloudSim, key: &str) -> TargetConfig {
    config(
        sim,
        json!({"scim": {"directory_id": "dir-1", "api_key": {"value": key}, "url": sim.url()}}),
    )
}
