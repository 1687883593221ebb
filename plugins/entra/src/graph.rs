//! Microsoft Graph over the host's `http` import: URLs, the OData collection shape, and Graph's
//! errors turned into messages that say which permission or setting to fix.

use roster_sdk::errors::{classify_status, error_detail};
use roster_sdk::http::{Transport, url_with_query};
use roster_sdk::oauth::ClientCredentials;
use roster_sdk::{PluginError, Request, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::settings::Settings;

/// A Graph object as JSON.
pub type Object = Map<String, Value>;

/// One page of an OData collection (lists and delta rounds).
#[derive(Debug, Deserialize)]
pub struct Collection {
    /// The objects of this page.
    #[serde(default)]
    pub value: Vec<Object>,
    /// The next page of this listing or delta round.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// The last page of a delta round: where the next round starts.
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
    /// `$count=true`: the size of the whole collection.
    #[serde(rename = "@odata.count")]
    pub count: Option<u64>,
}

/// The Graph application permission an endpoint needs, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `/users…`
    Users,
    /// `/groups…`, members, transitive memberships.
    Groups,
    /// `/servicePrincipals…`
    Apps,
}

impl Needs {
    /// The least-privileged permission that grants it.
    pub fn permission(self) -> &'static str {
        match self {
            Needs::Users => "User.Read.All",
            Needs::Groups => "GroupMember.Read.All",
            Needs::Apps => "Application.Read.All",
        }
    }
}

/// Graph for one source's settings.
pub struct Graph<'a> {
    /// The settings.
    pub s: &'a Settings,
    creds: ClientCredentials,
    t: &'a dyn Transport,
    /// A page with no objects but a next link was read (see [`Graph::read_an_empty_page`]).
    empty_page: std::cell::Cell<bool>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Deserialize)]
struct ErrorInner {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Codes Graph uses when a delta token can no longer be continued (compared case-insensitively).
const RESYNC_CODES: &[&str] = &["syncStateNotFound", "syncStateInvalid", "resyncRequired"];

/// Graph's code for a listing's skip token that expired before the next page was read.
const EXPIRED_PAGE_TOKEN: &str = "Directory_ExpiredPageToken";

impl<'a> Graph<'a> {
    /// A client for these settings over this transport.
    pub fn new(s: &'a Settings, t: &'a dyn Transport) -> Self {
        Graph {
            s,
            creds: s.credentials(),
            t,
            empty_page: std::cell::Cell::new(false),
        }
    }

    /// Whether a page with no objects but a next link was read since the last call: the
    /// driver counts them, so a Graph that pages forever stops the fetch.
    pub fn read_an_empty_page(&self) -> bool {
        self.empty_page.take()
    }

    fn seen(&self, c: &Collection) {
        if c.value.is_empty() && c.next_link.is_some() {
            self.empty_page.set(true);
        }
    }

    /// `{graph_url}/v1.0{path}?{query}`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        url_with_query(&format!("{}/v1.0{path}", self.s.graph_url), query)
    }

    /// GETs a URL (a built one or a next/delta link Graph gave) and returns the raw response,
    /// refusing links that leave Graph.
    fn send(&self, url: &str, what: &str, headers: &[(&str, &str)]) -> Result<Response, PluginError> {
        roster_sdk::paging::within(&self.s.graph_url, url, what)?;
        let mut req = Request::get(url);
        for (k, v) in headers {
            req = req.header(k, *v);
        }
        self.creds.send(self.t, req).map_err(|e| explain_token_error(e, self.s))
    }

    /// GETs one page of a collection.
    pub fn page(&self, url: &str, what: &str, needs: Needs) -> Result<Collection, PluginError> {
        self.page_with(url, what, needs, &[])
    }

    /// GETs one page of a collection with extra headers (`ConsistencyLevel: eventual`).
    pub fn page_with(
        &self,
        url: &str,
        what: &str,
        needs: Needs,
        headers: &[(&str, &str)],
    ) -> Result<Collection, PluginError> {
        let resp = self.send(url, what, headers)?;
        let resp = self.ok(resp, what, needs)?;
        let c = resp.json::<Collection>(what).map_err(|e| match e {
            PluginError::Fatal(why) => PluginError::Fatal(format!(
                "{why} (Graph's answer must be an OData collection: {{\"value\": [...]}})"
            )),
            other => other,
        })?;
        self.seen(&c);
        Ok(c)
    }

    /// GETs one page of a collection under an object; `Ok(None)` when the object is gone (a
    /// group deleted between its listing and its members' listing).
    pub fn page_opt(&self, url: &str, what: &str, needs: Needs) -> Result<Option<Collection>, PluginError> {
        let resp = self.send(url, what, &[])?;
        if gone(&resp) {
            return Ok(None);
        }
        let resp = self.ok(resp, what, needs)?;
        let c = resp.json::<Collection>(what)?;
        self.seen(&c);
        Ok(Some(c))
    }

    /// GETs one page of a delta round from a link Graph gave. Graph refusing the link in any way
    /// (expired, reset, unknown, malformed) means the round cannot be continued: the host then
    /// makes a full fetch.
    pub fn delta_page(&self, url: &str, what: &str, needs: Needs) -> Result<Collection, PluginError> {
        match self.page(url, what, needs) {
            Err(PluginError::Config(why)) => Err(PluginError::ExpiredDelta(why)),
            other => other,
        }
    }

    /// GETs a URL and hands back the response whatever its status (for `check`'s probes).
    pub fn raw(&self, url: &str, what: &str, headers: &[(&str, &str)]) -> Result<Response, PluginError> {
        self.send(url, what, headers)
    }

    /// GETs one object; `Ok(None)` when Graph says it does not exist.
    pub fn object(&self, url: &str, what: &str, needs: Needs) -> Result<Option<Object>, PluginError> {
        let resp = self.send(url, what, &[])?;
        if gone(&resp) {
            return Ok(None);
        }
        let resp = self.ok(resp, what, needs)?;
        resp.json::<Object>(what).map(Some)
    }

    /// Passes 2xx through; classifies everything else with Graph's own error code.
    fn ok(&self, resp: Response, what: &str, needs: Needs) -> Result<Response, PluginError> {
        if resp.is_success() {
            return Ok(resp);
        }
        Err(classify(what, needs, &resp, &self.s.client_id))
    }
}

/// Graph says the object does not exist (any more).
fn gone(resp: &Response) -> bool {
    resp.status == 404
        && serde_json::from_slice::<ErrorBody>(&resp.body).is_ok_and(|b| b.error.code == "Request_ResourceNotFound")
}

/// Graph's error response as the WIT error the host acts on.
pub fn classify(what: &str, needs: Needs, resp: &Response, client_id: &str) -> PluginError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&resp.body) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (String::new(), error_detail(&resp.body)),
    };
    let status = resp.status;
    if status == 410 || RESYNC_CODES.iter().any(|c| c.eq_ignore_ascii_case(&code)) {
        return PluginError::ExpiredDelta(format!(
            "{what}: Graph no longer accepts the delta token ({status} {code}: {message})"
        ));
    }
    if code.eq_ignore_ascii_case(EXPIRED_PAGE_TOKEN) {
        return PluginError::Fatal(format!(
            "{what}: the listing's page token expired before the next page was read ({code}); the next run lists again from the start"
        ));
    }
    match status {
        401 => PluginError::Auth(format!(
            "{what}: Microsoft Graph did not accept Roster's access token ({code}: {message})"
        )),
        403 => PluginError::Auth(format!(
            "{what}: Microsoft Graph refused ({code}: {message}); the app registration {client_id} needs the application permission {} with admin consent",
            needs.permission()
        )),
        400 => PluginError::Config(format!(
            "{what}: Microsoft Graph refused the request ({code}: {message})"
        )),
        _ => classify_status(what, resp),
    }
}

/// The AADSTS error number in a token endpoint's message (`AADSTS7000215: …` → 7000215).
fn aadsts_code(msg: &str) -> Option<u64> {
    let at = msg.find("AADSTS")? + "AADSTS".len();
    let digits: String = msg[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Token endpoint refusals, with what to fix for the common AADSTS codes.
fn explain_token_error(e: PluginError, s: &Settings) -> PluginError {
    let PluginError::Auth(msg) = &e else { return e };
    let Some(code) = aadsts_code(msg) else { return e };
    let credential = match s.auth {
        crate::settings::AuthKind::Secret => format!(
            "the client secret was refused: give the secret's Value (not its ID) in the `{}` secret and check it has not expired",
            s.client_secret
        ),
        crate::settings::AuthKind::Certificate => "the certificate assertion was refused: check that certificate_thumbprint matches the certificate uploaded to the app registration and that the signing key belongs to it".to_string(),
    };
    match code {
        90002 | 900023 | 90013 => PluginError::Config(format!(
            "tenant_id `{}` is not a tenant Entra ID knows; use the Directory (tenant) ID from the app registration's overview ({msg})",
            s.tenant_id
        )),
        700016 => PluginError::Config(format!(
            "client_id `{}` is not an application in tenant {}; use the Application (client) ID from the app registration's overview ({msg})",
            s.client_id, s.tenant_id
        )),
        7000215 | 7000222 | 7000216 | 7000218 | 700027 | 700024 | 700023 | 700021 | 70002 => {
            PluginError::Auth(format!("{credential} ({msg})"))
        }
        _ => e,
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
    fn aadsts_codes_are_read_whole() {
        assert_eq!(aadsts_code("AADSTS7000215: Invalid client secret"), Some(7_000_215));
        assert_eq!(
            aadsts_code("token refused (401): AADSTS700027: Client assertion"),
            Some(700_027)
        );
        assert_eq!(aadsts_code("no code here"), None);
        let s = roster_sdk::settings::read::<Settings>(r#"{"tenant_id":"t","client_id":"c"}"#).unwrap();
        // 900021 is not 90002 (the tenant), and a secret's refusal never mentions certificates.
        let e = explain_token_error(PluginError::Auth("AADSTS900021: something".into()), &s);
        assert!(matches!(&e, PluginError::Auth(m) if !m.contains("tenant_id")), "{e:?}");
        let e = explain_token_error(PluginError::Auth("AADSTS70002: bad credential".into()), &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("client secret") && !m.contains("certificate")),
            "{e:?}"
        );
    }

    #[test]
    fn graph_errors_name_what_to_fix() {
        let denied = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#;
        let e = classify("list users", Needs::Users, &resp(403, denied), "app-1");
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("User.Read.All") && m.contains("app-1")),
            "{e:?}"
        );
        let gone = resp(410, r#"{"error":{"code":"resyncRequired","message":"reset"}}"#);
        assert!(matches!(
            classify("users delta", Needs::Users, &gone, "a"),
            PluginError::ExpiredDelta(_)
        ));
        let expired = resp(400, r#"{"error":{"code":"SyncStateNotFound","message":"gone"}}"#);
        assert!(matches!(
            classify("users delta", Needs::Users, &expired, "a"),
            PluginError::ExpiredDelta(_)
        ));
        let bad = resp(
            400,
            r#"{"error":{"code":"Request_UnsupportedQuery","message":"bad filter"}}"#,
        );
        assert!(
            matches!(classify("list users", Needs::Users, &bad, "a"), PluginError::Config(m) if m.contains("bad filter"))
        );
        let throttled = resp(429, r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#);
        assert!(matches!(
            classify("list users", Needs::Users, &throttled, "a"),
            PluginError::Transient(_)
        ));
    }
}
