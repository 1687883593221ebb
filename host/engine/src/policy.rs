//! A target as configuration describes it (`[target]` in roster.toml, or created through the
//! API): which kind it is, the policy the engine applies to it, and the kind's own settings,
//! which the engine does not read (the kind does; see `serve`'s target registry).

use std::collections::BTreeMap;

use roster_http::BudgetConfig;
use roster_model::DefinedIn;
use serde::Deserialize;

/// What happens to a Roster-managed account whose person left the IdP or was disabled there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Deprovision {
    /// Disable the account (targets without a disable call: remove the memberships and direct
    /// grants that license it); it comes back when the IdP enables it.
    Disable,
    /// Delete the account once its person is gone from every source; a person disabled or
    /// soft-deleted there (who can come back) is only disabled.
    Delete,
    /// Delete, then erase personal data (irreversible); disabled or soft-deleted: disabled.
    DeleteAndErase,
    /// Leave the account as it is (reported only).
    Keep,
}

/// Hold a plan that removes or deactivates more than this.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Accounts deprovisioned in one plan.
    pub count: u32,
    /// Percent of the accounts Roster manages.
    pub percent: f64,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            count: 50,
            percent: 10.0,
        }
    }
}

impl Threshold {
    /// No threshold: approvals and single-user syncs (one person) are never held.
    pub const NONE: Threshold = Threshold {
        count: u32::MAX,
        percent: 100.0,
    };
}

/// The kind of target a `[target]` table describes when it does not say.
pub const DEFAULT_KIND: &str = "bitbucket-dc";

/// A target and its policy.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct TargetConfig {
    /// roster.toml or the API.
    #[serde(skip)]
    pub origin: DefinedIn,
    /// Stable id.
    #[serde(default = "default_target")]
    pub id: String,
    /// Which kind of system it is (`bitbucket-dc`).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Deprovisioning policy.
    #[serde(default = "default_deprovision")]
    pub deprovision: Deprovision,
    /// Deletion/deactivation threshold.
    #[serde(default)]
    pub threshold: Threshold,
    /// Accounts never changed (besides Roster's own and the target's administrators).
    #[serde(default)]
    pub protected_users: Vec<String>,
    /// Groups never changed (besides the target's administrators' groups).
    #[serde(default)]
    pub protected_groups: Vec<String>,
    /// Take over existing accounts whose name matches an IdP user (else: report a collision
    /// and leave them alone).
    #[serde(default)]
    pub adopt_existing_users: bool,
    /// When disabling, keep memberships of groups Roster does not manage unless they license.
    #[serde(default = "yes")]
    pub keep_unmanaged_memberships: bool,
    /// Groups every active synced user is put in (e.g. the group holding LICENSED_USER).
    #[serde(default)]
    pub default_groups: Vec<String>,
    /// Groups a user is put in when Roster creates the account, and never managed afterwards
    /// (a starting point people may leave). They must exist in the target.
    #[serde(default)]
    pub new_user_groups: Vec<String>,
    /// Which source wins each attribute (`email`, `display_name`, `active`), in order; others
    /// follow the directory order.
    #[serde(default)]
    pub attribute_priority: BTreeMap<String, Vec<String>>,
    /// Writes in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Users per bulk add (targets that add many members per call).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Request budget towards the target.
    #[serde(default = "default_target_budget")]
    pub budget: BudgetConfig,
    /// Retries of a throttled or failed call.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Seconds one request to the target may take before it counts as failed (and is retried).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// The kind's own settings (URL, account, credentials), read and checked by the kind.
    #[serde(flatten)]
    pub connection: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}
fn default_target() -> String {
    "bitbucket".into()
}
fn default_kind() -> String {
    DEFAULT_KIND.into()
}
fn default_deprovision() -> Deprovision {
    Deprovision::Disable
}
fn default_concurrency() -> usize {
    8
}
fn default_batch() -> usize {
    500
}
fn default_retries() -> u32 {
    6
}
fn default_request_timeout() -> u64 {
    60
}
fn default_target_budget() -> BudgetConfig {
    BudgetConfig {
        per_second: 200.0,
        burst: 200,
    }
}

impl TargetConfig {
    /// Checks the policy's fields; every message names the field. The kind checks its own.
    pub fn validate_policy(&self) -> Result<(), String> {
        if !(0.0..=100.0).contains(&self.threshold.percent) {
            return Err(format!(
                "target threshold.percent {} must be between 0 and 100",
                self.threshold.percent
            ));
        }
        if self.concurrency == 0 || self.batch_size == 0 {
            return Err("target concurrency and batch_size must be at least 1".into());
        }
        if self.request_timeout_secs == 0 {
            return Err("target request_timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}
