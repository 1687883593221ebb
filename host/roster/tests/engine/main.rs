//! The engine's promises end to end: syncs from a file source and from the Entra, Jira/Crowd and LDAP
//! into the Bitbucket simulator and into the in-memory target, transform chains, the CLI, and
//! (ignored by `cargo test`, run by `.ci/run`) the contract checks through Prism.
//!
//! One test binary for all of them, so wasmtime is linked once for them (`cargo test -p roster
//! --test engine`).

#[path = "../common/mod.rs"]
mod common;

mod budget;
mod cli;
mod cloud_workspace;
mod contract_cloud;
mod contract_google;
mod contract_graph;
mod contract_keycloak;
mod contract_okta;
mod contract_prism;
mod crash;
mod crowd;
mod drift;
mod entra;
mod faults;
mod google;
mod guard;
mod hostile;
mod inactive;
mod keycloak;
mod ldap;
mod okta;
mod onelogin;
mod scenarios;
mod scim_connector;
mod sync;
mod transforms;
