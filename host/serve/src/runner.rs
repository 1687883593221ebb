//! What a run is: the directory's fetch, transform and merge, then the engine's reconcile,
//! under the target's lock, recorded in the `runs` table with its summary. The CLI and the
//! service both run through a [`Runner`]; the scheduler and the API through the service.
//!
//! With several targets, one sync fetches and merges the directory once, then reconciles each
//! target in turn (configuration order), each with its own run record, lock, plan, guard verdict
//! and summary: a target whose plan is held, refused or fails does not stop the others.
//!
//! Without a target, the directory still works: `check`, `fetch`, `preview` and `why` need
//! none; what writes answers with how to define one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use roster_directory::{
    Among, CheckReport, Directory, DirectoryError, FetchMode, FetchReport, Sample, SourceConfig, UserKey,
    transform::Traces,
};
use roster_engine::{
    Applied, Drift, Engine, EngineError, Eta, PlannedOp, Reconcile, Reconciled, Scope, Skipped, TargetKinds, Verdict,
    WhileHeld, Writes,
};
use roster_http::Settled;
use roster_model::{Progress, RunMode, RunState, Trigger};
use roster_runtime::Runtime;
use roster_store::{PlanRow, Store, StoreError, TargetLock};
use serde::Serialize;

use crate::config::{Config, NO_TARGET};

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The directory failed (a transform as a whole, a source's configuration).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The engine failed (the target could not be read, a plan cannot be applied).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The configuration is unusable (no target, a target that cannot be built).
    #[error("{0}")]
    Config(String),
    /// The part a sync shares between its targets (fetch, transform, merge) failed; the first
    /// target's run carries the error itself, the others this account of it.
    #[error("{0}")]
    Shared(String),
    /// What was asked for does not exist (a user no source has).
    #[error("{0}")]
    NotFound(String),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Sources to fetch (empty: every enabled source). The plan always covers all sources.
    pub sources: Vec<String>,
    /// Full, or from each source's delta token where it has one.
    pub fetch: FetchMode,
    /// Apply, or plan only.
    pub writes: Writes,
    /// What started the run.
    pub trigger: Trigger,
    /// Who (for the audit log).
    pub actor: String,
    /// From where, for the audit log: the caller's address; empty for this machine (`local`).
    pub origin: String,
    /// Only this target (its id); none: every target, in configuration order.
    pub target: Option<String>,
    /// Run records created beforehand, by target id (the API answers with their ids before the
    /// runs start); a target without one gets its record when the sync starts.
    pub run_ids: BTreeMap<String, i64>,
}

impl Default for SyncOptions {
    /// A full sync of every source, applied, from the command line.
    fn default() -> Self {
        SyncOptions::new(Trigger::Cli, "")
    }
}

impl SyncOptions {
    /// A full sync of every source, applied, started by `trigger` on behalf of `actor`.
    pub fn new(trigger: Trigger, actor: &str) -> SyncOptions {
        SyncOptions {
            sources: Vec::new(),
            fetch: FetchMode::Full,
            writes: Writes::Apply,
            trigger,
            actor: actor.to_string(),
            origin: String::new(),
            target: None,
            run_ids: BTreeMap::new(),
        }
    }

    /// Where the run was asked for, for the audit log.
    pub fn origin(&self) -> &str {
        roster_engine::or_local(&self.origin)
    }

    /// The mode a sync with these options records.
    pub fn mode(&self) -> RunMode {
        match (self.writes, self.fetch) {
            (Writes::DryRun, _) => RunMode::DryRun,
            (Writes::Apply, FetchMode::Incremental) => RunMode::Incremental,
            (Writes::Apply, FetchMode::Full) => RunMode::Full,
        }
    }
}

/// The run summary: counts per operation, time per stage, API calls per endpoint.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct Summary {
    /// Fetch results per source.
    pub fetch: Vec<FetchReport>,
    /// Planned operations by kind.
    pub planned: BTreeMap<String, usize>,
    /// Milliseconds per stage.
    pub stage_ms: BTreeMap<String, u64>,
    /// Target calls by endpoint.
    pub api_calls: BTreeMap<String, u64>,
    /// Total target calls.
    pub api_calls_total: u64,
    /// 429s received from the target.
    pub throttled: u64,
    /// What the target's adaptive concurrency limit settled on (`None`: a fixed limit).
    pub concurrency: Option<Settled>,
    /// Outcomes of applied operations.
    pub applied: Applied,
    /// The guard's verdict.
    pub guard: Option<Verdict>,
    /// Left alone on purpose.
    pub skipped: Vec<Skipped>,
    /// Collisions with accounts Roster does not own.
    pub collisions: Vec<Skipped>,
    /// Everything else worth knowing.
    pub warnings: Vec<String>,
    /// When the plan is done, for a target that meters calls (`None`: it does not).
    pub eta: Option<Eta>,
    /// Changes made by hand in the target to what Roster manages, and what the run did about
    /// each (the target's `drift` policy).
    pub drift: Vec<Drift>,
    /// Peak resident memory of this process so far, in MiB (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
    /// The run whose fetch and merge this run planned from, when it is another (a sync of
    /// several targets fetches once, in its first run).
    pub directory_from_run: Option<i64>,
}

impl Summary {
    /// The summary of a run that ended on an error before it could make one.
    pub fn failed(error: &str) -> Summary {
        Summary {
            warnings: vec![error.to_string()],
            ..Summary::default()
        }
    }

    /// The summary as stored.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Takes in the engine's part of a run.
    fn absorb(&mut self, r: &mut Reconciled) {
        self.planned = std::mem::take(&mut r.planned);
        self.stage_ms.append(&mut r.stage_ms);
        self.api_calls_total = r.calls.by_endpoint.values().sum();
        self.api_calls = std::mem::take(&mut r.calls.by_endpoint);
        self.throttled = r.calls.throttled;
        self.concurrency = r.calls.concurrency;
        self.applied = r.applied;
        self.guard = Some(r.verdict.clone());
        self.skipped = std::mem::take(&mut r.skipped);
        self.collisions = std::mem::take(&mut r.collisions);
        self.warnings.append(&mut r.warnings);
        self.eta = r.eta;
        self.drift = std::mem::take(&mut r.drift);
    }
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Run id.
    pub run_id: i64,
    /// The target it reconciled (empty for a fetch without a target).
    pub target: String,
    /// How it ended.
    pub state: RunState,
    /// The plan.
    pub plan_id: Option<String>,
    /// Its hash.
    pub plan_hash: Option<String>,
    /// The summary.
    pub summary: Summary,
}

/// Whether the engine stopped because the target's read was answered 429.
fn throttled_read(e: &EngineError) -> bool {
    matches!(e, EngineError::Read { error, .. } if error.status == Some(429))
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Where each run of a sync reports its progress: a sync of several targets makes one run per
/// target, and each shows its own stages and ETA. Any [`Progress`] serves every run.
pub trait Progresses: Sync {
    /// The progress of run `run_id`.
    fn of(&self, run_id: i64) -> &dyn Progress;
    /// Run `run_id` has ended (its record is final); the sync goes on with the next target.
    fn ended(&self, _run_id: i64) {}
}

impl<P: Progress> Progresses for P {
    fn of(&self, _run_id: i64) -> &dyn Progress {
        self
    }
}

/// Every run reports to one progress (a caller holding a `&dyn Progress`).
struct Shared<'a>(&'a dyn Progress);

impl Progresses for Shared<'_> {
    fn of(&self, _run_id: i64) -> &dyn Progress {
        self.0
    }
}

/// One run of a sync: its id, and its report or why it failed.
pub type TargetRun = (i64, Result<RunReport, RunError>);

/// A run that holds its target, waiting for its turn.
struct Turn<'a> {
    engine: &'a Engine,
    run_id: i64,
    lock: TargetLock,
}

/// The directory and, for each target defined, its engine, for one configuration.
pub struct Runner {
    store: Arc<Store>,
    config: Config,
    directory: Directory,
    engines: Vec<Engine>,
}

impl Runner {
    /// Stores the configuration's sources (secrets sealed) and builds each target of the kind
    /// it names.
    pub fn new(store: Arc<Store>, runtime: Runtime, config: Config, kinds: &TargetKinds) -> Result<Runner, RunError> {
        let directory = Directory::new(
            store.clone(),
            runtime,
            config.sources.clone(),
            &config.base_dir,
            config.attribute_priority(),
        )?;
        let engines = config
            .targets
            .iter()
            .map(|t| {
                let target = kinds
                    .get(&t.kind)
                    .and_then(|k| k.build(t, &config.base_dir, roster_engine::Patience::Run, &store))
                    .map_err(RunError::Config)?;
                Ok(Engine::new(store.clone(), target, t.clone()))
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        Ok(Runner {
            store,
            config,
            directory,
            engines,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The first target's engine (the only one, in most configurations), or what to do when no
    /// target is defined.
    pub fn engine(&self) -> Result<&Engine, RunError> {
        self.engines.first().ok_or_else(|| RunError::Config(NO_TARGET.into()))
    }

    /// Every target's engine, in configuration order.
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// The engine of the target with this id.
    pub fn engine_named(&self, id: &str) -> Result<&Engine, RunError> {
        self.engine()?;
        self.engines.iter().find(|e| e.policy().id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.engines.iter().map(|e| e.policy().id.as_str()).collect();
            RunError::NotFound(format!("no target named '{id}' (targets: {})", ids.join(", ")))
        })
    }

    /// The engines a run covers: the one named, else every one.
    pub fn selected(&self, target: Option<&str>) -> Result<Vec<&Engine>, RunError> {
        match target {
            Some(id) => Ok(vec![self.engine_named(id)?]),
            None => {
                self.engine()?;
                Ok(self.engines.iter().collect())
            }
        }
    }

    /// The first target's id, or empty without a target: a fetch run is recorded with it, and
    /// holds its lock (every sync holds it too, so a fetch never runs beside one).
    fn target_id(&self) -> &str {
        self.engines.first().map_or("", |e| e.policy().id.as_str())
    }

    /// Claims `target` for run `run_id` against every other run, in this process or another
    /// sharing the database; a refused run is recorded as such, naming the run in progress.
    fn hold(&self, target: &str, run_id: i64, trigger: Trigger, actor: &str) -> Result<TargetLock, RunError> {
        let holder = format!("run {run_id} ({trigger}, by {actor})");
        // A killed run left `running` is closed before this one takes its place.
        match self.store.interrupt_orphans() {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(
                        run_id = id,
                        "run {id} was interrupted: its process ended before the run did"
                    );
                }
            }
            Err(e) => tracing::warn!("cannot look for interrupted runs: {e}"),
        }
        self.store.hold_target(target, &holder).map_err(|e| {
            let _ = self.store.finish_run(
                run_id,
                RunState::Refused,
                None,
                &Summary::failed(&e.to_string()).to_json(),
                Some(&e.to_string()),
            );
            RunError::Store(e)
        })
    }

    /// Creates (or takes from `opts`) a run record per engine, then claims each target; a
    /// target held by another run is recorded refused and left out of the turns.
    fn claim<'a>(
        &self,
        engines: Vec<&'a Engine>,
        opts: &SyncOptions,
        mode: RunMode,
        sources: &[String],
        ended: &mut Vec<TargetRun>,
    ) -> Result<Vec<Turn<'a>>, RunError> {
        let mut ids = Vec::new();
        for engine in &engines {
            let id = &engine.policy().id;
            let run_id = match opts.run_ids.get(id) {
                Some(run_id) => *run_id,
                None => self.store.create_run(opts.trigger, mode, id, sources)?,
            };
            ids.push(run_id);
        }
        let mut turns = Vec::new();
        for (engine, run_id) in engines.into_iter().zip(ids) {
            match self.hold(&engine.policy().id, run_id, opts.trigger, &opts.actor) {
                Ok(lock) => turns.push(Turn { engine, run_id, lock }),
                Err(e) => ended.push((run_id, Err(e))),
            }
        }
        Ok(turns)
    }

    fn fail(&self, run_id: i64, e: RunError) -> RunError {
        let summary = Summary::failed(&e.to_string()).to_json();
        if let Err(store) = self
            .store
            .finish_run(run_id, RunState::Failed, None, &summary, Some(&e.to_string()))
        {
            return store.into();
        }
        e
    }

    /// Fails every run of `turns` on an error of the part they share: the first carries the
    /// error, the others an account of it.
    fn fail_all(&self, turns: Vec<Turn<'_>>, e: RunError, ended: &mut Vec<TargetRun>) {
        let mut e = Some(e);
        let first = turns.first().map(|t| t.run_id);
        for t in turns {
            let err = match e.take() {
                Some(e) => e,
                None => RunError::Shared(format!(
                    "run {} could not read the directory, so nothing was planned for this target",
                    first.unwrap_or_default()
                )),
            };
            ended.push((t.run_id, Err(self.fail(t.run_id, err))));
        }
    }

    fn finish(
        &self,
        run_id: i64,
        state: RunState,
        plan_id: Option<&str>,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        summary.peak_rss_mib = peak_rss_mib();
        let json = summary.to_json();
        let error = matches!(state, RunState::Failed).then(|| summary.warnings.join("; "));
        self.store.finish_run(run_id, state, plan_id, &json, error.as_deref())?;
        Ok(())
    }

    /// A sync of one target (the one `opts` names, or the only one): fetch, transform, merge,
    /// then read, plan, guard and apply. With several targets and none named, use
    /// [`Runner::sync_each`].
    pub async fn sync(&self, opts: &SyncOptions, progress: &dyn Progress) -> Result<RunReport, RunError> {
        if opts.target.is_none() && self.engines.len() > 1 {
            return Err(RunError::Config(self.several()));
        }
        let mut runs = self.sync_each(opts, &Shared(progress)).await?;
        runs.pop()
            .map_or_else(|| Err(RunError::Config(NO_TARGET.into())), |(_, r)| r)
    }

    /// What to say when one target was expected and there are several.
    fn several(&self) -> String {
        let ids: Vec<&str> = self.engines.iter().map(|e| e.policy().id.as_str()).collect();
        format!(
            "several targets are defined ({}); name one (--target ID)",
            ids.join(", ")
        )
    }

    /// A sync of every target (or the one `opts` names): the sources are fetched and merged
    /// once, then each target is reconciled in turn under its own lock, with its own run. The
    /// error is for what stops every run before any is recorded (an unknown source or target);
    /// after that each run answers for itself, in configuration order.
    pub async fn sync_each(&self, opts: &SyncOptions, progress: &dyn Progresses) -> Result<Vec<TargetRun>, RunError> {
        let engines = self.selected(opts.target.as_deref())?;
        let to_fetch = self.directory.wanted(&opts.sources, Among::Enabled)?;
        let mut ended = Vec::new();
        let turns = self.claim(engines, opts, opts.mode(), &to_fetch, &mut ended)?;
        let Some(first) = turns.first().map(|t| t.run_id) else {
            return Ok(ended);
        };
        let mut shared = Summary::default();
        let fetched = self
            .fetch_stage(first, &to_fetch, opts.fetch, &mut shared, progress.of(first))
            .await;
        let incomplete = match fetched {
            Fetched::Planable(incomplete) => incomplete,
            Fetched::Ended(state, error) => {
                for t in turns {
                    let summary = self.own_summary(&shared, first, t.run_id);
                    let r = self.ended(t.engine, t.run_id, state, summary, error.as_deref());
                    ended.push((t.run_id, r));
                }
                return Ok(ended);
            }
        };
        let mut desired = match self.directory.desired(&mut shared.stage_ms).await {
            Ok(d) => d,
            Err(e) => {
                self.fail_all(turns, e.into(), &mut ended);
                return Ok(ended);
            }
        };
        shared.warnings.append(&mut desired.warnings);
        for t in turns {
            let summary = self.own_summary(&shared, first, t.run_id);
            let result = self
                .reconcile_everyone(&t, opts, &incomplete, desired.clone(), summary, progress.of(t.run_id))
                .await;
            drop(t.lock);
            let result = result.map_err(|e| self.fail(t.run_id, e));
            progress.ended(t.run_id);
            ended.push((t.run_id, result));
        }
        Ok(ended)
    }

    /// A run's own summary from what the sync shared: the run that fetched keeps the fetch;
    /// the others point to it.
    fn own_summary(&self, shared: &Summary, first: i64, run_id: i64) -> Summary {
        if run_id == first {
            return shared.clone();
        }
        // The fetch reports stay with the run that fetched (metrics and source successes count
        // them once); the warnings concern every plan made from what was fetched.
        Summary {
            directory_from_run: Some(first),
            warnings: shared.warnings.clone(),
            ..Summary::default()
        }
    }

    async fn fetch_stage(
        &self,
        run_id: i64,
        wanted: &[String],
        mode: FetchMode,
        summary: &mut Summary,
        progress: &dyn Progress,
    ) -> Fetched {
        let incomplete = self.fetch_only(run_id, wanted, mode, summary, progress).await;
        if progress.cancelled() {
            summary
                .warnings
                .push("the run was cancelled while fetching; nothing was planned or written".into());
            return Fetched::Ended(RunState::Cancelled, Some("cancelled".into()));
        }
        if !summary.fetch.is_empty() && incomplete.len() == summary.fetch.len() {
            // Nothing new is known: planning from the old mirrors would only repeat the last
            // run. The run fails, naming each source's reason, and writes nothing.
            let reasons: Vec<String> = summary
                .fetch
                .iter()
                .map(|f| {
                    format!(
                        "source '{}': fetch: {}",
                        f.source,
                        f.error.as_deref().unwrap_or("incomplete")
                    )
                })
                .collect();
            // The warnings hold each source's reason already; the run's error repeats them,
            // since it is what alerts and the API show.
            summary
                .warnings
                .push("no source could be read; nothing was planned or written".into());
            let error = format!(
                "no source could be read, so nothing was planned or written: {}",
                reasons.join("; ")
            );
            return Fetched::Ended(RunState::Failed, Some(error));
        }
        Fetched::Planable(incomplete)
    }

    async fn fetch_only(
        &self,
        run_id: i64,
        wanted: &[String],
        mode: FetchMode,
        summary: &mut Summary,
        progress: &dyn Progress,
    ) -> Vec<String> {
        let t = Instant::now();
        summary.fetch = self.directory.fetch(run_id, wanted, mode, progress).await;
        for f in &summary.fetch {
            if let Some(e) = &f.error {
                summary.warnings.push(format!(
                    "source '{}': fetch: {e}; the fetch did not complete and the mirror keeps its last complete state",
                    f.source
                ));
            }
            if let Some(why) = &f.fell_back {
                summary.warnings.push(format!("'{}': {why}", f.source));
            }
            for w in &f.warnings {
                summary.warnings.push(format!("'{}': {w}", f.source));
            }
        }
        summary.stage_ms.insert("fetch".into(), ms(t));
        summary
            .fetch
            .iter()
            .filter(|f| !f.complete)
            .map(|f| f.source.clone())
            .collect()
    }

    async fn reconcile_everyone(
        &self,
        turn: &Turn<'_>,
        opts: &SyncOptions,
        incomplete: &[String],
        desired: roster_model::Desired,
        summary: Summary,
        progress: &dyn Progress,
    ) -> Result<RunReport, RunError> {
        let (engine, run_id) = (turn.engine, turn.run_id);
        let reconciled = engine
            .reconcile(
                &Reconcile {
                    run_id,
                    writes: opts.writes,
                    actor: &opts.actor,
                    incomplete,
                    scope: Scope::Everyone,
                    while_held: if opts.trigger == Trigger::Push {
                        WhileHeld::ApplyTheRest
                    } else {
                        WhileHeld::Replan
                    },
                },
                desired,
                progress,
            )
            .await;
        let r = match reconciled {
            Ok(r) => r,
            Err(e) if opts.writes == Writes::Apply && throttled_read(&e) => {
                return self.paused_before_planning(run_id, engine, &e, summary);
            }
            Err(e) => return Err(e.into()),
        };
        let detail = format!("{}; plan {}", r.state, r.plan_id);
        self.reconciled(
            engine,
            run_id,
            r,
            summary,
            opts,
            ("sync.run", &format!("run {run_id}"), &detail),
        )
    }

    /// Records a run the engine reconciled: its summary, its end, and the audit entry
    /// `(action, subject, detail)`.
    fn reconciled(
        &self,
        engine: &Engine,
        run_id: i64,
        mut r: Reconciled,
        mut summary: Summary,
        opts: &SyncOptions,
        (action, subject, detail): (&str, &str, &str),
    ) -> Result<RunReport, RunError> {
        summary.absorb(&mut r);
        self.finish(run_id, r.state, Some(&r.plan_id), &mut summary)?;
        self.store
            .audit(&opts.actor, opts.origin(), action, subject, Some(detail))?;
        Ok(RunReport {
            run_id,
            target: engine.policy().id.clone(),
            state: r.state,
            plan_id: Some(r.plan_id),
            plan_hash: Some(r.plan_hash),
            summary,
        })
    }

    /// Records a run whose read of the target was answered 429 (throttled past the retries, its
    /// call budget still spent): nothing was planned or written, and nothing is wrong either —
    /// like a run that paused while applying, it ends `paused` and the next run goes on.
    fn paused_before_planning(
        &self,
        run_id: i64,
        engine: &Engine,
        e: &EngineError,
        mut summary: Summary,
    ) -> Result<RunReport, RunError> {
        let next = match self.store.paused_run(&engine.policy().id)? {
            Some(p) => format!("the next run continues plan {}", p.plan_id),
            None => "the next run reads it again".into(),
        };
        summary.warnings.push(format!("paused: {e}; {next}"));
        self.ended(engine, run_id, RunState::Paused, summary, None)
    }

    /// Records a run that ended before planning (cancelled, nothing readable).
    fn ended(
        &self,
        engine: &Engine,
        run_id: i64,
        state: RunState,
        summary: Summary,
        error: Option<&str>,
    ) -> Result<RunReport, RunError> {
        self.ended_as(&engine.policy().id, run_id, state, summary, error)
    }

    fn ended_as(
        &self,
        target: &str,
        run_id: i64,
        state: RunState,
        mut summary: Summary,
        error: Option<&str>,
    ) -> Result<RunReport, RunError> {
        summary.peak_rss_mib = peak_rss_mib();
        self.store.finish_run(run_id, state, None, &summary.to_json(), error)?;
        Ok(RunReport {
            run_id,
            target: target.to_string(),
            state,
            plan_id: None,
            plan_hash: None,
            summary,
        })
    }

    /// Fetches sources into their mirrors without planning or writing (`roster fetch`): what
    /// the identity providers say now, and how long reading them takes. Needs no target.
    pub async fn fetch(&self, opts: &SyncOptions, progress: &dyn Progress) -> Result<RunReport, RunError> {
        let wanted = self.directory.wanted(&opts.sources, Among::Enabled)?;
        let mode = match opts.fetch {
            FetchMode::Incremental => RunMode::FetchIncremental,
            FetchMode::Full => RunMode::Fetch,
        };
        let target = self.target_id();
        let run_id = self.store.create_run(opts.trigger, mode, target, &wanted)?;
        let _lock = self.hold(target, run_id, opts.trigger, &opts.actor)?;
        let mut summary = Summary::default();
        let incomplete = self
            .fetch_only(run_id, &wanted, opts.fetch, &mut summary, progress)
            .await;
        let (state, error) = if incomplete.is_empty() {
            (RunState::Succeeded, None)
        } else {
            let errors: Vec<String> = summary
                .fetch
                .iter()
                .filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.source)))
                .collect();
            (RunState::Failed, Some(errors.join("; ")))
        };
        self.ended_as(target, run_id, state, summary, error.as_deref())
    }

    /// Asks each source's connector whether it can work. Needs no target.
    pub async fn check(&self, sources: &[String]) -> Result<Vec<CheckReport>, RunError> {
        Ok(self.directory.check(sources).await?)
    }

    /// Checks a served person's password at the first of their sources that can verify
    /// passwords (the Crowd endpoint's `POST /authentication`). Needs no target.
    pub async fn verify_password(
        &self,
        records: &[roster_model::Record],
        username: &str,
        password: &str,
    ) -> roster_directory::PasswordOutcome {
        self.directory.verify_password(records, username, password).await
    }

    /// A source's transform chain over sample records or its mirror. Needs no target.
    pub async fn preview(&self, source: &str, sample: Option<Sample>) -> Result<Traces, RunError> {
        Ok(self.directory.preview(source, sample).await?)
    }

    /// [`Runner::preview`] of a draft of a configured source (its chain edited, not stored).
    pub async fn preview_draft(&self, draft: &SourceConfig, sample: Option<Sample>) -> Result<Traces, RunError> {
        Ok(self.directory.preview_of(draft, sample).await?)
    }

    /// Why `user` is (or is not) to be a member of `group`. Needs no target (with targets,
    /// their default groups count).
    pub async fn why(&self, user: &str, group: &str) -> Result<String, RunError> {
        Ok(self.directory.why(user, group, &self.config.default_groups()).await?)
    }

    /// The stored operations of a plan, checked against its hash.
    pub fn plan_ops(&self, plan_id: &str) -> Result<(PlanRow, Vec<PlannedOp>), RunError> {
        Ok(roster_engine::stored_plan(&self.store, plan_id)?)
    }

    /// The engine of the target a plan was made for.
    fn engine_of_plan(&self, plan_id: &str) -> Result<&Engine, RunError> {
        self.engine()?;
        let plan = self.store.plan(plan_id)?;
        self.engines
            .iter()
            .find(|e| e.policy().id == plan.target)
            .ok_or_else(|| {
                RunError::Config(format!(
                    "plan {plan_id} is for the target '{}', which is no longer defined; define it again to approve or reject the plan",
                    plan.target
                ))
            })
    }

    /// Rejects a held or draft plan; `origin` as in [`SyncOptions::origin`].
    pub fn reject(&self, plan_id: &str, actor: &str, origin: &str) -> Result<(), RunError> {
        Ok(self.engine_of_plan(plan_id)?.reject(plan_id, actor, origin)?)
    }

    /// Approves a held plan and applies exactly its operations, to the plan's target only.
    /// `hash` must be the hash the approver reviewed; the licence is checked again against the
    /// target's state now.
    pub async fn approve(
        &self,
        plan_id: &str,
        hash: &str,
        actor: &str,
        origin: &str,
        progress: &dyn Progress,
    ) -> Result<RunReport, RunError> {
        let engine = self.engine_of_plan(plan_id)?;
        let (plan, ops) = engine.approvable(plan_id, hash)?;
        let target = &engine.policy().id;
        let run_id = self
            .store
            .create_run(Trigger::Approval, RunMode::ApplyPlan, target, &[])?;
        let _lock = self.hold(target, run_id, Trigger::Approval, actor)?;
        let mut r = match engine
            .apply_approved(run_id, &plan, &ops, actor, origin, progress)
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.fail(run_id, e.into())),
        };
        let mut summary = Summary::default();
        summary.absorb(&mut r);
        self.finish(run_id, r.state, Some(plan_id), &mut summary)?;
        Ok(RunReport {
            run_id,
            target: target.clone(),
            state: r.state,
            plan_id: Some(plan_id.into()),
            plan_hash: Some(plan.hash),
            summary,
        })
    }

    /// Single-user sync of one target (the one `opts` names, or the only one); with several
    /// and none named, use [`Runner::sync_user_each`].
    pub async fn sync_user(
        &self,
        key: &UserKey,
        opts: &SyncOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, RunError> {
        if opts.target.is_none() && self.engines.len() > 1 {
            return Err(RunError::Config(self.several()));
        }
        let mut runs = self.sync_user_each(key, opts, &Shared(progress)).await?;
        runs.pop()
            .map_or_else(|| Err(RunError::Config(NO_TARGET.into())), |(_, r)| r)
    }

    /// Single-user sync (provision on demand, the hook a login flow calls): an incremental
    /// fetch, then the person's desired state, then for each target (or the one named) a read,
    /// a plan and an apply restricted to them — their account, their groups, the groups that
    /// license — in seconds, whatever the size of the directory or of the target. The
    /// restriction is what keeps it safe: the plan only ever sees this person's identities and
    /// memberships, so it cannot touch anyone else.
    pub async fn sync_user_each(
        &self,
        key: &UserKey,
        opts: &SyncOptions,
        progress: &dyn Progresses,
    ) -> Result<Vec<TargetRun>, RunError> {
        if key.id.is_none() && key.username.is_none() {
            return Err(RunError::Config("give the user's `id` or `username`".into()));
        }
        let engines = self.selected(opts.target.as_deref())?;
        let wanted = match &key.source {
            Some(s) => self.directory.wanted(std::slice::from_ref(s), Among::Enabled)?,
            None => self.directory.wanted(&[], Among::Enabled)?,
        };
        let mut ended = Vec::new();
        let turns = self.claim(engines, opts, RunMode::SingleUser, &wanted, &mut ended)?;
        let Some(first) = turns.first().map(|t| t.run_id) else {
            return Ok(ended);
        };
        let mut shared = Summary::default();
        let incomplete = self
            .fetch_only(first, &wanted, FetchMode::Incremental, &mut shared, progress.of(first))
            .await;
        for t in turns {
            let summary = self.own_summary(&shared, first, t.run_id);
            let result = self
                .sync_user_stages(&t, key, &incomplete, opts, summary, progress.of(t.run_id))
                .await;
            drop(t.lock);
            ended.push((t.run_id, result.map_err(|e| self.fail(t.run_id, e))));
            progress.ended(t.run_id);
        }
        Ok(ended)
    }

    async fn sync_user_stages(
        &self,
        turn: &Turn<'_>,
        key: &UserKey,
        incomplete: &[String],
        opts: &SyncOptions,
        mut summary: Summary,
        progress: &dyn Progress,
    ) -> Result<RunReport, RunError> {
        let (engine, run_id) = (turn.engine, turn.run_id);
        let found = self
            .directory
            .desired_for(key, &engine.policy().id, &mut summary.stage_ms)
            .await?;
        let Some((person, desired)) = found else {
            return Err(RunError::NotFound(format!(
                "no user {} in the sources{}",
                key.id.as_deref().or(key.username.as_deref()).unwrap_or_default(),
                if incomplete.is_empty() {
                    ""
                } else {
                    " (a fetch did not complete; see the run)"
                }
            )));
        };
        let r = engine
            .reconcile(
                &Reconcile {
                    run_id,
                    writes: Writes::Apply,
                    actor: &opts.actor,
                    incomplete,
                    scope: Scope::Person(&person),
                    while_held: WhileHeld::Replan,
                },
                desired,
                progress,
            )
            .await?;
        let detail = format!("run {run_id}: {}", r.state);
        self.reconciled(engine, run_id, r, summary, opts, ("sync.user", &person, &detail))
    }
}

/// What the fetch left a sync to do.
enum Fetched {
    /// Plan, knowing these sources' fetches did not complete.
    Planable(Vec<String>),
    /// Nothing: the run ends in this state (cancelled; nothing readable), with this error.
    Ended(RunState, Option<String>),
}
