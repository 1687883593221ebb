//! `ldap`: a Roster connector for an LDAP directory (OpenLDAP and other RFC 4530 servers) or
//! Active Directory, through the host's `ldap` import: the host connects, protects the
//! connection with TLS, binds with the source's secret and runs read-only paged searches; this
//! component never holds a socket or the bind password.
//!
//! * Full fetch ([`fetch`]): users, then (with nested groups) the groups' DNs and ids, then the
//!   groups with their members; paged results (RFC 2696) throughout, Active Directory's range
//!   retrieval for large `member` values. A page the server capped (size, time or
//!   administrative limit) fails the fetch: a capped listing is never taken as complete.
//! * Incremental fetch: the same passes narrowed to `modifyTimestamp` (OpenLDAP) or
//!   `uSNChanged` (Active Directory) since the last fetch; a changed group's member list is
//!   compared with the one kept in the token. Deletions are found by the scheduled full fetch.
//! * [`check`]: bind, base DNs, one user with its id and name, the group search, paging.
//! * [`credentials`]: where a person's password is checked — a bind as their entry's current
//!   DN, which the host makes with the password (the Crowd endpoint's `POST /authentication`).
//!
//! Settings: [`settings::Settings`]; the README's "LDAP or Active Directory" section shows a
//! source.

pub mod check;
pub mod credentials;
pub mod cursor;
pub mod fetch;
pub mod model;
pub mod settings;

use roster_sdk::driver::{Begin, Budget, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use cursor::{Cursor, DeltaState};
use fetch::Ctx;
use settings::Settings;

/// The connector for one source's settings.
pub struct Ldap {
    s: Settings,
}

impl Idp for Ldap {
    const NAME: &'static str = "ldap";
    const DESCRIPTION: &'static str = "An LDAP directory or Active Directory: users, groups (nested) and memberships through paged searches (full and incremental)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        Ldap { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&self.s, host.ldap)
    }

    fn budget(&self) -> Budget {
        // Memberships are small records: a page of them may be larger than the default.
        Budget {
            records: 20_000,
            ..Budget::default()
        }
    }
}

impl Fetch for Ldap {
    type Cursor = Cursor;
    type Delta = DeltaState;

    fn begin(&self, from: Begin<DeltaState>, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        let ctx = Ctx::new(&self.s);
        Ok(Next::Continue(match from {
            Begin::Full => fetch::begin_full(&ctx, work.ldap())?,
            Begin::Incremental(state) => fetch::begin_incremental(&ctx, work.ldap(), state)?,
        }))
    }

    fn step(&self, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        fetch::step(&Ctx::new(&self.s), cur, work)
    }
}

/// Bindings for the `connector-plugin-credentials` world (WIT 0.1.2): the connector's exports
/// plus `credentials`, over the SDK's types and imports. Generated here, not in the SDK: one
/// crate cannot hold the export macros of two worlds that both export `connector`.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "connector-plugin-credentials",
        path: "../../wit",
        with: {
            "roster:plugin/types@0.1.2": roster_sdk::bindings::roster::plugin::types,
            "roster:plugin/host@0.1.2": roster_sdk::bindings::roster::plugin::host,
            "roster:plugin/ldap@0.1.2": roster_sdk::bindings::roster::plugin::ldap,
        },
    });
}

pub use bindings::exports::roster::plugin::credentials::{LdapBind, PasswordCheck, Person};

/// The exported component: the SDK's adapter for `connector`, and `credentials`.
pub struct Export;

impl bindings::exports::roster::plugin::connector::Guest for Export {
    fn describe() -> roster_sdk::PluginInfo {
        roster_sdk::idp::describe::<Ldap>(env!("CARGO_PKG_VERSION"))
    }

    fn check(settings: String) -> Result<(), PluginError> {
        roster_sdk::idp::check::<Ldap>(&settings, &Imports::host())
    }

    fn fetch(settings: String, cursor: Option<String>, delta: Option<String>) -> Result<roster_sdk::Page, PluginError> {
        roster_sdk::idp::fetch::<Ldap>(&settings, cursor.as_deref(), delta.as_deref(), &Imports::host())
    }
}

impl bindings::exports::roster::plugin::credentials::Guest for Export {
    fn password_check_for(settings: String, person: Person) -> Result<Option<PasswordCheck>, PluginError> {
        let s: Settings = roster_sdk::settings::read(&settings)?;
        credentials::password_check(&s, &person, Imports::host().ldap)
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Export with_types_in bindings);

#[cfg(test)]
mod tests;
