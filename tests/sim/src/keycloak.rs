//! A Keycloak simulator: one realm's OpenID Connect token endpoint (client credentials of a
//! confidential client with a service account) and the Admin REST API reads Roster's `keycloak`
//! connector makes (users, top-level groups, sub-groups, group members, counts), answered as
//! Keycloak answers them, with the kit's faults and rate limit ([`KeycloakState::faults`],
//! [`KeycloakState::throttle`]).
//!
//! What it follows: the Keycloak 23.0.0 Admin REST API document
//! (`shared/specs/keycloak-23.0.0-admin-openapi.json`, vendor-apis.md §7) for paths, parameters
//! and representations; Keycloak's behaviour for what the document leaves out:
//!
//! - `first`/`max` paging with no next link and no total (`/users/count`, `/groups/count` give
//!   totals); users and members ordered by username, groups and sub-groups by name, as
//!   Keycloak's JPA store orders them; `max` defaults to 100 for users and members, 10 for
//!   children, and "all" for top-level groups;
//! - Keycloak 23 and later ([`GroupsApi::Children`]): top-level groups carry `subGroupCount` and
//!   an empty `subGroups`, and `/groups/{id}/children` pages through sub-groups; before 23
//!   ([`GroupsApi::Inline`]): every group carries its whole sub-tree in `subGroups`, there is no
//!   `subGroupCount` and no `/children` (404);
//! - `briefRepresentation=false` adds `attributes` to users (members default to brief=false too,
//!   as the document says; the connector asks for brief);
//! - the token endpoint's error bodies (`{"error":"invalid_client","error_description":"Invalid
//!   client or Invalid client credentials"}` for an unknown client, `unauthorized_client` with
//!   the same description for a wrong secret, `unauthorized_client` "Client not enabled to
//!   retrieve service account"), 404 `{"error":"Realm does not exist"}` for another realm, 400
//!   `unsupported_grant_type`;
//! - the admin API's errors: 401 `{"error":"HTTP 401 Unauthorized"}` without a valid token, 403
//!   `{"error":"HTTP 403 Forbidden"}` when the service account lacks the realm-management role
//!   (`view-users` for users, members and sub-groups; `query-groups` or `view-users` for the
//!   groups listing, as Keycloak's group permissions check `canList`), 404 `{"error":"Could not
//!   find group by id"}`; the exact 403 body is unverified against a live server;
//! - the `/auth` prefix of Keycloak before 17 ([`KeycloakState::set_auth_prefix`]).
//!
//! Keycloak itself does not rate-limit; a proxy in front of it does, with 429 or 503 and
//! `Retry-After`: that is what [`KeycloakState::throttle`] answers.

mod routes;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::kit::sim::lock;
use crate::kit::{self, Fault, Faults, Outcome, Req, RouteMatch, Throttle, Vendor};

/// The content type of Keycloak's JSON answers.
const JSON: &str = "application/json";

/// Which Keycloak's group API the simulator answers with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupsApi {
    /// Keycloak 23 and later: `subGroupCount` and `/groups/{id}/children`.
    #[default]
    Children,
    /// Before 23: sub-groups inline in `subGroups`, no `/children`.
    Inline,
}

/// A realm-management client role the service account may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `view-users`: users, group members, groups.
    ViewUsers,
    /// `query-groups`: the groups listing.
    QueryGroups,
}

/// A user.
#[derive(Clone, Debug)]
pub struct KcUser {
    /// UUID; immutable.
    pub id: String,
    /// Lower case, unique in the realm.
    pub username: String,
    /// Enabled.
    pub enabled: bool,
    /// E-mail.
    pub email: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Realm user attributes.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// `createdTimestamp`, ms.
    pub created: i64,
    /// Fields written over the representation as given (a test's malformed user).
    pub overrides: serde_json::Map<String, Value>,
}

impl KcUser {
    /// A new enabled user.
    pub fn new(username: &str, email: &str, first: &str, last: &str) -> KcUser {
        KcUser {
            id: kit::ids::guid(),
            username: username.to_lowercase(),
            enabled: true,
            email: Some(email.to_lowercase()).filter(|e| !e.is_empty()),
            first_name: Some(first.to_string()).filter(|f| !f.is_empty()),
            last_name: Some(last.to_string()).filter(|l| !l.is_empty()),
            attributes: BTreeMap::new(),
            created: chrono::Utc::now().timestamp_millis(),
            overrides: serde_json::Map::new(),
        }
    }

    fn to_json(&self, brief: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "createdTimestamp": self.created,
            "username": self.username,
            "enabled": self.enabled,
            "totp": false,
            "emailVerified": self.email.is_some(),
            "disableableCredentialTypes": [],
            "requiredActions": [],
            "notBefore": 0,
            "access": {"manageGroupMembership": false, "view": true, "mapRoles": false, "impersonate": false, "manage": false},
        });
        for (k, val) in [
            ("email", &self.email),
            ("firstName", &self.first_name),
            ("lastName", &self.last_name),
        ] {
            if let Some(x) = val {
                v[k] = json!(x);
            }
        }
        if !brief && !self.attributes.is_empty() {
            v["attributes"] = json!(self.attributes);
        }
        for (k, x) in &self.overrides {
            v[k] = x.clone();
        }
        v
    }
}

/// A group.
#[derive(Clone, Debug)]
pub struct KcGroup {
    /// UUID; immutable.
    pub id: String,
    /// Unique among its siblings.
    pub name: String,
    /// The parent group; `None` for a top-level group.
    pub parent: Option<String>,
}

/// A confidential client.
#[derive(Clone, Debug)]
struct Client {
    secret: String,
    service_accounts: bool,
    roles: BTreeSet<Role>,
}

/// The simulated realm and its server.
pub struct KeycloakState {
    realm: String,
    api: GroupsApi,
    prefix: String,
    users: HashMap<String, KcUser>,
    /// username → id: the users listing's order.
    by_name: BTreeMap<String, String>,
    groups: HashMap<String, KcGroup>,
    /// group → usernames of its direct members (the members listing's order).
    members: HashMap<String, BTreeSet<String>>,
    clients: HashMap<String, Client>,
    /// token → (client, expiry).
    tokens: HashMap<String, (String, Instant)>,
    token_lifetime: u64,
    /// Directory ids → Keycloak ids, for realms built from a directory.
    dir_ids: HashMap<String, String>,
    faults: Faults,
    throttle: Throttle,
    /// Requests answered, by route label with ids replaced (`GET /admin/realms/{realm}/groups/{id}/members`).
    pub calls: BTreeMap<String, u64>,
    /// Admin requests refused by the rate limit or an injected 429/503.
    pub throttled: u64,
    /// Token requests, answered or refused.
    pub token_calls: u64,
}

impl std::fmt::Debug for KeycloakState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeycloakState")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl KeycloakState {
    /// An empty realm `realm` answering as Keycloak 23.
    pub fn new(realm: &str) -> Self {
        KeycloakState {
            realm: realm.to_string(),
            api: GroupsApi::Children,
            prefix: String::new(),
            users: HashMap::new(),
            by_name: BTreeMap::new(),
            groups: HashMap::new(),
            members: HashMap::new(),
            clients: HashMap::new(),
            tokens: HashMap::new(),
            token_lifetime: 300,
            dir_ids: HashMap::new(),
            faults: Faults::new(),
            throttle: Throttle::new(RouteMatch::contains("/admin/realms/")),
            calls: BTreeMap::new(),
            throttled: 0,
            token_calls: 0,
        }
    }

    /// Realm `realm` holding directory `d`: its users (attribute `department` = `R&D` for
    /// every user), its groups as a tree — a group nested in another becomes its sub-group (a
    /// Keycloak group has one parent: a directory group nested in two keeps the first) — and
    /// the direct memberships.
    pub fn from_directory(realm: &str, d: &crate::directory::Directory) -> Self {
        let mut s = KeycloakState::new(realm);
        for u in &d.users {
            let (first, last) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
            let mut k = KcUser::new(&u.username, &u.email, first, last);
            k.enabled = u.active;
            k.attributes.insert("department".into(), vec!["R&D".into()]);
            let id = s.add_user(k);
            s.dir_ids.insert(u.id.clone(), id);
        }
        let mut parent: HashMap<&str, &str> = HashMap::new();
        for m in d.memberships.iter().filter(|m| m.member_is_group) {
            parent.entry(m.member.as_str()).or_insert(m.group.as_str());
        }
        // Parents first: a chain's head before its links.
        let mut pending: Vec<&crate::directory::DirGroup> = d.groups.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|g| {
                let up = parent.get(g.id.as_str()).copied();
                let up_id = match up {
                    None => None,
                    Some(p) => match s.dir_ids.get(p) {
                        Some(id) => Some(id.clone()),
                        None => return true,
                    },
                };
                let id = s.add_group(&g.name, up_id.as_deref());
                s.dir_ids.insert(g.id.clone(), id);
                false
            });
            assert!(pending.len() < before, "the directory's nesting has a cycle");
        }
        for m in d.memberships.iter().filter(|m| !m.member_is_group) {
            let (g, u) = (s.dir_ids[&m.group].clone(), s.dir_ids[&m.member].clone());
            s.join(&g, &u);
        }
        s
    }

    /// The Keycloak id of directory object `dir_id`.
    pub fn id_of(&self, dir_id: &str) -> String {
        self.dir_ids
            .get(dir_id)
            .unwrap_or_else(|| panic!("no Keycloak object for directory id {dir_id}"))
            .clone()
    }

    /// Answers as Keycloak 23+ or as before 23.
    pub fn set_groups_api(&mut self, api: GroupsApi) {
        self.api = api;
    }

    /// Serves everything under `/auth`, as Keycloak before 17 (WildFly) does.
    pub fn set_auth_prefix(&mut self) {
        self.prefix = "/auth".into();
    }

    /// Registers a confidential client with a service account holding `roles`.
    pub fn add_client(&mut self, client_id: &str, secret: &str, roles: &[Role]) {
        self.clients.insert(
            client_id.to_string(),
            Client {
                secret: secret.to_string(),
                service_accounts: true,
                roles: roles.iter().copied().collect(),
            },
        );
    }

    /// Gives a client's service account exactly `roles`.
    pub fn set_roles(&mut self, client_id: &str, roles: &[Role]) {
        if let Some(c) = self.clients.get_mut(client_id) {
            c.roles = roles.iter().copied().collect();
        }
    }

    /// Turns a client's "Service accounts roles" off.
    pub fn disable_service_account(&mut self, client_id: &str) {
        if let Some(c) = self.clients.get_mut(client_id) {
            c.service_accounts = false;
        }
    }

    /// Adds a user; its id.
    pub fn add_user(&mut self, u: KcUser) -> String {
        let id = u.id.clone();
        self.by_name.insert(u.username.clone(), id.clone());
        self.users.insert(id.clone(), u);
        id
    }

    /// Edits a user (a new username moves it in the listing's order).
    pub fn update_user(&mut self, id: &str, f: impl FnOnce(&mut KcUser)) {
        let Some(u) = self.users.get_mut(id) else { return };
        let before = u.username.clone();
        f(u);
        u.username = u.username.to_lowercase();
        let after = u.username.clone();
        if before != after {
            self.by_name.remove(&before);
            self.by_name.insert(after.clone(), id.to_string());
            for m in self.members.values_mut() {
                if m.remove(&before) {
                    m.insert(after.clone());
                }
            }
        }
    }

    /// Deletes a user and its memberships.
    pub fn delete_user(&mut self, id: &str) {
        if let Some(u) = self.users.remove(id) {
            self.by_name.remove(&u.username);
            for m in self.members.values_mut() {
                m.remove(&u.username);
            }
        }
    }

    /// Adds a group under `parent` (`None`: top level); its id.
    pub fn add_group(&mut self, name: &str, parent: Option<&str>) -> String {
        let id = kit::ids::guid();
        self.groups.insert(
            id.clone(),
            KcGroup {
                id: id.clone(),
                name: name.to_string(),
                parent: parent.map(str::to_string),
            },
        );
        id
    }

    /// Renames a group (its path and its sub-groups' paths change with it).
    pub fn rename_group(&mut self, id: &str, name: &str) {
        if let Some(g) = self.groups.get_mut(id) {
            g.name = name.to_string();
        }
    }

    /// Deletes a group and its sub-groups.
    pub fn delete_group(&mut self, id: &str) {
        let children: Vec<String> = self.children_of(Some(id)).iter().map(|g| g.id.clone()).collect();
        for c in children {
            self.delete_group(&c);
        }
        self.groups.remove(id);
        self.members.remove(id);
    }

    /// Makes user `user` a direct member of group `group`.
    pub fn join(&mut self, group: &str, user: &str) {
        if let Some(u) = self.users.get(user) {
            self.members
                .entry(group.to_string())
                .or_default()
                .insert(u.username.clone());
        }
    }

    /// Takes user `user` out of group `group` (direct membership).
    pub fn leave(&mut self, group: &str, user: &str) {
        if let (Some(u), Some(m)) = (self.users.get(user), self.members.get_mut(group)) {
            m.remove(&u.username);
        }
    }

    /// The group's path, `/parent/name`.
    pub fn path(&self, id: &str) -> String {
        match self.groups.get(id) {
            None => String::new(),
            Some(g) => match &g.parent {
                Some(p) => format!("{}/{}", self.path(p), g.name),
                None => format!("/{}", g.name),
            },
        }
    }

    /// The id of the group at `path`.
    pub fn group_by_path(&self, path: &str) -> Option<String> {
        self.groups.keys().find(|id| self.path(id) == path).cloned()
    }

    /// The user's id by username.
    pub fn user_id(&self, username: &str) -> Option<String> {
        self.by_name.get(&username.to_lowercase()).cloned()
    }

    /// Users in the realm.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Groups in the realm, sub-groups included.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The groups under `parent` (`None`: top level), by name.
    fn children_of(&self, parent: Option<&str>) -> Vec<&KcGroup> {
        let mut v: Vec<&KcGroup> = self.groups.values().filter(|g| g.parent.as_deref() == parent).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        v
    }

    /// The limit on admin requests: `per_second` with bursts of `burst`, answered 429 with
    /// `Retry-After`, as a proxy in front of Keycloak does.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The next `n` admin requests whose path and query contain `path_contains` are answered
    /// `status` (429 and 503 with `Retry-After: 1`).
    pub fn fail_next(&mut self, n: u32, path_contains: &str, status: u16) {
        let fault = match status {
            429 | 503 => Fault::Status {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                retry_after: Some(1),
            },
            _ => Fault::status(status),
        };
        self.faults.fail_next(n, path_contains, fault);
    }

    /// The next request whose path and query contain `path_contains` is answered 200 with the
    /// first half of its body: JSON that does not parse.
    pub fn corrupt_next(&mut self, path_contains: &str) {
        self.faults.corrupt_next(path_contains);
    }

    /// The fault rules applied to this server's requests, tokens included.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Invalidates every access token issued so far.
    pub fn expire_access_tokens(&mut self) {
        self.tokens.clear();
    }

    /// Admin API requests answered (token and throttled requests excluded).
    pub fn api_calls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.contains("/admin/"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Requests answered on one route (`"GET /admin/realms/{realm}/users"`).
    pub fn calls_to(&self, route: &str) -> u64 {
        self.calls.get(route).copied().unwrap_or(0)
    }

    fn issue_token(&mut self, client_id: &str) -> String {
        let token = format!("eyJ{}", kit::ids::b64url(&kit::ids::random_bytes(32)));
        let expiry = Instant::now() + Duration::from_secs(self.token_lifetime);
        self.tokens.insert(token.clone(), (client_id.to_string(), expiry));
        token
    }
}

/// A running Keycloak simulator; stops when dropped.
pub type KeycloakSim = kit::Sim<KeycloakState>;

impl KeycloakSim {
    /// The server's base URL, as the connector's `base_url` (with `/auth` when set).
    pub fn base_url(&self) -> String {
        format!("{}{}", self.url(), self.lock().prefix)
    }

    /// The state, locked (the name the host tests use for every simulator).
    pub fn state(&self) -> std::sync::MutexGuard<'_, KeycloakState> {
        self.lock()
    }
}

type Shared = Arc<Mutex<KeycloakState>>;

impl kit::SimState for KeycloakState {
    const VENDOR: &'static str = "Keycloak";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        let (faults, throttle) = {
            let s = lock(&state);
            (s.faults.clone(), s.throttle.clone())
        };
        let vendor: Arc<dyn Vendor> = Arc::new(Keycloak);
        Router::new()
            .fallback(dispatch)
            .with_state(state.clone())
            .layer(faults.layer(vendor.clone()))
            .layer(throttle.layer(vendor))
            .layer(kit::observe(move |method, uri, answer| {
                count(&state, method, uri, answer)
            }))
    }
}

/// A JSON answer with Keycloak's content type.
fn answer(status: StatusCode, body: &Value) -> Response {
    kit::errors::json(status, JSON, body)
}

/// Keycloak's error body: `{"error": …}`.
fn error(status: StatusCode, message: &str) -> Response {
    answer(status, &json!({"error": message}))
}

/// Keycloak's answers for the kit.
struct Keycloak;

impl Vendor for Keycloak {
    fn error(&self, _: &Parts, status: StatusCode) -> Response {
        let message = format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        error(status, &message)
    }

    fn expired_token(&self, req: &Parts) -> Response {
        self.error(req, StatusCode::UNAUTHORIZED)
    }
}

/// A route's label for the counters: the realm and ids replaced.
fn label(method: &Method, path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let prev = if i > 0 { segs[i - 1] } else { "" };
        out.push(match prev {
            "realms" => "{realm}",
            "groups" | "users" if *s != "count" => "{id}",
            _ => s,
        });
    }
    format!("{method} /{}", out.join("/"))
}

fn count(state: &Shared, method: &Method, uri: &Uri, answer: &Response) {
    let outcome = Outcome::of(answer);
    let mut s = lock(state);
    let path = uri.path();
    if path.ends_with("/protocol/openid-connect/token") {
        s.token_calls += 1;
    }
    if path.contains("/admin/") && outcome.is_throttling() {
        s.throttled += 1;
        return;
    }
    *s.calls.entry(label(method, path)).or_default() += 1;
}

async fn dispatch(State(state): State<Shared>, req: Req) -> Response {
    routes::handle(&mut lock(&state), &req)
}
