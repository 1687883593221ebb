//! The change log behind Crowd's event tokens (crowd-rest.md §4 "Events", §6 "Incremental
//! sync"). Every mutation of the directory appends events; a token names a position in the log
//! (and the log's epoch), sealed so a client can neither forge nor alter one. `/event` hands out
//! the current position; `/event/{token}` answers the events after it, in order, and the new
//! position.

use serde::{Deserialize, Serialize};

use super::xml::{Links, PROLOG, USER_BYTES, enc, esc, text};
use super::{CrowdGroup, CrowdUser, Stamped};
use crate::kit::Sealer;

/// `CREATED`, `UPDATED` or `DELETED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Created,
    Updated,
    Deleted,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Created => "CREATED",
            Op::Updated => "UPDATED",
            Op::Deleted => "DELETED",
        }
    }
}

/// One event, with the entities as they were when it happened.
#[derive(Clone, Debug)]
pub(super) enum Event {
    /// A user created or updated: the full user, and the attributes an update removed.
    UserSaved {
        op: Op,
        user: Stamped<CrowdUser>,
        deleted_attributes: Vec<String>,
    },
    /// A user deleted: its name only.
    UserDeleted(String),
    /// A group created or updated.
    GroupSaved { op: Op, group: Stamped<CrowdGroup> },
    /// A group deleted.
    GroupDeleted(String),
    /// A user joined (CREATED) or left (DELETED) these groups, or (UPDATED) these are now all
    /// its direct groups.
    UserMembership { op: Op, user: String, groups: Vec<String> },
    /// A group joined or left these parent groups.
    GroupMembership {
        op: Op,
        child: String,
        parents: Vec<String>,
    },
}

/// What an event token carries: the log's epoch and the number of events it has seen.
#[derive(Serialize, Deserialize)]
struct Position {
    #[serde(rename = "e")]
    epoch: u32,
    #[serde(rename = "s")]
    seen: usize,
}

/// Why `/event/{token}` cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TokenError {
    /// Made up, altered, from another server, or issued before the tokens were expired.
    Expired,
}

/// The change log.
#[derive(Debug, Default)]
pub(super) struct Log {
    events: Vec<Event>,
    /// Raised by [`Log::expire`]: tokens of an older epoch are refused.
    epoch: u32,
    sealer: Sealer,
}

impl Log {
    /// Appends an event.
    pub(super) fn push(&mut self, e: Event) {
        self.events.push(e);
    }

    /// Forgets every event (the initial content of a directory is no change).
    pub(super) fn clear(&mut self) {
        self.events.clear();
    }

    /// Every token issued so far is refused from now on.
    pub(super) fn expire(&mut self) {
        self.epoch += 1;
    }

    /// The token for the current position: URL-safe (base64url), opaque.
    pub(super) fn token(&self) -> String {
        self.sealer.seal(&Position {
            epoch: self.epoch,
            seen: self.events.len(),
        })
    }

    /// The events after the position `token` names.
    pub(super) fn since(&self, token: &str) -> Result<&[Event], TokenError> {
        let p: Position = self.sealer.unseal(token).ok_or(TokenError::Expired)?;
        if p.epoch != self.epoch || p.seen > self.events.len() {
            return Err(TokenError::Expired);
        }
        Ok(&self.events[p.seen..])
    }

    /// How many events were logged.
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }
}

/// `<events newEventToken="…" incrementalSynchronisationAvailable="true"/>`, the answer to
/// `GET /event`.
pub(super) fn current(token: &str) -> String {
    let mut out = String::with_capacity(200);
    out.push_str(PROLOG);
    out.push_str("<events newEventToken=\"");
    esc(&mut out, token);
    out.push_str("\" incrementalSynchronisationAvailable=\"true\"/>");
    out
}

/// `<events incrementalSynchronisationAvailable="false"/>`: no token, no deltas.
pub(super) fn unavailable() -> String {
    format!("{PROLOG}<events incrementalSynchronisationAvailable=\"false\"/>")
}

/// The answer to `GET /event/{token}`: the events in order and the new token. Like Crowd's
/// `EventEntityList.create`, it leaves `incrementalSynchronisationAvailable` unset.
pub(super) fn render(links: &Links<'_>, events: &[Event], token: &str) -> String {
    let mut out = String::with_capacity(200 + events.len() * USER_BYTES);
    out.push_str(PROLOG);
    out.push_str("<events newEventToken=\"");
    esc(&mut out, token);
    out.push_str("\">");
    for e in events {
        event(&mut out, links, e);
    }
    out.push_str("</events>");
    out
}

fn event(out: &mut String, links: &Links<'_>, e: &Event) {
    match e {
        Event::UserSaved {
            op,
            user,
            deleted_attributes,
        } => {
            out.push_str("<userEvent>");
            text(out, "operation", op.as_str());
            // As Crowd writes it (S5 `toEventEntity`): the entity's attributes are only linked;
            // what changed is in `storedAttributes` and `deletedAttributes`.
            links.user(out, user, false);
            let href = format!("{}/user/attribute?username={}", links.0, enc(&user.item.name));
            links.attributes(out, "storedAttributes", &href, Some(&user.item.attributes));
            deleted(out, deleted_attributes);
            out.push_str("</userEvent>");
        }
        Event::UserDeleted(name) => {
            out.push_str("<userEvent>");
            text(out, "operation", Op::Deleted.as_str());
            links.min_user(out, "user", name);
            out.push_str("</userEvent>");
        }
        Event::GroupSaved { op, group } => {
            out.push_str("<groupEvent>");
            text(out, "operation", op.as_str());
            links.group(out, group, true);
            let href = format!("{}/group/attribute?groupname={}", links.0, enc(&group.item.name));
            links.attributes(out, "storedAttributes", &href, Some(&[]));
            deleted(out, &[]);
            out.push_str("</groupEvent>");
        }
        Event::GroupDeleted(name) => {
            out.push_str("<groupEvent>");
            text(out, "operation", Op::Deleted.as_str());
            links.min_group(out, name);
            out.push_str("</groupEvent>");
        }
        Event::UserMembership { op, user, groups } => {
            out.push_str("<userMembershipEvent>");
            text(out, "operation", op.as_str());
            links.min_user(out, "childUser", user);
            group_list(out, links, "parentGroups", groups);
            out.push_str("</userMembershipEvent>");
        }
        Event::GroupMembership { op, child, parents } => {
            out.push_str("<groupMembershipEvent>");
            text(out, "operation", op.as_str());
            links.min_group(out, child);
            group_list(out, links, "parentGroups", parents);
            group_list(out, links, "childGroups", &[]);
            out.push_str("</groupMembershipEvent>");
        }
    }
}

fn group_list(out: &mut String, links: &Links<'_>, tag: &str, names: &[String]) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    for n in names {
        links.min_group(out, n);
    }
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

fn deleted(out: &mut String, names: &[String]) {
    out.push_str("<deletedAttributes>");
    for n in names {
        out.push_str("<attribute name=\"");
        esc(out, n);
        out.push_str("\"/>");
    }
    out.push_str("</deletedAttributes>");
}
