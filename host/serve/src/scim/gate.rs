//! Who may push to a source, and how much: the source must be a push source; the caller's
//! address must be in the source's allow-list (`X-Forwarded-For` believed only from
//! `[api] trusted_proxies`, as for the API); its bearer token must be one of the source's; a
//! token may make `requests_per_minute` requests (a token bucket; more get a 429 with
//! Retry-After); a body may be `max_body_kib` long (more gets a 413). Every refusal, and every
//! error axum itself answers (405, a path that does not parse), is a SCIM error body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use roster_directory::Feed;
use roster_http::{Budget, BudgetConfig};
use roster_scim::ScimError;

use super::{Pushing, ScimState, error_response};
use crate::api::auth::{Refused, client_ip, peer_ip};

/// The request budget of each token: `roster_http::Budget`, the token bucket sources are
/// paced with, full at first (`requests_per_minute` may come at once), refilled at that rate.
/// Keyed by the rate too, so a changed `requests_per_minute` takes effect at the next request.
#[derive(Default)]
pub(super) struct Buckets(Mutex<HashMap<(i64, u32), Arc<Budget>>>);

impl Buckets {
    /// Takes one request from the token's budget; how long to wait when it is spent.
    fn take(&self, token: i64, per_minute: u32) -> Result<(), Duration> {
        let budget = {
            let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            all.retain(|(t, rate), _| *t != token || *rate == per_minute);
            all.entry((token, per_minute))
                .or_insert_with(|| {
                    Arc::new(Budget::new(BudgetConfig {
                        per_second: f64::from(per_minute.max(1)) / 60.0,
                        burst: per_minute.max(1),
                    }))
                })
                .clone()
        };
        budget.try_acquire()
    }
}

/// The source named in a path under `/scim/v2/`.
fn source_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/scim/v2/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// The address the identity provider reached, for `meta.location` and `Location`: the Host
/// header (and a trusted proxy's `X-Forwarded-Proto`/`-Host`).
fn base_url(req: &Request, trusted_proxy: bool, source: &str) -> String {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let forwarded = |name: &str| if trusted_proxy { header(name) } else { None };
    let scheme = forwarded("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = forwarded("x-forwarded-host")
        .or_else(|| header("host"))
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}/scim/v2/{source}")
}

fn refuse(status: u16, detail: String) -> Response {
    error_response(&ScimError::status(status, detail))
}

/// What an anonymous client is told of a source that takes no pushes (pulled, disabled or
/// unknown): the same for each, so the answer does not tell them apart.
const NOT_SERVED: &str = "no SCIM endpoint here; the base URL is /scim/v2/{source} of a source with [source.push] protocol = \"scim\", and the token Roster made for it";

/// The 404 for a source that takes no pushes. Only a caller holding a live token of that very
/// source (one made while it was pushed to) is told why (`detail`); everyone else gets
/// [`NOT_SERVED`], and the reason goes to the log.
async fn not_served(state: &Arc<ScimState>, token: Option<String>, source: &str, detail: String) -> Response {
    let known = match token {
        Some(token) => {
            let src = source.to_string();
            matches!(
                state
                    .service
                    .store
                    .blocking(move |s| s.verify_scim_token(&src, &token))
                    .await,
                Ok(Some(_))
            )
        }
        None => false,
    };
    if known {
        return refuse(404, detail);
    }
    tracing::info!(source, "SCIM request for a source that takes no pushes: {detail}");
    refuse(404, NOT_SERVED.into())
}

/// The bearer token of a request, if it has one.
fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map(|_| &v[7..])
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The middleware in front of every SCIM route.
pub(super) async fn admit(State(state): State<Arc<ScimState>>, req: Request, next: Next) -> Response {
    // A refusal before the body is read leaves it unread, so the connection cannot carry
    // another request; saying so keeps a client from reusing it (as the API's gate does).
    let unread_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let response = match check(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(mut refusal) => {
            if unread_body && refusal.status() != StatusCode::PAYLOAD_TOO_LARGE {
                refusal
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            refusal
        }
    };
    scim_errors(response).await
}

async fn check(state: &Arc<ScimState>, req: Request) -> Result<Request, Response> {
    let Some(source) = source_of(req.uri().path()) else {
        return Err(refuse(404, "no such SCIM endpoint; use /scim/v2/{source}/…".into()));
    };
    let config = state.service.config();
    let push = match config.source(&source).map(|s| (s.enabled, s.feed())) {
        Some((true, Feed::Push(push))) => push.clone(),
        // Before a token is checked, a pulled, a disabled and an unknown source answer alike:
        // an anonymous client learns nothing of how Roster is configured.
        Some((false, Feed::Push(_))) => {
            return Err(not_served(
                state,
                bearer(&req),
                &source,
                format!("the source '{source}' is disabled; enable it in roster.toml to accept pushes"),
            )
            .await);
        }
        Some((_, Feed::Pull(_))) => {
            return Err(not_served(
                state,
                bearer(&req),
                &source,
                format!(
                    "the source '{source}' is pulled by a plugin, not pushed to; give it [source.push] protocol = \"scim\" to accept SCIM pushes"
                ),
            )
            .await);
        }
        None => return Err(not_served(state, bearer(&req), &source, format!("no source named '{source}'")).await),
    };
    let peer = peer_ip(&req);
    let trusted = &config.api.trusted_proxies;
    let ip = client_ip(peer, req.headers(), trusted);
    let subject = format!("{} {}", req.method(), req.uri().path());
    // 401s and 403s go to the audit log, coalesced as the API's are.
    let audit = |action: &'static str, status: u16, detail: &str| {
        state.refusals.note(
            &state.service.store,
            &Refused {
                action,
                actor: "anonymous".into(),
                ip,
                subject: subject.clone(),
                detail: format!("{detail} ({status})"),
            },
        );
    };
    if !push.allow_ips.is_empty() && !push.allow_ips.iter().any(|n| n.contains(&ip)) {
        // The audit names the source; the answer, to a client not yet authenticated, does not.
        audit(
            "auth.forbidden",
            403,
            &format!("{ip} is not in the allow-list of the source '{source}' ([source.push] allow_ips)"),
        );
        return Err(refuse(
            403,
            format!("{ip} may not push here: the address is not in the source's allow-list ([source.push] allow_ips)"),
        ));
    }
    let token = bearer(&req);
    let unauthorized = |detail: String| {
        audit("auth.unauthenticated", 401, &detail);
        let mut r = refuse(401, detail);
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    let Some(token) = token else {
        return Err(unauthorized(format!(
            "a bearer token is required: create one with `roster scim token create {source}` and give it to the identity provider as its secret token"
        )));
    };
    let src = source.clone();
    let found = state
        .service
        .store
        .blocking(move |s| s.verify_scim_token(&src, &token))
        .await;
    let token = match found {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(unauthorized(format!(
                "the token is not a live token of the source '{source}' (unknown, revoked, or another source's); see `roster scim token list {source}`"
            )));
        }
        Err(e) => {
            tracing::error!(source, "SCIM: cannot check the token: {e}");
            return Err(refuse(
                500,
                "Roster could not check the token; the server log has the details".into(),
            ));
        }
    };
    if let Err(wait) = state.buckets.take(token.id, push.requests_per_minute) {
        let secs = wait.as_secs() + 1;
        let mut r = refuse(
            429,
            format!(
                "the token '{}' made more than {} requests in a minute ([source.push] requests_per_minute); retry after {secs} s",
                token.name, push.requests_per_minute
            ),
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Err(r);
    }
    // The body is read here, against the source's cap, so a handler never sees more.
    let cap = usize::try_from(push.max_body_kib)
        .unwrap_or(usize::MAX)
        .saturating_mul(1024);
    let too_large = || {
        refuse(
            413,
            format!(
                "the body is larger than {} KiB, the cap of the source '{source}' ([source.push] max_body_kib)",
                push.max_body_kib
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(refuse_body(req.into_body(), declared, too_large()).await);
    }
    let trusted_proxy = trusted.iter().any(|n| n.contains(&peer));
    let base = base_url(&req, trusted_proxy, &source);
    let (mut parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Err(refuse(400, "the body could not be read to its end".into()));
        };
        if bytes.len() + chunk.len() > cap {
            return Err(refuse_body(Body::from_stream(stream), None, too_large()).await);
        }
        bytes.extend_from_slice(&chunk);
    }
    let pushing = Pushing {
        source,
        base_url: base,
        token: token.name,
        ip: ip.to_string(),
    };
    parts.extensions.insert(pushing);
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Bodies up to this size are read to their end (and dropped) before a 413, so the client,
/// still sending, reads the answer instead of a reset connection; a larger one is cut off.
const DRAIN_AT_MOST: usize = 16 * 1024 * 1024;

/// The 413 for a body over the cap, after reading what is left of it (up to
/// [`DRAIN_AT_MOST`]); the connection is closed when it could not all be read.
async fn refuse_body(body: Body, declared: Option<usize>, mut response: Response) -> Response {
    let mut read = 0usize;
    let mut drained = declared.is_none_or(|n| n <= DRAIN_AT_MOST);
    if drained {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => read += c.len(),
                Err(_) => {
                    drained = false;
                    break;
                }
            }
            if read > DRAIN_AT_MOST {
                drained = false;
                break;
            }
        }
    }
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Gives every error answer a SCIM body: axum's own (405, a path or a header that does not
/// parse) come as plain text.
async fn scim_errors(response: Response) -> Response {
    let status = response.status();
    let is_scim = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(super::MEDIA_TYPE));
    if status.is_success() || status.is_informational() || status == StatusCode::NOT_MODIFIED || is_scim {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this SCIM endpoint".to_string(),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
        _ => text,
    };
    let mut r = error_response(&ScimError::status(status.as_u16(), detail));
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            r.headers_mut().insert(name, v.clone());
        }
    }
    r.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_rate_and_then_waits() {
        let b = Buckets::default();
        for _ in 0..60 {
            assert!(b.take(1, 60).is_ok());
        }
        let wait = b.take(1, 60).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(b.take(2, 60).is_ok(), "each token has its own bucket");
    }

    #[test]
    fn the_source_is_the_segment_after_scim_v2() {
        assert_eq!(source_of("/scim/v2/entra/Users").as_deref(), Some("entra"));
        assert_eq!(source_of("/scim/v2/okta").as_deref(), Some("okta"));
        assert_eq!(source_of("/scim/v2/"), None);
    }
}
