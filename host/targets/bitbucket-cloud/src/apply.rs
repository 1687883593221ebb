//! Mode one's operations, as a workspace administered in Bitbucket allows them: groups and
//! memberships through 1.0 `groups` (one member per call), accounts by invitation, and
//! deprovisioning as removal from the workspace's groups — Cloud cannot disable or delete an
//! Atlassian account, which belongs to the person.

use std::collections::BTreeSet;

use roster_engine::Op;
use roster_store::{TargetAccount, now_ms};

use crate::client::slug_of;
use crate::error::CloudError;
use crate::target::BitbucketCloudTarget;

/// The end of every refusal of an operation the planner never makes for this target.
const NOT_FOR_THIS_TARGET: &str = "this plan was not made for this target: reject it and run again";

/// A 404 on removal, or a 409 on creation, means the state is already what the plan wants.
fn already(r: Result<(), CloudError>, status: u16, note: &str) -> Result<Option<String>, CloudError> {
    match r {
        Ok(()) => Ok(None),
        Err(e) if e.status() == Some(status) => Ok(Some(note.to_string())),
        Err(e) => Err(e),
    }
}

/// Whether an error is the target failing rather than this person (as the engine tells them
/// apart): such an error ends the operation at once.
fn stops_run(e: &CloudError) -> bool {
    match e.status() {
        None => true,
        Some(s) => s == 401 || s == 429 || s >= 500,
    }
}

impl BitbucketCloudTarget {
    /// Carries out one operation in a workspace administered in Bitbucket.
    pub(crate) async fn execute(&self, op: &Op) -> Result<Option<String>, CloudError> {
        match op {
            Op::CreateGroup { group } => {
                let note = already(self.client.create_group(group).await, 409, "group already existed")?;
                self.known()
                    .slugs
                    .entry(group.clone())
                    .or_insert_with(|| slug_of(group));
                Ok(note)
            }
            Op::CreateUser { user, email, .. } => self.invite(user, email).await,
            // Taking over an account is the store's business; Cloud has nothing to do.
            Op::AdoptUser { .. } => Ok(None),
            Op::UpdateUser { user, .. } => Err(CloudError::Refused(format!(
                "changing {user}'s display name or email is never planned for Bitbucket Cloud, where people own their Atlassian profiles; {NOT_FOR_THIS_TARGET}"
            ))),
            Op::RenameUser { from, to, .. } => Err(CloudError::Refused(format!(
                "renaming {from} to {to} is never planned for Bitbucket Cloud, which keys accounts by Atlassian account id; {NOT_FOR_THIS_TARGET}"
            ))),
            Op::DeleteGroup { group } => Err(CloudError::Refused(format!(
                "deleting group {group} is never planned for Bitbucket Cloud, which keeps groups; {NOT_FOR_THIS_TARGET}"
            ))),
            Op::AddMembers { group, users } => {
                // One member per call (`AddMembers::OneAtATime`): a longer list is taken one by
                // one, and a person with no account yet does not hold up the others.
                let slug = self.slug(group);
                let mut notes = Vec::new();
                let mut failed: Vec<(String, CloudError)> = Vec::new();
                for user in users {
                    let result = match self.account_id(user).await {
                        Ok(id) => {
                            let r = already(
                                self.client.add_member(&slug, &id).await,
                                409,
                                &format!("{user} was already a member"),
                            );
                            if r.is_ok() {
                                self.known().members.entry(group.clone()).or_default().insert(id);
                            }
                            r
                        }
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(note) => notes.extend(note),
                        Err(e) if stops_run(&e) => return Err(e),
                        Err(e) => failed.push((user.clone(), e)),
                    }
                }
                match failed.len() {
                    0 => Ok((!notes.is_empty()).then(|| notes.join("; "))),
                    1 => Err(failed.remove(0).1),
                    _ => Err(CloudError::NoAccount(format!(
                        "adding to {group} failed for {}",
                        failed
                            .iter()
                            .map(|(u, e)| format!("{u}: {e}"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ))),
                }
            }
            Op::RemoveMember { group, user } => {
                let id = self.account_id(user).await?;
                self.leave(group, &id, "was not a member").await
            }
            Op::Deactivate {
                user,
                groups,
                leave_other_groups,
                // Cloud grants nothing to an account directly that Roster could revoke.
                revoke_permission: _,
            } => {
                let id = self.account_id(user).await?;
                for g in groups {
                    self.leave(g, &id, "").await?;
                }
                if let Some(keep) = leave_other_groups {
                    let listed: BTreeSet<&String> = groups.iter().collect();
                    for g in self.groups_of(&id).await? {
                        if !keep.contains(&g) && !listed.contains(&g) {
                            self.leave(&g, &id, "").await?;
                        }
                    }
                }
                Ok(None)
            }
            Op::DeleteUser { user, .. } => {
                let id = self.account_id(user).await?;
                // Protected groups are never changed, deprovisioning included.
                let (kept, groups): (BTreeSet<String>, BTreeSet<String>) = self
                    .groups_of(&id)
                    .await?
                    .into_iter()
                    .partition(|g| self.protected_groups.contains(g));
                for g in &groups {
                    self.leave(g, &id, "").await?;
                }
                let list = |gs: BTreeSet<String>| gs.into_iter().collect::<Vec<_>>().join(", ");
                let kept = if kept.is_empty() {
                    String::new()
                } else {
                    format!(" (still in the protected groups {})", list(kept))
                };
                Ok(Some(format!(
                    "Bitbucket Cloud cannot delete Atlassian accounts (they belong to the person): {user} was removed from the workspace's groups ({}), and keeps the account{kept}",
                    if groups.is_empty() {
                        "none left".to_string()
                    } else {
                        list(groups)
                    }
                )))
            }
        }
    }

    /// The slug of group `name`: as the last read found it, else as Cloud makes one.
    fn slug(&self, name: &str) -> String {
        self.known().slugs.get(name).cloned().unwrap_or_else(|| slug_of(name))
    }

    /// Removes account `id` from `group` (404: `note`).
    async fn leave(&self, group: &str, id: &str, note: &str) -> Result<Option<String>, CloudError> {
        let r = already(self.client.remove_member(&self.slug(group), id).await, 404, note)?;
        if let Some(m) = self.known().members.get_mut(group) {
            m.remove(id);
        }
        Ok(r.filter(|n| !n.is_empty()))
    }

    /// The groups account `id` is in: as the read before the apply found them (kept up to date
    /// by this target's own changes), else asked (one call for every group).
    async fn groups_of(&self, id: &str) -> Result<BTreeSet<String>, CloudError> {
        {
            let known = self.known();
            if !known.members.is_empty() {
                return Ok(known
                    .members
                    .iter()
                    .filter(|(_, m)| m.contains(id))
                    .map(|(g, _)| g.clone())
                    .collect());
            }
        }
        let groups = self.client.groups().await?;
        let mut known = self.known();
        let mut of = BTreeSet::new();
        for g in groups {
            let ids: BTreeSet<String> = g.members.iter().filter_map(|u| u.account_id.clone()).collect();
            if ids.contains(id) {
                of.insert(g.name.clone());
            }
            known.slugs.insert(g.name.clone(), g.slug);
            known.members.insert(g.name, ids);
        }
        Ok(of)
    }

    /// The account id of `key`: a Roster name the store maps, or an account id itself (accounts
    /// with no Roster name are keyed by it).
    async fn account_id(&self, key: &str) -> Result<String, CloudError> {
        let key = key.to_lowercase();
        if let Some(id) = self.known().accounts.get(&key) {
            return Ok(id.clone());
        }
        let (target, name) = (self.target_id.clone(), key.clone());
        let stored = self
            .store
            .blocking(move |s| s.target_accounts(&target))
            .await?
            .into_iter()
            .find(|a| a.name == name);
        match stored {
            Some(TargetAccount {
                account_id: Some(id), ..
            }) => Ok(id),
            Some(TargetAccount { email, .. }) => Err(CloudError::NoAccount(format!(
                "{key} has no Atlassian account in workspace {} yet{}: the membership is given by a run after they accept",
                self.settings.workspace,
                email.map(|e| format!(" (invited as {e})")).unwrap_or_default()
            ))),
            None => Err(CloudError::NoAccount(format!(
                "no Atlassian account in workspace {} is known as {key}: read the target again (the next run plans from what it holds)",
                self.settings.workspace
            ))),
        }
    }

    /// Invites `email` into the invitation group, and remembers that `user` was invited.
    async fn invite(&self, user: &str, email: &str) -> Result<Option<String>, CloudError> {
        let Some(group) = self.invite_group.clone() else {
            return Err(CloudError::Refused(
                "no invite_group is configured (nor a default group): Roster cannot invite anyone".into(),
            ));
        };
        // When the invitation was sent: now, unless Cloud says one was out already.
        let (note, sent_now) = match self.client.invite(email, &self.slug(&group)).await {
            Ok(()) => (
                format!("invited {email} into {group}; the account exists once they accept"),
                Some(now_ms()),
            ),
            Err(e) if e.status() == Some(409) => (format!("{email} was already invited into {group}"), None),
            Err(e) => return Err(e),
        };
        let (target, name) = (self.target_id.clone(), user.to_lowercase());
        let email = email.to_string();
        self.store
            .blocking(move |s| {
                let before = s.target_accounts(&target)?.into_iter().find(|a| a.name == name);
                // An address that changed loses the account found by the old one.
                let same = before
                    .as_ref()
                    .is_some_and(|b| b.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email)));
                s.put_target_account(
                    &target,
                    &TargetAccount {
                        account_id: before.as_ref().filter(|_| same).and_then(|b| b.account_id.clone()),
                        invited_at: sent_now
                            .or_else(|| before.as_ref().filter(|_| same).and_then(|b| b.invited_at))
                            .or(Some(now_ms())),
                        name,
                        email: Some(email),
                    },
                )
            })
            .await?;
        Ok(Some(note))
    }
}
