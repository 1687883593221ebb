//! The simulator's routes: the realm's token endpoint and the admin reads, each with its paging
//! and its errors.

use std::time::Instant;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{GroupsApi, KcGroup, KeycloakState, Role, answer, error};
use crate::kit::{Offset, PageFault, Req};

/// Users and members per page when `max` is not given (Keycloak's default).
const DEFAULT_MAX: usize = 100;
/// Sub-groups per page when `max` is not given (the document's default for `/children`).
const DEFAULT_CHILDREN_MAX: usize = 10;

/// Answers one request.
pub(super) fn handle(s: &mut KeycloakState, req: &Req) -> Response {
    let Some(path) = req.path.strip_prefix(s.prefix.as_str()) else {
        return not_found();
    };
    let segs: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    match segs.as_slice() {
        ["realms", realm, "protocol", "openid-connect", "token"] => token(s, req, realm),
        ["admin", "realms", realm, rest @ ..] => admin(s, req, realm, rest),
        _ => not_found(),
    }
}

/// RESTEasy's answer to a path no resource serves.
fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESTEASY003210: Could not find resource for full path",
    )
}

/// An OAuth error of the token endpoint.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    answer(status, &json!({"error": code, "error_description": description}))
}

/// `POST /realms/{realm}/protocol/openid-connect/token`: client credentials in the form body
/// or as HTTP Basic.
fn token(s: &mut KeycloakState, req: &Req, realm: &str) -> Response {
    if realm != s.realm {
        return error(StatusCode::NOT_FOUND, "Realm does not exist");
    }
    if req.method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "HTTP 405 Method Not Allowed");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if field("grant_type").as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant_type",
        );
    }
    let (client_id, secret) = match basic(req) {
        Some(pair) => pair,
        None => (
            field("client_id").unwrap_or_default(),
            field("client_secret").unwrap_or_default(),
        ),
    };
    let invalid = "Invalid client or Invalid client credentials";
    let Some(client) = s.clients.get(&client_id) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", invalid);
    };
    if client.secret != secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized_client", invalid);
    }
    if !client.service_accounts {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client not enabled to retrieve service account",
        );
    }
    let token = s.issue_token(&client_id);
    answer(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "expires_in": s.token_lifetime,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email"
        }),
    )
}

/// `Authorization: Basic base64(client_id:client_secret)`.
fn basic(req: &Req) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, value) = req.header("authorization")?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// The roles of the client whose bearer token the request carries; `None` without a valid one.
fn caller_roles(s: &KeycloakState, req: &Req) -> Option<Vec<Role>> {
    let token = req.header("authorization")?.strip_prefix("Bearer ")?.trim();
    let (client, expiry) = s.tokens.get(token)?;
    if *expiry <= Instant::now() {
        return None;
    }
    Some(s.clients.get(client)?.roles.iter().copied().collect())
}

fn forbidden() -> Response {
    error(StatusCode::FORBIDDEN, "HTTP 403 Forbidden")
}

/// The page `first`/`max` ask for; `default_max` when `max` is absent (`None`: everything).
fn window(req: &Req, default_max: Option<usize>) -> Offset {
    let first = req.param("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max = req.param("max").and_then(|v| v.parse::<i64>().ok());
    let max = match max {
        // Keycloak takes a negative max as "no limit".
        Some(m) if m < 0 => None,
        Some(m) => Some(m as usize),
        None => default_max,
    };
    Offset::exact(first, max)
}

fn page(items: Vec<Value>, at: &Offset) -> Response {
    answer(StatusCode::OK, &Value::Array(at.page(items, &PageFault::none()).items))
}

/// `/admin/realms/{realm}/…`.
fn admin(s: &mut KeycloakState, req: &Req, realm: &str, rest: &[&str]) -> Response {
    let Some(roles) = caller_roles(s, req) else {
        return error(StatusCode::UNAUTHORIZED, "HTTP 401 Unauthorized");
    };
    if realm != s.realm {
        return error(StatusCode::NOT_FOUND, "Realm not found.");
    }
    if req.method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "HTTP 405 Method Not Allowed");
    }
    let view_users = roles.contains(&Role::ViewUsers);
    let brief = |default: bool| req.param("briefRepresentation").map_or(default, |v| v == "true");
    // `page_fault` is taken so an injected paging fault never lingers for the next request:
    // Keycloak clients compute `first` themselves, so a page without items ends their listing.
    let _ = &req.page_fault;
    match rest {
        ["users"] => {
            if !view_users {
                return forbidden();
            }
            let brief = brief(false);
            let at = window(req, Some(DEFAULT_MAX));
            let items = at
                .page(s.by_name.values().map(|id| &s.users[id]), &PageFault::none())
                .items
                .into_iter()
                .map(|u| u.to_json(brief))
                .collect();
            answer(StatusCode::OK, &Value::Array(items))
        }
        ["users", "count"] => {
            if !view_users {
                return forbidden();
            }
            answer(StatusCode::OK, &json!(s.users.len()))
        }
        ["groups"] => {
            if !view_users && !roles.contains(&Role::QueryGroups) {
                return forbidden();
            }
            let top: Vec<Value> = s.children_of(None).iter().map(|g| group_json(s, g)).collect();
            page(top, &window(req, None))
        }
        ["groups", "count"] => {
            if !view_users && !roles.contains(&Role::QueryGroups) {
                return forbidden();
            }
            let top = s.children_of(None).len();
            answer(StatusCode::OK, &json!({"count": top}))
        }
        ["groups", id, more @ ..] => {
            if !view_users {
                return forbidden();
            }
            let Some(g) = s.groups.get(*id) else {
                return error(StatusCode::NOT_FOUND, "Could not find group by id");
            };
            match more {
                [] => answer(StatusCode::OK, &group_json(s, g)),
                ["children"] if s.api == GroupsApi::Children => {
                    let kids: Vec<Value> = s.children_of(Some(id)).iter().map(|c| group_json(s, c)).collect();
                    page(kids, &window(req, Some(DEFAULT_CHILDREN_MAX)))
                }
                ["members"] => {
                    let brief = brief(false);
                    let at = window(req, Some(DEFAULT_MAX));
                    let names = s.members.get(*id).into_iter().flatten();
                    let items = at
                        .page(names.filter_map(|n| s.by_name.get(n)), &PageFault::none())
                        .items
                        .into_iter()
                        .map(|uid| s.users[uid].to_json(brief))
                        .collect();
                    answer(StatusCode::OK, &Value::Array(items))
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

/// A `GroupRepresentation` as the group listings give it: with `subGroupCount` and an empty
/// `subGroups` (23+), or with the whole sub-tree inline (before 23).
fn group_json(s: &KeycloakState, g: &KcGroup) -> Value {
    let mut v = json!({
        "id": g.id,
        "name": g.name,
        "path": s.path(&g.id),
        "subGroups": [],
        "attributes": {},
        "realmRoles": [],
        "clientRoles": {},
        "access": {"view": true, "viewMembers": true, "manageMembers": false, "manage": false, "manageMembership": false}
    });
    if let Some(p) = &g.parent {
        v["parentId"] = json!(p);
    }
    let kids = s.children_of(Some(&g.id));
    match s.api {
        GroupsApi::Children => v["subGroupCount"] = json!(kids.len()),
        GroupsApi::Inline => v["subGroups"] = Value::Array(kids.iter().map(|c| group_json(s, c)).collect()),
    }
    v
}
