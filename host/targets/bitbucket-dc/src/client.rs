//! A typed client for the Bitbucket Data Center admin REST API (`/rest/api/1.0`).
//!
//! Every request goes through one place that takes a token from the target's request budget,
//! retries 429/503 honouring Retry-After (and transport errors and 502/504 with backoff), counts
//! calls per endpoint for the run summary, and turns `{"errors":[…]}` bodies into [`BbError`]s
//! that say which call failed and why.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::json;

use roster_http::{
    Answered, Budget, BudgetConfig, Concurrency, Limiter, LongWait, Retry, RetryPolicy, SecretValue, Settled,
};

use crate::model::{BbGroup, BbPage, BbUser, Errors, GroupPermission, License, UserPermission};

tokio::task_local! {
    /// Requests sent (retries included) while this is in scope: applying an operation wraps
    /// it in this to report how many attempts the operation took.
    pub(crate) static REQUESTS: std::cell::Cell<u32>;
}

/// Items per page when listing (Bitbucket's usual hard cap).
const PAGE_LIMIT: u32 = 1000;

/// Empty pages in a row, each saying more follow, after which a listing is taken to be endless
/// (Bitbucket filters before it pages, so it answers none in a healthy listing).
const MAX_EMPTY_PAGES: u32 = 10;

/// How Roster authenticates to Bitbucket.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Username and password (or a personal access token as the password).
    Basic {
        /// The account Roster uses.
        username: String,
        /// Its password or token.
        password: SecretValue,
    },
    /// A personal access token as `Authorization: Bearer`.
    Bearer {
        /// The token.
        token: SecretValue,
        /// The token's owner, protected from changes.
        username: String,
    },
}

impl Auth {
    /// The account Roster acts as (always protected).
    pub fn username(&self) -> &str {
        match self {
            Auth::Basic { username, .. } | Auth::Bearer { username, .. } => username,
        }
    }
}

/// A failed Bitbucket call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BbError {
    /// Bitbucket answered with an error status.
    #[error("Bitbucket {endpoint} answered {status}{}: {message}", exception.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Api {
        /// "POST /admin/users".
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Java exception class from the body.
        exception: Option<String>,
        /// Message from the body.
        message: String,
    },
    /// Bitbucket could not be reached.
    #[error("cannot reach Bitbucket for {endpoint}: {detail}")]
    Transport {
        /// The call.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// The answer was not what the API documents.
    #[error("Bitbucket {endpoint} answered something unexpected: {detail}")]
    Decode {
        /// The call.
        endpoint: String,
        /// What did not parse.
        detail: String,
    },
}

impl BbError {
    /// HTTP status, if Bitbucket answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            BbError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://bitbucket.example.com` (the REST API is under `/rest/api/1.0`).
    pub url: String,
    /// Credentials.
    pub auth: Auth,
    /// Request budget.
    pub budget: BudgetConfig,
    /// Retries of 429/503/502/504 and transport errors.
    pub max_retries: u32,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Requests in flight at once, reads and writes together.
    pub concurrency: Concurrency,
}

/// The client. Share it behind an `Arc`; it counts calls for the run summary.
pub struct BitbucketDc {
    base: String,
    http: reqwest::Client,
    auth: Auth,
    budget: Budget,
    limiter: Limiter,
    max_retries: u32,
    calls: Mutex<BTreeMap<String, u64>>,
    throttled: AtomicU64,
}

impl BitbucketDc {
    /// A client for one Bitbucket instance.
    pub fn new(config: ClientConfig) -> Result<BitbucketDc, BbError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // One kept-alive connection per request in flight: a new TLS handshake per call
            // would cost a real server's round trips twice.
            .pool_max_idle_per_host(config.concurrency.most())
            .user_agent(concat!("Roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BbError::Transport {
                endpoint: "client".into(),
                detail: e.to_string(),
            })?;
        Ok(BitbucketDc {
            base: format!("{}/rest/api/1.0", config.url.trim_end_matches('/')),
            http,
            auth: config.auth,
            budget: Budget::new(config.budget),
            limiter: Limiter::new(config.concurrency),
            max_retries: config.max_retries,
            calls: Mutex::new(BTreeMap::new()),
            throttled: AtomicU64::new(0),
        })
    }

    /// The account Roster acts as.
    pub fn username(&self) -> &str {
        self.auth.username()
    }

    /// Calls made so far, by endpoint ("GET /admin/users" → n), and the 429s received.
    pub fn call_counts(&self) -> (BTreeMap<String, u64>, u64) {
        (
            self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            self.throttled.load(Ordering::Relaxed),
        )
    }

    /// Zeroes the counters (at the start of a run).
    pub fn reset_counts(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.throttled.store(0, Ordering::Relaxed);
        self.limiter.reset_record();
    }

    /// What the adaptive concurrency limit settled on; `None` when it is fixed.
    pub fn concurrency(&self) -> Option<Settled> {
        self.limiter.settled()
    }

    /// The most requests the client sends at once (what callers size their queues to).
    pub fn most_in_flight(&self) -> usize {
        self.limiter.most()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<bytes::Bytes, BbError> {
        let endpoint = format!("{method} {path}");
        let mut retry = Retry::new(RetryPolicy {
            retries: self.max_retries,
            backoff: Duration::from_millis(250),
            max_wait: Duration::from_secs(120),
            long_waits: LongWait::Shorten,
        });
        loop {
            // The place in flight first, then the budget's token: a request waiting for a place
            // must not hold a token others could use.
            let permit = self.limiter.acquire().await;
            self.budget.acquire().await;
            let _ = REQUESTS.try_with(|n| n.set(n.get() + 1));
            *self
                .calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(endpoint.clone())
                .or_default() += 1;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .query(query)
                .header("accept", "application/json");
            req = match &self.auth {
                Auth::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
                Auth::Bearer { token, .. } => req.bearer_auth(token.expose()),
            };
            if let Some(b) = &body {
                req = req.json(b);
            } else if method != Method::GET {
                // Bitbucket wants a JSON content type on writes even without a body.
                req = req.header("content-type", "application/json");
            }
            let wait = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let answered = if status == 429 || status == 503 {
                        Answered::Overloaded
                    } else {
                        Answered::Served
                    };
                    let retry_after = roster_http::retry_after(resp.headers());
                    let content_type = resp
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    if status == 429 {
                        self.throttled.fetch_add(1, Ordering::Relaxed);
                        // Bitbucket's token bucket says how fast it refills: pace to it from now on.
                        let header = |n: &str| {
                            resp.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.trim().parse::<f64>().ok())
                        };
                        if let Some(fill) = header("x-ratelimit-fillrate") {
                            let interval = header("x-ratelimit-interval-seconds").unwrap_or(1.0).max(0.001);
                            let limit = header("x-ratelimit-limit").unwrap_or(1.0) as u32;
                            self.budget.adopt(fill / interval, limit);
                        }
                    }
                    // A read can be repeated whatever went wrong; a write only when the answer
                    // says it was not carried out (throttled, or a gateway or a busy node).
                    let again = match status {
                        429 | 502 | 503 | 504 => true,
                        _ => method == Method::GET && roster_http::transient_status(status),
                    };
                    let wait = again.then(|| retry.next_wait(retry_after)).flatten();
                    match wait {
                        Some(wait) => {
                            permit.done(answered);
                            // A 429 is the rate limit's: everyone waits it out. A 503 with
                            // Retry-After is a busy server's; an adaptive limit has just taken
                            // fewer places for it, so only this request waits.
                            if status == 429 || (retry_after.is_some() && !self.limiter.adapts()) {
                                self.budget.cool_down(wait);
                            }
                            wait
                        }
                        None => {
                            let bytes = resp.bytes().await.map_err(|e| BbError::Transport {
                                endpoint: endpoint.clone(),
                                detail: e.to_string(),
                            });
                            permit.done(answered);
                            let bytes = bytes?;
                            if (200..300).contains(&status) {
                                return not_json(&endpoint, content_type.as_deref(), &bytes).map_or(Ok(bytes), Err);
                            }
                            return Err(api_error(&endpoint, status, content_type.as_deref(), &bytes));
                        }
                    }
                }
                // A write cut off may have been carried out: only one that never reached
                // Bitbucket (no connection) or got no answer in time is sent again.
                Err(e) => match {
                    permit.done(Answered::Lost);
                    method == Method::GET || e.is_connect() || e.is_timeout()
                }
                .then(|| retry.next_wait(None))
                .flatten()
                {
                    Some(wait) => wait,
                    None => {
                        return Err(BbError::Transport {
                            endpoint,
                            detail: roster_http::innermost(&e),
                        });
                    }
                },
            };
            tracing::debug!(
                endpoint,
                attempt = retry.retries(),
                wait_ms = wait.as_millis() as u64,
                "retrying Bitbucket call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, BbError> {
        let bytes = self.send(Method::GET, path, query, None).await?;
        // The parser's own words may quote the body; where it went wrong is enough.
        serde_json::from_slice(&bytes).map_err(|e| BbError::Decode {
            endpoint: format!("GET {path}"),
            detail: roster_http::json_fault(&e, bytes.len()),
        })
    }

    /// Every item of a paged listing, following `nextPageStart`.
    async fn all<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<T>, BbError> {
        let mut out = Vec::new();
        let mut start = 0u64;
        let mut empty = 0;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("start", start.to_string()));
            q.push(("limit", PAGE_LIMIT.to_string()));
            let page: BbPage<T> = self.get(path, &q).await?;
            empty = if page.values.is_empty() { empty + 1 } else { 0 };
            if empty > MAX_EMPTY_PAGES && !page.is_last_page {
                return Err(BbError::Decode {
                    endpoint: format!("GET {path}"),
                    detail: format!(
                        "{empty} empty pages in a row, none of them the last; stopping to avoid an endless listing"
                    ),
                });
            }
            out.extend(page.values);
            match (page.is_last_page, page.next_page_start) {
                (false, Some(next)) if next > start => start = next,
                (false, _) => {
                    return Err(BbError::Decode {
                        endpoint: format!("GET {path}"),
                        detail: "a page that is not the last has no usable nextPageStart".into(),
                    });
                }
                (true, _) => return Ok(out),
            }
        }
    }

    /// All users.
    pub async fn users(&self) -> Result<Vec<BbUser>, BbError> {
        self.all("/admin/users", &[]).await
    }

    /// The user with this name (case-insensitive), if any: Bitbucket's `filter` matches
    /// substrings of names, emails and display names, so the exact name is picked out.
    pub async fn user(&self, name: &str) -> Result<Option<BbUser>, BbError> {
        let lower = name.to_lowercase();
        Ok(self
            .all::<BbUser>("/admin/users", &[("filter", name.to_string())])
            .await?
            .into_iter()
            .find(|u| u.name.to_lowercase() == lower))
    }

    /// All groups.
    pub async fn groups(&self) -> Result<Vec<String>, BbError> {
        Ok(self
            .all::<BbGroup>("/admin/groups", &[])
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect())
    }

    /// Members of a group.
    pub async fn group_members(&self, group: &str) -> Result<Vec<BbUser>, BbError> {
        self.all("/admin/groups/more-members", &[("context", group.to_string())])
            .await
    }

    /// Groups a user is a member of.
    pub async fn user_groups(&self, user: &str) -> Result<Vec<String>, BbError> {
        Ok(self
            .all::<BbGroup>("/admin/users/more-members", &[("context", user.to_string())])
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect())
    }

    /// Groups with a global permission.
    pub async fn group_permissions(&self) -> Result<Vec<GroupPermission>, BbError> {
        self.all("/admin/permissions/groups", &[]).await
    }

    /// Users with a global permission granted directly.
    pub async fn user_permissions(&self) -> Result<Vec<UserPermission>, BbError> {
        self.all("/admin/permissions/users", &[]).await
    }

    /// The licence.
    pub async fn license(&self) -> Result<License, BbError> {
        self.get("/admin/license", &[]).await
    }

    /// User directories (the 9.4 document declares one object; servers answer a list or a page).
    pub async fn user_directories(&self) -> Result<serde_json::Value, BbError> {
        self.get("/admin/user-directories", &[]).await
    }

    /// Creates a user in the internal directory, without adding it to the default group.
    pub async fn create_user(
        &self,
        name: &str,
        display_name: &str,
        email: &str,
        password: &str,
    ) -> Result<(), BbError> {
        let q = [
            ("name", name.to_string()),
            ("displayName", display_name.to_string()),
            ("emailAddress", email.to_string()),
            ("password", password.to_string()),
            ("addToDefaultGroup", "false".to_string()),
            ("notify", "false".to_string()),
        ];
        self.send(Method::POST, "/admin/users", &q, None).await.map(drop)
    }

    /// Updates display name and email (`UserUpdate`; the field is `email`).
    pub async fn update_user(&self, name: &str, display_name: &str, email: &str) -> Result<(), BbError> {
        let body = json!({"name": name, "displayName": display_name, "email": email});
        self.send(Method::PUT, "/admin/users", &[], Some(body)).await.map(drop)
    }

    /// Renames a user.
    pub async fn rename_user(&self, from: &str, to: &str) -> Result<(), BbError> {
        self.send(
            Method::POST,
            "/admin/users/rename",
            &[],
            Some(json!({"name": from, "newName": to})),
        )
        .await
        .map(drop)
    }

    /// Deletes a user.
    pub async fn delete_user(&self, name: &str) -> Result<(), BbError> {
        self.send(Method::DELETE, "/admin/users", &[("name", name.to_string())], None)
            .await
            .map(drop)
    }

    /// Erases a deleted user's personal data (irreversible).
    pub async fn erase_user(&self, name: &str) -> Result<(), BbError> {
        self.send(Method::GET, "/admin/users/erasure", &[("name", name.to_string())], None)
            .await?;
        self.send(
            Method::POST,
            "/admin/users/erasure",
            &[("name", name.to_string())],
            None,
        )
        .await
        .map(drop)
    }

    /// Creates a group.
    pub async fn create_group(&self, name: &str) -> Result<(), BbError> {
        self.send(Method::POST, "/admin/groups", &[("name", name.to_string())], None)
            .await
            .map(drop)
    }

    /// Deletes a group (and its permissions).
    pub async fn delete_group(&self, name: &str) -> Result<(), BbError> {
        self.send(Method::DELETE, "/admin/groups", &[("name", name.to_string())], None)
            .await
            .map(drop)
    }

    /// Adds users to a group in one call (all or nothing).
    pub async fn add_users_to_group(&self, group: &str, users: &[String]) -> Result<(), BbError> {
        self.send(
            Method::POST,
            "/admin/groups/add-users",
            &[],
            Some(json!({"group": group, "users": users})),
        )
        .await
        .map(drop)
    }

    /// Removes a user from a group (no bulk call exists).
    pub async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<(), BbError> {
        self.send(
            Method::POST,
            "/admin/users/remove-group",
            &[],
            Some(json!({"context": user, "itemName": group})),
        )
        .await
        .map(drop)
    }

    /// Revokes every global permission granted to a user directly.
    pub async fn revoke_user_permissions(&self, name: &str) -> Result<(), BbError> {
        self.send(
            Method::DELETE,
            "/admin/permissions/users",
            &[("name", name.to_string())],
            None,
        )
        .await
        .map(drop)
    }
}

/// A 2xx answer with a body that is not JSON: a sign-in page or a proxy answered instead of
/// Bitbucket, and nothing asked for was done (or read).
fn not_json(endpoint: &str, content_type: Option<&str>, body: &[u8]) -> Option<BbError> {
    let kind = content_type?;
    if body.is_empty() || kind.to_ascii_lowercase().contains("json") {
        return None;
    }
    Some(BbError::Decode {
        endpoint: endpoint.to_string(),
        detail: format!(
            "a {}-byte `{kind}` page instead of JSON (a sign-in page or a proxy in front of Bitbucket?)",
            body.len()
        ),
    })
}

/// The longest vendor message or exception name an error carries.
const MAX_VENDOR_TEXT: usize = 300;

/// An error answer, summarised: Bitbucket's own message only when the body is Bitbucket's error
/// JSON, else the body's type and size. Whatever else a server at the target's url answers
/// (an HTML page, a proxy's text, another service's JSON) never reaches a run summary, an
/// alert or the API.
fn api_error(endpoint: &str, status: u16, content_type: Option<&str>, body: &[u8]) -> BbError {
    let truncated = |s: &str| -> String {
        let mut out: String = s.chars().filter(|c| !c.is_control()).take(MAX_VENDOR_TEXT).collect();
        if s.chars().count() > MAX_VENDOR_TEXT {
            out.push('…');
        }
        out
    };
    let parsed: Option<Errors> = serde_json::from_slice(body).ok();
    let first = parsed.as_ref().and_then(|e| e.errors.first());
    let message = first
        .and_then(|e| e.message.as_deref())
        .map(truncated)
        .unwrap_or_else(|| {
            if body.is_empty() {
                "(no body)".to_string()
            } else {
                format!(
                    "a {}-byte {} body that is not Bitbucket's error JSON",
                    body.len(),
                    truncated(content_type.unwrap_or("untyped"))
                )
            }
        });
    BbError::Api {
        endpoint: endpoint.to_string(),
        status,
        exception: first.and_then(|e| e.exception_name.as_deref()).map(truncated),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer_carries_bitbucket_s_message_and_never_another_body() {
        let e = api_error(
            "GET /admin/license",
            401,
            Some("text/html"),
            b"<html><form>password: hunter2-session-9f3a</form></html>",
        )
        .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            e.contains("401") && e.contains("text/html") && e.contains("not Bitbucket's error JSON"),
            "{e}"
        );
        let other_json = api_error(
            "GET /admin/license",
            500,
            Some("application/json"),
            br#"{"detail":"leak-77e1"}"#,
        );
        assert!(!other_json.to_string().contains("leak-77e1"), "{other_json}");
        let vendor = br#"{"errors":[{"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}"#;
        let e = api_error(
            "GET /admin/license",
            401,
            Some("application/json;charset=UTF-8"),
            vendor,
        )
        .to_string();
        assert!(
            e.contains("Authentication failed.") && e.contains("IncorrectPassword"),
            "{e}"
        );
        let long = format!(r#"{{"errors":[{{"message":"{}"}}]}}"#, "x".repeat(5000));
        let e = api_error("GET /admin/license", 400, None, long.as_bytes()).to_string();
        assert!(e.len() < 500, "{} bytes", e.len());
        assert_eq!(
            api_error("DELETE /admin/users", 404, None, b"").to_string(),
            "Bitbucket DELETE /admin/users answered 404: (no body)"
        );
    }
}
