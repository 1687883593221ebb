//! The REST API served on 127.0.0.1:0 over an Entra world (Graph and Bitbucket simulators),
//! with a token per role.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roster_serve::service::Service;
use roster_store::Role;
use serde_json::Value;

use super::Configured;
use super::entra::EntraWorld;

pub struct ApiWorld {
    pub world: EntraWorld,
    pub service: Arc<Service>,
    pub base: String,
    pub admin: String,
    pub operator: String,
    pub viewer: String,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiWorld {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `service`'s REST API on 127.0.0.1:0; returns its base URL and the server task
/// (abort it to stop the server).
pub async fn serve(service: Arc<Service>) -> (String, tokio::task::JoinHandle<()>) {
    let (app, _) = roster_serve::api::routes(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    (format!("http://{addr}"), task)
}

impl ApiWorld {
    /// Serves the API for `world`'s configuration (written to `roster.toml` with `extra`
    /// appended).
    pub async fn start(world: EntraWorld, extra: &str) -> ApiWorld {
        let text = format!("{}\n{extra}\n", world.config_text());
        ApiWorld::start_with(world, &text).await
    }

    /// Serves the API for `world` with a roster.toml without `[target]`: the target is to be
    /// created through the API.
    pub async fn start_without_target(world: EntraWorld) -> ApiWorld {
        let text = world.config_text();
        let text = text[..text.find("[target]").unwrap()].to_string();
        ApiWorld::start_with(world, &text).await
    }

    async fn start_with(world: EntraWorld, text: &str) -> ApiWorld {
        let path = world.rt.dir.path().join("roster.toml");
        std::fs::write(&path, text).unwrap();
        let service = Service::new(world.store.clone(), world.rt.runtime.clone(), &path, super::kinds()).unwrap();
        let (base, task) = serve(service.clone()).await;
        let token = |role: Role| world.store.create_token(role.as_str(), role, "test").unwrap().1;
        ApiWorld {
            admin: token(Role::Admin),
            operator: token(Role::Operator),
            viewer: token(Role::Viewer),
            service,
            base,
            http: reqwest::Client::new(),
            world,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with `token` (none when empty).
    pub fn req(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.url(path));
        if token.is_empty() { r } else { r.bearer_auth(token) }
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let resp = self.req(reqwest::Method::GET, path, token).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = self
            .req(reqwest::Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn send_json(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = self.req(method, path, token).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Asserts the audit log holds these actions.
    pub async fn assert_audited(&self, actions: &[&str]) {
        let (_, audit) = self.get("/api/v1/audit", &self.viewer).await;
        let seen: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        for a in actions {
            assert!(seen.contains(a), "{a} not in the audit log: {seen:?}");
        }
    }

    /// Starts a run through the API as the operator (`body` as for `POST /api/v1/runs`) and
    /// waits until it has ended; returns its record.
    pub async fn run(&self, body: Value) -> Value {
        let (status, started) = self.post("/api/v1/runs", &self.operator, body).await;
        assert_eq!(status, 202, "{started}");
        self.wait_run(started["run_id"].as_i64().unwrap()).await
    }

    /// Waits until run `id` has ended; returns its record.
    pub async fn wait_run(&self, id: i64) -> Value {
        self.wait_run_for(id, Duration::from_secs(60)).await
    }

    /// Waits until run `id` has ended, at most `limit`; returns its record.
    pub async fn wait_run_for(&self, id: i64, limit: Duration) -> Value {
        let until = std::time::Instant::now() + limit;
        while std::time::Instant::now() < until {
            let (status, run) = self.get(&format!("/api/v1/runs/{id}"), &self.viewer).await;
            assert_eq!(status, 200, "{run}");
            if run["state"] != "running" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("run {id} did not end within {limit:?}");
    }
}
