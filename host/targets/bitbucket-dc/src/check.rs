//! "Test connection" for a Bitbucket target: the credentials work, the account administers
//! Bitbucket, and the licence says how many seats there are. One call, so it answers in
//! seconds even against a slow instance.

use std::time::Instant;

use roster_engine::TargetCheck;

use crate::client::{BbError, BitbucketDc};

impl BitbucketDc {
    /// Reads the licence (an administrator-only call) and explains a refusal.
    pub async fn check(&self, url: &str) -> TargetCheck {
        let started = Instant::now();
        let (ok, error, license) = match self.license().await {
            Ok(l) => (true, None, Some(l)),
            Err(e) => (false, Some(self.explain(url, &e)), None),
        };
        TargetCheck {
            ok,
            error,
            licensed_users: license.as_ref().and_then(|l| l.seats()),
            licensed_users_in_use: license
                .as_ref()
                .and_then(|l| l.status.as_ref())
                .map(|s| s.current_number_of_users),
            ms: started.elapsed().as_millis() as u64,
            detail: None,
        }
    }

    fn explain(&self, url: &str, e: &BbError) -> String {
        let user = self.username();
        match e.status() {
            Some(401) => {
                format!("Bitbucket at {url} refused the credentials of '{user}' (401): check the password or token")
            }
            Some(403) => format!(
                "'{user}' is not a Bitbucket administrator (403): Roster needs SYS_ADMIN to manage users and groups"
            ),
            Some(404) => format!(
                "{url} does not serve the Bitbucket Data Center REST API (404 for /rest/api/1.0/admin/license): check the target's url"
            ),
            _ => e.to_string(),
        }
    }
}
