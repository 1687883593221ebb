//! An Okta Management API simulator: the reads Roster's `okta` connector makes (users, groups,
//! group members, applications with their user and group assignments) and the OAuth 2.0 token
//! endpoint of a service app (`private_key_jwt`), following Okta's published contract
//! (`shared/specs/okta-management-prism-ready.yaml`, vendor-apis.md §5): `search` and `filter`
//! expressions ([`search`]), `Link: <…>; rel="next"` paging with opaque `after` cursors and
//! Okta's `limit` maxima (capped, not refused), the plain user listing that silently omits
//! DEPROVISIONED users (a search or filter includes them), `lastUpdated` and
//! `lastMembershipUpdated`, SSWS API tokens and scoped bearer tokens, Okta's error bodies
//! (`errorCode`, `errorSummary`, `errorLink`, `errorId`, `errorCauses`), per-bucket per-minute
//! rate limits reported on every answer (`X-Rate-Limit-Limit/-Remaining/-Reset`) with 429
//! E0000047 and no `Retry-After`, and the kit's faults ([`OktaSim::faults`]).
//!
//! Paths: the API under `/api/v1`, tokens at `/oauth2/v1/token`. Links in answers use the
//! request's `Host` (or [`OktaState::set_public_url`]), so a proxy in front keeps seeing the
//! follow-up requests.
//!
//! Model: objects are kept in `BTreeMap`s by id, so listings are ordered by id and an `after`
//! cursor names the last id served (inserts and deletes between pages neither duplicate nor skip
//! others). Every edit sets the object's `lastUpdated` to now (real time, millisecond ISO-8601);
//! membership edits set the group's `lastMembershipUpdated`, never the user's `lastUpdated`, as
//! in Okta.

mod routes;
mod search;
mod token;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::kit::faults::decoded_target;
use crate::kit::ids::random_u64;
use crate::kit::layer::{KitLayer, Middleware, Next};
use crate::kit::{self, FaultRule, Faults, Outcome, RouteMatch, Sealer, Throttled, Times, Vendor};

/// The content type of Okta's JSON answers.
const OKTA_JSON: &str = "application/json";
/// Requests per bucket per minute when no limit was set: generous, so only tests that want the
/// limit meet it.
pub const DEFAULT_RATE_LIMIT: u32 = 100_000;

/// A user's status (`UserStatus`), and the transitional `ACTIVATING` Okta shows while an
/// activation is in progress (not in the document's enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// `ACTIVE`.
    Active,
    /// `DEPROVISIONED` (deactivated): omitted from plain user listings.
    Deprovisioned,
    /// `LOCKED_OUT`.
    LockedOut,
    /// `PASSWORD_EXPIRED`.
    PasswordExpired,
    /// `PROVISIONED` (activated, no password yet).
    Provisioned,
    /// `RECOVERY`.
    Recovery,
    /// `STAGED` (created, never activated).
    Staged,
    /// `SUSPENDED`.
    Suspended,
    /// `ACTIVATING`, with `transitioningToStatus` = ACTIVE.
    Activating,
}

impl Status {
    /// The name Okta writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Deprovisioned => "DEPROVISIONED",
            Status::LockedOut => "LOCKED_OUT",
            Status::PasswordExpired => "PASSWORD_EXPIRED",
            Status::Provisioned => "PROVISIONED",
            Status::Recovery => "RECOVERY",
            Status::Staged => "STAGED",
            Status::Suspended => "SUSPENDED",
            Status::Activating => "ACTIVATING",
        }
    }
}

/// A group's type (`GroupType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupType {
    /// Managed in Okta.
    OktaGroup,
    /// Imported from an app (Active Directory, LDAP, …).
    AppGroup,
    /// Okta's own (`Everyone`).
    BuiltIn,
}

impl GroupType {
    /// The name Okta writes.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::OktaGroup => "OKTA_GROUP",
            GroupType::AppGroup => "APP_GROUP",
            GroupType::BuiltIn => "BUILT_IN",
        }
    }
}

/// The rate-limit buckets requests are counted in, one counter per bucket per minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// `/api/v1/users…`.
    Users,
    /// `/api/v1/groups` and `/api/v1/groups/{id}`.
    Groups,
    /// `/api/v1/groups/{id}/users`.
    GroupMembers,
    /// `/api/v1/apps…`.
    Apps,
}

impl Bucket {
    const ALL: [Bucket; 4] = [Bucket::Users, Bucket::Groups, Bucket::GroupMembers, Bucket::Apps];

    /// The bucket of an API path; `None` outside `/api/v1`.
    fn of(path: &str) -> Option<Bucket> {
        let rest = path.strip_prefix("/api/v1/")?;
        let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        Some(match segs.as_slice() {
            ["groups", _, "users", ..] => Bucket::GroupMembers,
            ["groups", ..] => Bucket::Groups,
            ["apps", ..] => Bucket::Apps,
            // Users, and any other path (which answers 404) counts against the users bucket.
            _ => Bucket::Users,
        })
    }
}

/// Which buckets a rate limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateScope {
    /// Every bucket.
    All,
    /// One bucket.
    Only(Bucket),
}

/// A user.
#[derive(Clone, Debug)]
pub struct OktaUser {
    /// `00u…`; immutable.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// `profile`: `login`, `email`, `firstName`, `lastName`, `displayName`, custom attributes.
    pub profile: Map<String, Value>,
    /// `created`.
    pub created: DateTime<Utc>,
    /// `activated`.
    pub activated: Option<DateTime<Utc>>,
    /// `statusChanged`.
    pub status_changed: Option<DateTime<Utc>>,
    /// `lastUpdated`: every profile or status edit.
    pub last_updated: DateTime<Utc>,
}

impl OktaUser {
    /// `profile.login`.
    pub fn login(&self) -> &str {
        self.profile.get("login").and_then(Value::as_str).unwrap_or("")
    }
}

/// A group.
#[derive(Clone, Debug)]
pub struct OktaGroup {
    /// `00g…`; immutable.
    pub id: String,
    /// `profile.name`.
    pub name: String,
    /// `profile.description`.
    pub description: Option<String>,
    /// `type`.
    pub group_type: GroupType,
    /// `created`.
    pub created: DateTime<Utc>,
    /// `lastUpdated`: profile edits.
    pub last_updated: DateTime<Utc>,
    /// `lastMembershipUpdated`: membership edits.
    pub last_membership_updated: DateTime<Utc>,
}

/// An application and its assignments.
#[derive(Clone, Debug)]
struct App {
    id: String,
    label: String,
    created: DateTime<Utc>,
    /// Direct user assignments: user → when.
    users: BTreeMap<String, DateTime<Utc>>,
    /// Group assignments: group → (priority, when).
    groups: BTreeMap<String, (u32, DateTime<Utc>)>,
}

/// A service app registered for client credentials with `private_key_jwt`.
#[derive(Clone)]
struct ServiceApp {
    /// kid → public key (`None` when the PEM could not be read: every assertion then fails).
    keys: Vec<(String, Option<jsonwebtoken::DecodingKey>)>,
    /// Okta API scopes granted to it.
    scopes: BTreeSet<String>,
    /// "Require Demonstrating Proof of Possession (DPoP) header".
    dpop: bool,
}

/// What an API token's administrator may read.
#[derive(Clone, Debug)]
struct ApiToken {
    /// The buckets its admin role covers; the others answer 403 E0000006.
    allowed: BTreeSet<Bucket>,
}

/// An issued access token.
#[derive(Clone, Debug)]
struct IssuedToken {
    scopes: BTreeSet<String>,
    expires: Instant,
}

/// Per-bucket per-minute counters, shared by the state (which sets limits) and the layer.
#[derive(Clone, Debug, Default)]
struct RateLimits(Arc<Mutex<RateTable>>);

#[derive(Debug, Default)]
struct RateTable {
    limits: HashMap<Bucket, u32>,
    /// bucket → (window since the epoch, requests counted in it).
    windows: HashMap<Bucket, (i64, u32)>,
    /// The window's length in seconds; 0 means Okta's minute.
    window_secs: i64,
}

/// The rate-limit headers of one answer.
#[derive(Clone, Copy, Debug)]
struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset: i64,
}

impl RateLimits {
    fn table(&self) -> std::sync::MutexGuard<'_, RateTable> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request in `bucket`'s current minute: the headers to send, and whether it is
    /// over the limit (then it is not counted).
    fn take(&self, bucket: Bucket, now: DateTime<Utc>) -> (RateHeaders, bool) {
        let mut t = self.table();
        let limit = t.limits.get(&bucket).copied().unwrap_or(DEFAULT_RATE_LIMIT);
        let length = if t.window_secs > 0 { t.window_secs } else { 60 };
        let minute = now.timestamp().div_euclid(length);
        let w = t.windows.entry(bucket).or_insert((minute, 0));
        if w.0 != minute {
            *w = (minute, 0);
        }
        let reset = (minute + 1) * length;
        if w.1 >= limit {
            return (
                RateHeaders {
                    limit,
                    remaining: 0,
                    reset,
                },
                true,
            );
        }
        w.1 += 1;
        (
            RateHeaders {
                limit,
                remaining: limit - w.1,
                reset,
            },
            false,
        )
    }
}

/// The whole simulated org: its users, groups, apps, credentials, faults and counters.
pub struct OktaState {
    domain: String,
    sealer: Sealer,
    users: BTreeMap<String, OktaUser>,
    /// lower-case login → id.
    logins: HashMap<String, String>,
    groups: BTreeMap<String, OktaGroup>,
    /// group → its members.
    members: HashMap<String, BTreeSet<String>>,
    /// user → its groups.
    member_of: HashMap<String, BTreeSet<String>>,
    apps: BTreeMap<String, App>,
    /// Profile attributes known to the user schema (standard ones and every custom one set).
    profile_schema: BTreeSet<String>,
    /// Directory ids (`u-000001`, `g-00001`) → Okta ids, for orgs built from a directory.
    dir_ids: HashMap<String, String>,
    api_tokens: HashMap<String, ApiToken>,
    service_apps: BTreeMap<String, ServiceApp>,
    tokens: HashMap<String, IssuedToken>,
    /// `jti`s of assertions already used.
    used_jtis: BTreeSet<String>,
    token_lifetime: u64,
    everyone: String,
    faults: Faults,
    rates: RateLimits,
    public_url: Option<String>,
    /// Requests answered, by route label with ids replaced ("GET /api/v1/groups/{id}/users",
    /// "POST /oauth2/v1/token"); throttled ones are not counted here.
    pub calls: BTreeMap<String, u64>,
    /// The last API requests answered (method, path and decoded query), oldest first, at most
    /// [`REQUEST_LOG`]: what a client asked for (`search`, `limit`, `after`, …).
    pub requests: VecDeque<String>,
    /// Requests answered 429 (by the rate limit or an injected fault).
    pub throttled: u64,
}

/// How many answered requests [`OktaState::requests`] keeps.
pub const REQUEST_LOG: usize = 1000;

/// The standard attributes of Okta's user profile.
const STANDARD_PROFILE: &[&str] = &[
    "login",
    "email",
    "secondEmail",
    "firstName",
    "lastName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "title",
    "displayName",
    "nickName",
    "profileUrl",
    "primaryPhone",
    "mobilePhone",
    "streetAddress",
    "city",
    "state",
    "zipCode",
    "countryCode",
    "postalAddress",
    "preferredLanguage",
    "locale",
    "timezone",
    "userType",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "managerId",
    "manager",
];

impl std::fmt::Debug for OktaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaState")
            .field("domain", &self.domain)
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .field("apps", &self.apps.len())
            .field("calls", &self.calls)
            .field("throttled", &self.throttled)
            .finish_non_exhaustive()
    }
}

/// An Okta-style id: a three-character prefix and 17 random letters and digits.
fn okta_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let (mut a, mut b) = (random_u64(), random_u64());
    let mut s = String::with_capacity(20);
    s.push_str(prefix);
    for i in 0..17 {
        let n = if i < 9 { &mut a } else { &mut b };
        s.push(ALPHABET[(*n % 62) as usize] as char);
        *n /= 62;
    }
    s
}

/// A timestamp as Okta writes it: `2026-12-03T21:30:00.000Z`.
pub fn okta_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Now, to the millisecond (Okta's precision), so a timestamp read back compares equal.
fn now() -> DateTime<Utc> {
    let n = Utc::now();
    DateTime::from_timestamp_millis(n.timestamp_millis()).unwrap_or(n)
}

impl OktaState {
    /// An empty org whose logins end in `@{domain}`, holding only the BUILT_IN `Everyone` group.
    pub fn new(domain: &str) -> Self {
        let t = now();
        let everyone = okta_id("00g");
        let mut groups = BTreeMap::new();
        groups.insert(
            everyone.clone(),
            OktaGroup {
                id: everyone.clone(),
                name: "Everyone".into(),
                description: Some("All users in your organization".into()),
                group_type: GroupType::BuiltIn,
                created: t,
                last_updated: t,
                last_membership_updated: t,
            },
        );
        OktaState {
            domain: domain.to_string(),
            sealer: Sealer::new(),
            users: BTreeMap::new(),
            logins: HashMap::new(),
            groups,
            members: HashMap::new(),
            member_of: HashMap::new(),
            apps: BTreeMap::new(),
            profile_schema: STANDARD_PROFILE.iter().map(|s| s.to_string()).collect(),
            dir_ids: HashMap::new(),
            api_tokens: HashMap::new(),
            service_apps: BTreeMap::new(),
            tokens: HashMap::new(),
            used_jtis: BTreeSet::new(),
            token_lifetime: 3600,
            everyone,
            faults: Faults::new(),
            rates: RateLimits::default(),
            public_url: None,
            calls: BTreeMap::new(),
            requests: VecDeque::new(),
            throttled: 0,
        }
    }

    /// An org holding a sample directory: each user with login and email
    /// `{username}@{domain}`-style (login `{username}@{domain}`, email from the directory),
    /// first and last name from its display name, ACTIVE (SUSPENDED when the directory says
    /// inactive), every timestamp a day old; each group an OKTA_GROUP of the same name whose direct members are the
    /// directory's members with nested groups flattened (Okta groups do not nest). The
    /// directory's ids map to Okta ids through [`OktaState::user_id`] and
    /// [`OktaState::group_id`].
    pub fn from_directory(d: &crate::directory::Directory, domain: &str) -> Self {
        let mut s = OktaState::new(domain);
        for u in &d.users {
            let (first, last) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
            let mut profile = json!({
                "login": format!("{}@{domain}", u.username),
                "email": u.email,
                "firstName": first,
                "displayName": u.display_name,
            });
            if !last.is_empty() {
                profile["lastName"] = last.into();
            }
            let status = if u.active { Status::Active } else { Status::Suspended };
            let id = s.add_user(profile, status);
            s.dir_ids.insert(u.id.clone(), id);
        }
        for g in &d.groups {
            let id = s.add_group(&g.name, None);
            s.dir_ids.insert(g.id.clone(), id);
        }
        // Okta has no nested groups: a group's members are everyone reachable through it.
        let mut direct: HashMap<&str, Vec<(&str, bool)>> = HashMap::new();
        for m in &d.memberships {
            direct
                .entry(m.group.as_str())
                .or_default()
                .push((m.member.as_str(), m.member_is_group));
        }
        for g in &d.groups {
            let mut seen = BTreeSet::from([g.id.as_str()]);
            let mut stack = vec![g.id.as_str()];
            let gid = s.dir_ids[&g.id].clone();
            while let Some(h) = stack.pop() {
                for &(m, is_group) in direct.get(h).into_iter().flatten() {
                    if is_group {
                        if seen.insert(m) {
                            stack.push(m);
                        }
                    } else if let Some(uid) = s.dir_ids.get(m).cloned() {
                        s.add_member(&gid, &uid);
                    }
                }
            }
        }
        // The org existed before the test: what an incremental read finds is what changed since.
        let day = chrono::Duration::days(1);
        for u in s.users.values_mut() {
            u.created -= day;
            u.last_updated -= day;
            u.activated = u.activated.map(|t| t - day);
            u.status_changed = u.status_changed.map(|t| t - day);
        }
        for g in s.groups.values_mut() {
            g.created -= day;
            g.last_updated -= day;
            g.last_membership_updated -= day;
        }
        s
    }

    /// The org's login domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The Okta id of the directory user `dir_id` (orgs from [`OktaState::from_directory`]);
    /// panics for an id the directory did not have.
    pub fn user_id(&self, dir_id: &str) -> String {
        match self.dir_ids.get(dir_id) {
            Some(id) if id.starts_with("00u") => id.clone(),
            _ => panic!("the directory had no user {dir_id}"),
        }
    }

    /// The Okta id of the directory group `dir_group_id`; panics for an unknown one.
    pub fn group_id(&self, dir_group_id: &str) -> String {
        match self.dir_ids.get(dir_group_id) {
            Some(id) if id.starts_with("00g") => id.clone(),
            _ => panic!("the directory had no group {dir_group_id}"),
        }
    }

    /// The id of the BUILT_IN `Everyone` group.
    pub fn everyone_id(&self) -> &str {
        &self.everyone
    }

    /// Accepts `Authorization: SSWS {token}`, for an administrator who may read everything
    /// (Read-only Administrator).
    pub fn add_api_token(&mut self, token: &str) {
        self.api_tokens.insert(
            token.to_string(),
            ApiToken {
                allowed: Bucket::ALL.into_iter().collect(),
            },
        );
    }

    /// Accepts an API token whose administrator's role covers only `allowed`: the other
    /// listings answer 403 E0000006.
    pub fn add_restricted_api_token(&mut self, token: &str, allowed: &[Bucket]) {
        self.api_tokens.insert(
            token.to_string(),
            ApiToken {
                allowed: allowed.iter().copied().collect(),
            },
        );
    }

    /// Revokes an API token: requests with it answer 401 E0000011.
    pub fn revoke_api_token(&mut self, token: &str) {
        self.api_tokens.remove(token);
    }

    /// Registers a service app for client credentials with `private_key_jwt`: a public key (RSA
    /// PEM) with its `kid`, and the Okta API scopes granted to it. A second call adds a key and
    /// replaces the scopes.
    pub fn add_service_app(&mut self, client_id: &str, public_key_pem: &str, kid: &str, scopes: &[&str]) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).ok();
        let app = self
            .service_apps
            .entry(client_id.to_string())
            .or_insert_with(|| ServiceApp {
                keys: Vec::new(),
                scopes: BTreeSet::new(),
                dpop: false,
            });
        app.keys.push((kid.to_string(), key));
        app.scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Replaces the scopes granted to a service app (tokens already issued keep theirs).
    pub fn grant_scopes(&mut self, client_id: &str, scopes: &[&str]) {
        if let Some(app) = self.service_apps.get_mut(client_id) {
            app.scopes = scopes.iter().map(|s| s.to_string()).collect();
        }
    }

    /// Turns on "Require Demonstrating Proof of Possession (DPoP) header" for a service app:
    /// token requests without a DPoP proof are refused with `invalid_dpop_proof`.
    pub fn require_dpop(&mut self, client_id: &str) {
        if let Some(app) = self.service_apps.get_mut(client_id) {
            app.dpop = true;
        }
    }

    /// Invalidates every access token issued so far (the next API call with one answers 401).
    pub fn expire_access_tokens(&mut self) {
        self.tokens.clear();
    }

    /// The lifetime of access tokens issued from now on: reported in `expires_in` and enforced.
    pub fn set_token_lifetime(&mut self, secs: u64) {
        self.token_lifetime = secs;
    }

    /// Adds a user with `profile` (a JSON object; `login` required and unique, case-insensitive,
    /// else nothing is added and the existing user's id is returned) and returns its new id.
    /// Custom profile attributes join the user schema, so searches may name them.
    pub fn add_user(&mut self, profile: Value, status: Status) -> String {
        let profile = match profile {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let login = profile
            .get("login")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        if let Some(id) = self.logins.get(&login) {
            return id.clone();
        }
        self.profile_schema.extend(profile.keys().cloned());
        let t = now();
        let id = okta_id("00u");
        let activated = matches!(
            status,
            Status::Active | Status::LockedOut | Status::PasswordExpired | Status::Recovery | Status::Suspended
        )
        .then_some(t);
        self.users.insert(
            id.clone(),
            OktaUser {
                id: id.clone(),
                status,
                profile,
                created: t,
                activated,
                status_changed: activated,
                last_updated: t,
            },
        );
        self.logins.insert(login, id.clone());
        let everyone = self.everyone.clone();
        self.link(&everyone, &id);
        id
    }

    /// Edits a user's profile (`login` stays unique; a clash leaves the old login); sets its
    /// `lastUpdated`.
    pub fn update_user(&mut self, id: &str, f: impl FnOnce(&mut Map<String, Value>)) {
        let Some(u) = self.users.get_mut(id) else {
            return;
        };
        let old = u.login().to_lowercase();
        f(&mut u.profile);
        let new = u.login().to_lowercase();
        if new != old {
            if self.logins.contains_key(&new) {
                u.profile.insert("login".into(), old.clone().into());
            } else {
                self.logins.remove(&old);
                self.logins.insert(new, id.to_string());
            }
        }
        u.last_updated = now();
        let keys: Vec<String> = u.profile.keys().cloned().collect();
        self.profile_schema.extend(keys);
    }

    /// Changes a user's status (sets `lastUpdated` and `statusChanged`). Deactivating
    /// (DEPROVISIONED) unassigns the user from every app, as Okta does; group memberships stay.
    pub fn set_status(&mut self, id: &str, status: Status) {
        let Some(u) = self.users.get_mut(id) else {
            return;
        };
        let t = now();
        if u.activated.is_none() && matches!(status, Status::Active | Status::Activating) {
            u.activated = Some(t);
        }
        u.status = status;
        u.status_changed = Some(t);
        u.last_updated = t;
        if status == Status::Deprovisioned {
            for app in self.apps.values_mut() {
                app.users.remove(id);
            }
        }
    }

    /// Deletes a user for good, with its memberships (each group's `lastMembershipUpdated` is
    /// set). As in Okta, only a DEPROVISIONED user can be deleted: returns false otherwise.
    pub fn delete_user(&mut self, id: &str) -> bool {
        if self.users.get(id).is_none_or(|u| u.status != Status::Deprovisioned) {
            return false;
        }
        for g in self.member_of.get(id).cloned().unwrap_or_default() {
            self.unlink(&g, id);
        }
        self.member_of.remove(id);
        for app in self.apps.values_mut() {
            app.users.remove(id);
        }
        if let Some(u) = self.users.remove(id) {
            self.logins.remove(&u.login().to_lowercase());
        }
        true
    }

    /// Adds an OKTA_GROUP and returns its id.
    pub fn add_group(&mut self, name: &str, description: Option<&str>) -> String {
        self.add_group_of_type(name, description, GroupType::OktaGroup)
    }

    /// Adds a group of the given type and returns its id.
    pub fn add_group_of_type(&mut self, name: &str, description: Option<&str>, group_type: GroupType) -> String {
        let t = now();
        let id = okta_id("00g");
        self.groups.insert(
            id.clone(),
            OktaGroup {
                id: id.clone(),
                name: name.to_string(),
                description: description.map(str::to_string),
                group_type,
                created: t,
                last_updated: t,
                last_membership_updated: t,
            },
        );
        id
    }

    /// Renames a group (sets its `lastUpdated`).
    pub fn rename_group(&mut self, id: &str, name: &str) {
        if let Some(g) = self.groups.get_mut(id) {
            g.name = name.to_string();
            g.last_updated = now();
        }
    }

    /// Deletes a group with its memberships and app assignments (nothing a timestamp shows).
    pub fn delete_group(&mut self, id: &str) {
        if id == self.everyone || self.groups.remove(id).is_none() {
            return;
        }
        for u in self.members.remove(id).unwrap_or_default() {
            if let Some(set) = self.member_of.get_mut(&u) {
                set.remove(id);
            }
        }
        for app in self.apps.values_mut() {
            app.groups.remove(id);
        }
    }

    fn link(&mut self, group: &str, user: &str) -> bool {
        if !self.groups.contains_key(group) || !self.users.contains_key(user) {
            return false;
        }
        if !self
            .members
            .entry(group.to_string())
            .or_default()
            .insert(user.to_string())
        {
            return false;
        }
        self.member_of
            .entry(user.to_string())
            .or_default()
            .insert(group.to_string());
        if let Some(g) = self.groups.get_mut(group) {
            g.last_membership_updated = now();
        }
        true
    }

    fn unlink(&mut self, group: &str, user: &str) -> bool {
        if !self.members.get_mut(group).is_some_and(|m| m.remove(user)) {
            return false;
        }
        if let Some(set) = self.member_of.get_mut(user) {
            set.remove(group);
        }
        if let Some(g) = self.groups.get_mut(group) {
            g.last_membership_updated = now();
        }
        true
    }

    /// Makes a user a member of a group (sets the group's `lastMembershipUpdated`, not the
    /// user's `lastUpdated`). Unknown ids are ignored.
    pub fn add_member(&mut self, group_id: &str, user_id: &str) {
        self.link(group_id, user_id);
    }

    /// Removes a membership (sets the group's `lastMembershipUpdated`).
    pub fn remove_member(&mut self, group_id: &str, user_id: &str) {
        self.unlink(group_id, user_id);
    }

    /// Adds an application (a SAML 2.0 app with this label) and returns its id (`0oa…`).
    pub fn add_app(&mut self, label: &str) -> String {
        let id = okta_id("0oa");
        self.apps.insert(
            id.clone(),
            App {
                id: id.clone(),
                label: label.to_string(),
                created: now(),
                users: BTreeMap::new(),
                groups: BTreeMap::new(),
            },
        );
        id
    }

    /// Assigns a user to an app directly (scope USER). A DEPROVISIONED user cannot be assigned.
    pub fn assign_user(&mut self, app_id: &str, user_id: &str) {
        let assignable = self
            .users
            .get(user_id)
            .is_some_and(|u| u.status != Status::Deprovisioned);
        if let Some(app) = self.apps.get_mut(app_id).filter(|_| assignable) {
            app.users.entry(user_id.to_string()).or_insert_with(now);
        }
    }

    /// Removes a user's direct assignment.
    pub fn unassign_user(&mut self, app_id: &str, user_id: &str) {
        if let Some(app) = self.apps.get_mut(app_id) {
            app.users.remove(user_id);
        }
    }

    /// Assigns a group to an app: its members become app users (scope GROUP).
    pub fn assign_group(&mut self, app_id: &str, group_id: &str) {
        if !self.groups.contains_key(group_id) {
            return;
        }
        if let Some(app) = self.apps.get_mut(app_id) {
            let priority = app.groups.len() as u32;
            app.groups.entry(group_id.to_string()).or_insert((priority, now()));
        }
    }

    /// Removes a group assignment.
    pub fn unassign_group(&mut self, app_id: &str, group_id: &str) {
        if let Some(app) = self.apps.get_mut(app_id) {
            app.groups.remove(group_id);
        }
    }

    /// A user.
    pub fn user(&self, id: &str) -> Option<&OktaUser> {
        self.users.get(id)
    }

    /// The id of the user with this login (case-insensitive).
    pub fn user_id_by_login(&self, login: &str) -> Option<String> {
        self.logins.get(&login.to_lowercase()).cloned()
    }

    /// A group.
    pub fn group(&self, id: &str) -> Option<&OktaGroup> {
        self.groups.get(id)
    }

    /// The ids of a group's members.
    pub fn members(&self, group_id: &str) -> Vec<String> {
        self.members
            .get(group_id)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The users of an app as Okta's provisioning sees them: direct assignments (USER) and the
    /// members of assigned groups (GROUP), DEPROVISIONED users left out; id → scope.
    fn app_users(&self, app: &App) -> BTreeMap<String, (&'static str, DateTime<Utc>)> {
        let mut out = BTreeMap::new();
        for (g, (_, at)) in &app.groups {
            for u in self.members.get(g).into_iter().flatten() {
                out.insert(u.clone(), ("GROUP", *at));
            }
        }
        for (u, at) in &app.users {
            out.insert(u.clone(), ("USER", *at));
        }
        out.retain(|u, _| self.users.get(u).is_some_and(|u| u.status != Status::Deprovisioned));
        out
    }

    /// Limits requests in `scope` to `per_minute` per bucket per minute (Okta's windows: the
    /// calendar minute); over it, 429 E0000047 without `Retry-After`.
    pub fn set_rate_limit(&mut self, scope: RateScope, per_minute: u32) {
        let mut t = self.rates.table();
        match scope {
            RateScope::All => {
                for b in Bucket::ALL {
                    t.limits.insert(b, per_minute);
                }
            }
            RateScope::Only(b) => {
                t.limits.insert(b, per_minute);
            }
        }
    }

    /// Makes the rate-limit windows `length` long instead of Okta's minute (whole seconds, at
    /// least one), so a test that spends a limit waits a second for the reset, not a minute.
    pub fn set_rate_window(&mut self, length: std::time::Duration) {
        let mut t = self.rates.table();
        t.window_secs = length.as_secs().max(1) as i64;
        t.windows.clear();
    }

    /// The next `n` API requests are answered 429 E0000047 (with the rate-limit headers, no
    /// `Retry-After`).
    pub fn throttle_next(&mut self, n: u32) {
        self.faults.add(
            FaultRule::new(kit::Fault::status(429))
                .route(RouteMatch::prefix("/api/v1/"))
                .times(Times::Count(n)),
        );
    }

    /// The next `n` requests whose path and (decoded) query contain `path_contains` are
    /// answered `status` with an Okta error body.
    pub fn fail_next(&mut self, n: u32, path_contains: &str, status: u16) {
        self.faults.fail_next(n, path_contains, kit::Fault::status(status));
    }

    /// The next request whose path and (decoded) query contain `path_contains` is answered 200
    /// with the first half of its body: JSON that does not parse.
    pub fn corrupt_next(&mut self, path_contains: &str) {
        self.faults.corrupt_next(path_contains);
    }

    /// The fault rules applied to this org's requests, tokens included.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The base URL written into links (`Link`, `_links`) and expected as the token endpoint's
    /// audience, e.g. a validating proxy's `http://127.0.0.1:PORT`; by default the request's
    /// `Host`.
    pub fn set_public_url(&mut self, url: &str) {
        self.public_url = Some(url.trim_end_matches('/').to_string());
    }

    /// API requests answered (token requests and throttled requests excluded).
    pub fn api_calls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.contains(" /api/v1/"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Requests answered on one route label ("GET /api/v1/users").
    pub fn calls_to(&self, label: &str) -> u64 {
        self.calls.get(label).copied().unwrap_or(0)
    }

    fn base(&self, headers: &HeaderMap) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
            format!("http://{host}")
        })
    }

    fn issue_token(&mut self, scopes: BTreeSet<String>) -> (String, u64) {
        let token = format!(
            "eyJraWQiOiJzaW0ifQ.{}.{}",
            kit::ids::b64url(&kit::ids::random_bytes(24)),
            kit::ids::b64url(&kit::ids::random_bytes(16))
        );
        let lifetime = self.token_lifetime;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                scopes,
                expires: Instant::now() + std::time::Duration::from_secs(lifetime),
            },
        );
        (token, lifetime)
    }
}

/// A running Okta simulator; stops when dropped.
pub type OktaSim = kit::Sim<OktaState>;

impl OktaSim {
    /// The token endpoint (`/oauth2/v1/token`), the audience of client assertions.
    pub fn token_url(&self) -> String {
        let base = self.lock().public_url.clone().unwrap_or_else(|| self.url());
        format!("{base}/oauth2/v1/token")
    }
}

type Shared = Arc<Mutex<OktaState>>;

impl kit::SimState for OktaState {
    const VENDOR: &'static str = "Okta";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        let (faults, rates) = {
            let s = lock(&state);
            (s.faults.clone(), s.rates.clone())
        };
        let vendor: Arc<dyn Vendor> = Arc::new(Okta);
        Router::new()
            .fallback(routes::dispatch)
            .with_state(state.clone())
            .layer(faults.layer(vendor))
            .layer(KitLayer::new(RateLayer(rates)))
            .layer(kit::observe(move |method, uri, answer| {
                count(&state, method, uri, answer)
            }))
    }
}

use kit::sim::lock;

/// Counts each API request in its bucket's minute and writes the rate-limit headers on every
/// answer, whoever gave it; refuses the request with 429 E0000047 when the bucket is spent.
#[derive(Clone, Debug)]
struct RateLayer(RateLimits);

impl Middleware for RateLayer {
    async fn run(self, req: Request, next: Next) -> Response {
        let Some(bucket) = Bucket::of(req.uri().path()) else {
            return with_date(next.run(req).await);
        };
        let (headers, over) = self.0.take(bucket, Utc::now());
        let mut answer = if over {
            let mut r = okta_error(StatusCode::TOO_MANY_REQUESTS, "E0000047", RATE_LIMITED, &[]);
            r.extensions_mut().insert(Throttled);
            r
        } else {
            next.run(req).await
        };
        let remaining = if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            0
        } else {
            headers.remaining
        };
        let h = answer.headers_mut();
        h.insert("x-rate-limit-limit", HeaderValue::from(headers.limit));
        h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
        h.insert("x-rate-limit-reset", HeaderValue::from(headers.reset));
        with_date(answer)
    }
}

/// Sets `Date` (the server's clock, which clients base incremental reads on) when missing.
fn with_date(mut r: Response) -> Response {
    if !r.headers().contains_key("date")
        && let Ok(v) = HeaderValue::from_str(&Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        r.headers_mut().insert("date", v);
    }
    r
}

const RATE_LIMITED: &str = "API call exceeded rate limit due to too many requests.";

/// Keeps `calls`, `requests` and `throttled`, whoever answered.
fn count(state: &Shared, method: &Method, uri: &Uri, answer: &Response) {
    let outcome = Outcome::of(answer);
    let mut s = lock(state);
    if outcome.is_throttling() || answer.status() == StatusCode::TOO_MANY_REQUESTS {
        s.throttled += 1;
        return;
    }
    let label = routes::label(uri.path());
    *s.calls.entry(format!("{method} {label}")).or_default() += 1;
    if uri.path().starts_with("/api/") {
        if s.requests.len() == REQUEST_LOG {
            s.requests.pop_front();
        }
        s.requests.push_back(format!("{method} {}", decoded_target(uri)));
    }
}

/// An Okta error answer.
fn okta_error(status: StatusCode, code: &str, summary: &str, causes: &[String]) -> Response {
    let body = json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": okta_id("oae"),
        "errorCauses": causes.iter().map(|c| json!({"errorSummary": c})).collect::<Vec<_>>(),
    });
    kit::errors::json(status, OKTA_JSON, &body)
}

/// `WWW-Authenticate` for a bearer token refused with `error` (`invalid_token`,
/// `insufficient_scope`).
fn bearer_challenge(r: &mut Response, base: &str, error: &str, description: &str, scope: Option<&str>) {
    let scope = scope.map(|s| format!(", scope=\"{s}\"")).unwrap_or_default();
    let v = format!(
        "Bearer authorization_uri=\"{base}/oauth2/v1/authorize\", realm=\"IdP\"{scope}, error=\"{error}\", error_description=\"{description}\""
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert("www-authenticate", v);
    }
}

/// Okta's answers for the kit.
struct Okta;

impl Vendor for Okta {
    fn error(&self, req: &Parts, status: StatusCode) -> Response {
        if req.uri.path().starts_with("/oauth2/") {
            let error = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                "temporarily_unavailable"
            } else {
                "invalid_request"
            };
            return token::oauth_error(status, error, "Injected fault.");
        }
        let (code, summary) = match status.as_u16() {
            400 => ("E0000001", "Api validation failed: injected fault"),
            401 => ("E0000011", "Invalid token provided"),
            403 => ("E0000006", "You do not have permission to perform the requested action"),
            404 => ("E0000007", "Not found: Resource not found: injected (Fault)"),
            405 => ("E0000022", "The endpoint does not support the provided HTTP method"),
            429 => ("E0000047", RATE_LIMITED),
            _ => ("E0000009", "Internal Server Error"),
        };
        okta_error(status, code, summary, &[])
    }

    fn expired_token(&self, req: &Parts) -> Response {
        let mut r = okta_error(StatusCode::UNAUTHORIZED, "E0000011", "Invalid token provided", &[]);
        let base = format!(
            "http://{}",
            req.headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("127.0.0.1")
        );
        bearer_challenge(&mut r, &base, "invalid_token", "The access token is invalid.", None);
        r
    }
}

impl OktaState {
    fn answer_json(&self, body: &Value) -> Response {
        let mut r = (StatusCode::OK, body.to_string()).into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(OKTA_JSON));
        r
    }
}
