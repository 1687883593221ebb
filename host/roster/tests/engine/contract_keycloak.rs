//! Contract test: the Keycloak simulator and the `keycloak` connector, both held to Keycloak's
//! Admin REST API document (`../shared/specs/keycloak-23.0.0-admin-openapi.json`) by Stoplight
//! Prism's validating proxy (`prism proxy --errors`) placed in front of the simulator. A request
//! or response that breaks the document becomes an error (`sl-violations`), which fails these
//! tests.
//!
//! The document holds the admin paths only; `tests/contract/keycloak_token_endpoint.py` adds the
//! realm's OpenID Connect token endpoint (RFC 6749 client credentials and its errors), which the
//! connector calls first, and changes nothing else. The document declares only 200 for the
//! operations Roster uses, so the admin API's error bodies (401, 403, 404) are checked by the
//! simulator's own tests, not here.
//!
//! Ignored by `cargo test`; run by `.ci/run` after the Okta contract, because it needs Prism
//! (npm) and the document from `../shared/specs/`:
//!   python3 tests/contract/keycloak_token_endpoint.py ../shared/specs/keycloak-23.0.0-admin-openapi.json target/keycloak-admin.json
//!   ROSTER_PRISM=path/to/prism ROSTER_KEYCLOAK_CONTRACT=target/keycloak-admin.json \
//!     cargo test -p roster --test engine -- --ignored contract_keycloak::

use crate::common;

use common::Configured;
use common::prism::Prism;
use common::world::bitbucket;
use roster_sim::directory::Directory;
use roster_sim::keycloak::{GroupsApi, KeycloakSim, KeycloakState, Role};

const REALM: &str = "acme";
const CLIENT: &str = "roster";
const SECRET: &str = "contract-secret";
fn spec() -> std::path::PathBuf {
    std::env::var("ROSTER_KEYCLOAK_CONTRACT")
        .expect("ROSTER_KEYCLOAK_CONTRACT: target/keycloak-admin.json, made by tests/contract/keycloak_token_endpoint.py (see .ci/run)")
        .into()
}

/// Realm `acme` holding `d`, Roster's client, and a client whose service account has no role.
fn realm(d: &Directory) -> KeycloakState {
    let mut s = KeycloakState::from_directory(REALM, d);
    s.add_client(CLIENT, SECRET, &[Role::ViewUsers, Role::QueryGroups]);
    s.add_client("no-roles", SECRET, &[]);
    s
}

/// A token from the realm's endpoint through `base` (Prism or the simulator).
async fn token(http: &reqwest::Client, base: &str, client: &str) -> (u16, String, String) {
    let r = http
        .post(format!("{base}/realms/{REALM}/protocol/openid-connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={client}&client_secret={SECRET}"
        ))
        .send()
        .await;
    // Prism not listening yet: no answer, status 0.
    let Ok(r) = r else {
        return (0, String::new(), String::new());
    };
    let status = r.status().as_u16();
    let violations = common::prism::violations_of(&r);
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        violations,
        body["access_token"].as_str().unwrap_or("").to_string(),
    )
}

/// Prism in front of the simulator; waits until Prism answers a request (it listens before the
/// document is loaded).
async fn prism_in_front(sim: &KeycloakSim, dir: &std::path::Path) -> Prism {
    let prism = Prism::start(&spec(), &sim.url(), dir).await;
    let http = reqwest::Client::new();
    // A token request, which the document (with the token endpoint added) declares: any answer
    // but Prism's own means the document is loaded.
    prism
        .wait_loaded("Keycloak", || async {
            token(&http, &prism.url(), CLIENT).await.0 == 200
        })
        .await;
    prism
}

/// One GET through Prism: its status, Prism's violations, and the body.
async fn through(
    http: &reqwest::Client,
    prism: &Prism,
    token: &str,
    path_and_query: &str,
) -> (u16, String, serde_json::Value) {
    let r = http
        .get(format!("{}/admin/realms/{REALM}{path_and_query}", prism.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let violations = common::prism::violations_of(&r);
    (status, violations, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism and ../shared/specs; .ci/run runs it"]
async fn the_simulators_answers_to_the_connectors_requests_keep_to_the_keycloak_openapi_document() {
    let d = Directory::generate(30, 8, 2);
    let state = realm(&d);
    let (head, member_group) = (state.id_of(&d.groups[0].id), state.id_of(&d.groups[1].id));
    let sim = KeycloakSim::start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let prism = prism_in_front(&sim, dir.path()).await;
    let http = reqwest::Client::new();

    let (status, violations, tok) = token(&http, &prism.url(), CLIENT).await;
    assert_eq!((status, violations.as_str()), (200, ""), "{}", prism.log());
    let ok = [
        "/users?first=0&max=10&briefRepresentation=false".to_string(),
        "/users?first=9&max=11&briefRepresentation=false".to_string(),
        "/users/count".to_string(),
        "/groups?first=0&max=1000&briefRepresentation=true".to_string(),
        "/groups/count".to_string(),
        format!("/groups/{head}/children?first=0&max=1000&briefRepresentation=true"),
        format!("/groups/{member_group}/members?first=0&max=1000&briefRepresentation=true"),
        format!("/groups/{head}"),
    ];
    for path in &ok {
        let (status, violations, _) = through(&http, &prism, &tok, path).await;
        assert_eq!(status, 200, "{path}\n{}", prism.log());
        assert!(violations.is_empty(), "{path}: {violations}");
    }
    // Before Keycloak 23: whole sub-trees inline.
    sim.lock().set_groups_api(GroupsApi::Inline);
    let (status, violations, body) = through(&http, &prism, &tok, &ok[3]).await;
    assert_eq!((status, violations.as_str()), (200, ""));
    assert!(body[0]["subGroups"].as_array().is_some_and(|a| !a.is_empty()), "{body}");

    // The token endpoint's refusals, in the shape RFC 6749 §5.2 gives them.
    let r = http
        .post(format!("{}/realms/{REALM}/protocol/openid-connect/token", prism.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={CLIENT}&client_secret=wrong"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), common::prism::violations_of(&r).as_str()),
        (401, "")
    );
    prism.assert_no_violations("the simulator's answers");

    // 403 is not among the statuses the document declares, though Keycloak answers it to a
    // service account without the role; the simulator's own tests hold its body. Prism flags
    // it, which shows the check above is live.
    let (_, _, weak) = token(&http, &prism.url(), "no-roles").await;
    let (status, violations, _) = through(&http, &prism, &weak, &ok[0]).await;
    assert_eq!(status, 403);
    assert!(!violations.is_empty(), "prism validates answers:\n{}", prism.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism, ../shared/specs and the keycloak plugin; .ci/run runs it"]
async fn the_connector_and_the_simulator_keep_to_the_keycloak_openapi_document() {
    let d = Directory::generate(60, 12, 2);
    let mut w = common::keycloak::KeycloakWorld::new(realm(&d), bitbucket()).await;
    let prism = prism_in_front(&w.idp, w.rt.dir.path()).await;
    w.source.server_url = prism.url();
    w.source.base_url = prism.url();
    (w.source.realm, w.source.client_id, w.source.secret) = (REALM.into(), CLIENT.into(), SECRET.into());
    // Small pages, so every listing pages (with its overlap) through Prism.
    w.source.settings = "group_names = \"name\"\npage_size = 7".into();

    let check = w.check().await;
    assert!(check.ok, "{:?}\n{}", check.error, prism.log());
    prism.assert_no_violations("check");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    {
        let bb = w.bb.lock();
        for (group, members) in d.expected_members() {
            assert_eq!(bb.groups().get(&group), Some(&members), "members of {group}");
        }
    }
    prism.assert_no_violations("full fetch");

    // Keycloak before 23: the same realm read from inline sub-groups, through Prism too.
    w.idp.lock().set_groups_api(GroupsApi::Inline);
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    prism.assert_no_violations("a fetch from inline sub-groups");
}
