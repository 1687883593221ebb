//! A fetch, one step at a time: every user (`briefRepresentation=false`, for their attributes),
//! then the top-level groups page by page, each followed by the work it brings: its direct
//! members and its sub-groups — from `/groups/{id}/children` when Keycloak counts them
//! (`subGroupCount`, Keycloak 23 and later), or inline in `subGroups` (before 23) — and theirs.
//!
//! Every listing pages by `first`/`max` with one item of overlap ([`Offset`]): Keycloak sends no
//! next link or total, a short page ends a listing, and a listing that moved back under the
//! fetch (a deletion before the page) is read again from a page earlier rather than read with an
//! item missing.
//!
//! Keycloak's admin API has no changed-since for users, groups or members, so there is no delta
//! state: every fetch reads everything and an incremental run is a full one.

use std::collections::VecDeque;

use roster_sdk::driver::{Next, Records, Work};
use roster_sdk::paging::Offset;
use roster_sdk::{Level, PluginError};
use serde::{Deserialize, Serialize};

use crate::api::{Keycloak, Listing};
use crate::model::{self, KcGroup, KcMember, KcUser};
use crate::settings::Subgroups;

/// Work a group brings, done before the next page of top-level groups.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k", rename_all = "kebab-case")]
pub enum Task {
    /// A group's direct members.
    Members {
        /// The group's id.
        group: String,
        /// The next page.
        at: Offset,
    },
    /// A group's sub-groups (Keycloak 23 and later).
    Children {
        /// The group's id.
        group: String,
        /// Its path, for sub-groups Keycloak sends without one.
        path: String,
        /// The next page.
        at: Offset,
    },
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Cursor {
    /// The users listing.
    Users {
        /// The next page.
        at: Offset,
    },
    /// The top-level groups listing.
    Groups {
        /// The next page.
        at: Offset,
    },
    /// The groups read so far: their members and sub-groups.
    Tasks {
        /// What is left (front: next).
        tasks: VecDeque<Task>,
        /// The top-level groups listing's next page, after these.
        then: Option<Offset>,
    },
}

/// The first cursor of a fetch.
pub fn begin() -> Cursor {
    Cursor::Users { at: Offset::default() }
}

/// Emits group `g` (under `parent`'s path) and queues its members and sub-groups; inline
/// sub-groups (before Keycloak 23) are emitted at once, as they came with it.
fn visit(kc: &Keycloak<'_>, g: &KcGroup, parent: Option<(&str, &str)>, out: &mut Records, tasks: &mut VecDeque<Task>) {
    let path = g.path_under(parent.map(|(_, p)| p));
    out.groups.push(model::group(g, &path, kc.s));
    if let (Some((parent_id, _)), Subgroups::Nested) = (parent, kc.s.subgroups) {
        out.memberships.push(model::subgroup(parent_id, &g.id));
    }
    tasks.push_back(Task::Members {
        group: g.id.clone(),
        at: Offset::default(),
    });
    match g.sub_group_count {
        Some(0) => {}
        Some(_) => tasks.push_back(Task::Children {
            group: g.id.clone(),
            path: path.clone(),
            at: Offset::default(),
        }),
        None => {
            for child in &g.sub_groups {
                visit(kc, child, Some((&g.id, &path)), out, tasks);
            }
        }
    }
}

fn emit_users(kc: &Keycloak<'_>, out: &mut Records, users: &[KcUser]) {
    let mut skipped = 0usize;
    for u in users {
        match model::user(u, kc.s) {
            Some(r) => out.users.push(r),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        roster_sdk::log(
            Level::Warn,
            &format!(
                "keycloak: skipped {skipped} user(s) without {}; every user needs it as their Bitbucket username (set username_attribute to one they all have)",
                kc.s.username_attribute
            ),
        );
    }
}

/// Runs one step, adding what it read to `work`; the next cursor, or the end.
pub fn step(kc: &Keycloak<'_>, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, ()>, PluginError> {
    Ok(match cur {
        Cursor::Users { at } => {
            let page = kc
                .page::<KcUser>(&Listing::Users, &at, |u| &u.id)?
                .ok_or_else(|| PluginError::Fatal("keycloak: list users: not found".into()))?;
            emit_users(kc, &mut work.out, &page.items);
            Next::Continue(match page.next {
                Some(at) => Cursor::Users { at },
                None => Cursor::Groups { at: Offset::default() },
            })
        }
        Cursor::Groups { at } => {
            let page = kc
                .page::<KcGroup>(&Listing::Groups, &at, |g| &g.id)?
                .ok_or_else(|| PluginError::Fatal("keycloak: list groups: not found".into()))?;
            let mut tasks = VecDeque::new();
            for g in &page.items {
                visit(kc, g, None, &mut work.out, &mut tasks);
            }
            Next::Continue(Cursor::Tasks { tasks, then: page.next })
        }
        Cursor::Tasks { mut tasks, then } => {
            let Some(task) = tasks.pop_front() else {
                return Ok(match then {
                    Some(at) => Next::Continue(Cursor::Groups { at }),
                    None => Next::Done(None),
                });
            };
            match task {
                Task::Members { group, at } => {
                    // A group deleted since it was listed has no members to read.
                    if let Some(page) = kc.page::<KcMember>(&Listing::Members(group.clone()), &at, |m| &m.id)? {
                        for m in &page.items {
                            work.out.memberships.push(model::membership(&group, &m.id));
                        }
                        if let Some(at) = page.next {
                            tasks.push_front(Task::Members { group, at });
                        }
                    }
                }
                Task::Children { group, path, at } => {
                    if let Some(page) = kc.page::<KcGroup>(&Listing::Children(group.clone()), &at, |g| &g.id)? {
                        for child in &page.items {
                            visit(kc, child, Some((&group, &path)), &mut work.out, &mut tasks);
                        }
                        if let Some(at) = page.next {
                            tasks.push_front(Task::Children { group, path, at });
                        }
                    }
                }
            }
            Next::Continue(Cursor::Tasks { tasks, then })
        }
    })
}
