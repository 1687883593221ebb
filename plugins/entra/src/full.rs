//! A full fetch, one step at a time. It starts by taking "sync from now" delta links, so any
//! change made while the listing runs is replayed by the next incremental fetch.
//!
//! Tenant scope: users (`/users`, `$top`, `$select`, optional `$filter`), then groups page by
//! page, each group followed by its direct members. Groups and app scopes: resolve the listed
//! groups (or the application's assignments), expand each root with `transitiveMembers` (users
//! and nested groups), then list every group in the tree's direct members; the host flattens.

use std::collections::VecDeque;

use roster_sdk::{Page, PluginError};

use crate::cursor::{Cursor, PendingGroup, Step};
use crate::graph::{Graph, Needs};
use crate::model;
use crate::scope::{self, EVENTUAL, seg};
use crate::settings::{GROUP_PROPERTIES, Scope};

/// What `/groups/delta` tracks: the group's properties and its members.
pub fn groups_delta_select() -> String {
    let mut p: Vec<&str> = GROUP_PROPERTIES.iter().copied().filter(|p| *p != "id").collect();
    p.push("members");
    p.join(",")
}

fn users_listing(g: &Graph<'_>) -> String {
    let top = g.s.page_size.to_string();
    let select = g.s.user_select();
    let mut q = vec![("$select", select.as_str()), ("$top", top.as_str()), ("$count", "true")];
    if let Some(f) = &g.s.user_filter {
        q.push(("$filter", f));
    }
    g.url("/users", &q)
}

fn groups_listing(g: &Graph<'_>) -> String {
    let top = g.s.page_size.to_string();
    let select = GROUP_PROPERTIES.join(",");
    let mut q = vec![("$select", select.as_str()), ("$top", top.as_str()), ("$count", "true")];
    if let Some(f) = &g.s.group_filter {
        q.push(("$filter", f));
    }
    g.url("/groups", &q)
}

/// The properties `transitiveMembers` returns: a user's and a group's.
fn transitive_select(g: &Graph<'_>) -> String {
    let mut props: Vec<String> = g.s.user_select().split(',').map(str::to_string).collect();
    for p in GROUP_PROPERTIES {
        if !props.iter().any(|x| x == p) {
            props.push(p.to_string());
        }
    }
    props.join(",")
}

fn add_hint(cur: &mut Cursor, n: Option<u64>) {
    if let Some(n) = n {
        cur.hint = Some(cur.hint.unwrap_or(0) + n);
    }
}

/// Runs one step of a full fetch, adding what it read to `page`.
pub fn advance(g: &Graph<'_>, cur: &mut Cursor, page: &mut Page) -> Result<(), PluginError> {
    let s = g.s;
    let step = std::mem::replace(&mut cur.step, Step::Done);
    cur.step = match step {
        Step::Start => {
            let users = g.url(
                "/users/delta",
                &[("$select", &s.user_select()), ("$deltatoken", "latest")],
            );
            let users = g.page(&users, "start tracking user changes (users delta)", Needs::Users)?;
            let groups = g.url(
                "/groups/delta",
                &[("$select", &groups_delta_select()), ("$deltatoken", "latest")],
            );
            let groups = g.page(&groups, "start tracking group changes (groups delta)", Needs::Groups)?;
            let (Some(u), Some(gr)) = (users.delta_link, groups.delta_link) else {
                return Err(PluginError::Fatal(
                    "Graph answered a `$deltatoken=latest` request without an @odata.deltaLink".into(),
                ));
            };
            cur.token.users = Some(u);
            cur.token.groups = Some(gr);
            match s.scope {
                Scope::Tenant => Step::Users { url: users_listing(g) },
                Scope::Groups | Scope::App => Step::Roots,
            }
        }
        Step::Users { url } => {
            let c = g.page_with(&url, "list users", Needs::Users, EVENTUAL)?;
            if !url.contains("skiptoken") {
                add_hint(cur, c.count);
            }
            scope::emit_users(g, page, &c.value)?;
            match c.next_link {
                Some(next) => Step::Users { url: next },
                None => Step::Groups { url: groups_listing(g) },
            }
        }
        Step::Groups { url } => {
            let c = g.page_with(&url, "list groups", Needs::Groups, EVENTUAL)?;
            if !url.contains("skiptoken") {
                add_hint(cur, c.count);
            }
            let pending = c
                .value
                .into_iter()
                .map(|o| {
                    Ok(PendingGroup {
                        id: model::id(&o, "group")?,
                        record: Some(o),
                    })
                })
                .collect::<Result<VecDeque<_>, PluginError>>()?;
            Step::Members {
                pending,
                url: None,
                then: c.next_link,
            }
        }
        Step::Members { mut pending, url, then } => {
            let Some(front) = pending.front() else {
                cur.step = match then {
                    Some(next) => Step::Groups { url: next },
                    None => Step::Done,
                };
                return Ok(());
            };
            let url = url.unwrap_or_else(|| {
                g.url(
                    &format!("/groups/{}/members", seg(&front.id)),
                    &[("$select", "id"), ("$top", &s.page_size.to_string())],
                )
            });
            let what = format!("list the members of group {}", front.id);
            let next = match g.page_opt(&url, &what, Needs::Groups)? {
                Some(c) => {
                    for m in &c.value {
                        if let Some(ms) = model::membership(&front.id, m)? {
                            page.memberships.push(ms);
                        }
                    }
                    c.next_link
                }
                // Deleted since it was listed: the next incremental fetch reports it.
                None => None,
            };
            if next.is_none()
                && let Some(done) = pending.pop_front()
                && let Some(record) = done.record
            {
                page.groups.push(model::group(&record)?);
            }
            Step::Members {
                pending,
                url: next,
                then,
            }
        }
        Step::Roots => {
            let mut roots = VecDeque::new();
            let mut direct = VecDeque::new();
            if s.scope == Scope::App {
                let sp = scope::service_principal(g)?;
                let a = scope::assignments(g, &sp)?;
                let ids: Vec<String> = a.groups.iter().cloned().collect();
                for o in scope::groups_by_id(g, &ids, None)? {
                    let grp = model::group(&o)?;
                    cur.token.tree.insert(grp.id.clone());
                    roots.push_back(grp.id.clone());
                    page.groups.push(grp);
                }
                direct.extend(a.users.iter().cloned());
                cur.token.direct_users = a.users;
                cur.token.assigned = a.all;
            } else {
                for wanted in s.groups.iter().filter(|w| !w.trim().is_empty()) {
                    let grp = model::group(&scope::resolve_group(g, wanted)?)?;
                    if cur.token.tree.insert(grp.id.clone()) {
                        roots.push_back(grp.id.clone());
                        page.groups.push(grp);
                    }
                }
            }
            // App scope: directly assigned users first; the roots are the tree until expanded.
            if direct.is_empty() {
                Step::Transitive { roots, url: None }
            } else {
                Step::DirectUsers { ids: direct }
            }
        }
        Step::DirectUsers { mut ids } => {
            let batch: Vec<String> = (0..scope::IN_CLAUSE_MAX).filter_map(|_| ids.pop_front()).collect();
            let found = scope::users_by_id(g, &batch, None)?;
            scope::emit_users(g, page, &found)?;
            if ids.is_empty() {
                let roots = cur.token.tree.iter().cloned().collect::<VecDeque<String>>();
                Step::Transitive { roots, url: None }
            } else {
                Step::DirectUsers { ids }
            }
        }
        Step::Transitive { mut roots, url } => {
            let Some(root) = roots.front().cloned() else {
                let pending = cur
                    .token
                    .tree
                    .iter()
                    .map(|id| PendingGroup {
                        id: id.clone(),
                        record: None,
                    })
                    .collect();
                cur.step = Step::Members {
                    pending,
                    url: None,
                    then: None,
                };
                return Ok(());
            };
            let url = url.unwrap_or_else(|| {
                g.url(
                    &format!("/groups/{}/transitiveMembers", seg(&root)),
                    &[("$select", &transitive_select(g)), ("$top", &s.page_size.to_string())],
                )
            });
            let what = format!("list the transitive members of group {root}");
            let next = match g.page_opt(&url, &what, Needs::Groups)? {
                Some(c) => {
                    for o in &c.value {
                        match model::member_is_group(o) {
                            Some(false) => scope::emit_users(g, page, std::slice::from_ref(o))?,
                            Some(true) => {
                                let grp = model::group(o)?;
                                if cur.token.tree.insert(grp.id.clone()) {
                                    page.groups.push(grp);
                                }
                            }
                            None => {}
                        }
                    }
                    c.next_link
                }
                None => {
                    return Err(PluginError::Config(format!(
                        "group {root} of the scope was deleted while Roster read it; run again"
                    )));
                }
            };
            if next.is_none() {
                roots.pop_front();
            }
            Step::Transitive { roots, url: next }
        }
        other => other,
    };
    Ok(())
}
