//! Who may read the served directory: an application Roster knows, by HTTP Basic with its name
//! and password (`Store::crowd_app_verify`; no, malformed or wrong credentials → 401 with
//! `WWW-Authenticate`, as Crowd's `BasicApplicationAuthenticationFilter` answers), calling from
//! one of its allowed addresses (the client address as the API computes it: `X-Forwarded-For`
//! believed only from `[api] trusted_proxies`; otherwise 403). A body may be [`MAX_BODY`]
//! long. Every answer, refusals included, carries `X-Embedded-Crowd-Version`: Crowd's client
//! checks for it before it looks at the status.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;

use super::{Caller, CrowdState, Format, MAX_BODY, Reason, Refusal, VERSION_HEADER};
use crate::api::auth::{Refused, client_ip, peer_ip};

/// The realm Crowd names in its challenge.
const CHALLENGE: &str = "BASIC realm=\"Crowd REST Service\"";

/// How often an application's use is recorded, at most (ms).
const USE_RECORDED_EVERY_MS: i64 = 60_000;

/// Adds the headers every answer carries (crowd-rest.md §1, §7): the product and API version,
/// and no caching (the client's HTTP cache must not serve a stale directory).
pub(super) fn stamp(headers: &mut HeaderMap) {
    headers.insert("x-embedded-crowd-version", HeaderValue::from_static(VERSION_HEADER));
    headers.insert("x-crowd-user-management-version", HeaderValue::from_static("1.4"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// The middleware in front of every Crowd route.
pub(super) async fn admit(State(state): State<Arc<CrowdState>>, req: Request, next: Next) -> Response {
    // A refusal before the body is read leaves it unread, so the connection cannot carry
    // another request; saying so keeps a client from reusing it.
    let unread_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = match check(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(mut refusal) => {
            if unread_body {
                refusal
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            refusal
        }
    };
    stamp(response.headers_mut());
    response
}

/// `(name, password)` of an `Authorization: Basic …` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// The 401: a text body, as Crowd's filter writes it, and the challenge.
fn unauthorised(detail: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        format!("Application failed to authenticate: {detail}"),
    )
        .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    r
}

/// Whether `ip` is one of the application's allowed addresses (single addresses and CIDR
/// ranges). An entry that does not parse allows nothing; the store refuses to save one.
fn allowed(list: &[String], ip: IpAddr) -> bool {
    list.iter()
        .filter_map(|a| roster_http::addr::parse_range(a).ok())
        .any(|net| net.contains(&ip))
}

/// The request, with its [`Caller`] and its body read, or the refusal (every refusal comes
/// before the body is read to its end).
async fn check(state: &Arc<CrowdState>, req: Request) -> Result<Request, Response> {
    let config = state.service.config();
    let ip = client_ip(peer_ip(&req), req.headers(), &config.api.trusted_proxies);
    let subject = format!("{} {}", req.method(), req.uri().path());
    // 401s and 403s go to the audit log, coalesced as the API's are.
    let audit = |action: &'static str, actor: String, detail: String| {
        state.refusals.note(
            &state.service.store,
            &Refused {
                action,
                actor,
                ip,
                subject: subject.clone(),
                detail,
            },
        );
    };
    let Some((name, password)) = basic_credentials(req.headers()) else {
        audit(
            "auth.unauthenticated",
            "anonymous".into(),
            "Crowd endpoint: no HTTP Basic credentials (401)".into(),
        );
        return Err(unauthorised(
            "send the application's name and password as HTTP Basic credentials (the password Roster showed when the application was created)",
        ));
    };
    let (n, p) = (name.clone(), password);
    let found = state.service.store.blocking(move |s| s.crowd_app_verify(&n, &p)).await;
    let app = match found {
        Ok(Some(app)) => app,
        Ok(None) => {
            audit(
                "auth.unauthenticated",
                "anonymous".into(),
                format!("Crowd endpoint: unknown application '{name}' or wrong password (401)"),
            );
            return Err(unauthorised("unknown application or wrong password"));
        }
        Err(e) => {
            return Err(Refusal::failed(&e).render(Format::of(req.headers())));
        }
    };
    if !allowed(&app.allowed, ip) {
        audit(
            "auth.forbidden",
            format!("crowd-app:{}", app.name),
            format!(
                "Crowd endpoint: {ip} is not an allowed address of the application '{}' (403)",
                app.name
            ),
        );
        // Crowd's client reads a 403's body as text (crowd-rest.md §1).
        let mut r = (
            StatusCode::FORBIDDEN,
            format!(
                "Client with address \"{ip}\" is forbidden from making requests to the application, {}. Add the address (or its range) to the application's allowed addresses in Roster.",
                app.name
            ),
        )
            .into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain;charset=UTF-8"),
        );
        return Err(r);
    }
    note_use(state, &app.name);
    let format = Format::of(req.headers());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Reason::IllegalArgument,
            format!(
                "the request body is larger than {} KiB, the most this server reads; a search restriction is far smaller",
                MAX_BODY / 1024
            ),
        )
        .render(format)
    };
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let (mut parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            let r = Refusal::illegal("the request body could not be read to its end").render(format);
            return Err(r);
        };
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    let visible = app
        .groups
        .map(|gs| Arc::new(gs.iter().map(|g| g.to_lowercase()).collect()));
    parts.extensions.insert(Caller { app: app.name, visible });
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Records that `app` was used, at most once a minute per application, off the request path.
fn note_use(state: &Arc<CrowdState>, app: &str) {
    let now = chrono::Utc::now().timestamp_millis();
    {
        let mut used = state.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.get(app).is_some_and(|last| now - last < USE_RECORDED_EVERY_MS) {
            return;
        }
        used.insert(app.to_string(), now);
    }
    let (store, app) = (state.service.store.clone(), app.to_string());
    tokio::task::spawn_blocking(move || {
        if let Err(e) = store.crowd_app_used(&app, now) {
            tracing::warn!(app, "cannot record the use of a Crowd application: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_anything_else_is_none() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("bitbucket:p:a:ss");
        h.insert(header::AUTHORIZATION, format!("Basic {enc}").parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("bitbucket".into(), "p:a:ss".into())));
        for bad in ["Bearer abc", "Basic !!!", "Basic", "Basic Ym9i"] {
            h.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert_eq!(basic_credentials(&h), None, "{bad}");
        }
    }

    #[test]
    fn allowed_addresses_are_single_addresses_and_ranges() {
        let list = vec!["192.0.2.0/24".to_string(), "2001:db8::1".into(), "junk".into()];
        assert!(allowed(&list, "192.0.2.77".parse().unwrap()));
        assert!(allowed(&list, "2001:db8::1".parse().unwrap()));
        assert!(!allowed(&list, "198.51.100.1".parse().unwrap()));
        assert!(!allowed(&[], "127.0.0.1".parse().unwrap()));
    }
}
