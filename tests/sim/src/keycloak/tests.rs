//! Tests of the Keycloak simulator, over HTTP with `reqwest` against `KeycloakSim::start`.

use serde_json::{Value, json};

use super::*;
use crate::directory::Directory;

const CLIENT: &str = "roster";
const SECRET: &str = "kc-secret-0123456789";

struct T {
    sim: KeycloakSim,
    http: reqwest::Client,
    token: String,
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A realm `acme`: users alice, bob (disabled), carol; groups /eng ⊃ /eng/backend ⊃
/// /eng/backend/db, /sales; alice in /eng, bob and carol in /eng/backend.
fn realm() -> KeycloakState {
    let mut s = KeycloakState::new("acme");
    s.add_client(CLIENT, SECRET, &[Role::ViewUsers, Role::QueryGroups]);
    let mut ids = vec![];
    for (name, enabled) in [("carol", true), ("alice", true), ("bob", false)] {
        let mut u = KcUser::new(name, &format!("{name}@acme.test"), name, "Doe");
        u.enabled = enabled;
        u.attributes.insert("department".into(), vec!["R&D".into()]);
        ids.push(s.add_user(u));
    }
    let eng = s.add_group("eng", None);
    let backend = s.add_group("backend", Some(&eng));
    s.add_group("db", Some(&backend));
    s.add_group("sales", None);
    s.join(&eng, &ids[1]);
    s.join(&backend, &ids[2]);
    s.join(&backend, &ids[0]);
    s
}

impl T {
    async fn new(state: KeycloakState) -> T {
        let sim = KeycloakSim::start(state).await;
        let http = reqwest::Client::new();
        let mut t = T {
            sim,
            http,
            token: String::new(),
        };
        let (status, body) = t
            .token_request(
                "acme",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        t.token = body["access_token"].as_str().unwrap().to_string();
        t
    }

    async fn token_request(&self, realm: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .http
            .post(format!(
                "{}/realms/{realm}/protocol/openid-connect/token",
                self.sim.base_url()
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        json_of(r).await
    }

    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/admin/realms/acme{path_and_query}", self.sim.base_url()))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        json_of(r).await
    }
}

fn names(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| o[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_token_endpoint_answers_client_credentials_and_refuses_as_keycloak_does() {
    let t = T::new(realm()).await;
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
    ];
    let (status, body) = t.token_request("acme", &ok).await;
    assert_eq!(
        (status, body["token_type"].as_str(), body["expires_in"].as_u64()),
        (200, Some("Bearer"), Some(300))
    );
    let (status, body) = t.token_request("acmee", &ok).await;
    assert_eq!((status, body), (404, json!({"error": "Realm does not exist"})));
    let (status, body) = t
        .token_request(
            "acme",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", "nope"),
            ],
        )
        .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"})
        )
    );
    let (status, body) = t
        .token_request(
            "acme",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "other"),
                ("client_secret", SECRET),
            ],
        )
        .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"})
        )
    );
    let (status, body) = t.token_request("acme", &[("grant_type", "password")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    t.sim.state().disable_service_account(CLIENT);
    let (status, body) = t.token_request("acme", &ok).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (401, Some("Client not enabled to retrieve service account"))
    );
}

#[tokio::test]
async fn users_page_by_first_and_max_in_username_order_with_attributes_only_when_not_brief() {
    let t = T::new(realm()).await;
    let (status, all) = t.get("/users?first=0&max=10&briefRepresentation=false").await;
    assert_eq!(status, 200);
    assert_eq!(names(&all, "username"), vec!["alice", "bob", "carol"]);
    assert_eq!(all[0]["attributes"], json!({"department": ["R&D"]}));
    assert_eq!(all[1]["enabled"], json!(false));
    let (_, page) = t.get("/users?first=1&max=1&briefRepresentation=true").await;
    assert_eq!(names(&page, "username"), vec!["bob"]);
    assert!(page[0].get("attributes").is_none());
    let (_, short) = t.get("/users?first=2&max=5").await;
    assert_eq!(names(&short, "username"), vec!["carol"], "a short page is the last");
    assert_eq!(t.get("/users/count").await.1, json!(3));
}

#[tokio::test]
async fn keycloak_23_counts_sub_groups_and_pages_them_through_children() {
    let t = T::new(realm()).await;
    let (_, top) = t.get("/groups?first=0&max=10").await;
    assert_eq!(names(&top, "path"), vec!["/eng", "/sales"]);
    assert_eq!(
        (top[0]["subGroupCount"].as_u64(), top[0]["subGroups"].clone()),
        (Some(1), json!([]))
    );
    let eng = top[0]["id"].as_str().unwrap().to_string();
    let (_, kids) = t.get(&format!("/groups/{eng}/children?first=0&max=10")).await;
    assert_eq!(names(&kids, "path"), vec!["/eng/backend"]);
    assert_eq!(kids[0]["parentId"].as_str(), Some(eng.as_str()));
    let backend = kids[0]["id"].as_str().unwrap().to_string();
    let (_, members) = t
        .get(&format!(
            "/groups/{backend}/members?first=0&max=1&briefRepresentation=true"
        ))
        .await;
    assert_eq!(names(&members, "username"), vec!["bob"], "members by username, paged");
    let (_, members) = t.get(&format!("/groups/{backend}/members?first=1&max=1")).await;
    assert_eq!(names(&members, "username"), vec!["carol"]);
    let (status, body) = t.get("/groups/nope/members").await;
    assert_eq!((status, body), (404, json!({"error": "Could not find group by id"})));
}

#[tokio::test]
async fn before_23_sub_groups_come_inline_and_there_is_no_children_endpoint() {
    let mut s = realm();
    s.set_groups_api(GroupsApi::Inline);
    let t = T::new(s).await;
    let (_, top) = t.get("/groups").await;
    assert!(top[0].get("subGroupCount").is_none());
    assert_eq!(
        top[0]["subGroups"][0]["subGroups"][0]["path"].as_str(),
        Some("/eng/backend/db")
    );
    let eng = top[0]["id"].as_str().unwrap().to_string();
    let (status, _) = t.get(&format!("/groups/{eng}/children")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn each_listing_needs_its_realm_management_role() {
    let t = T::new(realm()).await;
    t.sim.state().set_roles(CLIENT, &[Role::QueryGroups]);
    assert_eq!(t.get("/users").await, (403, json!({"error": "HTTP 403 Forbidden"})));
    assert_eq!(t.get("/groups").await.0, 200, "query-groups lists groups");
    t.sim.state().set_roles(CLIENT, &[]);
    assert_eq!(t.get("/groups").await.0, 403);
    t.sim.state().set_roles(CLIENT, &[Role::ViewUsers]);
    assert_eq!(t.get("/groups").await.0, 200, "view-users lists groups too");
    t.sim.state().expire_access_tokens();
    assert_eq!(t.get("/users").await, (401, json!({"error": "HTTP 401 Unauthorized"})));
}

#[tokio::test]
async fn the_auth_prefix_of_keycloak_before_17_is_served() {
    let mut s = realm();
    s.set_auth_prefix();
    let t = T::new(s).await;
    assert!(t.sim.base_url().ends_with("/auth"));
    assert_eq!(t.get("/users/count").await.1, json!(3));
    let r = t
        .http
        .get(format!("{}/admin/realms/acme/users", t.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "nothing outside /auth");
}

#[tokio::test]
async fn rate_limits_and_faults_answer_with_retry_after_and_are_counted() {
    let t = T::new(realm()).await;
    t.sim.state().throttle().limit(0.5, 1);
    assert_eq!(t.get("/users").await.0, 200);
    let r = t
        .http
        .get(format!("{}/admin/realms/acme/users", t.sim.base_url()))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    t.sim.state().throttle().unlimited();
    t.sim.state().fail_next(1, "/groups", 503);
    assert_eq!(t.get("/groups").await.0, 503);
    assert_eq!(t.get("/groups").await.0, 200);
    let s = t.sim.state();
    assert_eq!(s.throttled, 2);
    assert_eq!(s.calls_to("GET /admin/realms/{realm}/users"), 1);
    assert_eq!(s.calls_to("GET /admin/realms/{realm}/groups"), 1);
}

#[tokio::test]
async fn a_directory_becomes_a_tree_of_groups_with_the_same_members() {
    let d = Directory::generate(30, 8, 2);
    let s = KeycloakState::from_directory("acme", &d);
    assert_eq!((s.user_count(), s.group_count()), (30, 8));
    // g-00000 ⊃ g-00001 ⊃ g-00002 ⊃ g-00003: a chain of paths.
    let g3 = s.id_of("g-00003");
    assert_eq!(s.path(&g3), "/team-00000/team-00001/team-00002/team-00003");
    let direct: usize = s.members.values().map(|m| m.len()).sum();
    assert_eq!(direct, d.memberships.iter().filter(|m| !m.member_is_group).count());
}
