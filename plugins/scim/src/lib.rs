//! `scim`: a Roster connector for any SCIM 2.0 service (RFC 7643 resources, RFC 7644 protocol).
//!
//! * Auth: a static bearer token (the host fills the `Authorization` header from a secret), or
//!   OAuth 2.0 client credentials (the SDK's `oauth`).
//! * Users (`/Users`, with the enterprise extension's attributes for mappings) and groups
//!   (`/Groups`) with their members; a group listed without `members` is read by id. Paging by
//!   `startIndex`/`count` to `totalResults`, checked for a listing that moved ([`fetch`]).
//! * SCIM has no change feed: every fetch is a full one.
//! * Errors are the service's SCIM errors (`status`, `scimType`, `detail`), named.
//!
//! Paging, the token and the settings' schema are the SDK's; the SCIM reading of a list and a
//! resource is `roster-scim`'s, shared with Roster's SCIM endpoint.

pub mod api;
pub mod check;
pub mod fetch;
pub mod model;
pub mod settings;

use roster_sdk::driver::{Begin, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use api::Scim;
use fetch::Cursor;
use settings::Settings;

/// The connector for one source's settings.
pub struct ScimIdp {
    s: Settings,
}

impl Idp for ScimIdp {
    const NAME: &'static str = "scim";
    const DESCRIPTION: &'static str = "Users, groups and memberships from any SCIM 2.0 service (bearer token or OAuth client credentials; full fetches)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        ScimIdp { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&Scim::new(&self.s, host.http))
    }
}

impl Fetch for ScimIdp {
    type Cursor = Cursor;
    // No delta state: SCIM cannot list changes, so no token is kept.
    type Delta = ();

    fn begin(&self, _: Begin<()>, _: &mut Work<'_>) -> Result<Next<Cursor, ()>, PluginError> {
        Ok(Next::Continue(fetch::begin()))
    }

    fn step(&self, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, ()>, PluginError> {
        fetch::step(&Scim::new(&self.s, work.http()), cur, work)
    }
}

roster_sdk::export_idp!(ScimIdp);

#[cfg(test)]
mod tests;
