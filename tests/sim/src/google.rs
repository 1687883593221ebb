//! A Google Workspace Admin SDK Directory API simulator: the reads Roster's `google` connector
//! makes (users, groups, group members) and Google's OAuth 2.0 token endpoint for service
//! accounts with domain-wide delegation, following Google's published contract
//! (`shared/specs/google-admin.directory_v1.discovery.json`, vendor-apis.md §6):
//!
//! - the token endpoint takes only the JWT-bearer grant (RFC 7523 §2.1) and checks the
//!   assertion as Google does: RS256 signed with a key registered for the service account
//!   (`iss`), `aud` the token endpoint, at most an hour long, a `scope`, and — with `sub` — that
//!   the service account's client id is delegated every scope asked for
//!   (`unauthorized_client` otherwise) and `sub` is a user of the account; its errors are
//!   OAuth's `{"error","error_description"}` in Google's words;
//! - `users`, `groups` and `groups/{groupKey}/members` by `customer` (`my_customer` or the
//!   customer id) or `domain`, a subset of the `query` syntax, `maxResults` up to the documented
//!   maxima (refused beyond them), `pageToken` in and `nextPageToken` out (sealed keyed cursors:
//!   items are ordered by id, so edits between pages neither duplicate nor skip others), list
//!   members omitted when a page is empty, `directMembersCount` as a string,
//!   `includeDerivedMembership`;
//! - scopes (403 `insufficientPermissions`), the impersonated user's admin role (403
//!   `forbidden`, "Not Authorized to access this resource/api"), quota refusals as 403
//!   `userRateLimitExceeded` (or 429 `rateLimitExceeded`), all in Google's error document
//!   `{"error":{"code","message","errors":[{"message","domain","reason"}],"status"}}`;
//! - the kit's faults ([`GoogleState::faults`]) and rate limit ([`GoogleState::set_quota`]).
//!
//! Paths: the API under `/admin/directory/v1`, tokens at `/token`.

mod routes;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::kit::sim::lock;
use crate::kit::{self, Fault, Faults, Outcome, RateLimited, RouteMatch, Sealer, Throttle, Vendor};

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/token";
/// The Directory API's path.
pub const API_PATH: &str = "/admin/directory/v1";
/// The content type of Google's JSON answers.
const JSON: &str = "application/json; charset=UTF-8";
/// The JWT-bearer grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Read users.
pub const USER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
/// Read groups and members.
pub const GROUP_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";
/// Read members only.
pub const MEMBER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.member.readonly";
/// Google's message for a 403 to a user who is not an admin allowed to read.
pub const NOT_AUTHORIZED: &str = "Not Authorized to access this resource/api";

/// A user.
#[derive(Clone, Debug)]
pub struct GoogleUser {
    /// The immutable id (21 digits).
    pub id: String,
    /// `primaryEmail`.
    pub primary_email: String,
    /// `name.givenName`.
    pub given_name: String,
    /// `name.familyName`.
    pub family_name: String,
    /// `suspended`.
    pub suspended: bool,
    /// `archived`.
    pub archived: bool,
    /// `orgUnitPath`.
    pub org_unit_path: String,
    /// The resource's ETag, changed by every edit.
    pub etag: String,
}

/// A group.
#[derive(Clone, Debug)]
pub struct GoogleGroup {
    /// The immutable id.
    pub id: String,
    /// `email`.
    pub email: String,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// The resource's ETag, changed by edits of the group itself (not of its members).
    pub etag: String,
}

/// What a member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberType {
    /// A user.
    User,
    /// A nested group.
    Group,
}

/// A service account: its keys and the client id domain-wide delegation names it by.
#[derive(Clone)]
struct ServiceAccount {
    client_id: String,
    /// `private_key_id` → public key (`None`: unreadable, every assertion then fails).
    keys: Vec<(String, Option<jsonwebtoken::DecodingKey>)>,
}

/// An issued access token.
#[derive(Clone, Debug)]
struct IssuedToken {
    scopes: BTreeSet<String>,
    /// The user it acts as; `None` without delegation (the service account itself).
    sub: Option<String>,
    expires: Instant,
}

/// How a spent quota is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuotaAnswer {
    /// 403 `userRateLimitExceeded`, the Directory API's usual answer.
    #[default]
    Forbidden,
    /// 429 `rateLimitExceeded` (`RESOURCE_EXHAUSTED`).
    TooManyRequests,
}

/// The whole simulated account.
pub struct GoogleState {
    customer_id: String,
    domain: String,
    sealer: Sealer,
    users: BTreeMap<String, GoogleUser>,
    groups: BTreeMap<String, GoogleGroup>,
    /// group → member id → type.
    members: HashMap<String, BTreeMap<String, MemberType>>,
    /// Admins allowed to read users and groups (by email); other users are refused 403.
    admins: BTreeSet<String>,
    service_accounts: BTreeMap<String, ServiceAccount>,
    /// Domain-wide delegation: client id → scopes.
    delegation: BTreeMap<String, BTreeSet<String>>,
    tokens: HashMap<String, IssuedToken>,
    token_lifetime: u64,
    faults: Faults,
    throttle: Throttle,
    quota_answer: QuotaAnswer,
    /// API requests still to be refused as over quota.
    quota_next: u32,
    /// Users pages still to be answered with a user missing `primaryEmail`.
    malformed_users: u32,
    /// Directory ids → Google ids.
    dir_ids: HashMap<String, String>,
    next_id: u64,
    /// Requests answered, by route label with ids replaced ("GET /admin/directory/v1/groups/{id}/members").
    pub calls: BTreeMap<String, u64>,
    /// The last API requests (method, path and decoded query), at most [`REQUEST_LOG`].
    pub requests: VecDeque<String>,
    /// Requests refused for quota.
    pub throttled: u64,
    /// Token requests answered.
    pub token_calls: u64,
}

/// How many requests [`GoogleState::requests`] keeps.
pub const REQUEST_LOG: usize = 1000;

impl std::fmt::Debug for GoogleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleState")
            .field("domain", &self.domain)
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

fn etag() -> String {
    format!("\"{:016x}{:016x}\"", kit::ids::random_u64(), kit::ids::random_u64())
}

impl GoogleState {
    /// An empty account whose primary domain is `domain`.
    pub fn new(domain: &str) -> Self {
        GoogleState {
            customer_id: "C01abc2de".into(),
            domain: domain.to_ascii_lowercase(),
            sealer: Sealer::new(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            members: HashMap::new(),
            admins: BTreeSet::new(),
            service_accounts: BTreeMap::new(),
            delegation: BTreeMap::new(),
            tokens: HashMap::new(),
            token_lifetime: 3599,
            faults: Faults::new(),
            throttle: Throttle::new(RouteMatch::prefix(API_PATH)),
            quota_answer: QuotaAnswer::default(),
            quota_next: 0,
            malformed_users: 0,
            dir_ids: HashMap::new(),
            next_id: 0,
            calls: BTreeMap::new(),
            requests: VecDeque::new(),
            throttled: 0,
            token_calls: 0,
        }
    }

    /// An account holding a sample directory: each user with `primaryEmail` the directory's
    /// email, names from its display name, suspended when the directory says inactive; each
    /// group with the directory's name and `{name}@{domain}`; memberships as the directory has
    /// them, nested groups as `GROUP` members.
    pub fn from_directory(d: &crate::directory::Directory, domain: &str) -> Self {
        let mut s = GoogleState::new(domain);
        for u in &d.users {
            let (given, family) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
            let id = s.add_user(&u.email, given, family);
            if !u.active {
                s.update_user(&id, |x| x.suspended = true);
            }
            s.dir_ids.insert(u.id.clone(), id);
        }
        for g in &d.groups {
            let id = s.add_group(&g.name, &format!("{}@{domain}", g.name));
            s.dir_ids.insert(g.id.clone(), id);
        }
        for m in &d.memberships {
            let (Some(g), Some(member)) = (s.dir_ids.get(&m.group).cloned(), s.dir_ids.get(&m.member).cloned()) else {
                continue;
            };
            let kind = if m.member_is_group {
                MemberType::Group
            } else {
                MemberType::User
            };
            s.add_member(&g, &member, kind);
        }
        s
    }

    fn new_id(&mut self, prefix: char, width: usize) -> String {
        self.next_id += 1;
        format!("{prefix}{:0width$}", self.next_id, width = width)
    }

    /// The Google id of directory user or group `dir_id`.
    pub fn id_of(&self, dir_id: &str) -> String {
        self.dir_ids.get(dir_id).cloned().unwrap_or_default()
    }

    /// Adds a user; its id.
    pub fn add_user(&mut self, email: &str, given: &str, family: &str) -> String {
        let id = self.new_id('1', 20);
        self.users.insert(
            id.clone(),
            GoogleUser {
                id: id.clone(),
                primary_email: email.to_string(),
                given_name: given.to_string(),
                family_name: family.to_string(),
                suspended: false,
                archived: false,
                org_unit_path: "/".into(),
                etag: etag(),
            },
        );
        id
    }

    /// Edits a user (a new ETag).
    pub fn update_user(&mut self, id: &str, f: impl FnOnce(&mut GoogleUser)) {
        if let Some(u) = self.users.get_mut(id) {
            f(u);
            u.etag = etag();
        }
    }

    /// Deletes a user and its memberships.
    pub fn delete_user(&mut self, id: &str) {
        self.users.remove(id);
        for m in self.members.values_mut() {
            m.remove(id);
        }
    }

    /// A user by id.
    pub fn user(&self, id: &str) -> Option<&GoogleUser> {
        self.users.get(id)
    }

    /// Adds a group; its id.
    pub fn add_group(&mut self, name: &str, email: &str) -> String {
        let id = self.new_id('0', 14);
        self.groups.insert(
            id.clone(),
            GoogleGroup {
                id: id.clone(),
                email: email.to_string(),
                name: name.to_string(),
                description: String::new(),
                etag: etag(),
            },
        );
        id
    }

    /// Edits a group (a new ETag).
    pub fn update_group(&mut self, id: &str, f: impl FnOnce(&mut GoogleGroup)) {
        if let Some(g) = self.groups.get_mut(id) {
            f(g);
            g.etag = etag();
        }
    }

    /// Deletes a group, its members and its memberships in other groups.
    pub fn delete_group(&mut self, id: &str) {
        self.groups.remove(id);
        self.members.remove(id);
        for m in self.members.values_mut() {
            m.remove(id);
        }
    }

    /// Makes `member` a direct member of group `group` (its ETag stays).
    pub fn add_member(&mut self, group: &str, member: &str, kind: MemberType) {
        self.members
            .entry(group.to_string())
            .or_default()
            .insert(member.to_string(), kind);
    }

    /// Ends `member`'s direct membership of `group`.
    pub fn remove_member(&mut self, group: &str, member: &str) {
        if let Some(m) = self.members.get_mut(group) {
            m.remove(member);
        }
    }

    /// Makes the user `email` an admin who may read users and groups (or not).
    pub fn set_admin(&mut self, email: &str, admin: bool) {
        if admin {
            self.admins.insert(email.to_ascii_lowercase());
        } else {
            self.admins.remove(&email.to_ascii_lowercase());
        }
    }

    /// Registers service account `email` (with `client_id`, its unique id) and its public key
    /// `public_pem` under `key_id`.
    pub fn add_service_account(&mut self, email: &str, client_id: &str, key_id: &str, public_pem: &str) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()).ok();
        let sa = self
            .service_accounts
            .entry(email.to_string())
            .or_insert_with(|| ServiceAccount {
                client_id: client_id.to_string(),
                keys: Vec::new(),
            });
        sa.keys.push((key_id.to_string(), key));
    }

    /// Domain-wide delegation: the client id may act for users of the account with `scopes`
    /// (replacing what it had); no scopes removes it.
    pub fn delegate(&mut self, client_id: &str, scopes: &[&str]) {
        if scopes.is_empty() {
            self.delegation.remove(client_id);
        } else {
            self.delegation
                .insert(client_id.to_string(), scopes.iter().map(|s| s.to_string()).collect());
        }
    }

    /// The account's customer id (`C0…`).
    pub fn customer_id(&self) -> &str {
        &self.customer_id
    }

    /// Limits API requests to `per_second` with bursts of `capacity`; beyond, quota refusals.
    pub fn set_quota(&mut self, per_second: f64, capacity: u32) {
        self.throttle.limit(per_second, capacity);
    }

    /// How quota refusals are answered.
    pub fn set_quota_answer(&mut self, answer: QuotaAnswer) {
        self.quota_answer = answer;
    }

    /// The next `n` API requests are refused as over quota.
    pub fn quota_next(&mut self, n: u32) {
        self.quota_next = self.quota_next.saturating_add(n);
    }

    /// The next users page lists a user without `primaryEmail`.
    pub fn malform_next_users_page(&mut self) {
        self.malformed_users += 1;
    }

    /// The next `n` requests whose path and decoded query contain `part` are answered `status`
    /// with Google's error document.
    pub fn fail_next(&mut self, n: u32, part: &str, status: u16) {
        self.faults.fail_next(n, part, Fault::status(status));
    }

    /// The fault rules applied to its requests, tokens included.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Invalidates every access token issued so far.
    pub fn expire_access_tokens(&mut self) {
        self.tokens.clear();
    }

    /// API requests answered (token and throttled requests excluded).
    pub fn api_calls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.contains(API_PATH))
            .map(|(_, v)| v)
            .sum()
    }

    /// An access token for `scopes` acting as `sub`, as the token endpoint would grant it: for
    /// tests that call the API directly.
    pub fn grant_token(&mut self, scopes: &[&str], sub: &str) -> String {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        self.issue_token(scopes, Some(sub.to_string())).0
    }

    fn issue_token(&mut self, scopes: BTreeSet<String>, sub: Option<String>) -> (String, u64) {
        let token = format!("ya29.{:016x}{:016x}", kit::ids::random_u64(), kit::ids::random_u64());
        let lifetime = self.token_lifetime;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                scopes,
                sub,
                expires: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        (token, lifetime)
    }
}

/// A running Google simulator; stops when dropped.
pub type GoogleSim = kit::Sim<GoogleState>;

impl GoogleSim {
    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }

    /// The state, locked.
    pub fn state(&self) -> std::sync::MutexGuard<'_, GoogleState> {
        self.lock()
    }
}

type Shared = Arc<Mutex<GoogleState>>;

impl kit::SimState for GoogleState {
    const VENDOR: &'static str = "Google";

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn router(state: Shared) -> Router {
        let (faults, throttle) = {
            let s = lock(&state);
            (s.faults.clone(), s.throttle.clone())
        };
        let vendor: Arc<dyn Vendor> = Arc::new(Google { state: state.clone() });
        Router::new()
            .fallback(routes::dispatch)
            .with_state(state.clone())
            .layer(faults.layer(vendor.clone()))
            .layer(throttle.layer(vendor))
            .layer(kit::observe(move |method, uri, answer| {
                count(&state, method, uri, answer)
            }))
    }
}

/// A route's label for the counters: group and member keys replaced by `{id}`.
fn label(method: &Method, path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let shown: Vec<&str> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| if i > 0 && segs[i - 1] == "groups" { "{id}" } else { s })
        .collect();
    format!("{method} /{}", shown.join("/"))
}

fn count(state: &Shared, method: &Method, uri: &Uri, answer: &Response) {
    let outcome = Outcome::of(answer);
    let mut s = lock(state);
    let path = uri.path();
    if path == TOKEN_PATH {
        s.token_calls += 1;
    }
    if outcome == Outcome::RateLimited || answer.extensions().get::<kit::Throttled>().is_some() {
        s.throttled += 1;
        return;
    }
    *s.calls.entry(label(method, path)).or_default() += 1;
}

/// Google's canonical status names.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// Google's error document.
pub fn google_error(status: StatusCode, message: &str, reason: &str) -> Response {
    let domain = if reason.contains("RateLimit") || reason == "rateLimitExceeded" {
        "usageLimits"
    } else {
        "global"
    };
    kit::errors::json(
        status,
        JSON,
        &json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": status_name(status),
        }}),
    )
}

/// A quota refusal in the configured shape.
fn quota_refusal(answer: QuotaAnswer) -> Response {
    match answer {
        QuotaAnswer::Forbidden => google_error(
            StatusCode::FORBIDDEN,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com'.",
            "userRateLimitExceeded",
        ),
        QuotaAnswer::TooManyRequests => google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'admin.googleapis.com'.",
            "rateLimitExceeded",
        ),
    }
}

/// An OAuth error of the token endpoint.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    kit::errors::json(status, JSON, &json!({"error": error, "error_description": description}))
}

/// Google's answers for the kit.
struct Google {
    state: Shared,
}

impl Vendor for Google {
    fn error(&self, req: &Parts, status: StatusCode) -> Response {
        if req.uri.path() == TOKEN_PATH {
            return oauth_error(status, "internal_failure", "Internal error encountered.");
        }
        let (message, reason) = match status.as_u16() {
            400 => ("Bad Request", "badRequest"),
            401 => ("Invalid Credentials", "authError"),
            403 => (NOT_AUTHORIZED, "forbidden"),
            404 => ("Resource Not Found", "notFound"),
            429 => return quota_refusal(QuotaAnswer::TooManyRequests),
            503 => ("The service is currently unavailable.", "backendError"),
            _ => ("Internal error encountered.", "backendError"),
        };
        google_error(status, message, reason)
    }

    fn expired_token(&self, req: &Parts) -> Response {
        self.error(req, StatusCode::UNAUTHORIZED)
    }

    fn rate_limited(&self, _: &Parts, _: &RateLimited) -> Response {
        quota_refusal(lock(&self.state).quota_answer)
    }
}

/// A user as the API writes it.
fn user_json(u: &GoogleUser, customer: &str) -> Value {
    let full = format!("{} {}", u.given_name, u.family_name).trim().to_string();
    json!({
        "kind": "admin#directory#user",
        "id": u.id,
        "etag": u.etag,
        "primaryEmail": u.primary_email,
        "name": {"givenName": u.given_name, "familyName": u.family_name, "fullName": full},
        "isAdmin": false,
        "isDelegatedAdmin": false,
        "creationTime": "2024-01-15T09:30:00.000Z",
        "agreedToTerms": true,
        "suspended": u.suspended,
        "archived": u.archived,
        "changePasswordAtNextLogin": false,
        "ipWhitelisted": false,
        "emails": [{"address": u.primary_email, "primary": true}],
        "customerId": customer,
        "orgUnitPath": u.org_unit_path,
        "isMailboxSetup": true,
        "includeInGlobalAddressList": true,
    })
}

/// Answers of the simulator's own state that tests read.
impl GoogleState {
    /// Members of a group (direct), for assertions.
    pub fn members_of(&self, group: &str) -> Vec<(String, MemberType)> {
        self.members
            .get(group)
            .into_iter()
            .flatten()
            .map(|(m, t)| (m.clone(), *t))
            .collect()
    }
}
