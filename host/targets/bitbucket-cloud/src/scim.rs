//! Mode two: a workspace administered at admin.atlassian.com, through Atlassian's
//! user-provisioning SCIM API. (H3 writes this file; what is here is the seam `target.rs`
//! calls, so the crate builds before it lands.)

use std::collections::BTreeSet;

use roster_engine::{
    Accounts, AddMembers, Capabilities, Disable, Fields, Groups, Op, Profiles, ReadScope, Rename, TargetState,
};

use crate::check::Checked;
use crate::error::CloudError;
use crate::http::Api;
use crate::settings::{ScimSettings, Settings};

/// The SCIM directory of the workspace's organisation.
pub(crate) struct Scim {
    api: Api,
    directory_id: String,
}

impl Scim {
    /// The directory `settings` names, reached through `api` (its base URL and bearer key).
    pub(crate) fn new(settings: &ScimSettings, api: Api) -> Scim {
        Scim {
            api,
            directory_id: settings.directory_id.clone(),
        }
    }

    /// The API it calls (for the run's call counts).
    pub(crate) fn api(&self) -> &Api {
        &self.api
    }

    /// What the target can do in this mode.
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities {
            rename: Rename::Unsupported,
            add_members: AddMembers::Bulk,
            disable: Disable::Native,
            fields: Fields {
                max_chars: 255,
                username_forbids: "",
            },
            groups: Groups::Keep,
            accounts: Accounts::Create,
            profiles: Profiles::Managed,
        }
    }

    fn not_yet(&self) -> CloudError {
        CloudError::Refused(format!(
            "SCIM directory {}: Roster does not manage workspaces administered at admin.atlassian.com yet",
            self.directory_id
        ))
    }

    /// The directory's users and groups in the engine's terms.
    pub(crate) async fn read(&self, _scope: &ReadScope<'_>, _settings: &Settings) -> Result<TargetState, CloudError> {
        Err(self.not_yet())
    }

    /// The same, as far as `names` are concerned.
    pub(crate) async fn read_accounts(
        &self,
        _names: &BTreeSet<String>,
        _groups: &BTreeSet<String>,
        _settings: &Settings,
    ) -> Result<TargetState, CloudError> {
        Err(self.not_yet())
    }

    /// Carries out one operation.
    pub(crate) async fn apply(&self, _op: &Op) -> Result<Option<String>, CloudError> {
        Err(self.not_yet())
    }

    /// Probes the directory key.
    pub(crate) async fn check(&self, _settings: &Settings) -> Result<Checked, CloudError> {
        Err(self.not_yet())
    }
}
