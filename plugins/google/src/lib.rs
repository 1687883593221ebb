//! `google`: a Roster connector for Google Workspace through the Admin SDK Directory API
//! (`admin/directory/v1`).
//!
//! * Auth: a service account with domain-wide delegation. The host signs the RS256 assertion
//!   (`iss` the service account, `sub` the admin it acts as, `scope` the read-only Directory
//!   scopes, `aud` Google's token endpoint) with the key from the service account's JSON key
//!   file, which never enters the plugin; the token comes from the JWT-bearer grant
//!   ([`roster_sdk::oauth::JwtBearer`]).
//! * Scope: the account (`customer`, `my_customer` by default) or one `domain`, users narrowed
//!   by `user_query`, groups by `group_query`.
//! * Users: `suspended` and `archived` are inactive. Groups and their members; nested groups
//!   as nested memberships Roster flattens, or expanded by Google (`includeDerivedMembership`).
//! * Paging by `pageToken` with the largest pages allowed (500 users, 200 groups, 200 members).
//! * Incremental ([`fetch`]): no delta API, so the listings are compared with the last ones.
//! * Quota errors (403 `userRateLimitExceeded`/`rateLimitExceeded`, 429) are the host's to
//!   back off; one that reaches the connector is transient.

pub mod api;
pub mod check;
pub mod cursor;
pub mod fetch;
pub mod model;
pub mod settings;

use roster_sdk::driver::{Begin, Budget, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use api::Google;
use cursor::{Cursor, DeltaState};
use settings::Settings;

/// The connector for one source's settings.
pub struct GoogleIdp {
    s: Settings,
}

impl Idp for GoogleIdp {
    const NAME: &'static str = "google";
    const DESCRIPTION: &'static str =
        "Google Workspace users, groups and memberships through the Admin SDK Directory API (full and incremental)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        GoogleIdp { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&Google::new(&self.s, host.http))
    }

    // Most steps are one members page of a group; the cursor carries the listings' digests and
    // the memberships read so far (megabytes at 100,000 users), so pages of 24 requests would
    // carry it through the host four times as often.
    fn budget(&self) -> Budget {
        Budget {
            requests: 100,
            records: 20_000,
            ..Budget::default()
        }
    }
}

impl Fetch for GoogleIdp {
    type Cursor = Cursor;
    type Delta = DeltaState;

    fn begin(&self, from: Begin<DeltaState>, _: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        Ok(Next::Continue(fetch::begin(from)))
    }

    fn step(&self, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        fetch::step(&Google::new(&self.s, work.http()), cur, work)
    }
}

roster_sdk::export_idp!(GoogleIdp);
