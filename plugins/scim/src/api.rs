//! A SCIM 2.0 service over the host's `http` import: authenticated GETs, one
//! `startIndex`/`count` page of a listing, and the service's SCIM errors (RFC 7644 §3.12) turned
//! into messages that name the error and what to fix.

use roster_scim::{ListResponse, ScimError, ScimType};
use roster_sdk::errors::{classify_status_with, error_detail};
use roster_sdk::http::{Transport, path_segment, url_with_query};
use roster_sdk::paging::{Offset, Taken};
use roster_sdk::{PluginError, Request, Response};
use serde_json::Value;

use crate::settings::{Auth, Credentials, Members, Settings};

/// What a request reads: named in messages and deciding which setting a 400 points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// `/ServiceProviderConfig`.
    Config,
    /// `/Users`.
    Users,
    /// `/Groups`.
    Groups,
    /// `/Groups/{id}`: one group, for its members.
    Group(String),
}

impl Listing {
    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Listing::Config => "read /ServiceProviderConfig".into(),
            Listing::Users => "list users".into(),
            Listing::Groups => "list groups".into(),
            Listing::Group(id) => format!("read group {id}"),
        }
    }

    /// The path under the base URL.
    pub fn path(&self) -> String {
        match self {
            Listing::Config => "/ServiceProviderConfig".into(),
            Listing::Users => "/Users".into(),
            Listing::Groups => "/Groups".into(),
            Listing::Group(id) => format!("/Groups/{}", path_segment(id)),
        }
    }

    /// The setting whose filter the listing sends.
    fn filter_setting(&self) -> Option<&'static str> {
        match self {
            Listing::Users => Some("user_filter"),
            Listing::Groups => Some("group_filter"),
            _ => None,
        }
    }
}

/// One page as read: the resources not read before, where the next starts, and the total.
pub struct Page {
    /// The resources taken (those read on the page before removed).
    pub taken: Taken<Value>,
    /// `totalResults`.
    pub total: u64,
    /// How messages name the page.
    pub what: String,
}

/// A SCIM service for one source's settings over one transport.
pub struct Scim<'a> {
    /// The settings.
    pub s: &'a Settings,
    t: &'a dyn Transport,
    creds: Credentials,
}

impl<'a> Scim<'a> {
    /// A client for these settings.
    pub fn new(s: &'a Settings, t: &'a dyn Transport) -> Self {
        Scim {
            s,
            t,
            creds: s.credentials(),
        }
    }

    /// GETs `url` with the source's credentials: the bearer token's placeholder, or an OAuth
    /// token (renewed once on a 401).
    pub fn get(&self, url: &str) -> Result<Response, PluginError> {
        let req = Request::get(url).header("accept", "application/scim+json, application/json");
        match &self.creds {
            Credentials::OAuth(c) => c.send(self.t, req),
            Credentials::Bearer(token) => self
                .t
                .send(req.header("authorization", format!("Bearer {{{{secret:{token}}}}}"))),
        }
    }

    /// The URL of a listing's page: `startIndex` is 1-based, `first` 0-based.
    pub fn url(&self, listing: &Listing, first: u64, count: u32) -> String {
        let (start, count) = ((first + 1).to_string(), count.to_string());
        let mut q: Vec<(&str, &str)> = vec![("startIndex", &start), ("count", &count)];
        let filter = match listing {
            Listing::Users => self.s.users_filter(),
            Listing::Groups => self.s.group_filter.clone(),
            _ => None,
        };
        if let Some(f) = &filter {
            q.push(("filter", f));
        }
        let attributes = match listing {
            Listing::Users => self.s.user_attributes(),
            _ => None,
        };
        if let Some(a) = &attributes {
            q.push(("attributes", a));
        }
        if let (Listing::Groups, Members::Skip) = (listing, self.s.members) {
            q.push(("excludedAttributes", "members"));
        }
        url_with_query(&format!("{}{}", self.s.base_url, listing.path()), &q)
    }

    /// How a message names a request: the connector, what it reads, and the URL without the
    /// server.
    pub fn what(&self, listing: &Listing, url: &str) -> String {
        let page = url.strip_prefix(&self.s.base_url).unwrap_or(url);
        format!("scim: {} (page {page})", listing.name())
    }

    /// GETs `url` and reads its JSON body; errors are the service's, explained.
    pub fn read(&self, listing: &Listing, url: &str) -> Result<Value, PluginError> {
        let what = self.what(listing, url);
        let resp = self.get(url)?;
        if !resp.is_success() {
            return Err(classify(&what, listing, &resp, self.s));
        }
        resp.json(&what)
    }

    /// Group `id` by itself (for its members); `Ok(None)` when the service says it is gone
    /// (deleted since it was listed: it has no members to read).
    pub fn group(&self, id: &str) -> Result<Option<Value>, PluginError> {
        let listing = Listing::Group(id.to_string());
        let url = format!("{}{}", self.s.base_url, listing.path());
        let what = self.what(&listing, &url);
        let resp = self.get(&url)?;
        match resp.status {
            404 => Ok(None),
            _ if resp.is_success() => resp.json(&what).map(Some),
            _ => Err(classify(&what, &listing, &resp, self.s)),
        }
    }

    /// One page of `listing` from `at`.
    pub fn page(&self, listing: &Listing, at: &Offset) -> Result<Page, PluginError> {
        let size = self.s.page_size;
        let (first, count) = at.query(size);
        let url = self.url(listing, first, count);
        let what = self.what(listing, &url);
        let body = self.read(listing, &url)?;
        let list = ListResponse::parse(&body).map_err(|e| malformed(&what, &e))?;
        for (i, r) in list.resources.iter().enumerate() {
            if r.get("id").and_then(Value::as_str).is_none() {
                return Err(PluginError::Fatal(format!(
                    "{what}: Resources[{i}] has no `id` (a string); the service's answer is not a SCIM list"
                )));
            }
        }
        let total = list.total_results;
        let taken = at.take_counted(size, list.resources, resource_id, &what, total)?;
        Ok(Page { taken, total, what })
    }
}

/// A resource's `id` (checked present by [`Scim::page`]).
fn resource_id(r: &Value) -> &str {
    r.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// A page or resource that is JSON but not the SCIM the connector expects.
pub fn malformed(what: &str, e: &ScimError) -> PluginError {
    PluginError::Fatal(format!(
        "{what}: the service's answer is not valid SCIM ({}); it may not be a SCIM 2.0 service, or it has a bug",
        e.detail
    ))
}

/// The error a service answered, as `SCIM 400 (InvalidFilter): …`, or the plain detail when the
/// body is not a SCIM error (a proxy's page).
pub fn scim_error(resp: &Response) -> String {
    serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| ScimError::from_json(&v))
        .map(|e| e.to_string())
        .unwrap_or_else(|| error_detail(&resp.body))
}

/// The service's error answer as the error the host acts on, saying what to fix.
pub fn classify(what: &str, listing: &Listing, resp: &Response, s: &Settings) -> PluginError {
    let detail = scim_error(resp);
    let parsed = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| ScimError::from_json(&v));
    let credential = match &s.auth {
        Auth::Bearer { token } => format!("the bearer token in the `{token}` secret"),
        Auth::ClientCredentials { client_id, .. } => format!("the OAuth token of client `{client_id}`"),
    };
    match resp.status {
        400 if parsed.as_ref().and_then(|e| e.scim_type) == Some(ScimType::InvalidFilter) => {
            let setting = listing.filter_setting().unwrap_or("the filter");
            PluginError::Config(format!(
                "{what}: the service refused the filter ({detail}); correct {setting} (RFC 7644 §3.4.2.2 syntax, attribute names the service knows)"
            ))
        }
        401 => PluginError::Auth(format!(
            "{what}: the service did not accept {credential} ({detail}); store a valid token in the secret, or check that it has not expired or been revoked"
        )),
        403 => PluginError::Auth(format!(
            "{what}: the service refused {credential} ({detail}); give it read access to Users and Groups"
        )),
        404 => PluginError::Config(format!(
            "{what}: not found ({detail}); base_url {} is not a SCIM base URL: write the one /Users and /Groups are under, e.g. https://idp.example.com/scim/v2",
            s.base_url
        )),
        _ => classify_status_with(what, resp, &detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        roster_sdk::settings::read(r#"{"base_url":"https://idp.example.com/scim/v2","user_filter":"title pr"}"#)
            .unwrap()
    }

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn urls_are_one_based_and_carry_the_filter() {
        let s = settings();
        let t = roster_sdk::http::HostTransport;
        let scim = Scim::new(&s, &t);
        assert_eq!(
            scim.url(&Listing::Users, 0, 100),
            "https://idp.example.com/scim/v2/Users?startIndex=1&count=100&filter=title%20pr"
        );
        assert_eq!(Listing::Group("a b".into()).path(), "/Groups/a%20b");
    }

    #[test]
    fn scim_errors_are_named_with_what_to_fix() {
        let s = settings();
        let bad_filter = resp(
            400,
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"invalid syntax at column 5"}"#,
        );
        let e = classify("w", &Listing::Users, &bad_filter, &s);
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("SCIM 400 (InvalidFilter): invalid syntax at column 5") && m.contains("correct user_filter")),
            "{e:?}"
        );
        let refused = resp(401, r#"{"status":"401","detail":"Authorization failure"}"#);
        let e = classify("w", &Listing::Users, &refused, &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("`token` secret") && m.contains("SCIM 401: Authorization failure")),
            "{e:?}"
        );
        let e = classify("w", &Listing::Users, &resp(403, r#"{"status":403,"detail":"no"}"#), &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("SCIM 403: no")),
            "{e:?}"
        );
        let e = classify("w", &Listing::Users, &resp(404, "<html>nope</html>"), &s);
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("not a SCIM base URL")),
            "{e:?}"
        );
        let e = classify("w", &Listing::Users, &resp(503, ""), &s);
        assert!(matches!(e, PluginError::Transient(_)), "{e:?}");
    }
}
