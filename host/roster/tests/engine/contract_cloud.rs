//! Contract test: Roster's Bitbucket Cloud client and the Cloud simulator, both held to
//! Atlassian's Bitbucket Cloud 2.0 OpenAPI document by Stoplight Prism's validating proxy
//! (`prism proxy --errors`) placed between them. A request or response that breaks the document
//! becomes an error, which fails the sync and this test.
//!
//! The document covers only the 2.0 calls Roster makes — workspace members (paged by `next`,
//! and filtered by address with `q=user.email IN (…)` and `fields=+values.user.email`) and the
//! owners (`permissions?q=permission="owner"`). The 1.0 calls (groups, group members,
//! invitations) and the Atlassian SCIM directory API are not in it (Atlassian publishes no
//! OpenAPI document for either), so a small router in the test sends `/2.0/…` through Prism and
//! everything else straight to the simulator, and the simulator writes the router's address
//! into its `next` links so every page goes through Prism too. Those other calls are checked against
//! the vendor's pages by the simulator's and the target's own tests.
//!
//! Ignored by `cargo test`; run by `.ci/run` after the README's test command, because it needs
//! Prism (npm) and the document from `../shared/specs/`, its paths prefixed with `/2.0` by
//! `shared/specs/tools/prefix_paths.py`:
//!   ROSTER_PRISM=path/to/prism ROSTER_CLOUD_CONTRACT=bitbucket-cloud-2.0.json \
//!     cargo test -p roster --test engine -- --ignored contract_cloud::

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use roster_model::RunState;
use roster_sim::directory::Directory;

use crate::cloud_workspace::{CloudWorld, report, workspace};
use crate::common::prism::{Prism, violations_of};

/// Where the router sends what: `/2.0/…` to Prism, the rest to the simulator.
struct Routes {
    prism: String,
    sim: String,
    http: reqwest::Client,
}

async fn route(State(r): State<Arc<Routes>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let base = if uri.path().starts_with("/2.0/") {
        &r.prism
    } else {
        &r.sim
    };
    let mut req = r.http.request(method, format!("{base}{path}")).body(body);
    for (k, v) in headers.iter().filter(|(k, _)| *k != "host" && *k != "content-length") {
        req = req.header(k, v);
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let mut out = HeaderMap::new();
    for (k, v) in resp.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out.insert(k, v.clone());
        }
    }
    let body = resp.bytes().await.unwrap_or_default();
    (status, out, body).into_response()
}

/// The router on 127.0.0.1, port 0: its URL and its task.
async fn router(prism: &str, sim: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    let routes = Arc::new(Routes {
        prism: prism.to_string(),
        sim: sim.to_string(),
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new().fallback(route).with_state(routes);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (me, task)
}

/// Prism in front of the simulator with the prefixed document, loaded.
async fn prism_in_front(sim: &str, dir: &std::path::Path) -> Prism {
    let spec = std::env::var("ROSTER_CLOUD_CONTRACT")
        .expect("ROSTER_CLOUD_CONTRACT: the Bitbucket Cloud 2.0 document with paths under /2.0 (see .ci/run)");
    let prism = Prism::start(std::path::Path::new(&spec), sim, dir).await;
    let url = format!("{}/2.0/workspaces/{}/members", prism.url(), crate::scenarios::WORKSPACE);
    let http = reqwest::Client::new();
    prism
        .wait_loaded("Bitbucket Cloud 2.0", || async {
            http.get(&url)
                .basic_auth("admin", Some("app-password"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    prism
}

/// A GET through Prism as Roster's account: status, violations, body.
async fn get(prism: &Prism, path: &str, password: &str) -> (u16, String, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", prism.url()))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let violations = violations_of(&r);
    (status, violations, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The simulator's 2.0 answers as Roster asks for them — members paged by `next`, filtered by
/// address with the addresses added, the owners — keep to the document; a wrong password's
/// answer, in Cloud's error body, too. (Cloud's 429 is not declared by the document, so the
/// budget's answers are not checked here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism and ../shared/specs; .ci/run runs it"]
async fn the_simulators_2_0_answers_keep_to_the_cloud_document() {
    let d = Directory::generate(150, 0, 0);
    let w = CloudWorld::joined(&d, workspace()).await;
    let prism = prism_in_front(&w.sim.url(), w.rt.dir.path()).await;
    w.sim.lock().set_public_url(&prism.url());
    let ws = crate::scenarios::WORKSPACE;
    let emails: Vec<String> = d.users[..3].iter().map(|u| format!("%22{}%22", u.email)).collect();
    let paths = [
        format!("/2.0/workspaces/{ws}/members?pagelen=100"),
        format!(
            "/2.0/workspaces/{ws}/members?pagelen=100&q=user.email%20IN%20({})&fields=%2Bvalues.user.email",
            emails.join(",")
        ),
        format!("/2.0/workspaces/{ws}/permissions?pagelen=100&q=permission%3D%22owner%22"),
    ];
    for path in &paths {
        let (status, violations, body) = get(&prism, path, "app-password").await;
        assert_eq!(status, 200, "{path}: {body}\n{}", prism.log());
        assert!(violations.is_empty(), "{path}: {violations}");
    }
    let (_, _, first) = get(&prism, &paths[0], "app-password").await;
    let next = first["next"].as_str().expect("151 members, 100 a page").to_string();
    let next = next.replacen(&prism.url(), "", 1);
    let (status, violations, body) = get(&prism, &next, "app-password").await;
    assert_eq!((status, violations.as_str()), (200, ""), "{next}: {body}");
    let (_, _, filtered) = get(&prism, &paths[1], "app-password").await;
    assert_eq!(filtered["values"].as_array().map(Vec::len), Some(3), "{filtered}");
    assert!(filtered["values"][0]["user"]["email"].is_string(), "{filtered}");
    let (status, violations, body) = get(&prism, &paths[0], "wrong").await;
    assert_eq!(status, 401, "{body}");
    assert!(violations.is_empty(), "Cloud's error body: {violations}");
    prism.assert_no_violations("the simulator's answers");
    // Cloud answers 503 at times, which the document does not declare for this call: Prism
    // flags it, which shows the checks above are live.
    w.sim
        .lock()
        .faults()
        .fail_next(1, "/members", roster_sim::kit::Fault::status(503));
    let (status, violations, _) = get(&prism, &paths[0], "app-password").await;
    assert_eq!(status, 503);
    assert!(!violations.is_empty(), "prism validates answers:\n{}", prism.log());
}

/// The client's 2.0 requests during real runs — a first sync inviting 150 people, the run after
/// they joined reading them back by address in pages of 90 and 100, a leaver — keep to the
/// document, and so do the simulator's answers to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism and ../shared/specs; .ci/run runs it"]
async fn the_cloud_client_and_the_simulator_keep_to_the_cloud_document() {
    let mut d = Directory::generate(150, 4, 2);
    let mut w = CloudWorld::new(&d, workspace()).await;
    let prism = prism_in_front(&w.sim.url(), w.rt.dir.path()).await;
    let (through, task) = router(&prism.url(), &w.sim.url()).await;
    w.sim.lock().set_public_url(&through);
    w.url = through;
    let check = |r: &roster_serve::RunReport, what: &str| {
        assert_eq!(
            r.state,
            RunState::Succeeded,
            "{what}: {}\nprism:\n{}",
            report(r),
            prism.log()
        );
        assert_eq!(r.summary.applied.failed, 0, "{what}");
        let members_calls: u64 = r
            .summary
            .api_calls
            .iter()
            .filter(|(k, _)| k.contains("/2.0/"))
            .map(|(_, n)| n)
            .sum();
        assert!(members_calls > 0, "{what}: no 2.0 call: {:?}", r.summary.api_calls);
        prism.assert_no_violations(what);
    };

    let r = w.sync().await;
    check(&r, "first sync: invitations");
    w.accept_all(&d);
    let r = w.sync().await;
    check(&r, "memberships once they joined");
    w.assert_matches(&d);
    let leaver = d.users.pop().unwrap();
    d.memberships.retain(|m| m.member != leaver.id);
    w.write(&d);
    let r = w.sync().await;
    check(&r, "a leaver");
    w.assert_matches(&d);
    let log = prism.log();
    assert!(
        log.contains("/members") && log.contains("/permissions") && log.contains("user.email"),
        "the members (by address) and owners calls went through Prism:\n{log}"
    );
    task.abort();
}
