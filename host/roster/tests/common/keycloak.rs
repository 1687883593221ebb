//! A Keycloak test world: the Keycloak simulator with a realm, the Bitbucket simulator, the
//! `keycloak` plugin, a store, and engines built from a configuration an administrator would
//! write.

use std::collections::BTreeMap;

use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::directory::{DirUser, Directory};
use roster_sim::keycloak::{KeycloakSim, KeycloakState, Role};
use roster_sim::scenario::{KeycloakSource, keycloak_source_config};

use super::changes::IdpEdits;
use super::world::{SourceConfig, SourceWorld};

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

impl SourceConfig for KeycloakSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        keycloak_source_config(self, bb_url, target_extra)
    }
}

/// The keycloak source's world: the simulator is `idp`.
pub type KeycloakWorld = SourceWorld<KeycloakSim, KeycloakSource>;

impl KeycloakWorld {
    pub async fn new(realm: KeycloakState, bb: BbState) -> KeycloakWorld {
        let idp = KeycloakSim::start(realm).await;
        SourceWorld::assemble(&[("keycloak", "keycloak.wasm")], idp, bb, 8, |idp, _| KeycloakSource {
            server_url: idp.url(),
            base_url: idp.base_url(),
            realm: REALM.into(),
            client_id: CLIENT.into(),
            secret: SECRET.into(),
            settings: BY_NAME.into(),
            ..KeycloakSource::default()
        })
        .await
    }

    /// Admin API requests answered since the last call (token requests excluded), by route.
    pub fn take_calls(&self) -> (u64, BTreeMap<String, u64>) {
        super::api_calls(std::mem::take(&mut self.idp.lock().calls))
    }

    /// The Keycloak id of directory object `dir_id`.
    pub fn id(&self, dir_id: &str) -> String {
        self.idp.lock().id_of(dir_id)
    }
}

/// The run's report for the keycloak source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "keycloak")
}

impl IdpEdits for KeycloakWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let mut k = self.idp.lock();
        let id = k.id_of(&u.id);
        k.update_user(&id, |x| {
            x.first_name = Some(first.into()).filter(|f: &String| !f.is_empty());
            x.last_name = Some(last.into()).filter(|l: &String| !l.is_empty());
        });
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        let mut k = self.idp.lock();
        let id = k.id_of(&u.id);
        k.update_user(&id, |x| x.email = Some(email.into()));
    }

    fn join(&self, _: &Directory, group: &str, user: &str) {
        let mut k = self.idp.lock();
        let (g, u) = (k.id_of(group), k.id_of(user));
        k.join(&g, &u);
    }

    fn leave(&self, _: &Directory, group: &str, user: &str) {
        let mut k = self.idp.lock();
        let (g, u) = (k.id_of(group), k.id_of(user));
        k.leave(&g, &u);
    }
}
