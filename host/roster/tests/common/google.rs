//! A Google Workspace test world: the Google simulator with an account, the Bitbucket
//! simulator, the `google` plugin, a store, and engines built from a configuration an
//! administrator would write — the service account's JSON key file included.

use std::collections::BTreeMap;
use std::sync::Arc;

use roster_serve::RunReport;
use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::directory::Directory;
use roster_sim::google::{GROUP_SCOPE, GoogleSim, GoogleState, USER_SCOPE};
use roster_sim::scenario::{GoogleSource, google_source_config};
use roster_store::Store;
use roster_store::crypto::Key;

use super::{Configured, TestRuntime};

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

pub struct GoogleWorld {
    pub google: GoogleSim,
    pub bb: BitbucketSim,
    pub rt: TestRuntime,
    pub store: Arc<Store>,
    /// The source as configured; tests change its settings between runs.
    pub source: GoogleSource,
}

impl Configured for GoogleWorld {
    fn config_text(&self) -> String {
        google_source_config(&self.source, &self.bb.url(), "")
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

impl GoogleWorld {
    pub async fn new(google: GoogleState, bb: BbState) -> GoogleWorld {
        let rt = TestRuntime::new(&[("google", "google.wasm")]).await;
        let google = GoogleSim::start(google).await;
        let bb = BitbucketSim::start(bb).await;
        let store = Arc::new(Store::open(&rt.dir.path().join("roster.db"), Key::from_bytes([5; 32])).unwrap());
        // The key file as the Cloud console downloads it.
        let pem = std::fs::read_to_string(super::repo().join("host/roster/tests/fixtures/test-rsa-key.pem")).unwrap();
        let key_file = rt.dir.path().join("acme-sync-3f1c0a.json");
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
        std::fs::write(&key_file, serde_json::to_string_pretty(&file).unwrap()).unwrap();
        let source = GoogleSource {
            api_url: google.url(),
            token_url: None,
            service_account: SERVICE_ACCOUNT.into(),
            admin_email: ADMIN.into(),
            key_file: key_file.display().to_string(),
            settings: format!("key_id = \"{KEY_ID}\""),
            source: String::new(),
        };
        GoogleWorld {
            google,
            bb,
            rt,
            store,
            source,
        }
    }

    /// Directory API requests answered since the last call (token requests excluded), by route.
    pub fn take_google_calls(&self) -> (u64, BTreeMap<String, u64>) {
        let calls = std::mem::take(&mut self.google.lock().calls);
        let total = calls
            .iter()
            .filter(|(k, _)| !k.contains("/token"))
            .map(|(_, n)| n)
            .sum();
        (total, calls)
    }

    /// The Google id of directory user or group `dir_id`.
    pub fn id(&self, dir_id: &str) -> String {
        self.google.lock().id_of(dir_id)
    }
}

/// The run's report for the google source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "google")
}
