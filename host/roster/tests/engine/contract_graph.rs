//! Contract test: the `entra` connector and the Graph simulator, both held to Microsoft's Graph
//! v1.0 OpenAPI document (the identity subset in `../shared/specs/`) by Stoplight Prism's
//! validating proxy (`prism proxy --errors`) placed between them. A request or response that
//! breaks the document becomes an error, which fails the fetch and this test.
//!
//! Ignored by `cargo test`; run by `.ci/run` after the README's test command, because it needs
//! Prism (npm) and the document from `../shared/specs/`, prefixed with `/v1.0` by
//! `shared/specs/tools/prefix_paths.py`:
//!   ROSTER_PRISM=path/to/prism ROSTER_GRAPH_CONTRACT=graph-v1.json \
//!     cargo test -p roster --test engine -- --ignored contract_graph::
//! The token endpoint (login.microsoftonline.com) is not in the document; tokens go to the
//! simulator directly. `members@delta` and `@removed` are not modelled by the document (it
//! allows them as additional properties); `engine/entra.rs` checks them by hand.

use crate::common;

use common::Configured;
use common::entra::{EntraWorld, fetch_of, tenant};
use common::prism::Prism;
use common::world::bitbucket;
use roster_sim::directory::Directory;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prism and ../shared/specs; .ci/run runs it"]
async fn the_connector_and_the_simulator_keep_to_the_graph_openapi_document() {
    let spec = std::env::var("ROSTER_GRAPH_CONTRACT")
        .expect("ROSTER_GRAPH_CONTRACT: the Graph subset with paths under /v1.0 (see .ci/run)");
    let mut d = Directory::generate(60, 8, 2);
    let mut g = tenant(&d);
    common::entra::add_app(&mut g);
    let mut w = EntraWorld::new(g, bitbucket()).await;
    let prism = Prism::start(std::path::Path::new(&spec), &w.idp.url(), w.rt.dir.path()).await;
    let through = prism.url();
    // Graph through Prism; its links must lead back through Prism too. Tokens go direct.
    w.idp.lock().set_public_url(&through);
    w.source.login_url = Some(w.idp.url());
    w.source.graph_url = through;

    let check = w.check().await;
    assert!(check.ok, "{:?}\n{}", check.error, prism.log());
    prism.assert_no_violations("check");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    assert_generated_groups(&w, &d);
    prism.assert_no_violations("full fetch");

    // Delta rounds with updates, soft deletes and member changes.
    d.users[0].display_name = "Contract Renamed".into();
    w.idp
        .lock()
        .update_user(&d.users[0].id, |u| u.display_name = "Contract Renamed".into());
    w.idp.lock().soft_delete_user(&d.users[1].id);
    d.users[1].active = false;
    let (grp, member) = (d.groups[0].id.clone(), d.users[2].id.clone());
    w.idp.lock().remove_member(&grp, &member);
    d.memberships.retain(|m| !(m.group == grp && m.member == member));
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    assert_eq!(fetch_of(&r).mode, "incremental");
    prism.assert_no_violations("delta");

    // The app scope: service principals, assignments, transitive members.
    w.source.settings = "scope = \"app\"\napp_id = \"0a1b2c3d-0000-4000-8000-00000000b17b\"".into();
    // Narrowing the scope to one app takes most people out of their groups, on purpose.
    w.target_extra = concat!(
        "threshold = { count = 500, percent = 100, memberships_removed = 100000, ",
        "people_losing_memberships = { count = 500, percent = 100, floor = 5 }, ",
        "group_members_lost = { percent = 100, floor = 10 } }"
    )
    .into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}\n{}", r.summary.warnings, prism.log());
    assert!(w.bb.lock().groups().contains_key("bb-c"));
    prism.assert_no_violations("app scope");
}

/// The generated directory's groups hold exactly their flattened members (the app's users and
/// groups live in the same tenant, so the whole-state assertion does not apply).
fn assert_generated_groups(w: &EntraWorld, d: &Directory) {
    let bb = w.bb.lock();
    for (group, members) in d.expected_members() {
        assert_eq!(bb.groups().get(&group), Some(&members), "members of {group}");
    }
}
