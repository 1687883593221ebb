//! A target as configuration describes it (`[target]` in roster.toml, or created through the
//! API): which kind it is, the policy the engine applies to it, and the kind's own settings,
//! which the engine does not read (the kind does; see `serve`'s target registry).

use std::collections::BTreeMap;

use roster_http::{BudgetConfig, Concurrency};
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

/// When to hold a plan for approval: every kind of change an administrator would call
/// destructive, per plan and over a rolling window of applied runs. A rule trips when its
/// count is over its limit; the held plan names each rule that tripped.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// People deprovisioned (disabled or deleted) in one plan.
    #[serde(default = "default_deprovision_count")]
    pub count: u32,
    /// Or this percent of the accounts Roster manages.
    #[serde(default = "default_deprovision_percent")]
    pub percent: f64,
    /// Distinct people losing at least one group membership (deprovisioning's included).
    #[serde(default = "default_people_losing_memberships")]
    pub people_losing_memberships: Limit,
    /// Memberships removed in one plan, in total (deprovisioning's included).
    #[serde(default = "default_memberships_removed")]
    pub memberships_removed: u32,
    /// Members one group loses, against its current members.
    #[serde(default)]
    pub group_members_lost: GroupLimit,
    /// Accounts renamed in one plan.
    #[serde(default = "default_renames")]
    pub renames: Limit,
    /// Accounts whose email address changes in one plan.
    #[serde(default = "default_email_changes")]
    pub email_changes: Limit,
    /// Totals of the runs applied over a period, this plan included.
    #[serde(default)]
    pub window: Window,
}

/// A limit on people: trips over `count`, or over `percent` of the accounts Roster manages
/// once more than `floor` are affected (so a small directory is not held for a handful).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// People.
    pub count: u32,
    /// Percent of the accounts Roster manages.
    pub percent: f64,
    /// Never held by the percent for this many or fewer.
    pub floor: u32,
}

/// A limit on what one group loses: trips when it loses more than `percent` of its current
/// members and more than `floor` of them (so a tiny group is not held for losing one).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupLimit {
    /// Percent of the group's current members.
    pub percent: f64,
    /// Never held for this many members or fewer.
    pub floor: u32,
}

impl Default for GroupLimit {
    fn default() -> Self {
        GroupLimit {
            percent: 50.0,
            floor: 10,
        }
    }
}

/// The rolling window: what the runs applied over the last `days` took away without an
/// approval, plus this plan, against these limits. An approved plan starts the window afresh
/// (an administrator saw what came before it), so approving a held plan does not hold the next.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The period, in days.
    #[serde(default = "default_window_days")]
    pub days: u32,
    /// People deprovisioned over the period.
    #[serde(default = "default_window_deprovisions")]
    pub deprovisions: u32,
    /// Memberships removed over the period.
    #[serde(default = "default_window_memberships_removed")]
    pub memberships_removed: u32,
    /// Accounts renamed over the period.
    #[serde(default = "default_window_renames")]
    pub renames: u32,
    /// Email addresses changed over the period.
    #[serde(default = "default_window_email_changes")]
    pub email_changes: u32,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            days: default_window_days(),
            deprovisions: default_window_deprovisions(),
            memberships_removed: default_window_memberships_removed(),
            renames: default_window_renames(),
            email_changes: default_window_email_changes(),
        }
    }
}

fn default_deprovision_count() -> u32 {
    50
}
fn default_deprovision_percent() -> f64 {
    10.0
}
fn default_people_losing_memberships() -> Limit {
    Limit {
        count: 100,
        percent: 10.0,
        floor: 5,
    }
}
fn default_memberships_removed() -> u32 {
    1000
}
fn default_renames() -> Limit {
    Limit {
        count: 50,
        percent: 10.0,
        floor: 5,
    }
}
fn default_email_changes() -> Limit {
    Limit {
        count: 50,
        percent: 10.0,
        floor: 5,
    }
}
fn default_window_days() -> u32 {
    7
}
fn default_window_deprovisions() -> u32 {
    150
}
fn default_window_memberships_removed() -> u32 {
    3000
}
fn default_window_renames() -> u32 {
    150
}
fn default_window_email_changes() -> u32 {
    150
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            count: default_deprovision_count(),
            percent: default_deprovision_percent(),
            people_losing_memberships: default_people_losing_memberships(),
            memberships_removed: default_memberships_removed(),
            group_members_lost: GroupLimit::default(),
            renames: default_renames(),
            email_changes: default_email_changes(),
            window: Window::default(),
        }
    }
}

impl Threshold {
    /// Checks every value; each message names the field and its range.
    pub fn validate(&self) -> Result<(), String> {
        let percents = [
            ("threshold.percent", self.percent),
            (
                "threshold.people_losing_memberships.percent",
                self.people_losing_memberships.percent,
            ),
            ("threshold.group_members_lost.percent", self.group_members_lost.percent),
            ("threshold.renames.percent", self.renames.percent),
            ("threshold.email_changes.percent", self.email_changes.percent),
        ];
        for (field, value) in percents {
            if !(0.0..=100.0).contains(&value) {
                return Err(format!("target {field} {value} must be between 0 and 100"));
            }
        }
        if !(1..=366).contains(&self.window.days) {
            return Err(format!(
                "target threshold.window.days {} must be between 1 and 366",
                self.window.days
            ));
        }
        Ok(())
    }
}

/// Deprovisioning of accounts nobody signs in to: an account Roster manages whose person has not
/// signed in to the target for `days` is deprovisioned like a leaver — disabled (or kept, under
/// `deprovision = "keep"`), never deleted, since the person is still in the sources — under the
/// same guard; it comes back with its groups once they sign in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inactive {
    /// Days without a sign-in (from the target's last authentication time).
    pub days: u32,
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
    /// When a plan is held for approval.
    #[serde(default)]
    pub threshold: Threshold,
    /// What becomes of a change made by hand to a managed group or account (drift).
    #[serde(default)]
    pub drift: crate::drift::DriftPolicy,
    /// Deprovision accounts with no sign-in to the target for this long (off when absent).
    #[serde(default)]
    pub inactive: Option<Inactive>,
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
    /// Requests in flight at once, reads and writes: a number, or found at run time
    /// (`"adaptive"`, `{ adaptive = { max = 32 } }`).
    #[serde(default)]
    pub concurrency: Concurrency,
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
    /// For kinds whose client has no adaptive limit: refuses `concurrency = "adaptive"`,
    /// naming the target and what to write instead.
    pub fn require_fixed_concurrency(&self) -> Result<(), String> {
        match self.concurrency {
            Concurrency::Fixed(_) => Ok(()),
            Concurrency::Adaptive(_) => Err(format!(
                "target '{}': an adaptive concurrency is for bitbucket-dc targets; a {} target takes a number (concurrency = 8)",
                self.id, self.kind
            )),
        }
    }

    /// Checks the policy's fields; every message names the field. The kind checks its own.
    pub fn validate_policy(&self) -> Result<(), String> {
        self.threshold.validate()?;
        self.concurrency.validate("target concurrency")?;
        if let Some(i) = self.inactive
            && !(1..=3650).contains(&i.days)
        {
            return Err(format!("target inactive.days {} must be between 1 and 3650", i.days));
        }
        if self.batch_size == 0 {
            return Err("target batch_size must be at least 1".into());
        }
        if self.request_timeout_secs == 0 {
            return Err("target request_timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(json: serde_json::Value) -> Result<Threshold, String> {
        let t: Threshold = serde_json::from_value(json).map_err(|e| e.to_string())?;
        t.validate()?;
        Ok(t)
    }

    #[test]
    fn the_old_form_still_reads_and_the_rest_takes_its_defaults() {
        let t = threshold(serde_json::json!({"count": 5, "percent": 50})).unwrap();
        assert_eq!((t.count, t.percent), (5, 50.0));
        assert_eq!(t.group_members_lost, GroupLimit::default());
        assert_eq!(t.window, Window::default());
        let t =
            threshold(serde_json::json!({"renames": {"count": 10, "percent": 5, "floor": 2}, "window": {"days": 30}}))
                .unwrap();
        assert_eq!(
            (t.count, t.renames.count, t.window.days, t.window.deprovisions),
            (50, 10, 30, 150)
        );
    }

    #[test]
    fn an_adaptive_concurrency_is_refused_where_the_kind_has_no_limiter() {
        let config = |c: serde_json::Value| -> TargetConfig {
            serde_json::from_value(serde_json::json!({"id": "cloud", "kind": "bitbucket-cloud", "concurrency": c}))
                .unwrap()
        };
        assert!(config(serde_json::json!(4)).require_fixed_concurrency().is_ok());
        let e = config(serde_json::json!("adaptive"))
            .require_fixed_concurrency()
            .unwrap_err();
        assert!(e.contains("target 'cloud'") && e.contains("concurrency = 8"), "{e}");
        let e = config(serde_json::json!(0)).validate_policy().unwrap_err();
        assert!(e.contains("target concurrency 0"), "{e}");
    }

    #[test]
    fn mistakes_name_the_field() {
        let err = threshold(serde_json::json!({"renamez": 3})).unwrap_err();
        assert!(err.contains("unknown field `renamez`"), "{err}");
        let err = threshold(serde_json::json!({"renames": {"count": 3}})).unwrap_err();
        assert!(err.contains("missing field `percent`"), "{err}");
        let err = threshold(serde_json::json!({"group_members_lost": {"percent": 150, "floor": 1}})).unwrap_err();
        assert_eq!(
            err,
            "target threshold.group_members_lost.percent 150 must be between 0 and 100"
        );
        let err = threshold(serde_json::json!({"window": {"days": 0}})).unwrap_err();
        assert_eq!(err, "target threshold.window.days 0 must be between 1 and 366");
        let err = threshold(serde_json::json!({"memberships_removed": -1})).unwrap_err();
        assert!(err.contains("invalid value: integer `-1`"), "{err}");
    }
}
