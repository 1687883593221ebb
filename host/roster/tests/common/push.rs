//! A Roster that identity providers push to: its service (a push source `idp` and, optionally,
//! the Bitbucket simulator as target) served over real HTTP on 127.0.0.1 — the SCIM endpoint
//! and the REST API — with a SCIM token for the source, and a client that speaks SCIM to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_serve::service::Service;
use roster_sim::bitbucket::BitbucketSim;
use roster_store::{RunRow, Store};
use serde_json::{Value, json};

use super::TestRuntime;
use super::world::bitbucket;

/// The push source's id.
pub const SOURCE: &str = "idp";

/// The service, its HTTP server, the source's token and (with a target) the simulator.
pub struct Inbound {
    pub sim: Option<BitbucketSim>,
    pub store: Arc<Store>,
    pub service: Arc<Service>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The push source's SCIM token.
    pub token: String,
    pub http: reqwest::Client,
    _rt: TestRuntime,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inbound {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the pushed Roster writes to Bitbucket.
pub enum Target {
    /// The Bitbucket simulator, with these lines added to `[target]`.
    Bitbucket(&'static str),
    /// No `[target]`: Roster only serves what is pushed (e.g. to another Roster's `scim` source).
    None,
}

impl Inbound {
    /// `push` is added to `[source.push]`.
    pub async fn start(push: &str, target: Target) -> Inbound {
        let rt = TestRuntime::new(&[]).await;
        let store = super::store_in(&rt, 23);
        let (sim, target_text) = match target {
            Target::Bitbucket(extra) => {
                let sim = BitbucketSim::start(bitbucket()).await;
                let text = roster_sim::scenario::target_config(&sim.url(), extra);
                (Some(sim), text)
            }
            Target::None => (None, String::new()),
        };
        let text =
            format!("[[source]]\nid = \"{SOURCE}\"\n[source.push]\nprotocol = \"scim\"\n{push}\n\n{target_text}");
        let path = rt.dir.path().join("roster.toml");
        std::fs::write(&path, text).unwrap();
        let service = Service::new(store.clone(), rt.runtime.clone(), &path, super::kinds()).unwrap();
        let (base, task) = super::api::serve(service.clone()).await;
        let token = store.create_scim_token(SOURCE, "test", "test").unwrap().1;
        Inbound {
            sim,
            store,
            service,
            base,
            token,
            http: reqwest::Client::new(),
            _rt: rt,
            task,
        }
    }

    /// The source's SCIM base URL.
    pub fn scim_url(&self) -> String {
        format!("{}/scim/v2/{SOURCE}", self.base)
    }

    /// Sends a SCIM request with the source's token; the status and the JSON answer (null
    /// when empty).
    pub async fn scim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.scim_url()))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs a resource to `/Users` or `/Groups`; its id.
    pub async fn create(&self, endpoint: &str, body: Value) -> String {
        let (status, body) = self.scim(reqwest::Method::POST, endpoint, Some(body)).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// PATCHes `path` with `ops`; the status.
    pub async fn patch(&self, path: &str, ops: Value) -> u16 {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let (status, answer) = self.scim(reqwest::Method::PATCH, path, Some(body)).await;
        assert!(status == 200 || status == 204, "{status}: {answer}");
        status
    }

    /// The runs pushes started, oldest first.
    pub fn push_runs(&self) -> Vec<RunRow> {
        push_runs(&self.store)
    }

    /// Waits until `n` push runs have ended.
    pub async fn ended(&self, n: usize) -> Vec<RunRow> {
        ended(&self.store, &self.service, n).await
    }

    /// The simulator (a world with a target).
    pub fn bitbucket(&self) -> &BitbucketSim {
        self.sim
            .as_ref()
            .expect("this world has the Bitbucket simulator as its target")
    }

    /// Members of a Bitbucket group, sorted.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.bitbucket()
            .lock()
            .groups()
            .get(group)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The runs pushes started in `store`, oldest first.
pub fn push_runs(store: &Store) -> Vec<RunRow> {
    let filter = roster_store::RunFilter {
        trigger: Some(roster_model::Trigger::Push),
        ..Default::default()
    };
    let mut r = store.runs_filtered(&filter, 1000).unwrap();
    r.reverse();
    r
}

/// Waits until `n` push runs have ended and none is in progress (generously: the machine may
/// be loaded); the push runs, oldest first.
pub async fn ended(store: &Store, service: &Service, n: usize) -> Vec<RunRow> {
    let started = Instant::now();
    loop {
        let r = push_runs(store);
        if r.iter().filter(|x| x.finished_at.is_some()).count() >= n && service.runs.busy().is_none() {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{n} push run(s) did not end: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A SCIM user as Entra ID sends it on creation.
pub fn entra_user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": format!("{name}-oid"),
        "userName": format!("{name}@contoso.example"),
        "active": true,
        "displayName": format!("{name} Example"),
        "emails": [{"primary": true, "type": "work", "value": format!("{name}@contoso.example")}],
        "name": {"givenName": name, "familyName": "Example"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Engineering"}
    })
}

/// A SCIM group with these member ids.
pub fn group(name: &str, members: &[String]) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "externalId": format!("{name}-oid"),
        "displayName": name,
        "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()
    })
}
