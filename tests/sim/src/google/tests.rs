//! Tests of the Google simulator, over HTTP with `reqwest` against `GoogleSim::start`.

use serde_json::{Value, json};

use super::*;
use crate::directory::Directory;

const DOMAIN: &str = "acme.example";
const SA: &str = "roster@acme-sync.iam.gserviceaccount.com";
const CLIENT_ID: &str = "104211983320146873245";
const ADMIN: &str = "admin@acme.example";
const KID: &str = "k1";
const TEST_PUBLIC_KEY: &str = include_str!("../graph/fixtures/test-rsa-pub.pem");
const TEST_PRIVATE_KEY: &str = include_str!("../graph/fixtures/test-rsa-key.pem");

struct T {
    sim: GoogleSim,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    json: Value,
}

impl Answer {
    fn reason(&self) -> &str {
        self.json["error"]["errors"][0]["reason"].as_str().unwrap_or("")
    }
    fn ids(&self, field: &str) -> Vec<String> {
        self.json[field]
            .as_array()
            .map(|v| v.iter().map(|o| o["id"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }
}

/// An account of `d` with Roster's service account delegated the read-only scopes and an admin.
fn account(d: &Directory) -> GoogleState {
    let mut s = GoogleState::from_directory(d, DOMAIN);
    s.add_service_account(SA, CLIENT_ID, KID, TEST_PUBLIC_KEY);
    s.delegate(CLIENT_ID, &[USER_SCOPE, GROUP_SCOPE]);
    s.set_admin(ADMIN, true);
    s
}

fn assertion(aud: &str, claims: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({"iss": SA, "sub": ADMIN, "aud": aud, "scope": format!("{USER_SCOPE} {GROUP_SCOPE}"), "iat": now, "exp": now + 600});
    if let (Some(o), Some(extra)) = (c.as_object_mut(), claims.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KID.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_PRIVATE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &c, &key).unwrap()
}

impl T {
    async fn new(state: GoogleState) -> T {
        T {
            sim: GoogleSim::start(state).await,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Answer {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn token_with(&self, claims: Value) -> Answer {
        let jwt = assertion(&self.sim.token_url(), claims);
        let body = format!("grant_type={}&assertion={jwt}", JWT_BEARER.replace(':', "%3A"));
        self.send(
            self.http
                .post(self.sim.token_url())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    async fn token(&self) -> String {
        let a = self.token_with(json!({})).await;
        assert_eq!(a.status, 200, "{}", a.json);
        a.json["access_token"].as_str().unwrap().to_string()
    }

    async fn get(&self, token: &str, path_and_query: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}{API_PATH}{path_and_query}", self.sim.url()))
                .bearer_auth(token),
        )
        .await
    }
}

#[tokio::test]
async fn the_token_endpoint_takes_a_delegated_assertion_and_refuses_as_google_does() {
    let t = T::new(account(&Directory::generate(3, 1, 1))).await;
    let ok = t.token_with(json!({})).await;
    assert_eq!((ok.status, ok.json["token_type"].as_str()), (200, Some("Bearer")));
    assert_eq!(ok.json["expires_in"], 3599);
    for (claims, status, error, words) in [
        (
            json!({"sub": "nobody@acme.example"}),
            400,
            "invalid_grant",
            "Invalid email or User ID",
        ),
        (
            json!({"iss": "other@p.iam.gserviceaccount.com"}),
            401,
            "invalid_client",
            "The OAuth client was not found.",
        ),
        (
            json!({"aud": "https://elsewhere.example/token"}),
            400,
            "invalid_grant",
            "Failed audience check",
        ),
        (json!({"scope": null}), 400, "invalid_scope", "Empty or missing scope"),
        (
            json!({"scope": format!("{USER_SCOPE} https://www.googleapis.com/auth/admin.directory.user")}),
            401,
            "unauthorized_client",
            "not authorized for any of the scopes requested",
        ),
        (
            json!({"exp": chrono::Utc::now().timestamp() + 7200}),
            400,
            "invalid_grant",
            "short-lived token",
        ),
    ] {
        let a = t.token_with(claims.clone()).await;
        assert_eq!(a.status, status, "{claims}: {}", a.json);
        assert_eq!(a.json["error"], error, "{claims}");
        assert!(
            a.json["error_description"].as_str().unwrap().contains(words),
            "{claims}: {}",
            a.json
        );
    }
    // A key that is not the service account's.
    t.sim.lock().service_accounts.get_mut(SA).unwrap().keys = vec![(KID.into(), None)];
    let a = t.token_with(json!({})).await;
    assert_eq!((a.status, a.json["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(a.json["error_description"], "Invalid JWT Signature.");
    // The client-credentials grant is not Google's.
    let a = t
        .send(
            t.http
                .post(t.sim.token_url())
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn listings_page_by_token_up_to_the_documented_maxima() {
    let d = Directory::generate(7, 5, 2);
    let t = T::new(account(&d)).await;
    let token = t.token().await;
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let q = match &next {
            Some(p) => format!("/users?customer=my_customer&maxResults=3&pageToken={p}"),
            None => "/users?customer=my_customer&maxResults=3".to_string(),
        };
        let a = t.get(&token, &q).await;
        assert_eq!(a.status, 200, "{}", a.json);
        assert_eq!(a.json["kind"], "admin#directory#users");
        seen.extend(a.ids("users"));
        match a.json["nextPageToken"].as_str() {
            Some(p) => next = Some(p.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    let a = t.get(&token, "/users?customer=my_customer&maxResults=501").await;
    assert_eq!((a.status, a.reason()), (400, "invalid"));
    let a = t.get(&token, "/groups?customer=my_customer&maxResults=200").await;
    assert_eq!(a.ids("groups").len(), 5);
    assert!(a.json["groups"][0]["directMembersCount"].is_string());
    let a = t.get(&token, "/groups?customer=my_customer&maxResults=201").await;
    assert_eq!(a.status, 400);
    let a = t
        .get(&token, "/users?customer=my_customer&query=email:user000001*")
        .await;
    assert_eq!(a.ids("users"), vec![t.sim.lock().id_of("u-000001")]);
    let a = t.get(&token, "/users?domain=other.example").await;
    assert_eq!((a.status, a.reason()), (400, "badRequest"));
    let a = t
        .get(&token, "/users?customer=my_customer&query=lastName%3ESmith")
        .await;
    assert_eq!((a.status, a.reason()), (400, "invalid"));
}

#[tokio::test]
async fn members_list_nested_groups_as_group_members_or_derived_users() {
    // g0 ⊃ g1 ⊃ g2 ⊃ g3 (the directory's chain), users spread over them.
    let d = Directory::generate(12, 4, 1);
    let t = T::new(account(&d)).await;
    let token = t.token().await;
    let (g0, g1) = {
        let s = t.sim.lock();
        (s.id_of("g-00000"), s.id_of("g-00001"))
    };
    let direct = t.get(&token, &format!("/groups/{g0}/members?maxResults=200")).await;
    let kinds: Vec<(&str, &str)> = direct.json["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["type"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&(g1.as_str(), "GROUP")), "{kinds:?}");
    let derived = t
        .get(&token, &format!("/groups/{g0}/members?includeDerivedMembership=true"))
        .await;
    let users = derived.json["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "USER")
        .count();
    let expected = d.expected_members()["team-00000"].len();
    assert_eq!(users, expected);
    let empty = t.get(&token, "/groups/nosuchgroup/members").await;
    assert_eq!((empty.status, empty.reason()), (404, "notFound"));
}

#[tokio::test]
async fn scopes_admin_roles_and_quotas_are_refused_in_google_s_words() {
    let d = Directory::generate(3, 1, 1);
    let mut s = account(&d);
    s.delegate(CLIENT_ID, &[USER_SCOPE, GROUP_SCOPE, MEMBER_SCOPE]);
    let t = T::new(s).await;
    let narrow = t.token_with(json!({"scope": MEMBER_SCOPE})).await;
    let narrow = narrow.json["access_token"].as_str().unwrap().to_string();
    let a = t.get(&narrow, "/users?customer=my_customer").await;
    assert_eq!((a.status, a.reason()), (403, "insufficientPermissions"));
    let user = {
        let s = t.sim.lock();
        s.user(&s.id_of("u-000000")).unwrap().primary_email.clone()
    };
    let plain = t.token_with(json!({"sub": user})).await;
    let plain = plain.json["access_token"].as_str().unwrap().to_string();
    let a = t.get(&plain, "/users?customer=my_customer").await;
    assert_eq!((a.status, a.reason()), (403, "forbidden"));
    assert_eq!(a.json["error"]["message"], NOT_AUTHORIZED);
    let token = t.token().await;
    t.sim.lock().quota_next(1);
    let a = t.get(&token, "/users?customer=my_customer").await;
    assert_eq!((a.status, a.reason()), (403, "userRateLimitExceeded"));
    assert_eq!(a.json["error"]["errors"][0]["domain"], "usageLimits");
    t.sim.lock().set_quota_answer(QuotaAnswer::TooManyRequests);
    t.sim.lock().quota_next(1);
    let a = t.get(&token, "/users?customer=my_customer").await;
    assert_eq!((a.status, a.reason()), (429, "rateLimitExceeded"));
    assert_eq!(t.sim.lock().throttled, 2);
    let a = t.get(&token, "/users?customer=my_customer").await;
    assert_eq!(a.status, 200);
    let a = t.get("ya29.forged", "/users?customer=my_customer").await;
    assert_eq!((a.status, a.reason()), (401, "authError"));
}

#[tokio::test]
async fn a_malformed_users_page_lacks_primary_email_once() {
    let d = Directory::generate(3, 1, 1);
    let t = T::new(account(&d)).await;
    let token = t.token().await;
    t.sim.lock().malform_next_users_page();
    let a = t.get(&token, "/users?customer=my_customer").await;
    assert!(a.json["users"][0].get("primaryEmail").is_none());
    let a = t.get(&token, "/users?customer=my_customer").await;
    assert!(a.json["users"][0].get("primaryEmail").is_some());
}
