//! Bitbucket Cloud as a target. A workspace is administered in one of two places, and Roster
//! works through what each allows:
//!
//! - in Bitbucket (mode one): groups and their members through the 1.0 `groups` endpoints,
//!   accounts by invitation (1.0 `invitations`), workspace members and owners through 2.0
//!   (`client`, `read`, `apply`);
//! - at admin.atlassian.com (mode two, `[target.scim]`): users and groups through Atlassian's
//!   user-provisioning SCIM API (`scim`).
//!
//! Atlassian accounts are keyed by account id, never by Roster's name: the store keeps which
//! name is which account, found by email (`roster_store`'s `target_accounts`). Cloud meters
//! calls per hour, so every call is counted against a budget kept in the store (`budget`),
//! shared by every run and process, and a plan larger than an hour continues in the next run.

mod apply;
mod budget;
mod check;
mod client;
mod error;
mod http;
mod pace;
mod read;
mod scim;
mod settings;
mod target;

pub use error::CloudError;
pub use settings::{HourlyBudget, ScimSettings, Settings};
pub use target::{BitbucketCloudTarget, KIND, Kind};
