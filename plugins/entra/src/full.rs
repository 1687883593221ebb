//! A full fetch, one step at a time. It starts by taking "sync from now" delta links, so any
//! change made while the listing runs is replayed by the next incremental fetch.
//!
//! Tenant scope: users (`/users`, `$top`, `$select`, optional `$filter`), then groups page by
//! page, each group followed by its direct members. Groups and app scopes: resolve the listed
//! groups (or the application's assignments), expand each root with `transitiveMembers` (users
//! and nested groups), then list every group in the tree's direct members; the host flattens.

use std::collections::VecDeque;

use roster_sdk::PluginError;
use roster_sdk::driver::Work;
use roster_sdk::http::path_segment;

use crate::cursor::{Cursor, PendingGroup, Step};
use crate::graph::{Graph, Needs};
use crate::model;
use crate::scope::{self, EVENTUAL};
use crate::settings::{GROUP_PROPERTIES, Scope};

/// What `/groups/delta` tracks: the group's properties and its members.
pub fn groups_delta_select() -> String {
    let mut p: Vec<&str> = GROUP_PROPERTIES.iter().copied().filter(|p| *p != "id").collect();
    p.push("members");
    p.join(",")
}

/// A listing of `/users` or `/groups`. Without a filter it is a standard query, answered from
/// the directory itself; an administrator's filter may need an advanced query, which Graph
/// answers from an index that lags by seconds (changes it misses are replayed by the delta
/// links taken before the listing).
fn listing(g: &Graph<'_>, path: &str, select: &str, filter: Option<&str>) -> String {
    let top = g.s.page_size.to_string();
    let mut q = vec![("$select", select), ("$top", top.as_str())];
    if let Some(f) = filter {
        q.push(("$filter", f));
        q.push(("$count", "true"));
    }
    g.url(path, &q)
}

fn users_listing(g: &Graph<'_>) -> String {
    listing(g, "/users", &g.s.user_select(), g.s.user_filter.as_deref())
}

fn groups_listing(g: &Graph<'_>) -> String {
    listing(g, "/groups", &GROUP_PROPERTIES.join(","), g.s.group_filter.as_deref())
}

fn listing_headers(filter: Option<&str>) -> &'static [(&'static str, &'static str)] {
    if filter.is_some() { EVENTUAL } else { &[] }
}

/// How many objects a listing will return, for progress: one `$count` request (an estimate
/// from the advanced-query index, which is all a progress bar needs).
fn count(g: &Graph<'_>, path: &str, filter: Option<&str>, needs: Needs) -> Result<Option<u64>, PluginError> {
    let mut q = vec![("$select", "id"), ("$top", "1"), ("$count", "true")];
    if let Some(f) = filter {
        q.push(("$filter", f));
    }
    let url = g.url(path, &q);
    Ok(g.page_with(&url, &format!("count {}", &path[1..]), needs, EVENTUAL)?
        .count)
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

/// Runs one step of a full fetch, adding what it read to `work`.
pub fn advance(g: &Graph<'_>, cur: &mut Cursor, work: &mut Work<'_>) -> Result<(), PluginError> {
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
                Scope::Tenant => {
                    let users = count(g, "/users", s.user_filter.as_deref(), Needs::Users)?;
                    let groups = count(g, "/groups", s.group_filter.as_deref(), Needs::Groups)?;
                    for n in [users, groups].into_iter().flatten() {
                        work.expect(n);
                    }
                    Step::Users { url: users_listing(g) }
                }
                Scope::Groups | Scope::App => Step::Roots,
            }
        }
        Step::Users { url } => {
            let headers = listing_headers(s.user_filter.as_deref());
            let c = g.page_with(&url, "list users", Needs::Users, headers)?;
            scope::emit_users(g, &mut work.out, &c.value)?;
            match c.next_link {
                Some(next) => Step::Users { url: next },
                None => Step::Groups { url: groups_listing(g) },
            }
        }
        Step::Groups { url } => {
            let headers = listing_headers(s.group_filter.as_deref());
            let c = g.page_with(&url, "list groups", Needs::Groups, headers)?;
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
            // The groups in scope: a group that later enters it has its members read in full.
            cur.token.tree.extend(pending.iter().map(|p| p.id.clone()));
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
                    &format!("/groups/{}/members", path_segment(&front.id)),
                    &[("$select", "id"), ("$top", &s.page_size.to_string())],
                )
            });
            let what = format!("list the members of group {}", front.id);
            let next = match g.page_opt(&url, &what, Needs::Groups)? {
                Some(c) => {
                    for m in &c.value {
                        if let Some(ms) = model::membership(&front.id, m)? {
                            work.out.memberships.push(ms);
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
                work.out.groups.push(model::group(&record)?);
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
                let found = scope::groups_by_id(g, &ids, None)?;
                confirm_gone(g, "/groups", &scope::missing(&ids, &found), Needs::Groups)?;
                for o in found {
                    let grp = model::group(&o)?;
                    cur.token.tree.insert(grp.id.clone());
                    roots.push_back(grp.id.clone());
                    work.out.groups.push(grp);
                }
                direct.extend(a.users.iter().cloned());
                cur.token.direct_users = a.users;
                cur.token.assigned = a.all;
            } else {
                for wanted in s.groups.iter().filter(|w| !w.trim().is_empty()) {
                    let grp = model::group(&scope::resolve_group(g, wanted)?)?;
                    if cur.token.tree.insert(grp.id.clone()) {
                        roots.push_back(grp.id.clone());
                        work.out.groups.push(grp);
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
            confirm_gone(g, "/users", &scope::missing(&batch, &found), Needs::Users)?;
            note_members(cur, &found);
            scope::emit_users(g, &mut work.out, &found)?;
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
                    &format!("/groups/{}/transitiveMembers", path_segment(&root)),
                    &[("$select", &transitive_select(g)), ("$top", &s.page_size.to_string())],
                )
            });
            let what = format!("list the transitive members of group {root}");
            let next = match g.page_opt(&url, &what, Needs::Groups)? {
                Some(c) => {
                    for o in &c.value {
                        match model::member_is_group(o) {
                            Some(false) => {
                                note_members(cur, std::slice::from_ref(o));
                                scope::emit_users(g, &mut work.out, std::slice::from_ref(o))?
                            }
                            Some(true) => {
                                let grp = model::group(o)?;
                                if cur.token.tree.insert(grp.id.clone()) {
                                    work.out.groups.push(grp);
                                }
                            }
                            None => {}
                        }
                    }
                    c.next_link
                }
                None => {
                    return Err(PluginError::Fatal(format!(
                        "group {root} of the scope was deleted while Roster read it; the next run reads the scope as it is then"
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

/// Users of a groups or app scope, remembered in the delta token: a changed user outside them
/// can only enter the scope by joining one of its groups, which `members@delta` reports.
fn note_members(cur: &mut Cursor, users: &[crate::graph::Object]) {
    cur.token
        .members
        .extend(users.iter().filter_map(|o| model::id(o, "user").ok()));
}

/// Objects the application's assignments name that a query did not return: gone (then the
/// assignment is stale and Entra removes it) or not readable yet, which fails the page so the
/// host retries it — never a complete fetch without them.
fn confirm_gone(g: &Graph<'_>, path: &str, ids: &[String], needs: Needs) -> Result<(), PluginError> {
    for id in ids {
        if scope::exists(g, path, id, needs)? {
            return Err(PluginError::Transient(format!(
                "{} {id} is assigned to the application but Graph did not return it yet (replication delay)",
                &path[1..path.len() - 1]
            )));
        }
    }
    Ok(())
}
