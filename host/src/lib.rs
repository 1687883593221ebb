//! Roster keeps Bitbucket's users, groups and memberships in step with identity providers.
//!
//! See ARCHITECTURE.md at the repository root for the map of this crate.

pub mod api;
pub mod config;
pub mod error_chain;
pub mod runtime;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod sync;
pub mod targets;
pub mod telemetry;
