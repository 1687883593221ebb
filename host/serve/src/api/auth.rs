//! Who may call what: bearer tokens with a role (viewer < operator < admin), the role each
//! operation needs (read from the OpenAPI document's security requirements), and the IP
//! allow-list with trusted proxies.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
/// then the last trusted address walked through (the peer when none). Shared by the API and
/// the SCIM endpoint (`crate::scim`), which both read `[api] trusted_proxies`. Every address
/// is canonical (`::ffff:a.b.c.d` as `a.b.c.d`, see [`peer_ip`]), so IPv4 entries of the
/// allow-lists and of `trusted_proxies` match IPv4 clients of a dual-stack listener.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
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

/// The address of the connection a request came on (loopback when the server was not given
/// connection info, as in tests that call the router directly), canonical: a listener on `[::]`
/// sees an IPv4 client as `::ffff:a.b.c.d`, which no IPv4 network contains.
pub(crate) fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// One `X-Forwarded-For` entry as a canonical address: `ip`, `ip:port`, `[v6]` or `[v6]:port`
/// (a dual-stack proxy may write an IPv4 client as `::ffff:a.b.c.d`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = if let Ok(ip) = entry.parse::<IpAddr>() {
        ip
    } else if let Ok(with_port) = entry.parse::<SocketAddr>() {
        with_port.ip()
    } else {
        IpAddr::V6(entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?)
    };
    Some(ip.to_canonical())
}

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    resp.headers_mut()
        .insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
    resp
}

/// What the middleware needs besides the service: each operation's role, and the audit of
/// refusals.
pub struct Gate {
    roles: RoleTable,
    refusals: Arc<RefusalAudit>,
}

impl Gate {
    /// The gate for the operations of `doc`.
    pub fn new(doc: &Doc) -> Gate {
        Gate {
            roles: RoleTable::from_doc(doc),
            refusals: Arc::new(RefusalAudit::new(REFUSAL_WINDOW, REFUSALS_PER_WINDOW)),
        }
    }

    /// The audit of refusals, shared with the pages' login (one bound for both).
    pub(crate) fn refusals(&self) -> Arc<RefusalAudit> {
        self.refusals.clone()
    }
}

/// How long one window of refusal auditing lasts.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);
/// Refusals written one by one per window, at most (one per kind and address).
pub const REFUSALS_PER_WINDOW: usize = 30;

/// A refused request as the audit log records it.
pub(crate) struct Refused {
    /// `auth.unauthenticated` (401) or `auth.forbidden` (403).
    pub(crate) action: &'static str,
    /// `token:<name>`, or `anonymous` without a known token.
    pub(crate) actor: String,
    /// The client's address.
    pub(crate) ip: IpAddr,
    /// "METHOD /path".
    pub(crate) subject: String,
    /// Why, with the status answered.
    pub(crate) detail: String,
}

/// A refused request, for its answer and the audit log.
struct Refusal {
    response: Response,
    /// `auth.unauthenticated` (401) or `auth.forbidden` (403).
    action: &'static str,
    /// `token:<name>`, or `anonymous` without a known token.
    actor: String,
    ip: IpAddr,
    /// "METHOD /path".
    subject: String,
    reason: String,
}

/// Refusals (401, 403) in the audit log, coalesced so that a flood cannot grow it without
/// bound: in each window, the first refusal of each kind from each address is written, up to
/// a cap; the rest are counted and written as one `auth.refusals-left-out` entry when the
/// window ends.
pub struct RefusalAudit {
    window: Duration,
    per_window: usize,
    now: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    started: Option<Instant>,
    written: HashSet<(&'static str, IpAddr)>,
    left_out: u64,
    summary_due: bool,
}

impl RefusalAudit {
    /// One entry per kind and address per `window`, at most `per_window` in all.
    pub fn new(window: Duration, per_window: usize) -> RefusalAudit {
        RefusalAudit {
            window,
            per_window,
            now: Mutex::new(Window::default()),
        }
    }

    /// Writes `refusal` to the audit log, or counts it as left out.
    fn record(self: &Arc<Self>, store: &Arc<roster_store::Store>, refusal: &Refusal) {
        self.note(
            store,
            &Refused {
                action: refusal.action,
                actor: refusal.actor.clone(),
                ip: refusal.ip,
                subject: refusal.subject.clone(),
                detail: format!("{} ({})", refusal.reason, refusal.response.status().as_u16()),
            },
        );
    }

    /// Writes a refusal to the audit log, or counts it as left out (the API's refusals and
    /// the SCIM endpoint's).
    pub(crate) fn note(self: &Arc<Self>, store: &Arc<roster_store::Store>, refusal: &Refused) {
        let now = Instant::now();
        let mut w = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if w.started.is_none_or(|s| now.duration_since(s) >= self.window) {
            w.started = Some(now);
            w.written.clear();
        }
        if w.written.len() < self.per_window && w.written.insert((refusal.action, refusal.ip)) {
            let (store, actor, ip, action, subject, detail) = (
                store.clone(),
                refusal.actor.clone(),
                refusal.ip.to_string(),
                refusal.action,
                refusal.subject.clone(),
                refusal.detail.clone(),
            );
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.audit(&actor, &ip, action, &subject, Some(&detail)) {
                    tracing::warn!("cannot audit a refused request: {e}");
                }
            });
            return;
        }
        w.left_out += 1;
        if w.summary_due {
            return;
        }
        w.summary_due = true;
        let until = w.started.unwrap_or(now) + self.window;
        let (this, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(until.into()).await;
            let left_out = {
                let mut w = this.now.lock().unwrap_or_else(|p| p.into_inner());
                w.summary_due = false;
                std::mem::take(&mut w.left_out)
            };
            let detail = format!(
                "{left_out} more refused requests within {} s were not recorded one by one (one entry per kind and address, at most {} per window)",
                this.window.as_secs(),
                this.per_window
            );
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = store.audit("roster", "local", "auth.refusals-left-out", "api", Some(&detail)) {
                    tracing::warn!("cannot audit refused requests: {e}");
                }
            })
            .await;
        });
    }
}

/// The middleware: open paths pass; everything else needs an allowed address, a live token
/// and its operation's role. Refusals are audited (coalesced, see [`RefusalAudit`]).
pub async fn authenticate(State((service, gate)): State<(AppState, Arc<Gate>)>, req: Request, next: Next) -> Response {
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
    match admit(&service, &gate.roles, req).await {
        Ok(req) => next.run(req).await,
        Err(Admission::Refused(refusal)) => {
            gate.refusals.record(&service.store, &refusal);
            let mut response = refusal.response;
            if unread_body {
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            response
        }
        Err(Admission::Failed(response)) => *response,
    }
}

/// Why a request was not let through.
enum Admission {
    /// The caller may not: 401 or 403, audited.
    Refused(Box<Refusal>),
    /// Roster could not tell (the store failed): 500.
    Failed(Box<Response>),
}

/// The request, with its [`Caller`], when its address, token and role admit it; the refusal
/// otherwise.
async fn admit(service: &AppState, roles: &RoleTable, mut req: Request) -> Result<Request, Admission> {
    let config = service.config();
    let ip = client_ip(peer_ip(&req), req.headers(), &config.api.trusted_proxies);
    let subject = format!("{} {}", req.method(), req.uri().path());
    let refuse = |status: StatusCode, actor: String, reason: String| {
        let (action, response) = if status == StatusCode::UNAUTHORIZED {
            ("auth.unauthenticated", unauthorized(&reason))
        } else {
            ("auth.forbidden", ApiError::new(status, reason.clone()).into_response())
        };
        Admission::Refused(Box::new(Refusal {
            response,
            action,
            actor,
            ip,
            subject: subject.clone(),
            reason,
        }))
    };
    if !config.api.allow_ips.is_empty() && !config.api.allow_ips.iter().any(|n| n.contains(&ip)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "anonymous".into(),
            format!("{ip} is not in the API's allow-list ([api] allow_ips)"),
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
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "anonymous".into(),
            "a bearer token is required (roster token create --role viewer|operator|admin)".into(),
        ));
    };
    let found = match service.store.blocking(move |store| store.verify_token(&token)).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "anonymous".into(),
                "the token is unknown or revoked".into(),
            ));
        }
        Err(e) => {
            return Err(Admission::Failed(Box::new(
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            )));
        }
    };
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let needed = roles.role(req.method(), &template);
    if found.role < needed {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("token:{}", found.name),
            format!(
                "this needs the {} role; the token '{}' is {}",
                needed.as_str(),
                found.name,
                found.role.as_str()
            ),
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
            // IPv4 as a dual-stack socket or proxy writes it: matched as IPv4.
            (ip("::ffff:10.0.0.2"), &["203.0.113.7"], ip("203.0.113.7")),
            (proxy, &["1.2.3.4, ::ffff:203.0.113.7"], ip("203.0.113.7")),
            (
                proxy,
                &["1.2.3.4, [::ffff:203.0.113.7]:443, ::ffff:10.1.1.1"],
                ip("203.0.113.7"),
            ),
            (ip("::ffff:198.51.100.1"), &["203.0.113.7"], stranger),
        ];
        for (peer, headers, expected) in table {
            let mut h = HeaderMap::new();
            for v in *headers {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            assert_eq!(client_ip(*peer, &h, &trusted), *expected, "peer {peer}, {headers:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_refusals_is_coalesced_and_what_was_left_out_is_counted() {
        let store = Arc::new(roster_store::Store::memory(roster_store::crypto::Key::from_bytes([1; 32])).unwrap());
        let audit = Arc::new(RefusalAudit::new(Duration::from_millis(400), 3));
        let refusal = |ip: &str, action: &'static str| Refusal {
            response: unauthorized("no token"),
            action,
            actor: "anonymous".into(),
            ip: ip.parse().unwrap(),
            subject: "GET /api/v1/sources".into(),
            reason: "no token".into(),
        };
        for _ in 0..500 {
            audit.record(&store, &refusal("203.0.113.7", "auth.unauthenticated"));
        }
        for i in 1..=10 {
            audit.record(&store, &refusal(&format!("198.51.100.{i}"), "auth.forbidden"));
        }
        let count =
            |entries: &[roster_store::AuditEntry], action: &str| entries.iter().filter(|e| e.action == action).count();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let log = store.audit_log(1000).unwrap();
        assert_eq!(log.len(), 4, "{log:?}");
        assert_eq!(count(&log, "auth.unauthenticated"), 1);
        assert_eq!(count(&log, "auth.forbidden"), 2, "at most 3 one by one per window");
        let left_out = log.iter().find(|e| e.action == "auth.refusals-left-out").unwrap();
        assert!(
            left_out
                .detail
                .as_deref()
                .unwrap()
                .starts_with("507 more refused requests"),
            "{left_out:?}"
        );
        // The next window records again.
        audit.record(&store, &refusal("203.0.113.7", "auth.unauthenticated"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let log = store.audit_log(1000).unwrap();
        assert_eq!(count(&log, "auth.unauthenticated"), 2, "{log:?}");
        assert_eq!(log[0].origin, "203.0.113.7");
    }
}
