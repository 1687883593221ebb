//! A Keycloak test world: the Keycloak simulator with a realm, the Bitbucket simulator, the
//! `keycloak` plugin, a store, and engines built from a configuration an administrator would
//! write.

use std::collections::BTreeMap;
use std::sync::Arc;

use roster_serve::RunReport;
use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::{DirUser, Directory};
use roster_sim::keycloak::{KeycloakSim, KeycloakState, Role};
use roster_sim::scenario::{KeycloakSource, keycloak_source_config};
use roster_store::Store;

use super::changes::IdpEdits;
use super::{Configured, TestRuntime};

pub const REALM: &str = "acme";
pub const CLIENT: &str = "roster";
pub const SECRET: &str = "kc-client-secret-0123456789abcdef";
/// Groups named as the directory names them (the connector's default names them by path).
pub const BY_NAME: &str = "group_names = \"name\"";

/// Realm `acme` holding `d` (nested groups as sub-groups), with Roster's client and its
/// service account's two roles.
pub fn realm(d: &Directory) -> KeycloakState {
    let mut k = KeycloakState::from_directory(REALM, d);
    k.add_client(CLIENT, SECRET, &[Role::ViewUsers, Role::QueryGroups]);
    k
}

pub struct KeycloakWorld {
    pub keycloak: KeycloakSim,
    pub bb: BitbucketSim,
    pub rt: TestRuntime,
    pub store: Arc<Store>,
    /// The source as configured; tests change its settings between runs.
    pub source: KeycloakSource,
    /// Extra lines for `[target]`.
    pub target_extra: String,
}

impl Configured for KeycloakWorld {
    fn config_text(&self) -> String {
        keycloak_source_config(&self.source, &self.bb.url(), &self.target_extra)
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

impl KeycloakWorld {
    pub async fn new(realm: KeycloakState, bb: BbState) -> KeycloakWorld {
        let rt = TestRuntime::new(&[("keycloak", "keycloak.wasm")]).await;
        let keycloak = KeycloakSim::start(realm).await;
        let bb = BitbucketSim::start(bb).await;
        let store = super::store_in(&rt, 8);
        let source = KeycloakSource {
            server_url: keycloak.url(),
            base_url: keycloak.base_url(),
            realm: REALM.into(),
            client_id: CLIENT.into(),
            secret: SECRET.into(),
            settings: BY_NAME.into(),
            ..KeycloakSource::default()
        };
        KeycloakWorld {
            keycloak,
            bb,
            rt,
            store,
            source,
            target_extra: String::new(),
        }
    }

    /// Admin API requests answered since the last call (token requests excluded), by route.
    pub fn take_calls(&self) -> (u64, BTreeMap<String, u64>) {
        super::api_calls(std::mem::take(&mut self.keycloak.lock().calls))
    }

    /// The Keycloak id of directory object `dir_id`.
    pub fn id(&self, dir_id: &str) -> String {
        self.keycloak.lock().id_of(dir_id)
    }
}

/// The run's report for the keycloak source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "keycloak")
}

impl IdpEdits for KeycloakWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let mut k = self.keycloak.lock();
        let id = k.id_of(&u.id);
        k.update_user(&id, |x| {
            x.first_name = Some(first.into()).filter(|f: &String| !f.is_empty());
            x.last_name = Some(last.into()).filter(|l: &String| !l.is_empty());
        });
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        let mut k = self.keycloak.lock();
        let id = k.id_of(&u.id);
        k.update_user(&id, |x| x.email = Some(email.into()));
    }

    fn join(&self, _: &Directory, group: &str, user: &str) {
        let mut k = self.keycloak.lock();
        let (g, u) = (k.id_of(group), k.id_of(user));
        k.join(&g, &u);
    }

    fn leave(&self, _: &Directory, group: &str, user: &str) {
        let mut k = self.keycloak.lock();
        let (g, u) = (k.id_of(group), k.id_of(user));
        k.leave(&g, &u);
    }
}
