//! The admin pages (`/ui`): server-rendered HTML (askama templates in `host/serve/templates`,
//! compiled into the binary, escaped by default) with a vendored htmx that only enhances: every
//! page reads without JavaScript.
//!
//! They act only through the service, with the roles of the REST API: a person logs in with an
//! API token (`session`), and each change a page offers needs the role its API operation needs,
//! read from the same OpenAPI document the API's gate reads ([`UiState::may`]). The IP
//! allow-list applies as for the API. Every change carries the session's CSRF token (the
//! `X-CSRF-Token` header from htmx, a hidden `csrf_token` field from plain forms) and must come
//! from this origin (`Sec-Fetch-Site`, `Origin`).
//!
//! A page is one module here (a handler taking [`Ui`] and returning a template struct with a
//! [`Chrome`]), one template extending `base.html`, and one line in [`routes`].

mod assets;
mod audit;
mod dashboard;
mod directory;
mod format;
mod mapping;
mod plans;
mod plugins;
mod runs;
mod session;
mod sources;
mod tokens;

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, Method, StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::AppState;
use crate::api::auth::{Caller, RefusalAudit, Refused, RoleTable};
use roster_store::Role;

/// Everything a page handler can reach: the service, the API's role table, the login limiter.
pub struct UiState {
    /// The service the API acts through.
    pub service: AppState,
    /// The least role of each API operation (from the OpenAPI document).
    roles: RoleTable,
    /// Failed logins per address.
    logins: session::LoginLimiter,
    /// The API's audit of refusals: failed and throttled logins are written through it.
    refusals: Arc<RefusalAudit>,
}

/// The shared state of the pages.
pub type Shared = Arc<UiState>;

impl UiState {
    /// Audits a refused login through the API's bounded refusal audit (one entry per kind and
    /// address per window, the rest counted).
    fn refused_login(&self, ip: std::net::IpAddr, action: &'static str, detail: String) {
        self.refusals.note(
            &self.service.store,
            &Refused {
                action,
                actor: "anonymous".to_string(),
                ip,
                subject: "POST /ui/login".to_string(),
                detail,
            },
        );
    }

    /// Whether `role` may do what the API operation `method path` does (its path as the
    /// OpenAPI document writes it, e.g. `/api/v1/plans/{id}/approve`).
    pub fn may(&self, role: Role, method: Method, path: &str) -> bool {
        role >= self.roles.role(&method, path)
    }
}

/// The pages' routes: one line per page.
pub fn routes(
    service: AppState,
    doc: &utoipa::openapi::OpenApi,
    refusals: Arc<RefusalAudit>,
) -> axum::Router<AppState> {
    let state = Arc::new(UiState {
        service,
        roles: RoleTable::from_doc(doc),
        logins: session::LoginLimiter::default(),
        refusals,
    });
    let gated = axum::Router::new()
        .route("/ui", get(dashboard::page))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/fragments/in-progress", get(dashboard::in_progress))
        .route("/ui/runs", get(runs::list).post(runs::start))
        .route("/ui/runs/{id}", get(runs::one))
        .route("/ui/runs/{id}/progress", get(runs::progress))
        .route("/ui/runs/{id}/cancel", post(runs::cancel))
        .route("/ui/runs/{id}/results", get(runs::results))
        .route("/ui/runs/{id}/results.csv", get(runs::export_csv))
        .route("/ui/runs/{id}/results.json", get(runs::export_json))
        .route("/ui/plans/{id}", get(plans::page))
        .route("/ui/plans/{id}/approve", post(plans::approve))
        .route("/ui/plans/{id}/reject", post(plans::reject))
        .route("/ui/tokens", get(tokens::page).post(tokens::create))
        .route("/ui/tokens/{id}/revoke", post(tokens::revoke))
        .route("/ui/audit", get(audit::page))
        .route("/ui/sources", get(sources::list))
        .route("/ui/sources/{id}", get(sources::page).post(sources::save))
        .route("/ui/sources/{id}/check", post(sources::check))
        .route("/ui/sources/{id}/mapping", get(mapping::page).post(mapping::save))
        .route("/ui/sources/{id}/mapping/check", post(mapping::check))
        .route("/ui/plugins", get(plugins::page))
        .route("/ui/plugins/reload", post(plugins::reload))
        .route(
            "/ui/plugins/upload",
            post(plugins::upload).layer(axum::extract::DefaultBodyLimit::max(
                crate::api::plugins::MAX_UPLOAD_BYTES,
            )),
        )
        .route("/ui/directory", get(directory::page))
        .route("/ui/logout", post(session::logout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::gate));
    axum::Router::new()
        .route("/ui/login", get(session::login_page).post(session::login))
        .route(assets::HTMX_PATH, get(assets::htmx))
        .route(assets::CSS_PATH, get(assets::css))
        .route(assets::JS_PATH, get(assets::js))
        .merge(gated)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// The Content-Security-Policy of every page: scripts and styles only from this origin's
/// files (no inline script or style, no eval), no frames, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Security headers on every answer under `/ui`; nothing but the versioned assets is cached.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with(assets::PREFIX);
    let mut resp = next.run(req).await;
    secure(resp.headers_mut(), is_asset);
    resp
}

/// The answer to a path under `/ui` that names no page (used by the API's fallback, which
/// answers every path no router has).
pub fn not_found() -> Response {
    let mut resp = UiError::not_found("no such page; start from the dashboard (/ui)").into_response();
    secure(resp.headers_mut(), false);
    resp
}

fn secure(h: &mut axum::http::HeaderMap, is_asset: bool) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !is_asset {
        h.insert("cache-control", HeaderValue::from_static("no-store"));
    }
}

/// The logged-in person behind a request, as the gate found them.
#[derive(Clone)]
pub struct Ui {
    /// Who, for the service and the audit log (`token:<name>`, their role, their address).
    pub caller: Caller,
    /// The session's CSRF token, for the forms a page renders.
    pub csrf: String,
    /// The state of the pages.
    pub state: Shared,
}

impl Ui {
    /// The page frame for a page titled `title`, with `nav` (its [`Nav`] entry) highlighted.
    pub fn chrome(&self, title: impl Into<String>, nav: Nav) -> Chrome {
        let may = |method: Method, path: &str| self.state.may(self.caller.role, method, path);
        Chrome {
            title: title.into(),
            nav,
            signed_in: true,
            actor: self.caller.actor.clone(),
            role: self.caller.role.as_str(),
            csrf: self.csrf.clone(),
            can_run: may(Method::POST, "/api/v1/runs"),
            can_approve: may(Method::POST, "/api/v1/plans/{id}/approve"),
            is_admin: self.caller.role == Role::Admin,
        }
    }

    /// 403 unless the caller may do what API operation `method path` does.
    pub fn require(&self, method: Method, path: &str) -> Result<(), UiError> {
        if self.state.may(self.caller.role, method.clone(), path) {
            return Ok(());
        }
        Err(UiError::forbidden(format!(
            "this needs the {} role (as {method} {path} in the API); you are logged in as {} with the {} role",
            self.state.roles.role(&method, path).as_str(),
            self.caller.actor,
            self.caller.role.as_str()
        )))
    }

    /// The service.
    pub fn service(&self) -> &AppState {
        &self.state.service
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ui>()
            .cloned()
            .ok_or_else(|| UiError::new(StatusCode::UNAUTHORIZED, "log in first (/ui/login)"))
    }
}

/// The navigation entries; the page's own is marked current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// No entry (login, errors).
    None,
    /// `/ui`.
    Dashboard,
    /// `/ui/runs`, a run's pages and its plan's review.
    Runs,
    /// `/ui/tokens`.
    Tokens,
    /// `/ui/audit`.
    Audit,
    /// `/ui/sources` and a source's pages (settings, mapping editor).
    Sources,
    /// `/ui/plugins`.
    Plugins,
    /// `/ui/directory`.
    Directory,
}

/// What the frame of every page (`base.html`) shows: the title, the navigation, who is logged
/// in, and the CSRF token for htmx and forms.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's `<title>` and `<h1>`.
    pub title: String,
    /// The current navigation entry.
    pub nav: Nav,
    /// Whether anyone is logged in (not on the login page).
    pub signed_in: bool,
    /// `token:<name>`.
    pub actor: String,
    /// Their role.
    pub role: &'static str,
    /// The session's CSRF token.
    pub csrf: String,
    /// May start runs (operator and up, as `POST /api/v1/runs`).
    pub can_run: bool,
    /// May approve and reject plans (as `POST /api/v1/plans/{id}/approve`).
    pub can_approve: bool,
    /// Is an administrator (tokens).
    pub is_admin: bool,
}

impl Chrome {
    /// The frame of a page seen before logging in.
    pub fn anonymous(title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            nav: Nav::None,
            signed_in: false,
            actor: String::new(),
            role: "",
            csrf: String::new(),
            can_run: false,
            can_approve: false,
            is_admin: false,
        }
    }

    /// Whether the navigation entry named `key` (`dashboard`, `runs`, …) is this page's.
    pub fn nav_is(&self, key: &str) -> bool {
        let current = match self.nav {
            Nav::None => "",
            Nav::Dashboard => "dashboard",
            Nav::Runs => "runs",
            Nav::Tokens => "tokens",
            Nav::Audit => "audit",
            Nav::Sources => "sources",
            Nav::Plugins => "plugins",
            Nav::Directory => "directory",
        };
        current == key
    }

    /// The htmx asset's path.
    pub fn htmx_path(&self) -> &'static str {
        assets::HTMX_PATH
    }

    /// The stylesheet's path.
    pub fn css_path(&self) -> &'static str {
        assets::CSS_PATH
    }

    /// The script's path.
    pub fn js_path(&self) -> &'static str {
        assets::JS_PATH
    }
}

/// A page that could not be shown, as a page saying why, with its status.
#[derive(Debug)]
pub struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    /// An error with a status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError {
            status,
            message: message.into(),
        }
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<crate::api::ApiError> for UiError {
    fn from(e: crate::api::ApiError) -> Self {
        UiError::new(e.status(), e.message())
    }
}

impl From<crate::service::ServiceError> for UiError {
    fn from(e: crate::service::ServiceError) -> Self {
        crate::api::ApiError::from(e).into()
    }
}

impl From<roster_store::StoreError> for UiError {
    fn from(e: roster_store::StoreError) -> Self {
        crate::api::ApiError::from(e).into()
    }
}

/// The error page.
#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), "{}", self.message);
        }
        let title = self.status.canonical_reason().unwrap_or("Error").to_string();
        let page = ErrorPage {
            chrome: Chrome::anonymous(title),
            status: self.status.as_u16(),
            message: self.message,
        };
        (self.status, page).into_response()
    }
}

/// A page handler's result.
pub type UiResult<T> = Result<T, UiError>;

#[cfg(test)]
mod tests;
