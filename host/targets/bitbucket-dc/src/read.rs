//! The read stage for Bitbucket Data Center: users, groups, the members of every group the plan
//! can touch or that licenses someone, global permissions and the licence — in the engine's
//! terms. Any global permission licenses (LICENSED_USER and every permission above it);
//! ADMIN and SYS_ADMIN make administrators, whom Roster never changes.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::stream::{self, StreamExt, TryStreamExt};
use roster_engine::{Account, Seats, TargetState};

use crate::client::{BbError, BitbucketDc};
use crate::model::{BbUser, GroupPermission, License, UserPermission};

const ADMIN_PERMS: [&str; 2] = ["ADMIN", "SYS_ADMIN"];

fn account(u: BbUser) -> Account {
    Account {
        name: u.name,
        display_name: u.display_name,
        email: u.email_address,
        directory: u.directory_name,
        mutable: u.mutable_details,
        active: true,
        // Bitbucket leaves the field out (or says 0) for someone who never signed in.
        last_sign_in_ms: u.last_authentication_timestamp.filter(|t| *t > 0),
    }
}

/// The state without members: accounts given, groups, permissions, licence.
fn state(
    users: impl IntoIterator<Item = BbUser>,
    groups: Vec<String>,
    group_perms: &[GroupPermission],
    user_perms: &[UserPermission],
    license: &License,
) -> TargetState {
    TargetState {
        users: users.into_iter().map(|u| (u.name.to_lowercase(), account(u))).collect(),
        groups: groups.into_iter().collect(),
        licensing_groups: group_perms.iter().map(|p| p.group.name.clone()).collect(),
        admin_groups: group_perms
            .iter()
            .filter(|p| ADMIN_PERMS.contains(&p.permission.as_str()))
            .map(|p| p.group.name.clone())
            .collect(),
        licensed_directly: user_perms.iter().map(|p| p.user.name.to_lowercase()).collect(),
        admins: user_perms
            .iter()
            .filter(|p| ADMIN_PERMS.contains(&p.permission.as_str()))
            .map(|p| p.user.name.to_lowercase())
            .collect(),
        seats: Seats {
            in_use: license.status.as_ref().map(|s| s.current_number_of_users),
            limit: license.seats(),
        },
        ..TargetState::default()
    }
}

/// Reads what the plan needs. `interesting` are the groups whose members matter (desired,
/// managed, default); groups holding a global permission are always read.
///
/// Everything is asked for at once and the client keeps its limit of requests in flight: the
/// users listing pages on while the groups' members are read, so a slow server is kept busy
/// rather than waited for stage by stage.
pub(crate) async fn read(
    client: &BitbucketDc,
    interesting: &BTreeSet<String>,
    concurrency: usize,
) -> Result<TargetState, BbError> {
    // Member names share one copy each, however many groups hold them (a group of 100,000
    // would otherwise be 100,000 more strings).
    let interned: Mutex<HashSet<Arc<str>>> = Mutex::default();
    let intern = |name: String| -> Arc<str> {
        let lower = name.to_lowercase();
        let mut set = interned.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = set.get(lower.as_str()) {
            return known.clone();
        }
        let shared: Arc<str> = Arc::from(lower);
        set.insert(shared.clone());
        shared
    };
    let groups_and_members = async {
        let (groups, group_perms, user_perms, license) = tokio::try_join!(
            client.groups(),
            client.group_permissions(),
            client.user_permissions(),
            client.license(),
        )?;
        let licensing: HashSet<&str> = group_perms.iter().map(|p| p.group.name.as_str()).collect();
        let to_read: Vec<String> = groups
            .iter()
            .filter(|g| interesting.contains(*g) || licensing.contains(g.as_str()))
            .cloned()
            .collect();
        let members: Vec<(String, BTreeSet<Arc<str>>)> = stream::iter(to_read)
            .map(|g| async {
                let m = client.group_members(&g).await?;
                Ok::<_, BbError>((g, m.into_iter().map(|u| intern(u.name)).collect()))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        Ok::<_, BbError>((groups, group_perms, user_perms, license, members))
    };
    let (users, (groups, group_perms, user_perms, license, members)) =
        tokio::try_join!(client.users(), groups_and_members)?;
    let mut state = state(users, groups, &group_perms, &user_perms, &license);
    state.members = members.into_iter().collect();
    Ok(state)
}

/// Bitbucket as far as the accounts `names` are concerned: those accounts, their memberships
/// of `groups` and of licensing groups (with only these accounts as members), every group name,
/// permissions and the licence. A handful of calls whatever the size of the instance.
pub(crate) async fn read_accounts(
    client: &BitbucketDc,
    names: &BTreeSet<String>,
    groups: &BTreeSet<String>,
) -> Result<TargetState, BbError> {
    let (all_groups, group_perms, user_perms, license) = tokio::try_join!(
        client.groups(),
        client.group_permissions(),
        client.user_permissions(),
        client.license(),
    )?;
    let mut users = Vec::new();
    let mut member_of: Vec<(String, HashSet<String>)> = Vec::new();
    for name in names {
        let Some(user) = client.user(name).await? else { continue };
        let groups_of: HashSet<String> = client.user_groups(&user.name).await?.into_iter().collect();
        member_of.push((user.name.to_lowercase(), groups_of));
        users.push(user);
    }
    let ours: HashSet<String> = users.iter().map(|u| u.name.to_lowercase()).collect();
    let user_perms: Vec<UserPermission> = user_perms
        .into_iter()
        .filter(|p| ours.contains(&p.user.name.to_lowercase()))
        .collect();
    let mut state = state(users, all_groups, &group_perms, &user_perms, &license);
    let mut wanted: BTreeSet<String> = groups.clone();
    wanted.extend(state.licensing_groups.iter().cloned());
    for (lower, groups_of) in member_of {
        let shared: Arc<str> = Arc::from(lower.as_str());
        for g in groups_of.iter().filter(|g| wanted.contains(*g)) {
            state.members.entry(g.clone()).or_default().insert(shared.clone());
        }
    }
    for g in wanted {
        if state.groups.contains(&g) {
            state.members.entry(g).or_default();
        }
    }
    Ok(state)
}
