//! Bitbucket Data Center as a target: the typed admin REST client (`client`, `model`), the
//! read of its state in the engine's terms (`read`), "test connection" (`check`), and the
//! [`roster_engine::Target`] it implements (`target`) — Data Center's rules live here: global
//! permissions license, ADMIN and SYS_ADMIN administer, an account is disabled by taking away
//! what licenses it (there is no deactivate call), members are added in bulk, accounts are
//! renamed with `admin/users/rename`.

mod check;
mod client;
pub mod model;
mod read;
mod target;

pub use client::{Auth, BbError, BitbucketDc, ClientConfig};
pub use target::{BitbucketDcTarget, Kind, Settings};
