//! `onelogin`: a Roster connector for OneLogin through its API v2 (and v1 for groups).
//!
//! * Auth: OAuth 2.0 client credentials at `/auth/oauth2/v2/token` with HTTP Basic and a JSON
//!   body (the SDK's `ClientAuth::Basic` and `TokenBody::Json`); the secret stays in the host.
//!   API calls send `Bearer <token>`; API v1 gets the `bearer:<token>` form OneLogin documents
//!   for it when it refuses `Bearer` ([`api::Api::get`]).
//! * Full fetch ([`fetch`]): roles and each role's users, OneLogin groups when asked for, then
//!   users; paging by the `After-Cursor` header, kept on `api_url`.
//! * Incremental fetch: users with `updated_since` (OneLogin's clock from its `Date` header, a
//!   minute back), each changed user's roles against the memberships kept in the delta state,
//!   roles and groups listed again for new, renamed and vanished ones. Deleted users are seen
//!   by the next full fetch (OneLogin lists no deletions). A mass update (more than half the
//!   users, or [`fetch::MASS_UPDATE`]) asks the host for a full fetch instead.
//! * Rate limits (`X-RateLimit-*`, 429 without Retry-After) are the host's: it paces the source.
//!
//! The API details follow the contract in the README's "OneLogin" section; OneLogin publishes
//! no OpenAPI document, and the details it does not document are marked there as unverified.

pub mod api;
pub mod check;
pub mod cursor;
pub mod fetch;
pub mod model;
pub mod settings;

use roster_sdk::driver::{Begin, Budget, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use api::Api;
use cursor::{Cursor, DeltaState};
use settings::Settings;

/// The connector for one source's settings.
pub struct OneLogin {
    s: Settings,
}

impl Idp for OneLogin {
    const NAME: &'static str = "onelogin";
    const DESCRIPTION: &'static str =
        "OneLogin users, roles (and groups) and memberships through the OneLogin API (full and incremental)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        OneLogin { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&Api::new(&self.s, host.http))
    }

    // Most steps are one small request (a role's users); pages of 24 would carry the
    // memberships read so far through the host ten times as often.
    fn budget(&self) -> Budget {
        Budget {
            requests: 64,
            ..Budget::default()
        }
    }
}

impl Fetch for OneLogin {
    type Cursor = Cursor;
    type Delta = DeltaState;
    // 2: the state counts the users the last full fetch listed, and under a `roles` filter the
    // OneLogin groups its index holds members for are the ones emitted.
    const DELTA_VERSION: u32 = 2;

    fn begin(&self, from: Begin<DeltaState>, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        Ok(Next::Continue(fetch::begin(&Api::new(&self.s, work.http()), from)))
    }

    fn step(&self, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        fetch::step(&Api::new(&self.s, work.http()), cur, work)
    }
}

roster_sdk::export_idp!(OneLogin);

#[cfg(test)]
mod tests;
