//! A fetch, one step at a time: every user page by page, then every group page by page, each
//! page of groups followed by the groups it listed without `members` (a service that leaves
//! members out of lists), read one by one.
//!
//! Listings page by `startIndex`/`count` with one item of overlap ([`Offset`]): a page shorter
//! than asked for does not end a listing before `totalResults` is reached (services cap `count`
//! at their own maximum), and a listing that moved back under the fetch (a deletion before the
//! page) is read again from a page earlier rather than read with an item missing.
//!
//! SCIM has no change feed, so there is no delta state: every fetch reads everything and an
//! incremental run is a full one.

use std::collections::VecDeque;

use roster_scim::{group_record, user_record};
use roster_sdk::driver::{Next, Work};
use roster_sdk::paging::Offset;
use roster_sdk::{Level, PluginError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{Listing, Scim, malformed};
use crate::model;
use crate::settings::Members;

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Cursor {
    /// The users listing.
    Users {
        /// The next page.
        at: Offset,
    },
    /// The groups listing.
    Groups {
        /// The next page.
        at: Offset,
    },
    /// Groups listed without their members, read by id.
    Members {
        /// Their ids (front: next).
        groups: VecDeque<String>,
        /// The groups listing's next page, after these.
        then: Option<Offset>,
    },
}

/// The first cursor of a fetch.
pub fn begin() -> Cursor {
    Cursor::Users { at: Offset::default() }
}

/// Whether `at` is a listing's first page (where its total is announced).
fn first_page(at: &Offset) -> bool {
    at.first == 0 && at.tail.is_empty()
}

fn users(scim: &Scim<'_>, at: Offset, work: &mut Work<'_>) -> Result<Cursor, PluginError> {
    let announce = first_page(&at);
    let page = scim.page(&Listing::Users, &at)?;
    if announce {
        work.expect(page.total);
    }
    let what = &page.what;
    let mut skipped = 0usize;
    for (i, r) in page.taken.items.iter().enumerate() {
        let rec = user_record(r).map_err(|e| malformed(&format!("{what}: user {i} of the page"), &e))?;
        match model::user(rec, scim.s) {
            Some(u) => work.out.users.push(u),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        roster_sdk::log(
            Level::Warn,
            &format!(
                "scim: skipped {skipped} user(s) without {}; every user needs it as their Bitbucket username (set username_attribute to one they all have)",
                scim.s.username_attribute
            ),
        );
    }
    Ok(match page.taken.next {
        Some(at) => Cursor::Users { at },
        None => Cursor::Groups { at: Offset::default() },
    })
}

fn groups(scim: &Scim<'_>, at: Offset, work: &mut Work<'_>) -> Result<Cursor, PluginError> {
    let announce = first_page(&at);
    let page = scim.page(&Listing::Groups, &at)?;
    if announce {
        work.expect(page.total);
    }
    let what = &page.what;
    let mut unlisted = VecDeque::new();
    for (i, r) in page.taken.items.iter().enumerate() {
        let rec = group_record(r).map_err(|e| malformed(&format!("{what}: group {i} of the page"), &e))?;
        work.out.groups.push(model::group(&rec));
        match (scim.s.members, r.get("members")) {
            (Members::Skip, _) => {}
            (Members::Read, None | Some(Value::Null)) => unlisted.push_back(rec.id.clone()),
            (Members::Read, Some(_)) => work.out.memberships.extend(model::memberships(&rec)),
        }
    }
    Ok(match (unlisted.is_empty(), page.taken.next) {
        (true, Some(at)) => Cursor::Groups { at },
        (_, then) => Cursor::Members { groups: unlisted, then },
    })
}

/// Runs one step, adding what it read to `work`; the next cursor, or the end.
pub fn step(scim: &Scim<'_>, cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, ()>, PluginError> {
    Ok(match cur {
        Cursor::Users { at } => Next::Continue(users(scim, at, work)?),
        Cursor::Groups { at } => Next::Continue(groups(scim, at, work)?),
        Cursor::Members { mut groups, then } => {
            let Some(id) = groups.pop_front() else {
                return Ok(match then {
                    Some(at) => Next::Continue(Cursor::Groups { at }),
                    None => Next::Done(None),
                });
            };
            // A group deleted since it was listed has no members to read.
            if let Some(body) = scim.group(&id)? {
                let what = format!("scim: read group {id}");
                let rec = group_record(&body).map_err(|e| malformed(&what, &e))?;
                work.out.memberships.extend(model::memberships(&rec));
            }
            Next::Continue(Cursor::Members { groups, then })
        }
    })
}
