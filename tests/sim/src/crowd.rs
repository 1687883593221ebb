//! A Jira or Crowd user-server simulator: the `usermanagement/1` REST API that Bitbucket's
//! "Atlassian Jira" and "Atlassian Crowd" directories read, and that Roster's `crowd` connector
//! reads, following `shared/reference/crowd-rest.md` (§1–§7 for what the server does).
//!
//! - Transport: the API under `/rest/usermanagement/1`; every answer there (401, 403, 404, 410
//!   and the kit's injected errors included) carries `X-Embedded-Crowd-Version` (`Jira/9.12.2`
//!   or `Crowd/5.1.6`), `X-Crowd-User-Management-Version: 1.4` and `Cache-Control: no-cache`.
//!   XML by default (JAXB's names, with the server's `<link>`s, which clients must ignore); JSON
//!   when `Accept` asks for `application/json` only. `/group/membership` and `/event*` are XML
//!   whatever `Accept` says.
//! - Applications, as Jira's "User server → Add application" makes them: HTTP Basic with the
//!   application's name and password, and its allowed addresses (single IPv4/IPv6 addresses and
//!   CIDR ranges) checked against the TCP peer. The order is Crowd's own filter's
//!   (`BasicApplicationAuthenticationFilter`): no or malformed credentials or an unknown
//!   application → 401; a known application asked from an address it does not allow → 403 as
//!   Tomcat's error page, *before* the password is checked; a wrong password → 401. The 403 page
//!   names the address as Java writes it (`0:0:0:0:0:0:0:1` for `::1`) and, as Tomcat escapes
//!   it, with `&quot;` for the quotes: strip the tags and decode the entities to read
//!   `Client with address "127.0.0.1" is forbidden from making requests to the application, roster.`
//!   The server's session cookie (which lets a client skip the password) is not simulated: every
//!   request is authenticated.
//! - Reads: `POST /search` (null, property and boolean restrictions, in XML or JSON;
//!   `start-index`, `max-results` with -1 for all, never truncated; `expand=user|group[,attributes]`),
//!   `GET /user?username=|key=`, `GET /group?groupname=`, the direct and nested member and
//!   membership listings (with paging, `expand`, and the membership tests), `GET /group/membership`
//!   (every group's direct users and child groups; 404 after
//!   [`CrowdState::without_membership_document`], as servers before API 1.1), `GET /event` and
//!   `GET /event/{token}` over a change log ([`CrowdState::expire_event_tokens`],
//!   [`CrowdState::disable_incremental_sync`]).
//! - Writes (user and group creation, changes, memberships, passwords) answer 403
//!   `APPLICATION_PERMISSION_DENIED`: the simulated application reads only.
//!   `POST /authentication` answers 400 `INVALID_USER_AUTHENTICATION` (no user has a password
//!   here), as crowd-rest.md §7 advises a server without user authentication to. `GET /search`
//!   with a CQL `restriction` is not simulated (405).
//! - Faults: the kit's rules ([`CrowdSim::faults`]) and rate limit, answered with Crowd's
//!   headers and `<error>` entity.
//!
//! Names are case-insensitive, as in Crowd: lookups ignore case, answers keep the case a name
//! was created with, and listings are ordered by the lower-cased name. Mutations that name a user
//! or group that does not exist change nothing and log nothing.

mod events;
mod routes;
mod xml;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use roster_crowd::Reason;

use crate::kit::{self, Faults, RateLimited, RouteMatch, Throttle, Vendor};
use events::{Event, Op};

/// Where the API lives.
pub const API: &str = "/rest/usermanagement/1";

/// Which Atlassian product answers: what `X-Embedded-Crowd-Version` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    /// Jira acting as a user server: `Jira/9.12.2`.
    Jira,
    /// Crowd: `Crowd/5.1.6`.
    Crowd,
}

impl Product {
    /// The value of `X-Embedded-Crowd-Version`.
    pub fn version_header(self) -> &'static str {
        match self {
            Product::Jira => "Jira/9.12.2",
            Product::Crowd => "Crowd/5.1.6",
        }
    }
}

/// A user as the user server holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct CrowdUser {
    /// The username (unique, case-insensitive).
    pub name: String,
    /// The stable key (`<key>`, Bitbucket's external id), kept across renames.
    pub key: Option<String>,
    /// `first-name`.
    pub first_name: String,
    /// `last-name`.
    pub last_name: String,
    /// `display-name`.
    pub display_name: String,
    /// `email`.
    pub email: String,
    /// `active`.
    pub active: bool,
    /// Custom attributes, each with its values.
    pub attributes: Vec<(String, Vec<String>)>,
}

impl CrowdUser {
    /// An active user with a key, its display name split into first and last name at the first
    /// space, no attributes.
    pub fn new(name: &str, key: &str, display_name: &str, email: &str) -> CrowdUser {
        let (first, last) = display_name.split_once(' ').unwrap_or((display_name, ""));
        CrowdUser {
            name: name.to_string(),
            key: Some(key.to_string()),
            first_name: first.to_string(),
            last_name: last.to_string(),
            display_name: display_name.to_string(),
            email: email.to_string(),
            active: true,
            attributes: Vec::new(),
        }
    }

    fn attribute(&self, name: &str) -> Option<&[String]> {
        self.attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A group as the user server holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct CrowdGroup {
    /// The name (unique, case-insensitive).
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `active`.
    pub active: bool,
}

impl CrowdGroup {
    /// An active group without a description.
    pub fn new(name: &str) -> CrowdGroup {
        CrowdGroup {
            name: name.to_string(),
            description: None,
            active: true,
        }
    }
}

/// An entity with its creation and last-update times (epoch milliseconds).
#[derive(Clone, Debug)]
struct Stamped<T> {
    item: T,
    created: u64,
    updated: u64,
}

/// An application allowed to use the API.
#[derive(Clone, Debug)]
struct App {
    name: String,
    password: String,
    allowed: Vec<IpNet>,
    /// Whether it may read the directory (Crowd: directory permission).
    may_read: bool,
}

/// Parses an allowed address as Jira's application screen takes it: a single IPv4 or IPv6
/// address (`127.0.0.1`, `::1`) or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_allowed_address(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    s.parse::<IpNet>()
        .map_err(|_| format!("`{s}` is not an IP address or CIDR range (such as 127.0.0.1, ::1 or 10.0.0.0/8)"))
}

fn parse_allowed(allowed: &[&str]) -> Vec<IpNet> {
    allowed
        .iter()
        .map(|a| parse_allowed_address(a).unwrap_or_else(|e| panic!("allowed address: {e}")))
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn lower(name: &str) -> String {
    name.to_lowercase()
}

/// The whole user server: applications, users, groups, direct memberships, the change log,
/// faults and counters.
#[derive(Debug)]
pub struct CrowdState {
    product: Product,
    /// lower-case name → application.
    apps: BTreeMap<String, App>,
    /// lower-case name → user.
    users: BTreeMap<String, Stamped<CrowdUser>>,
    /// lower-case key → lower-case name.
    keys: HashMap<String, String>,
    /// lower-case name → group.
    groups: BTreeMap<String, Stamped<CrowdGroup>>,
    /// group → its direct users (all lower-case).
    group_users: HashMap<String, BTreeSet<String>>,
    /// user → its direct groups.
    user_groups: HashMap<String, BTreeSet<String>>,
    /// group → its direct child groups.
    group_children: HashMap<String, BTreeSet<String>>,
    /// group → its direct parent groups.
    group_parents: HashMap<String, BTreeSet<String>>,
    log: events::Log,
    incremental: bool,
    membership_document: bool,
    /// Shared with the router's layers, so tests can change them while the simulator runs.
    faults: Faults,
    throttle: Throttle,
    calls: u64,
}

impl CrowdState {
    /// An empty user server with no application.
    pub fn new(product: Product) -> Self {
        CrowdState {
            product,
            apps: BTreeMap::new(),
            users: BTreeMap::new(),
            keys: HashMap::new(),
            groups: BTreeMap::new(),
            group_users: HashMap::new(),
            user_groups: HashMap::new(),
            group_children: HashMap::new(),
            group_parents: HashMap::new(),
            log: events::Log::default(),
            incremental: true,
            membership_document: true,
            faults: Faults::new(),
            throttle: Throttle::new(RouteMatch::prefix(API)),
            calls: 0,
        }
    }

    /// Users keyed by username with key = the Directory user's id (u-000001), groups by name,
    /// direct memberships (user and child-group) as in d. Display names are split into first and
    /// last name at the first space. Logs no events for this initial content.
    pub fn from_directory(d: &crate::directory::Directory, product: Product) -> Self {
        let mut s = CrowdState::new(product);
        for u in &d.users {
            let mut cu = CrowdUser::new(&u.username, &u.id, &u.display_name, &u.email);
            cu.active = u.active;
            s.add_user(cu);
        }
        let mut group_name = HashMap::with_capacity(d.groups.len());
        for g in &d.groups {
            s.add_group(CrowdGroup::new(&g.name));
            group_name.insert(g.id.as_str(), g.name.as_str());
        }
        let user_name: HashMap<&str, &str> = d.users.iter().map(|u| (u.id.as_str(), u.username.as_str())).collect();
        for m in &d.memberships {
            let Some(group) = group_name.get(m.group.as_str()) else {
                continue;
            };
            if m.member_is_group {
                if let Some(child) = group_name.get(m.member.as_str()) {
                    s.add_group_to_group(child, group);
                }
            } else if let Some(user) = user_name.get(m.member.as_str()) {
                s.add_user_to_group(user, group);
            }
        }
        s.log.clear();
        s
    }

    /// An application as Jira's "User server → Add application" creates it: name, password,
    /// allowed addresses (single IPv4/IPv6 addresses and CIDR ranges like "10.0.0.0/8",
    /// "127.0.0.1", "::1"). A request whose TCP peer address is not covered is refused with 403,
    /// as Jira refuses it. Replaces an application of the same name.
    ///
    /// # Panics
    /// When an allowed address is neither an address nor a CIDR range (a mistake in the test;
    /// [`parse_allowed_address`] checks one without panicking).
    pub fn add_application(&mut self, name: &str, password: &str, allowed: &[&str]) {
        self.apps.insert(
            lower(name),
            App {
                name: name.to_string(),
                password: password.to_string(),
                allowed: parse_allowed(allowed),
                may_read: true,
            },
        );
    }

    /// Replaces an application's allowed addresses (as [`CrowdState::add_application`] takes
    /// them).
    ///
    /// # Panics
    /// As [`CrowdState::add_application`].
    pub fn set_allowed_addresses(&mut self, app: &str, allowed: &[&str]) {
        let allowed = parse_allowed(allowed);
        if let Some(a) = self.apps.get_mut(&lower(app)) {
            a.allowed = allowed;
        }
    }

    /// Takes the application's permission to read (Crowd: directory permission); reads then
    /// answer 403 with an <error><reason>APPLICATION_PERMISSION_DENIED</reason> entity.
    pub fn deny_permission(&mut self, app: &str) {
        if let Some(a) = self.apps.get_mut(&lower(app)) {
            a.may_read = false;
        }
    }

    /// Adds a user (replacing one of the same name); logs `userEvent` CREATED (UPDATED when it
    /// replaced one).
    pub fn add_user(&mut self, u: CrowdUser) {
        let key = lower(&u.name);
        let now = now_ms();
        let (op, created, deleted_attributes) = match self.users.get(&key) {
            Some(old) => (Op::Updated, old.created, removed_attributes(&old.item, &u)),
            None => (Op::Created, now, Vec::new()),
        };
        if let Some(old_key) = self.users.get(&key).and_then(|o| o.item.key.as_deref()) {
            self.keys.remove(&lower(old_key));
        }
        if let Some(k) = &u.key {
            self.keys.insert(lower(k), key.clone());
        }
        let e = Stamped {
            item: u,
            created,
            updated: now,
        };
        self.users.insert(key, e.clone());
        self.log.push(Event::UserSaved {
            op,
            user: e,
            deleted_attributes,
        });
    }

    /// Changes a user (its name stays: see [`CrowdState::rename_user`]); logs `userEvent`
    /// UPDATED with the full user and the attributes the change removed.
    pub fn update_user(&mut self, name: &str, f: impl FnOnce(&mut CrowdUser)) {
        let Some(e) = self.users.get_mut(&lower(name)) else {
            return;
        };
        let before = e.item.clone();
        f(&mut e.item);
        e.item.name = before.name.clone();
        e.updated = now_ms();
        let e = e.clone();
        if before.key != e.item.key {
            if let Some(k) = &before.key {
                self.keys.remove(&lower(k));
            }
            if let Some(k) = &e.item.key {
                self.keys.insert(lower(k), lower(&e.item.name));
            }
        }
        let deleted_attributes = removed_attributes(&before, &e.item);
        self.log.push(Event::UserSaved {
            op: Op::Updated,
            user: e,
            deleted_attributes,
        });
    }

    /// Rename keeping the key and every membership. Logs `userEvent` DELETED for the old name,
    /// `userEvent` CREATED for the new name (same key), then a `userMembershipEvent` CREATED for
    /// each of its groups under the new name. [unverified: how Jira's event stream words a
    /// rename is not in crowd-rest.md; this is what a client must handle at least, and a client
    /// that follows the key sees one person renamed.] Nothing happens when `new` names another
    /// user.
    pub fn rename_user(&mut self, old: &str, new: &str) {
        let (old_key, new_key) = (lower(old), lower(new));
        if new_key != old_key && self.users.contains_key(&new_key) {
            return;
        }
        let Some(mut e) = self.users.remove(&old_key) else {
            return;
        };
        let old_name = std::mem::replace(&mut e.item.name, new.to_string());
        e.updated = now_ms();
        if let Some(k) = &e.item.key {
            self.keys.insert(lower(k), new_key.clone());
        }
        let groups = self.user_groups.remove(&old_key).unwrap_or_default();
        for g in &groups {
            if let Some(members) = self.group_users.get_mut(g) {
                members.remove(&old_key);
                members.insert(new_key.clone());
            }
        }
        self.users.insert(new_key.clone(), e.clone());
        self.log.push(Event::UserDeleted(old_name));
        self.log.push(Event::UserSaved {
            op: Op::Created,
            user: e,
            deleted_attributes: Vec::new(),
        });
        for g in &groups {
            let group = self.group_name(g);
            self.log.push(Event::UserMembership {
                op: Op::Created,
                user: new.to_string(),
                groups: vec![group],
            });
        }
        if !groups.is_empty() {
            self.user_groups.insert(new_key, groups);
        }
    }

    /// Removes a user and its memberships; logs `userEvent` DELETED only, as Crowd drops the
    /// memberships with the user.
    pub fn remove_user(&mut self, name: &str) {
        let key = lower(name);
        let Some(e) = self.users.remove(&key) else {
            return;
        };
        if let Some(k) = &e.item.key {
            self.keys.remove(&lower(k));
        }
        for g in self.user_groups.remove(&key).unwrap_or_default() {
            if let Some(m) = self.group_users.get_mut(&g) {
                m.remove(&key);
            }
        }
        self.log.push(Event::UserDeleted(e.item.name));
    }

    /// Adds a group (replacing one of the same name); logs `groupEvent` CREATED (UPDATED when
    /// it replaced one).
    pub fn add_group(&mut self, g: CrowdGroup) {
        let key = lower(&g.name);
        let now = now_ms();
        let (op, created) = match self.groups.get(&key) {
            Some(old) => (Op::Updated, old.created),
            None => (Op::Created, now),
        };
        let e = Stamped {
            item: g,
            created,
            updated: now,
        };
        self.groups.insert(key, e.clone());
        self.log.push(Event::GroupSaved { op, group: e });
    }

    /// Removes a group and the memberships in and of it; logs `groupEvent` DELETED only.
    pub fn remove_group(&mut self, name: &str) {
        let key = lower(name);
        let Some(e) = self.groups.remove(&key) else {
            return;
        };
        for u in self.group_users.remove(&key).unwrap_or_default() {
            if let Some(m) = self.user_groups.get_mut(&u) {
                m.remove(&key);
            }
        }
        for c in self.group_children.remove(&key).unwrap_or_default() {
            if let Some(p) = self.group_parents.get_mut(&c) {
                p.remove(&key);
            }
        }
        for p in self.group_parents.remove(&key).unwrap_or_default() {
            if let Some(c) = self.group_children.get_mut(&p) {
                c.remove(&key);
            }
        }
        self.log.push(Event::GroupDeleted(e.item.name));
    }

    /// Makes a user a direct member of a group; logs `userMembershipEvent` CREATED (nothing
    /// when it already was).
    pub fn add_user_to_group(&mut self, user: &str, group: &str) {
        let (u, g) = (lower(user), lower(group));
        if !self.users.contains_key(&u) || !self.groups.contains_key(&g) {
            return;
        }
        if self.group_users.entry(g.clone()).or_default().insert(u.clone()) {
            self.user_groups.entry(u.clone()).or_default().insert(g.clone());
            let event = Event::UserMembership {
                op: Op::Created,
                user: self.user_name(&u),
                groups: vec![self.group_name(&g)],
            };
            self.log.push(event);
        }
    }

    /// Ends a user's direct membership of a group; logs `userMembershipEvent` DELETED.
    pub fn remove_user_from_group(&mut self, user: &str, group: &str) {
        let (u, g) = (lower(user), lower(group));
        if self.group_users.get_mut(&g).is_some_and(|m| m.remove(&u)) {
            if let Some(m) = self.user_groups.get_mut(&u) {
                m.remove(&g);
            }
            let event = Event::UserMembership {
                op: Op::Deleted,
                user: self.user_name(&u),
                groups: vec![self.group_name(&g)],
            };
            self.log.push(event);
        }
    }

    /// Nests `child` in `parent`; logs `groupMembershipEvent` CREATED.
    pub fn add_group_to_group(&mut self, child: &str, parent: &str) {
        let (c, p) = (lower(child), lower(parent));
        if c == p || !self.groups.contains_key(&c) || !self.groups.contains_key(&p) {
            return;
        }
        if self.group_children.entry(p.clone()).or_default().insert(c.clone()) {
            self.group_parents.entry(c.clone()).or_default().insert(p.clone());
            let event = Event::GroupMembership {
                op: Op::Created,
                child: self.group_name(&c),
                parents: vec![self.group_name(&p)],
            };
            self.log.push(event);
        }
    }

    /// Takes `child` out of `parent`; logs `groupMembershipEvent` DELETED.
    pub fn remove_group_from_group(&mut self, child: &str, parent: &str) {
        let (c, p) = (lower(child), lower(parent));
        if self.group_children.get_mut(&p).is_some_and(|m| m.remove(&c)) {
            if let Some(m) = self.group_parents.get_mut(&c) {
                m.remove(&p);
            }
            let event = Event::GroupMembership {
                op: Op::Deleted,
                child: self.group_name(&c),
                parents: vec![self.group_name(&p)],
            };
            self.log.push(event);
        }
    }

    /// Replaces a user's direct groups, logged as ONE userMembershipEvent UPDATED carrying the
    /// complete parent set (Crowd's absolute form). Groups that do not exist are left out.
    pub fn set_user_groups(&mut self, user: &str, groups: &[&str]) {
        let u = lower(user);
        if !self.users.contains_key(&u) {
            return;
        }
        let new: BTreeSet<String> = groups
            .iter()
            .map(|g| lower(g))
            .filter(|g| self.groups.contains_key(g))
            .collect();
        let old = self.user_groups.remove(&u).unwrap_or_default();
        for g in old.difference(&new) {
            if let Some(m) = self.group_users.get_mut(g) {
                m.remove(&u);
            }
        }
        for g in &new {
            self.group_users.entry(g.clone()).or_default().insert(u.clone());
        }
        let names = new.iter().map(|g| self.group_name(g)).collect();
        if !new.is_empty() {
            self.user_groups.insert(u.clone(), new);
        }
        let event = Event::UserMembership {
            op: Op::Updated,
            user: self.user_name(&u),
            groups: names,
        };
        self.log.push(event);
    }

    /// Every event token issued so far becomes expired: /event/{t} answers 410
    /// EVENT_TOKEN_EXPIRED.
    pub fn expire_event_tokens(&mut self) {
        self.log.expire();
    }

    /// /event answers incrementalSynchronisationAvailable="false" without a token (and
    /// /event/{t} 400 INCREMENTAL_SYNC_NOT_AVAILABLE).
    pub fn disable_incremental_sync(&mut self) {
        self.incremental = false;
    }

    /// /group/membership answers 404 (servers before API 1.1), so clients read memberships per
    /// group.
    pub fn without_membership_document(&mut self) {
        self.membership_document = false;
    }

    /// Limits API requests to `per_second` with bursts of `capacity`; refusals are 429 with
    /// `Retry-After` and an `OPERATION_FAILED` entity (Crowd has no rate limit of its own; a
    /// proxy in front of it may).
    pub fn set_rate_limit(&mut self, per_second: f64, capacity: u32) {
        self.throttle.limit(per_second, capacity);
    }

    /// Lifts the rate limit.
    pub fn clear_rate_limit(&mut self) {
        self.throttle.unlimited();
    }

    /// A user by name (any case).
    pub fn user(&self, name: &str) -> Option<&CrowdUser> {
        self.users.get(&lower(name)).map(|e| &e.item)
    }

    /// A group by name (any case).
    pub fn group(&self, name: &str) -> Option<&CrowdGroup> {
        self.groups.get(&lower(name)).map(|e| &e.item)
    }

    /// The names of a user's direct groups, ordered.
    pub fn user_groups(&self, name: &str) -> Vec<String> {
        self.user_groups
            .get(&lower(name))
            .map(|gs| gs.iter().map(|g| self.group_name(g)).collect())
            .unwrap_or_default()
    }

    /// How many users it holds.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// How many events the change log holds (what the next `/event/{token}` could list).
    pub fn event_count(&self) -> usize {
        self.log.len()
    }

    /// kit fault rules, as GraphState has
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Requests answered under /rest/usermanagement/1 (401/403 included).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The stored name of a user (lower-case key in).
    fn user_name(&self, key: &str) -> String {
        self.users
            .get(key)
            .map_or_else(|| key.to_string(), |e| e.item.name.clone())
    }

    /// The stored name of a group (lower-case key in).
    fn group_name(&self, key: &str) -> String {
        self.groups
            .get(key)
            .map_or_else(|| key.to_string(), |e| e.item.name.clone())
    }
}

/// The attribute names `before` had and `after` has not.
fn removed_attributes(before: &CrowdUser, after: &CrowdUser) -> Vec<String> {
    before
        .attributes
        .iter()
        .filter(|(n, _)| after.attribute(n).is_none())
        .map(|(n, _)| n.clone())
        .collect()
}

/// A running Crowd simulator; stops when dropped.
pub type CrowdSim = kit::Sim<CrowdState>;

type Shared = Arc<Mutex<CrowdState>>;

impl kit::SimState for CrowdState {
    const VENDOR: &'static str = "Crowd";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        router(state)
    }
}

use kit::sim::lock;

/// The axum router (the API under `/rest/usermanagement/1`), with the state's rate limit and
/// fault rules applied.
fn router(state: Shared) -> Router {
    let (faults, throttle, product) = {
        let s = lock(&state);
        (s.faults.clone(), s.throttle.clone(), s.product)
    };
    let vendor: Arc<dyn Vendor> = Arc::new(Crowd(product));
    Router::new()
        .fallback(dispatch)
        .with_state(state.clone())
        .layer(faults.layer(vendor.clone()))
        .layer(throttle.layer(vendor))
        .layer(kit::observe(move |_: &Method, uri: &Uri, _: &Response| {
            if in_api(uri.path()) {
                lock(&state).calls += 1;
            }
        }))
}

fn in_api(path: &str) -> bool {
    path.strip_prefix(API)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The headers Crowd's `RestServiceVersionFilter` (and `SearchResource`) put on every answer.
fn stamp(r: &mut Response, product: Product) {
    let h = r.headers_mut();
    h.insert(
        "x-embedded-crowd-version",
        HeaderValue::from_static(product.version_header()),
    );
    h.insert("x-crowd-user-management-version", HeaderValue::from_static("1.4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// Answers one request: outside the API a plain 404, inside it authentication, the address
/// check, permissions and the resource, every answer stamped with Crowd's headers.
async fn dispatch(State(state): State<Shared>, req: Request) -> Response {
    let Some(rest) = req.uri().path().strip_prefix(API).filter(|_| in_api(req.uri().path())) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let rest = rest.to_string();
    let peer = kit::peer(req.extensions()).map(|a| a.ip());
    let (parts, body) = req.into_parts();
    // A search restriction is small; a megabyte is far beyond any a client sends.
    let body = axum::body::to_bytes(body, 1 << 20).await;
    let s = lock(&state);
    let product = s.product;
    let mut answer = match authenticate(&s, &parts.headers, peer) {
        Err(refused) => refused.answer(),
        Ok(app) => routes::serve(&s, app, &parts, &rest, body.ok().as_deref()),
    };
    drop(s);
    stamp(&mut answer, product);
    answer
}

/// Why a request was not let in.
enum Refused {
    /// No or malformed credentials, an unknown application or a wrong password: 401.
    Credentials,
    /// A known application asked from an address it does not allow: 403.
    Address { ip: IpAddr, app: String },
}

impl Refused {
    fn answer(self) -> Response {
        match self {
            Refused::Credentials => unauthorised(),
            Refused::Address { ip, app } => forbidden_address(ip, &app),
        }
    }
}

/// The application a request authenticates as (§2; the order of Crowd's
/// `BasicApplicationAuthenticationFilter`: application, address, password).
fn authenticate<'a>(s: &'a CrowdState, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<&'a App, Refused> {
    let (name, password) = basic_credentials(headers).ok_or(Refused::Credentials)?;
    let app = s.apps.get(&lower(&name)).ok_or(Refused::Credentials)?;
    // A request served without the kit's server has no peer; it cannot be refused by address.
    if let Some(ip) = peer
        && !app.allowed.iter().any(|net| net.contains(&ip))
    {
        return Err(Refused::Address {
            ip,
            app: app.name.clone(),
        });
    }
    if app.password != password {
        return Err(Refused::Credentials);
    }
    Ok(app)
}

/// `Authorization: Basic base64(name:password)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// §2: 401 with Crowd's challenge and text.
fn unauthorised() -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, "Application failed to authenticate").into_response();
    let h = r.headers_mut();
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("BASIC realm=\"Crowd REST Service\""),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    r
}

/// An address as Java's `getRemoteAddr` writes it: IPv6 in full, without `::` compression.
fn java_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// §2: 403 from `response.sendError(403, message)`: Tomcat's error page (Jira 9 runs on
/// Tomcat 9), the message HTML-escaped.
fn forbidden_address(ip: IpAddr, app: &str) -> Response {
    let message = format!(
        "Client with address \"{}\" is forbidden from making requests to the application, {app}.",
        java_address(ip)
    );
    let m = xml::escaped(&message);
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><title>HTTP Status 403 – Forbidden</title></head><body>\
         <h1>HTTP Status 403 – Forbidden</h1><hr class=\"line\" /><p><b>Type</b> Status Report</p>\
         <p><b>Message</b> {m}</p><p><b>Description</b> The server understood the request but refuses \
         to authorize it.</p><hr class=\"line\" /><h3>Apache Tomcat/9.0.82</h3></body></html>"
    );
    let mut r = (StatusCode::FORBIDDEN, page).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    r
}

/// Crowd's answers for the kit: its headers, its `<error>` entity (JSON when asked), its 401.
struct Crowd(Product);

impl Vendor for Crowd {
    fn error(&self, req: &Parts, status: StatusCode) -> Response {
        let mut r = if status == StatusCode::UNAUTHORIZED {
            unauthorised()
        } else {
            let reason = match status.as_u16() {
                400 => Reason::IllegalArgument,
                403 => Reason::ApplicationPermissionDenied,
                410 => Reason::EventTokenExpired,
                _ => Reason::OperationFailed,
            };
            routes::Format::of(req).error(status, reason, "Injected fault.")
        };
        stamp(&mut r, self.0);
        r
    }

    /// Crowd has no access tokens; the nearest is the application failing to authenticate.
    fn expired_token(&self, req: &Parts) -> Response {
        self.error(req, StatusCode::UNAUTHORIZED)
    }

    fn rate_limited(&self, req: &Parts, _: &RateLimited) -> Response {
        self.error(req, StatusCode::TOO_MANY_REQUESTS)
    }
}
