//! The simulator's routes: the token endpoint, `/auth/rate_limit`, the v2 users and roles reads
//! and the v1 groups listing, each with its paging and its errors.

use std::time::Instant;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    Api, CredentialScope, OneLoginState, OneLoginUser, TOKEN_PATH, answer, error_for, iso, now, reason, v1_error,
    v2_error,
};
use crate::kit::Req;
use crate::kit::{self, Cursor};

/// Users, roles and role members per v2 page when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` v2 listings honour; more is served as this.
const MAX_LIMIT: usize = 1000;
/// Groups per v1 page (not settable).
const V1_PAGE: usize = 50;

/// Answers one request.
pub(super) fn handle(s: &mut OneLoginState, req: &Req) -> Response {
    if req.path == TOKEN_PATH {
        return token(s, req);
    }
    let segs: Vec<&str> = req.path.split('/').filter(|x| !x.is_empty()).collect();
    match segs.as_slice() {
        ["auth", "rate_limit"] => rate_limit(s, req),
        ["api", "1" | "2", rest @ ..] => api(s, req, segs[1], rest),
        _ => error_for(&req.path, StatusCode::NOT_FOUND, reason(StatusCode::NOT_FOUND)),
    }
}

/// An error in the shape of the request's API.
fn err(req: &Req, status: StatusCode, message: &str) -> Response {
    error_for(&req.path, status, message)
}

/// `POST /auth/oauth2/v2/token`: Basic client credentials and a JSON body naming the grant.
fn token(s: &mut OneLoginState, req: &Req) -> Response {
    if req.method != Method::POST {
        return v1_error(StatusCode::NOT_FOUND, "Not Found", "Not Found");
    }
    let client_id = match basic_credentials(req) {
        Some((id, secret)) if s.credentials.get(&id).is_some_and(|c| c.secret == secret) => id,
        _ => return v1_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Authentication Failure"),
    };
    let json_body = req
        .header("content-type")
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/json"));
    let grant = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| v.get("grant_type").and_then(Value::as_str).map(str::to_string));
    if !json_body || grant.as_deref() != Some("client_credentials") {
        return v1_error(StatusCode::BAD_REQUEST, "bad request", "grant_type is incorrect/absent");
    }
    let (access_token, expires_in) = s.issue_token(&client_id);
    answer(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "created_at": iso(now()),
            "expires_in": expires_in,
            "refresh_token": super::hex(&kit::ids::random_bytes(32)),
            "token_type": "bearer",
            "account_id": s.account_id,
        }),
    )
}

/// `Authorization: Basic base64(client_id:client_secret)`.
fn basic_credentials(req: &Req) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, value) = req.header("authorization")?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// The scope of the credential behind the request's bearer token; `None` when there is no
/// token, or it is unknown or expired.
/// API v1 also takes the form its reference documents, `bearer:<token>`.
fn authenticate(s: &OneLoginState, req: &Req) -> Option<CredentialScope> {
    let header = req.header("authorization").map(str::trim).unwrap_or("");
    let documented_v1 = header
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer:") && matches!(Api::of(&req.path), Api::V1))
        .map(|_| header[7..].trim());
    let token = documented_v1
        .or_else(|| {
            header
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
        })
        .unwrap_or("");
    s.tokens
        .get(token)
        .filter(|t| Instant::now() < t.expires)
        .and_then(|t| s.credentials.get(&t.client_id))
        .map(|c| c.scope)
}

/// The 401 for a request without a live token, in the shape of its API.
fn unauthorised(req: &Req) -> Response {
    let message = match Api::of(&req.path) {
        Api::V2 => "Unauthorized",
        Api::V1 | Api::Auth => "Authentication Failure",
    };
    err(req, StatusCode::UNAUTHORIZED, message)
}

/// `GET /auth/rate_limit`: the current window, not counted against it.
fn rate_limit(s: &OneLoginState, req: &Req) -> Response {
    if authenticate(s, req).is_none() {
        return unauthorised(req);
    }
    let h = s.limit.peek(Instant::now());
    answer(
        StatusCode::OK,
        &json!({
            "status": {"error": false, "code": 200, "type": "success", "message": "Success"},
            "data": {
                "X-RateLimit-Limit": h.limit,
                "X-RateLimit-Remaining": h.remaining,
                "X-RateLimit-Reset": h.reset,
            },
        }),
    )
}

/// A route's number: `None` for a segment that is none.
fn number(seg: &str) -> Option<i64> {
    seg.parse().ok()
}

/// `/api/1/…` and `/api/2/…`: authentication, scope, then the resource.
fn api(s: &OneLoginState, req: &Req, version: &str, rest: &[&str]) -> Response {
    let Some(scope) = authenticate(s, req) else {
        return unauthorised(req);
    };
    if !scope.reads_users() {
        return err(req, StatusCode::FORBIDDEN, "Forbidden");
    }
    if req.method != Method::GET {
        return err(req, StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let not_found = || err(req, StatusCode::NOT_FOUND, "Not Found");
    match (version, rest) {
        ("2", ["users"]) => users(s, req),
        ("2", ["users", id]) => match number(id).and_then(|id| s.users.get(&id)) {
            Some(u) => answer(StatusCode::OK, &u.to_json()),
            None => not_found(),
        },
        ("2", ["users", id, "roles"]) => match number(id).filter(|id| s.users.contains_key(id)) {
            Some(id) => answer(StatusCode::OK, &json!(s.user_roles(id))),
            None => not_found(),
        },
        ("2", ["roles"]) => v2_list(s, req, s.roles.keys().copied().collect(), |id| {
            s.roles.get(&id).map(|r| json!({"id": r.id, "name": r.name}))
        }),
        ("2", ["roles", id]) => match number(id).and_then(|id| s.roles.get(&id)) {
            Some(r) => answer(StatusCode::OK, &json!({"id": r.id, "name": r.name})),
            None => not_found(),
        },
        ("2", ["roles", id, "users"]) => match number(id).filter(|id| s.roles.contains_key(id)) {
            Some(id) => v2_list(s, req, s.role_users(id), |id| {
                let u = s.users.get(&id)?;
                let name = format!("{} {}", u.firstname, u.lastname);
                Some(json!({"id": u.id, "name": name.trim(), "email": u.email, "username": u.username}))
            }),
            None => not_found(),
        },
        ("1", ["groups"]) => groups(s, req),
        ("1", ["groups", id]) => match number(id).and_then(|id| s.groups.get(&id)) {
            Some(g) => answer(
                StatusCode::OK,
                &json!({
                    "status": {"error": false, "code": 200, "type": "success", "message": "Success"},
                    "data": [{"id": g.id, "name": g.name, "reference": null}],
                }),
            ),
            None => not_found(),
        },
        _ => not_found(),
    }
}

/// `GET /api/2/users`, optionally only those updated since a time.
fn users(s: &OneLoginState, req: &Req) -> Response {
    let since = match req.param("updated_since").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match DateTime::parse_from_rfc3339(v) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                return v2_error(
                    StatusCode::BAD_REQUEST,
                    &format!("updated_since `{v}` is not an ISO 8601 time such as 2026-01-02T03:04:05.000Z"),
                );
            }
        },
    };
    let keys = s
        .users
        .values()
        .filter(|u| since.is_none_or(|t| u.updated_at >= t))
        .map(|u| u.id)
        .collect();
    v2_list(s, req, keys, |id| s.users.get(&id).map(OneLoginUser::to_json))
}

/// The `limit` of a v2 listing: 50 when absent, at most 1000, at least 1.
fn limit(req: &Req) -> Result<usize, String> {
    match req.param("limit").filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<i64>()
            .map(|n| usize::try_from(n.clamp(1, MAX_LIMIT as i64)).unwrap_or(DEFAULT_LIMIT))
            .map_err(|_| format!("limit `{v}` is not a number")),
    }
}

/// The base of links: the public URL, or the request's `Host`.
fn base_url(s: &OneLoginState, req: &Req) -> String {
    s.public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", req.header("host").unwrap_or("127.0.0.1")))
}

/// A link to this listing at `cursor`, with the effective limit and the request's other filters.
fn link(base: &str, req: &Req, cursor_param: &str, cursor: &str, limit: Option<usize>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair(cursor_param, cursor);
    if let Some(l) = limit {
        q.append_pair("limit", &l.to_string());
    }
    for (k, v) in &req.query {
        let cursor = ["cursor", "after_cursor", "before_cursor"].contains(&k.as_str());
        if !cursor && (limit.is_none() || k != "limit") {
            q.append_pair(k, v);
        }
    }
    format!("{base}{}?{}", req.path, q.finish())
}

/// Where the page before the one starting at index `start` starts, when there is one.
fn previous(keys: &[i64], start: usize, size: usize) -> Option<Cursor<i64>> {
    (start > 0).then(|| match start.saturating_sub(size) {
        0 => Cursor::start(),
        i => Cursor::after(keys[i - 1]),
    })
}

/// Index of the first key after the cursor's.
fn start_of(keys: &[i64], here: &Cursor<i64>) -> usize {
    here.after.map_or(0, |a| keys.partition_point(|k| *k <= a))
}

/// One page of a v2 listing (`keys` in id order, each item rendered only when on the page, as
/// listings of a hundred thousand users are paged a thousand at a time) with OneLogin's paging
/// headers.
fn v2_list(s: &OneLoginState, req: &Req, keys: Vec<i64>, render: impl Fn(i64) -> Option<Value>) -> Response {
    let size = match limit(req) {
        Ok(l) => l,
        Err(e) => return v2_error(StatusCode::BAD_REQUEST, &e),
    };
    let Ok(here) = Cursor::<i64>::from_param(&s.sealer, req.param("cursor")) else {
        return v2_error(StatusCode::BAD_REQUEST, "Invalid cursor");
    };
    let start = start_of(&keys, &here);
    let total = keys.len();
    let items = keys[start..].iter().filter_map(|&k| Some((k, render(k)?)));
    let page = kit::keyed_page(&here, size, items, &req.page_fault);
    let base = base_url(s, req);
    let mut links = Vec::new();
    let mut r = answer(StatusCode::OK, &Value::Array(page.items.clone()));
    let h = r.headers_mut();
    h.insert("total-count", HeaderValue::from(total));
    h.insert("total-pages", HeaderValue::from(total.div_ceil(size).max(1)));
    h.insert("current-page", HeaderValue::from(start / size + 1));
    h.insert("page-items", HeaderValue::from(page.items.len()));
    if let Some(next) = &page.next {
        let c = next.token(&s.sealer);
        links.push(format!(
            "<{}>; rel=\"next\"",
            link(&base, req, "cursor", &c, Some(size))
        ));
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.insert("after-cursor", v);
        }
    }
    if let Some(prev) = previous(&keys, start, size) {
        let c = prev.token(&s.sealer);
        links.push(format!(
            "<{}>; rel=\"prev\"",
            link(&base, req, "cursor", &c, Some(size))
        ));
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.insert("before-cursor", v);
        }
    }
    // A Host header with bytes no header may carry yields no link rather than a panic.
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        h.insert(header::LINK, v);
    }
    r
}

/// `GET /api/1/groups`: 50 groups a page in the v1 envelope, `after_cursor` to go on and
/// `before_cursor` to go back.
fn groups(s: &OneLoginState, req: &Req) -> Response {
    let given = req.param("after_cursor").or_else(|| req.param("before_cursor"));
    let Ok(here) = Cursor::<i64>::from_param(&s.sealer, given) else {
        return v1_error(StatusCode::BAD_REQUEST, "bad request", "Invalid cursor");
    };
    let keys: Vec<i64> = s.groups.keys().copied().collect();
    let start = start_of(&keys, &here);
    let items = s
        .groups
        .values()
        .skip(start)
        .map(|g| (g.id, json!({"id": g.id, "name": g.name, "reference": null})));
    let page = kit::keyed_page(&here, V1_PAGE, items, &req.page_fault);
    let base = base_url(s, req);
    let after = page.next.as_ref().map(|c| c.token(&s.sealer));
    let before = previous(&keys, start, V1_PAGE).map(|c| c.token(&s.sealer));
    let next_link = after.as_ref().map(|c| link(&base, req, "after_cursor", c, None));
    let previous_link = before.as_ref().map(|c| link(&base, req, "before_cursor", c, None));
    answer(
        StatusCode::OK,
        &json!({
            "status": {"error": false, "code": 200, "type": "success", "message": "Success"},
            "pagination": {
                "before_cursor": before,
                "after_cursor": after,
                "previous_link": previous_link,
                "next_link": next_link,
            },
            "data": page.items,
        }),
    )
}
