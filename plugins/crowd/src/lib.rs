//! `crowd`: a Roster connector for Jira or Crowd acting as a user server, through the Crowd REST
//! API `usermanagement/1` — what Bitbucket's own "Atlassian Jira" / "Atlassian Crowd" directory
//! reads (the contract: `shared/reference/crowd-rest.md`).
//!
//! * Auth: the application's name and password as HTTP Basic on every request; the password
//!   stays in the host (`roster_sdk::http::basic_auth`).
//! * Full fetch ([`full`]): the event token, every user (`POST /search`, attributes
//!   included), every group, then memberships from `/group/membership` or group by group;
//!   `max-results=-1` or paging by `page_size`.
//! * Incremental fetch ([`delta`]): `GET /event/{token}`, applied as one net change per object;
//!   an expired token or a server without incremental synchronisation asks the host for a full
//!   fetch, saying why.
//! * [`check`] names the exact problem: not a Crowd REST service, the application refused, the
//!   address Roster connects from not allowed, no permission.
//!
//! Settings: [`settings::Settings`]; the README's "Jira or Crowd" section shows a source.

pub mod check;
pub mod cursor;
pub mod delta;
pub mod full;
pub mod model;
pub mod rest;
pub mod settings;
pub mod xml;

use roster_sdk::driver::{Begin, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use cursor::{Cursor, DeltaState};
use rest::Server;
use settings::Settings;

/// The connector for one source's settings.
pub struct Crowd {
    s: Settings,
}

impl Idp for Crowd {
    const NAME: &'static str = "crowd";
    const DESCRIPTION: &'static str = "Jira or Crowd as a user server: users, groups and memberships through the Crowd REST API (full and incremental)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        Crowd { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&Server::new(&self.s, host.http))
    }
}

impl Fetch for Crowd {
    type Cursor = Cursor;
    type Delta = DeltaState;

    // 2: `keys` holds every user, not only those whose id is not their name.
    const DELTA_VERSION: u32 = 2;

    fn begin(&self, from: Begin<DeltaState>, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        let srv = Server::new(&self.s, work.http());
        match from {
            Begin::Full => Ok(Next::Continue(full::begin(&srv)?)),
            Begin::Incremental(state) => Ok(Next::Done(Some(delta::run(&srv, state, work)?))),
        }
    }

    fn step(&self, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        full::step(&Server::new(&self.s, work.http()), cur, work)
    }
}

roster_sdk::export_idp!(Crowd);

#[cfg(test)]
mod tests;
