//! The service: the REST API route by route and role by role, the scheduler, the configuration
//! file, the SCIM endpoint identity providers push to, the Crowd endpoint Atlassian applications
//! read the served directory through (`crowd`; `crowd_client`: as Bitbucket's directory reads
//! it), and (ignored by `cargo test`, run by `.ci/run`) Schemathesis over the OpenAPI document,
//! scim2-tester over the SCIM endpoint and python-crowd and atlassian-crowd-client over the Crowd
//! endpoint (`crowd_clients`).
//!
//! The admin pages: `ui` over HTTP, and (ignored, run by `.ci/run`) `ui_browser` in Chromium.
//!
//! One test binary for all of them (`cargo test -p roster --test service`).

#[path = "../common/mod.rs"]
mod common;

mod api;
mod config;
mod crowd;
mod crowd_apps;
mod crowd_authentication;
mod crowd_client;
mod crowd_clients;
mod data;
mod load;
mod push;
mod scheduler;
mod schemathesis;
mod scim;
mod scim2_tester;
mod scim_e2e;
mod targets;
mod ui;
mod ui_browser;
mod ui_sources;
