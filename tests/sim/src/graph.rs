//! A Microsoft Graph v1.0 and Entra ID token endpoint simulator: the identity reads Roster's
//! Entra ID connector makes (users, groups, direct and transitive members, users and groups
//! delta, service principals and their app role assignments) and the client-credentials token
//! endpoint (secret or certificate assertion), following Graph's published contract
//! (`shared/specs/msgraph-v1.0-identity-subset.yaml`, vendor-apis.md §4): OData query options
//! (`$select`, `$filter`, `$top`, `$count`), `@odata.nextLink` paging with opaque skip tokens,
//! delta rounds with `@odata.deltaLink`, `@removed` and `members@delta`, Graph's error bodies,
//! Entra's `AADSTS` errors, application permissions, rate limiting and the kit's faults
//! ([`GraphSim::faults`]), answered in Graph's words (Entra's on the token endpoint).
//!
//! Paths: Graph under `/v1.0`, tokens at `/{tenant}/oauth2/v2.0/token` (tenant id or domain).
//! Links in answers (`@odata.nextLink`, `@odata.deltaLink`, `Location`) use the request's `Host`,
//! so a proxy in front of the simulator that keeps `Host` also sees the follow-up requests.
//!
//! Model: object ids are kept in `BTreeMap`s, so lists are ordered by id and a skip token names
//! the last id served (inserts and deletes between pages neither duplicate nor skip others).
//! Every mutation appends to a change log; a delta round from sequence F to T reports the objects
//! touched by log entries in (F, T]. A soft-deleted user is invisible everywhere but in delta; its
//! memberships are set aside (and logged as removed) until it is restored or hard-deleted.

mod delta;
mod odata;
mod routes;
mod token;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::kit::faults::decoded_target;
use crate::kit::ids::{b64url, guid, random_bytes};
use crate::kit::request::segments;
use crate::kit::{
    self, FaultRule, Faults, Outcome, PageFault, RateLimited, Req, RouteMatch, RuleId, Sealer, Throttle, Times, Vendor,
};
use odata::FVal;

/// The content type of Graph's successful JSON answers.
const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
/// The content type of Graph's error answers.
const ERROR_JSON: &str = "application/json";
/// The prefix of `@odata.context` values.
const METADATA: &str = "https://graph.microsoft.com/v1.0/$metadata";
/// The default app role (access without a specific role).
const DEFAULT_APP_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// A user (`microsoft.graph.user`).
#[derive(Clone, Debug, Default)]
pub struct GraphUser {
    /// Object id (GUID-like); immutable.
    pub id: String,
    /// `userPrincipalName`, unique (case-insensitive).
    pub user_principal_name: String,
    /// `mail`.
    pub mail: Option<String>,
    /// `displayName`.
    pub display_name: String,
    /// `givenName`.
    pub given_name: Option<String>,
    /// `surname`.
    pub surname: Option<String>,
    /// `accountEnabled`.
    pub account_enabled: bool,
    /// `employeeId`.
    pub employee_id: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// `onPremisesSamAccountName`.
    pub on_premises_sam_account_name: Option<String>,
    /// `otherMails`.
    pub other_mails: Vec<String>,
    /// `userType`: "Member" or "Guest" (empty becomes "Member" when added).
    pub user_type: String,
    /// Directory extension attributes, e.g. `extension_<appidnodash>_costCenter` → "42".
    pub extensions: BTreeMap<String, Value>,
}

/// A group (`microsoft.graph.group`).
#[derive(Clone, Debug, Default)]
pub struct GraphGroup {
    /// Object id; immutable.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `mailNickname`.
    pub mail_nickname: Option<String>,
    /// `securityEnabled`.
    pub security_enabled: bool,
}

/// What a group member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberKind {
    /// A user.
    User,
    /// A nested group.
    Group,
}

impl MemberKind {
    fn odata_type(self) -> &'static str {
        match self {
            MemberKind::User => "#microsoft.graph.user",
            MemberKind::Group => "#microsoft.graph.group",
        }
    }
}

/// A service principal (an enterprise application's instance in the tenant).
#[derive(Clone, Debug)]
struct ServicePrincipal {
    id: String,
    app_id: String,
    display_name: String,
}

/// An app role assignment of a principal to a service principal.
#[derive(Clone, Debug)]
struct Assignment {
    id: String,
    kind: MemberKind,
    created: String,
}

/// A registered certificate credential.
#[derive(Clone)]
struct Cert {
    /// `None` when the PEM could not be read: every assertion then fails validation.
    key: Option<jsonwebtoken::DecodingKey>,
    /// base64url (no padding) of the SHA-1 thumbprint's bytes: the `x5t` assertions must carry.
    x5t: String,
}

/// An application registration with client credentials.
#[derive(Clone, Default)]
struct Client {
    secret: Option<String>,
    permissions: Vec<String>,
    certs: Vec<Cert>,
}

/// An issued access token.
#[derive(Clone, Debug)]
struct IssuedToken {
    client_id: String,
    expires: Instant,
    served: u64,
}

/// One entry of the change log.
#[derive(Clone, Debug)]
enum Change {
    User(String),
    Group(String),
    Member {
        group: String,
        member: String,
        kind: MemberKind,
        added: bool,
    },
}

/// What made older delta tokens invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Invalidation {
    Expired,
    Reset,
}

/// The whole simulated tenant, its app registrations, issued tokens, faults and counters.
pub struct GraphState {
    tenant_id: String,
    domain: String,
    /// Seals skip and delta tokens.
    sealer: Sealer,
    clients: BTreeMap<String, Client>,
    /// lower-case name → registered name.
    extensions: BTreeMap<String, String>,
    users: BTreeMap<String, GraphUser>,
    deleted_users: BTreeMap<String, GraphUser>,
    /// lower-case UPN → id, active users only.
    upns: HashMap<String, String>,
    groups: BTreeMap<String, GraphGroup>,
    /// group → its visible direct members.
    members: HashMap<String, BTreeMap<String, MemberKind>>,
    /// member → the groups it is a visible direct member of.
    member_of: HashMap<String, BTreeSet<String>>,
    /// soft-deleted user → the groups it returns to when restored.
    suspended: HashMap<String, BTreeSet<String>>,
    sps: BTreeMap<String, ServicePrincipal>,
    /// service principal id → principal id → assignment.
    assignments: BTreeMap<String, BTreeMap<String, Assignment>>,
    /// Sequence number n is `log[n - 1]`.
    log: Vec<Change>,
    invalidations: Vec<Invalidation>,
    rounds: HashMap<delta::RoundKey, Arc<delta::Round>>,
    tokens: HashMap<String, IssuedToken>,
    token_lifetime: u64,
    token_call_limit: Option<u32>,
    /// Shared with the router's layers, so tests can change them while the simulator runs.
    faults: Faults,
    throttle: Throttle,
    /// The rule behind `throttle_every`, replaced by each call.
    every_rule: Option<RuleId>,
    public_url: Option<String>,
    /// Objects per page of a users or groups delta round (Graph: 200).
    pub delta_page_size: usize,
    /// `members@delta` entries per page of a groups delta round (Graph: about 1,000).
    pub delta_members_per_page: usize,
    /// Delta rounds describe a changed user with its id and display name only, as Graph may
    /// ("at least the properties that have been updated"); clients must read the rest.
    pub delta_minimal: bool,
    /// Requests answered, by route label with ids replaced ("GET /users/{id}", "POST /token").
    pub calls: BTreeMap<String, u64>,
    /// The last Graph requests answered (method, path and decoded query), oldest first, at
    /// most [`REQUEST_LOG`]: what a client asked for (`$select`, `$top`, …).
    pub requests: VecDeque<String>,
    /// Token requests received.
    pub token_calls: u64,
    /// Graph requests refused because their access token had expired (or was used up, or an
    /// injected fault said so).
    pub refused_tokens: u64,
    /// Graph requests answered 429 or 503 by the rate limit or an injected fault (not in
    /// `calls`).
    pub throttled: u64,
}

impl std::fmt::Debug for GraphState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphState")
            .field("tenant_id", &self.tenant_id)
            .field("domain", &self.domain)
            .field("users", &self.users.len())
            .field("deleted_users", &self.deleted_users.len())
            .field("groups", &self.groups.len())
            .field("service_principals", &self.sps.len())
            .field("sequence", &self.log.len())
            .field("calls", &self.calls)
            .field("token_calls", &self.token_calls)
            .field("throttled", &self.throttled)
            .finish_non_exhaustive()
    }
}

impl GraphState {
    /// An empty tenant, addressable by `tenant_id` (a GUID) or `domain` in the token URL.
    pub fn new(tenant_id: &str, domain: &str) -> Self {
        GraphState {
            tenant_id: tenant_id.to_string(),
            domain: domain.to_string(),
            sealer: Sealer::new(),
            clients: BTreeMap::new(),
            extensions: BTreeMap::new(),
            users: BTreeMap::new(),
            deleted_users: BTreeMap::new(),
            upns: HashMap::new(),
            groups: BTreeMap::new(),
            members: HashMap::new(),
            member_of: HashMap::new(),
            suspended: HashMap::new(),
            sps: BTreeMap::new(),
            assignments: BTreeMap::new(),
            log: Vec::new(),
            invalidations: Vec::new(),
            rounds: HashMap::new(),
            tokens: HashMap::new(),
            token_lifetime: 3599,
            token_call_limit: None,
            faults: Faults::new(),
            throttle: Throttle::new(graph_only()),
            every_rule: None,
            public_url: None,
            delta_page_size: 200,
            delta_members_per_page: 1000,
            delta_minimal: false,
            calls: BTreeMap::new(),
            requests: VecDeque::new(),
            token_calls: 0,
            refused_tokens: 0,
            throttled: 0,
        }
    }

    /// The tenant's id.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The tenant's primary domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Registers an application with an optional client secret and its granted application
    /// permissions (e.g. "User.Read.All"); replaces an earlier registration's secret and
    /// permissions. Permissions are checked on every request, so changes apply at once.
    pub fn add_client(&mut self, client_id: &str, secret: Option<&str>, permissions: &[&str]) {
        let c = self.clients.entry(client_id.to_string()).or_default();
        c.secret = secret.map(str::to_string);
        c.permissions = permissions.iter().map(|p| p.to_string()).collect();
    }

    /// Adds a certificate credential (public key PEM, SHA-1 thumbprint in hex as Entra shows
    /// it) to an application, registering the application without permissions if needed.
    pub fn add_client_certificate(&mut self, client_id: &str, public_key_pem: &str, thumbprint_hex: &str) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).ok();
        let x5t = hex_decode(thumbprint_hex)
            .map(|b| b64url(&b))
            .unwrap_or_else(|| format!("invalid thumbprint {thumbprint_hex}"));
        self.clients
            .entry(client_id.to_string())
            .or_default()
            .certs
            .push(Cert { key, x5t });
    }

    /// Replaces an application's granted permissions.
    pub fn set_permissions(&mut self, client_id: &str, permissions: &[&str]) {
        self.clients.entry(client_id.to_string()).or_default().permissions =
            permissions.iter().map(|p| p.to_string()).collect();
    }

    /// Registers a directory extension property (`extension_<appid>_<name>`), which makes it
    /// valid in `$select` and `$filter` on users.
    pub fn register_extension(&mut self, name: &str) {
        self.extensions.insert(name.to_lowercase(), name.to_string());
    }

    fn record(&mut self, c: Change) {
        self.log.push(c);
    }

    /// Adds (or replaces) a user and returns its id; an empty id gets a new GUID. Records a
    /// change.
    pub fn add_user(&mut self, mut u: GraphUser) -> String {
        if u.id.is_empty() {
            u.id = guid();
        }
        if u.user_type.is_empty() {
            u.user_type = "Member".into();
        }
        let id = u.id.clone();
        if let Some(old) = self.users.get(&id) {
            self.upns.remove(&old.user_principal_name.to_lowercase());
        }
        self.deleted_users.remove(&id);
        self.upns.insert(u.user_principal_name.to_lowercase(), id.clone());
        self.users.insert(id.clone(), u);
        self.record(Change::User(id.clone()));
        id
    }

    /// Changes a user (active or soft-deleted; its id cannot change). Records a change.
    pub fn update_user(&mut self, id: &str, f: impl FnOnce(&mut GraphUser)) {
        if let Some(u) = self.users.get_mut(id) {
            let old_upn = u.user_principal_name.to_lowercase();
            f(u);
            u.id = id.to_string();
            let new_upn = u.user_principal_name.to_lowercase();
            if new_upn != old_upn {
                self.upns.remove(&old_upn);
                self.upns.insert(new_upn, id.to_string());
            }
        } else if let Some(u) = self.deleted_users.get_mut(id) {
            f(u);
            u.id = id.to_string();
        } else {
            return;
        }
        self.record(Change::User(id.to_string()));
    }

    /// Soft-deletes a user: it disappears from every view but delta (as `@removed: changed`),
    /// its memberships are set aside and logged as removed.
    pub fn soft_delete_user(&mut self, id: &str) {
        let Some(u) = self.users.remove(id) else {
            return;
        };
        self.upns.remove(&u.user_principal_name.to_lowercase());
        self.deleted_users.insert(id.to_string(), u);
        let groups = self.member_of.remove(id).unwrap_or_default();
        for g in &groups {
            if let Some(m) = self.members.get_mut(g) {
                m.remove(id);
            }
            self.record(Change::Member {
                group: g.clone(),
                member: id.to_string(),
                kind: MemberKind::User,
                added: false,
            });
        }
        self.suspended.insert(id.to_string(), groups);
        self.record(Change::User(id.to_string()));
    }

    /// Restores a soft-deleted user with its memberships (in groups that still exist).
    pub fn restore_user(&mut self, id: &str) {
        let Some(u) = self.deleted_users.remove(id) else {
            return;
        };
        self.upns.insert(u.user_principal_name.to_lowercase(), id.to_string());
        self.users.insert(id.to_string(), u);
        self.record(Change::User(id.to_string()));
        for g in self.suspended.remove(id).unwrap_or_default() {
            self.link(&g, id, MemberKind::User);
        }
    }

    /// Deletes a user for good (active or soft-deleted), with its memberships and app role
    /// assignments.
    pub fn hard_delete_user(&mut self, id: &str) {
        if self.users.contains_key(id) {
            for g in self.member_of.get(id).cloned().unwrap_or_default() {
                self.unlink(&g, id);
            }
            if let Some(u) = self.users.remove(id) {
                self.upns.remove(&u.user_principal_name.to_lowercase());
            }
        } else if self.deleted_users.remove(id).is_none() {
            return;
        }
        self.suspended.remove(id);
        self.member_of.remove(id);
        for a in self.assignments.values_mut() {
            a.remove(id);
        }
        self.record(Change::User(id.to_string()));
    }

    /// Adds (or replaces) a group and returns its id; an empty id gets a new GUID.
    pub fn add_group(&mut self, mut g: GraphGroup) -> String {
        if g.id.is_empty() {
            g.id = guid();
        }
        let id = g.id.clone();
        self.groups.insert(id.clone(), g);
        self.record(Change::Group(id.clone()));
        id
    }

    /// Changes a group (its id cannot change). Records a change.
    pub fn update_group(&mut self, id: &str, f: impl FnOnce(&mut GraphGroup)) {
        let Some(g) = self.groups.get_mut(id) else {
            return;
        };
        f(g);
        g.id = id.to_string();
        self.record(Change::Group(id.to_string()));
    }

    /// Deletes a group: it leaves its parent groups (logged), its members leave it, its app role
    /// assignments go.
    pub fn delete_group(&mut self, id: &str) {
        if self.groups.remove(id).is_none() {
            return;
        }
        for parent in self.member_of.get(id).cloned().unwrap_or_default() {
            self.unlink(&parent, id);
        }
        self.member_of.remove(id);
        for m in self.members.remove(id).unwrap_or_default().into_keys() {
            if let Some(set) = self.member_of.get_mut(&m) {
                set.remove(id);
                if set.is_empty() {
                    self.member_of.remove(&m);
                }
            }
        }
        for set in self.suspended.values_mut() {
            set.remove(id);
        }
        for a in self.assignments.values_mut() {
            a.remove(id);
        }
        self.record(Change::Group(id.to_string()));
    }

    fn link(&mut self, group: &str, member: &str, kind: MemberKind) {
        if !self.groups.contains_key(group) {
            return;
        }
        let set = self.members.entry(group.to_string()).or_default();
        if set.insert(member.to_string(), kind).is_some() {
            return;
        }
        self.member_of
            .entry(member.to_string())
            .or_default()
            .insert(group.to_string());
        self.record(Change::Member {
            group: group.to_string(),
            member: member.to_string(),
            kind,
            added: true,
        });
    }

    fn unlink(&mut self, group: &str, member: &str) {
        let Some(kind) = self.members.get_mut(group).and_then(|m| m.remove(member)) else {
            return;
        };
        if let Some(set) = self.member_of.get_mut(member) {
            set.remove(group);
            if set.is_empty() {
                self.member_of.remove(member);
            }
        }
        self.record(Change::Member {
            group: group.to_string(),
            member: member.to_string(),
            kind,
            added: false,
        });
    }

    /// Makes `member_id` (a user or a group, inferred) a direct member of `group_id`. Unknown
    /// ids are ignored; a soft-deleted user becomes a member when it is restored.
    pub fn add_member(&mut self, group_id: &str, member_id: &str) {
        if !self.groups.contains_key(group_id) {
            return;
        }
        if self.users.contains_key(member_id) {
            self.link(group_id, member_id, MemberKind::User);
        } else if self.groups.contains_key(member_id) && member_id != group_id {
            self.link(group_id, member_id, MemberKind::Group);
        } else if let Some(set) = self.suspended.get_mut(member_id) {
            set.insert(group_id.to_string());
        }
    }

    /// Removes a direct membership.
    pub fn remove_member(&mut self, group_id: &str, member_id: &str) {
        self.unlink(group_id, member_id);
        if let Some(set) = self.suspended.get_mut(member_id) {
            set.remove(group_id);
        }
    }

    /// Adds a service principal for an application and returns its object id (a new GUID).
    pub fn add_service_principal(&mut self, app_id: &str, display_name: &str) -> String {
        let id = guid();
        self.sps.insert(
            id.clone(),
            ServicePrincipal {
                id: id.clone(),
                app_id: app_id.to_string(),
                display_name: display_name.to_string(),
            },
        );
        id
    }

    /// Assigns a user or group to a service principal with the default app role.
    pub fn assign(&mut self, sp_id: &str, principal_id: &str) {
        if !self.sps.contains_key(sp_id) {
            return;
        }
        let kind = if self.users.contains_key(principal_id) || self.deleted_users.contains_key(principal_id) {
            MemberKind::User
        } else if self.groups.contains_key(principal_id) {
            MemberKind::Group
        } else {
            return;
        };
        self.assignments
            .entry(sp_id.to_string())
            .or_default()
            .entry(principal_id.to_string())
            .or_insert_with(|| Assignment {
                id: b64url(&random_bytes(32)),
                kind,
                created: iso_now(),
            });
    }

    /// Removes an assignment.
    pub fn unassign(&mut self, sp_id: &str, principal_id: &str) {
        if let Some(a) = self.assignments.get_mut(sp_id) {
            a.remove(principal_id);
        }
    }

    /// A user, active or soft-deleted.
    pub fn user(&self, id: &str) -> Option<&GraphUser> {
        self.users.get(id).or_else(|| self.deleted_users.get(id))
    }

    /// Whether a user is soft-deleted.
    pub fn is_soft_deleted(&self, id: &str) -> bool {
        self.deleted_users.contains_key(id)
    }

    /// A group.
    pub fn group(&self, id: &str) -> Option<&GraphGroup> {
        self.groups.get(id)
    }

    /// A group's visible direct members, by id.
    pub fn members(&self, group_id: &str) -> Vec<(String, MemberKind)> {
        self.members
            .get(group_id)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// The id of the active user with this userPrincipalName (case-insensitive).
    pub fn user_id_by_upn(&self, upn: &str) -> Option<String> {
        self.upns.get(&upn.to_lowercase()).cloned()
    }

    /// The id of the first group (by id) with this displayName.
    pub fn group_id_by_name(&self, name: &str) -> Option<String> {
        self.groups
            .values()
            .find(|g| g.display_name == name)
            .map(|g| g.id.clone())
    }

    /// A tenant holding a sample directory: the directory's ids as object ids; UPN
    /// `{username}@{domain}`, mail = email, displayName, accountEnabled = active; groups with
    /// displayName = name (mailNickname = name, security-enabled); memberships, nested ones too.
    /// Records no change events for this initial content.
    pub fn from_directory(d: &crate::directory::Directory, tenant_id: &str, domain: &str) -> Self {
        let mut s = GraphState::new(tenant_id, domain);
        for u in &d.users {
            s.add_user(GraphUser {
                id: u.id.clone(),
                user_principal_name: format!("{}@{domain}", u.username),
                mail: Some(u.email.clone()),
                display_name: u.display_name.clone(),
                account_enabled: u.active,
                user_type: "Member".into(),
                ..GraphUser::default()
            });
        }
        for g in &d.groups {
            s.add_group(GraphGroup {
                id: g.id.clone(),
                display_name: g.name.clone(),
                description: None,
                mail_nickname: Some(g.name.clone()),
                security_enabled: true,
            });
        }
        for m in &d.memberships {
            s.add_member(&m.group, &m.member);
        }
        s.log.clear();
        s
    }

    /// The next `n` Graph requests (not token requests) are answered `status` (429 or 503) with
    /// `Retry-After` when given.
    pub fn throttle_next(&mut self, n: u32, status: u16, retry_after_secs: Option<u64>) {
        let fault = match kit::Fault::status(status) {
            kit::Fault::Status { status, .. } => kit::Fault::Status {
                status,
                retry_after: retry_after_secs,
            },
            other => other,
        };
        self.faults
            .add(FaultRule::new(fault).route(graph_only()).times(Times::Count(n)));
    }

    /// Every `k`-th Graph request from now on is answered 429 (0 = off).
    pub fn throttle_every(&mut self, k: u32, retry_after_secs: Option<u64>) {
        if let Some(old) = self.every_rule.take() {
            self.faults.remove(old);
        }
        if k > 0 {
            let rule = FaultRule::new(kit::Fault::throttled(retry_after_secs))
                .route(graph_only())
                .times(Times::Every(k));
            self.every_rule = Some(self.faults.add(rule));
        }
    }

    /// The next `n` requests whose path and (decoded) query contain `path_contains` are
    /// answered `status` with a Graph error body (an Entra one on the token endpoint).
    pub fn fail_next(&mut self, n: u32, path_contains: &str, status: u16) {
        self.faults.fail_next(n, path_contains, kit::Fault::status(status));
    }

    /// The next request whose path and (decoded) query contain `path_contains` is answered 200
    /// with the first half of its body: JSON that does not parse.
    pub fn corrupt_next(&mut self, path_contains: &str) {
        self.faults.corrupt_next(path_contains);
    }

    /// The fault rules applied to this tenant's requests, tokens included.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Limits Graph requests (not token requests) to `per_second` with bursts of `capacity`;
    /// refusals are 429 `TooManyRequests` with `Retry-After`.
    pub fn set_rate_limit(&mut self, per_second: f64, capacity: u32) {
        self.throttle.limit(per_second, capacity);
    }

    /// Lifts the rate limit.
    pub fn clear_rate_limit(&mut self) {
        self.throttle.unlimited();
    }

    /// Invalidates every access token issued so far.
    pub fn expire_access_tokens(&mut self) {
        self.tokens.clear();
    }

    /// An access token stops working (401) after serving this many Graph calls, while
    /// `expires_in` still says the full lifetime; `None` = no limit.
    pub fn set_token_call_limit(&mut self, calls: Option<u32>) {
        self.token_call_limit = calls;
    }

    /// The lifetime of access tokens issued from now on: reported in `expires_in` and enforced.
    pub fn set_token_lifetime(&mut self, secs: u64) {
        self.token_lifetime = secs;
    }

    /// Delta and delta skip tokens issued so far are answered 400 `syncStateNotFound`.
    pub fn expire_delta_tokens(&mut self) {
        self.invalidations.push(Invalidation::Expired);
    }

    /// Delta and delta skip tokens issued so far are answered 410 Gone `resyncRequired`, with the
    /// initial delta URL in `Location`.
    pub fn reset_sync(&mut self) {
        self.invalidations.push(Invalidation::Reset);
    }

    /// The base URL written into links (`@odata.nextLink`, `@odata.deltaLink`, `Location`),
    /// e.g. a validating proxy's `http://127.0.0.1:PORT`; by default the request's `Host`.
    pub fn set_public_url(&mut self, url: &str) {
        self.public_url = Some(url.trim_end_matches('/').to_string());
    }

    /// Graph requests answered (token requests and throttled requests excluded).
    pub fn graph_calls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.as_str() != "POST /token")
            .map(|(_, v)| v)
            .sum()
    }

    /// The current change sequence number.
    pub fn sequence(&self) -> u64 {
        self.log.len() as u64
    }

    fn epoch(&self) -> u64 {
        self.invalidations.len() as u64
    }

    /// Finds a user by id or userPrincipalName (active users only).
    fn find_user(&self, key: &str) -> Option<&GraphUser> {
        self.users
            .get(key)
            .or_else(|| self.upns.get(&key.to_lowercase()).and_then(|id| self.users.get(id)))
    }

    fn principal_name(&self, id: &str, kind: MemberKind) -> Option<&str> {
        match kind {
            MemberKind::User => self.users.get(id).map(|u| u.display_name.as_str()),
            MemberKind::Group => self.groups.get(id).map(|g| g.display_name.as_str()),
        }
    }
}

/// A running Graph simulator; stops when dropped.
pub type GraphSim = kit::Sim<GraphState>;

impl GraphSim {
    /// The token endpoint for the tenant's id.
    pub fn token_url(&self) -> String {
        let tenant = self.lock().tenant_id.clone();
        format!("{}/{tenant}/oauth2/v2.0/token", self.url())
    }
}

type Shared = Arc<Mutex<GraphState>>;

impl kit::SimState for GraphState {
    const VENDOR: &'static str = "Graph";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        router(state)
    }
}

use kit::sim::lock;

/// The axum router (every path; Graph under `/v1.0`, tokens under `/{tenant}/oauth2/v2.0/token`),
/// with the state's rate limit and fault rules applied.
fn router(state: Shared) -> Router {
    let (faults, throttle) = {
        let s = lock(&state);
        (s.faults.clone(), s.throttle.clone())
    };
    let vendor: Arc<dyn Vendor> = Arc::new(Graph);
    Router::new()
        .fallback(dispatch)
        .with_state(state.clone())
        .layer(faults.layer(vendor.clone()))
        .layer(throttle.layer(vendor))
        .layer(kit::observe(move |method, uri, answer| {
            count(&state, method, uri, answer)
        }))
}

/// The tenant named by a token endpoint path (`/{tenant}/oauth2/v2.0/token`).
fn token_tenant(segs: &[String]) -> Option<&str> {
    match segs {
        [tenant, a, b, c] if a == "oauth2" && b == "v2.0" && c == "token" => Some(tenant),
        _ => None,
    }
}

/// Graph requests: everything but the token endpoint, whose limits are Entra's, not Graph's.
fn graph_only() -> RouteMatch {
    RouteMatch::Not(Box::new(RouteMatch::path("/*/oauth2/v2.0/token")))
}

/// Keeps `calls`, `requests`, `token_calls`, `refused_tokens` and `throttled`, whoever answered.
fn count(state: &Shared, method: &Method, uri: &Uri, answer: &Response) {
    let outcome = Outcome::of(answer);
    let segs = segments(uri.path());
    let mut s = lock(state);
    if token_tenant(&segs).is_some() {
        s.token_calls += 1;
        *s.calls.entry("POST /token".into()).or_default() += 1;
    } else if outcome.is_throttling() {
        s.throttled += 1;
    } else {
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let label = routes::Route::parse(&segs).label();
        *s.calls.entry(format!("{method} {label}")).or_default() += 1;
        if s.requests.len() == REQUEST_LOG {
            s.requests.pop_front();
        }
        s.requests.push_back(format!("{method} {}", decoded_target(uri)));
        if outcome == Outcome::Injected(kit::Fault::ExpiredToken) {
            s.refused_tokens += 1;
        }
    }
}

/// Graph's (and, on the token endpoint, Entra's) answers for the kit.
struct Graph;

impl Vendor for Graph {
    fn error(&self, req: &Parts, status: StatusCode) -> Response {
        if token_tenant(&segments(req.uri.path())).is_some() {
            let (error, code) = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                ("temporarily_unavailable", 90033)
            } else {
                ("invalid_request", 90000)
            };
            return token::entra_error(
                status,
                error,
                code,
                "Injected fault. A transient error has occurred. Please try again.",
            );
        }
        let (code, message) = match status.as_u16() {
            429 => (
                "TooManyRequests",
                "Too many requests are being sent. Retry after some time.",
            ),
            503 => (
                "serviceNotAvailable",
                "The service is temporarily unavailable. Retry after some time.",
            ),
            400 => ("BadRequest", "Injected fault."),
            401 => ("InvalidAuthenticationToken", "Injected fault."),
            403 => ("Authorization_RequestDenied", "Injected fault."),
            404 => ("Request_ResourceNotFound", "Injected fault."),
            409 => ("Conflict", "Injected fault."),
            500 => ("InternalServerError", "Injected fault."),
            502 => ("BadGateway", "Injected fault."),
            504 => ("GatewayTimeout", "Injected fault."),
            _ => ("UnknownError", "Injected fault."),
        };
        Ids::new(&req.headers).error(GErr::new(status, code, message))
    }

    fn expired_token(&self, req: &Parts) -> Response {
        if token_tenant(&segments(req.uri.path())).is_some() {
            return token::invalid_client(
                7000222,
                "The provided client secret keys are expired. Visit the Azure portal to create new keys for your app.",
            );
        }
        Ids::new(&req.headers).error(GErr::expired_token())
    }

    fn rate_limited(&self, req: &Parts, _: &RateLimited) -> Response {
        self.error(req, StatusCode::TOO_MANY_REQUESTS)
    }
}

/// How many answered requests [`GraphState::requests`] keeps.
pub const REQUEST_LOG: usize = 1000;

/// The ids Graph puts in every answer's headers and error bodies.
struct Ids {
    request_id: String,
    client_request_id: String,
}

impl Ids {
    /// A new request id; the client's `client-request-id` echoed when usable.
    fn new(headers: &HeaderMap) -> Ids {
        Ids {
            request_id: guid(),
            client_request_id: headers
                .get("client-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= 100)
                .map(str::to_string)
                .unwrap_or_else(guid),
        }
    }

    fn error(&self, e: GErr) -> Response {
        let body = json!({"error": {
            "code": e.code,
            "message": e.message,
            "innerError": {
                "date": iso_now(),
                "request-id": self.request_id,
                "client-request-id": self.client_request_id,
            },
        }});
        let mut r = (e.status, body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static(ERROR_JSON));
        self.set(h);
        if let Some(l) = e.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            h.insert("location", l);
        }
        if e.status == StatusCode::UNAUTHORIZED {
            h.insert(
                "www-authenticate",
                HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        r
    }

    fn ok(&self, body: String) -> Response {
        let mut r = (StatusCode::OK, body).into_response();
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static(GRAPH_JSON));
        self.set(h);
        r
    }

    fn set(&self, h: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            h.insert("request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.client_request_id) {
            h.insert("client-request-id", v);
        }
    }
}

/// Per-request context for Graph answers.
struct Ctx {
    ids: Ids,
    /// `http://host:port`, for links.
    base: String,
    /// The request's path as sent, for `@odata.nextLink`.
    path: String,
    /// `ConsistencyLevel: eventual` was sent.
    eventual: bool,
    /// A paging fault due for this request's page.
    page_fault: PageFault,
}

/// A Graph error answer, before it is rendered.
#[derive(Debug)]
struct GErr {
    status: StatusCode,
    code: &'static str,
    message: String,
    location: Option<String>,
}

impl GErr {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> GErr {
        GErr {
            status,
            code,
            message: message.into(),
            location: None,
        }
    }

    fn bad(message: impl Into<String>) -> GErr {
        GErr::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    fn unsupported(message: impl Into<String>) -> GErr {
        GErr::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
    }

    fn not_found(id: &str) -> GErr {
        GErr::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    fn expired_token() -> GErr {
        GErr::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        )
    }
}

type GResult<T> = Result<T, GErr>;

impl Ctx {
    fn error(&self, e: GErr) -> Response {
        self.ids.error(e)
    }

    fn ok(&self, body: String) -> Response {
        self.ids.ok(body)
    }

    fn answer(&self, r: GResult<Value>) -> Response {
        match r {
            Ok(v) => self.ok(v.to_string()),
            Err(e) => self.error(e),
        }
    }
}

async fn dispatch(State(state): State<Shared>, req: Req) -> Response {
    lock(&state).handle(&req)
}

impl GraphState {
    fn handle(&mut self, req: &Req) -> Response {
        if let Some(tenant) = token_tenant(&req.segments) {
            return token::handle(self, req, tenant);
        }
        let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let ctx = Ctx {
            ids: Ids::new(&req.headers),
            base: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", req.header("host").unwrap_or("127.0.0.1"))),
            path: req.path.clone(),
            eventual: req
                .header("consistencylevel")
                .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
            page_fault: req.page_fault.clone(),
        };
        let route = routes::Route::parse(&segs);
        let client_id = match self.authenticate(req) {
            Ok(c) => c,
            Err(e) => return ctx.error(e),
        };
        if req.method != Method::GET {
            return ctx.error(if matches!(route, routes::Route::Unknown(_)) {
                route.unknown_error()
            } else {
                GErr::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Request_BadRequest",
                    "Specified HTTP method is not allowed for the request target.",
                )
            });
        }
        if let Some(needed) = route.permissions() {
            let granted = self.clients.get(&client_id).is_some_and(|c| {
                c.permissions
                    .iter()
                    .any(|p| needed.iter().any(|n| n.eq_ignore_ascii_case(p)))
            });
            if !granted {
                return ctx.error(GErr::new(
                    StatusCode::FORBIDDEN,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                ));
            }
        }
        match odata::Query::parse(&req.query) {
            Ok(q) => routes::serve(self, &ctx, &route, &q),
            Err(e) => ctx.error(e),
        }
    }

    /// The client id behind the request's bearer token.
    fn authenticate(&mut self, req: &Req) -> GResult<String> {
        let empty = || {
            GErr::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            )
        };
        let expired = GErr::expired_token;
        let auth = req.header("authorization").unwrap_or("").trim();
        let token = match auth.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => "",
        };
        if token.is_empty() {
            return Err(empty());
        }
        let limit = self.token_call_limit;
        let Some(t) = self.tokens.get_mut(token) else {
            self.refused_tokens += 1;
            return Err(expired());
        };
        if Instant::now() >= t.expires || limit.is_some_and(|n| t.served >= u64::from(n)) {
            self.refused_tokens += 1;
            return Err(expired());
        }
        t.served += 1;
        Ok(t.client_id.clone())
    }

    fn issue_token(&mut self, client_id: &str) -> (String, u64) {
        let token = format!("sim.{}", b64url(&random_bytes(48)));
        let lifetime = self.token_lifetime;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                client_id: client_id.to_string(),
                expires: Instant::now() + std::time::Duration::from_secs(lifetime),
                served: 0,
            },
        );
        (token, lifetime)
    }

    /// An opaque, tamper-evident token for a payload.
    fn seal<T: serde::Serialize>(&self, payload: &T) -> String {
        self.sealer.seal(payload)
    }

    /// The payload of a token made by `seal`, if it is intact.
    fn unseal<T: serde::de::DeserializeOwned>(&self, token: &str) -> Option<T> {
        self.sealer.unseal(token)
    }
}

impl FVal<'_> {
    fn from_opt(v: &Option<String>) -> FVal<'_> {
        v.as_deref().map_or(FVal::Null, FVal::Str)
    }
}

impl odata::Fields for GraphUser {
    fn field(&self, name: &str) -> FVal<'_> {
        match name {
            "id" => FVal::Str(&self.id),
            "userPrincipalName" => FVal::Str(&self.user_principal_name),
            "mail" => FVal::from_opt(&self.mail),
            "displayName" => FVal::Str(&self.display_name),
            "givenName" => FVal::from_opt(&self.given_name),
            "surname" => FVal::from_opt(&self.surname),
            "accountEnabled" => FVal::Bool(self.account_enabled),
            "employeeId" => FVal::from_opt(&self.employee_id),
            "department" => FVal::from_opt(&self.department),
            "onPremisesSamAccountName" => FVal::from_opt(&self.on_premises_sam_account_name),
            "otherMails" => FVal::Coll(&self.other_mails),
            "userType" => FVal::Str(&self.user_type),
            "mailNickname" => FVal::Str(
                self.user_principal_name
                    .split_once('@')
                    .map_or(self.user_principal_name.as_str(), |(l, _)| l),
            ),
            "jobTitle" => FVal::Null,
            ext => match self.extensions.get(ext) {
                None | Some(Value::Null) => FVal::Absent,
                Some(Value::String(s)) => FVal::Str(s),
                Some(Value::Bool(b)) => FVal::Bool(*b),
                Some(v) => FVal::Json(v),
            },
        }
    }
}

impl odata::Fields for GraphGroup {
    fn field(&self, name: &str) -> FVal<'_> {
        match name {
            "id" => FVal::Str(&self.id),
            "displayName" => FVal::Str(&self.display_name),
            "description" => FVal::from_opt(&self.description),
            "mailNickname" => FVal::from_opt(&self.mail_nickname),
            "securityEnabled" => FVal::Bool(self.security_enabled),
            "mail" => FVal::Null,
            _ => FVal::Absent,
        }
    }
}

impl odata::Fields for ServicePrincipal {
    fn field(&self, name: &str) -> FVal<'_> {
        match name {
            "id" => FVal::Str(&self.id),
            "appId" => FVal::Str(&self.app_id),
            "displayName" => FVal::Str(&self.display_name),
            "servicePrincipalType" => FVal::Str("Application"),
            "accountEnabled" => FVal::Bool(true),
            _ => FVal::Absent,
        }
    }
}

// ---- small utilities ----

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !matches!(c, ':' | ' ' | '-')).collect();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Percent-encodes a query value or key (space as %20; `$`, `,`, `'`, `(`, `)` kept).
fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'$' | b',' | b'\'' | b'(' | b')' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Now as `2026-01-02T03:04:05Z`.
fn iso_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now as Entra writes it in token errors: `2026-01-02 03:04:05Z`.
fn entra_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string()
}
