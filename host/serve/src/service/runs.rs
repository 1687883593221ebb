//! Runs in progress: live progress per stage with an ETA, cancellation, and the rule that one
//! target never has two runs at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use roster_model::{Progress, RunMode, Trigger};

/// Where a stage stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageStatus {
    /// fetch SOURCE, transform, read, plan, apply, …
    pub name: String,
    /// Items done.
    pub done: u64,
    /// Items expected; `null` while unknown.
    pub total: Option<u64>,
    /// Milliseconds since the stage started.
    pub elapsed_ms: u64,
}

/// A running run, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiveStatus {
    /// Run id.
    pub run_id: i64,
    /// What started it.
    pub trigger: Trigger,
    /// What it does.
    pub mode: RunMode,
    /// Sources it fetches.
    pub sources: Vec<String>,
    /// The stage now.
    pub stage: Option<StageStatus>,
    /// Stages finished, with their milliseconds.
    pub finished_stages: Vec<(String, u64)>,
    /// Percent of the current stage done, when its size is known.
    pub percent: Option<f64>,
    /// Seconds until the current stage ends: from its pace so far and, for apply, no less than
    /// the plan's remaining writes at the target's request budget.
    pub eta_seconds: Option<f64>,
    /// Milliseconds since the run started.
    pub elapsed_ms: u64,
    /// Cancellation was asked for.
    pub cancelling: bool,
}

#[derive(Debug)]
struct Stage {
    name: String,
    done: u64,
    total: u64,
    started: Instant,
}

/// [`Progress`] for the API: what each stage has done, and a cancel switch.
#[derive(Debug)]
pub struct LiveProgress {
    run_id: i64,
    trigger: Trigger,
    mode: RunMode,
    sources: Vec<String>,
    started: Instant,
    stage: Mutex<Option<Stage>>,
    finished: Mutex<Vec<(String, u64)>>,
    cancel: AtomicBool,
    /// The target's request budget (requests per second), for the apply ETA before any
    /// operation has finished.
    budget_per_second: f64,
}

impl LiveProgress {
    /// Progress for a run that is starting.
    pub fn new(run_id: i64, trigger: Trigger, mode: RunMode, sources: Vec<String>, budget_per_second: f64) -> Self {
        LiveProgress {
            run_id,
            trigger,
            mode,
            sources,
            started: Instant::now(),
            stage: Mutex::new(None),
            finished: Mutex::new(Vec::new()),
            cancel: AtomicBool::new(false),
            budget_per_second,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Asks the run to stop at the next page or operation.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// The run's status now.
    pub fn status(&self) -> LiveStatus {
        let stage = self.stage.lock().unwrap_or_else(|p| p.into_inner());
        let (status, percent, eta) = match &*stage {
            Some(s) => {
                let elapsed = s.started.elapsed().as_secs_f64();
                let total = (s.total > 0).then_some(s.total);
                let percent = total.map(|t| (s.done as f64 * 100.0 / t as f64).min(100.0));
                let eta = total.map(|t| {
                    let left = t.saturating_sub(s.done) as f64;
                    let pace = if s.done > 0 {
                        left * elapsed / s.done as f64
                    } else {
                        f64::NAN
                    };
                    // Each write is at least one request, and the target's budget caps requests
                    // per second: a fast start (the budget's burst) does not make a short ETA.
                    let budget = if s.name == "apply" && self.budget_per_second > 0.0 {
                        left / self.budget_per_second
                    } else {
                        f64::NAN
                    };
                    match (pace.is_finite(), budget.is_finite()) {
                        (true, true) => pace.max(budget),
                        (true, false) => pace,
                        _ => budget,
                    }
                });
                (
                    Some(StageStatus {
                        name: s.name.clone(),
                        done: s.done,
                        total,
                        elapsed_ms: (elapsed * 1000.0) as u64,
                    }),
                    percent,
                    eta.filter(|e| e.is_finite()),
                )
            }
            None => (None, None, None),
        };
        LiveStatus {
            run_id: self.run_id,
            trigger: self.trigger,
            mode: self.mode,
            sources: self.sources.clone(),
            stage: status,
            finished_stages: self.finished.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            percent,
            eta_seconds: eta,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            cancelling: self.cancel.load(Ordering::SeqCst),
        }
    }
}

impl Progress for LiveProgress {
    fn stage(&self, name: &str, total: u64) {
        *self.stage.lock().unwrap_or_else(|p| p.into_inner()) = Some(Stage {
            name: name.to_string(),
            done: 0,
            total,
            started: Instant::now(),
        });
    }
    fn set_total(&self, total: u64) {
        if let Some(s) = self.stage.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            s.total = total;
        }
    }
    fn advance(&self, n: u64) {
        if let Some(s) = self.stage.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            s.done += n;
        }
    }
    fn finish(&self) {
        if let Some(s) = self.stage.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.finished
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((s.name, s.started.elapsed().as_millis() as u64));
        }
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// The progress of each run of a sync of several targets, in the service's [`RunManager`]: a
/// run that has ended leaves the runs in progress at once (its record is final), and hands the
/// claim to the next run of the sync. Cancelling the first run cancels the sync's fetch too
/// (it fetches for all).
pub struct Each {
    /// Every run's progress, in the sync's order.
    pub runs: Vec<Arc<LiveProgress>>,
    /// Where the runs in progress are kept.
    pub service: Arc<super::Service>,
}

impl crate::runner::Progresses for Each {
    fn of(&self, run_id: i64) -> &dyn Progress {
        match self.runs.iter().find(|p| p.run_id == run_id) {
            Some(p) => p.as_ref(),
            // Every run of the sync was given its progress; one made later reports to the first.
            None => self.runs[0].as_ref(),
        }
    }

    fn ended(&self, run_id: i64) {
        let next = self
            .runs
            .iter()
            .skip_while(|p| p.run_id != run_id)
            .nth(1)
            .map(|p| p.run_id);
        self.service.runs.ended(run_id, next);
    }
}

/// The runs in progress, and the one-run-per-target rule.
#[derive(Debug, Default)]
pub struct RunManager {
    active: Mutex<BTreeMap<i64, Arc<LiveProgress>>>,
    /// The run holding the target, if any.
    holder: Mutex<Option<i64>>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[error("run {0} is in progress for this target; wait for it or cancel it (POST /api/v1/runs/{0}/cancel)")]
pub struct Busy(pub i64);

impl RunManager {
    /// Claims the target for a run, or says which run holds it.
    pub fn claim(&self, progress: Arc<LiveProgress>) -> Result<(), Busy> {
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = *holder {
            return Err(Busy(id));
        }
        *holder = Some(progress.run_id);
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(progress.run_id, progress);
        Ok(())
    }

    /// Claims the targets of a sync, one run each: the first run holds them for the service;
    /// every run shows its own progress.
    pub fn claim_all(&self, progresses: &[Arc<LiveProgress>]) -> Result<(), Busy> {
        let Some(first) = progresses.first() else { return Ok(()) };
        self.claim(first.clone())?;
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        for p in &progresses[1..] {
            active.insert(p.run_id, p.clone());
        }
        Ok(())
    }

    /// Run `run_id` of a sync ended while the sync goes on with run `next`: it leaves the runs in
    /// progress, and `next` holds the claim from now on if it held it.
    pub fn ended(&self, run_id: i64, next: Option<i64>) {
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        if *holder == Some(run_id) && next.is_some() {
            *holder = next;
        }
        drop(holder);
        if next.is_some() {
            self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&run_id);
        }
    }

    /// Releases the target after the run ended.
    pub fn release(&self, run_id: i64) {
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        if *holder == Some(run_id) {
            *holder = None;
        }
        self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&run_id);
    }

    /// The run holding the target.
    pub fn busy(&self) -> Option<i64> {
        *self.holder.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A running run's progress.
    pub fn get(&self, run_id: i64) -> Option<Arc<LiveProgress>> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&run_id)
            .cloned()
    }

    /// Every running run.
    pub fn all(&self) -> Vec<Arc<LiveProgress>> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_pace_and_the_budget_before_it() {
        let p = LiveProgress::new(1, Trigger::Api, RunMode::Full, vec![], 10.0);
        p.stage("apply", 100);
        let s = p.status();
        assert_eq!(s.eta_seconds, Some(10.0), "100 operations at a budget of 10/s");
        p.advance(50);
        let s = p.status();
        assert_eq!(s.percent, Some(50.0));
        // Half done at once (the budget's burst): the 50 left still need 5 s at 10/s.
        assert!(s.eta_seconds.unwrap() >= 5.0, "{:?}", s.eta_seconds);
        // Other stages go by their pace alone.
        let f = LiveProgress::new(2, Trigger::Api, RunMode::Full, vec![], 10.0);
        f.stage("fetch hr", 100);
        f.advance(50);
        assert!(f.status().eta_seconds.unwrap() < 5.0);
        p.finish();
        assert_eq!(p.status().finished_stages.len(), 1);
        assert!(!p.cancelled());
        p.cancel();
        assert!(p.cancelled() && p.status().cancelling);
    }

    #[test]
    fn a_sync_of_several_targets_hands_its_claim_from_run_to_run() {
        let m = RunManager::default();
        let runs: Vec<Arc<LiveProgress>> = (1..=2)
            .map(|id| Arc::new(LiveProgress::new(id, Trigger::Api, RunMode::Full, vec![], 1.0)))
            .collect();
        m.claim_all(&runs).unwrap();
        assert!(
            m.get(1).is_some() && m.get(2).is_some(),
            "each run shows its own progress"
        );
        assert_eq!(m.busy(), Some(1));
        m.ended(1, Some(2));
        assert!(m.get(1).is_none(), "an ended run is no longer in progress");
        assert_eq!(m.busy(), Some(2), "the sync still holds the claim");
        assert_eq!(
            m.claim(Arc::new(LiveProgress::new(3, Trigger::Api, RunMode::Full, vec![], 1.0)))
                .unwrap_err()
                .0,
            2
        );
        m.release(1);
        m.release(2);
        assert!(m.busy().is_none());
    }

    #[test]
    fn one_run_holds_the_target() {
        let m = RunManager::default();
        m.claim(Arc::new(LiveProgress::new(1, Trigger::Api, RunMode::Full, vec![], 1.0)))
            .unwrap();
        assert_eq!(
            m.claim(Arc::new(LiveProgress::new(2, Trigger::Api, RunMode::Full, vec![], 1.0)))
                .unwrap_err()
                .0,
            1
        );
        m.release(1);
        assert!(m.busy().is_none());
        m.claim(Arc::new(LiveProgress::new(2, Trigger::Api, RunMode::Full, vec![], 1.0)))
            .unwrap();
    }
}
