//! "Test connection": the credentials work, and the workspace is administered where the
//! settings say.

use std::time::Instant;

use roster_engine::TargetCheck;

use crate::target::{BitbucketCloudTarget, Mode};

/// What a mode's check found.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// How the workspace is administered, which API Roster uses.
    pub detail: String,
    /// Accounts counted now, when known.
    pub in_use: Option<i64>,
}

impl BitbucketCloudTarget {
    /// Probes the credentials and the mode.
    pub(crate) async fn check_target(&self) -> TargetCheck {
        let started = Instant::now();
        let found = match &self.mode {
            Mode::Scim(scim) => scim.check(&self.settings).await,
            Mode::Bitbucket => Err(crate::error::CloudError::Refused("not yet".into())),
        };
        let (ok, error, detail, in_use) = match found {
            Ok(c) => (true, None, Some(c.detail), c.in_use),
            Err(e) => (false, Some(e.to_string()), None, None),
        };
        TargetCheck {
            ok,
            error,
            licensed_users: self.settings.seats,
            licensed_users_in_use: in_use,
            ms: started.elapsed().as_millis() as u64,
            detail,
        }
    }
}
