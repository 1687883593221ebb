//! Drift: a change made by hand in the target to something Roster manages — a membership of a
//! managed group added or removed, a managed account renamed, a managed group deleted. The read
//! is compared with what Roster last left there (the baseline the store keeps, updated by every
//! applied run from the operations it did); what differs, and differs from what the sources
//! want, is drift. The target's policy says what becomes of it: reverted (the plan undoes it,
//! under the guard like any other change), adopted (kept until the sources agree with it) or
//! only reported.

use std::collections::BTreeSet;

use roster_model::Desired;
use roster_store::{Adopted, Baseline, Identity, IdentityState};
use serde::{Deserialize, Serialize};

use crate::model::{Op, PlannedOp, Skipped};
use crate::plan::Protected;
use crate::target::{Rename, TargetState};

/// What becomes of a change made by hand to something Roster manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftPolicy {
    /// The plan undoes it (removals counted by the guard like any other).
    #[default]
    Revert,
    /// Roster keeps it: the operations that would undo it are withheld until the sources agree.
    Adopt,
    /// It is reported on every run until it is resolved; nothing is written for it.
    Report,
}

/// What was changed by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftChange {
    /// An account was added to a managed group.
    MemberAdded,
    /// An account was removed from a managed group.
    MemberRemoved,
    /// A managed group was deleted.
    GroupDeleted,
    /// A managed account was renamed.
    AccountRenamed,
}

/// What this run did about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftHandling {
    /// The plan undoes it.
    Reverted,
    /// Kept: the operations that would undo it are withheld until the sources agree.
    Adopted,
    /// Only reported.
    Reported,
}

/// One change made by hand, as the run saw it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Drift {
    /// What changed.
    pub change: DriftChange,
    /// The group concerned, if any.
    pub group: Option<String>,
    /// The account concerned (for a rename, the name Roster gave it).
    pub account: Option<String>,
    /// A renamed account's name now.
    pub renamed_to: Option<String>,
    /// What this run did about it.
    pub handled: DriftHandling,
    /// Who made the change, when the target says (`None`: it does not).
    pub changed_by: Option<String>,
    /// When, when the target says (RFC 3339, UTC; kept as unix ms).
    #[serde(default, with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub changed_at: Option<i64>,
    /// In words, with what was done about it.
    pub detail: String,
}

impl Drift {
    /// The metric label of its change.
    pub fn change_name(&self) -> &'static str {
        match self.change {
            DriftChange::MemberAdded => "member-added",
            DriftChange::MemberRemoved => "member-removed",
            DriftChange::GroupDeleted => "group-deleted",
            DriftChange::AccountRenamed => "account-renamed",
        }
    }

    /// The metric label of its handling.
    pub fn handling_name(&self) -> &'static str {
        match self.handled {
            DriftHandling::Reverted => "reverted",
            DriftHandling::Adopted => "adopted",
            DriftHandling::Reported => "reported",
        }
    }
}

/// What the comparison of a read with the baseline found, before the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    change: DriftChange,
    group: Option<String>,
    /// Lower-case.
    account: Option<String>,
    /// The account's name now (a rename), as the target spells it.
    renamed_to: Option<String>,
}

/// Compares the target's managed groups and accounts with what Roster last left there. Only what
/// also differs from the sources counts: a hand change the sources asked for anyway is none.
pub fn detect(
    base: &Baseline,
    target: &TargetState,
    desired: &Desired,
    identities: &[Identity],
    protected: &Protected,
) -> Vec<Found> {
    let mut found = Vec::new();
    let owned: BTreeSet<&str> = identities
        .iter()
        .filter(|i| i.state != IdentityState::Deleted)
        .map(|i| i.username.as_str())
        .collect();
    let in_base: BTreeSet<&str> = base.values().flatten().map(String::as_str).collect();
    // Renames: a managed account Roster left in its groups is gone, and an account Roster does
    // not own carries its person's email — the same account under a name given by hand.
    let mut renamed_to: BTreeSet<String> = BTreeSet::new();
    for i in identities.iter().filter(|i| i.state == IdentityState::Active) {
        if target.users.contains_key(&i.username) || !in_base.contains(i.username.as_str()) {
            continue;
        }
        let Some(email) = desired
            .persons
            .values()
            .find(|p| p.records.iter().any(|(s, e)| *s == i.source && *e == i.ext_id))
            .and_then(|p| p.email.as_deref())
            .filter(|e| !e.is_empty())
        else {
            continue;
        };
        let now = target.users.iter().find(|(k, a)| {
            !owned.contains(k.as_str()) && a.email.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(email))
        });
        if let Some((key, account)) = now {
            renamed_to.insert(key.clone());
            found.push(Found {
                change: DriftChange::AccountRenamed,
                group: None,
                account: Some(i.username.clone()),
                renamed_to: Some(account.name.clone()),
            });
        }
    }
    for (group, was) in base {
        if protected.group(group) {
            continue;
        }
        let wanted = desired.groups.get(group);
        if !target.groups.contains(group) {
            if wanted.is_some() {
                found.push(Found {
                    change: DriftChange::GroupDeleted,
                    group: Some(group.clone()),
                    account: None,
                    renamed_to: None,
                });
            }
            continue;
        }
        // A group whose members were not read says nothing about them.
        let Some(now) = target.members.get(group) else { continue };
        let wants = |u: &str| wanted.is_some_and(|m| m.contains(u));
        for u in now.iter().map(|u| &**u) {
            if !was.contains(u) && !wants(u) && !protected.user(u) && !renamed_to.contains(u) {
                found.push(Found {
                    change: DriftChange::MemberAdded,
                    group: Some(group.clone()),
                    account: Some(u.to_string()),
                    renamed_to: None,
                });
            }
        }
        for u in was {
            if !now.contains(u.as_str()) && wants(u) && target.users.contains_key(u) && !protected.user(u) {
                found.push(Found {
                    change: DriftChange::MemberRemoved,
                    group: Some(group.clone()),
                    account: Some(u.clone()),
                    renamed_to: None,
                });
            }
        }
    }
    found
}

/// What handling the drift came to, for the store.
#[derive(Debug, Default)]
pub struct Handled {
    /// The drift, each with what was done.
    pub drift: Vec<Drift>,
    /// Hand changes to adopt: `(group, member, present)`.
    pub adopt: Vec<(String, Option<String>, bool)>,
    /// Adopted changes the sources now agree with.
    pub forget: Vec<(String, Option<String>)>,
    /// The baseline entries to keep as they were (reported drift is reported again).
    pub keep_as_was: Vec<Found>,
}

/// Shapes the plan to the drift found and the changes adopted earlier, per `policy`. `rename` is
/// whether the target can rename (a hand rename is reverted by renaming back).
#[allow(clippy::too_many_arguments)]
pub fn handle(
    found: Vec<Found>,
    policy: DriftPolicy,
    rename: Rename,
    adopted: &[Adopted],
    desired: &Desired,
    target: &TargetState,
    ops: &mut Vec<PlannedOp>,
    skipped: &mut Vec<Skipped>,
    product: &str,
) -> Handled {
    let mut h = Handled::default();
    for a in adopted {
        let wanted = match &a.member {
            Some(m) => desired.groups.get(&a.group).is_some_and(|g| g.contains(m.as_str())),
            None => desired.groups.contains_key(&a.group),
        };
        if wanted == a.present {
            h.forget.push((a.group.clone(), a.member.clone()));
            continue;
        }
        let change = match (&a.member, a.present) {
            (None, _) => DriftChange::GroupDeleted,
            (Some(_), true) => DriftChange::MemberAdded,
            (Some(_), false) => DriftChange::MemberRemoved,
        };
        withhold(ops, change, &a.group, a.member.as_deref());
        skipped.push(Skipped {
            subject: a.member.clone().unwrap_or_else(|| a.group.clone()),
            why: format!(
                "{} by hand in {product} and adopted (drift = \"adopt\"): kept until the sources agree",
                words(change, &a.group)
            ),
        });
    }
    let unknown = format!("who and when are not known: {product} reports no audit trail Roster reads");
    for f in found {
        let group = f.group.clone().unwrap_or_default();
        let account = f.account.clone().unwrap_or_default();
        let what = match f.change {
            DriftChange::AccountRenamed => format!(
                "{account} was renamed to {} by hand in {product}",
                f.renamed_to.as_deref().unwrap_or("?")
            ),
            DriftChange::GroupDeleted => format!("{group} was deleted by hand in {product}"),
            change => format!("{account} was {} by hand in {product}", words(change, &group)),
        };
        let mut handled = match policy {
            DriftPolicy::Revert => DriftHandling::Reverted,
            DriftPolicy::Adopt => DriftHandling::Adopted,
            DriftPolicy::Report => DriftHandling::Reported,
        };
        let mut note = String::new();
        if f.change == DriftChange::AccountRenamed && handled == DriftHandling::Adopted {
            // The name comes from the sources: a relinked account would be renamed back by the
            // next run, so adopting a rename could only flip-flop.
            handled = DriftHandling::Reported;
            note = "; a rename cannot be adopted (the name comes from the sources): rename it back in the target or in the source".into();
        }
        if f.change == DriftChange::AccountRenamed
            && handled == DriftHandling::Reverted
            && rename == Rename::Unsupported
        {
            handled = DriftHandling::Reported;
            note = format!("; {product} cannot rename accounts, so Roster cannot rename it back");
        }
        match handled {
            DriftHandling::Reverted => revert(&f, ops, target, &what),
            DriftHandling::Adopted | DriftHandling::Reported => {
                withhold(ops, f.change, &group, f.account.as_deref());
                if handled == DriftHandling::Adopted {
                    let present = f.change == DriftChange::MemberAdded;
                    let member = (f.change != DriftChange::GroupDeleted).then(|| account.clone());
                    h.adopt.push((group.clone(), member, present));
                } else {
                    h.keep_as_was.push(f.clone());
                }
            }
        }
        let done = match handled {
            DriftHandling::Reverted => "reverted by this plan (drift = \"revert\")",
            DriftHandling::Adopted => "adopted: kept until the sources agree (drift = \"adopt\")",
            DriftHandling::Reported => "reported only; nothing is written for it",
        };
        h.drift.push(Drift {
            change: f.change,
            group: f.group,
            account: f.account,
            renamed_to: f.renamed_to,
            handled,
            changed_by: None,
            changed_at: None,
            detail: format!("{what}; {done}{note}; {unknown}"),
        });
    }
    ops.sort_by_key(|o| o.op.stage());
    h
}

fn words(change: DriftChange, group: &str) -> String {
    match change {
        DriftChange::MemberAdded => format!("added to {group}"),
        DriftChange::MemberRemoved => format!("removed from {group}"),
        DriftChange::GroupDeleted => format!("{group} deleted"),
        DriftChange::AccountRenamed => "renamed".into(),
    }
}

/// Makes the plan undo `f`: the ordinary diff already does for most (the reason then says so);
/// a hand-added account Roster does not own, and a rename, need an operation of their own.
fn revert(f: &Found, ops: &mut Vec<PlannedOp>, target: &TargetState, what: &str) {
    let group = f.group.as_deref().unwrap_or_default();
    let account = f.account.as_deref().unwrap_or_default();
    let suffix = format!("; reverts a change made by hand: {what}");
    match f.change {
        DriftChange::MemberAdded => {
            if let Some(o) = ops.iter_mut().find(
                |o| matches!(&o.op, Op::RemoveMember { group: g, user } if g == group && user.eq_ignore_ascii_case(account)),
            ) {
                o.reason.push_str(&suffix);
            } else {
                ops.push(PlannedOp {
                    op: Op::RemoveMember {
                        group: group.to_string(),
                        user: target.users.get(account).map_or_else(|| account.to_string(), |a| a.name.clone()),
                    },
                    reason: format!("not a member of {group} in the sources{suffix}"),
                });
            }
        }
        DriftChange::MemberRemoved => {
            for o in ops.iter_mut() {
                if let Op::AddMembers { group: g, users } = &o.op
                    && g == group
                    && users.iter().any(|u| u.eq_ignore_ascii_case(account))
                {
                    o.reason.push_str(&suffix);
                }
            }
        }
        DriftChange::GroupDeleted => {
            for o in ops.iter_mut() {
                if matches!(&o.op, Op::CreateGroup { group: g } if g == group) {
                    o.reason.push_str(&suffix);
                }
            }
        }
        DriftChange::AccountRenamed => {
            let Some(now) = f.renamed_to.as_deref() else { return };
            let now_lc = now.to_lowercase();
            // The plan re-creates the account it found missing: rename the hand-renamed one back
            // instead, and leave it the memberships it kept.
            for o in ops.iter_mut() {
                if let Op::CreateUser { user, records, .. } = &o.op
                    && user.eq_ignore_ascii_case(account)
                {
                    o.op = Op::RenameUser {
                        from: now.to_string(),
                        to: user.clone(),
                        records: records.clone(),
                    };
                    o.reason = format!("renamed back{suffix}");
                }
            }
            for o in ops.iter_mut() {
                if let Op::AddMembers { group, users } = &mut o.op
                    && target.members.get(group.as_str()).is_some_and(|m| m.contains(now_lc.as_str()))
                {
                    users.retain(|u| !u.eq_ignore_ascii_case(account));
                }
            }
            ops.retain(|o| !matches!(&o.op, Op::AddMembers { users, .. } if users.is_empty()));
        }
    }
}

/// Takes out of the plan the operations that would undo a hand change.
fn withhold(ops: &mut Vec<PlannedOp>, change: DriftChange, group: &str, account: Option<&str>) {
    let account = account.unwrap_or_default();
    match change {
        DriftChange::MemberAdded => ops.retain(
            |o| !matches!(&o.op, Op::RemoveMember { group: g, user } if g == group && user.eq_ignore_ascii_case(account)),
        ),
        DriftChange::MemberRemoved => {
            for o in ops.iter_mut() {
                if let Op::AddMembers { group: g, users } = &mut o.op
                    && g == group
                {
                    users.retain(|u| !u.eq_ignore_ascii_case(account));
                }
            }
            ops.retain(|o| !matches!(&o.op, Op::AddMembers { users, .. } if users.is_empty()));
        }
        DriftChange::GroupDeleted => ops.retain(|o| {
            !matches!(&o.op, Op::CreateGroup { group: g } | Op::AddMembers { group: g, .. } if g == group)
        }),
        DriftChange::AccountRenamed => ops.retain(|o| match &o.op {
            Op::CreateUser { user, .. } => !user.eq_ignore_ascii_case(account),
            _ => true,
        }),
    }
    if change == DriftChange::AccountRenamed {
        for o in ops.iter_mut() {
            if let Op::AddMembers { users, .. } = &mut o.op {
                users.retain(|u| !u.eq_ignore_ascii_case(account));
            }
        }
        ops.retain(|o| !matches!(&o.op, Op::AddMembers { users, .. } if users.is_empty()));
    }
}

/// The baseline a run leaves: `start` (the managed groups as read, or the stored baseline) with
/// the operations done applied, and reported drift kept as it was so it is reported again.
pub fn next_baseline(
    start: Baseline,
    old: Option<&Baseline>,
    keep_as_was: &[Found],
    ops: &[PlannedOp],
    done: &[bool],
) -> Baseline {
    let mut base = start;
    if let Some(old) = old {
        for f in keep_as_was {
            let Some(group) = &f.group else { continue };
            match f.change {
                DriftChange::GroupDeleted => {
                    if let Some(was) = old.get(group) {
                        base.insert(group.clone(), was.clone());
                    }
                }
                DriftChange::MemberAdded => {
                    if let (Some(m), Some(a)) = (base.get_mut(group), &f.account) {
                        m.remove(a);
                    }
                }
                DriftChange::MemberRemoved => {
                    if let (Some(m), Some(a)) = (base.get_mut(group), &f.account) {
                        m.insert(a.clone());
                    }
                }
                DriftChange::AccountRenamed => {}
            }
        }
    }
    for (o, _) in ops.iter().zip(done).filter(|(_, d)| **d) {
        match &o.op {
            Op::CreateGroup { group } => {
                base.entry(group.clone()).or_default();
            }
            Op::AddMembers { group, users } => {
                if let Some(m) = base.get_mut(group) {
                    m.extend(users.iter().map(|u| u.to_lowercase()));
                }
            }
            Op::RemoveMember { group, user } => {
                if let Some(m) = base.get_mut(group) {
                    m.remove(&user.to_lowercase());
                }
            }
            Op::RenameUser { from, to, .. } => {
                let (from, to) = (from.to_lowercase(), to.to_lowercase());
                for m in base.values_mut() {
                    if m.remove(&from) {
                        m.insert(to.clone());
                    }
                }
            }
            Op::Deactivate {
                user,
                groups,
                leave_other_groups,
                ..
            } => {
                let user = user.to_lowercase();
                for (g, m) in base.iter_mut() {
                    let leaves =
                        groups.contains(g) || leave_other_groups.as_ref().is_some_and(|keep| !keep.contains(g));
                    if leaves {
                        m.remove(&user);
                    }
                }
            }
            Op::DeleteUser { user, .. } => {
                let user = user.to_lowercase();
                for m in base.values_mut() {
                    m.remove(&user);
                }
            }
            Op::DeleteGroup { group } => {
                base.remove(group);
            }
            Op::CreateUser { .. } | Op::AdoptUser { .. } | Op::UpdateUser { .. } => {}
        }
    }
    base
}

/// The managed groups as read: the start of the next baseline.
pub fn as_read(target: &TargetState, managed: &BTreeSet<String>) -> Baseline {
    managed
        .iter()
        .filter(|g| target.groups.contains(*g))
        .map(|g| {
            let members = target
                .members
                .get(g)
                .map(|m| m.iter().map(|u| u.to_string()).collect())
                .unwrap_or_default();
            (g.clone(), members)
        })
        .collect()
}
