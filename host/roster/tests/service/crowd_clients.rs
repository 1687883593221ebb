//! Third-party Crowd clients against a Crowd endpoint: PyPI's python-crowd
//! (tests/clients/crowd_python.py) and npm's atlassian-crowd-client (tests/clients/crowd_npm.js)
//! read a user, its groups, a group, its members, the membership document and a search, as
//! scripts and Node services do, from the Crowd simulator (Crowd's own answers) and from
//! `roster serve`'s endpoint.
//!
//! Ignored by `cargo test` (they need PyPI and npm). Each installs its client into `.ci/.tools`
//! when missing (python-crowd into the `.ci/.tools/python` virtualenv, pinned by
//! tests/clients/python-crowd.txt; atlassian-crowd-client with `npm --prefix .ci/.tools`, pinned
//! by tests/clients/atlassian-crowd-client.txt) and says it is skipped when it cannot:
//!   cargo test -p roster --test service -- --ignored crowd_clients::

use std::path::PathBuf;
use std::process::{Command, Output};

use roster_sim::crowd::{CrowdSim, CrowdState, Product};
use roster_sim::directory::Directory;

use crate::common::crowd_roster::{RosterCrowd, seed_changes};
use crate::common::repo;

/// The application the clients sign in as (its password: the simulator's below, or the one
/// Roster generates).
const APP: &str = "third-party";
const PASSWORD: &str = "third-party-password";

/// A Crowd endpoint with an application the clients sign in as, and the user and group they
/// read.
struct Endpoint {
    url: String,
    app: String,
    password: String,
    user: String,
    group: String,
    /// The user's groups, as the server holds them.
    user_groups: Vec<String>,
    /// Keeps the server running.
    _server: Box<dyn std::any::Any + Send>,
}

/// Which Crowd server the clients read.
#[derive(Clone, Copy, Debug)]
enum Server {
    /// The Crowd simulator (Crowd 5.1.6's answers).
    Simulator,
    /// `roster serve` with a served directory.
    Roster,
}

/// The directory both servers hold: the user read has the record `hr:u-000003` (its `roster.records` attribute).
fn directory() -> Directory {
    Directory::generate(30, 6, 2)
}

/// Starts the Crowd server the clients read.
async fn crowd_server(server: Server) -> Endpoint {
    let d = directory();
    let user = d.users[3].username.clone();
    match server {
        Server::Simulator => {
            let mut s = CrowdState::from_directory(&d, Product::Crowd);
            s.add_application(APP, PASSWORD, &["127.0.0.0/8", "::1"]);
            s.update_user(&user, |u| {
                u.attributes = vec![("roster.records".into(), vec!["hr:u-000003".into()])];
            });
            let user_groups = s.user_groups(&user);
            let sim = CrowdSim::start(s).await;
            Endpoint {
                url: sim.url(),
                app: APP.into(),
                password: PASSWORD.into(),
                user,
                group: user_groups[0].clone(),
                user_groups,
                _server: Box::new(sim),
            }
        }
        Server::Roster => {
            let changes = seed_changes(&d);
            let r = tokio::task::spawn_blocking(move || {
                RosterCrowd::start(std::path::Path::new(env!("CARGO_BIN_EXE_roster")), APP, |store| {
                    for c in &changes {
                        store.served_apply(c).unwrap();
                    }
                })
            })
            .await
            .unwrap();
            let user_groups = r.store.served_user_groups(&user).unwrap();
            Endpoint {
                url: r.url.clone(),
                app: r.app.clone(),
                password: r.password.clone(),
                user,
                group: user_groups[0].clone(),
                user_groups,
                _server: Box::new(r),
            }
        }
    }
}

fn tools() -> PathBuf {
    repo().join(".ci/.tools")
}

/// The last lines of a failed command's output, for a skip message.
fn tail(o: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// The virtualenv's python with python-crowd installed (as pinned), or why it cannot be had;
/// installed once per test binary, since two tests making one virtualenv at once race.
fn python_crowd() -> Result<PathBuf, String> {
    static INSTALLED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(install_python_crowd).clone()
}

fn install_python_crowd() -> Result<PathBuf, String> {
    let venv = tools().join("python");
    let pins = repo().join("tests/clients/python-crowd.txt");
    let marker = venv.join("python-crowd.txt");
    let python = venv.join("bin/python");
    let pinned = std::fs::read(&pins).map_err(|e| format!("reading {}: {e}", pins.display()))?;
    if python.exists() && std::fs::read(&marker).ok().as_deref() == Some(&pinned[..]) {
        return Ok(python);
    }
    std::fs::create_dir_all(tools()).map_err(|e| e.to_string())?;
    if !venv.join("bin/pip").exists() {
        let o = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .map_err(|e| format!("python3 is needed to make {}: {e}", venv.display()))?;
        if !o.status.success() {
            return Err(format!("python3 -m venv {} failed:\n{}", venv.display(), tail(&o)));
        }
    }
    eprintln!(
        "installing python-crowd into {} (pinned by {})",
        venv.display(),
        pins.display()
    );
    let o = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&pins)
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!(
            "pip could not install python-crowd (is PyPI reachable?):\n{}",
            tail(&o)
        ));
    }
    std::fs::write(&marker, pinned).map_err(|e| e.to_string())?;
    Ok(python)
}

/// The `node_modules` folder holding atlassian-crowd-client (as pinned), or why it cannot be had.
/// Installed once per test binary: two `npm install`s into one prefix at once each prune what
/// the other is adding (CI saw `core-js` vanish from under the client).
fn npm_crowd_client() -> Result<PathBuf, String> {
    static INSTALLED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(install_npm_crowd_client).clone()
}

fn install_npm_crowd_client() -> Result<PathBuf, String> {
    let pins = repo().join("tests/clients/atlassian-crowd-client.txt");
    let spec = std::fs::read_to_string(&pins).map_err(|e| format!("reading {}: {e}", pins.display()))?;
    let spec = spec.trim();
    let version = spec.rsplit_once('@').map(|(_, v)| v).unwrap_or_default();
    let modules = tools().join("node_modules");
    let installed = std::fs::read_to_string(modules.join("atlassian-crowd-client/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    // Installed as pinned and loading (its dependencies there too: a pruned one is reinstalled).
    let loads = || {
        Command::new("node")
            .arg("-e")
            .arg(format!(
                "require({:?})",
                modules.join("atlassian-crowd-client").display().to_string()
            ))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if installed.as_deref() == Some(version) && loads() {
        return Ok(modules);
    }
    std::fs::create_dir_all(tools()).map_err(|e| e.to_string())?;
    eprintln!("installing {spec} into {} (npm --prefix)", tools().display());
    let o = Command::new("npm")
        // Saved in the prefix's package.json: a later `npm install` there (Prism's in
        // .ci/run) would otherwise prune it as extraneous.
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(tools())
        .arg(spec)
        .output()
        .map_err(|e| format!("npm is needed to install {spec}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "npm could not install {spec} (is the npm registry reachable?):\n{}",
            tail(&o)
        ));
    }
    Ok(modules)
}

/// Runs `cmd` off the async workers (the server answers on them) and returns its output.
async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the client script starts"))
        .await
        .unwrap()
}

fn json_of(o: &Output, what: &str) -> serde_json::Value {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{what} printed no JSON ({e})"))
}

fn names(v: &serde_json::Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .map_or_else(|| x["name"].as_str().unwrap_or_default().to_string(), str::to_string)
        })
        .collect();
    n.sort();
    n
}

fn script(name: &str) -> PathBuf {
    repo().join("tests/clients").join(name)
}

fn args(e: &Endpoint) -> [&str; 5] {
    [&e.url, &e.app, &e.password, &e.user, &e.group]
}

fn skip(client: &str, why: &str) {
    eprintln!("SKIPPED: {client} could not be installed; nothing was checked.\n{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python-crowd from PyPI (installed into .ci/.tools/python when missing)"]
async fn python_crowd_reads_the_simulator() {
    python_crowd_reads(Server::Simulator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python-crowd from PyPI (installed into .ci/.tools/python when missing)"]
async fn python_crowd_reads_roster() {
    python_crowd_reads(Server::Roster).await;
}

/// get_user, user_exists, the user's direct and nested groups, the group's nested users, the
/// membership document and both searches answer what the server holds.
async fn python_crowd_reads(server: Server) {
    let python = match tokio::task::spawn_blocking(python_crowd).await.unwrap() {
        Ok(p) => p,
        Err(why) => return skip("python-crowd", &why),
    };
    let e = crowd_server(server).await;
    let mut cmd = Command::new(&python);
    cmd.arg(script("crowd_python.py")).args(args(&e));
    let out = json_of(&run(cmd).await, "crowd_python.py");

    assert_eq!(out["get_user"]["name"], e.user.as_str(), "{out:#}");
    assert_eq!(out["get_user"]["active"], true);
    assert!(
        out["get_user"]["email"].as_str().is_some_and(|m| m.contains('@')),
        "{out:#}"
    );
    assert_eq!(out["user_exists"], true);
    let mut want = e.user_groups.clone();
    want.sort();
    assert_eq!(names(&out["get_groups"]), want);
    assert!(names(&out["get_nested_groups"]).contains(&e.group));
    assert!(names(&out["get_nested_group_users"]).contains(&e.user), "{out:#}");
    let members = &out["get_memberships"][&e.group]["users"];
    assert!(names(members).contains(&e.user), "{out:#}");
    let found = &out["search_user"]["users"];
    assert!(names(found).contains(&e.user), "{out:#}");
    assert!(names(&out["search_group"]["groups"]).contains(&e.group), "{out:#}");

    // A user that does not exist is a failed call, said so.
    let mut cmd = Command::new(&python);
    cmd.arg(script("crowd_python.py"))
        .args([&e.url, &e.app, &e.password, "nobody-here", &e.group, "get_user"]);
    let o = run(cmd).await;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("get_user"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs atlassian-crowd-client from npm (installed into .ci/.tools when missing)"]
async fn atlassian_crowd_client_reads_the_simulator() {
    atlassian_crowd_client_reads(Server::Simulator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs atlassian-crowd-client from npm (installed into .ci/.tools when missing)"]
async fn atlassian_crowd_client_reads_roster() {
    atlassian_crowd_client_reads(Server::Roster).await;
}

/// The user (with its attributes), its groups, the group, its users, a membership test and the
/// membership document answer what the server holds; its CQL search is refused with an error.
async fn atlassian_crowd_client_reads(server: Server) {
    let modules = match tokio::task::spawn_blocking(npm_crowd_client).await.unwrap() {
        Ok(p) => p,
        Err(why) => return skip("atlassian-crowd-client", &why),
    };
    let e = crowd_server(server).await;
    let node = |extra: &[&str]| {
        let mut cmd = Command::new("node");
        cmd.arg(script("crowd_npm.js"))
            .args(args(&e))
            .args(extra)
            .env("NODE_PATH", &modules);
        cmd
    };
    let out = json_of(&run(node(&[])).await, "crowd_npm.js");

    assert_eq!(out["user"]["username"], e.user.as_str(), "{out:#}");
    assert_eq!(out["user"]["active"], true);
    assert_eq!(out["user"]["attributes"]["roster.records"], "hr:u-000003", "{out:#}");
    let mut want = e.user_groups.clone();
    want.sort();
    assert_eq!(names(&out["user_groups"]), want);
    assert_eq!(out["group"]["groupname"], e.group.as_str(), "{out:#}");
    let users: Vec<String> = out["group_users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(users.contains(&e.user), "{out:#}");
    assert_eq!(out["group_has_user"], e.user.as_str());
    let xml = out["memberships"].as_str().unwrap_or_default();
    assert!(xml.contains(&format!("<membership group=\"{}\">", e.group)), "{xml}");

    // Its search is CQL through GET /search, which the server refuses (405): the client says so
    // instead of answering nothing.
    let o = run(node(&["search"])).await;
    assert!(!o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("search"));
}
