//! A Bitbucket Data Center simulator: the admin REST endpoints Roster uses, with Bitbucket's
//! paging (`start`/`limit`, default 25, cap 1000, `isLastPage`, `nextPageStart`), error bodies
//! (`{"errors":[{context, message, exceptionName}]}`), `application/json;charset=UTF-8`, 409 on
//! duplicates, 403 when a grant would exceed the licence, read-only users of external directories,
//! optional rate limiting (token bucket → 429 + Retry-After + `X-RateLimit-*`) and the kit's
//! faults ([`BitbucketSim::faults`]).
//!
//! Exception names seen on live servers (vendor-apis.md §2.7): NoSuchUserException,
//! IncorrectPasswordAuthenticationException, AuthorisationException, IntegrityException,
//! ArgumentValidationException. The names for duplicate groups/users, unknown groups, the licence
//! limit and read-only directories follow the same `com.atlassian.bitbucket.*` pattern but are
//! not confirmed against a live server.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kit::{
    self, FaultRule, Faults, Methods, Offset, Outcome, PageFault, RateLimited, RouteMatch, Throttle, Times, Vendor,
};

const JSON: &str = "application/json;charset=UTF-8";
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 25;
/// Where the REST API lives; rate limits, call counts and legacy faults apply below it only.
const API_PREFIX: &str = "/rest/api/";

/// Global permissions, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// May log in; counts against the licence.
    LicensedUser,
    /// May create projects.
    ProjectCreate,
    /// Administrator.
    Admin,
    /// System administrator.
    SysAdmin,
}

impl Permission {
    /// The REST name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::LicensedUser => "LICENSED_USER",
            Permission::ProjectCreate => "PROJECT_CREATE",
            Permission::Admin => "ADMIN",
            Permission::SysAdmin => "SYS_ADMIN",
        }
    }
    fn parse(s: &str) -> Option<Permission> {
        Some(match s {
            "LICENSED_USER" => Permission::LicensedUser,
            "PROJECT_CREATE" => Permission::ProjectCreate,
            "ADMIN" => Permission::Admin,
            "SYS_ADMIN" => Permission::SysAdmin,
            _ => return None,
        })
    }
}

/// A user account.
#[derive(Debug, Clone, PartialEq)]
pub struct SimUser {
    /// Numeric id.
    pub id: u64,
    /// Login name (unique, case-insensitive).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Email address.
    pub email: String,
    /// "Bitbucket Internal Directory" or an external directory's name.
    pub directory: String,
    /// False for users of read-only external directories.
    pub mutable: bool,
    /// The last sign-in (ms since the epoch); `None`: never signed in.
    pub last_authentication: Option<i64>,
}

/// A fault injected into the next matching requests: the original, status-only form of a
/// [`kit::FaultRule`], kept for existing tests. New tests add rules to
/// [`BitbucketSim::faults`], which can also reset, hang, truncate or break paging.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Applies to requests whose method is this (or any method when `None`).
    pub method: Option<Method>,
    /// Applies to requests whose path (or decoded query) contains this.
    pub path_contains: String,
    /// Status to answer with.
    pub status: u16,
    /// How many more requests to fail.
    pub remaining: u32,
}

impl From<Fault> for FaultRule {
    fn from(f: Fault) -> FaultRule {
        FaultRule {
            fault: kit::Fault::status(f.status),
            route: RouteMatch::Contains(f.path_contains),
            methods: f.method.map_or(Methods::Any, Methods::Only),
            skip_first: 0,
            times: Times::Count(f.remaining),
        }
    }
}

/// A change an administrator makes by hand in Bitbucket's admin pages, outside Roster: what
/// drift detection must notice. Applied straight to the state (no request counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandEdit {
    /// Adds an existing account to a group.
    AddMember {
        /// The group.
        group: String,
        /// The account.
        user: String,
    },
    /// Removes an account from a group.
    RemoveMember {
        /// The group.
        group: String,
        /// The account.
        user: String,
    },
    /// Renames an account (its memberships and permissions follow it, as in Bitbucket).
    RenameUser {
        /// The current name.
        from: String,
        /// The new name.
        to: String,
    },
    /// Deletes a group with its memberships and permission.
    DeleteGroup {
        /// The group.
        group: String,
    },
}

/// The whole simulated instance.
#[derive(Debug)]
pub struct BbState {
    users: BTreeMap<String, SimUser>,
    groups: BTreeMap<String, BTreeSet<String>>,
    group_perms: BTreeMap<String, Permission>,
    user_perms: BTreeMap<String, Permission>,
    /// Deleted usernames that may still be erased.
    deleted: BTreeSet<String>,
    next_id: u64,
    /// `None` = unlimited.
    pub max_users: Option<u32>,
    admin: (String, String),
    token: Option<String>,
    /// Shared with the router's layers, so tests can change them while the simulator runs.
    throttle: Throttle,
    faults: Faults,
    /// Requests answered, by "METHOD /path-without-prefix" (rate-limited and faulted ones too).
    pub calls: BTreeMap<String, u64>,
    /// Requests that changed state (2xx writes).
    pub writes: u64,
    /// Requests answered 429 or 503 by the rate limit or an injected fault.
    pub throttled: u64,
}

impl BbState {
    /// An instance with one system administrator (`admin`/`password`) and an unlimited licence.
    pub fn new() -> Self {
        let mut s = BbState {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            group_perms: BTreeMap::new(),
            user_perms: BTreeMap::new(),
            deleted: BTreeSet::new(),
            next_id: 1,
            max_users: None,
            admin: ("admin".into(), "password".into()),
            token: None,
            throttle: Throttle::new(RouteMatch::prefix(API_PREFIX)),
            faults: Faults::new(),
            calls: BTreeMap::new(),
            writes: 0,
            throttled: 0,
        };
        s.add_user("admin", "Administrator", "admin@example.com", true);
        s.user_perms.insert("admin".into(), Permission::SysAdmin);
        s
    }

    /// Accepts `Authorization: Bearer <token>` too.
    pub fn set_token(&mut self, token: &str) {
        self.token = Some(token.to_string());
    }

    /// Limits requests to `per_second` with a burst of `capacity` (Bitbucket's token bucket).
    pub fn set_rate_limit(&mut self, per_second: f64, capacity: u32) {
        self.throttle.limit(per_second, capacity);
    }

    /// Lifts the rate limit.
    pub fn clear_rate_limit(&mut self) {
        self.throttle.unlimited();
    }

    /// Fails the next matching requests (the original API; see [`BbState::faults`]).
    pub fn inject(&mut self, fault: Fault) {
        self.faults.add(fault.into());
    }

    /// The fault rules applied to this instance's requests.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Adds a user directly (no request counted).
    pub fn add_user(&mut self, name: &str, display_name: &str, email: &str, internal: bool) {
        let id = self.next_id;
        self.next_id += 1;
        self.users.insert(
            name.to_lowercase(),
            SimUser {
                id,
                name: name.to_string(),
                display_name: display_name.to_string(),
                email: email.to_string(),
                directory: if internal {
                    "Bitbucket Internal Directory".into()
                } else {
                    "Delegated LDAP".into()
                },
                mutable: internal,
                last_authentication: None,
            },
        );
    }

    /// Adds a group with members directly.
    pub fn add_group(&mut self, name: &str, members: &[&str]) {
        self.groups
            .insert(name.to_string(), members.iter().map(|m| m.to_lowercase()).collect());
    }

    /// Removes a member from a group directly (an administrator's change in Bitbucket).
    pub fn remove_member(&mut self, group: &str, user: &str) {
        if let Some(m) = self.groups.get_mut(group) {
            m.remove(&user.to_lowercase());
        }
    }

    /// Makes a change by hand, as an administrator would in Bitbucket's admin pages. Panics when
    /// the account or group named does not exist: a test that edits nothing would prove nothing.
    pub fn hand_edit(&mut self, edit: HandEdit) {
        match edit {
            HandEdit::AddMember { group, user } => {
                let user = user.to_lowercase();
                assert!(self.users.contains_key(&user), "hand edit: no account {user}");
                self.groups
                    .get_mut(&group)
                    .unwrap_or_else(|| panic!("hand edit: no group {group}"))
                    .insert(user);
            }
            HandEdit::RemoveMember { group, user } => {
                let removed = self
                    .groups
                    .get_mut(&group)
                    .is_some_and(|m| m.remove(&user.to_lowercase()));
                assert!(removed, "hand edit: {user} is not in {group}");
            }
            HandEdit::RenameUser { from, to } => {
                let (from, to_lc) = (from.to_lowercase(), to.to_lowercase());
                let mut user = self
                    .users
                    .remove(&from)
                    .unwrap_or_else(|| panic!("hand edit: no account {from}"));
                user.name = to;
                self.users.insert(to_lc.clone(), user);
                for members in self.groups.values_mut() {
                    if members.remove(&from) {
                        members.insert(to_lc.clone());
                    }
                }
                if let Some(p) = self.user_perms.remove(&from) {
                    self.user_perms.insert(to_lc, p);
                }
            }
            HandEdit::DeleteGroup { group } => {
                assert!(self.groups.remove(&group).is_some(), "hand edit: no group {group}");
                self.group_perms.remove(&group);
            }
        }
    }

    /// Records that `user` signed in at `at_ms` (ms since the epoch), as Bitbucket does on each
    /// authentication: its `lastAuthenticationTimestamp`.
    pub fn sign_in(&mut self, user: &str, at_ms: i64) {
        let u = self
            .users
            .get_mut(&user.to_lowercase())
            .unwrap_or_else(|| panic!("sign in: no account {user}"));
        u.last_authentication = Some(at_ms);
    }

    /// Grants a global permission to a group directly.
    pub fn grant_group(&mut self, group: &str, p: Permission) {
        self.group_perms.insert(group.to_string(), p);
    }

    /// Every user, by lower-case name.
    pub fn users(&self) -> &BTreeMap<String, SimUser> {
        &self.users
    }

    /// Every group with its members (lower-case names).
    pub fn groups(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.groups
    }

    /// A user's global permission granted directly.
    pub fn user_permission(&self, name: &str) -> Option<Permission> {
        self.user_perms.get(&name.to_lowercase()).copied()
    }

    /// Users who may log in (a permission directly or through a group).
    pub fn licensed_users(&self) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = self.user_perms.keys().cloned().collect();
        for g in self.group_perms.keys() {
            if let Some(members) = self.groups.get(g) {
                set.extend(members.iter().cloned());
            }
        }
        set.retain(|u| self.users.contains_key(u));
        set
    }

    fn over_licence_with(&self, extra: &BTreeSet<String>) -> Option<String> {
        let max = self.max_users?;
        let mut after = self.licensed_users();
        after.extend(extra.iter().cloned());
        (after.len() as u32 > max).then(|| {
            format!(
                "This action would exceed the maximum number of licensed users ({max}); {} would be licensed",
                after.len()
            )
        })
    }
}

impl Default for BbState {
    fn default() -> Self {
        Self::new()
    }
}

/// A running Bitbucket simulator; stops when dropped.
pub type BitbucketSim = kit::Sim<BbState>;

type Shared = Arc<Mutex<BbState>>;

impl kit::SimState for BbState {
    const VENDOR: &'static str = "Bitbucket";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        router(state)
    }
}

use kit::sim::lock;

/// The axum router (paths under `/rest/api/1.0` and `/rest/api/latest`), with the state's rate
/// limit and fault rules applied.
fn router(state: Shared) -> Router {
    let (faults, throttle) = {
        let s = lock(&state);
        (s.faults.clone(), s.throttle.clone())
    };
    let vendor: Arc<dyn Vendor> = Arc::new(Bitbucket);
    // The last layer added is the outermost: a request is counted, then rate-limited, then
    // faulted, as Bitbucket meters requests before it serves them.
    Router::new()
        .route("/rest/api/{version}/{*rest}", any(dispatch))
        .route("/status", get(|| async { "ok" }))
        .with_state(state.clone())
        .layer(faults.layer(vendor.clone()))
        .layer(throttle.layer(vendor))
        .layer(kit::observe(move |method, uri, answer| {
            count(&state, method, uri, answer)
        }))
}

/// The path below `/rest/api/{version}`: `/admin/users` for `/rest/api/1.0/admin/users`.
fn api_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(API_PREFIX)?;
    let below = &rest[rest.find('/')?..];
    (below.len() > 1).then_some(below)
}

/// Keeps `calls` and `throttled`, whoever answered.
fn count(state: &Shared, method: &Method, uri: &Uri, answer: &Response) {
    let Some(path) = api_path(uri.path()) else {
        return;
    };
    let mut s = lock(state);
    *s.calls.entry(format!("{method} {path}")).or_default() += 1;
    if Outcome::of(answer).is_throttling() {
        s.throttled += 1;
    }
}

/// Bitbucket's answers for the kit.
struct Bitbucket;

impl Vendor for Bitbucket {
    fn error(&self, _: &Parts, status: StatusCode) -> Response {
        match status {
            StatusCode::UNAUTHORIZED => unauthorised(),
            StatusCode::FORBIDDEN => error(
                status,
                "com.atlassian.bitbucket.AuthorisationException",
                "You are not permitted to access this resource",
            ),
            StatusCode::TOO_MANY_REQUESTS => rate_limit_body(),
            _ => error(status, "com.atlassian.bitbucket.ServiceException", "Injected fault"),
        }
    }

    /// Bitbucket does not tell an expired personal access token from a wrong one.
    fn expired_token(&self, _: &Parts) -> Response {
        unauthorised()
    }

    fn rate_limited(&self, _: &Parts, limit: &RateLimited) -> Response {
        let mut r = rate_limit_body();
        let h = r.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(limit.capacity));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert(
            "x-ratelimit-fillrate",
            HeaderValue::from((limit.per_second as u64).max(1)),
        );
        h.insert("x-ratelimit-interval-seconds", HeaderValue::from_static("1"));
        r
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    kit::errors::json(status, JSON, &body)
}

fn error(status: StatusCode, exception: &str, message: impl Into<String>) -> Response {
    reply(
        status,
        json!({"errors": [{"context": null, "message": message.into(), "exceptionName": exception}]}),
    )
}

fn unauthorised() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
        "Authentication failed. Please check your credentials and try again.",
    )
}

/// The 429 body; Bitbucket names no exception for it.
fn rate_limit_body() -> Response {
    reply(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"errors": [{"context": null, "message": "You have been rate limited.", "exceptionName": null}]}),
    )
}

fn no_user(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "com.atlassian.bitbucket.user.NoSuchUserException",
        format!("User {name} does not exist."),
    )
}

fn no_group(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "com.atlassian.bitbucket.user.NoSuchGroupException",
        format!("Group {name} does not exist."),
    )
}

fn read_only(name: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "com.atlassian.bitbucket.user.UserReadOnlyException",
        format!("User {name} belongs to a read-only directory and can only be modified in that directory."),
    )
}

fn over_licence(msg: String) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "com.atlassian.bitbucket.license.LicenseLimitExceededException",
        msg,
    )
}

fn bad_request(msg: impl Into<String>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "com.atlassian.bitbucket.validation.ArgumentValidationException",
        msg,
    )
}

/// A 200 without a body, as Bitbucket answers add-users, add-groups and remove-group.
fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

/// `RestDetailedUser`, serialised straight from the state (listings render thousands).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct UserOut<'a> {
    name: &'a str,
    email_address: &'a str,
    active: bool,
    display_name: &'a str,
    id: u64,
    slug: String,
    #[serde(rename = "type")]
    kind: &'static str,
    directory_name: &'a str,
    deletable: bool,
    mutable_details: bool,
    mutable_groups: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_authentication_timestamp: Option<i64>,
    links: Value,
}

fn user_json(u: &SimUser) -> UserOut<'_> {
    let slug = u.name.to_lowercase();
    UserOut {
        name: &u.name,
        email_address: &u.email,
        active: true,
        display_name: &u.display_name,
        id: u.id,
        links: json!({"self": [{"href": format!("http://bitbucket.example/users/{slug}")}]}),
        slug,
        kind: "NORMAL",
        directory_name: &u.directory,
        deletable: true,
        mutable_details: u.mutable,
        mutable_groups: u.mutable,
        last_authentication_timestamp: u.last_authentication,
    }
}

fn group_json(name: &str) -> Value {
    json!({"name": name, "deletable": true})
}

/// One page of a listing. `items` is lazy and `render` runs for the page's items only, so a
/// page costs its own size, not the listing's.
fn page<T, S: serde::Serialize>(
    q: &HashMap<String, String>,
    items: impl Iterator<Item = T>,
    render: impl Fn(T) -> S,
    fault: &PageFault,
) -> Response {
    let offset = Offset::new(
        q.get("start").map(String::as_str),
        q.get("limit").map(String::as_str),
        DEFAULT_LIMIT,
        MAX_LIMIT,
    );
    let page = offset.page(items, fault);
    let values: Vec<S> = page.items.into_iter().map(render).collect();
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PageOut<'a, S> {
        size: usize,
        limit: usize,
        is_last_page: bool,
        values: Vec<S>,
        start: usize,
        filter: Option<&'a String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_page_start: Option<usize>,
    }
    let body = PageOut {
        size: values.len(),
        limit: offset.limit(),
        is_last_page: page.next.is_none(),
        values,
        start: offset.start(),
        filter: q.get("filter"),
        next_page_start: page.next,
    };
    (
        StatusCode::OK,
        [("content-type", JSON)],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}

fn matches_filter(q: &HashMap<String, String>, fields: &[&str]) -> bool {
    match q.get("filter") {
        Some(f) if !f.is_empty() => fields.iter().any(|x| x.to_lowercase().contains(&f.to_lowercase())),
        _ => true,
    }
}

fn authorised(s: &BbState, headers: &HeaderMap) -> bool {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return s.token.as_deref() == Some(token);
    }
    let Some(b64) = auth.strip_prefix("Basic ") else {
        return false;
    };
    use base64::Engine as _;
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    let raw = String::from_utf8_lossy(&raw);
    let (u, p) = raw.split_once(':').unwrap_or((&raw, ""));
    (u == s.admin.0 && p == s.admin.1) || s.token.as_deref() == Some(p)
}

#[derive(Deserialize)]
struct UserUpdate {
    name: String,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct Rename {
    name: String,
    #[serde(rename = "newName")]
    new_name: String,
}

#[derive(Deserialize)]
struct AddGroups {
    user: String,
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct AddUsers {
    group: String,
    users: Vec<String>,
}

#[derive(Deserialize)]
struct Picker {
    context: String,
    #[serde(rename = "itemName")]
    item_name: String,
}

#[allow(clippy::result_large_err)] // the error is the HTTP answer itself, returned at once
fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("The request body is invalid: {e}")))
}

fn query_all(uri: &Uri, key: &str) -> Vec<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

async fn dispatch(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    fault: PageFault,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(path) = api_path(uri.path()) else {
        return not_simulated(&method, uri.path());
    };
    // Parsed by hand: form decoding never fails, so no request gets axum's plain-text 400.
    let q: HashMap<String, String> = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut s = lock(&state);
    if !authorised(&s, &headers) {
        return unauthorised();
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return bad_request(format!("The request body could not be read: {e}")),
    };
    let resp = handle(&mut s, &method, path, &uri, &q, &body, &fault);
    if method != Method::GET && resp.status().is_success() {
        s.writes += 1;
    }
    resp
}

fn not_simulated(method: &Method, path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "com.atlassian.bitbucket.NoSuchEntityException",
        format!("{method} {path} is not simulated"),
    )
}

fn handle(
    s: &mut BbState,
    method: &Method,
    path: &str,
    uri: &Uri,
    q: &HashMap<String, String>,
    body: &Bytes,
    fault: &PageFault,
) -> Response {
    let name_param = || q.get("name").cloned().unwrap_or_default();
    match (method.as_str(), path) {
        ("GET", "/admin/users") => {
            let values = s
                .users
                .values()
                .filter(|u| matches_filter(q, &[&u.name, &u.display_name, &u.email]));
            page(q, values, user_json, fault)
        }
        ("POST", "/admin/users") => {
            let (Some(name), Some(display), Some(email)) = (q.get("name"), q.get("displayName"), q.get("emailAddress"))
            else {
                return bad_request("name, displayName and emailAddress are required");
            };
            let notify = q.get("notify").is_some_and(|v| v == "true");
            if q.get("password").is_none() && !notify {
                return bad_request("A password is required unless notify is set");
            }
            if name.trim().is_empty() {
                return bad_request("The username must not be blank.");
            }
            if s.users.contains_key(&name.to_lowercase()) {
                return error(
                    StatusCode::CONFLICT,
                    "com.atlassian.bitbucket.user.DuplicateUserException",
                    format!("A user with name '{name}' already exists."),
                );
            }
            s.deleted.remove(&name.to_lowercase());
            s.add_user(name, display, email, true);
            StatusCode::NO_CONTENT.into_response()
        }
        ("PUT", "/admin/users") => {
            let upd: UserUpdate = match parse_body(body) {
                Ok(u) => u,
                Err(r) => return r,
            };
            let Some(u) = s.users.get_mut(&upd.name.to_lowercase()) else {
                return no_user(&upd.name);
            };
            if !u.mutable {
                return read_only(&upd.name);
            }
            if let Some(d) = upd.display_name {
                u.display_name = d;
            }
            if let Some(e) = upd.email {
                u.email = e;
            }
            reply(StatusCode::OK, json!(user_json(u)))
        }
        ("DELETE", "/admin/users") => {
            let name = name_param();
            let key = name.to_lowercase();
            if key == s.admin.0 {
                return error(
                    StatusCode::CONFLICT,
                    "com.atlassian.bitbucket.IntegrityException",
                    "You cannot delete yourself.",
                );
            }
            let Some(u) = s.users.remove(&key) else {
                return no_user(&name);
            };
            for members in s.groups.values_mut() {
                members.remove(&key);
            }
            s.user_perms.remove(&key);
            s.deleted.insert(key);
            reply(StatusCode::OK, json!(user_json(&u)))
        }
        ("POST", "/admin/users/rename") => {
            let r: Rename = match parse_body(body) {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            let (old, new) = (r.name.to_lowercase(), r.new_name.to_lowercase());
            let Some(u) = s.users.get(&old) else {
                return no_user(&r.name);
            };
            if !u.mutable {
                return read_only(&r.name);
            }
            if old != new && s.users.contains_key(&new) {
                return error(
                    StatusCode::CONFLICT,
                    "com.atlassian.bitbucket.user.DuplicateUserException",
                    format!("A user with name '{}' already exists.", r.new_name),
                );
            }
            let Some(mut u) = s.users.remove(&old) else {
                return no_user(&r.name);
            };
            u.name = r.new_name.clone();
            for members in s.groups.values_mut() {
                if members.remove(&old) {
                    members.insert(new.clone());
                }
            }
            if let Some(p) = s.user_perms.remove(&old) {
                s.user_perms.insert(new.clone(), p);
            }
            let out = json!(user_json(&u));
            s.users.insert(new, u);
            reply(StatusCode::OK, out)
        }
        ("POST", "/admin/users/add-groups") => {
            let a: AddGroups = match parse_body(body) {
                Ok(a) => a,
                Err(r) => return r,
            };
            let key = a.user.to_lowercase();
            let Some(u) = s.users.get(&key) else {
                return no_user(&a.user);
            };
            if !u.mutable {
                return read_only(&a.user);
            }
            if let Some(g) = a.groups.iter().find(|g| !s.groups.contains_key(*g)) {
                return no_group(g);
            }
            if a.groups.iter().any(|g| s.group_perms.contains_key(g))
                && let Some(msg) = s.over_licence_with(&BTreeSet::from([key.clone()]))
            {
                return over_licence(msg);
            }
            for g in &a.groups {
                if let Some(members) = s.groups.get_mut(g) {
                    members.insert(key.clone());
                }
            }
            empty_ok()
        }
        ("POST", "/admin/groups/add-users") => {
            let a: AddUsers = match parse_body(body) {
                Ok(a) => a,
                Err(r) => return r,
            };
            if !s.groups.contains_key(&a.group) {
                return no_group(&a.group);
            }
            let keys: BTreeSet<String> = a.users.iter().map(|u| u.to_lowercase()).collect();
            if let Some(missing) = a.users.iter().find(|u| !s.users.contains_key(&u.to_lowercase())) {
                return no_user(missing);
            }
            if let Some(ro) = a
                .users
                .iter()
                .find(|u| s.users.get(&u.to_lowercase()).is_some_and(|u| !u.mutable))
            {
                return read_only(ro);
            }
            if s.group_perms.contains_key(&a.group)
                && let Some(msg) = s.over_licence_with(&keys)
            {
                return over_licence(msg);
            }
            if let Some(members) = s.groups.get_mut(&a.group) {
                members.extend(keys);
            }
            empty_ok()
        }
        ("POST", "/admin/users/remove-group") | ("POST", "/admin/groups/remove-user") => {
            let p: Picker = match parse_body(body) {
                Ok(p) => p,
                Err(r) => return r,
            };
            let (user, group) = if path == "/admin/users/remove-group" {
                (p.context, p.item_name)
            } else {
                (p.item_name, p.context)
            };
            let key = user.to_lowercase();
            let Some(u) = s.users.get(&key) else {
                return no_user(&user);
            };
            if !u.mutable {
                return read_only(&user);
            }
            let Some(members) = s.groups.get_mut(&group) else {
                return no_group(&group);
            };
            members.remove(&key);
            empty_ok()
        }
        ("GET", "/admin/users/more-members") => {
            let user = q.get("context").cloned().unwrap_or_default().to_lowercase();
            if !s.users.contains_key(&user) {
                return no_user(&user);
            }
            let values = s
                .groups
                .iter()
                .filter(|(g, m)| m.contains(&user) && matches_filter(q, &[g]));
            page(q, values, |(g, _)| group_json(g), fault)
        }
        ("GET", "/admin/users/erasure") | ("POST", "/admin/users/erasure") => {
            let name = name_param();
            let key = name.to_lowercase();
            if s.users.contains_key(&key) {
                return error(
                    StatusCode::CONFLICT,
                    "com.atlassian.bitbucket.IntegrityException",
                    format!("Cannot erase the username of a not deleted user {name}."),
                );
            }
            if !s.deleted.contains(&key) {
                return no_user(&name);
            }
            if method == Method::GET {
                return StatusCode::NO_CONTENT.into_response();
            }
            s.deleted.remove(&key);
            let id = s.next_id;
            s.next_id += 1;
            reply(StatusCode::OK, json!({"newIdentifier": format!("user-{id:x}")}))
        }
        ("GET", "/admin/groups") => {
            let values = s.groups.keys().filter(|g| matches_filter(q, &[g]));
            page(q, values, |g| group_json(g), fault)
        }
        ("POST", "/admin/groups") => {
            let name = name_param();
            if name.trim().is_empty() {
                return bad_request("The group name must not be blank.");
            }
            if s.groups.contains_key(&name) {
                return error(
                    StatusCode::CONFLICT,
                    "com.atlassian.bitbucket.user.DuplicateGroupException",
                    format!("The group '{name}' already exists."),
                );
            }
            s.groups.insert(name.clone(), BTreeSet::new());
            reply(StatusCode::OK, group_json(&name))
        }
        ("DELETE", "/admin/groups") => {
            let name = name_param();
            if s.groups.remove(&name).is_none() {
                return no_group(&name);
            }
            s.group_perms.remove(&name);
            reply(StatusCode::OK, group_json(&name))
        }
        ("GET", "/admin/groups/more-members") => {
            let group = q.get("context").cloned().unwrap_or_default();
            let Some(members) = s.groups.get(&group) else {
                return no_group(&group);
            };
            let values = members
                .iter()
                .filter_map(|m| s.users.get(m))
                .filter(|u| matches_filter(q, &[&u.name, &u.display_name, &u.email]));
            page(q, values, user_json, fault)
        }
        ("GET", "/admin/permissions/groups") => {
            let values = s.group_perms.iter().filter(|(g, _)| matches_filter(q, &[g]));
            page(
                q,
                values,
                |(g, p)| json!({"group": group_json(g), "permission": p.as_str()}),
                fault,
            )
        }
        ("GET", "/admin/permissions/users") => {
            let values = s
                .user_perms
                .iter()
                .filter_map(|(u, p)| s.users.get(u).map(|u| (u, p)))
                .filter(|(u, _)| matches_filter(q, &[&u.name]));
            page(
                q,
                values,
                |(u, p)| json!({"user": user_json(u), "permission": p.as_str()}),
                fault,
            )
        }
        ("PUT", "/admin/permissions/groups") | ("PUT", "/admin/permissions/users") => {
            let Some(p) = q.get("permission").and_then(|p| Permission::parse(p)) else {
                return bad_request("permission must be one of LICENSED_USER, PROJECT_CREATE, ADMIN, SYS_ADMIN");
            };
            let names = query_all(uri, "name");
            if names.is_empty() {
                return bad_request("at least one name is required");
            }
            if path.ends_with("groups") {
                if let Some(g) = names.iter().find(|g| !s.groups.contains_key(*g)) {
                    return no_group(g);
                }
                let extra: BTreeSet<String> = names
                    .iter()
                    .filter_map(|g| s.groups.get(g))
                    .flatten()
                    .cloned()
                    .collect();
                if let Some(msg) = s.over_licence_with(&extra) {
                    return over_licence(msg);
                }
                for g in names {
                    s.group_perms.insert(g, p);
                }
            } else {
                if let Some(u) = names.iter().find(|u| !s.users.contains_key(&u.to_lowercase())) {
                    return no_user(u);
                }
                let extra: BTreeSet<String> = names.iter().map(|u| u.to_lowercase()).collect();
                if let Some(msg) = s.over_licence_with(&extra) {
                    return over_licence(msg);
                }
                for u in extra {
                    s.user_perms.insert(u, p);
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("DELETE", "/admin/permissions/groups") => {
            let name = name_param();
            if !s.groups.contains_key(&name) {
                return no_group(&name);
            }
            s.group_perms.remove(&name);
            StatusCode::NO_CONTENT.into_response()
        }
        ("DELETE", "/admin/permissions/users") => {
            let name = name_param();
            if !s.users.contains_key(&name.to_lowercase()) {
                return no_user(&name);
            }
            s.user_perms.remove(&name.to_lowercase());
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", "/admin/license") => {
            let current = s.licensed_users().len();
            reply(
                StatusCode::OK,
                json!({
                    "creationDate": 1_700_000_000_000u64, "purchaseDate": 1_700_000_000_000u64,
                    "expiryDate": 4_102_444_800_000u64, "maintenanceExpiryDate": 4_102_444_800_000u64,
                    "gracePeriodEndDate": 4_102_444_800_000u64, "daysBeforeExpiry": 9999,
                    "maximumNumberOfUsers": s.max_users.map_or(-1, i64::from), "unlimitedNumberOfUsers": s.max_users.is_none(),
                    "serverId": "SIM-0000-0000-0000", "supportEntitlementNumber": "SEN-SIM",
                    "status": {"currentNumberOfUsers": current, "serverId": "SIM-0000-0000-0000"},
                }),
            )
        }
        ("GET", "/admin/user-directories") => reply(
            StatusCode::OK,
            json!([
                {"name": "Bitbucket Internal Directory", "type": "INTERNAL", "active": true, "description": "Bitbucket Internal Directory"},
                {"name": "Delegated LDAP", "type": "DELEGATING", "active": true, "description": "Read-only external directory"},
            ]),
        ),
        _ => not_simulated(method, path),
    }
}

/// Waits until the simulator answers, for callers that start it elsewhere.
pub async fn wait_ready(url: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if reqwest::get(format!("{url}/status"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
