//! Tests of the OneLogin simulator, over HTTP with `reqwest` against `OneLoginSim::start`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::directory::Directory;
use crate::kit::{FaultRule, RouteMatch};

const CLIENT: &str = "8d2a4c6e0f1b3d5a7c9e1f3b5d7a9c1e";
const SECRET: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";

struct T {
    sim: OneLoginSim,
    http: reqwest::Client,
    token: String,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn ids(&self) -> Vec<i64> {
        self.json
            .as_array()
            .map(|a| a.iter().filter_map(|o| o["id"].as_i64()).collect())
            .unwrap_or_default()
    }

    /// The URL of the `Link` header's entry with this `rel`.
    fn link(&self, rel: &str) -> Option<String> {
        self.header("link")?.split(", ").find_map(|part| {
            let (url, params) = part.split_once(';')?;
            params
                .contains(&format!("rel=\"{rel}\""))
                .then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
        })
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

impl T {
    /// `state` with a "Read users" credential, started, with a token.
    async fn new(mut state: OneLoginState) -> T {
        state.add_credential(CLIENT, SECRET, CredentialScope::ReadUsers);
        let sim = OneLoginSim::start(state).await;
        let mut t = T {
            sim,
            http: reqwest::Client::new(),
            token: String::new(),
        };
        t.token = t.token_for(CLIENT, SECRET).await;
        t
    }

    async fn token_request(&self, basic: Option<(&str, &str)>, content_type: &str, body: &str) -> Answer {
        let mut r = self
            .http
            .post(self.sim.token_url())
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some((id, secret)) = basic {
            r = r.basic_auth(id, Some(secret));
        }
        answer(r.send().await.unwrap()).await
    }

    async fn token_for(&self, id: &str, secret: &str) -> String {
        let a = self
            .token_request(
                Some((id, secret)),
                "application/json",
                r#"{"grant_type":"client_credentials"}"#,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json["access_token"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str) -> Answer {
        self.get_as(path, Some(&self.token)).await
    }

    async fn get_as(&self, path: &str, token: Option<&str>) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.sim.url())
        };
        let mut r = self.http.get(url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        answer(r.send().await.unwrap()).await
    }

    /// Every item of a v2 listing, following `After-Cursor`; the pages read.
    async fn all(&self, path: &str) -> (Vec<i64>, usize) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut a = self.get(path).await;
        let (mut ids, mut pages) = (Vec::new(), 0);
        loop {
            assert_eq!(a.status, 200, "{}", a.text);
            ids.extend(a.ids());
            pages += 1;
            let Some(c) = a.header("after-cursor").map(str::to_string) else {
                return (ids, pages);
            };
            a = self.get(&format!("{path}{sep}cursor={c}")).await;
        }
    }
}

fn people(n: usize) -> OneLoginState {
    let mut s = OneLoginState::new();
    for i in 0..n {
        s.add_user(OneLoginUser::new(
            &format!("user{i:03}"),
            &format!("user{i:03}@example.com"),
            "User",
            &format!("{i:03}"),
        ));
    }
    s
}

#[tokio::test]
async fn a_token_needs_basic_credentials_and_a_json_body() {
    let t = T::new(OneLoginState::new()).await;
    let good = t
        .token_request(
            Some((CLIENT, SECRET)),
            "application/json",
            r#"{"grant_type":"client_credentials"}"#,
        )
        .await;
    assert_eq!(good.status, 200);
    assert_eq!(good.json["expires_in"], TOKEN_LIFETIME_SECS);
    assert_eq!(good.json["token_type"], "bearer");
    assert_eq!(good.json["account_id"], 123_456);
    assert!(good.json["refresh_token"].as_str().is_some_and(|r| r.len() == 64));
    assert!(good.json["created_at"].as_str().unwrap().ends_with('Z'));

    let refused =
        json!({"status": {"error": true, "code": 401, "type": "Unauthorized", "message": "Authentication Failure"}});
    for basic in [Some((CLIENT, "wrong")), Some(("someone-else", SECRET)), None] {
        let a = t
            .token_request(basic, "application/json", r#"{"grant_type":"client_credentials"}"#)
            .await;
        assert_eq!((a.status, &a.json), (401, &refused), "{basic:?}");
    }
    // The form body Entra and Okta take is not OneLogin's.
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", "grant_type=client_credentials"),
        ("application/json", "{}"),
        ("application/json", r#"{"grant_type":"password"}"#),
    ] {
        let a = t.token_request(Some((CLIENT, SECRET)), content_type, body).await;
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(a.json["status"]["type"], "bad request", "{body}");
        assert_eq!(a.json["status"]["error"], true);
    }
    assert_eq!(t.sim.state().token_calls, 8);
}

#[tokio::test]
async fn api_reads_need_a_live_token_of_a_credential_that_may_read_users() {
    let t = T::new(people(2)).await;
    assert_eq!(t.get("/api/2/users").await.status, 200);
    let unauthorised = json!({"statusCode": 401, "name": "Unauthorized", "message": "Unauthorized"});
    for token in [None, Some("not-a-token")] {
        let a = t.get_as("/api/2/users", token).await;
        assert_eq!((a.status, &a.json), (401, &unauthorised), "{token:?}");
    }
    // v1 answers in its own envelope.
    let a = t.get_as("/api/1/groups", None).await;
    assert_eq!((a.status, &a.json["status"]["code"]), (401, &json!(401)), "{}", a.text);

    t.sim.state().expire_access_tokens();
    assert_eq!(t.get("/api/2/roles").await.json, unauthorised);
    assert_eq!(t.sim.state().refused_tokens, 4);

    t.sim.state().set_token_lifetime(0);
    let dead = t.token_for(CLIENT, SECRET).await;
    assert_eq!(t.get_as("/api/2/users", Some(&dead)).await.status, 401);

    t.sim
        .state()
        .add_credential("auth-only", "pw", CredentialScope::AuthenticationOnly);
    t.sim.state().set_token_lifetime(TOKEN_LIFETIME_SECS);
    let weak = t.token_for("auth-only", "pw").await;
    let a = t.get_as("/api/2/users?limit=1", Some(&weak)).await;
    assert_eq!(
        (a.status, &a.json),
        (
            403,
            &json!({"statusCode": 403, "name": "Forbidden", "message": "Forbidden"})
        )
    );
    for scope in [
        CredentialScope::ReadAll,
        CredentialScope::ManageUsers,
        CredentialScope::ManageAll,
    ] {
        t.sim.state().add_credential("auth-only", "pw", scope);
        assert_eq!(
            t.get_as("/api/2/users?limit=1", Some(&weak)).await.status,
            200,
            "{scope:?}"
        );
    }
    t.sim.state().remove_credential("auth-only");
    assert_eq!(t.get_as("/api/2/users?limit=1", Some(&weak)).await.status, 401);
}

#[tokio::test]
async fn api_v1_takes_the_documented_bearer_colon_form_and_v2_does_not() {
    let t = T::new(people(2)).await;
    let colon = |path: &str| {
        let url = format!("{}{path}", t.sim.url());
        t.http
            .get(url)
            .header("authorization", format!("bearer:{}", t.token))
            .send()
    };
    assert_eq!(colon("/api/1/groups").await.unwrap().status(), 200);
    assert_eq!(colon("/api/2/users").await.unwrap().status(), 401);
    assert_eq!(t.get("/api/1/groups").await.status, 200, "and the standard form");
}

#[tokio::test]
async fn users_page_by_after_cursor_with_onelogins_headers() {
    let t = T::new(people(7)).await;
    let every: Vec<i64> = t.sim.state().users.keys().copied().collect();
    let first = t.get("/api/2/users?limit=3").await;
    assert_eq!(first.ids(), every[..3]);
    for (h, v) in [
        ("total-count", "7"),
        ("total-pages", "3"),
        ("current-page", "1"),
        ("page-items", "3"),
        ("content-type", "application/json; charset=utf-8"),
    ] {
        assert_eq!(first.header(h), Some(v), "{h}");
    }
    assert_eq!(first.header("before-cursor"), None);
    let after = first.header("after-cursor").unwrap().to_string();
    let next = first.link("next").unwrap();
    assert!(
        next.contains(&format!("cursor={after}")) && next.contains("limit=3") && next.contains("/api/2/users?"),
        "{next}"
    );
    assert_eq!(first.link("prev"), None);

    let second = t.get_as(&next, Some(&t.token)).await;
    assert_eq!(second.ids(), every[3..6]);
    assert_eq!(second.header("current-page"), Some("2"));
    let back = t.get_as(&second.link("prev").unwrap(), Some(&t.token)).await;
    assert_eq!(back.ids(), every[..3]);

    let last = t
        .get(&format!(
            "/api/2/users?limit=3&cursor={}",
            second.header("after-cursor").unwrap()
        ))
        .await;
    assert_eq!(last.ids(), every[6..]);
    assert_eq!(last.header("page-items"), Some("1"));
    assert_eq!(last.header("after-cursor"), None);
    assert_eq!(last.link("next"), None);
    assert!(last.header("before-cursor").is_some());

    // Without `limit`, pages hold 50; a cursor this simulator did not issue is refused.
    assert_eq!(t.get("/api/2/users").await.header("page-items"), Some("7"));
    let bad = t.get("/api/2/users?cursor=forged").await;
    assert_eq!((bad.status, &bad.json["name"]), (400, &json!("BadRequest")));
    let bad = t.get("/api/2/users?limit=many").await;
    assert!(bad.status == 400 && bad.text.contains("many"), "{}", bad.text);
}

#[tokio::test]
async fn limit_is_capped_at_a_thousand() {
    let t = T::new(people(1001)).await;
    let a = t.get("/api/2/users?limit=5000").await;
    assert_eq!(a.ids().len(), 1000);
    assert_eq!(a.header("total-pages"), Some("2"));
    assert!(a.link("next").unwrap().contains("limit=1000"));
    assert_eq!(t.all("/api/2/users?limit=1000").await.1, 2);
}

#[tokio::test]
async fn paging_neither_skips_nor_repeats_users_deleted_or_added_between_pages() {
    let t = T::new(people(6)).await;
    let every: Vec<i64> = t.sim.state().users.keys().copied().collect();
    let first = t.get("/api/2/users?limit=3").await;
    t.sim.state().delete_user(every[1]);
    t.sim.state().delete_user(every[3]);
    let late = t
        .sim
        .state()
        .add_user(OneLoginUser::new("late", "late@example.com", "La", "Te"));
    let rest = t
        .get(&format!(
            "/api/2/users?limit=3&cursor={}",
            first.header("after-cursor").unwrap()
        ))
        .await;
    assert_eq!(rest.ids(), [every[4], every[5], late]);
}

#[tokio::test]
async fn every_change_to_a_user_moves_its_updated_at_and_updated_since_finds_it() {
    let mut s = people(8);
    let role = s.add_role("Engineering");
    let group = s.add_group("Berlin");
    let ids: Vec<i64> = s.users.keys().copied().collect();
    s.assign_role(ids[7], role);
    let t = T::new(s).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let since = iso(now());
    tokio::time::sleep(Duration::from_millis(5)).await;
    {
        let mut s = t.sim.state();
        s.update_user(ids[0], |u| u.title = Some("Engineer".into()));
        s.set_status(ids[1], 3);
        s.assign_role(ids[2], role);
        s.set_user_group(ids[3], Some(group));
        s.unassign_role(ids[7], role);
        // Neither moves anyone: the roles listing shows them.
        s.rename_role(role, "Platform");
        s.assign_role(ids[2], role);
    }
    let (changed, _) = t.all(&format!("/api/2/users?limit=2&updated_since={since}")).await;
    assert_eq!(changed, [ids[0], ids[1], ids[2], ids[3], ids[7]]);
    let a = t.get(&format!("/api/2/users?updated_since={since}")).await;
    assert_eq!(a.header("total-count"), Some("5"));
    // The bound is inclusive, at OneLogin's millisecond precision.
    let at = t.sim.state().user(ids[1]).unwrap().updated_at;
    let (from, _) = t.all(&format!("/api/2/users?updated_since={}", iso(at))).await;
    assert!(from.contains(&ids[1]), "{from:?}");

    let user = t.get(&format!("/api/2/users/{}", ids[3])).await;
    assert_eq!(user.json["group_id"], group);
    assert_eq!(
        user.json["updated_at"].as_str().unwrap().len(),
        "2026-12-03T21:30:00.000Z".len()
    );
    assert_eq!(t.get(&format!("/api/2/users/{}", ids[1])).await.json["status"], 3);

    let bad = t.get("/api/2/users?updated_since=yesterday").await;
    assert!(bad.status == 400 && bad.json["message"].as_str().unwrap().contains("yesterday"));
}

#[tokio::test]
async fn a_deleted_user_vanishes_from_every_listing() {
    let mut s = people(3);
    let role = s.add_role("Admins");
    let ids: Vec<i64> = s.users.keys().copied().collect();
    s.assign_role(ids[1], role);
    // Just after the last change: a user created in the same millisecond as `now()` would
    // otherwise count as updated since.
    let last = s.users.values().map(|u| u.updated_at).max().unwrap();
    let since = iso(last + chrono::Duration::milliseconds(1));
    let t = T::new(s).await;
    t.sim.state().delete_user(ids[1]);
    assert_eq!(t.all("/api/2/users").await.0, [ids[0], ids[2]]);
    assert!(t.all(&format!("/api/2/users?updated_since={since}")).await.0.is_empty());
    assert!(t.get(&format!("/api/2/roles/{role}/users")).await.ids().is_empty());
    let gone = t.get(&format!("/api/2/users/{}/roles", ids[1])).await;
    assert_eq!((gone.status, &gone.json["name"]), (404, &json!("NotFound")));
}

#[tokio::test]
async fn roles_their_users_and_a_users_roles() {
    let d = Directory::generate(30, 8, 2);
    let t = T::new(OneLoginState::from_directory(&d)).await;
    let (roles, _) = t.all("/api/2/roles?limit=3").await;
    assert_eq!(roles.len(), 8);
    let listing = t.get("/api/2/roles").await;
    assert_eq!(listing.json[0], json!({"id": roles[0], "name": "team-00000"}));
    // Roles do not nest: each holds every user the group held, directly or through subgroups.
    let expected = d.expected_members();
    for g in &d.groups {
        let role = t.sim.state().role_id(&g.id);
        let a = t.get(&format!("/api/2/roles/{role}/users?limit=4")).await;
        assert!(a.header("total-count").is_some());
        let mut names = BTreeSet::new();
        let (ids, _) = t.all(&format!("/api/2/roles/{role}/users?limit=4")).await;
        for id in ids {
            names.insert(t.sim.state().user(id).unwrap().username.clone());
        }
        assert_eq!(names, expected[&g.name], "{}", g.name);
    }
    let u = &d.users[0];
    let uid = t.sim.state().user_id(&u.id);
    let role = t.sim.state().role_id(&d.groups[0].id);
    let member = t.get(&format!("/api/2/roles/{role}/users")).await;
    let entry = member.json.as_array().unwrap().iter().find(|m| m["id"] == uid).cloned();
    assert_eq!(
        entry,
        Some(json!({"id": uid, "name": u.display_name, "email": u.email, "username": u.username}))
    );
    let mine = t.get(&format!("/api/2/users/{uid}/roles")).await;
    let held: BTreeSet<i64> = mine
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let want: BTreeSet<i64> = d
        .groups
        .iter()
        .filter(|g| expected[&g.name].contains(&u.username))
        .map(|g| t.sim.state().role_id(&g.id))
        .collect();
    assert_eq!(held, want);

    let unknown = t.get("/api/2/roles/999/users").await;
    assert_eq!(
        (unknown.status, &unknown.json),
        (
            404,
            &json!({"statusCode": 404, "name": "NotFound", "message": "Not Found"})
        )
    );
    assert_eq!(t.get(&format!("/api/2/roles/{role}")).await.json["name"], "team-00000");
}

#[tokio::test]
async fn role_changes_show_in_the_listings() {
    let mut s = people(2);
    let (a, b) = (s.add_role("A"), s.add_role("B"));
    let ids: Vec<i64> = s.users.keys().copied().collect();
    s.assign_role(ids[0], a);
    s.assign_role(ids[0], b);
    let t = T::new(s).await;
    {
        let mut s = t.sim.state();
        s.rename_role(a, "A2");
        s.delete_role(b);
        s.add_role("C");
    }
    let names: Vec<Value> = t
        .get("/api/2/roles")
        .await
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, [json!("A2"), json!("C")]);
    assert_eq!(t.get(&format!("/api/2/users/{}/roles", ids[0])).await.json, json!([a]));
    assert_eq!(t.get(&format!("/api/2/roles/{b}/users")).await.status, 404);
}

#[tokio::test]
async fn groups_come_fifty_a_page_in_the_v1_envelope() {
    let mut s = people(1);
    let groups: Vec<i64> = (0..120).map(|i| s.add_group(&format!("g{i:03}"))).collect();
    // Role and group numbers come from separate counters: they collide.
    assert_eq!(s.add_role("first role"), groups[0]);
    let t = T::new(s).await;
    let mut a = t.get("/api/1/groups").await;
    assert_eq!(
        a.json["status"],
        json!({"error": false, "code": 200, "type": "success", "message": "Success"})
    );
    assert_eq!(
        a.json["data"][0],
        json!({"id": groups[0], "name": "g000", "reference": null})
    );
    assert_eq!(a.json["pagination"]["before_cursor"], Value::Null);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let data = a.json["data"].as_array().unwrap();
        sizes.push(data.len());
        seen.extend(data.iter().map(|g| g["id"].as_i64().unwrap()));
        match a.json["pagination"]["next_link"].as_str() {
            Some(next) => {
                let after = a.json["pagination"]["after_cursor"].as_str().unwrap();
                assert!(next.contains(&format!("after_cursor={after}")), "{next}");
                a = t.get_as(next, Some(&t.token)).await;
            }
            None => break,
        }
    }
    assert_eq!(sizes, [50, 50, 20]);
    assert_eq!(seen, groups);
    assert_eq!(a.json["pagination"]["after_cursor"], Value::Null);
    let back = t
        .get_as(a.json["pagination"]["previous_link"].as_str().unwrap(), Some(&t.token))
        .await;
    assert_eq!(back.json["data"][0]["id"], groups[50]);
    let bad = t.get("/api/1/groups?after_cursor=forged").await;
    assert_eq!((bad.status, &bad.json["status"]["code"]), (400, &json!(400)));
}

#[tokio::test]
async fn deleting_a_group_empties_it_without_moving_its_users() {
    let mut s = people(1);
    let g = s.add_group("Berlin");
    let id = *s.users.keys().next().unwrap();
    s.set_user_group(id, Some(g));
    let before = s.user(id).unwrap().updated_at;
    let t = T::new(s).await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    t.sim.state().delete_group(g);
    let u = t.sim.state().user(id).cloned().unwrap();
    assert_eq!((u.group_id, u.updated_at), (None, before));
    assert!(t.get("/api/1/groups").await.json["data"].as_array().unwrap().is_empty());
    assert_eq!(t.get(&format!("/api/1/groups/{g}")).await.status, 404);
}

#[tokio::test]
async fn the_hourly_limit_counts_api_calls_and_refuses_with_429_without_retry_after() {
    let t = T::new(people(1)).await;
    t.sim.state().set_rate_limit(3);
    for left in ["2", "1", "0"] {
        let a = t.get("/api/2/users").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(a.header("x-ratelimit-remaining"), Some(left));
        let reset: u64 = a.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!((3590..=3600).contains(&reset), "{reset}");
    }
    let refused = t.get("/api/1/groups").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json["status"]["code"], 429);
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(refused.header("retry-after"), None);
    let refused = t.get("/api/2/roles").await;
    assert_eq!(refused.json["name"], "TooManyRequests");
    assert_eq!(t.sim.state().throttled, 2);
    // Tokens and the rate limit report are not API calls.
    let _ = t.token_for(CLIENT, SECRET).await;
    let report = t.get("/auth/rate_limit").await;
    assert_eq!(report.status, 200);
    assert_eq!(report.json["data"]["X-RateLimit-Limit"], 3);
    assert_eq!(report.json["data"]["X-RateLimit-Remaining"], 0);
    assert_eq!(report.json["status"]["type"], "success");
    assert_eq!(t.get_as("/auth/rate_limit", None).await.status, 401);
}

#[tokio::test]
async fn a_spent_window_resets_after_its_length() {
    let t = T::new(people(1)).await;
    t.sim.state().set_rate_limit(1);
    t.sim.state().set_rate_limit_window(Duration::from_secs(1));
    assert_eq!(t.get("/api/2/users").await.status, 200);
    let refused = t.get("/api/2/users").await;
    assert_eq!((refused.status, refused.header("x-ratelimit-reset")), (429, Some("1")));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(t.get("/api/2/users").await.status, 200);
}

#[tokio::test]
async fn throttle_next_refuses_as_a_limit_about_to_reset() {
    let t = T::new(people(1)).await;
    t.sim.state().throttle_next(2);
    for _ in 0..2 {
        let a = t.get("/api/2/users").await;
        assert_eq!((a.status, a.header("x-ratelimit-reset")), (429, Some("1")));
        assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(a.header("retry-after"), None);
    }
    let a = t.get("/api/2/users").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-ratelimit-remaining"), Some("4999"));
    let s = t.sim.state();
    assert_eq!((s.throttled, s.calls_to("GET /api/2/users")), (2, 1));
}

#[tokio::test]
async fn every_answer_is_dated_and_every_api_answer_has_the_rate_limit_headers() {
    let t = T::new(people(1)).await;
    t.sim.state().fail_next(1, "/api/2/roles", 500);
    for path in ["/api/2/users", "/api/2/roles", "/api/2/nothing", "/api/1/groups"] {
        let a = t.get(path).await;
        assert!(a.header("x-ratelimit-remaining").is_some(), "{path}: {}", a.status);
        let date = a.header("date").unwrap();
        assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
    }
    let token = t.token_request(None, "application/json", "{}").await;
    assert!(token.header("date").is_some());
    assert!(token.header("x-ratelimit-remaining").is_none());
}

#[tokio::test]
async fn injected_faults_answer_in_the_shape_of_the_api_they_hit() {
    let t = T::new(people(3)).await;
    {
        let mut s = t.sim.state();
        s.fail_next(1, "/api/2/users", 500);
        s.fail_next(1, "/api/1/groups", 503);
        s.fail_next(1, "/auth/oauth2", 401);
    }
    let a = t.get("/api/2/users").await;
    assert_eq!(
        (a.status, &a.json),
        (
            500,
            &json!({"statusCode": 500, "name": "InternalServerError", "message": "Internal Server Error"})
        )
    );
    let a = t.get("/api/1/groups").await;
    assert_eq!((a.status, &a.json["status"]["code"]), (503, &json!(503)));
    let a = t
        .token_request(
            Some((CLIENT, SECRET)),
            "application/json",
            r#"{"grant_type":"client_credentials"}"#,
        )
        .await;
    assert_eq!(a.json["status"]["message"], "Authentication Failure");

    t.sim.state().corrupt_next("/api/2/users");
    let a = t.get("/api/2/users").await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_str::<Value>(&a.text).is_err(), "{}", a.text);
    assert_eq!(t.get("/api/2/users").await.ids().len(), 3);

    t.sim
        .faults()
        .add(FaultRule::new(Fault::ExpiredToken).route(RouteMatch::prefix("/api/")));
    assert_eq!(t.get("/api/2/roles").await.json["name"], "Unauthorized");
    assert_eq!(t.sim.state().refused_tokens, 1);
}

#[tokio::test]
async fn paging_faults_reach_the_cursor_headers() {
    let t = T::new(people(4)).await;
    t.sim
        .faults()
        .add(FaultRule::new(Fault::EmptyPage).route(RouteMatch::path("/api/2/users")));
    let (ids, pages) = t.all("/api/2/users?limit=2").await;
    assert_eq!((ids.len(), pages), (4, 3));
}

#[tokio::test]
async fn overrides_give_answers_with_wrong_types() {
    let t = T::new(people(2)).await;
    let id = *t.sim.state().users.keys().next().unwrap();
    t.sim.state().update_user(id, |u| {
        u.overrides.insert("status".into(), json!("active"));
        u.custom_attributes.insert("cost_center".into(), json!("42"));
    });
    let a = t.get("/api/2/users").await;
    assert_eq!(a.json[0]["status"], "active");
    assert_eq!(a.json[0]["custom_attributes"], json!({"cost_center": "42"}));
    assert_eq!(a.json[1]["status"], 1);
}

#[tokio::test]
async fn calls_are_counted_by_route() {
    let mut s = people(1);
    let role = s.add_role("R");
    let t = T::new(s).await;
    let uid = *t.sim.state().users.keys().next().unwrap();
    t.get("/api/2/users").await;
    t.get(&format!("/api/2/users/{uid}/roles")).await;
    t.get(&format!("/api/2/roles/{role}/users")).await;
    t.get(&format!("/api/2/roles/{role}/users")).await;
    t.get("/api/1/groups").await;
    let s = t.sim.state();
    let calls: BTreeMap<&str, u64> = s.calls.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        calls,
        BTreeMap::from([
            ("GET /api/1/groups", 1),
            ("GET /api/2/roles/{id}/users", 2),
            ("GET /api/2/users", 1),
            ("GET /api/2/users/{id}/roles", 1),
            ("POST /auth/oauth2/v2/token", 1),
        ])
    );
    assert_eq!((s.api_calls(), s.token_calls), (5, 1));
}

#[test]
fn from_directory_keeps_inactive_users_suspended_and_gives_stable_numbers() {
    let mut d = Directory::generate(5, 2, 1);
    d.users[2].active = false;
    let a = OneLoginState::from_directory(&d);
    let b = OneLoginState::from_directory(&d);
    for u in &d.users {
        assert_eq!(a.user_id(&u.id), b.user_id(&u.id));
        let o = a.user(a.user_id(&u.id)).unwrap();
        assert_eq!(
            (o.username.as_str(), o.email.as_str()),
            (u.username.as_str(), u.email.as_str())
        );
        assert_eq!(o.status, if u.active { 1 } else { 2 });
        assert_eq!(format!("{} {}", o.firstname, o.lastname), u.display_name);
    }
    assert_eq!(a.role(a.role_id("g-00001")).unwrap().name, "team-00001");
}
