//! "Test connection": the credentials work, and the workspace is administered where the
//! settings say (the probe of `GET /1.0/users/{ws}/invitations`, see `read`); a mismatch says
//! what to configure.

use std::time::Instant;

use roster_engine::TargetCheck;

use crate::error::CloudError;
use crate::read::Administered;
use crate::target::{BitbucketCloudTarget, Mode};

/// What a mode's check found.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// How the workspace is administered, which API Roster uses.
    pub detail: String,
    /// Accounts counted now, when known.
    pub in_use: Option<i64>,
}

/// Mode one's detail.
pub(crate) const IN_BITBUCKET: &str = "administered in Bitbucket: groups and invitations through the 1.0 API";

impl BitbucketCloudTarget {
    /// Probes the credentials and the mode.
    pub(crate) async fn check_target(&self) -> TargetCheck {
        let started = Instant::now();
        let (ok, error, detail, in_use) = match self.check_mode().await {
            Ok(c) => (true, None, Some(c.detail), c.in_use),
            Err(e) => (false, Some(self.explain(&e)), None, None),
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

    async fn check_mode(&self) -> Result<Checked, CloudError> {
        let found = self.administered().await?;
        match (&self.mode, found) {
            (Mode::Bitbucket, Administered::Bitbucket(_)) => {
                let members = self.client.members().await?.len() as i64;
                let counted = if members == 1 {
                    "1 member".to_string()
                } else {
                    format!("{members} members")
                };
                let seats = match self.settings.seats {
                    Some(limit) => format!("{counted} of {limit} seats"),
                    None => format!("{counted} (set `seats` to the plan's user limit: Cloud's API does not say it)"),
                };
                Ok(Checked {
                    detail: format!("{IN_BITBUCKET}; {seats}"),
                    in_use: Some(members),
                })
            }
            (Mode::Scim(scim), Administered::AdminHub) => scim.check(&self.settings).await,
            (_, found) => Err(self.mismatch(&found)),
        }
    }

    /// A refusal, with what to do about it.
    fn explain(&self, e: &CloudError) -> String {
        let (user, ws, url) = (&self.settings.username, &self.settings.workspace, &self.settings.url);
        let bitbucket = matches!(
            e,
            CloudError::Api {
                service: "Bitbucket Cloud",
                ..
            }
        );
        match e.status() {
            Some(401) if bitbucket => format!(
                "Bitbucket Cloud at {url} refused the credentials of '{user}' (401): check the app password (or the API token, with the account's email as username)"
            ),
            Some(403) if bitbucket => format!(
                "'{user}' may not administer workspace {ws} (403): Roster needs a workspace owner's credentials; an API token needs the scopes read:user:bitbucket, read:workspace:bitbucket and admin:workspace:bitbucket (an app password: account, team and team:write) ({e})"
            ),
            Some(404) if bitbucket => format!(
                "{url} has no workspace {ws} (404 for /1.0/users/{ws}/invitations): check the target's workspace and url"
            ),
            _ => e.to_string(),
        }
    }
}
