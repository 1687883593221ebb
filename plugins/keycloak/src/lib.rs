//! `keycloak`: a Roster connector for a Keycloak realm through its Admin REST API
//! (`/admin/realms/{realm}`).
//!
//! * Auth: OAuth 2.0 client credentials at the realm's token endpoint
//!   (`/realms/{realm}/protocol/openid-connect/token`) as a confidential client whose service
//!   account has the realm-management roles `view-users` and `query-groups`; the client secret
//!   stays in the host. Keycloak before 17 serves under `/auth`: that prefix is part of
//!   `base_url`.
//! * Users with their attributes, top-level groups and their sub-groups (the `children`
//!   endpoint of Keycloak 23+, detected by `subGroupCount`; inline `subGroups` before), each
//!   group's direct members; a sub-group is a member of its parent unless `subgroups =
//!   "separate"`. Paging by `first`/`max`, checked for a listing that moved ([`fetch`]).
//! * No changed-since anywhere in the admin API: every fetch is a full one.
//! * Throttling (429/503 with Retry-After) is the host's: it waits and retries.
//!
//! Paging, the token and the settings' schema are the SDK's.

pub mod api;
pub mod check;
pub mod fetch;
pub mod model;
pub mod settings;

use roster_sdk::driver::{Begin, Budget, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use api::Keycloak;
use fetch::Cursor;
use settings::Settings;

/// The connector for one source's settings.
pub struct KeycloakIdp {
    s: Settings,
}

impl Idp for KeycloakIdp {
    const NAME: &'static str = "keycloak";
    const DESCRIPTION: &'static str =
        "Keycloak realm users, groups (with sub-groups) and memberships through the Admin REST API (full fetches)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        KeycloakIdp { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&Keycloak::new(&self.s, host.http))
    }

    fn budget(&self) -> Budget {
        // Most requests are one group's members (a few ids each) or sub-groups: many fit a page.
        Budget {
            requests: 100,
            ..Budget::default()
        }
    }
}

impl Fetch for KeycloakIdp {
    type Cursor = Cursor;
    // No delta state: the admin API cannot list changes, so no token is kept.
    type Delta = ();

    fn begin(&self, _: Begin<()>, _: &mut Work<'_>) -> Result<Next<Cursor, ()>, PluginError> {
        Ok(Next::Continue(fetch::begin()))
    }

    fn step(&self, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, ()>, PluginError> {
        fetch::step(&Keycloak::new(&self.s, work.http()), cur, work)
    }
}

roster_sdk::export_idp!(KeycloakIdp);

#[cfg(test)]
mod tests;
