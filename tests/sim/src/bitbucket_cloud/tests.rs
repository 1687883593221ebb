//! Tests of the Bitbucket Cloud simulator, over HTTP with `reqwest` against `CloudSim::start`.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::kit::{Fault, FaultRule};

const WS: &str = "acme";
const USER: &str = "roster-bot";
const PASSWORD: &str = "app-password";
const DIRECTORY: &str = "dir-1";
const KEY: &str = "scim-key";

struct T {
    sim: CloudSim,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The Cloud error body's message.
    fn message(&self) -> &str {
        assert_eq!(self.json["type"], "error", "not a Cloud error body: {}", self.json);
        self.json["error"]["message"].as_str().unwrap_or("")
    }

    fn account_ids(&self) -> Vec<String> {
        self.json["values"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|m| m["user"]["account_id"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn workspace(administration: Administration) -> CloudState {
    let mut s = CloudState::new(WS, administration);
    s.credentials(USER, PASSWORD);
    s.scim_directory(DIRECTORY, KEY);
    s
}

/// A workspace administered in Bitbucket with `n` members in "developers".
fn with_members(n: usize) -> CloudState {
    let mut s = workspace(Administration::Bitbucket);
    let slug = s.add_group("Developers", Some("write"));
    for i in 0..n {
        let id = s.add_account(
            &format!("dev{i:02}"),
            &format!("Dev {i:02}"),
            &format!("dev{i:02}@acme.test"),
        );
        s.join(&id, &slug);
    }
    s
}

/// `.query(…)` without reqwest's `query` feature.
trait QueryPairs {
    fn query_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl QueryPairs for reqwest::RequestBuilder {
    fn query_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let (client, built) = self.build_split();
        let mut req = built.unwrap();
        req.url_mut()
            .query_pairs_mut()
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        reqwest::RequestBuilder::from_parts(client, req)
    }
}

impl T {
    async fn new(state: CloudState) -> T {
        T {
            sim: CloudSim::start(state).await,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path)).basic_auth(USER, Some(PASSWORD)))
            .await
    }

    async fn get_abs(&self, url: &str) -> Answer {
        self.send(self.http.get(url).basic_auth(USER, Some(PASSWORD))).await
    }

    async fn put_json(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .put(self.url(path))
                .basic_auth(USER, Some(PASSWORD))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(self.http.delete(self.url(path)).basic_auth(USER, Some(PASSWORD)))
            .await
    }

    async fn create_group(&self, name: &str) -> Answer {
        self.send(
            self.http
                .post(self.url(&format!("/1.0/groups/{WS}")))
                .basic_auth(USER, Some(PASSWORD))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("name={}", name.replace(' ', "+"))),
        )
        .await
    }

    async fn scim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method, self.url(&format!("/scim/directory/{DIRECTORY}{path}")))
            .bearer_auth(KEY);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        self.send(req).await
    }

    /// Every member's account id, following `next` from the first page.
    async fn all_members(&self, first: &str) -> (Vec<String>, usize) {
        let mut url = self.url(first);
        let (mut ids, mut pages) = (Vec::new(), 0);
        loop {
            let page = self.get_abs(&url).await;
            assert_eq!(page.status, 200, "{}", page.json);
            pages += 1;
            ids.extend(page.account_ids());
            match page.json["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => return (ids, pages),
            }
            assert!(pages < 100, "paging does not end");
        }
    }
}

#[tokio::test]
async fn members_are_paged_by_absolute_next_links() {
    let t = T::new(with_members(25)).await;
    let first = t.get(&format!("/2.0/workspaces/{WS}/members?pagelen=10")).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json["pagelen"], 10);
    assert_eq!(first.json["page"], 1);
    assert_eq!(first.json["size"], 25);
    let next = first.json["next"].as_str().unwrap();
    assert!(next.starts_with(&t.sim.url()), "next is absolute: {next}");
    assert!(next.contains("pagelen=10") && next.contains("page=2"), "{next}");
    let m = &first.json["values"][0];
    assert_eq!(m["type"], "workspace_membership");
    assert_eq!(m["user"]["type"], "user");
    assert_eq!(m["workspace"]["slug"], WS);
    assert!(
        m["user"].get("email").is_none(),
        "email only when filtered and asked for"
    );

    let (ids, pages) = t.all_members(&format!("/2.0/workspaces/{WS}/members?pagelen=10")).await;
    assert_eq!(pages, 3);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 25);

    let big = t.get(&format!("/2.0/workspaces/{WS}/members?pagelen=500")).await;
    assert_eq!(big.json["pagelen"], 100, "pagelen is held to 100");
    assert!(big.json.get("next").is_none());
    let default = t.get(&format!("/2.0/workspaces/{WS}/members")).await;
    assert_eq!(default.json["values"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn an_injected_empty_page_still_leads_to_every_member() {
    let t = T::new(with_members(12)).await;
    t.sim
        .faults()
        .add(FaultRule::new(Fault::EmptyPage).route(RouteMatch::prefix("/2.0/")));
    let (ids, pages) = t.all_members(&format!("/2.0/workspaces/{WS}/members?pagelen=5")).await;
    assert_eq!(pages, 4, "one empty page more than the three real ones");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 12);
}

#[tokio::test]
async fn the_email_filter_finds_members_and_adds_only_their_emails() {
    let mut s = with_members(3);
    s.add_account("outsider", "Out Sider", "out@acme.test");
    let t = T::new(s).await;
    let q = r#"user.email IN ("dev00@acme.test","DEV02@acme.test","out@acme.test")"#;
    let found = t
        .send(
            t.http
                .get(t.url(&format!("/2.0/workspaces/{WS}/members")))
                .query_pairs(&[("q", q), ("fields", "+values.user.email")])
                .basic_auth(USER, Some(PASSWORD)),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.json);
    let emails: BTreeSet<&str> = found.json["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["user"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        BTreeSet::from(["dev00@acme.test", "dev02@acme.test"]),
        "members only, case-insensitively"
    );

    let without_fields = t
        .send(
            t.http
                .get(t.url(&format!("/2.0/workspaces/{WS}/members")))
                .query_pairs(&[("q", q)])
                .basic_auth(USER, Some(PASSWORD)),
        )
        .await;
    assert_eq!(without_fields.account_ids().len(), 2);
    assert!(without_fields.json["values"][0]["user"].get("email").is_none());

    let unfiltered = t
        .send(
            t.http
                .get(t.url(&format!("/2.0/workspaces/{WS}/members")))
                .query_pairs(&[("fields", "+values.user.email")])
                .basic_auth(USER, Some(PASSWORD)),
        )
        .await;
    assert!(
        unfiltered.json["values"][0]["user"].get("email").is_none(),
        "an unfiltered listing shows no email"
    );

    let list = (0..=MAX_EMAILS)
        .map(|i| format!("\"p{i}@acme.test\""))
        .collect::<Vec<_>>();
    let too_many = t
        .send(
            t.http
                .get(t.url(&format!("/2.0/workspaces/{WS}/members")))
                .query_pairs(&[("q", format!("user.email IN ({})", list.join(",")))])
                .basic_auth(USER, Some(PASSWORD)),
        )
        .await;
    assert_eq!(too_many.status, 400);
    assert!(too_many.message().contains("at most 90"), "{}", too_many.message());

    let ninety = t
        .send(
            t.http
                .get(t.url(&format!("/2.0/workspaces/{WS}/members")))
                .query_pairs(&[("q", format!("user.email IN ({})", list[..MAX_EMAILS].join(",")))])
                .basic_auth(USER, Some(PASSWORD)),
        )
        .await;
    assert_eq!(ninety.status, 200, "90 addresses are allowed");

    let garbled = t
        .get(&format!("/2.0/workspaces/{WS}/members?q=user.name%3D%22x%22"))
        .await;
    assert_eq!(garbled.status, 400);
}

#[tokio::test]
async fn owners_are_listed_by_the_permission_filter_and_members_found_one_by_one() {
    let mut s = with_members(3);
    let owner = s.add_account("boss", "The Boss", "boss@acme.test");
    s.make_owner(&owner);
    let t = T::new(s).await;
    let owners = t
        .get(&format!("/2.0/workspaces/{WS}/permissions?q=permission%3D%22owner%22"))
        .await;
    assert_eq!(owners.status, 200);
    assert_eq!(owners.account_ids(), std::slice::from_ref(&owner));
    assert_eq!(owners.json["values"][0]["permission"], "owner");
    let all = t.get(&format!("/2.0/workspaces/{WS}/permissions")).await;
    assert_eq!(all.account_ids().len(), 4);

    let one = t.get(&format!("/2.0/workspaces/{WS}/members/{owner}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["user"]["nickname"], "boss");
    let stranger = t.sim.lock().add_account("x", "X", "x@acme.test");
    let missing = t.get(&format!("/2.0/workspaces/{WS}/members/{stranger}")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.message().contains("not a member"));
    let other_ws = t.get("/2.0/workspaces/other/members").await;
    assert_eq!(other_ws.status, 404);
}

#[tokio::test]
async fn requests_without_the_credentials_get_401() {
    let t = T::new(with_members(1)).await;
    let none = t
        .send(t.http.get(t.url(&format!("/2.0/workspaces/{WS}/members"))))
        .await;
    assert_eq!(none.status, 401);
    assert!(!none.message().is_empty());
    let wrong = t
        .send(
            t.http
                .get(t.url(&format!("/1.0/groups/{WS}")))
                .basic_auth(USER, Some("nope")),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json["type"], "error");
}

#[tokio::test]
async fn groups_are_created_joined_and_left_with_409_and_404_on_repeats() {
    let mut s = workspace(Administration::Bitbucket);
    let ann = s.add_account("ann", "Ann Lee", "ann@acme.test");
    let t = T::new(s).await;

    let created = t.create_group("Release Team").await;
    assert_eq!(created.status, 200, "{}", created.json);
    assert_eq!(created.json["slug"], "release-team");
    assert_eq!(t.create_group("Release Team").await.status, 409);

    let path = format!("/1.0/groups/{WS}/release-team/members/{ann}");
    let added = t.put_json(&path, json!({})).await;
    assert_eq!(added.status, 200);
    assert_eq!(added.json["account_id"], ann.as_str());
    assert_eq!(t.put_json(&path, json!({})).await.status, 409);

    let listed = t.get(&format!("/1.0/groups/{WS}")).await;
    assert_eq!(listed.json[0]["members"][0]["account_id"], ann.as_str());
    let members = t.get(&format!("/1.0/groups/{WS}/release-team/members")).await;
    assert_eq!(members.json.as_array().unwrap().len(), 1);
    assert!(t.sim.lock().members().contains_key("ann@acme.test"));
    assert_eq!(
        t.sim.lock().groups()["Release Team"],
        BTreeSet::from(["ann@acme.test".to_string()])
    );

    assert_eq!(t.delete(&path).await.status, 204);
    let again = t.delete(&path).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.json["type"], "error");
    assert!(t.sim.lock().members().is_empty(), "no group, no membership");

    assert_eq!(t.delete(&format!("/1.0/groups/{WS}/release-team")).await.status, 204);
    assert_eq!(t.delete(&format!("/1.0/groups/{WS}/release-team")).await.status, 404);
    // Created, added, removed, deleted: the repeats and refusals are no writes.
    assert_eq!(t.sim.lock().writes(), 4);
}

#[tokio::test]
async fn invitations_stay_pending_until_accepted() {
    let mut s = workspace(Administration::Bitbucket);
    s.add_group("developers", None);
    let t = T::new(s).await;
    let path = format!("/1.0/users/{WS}/invitations");
    let sent = t
        .put_json(&path, json!({"email": "new@acme.test", "group_slug": "developers"}))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.json);
    assert_eq!(sent.json["email"], "new@acme.test");
    assert_eq!(sent.json["group"]["slug"], "developers");
    let dup = t
        .put_json(&path, json!({"email": "NEW@acme.test", "group_slug": "developers"}))
        .await;
    assert_eq!(dup.status, 409);
    let unknown = t
        .put_json(&path, json!({"email": "new@acme.test", "group_slug": "nope"}))
        .await;
    assert_eq!(unknown.status, 404);

    let pending = t.get(&path).await;
    assert_eq!(pending.json.as_array().unwrap().len(), 1);
    assert!(pending.json[0]["utc_sent_on"].is_string());
    assert_eq!(t.sim.lock().invitations()[0].sent, 1);
    assert!(t.sim.lock().members().is_empty(), "not a member before accepting");

    assert!(t.sim.lock().accept_invitation("new@acme.test"));
    assert!(
        !t.sim.lock().accept_invitation("new@acme.test"),
        "nothing left to accept"
    );
    let members = t.sim.lock().members();
    assert_eq!(
        members["new@acme.test"].groups,
        BTreeSet::from(["developers".to_string()])
    );
    assert!(t.sim.lock().invitations().is_empty());
    let again = t
        .put_json(&path, json!({"email": "new@acme.test", "group_slug": "developers"}))
        .await;
    assert_eq!(again.status, 409, "already a member of that group");
    assert_eq!(t.sim.lock().writes(), 1);
}

#[tokio::test]
async fn invitations_accepted_immediately_make_members_at_once() {
    let mut s = workspace(Administration::Bitbucket);
    s.add_group("developers", None);
    s.auto_accept(AutoAccept::Immediately);
    let existing = s.add_account("old", "Old Hand", "old@acme.test");
    let t = T::new(s).await;
    let path = format!("/1.0/users/{WS}/invitations");
    for email in ["new@acme.test", "old@acme.test"] {
        let sent = t
            .put_json(&path, json!({"email": email, "group_slug": "developers"}))
            .await;
        assert_eq!(sent.status, 200);
    }
    let s = t.sim.lock();
    assert!(s.invitations().is_empty());
    assert_eq!(s.invitations_sent(), 2);
    let members = s.members();
    assert_eq!(members.len(), 2);
    assert_eq!(
        members["old@acme.test"].account_id, existing,
        "the existing account joined"
    );
}

#[tokio::test]
async fn a_workspace_moved_to_admin_hub_refuses_group_writes_and_invitations() {
    let mut s = with_members(2);
    s.set_administration(Administration::AdminHub);
    let t = T::new(s).await;
    let refused = [
        t.create_group("new").await,
        t.get(&format!("/1.0/users/{WS}/invitations")).await,
        t.put_json(
            &format!("/1.0/users/{WS}/invitations"),
            json!({"email": "a@acme.test", "group_slug": "developers"}),
        )
        .await,
        t.delete(&format!("/1.0/groups/{WS}/developers")).await,
    ];
    for r in &refused {
        assert_eq!(r.status, 403);
        assert!(r.message().contains("admin.atlassian.com"), "{}", r.message());
    }
    let groups = t.get(&format!("/1.0/groups/{WS}")).await;
    assert_eq!(groups.status, 200);
    assert_eq!(groups.json[0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(t.sim.lock().writes(), 0);
}

#[tokio::test]
async fn scim_users_and_groups_are_the_workspace_people() {
    let t = T::new(workspace(Administration::AdminHub)).await;
    let created = t
        .scim(
            reqwest::Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ann@acme.test",
                "emails": [{"value": "ann@acme.test", "primary": true}],
                "displayName": "Ann Lee",
                "name": {"givenName": "Ann", "familyName": "Lee"},
                "active": true,
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let user_id = created.json["id"].as_str().unwrap().to_string();
    let dup = t
        .scim(
            reqwest::Method::POST,
            "/Users",
            Some(json!({"userName": "ANN@acme.test"})),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json["status"], "409");
    assert_eq!(dup.json["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");

    let found = t
        .send(
            t.http
                .get(t.url(&format!("/scim/directory/{DIRECTORY}/Users")))
                .query_pairs(&[
                    ("filter", "userName eq \"ann@acme.test\""),
                    ("startIndex", "1"),
                    ("count", "100"),
                ])
                .bearer_auth(KEY),
        )
        .await;
    assert_eq!(found.json["totalResults"], 1);
    assert_eq!(found.json["Resources"][0]["id"], user_id.as_str());
    assert!(t.sim.lock().members().is_empty(), "no group, no membership");

    let group = t
        .scim(
            reqwest::Method::POST,
            "/Groups",
            Some(json!({"displayName": "bitbucket-users"})),
        )
        .await;
    assert_eq!(group.status, 201);
    let group_id = group.json["id"].as_str().unwrap().to_string();
    let patched = t
        .scim(
            reqwest::Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
            })),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.json);
    assert_eq!(patched.json["members"][0]["value"], user_id.as_str());

    let members = t.get(&format!("/2.0/workspaces/{WS}/members")).await;
    assert_eq!(members.account_ids().len(), 1, "an active user in a group is a member");
    let groups = t.get(&format!("/1.0/groups/{WS}")).await;
    assert_eq!(groups.json[0]["members"][0]["display_name"], "Ann Lee");

    let off = t
        .scim(
            reqwest::Method::PATCH,
            &format!("/Users/{user_id}"),
            Some(json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]})),
        )
        .await;
    assert_eq!(off.json["active"], false);
    assert!(t.sim.lock().members().is_empty(), "deactivated: no longer a member");
    assert_eq!(
        t.sim.lock().scim_groups()["bitbucket-users"],
        BTreeSet::from(["ann@acme.test".to_string()]),
        "the directory keeps the membership"
    );
    t.scim(
        reqwest::Method::PATCH,
        &format!("/Users/{user_id}"),
        Some(json!({"Operations": [{"op": "replace", "value": {"active": true, "displayName": "Ann Lee-Smith"}}]})),
    )
    .await;
    assert_eq!(t.sim.lock().members()["ann@acme.test"].display_name, "Ann Lee-Smith");

    let removed = t
        .scim(
            reqwest::Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{user_id}\"]")}]})),
        )
        .await;
    assert_eq!(removed.status, 200);
    assert!(t.sim.lock().members().is_empty());

    assert_eq!(
        t.scim(reqwest::Method::DELETE, &format!("/Users/{user_id}"), None)
            .await
            .status,
        204
    );
    assert!(!t.sim.lock().scim_users()["ann@acme.test"].active, "DELETE deactivates");
    assert_eq!(
        t.scim(reqwest::Method::DELETE, &format!("/Groups/{group_id}"), None)
            .await
            .status,
        204
    );
    assert!(t.sim.lock().scim_groups().is_empty());
    assert_eq!(
        t.sim.lock().writes(),
        8,
        "a user and a group created, four edits, two deletions"
    );
}

#[tokio::test]
async fn only_groups_granting_access_make_members_after_the_move() {
    let mut s = workspace(Administration::AdminHub);
    let users = s.add_group("bitbucket-users", None);
    let admins = s.add_group("site-admins", None);
    s.product_access(&["bitbucket-users"]);
    let ann = s.add_account("ann", "Ann Lee", "ann@acme.test");
    let bob = s.add_account("bob", "Bob Ray", "bob@acme.test");
    s.join(&ann, &users);
    s.join(&bob, &admins);
    assert_eq!(s.members().keys().collect::<Vec<_>>(), ["ann@acme.test"]);
}

#[tokio::test]
async fn scim_refuses_wrong_keys_unknown_directories_and_bitbucket_administered_workspaces() {
    let t = T::new(workspace(Administration::Bitbucket)).await;
    let wrong = t
        .send(
            t.http
                .get(t.url(&format!("/scim/directory/{DIRECTORY}/Users")))
                .bearer_auth("nope"),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json["status"], "401");
    let not_linked = t.scim(reqwest::Method::GET, "/Users", None).await;
    assert_eq!(not_linked.status, 403);
    assert!(
        not_linked.json["detail"]
            .as_str()
            .unwrap()
            .contains("administered in Bitbucket")
    );
    t.sim.lock().set_administration(Administration::AdminHub);
    let other = t
        .send(t.http.get(t.url("/scim/directory/other/Users")).bearer_auth(KEY))
        .await;
    assert_eq!(other.status, 404);
    let bad_filter = t
        .send(
            t.http
                .get(t.url(&format!("/scim/directory/{DIRECTORY}/Users")))
                .query_pairs(&[("filter", "title co \"x\"")])
                .bearer_auth(KEY),
        )
        .await;
    assert_eq!(bad_filter.status, 400);
    assert_eq!(bad_filter.json["scimType"], "invalidFilter");
}

#[tokio::test]
async fn the_rolling_window_refuses_with_429_then_lets_calls_in_again() {
    let mut s = with_members(1);
    s.credentials("other", "pw");
    s.hourly_limit(5, Duration::from_secs(2));
    let t = T::new(s).await;
    let path = format!("/2.0/workspaces/{WS}/members");
    for i in 0..5 {
        let ok = t.get(&path).await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.header("x-ratelimit-limit"), Some("5"));
        // 5 − (i + 1) calls left; under a fifth of 5 means none left.
        let near = (i == 4).then_some("true");
        assert_eq!(ok.header("x-ratelimit-nearlimit"), near, "call {i}");
    }
    let wrong = t.send(t.http.get(t.url(&path)).basic_auth(USER, Some("wrong"))).await;
    assert_eq!(wrong.status, 401, "a call that does not authenticate is not the user's");
    let refused = t.get(&path).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.message(), RATE_LIMITED);
    assert_eq!(refused.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(refused.header("x-ratelimit-resource"), Some("api"));
    assert_eq!(refused.header("x-ratelimit-nearlimit"), Some("true"));
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry}");
    assert_eq!(t.sim.lock().calls_left(USER), Some(0));

    let other = t.send(t.http.get(t.url(&path)).basic_auth("other", Some("pw"))).await;
    assert_eq!(other.status, 200, "each user has a window of its own");
    let scim = t.scim(reqwest::Method::GET, "/Users", None).await;
    assert_eq!(scim.status, 403, "SCIM is not metered (and not linked here)");

    tokio::time::sleep(Duration::from_secs(retry)).await;
    let again = t.get(&path).await;
    assert_eq!(again.status, 200, "the oldest calls left the window");
    let entries = t.sim.log().entries();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.outcome == crate::kit::Outcome::RateLimited)
            .count(),
        1
    );
}

#[tokio::test]
async fn sending_invitations_has_a_limit_of_its_own_inside_the_hourly_pool() {
    let mut s = workspace(Administration::Bitbucket);
    s.add_group("developers", None);
    s.credentials("other", "pw");
    s.hourly_limit(100, Duration::from_secs(60));
    s.invitation_limit(2, Duration::from_secs(2));
    let t = T::new(s).await;
    let path = format!("/1.0/users/{WS}/invitations");
    let invite = |n: u32| json!({"email": format!("new{n}@acme.test"), "group_slug": "developers"});
    for n in 0..2 {
        let sent = t.put_json(&path, invite(n)).await;
        assert_eq!(sent.status, 200, "{}", sent.json);
        assert_eq!(
            sent.header("x-ratelimit-resource"),
            Some(RESOURCE_API),
            "an invitation let through shows the hourly pool's headers"
        );
        assert_eq!(sent.header("x-ratelimit-limit"), Some("100"));
    }
    let refused = t.put_json(&path, invite(2)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.message(), RATE_LIMITED);
    assert_eq!(refused.header("x-ratelimit-resource"), Some(RESOURCE_INVITATIONS));
    assert_eq!(refused.header("x-ratelimit-limit"), Some("2"));
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry}");
    assert_eq!(t.sim.lock().invitations_left(USER), Some(0));

    let listing = t.get(&path).await;
    assert_eq!(listing.status, 200, "listing invitations is not sending them");
    assert_eq!(listing.json.as_array().unwrap().len(), 2);
    let members = t.get(&format!("/2.0/workspaces/{WS}/members")).await;
    assert_eq!(members.status, 200, "the hourly pool is not spent");
    let other = t
        .send(
            t.http
                .put(t.url(&path))
                .basic_auth("other", Some("pw"))
                .header("content-type", "application/json")
                .body(invite(3).to_string()),
        )
        .await;
    assert_eq!(other.status, 200, "each user has a limit of its own");
    // Three sent, one refused, two reads: every authenticated call counts in the hourly pool.
    assert_eq!(t.sim.lock().calls_left(USER), Some(100 - 5));
    assert_eq!(t.sim.lock().invitations_sent(), 3);

    tokio::time::sleep(Duration::from_secs(retry)).await;
    let again = t.put_json(&path, invite(2)).await;
    assert_eq!(again.status, 200, "the oldest invitation left the window");
}

#[tokio::test]
async fn injected_faults_answer_in_each_api_s_own_error_body() {
    let t = T::new(workspace(Administration::AdminHub)).await;
    t.sim
        .faults()
        .add(FaultRule::new(Fault::status(503)).times(crate::kit::Times::Count(2)));
    let bitbucket = t.get(&format!("/1.0/groups/{WS}")).await;
    assert_eq!(bitbucket.status, 503);
    assert!(bitbucket.message().starts_with("Injected fault"));
    let scim = t.scim(reqwest::Method::GET, "/Users", None).await;
    assert_eq!(scim.status, 503);
    assert_eq!(scim.json["status"], "503");
    assert_eq!(
        t.get(&format!("/1.0/groups/{WS}")).await.status,
        200,
        "the rule is spent"
    );
}
