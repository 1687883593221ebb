//! `POST /authentication?username=` (crowd-rest.md §6 row 6, §7 point 9): the password in the
//! body, checked by the person's source when it can verify passwords (an LDAP bind the host
//! makes, `roster_directory::Directory::verify_password`), refused otherwise.
//!
//! What is here: reading the body (`<password><value>P</value></password>`, or
//! `{"value":"P"}`), and the throttle that keeps the endpoint from being used to guess
//! passwords against the directory. Crowd has no lockout of its own, and the directory's
//! (Active Directory's lockout threshold, OpenLDAP's ppolicy) would lock the person out of
//! everything: after [`MAX_FAILURES`] wrong passwords for one username within [`WINDOW`], the
//! endpoint answers INVALID_USER_AUTHENTICATION without asking the directory until the window
//! has passed. A success clears the count. Passwords are never logged, kept or put in a message.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;

use crate::failures::Failures;

/// Wrong passwords for one username within [`WINDOW`] after which the directory is not asked.
pub const MAX_FAILURES: u32 = 5;

/// How long the throttle counts failures, and how long it refuses once they reach the maximum.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Usernames counted at most; past it, the oldest windows are forgotten first (a flood of
/// made-up names must not grow memory without bound).
const MAX_TRACKED: usize = 50_000;

/// The longest password read from a body (the host never sends a longer one either).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a body holds no password Roster can read.
#[derive(Debug, PartialEq, Eq)]
pub struct BadBody(pub String);

/// The password of an authentication request's body: XML (`<password><value>…</value>
/// </password>`, what Crowd's Java client sends) or JSON (`{"value":"…"}`), by `Content-Type`,
/// or by the first character when it names neither. No value, or an empty one, is an empty
/// password (which is refused, never sent to a directory).
pub fn password(headers: &HeaderMap, body: &[u8]) -> Result<String, BadBody> {
    let text = std::str::from_utf8(body)
        .map_err(|_| BadBody("the body is not UTF-8; send <password><value>…</value></password>".into()))?;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let json = if kind.contains("json") {
        true
    } else if kind.contains("xml") {
        false
    } else {
        text.trim_start().starts_with('{')
    };
    let value = if json { from_json(text)? } else { from_xml(text)? };
    if value.len() > MAX_PASSWORD_BYTES {
        return Err(BadBody(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(value)
}

fn from_xml(text: &str) -> Result<String, BadBody> {
    // roxmltree refuses DTDs by default: no entity expansion from a client's body.
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        BadBody(format!(
            "the body is not XML ({e}); send <password><value>…</value></password>"
        ))
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "password" {
        return Err(BadBody(format!(
            "the body's element is <{}>; send <password><value>…</value></password>",
            root.tag_name().name()
        )));
    }
    Ok(root
        .children()
        .find(|c| c.has_tag_name("value"))
        .map(|v| {
            v.descendants()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
                .collect()
        })
        .unwrap_or_default())
}

fn from_json(text: &str) -> Result<String, BadBody> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| BadBody(format!("the body is not JSON ({e}); send {{\"value\":\"…\"}}")))?;
    match v.get("value") {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(BadBody("`value` must be a string: send {\"value\":\"…\"}".into())),
    }
}

/// Wrong passwords counted per username (lower-cased), in fixed windows.
pub struct Throttle(Failures<String>);

impl Default for Throttle {
    fn default() -> Self {
        Throttle(Failures::new(MAX_FAILURES, WINDOW, MAX_TRACKED))
    }
}

impl Throttle {
    /// How long `username` is still refused without asking the directory, if it is.
    pub fn refused_for(&self, username: &str, now: Instant) -> Option<Duration> {
        self.0.refused_for(&username.to_lowercase(), now)
    }

    /// Counts a wrong password for `username`.
    pub fn failed(&self, username: &str, now: Instant) {
        self.0.failed(username.to_lowercase(), now);
    }

    /// Forgets `username`'s failures (its password was just accepted).
    pub fn succeeded(&self, username: &str) {
        self.0.succeeded(&username.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn typed(kind: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(kind).unwrap());
        h
    }

    #[test]
    fn the_password_is_read_from_xml_or_json_and_a_bad_body_is_named() {
        let none = HeaderMap::new();
        let xml = b"<?xml version=\"1.0\"?><password><value>s3cr&lt;t</value></password>";
        assert_eq!(password(&typed("application/xml"), xml).unwrap(), "s3cr<t");
        assert_eq!(password(&none, xml).unwrap(), "s3cr<t");
        assert_eq!(password(&none, b"<password/>").unwrap(), "");
        assert_eq!(
            password(&typed("application/json"), br#"{"value":"p w"}"#).unwrap(),
            "p w"
        );
        assert_eq!(password(&none, br#"{"value":null}"#).unwrap(), "");
        for bad in [
            &b"<password><value>x</password>"[..],
            b"<user><value>x</value></user>",
            b"{\"value\":3}",
            b"{\"value\":",
            b"\xff\xfe",
            b"<!DOCTYPE p [<!ENTITY x \"y\">]><password><value>&x;</value></password>",
        ] {
            assert!(password(&none, bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = format!(
            "<password><value>{}</value></password>",
            "x".repeat(MAX_PASSWORD_BYTES + 1)
        );
        assert!(password(&none, long.as_bytes()).is_err());
    }

    #[test]
    fn the_throttle_refuses_after_the_maximum_until_the_window_passes_and_a_success_clears_it() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("Alice", t0);
        }
        assert_eq!(t.refused_for("alice", t0), None, "below the maximum");
        t.failed("ALICE", t0);
        assert!(t.refused_for("alice", t0 + Duration::from_secs(1)).is_some());
        assert_eq!(t.refused_for("bob", t0), None, "per username");
        assert_eq!(t.refused_for("alice", t0 + WINDOW), None, "the window passed");
        // A new window starts counting from zero.
        t.failed("alice", t0 + WINDOW);
        assert_eq!(t.refused_for("alice", t0 + WINDOW), None);
        for _ in 0..MAX_FAILURES {
            t.failed("carol", t0);
        }
        t.succeeded("Carol");
        assert_eq!(t.refused_for("carol", t0), None);
    }
}
