//! A full fetch, in the order Bitbucket's own Crowd directory reads (crowd-rest.md §6): the
//! event token first (so changes made during the listing are replayed by the next incremental
//! fetch), every user, every group, then every group's direct members — from the one
//! `/group/membership` document where the server has it, else group by group.

use std::collections::BTreeSet;
use std::ops::Bound;

use roster_sdk::driver::{Next, Work};
use roster_sdk::paging::Overlapping;
use roster_sdk::{Level, Membership, PluginError, Response};

use crate::cursor::{Cursor, DeltaState, Events, Step};
use crate::model::{self, group_id, name_key};
use crate::rest::{Entity, Members, Server, product, read_list, sees_no_users, xml_failure};
use crate::xml::{self, XmlError};

/// The first step: the event token when incremental synchronisation is wanted.
pub fn begin(srv: &Server<'_>) -> Result<Cursor, PluginError> {
    let events = if srv.s.use_incremental_sync {
        initial_token(srv)?
    } else {
        Events::Off
    };
    Ok(Cursor {
        step: Step::Users { start: 0 },
        events,
        users: Default::default(),
        groups: Default::default(),
    })
}

/// `GET /event`: the token to continue from, or why the server offers none.
pub fn initial_token(srv: &Server<'_>) -> Result<Events, PluginError> {
    let what = "take the event token (GET /event)";
    let resp = srv.get(&srv.url("/event"), what)?;
    if resp.status == 404 {
        roster_sdk::log(
            Level::Info,
            "the server has no event resource (GET /event answered 404): every fetch reads everything",
        );
        return Ok(Events::Unsupported);
    }
    if !resp.is_success() {
        if model::error_entity(&resp.body).is_some_and(|e| e.reason == "INCREMENTAL_SYNC_NOT_AVAILABLE") {
            return Ok(unavailable(&resp));
        }
        return Ok(no_token(srv.failure(&resp, what)));
    }
    let attrs = match xml::for_each::<XmlError>(&resp.body, "events", |_| Ok(())) {
        Ok(attrs) => attrs,
        Err(e) => return Ok(no_token(xml_failure(what, &resp.body, e))),
    };
    let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    match (get("incrementalSynchronisationAvailable"), get("newEventToken")) {
        (Some("true"), Some(token)) if !token.is_empty() => Ok(Events::Token {
            token: token.to_string(),
        }),
        _ => Ok(unavailable(&resp)),
    }
}

/// A `GET /event` the server answered but did not give a token with: the token only saves the
/// next run from reading everything, so the fetch goes on without it (crowd-rest.md §6, full
/// sync step 1: "failures are logged and ignored"). A request that got no answer at all is
/// not this: it stays the transient error it is, and the host retries the page, as the
/// listings right after it would fail the same way.
fn no_token(e: PluginError) -> Events {
    let (PluginError::Config(why)
    | PluginError::Auth(why)
    | PluginError::Transient(why)
    | PluginError::ExpiredDelta(why)
    | PluginError::Fatal(why)) = e;
    roster_sdk::log(
        Level::Warn,
        &format!("{why}; reading everything without an event token, so the next run reads everything too"),
    );
    Events::Failed { why }
}

fn unavailable(resp: &Response) -> Events {
    let product = product(resp).unwrap_or_else(|| "the server".into());
    roster_sdk::log(
        Level::Info,
        &format!(
            "{product} says incremental synchronisation is not available (incrementalSynchronisationAvailable=false): every fetch reads everything"
        ),
    );
    Events::Unavailable
}

/// Where the next page starts after `n` entities from `start`, `added` of them not seen
/// before; `None` when the listing is complete (always, without a `page_size`: one request
/// reads it all). Pages overlap, so a deletion between two pages skips nobody.
fn next_start(srv: &Server<'_>, start: u64, n: usize, added: usize) -> Option<u64> {
    srv.s
        .page_size
        .and_then(|size| Overlapping::new(size).next(start, n, added))
}

/// Runs one step.
pub fn step(srv: &Server<'_>, mut cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
    let max = srv.s.max_results();
    match cur.step.clone() {
        Step::Users { start } => {
            let what = "list users (POST /search?entity-type=user)";
            let mut added = 0usize;
            let n = srv.search(Entity::User, start, &max, what, |el| {
                let u = model::user(el, what)?;
                if let std::collections::btree_map::Entry::Vacant(v) = cur.users.entry(name_key(&u.username)) {
                    v.insert(u.id.clone());
                    work.out.users.push(u);
                    added += 1;
                }
                Ok(())
            })?;
            if start == 0 && n == 0 {
                return Err(PluginError::Fatal(format!("{what}: {}", sees_no_users(srv, None))));
            }
            work.expect(added as u64);
            cur.step = match next_start(srv, start, n, added) {
                Some(start) => Step::Users { start },
                None => Step::Groups { start: 0 },
            };
        }
        Step::Groups { start } => {
            let what = "list groups (POST /search?entity-type=group)";
            let mut added = 0usize;
            let n = srv.search(Entity::Group, start, &max, what, |el| {
                let g = model::group(el, what)?;
                // Names differing only in case are one group to Crowd; the first is kept.
                if let std::collections::btree_map::Entry::Vacant(v) = cur.groups.entry(g.id.clone()) {
                    v.insert(g.name.clone());
                    work.out.groups.push(g);
                    added += 1;
                }
                Ok(())
            })?;
            work.expect(added as u64);
            cur.step = match next_start(srv, start, n, added) {
                Some(start) => Step::Groups { start },
                None => Step::Memberships,
            };
        }
        Step::Memberships => {
            let what = "read every group's members (GET /group/membership)";
            let resp = srv.get(&srv.url("/group/membership"), what)?;
            if resp.status == 404 {
                roster_sdk::log(
                    Level::Info,
                    "memberships: the server has no /group/membership document (404); reading each group's members, two requests per group",
                );
                return Ok(match first_group(&cur) {
                    Some(group) => {
                        cur.step = Step::PerGroup {
                            group,
                            members: Members::Users,
                            start: 0,
                            last: BTreeSet::new(),
                        };
                        Next::Continue(cur)
                    }
                    None => Next::Done(cur.into_state()),
                });
            }
            let resp = srv.ok(resp, what)?;
            let nested = srv.s.use_nested_groups;
            let out = &mut work.out.memberships;
            xml::for_each::<XmlError>(&resp.body, "memberships", |m| {
                let Some(gid) = m.attr("group").map(group_id).filter(|g| cur.groups.contains_key(g)) else {
                    return Ok(());
                };
                for u in model::names_in(&m, "users", "user") {
                    if let Some(id) = cur.users.get(&name_key(&u)) {
                        out.push(membership(&gid, id, Member::User));
                    }
                }
                if nested {
                    for c in model::names_in(&m, "groups", "group") {
                        let child = group_id(&c);
                        if cur.groups.contains_key(&child) {
                            out.push(membership(&gid, &child, Member::Group));
                        }
                    }
                }
                Ok(())
            })
            .map_err(|e| xml_failure(what, &resp.body, e))?;
            roster_sdk::log(
                Level::Info,
                "memberships: read from the /group/membership document in one request",
            );
            return Ok(Next::Done(cur.into_state()));
        }
        Step::PerGroup {
            group,
            members,
            start,
            last,
        } => {
            let name = cur.groups.get(&group).cloned().unwrap_or_else(|| group.clone());
            let (what, root, item) = match members {
                Members::Users => ("list a group's users (GET /group/user/direct)", "users", "user"),
                Members::Groups => (
                    "list a group's child groups (GET /group/child-group/direct)",
                    "groups",
                    "group",
                ),
            };
            let resp = srv.get(&srv.members_url(members, &name, start), what)?;
            let mut page = BTreeSet::new();
            // A group deleted since the listing has no members (Atlassian's client does the same).
            let found = if resp.status == 404 {
                0
            } else {
                read_list(&srv.ok(resp, what)?, root, item, what, |el| {
                    let member = name_key(model::name(el, what)?);
                    // Read on the previous page, where the pages overlap.
                    if last.contains(&member) || !page.insert(member.clone()) {
                        return Ok(());
                    }
                    match members {
                        Members::Users => {
                            if let Some(id) = cur.users.get(&member) {
                                work.out.memberships.push(membership(&group, id, Member::User));
                            }
                        }
                        Members::Groups => {
                            if cur.groups.contains_key(&member) {
                                work.out.memberships.push(membership(&group, &member, Member::Group));
                            }
                        }
                    }
                    Ok(())
                })?
            };
            let next = match next_start(srv, start, found, page.len()) {
                Some(start) => Some((group, members, start, page)),
                None if members == Members::Users && srv.s.use_nested_groups => {
                    Some((group, Members::Groups, 0, BTreeSet::new()))
                }
                None => next_group(&cur, &group).map(|g| (g, Members::Users, 0, BTreeSet::new())),
            };
            match next {
                Some((group, members, start, last)) => {
                    cur.step = Step::PerGroup {
                        group,
                        members,
                        start,
                        last,
                    }
                }
                None => return Ok(Next::Done(cur.into_state())),
            }
        }
    }
    Ok(Next::Continue(cur))
}

fn first_group(cur: &Cursor) -> Option<String> {
    cur.groups.keys().next().cloned()
}

fn next_group(cur: &Cursor, after: &str) -> Option<String> {
    cur.groups
        .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
        .next()
        .map(|(k, _)| k.clone())
}

/// What a membership's member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Member {
    /// A user, by its id.
    User,
    /// A child group, by its id.
    Group,
}

/// A direct membership.
pub fn membership(group: &str, member: &str, kind: Member) -> Membership {
    Membership {
        group_id: group.to_string(),
        member_id: member.to_string(),
        member_is_group: kind == Member::Group,
    }
}
