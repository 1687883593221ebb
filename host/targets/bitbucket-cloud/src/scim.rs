//! Mode two: a workspace administered at admin.atlassian.com. Bitbucket's 1.0 groups are
//! read-only there and its invitations disabled, so users and groups go through Atlassian's
//! user-provisioning SCIM API (developer.atlassian.com/cloud/admin/user-provisioning/rest/intro/;
//! vendor-apis.md §3): `/scim/directory/{directoryId}/Users|Groups` with the directory API key
//! as a bearer token. A directory user who is active and in a group granting Bitbucket (the
//! settings' `licensed_groups`) takes a seat.
//!
//! The directory names users by an id of its own, and its `userName` is the person's email
//! address, not Roster's name. Which user is which Roster name is found by email (the desired
//! people's addresses) and remembered in the store (`target_accounts`, the id as `scim:<id>` so
//! it is never taken for mode one's Atlassian account ids); a user no Roster name is known for
//! is keyed by its `userName`, lower-cased. The last read also leaves each name's and each
//! group's id in memory, and an operation on a name it does not hold asks the store, then the
//! directory (`filter=userName eq "…"`), before it gives up.

mod names;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use reqwest::Method;
use roster_engine::{
    Account, Accounts, AddMembers, Capabilities, Disable, Fields, Groups, Op, Profiles, ReadScope, Rename, Seats,
    TargetState,
};
use roster_scim::{GroupRecord, MemberKind, UserRecord};
use roster_store::{Store, TargetAccount};
use serde_json::Value;

use crate::check::Checked;
use crate::error::CloudError;
use crate::http::{Api, Body};
use crate::settings::{ScimSettings, Settings};

use wire::{Listing, Path};

/// Members one PATCH of a group adds: the planner batches by the policy's `batch_size`, and a
/// larger batch is split so no request grows past what a SCIM service takes in one body.
const MEMBERS_PER_PATCH: usize = 100;

/// Pages after which a listing is taken to be endless (ten million resources).
const MAX_PAGES: usize = 100_000;

/// A directory user, as the last read or write saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UserRef {
    /// The directory's id.
    id: String,
    /// Active (deactivated users stay in the directory).
    active: bool,
}

/// Names to ids, from the last read and the writes since.
#[derive(Debug, Default)]
struct Ids {
    /// Key (Roster's lower-case name, else the lower-case `userName`) → the user.
    users: HashMap<String, UserRef>,
    /// Group `displayName` → id.
    groups: HashMap<String, String>,
    /// Lower-case Roster name → email, from the reads' scopes: how a name not found yet is
    /// looked up.
    emails: HashMap<String, String>,
}

/// The SCIM directory of the workspace's organisation.
pub(crate) struct Scim {
    api: Api,
    directory_id: String,
    path: Path,
    store: Arc<Store>,
    target_id: String,
    ids: Mutex<Ids>,
}

impl Scim {
    /// The directory `settings` names, reached through `api` (its base URL and bearer key);
    /// which user is which Roster name is remembered in `store` under `target_id`.
    pub(crate) fn new(settings: &ScimSettings, api: Api, store: Arc<Store>, target_id: &str) -> Scim {
        Scim {
            api,
            directory_id: settings.directory_id.clone(),
            path: Path::new(&settings.directory_id),
            store,
            target_id: target_id.to_string(),
            ids: Mutex::new(Ids::default()),
        }
    }

    /// The API it calls (for the run's call counts).
    pub(crate) fn api(&self) -> &Api {
        &self.api
    }

    /// What the target can do in this mode: SCIM creates, updates and deactivates users itself
    /// and adds many members per call; it cannot rename (Atlassian accounts are keyed by account
    /// id, and the directory's `userName` is the person's sign-in address), and groups Roster
    /// made are kept, since an administrator may have granted them products.
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

    fn ids(&self) -> MutexGuard<'_, Ids> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory's users and groups in the engine's terms: every user and group, the members
    /// of `scope.groups` and of the licensing and administrators' groups, and the seats the
    /// licensed groups' active members take.
    pub(crate) async fn read(&self, scope: &ReadScope<'_>, settings: &Settings) -> Result<TargetState, CloudError> {
        let (users, groups) = tokio::try_join!(self.all_users(), self.all_groups())?;
        let wanted = wanted(scope.groups, settings);
        let groups = self.with_members(groups, &wanted).await?;
        let emails = {
            let mut ids = self.ids();
            for (name, email) in scope.people {
                if let Some(e) = email {
                    ids.emails.insert(name.clone(), e.clone());
                }
            }
            ids.emails.clone()
        };
        let keys = self.keys(&users, &emails).await?;
        {
            let mut ids = self.ids();
            ids.users = users
                .iter()
                .filter_map(|u| keys.get(&u.id).map(|k| (k.clone(), user_ref(u))))
                .collect();
            ids.groups = groups.iter().map(|g| (g.display_name.clone(), g.id.clone())).collect();
        }
        Ok(state(&users, &keys, &groups, &wanted, None, settings))
    }

    /// The same, as far as the accounts `names` (lower-case) are concerned: each looked up on
    /// its own, with their memberships of `groups` and of the licensing groups.
    pub(crate) async fn read_accounts(
        &self,
        names: &BTreeSet<String>,
        groups: &BTreeSet<String>,
        settings: &Settings,
    ) -> Result<TargetState, CloudError> {
        let mut users = Vec::new();
        let mut keys = HashMap::new();
        for name in names {
            if let Some(u) = self.lookup(name).await? {
                keys.insert(u.id.clone(), name.clone());
                self.ids().users.insert(name.clone(), user_ref(&u));
                users.push(u);
            }
        }
        let wanted = wanted(groups, settings);
        let all = self.with_members(self.all_groups().await?, &wanted).await?;
        {
            let mut ids = self.ids();
            for g in &all {
                ids.groups.insert(g.display_name.clone(), g.id.clone());
            }
        }
        Ok(state(&users, &keys, &all, &wanted, Some(names), settings))
    }

    /// The key of every user (by id): the Roster name the store remembers for it, else the name
    /// of the desired person whose address it has (then remembered), else its `userName`.
    async fn keys(
        &self,
        users: &[UserRecord],
        emails: &HashMap<String, String>,
    ) -> Result<HashMap<String, String>, CloudError> {
        let id = self.target_id.clone();
        let stored = self.store.blocking(move |s| s.target_accounts(&id)).await?;
        let found = names::assign(users, &stored, emails);
        for account in found.learned {
            let id = self.target_id.clone();
            self.store
                .blocking(move |s| s.put_target_account(&id, &account))
                .await?;
        }
        Ok(found.keys)
    }

    /// Every user, page by page.
    async fn all_users(&self) -> Result<Vec<UserRecord>, CloudError> {
        let endpoint = self.path.endpoint(&Method::GET, Listing::Users);
        self.list(Listing::Users, None)
            .await?
            .iter()
            .enumerate()
            .map(|(i, r)| {
                roster_scim::user_record(r).map_err(|e| self.malformed(&endpoint, &format!("user {i}"), &e.detail))
            })
            .collect()
    }

    /// Every group, page by page, each with whether its members were listed.
    async fn all_groups(&self) -> Result<Vec<(GroupRecord, bool)>, CloudError> {
        let endpoint = self.path.endpoint(&Method::GET, Listing::Groups);
        self.list(Listing::Groups, None)
            .await?
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let listed = r.get("members").is_some_and(|m| !m.is_null());
                roster_scim::group_record(r)
                    .map(|g| (g, listed))
                    .map_err(|e| self.malformed(&endpoint, &format!("group {i}"), &e.detail))
            })
            .collect()
    }

    /// The groups; those in `wanted` listed without their members are read one by one (a SCIM
    /// service may leave `members` out of listings).
    async fn with_members(
        &self,
        groups: Vec<(GroupRecord, bool)>,
        wanted: &BTreeSet<String>,
    ) -> Result<Vec<GroupRecord>, CloudError> {
        let mut out = Vec::with_capacity(groups.len());
        for (g, listed) in groups {
            if listed || !wanted.contains(&g.display_name) {
                out.push(g);
                continue;
            }
            let endpoint = self.path.endpoint(&Method::GET, Listing::Group);
            let body: Value = self
                .api
                .get(&endpoint, &self.path.group(&g.id), &[])
                .await
                .map_err(|e| self.explain(e))?;
            out.push(
                roster_scim::group_record(&body)
                    .map_err(|e| self.malformed(&endpoint, &format!("group {}", g.display_name), &e.detail))?,
            );
        }
        Ok(out)
    }

    /// Every resource of a listing (`filter` narrows it), following `startIndex` until
    /// `totalResults` is reached. The next page starts after what this one held, so a service
    /// that caps `count` below what was asked is still read whole; a resource listed twice (the
    /// directory changed between pages) is kept once. One missed that way is harmless: every
    /// write Roster would make for it is one the directory already holds (409 on creation is
    /// linked, members are added idempotently), and nothing is taken away for an absence.
    async fn list(&self, listing: Listing, filter: Option<&str>) -> Result<Vec<Value>, CloudError> {
        let endpoint = self.path.endpoint(&Method::GET, listing);
        let path = self.path.listing(listing);
        let mut out: Vec<Value> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut start: u64 = 1;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("startIndex", start.to_string()), ("count", wire::PAGE.to_string())];
            if let Some(f) = filter {
                query.push(("filter", f.to_string()));
            }
            let body: Value = self
                .api
                .get(&endpoint, &path, &query)
                .await
                .map_err(|e| self.explain(e))?;
            let page = roster_scim::ListResponse::parse(&body)
                .map_err(|e| self.malformed(&endpoint, &format!("the page at startIndex={start}"), &e.detail))?;
            let got = page.resources.len() as u64;
            if got == 0 {
                if start.saturating_sub(1) < page.total_results {
                    return Err(self.malformed(
                        &endpoint,
                        &format!("the page at startIndex={start}"),
                        &format!(
                            "no resources, though totalResults is {}; the listing ended early (the next run reads it again)",
                            page.total_results
                        ),
                    ));
                }
                return Ok(out);
            }
            for r in page.resources {
                let id = r.get("id").and_then(Value::as_str).map(str::to_string);
                if id.is_none_or(|id| seen.insert(id)) {
                    out.push(r);
                }
            }
            // Our own index, not the page's: a service that echoes a wrong startIndex cannot
            // hold the read on one page.
            start = start.saturating_add(got);
            if start.saturating_sub(1) >= page.total_results {
                return Ok(out);
            }
        }
        Err(self.malformed(
            &endpoint,
            "the listing",
            &format!("still going after {MAX_PAGES} pages of {}", wire::PAGE),
        ))
    }

    /// The user whose `userName` is `user_name` (any case), asked of the directory.
    async fn find_user(&self, user_name: &str) -> Result<Option<UserRecord>, CloudError> {
        let endpoint = self.path.endpoint(&Method::GET, Listing::Users);
        let found = self
            .list(Listing::Users, Some(&wire::eq("userName", user_name)))
            .await?;
        found
            .iter()
            .map(|r| roster_scim::user_record(r).map_err(|e| self.malformed(&endpoint, "a filtered user", &e.detail)))
            .find(|u| u.as_ref().map_or(true, |u| u.user_name.eq_ignore_ascii_case(user_name)))
            .transpose()
    }

    /// The user with the directory id `id`, if it still exists.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, CloudError> {
        let endpoint = self.path.endpoint(&Method::GET, Listing::User);
        match self.api.get::<Value>(&endpoint, &self.path.user(id), &[]).await {
            Ok(body) => roster_scim::user_record(&body)
                .map(Some)
                .map_err(|e| self.malformed(&endpoint, "the user", &e.detail)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(self.explain(e)),
        }
    }

    /// The user Roster's `name` (lower-case) is, without the last read: the id the store
    /// remembers, else a user named so, else one with the address the name is known by (then
    /// remembered).
    async fn lookup(&self, name: &str) -> Result<Option<UserRecord>, CloudError> {
        let (id, key) = (self.target_id.clone(), name.to_string());
        let stored = self
            .store
            .blocking(move |s| s.target_accounts(&id))
            .await?
            .into_iter()
            .find(|a| a.name == key);
        if let Some(id) = stored
            .as_ref()
            .and_then(|a| a.account_id.as_deref())
            .and_then(names::scim_id)
            && let Some(u) = self.user_by_id(id).await?
        {
            return Ok(Some(u));
        }
        if let Some(u) = self.find_user(name).await? {
            return Ok(Some(u));
        }
        let email = self
            .ids()
            .emails
            .get(name)
            .cloned()
            .or_else(|| stored.and_then(|a| a.email));
        let Some(email) = email.filter(|e| !e.eq_ignore_ascii_case(name)) else {
            return Ok(None);
        };
        let found = self.find_user(&email).await?;
        if let Some(u) = &found {
            self.remember(name, &email, &u.id).await?;
        }
        Ok(found)
    }

    /// Remembers that Roster's `name` is the directory user `id`.
    async fn remember(&self, name: &str, email: &str, id: &str) -> Result<(), CloudError> {
        let (target, account) = (
            self.target_id.clone(),
            TargetAccount {
                name: name.to_lowercase(),
                email: (!email.is_empty()).then(|| email.to_string()),
                account_id: Some(names::stored_id(id)),
                invited_at: None,
            },
        );
        self.store
            .blocking(move |s| s.put_target_account(&target, &account))
            .await?;
        Ok(())
    }

    /// The user `name` is: from the last read, else looked up.
    async fn user(&self, name: &str) -> Result<Option<UserRef>, CloudError> {
        let key = name.to_lowercase();
        if let Some(u) = self.ids().users.get(&key) {
            return Ok(Some(u.clone()));
        }
        let Some(found) = self.lookup(&key).await? else {
            return Ok(None);
        };
        let u = user_ref(&found);
        self.ids().users.insert(key, u.clone());
        Ok(Some(u))
    }

    /// The user `name` is, or the error saying the directory has none.
    async fn existing_user(&self, name: &str, what: &str) -> Result<UserRef, CloudError> {
        self.user(name).await?.ok_or_else(|| {
            CloudError::Refused(format!(
                "cannot {what}: SCIM directory {} has no user for {name} (removed since the plan was made?); the next run plans it again",
                self.directory_id
            ))
        })
    }

    /// The id of the group named `name`: from the last read, else asked of the directory.
    async fn group_id(&self, name: &str) -> Result<Option<String>, CloudError> {
        if let Some(id) = self.ids().groups.get(name) {
            return Ok(Some(id.clone()));
        }
        let endpoint = self.path.endpoint(&Method::GET, Listing::Groups);
        let found = self.list(Listing::Groups, Some(&wire::eq("displayName", name))).await?;
        let id = found
            .iter()
            .map(|r| roster_scim::group_record(r).map_err(|e| self.malformed(&endpoint, "a filtered group", &e.detail)))
            .find(|g| g.as_ref().map_or(true, |g| g.display_name.eq_ignore_ascii_case(name)))
            .transpose()?
            .map(|g| g.id);
        if let Some(id) = &id {
            self.ids().groups.insert(name.to_string(), id.clone());
        }
        Ok(id)
    }

    /// Carries out one operation.
    pub(crate) async fn apply(&self, op: &Op) -> Result<Option<String>, CloudError> {
        match op {
            Op::CreateUser {
                user,
                display_name,
                email,
                ..
            } => self.create_user(user, display_name, email).await,
            Op::AdoptUser { user, .. } => self.adopt(user).await,
            Op::UpdateUser {
                user,
                display_name,
                email,
                ..
            } => {
                let u = self.existing_user(user, &format!("update {user}")).await?;
                self.patch_user(&u.id, wire::update_user(display_name, email)).await?;
                Ok(None)
            }
            Op::Deactivate {
                user,
                groups,
                leave_other_groups,
                ..
            } => self.deactivate(user, groups, leave_other_groups.as_deref()).await,
            Op::DeleteUser { user, erase } => self.delete_user(user, *erase).await,
            Op::CreateGroup { group } => self.create_group(group).await,
            Op::AddMembers { group, users } => self.add_members(group, users).await,
            Op::RemoveMember { group, user } => self.remove_member(group, user).await,
            // Not planned for this target (Rename::Unsupported, Groups::Keep): said, not sent.
            Op::RenameUser { from, to, .. } => Err(CloudError::Refused(format!(
                "cannot rename {from} to {to}: Atlassian accounts are keyed by account id and the directory's userName is the person's address; Roster does not rename on Bitbucket Cloud"
            ))),
            Op::DeleteGroup { group } => Err(CloudError::Refused(format!(
                "cannot delete group {group}: on Bitbucket Cloud Roster keeps the groups it made (an administrator may have granted them products at admin.atlassian.com); delete it there if it is no longer needed"
            ))),
        }
    }

    async fn create_user(&self, user: &str, display_name: &str, email: &str) -> Result<Option<String>, CloudError> {
        let endpoint = self.path.endpoint(&Method::POST, Listing::Users);
        // Atlassian's directory signs people in by address: the userName is the email when
        // there is one, and Roster's name is kept in the store.
        let user_name = if email.is_empty() { user } else { email };
        let body = wire::new_user(user_name, display_name, email);
        let sent = self
            .api
            .send(
                Method::POST,
                &endpoint,
                &self.path.listing(Listing::Users),
                &[],
                &Body::Json(body),
            )
            .await;
        let (rec, note) = match sent {
            Ok(bytes) => {
                let created: Value = self.api.decode(&endpoint, &bytes)?;
                let rec = roster_scim::user_record(&created)
                    .map_err(|e| self.malformed(&endpoint, &format!("the user {user} created"), &e.detail))?;
                (rec, None)
            }
            Err(e) if e.status() == Some(409) => {
                // Taken: by a user of this directory (an earlier run stopped before it recorded
                // the creation, or the person was provisioned by hand) — then it is the person's
                // — or by an account another directory or organisation manages.
                let Some(rec) = self.find_user(user_name).await? else {
                    return Err(CloudError::Refused(format!(
                        "SCIM directory {} refuses to create {user} <{email}>: {e}. The address belongs to an Atlassian account another directory or organisation manages: claim its domain at admin.atlassian.com (Settings → Domains), or give {user} another address in the identity provider",
                        self.directory_id
                    )));
                };
                if !rec.active {
                    self.patch_user(&rec.id, wire::active(true)).await?;
                }
                let note = format!(
                    "{user_name} already existed in SCIM directory {} (an earlier run, or provisioned by hand); linked{}",
                    self.directory_id,
                    if rec.active { "" } else { " and activated" }
                );
                (UserRecord { active: true, ..rec }, Some(note))
            }
            Err(e) => return Err(self.explain(e)),
        };
        self.remember(user, email, &rec.id).await?;
        self.ids().users.insert(user.to_lowercase(), user_ref(&rec));
        Ok(note)
    }

    /// An account Roster takes over (adopted, relinked, or enabled again in the identity
    /// provider): activated when it was deactivated, else nothing to write.
    async fn adopt(&self, user: &str) -> Result<Option<String>, CloudError> {
        let u = self.existing_user(user, &format!("adopt {user}")).await?;
        if u.active {
            return Ok(None);
        }
        self.patch_user(&u.id, wire::active(true)).await?;
        self.set_active(user, true);
        Ok(Some(format!(
            "{user} activated again in SCIM directory {}",
            self.directory_id
        )))
    }

    async fn deactivate(
        &self,
        user: &str,
        groups: &[String],
        leave_other_groups: Option<&[String]>,
    ) -> Result<Option<String>, CloudError> {
        let u = self.existing_user(user, &format!("deactivate {user}")).await?;
        for g in groups {
            self.remove_member(g, user).await?;
        }
        if let Some(keep) = leave_other_groups {
            for g in self.groups_of(&u.id).await? {
                if !keep.contains(&g) {
                    self.remove_member(&g, user).await?;
                }
            }
        }
        if !u.active {
            return Ok(Some(format!("{user} was deactivated already")));
        }
        self.patch_user(&u.id, wire::active(false)).await?;
        self.set_active(user, false);
        Ok(None)
    }

    async fn delete_user(&self, user: &str, erase: bool) -> Result<Option<String>, CloudError> {
        let gone = || format!("{user} was already gone from SCIM directory {}", self.directory_id);
        let Some(u) = self.user(user).await? else {
            return Ok(Some(gone()));
        };
        let endpoint = self.path.endpoint(&Method::DELETE, Listing::User);
        match self
            .api
            .send(Method::DELETE, &endpoint, &self.path.user(&u.id), &[], &Body::Empty)
            .await
        {
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {
                self.ids().users.remove(&user.to_lowercase());
                return Ok(Some(gone()));
            }
            Err(e) => return Err(self.explain(e)),
        }
        self.set_active(user, false);
        // Atlassian's SCIM DELETE deactivates (developer.atlassian.com/cloud/admin/
        // user-provisioning/rest/api-group-users/): the Atlassian account belongs to its person.
        let mut note =
            "deactivated: Atlassian's SCIM API deactivates on delete, and the account stays without product access"
                .to_string();
        if erase {
            note.push_str("; its personal data cannot be erased through SCIM: delete the account at admin.atlassian.com (Directory → Managed accounts)");
        }
        Ok(Some(note))
    }

    async fn create_group(&self, group: &str) -> Result<Option<String>, CloudError> {
        let endpoint = self.path.endpoint(&Method::POST, Listing::Groups);
        let sent = self
            .api
            .send(
                Method::POST,
                &endpoint,
                &self.path.listing(Listing::Groups),
                &[],
                &Body::Json(wire::new_group(group)),
            )
            .await;
        match sent {
            Ok(bytes) => {
                let created: Value = self.api.decode(&endpoint, &bytes)?;
                let rec = roster_scim::group_record(&created)
                    .map_err(|e| self.malformed(&endpoint, &format!("the group {group} created"), &e.detail))?;
                self.ids().groups.insert(group.to_string(), rec.id);
                Ok(None)
            }
            Err(e) if e.status() == Some(409) => {
                self.ids().groups.remove(group);
                match self.group_id(group).await? {
                    Some(_) => Ok(Some("group already existed".into())),
                    None => Err(self.explain(e)),
                }
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    async fn add_members(&self, group: &str, users: &[String]) -> Result<Option<String>, CloudError> {
        let id = self.group_id(group).await?.ok_or_else(|| {
            CloudError::Refused(format!(
                "cannot add members to group {group}: SCIM directory {} has no such group (removed since the plan was made?); the next run creates it",
                self.directory_id
            ))
        })?;
        let mut ids = Vec::with_capacity(users.len());
        let mut missing = Vec::new();
        for u in users {
            match self.user(u).await? {
                Some(r) => ids.push(r.id),
                None => missing.push(u.as_str()),
            }
        }
        for chunk in ids.chunks(MEMBERS_PER_PATCH) {
            self.patch_group(&id, wire::members(wire::Members::Add, chunk)).await?;
        }
        if missing.is_empty() {
            return Ok(None);
        }
        Err(CloudError::Refused(format!(
            "cannot add {} to group {group}: SCIM directory {} has no user for them{}; the next run creates them first",
            missing.join(", "),
            self.directory_id,
            if ids.is_empty() {
                String::new()
            } else {
                format!(" (the other {} were added)", ids.len())
            }
        )))
    }

    async fn remove_member(&self, group: &str, user: &str) -> Result<Option<String>, CloudError> {
        let Some(id) = self.group_id(group).await? else {
            return Ok(Some(format!("group {group} is gone")));
        };
        let Some(u) = self.user(user).await? else {
            return Ok(Some(format!("{user} has no user in the directory")));
        };
        self.patch_group(&id, wire::members(wire::Members::Remove, std::slice::from_ref(&u.id)))
            .await?;
        Ok(None)
    }

    /// The names of the groups the user `id` is in, every group read.
    async fn groups_of(&self, id: &str) -> Result<Vec<String>, CloudError> {
        let listed = self.all_groups().await?;
        let all: BTreeSet<String> = listed.iter().map(|(g, _)| g.display_name.clone()).collect();
        let groups = self.with_members(listed, &all).await?;
        Ok(groups
            .into_iter()
            .filter(|g| g.members.iter().any(|m| m.value == id))
            .map(|g| g.display_name)
            .collect())
    }

    async fn patch_user(&self, id: &str, body: Value) -> Result<(), CloudError> {
        let endpoint = self.path.endpoint(&Method::PATCH, Listing::User);
        self.api
            .send(Method::PATCH, &endpoint, &self.path.user(id), &[], &Body::Json(body))
            .await
            .map_err(|e| self.explain(e))?;
        Ok(())
    }

    async fn patch_group(&self, id: &str, body: Value) -> Result<(), CloudError> {
        let endpoint = self.path.endpoint(&Method::PATCH, Listing::Group);
        self.api
            .send(Method::PATCH, &endpoint, &self.path.group(id), &[], &Body::Json(body))
            .await
            .map_err(|e| self.explain(e))?;
        Ok(())
    }

    fn set_active(&self, user: &str, active: bool) {
        if let Some(u) = self.ids().users.get_mut(&user.to_lowercase()) {
            u.active = active;
        }
    }

    /// Probes the directory: its users' first page says the key works and the directory
    /// exists; its groups say how many seats the licensed groups' active members take.
    pub(crate) async fn check(&self, settings: &Settings) -> Result<Checked, CloudError> {
        let endpoint = self.path.endpoint(&Method::GET, Listing::Users);
        let body: Value = self
            .api
            .get(
                &endpoint,
                &self.path.listing(Listing::Users),
                &[("startIndex", "1".to_string()), ("count", "1".to_string())],
            )
            .await
            .map_err(|e| self.explain(e))?;
        let page = roster_scim::ListResponse::parse(&body)
            .map_err(|e| self.malformed(&endpoint, "the first page", &e.detail))?;
        Ok(Checked {
            detail: format!(
                "administered at admin.atlassian.com: users and groups through SCIM directory {} ({} users; {} licensing Bitbucket)",
                self.directory_id,
                page.total_results,
                if settings.licensed_groups.is_empty() {
                    "no licensed_groups set, so no group is counted as".to_string()
                } else {
                    settings.licensed_groups.join(", ")
                }
            ),
            in_use: None,
        })
    }

    /// An error of the directory's API in terms of what to configure: a key that is not
    /// accepted, a directory that does not exist.
    fn explain(&self, e: CloudError) -> CloudError {
        let hint = match &e {
            // 401 only: a 403 says why itself (a directory not linked to the workspace).
            CloudError::Api { status: 401, .. } => format!(
                "the directory API key is not accepted for SCIM directory {}; create one at admin.atlassian.com → Settings → User provisioning and set it as [target.scim] api_key",
                self.directory_id
            ),
            // A listing answers 404 only when the directory itself is unknown.
            CloudError::Api {
                status: 404, endpoint, ..
            } if endpoint.ends_with("/Users") || endpoint.ends_with("/Groups") => format!(
                "there is no SCIM directory {}; copy its id from admin.atlassian.com → Settings → User provisioning into [target.scim] directory_id",
                self.directory_id
            ),
            _ => return e,
        };
        match e {
            CloudError::Api {
                service,
                endpoint,
                status,
                message,
            } => CloudError::Api {
                service,
                endpoint,
                status,
                message: format!("{}; {hint}", message.trim_end_matches('.')),
            },
            other => other,
        }
    }

    fn malformed(&self, endpoint: &str, what: &str, detail: &str) -> CloudError {
        CloudError::Decode {
            service: self.api.service(),
            endpoint: endpoint.to_string(),
            detail: format!("{what}: {detail}"),
        }
    }
}

fn user_ref(u: &UserRecord) -> UserRef {
    UserRef {
        id: u.id.clone(),
        active: u.active,
    }
}

/// The groups whose members a read gives: `groups`, and the licensing and administrators' ones.
fn wanted(groups: &BTreeSet<String>, settings: &Settings) -> BTreeSet<String> {
    let mut wanted = groups.clone();
    wanted.extend(settings.licensed_groups.iter().cloned());
    wanted.extend(settings.admin_groups.iter().cloned());
    wanted
}

/// The engine's view: `users` under their `keys` (by id), every group, the members of the
/// `wanted` groups (only the accounts `only`, when given).
fn state(
    users: &[UserRecord],
    keys: &HashMap<String, String>,
    groups: &[GroupRecord],
    wanted: &BTreeSet<String>,
    only: Option<&BTreeSet<String>>,
    settings: &Settings,
) -> TargetState {
    // Member names point at the accounts map's names: one copy per user, however many groups.
    let by_id: BTreeMap<&str, Arc<str>> = users
        .iter()
        .filter_map(|u| keys.get(&u.id).map(|k| (u.id.as_str(), Arc::from(k.as_str()))))
        .collect();
    let accounts: HashMap<String, Account> = users
        .iter()
        .filter_map(|u| {
            let key = keys.get(&u.id)?;
            Some((
                key.clone(),
                Account {
                    name: key.clone(),
                    display_name: u.display_name.clone().unwrap_or_else(|| u.user_name.clone()),
                    email: u.email.clone(),
                    directory: Some("admin.atlassian.com".into()),
                    mutable: true,
                    active: u.active,
                    last_sign_in_ms: None,
                },
            ))
        })
        .collect();
    let members: HashMap<String, BTreeSet<Arc<str>>> = groups
        .iter()
        .filter(|g| wanted.contains(&g.display_name))
        .map(|g| {
            let set = g
                .members
                .iter()
                .filter(|m| m.kind == MemberKind::User)
                .filter_map(|m| by_id.get(m.value.as_str()).cloned())
                .filter(|n| only.is_none_or(|o| o.contains(n.as_ref())))
                .collect();
            (g.display_name.clone(), set)
        })
        .collect();
    let mut state = TargetState {
        users: accounts,
        groups: groups.iter().map(|g| g.display_name.clone()).collect(),
        members,
        licensing_groups: settings.licensed_groups.iter().cloned().collect(),
        admin_groups: settings.admin_groups.iter().cloned().collect(),
        ..TargetState::default()
    };
    // The account Roster acts as (an API token's email) is never changed, whatever name it
    // is keyed by: the engine protects Roster's own account by its username alone.
    let me = &settings.username;
    for u in users {
        let mine =
            u.user_name.eq_ignore_ascii_case(me) || u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(me));
        if let (true, Some(key)) = (mine, keys.get(&u.id)) {
            state.admins.insert(key.clone());
        }
    }
    // A partial read (`only`) sees too few users to count the seats.
    let in_use = only
        .is_none()
        .then(|| i64::try_from(state.licensed().len()).unwrap_or(i64::MAX));
    state.seats = Seats {
        in_use,
        limit: settings.seats,
    };
    state
}
