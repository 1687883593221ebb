//! The routes: the token endpoint and the Directory API's listings.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};

use super::{
    API_PATH, GROUP_SCOPE, GoogleState, JSON, JWT_BEARER, MEMBER_SCOPE, MemberType, NOT_AUTHORIZED, Shared, TOKEN_PATH,
    USER_SCOPE, google_error, oauth_error, quota_refusal, user_json,
};
use crate::kit::sim::lock;
use crate::kit::{self, Cursor, Req, keyed_page};

pub(super) async fn dispatch(State(state): State<Shared>, req: Req) -> Response {
    handle(&mut lock(&state), &req)
}

fn handle(s: &mut GoogleState, req: &Req) -> Response {
    if req.path == TOKEN_PATH {
        return token(s, req);
    }
    let Some(rest) = req.path.strip_prefix(API_PATH) else {
        return google_error(StatusCode::NOT_FOUND, "Not Found", "notFound");
    };
    if req.method != Method::GET {
        return google_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "httpMethodNotAllowed",
        );
    }
    let mut line = format!("GET {}", req.path);
    for (i, (k, v)) in req.query.iter().enumerate() {
        line.push(if i == 0 { '?' } else { '&' });
        line.push_str(&format!("{k}={v}"));
    }
    s.requests.push_back(line);
    while s.requests.len() > super::REQUEST_LOG {
        s.requests.pop_front();
    }
    if s.quota_next > 0 {
        s.quota_next -= 1;
        let mut r = quota_refusal(s.quota_answer);
        r.extensions_mut().insert(kit::Throttled);
        return r;
    }
    let segs: Vec<&str> = rest.split('/').filter(|x| !x.is_empty()).collect();
    let needed: &[&str] = match segs.as_slice() {
        ["users"] => &[USER_SCOPE, "https://www.googleapis.com/auth/admin.directory.user"],
        ["groups"] => &[GROUP_SCOPE, "https://www.googleapis.com/auth/admin.directory.group"],
        ["groups", _, "members"] => &[
            GROUP_SCOPE,
            MEMBER_SCOPE,
            "https://www.googleapis.com/auth/admin.directory.group",
        ],
        _ => return google_error(StatusCode::NOT_FOUND, "Not Found", "notFound"),
    };
    if let Err(r) = authorize(s, req, needed) {
        return r;
    }
    match segs.as_slice() {
        ["users"] => users(s, req),
        ["groups"] => groups(s, req),
        ["groups", key, "members"] => members(s, req, key),
        _ => google_error(StatusCode::NOT_FOUND, "Not Found", "notFound"),
    }
}

/// The bearer token: valid, with one of `needed`, acting for an admin.
#[allow(clippy::result_large_err)] // the error is the HTTP answer itself, returned at once
fn authorize(s: &GoogleState, req: &Req, needed: &[&str]) -> Result<(), Response> {
    let invalid = || {
        google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "authError",
        )
    };
    let token = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(invalid)?;
    let t = s.tokens.get(token).ok_or_else(invalid)?;
    if t.expires <= std::time::Instant::now() {
        return Err(invalid());
    }
    if !needed.iter().any(|n| t.scopes.contains(*n)) {
        return Err(google_error(
            StatusCode::FORBIDDEN,
            "Request had insufficient authentication scopes.",
            "insufficientPermissions",
        ));
    }
    match &t.sub {
        Some(sub) if s.admins.contains(&sub.to_ascii_lowercase()) => Ok(()),
        _ => Err(google_error(StatusCode::FORBIDDEN, NOT_AUTHORIZED, "forbidden")),
    }
}

fn invalid_input(message: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, message, "invalid")
}

/// `maxResults` within 1..=`max` (Google refuses values outside the documented range).
#[allow(clippy::result_large_err)]
fn max_results(req: &Req, default: usize, max: usize) -> Result<usize, Response> {
    match req.param("maxResults") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid_input(&format!(
                "Invalid value '{v}'. Values must be within the range: [1, {max}]"
            ))),
        },
    }
}

/// The account or domain asked for: `customer` (`my_customer` or the id) or `domain`.
#[allow(clippy::result_large_err)]
fn owner(s: &GoogleState, req: &Req) -> Result<(), Response> {
    match (req.param("customer"), req.param("domain")) {
        (Some(c), _) if c == "my_customer" || c == s.customer_id => Ok(()),
        (None, Some(d)) if d.eq_ignore_ascii_case(&s.domain) => Ok(()),
        (None, Some(_)) => Err(google_error(StatusCode::BAD_REQUEST, "Domain not found.", "badRequest")),
        (Some(_), _) => Err(google_error(StatusCode::BAD_REQUEST, "Bad Request", "badRequest")),
        (None, None) => Err(google_error(StatusCode::BAD_REQUEST, "Bad Request", "badRequest")),
    }
}

/// The start of a page from `pageToken`.
#[allow(clippy::result_large_err)]
fn cursor(s: &GoogleState, req: &Req) -> Result<Cursor<String>, Response> {
    Cursor::from_param(&s.sealer, req.param("pageToken")).map_err(|_| invalid_input("Invalid Input"))
}

/// A subset of the users query syntax: `isSuspended=true|false`, `orgUnitPath=/x`,
/// `email:prefix*`; clauses separated by spaces are ANDed.
fn user_matches(query: &str, u: &super::GoogleUser) -> Option<bool> {
    let mut all = true;
    for clause in query.split_whitespace() {
        let ok = if let Some(v) = clause.strip_prefix("isSuspended=") {
            u.suspended == (v.parse::<bool>().ok()?)
        } else if let Some(v) = clause.strip_prefix("orgUnitPath=") {
            let v = v.trim_matches('\'');
            u.org_unit_path == v || u.org_unit_path.starts_with(&format!("{v}/"))
        } else if let Some(v) = clause.strip_prefix("email:") {
            prefix_match(&u.primary_email, v)
        } else {
            return None;
        };
        all &= ok;
    }
    Some(all)
}

/// `email:eng*` or `name:'Dev*'` against a group.
fn group_matches(query: &str, g: &super::GoogleGroup) -> Option<bool> {
    let mut all = true;
    for clause in query.split_whitespace() {
        let ok = if let Some(v) = clause.strip_prefix("email:") {
            prefix_match(&g.email, v)
        } else if let Some(v) = clause.strip_prefix("name:") {
            prefix_match(&g.name, v.trim_matches('\''))
        } else {
            return None;
        };
        all &= ok;
    }
    Some(all)
}

fn prefix_match(value: &str, pattern: &str) -> bool {
    let value = value.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_suffix('*') {
        Some(p) => value.starts_with(p),
        None => value == pattern || value.split('@').next() == Some(pattern.as_str()),
    }
}

/// A listing's page: `items` keyed by id in order, from where `here` starts (built lazily, so a
/// page costs its own size, not the listing's); `field` omitted when empty.
fn page(
    s: &GoogleState,
    req: &Req,
    here: &Cursor<String>,
    size: usize,
    kind: &str,
    field: &str,
    items: impl Iterator<Item = (String, Value)>,
) -> Response {
    let p = keyed_page(here, size, items, &req.page_fault);
    let mut body = json!({"kind": kind, "etag": format!("\"{:016x}\"", kit::ids::random_u64())});
    if !p.items.is_empty() {
        body[field] = Value::Array(p.items);
    }
    if let Some(next) = p.next {
        body["nextPageToken"] = json!(next.token(&s.sealer));
    }
    kit::errors::json(StatusCode::OK, JSON, &body)
}

/// The entries of `map` after the cursor's key, in key order.
fn after<'m, T>(map: &'m BTreeMap<String, T>, here: &Cursor<String>) -> impl Iterator<Item = (&'m String, &'m T)> + 'm {
    use std::ops::Bound;
    let from = match &here.after {
        Some(a) => Bound::Excluded(a.clone()),
        None => Bound::Unbounded,
    };
    map.range((from, Bound::Unbounded))
}

fn users(s: &mut GoogleState, req: &Req) -> Response {
    if let Err(r) = owner(s, req) {
        return r;
    }
    let size = match max_results(req, 100, 500) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let here = match cursor(s, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let query = req.param("query").unwrap_or("").to_string();
    let probe = super::GoogleUser {
        id: String::new(),
        primary_email: String::new(),
        given_name: String::new(),
        family_name: String::new(),
        suspended: false,
        archived: false,
        org_unit_path: String::new(),
        etag: String::new(),
    };
    if user_matches(&query, &probe).is_none() {
        return invalid_input("Invalid Input");
    }
    let domain = (req.param("customer").is_none()).then(|| format!("@{}", s.domain));
    let malformed = s.malformed_users > 0;
    s.malformed_users = s.malformed_users.saturating_sub(1);
    let customer = s.customer_id.clone();
    let mut first = malformed;
    let items = after(&s.users, &here)
        .filter(|(_, u)| {
            domain
                .as_ref()
                .is_none_or(|d| u.primary_email.to_ascii_lowercase().ends_with(d.as_str()))
        })
        .filter(|(_, u)| user_matches(&query, u) == Some(true))
        .map(|(id, u)| {
            let mut v = user_json(u, &customer);
            if std::mem::take(&mut first)
                && let Some(o) = v.as_object_mut()
            {
                o.remove("primaryEmail");
            }
            (id.clone(), v)
        });
    page(s, req, &here, size, "admin#directory#users", "users", items)
}

fn groups(s: &mut GoogleState, req: &Req) -> Response {
    if req.param("userKey").is_none()
        && let Err(r) = owner(s, req)
    {
        return r;
    }
    let size = match max_results(req, 200, 200) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let here = match cursor(s, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let query = req.param("query").unwrap_or("").to_string();
    let probe = super::GoogleGroup {
        id: String::new(),
        email: String::new(),
        name: String::new(),
        description: String::new(),
        etag: String::new(),
    };
    if group_matches(&query, &probe).is_none() {
        return invalid_input("Invalid Input");
    }
    let items = after(&s.groups, &here)
        .filter(|(_, g)| group_matches(&query, g) == Some(true))
        .map(|(id, g)| {
            let count = s.members.get(&g.id).map_or(0, |m| m.len());
            let mut v = json!({
                "kind": "admin#directory#group",
                "id": g.id,
                "etag": g.etag,
                "email": g.email,
                "name": g.name,
                "directMembersCount": count.to_string(),
                "description": g.description,
                "adminCreated": true,
            });
            if g.description.is_empty()
                && let Some(o) = v.as_object_mut()
            {
                o.remove("description");
            }
            (id.clone(), v)
        });
    page(s, req, &here, size, "admin#directory#groups", "groups", items)
}

fn members(s: &mut GoogleState, req: &Req, key: &str) -> Response {
    let key = url::form_urlencoded::parse(format!("k={key}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let by_id = s.groups.contains_key(&key).then(|| key.clone());
    let Some(group) = by_id.or_else(|| {
        s.groups
            .values()
            .find(|g| g.email.eq_ignore_ascii_case(&key))
            .map(|g| g.id.clone())
    }) else {
        return google_error(StatusCode::NOT_FOUND, "Resource Not Found: groupKey", "notFound");
    };
    let size = match max_results(req, 200, 200) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let here = match cursor(s, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let derived = req.param("includeDerivedMembership") == Some("true");
    let mut listed: BTreeMap<String, MemberType> = s.members.get(&group).cloned().unwrap_or_default();
    if derived {
        // Every user reachable through nested groups, once.
        let mut seen = BTreeSet::from([group.clone()]);
        let mut stack: Vec<String> = listed
            .iter()
            .filter(|(_, t)| **t == MemberType::Group)
            .map(|(m, _)| m.clone())
            .collect();
        while let Some(g) = stack.pop() {
            if !seen.insert(g.clone()) {
                continue;
            }
            for (m, t) in s.members.get(&g).into_iter().flatten() {
                match t {
                    MemberType::User => {
                        listed.entry(m.clone()).or_insert(MemberType::User);
                    }
                    MemberType::Group => stack.push(m.clone()),
                }
            }
        }
    }
    let items = after(&listed, &here).filter_map(|(id, t)| {
        let (id, t) = (id.clone(), *t);
        let (email, kind) = match t {
            MemberType::User => (s.users.get(&id)?.primary_email.clone(), "USER"),
            MemberType::Group => (s.groups.get(&id)?.email.clone(), "GROUP"),
        };
        let v = json!({
            "kind": "admin#directory#member",
            "etag": format!("\"m{id}\""),
            "id": id,
            "email": email,
            "role": "MEMBER",
            "type": kind,
            "status": "ACTIVE",
            "delivery_settings": "ALL_MAIL",
        });
        Some((id, v))
    });
    page(s, req, &here, size, "admin#directory#members", "members", items)
}

/// `POST /token`: the JWT-bearer grant.
fn token(s: &mut GoogleState, req: &Req) -> Response {
    if req.method != Method::POST {
        return oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Method not allowed.");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body).into_owned().collect();
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match param("grant_type") {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type",
            );
        }
    }
    let Some(assertion) = param("assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let invalid_grant = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return invalid_grant("Invalid JWT: The JWT is not well formed.");
    };
    let Some(claims) = unverified_claims(assertion) else {
        return invalid_grant("Invalid JWT: The JWT is not well formed.");
    };
    let claim = |n: &str| claims.get(n).and_then(Value::as_str);
    let Some(sa) = claim("iss").and_then(|iss| s.service_accounts.get(iss)).cloned() else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    };
    if header.alg != Algorithm::RS256 {
        return invalid_grant("Invalid JWT Signature.");
    }
    let mut v = Validation::new(Algorithm::RS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    let mut expired = false;
    let verified = sa
        .keys
        .iter()
        .filter(|(kid, _)| header.kid.as_deref().is_none_or(|k| k == kid))
        .filter_map(|(_, key)| key.as_ref())
        .any(|key| match jsonwebtoken::decode::<Value>(assertion, key, &v) {
            Ok(_) => true,
            Err(e) => {
                expired |= matches!(e.kind(), ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature);
                false
            }
        });
    let lifetime_ok = match (
        claims.get("iat").and_then(Value::as_i64),
        claims.get("exp").and_then(Value::as_i64),
    ) {
        (Some(iat), Some(exp)) => exp > iat && exp - iat <= 3600,
        _ => false,
    };
    if expired || !lifetime_ok {
        return invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if !verified {
        return invalid_grant("Invalid JWT Signature.");
    }
    // The token endpoint as the client addressed it.
    let own = format!("http://{}{TOKEN_PATH}", req.header("host").unwrap_or("127.0.0.1"));
    let aud_ok = matches!(claim("aud"), Some(a) if a == own || a == "https://oauth2.googleapis.com/token");
    if !aud_ok {
        return invalid_grant("Invalid JWT: Failed audience check.");
    }
    let Some(scope) = claim("scope").filter(|x| !x.trim().is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Empty or missing scope not allowed.",
        );
    };
    let scopes: BTreeSet<String> = scope.split_whitespace().map(str::to_string).collect();
    let sub = claim("sub").map(str::to_string);
    if let Some(sub) = &sub {
        let known = s.users.values().any(|u| u.primary_email.eq_ignore_ascii_case(sub))
            || s.admins.contains(&sub.to_ascii_lowercase());
        if !known {
            return invalid_grant("Invalid email or User ID");
        }
        let granted = s.delegation.get(&sa.client_id);
        if !granted.is_some_and(|g| scopes.is_subset(g)) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
            );
        }
    }
    let (token, lifetime) = s.issue_token(scopes, sub);
    kit::errors::json(
        StatusCode::OK,
        JSON,
        &json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}),
    )
}

/// The claims of a JWT before its signature is checked (to find the service account).
fn unverified_claims(jwt: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
