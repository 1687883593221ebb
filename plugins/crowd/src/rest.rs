//! Crowd's REST API (`usermanagement/1`) over the host's `http` import, as Atlassian's own client
//! speaks it: the application's HTTP Basic credentials sent with every request, XML both ways,
//! `X-Embedded-Crowd-Version` required on every answer (checked before the status), and each
//! refusal turned into what the administrator has to fix.

use roster_sdk::errors::{classify_status_with, excerpt};
use roster_sdk::http::{Transport, basic_auth, path_segment};
use roster_sdk::{PluginError, Request, Response};

use crate::model::{ErrorEntity, error_entity};
use crate::settings::Settings;
use crate::xml::{self, Element, XmlError};

/// The header every Crowd REST answer carries, errors and 401s included.
pub const VERSION_HEADER: &str = "X-Embedded-Crowd-Version";

/// The body of `POST /search` for everything.
pub const NULL_RESTRICTION: &str =
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><null-search-restriction/>"#;

/// The body of `POST /search` `check` sends, as Atlassian's `testConnection` does: users whose
/// name is null, so the answer is tiny whatever the directory's size.
pub const NAME_IS_NULL: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    "<property-search-restriction><property><name>name</name><type>STRING</type></property>",
    "<match-mode>NULL</match-mode></property-search-restriction>"
);

/// Which kind of entity `POST /search` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// `entity-type=user`.
    User,
    /// `entity-type=group`.
    Group,
}

/// One source's Crowd server over a transport.
pub struct Server<'a> {
    /// The settings.
    pub s: &'a Settings,
    t: &'a dyn Transport,
}

/// A query value encoded as Atlassian's client encodes it (`URLEncoder`: a space is `+`).
fn q(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl<'a> Server<'a> {
    /// The server for these settings over this transport.
    pub fn new(s: &'a Settings, t: &'a dyn Transport) -> Self {
        Server { s, t }
    }

    /// `POST /search?entity-type=…&start-index=…&max-results=…&expand=…`.
    pub fn search_url(&self, entity: Entity, start: u64, max: &str) -> String {
        let expand = match (entity, self.s.user_attributes) {
            (Entity::User, true) => "user,attributes",
            (Entity::User, false) => "user",
            (Entity::Group, _) => "group",
        };
        let kind = match entity {
            Entity::User => "user",
            Entity::Group => "group",
        };
        format!(
            "{}/search?entity-type={kind}&start-index={start}&max-results={max}&expand={expand}",
            self.s.api()
        )
    }

    /// `GET /group/user/direct` or `/group/child-group/direct` for one group, names only.
    pub fn members_url(&self, children: Members, group: &str, start: u64) -> String {
        let path = match children {
            Members::Users => "/group/user/direct",
            Members::Groups => "/group/child-group/direct",
        };
        format!(
            "{}{path}?groupname={}&start-index={start}&max-results={}",
            self.s.api(),
            q(group),
            self.s.max_results()
        )
    }

    /// `GET /user?username=…` (with attributes when they are read).
    pub fn user_url(&self, username: &str) -> String {
        let expand = if self.s.user_attributes {
            "&expand=attributes"
        } else {
            ""
        };
        format!("{}/user?username={}{expand}", self.s.api(), q(username))
    }

    /// `GET /event/{token}`: the token is one path segment.
    pub fn events_url(&self, token: &str) -> String {
        format!("{}/event/{}", self.s.api(), path_segment(token))
    }

    /// `GET /event`, `GET /group/membership`: fixed paths.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.s.api())
    }

    fn request(&self, method: &str, url: &str) -> Result<Request, PluginError> {
        Ok(Request::new(method, url)
            .header(
                "authorization",
                basic_auth(&self.s.application_name, &self.s.application_password)?,
            )
            .header("accept", "application/xml")
            .header("x-atlassian-token", "no-check"))
    }

    /// Sends a request; the host's refusal of an answer for its size says what to change.
    fn send(&self, req: Request, what: &str) -> Result<Response, PluginError> {
        self.t.send(req).map_err(|e| match e {
            // The host's words (roster-runtime `net.rs`) name the limit; the connector knows
            // which settings make its answers smaller.
            PluginError::Config(m) if m.contains("max_response_bytes") => PluginError::Config(format!(
                "{what}: {m}. Raise it for this source (`limits = {{ max_response_bytes = … }}` in its [[source]] table; the default is 16 MiB, roughly 15,000 users with their attributes), or set `page_size` in its settings to read the users and groups listings in pages (the /group/membership document is one answer whatever the page size)"
            )),
            other => other,
        })
    }

    /// GETs a URL; the answer has passed [`Server::vet`].
    pub fn get(&self, url: &str, what: &str) -> Result<Response, PluginError> {
        let resp = self.send(self.request("GET", url)?, what)?;
        self.vet(url, what, resp)
    }

    /// POSTs an XML body; the answer has passed [`Server::vet`].
    pub fn post_xml(&self, url: &str, body: &str, what: &str) -> Result<Response, PluginError> {
        let req = self
            .request("POST", url)?
            .header("content-type", "application/xml; charset=UTF-8")
            .with_body(body.as_bytes().to_vec());
        let resp = self.send(req, what)?;
        self.vet(url, what, resp)
    }

    /// What every answer must pass whatever its status: it comes from a Crowd REST service
    /// (checked first, as Atlassian's client does), and the application was let in (401, 403).
    fn vet(&self, url: &str, what: &str, resp: Response) -> Result<Response, PluginError> {
        let Some(product) = product(&resp) else {
            return Err(self.not_crowd(url, what, &resp));
        };
        let name = &self.s.application_name;
        match resp.status {
            401 => Err(PluginError::Auth(format!(
                "{product} refused application '{name}': wrong application name or password (Jira: User management → Jira user server; Crowd: Applications) ({what})"
            ))),
            403 => Err(match error_entity(&resp.body) {
                Some(e) => PluginError::Auth(format!(
                    "no permission: {product} refused application '{name}' to {what} ({}: {})",
                    e.reason, e.message
                )),
                None => refused_address(&product, name, what, &resp.body),
            }),
            _ => Ok(resp),
        }
    }

    /// An answer without Crowd's header. Proxies, load balancers and single sign-on gateways
    /// in front of Jira answer for it while it restarts, throttle, or refuse before the request
    /// reaches it: those are retried or named, and only other answers mean `server_url` is not
    /// a Crowd REST service.
    fn not_crowd(&self, url: &str, what: &str, resp: &Response) -> PluginError {
        let status = resp.status;
        let body = excerpt(&resp.body);
        match status {
            408 | 425 | 429 | 500..=599 => classify_status_with(
                what,
                resp,
                &format!(
                    "{url} was answered without {VERSION_HEADER} by a proxy or load balancer in front of Jira or Crowd, not by the server itself: {body}"
                ),
            ),
            401 | 403 => PluginError::Auth(format!(
                "{what}: {url} answered {status} without {VERSION_HEADER}: a proxy or single sign-on gateway in front of Jira or Crowd refused the request before the server saw it; let requests to {} through it with their own HTTP Basic credentials (the application's), or check server_url: {body}",
                self.s.api()
            )),
            _ => PluginError::Config(format!(
                "{url} is not a Crowd REST service (no {VERSION_HEADER} header): check server_url — it is the Jira or Crowd base URL, e.g. https://jira.example.com or https://jira.example.com/jira"
            )),
        }
    }

    /// Passes 2xx through; turns any other status into the error the host acts on, with
    /// Crowd's reason and message when the body is its error entity.
    pub fn ok(&self, resp: Response, what: &str) -> Result<Response, PluginError> {
        if resp.is_success() {
            return Ok(resp);
        }
        Err(self.failure(&resp, what))
    }

    /// The error for a non-2xx answer: the SDK's classification of the status (its
    /// `Retry-After` included), with Crowd's reason and message when the body is its error
    /// entity.
    pub fn failure(&self, resp: &Response, what: &str) -> PluginError {
        let product = product(resp).unwrap_or_else(|| "the server".into());
        let detail = match error_entity(&resp.body) {
            Some(ErrorEntity { reason, message }) => format!("{product} says {reason}: {message}"),
            None => format!("{product} answered: {}", excerpt(&resp.body)),
        };
        classify_status_with(what, resp, &detail)
    }

    /// `POST /search` for one page of users or groups, each entity handed to `each` as it is
    /// read; returns how many there were.
    pub fn search(
        &self,
        entity: Entity,
        start: u64,
        max: &str,
        what: &str,
        each: impl FnMut(&Element) -> Result<(), PluginError>,
    ) -> Result<usize, PluginError> {
        let url = self.search_url(entity, start, max);
        let resp = self.ok(self.post_xml(&url, NULL_RESTRICTION, what)?, what)?;
        let (root, item) = match entity {
            Entity::User => ("users", "user"),
            Entity::Group => ("groups", "group"),
        };
        read_list(&resp, root, item, what, each)
    }
}

/// Which members a per-group listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Members {
    /// Direct user members.
    Users,
    /// Direct child groups.
    Groups,
}

/// "Jira" or "Crowd", from `X-Embedded-Crowd-Version: Jira/9.12.1`; `None` when the header is
/// missing.
pub fn product(resp: &Response) -> Option<String> {
    let v = resp.header(VERSION_HEADER)?;
    let name = v.split('/').next().unwrap_or_default().trim();
    Some(if name.is_empty() {
        "the server".to_string()
    } else {
        name.to_string()
    })
}

/// What an empty users listing means: Jira always has at least one user, so the application
/// is mapped to no directory (or to empty ones) — not that everyone left.
pub fn sees_no_users(srv: &Server<'_>, product: Option<String>) -> String {
    let product = product.unwrap_or_else(|| "the server".into());
    let name = &srv.s.application_name;
    format!(
        "{product} lists no users to application '{name}': the application sees no users. Give it a directory (Crowd: Applications → '{name}' → Directories; Jira: User management → User directories must hold an active directory with users); an empty answer is never read as everyone having left"
    )
}

/// A document's XML failure as the error the host acts on: a cut-off or broken answer is
/// retried (it is most often a dropped connection), another document is not.
pub fn xml_failure(what: &str, body: &[u8], e: XmlError) -> PluginError {
    match e {
        XmlError::Broken(why) => PluginError::Transient(format!(
            "{what}: the answer is not complete XML ({why}); nothing of it is used. It starts with: {}",
            excerpt(body)
        )),
        XmlError::Unexpected(why) => PluginError::Fatal(format!(
            "{what}: the answer is {why}; it starts with: {}",
            excerpt(body)
        )),
    }
}

/// Hands each `<item>` element of a `<root>` list to `each` as soon as it is read, so a
/// listing of the whole directory never exists as element trees all at once (a tree is several
/// times the size of the record made from it); returns how many there were.
pub fn read_list(
    resp: &Response,
    root: &str,
    item: &str,
    what: &str,
    mut each: impl FnMut(&Element) -> Result<(), PluginError>,
) -> Result<usize, PluginError> {
    let mut n = 0;
    xml::for_each::<Failure>(&resp.body, root, |el| {
        if el.name == item {
            n += 1;
            each(&el)?;
        }
        Ok(())
    })
    .map_err(|f| f.into_plugin_error(what, &resp.body))?;
    Ok(n)
}

/// Why reading a document stopped: the document itself, or what was made of it.
pub enum Failure {
    /// The document.
    Xml(XmlError),
    /// The connector's own error for an element.
    Plugin(PluginError),
}

impl Failure {
    /// The error the host acts on.
    pub fn into_plugin_error(self, what: &str, body: &[u8]) -> PluginError {
        match self {
            Failure::Xml(e) => xml_failure(what, body, e),
            Failure::Plugin(e) => e,
        }
    }
}

impl From<XmlError> for Failure {
    fn from(e: XmlError) -> Self {
        Failure::Xml(e)
    }
}

impl From<PluginError> for Failure {
    fn from(e: PluginError) -> Self {
        Failure::Plugin(e)
    }
}

/// Text of an HTML or plain body: tags dropped, the common entities decoded, spaces collapsed.
fn plain_text(body: &[u8]) -> String {
    let raw = String::from_utf8_lossy(body);
    let mut text = String::with_capacity(raw.len());
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A 403 that is not Crowd's error entity: the container's page for a client address the
/// application does not allow (`Client with address "X" is forbidden from making requests to
/// the application, NAME.`), naming the address the server saw.
fn refused_address(product: &str, name: &str, what: &str, body: &[u8]) -> PluginError {
    let text = plain_text(body);
    let address = text
        .split_once("address \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(a, _)| a.to_string())
        .filter(|a| !a.is_empty());
    match address {
        Some(a) => PluginError::Auth(format!(
            "{product} refuses requests from {a}: add {a} (or its range) to the application's IP addresses (Jira: User management → Jira user server → application '{name}'; Crowd: Applications → '{name}' → Remote addresses) ({what})"
        )),
        None => {
            let shown: String = text.chars().take(300).collect();
            PluginError::Auth(format!(
                "{product} refused application '{name}' (403) to {what}: {shown}; if it is about the address Roster connects from, add that address to the application's IP addresses (Jira) or remote addresses (Crowd)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refused_address_is_read_from_the_container_page() {
        let page = br#"<html><head><title>Error</title></head><body><h1>HTTP Status 403 - Client with address &quot;10.1.2.3&quot; is forbidden from making requests to the application, roster.</h1></body></html>"#;
        let e = refused_address("Jira", "roster", "list users", page);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.starts_with("Jira refuses requests from 10.1.2.3: add 10.1.2.3 (or its range) to the application's IP addresses")),
            "{e:?}"
        );
        let plain =
            b"Client with address \"2001:db8::7\" is forbidden from making requests to the application, roster.";
        assert!(
            refused_address("Crowd", "roster", "x", plain)
                .to_string()
                .contains("Crowd refuses requests from 2001:db8::7")
        );
        let other = refused_address("Jira", "roster", "list users", b"<html><body>Forbidden</body></html>");
        assert!(
            matches!(&other, PluginError::Auth(m) if m.contains("Forbidden") && m.contains("IP addresses")),
            "{other:?}"
        );
    }
}
