//! The plan stage: the operations that turn the target's current state into the desired state,
//! each with its reason. Identity is the IdP's immutable id: a changed username is a rename, a
//! changed email an update, never delete + create. Accounts Roster does not own are never
//! touched unless the policy says to adopt them; protected accounts and groups never are.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use roster_model::{Desired, Person};
use roster_store::{Identity, IdentityState};

use crate::model::{Op, PlannedOp, Record, Skipped};
use crate::policy::{Deprovision, TargetConfig};
use crate::target::{
    Accounts, AddMembers, Capabilities, Disable, Groups, InvitationState, PendingAccount, Profiles, Rename, TargetState,
};

/// Everything the plan is computed from.
pub struct PlanInput<'a> {
    /// What the sources say.
    pub desired: &'a Desired,
    /// What the target has.
    pub target: &'a TargetState,
    /// What the target can do.
    pub capabilities: Capabilities,
    /// What Roster owns.
    pub identities: &'a [Identity],
    /// Groups Roster manages.
    pub managed: &'a BTreeSet<String>,
    /// The target's policy.
    pub policy: &'a TargetConfig,
    /// The account Roster acts as.
    pub me: &'a str,
    /// What administrators call the target ("Bitbucket"), for reasons.
    pub product: &'a str,
    /// Now, in ms since the epoch: what the `inactive` policy counts days from.
    pub now_ms: i64,
}

/// The plan before guards: operations, and what was deliberately left alone.
#[derive(Debug, Default)]
pub struct Draft {
    /// Operations in apply order.
    pub ops: Vec<PlannedOp>,
    /// Protected or read-only subjects left alone.
    pub skipped: Vec<Skipped>,
    /// Accounts that exist in the target, are not Roster's, and collide with an IdP user.
    pub collisions: Vec<Skipped>,
}

/// Users and groups never changed.
pub struct Protected {
    users: HashSet<String>,
    groups: HashSet<String>,
}

impl Protected {
    /// Roster's own account, configured accounts and groups, the target's administrators and
    /// the members of its administrators' groups.
    pub fn new(policy: &TargetConfig, me: &str, target: &TargetState) -> Protected {
        let mut groups: HashSet<String> = policy.protected_groups.iter().cloned().collect();
        groups.extend(target.admin_groups.iter().cloned());
        let mut users: HashSet<String> = policy.protected_users.iter().map(|u| u.to_lowercase()).collect();
        users.insert(me.to_lowercase());
        users.extend(target.admins.iter().cloned());
        for g in &target.admin_groups {
            if let Some(m) = target.members.get(g) {
                users.extend(m.iter().map(|u| u.to_string()));
            }
        }
        Protected { users, groups }
    }

    /// Whether a user is protected.
    pub fn user(&self, name: &str) -> bool {
        self.users.contains(&name.to_lowercase())
    }

    /// Whether a group is protected.
    pub fn group(&self, name: &str) -> bool {
        self.groups.contains(name)
    }
}

fn sources_of(records: &[Record]) -> String {
    let mut s: Vec<&str> = records.iter().map(|(s, _)| s.as_str()).collect();
    s.dedup();
    s.join(", ")
}

/// Computes the plan.
pub fn plan(input: &PlanInput<'_>) -> Draft {
    let PlanInput {
        desired,
        target,
        capabilities,
        identities,
        managed,
        policy,
        me,
        product,
        now_ms,
    } = *input;
    let batch = match capabilities.add_members {
        AddMembers::Bulk => policy.batch_size,
        AddMembers::OneAtATime => 1,
    };
    let protected = Protected::new(policy, me, target);
    let mut d = Draft::default();
    let by_record: HashMap<(&str, &str), &Identity> = identities
        .iter()
        .filter(|i| i.state != IdentityState::Deleted)
        .map(|i| ((i.source.as_str(), i.ext_id.as_str()), i))
        .collect();
    // Usernames owned (linked to some IdP record, not deleted).
    let owned: HashMap<&str, &Identity> = identities
        .iter()
        .filter(|i| i.state != IdentityState::Deleted)
        .map(|i| (i.username.as_str(), i))
        .collect();
    let mut renames: HashMap<String, String> = HashMap::new(); // old lc → new lc
    let mut claimed: HashSet<String> = HashSet::new(); // lc usernames a desired person accounts for
    let mut excluded: HashSet<String> = HashSet::new(); // desired persons left out (collisions, protected)
    // Persons this plan invites (targets whose accounts come by invitation): no account until
    // they accept, so no membership this run.
    let mut invited: HashSet<String> = HashSet::new();
    // People who accepted an invitation an earlier run sent: their account is new to Roster now.
    let mut joined: Vec<String> = Vec::new();
    // Persons whose username changed on a target whose accounts Roster does not name (they
    // come by invitation): new lower-case name → the account's, under which Roster goes on
    // managing them, memberships included.
    let mut aliases: HashMap<String, String> = HashMap::new();
    // Accounts of persons whose rename could not be made: they stay exactly as they are, their
    // memberships included, until the rename can be made.
    let mut kept_as_is: HashSet<String> = HashSet::new();
    // (lc user, reason, how): disabled or soft-deleted records can come back, so their accounts
    // are only ever disabled; records gone from every source get the policy.
    let mut deprovision: Vec<(String, String, Deprovision)> = Vec::new();
    let reversible = match policy.deprovision {
        Deprovision::Keep => Deprovision::Keep,
        _ => Deprovision::Disable,
    };
    // Accounts whose IdP record is still reported but could not be mapped this run: not knowing
    // what they should be is no reason to take anything from them (rule 1's spirit).
    let unresolved: HashMap<&str, &Identity> = desired
        .unresolved
        .iter()
        .filter_map(|(s, e)| by_record.get(&(s.as_str(), e.as_str())).copied())
        .map(|i| (i.username.as_str(), i))
        .collect();

    // Every record some source still reports, mapped or not.
    let reported: HashSet<(&str, &str)> = desired
        .persons
        .values()
        .flat_map(|p| p.records.iter())
        .chain(desired.unresolved.iter())
        .map(|(s, e)| (s.as_str(), e.as_str()))
        .collect();

    for (key, p) in &desired.persons {
        let linked: Vec<&Identity> = p
            .records
            .iter()
            .filter_map(|(s, e)| by_record.get(&(s.as_str(), e.as_str())).copied())
            .collect();
        let linked_name = linked.first().map(|i| i.username.clone());
        if let Some(old) = &linked_name {
            claimed.insert(old.clone());
        }
        claimed.insert(key.clone());
        if !p.active {
            let state = linked.first().map(|i| i.state);
            if let (Some(old), Some(IdentityState::Active | IdentityState::Pending)) = (&linked_name, state)
                && target.users.contains_key(old)
            {
                deprovision.push((
                    old.clone(),
                    format!("disabled or soft-deleted in {}", sources_of(&p.records)),
                    reversible,
                ));
            }
            excluded.insert(key.clone());
            continue;
        }
        if protected.user(key) || linked_name.as_deref().is_some_and(|o| protected.user(o)) {
            d.skipped.push(Skipped {
                subject: p.username.clone(),
                why: "protected account".into(),
            });
            excluded.insert(key.clone());
            continue;
        }
        // An invitation not accepted yet: no account to give memberships to, and inviting again
        // would only send another email.
        if let Some(pending) = target.pending.get(key)
            && !target.users.contains_key(key)
            && linked_name.as_ref().is_none_or(|old| !target.users.contains_key(old))
        {
            d.skipped.push(Skipped {
                subject: p.username.clone(),
                why: format!(
                    "{}; its memberships follow on the first run after it is accepted",
                    pending_words(pending)
                ),
            });
            excluded.insert(key.clone());
            continue;
        }
        // An account its person has not signed in to for longer than the `inactive` policy
        // allows is deprovisioned like a leaver's, reversibly (the person is still in the
        // sources), and stays so until they sign in again.
        if let (Some(rule), Some(old)) = (policy.inactive, &linked_name)
            && let Some(last) = target.users.get(old).and_then(|a| a.last_sign_in_ms)
            && last < now_ms - i64::from(rule.days) * 86_400_000
        {
            let why = format!(
                "no sign-in to {product} since {} (inactive.days = {})",
                utc_date(last),
                rule.days
            );
            match linked[0].state {
                IdentityState::Active | IdentityState::Pending => deprovision.push((old.clone(), why, reversible)),
                IdentityState::Disabled | IdentityState::Deleted => d.skipped.push(Skipped {
                    subject: p.username.clone(),
                    why: format!("{why}: stays deprovisioned until the person signs in again"),
                }),
            }
            excluded.insert(key.clone());
            continue;
        }
        let new = NewAccount {
            accounts: capabilities.accounts,
            product,
        };
        match linked_name {
            Some(old) if &old != key => {
                if target.users.contains_key(&old) {
                    if capabilities.rename == Rename::Unsupported
                        && capabilities.accounts == Accounts::Invite
                        && !desired.persons.contains_key(&old)
                    {
                        // An invited account carries its person's name, not Roster's: a
                        // changed username is an update of nothing.
                        d.collisions.push(Skipped {
                            subject: p.username.clone(),
                            why: format!(
                                "username changed in {} ({old} → {}), but {product} cannot rename accounts: they come by invitation to an email and keep their person's name, so nothing is renamed; Roster goes on managing the account as {old}",
                                sources_of(&p.records),
                                p.username
                            ),
                        });
                        aliases.insert(key.clone(), old.clone());
                        update_if_changed(&mut d, p, target, Some(&old), capabilities.profiles, product);
                        continue;
                    }
                    if capabilities.rename == Rename::Unsupported {
                        d.collisions.push(Skipped {
                            subject: p.username.clone(),
                            why: format!(
                                "username changed in {} ({old} → {}), but this target cannot rename accounts; {old} is left as it is — rename it in the target by hand and the next run relinks it",
                                sources_of(&p.records),
                                p.username
                            ),
                        });
                        excluded.insert(key.clone());
                        kept_as_is.insert(old.clone());
                        continue;
                    }
                    if target.users.contains_key(key) {
                        d.collisions.push(Skipped {
                            subject: p.username.clone(),
                            why: format!(
                                "cannot rename {old} to {}: that name is taken by another {product} account",
                                p.username
                            ),
                        });
                        excluded.insert(key.clone());
                        kept_as_is.insert(old.clone());
                        continue;
                    }
                    d.ops.push(PlannedOp {
                        op: Op::RenameUser {
                            from: target.users[&old].name.clone(),
                            to: p.username.clone(),
                            records: p.records.clone(),
                        },
                        reason: format!(
                            "username changed in {} ({old} → {})",
                            sources_of(&p.records),
                            p.username
                        ),
                    });
                    renames.insert(old.clone(), key.clone());
                    update_if_changed(&mut d, p, target, Some(&old), capabilities.profiles, product);
                } else if target.users.contains_key(key) {
                    // The rename reached the target but not the store (a crash in between): relink.
                    d.ops.push(PlannedOp {
                        op: Op::AdoptUser {
                            user: p.username.clone(),
                            records: p.records.clone(),
                        },
                        reason: format!("rename {old} → {} already applied; relinking", p.username),
                    });
                    update_if_changed(&mut d, p, target, None, capabilities.profiles, product);
                } else {
                    let why = format!(
                        "in {}; its account {old} no longer exists in {product}",
                        sources_of(&p.records)
                    );
                    new.plan(&mut d, p, why, (&mut invited, &mut excluded));
                }
            }
            Some(_) => {
                if target.users.contains_key(key) {
                    let st = linked[0].state;
                    if matches!(st, IdentityState::Pending | IdentityState::Disabled) {
                        // Finish linking an account whose creation was not confirmed, or bring
                        // back one that was disabled; memberships follow through the group diff.
                        d.ops.push(PlannedOp {
                            op: Op::AdoptUser {
                                user: p.username.clone(),
                                records: p.records.clone(),
                            },
                            reason: match (st, capabilities.accounts) {
                                (IdentityState::Disabled, _) => format!("enabled again in {}", sources_of(&p.records)),
                                (_, Accounts::Invite) => {
                                    joined.push(p.username.clone());
                                    "accepted the invitation an earlier run sent".into()
                                }
                                _ => "created by an earlier run that did not finish".into(),
                            },
                        });
                    }
                    update_if_changed(&mut d, p, target, None, capabilities.profiles, product);
                } else {
                    let why = format!("in {}; its account is missing from {product}", sources_of(&p.records));
                    new.plan(&mut d, p, why, (&mut invited, &mut excluded));
                }
            }
            None => {
                if let Some(existing) = target.users.get(key) {
                    if let Some(other) = owned.get(key.as_str())
                        && !reported.contains(&(other.source.as_str(), other.ext_id.as_str()))
                    {
                        // The record it was made for is in no source any more, and a record of
                        // the same name is: the person moved (from HR to contractors, from one
                        // IdP to the next). Relink, keeping the account and its memberships.
                        d.ops.push(PlannedOp {
                            op: Op::AdoptUser {
                                user: existing.name.clone(),
                                records: p.records.clone(),
                            },
                            reason: format!(
                                "moved from {}/{} to {}",
                                other.source,
                                other.ext_id,
                                sources_of(&p.records)
                            ),
                        });
                        update_if_changed(&mut d, p, target, None, capabilities.profiles, product);
                    } else if let Some(other) = owned.get(key.as_str()) {
                        d.collisions.push(Skipped {
                            subject: p.username.clone(),
                            why: format!(
                                "{} is already Roster's account for {}/{}",
                                existing.name, other.source, other.ext_id
                            ),
                        });
                        excluded.insert(key.clone());
                    } else if policy.adopt_existing_users && existing.mutable {
                        d.ops.push(PlannedOp {
                            op: Op::AdoptUser {
                                user: existing.name.clone(),
                                records: p.records.clone(),
                            },
                            reason: "existing account adopted (adopt_existing_users)".into(),
                        });
                        update_if_changed(&mut d, p, target, None, capabilities.profiles, product);
                    } else {
                        let dir = existing.directory.clone().unwrap_or_else(|| "another directory".into());
                        d.collisions.push(Skipped {
                            subject: p.username.clone(),
                            why: format!("an account named {} already exists in {product} ({dir}) and is not managed by Roster; left alone (set adopt_existing_users to take it over)", existing.name),
                        });
                        excluded.insert(key.clone());
                    }
                } else {
                    let why = format!("new in {}", sources_of(&p.records));
                    new.plan(&mut d, p, why, (&mut invited, &mut excluded));
                }
            }
        }
    }

    // Invitations out for people no source wants any more: Roster does not withdraw them (the
    // target may not let it); once accepted, the account is deprovisioned like any other.
    for (name, pending) in &target.pending {
        if !desired.persons.get(name).is_some_and(|p| p.active) && !target.users.contains_key(name) {
            d.skipped.push(Skipped {
                subject: name.clone(),
                why: format!(
                    "{}, and no source wants an account for {name} any more: nothing is written; withdraw the invitation in {product} if it should not be accepted",
                    pending_words(pending)
                ),
            });
        }
    }

    // Accounts Roster owns that no desired person accounts for any more.
    let mut gone: BTreeMap<&str, &Identity> = BTreeMap::new();
    for i in identities {
        if matches!(i.state, IdentityState::Active | IdentityState::Pending)
            && !claimed.contains(&i.username)
            && target.users.contains_key(&i.username)
        {
            gone.entry(i.username.as_str()).or_insert(i);
        }
    }
    for (user, i) in gone {
        if let Some(u) = unresolved.get(user) {
            d.skipped.push(Skipped {
                subject: user.to_string(),
                why: format!(
                    "left as it is: its record {}/{} is still in the source but could not be mapped this run (see the warnings)",
                    u.source, u.ext_id
                ),
            });
            continue;
        }
        deprovision.push((
            user.to_string(),
            format!("no longer in any source (was {}/{})", i.source, i.ext_id),
            policy.deprovision,
        ));
    }

    // Groups: create what is missing, then the membership diff.
    let aliased: HashSet<&str> = aliases.values().map(String::as_str).collect();
    // The name an add uses: the account's for a person managed under it, else the person's.
    let active_name = |lc: &str| {
        if aliased.contains(lc) {
            target.users.get(lc).map(|a| a.name.clone())
        } else {
            desired.persons.get(lc).map(|p: &Person| p.username.clone())
        }
    };
    // Accounts on their way out keep their memberships unless they are to be disabled:
    // deletion removes them anyway, and `keep` means leave the account exactly as it is.
    let leaving: HashSet<String> = deprovision
        .iter()
        .filter(|(_, _, how)| *how != Deprovision::Disable)
        .map(|(u, _, _)| u.clone())
        .collect();
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    for (group, members) in &desired.groups {
        if protected.group(group) {
            d.skipped.push(Skipped {
                subject: group.clone(),
                why: "protected group: memberships not managed".into(),
            });
            continue;
        }
        let exists = target.groups.contains(group);
        if !exists {
            d.ops.push(PlannedOp {
                op: Op::CreateGroup { group: group.clone() },
                reason: format!("group in a source, missing in {product}"),
            });
        }
        let current: BTreeSet<String> = target
            .members
            .get(group)
            .map(|m| {
                m.iter()
                    .map(|u| renames.get(&**u).cloned().unwrap_or_else(|| u.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let want: BTreeSet<&str> = members
            .iter()
            .map(|u| &**u)
            .filter(|u| {
                !excluded.contains(*u) && !invited.contains(*u) && desired.persons.get(*u).is_some_and(|p| p.active)
            })
            .map(|u| aliases.get(u).map_or(u, String::as_str))
            .collect();
        let mut to_add: Vec<String> = want
            .iter()
            .filter(|u| !current.contains(**u))
            .filter_map(|u| active_name(u))
            .collect();
        to_add.sort();
        for chunk in to_add.chunks(batch) {
            adds.push(PlannedOp {
                op: Op::AddMembers {
                    group: group.clone(),
                    users: chunk.to_vec(),
                },
                reason: format!("members of {group} in the sources (see `roster why USER {group}`)"),
            });
        }
        for u in current.iter().filter(|u| !want.contains(u.as_str())) {
            if owned.contains_key(u.as_str())
                && !protected.user(u)
                && !leaving.contains(u)
                && !kept_as_is.contains(u)
                && !unresolved.contains_key(u.as_str())
            {
                removes.push(PlannedOp {
                    op: Op::RemoveMember {
                        group: group.clone(),
                        user: target.users.get(u).map_or(u.clone(), |x| x.name.clone()),
                    },
                    reason: format!("no longer a member of {group} in the sources"),
                });
            }
        }
    }
    // Accounts this plan deletes: their memberships go with them.
    let deleting: HashSet<String> = deprovision
        .iter()
        .filter(|(u, _, how)| matches!(how, Deprovision::Delete | Deprovision::DeleteAndErase) && !protected.user(u))
        .map(|(u, _, _)| u.clone())
        .collect();
    let mut group_deletions = Vec::new();
    for group in managed
        .iter()
        .filter(|g| !desired.groups.contains_key(*g) && target.groups.contains(*g) && !protected.group(g))
    {
        // Members this plan neither removes nor deletes: deleting the group would take their
        // membership away behind the rules that left them alone.
        let mut staying = Vec::new();
        for u in target.members.get(group).into_iter().flatten() {
            if owned.contains_key(&**u)
                && !protected.user(u)
                && !leaving.contains(&**u)
                && !kept_as_is.contains(&**u)
                && !unresolved.contains_key(&**u)
            {
                removes.push(PlannedOp {
                    op: Op::RemoveMember {
                        group: group.clone(),
                        user: target.users[&**u].name.clone(),
                    },
                    reason: format!("{group} is no longer in any source"),
                });
            } else if !deleting.contains(&**u) {
                staying.push(target.users.get(&**u).map_or_else(|| u.to_string(), |a| a.name.clone()));
            }
        }
        if capabilities.groups != Groups::DeleteUndesired {
            continue;
        }
        if staying.is_empty() {
            group_deletions.push(PlannedOp {
                op: Op::DeleteGroup { group: group.clone() },
                reason: format!("{group} is no longer in any source"),
            });
        } else {
            let shown = staying.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = if staying.len() > 5 { ", …" } else { "" };
            d.skipped.push(Skipped {
                subject: group.clone(),
                why: format!(
                    "no longer in any source, but not deleted: {} member(s) stay, whom Roster may not remove ({shown}{more})",
                    staying.len()
                ),
            });
        }
    }
    // Starting groups for the accounts this plan creates, or that joined by an earlier run's
    // invitation; never managed afterwards, so people may leave them.
    let created: Vec<String> = d
        .ops
        .iter()
        .filter_map(|o| match &o.op {
            Op::CreateUser { user, .. } if !invited.contains(&user.to_lowercase()) => Some(user.clone()),
            _ => None,
        })
        .chain(joined)
        .collect();
    for group in policy
        .new_user_groups
        .iter()
        .filter(|g| !created.is_empty() && !desired.groups.contains_key(*g))
    {
        if !target.groups.contains(group) || protected.group(group) {
            d.skipped.push(Skipped {
                subject: group.clone(),
                why: if protected.group(group) {
                    "new_user_groups: a protected group; new accounts are not added".into()
                } else {
                    format!("new_user_groups: the group does not exist in {product}; create it there (Roster does not manage it)")
                },
            });
            continue;
        }
        for chunk in created.chunks(batch) {
            adds.push(PlannedOp {
                op: Op::AddMembers {
                    group: group.clone(),
                    users: chunk.to_vec(),
                },
                reason: format!("new accounts start in {group} (new_user_groups)"),
            });
        }
    }
    d.ops.extend(adds);
    d.ops.extend(removes);

    // Deprovisioning per policy.
    let removal_planned: HashSet<(String, String)> = d
        .ops
        .iter()
        .filter_map(|o| {
            if let Op::RemoveMember { group, user } = &o.op {
                Some((group.clone(), user.to_lowercase()))
            } else {
                None
            }
        })
        .collect();
    for (user, reason, how) in deprovision {
        if protected.user(&user) {
            d.skipped.push(Skipped {
                subject: user,
                why: "protected account: not deprovisioned".into(),
            });
            continue;
        }
        let name = target.users[&user].name.clone();
        let op = match how {
            Deprovision::Keep => {
                d.skipped.push(Skipped {
                    subject: name,
                    why: format!("{reason}; kept (deprovision = keep)"),
                });
                continue;
            }
            Deprovision::Disable => {
                // A target without a disable call: the plan lists what licenses the account.
                let (groups, revoke) = match capabilities.disable {
                    Disable::Native => (Vec::new(), false),
                    Disable::Unlicense => (
                        target
                            .licensing_groups
                            .iter()
                            .filter(|g| {
                                target.members.get(*g).is_some_and(|m| m.contains(user.as_str()))
                                    && !protected.group(g)
                                    && !removal_planned.contains(&((*g).clone(), user.clone()))
                            })
                            .cloned()
                            .collect(),
                        target.licensed_directly.contains(&user),
                    ),
                };
                let leave_other_groups = (!policy.keep_unmanaged_memberships).then(|| {
                    let mut keep: Vec<String> = protected.groups.iter().cloned().collect();
                    keep.sort();
                    keep
                });
                Op::Deactivate {
                    user: name,
                    groups,
                    revoke_permission: revoke,
                    leave_other_groups,
                }
            }
            Deprovision::Delete => Op::DeleteUser {
                user: name,
                erase: false,
            },
            Deprovision::DeleteAndErase => Op::DeleteUser {
                user: name,
                erase: true,
            },
        };
        d.ops.push(PlannedOp { op, reason });
    }
    d.ops.extend(group_deletions);
    d.ops.sort_by_key(|o| o.op.stage());
    d
}

fn create(p: &Person, reason: String) -> PlannedOp {
    PlannedOp {
        op: Op::CreateUser {
            user: p.username.clone(),
            display_name: p.display_name.clone().unwrap_or_else(|| p.username.clone()),
            email: p.email.clone().unwrap_or_default(),
            records: p.records.clone(),
        },
        reason,
    }
}

/// How the plan gives a person their account: creates it, or invites them.
struct NewAccount<'a> {
    accounts: Accounts,
    product: &'a str,
}

impl NewAccount<'_> {
    /// Plans `p`'s account: a `CreateUser` that creates it, or one that invites `p` (then
    /// recorded in `invited`, whose memberships wait for the acceptance). A person without an
    /// email cannot be invited: left out (`excluded`), saying so.
    fn plan(
        &self,
        d: &mut Draft,
        p: &Person,
        why: String,
        (invited, excluded): (&mut HashSet<String>, &mut HashSet<String>),
    ) {
        let key = p.username.to_lowercase();
        match self.accounts {
            Accounts::Create => d.ops.push(create(p, why)),
            Accounts::Invite => {
                let Some(email) = p.email.as_deref().filter(|e| !e.trim().is_empty()) else {
                    d.skipped.push(Skipped {
                        subject: p.username.clone(),
                        why: format!(
                            "{why}, but has no email address: {} accounts come to exist by invitation to an email, so none can be sent; give the person an email in the source (or a transform that maps one)",
                            self.product
                        ),
                    });
                    excluded.insert(key);
                    return;
                };
                let reason =
                    format!("{why}; an invitation is sent to {email} (the account exists once it is accepted)");
                d.ops.push(create(p, reason));
                d.skipped.push(Skipped {
                    subject: p.username.clone(),
                    why: "invited; memberships follow once the invitation is accepted".into(),
                });
                invited.insert(key);
            }
        }
    }
}

/// `invitation to ann@example.com sent 2026-12-05 is not accepted yet`.
fn pending_words(pending: &PendingAccount) -> String {
    let sent = pending
        .since_ms
        .map(|ms| format!(" sent {}", utc_date(ms)))
        .unwrap_or_default();
    match pending.invitation {
        InvitationState::Open => format!("invitation to {}{sent} is not accepted yet", pending.email),
        InvitationState::Closed => format!(
            "invitation to {}{sent} is no longer open, yet no account has that address (the person may have joined with another email: give them that email in the identity provider); it is not sent again for now",
            pending.email
        ),
    }
}

/// The UTC calendar date of `ms` since the epoch, `2026-12-05` (the civil-from-days algorithm:
/// no clock crate for one date in a reason).
fn utc_date(ms: i64) -> String {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Adds an update when display name or email differ (`from` is the account's current name);
/// a target whose people own their profiles is told nothing, and the plan says so.
fn update_if_changed(
    d: &mut Draft,
    p: &Person,
    target: &TargetState,
    from: Option<&str>,
    profiles: Profiles,
    product: &str,
) {
    let key = from.map(str::to_string).unwrap_or_else(|| p.username.to_lowercase());
    let Some(current) = target.users.get(&key) else { return };
    let want_display = p.display_name.clone().unwrap_or_else(|| p.username.clone());
    let want_email = p.email.clone().unwrap_or_default();
    let email_differs = current.email.as_deref().unwrap_or("") != want_email;
    if current.display_name == want_display && !email_differs {
        return;
    }
    if profiles == Profiles::ReadOnly {
        d.skipped.push(Skipped {
            subject: current.name.clone(),
            why: format!(
                "{product} accounts are owned by their people: display name and email are not changed by Roster"
            ),
        });
        return;
    }
    if !current.mutable {
        d.skipped.push(Skipped {
            subject: current.name.clone(),
            why: "account is in a read-only directory: details not updated".into(),
        });
        return;
    }
    let mut what = Vec::new();
    if current.display_name != want_display {
        what.push("display name");
    }
    if email_differs {
        what.push("email");
    }
    d.ops.push(PlannedOp {
        op: Op::UpdateUser {
            user: p.username.clone(),
            display_name: want_display,
            email: want_email,
            old_display_name: current.display_name.clone(),
            old_email: current.email.clone(),
        },
        reason: format!("{} changed in {}", what.join(" and "), sources_of(&p.records)),
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::target::{Account, Fields};

    const DEC_5_2026: i64 = 1_796_475_600_000;

    fn person(name: &str, email: Option<&str>) -> Person {
        Person {
            username: name.into(),
            email: email.map(str::to_string),
            display_name: Some(format!("{name} Person")),
            active: true,
            records: vec![("hr".into(), format!("id-{name}"))],
        }
    }

    /// `people` all in `devs`.
    fn desired(people: &[Person]) -> Desired {
        let mut d = Desired::default();
        for p in people {
            d.persons.insert(p.username.to_lowercase(), p.clone());
        }
        d.groups.insert(
            "devs".into(),
            people
                .iter()
                .map(|p| Arc::from(p.username.to_lowercase().as_str()))
                .collect(),
        );
        d
    }

    /// A target with `devs` and the accounts `names` (display name `NAME Person`, email
    /// `NAME@example.com`), none in a group.
    fn target(names: &[&str]) -> TargetState {
        let mut t = TargetState::default();
        t.groups.insert("devs".into());
        for n in names {
            t.users.insert(
                n.to_string(),
                Account {
                    name: n.to_string(),
                    display_name: format!("{n} Person"),
                    email: Some(format!("{n}@example.com")),
                    directory: None,
                    mutable: true,
                    active: true,
                    last_sign_in_ms: None,
                },
            );
        }
        t
    }

    fn linked(names: &[&str]) -> Vec<Identity> {
        names
            .iter()
            .map(|n| Identity {
                source: "hr".into(),
                ext_id: format!("id-{n}"),
                username: n.to_string(),
                state: IdentityState::Active,
            })
            .collect()
    }

    fn capabilities(accounts: Accounts, profiles: Profiles) -> Capabilities {
        Capabilities {
            rename: Rename::Unsupported,
            add_members: AddMembers::OneAtATime,
            disable: Disable::Native,
            fields: Fields {
                max_chars: 255,
                username_forbids: "/",
            },
            groups: Groups::Keep,
            accounts,
            profiles,
        }
    }

    fn run(d: &Desired, t: &TargetState, ids: &[Identity], caps: Capabilities) -> Draft {
        let policy: TargetConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        plan(&PlanInput {
            desired: d,
            target: t,
            capabilities: caps,
            identities: ids,
            managed: &BTreeSet::new(),
            policy: &policy,
            me: "roster",
            product: "Acme Hub",
            now_ms: DEC_5_2026,
        })
    }

    /// An account not signed in to for longer than `inactive.days` is disabled with the date and
    /// the rule in its reason; a recent sign-in, no sign-in recorded, and a protected account are
    /// left alone; an account already disabled for it stays so, saying why.
    #[test]
    fn inactive_accounts_are_disabled_naming_the_date_and_the_rule() {
        let people: Vec<Person> = ["ann", "bob", "cy", "dee", "eve"]
            .iter()
            .map(|n| person(n, Some(&format!("{n}@example.com"))))
            .collect();
        let d = desired(&people);
        let mut t = target(&["ann", "bob", "cy", "dee", "eve"]);
        let day = 86_400_000;
        for (name, last) in [
            ("ann", Some(DEC_5_2026 - 120 * day)),
            ("bob", Some(DEC_5_2026 - 10 * day)),
            ("cy", None),
            ("dee", Some(DEC_5_2026 - 400 * day)),
            ("eve", Some(DEC_5_2026 - 200 * day)),
        ] {
            t.users.get_mut(name).unwrap().last_sign_in_ms = last;
            t.members.entry("devs".into()).or_default().insert(Arc::from(name));
        }
        let mut ids = linked(&["ann", "bob", "cy", "dee", "eve"]);
        ids[4].state = IdentityState::Disabled;
        let policy: TargetConfig = serde_json::from_value(serde_json::json!({
            "inactive": {"days": 90},
            "protected_users": ["dee"],
        }))
        .unwrap();
        policy.validate_policy().unwrap();
        let draft = plan(&PlanInput {
            desired: &d,
            target: &t,
            capabilities: capabilities(Accounts::Create, Profiles::Managed),
            identities: &ids,
            managed: &BTreeSet::new(),
            policy: &policy,
            me: "roster",
            product: "Acme Hub",
            now_ms: DEC_5_2026,
        });
        let deactivated: Vec<(&str, &str)> = draft
            .ops
            .iter()
            .filter_map(|o| match &o.op {
                Op::Deactivate { user, .. } => Some((user.as_str(), o.reason.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            deactivated,
            [("ann", "no sign-in to Acme Hub since 2026-08-07 (inactive.days = 90)")]
        );
        assert!(
            draft.ops.iter().all(|o| o.op.subject() != "dee"),
            "protected: {:?}",
            draft.ops
        );
        assert!(
            why(&draft, "eve")
                .iter()
                .any(|w| w.contains("stays deprovisioned until the person signs in again"))
        );
        assert!(
            !draft
                .ops
                .iter()
                .any(|o| matches!(&o.op, Op::AdoptUser { user, .. } if user == "eve")),
            "not enabled again"
        );

        let bad: TargetConfig = serde_json::from_value(serde_json::json!({"inactive": {"days": 0}})).unwrap();
        assert_eq!(
            bad.validate_policy().unwrap_err(),
            "target inactive.days 0 must be between 1 and 3650"
        );
    }

    fn added(d: &Draft) -> Vec<String> {
        d.ops
            .iter()
            .filter_map(|o| match &o.op {
                Op::AddMembers { users, .. } => Some(users.join(",")),
                _ => None,
            })
            .collect()
    }

    fn why<'a>(d: &'a Draft, subject: &str) -> Vec<&'a str> {
        d.skipped
            .iter()
            .filter(|s| s.subject == subject)
            .map(|s| s.why.as_str())
            .collect()
    }

    #[test]
    fn an_invited_person_gets_their_memberships_once_they_accept() {
        let people = [
            person("ann", Some("ann@example.com")),
            person("bob", Some("bob@example.com")),
            person("cy", None),
        ];
        let (d, t, ids) = (desired(&people), target(&["bob"]), linked(&["bob"]));
        let draft = run(&d, &t, &ids, capabilities(Accounts::Invite, Profiles::ReadOnly));
        let creates: Vec<(&str, &str)> = draft
            .ops
            .iter()
            .filter_map(|o| match &o.op {
                Op::CreateUser { user, .. } => Some((user.as_str(), o.reason.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            creates,
            vec![(
                "ann",
                "new in hr; an invitation is sent to ann@example.com (the account exists once it is accepted)"
            )]
        );
        assert_eq!(
            added(&draft),
            vec!["bob"],
            "ann waits for her acceptance, cy for an email"
        );
        assert_eq!(
            why(&draft, "ann"),
            vec!["invited; memberships follow once the invitation is accepted"]
        );
        let cy = why(&draft, "cy");
        assert!(
            cy.len() == 1 && cy[0].contains("has no email address: Acme Hub accounts come to exist by invitation"),
            "{cy:?}"
        );

        // A target that creates accounts: ann is created and added at once; cy too.
        let draft = run(&d, &t, &ids, capabilities(Accounts::Create, Profiles::Managed));
        let reasons: Vec<&str> = draft
            .ops
            .iter()
            .filter(|o| matches!(o.op, Op::CreateUser { .. }))
            .map(|o| o.reason.as_str())
            .collect();
        assert_eq!(reasons, vec!["new in hr", "new in hr"]);
        assert_eq!(added(&draft), vec!["ann", "bob", "cy"]);
        assert!(draft.skipped.is_empty(), "{:?}", draft.skipped);
    }

    #[test]
    fn a_pending_invitation_is_neither_sent_again_nor_given_memberships() {
        let people = [
            person("ann", Some("ann@example.com")),
            person("bob", Some("bob@example.com")),
        ];
        let mut t = target(&["bob"]);
        for (name, since_ms) in [("ann", Some(DEC_5_2026)), ("dora", None)] {
            t.pending.insert(
                name.into(),
                PendingAccount {
                    email: format!("{name}@example.com"),
                    since_ms,
                    invitation: InvitationState::Open,
                },
            );
        }
        // ann was invited by an earlier run (her identity is linked), dora no longer wanted.
        let draft = run(
            &desired(&people),
            &t,
            &linked(&["ann", "bob"]),
            capabilities(Accounts::Invite, Profiles::ReadOnly),
        );
        let kinds: Vec<(&str, &str)> = draft.ops.iter().map(|o| (o.op.kind(), o.op.subject())).collect();
        assert_eq!(kinds, vec![("add-members", "devs")]);
        assert_eq!(added(&draft), vec!["bob"]);
        assert_eq!(
            why(&draft, "ann"),
            vec![
                "invitation to ann@example.com sent 2026-12-05 is not accepted yet; its memberships follow on the first run after it is accepted"
            ]
        );
        let dora = why(&draft, "dora");
        assert!(
            dora.len() == 1
                && dora[0].starts_with("invitation to dora@example.com is not accepted yet, and no source wants an account for dora any more: nothing is written"),
            "{dora:?}"
        );
    }

    #[test]
    fn read_only_profiles_are_reported_once_and_never_updated() {
        let mut bob = person("bob", Some("robert@example.com"));
        bob.display_name = Some("Robert".into());
        let (d, t, ids) = (desired(&[bob]), target(&["bob"]), linked(&["bob"]));
        let draft = run(&d, &t, &ids, capabilities(Accounts::Invite, Profiles::ReadOnly));
        assert!(
            !draft.ops.iter().any(|o| matches!(o.op, Op::UpdateUser { .. })),
            "{:?}",
            draft.ops
        );
        assert_eq!(
            why(&draft, "bob"),
            vec!["Acme Hub accounts are owned by their people: display name and email are not changed by Roster"]
        );
        let draft = run(&d, &t, &ids, capabilities(Accounts::Create, Profiles::Managed));
        let updates: Vec<&str> = draft
            .ops
            .iter()
            .filter(|o| matches!(o.op, Op::UpdateUser { .. }))
            .map(|o| o.reason.as_str())
            .collect();
        assert_eq!(updates, vec!["display name and email changed in hr"]);
    }

    #[test]
    fn a_changed_username_on_an_invited_account_renames_nothing_and_keeps_it_managed() {
        // bob is robert now in the source; the account stays bob, in devs, and joins ops.
        let robert = Person {
            records: vec![("hr".into(), "id-bob".into())],
            ..person("robert", Some("bob@example.com"))
        };
        let mut d = desired(std::slice::from_ref(&robert));
        d.groups.insert("ops".into(), BTreeSet::from([Arc::from("robert")]));
        let mut t = target(&["bob"]);
        t.groups.insert("ops".into());
        t.members.insert("devs".into(), BTreeSet::from([Arc::from("bob")]));
        let ids = linked(&["bob"]);
        let draft = run(&d, &t, &ids, capabilities(Accounts::Invite, Profiles::ReadOnly));
        let ops: Vec<(&str, String)> = draft
            .ops
            .iter()
            .map(|o| (o.op.kind(), serde_json::to_string(&o.op).unwrap()))
            .collect();
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert_eq!(added(&draft), vec!["bob"], "ops is joined by the account bob");
        let said = &draft.collisions;
        assert!(
            said.len() == 1
                && said[0].subject == "robert"
                && said[0].why.contains("Acme Hub cannot rename accounts")
                && said[0].why.ends_with("Roster goes on managing the account as bob")
                && !said[0].why.contains("by hand"),
            "{said:?}"
        );

        // A target that creates its accounts and cannot rename them: left exactly as it is.
        let draft = run(&d, &t, &ids, capabilities(Accounts::Create, Profiles::Managed));
        assert!(draft.ops.is_empty(), "{:?}", draft.ops);
        assert!(draft.collisions[0].why.contains("rename it in the target by hand"));
    }

    #[test]
    fn dates_in_reasons_are_utc_calendar_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(DEC_5_2026), "2026-12-05");
        assert_eq!(utc_date(-1), "1969-12-31");
    }
}
