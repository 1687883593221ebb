//! A fetch, one step at a time, full or incremental.
//!
//! Users (`maxResults=500`), then groups (`maxResults=200`), each groups page followed by its
//! groups' members (`maxResults=200`); a group Google counts as empty costs no members request
//! unless the last run saw members in it. Paging by `pageToken`.
//!
//! The Directory API has no change feed and no "changed since" filter, so an incremental fetch
//! lists users and groups again (⌈users/500⌉ + ⌈groups/200⌉ requests) and compares them with
//! the [`Snapshot`](roster_sdk::snapshot::Snapshot)s in the delta state: only new and changed
//! users and groups are emitted, those no longer listed are removed, and members are read only
//! for groups whose member count or ETag changed, diffed against the
//! [`MemberIndex`](roster_sdk::members::MemberIndex). A membership change that leaves both the
//! same (one member swapped for another between runs) waits for the periodic full fetch. With
//! `nested_groups = "google"` a group's derived members change without the group, so every
//! group's members are read.

use std::collections::VecDeque;

use roster_sdk::driver::{Begin, Next, Records, Work};
use roster_sdk::snapshot::{Seen, digest_of};
use roster_sdk::{Level, PluginError, Removal, RemovalKind};

use crate::api::{Google, Listing, check_next};
use crate::cursor::{Cursor, DeltaState, Mode, Pending, Step};
use crate::model::{self, GroupsPage, MemberKind, MembersPage, UsersPage};
use crate::settings::Nesting;

/// Users per page: the Directory API's maximum.
pub const USERS_MAX: &str = "500";
/// Groups per page: the maximum.
pub const GROUPS_MAX: &str = "200";
/// Members per page: the maximum.
pub const MEMBERS_MAX: &str = "200";

/// The first cursor of a fetch.
pub fn begin(from: Begin<DeltaState>) -> Cursor {
    let (mode, mut state) = match from {
        Begin::Full => (Mode::Full, DeltaState::default()),
        Begin::Incremental(st) => (Mode::Incremental, st),
    };
    state.users.next_round();
    state.groups.next_round();
    Cursor {
        step: Step::Users { token: None },
        mode,
        state: roster_sdk::driver::Shared::new(state),
    }
}

fn empty_if(work: &mut Work<'_>, empty: bool, next: &Option<String>) {
    if empty && next.is_some() {
        work.empty_page();
    }
}

/// Runs one step, adding what it read to `work`; the next cursor, or the state to continue from.
pub fn step(g: &Google<'_>, mut cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
    let s = g.s;
    let shared = cur.state.clone();
    let mut st = shared.get();
    let mode = cur.mode;
    let step = std::mem::replace(&mut cur.step, Step::Finish);
    cur.step = match step {
        Step::Users { token } => {
            let url = g.users_url(USERS_MAX, token.as_deref());
            let page: UsersPage = g
                .page(&url, &Listing::Users)?
                .ok_or_else(|| PluginError::Fatal(format!("{}: not found", g.what(&Listing::Users, &url))))?;
            check_next(&g.what(&Listing::Users, &url), token.as_deref(), page.next.as_deref())?;
            empty_if(work, page.users.is_empty(), &page.next);
            let mut skipped = 0usize;
            for u in &page.users {
                let Some(record) = model::user(u, s) else {
                    skipped += 1;
                    continue;
                };
                let digest = digest_of(&(
                    &record.username,
                    &record.email,
                    &record.display_name,
                    record.active,
                    &record.attributes,
                ));
                let seen = st.users.observe(&record.id, digest);
                if mode == Mode::Full || seen != Seen::Same {
                    work.out.users.push(record);
                }
            }
            if skipped > 0 {
                roster_sdk::log(
                    Level::Warn,
                    &format!("google: skipped {skipped} user(s) whose primaryEmail gives an empty username"),
                );
            }
            match page.next {
                Some(next) => Step::Users { token: Some(next) },
                None => {
                    if mode == Mode::Incremental {
                        for id in st.users.take_unseen() {
                            work.out.removed_users.push(Removal {
                                id,
                                kind: RemovalKind::SoftDeleted,
                            });
                        }
                    }
                    Step::Groups { token: None }
                }
            }
        }
        Step::Groups { token } => {
            let url = g.groups_url(GROUPS_MAX, token.as_deref());
            let page: GroupsPage = g
                .page(&url, &Listing::Groups)?
                .ok_or_else(|| PluginError::Fatal(format!("{}: not found", g.what(&Listing::Groups, &url))))?;
            check_next(&g.what(&Listing::Groups, &url), token.as_deref(), page.next.as_deref())?;
            empty_if(work, page.groups.is_empty(), &page.next);
            let mut pending = VecDeque::new();
            for group in page.groups {
                let seen = st.groups.observe(&group.id, model::group_digest(&group));
                let emit = mode == Mode::Full || seen != Seen::Same;
                // Without a member count in the listing, the digest cannot show a member
                // change: the members are read again.
                let reread = emit || s.nested_groups == Nesting::Google || group.direct_members_count.is_none();
                if !reread {
                    continue;
                }
                // A count of 0 only spares the members request when it cannot remove anyone.
                let known_empty = group.direct_members_count == Some(0)
                    && st.index.members(&group.id).is_empty()
                    && st.nested.members(&group.id).is_empty();
                if known_empty {
                    finish_group(&mut st, mode, &group.id, Vec::new(), Vec::new(), &mut work.out);
                    if emit {
                        work.out.groups.push(model::group(&group));
                    }
                } else {
                    pending.push_back(Pending {
                        group,
                        emit,
                        known: seen != Seen::New,
                    });
                }
            }
            Step::Members {
                pending,
                token: None,
                users: Vec::new(),
                groups: Vec::new(),
                then: page.next,
            }
        }
        Step::Members {
            mut pending,
            token,
            mut users,
            mut groups,
            then,
        } => {
            let Some(front) = pending.front() else {
                cur.step = match then {
                    Some(next) => Step::Groups { token: Some(next) },
                    None => Step::Finish,
                };
                return Ok(Next::Continue(cur));
            };
            let id = front.group.id.clone();
            let listing = Listing::Members(id.clone());
            let url = g.members_url(&id, MEMBERS_MAX, token.as_deref());
            let Some(page) = g.page::<MembersPage>(&url, &listing)? else {
                // Deleted since it was listed: neither it nor its members are reported, and an
                // incremental fetch reports it gone.
                let known = pending.pop_front().is_some_and(|p| p.known);
                gone_group(&mut st, mode, &id, known, &mut work.out);
                cur.step = Step::Members {
                    pending,
                    token: None,
                    users: Vec::new(),
                    groups: Vec::new(),
                    then,
                };
                return Ok(Next::Continue(cur));
            };
            let what = g.what(&listing, &url);
            check_next(&what, token.as_deref(), page.next.as_deref())?;
            empty_if(work, page.members.is_empty(), &page.next);
            let mut others = Vec::new();
            for m in &page.members {
                match m.kind() {
                    MemberKind::User(u) => users.push(u),
                    MemberKind::Group(child) => {
                        if s.nested_groups == Nesting::Roster {
                            groups.push(child);
                        }
                    }
                    MemberKind::Other(kind) => others.push(kind),
                }
            }
            if !others.is_empty() {
                others.sort();
                others.dedup();
                roster_sdk::log(
                    Level::Warn,
                    &format!(
                        "google: group {} has members of type {} that Roster does not sync (CUSTOMER: everyone in the account; add the users or a group instead)",
                        front.group.email.as_deref().unwrap_or(&id),
                        others.join(", ")
                    ),
                );
            }
            match page.next {
                Some(next) => Step::Members {
                    pending,
                    token: Some(next),
                    users,
                    groups,
                    then,
                },
                None => {
                    let done = pending.pop_front();
                    finish_group(&mut st, mode, &id, users, groups, &mut work.out);
                    if let Some(Pending { group, emit: true, .. }) = done {
                        work.out.groups.push(model::group(&group));
                    }
                    Step::Members {
                        pending,
                        token: None,
                        users: Vec::new(),
                        groups: Vec::new(),
                        then,
                    }
                }
            }
        }
        Step::Finish => {
            if mode == Mode::Incremental {
                for id in st.groups.take_unseen() {
                    drop_group(&mut st, &id);
                    work.out.removed_groups.push(Removal {
                        id,
                        kind: RemovalKind::Deleted,
                    });
                }
            }
            return Ok(Next::Done(Some(std::mem::take(&mut *st))));
        }
    };
    Ok(Next::Continue(cur))
}

/// A group's members are all read: a full fetch emits and records them; an incremental one
/// reports what changed since the last reading.
fn finish_group(
    st: &mut DeltaState,
    mode: Mode,
    group: &str,
    users: Vec<String>,
    groups: Vec<String>,
    out: &mut Records,
) {
    match mode {
        Mode::Full => {
            out.memberships
                .extend(users.iter().map(|u| model::membership(group, u, false)));
            out.memberships
                .extend(groups.iter().map(|c| model::membership(group, c, true)));
            st.index.set_group(group, &users);
            st.nested.set_group(group, &groups);
        }
        Mode::Incremental => {
            let direct = st.index.replace_group(group, &users);
            out.memberships.extend(direct.added);
            out.removed_memberships.extend(direct.removed);
            let nested = st.nested.replace_group(group, &groups);
            let as_nested = |m: roster_sdk::Membership| model::membership(&m.group_id, &m.member_id, true);
            out.memberships.extend(nested.added.into_iter().map(as_nested));
            out.removed_memberships
                .extend(nested.removed.into_iter().map(as_nested));
        }
    }
}

/// A group deleted while the fetch read it.
fn gone_group(st: &mut DeltaState, mode: Mode, id: &str, known: bool, out: &mut Records) {
    st.groups.forget(id);
    drop_group(st, id);
    if mode == Mode::Incremental && known {
        out.removed_groups.push(Removal {
            id: id.to_string(),
            kind: RemovalKind::Deleted,
        });
    }
}

fn drop_group(state: &mut DeltaState, id: &str) {
    state.index.remove_group(id);
    state.nested.remove_group(id);
}
