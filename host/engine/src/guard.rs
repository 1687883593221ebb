//! The guard stage: a plan that deprovisions more than the threshold is held for approval; a
//! plan that would take the target over its licence is refused, with the seat delta.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::model::{Op, PlannedOp};
use crate::policy::Threshold;
use crate::target::{Disable, TargetState};

/// What the guard decided.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Verdict {
    /// Accounts the plan deprovisions.
    pub deprovisions: usize,
    /// Accounts Roster manages in the target now.
    pub managed_accounts: usize,
    /// Licensed users before and after the plan (as Roster computes them).
    pub licensed_before: usize,
    /// After.
    pub licensed_after: usize,
    /// Seats in use according to the target, and the limit (`None`: unlimited).
    pub seats_in_use: i64,
    /// The limit.
    pub seat_limit: Option<i64>,
    /// Set when the plan must wait for approval.
    pub held: Option<String>,
    /// Set when the plan must not be applied at all.
    pub refused: Option<String>,
}

/// What the guard judges a plan by.
pub struct Judged<'a> {
    /// What the target has now.
    pub target: &'a TargetState,
    /// How the target disables an account (what a deactivation does to licences).
    pub disable: Disable,
    /// Accounts Roster manages in the target now.
    pub managed_accounts: usize,
    /// When to hold.
    pub threshold: &'a Threshold,
    /// What administrators call the target, for the verdict's words.
    pub product: &'a str,
}

/// Judges a plan against the threshold and the licence.
pub fn judge(ops: &[PlannedOp], j: &Judged<'_>) -> Verdict {
    let (target, managed_accounts, threshold, product) = (j.target, j.managed_accounts, j.threshold, j.product);
    let deprovisions = ops.iter().filter(|o| o.op.is_deprovision()).count();
    let before = target.licensed();
    let after = licensed_after(ops, target, j.disable);
    let seat_limit = target.seats.limit;
    let seats_in_use = target.seats.in_use.unwrap_or(before.len() as i64);
    let delta = after.len() as i64 - before.len() as i64;
    let mut v = Verdict {
        deprovisions,
        managed_accounts,
        licensed_before: before.len(),
        licensed_after: after.len(),
        seats_in_use,
        seat_limit,
        held: None,
        refused: None,
    };
    if let Some(limit) = seat_limit
        && delta > 0
        && seats_in_use + delta > limit
    {
        v.refused = Some(format!(
            "the plan would license {delta} more user(s): {seats_in_use} in use + {delta} = {} > {limit} seats; {product} blocks pushes over its licence. Free seats or raise the licence, then run again",
            seats_in_use + delta
        ));
    }
    let percent = if managed_accounts == 0 {
        100.0
    } else {
        deprovisions as f64 * 100.0 / managed_accounts as f64
    };
    if deprovisions > threshold.count as usize || (deprovisions > 0 && percent > threshold.percent) {
        v.held = Some(format!(
            "the plan deprovisions {deprovisions} of {managed_accounts} managed account(s) ({percent:.1} %), over the threshold of {} accounts or {} %; review it with `roster plan show` and approve it with `roster plan approve`",
            threshold.count, threshold.percent
        ));
    }
    v
}

/// Who would be licensed once the plan is applied, by simulating it on the licensing facts.
fn licensed_after(ops: &[PlannedOp], target: &TargetState, disable: Disable) -> BTreeSet<String> {
    let mut members: HashMap<&str, BTreeSet<String>> = target
        .licensing_groups
        .iter()
        .map(|g| {
            (
                g.as_str(),
                target
                    .members
                    .get(g)
                    .map(|m| m.iter().map(|u| u.to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let mut direct: BTreeSet<String> = target.licensed_directly.clone();
    for o in ops {
        match &o.op {
            Op::AddMembers { group, users } => {
                if let Some(m) = members.get_mut(group.as_str()) {
                    m.extend(users.iter().map(|u| u.to_lowercase()));
                }
            }
            Op::RemoveMember { group, user } => {
                if let Some(m) = members.get_mut(group.as_str()) {
                    m.remove(&user.to_lowercase());
                }
            }
            Op::RenameUser { from, to, .. } => {
                let (from, to) = (from.to_lowercase(), to.to_lowercase());
                for m in members.values_mut() {
                    if m.remove(&from) {
                        m.insert(to.clone());
                    }
                }
                if direct.remove(&from) {
                    direct.insert(to);
                }
            }
            Op::Deactivate {
                user,
                groups,
                revoke_permission,
                ..
            } => {
                let u = user.to_lowercase();
                for g in groups {
                    if let Some(m) = members.get_mut(g.as_str()) {
                        m.remove(&u);
                    }
                }
                if *revoke_permission || disable == Disable::Native {
                    direct.remove(&u);
                }
                if disable == Disable::Native {
                    for m in members.values_mut() {
                        m.remove(&u);
                    }
                }
            }
            Op::DeleteUser { user, .. } => {
                let u = user.to_lowercase();
                for m in members.values_mut() {
                    m.remove(&u);
                }
                direct.remove(&u);
            }
            Op::CreateGroup { .. } | Op::CreateUser { .. } | Op::AdoptUser { .. } | Op::UpdateUser { .. } => {}
        }
    }
    let mut out = direct;
    for m in members.into_values() {
        out.extend(m);
    }
    out
}
