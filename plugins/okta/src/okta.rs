//! Okta's Management API over the host's `http` import: the credentials, one page of a
//! listing (`Link: <…>; rel="next"`, kept on org_url), and Okta's errors turned into messages
//! that say which token, scope, role or setting to fix.

use std::time::SystemTime;

use roster_sdk::errors::{classify_status_with, error_detail};
use roster_sdk::http::{Transport, url_with_query};
use roster_sdk::oauth::{ClientCredentials, refusal_code};
use roster_sdk::paging::{LoopGuard, next_link, within};
use roster_sdk::{PluginError, Request, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::settings::{AuthKind, Settings};

/// What a request reads: named in messages, and deciding which OAuth scope and admin role it
/// needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// `/api/v1/users`.
    Users,
    /// `/api/v1/groups`, `/api/v1/groups/{id}`.
    Groups,
    /// `/api/v1/groups/{id}/users`.
    Members(String),
    /// `/api/v1/apps/{id}` and its assignments.
    App(String),
}

impl Listing {
    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Listing::Users => "list users".into(),
            Listing::Groups => "list groups".into(),
            Listing::Members(g) => format!("list the members of group {g}"),
            Listing::App(a) => format!("read application {a} and its assignments"),
        }
    }

    /// The OAuth scope a service app needs for it.
    pub fn oauth_scope(&self) -> &'static str {
        match self {
            Listing::Users => "okta.users.read",
            Listing::Groups | Listing::Members(_) => "okta.groups.read",
            Listing::App(_) => "okta.apps.read",
        }
    }
}

/// One page of a listing.
#[derive(Debug)]
pub struct Listed<T> {
    /// The objects on it.
    pub items: Vec<T>,
    /// The next page, from the `Link` header (checked to stay on org_url).
    pub next: Option<String>,
    /// The answer's `Date`: Okta's clock.
    pub date: Option<SystemTime>,
}

/// Okta's error document.
#[derive(Debug, Default, Deserialize)]
pub struct OktaError {
    /// `E0000011`, …
    #[serde(rename = "errorCode", default)]
    pub code: String,
    /// What went wrong.
    #[serde(rename = "errorSummary", default)]
    pub summary: String,
    /// Details (a search's parse error).
    #[serde(rename = "errorCauses", default)]
    pub causes: Vec<OktaCause>,
}

/// One of `errorCauses`.
#[derive(Debug, Default, Deserialize)]
pub struct OktaCause {
    /// The cause.
    #[serde(rename = "errorSummary", default)]
    pub summary: String,
}

/// The admin role whose read access covers everything Roster reads.
pub const ADMIN_ROLE: &str = "Read-only Administrator";

/// Okta for one source's settings over one transport.
pub struct Okta<'a> {
    /// The settings.
    pub s: &'a Settings,
    t: &'a dyn Transport,
    creds: Option<ClientCredentials>,
}

impl<'a> Okta<'a> {
    /// A client for these settings.
    pub fn new(s: &'a Settings, t: &'a dyn Transport) -> Self {
        Okta {
            s,
            t,
            creds: s.credentials(&s.oauth_scopes()),
        }
    }

    /// The transport (for `check`'s token probes).
    pub fn transport(&self) -> &'a dyn Transport {
        self.t
    }

    /// `{org_url}{path}?{query}`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        url_with_query(&format!("{}{path}", self.s.org_url), query)
    }

    /// How a message names a page: the connector, what it reads, and the URL without the org.
    pub fn what(&self, listing: &Listing, url: &str) -> String {
        let page = url.strip_prefix(&self.s.org_url).unwrap_or(url);
        format!("okta: {} (page {page})", listing.name())
    }

    /// GETs `url` (built here or a next link Okta gave, which must stay on org_url) with the
    /// source's credentials and returns the answer whatever its status.
    pub fn get(&self, url: &str, listing: &Listing) -> Result<Response, PluginError> {
        within(&self.s.org_url, url, &self.what(listing, url))?;
        let req = Request::get(url).header("accept", "application/json");
        match &self.creds {
            None => self
                .t
                .send(req.header("authorization", format!("SSWS {{{{secret:{}}}}}", self.s.api_token))),
            Some(c) => c.send(self.t, req).map_err(|e| explain_token_error(e, self.s)),
        }
    }

    /// One page of a listing; any status but 2xx is a classified error.
    pub fn page<T: DeserializeOwned>(&self, url: &str, listing: &Listing) -> Result<Listed<T>, PluginError> {
        let resp = self.get(url, listing)?;
        self.read_page(url, listing, resp)
    }

    /// One page of a listing under an object; `Ok(None)` when Okta says the object is gone
    /// (404 E0000007: a group deleted between its listing and its members' listing).
    pub fn page_opt<T: DeserializeOwned>(
        &self,
        url: &str,
        listing: &Listing,
    ) -> Result<Option<Listed<T>>, PluginError> {
        let resp = self.get(url, listing)?;
        if not_found(&resp) {
            return Ok(None);
        }
        self.read_page(url, listing, resp).map(Some)
    }

    /// One object; `Ok(None)` when Okta says it does not exist.
    pub fn object<T: DeserializeOwned>(&self, url: &str, listing: &Listing) -> Result<Option<T>, PluginError> {
        Ok(self.object_dated(url, listing)?.map(|(o, _)| o))
    }

    /// One object with the answer's `Date`; `Ok(None)` when Okta says it does not exist.
    pub fn object_dated<T: DeserializeOwned>(
        &self,
        url: &str,
        listing: &Listing,
    ) -> Result<Option<(T, Option<SystemTime>)>, PluginError> {
        let resp = self.get(url, listing)?;
        if not_found(&resp) {
            return Ok(None);
        }
        let what = self.what(listing, url);
        if !resp.is_success() {
            return Err(classify(&what, listing, &resp, url, self.s));
        }
        let date = resp.date();
        Ok(Some((resp.json(&what)?, date)))
    }

    fn read_page<T: DeserializeOwned>(
        &self,
        url: &str,
        listing: &Listing,
        resp: Response,
    ) -> Result<Listed<T>, PluginError> {
        let what = self.what(listing, url);
        if !resp.is_success() {
            return Err(classify(&what, listing, &resp, url, self.s));
        }
        let items: Vec<T> = resp.json(&what)?;
        let next = next_link(&resp);
        if let Some(n) = &next {
            within(&self.s.org_url, n, &what)?;
            // A next link that is this page again would page forever; the driver catches
            // longer loops at page ends.
            let mut guard = LoopGuard::default();
            guard.check(url)?;
            guard.check(n).map_err(|e| PluginError::Fatal(format!("{what}: {e}")))?;
        }
        Ok(Listed {
            items,
            next,
            date: resp.date(),
        })
    }
}

/// Okta's "not found" (`E0000007`), as opposed to a 404 from something in front of it.
pub fn not_found(resp: &Response) -> bool {
    resp.status == 404 && parse_error(resp).code == "E0000007"
}

fn parse_error(resp: &Response) -> OktaError {
    serde_json::from_slice(&resp.body).unwrap_or_default()
}

/// The `search` parameter of a URL, for messages about a refused search.
fn search_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "search")
        .map(|(_, v)| v.into_owned())
}

/// The scope a bearer token lacked, from `WWW-Authenticate: Bearer … error="insufficient_scope"`.
pub fn insufficient_scope(resp: &Response) -> Option<String> {
    let h = resp.header("www-authenticate")?;
    if !h.contains("insufficient_scope") {
        return None;
    }
    let at = h.find("scope=\"")? + "scope=\"".len();
    let rest = &h[at..];
    Some(rest[..rest.find('"')?].to_string())
}

/// Okta's error answer as the error the host acts on, saying what to fix.
pub fn classify(what: &str, listing: &Listing, resp: &Response, url: &str, s: &Settings) -> PluginError {
    let e = parse_error(resp);
    let detail = if e.summary.is_empty() {
        error_detail(&resp.body)
    } else if e.code.is_empty() {
        e.summary.clone()
    } else {
        format!("{}: {}", e.code, e.summary)
    };
    match (resp.status, e.code.as_str()) {
        (401, _) => match s.auth {
            AuthKind::ApiToken => PluginError::Auth(format!(
                "{what}: Okta did not accept the API token in the `{}` secret ({detail}); create a new token under Security → API → Tokens (tokens expire after 30 days unused) and store it in that secret",
                s.api_token
            )),
            AuthKind::ServiceApp => PluginError::Auth(format!(
                "{what}: Okta did not accept the service app's access token even after renewing it ({detail}); check the app is active"
            )),
        },
        (403, _) => match insufficient_scope(resp) {
            Some(scope) => PluginError::Auth(format!(
                "{what}: the service app's token lacks the scope {scope} ({detail}); grant {scope} under the app's Okta API Scopes"
            )),
            None => PluginError::Auth(format!("{what}: Okta refused ({detail}); {}", role_advice(s, listing))),
        },
        (400, "E0000031" | "E0000001") => {
            let causes: Vec<&str> = e
                .causes
                .iter()
                .map(|c| c.summary.as_str())
                .filter(|c| !c.is_empty())
                .collect();
            let causes = if causes.is_empty() {
                String::new()
            } else {
                format!(" ({})", causes.join("; "))
            };
            match search_of(url) {
                Some(search) => PluginError::Config(format!(
                    "{what}: Okta refused the search expression `{search}`: {}{causes}; correct user_search or group_search (Okta's search syntax: eq, sw, co, gt, lt, and, or)",
                    e.summary
                )),
                None => PluginError::Config(format!("{what}: Okta refused the request ({detail}){causes}")),
            }
        }
        (404, "E0000007") => PluginError::Config(format!(
            "{what}: Okta has no such object ({detail}); check the settings"
        )),
        _ => classify_status_with(what, resp, &detail),
    }
}

/// What to grant when Okta answers 403 to a listing.
pub fn role_advice(s: &Settings, listing: &Listing) -> String {
    match s.auth {
        AuthKind::ApiToken => format!(
            "the admin who created the API token needs the {ADMIN_ROLE} role (or a custom role that can view users, groups and apps) to {}",
            listing.name()
        ),
        AuthKind::ServiceApp => format!(
            "assign the {ADMIN_ROLE} role to the service app under its Admin roles tab, so it can {}",
            listing.name()
        ),
    }
}

/// The token endpoint's refusals, with what to fix in Okta.
pub fn explain_token_error(e: PluginError, s: &Settings) -> PluginError {
    let client = s.client_id.as_deref().unwrap_or_default();
    let msg = e.to_string();
    match refusal_code(&e) {
        Some("invalid_client") => PluginError::Auth(format!(
            "Okta does not accept the service app {client}'s client assertion ({msg}); check client_id, that the app uses \"Public key / Private key\" client authentication and that the public key of the `{}` key{} is registered on it",
            s.private_key,
            s.key_id.as_deref().map(|k| format!(" (kid {k})")).unwrap_or_default()
        )),
        Some("invalid_dpop_proof" | "use_dpop_nonce") => PluginError::Auth(format!(
            "the service app {client} requires DPoP ({msg}); turn off \"Require Demonstrating Proof of Possession (DPoP) header in token requests\" in the app's General settings: Roster does not send DPoP"
        )),
        Some("invalid_scope") => PluginError::Auth(format!(
            "the service app {client} was refused a scope ({msg}); grant {} under the app's Okta API Scopes",
            s.oauth_scopes().join(", ")
        )),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        roster_sdk::settings::read(&format!(r#"{{"org_url":"https://acme.okta.com"{extra}}}"#)).unwrap()
    }

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors_say_what_to_fix() {
        let s = settings("");
        let url = "https://acme.okta.com/api/v1/users?limit=1";
        let bad_token = resp(
            401,
            &[],
            r#"{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorCauses":[]}"#,
        );
        let e = classify("w", &Listing::Users, &bad_token, url, &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("Security → API → Tokens") && m.contains("E0000011")),
            "{e:?}"
        );
        let denied = resp(
            403,
            &[],
            r#"{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action"}"#,
        );
        let e = classify("w", &Listing::Groups, &denied, url, &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains(ADMIN_ROLE) && m.contains("list groups")),
            "{e:?}"
        );
        let scoped = resp(
            403,
            &[(
                "WWW-Authenticate",
                r#"Bearer authorization_uri="x", realm="IdP", scope="okta.groups.read", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.""#,
            )],
            r#"{"errorCode":"E0000006","errorSummary":"You do not have permission"}"#,
        );
        let e = classify("w", &Listing::Groups, &scoped, url, &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("grant okta.groups.read under the app's Okta API Scopes")),
            "{e:?}"
        );
        let search = resp(
            400,
            &[],
            r#"{"errorCode":"E0000031","errorSummary":"Invalid search criteria.","errorCauses":[{"errorSummary":"Invalid search expression near 'eqq'"}]}"#,
        );
        let e = classify(
            "w",
            &Listing::Users,
            &search,
            "https://acme.okta.com/api/v1/users?search=profile.x%20eqq%20%22a%22&limit=1",
            &s,
        );
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("`profile.x eqq \"a\"`") && m.contains("near 'eqq'")),
            "{e:?}"
        );
        let throttled = resp(
            429,
            &[],
            r#"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}"#,
        );
        assert!(
            matches!(classify("w", &Listing::Users, &throttled, url, &s), PluginError::Transient(m) if m.contains("E0000047"))
        );
        let missing = resp(
            404,
            &[],
            r#"{"errorCode":"E0000007","errorSummary":"Not found: Resource not found: 0oa1 (AppInstance)"}"#,
        );
        assert!(not_found(&missing));
        assert!(!not_found(&resp(404, &[], "<html>proxy</html>")));
    }

    #[test]
    fn token_refusals_name_the_console_setting() {
        let s = settings(r#","auth":"service-app","client_id":"0oa1""#);
        let refused = |code: &str| PluginError::Auth(format!("token request to x was refused (400 {code}): d"));
        let e = explain_token_error(refused("invalid_dpop_proof"), &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("Require Demonstrating Proof of Possession")),
            "{e:?}"
        );
        let e = explain_token_error(refused("invalid_client"), &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("Public key / Private key")),
            "{e:?}"
        );
        let other = PluginError::Transient("x".into());
        assert!(matches!(explain_token_error(other, &s), PluginError::Transient(_)));
    }
}
