//! Rate limiting over a rolling window, as vendors that meter calls per user per hour do
//! (Bitbucket Cloud): each caller may make `calls` requests in any stretch of `length`; a
//! refusal answers in the vendor's words ([`Vendor::rate_limited`]) with `Retry-After` saying
//! when the oldest call in the window leaves it. Unlike the token bucket of [`super::throttle`],
//! nothing refills gradually: a caller who spent the window waits for its oldest call to age out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;

use super::errors::{Vendor, set_retry_after};
use super::faults::{Methods, RouteMatch};
use super::layer::{KitLayer, Middleware, Next};
use super::throttle::{RateLimited, Throttled};

/// What a window reports about an accepted call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metered {
    /// Calls allowed per window.
    pub limit: u64,
    /// Calls left in the window after this one.
    pub remaining: u64,
    /// The window's length.
    pub length: Duration,
}

impl Metered {
    /// Whether less than a fifth of the window's calls is left (Bitbucket Cloud's
    /// `X-RateLimit-NearLimit`).
    pub fn near_limit(&self) -> bool {
        self.remaining.saturating_mul(5) < self.limit
    }
}

/// Calls per caller over a rolling window.
#[derive(Clone, Debug)]
pub struct Window {
    calls: u64,
    length: Duration,
    /// Caller → when each of its calls in the window was accepted, oldest first.
    seen: HashMap<String, VecDeque<Instant>>,
}

impl Window {
    /// `calls` per caller in any stretch of `length`.
    pub fn new(calls: u64, length: Duration) -> Window {
        Window {
            calls,
            length,
            seen: HashMap::new(),
        }
    }

    /// Counts a call by `caller` at `now`, or says how long until the caller may call again
    /// (a refused call is not counted).
    pub fn take(&mut self, caller: &str, now: Instant) -> Result<Metered, RateLimited> {
        let length = self.length;
        let calls = self.seen.entry(caller.to_string()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= length)
        {
            calls.pop_front();
        }
        let used = calls.len() as u64;
        if used >= self.calls {
            let wait = calls
                .front()
                .map_or(length, |oldest| (*oldest + length).saturating_duration_since(now));
            // Whole seconds, rounded up, at least one: a client that waits that long is let in.
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(RateLimited {
                retry_after: retry_after.max(1),
                capacity: u32::try_from(self.calls).unwrap_or(u32::MAX),
                per_second: self.calls as f64 / length.as_secs_f64().max(f64::MIN_POSITIVE),
            });
        }
        calls.push_back(now);
        Ok(Metered {
            limit: self.calls,
            remaining: self.calls - used - 1,
            length,
        })
    }

    /// Calls `caller` may still make now.
    pub fn remaining(&self, caller: &str, now: Instant) -> u64 {
        let used = self.seen.get(caller).map_or(0, |calls| {
            calls
                .iter()
                .filter(|t| now.saturating_duration_since(**t) < self.length)
                .count() as u64
        });
        self.calls.saturating_sub(used)
    }
}

/// Who a request is metered as; `None` leaves it unmetered (an unauthenticated call).
pub type CallerOf = Arc<dyn Fn(&HeaderMap) -> Option<String> + Send + Sync>;

/// Writes the vendor's rate-limit headers on an answer the window let through.
pub type MeterHeaders = fn(&mut Response, &Metered);

/// A simulator's rolling-window limit, shared between its state (which sets it) and the layer.
/// Unlimited until [`RollingLimit::limit`] is called.
#[derive(Clone)]
pub struct RollingLimit {
    scope: RouteMatch,
    methods: Methods,
    caller: CallerOf,
    window: Arc<Mutex<Option<Window>>>,
}

impl std::fmt::Debug for RollingLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollingLimit")
            .field("scope", &self.scope)
            .field("methods", &self.methods)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl RollingLimit {
    /// A limit for the requests `scope` matches, per caller as `caller` names them.
    pub fn new(scope: RouteMatch, caller: CallerOf) -> RollingLimit {
        RollingLimit {
            scope,
            methods: Methods::Any,
            caller,
            window: Arc::default(),
        }
    }

    /// Narrows the limit to requests with `methods` (a vendor may meter sending something
    /// apart from reading it on the same path).
    pub fn methods(self, methods: Methods) -> RollingLimit {
        RollingLimit { methods, ..self }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Option<Window>> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Allows `calls` per caller in any stretch of `length`, forgetting earlier calls.
    pub fn limit(&self, calls: u64, length: Duration) {
        *self.window() = Some(Window::new(calls, length));
    }

    /// Lifts the limit.
    pub fn unlimited(&self) {
        *self.window() = None;
    }

    /// Calls `caller` may still make now; `None` when unlimited.
    pub fn remaining(&self, caller: &str) -> Option<u64> {
        self.window().as_ref().map(|w| w.remaining(caller, Instant::now()))
    }

    /// The layer applying this limit: refusals answer for `vendor`, accepted answers get
    /// `headers`.
    pub fn layer(&self, vendor: Arc<dyn Vendor>, headers: MeterHeaders) -> WindowLayer {
        KitLayer(WindowMiddleware {
            limit: self.clone(),
            vendor,
            headers,
        })
    }

    fn check(&self, req: &Request) -> Option<Result<Metered, RateLimited>> {
        if !self.methods.matches(req.method()) || !self.scope.matches(req.uri()) {
            return None;
        }
        let caller = (self.caller)(req.headers())?;
        self.window().as_mut().map(|w| w.take(&caller, Instant::now()))
    }
}

/// The user name and password of an HTTP Basic `Authorization` header.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':').unwrap_or((text.as_str(), ""));
    Some((user.to_string(), password.to_string()))
}

/// The user name of an HTTP Basic `Authorization` header, whatever its password: how vendors
/// that meter per user name the caller when any caller is let in.
pub fn basic_user(headers: &HeaderMap) -> Option<String> {
    basic_credentials(headers).map(|(user, _)| user)
}

/// The layer applying a [`RollingLimit`]; see [`RollingLimit::layer`].
pub type WindowLayer = KitLayer<WindowMiddleware>;

/// What [`WindowLayer`] runs around each request.
#[derive(Clone)]
pub struct WindowMiddleware {
    limit: RollingLimit,
    vendor: Arc<dyn Vendor>,
    headers: MeterHeaders,
}

impl std::fmt::Debug for WindowMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowMiddleware")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Middleware for WindowMiddleware {
    async fn run(self, req: Request, next: Next) -> Response {
        match self.limit.check(&req) {
            None => next.run(req).await,
            Some(Ok(metered)) => {
                let mut answer = next.run(req).await;
                // A refusal by a narrower limit inside this one keeps that limit's headers.
                if answer.extensions().get::<Throttled>().is_none() {
                    (self.headers)(&mut answer, &metered);
                }
                answer
            }
            Some(Err(limited)) => {
                let (parts, _) = req.into_parts();
                let mut r = self.vendor.rate_limited(&parts, &limited);
                set_retry_after(&mut r, limited.retry_after);
                r.extensions_mut().insert(Throttled);
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_window_refuses_until_its_oldest_call_ages_out() {
        let start = Instant::now();
        let mut w = Window::new(2, Duration::from_secs(10));
        assert_eq!(w.take("a", start).map(|m| m.remaining), Ok(1));
        let second = w.take("a", start + Duration::from_secs(4)).unwrap();
        assert_eq!(second.remaining, 0);
        assert!(second.near_limit());
        let refused = w.take("a", start + Duration::from_secs(5)).unwrap_err();
        assert_eq!(refused.retry_after, 5, "the first call leaves the window at 10 s");
        assert_eq!(w.take("b", start + Duration::from_secs(5)).map(|m| m.remaining), Ok(1));
        assert_eq!(
            w.take("a", start + Duration::from_secs(10)).map(|m| m.remaining),
            Ok(0),
            "the oldest call aged out, the one at 4 s is still in"
        );
        assert_eq!(w.remaining("a", start + Duration::from_secs(14)), 1);
    }

    #[test]
    fn basic_user_names_the_caller() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic cm9zdGVyOnNlY3JldA==".parse().unwrap());
        assert_eq!(basic_user(&h).as_deref(), Some("roster"));
        assert_eq!(
            basic_credentials(&h),
            Some(("roster".to_string(), "secret".to_string()))
        );
        h.insert("authorization", "Bearer x".parse().unwrap());
        assert_eq!(basic_user(&h), None);
    }
}
