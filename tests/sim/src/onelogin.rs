//! A OneLogin simulator: the API v2 client-credentials token endpoint, the v2 users and roles
//! reads Roster's `onelogin` connector makes, the v1 groups listing and `/auth/rate_limit`,
//! answered in OneLogin's words, with its hourly rate limit and the kit's faults
//! ([`OneLoginSim::faults`]).
//!
//! OneLogin publishes no OpenAPI document. What this simulator does follows the contract in
//! `notes/onelogin-contract.md`, which is OneLogin's API as documented at
//! developers.onelogin.com/api-docs (v2 for users, roles and rate limits; v1 for groups):
//!
//! - From OneLogin's documentation (vendor-apis.md §7 verifies the token path only; the rest is
//!   as the documentation describes it, unverified against a live account): the token endpoint
//!   `POST /auth/oauth2/v2/token` with `Authorization: Basic base64(client_id:client_secret)`
//!   and the JSON body `{"grant_type":"client_credentials"}`, its answer
//!   (`access_token`, `created_at`, `expires_in` 36000, `refresh_token`, `token_type`,
//!   `account_id`) and its error envelope (`{"status":{"error":true,"code":…}}`); the credential
//!   scopes (Authentication only, Read users, Read all, Manage users, Manage all); `GET
//!   /api/2/users` with `limit` (at most 1000), `cursor` and `updated_since`, and the user's
//!   fields; `GET /api/2/users/{id}`, `/api/2/users/{id}/roles` (role ids, unpaged), `GET
//!   /api/2/roles`, `/api/2/roles/{id}` and `/api/2/roles/{id}/users`; the paging headers
//!   `Total-Count`, `Total-Pages`, `Current-Page`, `Page-Items`, `After-Cursor`,
//!   `Before-Cursor` and `Link`; the v2 error body `{"statusCode","name","message"}`; `GET
//!   /api/1/groups` with its `status`/`pagination`/`data` envelope, 50 groups a page and
//!   `after_cursor`; the hourly rate limit (5000 by default) with `X-RateLimit-Limit`,
//!   `-Remaining` and `-Reset` (seconds until the window resets, not an epoch) and 429 without
//!   `Retry-After`; `GET /auth/rate_limit`; a user in at most one group (`group_id`).
//! - Assumptions, where the documentation is silent: every change to a user — a field, its
//!   status, its group, a role assigned or unassigned — moves its `updated_at`, and
//!   `updated_since` returns users whose `updated_at` is at or after the value; renaming or
//!   deleting a role and deleting a group move no user's `updated_at` (clients see those in the
//!   roles and groups listings); deleting a user deletes it for good (it vanishes from every
//!   listing); `Page-Items` is the number of items on this page; `After-Cursor` and the `next`
//!   link are absent on the last page, `Before-Cursor` and the `prev` link on the first; a
//!   valid token whose credential lacks the scope gets 403 `Forbidden` in the v2 shape (401
//!   `Unauthorized` is for a missing, unknown or expired token); the v1 groups listing needs the
//!   same scope as users; the token request is refused 400 unless its body is JSON naming the
//!   `client_credentials` grant; `/auth/rate_limit` and the token endpoint do not count against
//!   the limit; role and group numbers come from separate counters, so they collide (the first
//!   role and the first group share a number), as the contract warns they may.
//!
//! Paths: the token endpoint and `/auth/rate_limit` under `/auth`, the API under `/api/1` and
//! `/api/2`. Links in answers use the request's `Host` (or [`OneLoginState::set_public_url`]).
//! Every answer carries a `Date` header; every `/api` answer carries the rate-limit headers,
//! whoever answered it (an injected fault included).
//!
//! Model: users, roles and groups are kept by number in `BTreeMap`s, so listings are ordered by
//! id and a cursor names the last id served (changes between pages neither duplicate nor skip
//! others). Times are the real clock's, kept to the millisecond as OneLogin writes them.

mod routes;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use chrono::{DateTime, SubsecRound as _, Utc};
use serde_json::{Map, Value, json};

use crate::kit::layer::{KitLayer, Middleware, Next};
use crate::kit::{self, Fault, Faults, Outcome, RateLimited, Req, Sealer, Vendor};

/// The content type of OneLogin's JSON answers.
const JSON: &str = "application/json; charset=utf-8";
/// OneLogin's default rate limit: API calls per hour.
pub const DEFAULT_RATE_LIMIT: u32 = 5000;
/// The lifetime of access tokens OneLogin issues (10 hours).
pub const TOKEN_LIFETIME_SECS: u64 = 36_000;
/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/auth/oauth2/v2/token";

/// What an API credential may do: the "Scope" chosen under Developers → API Credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialScope {
    /// "Authentication only": tokens, but no API reads.
    AuthenticationOnly,
    /// "Read users": users, roles and groups.
    ReadUsers,
    /// "Read all".
    ReadAll,
    /// "Manage users" (reads included).
    ManageUsers,
    /// "Manage all" (reads included).
    ManageAll,
}

impl CredentialScope {
    /// Whether it may read users, roles and groups.
    pub fn reads_users(self) -> bool {
        !matches!(self, CredentialScope::AuthenticationOnly)
    }
}

/// A user as OneLogin holds it (the fields the v2 API shows).
#[derive(Clone, Debug, PartialEq)]
pub struct OneLoginUser {
    /// The user's number; given by the simulator when added (0 = the next free one).
    pub id: i64,
    /// `username`.
    pub username: String,
    /// `email`.
    pub email: String,
    /// `firstname`.
    pub firstname: String,
    /// `lastname`.
    pub lastname: String,
    /// `status`: 0 unactivated, 1 active, 2 suspended, 3 locked, 4 password expired, 5 awaiting
    /// password reset, 7 password pending, 8 security questions required.
    pub status: i64,
    /// `state`: 0 unapproved, 1 approved, 2 rejected, 3 unlicensed; `None` is written as null.
    pub state: Option<i64>,
    /// `group_id`: the one group the user is in.
    pub group_id: Option<i64>,
    /// `samaccountname`.
    pub samaccountname: Option<String>,
    /// `userprincipalname`.
    pub userprincipalname: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `company`.
    pub company: Option<String>,
    /// `custom_attributes`, by the attribute's short name.
    pub custom_attributes: BTreeMap<String, Value>,
    /// Written over the user's JSON as given, after every other field: answers with wrong types
    /// or missing fields (`"id": "x"`, `"username": null`) for tests of a client's validation.
    pub overrides: Map<String, Value>,
    /// `created_at`; set by the simulator when added.
    pub created_at: DateTime<Utc>,
    /// `updated_at`; set by the simulator on every change.
    pub updated_at: DateTime<Utc>,
}

impl OneLoginUser {
    /// An active, approved user in no group, without optional fields.
    pub fn new(username: &str, email: &str, firstname: &str, lastname: &str) -> OneLoginUser {
        let now = now();
        OneLoginUser {
            id: 0,
            username: username.to_string(),
            email: email.to_string(),
            firstname: firstname.to_string(),
            lastname: lastname.to_string(),
            status: 1,
            state: Some(1),
            group_id: None,
            samaccountname: None,
            userprincipalname: None,
            department: None,
            title: None,
            company: None,
            custom_attributes: BTreeMap::new(),
            overrides: Map::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The user as `GET /api/2/users` shows it.
    fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "status": self.status,
            "state": self.state,
            "group_id": self.group_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "activated_at": iso(self.created_at),
            "last_login": null,
            "invitation_sent_at": null,
            "password_changed_at": null,
            "locked_until": null,
            "invalid_login_attempts": 0,
            "samaccountname": self.samaccountname,
            "userprincipalname": self.userprincipalname,
            "distinguished_name": null,
            "external_id": null,
            "directory_id": null,
            "member_of": null,
            "manager_ad_id": null,
            "manager_user_id": null,
            "trusted_idp_id": null,
            "phone": null,
            "department": self.department,
            "title": self.title,
            "company": self.company,
            "comment": null,
            "locale_code": null,
            "preferred_locale_code": null,
            "custom_attributes": self.custom_attributes,
        });
        if let Value::Object(o) = &mut v {
            for (k, x) in &self.overrides {
                o.insert(k.clone(), x.clone());
            }
        }
        v
    }
}

/// A role (Roster reads roles as groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneLoginRole {
    /// The role's number.
    pub id: i64,
    /// `name`.
    pub name: String,
}

/// A group (v1; a user is in at most one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneLoginGroup {
    /// The group's number.
    pub id: i64,
    /// `name`.
    pub name: String,
}

/// An API credential.
#[derive(Clone, Debug)]
struct Credential {
    secret: String,
    scope: CredentialScope,
}

/// An issued access token.
#[derive(Clone, Debug)]
struct IssuedToken {
    client_id: String,
    expires: Instant,
}

/// The hourly rate limit, shared between the state (which sets it) and the layer enforcing it.
#[derive(Clone, Debug)]
struct RateLimit(Arc<Mutex<Window>>);

#[derive(Debug)]
struct Window {
    limit: u32,
    length: Duration,
    start: Instant,
    used: u32,
    /// Requests still to be refused whatever the count ([`OneLoginState::throttle_next`]).
    forced: u32,
}

/// What the rate-limit headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Headroom {
    limit: u32,
    remaining: u32,
    reset: u64,
}

impl RateLimit {
    fn new() -> RateLimit {
        RateLimit(Arc::new(Mutex::new(Window {
            limit: DEFAULT_RATE_LIMIT,
            length: Duration::from_secs(3600),
            start: Instant::now(),
            used: 0,
            forced: 0,
        })))
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one call from the window: the headroom left after it, or the refusal's.
    fn take(&self, now: Instant) -> Result<Headroom, Headroom> {
        let mut w = self.window();
        w.roll(now);
        if w.forced > 0 {
            w.forced -= 1;
            // A forced refusal is a limit about to reset: clients wait a second, not an hour.
            return Err(Headroom {
                limit: w.limit,
                remaining: 0,
                reset: 1,
            });
        }
        if w.used >= w.limit {
            return Err(w.headroom(now));
        }
        w.used += 1;
        Ok(w.headroom(now))
    }

    /// The headroom now, taking nothing.
    fn peek(&self, now: Instant) -> Headroom {
        let mut w = self.window();
        w.roll(now);
        w.headroom(now)
    }
}

impl Window {
    /// Starts a fresh window once the current one has ended.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= self.length && !self.length.is_zero() {
            let windows = elapsed.as_nanos() / self.length.as_nanos();
            let skip = self.length.saturating_mul(u32::try_from(windows).unwrap_or(u32::MAX));
            self.start += skip;
            self.used = 0;
        }
    }

    fn headroom(&self, now: Instant) -> Headroom {
        let left = self.length.saturating_sub(now.saturating_duration_since(self.start));
        let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Headroom {
            limit: self.limit,
            remaining: self.limit.saturating_sub(self.used),
            reset: reset.max(1),
        }
    }
}

/// The whole simulated account: API credentials, issued tokens, users, roles, groups, faults,
/// the rate limit and counters.
pub struct OneLoginState {
    account_id: i64,
    /// Seals cursors.
    sealer: Sealer,
    credentials: BTreeMap<String, Credential>,
    tokens: HashMap<String, IssuedToken>,
    token_lifetime: u64,
    users: BTreeMap<i64, OneLoginUser>,
    roles: BTreeMap<i64, OneLoginRole>,
    /// role → its users.
    role_users: BTreeMap<i64, BTreeSet<i64>>,
    /// user → its roles.
    user_roles: HashMap<i64, BTreeSet<i64>>,
    groups: BTreeMap<i64, OneLoginGroup>,
    next_user: i64,
    next_role: i64,
    next_group: i64,
    /// Directory ids → numbers, for tests seeded from a [`crate::directory::Directory`].
    dir_users: HashMap<String, i64>,
    dir_roles: HashMap<String, i64>,
    /// Shared with the router's layers, so tests can change them while the simulator runs.
    faults: Faults,
    limit: RateLimit,
    public_url: Option<String>,
    /// Requests answered, by route with numbers replaced ("GET /api/2/roles/{id}/users",
    /// "POST /auth/oauth2/v2/token"); throttled requests are not counted here.
    pub calls: BTreeMap<String, u64>,
    /// Token requests received.
    pub token_calls: u64,
    /// API requests refused because their access token was missing, unknown or expired (or an
    /// injected fault said so).
    pub refused_tokens: u64,
    /// API requests answered 429 by the rate limit or an injected fault (not in `calls`).
    pub throttled: u64,
}

impl std::fmt::Debug for OneLoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneLoginState")
            .field("users", &self.users.len())
            .field("roles", &self.roles.len())
            .field("groups", &self.groups.len())
            .field("calls", &self.calls)
            .field("token_calls", &self.token_calls)
            .field("throttled", &self.throttled)
            .finish_non_exhaustive()
    }
}

impl Default for OneLoginState {
    fn default() -> Self {
        Self::new()
    }
}

/// Now, to the millisecond (OneLogin's precision).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A time as OneLogin writes it: `2026-12-03T21:30:00.000Z`.
fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl OneLoginState {
    /// An empty account, without credentials.
    pub fn new() -> Self {
        OneLoginState {
            account_id: 123_456,
            sealer: Sealer::new(),
            credentials: BTreeMap::new(),
            tokens: HashMap::new(),
            token_lifetime: TOKEN_LIFETIME_SECS,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
            role_users: BTreeMap::new(),
            user_roles: HashMap::new(),
            groups: BTreeMap::new(),
            next_user: 40_000_001,
            next_role: 500_001,
            next_group: 500_001,
            dir_users: HashMap::new(),
            dir_roles: HashMap::new(),
            faults: Faults::new(),
            limit: RateLimit::new(),
            public_url: None,
            calls: BTreeMap::new(),
            token_calls: 0,
            refused_tokens: 0,
            throttled: 0,
        }
    }

    /// An account holding a sample directory: each user with a stable number
    /// ([`OneLoginState::user_id`]), username and email as in the directory, first and last name
    /// split from the display name at its first space, status 1 (active) or 2 (suspended) as the
    /// user is active, state approved, created and updated a day ago; each group a role of the same name
    /// ([`OneLoginState::role_id`]) whose users are the group's members, nested groups
    /// flattened (OneLogin roles do not nest). No groups, no credentials.
    pub fn from_directory(d: &crate::directory::Directory) -> Self {
        let mut s = OneLoginState::new();
        for u in &d.users {
            let (first, last) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
            let mut o = OneLoginUser::new(&u.username, &u.email, first, last);
            o.status = if u.active { 1 } else { 2 };
            let id = s.add_user(o);
            s.dir_users.insert(u.id.clone(), id);
        }
        for g in &d.groups {
            let id = s.add_role(&g.name);
            s.dir_roles.insert(g.id.clone(), id);
        }
        let mut direct: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for m in &d.memberships {
            let into = if m.member_is_group { &mut children } else { &mut direct };
            into.entry(m.group.as_str()).or_default().push(m.member.as_str());
        }
        for g in &d.groups {
            let role = s.dir_roles[&g.id];
            let mut seen = BTreeSet::from([g.id.as_str()]);
            let mut stack = vec![g.id.as_str()];
            while let Some(h) = stack.pop() {
                for u in direct.get(h).into_iter().flatten() {
                    if let Some(&user) = s.dir_users.get(*u) {
                        s.link(user, role);
                    }
                }
                for c in children.get(h).into_iter().flatten() {
                    if seen.insert(c) {
                        stack.push(c);
                    }
                }
            }
        }
        // The account existed before the test: what `updated_since` finds is what changed since.
        for u in s.users.values_mut() {
            u.created_at -= chrono::Duration::days(1);
            u.updated_at -= chrono::Duration::days(1);
        }
        s
    }

    /// The number of the user seeded from the directory user `dir_id`; panics for an id the
    /// directory did not have.
    pub fn user_id(&self, dir_id: &str) -> i64 {
        *self
            .dir_users
            .get(dir_id)
            .unwrap_or_else(|| panic!("the directory had no user {dir_id}"))
    }

    /// The number of the role seeded from the directory group `dir_group_id`; panics for an id
    /// the directory did not have.
    pub fn role_id(&self, dir_group_id: &str) -> i64 {
        *self
            .dir_roles
            .get(dir_group_id)
            .unwrap_or_else(|| panic!("the directory had no group {dir_group_id}"))
    }

    /// The account's number, as token answers report it.
    pub fn account_id(&self) -> i64 {
        self.account_id
    }

    /// Creates (or replaces) an API credential with its secret and scope. Scopes are checked on
    /// every request, so a replaced scope applies at once to tokens already issued.
    pub fn add_credential(&mut self, client_id: &str, secret: &str, scope: CredentialScope) {
        self.credentials.insert(
            client_id.to_string(),
            Credential {
                secret: secret.to_string(),
                scope,
            },
        );
    }

    /// Deletes an API credential: its tokens stop working and it can get no new ones.
    pub fn remove_credential(&mut self, client_id: &str) {
        self.credentials.remove(client_id);
        self.tokens.retain(|_, t| t.client_id != client_id);
    }

    /// Adds a user and returns its number (the given one, or the next free one for 0). Its
    /// `created_at` and `updated_at` are now; a user with the same number is replaced.
    pub fn add_user(&mut self, mut u: OneLoginUser) -> i64 {
        if u.id <= 0 {
            u.id = self.next_user;
        }
        self.next_user = self.next_user.max(u.id + 1);
        let t = now();
        u.created_at = t;
        u.updated_at = t;
        let id = u.id;
        self.users.insert(id, u);
        id
    }

    /// Changes a user (its number and creation time cannot change) and moves its `updated_at`.
    pub fn update_user(&mut self, id: i64, f: impl FnOnce(&mut OneLoginUser)) {
        let Some(u) = self.users.get_mut(&id) else {
            return;
        };
        let created = u.created_at;
        f(u);
        u.id = id;
        u.created_at = created;
        u.updated_at = now();
    }

    /// Sets a user's `status` number (see [`OneLoginUser::status`]).
    pub fn set_status(&mut self, id: i64, status: i64) {
        self.update_user(id, |u| u.status = status);
    }

    /// Deletes a user for good, with its role assignments: it vanishes from every listing.
    pub fn delete_user(&mut self, id: i64) {
        if self.users.remove(&id).is_none() {
            return;
        }
        for r in self.user_roles.remove(&id).unwrap_or_default() {
            if let Some(set) = self.role_users.get_mut(&r) {
                set.remove(&id);
            }
        }
    }

    /// Adds a role and returns its number.
    pub fn add_role(&mut self, name: &str) -> i64 {
        let id = self.next_role;
        self.next_role += 1;
        self.roles.insert(
            id,
            OneLoginRole {
                id,
                name: name.to_string(),
            },
        );
        id
    }

    /// Renames a role (its users' `updated_at` stay).
    pub fn rename_role(&mut self, id: i64, name: &str) {
        if let Some(r) = self.roles.get_mut(&id) {
            r.name = name.to_string();
        }
    }

    /// Deletes a role: its users lose it, their `updated_at` staying as they were.
    pub fn delete_role(&mut self, id: i64) {
        if self.roles.remove(&id).is_none() {
            return;
        }
        for u in self.role_users.remove(&id).unwrap_or_default() {
            if let Some(set) = self.user_roles.get_mut(&u) {
                set.remove(&id);
            }
        }
    }

    fn link(&mut self, user: i64, role: i64) -> bool {
        if !self.users.contains_key(&user) || !self.roles.contains_key(&role) {
            return false;
        }
        self.user_roles.entry(user).or_default().insert(role);
        self.role_users.entry(role).or_default().insert(user)
    }

    /// Assigns a role to a user, moving the user's `updated_at`; unknown numbers or a role the
    /// user already has change nothing.
    pub fn assign_role(&mut self, user: i64, role: i64) {
        if self.link(user, role) {
            self.update_user(user, |_| {});
        }
    }

    /// Takes a role from a user, moving the user's `updated_at`.
    pub fn unassign_role(&mut self, user: i64, role: i64) {
        let had = self.role_users.get_mut(&role).is_some_and(|s| s.remove(&user));
        if let Some(set) = self.user_roles.get_mut(&user) {
            set.remove(&role);
        }
        if had {
            self.update_user(user, |_| {});
        }
    }

    /// Adds a group and returns its number.
    pub fn add_group(&mut self, name: &str) -> i64 {
        let id = self.next_group;
        self.next_group += 1;
        self.groups.insert(
            id,
            OneLoginGroup {
                id,
                name: name.to_string(),
            },
        );
        id
    }

    /// Renames a group (its users' `updated_at` stay).
    pub fn rename_group(&mut self, id: i64, name: &str) {
        if let Some(g) = self.groups.get_mut(&id) {
            g.name = name.to_string();
        }
    }

    /// Deletes a group: its users are in no group, their `updated_at` staying as they were.
    pub fn delete_group(&mut self, id: i64) {
        if self.groups.remove(&id).is_none() {
            return;
        }
        for u in self.users.values_mut().filter(|u| u.group_id == Some(id)) {
            u.group_id = None;
        }
    }

    /// Puts a user in a group (or in none), moving its `updated_at`; an unknown group changes
    /// nothing.
    pub fn set_user_group(&mut self, user: i64, group: Option<i64>) {
        if group.is_some_and(|g| !self.groups.contains_key(&g)) {
            return;
        }
        self.update_user(user, |u| u.group_id = group);
    }

    /// A user.
    pub fn user(&self, id: i64) -> Option<&OneLoginUser> {
        self.users.get(&id)
    }

    /// The number of the user with this username (case-insensitive).
    pub fn user_id_by_username(&self, username: &str) -> Option<i64> {
        self.users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username))
            .map(|u| u.id)
    }

    /// How many users there are.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// A role.
    pub fn role(&self, id: i64) -> Option<&OneLoginRole> {
        self.roles.get(&id)
    }

    /// The number of the first role (by number) with this name.
    pub fn role_id_by_name(&self, name: &str) -> Option<i64> {
        self.roles.values().find(|r| r.name == name).map(|r| r.id)
    }

    /// How many roles there are.
    pub fn role_count(&self) -> usize {
        self.roles.len()
    }

    /// A role's users, by number.
    pub fn role_users(&self, role: i64) -> Vec<i64> {
        self.role_users
            .get(&role)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A user's roles, by number.
    pub fn user_roles(&self, user: i64) -> Vec<i64> {
        self.user_roles
            .get(&user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A group.
    pub fn group(&self, id: i64) -> Option<&OneLoginGroup> {
        self.groups.get(&id)
    }

    /// Sets the hourly rate limit (API calls per window, 5000 by default) and starts a fresh
    /// window.
    pub fn set_rate_limit(&mut self, per_hour: u32) {
        let mut w = self.limit.window();
        w.limit = per_hour;
        w.used = 0;
        w.start = Instant::now();
    }

    /// Makes the rate-limit window this long instead of an hour (tests that spend the limit
    /// wait for its reset) and starts a fresh window.
    pub fn set_rate_limit_window(&mut self, length: Duration) {
        let mut w = self.limit.window();
        w.length = length;
        w.used = 0;
        w.start = Instant::now();
    }

    /// The next `n` API requests are refused 429 as if the limit were spent, with
    /// `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset: 1`; no `Retry-After`, as OneLogin.
    pub fn throttle_next(&mut self, n: u32) {
        let mut w = self.limit.window();
        w.forced = w.forced.saturating_add(n);
    }

    /// The next `n` requests whose path and (decoded) query contain `path_contains` are
    /// answered `status` with OneLogin's error body for the path.
    pub fn fail_next(&mut self, n: u32, path_contains: &str, status: u16) {
        self.faults.fail_next(n, path_contains, Fault::status(status));
    }

    /// The next request whose path and (decoded) query contain `path_contains` is answered 200
    /// with the first half of its body: JSON that does not parse.
    pub fn corrupt_next(&mut self, path_contains: &str) {
        self.faults.corrupt_next(path_contains);
    }

    /// The fault rules applied to this account's requests, tokens included.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Invalidates every access token issued so far.
    pub fn expire_access_tokens(&mut self) {
        self.tokens.clear();
    }

    /// The lifetime of access tokens issued from now on: reported in `expires_in` and enforced.
    pub fn set_token_lifetime(&mut self, secs: u64) {
        self.token_lifetime = secs;
    }

    /// The base URL written into links (`Link`, `next_link`), e.g. a proxy's
    /// `http://127.0.0.1:PORT`; by default the request's `Host`.
    pub fn set_public_url(&mut self, url: &str) {
        self.public_url = Some(url.trim_end_matches('/').to_string());
    }

    /// API requests answered (token and throttled requests excluded).
    pub fn api_calls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.contains(" /api/"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Requests answered on one route (`"GET /api/2/users/{id}/roles"`).
    pub fn calls_to(&self, route: &str) -> u64 {
        self.calls.get(route).copied().unwrap_or(0)
    }

    /// A new access token for a credential.
    fn issue_token(&mut self, client_id: &str) -> (String, u64) {
        let token = hex(&kit::ids::random_bytes(32));
        let lifetime = self.token_lifetime;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                client_id: client_id.to_string(),
                expires: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        (token, lifetime)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running OneLogin simulator; stops when dropped.
pub type OneLoginSim = kit::Sim<OneLoginState>;

impl OneLoginSim {
    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }

    /// The state, locked (the name the host tests use for every simulator).
    pub fn state(&self) -> std::sync::MutexGuard<'_, OneLoginState> {
        self.lock()
    }
}

type Shared = Arc<Mutex<OneLoginState>>;

use kit::sim::lock;

impl kit::SimState for OneLoginState {
    const VENDOR: &'static str = "OneLogin";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        router(state)
    }
}

/// The axum router with the kit's fault rules, OneLogin's rate limit and headers, and the
/// counters.
fn router(state: Shared) -> Router {
    let (faults, limit) = {
        let s = lock(&state);
        (s.faults.clone(), s.limit.clone())
    };
    let vendor: Arc<dyn Vendor> = Arc::new(OneLogin);
    Router::new()
        .fallback(dispatch)
        .with_state(state.clone())
        .layer(faults.layer(vendor.clone()))
        .layer(KitLayer::new(Limiter { limit, vendor }))
        .layer(kit::observe(move |method, uri, answer| {
            count(&state, method, uri, answer)
        }))
}

/// Which of OneLogin's APIs a path belongs to, for its error shape and its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    /// `/auth/…`: the token endpoint and `/auth/rate_limit` (the v1 envelope).
    Auth,
    /// `/api/1/…` (the v1 envelope).
    V1,
    /// `/api/2/…` and anything else (the v2 body).
    V2,
}

impl Api {
    fn of(path: &str) -> Api {
        if path.starts_with("/auth/") {
            Api::Auth
        } else if path.starts_with("/api/1/") || path == "/api/1" {
            Api::V1
        } else {
            Api::V2
        }
    }
}

/// Whether the path is the API, which the rate limit counts.
fn in_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The name OneLogin's v2 errors give a status.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        422 => "UnprocessableEntity",
        429 => "TooManyRequests",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "InternalServerError",
    }
}

/// A JSON answer with OneLogin's content type.
fn answer(status: StatusCode, body: &Value) -> Response {
    kit::errors::json(status, JSON, body)
}

/// A v2 error: `{"statusCode":401,"name":"Unauthorized","message":"Unauthorized"}`.
fn v2_error(status: StatusCode, message: &str) -> Response {
    answer(
        status,
        &json!({"statusCode": status.as_u16(), "name": status_name(status), "message": message}),
    )
}

/// A v1 (and token endpoint) error: `{"status":{"error":true,"code":401,"type":…,"message":…}}`.
fn v1_error(status: StatusCode, kind: &str, message: &str) -> Response {
    answer(
        status,
        &json!({"status": {"error": true, "code": status.as_u16(), "type": kind, "message": message}}),
    )
}

/// The error answer with `status` in the shape of the API `path` belongs to.
fn error_for(path: &str, status: StatusCode, message: &str) -> Response {
    match Api::of(path) {
        Api::V2 => v2_error(status, message),
        Api::V1 | Api::Auth => {
            let kind = match status.as_u16() {
                400 => "bad request",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "Not Found",
                429 => "Too Many Requests",
                _ => "Internal Server Error",
            };
            v1_error(status, kind, message)
        }
    }
}

/// The default message for a status.
fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// OneLogin's answers for the kit.
struct OneLogin;

impl Vendor for OneLogin {
    fn error(&self, req: &Parts, status: StatusCode) -> Response {
        let message = if status == StatusCode::UNAUTHORIZED && Api::of(req.uri.path()) == Api::Auth {
            "Authentication Failure"
        } else {
            reason(status)
        };
        error_for(req.uri.path(), status, message)
    }

    fn expired_token(&self, req: &Parts) -> Response {
        self.error(req, StatusCode::UNAUTHORIZED)
    }

    fn rate_limited(&self, req: &Parts, _: &RateLimited) -> Response {
        self.error(req, StatusCode::TOO_MANY_REQUESTS)
    }
}

/// OneLogin's rate limit on the API, its headers on every API answer (whoever answered), and
/// `Date` on every answer.
#[derive(Clone)]
struct Limiter {
    limit: RateLimit,
    vendor: Arc<dyn Vendor>,
}

impl Middleware for Limiter {
    async fn run(self, req: Request, next: Next) -> Response {
        let mut r = if in_api(req.uri().path()) {
            match self.limit.take(Instant::now()) {
                Ok(_) => {
                    let mut r = next.run(req).await;
                    // The headers say what is left once this answer is given.
                    set_rate_headers(&mut r, self.limit.peek(Instant::now()));
                    r
                }
                Err(refused) => {
                    let (parts, _) = req.into_parts();
                    let mut r = self.vendor.error(&parts, StatusCode::TOO_MANY_REQUESTS);
                    set_rate_headers(&mut r, refused);
                    r.extensions_mut().insert(kit::Throttled);
                    r
                }
            }
        } else {
            next.run(req).await
        };
        let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(v) = HeaderValue::from_str(&date) {
            r.headers_mut().insert(header::DATE, v);
        }
        r
    }
}

fn set_rate_headers(r: &mut Response, h: Headroom) {
    let headers = r.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(h.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(h.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(h.reset));
}

/// A route's label for the counters: the path with numbers replaced by `{id}`.
fn label(method: &Method, path: &str) -> String {
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        // The second segment of `/api/2/…` is the API's version, not a number to hide.
        .map(|(i, s)| if i > 1 && s.parse::<i64>().is_ok() { "{id}" } else { s })
        .collect();
    format!("{method} /{}", segs.join("/"))
}

/// Keeps `calls`, `token_calls`, `refused_tokens` and `throttled`, whoever answered.
fn count(state: &Shared, method: &Method, uri: &Uri, answer: &Response) {
    let outcome = Outcome::of(answer);
    let mut s = lock(state);
    let path = uri.path();
    if path == TOKEN_PATH {
        s.token_calls += 1;
    }
    if in_api(path) && outcome.is_throttling() {
        s.throttled += 1;
        return;
    }
    if in_api(path)
        && (outcome == Outcome::Injected(Fault::ExpiredToken)
            || (outcome == Outcome::Served && answer.status() == StatusCode::UNAUTHORIZED))
    {
        s.refused_tokens += 1;
    }
    *s.calls.entry(label(method, path)).or_default() += 1;
}

async fn dispatch(State(state): State<Shared>, req: Req) -> Response {
    routes::handle(&mut lock(&state), &req)
}
