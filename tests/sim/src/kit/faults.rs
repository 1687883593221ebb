//! Fault injection as data. A test says what goes wrong — a [`Fault`] — and when: on which
//! requests ([`RouteMatch`], method), after how many of them and how often ([`Times`]), as a
//! [`FaultRule`] added to a simulator's [`Faults`]. The layer from [`Faults::layer`], which
//! every simulator installs, applies due rules and answers in the vendor's words through its
//! [`Vendor`].
//!
//! ```no_run
//! # use axum::http::Method;
//! # use roster_sim::bitbucket::{BbState, BitbucketSim};
//! # use roster_sim::kit::{Cut, Fault, FaultRule, RouteMatch};
//! # async fn example() {
//! let sim = BitbucketSim::start(BbState::new()).await;
//! // The third GET of a group's members is cut before it is served, once.
//! sim.faults().add(
//!     FaultRule::new(Fault::Reset(Cut::BeforeServing))
//!         .on(Method::GET, RouteMatch::path("/rest/api/1.0/admin/groups/more-members"))
//!         .skip_first(2),
//! );
//! # }
//! ```

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;
use futures_util::StreamExt as _;
use tokio::sync::watch;

use super::conn::Conn;
use super::errors::{Vendor, set_retry_after};
use super::layer::{KitLayer, Middleware, Next};
use super::paging::{PageFault, PageFaultKind};

/// What goes wrong with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The vendor's error answer with this status — 429 and 503 are its throttling answers —
    /// with `Retry-After` in seconds when given. The request is not served.
    Status {
        /// The status answered.
        status: StatusCode,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// No answer for this long (or until the simulator stops), then the connection is reset:
    /// a client with a shorter timeout times out. The request is not served.
    Hang(Duration),
    /// The connection is reset instead of answered.
    Reset(Cut),
    /// The request is served and its answer sent with the first half of its body only, with a
    /// matching `Content-Length`: a complete HTTP message whose JSON does not parse.
    TruncatedBody,
    /// A 200 with an HTML page (a sign-in gateway or proxy in front of the API). The request is
    /// not served.
    WrongContentType,
    /// A page of a listing with no items but a next link, which leads to the items this page
    /// would have held. Not applied, nor counted, when the answer is no page.
    EmptyPage,
    /// A page of a listing whose next link leads back to the first page. Not applied, nor
    /// counted, when the answer is no page.
    LoopingCursor,
    /// The vendor's 401 for an expired access token. The request is not served.
    ExpiredToken,
}

impl Fault {
    /// The vendor's error answer with `status` (a status outside 100..=999 becomes 500).
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            retry_after: None,
        }
    }

    /// 429 Too Many Requests, with `Retry-After` when given.
    pub fn throttled(retry_after: Option<u64>) -> Fault {
        Fault::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after,
        }
    }

    /// Whether clients read this answer as throttling (429 or 503), the way Roster's clients
    /// and the vendors' retry guidance do.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Fault::Status { status, .. }
            if *status == StatusCode::TOO_MANY_REQUESTS || *status == StatusCode::SERVICE_UNAVAILABLE)
    }

    /// Whether the client gets no answer at all (the connection is cut or held).
    pub fn leaves_no_answer(&self) -> bool {
        matches!(
            self,
            Fault::Hang(_) | Fault::Reset(Cut::BeforeServing | Cut::AfterServing)
        )
    }
}

/// Where a [`Fault::Reset`] cuts the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Before the request is served: nothing it asked for happens.
    BeforeServing,
    /// After the request is served — its writes are done — before the answer is sent: the
    /// client cannot know whether they were.
    AfterServing,
    /// After the answer's headers and half its body are sent, announcing the whole length;
    /// the request is served. An answer without a body is cut as after serving.
    MidBody,
}

/// Which requests a rule applies to, by path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteMatch {
    /// Every request.
    Any,
    /// Paths matching a pattern: segments compare exactly, `*` stands for any one segment and a
    /// final `**` for any rest, none included (`/rest/api/*/admin/**`). Paths as sent, before
    /// percent-decoding.
    Path(String),
    /// Paths starting with this.
    Prefix(String),
    /// The path, or the path with the decoded query (`/v1.0/users?$top=5`), containing this.
    Contains(String),
    /// Requests the inner matcher does not match.
    Not(Box<RouteMatch>),
}

impl RouteMatch {
    /// [`RouteMatch::Path`].
    pub fn path(pattern: impl Into<String>) -> RouteMatch {
        RouteMatch::Path(pattern.into())
    }

    /// [`RouteMatch::Prefix`].
    pub fn prefix(prefix: impl Into<String>) -> RouteMatch {
        RouteMatch::Prefix(prefix.into())
    }

    /// [`RouteMatch::Contains`].
    pub fn contains(part: impl Into<String>) -> RouteMatch {
        RouteMatch::Contains(part.into())
    }

    /// Whether a request to `uri` matches.
    pub fn matches(&self, uri: &Uri) -> bool {
        match self {
            RouteMatch::Any => true,
            RouteMatch::Path(pattern) => pattern_matches(pattern, uri.path()),
            RouteMatch::Prefix(prefix) => uri.path().starts_with(prefix.as_str()),
            RouteMatch::Contains(part) => decoded_target(uri).contains(part.as_str()),
            RouteMatch::Not(inner) => !inner.matches(uri),
        }
    }
}

fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (Some("**"), _) => return true,
            (Some(w), Some(g)) if w == "*" || w == g => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The path and decoded query (`/v1.0/users?$top=5`), as [`RouteMatch::Contains`] sees them and
/// request logs show them.
pub fn decoded_target(uri: &Uri) -> String {
    let Some(q) = uri.query().filter(|q| !q.is_empty()) else {
        return uri.path().to_string();
    };
    let pairs: Vec<String> = url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// Which methods a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Methods {
    /// Every method.
    Any,
    /// This one.
    Only(Method),
    /// Every method that may change something: all but GET, HEAD and OPTIONS.
    Writes,
}

impl Methods {
    /// Whether a request with `method` matches.
    pub fn matches(&self, method: &Method) -> bool {
        match self {
            Methods::Any => true,
            Methods::Only(m) => m == method,
            Methods::Writes => !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS),
        }
    }
}

/// Which of the matching requests a rule fails, counted after its `skip_first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// The first.
    Once,
    /// The first n.
    Count(u32),
    /// Every one.
    Always,
    /// Every n-th (the n-th, the 2n-th, …); 0 = none.
    Every(u32),
}

/// A fault and the requests it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// What goes wrong.
    pub fault: Fault,
    /// Which paths.
    pub route: RouteMatch,
    /// Which methods.
    pub methods: Methods,
    /// Matching requests let through before the rule applies ("the 3rd" = 2).
    pub skip_first: u32,
    /// Which matching requests after those fail.
    pub times: Times,
}

impl FaultRule {
    /// `fault` on the first request of any route and method; narrow it with the other methods.
    pub fn new(fault: Fault) -> FaultRule {
        FaultRule {
            fault,
            route: RouteMatch::Any,
            methods: Methods::Any,
            skip_first: 0,
            times: Times::Once,
        }
    }

    /// Only requests with this method to these paths.
    pub fn on(self, method: Method, route: RouteMatch) -> FaultRule {
        FaultRule {
            methods: Methods::Only(method),
            route,
            ..self
        }
    }

    /// Only requests that may change something (any method but GET, HEAD and OPTIONS) to
    /// these paths: faults while a client writes, whatever it writes with.
    pub fn writes(self, route: RouteMatch) -> FaultRule {
        FaultRule {
            methods: Methods::Writes,
            route,
            ..self
        }
    }

    /// Only requests to these paths, any method.
    pub fn route(self, route: RouteMatch) -> FaultRule {
        FaultRule { route, ..self }
    }

    /// Lets `n` matching requests through first.
    pub fn skip_first(self, n: u32) -> FaultRule {
        FaultRule { skip_first: n, ..self }
    }

    /// How many matching requests fail.
    pub fn times(self, times: Times) -> FaultRule {
        FaultRule { times, ..self }
    }

    fn matches(&self, method: &Method, uri: &Uri) -> bool {
        self.methods.matches(method) && self.route.matches(uri)
    }
}

/// A rule added to [`Faults`], to look it up or remove it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(u64);

/// Marks an answer shaped by a fault (a response extension), for logs and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    /// The rule that applied.
    pub rule: RuleId,
    /// Its fault.
    pub fault: Fault,
}

#[derive(Debug)]
struct Armed {
    id: RuleId,
    rule: FaultRule,
    /// Matching requests seen since the rule was added.
    seen: u32,
    fired: u32,
}

impl Armed {
    fn due(&self) -> bool {
        // The how-manieth matching request after the skipped ones this is (0 = still skipping).
        let n = self.seen.saturating_sub(self.rule.skip_first);
        if n == 0 {
            return false;
        }
        match self.rule.times {
            Times::Once => self.fired < 1,
            Times::Count(k) => self.fired < k,
            Times::Always => true,
            Times::Every(k) => k > 0 && n.is_multiple_of(k),
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    rules: Vec<Armed>,
}

/// A simulator's fault rules, shared between the test and the fault layer.
///
/// Every rule counts every request it matches. A request gets the fault of the first rule, in
/// the order added, that is due; a rule passed over that way is still due on its next matching
/// request (a [`Times::Every`] rule misses its turn).
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<Mutex<Registry>>);

impl Faults {
    /// No rules.
    pub fn new() -> Faults {
        Faults::default()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a rule, applied from the next request on.
    pub fn add(&self, rule: FaultRule) -> RuleId {
        let mut r = self.registry();
        r.next_id += 1;
        let id = RuleId(r.next_id);
        r.rules.push(Armed {
            id,
            rule,
            seen: 0,
            fired: 0,
        });
        id
    }

    /// The next `n` requests whose path and (decoded) query contain `path_contains` are
    /// answered with `fault`.
    pub fn fail_next(&self, n: u32, path_contains: &str, fault: Fault) -> RuleId {
        self.add(
            FaultRule::new(fault)
                .route(RouteMatch::contains(path_contains))
                .times(Times::Count(n)),
        )
    }

    /// The next request whose path and (decoded) query contain `path_contains` is answered 200
    /// with the first half of its body: JSON that does not parse.
    pub fn corrupt_next(&self, path_contains: &str) -> RuleId {
        self.add(FaultRule::new(Fault::TruncatedBody).route(RouteMatch::contains(path_contains)))
    }

    /// Removes a rule.
    pub fn remove(&self, id: RuleId) {
        self.registry().rules.retain(|a| a.id != id);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.registry().rules.clear();
    }

    /// How many requests a rule has failed (0 for a removed rule).
    pub fn fired(&self, id: RuleId) -> u32 {
        self.registry().rules.iter().find(|a| a.id == id).map_or(0, |a| a.fired)
    }

    /// The layer that applies these rules, answering for `vendor`.
    pub fn layer(&self, vendor: Arc<dyn Vendor>) -> FaultLayer {
        KitLayer(FaultMiddleware {
            faults: self.clone(),
            vendor,
        })
    }

    /// The fault due for a request, counting it against every rule it matches.
    fn decide(&self, method: &Method, uri: &Uri) -> Option<Injected> {
        let mut r = self.registry();
        let mut chosen = None;
        for a in r.rules.iter_mut().filter(|a| a.rule.matches(method, uri)) {
            a.seen = a.seen.saturating_add(1);
            if chosen.is_none() && a.due() {
                a.fired = a.fired.saturating_add(1);
                chosen = Some(Injected {
                    rule: a.id,
                    fault: a.rule.fault.clone(),
                });
            }
        }
        chosen
    }

    /// Takes back a firing that shaped nothing (a paging fault on an answer that is no page).
    fn unfire(&self, id: RuleId) {
        if let Some(a) = self.registry().rules.iter_mut().find(|a| a.id == id) {
            a.fired = a.fired.saturating_sub(1);
        }
    }
}

/// The layer applying [`Faults`]; see [`Faults::layer`].
pub type FaultLayer = KitLayer<FaultMiddleware>;

/// What [`FaultLayer`] runs around each request.
#[derive(Clone)]
pub struct FaultMiddleware {
    faults: Faults,
    vendor: Arc<dyn Vendor>,
}

impl std::fmt::Debug for FaultMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultMiddleware")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// A stopping server, so held requests end with it (a request extension set by the server).
#[derive(Clone, Debug)]
pub(crate) struct Closing(pub(crate) watch::Receiver<()>);

impl Closing {
    pub(crate) async fn wait(mut self) {
        // The server never sends; its sender is dropped when it stops.
        while self.0.changed().await.is_ok() {}
    }
}

/// How long a cut body waits after its first half, so that half is sent before the cut.
const FLUSH_PAUSE: Duration = Duration::from_millis(20);

impl Middleware for FaultMiddleware {
    async fn run(self, req: Request, next: Next) -> Response {
        let Some(injected) = self.faults.decide(req.method(), req.uri()) else {
            return next.run(req).await;
        };
        let (parts, body) = req.into_parts();
        let mut answer = match injected.fault.clone() {
            Fault::Status { status, retry_after } => {
                let mut r = self.vendor.error(&parts, status);
                if let Some(secs) = retry_after {
                    set_retry_after(&mut r, secs);
                }
                r
            }
            Fault::ExpiredToken => self.vendor.expired_token(&parts),
            Fault::WrongContentType => self.vendor.foreign_page(&parts),
            Fault::Hang(d) => {
                let closing = parts.extensions.get::<Closing>().cloned();
                let stopped = async move {
                    match closing {
                        Some(c) => c.wait().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stopped => {}
                }
                reset(&parts)
            }
            Fault::Reset(Cut::BeforeServing) => reset(&parts),
            Fault::Reset(Cut::AfterServing) => {
                let _discarded = next.run(Request::from_parts(parts.clone(), body)).await;
                reset(&parts)
            }
            Fault::Reset(Cut::MidBody) => {
                let served = next.run(Request::from_parts(parts.clone(), body)).await;
                cut_mid_body(served, &parts).await
            }
            Fault::TruncatedBody => truncate(next.run(Request::from_parts(parts, body)).await).await,
            Fault::EmptyPage => return self.paging(PageFaultKind::Empty, injected, parts, body, next).await,
            Fault::LoopingCursor => return self.paging(PageFaultKind::Loop, injected, parts, body, next).await,
        };
        answer.extensions_mut().insert(injected);
        answer
    }
}

impl FaultMiddleware {
    /// Serves the request with a paging fault due. Only a page can take it, so an answer that
    /// is none gives the rule its turn back.
    async fn paging(
        self,
        kind: PageFaultKind,
        injected: Injected,
        mut parts: Parts,
        body: Body,
        next: Next,
    ) -> Response {
        let due = PageFault::due(kind);
        parts.extensions.insert(due.clone());
        let mut answer = next.run(Request::from_parts(parts, body)).await;
        if due.applied() {
            answer.extensions_mut().insert(injected);
        } else {
            self.faults.unfire(injected.rule);
        }
        answer
    }
}

/// An answer that never arrives: the connection is reset (closed with an RST) instead.
fn reset(parts: &Parts) -> Response {
    if let Some(ConnectInfo(conn)) = parts.extensions.get::<ConnectInfo<Conn>>() {
        conn.reset();
    }
    // Served without the kit's server there is no switch; a failing body still makes hyper drop
    // the connection unanswered.
    Response::new(Body::from_stream(futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::ErrorKind::ConnectionReset.into())
    })))
}

async fn body_bytes(body: Body) -> Bytes {
    axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default()
}

async fn truncate(answer: Response) -> Response {
    let (mut head, body) = answer.into_parts();
    let bytes = body_bytes(body).await;
    // Any proper prefix of a JSON object or array is invalid JSON.
    let cut = bytes.slice(..bytes.len() / 2);
    head.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(head, Body::from(cut))
}

async fn cut_mid_body(answer: Response, parts: &Parts) -> Response {
    let (mut head, body) = answer.into_parts();
    let bytes = body_bytes(body).await;
    if bytes.len() < 2 {
        return reset(parts);
    }
    head.headers.insert(header::CONTENT_LENGTH, bytes.len().into());
    let first_half = bytes.slice(..bytes.len() / 2);
    // The pause lets hyper flush the first half; the error then makes it close the connection
    // (a FIN, so what was sent arrives) with the rest of the announced length missing.
    let stream = futures_util::stream::iter([Ok(first_half)]).chain(futures_util::stream::once(async {
        tokio::time::sleep(FLUSH_PAUSE).await;
        Err::<Bytes, io::Error>(io::ErrorKind::ConnectionAborted.into())
    }));
    Response::from_parts(head, Body::from_stream(stream))
}
