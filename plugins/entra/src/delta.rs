//! An incremental fetch: the users delta round, then the groups delta round (members tracked),
//! each continued from the links the last fetch kept.
//!
//! The delta token also remembers what is in scope: every group id, and for groups and app
//! scopes every user id. So a changed object outside the scope costs nothing, a group that
//! enters the scope (a new group, a restored one, one renamed into `group_filter`) has its
//! members read in full, and a user who joins a group of a groups/app scope is read and
//! remembered. A partial object (Graph may describe an update by the changed properties only)
//! is read again rather than blanking the rest of the record. A change to the nesting of a
//! groups/app scope, or to the application's assignments, asks the host for a full fetch.

use std::collections::BTreeSet;

use roster_sdk::driver::{Records, Work};
use roster_sdk::{Membership, PluginError, Removal, RemovalKind};

use crate::cursor::{Cursor, DeltaState, Step};
use crate::graph::{Graph, Needs, Object};
use crate::model;
use crate::scope;
use crate::settings::Scope;

fn expired(why: impl Into<String>) -> PluginError {
    PluginError::ExpiredDelta(why.into())
}

/// The first step of an incremental fetch (the SDK has checked the token against the settings):
/// for an app scope, the assignments against those of the last full fetch.
pub fn start(g: &Graph<'_>, t: DeltaState) -> Result<Cursor, PluginError> {
    let (Some(users), Some(groups)) = (t.users.clone(), t.groups.clone()) else {
        return Err(expired("the delta token holds no delta links"));
    };
    if g.s.scope == Scope::App {
        let sp = scope::service_principal(g)?;
        if scope::assignments(g, &sp)?.all != t.assigned {
            return Err(expired(
                "the users and groups assigned to the Enterprise Application changed since the last full fetch",
            ));
        }
    }
    Ok(Cursor {
        step: Step::DeltaUsers { url: users, groups },
        token: DeltaState {
            users: None,
            groups: None,
            ..t
        },
    })
}

/// Runs one delta page (and the lookups it needs), adding the changes to `work`.
pub fn advance(g: &Graph<'_>, cur: &mut Cursor, work: &mut Work<'_>) -> Result<(), PluginError> {
    let step = std::mem::replace(&mut cur.step, Step::Done);
    cur.step = match step {
        Step::DeltaUsers { url, groups } => {
            let c = g.delta_page(&url, "read user changes (users delta)", Needs::Users)?;
            users_page(g, &mut cur.token, c.value, &mut work.out)?;
            match (c.next_link, c.delta_link) {
                (Some(next), _) => Step::DeltaUsers { url: next, groups },
                (None, Some(link)) => {
                    cur.token.users = Some(link);
                    Step::DeltaGroups { url: groups }
                }
                (None, None) => return Err(no_link("users")),
            }
        }
        Step::DeltaGroups { url } => {
            let c = g.delta_page(&url, "read group changes (groups delta)", Needs::Groups)?;
            groups_page(g, &mut cur.token, c.value, &mut work.out)?;
            match (c.next_link, c.delta_link) {
                (Some(next), _) => Step::DeltaGroups { url: next },
                (None, Some(link)) => {
                    cur.token.groups = Some(link);
                    Step::Done
                }
                (None, None) => return Err(no_link("groups")),
            }
        }
        other => other,
    };
    Ok(())
}

fn no_link(what: &str) -> PluginError {
    PluginError::Fatal(format!(
        "a {what} delta page came back with neither @odata.nextLink nor @odata.deltaLink"
    ))
}

fn ids(objects: &[Object]) -> Vec<String> {
    objects.iter().filter_map(|o| model::id(o, "object").ok()).collect()
}

/// Reads again the users Graph described partially; those gone since are dropped (their
/// removal arrives in a delta round).
fn complete_users(g: &Graph<'_>, objects: Vec<Object>) -> Result<Vec<Object>, PluginError> {
    let (mut complete, partial): (Vec<Object>, Vec<Object>) =
        objects.into_iter().partition(|o| !model::user_incomplete(o));
    complete.extend(scope::users_by_id(g, &ids(&partial), None)?);
    Ok(complete)
}

fn users_page(g: &Graph<'_>, t: &mut DeltaState, objects: Vec<Object>, page: &mut Records) -> Result<(), PluginError> {
    let s = g.s;
    let mut changed = Vec::new();
    for o in objects {
        let id = model::id(&o, "changed user")?;
        match model::removed(&o) {
            Some(kind) => {
                if kind == RemovalKind::Deleted {
                    t.members.remove(&id);
                }
                page.removed_users.push(Removal { id, kind });
            }
            None => changed.push(o),
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    match (s.scope, &s.user_filter) {
        (Scope::Tenant, None) => {
            let users = complete_users(g, changed)?;
            scope::emit_users(g, page, &users)?;
        }
        (Scope::Tenant, Some(filter)) => {
            // Every changed user is read through the filter: those it no longer admits left the
            // scope (restorably: they come back when they match again).
            let wanted = ids(&changed);
            let admitted = scope::users_by_id(g, &wanted, Some(filter))?;
            for id in scope::missing(&wanted, &admitted) {
                page.removed_users.push(Removal {
                    id,
                    kind: RemovalKind::SoftDeleted,
                });
            }
            scope::emit_users(g, page, &admitted)?;
        }
        (Scope::Groups | Scope::App, _) => {
            // Users outside the scope change too; they can only enter it through a group join,
            // which the groups round reports.
            changed.retain(|o| model::id(o, "user").is_ok_and(|id| t.members.contains(&id)));
            let users = complete_users(g, changed)?;
            scope::emit_users(g, page, &users)?;
        }
    }
    Ok(())
}

fn groups_page(g: &Graph<'_>, t: &mut DeltaState, objects: Vec<Object>, page: &mut Records) -> Result<(), PluginError> {
    let s = g.s;
    let scoped = s.scope != Scope::Tenant;
    // Tenant scope with a group filter: which of the changed groups it admits now.
    let admitted: Option<BTreeSet<String>> = match (&s.group_filter, scoped) {
        (Some(f), false) => {
            let wanted: Vec<String> = ids(&objects
                .iter()
                .filter(|o| model::removed(o).is_none())
                .cloned()
                .collect::<Vec<_>>());
            let found = scope::groups_by_id(g, &wanted, Some(f))?;
            Some(ids(&found).into_iter().collect())
        }
        _ => None,
    };
    let mut joined = BTreeSet::new();
    let mut left = BTreeSet::new();
    let mut partial = Vec::new();
    let mut entered = Vec::new();
    for o in objects {
        let id = model::id(&o, "changed group")?;
        if let Some(kind) = model::removed(&o) {
            if scoped {
                if t.tree.contains(&id) {
                    return Err(expired(format!(
                        "group {id} of the scope was deleted; a full fetch recomputes the scope"
                    )));
                }
            } else if t.tree.remove(&id) {
                page.removed_groups.push(Removal { id, kind });
            }
            continue;
        }
        let in_scope = if scoped {
            t.tree.contains(&id)
        } else {
            admitted.as_ref().is_none_or(|a| a.contains(&id))
        };
        if !in_scope {
            if !scoped && t.tree.remove(&id) {
                // No longer admitted by group_filter: gone from the source.
                page.removed_groups.push(Removal {
                    id,
                    kind: RemovalKind::Deleted,
                });
            }
            continue;
        }
        if !scoped && t.tree.insert(id.clone()) {
            // New to the scope (created, restored, renamed into the filter): its members are
            // read in full, since this round reports only the changes since the last one.
            entered.push(id.clone());
        }
        if model::group_incomplete(&o) {
            partial.push(id.clone());
        } else {
            page.groups.push(model::group(&o)?);
        }
        let members = o.get("members@delta").and_then(|v| v.as_array());
        for m in members.into_iter().flatten() {
            let Some(m) = m.as_object() else { continue };
            let Some(ms) = model::membership(&id, m)? else {
                continue;
            };
            let gone = model::removed(m).is_some();
            if scoped && ms.member_is_group && (gone || !t.tree.contains(&ms.member_id)) {
                return Err(expired(format!(
                    "the nesting under group {id} of the scope changed; a full fetch recomputes the scope"
                )));
            }
            if scoped && !ms.member_is_group {
                if gone {
                    left.insert(ms.member_id.clone());
                } else {
                    joined.insert(ms.member_id.clone());
                }
            }
            push(page, ms, gone);
        }
    }
    page.groups.extend(
        scope::groups_by_id(g, &partial, None)?
            .iter()
            .map(model::group)
            .collect::<Result<Vec<_>, _>>()?,
    );
    for id in &entered {
        page.memberships.extend(scope::members_of(g, id)?);
    }
    if scoped {
        // Joined a group of the scope: in scope now, so read the whole user.
        let newcomers: Vec<String> = joined.iter().filter(|u| !t.members.contains(*u)).cloned().collect();
        let found = scope::users_by_id(g, &newcomers, None)?;
        t.members.extend(ids(&found));
        scope::emit_users(g, page, &found)?;
        // Left one: still in scope through another group or a direct assignment?
        for id in left.difference(&joined) {
            if !scope::user_in_tree(g, id, &t.tree, &t.direct_users)? {
                t.members.remove(id);
                page.removed_users.push(Removal {
                    id: id.clone(),
                    kind: RemovalKind::SoftDeleted,
                });
            }
        }
    }
    Ok(())
}

fn push(page: &mut Records, m: Membership, removed: bool) {
    if removed {
        page.removed_memberships.push(m);
    } else {
        page.memberships.push(m);
    }
}
