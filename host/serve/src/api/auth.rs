//! Who may call what: bearer tokens with a role (viewer < operator < admin), the role each
//! operation needs (read from the OpenAPI document's security requirements), and the IP
//! allow-list with trusted proxies.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi as Doc;

use super::{ApiError, AppState};
use roster_store::{Role, StoreError};

/// The caller of a request, for handlers and the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `token:<name>`.
    pub actor: String,
    /// The token's role.
    pub role: Role,
    /// The client's address (after trusted proxies).
    pub ip: String,
}

impl Caller {
    /// Records in the audit log that this caller did `action` on `subject`.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        subject: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let (actor, ip, action, subject) = (
            self.actor.clone(),
            self.ip.clone(),
            action.to_string(),
            subject.to_string(),
        );
        let detail = detail.map(str::to_string);
        state
            .store
            .blocking(move |store| store.audit(&actor, &ip, &action, &subject, detail.as_deref()))
            .await
    }
}

/// (method, path template) → the least role.
#[derive(Debug, Default)]
pub struct RoleTable(HashMap<(Method, String), Role>);

impl RoleTable {
    /// Reads each operation's role from its `security` requirement on the `token` scheme.
    pub fn from_doc(doc: &Doc) -> RoleTable {
        let mut table = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let ops = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let role = required_role(op).unwrap_or(Role::Admin);
                table.insert((method, path.clone()), role);
            }
        }
        RoleTable(table)
    }

    /// The role an operation needs; operations not in the document need admin (fail closed),
    /// but for the document itself, which every viewer may read.
    pub fn role(&self, method: &Method, path: &str) -> Role {
        if path == "/api/v1/openapi.json" {
            return Role::Viewer;
        }
        self.0
            .get(&(method.clone(), path.to_string()))
            .copied()
            .unwrap_or(Role::Admin)
    }
}

/// The role named in an operation's security requirement (`"token": ["operator"]`).
pub fn required_role(op: &utoipa::openapi::path::Operation) -> Option<Role> {
    let value = serde_json::to_value(op.security.as_ref()?).ok()?;
    value
        .as_array()?
        .iter()
        .filter_map(|req| req.get("token")?.as_array()?.first()?.as_str()?.parse().ok())
        .next()
}

/// The client's address: the peer, or for a trusted proxy the first untrusted address in
/// `X-Forwarded-For` read from the right. Walking stops at an entry that does not parse (after
/// taking off a port), since anything left of it may be the client's own words; the answer is
/// then the last trusted address walked through (the peer when none).
fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text.split(',').collect::<Vec<_>>(),
            // A header that is not text is an entry that does not parse.
            Err(_) => vec![""],
        })
        .collect();
    let mut last_trusted = peer;
    for entry in entries.into_iter().rev() {
        let Some(ip) = forwarded_address(entry) else {
            return last_trusted;
        };
        if !is_trusted(&ip) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// One `X-Forwarded-For` entry as an address: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(with_port) = entry.parse::<SocketAddr>() {
        return Some(with_port.ip());
    }
    entry
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    resp.headers_mut()
        .insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
    resp
}

/// The middleware: open paths pass; everything else needs an allowed address, a live token
/// and its operation's role.
pub async fn authenticate(
    State((service, roles)): State<(AppState, Arc<RoleTable>)>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(req).await;
    }
    // A refusal leaves the request's body unread, so the connection cannot carry another
    // request; saying so keeps a client from reusing it (and failing with a broken pipe).
    let unread_body = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(axum::http::header::TRANSFER_ENCODING);
    match admit(&service, &roles, req).await {
        Ok(req) => next.run(req).await,
        Err(refusal) => {
            let mut refusal = *refusal;
            if unread_body {
                refusal.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            refusal
        }
    }
}

/// The request, with its [`Caller`], when its address, token and role admit it; the refusal
/// otherwise.
async fn admit(service: &AppState, roles: &RoleTable, mut req: Request) -> Result<Request, Box<Response>> {
    let config = service.config();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = client_ip(peer, req.headers(), &config.api.trusted_proxies);
    if !config.api.allow_ips.is_empty() && !config.api.allow_ips.iter().any(|n| n.contains(&ip)) {
        return Err(Box::new(
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{ip} is not in the API's allow-list ([api] allow_ips)"),
            )
            .into_response(),
        ));
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_string);
    let Some(token) = token else {
        return Err(Box::new(unauthorized(
            "a bearer token is required (roster token create --role viewer|operator|admin)",
        )));
    };
    let found = match service.store.blocking(move |store| store.verify_token(&token)).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(Box::new(unauthorized("the token is unknown or revoked"))),
        Err(e) => {
            return Err(Box::new(
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            ));
        }
    };
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let needed = roles.role(req.method(), &template);
    if found.role < needed {
        return Err(Box::new(
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this needs the {} role; the token '{}' is {}",
                    needed.as_str(),
                    found.name,
                    found.role.as_str()
                ),
            )
            .into_response(),
        ));
    }
    req.extensions_mut().insert(Caller {
        actor: format!("token:{}", found.name),
        role: found.role,
        ip: ip.to_string(),
    });
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_through_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // (peer, X-Forwarded-For headers in order, the client's address)
        let table: &[(IpAddr, &[&str], IpAddr)] = &[
            (proxy, &["203.0.113.7, 10.1.1.1"], ip("203.0.113.7")),
            (stranger, &["203.0.113.7, 10.1.1.1"], stranger),
            (proxy, &[], proxy),
            // A spoofed left-most entry never wins over the address the proxy saw.
            (proxy, &["1.2.3.4, 203.0.113.7"], ip("203.0.113.7")),
            (proxy, &["1.2.3.4", "203.0.113.7"], ip("203.0.113.7")),
            // Proxies that append a port.
            (proxy, &["1.2.3.4, 203.0.113.7:51234"], ip("203.0.113.7")),
            (proxy, &["1.2.3.4, [2001:db8::7]:443"], ip("2001:db8::7")),
            (proxy, &["1.2.3.4, [2001:db8::7]"], ip("2001:db8::7")),
            (proxy, &["1.2.3.4, 2001:db8::7"], ip("2001:db8::7")),
            (proxy, &["1.2.3.4, 10.1.1.1:80, [fd00::1]:8443"], ip("1.2.3.4")),
            // An entry that does not parse stops the walk: what is left of it is not believed.
            (proxy, &["1.2.3.4, garbage"], proxy),
            (proxy, &["1.2.3.4, unknown, 10.1.1.1"], ip("10.1.1.1")),
            (proxy, &["1.2.3.4, 203.0.113.7:port"], proxy),
            (proxy, &["1.2.3.4, "], proxy),
            (proxy, &["1.2.3.4,,10.9.9.9"], ip("10.9.9.9")),
            // Only trusted proxies all the way: the one nearest the client.
            (proxy, &["10.3.3.3, 10.1.1.1"], ip("10.3.3.3")),
        ];
        for (peer, headers, expected) in table {
            let mut h = HeaderMap::new();
            for v in *headers {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            assert_eq!(client_ip(*peer, &h, &trusted), *expected, "peer {peer}, {headers:?}");
        }
    }
}
