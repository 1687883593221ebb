//! Tests of the Graph simulator, over HTTP with `reqwest` against `GraphSim::start`.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::odata::{Filter, Kind, Lit, parse_filter};
use super::*;

const TENANT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const DOMAIN: &str = "contoso.example";
const APP: &str = "3fa2b1c4-0000-4000-8000-00000000a001";
const SECRET: &str = "app-secret-value";
const READER: &[&str] = &["User.Read.All", "GroupMember.Read.All", "Application.Read.All"];
const THUMBPRINT: &str = "E32CDD3040D06194F9DB3F904A78046BFA71FAEC";

/// A second, unregistered key (throwaway, for the wrong-key case).
const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDDqoUdUBS9lYTM\ndnxZsb/AQfz7lW34JMlnXjxPI1t46jNUByxpOObGhkfYEzB2bWWGtinI2Pfge8j/\nRFDOJrfKu8ZX8r16eTJmvjg24KpHW4Z8I/dJULpHDQtcIMhBnayZnhxtrkXhH2ct\n9djS1H6y+c8aAxJuYMg8ukxFP0rDWWC7rkF6wK9av9Ob8T7uiBjbHcDoWk+V7svw\njz52GSrIA+NGZSmhjN2qbQcyWYiu24hHXTgPp4fBljEjQ7rWF3ENr3tVU0UWejlJ\nGuvzV9DiE1Svte7c0Ss4cm9GD4qFoPbu8zTpyijG1xi3rVIO+cGvpOjPoxiluDKO\nD8XFwYtPAgMBAAECggEABv/sKCrLuyaErC3W7/yAYBfcPYHQf86NF/ISlUAuDwrN\n0EU7bP44n0SBgHTbSHlMZv/QSdudLn4vKBahD2bqL0n9Y/sOlTmNuIg4iZoK7WeU\nTY+Z0pkdONp6HA8eKt7BpHM4ECJqZI3TipzfZ1druupd4s/WUnWK5EVD4jxL5+YU\nG/2RxoMOy5ml+cpJSi8r6MIxbggowtJdo+uNSYotB8c2ghuhTnq7RDTZvUvUadks\nghO2JmtQSaZl0m+hkzLVhqdgXF78vkvTMwOhdd4Bwt4I95WNADbeih9/nMKDPb3T\nn85Rm8EIs37DPDfSrd/eZlxqOIWv3pBfajAgUOQSSQKBgQDrFfd121kefPEkEHpp\nvx3cv5Qy5dSXixCEwfkVHT1dExxfq9dZBQZDMGJbTI7baK6stPQqLwqKpXe6fp9P\nh2lYe1+hB/WWYCSOeacEVnt6gI1/xkf+5agl99PXOA0//WcqFrHxBLKPSWgUXoDs\nMYZJXWRiSEZ+8mLH1efn7WaYGQKBgQDVEsbtPq3MFfAlCrLTKxsrdqWKtaRCt9Bq\nM4inWCcjX2FzMJ91bKQc6btneRVzRhxwpVTGO7zZoGJwOA5jdtFlHcKqjvPBBodL\nnNxnbAA/WvBdxUj3eIMTcrv+1J1z1VzBlWGYZr3nSTB6xNSCgZ2WitVmRPu0Xtjw\nzNfUIA1LpwKBgG82qSccagC+YuYI1aCJRXtVNqsNh5FZvKrRiSCwAIOzssyf4vS+\nJ8RJc351rW+nCluyD4CVWItW1Flp5bwd93xggVERDuHhAepVKuomb6v4fPhhuVWh\nF/c+Uv2SCtKm8tM6gVvgOQkIVTCttJgIpdq3T/Ie9xq/WHPpghh6evqhAoGAP/HG\nqWRqHBlpXHR9fkoteTm+LIaeqTco4PZeSHp4JHF3eW5aLI9SISs0BrWb7mBYIKY9\nbtB2uIkdgbgQ+WCrLsFjrnQASyl+aP7GVnNfD6RnBn0yjLIqBCgmqy97oUui7qW6\nCFatH0AjwHRZomDrvkYkDPEe6N6eFIYlL4/+7XkCgYEAz44KXESrO9Tx8Xg0BQbC\n8gdUA7947UfbMlBpf8fntr4w9Ul0GyHEaEfc0+ZCVHgGQWThk6ZTIKwgL3SUExJK\nmy29jE2CHcYkEi8l7zlMNrLDMw7/rj61EZpAQ9E2Tp4kRo9sIV28w04/ezZj8A8U\nlmrKnOmtOfmB9/9rkhL98Xs=\n-----END PRIVATE KEY-----";

/// The test key pair, kept beside these tests so they do not depend on the host's layout.
const TEST_PUBLIC_KEY: &str = include_str!("fixtures/test-rsa-pub.pem");
const TEST_PRIVATE_KEY: &str = include_str!("fixtures/test-rsa-key.pem");

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

struct T {
    sim: GraphSim,
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
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }
    fn ids(&self) -> Vec<String> {
        self.json["value"]
            .as_array()
            .map(|v| v.iter().map(|o| o["id"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }
    fn next(&self) -> Option<String> {
        self.json["@odata.nextLink"].as_str().map(str::to_string)
    }
    fn delta_link(&self) -> Option<String> {
        self.json["@odata.deltaLink"].as_str().map(str::to_string)
    }
}

fn tenant() -> GraphState {
    let mut s = GraphState::new(TENANT, DOMAIN);
    s.add_client(APP, Some(SECRET), READER);
    s
}

fn user(id: &str, name: &str) -> GraphUser {
    GraphUser {
        id: id.into(),
        user_principal_name: format!("{name}@{DOMAIN}"),
        mail: Some(format!("{name}@{DOMAIN}")),
        display_name: format!("User {name}"),
        account_enabled: true,
        ..GraphUser::default()
    }
}

fn group(id: &str, name: &str) -> GraphGroup {
    GraphGroup {
        id: id.into(),
        display_name: name.into(),
        mail_nickname: Some(name.into()),
        security_enabled: true,
        ..GraphGroup::default()
    }
}

impl T {
    async fn new(state: GraphState) -> T {
        let sim = GraphSim::start(state).await;
        let mut t = T {
            sim,
            http: reqwest::Client::new(),
            token: String::new(),
        };
        t.token = t.token_for(APP, SECRET).await;
        t
    }

    async fn token_for(&self, client: &str, secret: &str) -> String {
        let a = self
            .token_request(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client),
                    ("client_secret", secret),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json["access_token"].as_str().unwrap().to_string()
    }

    async fn token_request(&self, tenant: &str, pairs: &[(&str, &str)]) -> Answer {
        let r = self
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.sim.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.sim.url())
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.get_as(path, Some(&self.token), &[]).await
    }

    async fn get_as(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        answer(r.send().await.unwrap()).await
    }

    /// Follows `@odata.nextLink`; returns every object and the number of pages.
    async fn all(&self, path: &str) -> (Vec<Value>, usize, Answer) {
        let mut out = Vec::new();
        let mut pages = 0;
        let mut a = self.get(path).await;
        loop {
            assert_eq!(a.status, 200, "{}", a.text);
            pages += 1;
            out.extend(a.json["value"].as_array().unwrap().iter().cloned());
            match a.next() {
                Some(n) => a = self.get(&n).await,
                None => return (out, pages, a),
            }
        }
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

fn assert_entra_error(a: &Answer, status: u16, error: &str, code: u64) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.json["error"], error, "{}", a.text);
    assert_eq!(a.json["error_codes"], json!([code]), "{}", a.text);
    let desc = a.json["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(desc.contains("Trace ID: ") && desc.contains("Correlation ID: ") && desc.contains("Timestamp: "));
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(a.json[k].is_string(), "{k} in {}", a.text);
    }
    assert_eq!(
        a.json["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

fn assert_graph_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.code(), code, "{}", a.text);
    let inner = &a.json["error"]["innerError"];
    for k in ["date", "request-id", "client-request-id"] {
        assert!(inner[k].is_string(), "{k} in {}", a.text);
    }
    assert!(inner["date"].as_str().unwrap().starts_with("20"));
}

#[tokio::test]
async fn token_with_secret_and_each_error() {
    let t = T::new(tenant()).await;
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", APP),
        ("client_secret", SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let a = t.token_request(TENANT, &ok).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["token_type"], "Bearer");
    assert_eq!(a.json["expires_in"], 3599);
    assert_eq!(a.json["ext_expires_in"], 3599);
    assert!(a.json["access_token"].as_str().unwrap().len() > 40);
    // The domain addresses the tenant too.
    assert_eq!(t.token_request(DOMAIN, &ok).await.status, 200);

    let a = t.token_request("fabrikam.example", &ok).await;
    assert_entra_error(&a, 400, "invalid_request", 90002);
    assert!(
        a.json["error_description"]
            .as_str()
            .unwrap()
            .contains("Tenant 'fabrikam.example' not found.")
    );

    let mut p = ok;
    p[1].1 = "99999999-0000-0000-0000-000000000000";
    let a = t.token_request(TENANT, &p).await;
    assert_entra_error(&a, 400, "unauthorized_client", 700016);
    assert!(a.json["error_description"].as_str().unwrap().contains(&format!(
        "Application with identifier '99999999-0000-0000-0000-000000000000' was not found in the directory '{DOMAIN}'."
    )));

    let mut p = ok;
    p[2].1 = "wrong";
    let a = t.token_request(TENANT, &p).await;
    assert_entra_error(&a, 401, "invalid_client", 7000215);
    assert!(
        a.json["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("added to app '{APP}'"))
    );

    let mut p = ok;
    p[3].1 = "https://graph.microsoft.com/User.Read.All";
    let a = t.token_request(TENANT, &p).await;
    assert_entra_error(&a, 400, "invalid_scope", 1002012);
    assert!(a.json["error_description"].as_str().unwrap().contains(
        "The provided value for scope https://graph.microsoft.com/User.Read.All is not valid. Client credential flows must have a scope value with /.default suffixed"
    ));

    let mut p = ok;
    p[0].1 = "password";
    let a = t.token_request(TENANT, &p).await;
    assert_entra_error(&a, 400, "unsupported_grant_type", 70003);

    let a = t.token_request(TENANT, &ok[..3]).await;
    assert_entra_error(&a, 400, "invalid_request", 900144);
    let a = t.token_request(TENANT, &[ok[0], ok[1], ok[3]]).await;
    assert_entra_error(&a, 401, "invalid_client", 7000218);

    let s = t.sim.lock();
    assert_eq!(s.token_calls, 10);
    assert_eq!(s.calls["POST /token"], 10);
    assert_eq!(s.graph_calls(), 0);
}

fn assertion(key_pem: &str, x5t: &str, claims: Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.x5t = Some(x5t.to_string());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

#[tokio::test]
async fn token_with_certificate_assertion() {
    let mut s = tenant();
    let cert_app = "3fa2b1c4-0000-4000-8000-00000000c0de";
    s.add_client(cert_app, None, READER);
    s.add_client_certificate(cert_app, TEST_PUBLIC_KEY, THUMBPRINT);
    let t = T::new(s).await;
    let x5t = b64url(&hex_decode(THUMBPRINT).unwrap());
    assert_eq!(x5t, "4yzdMEDQYZT52z-QSngEa_px-uw");
    let aud = t.sim.token_url();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |iss: &str, aud: &str, exp: u64| json!({"aud": aud, "iss": iss, "sub": iss, "jti": guid(), "nbf": now - 5, "iat": now - 5, "exp": exp});
    let request = |jwt: String| {
        let t = &t;
        async move {
            t.token_request(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", cert_app),
                    ("scope", "https://graph.microsoft.com/.default"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &jwt),
                ],
            )
            .await
        }
    };

    let a = request(assertion(TEST_PRIVATE_KEY, &x5t, claims(cert_app, &aud, now + 600))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let token = a.json["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.get_as("/v1.0/users", Some(&token), &[]).await.status, 200);

    // wrong x5t
    let a = request(assertion(
        TEST_PRIVATE_KEY,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA",
        claims(cert_app, &aud, now + 600),
    ))
    .await;
    assert_entra_error(&a, 401, "invalid_client", 700027);
    assert!(
        a.json["error_description"]
            .as_str()
            .unwrap()
            .contains("Client assertion failed signature validation.")
    );
    // expired
    let a = request(assertion(TEST_PRIVATE_KEY, &x5t, claims(cert_app, &aud, now - 600))).await;
    assert_entra_error(&a, 401, "invalid_client", 700024);
    // signed with another key
    let a = request(assertion(OTHER_KEY, &x5t, claims(cert_app, &aud, now + 600))).await;
    assert_entra_error(&a, 401, "invalid_client", 700027);
    // tampered payload
    let good = assertion(TEST_PRIVATE_KEY, &x5t, claims(cert_app, &aud, now + 600));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = b64url(
        json!({"aud": aud, "iss": cert_app, "sub": cert_app, "exp": now + 99_999})
            .to_string()
            .as_bytes(),
    );
    let a = request(format!("{}.{forged}.{}", parts[0], parts[2])).await;
    assert_entra_error(&a, 401, "invalid_client", 700027);
    // iss/sub of another app
    let a = request(assertion(TEST_PRIVATE_KEY, &x5t, claims(APP, &aud, now + 600))).await;
    assert_entra_error(&a, 401, "invalid_client", 700021);
    // audience of another tenant
    let a = request(assertion(
        TEST_PRIVATE_KEY,
        &x5t,
        claims(
            cert_app,
            "https://login.microsoftonline.com/other/oauth2/v2.0/token",
            now + 600,
        ),
    ))
    .await;
    assert_entra_error(&a, 401, "invalid_client", 700023);
    // any host is fine as long as the path names the tenant
    let a = request(assertion(
        TEST_PRIVATE_KEY,
        &x5t,
        claims(
            cert_app,
            &format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
            now + 600,
        ),
    ))
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // not a JWT
    let a = request("not-a-jwt".into()).await;
    assert_entra_error(&a, 401, "invalid_client", 700027);

    // A client without a certificate.
    let a = t
        .token_request(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                ("scope", "https://graph.microsoft.com/.default"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                (
                    "client_assertion",
                    &assertion(TEST_PRIVATE_KEY, &x5t, claims(APP, &aud, now + 600)),
                ),
            ],
        )
        .await;
    assert_entra_error(&a, 401, "invalid_client", 700027);
}

#[tokio::test]
async fn graph_needs_a_valid_token() {
    let mut s = tenant();
    s.add_user(user("u1", "adele"));
    let t = T::new(s).await;
    let a = t.get_as("/v1.0/users", None, &[]).await;
    assert_graph_error(&a, 401, "InvalidAuthenticationToken");
    assert_eq!(a.message(), "Access token is empty.");
    let a = t.get_as("/v1.0/users", Some("made-up"), &[]).await;
    assert_graph_error(&a, 401, "InvalidAuthenticationToken");
    assert_eq!(a.message(), "Access token has expired or is not yet valid.");
    assert_eq!(t.get("/v1.0/users").await.status, 200);

    t.sim.lock().expire_access_tokens();
    let a = t.get("/v1.0/users").await;
    assert_graph_error(&a, 401, "InvalidAuthenticationToken");
    assert_eq!(a.message(), "Access token has expired or is not yet valid.");

    // A limit on calls per token: the third call fails although expires_in said 3599.
    t.sim.lock().set_token_call_limit(Some(2));
    let token = t.token_for(APP, SECRET).await;
    for _ in 0..2 {
        assert_eq!(t.get_as("/v1.0/users", Some(&token), &[]).await.status, 200);
    }
    assert_eq!(t.get_as("/v1.0/users", Some(&token), &[]).await.status, 401);
    t.sim.lock().set_token_call_limit(None);

    // A short lifetime, reported and enforced.
    t.sim.lock().set_token_lifetime(1);
    let a = t
        .token_request(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(a.json["expires_in"], 1);
    let token = a.json["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.get_as("/v1.0/users", Some(&token), &[]).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(t.get_as("/v1.0/users", Some(&token), &[]).await.status, 401);
    assert_eq!(t.sim.lock().calls["GET /users"], 9);
}

#[tokio::test]
async fn permissions_per_route() {
    let mut s = tenant();
    let u = s.add_user(user("u1", "adele"));
    let g = s.add_group(group("g1", "team"));
    s.add_member(&g, &u);
    let sp = s.add_service_principal("app-1", "Bitbucket");
    for (client, perms) in [
        ("c-users", &["User.Read.All"][..]),
        ("c-groups", &["GroupMember.Read.All"][..]),
        ("c-apps", &["Application.Read.All"][..]),
        ("c-dir", &["Directory.Read.All"][..]),
        ("c-none", &[][..]),
    ] {
        s.add_client(client, Some("pw"), perms);
    }
    let t = T::new(s).await;
    let routes = [
        ("users", "/v1.0/users".to_string()),
        ("users", format!("/v1.0/users/{u}")),
        ("users", "/v1.0/users/delta".to_string()),
        ("groups", format!("/v1.0/users/{u}/transitiveMemberOf")),
        ("groups", "/v1.0/groups".to_string()),
        ("groups", format!("/v1.0/groups/{g}")),
        ("groups", format!("/v1.0/groups/{g}/members")),
        ("groups", format!("/v1.0/groups/{g}/transitiveMembers")),
        ("groups", "/v1.0/groups/delta".to_string()),
        ("apps", "/v1.0/servicePrincipals".to_string()),
        ("apps", format!("/v1.0/servicePrincipals/{sp}")),
        ("apps", format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo")),
    ];
    for client in ["c-users", "c-groups", "c-apps", "c-dir", "c-none"] {
        let token = t.token_for(client, "pw").await;
        for (area, path) in &routes {
            let allowed = client == "c-dir" || client == format!("c-{area}");
            let a = t.get_as(path, Some(&token), &[]).await;
            if allowed {
                assert_eq!(a.status, 200, "{client} {path}: {}", a.text);
            } else {
                assert_graph_error(&a, 403, "Authorization_RequestDenied");
                assert_eq!(a.message(), "Insufficient privileges to complete the operation.");
            }
        }
    }
    // Permission changes apply at once.
    t.sim.lock().set_permissions("c-none", &["User.ReadWrite.All"]);
    let token = t.token_for("c-none", "pw").await;
    assert_eq!(t.get_as("/v1.0/users", Some(&token), &[]).await.status, 200);
}

#[tokio::test]
async fn paging_is_keyed_and_survives_inserts() {
    let mut s = tenant();
    for i in 0..2500 {
        s.add_user(user(&format!("u-{i:05}"), &format!("user{i:05}")));
    }
    let t = T::new(s).await;
    let first = t.get("/v1.0/users?$top=999&$select=id,displayName").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.ids().len(), 999);
    assert_eq!(
        first.headers["content-type"],
        "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
    );
    assert!(
        first.json["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with("https://graph.microsoft.com/v1.0/$metadata#users")
    );
    let next = first.next().unwrap();
    assert!(next.starts_with(&format!("{}/v1.0/users?", t.sim.url())), "{next}");
    assert!(next.contains("$top=999") && next.contains("$select=id,displayName") && next.contains("$skiptoken="));
    // Inserted mid-listing: one before the cursor (not served), one after (served once).
    t.sim.lock().add_user(user("u-00000x", "early"));
    t.sim.lock().add_user(user("u-02000x", "late"));
    t.sim.lock().soft_delete_user("u-01500");
    let mut ids = first.ids();
    let mut link = Some(next);
    let mut pages = 1;
    while let Some(l) = link {
        let a = t.get(&l).await;
        assert_eq!(a.status, 200, "{}", a.text);
        ids.extend(a.ids());
        link = a.next();
        pages += 1;
    }
    assert_eq!(pages, 3);
    let set: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "no duplicates");
    assert_eq!(ids.len(), 2500, "2,500 − 1 soft-deleted + 1 inserted after the cursor");
    assert!(set.contains(&"u-02000x".to_string()));
    assert!(!set.contains(&"u-00000x".to_string()));
    assert!(!set.contains(&"u-01500".to_string()));
    assert_eq!(t.sim.lock().calls["GET /users"], 3);

    // A tampered skip token.
    let mut bad = first.next().unwrap();
    bad.push('A');
    let a = t.get(&bad).await;
    assert_graph_error(&a, 400, "Request_BadRequest");
    assert_eq!(a.message(), "Invalid skip token");
    let a = t.get("/v1.0/users?$skiptoken=!!!").await;
    assert_graph_error(&a, 400, "Request_BadRequest");

    // $top limits.
    for top in ["0", "1000", "abc", "-1", "99999999999999999999999"] {
        let a = t.get(&format!("/v1.0/users?$top={top}")).await;
        assert_graph_error(&a, 400, "Request_BadRequest");
        assert_eq!(
            a.message(),
            format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")
        );
    }
    let a = t.get("/v1.0/users").await;
    assert_eq!(a.ids().len(), 100, "default page size");
}

#[tokio::test]
async fn select_is_honoured() {
    let mut s = tenant();
    s.register_extension("extension_0a1b2c_costCenter");
    let mut u = user("u1", "adele");
    u.given_name = Some("Adele".into());
    u.employee_id = Some("E42".into());
    u.other_mails = vec!["a@other.example".into()];
    u.extensions.insert("extension_0a1b2c_costCenter".into(), json!("42"));
    s.add_user(u);
    s.add_user(user("u2", "bob"));
    let t = T::new(s).await;

    let a = t.get("/v1.0/users?$select=displayName,accountEnabled,employeeId").await;
    let first = a.json["value"][0].as_object().unwrap();
    let keys: BTreeSet<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["id", "displayName", "accountEnabled", "employeeId"])
    );
    assert_eq!(a.json["value"][1]["employeeId"], Value::Null, "unset → null in lists");
    assert!(
        a.json["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#users(id,displayName,accountEnabled,employeeId)")
    );

    // URL-encoded option names, case-insensitive property names, extensions, derived properties.
    let a = t
        .get("/v1.0/users/u1?%24select=USERPRINCIPALNAME,mailNickname,otherMails,userType,extension_0a1b2c_costCenter,jobTitle")
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["userPrincipalName"], format!("adele@{DOMAIN}"));
    assert_eq!(a.json["mailNickname"], "adele");
    assert_eq!(a.json["otherMails"], json!(["a@other.example"]));
    assert_eq!(a.json["userType"], "Member");
    assert_eq!(a.json["extension_0a1b2c_costCenter"], "42");
    assert_eq!(a.json["jobTitle"], Value::Null);
    assert_eq!(a.json["id"], "u1");
    // by UPN
    let a = t.get(&format!("/v1.0/users/ADELE@{DOMAIN}")).await;
    assert_eq!(a.json["id"], "u1");

    // Defaults.
    let a = t.get("/v1.0/users/u1").await;
    let keys: BTreeSet<&str> = a.json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "@odata.context",
            "id",
            "displayName",
            "givenName",
            "surname",
            "mail",
            "userPrincipalName",
            "jobTitle"
        ])
    );

    let a = t.get("/v1.0/users?$select=id,shoeSize").await;
    assert_graph_error(&a, 400, "Request_BadRequest");
    assert_eq!(
        a.message(),
        "Could not find a property named 'shoeSize' on type 'microsoft.graph.user'."
    );
    let a = t.get("/v1.0/groups?$select=members").await;
    assert_eq!(
        a.message(),
        "Could not find a property named 'members' on type 'microsoft.graph.group'."
    );
    let a = t.get("/v1.0/users?$select=extension_0a1b2c_unknown").await;
    assert_eq!(a.status, 400);
    for opt in ["$expand=memberOf", "$orderby=displayName", "$search=\"displayName:a\""] {
        let a = t.get(&format!("/v1.0/users?{opt}")).await;
        assert_graph_error(&a, 400, "Request_UnsupportedQuery");
    }
}

fn ok(src: &str, kind: Kind) -> Filter {
    let exts = BTreeMap::from([("extension_x_cc".to_string(), "extension_x_cc".to_string())]);
    match parse_filter(src, kind, &exts) {
        Ok(p) => p.expr,
        Err(e) => panic!("{src}: {}", e.message),
    }
}

#[test]
fn filter_parser_table() {
    let exts = BTreeMap::new();
    let s = |v: &str| Lit::Str(v.into(), v.to_lowercase());
    assert_eq!(
        ok("displayName eq 'Adele'", Kind::User),
        Filter::Eq("displayName".into(), s("Adele"))
    );
    assert_eq!(
        ok("accountEnabled eq true", Kind::User),
        Filter::Eq("accountEnabled".into(), Lit::Bool(true))
    );
    assert_eq!(ok("mail eq null", Kind::User), Filter::Eq("mail".into(), Lit::Null));
    assert_eq!(
        ok("displayName eq 'O''Brien'", Kind::User),
        Filter::Eq("displayName".into(), s("O'Brien"))
    );
    assert_eq!(
        ok("startswith(displayName,'Ad')", Kind::User),
        Filter::StartsWith("displayName".into(), "ad".into())
    );
    assert_eq!(
        ok("id in ('a', 'b')", Kind::Group),
        Filter::In("id".into(), vec![s("a"), s("b")])
    );
    assert_eq!(
        ok("appId eq 'x'", Kind::ServicePrincipal),
        Filter::Eq("appId".into(), s("x"))
    );
    assert_eq!(
        ok("extension_x_cc eq '42'", Kind::User),
        Filter::Eq("extension_x_cc".into(), s("42"))
    );
    // precedence: and binds tighter than or; parentheses; not
    assert_eq!(
        ok("id eq 'a' or id eq 'b' and userType eq 'Guest'", Kind::User),
        Filter::Or(
            Box::new(Filter::Eq("id".into(), s("a"))),
            Box::new(Filter::And(
                Box::new(Filter::Eq("id".into(), s("b"))),
                Box::new(Filter::Eq("userType".into(), s("Guest")))
            ))
        )
    );
    let p = parse_filter(
        "not (userType eq 'Guest') and accountEnabled eq true",
        Kind::User,
        &exts,
    )
    .unwrap();
    assert_eq!(p.advanced.as_deref(), Some("userType"));
    assert!(matches!(p.expr, Filter::And(..)));
    assert_eq!(
        parse_filter("mail ne null", Kind::User, &exts)
            .unwrap()
            .advanced
            .as_deref(),
        Some("mail")
    );
    assert_eq!(
        parse_filter("endswith(mail,'@contoso.example')", Kind::User, &exts)
            .unwrap()
            .advanced
            .as_deref(),
        Some("mail")
    );
    assert_eq!(
        ok("id eq 'a' or id eq 'b' or id eq 'c'", Kind::User).id_list(),
        Some(vec!["a".to_string(), "b".to_string(), "c".to_string()])
    );
    assert_eq!(ok("id eq 'a' and id eq 'b'", Kind::User).id_list(), None);

    // Evaluation is case-insensitive for strings.
    let u = user("u1", "adele");
    assert!(ok("userPrincipalName eq 'ADELE@contoso.example'", Kind::User).eval(&u));
    assert!(ok("startswith(displayName,'user a')", Kind::User).eval(&u));
    assert!(ok("not (accountEnabled eq false)", Kind::User).eval(&u));
    assert!(ok("givenName eq null and mail ne null", Kind::User).eval(&u));
    assert!(!ok("id in ('u2','u3')", Kind::User).eval(&u));

    let invalid = [
        ("", "expected"),
        ("displayName", "position 11"),
        ("displayName eq", "position 14"),
        ("displayName eq 'x", "unterminated string literal at position 15"),
        (
            "shoeSize eq '1'",
            "Could not find a property named 'shoeSize' on type 'microsoft.graph.user' at position 0",
        ),
        ("displayName eq 'a' xor id eq 'b'", "position 19"),
        ("(displayName eq 'a'", "position 19"),
        ("displayName eq 'a')", "position 18"),
        ("accountEnabled eq 'yes'", "incompatible types"),
        ("displayName eq 12", "Numeric literal '12' at position 15"),
        ("contains(displayName,'a')", "Unknown function 'contains' at position 0"),
        (
            "displayName eq 'a' & id eq 'b'",
            "character '&' is not valid at position 19",
        ),
        (
            "id in ('1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16')",
            "Too many values (16)",
        ),
        ("members eq 'x'", "Could not find a property named 'members'"),
    ];
    for (src, needle) in invalid {
        let e = parse_filter(src, Kind::User, &exts).expect_err(src);
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{src}");
        assert!(e.message.contains(needle), "{src}: {}", e.message);
    }
    let e = parse_filter("otherMails eq 'a'", Kind::User, &exts).unwrap_err();
    assert_eq!(e.code, "Request_UnsupportedQuery");
    // Deep nesting is refused, not a stack overflow.
    let deep = format!("{}id eq 'a'{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_filter(&deep, Kind::User, &exts).is_err());
    let nots = format!("{}id eq 'a'", "not ".repeat(10_000));
    assert!(parse_filter(&nots, Kind::User, &exts).is_err());
    let chain = vec!["id eq 'a'"; 10_000].join(" or ");
    let e = parse_filter(&chain, Kind::User, &exts).unwrap_err();
    assert!(e.message.contains("more than 500 clauses"), "{}", e.message);
}

#[tokio::test]
async fn filter_over_http() {
    let mut s = tenant();
    for (id, name) in [("u1", "adele"), ("u2", "alex"), ("u3", "bob")] {
        s.add_user(user(id, name));
    }
    s.update_user("u3", |u| u.account_enabled = false);
    let sp = s.add_service_principal("11111111-aaaa-bbbb-cccc-000000000001", "Bitbucket");
    s.add_service_principal("11111111-aaaa-bbbb-cccc-000000000002", "Other");
    let t = T::new(s).await;
    let a = t.get("/v1.0/users?$filter=startswith(displayName,'User a')").await;
    assert_eq!(a.ids(), ["u1", "u2"]);
    let a = t
        .get("/v1.0/users?$filter=accountEnabled eq false or id in ('u1')&$top=1")
        .await;
    assert_eq!(a.ids(), ["u1"]);
    let (all, pages, _) = t
        .all("/v1.0/users?$filter=accountEnabled eq false or id in ('u1')&$top=1")
        .await;
    assert_eq!((all.len(), pages), (2, 2));

    let a = t.get("/v1.0/users?$filter=accountEnabled ne false").await;
    assert_graph_error(&a, 400, "Request_UnsupportedQuery");
    assert_eq!(
        a.message(),
        "Unsupported or invalid query filter clause specified for property 'accountEnabled' of resource 'User'."
    );
    let a = t.get("/v1.0/users?$filter=accountEnabled ne false&$count=true").await;
    assert_graph_error(&a, 400, "Request_BadRequest");
    let a = t
        .get_as(
            "/v1.0/users?$filter=accountEnabled ne false&$count=true",
            Some(&t.token),
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["@odata.count"], 2);
    assert_eq!(a.ids(), ["u1", "u2"]);

    let a = t
        .get("/v1.0/servicePrincipals?$filter=appId eq '11111111-aaaa-bbbb-cccc-000000000001'&$select=id,appId")
        .await;
    assert_eq!(a.ids(), std::slice::from_ref(&sp));
    assert_eq!(a.json["value"][0].as_object().unwrap().len(), 2);
    let a = t.get(&format!("/v1.0/servicePrincipals/{sp}")).await;
    assert_eq!(a.json["servicePrincipalType"], "Application");
    assert_eq!(a.json["accountEnabled"], true);
    assert_eq!(a.json["displayName"], "Bitbucket");

    let a = t.get("/v1.0/users?$filter=displayName eq").await;
    assert_graph_error(&a, 400, "Request_BadRequest");
    assert!(a.message().contains("position"), "{}", a.message());

    // Lookups by id, as the connector batches them (looked up, not scanned).
    let a = t
        .get_as(
            "/v1.0/users?$filter=(accountEnabled eq true) and id in ('u3','u1','nope')&$count=true",
            Some(&t.token),
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(a.ids(), ["u1"]);
    assert_eq!(a.json["@odata.count"], 1);
    let a = t.get("/v1.0/users?$filter=id eq 'u2' or id eq 'u3'&$top=1").await;
    assert_eq!(a.ids(), ["u2"]);
    assert_eq!(t.get(&a.next().unwrap()).await.ids(), ["u3"]);
    let a = t
        .get_as(
            "/v1.0/groups?$count=true",
            Some(&t.token),
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(a.json["@odata.count"], 0);
}

#[tokio::test]
async fn links_follow_the_host_or_the_public_url() {
    let mut s = tenant();
    for i in 0..3 {
        s.add_user(user(&format!("u{i}"), &format!("n{i}")));
    }
    let t = T::new(s).await;
    let a = t
        .get_as(
            "/v1.0/users?$top=1",
            Some(&t.token),
            &[("host", "graph.proxy.example:8443")],
        )
        .await;
    assert!(
        a.next()
            .unwrap()
            .starts_with("http://graph.proxy.example:8443/v1.0/users?$top=1&$skiptoken=")
    );
    t.sim.lock().set_public_url("http://127.0.0.1:4010/");
    let a = t.get("/v1.0/users?$top=1").await;
    assert!(
        a.next()
            .unwrap()
            .starts_with("http://127.0.0.1:4010/v1.0/users?$top=1&$skiptoken=")
    );
    let a = t.get("/v1.0/users/delta?$deltatoken=latest").await;
    assert!(
        a.delta_link()
            .unwrap()
            .starts_with("http://127.0.0.1:4010/v1.0/users/delta?$deltatoken=")
    );
    // Links keep every option, percent-encoded, and work when followed.
    t.sim.lock().public_url = None;
    let a = t
        .get("/v1.0/users?$filter=startswith(displayName,'User n')&$top=2")
        .await;
    let next = a.next().unwrap();
    assert!(next.contains("$filter=startswith(displayName,'User%20n')"), "{next}");
    assert_eq!(t.get(&next).await.ids(), ["u2"]);
}

/// `latest` state for users and groups delta; returns their deltaLinks.
async fn latest(t: &T) -> (String, String) {
    let u = t
        .get("/v1.0/users/delta?$deltatoken=latest&$select=displayName,accountEnabled")
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    assert_eq!(u.json["value"], json!([]));
    let g = t
        .get("/v1.0/groups/microsoft.graph.delta()?$deltaToken=latest&$select=displayName,members")
        .await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!(g.json["value"], json!([]));
    (u.delta_link().unwrap(), g.delta_link().unwrap())
}

/// One whole delta round: every object and the next deltaLink.
async fn round(t: &T, link: &str) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut a = t.get(link).await;
    loop {
        assert_eq!(a.status, 200, "{}", a.text);
        out.extend(a.json["value"].as_array().unwrap().iter().cloned());
        if let Some(n) = a.next() {
            assert!(a.delta_link().is_none());
            a = t.get(&n).await;
        } else {
            return (out, a.delta_link().expect("deltaLink on the last page"));
        }
    }
}

#[tokio::test]
async fn delta_latest_then_changes_then_restore() {
    let mut s = tenant();
    for (id, name) in [("u1", "adele"), ("u2", "alex"), ("u3", "bob")] {
        s.add_user(user(id, name));
    }
    s.add_group(group("g1", "team"));
    s.add_group(group("g2", "other"));
    s.add_member("g1", "u1");
    s.add_member("g2", "u2");
    let t = T::new(s).await;
    let (users_link, groups_link) = latest(&t).await;
    assert!(users_link.starts_with(&format!("{}/v1.0/users/delta?$deltatoken=", t.sim.url())));
    assert!(groups_link.starts_with(&format!("{}/v1.0/groups/delta?$deltatoken=", t.sim.url())));
    {
        let mut s = t.sim.lock();
        s.update_user("u1", |u| u.display_name = "Adele V".into());
        s.soft_delete_user("u2");
        s.add_member("g1", "u3");
    }
    let (users, users_link) = round(&t, &users_link).await;
    assert_eq!(
        users,
        vec![
            json!({"id": "u1", "displayName": "Adele V", "accountEnabled": true}),
            json!({"id": "u2", "@removed": {"reason": "changed"}}),
        ]
    );
    let (groups, groups_link) = round(&t, &groups_link).await;
    assert_eq!(
        groups,
        vec![
            json!({"id": "g1", "displayName": "team",
                   "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u3"}]}),
            json!({"id": "g2", "displayName": "other",
                   "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": {"reason": "deleted"}}]}),
        ]
    );
    // Soft-deleted users are invisible outside delta.
    assert_eq!(t.get("/v1.0/users/u2").await.status, 404);
    assert_eq!(t.get("/v1.0/groups/g2/members").await.ids(), Vec::<String>::new());

    // Nothing changed: empty rounds.
    let (users_again, users_link) = round(&t, &users_link).await;
    assert!(users_again.is_empty());

    t.sim.lock().restore_user("u2");
    let (users, _) = round(&t, &users_link).await;
    assert_eq!(
        users,
        vec![json!({"id": "u2", "displayName": "User alex", "accountEnabled": true})]
    );
    let (groups, _) = round(&t, &groups_link).await;
    assert_eq!(
        groups,
        vec![json!({"id": "g2", "displayName": "other",
                    "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u2"}]})]
    );
    assert_eq!(t.get("/v1.0/groups/g2/members").await.ids(), ["u2"]);
    let calls = t.sim.lock().calls.clone();
    assert_eq!(calls["GET /users/delta"], 4);
    assert_eq!(calls["GET /groups/delta"], 3);
}

#[tokio::test]
async fn delta_initial_round_paging_and_deletes() {
    let mut s = tenant();
    for i in 0..7 {
        s.add_user(user(&format!("u{i}"), &format!("n{i}")));
    }
    s.delta_page_size = 3;
    let t = T::new(s).await;
    let first = t.get("/v1.0/users/delta?$select=displayName,givenName").await;
    assert_eq!(first.ids(), ["u0", "u1", "u2"]);
    assert!(
        first.json["value"][0].get("givenName").is_none(),
        "unset properties are omitted in delta"
    );
    let next = first.next().unwrap();
    assert!(
        next.starts_with(&format!("{}/v1.0/users/delta?$skiptoken=", t.sim.url())),
        "{next}"
    );
    assert!(!next.contains("select"), "options live in the token");
    let (rest, link) = round(&t, &next).await;
    assert_eq!(rest.len(), 4);
    {
        let mut s = t.sim.lock();
        s.hard_delete_user("u0");
        s.soft_delete_user("u1");
        s.add_user(user("u9", "n9"));
    }
    let (changes, _) = round(&t, &link).await;
    assert_eq!(
        changes,
        vec![
            json!({"id": "u0", "@removed": {"reason": "deleted"}}),
            json!({"id": "u1", "@removed": {"reason": "changed"}}),
            json!({"id": "u9", "displayName": "User n9"}),
        ]
    );
    // Id filter, encoded into the tokens.
    let (only, _) = round(&t, "/v1.0/users/delta?$filter=id eq 'u2' or id eq 'u3'").await;
    assert_eq!(
        only.iter().map(|o| o["id"].clone()).collect::<Vec<_>>(),
        [json!("u2"), json!("u3")]
    );
    for bad in [
        "$filter=displayName eq 'x'",
        "$top=5",
        "$expand=manager",
        "$orderby=id",
        "$select=members",
    ] {
        let a = t.get(&format!("/v1.0/users/delta?{bad}")).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.text);
    }
    let a = t.get("/v1.0/users/delta?$deltatoken=bm90LWEtdG9rZW4").await;
    assert_graph_error(&a, 400, "Request_BadRequest");
    // A groups token on users/delta.
    let g = t.get("/v1.0/groups/delta?$deltatoken=latest").await;
    let token = g
        .delta_link()
        .unwrap()
        .split("$deltatoken=")
        .nth(1)
        .unwrap()
        .to_string();
    let a = t.get(&format!("/v1.0/users/delta?$deltatoken={token}")).await;
    assert_graph_error(&a, 400, "Request_BadRequest");
}

#[tokio::test]
async fn delta_tokens_expire_and_sync_resets() {
    let mut s = tenant();
    s.add_user(user("u1", "adele"));
    s.delta_page_size = 1;
    s.add_user(user("u2", "bob"));
    let t = T::new(s).await;
    let (users_link, groups_link) = latest(&t).await;
    let page1 = t.get("/v1.0/users/delta?$select=displayName").await;
    let skip = page1.next().unwrap();
    t.sim.lock().expire_delta_tokens();
    for link in [&users_link, &groups_link, &skip] {
        let a = t.get(link).await;
        assert_graph_error(&a, 400, "syncStateNotFound");
        assert_eq!(
            a.message(),
            "The sync state for this delta token was not found; start a new full synchronization."
        );
    }
    // New tokens work.
    let (users_link, _) = latest(&t).await;
    assert_eq!(t.get(&users_link).await.status, 200);

    t.sim.lock().reset_sync();
    let a = t.get(&users_link).await;
    assert_graph_error(&a, 410, "resyncRequired");
    let location = a.headers["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!(
            "{}/v1.0/users/delta?$select=id,displayName,accountEnabled&$deltatoken=",
            t.sim.url()
        )
    );
    // Following Location starts a full synchronization with the same options.
    let (all, _) = round(&t, &location).await;
    assert_eq!(
        all,
        vec![
            json!({"id": "u1", "displayName": "User adele", "accountEnabled": true}),
            json!({"id": "u2", "displayName": "User bob", "accountEnabled": true}),
        ]
    );
}

#[tokio::test]
async fn group_delta_splits_large_member_changes() {
    let mut s = tenant();
    s.add_group(group("g0", "small"));
    s.add_group(group("g1", "big"));
    s.add_group(group("g2", "after"));
    for i in 0..25 {
        s.add_user(user(&format!("u{i:02}"), &format!("n{i:02}")));
        s.add_member("g1", &format!("u{i:02}"));
    }
    s.add_member("g0", "u00");
    s.add_member("g2", "g0");
    s.delta_members_per_page = 10;
    let t = T::new(s).await;
    let mut pages = Vec::new();
    let mut a = t.get("/v1.0/groups/delta?$select=displayName,members").await;
    loop {
        assert_eq!(a.status, 200, "{}", a.text);
        pages.push(a.json["value"].clone());
        match a.next() {
            Some(n) => a = t.get(&n).await,
            None => break,
        }
    }
    let link = a.delta_link().unwrap();
    let count = |v: &Value| v.get("members@delta").and_then(Value::as_array).map_or(0, Vec::len);
    let per_page: Vec<usize> = pages
        .iter()
        .map(|p| p.as_array().unwrap().iter().map(count).sum())
        .collect();
    assert_eq!(per_page, [10, 10, 7]);
    let g1: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p.as_array().unwrap())
        .filter(|o| o["id"] == "g1")
        .collect();
    assert_eq!(g1.len(), 3, "the big group appears once per page");
    assert_eq!(g1[0]["displayName"], "big");
    assert!(g1[1].get("displayName").is_none() && g1[2].get("displayName").is_none());
    let members: BTreeSet<&str> = g1
        .iter()
        .flat_map(|o| o["members@delta"].as_array().unwrap())
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 25);
    let g2 = pages[2].as_array().unwrap().iter().find(|o| o["id"] == "g2").unwrap();
    assert_eq!(
        g2["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.group", "id": "g0"}])
    );

    // An incremental round with 23 removals and a deleted group.
    {
        let mut s = t.sim.lock();
        for i in 0..23 {
            s.remove_member("g1", &format!("u{i:02}"));
        }
        s.delete_group("g0");
    }
    let (changes, _) = round(&t, &link).await;
    let g1_removed: usize = changes.iter().filter(|o| o["id"] == "g1").map(count).sum();
    assert_eq!(g1_removed, 23);
    assert!(changes.contains(&json!({"id": "g0", "@removed": {"reason": "deleted"}})));
    assert!(changes.contains(&json!({"id": "g2", "displayName": "after",
        "members@delta": [{"@odata.type": "#microsoft.graph.group", "id": "g0", "@removed": {"reason": "deleted"}}]})));
}

#[tokio::test]
async fn members_and_transitive_membership() {
    let mut s = tenant();
    for (id, name) in [("u1", "a"), ("u2", "b"), ("u3", "c"), ("u4", "d")] {
        s.add_user(user(id, name));
    }
    for (id, name) in [("g1", "top"), ("g2", "middle"), ("g3", "bottom"), ("g4", "loop")] {
        s.add_group(group(id, name));
    }
    s.add_member("g1", "u1");
    s.add_member("g1", "g2");
    s.add_member("g2", "u2");
    s.add_member("g2", "g3");
    s.add_member("g3", "u3");
    // a cycle g3 ⊃ g4 ⊃ g3
    s.add_member("g3", "g4");
    s.add_member("g4", "g3");
    let t = T::new(s).await;
    let a = t.get("/v1.0/groups/g1/members").await;
    assert_eq!(a.ids(), ["g2", "u1"]);
    assert_eq!(a.json["value"][0]["@odata.type"], "#microsoft.graph.group");
    assert_eq!(a.json["value"][1]["@odata.type"], "#microsoft.graph.user");
    let (all, pages, _) = t
        .all("/v1.0/groups/g1/transitiveMembers?$top=2&$select=id,userPrincipalName,securityEnabled")
        .await;
    assert_eq!(pages, 3);
    let ids: Vec<&str> = all.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["g2", "g3", "g4", "u1", "u2", "u3"]);
    let u3 = all.iter().find(|o| o["id"] == "u3").unwrap();
    assert_eq!(u3["userPrincipalName"], format!("c@{DOMAIN}"));
    assert!(u3.get("securityEnabled").is_none());
    assert_eq!(all[0]["securityEnabled"], true);
    assert!(all[0].get("userPrincipalName").is_none());

    let a = t.get("/v1.0/users/u3/transitiveMemberOf?$select=displayName").await;
    assert_eq!(a.ids(), ["g1", "g2", "g3", "g4"]);
    assert_eq!(a.json["value"][0]["displayName"], "top");
    assert_eq!(a.json["value"][0]["@odata.type"], "#microsoft.graph.group");
    assert_eq!(
        t.get("/v1.0/users/u4/transitiveMemberOf").await.ids(),
        Vec::<String>::new()
    );
    let a = t.get("/v1.0/groups/nope/members").await;
    assert_graph_error(&a, 404, "Request_ResourceNotFound");
    assert_eq!(
        a.message(),
        "Resource 'nope' does not exist or one of its queried reference-property objects are not present."
    );
    let a = t.get("/v1.0/groups/g1/owners").await;
    assert_graph_error(&a, 400, "BadRequest");
    assert_eq!(a.message(), "Resource not found for the segment 'owners'.");
    let a = t.get("/v1.0/devices").await;
    assert_eq!(a.message(), "Resource not found for the segment 'devices'.");
    let calls = t.sim.lock().calls.clone();
    assert_eq!(calls["GET /groups/{id}/transitiveMembers"], 3);
    assert_eq!(calls["GET /users/{id}/transitiveMemberOf"], 2);
    assert_eq!(calls["GET /groups/{id}/members"], 2);
}

#[tokio::test]
async fn app_role_assignments() {
    let mut s = tenant();
    let u1 = s.add_user(user("", "adele"));
    let u2 = s.add_user(user("", "bob"));
    let g = s.add_group(group("", "devs"));
    let sp = s.add_service_principal("22222222-0000-0000-0000-000000000001", "Bitbucket");
    s.assign(&sp, &u1);
    s.assign(&sp, &u2);
    s.assign(&sp, &g);
    s.soft_delete_user(&u2);
    let t = T::new(s).await;
    let (all, pages, _) = t
        .all(&format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo?$top=1"))
        .await;
    assert_eq!(pages, 2);
    let by_principal: BTreeMap<&str, &Value> = all.iter().map(|a| (a["principalId"].as_str().unwrap(), a)).collect();
    assert_eq!(by_principal.len(), 2);
    let a = by_principal[u1.as_str()];
    assert_eq!(a["principalType"], "User");
    assert_eq!(a["principalDisplayName"], "User adele");
    assert_eq!(a["appRoleId"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(a["resourceId"], sp);
    assert_eq!(a["resourceDisplayName"], "Bitbucket");
    assert_eq!(a["deletedDateTime"], Value::Null);
    assert!(a["createdDateTime"].as_str().unwrap().ends_with('Z'));
    assert!(!a["id"].as_str().unwrap().is_empty());
    assert_eq!(by_principal[g.as_str()]["principalType"], "Group");
    // GUIDs generated for empty ids
    assert_eq!(u1.len(), 36);

    t.sim.lock().unassign(&sp, &g);
    let a = t
        .get(&format!(
            "/v1.0/servicePrincipals/{sp}/appRoleAssignedTo?$select=principalId"
        ))
        .await;
    assert_eq!(
        a.json["value"],
        json!([{"id": by_principal[u1.as_str()]["id"], "principalId": u1}])
    );
    assert_eq!(
        t.get("/v1.0/servicePrincipals/nope/appRoleAssignedTo").await.status,
        404
    );
}

#[tokio::test]
async fn throttling_and_faults() {
    let mut s = tenant();
    s.add_user(user("u1", "adele"));
    let t = T::new(s).await;
    t.sim.lock().throttle_next(2, 429, Some(7));
    for _ in 0..2 {
        let a = t.get("/v1.0/users").await;
        assert_graph_error(&a, 429, "TooManyRequests");
        assert_eq!(a.message(), "Too many requests are being sent. Retry after some time.");
        assert_eq!(a.headers["retry-after"], "7");
    }
    // Token requests are not throttled.
    t.sim.lock().throttle_next(1, 503, None);
    let _ = t.token_for(APP, SECRET).await;
    let a = t.get("/v1.0/users").await;
    assert_graph_error(&a, 503, "serviceNotAvailable");
    assert!(a.headers.get("retry-after").is_none());
    assert_eq!(t.get("/v1.0/users").await.status, 200);
    {
        let s = t.sim.lock();
        assert_eq!(s.throttled, 3);
        assert_eq!(s.calls["GET /users"], 1);
        assert_eq!(s.graph_calls(), 1);
    }

    t.sim.lock().throttle_every(3, Some(1));
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(t.get("/v1.0/users").await.status);
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429, 200, 200, 429]);
    t.sim.lock().throttle_every(0, None);

    t.sim.lock().fail_next(2, "/groups", 500);
    assert_eq!(t.get("/v1.0/users").await.status, 200);
    let a = t.get("/v1.0/groups").await;
    assert_graph_error(&a, 500, "InternalServerError");
    assert_eq!(t.get("/v1.0/groups?$top=5").await.status, 500);
    assert_eq!(t.get("/v1.0/groups").await.status, 200);
    // Faults match the decoded query too.
    t.sim.lock().fail_next(1, "$skiptoken", 502);
    assert_eq!(t.get("/v1.0/users").await.status, 200);

    t.sim.lock().corrupt_next("/users");
    let a = t.get("/v1.0/users").await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_str::<Value>(&a.text).is_err());
    assert_eq!(t.get("/v1.0/users").await.status, 200);

    t.sim.lock().fail_next(1, "oauth2", 503);
    let a = t
        .token_request(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_entra_error(&a, 503, "temporarily_unavailable", 90033);
}

/// Kit faults on Graph's own routes: paging faults on lists and delta rounds, an expired token,
/// a reset, a page in front of the token endpoint, and the rate limit.
#[tokio::test]
async fn kit_faults_on_graph_routes() {
    use crate::kit::{Cut, Fault, Outcome};
    let mut s = tenant();
    for i in 0..7 {
        s.add_user(user(&format!("u{i}"), &format!("n{i}")));
    }
    s.add_group(group("g1", "team"));
    for i in 0..5 {
        s.add_member("g1", &format!("u{i}"));
    }
    s.delta_page_size = 3;
    let t = T::new(s).await;
    let users = RouteMatch::path("/v1.0/users");

    // An empty page mid-listing: nothing lost, and its link is one not seen before.
    t.sim.faults().add(
        FaultRule::new(Fault::EmptyPage)
            .on(Method::GET, users.clone())
            .skip_first(1),
    );
    let mut links = vec!["/v1.0/users?$top=3".to_string()];
    let (all, pages, _) = t.all(&links[0]).await;
    assert_eq!(all.len(), 7);
    assert_eq!(pages, 4, "one page more, the empty one");
    let mut a = t.get(&links[0]).await;
    while let Some(n) = a.next() {
        assert!(!links.contains(&n), "{n} seen before");
        links.push(n.clone());
        a = t.get(&n).await;
    }

    // A looping cursor: the third members page leads back to the first page's own URL.
    t.sim.faults().add(
        FaultRule::new(Fault::LoopingCursor)
            .on(Method::GET, RouteMatch::path("/v1.0/groups/*/members"))
            .skip_first(2),
    );
    let first = "/v1.0/groups/g1/members?$top=2";
    let p1 = t.get(first).await;
    let p2 = t.get(&p1.next().unwrap()).await;
    let p3 = t.get(&p2.next().unwrap()).await;
    assert_eq!(p3.ids(), ["u4"]);
    assert_eq!(p3.next().unwrap(), format!("{}{first}", t.sim.url()));

    // A delta round with an empty page still ends with its deltaLink and every user.
    t.sim.faults().add(
        FaultRule::new(Fault::EmptyPage)
            .route(RouteMatch::path("/v1.0/users/delta"))
            .skip_first(1),
    );
    let (objects, link) = round(&t, "/v1.0/users/delta").await;
    assert_eq!(objects.len(), 7);
    assert!(link.contains("$deltatoken="));

    // An expired token: Graph's 401, counted as a refused token; the next request is served.
    t.sim
        .faults()
        .add(FaultRule::new(Fault::ExpiredToken).on(Method::GET, users.clone()));
    let a = t.get("/v1.0/users").await;
    assert_graph_error(&a, 401, "InvalidAuthenticationToken");
    assert_eq!(a.message(), "Access token has expired or is not yet valid.");
    assert!(a.headers.contains_key("www-authenticate"));
    assert_eq!(t.sim.lock().refused_tokens, 1);
    assert_eq!(t.get("/v1.0/users").await.status, 200);

    // A reset of a transitive members read; a sign-in page instead of a token.
    t.sim.faults().add(
        FaultRule::new(Fault::Reset(Cut::BeforeServing)).route(RouteMatch::path("/v1.0/groups/*/transitiveMembers")),
    );
    let r = t
        .http
        .get(t.url("/v1.0/groups/g1/transitiveMembers"))
        .bearer_auth(&t.token)
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");
    t.sim
        .faults()
        .add(FaultRule::new(Fault::WrongContentType).route(RouteMatch::path("/*/oauth2/v2.0/token")));
    let a = t
        .token_request(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    t.sim
        .faults()
        .add(FaultRule::new(Fault::ExpiredToken).route(RouteMatch::path("/*/oauth2/v2.0/token")));
    let a = t
        .token_request(
            DOMAIN,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_entra_error(&a, 401, "invalid_client", 7000222);

    // The token bucket: Graph's 429 with Retry-After; tokens are not Graph's to limit.
    t.sim.lock().set_rate_limit(0.5, 1);
    assert_eq!(t.get("/v1.0/users").await.status, 200);
    let a = t.get("/v1.0/users").await;
    assert_graph_error(&a, 429, "TooManyRequests");
    assert_eq!(a.headers["retry-after"], "2");
    let _ = t.token_for(APP, SECRET).await;
    t.sim.lock().clear_rate_limit();
    assert_eq!(t.get("/v1.0/users").await.status, 200);
    let s = t.sim.lock();
    assert_eq!(s.throttled, 1);
    let log = t.sim.log().entries();
    assert!(log.iter().any(|l| l.outcome == Outcome::RateLimited));
    assert!(
        log.iter()
            .any(|l| l.outcome == Outcome::Injected(Fault::Reset(Cut::BeforeServing)) && l.status.is_none())
    );
}

#[tokio::test]
async fn hostile_input_never_breaks_the_server() {
    let mut s = tenant();
    s.add_user(user("u1", "adele"));
    s.add_group(group("g1", "team"));
    let t = T::new(s).await;
    let nasty = [
        "/v1.0/users?$top=%FF",
        "/v1.0/users?$filter=%27",
        "/v1.0/users?$filter=((((",
        "/v1.0/users?$filter=startswith(",
        "/v1.0/users?$filter=id%20in%20()",
        "/v1.0/users?$select=,,,",
        "/v1.0/users?$select=id&$select=id",
        "/v1.0/users?$skiptoken=%00%01",
        "/v1.0/users?$skiptoken=",
        "/v1.0/users?$bogus=1",
        "/v1.0/users?$count=maybe",
        "/v1.0/users/delta?$skiptoken=eyJrIjoiZCJ9",
        "/v1.0/users/delta?$deltatoken=AAAAAAAAAAAAAAAAAAAAAAAA",
        "/v1.0/groups/delta?$select=members,nope",
        "/v1.0/users/%E2%82%AC%ZZ",
        "/v1.0/users/u1/transitiveMemberOf?$top=1000000000000",
        "/v1.0/groups/g1/members?$filter=not",
        "/v1.0/",
        "/",
        "/beta/users",
        "/v1.0/users/u1/manager/extra/segments",
    ];
    for path in nasty {
        let a = t.get(path).await;
        assert!(a.status == 400 || a.status == 404, "{path}: {} {}", a.status, a.text);
        assert!(a.json["error"]["code"].is_string(), "{path}: {}", a.text);
    }
    // A POST to a read route.
    let r = t
        .http
        .post(t.url("/v1.0/users"))
        .header("authorization", format!("Bearer {}", t.token))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // Garbage on the token endpoint.
    let r = t
        .http
        .post(t.url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .body(vec![0xff, 0xfe, b'&', b'=', b'%'])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let a = answer(
        t.http
            .get(t.url(&format!("/{TENANT}/oauth2/v2.0/token")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_entra_error(&a, 400, "invalid_request", 900561);
    assert_eq!(t.get("/v1.0/users").await.status, 200, "still serving");
}

#[tokio::test]
async fn from_directory_keeps_ids_and_memberships() {
    let d = crate::directory::Directory::generate(40, 8, 2);
    let s = GraphState::from_directory(&d, TENANT, DOMAIN);
    assert_eq!(s.sequence(), 0, "no change events for the initial content");
    assert_eq!(
        s.user_id_by_upn(&format!("user000007@{DOMAIN}")).as_deref(),
        Some("u-000007")
    );
    assert_eq!(s.group_id_by_name("team-00003").as_deref(), Some("g-00003"));
    assert_eq!(
        s.user("u-000007").unwrap().mail.as_deref(),
        Some("user000007@example.com")
    );
    let mut s = s;
    s.add_client(APP, Some(SECRET), READER);
    let t = T::new(s).await;
    // Flattened membership through transitiveMembers matches the directory's expectation.
    let expected = d.expected_members();
    for g in &d.groups {
        let (all, _, _) = t
            .all(&format!(
                "/v1.0/groups/{}/transitiveMembers?$select=userPrincipalName&$top=999",
                g.id
            ))
            .await;
        let got: BTreeSet<String> = all
            .iter()
            .filter(|o| o["@odata.type"] == "#microsoft.graph.user")
            .map(|o| {
                o["userPrincipalName"]
                    .as_str()
                    .unwrap()
                    .split('@')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(got, expected[&g.name], "{}", g.name);
    }
    // The first delta round lists everything, members included.
    let (groups, _) = round(&t, "/v1.0/groups/delta?$select=displayName,members").await;
    assert_eq!(groups.len(), 8);
    let entries: usize = groups
        .iter()
        .map(|o| o.get("members@delta").and_then(Value::as_array).map_or(0, Vec::len))
        .sum();
    assert_eq!(entries, d.memberships.len());
}

/// The benchmark's tenant (100,000 users, 5,000 groups, about 500,000 memberships) listed as the
/// connector lists it. Slow in debug builds: `cargo test -p roster-sim --release -- --ignored scale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scale_full_listing_of_a_large_tenant() {
    let started = std::time::Instant::now();
    let d = crate::directory::Directory::generate(100_000, 5_000, 5);
    let mut s = GraphState::from_directory(&d, TENANT, DOMAIN);
    s.add_client(APP, Some(SECRET), READER);
    let built = started.elapsed();
    let t = T::new(s).await;
    let started = std::time::Instant::now();
    let eventual = [("ConsistencyLevel", "eventual")];
    let mut link = Some(
        "/v1.0/users?$select=id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled&$top=999&$count=true"
            .to_string(),
    );
    let mut users = 0;
    while let Some(l) = link {
        let a = t.get_as(&l, Some(&t.token), &eventual).await;
        assert_eq!(a.status, 200);
        users += a.ids().len();
        link = a.next();
    }
    assert_eq!(users, 100_000);
    let (groups, _, _) = t.all("/v1.0/groups?$select=id,displayName&$top=999").await;
    let listed = started.elapsed();
    let mut memberships = 0;
    for g in &groups {
        let (m, _, _) = t
            .all(&format!(
                "/v1.0/groups/{}/members?$select=id&$top=999",
                g["id"].as_str().unwrap()
            ))
            .await;
        memberships += m.len();
    }
    assert_eq!(memberships, d.memberships.len());
    let members = started.elapsed() - listed;
    let started = std::time::Instant::now();
    let (all, _) = round(&t, "/v1.0/groups/delta?$select=displayName,members").await;
    assert_eq!(all.iter().filter(|o| o.get("displayName").is_some()).count(), 5_000);
    let delta = started.elapsed();
    let calls = t.sim.lock().graph_calls();
    eprintln!(
        "built in {built:?}; users+groups listed in {listed:?}; {memberships} memberships in {members:?}; \
         initial groups delta in {delta:?}; {calls} Graph calls"
    );
}
