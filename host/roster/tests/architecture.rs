//! The crate graph is the architecture (ARCHITECTURE.md): this test reads it from `cargo
//! metadata` and fails when a crate depends on one it must not — the engine on a target or on
//! the plugin runtime, the runtime on anything that syncs, the service on a vendor.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The Roster crates each crate may depend on (normal dependencies, transitively). Anything
/// not listed is forbidden; a new crate must be added here, with the layer it belongs to.
const ALLOWED: &[(&str, &[&str])] = &[
    ("roster-http", &[]),
    ("roster-schedule", &[]),
    ("roster-model", &[]),
    ("roster-wire", &[]),
    ("roster-export", &[]),
    // The SCIM model (plugins/scim-model), shared by the SCIM endpoint and the `scim` connector.
    ("roster-scim", &[]),
    // The Crowd protocol model (plugins/crowd-model), shared by the Crowd endpoint and the
    // Crowd simulator.
    ("roster-crowd", &[]),
    ("roster-runtime", &["roster-http", "roster-wire"]),
    ("roster-store", &["roster-http", "roster-model"]),
    (
        "roster-directory",
        &[
            "roster-export",
            "roster-http",
            "roster-model",
            "roster-runtime",
            "roster-schedule",
            "roster-store",
            "roster-wire",
        ],
    ),
    ("roster-engine", &["roster-http", "roster-model", "roster-store"]),
    (
        "roster-target-bitbucket-cloud",
        &["roster-engine", "roster-http", "roster-model", "roster-store"],
    ),
    (
        "roster-target-bitbucket-dc",
        &["roster-engine", "roster-http", "roster-model", "roster-store"],
    ),
    (
        "roster-target-bitbucket-cloud",
        &[
            "roster-engine",
            "roster-http",
            "roster-model",
            "roster-scim",
            "roster-store",
        ],
    ),
    (
        "roster-target-crowd-directory",
        &["roster-engine", "roster-http", "roster-model", "roster-store"],
    ),
    (
        "roster-target-memory",
        &["roster-engine", "roster-http", "roster-model", "roster-store"],
    ),
    ("roster-telemetry", &["roster-http"]),
    (
        "roster-serve",
        &[
            "roster-crowd",
            "roster-directory",
            "roster-engine",
            "roster-export",
            "roster-http",
            "roster-model",
            "roster-runtime",
            "roster-schedule",
            "roster-scim",
            "roster-store",
            "roster-telemetry",
            "roster-wire",
        ],
    ),
];

/// Normal (not dev, not build) dependencies of every workspace package on other Roster crates.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--offline", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        let deps = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .filter(|d| d.starts_with("roster-"))
            .collect();
        direct.insert(name, deps);
    }
    // Transitive closure: what a crate can reach is what it depends on.
    let mut closed = direct.clone();
    loop {
        let mut grew = false;
        for (name, deps) in direct
            .keys()
            .map(|n| (n.clone(), closed[n].clone()))
            .collect::<Vec<_>>()
        {
            for d in deps {
                let further = closed.get(&d).cloned().unwrap_or_default();
                let set = closed.get_mut(&name).unwrap();
                for f in further {
                    grew |= set.insert(f);
                }
            }
        }
        if !grew {
            return closed;
        }
    }
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let graph = graph();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (name, deps) in &graph {
        if name == "roster" || name == "roster-sim" {
            continue; // the binary wires everything; the simulators are test code
        }
        let Some(ok) = allowed.get(name.as_str()) else {
            wrong.push(format!("{name} is not in ALLOWED: place it in a layer"));
            continue;
        };
        for d in deps.iter().filter(|d| !ok.contains(d.as_str())) {
            wrong.push(format!("{name} depends on {d}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "the crate graph broke its layering:\n{}",
        wrong.join("\n")
    );
}

/// The invariants ARCHITECTURE.md states as absences, each checked by name.
#[test]
fn the_stated_absences_hold() {
    let graph = graph();
    let reaches = |from: &str, to: &str| graph[from].contains(to);
    for target in [
        "roster-target-bitbucket-cloud",
        "roster-target-bitbucket-dc",
        "roster-target-crowd-directory",
        "roster-target-memory",
    ] {
        assert!(!reaches("roster-engine", target), "the engine knows no vendor");
        assert!(!reaches("roster-serve", target), "the service knows no vendor");
        assert!(!reaches("roster-directory", target), "the directory needs no target");
    }
    assert!(!reaches("roster-engine", "roster-runtime"), "the engine runs no plugin");
    assert!(
        !reaches("roster-engine", "roster-directory"),
        "the engine reads the desired state, not sources"
    );
    for sync in [
        "roster-engine",
        "roster-directory",
        "roster-store",
        "roster-model",
        "roster-serve",
    ] {
        assert!(!reaches("roster-runtime", sync), "the runtime knows no sync ({sync})");
    }
    assert!(
        !reaches("roster-directory", "roster-engine"),
        "the directory needs no target"
    );
    assert!(
        !reaches("roster-store", "roster-runtime"),
        "the store holds data, it runs nothing"
    );
    assert!(
        graph["roster-http"].is_empty(),
        "roster-http is the bottom of the graph"
    );
}
