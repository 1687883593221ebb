//! Logging in with an API token, the session cookie, and the gate every page passes: the IP
//! allow-list, the session, and for changes the origin check and the CSRF token.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Chrome, Shared, Ui, UiError};
use crate::api::auth::{Caller, client_ip, peer_ip};
use crate::config::UiCookie;
use crate::failures::Failures;

/// The session cookie and the login form's own CSRF cookie (login CSRF: a page elsewhere cannot
/// log a browser in), as `[api] ui_cookie` has them sent.
#[derive(Debug, Clone, Copy)]
struct Cookies {
    session: &'static str,
    login: &'static str,
    secure: bool,
}

impl Cookies {
    fn of(state: &Shared) -> Cookies {
        match state.service.config().api.ui_cookie {
            // `__Host-` binds a cookie to this origin (Secure, `Path=/`, no Domain).
            UiCookie::Secure => Cookies {
                session: "__Host-roster_session",
                login: "__Host-roster_login",
                secure: true,
            },
            UiCookie::Plain => Cookies {
                session: "roster_session",
                login: "roster_login",
                secure: false,
            },
        }
    }

    fn set(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/{secure}; HttpOnly; SameSite=Strict{age}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
    }
}
/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// The header htmx sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed logins allowed per address per window.
const LOGIN_FAILURES: u32 = 10;
/// The window failed logins are counted in.
const LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// The largest form body the gate reads for its CSRF field.
const MAX_FORM: usize = 64 * 1024;

/// Addresses whose failed logins the limiter remembers at most.
const LOGIN_TRACKED: usize = 10_000;

/// Failed logins per address: after [`LOGIN_FAILURES`] in [`LOGIN_WINDOW`], logins from that
/// address are refused (429) until the window ends, so tokens cannot be guessed quickly.
pub struct LoginLimiter(Failures<IpAddr>);

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter(Failures::new(LOGIN_FAILURES, LOGIN_WINDOW, LOGIN_TRACKED))
    }
}

impl LoginLimiter {
    /// Seconds to wait before `ip` may try again; `None`: it may now.
    fn wait(&self, ip: IpAddr) -> Option<u64> {
        self.0
            .refused_for(&ip, Instant::now())
            .map(|left| left.as_secs().max(1))
    }

    fn failed(&self, ip: IpAddr) {
        self.0.failed(ip, Instant::now());
    }
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

/// Refuses a change that does not come from a page of this origin: a `Sec-Fetch-Site` other
/// than `same-origin`, or an `Origin` that is not this host.
fn same_origin(headers: &HeaderMap) -> Result<(), UiError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
    {
        return Err(UiError::forbidden(format!(
            "a change must come from Roster's own pages (Sec-Fetch-Site: {site}); open /ui and try again"
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
        if origin == "null" || origin_host != host {
            return Err(UiError::forbidden(format!(
                "a change must come from Roster's own pages (Origin: {origin}); open /ui and try again"
            )));
        }
    }
    Ok(())
}

/// The login form.
#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    login_csrf: String,
    next: String,
    error: Option<String>,
}

/// Where to go after logging in.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path of the pages themselves: never another site (`//evil`, `/\evil`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui") && !n.contains("//") && !n.contains('\\') => n.to_string(),
        _ => "/ui".to_string(),
    }
}

fn login_form(cookies: Cookies, next: String, error: Option<String>, status: StatusCode) -> Response {
    let token = match random_hex() {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let page = LoginPage {
        chrome: Chrome::anonymous("Log in"),
        login_csrf: token.clone(),
        next,
        error,
    };
    let mut resp = (status, page).into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, cookies.set(cookies.login, &token, Some(900)));
    resp
}

fn random_hex() -> Result<String, UiError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the system gave no randomness for the login form ({e}); try again"),
        )
    })?;
    Ok(hex::encode(b))
}

/// `GET /ui/login`.
pub async fn login_page(State(state): State<Shared>, Query(q): Query<NextQuery>) -> Response {
    login_form(Cookies::of(&state), safe_next(q.next.as_deref()), None, StatusCode::OK)
}

/// The login form as posted.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    login_csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /ui/login`: the token opens a session (a new id each time); the old one, if any, ends.
pub async fn login(State(state): State<Shared>, req: Request) -> Response {
    let config = state.service.config();
    let ip = client_ip(peer_ip(&req), req.headers(), &config.api.trusted_proxies);
    if !config.api.allow_ips.is_empty() && !config.api.allow_ips.iter().any(|n| n.contains(&ip)) {
        return UiError::forbidden(format!("{ip} is not in the API's allow-list ([api] allow_ips)")).into_response();
    }
    if let Err(e) = same_origin(req.headers()) {
        return e.into_response();
    }
    if let Some(secs) = state.logins.wait(ip) {
        state.refused_login(
            ip,
            "ui.login-throttled",
            format!("too many failed logins; told to wait {secs} s (429)"),
        );
        let mut resp = UiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins from {ip}; try again in {secs} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let cookies = Cookies::of(&state);
    let headers = req.headers().clone();
    let old_session = cookie(&headers, cookies.session);
    let login_cookie = cookie(&headers, cookies.login);
    let form = match axum::Form::<LoginForm>::from_request(req, &()).await {
        Ok(axum::Form(f)) => f,
        Err(e) => return UiError::bad_request(format!("the login form was not understood: {e}")).into_response(),
    };
    let next = safe_next(form.next.as_deref());
    if !login_cookie.is_some_and(|c| same(&c, &form.login_csrf)) {
        return login_form(
            cookies,
            next,
            Some("The login form expired or came from another page; log in again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let token = form.token.trim().to_string();
    let opened = state
        .service
        .store
        .blocking(move |store| store.open_session(&token))
        .await;
    let (id, session) = match opened {
        Ok(Some(s)) => s,
        Ok(None) => {
            state.logins.failed(ip);
            // Never the token itself: a mistyped token is most of a real one.
            state.refused_login(ip, "ui.login-failed", "unknown or revoked token (401)".to_string());
            return login_form(
                cookies,
                next,
                Some("That token is unknown or revoked. Use a token from `roster token create`.".into()),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return UiError::from(e).into_response(),
    };
    if let Some(old) = old_session {
        let _ = state
            .service
            .store
            .blocking(move |store| store.close_session(&old))
            .await;
    }
    let caller = Caller {
        actor: format!("token:{}", session.token_name),
        role: session.role,
        ip: ip.to_string(),
    };
    if let Err(e) = caller
        .audit(&state.service, "ui.login", "session", Some(session.role.as_str()))
        .await
    {
        return UiError::from(e).into_response();
    }
    let mut resp = Redirect::to(&next).into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, cookies.set(cookies.session, &id, None));
    h.append(header::SET_COOKIE, cookies.set(cookies.login, "", Some(0)));
    resp
}

/// `POST /ui/logout`: ends the session on the server and in the browser.
pub async fn logout(ui: Ui, headers: HeaderMap) -> Response {
    let cookies = Cookies::of(&ui.state);
    if let Some(id) = cookie(&headers, cookies.session) {
        let _ = ui.service().store.blocking(move |store| store.close_session(&id)).await;
    }
    let _ = ui.caller.audit(ui.service(), "ui.logout", "session", None).await;
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, cookies.set(cookies.session, "", Some(0)));
    resp
}

/// The gate in front of every page but the login: the allow-list, a live session, and for a
/// change the origin check and the session's CSRF token (header or form field).
pub async fn gate(State(state): State<Shared>, req: Request, next: Next) -> Response {
    match admit(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(resp) => resp,
    }
}

async fn admit(state: &Shared, req: Request) -> Result<Request, Response> {
    let config = state.service.config();
    let ip = client_ip(peer_ip(&req), req.headers(), &config.api.trusted_proxies);
    if !config.api.allow_ips.is_empty() && !config.api.allow_ips.iter().any(|n| n.contains(&ip)) {
        return Err(
            UiError::forbidden(format!("{ip} is not in the API's allow-list ([api] allow_ips)")).into_response(),
        );
    }
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reads {
        same_origin(req.headers()).map_err(IntoResponse::into_response)?;
    }
    let session = match cookie(req.headers(), Cookies::of(state).session) {
        Some(id) => state
            .service
            .store
            .blocking(move |store| store.session(&id))
            .await
            .map_err(|e| UiError::from(e).into_response())?,
        None => None,
    };
    let Some(session) = session else {
        if reads {
            let next = req.uri().path_and_query().map_or("/ui", |p| p.as_str());
            let to = format!(
                "/ui/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            return Err(Redirect::to(&to).into_response());
        }
        return Err(UiError::new(
            StatusCode::UNAUTHORIZED,
            "your session has ended; log in again (/ui/login)",
        )
        .into_response());
    };
    let req = if reads {
        req
    } else {
        check_csrf(req, &session.csrf).await?
    };
    let mut req = req;
    let ui = Ui {
        caller: Caller {
            actor: format!("token:{}", session.token_name),
            role: session.role,
            ip: ip.to_string(),
        },
        csrf: session.csrf,
        state: state.clone(),
    };
    req.extensions_mut().insert(ui);
    Ok(req)
}

/// The request, when it carries the session's CSRF token: in the `X-CSRF-Token` header, or in
/// the `csrf_token` field of a form (`application/x-www-form-urlencoded`; its body is read here
/// and handed on).
async fn check_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    let refused = || {
        UiError::forbidden("the form is missing its CSRF token or it is stale; reload the page and try again")
            .into_response()
    };
    if let Some(given) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if same(given, expected) { Ok(req) } else { Err(refused()) };
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let encoding = if content_type.starts_with("application/x-www-form-urlencoded") {
        FormEncoding::UrlEncoded
    } else if content_type.starts_with("multipart/form-data") {
        FormEncoding::Multipart
    } else {
        return Err(refused());
    };
    let limit = match encoding {
        FormEncoding::UrlEncoded => MAX_FORM,
        // A plugin upload without JavaScript: the component travels in the form.
        FormEncoding::Multipart => crate::api::plugins::MAX_UPLOAD_BYTES + MAX_FORM,
    };
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| UiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response())?;
    let given = match encoding {
        FormEncoding::UrlEncoded => url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.into_owned()),
        FormEncoding::Multipart => multipart_csrf(&content_type, bytes.clone()).await,
    };
    if !given.is_some_and(|g| same(&g, expected)) {
        return Err(refused());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// How a form's body is encoded.
enum FormEncoding {
    /// `application/x-www-form-urlencoded`.
    UrlEncoded,
    /// `multipart/form-data`.
    Multipart,
}

/// The `csrf_token` field of a multipart form, read from a copy of its body (the handler reads
/// the body again). The pages put the field first, so a large file after it is not parsed here.
async fn multipart_csrf(content_type: &str, bytes: axum::body::Bytes) -> Option<String> {
    let probe = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(bytes))
        .ok()?;
    let mut form = axum::extract::Multipart::from_request(probe, &()).await.ok()?;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some(CSRF_FIELD) {
            return field.text().await.ok();
        }
    }
    None
}

/// [`safe_next`], for the unit tests.
#[cfg(test)]
pub fn safe_next_for_tests(next: Option<&str>) -> String {
    safe_next(next)
}

/// Whether [`same_origin`] lets a change through, for the unit tests.
#[cfg(test)]
pub fn same_origin_for_tests(headers: &HeaderMap) -> bool {
    same_origin(headers).is_ok()
}
