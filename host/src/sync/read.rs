//! The read stage: the target's users, groups, the members of every group the plan can touch
//! or that licenses someone, global permissions and the licence.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::model::TargetState;
use crate::targets::bitbucket_dc::{BbError, BitbucketDc};

/// Reads what the plan needs. `interesting` are the groups whose members matter (desired,
/// managed, default); groups holding a global permission are always read.
pub async fn read_target(
    client: &BitbucketDc,
    interesting: &BTreeSet<String>,
    concurrency: usize,
) -> Result<TargetState, BbError> {
    let (users, groups, group_perms, user_perms, license) = tokio::try_join!(
        client.users(),
        client.groups(),
        client.group_permissions(),
        client.user_permissions(),
        client.license(),
    )?;
    let mut state = TargetState {
        users: users.into_iter().map(|u| (u.name.to_lowercase(), u)).collect(),
        groups: groups.into_iter().collect(),
        group_perms: group_perms.into_iter().map(|p| (p.group.name, p.permission)).collect(),
        user_perms: user_perms
            .into_iter()
            .map(|p| (p.user.name.to_lowercase(), p.permission))
            .collect(),
        license,
        ..TargetState::default()
    };
    let to_read: Vec<String> = state
        .groups
        .iter()
        .filter(|g| interesting.contains(*g) || state.group_perms.contains_key(*g))
        .cloned()
        .collect();
    // Member names point at the users map's names: one copy per user, however many groups.
    let interned: HashMap<&str, Arc<str>> = state
        .users
        .keys()
        .map(|k| (k.as_str(), Arc::from(k.as_str())))
        .collect();
    let intern = |name: String| -> Arc<str> {
        let lower = name.to_lowercase();
        interned
            .get(lower.as_str())
            .cloned()
            .unwrap_or_else(|| Arc::from(lower))
    };
    let members: Vec<(String, BTreeSet<Arc<str>>)> = stream::iter(to_read)
        .map(|g| async {
            let m = client.group_members(&g).await?;
            Ok::<_, BbError>((g, m.into_iter().map(|u| intern(u.name)).collect()))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    state.members = members.into_iter().collect();
    Ok(state)
}
