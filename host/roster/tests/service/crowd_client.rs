//! The Bitbucket-like Crowd directory client (tests/common/crowd_directory.rs) against the Crowd
//! simulator: the calls it makes are RemoteCrowdDirectory's, a full synchronisation copies the
//! server exactly, an incremental one converges to what a fresh full one reads, and an expired
//! token falls back to a full synchronisation. The same client then checks Roster's endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use roster_sim::crowd::{CrowdSim, CrowdState, CrowdUser, Product};
use roster_sim::directory::Directory;

use roster_store::ServedChange;

use crate::common::crowd_directory::{
    AttributeSync, Cache, CachedGroup, CachedUser, CrowdDirectory, CrowdError, Nesting, Settings, SyncOutcome,
};
use crate::common::crowd_roster::{RosterCrowd, seed_changes};

const APP: &str = "bitbucket";
const PASSWORD: &str = "bitbucket-app-password";

/// The full synchronisation's five calls (§6), with or without user attributes.
fn full_calls(user_expand: &str) -> Vec<String> {
    vec![
        "GET /event".into(),
        format!("POST /search?entity-type=user&start-index=0&max-results=-1&expand={user_expand}"),
        "POST /search?entity-type=group&start-index=0&max-results=-1&expand=group".into(),
        "GET /group/membership".into(),
        "GET /event".into(),
    ]
}

async fn sim(d: &Directory) -> CrowdSim {
    let mut s = CrowdState::from_directory(d, Product::Crowd);
    s.add_application(APP, PASSWORD, &["127.0.0.0/8", "::1"]);
    CrowdSim::start(s).await
}

fn client(sim: &CrowdSim, settings: Settings) -> CrowdDirectory {
    CrowdDirectory::new(&sim.url(), APP, PASSWORD, settings)
}

/// What a cache of `d` holds, as the simulator serves it (first and last name split at the
/// first space of the display name, no description, everything active but what `d` says).
fn expected(d: &Directory) -> Cache {
    let mut c = Cache::default();
    for u in &d.users {
        let (first, last) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
        c.users.insert(
            u.username.to_lowercase(),
            CachedUser {
                name: u.username.clone(),
                key: Some(u.id.clone()),
                active: u.active,
                first_name: first.into(),
                last_name: last.into(),
                display_name: u.display_name.clone(),
                email: u.email.clone(),
                attributes: BTreeMap::new(),
            },
        );
    }
    for g in &d.groups {
        c.groups.insert(
            g.name.to_lowercase(),
            CachedGroup {
                name: g.name.clone(),
                description: String::new(),
                active: true,
                attributes: BTreeMap::new(),
            },
        );
    }
    for m in &d.memberships {
        let group = d.group_name(&m.group).to_lowercase();
        if m.member_is_group {
            c.children.insert((group, d.group_name(&m.member).to_lowercase()));
        } else {
            c.members.insert((group, d.username(&m.member).to_lowercase()));
        }
    }
    c
}

#[tokio::test]
async fn full_sync_makes_the_calls_bitbucket_makes_and_copies_the_directory() {
    let d = Directory::generate(40, 8, 3);
    let sim = sim(&d).await;
    let mut dir = client(&sim, Settings::default());
    dir.full_sync().await.unwrap();
    assert_eq!(dir.take_calls(), full_calls("user"));
    assert_eq!(dir.cache, expected(&d));
    assert!(dir.token().is_some(), "GET /event gave no token");
    assert!(!dir.events_during_full_sync);
    assert_eq!(dir.history, vec![SyncOutcome::Full]);

    // What the full results no longer hold leaves the cache.
    let gone = &d.users[3].username;
    sim.lock().remove_user(gone);
    sim.lock().remove_group(&d.groups[1].name);
    dir.full_sync().await.unwrap();
    assert!(!dir.cache.users.contains_key(gone));
    assert!(dir.cache.user_groups(gone).is_empty());
    assert!(!dir.cache.groups.contains_key(&d.groups[1].name));
    assert!(dir.cache.group_users(&d.groups[1].name).is_empty());
    assert!(
        !dir.cache
            .children
            .iter()
            .any(|(p, c)| *p == d.groups[1].name || *c == d.groups[1].name)
    );
}

#[tokio::test]
async fn full_sync_with_attributes_asks_for_them_and_keeps_them() {
    let d = Directory::generate(10, 4, 2);
    let sim = sim(&d).await;
    let name = d.users[0].username.clone();
    sim.lock().update_user(&name, |u| {
        u.attributes = vec![("roster.records".into(), vec!["hr:1".into(), "okta:00u1".into()])];
    });
    let mut dir = client(
        &sim,
        Settings {
            user_attributes: AttributeSync::On,
            ..Settings::default()
        },
    );
    dir.full_sync().await.unwrap();
    assert_eq!(dir.take_calls(), full_calls("user%2Cattributes"));
    assert_eq!(
        dir.cache.users[&name].attributes.get("roster.records"),
        Some(&vec!["hr:1".to_string(), "okta:00u1".to_string()])
    );
}

/// Changes of every kind the endpoint will log: a rename, a membership ended, a group deleted,
/// a display name, a new user in groups, a user's whole group set replaced, a user deleted, a
/// new group nested, an attribute stored.
fn change_everything(sim: &CrowdSim, d: &Directory) {
    let mut s = sim.lock();
    s.rename_user(&d.users[0].username, "renamed-user");
    let g = s.user_groups(&d.users[1].username)[0].clone();
    s.remove_user_from_group(&d.users[1].username, &g);
    s.remove_group(&d.groups[2].name);
    s.update_user(&d.users[4].username, |u| {
        u.display_name = "Changed Name".into();
        u.email = "changed@example.com".into();
        u.active = false;
    });
    s.add_user(CrowdUser::new("newcomer", "u-new", "New Comer", "new@example.com"));
    s.add_user_to_group("newcomer", &d.groups[0].name);
    s.add_user_to_group("newcomer", &d.groups[3].name);
    s.set_user_groups(&d.users[5].username, &[&d.groups[5].name, &d.groups[6].name]);
    s.remove_user(&d.users[6].username);
    s.add_group(roster_sim::crowd::CrowdGroup::new("late-group"));
    s.add_group_to_group("late-group", &d.groups[0].name);
    s.update_user(&d.users[7].username, |u| {
        u.attributes = vec![("roster.records".into(), vec!["hr:7".into()])];
    });
}

async fn converges(settings: Settings) {
    let d = Directory::generate(30, 8, 3);
    let sim = sim(&d).await;
    let mut dir = client(&sim, settings);
    dir.full_sync().await.unwrap();
    let before = dir.cache.clone();
    let key_of_renamed = before.users[&d.users[0].username].key.clone();
    let groups_of_renamed = before.user_groups(&d.users[0].username);
    dir.take_calls();

    change_everything(&sim, &d);
    dir.incremental_sync().await.unwrap();
    assert_eq!(dir.take_calls(), vec!["GET /event/{token}"]);
    let Some(SyncOutcome::Incremental { events }) = dir.history.last().cloned() else {
        panic!("not incremental: {:?}", dir.history);
    };
    assert!(events >= 10, "only {events} events");

    let mut fresh = client(&sim, settings);
    fresh.full_sync().await.unwrap();
    assert_eq!(
        dir.cache, fresh.cache,
        "incremental sync did not converge to a full sync"
    );
    assert_ne!(dir.cache, before);
    // What a user notices: the renamed user is the same account, in the same groups.
    assert_eq!(dir.cache.users["renamed-user"].key, key_of_renamed);
    assert_eq!(dir.cache.user_groups("renamed-user"), groups_of_renamed);

    // Nothing changed: one call, nothing applied.
    dir.incremental_sync().await.unwrap();
    assert_eq!(dir.take_calls(), vec!["GET /event/{token}"]);
    assert_eq!(dir.history.last(), Some(&SyncOutcome::Incremental { events: 0 }));
    assert_eq!(dir.cache, fresh.cache);
}

#[tokio::test]
async fn incremental_sync_converges_to_a_fresh_full_sync() {
    converges(Settings::default()).await;
}

#[tokio::test]
async fn incremental_sync_with_attributes_and_flat_groups_converges() {
    converges(Settings {
        user_attributes: AttributeSync::On,
        group_attributes: AttributeSync::On,
        nesting: Nesting::Flat,
    })
    .await;
}

#[tokio::test]
async fn an_expired_token_falls_back_to_a_full_sync() {
    let d = Directory::generate(20, 8, 2);
    let sim = sim(&d).await;
    let mut dir = client(&sim, Settings::default());
    dir.full_sync().await.unwrap();
    dir.take_calls();
    change_everything(&sim, &d);
    sim.lock().expire_event_tokens();
    dir.incremental_sync().await.unwrap();
    let mut calls = vec!["GET /event/{token}".to_string()];
    calls.extend(full_calls("user"));
    assert_eq!(dir.take_calls(), calls);
    assert_eq!(
        dir.history.last(),
        Some(&SyncOutcome::FullInstead {
            why: "410 EVENT_TOKEN_EXPIRED".into()
        })
    );
    let mut fresh = client(&sim, Settings::default());
    fresh.full_sync().await.unwrap();
    assert_eq!(dir.cache, fresh.cache);
    // The new token works.
    dir.incremental_sync().await.unwrap();
    assert_eq!(dir.history.last(), Some(&SyncOutcome::Incremental { events: 0 }));
}

#[tokio::test]
async fn without_incremental_sync_every_sync_is_full() {
    let d = Directory::generate(5, 3, 1);
    let mut s = CrowdState::from_directory(&d, Product::Crowd);
    s.add_application(APP, PASSWORD, &["127.0.0.0/8"]);
    s.disable_incremental_sync();
    let sim = CrowdSim::start(s).await;
    let mut dir = client(&sim, Settings::default());
    dir.full_sync().await.unwrap();
    assert_eq!(dir.token(), None);
    dir.take_calls();
    dir.incremental_sync().await.unwrap();
    assert_eq!(dir.take_calls(), full_calls("user"));
    assert_eq!(
        dir.history.last(),
        Some(&SyncOutcome::FullInstead {
            why: "no event token stored".into()
        })
    );
}

#[tokio::test]
async fn without_the_membership_document_memberships_are_read_per_group() {
    let d = Directory::generate(12, 4, 2);
    let mut s = CrowdState::from_directory(&d, Product::Crowd);
    s.add_application(APP, PASSWORD, &["127.0.0.0/8"]);
    s.without_membership_document();
    let sim = CrowdSim::start(s).await;
    let mut dir = client(&sim, Settings::default());
    dir.full_sync().await.unwrap();
    assert_eq!(dir.cache, expected(&d));
    let calls = dir.take_calls();
    let mut want = full_calls("user");
    want.pop();
    want.push("POST /search?entity-type=group&start-index=0&max-results=-1&expand=group".into());
    for g in &d.groups {
        want.push(format!(
            "GET /group/user/direct?groupname={}&start-index=0&max-results=-1",
            g.name
        ));
        want.push(format!(
            "GET /group/child-group/direct?groupname={}&start-index=0&max-results=-1",
            g.name
        ));
    }
    want.push("GET /event".into());
    assert_eq!(calls, want);
}

#[tokio::test]
async fn refusals_read_as_the_java_client_reads_them() {
    let d = Directory::generate(3, 2, 1);
    let sim = sim(&d).await;

    let mut wrong = CrowdDirectory::new(&sim.url(), APP, "wrong", Settings::default());
    assert!(matches!(wrong.full_sync().await, Err(CrowdError::Unauthorised(_))));

    // No X-Embedded-Crowd-Version (a URL that is not a Crowd API): the Java client's refusal.
    let mut elsewhere = CrowdDirectory::new(&format!("{}/elsewhere", sim.url()), APP, PASSWORD, Settings::default());
    let e = elsewhere.full_sync().await.unwrap_err();
    assert!(matches!(e, CrowdError::NotCrowd { status: 404, .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("does not specify a valid Crowd User Management REST service"),
        "{e}"
    );

    // What the client records is what the server saw.
    sim.log().clear();
    let mut dir = client(&sim, Settings::default());
    dir.full_sync().await.unwrap();
    let seen: Vec<String> = sim
        .log()
        .entries()
        .into_iter()
        .map(|l| {
            format!(
                "{} {}",
                l.method,
                l.target.strip_prefix("/rest/usermanagement/1").unwrap_or(&l.target)
            )
        })
        .collect();
    let recorded: Vec<String> = dir
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.target))
        .collect();
    assert_eq!(seen, recorded);

    // A server without user passwords refuses every login with 400 INVALID_USER_AUTHENTICATION.
    let e = dir.authenticate(&d.users[0].username, "secret").await.unwrap_err();
    assert!(
        matches!(&e, CrowdError::Rest { status: 400, reason, .. } if reason == "INVALID_USER_AUTHENTICATION"),
        "{e:?}"
    );
    assert_eq!(
        dir.take_calls().last().map(String::as_str),
        Some(format!("POST /authentication?username={}", d.users[0].username).as_str())
    );
}

#[tokio::test]
async fn names_travel_encoded_as_java_encodes_them() {
    let mut d = Directory::generate(2, 1, 1);
    d.groups[0].name = "team one+two".into();
    let mut s = CrowdState::from_directory(&d, Product::Crowd);
    s.add_application(APP, PASSWORD, &["127.0.0.0/8"]);
    s.without_membership_document();
    let sim = CrowdSim::start(s).await;
    let mut dir = client(&sim, Settings::default());
    dir.full_sync().await.unwrap();
    let calls: BTreeSet<String> = dir.take_calls().into_iter().collect();
    assert!(
        calls.contains("GET /group/user/direct?groupname=team+one%2Btwo&start-index=0&max-results=-1"),
        "{calls:#?}"
    );
    assert_eq!(dir.cache, expected(&d));
}

// The same client against Roster's endpoint: `roster serve` reading a served directory.

fn roster(d: &Directory) -> RosterCrowd {
    let changes = seed_changes(d);
    RosterCrowd::start(Path::new(env!("CARGO_BIN_EXE_roster")), APP, |store| {
        for c in &changes {
            store.served_apply(c).unwrap();
        }
    })
}

fn roster_client(r: &RosterCrowd, settings: Settings) -> CrowdDirectory {
    CrowdDirectory::new(&r.url, &r.app, &r.password, settings)
}

/// `d` as Roster serves it: flat (no group in a group), keys left out (the store makes them),
/// each user's record as its `roster.records` attribute when attributes are synchronised.
fn served(d: &Directory, attributes: AttributeSync) -> Cache {
    let mut c = expected(d);
    c.children.clear();
    for (_, u) in c.users.iter_mut() {
        if attributes == AttributeSync::On {
            let id = u.key.clone().unwrap_or_default();
            u.attributes.insert("roster.records".into(), vec![format!("hr:{id}")]);
        }
        u.key = None;
    }
    c
}

/// The cache with its keys taken out, after checking every user has one of its own.
fn keys_checked(c: &Cache) -> Cache {
    let keys: BTreeSet<&str> = c.users.values().filter_map(|u| u.key.as_deref()).collect();
    assert_eq!(keys.len(), c.users.len(), "every user has its own <key>");
    let mut c = c.clone();
    for u in c.users.values_mut() {
        u.key = None;
    }
    c
}

#[tokio::test]
async fn roster_full_sync_makes_bitbucket_calls_and_copies_the_served_directory() {
    let d = Directory::generate(40, 8, 3);
    let r = roster(&d);
    for attributes in [AttributeSync::Off, AttributeSync::On] {
        let mut dir = roster_client(
            &r,
            Settings {
                user_attributes: attributes,
                ..Settings::default()
            },
        );
        dir.full_sync().await.unwrap();
        let expand = match attributes {
            AttributeSync::Off => "user",
            AttributeSync::On => "user%2Cattributes",
        };
        assert_eq!(dir.take_calls(), full_calls(expand));
        assert_eq!(keys_checked(&dir.cache), served(&d, attributes));
        assert!(dir.token().is_some(), "GET /event gave no token");
        assert!(!dir.events_during_full_sync);
    }
}

/// Every change the crowd-directory target applies, the kinds Bitbucket must follow.
fn change_served(r: &RosterCrowd, d: &Directory) {
    let group = |i: usize| d.groups[i].name.clone();
    let user = |i: usize| d.users[i].username.clone();
    r.apply(ServedChange::RenameUser {
        from: user(0),
        to: "renamed-user".into(),
        records: vec![("hr".into(), d.users[0].id.clone())],
    });
    let g = r.store.served_user_groups(&user(1)).unwrap()[0].clone();
    r.apply(ServedChange::RemoveMember {
        group: g,
        user: user(1),
    });
    r.apply(ServedChange::DeleteGroup { group: group(2) });
    r.apply(ServedChange::UpdateUser {
        user: user(4),
        display_name: "Changed Name".into(),
        email: "changed@example.com".into(),
    });
    r.apply(ServedChange::CreateUser {
        user: "newcomer".into(),
        display_name: "New Comer".into(),
        email: "new@example.com".into(),
        records: vec![("hr".into(), "u-new".into())],
    });
    r.apply(ServedChange::AddMembers {
        group: group(0),
        users: vec!["newcomer".into(), user(9)],
    });
    let leave = r.store.served_user_groups(&user(5)).unwrap();
    r.apply(ServedChange::Deactivate { user: user(5), leave });
    r.apply(ServedChange::DeleteUser { user: user(6) });
    r.apply(ServedChange::CreateGroup {
        group: "late-group".into(),
    });
    r.apply(ServedChange::AddMembers {
        group: "late-group".into(),
        users: vec![user(7)],
    });
}

#[tokio::test]
async fn roster_incremental_sync_converges_to_a_fresh_full_sync() {
    let d = Directory::generate(30, 8, 3);
    let r = roster(&d);
    for attributes in [AttributeSync::Off, AttributeSync::On] {
        let settings = Settings {
            user_attributes: attributes,
            ..Settings::default()
        };
        let mut dir = roster_client(&r, settings);
        dir.full_sync().await.unwrap();
        let before = dir.cache.clone();
        let renamed = dir
            .cache
            .users
            .values()
            .find(|u| u.name == d.users[0].username)
            .cloned();
        dir.take_calls();
        if attributes == AttributeSync::Off {
            change_served(&r, &d);
        } else {
            // With attributes, what a user event stores must reach the cache: a new user's
            // records, and a renamed user's new ones.
            r.apply(ServedChange::UpdateUser {
                user: d.users[10].username.clone(),
                display_name: "Second Change".into(),
                email: String::new(),
            });
            r.apply(ServedChange::CreateUser {
                user: "second-newcomer".into(),
                display_name: "Second Newcomer".into(),
                email: "second@example.com".into(),
                records: vec![("hr".into(), "u-new-2".into()), ("okta".into(), "00u2".into())],
            });
            r.apply(ServedChange::RenameUser {
                from: d.users[11].username.clone(),
                to: "renamed-again".into(),
                records: vec![("hr".into(), d.users[11].id.clone()), ("okta".into(), "00u11".into())],
            });
        }
        dir.incremental_sync().await.unwrap();
        assert_eq!(dir.take_calls(), vec!["GET /event/{token}"]);
        assert!(
            matches!(dir.history.last(), Some(SyncOutcome::Incremental { events }) if *events > 0),
            "{:?}",
            dir.history
        );
        let mut fresh = roster_client(&r, settings);
        fresh.full_sync().await.unwrap();
        assert_eq!(
            dir.cache, fresh.cache,
            "incremental sync did not converge to a full sync"
        );
        assert_ne!(dir.cache, before);
        if let Some(renamed) = renamed {
            // The renamed user is the same account (same key), in the same groups.
            let now = &dir.cache.users["renamed-user"];
            assert_eq!(now.key, renamed.key);
            assert_eq!(
                dir.cache.user_groups("renamed-user"),
                before.user_groups(&d.users[0].username)
            );
        }
        dir.incremental_sync().await.unwrap();
        assert_eq!(dir.history.last(), Some(&SyncOutcome::Incremental { events: 0 }));
    }
}

#[tokio::test]
async fn roster_expired_token_falls_back_to_a_full_sync() {
    let d = Directory::generate(20, 8, 2);
    let r = roster(&d);
    let mut dir = roster_client(&r, Settings::default());
    dir.full_sync().await.unwrap();
    dir.take_calls();
    change_served(&r, &d);
    // The retention passes over every event: the stored token is older than the log.
    r.store.served_prune_events(i64::MAX).unwrap();
    dir.incremental_sync().await.unwrap();
    let mut calls = vec!["GET /event/{token}".to_string()];
    calls.extend(full_calls("user"));
    assert_eq!(dir.take_calls(), calls);
    assert_eq!(
        dir.history.last(),
        Some(&SyncOutcome::FullInstead {
            why: "410 EVENT_TOKEN_EXPIRED".into()
        })
    );
    let mut fresh = roster_client(&r, Settings::default());
    fresh.full_sync().await.unwrap();
    assert_eq!(dir.cache, fresh.cache);
}

#[tokio::test]
async fn roster_refusals_read_as_the_java_client_reads_them() {
    let d = Directory::generate(3, 2, 1);
    let r = roster(&d);
    let mut wrong = CrowdDirectory::new(&r.url, &r.app, "wrong", Settings::default());
    assert!(matches!(wrong.full_sync().await, Err(CrowdError::Unauthorised(_))));
    let mut dir = roster_client(&r, Settings::default());
    let e = dir.authenticate(&d.users[0].username, "secret").await.unwrap_err();
    assert!(
        matches!(&e, CrowdError::Rest { status: 400, reason, .. } if reason == "INVALID_USER_AUTHENTICATION"),
        "{e:?}"
    );
    // From an address the application does not allow: 403, read as a permission refusal (and
    // not as "not a Crowd server": the refusal carries the header too).
    r.store
        .crowd_app_update(APP, &["10.0.0.0/8".to_string()], None)
        .unwrap();
    let e = dir.full_sync().await.unwrap_err();
    assert!(matches!(e, CrowdError::Forbidden(_)), "{e:?}");
}

#[tokio::test]
async fn roster_scoped_application_incremental_sync_converges_to_its_full_sync() {
    let d = Directory::generate(30, 8, 2);
    let visible = vec![d.groups[0].name.clone(), d.groups[1].name.clone()];
    let changes = seed_changes(&d);
    let r = RosterCrowd::start_scoped(Path::new(env!("CARGO_BIN_EXE_roster")), APP, Some(&visible), |store| {
        for c in &changes {
            store.served_apply(c).unwrap();
        }
    });
    let mut dir = roster_client(&r, Settings::default());
    dir.full_sync().await.unwrap();
    let seen: BTreeSet<String> = dir.cache.groups.keys().cloned().collect();
    let want: BTreeSet<String> = visible.iter().map(|g| g.to_lowercase()).collect();
    assert_eq!(seen, want, "the application sees only its groups");
    for u in dir.cache.users.keys() {
        assert!(
            !dir.cache.user_groups(u).is_empty(),
            "{u} is in none of the visible groups"
        );
    }

    // A member of a visible group leaves it (and with it everything the application sees), a
    // user joins one, a hidden group changes, a visible member is renamed.
    let leaver = r.store.served_group_users(&visible[0]).unwrap()[0].clone();
    for g in r.store.served_user_groups(&leaver).unwrap() {
        if want.contains(&g.to_lowercase()) {
            r.apply(ServedChange::RemoveMember {
                group: g,
                user: leaver.clone(),
            });
        }
    }
    let outsider = d
        .users
        .iter()
        .map(|u| u.username.clone())
        .find(|u| !dir.cache.users.contains_key(&u.to_lowercase()))
        .expect("a user the application does not see");
    r.apply(ServedChange::AddMembers {
        group: visible[1].clone(),
        users: vec![outsider.clone()],
    });
    r.apply(ServedChange::DeleteGroup {
        group: d.groups[5].name.clone(),
    });
    let member = r.store.served_group_users(&visible[1]).unwrap()[0].clone();
    if member != outsider {
        r.apply(ServedChange::RenameUser {
            from: member,
            to: "renamed-visible".into(),
            records: Vec::new(),
        });
    }

    dir.incremental_sync().await.unwrap();
    assert!(
        matches!(dir.history.last(), Some(SyncOutcome::Incremental { .. })),
        "{:?}",
        dir.history
    );
    let mut fresh = roster_client(&r, Settings::default());
    fresh.full_sync().await.unwrap();
    assert!(fresh.cache.users.contains_key(&outsider.to_lowercase()));
    assert!(!fresh.cache.users.contains_key(&leaver.to_lowercase()));
    assert_eq!(
        dir.cache, fresh.cache,
        "a scoped application's incremental sync did not converge ({:?})",
        dir.history
    );
}

/// The whole chain: `roster sync` from a file source into a `crowd-directory` target, then
/// `roster serve`'s endpoint read as Bitbucket reads it; a second sync's changes reach Bitbucket
/// by events alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_sync_into_the_crowd_directory_reaches_bitbucket() {
    const LICENSED: &str = "bitbucket-users";
    let mut d = Directory::generate(20, 5, 2);
    let dir = crate::common::data_dir_with(&["file", "normalize"]);
    let idp = dir.path().join("idp");
    std::fs::create_dir_all(&idp).unwrap();
    d.write_json(&idp.join("directory.json")).unwrap();
    std::fs::write(
        dir.path().join("roster.toml"),
        format!(
            "[[source]]\nid = \"hr\"\nplugin = \"file\"\nfiles = \"{}\"\nsettings = {{ path = \"directory.json\" }}\n\n\
             [[source.transforms]]\nplugin = \"normalize\"\n\n[target]\nkind = \"crowd-directory\"\n\
             licensed_groups = [\"{LICENSED}\"]\ndefault_groups = [\"{LICENSED}\"]\n",
            idp.display()
        ),
    )
    .unwrap();
    let data = dir.path().to_path_buf();
    let sync = move || {
        let (_, report) = crate::common::roster_json(&data, &["sync"]);
        report
    };
    let sync2 = sync.clone();
    tokio::task::spawn_blocking(sync).await.unwrap();
    let r = tokio::task::spawn_blocking(move || {
        RosterCrowd::serve(Path::new(env!("CARGO_BIN_EXE_roster")), dir, APP, None)
    })
    .await
    .unwrap();

    let mut bb = roster_client(&r, Settings::default());
    bb.full_sync().await.unwrap();
    assert_eq!(bb.cache.users.len(), d.users.len(), "{:#?}", bb.cache.users.keys());
    assert!(bb.cache.users.values().all(|u| u.active && u.key.is_some()));
    assert_eq!(bb.cache.group_users(LICENSED).len(), d.users.len());
    for m in d.memberships.iter().filter(|m| !m.member_is_group) {
        let (g, u) = (
            d.group_name(&m.group).to_lowercase(),
            d.username(&m.member).to_lowercase(),
        );
        assert!(bb.cache.members.contains(&(g.clone(), u.clone())), "{u} not in {g}");
    }

    // The people change: one leaves (disabled: inactive, out of its groups), one is renamed in
    // the source's display name, one leaves a group.
    let gone = d.users.remove(3);
    d.memberships.retain(|m| m.member != gone.id);
    d.users[0].display_name = "Renamed Person".into();
    let left = d.memberships.iter().position(|m| !m.member_is_group).unwrap();
    let left = d.memberships.remove(left);
    d.write_json(&r.data().join("idp/directory.json")).unwrap();
    tokio::task::spawn_blocking(sync2).await.unwrap();

    bb.incremental_sync().await.unwrap();
    assert!(
        matches!(bb.history.last(), Some(SyncOutcome::Incremental { events }) if *events > 0),
        "{:?}",
        bb.history
    );
    let mut fresh = roster_client(&r, Settings::default());
    fresh.full_sync().await.unwrap();
    assert_eq!(bb.cache, fresh.cache, "the incremental sync did not converge");
    let gone = &bb.cache.users[&gone.username.to_lowercase()];
    assert!(!gone.active, "a person who left is inactive: {gone:?}");
    assert!(bb.cache.user_groups(&gone.name).is_empty());
    assert_eq!(
        bb.cache.users[&d.users[0].username.to_lowercase()].display_name,
        "Renamed Person"
    );
    let (g, u) = (
        d.group_name(&left.group).to_lowercase(),
        d.username(&left.member).to_lowercase(),
    );
    assert!(!bb.cache.members.contains(&(g, u)));
}
