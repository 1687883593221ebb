//! `okta`: a Roster connector for Okta through its Management API (`/api/v1`).
//!
//! * Auth: an API token (`Authorization: SSWS …`, filled in by the host from a secret), or an
//!   OAuth 2.0 service app with `private_key_jwt` (the host signs the assertion; the key never
//!   enters the plugin), scopes `okta.users.read okta.groups.read` (+ `okta.apps.read`).
//! * Scopes: the org (users narrowed by `user_search`, groups by `group_search`), listed
//!   groups, or the users and groups assigned to an application.
//! * Paging by `Link: <…>; rel="next"`, followed as given and kept on org_url.
//! * Incremental ([`fetch`]): `filter=lastUpdated gt "…"` for users (DEPROVISIONED included;
//!   a `search` with `user_search`) and `lastUpdated`/`lastMembershipUpdated` for groups, from
//!   Okta's own clock (`Date`) less an overlap, five minutes where a search (eventually
//!   consistent) finds changes; re-read groups are diffed against the memberships kept in the
//!   delta token. Deleted users and groups, and those that stop matching a search, leave no
//!   timestamp: the scheduler's periodic full fetch catches them.
//! * Rate limits (`X-Rate-Limit-*`, 429) are the host's: it slows the source before a 429 and
//!   waits one out; a 429 that reaches the connector is a transient error.
//!
//! Paging, the cursor, the delta token's checks and the settings' schema are the SDK's.

pub mod check;
pub mod cursor;
pub mod fetch;
pub mod model;
pub mod okta;
pub mod settings;

use roster_sdk::driver::{Begin, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use cursor::{Cursor, DeltaState};
use okta::Okta;
use settings::Settings;

/// The connector for one source's settings.
pub struct OktaIdp {
    s: Settings,
}

impl Idp for OktaIdp {
    const NAME: &'static str = "okta";
    const DESCRIPTION: &'static str =
        "Okta users, groups and memberships through the Management API (full and incremental)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        OktaIdp { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&Okta::new(&self.s, host.http))
    }
}

impl Fetch for OktaIdp {
    type Cursor = Cursor;
    type Delta = DeltaState;

    fn begin(&self, from: Begin<DeltaState>, _: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        Ok(Next::Continue(fetch::begin(&Okta::new(&self.s, &NoRequests), from)))
    }

    fn step(&self, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        fetch::step(&Okta::new(&self.s, work.http()), cur, work)
    }
}

/// `begin` only builds URLs; a request from it would be a bug, reported as one.
struct NoRequests;

impl roster_sdk::http::Transport for NoRequests {
    fn send(&self, req: roster_sdk::Request) -> Result<roster_sdk::Response, PluginError> {
        Err(PluginError::Fatal(format!(
            "okta: a request ({}) was made before the fetch's first step",
            req.url
        )))
    }
}

roster_sdk::export_idp!(OktaIdp);
