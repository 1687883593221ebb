//! Roster as a Crowd user server: the `usermanagement/1` REST API (crowd-rest.md §1–§7) that
//! Bitbucket, Jira, Confluence and Bamboo read through an "Atlassian Crowd" directory, served
//! under `/rest/usermanagement/1` on `roster serve`'s listener.
//!
//! What it serves is the state of the `crowd-directory` target, which runs plan, guard and
//! apply like any other target: this module only reads it, through the store's `served_*`
//! methods, and never plans or writes. Every write the API has (users, groups, memberships,
//! passwords) is answered 403 APPLICATION_PERMISSION_DENIED. `POST /authentication` only
//! asks the person's source whether a password is right; nothing is written.
//!
//! - `gate`: the application's HTTP Basic credentials (`crowd_app_verify`), its allowed
//!   addresses (the API's client address, `X-Forwarded-For` believed only from `[api]
//!   trusted_proxies`), the body cap, and the headers every answer carries.
//! - `routes`: the resources; full searches and `/group/membership` are streamed from keyset
//!   pages, so a 100k-user answer is never held in memory.
//! - `authentication`: `POST /authentication`'s body and its throttle; the password is checked
//!   by the person's source when it can verify passwords (an LDAP bind), never kept.
//! - `search`: the served users' and groups' properties, as `roster-crowd`'s search
//!   restrictions of `POST /search` read them.
//! - `xml`: the entities, with JAXB's element names.

mod authentication;
mod gate;
mod routes;
mod search;
mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::api::AppState;
use crate::api::auth::{REFUSAL_WINDOW, REFUSALS_PER_WINDOW, RefusalAudit};

/// Where the API lives (crowd-rest.md §1: `<server URL>/rest/usermanagement/1`).
pub const BASE: &str = "/rest/usermanagement/1";

/// The value of `X-Embedded-Crowd-Version`, without which Crowd's client refuses the server.
pub const VERSION_HEADER: &str = concat!("Roster/", env!("CARGO_PKG_VERSION"));

/// The largest request body read (a search restriction is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// What the Crowd routes share.
pub(crate) struct CrowdState {
    service: AppState,
    /// The audit of refused requests (401, 403), coalesced like the API's.
    refusals: Arc<RefusalAudit>,
    /// When each application's use was last recorded (ms): `crowd_app_used` at most once a
    /// minute, not on every request.
    used: Mutex<HashMap<String, i64>>,
    /// Wrong passwords per username, for `POST /authentication`'s throttle.
    logins: authentication::Throttle,
}

/// The application a request comes from, set by the gate for the handlers.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Its name.
    app: String,
    /// The groups it may see, lower-cased; `None`: every group.
    visible: Option<Arc<Vec<String>>>,
}

impl Caller {
    /// Whether the application may see the group `name`.
    fn sees_group(&self, name: &str) -> bool {
        self.visible
            .as_ref()
            .is_none_or(|v| v.iter().any(|g| *g == name.to_lowercase()))
    }

    /// The groups it may see, as the store's `only_in` takes them.
    fn only_in(&self) -> Option<Vec<String>> {
        self.visible.as_ref().map(|v| v.as_ref().clone())
    }
}

/// The representation an answer is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// JAXB's XML: what Crowd's Java client always asks for.
    Xml,
    /// The same names as JSON keys, when `Accept` asks for JSON and not XML.
    Json,
}

impl Format {
    /// XML unless `Accept` asks for JSON and not XML.
    fn of(headers: &HeaderMap) -> Format {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase();
        if accept.contains("application/json") && !accept.contains("application/xml") && !accept.contains("text/xml") {
            Format::Json
        } else {
            Format::Xml
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/xml;charset=UTF-8",
            Format::Json => "application/json;charset=UTF-8",
        }
    }
}

/// Reasons of Crowd's error entity (crowd-rest.md §3).
pub(crate) use roster_crowd::Reason;

/// An error answer not yet rendered: `<error><reason/><message/></error>` with a status.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    reason: Reason,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: Reason, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            message: message.into(),
        }
    }

    /// 400 ILLEGAL_ARGUMENT.
    fn illegal(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, Reason::IllegalArgument, message)
    }

    /// 500 OPERATION_FAILED for a store error; the details go to the log, not the client.
    fn failed(e: &roster_store::StoreError) -> Refusal {
        tracing::error!("Crowd endpoint: the store failed: {e}");
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Reason::OperationFailed,
            "Roster could not read the served directory; the server log has the details",
        )
    }

    /// The answer, in `format`.
    fn render(&self, format: Format) -> Response {
        let body = match format {
            Format::Xml => xml::error_xml(self.reason, &self.message),
            Format::Json => xml::error_json(self.reason, &self.message),
        };
        answer(self.status, format, body)
    }
}

impl From<roster_store::StoreError> for Refusal {
    fn from(e: roster_store::StoreError) -> Self {
        Refusal::failed(&e)
    }
}

/// An answer with a body in `format`.
fn answer(status: StatusCode, format: Format, body: impl Into<axum::body::Body>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    r
}

/// The Crowd routes, behind the gate; merged into what `roster serve` serves by `api::routes`.
pub fn routes(service: AppState) -> axum::Router<AppState> {
    let state = Arc::new(CrowdState {
        service,
        refusals: Arc::new(RefusalAudit::new(REFUSAL_WINDOW, REFUSALS_PER_WINDOW)),
        used: Mutex::new(HashMap::new()),
        logins: authentication::Throttle::default(),
    });
    axum::Router::new()
        .route(BASE, any(routes::dispatch))
        .route(&format!("{BASE}/"), any(routes::dispatch))
        .route(&format!("{BASE}/{{*rest}}"), any(routes::dispatch))
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::admit))
        // The gate reads the body against its own cap ([`MAX_BODY`]), answering in Crowd's terms.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// The answer to a path under `/rest/usermanagement/` that is not this API (another version):
/// with Crowd's headers, so a client reads the 404 rather than doubting the server.
pub fn not_found(path: &str) -> Response {
    let mut r = Refusal::new(
        StatusCode::NOT_FOUND,
        Reason::UnsupportedOperation,
        format!("no such resource: {path}; Roster serves Crowd's usermanagement API version 1 under {BASE}"),
    )
    .render(Format::Xml);
    gate::stamp(r.headers_mut());
    r
}

#[cfg(test)]
mod tests {
    /// The store methods this module may call: reads of the served directory, the check of an
    /// application's password, and the record of its last use. Anything else (`served_apply`,
    /// pruning, creating or changing applications) would let a client's request write.
    const ALLOWED: &[&str] = &[
        "served_token",
        "served_events_since",
        "served_users_page",
        "served_groups_page",
        "served_memberships_page",
        "served_view",
        "served_user",
        "served_user_by_key",
        "served_group",
        "served_user_groups",
        "served_group_users",
        "crowd_app_verify",
        "crowd_app_used",
    ];

    /// Every `served_…` or `crowd_app…` name in `source`.
    fn store_names(source: &str) -> Vec<String> {
        let mut found = Vec::new();
        for prefix in ["served_", "crowd_app"] {
            for (at, _) in source.match_indices(prefix) {
                let before = source[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let name: String = source[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.len() > prefix.len() {
                    found.push(name);
                }
            }
        }
        found
    }

    #[test]
    fn the_endpoint_calls_only_store_methods_that_read() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("gate.rs", include_str!("gate.rs")),
            ("authentication.rs", include_str!("authentication.rs")),
            ("routes.rs", include_str!("routes.rs")),
            ("search.rs", include_str!("search.rs")),
            ("xml.rs", include_str!("xml.rs")),
        ];
        let mut seen = 0;
        for (file, source) in sources {
            // The code, not its tests (this one names what it refuses).
            let code = source.split("#[cfg(test)]").next().unwrap_or(source);
            for name in store_names(code) {
                assert!(
                    ALLOWED.contains(&name.as_str()),
                    "crowd/{file} names `{name}`, which is not one of the store's reads: the Crowd endpoint never writes"
                );
                seen += 1;
            }
        }
        assert!(seen > ALLOWED.len(), "the scan finds the store calls ({seen})");
        assert_eq!(
            store_names("s.served_apply(&c); x.crowd_app_delete(n)"),
            ["served_apply", "crowd_app_delete"]
        );
    }
}
