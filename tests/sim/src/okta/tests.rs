//! Tests of the Okta simulator, over HTTP with `reqwest` against `OktaSim::start`.

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::search::{self, Kind};
use super::*;
use crate::directory::Directory;

const DOMAIN: &str = "acme.example";
const TOKEN: &str = "00sim-api-token-value";
const CLIENT: &str = "0oasimserviceapp0001";
const KID: &str = "sim-key-1";
const TEST_PUBLIC_KEY: &str = include_str!("../graph/fixtures/test-rsa-pub.pem");
const TEST_PRIVATE_KEY: &str = include_str!("../graph/fixtures/test-rsa-key.pem");

struct T {
    sim: OktaSim,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    json: Value,
    text: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["errorCode"].as_str().unwrap_or("")
    }
    fn causes(&self) -> String {
        self.json["errorCauses"].to_string()
    }
    fn ids(&self) -> Vec<String> {
        self.json
            .as_array()
            .map(|v| v.iter().map(|o| o["id"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The `rel="next"` link, if any.
    fn next(&self) -> Option<String> {
        self.headers.get_all("link").iter().find_map(|v| {
            let v = v.to_str().ok()?;
            v.ends_with("rel=\"next\"")
                .then(|| v.trim_start_matches('<').split('>').next().unwrap_or("").to_string())
        })
    }
}

fn org() -> OktaState {
    let mut s = OktaState::new(DOMAIN);
    s.add_api_token(TOKEN);
    s
}

fn person(login: &str) -> Value {
    json!({"login": format!("{login}@{DOMAIN}"), "email": format!("{login}@{DOMAIN}"), "firstName": login, "lastName": "Tester"})
}

impl T {
    async fn new(state: OktaState) -> T {
        T {
            sim: OktaSim::start(state).await,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            json,
            text,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.sim.url())
        }
    }

    async fn get_as(&self, auth: &str, path: &str) -> Answer {
        self.send(self.http.get(self.url(path)).header("authorization", auth))
            .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.get_as(&format!("SSWS {TOKEN}"), path).await
    }

    async fn get_q(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let url = if q.is_empty() {
            self.url(path)
        } else {
            format!("{}?{q}", self.url(path))
        };
        self.send(self.http.get(url).header("authorization", format!("SSWS {TOKEN}")))
            .await
    }

    /// Every id of a listing, following `Link` next links; and the number of pages.
    async fn all(&self, path: &str, query: &[(&str, &str)]) -> (Vec<String>, usize) {
        let mut page = self.get_q(path, query).await;
        let mut ids = Vec::new();
        let mut pages = 1;
        loop {
            assert_eq!(page.status, 200, "{}", page.text);
            ids.extend(page.ids());
            match page.next() {
                Some(next) => {
                    page = self.get(&next).await;
                    pages += 1;
                }
                None => return (ids, pages),
            }
        }
    }

    async fn token(&self, form: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = self
            .http
            .post(self.url("/oauth2/v1/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }
}

#[tokio::test]
async fn listings_page_by_link_headers_with_opaque_cursors_and_capped_limits() {
    let mut s = org();
    let ids: BTreeSet<String> = (0..250)
        .map(|i| s.add_user(person(&format!("u{i:03}")), Status::Active))
        .collect();
    let t = T::new(s).await;

    let (seen, pages) = t.all("/api/v1/users", &[("limit", "100")]).await;
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250, "no user twice");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), ids);

    let first = t.get_q("/api/v1/users", &[("limit", "100")]).await;
    let next = first.next().unwrap();
    assert!(next.contains("limit=100"), "the next link keeps the query: {next}");
    let after = next.split("after=").nth(1).unwrap();
    assert!(!after.starts_with("00u"), "the cursor is opaque, not an id: {after}");
    let links: Vec<_> = first.headers.get_all("link").iter().collect();
    assert!(links[0].to_str().unwrap().ends_with("rel=\"self\""));

    // Over Okta's maximum (200 for users) is capped, not refused.
    let big = t.get_q("/api/v1/users", &[("limit", "1000")]).await;
    assert_eq!((big.status, big.ids().len()), (200, 200));
    assert!(big.next().is_some());
    let bad = t.get_q("/api/v1/users", &[("limit", "many")]).await;
    assert_eq!((bad.status, bad.code()), (400, "E0000001"), "{}", bad.text);
    let forged = t.get_q("/api/v1/users", &[("after", "00u0000000000000000")]).await;
    assert_eq!(forged.status, 400, "{}", forged.text);
}

#[tokio::test]
async fn a_plain_listing_omits_deprovisioned_users_and_a_search_or_filter_shows_them() {
    let mut s = org();
    let kept = s.add_user(person("kept"), Status::Active);
    let gone = s.add_user(person("gone"), Status::Active);
    let staged = s.add_user(person("staged"), Status::Staged);
    s.set_status(&gone, Status::Deprovisioned);
    let t = T::new(s).await;

    let plain: BTreeSet<String> = t.all("/api/v1/users", &[]).await.0.into_iter().collect();
    assert_eq!(plain, BTreeSet::from([kept.clone(), staged.clone()]));
    let searched: BTreeSet<String> = t
        .all(
            "/api/v1/users",
            &[("search", "lastUpdated gt \"1970-01-01T00:00:00.000Z\"")],
        )
        .await
        .0
        .into_iter()
        .collect();
    assert_eq!(searched, BTreeSet::from([kept, gone.clone(), staged]));
    let filtered = t
        .get_q("/api/v1/users", &[("filter", "status eq \"DEPROVISIONED\"")])
        .await;
    assert_eq!(filtered.ids(), std::slice::from_ref(&gone));
    assert_eq!(filtered.json[0]["status"], "DEPROVISIONED");
    // The single read finds it too.
    assert_eq!(
        t.get(&format!("/api/v1/users/{gone}")).await.json["status"],
        "DEPROVISIONED"
    );
}

#[test]
fn the_search_parser_reads_okta_expressions_and_refuses_what_okta_refuses() {
    let kind = |a: &str| match a {
        "status" | "id" | "profile.department" | "profile.login" => Some(Kind::Text),
        "lastUpdated" => Some(Kind::Date),
        _ => None,
    };
    let ok = [
        "status eq \"ACTIVE\"",
        "(status eq \"ACTIVE\" or status eq \"STAGED\") and lastUpdated gt \"2024-01-01T00:00:00.000Z\"",
        "profile.department sw \"Eng\" and profile.login co \"@acme\"",
        "profile.department pr",
        "lastUpdated ge \"2024-01-01T00:00:00Z\" AND id lt \"00u5\"",
        "profile.login eq \"a \\\"quoted\\\" name\"",
    ];
    for e in ok {
        assert!(search::parse(e, &kind).is_ok(), "{e}: {:?}", search::parse(e, &kind));
    }
    for (bad, says) in [
        ("profile.colour eq \"red\"", "unknown property 'profile.colour'"),
        ("status ne \"ACTIVE\"", "'ne'"),
        ("status eq", "expected a value"),
        ("(status eq \"ACTIVE\"", "parenthesis"),
        ("status eq \"ACTIVE", "not closed"),
        ("lastUpdated gt \"yesterday\"", "not a valid date"),
        ("lastUpdated sw \"2024\"", "is a date"),
        ("status eq \"A\" status eq \"B\"", "after a complete expression"),
        ("not status eq \"A\"", "'not'"),
        ("", "empty"),
    ] {
        let e = search::parse(bad, &kind).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let f = search::parse("profile.department eq \"x\"", &kind).unwrap();
    assert!(search::check_filter(&f, &["status"], &[]).is_err());
    let f = search::parse("lastUpdated gt \"2024-01-01T00:00:00.000Z\"", &kind).unwrap();
    assert!(search::check_filter(&f, &["lastUpdated"], &["lastUpdated"]).is_ok());
    let f = search::parse("status sw \"A\"", &kind).unwrap();
    assert!(search::check_filter(&f, &["status"], &[]).is_err());
}

#[tokio::test]
async fn searches_select_by_profile_status_and_type_and_refusals_name_the_cause() {
    let mut s = org();
    let eng = s.add_user(
        json!({"login": "eve@acme.example", "email": "eve@acme.example", "department": "Engineering", "costCenter": ["a", "b"]}),
        Status::Active,
    );
    let _ops = s.add_user(
        json!({"login": "olaf@acme.example", "email": "olaf@acme.example", "department": "Operations"}),
        Status::Suspended,
    );
    let team = s.add_group("Bitbucket Users", Some("Roster"));
    let _ad = s.add_group_of_type("AD Admins", None, GroupType::AppGroup);
    let t = T::new(s).await;

    let by_dept = t
        .get_q(
            "/api/v1/users",
            &[("search", "profile.department sw \"eng\" and status eq \"ACTIVE\"")],
        )
        .await;
    assert_eq!(by_dept.ids(), std::slice::from_ref(&eng));
    let by_array = t
        .get_q("/api/v1/users", &[("search", "profile.costCenter eq \"b\"")])
        .await;
    assert_eq!(by_array.ids(), [eng]);

    let refused = t
        .get_q("/api/v1/users", &[("search", "profile.colour eq \"red\"")])
        .await;
    assert_eq!((refused.status, refused.code()), (400, "E0000031"), "{}", refused.text);
    assert_eq!(refused.json["errorSummary"], "Invalid search criteria.");
    assert!(refused.causes().contains("profile.colour"), "{}", refused.causes());
    let narrow_filter = t
        .get_q("/api/v1/users", &[("filter", "profile.department eq \"x\"")])
        .await;
    assert_eq!(narrow_filter.code(), "E0000031");

    let okta_groups = t
        .get_q(
            "/api/v1/groups",
            &[("search", "type eq \"OKTA_GROUP\" or type eq \"APP_GROUP\"")],
        )
        .await;
    assert_eq!(okta_groups.ids().len(), 2, "Everyone (BUILT_IN) is left out");
    let by_name = t
        .get_q("/api/v1/groups", &[("search", "profile.name eq \"bitbucket users\"")])
        .await;
    assert_eq!(by_name.ids(), std::slice::from_ref(&team), "names compare without case");
    let everyone = t.get_q("/api/v1/groups", &[("filter", "type eq \"BUILT_IN\"")]).await;
    assert_eq!(everyone.json[0]["profile"]["name"], "Everyone");
}

#[tokio::test]
async fn edits_move_last_updated_and_memberships_move_last_membership_updated_only() {
    let mut s = org();
    let a = s.add_user(person("a"), Status::Active);
    let b = s.add_user(person("b"), Status::Active);
    let g = s.add_group("team", None);
    let quiet = s.add_group("quiet", None);
    let t = T::new(s).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let since = okta_time(&now());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    {
        let mut s = t.sim.lock();
        s.update_user(&a, |p| {
            p.insert("department".into(), "R&D".into());
        });
        s.add_member(&g, &b);
    }
    let search = format!("lastUpdated gt \"{since}\"");
    let changed = t.get_q("/api/v1/users", &[("search", &search)]).await;
    assert_eq!(
        changed.ids(),
        std::slice::from_ref(&a),
        "a membership is not a user edit"
    );
    let groups = t
        .get_q(
            "/api/v1/groups",
            &[(
                "search",
                &format!("lastUpdated gt \"{since}\" or lastMembershipUpdated gt \"{since}\""),
            )],
        )
        .await;
    assert_eq!(groups.ids(), std::slice::from_ref(&g));
    assert!(!groups.ids().contains(&quiet));
    let filtered = t
        .get_q(
            "/api/v1/groups",
            &[("filter", &format!("lastMembershipUpdated gt \"{since}\""))],
        )
        .await;
    assert_eq!(filtered.ids(), std::slice::from_ref(&g));
    let stamp = groups.json[0]["lastMembershipUpdated"].as_str().unwrap();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
        "{stamp}"
    );

    // Deleting needs a deactivated user, and takes the memberships with it.
    assert!(!t.sim.lock().delete_user(&b));
    t.sim.lock().set_status(&b, Status::Deprovisioned);
    assert!(t.sim.lock().delete_user(&b));
    assert!(t.get(&format!("/api/v1/groups/{g}/users")).await.ids().is_empty());
    let gone = t.get(&format!("/api/v1/users/{b}")).await;
    assert_eq!((gone.status, gone.code()), (404, "E0000007"));
    assert_eq!(
        gone.json["errorSummary"],
        format!("Not found: Resource not found: {b} (User)")
    );
}

#[tokio::test]
async fn groups_report_their_member_counts_and_list_members_as_full_users() {
    let d = Directory::generate(12, 8, 2);
    let s = OktaState::from_directory(&d, DOMAIN);
    let head = s.group_id(&d.groups[0].id);
    let u0 = s.user_id(&d.users[0].id);
    let mut s = s;
    s.add_api_token(TOKEN);
    let t = T::new(s).await;

    // Nesting flattened: the head group holds everyone in its chain.
    let expected = &d.expected_members()[&d.groups[0].name];
    let members = t
        .get_q(&format!("/api/v1/groups/{head}/users"), &[("limit", "5000")])
        .await;
    let logins: BTreeSet<String> = members
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            u["profile"]["login"]
                .as_str()
                .unwrap()
                .trim_end_matches("@acme.example")
                .to_string()
        })
        .collect();
    assert_eq!(&logins, expected);
    assert_eq!(
        members.json[0]["_links"]["self"]["href"]
            .as_str()
            .map(|h| h.contains("/api/v1/users/")),
        Some(true)
    );

    let listed = t
        .get_q(
            "/api/v1/groups",
            &[("expand", "stats"), ("search", "type eq \"OKTA_GROUP\"")],
        )
        .await;
    let head_json = listed
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == head.as_str())
        .unwrap();
    assert_eq!(head_json["_embedded"]["stats"]["usersCount"], expected.len());
    assert_eq!(listed.ids().len(), 8);
    let plain = t.get(&format!("/api/v1/groups/{head}")).await;
    assert!(plain.json.get("_embedded").is_none());
    assert_eq!(plain.json["type"], "OKTA_GROUP");
    let user = t.get(&format!("/api/v1/users/{u0}")).await;
    assert_eq!(user.json["profile"]["email"], d.users[0].email.as_str());
    assert!(user.header("etag").is_some());
    let missing = t.get("/api/v1/groups/00gnosuchgroup0000000").await;
    assert_eq!(
        missing.json["errorSummary"],
        "Not found: Resource not found: 00gnosuchgroup0000000 (UserGroup)"
    );
}

#[tokio::test]
async fn apps_list_their_users_as_provisioning_sees_them_and_their_groups() {
    let mut s = org();
    let direct = s.add_user(person("direct"), Status::Active);
    let via = s.add_user(person("via"), Status::Active);
    let left = s.add_user(person("left"), Status::Active);
    let g = s.add_group("bb", None);
    s.add_member(&g, &via);
    s.add_member(&g, &left);
    let app = s.add_app("Bitbucket");
    s.assign_user(&app, &direct);
    s.assign_group(&app, &g);
    s.set_status(&left, Status::Deprovisioned);
    let t = T::new(s).await;

    let users = t
        .get_q(&format!("/api/v1/apps/{app}/users"), &[("expand", "user")])
        .await;
    assert_eq!(users.status, 200, "{}", users.text);
    let by_id: std::collections::BTreeMap<String, &Value> = users
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u))
        .collect();
    assert_eq!(
        by_id.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([direct.clone(), via.clone()])
    );
    assert_eq!(by_id[&direct]["scope"], "USER");
    assert_eq!(by_id[&via]["scope"], "GROUP");
    assert_eq!(
        by_id[&via]["_embedded"]["user"]["profile"]["login"],
        format!("via@{DOMAIN}")
    );
    let bare = t.get(&format!("/api/v1/apps/{app}/users")).await;
    assert!(bare.json[0].get("_embedded").is_none());

    let groups = t.get(&format!("/api/v1/apps/{app}/groups")).await;
    assert_eq!(groups.ids(), [g]);
    assert!(groups.json[0]["priority"].is_number());
    let a = t.get(&format!("/api/v1/apps/{app}")).await;
    assert_eq!(
        (a.json["label"].as_str(), a.json["signOnMode"].as_str()),
        (Some("Bitbucket"), Some("SAML_2_0"))
    );
    let none = t.get("/api/v1/apps/0oanosuchapp000000000").await;
    assert_eq!((none.status, none.code()), (404, "E0000007"));
    assert!(none.json["errorSummary"].as_str().unwrap().ends_with("(AppInstance)"));
}

fn assertion(aud: &str, claims: Value, kid: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({"iss": CLIENT, "sub": CLIENT, "aud": aud, "exp": now + 300, "iat": now, "jti": format!("{}", random_u64())});
    for (k, v) in claims.as_object().unwrap() {
        c[k] = v.clone();
    }
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(kid.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_PRIVATE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&h, &c, &key).unwrap()
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test]
async fn service_apps_get_scoped_tokens_with_private_key_jwt_and_bad_assertions_are_named() {
    let mut s = org();
    s.add_user(person("a"), Status::Active);
    s.add_service_app(CLIENT, TEST_PUBLIC_KEY, KID, &["okta.users.read", "okta.groups.read"]);
    let t = T::new(s).await;
    let aud = t.sim.token_url();
    let grant = |assertion: String, scope: &str| {
        vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("scope".to_string(), scope.to_string()),
            ("client_assertion_type".to_string(), JWT_BEARER.to_string()),
            ("client_assertion".to_string(), assertion),
        ]
    };
    let send = |form: Vec<(String, String)>| {
        let t = &t;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            t.token(&pairs).await
        }
    };

    let ok = send(grant(
        assertion(&aud, json!({}), KID),
        "okta.users.read okta.groups.read",
    ))
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["token_type"], "Bearer");
    assert_eq!(ok.json["expires_in"], 3600);
    assert_eq!(ok.json["scope"], "okta.groups.read okta.users.read");
    let bearer = format!("Bearer {}", ok.json["access_token"].as_str().unwrap());
    assert_eq!(t.get_as(&bearer, "/api/v1/users").await.status, 200);

    // A listing the token has no scope for: 403 with the scope it needs.
    let app = t.get_as(&bearer, "/api/v1/apps/0oanosuchapp000000000/users").await;
    assert_eq!((app.status, app.code()), (403, "E0000006"));
    let challenge = app.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"okta.apps.read\""),
        "{challenge}"
    );

    // Scopes not granted are named.
    let scoped = send(grant(assertion(&aud, json!({}), KID), "okta.users.read okta.apps.read")).await;
    assert_eq!(
        (scoped.status, scoped.json["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    assert_eq!(
        scoped.json["error_description"],
        "The following scopes are not allowed: okta.apps.read"
    );

    for (assertion, says) in [
        (
            assertion("https://elsewhere.example/oauth2/v1/token", json!({}), KID),
            "audience",
        ),
        (assertion(&aud, json!({"exp": 1_000_000}), KID), "expired"),
        (assertion(&aud, json!({"sub": "someone-else"}), KID), "'sub'"),
        (
            assertion(
                &aud,
                json!({"iss": "0oaunknownclient0000", "sub": "0oaunknownclient0000"}),
                KID,
            ),
            "client_id is invalid",
        ),
        (assertion(&aud, json!({}), "another-kid"), "another-kid"),
        (
            format!(
                "{}x",
                assertion(&aud, json!({}), KID).trim_end_matches(|c: char| c != '.')
            ),
            "signature",
        ),
    ] {
        let r = send(grant(assertion, "okta.users.read")).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (401, Some("invalid_client")),
            "{says}: {}",
            r.text
        );
        assert!(
            r.json["error_description"].as_str().unwrap().contains(says),
            "{says}: {}",
            r.text
        );
    }
    // An assertion is good once.
    let once = assertion(&aud, json!({"jti": "replayed"}), KID);
    assert_eq!(send(grant(once.clone(), "okta.users.read")).await.status, 200);
    let again = send(grant(once, "okta.users.read")).await;
    assert!(
        again.json["error_description"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );

    // Expired access tokens answer 401 with an invalid_token challenge.
    t.sim.lock().expire_access_tokens();
    let expired = t.get_as(&bearer, "/api/v1/users").await;
    assert_eq!((expired.status, expired.code()), (401, "E0000011"));
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    // An app that requires DPoP refuses a client that sends none.
    t.sim.lock().require_dpop(CLIENT);
    let dpop = send(grant(assertion(&aud, json!({}), KID), "okta.users.read")).await;
    assert_eq!(
        (dpop.status, dpop.json["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
}

#[tokio::test]
async fn api_tokens_are_checked_and_an_admin_without_the_role_is_refused() {
    let mut s = org();
    s.add_restricted_api_token("users-only", &[Bucket::Users]);
    let t = T::new(s).await;
    let bad = t.get_as("SSWS not-a-token", "/api/v1/users").await;
    assert_eq!((bad.status, bad.code()), (401, "E0000011"));
    assert_eq!(bad.json["errorSummary"], "Invalid token provided");
    assert!(bad.json["errorId"].as_str().unwrap().starts_with("oae"));
    assert_eq!(bad.json["errorLink"], "E0000011");
    assert_eq!(t.get_as("", "/api/v1/users").await.status, 401);
    assert_eq!(t.get_as("SSWS users-only", "/api/v1/users").await.status, 200);
    let groups = t.get_as("SSWS users-only", "/api/v1/groups").await;
    assert_eq!((groups.status, groups.code()), (403, "E0000006"));
    assert_eq!(
        groups.json["errorSummary"],
        "You do not have permission to perform the requested action"
    );
}

#[tokio::test]
async fn every_answer_carries_its_buckets_rate_limit_and_a_spent_bucket_answers_429_without_retry_after() {
    let mut s = org();
    s.set_rate_limit(RateScope::Only(Bucket::Users), 3);
    let g = s.add_group("g", None);
    let t = T::new(s).await;

    let first = t.get("/api/v1/users").await;
    assert_eq!(first.header("x-rate-limit-limit"), Some("3"));
    assert_eq!(first.header("x-rate-limit-remaining"), Some("2"));
    let reset: i64 = first.header("x-rate-limit-reset").unwrap().parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(reset > now && reset <= now + 60 && reset % 60 == 0, "{reset} vs {now}");
    assert!(first.header("date").is_some(), "Date on every answer");
    // Errors carry them too, counted in their bucket.
    let bad = t.get_as("SSWS nope", "/api/v1/users").await;
    assert_eq!(bad.header("x-rate-limit-remaining"), Some("1"));
    t.get("/api/v1/users").await;
    let refused = t.get("/api/v1/users").await;
    assert_eq!((refused.status, refused.code()), (429, "E0000047"), "{}", refused.text);
    assert_eq!(
        refused.json["errorSummary"],
        "API call exceeded rate limit due to too many requests."
    );
    assert_eq!(refused.header("x-rate-limit-remaining"), Some("0"));
    assert!(refused.header("retry-after").is_none());
    // Other buckets have their own counters.
    let groups = t.get(&format!("/api/v1/groups/{g}/users")).await;
    assert_eq!(groups.status, 200);
    assert_eq!(
        groups.header("x-rate-limit-limit"),
        Some(DEFAULT_RATE_LIMIT.to_string().as_str())
    );
    assert_eq!(t.sim.lock().throttled, 1);

    // Injected throttling answers the same way.
    t.sim.lock().throttle_next(1);
    let injected = t.get(&format!("/api/v1/groups/{g}")).await;
    assert_eq!((injected.status, injected.code()), (429, "E0000047"));
    assert!(injected.header("retry-after").is_none());
    assert_eq!(injected.header("x-rate-limit-remaining"), Some("0"));
}

#[tokio::test]
async fn faults_answer_in_oktas_words_and_calls_are_counted_by_route() {
    let mut s = org();
    let g = s.add_group("g", None);
    let t = T::new(s).await;
    t.sim.lock().corrupt_next("/api/v1/groups");
    let cut = t.get("/api/v1/groups").await;
    assert_eq!(cut.status, 200);
    assert!(serde_json::from_str::<Value>(&cut.text).is_err(), "{}", cut.text);
    t.sim.lock().fail_next(1, "/users", 500);
    let failed = t.get(&format!("/api/v1/groups/{g}/users")).await;
    assert_eq!((failed.status, failed.code()), (500, "E0000009"));
    t.get(&format!("/api/v1/groups/{g}/users")).await;
    let s = t.sim.lock();
    assert_eq!(s.calls_to("GET /api/v1/groups/{id}/users"), 2);
    assert_eq!(s.calls_to("GET /api/v1/groups"), 1);
    assert_eq!(s.api_calls(), 3);
    assert!(s.requests.back().unwrap().ends_with("/users"));
}

#[tokio::test]
async fn links_use_the_public_url_when_a_proxy_is_in_front() {
    let mut s = org();
    for i in 0..3 {
        s.add_user(person(&format!("p{i}")), Status::Active);
    }
    s.set_public_url("http://proxy.example:4010/");
    let t = T::new(s).await;
    let page = t.get_q("/api/v1/users", &[("limit", "1")]).await;
    assert!(
        page.next()
            .unwrap()
            .starts_with("http://proxy.example:4010/api/v1/users?"),
        "{:?}",
        page.next()
    );
    assert!(
        page.json[0]["_links"]["self"]["href"]
            .as_str()
            .unwrap()
            .starts_with("http://proxy.example:4010/")
    );
    assert_eq!(t.sim.token_url(), "http://proxy.example:4010/oauth2/v1/token");
}

#[tokio::test]
async fn an_activating_user_shows_its_target_status() {
    let mut s = org();
    let id = s.add_user(person("new"), Status::Staged);
    s.set_status(&id, Status::Activating);
    let t = T::new(s).await;
    let u = t.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(
        (u.json["status"].as_str(), u.json["transitioningToStatus"].as_str()),
        (Some("ACTIVATING"), Some("ACTIVE"))
    );
    assert!(!t.sim.lock().user(&id).unwrap().login().is_empty());
}
