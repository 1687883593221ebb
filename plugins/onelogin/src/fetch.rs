//! The fetch, one driver step at a time.
//!
//! Full: roles (resolving `roles`), each role's users (one listing per role: a role without
//! users still costs a call), OneLogin groups when they are read, then every user (with a
//! `roles` filter, only those who hold one of the roles), memberships of groups from each
//! user's `group_id`. The memberships go into the delta state.
//!
//! Incremental: roles and groups listed again (new, renamed and vanished ones), users with
//! `updated_since`, then each changed user's roles, which the memberships of the last fetch
//! turn into added and removed memberships. OneLogin deletes users for good and lists no
//! deletions: a deleted user is seen gone by the next full fetch.
//!
//! Role changes are read only for users whose `updated_at` moved: the connector assumes
//! OneLogin moves it when a role is assigned or unassigned (unverified; OneLogin documents no
//! role-change timestamp and no per-role change listing). Where it does not, a role change is
//! missed until the scheduled full fetch, which lists every role's users.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roster_sdk::driver::{Begin, Next, Work};
use roster_sdk::time::iso8601;
use roster_sdk::{Level, PluginError, Removal, RemovalKind};

use crate::api::{Api, Paging, what};
use crate::cursor::{Cursor, DeltaState, Mode, Step};
use crate::model::{self, Object, OneLoginGroup, Role, RoleUser, V1Page};

/// How far back of the last fetch's clock the next one reads changes: a user updated while
/// that fetch ran is read again rather than missed.
pub const OVERLAP: Duration = Duration::from_secs(60);

/// Changed users whose roles one step reads.
const ROLE_CALLS_PER_STEP: usize = 8;

/// Changed users past which an incremental fetch reads in full instead, however large the
/// account: each travels in the cursor until the fetch ends and, when roles are read, costs a
/// roles call, where a full fetch costs one call per role plus the users pages.
pub const MASS_UPDATE: u64 = 10_000;

/// Why an incremental fetch that finds `changed` users changed should read in full instead,
/// given the `known` users the last full fetch listed: more than [`MASS_UPDATE`], or more than
/// half of them (a bulk edit, an import), where the full fetch costs about as many requests
/// and also sees who was deleted.
pub fn mass_update(changed: u64, known: u64) -> Option<String> {
    if changed > MASS_UPDATE {
        Some(format!(
            "{changed} users changed since the last fetch, more than {MASS_UPDATE}; a full fetch reads them for fewer requests"
        ))
    } else if changed.saturating_mul(2) > known {
        Some(format!(
            "{changed} users changed since the last fetch, more than half of the {known} the last full fetch listed; a full fetch reads them for about as many requests and sees deleted users too"
        ))
    } else {
        None
    }
}

fn limit(api: &Api<'_>) -> String {
    api.s.page_size.to_string()
}

fn roles_listing(api: &Api<'_>) -> Paging {
    Paging::new(api.url("/api/2/roles", &[("limit", &limit(api))]))
}

fn role_users_listing(api: &Api<'_>, role: i64) -> Paging {
    Paging::new(api.url(&format!("/api/2/roles/{role}/users"), &[("limit", &limit(api))]))
}

fn groups_listing(api: &Api<'_>) -> Paging {
    Paging::new(api.url("/api/1/groups", &[]))
}

/// The users listing; incrementally, those with `updated_since` the last fetch's clock. That
/// is also how role changes are found: only the users listed here have their roles read again,
/// on the assumption that a role (un)assignment moves the user's `updated_at` (see the module
/// documentation; the scheduled full fetch catches what that misses).
fn users_listing(api: &Api<'_>, mode: &Mode) -> Paging {
    let limit = limit(api);
    Paging::new(match mode {
        Mode::Full => api.url("/api/2/users", &[("limit", &limit)]),
        Mode::Incremental { prior } => {
            let since = iso8601(UNIX_EPOCH + Duration::from_secs(prior.since));
            api.url("/api/2/users", &[("limit", &limit), ("updated_since", &since)])
        }
    })
}

/// The listing after the roles: groups when they are read, else users.
fn after_roles(api: &Api<'_>, mode: &Mode) -> Step {
    if api.s.groups_from.groups() {
        Step::Groups {
            paging: groups_listing(api),
            found: Vec::new(),
        }
    } else {
        Step::Users {
            paging: users_listing(api, mode),
        }
    }
}

/// The cursor a fetch starts from.
pub fn begin(api: &Api<'_>, from: Begin<DeltaState>) -> Cursor {
    let mode = match from {
        Begin::Full => Mode::Full,
        Begin::Incremental(prior) => Mode::Incremental { prior: Rc::new(prior) },
    };
    let step = if api.s.groups_from.roles() {
        Step::Roles {
            paging: roles_listing(api),
            found: Vec::new(),
        }
    } else {
        after_roles(api, &mode)
    };
    Cursor::new(mode, step)
}

fn not_found(what: &str) -> PluginError {
    PluginError::Config(format!(
        "{what}: OneLogin answered 404 for a listing every account has: api_url should be https://<subdomain>.onelogin.com"
    ))
}

/// The roles `wanted` names (names or ids) among the account's roles; every role when it is
/// empty. A name no role has, or several have, is a `config` error naming it.
pub fn resolve(wanted: &[String], found: &[(i64, String)]) -> Result<BTreeMap<i64, String>, PluginError> {
    if wanted.is_empty() {
        return Ok(found.iter().cloned().collect());
    }
    let mut out = BTreeMap::new();
    for w in wanted {
        if let Ok(n) = w.parse::<i64>()
            && let Some((id, name)) = found.iter().find(|(id, _)| *id == n)
        {
            out.insert(*id, name.clone());
            continue;
        }
        let mut named: Vec<&(i64, String)> = found.iter().filter(|(_, name)| name == w).collect();
        if named.is_empty() {
            named = found.iter().filter(|(_, name)| name.eq_ignore_ascii_case(w)).collect();
        }
        match named.as_slice() {
            [] => {
                return Err(PluginError::Config(format!(
                    "roles: OneLogin has no role named or numbered `{w}`; give a role's name as Users → Roles shows it, or its id"
                )));
            }
            [(id, name)] => {
                out.insert(*id, name.clone());
            }
            several => {
                let ids: Vec<String> = several.iter().map(|(id, _)| id.to_string()).collect();
                return Err(PluginError::Config(format!(
                    "roles: {} OneLogin roles are named `{w}` (ids {}); give the id of the one meant",
                    several.len(),
                    ids.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// Runs one step of a fetch from `cur`.
pub fn step(api: &Api<'_>, mut cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
    let step = std::mem::replace(&mut cur.step, Step::Finish);
    cur.step = match step {
        Step::Roles { paging, found } => roles(api, &mut cur, work, paging, found)?,
        Step::RoleUsers { queue, paging, members } => role_users(api, &mut cur, work, queue, paging, members)?,
        Step::Groups { paging, found } => groups(api, &mut cur, work, paging, found)?,
        Step::Users { paging } => users(api, &mut cur, work, paging)?,
        Step::UserRoles { queue } => user_roles(api, &mut cur, queue)?,
        Step::Finish => return finish(api, cur, work).map(|state| Next::Done(Some(state))),
    };
    if cur.clock.is_none() {
        cur.clock = api
            .clock()
            .map(|t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs());
    }
    Ok(Next::Continue(cur))
}

fn roles(
    api: &Api<'_>,
    cur: &mut Cursor,
    work: &mut Work<'_>,
    mut paging: Paging,
    mut found: Vec<(i64, String)>,
) -> Result<Step, PluginError> {
    let what = paging.what(&what("/api/2/roles"));
    let page = api
        .page::<Role>(&paging.url("cursor"), &what)?
        .ok_or_else(|| not_found(&what))?;
    if page.items.is_empty() && page.after.is_some() {
        work.empty_page();
    }
    found.extend(page.items.into_iter().map(|r| (r.id, r.name)));
    if paging.advance(page.after, &what)? {
        return Ok(Step::Roles { paging, found });
    }
    let in_scope = resolve(&api.s.roles, &found)?;
    let next = match &cur.mode {
        Mode::Full => {
            work.expect(in_scope.len() as u64);
            work.out
                .groups
                .extend(in_scope.iter().map(|(id, name)| model::role_group(*id, name)));
            Step::RoleUsers {
                queue: in_scope.keys().copied().collect(),
                paging: None,
                members: Vec::new(),
            }
        }
        Mode::Incremental { prior } => {
            if !api.s.roles.is_empty() && !in_scope.keys().eq(prior.roles.keys()) {
                return Err(PluginError::ExpiredDelta(
                    "the roles named in `roles` are other roles now (one was created, deleted or renamed); a full fetch reads the new scope".into(),
                ));
            }
            work.out.groups.extend(
                in_scope
                    .iter()
                    .filter(|(id, name)| prior.roles.get(id) != Some(*name))
                    .map(|(id, name)| model::role_group(*id, name)),
            );
            after_roles(api, &cur.mode)
        }
    };
    cur.roles = Rc::new(in_scope);
    Ok(next)
}

fn role_users(
    api: &Api<'_>,
    cur: &mut Cursor,
    work: &mut Work<'_>,
    mut queue: VecDeque<i64>,
    paging: Option<Paging>,
    mut members: Vec<i64>,
) -> Result<Step, PluginError> {
    let Some(&role) = queue.front() else {
        if !api.s.roles.is_empty() {
            cur.scope = Some(Rc::new(cur.journal.users("role:")));
        }
        return Ok(after_roles(api, &cur.mode));
    };
    let mut paging = paging.unwrap_or_else(|| role_users_listing(api, role));
    let what = paging.what(&what(&format!("/api/2/roles/{role}/users")));
    let gid = model::role_gid(role);
    let next = match api.page::<RoleUser>(&paging.url("cursor"), &what)? {
        Some(page) => {
            if page.items.is_empty() && page.after.is_some() {
                work.empty_page();
            }
            for u in page.items {
                work.out.memberships.push(model::membership(gid.clone(), u.id));
                members.push(u.id);
            }
            paging.advance(page.after, &what)?
        }
        None => {
            // Deleted since the roles were listed: the next fetch reports it gone.
            roster_sdk::log(
                Level::Warn,
                &format!("{what}: role {role} was deleted while Roster read it; its members are not read"),
            );
            members.clear();
            false
        }
    };
    if next {
        return Ok(Step::RoleUsers {
            queue,
            paging: Some(paging),
            members,
        });
    }
    cur.journal.append(gid, std::mem::take(&mut members));
    queue.pop_front();
    Ok(Step::RoleUsers {
        queue,
        paging: None,
        members,
    })
}

fn groups(
    api: &Api<'_>,
    cur: &mut Cursor,
    work: &mut Work<'_>,
    mut paging: Paging,
    mut found: Vec<(i64, String)>,
) -> Result<Step, PluginError> {
    let what = paging.what(&what("/api/1/groups"));
    let page: V1Page<OneLoginGroup> = api
        .json_opt(&paging.url("after_cursor"), &what)?
        .ok_or_else(|| not_found(&what))?;
    let after = page.pagination.after_cursor;
    if page.data.is_empty() && after.is_some() {
        work.empty_page();
    }
    found.extend(page.data.into_iter().map(|g| (g.id, g.name)));
    if paging.advance(after, &what)? {
        return Ok(Step::Groups { paging, found });
    }
    let all: BTreeMap<i64, String> = found.into_iter().collect();
    // Under a `roles` filter a group is emitted only once it is known to hold a user in scope,
    // which the users listing tells: `finish` emits those.
    if api.s.roles.is_empty() {
        let prior = match &cur.mode {
            Mode::Full => {
                work.expect(all.len() as u64);
                None
            }
            Mode::Incremental { prior } => Some(prior),
        };
        work.out.groups.extend(
            all.iter()
                .filter(|(id, name)| prior.is_none_or(|p| p.groups.get(id) != Some(*name)))
                .map(|(id, name)| model::group_group(*id, name)),
        );
    }
    cur.groups = Rc::new(all);
    Ok(Step::Users {
        paging: users_listing(api, &cur.mode),
    })
}

fn users(api: &Api<'_>, cur: &mut Cursor, work: &mut Work<'_>, mut paging: Paging) -> Result<Step, PluginError> {
    let what = paging.what(&what("/api/2/users"));
    let page = api
        .page::<Object>(&paging.url("cursor"), &what)?
        .ok_or_else(|| not_found(&what))?;
    if paging.pages == 0
        && let Some(total) = page.total
    {
        work.expect(total);
    }
    // A mass update is caught at the listing's first page when OneLogin sends Total-Count,
    // else as the pages add up; either way before the roles of the changed users are read.
    if let Mode::Incremental { prior } = &cur.mode {
        let changed = cur.changed.len().saturating_add(page.items.len()) as u64;
        if let Some(why) = mass_update(page.total.unwrap_or(0).max(changed), prior.users) {
            return Err(PluginError::ExpiredDelta(why));
        }
    } else {
        cur.listed = cur.listed.saturating_add(page.items.len() as u64);
    }
    if page.items.is_empty() && page.after.is_some() {
        work.empty_page();
    }
    let groups_read = api.s.groups_from.groups();
    let mut by_group: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (at, o) in page.items.iter().enumerate() {
        let p = model::person(o, api.s, &what, at)?;
        if let Mode::Incremental { .. } = cur.mode {
            cur.changed.push(p);
            continue;
        }
        if cur.scope.as_ref().is_some_and(|s| !s.contains(&p.id)) {
            continue;
        }
        if p.username.is_empty() {
            cur.nameless += 1;
        }
        if groups_read && let Some(g) = p.group_id.filter(|g| cur.groups.contains_key(g)) {
            work.out.memberships.push(model::membership(model::group_gid(g), p.id));
            by_group.entry(g).or_default().push(p.id);
        }
        work.out.users.push(p.user());
    }
    for (g, members) in by_group {
        cur.journal.append(model::group_gid(g), members);
    }
    if paging.advance(page.after, &what)? {
        return Ok(Step::Users { paging });
    }
    Ok(match cur.mode {
        Mode::Incremental { .. } if api.s.groups_from.roles() && !cur.changed.is_empty() => Step::UserRoles {
            // A user updated while the listing was paged may be listed twice; one call will do.
            queue: cur
                .changed
                .iter()
                .map(|p| p.id)
                .collect::<BTreeSet<i64>>()
                .into_iter()
                .collect(),
        },
        _ => Step::Finish,
    })
}

fn user_roles(api: &Api<'_>, cur: &mut Cursor, mut queue: VecDeque<i64>) -> Result<Step, PluginError> {
    for _ in 0..ROLE_CALLS_PER_STEP {
        let Some(id) = queue.pop_front() else { break };
        let path = format!("/api/2/users/{id}/roles");
        let roles: Option<Vec<i64>> = api.json_opt(&api.url(&path, &[]), &what(&path))?;
        cur.roles_of.push((id, roles));
    }
    Ok(if queue.is_empty() {
        Step::Finish
    } else {
        Step::UserRoles { queue }
    })
}

fn finish(api: &Api<'_>, cur: Cursor, work: &mut Work<'_>) -> Result<DeltaState, PluginError> {
    let clock = cur
        .clock
        .map_or_else(SystemTime::now, |s| UNIX_EPOCH + Duration::from_secs(s));
    let since = clock
        .checked_sub(OVERLAP)
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let s = api.s;
    let filter = !s.roles.is_empty();
    let mut nameless = cur.nameless;
    // Under a `roles` filter the OneLogin groups that matter are those holding a user in scope:
    // the others are not emitted, and one that loses its last such member leaves.
    let groups_held = filter && s.groups_from.groups();
    let state = match cur.mode {
        Mode::Full => {
            let group_members = cur.journal.index("group:");
            if groups_held {
                let held: HashSet<&str> = group_members.groups().collect();
                work.out.groups.extend(
                    cur.groups
                        .iter()
                        .filter(|(id, _)| held.contains(model::group_gid(**id).as_str()))
                        .map(|(id, name)| model::group_group(*id, name)),
                );
            }
            DeltaState {
                since,
                roles: Rc::unwrap_or_clone(cur.roles),
                groups: Rc::unwrap_or_clone(cur.groups),
                role_members: cur.journal.index("role:"),
                group_members,
                scope: filter.then(|| cur.journal.users("role:")),
                users: cur.listed,
            }
        }
        Mode::Incremental { prior } => {
            let mut st = Rc::unwrap_or_clone(prior);
            let out = &mut work.out;
            let held_before: HashSet<String> = st.group_members.groups().map(str::to_string).collect();
            for id in st.roles.keys().filter(|id| !cur.roles.contains_key(id)) {
                let gid = model::role_gid(*id);
                out.removed_memberships.extend(st.role_members.remove_group(&gid));
                out.removed_groups.push(Removal {
                    id: gid,
                    kind: RemovalKind::Deleted,
                });
            }
            if s.groups_from.groups() {
                for id in st.groups.keys().filter(|id| !cur.groups.contains_key(id)) {
                    let gid = model::group_gid(*id);
                    out.removed_memberships.extend(st.group_members.remove_group(&gid));
                    if !groups_held || held_before.contains(&gid) {
                        out.removed_groups.push(Removal {
                            id: gid,
                            kind: RemovalKind::Deleted,
                        });
                    }
                }
            }
            // Looked up per changed user: a map, as are the scope (a set) and the member indexes.
            let roles_of: HashMap<i64, Option<Vec<i64>>> = cur.roles_of.into_iter().collect();
            let mut scope = st.scope.take().unwrap_or_default();
            for p in &cur.changed {
                let held: Option<Vec<String>> = match roles_of.get(&p.id) {
                    // Deleted between the listing and its roles: the next full fetch sees it gone.
                    Some(None) => continue,
                    Some(Some(ids)) => Some(
                        ids.iter()
                            .filter(|id| cur.roles.contains_key(id))
                            .map(|id| model::role_gid(*id))
                            .collect(),
                    ),
                    None => None,
                };
                let uid = p.id.to_string();
                let in_scope = !filter || held.as_ref().is_some_and(|h| !h.is_empty());
                if in_scope {
                    if p.username.is_empty() {
                        nameless += 1;
                    }
                    out.users.push(p.user());
                    if let Some(held) = held {
                        let d = st.role_members.replace_user(&uid, held);
                        out.memberships.extend(d.added);
                        out.removed_memberships.extend(d.removed);
                    }
                    if s.groups_from.groups() {
                        let group = p.group_id.filter(|g| cur.groups.contains_key(g)).map(model::group_gid);
                        let d = st.group_members.replace_user(&uid, group);
                        out.memberships.extend(d.added);
                        out.removed_memberships.extend(d.removed);
                    }
                    if filter {
                        scope.insert(p.id);
                    }
                } else if filter && scope.remove(&p.id) {
                    // No longer holds a role of the scope: out of it, and may come back.
                    out.removed_memberships.extend(st.role_members.remove_user(&uid));
                    out.removed_memberships.extend(st.group_members.remove_user(&uid));
                    out.removed_users.push(Removal {
                        id: uid,
                        kind: RemovalKind::SoftDeleted,
                    });
                }
            }
            if groups_held {
                let held: HashSet<&str> = st.group_members.groups().collect();
                for (id, name) in cur.groups.iter() {
                    let gid = model::group_gid(*id);
                    let (was, is) = (held_before.contains(&gid), held.contains(gid.as_str()));
                    if is && (!was || st.groups.get(id) != Some(name)) {
                        out.groups.push(model::group_group(*id, name));
                    } else if was && !is {
                        // Still in OneLogin, and may hold a user in scope again.
                        out.removed_groups.push(Removal {
                            id: gid,
                            kind: RemovalKind::SoftDeleted,
                        });
                    }
                }
            }
            st.scope = filter.then_some(scope);
            st.since = since;
            st.roles = Rc::unwrap_or_clone(cur.roles);
            st.groups = Rc::unwrap_or_clone(cur.groups);
            st
        }
    };
    if nameless > 0 {
        roster_sdk::log(
            Level::Warn,
            &format!(
                "{nameless} OneLogin user(s) have no {}; Roster skips users without a username",
                s.username_attribute.field()
            ),
        );
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<(i64, String)> {
        vec![
            (1, "Engineering".into()),
            (2, "Sales".into()),
            (3, "Ops".into()),
            (4, "Ops".into()),
        ]
    }

    #[test]
    fn roles_resolve_by_name_or_id_and_mistakes_are_named() {
        let r = resolve(&["engineering".into(), "3".into()], &roles()).unwrap();
        assert_eq!(r.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(resolve(&[], &roles()).unwrap().len(), 4);
        let e = resolve(&["Marketing".into()], &roles()).unwrap_err();
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("no role named or numbered `Marketing`")),
            "{e:?}"
        );
        let e = resolve(&["Ops".into()], &roles()).unwrap_err();
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("2 OneLogin roles are named `Ops` (ids 3, 4)")),
            "{e:?}"
        );
    }
}
