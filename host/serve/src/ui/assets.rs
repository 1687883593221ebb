//! The pages' three static files, compiled into the binary and served at paths that carry
//! their version, so a browser may keep them for a year and a new Roster is fetched anew.

use axum::http::header;
use axum::response::IntoResponse;

/// Where the assets live.
pub const PREFIX: &str = "/ui/assets/";
/// htmx 2.0.11 (`npm pack htmx.org@2.0.11`, `dist/htmx.min.js`, sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg).
pub const HTMX_PATH: &str = "/ui/assets/htmx-2.0.11.min.js";
/// The one stylesheet.
pub const CSS_PATH: &str = concat!("/ui/assets/roster-", env!("CARGO_PKG_VERSION"), ".css");
/// The one script of Roster's own.
pub const JS_PATH: &str = concat!("/ui/assets/app-", env!("CARGO_PKG_VERSION"), ".js");

const HTMX: &[u8] = include_bytes!("../../static/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../../static/roster.css");
const JS: &[u8] = include_bytes!("../../static/app.js");

fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
}

/// htmx.
pub async fn htmx() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", HTMX)
}

/// The stylesheet.
pub async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

/// The script.
pub async fn js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}
