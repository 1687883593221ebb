//! Schemathesis against Roster's own OpenAPI document: every operation fuzzed with every check
//! (`--checks all`: no 5xx, status codes, content types and bodies as documented, …) while
//! the API runs over a `file` source and the Bitbucket simulator.
//!
//! Ignored by `cargo test`; run by `.ci/run` after the README's test command, because it needs
//! schemathesis from PyPI:
//!   ROSTER_SCHEMATHESIS=path/to/schemathesis cargo test -p roster --test service -- --ignored schemathesis::

use crate::common;

use std::process::Command;

use common::Configured;
use common::world::{World, bitbucket};
use roster_serve::service::Service;
use roster_sim::directory::Directory;
use roster_store::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis from PyPI; .ci/run runs it"]
async fn schemathesis_finds_no_failure_in_the_api() {
    let st = std::env::var("ROSTER_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let d = Directory::generate(20, 4, 1);
    let w = World::new(&d, bitbucket()).await;
    let path = w.rt.dir.path().join("roster.toml");
    std::fs::write(&path, w.config_text()).unwrap();
    let service = Service::new(w.store.clone(), w.rt.runtime.clone(), &path, common::kinds()).unwrap();
    let (_, token) = w.store.create_token("schemathesis", Role::Admin, "test").unwrap();
    let (base, server) = common::api::serve(service.clone()).await;
    let report = w.rt.dir.path().join("schemathesis");
    let out = tokio::task::spawn_blocking(move || {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
        Command::new(st)
            .arg("--config-file")
            .arg(config)
            .args(["run", &format!("{base}/api/v1/openapi.json"), "--url", &base])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all", "--max-examples", "40", "--seed", "1"])
            .arg("--report-dir")
            .arg(&report)
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .env("NO_COLOR", "1")
            .output()
            .expect("running schemathesis (pip install schemathesis)")
    })
    .await
    .unwrap();
    server.abort();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
}
