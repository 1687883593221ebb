//! OneLogin's API over the host's `http` import: the token, URLs kept on `api_url`, cursor paging
//! by the `After-Cursor` header, and OneLogin's errors turned into messages that say which scope
//! or setting to fix.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::SystemTime;

use roster_sdk::errors::{classify_status_with, error_detail};
use roster_sdk::http::{Transport, url_with_query};
use roster_sdk::oauth::ClientCredentials;
use roster_sdk::paging::LoopGuard;
use roster_sdk::{Level, PluginError, Request, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

/// The API credential scope Roster needs, named when OneLogin refuses. OneLogin documents
/// "Read users" (or a broader scope) as enough for every call the connector makes: users and
/// roles (API v2) and the groups listing (API v1).
pub const SCOPE: &str = "the scope \"Read users\" (the least that reads users, roles and groups; \"Manage users\", \"Read All\" and \"Manage All\" also do)";

/// The path prefix of OneLogin's API v1 (the groups listing).
pub const V1_PREFIX: &str = "/api/1/";

thread_local! {
    /// Credentials whose account's API v1 refused `Bearer <token>`: their v1 calls send
    /// `bearer:<token>` first. Kept like the SDK's token cache, for the plugin instance's life.
    static V1_COLON: RefCell<HashSet<ClientCredentials>> = RefCell::new(HashSet::new());
}

/// OneLogin documents `Authorization: bearer:<access_token>` for API v1 and answers a header of
/// another form 400 "Authorization Information is incorrect"; its generated SDKs send the
/// standard `Bearer <token>` to v1 as to v2, so v1 may take both.
fn refuses_authorization_form(resp: &Response) -> bool {
    resp.status == 400
        && error_detail(&resp.body)
            .to_ascii_lowercase()
            .contains("authorization information")
}

/// Names a request in errors: the connector and the listing's path.
pub fn what(path: &str) -> String {
    format!("onelogin: GET {path}")
}

/// One page of a listing: the items and where the next page starts.
pub struct Listing<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// `After-Cursor`; `None` on the last page.
    pub after: Option<String>,
    /// `Total-Count`: the whole listing's size.
    pub total: Option<u64>,
}

/// Where a listing stands between driver steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Paging {
    /// The listing's URL without its cursor (limit and filters included).
    pub base: String,
    /// The cursor of the next page; `None` for the first.
    pub after: Option<String>,
    /// Cursors already followed in this listing.
    pub guard: LoopGuard,
    /// Pages read so far, to name a page in errors.
    pub pages: u32,
}

impl Paging {
    /// A listing from its first page.
    pub fn new(base: String) -> Self {
        Paging {
            base,
            after: None,
            guard: LoopGuard::default(),
            pages: 0,
        }
    }

    /// The URL of the page to read: `param` (`cursor`, or `after_cursor` in API v1) carries
    /// the cursor.
    pub fn url(&self, param: &str) -> String {
        match &self.after {
            Some(c) => url_with_query(&self.base, &[(param, c)]),
            None => self.base.clone(),
        }
    }

    /// `what` with the number of the page about to be read: "onelogin: GET /api/2/users, page 3".
    pub fn what(&self, what: &str) -> String {
        format!("{what}, page {}", self.pages + 1)
    }

    /// Moves to the page after the one just read; `false` when that was the last. A cursor
    /// this listing already followed stops it (a server paging in a circle).
    pub fn advance(&mut self, after: Option<String>, what: &str) -> Result<bool, PluginError> {
        self.pages += 1;
        let Some(next) = after.filter(|c| !c.is_empty()) else {
            return Ok(false);
        };
        self.guard.check(&next).map_err(|e| match e {
            PluginError::Fatal(why) => PluginError::Fatal(format!("{what}: {why}")),
            other => other,
        })?;
        self.after = Some(next);
        Ok(true)
    }
}

/// OneLogin for one source's settings.
pub struct Api<'a> {
    /// The settings.
    pub s: &'a Settings,
    creds: ClientCredentials,
    t: &'a dyn Transport,
    /// The `Date` of the first answer read through this client.
    clock: Cell<Option<SystemTime>>,
}

#[derive(Deserialize)]
struct V2Error {
    #[serde(rename = "statusCode")]
    _status: Option<i64>,
    name: Option<String>,
    message: Option<String>,
}

impl<'a> Api<'a> {
    /// A client for these settings over this transport.
    pub fn new(s: &'a Settings, t: &'a dyn Transport) -> Self {
        Api {
            s,
            creds: s.credentials(),
            t,
            clock: Cell::new(None),
        }
    }

    /// `{api_url}{path}?{query}`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        url_with_query(&format!("{}{path}", self.s.api_url), query)
    }

    /// The server's time at its first answer to this client (its `Date` header; the host's
    /// clock when the answer had none), for `updated_since`.
    pub fn clock(&self) -> Option<SystemTime> {
        self.clock.get()
    }

    /// An access token: from the cache, or from the token endpoint, its refusals explained.
    pub fn token(&self) -> Result<String, PluginError> {
        self.creds.token(self.t).map_err(|e| self.explain_token_error(e))
    }

    /// GETs a URL on `api_url` and returns the answer whatever its status.
    pub fn get(&self, url: &str, what: &str) -> Result<Response, PluginError> {
        roster_sdk::paging::within(&self.s.api_url, url, what)?;
        self.token()?;
        let v1 = url.starts_with(&format!("{}{V1_PREFIX}", self.s.api_url));
        let resp = if v1 && V1_COLON.with(|c| c.borrow().contains(&self.creds)) {
            self.send_v1_documented(url)?
        } else {
            let resp = self
                .creds
                .send(self.t, Request::get(url))
                .map_err(|e| self.explain_token_error(e))?;
            if v1 && refuses_authorization_form(&resp) {
                roster_sdk::log(
                    Level::Info,
                    &format!(
                        "{what}: OneLogin's API v1 refused `Authorization: Bearer <token>`; Roster sends the form OneLogin documents for v1, `bearer:<token>`, from now on"
                    ),
                );
                V1_COLON.with(|c| c.borrow_mut().insert(self.creds.clone()));
                self.send_v1_documented(url)?
            } else {
                resp
            }
        };
        if self.clock.get().is_none() {
            self.clock.set(Some(resp.date().unwrap_or_else(SystemTime::now)));
        }
        Ok(resp)
    }

    /// GETs an API v1 URL with `Authorization: bearer:<token>`; on a 401 once more with a new
    /// token, as the SDK does for `Bearer`.
    fn send_v1_documented(&self, url: &str) -> Result<Response, PluginError> {
        let request = |token: &str| Request::get(url).header("authorization", format!("bearer:{token}"));
        let resp = self.t.send(request(&self.token()?))?;
        if resp.status != 401 {
            return Ok(resp);
        }
        self.creds.forget();
        self.t.send(request(&self.token()?))
    }

    /// GETs a URL and parses a 2xx JSON answer.
    pub fn json<T: DeserializeOwned>(&self, url: &str, what: &str) -> Result<T, PluginError> {
        let resp = self.get(url, what)?;
        self.ok(resp, what)?.json(what)
    }

    /// GETs a JSON array; `Ok(None)` when OneLogin answers 404 (the object is gone).
    pub fn json_opt<T: DeserializeOwned>(&self, url: &str, what: &str) -> Result<Option<T>, PluginError> {
        let resp = self.get(url, what)?;
        if resp.status == 404 {
            return Ok(None);
        }
        self.ok(resp, what)?.json(what).map(Some)
    }

    /// GETs one page of a v2 listing (a JSON array, paging headers); `Ok(None)` on 404.
    pub fn page<T: DeserializeOwned>(&self, url: &str, what: &str) -> Result<Option<Listing<T>>, PluginError> {
        let resp = self.get(url, what)?;
        if resp.status == 404 {
            return Ok(None);
        }
        let resp = self.ok(resp, what)?;
        let items = resp.json(what)?;
        let after = resp
            .header("after-cursor")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let total = resp.header("total-count").and_then(|v| v.trim().parse().ok());
        Ok(Some(Listing { items, after, total }))
    }

    /// Passes 2xx through; explains everything else.
    pub fn ok(&self, resp: Response, what: &str) -> Result<Response, PluginError> {
        if resp.is_success() {
            Ok(resp)
        } else {
            Err(classify(what, &resp, &self.s.client_id))
        }
    }

    fn explain_token_error(&self, e: PluginError) -> PluginError {
        let s = self.s;
        match e {
            PluginError::Auth(msg) => PluginError::Auth(format!(
                "onelogin: the token endpoint refused the API credential {} ({msg}): check client_id and the secret `{}`; the credential may have been deleted",
                s.client_id, s.client_secret
            )),
            // The SDK's words for a token endpoint that answered 404 or not with a token.
            PluginError::Config(msg) | PluginError::Fatal(msg) if msg.starts_with("token request") => {
                PluginError::Config(format!(
                    "onelogin: {} is not OneLogin's token endpoint ({msg}): api_url should be https://<subdomain>.onelogin.com, the account's API domain",
                    s.token_url()
                ))
            }
            other => other,
        }
    }
}

/// OneLogin's error body, v2 (`{"statusCode","name","message"}`) or v1 (`{"status":{…}}`).
fn detail(body: &[u8]) -> String {
    match serde_json::from_slice::<V2Error>(body) {
        Ok(V2Error {
            name: Some(name),
            message: Some(message),
            ..
        }) => format!("{name}: {message}"),
        _ => error_detail(body),
    }
}

/// A refused API call as the error the host acts on, naming the scope a refusal needs.
pub fn classify(what: &str, resp: &Response, client_id: &str) -> PluginError {
    let detail = detail(&resp.body);
    let status = resp.status;
    match status {
        // A fresh token was already tried once (ClientCredentials::send): a credential whose
        // scope is "Authentication Only" is answered 401 on every API call.
        401 => PluginError::Auth(format!(
            "{what}: OneLogin refused Roster's access token ({status} {detail}); the API credential {client_id} cannot read this: create one with {SCOPE} under Developers → API Credentials"
        )),
        403 => PluginError::Auth(format!(
            "{what}: OneLogin refused ({status} {detail}); the API credential {client_id} lacks the scope: create one with {SCOPE} under Developers → API Credentials"
        )),
        _ => classify_status_with(what, resp, &detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn refusals_name_the_scope_and_other_statuses_keep_the_sdk_s_variant() {
        let forbidden = r#"{"statusCode":403,"name":"Forbidden","message":"Forbidden"}"#;
        let e = classify("onelogin: GET /api/2/roles", &resp(403, forbidden), "c1");
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("the scope \"Read users\" (the least") && m.contains("c1") && m.contains("Forbidden: Forbidden")),
            "{e:?}"
        );
        // API v1's refusal of a scope that may not read groups (OneLogin's documented body).
        let insufficient =
            r#"{"status":{"error":true,"code":401,"type":"Unauthorized","message":"Insufficient Permission"}}"#;
        let e = classify("onelogin: GET /api/1/groups", &resp(401, insufficient), "c1");
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("Insufficient Permission") && m.contains("\"Read users\"")),
            "{e:?}"
        );
        let e = classify(
            "onelogin: GET /api/2/users",
            &resp(
                401,
                r#"{"statusCode":401,"name":"Unauthorized","message":"Unauthorized"}"#,
            ),
            "c1",
        );
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("\"Read users\"")),
            "{e:?}"
        );
        let e = classify(
            "onelogin: GET /api/2/users",
            &resp(
                429,
                r#"{"statusCode":429,"name":"TooManyRequests","message":"slow down"}"#,
            ),
            "c1",
        );
        assert!(
            matches!(&e, PluginError::Transient(m) if m.contains("TooManyRequests: slow down")),
            "{e:?}"
        );
        let e = classify(
            "x",
            &resp(400, r#"{"statusCode":400,"name":"BadRequest","message":"bad limit"}"#),
            "c",
        );
        assert!(matches!(&e, PluginError::Config(m) if m.contains("bad limit")), "{e:?}");
    }

    #[test]
    fn a_listing_that_comes_back_to_a_cursor_stops() {
        let mut p = Paging::new("https://a.test/api/2/users?limit=2".into());
        assert_eq!(p.url("cursor"), "https://a.test/api/2/users?limit=2");
        assert!(p.advance(Some("c1".into()), "w").unwrap());
        assert_eq!(p.url("cursor"), "https://a.test/api/2/users?limit=2&cursor=c1");
        assert!(p.advance(Some("c2".into()), "w").unwrap());
        let e = p.advance(Some("c1".into()), "onelogin: GET /api/2/users").unwrap_err();
        assert!(
            matches!(&e, PluginError::Fatal(m) if m.starts_with("onelogin: GET /api/2/users: ")),
            "{e:?}"
        );
        assert!(!p.advance(Some(String::new()), "w").unwrap());
        assert!(!p.advance(None, "w").unwrap());
    }
}
