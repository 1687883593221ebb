//! `scim2-tester` (PyPI `scim2-cli`: `scim2 … test`) against `roster serve`: the binary serves
//! a push source on 127.0.0.1, its token made with `roster scim token create`; every check the
//! suite runs, with every feature `/ServiceProviderConfig` advertises (PATCH, filter, sort,
//! ETags), must report SUCCESS.
//!
//! Ignored by `cargo test`; run by `.ci/run`, because it needs scim2-cli from PyPI:
//!   ROSTER_SCIM2=path/to/scim2 cargo test -p roster --test service -- --ignored scim2_tester::

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Stops the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs scim2-cli from PyPI; .ci/run runs it"]
fn scim2_tester_reports_success_for_every_check() {
    let scim2 = std::env::var("ROSTER_SCIM2").unwrap_or_else(|_| "scim2".into());
    let roster = env!("CARGO_BIN_EXE_roster");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("roster.toml");
    // The suite makes a few hundred requests in seconds: the rate cap is raised for it (its
    // 429 is tested in scim.rs).
    std::fs::write(
        &config,
        "[[source]]\nid = \"idp\"\n[source.push]\nprotocol = \"scim\"\nrequests_per_minute = 100000\n",
    )
    .unwrap();
    let roster_cmd = || {
        let mut c = Command::new(roster);
        c.arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config);
        c
    };
    let out = roster_cmd()
        .args(["scim", "token", "create", "idp", "--name", "scim2-tester"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("roster_scim_"), "{token}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        roster_cmd()
            .args(["serve", "--no-schedule", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "roster serve did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = Command::new(&scim2)
        .args(["--url", &format!("http://127.0.0.1:{port}/scim/v2/idp")])
        .args(["-h", &format!("Authorization: Bearer {token}")])
        .args(["test", "--check-status-code", "--check-content-type"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {scim2} (pip install scim2-cli): {e}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    // A result line starts with its status word (SUCCESS, ERROR, CRITICAL, SKIPPED, …); the
    // lines under it are indented.
    let results: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.len() > 2 && w.chars().all(|c| c.is_ascii_uppercase()))
        })
        .collect();
    let failed: Vec<&&str> = results.iter().filter(|l| !l.starts_with("SUCCESS ")).collect();
    assert!(failed.is_empty(), "scim2-tester reported failures:\n{failed:#?}");
    assert!(results.len() > 100, "too few checks ran ({}):\n{text}", results.len());
    assert!(out.status.success(), "scim2 exited with {}", out.status);
}
