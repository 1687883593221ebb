//! The pace of a real server, for every simulator: a fixed latency plus jitter on each call,
//! and a capacity — a pool of workers and a queue in front of it. Requests beyond the pool wait
//! their turn (answers slow down); beyond the pool and the queue the server answers 503 with
//! `Retry-After` at once, as an overloaded Tomcat behind its load balancer does. A simulator
//! answers in microseconds otherwise, and benchmarks would measure Roster's CPU rather than what
//! an administrator waits for.
//!
//! [`Server`](super::Server) runs every simulator behind its [`Pace`]; it does nothing until
//! set ([`Pace::set`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::Semaphore;

use super::layer::{KitLayer, Middleware, Next};

/// How a simulated server paces its answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaceSettings {
    /// Added to every call (a real Bitbucket answers an admin call in tens of milliseconds).
    pub latency: Duration,
    /// Up to this much more, uniformly at random, per call.
    pub jitter: Duration,
    /// The server's worker pool; `None` serves any number at once.
    pub capacity: Option<Capacity>,
}

/// A worker pool and the queue in front of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Requests served at once (each holds a worker for its latency).
    pub pool: usize,
    /// Requests that may wait for a worker; one more is answered 503.
    pub queue: usize,
}

/// Seconds a 503 tells the client to wait: a worker frees up within a call's latency.
const OVERLOADED_RETRY_AFTER: u64 = 1;

/// What a [`Pace`] has seen, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaceCounts {
    /// Requests served (held for the latency, then answered by the simulator).
    pub served: u64,
    /// Requests answered 503 because the pool and the queue were full.
    pub overloaded: u64,
    /// The most requests in the server at once (served and queued).
    pub peak_in_flight: usize,
}

#[derive(Debug)]
struct Current {
    settings: PaceSettings,
    /// The pool's workers; replaced when the capacity changes.
    workers: Option<Arc<Semaphore>>,
}

#[derive(Debug)]
struct Inner {
    current: Mutex<Current>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    served: AtomicU64,
    overloaded: AtomicU64,
    /// State of the jitter's generator (splitmix64): no dependency for a few random numbers.
    seed: AtomicU64,
}

/// A simulated server's pace, shared between whoever sets it and the layer applying it.
#[derive(Clone, Debug)]
pub struct Pace(Arc<Inner>);

impl Default for Pace {
    fn default() -> Self {
        Pace(Arc::new(Inner {
            current: Mutex::new(Current {
                settings: PaceSettings::default(),
                workers: None,
            }),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            seed: AtomicU64::new(0x5eed),
        }))
    }
}

impl Pace {
    /// Applies `settings` to requests arriving from now on.
    pub fn set(&self, settings: PaceSettings) {
        let workers = settings.capacity.map(|c| Arc::new(Semaphore::new(c.pool.max(1))));
        *self.current() = Current { settings, workers };
    }

    /// The settings in force.
    pub fn settings(&self) -> PaceSettings {
        self.current().settings
    }

    /// What it has seen since the server started (or [`Pace::reset_counts`]).
    pub fn counts(&self) -> PaceCounts {
        PaceCounts {
            served: self.0.served.load(Ordering::Relaxed),
            overloaded: self.0.overloaded.load(Ordering::Relaxed),
            peak_in_flight: self.0.peak.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the counts (between a benchmark's runs).
    pub fn reset_counts(&self) {
        self.0.served.store(0, Ordering::Relaxed);
        self.0.overloaded.store(0, Ordering::Relaxed);
        self.0.peak.store(0, Ordering::Relaxed);
    }

    /// The layer applying it; [`Server`](super::Server) adds it to every simulator.
    pub(crate) fn layer(&self) -> KitLayer<Pace> {
        KitLayer(self.clone())
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.0.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latency of one call: the fixed part plus a uniform share of the jitter.
    fn delay(&self, s: &PaceSettings) -> Duration {
        if s.jitter.is_zero() {
            return s.latency;
        }
        let mut z = self
            .0
            .seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let share = (z >> 11) as f64 / (1u64 << 53) as f64;
        s.latency + s.jitter.mul_f64(share)
    }
}

/// Decrements the in-flight count however the request ends (answered, or its client gone).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn overloaded() -> Response {
    let mut r = Response::new(Body::from(
        "Service Unavailable: the server is at capacity; retry after the time Retry-After gives\n",
    ));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from(OVERLOADED_RETRY_AFTER));
    r.extensions_mut().insert(Overloaded);
    r
}

/// Marks an answer given because the server was at capacity (a response extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overloaded;

impl Middleware for Pace {
    async fn run(self, req: Request, next: Next) -> Response {
        let (settings, workers) = {
            let c = self.current();
            (c.settings, c.workers.clone())
        };
        if settings == PaceSettings::default() {
            return next.run(req).await;
        }
        let now = self.0.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _in_flight = InFlight(&self.0.in_flight);
        if let Some(c) = settings.capacity
            && now > c.pool.max(1) + c.queue
        {
            self.0.overloaded.fetch_add(1, Ordering::Relaxed);
            return overloaded();
        }
        self.0.peak.fetch_max(now, Ordering::Relaxed);
        // Queued requests wait for a worker: past the pool, answers slow down.
        let _worker = match &workers {
            Some(w) => w.clone().acquire_owned().await.ok(),
            None => None,
        };
        tokio::time::sleep(self.delay(&settings)).await;
        self.0.served.fetch_add(1, Ordering::Relaxed);
        next.run(req).await
    }
}
