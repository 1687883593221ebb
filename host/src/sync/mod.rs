//! The sync engine: fetch → transform → merge → read target → plan → guard → apply → record.
//!
//! One module per stage; this file drives them. Nothing here knows a vendor: identity providers
//! are plugins, and the target is reached through `targets::bitbucket_dc`.
//!
//! Rules enforced here (design.md "rules that never bend"): a fetch that did not complete never
//! leads to a deletion, deactivation or removal (1); a plan over the threshold is held until that
//! exact plan is approved (2); a plan over the licence is refused (3); protected accounts and
//! groups are never changed (4); a second run in a row makes zero writes (5).

pub mod apply;
pub mod fetch;
pub mod guard;
pub mod merge;
pub mod model;
pub mod plan;
pub mod read;
pub mod single;
pub mod transform;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Config, TargetConfig};
use crate::runtime::{Runtime, SourceAccess};
use crate::store::{IdentityState, PlanRow, SourceRow, Store, StoreError, now_ms};
use crate::targets::bitbucket_dc::{BbError, BitbucketDc, ClientConfig};
use model::{PlannedOp, Skipped};

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Bitbucket failed while reading its state.
    #[error(transparent)]
    Target(#[from] BbError),
    /// A transform failed as a whole (not one record).
    #[error("source '{id}': transform failed: {detail}")]
    Transform {
        /// Source id.
        id: String,
        /// What failed.
        detail: String,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// A plan cannot be approved or applied.
    #[error("{0}")]
    Plan(String),
    /// What was asked for does not exist (a user no source has).
    #[error("{0}")]
    NotFound(String),
}

/// Progress of long stages, for progress bars and the API.
pub trait Progress: Send + Sync {
    /// A stage starts; `total` is 0 when unknown.
    fn stage(&self, name: &str, total: u64);
    /// The stage's total became known.
    fn set_total(&self, total: u64);
    /// `n` more items done.
    fn advance(&self, n: u64);
    /// The stage ended.
    fn finish(&self);
    /// The run was asked to stop: no new page is fetched, no new operation applied.
    fn cancelled(&self) -> bool {
        false
    }
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn stage(&self, _: &str, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Sources to fetch (empty: every enabled source). The plan always covers all sources.
    pub sources: Vec<String>,
    /// Use each source's delta token when it has one.
    pub incremental: bool,
    /// Stop after the plan: no writes.
    pub dry_run: bool,
    /// What started the run (cli, api, schedule, …).
    pub trigger: String,
    /// Who (for the audit log).
    pub actor: String,
    /// From where, for the audit log: the caller's address; empty for this machine (`local`).
    pub origin: String,
    /// A run record created beforehand (the API answers with its id before the run starts).
    pub run_id: Option<i64>,
}

impl SyncOptions {
    /// Where the run was asked for, for the audit log.
    pub fn origin(&self) -> &str {
        or_local(&self.origin)
    }
}

/// `local` for an empty origin (this machine: the CLI, the scheduler).
fn or_local(origin: &str) -> &str {
    if origin.is_empty() { "local" } else { origin }
}

/// The run summary: counts per operation, time per stage, API calls per endpoint.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Fetch results per source.
    pub fetch: Vec<fetch::FetchReport>,
    /// Planned operations by kind.
    pub planned: BTreeMap<String, usize>,
    /// Milliseconds per stage.
    pub stage_ms: BTreeMap<String, u64>,
    /// Bitbucket calls by endpoint.
    pub api_calls: BTreeMap<String, u64>,
    /// Total Bitbucket calls.
    pub api_calls_total: u64,
    /// 429s received from Bitbucket.
    pub throttled: u64,
    /// Outcomes of applied operations.
    pub applied: apply::Applied,
    /// The guard's verdict.
    pub guard: Option<guard::Verdict>,
    /// Left alone on purpose.
    pub skipped: Vec<Skipped>,
    /// Collisions with accounts Roster does not own.
    pub collisions: Vec<Skipped>,
    /// Everything else worth knowing.
    pub warnings: Vec<String>,
    /// Peak resident memory of this process so far, in MiB (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
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
    /// succeeded, partial, planned (dry run), held, refused, failed.
    pub state: String,
    /// The plan.
    pub plan_id: Option<String>,
    /// Its hash.
    pub plan_hash: Option<String>,
    /// The summary.
    pub summary: Summary,
}

/// The engine for one configuration.
pub struct Engine {
    store: Arc<Store>,
    runtime: Runtime,
    config: Config,
    /// `config.target`, present by construction.
    target: TargetConfig,
    client: BitbucketDc,
    accesses: HashMap<String, Arc<SourceAccess>>,
}

/// Stores roster.toml's sources (secrets sealed), forgets the ones it no longer has, and
/// builds each source's host-side access. Needed before anything reads a source, with or
/// without a target.
pub fn register_sources(store: &Store, config: &Config) -> Result<HashMap<String, Arc<SourceAccess>>, SyncError> {
    let mut accesses = HashMap::new();
    for s in &config.sources {
        // Sources created through the API are stored by the API, secrets included.
        if s.origin == crate::config::DefinedIn::File {
            let secrets = config.resolved_secrets(s).map_err(SyncError::Config)?;
            let mut stored = serde_json::to_value(s).unwrap_or_default();
            if let Some(o) = stored.as_object_mut() {
                o.remove("secrets");
            }
            let row = SourceRow {
                id: s.id.clone(),
                plugin: s.plugin.clone(),
                priority: s.priority,
                enabled: s.enabled,
                config: stored,
                updated_at: now_ms(),
                origin: "file".into(),
            };
            store.upsert_source(&row, &secrets)?;
        }
        let files = s.files.as_ref().map(|f| config.base_dir.join(f));
        let access = SourceAccess::with_files(&s.id, s.network.clone(), store.source_secrets(&s.id)?, s.budget, files)
            .map_err(|e| SyncError::Config(format!("source '{}': {e}", s.id)))?;
        accesses.insert(s.id.clone(), access);
    }
    let ids: Vec<String> = config
        .sources
        .iter()
        .filter(|s| s.origin == crate::config::DefinedIn::File)
        .map(|s| s.id.clone())
        .collect();
    store.retain_sources(&ids)?;
    Ok(accesses)
}

/// sha256 over the ordered operations.
pub fn plan_hash(ops: &[PlannedOp]) -> String {
    /// Feeds serialised JSON straight into the hash: no copy of the whole plan in memory.
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.update(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    let _ = serde_json::to_writer(&mut w, ops);
    hex::encode(w.0.finalize())
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

impl Engine {
    /// Stores the configuration's sources (secrets sealed) and builds the target client; a
    /// configuration without a target is refused with what to do.
    pub fn new(store: Arc<Store>, runtime: Runtime, config: Config) -> Result<Engine, SyncError> {
        let accesses = register_sources(&store, &config)?;
        let target = config.target().map_err(SyncError::Config)?.clone();
        let client = BitbucketDc::new(ClientConfig {
            url: target.url.clone(),
            auth: config.target_auth(&target).map_err(SyncError::Config)?,
            budget: target.budget,
            max_retries: target.max_retries,
            timeout: Duration::from_secs(60),
        })?;
        Ok(Engine {
            store,
            runtime,
            config,
            target,
            client,
            accesses,
        })
    }

    /// The target this engine writes to.
    pub fn target(&self) -> &TargetConfig {
        &self.target
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One run.
    pub async fn sync(&self, opts: &SyncOptions, progress: &dyn Progress) -> Result<RunReport, SyncError> {
        let enabled: Vec<&crate::config::SourceConfig> = self.config.sources.iter().filter(|s| s.enabled).collect();
        let to_fetch = self.wanted_sources(&enabled, &opts.sources)?;
        let mode = match (opts.dry_run, opts.incremental) {
            (true, _) => "dry-run",
            (false, true) => "incremental",
            (false, false) => "full",
        };
        let target_id = self.target.id.clone();
        let run_id = match opts.run_id {
            Some(id) => id,
            None => self.store.create_run(&opts.trigger, mode, &target_id, &to_fetch)?,
        };
        let _lock = self.hold_target(run_id, &opts.trigger, &opts.actor)?;
        self.client.reset_counts();
        let result = self.run_stages(run_id, opts, &enabled, &to_fetch, progress).await;
        match result {
            Ok(report) => Ok(report),
            Err(e) => {
                let summary = serde_json::json!({"error": e.to_string()});
                self.store
                    .finish_run(run_id, "failed", None, &summary, Some(&e.to_string()))?;
                Err(e)
            }
        }
    }

    async fn run_stages(
        &self,
        run_id: i64,
        opts: &SyncOptions,
        enabled: &[&crate::config::SourceConfig],
        to_fetch: &[String],
        progress: &dyn Progress,
    ) -> Result<RunReport, SyncError> {
        let mut summary = Summary::default();
        let target_id = self.target.id.clone();

        self.fetch_sources(run_id, enabled, to_fetch, opts.incremental, &mut summary, progress)
            .await;
        let incomplete: Vec<String> = summary
            .fetch
            .iter()
            .filter(|f| !f.complete)
            .map(|f| f.source.clone())
            .collect();
        if progress.cancelled() {
            summary
                .warnings
                .push("the run was cancelled while fetching; nothing was planned or written".into());
            summary.peak_rss_mib = peak_rss_mib();
            let json = serde_json::to_value(&summary).unwrap_or_default();
            self.store
                .finish_run(run_id, "cancelled", None, &json, Some("cancelled"))?;
            return Ok(RunReport {
                run_id,
                state: "cancelled".into(),
                plan_id: None,
                plan_hash: None,
                summary,
            });
        }
        if !summary.fetch.is_empty() && incomplete.len() == summary.fetch.len() {
            // Nothing new is known: planning from the old mirrors would only repeat the last
            // run. The run fails, naming each source's reason, and writes nothing.
            return self.fetch_failed(run_id, summary);
        }

        let mut desired = self.desired(enabled, &mut summary.stage_ms).await?;
        summary.warnings.append(&mut desired.warnings);

        let t = Instant::now();
        let managed: BTreeSet<String> = self.store.managed_groups(&target_id)?.into_iter().collect();
        let mut interesting: BTreeSet<String> = desired.groups.keys().cloned().collect();
        interesting.extend(managed.iter().cloned());
        let target = read::read_target(&self.client, &interesting, self.target.concurrency).await?;
        summary.stage_ms.insert("read".into(), ms(t));

        let t = Instant::now();
        let identities = self.store.identities(&target_id)?;
        let mut draft = plan::plan(&plan::PlanInput {
            desired: &desired,
            target: &target,
            identities: &identities,
            managed: &managed,
            policy: &self.target,
            me: self.client.username(),
        });
        drop(desired);
        if !incomplete.is_empty() {
            let before = draft.ops.len();
            draft
                .ops
                .retain(|o| !o.op.is_deprovision() && !matches!(o.op, model::Op::RemoveMember { .. }));
            summary.warnings.push(format!(
                "incomplete fetch of {}: {} deletion, deactivation and removal operation(s) withheld this run",
                incomplete.join(", "),
                before - draft.ops.len()
            ));
        }
        for o in &draft.ops {
            *summary.planned.entry(o.op.kind().to_string()).or_default() += 1;
        }
        summary.skipped = std::mem::take(&mut draft.skipped);
        summary.collisions = std::mem::take(&mut draft.collisions);
        summary.stage_ms.insert("plan".into(), ms(t));

        let t = Instant::now();
        let managed_accounts = identities
            .iter()
            .filter(|i| {
                matches!(i.state, IdentityState::Active | IdentityState::Pending)
                    && target.users.contains_key(&i.username)
            })
            .map(|i| i.username.as_str())
            .collect::<BTreeSet<_>>()
            .len();
        let verdict = guard::judge(&draft.ops, &target, managed_accounts, &self.target.threshold);
        summary.stage_ms.insert("guard".into(), ms(t));
        drop(target);

        let hash = plan_hash(&draft.ops);
        let plan_id = format!("{run_id}-{}", &hash[..8]);
        let state = if verdict.refused.is_some() {
            "refused"
        } else if opts.dry_run {
            "draft"
        } else if verdict.held.is_some() {
            "held"
        } else {
            "approved"
        };
        self.save_plan(&plan_id, run_id, &hash, state, &verdict, &draft.ops)?;
        let refused = verdict.refused.clone();
        let held = verdict.held.clone();
        summary.guard = Some(verdict);
        let run_state = if let Some(why) = &refused {
            summary.warnings.push(format!("plan refused: {why}"));
            "refused"
        } else if progress.cancelled() {
            summary
                .warnings
                .push("the run was cancelled before applying; nothing was written".into());
            "cancelled"
        } else if opts.dry_run {
            "planned"
        } else if let Some(why) = &held {
            summary.warnings.push(format!("plan held: {why}"));
            "held"
        } else {
            self.apply_plan(run_id, &plan_id, &draft.ops, &opts.actor, &mut summary, progress)
                .await?;
            if summary.applied.cancelled > 0 {
                summary.warnings.push(format!(
                    "the run was cancelled: {} operation(s) not applied; the next run plans them again",
                    summary.applied.cancelled
                ));
                "cancelled"
            } else if summary.applied.failed > 0 || !incomplete.is_empty() {
                "partial"
            } else {
                "succeeded"
            }
        };
        self.finish(run_id, run_state, &plan_id, &mut summary)?;
        self.store.audit(
            &opts.actor,
            opts.origin(),
            "sync.run",
            &format!("run {run_id}"),
            Some(&format!("{run_state}; plan {plan_id}")),
        )?;
        Ok(RunReport {
            run_id,
            state: run_state.into(),
            plan_id: Some(plan_id),
            plan_hash: Some(hash),
            summary,
        })
    }

    /// The fetch stage: each wanted source into its mirror, reports and warnings into `summary`.
    async fn fetch_sources(
        &self,
        run_id: i64,
        enabled: &[&crate::config::SourceConfig],
        wanted: &[String],
        incremental: bool,
        summary: &mut Summary,
        progress: &dyn Progress,
    ) {
        let t = Instant::now();
        for s in enabled.iter().filter(|s| wanted.contains(&s.id)) {
            let access = self.accesses[&s.id].clone();
            let report =
                fetch::fetch_source(&self.runtime, &self.store, run_id, s, access, incremental, progress).await;
            if let Some(e) = &report.error {
                summary.warnings.push(format!(
                    "fetch of '{}' did not complete: {e}; the mirror keeps its last complete state",
                    s.id
                ));
            }
            if let Some(f) = &report.fell_back {
                summary.warnings.push(format!("'{}': {f}", s.id));
            }
            summary.fetch.push(report);
        }
        summary.stage_ms.insert("fetch".into(), ms(t));
    }

    fn fetch_failed(&self, run_id: i64, mut summary: Summary) -> Result<RunReport, SyncError> {
        let reasons: Vec<String> = summary
            .fetch
            .iter()
            .map(|f| format!("{}: {}", f.source, f.error.as_deref().unwrap_or("incomplete")))
            .collect();
        let error = format!(
            "no source could be read ({}); nothing was planned or written",
            reasons.join("; ")
        );
        summary.peak_rss_mib = peak_rss_mib();
        summary.warnings.push(error.clone());
        let json = serde_json::to_value(&summary).unwrap_or_default();
        self.store.finish_run(run_id, "failed", None, &json, Some(&error))?;
        Ok(RunReport {
            run_id,
            state: "failed".into(),
            plan_id: None,
            plan_hash: None,
            summary,
        })
    }

    /// Fetches sources into their mirrors without planning or writing (`roster fetch`): what
    /// the identity providers say now, and how long reading them takes.
    pub async fn fetch_only(&self, opts: &SyncOptions, progress: &dyn Progress) -> Result<RunReport, SyncError> {
        let enabled: Vec<&crate::config::SourceConfig> = self.config.sources.iter().filter(|s| s.enabled).collect();
        let wanted = self.wanted_sources(&enabled, &opts.sources)?;
        let mode = if opts.incremental { "fetch-incremental" } else { "fetch" };
        let run_id = self.store.create_run(&opts.trigger, mode, &self.target.id, &wanted)?;
        let _lock = self.hold_target(run_id, &opts.trigger, &opts.actor)?;
        let mut summary = Summary::default();
        self.fetch_sources(run_id, &enabled, &wanted, opts.incremental, &mut summary, progress)
            .await;
        summary.peak_rss_mib = peak_rss_mib();
        let state = if summary.fetch.iter().all(|f| f.complete) {
            "succeeded"
        } else {
            "failed"
        };
        let error = (state == "failed").then(|| {
            summary
                .fetch
                .iter()
                .filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.source)))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let json = serde_json::to_value(&summary).unwrap_or_default();
        self.store.finish_run(run_id, state, None, &json, error.as_deref())?;
        Ok(RunReport {
            run_id,
            state: state.into(),
            plan_id: None,
            plan_hash: None,
            summary,
        })
    }

    /// Asks each source's connector whether it can work (credentials, permissions, scope):
    /// `Ok(())` or the connector's reason, with the time it took.
    pub async fn check(&self, sources: &[String]) -> Result<Vec<CheckReport>, SyncError> {
        let all: Vec<&crate::config::SourceConfig> = self.config.sources.iter().collect();
        let wanted = self.wanted_sources(&all, sources)?;
        let mut out = Vec::new();
        for s in all.iter().filter(|s| wanted.contains(&s.id)) {
            let t = Instant::now();
            let access = self.accesses[&s.id].clone();
            let result = match self.runtime.job(&s.plugin, s.limits.clone(), access).await {
                Ok(mut job) => job.check(&s.settings.to_string()).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            out.push(CheckReport {
                source: s.id.clone(),
                plugin: s.plugin.clone(),
                ok: result.is_ok(),
                error: result.err(),
                ms: ms(t),
            });
        }
        Ok(out)
    }

    /// The named sources (all when none are named); an unknown name is an error.
    fn wanted_sources(
        &self,
        known: &[&crate::config::SourceConfig],
        named: &[String],
    ) -> Result<Vec<String>, SyncError> {
        for n in named {
            if !known.iter().any(|s| &s.id == n) {
                let enabled = if known.len() < self.config.sources.len() {
                    "enabled "
                } else {
                    ""
                };
                return Err(SyncError::NotFound(format!(
                    "no {enabled}source named '{n}'; see the configuration's [[source]] entries"
                )));
            }
        }
        Ok(if named.is_empty() {
            known.iter().map(|s| s.id.clone()).collect()
        } else {
            named.to_vec()
        })
    }

    /// Applies a plan's operations and marks the plan applied.
    async fn apply_plan(
        &self,
        run_id: i64,
        plan_id: &str,
        ops: &[PlannedOp],
        actor: &str,
        summary: &mut Summary,
        progress: &dyn Progress,
    ) -> Result<(), SyncError> {
        let t = Instant::now();
        let ctx = apply::ApplyContext {
            client: &self.client,
            store: &self.store,
            target: &self.target.id,
            run_id,
            plan_id,
            concurrency: self.target.concurrency,
        };
        summary.applied = apply::apply(&ctx, ops, progress).await;
        summary.stage_ms.insert("apply".into(), ms(t));
        self.store.set_plan_state(plan_id, "applied", Some(actor))?;
        Ok(())
    }

    /// Every enabled source's mirror through its transform chain.
    async fn transformed<'a>(
        &self,
        enabled: &[&'a crate::config::SourceConfig],
    ) -> Result<Vec<merge::SourceInput<'a>>, SyncError> {
        let mut inputs = Vec::new();
        for s in enabled {
            let users = self.store.mirror_users(&s.id)?;
            let groups = self.store.mirror_groups(&s.id)?;
            let memberships = self.store.mirror_memberships(&s.id)?;
            let data = transform::run_chain(&self.chain_context(), s, users, groups, memberships).await?;
            inputs.push(merge::SourceInput { id: &s.id, data });
        }
        Ok(inputs)
    }

    /// The desired state from the mirrors: every enabled source through its transforms, merged.
    async fn desired(
        &self,
        enabled: &[&crate::config::SourceConfig],
        stage_ms: &mut BTreeMap<String, u64>,
    ) -> Result<model::Desired, SyncError> {
        let t = Instant::now();
        let mut inputs = self.transformed(enabled).await?;
        stage_ms.insert("transform".into(), ms(t));
        let t = Instant::now();
        let desired = merge::desired(
            &mut inputs,
            &self.target.attribute_priority,
            &self.target.default_groups,
        );
        stage_ms.insert("merge".into(), ms(t));
        Ok(desired)
    }

    fn chain_context(&self) -> transform::ChainContext<'_> {
        transform::ChainContext {
            runtime: &self.runtime,
            store: &self.store,
            base_dir: &self.config.base_dir,
            remember: true,
        }
    }

    /// Runs a source's transform chain over sample records, or over its mirror, and shows each
    /// record before, after every step (with the rule that decided) and at the end, with the
    /// warnings a run would give. Writes nothing.
    pub async fn preview(&self, source: &str, sample: Option<Sample>) -> Result<transform::Traces, SyncError> {
        let s = self.config.source(source).ok_or_else(|| {
            SyncError::Config(format!(
                "no source named '{source}'; see the configuration's [[source]] entries"
            ))
        })?;
        let (users, groups, memberships) = match sample {
            Some(sample) => (sample.users, sample.groups, sample.memberships),
            None => (
                self.store.mirror_users(source)?,
                self.store.mirror_groups(source)?,
                self.store.mirror_memberships(source)?,
            ),
        };
        // Read-only: a settings file the transform accepts now is not remembered as accepted.
        let preview_ctx = transform::ChainContext {
            remember: false,
            ..self.chain_context()
        };
        let (_, traces) = transform::run_chain_traced(&preview_ctx, s, users, groups, memberships, true).await?;
        Ok(traces)
    }

    /// Why `user` is (or is not) to be a member of `group`, from the mirrors as they stand.
    pub async fn why(&self, user: &str, group: &str) -> Result<String, SyncError> {
        let enabled: Vec<&crate::config::SourceConfig> = self.config.sources.iter().filter(|s| s.enabled).collect();
        let mut inputs = self.transformed(&enabled).await?;
        let desired = merge::desired(
            &mut inputs,
            &self.target.attribute_priority,
            &self.target.default_groups,
        );
        let key = user.to_lowercase();
        let Some(person) = desired.persons.get(&key) else {
            return Ok(format!("{user} is not in any source (after transforms)"));
        };
        let sources: Vec<&str> = person.records.iter().map(|(s, _)| s.as_str()).collect();
        if !desired.groups.get(group).is_some_and(|m| m.contains(key.as_str())) {
            return Ok(format!(
                "{user} ({}) is not a member of {group} in any source",
                sources.join(", ")
            ));
        }
        let how = merge::explain(&inputs, &desired, group, &key)
            .unwrap_or_else(|| format!("member of {group} in {}", sources.join(", ")));
        let state = if person.active {
            ""
        } else {
            " — but the account is disabled in its source, so the membership is not applied"
        };
        Ok(format!("{user} is in {group}: {how}{state}"))
    }

    fn save_plan(
        &self,
        id: &str,
        run_id: i64,
        hash: &str,
        state: &str,
        verdict: &guard::Verdict,
        ops: &[PlannedOp],
    ) -> Result<(), SyncError> {
        let row = PlanRow {
            id: id.into(),
            run_id,
            target: self.target.id.clone(),
            hash: hash.into(),
            state: state.into(),
            created_at: now_ms(),
            decided_by: None,
            guard: serde_json::to_value(verdict).ok(),
        };
        let rows = ops.iter().map(|o| {
            (
                o.op.kind(),
                o.op.subject(),
                serde_json::to_string(o).unwrap_or_default(),
                o.reason.as_str(),
            )
        });
        self.store.save_plan(&row, rows)?;
        Ok(())
    }

    fn finish(&self, run_id: i64, state: &str, plan_id: &str, summary: &mut Summary) -> Result<(), SyncError> {
        let (calls, throttled) = self.client.call_counts();
        summary.api_calls_total = calls.values().sum();
        summary.api_calls = calls;
        summary.throttled = throttled;
        summary.peak_rss_mib = peak_rss_mib();
        let json = serde_json::to_value(&*summary).unwrap_or_default();
        self.store.finish_run(run_id, state, Some(plan_id), &json, None)?;
        Ok(())
    }

    /// The stored operations of a plan, checked against its hash.
    pub fn plan_ops(&self, plan_id: &str) -> Result<(PlanRow, Vec<PlannedOp>), SyncError> {
        let plan = self.store.plan(plan_id)?;
        let ops: Vec<PlannedOp> = self
            .store
            .plan_ops(plan_id)?
            .into_iter()
            .map(|(_, _, _, detail, _)| {
                serde_json::from_value(detail)
                    .map_err(|e| SyncError::Plan(format!("plan {plan_id} has an unreadable operation: {e}")))
            })
            .collect::<Result<_, _>>()?;
        if plan_hash(&ops) != plan.hash {
            return Err(SyncError::Plan(format!(
                "plan {plan_id}'s operations no longer match its hash; it was altered and will not be applied"
            )));
        }
        Ok((plan, ops))
    }

    /// Claims the target for run `run_id` against every other run, in this process or another
    /// sharing the database; a refused run is recorded as such, naming the run in progress.
    pub(crate) fn hold_target(
        &self,
        run_id: i64,
        trigger: &str,
        actor: &str,
    ) -> Result<crate::store::TargetLock, SyncError> {
        let holder = format!("run {run_id} ({trigger}, by {actor})");
        self.store.hold_target(&self.target.id, &holder).map_err(|e| {
            let _ = self.store.finish_run(
                run_id,
                "refused",
                None,
                &serde_json::json!({"error": e.to_string()}),
                Some(&e.to_string()),
            );
            SyncError::Store(e)
        })
    }

    /// Approves a held plan and applies exactly its operations. `hash` must be the hash the
    /// approver reviewed; the licence is checked again against Bitbucket's state now. `origin`
    /// as in [`SyncOptions::origin`].
    pub async fn approve(
        &self,
        plan_id: &str,
        hash: &str,
        actor: &str,
        origin: &str,
        progress: &dyn Progress,
    ) -> Result<RunReport, SyncError> {
        let (plan, ops) = self.plan_ops(plan_id)?;
        match plan.state.as_str() {
            "held" => {}
            "superseded" => {
                return Err(SyncError::Plan(format!(
                    "plan {plan_id} was superseded by a newer plan for {}; review the newest one (`roster runs list`)",
                    plan.target
                )));
            }
            other => {
                return Err(SyncError::Plan(format!(
                    "plan {plan_id} is {other}; only a held plan can be approved"
                )));
            }
        }
        // The full hash, or an unambiguous prefix of at least 8 characters, as `plan show` prints it.
        let matches = hash.eq_ignore_ascii_case(&plan.hash)
            || (hash.len() >= 8 && plan.hash.starts_with(&hash.to_ascii_lowercase()));
        if !matches {
            return Err(SyncError::Plan(format!(
                "plan {plan_id} has hash {}, not {hash}: you reviewed a different plan",
                &plan.hash[..12]
            )));
        }
        let target_id = self.target.id.clone();
        if plan.target != target_id {
            return Err(SyncError::Plan(format!(
                "plan {plan_id} is for target '{}', not '{target_id}'",
                plan.target
            )));
        }
        let run_id = self.store.create_run("approval", "apply-plan", &target_id, &[])?;
        let _lock = self.hold_target(run_id, "approval", actor)?;
        self.client.reset_counts();
        let mut summary = Summary::default();
        let groups: BTreeSet<String> = ops
            .iter()
            .filter_map(|o| match &o.op {
                model::Op::AddMembers { group, .. } | model::Op::RemoveMember { group, .. } => Some(group.clone()),
                _ => None,
            })
            .collect();
        let target = read::read_target(&self.client, &groups, self.target.concurrency).await?;
        let verdict = guard::judge(
            &ops,
            &target,
            0,
            &crate::config::Threshold {
                count: u32::MAX,
                percent: 100.0,
            },
        );
        if let Some(why) = &verdict.refused {
            self.store.set_plan_state(plan_id, "refused", Some(actor))?;
            summary.warnings.push(format!("plan refused: {why}"));
            summary.guard = Some(verdict);
            self.finish(run_id, "refused", plan_id, &mut summary)?;
            return Ok(RunReport {
                run_id,
                state: "refused".into(),
                plan_id: Some(plan_id.into()),
                plan_hash: Some(plan.hash),
                summary,
            });
        }
        self.store.set_plan_state(plan_id, "approved", Some(actor))?;
        self.store
            .audit(actor, or_local(origin), "plan.approve", plan_id, Some(&plan.hash))?;
        for o in &ops {
            *summary.planned.entry(o.op.kind().to_string()).or_default() += 1;
        }
        self.apply_plan(run_id, plan_id, &ops, actor, &mut summary, progress)
            .await?;
        let state = if summary.applied.failed > 0 {
            "partial"
        } else {
            "succeeded"
        };
        self.finish(run_id, state, plan_id, &mut summary)?;
        Ok(RunReport {
            run_id,
            state: state.into(),
            plan_id: Some(plan_id.into()),
            plan_hash: Some(plan.hash),
            summary,
        })
    }

    /// Rejects a held plan; `origin` as in [`SyncOptions::origin`].
    pub fn reject(&self, plan_id: &str, actor: &str, origin: &str) -> Result<(), SyncError> {
        let plan = self.store.plan(plan_id)?;
        if plan.state != "held" && plan.state != "draft" {
            return Err(SyncError::Plan(format!(
                "plan {plan_id} is {}; only a held or draft plan can be rejected",
                plan.state
            )));
        }
        self.store.set_plan_state(plan_id, "rejected", Some(actor))?;
        self.store
            .audit(actor, or_local(origin), "plan.reject", plan_id, None)?;
        Ok(())
    }
}

/// Records to preview a chain on instead of a source's mirror.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Users.
    pub users: Vec<crate::store::MirrorUser>,
    /// Groups.
    pub groups: Vec<crate::store::MirrorGroup>,
    /// Memberships (for `required_groups`).
    pub memberships: Vec<crate::store::MirrorMembership>,
}

impl Sample {
    /// Reads sample records in the `file` connector's JSON form: `{"users": [{"id", "username",
    /// "email"?, "display_name"?, "active"?, "attributes"? {name: value or [values]}}], "groups":
    /// [{"id", "name", "description"?}], "memberships": [{"group", "member", "member_is_group"?}]}`.
    pub fn from_json(text: &str) -> Result<Sample, String> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Attr {
            One(String),
            Many(Vec<String>),
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct U {
            id: String,
            username: String,
            email: Option<String>,
            display_name: Option<String>,
            #[serde(default = "yes")]
            active: bool,
            #[serde(default)]
            attributes: BTreeMap<String, Attr>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct G {
            id: String,
            name: String,
            description: Option<String>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct M {
            group: String,
            member: String,
            #[serde(default)]
            member_is_group: bool,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[serde(default)]
            users: Vec<U>,
            #[serde(default)]
            groups: Vec<G>,
            #[serde(default)]
            memberships: Vec<M>,
        }
        fn yes() -> bool {
            true
        }
        let doc: Doc =
            serde_json::from_str(text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
        Ok(Sample {
            users: doc
                .users
                .into_iter()
                .map(|u| crate::store::MirrorUser {
                    ext_id: u.id,
                    username: u.username,
                    email: u.email,
                    display_name: u.display_name,
                    active: u.active,
                    attributes: u
                        .attributes
                        .into_iter()
                        .flat_map(|(k, v)| {
                            let values = match v {
                                Attr::One(x) => vec![x],
                                Attr::Many(xs) => xs,
                            };
                            values.into_iter().map(move |x| (k.clone(), x))
                        })
                        .collect(),
                    removed: None,
                })
                .collect(),
            groups: doc
                .groups
                .into_iter()
                .map(|g| crate::store::MirrorGroup {
                    ext_id: g.id,
                    name: g.name,
                    description: g.description,
                    attributes: Vec::new(),
                    removed: None,
                })
                .collect(),
            memberships: doc
                .memberships
                .into_iter()
                .map(|m| crate::store::MirrorMembership {
                    group_id: m.group,
                    member_id: m.member,
                    member_is_group: m.member_is_group,
                    removed: false,
                })
                .collect(),
        })
    }
}

/// What a source's connector said when asked whether it can work.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Source id.
    pub source: String,
    /// Its connector.
    pub plugin: String,
    /// The connector is satisfied.
    pub ok: bool,
    /// Otherwise, why not.
    pub error: Option<String>,
    /// How long the check took.
    pub ms: u64,
}

/// One row of a run's export: the operation, why, and what happened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportRow {
    /// Sequence in the plan.
    pub seq: i64,
    /// Operation kind.
    pub kind: String,
    /// User or group.
    pub subject: String,
    /// Why.
    pub reason: String,
    /// done, failed, or not-applied.
    pub outcome: String,
    /// Last HTTP status.
    pub status: Option<i64>,
    /// HTTP requests it took, retries included.
    pub attempts: Option<i64>,
    /// Message.
    pub message: Option<String>,
    /// Unix ms.
    pub finished_at: Option<i64>,
}

/// A run's per-object results (every operation of its plan, with its outcome).
pub fn export_rows(store: &Store, run_id: i64) -> Result<Vec<ExportRow>, StoreError> {
    let run = store.run(run_id)?;
    let Some(plan_id) = run.plan_id else {
        return Ok(Vec::new());
    };
    let results: HashMap<i64, crate::store::ResultRow> =
        store.results(run_id)?.into_iter().map(|r| (r.seq, r)).collect();
    Ok(store
        .plan_ops(&plan_id)?
        .into_iter()
        .map(|(seq, kind, subject, _, reason)| {
            let r = results.get(&seq);
            ExportRow {
                seq,
                kind,
                subject,
                reason,
                outcome: r.map_or("not-applied".into(), |r| r.outcome.clone()),
                status: r.and_then(|r| r.status),
                attempts: r.map(|r| r.attempts),
                message: r.and_then(|r| r.message.clone()),
                finished_at: r.map(|r| r.finished_at),
            }
        })
        .collect())
}

/// CSV (RFC 4180) of export rows.
pub fn export_csv(rows: &[ExportRow]) -> String {
    fn cell(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::from("seq,kind,subject,reason,outcome,status,attempts,message,finished_at\n");
    for r in rows {
        let fields = [
            r.seq.to_string(),
            cell(&r.kind),
            cell(&r.subject),
            cell(&r.reason),
            cell(&r.outcome),
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            r.attempts.map(|a| a.to_string()).unwrap_or_default(),
            cell(r.message.as_deref().unwrap_or("")),
            r.finished_at.map(|s| s.to_string()).unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}
