//! The REST API end to end: every route by role, runs with progress, cancel, results, plans,
//! sources (secrets write-only), single-user sync, the IP allow-list, metrics, audit, alerts.

use crate::common;

use common::Configured;
use common::api::ApiWorld;
use common::entra::{EntraWorld, tenant};
use common::world::{assert_bitbucket_matches, bitbucket};
use reqwest::Method;
use roster_sim::directory::Directory;
use roster_sim::graph::GraphUser;
use serde_json::{Value, json};

async fn world(users: usize, extra: &str) -> (ApiWorld, Directory) {
    let d = Directory::generate(users, (users / 10).max(2), 2);
    let w = EntraWorld::new(tenant(&d), bitbucket()).await;
    (ApiWorld::start(w, extra).await, d)
}

/// A concrete path for a templated one: ids that exist nowhere.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').unwrap() + i;
        let name = &rest[i + 1..j];
        out.push_str(if name == "id" && (path.contains("/runs/")) {
            "999999"
        } else {
            "no-such-thing"
        });
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    out
}

/// Walks every operation of the served OpenAPI document without a token and with each role:
/// no token is 401 with `WWW-Authenticate`, a role below the operation's is 403, and every
/// other answer is one of the codes the document lists for that operation (never a 5xx).
/// Returns how many operations were walked.
async fn walk_every_route(w: &ApiWorld) -> usize {
    let (status, doc) = w.get("/api/v1/openapi.json", &w.viewer).await;
    assert_eq!(status, 200);
    let tokens = [("viewer", &w.viewer), ("operator", &w.operator), ("admin", &w.admin)];
    let rank = |r: &str| ["viewer", "operator", "admin"].iter().position(|x| *x == r).unwrap();
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let needed = op["security"][0]["token"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} names no role"));
            let responses = op["responses"].as_object().unwrap();
            for code in responses.keys() {
                assert!(code.parse::<u16>().is_ok(), "{method} {path}: {code}");
            }
            assert!(
                responses.contains_key("401") && responses.contains_key("403"),
                "{method} {path}"
            );
            let m: Method = method.to_uppercase().parse().unwrap();
            let url = concrete(path);
            // Read-only probes for writes: an empty JSON body is refused before anything happens.
            let body = json!({});
            let call = |token: &str| {
                let r = w.req(m.clone(), &url, token);
                if m == Method::GET { r } else { r.json(&body) }
            };
            let anon = call("").send().await.unwrap();
            assert_eq!(anon.status().as_u16(), 401, "{method} {path} without a token");
            assert!(anon.headers().contains_key("www-authenticate"));
            for (role, token) in tokens {
                if m == Method::POST && path.ends_with("/runs") && rank(role) >= rank(needed) {
                    continue; // would start a run; covered by its own test
                }
                let status = call(token).send().await.unwrap().status().as_u16();
                if rank(role) < rank(needed) {
                    assert_eq!(status, 403, "{method} {path} as {role} (needs {needed})");
                } else {
                    assert!(
                        status != 401 && status != 403 && status < 500,
                        "{method} {path} as {role}: {status}"
                    );
                    assert!(
                        responses.contains_key(&status.to_string()),
                        "{method} {path} as {role} answered {status}, which the document does not list ({:?})",
                        responses.keys().collect::<Vec<_>>()
                    );
                }
            }
            walked += 1;
        }
    }
    walked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_by_role_and_nothing_without_a_token() {
    let (w, _) = world(10, "").await;
    let (status, doc) = w.get("/api/v1/openapi.json", &w.viewer).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(w.get("/api/v1/openapi.json", "").await.0, 401);
    assert_eq!(w.get("/healthz", "").await.0, 200);
    assert_eq!(w.get("/readyz", "").await.0, 200);
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(walk_every_route(&w).await, operations);
    assert!(operations >= 30, "only {operations} operations in the document");
    // Without a target every route still answers as documented (409 where it needs one).
    let d = Directory::generate(5, 2, 1);
    let bare = ApiWorld::start_without_target(EntraWorld::new(tenant(&d), bitbucket()).await).await;
    assert_eq!(walk_every_route(&bare).await, operations);
    // A revoked token opens nothing.
    let id = w
        .world
        .store
        .tokens()
        .unwrap()
        .iter()
        .find(|t| t.name == "viewer")
        .unwrap()
        .id;
    w.world.store.revoke_token(id).unwrap();
    assert_eq!(w.get("/api/v1/sources", &w.viewer).await.0, 401);
}

/// Every time the API gives (`at`, `…_at`) is documented as an RFC 3339 string, as the
/// schedules' fire times always were: a client parses one kind of time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_time_in_the_document_is_an_rfc3339_string() {
    let (w, _) = world(5, "").await;
    let (status, doc) = w.get("/api/v1/openapi.json", &w.viewer).await;
    assert_eq!(status, 200);
    let mut times = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        for (field, prop) in schema["properties"].as_object().into_iter().flatten() {
            if field == "at" || field.ends_with("_at") {
                assert_eq!(prop["format"], "date-time", "{name}.{field}: {prop}");
                let ty = prop["type"].to_string();
                assert!(
                    ty.contains("string") && !ty.contains("integer"),
                    "{name}.{field}: {prop}"
                );
                times.push(format!("{name}.{field}"));
            }
        }
    }
    for expected in [
        "RunView.started_at",
        "PlanView.created_at",
        "AuditView.at",
        "PushState.last_push_at",
    ] {
        assert!(times.iter().any(|t| t == expected), "{expected} not among {times:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_through_the_api_reports_progress_results_and_metrics() {
    let (w, d) = world(60, "").await;
    let (status, started) = w.post("/api/v1/runs", &w.operator, json!({"mode": "full"})).await;
    assert_eq!(status, 202, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let run = w.wait_run(id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "api");
    assert_bitbucket_matches(&w.world.bb, &d);
    let (status, rows) = w.get(&format!("/api/v1/runs/{id}/results"), &w.viewer).await;
    assert_eq!(status, 200);
    assert!(rows.as_array().unwrap().iter().all(|r| r["outcome"] == "done"));
    let csv = w
        .req(Method::GET, &format!("/api/v1/runs/{id}/results?format=csv"), &w.viewer)
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.text().await.unwrap().starts_with("seq,kind,subject"));
    // A dry run plans (here: nothing) and writes nothing; a run of one named source.
    let writes = w.world.bb.lock().writes;
    let dry = w.run(json!({"mode": "dry-run"})).await;
    assert_eq!(
        (dry["state"].as_str(), dry["mode"].as_str()),
        (Some("planned"), Some("dry-run")),
        "{dry}"
    );
    assert_eq!(w.world.bb.lock().writes, writes);
    let one = w.run(json!({"mode": "incremental", "sources": ["entra"]})).await;
    assert_eq!(one["sources"], json!(["entra"]), "{one}");
    let (status, e) = w.post("/api/v1/runs", &w.operator, json!({"sources": ["nope"]})).await;
    assert_eq!(status, 404, "{e}");
    // History filters, each of which leaves something out.
    let ids = |q: &str| {
        let (w, q) = (&w, q.to_string());
        async move {
            let (status, runs) = w.get(&format!("/api/v1/runs{q}"), &w.viewer).await;
            assert_eq!(status, 200, "{q}: {runs}");
            runs.as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    let (full, dry, one) = (id, dry["id"].as_i64().unwrap(), one["id"].as_i64().unwrap());
    assert_eq!(ids("").await, vec![one, dry, full], "newest first");
    assert_eq!(ids("?mode=dry-run").await, vec![dry]);
    assert_eq!(ids("?state=planned").await, vec![dry]);
    assert_eq!(ids("?mode=full&state=succeeded&trigger=api").await, vec![full]);
    assert_eq!(ids("?source=entra&mode=incremental").await, vec![one]);
    assert!(ids("?source=hr").await.is_empty());
    assert!(ids("?trigger=schedule").await.is_empty());
    assert_eq!(ids("?limit=2").await, vec![one, dry]);
    // Times are RFC 3339 in UTC, in answers and in the `since` filter alike.
    let started = run["started_at"].as_str().expect("started_at is an RFC 3339 string");
    let at = chrono::DateTime::parse_from_rfc3339(started).unwrap_or_else(|e| panic!("{started}: {e}"));
    assert!(started.ends_with('Z'), "{started}");
    assert!(chrono::DateTime::parse_from_rfc3339(run["finished_at"].as_str().unwrap()).unwrap() >= at);
    let hour_later = (at + chrono::Duration::hours(1))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(ids(&format!("?since={hour_later}")).await.is_empty());
    assert_eq!(ids(&format!("?since={started}")).await.len(), 3);
    let (status, bad) = w.get("/api/v1/runs?since=1767225600000", &w.viewer).await;
    assert_eq!(status, 422, "{bad}");
    assert!(bad.to_string().contains("RFC 3339"), "{bad}");
    assert_eq!(w.get("/api/v1/runs?limit=0", &w.viewer).await.0, 422);
    let (_, plan) = w
        .get(
            &format!("/api/v1/plans/{}", run["plan_id"].as_str().unwrap()),
            &w.viewer,
        )
        .await;
    assert!(plan["operations"].as_array().unwrap().len() > 60);
    let metrics = w
        .req(Method::GET, "/metrics", &w.viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("roster_runs_total{"), "{metrics}");
    assert!(metrics.contains("state=\"succeeded\""));
    assert!(metrics.contains("roster_vendor_requests_total{"));
    assert!(metrics.contains("roster_source_last_success_timestamp_seconds{source=\"entra\"}"));
    assert!(
        metrics.contains("roster_writes_total{kind=\"create-user\"} 60"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roster_stage_duration_seconds_count{stage=\"fetch\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("roster_vendor_throttled_total{"), "{metrics}");
    let (_, audit) = w.get("/api/v1/audit", &w.viewer).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "run.start" && e["actor"] == "token:operator" && e["origin"] == "127.0.0.1"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_waits_its_turn_and_a_cancelled_run_stops_and_converges_later() {
    let (w, d) = world(150, "").await;
    // A slow Bitbucket: 20 requests a second.
    w.world.bb.lock().set_rate_limit(20.0, 5);
    let (_, started) = w.post("/api/v1/runs", &w.operator, json!({})).await;
    let id = started["run_id"].as_i64().unwrap();
    let (status, busy) = w.post("/api/v1/runs", &w.operator, json!({"mode": "dry-run"})).await;
    assert_eq!(status, 409, "{busy}");
    assert!(busy["error"].as_str().unwrap().contains(&format!("run {id}")));
    // Wait until it applies, look at the progress, then cancel.
    let mut saw_eta = false;
    for _ in 0..300 {
        let (_, run) = w.get(&format!("/api/v1/runs/{id}"), &w.viewer).await;
        if run["progress"]["stage"]["name"] == "apply" && run["progress"]["stage"]["done"].as_u64() > Some(3) {
            assert!(run["progress"]["eta_seconds"].as_f64().unwrap() > 0.0, "{run}");
            assert!(run["progress"]["percent"].as_f64().unwrap() < 100.0);
            saw_eta = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(saw_eta, "the run reached apply and showed an ETA");
    assert_eq!(
        w.post(&format!("/api/v1/runs/{id}/cancel"), &w.operator, json!({}))
            .await
            .0,
        202
    );
    let run = w.wait_run(id).await;
    assert_eq!(run["state"], "cancelled", "{run}");
    assert!(run["summary"]["applied"]["cancelled"].as_u64().unwrap() > 0);
    assert_eq!(
        w.post(&format!("/api/v1/runs/{id}/cancel"), &w.operator, json!({}))
            .await
            .0,
        409
    );
    w.world.bb.lock().set_rate_limit(100_000.0, 100_000);
    let (_, again) = w.post("/api/v1/runs", &w.operator, json!({})).await;
    let run = w.wait_run(again["run_id"].as_i64().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_bitbucket_matches(&w.world.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_plan_is_reviewed_and_approved_through_the_api() {
    let (w, d) = world(30, "").await;
    w.run(json!({})).await;
    for u in d.users.iter().take(8) {
        w.world.idp.lock().hard_delete_user(&u.id);
    }
    let run = w.run(json!({"mode": "incremental"})).await;
    assert_eq!(run["state"], "held", "{run}");
    let plan_id = run["plan_id"].as_str().unwrap().to_string();
    let (_, plan) = w.get(&format!("/api/v1/plans/{plan_id}"), &w.viewer).await;
    assert_eq!(plan["state"], "held");
    assert!(plan["guard"]["held"].as_str().unwrap().contains("threshold"));
    let approve = format!("/api/v1/plans/{plan_id}/approve");
    assert_eq!(
        w.post(&approve, &w.operator, json!({"hash": "x"})).await.0,
        403,
        "operators do not approve"
    );
    let (status, wrong) = w.post(&approve, &w.admin, json!({"hash": "0000000000"})).await;
    assert_eq!(status, 422, "{wrong}");
    let hash = plan["hash"].as_str().unwrap();
    let (status, applied) = w.post(&approve, &w.admin, json!({"hash": &hash[..12]})).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["state"], "succeeded");
    assert_eq!(applied["failed"], 0, "{applied}");
    let licensed = w.world.bb.lock().licensed_users();
    for u in d.users.iter().take(8) {
        assert!(!licensed.contains(&u.username), "{} was deprovisioned", u.username);
    }
    assert!(licensed.contains(&d.users[8].username));
    // The approval is audited once, by whom, from where and when.
    let (_, audit) = w.get("/api/v1/audit", &w.viewer).await;
    let approvals: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "plan.approve")
        .collect();
    assert_eq!(approvals.len(), 1, "{audit}");
    assert_eq!(approvals[0]["actor"], "token:admin");
    assert_eq!(approvals[0]["origin"], "127.0.0.1");
    assert_eq!(approvals[0]["subject"], plan_id.as_str());
    let at = chrono::DateTime::parse_from_rfc3339(approvals[0]["at"].as_str().unwrap()).unwrap();
    let age = roster_store::now_ms() - at.timestamp_millis();
    assert!((0..60_000).contains(&age), "{}", approvals[0]);

    // The next held plan is rejected: nothing applied, and it cannot be approved after.
    for u in d.users.iter().skip(8).take(8) {
        w.world.idp.lock().hard_delete_user(&u.id);
    }
    let run = w.run(json!({"mode": "incremental"})).await;
    assert_eq!(run["state"], "held", "{run}");
    let plan_id = run["plan_id"].as_str().unwrap().to_string();
    let reject = format!("/api/v1/plans/{plan_id}/reject");
    assert_eq!(w.post(&reject, &w.operator, json!({})).await.0, 403);
    let writes = w.world.bb.lock().writes;
    assert_eq!(w.post(&reject, &w.admin, json!({})).await.0, 204);
    assert_eq!(
        w.get(&format!("/api/v1/plans/{plan_id}"), &w.viewer).await.1["state"],
        "rejected"
    );
    assert_eq!(w.post(&reject, &w.admin, json!({})).await.0, 422, "already rejected");
    let (_, plan) = w.get(&format!("/api/v1/plans/{plan_id}"), &w.viewer).await;
    let (status, _) = w
        .post(
            &format!("/api/v1/plans/{plan_id}/approve"),
            &w.admin,
            json!({"hash": plan["hash"]}),
        )
        .await;
    assert_eq!(status, 422, "a rejected plan is never applied");
    assert_eq!(w.world.bb.lock().writes, writes);
    assert!(w.world.bb.lock().licensed_users().contains(&d.users[8].username));
    let (_, audit) = w.get("/api/v1/audit", &w.viewer).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "plan.reject" && e["origin"] == "127.0.0.1" && e["subject"] == plan_id.as_str()),
        "{audit}"
    );
}

/// The directory as the sources last reported it (users, groups, memberships; searched and
/// paged), and the lineage of a membership through nested groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_shows_the_mirror_and_why_someone_is_in_a_group() {
    let (w, d) = world(100, "").await;
    assert_eq!(w.run(json!({})).await["state"], "succeeded");
    let list = |path: String| {
        let w = &w;
        async move {
            let (status, v) = w.get(&path, &w.viewer).await;
            assert_eq!(status, 200, "{path}: {v}");
            v.as_array().unwrap().clone()
        }
    };
    assert_eq!(
        list("/api/v1/directory/users?source=entra&limit=1000".into())
            .await
            .len(),
        100
    );
    assert_eq!(
        list("/api/v1/directory/users?source=entra&limit=5&offset=98".into())
            .await
            .len(),
        2
    );
    let found = list(format!(
        "/api/v1/directory/users?source=entra&q={}",
        d.users[7].username.to_uppercase()
    ))
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], d.users[7].id.as_str(), "{found:?}");
    assert_eq!(
        list("/api/v1/directory/groups?source=entra".into()).await.len(),
        d.groups.len()
    );
    let group = &d.groups[3];
    let members = list(format!(
        "/api/v1/directory/memberships?source=entra&group={}&limit=1000",
        group.id
    ))
    .await;
    let direct = d.memberships.iter().filter(|m| m.group == group.id).count();
    assert_eq!(members.len(), direct, "{members:?}");
    assert_eq!(w.get("/api/v1/directory/users?source=nope", &w.viewer).await.0, 404);
    assert_eq!(w.get("/api/v1/directory/users", &w.viewer).await.0, 400);

    // A direct member of team-00003 is in team-00000 through the chain 3 ⊂ 2 ⊂ 1 ⊂ 0.
    let direct_of = |id: &str| -> Vec<&str> {
        d.memberships
            .iter()
            .filter(|m| m.member == id)
            .map(|m| m.group.as_str())
            .collect()
    };
    let member = d
        .memberships
        .iter()
        .find(|m| {
            m.group == "g-00003"
                && !m.member_is_group
                && !direct_of(&m.member)
                    .iter()
                    .any(|g| ["g-00000", "g-00001", "g-00002"].contains(g))
        })
        .expect("someone in team-00003 only by that chain");
    let user = &d.users.iter().find(|u| u.id == member.member).unwrap().username;
    let (status, why) = w
        .get(
            &format!("/api/v1/directory/why?user={user}&group=team-00000"),
            &w.viewer,
        )
        .await;
    assert_eq!(status, 200, "{why}");
    let text = why["explanation"].as_str().unwrap();
    assert!(
        text.contains("team-00003") && text.contains("team-00001") && text.matches('∈').count() == 4,
        "{text}"
    );
    let (_, not) = w
        .get(
            &format!("/api/v1/directory/why?user={user}&group=team-00005"),
            &w.viewer,
        )
        .await;
    let expected = d.expected_members();
    if expected.get("team-00005").is_none_or(|m| !m.contains(user.as_str())) {
        assert!(
            not["explanation"].as_str().unwrap().contains("is not a member"),
            "{not}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_created_replaced_and_deleted_with_write_only_secrets() {
    let (w, _) = world(10, "").await;
    let graph = w.world.idp.url();
    let body = json!({
        "id": "entra2", "plugin": "entra", "priority": 50,
        "allow_hosts": [graph], "allow_insecure_http": true, "allow_private_addresses": true,
        "settings": {"tenant_id": common::entra::TENANT, "client_id": common::entra::CLIENT,
                     "graph_url": graph, "login_url": graph, "scope": "groups", "groups": ["team-00000"]},
        "secrets": [{"name": "client_secret", "value": common::entra::SECRET, "hosts": [graph],
                         "use": {"form": "client_secret"}, "path": format!("/{}/oauth2/", common::entra::TENANT)}],
        "schedule": {"cron": "0 0/15 * * * ?"}
    });
    assert_eq!(w.post("/api/v1/sources", &w.operator, body.clone()).await.0, 403);
    let (status, created) = w.post("/api/v1/sources", &w.admin, body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["origin"], "api");
    assert_eq!(created["secrets"][0]["name"], "client_secret");
    assert!(
        !created.to_string().contains(common::entra::SECRET),
        "a secret is never shown"
    );
    assert_eq!(created["next_runs"].as_array().unwrap().len(), 3);
    assert_eq!(w.post("/api/v1/sources", &w.admin, body.clone()).await.0, 409);
    // The new source works: its check passes and a run fetches it.
    let (_, check) = w.post("/api/v1/sources/entra2/check", &w.operator, json!({})).await;
    assert_eq!(check["ok"], true, "{check}");
    // Replaced without secrets: the stored ones are kept.
    let mut replaced = body.clone();
    replaced.as_object_mut().unwrap().remove("secrets");
    replaced["priority"] = json!(60);
    let (status, r) = w
        .send_json(Method::PUT, "/api/v1/sources/entra2", &w.admin, replaced)
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["priority"], 60);
    let (_, check) = w.post("/api/v1/sources/entra2/check", &w.operator, json!({})).await;
    assert_eq!(check["ok"], true, "{check}");
    let (_, sched) = w.get("/api/v1/sources/entra2/schedule?count=4", &w.viewer).await;
    assert_eq!(sched["next_runs"].as_array().unwrap().len(), 4, "{sched}");
    // Mistakes: a bad cron, a file folder, an env secret, an unknown field, a roster.toml source.
    let mut bad = body.clone();
    bad["id"] = json!("bad");
    bad["schedule"] = json!({"cron": "0 0 0 30 2 ?"});
    let (status, e) = w.post("/api/v1/sources", &w.admin, bad).await;
    assert_eq!(status, 422);
    assert!(e["error"].as_str().unwrap().contains("never"), "{e}");
    let mut bad = body.clone();
    bad["id"] = json!("bad2");
    bad["prioritty"] = json!(1);
    assert_eq!(w.post("/api/v1/sources", &w.admin, bad).await.0, 422);
    // A plugin that is not loaded (connector or transform), or of the other kind, is refused
    // now, naming it and the plugins there, rather than at the source's first run.
    for (plugin, transform, said) in [
        (
            "nosuch",
            None,
            "names the connector plugin 'nosuch', which is not loaded",
        ),
        (
            "entra",
            Some("nosuch-map"),
            "the transform plugin 'nosuch-map' in transform step 1, which",
        ),
        (
            "normalize",
            None,
            "names 'normalize' as its connector, but it is a transform plugin",
        ),
    ] {
        let mut bad = body.clone();
        bad["plugin"] = json!(plugin);
        if let Some(t) = transform {
            bad["transforms"] = json!([{"plugin": t}]);
        }
        let (status, e) = w.send_json(Method::PUT, "/api/v1/sources/entra2", &w.admin, bad).await;
        assert_eq!(status, 422, "{plugin}: {e}");
        let e = e["error"].as_str().unwrap();
        assert!(e.contains(said), "{e}");
        assert!(
            e.contains("entra (connector)") && e.contains("normalize (transform)"),
            "{e}"
        );
    }
    let (_, kept) = w.get("/api/v1/sources/entra2", &w.viewer).await;
    assert_eq!(
        (kept["plugin"].as_str(), &kept["config"]["transforms"]),
        (Some("entra"), &json!([])),
        "{kept}"
    );
    let (status, e) = w
        .send_json(Method::DELETE, "/api/v1/sources/entra", &w.admin, json!({}))
        .await;
    assert_eq!(status, 409);
    assert!(e["error"].as_str().unwrap().contains("roster.toml"), "{e}");
    assert_eq!(
        w.send_json(Method::DELETE, "/api/v1/sources/entra2", &w.admin, json!({}))
            .await
            .0,
        204
    );
    assert_eq!(w.get("/api/v1/sources/entra2", &w.viewer).await.0, 404);
    w.assert_audited(&["source.create", "source.replace", "source.delete"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_user_is_provisioned_on_demand_touching_nobody_else() {
    let (w, d) = world(40, "").await;
    w.run(json!({})).await;
    let writes = w.world.bb_writes();
    // A new hire appears in Entra and logs in before the next scheduled run.
    let id = w.world.idp.lock().add_user(GraphUser {
        user_principal_name: "newhire@contoso.example".into(),
        mail: Some("newhire@contoso.example".into()),
        display_name: "New Hire".into(),
        account_enabled: true,
        user_type: "Member".into(),
        ..GraphUser::default()
    });
    let team = d.groups[1].id.clone();
    w.world.idp.lock().add_member(&team, &id);
    // Someone else changed too: a single-user sync leaves them alone.
    w.world
        .idp
        .lock()
        .update_user(&d.users[3].id, |u| u.display_name = "Not Yet".into());
    let started = std::time::Instant::now();
    let (status, run) = w
        .post("/api/v1/users/sync", &w.operator, json!({"user": "newhire"}))
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "succeeded", "{run}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    {
        let bb = w.world.bb.lock();
        assert_eq!(bb.users()["newhire"].display_name, "New Hire");
        assert!(bb.groups()[&d.groups[1].name].contains("newhire"));
        assert!(
            bb.groups()[&d.groups[0].name].contains("newhire"),
            "nested: team-00001 is in team-00000"
        );
        assert!(bb.licensed_users().contains("newhire"));
        assert_ne!(bb.users()[&d.users[3].username].display_name, "Not Yet");
    }
    let planned = run["summary"]["planned"].as_object().unwrap();
    assert_eq!(planned["create-user"], 1, "{planned:?}");
    assert!(!planned.contains_key("update-user"), "{planned:?}");
    assert!(w.world.bb_writes() - writes <= 4, "one account and its groups");
    // By the IdP's id, as a login flow that knows only the token's `oid` would call it.
    let oid = w.world.idp.lock().add_user(GraphUser {
        user_principal_name: "second@contoso.example".into(),
        mail: Some("second@contoso.example".into()),
        display_name: "Second Hire".into(),
        account_enabled: true,
        user_type: "Member".into(),
        ..GraphUser::default()
    });
    let (status, run) = w.post("/api/v1/users/sync", &w.operator, json!({"user": oid})).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(w.world.bb.lock().users()["second"].display_name, "Second Hire");
    let (status, e) = w
        .post("/api/v1/users/sync", &w.operator, json!({"user": "nobody"}))
        .await;
    assert_eq!(status, 404, "{e}");
    assert_eq!(w.post("/api/v1/users/sync", &w.operator, json!({})).await.0, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_refuses_other_addresses_and_trusts_only_listed_proxies() {
    let (w, _) = world(5, "[api]\nallow_ips = [\"10.0.0.0/8\"]\n").await;
    let (status, e) = w.get("/api/v1/sources", &w.viewer).await;
    assert_eq!(status, 403);
    assert!(e["error"].as_str().unwrap().contains("allow-list"));
    // A forwarded address counts only from a trusted proxy.
    let spoofed = w
        .req(Method::GET, "/api/v1/sources", &w.viewer)
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status().as_u16(), 403);
    drop(w);
    let (w, _) = world(
        5,
        "[api]\nallow_ips = [\"10.0.0.0/8\"]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let proxied = w
        .req(Method::GET, "/api/v1/sources", &w.viewer)
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status().as_u16(), 200);
    assert_eq!(w.get("/healthz", "").await.0, 200, "health is open to all");
}

/// Failed authentications (401) and refused actions (403) are in the audit log with who, what
/// and from where; a flood of them adds one entry per kind and address, not one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_audited_and_a_flood_is_coalesced() {
    let (w, _) = world(5, "").await;
    for _ in 0..200 {
        assert_eq!(w.get("/api/v1/sources", "").await.0, 401);
        assert_eq!(w.get("/api/v1/sources", "not-a-token").await.0, 401);
    }
    for _ in 0..50 {
        let (status, _) = w
            .send_json(Method::DELETE, "/api/v1/sources/entra", &w.viewer, json!({}))
            .await;
        assert_eq!(status, 403);
    }
    let started = std::time::Instant::now();
    let refusals = loop {
        let (_, audit) = w.get("/api/v1/audit?limit=1000", &w.viewer).await;
        let refusals: Vec<Value> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"].as_str().unwrap().starts_with("auth."))
            .cloned()
            .collect();
        if refusals.len() >= 2 || started.elapsed() > common::PROMPT {
            break refusals;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        refusals.len(),
        2,
        "450 refusals, one entry per kind and address: {refusals:#?}"
    );
    let forbidden = refusals.iter().find(|e| e["action"] == "auth.forbidden").unwrap();
    assert_eq!(
        (&forbidden["actor"], &forbidden["origin"], &forbidden["subject"]),
        (
            &json!("token:viewer"),
            &json!("127.0.0.1"),
            &json!("DELETE /api/v1/sources/entra")
        ),
        "{forbidden}"
    );
    assert!(
        forbidden["detail"].as_str().unwrap().contains("needs the admin role"),
        "{forbidden}"
    );
    let unauthenticated = refusals.iter().find(|e| e["action"] == "auth.unauthenticated").unwrap();
    assert_eq!(unauthenticated["actor"], "anonymous", "{unauthenticated}");
}

/// A webhook receiver on 127.0.0.1: every body it gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_plans_and_failed_runs_are_announced_to_webhooks() {
    let hooks = common::webhook::Receiver::start().await;
    let url = &hooks.url;
    let (w, d) = world(
        30,
        &format!(
            "[[alert]]\nurl = \"{url}\"\n\n[[alert]]\nurl = \"{url}\"\nformat = \"slack\"\nevents = [\"run-failed\"]\n"
        ),
    )
    .await;
    w.run(json!({})).await;
    for u in d.users.iter().take(8) {
        w.world.idp.lock().hard_delete_user(&u.id);
    }
    let held = w.run(json!({"mode": "incremental"})).await;
    assert_eq!(held["state"], "held");
    w.world.idp.lock().set_permissions(common::entra::CLIENT, &[]);
    let failed = w.run(json!({})).await;
    assert_eq!(failed["state"], "failed");
    let got = hooks.wait_count(3, std::time::Duration::from_secs(5)).await;
    let events: Vec<&str> = got.iter().filter_map(|v| v["event"].as_str()).collect();
    assert!(
        events.contains(&"plan-held") && events.contains(&"run-failed"),
        "{got:?}"
    );
    let plan_held = got.iter().find(|v| v["event"] == "plan-held").unwrap();
    assert_eq!(plan_held["details"]["plan_id"], held["plan_id"]);
    let slack: Vec<&Value> = got.iter().filter(|v| v.get("blocks").is_some()).collect();
    assert_eq!(slack.len(), 1, "the Slack webhook wants run failures only: {got:?}");
    assert!(
        slack[0]["text"].as_str().unwrap().contains("Insufficient privileges"),
        "{}",
        slack[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_traps_is_counted_in_metrics_and_the_other_source_still_syncs() {
    let (w, d) = world(20, "").await;
    w.world.rt.put("fixture_hostile", "hostile.wasm");
    let (status, _) = w.post("/api/v1/plugins/reload", &w.operator, json!({})).await;
    assert!(status < 300, "reload: {status}");
    let body = json!({"id": "broken", "plugin": "hostile", "priority": 10, "settings": {"mode": "panic"}});
    let (status, created) = w.post("/api/v1/sources", &w.admin, body).await;
    assert_eq!(status, 201, "{created}");
    let (status, started) = w.post("/api/v1/runs", &w.operator, json!({"mode": "full"})).await;
    assert_eq!(status, 202, "{started}");
    let run = w.wait_run(started["run_id"].as_i64().unwrap()).await;
    assert_ne!(
        run["state"], "succeeded",
        "a source failed, so the run is not clean: {run}"
    );
    // The healthy source's people are still all there: a broken plugin deletes nobody.
    assert_bitbucket_matches(&w.world.bb, &d);
    let metrics = w
        .req(Method::GET, "/metrics", &w.viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("roster_plugin_traps_total{plugin=\"hostile\",kind=\"panic\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_is_created_tested_replaced_and_deleted_through_the_api() {
    const TOKEN: &str = "bbtok-7a1f3c9e55d2";
    let d = Directory::generate(30, 3, 2);
    let mut bb = bitbucket();
    bb.set_token(TOKEN);
    let w = ApiWorld::start_without_target(EntraWorld::new(tenant(&d), bb).await).await;
    // No target yet: sources are there, nothing runs, and the refusal says what to do.
    let (_, targets) = w.get("/api/v1/targets", &w.viewer).await;
    assert_eq!(targets, json!([]));
    assert_eq!(w.get("/api/v1/sources", &w.viewer).await.1.as_array().unwrap().len(), 1);
    let (status, e) = w.post("/api/v1/runs", &w.operator, json!({})).await;
    assert_eq!(status, 409, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("PUT /api/v1/targets/bitbucket"),
        "{e}"
    );

    let body = |token: Option<&str>| {
        let mut b = json!({"id": "bitbucket", "url": w.world.bb.url(), "username": "admin",
                           "default_groups": ["bitbucket-users"], "threshold": {"count": 40, "percent": 25}});
        if let Some(t) = token {
            b["token"] = json!(t);
        }
        b
    };
    let put = |b: Value| w.send_json(Method::PUT, "/api/v1/targets/bitbucket", &w.admin, b);
    assert_eq!(
        w.send_json(Method::PUT, "/api/v1/targets/bitbucket", &w.operator, body(Some(TOKEN)))
            .await
            .0,
        403
    );
    // A wrong token is stored (the admin may fix Bitbucket first) and the check says why.
    let (status, created) = put(body(Some("wrong-token-51b0"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["origin"].as_str(), created["credential"].as_str()),
        (Some("api"), Some("token"))
    );
    assert!(
        !created.to_string().contains("wrong-token-51b0"),
        "a credential is never shown"
    );
    let (_, check) = w.post("/api/v1/targets/bitbucket/check", &w.operator, json!({})).await;
    assert_eq!(check["ok"], false, "{check}");
    assert!(
        check["error"]
            .as_str()
            .unwrap()
            .contains("refused the credentials of 'admin'"),
        "{check}"
    );
    // Fixed; then replaced without a token, which keeps the stored one.
    assert_eq!(put(body(Some(TOKEN))).await.0, 200);
    let (status, replaced) = put(body(None)).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["policy"]["threshold"]["count"], 40);
    let (_, check) = w.post("/api/v1/targets/bitbucket/check", &w.operator, json!({})).await;
    assert_eq!(check["ok"], true, "{check}");
    assert!(!w.get("/api/v1/targets", &w.viewer).await.1.to_string().contains(TOKEN));
    // Mistakes: a second target on the same instance, a mismatched id, a bad url, an unknown
    // field. (A second target on another instance is another target.)
    let mut other = body(Some(TOKEN));
    other["id"] = json!("other");
    let (status, e) = w
        .send_json(Method::PUT, "/api/v1/targets/other", &w.admin, other.clone())
        .await;
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("targets 'bitbucket' and 'other' both write to"),
        "{e}"
    );
    let mut elsewhere = other.clone();
    elsewhere["url"] = json!("http://127.0.0.1:9");
    let (status, e) = w
        .send_json(Method::PUT, "/api/v1/targets/other", &w.admin, elsewhere)
        .await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(
        w.send_json(Method::DELETE, "/api/v1/targets/other", &w.admin, json!({}))
            .await
            .0,
        204
    );
    assert_eq!(
        w.send_json(Method::PUT, "/api/v1/targets/bitbucket", &w.admin, other)
            .await
            .0,
        422
    );
    let mut bad = body(None);
    bad["url"] = json!("ftp://bitbucket.example");
    assert_eq!(put(bad).await.0, 422);
    let mut bad = body(None);
    bad["treshold"] = json!({});
    assert_eq!(put(bad).await.0, 422);
    // It runs, and a restarted Roster finds it (sealed in the store).
    let run = w.run(json!({})).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_bitbucket_matches(&w.world.bb, &d);
    let path = w.world.rt.dir.path().join("roster.toml");
    let again = roster_serve::Service::new(
        w.world.store.clone(),
        w.world.rt.runtime.clone(),
        &path,
        common::kinds(),
    )
    .unwrap();
    assert_eq!(again.config().target().unwrap().connection["url"], w.world.bb.url());
    // Deleted: nothing runs again.
    assert_eq!(
        w.send_json(Method::DELETE, "/api/v1/targets/bitbucket", &w.admin, json!({}))
            .await
            .0,
        204
    );
    assert_eq!(w.get("/api/v1/targets", &w.viewer).await.1, json!([]));
    assert_eq!(w.post("/api/v1/runs", &w.operator, json!({})).await.0, 409);
    w.assert_audited(&["target.create", "target.replace", "target.delete"])
        .await;
}

/// The served Crowd directory is a target like Bitbucket: created through the API with its own
/// settings (no URL, account or credential), shown with them, tested, and synced into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_directory_target_is_created_through_the_api_and_synced_into() {
    let d = Directory::generate(30, 3, 2);
    let w = ApiWorld::start_without_target(EntraWorld::new(tenant(&d), bitbucket()).await).await;
    let body = json!({"id": "crowd", "kind": "crowd-directory", "licensed_groups": ["bitbucket-users"],
                      "seats": 100, "default_groups": ["bitbucket-users"]});
    let (status, created) = w
        .send_json(Method::PUT, "/api/v1/targets/crowd", &w.admin, body.clone())
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "crowd-directory");
    assert_eq!(
        (&created["licensed_groups"], &created["seats"]),
        (&json!(["bitbucket-users"]), &json!(100))
    );
    assert!(created["url"].is_null() && created["credential"].is_null(), "{created}");
    let mut bad = body.clone();
    bad["url"] = json!("https://bitbucket.example.com");
    let (status, e) = w.send_json(Method::PUT, "/api/v1/targets/crowd", &w.admin, bad).await;
    assert_eq!(status, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("unknown field `url`"), "{e}");

    let run = w.run(json!({})).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let served = w.world.store.served_state().unwrap();
    let names: std::collections::BTreeSet<String> = served.users.iter().map(|u| u.name.to_lowercase()).collect();
    assert_eq!(names, d.active_usernames());
    let (_, check) = w.post("/api/v1/targets/crowd/check", &w.operator, json!({})).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["licensed_users"], 100, "{check}");
    assert_eq!(check["licensed_users_in_use"], d.active_usernames().len(), "{check}");
}

/// A Bitbucket Cloud workspace administered at admin.atlassian.com is defined through the API
/// with both its credentials (the API token and the SCIM directory's key): neither is ever
/// shown, a replacement that leaves them out keeps both, and a replacement without the SCIM
/// table keeps no SCIM key. It is tested and synced into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_target_is_defined_through_the_api_with_its_scim_key_write_only() {
    use roster_sim::bitbucket_cloud::{Administration, CloudSim, CloudState};
    const API_TOKEN: &str = "ATATT-3c81f0aa";
    const SCIM_KEY: &str = "scim-key-90e2d4";
    let d = Directory::generate(12, 2, 1);
    let mut state = CloudState::new("acme", Administration::AdminHub);
    state.credentials("admin@example.com", API_TOKEN);
    state.scim_directory("dir-7c6f", SCIM_KEY);
    state.add_group("bitbucket-users", Some("write"));
    state.product_access(&["bitbucket-users"]);
    let me = state.add_account("admin", "admin", "admin@example.com");
    state.join(&me, "bitbucket-users");
    state.make_owner(&me);
    let sim = CloudSim::start(state).await;
    let w = ApiWorld::start_without_target(EntraWorld::new(tenant(&d), bitbucket()).await).await;

    let body = |secrets: bool, scim: bool| {
        let mut b = json!({"id": "cloud", "kind": "bitbucket-cloud", "url": sim.url(), "workspace": "acme",
                           "username": "admin@example.com", "default_groups": ["bitbucket-users"]});
        if scim {
            b["scim"] = json!({"directory_id": "dir-7c6f", "url": sim.url()});
            b["licensed_groups"] = json!(["bitbucket-users"]);
        }
        if secrets {
            b["api_token"] = json!(API_TOKEN);
            b["scim"]["api_key"] = json!(SCIM_KEY);
        }
        b
    };
    let put = |b: Value| w.send_json(Method::PUT, "/api/v1/targets/cloud", &w.admin, b);
    let shown = |v: &Value| {
        let text = v.to_string();
        assert!(
            !text.contains(API_TOKEN) && !text.contains(SCIM_KEY),
            "a credential is shown: {text}"
        );
    };
    let (status, created) = put(body(true, true)).await;
    assert_eq!(status, 201, "{created}");
    shown(&created);
    assert_eq!(
        (
            &created["workspace"],
            &created["scim_directory_id"],
            &created["credential"]
        ),
        (&json!("acme"), &json!("dir-7c6f"), &json!("api_token"))
    );
    let check = || w.post("/api/v1/targets/cloud/check", &w.operator, json!({}));
    let (_, c) = check().await;
    assert_eq!(c["ok"], true, "{c}");

    // Replaced without either secret: both kept.
    let (status, replaced) = put(body(false, true)).await;
    assert_eq!(status, 200, "{replaced}");
    let (_, c) = check().await;
    assert_eq!(c["ok"], true, "the stored token and key were kept: {c}");
    let run = w.run(json!({})).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let scim = sim.lock().scim_users();
    for u in d.users.iter().filter(|u| u.active) {
        assert!(scim.contains_key(&u.email.to_lowercase()), "{} provisioned", u.email);
    }
    shown(&w.get("/api/v1/targets", &w.viewer).await.1);
    shown(&w.get(&format!("/api/v1/runs/{}", run["id"]), &w.viewer).await.1);

    // A SCIM key given as a reference to the server's environment is refused, naming the field.
    let mut by_env = body(false, true);
    by_env["scim"]["api_key"] = json!({"env": "HOME"});
    let (status, e) = put(by_env).await;
    assert_eq!(status, 422, "{e}");

    // Without the SCIM table the key is not kept: the stored target has none.
    let (status, moved) = put(body(false, false)).await;
    assert_eq!(status, 200, "{moved}");
    assert!(moved["scim_directory_id"].is_null(), "{moved}");
    let stored = w.world.store.api_target("cloud").unwrap().unwrap();
    assert!(stored.get("scim").is_none(), "{stored}");
    assert!(!stored.to_string().contains(SCIM_KEY), "{stored}");
}

/// A stored SCIM directory key is only ever sent where it was given for: a replacement that
/// moves `scim.url` to another host and leaves the key out is refused, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_target_s_scim_key_is_not_kept_for_another_scim_host() {
    const SCIM_KEY: &str = "scim-key-5b17aa";
    let d = Directory::generate(3, 1, 1);
    let w = ApiWorld::start_without_target(EntraWorld::new(tenant(&d), bitbucket()).await).await;
    let body = |scim_url: &str, secrets: bool| {
        let mut b = json!({"id": "cloud", "kind": "bitbucket-cloud", "url": "http://127.0.0.1:9", "workspace": "acme",
                           "username": "admin@example.com", "default_groups": ["bitbucket-users"],
                           "licensed_groups": ["bitbucket-users"],
                           "scim": {"directory_id": "dir-1", "url": scim_url}});
        if secrets {
            b["api_token"] = json!("ATATT-1");
            b["scim"]["api_key"] = json!(SCIM_KEY);
        }
        b
    };
    let put = |b: Value| w.send_json(Method::PUT, "/api/v1/targets/cloud", &w.admin, b);
    let (status, created) = put(body("http://127.0.0.1:9", true)).await;
    assert_eq!(status, 201, "{created}");
    let (status, moved) = put(body("http://scim.attacker.example", false)).await;
    assert_eq!(status, 422, "the stored SCIM key would go to another host: {moved}");
    assert!(moved.to_string().contains("scim.api_key"), "{moved}");
    let stored = w.world.store.api_target("cloud").unwrap().unwrap();
    assert_eq!(stored["scim"]["url"], "http://127.0.0.1:9", "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_from_roster_toml_is_read_only_through_the_api() {
    let (w, _) = world(5, "").await;
    let (_, t) = w.get("/api/v1/targets/bitbucket", &w.viewer).await;
    assert_eq!(t["origin"], "file", "{t}");
    assert_eq!(t["credential"], "password");
    assert!(!t.to_string().contains("\"value\""), "{t}");
    let body = json!({"id": "bitbucket", "url": w.world.bb.url(), "username": "admin", "password": "x"});
    let (status, e) = w
        .send_json(Method::PUT, "/api/v1/targets/bitbucket", &w.admin, body)
        .await;
    assert_eq!(status, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("roster.toml"), "{e}");
    let (status, _) = w
        .send_json(Method::DELETE, "/api/v1/targets/bitbucket", &w.admin, json!({}))
        .await;
    assert_eq!(status, 409);
    let (_, check) = w.post("/api/v1/targets/bitbucket/check", &w.operator, json!({})).await;
    assert_eq!(check["ok"], true, "{check}");
}

/// A server on 127.0.0.1 that is not Bitbucket: it keeps the `Authorization` header of every
/// request and answers 401 with an HTML page carrying `page`.
async fn impostor(
    page: &'static str,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let kept = kept.clone();
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            kept.lock().unwrap().push(auth.to_string());
            (
                axum::http::StatusCode::UNAUTHORIZED,
                [("content-type", "text/html")],
                format!("<html><body>{page}</body></html>"),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen, task)
}

/// Pointing the target at another origin (scheme, host or port) needs its credentials again:
/// a stored token never follows a changed url. The check then reports what the other server
/// answered by status and type, never its body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_moved_to_another_origin_needs_its_credentials_again() {
    const TOKEN: &str = "bbtok-5c2e81d0aa47";
    let d = Directory::generate(5, 2, 1);
    let mut bb = bitbucket();
    bb.set_token(TOKEN);
    let w = ApiWorld::start_without_target(EntraWorld::new(tenant(&d), bb).await).await;
    let (elsewhere, seen, server) = impostor("session-cookie-3f9d71 <form action=/login>").await;
    let body = |url: &str, token: Option<&str>| {
        let mut b = json!({"id": "bitbucket", "url": url, "username": "admin"});
        if let Some(t) = token {
            b["token"] = json!(t);
        }
        b
    };
    let put = |b: Value| w.send_json(Method::PUT, "/api/v1/targets/bitbucket", &w.admin, b);
    assert_eq!(put(body(&w.world.bb.url(), Some(TOKEN))).await.0, 201);
    // The same origin, written differently, keeps the stored token.
    let (status, same) = put(body(&format!("{}/", w.world.bb.url()), None)).await;
    assert_eq!(status, 200, "{same}");
    let (_, check) = w.post("/api/v1/targets/bitbucket/check", &w.operator, json!({})).await;
    assert_eq!(check["ok"], true, "{check}");
    // Another port of the same host is another origin: refused, naming the field and why.
    let (status, e) = put(body(&elsewhere, None)).await;
    assert_eq!(status, 422, "{e}");
    let error = e["error"].as_str().unwrap();
    assert!(
        error.starts_with("url:") && error.contains(&elsewhere) && error.contains("token"),
        "{e}"
    );
    let (_, t) = w.get("/api/v1/targets/bitbucket", &w.viewer).await;
    assert_eq!(
        t["url"],
        format!("{}/", w.world.bb.url()),
        "the refused change is not stored"
    );
    assert_eq!(
        w.post("/api/v1/targets/bitbucket/check", &w.operator, json!({}))
            .await
            .1["ok"],
        true
    );
    assert!(seen.lock().unwrap().is_empty(), "nothing was sent to the other origin");
    // With credentials of its own it moves; the check summarises the other server's answer.
    assert_eq!(put(body(&elsewhere, Some("token-for-elsewhere"))).await.0, 200);
    let (status, check) = w.post("/api/v1/targets/bitbucket/check", &w.operator, json!({})).await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], false, "{check}");
    let error = check["error"].as_str().unwrap();
    assert!(error.contains("401"), "{check}");
    assert!(
        !error.contains("session-cookie-3f9d71") && !error.contains("<form"),
        "{check}"
    );
    let sent = seen.lock().unwrap().clone();
    assert!(!sent.is_empty() && sent.iter().all(|a| !a.contains(TOKEN)), "{sent:?}");
    // A run's error text is summarised the same way.
    let run = w.run(json!({})).await;
    assert_ne!(run["state"], "succeeded", "{run}");
    assert!(!run.to_string().contains("session-cookie-3f9d71"), "{run}");
    server.abort();
}

/// Deprovisioning far above what these sources usually cause is announced: after six quiet
/// incremental runs, a run that deactivates 12 people (thresholds set high, so it is not held)
/// reaches the webhook as a volume spike naming the source, the count and the usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivation_spike_is_announced_against_the_sources_usual() {
    let hooks = common::webhook::Receiver::start().await;
    let d = Directory::generate(40, 4, 2);
    let mut e = EntraWorld::new(tenant(&d), bitbucket()).await;
    e.target_extra =
        "threshold = { count = 1000, percent = 100, people_losing_memberships = { count = 1000, percent = 100, floor = 5 } }"
            .into();
    let w = ApiWorld::start(
        e,
        &format!("[[alert]]\nurl = \"{}\"\nevents = [\"volume-spike\"]\n", hooks.url),
    )
    .await;
    assert_eq!(w.run(json!({"mode": "full"})).await["state"], "succeeded");
    for _ in 0..6 {
        assert_eq!(w.run(json!({"mode": "incremental"})).await["state"], "succeeded");
    }
    assert!(hooks.got().is_empty(), "quiet runs raise nothing: {:?}", hooks.got());
    for u in d.users.iter().take(12) {
        w.world.idp.lock().hard_delete_user(&u.id);
    }
    let spike = w.run(json!({"mode": "incremental"})).await;
    assert_eq!(spike["state"], "succeeded", "{spike}");
    let alert = hooks
        .wait_event("volume-spike", std::time::Duration::from_secs(5))
        .await;
    let text = alert.to_string();
    assert!(text.contains("entra"), "names the source: {alert}");
    assert_eq!(alert["details"]["count"], 12, "{alert}");
    assert_eq!(alert["details"]["kind"], "deactivate-user", "{alert}");
}

/// A mapping given through the API is configuration like any other: the next run uses a new
/// one; a broken one is refused with its line and column, and the one before keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_replaced_through_the_api_is_used_next_run_and_a_broken_one_is_refused() {
    let d = Directory::generate(10, 2, 2);
    let mut e = EntraWorld::new(tenant(&d), bitbucket()).await;
    // The new mapping renames every account: a mass rename the default threshold would hold.
    e.target_extra = "threshold = { renames = { count = 50, percent = 100, floor = 5 } }".into();
    let w = ApiWorld::start(e, "").await;
    w.world.rt.put("mapping", "mapping.wasm");
    w.world.rt.runtime.reload().await;
    let graph = w.world.idp.url();
    let source = |username: &str| {
        json!({
            "id": "entra2", "plugin": "entra", "priority": 50,
            "allow_hosts": [graph], "allow_insecure_http": true, "allow_private_addresses": true,
            "settings": {"tenant_id": common::entra::TENANT, "client_id": common::entra::CLIENT,
                         "graph_url": graph, "login_url": graph},
            "secrets": [{"name": "client_secret", "value": common::entra::SECRET, "hosts": [graph],
                         "use": {"form": "client_secret"}, "path": format!("/{}/oauth2/", common::entra::TENANT)}],
            "transforms": [{"plugin": "mapping", "settings": {"user": {"username": username}}}]
        })
    };
    let (status, created) = w
        .post(
            "/api/v1/sources",
            &w.admin,
            source("Append(StripDomain([userPrincipalName]), \".a\")"),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(w.run(json!({})).await["state"], "succeeded");
    let first = format!("{}.a", d.users[0].username);
    assert!(w.world.bb.lock().users().contains_key(&first), "{first}");

    // Broken: refused with where; the stored mapping is unchanged and keeps serving.
    let (status, e) = w
        .send_json(
            Method::PUT,
            "/api/v1/sources/entra2",
            &w.admin,
            source("Append(StripDomain([userPrincipalName]), "),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("mapping") && msg.contains("column"), "{msg}");
    let (_, stored) = w.get("/api/v1/sources/entra2", &w.viewer).await;
    assert!(stored.to_string().contains("\\\".a\\\""), "{stored}");
    let r = w.run(json!({})).await;
    assert_eq!(r["state"], "succeeded");
    assert!(r["summary"]["planned"].as_object().unwrap().is_empty(), "{r}");

    // A new one: the next run renames the accounts it made.
    let (status, e) = w
        .send_json(
            Method::PUT,
            "/api/v1/sources/entra2",
            &w.admin,
            source("Append(StripDomain([userPrincipalName]), \".b\")"),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    let r = w.run(json!({})).await;
    assert_eq!(r["summary"]["planned"]["rename-user"], 10, "{r}");
    assert!(
        w.world
            .bb
            .lock()
            .users()
            .contains_key(&format!("{}.b", d.users[0].username))
    );
    // A settings file of this server cannot be named through the API.
    let mut file = source("[x]");
    file["transforms"][0] = json!({"plugin": "mapping", "settings_file": "/etc/passwd"});
    let (status, e) = w.send_json(Method::PUT, "/api/v1/sources/entra2", &w.admin, file).await;
    assert_eq!(status, 422, "{e}");
}

/// Plugins through the API: an uploaded component is checked, installed and listed with its
/// world, version and sha256; a broken or misnamed one is refused and changes nothing; a reload
/// keeps what is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_is_uploaded_listed_and_a_broken_one_changes_nothing() {
    let (w, _) = world(5, "").await;
    let bytes = std::fs::read(common::component("fixture_transform_v010")).unwrap();
    let sha = roster_runtime::loader::sha256_hex(&bytes);
    let put = |file: &str, body: Vec<u8>, token: &str| {
        w.req(Method::PUT, &format!("/api/v1/plugins/{file}"), token)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    // Refused before its body is read: the connection is closed, not reused for the next one.
    let refused = put("upper.wasm", bytes.clone(), &w.operator).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["connection"], "close");
    let answer = put("upper.wasm", bytes.clone(), &w.admin).await.unwrap();
    assert_eq!(answer.status(), 200);
    let view: Value = answer.json().await.unwrap();
    assert_eq!(
        (
            view["name"].as_str(),
            view["world"].as_str(),
            view["version"].as_str(),
            view["sha256"].as_str()
        ),
        (
            Some("transform-v010"),
            Some("transform"),
            Some("1.0.0"),
            Some(sha.as_str())
        ),
        "{view}"
    );
    let before = w.get("/api/v1/plugins", &w.viewer).await.1;
    let names: Vec<&str> = before["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"transform-v010") && names.contains(&"entra"),
        "{before}"
    );
    // Neither a transform nor an HTTP connector can verify passwords.
    assert!(
        before["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["verifies_passwords"] == false),
        "{before}"
    );
    assert!(w.world.rt.plugins_dir().join("upper.wasm").is_file());

    // Broken (4 MB, past axum's default body limit: refused for what it is, not its size),
    // misnamed: refused, nothing changes.
    let mut junk = b"\0asm\x0d\0\x01\0".to_vec();
    junk.resize(4 << 20, 0x41);
    let answer = put("upper.wasm", junk, &w.admin).await.unwrap();
    assert_eq!(answer.status(), 422);
    assert!(
        put("..%2Fevil.wasm", bytes.clone(), &w.admin)
            .await
            .unwrap()
            .status()
            .is_client_error()
    );
    assert_eq!(put("evil.so", bytes.clone(), &w.admin).await.unwrap().status(), 422);
    assert_eq!(
        w.get("/api/v1/plugins", &w.viewer).await.1["plugins"],
        before["plugins"]
    );
    assert_eq!(
        std::fs::read(w.world.rt.plugins_dir().join("upper.wasm")).unwrap(),
        bytes
    );
    // A component that is already served from another file is refused before it is renamed
    // into the folder: two files would fight over one plugin name.
    let entra = before["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "entra")
        .unwrap()["file"]
        .as_str()
        .unwrap()
        .to_string();
    let entra_bytes = std::fs::read(w.world.rt.plugins_dir().join(&entra)).unwrap();
    let answer = put("entra-copy.wasm", entra_bytes, &w.admin).await.unwrap();
    assert_eq!(answer.status(), 422);
    let refusal: Value = answer.json().await.unwrap();
    assert!(refusal["error"].as_str().unwrap().contains(&entra), "{refusal}");
    // No refused upload left a file behind, finished or temporary.
    let mut files: Vec<String> = std::fs::read_dir(w.world.rt.plugins_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<String> = before["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    assert_eq!(files, expected);
    let (status, reloaded) = w.post("/api/v1/plugins/reload", &w.operator, json!({})).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["plugins"], before["plugins"]);
    w.assert_audited(&["plugin.upload", "plugin.upload-refused", "plugin.reload"])
        .await;
    let (_, audit) = w.get("/api/v1/audit", &w.viewer).await;
    let refused: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "plugin.upload-refused")
        .collect();
    assert_eq!(
        refused.len(),
        4,
        "the broken, two misnamed and the duplicate uploads: {audit}"
    );
    assert!(refused.iter().all(|e| e["actor"] == "token:admin"), "{audit}");
}

/// What the plugins-folder watcher does is in the audit log: a new file loaded, a new version
/// swapped in, a broken file refused, a file removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_changes_made_by_the_folder_watcher_are_audited() {
    let (w, _) = world(5, "").await;
    let _watch = w.service.watch_plugins().unwrap();
    let dir = w.world.rt.plugins_dir();
    let w = &w;
    let watched = |count: usize| async move {
        let started = std::time::Instant::now();
        loop {
            let (_, audit) = w.get("/api/v1/audit", &w.viewer).await;
            let seen: Vec<String> = audit
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .filter(|e| e["actor"] == "plugins-watcher")
                .map(|e| {
                    format!(
                        "{} {} {}",
                        e["action"].as_str().unwrap(),
                        e["subject"].as_str().unwrap(),
                        e["detail"].as_str().unwrap()
                    )
                })
                .collect();
            if seen.len() >= count {
                return seen;
            }
            assert!(started.elapsed() < common::PROMPT, "the watcher audited only {seen:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    w.world.rt.put("fixture_hostile", "hostile.wasm");
    let seen = watched(1).await;
    assert!(
        seen[0].starts_with("plugin.load hostile.wasm hostile 1.0.0 sha256 "),
        "{seen:?}"
    );
    w.world.rt.put("fixture_hostile_v2", "hostile.wasm");
    let seen = watched(2).await;
    assert!(
        seen[1].starts_with("plugin.swap hostile.wasm hostile 1.0.0 sha256 ") && seen[1].contains("→ hostile 2.0.0"),
        "{seen:?}"
    );
    std::fs::write(dir.join(".junk.tmp"), b"\0asm junk").unwrap();
    std::fs::rename(dir.join(".junk.tmp"), dir.join("junk.wasm")).unwrap();
    let seen = watched(3).await;
    assert!(seen[2].starts_with("plugin.refused junk.wasm "), "{seen:?}");
    std::fs::remove_file(dir.join("hostile.wasm")).unwrap();
    let seen = watched(4).await;
    assert!(
        seen[3].starts_with("plugin.remove hostile.wasm hostile 2.0.0"),
        "{seen:?}"
    );
}

/// `roster token create` prints a token once; the API takes it with its role's rights, the
/// list never shows it, and `roster token revoke` in another process shuts it out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_made_by_the_cli_works_by_its_role_until_revoked() {
    use base64::Engine as _;
    let (w, _) = world(5, "").await;
    let roster = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--data-dir")
            .arg(w.world.rt.dir.path())
            .args(args)
            .env(
                "ROSTER_SECRET_KEY",
                base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (token, note) = roster(&["token", "create", "--role", "viewer", "--name", "dashboard"]);
    assert!(note.contains("shown this once"), "{note}");
    assert!(token.len() >= 32 && !token.contains(' '), "{token}");
    assert_eq!(w.get("/api/v1/sources", &token).await.0, 200);
    assert_eq!(
        w.post("/api/v1/runs", &token, json!({})).await.0,
        403,
        "a viewer starts nothing"
    );
    // Listed, never shown again (the store keeps its SHA-256 only; see store::tokens).
    let (list, _) = roster(&["token", "list"]);
    assert!(!list.contains(&token), "{list}");
    let id = list
        .lines()
        .find(|l| l.contains("dashboard"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}"))
        .to_string();
    let (revoked, _) = roster(&["token", "revoke", &id]);
    assert_eq!(w.get("/api/v1/sources", &token).await.0, 401, "{list}\n{revoked}");
}

/// A change made by hand in Bitbucket is drift: the next run's JSON says what changed and what
/// was done (`summary.drift`), `/metrics` counts it by change and handling, and a `drift` alert
/// goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_shows_in_the_run_json_the_metrics_and_an_alert() {
    let hooks = common::webhook::Receiver::start().await;
    let (w, d) = world(
        30,
        &format!("[[alert]]\nurl = \"{}\"\nevents = [\"drift\"]\n", hooks.url),
    )
    .await;
    let first = w.run(json!({})).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    // The smallest group with members: someone is left outside it.
    let (group, members) = d
        .expected_members()
        .into_iter()
        .filter(|(_, m)| !m.is_empty())
        .min_by_key(|(_, m)| m.len())
        .unwrap();
    let outsider = d
        .users
        .iter()
        .map(|u| u.username.to_lowercase())
        .find(|u| !members.contains(u))
        .unwrap();
    w.world.bb.lock().hand_edit(roster_sim::bitbucket::HandEdit::AddMember {
        group: group.clone(),
        user: outsider.clone(),
    });
    let r = w.run(json!({})).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    let drift = &r["summary"]["drift"];
    assert_eq!(drift.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(
        (
            &drift[0]["change"],
            &drift[0]["handled"],
            &drift[0]["group"],
            &drift[0]["account"]
        ),
        (
            &json!("member-added"),
            &json!("reverted"),
            &json!(group),
            &json!(outsider)
        ),
        "{drift}"
    );
    assert!(!w.world.bb.lock().groups()[&group].contains(&outsider), "reverted");
    let metrics = w
        .req(Method::GET, "/metrics", &w.viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("roster_drift_total{target=\"bitbucket\",change=\"member-added\",handling=\"reverted\"} 1"),
        "{metrics}"
    );
    let got = hooks.wait_count(1, std::time::Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "only the drift alert was asked for: {got:?}");
    assert_eq!(got[0]["event"], "drift", "{got:?}");
    assert!(got[0]["summary"].as_str().unwrap().contains(&outsider), "{}", got[0]);
}
