//! The Directory API over the host's `http` import: the JWT-bearer token, one page of a
//! listing (`pageToken`), and Google's errors turned into messages that say which key,
//! delegation, scope, admin role or setting to fix.

use roster_sdk::errors::{classify_status_with, error_detail};
use roster_sdk::http::{Transport, path_segment, url_with_query};
use roster_sdk::oauth::{JwtBearer, refusal_code};
use roster_sdk::paging::LoopGuard;
use roster_sdk::{PluginError, Request, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::settings::{SCOPES, Settings};

/// The Directory API's path below the API URL.
pub const BASE_PATH: &str = "/admin/directory/v1";

/// What a request reads, named in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// `users`.
    Users,
    /// `groups`.
    Groups,
    /// `groups/{id}/members`.
    Members(String),
}

impl Listing {
    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Listing::Users => "list users".into(),
            Listing::Groups => "list groups".into(),
            Listing::Members(g) => format!("list the members of group {g}"),
        }
    }

    /// The admin privilege it needs.
    fn privilege(&self) -> &'static str {
        match self {
            Listing::Users => "Users → Read",
            Listing::Groups | Listing::Members(_) => "Groups → Read",
        }
    }
}

/// Google's error document: `{"error":{"code","message","errors":[{"reason"}],"status"}}`.
#[derive(Debug, Default, Deserialize)]
pub struct GoogleError {
    /// The error.
    #[serde(default)]
    pub error: ErrorBody,
}

/// The `error` member.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// The reasons.
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

/// One of `errors`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorItem {
    /// `forbidden`, `notFound`, `userRateLimitExceeded`, …
    #[serde(default)]
    pub reason: String,
}

impl GoogleError {
    fn of(resp: &Response) -> GoogleError {
        serde_json::from_slice(&resp.body).unwrap_or_default()
    }

    fn has_reason(&self, reasons: &[&str]) -> bool {
        self.error.errors.iter().any(|e| reasons.contains(&e.reason.as_str()))
    }
}

/// Google's quota reasons (the host backs these off first; one that reaches the connector is
/// transient).
const QUOTA_REASONS: &[&str] = &["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"];

/// The Directory API for one source's settings over one transport.
pub struct Google<'a> {
    /// The settings.
    pub s: &'a Settings,
    t: &'a dyn Transport,
    grant: JwtBearer,
}

impl<'a> Google<'a> {
    /// A client for these settings.
    pub fn new(s: &'a Settings, t: &'a dyn Transport) -> Self {
        Google {
            s,
            t,
            grant: s.grant(SCOPES),
        }
    }

    /// The transport (for `check`'s token probes).
    pub fn transport(&self) -> &'a dyn Transport {
        self.t
    }

    /// `{api_url}/admin/directory/v1{path}?{query}`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        url_with_query(&format!("{}{BASE_PATH}{path}", self.s.api_url), query)
    }

    /// The users listing's page `token` (the first without).
    pub fn users_url(&self, max: &str, token: Option<&str>) -> String {
        let (owner, value) = self.s.owner();
        let mut q = vec![(owner, value), ("maxResults", max)];
        if let Some(query) = &self.s.user_query {
            q.push(("query", query));
        }
        if let Some(t) = token {
            q.push(("pageToken", t));
        }
        self.url("/users", &q)
    }

    /// The groups listing's page `token`.
    pub fn groups_url(&self, max: &str, token: Option<&str>) -> String {
        let (owner, value) = self.s.owner();
        let mut q = vec![(owner, value), ("maxResults", max)];
        if let Some(query) = &self.s.group_query {
            q.push(("query", query));
        }
        if let Some(t) = token {
            q.push(("pageToken", t));
        }
        self.url("/groups", &q)
    }

    /// Group `group`'s members' page `token`.
    pub fn members_url(&self, group: &str, max: &str, token: Option<&str>) -> String {
        let mut q = vec![("maxResults", max)];
        if self.s.nested_groups == crate::settings::Nesting::Google {
            q.push(("includeDerivedMembership", "true"));
        }
        if let Some(t) = token {
            q.push(("pageToken", t));
        }
        self.url(&format!("/groups/{}/members", path_segment(group)), &q)
    }

    /// How a message names a page: the connector, what it reads, and the URL without the
    /// API's address.
    pub fn what(&self, listing: &Listing, url: &str) -> String {
        let page = url.strip_prefix(&self.s.api_url).unwrap_or(url);
        format!("google: {} (page {page})", listing.name())
    }

    /// GETs `url` with a token and returns the answer whatever its status.
    pub fn get(&self, url: &str) -> Result<Response, PluginError> {
        let req = Request::get(url).header("accept", "application/json");
        self.grant.send(self.t, req).map_err(|e| explain_token_error(e, self.s))
    }

    /// One page of a listing; `Ok(None)` when Google says the object listed under is gone
    /// (a group deleted between the groups listing and its members'); any other status but
    /// 2xx is a classified error.
    pub fn page<T: DeserializeOwned>(&self, url: &str, listing: &Listing) -> Result<Option<T>, PluginError> {
        let resp = self.get(url)?;
        let what = self.what(listing, url);
        if resp.status == 404 && matches!(listing, Listing::Members(_)) {
            return Ok(None);
        }
        if !resp.is_success() {
            return Err(classify(&what, listing, &resp, self.s));
        }
        resp.json(&what).map(Some)
    }
}

/// A next page token that is this page's again would page forever.
pub fn check_next(what: &str, token: Option<&str>, next: Option<&str>) -> Result<(), PluginError> {
    if let (Some(now), Some(next)) = (token, next) {
        let mut guard = LoopGuard::default();
        guard.check(now)?;
        guard
            .check(next)
            .map_err(|e| PluginError::Fatal(format!("{what}: {e}")))?;
    }
    Ok(())
}

/// Google's error answer as the error the host acts on, saying what to fix.
pub fn classify(what: &str, listing: &Listing, resp: &Response, s: &Settings) -> PluginError {
    let e = GoogleError::of(resp);
    let detail = if e.error.message.is_empty() {
        error_detail(&resp.body)
    } else {
        e.error.message.clone()
    };
    let (owner, value) = s.owner();
    match resp.status {
        401 => PluginError::Auth(format!(
            "{what}: Google did not accept the access token even after renewing it ({detail}); check that the service account {} is enabled and its key not deleted",
            s.service_account
        )),
        403 if e.has_reason(QUOTA_REASONS) => PluginError::Transient(format!(
            "{what}: Google's Directory API quota is spent ({detail}); the run goes on when it refills (raise the quota in the Google Cloud console under APIs & Services → Admin SDK API → Quotas, or schedule the source less often)"
        )),
        // Google answers a project without the Admin SDK API with a 403 too; no admin role
        // would lift it.
        403 if e.has_reason(&["accessNotConfigured"]) || detail.contains("has not been used in project") => {
            PluginError::Config(format!(
                "{what}: the Admin SDK API is not on for the service account's Google Cloud project ({detail}); enable the Admin SDK API in the Google Cloud console (APIs & Services → Library → Admin SDK API) for the project of {}, wait a few minutes, and check again",
                s.service_account
            ))
        }
        403 if e.has_reason(&["insufficientPermissions"]) || detail.contains("insufficient authentication scopes") => {
            PluginError::Auth(format!(
                "{what}: the token lacks a scope ({detail}); in the Admin console under Security → Access and data control → API controls → Domain-wide delegation, give the service account's client id the scopes {}",
                SCOPES.join(",")
            ))
        }
        403 => PluginError::Auth(format!(
            "{what}: Google refused ({detail}); {}",
            admin_advice(s, listing)
        )),
        400 if s.user_query.is_some() && *listing == Listing::Users => PluginError::Config(format!(
            "{what}: Google refused the users query `{}` ({detail}); correct user_query (Directory search syntax, e.g. orgUnitPath=/Engineering or isSuspended=false)",
            s.user_query.as_deref().unwrap_or_default()
        )),
        400 if s.group_query.is_some() && *listing == Listing::Groups => PluginError::Config(format!(
            "{what}: Google refused the groups query `{}` ({detail}); correct group_query (Directory search syntax, e.g. email:eng*)",
            s.group_query.as_deref().unwrap_or_default()
        )),
        400 | 404 if matches!(listing, Listing::Users | Listing::Groups) => PluginError::Config(format!(
            "{what}: Google does not know the {owner} `{value}` ({detail}); write customer = \"my_customer\" (the admin's own account), the customer id from Account → Account settings, or a domain of the account"
        )),
        _ => classify_status_with(what, resp, &detail),
    }
}

/// What to grant when Google answers 403 to a listing: the impersonated user's admin role.
pub fn admin_advice(s: &Settings, listing: &Listing) -> String {
    format!(
        "the admin Roster acts as, {}, needs an admin role with the {} privilege (Admin console → Account → Admin roles; or make it a super admin) to {}",
        s.admin_email,
        listing.privilege(),
        listing.name()
    )
}

/// The token endpoint's refusals, with what to fix at Google.
pub fn explain_token_error(e: PluginError, s: &Settings) -> PluginError {
    let msg = match &e {
        PluginError::Auth(m) | PluginError::Config(m) | PluginError::Transient(m) | PluginError::Fatal(m) => m.clone(),
        other => other.to_string(),
    };
    let sa = &s.service_account;
    match refusal_code(&e) {
        Some("invalid_grant") if msg.contains("Invalid JWT Signature") => PluginError::Auth(format!(
            "Google refused the service account {sa}'s key ({msg}): the key in the `{}` secret is not (or no longer) one of its keys; create a new JSON key under IAM & Admin → Service accounts → {sa} → Keys and store that file in the secret",
            s.private_key
        )),
        Some("invalid_grant") if msg.contains("Invalid email or User ID") => PluginError::Auth(format!(
            "Google does not know admin_email {} ({msg}): write a user of the Workspace account with an admin role",
            s.admin_email
        )),
        Some("invalid_grant") => PluginError::Auth(format!(
            "Google refused the service account {sa}'s assertion ({msg}); check that the `{}` secret holds a current key of {sa}, that admin_email {} is a user of the account, and that this machine's clock is right",
            s.private_key, s.admin_email
        )),
        Some("unauthorized_client" | "access_denied") => PluginError::Auth(format!(
            "the service account {sa} may not act as {} ({msg}): in the Admin console under Security → Access and data control → API controls → Domain-wide delegation, add its client id (the service account's Unique ID) with the scopes {}",
            s.admin_email,
            SCOPES.join(",")
        )),
        Some("invalid_client") => PluginError::Auth(format!(
            "Google does not know the service account {sa} ({msg}): check service_account, and that the account is not disabled or deleted (IAM & Admin → Service accounts)"
        )),
        _ => e,
    }
}
