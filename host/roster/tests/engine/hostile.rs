//! Hostile data: what an identity provider can hand Roster that no test fixture would — huge
//! values, huge groups, repeated ids, usernames that look alike, characters Bitbucket cannot
//! take, a person moving between sources. Each is refused or reported for that record alone;
//! everyone else is synced, and nothing is written twice.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common;

use common::Configured;
use common::world::{World, bitbucket, groups_of};
use roster_sim::directory::Directory;

/// A world whose export is the raw JSON document `doc` (what an IdP export could hold).
async fn world(doc: &Value) -> World {
    let w = World::new(&Directory::default(), bitbucket()).await;
    write(&w, doc);
    w
}

fn write(w: &World, doc: &Value) {
    std::fs::write(w.files_dir().join("directory.json"), doc.to_string()).unwrap();
}

fn user(id: &str, username: &str) -> Value {
    json!({"id": id, "username": username, "email": format!("{id}@example.com"), "display_name": format!("Person {id}")})
}

fn member(group: &str, user: &str) -> Value {
    json!({"group": group, "member": user})
}

fn users(w: &World) -> BTreeSet<String> {
    w.sim.lock().users().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_values_are_refused_for_that_person_and_the_others_sync() {
    let mb = "x".repeat(1 << 20);
    let mut people: Vec<Value> = (0..20).map(|i| user(&format!("u{i}"), &format!("user{i}"))).collect();
    people[3]["display_name"] = json!(mb);
    people[4]["email"] = json!(format!("{mb}@example.com"));
    people[5]["attributes"] = json!({"notes": mb, "tags": [mb, "b"]});
    people[6]["username"] = json!(mb);
    let doc = json!({
        "users": people,
        "groups": [{"id": "g", "name": "dev"}],
        "memberships": (0..20).map(|i| member("g", &format!("u{i}"))).collect::<Vec<_>>(),
    });
    let w = world(&doc).await;
    let r = w.sync().await;
    assert!(r.state.applied(), "{:?} {:?}", r.state, r.summary.warnings);
    let got = users(&w);
    for i in (0..20).filter(|i| ![3, 4, 6].contains(i)) {
        assert!(
            got.contains(&format!("user{i}")),
            "user{i} missing: {:?}",
            r.summary.warnings
        );
    }
    // A raw attribute no field uses costs nothing at the target.
    assert!(got.contains("user5"));
    let warnings = r.summary.warnings.join("\n");
    assert!(
        warnings.len() < 10_000,
        "a megabyte value was quoted whole in the warnings"
    );
    for (who, field) in [("u3", "display name"), ("u4", "email"), ("u6", "username")] {
        assert!(
            warnings.contains(who) && warnings.contains(field),
            "no warning naming {who}'s {field}: {warnings:.2000}"
        );
    }
    for u in got.iter() {
        assert!(u.len() <= 255, "a {}-character username reached Bitbucket", u.len());
    }
    for u in w.sim.lock().users().values() {
        assert!(u.display_name.len() <= 255 && u.email.len() <= 255, "{}", u.name);
    }
    // The long display name was cut to fit; the refused email and username left two out.
    assert_eq!(w.sim.lock().users()["user3"].display_name.chars().count(), 255);
    assert_eq!(w.sim.lock().groups()["dev"].len(), 18);
    let again = w.sync().await;
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_ids_in_one_page_are_reported_and_written_once() {
    let doc = json!({
        "users": [user("u1", "alice"), user("u1", "alice2"), user("u2", "bob"), user("u2", "bob")],
        "groups": [{"id": "g", "name": "dev"}, {"id": "g", "name": "ops"}],
        "memberships": [member("g", "u1"), member("g", "u1"), member("g", "u2")],
    });
    let w = world(&doc).await;
    let r = w.sync().await;
    assert!(r.state.applied(), "{:?} {:?}", r.state, r.summary.warnings);
    let warnings = r.summary.warnings.join("\n");
    assert!(
        warnings.contains("u1") && warnings.contains("more than once"),
        "the repeated id is reported: {warnings}"
    );
    let got = users(&w);
    assert!(got.contains("bob"), "{got:?}");
    // One record per id: the first of the repeated u1 is kept, never both.
    assert!(
        !(got.contains("alice") && got.contains("alice2")),
        "one IdP id became two accounts: {got:?}"
    );
    let creates = w.sim.lock().calls.get("POST /admin/users").copied().unwrap_or(0);
    assert_eq!(
        creates as usize,
        got.len() - 1,
        "one create per account (admin excluded)"
    );
    assert!(w.sync().await.summary.planned.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_differing_only_by_case_or_normalisation_collide_and_neither_overwrites() {
    let nfc = "jos\u{e9}";
    let nfd = "jose\u{301}";
    let mut doc = json!({
        "users": [user("a1", "Alice"), user("a2", "alice"), user("j1", nfc), user("j2", nfd), user("c", "carol")],
        "groups": [{"id": "g", "name": "dev"}],
        "memberships": [member("g", "a1"), member("g", "a2"), member("g", "j1"), member("g", "j2"), member("g", "c")],
    });
    let w = world(&doc).await;
    let r = w.sync().await;
    assert!(r.state.applied(), "{:?} {:?}", r.state, r.summary.warnings);
    let got = users(&w);
    assert!(got.contains("alice") && got.contains("carol"), "{got:?}");
    let josé: Vec<&String> = got.iter().filter(|u| u.starts_with("jos")).collect();
    assert_eq!(josé.len(), 1, "two accounts that look the same: {josé:?}");
    let warnings = r.summary.warnings.join("\n");
    assert!(warnings.contains("a2") && warnings.contains("'alice'"), "{warnings}");
    assert!(warnings.contains("j2"), "the NFD twin is reported: {warnings}");
    let alice_before = w.sim.lock().users()["alice"].clone();

    // The export lists them the other way round next time: the account stays with the person
    // it was made for.
    doc["users"] = json!([
        user("a2", "alice"),
        user("a1", "Alice"),
        user("j2", nfd),
        user("j1", nfc),
        user("c", "carol")
    ]);
    write(&w, &doc);
    let again = w.sync().await;
    assert!(again.state.applied());
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
    let alice = w.sim.lock().users()["alice"].clone();
    assert_eq!(
        (alice.email.as_str(), alice.display_name.as_str()),
        (alice_before.email.as_str(), alice_before.display_name.as_str()),
        "the account was overwritten with the twin's details"
    );
    assert!(again.summary.collisions.is_empty() || again.summary.warnings.iter().any(|w| w.contains("a2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_bitbucket_cannot_take_are_refused_per_person_and_the_others_sync() {
    let bad = [
        "bad/name",
        "with space",
        "tab\tname",
        "bell\u{7}",
        "new\nline",
        "back\\slash",
        " ",
    ];
    let mut people: Vec<Value> = bad.iter().enumerate().map(|(i, n)| user(&format!("b{i}"), n)).collect();
    people.push(user("ok1", "fine.name"));
    people.push(user("ok2", "o'brien@example.com"));
    let mut memberships: Vec<Value> = (0..bad.len()).map(|i| member("g", &format!("b{i}"))).collect();
    memberships.push(member("g", "ok1"));
    memberships.push(member("g", "ok2"));
    let doc = json!({"users": people, "groups": [{"id": "g", "name": "dev"}], "memberships": memberships});
    let w = world(&doc).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let got = users(&w);
    assert_eq!(
        got,
        BTreeSet::from(["admin".to_string(), "fine.name".into(), "o'brien@example.com".into()]),
        "{:?}",
        r.summary.warnings
    );
    let warnings = r.summary.warnings.join("\n");
    // The blank one (last) is the merge's "empty username"; the others the target's rule.
    for (i, name) in bad.iter().enumerate().take(bad.len() - 1) {
        assert!(
            warnings.contains(&format!("b{i}")) && warnings.contains("cannot be a Bitbucket username"),
            "b{i} ({name:?}) is not reported: {warnings}"
        );
    }
    assert_eq!(groups_of(&w.sim, "fine.name"), ["bitbucket-users", "dev"]);
    assert!(w.sync().await.summary.planned.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_a_hundred_thousand_members_syncs_in_bounded_memory() {
    const N: usize = 100_000;
    let mut d = Directory::generate(N, 1, 0);
    d.memberships = (0..N)
        .map(|k| roster_sim::directory::DirMembership {
            group: "g-00000".into(),
            member: format!("u-{k:06}"),
            member_is_group: false,
        })
        .collect();
    // The accounts exist already (adopted): the run is about the group, not 100,000 creates.
    let mut state = bitbucket();
    for u in &d.users {
        state.add_user(&u.username, &u.display_name, &u.email, true);
    }
    let mut w = World::new(&d, state).await;
    w.file_name = "directory.jsonl".into();
    w.write(&d);
    w.target_extra = "adopt_existing_users = true\nbudget = { per_second = 100000, burst = 100000 }\nthreshold = { count = 1000000, percent = 100 }".into();
    std::fs::write(w.rt.dir.path().join("roster.toml"), w.config_text()).unwrap();
    let (_, r) = common::roster_json(
        w.rt.dir.path(),
        &["sync", "--plugins-dir", &w.rt.plugins_dir().display().to_string()],
    );
    assert_eq!(r["state"], "succeeded", "{r:#}");
    let members = w.sim.lock().groups()["team-00000"].len();
    assert_eq!(members, N);
    let rss = r["summary"]["peak_rss_mib"].as_f64().unwrap();
    println!(
        "100,000-member group: peak RSS {rss:.0} MiB, {} calls",
        r["summary"]["api_calls_total"]
    );
    assert!(rss < 1024.0, "peak RSS {rss:.0} MiB for one group of 100,000");
    let (_, again) = common::roster_json(
        w.rt.dir.path(),
        &["sync", "--plugins-dir", &w.rt.plugins_dir().display().to_string()],
    );
    assert!(
        again["summary"]["planned"].as_object().is_none_or(|p| p.is_empty()),
        "{:#}",
        again["summary"]["planned"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_moving_between_sources_keeps_the_account_and_memberships() {
    let w = World::new(&Directory::default(), bitbucket()).await;
    let hr = w.files_dir().join("hr");
    let contractors = w.files_dir().join("contractors");
    std::fs::create_dir_all(&hr).unwrap();
    std::fs::create_dir_all(&contractors).unwrap();
    let export = |dir: &std::path::Path, people: &[(&str, &str)]| {
        let doc = json!({
            "users": people.iter().map(|(id, name)| json!({"id": id, "username": name, "email": format!("{name}@example.com"), "display_name": name})).collect::<Vec<_>>(),
            "groups": [{"id": "dev", "name": "dev"}],
            "memberships": people.iter().map(|(id, _)| member("dev", id)).collect::<Vec<_>>(),
        });
        std::fs::write(dir.join("d.json"), doc.to_string()).unwrap();
    };
    export(&hr, &[("h-1", "alice"), ("h-2", "bob")]);
    export(&contractors, &[("c-9", "carol")]);
    let config = format!(
        r#"[[source]]
id = "hr"
plugin = "file"
priority = 10
files = "{}"
settings = {{ path = "d.json" }}

[[source]]
id = "contractors"
plugin = "file"
priority = 20
files = "{}"
settings = {{ path = "d.json" }}

[target]
url = "{}"
username = "admin"
password = {{ value = "password" }}
default_groups = ["bitbucket-users"]
threshold = {{ count = 10, percent = 100 }}
"#,
        hr.display(),
        contractors.display(),
        w.sim.url()
    );
    let runner = || {
        let c = roster_serve::Config::parse(&config, w.rt.dir.path(), &common::kinds()).unwrap();
        roster_serve::Runner::new(w.store.clone(), w.rt.runtime.clone(), c, &common::kinds()).unwrap()
    };
    let sync = || async {
        let opts = roster_serve::SyncOptions::new(roster_model::Trigger::Cli, "test");
        runner().sync(&opts, &roster_model::Quiet).await.unwrap()
    };
    let r = sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(groups_of(&w.sim, "alice"), ["bitbucket-users", "dev"]);
    let writes = w.bb_writes();

    // Alice leaves HR and joins as a contractor, in one step (the two exports change together).
    export(&hr, &[("h-2", "bob")]);
    export(&contractors, &[("c-9", "carol"), ("c-1", "alice")]);
    let r = sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    for kind in ["deactivate-user", "delete-user", "create-user", "remove-members"] {
        assert!(!r.summary.planned.contains_key(kind), "{kind}: {:?}", r.summary.planned);
    }
    assert!(r.summary.collisions.is_empty(), "{:?}", r.summary.collisions);
    assert_eq!(groups_of(&w.sim, "alice"), ["bitbucket-users", "dev"]);
    assert_eq!(
        w.bb_writes(),
        writes,
        "nothing to write: the same person, the same groups"
    );
    // And she stays Roster's: leaving the second source too deprovisions her.
    export(&contractors, &[("c-9", "carol")]);
    let r = sync().await;
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(groups_of(&w.sim, "alice"), Vec::<String>::new());
}
