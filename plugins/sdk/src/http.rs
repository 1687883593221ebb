//! JSON over the host's `http` import.
//!
//! Credentials stay in the host: a connector writes `{{secret:NAME}}` where a secret goes
//! (`Bearer {{secret:token}}`, a form field) and [`basic_auth`] for HTTP Basic, whose
//! base64 encoding the host does after filling in the password.
//!
//! Requests are plain [`Request`] values built with the helpers here; a [`Transport`] sends them.
//! Inside the host that is [`HostTransport`]; tests script their own.

use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::{classify_status, excerpt};
use crate::{PluginError, Request, Response};

/// Something that sends requests: the host inside a component, a script in tests.
pub trait Transport {
    /// Sends one request and returns the response, whatever its status.
    fn send(&self, req: Request) -> Result<Response, PluginError>;
}

/// Sends requests through the host's `http` import (allow-listed, rate-budgeted, traced).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostTransport;

impl Transport for HostTransport {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::roster::plugin::host::http(&req);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = req;
            Err(PluginError::Fatal(
                "the host's http import is only available inside Roster".into(),
            ))
        }
    }
}

impl Request {
    /// A request with the given method and URL and an `Accept: application/json` header.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            method: method.to_string(),
            url: url.into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A POST with an `application/x-www-form-urlencoded` body. Values may hold
    /// `{{secret:NAME}}` placeholders; they are encoded so the host can still find them.
    pub fn post_form(url: impl Into<String>, fields: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        // The form encoder escapes `{`, `}` and `:`; the host matches placeholders verbatim.
        let body = unescape_placeholders(&body);
        Self::new("POST", url)
            .header("content-type", "application/x-www-form-urlencoded")
            .with_body(body.into_bytes())
    }

    /// A request with a JSON body.
    pub fn with_json(self, method: &str, value: &impl Serialize) -> Result<Self, PluginError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| PluginError::Fatal(format!("could not encode the request body: {e}")))?;
        let mut req = self.header("content-type", "application/json").with_body(body);
        req.method = method.to_string();
        Ok(req)
    }

    /// Sets a header, replacing any earlier value of the same name.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, by case-insensitive name, in the order received: servers send
    /// list-valued headers such as `Link` once per value (Okta sends `rel="self"` and
    /// `rel="next"` as two headers).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for 2xx statuses.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON; a body that is not the expected JSON is a `fatal` error that
    /// names where in the document it went wrong (`[3].status`: the fourth item's `status`) and
    /// quotes the start of the body.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, PluginError> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        let parsed = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            (at, e.into_inner())
        });
        // Trailing bytes after the value: the document is not the JSON expected either.
        let parsed = parsed.and_then(|v| de.end().map(|()| v).map_err(|e| (String::new(), e)));
        parsed.map_err(|(at, e)| {
            let kind = self
                .header("content-type")
                .filter(|t| !t.to_ascii_lowercase().contains("json"))
                .map(|t| format!(" but `{t}` (a sign-in page or a proxy in front of the API?)"))
                .unwrap_or_default();
            PluginError::Fatal(format!(
                "{what}: the response is not the JSON expected{kind}{at} ({e}); it starts with: {}",
                excerpt(&self.body)
            ))
        })
    }

    /// The server's clock: the `Date` header (RFC 9110 §6.6.1), for timestamps a later request
    /// compares against the server's own (`updated_since`), which the host's clock may not match.
    pub fn date(&self) -> Option<SystemTime> {
        httpdate::parse_http_date(self.header("date")?.trim()).ok()
    }

    /// Passes 2xx responses through; turns any other status into the matching error.
    pub fn error_for_status(self, what: &str) -> Result<Self, PluginError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(classify_status(what, &self))
        }
    }
}

/// The value of an `Authorization` header for HTTP Basic with `user` and the password held in
/// the host's secret `secret`: `Basic user:{{secret:NAME}}`. The host fills in the password and
/// base64-encodes `user:password` on the way out (the connector never sees the password), when
/// the secret is bound with `use = { header = "Authorization" }`. A user name with `:` cannot
/// be sent in Basic (RFC 7617 splits at the first one) and is a `config` error.
pub fn basic_auth(user: &str, secret: &str) -> Result<String, PluginError> {
    if user.is_empty() || user.contains(':') {
        return Err(PluginError::Config(format!(
            "the user name {user:?} cannot be sent with HTTP Basic: it must be non-empty and hold no `:`"
        )));
    }
    Ok(format!("Basic {user}:{{{{secret:{secret}}}}}"))
}

/// Sends `req` and parses a 2xx JSON answer; other statuses become classified errors.
pub fn send_json<T: DeserializeOwned>(transport: &dyn Transport, req: Request, what: &str) -> Result<T, PluginError> {
    transport.send(req)?.error_for_status(what)?.json(what)
}

/// `base` with query parameters appended: names as given (OData's `$select` stays readable),
/// values percent-encoded with `%20` for spaces, which every server decodes alike.
pub fn url_with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = base.to_string();
    for (i, (name, value)) in pairs.iter().enumerate() {
        let sep = if i == 0 && !base.contains('?') { '?' } else { '&' };
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        out.push(sep);
        out.push_str(name);
        out.push('=');
        out.push_str(&encoded.replace('+', "%20"));
    }
    out
}

/// An id as one URL path segment (`/users/{id}`): ids are usually opaque GUIDs, but one with
/// `/`, `?`, `#` or spaces must not change the path it is put into.
pub fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn unescape_placeholders(encoded: &str) -> String {
    encoded.replace("%7B%7Bsecret%3A", "{{secret:").replace("%7D%7D", "}}")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn form_bodies_keep_secret_placeholders_matchable() {
        let req = Request::post_form(
            "https://login.example/token",
            &[("client_secret", "{{secret:client_secret}}"), ("scope", "a b/.default")],
        );
        let body = String::from_utf8(req.body.unwrap()).unwrap();
        assert_eq!(body, "client_secret={{secret:client_secret}}&scope=a+b%2F.default");
        assert!(req.headers.contains(&(
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string()
        )));
    }

    #[test]
    fn a_page_that_is_not_json_is_named_by_its_content_type() {
        let html = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: b"<!DOCTYPE html><html>Sign in</html>".to_vec(),
        };
        let e = html.json::<serde_json::Value>("list users").unwrap_err();
        assert!(
            matches!(&e, PluginError::Fatal(m) if m.contains("`text/html; charset=utf-8`") && m.contains("list users")),
            "{e:?}"
        );
        let cut = Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"value": [{"id""#.to_vec(),
        };
        let e = cut.json::<serde_json::Value>("list users").unwrap_err();
        assert!(matches!(&e, PluginError::Fatal(m) if !m.contains("sign-in")), "{e:?}");
    }

    #[test]
    fn a_wrong_field_is_named_by_its_place_in_the_document() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Item {
            id: i64,
            status: i64,
        }
        let page = |body: &str| Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        };
        let e = page(r#"[{"id":1,"status":1},{"id":2,"status":"on"}]"#)
            .json::<Vec<Item>>("GET /api/2/users")
            .unwrap_err();
        assert!(
            matches!(&e, PluginError::Fatal(m) if m.starts_with("GET /api/2/users: ") && m.contains("at `[1].status`") && m.contains("invalid type")),
            "{e:?}"
        );
        let e = page(r#"[{"id":1,"status":1},{"id":2,"sta"#)
            .json::<Vec<Item>>("GET /api/2/users")
            .unwrap_err();
        assert!(matches!(&e, PluginError::Fatal(m) if m.contains("at `[1]")), "{e:?}");
        let e = page(r#"[] trailing"#)
            .json::<Vec<Item>>("GET /api/2/users")
            .unwrap_err();
        assert!(matches!(&e, PluginError::Fatal(m) if m.contains("trailing")), "{e:?}");
    }

    #[test]
    fn the_date_header_is_the_server_s_clock() {
        let at = |v: &str| Response {
            status: 200,
            headers: vec![("Date".into(), v.into())],
            body: vec![],
        };
        assert_eq!(
            at("Thu, 03 Dec 2026 21:30:00 GMT").date(),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_333_400))
        );
        assert_eq!(at("yesterday").date(), None);
        assert_eq!(
            Response {
                headers: vec![],
                ..at("")
            }
            .date(),
            None
        );
    }

    #[test]
    fn query_values_are_encoded_and_names_kept() {
        let u = url_with_query(
            "https://g.example/v1.0/users",
            &[("$select", "id,displayName"), ("$filter", "displayName eq 'A+B'")],
        );
        assert_eq!(
            u,
            "https://g.example/v1.0/users?$select=id%2CdisplayName&$filter=displayName%20eq%20%27A%2BB%27"
        );
        assert_eq!(url_with_query("https://x/a?b=1", &[("c", "2")]), "https://x/a?b=1&c=2");
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(path_segment("a b/c?d#e"), "a%20b%2Fc%3Fd%23e");
        assert_eq!(
            path_segment("8f1c2d3e-0000-4000-8000-00000000abcd"),
            "8f1c2d3e-0000-4000-8000-00000000abcd"
        );
    }

    #[test]
    fn basic_auth_leaves_the_password_to_the_host() {
        assert_eq!(
            basic_auth("roster", "application_password").unwrap(),
            "Basic roster:{{secret:application_password}}"
        );
        for bad in ["a:b", ""] {
            let err = basic_auth(bad, "p").unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains("HTTP Basic")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn header_replaces_case_insensitively() {
        let req = Request::get("https://x").header("Accept", "text/plain");
        assert_eq!(req.headers, vec![("accept".to_string(), "text/plain".to_string())]);
    }

    #[test]
    fn json_errors_quote_the_body() {
        let resp = Response {
            status: 200,
            headers: vec![],
            body: b"<html>login</html>".to_vec(),
        };
        let err = resp.json::<serde_json::Value>("list users").unwrap_err();
        let PluginError::Fatal(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("list users") && msg.contains("<html>login"), "{msg}");
    }
}
