//! A Jira test world: the Jira/Crowd user-server simulator with Roster's application, the
//! Bitbucket simulator, the `crowd` plugin, a store, and engines built from a configuration an
//! administrator would write.

use std::sync::Arc;

use roster_directory::FetchReport;
use roster_serve::RunReport;
use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::crowd::{CrowdSim, CrowdState, Product};
use roster_sim::directory::{DirUser, Directory};
use roster_sim::scenario::{CrowdSource, crowd_source_config};
use roster_store::Store;

use super::changes::IdpEdits;
use super::{Configured, TestRuntime};

/// The application Roster signs in as (Jira: User management → Jira user server).
pub const APP: &str = "roster";
/// Its password.
pub const PASSWORD: &str = "app-password-7f3e9c";

/// A Jira user server holding `d` (user keys are the directory's ids), with Roster's
/// application allowed from the loopback range the tests connect from.
pub fn jira(d: &Directory) -> CrowdState {
    let mut s = CrowdState::from_directory(d, Product::Jira);
    s.add_application(APP, PASSWORD, &["127.0.0.0/8", "::1"]);
    s
}

pub struct CrowdWorld {
    pub crowd: CrowdSim,
    pub bb: BitbucketSim,
    pub rt: TestRuntime,
    pub store: Arc<Store>,
    /// The source as configured; tests change its settings between runs.
    pub source: CrowdSource,
    /// Extra lines for `[target]`.
    pub target_extra: String,
}

impl Configured for CrowdWorld {
    fn config_text(&self) -> String {
        crowd_source_config(&self.source, &self.bb.url(), &self.target_extra)
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

impl CrowdWorld {
    pub async fn new(crowd: CrowdState, bb: BbState) -> CrowdWorld {
        let rt = TestRuntime::new(&[("crowd", "crowd.wasm")]).await;
        let crowd = CrowdSim::start(crowd).await;
        let bb = BitbucketSim::start(bb).await;
        let store = super::store_in(&rt, 5);
        let source = CrowdSource {
            server_url: crowd.url(),
            application: APP.into(),
            password: PASSWORD.into(),
            ..CrowdSource::default()
        };
        CrowdWorld {
            crowd,
            bb,
            rt,
            store,
            source,
            target_extra: String::new(),
        }
    }

    /// Requests the Jira simulator answered since the last call, in order, as `METHOD /path`
    /// below `/rest/usermanagement/1` without the query (`GET /event/…` is `GET /event/{token}`).
    pub fn take_crowd_requests(&self) -> Vec<String> {
        let log = self.crowd.log();
        let entries = log.entries();
        log.clear();
        entries
            .into_iter()
            .map(|l| {
                let path = l.target.split('?').next().unwrap_or_default();
                let path = path.strip_prefix("/rest/usermanagement/1").unwrap_or(path);
                let path = match path.strip_prefix("/event/") {
                    Some(_) => "/event/{token}",
                    None => path,
                };
                format!("{} {path}", l.method)
            })
            .collect()
    }
}

/// The run's report for the jira source's fetch.
pub fn fetch_of(r: &RunReport) -> &FetchReport {
    super::fetch_named(r, "jira")
}

impl IdpEdits for CrowdWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        self.crowd
            .lock()
            .update_user(&u.username, |x| x.display_name = name.into());
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        self.crowd.lock().update_user(&u.username, |x| x.email = email.into());
    }

    fn join(&self, d: &Directory, group: &str, user: &str) {
        self.crowd
            .lock()
            .add_user_to_group(d.username(user), &d.group_name(group));
    }

    fn leave(&self, d: &Directory, group: &str, user: &str) {
        self.crowd
            .lock()
            .remove_user_from_group(d.username(user), &d.group_name(group));
    }
}
