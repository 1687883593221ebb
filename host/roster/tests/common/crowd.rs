//! A Jira test world: the Jira/Crowd user-server simulator with Roster's application, the
//! Bitbucket simulator, the `crowd` plugin, a store, and engines built from a configuration an
//! administrator would write.

use roster_directory::FetchReport;
use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::crowd::{CrowdSim, CrowdState, Product};
use roster_sim::directory::{DirUser, Directory};
use roster_sim::scenario::{CrowdSource, crowd_source_config};

use super::changes::IdpEdits;
use super::world::{SourceConfig, SourceWorld};

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

impl SourceConfig for CrowdSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        crowd_source_config(self, bb_url, target_extra)
    }
}

/// The crowd source's world: the simulator is `idp`.
pub type CrowdWorld = SourceWorld<CrowdSim, CrowdSource>;

impl CrowdWorld {
    pub async fn new(crowd: CrowdState, bb: BbState) -> CrowdWorld {
        let idp = CrowdSim::start(crowd).await;
        SourceWorld::assemble(&[("crowd", "crowd.wasm")], idp, bb, 5, |idp, _| CrowdSource {
            server_url: idp.url(),
            application: APP.into(),
            password: PASSWORD.into(),
            ..CrowdSource::default()
        })
        .await
    }

    /// Requests the Jira simulator answered since the last call, in order, as `METHOD /path`
    /// below `/rest/usermanagement/1` without the query (`GET /event/…` is `GET /event/{token}`).
    pub fn take_crowd_requests(&self) -> Vec<String> {
        let log = self.idp.log();
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
        self.idp
            .lock()
            .update_user(&u.username, |x| x.display_name = name.into());
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        self.idp.lock().update_user(&u.username, |x| x.email = email.into());
    }

    fn join(&self, d: &Directory, group: &str, user: &str) {
        self.idp
            .lock()
            .add_user_to_group(d.username(user), &d.group_name(group));
    }

    fn leave(&self, d: &Directory, group: &str, user: &str) {
        self.idp
            .lock()
            .remove_user_from_group(d.username(user), &d.group_name(group));
    }
}
