//! Contract test: the Okta simulator and the `okta` connector, both held to Okta's Management
//! API OpenAPI document (`../shared/specs/okta-management-prism-ready.yaml`, examples stripped
//! so Prism loads it) by Stoplight Prism's validating proxy (`prism proxy --errors`) placed in
//! front of the simulator. A request or response that breaks the document becomes an error
//! (`sl-violations`), which fails these tests.
//!
//! Ignored by `cargo test`; run by `.ci/run` after the Graph contract, because it needs Prism
//! (npm) and the document from `../shared/specs/`:
//!   ROSTER_PRISM=path/to/prism ROSTER_OKTA_CONTRACT=../shared/specs/okta-management-prism-ready.yaml \
//!     cargo test -p roster --test engine -- --ignored contract_okta::
//! Prism loads the document in a few seconds here (vendor-apis.md §10 measured about 50 s on two
//! busy cores); each test starts its own and waits up to [`common::prism::LOAD`] for it to answer.
//! The document declares no `Link` header and no token endpoint (`/oauth2/v1/token` is the org
//! authorization server's); paging and tokens are checked by the simulator's own tests.

use crate::common;

use common::Configured;
use common::prism::Prism;
use common::world::bitbucket;
use roster_sim::directory::Directory;
use roster_sim::okta::{Bucket, OktaSim, OktaState, RateScope};

const DOMAIN: &str = "acme.example";
const TOKEN: &str = "00contract-api-token";
fn spec() -> std::path::PathBuf {
    std::env::var("ROSTER_OKTA_CONTRACT")
        .expect("ROSTER_OKTA_CONTRACT: ../shared/specs/okta-management-prism-ready.yaml (see .ci/run)")
        .into()
}

/// An org holding `d`, Roster's API token, one without the groups role, and a Bitbucket app
/// with a user and the first group assigned; returns it with the app's id.
fn org(d: &Directory) -> (OktaState, String) {
    let mut s = OktaState::from_directory(d, DOMAIN);
    s.add_api_token(TOKEN);
    s.add_restricted_api_token("users-only", &[Bucket::Users]);
    let app = s.add_app("Bitbucket");
    let first = s.user_id(&d.users[0].id);
    let group = s.group_id(&d.groups[0].id);
    s.assign_user(&app, &first);
    s.assign_group(&app, &group);
    (s, app)
}

/// Prism in front of the simulator, the simulator's links leading back through Prism; waits
/// until Prism answers a request (it listens before the document is loaded).
async fn prism_in_front(sim: &OktaSim, dir: &std::path::Path) -> Prism {
    let prism = Prism::start(&spec(), &sim.url(), dir).await;
    sim.lock().set_public_url(&prism.url());
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/groups?limit=1", prism.url());
    prism
        .wait_loaded("Okta", || async {
            let probe = http
                .get(&url)
                .header("authorization", format!("SSWS {TOKEN}"))
                .send()
                .await;
            probe.is_ok_and(|r| r.status().is_success())
        })
        .await;
    prism
}

/// One request through Prism: its status, and the violations Prism reported in `sl-violations`.
async fn through(http: &reqwest::Client, prism: &Prism, auth: &str, path_and_query: &str) -> (u16, String, String) {
    let r = http
        .get(format!("{}{path_and_query}", prism.url()))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let violations = common::prism::violations_of(&r);
    let link = r
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.ends_with("rel=\"next\""))
        .map(|v| v.trim_start_matches('<').split('>').next().unwrap_or("").to_string())
        .unwrap_or_default();
    (status, violations, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism and ../shared/specs; .ci/run runs it"]
async fn the_simulators_answers_to_the_connectors_requests_keep_to_the_okta_openapi_document() {
    let d = Directory::generate(30, 6, 2);
    let (state, app) = org(&d);
    let group = state.group_id(&d.groups[0].id);
    let user = state.user_id(&d.users[0].id);
    let sim = OktaSim::start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let prism = prism_in_front(&sim, dir.path()).await;
    let http = reqwest::Client::new();
    let ssws = format!("SSWS {TOKEN}");
    let q = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();

    let full = q("lastUpdated gt \"1970-01-01T00:00:00.000Z\"");
    let groups = q("type eq \"OKTA_GROUP\" or type eq \"APP_GROUP\"");
    let ok = [
        format!("/api/v1/users?search={full}&limit=10"),
        format!("/api/v1/groups?search={groups}&limit=200&expand=stats"),
        format!(
            "/api/v1/groups?search={}&limit=200",
            q("profile.name eq \"team-00001\"")
        ),
        format!("/api/v1/groups/{group}/users?limit=1000"),
        format!("/api/v1/groups/{group}"),
        format!("/api/v1/users/{user}"),
        format!("/api/v1/apps/{app}"),
        format!("/api/v1/apps/{app}/users?limit=500&expand=user"),
        format!("/api/v1/apps/{app}/groups?limit=200"),
    ];
    for path in &ok {
        let (status, violations, _) = through(&http, &prism, &ssws, path).await;
        assert_eq!(status, 200, "{path}\n{}", prism.log());
        assert!(violations.is_empty(), "{path}: {violations}");
    }
    // The users listing's next link, followed as given, passes too.
    let (_, _, next) = through(&http, &prism, &ssws, &ok[0]).await;
    assert!(
        next.starts_with(&prism.url()),
        "the next link leads back through Prism: {next}"
    );
    let (status, violations, _) = through(&http, &prism, &ssws, next.trim_start_matches(&prism.url())).await;
    assert_eq!((status, violations.as_str()), (200, ""), "{next}");

    // Error bodies on the statuses the document declares for these operations.
    let refused = [
        (
            "SSWS users-only".to_string(),
            format!("/api/v1/groups?search={groups}"),
            403,
        ),
        (ssws.clone(), "/api/v1/groups/00gnosuchgroup0000000".to_string(), 404),
        (
            ssws.clone(),
            "/api/v1/apps/0oanosuchapp000000000/users".to_string(),
            404,
        ),
    ];
    for (auth, path, want) in &refused {
        let (status, violations, _) = through(&http, &prism, auth, path).await;
        assert_eq!(status, *want, "{path}\n{}", prism.log());
        assert!(violations.is_empty(), "{path}: {violations}");
    }
    sim.lock().set_rate_limit(RateScope::Only(Bucket::Users), 0);
    let (status, violations, _) = through(&http, &prism, &ssws, &ok[0]).await;
    assert_eq!((status, violations.as_str()), (429, ""));
    sim.lock()
        .set_rate_limit(RateScope::All, roster_sim::okta::DEFAULT_RATE_LIMIT);
    prism.assert_no_violations("the simulator's answers");
    // 401 is not among the statuses the document declares for these operations, though Okta
    // answers it to a bad token; the simulator's own tests hold its body. Prism flags it, which
    // shows the check above is live.
    let (status, violations, _) = through(&http, &prism, "SSWS not-a-token", &ok[4]).await;
    assert_eq!(status, 401);
    assert!(!violations.is_empty(), "prism validates answers:\n{}", prism.log());
    assert!(
        !prism.violations().is_empty(),
        "the log check above sees what Prism reports:\n{}",
        prism.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism, ../shared/specs and the okta plugin; .ci/run runs it"]
async fn the_connector_and_the_simulator_keep_to_the_okta_openapi_document() {
    let mut d = Directory::generate(60, 8, 2);
    let (state, app) = org(&d);
    let mut w = common::okta::OktaWorld::new(state, bitbucket()).await;
    let prism = prism_in_front(&w.idp, w.rt.dir.path()).await;
    w.source.org_url = prism.url();
    w.source.api_token = TOKEN.into();

    let check = w.check().await;
    assert!(check.ok, "{:?}\n{}", check.error, prism.log());
    prism.assert_no_violations("check");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    let fetched = common::fetch_named(&r, "okta");
    assert_eq!(fetched.mode, "full");
    {
        let bb = w.bb.lock();
        for (group, members) in d.expected_members() {
            assert_eq!(bb.groups().get(&group), Some(&members), "members of {group}");
        }
    }
    prism.assert_no_violations("full fetch");

    // An incremental run: a profile edit, a deactivation and a membership removal.
    let (edited, gone) = (d.users[0].id.clone(), d.users[1].id.clone());
    {
        let mut s = w.idp.lock();
        let (e, g) = (s.user_id(&edited), s.user_id(&gone));
        s.update_user(&e, |p| {
            p.insert("displayName".into(), "Contract Renamed".into());
        });
        s.set_status(&g, roster_sim::okta::Status::Deprovisioned);
        let (grp, member) = (s.group_id(&d.groups[0].id), s.user_id(&d.users[2].id));
        s.remove_member(&grp, &member);
    }
    d.users[1].active = false;
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    assert_eq!(common::fetch_named(&r, "okta").mode, "incremental");
    prism.assert_no_violations("incremental fetch");

    // The app scope: app users with their embedded users, app groups, group reads.
    w.source.settings = format!("scope = \"app\"\napp_id = \"{app}\"");
    // Narrowing the scope to one app takes most people out of their groups, on purpose.
    w.target_extra = concat!(
        "threshold = { count = 500, percent = 100, memberships_removed = 100000, ",
        "people_losing_memberships = { count = 500, percent = 100, floor = 5 }, ",
        "group_members_lost = { percent = 100, floor = 10 } }"
    )
    .into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    assert!(w.bb.lock().groups().contains_key(&d.groups[0].name));
    prism.assert_no_violations("app scope");
}
