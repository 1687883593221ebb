//! Mode one's read: the workspace's members, groups, owners and pending invitations, in the
//! engine's terms. Atlassian accounts are keyed by account id; an account is keyed by Roster's
//! lower-case name only when the store knows it is that person's (found by email), and by its
//! account id otherwise — never by a Roster name it merely resembles.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use roster_engine::{Account, InvitationState, PendingAccount, ReadScope, Seats, TargetState};
use roster_store::TargetAccount;

use crate::client::{CloudUser, EMAILS_PER_CALL, Invitation};
use crate::error::CloudError;
use crate::target::{BitbucketCloudTarget, Known, Mode};

/// How long an invitation that closed without anyone joining under its address stays unsent:
/// a week, so a person who declined or let it expire is asked again, but not every run.
const REINVITE_AFTER_MS: i64 = 7 * 24 * 3600 * 1000;

/// How the workspace answered the probe of where it is administered.
pub(crate) enum Administered {
    /// In Bitbucket: the pending invitations.
    Bitbucket(Vec<Invitation>),
    /// At admin.atlassian.com.
    AdminHub,
}

impl BitbucketCloudTarget {
    /// Probes `GET /1.0/users/{ws}/invitations`: 200 → administered in Bitbucket; 403 naming
    /// admin.atlassian.com → moved. Atlassian documents that the endpoint is disabled after the
    /// move (announcement 2025-09-19) but not its exact answer: the 403 with Cloud's error body
    /// naming admin.atlassian.com is Roster's assumption (the simulator answers so).
    pub(crate) async fn administered(&self) -> Result<Administered, CloudError> {
        match self.client.invitations().await {
            Ok(i) => Ok(Administered::Bitbucket(i)),
            Err(CloudError::Api {
                status: 403, message, ..
            }) if message.contains("admin.atlassian.com") => Ok(Administered::AdminHub),
            Err(e) => Err(e),
        }
    }

    /// The error when the workspace is administered elsewhere than configured.
    pub(crate) fn mismatch(&self, found: &Administered) -> CloudError {
        let ws = &self.settings.workspace;
        CloudError::Mode(match found {
            Administered::AdminHub => format!(
                "workspace {ws} is administered at admin.atlassian.com: its groups are read-only and invitations are disabled; add [target.scim] with directory_id and api_key (admin.atlassian.com → Settings → User provisioning → directory API key)"
            ),
            Administered::Bitbucket(_) => format!(
                "workspace {ws} is still administered in Bitbucket; remove [target.scim] (Roster invites people and manages groups through Bitbucket's 1.0 API)"
            ),
        })
    }

    /// The invitations, when the workspace is administered in Bitbucket as configured.
    async fn invitations_in_mode_one(&self) -> Result<Vec<Invitation>, CloudError> {
        match self.administered().await? {
            Administered::Bitbucket(i) => Ok(i),
            other => Err(self.mismatch(&other)),
        }
    }

    /// Checks the workspace is administered at admin.atlassian.com, as configured.
    async fn in_mode_two(&self) -> Result<(), CloudError> {
        match self.administered().await? {
            Administered::AdminHub => Ok(()),
            other => Err(self.mismatch(&other)),
        }
    }

    /// Everything the plan needs.
    pub(crate) async fn read_state(&self, scope: &ReadScope<'_>) -> Result<TargetState, CloudError> {
        if let Mode::Scim(scim) = &self.mode {
            self.in_mode_two().await?;
            return scim.read(scope, &self.settings).await;
        }
        let invitations = self.invitations_in_mode_one().await?;
        let members = self.client.members().await?;
        let groups = self.client.groups().await?;
        let owners = self.client.owners().await?;
        let mapping = self.learn(scope.people).await?;
        let mut state = self.state(
            &mapping,
            scope.people,
            groups,
            owners.into_iter().map(|p| p.user),
            &invitations,
        );
        for m in members {
            self.add_user(&mut state, &mapping, &m.user);
        }
        // An account that joined is no longer pending, whatever invitation is left over.
        state.pending.retain(|name, _| !state.users.contains_key(name));
        // An open invitation takes its seat once accepted, as the guard counts those a plan
        // sends: counted here, invitations spread over runs cannot take the plan over `seats`.
        let open = state
            .pending
            .values()
            .filter(|p| p.invitation == InvitationState::Open)
            .count();
        state.seats = Seats {
            in_use: Some((state.users.len() + open) as i64),
            limit: self.settings.seats,
        };
        Ok(state)
    }

    /// The same, for `names` (single-user sync): their accounts found by the addresses the store
    /// knows, their memberships (one call for every group), the owners, their invitations.
    pub(crate) async fn read_names(
        &self,
        names: &BTreeSet<String>,
        groups: &BTreeSet<String>,
    ) -> Result<TargetState, CloudError> {
        if let Mode::Scim(scim) = &self.mode {
            self.in_mode_two().await?;
            return scim.read_accounts(names, groups, &self.settings).await;
        }
        // Every group's members come in one call: `groups` needs no call of its own.
        let invitations = self.invitations_in_mode_one().await?;
        let groups = self.client.groups().await?;
        let owners = self.client.owners().await?;
        let people: BTreeMap<String, Option<String>> = names.iter().map(|n| (n.clone(), None)).collect();
        let mapping = self.learn(&people).await?;
        let wanted: BTreeSet<&str> = mapping
            .by_id
            .iter()
            .filter(|(_, a)| names.contains(&a.name))
            .map(|(id, _)| id.as_str())
            .collect();
        let group_users: Vec<CloudUser> = groups.iter().flat_map(|g| g.members.iter().cloned()).collect();
        let mut state = self.state(
            &mapping,
            &people,
            groups,
            owners.into_iter().map(|p| p.user),
            &invitations,
        );
        for u in &group_users {
            if u.account_id.as_deref().is_some_and(|id| wanted.contains(id)) {
                self.add_user(&mut state, &mapping, u);
            }
        }
        state
            .pending
            .retain(|name, _| !state.users.contains_key(name) && names.contains(name));
        state.seats = Seats {
            in_use: None,
            limit: self.settings.seats,
        };
        Ok(state)
    }

    /// The account mapping, after asking Cloud for the accounts of every address whose account
    /// is not known yet: the desired people's (`people`), those Roster invited, and Roster's own
    /// when it signs in with an email.
    async fn learn(&self, people: &BTreeMap<String, Option<String>>) -> Result<Mapping, CloudError> {
        let id = self.target_id.clone();
        let mut stored: BTreeMap<String, TargetAccount> = self
            .store
            .blocking(move |s| s.target_accounts(&id))
            .await?
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        // Lower-case address → the names it may be (first one wins a shared address).
        let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, email) in people {
            let known = stored.get(name).and_then(|a| a.account_id.as_ref()).is_some();
            if let (false, Some(email)) = (known, email) {
                unknown.entry(email.to_lowercase()).or_default().push(name.clone());
            }
        }
        for a in stored.values() {
            if let (None, Some(email)) = (&a.account_id, &a.email) {
                let names = unknown.entry(email.to_lowercase()).or_default();
                if !names.contains(&a.name) {
                    names.push(a.name.clone());
                }
            }
        }
        let me = self.settings.username.to_lowercase();
        if me.contains('@') && stored.get(&me).is_none_or(|a| a.account_id.is_none()) {
            unknown.entry(me.clone()).or_default().push(me.clone());
        }
        let emails: Vec<String> = unknown.keys().cloned().collect();
        for chunk in emails.chunks(EMAILS_PER_CALL) {
            for m in self.client.members_by_email(chunk).await? {
                let (Some(email), Some(account_id)) = (m.user.email.as_ref(), m.user.account_id.as_ref()) else {
                    continue;
                };
                let Some(name) = unknown.get(&email.to_lowercase()).and_then(|n| n.first()) else {
                    continue;
                };
                let account = TargetAccount {
                    name: name.clone(),
                    email: Some(email.clone()),
                    account_id: Some(account_id.clone()),
                    invited_at: stored.get(name).and_then(|a| a.invited_at),
                };
                let (id, a) = (self.target_id.clone(), account.clone());
                self.store.blocking(move |s| s.put_target_account(&id, &a)).await?;
                stored.insert(name.clone(), account);
            }
        }
        let mut by_id = BTreeMap::new();
        for a in stored.values() {
            if let Some(id) = a.account_id.clone() {
                by_id.entry(id).or_insert_with(|| a.clone());
            }
        }
        Ok(Mapping {
            by_id,
            all: stored.into_values().collect(),
        })
    }

    /// The key of an account: the Roster name the store maps it to, Roster's own username for
    /// the account Roster signs in as, else its account id (lower-case).
    fn key_of(&self, mapping: &Mapping, user: &CloudUser) -> Option<String> {
        let id = user.account_id.as_ref()?;
        if let Some(a) = mapping.by_id.get(id) {
            return Some(a.name.clone());
        }
        let me = &self.settings.username;
        if user.nickname.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(me)) {
            return Some(me.to_lowercase());
        }
        Some(id.to_lowercase())
    }

    fn add_user(&self, state: &mut TargetState, mapping: &Mapping, user: &CloudUser) {
        let Some(key) = self.key_of(mapping, user) else { return };
        let mapped = user.account_id.as_ref().and_then(|id| mapping.by_id.get(id));
        let account = Account {
            name: match mapped {
                Some(a) => a.name.clone(),
                None if key == self.settings.username.to_lowercase() => self.settings.username.clone(),
                None => user.account_id.clone().unwrap_or_default(),
            },
            display_name: user.display_name.clone().unwrap_or_default(),
            email: mapped.and_then(|a| a.email.clone()).or_else(|| user.email.clone()),
            directory: None,
            // The person owns an Atlassian account's profile.
            mutable: false,
            active: true,
            last_sign_in_ms: None,
        };
        if let Some(id) = &user.account_id {
            self.known().accounts.insert(key.clone(), id.clone());
        }
        state.users.entry(key).or_insert(account);
    }

    /// Groups, memberships, owners and invitations in the engine's terms (users are added by
    /// the caller).
    fn state(
        &self,
        mapping: &Mapping,
        people: &BTreeMap<String, Option<String>>,
        groups: Vec<crate::client::Group>,
        owners: impl Iterator<Item = CloudUser>,
        invitations: &[Invitation],
    ) -> TargetState {
        let mut state = TargetState::default();
        let mut known = Known::default();
        let mut interned: HashMap<String, Arc<str>> = HashMap::new();
        for g in groups {
            let mut members = BTreeSet::new();
            let mut ids = BTreeSet::new();
            for u in &g.members {
                if let (Some(key), Some(id)) = (self.key_of(mapping, u), &u.account_id) {
                    let k = interned.entry(key.clone()).or_insert_with(|| Arc::from(key.as_str()));
                    members.insert(k.clone());
                    ids.insert(id.clone());
                    known.accounts.insert(key, id.clone());
                }
            }
            // Cloud's group permissions: `admin` administers the workspace; any permission
            // gives access to its repositories, so a member counts as a user.
            match g.permission.as_deref() {
                Some("admin") => {
                    state.admin_groups.insert(g.name.clone());
                    state.licensing_groups.insert(g.name.clone());
                }
                Some(_) => {
                    state.licensing_groups.insert(g.name.clone());
                }
                None => {}
            }
            known.slugs.insert(g.name.clone(), g.slug.clone());
            known.members.insert(g.name.clone(), ids);
            state.members.insert(g.name.clone(), members);
            state.groups.insert(g.name);
        }
        for u in owners {
            if let Some(key) = self.key_of(mapping, &u) {
                state.admins.insert(key);
            }
        }
        // Invitations by address → the Roster name they are for (the store's record first,
        // then the desired people's addresses).
        let mut names_by_email: BTreeMap<String, String> = BTreeMap::new();
        for (name, email) in people {
            if let Some(e) = email {
                names_by_email.entry(e.to_lowercase()).or_insert_with(|| name.clone());
            }
        }
        let invited_at: BTreeMap<String, Option<i64>> = mapping
            .all
            .iter()
            .filter_map(|a| {
                let e = a.email.as_ref()?.to_lowercase();
                names_by_email.insert(e.clone(), a.name.clone());
                Some((e, a.invited_at))
            })
            .collect();
        for i in invitations {
            let e = i.email.to_lowercase();
            if let Some(name) = names_by_email.get(&e) {
                let since_ms = i
                    .utc_sent_on
                    .as_deref()
                    .and_then(parse_time)
                    .or_else(|| invited_at.get(&e).copied().flatten());
                state.pending.insert(
                    name.clone(),
                    PendingAccount {
                        email: i.email.clone(),
                        since_ms,
                        invitation: InvitationState::Open,
                    },
                );
            }
        }
        // Invited, no longer listed, and no member has the address: answered under another
        // address, declined or expired. Inviting again every run would mail the person every
        // run; once a while has passed it is sent again.
        let now = roster_store::now_ms();
        for a in &mapping.all {
            let (None, Some(email), Some(sent)) = (&a.account_id, &a.email, a.invited_at) else {
                continue;
            };
            if state.pending.contains_key(&a.name) || now.saturating_sub(sent) >= REINVITE_AFTER_MS {
                continue;
            }
            state.pending.insert(
                a.name.clone(),
                PendingAccount {
                    email: email.clone(),
                    since_ms: Some(sent),
                    invitation: InvitationState::Closed,
                },
            );
        }
        // Accounts seen before stay known: a single-user read sees only some.
        let mut k = self.known();
        let before = std::mem::take(&mut k.accounts);
        known.accounts.extend(before);
        *k = known;
        state
    }
}

/// The store's account records: by account id (those found), and all of them.
struct Mapping {
    by_id: BTreeMap<String, TargetAccount>,
    all: Vec<TargetAccount>,
}

/// 1.0's `utc_sent_on`, as ms since the epoch: RFC 3339, or with a space for the `T`.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)))
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_times_in_either_form() {
        assert_eq!(parse_time("1970-01-01T00:00:01+00:00"), Some(1000));
        assert_eq!(parse_time("1970-01-01 00:00:01.5+00:00"), Some(1500));
        assert_eq!(parse_time("yesterday"), None);
    }
}
