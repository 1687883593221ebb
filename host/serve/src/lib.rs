//! The service: the configuration (`config`), what a run is (`runner`: the directory, then the
//! engine, under the target's lock), the long-running service behind `roster serve`
//! (`service`: runs in progress, reloads, alerts, metrics), the REST API (`api`), the SCIM
//! endpoint identity providers push to (`scim`), the Crowd user-server endpoint Atlassian
//! applications read the served directory through (`crowd`), the scheduler (`scheduler`) and
//! the admin pages (`ui`).
//!
//! It knows targets only through `roster_engine::TargetKinds`, which the binary fills: no
//! vendor is named here.

pub mod api;
pub mod config;
pub mod crowd;
pub mod failures;
pub mod runner;
pub mod scheduler;
pub mod scim;
pub mod service;
pub mod ui;

pub use config::{ApiConfig, Config, ConfigError, NO_TARGET};
pub use runner::{Progresses, RunError, RunReport, Runner, Summary, SyncOptions, TargetRun};
pub use service::{RunRequest, Service, ServiceError};
