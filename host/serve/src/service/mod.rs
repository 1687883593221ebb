//! The running service behind `roster serve`: the configuration (roster.toml merged with the
//! sources and the target created through the API), the runner built from it, the runs in
//! progress, metrics and alerts. The REST API and the scheduler act only through it.
//!
//! Invariants: one run at a time per target (runs, approvals and single-user syncs all claim
//! the target; a sync of several targets claims them all, and the service starts one sync at a
//! time); a source or target defined in roster.toml cannot be changed through the API;
//! without a target nothing is applied, and what needs one answers with how to add it; the
//! runner is rebuilt, never mutated, when the configuration changes (runs keep the one they
//! started with).

pub mod fired;
pub mod push;
pub mod runs;
pub mod single;
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use roster_directory::{DirectoryError, Feed, FetchMode, SourceConfig};
use roster_engine::{DriftPolicy, EngineError, TargetConfig, TargetKinds, Writes};
use roster_model::{DefinedIn, RunMode, RunState, Trigger};
use roster_runtime::Runtime;
use roster_store::{SourceRow, Store, StoreError, now_ms};
use roster_telemetry::alerts::{AlertEvent, Alerter, StaleFeed};
use roster_telemetry::metrics::Metrics;

use crate::config::{Config, NO_TARGET};
use crate::runner::{RunError, RunReport, Runner, SyncOptions};
use runs::{Busy, LiveProgress, RunManager};

/// Why the service refused or failed; the API maps each kind to a status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such thing (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the state (409): a run in progress, a source from roster.toml.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (400/422).
    #[error("{0}")]
    Invalid(String),
    /// Something on Roster's side failed (500).
    #[error("{0}")]
    Internal(String),
}

impl From<Busy> for ServiceError {
    fn from(b: Busy) -> Self {
        ServiceError::Conflict(b.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            StoreError::Busy(what) | StoreError::Conflict(what) => ServiceError::Conflict(what),
            StoreError::Invalid(what) => ServiceError::Invalid(what),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<RunError> for ServiceError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Config(m) if m == NO_TARGET => ServiceError::Conflict(m),
            RunError::Config(m)
            | RunError::Engine(EngineError::Plan(m))
            | RunError::Directory(DirectoryError::Config(m)) => ServiceError::Invalid(m),
            RunError::Store(e)
            | RunError::Engine(EngineError::Store(e))
            | RunError::Directory(DirectoryError::Store(e)) => e.into(),
            RunError::NotFound(m) | RunError::Directory(DirectoryError::NotFound(m)) => ServiceError::NotFound(m),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// How a run asked for through the API or the scheduler fetches and whether it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RequestedMode {
    /// Every source read in full.
    #[default]
    Full,
    /// Delta tokens used where sources have them.
    Incremental,
    /// Plan only: nothing is written.
    DryRun,
}

/// Whether a PUT-like call creates or replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// It must not exist yet.
    Create,
    /// It must exist.
    Replace,
}

/// A run to start.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Sources to fetch; empty: every enabled source.
    pub sources: Vec<String>,
    /// Mode.
    pub mode: RequestedMode,
    /// What asked for it.
    pub trigger: Trigger,
    /// Who.
    pub actor: String,
    /// From where (the caller's address; empty: this machine).
    pub origin: String,
    /// Only this target; none: every target.
    pub target: Option<String>,
}

/// The service.
pub struct Service {
    /// The store.
    pub store: Arc<Store>,
    /// The plugin runtime.
    pub runtime: Runtime,
    config_path: PathBuf,
    config: RwLock<Config>,
    /// The kinds of target this Roster writes to.
    kinds: TargetKinds,
    /// The directory and, once a target is defined, its engine.
    runner: RwLock<Arc<Runner>>,
    /// Runs in progress.
    pub runs: RunManager,
    /// Prometheus metrics.
    pub metrics: Metrics,
    alerter: RwLock<Arc<Alerter>>,
    /// The alerts that fired lately, for the dashboard and `GET /api/v1/alerts`.
    pub fired: Arc<fired::FiredAlerts>,
    /// When this service was made (unix ms): a push source's staleness counts from it.
    started_ms: i64,
    /// Pushes waiting for their run.
    pub push: Arc<push::PushQueue>,
}

/// The configuration to run with: roster.toml's, plus the sources and the targets created
/// through the API (after the file's targets; one with the id of a file's target is ignored).
pub fn merged_config(path: &Path, store: &Store, kinds: &TargetKinds) -> Result<Config, ServiceError> {
    let mut config = Config::load(path, kinds).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    for (id, value) in store.api_targets()? {
        if config.targets.iter().any(|f| f.id == id) {
            tracing::warn!(target = %id, "roster.toml defines a target with the id of one created through the API; the file's is used");
            continue;
        }
        let mut t: TargetConfig = serde_json::from_value(value).map_err(|e| {
            ServiceError::Internal(format!(
                "target '{id}' in the store is not a target this Roster understands ({e}); delete it through the API and create it again"
            ))
        })?;
        t.origin = DefinedIn::Api;
        config.targets.push(t);
    }
    // The file's targets were checked together; the API's were each checked against them when
    // created, but a file changed since may now clash (two crowd-directory targets).
    if let Err(e) = config.validate_together(kinds) {
        return Err(ServiceError::Invalid(format!(
            "{e} (roster.toml together with the targets created through the API)"
        )));
    }
    for row in store.sources()?.into_iter().filter(|r| r.origin == "api") {
        let mut s: SourceConfig = serde_json::from_value(row.config.clone()).map_err(|e| {
            ServiceError::Internal(format!(
                "source '{}' in the store is not a source this Roster understands ({e}); delete it through the API and create it again",
                row.id
            ))
        })?;
        s.origin = DefinedIn::Api;
        if config.sources.iter().any(|f| f.id == s.id) {
            // roster.toml took the id since: the file wins, the API's copy is shadowed.
            tracing::warn!(source = %s.id, "a source of roster.toml has the id of a source created through the API; the file's is used");
            continue;
        }
        config.sources.push(s);
    }
    config
        .sources
        .sort_by(|a, b| a.priority.cmp(&b.priority).then(a.id.cmp(&b.id)));
    Ok(config)
}

/// A plugin change the folder watcher made, as an audit entry: (action, file, detail).
fn watched(report: &roster_runtime::LoadReport) -> (&'static str, String, String) {
    use roster_runtime::LoadReport;
    let said = |l: &roster_runtime::PluginLabel| format!("{} {} sha256 {}", l.name, l.version, l.sha256);
    match report {
        LoadReport::Loaded(l) => ("plugin.load", l.file.clone(), said(l)),
        LoadReport::Replaced { old, new } => (
            "plugin.swap",
            new.file.clone(),
            format!("{} → {}", said(old), said(new)),
        ),
        LoadReport::Removed(l) => ("plugin.remove", l.file.clone(), said(l)),
        LoadReport::Failed { path, error } => (
            "plugin.refused",
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            error.clone(),
        ),
    }
}

/// The runner for `config` (roster.toml's sources are stored, with or without a target).
fn build_runner(
    store: &Arc<Store>,
    runtime: &Runtime,
    config: &Config,
    kinds: &TargetKinds,
) -> Result<Arc<Runner>, ServiceError> {
    Ok(Arc::new(Runner::new(
        store.clone(),
        runtime.clone(),
        config.clone(),
        kinds,
    )?))
}

fn alerter(config: &Config) -> Result<Arc<Alerter>, ServiceError> {
    Alerter::new(config.alerts.clone())
        .map(Arc::new)
        .map_err(|e| ServiceError::Invalid(e.to_string()))
}

impl Service {
    /// Loads the configuration and builds the runner; `kinds` are the targets this Roster
    /// writes to.
    pub fn new(
        store: Arc<Store>,
        runtime: Runtime,
        config_path: &Path,
        kinds: TargetKinds,
    ) -> Result<Arc<Service>, ServiceError> {
        let config = merged_config(config_path, &store, &kinds)?;
        // A source naming a plugin that is not there is refused now, not at its first run.
        for s in &config.sources {
            s.check_plugins(&runtime).map_err(ServiceError::Invalid)?;
        }
        let alerts = alerter(&config)?;
        let runner = build_runner(&store, &runtime, &config, &kinds)?;
        if config.targets.is_empty() {
            tracing::warn!("{NO_TARGET}; nothing is applied until then");
        }
        Ok(Arc::new(Service {
            store,
            runtime,
            config_path: config_path.to_path_buf(),
            config: RwLock::new(config),
            kinds,
            runner: RwLock::new(runner),
            runs: RunManager::default(),
            metrics: Metrics::new(),
            alerter: RwLock::new(alerts),
            fired: Arc::default(),
            started_ms: now_ms(),
            push: Arc::default(),
        }))
    }

    /// The runner now (runs keep the one they started with).
    pub fn runner(&self) -> Arc<Runner> {
        self.runner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The kinds of target this Roster writes to.
    pub fn kinds(&self) -> &TargetKinds {
        &self.kinds
    }

    /// The configuration now.
    pub fn config(&self) -> Config {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The target run `run_id` was for (for metrics and alerts), empty when unknown.
    fn target_of(&self, run_id: i64) -> String {
        self.store.run(run_id).map(|r| r.target).unwrap_or_default()
    }

    /// Rebuilds the runner from roster.toml and the store (after an API change, or on SIGHUP).
    pub fn reload_config(&self) -> Result<(), ServiceError> {
        let config = merged_config(&self.config_path, &self.store, &self.kinds)?;
        let alerts = alerter(&config)?;
        let runner = build_runner(&self.store, &self.runtime, &config, &self.kinds)?;
        *self.runner.write().unwrap_or_else(|p| p.into_inner()) = runner;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        *self.alerter.write().unwrap_or_else(|p| p.into_inner()) = alerts;
        self.push.reconfigured();
        Ok(())
    }

    fn alerts(&self) -> Arc<Alerter> {
        self.alerter.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Told of each push (SCIM) to `source` once it is durable in the mirror: schedules the
    /// source's run, debounced and bounded in delay by its `[source.push]` (see [`push`]).
    /// Never waits and never fails: the pusher has its answer already.
    pub fn pushed(self: &Arc<Self>, source: &str) {
        self.metrics.observe_push(source);
        self.push.push(self, source);
    }

    /// At start: one run, after each push source's debounce, for the pushes that may have
    /// arrived after the last run before Roster stopped (they are in the mirror; which of them
    /// a run carried is not recorded). A run that finds nothing new writes nothing.
    pub fn resume_pushes(self: &Arc<Self>) {
        for s in self.config().sources.iter().filter(|s| s.enabled) {
            if let Feed::Push(_) = s.feed() {
                self.push.resume(self, &s.id);
            }
        }
    }

    /// The push queue's state for `source`, when it is a push source.
    pub fn push_state(&self, source: &SourceConfig) -> Option<push::PushState> {
        match source.feed() {
            Feed::Push(p) => Some(self.push.state(&source.id, push::Timing::of(p))),
            Feed::Pull(_) => None,
        }
    }

    /// Starts a run in the background; answers with its id at once (with several targets, the
    /// first target's run: see [`Service::start_runs`]).
    pub fn start_run(self: &Arc<Self>, req: RunRequest) -> Result<i64, ServiceError> {
        Ok(self.start_runs(req)?[0])
    }

    /// Starts a sync in the background: one run per target (every target, or the one asked
    /// for), answering at once with their ids in configuration order. The sources are fetched
    /// once, by the first run.
    pub fn start_runs(self: &Arc<Self>, req: RunRequest) -> Result<Vec<i64>, ServiceError> {
        let runner = self.runner();
        let targets: Vec<roster_engine::TargetConfig> = runner
            .selected(req.target.as_deref())?
            .into_iter()
            .map(|e| e.policy().clone())
            .collect();
        let config = runner.config();
        for s in &req.sources {
            if !config.sources.iter().any(|c| &c.id == s && c.enabled) {
                return Err(ServiceError::NotFound(format!("no enabled source named '{s}'")));
            }
        }
        if let Some(id) = self.runs.busy() {
            return Err(Busy(id).into());
        }
        let (fetch, writes) = match req.mode {
            RequestedMode::Full => (FetchMode::Full, Writes::Apply),
            RequestedMode::Incremental => (FetchMode::Incremental, Writes::Apply),
            RequestedMode::DryRun => (FetchMode::Full, Writes::DryRun),
        };
        let sources: Vec<String> = if req.sources.is_empty() {
            config
                .sources
                .iter()
                .filter(|s| s.enabled)
                .map(|s| s.id.clone())
                .collect()
        } else {
            req.sources.clone()
        };
        let mut opts = SyncOptions {
            sources: req.sources,
            fetch,
            writes,
            trigger: req.trigger,
            actor: req.actor,
            origin: req.origin,
            target: req.target,
            run_ids: BTreeMap::new(),
        };
        let mode = opts.mode();
        let mut progresses = Vec::new();
        for t in &targets {
            let run_id = self.store.create_run(req.trigger, mode, &t.id, &sources)?;
            opts.run_ids.insert(t.id.clone(), run_id);
            progresses.push(Arc::new(LiveProgress::new(
                run_id,
                req.trigger,
                mode,
                sources.clone(),
                t.budget.per_second,
            )));
        }
        let ids: Vec<i64> = progresses.iter().map(|p| p.run_id()).collect();
        if let Err(busy) = self.runs.claim_all(&progresses) {
            for run_id in &ids {
                let _ = self.store.finish_run(
                    *run_id,
                    RunState::Refused,
                    None,
                    &crate::runner::Summary::failed(&busy.to_string()).to_json(),
                    Some(&busy.to_string()),
                );
            }
            return Err(busy.into());
        }
        let this = self.clone();
        tokio::spawn(async move {
            let each = runs::Each {
                runs: progresses,
                service: this.clone(),
            };
            let result = runner.sync_each(&opts, &each).await;
            let ended = match result {
                Ok(ended) => ended,
                // Nothing ran (the configuration changed under the request): each run says why.
                Err(e) => {
                    let e = e.to_string();
                    let summary = crate::runner::Summary::failed(&e).to_json();
                    for p in &each.runs {
                        let _ = this
                            .store
                            .finish_run(p.run_id(), RunState::Failed, None, &summary, Some(&e));
                    }
                    each.runs
                        .iter()
                        .map(|p| (p.run_id(), Err(crate::runner::RunError::Shared(e.clone()))))
                        .collect()
                }
            };
            for p in &each.runs {
                this.runs.release(p.run_id());
            }
            this.after_runs(ended).await;
        });
        Ok(ids)
    }

    /// Watches the plugins folder, swapping changed files in, until the handle is dropped;
    /// every load, swap, removal and refused file is in the audit log (actor
    /// `plugins-watcher`).
    pub fn watch_plugins(&self) -> Result<roster_runtime::WatchHandle, ServiceError> {
        let store = self.store.clone();
        // Every reload tries a broken file again; its refusal is audited once, until it changes.
        let refused: std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, String>> = Default::default();
        self.runtime
            .watch(move |reports| {
                let reports: Vec<_> = {
                    let mut refused = refused.lock().unwrap_or_else(|p| p.into_inner());
                    reports
                        .into_iter()
                        .filter(|r| match r {
                            roster_runtime::LoadReport::Failed { path, error } => {
                                refused.insert(path.clone(), error.clone()).as_ref() != Some(error)
                            }
                            roster_runtime::LoadReport::Loaded(l)
                            | roster_runtime::LoadReport::Replaced { new: l, .. }
                            | roster_runtime::LoadReport::Removed(l) => {
                                refused.retain(|p, _| p.file_name().is_none_or(|f| *f != *l.file));
                                true
                            }
                        })
                        .collect()
                };
                let store = store.clone();
                // SQLite off the async workers, as everywhere.
                tokio::task::spawn_blocking(move || {
                    for (action, subject, detail) in reports.iter().map(watched) {
                        if let Err(e) = store.audit("plugins-watcher", "local", action, &subject, Some(&detail)) {
                            tracing::warn!("cannot audit a plugin change ({action} {subject}): {e}");
                        }
                    }
                });
            })
            .map_err(|e| ServiceError::Internal(format!("cannot watch the plugins folder: {e}")))
    }

    /// Asks a running run to stop.
    pub fn cancel(&self, run_id: i64) -> Result<(), ServiceError> {
        match self.runs.get(run_id) {
            Some(p) => {
                p.cancel();
                Ok(())
            }
            None => match self.store.run(run_id) {
                Ok(r) => Err(ServiceError::Conflict(format!(
                    "run {run_id} is not running (it ended {})",
                    r.state
                ))),
                Err(_) => Err(ServiceError::NotFound(format!("no run {run_id}"))),
            },
        }
    }

    /// Approves a held plan and applies it, holding the target meanwhile.
    pub async fn approve(
        self: &Arc<Self>,
        plan_id: &str,
        hash: &str,
        actor: &str,
        origin: &str,
    ) -> Result<RunReport, ServiceError> {
        let runner = self.runner();
        runner.engine()?;
        let progress = Arc::new(LiveProgress::new(0, Trigger::Approval, RunMode::ApplyPlan, vec![], 0.0));
        self.runs.claim(progress.clone())?;
        let result = runner.approve(plan_id, hash, actor, origin, progress.as_ref()).await;
        self.runs.release(0);
        let report = result?;
        self.after_runs(vec![(report.run_id, Ok(report.clone()))]).await;
        Ok(report)
    }

    /// Records what the runs of a sync mean: metrics, schedule history, alerts, and for a sync
    /// that took pushes whether it carried them (else they are retried, see [`push`]): it did
    /// when every target's run did (the push queue knows the sync by its first run's id).
    pub(crate) async fn after_runs(self: &Arc<Self>, ended: Vec<crate::runner::TargetRun>) {
        let Some(first) = ended.iter().map(|(id, _)| *id).min() else {
            return;
        };
        // A paused run took the pushes in as a held one does: the next run continues its plan.
        let carried = ended.iter().all(
            |(_, r)| matches!(r, Ok(r) if matches!(r.state, RunState::Succeeded | RunState::Held | RunState::Paused)),
        );
        let end = if carried {
            push::RunEnd::Carried
        } else {
            push::RunEnd::NotCarried
        };
        self.push.ended(self, first, end);
        for (run_id, result) in ended {
            self.after_run(run_id, result).await;
        }
    }

    /// Records what one finished run means: metrics, schedule history, alerts.
    async fn after_run(self: &Arc<Self>, run_id: i64, result: Result<RunReport, RunError>) {
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(run_id, "run failed: {e}");
                self.send(AlertEvent::RunFailed {
                    run_id,
                    target: self.target_of(run_id),
                    error: e.to_string(),
                })
                .await;
                return;
            }
        };
        let config = self.config();
        self.observe(&report, &config);
        let ok = report.state.applied();
        for f in report.summary.fetch.iter().filter(|f| f.complete && ok) {
            if let Err(e) = self.store.record_success(&f.source, now_ms()) {
                tracing::warn!("cannot record the success of '{}': {e}", f.source);
            }
        }
        match report.state {
            RunState::Failed | RunState::Refused => {
                let error = report.summary.warnings.join("; ");
                self.send(AlertEvent::RunFailed {
                    run_id,
                    target: report.target.clone(),
                    error,
                })
                .await
            }
            RunState::Held => {
                let why = report
                    .summary
                    .guard
                    .as_ref()
                    .and_then(|g| g.held.clone())
                    .unwrap_or_default();
                self.send(AlertEvent::PlanHeld {
                    run_id,
                    target: report.target.clone(),
                    plan_id: report.plan_id.clone().unwrap_or_default(),
                    plan_hash: report.plan_hash.clone().unwrap_or_default(),
                    why,
                })
                .await
            }
            _ => {}
        }
        if !report.summary.drift.is_empty() {
            let policy = config
                .targets
                .iter()
                .find(|t| t.id == report.target)
                .map_or(DriftPolicy::default(), |t| t.drift);
            self.send(AlertEvent::Drift {
                run_id,
                target: report.target.clone(),
                policy: serde_json::to_value(policy)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                changes: report.summary.drift.iter().map(|d| d.detail.clone()).collect(),
            })
            .await;
        }
        self.check_volume(&report).await;
    }

    /// Deprovisioning far above the usual for these sources: the median of the earlier full and
    /// incremental runs of this target over the same sources (a run over one source is not
    /// compared with runs over all of them).
    async fn check_volume(&self, report: &RunReport) {
        let alerts = self.alerts();
        if alerts.volume_factor().is_none() {
            return;
        }
        let Ok(this) = self.store.run(report.run_id) else {
            return;
        };
        let mut sources = this.sources.clone();
        sources.sort();
        let earlier: Vec<serde_json::Value> = self
            .store
            .runs(200)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.id != report.run_id && r.target == this.target)
            .filter(|r| matches!(r.mode, RunMode::Full | RunMode::Incremental))
            .filter(|r| {
                let mut s = r.sources.clone();
                s.sort();
                s == sources
            })
            .filter_map(|r| r.summary)
            .take(50)
            .collect();
        let label = if sources.is_empty() {
            this.target.clone()
        } else {
            sources.join(", ")
        };
        for kind in ["deactivate-user", "delete-user"] {
            let count = report.summary.planned.get(kind).copied().unwrap_or(0) as u64;
            if count == 0 {
                continue;
            }
            let history: Vec<u64> = earlier
                .iter()
                .map(|s| s["planned"][kind].as_u64().unwrap_or(0))
                .collect();
            if let Some(event) = alerts.check_volume(&label, kind, &history, count) {
                self.send(event).await;
            }
        }
    }

    /// Keeps an alert among those that fired and sends it to the webhooks that want it, in the
    /// background (a webhook that is down is retried for up to a minute; no run waits for it),
    /// logging failed deliveries and keeping how the delivery went.
    pub async fn send(&self, event: AlertEvent) {
        let alerts = self.alerts();
        if !alerts.wanted_by_any(&event) {
            self.fired.record(&event, now_ms(), fired::AlertDelivery::NoWebhook);
            return;
        }
        let id = self.fired.record(&event, now_ms(), fired::AlertDelivery::Sending);
        let kept = self.fired.clone();
        tokio::spawn(async move {
            let deliveries = alerts.send(&event).await;
            for d in &deliveries {
                if !d.delivered {
                    tracing::warn!(webhook = %d.endpoint, "alert not delivered: {}", d.error.as_deref().unwrap_or_default());
                }
            }
            kept.delivered(id, &deliveries);
        });
    }

    /// Staleness: sources without a successful run for longer than the alerts allow (counted
    /// from when the scheduler first saw the source, until it first succeeds). A push source is
    /// stale when it has not pushed for that long: its last push this process received, or
    /// else the last successful run (every run carrying pushes records one), counted from
    /// when this service started.
    pub async fn check_staleness(&self) {
        let alerts = self.alerts();
        let now_ms = now_ms();
        for s in self.config().sources.iter().filter(|s| s.enabled) {
            let Ok(st) = self.store.schedule_state(&s.id) else {
                continue;
            };
            let (feed, first, last) = match s.feed() {
                Feed::Pull(_) => {
                    let Some(first) = st.first_seen_at else { continue };
                    (StaleFeed::Pulled, first, st.last_success_at)
                }
                Feed::Push(_) => (
                    StaleFeed::Pushed,
                    st.first_seen_at.unwrap_or(self.started_ms),
                    self.push.last_push(&s.id).max(st.last_success_at),
                ),
            };
            let last = last.map(|ms| ms as f64 / 1000.0);
            let (first, now) = (first as f64 / 1000.0, now_ms as f64 / 1000.0);
            if let Some(event) = alerts.check_stale(&s.id, feed, last, first, now) {
                self.send(event).await;
            }
        }
    }

    fn observe(&self, report: &RunReport, config: &Config) {
        use roster_telemetry::metrics::{RunObservation, SourceObservation};
        let s = &report.summary;
        let stage_ms: Vec<(&str, u64)> = s.stage_ms.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let writes: Vec<(&str, u64)> = s.planned.iter().map(|(k, v)| (k.as_str(), *v as u64)).collect();
        let plugins: BTreeMap<&str, String> = config.sources.iter().map(|c| (c.id.as_str(), c.feed_label())).collect();
        let sources: Vec<SourceObservation<'_>> = s
            .fetch
            .iter()
            .map(|f| SourceObservation {
                source: &f.source,
                vendor: plugins.get(f.source.as_str()).map_or("unknown", String::as_str),
                complete: f.complete,
                requests: f.idp_requests,
                throttled: f.idp_throttled,
            })
            .collect();
        let applied = s.applied.done > 0 || s.applied.failed > 0;
        let no_writes: Vec<(&str, u64)> = Vec::new();
        let trigger = self
            .store
            .run(report.run_id)
            .map(|r| r.trigger.as_str())
            .unwrap_or("unknown");
        let target = report.target.clone();
        let mut counted: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for d in &s.drift {
            *counted.entry((d.change_name(), d.handling_name())).or_default() += 1;
        }
        let drift: Vec<(&str, &str, u64)> = counted.into_iter().map(|((c, h), n)| (c, h, n)).collect();
        self.metrics.observe_run(&RunObservation {
            state: report.state.as_str(),
            trigger,
            target: &target,
            stage_ms: &stage_ms,
            writes: if applied { &writes } else { &no_writes },
            target_calls: s.api_calls_total,
            target_throttled: s.throttled,
            sources: &sources,
            finished_at_unix: now_ms() as f64 / 1000.0,
            drift: &drift,
        });
    }

    /// Creates or replaces a source defined through the API. Its transform chain is tried
    /// first: settings a step's transform refuses (a mapping that does not parse) are refused
    /// with that error, and what was stored before keeps serving.
    pub async fn put_source(&self, mut source: SourceConfig, put: Put) -> Result<(), ServiceError> {
        let replace = put == Put::Replace;
        if let Some(existing) = self.store.source(&source.id)? {
            if existing.origin == "file" {
                return Err(ServiceError::Conflict(format!(
                    "source '{}' is defined in roster.toml; change it there",
                    source.id
                )));
            }
            if !replace {
                return Err(ServiceError::Conflict(format!(
                    "a source named '{}' exists; PUT /api/v1/sources/{} replaces it",
                    source.id, source.id
                )));
            }
        } else if replace {
            return Err(ServiceError::NotFound(format!(
                "no source named '{}'; POST /api/v1/sources creates one",
                source.id
            )));
        }
        if source.files.is_some() {
            return Err(ServiceError::Invalid(
                "`files` grants a folder of this server; define such sources in roster.toml".into(),
            ));
        }
        if let Some(step) = source.transforms.iter().find(|t| t.settings_file.is_some()) {
            return Err(ServiceError::Invalid(format!(
                "transform '{}': `settings_file` names a file of this server; give the settings inline (`settings`), or define the source in roster.toml",
                step.plugin
            )));
        }
        if let Some(bad) = source
            .secrets
            .iter()
            .find(|s| s.from.value.is_none() || s.from.env.is_some() || s.from.file.is_some())
        {
            return Err(ServiceError::Invalid(format!(
                "secret '{}': give its `value` (kept sealed, never shown again); `env` and `file` name things on the server and belong in roster.toml",
                bad.name
            )));
        }
        source.origin = DefinedIn::Api;
        // The configuration as it would be, validated as a whole before anything is stored.
        let mut candidate = merged_config(&self.config_path, &self.store, &self.kinds)?;
        candidate.sources.retain(|s| s.id != source.id);
        candidate.sources.push(source.clone());
        candidate.validate(&self.kinds).map_err(ServiceError::Invalid)?;
        source.check_plugins(&self.runtime).map_err(ServiceError::Invalid)?;
        self.check_transforms(&source).await?;
        let secrets = if source.secrets.is_empty() && replace {
            None
        } else {
            Some(
                source
                    .resolved_secrets(&candidate.base_dir)
                    .map_err(ServiceError::Invalid)?,
            )
        };
        let stored = source.stored();
        let row = SourceRow {
            id: source.id.clone(),
            plugin: source.feed_label(),
            priority: source.priority,
            enabled: source.enabled,
            config: stored,
            updated_at: now_ms(),
            origin: "api".into(),
        };
        match secrets {
            Some(secrets) => self.store.upsert_source(&row, &secrets)?,
            // Secrets are write-only: a replacement without them keeps the stored ones.
            None => self.store.update_source_keeping_secrets(&row)?,
        }
        self.reload_config()
    }

    /// Source `id`'s transform chain over its mirror or `sample`, each record before, after each
    /// step (with the rule that decided) and after; with `transforms`, that draft chain instead
    /// of the stored one, refused as a save would refuse it (the step and the transform's own
    /// error, e.g. a mapping's line and column). Writes nothing.
    pub async fn preview_chain(
        &self,
        id: &str,
        transforms: Option<Vec<roster_directory::TransformConfig>>,
        sample: Option<roster_directory::Sample>,
    ) -> Result<roster_directory::transform::Traces, ServiceError> {
        let mut source = self
            .config()
            .sources
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("no source named '{id}'; see GET /api/v1/sources")))?;
        let runner = self.runner();
        let Some(transforms) = transforms else {
            return Ok(runner.preview(id, sample).await?);
        };
        if let Some(step) = transforms.iter().find(|t| t.settings_file.is_some()) {
            return Err(ServiceError::Invalid(format!(
                "transform '{}': a draft gives its settings inline (`settings`), not a `settings_file`",
                step.plugin
            )));
        }
        source.transforms = transforms;
        self.check_transforms(&source).await?;
        Ok(runner.preview_draft(&source, sample).await?)
    }

    /// Tries each transform step of `source` with its settings; the first refusal, named.
    async fn check_transforms(&self, source: &SourceConfig) -> Result<(), ServiceError> {
        for (i, step) in source.transforms.iter().enumerate() {
            let named = |e: String| {
                ServiceError::Invalid(format!(
                    "transform step {} ({}) refused its settings: {e}",
                    i + 1,
                    step.plugin
                ))
            };
            let mut job = self
                .runtime
                .job(&step.plugin, step.limits.clone(), roster_runtime::SourceAccess::none())
                .await
                .map_err(|e| named(e.to_string()))?;
            roster_directory::transform::accepts(&mut job, &step.settings.to_string())
                .await
                .map_err(named)?;
        }
        Ok(())
    }

    /// Deletes a source defined through the API, with its mirror.
    pub fn delete_source(&self, id: &str) -> Result<(), ServiceError> {
        match self.store.source(id)? {
            None => Err(ServiceError::NotFound(format!("no source named '{id}'"))),
            Some(r) if r.origin == "file" => Err(ServiceError::Conflict(format!(
                "source '{id}' is defined in roster.toml; remove it there"
            ))),
            Some(_) => {
                if self.runs.busy().is_some() {
                    return Err(ServiceError::Conflict(
                        "a run is in progress; delete the source when it has ended".into(),
                    ));
                }
                self.store.delete_source(id)?;
                self.reload_config()
            }
        }
    }
}

impl push::Runs for Service {
    fn timing(&self, source: &str) -> Option<push::Timing> {
        // Read in place: the worker asks for every pending source each time it wakes.
        let config = self.config.read().unwrap_or_else(|p| p.into_inner());
        let s = config.sources.iter().find(|s| s.id == source && s.enabled)?;
        match s.feed() {
            Feed::Push(p) => Some(push::Timing::of(p)),
            Feed::Pull(_) => None,
        }
    }

    fn busy(&self) -> bool {
        self.runs.busy().is_some()
    }

    fn start(self: &Arc<Self>, sources: &[String]) -> Result<i64, push::Refused> {
        let req = RunRequest {
            sources: sources.to_vec(),
            mode: RequestedMode::Incremental,
            trigger: Trigger::Push,
            actor: "push".into(),
            origin: String::new(),
            target: None,
        };
        match self.start_run(req) {
            Ok(id) => {
                self.metrics.observe_push_run();
                Ok(id)
            }
            // A run holds the target (the other conflict, no target, is not worth waiting for).
            Err(ServiceError::Conflict(_)) if self.runner().engine().is_ok() => Err(push::Refused::Busy),
            Err(e) => Err(push::Refused::Failed(e.to_string())),
        }
    }
}
