//! A throwaway SCIM 2.0 service for tests: PyPI's `scim2-server` (an in-memory SCIM server
//! built on `scim2-models`) run on 127.0.0.1 with a bearer token, filled through its own SCIM
//! API as an IdP would fill it. Dropping the [`Scim2Server`] kills the process.
//!
//! The program is found as `ROSTER_SCIM2_SERVER`, else in the virtualenv `./dev test` makes
//! (`.ci/.tools/python`), else on `PATH`; when none is there it is installed into that
//! virtualenv with pip, as `./dev test` does, pinned by `tests/sim/scim2-server.txt`. Only when
//! that fails too (no python3, no network to PyPI) does [`Scim2Server::start`] answer
//! [`Scim2Error::Missing`], which tests report as a skip.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::directory::Directory;

/// The pinned requirement, shared with `./dev`.
pub const REQUIREMENTS: &str = include_str!("../scim2-server.txt");

/// The schema URNs of the resources this harness writes.
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Why the server could not be started or filled.
#[derive(Debug, thiserror::Error)]
pub enum Scim2Error {
    /// The program is not installed and could not be installed.
    #[error(
        "scim2-server is not installed and pip could not install it ({why}); run `./dev test` with network access to PyPI, or set ROSTER_SCIM2_SERVER to the program"
    )]
    Missing {
        /// What the installation said.
        why: String,
    },
    /// The process did not start serving.
    #[error("scim2-server did not start on 127.0.0.1:{port}: {why}")]
    Start {
        /// The port it was given.
        port: u16,
        /// What went wrong.
        why: String,
    },
    /// A request to fill it failed.
    #[error("scim2-server: {what}: {why}")]
    Request {
        /// The request.
        what: String,
        /// The answer or the transport error.
        why: String,
    },
}

/// The repository's root (this crate is `tests/sim`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtualenv `./dev test` installs Python tools into.
pub fn venv() -> PathBuf {
    repo_root().join(".ci/.tools/python")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn installed() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROSTER_SCIM2_SERVER") {
        return Some(PathBuf::from(p));
    }
    let in_venv = venv().join("bin/scim2-server");
    if in_venv.is_file() {
        return Some(in_venv);
    }
    on_path("scim2-server")
}

/// `python3 -m venv` and `pip install -r tests/sim/scim2-server.txt`, as `./dev test` does.
fn install() -> Result<PathBuf, Scim2Error> {
    let venv = venv();
    let missing = |why: String| Scim2Error::Missing { why };
    let run = |cmd: &mut Command, what: &str| -> Result<(), Scim2Error> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| missing(format!("{what}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(missing(format!(
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    if !venv.join("bin/pip").is_file() {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )?;
    }
    let requirements = repo_root().join("tests/sim/scim2-server.txt");
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install scim2-server",
    )?;
    Ok(venv.join("bin/scim2-server"))
}

/// The program, installed once per process if missing.
fn program() -> Result<PathBuf, Scim2Error> {
    static PROGRAM: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut slot = PROGRAM
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = slot.as_ref() {
        return Ok(p.clone());
    }
    let p = match installed() {
        Some(p) => p,
        None => install()?,
    };
    *slot = Some(p.clone());
    Ok(p)
}

fn free_port() -> Option<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()
}

/// A running scim2-server; killed when dropped.
pub struct Scim2Server {
    child: Child,
    port: u16,
    token: String,
    /// The SCIM id of each directory object, by the directory's id.
    ids: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Scim2Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scim2Server")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Scim2Server {
    /// Starts a server that accepts only `token`, on a free port (another one if the port was
    /// taken meanwhile); waits until it answers.
    pub async fn start(token: &str) -> Result<Scim2Server, Scim2Error> {
        let program = tokio::task::spawn_blocking(program)
            .await
            .map_err(|e| Scim2Error::Missing { why: e.to_string() })??;
        let mut last = None;
        for _ in 0..3 {
            let Some(port) = free_port() else { continue };
            let child = Command::new(&program)
                .args([
                    "--hostname",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--bearer-token",
                    token,
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| Scim2Error::Start {
                    port,
                    why: format!("{}: {e}", program.display()),
                })?;
            let mut server = Scim2Server {
                child,
                port,
                token: token.to_string(),
                ids: Mutex::new(BTreeMap::new()),
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Scim2Error::Start {
            port: 0,
            why: "no free port".into(),
        }))
    }

    async fn wait_ready(&mut self) -> Result<(), Scim2Error> {
        let started = Instant::now();
        let url = format!("{}/ServiceProviderConfig", self.base_url());
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Scim2Error::Start {
                    port: self.port,
                    why: format!("it exited ({status})"),
                });
            }
            let resp = client.get(&url).bearer_auth(&self.token).send().await;
            if resp.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Scim2Error::Start {
            port: self.port,
            why: "no answer within 30 s".into(),
        })
    }

    /// `http://127.0.0.1:PORT`: what a source allows.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The SCIM base URL, `http://127.0.0.1:PORT/v2`.
    pub fn base_url(&self) -> String {
        format!("{}/v2", self.origin())
    }

    /// The token it accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The SCIM id of directory object `dir_id` (after [`Scim2Server::load`]).
    pub fn id_of(&self, dir_id: &str) -> String {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(dir_id)
            .cloned()
            .unwrap_or_else(|| panic!("{dir_id} was not loaded"))
    }

    /// Sends a SCIM request with the token; the answer's JSON (`null` for 204).
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Scim2Error> {
        let what = format!("{method} {path}");
        let fail = |why: String| Scim2Error::Request {
            what: what.clone(),
            why,
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base_url()))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {text}")));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| fail(format!("{e}: {text}")))
    }

    /// Creates `d`'s users (active and inactive, `userName` its username) and groups with
    /// their direct members, users and groups, through the SCIM API.
    pub async fn load(&self, d: &Directory) -> Result<(), Scim2Error> {
        for u in &d.users {
            let (given, family) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
            let created = self
                .request(
                    "POST",
                    "/Users",
                    Some(json!({
                        "schemas": [USER_URN],
                        "userName": u.username,
                        "displayName": u.display_name,
                        "name": {"givenName": given, "familyName": family},
                        "emails": [{"value": u.email, "type": "work", "primary": true}],
                        "active": u.active,
                        "externalId": u.id,
                    })),
                )
                .await?;
            self.remember(&u.id, &created)?;
        }
        // Groups first, then their members: a nested group must exist to be a member.
        for g in &d.groups {
            let created = self
                .request(
                    "POST",
                    "/Groups",
                    Some(json!({"schemas": [GROUP_URN], "displayName": g.name, "externalId": g.id})),
                )
                .await?;
            self.remember(&g.id, &created)?;
        }
        for g in &d.groups {
            let members: Vec<Value> = d
                .memberships
                .iter()
                .filter(|m| m.group == g.id)
                .map(|m| {
                    json!({"value": self.id_of(&m.member), "type": if m.member_is_group { "Group" } else { "User" }})
                })
                .collect();
            if members.is_empty() {
                continue;
            }
            let id = self.id_of(&g.id);
            self.request(
                "PUT",
                &format!("/Groups/{id}"),
                Some(json!({"schemas": [GROUP_URN], "id": id, "displayName": g.name, "externalId": g.id, "members": members})),
            )
            .await?;
        }
        Ok(())
    }

    fn remember(&self, dir_id: &str, created: &Value) -> Result<(), Scim2Error> {
        let id = created["id"].as_str().ok_or_else(|| Scim2Error::Request {
            what: format!("create {dir_id}"),
            why: format!("no id in {created}"),
        })?;
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir_id.to_string(), id.to_string());
        Ok(())
    }

    /// PATCHes directory user `dir_id` with a path-less replace of `value` (`{"active": false}`).
    pub async fn replace_user(&self, dir_id: &str, value: Value) -> Result<(), Scim2Error> {
        let id = self.id_of(dir_id);
        self.request(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": value}],
            })),
        )
        .await
        .map(drop)
    }
}

/// A fake SCIM service on the simulator kit for answers `scim2-server` never gives: its
/// `/v2/ServiceProviderConfig` and an empty `/v2/Groups` are right, and `/v2/Users` answers
/// `users` (a malformed page) to every request, whatever the token.
pub async fn fake_service(users: Value) -> std::io::Result<crate::kit::server::Server> {
    use axum::routing::get;
    let spc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                     "patch": {"supported": false}, "filter": {"supported": true, "maxResults": 100}});
    let empty =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []});
    let answer = |v: Value| move || async move { ([("content-type", "application/scim+json")], v.to_string()) };
    let router = axum::Router::new()
        .route("/v2/ServiceProviderConfig", get(answer(spc)))
        .route("/v2/Users", get(answer(users)))
        .route("/v2/Groups", get(answer(empty)));
    crate::kit::server::Server::start(([127, 0, 0, 1], 0).into(), router).await
}
