//! An incremental fetch: the users delta round, then the groups delta round (members tracked),
//! each continued from the links the last fetch kept.
//!
//! Tenant scope passes changes through (a changed user that `user_filter` no longer admits is
//! reported as left, restorably). Groups and app scopes check each changed user against the
//! scope (`transitiveMemberOf` ∩ the scope's groups) and fetch users who joined a group of the
//! scope; a change to the nesting itself (a group added to or removed from a group of the
//! scope, a scope group deleted, changed assignments) asks the host for a full fetch, which
//! recomputes the tree.

use std::collections::BTreeSet;

use roster_sdk::{Membership, Page, PluginError, Removal, RemovalKind};

use crate::cursor::{Cursor, DeltaToken, Step};
use crate::graph::{Graph, Needs, Object};
use crate::model;
use crate::scope;
use crate::settings::Scope;

fn expired(why: impl Into<String>) -> PluginError {
    PluginError::ExpiredDelta(why.into())
}

/// The first step of an incremental fetch: the token checked against the settings and, for
/// an app scope, the assignments against those of the last full fetch.
pub fn start(g: &Graph<'_>, token: &str) -> Result<Cursor, PluginError> {
    let t = DeltaToken::read(token, g.s)?;
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
        token: DeltaToken {
            users: None,
            groups: None,
            ..t
        },
        hint: None,
    })
}

/// Runs one delta page (and the lookups it needs), adding the changes to `page`.
pub fn advance(g: &Graph<'_>, cur: &mut Cursor, page: &mut Page) -> Result<(), PluginError> {
    let step = std::mem::replace(&mut cur.step, Step::Done);
    cur.step = match step {
        Step::DeltaUsers { url, groups } => {
            let c = g.page(&url, "read user changes (users delta)", Needs::Users)?;
            users_page(g, &cur.token, c.value, page)?;
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
            let c = g.page(&url, "read group changes (groups delta)", Needs::Groups)?;
            groups_page(g, &cur.token, c.value, page)?;
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

fn users_page(g: &Graph<'_>, t: &DeltaToken, objects: Vec<Object>, page: &mut Page) -> Result<(), PluginError> {
    let s = g.s;
    let mut changed = Vec::new();
    for o in objects {
        let id = model::id(&o, "changed user")?;
        match model::removed(&o) {
            Some(kind) => page.removed_users.push(Removal { id, kind }),
            None => changed.push(o),
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    match s.scope {
        Scope::Tenant => {
            let filter = s.user_filter.as_deref();
            // With a filter, re-read every changed user through it: those it no longer admits
            // left the scope. Without one, only objects Graph sent incomplete are re-read.
            let (complete, reread): (Vec<Object>, Vec<Object>) = changed
                .into_iter()
                .partition(|o| filter.is_none() && !model::user_incomplete(o, s));
            scope::emit_users(g, page, &complete)?;
            let ids: Vec<String> = reread.iter().filter_map(|o| model::id(o, "user").ok()).collect();
            let found = scope::users_by_id(g, &ids, filter)?;
            let found_ids: BTreeSet<String> = found.iter().filter_map(|o| model::id(o, "user").ok()).collect();
            scope::emit_users(g, page, &found)?;
            for id in ids.into_iter().filter(|i| !found_ids.contains(i)) {
                page.removed_users.push(Removal {
                    id,
                    kind: RemovalKind::SoftDeleted,
                });
            }
        }
        Scope::Groups | Scope::App => {
            // Users outside the scope changed too; only members of the scope are reported.
            let mut inside = Vec::new();
            let mut incomplete = Vec::new();
            for o in changed {
                let id = model::id(&o, "user")?;
                if scope::user_in_tree(g, &id, &t.tree, &t.direct_users)? {
                    if model::user_incomplete(&o, s) {
                        incomplete.push(id);
                    } else {
                        inside.push(o);
                    }
                }
            }
            inside.extend(scope::users_by_id(g, &incomplete, None)?);
            scope::emit_users(g, page, &inside)?;
        }
    }
    Ok(())
}

fn groups_page(g: &Graph<'_>, t: &DeltaToken, objects: Vec<Object>, page: &mut Page) -> Result<(), PluginError> {
    let s = g.s;
    let scoped = s.scope != Scope::Tenant;
    // Tenant scope with a group filter: which of the changed groups it admits.
    let admitted: Option<BTreeSet<String>> = match (&s.group_filter, scoped) {
        (Some(f), false) => {
            let ids: Vec<String> = objects
                .iter()
                .filter(|o| model::removed(o).is_none())
                .filter_map(|o| model::id(o, "group").ok())
                .collect();
            let found = scope::groups_by_id(g, &ids, Some(f))?;
            Some(found.iter().filter_map(|o| model::id(o, "group").ok()).collect())
        }
        _ => None,
    };
    let mut joined = BTreeSet::new();
    let mut left = BTreeSet::new();
    for o in objects {
        let id = model::id(&o, "changed group")?;
        if let Some(kind) = model::removed(&o) {
            if scoped {
                if t.tree.contains(&id) {
                    return Err(expired(format!(
                        "group {id} of the scope was deleted; a full fetch recomputes the scope"
                    )));
                }
            } else {
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
            if admitted.is_some() {
                // No longer admitted by group_filter (or never was): gone from the source.
                page.removed_groups.push(Removal {
                    id,
                    kind: RemovalKind::Deleted,
                });
            }
            continue;
        }
        // A page may carry only a group's member changes; its record then keeps its name.
        if o.contains_key("displayName") {
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
    if scoped {
        // Joined a group of the scope: in scope now, so read the whole user.
        let ids: Vec<String> = joined.iter().cloned().collect();
        let found = scope::users_by_id(g, &ids, None)?;
        scope::emit_users(g, page, &found)?;
        // Left one: still in scope through another group or a direct assignment?
        for id in left.difference(&joined) {
            if !scope::user_in_tree(g, id, &t.tree, &t.direct_users)? {
                page.removed_users.push(Removal {
                    id: id.clone(),
                    kind: RemovalKind::SoftDeleted,
                });
            }
        }
    }
    Ok(())
}

fn push(page: &mut Page, m: Membership, removed: bool) {
    if removed {
        page.removed_memberships.push(m);
    } else {
        page.memberships.push(m);
    }
}
