//! Turning HTTP failures into [`PluginError`]s the host can act on.
//!
//! The host retries `transient` errors later, stops on `auth` and `config` with a message for
//! the administrator, and falls back to a full fetch on `expired-delta`.

use std::time::{Duration, SystemTime};

use crate::{PluginError, Response};

/// How much of a response body an error message quotes.
const EXCERPT_CHARS: usize = 300;

/// Classifies a non-2xx response; `what` names the operation ("list users").
pub fn classify_status(what: &str, resp: &Response) -> PluginError {
    classify_status_with(what, resp, &error_detail(&resp.body))
}

/// [`classify_status`] with the connector's own reading of the body as `detail` (a vendor's
/// error document the SDK does not know), so the status's variant and `Retry-After` stay the
/// SDK's.
pub fn classify_status_with(what: &str, resp: &Response, detail: &str) -> PluginError {
    let status = resp.status;
    match status {
        400 | 422 => PluginError::Config(format!("{what}: the server refused the request ({status}): {detail}")),
        401 => PluginError::Auth(format!(
            "{what}: the credentials were not accepted ({status}): {detail}"
        )),
        403 => PluginError::Auth(format!(
            "{what}: permission denied ({status}); grant the missing permission to Roster's account: {detail}"
        )),
        404 => PluginError::Config(format!("{what}: not found ({status}); check the settings: {detail}")),
        408 | 425 | 429 | 500..=599 => {
            let wait = retry_after(resp, SystemTime::now())
                .map(|d| format!(" (server asked to retry after {} s)", d.as_secs()))
                .unwrap_or_default();
            PluginError::Transient(format!(
                "{what}: the server is unavailable or throttling ({status}){wait}: {detail}"
            ))
        }
        _ => PluginError::Fatal(format!("{what}: unexpected status {status}: {detail}")),
    }
}

/// The `Retry-After` of a response as a wait: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(resp: &Response, now: SystemTime) -> Option<Duration> {
    parse_retry_after(resp.header("retry-after")?, now)
}

/// Parses a `Retry-After` value relative to `now`; a date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The most useful line of an error body: the message fields IdPs use, else the start of it.
pub fn error_detail(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let candidates = [
            v.pointer("/error/message"),     // Microsoft Graph, Google
            v.pointer("/error_description"), // OAuth 2.0 token endpoints
            v.pointer("/errorSummary"),      // Okta
            v.pointer("/errors/0/message"),  // Bitbucket, Keycloak
            v.pointer("/errorMessage"),      // Keycloak
            v.pointer("/detail"),            // SCIM
            v.pointer("/status/message"),    // OneLogin API v1 and its token endpoint
            v.pointer("/message"),
            v.pointer("/error"),
        ];
        if let Some(msg) = candidates.into_iter().flatten().find_map(|m| m.as_str()) {
            return truncate(msg);
        }
    }
    excerpt(body)
}

/// The start of a body as text, for error messages.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        truncate(text)
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_the_variant_the_host_acts_on() {
        type Expect = fn(&PluginError) -> bool;
        let cases: &[(u16, Expect)] = &[
            (400, |e| matches!(e, PluginError::Config(_))),
            (401, |e| matches!(e, PluginError::Auth(_))),
            (403, |e| matches!(e, PluginError::Auth(_))),
            (404, |e| matches!(e, PluginError::Config(_))),
            (429, |e| matches!(e, PluginError::Transient(_))),
            (503, |e| matches!(e, PluginError::Transient(_))),
            (418, |e| matches!(e, PluginError::Fatal(_))),
        ];
        for (status, ok) in cases {
            let e = classify_status("list users", &resp(*status, &[], ""));
            assert!(ok(&e), "{status} gave {e:?}");
        }
    }

    #[test]
    fn a_connector_s_own_detail_replaces_the_body_and_keeps_retry_after() {
        let e = classify_status_with(
            "list users",
            &resp(503, &[("Retry-After", "9")], "<error>…</error>"),
            "OPERATION_FAILED: db",
        );
        assert!(
            matches!(&e, PluginError::Transient(m) if m.ends_with("(503) (server asked to retry after 9 s): OPERATION_FAILED: db")),
            "{e:?}"
        );
    }

    #[test]
    fn messages_quote_the_idp_error_field() {
        let graph = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}"#;
        let e = classify_status("list groups", &resp(403, &[], graph));
        assert!(e.to_string().contains("Insufficient privileges"), "{e}");
        let oauth = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret"}"#;
        let e = classify_status("token", &resp(401, &[], oauth));
        assert!(e.to_string().contains("AADSTS7000215"), "{e}");
        let okta = r#"{"errorCode":"E0000011","errorSummary":"Invalid token provided"}"#;
        assert_eq!(error_detail(okta.as_bytes()), "Invalid token provided");
        let onelogin =
            r#"{"status":{"error":true,"code":401,"type":"Unauthorized","message":"Authentication Failure"}}"#;
        assert_eq!(error_detail(onelogin.as_bytes()), "Authentication Failure");
        assert_eq!(error_detail(b""), "(empty body)");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        let e = classify_status("list users", &resp(429, &[("Retry-After", "7")], ""));
        assert!(e.to_string().contains("retry after 7 s"), "{e}");
    }

    #[test]
    fn long_bodies_are_cut() {
        let long = "x".repeat(1000);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), EXCERPT_CHARS + 1);
    }
}
