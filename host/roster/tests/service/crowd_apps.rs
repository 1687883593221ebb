//! The applications that read Roster's Crowd directory, managed through the REST API
//! (`/api/v1/crowd/applications`) route by route and role by role, and through
//! `roster crowd apps` on the same data folder: the password is shown once, never listed, and
//! signs the application in until it is rotated; every change is audited.

use crate::common;

use common::api::ApiWorld;
use common::entra::{EntraWorld, tenant};
use common::world::bitbucket;
use reqwest::Method;
use roster_sim::directory::Directory;
use roster_store::ServedChange;
use serde_json::{Value, json};

const APPS: &str = "/api/v1/crowd/applications";

async fn world() -> ApiWorld {
    let d = Directory::generate(5, 2, 1);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    let w = ApiWorld::start(w, "").await;
    // One group the served directory holds, so that only the others are warned about.
    w.world
        .store
        .served_apply(&ServedChange::CreateGroup {
            group: "bitbucket-users".into(),
        })
        .unwrap();
    w
}

/// Whether `password` signs `name` in (what the Crowd endpoint asks the store).
fn signs_in(w: &ApiWorld, name: &str, password: &str) -> bool {
    w.world.store.crowd_app_verify(name, password).unwrap().is_some()
}

/// The audit entries of an action, newest first: (actor, subject, detail).
fn audited(w: &ApiWorld, action: &str) -> Vec<(String, String, String)> {
    w.world
        .store
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| (e.actor, e.subject, e.detail.unwrap_or_default()))
        .collect()
}

fn error_of(body: &Value) -> String {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_an_application_whose_password_is_shown_once() {
    let w = world().await;
    let (status, made) = w
        .post(
            APPS,
            &w.admin,
            json!({"name": "bitbucket", "allowed": ["10.0.0.5", " 10.1.0.0/16"], "groups": ["bitbucket-users", "bb-admins"]}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let password = made["password"].as_str().unwrap().to_string();
    assert!(password.len() >= 40, "{password}");
    assert_eq!(made["name"], "bitbucket");
    assert_eq!(made["allowed"], json!(["10.0.0.5", "10.1.0.0/16"]));
    assert_eq!(made["groups"], json!(["bitbucket-users", "bb-admins"]));
    assert_eq!(made["created_by"], "token:admin");
    assert_eq!(made["last_used_at"], Value::Null);
    // Only the group the served directory does not hold is warned about.
    let warnings = made["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{made}");
    assert!(warnings[0].as_str().unwrap().contains("'bb-admins'"), "{made}");
    assert!(signs_in(&w, "bitbucket", &password));
    assert!(!signs_in(&w, "bitbucket", "not-the-password"));

    // Listed and shown to a viewer, never with the password.
    for path in [APPS.to_string(), format!("{APPS}/bitbucket")] {
        let resp = w.req(Method::GET, &path, &w.viewer).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains(&password) && !text.contains("password"),
            "{path}: {text}"
        );
    }
    let (_, list) = w.get(APPS, &w.viewer).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["groups"], json!(["bitbucket-users", "bb-admins"]));
    // Names are looked up without regard to case.
    assert_eq!(w.get(&format!("{APPS}/BitBucket"), &w.viewer).await.0, 200);

    // Audited, without the password.
    let created = audited(&w, "crowd-app.create");
    assert_eq!(created.len(), 1, "{created:?}");
    let (actor, subject, detail) = &created[0];
    assert_eq!(actor, "token:admin");
    assert_eq!(subject, "crowd application bitbucket");
    assert!(
        detail.contains("10.1.0.0/16") && detail.contains("bb-admins"),
        "{detail}"
    );
    assert!(
        w.world
            .store
            .audit_log(1000)
            .unwrap()
            .iter()
            .all(|e| !format!("{e:?}").contains(&password))
    );

    // Every group: no warning, and `groups` is null.
    let (status, all) = w
        .post(APPS, &w.admin, json!({"name": "jira", "allowed": ["2001:db8::/32"]}))
        .await;
    assert_eq!(status, 201, "{all}");
    assert_eq!(all["groups"], Value::Null);
    assert_eq!(all["warnings"], json!([]));
    assert_ne!(all["password"], made["password"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_or_an_operator_lists_but_changes_nothing() {
    let w = world().await;
    let (status, made) = w
        .post(APPS, &w.admin, json!({"name": "bitbucket", "allowed": ["10.0.0.5"]}))
        .await;
    assert_eq!(status, 201, "{made}");
    let password = made["password"].as_str().unwrap().to_string();
    let one = format!("{APPS}/bitbucket");
    let settings = json!({"allowed": ["0.0.0.0/0"]});
    for token in [&w.viewer, &w.operator] {
        assert_eq!(w.get(APPS, token).await.0, 200);
        assert_eq!(w.get(&one, token).await.0, 200);
        let (status, body) = w
            .post(APPS, token, json!({"name": "mine", "allowed": ["0.0.0.0/0"]}))
            .await;
        assert_eq!(status, 403, "{body}");
        assert!(error_of(&body).contains("admin"), "{body}");
        assert_eq!(w.send_json(Method::PUT, &one, token, settings.clone()).await.0, 403);
        assert_eq!(w.post(&format!("{one}/password"), token, json!({})).await.0, 403);
        assert_eq!(w.send_json(Method::DELETE, &one, token, json!({})).await.0, 403);
    }
    for (method, path) in [
        (Method::GET, APPS),
        (Method::POST, APPS),
        (Method::DELETE, one.as_str()),
    ] {
        assert_eq!(w.send_json(method, path, "", json!({})).await.0, 401);
    }
    // Nothing changed: one application, its address and password as they were.
    let (_, list) = w.get(APPS, &w.viewer).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["allowed"], json!(["10.0.0.5"]));
    assert!(signs_in(&w, "bitbucket", &password));
    for action in ["crowd-app.update", "crowd-app.rotate", "crowd-app.delete"] {
        assert!(audited(&w, action).is_empty(), "{action}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_addresses_are_refused_naming_them_and_a_taken_name_is_a_conflict() {
    let w = world().await;
    let (status, _) = w
        .post(APPS, &w.admin, json!({"name": "Bitbucket", "allowed": ["10.0.0.5"]}))
        .await;
    assert_eq!(status, 201);
    let (status, body) = w
        .post(APPS, &w.admin, json!({"name": "bitbucket", "allowed": ["10.0.0.9"]}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("'Bitbucket' exists already"), "{body}");

    let refused = [
        (
            json!({"name": "jira", "allowed": ["10.0.0.5", "10.0.0.0/33"]}),
            "\"10.0.0.0/33\"",
        ),
        (
            json!({"name": "jira", "allowed": ["jira.example.com"]}),
            "\"jira.example.com\"",
        ),
        (json!({"name": "jira", "allowed": []}), "allow-list is empty"),
        (
            json!({"name": "jira", "allowed": ["10.0.0.5"], "groups": []}),
            "list of groups is empty",
        ),
        (
            json!({"name": "jira", "allowed": ["10.0.0.5"], "groups": [" "]}),
            "group name",
        ),
        (json!({"name": "ji:ra", "allowed": ["10.0.0.5"]}), "\"ji:ra\""),
        (json!({"name": "", "allowed": ["10.0.0.5"]}), "\"\""),
    ];
    for (body, named) in refused {
        let (status, answer) = w.post(APPS, &w.admin, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(error_of(&answer).contains(named), "{body}: {answer}");
    }
    // A body that is not an application at all.
    assert_eq!(w.post(APPS, &w.admin, json!({"name": "jira"})).await.0, 422);
    assert_eq!(
        w.post(
            APPS,
            &w.admin,
            json!({"name": "jira", "allowed": ["10.0.0.5"], "password": "mine"})
        )
        .await
        .0,
        422,
        "a password is never chosen by the caller"
    );
    // A JSON array of the fields is not an object, though serde would read one from it.
    for body in [json!(["jira", ["10.0.0.5"]]), json!([])] {
        let (status, answer) = w.post(APPS, &w.admin, body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(error_of(&answer).contains("JSON object"), "{answer}");
    }
    let (status, answer) = w.post("/api/v1/runs", &w.operator, json!([])).await;
    assert_eq!(status, 422, "every operation's body is an object: {answer}");
    let (_, list) = w.get(APPS, &w.viewer).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(audited(&w, "crowd-app.create").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_is_changed_rotated_and_removed_each_audited() {
    let w = world().await;
    let (status, made) = w
        .post(
            APPS,
            &w.admin,
            json!({"name": "bitbucket", "allowed": ["10.0.0.5"], "groups": ["bitbucket-users"]}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let first = made["password"].as_str().unwrap().to_string();
    let one = format!("{APPS}/bitbucket");

    // Replaced as a whole: leaving out `groups` lets it see every group; the password stays.
    let (status, changed) = w
        .send_json(
            Method::PUT,
            &one,
            &w.admin,
            json!({"allowed": ["10.0.0.0/24", "192.0.2.7"], "groups": ["bitbucket-users", "nobody-has-this"]}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["allowed"], json!(["10.0.0.0/24", "192.0.2.7"]));
    assert_eq!(changed["groups"], json!(["bitbucket-users", "nobody-has-this"]));
    assert!(changed.get("password").is_none(), "{changed}");
    let warnings = changed["warnings"].to_string();
    assert!(
        warnings.contains("'nobody-has-this'") && !warnings.contains("'bitbucket-users'"),
        "{warnings}"
    );
    let (status, changed) = w
        .send_json(Method::PUT, &one, &w.admin, json!({"allowed": ["10.0.0.0/24"]}))
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["groups"], Value::Null);
    assert!(signs_in(&w, "bitbucket", &first));
    let (status, body) = w
        .send_json(Method::PUT, &one, &w.admin, json!({"allowed": ["10.0.0.300"]}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("\"10.0.0.300\""), "{body}");
    assert_eq!(w.get(&one, &w.viewer).await.1["allowed"], json!(["10.0.0.0/24"]));

    // A new password, shown once: the old one no longer signs in.
    let (status, rotated) = w.post(&format!("{one}/password"), &w.admin, json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["name"], "bitbucket");
    let second = rotated["password"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert!(!signs_in(&w, "bitbucket", &first));
    assert!(signs_in(&w, "bitbucket", &second));
    // Rotating needs no body at all.
    let resp = w
        .req(Method::POST, &format!("{one}/password"), &w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!signs_in(&w, "bitbucket", &second));

    // Removed: gone from the list, and its password signs nothing in.
    let resp = w.req(Method::DELETE, &one, &w.admin).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(w.get(APPS, &w.viewer).await.1, json!([]));

    // Each operation on an application that does not exist is a 404 naming it.
    let gone = [
        w.get(&one, &w.viewer).await,
        w.send_json(Method::PUT, &one, &w.admin, json!({"allowed": ["10.0.0.5"]}))
            .await,
        w.post(&format!("{one}/password"), &w.admin, json!({})).await,
        w.send_json(Method::DELETE, &one, &w.admin, json!({})).await,
    ];
    for (status, body) in gone {
        assert_eq!(status, 404, "{body}");
        assert!(error_of(&body).contains("'bitbucket'"), "{body}");
    }

    // One audit entry per change, by whom and on what; refused and missing ones left out.
    let subject = "crowd application bitbucket".to_string();
    for (action, count) in [
        ("crowd-app.create", 1),
        ("crowd-app.update", 2),
        ("crowd-app.rotate", 2),
        ("crowd-app.delete", 1),
    ] {
        let entries = audited(&w, action);
        assert_eq!(entries.len(), count, "{action}: {entries:?}");
        assert!(
            entries
                .iter()
                .all(|(actor, s, _)| actor == "token:admin" && *s == subject),
            "{action}: {entries:?}"
        );
    }
    let updates = audited(&w, "crowd-app.update");
    assert_eq!(updates[0].2, "allowed: 10.0.0.0/24; groups: every group");
    w.assert_audited(&[
        "crowd-app.create",
        "crowd-app.update",
        "crowd-app.rotate",
        "crowd-app.delete",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_sets_rotates_and_removes_on_the_same_data_folder() {
    use base64::Engine as _;
    let w = world().await;
    let roster = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--data-dir")
            .arg(w.world.rt.dir.path())
            .args(args)
            .env(
                "ROSTER_SECRET_KEY",
                base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            )
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let ok = |args: &[&str]| {
        let (success, stdout, stderr) = roster(args);
        assert!(success, "roster {args:?}: {stdout}\n{stderr}");
        (stdout, stderr)
    };

    let (listed, _) = ok(&["crowd", "apps", "list"]);
    assert!(listed.contains("no Crowd applications"), "{listed}");
    let (password, note) = ok(&[
        "crowd",
        "apps",
        "add",
        "bitbucket",
        "--allow",
        "10.0.0.5",
        "10.1.0.0/16",
        "--group",
        "bitbucket-users",
        "--group",
        "bb-admins",
        "--server-url",
        "https://roster.example.com",
    ]);
    // The password alone on standard output; how to enter it in Bitbucket on standard error.
    assert_eq!(password.lines().count(), 1, "{password}");
    assert!(signs_in(&w, "bitbucket", &password));
    for words in [
        "Administration → User directories → Add directory → Atlassian Crowd",
        "https://roster.example.com",
        "Application name      bitbucket",
        "shown this once",
        "warning: no group 'bb-admins'",
    ] {
        assert!(note.contains(words), "{words:?} not in:\n{note}");
    }
    assert!(!note.contains("'bitbucket-users'"), "{note}");
    // The API shows what the command line made.
    let (_, app) = w.get(&format!("{APPS}/bitbucket"), &w.viewer).await;
    assert_eq!(app["allowed"], json!(["10.0.0.5", "10.1.0.0/16"]));
    assert_eq!(app["groups"], json!(["bitbucket-users", "bb-admins"]));
    assert!(app["created_by"].as_str().unwrap().starts_with("cli:"), "{app}");

    let (listed, _) = ok(&["crowd", "apps", "list"]);
    assert!(
        listed.contains("bitbucket") && listed.contains("10.1.0.0/16") && !listed.contains(&password),
        "{listed}"
    );

    // Refusals name what is wrong and change nothing.
    let (success, _, err) = roster(&["crowd", "apps", "add", "BITBUCKET", "--allow", "10.0.0.6"]);
    assert!(!success && err.contains("exists already"), "{err}");
    let (success, _, err) = roster(&["crowd", "apps", "add", "jira", "--allow", "10.0.0.0/33"]);
    assert!(!success && err.contains("\"10.0.0.0/33\""), "{err}");
    let (success, _, err) = roster(&["crowd", "apps", "add", "jira"]);
    assert!(!success && err.contains("--allow"), "{err}");
    let (success, _, err) = roster(&["crowd", "apps", "set", "bitbucket"]);
    assert!(!success && err.contains("nothing to change"), "{err}");
    let (success, _, err) = roster(&["crowd", "apps", "set", "bitbucket", "--group", "x", "--all-groups"]);
    assert!(!success && err.contains("--all-groups"), "{err}");
    let (success, _, err) = roster(&["crowd", "apps", "rotate", "nobody"]);
    assert!(!success && err.contains("no Crowd application named 'nobody'"), "{err}");
    assert_eq!(w.get(APPS, &w.viewer).await.1.as_array().unwrap().len(), 1);

    // `set` changes what it is given and keeps the rest.
    let (said, _) = ok(&["crowd", "apps", "set", "bitbucket", "--allow", "192.0.2.0/24"]);
    assert!(said.contains("192.0.2.0/24"), "{said}");
    let (_, app) = w.get(&format!("{APPS}/bitbucket"), &w.viewer).await;
    assert_eq!(app["allowed"], json!(["192.0.2.0/24"]));
    assert_eq!(app["groups"], json!(["bitbucket-users", "bb-admins"]));
    let (said, _) = ok(&["crowd", "apps", "set", "bitbucket", "--all-groups"]);
    assert!(said.contains("every group"), "{said}");
    assert_eq!(
        w.get(&format!("{APPS}/bitbucket"), &w.viewer).await.1["groups"],
        Value::Null
    );
    ok(&["crowd", "apps", "set", "bitbucket", "--group", "bitbucket-users"]);
    assert_eq!(
        w.get(&format!("{APPS}/bitbucket"), &w.viewer).await.1["groups"],
        json!(["bitbucket-users"])
    );
    assert!(signs_in(&w, "bitbucket", &password), "set keeps the password");

    // What it licenses: set, kept by other changes, shown, and refused when not a licence.
    let (said, _) = ok(&[
        "crowd",
        "apps",
        "set",
        "bitbucket",
        "--licensed-group",
        "bitbucket-users",
        "--seats",
        "25",
    ]);
    assert!(said.contains("licensed groups: bitbucket-users; seats: 25"), "{said}");
    ok(&["crowd", "apps", "set", "bitbucket", "--allow", "192.0.2.0/24"]);
    let (_, app) = w.get(&format!("{APPS}/bitbucket"), &w.viewer).await;
    assert_eq!(
        (&app["licensed_groups"], &app["seats"]),
        (&json!(["bitbucket-users"]), &json!(25))
    );
    let (listed, _) = ok(&["crowd", "apps", "list"]);
    assert!(listed.contains("SEATS") && listed.contains(" 25 "), "{listed}");
    let (success, _, err) = roster(&["crowd", "apps", "set", "bitbucket", "--seats", "-2"]);
    assert!(!success && err.contains("seats: -2 is not a number of seats"), "{err}");
    let (success, _, err) = roster(&["crowd", "apps", "set", "bitbucket", "--seats", "3", "--unlimited"]);
    assert!(!success && err.contains("--unlimited"), "{err}");
    let (said, _) = ok(&[
        "crowd",
        "apps",
        "set",
        "bitbucket",
        "--unlimited",
        "--no-licensed-groups",
    ]);
    assert!(said.contains("licensed groups: none; seats: unlimited"), "{said}");

    let (rotated, note) = ok(&["crowd", "apps", "rotate", "bitbucket"]);
    assert!(note.contains("shown this once"), "{note}");
    assert!(!signs_in(&w, "bitbucket", &password));
    assert!(signs_in(&w, "bitbucket", &rotated));

    ok(&["crowd", "apps", "remove", "bitbucket"]);
    assert!(!signs_in(&w, "bitbucket", &rotated));
    assert_eq!(w.get(APPS, &w.viewer).await.1, json!([]));
    let (success, _, err) = roster(&["crowd", "apps", "remove", "bitbucket"]);
    assert!(
        !success && err.contains("no Crowd application named 'bitbucket'"),
        "{err}"
    );

    // Audited as the command line's user, from `local`.
    for (action, count) in [
        ("crowd-app.create", 1),
        ("crowd-app.update", 6),
        ("crowd-app.rotate", 1),
        ("crowd-app.delete", 1),
    ] {
        let entries = audited(&w, action);
        assert_eq!(entries.len(), count, "{action}: {entries:?}");
        assert!(
            entries.iter().all(|(actor, _, _)| actor.starts_with("cli:")),
            "{entries:?}"
        );
    }
}

/// What each application licenses is given, shown, changed and refused through the API: seats
/// of 0 or more, sane licensed group names, no unknown fields; a change of addresses that
/// leaves the licence out keeps it, so no limit is lifted by accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applications_licence_is_set_shown_and_checked_through_the_api() {
    let w = world().await;
    let (status, made) = w
        .post(
            APPS,
            &w.admin,
            json!({"name": "jira", "allowed": ["10.0.0.5"], "groups": ["jira-users", "bitbucket-users"],
                   "licensed_groups": [" jira-users", "JIRA-USERS", "bitbucket-users", "contractors"], "seats": 10}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["licensed_groups"],
        json!(["jira-users", "bitbucket-users", "contractors"])
    );
    assert_eq!(made["seats"], 10);
    let warnings = made["warnings"].to_string();
    assert!(
        warnings.contains("licensed group 'contractors' is not among the groups the application sees"),
        "{warnings}"
    );
    assert!(warnings.contains("no licensed group 'jira-users'"), "{warnings}");
    let (_, shown) = w.get(&format!("{APPS}/jira"), &w.viewer).await;
    assert_eq!(
        (&shown["seats"], &shown["licensed_groups"][0]),
        (&json!(10), &json!("jira-users"))
    );
    assert_eq!(w.get(APPS, &w.viewer).await.1[0]["seats"], 10);
    let created = audited(&w, "crowd-app.create");
    assert!(
        created[0]
            .2
            .contains("licensed groups: jira-users, bitbucket-users, contractors; seats: 10"),
        "{created:?}"
    );

    // Bad input is a 400 naming the field; an unknown field is refused; nothing changes.
    let one = format!("{APPS}/jira");
    for (body, words, code) in [
        (
            json!({"allowed": ["10.0.0.5"], "seats": -1}),
            "seats: -1 is not a number of seats",
            400,
        ),
        (
            json!({"allowed": ["10.0.0.5"], "licensed_groups": ["  "]}),
            "licensed group name",
            400,
        ),
        (json!({"allowed": ["10.0.0.5"], "seat": 3}), "unknown field `seat`", 422),
        (json!({"allowed": ["10.0.0.5"], "seats": "many"}), "seats", 422),
    ] {
        let (status, e) = w.send_json(Method::PUT, &one, &w.admin, body.clone()).await;
        assert_eq!(status, code, "{body}: {e}");
        assert!(error_of(&e).contains(words), "{body}: {e}");
    }
    let (status, e) = w
        .post(
            APPS,
            &w.admin,
            json!({"name": "bamboo", "allowed": ["10.0.0.5"], "seats": -5}),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(error_of(&e).contains("seats: -5"), "{e}");
    assert_eq!(w.get(&one, &w.viewer).await.1["seats"], 10, "refused: unchanged");
    assert_eq!(
        w.get(APPS, &w.viewer).await.1.as_array().unwrap().len(),
        1,
        "bamboo not made"
    );

    // Left out: kept. Given: replaced. Null: unlimited.
    let (status, kept) = w
        .send_json(Method::PUT, &one, &w.admin, json!({"allowed": ["10.0.0.6"]}))
        .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(
        (&kept["seats"], &kept["licensed_groups"][0]),
        (&json!(10), &json!("jira-users"))
    );
    let (_, raised) = w
        .send_json(
            Method::PUT,
            &one,
            &w.admin,
            json!({"allowed": ["10.0.0.6"], "licensed_groups": ["jira-users"], "seats": 0}),
        )
        .await;
    assert_eq!(
        (&raised["seats"], &raised["licensed_groups"]),
        (&json!(0), &json!(["jira-users"]))
    );
    let (_, unlimited) = w
        .send_json(
            Method::PUT,
            &one,
            &w.admin,
            json!({"allowed": ["10.0.0.6"], "seats": null}),
        )
        .await;
    assert_eq!(
        (&unlimited["seats"], &unlimited["licensed_groups"]),
        (&Value::Null, &json!(["jira-users"]))
    );

    // The OpenAPI document describes the fields.
    let (_, doc) = w.get("/api/v1/openapi.json", &w.viewer).await;
    let schemas = &doc["components"]["schemas"];
    for schema in ["CrowdAppInput", "CrowdAppSettings", "CrowdAppView"] {
        let props = &schemas[schema]["properties"];
        assert!(
            props["licensed_groups"].is_object() && props["seats"].is_object(),
            "{schema}: {props}"
        );
    }
    assert!(
        schemas["LicenceView"]["properties"]["seat_limit"].is_object(),
        "{}",
        schemas["LicenceView"]
    );
}

/// Each application that reads the served directory is a licence of its own: a run that would
/// put one more person in Jira's licensed group than Jira's seats allow is refused naming Jira,
/// with the seat arithmetic, and changes nothing served — not even the change log; Bitbucket,
/// unlimited, counts the newcomer without objecting. Once Jira's seats are raised through the
/// API, the next run applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_one_applications_licence_is_refused_until_its_seats_are_raised() {
    use roster_sim::graph::GraphUser;
    let d = Directory::generate(12, 2, 1);
    let w = ApiWorld::start_without_target(EntraWorld::new(tenant(&d), bitbucket()).await).await;
    let (status, target) = w
        .send_json(
            Method::PUT,
            "/api/v1/targets/crowd",
            &w.admin,
            json!({"id": "crowd", "kind": "crowd-directory", "default_groups": ["jira-users", "bitbucket-users"]}),
        )
        .await;
    assert_eq!(status, 201, "{target}");
    let n = d.active_usernames().len();
    for (app, licensed, seats) in [
        ("jira", "jira-users", json!(n)),
        ("bitbucket", "bitbucket-users", Value::Null),
    ] {
        let (status, made) = w
            .post(
                APPS,
                &w.admin,
                json!({"name": app, "allowed": ["127.0.0.1"], "licensed_groups": [licensed], "seats": seats}),
            )
            .await;
        assert_eq!(status, 201, "{made}");
    }
    let first = w.run(json!({})).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    let members_of = |group: &str| -> std::collections::BTreeSet<String> {
        w.world
            .store
            .served_state()
            .unwrap()
            .members
            .into_iter()
            .filter(|(g, _)| g == group)
            .map(|(_, u)| u)
            .collect()
    };
    assert_eq!(members_of("jira-users").len(), n, "Jira's licence is full");

    // One more person joins the IdP: Jira would need n + 1 seats.
    w.world.idp.lock().add_user(GraphUser {
        user_principal_name: "newcomer@contoso.example".into(),
        mail: Some("newcomer@example.com".into()),
        display_name: "New Comer".into(),
        account_enabled: true,
        ..GraphUser::default()
    });
    let before = w.world.store.served_state().unwrap();
    let token = w.world.store.served_token().unwrap();
    let refused = w.run(json!({})).await;
    assert_eq!(refused["state"], "refused", "{refused}");
    let guard = &refused["summary"]["guard"];
    let why = guard["refused"].as_str().unwrap();
    assert!(
        why.contains(&format!(
            "the plan would license 1 more user(s) in the Crowd application 'jira': {n} in use + 1 = {} > {n} seats",
            n + 1
        )),
        "{why}"
    );
    assert!(why.contains("roster crowd apps set jira --seats N"), "{why}");
    assert!(!why.contains("'bitbucket'"), "Bitbucket is unlimited: {why}");
    let licences: Vec<(String, u64, u64, Value, bool)> = guard["licences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["licensed_before"].as_u64().unwrap(),
                l["licensed_after"].as_u64().unwrap(),
                l["seat_limit"].clone(),
                l["over"].as_bool().unwrap(),
            )
        })
        .collect();
    let n64 = n as u64;
    assert_eq!(
        licences,
        [
            (
                "the Crowd application 'bitbucket'".into(),
                n64,
                n64 + 1,
                Value::Null,
                false
            ),
            ("the Crowd application 'jira'".into(), n64, n64 + 1, json!(n), true),
        ],
        "{guard}"
    );
    assert_eq!(w.world.store.served_state().unwrap(), before, "nothing served changes");
    match w.world.store.served_events_since(&token, 1000).unwrap() {
        roster_store::EventsSince::Events { events, .. } => {
            assert!(events.is_empty(), "no application hears of a change: {events:?}")
        }
        roster_store::EventsSince::Expired => panic!("the token expired"),
    }

    // Jira's licence is raised through the API (its addresses and groups stay): the next run
    // applies.
    let (status, raised) = w
        .send_json(
            Method::PUT,
            &format!("{APPS}/jira"),
            &w.admin,
            json!({"allowed": ["127.0.0.1"], "seats": n + 1}),
        )
        .await;
    assert_eq!(status, 200, "{raised}");
    assert_eq!(raised["licensed_groups"], json!(["jira-users"]));
    let applied = w.run(json!({})).await;
    assert_eq!(applied["state"], "succeeded", "{applied}");
    assert!(members_of("jira-users").contains("newcomer"), "{applied}");
    assert_eq!(members_of("jira-users").len(), n + 1);
    assert_eq!(members_of("bitbucket-users").len(), n + 1);
}
