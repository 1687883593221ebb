//! Stoplight Prism as a validating proxy between a client and a simulator (`prism proxy
//! --errors SPEC UPSTREAM`): any request or response that breaks the vendor's OpenAPI document
//! becomes an error. Used by the contract tests, which `.ci/run` runs with `ROSTER_PRISM` set.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prism proxy; killed on drop.
pub struct Prism {
    child: std::process::Child,
    log: std::path::PathBuf,
    port: u16,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prism {
    /// Starts Prism (`ROSTER_PRISM`) on a free port of 127.0.0.1 with `spec` in front of
    /// `upstream`; its log goes to `dir/prism.log`.
    pub async fn start(spec: &std::path::Path, upstream: &str, dir: &std::path::Path) -> Prism {
        let prism = std::env::var("ROSTER_PRISM").expect("ROSTER_PRISM: path to the prism binary (see .ci/run)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("prism.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(prism)
            .args(["proxy", "--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(spec)
            .arg(upstream)
            .env("SCARF_ANALYTICS", "false")
            .env("DO_NOT_TRACK", "1")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting prism");
        let p = Prism { child, log, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "prism did not start:\n{}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        p
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What Prism logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The lines where Prism reported a violation of the document. Its start-up lines (tagged
    /// `[CLI]`) list every route with made-up parameter values, some of which spell "violation"
    /// (Okta's `SESSION_VIOLATION_DETECTION`), so they are not read.
    pub fn violations(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| !l.contains("[CLI]") && l.to_lowercase().contains("violation"))
            .map(str::to_string)
            .collect()
    }

    /// Fails with the log when Prism reported a violation of the document.
    pub fn assert_no_violations(&self, what: &str) {
        let found = self.violations();
        assert!(
            found.is_empty(),
            "{what}: prism reported violations:\n{}\n\nthe whole log:\n{}",
            found.join("\n"),
            self.log()
        );
    }

    /// Waits until `probe` — one request through Prism that the document declares, true when it
    /// is answered as the document says — succeeds: Prism listens before it has loaded a large
    /// document. Fails after [`LOAD`] with the log, naming `document`.
    pub async fn wait_loaded<F, Fut>(&self, document: &str, probe: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            if tokio::time::timeout(LOAD, probe()).await.unwrap_or(false) {
                return;
            }
            assert!(
                started.elapsed() < LOAD,
                "prism did not load the {document} document:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// How long Prism may take to load a vendor's document and answer (minutes on busy cores).
pub const LOAD: Duration = Duration::from_secs(240);

/// The violations Prism reported for one answer (its `sl-violations` header; empty when none).
pub fn violations_of(r: &reqwest::Response) -> String {
    r.headers()
        .get("sl-violations")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
