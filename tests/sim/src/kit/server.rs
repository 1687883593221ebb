//! The server harness every simulator runs on: bound to a free port on 127.0.0.1 (or a given
//! address), serving an axum `Router`, stopping when dropped, and logging each request with
//! what answered it.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, Method, StatusCode, Uri};
use axum::response::Response;
use axum::{Extension, Router};
use tokio::sync::watch;

use super::conn::{Conn, SimListener};
use super::faults::{Closing, Fault, Injected};
use super::layer::{KitLayer, Middleware, Next};
use super::pace::{Overloaded, Pace};
use super::throttle::Throttled;

/// A running simulator server; stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    log: RequestLog,
    pace: Pace,
    /// Dropping it starts the graceful shutdown and ends held requests ([`Fault::Hang`]).
    _stop: watch::Sender<()>,
}

impl Server {
    /// Serves `router` on `addr` (port 0 = a free port) from a task on the current runtime.
    pub async fn start(addr: SocketAddr, router: Router) -> io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let log = RequestLog::default();
        let pace = Pace::default();
        let (stop, stopped) = watch::channel(());
        // The pace is outside the simulator's own layers (its rate limit, its counters), as a
        // server's worker pool is in front of its application; the log sees its 503s.
        let app = router
            .layer(pace.layer())
            .layer(KitLayer(LogMiddleware(log.clone())))
            .layer(Extension(Closing(stopped.clone())))
            .into_make_service_with_connect_info::<Conn>();
        tokio::spawn(async move {
            let _ = axum::serve(SimListener(listener), app)
                .with_graceful_shutdown(Closing(stopped).wait())
                .await;
        });
        Ok(Server {
            addr,
            log,
            pace,
            _stop: stop,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request answered, oldest first (the last [`RequestLog::CAPACITY`]).
    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// Its latency and capacity ([`Pace::set`]); none until set.
    pub fn pace(&self) -> &Pace {
        &self.pace
    }
}

/// The address a request came from (its TCP peer), for simulators that check it as their
/// vendor does (an application's allowed addresses). An IPv4 client of a dual-stack listener
/// shows as its IPv4 address, not as `::ffff:a.b.c.d`. `None` when the request was not served
/// by [`Server`] (a router called directly).
pub fn peer(extensions: &Extensions) -> Option<SocketAddr> {
    let ConnectInfo(conn) = extensions.get::<ConnectInfo<Conn>>()?;
    let addr = conn.peer();
    Some(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
}

/// Who answered a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The simulator's handlers, unaltered.
    Served,
    /// A fault (paging faults: the handlers, with the fault applied).
    Injected(Fault),
    /// The rate limit.
    RateLimited,
    /// The server's capacity ([`Pace`]): 503 with `Retry-After`.
    Overloaded,
}

impl Outcome {
    /// Who answered, from the marks the kit's layers leave on an answer.
    pub fn of(answer: &Response) -> Outcome {
        match answer.extensions().get::<Injected>() {
            Some(i) => Outcome::Injected(i.fault.clone()),
            None if answer.extensions().get::<Throttled>().is_some() => Outcome::RateLimited,
            None if answer.extensions().get::<Overloaded>().is_some() => Outcome::Overloaded,
            None => Outcome::Served,
        }
    }

    /// Whether the client was told to slow down (429 or 503), as vendors' counters count it.
    pub fn is_throttling(&self) -> bool {
        match self {
            Outcome::RateLimited | Outcome::Overloaded => true,
            Outcome::Injected(f) => f.is_throttling(),
            Outcome::Served => false,
        }
    }

    /// The status the client got; `None` when the connection was cut or held instead.
    fn status(&self, answer: &Response) -> Option<StatusCode> {
        match self {
            Outcome::Injected(f) if f.leaves_no_answer() => None,
            _ => Some(answer.status()),
        }
    }
}

/// One request, as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// Its method.
    pub method: Method,
    /// Its path and query, as sent.
    pub target: String,
    /// The status answered; `None` when the connection was cut or held instead.
    pub status: Option<StatusCode>,
    /// Who answered.
    pub outcome: Outcome,
}

/// A bounded log of requests, shared by the server and whoever reads it.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<VecDeque<Logged>>>);

impl RequestLog {
    /// Entries kept; older ones are dropped, so benchmarks of a million requests stay small.
    pub const CAPACITY: usize = 10_000;

    fn entries_mut(&self) -> std::sync::MutexGuard<'_, VecDeque<Logged>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an entry (the server does for every request).
    pub fn record(&self, entry: Logged) {
        let mut e = self.entries_mut();
        if e.len() == Self::CAPACITY {
            e.pop_front();
        }
        e.push_back(entry);
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> Vec<Logged> {
        self.entries_mut().iter().cloned().collect()
    }

    /// Empties the log.
    pub fn clear(&self) {
        self.entries_mut().clear();
    }
}

#[derive(Clone, Debug)]
struct LogMiddleware(RequestLog);

impl Middleware for LogMiddleware {
    async fn run(self, req: Request, next: Next) -> Response {
        let method = req.method().clone();
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |pq| pq.as_str().to_string());
        let answer = next.run(req).await;
        let outcome = Outcome::of(&answer);
        self.0.record(Logged {
            method,
            target,
            status: outcome.status(&answer),
            outcome,
        });
        answer
    }
}

/// A layer that shows `see` each request's method and URI with its answer, once answered,
/// whoever answered it: how a simulator keeps its own counters.
pub fn observe<F>(see: F) -> KitLayer<Observer<F>>
where
    F: Fn(&Method, &Uri, &Response) + Clone + Send + Sync + 'static,
{
    KitLayer(Observer(see))
}

/// What [`observe`] runs around each request.
#[derive(Clone, Debug)]
pub struct Observer<F>(F);

impl<F> Middleware for Observer<F>
where
    F: Fn(&Method, &Uri, &Response) + Clone + Send + Sync + 'static,
{
    async fn run(self, req: Request, next: Next) -> Response {
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let answer = next.run(req).await;
        (self.0)(&method, &uri, &answer);
        answer
    }
}
