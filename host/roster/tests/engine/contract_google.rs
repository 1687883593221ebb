//! Contract test: the Google Workspace simulator and the `google` connector, both held to
//! Google's Admin SDK Directory API document (`../shared/specs/google-admin.directory_v1.swagger2.json`,
//! the discovery document as Swagger 2.0; its paths already carry `/admin/directory/v1` under
//! `basePath: /`, so Prism needs no prefixing) by Stoplight Prism's validating proxy
//! (`prism proxy --errors`) in front of the simulator. A request or response that breaks the
//! document becomes an error (`sl-violations`), which fails these tests.
//!
//! Ignored by `cargo test`; run by `.ci/run` after the Okta contract:
//!   ROSTER_PRISM=path/to/prism ROSTER_GOOGLE_CONTRACT=../shared/specs/google-admin.directory_v1.swagger2.json \
//!     cargo test -p roster --test engine -- --ignored contract_google::
//! The document declares only 200 answers and no token endpoint (`oauth2.googleapis.com` is
//! another service): the connector's token requests go to the simulator directly, and error
//! bodies and tokens are checked by the simulator's own tests.

use crate::common;

use common::Configured;
use common::google::{ADMIN, GoogleWorld, account};
use common::prism::Prism;
use common::world::bitbucket;
use roster_sim::directory::Directory;
use roster_sim::google::{GROUP_SCOPE, GoogleSim, USER_SCOPE};

fn spec() -> std::path::PathBuf {
    std::env::var("ROSTER_GOOGLE_CONTRACT")
        .expect("ROSTER_GOOGLE_CONTRACT: ../shared/specs/google-admin.directory_v1.swagger2.json (see .ci/run)")
        .into()
}

/// Prism in front of the simulator; waits until Prism answers a request.
async fn prism_in_front(sim: &GoogleSim, dir: &std::path::Path, token: &str) -> Prism {
    let prism = Prism::start(&spec(), &sim.url(), dir).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/admin/directory/v1/groups?customer=my_customer&maxResults=1",
        prism.url()
    );
    prism
        .wait_loaded("Google", || async {
            let probe = http.get(&url).bearer_auth(token).send().await;
            probe.is_ok_and(|r| r.status().is_success())
        })
        .await;
    prism
}

/// One request through Prism: its status, the violations Prism reported, and the body.
async fn through(
    http: &reqwest::Client,
    prism: &Prism,
    token: &str,
    path_and_query: &str,
) -> (u16, String, serde_json::Value) {
    let r = http
        .get(format!("{}{path_and_query}", prism.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let violations = common::prism::violations_of(&r);
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, violations, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism and ../shared/specs; .ci/run runs it"]
async fn the_simulators_answers_to_the_connectors_requests_keep_to_the_directory_document() {
    let d = Directory::generate(30, 6, 2);
    let mut state = account(&d);
    let token = state.grant_token(&[USER_SCOPE, GROUP_SCOPE], ADMIN);
    let group = state.id_of(&d.groups[0].id);
    let sim = GoogleSim::start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let prism = prism_in_front(&sim, dir.path(), &token).await;
    let http = reqwest::Client::new();

    let ok = [
        "/admin/directory/v1/users?customer=my_customer&maxResults=10".to_string(),
        "/admin/directory/v1/users?customer=my_customer&maxResults=500&query=isSuspended%3Dfalse".to_string(),
        "/admin/directory/v1/groups?customer=my_customer&maxResults=200".to_string(),
        format!("/admin/directory/v1/groups/{group}/members?maxResults=200"),
        format!("/admin/directory/v1/groups/{group}/members?maxResults=200&includeDerivedMembership=true"),
    ];
    for path in &ok {
        let (status, violations, _) = through(&http, &prism, &token, path).await;
        assert_eq!(status, 200, "{path}\n{}", prism.log());
        assert!(violations.is_empty(), "{path}: {violations}");
    }
    // The next page by the token given, too.
    let (_, _, first) = through(&http, &prism, &token, &ok[0]).await;
    let next = first["nextPageToken"]
        .as_str()
        .expect("30 users, 10 a page")
        .to_string();
    let (status, violations, _) = through(&http, &prism, &token, &format!("{}&pageToken={next}", ok[0])).await;
    assert_eq!((status, violations.as_str()), (200, ""));
    prism.assert_no_violations("the simulator's answers");
    // The document declares no 401 (nor 403), though Google answers them: Prism flags it,
    // which shows the check above is live.
    let (status, violations, _) = through(&http, &prism, "ya29.not-a-token", &ok[0]).await;
    assert_eq!(status, 401);
    assert!(!violations.is_empty(), "prism validates answers:\n{}", prism.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism, ../shared/specs and the google plugin; .ci/run runs it"]
async fn the_connector_and_the_simulator_keep_to_the_directory_document() {
    let d = Directory::generate(60, 8, 2);
    let mut state = account(&d);
    let token = state.grant_token(&[USER_SCOPE, GROUP_SCOPE], ADMIN);
    let mut w = GoogleWorld::new(state, bitbucket()).await;
    let prism = prism_in_front(&w.idp, w.rt.dir.path(), &token).await;
    // The API through Prism; tokens from the simulator itself.
    w.source.token_url = Some(w.idp.token_url());
    w.source.api_url = prism.url();

    let check = w.check().await;
    assert!(check.ok, "{:?}\n{}", check.error, prism.log());
    prism.assert_no_violations("check");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    {
        let bb = w.bb.lock();
        for (group, members) in d.expected_members() {
            assert_eq!(bb.groups().get(&group), Some(&members), "members of {group}");
        }
    }
    prism.assert_no_violations("full fetch");

    // An incremental run: a rename, a suspension and a membership removal.
    {
        let mut s = w.idp.lock();
        let (a, b) = (s.id_of(&d.users[0].id), s.id_of(&d.users[1].id));
        s.update_user(&a, |u| u.given_name = "Contract".into());
        s.update_user(&b, |u| u.suspended = true);
        let (g, m) = (s.id_of(&d.groups[0].id), s.id_of(&d.users[2].id));
        s.remove_member(&g, &m);
    }
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    assert_eq!(common::fetch_named(&r, "google").mode, "incremental");
    prism.assert_no_violations("incremental fetch");
}
