//! A Google Workspace test world: the Google simulator with an account, the Bitbucket
//! simulator, the `google` plugin, a store, and engines built from a configuration an
//! administrator would write — the service account's JSON key file included.

use std::collections::BTreeMap;

use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::directory::Directory;
use roster_sim::google::{GROUP_SCOPE, GoogleSim, GoogleState, USER_SCOPE};
use roster_sim::scenario::{GoogleSource, google_source_config};

use super::world::{SourceConfig, SourceWorld};

/// The service account.
pub const SERVICE_ACCOUNT: &str = "roster@acme-sync.iam.gserviceaccount.com";
/// Its unique id, which domain-wide delegation names.
pub const CLIENT_ID: &str = "104211983320146873245";
/// The admin it acts as.
pub const ADMIN: &str = "admin@example.com";
/// The key's id.
pub const KEY_ID: &str = "3f1c0a";

/// An account holding `d`, Roster's service account delegated the read-only scopes, and an
/// admin to act as.
pub fn account(d: &Directory) -> GoogleState {
    let mut g = GoogleState::from_directory(d, "example.com");
    let public = std::fs::read_to_string(super::repo().join("host/roster/tests/fixtures/test-rsa-pub.pem")).unwrap();
    g.add_service_account(SERVICE_ACCOUNT, CLIENT_ID, KEY_ID, &public);
    g.delegate(CLIENT_ID, &[USER_SCOPE, GROUP_SCOPE]);
    g.set_admin(ADMIN, true);
    g
}

impl SourceConfig for GoogleSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        google_source_config(self, bb_url, target_extra)
    }
}

/// The google source's world: the simulator is `idp`.
pub type GoogleWorld = SourceWorld<GoogleSim, GoogleSource>;

impl GoogleWorld {
    pub async fn new(google: GoogleState, bb: BbState) -> GoogleWorld {
        let idp = GoogleSim::start(google).await;
        SourceWorld::assemble(&[("google", "google.wasm")], idp, bb, 5, |idp, dir| GoogleSource {
            api_url: idp.url(),
            token_url: None,
            service_account: SERVICE_ACCOUNT.into(),
            admin_email: ADMIN.into(),
            key_file: key_file(dir).display().to_string(),
            settings: format!("key_id = \"{KEY_ID}\""),
            source: String::new(),
        })
        .await
    }

    /// Directory API requests answered since the last call (token requests excluded), by route.
    pub fn take_google_calls(&self) -> (u64, BTreeMap<String, u64>) {
        super::api_calls(std::mem::take(&mut self.idp.lock().calls))
    }

    /// The Google id of directory user or group `dir_id`.
    pub fn id(&self, dir_id: &str) -> String {
        self.idp.lock().id_of(dir_id)
    }
}

/// Writes the service account's key file into `dir` as the Cloud console downloads it.
pub fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    let pem = std::fs::read_to_string(super::repo().join("host/roster/tests/fixtures/test-rsa-key.pem")).unwrap();
    let path = dir.join("acme-sync-3f1c0a.json");
    let file = serde_json::json!({
        "type": "service_account",
        "project_id": "acme-sync",
        "private_key_id": KEY_ID,
        "private_key": pem,
        "client_email": SERVICE_ACCOUNT,
        "client_id": CLIENT_ID,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    path
}

/// The run's report for the google source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "google")
}
