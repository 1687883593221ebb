//! Mode one's read: the workspace's members, groups, owners and pending invitations, in the
//! engine's terms, accounts keyed by Roster's name where the store knows it.

use std::collections::BTreeSet;

use roster_engine::{ReadScope, TargetState};

use crate::error::CloudError;
use crate::target::{BitbucketCloudTarget, Mode};

impl BitbucketCloudTarget {
    /// Everything the plan needs.
    pub(crate) async fn read_state(&self, scope: &ReadScope<'_>) -> Result<TargetState, CloudError> {
        match &self.mode {
            Mode::Scim(scim) => scim.read(scope, &self.settings).await,
            Mode::Bitbucket => Err(CloudError::Refused("not yet".into())),
        }
    }

    /// The same, for `names`.
    pub(crate) async fn read_names(
        &self,
        names: &BTreeSet<String>,
        groups: &BTreeSet<String>,
    ) -> Result<TargetState, CloudError> {
        match &self.mode {
            Mode::Scim(scim) => scim.read_accounts(names, groups, &self.settings).await,
            Mode::Bitbucket => Err(CloudError::Refused("not yet".into())),
        }
    }
}
