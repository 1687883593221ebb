//! Rate limiting as vendors do it: a token bucket per simulator, refilled continuously, whose
//! refusals answer in the vendor's words ([`Vendor::rate_limited`]) with `Retry-After` saying
//! when the next token is there.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;

use super::errors::{Vendor, set_retry_after};
use super::faults::RouteMatch;
use super::layer::{KitLayer, Middleware, Next};

/// `Retry-After` never says more than a day: a bucket that does not refill is a test's choice,
/// not a reason to tell a client to wait forever.
const MAX_RETRY_AFTER: u64 = 86_400;

/// A token bucket: `capacity` tokens, refilled at `per_second`, one taken per request.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

/// A refusal: what the vendor's rate-limit headers report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimited {
    /// Seconds until a token is there again (at least 1).
    pub retry_after: u64,
    /// The bucket's size.
    pub capacity: u32,
    /// Tokens added per second.
    pub per_second: f64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_second: f64, capacity: u32) -> Self {
        TokenBucket {
            capacity: capacity.into(),
            per_second,
            tokens: capacity.into(),
            at: Instant::now(),
        }
    }

    /// Takes a token, or says how long until there is one.
    pub fn take(&mut self, now: Instant) -> Result<(), RateLimited> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - self.tokens) / self.per_second).ceil();
        // A rate of 0 (or NaN) gives an infinite or NaN wait; `as` saturates, the cap bounds it.
        let retry_after = if wait.is_finite() {
            (wait as u64).clamp(1, MAX_RETRY_AFTER)
        } else {
            MAX_RETRY_AFTER
        };
        Err(RateLimited {
            retry_after,
            capacity: self.capacity as u32,
            per_second: self.per_second,
        })
    }
}

/// Marks an answer given by the rate limit (a response extension), for logs and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled;

/// A simulator's rate limit, shared between its state (which sets it) and the throttle layer.
/// Unlimited until [`Throttle::limit`] is called.
#[derive(Clone, Debug)]
pub struct Throttle {
    scope: RouteMatch,
    bucket: Arc<Mutex<Option<TokenBucket>>>,
}

impl Throttle {
    /// A rate limit for the requests `scope` matches (a vendor's API, not its health checks).
    pub fn new(scope: RouteMatch) -> Self {
        Throttle {
            scope,
            bucket: Arc::default(),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Option<TokenBucket>> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Limits requests to `per_second` with bursts of `capacity`, starting with a full bucket.
    pub fn limit(&self, per_second: f64, capacity: u32) {
        *self.bucket() = Some(TokenBucket::new(per_second, capacity));
    }

    /// Lifts the limit.
    pub fn unlimited(&self) {
        *self.bucket() = None;
    }

    /// The layer that applies this limit, answering for `vendor`.
    pub fn layer(&self, vendor: Arc<dyn Vendor>) -> ThrottleLayer {
        KitLayer(ThrottleMiddleware {
            throttle: self.clone(),
            vendor,
        })
    }

    fn check(&self, req: &Request) -> Result<(), RateLimited> {
        if !self.scope.matches(req.uri()) {
            return Ok(());
        }
        match self.bucket().as_mut() {
            Some(b) => b.take(Instant::now()),
            None => Ok(()),
        }
    }
}

/// The layer applying a [`Throttle`]; see [`Throttle::layer`].
pub type ThrottleLayer = KitLayer<ThrottleMiddleware>;

/// What [`ThrottleLayer`] runs around each request.
#[derive(Clone)]
pub struct ThrottleMiddleware {
    throttle: Throttle,
    vendor: Arc<dyn Vendor>,
}

impl std::fmt::Debug for ThrottleMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottleMiddleware")
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}

impl Middleware for ThrottleMiddleware {
    async fn run(self, req: Request, next: Next) -> Response {
        let Err(limited) = self.throttle.check(&req) else {
            return next.run(req).await;
        };
        let (parts, _) = req.into_parts();
        let mut r = self.vendor.rate_limited(&parts, &limited);
        set_retry_after(&mut r, limited.retry_after);
        r.extensions_mut().insert(Throttled);
        r
    }
}
