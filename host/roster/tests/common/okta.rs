//! An Okta test world: the Okta simulator with an org, the Bitbucket simulator, the `okta` and
//! `normalize` plugins, a store, and engines built from a configuration an administrator would
//! write.

use std::collections::BTreeMap;

use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::directory::{DirUser, Directory};
use roster_sim::okta::{OktaSim, OktaState};
use roster_sim::scenario::{OktaSource, okta_source_config};

use super::changes::IdpEdits;
use super::world::{SourceConfig, SourceWorld};

/// The org's login domain (logins are `username@okta.example`).
pub const DOMAIN: &str = "okta.example";
/// The API token Roster is given.
pub const TOKEN: &str = "00abcdefGHIJKLMNOPqrstuvwxyz0123456789ABCD";

/// An org holding `d`, with Roster's API token.
pub fn org(d: &Directory) -> OktaState {
    let mut o = OktaState::from_directory(d, DOMAIN);
    o.add_api_token(TOKEN);
    o
}

impl SourceConfig for OktaSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        okta_source_config(self, bb_url, target_extra)
    }
}

/// The okta source's world: the simulator is `idp`.
pub type OktaWorld = SourceWorld<OktaSim, OktaSource>;

impl OktaWorld {
    pub async fn new(okta: OktaState, bb: BbState) -> OktaWorld {
        let idp = OktaSim::start(okta).await;
        SourceWorld::assemble(
            &[("okta", "okta.wasm"), ("normalize", "normalize.wasm")],
            idp,
            bb,
            5,
            |idp, _| OktaSource {
                org_url: idp.url(),
                api_token: TOKEN.into(),
                ..OktaSource::default()
            },
        )
        .await
    }

    /// Okta API requests answered since the last call (token requests excluded), by route.
    pub fn take_okta_calls(&self) -> (u64, BTreeMap<String, u64>) {
        super::api_calls(std::mem::take(&mut self.idp.lock().calls))
    }

    /// The Okta id of directory user `dir_id`.
    pub fn user(&self, dir_id: &str) -> String {
        self.idp.lock().user_id(dir_id)
    }
}

/// The run's report for the okta source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "okta")
}

impl IdpEdits for OktaWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        let mut o = self.idp.lock();
        let id = o.user_id(&u.id);
        o.update_user(&id, |p| {
            p.insert("displayName".into(), name.into());
        });
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        let mut o = self.idp.lock();
        let id = o.user_id(&u.id);
        o.update_user(&id, |p| {
            p.insert("email".into(), email.into());
        });
    }

    fn join(&self, _: &Directory, group: &str, user: &str) {
        let mut o = self.idp.lock();
        let (g, u) = (o.group_id(group), o.user_id(user));
        o.add_member(&g, &u);
    }

    fn leave(&self, _: &Directory, group: &str, user: &str) {
        let mut o = self.idp.lock();
        let (g, u) = (o.group_id(group), o.user_id(user));
        o.remove_member(&g, &u);
    }
}
