//! The guard stage: a plan that deprovisions more than the threshold is held for approval; a
//! plan that would take Bitbucket over its licence is refused, with the seat delta.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::model::{Op, PlannedOp, TargetState};
use crate::config::Threshold;

/// What the guard decided.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// Accounts the plan deprovisions.
    pub deprovisions: usize,
    /// Accounts Roster manages in the target now.
    pub managed_accounts: usize,
    /// Licensed users before and after the plan (as Roster computes them).
    pub licensed_before: usize,
    /// After.
    pub licensed_after: usize,
    /// Seats in use according to Bitbucket, and the limit (`None`: unlimited).
    pub seats_in_use: i64,
    /// The limit.
    pub seat_limit: Option<i64>,
    /// Set when the plan must wait for approval.
    pub held: Option<String>,
    /// Set when the plan must not be applied at all.
    pub refused: Option<String>,
}

/// Judges a plan against the threshold and the licence.
pub fn judge(ops: &[PlannedOp], target: &TargetState, managed_accounts: usize, threshold: &Threshold) -> Verdict {
    let deprovisions = ops.iter().filter(|o| o.op.is_deprovision()).count();
    let before = target.licensed();
    let after = licensed_after(ops, target);
    let seat_limit = target.license.seats();
    let seats_in_use = target
        .license
        .status
        .as_ref()
        .map_or(before.len() as i64, |s| s.current_number_of_users);
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
            "the plan would license {delta} more user(s): {seats_in_use} in use + {delta} = {} > {limit} seats; Bitbucket blocks pushes over its licence. Free seats or raise the licence, then run again",
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
fn licensed_after(ops: &[PlannedOp], target: &TargetState) -> BTreeSet<String> {
    let mut members: HashMap<&str, BTreeSet<String>> = target
        .group_perms
        .keys()
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
    let mut direct: BTreeSet<String> = target.user_perms.keys().cloned().collect();
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
                if *revoke_permission {
                    direct.remove(&u);
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
