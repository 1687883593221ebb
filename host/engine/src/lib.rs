//! The reconciler: read a target → plan → guard → apply → record, over the [`Target`] trait.
//!
//! It is given the desired state (the directory made it) and a target (the binary chose its
//! kind), and knows neither an identity provider nor a vendor: everything vendor-specific —
//! what licenses an account, who administers the target, how an account is disabled, how many
//! members one call may add — reaches it as [`TargetState`] and [`Capabilities`].
//!
//! Rules enforced here (design.md "rules that never bend"): a fetch that did not complete never
//! leads to a deletion, deactivation or removal (1: the caller names the incomplete sources and
//! their destructive operations are withheld); a plan over the threshold is held until that
//! exact plan is approved (2); a plan over the licence is refused (3); protected accounts and
//! groups are never changed (4); a second run in a row makes zero writes (5).
//!
//! A push run ([`WhileHeld::ApplyTheRest`]) that plans exactly the removals of the target's held
//! plan withholds them and leaves that plan held and approvable (2 still holds: nothing it
//! holds is written without its approval).

pub mod apply;
pub mod budget;
pub mod drift;
pub mod fit;
pub mod guard;
pub mod model;
pub mod plan;
pub mod policy;
mod record;
pub mod target;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use roster_model::{Desired, PlanState, RunState};
pub use roster_model::{Progress, Quiet};
use roster_store::{IdentityState, PlanRow, Review, Store, StoreError, WindowTotals, now_ms};
use sha2::{Digest, Sha256};

pub use apply::Applied;
pub use budget::Eta;
pub use drift::{Drift, DriftChange, DriftHandling, DriftPolicy};
pub use guard::{LicenceOf, LicenceView, Rule, Tripped, Verdict, WindowView};
pub use model::{Op, PlannedOp, Skipped};
pub use policy::{DEFAULT_KIND, Deprovision, GroupLimit, Inactive, Limit, TargetConfig, Threshold, Window};
pub use record::{ExportRow, export_csv, export_rows};
pub use target::{
    Account, Accounts, AddMembers, CallBudget, CallCounts, Capabilities, Connection, Disable, Fields, Groups,
    InvitationState, Licence, OpOutcome, Patience, PendingAccount, Profiles, ReadScope, Rename, Seats, Target,
    TargetCheck, TargetError, TargetKind, TargetKinds, TargetState,
};

/// Why the engine could not go on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target could not be read: nothing was planned or written.
    #[error("target '{target}': read: {error}; nothing was planned or written")]
    Read {
        /// The target's id.
        target: String,
        /// Why.
        error: TargetError,
    },
    /// A plan cannot be approved or applied.
    #[error("{0}")]
    Plan(String),
}

/// Whether a reconcile writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Apply the plan unless the guard holds or refuses it.
    Apply,
    /// Plan only (a dry run).
    DryRun,
}

/// What a reconcile covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every person and every group.
    Everyone,
    /// One person (lower-case username) and their memberships: single-user sync.
    Person(&'a str),
}

/// One reconcile.
#[derive(Debug, Clone, Copy)]
pub struct Reconcile<'a> {
    /// The run it belongs to (the caller created it and holds the target).
    pub run_id: i64,
    /// Whether it writes.
    pub writes: Writes,
    /// Who asked (the plan's approver when it is applied at once).
    pub actor: &'a str,
    /// Sources whose fetch did not complete: no deletion, deactivation or removal this run.
    pub incomplete: &'a [String],
    /// Everyone, or one person.
    pub scope: Scope<'a>,
    /// What this run does about a held plan of the target.
    pub while_held: WhileHeld,
}

/// What a run does when the target's newest plan is held for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhileHeld {
    /// Plans everything again: its plan supersedes the held one (and is held in turn if the
    /// guard says so). Scheduled, API and single-user runs.
    Replan,
    /// Push runs: when the run's plan takes away exactly what the held plan takes away, those
    /// operations are withheld, the rest (what takes nothing away) is applied, and the held plan
    /// stays held, approvable by its id and hash — an identity provider that keeps pushing
    /// never supersedes the plan an administrator is reviewing. A plan that takes away anything
    /// else is planned in full and supersedes it, as with `Replan`.
    ApplyTheRest,
}

/// What a reconcile did: the run's state and the engine's part of its summary.
#[derive(Debug, Clone)]
pub struct Reconciled {
    /// How the run ends.
    pub state: RunState,
    /// The plan.
    pub plan_id: String,
    /// Its hash.
    pub plan_hash: String,
    /// Planned operations by kind.
    pub planned: BTreeMap<String, usize>,
    /// Milliseconds per stage (read, plan, guard, apply).
    pub stage_ms: BTreeMap<String, u64>,
    /// Outcomes of applied operations.
    pub applied: Applied,
    /// The guard's verdict.
    pub verdict: Verdict,
    /// Left alone on purpose.
    pub skipped: Vec<Skipped>,
    /// Collisions with accounts Roster does not own.
    pub collisions: Vec<Skipped>,
    /// Worth telling the administrator.
    pub warnings: Vec<String>,
    /// Calls made to the target.
    pub calls: CallCounts,
    /// When the plan is done, for a target that meters calls.
    pub eta: Option<Eta>,
    /// Changes made by hand to what Roster manages, and what this run did about each.
    pub drift: Vec<Drift>,
}

/// The paused plan a run continues (see [`Engine::continued`]).
#[derive(Debug, Clone)]
struct Continued {
    /// The plan.
    plan_id: String,
    /// Whether an administrator approved it.
    review: Review,
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

/// `local` for an empty origin (this machine: the CLI, the scheduler).
pub fn or_local(origin: &str) -> &str {
    if origin.is_empty() { "local" } else { origin }
}

/// The reconciler of one target.
pub struct Engine {
    store: Arc<Store>,
    target: Arc<dyn Target>,
    policy: TargetConfig,
}

impl Engine {
    /// The engine of `target`, applying `policy`.
    pub fn new(store: Arc<Store>, target: Arc<dyn Target>, policy: TargetConfig) -> Engine {
        Engine { store, target, policy }
    }

    fn read_failed(&self, error: TargetError) -> EngineError {
        EngineError::Read {
            target: self.policy.id.clone(),
            error,
        }
    }

    /// The target's configuration.
    pub fn policy(&self) -> &TargetConfig {
        &self.policy
    }

    /// The target.
    pub fn target(&self) -> &Arc<dyn Target> {
        &self.target
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Reads the target, plans, guards and — unless it is a dry run, held or refused — applies.
    /// The plan and every operation's result are stored; the caller records the run.
    pub async fn reconcile(
        &self,
        r: &Reconcile<'_>,
        mut desired: Desired,
        progress: &dyn Progress,
    ) -> Result<Reconciled, EngineError> {
        let target_id = self.policy.id.as_str();
        let mut stage_ms = BTreeMap::new();
        let mut warnings = Vec::new();
        self.target.reset_calls();
        let capabilities = self.target.capabilities();
        warnings.extend(fit::fit(&mut desired, capabilities.fields, self.target.product()));
        desired.add_to_every_active(&self.policy.default_groups);

        let t = Instant::now();
        let managed: BTreeSet<String> = self.store.managed_groups(target_id)?.into_iter().collect();
        let (target, identities) = match r.scope {
            Scope::Everyone => {
                let mut interesting: BTreeSet<String> = desired.groups.keys().cloned().collect();
                interesting.extend(managed.iter().cloned());
                let id = target_id.to_string();
                let identities = self.store.blocking(move |store| store.identities(&id)).await?;
                let people: BTreeMap<String, Option<String>> = desired
                    .persons
                    .iter()
                    .map(|(k, p)| (k.clone(), p.email.clone()))
                    .collect();
                let scope = ReadScope {
                    groups: &interesting,
                    people: &people,
                    concurrency: self.policy.concurrency.most(),
                };
                (
                    self.target.read(&scope).await.map_err(|e| self.read_failed(e))?,
                    identities,
                )
            }
            Scope::Person(key) => {
                let records = desired.persons.get(key).map(|p| p.records.clone()).unwrap_or_default();
                let identities =
                    self.store
                        .identities_matching(target_id, std::slice::from_ref(&key.to_string()), &records)?;
                let mut names: BTreeSet<String> = identities.iter().map(|i| i.username.clone()).collect();
                names.insert(key.to_string());
                let mut groups: BTreeSet<String> = desired.groups.keys().cloned().collect();
                groups.extend(managed.iter().cloned());
                let state = self
                    .target
                    .read_accounts(&names, &groups)
                    .await
                    .map_err(|e| self.read_failed(e))?;
                // Groups that concern this person: the ones they should be in, and the ones
                // they are in.
                desired
                    .groups
                    .retain(|g, m| !m.is_empty() || state.members.get(g).is_some_and(|x| !x.is_empty()));
                (state, identities)
            }
        };
        stage_ms.insert("read".into(), ms(t));

        let t = Instant::now();
        let mut draft = plan::plan(&plan::PlanInput {
            desired: &desired,
            target: &target,
            capabilities,
            identities: &identities,
            managed: &managed,
            policy: &self.policy,
            me: self.target.account(),
            product: self.target.product(),
            now_ms: now_ms(),
        });
        // Drift is judged on a full read only: one person's read sees too little of each group.
        let old_base = self.store.drift_baseline(target_id)?;
        let handled = match r.scope {
            Scope::Everyone => {
                let adopted = self.store.drift_adopted(target_id)?;
                let protected = plan::Protected::new(&self.policy, self.target.account(), &target);
                let found = old_base
                    .as_ref()
                    .map(|b| drift::detect(b, &target, &desired, &identities, &protected))
                    .unwrap_or_default();
                drift::handle(
                    found,
                    self.policy.drift,
                    capabilities.rename,
                    &adopted,
                    &desired,
                    &target,
                    &mut draft.ops,
                    &mut draft.skipped,
                    self.target.product(),
                )
            }
            Scope::Person(_) => drift::Handled::default(),
        };
        let base_start = match r.scope {
            Scope::Everyone => Some(drift::as_read(&target, &managed)),
            Scope::Person(_) => old_base.clone(),
        };
        drop(desired);
        if let Scope::Person(_) = r.scope {
            // One person's sync sees only the groups that concern them: a managed group missing
            // from its desired state may well be in the sources still.
            draft.ops.retain(|o| !matches!(o.op, Op::DeleteGroup { .. }));
        }
        // Before the incomplete fetch's withholding: the held plan's removals are compared whole.
        let kept = match (r.scope, r.writes, r.while_held) {
            (Scope::Everyone, Writes::Apply, WhileHeld::ApplyTheRest) => {
                self.keep_held(&mut draft.ops, &mut warnings)?
            }
            _ => None,
        };
        if !r.incomplete.is_empty() {
            let before = draft.ops.len();
            draft.ops.retain(|o| !o.op.takes_away());
            if r.scope == Scope::Everyone {
                warnings.push(format!(
                    "incomplete fetch of {}: {} deletion, deactivation and removal operation(s) withheld this run",
                    r.incomplete.join(", "),
                    before - draft.ops.len()
                ));
            }
        }
        let planned = count_kinds(&draft.ops);
        stage_ms.insert("plan".into(), ms(t));

        let hash = plan_hash(&draft.ops);
        let plan_id = format!("{}-{}", r.run_id, &hash[..8]);
        let t = Instant::now();
        let tally = guard::Tally::count(&draft.ops, &target);
        let window = self.window()?;
        let (managed_accounts, rules) = match r.scope {
            Scope::Everyone => (
                identities
                    .iter()
                    .filter(|i| {
                        matches!(i.state, IdentityState::Active | IdentityState::Pending)
                            && target.users.contains_key(&i.username)
                    })
                    .map(|i| i.username.as_str())
                    .collect::<BTreeSet<_>>()
                    .len(),
                guard::Rules::Plan {
                    threshold: &self.policy.threshold,
                    window: &window,
                },
            ),
            // One person is no mass change, but many single-user syncs in a row can add up to
            // one: the window's rules apply; the licence always does.
            Scope::Person(_) => (
                0,
                guard::Rules::Person {
                    threshold: &self.policy.threshold,
                    window: &window,
                },
            ),
        };
        let mut verdict = guard::judge(
            &draft.ops,
            &tally,
            &guard::Judged {
                target: &target,
                disable: capabilities.disable,
                accounts: capabilities.accounts,
                managed_accounts,
                rules,
                product: self.target.product(),
                plan: (&plan_id, &hash),
            },
        );
        let continued = match r.scope {
            Scope::Everyone if !draft.ops.is_empty() => self.continued(&draft.ops, &mut warnings)?,
            _ => None,
        };
        if let Some(c) = &continued
            && let Some(held) = verdict.held.take()
        {
            warnings.push(format!(
                "not held again: this plan continues plan {}, whose approval it inherits (it takes away nothing that plan had left to take away); the guard alone would have held it: {held}",
                c.plan_id
            ));
        }
        stage_ms.insert("guard".into(), ms(t));
        let eta = self.eta(&draft.ops, &target, &mut warnings);
        drop(target);

        let plan_state = if verdict.refused.is_some() {
            PlanState::Refused
        } else if r.writes == Writes::DryRun {
            PlanState::Draft
        } else if verdict.held.is_some() {
            PlanState::Held
        } else {
            PlanState::Approved
        };
        let ops = std::mem::take(&mut draft.ops);
        draft.ops = self
            .save_plan((&plan_id, &hash), r.run_id, plan_state, &verdict, ops, kept)
            .await?;
        let mut applied = Applied::default();
        let state = if let Some(why) = &verdict.refused {
            warnings.push(format!("plan refused: {why}"));
            RunState::Refused
        } else if progress.cancelled() {
            warnings.push("the run was cancelled before applying; nothing was written".into());
            RunState::Cancelled
        } else if r.writes == Writes::DryRun {
            RunState::Planned
        } else if let Some(why) = &verdict.held {
            warnings.push(format!("plan held: {why}"));
            RunState::Held
        } else {
            let t = Instant::now();
            let review = continued.as_ref().map_or(Review::Unreviewed, |c| c.review);
            let outcome = self
                .apply_plan(r.run_id, &plan_id, &draft.ops, r.actor, progress, (&tally, review))
                .await?;
            stage_ms.insert("apply".into(), ms(t));
            applied = outcome.applied;
            if let Some(start) = base_start {
                let next = drift::next_baseline(
                    start,
                    old_base.as_ref(),
                    &handled.keep_as_was,
                    &draft.ops,
                    &outcome.done,
                );
                self.store.set_drift_baseline(target_id, &next)?;
            }
            self.store.adopt_drift(target_id, &handled.adopt)?;
            self.store.forget_adopted(target_id, &handled.forget)?;
            self.applied_state(&outcome, &plan_id, !r.incomplete.is_empty(), &mut warnings)
        };
        if !handled.drift.is_empty() {
            warnings.push(format!(
                "{} change(s) made by hand in {} to what Roster manages (drift = \"{}\"): see the run's drift",
                handled.drift.len(),
                self.target.product(),
                match self.policy.drift {
                    DriftPolicy::Revert => "revert",
                    DriftPolicy::Adopt => "adopt",
                    DriftPolicy::Report => "report",
                }
            ));
        }
        Ok(Reconciled {
            state,
            plan_id,
            plan_hash: hash,
            planned,
            stage_ms,
            applied,
            verdict,
            skipped: draft.skipped,
            collisions: draft.collisions,
            warnings,
            calls: self.target.calls(),
            eta,
            drift: handled.drift,
        })
    }

    /// The plan's ETA when the target meters calls, with a warning when it does not fit the
    /// budget available now.
    fn eta(&self, ops: &[PlannedOp], target: &TargetState, warnings: &mut Vec<String>) -> Option<Eta> {
        let budget = self.target.call_budget()?;
        let eta = Eta::new(budget::calls_needed(ops, target), budget);
        warnings.extend(eta.warning(self.target.product()));
        Some(eta)
    }

    /// The paused plan `ops` continue: the target's last applied plan paused (its call budget
    /// ran out), and `ops` take away nothing that plan's operations not yet done did not take
    /// away — then they need no approval beyond the one that plan had (an administrator's, or
    /// the guard's own), and the writes already done are not planned again since the read
    /// reflects them. A run that takes away anything new is judged as usual.
    fn continued(&self, ops: &[PlannedOp], warnings: &mut Vec<String>) -> Result<Option<Continued>, EngineError> {
        let Some(paused) = self.store.paused_run(&self.policy.id)? else {
            return Ok(None);
        };
        let plan = match stored_plan(&self.store, &paused.plan_id) {
            Ok((_, plan)) => plan,
            Err(e) => {
                warnings.push(format!(
                    "the paused plan {} cannot be continued ({e}); this plan is judged on its own",
                    paused.plan_id
                ));
                return Ok(None);
            }
        };
        let done: BTreeSet<i64> = self
            .store
            .results(paused.run_id)?
            .into_iter()
            .filter(|r| r.outcome == roster_model::Outcome::Done)
            .map(|r| r.seq)
            .collect();
        let left: BTreeSet<TakenAway> = plan
            .iter()
            .enumerate()
            .filter(|(seq, _)| !done.contains(&(*seq as i64)))
            .filter_map(|(_, o)| TakenAway::of(&o.op))
            .collect();
        if ops
            .iter()
            .filter_map(|o| TakenAway::of(&o.op))
            .any(|t| !left.contains(&t))
        {
            return Ok(None);
        }
        warnings.push(format!(
            "continues plan {}, which paused when the target throttled it or its call budget ran out",
            paused.plan_id
        ));
        Ok(Some(Continued {
            plan_id: paused.plan_id,
            review: paused.review,
        }))
    }

    /// The target's held plan this run leaves held ([`WhileHeld::ApplyTheRest`]): when the
    /// target's newest plan is held and takes away exactly what `ops` take away, those
    /// operations are withheld from `ops` (the held plan's approver decides them) and its id
    /// is the answer.
    fn keep_held(&self, ops: &mut Vec<PlannedOp>, warnings: &mut Vec<String>) -> Result<Option<String>, EngineError> {
        let Some(id) = self.store.held_plan(&self.policy.id)? else {
            return Ok(None);
        };
        let (_, held) = stored_plan(&self.store, &id)?;
        let taken =
            |ops: &[PlannedOp]| -> Vec<Op> { ops.iter().filter(|o| o.op.takes_away()).map(|o| o.op.clone()).collect() };
        if taken(&held) != taken(ops) {
            return Ok(None);
        }
        let before = ops.len();
        ops.retain(|o| !o.op.takes_away());
        warnings.push(format!(
            "plan {id} is held for approval: its {} deletion, deactivation and removal operation(s) are withheld from this run, which applies the rest; approve or reject plan {id}",
            before - ops.len()
        ));
        Ok(Some(id))
    }

    /// The plan `plan_id` if it may be approved with `hash` (the full hash, or an unambiguous
    /// prefix of at least 8 characters, as `plan show` prints it): held, the newest of this
    /// target, unaltered since it was stored.
    pub fn approvable(&self, plan_id: &str, hash: &str) -> Result<(PlanRow, Vec<PlannedOp>), EngineError> {
        let (plan, ops) = self.plan_ops(plan_id)?;
        match plan.state {
            PlanState::Held => {}
            PlanState::Superseded => {
                return Err(EngineError::Plan(format!(
                    "plan {plan_id} was superseded by a newer plan for {}; review the newest one (`roster runs list`)",
                    plan.target
                )));
            }
            other => {
                return Err(EngineError::Plan(format!(
                    "plan {plan_id} is {other}; only a held plan can be approved"
                )));
            }
        }
        let matches = hash.eq_ignore_ascii_case(&plan.hash)
            || (hash.len() >= 8 && plan.hash.starts_with(&hash.to_ascii_lowercase()));
        if !matches {
            return Err(EngineError::Plan(format!(
                "plan {plan_id} has hash {}, not {hash}: you reviewed a different plan",
                &plan.hash[..12]
            )));
        }
        if plan.target != self.policy.id {
            return Err(EngineError::Plan(format!(
                "plan {plan_id} is for target '{}', not '{}'",
                plan.target, self.policy.id
            )));
        }
        Ok((plan, ops))
    }

    /// Applies exactly the operations of an approved plan (see [`Engine::approvable`]), in run
    /// `run_id`; the licence is checked again against the target's state now.
    pub async fn apply_approved(
        &self,
        run_id: i64,
        plan: &PlanRow,
        ops: &[PlannedOp],
        actor: &str,
        origin: &str,
        progress: &dyn Progress,
    ) -> Result<Reconciled, EngineError> {
        self.target.reset_calls();
        let groups: BTreeSet<String> = ops
            .iter()
            .filter_map(|o| match &o.op {
                Op::AddMembers { group, .. } | Op::RemoveMember { group, .. } | Op::DeleteGroup { group } => {
                    Some(group.clone())
                }
                _ => None,
            })
            .collect();
        let t = Instant::now();
        // The people the plan creates; targets that find accounts by email know the rest from
        // their own records.
        let people: BTreeMap<String, Option<String>> = ops
            .iter()
            .filter_map(|o| match &o.op {
                Op::CreateUser { user, email, .. } => Some((user.to_lowercase(), Some(email.clone()))),
                _ => None,
            })
            .collect();
        let scope = ReadScope {
            groups: &groups,
            people: &people,
            concurrency: self.policy.concurrency.most(),
        };
        let target = self.target.read(&scope).await.map_err(|e| self.read_failed(e))?;
        let mut stage_ms = BTreeMap::from([("read".to_string(), ms(t))]);
        let tally = guard::Tally::count(ops, &target);
        let verdict = guard::judge(
            ops,
            &tally,
            &guard::Judged {
                target: &target,
                disable: self.target.capabilities().disable,
                accounts: self.target.capabilities().accounts,
                managed_accounts: 0,
                rules: guard::Rules::LicenceOnly,
                product: self.target.product(),
                plan: (&plan.id, &plan.hash),
            },
        );
        let mut warnings = Vec::new();
        let eta = self.eta(ops, &target, &mut warnings);
        drop(target);
        let mut out = Reconciled {
            state: RunState::Refused,
            plan_id: plan.id.clone(),
            plan_hash: plan.hash.clone(),
            planned: BTreeMap::new(),
            stage_ms: BTreeMap::new(),
            applied: Applied::default(),
            verdict,
            skipped: Vec::new(),
            collisions: Vec::new(),
            warnings,
            calls: CallCounts::default(),
            eta,
            drift: Vec::new(),
        };
        if let Some(why) = &out.verdict.refused {
            self.store.set_plan_state(&plan.id, PlanState::Refused, Some(actor))?;
            out.warnings.push(format!("plan refused: {why}"));
        } else {
            self.store.set_plan_state(&plan.id, PlanState::Approved, Some(actor))?;
            self.store
                .audit(actor, or_local(origin), "plan.approve", &plan.id, Some(&plan.hash))?;
            out.planned = count_kinds(ops);
            let t = Instant::now();
            let outcome = self
                .apply_plan(run_id, &plan.id, ops, actor, progress, (&tally, Review::Approved))
                .await?;
            stage_ms.insert("apply".into(), ms(t));
            out.applied = outcome.applied;
            // The plan was made from an earlier read: what it did is added to what Roster had
            // left, and the next full read is compared with that.
            if let Some(old) = self.store.drift_baseline(&self.policy.id)? {
                let next = drift::next_baseline(old, None, &[], ops, &outcome.done);
                self.store.set_drift_baseline(&self.policy.id, &next)?;
            }
            out.state = self.applied_state(&outcome, &plan.id, false, &mut out.warnings);
        }
        out.stage_ms = stage_ms;
        out.calls = self.target.calls();
        Ok(out)
    }

    /// How a run that applied its plan `plan_id` ends (`incomplete`: a source's fetch did not),
    /// with what its warnings say about it.
    fn applied_state(
        &self,
        outcome: &apply::ApplyOutcome,
        plan_id: &str,
        incomplete: bool,
        warnings: &mut Vec<String>,
    ) -> RunState {
        let (a, id) = (&outcome.applied, &self.policy.id);
        if a.cancelled > 0 {
            warnings.push(format!(
                "the run was cancelled: {} operation(s) not applied; the next run plans them again",
                a.cancelled
            ));
            return RunState::Cancelled;
        }
        if let Some(why) = &outcome.stopped_by
            && outcome.stopped_status == Some(429)
        {
            // Throttling that outlasted the retries, or a call budget spent: waiting is the
            // cure, not a fix, so the run pauses and the next one takes over from a fresh read.
            warnings.push(format!(
                "paused: target '{id}': apply: {why}; {} operation(s) not applied, left to the next run, which continues plan {plan_id}",
                a.stopped
            ));
            return RunState::Paused;
        }
        if let Some(why) = &outcome.stopped_by {
            warnings.push(format!(
                "target '{id}': apply: {why}; {} later operation(s) were not started, so nothing more was written (removals and deprovisioning come last); the next run plans them again",
                a.stopped
            ));
            return RunState::Failed;
        }
        if a.failed > 0 {
            warnings.push(format!(
                "target '{id}': apply: {} of {} operation(s) failed, each with its reason in the run's results",
                a.failed,
                a.failed + a.done
            ));
            return RunState::Partial;
        }
        if incomplete {
            RunState::Partial
        } else {
            RunState::Succeeded
        }
    }

    /// Rejects a held or draft plan; `origin` is the caller's address (empty: this machine).
    pub fn reject(&self, plan_id: &str, actor: &str, origin: &str) -> Result<(), EngineError> {
        let plan = self.store.plan(plan_id)?;
        if !matches!(plan.state, PlanState::Held | PlanState::Draft) {
            return Err(EngineError::Plan(format!(
                "plan {plan_id} is {}; only a held or draft plan can be rejected",
                plan.state
            )));
        }
        self.store.set_plan_state(plan_id, PlanState::Rejected, Some(actor))?;
        self.store
            .audit(actor, or_local(origin), "plan.reject", plan_id, None)?;
        Ok(())
    }

    /// The stored operations of a plan, checked against its hash.
    pub fn plan_ops(&self, plan_id: &str) -> Result<(PlanRow, Vec<PlannedOp>), EngineError> {
        stored_plan(&self.store, plan_id)
    }

    /// What the runs applied within the rolling window took away without an approval.
    fn window(&self) -> Result<WindowTotals, EngineError> {
        let period = i64::from(self.policy.threshold.window.days) * 86_400_000;
        Ok(self.store.destroyed_since(&self.policy.id, now_ms() - period)?)
    }

    /// Applies a plan's operations, marks the plan applied, and records what the operations
    /// done took away (counted in `tally`) for the guard's window.
    async fn apply_plan(
        &self,
        run_id: i64,
        plan_id: &str,
        ops: &[PlannedOp],
        actor: &str,
        progress: &dyn Progress,
        (tally, review): (&guard::Tally, Review),
    ) -> Result<apply::ApplyOutcome, EngineError> {
        let ctx = apply::ApplyContext {
            target: self.target.as_ref(),
            store: &self.store,
            target_id: &self.policy.id,
            run_id,
            plan_id,
            concurrency: self.policy.concurrency.most(),
        };
        let outcome = apply::apply(&ctx, ops, progress).await;
        self.store.set_plan_state(plan_id, PlanState::Applied, Some(actor))?;
        let destroyed = tally.destroyed(ops, &outcome.done);
        // An approval is recorded even when it took nothing away: it restarts the window.
        if review == Review::Approved || !destroyed.is_empty() {
            self.store
                .record_destroyed(&self.policy.id, run_id, now_ms(), review, &destroyed)?;
        }
        Ok(outcome)
    }

    /// Stores the plan op by op (on the blocking pool: a plan can hold a million operations)
    /// and gives the operations back; `kept` is a held plan it does not supersede.
    async fn save_plan(
        &self,
        (id, hash): (&str, &str),
        run_id: i64,
        state: PlanState,
        verdict: &Verdict,
        ops: Vec<PlannedOp>,
        kept: Option<String>,
    ) -> Result<Vec<PlannedOp>, EngineError> {
        let row = PlanRow {
            id: id.into(),
            run_id,
            target: self.policy.id.clone(),
            hash: hash.into(),
            state,
            created_at: now_ms(),
            decided_by: None,
            guard: serde_json::to_value(verdict).ok(),
        };
        let saved = self
            .store
            .blocking(move |store| {
                let rows = ops.iter().map(|o| {
                    (
                        o.op.kind(),
                        o.op.subject(),
                        serde_json::to_string(o).unwrap_or_default(),
                        o.reason.as_str(),
                    )
                });
                store.save_plan(&row, kept.as_deref(), rows).map(|()| ops)
            })
            .await?;
        Ok(saved)
    }
}

/// A stored plan and its operations, checked against its hash: an altered plan is refused.
pub fn stored_plan(store: &Store, plan_id: &str) -> Result<(PlanRow, Vec<PlannedOp>), EngineError> {
    let plan = store.plan(plan_id)?;
    let ops: Vec<PlannedOp> = store
        .plan_ops(plan_id)?
        .into_iter()
        .map(|(_, _, _, detail, _)| {
            serde_json::from_value(detail)
                .map_err(|e| EngineError::Plan(format!("plan {plan_id} has an unreadable operation: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if plan_hash(&ops) != plan.hash {
        return Err(EngineError::Plan(format!(
            "plan {plan_id}'s operations no longer match its hash; it was altered and will not be applied"
        )));
    }
    Ok((plan, ops))
}

fn count_kinds(ops: &[PlannedOp]) -> BTreeMap<String, usize> {
    let mut planned = BTreeMap::new();
    for o in ops {
        *planned.entry(o.op.kind().to_string()).or_default() += 1;
    }
    planned
}

/// What one operation takes away, as a continuation compares it: the same removal or
/// deprovisioning of the same person, whatever else its details say (a deactivation's groups
/// follow the target's state at each read).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TakenAway {
    /// A membership: (group, lower-case user).
    Membership(String, String),
    /// An account disabled (lower-case user).
    Disabled(String),
    /// An account deleted (lower-case user, erased).
    Deleted(String, bool),
    /// A group deleted.
    Group(String),
}

impl TakenAway {
    fn of(op: &Op) -> Option<TakenAway> {
        match op {
            Op::RemoveMember { group, user } => Some(TakenAway::Membership(group.clone(), user.to_lowercase())),
            Op::Deactivate { user, .. } => Some(TakenAway::Disabled(user.to_lowercase())),
            Op::DeleteUser { user, erase } => Some(TakenAway::Deleted(user.to_lowercase(), *erase)),
            Op::DeleteGroup { group } => Some(TakenAway::Group(group.clone())),
            _ => None,
        }
    }
}
