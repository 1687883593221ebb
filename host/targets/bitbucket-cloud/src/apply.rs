//! Mode one's operations.

use roster_engine::Op;

use crate::error::CloudError;
use crate::target::BitbucketCloudTarget;

impl BitbucketCloudTarget {
    /// Carries out one operation in a workspace administered in Bitbucket.
    pub(crate) async fn execute(&self, _op: &Op) -> Result<Option<String>, CloudError> {
        Err(CloudError::Refused("not yet".into()))
    }
}
