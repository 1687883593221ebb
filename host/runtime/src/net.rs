//! The host side of a connector's `http` import: the only way out of the sandbox.
//!
//! Order of checks for every request and every redirect hop: method and size → allowlist and
//! scheme → secrets filled only into the spot each is bound to (header or field, method, origin,
//! path prefix) → request budget → DNS resolution refused for
//! private addresses unless allowed → response size cap → secret values redacted from the
//! response. 429/503 with Retry-After are waited out here (and pause the whole source).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::time::Instant;

use crate::capability::{Denied, NetPolicy, Origin};
use crate::limits::Limits;
use crate::secrets::{Destination, Echo, Secret, Secrets, redact_echoes};
use roster_http::{Budget, BudgetConfig, LongWait, RateLimit, Retry, RetryPolicy};

/// How many redirects a request may follow; each hop is re-checked against the allowlist.
const MAX_REDIRECTS: usize = 5;
/// Header names a plugin may not set: the host derives them from the URL and the body, and asks
/// for uncompressed answers (`accept-encoding`) since only those can have secrets redacted.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "accept-encoding",
];
/// The longest a server's word may hold a source: a `Retry-After` or rate-limit reset beyond
/// this is treated as this, so a garbled or hostile header cannot stop a source until restart.
const MAX_HOLD: Duration = Duration::from_secs(3600);
/// The most header bytes (names and values) one request may carry: far above what any API
/// needs, and a bound on what the host fills and scans for a plugin.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// An outbound request as the plugin made it (placeholders unfilled).
#[derive(Debug, Clone)]
pub struct OutRequest {
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// Body, if any.
    pub body: Option<Vec<u8>>,
}

/// A response as the plugin gets it (secret values redacted).
#[derive(Debug, Clone)]
pub struct InResponse {
    /// Status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Why a request was not answered; maps onto the WIT `plugin-error` cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Refused by policy or limits: the source's settings must change.
    #[error("{0}")]
    Refused(String),
    /// Network trouble or the deadline: worth retrying later.
    #[error("{0}")]
    Transient(String),
}

/// What one source's connector may reach, with which secrets, at what rate.
#[derive(Debug)]
pub struct SourceAccess {
    source: String,
    pub(crate) policy: NetPolicy,
    secrets: Secrets,
    pub(crate) budget: Budget,
    client: reqwest::Client,
    files: Option<std::path::PathBuf>,
    /// Requests sent (each retry and each LDAP search counts), for run reports and metrics.
    pub(crate) sent: std::sync::atomic::AtomicU64,
    /// 429 and 503 answers received.
    throttled: std::sync::atomic::AtomicU64,
    /// Origins already warned about for plain HTTP.
    plain_warned: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The source's open LDAP connections.
    pub(crate) ldap: crate::ldap::LdapSessions,
    /// When the identity provider's spent rate-limit window resets, so a call that cannot
    /// outwait it says so instead of timing out.
    window_resets: std::sync::Mutex<Option<Instant>>,
}

/// Requests a source's connector made, for run reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Requests sent to the identity provider (retries included).
    pub sent: u64,
    /// Of those, answered 429 or 503.
    pub throttled: u64,
}

impl std::ops::Sub for RequestCounts {
    type Output = RequestCounts;
    fn sub(self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            sent: self.sent.saturating_sub(earlier.sent),
            throttled: self.throttled.saturating_sub(earlier.throttled),
        }
    }
}

/// A resolver that refuses names resolving to addresses the source may not reach.
struct GuardedResolver {
    policy: NetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                policy.check_addr(&host, a.ip())?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl SourceAccess {
    /// Access for one source. Fails when the policy itself is invalid.
    pub fn new(
        source: impl Into<String>,
        policy: NetPolicy,
        secrets: Vec<Secret>,
        budget: BudgetConfig,
    ) -> Result<Arc<SourceAccess>, Denied> {
        Self::with_files(source, policy, secrets, budget, None)
    }

    /// Access for one source that may also read one folder (mounted read-only at `/data`).
    pub fn with_files(
        source: impl Into<String>,
        policy: NetPolicy,
        secrets: Vec<Secret>,
        budget: BudgetConfig,
        files: Option<std::path::PathBuf>,
    ) -> Result<Arc<SourceAccess>, Denied> {
        policy.validate()?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .user_agent(concat!("Roster/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Denied::BadUrl(format!("cannot build the HTTP client: {e}")))?;
        Ok(Arc::new(SourceAccess {
            source: source.into(),
            policy,
            secrets: Secrets::new(secrets),
            budget: Budget::new(budget),
            client,
            files,
            sent: Default::default(),
            throttled: Default::default(),
            plain_warned: Default::default(),
            ldap: Default::default(),
            window_resets: Default::default(),
        }))
    }

    /// No network at all (transforms, and connectors of sources without hosts). Shared: building
    /// an HTTP client loads the TLS roots, which costs milliseconds.
    pub fn none() -> Arc<SourceAccess> {
        static NONE: std::sync::OnceLock<Arc<SourceAccess>> = std::sync::OnceLock::new();
        NONE.get_or_init(|| {
            SourceAccess::new("(none)", NetPolicy::default(), Vec::new(), BudgetConfig::default())
                .expect("an empty policy is valid")
        })
        .clone()
    }

    /// The source this access belongs to.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The folder the source's connector may read, if any.
    pub fn files(&self) -> Option<&std::path::Path> {
        self.files.as_deref()
    }

    /// True the first time a plain-HTTP request goes to `origin` through this access.
    fn first_plain_request(&self, origin: &Origin) -> bool {
        self.plain_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(origin.to_string())
    }

    /// Requests sent so far through this access.
    pub fn counts(&self) -> RequestCounts {
        use std::sync::atomic::Ordering::Relaxed;
        RequestCounts {
            sent: self.sent.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
        }
    }

    /// The source's secrets (for redaction and signing).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Sends a plugin's request under the source's policy, the job's limits and deadline.
    pub async fn send(
        &self,
        req: OutRequest,
        limits: &Limits,
        deadline: Instant,
        plugin: &str,
    ) -> Result<InResponse, NetError> {
        let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| NetError::Refused(format!("`{}` is not an HTTP method", req.method)))?;
        let header_bytes: usize = req.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        if header_bytes > MAX_HEADER_BYTES {
            return Err(NetError::Refused(format!(
                "the request's headers take {header_bytes} bytes, more than the {MAX_HEADER_BYTES} a plugin may send"
            )));
        }
        let body_len = req.body.as_ref().map_or(0, Vec::len);
        if body_len > limits.max_request_bytes {
            return Err(NetError::Refused(format!(
                "request body of {body_len} bytes exceeds this source's cap of {} bytes (`max_request_bytes`)",
                limits.max_request_bytes
            )));
        }
        let mut method = method;
        let mut url = req.url.clone();
        let mut body = req.body.clone();
        for hop in 0..=MAX_REDIRECTS {
            let (parsed, origin) = self
                .policy
                .check_url(&url)
                .map_err(|d| NetError::Refused(d.to_string()))?;
            if hop == 0 {
                let to = Destination {
                    origin: &origin,
                    method: method.as_str(),
                    path: parsed.path(),
                };
                self.secrets
                    .check_url(&url, &to)
                    .map_err(|e| NetError::Refused(e.to_string()))?;
            }
            if !origin.is_https() && self.first_plain_request(&origin) {
                tracing::warn!(source = %self.source, plugin, %origin, "plain HTTP (allowed by allow_insecure_http); said once per origin");
            }
            let (resp, echoes) = self
                .send_with_retries(
                    &method,
                    parsed.clone(),
                    &origin,
                    &req.headers,
                    body.as_deref(),
                    limits,
                    deadline,
                    plugin,
                )
                .await?;
            let status = resp.status().as_u16();
            if let (300..=399, Some(location)) = (status, resp.headers().get(reqwest::header::LOCATION)) {
                let location = location
                    .to_str()
                    .map_err(|_| NetError::Refused("redirect with an unreadable Location".into()))?;
                url = parsed
                    .join(location)
                    .map_err(|_| NetError::Refused(format!("redirect to an invalid URL `{location}`")))?
                    .to_string();
                if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            return self.read_response(resp, &origin, limits, &echoes).await;
        }
        Err(NetError::Refused(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            req.url
        )))
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_with_retries(
        &self,
        method: &reqwest::Method,
        url: url::Url,
        origin: &Origin,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        limits: &Limits,
        deadline: Instant,
        plugin: &str,
    ) -> Result<(reqwest::Response, Vec<Echo>), NetError> {
        // Filled for this hop: after a redirect the destination, and so what may be filled, changes.
        let to = Destination {
            origin,
            method: method.as_str(),
            path: url.path(),
        };
        let refused = |e: crate::secrets::SecretError| NetError::Refused(e.to_string());
        let mut builder_headers = reqwest::header::HeaderMap::new();
        builder_headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("identity"),
        );
        let mut echoes = Vec::new();
        for (name, value) in headers {
            if FORBIDDEN_HEADERS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                continue;
            }
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| NetError::Refused(format!("`{name}` is not a valid header name")))?;
            let filled = self
                .secrets
                .fill_header(name.as_str(), value.as_bytes(), &to)
                .map_err(refused)?;
            echoes.extend(self.secrets.echo_of(value.as_bytes(), &filled));
            let value = reqwest::header::HeaderValue::from_bytes(&filled)
                .map_err(|_| NetError::Refused(format!("the value of header `{name}` is not valid")))?;
            builder_headers.append(name, value);
        }
        let content_type = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        let body = body
            .map(|b| self.secrets.fill_body(b, content_type, &to))
            .transpose()
            .map_err(refused)?;
        let mut retry = Retry::until(
            RetryPolicy {
                retries: limits.max_http_retries,
                backoff: Duration::from_secs(1),
                max_wait: limits.max_retry_wait(),
                long_waits: LongWait::GiveUp,
            },
            deadline,
        );
        loop {
            // A hold that outlasts the call is reported now rather than slept into a timeout.
            if let Some(until) = self.budget.held_until()
                && until > deadline
            {
                return Err(NetError::Transient(self.held_past_deadline(origin, until)));
            }
            let waited = self.budget.acquire().await;
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(NetError::Transient(format!(
                    "the call's deadline passed before the request to {origin} could be sent"
                )));
            }
            let timeout = limits.request_timeout().min(left);
            let mut rb = self
                .client
                .request(method.clone(), url.clone())
                .headers(builder_headers.clone())
                .timeout(timeout);
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let sent = now;
            let result = rb.send().await;
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ms = sent.elapsed().as_millis() as u64;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(target: "roster::http", source = %self.source, plugin, method = %method, host = origin.host(), path = url.path(), error = %e, ms, "request failed");
                    return Err(classify_reqwest(&e, origin, timeout));
                }
            };
            let status = resp.status().as_u16();
            // Google's APIs refuse a spent quota with 403 (reason `rateLimitExceeded` or
            // `userRateLimitExceeded`) rather than 429: throttling, backed off like a 429. Any
            // other 403 (not authorised) is the connector's to report.
            let resp = if status == 403 {
                let (resp, body) = buffered(resp, origin, limits.max_response_bytes).await?;
                if roster_http::is_quota_refusal(&body) {
                    self.throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(wait) = retry.next_wait(roster_http::retry_after(resp.headers())) {
                        tracing::warn!(source = %self.source, plugin, status, wait_ms = wait.as_millis() as u64, "quota exceeded (403); waiting before retrying");
                        self.budget.cool_down(wait);
                        continue;
                    }
                }
                resp
            } else {
                resp
            };
            if matches!(status, 429 | 503) {
                self.throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // Every request is traced; at debug level, since a full fetch makes thousands.
            tracing::debug!(target: "roster::http", source = %self.source, plugin, method = %method, host = origin.host(), path = url.path(), status, bytes = resp.content_length().unwrap_or(0), ms, budget_wait_ms = waited.as_millis() as u64, "request");
            // The window's headers pace the source before the server refuses. A spent window
            // holds every job of the source until it resets; the check at the top of the loop
            // turns a reset past the deadline into an error that says so.
            let window = RateLimit::from_headers(resp.headers(), SystemTime::now());
            if let Some(pause) = window.and_then(|w| w.pause()) {
                tracing::debug!(target: "roster::http", source = %self.source, plugin, pause_ms = pause.as_millis() as u64, "rate-limit window nearly spent; pacing");
                self.hold(
                    pause,
                    if window.is_some_and(|w| w.spent()) {
                        Hold::WindowSpent
                    } else {
                        Hold::Paced
                    },
                );
            }
            // Only throttling is retried here: any other answer is the connector's to judge. A
            // 429 without Retry-After (Okta, OneLogin) on a spent window is waited out until the
            // window resets; anything else throttled (a busy 503 that merely reports its window)
            // backs off as usual.
            let spent_reset = window.filter(|w| status == 429 && w.spent()).map(|w| w.reset_in);
            let server_wait = roster_http::retry_after(resp.headers()).or(spent_reset);
            if matches!(status, 429 | 503) {
                if let Some(wait) = retry.next_wait(server_wait) {
                    tracing::warn!(source = %self.source, plugin, status, wait_ms = wait.as_millis() as u64, "throttled; waiting before retrying");
                    self.budget.cool_down(wait);
                    continue;
                }
                // Given up: the connector hears the 429, and the source's other jobs keep off
                // the server until it said to come back.
                if let Some(wait) = server_wait {
                    self.hold(
                        wait,
                        if spent_reset.is_some() {
                            Hold::WindowSpent
                        } else {
                            Hold::RetryAfter
                        },
                    );
                }
            }
            return Ok((resp, echoes));
        }
    }

    /// Holds every job of the source for `wait` (at most [`MAX_HOLD`]), remembering when a
    /// spent rate-limit window resets.
    fn hold(&self, wait: Duration, why: Hold) {
        let wait = wait.min(MAX_HOLD);
        self.budget.cool_down(wait);
        if why == Hold::WindowSpent {
            *self
                .window_resets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + wait);
        }
    }

    /// Why no request can go before the call's deadline, in words an administrator can act on.
    fn held_past_deadline(&self, origin: &Origin, until: Instant) -> String {
        let secs = until.saturating_duration_since(Instant::now()).as_secs();
        let resets = *self
            .window_resets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if resets.is_some_and(|r| r + Duration::from_secs(1) >= until) {
            format!(
                "the API rate limit at {origin} is spent and resets in {secs} s, after this call's deadline; \
                 the source goes on at its next run (raise the rate limit for this API client at the \
                 identity provider, or schedule the source less often)"
            )
        } else {
            format!(
                "{origin} asked for requests to wait {secs} s (Retry-After), longer than this call may; \
                 the source goes on at its next run"
            )
        }
    }

    async fn read_response(
        &self,
        mut resp: reqwest::Response,
        origin: &Origin,
        limits: &Limits,
        echoes: &[Echo],
    ) -> Result<InResponse, NetError> {
        let status = resp.status().as_u16();
        // Compressed bytes cannot have secrets redacted; Roster asked for `identity`.
        if let Some(coding) = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "identity")
        {
            return Err(NetError::Refused(format!(
                "the response from {origin} is compressed (Content-Encoding: {coding}) although Roster asked for none; Roster reads only uncompressed answers, so that secrets can be kept out of them"
            )));
        }
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(n, v)| {
                let value = self.secrets.redact_str(v.to_str().ok()?);
                let value = redact_echoes(value.into_bytes(), echoes);
                Some((n.as_str().to_string(), String::from_utf8(value).ok()?))
            })
            .collect();
        let cap = limits.max_response_bytes;
        if resp.content_length().is_some_and(|n| n as usize > cap) {
            return Err(too_big(origin, cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| NetError::Transient(format!("reading the response from {origin} failed: {e}")))?
        {
            if body.len() + chunk.len() > cap {
                return Err(too_big(origin, cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(InResponse {
            status,
            headers,
            body: redact_echoes(self.secrets.redact(body), echoes),
        })
    }
}

/// Why the source is being held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// The window has requests left, spread over the rest of it.
    Paced,
    /// The window has none left until it resets.
    WindowSpent,
    /// The server named a time to come back.
    RetryAfter,
}

/// Reads `resp`'s body (at most `cap` bytes) and gives back an equal response to read again.
async fn buffered(
    mut resp: reqwest::Response,
    origin: &Origin,
    cap: usize,
) -> Result<(reqwest::Response, Vec<u8>), NetError> {
    if resp.content_length().is_some_and(|n| n as usize > cap) {
        return Err(too_big(origin, cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| NetError::Transient(format!("reading the response from {origin} failed: {e}")))?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_big(origin, cap));
        }
        body.extend_from_slice(&chunk);
    }
    let mut again = http::Response::new(body.clone());
    *again.status_mut() = resp.status();
    *again.headers_mut() = resp.headers().clone();
    Ok((reqwest::Response::from(again), body))
}

fn too_big(origin: &Origin, cap: usize) -> NetError {
    NetError::Refused(format!(
        "the response from {origin} is larger than this source's cap of {cap} bytes (`max_response_bytes`)"
    ))
}

fn classify_reqwest(e: &reqwest::Error, origin: &Origin, timeout: Duration) -> NetError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(d) = s.downcast_ref::<Denied>() {
            return NetError::Refused(d.to_string());
        }
        source = s.source();
    }
    if e.is_timeout() {
        NetError::Transient(format!("the request to {origin} timed out after {timeout:?}"))
    } else if e.is_connect() {
        NetError::Transient(format!("cannot connect to {origin}: {}", roster_http::innermost(e)))
    } else {
        NetError::Transient(format!("the request to {origin} failed: {}", roster_http::innermost(e)))
    }
}
