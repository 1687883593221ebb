//! The vendor's words for answers the kit gives on a simulator's behalf. A simulator implements
//! [`Vendor`] once; injected faults and rate limiting then answer as that vendor would, so a
//! client's error handling is tested against the bodies it will really meet.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::throttle::RateLimited;

/// How one vendor's API answers errors. Implementations must not panic: they answer requests a
/// client shaped, however odd.
pub trait Vendor: Send + Sync + 'static {
    /// The vendor's error answer with `status` to `req` (`Retry-After`, when due, is added by the
    /// kit).
    fn error(&self, req: &Parts, status: StatusCode) -> Response;

    /// The vendor's 401 for an access token that has expired.
    fn expired_token(&self, req: &Parts) -> Response;

    /// The vendor's answer when its rate limit refuses `req` (`Retry-After` is added by the kit).
    fn rate_limited(&self, req: &Parts, limit: &RateLimited) -> Response {
        let _ = limit;
        self.error(req, StatusCode::TOO_MANY_REQUESTS)
    }

    /// A 200 that is not the API's answer at all: what a sign-in gateway or proxy in front of
    /// the vendor serves.
    fn foreign_page(&self, req: &Parts) -> Response {
        let _ = req;
        html_page()
    }
}

/// A JSON answer with the vendor's exact content type (clients and Prism check it).
pub fn json(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A single sign-on page served with 200, as an expired session in front of an API often gets.
pub fn html_page() -> Response {
    let mut r = Response::new(Body::from(
        "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
         <body><form method=\"post\" action=\"/login\"><input name=\"username\"></form></body></html>\n",
    ));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// Sets `Retry-After` in seconds, the only form the simulated vendors send.
pub(crate) fn set_retry_after(r: &mut Response, secs: u64) {
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
}
