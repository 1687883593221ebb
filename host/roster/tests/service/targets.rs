//! Several targets in one configuration: Bitbucket Data Center written through its REST API
//! (the simulator) and Roster's own Crowd directory (read by Jira and Confluence) from one
//! Roster. One sync fetches and merges once, then reconciles each target with its own run, plan
//! and guard; a plan held on one target leaves the other applied; approving it applies it to
//! its target only.

use crate::common;

use common::Configured;
use common::world::{World, bitbucket};
use reqwest::Method;
use roster_serve::Config;
use roster_serve::service::Service;
use roster_sim::directory::Directory;
use serde_json::{Value, json};

/// The Crowd directory target: a looser guard than Bitbucket's (a mass deactivation passes).
const CROWD: &str = r#"
[[target]]
id = "crowd"
kind = "crowd-directory"
licensed_groups = ["bitbucket-users"]
admin_groups = ["admins"]
default_groups = ["bitbucket-users"]

[target.threshold]
count = 1000
percent = 100.0
people_losing_memberships = { count = 1000, percent = 100.0, floor = 1000 }
group_members_lost = { percent = 100.0, floor = 1000 }
"#;

/// `world`'s configuration with its Bitbucket `[target]` as the first `[[target]]` (id
/// `bitbucket`, the default guard) and the Crowd directory as the second.
fn two_targets(world: &World) -> String {
    let text = world.config_text();
    let text = text.replacen("[target]", "[[target]]\nid = \"bitbucket\"", 1);
    format!("{text}\n{CROWD}")
}

struct Two {
    world: World,
    service: std::sync::Arc<Service>,
    base: String,
    http: reqwest::Client,
    operator: String,
    admin: String,
    app_password: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Two {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Two {
    async fn start(world: World, text: &str) -> Two {
        let path = world.rt.dir.path().join("roster.toml");
        std::fs::write(&path, text).unwrap();
        let service = Service::new(world.store.clone(), world.rt.runtime.clone(), &path, common::kinds()).unwrap();
        let (base, task) = common::api::serve(service.clone()).await;
        let token = |role: roster_store::Role| world.store.create_token(role.as_str(), role, "test").unwrap().1;
        let app_password = world
            .store
            .crowd_app_create("jira", &["127.0.0.1".to_string(), "::1".to_string()], None, "test")
            .unwrap()
            .1;
        Two {
            operator: token(roster_store::Role::Operator),
            admin: token(roster_store::Role::Admin),
            service,
            base,
            http: reqwest::Client::new(),
            app_password,
            task,
            world,
        }
    }

    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Starts a sync through the API and waits for every run it started; the runs' records.
    async fn sync(&self, body: Value) -> Vec<Value> {
        let (status, started) = self
            .send(Method::POST, "/api/v1/runs", &self.operator, Some(body))
            .await;
        assert_eq!(status, 202, "{started}");
        let runs = started["runs"].as_array().unwrap().clone();
        assert_eq!(
            started["run_id"], runs[0]["id"],
            "the single id is the first run's: {started}"
        );
        let mut ended = Vec::new();
        for r in runs {
            let id = r["id"].as_i64().unwrap();
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let (_, run) = self
                    .send(Method::GET, &format!("/api/v1/runs/{id}"), &self.operator, None)
                    .await;
                if run["state"] != "running" {
                    assert_eq!(run["target"], r["target"], "{run}");
                    ended.push(run);
                    break;
                }
                assert!(std::time::Instant::now() < until, "run {id} did not end");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        ended
    }

    /// `GET /rest/usermanagement/1/user?username=…` as the application `jira`: status, body.
    async fn crowd_user(&self, name: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}/rest/usermanagement/1/user?username={name}", self.base))
            .basic_auth("jira", Some(&self.app_password))
            .header("accept", "application/xml")
            .header("x-atlassian-token", "no-check")
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    fn served_active(&self, name: &str) -> Option<bool> {
        let served = self.world.store.served_state().unwrap();
        served.users.iter().find(|u| u.name == name).map(|u| u.active)
    }
}

/// One sync writes the users into the simulated Bitbucket and serves them on the Crowd
/// endpoint; a mass deactivation is held on Bitbucket (default guard) while the Crowd directory
/// (looser guard) applies it; approving the held plan applies it to Bitbucket only; `target`
/// runs one target; the history filters by target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_roster_writes_bitbucket_and_serves_the_crowd_directory() {
    let mut d = Directory::generate(20, 3, 1);
    let world = World::new(&d, bitbucket()).await;
    let text = two_targets(&world);
    let w = Two::start(world, &text).await;

    let (status, targets) = w.send(Method::GET, "/api/v1/targets", &w.operator, None).await;
    assert_eq!(status, 200, "{targets}");
    let ids: Vec<&str> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bitbucket", "crowd"]);

    let runs = w.sync(json!({})).await;
    assert_eq!(runs.len(), 2, "one run per target: {runs:?}");
    assert_eq!(
        (runs[0]["target"].as_str(), runs[1]["target"].as_str()),
        (Some("bitbucket"), Some("crowd"))
    );
    for r in &runs {
        assert_eq!(r["state"], "succeeded", "{r}");
    }
    // The sources were fetched once, by the first run; the second planned from it.
    assert_eq!(runs[0]["summary"]["fetch"].as_array().unwrap().len(), 1, "{}", runs[0]);
    assert!(
        runs[1]["summary"]["fetch"].as_array().unwrap().is_empty(),
        "{}",
        runs[1]
    );
    assert_eq!(runs[1]["summary"]["directory_from_run"], runs[0]["id"]);

    w.world.assert_matches(&d);
    let (status, xml) = w.crowd_user("user000003").await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("name=\"user000003\""), "{xml}");
    assert!(xml.contains("user000003@example.com"), "{xml}");
    let (status, _) = w.crowd_user("nobody").await;
    assert_eq!(status, 404);

    // Five of twenty leave: 25 % deprovisioned, over Bitbucket's default 10 %.
    for u in d.users.iter_mut().take(5) {
        u.active = false;
    }
    w.world.write(&d);
    let runs = w.sync(json!({})).await;
    assert_eq!(runs[0]["state"], "held", "{}", runs[0]);
    assert_eq!(
        runs[1]["state"], "succeeded",
        "the held Bitbucket plan does not stop the Crowd directory: {}",
        runs[1]
    );
    assert_eq!(
        w.served_active("user000000"),
        Some(false),
        "the Crowd directory applied it"
    );
    assert!(
        w.world.sim.lock().licensed_users().contains("user000000"),
        "Bitbucket is untouched while its plan is held"
    );

    // Approving the held plan applies it to Bitbucket, and only there.
    let plan = runs[0]["plan_id"].as_str().unwrap();
    let (_, shown) = w
        .send(Method::GET, &format!("/api/v1/plans/{plan}"), &w.operator, None)
        .await;
    assert_eq!(shown["target"], "bitbucket", "{shown}");
    let hash = shown["hash"].as_str().unwrap().to_string();
    let crowd_runs_before = w
        .world
        .store
        .runs(100)
        .unwrap()
        .iter()
        .filter(|r| r.target == "crowd")
        .count();
    let (status, applied) = w
        .send(
            Method::POST,
            &format!("/api/v1/plans/{plan}/approve"),
            &w.admin,
            Some(json!({"hash": hash})),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["state"], "succeeded", "{applied}");
    assert_eq!(applied["target"], "bitbucket", "{applied}");
    let approval = w.world.store.run(applied["run_id"].as_i64().unwrap()).unwrap();
    assert_eq!(approval.target, "bitbucket");
    assert!(!w.world.sim.lock().licensed_users().contains("user000000"));
    let crowd_runs_after = w
        .world
        .store
        .runs(100)
        .unwrap()
        .iter()
        .filter(|r| r.target == "crowd")
        .count();
    assert_eq!(crowd_runs_before, crowd_runs_after, "no Crowd run came of the approval");

    // One target only: a sync naming the Crowd directory does not touch Bitbucket.
    d.users.push(roster_sim::directory::DirUser {
        id: "u-new".into(),
        username: "newcomer".into(),
        email: "newcomer@example.com".into(),
        display_name: "New Comer".into(),
        active: true,
    });
    w.world.write(&d);
    let runs = w.sync(json!({"target": "crowd"})).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["target"], "crowd");
    assert_eq!(runs[0]["state"], "succeeded", "{}", runs[0]);
    assert_eq!(w.served_active("newcomer"), Some(true));
    assert!(
        !w.world.sim.lock().users().contains_key("newcomer"),
        "Bitbucket was not synced"
    );
    let (status, e) = w
        .send(
            Method::POST,
            "/api/v1/runs",
            &w.operator,
            Some(json!({"target": "jira"})),
        )
        .await;
    assert_eq!(status, 404, "{e}");
    assert!(e.to_string().contains("no target named 'jira'"), "{e}");

    // The history, by target.
    let (status, crowd) = w
        .send(Method::GET, "/api/v1/runs?target=crowd", &w.operator, None)
        .await;
    assert_eq!(status, 200, "{crowd}");
    let crowd = crowd.as_array().unwrap();
    assert_eq!(crowd.len(), 3, "{crowd:?}");
    assert!(crowd.iter().all(|r| r["target"] == "crowd"));
    let (_, bb) = w
        .send(Method::GET, "/api/v1/runs?target=bitbucket", &w.operator, None)
        .await;
    assert_eq!(bb.as_array().unwrap().len(), 3, "two syncs and the approval: {bb}");
    assert_eq!(w.service.config().targets.len(), 2);
}

/// Targets created through the API: several, by id, listed; a second `crowd-directory` is
/// refused naming both; deleting one leaves the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_created_through_the_api_are_several() {
    let d = Directory::generate(4, 1, 1);
    let world = World::new(&d, bitbucket()).await;
    let text = world.config_text();
    let text = text[..text.find("[target]").unwrap()].to_string();
    let url = world.sim.url();
    let w = Two::start(world, &text).await;
    let put = |id: &str, body: Value| {
        let path = format!("/api/v1/targets/{id}");
        let w = &w;
        async move { w.send(Method::PUT, &path, &w.admin, Some(body)).await }
    };
    let (status, e) = put(
        "bitbucket",
        json!({"id": "bitbucket", "url": url, "username": "admin", "password": "password", "default_groups": ["bitbucket-users"]}),
    )
    .await;
    assert_eq!(status, 201, "{e}");
    let crowd = |id: &str| json!({"id": id, "kind": "crowd-directory", "licensed_groups": ["bitbucket-users"], "default_groups": ["bitbucket-users"]});
    let (status, e) = put("crowd", crowd("crowd")).await;
    assert_eq!(status, 201, "{e}");
    let (status, e) = put("crowd2", crowd("crowd2")).await;
    assert_eq!(status, 422, "{e}");
    assert!(
        e.to_string()
            .contains("'crowd' and 'crowd2' are both of kind crowd-directory"),
        "{e}"
    );
    let (_, listed) = w.send(Method::GET, "/api/v1/targets", &w.operator, None).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bitbucket", "crowd"]);

    let runs = w.sync(json!({"mode": "dry-run"})).await;
    assert_eq!(runs.len(), 2, "a dry run plans every target");
    assert!(runs.iter().all(|r| r["state"] == "planned"), "{runs:?}");
    assert!(
        !w.world.sim.lock().users().contains_key("user000001"),
        "a dry run writes nothing"
    );

    let (status, _) = w.send(Method::DELETE, "/api/v1/targets/crowd", &w.admin, None).await;
    assert_eq!(status, 204);
    let (_, listed) = w.send(Method::GET, "/api/v1/targets", &w.operator, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], "bitbucket");
}

/// roster.toml: `[target]` still reads as one target; `[[target]]` as several; two with one id,
/// or two Crowd directories, are refused with what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_targets_in_roster_toml_are_checked_together() {
    let d = Directory::generate(2, 1, 1);
    let world = World::new(&d, bitbucket()).await;
    let kinds = common::kinds();
    let dir = world.rt.dir.path();
    let one = Config::parse(&world.config_text(), dir, &kinds).unwrap();
    assert_eq!(one.targets.len(), 1);
    let two = Config::parse(&two_targets(&world), dir, &kinds).unwrap();
    let ids: Vec<&str> = two.targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["bitbucket", "crowd"]);

    let same_id = two_targets(&world).replace("id = \"crowd\"", "id = \"bitbucket\"");
    let e = Config::parse(&same_id, dir, &kinds).unwrap_err().to_string();
    assert!(
        e.contains("two targets are called 'bitbucket': [[target]] number 1 and [[target]] number 2"),
        "{e}"
    );
    let two_crowds = format!(
        "{}\n{}",
        two_targets(&world),
        CROWD.replace("id = \"crowd\"", "id = \"confluence\"")
    );
    let e = Config::parse(&two_crowds, dir, &kinds).unwrap_err().to_string();
    assert!(
        e.contains("targets 'crowd' and 'confluence' are both of kind crowd-directory"),
        "{e}"
    );
    let bad = two_targets(&world).replace("kind = \"crowd-directory\"", "kind = \"crowd-directory\"\nseatz = 3");
    let e = Config::parse(&bad, dir, &kinds).unwrap_err().to_string();
    assert!(e.contains("seatz"), "an unknown field is named: {e}");
}

/// `roster sync` prints each target's run; `--target` syncs one; `roster runs list` shows and
/// filters by target; an unknown target is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_syncs_every_target_or_the_one_named() {
    let d = Directory::generate(6, 2, 1);
    let world = World::new(&d, bitbucket()).await;
    let config = world.rt.dir.path().join("roster.toml");
    std::fs::write(&config, two_targets(&world)).unwrap();
    let roster = |args: &[&str]| {
        let dir = world.rt.dir.path().to_path_buf();
        let (config, args) = (config.clone(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
                .arg("--data-dir")
                .arg(dir.join("data"))
                .arg("--plugins-dir")
                .arg(dir.join("plugins"))
                .arg("--config")
                .arg(config)
                .args(&args)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        })
    };

    let (ok, stdout, stderr) = roster(&["sync", "--target", "crowd"]).await.unwrap();
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("run 1 (crowd): succeeded"), "{stdout}");
    assert!(!stdout.contains("(bitbucket)"), "{stdout}");
    assert!(
        !world.sim.lock().users().contains_key("user000001"),
        "Bitbucket was not synced"
    );

    let (ok, stdout, stderr) = roster(&["sync"]).await.unwrap();
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("run 2 (bitbucket): succeeded"), "{stdout}");
    assert!(stdout.contains("run 3 (crowd): succeeded"), "{stdout}");
    assert!(stdout.contains("sources fetched and merged once, by run 2"), "{stdout}");
    world.assert_matches(&d);

    let (ok, stdout, stderr) = roster(&["runs", "list", "--target", "crowd"]).await.unwrap();
    assert!(ok, "{stderr}");
    let mut lines = stdout.lines();
    assert!(lines.next().unwrap().contains("TARGET"), "{stdout}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows.iter().all(|r| r[4] == "crowd"), "{stdout}");

    let (ok, _, stderr) = roster(&["sync", "--target", "jira"]).await.unwrap();
    assert!(!ok);
    assert!(
        stderr.contains("no target named 'jira' (targets: bitbucket, crowd)"),
        "{stderr}"
    );
}
