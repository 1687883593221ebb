//! Shared test helpers: building the plugin components once, a runtime over a temporary
//! plugins folder, and a local HTTP server that plays the identity provider.
#![allow(dead_code, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use roster_runtime::{Runtime, RuntimeConfig};

pub mod api;
pub mod bench;
pub mod changes;
pub mod crowd;
pub mod crowd_directory;
pub mod crowd_roster;
pub mod entra;
pub mod google;
pub mod keycloak;
pub mod ldap;
pub mod okta;
pub mod onelogin;
pub mod prism;
pub mod push;
pub mod scim;
pub mod webhook;
pub mod world;

/// The repository root (this package is `host/roster`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/roster has a grandparent")
        .to_path_buf()
}

/// The kinds of target the tests write to: Bitbucket Data Center and the served Crowd
/// directory, as the binary ships.
pub fn kinds() -> roster_engine::TargetKinds {
    roster_engine::TargetKinds::new([
        Arc::new(roster_target_bitbucket_dc::Kind) as Arc<dyn roster_engine::TargetKind>,
        Arc::new(roster_target_crowd_directory::Kind),
        Arc::new(roster_target_bitbucket_cloud::Kind),
    ])
}

/// Builds every plugin for wasm32-wasip2 once per test binary and returns the output folder.
/// A no-op build takes well under a second, so `cargo test` alone always tests fresh plugins.
///
/// `ROSTER_TEST_PLUGINS` names a folder of components built elsewhere instead (no build): to
/// test this host against the plugins of another checkout.
pub fn plugins_out() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("ROSTER_TEST_PLUGINS") {
            return PathBuf::from(dir);
        }
        let plugins = repo().join("plugins");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(plugins.join("Cargo.toml"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("running cargo to build the plugins");
        assert!(
            status.success(),
            "building the plugins failed; is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)"
        );
        plugins.join("target/wasm32-wasip2/release")
    })
}

/// The built component of a plugin crate (`fixture_hostile`, `normalize`, …).
pub fn component(crate_file: &str) -> PathBuf {
    let p = plugins_out().join(format!("{crate_file}.wasm"));
    assert!(p.is_file(), "{} was not built", p.display());
    p
}

/// A test world run as an administrator runs Roster: a configuration's text, read afresh for
/// every run, over one store and one plugin runtime.
#[allow(async_fn_in_trait)]
pub trait Configured {
    /// The `roster.toml` text now.
    fn config_text(&self) -> String;
    /// The plugin runtime (and the folder relative paths resolve from).
    fn test_runtime(&self) -> &TestRuntime;
    /// The store.
    fn store(&self) -> &Arc<roster_store::Store>;
    /// The simulated Bitbucket it syncs into.
    fn bitbucket(&self) -> &roster_sim::bitbucket::BitbucketSim;

    /// Writes Bitbucket has answered so far.
    fn bb_writes(&self) -> u64 {
        self.bitbucket().lock().writes
    }

    /// Runs a full sync again and asserts it succeeds without writing anything: the last run
    /// left Bitbucket exactly as the sources say.
    async fn assert_a_second_run_writes_nothing(&self) {
        let before = self.bb_writes();
        let again = self.sync().await;
        assert_eq!(again.state, "succeeded", "{:?}", again.summary.warnings);
        assert_eq!(
            self.bb_writes(),
            before,
            "a second run writes nothing: {:?}",
            again.summary.planned
        );
    }

    /// A runner over the configuration as it is now.
    fn runner(&self) -> roster_serve::Runner {
        let rt = self.test_runtime();
        let config = roster_serve::Config::parse(&self.config_text(), rt.dir.path(), &kinds()).unwrap();
        roster_serve::Runner::new(self.store().clone(), rt.runtime.clone(), config, &kinds()).unwrap()
    }

    /// A sync by the CLI, reading the sources as `fetch` says.
    async fn sync_mode(&self, fetch: roster_directory::FetchMode) -> roster_serve::RunReport {
        let opts = roster_serve::SyncOptions {
            fetch,
            trigger: roster_model::Trigger::Cli,
            actor: "test".into(),
            ..roster_serve::SyncOptions::default()
        };
        self.runner().sync(&opts, &roster_model::Quiet).await.unwrap()
    }

    /// A full sync.
    async fn sync(&self) -> roster_serve::RunReport {
        self.sync_mode(roster_directory::FetchMode::Full).await
    }

    /// An incremental sync (delta tokens).
    async fn sync_incremental(&self) -> roster_serve::RunReport {
        self.sync_mode(roster_directory::FetchMode::Incremental).await
    }

    /// The first source's `check`.
    async fn check(&self) -> roster_directory::CheckReport {
        self.runner().check(&[]).await.unwrap().remove(0)
    }
}

/// The report of source `source`'s fetch in run `r`.
pub fn fetch_named<'r>(r: &'r roster_serve::RunReport, source: &str) -> &'r roster_directory::FetchReport {
    r.summary
        .fetch
        .iter()
        .find(|f| f.source == source)
        .unwrap_or_else(|| panic!("the run fetched no source {source}"))
}

/// A store in the runtime's temporary folder, sealed with a key made of `seed`.
pub fn store_in(rt: &TestRuntime, seed: u8) -> Arc<roster_store::Store> {
    let path = rt.dir.path().join("roster.db");
    Arc::new(roster_store::Store::open(&path, roster_store::crypto::Key::from_bytes([seed; 32])).unwrap())
}

/// A simulator's calls by route, taken: the API calls among them (token requests are not
/// counted) and every route's count.
pub fn api_calls(calls: std::collections::BTreeMap<String, u64>) -> (u64, std::collections::BTreeMap<String, u64>) {
    let total = calls
        .iter()
        .filter(|(k, _)| !k.contains("/token"))
        .map(|(_, n)| n)
        .sum();
    (total, calls)
}

/// A fresh data folder for the `roster` binary whose `plugins/` holds these plugin crates'
/// components, each as `<crate>.wasm`.
pub fn data_dir_with(plugins: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("plugins");
    std::fs::create_dir_all(&folder).unwrap();
    for p in plugins {
        std::fs::copy(component(p), folder.join(format!("{p}.wasm"))).unwrap();
    }
    dir
}

/// A runtime whose plugins folder holds the given components under the given file names.
pub struct TestRuntime {
    pub runtime: Runtime,
    pub dir: tempfile::TempDir,
}

impl TestRuntime {
    pub async fn new(files: &[(&str, &str)]) -> TestRuntime {
        Self::with_cache(files, &shared_cache(), test_cache_key()).await
    }

    /// A runtime caching compiled code in `cache`, its files signed with `key`.
    pub async fn with_cache(files: &[(&str, &str)], cache: &Path, key: roster_runtime::CacheKey) -> TestRuntime {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
        for (crate_file, as_name) in files {
            std::fs::copy(component(crate_file), dir.path().join("plugins").join(as_name)).unwrap();
        }
        let mut config = RuntimeConfig::new(dir.path().join("plugins"), cache, key);
        config.max_concurrent_jobs = 8;
        config.max_memory_mib = 256;
        let runtime = Runtime::new(config).unwrap();
        for r in runtime.reload().await {
            if let roster_runtime::LoadReport::Failed { error, .. } = r {
                panic!("{error}");
            }
        }
        TestRuntime { runtime, dir }
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Replaces a plugin file atomically (write, then rename), as the README tells admins to.
    pub fn put(&self, crate_file: &str, as_name: &str) {
        let tmp = self.dir.path().join("incoming.tmp");
        std::fs::copy(component(crate_file), &tmp).unwrap();
        std::fs::rename(&tmp, self.plugins_dir().join(as_name)).unwrap();
    }
}

/// Precompiled components are shared by all tests (keyed by engine hash and sha256).
pub fn shared_cache() -> PathBuf {
    repo().join("target/test-plugin-cache")
}

/// The key the tests' runtimes sign their cache files with.
pub fn test_cache_key() -> roster_runtime::CacheKey {
    roster_runtime::CacheKey::new(*b"roster tests' plugin cache key!!")
}

/// What the fake identity provider saw.
#[derive(Default, Debug)]
pub struct Seen {
    /// Every request to `/steal` and `/echo`: "METHOD uri | headers | body".
    pub requests: Vec<String>,
    pub token_calls: u32,
    pub users_calls: u32,
    /// Answer the next `/users?page=2` with 429 once, saying when to come back this way.
    pub throttle_page_2: Option<ComeBack>,
    /// Answer `/users?page=1` saying the rate-limit window is spent for this many seconds.
    pub spend_window_on_page_1: Option<u64>,
    pub throttled: u32,
}

/// How a 429 says when to come back.
#[derive(Debug, Clone, Copy)]
pub enum ComeBack {
    /// `Retry-After: 1`.
    RetryAfter,
    /// Okta's way: no Retry-After, `X-Rate-Limit-Reset` the Unix time the window ends.
    WindowReset,
    /// A busy 503 that reports a window with requests left, ending in an hour (OneLogin sends
    /// its window on every answer): no reason to wait for the reset.
    BusyWithLongWindow,
}

/// Okta's rate-limit headers for a window that is spent and ends in `secs` to `secs + 1`
/// seconds (3 is longer than the host's first backoff, so a test sees which one was waited).
fn spent_window(secs: u64) -> [(&'static str, String); 3] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    [
        ("x-rate-limit-limit", "600".to_string()),
        ("x-rate-limit-remaining", "0".to_string()),
        ("x-rate-limit-reset", (now + secs).to_string()),
    ]
}

/// A local server playing the identity provider; stops when dropped.
pub struct Idp {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const CLIENT_SECRET: &str = "cs-VERY-SECRET-value-42";

type Shared = Arc<Mutex<Seen>>;

fn record(seen: &Shared, method: &str, uri: &Uri, headers: &HeaderMap, body: &str) -> String {
    let hs: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
        .collect();
    let line = format!("{method} {uri} | {} | {body}", hs.join("; "));
    seen.lock().unwrap().requests.push(line.clone());
    line
}

async fn steal(
    State(seen): State<Shared>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> &'static str {
    record(&seen, method.as_str(), &uri, &headers, &body);
    "ok"
}

async fn echo(
    State(seen): State<Shared>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> String {
    record(&seen, method.as_str(), &uri, &headers, &body)
}

async fn token(State(seen): State<Shared>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut s = seen.lock().unwrap();
    s.token_calls += 1;
    if form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && form.get("grant_type").map(String::as_str) == Some("client_credentials")
    {
        let n = s.token_calls;
        (
            StatusCode::OK,
            axum::Json(
                serde_json::json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}),
            ),
        )
            .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}))).into_response()
    }
}

async fn users(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> Response {
    let authed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer tok-"));
    if !authed {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": {"message": "no token"}})),
        )
            .into_response();
    }
    let page: u32 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    {
        let mut s = seen.lock().unwrap();
        s.users_calls += 1;
        if page == 2
            && let Some(how) = s.throttle_page_2.take()
        {
            s.throttled += 1;
            let status = match how {
                ComeBack::BusyWithLongWindow => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::TOO_MANY_REQUESTS,
            };
            let mut r = (status, "slow down").into_response();
            let headers = match how {
                ComeBack::RetryAfter => vec![("retry-after", "1".to_string())],
                ComeBack::WindowReset => spent_window(3).to_vec(),
                ComeBack::BusyWithLongWindow => vec![
                    ("x-ratelimit-limit", "5000".to_string()),
                    ("x-ratelimit-remaining", "4000".to_string()),
                    ("x-ratelimit-reset", "3600".to_string()),
                ],
            };
            for (k, v) in headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            return r;
        }
    }
    let spend = seen.lock().unwrap().spend_window_on_page_1.filter(|_| page == 1);
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let _ = uri;
    let users: Vec<_> = (0..2)
        .map(|i| serde_json::json!({"id": format!("u{page}-{i}"), "login": format!("User.{page}.{i}")}))
        .collect();
    let next = (page < 3).then(|| format!("http://{host}/users?page={}", page + 1));
    let mut r = axum::Json(serde_json::json!({"users": users, "next": next, "total": 6})).into_response();
    if let Some(secs) = spend {
        for (k, v) in spent_window(secs) {
            r.headers_mut().insert(k, v.parse().unwrap());
        }
    }
    r
}

async fn redirect(Query(q): Query<HashMap<String, String>>) -> Response {
    (
        StatusCode::FOUND,
        [("location", q.get("to").cloned().unwrap_or_default())],
    )
        .into_response()
}

async fn big() -> Vec<u8> {
    vec![b'x'; 2 << 20]
}

/// An answer compressed whatever the request asked for (bytes that are not really gzip: the
/// host must refuse it before reading them).
async fn compressed() -> Response {
    ([("content-encoding", "gzip")], vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).into_response()
}

impl Idp {
    pub async fn start() -> Idp {
        let seen: Shared = Arc::default();
        let app = Router::new()
            .route("/steal", any(steal))
            .route("/echo", any(echo))
            .route("/oauth/token", post(token))
            .route("/users", get(users))
            .route("/redirect", get(redirect))
            .route("/big", get(big))
            .route("/compressed", get(compressed))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Idp { addr, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Upper bound for "finished promptly" assertions that are about behaviour, not speed.
pub const PROMPT: Duration = Duration::from_secs(20);

/// Runs the `roster` binary with `--data-dir DATA --config DATA/roster.toml ARGS… --json` as a
/// child process (so its peak RSS is its own), and returns its wall time and JSON report.
pub fn roster_json(data: &Path, args: &[&str]) -> (Duration, serde_json::Value) {
    roster_json_with(Path::new(env!("CARGO_BIN_EXE_roster")), data, args)
}

/// [`roster_json`] with another `roster` binary (a benchmark comparing two builds against the
/// same simulators in one run).
pub fn roster_json_with(bin: &Path, data: &Path, args: &[&str]) -> (Duration, serde_json::Value) {
    let started = std::time::Instant::now();
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(data.join("roster.toml"))
        .args(args)
        .arg("--json")
        .env("ROSTER_SECRET_KEY", "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=")
        .output()
        .expect("running roster");
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        wall,
        serde_json::from_slice(&out.stdout).expect("roster printed its JSON report"),
    )
}
