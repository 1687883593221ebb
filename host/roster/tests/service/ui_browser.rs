//! The admin pages in a real browser: `tests/ui/e2e.js` drives Debian's chromium through
//! playwright-core against Roster served over the Graph and Bitbucket simulators, with a
//! directory in which the guard will hold the next sync (a mass deprovisioning) and an IdP
//! display name with markup. It checks login, a sync's live progress to its end, results
//! and their filters, plan review and approval, the viewer's refusals, tokens and audit, then
//! axe-core on every page; screenshots go to `target/ui-screenshots/`.
//!
//! Ignored by `cargo test`; run by `.ci/run`, which installs chromium and the npm packages:
//!   ROSTER_UI_NODE_PATH=.ci/.tools/ui/node_modules cargo test -p roster --test service -- --ignored ui_browser::

use crate::common;

use std::process::Command;

use common::api::ApiWorld;
use common::changes::IdpEdits;
use common::entra::{EntraWorld, tenant};
use common::world::bitbucket;
use roster_sim::directory::Directory;
use serde_json::json;

/// What an IdP may send as a display name; the pages must show it as text.
const MARKUP: &str = "<script>alert(1)</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and npm packages; .ci/run installs them and runs it"]
async fn ui_browser_walks_every_page_in_chromium() {
    let repo = common::repo();
    let node_path = std::env::var("ROSTER_UI_NODE_PATH")
        .unwrap_or_else(|_| repo.join(".ci/.tools/ui/node_modules").display().to_string());
    assert!(
        std::path::Path::new(&node_path).join("playwright-core").is_dir(),
        "no playwright-core in {node_path}: npm ci --prefix .ci/.tools/ui (see .ci/run)"
    );
    let d = Directory::generate(30, 4, 2);
    let w = ApiWorld::start(EntraWorld::new(tenant(&d), bitbucket()).await, "").await;
    // Bitbucket holds everyone; then the IdP loses 8 people (the guard holds that plan) and
    // one display name turns into markup.
    let first = w.run(json!({})).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    for u in d.users.iter().take(8) {
        w.world.idp.lock().hard_delete_user(&u.id);
    }
    w.world.set_display_name(&d.users[9], MARKUP);
    // Slow enough that the browser sees the run in progress before it ends.
    w.world.bb.lock().set_rate_limit(40.0, 40);

    // For the mapping editor (steps 60+): a source defined through the API with a mapping,
    // disabled so that it changes nothing the steps before it see.
    w.world.rt.put("mapping", "mapping.wasm");
    w.world.rt.runtime.reload().await;
    let graph = w.world.idp.url();
    let (status, created) = w
        .post(
            "/api/v1/sources",
            &w.admin,
            json!({
                "id": "mapped", "plugin": "entra", "priority": 50, "enabled": false,
                "allow_hosts": [graph], "allow_insecure_http": true, "allow_private_addresses": true,
                "settings": {"tenant_id": common::entra::TENANT, "client_id": common::entra::CLIENT,
                             "graph_url": graph, "login_url": graph},
                "secrets": [{"name": "client_secret", "value": common::entra::SECRET, "hosts": [graph],
                             "use": {"form": "client_secret"}, "path": format!("/{}/oauth2/", common::entra::TENANT)}],
                "transforms": [{"plugin": "mapping", "settings": {"user": {"username": "ToLower(StripDomain([userPrincipalName]))"}}}]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let component = common::component("normalize");

    let shots = repo.join("target/ui-screenshots");
    let script = repo.join("tests/ui/e2e.js");
    let (base, admin, operator, viewer) = (w.base.clone(), w.admin.clone(), w.operator.clone(), w.viewer.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("NODE_PATH", node_path)
            .env("ROSTER_UI_URL", base)
            .env("ROSTER_UI_ADMIN", admin)
            .env("ROSTER_UI_OPERATOR", operator)
            .env("ROSTER_UI_VIEWER", viewer)
            .env("ROSTER_UI_SHOTS", &shots)
            .env("ROSTER_UI_MARKUP", MARKUP)
            .env("ROSTER_UI_COMPONENT", &component)
            .output()
            .expect("running node (Node 20 or later)")
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "the browser tests failed:\n{text}");
    // What the browser did is what the service recorded.
    w.assert_audited(&[
        "ui.login",
        "run.start",
        "plan.approve",
        "token.create",
        "token.revoke",
        "source.replace",
        "plugin.upload",
    ])
    .await;
}
