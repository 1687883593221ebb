//! The kit against a tiny vendor: every fault kind as a client sees it (over HTTP with
//! `reqwest`), rule counting, throttling, the request log and the four paging styles.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::*;

/// A vendor whose error bodies name the status, so tests can tell who answered.
struct Demo;

impl Vendor for Demo {
    fn error(&self, _: &Parts, status: StatusCode) -> Response {
        errors::json(status, "application/json", &json!({"error": status.as_u16()}))
    }

    fn expired_token(&self, _: &Parts) -> Response {
        errors::json(
            StatusCode::UNAUTHORIZED,
            "application/json",
            &json!({"error": "token expired"}),
        )
    }

    fn rate_limited(&self, req: &Parts, limit: &RateLimited) -> Response {
        let mut r = self.error(req, StatusCode::TOO_MANY_REQUESTS);
        r.headers_mut().insert("x-ratelimit-limit", limit.capacity.into());
        r
    }
}

#[derive(Clone)]
struct DemoState {
    writes: Arc<AtomicU64>,
    sealer: Sealer,
}

const ITEMS: u32 = 10;

/// Offset paging, Bitbucket-style.
async fn offset_items(Query(q): Query<HashMap<String, String>>, fault: PageFault) -> Response {
    let off = Offset::new(
        q.get("start").map(String::as_str),
        q.get("limit").map(String::as_str),
        3,
        100,
    );
    let page = off.page(0..ITEMS, &fault);
    axum::Json(json!({
        "values": page.items, "start": off.start(), "isLastPage": page.next.is_none(), "nextPageStart": page.next,
    }))
    .into_response()
}

/// Keyed cursors in `Link` headers, Okta-style.
async fn linked_items(State(d): State<DemoState>, uri: Uri, headers: HeaderMap, fault: PageFault) -> Response {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let after = query.iter().find(|(k, _)| k == "after").map(|(_, v)| v.as_str());
    let Ok(here) = Cursor::<String>::from_param(&d.sealer, after) else {
        return (StatusCode::BAD_REQUEST, "invalid cursor").into_response();
    };
    let keys = (0..ITEMS).map(|i| format!("k{i:02}"));
    let rest = keys
        .filter(|k| here.after.as_ref().is_none_or(|a| k > a))
        .map(|k| (k.clone(), k));
    let page = keyed_page(&here, 3, rest, &fault);
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let links = link_headers(
        &format!("http://{host}/linked"),
        &query,
        "after",
        page.next.as_ref(),
        &d.sealer,
    );
    let mut r = axum::Json(page.items).into_response();
    for l in links {
        r.headers_mut().append("link", l);
    }
    r
}

/// Page tokens, Google-style.
async fn token_items(
    State(d): State<DemoState>,
    Query(q): Query<HashMap<String, String>>,
    fault: PageFault,
) -> Response {
    let Ok(here) = Cursor::<u32>::from_param(&d.sealer, q.get("pageToken").map(String::as_str)) else {
        return (StatusCode::BAD_REQUEST, "invalid page token").into_response();
    };
    let rest = (0..ITEMS).filter(|i| here.after.is_none_or(|a| *i > a)).map(|i| (i, i));
    let page = keyed_page(&here, 4, rest, &fault);
    axum::Json(json!({"items": page.items, "nextPageToken": page.next.map(|c| c.token(&d.sealer))})).into_response()
}

async fn write(State(d): State<DemoState>) -> Response {
    d.writes.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"written": true, "padding": "x".repeat(64)})).into_response()
}

struct Rig {
    server: Server,
    faults: Faults,
    throttle: Throttle,
    writes: Arc<AtomicU64>,
    http: reqwest::Client,
}

impl Rig {
    async fn new() -> Rig {
        let faults = Faults::new();
        let throttle = Throttle::new(RouteMatch::Not(Box::new(RouteMatch::path("/health"))));
        let state = DemoState {
            writes: Arc::default(),
            sealer: Sealer::new(),
        };
        let vendor: Arc<dyn Vendor> = Arc::new(Demo);
        let router = Router::new()
            .route("/offset", get(offset_items))
            .route("/linked", get(linked_items))
            .route("/tokens", get(token_items))
            .route("/write", post(write))
            .route("/health", get(|| async { "ok" }))
            .with_state(state.clone())
            .layer(faults.layer(vendor.clone()))
            .layer(throttle.layer(vendor));
        let server = Server::start(([127, 0, 0, 1], 0).into(), router).await.unwrap();
        Rig {
            server,
            faults,
            throttle,
            writes: state.writes,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.server.url())
        }
    }

    async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.http.get(self.url(path)).send().await
    }

    async fn status(&self, path: &str) -> u16 {
        self.get(path).await.unwrap().status().as_u16()
    }

    async fn post(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.http.post(self.url(path)).send().await
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}

async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn status_faults_answer_in_the_vendors_words() {
    let rig = Rig::new().await;
    for code in [500, 502, 503] {
        rig.faults.add(FaultRule::new(Fault::status(code)));
        let r = rig.get("/offset").await.unwrap();
        assert_eq!(r.status().as_u16(), code);
        assert!(r.headers().get("retry-after").is_none());
        assert_eq!(json_of(r).await, json!({"error": code}));
    }
    rig.faults.add(FaultRule::new(Fault::throttled(Some(7))));
    let r = rig.get("/offset").await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    rig.faults.add(FaultRule::new(Fault::throttled(None)));
    let r = rig.get("/offset").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none(), "429 without Retry-After");
    rig.faults.add(FaultRule::new(Fault::Status {
        status: StatusCode::SERVICE_UNAVAILABLE,
        retry_after: Some(2),
    }));
    let r = rig.get("/offset").await.unwrap();
    assert_eq!(
        (r.status().as_u16(), &r.headers()["retry-after"]),
        (503, &"2".parse().unwrap())
    );
    assert_eq!(rig.status("/offset").await, 200, "every rule was used up");

    let r = {
        rig.faults.add(FaultRule::new(Fault::ExpiredToken));
        rig.get("/offset").await.unwrap()
    };
    assert_eq!(r.status(), 401);
    assert_eq!(json_of(r).await, json!({"error": "token expired"}));

    rig.faults
        .add(FaultRule::new(Fault::WrongContentType).on(Method::POST, RouteMatch::path("/write")));
    let r = rig.post("/write").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let text = r.text().await.unwrap();
    assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(rig.writes(), 0, "a page in front of the API serves nothing");
}

#[tokio::test]
async fn a_rule_on_writes_fails_every_write_method_and_no_read() {
    let rig = Rig::new().await;
    let rule = rig.faults.add(
        FaultRule::new(Fault::status(503))
            .writes(RouteMatch::Any)
            .times(Times::Always),
    );
    assert_eq!(rig.status("/offset").await, 200, "a read is not a write");
    assert_eq!(rig.post("/write").await.unwrap().status(), 503);
    let put = rig.http.put(rig.url("/write")).send().await.unwrap();
    assert_eq!(
        put.status(),
        503,
        "any write method, whatever the route answers it with"
    );
    assert_eq!(rig.faults.fired(rule), 2);
    assert_eq!(rig.writes(), 0, "nothing was served");
}

#[tokio::test]
async fn skip_first_times_and_methods_are_honoured() {
    let rig = Rig::new().await;
    let rule = rig.faults.add(
        FaultRule::new(Fault::status(500))
            .on(Method::GET, RouteMatch::path("/offset"))
            .skip_first(2)
            .times(Times::Count(2)),
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(rig.status("/offset").await);
        // Other routes and methods are not counted.
        assert_eq!(rig.status("/tokens").await, 200);
        assert_eq!(rig.post("/write").await.unwrap().status(), 200);
    }
    assert_eq!(statuses, [200, 200, 500, 500, 200, 200]);
    assert_eq!(rig.faults.fired(rule), 2);

    rig.faults.clear();
    let every = rig
        .faults
        .add(FaultRule::new(Fault::status(503)).times(Times::Every(3)));
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(rig.status("/offset").await);
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200]);
    rig.faults.remove(every);
    assert_eq!(rig.faults.fired(every), 0, "removed");

    // Always, until removed; an earlier rule that is due wins, the later one waits its turn.
    let always = rig.faults.add(FaultRule::new(Fault::status(502)).times(Times::Always));
    assert_eq!(rig.status("/offset").await, 502);
    assert_eq!(rig.status("/offset").await, 502);
    let once = rig.faults.add(FaultRule::new(Fault::status(500)));
    assert_eq!(rig.status("/offset").await, 502);
    rig.faults.remove(always);
    assert_eq!(
        rig.status("/offset").await,
        500,
        "the later rule was passed over, not used up"
    );
    assert_eq!(rig.faults.fired(once), 1);
    assert_eq!(rig.status("/offset").await, 200);
}

#[test]
fn routes_match_by_pattern_prefix_query_and_negation() {
    let uri = |s: &str| s.parse::<Uri>().unwrap();
    let members = uri("/rest/api/1.0/admin/groups/more-members?context=dev%20ops&limit=25");
    assert!(RouteMatch::Any.matches(&members));
    assert!(RouteMatch::path("/rest/api/1.0/admin/groups/more-members").matches(&members));
    assert!(RouteMatch::path("/rest/api/*/admin/groups/more-members").matches(&members));
    assert!(RouteMatch::path("/rest/api/*/admin/**").matches(&members));
    assert!(RouteMatch::path("/rest/api/1.0/admin/groups/more-members/**").matches(&members));
    assert!(!RouteMatch::path("/rest/api/1.0/admin/groups").matches(&members));
    assert!(!RouteMatch::path("/rest/api/*/admin/users/more-members").matches(&members));
    assert!(RouteMatch::prefix("/rest/api/1.0/admin/groups").matches(&members));
    assert!(!RouteMatch::prefix("/rest/api/latest").matches(&members));
    assert!(RouteMatch::contains("/groups/more").matches(&members));
    assert!(
        RouteMatch::contains("context=dev ops").matches(&members),
        "the query, decoded"
    );
    assert!(RouteMatch::Not(Box::new(RouteMatch::contains("oauth2"))).matches(&members));
    assert!(!RouteMatch::Not(Box::new(RouteMatch::Any)).matches(&members));
}

#[tokio::test]
async fn a_reset_before_serving_fails_the_request_and_serves_nothing() {
    let rig = Rig::new().await;
    rig.faults
        .add(FaultRule::new(Fault::Reset(Cut::BeforeServing)).on(Method::POST, RouteMatch::path("/write")));
    let e = rig.post("/write").await.unwrap_err();
    assert!(e.is_request(), "{e:?}");
    assert!(
        format!("{e:?}").to_lowercase().contains("reset"),
        "a reset, not a clean close: {e:?}"
    );
    assert_eq!(rig.writes(), 0);
    assert_eq!(rig.post("/write").await.unwrap().status(), 200, "served again");
    assert_eq!(rig.writes(), 1);
}

#[tokio::test]
async fn a_reset_after_serving_loses_the_answer_of_a_write_that_happened() {
    let rig = Rig::new().await;
    rig.faults
        .add(FaultRule::new(Fault::Reset(Cut::AfterServing)).on(Method::POST, RouteMatch::path("/write")));
    assert!(rig.post("/write").await.is_err());
    assert_eq!(rig.writes(), 1, "served, unanswered");
}

#[tokio::test]
async fn a_cut_mid_body_gives_the_headers_and_fails_the_body() {
    let rig = Rig::new().await;
    rig.faults
        .add(FaultRule::new(Fault::Reset(Cut::MidBody)).on(Method::POST, RouteMatch::path("/write")));
    let r = rig.post("/write").await.unwrap();
    assert_eq!(r.status(), 200);
    let announced: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert!(announced > 60);
    assert!(r.bytes().await.is_err(), "the body stops short of its length");
    assert_eq!(rig.writes(), 1);
}

#[tokio::test]
async fn a_hang_outlasts_the_client_timeout_and_ends_with_the_server() {
    let rig = Rig::new().await;
    rig.faults
        .add(FaultRule::new(Fault::Hang(Duration::from_secs(30))).times(Times::Always));
    let started = Instant::now();
    let e = rig
        .http
        .get(rig.url("/offset"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A request held when the simulator stops fails then, not 30 s later.
    let url = rig.url("/offset");
    let held = tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    drop(rig);
    let outcome = tokio::time::timeout(Duration::from_secs(10), held).await;
    assert!(matches!(outcome, Ok(Ok(Err(_)))), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_truncated_body_is_a_complete_message_that_does_not_parse() {
    let rig = Rig::new().await;
    let whole = rig.get("/tokens").await.unwrap().text().await.unwrap();
    rig.faults
        .add(FaultRule::new(Fault::TruncatedBody).route(RouteMatch::prefix("/tokens")));
    let r = rig.get("/tokens").await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(text.len(), whole.len() / 2);
    assert!(whole.starts_with(&text));
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

/// Follows offset pages from the first; gives each page's (start, item count).
async fn walk_offsets(rig: &Rig, max_pages: usize) -> (Vec<u32>, Vec<(u64, usize)>) {
    let (mut items, mut pages) = (Vec::new(), Vec::new());
    let mut next = Some(0u64);
    while let Some(start) = next {
        if pages.len() == max_pages {
            break;
        }
        let v = json_of(rig.get(&format!("/offset?start={start}")).await.unwrap()).await;
        let values: Vec<u32> = serde_json::from_value(v["values"].clone()).unwrap();
        pages.push((start, values.len()));
        items.extend(values);
        next = v["nextPageStart"].as_u64();
        assert_eq!(v["isLastPage"], next.is_none());
    }
    (items, pages)
}

#[tokio::test]
async fn an_empty_offset_page_leads_on_without_losing_or_repeating_anything() {
    let rig = Rig::new().await;
    rig.faults.add(FaultRule::new(Fault::EmptyPage).skip_first(1));
    let (items, pages) = walk_offsets(&rig, 100).await;
    assert_eq!(items, (0..ITEMS).collect::<Vec<_>>());
    assert_eq!(pages[1].1, 0, "the second page is empty: {pages:?}");
    let starts: BTreeSet<u64> = pages.iter().map(|p| p.0).collect();
    assert_eq!(starts.len(), pages.len(), "no cursor comes twice: {pages:?}");
    assert!(pages[2].0 >= Offset::GAP as u64);
    assert!(
        pages.iter().all(|p| p.0 < i32::MAX as u64),
        "indices fit Bitbucket's int"
    );
}

#[tokio::test]
async fn a_looping_offset_cursor_leads_back_to_the_first_page() {
    let rig = Rig::new().await;
    rig.faults.add(FaultRule::new(Fault::LoopingCursor).skip_first(2));
    let (items, pages) = walk_offsets(&rig, 100).await;
    assert_eq!(pages.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 3, 6, 0, 3, 6, 9]);
    assert_eq!(items.len(), 19, "a naive client reads the first three pages twice");

    rig.faults
        .add(FaultRule::new(Fault::LoopingCursor).skip_first(1).times(Times::Always));
    let (_, pages) = walk_offsets(&rig, 20).await;
    assert_eq!(pages.len(), 20, "always looping never ends: {pages:?}");
}

/// The `rel="next"` URL of a `Link` answer.
fn next_link(r: &reqwest::Response) -> Option<String> {
    r.headers().get_all("link").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let (url, rel) = v.split_once(">; ")?;
        (rel == "rel=\"next\"").then(|| url.trim_start_matches('<').to_string())
    })
}

/// Follows `Link` headers from the first page; gives the items and the URLs fetched.
async fn walk_links(rig: &Rig, max_pages: usize) -> (Vec<String>, Vec<String>) {
    let (mut items, mut urls) = (Vec::new(), Vec::new());
    let mut next = Some(rig.url("/linked?limit=3"));
    while let Some(url) = next {
        if urls.len() == max_pages {
            break;
        }
        let r = rig.get(&url).await.unwrap();
        assert_eq!(r.status(), 200);
        next = next_link(&r);
        let page: Vec<String> = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        items.extend(page);
        urls.push(url);
    }
    (items, urls)
}

#[tokio::test]
async fn link_header_paging_with_an_empty_page_and_a_loop() {
    let rig = Rig::new().await;
    let (items, urls) = walk_links(&rig, 100).await;
    assert_eq!(items.len(), ITEMS as usize);
    assert_eq!(urls.len(), 4);
    let r = rig.get("/linked?limit=3").await.unwrap();
    let links: Vec<&str> = r
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(links[0], format!("<{}/linked?limit=3>; rel=\"self\"", rig.server.url()));
    assert!(links[1].contains("/linked?limit=3&after="), "{links:?}");

    rig.faults.add(FaultRule::new(Fault::EmptyPage).skip_first(1));
    let (got, urls) = walk_links(&rig, 100).await;
    assert_eq!(got, items, "nothing lost");
    assert_eq!(urls.len(), 5);
    assert_eq!(
        urls.iter().collect::<BTreeSet<_>>().len(),
        5,
        "the empty page's link is new"
    );

    rig.faults.add(FaultRule::new(Fault::LoopingCursor).skip_first(2));
    let (_, urls) = walk_links(&rig, 100).await;
    assert_eq!(urls[3], rig.url("/linked?limit=3"), "back to the first page's own URL");
    assert_eq!(urls.len(), 7);
}

#[tokio::test]
async fn page_token_paging_with_an_empty_page_and_a_loop() {
    let rig = Rig::new().await;
    let walk = |max: usize| {
        let rig = &rig;
        async move {
            let (mut items, mut tokens) = (Vec::<u32>::new(), Vec::new());
            let mut token: Option<String> = None;
            for _ in 0..max {
                let path = match &token {
                    Some(t) => format!("/tokens?pageToken={t}"),
                    None => "/tokens".into(),
                };
                let v = json_of(rig.get(&path).await.unwrap()).await;
                items.extend(serde_json::from_value::<Vec<u32>>(v["items"].clone()).unwrap());
                token = v["nextPageToken"].as_str().map(str::to_string);
                match &token {
                    Some(t) => tokens.push(t.clone()),
                    None => break,
                }
            }
            (items, tokens)
        }
    };
    let (items, tokens) = walk(100).await;
    assert_eq!(items, (0..ITEMS).collect::<Vec<_>>());
    assert_eq!(tokens.len(), 2);

    rig.faults.add(FaultRule::new(Fault::EmptyPage));
    let (got, tokens) = walk(100).await;
    assert_eq!(got, items);
    assert_eq!(tokens.len(), 3);

    rig.faults
        .add(FaultRule::new(Fault::LoopingCursor).skip_first(1).times(Times::Always));
    let (_, tokens) = walk(10).await;
    assert_eq!(tokens.len(), 10);
    assert_eq!(tokens[1], tokens[3], "the same pages come round again");

    rig.faults.clear();
    assert_eq!(rig.status("/tokens?pageToken=forged").await, 400);
}

#[tokio::test]
async fn a_paging_fault_waits_for_an_answer_that_is_a_page() {
    let rig = Rig::new().await;
    let rule = rig.faults.add(FaultRule::new(Fault::EmptyPage));
    assert_eq!(rig.post("/write").await.unwrap().status(), 200);
    assert_eq!(rig.faults.fired(rule), 0, "a write is no page");
    let v = json_of(rig.get("/offset").await.unwrap()).await;
    assert_eq!(v["values"], json!([]));
    assert_eq!(rig.faults.fired(rule), 1);
}

#[tokio::test]
async fn the_token_bucket_answers_429_with_the_vendors_headers() {
    let rig = Rig::new().await;
    rig.throttle.limit(0.5, 2);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(rig.status("/offset").await);
    }
    assert_eq!(statuses, [200, 200, 429]);
    let r = rig.get("/offset").await.unwrap();
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(r.headers()["x-ratelimit-limit"], "2");
    assert_eq!(json_of(r).await, json!({"error": 429}));
    assert_eq!(rig.status("/health").await, 200, "outside the limit's scope");
    rig.throttle.unlimited();
    assert_eq!(rig.status("/offset").await, 200);
}

#[test]
fn the_token_bucket_refills_over_time() {
    let mut b = TokenBucket::new(2.0, 1);
    let t0 = Instant::now();
    assert_eq!(b.take(t0), Ok(()));
    let refused = b.take(t0).unwrap_err();
    assert_eq!((refused.retry_after, refused.capacity), (1, 1));
    assert_eq!(b.take(t0 + Duration::from_millis(500)), Ok(()));
    let mut stuck = TokenBucket::new(0.0, 1);
    assert_eq!(stuck.take(t0), Ok(()));
    assert_eq!(stuck.take(t0).unwrap_err().retry_after, 86_400, "bounded");
}

#[tokio::test]
async fn the_log_records_every_request_and_who_answered() {
    let rig = Rig::new().await;
    rig.faults
        .add(FaultRule::new(Fault::Reset(Cut::BeforeServing)).on(Method::POST, RouteMatch::Any));
    rig.faults
        .add(FaultRule::new(Fault::status(503)).on(Method::GET, RouteMatch::path("/tokens")));
    let _ = rig.post("/write").await;
    let _ = rig.get("/tokens?maxResults=2").await;
    rig.throttle.limit(1.0, 1);
    let _ = rig.get("/offset").await;
    let _ = rig.get("/offset").await;
    let log = rig.server.log().entries();
    let summary: Vec<(String, String, Option<u16>, Outcome)> = log
        .into_iter()
        .map(|l| (l.method.to_string(), l.target, l.status.map(|s| s.as_u16()), l.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "POST".into(),
                "/write".into(),
                None,
                Outcome::Injected(Fault::Reset(Cut::BeforeServing))
            ),
            (
                "GET".into(),
                "/tokens?maxResults=2".into(),
                Some(503),
                Outcome::Injected(Fault::status(503))
            ),
            ("GET".into(), "/offset".into(), Some(200), Outcome::Served),
            ("GET".into(), "/offset".into(), Some(429), Outcome::RateLimited),
        ]
    );
    rig.server.log().clear();
    assert!(rig.server.log().entries().is_empty());
}

#[test]
fn offsets_parse_like_bitbucket_and_sealed_tokens_resist_tampering() {
    let o = Offset::new(Some("x"), Some("5000"), 25, 1000);
    assert_eq!((o.start(), o.limit()), (0, 1000));
    let o = Offset::new(None, Some("0"), 25, 1000);
    assert_eq!(o.limit(), 1);
    let o = Offset::new(Some("18446744073709551615"), None, 25, 1000);
    let p = o.page(0..10, &PageFault::none());
    assert!(p.items.is_empty() && p.next.is_none(), "no overflow past the end");

    let all = Offset::exact(3, None).page(0..5000, &PageFault::none());
    assert_eq!(
        (all.items.len(), all.items[0], all.next),
        (4997, 3, None),
        "no limit: all the rest"
    );
    let some = Offset::exact(4990, Some(5)).page(0..5000, &PageFault::none());
    assert_eq!(
        (some.items, some.next),
        (vec![4990, 4991, 4992, 4993, 4994], Some(4995))
    );

    let (a, b) = (Sealer::new(), Sealer::new());
    let token = a.seal(&Cursor::after("k1".to_string()));
    assert_eq!(a.unseal::<Cursor<String>>(&token), Some(Cursor::after("k1".into())));
    assert_eq!(b.unseal::<Cursor<String>>(&token), None, "another simulator's token");
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(a.unseal::<Cursor<String>>(&String::from_utf8(tampered).unwrap()), None);
    assert_eq!(a.unseal::<Cursor<String>>("%%%"), None);
    assert_eq!(
        Cursor::<String>::start().param(&a),
        None,
        "the first page names no cursor"
    );
}

#[tokio::test]
async fn a_handler_sees_the_address_the_client_connects_from() {
    let router = Router::new().route(
        "/who",
        get(|req: axum::extract::Request| async move {
            peer(req.extensions()).map_or_else(|| "unknown".to_string(), |a| a.ip().to_string())
        }),
    );
    let server = Server::start(([127, 0, 0, 1], 0).into(), router).await.unwrap();
    let who = reqwest::get(format!("{}/who", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(who, "127.0.0.1");
    // Without the kit's server there is no connection to ask.
    assert_eq!(peer(&axum::http::Extensions::new()), None);
}

/// Sends `n` GETs of `/health` at once; their statuses and the time they all took.
async fn burst(rig: &Rig, n: usize) -> (Vec<u16>, Vec<Option<String>>, Duration) {
    let t = Instant::now();
    let answers = futures_util::future::join_all((0..n).map(|_| rig.get("/health"))).await;
    let elapsed = t.elapsed();
    let (mut statuses, mut retry_after) = (Vec::new(), Vec::new());
    for a in answers {
        let a = a.unwrap();
        statuses.push(a.status().as_u16());
        retry_after.push(
            a.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        );
    }
    (statuses, retry_after, elapsed)
}

#[tokio::test]
async fn latency_and_jitter_delay_every_call_by_their_settings() {
    let rig = Rig::new().await;
    let t = Instant::now();
    assert_eq!(rig.status("/health").await, 200);
    assert!(
        t.elapsed() < Duration::from_millis(40),
        "no latency until set: {:?}",
        t.elapsed()
    );
    rig.server.pace().set(PaceSettings {
        latency: Duration::from_millis(60),
        jitter: Duration::from_millis(40),
        capacity: None,
    });
    let mut took = Vec::new();
    for _ in 0..6 {
        let t = Instant::now();
        assert_eq!(rig.status("/health").await, 200);
        took.push(t.elapsed());
    }
    assert!(took.iter().all(|d| *d >= Duration::from_millis(60)), "{took:?}");
    assert!(took.iter().all(|d| *d < Duration::from_millis(300)), "{took:?}");
    // Jitter varies the calls: six draws of the same delay would be a fixed latency.
    let distinct: BTreeSet<u128> = took.iter().map(|d| d.as_millis() / 5).collect();
    assert!(distinct.len() > 1, "jitter never varied the latency: {took:?}");
    // Without a pool, calls at once overlap: ten take about one latency, not ten.
    let (statuses, _, elapsed) = burst(&rig, 10).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
}

#[tokio::test]
async fn past_its_pool_a_server_slows_down_then_answers_503_with_retry_after() {
    let rig = Rig::new().await;
    rig.server.pace().set(PaceSettings {
        latency: Duration::from_millis(100),
        jitter: Duration::ZERO,
        capacity: Some(Capacity { pool: 2, queue: 2 }),
    });
    // Four fit (two served, two queued): they take two latencies, the pool serving two at once.
    let (statuses, _, elapsed) = burst(&rig, 4).await;
    assert_eq!(statuses, vec![200; 4]);
    assert!(
        elapsed >= Duration::from_millis(200),
        "queued calls were not slowed: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(380), "{elapsed:?}");
    let counts = rig.server.pace().counts();
    assert_eq!((counts.served, counts.overloaded, counts.peak_in_flight), (4, 0, 4));
    // Seven at once: the three past the pool and the queue are refused at once with 503.
    let (statuses, retry_after, _) = burst(&rig, 7).await;
    let refused: Vec<usize> = (0..7).filter(|i| statuses[*i] == 503).collect();
    assert_eq!(refused.len(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 4, "{statuses:?}");
    assert!(
        refused.iter().all(|i| retry_after[*i].as_deref() == Some("1")),
        "{retry_after:?}"
    );
    assert_eq!(rig.server.pace().counts().overloaded, 3);
    let overloaded = rig
        .server
        .log()
        .entries()
        .into_iter()
        .filter(|l| l.outcome == Outcome::Overloaded && l.status == Some(StatusCode::SERVICE_UNAVAILABLE))
        .count();
    assert_eq!(overloaded, 3, "the log names the capacity as who answered");
    // Lifting the capacity serves them all again.
    rig.server.pace().set(PaceSettings::default());
    let (statuses, _, _) = burst(&rig, 7).await;
    assert_eq!(statuses, vec![200; 7]);
}
