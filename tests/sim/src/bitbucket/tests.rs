//! Tests of the Bitbucket simulator over HTTP: its paging, error bodies and rate limit as
//! clients see them, and kit faults on its real routes.

use axum::http::Method;
use serde_json::{Value, json};

use super::*;
use crate::kit::{Cut, Fault as KitFault, Outcome};

const API: &str = "/rest/api/1.0";

struct T {
    sim: BitbucketSim,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl T {
    async fn new(state: BbState) -> T {
        T {
            sim: BitbucketSim::start(state).await,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    async fn send(&self, method: Method, path: &str, body: Option<&str>) -> reqwest::Result<Answer> {
        let mut r = self
            .http
            .request(method, self.url(path))
            .basic_auth("admin", Some("password"));
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let r = r.send().await?;
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            text,
            json,
        })
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await.unwrap()
    }
}

fn assert_error(a: &Answer, status: u16, exception: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.headers["content-type"], JSON, "{}", a.text);
    assert_eq!(a.json["errors"][0]["exceptionName"], exception, "{}", a.text);
    assert_eq!(a.json["errors"][0]["context"], Value::Null);
    assert!(a.json["errors"][0]["message"].is_string());
}

/// A group `team` with users m00..m{n-1}.
fn with_team(n: usize) -> BbState {
    let mut s = BbState::new();
    let names: Vec<String> = (0..n).map(|i| format!("m{i:02}")).collect();
    for n in &names {
        s.add_user(n, n, &format!("{n}@example.com"), true);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    s.add_group("team", &refs);
    s
}

const MEMBERS: &str = "/rest/api/1.0/admin/groups/more-members";

#[tokio::test]
async fn pages_follow_bitbucket_paging() {
    let t = T::new(with_team(60)).await;
    let a = t.get(&format!("{MEMBERS}?context=team")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.headers["content-type"], JSON);
    assert_eq!(
        (&a.json["size"], &a.json["limit"], &a.json["start"]),
        (&json!(25), &json!(25), &json!(0))
    );
    assert_eq!(
        (&a.json["isLastPage"], &a.json["nextPageStart"]),
        (&json!(false), &json!(25))
    );
    assert_eq!(a.json["filter"], Value::Null);
    let last = t.get(&format!("{MEMBERS}?context=team&start=50&limit=25")).await;
    assert_eq!(
        (&last.json["size"], &last.json["isLastPage"]),
        (&json!(10), &json!(true))
    );
    assert!(
        last.json.get("nextPageStart").is_none(),
        "only while isLastPage is false"
    );
    // Values that are not numbers get the defaults; the cap holds.
    let odd = t.get(&format!("{MEMBERS}?context=team&start=x&limit=5000")).await;
    assert_eq!((&odd.json["start"], &odd.json["limit"]), (&json!(0), &json!(1000)));
    let filtered = t.get(&format!("{API}/admin/users?filter=M0")).await;
    assert_eq!(filtered.json["size"], 10, "case-insensitive");
    assert_eq!(filtered.json["filter"], "M0");
    assert_eq!(t.sim.lock().calls["GET /admin/groups/more-members"], 3);
}

#[tokio::test]
async fn errors_and_malformed_requests_get_bitbucket_bodies() {
    let t = T::new(BbState::new()).await;
    let anon = t.http.get(t.url(&format!("{API}/admin/users"))).send().await.unwrap();
    let a = Answer {
        status: anon.status().as_u16(),
        headers: anon.headers().clone(),
        json: serde_json::from_str(&anon.text().await.unwrap()).unwrap(),
        text: String::new(),
    };
    assert_error(
        &a,
        401,
        "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
    );
    assert_error(
        &t.get(&format!("{API}/admin/nothing")).await,
        404,
        "com.atlassian.bitbucket.NoSuchEntityException",
    );
    let bad = "com.atlassian.bitbucket.validation.ArgumentValidationException";
    for (method, path, body) in [
        (Method::PUT, format!("{API}/admin/users"), Some("{not json")),
        (Method::POST, format!("{API}/admin/users/add-groups"), Some("[]")),
        (Method::POST, format!("{API}/admin/users?name=%ZZ%FF"), None),
        (
            Method::PUT,
            format!("{API}/admin/permissions/groups?permission=ROOT"),
            None,
        ),
        (Method::POST, format!("{API}/admin/groups?name=%20"), None),
    ] {
        let a = t.send(method.clone(), &path, body).await.unwrap();
        assert_error(&a, 400, bad);
    }
    let a = t
        .get(&format!("{MEMBERS}?context=%E2%82%AC%ZZ&start=-1&limit=NaN"))
        .await;
    assert_error(&a, 404, "com.atlassian.bitbucket.user.NoSuchGroupException");
    assert_eq!(t.get(&format!("{API}/admin/users")).await.status, 200, "still serving");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_and_rate_limit_headers() {
    let mut s = BbState::new();
    s.set_rate_limit(1.0, 2);
    let t = T::new(s).await;
    let statuses = [
        t.get(&format!("{API}/admin/users")).await.status,
        t.get(&format!("{API}/admin/users")).await.status,
    ];
    assert_eq!(statuses, [200, 200]);
    let a = t.get(&format!("{API}/admin/users")).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json["errors"][0]["message"], "You have been rate limited.");
    assert_eq!(a.json["errors"][0]["exceptionName"], Value::Null);
    for (h, v) in [
        ("retry-after", "1"),
        ("x-ratelimit-limit", "2"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-fillrate", "1"),
        ("x-ratelimit-interval-seconds", "1"),
    ] {
        assert_eq!(a.headers[h], v, "{h}");
    }
    assert_eq!(
        reqwest::get(t.url("/status")).await.unwrap().status(),
        200,
        "not limited"
    );
    {
        let s = t.sim.lock();
        assert_eq!(s.throttled, 1);
        assert_eq!(s.calls["GET /admin/users"], 3, "refused requests are counted too");
    }
    t.sim.lock().clear_rate_limit();
    assert_eq!(t.get(&format!("{API}/admin/users")).await.status, 200);
}

/// The brief's example: "fail the 3rd members page with a reset, once".
#[tokio::test]
async fn a_reset_on_the_third_members_page_fails_that_request_once() {
    let t = T::new(with_team(60)).await;
    let rule = t.sim.faults().add(
        FaultRule::new(KitFault::Reset(Cut::BeforeServing))
            .on(Method::GET, RouteMatch::path(MEMBERS))
            .skip_first(2),
    );
    let page = |start: u32| format!("{MEMBERS}?context=team&limit=25&start={start}");
    assert_eq!(t.get(&page(0)).await.status, 200);
    assert_eq!(t.get(&page(25)).await.status, 200);
    let third = t.send(Method::GET, &page(50), None).await;
    assert!(third.is_err(), "the connection is reset");
    let retry = t.get(&page(50)).await;
    assert_eq!((retry.status, &retry.json["size"]), (200, &json!(10)), "once");
    assert_eq!(t.sim.faults().fired(rule), 1);
    let log = t.sim.log().entries();
    assert_eq!(log.len(), 4);
    assert_eq!(log[2].status, None);
    assert_eq!(log[2].outcome, Outcome::Injected(KitFault::Reset(Cut::BeforeServing)));
    assert_eq!(log[2].target, page(50));
}

#[tokio::test]
async fn an_empty_members_page_leads_on_to_every_member() {
    let t = T::new(with_team(60)).await;
    t.sim.faults().add(
        FaultRule::new(KitFault::EmptyPage)
            .on(Method::GET, RouteMatch::path("/rest/api/*/admin/groups/more-members"))
            .skip_first(1),
    );
    let (mut names, mut starts) = (Vec::new(), Vec::new());
    let mut start = Some(0u64);
    while let Some(s) = start {
        let a = t.get(&format!("{MEMBERS}?context=team&start={s}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        starts.push((s, a.json["size"].as_u64().unwrap()));
        names.extend(a.json["values"].as_array().unwrap().iter().map(|u| u["name"].clone()));
        start = a.json["nextPageStart"].as_u64();
    }
    assert_eq!(names.len(), 60, "{starts:?}");
    assert_eq!(starts[1].1, 0, "{starts:?}");
    assert_eq!(starts.len(), 4, "{starts:?}");
}

#[tokio::test]
async fn the_original_inject_still_fails_matching_requests() {
    let mut s = with_team(2);
    s.add_group("dev", &[]);
    s.inject(Fault {
        method: Some(Method::POST),
        path_contains: "/admin/groups/add-users".into(),
        status: 503,
        remaining: 1,
    });
    let t = T::new(s).await;
    let body = r#"{"group":"dev","users":["m00"]}"#;
    let a = t
        .send(Method::POST, &format!("{API}/admin/groups/add-users"), Some(body))
        .await
        .unwrap();
    assert_error(&a, 503, "com.atlassian.bitbucket.ServiceException");
    assert_eq!(t.sim.lock().writes, 0);
    let a = t
        .send(Method::POST, &format!("{API}/admin/groups/add-users"), Some(body))
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.text);
    let s = t.sim.lock();
    assert_eq!((s.writes, s.throttled), (1, 1));
    assert!(s.groups()["dev"].contains("m00"));
}

#[tokio::test]
async fn an_expired_token_gets_bitbucket_401_and_writes_nothing() {
    let t = T::new(BbState::new()).await;
    t.sim
        .faults()
        .add(FaultRule::new(KitFault::ExpiredToken).route(RouteMatch::prefix(API)));
    let a = t
        .send(Method::POST, &format!("{API}/admin/groups?name=new"), None)
        .await
        .unwrap();
    assert_error(
        &a,
        401,
        "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
    );
    assert!(!t.sim.lock().groups().contains_key("new"));
}
