//! The admin pages (`/ui`) over HTTP, without a browser: login into a session, the CSRF and
//! origin checks on every change, the API's roles (a viewer sees no control and is refused
//! anyway), the allow-list, escaping of what an IdP sends, and the security headers.
//!
//! `ui_browser::…` (ignored; `.ci/run` runs it) drives the same pages in Chromium.

use crate::common;

use common::api::ApiWorld;
use common::changes::IdpEdits;
use common::entra::{EntraWorld, tenant};
use common::world::bitbucket;
use reqwest::header::{HeaderMap, SET_COOKIE};
use roster_sim::directory::Directory;
use serde_json::json;

/// A browser's part for the tests: its cookies and the session's CSRF token.
pub struct Browser {
    pub base: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
    pub csrf: String,
}

/// The value of `name="…" value="…"` in `html`.
pub fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// GET `path`: status, headers, body.
    pub async fn get(&mut self, path: &str) -> (u16, HeaderMap, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        self.keep(&headers);
        let body = resp.text().await.unwrap();
        if let Some(c) = field(&body, "csrf_token") {
            self.csrf = c;
        }
        (status, headers, body)
    }

    /// POST a form to `path` with extra headers, as a page of Roster's would (same origin).
    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        self.keep(&headers);
        (status, headers, resp.text().await.unwrap())
    }

    /// POST a form with the session's CSRF token, from the same origin.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, HeaderMap, String) {
        let csrf = self.csrf.clone();
        let mut with = vec![("csrf_token", csrf.as_str())];
        with.extend_from_slice(form);
        self.post_with(path, &with, &[("sec-fetch-site", "same-origin")]).await
    }

    /// Logs in with `token`; panics unless it works.
    pub async fn login(&mut self, token: &str) {
        let (status, _, page) = self.get("/ui/login").await;
        assert_eq!(status, 200, "{page}");
        let login_csrf = field(&page, "login_csrf").expect("the login form has its CSRF field");
        let (status, headers, body) = self
            .post_with(
                "/ui/login",
                &[("token", token), ("login_csrf", &login_csrf), ("next", "/ui")],
                &[("sec-fetch-site", "same-origin")],
            )
            .await;
        assert_eq!(status, 303, "{body}");
        assert_eq!(headers["location"], "/ui");
        let (status, _, _) = self.get("/ui").await;
        assert_eq!(status, 200);
    }
}

async fn world(users: usize, extra: &str) -> (ApiWorld, Directory) {
    let d = Directory::generate(users, (users / 10).max(2), 2);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    (ApiWorld::start(w, extra).await, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_opens_a_fresh_session_and_every_change_needs_its_csrf_token() {
    let (w, _) = world(12, "").await;
    let mut b = Browser::new(&w.base);
    // Not logged in: the pages send to the login form, which remembers where to come back.
    let (status, headers, _) = b.get("/ui/runs?state=held").await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/ui/login?next=%2Fui%2Fruns%3Fstate%3Dheld");

    let (status, headers, page) = b.get("/ui/login").await;
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(page.contains("<main") && page.contains("<h1>Log in</h1>"), "{page}");
    let login_csrf = field(&page, "login_csrf").unwrap();

    // Login CSRF: the form's value must match the cookie the form came with.
    let (status, _, _) = b
        .post_with(
            "/ui/login",
            &[("token", &w.admin), ("login_csrf", "forged"), ("next", "/ui")],
            &[],
        )
        .await;
    assert_eq!(status, 403, "a login whose CSRF value is not the form's");
    assert!(b.cookie("__Host-roster_session").is_none());
    // Another site posting the login form is refused before the token is looked at.
    let (status, _, _) = b
        .post_with(
            "/ui/login",
            &[("token", &w.admin), ("login_csrf", &login_csrf)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(status, 403);
    let (_, _, page) = b.get("/ui/login").await;
    let login_csrf = field(&page, "login_csrf").unwrap();
    let (status, _, page) = b
        .post_with(
            "/ui/login",
            &[("token", "roster_0000"), ("login_csrf", &login_csrf)],
            &[],
        )
        .await;
    assert_eq!(status, 401);
    assert!(page.contains("unknown or revoked"), "{page}");

    // A good login: a session cookie bound to this origin, not readable by scripts.
    let (_, _, page) = b.get("/ui/login").await;
    let login_csrf = field(&page, "login_csrf").unwrap();
    let (status, headers, _) = b
        .post_with(
            "/ui/login",
            &[
                ("token", &w.operator),
                ("login_csrf", &login_csrf),
                ("next", "/ui/runs"),
            ],
            &[("origin", w.base.as_str())],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/ui/runs");
    let set: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set.iter().find(|c| c.starts_with("__Host-roster_session=")).unwrap();
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(session.contains(attr), "{session}");
    }
    let first_session = b.cookie("__Host-roster_session").unwrap();
    let (status, headers, page) = b.get("/ui/runs").await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    assert!(page.contains("Start sync"), "an operator may start a sync");
    assert!(!b.csrf.is_empty());

    // Changes without the token, with another, or from another site are refused; no run starts.
    let no_token = b
        .post_with("/ui/runs", &[("mode", "full")], &[("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(no_token.0, 403);
    let wrong = b
        .post_with(
            "/ui/runs",
            &[("csrf_token", "0".repeat(64).as_str()), ("mode", "full")],
            &[],
        )
        .await;
    assert_eq!(wrong.0, 403);
    let csrf = b.csrf.clone();
    let cross = b
        .post_with(
            "/ui/runs",
            &[("csrf_token", csrf.as_str()), ("mode", "full")],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.0, 403);
    let other_origin = b
        .post_with(
            "/ui/runs",
            &[("csrf_token", csrf.as_str()), ("mode", "full")],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(other_origin.0, 403);
    assert!(w.world.store.runs(10).unwrap().is_empty(), "nothing was started");

    // With the token, as htmx sends it (header) or as a form does (field), the change is made.
    let (status, headers, body) = b.post("/ui/runs", &[("mode", "dry-run")]).await;
    assert_eq!(status, 303, "{body}");
    let run_page = headers["location"].to_str().unwrap().to_string();
    assert!(run_page.starts_with("/ui/runs/"), "{run_page}");
    let id: i64 = run_page.trim_start_matches("/ui/runs/").parse().unwrap();
    let run = w.wait_run(id).await;
    assert_eq!(run["state"], "planned", "{run}");
    w.assert_audited(&["ui.login", "run.start"]).await;

    // A new login is a new session; logging out ends it on the server.
    let mut again = Browser::new(&w.base);
    again.login(&w.operator).await;
    assert_ne!(again.cookie("__Host-roster_session").unwrap(), first_session);
    let (status, headers, _) = b.post("/ui/logout", &[]).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/ui/login");
    let mut replay = Browser::new(&w.base);
    replay.cookies.push(("__Host-roster_session".into(), first_session));
    assert_eq!(replay.get("/ui").await.0, 303, "a logged-out session opens nothing");
    assert_eq!(again.get("/ui").await.0, 200, "the other session lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_is_slowed_down_per_address() {
    let (w, _) = world(12, "").await;
    let mut b = Browser::new(&w.base);
    for _ in 0..10 {
        let (_, _, page) = b.get("/ui/login").await;
        let c = field(&page, "login_csrf").unwrap();
        let (status, _, _) = b
            .post_with("/ui/login", &[("token", "roster_guess"), ("login_csrf", &c)], &[])
            .await;
        assert_eq!(status, 401);
    }
    let (_, _, page) = b.get("/ui/login").await;
    let c = field(&page, "login_csrf").unwrap();
    let (status, headers, page) = b
        .post_with("/ui/login", &[("token", &w.admin), ("login_csrf", &c)], &[])
        .await;
    assert_eq!(status, 429, "{page}");
    assert!(headers.contains_key("retry-after"));
    assert!(page.contains("too many failed logins"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_control_and_is_refused_anyway() {
    let (w, d) = world(30, "").await;
    w.run(json!({})).await;
    for u in d.users.iter().take(8) {
        w.world.idp.lock().hard_delete_user(&u.id);
    }
    let held = w.run(json!({"mode": "incremental"})).await;
    assert_eq!(held["state"], "held", "{held}");
    let plan_id = held["plan_id"].as_str().unwrap().to_string();
    let mut b = Browser::new(&w.base);
    b.login(&w.viewer).await;
    let (_, _, page) = b.get("/ui/runs").await;
    assert!(!page.contains("Start sync"), "{page}");
    let (status, _, page) = b.get(&format!("/ui/plans/{plan_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("deprovisioned"), "{page}");
    assert!(
        !page.contains("Approve and apply") && !page.contains(">Reject<"),
        "{page}"
    );
    assert!(!page.contains("/ui/tokens"), "no tokens entry for a viewer");
    // The server refuses what the page does not offer, with a valid session and CSRF token.
    let runs = w.world.store.runs(100).unwrap().len();
    assert_eq!(b.post("/ui/runs", &[("mode", "full")]).await.0, 403);
    let (_, plan) = w.get(&format!("/api/v1/plans/{plan_id}"), &w.viewer).await;
    let hash_value = plan["hash"].as_str().unwrap().to_string();
    assert_eq!(
        b.post(
            &format!("/ui/plans/{plan_id}/approve"),
            &[("hash", hash_value.as_str())]
        )
        .await
        .0,
        403
    );
    assert_eq!(b.post(&format!("/ui/plans/{plan_id}/reject"), &[]).await.0, 403);
    let held_run = held["id"].as_i64().unwrap();
    assert_eq!(b.post(&format!("/ui/runs/{held_run}/cancel"), &[]).await.0, 403);
    assert_eq!(b.get("/ui/tokens").await.0, 403);
    assert_eq!(b.post("/ui/tokens", &[("name", "x"), ("role", "admin")]).await.0, 403);
    assert_eq!(w.world.store.runs(100).unwrap().len(), runs, "nothing ran");
    let (_, plan) = w.get(&format!("/api/v1/plans/{plan_id}"), &w.viewer).await;
    assert_eq!(plan["state"], "held");

    // An operator may start runs but not approve, as in the API.
    let mut op = Browser::new(&w.base);
    op.login(&w.operator).await;
    let (_, _, page) = op.get(&format!("/ui/plans/{plan_id}")).await;
    assert!(!page.contains("Approve and apply"));
    assert_eq!(
        op.post(
            &format!("/ui/plans/{plan_id}/approve"),
            &[("hash", hash_value.as_str())]
        )
        .await
        .0,
        403
    );
    // A run that has ended cannot be cancelled: the page says so, as the API does (409).
    let (status, _, page) = op.post(&format!("/ui/runs/{held_run}/cancel"), &[]).await;
    assert_eq!(status, 409, "{page}");
    // The administrator approves exactly this plan, by its hash.
    let mut admin = Browser::new(&w.base);
    admin.login(&w.admin).await;
    let (_, _, page) = admin.get(&format!("/ui/plans/{plan_id}")).await;
    assert!(page.contains("Approve and apply"), "{page}");
    let (status, _, page) = admin
        .post(&format!("/ui/plans/{plan_id}/approve"), &[("hash", "0000000000")])
        .await;
    assert_eq!(status, 422, "another hash: {page}");
    let (status, headers, _) = admin
        .post(
            &format!("/ui/plans/{plan_id}/approve"),
            &[("hash", hash_value.as_str())],
        )
        .await;
    assert_eq!(status, 303);
    let applied = headers["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/ui/runs/")
        .parse::<i64>()
        .unwrap();
    assert_eq!(w.wait_run(applied).await["state"], "succeeded");
    w.assert_audited(&["plan.approve"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_from_an_idp_is_shown_as_text_and_no_secret_is_rendered() {
    let (w, d) = world(12, "").await;
    w.world.set_display_name(&d.users[0], "<script>alert(1)</script>");
    let run = w.run(json!({"mode": "dry-run"})).await;
    let plan_id = run["plan_id"].as_str().unwrap();
    let mut b = Browser::new(&w.base);
    b.login(&w.admin).await;
    let (status, _, page) = b.get(&format!("/ui/plans/{plan_id}")).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("<script>alert(1)"),
        "markup from the IdP reached the page raw"
    );
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{page}");
    // Every script on the page is a file of this origin: no inline script anywhere.
    for tag in page.split("<script").skip(1) {
        assert!(
            tag.trim_start().starts_with("src=\"/ui/assets/"),
            "inline script: {tag}"
        );
    }
    assert!(!page.contains(" style="), "inline styles break the CSP");
    // The target's credential is nowhere on the pages.
    let secret = common::entra::SECRET;
    for path in [
        "/ui",
        "/ui/runs",
        &format!("/ui/runs/{}", run["id"]),
        "/ui/audit",
        "/ui/tokens",
    ] {
        let (status, _, page) = b.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!page.contains(secret), "{path} shows the target's credential");
        assert!(
            !page.contains(&w.admin) && !page.contains(&w.viewer),
            "{path} shows a token"
        );
    }
    // Times are dates, never epoch milliseconds.
    let (_, _, page) = b.get("/ui/runs").await;
    let started = chrono::DateTime::parse_from_rfc3339(run["started_at"].as_str().unwrap())
        .expect("the API gives RFC 3339")
        .timestamp_millis()
        .to_string();
    assert!(!page.contains(&started), "epoch ms on the page");
    assert!(page.contains("<time datetime=\"20"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_applies_to_the_pages() {
    let (w, _) = world(12, "[api]\nallow_ips = [\"10.0.0.0/8\"]\n").await;
    let mut b = Browser::new(&w.base);
    let (status, _, page) = b.get("/ui/login").await;
    // The login form itself is open (it holds nothing), logging in and every page are not.
    assert_eq!(status, 200);
    let c = field(&page, "login_csrf").unwrap();
    let (status, _, page) = b
        .post_with("/ui/login", &[("token", &w.admin), ("login_csrf", &c)], &[])
        .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("allow-list"), "{page}");
    assert_eq!(b.get("/ui").await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assets_are_the_vendored_htmx_and_one_stylesheet_and_script() {
    let (w, _) = world(12, "").await;
    let mut b = Browser::new(&w.base);
    let (_, _, page) = b.get("/ui/login").await;
    let srcs: Vec<&str> = page
        .split("src=\"")
        .skip(1)
        .chain(page.split("href=\"").skip(1))
        .map(|s| &s[..s.find('"').unwrap()])
        .filter(|s| s.starts_with("/ui/assets/"))
        .collect();
    assert_eq!(srcs.len(), 3, "{srcs:?}");
    for src in srcs {
        let (status, headers, body) = b.get(src).await;
        assert_eq!(status, 200, "{src}");
        assert!(headers["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(!body.is_empty());
        if src.contains("htmx-2.0.11") {
            use sha2::Digest;
            // sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg, as npm gives it.
            assert_eq!(
                hex::encode(sha2::Sha384::digest(body.as_bytes())),
                "d8e6adcd0cb51fe65dfc822b8ebd5372e0c6a8b5de1e16e8a00c8963529d40c2a7af82d9db6937d4604b7582879958e0"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_elsewhere_than_loopback_can_be_allowed_explicitly() {
    let (w, _) = world(12, "[api]\nui_cookie = \"plain\"\n").await;
    let mut b = Browser::new(&w.base);
    let (_, headers, page) = b.get("/ui/login").await;
    let set = headers[SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("roster_login=") && !set.contains("Secure"), "{set}");
    let c = field(&page, "login_csrf").unwrap();
    let (status, headers, _) = b
        .post_with("/ui/login", &[("token", &w.viewer), ("login_csrf", &c)], &[])
        .await;
    assert_eq!(status, 303);
    let session = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("roster_session="))
        .unwrap()
        .to_string();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict") && !session.contains("Secure"));
    assert_eq!(b.get("/ui").await.0, 200);
}

/// The audit log as the API gives it, once `action` is in it (refusals are written in the
/// background).
async fn audit_with(w: &ApiWorld, action: &str) -> Vec<serde_json::Value> {
    for _ in 0..50 {
        let (_, audit) = w.get("/api/v1/audit?limit=1000", &w.admin).await;
        let entries = audit.as_array().unwrap().clone();
        if entries.iter().any(|e| e["action"] == action) {
            return entries;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{action} never reached the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_audited_without_the_token() {
    let (w, _) = world(12, "").await;
    let mut b = Browser::new(&w.base);
    let guess = "roster_this-is-the-guessed-token-text";
    for _ in 0..11 {
        let (_, _, page) = b.get("/ui/login").await;
        let c = field(&page, "login_csrf").unwrap();
        b.post_with("/ui/login", &[("token", guess), ("login_csrf", &c)], &[])
            .await;
    }
    let audit = audit_with(&w, "ui.login-throttled").await;
    let failed: Vec<_> = audit.iter().filter(|e| e["action"] == "ui.login-failed").collect();
    // Bounded as the API's refusals are: one entry per kind and address per window.
    assert_eq!(failed.len(), 1, "{audit:?}");
    assert_eq!(failed[0]["actor"], "anonymous");
    assert_eq!(failed[0]["origin"], "127.0.0.1");
    assert_eq!(failed[0]["subject"], "POST /ui/login");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(
        !text.contains("guessed-token"),
        "the token must never be audited: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_button_goes_away_with_the_run() {
    let (w, _) = world(60, "").await;
    // Slow enough that the run is seen in progress.
    w.world.bb.lock().set_rate_limit(20.0, 5);
    let mut op = Browser::new(&w.base);
    op.login(&w.operator).await;
    let (status, started) = w.post("/api/v1/runs", &w.operator, json!({})).await;
    assert_eq!(status, 202, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let mut seen_live = false;
    for _ in 0..200 {
        let (status, _, fragment) = op.get(&format!("/ui/runs/{id}/progress")).await;
        if status == 200 && fragment.contains("data-state=\"running\"") {
            assert!(fragment.contains("Cancel run"), "{fragment}");
            assert!(
                fragment.contains(&format!("action=\"/ui/runs/{id}/cancel\"")),
                "{fragment}"
            );
            seen_live = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen_live, "run {id} was never seen running");
    let ended = w.wait_run(id).await;
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let (status, _, fragment) = op.get(&format!("/ui/runs/{id}/progress")).await;
    assert_eq!(status, 286);
    assert!(!fragment.contains("Cancel run"), "{fragment}");
    let (_, _, page) = op.get(&format!("/ui/runs/{id}")).await;
    assert!(!page.contains("Cancel run"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_that_fired_are_on_the_dashboard_and_in_the_api() {
    let hooks = common::webhook::Receiver::start().await;
    let (w, d) = world(30, &format!("[[alert]]\nurl = \"{}\"\n", hooks.url)).await;
    let (status, none) = w.get("/api/v1/alerts", &w.viewer).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none, json!([]));
    w.run(json!({})).await;
    for u in d.users.iter().take(8) {
        w.world.idp.lock().hard_delete_user(&u.id);
    }
    let held = w.run(json!({"mode": "incremental"})).await;
    assert_eq!(held["state"], "held", "{held}");
    let plan_id = held["plan_id"].as_str().unwrap().to_string();
    let mut alert = json!(null);
    for _ in 0..50 {
        let (_, alerts) = w.get("/api/v1/alerts", &w.viewer).await;
        let held = alerts.as_array().unwrap().iter().find(|a| a["kind"] == "plan-held");
        alert = held.cloned().unwrap_or_default();
        if alert["delivery"] == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(alert["kind"], "plan-held", "{alert}");
    assert_eq!(alert["delivery"], "delivered", "the webhook got it: {alert}");
    assert!(alert["subject"].as_str().unwrap().contains(&plan_id), "{alert}");
    assert!(
        alert["message"].as_str().unwrap().contains("held for approval"),
        "{alert}"
    );
    let at = alert["at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "RFC 3339: {at}");
    let got = hooks.wait_count(1, std::time::Duration::from_secs(5)).await;
    assert!(got.iter().any(|v| v["event"] == "plan-held"), "{got:?}");
    // Without a session, no alerts.
    let (status, _) = w.get("/api/v1/alerts", "roster_nope").await;
    assert_eq!(status, 401);

    let mut b = Browser::new(&w.base);
    b.login(&w.viewer).await;
    let (_, _, page) = b.get("/ui").await;
    let section = &page[page.find("Alerts that fired").expect("the dashboard lists alerts")..];
    assert!(section.contains("plan-held") && section.contains(&plan_id), "{section}");
    assert!(section.contains("delivered"), "{section}");
}
