//! A OneLogin test world: the OneLogin simulator with an account, the Bitbucket simulator, the
//! `onelogin` plugin, a store, and engines built from a configuration an administrator would
//! write.

use std::collections::BTreeMap;
use std::sync::Arc;

use roster_serve::RunReport;
use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::{DirUser, Directory};
use roster_sim::onelogin::{CredentialScope, OneLoginSim, OneLoginState};
use roster_sim::scenario::{OneLoginSource, onelogin_source_config};
use roster_store::Store;

use super::changes::IdpEdits;
use super::{Configured, TestRuntime};

pub const CLIENT: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
pub const SECRET: &str = "ol-client-secret-0123456789abcdef";

/// An account holding `d` (roles for groups), with Roster's API credential ("Read users").
pub fn account(d: &Directory) -> OneLoginState {
    let mut o = OneLoginState::from_directory(d);
    o.add_credential(CLIENT, SECRET, CredentialScope::ReadUsers);
    o
}

pub struct OneLoginWorld {
    pub onelogin: OneLoginSim,
    pub bb: BitbucketSim,
    pub rt: TestRuntime,
    pub store: Arc<Store>,
    /// The source as configured; tests change its settings between runs.
    pub source: OneLoginSource,
    /// Extra lines for `[target]`.
    pub target_extra: String,
}

impl Configured for OneLoginWorld {
    fn config_text(&self) -> String {
        onelogin_source_config(&self.source, &self.bb.url(), &self.target_extra)
    }

    fn test_runtime(&self) -> &TestRuntime {
        &self.rt
    }

    fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn bitbucket(&self) -> &BitbucketSim {
        &self.bb
    }
}

impl OneLoginWorld {
    pub async fn new(account: OneLoginState, bb: BbState) -> OneLoginWorld {
        let rt = TestRuntime::new(&[("onelogin", "onelogin.wasm")]).await;
        let onelogin = OneLoginSim::start(account).await;
        let bb = BitbucketSim::start(bb).await;
        let store = super::store_in(&rt, 6);
        let source = OneLoginSource {
            api_url: onelogin.url(),
            client_id: CLIENT.into(),
            secret: SECRET.into(),
            ..OneLoginSource::default()
        };
        OneLoginWorld {
            onelogin,
            bb,
            rt,
            store,
            source,
            target_extra: String::new(),
        }
    }

    /// API requests answered since the last call (token requests excluded), by route.
    pub fn take_calls(&self) -> (u64, BTreeMap<String, u64>) {
        super::api_calls(std::mem::take(&mut self.onelogin.lock().calls))
    }

    /// The OneLogin id of directory user `dir_id`.
    pub fn user(&self, dir_id: &str) -> i64 {
        self.onelogin.lock().user_id(dir_id)
    }
}

/// The run's report for the onelogin source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "onelogin")
}

impl IdpEdits for OneLoginWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let mut o = self.onelogin.lock();
        let id = o.user_id(&u.id);
        o.update_user(id, |x| {
            x.firstname = first.into();
            x.lastname = last.into();
        });
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        let mut o = self.onelogin.lock();
        let id = o.user_id(&u.id);
        o.update_user(id, |x| x.email = email.into());
    }

    fn join(&self, _: &Directory, group: &str, user: &str) {
        let mut o = self.onelogin.lock();
        let (r, u) = (o.role_id(group), o.user_id(user));
        o.assign_role(u, r);
    }

    fn leave(&self, _: &Directory, group: &str, user: &str) {
        let mut o = self.onelogin.lock();
        let (r, u) = (o.role_id(group), o.user_id(user));
        o.unassign_role(u, r);
    }
}
