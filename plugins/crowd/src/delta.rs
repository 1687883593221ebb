//! An incremental fetch: the events since the token (`GET /event/{token}`), applied in document
//! order into one net change per object (the last event about it wins), as Bitbucket's own
//! directory applies them (crowd-rest.md §6):
//!
//! * user and group events add, update or delete the object; a rename (DELETED old name and
//!   CREATED new name, or UPDATED with the new name, under the same `<key>`) ends as one record
//!   with the key as its id, never a removal;
//! * membership events CREATED / DELETED add or remove the child in each parent; UPDATED gives
//!   the complete set: the user (or group) is removed from every other group Roster knows, and
//!   for a group its children are replaced too;
//! * a membership event naming a user the state does not know is resolved with one
//!   `GET /user?username=`, so requests grow with the changes, not with the directory.
//!
//! A token the server no longer accepts, or a server without incremental synchronisation, is
//! `expired-delta` with the server's words: the host then fetches in full and the run says why.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use roster_sdk::driver::Work;
use roster_sdk::{Group, PluginError, Removal, RemovalKind, User};

use crate::cursor::{DeltaState, Events};
use crate::full::{Member, membership};
use crate::model::{self, group_id, name_key};
use crate::rest::{Failure, Server, product, xml_failure};
use crate::xml::{self, Element};

/// Users a batch of events may name that Roster has not seen, each looked up with one request.
pub const MAX_LOOKUPS: usize = 200;

/// UPDATED membership events a batch may hold.
pub const MAX_REPLACEMENTS: usize = 50;

/// Membership changes (additions and removals) a batch may make.
pub const MAX_LINKS: usize = 200_000;

/// Users a batch may create or change while their attributes are read: each is read again
/// with `GET /user` inside one call, so past this a full fetch's four requests are cheaper
/// and stay inside the call's deadline.
pub const MAX_REREADS: usize = 500;

fn expired(why: impl Into<String>) -> PluginError {
    PluginError::ExpiredDelta(why.into())
}

fn key_changed(name: &str, before: &str, now: &str) -> PluginError {
    expired(format!(
        "user {name}'s key changed from {before} to {now}; reading in full"
    ))
}

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Created,
    Updated,
    Deleted,
}

fn op(el: &Element, what: &str) -> Result<Op, PluginError> {
    match el.text_of("operation").map(str::trim) {
        Some("CREATED") => Ok(Op::Created),
        Some("UPDATED") => Ok(Op::Updated),
        Some("DELETED") => Ok(Op::Deleted),
        other => Err(PluginError::Fatal(format!(
            "{what}: a <{}> with operation {other:?}, not CREATED, UPDATED or DELETED",
            el.name
        ))),
    }
}

/// The kinds of event Bitbucket's directory applies.
#[derive(Debug, Clone, Copy)]
enum Kind {
    User,
    Group,
    UserMembership,
    GroupMembership,
}

/// A user's net change.
enum UserChange {
    /// The user as last described; `complete` when the record holds its attributes too.
    Upsert {
        user: User,
        complete: bool,
    },
    Deleted,
}

/// Net changes of one batch of events.
struct Net<'a> {
    srv: &'a Server<'a>,
    users: BTreeMap<String, UserChange>,
    groups: BTreeMap<String, Option<Group>>,
    /// (group, member, what the member is) → present after the batch.
    links: BTreeMap<(String, String, Member), bool>,
    /// Groups known now: the state's, as changed by this batch.
    known: BTreeSet<String>,
    /// The state's name → id map.
    keys: &'a BTreeMap<String, String>,
    /// Names this batch gave a user: lower-case name → id.
    named: HashMap<String, String>,
    /// Names this batch deleted.
    deleted: HashSet<String>,
    /// Names resolved with `GET /user`: lower-case name → id (`None`: no such user).
    looked_up: HashMap<String, Option<String>>,
    /// UPDATED membership events so far.
    replacements: usize,
}

impl<'a> Net<'a> {
    /// The id of the user called `name` now, asking the server when nothing here knows it.
    fn resolve(&mut self, name: &str) -> Result<Option<String>, PluginError> {
        let n = name_key(name);
        if let Some(id) = self.named.get(&n) {
            return Ok(Some(id.clone()));
        }
        if self.deleted.contains(&n) {
            return Ok(None);
        }
        if let Some(id) = self.keys.get(&n) {
            return Ok(Some(id.clone()));
        }
        if let Some(found) = self.looked_up.get(&n) {
            return Ok(found.clone());
        }
        // Each lookup is a request inside one page's call, outside the page budget; past a
        // few hundred, the four requests of a full fetch are the cheaper way.
        if self.looked_up.len() >= MAX_LOOKUPS {
            return Err(expired(format!(
                "more than {MAX_LOOKUPS} membership events name users Roster has not seen; reading in full is cheaper"
            )));
        }
        let found = self.fetch_user(name)?.map(|u| u.id);
        self.looked_up.insert(n, found.clone());
        Ok(found)
    }

    /// `GET /user?username=`: the user as the server has it now; `None` when it has none.
    fn fetch_user(&self, name: &str) -> Result<Option<User>, PluginError> {
        let what = "read a user named by an event (GET /user)";
        let resp = self.srv.get(&self.srv.user_url(name), what)?;
        if resp.status == 404 {
            return Ok(None);
        }
        let resp = self.srv.ok(resp, what)?;
        let el = xml::read_one(&resp.body, "user").map_err(|e| xml_failure(what, &resp.body, e))?;
        model::user(&el, what).map(Some)
    }

    /// The id a user name stands for is decided answer by answer (the key when the server
    /// gives one, else the name); a name that stood for one id and now comes with another
    /// would make one person two accounts, so a full read sorts it out instead.
    fn same_person(&self, n: &str, user: &User) -> Result<(), PluginError> {
        let before = match self.named.get(n) {
            Some(id) => Some(id),
            None if self.deleted.contains(n) => None,
            None => self.keys.get(n),
        };
        match before {
            Some(before) if *before != user.id => Err(key_changed(&user.username, before, &user.id)),
            _ => Ok(()),
        }
    }

    fn user_event(&mut self, op: Op, el: &Element, what: &str) -> Result<(), PluginError> {
        let Some(entity) = el.child("user") else {
            return Err(PluginError::Fatal(format!("{what}: a <userEvent> without its <user>")));
        };
        match op {
            Op::Created | Op::Updated => {
                let user = model::user(entity, what)?;
                let n = name_key(&user.username);
                self.same_person(&n, &user)?;
                // A new name for a known id: the old one no longer points to it.
                self.named.retain(|name, id| *id != user.id || *name == n);
                self.named.insert(n.clone(), user.id.clone());
                self.deleted.remove(&n);
                // A user event's entity holds no attributes whatever the server has: Crowd writes
                // `<attributes>` with only its link, and the changed ones travel apart in
                // `<storedAttributes>` / `<deletedAttributes>` (S5 `toEventEntity`). The record
                // replaces the whole mirrored user, so with attributes wanted it is read whole.
                let complete = !self.srv.s.user_attributes;
                self.users
                    .insert(user.id.clone(), UserChange::Upsert { user, complete });
            }
            Op::Deleted => {
                let n = name_key(model::name(entity, what)?);
                let id = self
                    .named
                    .get(&n)
                    .or_else(|| self.keys.get(&n))
                    .cloned()
                    .unwrap_or_else(|| n.clone());
                self.named.remove(&n);
                self.deleted.insert(n.clone());
                // The old name of a user this batch already gave a new one (a rename told as
                // CREATED new, then DELETED old): the user stays.
                let renamed = matches!(self.users.get(&id), Some(UserChange::Upsert { user, .. }) if name_key(&user.username) != n);
                if !renamed {
                    self.users.insert(id, UserChange::Deleted);
                }
            }
        }
        Ok(())
    }

    fn group_event(&mut self, op: Op, el: &Element, what: &str) -> Result<(), PluginError> {
        let Some(entity) = el.child("group") else {
            return Err(PluginError::Fatal(format!(
                "{what}: a <groupEvent> without its <group>"
            )));
        };
        match op {
            Op::Created | Op::Updated => {
                let g = model::group(entity, what)?;
                self.known.insert(g.id.clone());
                self.groups.insert(g.id.clone(), Some(g));
            }
            Op::Deleted => {
                let id = group_id(model::name(entity, what)?);
                self.known.remove(&id);
                self.groups.insert(id, None);
            }
        }
        Ok(())
    }

    fn user_membership_event(&mut self, op: Op, el: &Element, what: &str) -> Result<(), PluginError> {
        let Some(child) = el.child("childUser") else {
            return Err(PluginError::Fatal(format!(
                "{what}: a <userMembershipEvent> without its <childUser>"
            )));
        };
        let Some(user) = self.resolve(model::name(child, what)?)? else {
            return Ok(());
        };
        let parents: BTreeSet<String> = model::names_in(el, "parentGroups", "group")
            .iter()
            .map(|p| group_id(p))
            .collect();
        self.count_replacement(op)?;
        self.replace_or_set(op, &parents, |g| (g.to_string(), user.clone(), Member::User))
    }

    fn group_membership_event(&mut self, op: Op, el: &Element, what: &str) -> Result<(), PluginError> {
        if !self.srv.s.use_nested_groups {
            return Ok(());
        }
        let Some(entity) = el.child("group") else {
            return Err(PluginError::Fatal(format!(
                "{what}: a <groupMembershipEvent> without its <group>"
            )));
        };
        let group = group_id(model::name(entity, what)?);
        let ids = |list: &str| -> BTreeSet<String> {
            model::names_in(el, list, "group").iter().map(|g| group_id(g)).collect()
        };
        let parents = ids("parentGroups");
        self.count_replacement(op)?;
        self.replace_or_set(op, &parents, |p| (p.to_string(), group.clone(), Member::Group))?;
        if op == Op::Updated {
            let children = ids("childGroups");
            self.replace_or_set(op, &children, |c| (group.clone(), c.to_string(), Member::Group))?;
        }
        Ok(())
    }

    /// Counts an UPDATED membership event: each writes a removal for every group Roster knows,
    /// so past a few dozen the page would hold more than a full listing does.
    fn count_replacement(&mut self, op: Op) -> Result<(), PluginError> {
        if op != Op::Updated {
            return Ok(());
        }
        self.replacements += 1;
        if self.replacements > MAX_REPLACEMENTS {
            return Err(expired(format!(
                "more than {MAX_REPLACEMENTS} membership events replace a member's whole set of groups, each removing it from every other group Roster knows; reading in full is cheaper"
            )));
        }
        Ok(())
    }

    /// CREATED: each link of `set` present; DELETED: absent; UPDATED: exactly those of `set`
    /// among every group known.
    fn replace_or_set(
        &mut self,
        op: Op,
        set: &BTreeSet<String>,
        link: impl Fn(&str) -> (String, String, Member),
    ) -> Result<(), PluginError> {
        if op == Op::Updated {
            for g in &self.known {
                self.links.insert(link(g), set.contains(g));
            }
        }
        for g in set {
            self.links.insert(link(g), op != Op::Deleted);
        }
        if self.links.len() > MAX_LINKS {
            return Err(expired(format!(
                "the events change more than {MAX_LINKS} memberships; reading in full is cheaper"
            )));
        }
        Ok(())
    }
}

/// Runs an incremental fetch from `state`; the records go to `work`, the next state is returned.
pub fn run(srv: &Server<'_>, state: DeltaState, work: &mut Work<'_>) -> Result<DeltaState, PluginError> {
    if !srv.s.use_incremental_sync {
        return Err(expired(Events::Off.why_not().unwrap_or_default()));
    }
    let token = match &state.events {
        Events::Token { token } => token.clone(),
        other => return Err(expired(other.why_not().unwrap_or_default())),
    };
    let what = "read the changes since the last fetch (GET /event/{token})";
    let resp = srv.get(&srv.events_url(&token), what)?;
    if !resp.is_success() {
        let entity = model::error_entity(&resp.body);
        let words = entity
            .as_ref()
            .map(|e| format!("{}: {}", e.reason, e.message))
            .unwrap_or_else(|| format!("status {}", resp.status));
        let reason = entity.as_ref().map(|e| e.reason.as_str()).unwrap_or_default();
        if resp.status == 410 || reason == "EVENT_TOKEN_EXPIRED" {
            return Err(expired(format!("the server no longer knows the event token ({words})")));
        }
        if reason == "INCREMENTAL_SYNC_NOT_AVAILABLE" {
            return Err(expired(format!(
                "the server says incremental synchronisation is not available ({words})"
            )));
        }
        if resp.status == 404 {
            return Err(expired(format!(
                "the server has no event resource (GET /event/{{token}} answered 404): incremental synchronisation is not supported ({words})"
            )));
        }
        return Err(srv.failure(&resp, what));
    }
    let mut net = Net {
        srv,
        users: BTreeMap::new(),
        groups: BTreeMap::new(),
        links: BTreeMap::new(),
        known: state.groups.clone(),
        keys: &state.keys,
        named: HashMap::new(),
        deleted: HashSet::new(),
        looked_up: HashMap::new(),
        replacements: 0,
    };
    let attrs = xml::for_each::<Failure>(&resp.body, "events", |el| {
        let kind = match el.name.as_str() {
            "userEvent" => Kind::User,
            "groupEvent" => Kind::Group,
            "userMembershipEvent" => Kind::UserMembership,
            "groupMembershipEvent" => Kind::GroupMembership,
            // Kinds a later Crowd may add mean nothing to Bitbucket's directory either; nothing
            // of them is read, so their shape (operations of their own) cannot fail the fetch.
            _ => return Ok(()),
        };
        let op = op(&el, what)?;
        match kind {
            Kind::User => net.user_event(op, &el, what)?,
            Kind::Group => net.group_event(op, &el, what)?,
            Kind::UserMembership => net.user_membership_event(op, &el, what)?,
            Kind::GroupMembership => net.group_membership_event(op, &el, what)?,
        }
        Ok(())
    })
    .map_err(|f| f.into_plugin_error(what, &resp.body))?;
    let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    if get("incrementalSynchronisationAvailable") == Some("false") {
        let product = product(&resp).unwrap_or_else(|| "the server".into());
        return Err(expired(format!(
            "{product} says incremental synchronisation is not available (incrementalSynchronisationAvailable=false)"
        )));
    }
    let Some(next) = get("newEventToken").filter(|t| !t.is_empty()).map(str::to_string) else {
        return Err(PluginError::Fatal(format!(
            "{what}: the <events> answer has no newEventToken"
        )));
    };
    emit(net, next, work)
}

/// Writes the net changes into `work` and returns the next state.
fn emit(net: Net<'_>, token: String, work: &mut Work<'_>) -> Result<DeltaState, PluginError> {
    let rereads = net
        .users
        .values()
        .filter(|c| matches!(c, UserChange::Upsert { complete: false, .. }))
        .count();
    if rereads > MAX_REREADS {
        return Err(expired(format!(
            "{rereads} users were created or changed since the last run (more than {MAX_REREADS} to read one by one with their attributes); reading in full is cheaper"
        )));
    }
    let mut keys = net.keys.clone();
    let changed: HashSet<&str> = net.users.keys().map(String::as_str).collect();
    keys.retain(|_, id| !changed.contains(id.as_str()));
    let mut gone: HashSet<&str> = HashSet::new();
    for (id, change) in &net.users {
        match change {
            UserChange::Upsert { user, complete } => {
                let user = if *complete {
                    Some(user.clone())
                } else {
                    net.fetch_user(&user.username)?
                };
                if let Some(now) = user.as_ref().filter(|u| u.id != *id) {
                    // The name now belongs to another key than the event said.
                    return Err(key_changed(&now.username, id, &now.id));
                }
                let Some(user) = user else {
                    // Gone since the event (deleted, or renamed by a later batch): gone from
                    // Roster too, rather than kept with what it was before.
                    gone.insert(id);
                    work.out.removed_users.push(Removal {
                        id: id.clone(),
                        kind: RemovalKind::Deleted,
                    });
                    continue;
                };
                keys.insert(name_key(&user.username), user.id.clone());
                work.out.users.push(user);
            }
            UserChange::Deleted => {
                gone.insert(id);
                work.out.removed_users.push(Removal {
                    id: id.clone(),
                    kind: RemovalKind::Deleted,
                });
            }
        }
    }
    for (id, change) in net.groups {
        match change {
            Some(g) => work.out.groups.push(g),
            None => work.out.removed_groups.push(Removal {
                id,
                kind: RemovalKind::Deleted,
            }),
        }
    }
    for ((group, member, kind), present) in net.links {
        let m = membership(&group, &member, kind);
        if !present {
            work.out.removed_memberships.push(m);
        } else if net.known.contains(&group)
            && match kind {
                Member::Group => net.known.contains(&member),
                Member::User => !gone.contains(member.as_str()),
            }
        {
            work.out.memberships.push(m);
        }
    }
    let objects =
        work.out.users.len() + work.out.groups.len() + work.out.removed_users.len() + work.out.removed_groups.len();
    work.expect(objects as u64);
    Ok(DeltaState {
        events: Events::Token { token },
        keys,
        groups: net.known,
    })
}
