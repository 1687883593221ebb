//! Webhook alerts: a failed run, a plan held for approval, a source that has not synced for too
//! long, a change volume far above a source's usual. Each `[[alert]]` in `roster.toml` is one
//! webhook, as generic JSON or as a Slack incoming webhook.
//!
//! Self-contained on purpose: events are plain data, so the engine's adapters decide when to
//! raise them and this module only decides who gets them and how they travel.
//!
//! Webhook URLs are secrets (Slack's carries its token in the path), so nothing here logs or
//! returns more of one than `scheme://host/…`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{StatusCode, Url, header};
use roster_http::{LongWait, Retry, RetryPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The version reported in alert bodies.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Earlier runs needed before a volume can count as unusual: with fewer, "usual" means nothing
/// (the first, big, sync would alarm).
pub const MIN_HISTORY: usize = 5;

/// Changes below this never count as a spike, whatever the usual: a few leavers on one day is
/// ordinary even where most runs change nothing.
pub const MIN_SPIKE_COUNT: u64 = 10;

fn default_stale_after_hours() -> f64 {
    24.0
}

fn default_volume_factor() -> f64 {
    10.0
}

/// One webhook, from an `[[alert]]` table of `roster.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// The webhook, `https://…` (plain `http://` only to loopback or with `allow_insecure_http`).
    pub url: String,
    /// `json` (default) or `slack`.
    #[serde(default)]
    pub format: AlertFormat,
    /// The events this webhook wants; empty means all of them.
    #[serde(default)]
    pub events: Vec<AlertKind>,
    /// A source is stale when it has not synced successfully for this many hours (default 24).
    #[serde(default = "default_stale_after_hours")]
    pub stale_after_hours: f64,
    /// A volume spike is a change count at least this many times the usual (default 10).
    #[serde(default = "default_volume_factor")]
    pub volume_factor: f64,
    /// A token sent as `Authorization: Bearer …`: `{ env = "VAR" }`, `{ file = "path" }` or `{ value = "…" }`.
    #[serde(default)]
    pub bearer_token: Option<TokenRef>,
    /// Allows plain `http://` to a host other than loopback (the alert and any token travel in clear).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// Where a bearer token comes from: exactly one of the three.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRef {
    /// The token itself (discouraged outside tests).
    pub value: Option<String>,
    /// An environment variable holding it.
    pub env: Option<String>,
    /// A file holding it (trailing newline trimmed); relative to the working directory.
    pub file: Option<std::path::PathBuf>,
}

impl TokenRef {
    fn resolve(&self) -> Result<String, String> {
        let token = match (&self.value, &self.env, &self.file) {
            (Some(v), None, None) => v.clone(),
            (None, Some(var), None) => {
                std::env::var(var).map_err(|_| format!("bearer_token: environment variable {var} is not set"))?
            }
            (None, None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| s.trim_end().to_string())
                .map_err(|e| format!("bearer_token: cannot read {}: {e}", path.display()))?,
            _ => return Err("bearer_token: give exactly one of `value`, `env` or `file`".into()),
        };
        if token.is_empty() {
            return Err("bearer_token is empty; set it or remove `bearer_token`".into());
        }
        Ok(token)
    }
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertFormat {
    /// `{"event", "summary", "details", "roster", "at"}`.
    #[default]
    Json,
    /// A Slack incoming-webhook message: `{"text", "blocks"}`.
    Slack,
}

/// The kinds of event, as named in `events = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A run failed.
    RunFailed,
    /// A plan was held for approval.
    PlanHeld,
    /// A source has not synced successfully for too long.
    Stale,
    /// A run changed far more than that source or target usually does.
    VolumeSpike,
    /// A run found changes made by hand in the target to what Roster manages.
    Drift,
}

impl AlertKind {
    /// The name used in configuration and in JSON bodies, e.g. `run-failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RunFailed => "run-failed",
            AlertKind::PlanHeld => "plan-held",
            AlertKind::Stale => "stale",
            AlertKind::VolumeSpike => "volume-spike",
            AlertKind::Drift => "drift",
        }
    }
}

/// How a stale source reaches Roster, which decides what its alert advises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaleFeed {
    /// Roster reads it through a connector: `roster check` tells whether it can.
    Pulled,
    /// It pushes to Roster (SCIM): stale means it stopped pushing.
    Pushed,
}

/// Something worth telling people about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "details", rename_all = "kebab-case")]
pub enum AlertEvent {
    /// A run failed.
    RunFailed {
        /// The run.
        run_id: i64,
        /// Its target.
        target: String,
        /// Why it failed.
        error: String,
    },
    /// A plan deprovisions more than the threshold and waits for approval.
    PlanHeld {
        /// The run that made it.
        run_id: i64,
        /// The target the plan is for (one of several, perhaps).
        target: String,
        /// The plan.
        plan_id: String,
        /// Its hash, for `roster plan approve`.
        plan_hash: String,
        /// The guard's reason.
        why: String,
    },
    /// A source has not synced successfully (a push source: has not pushed) for `hours`.
    Stale {
        /// Source id.
        source: String,
        /// Read by Roster or pushing to it.
        feed: StaleFeed,
        /// Its last successful sync (`None`: never).
        last_success_unix: Option<f64>,
        /// Hours since then (never synced: since it was configured).
        hours: f64,
    },
    /// A run's change count of one kind far above the usual.
    VolumeSpike {
        /// Source id or target name.
        source_or_target: String,
        /// Operation kind, e.g. `deactivate-user`.
        kind: String,
        /// This run's count.
        count: u64,
        /// The median count of earlier runs.
        median: f64,
        /// `count` divided by the usual (the median, at least 1).
        factor: f64,
    },
    /// Changes made by hand in a target to what Roster manages (drift).
    Drift {
        /// The run that found them.
        run_id: i64,
        /// The target.
        target: String,
        /// What the target's policy did with them (`revert`, `adopt`, `report`).
        policy: String,
        /// Each change in words.
        changes: Vec<String>,
    },
}

impl AlertEvent {
    /// Which kind of event this is.
    pub fn kind(&self) -> AlertKind {
        match self {
            AlertEvent::RunFailed { .. } => AlertKind::RunFailed,
            AlertEvent::PlanHeld { .. } => AlertKind::PlanHeld,
            AlertEvent::Stale { .. } => AlertKind::Stale,
            AlertEvent::VolumeSpike { .. } => AlertKind::VolumeSpike,
            AlertEvent::Drift { .. } => AlertKind::Drift,
        }
    }

    /// One line for people, saying what happened and, where there is one, what to do.
    pub fn summary(&self) -> String {
        match self {
            AlertEvent::RunFailed { run_id, target, error } => {
                let first = error
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("no reason given");
                format!(
                    "Run {run_id} against '{target}' failed: {} (details: `roster runs show {run_id}`)",
                    truncate(first, 300)
                )
            }
            AlertEvent::PlanHeld {
                run_id,
                target,
                plan_id,
                plan_hash,
                why,
            } => format!(
                "Plan {plan_id} (run {run_id}) is held for approval on '{target}': {}. Review it with `roster plan show {plan_id}`, \
                 then `roster plan approve {plan_id} --hash {}` or `roster plan reject {plan_id}`",
                truncate(why.trim_end_matches('.'), 300),
                short_hash(plan_hash)
            ),
            AlertEvent::Stale {
                source,
                feed: StaleFeed::Pushed,
                last_success_unix,
                hours,
            } => format!(
                "Source '{source}' has not pushed to Roster for {hours:.1} h ({}); its identity provider's \
                 provisioning log tells why (an expired SCIM token, a paused provisioning job, an address \
                 outside the source's allow_ips)",
                match last_success_unix {
                    Some(t) => format!("last push or successful run {}", rfc3339(*t)),
                    None => "none since Roster started".into(),
                }
            ),
            AlertEvent::Stale {
                source,
                feed: StaleFeed::Pulled,
                last_success_unix: Some(t),
                hours,
            } => format!(
                "Source '{source}' has not synced successfully for {hours:.1} h (last success {}); \
                 `roster check {source}` tells whether its connector can work",
                rfc3339(*t)
            ),
            AlertEvent::Stale {
                source,
                feed: StaleFeed::Pulled,
                last_success_unix: None,
                hours,
            } => {
                format!(
                    "Source '{source}' has never synced successfully ({hours:.1} h since it was configured); \
                     `roster check {source}` tells whether its connector can work"
                )
            }
            AlertEvent::Drift {
                run_id,
                target,
                policy,
                changes,
            } => {
                let first = changes.first().map(String::as_str).unwrap_or("");
                let more = match changes.len() {
                    0 | 1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                format!(
                    "Run {run_id} found {} change(s) made by hand in '{target}' to what Roster manages (drift = \"{policy}\"): {}{more}; details: `roster runs show {run_id}`",
                    changes.len(),
                    truncate(first, 300)
                )
            }
            AlertEvent::VolumeSpike {
                source_or_target,
                kind,
                count,
                median,
                factor,
            } if *median >= 1.0 => format!(
                "'{source_or_target}': {count} {kind} in one run, {}× the usual {} (median of earlier runs)",
                number(*factor),
                number(*median)
            ),
            AlertEvent::VolumeSpike {
                source_or_target,
                kind,
                count,
                median,
                ..
            } => format!(
                "'{source_or_target}': {count} {kind} in one run, where earlier runs usually had {}",
                if *median > 0.0 {
                    number(*median)
                } else {
                    "none".to_string()
                }
            ),
        }
    }
}

/// What went wrong setting alerts up.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// An `[[alert]]` entry is wrong; the message says how to fix it.
    #[error("[[alert]] #{number} ({webhook}): {message}")]
    Config {
        /// 1-based position in the file.
        number: usize,
        /// The webhook, redacted to `scheme://host/…`.
        webhook: String,
        /// What to fix.
        message: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client for alerts: {0}")]
    Client(String),
}

/// How one webhook's delivery went.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Position of its `[[alert]]` entry (0-based).
    pub index: usize,
    /// The webhook, redacted to `scheme://host/…`: safe to log.
    pub endpoint: String,
    /// Requests made.
    pub attempts: u32,
    /// The receiver accepted the alert (answered 2xx).
    pub delivered: bool,
    /// The receiver's last HTTP status; `None` when the last attempt got no answer.
    pub status: Option<u16>,
    /// Why the alert was not delivered (no URL in it).
    pub error: Option<String>,
}

/// Retries and timeouts of a delivery.
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    /// Requests per delivery, the first included.
    pub attempts: u32,
    /// Per request, connection to end of response.
    pub timeout: Duration,
    /// Wait before the first retry; doubles after each.
    pub backoff: Duration,
    /// Longest wait between two requests, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        // Worst case about 4 × 10 s + 1 + 2 + 4 s: long enough to ride out a receiver's restart,
        // short enough that a dead webhook does not hold an alert back for minutes.
        SendPolicy {
            attempts: 4,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Decides a volume spike: at least [`MIN_HISTORY`] earlier runs, `count` at least
/// [`MIN_SPIKE_COUNT`], and `count` at least `factor` × the median of `history` (a median below
/// 1 counts as 1, so a kind that is usually zero, like deactivations, can still spike).
///
/// Pass the counts of the same kind for the same source or target from recent earlier runs
/// (e.g. the last 20), not including this one.
pub fn volume_spike(history: &[u64], count: u64, factor: f64) -> bool {
    if history.len() < MIN_HISTORY || count < MIN_SPIKE_COUNT || !(factor.is_finite() && factor > 0.0) {
        return false;
    }
    count as f64 >= factor * median(history).max(1.0)
}

fn median(values: &[u64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0,
    }
}

/// Decides staleness: no successful sync for `stale_after_hours`, counted from the last success,
/// or, for a source that never succeeded, from when it was configured (so a new source gets one
/// window to succeed before it alarms).
///
/// Pass as `configured_since_unix` when the source first appeared in the configuration
/// (persisted), not the process start: a service that restarts often would otherwise never alarm.
pub fn is_stale(
    last_success_unix: Option<f64>,
    now_unix: f64,
    stale_after_hours: f64,
    configured_since_unix: f64,
) -> bool {
    if !(stale_after_hours.is_finite() && stale_after_hours > 0.0) {
        return false;
    }
    let since = last_success_unix.unwrap_or(configured_since_unix);
    // NaN anywhere makes the comparison false: no alarm from garbage input.
    now_unix - since >= stale_after_hours * 3600.0
}

struct Webhook {
    config: AlertConfig,
    url: Url,
    redacted: String,
    token: Option<String>,
}

/// Sends alerts to the configured webhooks; share one per process (`Send + Sync`).
pub struct Alerter {
    hooks: Vec<Webhook>,
    client: reqwest::Client,
    policy: SendPolicy,
    /// Source → when its last stale alert went out, for [`Alerter::should_send_stale`].
    stale_sent: Mutex<HashMap<String, f64>>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand: the derived form would print webhook URLs and tokens.
        f.debug_struct("Alerter")
            .field(
                "webhooks",
                &self.hooks.iter().map(|h| h.redacted.as_str()).collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Alerter {
    /// Checks every webhook (URL, thresholds, token) and sets up the HTTP client.
    pub fn new(configs: Vec<AlertConfig>) -> Result<Alerter, AlertError> {
        let mut hooks = Vec::with_capacity(configs.len());
        for (i, config) in configs.into_iter().enumerate() {
            let redacted = redact(&config.url);
            let err = |message: String| AlertError::Config {
                number: i + 1,
                webhook: redacted.clone(),
                message,
            };
            let url = check_url(&config).map_err(err)?;
            if !(config.stale_after_hours.is_finite() && config.stale_after_hours > 0.0) {
                return Err(err(format!(
                    "stale_after_hours = {} must be a positive number of hours (default 24)",
                    config.stale_after_hours
                )));
            }
            if !(config.volume_factor.is_finite() && config.volume_factor > 1.0) {
                return Err(err(format!(
                    "volume_factor = {} must be a number above 1 (default 10: ten times the usual)",
                    config.volume_factor
                )));
            }
            let token = config
                .bearer_token
                .as_ref()
                .map(TokenRef::resolve)
                .transpose()
                .map_err(err)?;
            if let Some(t) = &token
                && header::HeaderValue::from_str(&format!("Bearer {t}")).is_err()
            {
                return Err(err(
                    "bearer_token holds characters not allowed in an HTTP header (a newline?)".into(),
                ));
            }
            hooks.push(Webhook {
                config,
                url,
                redacted,
                token,
            });
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            // A redirect would resend the alert (and token) somewhere the configuration did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AlertError::Client(error_chain(&e.without_url())))?;
        Ok(Alerter {
            hooks,
            client,
            policy: SendPolicy::default(),
            stale_sent: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the retry and timeout policy (tests, or a slower receiver).
    pub fn with_policy(mut self, policy: SendPolicy) -> Alerter {
        self.policy = SendPolicy {
            attempts: policy.attempts.max(1),
            ..policy
        };
        self
    }

    /// Whether any webhook is configured at all.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Whether any webhook wants `event` (its kind, and its own thresholds).
    pub fn wanted_by_any(&self, event: &AlertEvent) -> bool {
        self.hooks.iter().any(|h| wants(&h.config, event))
    }

    /// Sends `event` to every webhook that wants it, concurrently, retrying transient failures
    /// (connection errors, timeouts, 408, 429, 5xx) with backoff. Never panics; returns one
    /// [`Delivery`] per webhook tried. Takes up to about a minute when a webhook is down, so
    /// spawn it rather than await it on a run's path.
    pub async fn send(&self, event: &AlertEvent) -> Vec<Delivery> {
        let at = now_unix();
        let wanted: Vec<(usize, &Webhook)> = self
            .hooks
            .iter()
            .enumerate()
            .filter(|(_, h)| wants(&h.config, event))
            .collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        let json = json_body(event, at);
        let slack = slack_body(event, at);
        let deliveries = wanted.into_iter().map(|(i, hook)| {
            let body = match hook.config.format {
                AlertFormat::Json => &json,
                AlertFormat::Slack => &slack,
            };
            self.deliver(i, hook, event.kind(), body)
        });
        futures::future::join_all(deliveries).await
    }

    async fn deliver(&self, index: usize, hook: &Webhook, kind: AlertKind, body: &Value) -> Delivery {
        let policy = self.policy;
        let mut retry = Retry::new(RetryPolicy {
            retries: policy.attempts.saturating_sub(1),
            backoff: policy.backoff,
            max_wait: policy.max_backoff,
            long_waits: LongWait::Shorten,
        });
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut request = self.client.post(hook.url.clone()).timeout(policy.timeout).json(body);
            if let Some(token) = &hook.token {
                request = request.bearer_auth(token);
            }
            let (why, transient, retry_after, status) = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let status = response.status().as_u16();
                    tracing::debug!(webhook = %hook.redacted, event = kind.as_str(), status, attempts, "alert delivered");
                    return Delivery {
                        index,
                        endpoint: hook.redacted.clone(),
                        attempts,
                        delivered: true,
                        status: Some(status),
                        error: None,
                    };
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = roster_http::retry_after(response.headers());
                    let text = response.text().await.unwrap_or_default();
                    let text = truncate(text.trim(), 200);
                    let mut why = format!("the webhook answered {status}");
                    if !text.is_empty() {
                        why.push_str(&format!(" ({text})"));
                    }
                    if let Some(hint) = status_hint(status, hook.config.format) {
                        why.push_str("; ");
                        why.push_str(hint);
                    }
                    let transient = status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error();
                    (why, transient, retry_after, Some(status.as_u16()))
                }
                // Dropping the URL: reqwest's message would carry it whole, token included.
                Err(e) => {
                    let transient = !e.is_builder();
                    let hint = if e.is_timeout() {
                        format!(
                            "; no answer within {} ms, is the receiver up?",
                            policy.timeout.as_millis()
                        )
                    } else if e.is_connect() {
                        "; check the URL's host and port, and that the receiver runs and is reachable".to_string()
                    } else {
                        String::new()
                    };
                    (
                        format!("{}{hint}", error_chain(&e.without_url())),
                        transient,
                        None,
                        None,
                    )
                }
            };
            let wait = if transient { retry.next_wait(retry_after) } else { None };
            let Some(wait) = wait else {
                tracing::warn!(webhook = %hook.redacted, event = kind.as_str(), attempts, error = %why, "alert not delivered");
                return Delivery {
                    index,
                    endpoint: hook.redacted.clone(),
                    attempts,
                    delivered: false,
                    status,
                    error: Some(why),
                };
            };
            tracing::info!(webhook = %hook.redacted, event = kind.as_str(), attempts, error = %why, wait_ms = wait.as_millis() as u64, "alert delivery failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Says whether to send a stale alert for `source` now, and if so remembers it: at most once
    /// per source per window. The window is the smallest `stale_after_hours` among webhooks that
    /// want stale alerts; false when none does.
    pub fn should_send_stale(&self, source: &str, now_unix: f64) -> bool {
        let Some(hours) = self.smallest(AlertKind::Stale, |c| c.stale_after_hours) else {
            return false;
        };
        let mut sent = self.stale_sent.lock().unwrap_or_else(PoisonError::into_inner);
        match sent.get(source) {
            Some(&last) if now_unix - last < hours * 3600.0 => false,
            _ => {
                sent.insert(source.to_string(), now_unix);
                true
            }
        }
    }

    /// The smallest `volume_factor` among webhooks that want volume-spike alerts; `None` when none does.
    pub fn volume_factor(&self) -> Option<f64> {
        self.smallest(AlertKind::VolumeSpike, |c| c.volume_factor)
    }

    /// Hours since the last success (or since configured) when that is stale for at least one
    /// webhook that wants stale alerts (see [`is_stale`]); `None` otherwise.
    pub fn stale_hours_for(
        &self,
        last_success_unix: Option<f64>,
        now_unix: f64,
        configured_since_unix: f64,
    ) -> Option<f64> {
        let hours = self.smallest(AlertKind::Stale, |c| c.stale_after_hours)?;
        is_stale(last_success_unix, now_unix, hours, configured_since_unix)
            .then(|| (now_unix - last_success_unix.unwrap_or(configured_since_unix)) / 3600.0)
    }

    /// The stale alert to send for `source` now, if any: combines [`is_stale`] (at the smallest
    /// configured window) with [`Alerter::should_send_stale`], and forgets the last alert once the
    /// source syncs again, so its next staleness is reported at once.
    pub fn check_stale(
        &self,
        source: &str,
        feed: StaleFeed,
        last_success_unix: Option<f64>,
        configured_since_unix: f64,
        now_unix: f64,
    ) -> Option<AlertEvent> {
        let Some(hours) = self.stale_hours_for(last_success_unix, now_unix, configured_since_unix) else {
            // Synced again (or nobody wants stale alerts): its next staleness is news at once.
            self.stale_sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(source);
            return None;
        };
        if !self.should_send_stale(source, now_unix) {
            return None;
        }
        Some(AlertEvent::Stale {
            source: source.to_string(),
            feed,
            last_success_unix,
            hours,
        })
    }

    /// The volume-spike alert for this run's `count` of `kind`, if any webhook's factor calls it
    /// one (see [`volume_spike`]); `history` holds earlier runs' counts, this one excluded.
    pub fn check_volume(&self, source_or_target: &str, kind: &str, history: &[u64], count: u64) -> Option<AlertEvent> {
        let factor = self.volume_factor()?;
        if !volume_spike(history, count, factor) {
            return None;
        }
        let median = median(history);
        Some(AlertEvent::VolumeSpike {
            source_or_target: source_or_target.to_string(),
            kind: kind.to_string(),
            count,
            median,
            factor: count as f64 / median.max(1.0),
        })
    }

    fn smallest(&self, kind: AlertKind, value: impl Fn(&AlertConfig) -> f64) -> Option<f64> {
        self.hooks
            .iter()
            .filter(|h| wants_kind(&h.config, kind))
            .map(|h| value(&h.config))
            .min_by(f64::total_cmp)
    }
}

fn wants_kind(config: &AlertConfig, kind: AlertKind) -> bool {
    config.events.is_empty() || config.events.contains(&kind)
}

/// A webhook wants an event of a kind it asked for that also passes its own thresholds (each
/// webhook may set its own `stale_after_hours` and `volume_factor`).
fn wants(config: &AlertConfig, event: &AlertEvent) -> bool {
    wants_kind(config, event.kind())
        && match event {
            AlertEvent::Stale { hours, .. } => *hours >= config.stale_after_hours,
            AlertEvent::VolumeSpike { factor, .. } => *factor >= config.volume_factor,
            _ => true,
        }
}

fn check_url(config: &AlertConfig) -> Result<Url, String> {
    let url = Url::parse(&config.url).map_err(|e| format!("url is not a valid URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url carries credentials; put the token in `bearer_token` instead".into());
    }
    let Some(host) = url.host_str() else {
        return Err("url has no host; give the webhook's full https:// URL".into());
    };
    match url.scheme() {
        "https" => {}
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare.eq_ignore_ascii_case("localhost")
                || bare.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
            if !loopback && !config.allow_insecure_http {
                return Err(
                    "url uses plain HTTP; use https, or set `allow_insecure_http = true` if the receiver has no TLS"
                        .into(),
                );
            }
        }
        other => return Err(format!("url scheme `{other}` is not supported; use https://")),
    }
    Ok(url)
}

/// `scheme://host[:port]/…`: enough to tell webhooks apart in logs, never the path or query
/// where tokens live.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            // Userinfo may hold a password.
            let host = authority.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".to_string(),
    }
}

fn status_hint(status: StatusCode, format: AlertFormat) -> Option<&'static str> {
    Some(match status.as_u16() {
        300..=399 => "the webhook redirects; configure the URL it redirects to",
        400 | 415 | 422 => match format {
            AlertFormat::Json => "the receiver rejected the body; if it is a Slack webhook set `format = \"slack\"`",
            AlertFormat::Slack => {
                "the receiver rejected the Slack message; check it is a Slack-compatible incoming webhook"
            }
        },
        401 | 403 => "the receiver refused the credentials; check the URL's token or `bearer_token`",
        404 | 410 => "the webhook does not exist (revoked?); check the URL",
        _ => return None,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and reqwest often repeat their cause in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// At most one decimal, none when it is `.0`: "40", "2.5".
fn number(x: f64) -> String {
    let text = format!("{x:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

fn short_hash(hash: &str) -> &str {
    // `roster plan approve` accepts any prefix of 8 or more characters; 12 is unambiguous in practice.
    hash.get(..12).unwrap_or(hash)
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// RFC 3339 in UTC to the second, e.g. `2026-05-01T12:00:00Z`.
fn rfc3339(unix: f64) -> String {
    if !unix.is_finite() {
        return "unknown time".to_string();
    }
    let secs = unix.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil: proleptic Gregorian, exact for any i64 day count we meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn json_body(event: &AlertEvent, at: f64) -> Value {
    let details = match serde_json::to_value(event) {
        Ok(Value::Object(mut tagged)) => tagged.remove("details").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    json!({
        "event": event.kind().as_str(),
        "summary": event.summary(),
        "details": details,
        "roster": VERSION,
        "at": rfc3339(at),
    })
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup; anything else is shown as is.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn field(label: &str, value: &str) -> Value {
    // Slack refuses a field over 2000 characters.
    json!({ "type": "mrkdwn", "text": format!("*{label}*\n{}", truncate(&mrkdwn(value), 1900)) })
}

fn section(text: &str) -> Value {
    // Slack refuses a section text over 3000 characters.
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(text, 2900) } })
}

fn slack_body(event: &AlertEvent, at: f64) -> Value {
    let summary = mrkdwn(&event.summary());
    let (title, fields, extra): (&str, Vec<Value>, Option<Value>) = match event {
        AlertEvent::RunFailed { run_id, target, error } => (
            ":x: Roster run failed",
            vec![field("Run", &run_id.to_string()), field("Target", target)],
            // The summary shows the first line; the whole error helps whoever investigates.
            (error.lines().count() > 1).then(|| section(&format!("*Error*\n{}", mrkdwn(error)))),
        ),
        AlertEvent::PlanHeld {
            run_id,
            target,
            plan_id,
            plan_hash,
            why,
        } => (
            ":raised_hand: Roster plan held for approval",
            vec![
                field("Plan", plan_id),
                field("Run", &run_id.to_string()),
                field("Target", target),
                field("Hash", short_hash(plan_hash)),
                field("Why", why),
            ],
            None,
        ),
        AlertEvent::Stale {
            source,
            last_success_unix,
            hours,
            ..
        } => (
            ":hourglass: Roster source is stale",
            vec![
                field("Source", source),
                field(
                    "Last success",
                    &last_success_unix.map(rfc3339).unwrap_or_else(|| "never".into()),
                ),
                field("Hours", &format!("{hours:.1}")),
            ],
            None,
        ),
        AlertEvent::Drift {
            target,
            policy,
            changes,
            ..
        } => (
            ":warning: Roster found changes made by hand",
            vec![
                field("Target", target),
                field("Policy", policy),
                field("Changes", &changes.len().to_string()),
            ],
            None,
        ),
        AlertEvent::VolumeSpike {
            source_or_target,
            kind,
            count,
            median,
            factor,
        } => (
            ":chart_with_upwards_trend: Roster change volume spike",
            vec![
                field("Where", source_or_target),
                field("Kind", kind),
                field("This run", &count.to_string()),
                field("Usual (median)", &median.to_string()),
                field("Factor", &format!("{}×", number(*factor))),
            ],
            None,
        ),
    };
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": title, "emoji": true } }),
        section(&summary),
        json!({ "type": "section", "fields": fields }),
    ];
    blocks.extend(extra);
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": format!("Roster {VERSION} · {} · {}", event.kind().as_str(), rfc3339(at)) }],
    }));
    // `text` is the notification and fallback; Slack shows the blocks in the channel.
    json!({ "text": truncate(&summary, 2900), "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Uri};
    use axum::response::{IntoResponse, Response};
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Instant;

    /// Secret path segment, checked to be absent from anything logged or returned.
    const SECRET: &str = "T000/B000/XXXXsecretXXXX";

    #[derive(Debug, Clone)]
    struct Hit {
        path: String,
        headers: HeaderMap,
        body: Value,
    }

    #[derive(Default)]
    struct Receiver {
        hits: Mutex<Vec<Hit>>,
        /// Answers to give, in order; then 200 "ok".
        script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    }

    impl Receiver {
        fn hits(&self) -> Vec<Hit> {
            self.hits.lock().unwrap().clone()
        }
    }

    async fn record(State(rx): State<Arc<Receiver>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        rx.hits.lock().unwrap().push(Hit {
            path: uri.path().to_string(),
            headers,
            body,
        });
        let answer = rx.script.lock().unwrap().pop_front();
        match answer {
            Some((status, retry_after)) => {
                let status = StatusCode::from_u16(status).unwrap();
                let mut response = (status, "nope").into_response();
                if let Some(v) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, v.parse().unwrap());
                }
                response
            }
            None => (StatusCode::OK, "ok").into_response(),
        }
    }

    async fn receiver(script: &[(u16, Option<&'static str>)]) -> (SocketAddr, Arc<Receiver>) {
        let rx = Arc::new(Receiver::default());
        rx.script.lock().unwrap().extend(script.iter().copied());
        let app = Router::new()
            .route("/{*path}", axum::routing::post(record))
            .with_state(rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, rx)
    }

    fn config(url: String) -> AlertConfig {
        AlertConfig {
            url,
            format: AlertFormat::Json,
            events: Vec::new(),
            stale_after_hours: 24.0,
            volume_factor: 10.0,
            bearer_token: None,
            allow_insecure_http: false,
        }
    }

    fn fast() -> SendPolicy {
        SendPolicy {
            attempts: 4,
            timeout: Duration::from_millis(500),
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        }
    }

    fn run_failed() -> AlertEvent {
        AlertEvent::RunFailed {
            run_id: 42,
            target: "bb-prod".into(),
            error: "Bitbucket answered 401 <Unauthorized> & gave up\nat apply".into(),
        }
    }

    fn plan_held() -> AlertEvent {
        AlertEvent::PlanHeld {
            run_id: 7,
            target: "bb-prod".into(),
            plan_id: "p-7".into(),
            plan_hash: "0123456789abcdef0123".into(),
            why: "deprovisions 120 users, over the threshold of 50".into(),
        }
    }

    fn is_rfc3339_utc(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    }

    #[test]
    fn config_from_toml() {
        #[derive(Deserialize)]
        struct File {
            alert: Vec<AlertConfig>,
        }
        let file: File = toml::from_str(
            r#"
            [[alert]]
            url = "https://hooks.example.com/roster"

            [[alert]]
            url = "https://hooks.slack.com/services/T/B/X"
            format = "slack"
            events = ["run-failed", "plan-held", "stale", "volume-spike"]
            stale_after_hours = 6
            volume_factor = 4.5
            bearer_token = { env = "SLACK_TOKEN" }
            "#,
        )
        .unwrap();
        let (a, b) = (&file.alert[0], &file.alert[1]);
        assert_eq!(a.format, AlertFormat::Json);
        assert!(a.events.is_empty());
        assert_eq!((a.stale_after_hours, a.volume_factor), (24.0, 10.0));
        assert!(a.bearer_token.is_none() && !a.allow_insecure_http);
        assert_eq!(b.format, AlertFormat::Slack);
        assert_eq!(
            b.events,
            [
                AlertKind::RunFailed,
                AlertKind::PlanHeld,
                AlertKind::Stale,
                AlertKind::VolumeSpike
            ]
        );
        assert_eq!((b.stale_after_hours, b.volume_factor), (6.0, 4.5));
        assert_eq!(b.bearer_token.as_ref().unwrap().env.as_deref(), Some("SLACK_TOKEN"));

        let typo = toml::from_str::<File>("[[alert]]\nurl = \"https://x\"\nformt = \"slack\"\n");
        assert!(typo.err().unwrap().to_string().contains("unknown field `formt`"));
        let bad_kind = toml::from_str::<File>("[[alert]]\nurl = \"https://x\"\nevents = [\"run_failed\"]\n");
        assert!(bad_kind.err().unwrap().to_string().contains("run-failed"));
    }

    #[test]
    fn new_validates_and_explains() {
        let err = |c: AlertConfig| {
            Alerter::new(vec![config("https://ok.example/".into()), c])
                .unwrap_err()
                .to_string()
        };
        let e = err(config(format!("http://hooks.example.com/{SECRET}")));
        assert!(e.starts_with("[[alert]] #2 (http://hooks.example.com/…): "), "{e}");
        assert!(e.contains("allow_insecure_http = true"), "{e}");
        assert!(!e.contains(SECRET), "{e}");
        assert!(err(config("ftp://hooks.example.com/x".into())).contains("scheme `ftp`"));
        assert!(err(config("hooks.example.com/x".into())).contains("not a valid URL"));
        assert!(err(config("https://user:pw@hooks.example.com/x".into())).contains("bearer_token"));
        assert!(!err(config("https://user:pw@hooks.example.com/x".into())).contains("pw"));
        assert!(
            err(AlertConfig {
                stale_after_hours: 0.0,
                ..config("https://a.example/".into())
            })
            .contains("stale_after_hours = 0")
        );
        assert!(
            err(AlertConfig {
                volume_factor: 0.5,
                ..config("https://a.example/".into())
            })
            .contains("volume_factor = 0.5")
        );
        let unset = TokenRef {
            env: Some("ROSTER_TEST_SURELY_UNSET_TOKEN".into()),
            ..TokenRef::default()
        };
        let e = err(AlertConfig {
            bearer_token: Some(unset),
            ..config("https://a.example/".into())
        });
        assert!(
            e.contains("environment variable ROSTER_TEST_SURELY_UNSET_TOKEN is not set"),
            "{e}"
        );
        let both = TokenRef {
            env: Some("X".into()),
            value: Some("y".into()),
            file: None,
        };
        assert!(
            err(AlertConfig {
                bearer_token: Some(both),
                ..config("https://a.example/".into())
            })
            .contains("exactly one")
        );

        // Loopback over plain HTTP is fine (a local relay), and so is anything with the opt-in.
        for ok in ["http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]:80/x"] {
            Alerter::new(vec![config(ok.into())]).unwrap();
        }
        Alerter::new(vec![AlertConfig {
            allow_insecure_http: true,
            ..config("http://relay.internal/x".into())
        }])
        .unwrap();
        let debug = format!(
            "{:?}",
            Alerter::new(vec![config(format!("https://hooks.slack.com/services/{SECRET}"))]).unwrap()
        );
        assert!(
            debug.contains("https://hooks.slack.com/…") && !debug.contains(SECRET),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn delivers_json_and_slack_bodies() {
        let (addr, rx) = receiver(&[]).await;
        let token = TokenRef {
            value: Some("t0ken".into()),
            ..TokenRef::default()
        };
        let alerter = Alerter::new(vec![
            AlertConfig {
                bearer_token: Some(token),
                ..config(format!("http://{addr}/json/{SECRET}"))
            },
            AlertConfig {
                format: AlertFormat::Slack,
                ..config(format!("http://{addr}/slack/{SECRET}"))
            },
        ])
        .unwrap()
        .with_policy(fast());
        let before = now_unix();
        let deliveries = alerter.send(&run_failed()).await;
        assert_eq!(deliveries.len(), 2);
        for (i, d) in deliveries.iter().enumerate() {
            assert_eq!(d.index, i);
            assert!(d.delivered);
            assert_eq!((d.status, d.error.as_deref()), (Some(200), None));
            assert_eq!(d.attempts, 1);
            assert_eq!(d.endpoint, format!("http://{addr}/…"));
        }

        let hits = rx.hits();
        assert_eq!(hits.len(), 2);
        let json = hits.iter().find(|h| h.path.starts_with("/json/")).unwrap();
        assert_eq!(json.path, format!("/json/{SECRET}"));
        assert_eq!(json.headers["authorization"], "Bearer t0ken");
        assert_eq!(json.headers["content-type"], "application/json");
        assert!(json.headers["user-agent"].to_str().unwrap().starts_with("roster/"));
        let at = json.body["at"].as_str().unwrap().to_string();
        assert!(is_rfc3339_utc(&at), "{at}");
        assert!(at >= rfc3339(before) && at <= rfc3339(now_unix()), "{at}");
        assert_eq!(
            json.body,
            json!({
                "event": "run-failed",
                "summary": "Run 42 against 'bb-prod' failed: Bitbucket answered 401 <Unauthorized> & gave up \
                            (details: `roster runs show 42`)",
                "details": {
                    "run_id": 42,
                    "target": "bb-prod",
                    "error": "Bitbucket answered 401 <Unauthorized> & gave up\nat apply",
                },
                "roster": VERSION,
                "at": at,
            })
        );

        let slack = hits.iter().find(|h| h.path.starts_with("/slack/")).unwrap();
        assert!(slack.headers.get("authorization").is_none());
        let escaped = "Run 42 against 'bb-prod' failed: Bitbucket answered 401 &lt;Unauthorized&gt; &amp; gave up \
                       (details: `roster runs show 42`)";
        assert_eq!(
            slack.body,
            json!({
                "text": escaped,
                "blocks": [
                    { "type": "header", "text": { "type": "plain_text", "text": ":x: Roster run failed", "emoji": true } },
                    { "type": "section", "text": { "type": "mrkdwn", "text": escaped } },
                    { "type": "section", "fields": [
                        { "type": "mrkdwn", "text": "*Run*\n42" },
                        { "type": "mrkdwn", "text": "*Target*\nbb-prod" },
                    ] },
                    { "type": "section", "text": { "type": "mrkdwn",
                        "text": "*Error*\nBitbucket answered 401 &lt;Unauthorized&gt; &amp; gave up\nat apply" } },
                    { "type": "context", "elements": [
                        { "type": "mrkdwn", "text": format!("Roster {VERSION} · run-failed · {at}") },
                    ] },
                ],
            })
        );
    }

    #[tokio::test]
    async fn plan_held_slack_names_the_commands() {
        let (addr, rx) = receiver(&[]).await;
        let alerter = Alerter::new(vec![AlertConfig {
            format: AlertFormat::Slack,
            ..config(format!("http://{addr}/s"))
        }])
        .unwrap()
        .with_policy(fast());
        assert!(alerter.send(&plan_held()).await[0].delivered);
        let body = &rx.hits()[0].body;
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Plan p-7 (run 7) is held for approval on 'bb-prod': deprovisions 120 users, over the threshold of 50. \
             Review it with `roster plan show p-7`, then `roster plan approve p-7 --hash 0123456789ab` or `roster plan reject p-7`"
        );
        assert_eq!(
            body["blocks"][0]["text"]["text"],
            ":raised_hand: Roster plan held for approval"
        );
        let fields: Vec<&str> = body["blocks"][2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Plan*\np-7",
                "*Run*\n7",
                "*Target*\nbb-prod",
                "*Hash*\n0123456789ab",
                "*Why*\ndeprovisions 120 users, over the threshold of 50"
            ]
        );
    }

    #[tokio::test]
    async fn retries_transient_failures() {
        let (addr, rx) = receiver(&[(500, None), (503, None), (429, Some("0")), (200, None)]).await;
        let alerter = Alerter::new(vec![config(format!("http://{addr}/h"))])
            .unwrap()
            .with_policy(fast());
        let d = alerter.send(&plan_held()).await;
        assert_eq!(d.len(), 1);
        assert!(d[0].delivered);
        assert_eq!(d[0].status, Some(200));
        assert_eq!(d[0].attempts, 4);
        let hits = rx.hits();
        assert_eq!(hits.len(), 4);
        assert!(
            hits.iter().all(|h| h.body == hits[0].body),
            "every attempt sends the same body"
        );

        // Out of attempts: the last status is reported.
        let (addr, rx) = receiver(&[(500, None), (500, None)]).await;
        let alerter = Alerter::new(vec![config(format!("http://{addr}/h"))])
            .unwrap()
            .with_policy(SendPolicy { attempts: 2, ..fast() });
        let d = alerter.send(&plan_held()).await;
        assert_eq!(d[0].attempts, 2);
        assert_eq!(d[0].status, Some(500));
        assert_eq!(
            d[0].error.as_deref(),
            Some("the webhook answered 500 Internal Server Error (nope)")
        );
        assert_eq!(rx.hits().len(), 2);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let (addr, rx) = receiver(&[(404, None)]).await;
        let alerter = Alerter::new(vec![config(format!("http://{addr}/{SECRET}"))])
            .unwrap()
            .with_policy(fast());
        let d = alerter.send(&run_failed()).await;
        assert_eq!(d[0].attempts, 1);
        assert!(!d[0].delivered);
        assert_eq!(d[0].status, Some(404));
        let why = d[0].error.clone().unwrap();
        assert_eq!(
            why,
            "the webhook answered 404 Not Found (nope); the webhook does not exist (revoked?); check the URL"
        );
        assert_eq!(rx.hits().len(), 1);

        let (addr, _rx) = receiver(&[(400, None)]).await;
        let alerter = Alerter::new(vec![config(format!("http://{addr}/x"))])
            .unwrap()
            .with_policy(fast());
        let why = alerter.send(&run_failed()).await[0].error.clone().unwrap();
        assert!(why.contains("set `format = \"slack\"`"), "{why}");
    }

    /// A writer for tracing output, to check what the logs say.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Everything logged by any test, through one global subscriber: a thread-local one misses
    /// events whose callsites other test threads registered first (tracing caches interest).
    /// `None` when another test of the binary installed its own global subscriber first.
    fn captured_logs() -> Option<Captured> {
        static LOGS: std::sync::OnceLock<Option<Captured>> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Captured::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).ok().map(|()| logs)
        })
        .clone()
    }

    #[tokio::test]
    async fn silent_receiver_fails_without_panicking_or_leaking_the_url() {
        let logs = captured_logs();

        // Accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        // Refuses connections: bound, then closed.
        let closed_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (ok_addr, ok_rx) = receiver(&[]).await;

        let alerter = Alerter::new(vec![
            config(format!("http://{silent_addr}/{SECRET}")),
            config(format!("http://{closed_addr}/{SECRET}?token=abc")),
            config(format!("http://{ok_addr}/{SECRET}")),
        ])
        .unwrap()
        .with_policy(SendPolicy {
            attempts: 2,
            timeout: Duration::from_millis(300),
            ..fast()
        });
        let started = Instant::now();
        let d = alerter.send(&run_failed()).await;
        // Both attempts at the silent one time out; the others run alongside, not after.
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].attempts, 2);
        assert!(!d[0].delivered && d[0].status.is_none());
        let timeout = d[0].error.clone().unwrap();
        assert!(timeout.contains("timed out"), "{timeout}");
        assert_eq!(d[1].attempts, 2);
        assert!(!d[1].delivered && d[1].status.is_none());
        let refused = d[1].error.clone().unwrap();
        assert!(refused.to_lowercase().contains("connect"), "{refused}");
        assert!(d[2].delivered);
        assert_eq!(ok_rx.hits().len(), 1);

        let logs = match logs {
            Some(logs) => String::from_utf8(logs.0.lock().unwrap().clone()).unwrap(),
            None => {
                eprintln!("another subscriber is installed: log contents not checked");
                String::new()
            }
        };
        if !logs.is_empty() {
            assert!(
                logs.contains("alert not delivered") && logs.contains("retrying"),
                "{logs}"
            );
            assert!(logs.contains(&format!("http://{silent_addr}/…")), "{logs}");
        }
        for text in [logs.as_str(), &timeout, &refused, &format!("{d:?}")] {
            assert!(
                !text.contains(SECRET) && !text.contains("token=abc"),
                "leaked the URL: {text}"
            );
        }
    }

    #[tokio::test]
    async fn events_filter_and_thresholds() {
        let (addr, rx) = receiver(&[]).await;
        let alerter = Alerter::new(vec![
            AlertConfig {
                events: vec![AlertKind::RunFailed],
                ..config(format!("http://{addr}/failures"))
            },
            config(format!("http://{addr}/all")),
            AlertConfig {
                events: vec![AlertKind::Stale, AlertKind::VolumeSpike],
                stale_after_hours: 48.0,
                volume_factor: 50.0,
                ..config(format!("http://{addr}/patient"))
            },
        ])
        .unwrap()
        .with_policy(fast());
        let paths = |d: Vec<Delivery>| -> Vec<usize> { d.iter().map(|d| d.index).collect() };

        assert_eq!(paths(alerter.send(&run_failed()).await), [0, 1]);
        assert_eq!(paths(alerter.send(&plan_held()).await), [1]);
        let stale = |hours| AlertEvent::Stale {
            source: "hr".into(),
            feed: StaleFeed::Pulled,
            last_success_unix: None,
            hours,
        };
        assert_eq!(paths(alerter.send(&stale(30.0)).await), [1]);
        assert_eq!(paths(alerter.send(&stale(48.0)).await), [1, 2]);
        let spike = |factor| AlertEvent::VolumeSpike {
            source_or_target: "hr".into(),
            kind: "deactivate-user".into(),
            count: 100,
            median: 1.0,
            factor,
        };
        assert_eq!(paths(alerter.send(&spike(12.0)).await), [1]);
        assert_eq!(paths(alerter.send(&spike(100.0)).await), [1, 2]);
        let hits: Vec<String> = rx.hits().into_iter().map(|h| h.path).collect();
        assert_eq!(hits.iter().filter(|p| *p == "/failures").count(), 1);
        assert_eq!(hits.iter().filter(|p| *p == "/all").count(), 6);
        assert_eq!(hits.iter().filter(|p| *p == "/patient").count(), 2);

        // Nobody wants it: no request at all.
        let only_failures = Alerter::new(vec![AlertConfig {
            events: vec![AlertKind::RunFailed],
            ..config(format!("http://{addr}/f"))
        }])
        .unwrap();
        assert!(only_failures.send(&plan_held()).await.is_empty());
        assert!(Alerter::new(vec![]).unwrap().send(&run_failed()).await.is_empty());
    }

    #[test]
    fn volume_spike_rules() {
        let quiet = [0, 0, 0, 0, 0, 0, 0, 0];
        let busy = [3, 2, 4, 3, 5, 3];
        #[rustfmt::skip]
        let cases: &[(&str, &[u64], u64, f64, bool)] = &[
            ("first big sync: no history", &[], 5000, 10.0, false),
            ("second run after a big first one", &[5000], 5000, 10.0, false),
            ("four earlier runs are not enough", &[0, 0, 0, 0], 500, 10.0, false),
            ("0 -> 3 is below the floor", &quiet, 3, 10.0, false),
            ("0 -> 9 is below the floor", &quiet, 9, 10.0, false),
            ("0 -> 10: usual counts as 1, 10x", &quiet, 10, 10.0, true),
            ("0 -> 500 deactivations", &quiet, 500, 10.0, true),
            ("median 3, 29 is under 10x", &busy, 29, 10.0, false),
            ("median 3, 30 is 10x", &busy, 30, 10.0, true),
            ("median 3, factor 5: 15", &busy, 15, 5.0, true),
            ("a big first sync in history does not hide later spikes", &[5000, 0, 0, 0, 0, 0, 0], 40, 10.0, true),
            ("even-length median averages the middle two", &[10, 10, 20, 20, 30, 30], 199, 10.0, false),
            ("even-length median averages the middle two (200)", &[10, 10, 20, 20, 30, 30], 200, 10.0, true),
            ("NaN factor never alarms", &quiet, 500, f64::NAN, false),
            ("zero factor never alarms", &quiet, 500, 0.0, false),
        ];
        for &(name, history, count, factor, expected) in cases {
            assert_eq!(volume_spike(history, count, factor), expected, "{name}");
        }
    }

    #[test]
    fn is_stale_rules() {
        let h = 3600.0;
        let now = 1_700_000_000.0;
        #[rustfmt::skip]
        let cases: &[(&str, Option<f64>, f64, f64, bool)] = &[
            ("synced an hour ago", Some(now - h), 24.0, now - 100.0 * h, false),
            ("synced 23.9 h ago", Some(now - 23.9 * h), 24.0, now - 100.0 * h, false),
            ("synced exactly 24 h ago", Some(now - 24.0 * h), 24.0, now - 100.0 * h, true),
            ("synced 3 days ago", Some(now - 72.0 * h), 24.0, now - 100.0 * h, true),
            ("never synced, configured an hour ago", None, 24.0, now - h, false),
            ("never synced, configured 2 days ago", None, 24.0, now - 48.0 * h, true),
            ("a last success counts even if before configured_since", Some(now - 30.0 * h), 24.0, now - h, true),
            ("clock skew: success in the future", Some(now + h), 24.0, now - 100.0 * h, false),
            ("short window", Some(now - 2.0 * h), 1.5, now - 100.0 * h, true),
            ("zero window never alarms", Some(now - 1000.0 * h), 0.0, now, false),
            ("NaN window never alarms", Some(now - 1000.0 * h), f64::NAN, now, false),
            ("NaN last success never alarms", Some(f64::NAN), 24.0, now - 100.0 * h, false),
        ];
        for &(name, last, hours, since, expected) in cases {
            assert_eq!(is_stale(last, now, hours, since), expected, "{name}");
        }
    }

    #[test]
    fn stale_alerts_once_per_window() {
        let h = 3600.0;
        let t = 1_700_000_000.0;
        let alerter = Alerter::new(vec![
            AlertConfig {
                stale_after_hours: 24.0,
                ..config("https://a.example/".into())
            },
            AlertConfig {
                stale_after_hours: 6.0,
                events: vec![AlertKind::RunFailed],
                ..config("https://b.example/".into())
            },
        ])
        .unwrap();
        assert!(alerter.should_send_stale("hr", t));
        assert!(!alerter.should_send_stale("hr", t + 60.0));
        assert!(!alerter.should_send_stale("hr", t + 23.9 * h));
        assert!(
            alerter.should_send_stale("entra", t + h),
            "each source has its own window"
        );
        assert!(
            alerter.should_send_stale("hr", t + 24.0 * h),
            "the window is the stale-wanting webhook's 24 h"
        );
        assert!(!alerter.should_send_stale("hr", t + 25.0 * h));

        let nobody = Alerter::new(vec![AlertConfig {
            events: vec![AlertKind::RunFailed],
            ..config("https://a.example/".into())
        }])
        .unwrap();
        assert!(!nobody.should_send_stale("hr", t));
        assert_eq!(
            nobody.check_stale("hr", StaleFeed::Pulled, None, t - 100.0 * h, t),
            None
        );
    }

    #[test]
    fn check_stale_and_check_volume() {
        let h = 3600.0;
        let t = 1_700_000_000.0;
        let alerter = Alerter::new(vec![
            AlertConfig {
                stale_after_hours: 24.0,
                volume_factor: 10.0,
                ..config("https://a.example/".into())
            },
            AlertConfig {
                stale_after_hours: 12.0,
                volume_factor: 4.0,
                ..config("https://b.example/".into())
            },
        ])
        .unwrap();
        let last = Some(t - 13.0 * h);
        assert_eq!(
            alerter.check_stale("hr", StaleFeed::Pulled, last, t - 100.0 * h, t),
            Some(AlertEvent::Stale {
                source: "hr".into(),
                feed: StaleFeed::Pulled,
                last_success_unix: last,
                hours: 13.0
            })
        );
        assert_eq!(
            alerter.check_stale("hr", StaleFeed::Pulled, last, t - 100.0 * h, t + h),
            None,
            "already said"
        );
        // It syncs, then goes stale again: said at once, not a window later.
        assert_eq!(
            alerter.check_stale("hr", StaleFeed::Pulled, Some(t + 2.0 * h), t - 100.0 * h, t + 3.0 * h),
            None
        );
        assert!(
            alerter
                .check_stale("hr", StaleFeed::Pulled, Some(t + 2.0 * h), t - 100.0 * h, t + 15.0 * h)
                .is_some()
        );
        assert!(
            alerter.check_stale("new", StaleFeed::Pulled, None, t - h, t).is_none(),
            "a new source gets one window"
        );

        assert_eq!(alerter.volume_factor(), Some(4.0));
        assert_eq!(alerter.stale_hours_for(Some(t - 11.0 * h), t, t - 100.0 * h), None);
        assert_eq!(
            alerter.stale_hours_for(Some(t - 12.5 * h), t, t - 100.0 * h),
            Some(12.5)
        );
        assert_eq!(alerter.stale_hours_for(None, t, t - 30.0 * h), Some(30.0));
        let none = Alerter::new(vec![AlertConfig {
            events: vec![AlertKind::RunFailed],
            ..config("https://a.example/".into())
        }])
        .unwrap();
        assert_eq!(none.volume_factor(), None);
        assert_eq!(none.stale_hours_for(None, t, 0.0), None);

        assert_eq!(alerter.check_volume("hr", "deactivate-user", &[0, 0, 0, 0, 0], 3), None);
        assert_eq!(alerter.check_volume("hr", "deactivate-user", &[], 900), None);
        assert_eq!(
            alerter.check_volume("hr", "deactivate-user", &[2, 3, 3, 4, 9], 12),
            Some(AlertEvent::VolumeSpike {
                source_or_target: "hr".into(),
                kind: "deactivate-user".into(),
                count: 12,
                median: 3.0,
                factor: 4.0,
            })
        );
    }

    #[test]
    fn summaries_and_kinds() {
        assert_eq!(run_failed().kind(), AlertKind::RunFailed);
        assert_eq!(plan_held().kind(), AlertKind::PlanHeld);
        let stale = AlertEvent::Stale {
            source: "hr".into(),
            feed: StaleFeed::Pulled,
            last_success_unix: Some(1_700_000_000.0),
            hours: 30.25,
        };
        assert_eq!(stale.kind(), AlertKind::Stale);
        assert_eq!(
            stale.summary(),
            "Source 'hr' has not synced successfully for 30.2 h (last success 2023-11-14T22:13:20Z); \
             `roster check hr` tells whether its connector can work"
        );
        let never = AlertEvent::Stale {
            source: "hr".into(),
            feed: StaleFeed::Pulled,
            last_success_unix: None,
            hours: 25.0,
        };
        assert_eq!(
            never.summary(),
            "Source 'hr' has never synced successfully (25.0 h since it was configured); \
             `roster check hr` tells whether its connector can work"
        );
        let pushed = AlertEvent::Stale {
            source: "entra".into(),
            feed: StaleFeed::Pushed,
            last_success_unix: Some(1_700_000_000.0),
            hours: 30.25,
        };
        assert!(
            pushed.summary().starts_with(
                "Source 'entra' has not pushed to Roster for 30.2 h (last push or successful run 2023-11-14T22:13:20Z); \
                 its identity provider's provisioning log tells why"
            ),
            "{}",
            pushed.summary()
        );
        let spike = AlertEvent::VolumeSpike {
            source_or_target: "entra".into(),
            kind: "deactivate-user".into(),
            count: 120,
            median: 3.0,
            factor: 40.0,
        };
        assert_eq!(spike.kind(), AlertKind::VolumeSpike);
        let drift = AlertEvent::Drift {
            run_id: 9,
            target: "bitbucket".into(),
            policy: "revert".into(),
            changes: vec![
                "eve was added to devs by hand in Bitbucket".into(),
                "ops was deleted".into(),
            ],
        };
        assert_eq!(drift.kind(), AlertKind::Drift);
        assert_eq!(
            drift.summary(),
            "Run 9 found 2 change(s) made by hand in 'bitbucket' to what Roster manages (drift = \"revert\"): eve was added to devs by hand in Bitbucket (and 1 more); details: `roster runs show 9`"
        );
        assert_eq!(
            slack_body(&drift, 0.0)["blocks"][2]["fields"].as_array().unwrap().len(),
            3
        );
        assert_eq!(
            spike.summary(),
            "'entra': 120 deactivate-user in one run, 40× the usual 3 (median of earlier runs)"
        );
        let long = AlertEvent::RunFailed {
            run_id: 1,
            target: "t".into(),
            error: "x".repeat(1000),
        };
        assert_eq!(
            long.summary().chars().count(),
            "Run 1 against 't' failed:  (details: `roster runs show 1`)".len() + 301
        );
        let blank = AlertEvent::RunFailed {
            run_id: 3,
            target: "t".into(),
            error: "\n  \nboom".into(),
        };
        assert_eq!(
            blank.summary(),
            "Run 3 against 't' failed: boom (details: `roster runs show 3`)"
        );
        let from_nothing = |median| AlertEvent::VolumeSpike {
            source_or_target: "bb".into(),
            kind: "delete-user".into(),
            count: 12,
            median,
            factor: 12.0,
        };
        assert_eq!(
            from_nothing(0.0).summary(),
            "'bb': 12 delete-user in one run, where earlier runs usually had none"
        );
        assert_eq!(
            from_nothing(0.5).summary(),
            "'bb': 12 delete-user in one run, where earlier runs usually had 0.5"
        );
        let odd = AlertEvent::VolumeSpike {
            source_or_target: "bb".into(),
            kind: "delete-user".into(),
            count: 25,
            median: 2.5,
            factor: 10.0,
        };
        assert_eq!(
            odd.summary(),
            "'bb': 25 delete-user in one run, 10× the usual 2.5 (median of earlier runs)"
        );
        for e in [run_failed(), plan_held(), stale, spike] {
            assert!(!e.summary().contains('\n'));
            assert_eq!(json_body(&e, 0.0)["event"], e.kind().as_str());
            let slack = slack_body(&e, 0.0);
            assert!(slack["blocks"].as_array().unwrap().len() >= 4);
        }
        let kinds: Vec<String> = [
            AlertKind::RunFailed,
            AlertKind::PlanHeld,
            AlertKind::Stale,
            AlertKind::VolumeSpike,
        ]
        .iter()
        .map(|k| serde_json::to_value(k).unwrap().as_str().unwrap().to_string())
        .collect();
        assert_eq!(kinds, ["run-failed", "plan-held", "stale", "volume-spike"]);
    }

    #[test]
    fn timestamps_and_redaction() {
        for (unix, text) in [
            (0.0, "1970-01-01T00:00:00Z"),
            (951_782_400.0, "2000-02-29T00:00:00Z"),
            (1_700_000_000.9, "2023-11-14T22:13:20Z"),
            (4_102_444_799.0, "2099-12-31T23:59:59Z"),
            (-1.0, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(unix), text);
        }
        assert_eq!(rfc3339(f64::NAN), "unknown time");
        assert_eq!(
            redact("https://hooks.slack.com/services/T/B/X"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("https://u:p@h.example:8443/x?token=1"),
            "https://h.example:8443/…"
        );
        assert_eq!(redact("https://h.example?token=1"), "https://h.example/…");
        assert_eq!(redact("nonsense"), "(not a URL)");
    }

    #[test]
    fn alerter_is_shareable() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let alerter = Alerter::new(vec![]).unwrap();
        send_sync(&alerter);
        let event = run_failed();
        send(alerter.send(&event));
    }
}
