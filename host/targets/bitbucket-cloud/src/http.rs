//! The one way this crate talks HTTP, to Bitbucket Cloud and to Atlassian's SCIM API alike: an
//! [`Api`] is one base URL and one credential. Its [`Api::send`] counts calls per endpoint
//! template (never ids), takes each call from the hourly budget first when it has one (so a
//! spent budget sends nothing), paces with Roster's per-second budget, retries transport
//! errors and 502/503/504 with backoff, honours a 429's Retry-After within the run's patience
//! (beyond it: the budget error, the next run continues), and turns error bodies into
//! [`CloudError`]s naming the call. A 429 from a limit of its own (sending invitations) leaves
//! the hourly budget alone: the call waits and retries, or fails with that 429.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use roster_engine::Patience;
use roster_http::{Budget, BudgetConfig, LongWait, Retry, RetryPolicy, SecretValue};
use serde::de::DeserializeOwned;

use crate::budget::Meter;
use crate::error::CloudError;

tokio::task_local! {
    /// Requests sent (retries included) while this is in scope: applying an operation wraps
    /// it in this to report how many attempts the operation took.
    pub(crate) static REQUESTS: std::cell::Cell<u32>;
}

/// How Roster signs in.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// HTTP Basic: a Bitbucket username and app password, or an Atlassian account email and
    /// API token.
    Basic {
        /// The user.
        username: String,
        /// The app password or API token.
        password: SecretValue,
    },
    /// `Authorization: Bearer` (the SCIM directory API key).
    Bearer(SecretValue),
}

/// What an [`Api`] is built from.
pub(crate) struct ApiConfig {
    /// Who answers, in messages: "Bitbucket Cloud", "Atlassian SCIM".
    pub service: &'static str,
    /// Base URL every path is relative to (`https://api.bitbucket.org`).
    pub base: String,
    /// Credential sent with every call.
    pub credential: Credential,
    /// Roster's per-second pacing (the target's `budget`).
    pub pacing: BudgetConfig,
    /// The hourly budget every call is taken from, when the service meters calls.
    pub meter: Option<Arc<Meter>>,
    /// Retries of transport errors and 502/503/504 in a run.
    pub max_retries: u32,
    /// Timeout of one request.
    pub timeout: Duration,
    /// A run waits (within limits); a check never does.
    pub patience: Patience,
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// None.
    Empty,
    /// JSON.
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded` (1.0's group creation).
    Form(Vec<(&'static str, String)>),
}

/// The longest a run waits for a 429's Retry-After inside one call; longer, the call fails
/// with the budget error and the next run continues.
const LONGEST_THROTTLE_WAIT: Duration = Duration::from_secs(60);

/// How long a 429 from a per-resource limit is waited on when it gave no Retry-After: the
/// invitation limit is per minute (support.atlassian.com/bitbucket-cloud/docs/
/// api-request-limits/), so a minute frees it.
const RESOURCE_WAIT_WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `X-RateLimit-Resource` of Cloud's hourly pool.
const HOURLY_POOL: &str = "api";

/// Which of Cloud's limits a 429 came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// The hourly pool every authenticated call is taken from (Roster's [`Meter`]).
    Hourly,
    /// A limit of one resource apart from the pool (sending invitations: 100 a minute).
    Resource,
}

impl Limit {
    /// The limit a 429 to `endpoint` with `X-RateLimit-Resource: resource` came from: the
    /// header decides when Cloud sent it ("api" is the hourly pool). Without it, a 429 on
    /// sending an invitation is taken for the invitation limit's, whose header Atlassian does
    /// not document: were the pool spent instead, the next other call's 429 says so.
    fn of(endpoint: &str, resource: Option<&str>) -> Limit {
        match resource.map(str::trim) {
            Some(r) if r.eq_ignore_ascii_case(HOURLY_POOL) => Limit::Hourly,
            Some(_) => Limit::Resource,
            None if endpoint == crate::client::SEND_INVITATION => Limit::Resource,
            None => Limit::Hourly,
        }
    }
}

/// The longest vendor message an error carries.
const MAX_VENDOR_TEXT: usize = 300;

/// One service, one credential.
pub(crate) struct Api {
    service: &'static str,
    base: String,
    http: reqwest::Client,
    credential: Credential,
    pacing: Budget,
    meter: Option<Arc<Meter>>,
    max_retries: u32,
    patience: Patience,
    calls: Mutex<BTreeMap<String, u64>>,
    throttled: AtomicU64,
}

impl Api {
    /// A client for one service.
    pub(crate) fn new(config: ApiConfig) -> Result<Api, CloudError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("Roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CloudError::Transport {
                service: config.service,
                endpoint: "client".into(),
                detail: e.to_string(),
            })?;
        Ok(Api {
            service: config.service,
            base: config.base.trim_end_matches('/').to_string(),
            http,
            credential: config.credential,
            pacing: Budget::new(config.pacing),
            meter: config.meter,
            max_retries: config.max_retries,
            patience: config.patience,
            calls: Mutex::new(BTreeMap::new()),
            throttled: AtomicU64::new(0),
        })
    }

    /// Who answers, in messages.
    pub(crate) fn service(&self) -> &'static str {
        self.service
    }

    /// The hourly budget this API's calls are taken from, if any.
    pub(crate) fn meter(&self) -> Option<&Arc<Meter>> {
        self.meter.as_ref()
    }

    /// Calls made so far, by endpoint template, and the 429s received.
    pub(crate) fn call_counts(&self) -> (BTreeMap<String, u64>, u64) {
        (
            self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            self.throttled.load(Ordering::Relaxed),
        )
    }

    /// Zeroes the counters (a run starts).
    pub(crate) fn reset_counts(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.throttled.store(0, Ordering::Relaxed);
    }

    /// GETs `path` and decodes the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CloudError> {
        let bytes = self.send(Method::GET, endpoint, path, query, &Body::Empty).await?;
        self.decode(endpoint, &bytes)
    }

    /// Decodes a JSON answer of `endpoint`; the parser's own words may quote the body, so only
    /// where it went wrong is said.
    pub(crate) fn decode<T: DeserializeOwned>(&self, endpoint: &str, bytes: &[u8]) -> Result<T, CloudError> {
        serde_json::from_slice(bytes).map_err(|e| CloudError::Decode {
            service: self.service,
            endpoint: endpoint.to_string(),
            detail: roster_http::json_fault(&e, bytes.len()),
        })
    }

    /// Sends one call. `endpoint` names it in counts and errors ("GET
    /// /2.0/workspaces/{ws}/members": a template, never ids); `path` is relative to the base
    /// URL, or an absolute URL on the same origin (a page's `next`).
    pub(crate) async fn send(
        &self,
        method: Method,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        body: &Body,
    ) -> Result<bytes::Bytes, CloudError> {
        let url = self.url(endpoint, path)?;
        let (retries, long_waits) = match self.patience {
            Patience::Run => (self.max_retries, LongWait::GiveUp),
            // "Test connection" answers in seconds: one attempt, no waiting.
            Patience::Check => (0, LongWait::GiveUp),
        };
        let mut retry = Retry::new(RetryPolicy {
            retries,
            backoff: Duration::from_millis(250),
            max_wait: LONGEST_THROTTLE_WAIT,
            long_waits,
        });
        loop {
            if let Some(meter) = &self.meter {
                meter.take().await?;
            }
            self.pacing.acquire().await;
            let _ = REQUESTS.try_with(|n| n.set(n.get() + 1));
            *self
                .calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(endpoint.to_string())
                .or_default() += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .query(query)
                .header("accept", "application/json");
            req = match &self.credential {
                Credential::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
                Credential::Bearer(token) => req.bearer_auth(token.expose()),
            };
            req = match body {
                Body::Empty => req,
                Body::Json(v) => req.json(v),
                Body::Form(fields) => req.header("content-type", "application/x-www-form-urlencoded").body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
                        .finish(),
                ),
            };
            let wait = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = roster_http::retry_after(resp.headers());
                    let content_type = header(resp.headers(), "content-type");
                    let which = (status == 429)
                        .then(|| Limit::of(endpoint, header(resp.headers(), "x-ratelimit-resource").as_deref()));
                    if which == Some(Limit::Resource) {
                        self.throttled.fetch_add(1, Ordering::Relaxed);
                        // Its own limit, not the hour's: the meter is left as it is.
                        match retry.next_wait(Some(retry_after.unwrap_or(RESOURCE_WAIT_WITHOUT_RETRY_AFTER))) {
                            Some(wait) => wait,
                            None => {
                                let bytes = resp.bytes().await.unwrap_or_default();
                                return Err(self.api_error(endpoint, status, content_type.as_deref(), &bytes));
                            }
                        }
                    } else if which == Some(Limit::Hourly) {
                        self.throttled.fetch_add(1, Ordering::Relaxed);
                        // Cloud says its hourly limit (X-RateLimit-Limit), never what is left
                        // (vendor-apis.md §3, "API request limits"): the meter adopts the
                        // limit, and the window is spent until Retry-After.
                        let limit = header(resp.headers(), "x-ratelimit-limit").and_then(|v| v.trim().parse().ok());
                        let spent = match &self.meter {
                            Some(meter) => Some(meter.throttled(limit, retry_after).await?),
                            None => None,
                        };
                        match retry.next_wait(retry_after) {
                            Some(wait) => wait,
                            None => {
                                if let Some(spent) = spent {
                                    return Err(spent);
                                }
                                let bytes = resp.bytes().await.unwrap_or_default();
                                return Err(self.api_error(endpoint, status, content_type.as_deref(), &bytes));
                            }
                        }
                    } else {
                        // A read can be repeated whatever went wrong; a write only when the
                        // answer says it was not carried out (a gateway or a busy node).
                        let again = match status {
                            502..=504 => true,
                            _ => method == Method::GET && roster_http::transient_status(status),
                        };
                        match again.then(|| retry.next_wait(retry_after)).flatten() {
                            Some(wait) => wait,
                            None => {
                                let bytes = resp.bytes().await.map_err(|e| CloudError::Transport {
                                    service: self.service,
                                    endpoint: endpoint.to_string(),
                                    detail: e.to_string(),
                                })?;
                                if (200..300).contains(&status) {
                                    return self
                                        .not_json(endpoint, content_type.as_deref(), &bytes)
                                        .map_or(Ok(bytes), Err);
                                }
                                return Err(self.api_error(endpoint, status, content_type.as_deref(), &bytes));
                            }
                        }
                    }
                }
                // A write cut off may have been carried out: only one that never reached the
                // service (no connection) or got no answer in time is sent again.
                Err(e) => match (method == Method::GET || e.is_connect() || e.is_timeout())
                    .then(|| retry.next_wait(None))
                    .flatten()
                {
                    Some(wait) => wait,
                    None => {
                        return Err(CloudError::Transport {
                            service: self.service,
                            endpoint: endpoint.to_string(),
                            detail: roster_http::innermost(&e),
                        });
                    }
                },
            };
            tracing::debug!(
                endpoint,
                attempt = retry.retries(),
                wait_ms = wait.as_millis() as u64,
                "retrying {} call",
                self.service
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The URL of `path`: relative to the base, or absolute on the base's origin — a `next`
    /// link elsewhere would carry the credential to another host.
    fn url(&self, endpoint: &str, path: &str) -> Result<String, CloudError> {
        if !path.starts_with("http://") && !path.starts_with("https://") {
            return Ok(format!("{}{path}", self.base));
        }
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        match (origin(path), origin(&self.base)) {
            (Some(a), Some(b)) if a == b => Ok(path.to_string()),
            _ => Err(CloudError::Decode {
                service: self.service,
                endpoint: endpoint.to_string(),
                detail: format!(
                    "a page link to another host ({}); Roster sends its credential only to {}",
                    truncated(path),
                    self.base
                ),
            }),
        }
    }

    /// A 2xx answer with a body that is not JSON: a sign-in page or a proxy answered instead.
    fn not_json(&self, endpoint: &str, content_type: Option<&str>, body: &[u8]) -> Option<CloudError> {
        let kind = content_type?;
        if body.is_empty() || kind.to_ascii_lowercase().contains("json") {
            return None;
        }
        Some(CloudError::Decode {
            service: self.service,
            endpoint: endpoint.to_string(),
            detail: format!(
                "a {}-byte `{kind}` page instead of JSON (a sign-in page or a proxy in front of {}?)",
                body.len(),
                self.service
            ),
        })
    }

    /// An error answer, summarised: the service's own message only from its error JSON —
    /// Cloud's `{"type":"error","error":{"message","detail"}}` or SCIM's error schema
    /// `{"schemas":[…Error],"status","detail"}` — else the body's type and size, so nothing
    /// else a server answers reaches a summary or an alert.
    fn api_error(&self, endpoint: &str, status: u16, content_type: Option<&str>, body: &[u8]) -> CloudError {
        let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let text = |p: &str| {
            v.as_ref()
                .and_then(|v| v.pointer(p))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let cloud = v
            .as_ref()
            .is_some_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("error"));
        let scim = v.as_ref().is_some_and(|v| {
            v.get("schemas")
                .and_then(|s| s.as_array())
                .is_some_and(|s| s.iter().any(|s| s.as_str().is_some_and(|s| s.ends_with(":Error"))))
        });
        let said = if cloud {
            match (text("/error/message"), text("/error/detail")) {
                (Some(m), Some(d)) if !d.is_empty() => Some(format!("{m} ({d})")),
                (Some(m), _) => Some(m),
                (None, d) => d,
            }
        } else if scim {
            text("/detail")
        } else {
            None
        };
        let message = said.map(|s| truncated(&s)).unwrap_or_else(|| {
            if body.is_empty() {
                "(no body)".to_string()
            } else {
                format!(
                    "a {}-byte {} body that is not {}'s error JSON",
                    body.len(),
                    truncated(content_type.unwrap_or("untyped")),
                    self.service
                )
            }
        });
        CloudError::Api {
            service: self.service,
            endpoint: endpoint.to_string(),
            status,
            message,
        }
    }
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn truncated(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(MAX_VENDOR_TEXT).collect();
    if s.chars().count() > MAX_VENDOR_TEXT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_is_the_hour_s_unless_it_names_another_resource() {
        let members = "GET /2.0/workspaces/{ws}/members";
        assert_eq!(Limit::of(members, Some("api")), Limit::Hourly);
        assert_eq!(Limit::of(members, None), Limit::Hourly);
        assert_eq!(Limit::of(members, Some("invitations")), Limit::Resource);
        let send = crate::client::SEND_INVITATION;
        assert_eq!(Limit::of(send, None), Limit::Resource);
        assert_eq!(Limit::of(send, Some("invitations")), Limit::Resource);
        assert_eq!(
            Limit::of(send, Some(" API ")),
            Limit::Hourly,
            "the pool spent while inviting"
        );
        assert_eq!(Limit::of("GET /1.0/users/{ws}/invitations", None), Limit::Hourly);
    }
}
