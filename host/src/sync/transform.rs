//! The transform stage: a source's mirror through its chain of transform plugins, in batches.
//! A record a transform cannot evaluate is skipped with its reason; the run goes on.

use std::collections::HashMap;

use crate::config::SourceConfig;
use crate::runtime::bindings::{Group, User};
use crate::runtime::{Runtime, SourceAccess};
use crate::store::{MirrorGroup, MirrorMembership, MirrorUser, Removed};

use super::SyncError;

/// Records per call into a transform (the boundary costs ~2 µs per user; see BENCHMARKS.md).
pub const BATCH: usize = 1000;

/// A user after the chain; the IdP id is the input's, whatever a transform returned.
#[derive(Debug, Clone)]
pub struct MappedUser {
    /// IdP immutable id.
    pub ext_id: String,
    /// Username to use in Bitbucket.
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Enabled and not soft-deleted.
    pub active: bool,
}

/// One source's records after its chain.
#[derive(Debug, Default)]
pub struct Transformed {
    /// Kept users.
    pub users: Vec<MappedUser>,
    /// Group id → Bitbucket group names (none: filtered; several: fan-out) and its IdP name.
    pub groups: HashMap<String, (String, Vec<String>)>,
    /// Memberships as the IdP reported them (ids).
    pub memberships: Vec<MirrorMembership>,
    /// Records skipped, with why.
    pub warnings: Vec<String>,
}

fn to_wit_user(u: MirrorUser) -> User {
    User {
        active: u.active && u.removed != Some(Removed::SoftDeleted),
        id: u.ext_id,
        username: u.username,
        email: u.email,
        display_name: u.display_name,
        attributes: u.attributes,
    }
}

/// Runs the source's chain over its mirror.
pub async fn run_chain(
    runtime: &Runtime,
    source: &SourceConfig,
    users: Vec<MirrorUser>,
    groups: Vec<MirrorGroup>,
    memberships: Vec<MirrorMembership>,
) -> Result<Transformed, SyncError> {
    let mut warnings = Vec::new();
    let mut current: Vec<User> = users.into_iter().map(to_wit_user).collect();
    let mut current_groups: Vec<(String, String, Vec<Group>)> = groups
        .into_iter()
        .map(|g| {
            let wit = Group {
                id: g.ext_id.clone(),
                name: g.name.clone(),
                description: g.description,
                attributes: g.attributes,
            };
            (g.ext_id, g.name, vec![wit])
        })
        .collect();
    for step in &source.transforms {
        let mut job = runtime
            .job(&step.plugin, step.limits.clone(), SourceAccess::none())
            .await
            .map_err(|e| SyncError::Transform {
                id: source.id.clone(),
                detail: e.to_string(),
            })?;
        let settings = step.settings.to_string();
        let mut next = Vec::with_capacity(current.len());
        for batch in current.chunks(BATCH) {
            let outcomes = job
                .map_users(&settings, batch)
                .await
                .map_err(|e| SyncError::Transform {
                    id: source.id.clone(),
                    detail: e.to_string(),
                })?;
            for (input, outcome) in batch.iter().zip(outcomes) {
                match (outcome.user, outcome.error) {
                    (_, Some(err)) => warnings.push(format!(
                        "{}: user {} ({}) skipped by {}: {err}",
                        source.id, input.username, input.id, step.plugin
                    )),
                    (Some(mut u), None) => {
                        u.id = input.id.clone();
                        next.push(u);
                    }
                    (None, None) => {}
                }
            }
        }
        current = next;
        // Groups in batches too: every pending output group, remembering which input it came from.
        let pending: Vec<(usize, Group)> = current_groups
            .iter_mut()
            .enumerate()
            .flat_map(|(i, (_, _, outs))| std::mem::take(outs).into_iter().map(move |g| (i, g)))
            .collect();
        for batch in pending.chunks(BATCH) {
            let inputs: Vec<Group> = batch.iter().map(|(_, g)| g.clone()).collect();
            let mapped = job
                .map_groups(&settings, &inputs)
                .await
                .map_err(|e| SyncError::Transform {
                    id: source.id.clone(),
                    detail: e.to_string(),
                })?;
            for ((i, input), o) in batch.iter().zip(mapped) {
                match o.error {
                    Some(err) => warnings.push(format!(
                        "{}: group {} ({}) skipped by {}: {err}",
                        source.id, input.name, input.id, step.plugin
                    )),
                    None => current_groups[*i].2.extend(o.groups),
                }
            }
        }
    }
    let users = current
        .into_iter()
        .map(|u| MappedUser {
            ext_id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
        })
        .collect();
    let groups = current_groups
        .into_iter()
        .map(|(id, name, outs)| (id, (name, outs.into_iter().map(|g| g.name).collect())))
        .collect();
    Ok(Transformed {
        users,
        groups,
        memberships,
        warnings,
    })
}
