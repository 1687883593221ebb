//! The guard stage: a plan that takes away more than the threshold allows — people
//! deprovisioned, memberships removed (per person, per group, in total), renames, email
//! changes, in this plan or over the rolling window — is held for approval, naming each rule
//! that tripped; a plan that would take the target over its licence is refused, with the seat
//! delta.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use roster_store::{Destroyed, WindowTotals};
use serde::Serialize;

use crate::model::{Op, PlannedOp};
use crate::policy::{Limit, Threshold};
use crate::target::{Accounts, Disable, TargetState};

/// What the guard decided.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Verdict {
    /// Accounts the plan deprovisions.
    pub deprovisions: usize,
    /// Distinct people who lose at least one group membership (deprovisioning's included).
    #[serde(default)]
    pub people_losing_memberships: usize,
    /// Group memberships the plan removes (deprovisioning's included).
    #[serde(default)]
    pub memberships_removed: usize,
    /// Accounts the plan renames.
    #[serde(default)]
    pub renames: usize,
    /// Accounts whose email address the plan changes.
    #[serde(default)]
    pub email_changes: usize,
    /// What earlier runs took away within the rolling window (none: the window was not
    /// consulted, as when an approved plan is applied).
    #[serde(default)]
    pub window: Option<WindowView>,
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
    /// Every licence the plan was judged against, each with its arithmetic: the target's own
    /// (the fields above) when it licenses anything or is the only one, then each application
    /// that reads a directory the target serves.
    #[serde(default)]
    pub licences: Vec<LicenceView>,
    /// The threshold's rules the plan trips, each with what was counted and the limit.
    #[serde(default)]
    pub tripped: Vec<Tripped>,
    /// Set when the plan must wait for approval.
    pub held: Option<String>,
    /// Set when the plan must not be applied at all.
    pub refused: Option<String>,
}

/// One licence's arithmetic in a verdict.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LicenceView {
    /// Whose licence ("Bitbucket", "the Crowd application 'jira'").
    pub name: String,
    /// The target's own licence, or one of an application that reads it.
    pub of: LicenceOf,
    /// Licensed users before the plan (as Roster computes them).
    pub licensed_before: usize,
    /// After.
    pub licensed_after: usize,
    /// Seats in use (as the product reports them, or as Roster counted them).
    pub seats_in_use: i64,
    /// The limit (`None`: unlimited).
    pub seat_limit: Option<i64>,
    /// Whether the plan would take it over its limit.
    pub over: bool,
}

/// Whose licence a [`LicenceView`] is.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LicenceOf {
    /// The target's own (the verdict's top-level seat fields).
    Target,
    /// An application that reads a directory the target serves.
    Application,
}

impl LicenceView {
    /// The arithmetic in words: `8 in use of 10; licensed users 8 → 11`.
    pub fn words(&self) -> String {
        let limit = self.seat_limit.map_or("unlimited".to_string(), |l| l.to_string());
        format!(
            "{} in use of {limit}; licensed users {} → {}{}",
            self.seats_in_use,
            self.licensed_before,
            self.licensed_after,
            if self.over { " — over the licence" } else { "" }
        )
    }
}

/// What the runs applied within the rolling window took away without an approval, before this
/// plan.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WindowView {
    /// The period, in days.
    pub days: u32,
    /// Where the window starts (unix ms): the period's start, or the last approval if later.
    pub since: i64,
    /// Runs counted.
    pub runs: u64,
    /// Accounts deprovisioned.
    pub deprovisions: u64,
    /// Memberships removed.
    pub memberships_removed: u64,
    /// Accounts renamed.
    pub renames: u64,
    /// Email addresses changed.
    pub email_changes: u64,
}

/// One rule of the threshold.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// People deprovisioned in the plan (`count`, `percent`).
    Deprovisions,
    /// Distinct people losing a membership (`people_losing_memberships`).
    PeopleLosingMemberships,
    /// Memberships removed in total (`memberships_removed`).
    MembershipsRemoved,
    /// Members one group loses (`group_members_lost`).
    GroupMembersLost,
    /// Accounts renamed (`renames`).
    Renames,
    /// Email addresses changed (`email_changes`).
    EmailChanges,
    /// People deprovisioned over the window (`window.deprovisions`).
    WindowDeprovisions,
    /// Memberships removed over the window (`window.memberships_removed`).
    WindowMembershipsRemoved,
    /// Accounts renamed over the window (`window.renames`).
    WindowRenames,
    /// Email addresses changed over the window (`window.email_changes`).
    WindowEmailChanges,
}

impl Rule {
    /// The rule's name, as the verdict spells it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Deprovisions => "deprovisions",
            Rule::PeopleLosingMemberships => "people-losing-memberships",
            Rule::MembershipsRemoved => "memberships-removed",
            Rule::GroupMembersLost => "group-members-lost",
            Rule::Renames => "renames",
            Rule::EmailChanges => "email-changes",
            Rule::WindowDeprovisions => "window-deprovisions",
            Rule::WindowMembershipsRemoved => "window-memberships-removed",
            Rule::WindowRenames => "window-renames",
            Rule::WindowEmailChanges => "window-email-changes",
        }
    }

    /// The `[target.threshold]` field that sets it.
    pub fn field(self) -> &'static str {
        match self {
            Rule::Deprovisions => "count / percent",
            Rule::PeopleLosingMemberships => "people_losing_memberships",
            Rule::MembershipsRemoved => "memberships_removed",
            Rule::GroupMembersLost => "group_members_lost",
            Rule::Renames => "renames",
            Rule::EmailChanges => "email_changes",
            Rule::WindowDeprovisions => "window.deprovisions",
            Rule::WindowMembershipsRemoved => "window.memberships_removed",
            Rule::WindowRenames => "window.renames",
            Rule::WindowEmailChanges => "window.email_changes",
        }
    }
}

/// A rule the plan trips.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Tripped {
    /// Which rule.
    pub rule: Rule,
    /// The group, for `group-members-lost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// What was counted.
    pub counted: u64,
    /// The limit it went over, in words (`50 % of 3000`).
    pub limit: String,
}

impl Tripped {
    fn words(&self) -> String {
        let what = match self.rule {
            Rule::Deprovisions => "accounts deprovisioned",
            Rule::PeopleLosingMemberships => "people losing a group membership",
            Rule::MembershipsRemoved => "memberships removed",
            Rule::GroupMembersLost => "members removed",
            Rule::Renames => "accounts renamed",
            Rule::EmailChanges => "email addresses changed",
            Rule::WindowDeprovisions => "accounts deprovisioned in the window",
            Rule::WindowMembershipsRemoved => "memberships removed in the window",
            Rule::WindowRenames => "accounts renamed in the window",
            Rule::WindowEmailChanges => "email addresses changed in the window",
        };
        match &self.group {
            Some(g) => format!(
                "{} ({g}: {} {what}, over {})",
                self.rule.name(),
                self.counted,
                self.limit
            ),
            None => format!("{} ({} {what}, over {})", self.rule.name(), self.counted, self.limit),
        }
    }
}

/// What a plan takes away, counted as an administrator would: memberships a deprovisioning
/// removes count as removed memberships.
#[derive(Debug, Default)]
pub struct Tally {
    deprovisions: usize,
    renames: usize,
    email_changes: usize,
    /// Distinct (group, lower-case user) memberships removed.
    removed: usize,
    /// Distinct people losing a membership.
    people: usize,
    /// Per group: members removed.
    per_group: BTreeMap<String, usize>,
    /// Per operation, in plan order: memberships it removes first (for recording what was done).
    removed_by_op: Vec<u32>,
}

impl Tally {
    /// Counts `ops` against the target's memberships now.
    pub fn count(ops: &[PlannedOp], target: &TargetState) -> Tally {
        let mut t = Tally {
            removed_by_op: Vec::with_capacity(ops.len()),
            ..Tally::default()
        };
        let mut seen = Removals::default();
        // user → groups (of those read), built on the first operation that needs it: one pass
        // over the memberships instead of one per deprovisioned account.
        let mut index: Option<HashMap<&str, Vec<&str>>> = None;
        for o in ops {
            let before = seen.pairs.len();
            match &o.op {
                Op::RemoveMember { group, user } => seen.add(group, user.to_lowercase()),
                Op::Deactivate {
                    user,
                    groups,
                    leave_other_groups,
                    ..
                } => {
                    t.deprovisions += 1;
                    let u = user.to_lowercase();
                    for g in groups {
                        seen.add(g, u.clone());
                    }
                    if let Some(keep) = leave_other_groups {
                        for g in groups_of(&mut index, target, &u) {
                            if !keep.iter().any(|k| k == g) {
                                seen.add(g, u.clone());
                            }
                        }
                    }
                }
                Op::DeleteUser { user, .. } => {
                    t.deprovisions += 1;
                    let u = user.to_lowercase();
                    for g in groups_of(&mut index, target, &u) {
                        seen.add(g, u.clone());
                    }
                }
                // Members the plan leaves in the group lose it with the group.
                Op::DeleteGroup { group } => {
                    for u in target.members.get(group).into_iter().flatten() {
                        seen.add(group, u.to_string());
                    }
                }
                Op::RenameUser { .. } => t.renames += 1,
                Op::UpdateUser { email, old_email, .. } => {
                    if email_changes(old_email.as_deref(), email) {
                        t.email_changes += 1;
                    }
                }
                Op::CreateGroup { .. } | Op::CreateUser { .. } | Op::AdoptUser { .. } | Op::AddMembers { .. } => {}
            }
            t.removed_by_op.push((seen.pairs.len() - before) as u32);
        }
        t.removed = seen.pairs.len();
        t.people = seen.people.len();
        for (g, _) in seen.pairs {
            *t.per_group.entry(g.to_string()).or_default() += 1;
        }
        t
    }

    /// What the operations marked done took away (`done[i]` for `ops[i]`), for the window.
    pub fn destroyed(&self, ops: &[PlannedOp], done: &[bool]) -> Destroyed {
        let mut d = Destroyed::default();
        for ((o, n), ok) in ops.iter().zip(&self.removed_by_op).zip(done) {
            if !ok {
                continue;
            }
            d.memberships_removed += u64::from(*n);
            match &o.op {
                Op::Deactivate { .. } | Op::DeleteUser { .. } => d.deprovisions += 1,
                Op::RenameUser { .. } => d.renames += 1,
                Op::UpdateUser { email, old_email, .. } if email_changes(old_email.as_deref(), email) => {
                    d.email_changes += 1;
                }
                _ => {}
            }
        }
        d
    }
}

/// Distinct memberships removed, and by whom.
#[derive(Default)]
struct Removals<'a> {
    /// (group, lower-case user).
    pairs: HashSet<(&'a str, String)>,
    people: HashSet<String>,
}

impl<'a> Removals<'a> {
    fn add(&mut self, group: &'a str, user: String) {
        if !self.people.contains(&user) {
            self.people.insert(user.clone());
        }
        self.pairs.insert((group, user));
    }
}

/// An address replaced or removed; a first address, or a change of case only, takes nothing away.
fn email_changes(old: Option<&str>, new: &str) -> bool {
    old.is_some_and(|old| !old.is_empty() && !old.eq_ignore_ascii_case(new))
}

/// The groups (of those read) `user` is a member of now, through `index` (built on first use).
fn groups_of<'a>(
    index: &mut Option<HashMap<&'a str, Vec<&'a str>>>,
    target: &'a TargetState,
    user: &str,
) -> Vec<&'a str> {
    let index = index.get_or_insert_with(|| {
        let mut by_user: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
        for (g, members) in &target.members {
            for m in members {
                by_user.entry(&**m).or_default().push(g.as_str());
            }
        }
        by_user
    });
    index.get(user).cloned().unwrap_or_default()
}

/// Which of the threshold's rules apply.
#[derive(Debug, Clone, Copy)]
pub enum Rules<'a> {
    /// A whole run: every rule, the window's included.
    Plan {
        /// The limits.
        threshold: &'a Threshold,
        /// What earlier runs of the window took away.
        window: &'a WindowTotals,
    },
    /// One person's sync: only the window's rules (one person is never a mass change, but a
    /// loop of single-user syncs must not add up to one unseen).
    Person {
        /// The limits.
        threshold: &'a Threshold,
        /// What earlier runs of the window took away.
        window: &'a WindowTotals,
    },
    /// An approved plan: an administrator saw it; only the licence is checked again.
    LicenceOnly,
}

/// What the guard judges a plan by.
pub struct Judged<'a> {
    /// What the target has now.
    pub target: &'a TargetState,
    /// How the target disables an account (what a deactivation does to licences).
    pub disable: Disable,
    /// How accounts come to exist: an invitation takes a seat once accepted.
    pub accounts: Accounts,
    /// Accounts Roster manages in the target now.
    pub managed_accounts: usize,
    /// Which rules to hold by.
    pub rules: Rules<'a>,
    /// What administrators call the target, for the verdict's words.
    pub product: &'a str,
    /// The plan's id and hash, for the approval the verdict asks for.
    pub plan: (&'a str, &'a str),
}

/// Judges a plan (counted in `tally`) against the threshold and the licence.
pub fn judge(ops: &[PlannedOp], tally: &Tally, j: &Judged<'_>) -> Verdict {
    let (target, managed_accounts, product) = (j.target, j.managed_accounts, j.product);
    let own = count(
        ops,
        j,
        Pool {
            name: product,
            of: LicenceOf::Target,
            groups: &target.licensing_groups,
            directly: &target.licensed_directly,
            seats: target.seats,
        },
    );
    let mut refusals = Vec::new();
    if own.over {
        let delta = own.licensed_after as i64 - own.licensed_before as i64;
        refusals.push(format!(
            "the plan would license {delta} more user(s): {} in use + {delta} = {} > {} seats; {product} blocks pushes over its licence. Free seats or raise the licence, then run again",
            own.seats_in_use,
            own.seats_in_use + delta,
            own.seat_limit.unwrap_or_default()
        ));
    }
    let mut licences = Vec::with_capacity(target.licences.len() + 1);
    // The target's own licence is shown when it licenses anything, or when it is the only one.
    let none = BTreeSet::new();
    if target.licences.is_empty()
        || !target.licensing_groups.is_empty()
        || !target.licensed_directly.is_empty()
        || target.seats.limit.is_some()
    {
        licences.push(own.clone());
    }
    for l in &target.licences {
        // An invitation gives access to the target's own product, not to the applications
        // that read its directory: those count memberships only.
        let by_membership = Judged {
            accounts: Accounts::Create,
            ..*j
        };
        let view = count(
            ops,
            &by_membership,
            Pool {
                name: &l.name,
                of: LicenceOf::Application,
                groups: &l.licensing_groups,
                directly: &none,
                seats: l.seats,
            },
        );
        if view.over {
            let delta = view.licensed_after as i64 - view.licensed_before as i64;
            refusals.push(format!(
                "the plan would license {delta} more user(s) in {}: {} in use + {delta} = {} > {} seats; Roster never pushes over an application's licence. Free seats, or raise its seats ({}), then run again",
                l.name,
                view.seats_in_use,
                view.seats_in_use + delta,
                view.seat_limit.unwrap_or_default(),
                l.raise
            ));
        }
        licences.push(view);
    }
    let mut v = Verdict {
        deprovisions: tally.deprovisions,
        people_losing_memberships: tally.people,
        memberships_removed: tally.removed,
        renames: tally.renames,
        email_changes: tally.email_changes,
        window: None,
        managed_accounts,
        licensed_before: own.licensed_before,
        licensed_after: own.licensed_after,
        seats_in_use: own.seats_in_use,
        seat_limit: own.seat_limit,
        licences,
        tripped: Vec::new(),
        held: None,
        refused: (!refusals.is_empty()).then(|| refusals.join("; ")),
    };
    let (threshold, window) = match j.rules {
        Rules::Plan { threshold, window } => {
            v.tripped = per_plan(tally, threshold, managed_accounts, target);
            (threshold, window)
        }
        Rules::Person { threshold, window } => (threshold, window),
        Rules::LicenceOnly => return v,
    };
    v.window = Some(WindowView {
        days: threshold.window.days,
        since: window.since,
        runs: window.runs,
        deprovisions: window.destroyed.deprovisions,
        memberships_removed: window.destroyed.memberships_removed,
        renames: window.destroyed.renames,
        email_changes: window.destroyed.email_changes,
    });
    let w = &threshold.window;
    let earlier = &window.destroyed;
    for (rule, before, now, limit) in [
        (
            Rule::WindowDeprovisions,
            earlier.deprovisions,
            tally.deprovisions,
            w.deprovisions,
        ),
        (
            Rule::WindowMembershipsRemoved,
            earlier.memberships_removed,
            tally.removed,
            w.memberships_removed,
        ),
        (Rule::WindowRenames, earlier.renames, tally.renames, w.renames),
        (
            Rule::WindowEmailChanges,
            earlier.email_changes,
            tally.email_changes,
            w.email_changes,
        ),
    ] {
        let total = before + now as u64;
        // The window holds the plan that takes it over, not one that adds nothing to it.
        if now > 0 && total > u64::from(limit) {
            v.tripped.push(Tripped {
                rule,
                group: None,
                counted: total,
                limit: format!(
                    "{limit} in {} day(s) ({before} by earlier runs + {now} by this plan)",
                    w.days
                ),
            });
        }
    }
    if !v.tripped.is_empty() {
        let rules: Vec<String> = v.tripped.iter().map(Tripped::words).collect();
        let fields: BTreeSet<&str> = v.tripped.iter().map(|t| t.rule.field()).collect();
        let (id, hash) = j.plan;
        v.held = Some(format!(
            "over the threshold: {}. Review the plan with `roster plan show {id}` and approve exactly it with `roster plan approve {id} --hash {}`; if such changes are expected here, raise [target.threshold] {}",
            rules.join("; "),
            &hash[..16.min(hash.len())],
            fields.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    v
}

/// The per-plan rules `tally` trips.
fn per_plan(tally: &Tally, threshold: &Threshold, managed: usize, target: &TargetState) -> Vec<Tripped> {
    let mut out = Vec::new();
    let share = |n: usize| {
        if managed == 0 {
            100.0
        } else {
            n as f64 * 100.0 / managed as f64
        }
    };
    let d = tally.deprovisions;
    if d > threshold.count as usize || (d > 0 && share(d) > threshold.percent) {
        out.push(Tripped {
            rule: Rule::Deprovisions,
            group: None,
            counted: d as u64,
            limit: format!("{} or {} % of {managed} managed", threshold.count, threshold.percent),
        });
    }
    let mut people = |rule: Rule, n: usize, limit: &Limit| {
        if n > limit.count as usize || (n > limit.floor as usize && share(n) > limit.percent) {
            out.push(Tripped {
                rule,
                group: None,
                counted: n as u64,
                limit: format!("{} or {} % of {managed} managed", limit.count, limit.percent),
            });
        }
    };
    people(
        Rule::PeopleLosingMemberships,
        tally.people,
        &threshold.people_losing_memberships,
    );
    people(Rule::Renames, tally.renames, &threshold.renames);
    people(Rule::EmailChanges, tally.email_changes, &threshold.email_changes);
    if tally.removed > threshold.memberships_removed as usize {
        out.push(Tripped {
            rule: Rule::MembershipsRemoved,
            group: None,
            counted: tally.removed as u64,
            limit: threshold.memberships_removed.to_string(),
        });
    }
    let g = &threshold.group_members_lost;
    for (group, &removed) in &tally.per_group {
        let members = target.members.get(group).map_or(0, |m| m.len());
        if removed > g.floor as usize && members > 0 && removed as f64 * 100.0 / members as f64 > g.percent {
            out.push(Tripped {
                rule: Rule::GroupMembersLost,
                group: Some(group.clone()),
                counted: removed as u64,
                limit: format!("{} % of {members}", g.percent),
            });
        }
    }
    out
}

/// One licence to count: the groups that give it, the accounts that hold it by themselves, its
/// seats.
struct Pool<'a> {
    name: &'a str,
    of: LicenceOf,
    groups: &'a BTreeSet<String>,
    directly: &'a BTreeSet<String>,
    seats: crate::target::Seats,
}

/// The licence `pool` before and after the plan, and whether the plan takes it over its limit.
fn count(ops: &[PlannedOp], j: &Judged<'_>, pool: Pool<'_>) -> LicenceView {
    let before = j.target.licensed_by(pool.groups, pool.directly);
    let after = licensed_after(ops, j.target, &pool, j.disable, j.accounts);
    let seats_in_use = pool.seats.in_use.unwrap_or(before.len() as i64);
    let delta = after.len() as i64 - before.len() as i64;
    LicenceView {
        name: pool.name.to_string(),
        of: pool.of,
        licensed_before: before.len(),
        licensed_after: after.len(),
        seats_in_use,
        seat_limit: pool.seats.limit,
        over: pool
            .seats
            .limit
            .is_some_and(|limit| delta > 0 && seats_in_use + delta > limit),
    }
}

/// Who would be licensed once the plan is applied, by simulating it on the licensing facts.
/// An invitation counts as the seat its acceptance takes: the plan cannot add the invited
/// person to a licensing group before then, and the invitation gives access on its own.
fn licensed_after(
    ops: &[PlannedOp],
    target: &TargetState,
    pool: &Pool<'_>,
    disable: Disable,
    accounts: Accounts,
) -> BTreeSet<String> {
    // By lower-case name: a plan may spell a licensing group in another case than the licence
    // names it (one it creates, named as the source has it), and the products compare group
    // names without case.
    let mut members: HashMap<String, BTreeSet<String>> = pool
        .groups
        .iter()
        .map(|g| {
            (
                g.to_lowercase(),
                target
                    .members
                    .get(g)
                    .map(|m| m.iter().map(|u| u.to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let mut direct: BTreeSet<String> = pool.directly.clone();
    // A disabled account holds no licence, whatever its memberships, until the plan brings it
    // back.
    let mut inactive: HashSet<String> = target
        .users
        .iter()
        .filter(|(_, a)| !a.active)
        .map(|(k, _)| k.clone())
        .collect();
    for o in ops {
        match &o.op {
            Op::CreateUser { user, .. } if accounts == Accounts::Invite => {
                inactive.remove(&user.to_lowercase());
                direct.insert(user.to_lowercase());
            }
            Op::CreateUser { user, .. } | Op::AdoptUser { user, .. } => {
                inactive.remove(&user.to_lowercase());
            }
            Op::AddMembers { group, users } => {
                if let Some(m) = members.get_mut(&group.to_lowercase()) {
                    m.extend(users.iter().map(|u| u.to_lowercase()));
                }
            }
            Op::RemoveMember { group, user } => {
                if let Some(m) = members.get_mut(&group.to_lowercase()) {
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
                if inactive.remove(&from) {
                    inactive.insert(to.clone());
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
                    if let Some(m) = members.get_mut(&g.to_lowercase()) {
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
            Op::DeleteGroup { group } => {
                members.remove(&group.to_lowercase());
            }
            Op::CreateGroup { .. } | Op::UpdateUser { .. } => {}
        }
    }
    let mut out = direct;
    for m in members.into_values() {
        out.extend(m);
    }
    out.retain(|u| !inactive.contains(u));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::target::{Account, Licence};

    /// `n` accounts `u0…`, members of `groups` as given (group → range of account numbers).
    fn target(n: usize, groups: &[(&str, std::ops::Range<usize>)]) -> TargetState {
        let mut t = TargetState::default();
        for i in 0..n {
            let name = format!("u{i}");
            t.users.insert(
                name.clone(),
                Account {
                    name,
                    display_name: String::new(),
                    email: None,
                    directory: None,
                    mutable: true,
                    active: true,
                    last_sign_in_ms: None,
                },
            );
        }
        for (g, range) in groups {
            t.groups.insert(g.to_string());
            t.members.insert(
                g.to_string(),
                range.clone().map(|i| Arc::from(format!("u{i}").as_str())).collect(),
            );
        }
        t
    }

    fn op(op: Op) -> PlannedOp {
        PlannedOp {
            op,
            reason: String::new(),
        }
    }

    fn remove(group: &str, i: usize) -> PlannedOp {
        op(Op::RemoveMember {
            group: group.into(),
            user: format!("U{i}"),
        })
    }

    fn rename(i: usize) -> PlannedOp {
        op(Op::RenameUser {
            from: format!("u{i}"),
            to: format!("v{i}"),
            records: Vec::new(),
        })
    }

    fn email(i: usize, old: Option<&str>, new: &str) -> PlannedOp {
        op(Op::UpdateUser {
            user: format!("u{i}"),
            display_name: String::new(),
            email: new.into(),
            old_display_name: String::new(),
            old_email: old.map(str::to_string),
        })
    }

    fn deactivate(i: usize, groups: &[&str]) -> PlannedOp {
        op(Op::Deactivate {
            user: format!("u{i}"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            revoke_permission: false,
            leave_other_groups: None,
        })
    }

    fn judged<'a>(t: &'a TargetState, managed: usize, rules: Rules<'a>) -> Judged<'a> {
        Judged {
            target: t,
            disable: Disable::Unlicense,
            accounts: Accounts::Create,
            managed_accounts: managed,
            rules,
            product: "Bitbucket",
            plan: ("7-0123abcd", "0123abcd0123abcd0123abcd"),
        }
    }

    fn verdict(ops: &[PlannedOp], t: &TargetState, managed: usize) -> Verdict {
        let threshold = Threshold::default();
        let window = WindowTotals::default();
        let rules = Rules::Plan {
            threshold: &threshold,
            window: &window,
        };
        judge(ops, &Tally::count(ops, t), &judged(t, managed, rules))
    }

    fn rules(v: &Verdict) -> Vec<&'static str> {
        v.tripped.iter().map(|x| x.rule.name()).collect()
    }

    #[test]
    fn invitations_count_against_the_licence_as_the_seats_they_take() {
        let mut t = target(8, &[("users", 0..8)]);
        t.licensing_groups.insert("users".into());
        t.seats = crate::target::Seats {
            in_use: Some(8),
            limit: Some(10),
        };
        let invite = |i: usize| {
            op(Op::CreateUser {
                user: format!("new{i}"),
                display_name: String::new(),
                email: format!("new{i}@example.com"),
                records: Vec::new(),
            })
        };
        let ops: Vec<PlannedOp> = (0..3).map(invite).collect();
        let threshold = Threshold::default();
        let window = WindowTotals::default();
        let mut j = judged(
            &t,
            8,
            Rules::Plan {
                threshold: &threshold,
                window: &window,
            },
        );
        // Created accounts take a seat only when the plan adds them to a licensing group.
        let created = judge(&ops, &Tally::count(&ops, &t), &j);
        assert_eq!((created.licensed_after, created.refused), (8, None));
        j.accounts = Accounts::Invite;
        let invited = judge(&ops, &Tally::count(&ops, &t), &j);
        assert_eq!(invited.licensed_after, 11);
        let why = invited.refused.unwrap();
        assert!(why.contains("8 in use + 3 = 11 > 10 seats"), "{why}");
    }

    #[test]
    fn deleting_a_group_counts_the_memberships_it_takes_once() {
        let t = target(30, &[("devs", 0..30), ("ops", 0..5)]);
        // The plan removes 20 members first; the deletion takes the other 10 with the group.
        let mut ops: Vec<PlannedOp> = (0..20).map(|i| remove("devs", i)).collect();
        ops.push(op(Op::DeleteGroup { group: "devs".into() }));
        let tally = Tally::count(&ops, &t);
        let v = verdict(&ops, &t, 30);
        assert_eq!((v.memberships_removed, v.people_losing_memberships), (30, 30));
        assert!(rules(&v).contains(&"group-members-lost"), "{:?}", v.tripped);
        let done = vec![true; ops.len()];
        assert_eq!(tally.destroyed(&ops, &done).memberships_removed, 30);
        assert!(ops.last().unwrap().op.takes_away());
    }

    #[test]
    fn a_group_emptied_while_everyone_stays_is_held_by_the_default_threshold() {
        let t = target(3000, &[("devs", 0..3000), ("ops", 0..20)]);
        let ops: Vec<PlannedOp> = (0..3000).map(|i| remove("devs", i)).collect();
        let v = verdict(&ops, &t, 3000);
        assert_eq!(v.deprovisions, 0);
        assert_eq!((v.memberships_removed, v.people_losing_memberships), (3000, 3000));
        let group = v.tripped.iter().find(|x| x.rule == Rule::GroupMembersLost).unwrap();
        assert_eq!(group.group.as_deref(), Some("devs"));
        assert_eq!(group.counted, 3000);
        assert_eq!(group.limit, "50 % of 3000");
        assert!(rules(&v).contains(&"memberships-removed"), "{:?}", v.tripped);
        assert!(rules(&v).contains(&"people-losing-memberships"), "{:?}", v.tripped);
        let held = v.held.unwrap();
        assert!(
            held.contains("group-members-lost (devs: 3000 members removed, over 50 % of 3000)"),
            "{held}"
        );
        assert!(
            held.contains("`roster plan approve 7-0123abcd --hash 0123abcd0123abcd`;")
                && held.contains(
                    "raise [target.threshold] group_members_lost, memberships_removed, people_losing_memberships"
                ),
            "{held}"
        );
    }

    #[test]
    fn every_managed_user_losing_every_managed_group_is_held() {
        let groups: Vec<(String, std::ops::Range<usize>)> =
            (0..5).map(|g| (format!("team{g}"), g * 4..g * 4 + 4)).collect();
        let refs: Vec<(&str, std::ops::Range<usize>)> = groups.iter().map(|(g, r)| (g.as_str(), r.clone())).collect();
        // Tiny groups (4 members each): the per-group floor lets each through, the people rule
        // does not.
        let t = target(20, &refs);
        let ops: Vec<PlannedOp> = (0..20).map(|i| remove(&format!("team{}", i / 4), i)).collect();
        let v = verdict(&ops, &t, 20);
        assert_eq!(rules(&v), ["people-losing-memberships"], "{:?}", v.tripped);
        assert!(v.held.is_some());
    }

    #[test]
    fn mass_renames_and_email_changes_are_held() {
        let t = target(400, &[]);
        let ops: Vec<PlannedOp> = (0..60).map(rename).collect();
        assert_eq!(rules(&verdict(&ops, &t, 400)), ["renames"]);
        let ops: Vec<PlannedOp> = (0..60)
            .map(|i| email(i, Some(&format!("u{i}@old.example")), &format!("u{i}@new.example")))
            .collect();
        let v = verdict(&ops, &t, 400);
        assert_eq!(v.email_changes, 60);
        assert_eq!(rules(&v), ["email-changes"]);
    }

    #[test]
    fn an_ordinary_day_is_not_held() {
        let t = target(
            1000,
            &[("bitbucket-users", 0..1000), ("devs", 0..300), ("ops", 300..330)],
        );
        let mut ops = vec![
            deactivate(900, &["bitbucket-users"]),
            deactivate(901, &["bitbucket-users"]),
            deactivate(902, &["bitbucket-users"]),
        ];
        ops.extend((0..5).map(|i| remove("devs", i)));
        ops.extend((10..14).map(rename));
        ops.extend((20..23).map(|i| email(i, Some("a@old.example"), "b@new.example")));
        let v = verdict(&ops, &t, 1000);
        assert_eq!(v.tripped, Vec::new());
        assert_eq!(v.held, None);
        assert_eq!(
            (
                v.deprovisions,
                v.memberships_removed,
                v.people_losing_memberships,
                v.renames,
                v.email_changes
            ),
            (3, 8, 8, 4, 3)
        );
    }

    #[test]
    fn deprovisioning_counts_the_memberships_it_removes_once() {
        let t = target(10, &[("lic", 0..10), ("devs", 0..10), ("ops", 0..3)]);
        let ops = vec![
            // Listed licensing group, and every other group but the kept ones.
            op(Op::Deactivate {
                user: "U0".into(),
                groups: vec!["lic".into()],
                revoke_permission: false,
                leave_other_groups: Some(vec!["ops".into()]),
            }),
            // A removal the diff planned as well as the deprovisioning: one membership.
            remove("devs", 1),
            op(Op::DeleteUser {
                user: "u1".into(),
                erase: false,
            }),
            // A native disable keeps memberships.
            deactivate(2, &[]),
        ];
        let tally = Tally::count(&ops, &t);
        assert_eq!(tally.deprovisions, 3);
        // u0: lic, devs (ops kept); u1: devs, lic, ops.
        assert_eq!(tally.removed, 5);
        assert_eq!(tally.people, 2);
        assert_eq!(tally.per_group["devs"], 2);
        assert_eq!(tally.removed_by_op, [2, 1, 2, 0]);
        let d = tally.destroyed(&ops, &[true, false, true, true]);
        assert_eq!((d.deprovisions, d.memberships_removed), (3, 4), "only what was done");
    }

    #[test]
    fn a_tiny_group_is_not_held_for_losing_members_below_the_floor() {
        let t = target(1000, &[("pair", 0..2), ("big", 0..40)]);
        let v = verdict(&[remove("pair", 0), remove("pair", 1)], &t, 1000);
        assert_eq!(v.tripped, Vec::new());
        let ops: Vec<PlannedOp> = (0..11).map(|i| remove("big", i)).collect();
        assert_eq!(
            rules(&verdict(&ops, &t, 1000)),
            Vec::<&str>::new(),
            "11 of 40 is under half"
        );
        let ops: Vec<PlannedOp> = (0..21).map(|i| remove("big", i)).collect();
        let v = verdict(&ops, &t, 1000);
        assert_eq!(rules(&v), ["group-members-lost"]);
        assert_eq!(v.tripped[0].limit, "50 % of 40");
    }

    #[test]
    fn a_first_address_or_a_change_of_case_is_no_email_change() {
        let t = target(5, &[]);
        let ops = [
            email(0, None, "a@example.com"),
            email(1, Some(""), "b@example.com"),
            email(2, Some("C@Example.com"), "c@example.com"),
            email(3, Some("d@example.com"), "d@elsewhere.com"),
            email(4, Some("e@example.com"), ""),
        ];
        assert_eq!(Tally::count(&ops, &t).email_changes, 2);
    }

    #[test]
    fn the_window_holds_the_plan_that_takes_it_over() {
        let t = target(5000, &[("lic", 0..5000)]);
        let threshold = Threshold::default();
        let earlier = WindowTotals {
            since: 1,
            runs: 3,
            destroyed: Destroyed {
                deprovisions: 147,
                ..Destroyed::default()
            },
        };
        let ops: Vec<PlannedOp> = (0..49).map(|i| deactivate(i, &["lic"])).collect();
        let rules_of = |ops: &[PlannedOp], r: Rules<'_>| {
            let v = judge(ops, &Tally::count(ops, &t), &judged(&t, 5000, r));
            (rules(&v), v)
        };
        let plan = Rules::Plan {
            threshold: &threshold,
            window: &earlier,
        };
        let (tripped, v) = rules_of(&ops, plan);
        assert_eq!(tripped, ["window-deprovisions"]);
        assert_eq!(v.tripped[0].counted, 196);
        assert_eq!(
            v.tripped[0].limit,
            "150 in 7 day(s) (147 by earlier runs + 49 by this plan)"
        );
        assert_eq!(v.window.unwrap().deprovisions, 147);
        // Under the window without this plan's part: let through.
        let (tripped, _) = rules_of(&ops[..3], plan);
        assert!(tripped.is_empty(), "{tripped:?}");
        // A plan that takes nothing away is never held by the window, however full.
        let full = WindowTotals {
            destroyed: Destroyed {
                deprovisions: 1000,
                ..Destroyed::default()
            },
            ..earlier
        };
        let (tripped, _) = rules_of(
            &[email(0, None, "a@b.c")],
            Rules::Plan {
                threshold: &threshold,
                window: &full,
            },
        );
        assert!(tripped.is_empty());
        // One person: only the window; an approval: nothing but the licence.
        let person = Rules::Person {
            threshold: &threshold,
            window: &full,
        };
        assert_eq!(rules_of(&ops[..1], person).0, ["window-deprovisions"]);
        let many: Vec<PlannedOp> = (0..100).map(rename).collect();
        let (tripped, _) = rules_of(
            &many,
            Rules::Person {
                threshold: &threshold,
                window: &earlier,
            },
        );
        assert!(tripped.is_empty(), "per-plan rules do not apply to one person");
        let (tripped, v) = rules_of(&ops, Rules::LicenceOnly);
        assert!(tripped.is_empty() && v.held.is_none() && v.window.is_none());
    }

    /// An application's licence: `groups` license, `limit` seats, counted by Roster.
    fn app(name: &str, groups: &[&str], limit: Option<i64>) -> Licence {
        Licence {
            name: format!("the Crowd application '{name}'"),
            licensing_groups: groups.iter().map(|g| g.to_string()).collect(),
            seats: crate::target::Seats { in_use: None, limit },
            raise: format!("roster crowd apps set {name} --seats N"),
        }
    }

    fn add(group: &str, users: std::ops::Range<usize>) -> PlannedOp {
        op(Op::AddMembers {
            group: group.into(),
            users: users.map(|i| format!("U{i}")).collect(),
        })
    }

    #[test]
    fn each_application_is_judged_on_its_own_licence_and_the_one_over_is_named() {
        // 12 accounts: u0..8 in jira-users (8 licensed of 10), u0..3 in bitbucket-users.
        let mut t = target(12, &[("jira-users", 0..8), ("bitbucket-users", 0..3)]);
        t.licences = vec![
            app("jira", &["jira-users"], Some(10)),
            app("bitbucket", &["bitbucket-users"], Some(5)),
        ];
        // Three more in Jira (11 > 10), two more in Bitbucket (5, just fits).
        let ops = [add("jira-users", 8..11), add("bitbucket-users", 3..5)];
        let v = verdict(&ops, &t, 12);
        let why = v.refused.expect("jira goes over");
        assert!(
            why.contains("3 more user(s) in the Crowd application 'jira': 8 in use + 3 = 11 > 10 seats"),
            "{why}"
        );
        assert!(why.contains("roster crowd apps set jira --seats N"), "{why}");
        assert!(
            !why.contains("bitbucket"),
            "the application within its licence is not named: {why}"
        );
        let pools: Vec<(&str, usize, usize, Option<i64>, bool)> = v
            .licences
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.licensed_before,
                    l.licensed_after,
                    l.seat_limit,
                    l.over,
                )
            })
            .collect();
        assert_eq!(
            pools,
            [
                ("the Crowd application 'jira'", 8, 11, Some(10), true),
                ("the Crowd application 'bitbucket'", 3, 5, Some(5), false),
            ],
            "the target licenses nothing itself, so only the applications are shown"
        );
        // The same plan within both licences passes.
        let fits = verdict(&[add("jira-users", 8..10), add("bitbucket-users", 3..5)], &t, 12);
        assert_eq!(fits.refused, None);
        // Both over: both named.
        let both = verdict(&[add("jira-users", 8..11), add("bitbucket-users", 3..6)], &t, 12);
        let why = both.refused.unwrap();
        assert!(
            why.contains("'jira'") && why.contains("'bitbucket': 3 in use + 3 = 6 > 5"),
            "{why}"
        );
    }

    #[test]
    fn a_user_in_several_licensed_groups_of_one_application_takes_one_seat() {
        // Flattened nesting: u0..4 are members of jira-devs and, through it, of jira-users.
        let mut t = target(6, &[("jira-users", 0..4), ("jira-devs", 0..4), ("jira-admins", 2..4)]);
        t.licences = vec![app("jira", &["jira-users", "jira-devs", "jira-admins"], Some(5))];
        let v = verdict(&[], &t, 6);
        assert_eq!((v.licences[0].licensed_before, v.licences[0].seats_in_use), (4, 4));
        // u4 joins the child group and, flattened, the parent: one more seat, not two.
        let ops = [add("jira-devs", 4..5), add("jira-users", 4..5)];
        let v = verdict(&ops, &t, 6);
        assert_eq!((v.licences[0].licensed_after, v.refused.clone()), (5, None));
        // u5 too: 6 > 5.
        let ops = [
            add("jira-devs", 4..6),
            add("jira-users", 4..6),
            add("jira-admins", 4..6),
        ];
        let why = verdict(&ops, &t, 6).refused.unwrap();
        assert!(
            why.contains("2 more user(s)") && why.contains("4 in use + 2 = 6 > 5 seats"),
            "{why}"
        );
    }

    #[test]
    fn an_application_that_cannot_see_a_group_is_not_licensed_by_it() {
        // The target leaves out of an application's licensing groups those it cannot see:
        // adding people to such a group changes nothing in that application's count.
        let mut t = target(6, &[("jira-users", 0..2), ("contractors", 0..0)]);
        t.licences = vec![app("jira", &["jira-users"], Some(2))];
        let v = verdict(&[add("contractors", 0..6)], &t, 6);
        assert_eq!((v.licences[0].licensed_after, v.refused), (2, None));
    }

    #[test]
    fn one_licence_targets_show_their_licence_as_before() {
        let mut t = target(8, &[("users", 0..8)]);
        t.licensing_groups.insert("users".into());
        t.seats = crate::target::Seats {
            in_use: Some(9),
            limit: Some(10),
        };
        let ops = [add("users", 0..0)];
        let v = verdict(&ops, &t, 8);
        assert_eq!(
            (v.licensed_before, v.licensed_after, v.seats_in_use, v.seat_limit),
            (8, 8, 9, Some(10))
        );
        assert_eq!(v.licences.len(), 1);
        assert_eq!(v.licences[0].name, "Bitbucket");
        assert_eq!(v.licences[0].words(), "9 in use of 10; licensed users 8 → 8");
    }

    #[test]
    fn a_disabled_account_takes_no_seat_until_the_plan_brings_it_back() {
        // u7 is disabled yet still a member: it holds no licence before, nor after a plan that
        // leaves it alone — otherwise every plan would look like it adds a seat.
        let mut t = target(8, &[("users", 0..8)]);
        t.users.get_mut("u7").unwrap().active = false;
        t.licensing_groups.insert("users".into());
        t.seats = crate::target::Seats {
            in_use: None,
            limit: Some(7),
        };
        let v = verdict(&[email(0, Some("a@x"), "b@x")], &t, 8);
        assert_eq!((v.licensed_before, v.licensed_after, v.refused), (7, 7, None));
        let back = op(Op::AdoptUser {
            user: "u7".into(),
            records: Vec::new(),
        });
        let why = verdict(&[back], &t, 8).refused.unwrap();
        assert!(why.contains("7 in use + 1 = 8 > 7 seats"), "{why}");
    }

    #[test]
    fn a_licensing_group_the_plan_spells_in_another_case_still_counts() {
        // The application names `Jira-Users`; the directory does not hold it yet, and the plan
        // creates it as the source spells it.
        let mut t = target(4, &[]);
        t.licences = vec![app("jira", &["Jira-Users"], Some(3))];
        let ops = [
            op(Op::CreateGroup {
                group: "jira-users".into(),
            }),
            add("jira-users", 0..4),
        ];
        let why = verdict(&ops, &t, 4).refused.expect("4 > 3");
        assert!(why.contains("0 in use + 4 = 4 > 3 seats"), "{why}");
    }
}
