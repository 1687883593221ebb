//! Contract test: Roster's Bitbucket client and the Bitbucket simulator, both held to Atlassian's
//! Bitbucket Data Center 9.4 OpenAPI document by Stoplight Prism's validating proxy
//! (`prism proxy --errors`) placed between them. Any request or response that breaks the document
//! becomes an error, which fails the sync and this test.
//!
//! Ignored by `cargo test`; run by `.ci/run` after the README's test command, because it needs
//! Prism (npm) and the document from `../shared/specs/`:
//!   ROSTER_PRISM=path/to/prism ROSTER_BB_CONTRACT=bitbucket-admin.json \
//!     cargo test -p roster --test engine -- --ignored contract_prism::
//! The document is first passed through `shared/specs/tools/bitbucket_overlay.py --only-admin`,
//! which corrects the published document's known mistakes (vendor-apis.md §2.9) in plain sight.

use crate::common;

use common::Configured;
use common::prism::Prism;
use common::world::{World, bitbucket};
use roster_sim::directory::Directory;

/// One more mistake of the 9.4 document, not covered by the shared overlay: bodiless 200
/// answers (add-users, add-groups, remove-group, …) are declared with the media type
/// `application/json;charset=UTF-8` but no schema. Bitbucket sends no body; Prism then rejects
/// the missing media type, and a JSON media type with an empty body cannot be parsed. The
/// fix-up declares those answers bodiless, and says which ones it changed.
fn fix_bodiless_answers(spec: &std::path::Path, out: &std::path::Path) -> Vec<String> {
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(spec).unwrap()).unwrap();
    let mut changed = Vec::new();
    for (path, item) in doc["paths"].as_object_mut().unwrap() {
        for (method, op) in item.as_object_mut().unwrap() {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            for (status, resp) in responses.iter_mut().filter(|(s, _)| s.starts_with('2')) {
                let bodiless = resp
                    .get("content")
                    .and_then(|c| c.as_object())
                    .is_some_and(|c| !c.is_empty() && c.values().all(|m| m.get("schema").is_none()));
                if bodiless {
                    resp.as_object_mut().unwrap().remove("content");
                    changed.push(format!("{} {path} {status}", method.to_uppercase()));
                }
            }
        }
    }
    std::fs::write(out, serde_json::to_vec(&doc).unwrap()).unwrap();
    changed
}

/// Prism in front of the simulator with the overlaid document and the fix-up below.
async fn start_prism(upstream: &str, dir: &std::path::Path) -> Prism {
    let original =
        std::env::var("ROSTER_BB_CONTRACT").expect("ROSTER_BB_CONTRACT: the overlaid Bitbucket document (see .ci/run)");
    let spec = dir.join("bitbucket-contract.json");
    let changed = fix_bodiless_answers(std::path::Path::new(&original), &spec);
    eprintln!(
        "declared bodiless (the document gives a JSON media type without a schema): {}",
        changed.join(", ")
    );
    Prism::start(&spec, upstream, dir).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism and ../shared/specs; .ci/run runs it"]
async fn the_client_and_the_simulator_keep_to_the_bitbucket_openapi_document() {
    let mut d = Directory::generate(30, 6, 2);
    let mut w = World::new(&d, bitbucket()).await;
    let prism = start_prism(&w.sim.url(), w.rt.dir.path()).await;
    let through_prism = prism.url();
    let direct = w.sim.url();
    let with_prism = |w: &World| w.config_text().replace(&direct, &through_prism);
    let run = |w: &World| {
        let text = with_prism(w);
        let config = roster_serve::Config::parse(&text, w.rt.dir.path(), &common::kinds()).unwrap();
        let engine =
            roster_serve::Runner::new(w.store.clone(), w.rt.runtime.clone(), config, &common::kinds()).unwrap();
        async move {
            let opts = roster_serve::SyncOptions {
                trigger: roster_model::Trigger::Cli,
                actor: "test".into(),
                ..Default::default()
            };
            engine.sync(&opts, &roster_model::Quiet).await.unwrap()
        }
    };
    let check = |r: &roster_serve::RunReport, what: &str| {
        assert_eq!(r.state, "succeeded", "{what}: {:?}\nprism:\n{}", r.summary, prism.log());
        assert_eq!(r.summary.applied.failed, 0, "{what}");
        prism.assert_no_violations(what);
    };

    // Reads, creates, groups, bulk adds.
    let r = run(&w).await;
    check(&r, "initial sync");
    w.assert_matches(&d);
    // Rename, update, deactivate (remove-group, revoke).
    d.users[1].username = "renamed.user".into();
    d.users[2].display_name = "Changed Name".into();
    d.users[3].active = false;
    w.write(&d);
    let r = run(&w).await;
    check(&r, "rename, update, deactivate");
    assert_eq!(r.summary.planned.get("rename-user"), Some(&1));
    // Delete and erase.
    w.target_extra = "deprovision = \"delete-and-erase\"\nthreshold = { count = 100, percent = 100 }".into();
    d.users.truncate(25);
    w.write(&d);
    let r = run(&w).await;
    check(&r, "delete and erase");
    assert_eq!(
        r.summary.planned.get("delete-user"),
        Some(&5),
        "{:?}",
        r.summary.planned
    );
}
