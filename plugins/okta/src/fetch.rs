//! A fetch, one step at a time, full or incremental.
//!
//! Org scope: users by `filter` (or by `search` with `user_search`): both, unlike a plain
//! listing, include DEPROVISIONED users, and a user missing from a listing must never read as
//! deleted; then groups (`expand=stats`, so empty groups cost no members request, unless the
//! last run saw members in them: a count of 0 may lag), each followed by its members.
//! Incrementally the same listings narrowed to `lastUpdated` / `lastMembershipUpdated` after
//! the last fetch's start by Okta's clock, less an [`overlap`] that is wider when a search
//! (eventually consistent) finds the changes; a changed group's members are read again and diffed
//! against the [`MemberIndex`](roster_sdk::members::MemberIndex) kept in the delta state.
//! Groups scope: the listed groups by id or exact name, their members (and those users).
//! App scope: the application's users (as provisioning sees them) and groups, the groups'
//! members restricted to the application's users; incrementally all of it again, diffed.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use roster_sdk::driver::{Begin, Next, Records, Shared, Work};
use roster_sdk::http::path_segment;
use roster_sdk::{Level, PluginError, Removal, RemovalKind};

use crate::cursor::{Before, Clock, Cursor, DeltaState, PendingGroup, Record, Step};
use crate::model::{self, AppGroup, AppUser, OktaGroup, OktaUser};
use crate::okta::{Listed, Listing, Okta};
use crate::settings::{Scope, Settings, is_group_id};

/// How far back of the last fetch's start an incremental fetch reads when every change it
/// looks for comes from Okta's primary store (`filter`, reads by id): changes Okta stamped just
/// before its clock said the fetch began are read again.
pub const OVERLAP: Duration = Duration::from_secs(60);

/// The overlap when changes are found through a `search`. Okta's OpenAPI document (listUsers,
/// listGroups): "The `search` parameter results are sourced from an eventually consistent
/// datasource and may not reflect the latest information", with no bound given on the lag; a
/// change the search index shows late is still read if it shows within five minutes, and the
/// periodic full fetch catches anything later.
pub const SEARCH_OVERLAP: Duration = Duration::from_secs(300);

/// The overlap for a source's settings: whether any listing an incremental fetch finds changes
/// with is a search.
pub fn overlap(s: &Settings) -> Duration {
    let searched = match s.scope {
        // Groups are found by group_search, a search expression (a filter cannot express one).
        Scope::Org => true,
        // A group listed by name is found by a name search, and its lastMembershipUpdated read
        // from the search's answer; one listed by id is read from the primary store.
        Scope::Groups => s.groups.iter().any(|g| !is_group_id(g.trim())),
        // Every run reads the assignments in full: no change is looked for by time.
        Scope::App => false,
    };
    if searched || s.user_search.is_some() {
        SEARCH_OVERLAP
    } else {
        OVERLAP
    }
}

/// A full fetch's `since`: everything.
const EPOCH: &str = "1970-01-01T00:00:00.000Z";

/// Members per page of `/groups/{id}/users`: Okta's maximum for that listing.
const MEMBERS_LIMIT: &str = "1000";
/// Users per page of `/apps/{id}/users`: Okta's maximum for that listing.
const APP_USERS_LIMIT: &str = "500";
/// Groups per page of `/apps/{id}/groups`.
const APP_GROUPS_LIMIT: &str = "200";

/// `"` and `\` escaped for a string literal in a search expression.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The users listing: all users (DEPROVISIONED included) or those changed since.
///
/// Without `user_search`, a `filter`: Okta's OpenAPI document says of listUsers' `filter`
/// "Returned users include those with the `DEPROVISIONED` status" (so no user reads as
/// deleted), and unlike `search` it is not "sourced from an eventually consistent datasource"
/// (Okta's filter documentation: it "filters against the most up-to-date data"), so a change
/// made just before the run is not missed. `user_search` can only be a search, and takes
/// [`SEARCH_OVERLAP`] for the lag.
pub fn users_url(o: &Okta<'_>, since: Option<&str>) -> String {
    let changed = format!("lastUpdated gt {}", quoted(since.unwrap_or(EPOCH)));
    let limit = o.s.page_size.to_string();
    match &o.s.user_search {
        Some(narrow) => {
            let search = format!("({narrow}) and {changed}");
            o.url("/api/v1/users", &[("search", &search), ("limit", &limit)])
        }
        None => o.url("/api/v1/users", &[("filter", &changed), ("limit", &limit)]),
    }
}

/// The groups listing: all groups `group_search` admits, or those changed since (their
/// profile or their members).
pub fn groups_url(o: &Okta<'_>, since: Option<&str>) -> String {
    let g = &o.s.group_search;
    let search = match since {
        None => g.clone(),
        Some(t) => format!(
            "({g}) and (lastUpdated gt {t} or lastMembershipUpdated gt {t})",
            t = quoted(t)
        ),
    };
    let limit = o.s.page_size.to_string();
    o.url(
        "/api/v1/groups",
        &[("search", &search), ("limit", &limit), ("expand", "stats")],
    )
}

fn members_url(o: &Okta<'_>, group: &str) -> String {
    o.url(
        &format!("/api/v1/groups/{}/users", path_segment(group)),
        &[("limit", MEMBERS_LIMIT)],
    )
}

fn group_url(o: &Okta<'_>, group: &str) -> String {
    o.url(&format!("/api/v1/groups/{}", path_segment(group)), &[])
}

fn app_id<'s>(o: &Okta<'s>) -> &'s str {
    o.s.app_id.as_deref().unwrap_or_default()
}

/// Resolves one entry of `groups`: an id by reading it, a name by an exact search; with the
/// answer's `Date`.
pub fn resolve_group(o: &Okta<'_>, wanted: &str) -> Result<(OktaGroup, Option<SystemTime>), PluginError> {
    let wanted = wanted.trim();
    if is_group_id(wanted) {
        return o.object_dated::<OktaGroup>(&group_url(o, wanted), &Listing::Groups)?.ok_or_else(|| {
            PluginError::Config(format!(
                "groups: Okta has no group with the id {wanted}; check the id under Directory → Groups (it is in the group's URL)"
            ))
        });
    }
    let search = format!("profile.name eq {}", quoted(wanted));
    let url = o.url("/api/v1/groups", &[("search", &search), ("limit", "200")]);
    let found: Listed<OktaGroup> = o.page(&url, &Listing::Groups)?;
    let mut exact: Vec<OktaGroup> = found
        .items
        .into_iter()
        .filter(|g| g.profile.name.eq_ignore_ascii_case(wanted))
        .collect();
    match exact.len() {
        0 => Err(PluginError::Config(format!(
            "groups: Okta has no group named `{wanted}`; write the name as Directory → Groups shows it, or the group's id (00g…)"
        ))),
        1 => Ok((exact.remove(0), found.date)),
        _ => Err(PluginError::Config(format!(
            "groups: {} Okta groups are named `{wanted}` ({}); list the one you mean by its id",
            exact.len(),
            exact.iter().map(|g| g.id.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The first cursor of a fetch.
pub fn begin(o: &Okta<'_>, from: Begin<DeltaState>) -> Cursor {
    let s = o.s;
    let (since, state, before) = match from {
        Begin::Full => (None, DeltaState::default(), None),
        Begin::Incremental(st) => {
            let since = Some(st.since.clone());
            match s.scope {
                // The app scope is listed again in full and diffed against the last assignments.
                Scope::App => {
                    let before = Before {
                        users: st.users,
                        groups: st.groups,
                    };
                    let state = DeltaState {
                        index: st.index,
                        ..DeltaState::default()
                    };
                    (since, state, Some(before))
                }
                _ => (since, st, None),
            }
        }
    };
    let step = match (s.scope, &since) {
        (Scope::Org, _) | (Scope::Groups, Some(_)) => Step::Users {
            url: users_url(o, since.as_deref()),
        },
        (Scope::Groups, None) => resolve_all(o),
        (Scope::App, _) => Step::App,
    };
    Cursor {
        step,
        since,
        clock: Clock::Unread,
        state: Shared::new(state),
        before,
    }
}

fn resolve_all(o: &Okta<'_>) -> Step {
    Step::Resolve {
        left: o.s.groups.iter().cloned().collect(),
        pending: VecDeque::new(),
    }
}

/// Okta's clock from the fetch's first answer, less the overlap.
fn note_clock(o: &Okta<'_>, cur: &mut Cursor, date: Option<SystemTime>) {
    if cur.clock == Clock::Unread {
        cur.clock = match date {
            Some(t) => Clock::At {
                since: roster_sdk::time::iso8601(t.checked_sub(overlap(o.s)).unwrap_or(t)),
            },
            None => Clock::Missing,
        };
    }
}

/// Users as records, warning about those without the username attribute.
fn emit_users<'a>(o: &Okta<'_>, out: &mut Records, users: impl IntoIterator<Item = &'a OktaUser>) {
    let (records, skipped) = model::users(users, o.s);
    out.users.extend(records);
    if skipped > 0 {
        roster_sdk::log(
            Level::Warn,
            &format!(
                "okta: skipped {skipped} user(s) without profile.{}; every user needs it as their Bitbucket username (set username_attribute to one they all have)",
                o.s.username_attribute
            ),
        );
    }
}

fn empty_if<T>(work: &mut Work<'_>, page: &Listed<T>) {
    if page.items.is_empty() && page.next.is_some() {
        work.empty_page();
    }
}

/// Runs one step, adding what it read to `work`; the next cursor, or the state to continue from.
pub fn step(o: &Okta<'_>, mut cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
    let s = o.s;
    let shared = cur.state.clone();
    let mut guard = shared.get();
    let st = &mut *guard;
    let step = std::mem::replace(&mut cur.step, Step::Finish);
    cur.step = match step {
        Step::Users { url } => {
            let page: Listed<OktaUser> = o.page(&url, &Listing::Users)?;
            note_clock(o, &mut cur, page.date);
            empty_if(work, &page);
            match s.scope {
                Scope::Org => emit_users(o, &mut work.out, &page.items),
                // Changed users outside the listed groups are none of this source's business;
                // a user joining one is read from the group's members.
                _ => emit_users(o, &mut work.out, page.items.iter().filter(|u| st.users.contains(&u.id))),
            }
            match (page.next, s.scope) {
                (Some(next), _) => Step::Users { url: next },
                (None, Scope::Org) => Step::Groups {
                    url: groups_url(o, cur.since.as_deref()),
                },
                (None, _) => resolve_all(o),
            }
        }
        Step::Groups { url } => {
            let page: Listed<OktaGroup> = o.page(&url, &Listing::Groups)?;
            note_clock(o, &mut cur, page.date);
            empty_if(work, &page);
            let mut pending = VecDeque::new();
            for g in page.items {
                // `usersCount` only spares a members request when it cannot remove anyone: Okta's
                // count can lag its members, so members kept from the last run are only ever
                // removed by an actual members listing.
                let known_empty =
                    g.users_count() == Some(0) && (cur.since.is_none() || st.index.members(&g.id).is_empty());
                if known_empty {
                    finish_group(st, read_of(&cur), &g.id, Vec::new(), &mut work.out);
                    work.out.groups.push(model::group(&g));
                } else {
                    pending.push_back(PendingGroup {
                        id: g.id.clone(),
                        record: Record::Listed { group: g },
                    });
                }
            }
            Step::Members {
                pending,
                url: None,
                got: Vec::new(),
                then: page.next,
            }
        }
        Step::Resolve { mut left, mut pending } => {
            let Some(wanted) = left.pop_front() else {
                cur.step = Step::Members {
                    pending,
                    url: None,
                    got: Vec::new(),
                    then: None,
                };
                return Ok(Next::Continue(cur));
            };
            let (g, date) = resolve_group(o, &wanted)?;
            note_clock(o, &mut cur, date);
            let reread = match &cur.since {
                None => st.groups.insert(g.id.clone()),
                Some(since) => {
                    if !st.groups.contains(&g.id) {
                        return Err(PluginError::ExpiredDelta(format!(
                            "the listed group `{wanted}` is now group {}, which was not in scope at the last full fetch",
                            g.id
                        )));
                    }
                    changed_since(g.last_membership_updated.as_deref(), since)
                        && !pending.iter().any(|p: &PendingGroup| p.id == g.id)
                }
            };
            if reread || cur.since.is_some() {
                work.out.groups.push(model::group(&g));
            }
            if reread {
                pending.push_back(PendingGroup {
                    id: g.id.clone(),
                    record: Record::Emitted,
                });
            }
            Step::Resolve { left, pending }
        }
        Step::App => {
            let id = app_id(o);
            let url = o.url(&format!("/api/v1/apps/{}", path_segment(id)), &[]);
            let Some((_, date)) = o.object_dated::<serde_json::Value>(&url, &Listing::App(id.into()))? else {
                return Err(unknown_app(id));
            };
            note_clock(o, &mut cur, date);
            Step::AppUsers {
                url: o.url(
                    &format!("/api/v1/apps/{}/users", path_segment(id)),
                    &[("limit", APP_USERS_LIMIT), ("expand", "user")],
                ),
            }
        }
        Step::AppUsers { url } => {
            let id = app_id(o);
            let page: Listed<AppUser> = o.page(&url, &Listing::App(id.into()))?;
            note_clock(o, &mut cur, page.date);
            empty_if(work, &page);
            st.users.extend(page.items.iter().map(|a| a.id.clone()));
            emit_users(o, &mut work.out, page.items.iter().map(|a| &a.embedded.user));
            match page.next {
                Some(next) => Step::AppUsers { url: next },
                None => Step::AppGroups {
                    url: o.url(
                        &format!("/api/v1/apps/{}/groups", path_segment(id)),
                        &[("limit", APP_GROUPS_LIMIT)],
                    ),
                    pending: VecDeque::new(),
                },
            }
        }
        Step::AppGroups { url, mut pending } => {
            let page: Listed<AppGroup> = o.page(&url, &Listing::App(app_id(o).into()))?;
            empty_if(work, &page);
            for a in page.items {
                if st.groups.insert(a.id.clone()) {
                    pending.push_back(PendingGroup {
                        id: a.id,
                        record: Record::Lookup,
                    });
                }
            }
            match page.next {
                Some(next) => Step::AppGroups { url: next, pending },
                None => Step::Members {
                    pending,
                    url: None,
                    got: Vec::new(),
                    then: None,
                },
            }
        }
        Step::Members {
            mut pending,
            url,
            mut got,
            then,
        } => {
            let Some(front) = pending.front_mut() else {
                cur.step = match (then, s.scope) {
                    (Some(next), _) => Step::Groups { url: next },
                    (None, Scope::Org) => return Ok(done(cur, st)),
                    (None, Scope::Groups | Scope::App) => Step::Finish,
                };
                return Ok(Next::Continue(cur));
            };
            let id = front.id.clone();
            if matches!(front.record, Record::Lookup) {
                match o.object::<OktaGroup>(&group_url(o, &id), &Listing::Groups)? {
                    Some(group) => front.record = Record::Listed { group },
                    None => {
                        // Deleted since it was assigned: Okta drops the assignment too.
                        st.groups.remove(&id);
                        pending.pop_front();
                        cur.step = Step::Members {
                            pending,
                            url: None,
                            got,
                            then,
                        };
                        return Ok(Next::Continue(cur));
                    }
                }
            }
            let url = url.unwrap_or_else(|| members_url(o, &id));
            let Some(page) = o.page_opt::<OktaUser>(&url, &Listing::Members(id.clone()))? else {
                if s.scope == Scope::Groups {
                    return Err(PluginError::Fatal(format!(
                        "okta: group {id} of the scope was deleted while Roster read it; the next run reads the scope as it is then"
                    )));
                }
                // Deleted since it was listed: neither it nor its members are reported.
                st.groups.remove(&id);
                pending.pop_front();
                cur.step = Step::Members {
                    pending,
                    url: None,
                    got: Vec::new(),
                    then,
                };
                return Ok(Next::Continue(cur));
            };
            note_clock(o, &mut cur, page.date);
            empty_if(work, &page);
            for u in &page.items {
                match s.scope {
                    // Members the application does not see are not its users.
                    Scope::App if !st.users.contains(&u.id) => continue,
                    Scope::Groups if st.users.insert(u.id.clone()) => {
                        emit_users(o, &mut work.out, std::iter::once(u));
                    }
                    _ => {}
                }
                if cur.since.is_none() {
                    work.out.memberships.push(model::membership(&id, &u.id));
                }
                got.push(u.id.clone());
            }
            match page.next {
                Some(next) => Step::Members {
                    pending,
                    url: Some(next),
                    got,
                    then,
                },
                None => {
                    let done = pending.pop_front().map(|p| p.record);
                    finish_group(st, read_of(&cur), &id, got, &mut work.out);
                    if let Some(Record::Listed { group }) = done {
                        work.out.groups.push(model::group(&group));
                    }
                    Step::Members {
                        pending,
                        url: None,
                        got: Vec::new(),
                        then,
                    }
                }
            }
        }
        Step::Finish => {
            if s.scope == Scope::Groups && cur.since.is_some() {
                left_scope(st, &mut work.out);
            }
            if let Some(before) = cur.before.take() {
                for id in before.users.difference(&st.users) {
                    work.out.removed_users.push(Removal {
                        id: id.clone(),
                        kind: RemovalKind::SoftDeleted,
                    });
                }
                for id in before.groups.difference(&st.groups) {
                    st.index.remove_group(id);
                    work.out.removed_groups.push(Removal {
                        id: id.clone(),
                        kind: RemovalKind::Deleted,
                    });
                }
            }
            return Ok(done(cur, st));
        }
    };
    Ok(Next::Continue(cur))
}

/// Whether a fetch reads everything or the changes since its cursor's `since`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    Full,
    Incremental,
}

fn read_of(cur: &Cursor) -> Read {
    match cur.since {
        None => Read::Full,
        Some(_) => Read::Incremental,
    }
}

/// A group's members are all read: a full fetch records them; an incremental one reports what
/// changed since the index's reading.
fn finish_group(st: &mut DeltaState, read: Read, group: &str, members: Vec<String>, out: &mut Records) {
    if read == Read::Full {
        st.index.set_group(group, &members);
        return;
    }
    let diff = st.index.replace_group(group, &members);
    out.memberships.extend(diff.added);
    out.removed_memberships.extend(diff.removed);
}

/// Groups scope, once every listed group is read: the users in none of them any more have left
/// the source. Decided only now, against the finished index: a user who moved from one listed
/// group to another is out of the first before the second is read again.
fn left_scope(state: &mut DeltaState, out: &mut Records) {
    let held: BTreeSet<&str> = state.index.groups().flat_map(|g| state.index.members(g)).collect();
    let gone: Vec<String> = state
        .users
        .iter()
        .filter(|u| !held.contains(u.as_str()))
        .cloned()
        .collect();
    for id in gone {
        state.users.remove(&id);
        out.removed_users.push(Removal {
            id,
            kind: RemovalKind::SoftDeleted,
        });
    }
}

/// Whether Okta's `lastMembershipUpdated` is after `since`; an absent or unreadable one
/// counts as changed (a needless re-read is cheaper than a missed change).
fn changed_since(stamp: Option<&str>, since: &str) -> bool {
    match (stamp.and_then(roster_sdk::time::parse), roster_sdk::time::parse(since)) {
        (Some(t), Some(s)) => t > s,
        _ => true,
    }
}

/// The error for an `app_id` Okta does not know.
pub fn unknown_app(id: &str) -> PluginError {
    PluginError::Config(format!(
        "app_id: Okta has no application with the id {id}; copy the id from the application's URL in the admin console (Applications → the app: …/admin/app/<name>/instance/<id>)"
    ))
}

/// The end of a fetch: the state the next incremental fetch continues from, stamped with
/// Okta's clock at this fetch's start; without one the next fetch is a full one.
fn done(cur: Cursor, st: &mut DeltaState) -> Next<Cursor, DeltaState> {
    match cur.clock {
        Clock::At { since } => Next::Done(Some(DeltaState {
            since,
            ..std::mem::take(st)
        })),
        _ => {
            roster_sdk::log(
                Level::Warn,
                "okta: Okta's answers carried no Date header, so Roster cannot tell which changes the next run must read; the next run fetches everything again",
            );
            Next::Done(None)
        }
    }
}
