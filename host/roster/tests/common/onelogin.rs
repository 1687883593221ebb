//! A OneLogin test world: the OneLogin simulator with an account, the Bitbucket simulator, the
//! `onelogin` plugin, a store, and engines built from a configuration an administrator would
//! write.

use std::collections::BTreeMap;

use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::directory::{DirUser, Directory};
use roster_sim::onelogin::{CredentialScope, OneLoginSim, OneLoginState};
use roster_sim::scenario::{OneLoginSource, onelogin_source_config};

use super::changes::IdpEdits;
use super::world::{SourceConfig, SourceWorld};

pub const CLIENT: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
pub const SECRET: &str = "ol-client-secret-0123456789abcdef";

/// An account holding `d` (roles for groups), with Roster's API credential ("Read users").
pub fn account(d: &Directory) -> OneLoginState {
    let mut o = OneLoginState::from_directory(d);
    o.add_credential(CLIENT, SECRET, CredentialScope::ReadUsers);
    o
}

impl SourceConfig for OneLoginSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        onelogin_source_config(self, bb_url, target_extra)
    }
}

/// The onelogin source's world: the simulator is `idp`.
pub type OneLoginWorld = SourceWorld<OneLoginSim, OneLoginSource>;

impl OneLoginWorld {
    pub async fn new(account: OneLoginState, bb: BbState) -> OneLoginWorld {
        let idp = OneLoginSim::start(account).await;
        SourceWorld::assemble(&[("onelogin", "onelogin.wasm")], idp, bb, 6, |idp, _| OneLoginSource {
            api_url: idp.url(),
            client_id: CLIENT.into(),
            secret: SECRET.into(),
            ..OneLoginSource::default()
        })
        .await
    }

    /// API requests answered since the last call (token requests excluded), by route.
    pub fn take_calls(&self) -> (u64, BTreeMap<String, u64>) {
        super::api_calls(std::mem::take(&mut self.idp.lock().calls))
    }

    /// The OneLogin id of directory user `dir_id`.
    pub fn user(&self, dir_id: &str) -> i64 {
        self.idp.lock().user_id(dir_id)
    }
}

/// The run's report for the onelogin source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "onelogin")
}

impl IdpEdits for OneLoginWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let mut o = self.idp.lock();
        let id = o.user_id(&u.id);
        o.update_user(id, |x| {
            x.firstname = first.into();
            x.lastname = last.into();
        });
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        let mut o = self.idp.lock();
        let id = o.user_id(&u.id);
        o.update_user(id, |x| x.email = email.into());
    }

    fn join(&self, _: &Directory, group: &str, user: &str) {
        let mut o = self.idp.lock();
        let (r, u) = (o.role_id(group), o.user_id(user));
        o.assign_role(u, r);
    }

    fn leave(&self, _: &Directory, group: &str, user: &str) {
        let mut o = self.idp.lock();
        let (r, u) = (o.role_id(group), o.user_id(user));
        o.unassign_role(u, r);
    }
}
