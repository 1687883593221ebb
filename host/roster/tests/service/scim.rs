//! The SCIM endpoint (`/scim/v2/{source}`) served on 127.0.0.1 over real HTTP: the filter
//! grammar, paging, projection, sorting and ETags through the endpoint; the request sequences
//! Entra ID (legacy and `aadOptscim062020`) and Okta send, with the source's mirror rows
//! checked after each; the gate (tokens, allow-list behind a trusted proxy, body and rate
//! caps, malformed bodies); and 200 concurrent PATCHes of one group losing nothing.
//!
//! What `scim2-tester` checks is run by `scim2_tester.rs` (ignored; `.ci/run` runs it).

use crate::common;

use std::sync::Arc;

use common::Configured;
use common::world::{World, bitbucket};
use reqwest::Method;
use roster_serve::service::Service;
use roster_sim::directory::Directory;
use serde_json::{Value, json};

/// Push sources: `entra` (defaults), `okta` (4 MiB bodies), `guarded` (allow-list), `slow` (5 requests a
/// minute), `small` (1 KiB bodies); `hr` is pulled by the `file` plugin.
const PUSH_SOURCES: &str = r#"
[api]
trusted_proxies = ["127.0.0.1"]

[[source]]
id = "entra"
priority = 2
[source.push]
protocol = "scim"

[[source]]
id = "okta"
priority = 3
[source.push]
protocol = "scim"
max_body_kib = 4096

[[source]]
id = "guarded"
priority = 4
[source.push]
protocol = "scim"
allow_ips = ["192.0.2.0/24", "198.51.100.9"]

[[source]]
id = "slow"
priority = 5
[source.push]
protocol = "scim"
requests_per_minute = 5

[[source]]
id = "small"
priority = 6
[source.push]
protocol = "scim"
max_body_kib = 1
"#;

pub struct ScimWorld {
    pub world: World,
    pub base: String,
    pub http: reqwest::Client,
    /// A live token per push source.
    pub tokens: std::collections::HashMap<String, String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScimWorld {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An answer: status, headers, body (JSON, or the text as a string; null when empty).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl ScimWorld {
    pub async fn start() -> ScimWorld {
        let d = Directory::generate(4, 2, 1);
        let world = World::new(&d, bitbucket()).await;
        let path = world.rt.dir.path().join("roster.toml");
        std::fs::write(&path, format!("{}\n{PUSH_SOURCES}", world.config_text())).unwrap();
        let service = Service::new(world.store.clone(), world.rt.runtime.clone(), &path, common::kinds()).unwrap();
        let (base, task) = common::api::serve(service.clone()).await;
        let mut tokens = std::collections::HashMap::new();
        for s in ["entra", "okta", "guarded", "slow", "small"] {
            tokens.insert(s.to_string(), world.store.create_scim_token(s, s, "test").unwrap().1);
        }
        ScimWorld {
            world,
            base,
            http: reqwest::Client::new(),
            tokens,
            task,
        }
    }

    /// A request to `/scim/v2/{source}{path}` with the source's token.
    pub fn req(&self, method: Method, source: &str, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}/scim/v2/{source}{path}", self.base));
        match self.tokens.get(source) {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn send(&self, r: reqwest::RequestBuilder) -> Answer {
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer { status, headers, body }
    }

    pub async fn call(&self, method: Method, source: &str, path: &str, body: Option<Value>) -> Answer {
        let mut r = self.req(method, source, path);
        if let Some(b) = body {
            r = r.header("content-type", "application/scim+json").body(b.to_string());
        }
        self.send(r).await
    }

    pub async fn get(&self, source: &str, path: &str) -> Answer {
        self.call(Method::GET, source, path, None).await
    }

    /// Creates a resource; its id.
    pub async fn create(&self, source: &str, endpoint: &str, body: Value) -> String {
        let a = self.call(Method::POST, source, endpoint, Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["id"].as_str().unwrap().to_string()
    }

    pub async fn patch(&self, source: &str, path: &str, ops: Value) -> Answer {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        self.call(Method::PATCH, source, path, Some(body)).await
    }

    /// A PATCH that must succeed (200, or 204 as IdPs accept it); its answer.
    pub async fn patched(&self, source: &str, path: &str, ops: Value) -> Answer {
        let a = self.patch(source, path, ops).await;
        assert!(a.status == 200 || a.status == 204, "{path}: {} {}", a.status, a.body);
        a
    }

    /// The ids a list answers, in order.
    pub async fn ids(&self, source: &str, path: &str) -> Vec<String> {
        let a = self.get(source, path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        a.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn mirror_user(&self, source: &str, id: &str) -> Option<roster_store::MirrorUser> {
        self.world
            .store
            .mirror_users(source)
            .unwrap()
            .into_iter()
            .find(|u| u.ext_id == id)
    }

    fn members(&self, source: &str, group: &str) -> Vec<String> {
        let mut m: Vec<String> = self
            .world
            .store
            .mirror_memberships(source)
            .unwrap()
            .into_iter()
            .filter(|m| m.group_id == group)
            .map(|m| m.member_id)
            .collect();
        m.sort();
        m
    }
}

fn user(name: &str, extra: Value) -> Value {
    let mut u = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
    });
    for (k, v) in extra.as_object().unwrap() {
        u[k] = v.clone();
    }
    u
}

fn filter(f: &str) -> String {
    format!("/Users?filter={}", urlencode(f))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Five users to filter, page and sort.
async fn five(w: &ScimWorld) -> Vec<String> {
    let people = [
        ("alice", "Engineering", 3, "A1"),
        ("bob", "Sales", 1, "B2"),
        ("carol", "Engineering", 5, "C3"),
        ("dave", "Marketing", 2, "D4"),
        ("erin", "Sales", 4, "E5"),
    ];
    let mut ids = Vec::new();
    for (name, dept, n, ext) in people {
        let u = user(
            name,
            json!({
                "externalId": ext,
                "title": format!("level {n}"),
                "displayName": format!("{} {n}", name.to_uppercase()),
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": dept, "employeeNumber": n.to_string()},
                "active": name != "dave",
            }),
        );
        ids.push(w.create("entra", "/Users", u).await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_operator_precedence_and_an_invalid_filter_through_the_endpoint() {
    let w = ScimWorld::start().await;
    let ids = five(&w).await;
    let [alice, bob, carol, dave, erin] = [0, 1, 2, 3, 4].map(|i| ids[i].clone());
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let by_id = format!(r#"id eq "{carol}""#);
    let cases: Vec<(&str, Vec<&String>)> = vec![
        (r#"userName eq "ALICE""#, vec![&alice]),
        (r#"externalId eq "B2""#, vec![&bob]),
        (r#"externalId eq "b2""#, vec![]),
        (r#"userName ne "alice""#, vec![&bob, &carol, &dave, &erin]),
        (r#"userName co "ar""#, vec![&carol]),
        (r#"userName sw "e""#, vec![&erin]),
        (r#"userName ew "ve""#, vec![&dave]),
        (r#"title gt "level 3""#, vec![&carol, &erin]),
        (r#"title ge "level 3""#, vec![&alice, &carol, &erin]),
        (r#"title lt "level 2""#, vec![&bob]),
        (r#"title le "level 2""#, vec![&bob, &dave]),
        ("externalId pr", vec![&alice, &bob, &carol, &dave, &erin]),
        ("nickName pr", vec![]),
        ("active eq false", vec![&dave]),
        (r#"emails[type eq "work" and value co "carol"]"#, vec![&carol]),
        (r#"emails.value sw "bob@""#, vec![&bob]),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales""#,
            vec![&bob, &erin],
        ),
        // and binds tighter than or.
        (
            r#"userName eq "alice" or userName eq "bob" and active eq false"#,
            vec![&alice],
        ),
        (
            r#"(userName eq "alice" or userName eq "dave") and active eq false"#,
            vec![&dave],
        ),
        (r#"not (userName eq "alice") and title lt "level 3""#, vec![&bob, &dave]),
        (r#"USERNAME Eq "erin""#, vec![&erin]),
        (&by_id, vec![&carol]),
    ];
    for (f, want) in cases {
        let got = sorted(w.ids("entra", &filter(f)).await);
        let want = sorted(want.into_iter().cloned().collect());
        assert_eq!(got, want, "filter {f}");
    }
    for bad in [
        r#"userName eq"#,
        r#"userName zz "x""#,
        r#"(userName eq "a""#,
        r#"userName eq "a" and"#,
    ] {
        let a = w.get("entra", &filter(bad)).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
        assert_eq!(a.body["status"], "400");
        assert_eq!(a.body["scimType"], "invalidFilter", "{bad}");
        assert!(!a.body["detail"].as_str().unwrap().is_empty());
        assert_eq!(a.header("content-type"), Some("application/scim+json"));
    }
    // The same through POST /.search, and the root search across Users and Groups.
    let a = w
        .call(
            Method::POST,
            "entra",
            "/Users/.search",
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"c\"", "attributes": ["userName"]})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["totalResults"], 1);
    assert_eq!(a.body["Resources"][0]["userName"], "carol");
    assert!(a.body["Resources"][0].get("emails").is_none());
    w.create("entra", "/Groups", json!({"displayName": "carolers"})).await;
    let a = w
        .call(
            Method::POST,
            "entra",
            "/.search",
            Some(json!({"filter": "userName sw \"c\" or displayName sw \"c\""})),
        )
        .await;
    assert_eq!(a.body["totalResults"], 2, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_projection_and_sorting() {
    let w = ScimWorld::start().await;
    five(&w).await;
    let names = |a: &Answer| -> Vec<String> {
        a.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect()
    };
    let a = w.get("entra", "/Users?sortBy=userName&startIndex=2&count=2").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["totalResults"], 5);
    assert_eq!(a.body["startIndex"], 2);
    assert_eq!(a.body["itemsPerPage"], 2);
    assert_eq!(names(&a), ["bob", "carol"]);
    // The RFC's clamps: startIndex below 1 is 1, a negative count is 0.
    let a = w.get("entra", "/Users?sortBy=userName&startIndex=-4&count=1").await;
    assert_eq!(
        (a.body["startIndex"].clone(), names(&a)),
        (json!(1), vec!["alice".to_string()])
    );
    let a = w.get("entra", "/Users?count=-1").await;
    assert_eq!(a.body["totalResults"], 5);
    assert_eq!(a.body["itemsPerPage"], 0);
    let a = w.get("entra", "/Users?startIndex=9").await;
    assert_eq!(
        (a.body["totalResults"].clone(), a.body["itemsPerPage"].clone()),
        (json!(5), json!(0))
    );
    let a = w.get("entra", "/Users?count=many").await;
    assert_eq!(a.status, 400);
    // Sorting: descending, by a sub-attribute, by an extension attribute.
    let a = w.get("entra", "/Users?sortBy=userName&sortOrder=descending").await;
    assert_eq!(names(&a), ["erin", "dave", "carol", "bob", "alice"]);
    let a = w.get("entra", "/Users?sortBy=title").await;
    assert_eq!(names(&a), ["bob", "dave", "alice", "erin", "carol"]);
    let a = w
        .get(
            "entra",
            "/Users?sortBy=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber&sortOrder=DESCENDING",
        )
        .await;
    assert_eq!(names(&a), ["carol", "erin", "alice", "dave", "bob"]);
    // attributes: only those (id and schemas always); excludedAttributes: all but those.
    let a = w
        .get("entra", &format!("{}&attributes=title", filter(r#"userName eq "bob""#)))
        .await;
    let r = &a.body["Resources"][0];
    assert_eq!(r["title"], "level 1");
    assert!(
        r.get("id").is_some() && r.get("emails").is_none() && r.get("active").is_none(),
        "{r}"
    );
    let a = w
        .get(
            "entra",
            &format!("{}&excludedAttributes=emails,title", filter(r#"userName eq "bob""#)),
        )
        .await;
    let r = &a.body["Resources"][0];
    assert!(r.get("emails").is_none() && r.get("title").is_none(), "{r}");
    assert_eq!(r["userName"], "bob");
    assert_eq!(r["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_version_each_write_and_answer_412_and_304() {
    let w = ScimWorld::start().await;
    let a = w
        .call(Method::POST, "entra", "/Users", Some(user("ivy", json!({}))))
        .await;
    assert_eq!(a.status, 201);
    let id = a.body["id"].as_str().unwrap().to_string();
    let v1 = a.header("etag").unwrap().to_string();
    assert_eq!(a.body["meta"]["version"], v1.as_str());
    assert_eq!(
        a.header("location").unwrap(),
        format!("{}/scim/v2/entra/Users/{id}", w.base)
    );
    assert_eq!(
        a.body["meta"]["location"],
        format!("{}/scim/v2/entra/Users/{id}", w.base)
    );
    let path = format!("/Users/{id}");
    let a = w
        .send(w.req(Method::GET, "entra", &path).header("if-none-match", &v1))
        .await;
    assert_eq!(a.status, 304);
    let a = w
        .send(
            w.req(Method::PUT, "entra", &path)
                .header("if-match", &v1)
                .header("content-type", "application/scim+json")
                .body(user("ivy", json!({"title": "cook"})).to_string()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v2 = a.header("etag").unwrap().to_string();
    assert_ne!(v1, v2);
    // The old version is refused, for PUT, PATCH and DELETE alike.
    let a = w
        .send(
            w.req(Method::PUT, "entra", &path)
                .header("if-match", &v1)
                .header("content-type", "application/scim+json")
                .body(user("ivy", json!({"title": "chef"})).to_string()),
        )
        .await;
    assert_eq!(a.status, 412, "{}", a.body);
    assert_eq!(a.body["status"], "412");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "chef"}]});
    let a = w
        .send(
            w.req(Method::PATCH, "entra", &path)
                .header("if-match", &v1)
                .header("content-type", "application/scim+json")
                .body(patch.to_string()),
        )
        .await;
    assert_eq!(a.status, 412);
    let a = w
        .send(w.req(Method::DELETE, "entra", &path).header("if-match", &v1))
        .await;
    assert_eq!(a.status, 412);
    let a = w
        .send(w.req(Method::GET, "entra", &path).header("if-none-match", &v1))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["title"], "cook");
    let a = w
        .send(w.req(Method::DELETE, "entra", &path).header("if-match", "\"x\""))
        .await;
    assert_eq!(a.status, 412, "an ETag Roster never gave");
    // Any of several ETags will do, when one is the current one.
    let a = w
        .send(
            w.req(Method::DELETE, "entra", &path)
                .header("if-match", format!("{v1}, {v2}")),
        )
        .await;
    assert_eq!(a.status, 204);
    assert_eq!(w.get("entra", &path).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_test_connection_and_its_legacy_patches_reach_the_mirror() {
    let w = ScimWorld::start().await;
    // "Test connection": a random userName, an empty list (with the flag on the base URL).
    let a = w
        .get(
            "entra",
            "/Users?aadOptscim062020&filter=userName+eq+%2265c5e3e4-9b1b-4b1a-8c1f-1f2e3d4c5b6a%22",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["totalResults"], 0);
    assert_eq!(a.body["Resources"], json!([]));
    assert_eq!(
        a.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    // Provisioning a user: look up by userName, then POST.
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-97a6-0036b8d5b5c1",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
        "active": true,
        "displayName": "Test User",
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "employeeNumber": "E1"}
    });
    let id = w.create("entra", "/Users", body).await;
    let u = w.mirror_user("entra", &id).unwrap();
    assert_eq!(u.username, "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com");
    assert_eq!(u.email.as_deref(), Some("Test_User_fd0ea19b@contoso.com"));
    assert!(u.active);
    assert!(
        u.attributes.contains(&("enterprise.department".into(), "Sales".into())),
        "{:?}",
        u.attributes
    );
    let m = w.create("entra", "/Users", user("member2", json!({}))).await;
    // Several attributes, one capitalised Replace each; "False" as a string.
    w.patched(
            "entra",
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Tess User"},
                {"op": "Replace", "path": "name.familyName", "value": "Usr"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Marketing"},
                {"op": "Add", "path": "title", "value": "Manager"},
            ]),
        ).await;
    let u = w.mirror_user("entra", &id).unwrap();
    assert_eq!(u.display_name.as_deref(), Some("Tess User"));
    assert!(
        u.attributes
            .contains(&("enterprise.department".into(), "Marketing".into())),
        "{:?}",
        u.attributes
    );
    assert!(u.attributes.contains(&("name.familyName".into(), "Usr".into())));
    assert!(u.attributes.contains(&("title".into(), "Manager".into())));
    w.patched(
        "entra",
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    assert!(!w.mirror_user("entra", &id).unwrap().active);
    // A group: looked up by displayName without members, created, then members added and
    // removed as value arrays.
    let a = w
        .get(
            "entra",
            "/Groups?excludedAttributes=members&filter=displayName+eq+%22Group1DisplayName%22",
        )
        .await;
    assert_eq!(a.body["totalResults"], 0);
    let g = w
        .create(
            "entra",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1DisplayName", "members": []}),
        )
        .await;
    w.patched(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "Add", "path": "members", "value": [{"value": id}, {"value": m}]}]),
    )
    .await;
    assert_eq!(w.members("entra", &g), {
        let mut v = vec![id.clone(), m.clone()];
        v.sort();
        v
    });
    w.patched(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "Remove", "path": "members", "value": [{"value": id}]}]),
    )
    .await;
    assert_eq!(w.members("entra", &g), vec![m.clone()]);
    let a = w.get("entra", &format!("/Groups/{g}")).await;
    assert_eq!(a.body["members"][0]["value"], m.as_str());
    let a = w.get("entra", &format!("/Groups/{g}?excludedAttributes=members")).await;
    assert!(a.body.get("members").is_none(), "{}", a.body);
    // A member Roster never gave out is refused, naming it.
    let a = w
        .patch(
            "entra",
            &format!("/Groups/{g}"),
            json!([{"op": "Add", "path": "members", "value": [{"value": "nobody-1"}]}]),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["scimType"], "invalidValue");
    assert!(a.body["detail"].as_str().unwrap().contains("nobody-1"), "{}", a.body);
    // A hard delete takes the user's memberships with it.
    assert_eq!(
        w.call(Method::DELETE, "entra", &format!("/Users/{m}"), None)
            .await
            .status,
        204
    );
    assert!(w.members("entra", &g).is_empty());
    assert!(w.mirror_user("entra", &m).is_none());
    assert_eq!(
        w.call(Method::DELETE, "entra", &format!("/Groups/{g}"), None)
            .await
            .status,
        204
    );
    assert!(w.world.store.mirror_groups("entra").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadoptscim062020_patches_reach_the_mirror() {
    let w = ScimWorld::start().await;
    let id = w
        .create(
            "entra",
            "/Users?aadOptscim062020",
            user("kim", json!({"name": {"givenName": "Kim", "familyName": "Lee"}})),
        )
        .await;
    let other = w.create("entra", "/Users", user("lou", json!({}))).await;
    w.patched(
        "entra",
        &format!("/Users/{id}?aadOptscim062020"),
        json!([{"op": "replace", "value": {
            "name.givenName": "Kimberly",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "77",
            "active": false,
        }}]),
    )
    .await;
    let u = w.mirror_user("entra", &id).unwrap();
    assert!(!u.active);
    assert!(
        u.attributes.contains(&("name.givenName".into(), "Kimberly".into())),
        "{:?}",
        u.attributes
    );
    assert!(
        u.attributes
            .contains(&("enterprise.employeeNumber".into(), "77".into()))
    );
    assert!(
        u.attributes.contains(&("name.familyName".into(), "Lee".into())),
        "untouched attributes stay"
    );
    let g = w
        .create(
            "entra",
            "/Groups",
            json!({"displayName": "G2", "members": [{"value": id}, {"value": other}]}),
        )
        .await;
    assert_eq!(w.members("entra", &g).len(), 2);
    w.patched(
        "entra",
        &format!("/Groups/{g}?aadOptscim062020"),
        json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
    )
    .await;
    assert_eq!(w.members("entra", &g), vec![other.clone()]);
    // Removing a member that is not there is accepted (Entra retries).
    w.patched(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
    )
    .await;
    // A rename through a path-less replace.
    let a = w
        .patch(
            "entra",
            &format!("/Groups/{g}"),
            json!([{"op": "replace", "value": {"displayName": "G2 renamed"}}]),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(w.world.store.mirror_groups("entra").unwrap()[0].name, "G2 renamed");
    assert_eq!(w.members("entra", &g), [other], "a rename keeps the members");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_get_then_put_pathless_deactivation_and_group_push() {
    let w = ScimWorld::start().await;
    let lookup = w
        .get(
            "okta",
            &format!("{}&startIndex=1&count=100", filter(r#"userName eq "pat@example.com""#)),
        )
        .await;
    assert_eq!(lookup.body["totalResults"], 0);
    let id = w
        .create(
            "okta",
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "pat@example.com",
                   "name": {"givenName": "Pat", "familyName": "Doe"},
                   "emails": [{"primary": true, "value": "pat@example.com", "type": "work"}],
                   "displayName": "Pat Doe", "locale": "en-US", "externalId": "00u1", "groups": [],
                   "password": "1mz050nq", "active": true}),
        )
        .await;
    // GET, edit, PUT the whole resource back (with its meta and id as Okta sends them).
    let a = w.get("okta", &format!("/Users/{id}")).await;
    assert!(a.body.get("password").is_none(), "never returned: {}", a.body);
    let mut u = a.body.clone();
    u["name"]["familyName"] = json!("Smith");
    u["displayName"] = json!("Pat Smith");
    let a = w.call(Method::PUT, "okta", &format!("/Users/{id}"), Some(u)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["name"]["familyName"], "Smith");
    let m = w.mirror_user("okta", &id).unwrap();
    assert_eq!(m.display_name.as_deref(), Some("Pat Smith"));
    assert!(m.attributes.contains(&("name.familyName".into(), "Smith".into())));
    // Deactivation: a path-less replace.
    w.patched(
        "okta",
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    assert!(!w.mirror_user("okta", &id).unwrap().active);
    assert_eq!(w.get("okta", &format!("/Users/{id}")).await.body["active"], false);
    // Push Groups: create, list paged by 100, add and remove members, replace them all.
    let u2 = w.create("okta", "/Users", user("sam@example.com", json!({}))).await;
    let g = w
        .create(
            "okta",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Staff", "members": []}),
        )
        .await;
    let a = w.get("okta", "/Groups?startIndex=1&count=100").await;
    assert_eq!(a.body["totalResults"], 1);
    w.patched(
        "okta",
        &format!("/Groups/{g}"),
        json!([{"op": "replace", "value": {"id": g, "displayName": "Staff"}},
                   {"op": "add", "path": "members", "value": [{"value": id, "display": "pat@example.com"}]}]),
    )
    .await;
    assert_eq!(w.members("okta", &g), vec![id.clone()]);
    // Okta sends the group's name with every membership change; a rename comes that way too.
    w.patched(
        "okta",
        &format!("/Groups/{g}"),
        json!([{"op": "replace", "value": {"id": g, "displayName": "Staff (all)"}},
                   {"op": "add", "path": "members", "value": [{"value": u2, "display": "sam@example.com"}]}]),
    )
    .await;
    assert_eq!(w.members("okta", &g), {
        let mut v = vec![id.clone(), u2.clone()];
        v.sort();
        v
    });
    assert_eq!(w.world.store.mirror_groups("okta").unwrap()[0].name, "Staff (all)");
    let a = w.get("okta", &format!("/Groups/{g}")).await;
    assert_eq!(a.body["displayName"], "Staff (all)");
    assert_eq!(a.body["members"].as_array().unwrap().len(), 2);
    w.patched(
        "okta",
        &format!("/Groups/{g}"),
        json!([{"op": "replace", "path": "members", "value": [{"value": u2}]}]),
    )
    .await;
    assert_eq!(w.members("okta", &g), vec![u2.clone()]);
    w.patched(
        "okta",
        &format!("/Groups/{g}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{u2}\"]")}]),
    )
    .await;
    assert!(w.members("okta", &g).is_empty());
    // The sources do not see each other's resources.
    assert!(w.get("entra", &format!("/Users/{id}")).await.status == 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_unique_and_bodies_are_checked() {
    let w = ScimWorld::start().await;
    w.create("entra", "/Users", user("Nia", json!({}))).await;
    let a = w
        .call(Method::POST, "entra", "/Users", Some(user("NIA", json!({}))))
        .await;
    assert_eq!(
        (a.status, a.body["scimType"].clone()),
        (409, json!("uniqueness")),
        "{}",
        a.body
    );
    assert_eq!(a.body["status"], "409");
    w.create("okta", "/Users", user("nia", json!({}))).await;
    for (body, what) in [
        ("{\"userName\": ", "EOF"),
        ("[1, 2]", "not a JSON object"),
        ("", "empty"),
        ("{\"userName\": \"x\",}", "trailing comma"),
    ] {
        let a = w
            .send(
                w.req(Method::POST, "entra", "/Users")
                    .header("content-type", "application/scim+json")
                    .body(body),
            )
            .await;
        assert_eq!(a.status, 400, "{what}: {}", a.body);
        assert_eq!(a.body["scimType"], "invalidSyntax", "{what}");
        assert!(a.body["detail"].as_str().unwrap().len() > 20, "{}", a.body);
    }
    let a = w
        .call(Method::POST, "entra", "/Users", Some(json!({"active": true})))
        .await;
    assert_eq!((a.status, a.body["scimType"].clone()), (400, json!("invalidValue")));
    assert!(a.body["detail"].as_str().unwrap().contains("userName"));
    let a = w
        .call(
            Method::POST,
            "entra",
            "/Users",
            Some(user("x", json!({"active": "maybe"}))),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = w
        .send(
            w.req(Method::POST, "entra", "/Users")
                .header("content-type", "text/plain")
                .body(user("y", json!({})).to_string()),
        )
        .await;
    assert_eq!(a.status, 415);
    assert_eq!(a.body["status"], "415");
    // application/json is accepted too.
    let a = w
        .send(
            w.req(Method::POST, "entra", "/Users")
                .header("content-type", "application/json")
                .body(user("z", json!({})).to_string()),
        )
        .await;
    assert_eq!(a.status, 201);
    let a = w
        .patch(
            "entra",
            "/Users/nope",
            json!([{"op": "replace", "path": "title", "value": "x"}]),
        )
        .await;
    assert_eq!((a.status, a.body["status"].clone()), (404, json!("404")));
    let a = w
        .call(Method::PATCH, "entra", "/Users/nope", Some(json!({"Operations": "x"})))
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = w.call(Method::DELETE, "entra", "/Users", None).await;
    assert_eq!((a.status, a.body["status"].clone()), (405, json!("405")), "{}", a.body);
    let a = w.get("entra", "/Widgets").await;
    assert_eq!((a.status, a.body["status"].clone()), (404, json!("404")));
    for doc in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/Schemas",
        "/ResourceTypes/User",
    ] {
        let a = w.get("entra", doc).await;
        assert_eq!(a.status, 200, "{doc}");
        assert_eq!(a.header("content-type"), Some("application/scim+json"));
    }
    let a = w.get("entra", "/ServiceProviderConfig").await;
    assert_eq!(a.body["etag"]["supported"], true);
    assert_eq!(a.body["patch"]["supported"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_allow_lists_and_caps() {
    let w = ScimWorld::start().await;
    let plain = |source: &str, token: Option<&str>| {
        let r = w.http.get(format!("{}/scim/v2/{source}/Users", w.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    };
    let a = w.send(plain("entra", None)).await;
    assert_eq!((a.status, a.body["status"].clone()), (401, json!("401")));
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    let a = w.send(plain("entra", Some("roster_scim_0000"))).await;
    assert_eq!(a.status, 401);
    // Another source's token is refused, and an API token is no SCIM token.
    let a = w.send(plain("entra", Some(&w.tokens["okta"]))).await;
    assert_eq!(a.status, 401, "{}", a.body);
    let (_, api) = w
        .world
        .store
        .create_token("admin", roster_store::Role::Admin, "test")
        .unwrap();
    assert_eq!(w.send(plain("entra", Some(&api))).await.status, 401);
    // Revoked: refused at the next request.
    let (row, t) = w.world.store.create_scim_token("entra", "spare", "test").unwrap();
    assert_eq!(w.send(plain("entra", Some(&t))).await.status, 200);
    w.world.store.revoke_scim_token(Some("entra"), row.id).unwrap();
    assert_eq!(w.send(plain("entra", Some(&t))).await.status, 401);
    // A pulled source and an unknown one are no SCIM endpoints, and say so alike.
    let a = w.send(plain("hr", Some(&w.tokens["entra"]))).await;
    assert_eq!(a.status, 404);
    assert!(!a.body["detail"].as_str().unwrap().contains("pulled"), "{}", a.body);
    let b = w.send(plain("nope", None)).await;
    assert_eq!((b.status, &b.body["detail"]), (404, &a.body["detail"]));
    // The allow-list: the loopback peer is a trusted proxy, so X-Forwarded-For counts, read
    // from the right; without it the peer (127.0.0.1) is not allowed.
    let guarded = |xff: Option<&str>| {
        let r = w.req(Method::GET, "guarded", "/Users");
        match xff {
            Some(x) => r.header("x-forwarded-for", x),
            None => r,
        }
    };
    assert_eq!(w.send(guarded(None)).await.status, 403);
    assert_eq!(w.send(guarded(Some("192.0.2.7"))).await.status, 200);
    assert_eq!(w.send(guarded(Some("198.51.100.9"))).await.status, 200);
    let a = w.send(guarded(Some("198.51.100.10"))).await;
    assert_eq!((a.status, a.body["status"].clone()), (403, json!("403")));
    assert!(
        a.body["detail"].as_str().unwrap().contains("198.51.100.10"),
        "{}",
        a.body
    );
    // A spoofed left-most entry does not get through.
    assert_eq!(w.send(guarded(Some("192.0.2.7, 203.0.113.5"))).await.status, 403);
    // The body cap: 1 KiB on `small`, 1 MiB by default.
    let big = user("big", json!({"title": "x".repeat(2000)}));
    let a = w.call(Method::POST, "small", "/Users", Some(big.clone())).await;
    assert_eq!((a.status, a.body["status"].clone()), (413, json!("413")), "{}", a.body);
    assert!(a.body["detail"].as_str().unwrap().contains("max_body_kib"));
    assert_eq!(w.call(Method::POST, "entra", "/Users", Some(big)).await.status, 201);
    let huge = user("huge", json!({"title": "x".repeat(1100 * 1024)}));
    assert_eq!(w.call(Method::POST, "entra", "/Users", Some(huge)).await.status, 413);
    // A source's own cap counts, above axum's default of 2 MiB too.
    let large = user("large", json!({"title": "x".repeat(3 * 1024 * 1024)}));
    assert_eq!(w.call(Method::POST, "okta", "/Users", Some(large)).await.status, 201);
    // The rate cap: 5 a minute on `slow`, then a 429 with Retry-After.
    for _ in 0..5 {
        assert_eq!(w.get("slow", "/Users").await.status, 200);
    }
    let a = w.get("slow", "/Users").await;
    assert_eq!((a.status, a.body["status"].clone()), (429, json!("429")));
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=13).contains(&retry), "{retry}");
    assert_eq!(
        w.get("entra", "/Users").await.status,
        200,
        "other tokens are not held up"
    );
    // Refusals are in the audit log (written off the request path: waited for).
    let mut log = Vec::new();
    for _ in 0..50 {
        log = w.world.store.audit_log(200).unwrap();
        if log.iter().any(|e| e.action == "auth.forbidden") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        log.iter()
            .any(|e| e.action == "auth.unauthenticated" && e.subject == "GET /scim/v2/entra/Users"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|e| e.action == "auth.forbidden" && e.origin == "198.51.100.10"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_tokens_through_the_api_are_shown_once_and_revocable() {
    let w = ScimWorld::start().await;
    let (_, admin) = w
        .world
        .store
        .create_token("admin", roster_store::Role::Admin, "test")
        .unwrap();
    let (_, viewer) = w
        .world
        .store
        .create_token("viewer", roster_store::Role::Viewer, "test")
        .unwrap();
    let api = |m: Method, p: &str, t: &str| {
        w.http
            .request(m, format!("{}/api/v1{p}", w.base))
            .bearer_auth(t.to_string())
    };
    let a = w
        .send(api(Method::POST, "/sources/entra/scim-tokens", &admin).json(&json!({"name": "entra prod"})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let token = a.body["token"].as_str().unwrap().to_string();
    let id = a.body["id"].as_i64().unwrap();
    assert_eq!(a.body["scim_path"], "/scim/v2/entra");
    let pushed = w
        .send(
            w.http
                .get(format!("{}/scim/v2/entra/Users", w.base))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(pushed.status, 200);
    let a = w.send(api(Method::GET, "/sources/entra/scim-tokens", &admin)).await;
    assert!(
        a.body
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id && t.get("token").is_none()),
        "{}",
        a.body
    );
    assert_eq!(
        w.send(api(Method::GET, "/sources/entra/scim-tokens", &viewer))
            .await
            .status,
        403
    );
    assert_eq!(
        w.send(api(Method::GET, "/sources/hr/scim-tokens", &admin)).await.status,
        409
    );
    assert_eq!(
        w.send(api(Method::GET, "/sources/nope/scim-tokens", &admin))
            .await
            .status,
        404
    );
    let a = w
        .send(api(Method::DELETE, &format!("/sources/okta/scim-tokens/{id}"), &admin))
        .await;
    assert_eq!(a.status, 404, "a token is revoked through its own source");
    let a = w
        .send(api(Method::DELETE, &format!("/sources/entra/scim-tokens/{id}"), &admin))
        .await;
    assert_eq!(a.status, 204);
    let pushed = w
        .send(
            w.http
                .get(format!("{}/scim/v2/entra/Users", w.base))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(pushed.status, 401);
    let log = w.world.store.audit_log(50).unwrap();
    for action in ["scim-token.create", "scim-token.revoke"] {
        assert!(log.iter().any(|e| e.action == action), "{action}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_member_patches_lose_nothing() {
    use futures::StreamExt;
    let w = Arc::new(ScimWorld::start().await);
    let g = w.create("entra", "/Groups", json!({"displayName": "crowd"})).await;
    let mut users = Vec::new();
    for i in 0..200 {
        users.push(w.create("entra", "/Users", user(&format!("u{i:03}"), json!({}))).await);
    }
    let statuses: Vec<u16> = futures::stream::iter(users.clone())
        .map(|u| {
            let (w, g) = (w.clone(), g.clone());
            async move {
                w.patch(
                    "entra",
                    &format!("/Groups/{g}"),
                    json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
                )
                .await
                .status
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 204 || *s == 200), "{statuses:?}");
    users.sort();
    assert_eq!(w.members("entra", &g), users);
    let a = w.get("entra", &format!("/Groups/{g}")).await;
    assert_eq!(a.body["members"].as_array().unwrap().len(), 200);
    // Each PATCH was one version.
    assert_eq!(a.body["meta"]["version"], "W/\"201\"");
    // The same with general PATCHes (a rename and a member each): no lost update either.
    let statuses: Vec<u16> = futures::stream::iter(0..50)
        .map(|i| {
            let (w, g, u) = (w.clone(), g.clone(), users[i].clone());
            async move {
                w.patch(
                    "entra",
                    &format!("/Groups/{g}"),
                    json!([{"op": "replace", "path": "displayName", "value": format!("crowd {i}")},
                           {"op": "remove", "path": format!("members[value eq \"{u}\"]")}]),
                )
                .await
                .status
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 204), "{statuses:?}");
    assert_eq!(w.members("entra", &g), users[50..].to_vec());
    let name = w.world.store.mirror_groups("entra").unwrap()[0].name.clone();
    assert!(name.starts_with("crowd "), "one of the renames won: {name}");
    assert_eq!(
        w.get("entra", &format!("/Groups/{g}")).await.body["meta"]["version"],
        "W/\"251\""
    );
}

/// `roster scim token create|list|revoke` on the database `roster serve` uses: the token is
/// printed once, listed without its value, refused for a pulled source, revoked by id.
#[test]
fn scim_tokens_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("roster.toml");
    std::fs::write(
        &config,
        "[[source]]\nid = \"idp\"\n[source.push]\nprotocol = \"scim\"\n\n[[source]]\nid = \"hr\"\nplugin = \"file\"\n",
    )
    .unwrap();
    let roster = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = roster(&["scim", "token", "create", "idp", "--name", "entra prod"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("roster_scim_"), "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/scim/v2/idp"));
    let out = roster(&["scim", "token", "list", "idp"]);
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains("entra prod") && listed.contains("live"), "{listed}");
    assert!(!listed.contains(&token));
    let out = roster(&["scim", "token", "create", "hr"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pulled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = roster(&["scim", "token", "create", "nope"]);
    assert!(!out.status.success());
    let out = roster(&["scim", "token", "revoke", "idp", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = roster(&["scim", "token", "revoke", "idp", "1"]);
    assert!(!out.status.success(), "revoked once");
    let listed = String::from_utf8(roster(&["scim", "token", "list"]).stdout).unwrap();
    assert!(listed.contains("revoked"), "{listed}");
}

/// Roster listening on `[::]` (dual stack, as in most containers) sees an IPv4 client as
/// `::ffff:a.b.c.d`: the IPv4 entry of `allow_ips` naming it still admits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_listed_ipv4_client_of_a_dual_stack_listener_is_admitted() {
    let d = Directory::generate(1, 1, 1);
    let world = World::new(&d, bitbucket()).await;
    let path = world.rt.dir.path().join("roster.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n[[source]]\nid = \"entra\"\npriority = 2\n[source.push]\nprotocol = \"scim\"\nallow_ips = [\"127.0.0.1\"]\n",
            world.config_text()
        ),
    )
    .unwrap();
    let service = Service::new(world.store.clone(), world.rt.runtime.clone(), &path, common::kinds()).unwrap();
    let token = world.store.create_scim_token("entra", "entra", "test").unwrap().1;
    let (app, _) = roster_serve::api::routes(service);
    let listener = tokio::net::TcpListener::bind("[::]:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/scim/v2/entra/Users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    task.abort();
    let status = r.status().as_u16();
    assert_eq!(status, 200, "{}", r.text().await.unwrap());
}

/// Who may learn what before any token is checked: an anonymous client cannot tell a pulled
/// source, a disabled one and a missing one apart by the answer, and a refused address is not
/// told the source's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_client_cannot_tell_sources_apart() {
    let w = ScimWorld::start().await;
    let anon = |s: &str| w.http.get(format!("{}/scim/v2/{s}/Users", w.base));
    let pulled = w.send(anon("hr")).await;
    let missing = w.send(anon("nosuch")).await;
    assert_eq!(
        (pulled.status, &pulled.body["detail"]),
        (missing.status, &missing.body["detail"]),
        "an anonymous client learns that 'hr' exists and is pulled"
    );
    assert!(!pulled.body.to_string().contains("'hr'"), "{}", pulled.body);
    let refused = w
        .send(
            w.req(Method::GET, "guarded", "/Users")
                .header("x-forwarded-for", "203.0.113.9"),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(!refused.body.to_string().contains("guarded"), "{}", refused.body);
}

/// A group's members are part of the group (RFC 7643 §4.2): deleting a user who is a member
/// changes the group's version, so a client holding the old ETag gets the group again rather
/// than a 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_member_user_changes_the_groups_version() {
    let w = ScimWorld::start().await;
    let u = w.create("entra", "/Users", user("zoe", json!({}))).await;
    let g = w
        .create(
            "entra",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "zoes", "members": [{"value": u}]}),
        )
        .await;
    let a = w.get("entra", &format!("/Groups/{g}")).await;
    let v = a.header("etag").unwrap().to_string();
    let modified = a.body["meta"]["lastModified"].clone();
    assert_eq!(a.body["members"].as_array().unwrap().len(), 1);
    assert_eq!(
        w.call(Method::DELETE, "entra", &format!("/Users/{u}"), None)
            .await
            .status,
        204
    );
    let a = w
        .send(
            w.req(Method::GET, "entra", &format!("/Groups/{g}"))
                .header("if-none-match", &v),
        )
        .await;
    assert_eq!(
        a.status, 200,
        "the group lost its only member but still answers 304 to its old ETag {v}"
    );
    assert_ne!(a.header("etag"), Some(v.as_str()));
    assert!(
        a.body.get("members").is_none_or(|m| m.as_array().unwrap().is_empty()),
        "{}",
        a.body
    );
    assert!(
        a.body["meta"]["lastModified"].as_str() >= modified.as_str(),
        "{}",
        a.body
    );
}

/// A group added as its own member (directly, or through a group it contains) is a 400
/// `invalidValue` naming it, never a 500 nor a loop in the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_added_as_its_own_member_is_an_invalid_value() {
    let w = ScimWorld::start().await;
    let u = w.create("entra", "/Users", user("hank", json!({}))).await;
    let g = w
        .create(
            "entra",
            "/Groups",
            json!({"displayName": "hanks", "members": [{"value": u}]}),
        )
        .await;
    let outer = w
        .create(
            "entra",
            "/Groups",
            json!({"displayName": "outer", "members": [{"value": g}]}),
        )
        .await;
    for member in [&g, &outer] {
        let a = w
            .patch(
                "entra",
                &format!("/Groups/{g}"),
                json!([{"op": "add", "path": "members", "value": [{"value": member}]}]),
            )
            .await;
        assert_eq!(
            (a.status, a.body["scimType"].clone()),
            (400, json!("invalidValue")),
            "{}",
            a.body
        );
        assert!(
            a.body["detail"].as_str().unwrap().contains(member.as_str()),
            "{}",
            a.body
        );
    }
    assert_eq!(w.members("entra", &g), vec![u]);
}
