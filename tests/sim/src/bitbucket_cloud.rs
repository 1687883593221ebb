//! A Bitbucket Cloud simulator: one workspace as Roster's Cloud target sees it, on one port —
//! the 2.0 reads (`/2.0/workspaces/{ws}/members`, `…/members/{member}`, `…/permissions`) with
//! Bitbucket's paging (`page`, `pagelen` up to 100, an absolute `next`), the `user.email IN (…)`
//! filter (at most 90 addresses) and `fields=+values.user.email`; the 1.0 leftovers (groups and
//! their members, invitations); and the Atlassian user-provisioning SCIM API
//! (`/scim/directory/{directoryId}/Users|Groups`) — following vendor-apis.md §3 and the Cloud
//! OpenAPI document (`shared/specs/bitbucket-cloud-2.0-openapi.json`), which the 2.0 bodies
//! validate against.
//!
//! Two administrations ([`Administration`]): a workspace administered in Bitbucket serves the
//! 1.0 writes and invitations and refuses SCIM (403, the directory is not linked to it — the
//! simulator's choice, so a client configured for the wrong mode finds out at once); a workspace
//! moved to admin.atlassian.com answers the 1.0 group writes and every invitation call with 403
//! and the Cloud error body naming admin.atlassian.com (Atlassian documents that these are
//! disabled, not how: this answer is Roster's assumption), keeps 1.0 `GET` of groups, and is
//! provisioned through SCIM.
//!
//! One model, two views: Atlassian accounts (by account id), groups (by slug) with their member
//! accounts, owners. Workspace members are the owners and the accounts in a group; after the move
//! to admin.atlassian.com only active accounts count, and only groups granting product access
//! when some are named ([`CloudState::product_access`]). SCIM users are the accounts (`userName`
//! = email), SCIM groups the groups: a SCIM user that is active and in a group is a workspace
//! member in that group, and 1.0 `GET` of groups shows them there.
//!
//! Auth: HTTP Basic with the pairs given to [`CloudState::credentials`] on 1.0 and 2.0 (401 with
//! the Cloud error body otherwise); `Authorization: Bearer <api key>` on SCIM. Rate limit: calls
//! per user over a rolling window ([`CloudState::hourly_limit`], the kit's [`RollingLimit`]),
//! 429 "Rate limit for this resource has been exceeded" with `X-RateLimit-Limit`,
//! `X-RateLimit-Resource`, `X-RateLimit-NearLimit` and `Retry-After`; every answer the meter let
//! through carries `X-RateLimit-Limit` (and `X-RateLimit-NearLimit: true` under 20 % left), as
//! support.atlassian.com/bitbucket-cloud/docs/api-request-limits/ describes. That page also
//! limits sending invitations apart from the hourly pool (100 a minute): off until
//! [`CloudState::invitation_limit`], it meters `PUT /1.0/users/{ws}/invitations` per user (the
//! `GET` listing stays in the hourly pool only) and refuses with the same 429 body naming
//! `X-RateLimit-Resource: invitations`; those calls count against the hourly pool too. The kit's faults
//! apply to every path ([`CloudSim::faults`]); paging faults to the 2.0 listings only (SCIM's
//! `startIndex` paging has no link to lead elsewhere). Links (`next`, `links.self`) start with the
//! request's `Host`, or with [`CloudState::set_public_url`] behind a proxy such as Prism.

mod routes;
mod scim;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use routes::MAX_EMAILS;

use crate::kit::window::basic_credentials;
use crate::kit::{self, Faults, Metered, Methods, RateLimited, Req, RollingLimit, RouteMatch, Vendor};

/// The content type of Bitbucket's JSON answers.
const JSON: &str = "application/json; charset=utf-8";
/// Atlassian's 429 message (support.atlassian.com/bitbucket-cloud/docs/api-request-limits/).
pub const RATE_LIMITED: &str = "Rate limit for this resource has been exceeded";
/// `X-RateLimit-Resource` of the hourly pool's 429s.
pub const RESOURCE_API: &str = "api";
/// `X-RateLimit-Resource` of a 429 from the limit on sending invitations. Atlassian documents
/// the limit (100 a minute) but not this header's value for it: "invitations" is the
/// simulator's assumption, chosen only so that it is not the hourly pool's "api".
pub const RESOURCE_INVITATIONS: &str = "invitations";

/// Who administers the workspace's users and groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Administration {
    /// Bitbucket itself: 1.0 groups and invitations work.
    Bitbucket,
    /// admin.atlassian.com: 1.0 groups are read-only, invitations disabled, SCIM provisions.
    AdminHub,
}

/// Whether an invitation is accepted as soon as it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoAccept {
    /// Invitations stay pending until [`CloudState::accept_invitation`].
    Never,
    /// The invitee accepts at once: the account is created when the email has none and joins
    /// the group.
    Immediately,
}

/// A workspace member, as assertions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Atlassian account id.
    pub account_id: String,
    /// `{uuid}`.
    pub uuid: String,
    /// Nickname.
    pub nickname: String,
    /// Display name.
    pub display_name: String,
    /// Email address, as given.
    pub email: String,
    /// Slugs of the groups it is in.
    pub groups: BTreeSet<String>,
    /// Whether it owns the workspace.
    pub owner: bool,
}

/// A pending invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// The address invited, as given.
    pub email: String,
    /// The group the invitee joins on accepting.
    pub group_slug: String,
    /// How many times it was sent.
    pub sent: u32,
    /// When it was last sent.
    pub sent_on: DateTime<Utc>,
}

/// An account as the SCIM directory shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimUser {
    /// The SCIM id.
    pub id: String,
    /// The Atlassian account id behind it.
    pub account_id: String,
    /// `userName` (the email address).
    pub user_name: String,
    /// `displayName`.
    pub display_name: String,
    /// The primary email.
    pub email: String,
    /// `name.givenName`.
    pub given_name: String,
    /// `name.familyName`.
    pub family_name: String,
    /// `active`: false once deactivated (SCIM DELETE or a PATCH of `active`).
    pub active: bool,
}

/// An Atlassian account.
#[derive(Clone, Debug)]
struct Account {
    account_id: String,
    uuid: String,
    nickname: String,
    display_name: String,
    email: String,
    scim_id: String,
    given_name: String,
    family_name: String,
    active: bool,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
}

/// A group of the workspace.
#[derive(Clone, Debug)]
struct Group {
    name: String,
    slug: String,
    permission: Option<String>,
    /// Account ids.
    members: BTreeSet<String>,
    scim_id: String,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
}

/// The whole simulated workspace, its directory, credentials, limits and counters.
#[derive(Debug)]
pub struct CloudState {
    workspace: String,
    workspace_uuid: String,
    administration: Administration,
    /// User → password; shared with the meter, which counts authenticated calls only.
    credentials: Credentials,
    /// (directory id, API key).
    scim: Option<(String, String)>,
    accounts: BTreeMap<String, Account>,
    /// Lower-case email → account id.
    by_email: HashMap<String, String>,
    /// By slug.
    groups: BTreeMap<String, Group>,
    owners: BTreeSet<String>,
    /// Slugs of groups granting product access after the move; `None` = every group.
    access: Option<BTreeSet<String>>,
    invitations: Vec<Invitation>,
    auto_accept: AutoAccept,
    public_url: Option<String>,
    faults: Faults,
    meter: RollingLimit,
    /// The limit on sending invitations, apart from (and inside) `meter`.
    invitation_meter: RollingLimit,
    writes: u64,
    invitations_sent: u64,
}

/// The Basic-auth pairs accepted.
#[derive(Clone, Debug, Default)]
struct Credentials(Arc<Mutex<BTreeMap<String, String>>>);

impl Credentials {
    /// The user a request authenticates as, when its Basic credentials are accepted.
    fn user(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let (user, password) = basic_credentials(headers)?;
        let known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (known.get(&user) == Some(&password)).then_some(user)
    }
}

impl CloudState {
    /// An empty workspace `workspace` (its slug) under `administration`. No credentials are
    /// accepted until [`CloudState::credentials`] is called.
    pub fn new(workspace: &str, administration: Administration) -> CloudState {
        let credentials = Credentials::default();
        let metered = credentials.clone();
        let inviting = credentials.clone();
        CloudState {
            workspace: workspace.to_string(),
            workspace_uuid: format!("{{{}}}", kit::ids::guid()),
            administration,
            credentials: credentials.clone(),
            scim: None,
            accounts: BTreeMap::new(),
            by_email: HashMap::new(),
            groups: BTreeMap::new(),
            owners: BTreeSet::new(),
            access: None,
            invitations: Vec::new(),
            auto_accept: AutoAccept::Never,
            public_url: None,
            faults: Faults::new(),
            // The meter covers Bitbucket's API, not api.atlassian.com's SCIM, and authenticated
            // calls only (Bitbucket meters the others per address, which no test needs).
            meter: RollingLimit::new(
                RouteMatch::Not(Box::new(RouteMatch::prefix("/scim/"))),
                Arc::new(move |headers| metered.user(headers)),
            ),
            // Sending only: the GET of the same path lists them and is in the hourly pool.
            invitation_meter: RollingLimit::new(
                RouteMatch::path("/1.0/users/*/invitations"),
                Arc::new(move |headers| inviting.user(headers)),
            )
            .methods(Methods::Only(axum::http::Method::PUT)),
            writes: 0,
            invitations_sent: 0,
        }
    }

    /// Accepts HTTP Basic with `username` and `password` (an app password, or an Atlassian
    /// account email and API token); may be called for several pairs.
    pub fn credentials(&mut self, username: &str, password: &str) {
        self.credentials
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(username.to_string(), password.to_string());
    }

    /// Links the SCIM directory `directory_id`, reached with `Bearer <api_key>`.
    pub fn scim_directory(&mut self, directory_id: &str, api_key: &str) {
        self.scim = Some((directory_id.to_string(), api_key.to_string()));
    }

    /// An Atlassian account (exists outside the workspace until it joins); its account id. An
    /// email that already has an account gives that account's id.
    pub fn add_account(&mut self, nickname: &str, display_name: &str, email: &str) -> String {
        if let Some(id) = self.by_email.get(&email.to_lowercase()) {
            return id.clone();
        }
        let (given, family) = split_name(display_name);
        self.insert_account(nickname, display_name, email, &given, &family)
    }

    fn insert_account(&mut self, nickname: &str, display_name: &str, email: &str, given: &str, family: &str) -> String {
        let account_id = format!("557058:{}", kit::ids::guid());
        let now = Utc::now();
        self.by_email.insert(email.to_lowercase(), account_id.clone());
        self.accounts.insert(
            account_id.clone(),
            Account {
                account_id: account_id.clone(),
                uuid: format!("{{{}}}", kit::ids::guid()),
                nickname: nickname.to_string(),
                display_name: display_name.to_string(),
                email: email.to_string(),
                scim_id: kit::ids::guid(),
                given_name: given.to_string(),
                family_name: family.to_string(),
                active: true,
                created: now,
                modified: now,
            },
        );
        account_id
    }

    /// Makes the account a member of the workspace through the group `group` (its slug or
    /// name). Unknown accounts or groups change nothing.
    pub fn join(&mut self, account_id: &str, group_slug: &str) {
        if !self.accounts.contains_key(account_id) {
            return;
        }
        if let Some(slug) = self.group_slug(group_slug)
            && let Some(g) = self.groups.get_mut(&slug)
        {
            g.members.insert(account_id.to_string());
            g.modified = Utc::now();
        }
    }

    /// Removes the account from the group (slug or name), as an administrator would.
    pub fn leave(&mut self, account_id: &str, group_slug: &str) {
        if let Some(slug) = self.group_slug(group_slug)
            && let Some(g) = self.groups.get_mut(&slug)
        {
            g.members.remove(account_id);
        }
    }

    /// A group with Bitbucket's `permission` ("read", "write", "admin" or none); its slug (the
    /// name lower-cased, spaces as dashes). An existing group keeps its members.
    pub fn add_group(&mut self, name: &str, permission: Option<&str>) -> String {
        let slug = slugify(name);
        let now = Utc::now();
        let g = self.groups.entry(slug.clone()).or_insert_with(|| Group {
            name: name.to_string(),
            slug: slug.clone(),
            permission: None,
            members: BTreeSet::new(),
            scim_id: kit::ids::guid(),
            created: now,
            modified: now,
        });
        g.permission = permission.map(str::to_string);
        slug
    }

    /// Makes the account an owner (and so a member) of the workspace.
    pub fn make_owner(&mut self, account_id: &str) {
        if self.accounts.contains_key(account_id) {
            self.owners.insert(account_id.to_string());
        }
    }

    /// After the move to admin.atlassian.com, only the groups named here (slugs or names) give
    /// Bitbucket access; until it is called, every group does.
    pub fn product_access(&mut self, groups: &[&str]) {
        let slugs = groups.iter().map(|g| self.group_slug(g).unwrap_or_else(|| slugify(g)));
        self.access = Some(slugs.collect());
    }

    /// Accepts the pending invitations of `email`: creates the account when the email has none
    /// and joins each invited group. False when nothing was pending.
    pub fn accept_invitation(&mut self, email: &str) -> bool {
        self.accept_invitation_as(email, email)
    }

    /// The invitation to `email` is accepted by the Atlassian account of `account_email` (a
    /// person who signed in with another address): the invitation closes, and no member has the
    /// invited address. False when `email` had no invitation.
    pub fn accept_invitation_as(&mut self, email: &str, account_email: &str) -> bool {
        let key = email.to_lowercase();
        let (accepted, pending): (Vec<Invitation>, Vec<Invitation>) = std::mem::take(&mut self.invitations)
            .into_iter()
            .partition(|i| i.email.to_lowercase() == key);
        self.invitations = pending;
        for i in &accepted {
            self.accept(account_email, &i.group_slug);
        }
        !accepted.is_empty()
    }

    fn accept(&mut self, email: &str, group_slug: &str) {
        let account_id = match self.by_email.get(&email.to_lowercase()) {
            Some(id) => id.clone(),
            None => {
                let local = email.split('@').next().unwrap_or(email);
                self.insert_account(local, local, email, local, "")
            }
        };
        self.join(&account_id, group_slug);
    }

    /// Whether invitations are accepted as they are sent.
    pub fn auto_accept(&mut self, on: AutoAccept) {
        self.auto_accept = on;
    }

    /// Allows each user `calls` calls to Bitbucket's API in any stretch of `window` (a rolling
    /// hour in Bitbucket Cloud; tests use seconds). Earlier calls are forgotten.
    pub fn hourly_limit(&mut self, calls: u64, window: Duration) {
        self.meter.limit(calls, window);
    }

    /// Allows each user to send `calls` invitations in any stretch of `window` (100 a minute in
    /// Bitbucket Cloud), on top of the hourly limit. Earlier invitations are forgotten.
    pub fn invitation_limit(&mut self, calls: u64, window: Duration) {
        self.invitation_meter.limit(calls, window);
    }

    /// Invitations `username` may still send in the current window; `None` when unlimited.
    pub fn invitations_left(&self, username: &str) -> Option<u64> {
        self.invitation_meter.remaining(username)
    }

    /// Lifts the hourly rate limit (the invitation limit stays).
    pub fn unlimited(&mut self) {
        self.meter.unlimited();
    }

    /// Calls `username` may still make in the current window; `None` when unlimited.
    pub fn calls_left(&self, username: &str) -> Option<u64> {
        self.meter.remaining(username)
    }

    /// Moves the workspace's administration (to admin.atlassian.com, or back for tests).
    pub fn set_administration(&mut self, a: Administration) {
        self.administration = a;
    }

    /// The administration in force.
    pub fn administration(&self) -> Administration {
        self.administration
    }

    /// Links in answers start with this instead of the request's `Host` (a proxy in front).
    pub fn set_public_url(&mut self, url: &str) {
        self.public_url = Some(url.trim_end_matches('/').to_string());
    }

    /// The fault rules applied to its requests.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The workspace's slug.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// The account id of an email address, member or not.
    pub fn account_id(&self, email: &str) -> Option<String> {
        self.by_email.get(&email.to_lowercase()).cloned()
    }

    /// Workspace members by lower-case email.
    pub fn members(&self) -> BTreeMap<String, Member> {
        self.member_ids()
            .into_iter()
            .filter_map(|id| self.accounts.get(&id))
            .map(|a| (a.email.to_lowercase(), self.member(a)))
            .collect()
    }

    fn member(&self, a: &Account) -> Member {
        Member {
            account_id: a.account_id.clone(),
            uuid: a.uuid.clone(),
            nickname: a.nickname.clone(),
            display_name: a.display_name.clone(),
            email: a.email.clone(),
            groups: self
                .groups
                .values()
                .filter(|g| g.members.contains(&a.account_id))
                .map(|g| g.slug.clone())
                .collect(),
            owner: self.owners.contains(&a.account_id),
        }
    }

    /// Groups by name, with the lower-case emails of their members as Bitbucket shows them
    /// (workspace members only).
    pub fn groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        let members = self.member_ids();
        self.groups
            .values()
            .map(|g| {
                let emails = g
                    .members
                    .iter()
                    .filter(|m| members.contains(*m))
                    .filter_map(|m| self.accounts.get(m))
                    .map(|a| a.email.to_lowercase())
                    .collect();
                (g.name.clone(), emails)
            })
            .collect()
    }

    /// Pending invitations, oldest first.
    pub fn invitations(&self) -> Vec<Invitation> {
        self.invitations.clone()
    }

    /// Invitations sent successfully, accepted or not.
    pub fn invitations_sent(&self) -> u64 {
        self.invitations_sent
    }

    /// Successful POST, PUT, PATCH and DELETE requests served (SCIM included).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// SCIM users by lower-case `userName`.
    pub fn scim_users(&self) -> BTreeMap<String, ScimUser> {
        self.accounts
            .values()
            .map(|a| (a.email.to_lowercase(), scim_user(a)))
            .collect()
    }

    /// SCIM groups by `displayName`, with their members' lower-case `userName`s, active or not.
    pub fn scim_groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.groups
            .values()
            .map(|g| {
                let names = g
                    .members
                    .iter()
                    .filter_map(|m| self.accounts.get(m))
                    .map(|a| a.email.to_lowercase())
                    .collect();
                (g.name.clone(), names)
            })
            .collect()
    }

    /// Account ids of the workspace's members.
    fn member_ids(&self) -> BTreeSet<String> {
        let hub = self.administration == Administration::AdminHub;
        let grants = |g: &Group| !hub || self.access.as_ref().is_none_or(|a| a.contains(&g.slug));
        let mut ids: BTreeSet<String> = self
            .groups
            .values()
            .filter(|g| grants(g))
            .flat_map(|g| g.members.iter().cloned())
            .collect();
        ids.extend(self.owners.iter().cloned());
        ids.retain(|id| self.accounts.get(id).is_some_and(|a| a.active || !hub));
        ids
    }

    /// The slug of a group named by slug or name.
    fn group_slug(&self, slug_or_name: &str) -> Option<String> {
        if self.groups.contains_key(slug_or_name) {
            return Some(slug_or_name.to_string());
        }
        self.groups
            .values()
            .find(|g| g.name == slug_or_name)
            .map(|g| g.slug.clone())
    }

    /// Where links point: the public URL, else the request's host.
    fn base(&self, req: &Req) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", req.header("host").unwrap_or("127.0.0.1")))
    }
}

fn scim_user(a: &Account) -> ScimUser {
    ScimUser {
        id: a.scim_id.clone(),
        account_id: a.account_id.clone(),
        user_name: a.email.clone(),
        display_name: a.display_name.clone(),
        email: a.email.clone(),
        given_name: a.given_name.clone(),
        family_name: a.family_name.clone(),
        active: a.active,
    }
}

/// A group's slug as Bitbucket derives it: lower case, spaces as dashes.
fn slugify(name: &str) -> String {
    name.trim().to_lowercase().replace(char::is_whitespace, "-")
}

/// Given and family names from a display name (the last word is the family name).
fn split_name(display: &str) -> (String, String) {
    match display.trim().rsplit_once(' ') {
        Some((given, family)) => (given.to_string(), family.to_string()),
        None => (display.trim().to_string(), String::new()),
    }
}

/// A running Bitbucket Cloud simulator; stops when dropped.
pub type CloudSim = kit::Sim<CloudState>;

type Shared = Arc<Mutex<CloudState>>;

use kit::sim::lock;

impl kit::SimState for CloudState {
    const VENDOR: &'static str = "Bitbucket Cloud";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        let (faults, meter, invitation_meter) = {
            let s = lock(&state);
            (s.faults.clone(), s.meter.clone(), s.invitation_meter.clone())
        };
        let vendor: Arc<dyn Vendor> = Arc::new(Cloud);
        // The last layer added is the outermost: a call is metered by the hourly pool (every
        // authenticated call is), then by the invitation limit, then faulted, as Bitbucket
        // meters calls before it serves them.
        Router::new()
            .fallback(dispatch)
            .with_state(state)
            .layer(faults.layer(vendor.clone()))
            .layer(invitation_meter.layer(Arc::new(InvitationLimit), no_meter_headers))
            .layer(meter.layer(vendor, meter_headers))
    }
}

async fn dispatch(State(state): State<Shared>, req: Req) -> Response {
    let mut s = lock(&state);
    let answer = s.handle(&req);
    let write = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
    if write && answer.status().is_success() {
        s.writes += 1;
    }
    answer
}

impl CloudState {
    fn handle(&mut self, req: &Req) -> Response {
        match req.segments.first().map(String::as_str) {
            Some("scim") => scim::handle(self, req),
            Some("status") if req.segments.len() == 1 => kit::errors::json(StatusCode::OK, JSON, &json!({"ok": true})),
            _ => routes::handle(self, req),
        }
    }
}

/// `X-RateLimit-Limit` on every answer the meter let through, `X-RateLimit-NearLimit` when less
/// than a fifth of the window is left.
fn meter_headers(answer: &mut Response, m: &Metered) {
    let h = answer.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(m.limit));
    h.insert("x-ratelimit-resource", HeaderValue::from_static(RESOURCE_API));
    if m.near_limit() {
        h.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
    }
}

/// Bitbucket Cloud's answers for the kit.
struct Cloud;

impl Vendor for Cloud {
    fn error(&self, req: &Parts, status: StatusCode) -> Response {
        if req.uri.path().starts_with("/scim/") {
            return scim::error(status, None, &injected_message(status));
        }
        match status {
            StatusCode::TOO_MANY_REQUESTS => cloud_error(status, RATE_LIMITED, None),
            StatusCode::UNAUTHORIZED => unauthorised(),
            _ => cloud_error(status, &injected_message(status), None),
        }
    }

    fn expired_token(&self, req: &Parts) -> Response {
        if req.uri.path().starts_with("/scim/") {
            return scim::error(StatusCode::UNAUTHORIZED, None, "The API key is invalid or expired.");
        }
        unauthorised()
    }

    fn rate_limited(&self, _: &Parts, limit: &RateLimited) -> Response {
        let mut r = cloud_error(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED, None);
        let h = r.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(limit.capacity));
        h.insert("x-ratelimit-resource", HeaderValue::from_static(RESOURCE_API));
        h.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
        r
    }
}

/// Atlassian documents no headers for the invitation limit on calls it lets through: those
/// carry the hourly pool's alone.
fn no_meter_headers(_: &mut Response, _: &Metered) {}

/// Bitbucket Cloud's answers when the limit on sending invitations refuses a call: its 429
/// names its own resource; anything else answers as [`Cloud`].
struct InvitationLimit;

impl Vendor for InvitationLimit {
    fn error(&self, req: &Parts, status: StatusCode) -> Response {
        Cloud.error(req, status)
    }

    fn expired_token(&self, req: &Parts) -> Response {
        Cloud.expired_token(req)
    }

    fn rate_limited(&self, _: &Parts, limit: &RateLimited) -> Response {
        let mut r = cloud_error(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED, None);
        let h = r.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(limit.capacity));
        h.insert("x-ratelimit-resource", HeaderValue::from_static(RESOURCE_INVITATIONS));
        r
    }
}

fn injected_message(status: StatusCode) -> String {
    format!("Injected fault: {}", status.canonical_reason().unwrap_or("error"))
}

/// Bitbucket Cloud's error body: `{"type":"error","error":{"message","detail"?}}`.
fn cloud_error(status: StatusCode, message: &str, detail: Option<&str>) -> Response {
    let mut error = json!({"message": message});
    if let Some(d) = detail {
        error["detail"] = Value::from(d);
    }
    kit::errors::json(status, JSON, &json!({"type": "error", "error": error}))
}

fn unauthorised() -> Response {
    let mut r = cloud_error(
        StatusCode::UNAUTHORIZED,
        "Invalid credentials",
        Some(
            "Authenticate with your Bitbucket username and an app password, or your Atlassian account email and an API token.",
        ),
    );
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"Bitbucket.org HTTP\""),
    );
    r
}
