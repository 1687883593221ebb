//! The scheduler: each source's interval or cron expression (`roster_schedule`) turned into
//! runs.
//!
//! Rules: a run never overlaps another of the same target (a due source waits for the run in
//! progress, then runs); a fire time missed while Roster was down runs once at start; scheduled
//! runs are incremental (when the source's schedule says so) with a full fetch at least every
//! `full_every_hours`; every minute, sources without a recent success are checked for staleness
//! alerts. A push source runs when it pushes, and on a schedule only if one is given explicitly.
//! A run that paused because the target's call budget was spent is continued as soon as the
//! budget has a whole window again, not at the sources' next fire time (a daily schedule would
//! otherwise spread a five-hour plan over five days).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;

use roster_model::Trigger;
use roster_schedule as cron;

use crate::service::{RequestedMode, RunRequest, Service};

/// The scheduler wakes at least this often: configuration changes and staleness are noticed
/// within it.
const TICK: Duration = Duration::from_secs(30);

/// How often a paused run's budget is looked at while it refills.
const PAUSED_TICK: Duration = Duration::from_secs(1);

/// How long after a paused run a target without a call budget of its own (paused by the
/// server's throttling) is tried again.
const PAUSED_RETRY: Duration = Duration::from_secs(300);

fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}

/// Whether this source's run is due, and with which fire time.
fn due(schedule: &cron::Schedule, last_fire: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match last_fire {
        Some(last) => schedule.missed_between(last, now),
        None => None,
    }
}

/// Runs scheduled syncs until `shutdown` turns true.
pub async fn run(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let mut last_full: HashMap<String, Instant> = HashMap::new();
    loop {
        let now = Utc::now();
        let config = service.config();
        let mut soonest = now + chrono::Duration::from_std(TICK).unwrap_or_default();
        // A push source's pushes start its runs (see `service::push`); it runs on a schedule
        // only when one is given explicitly.
        for s in config.sources.iter().filter(|s| s.enabled && s.scheduled()) {
            let Ok(schedule) = s.schedule() else { continue };
            let state = service.store.schedule_state(&s.id).unwrap_or_default();
            let Some(last) = state.last_fire_at.map(ms_to_utc) else {
                // First time under this scheduler: start counting from now, so a fresh install
                // does not run every source at once.
                let _ = service.store.record_fire(&s.id, now.timestamp_millis());
                if let Some(next) = schedule.next_after(now) {
                    soonest = soonest.min(next);
                }
                continue;
            };
            if let Some(fire) = due(&schedule, Some(last), now) {
                let full_due = last_full
                    .get(&s.id)
                    .is_none_or(|t| t.elapsed().as_secs_f64() >= s.schedule.full_every_hours * 3600.0);
                let mode = if s.schedule.incremental && !full_due {
                    RequestedMode::Incremental
                } else {
                    RequestedMode::Full
                };
                if run_when_free(&service, &s.id, mode, &mut shutdown).await {
                    let _ = service.store.record_fire(&s.id, fire.timestamp_millis());
                    if mode == RequestedMode::Full {
                        last_full.insert(s.id.clone(), Instant::now());
                    }
                }
                if *shutdown.borrow() {
                    return;
                }
            }
            if let Some(next) = schedule.next_after(Utc::now()) {
                soonest = soonest.min(next);
            }
        }
        let tick = match continue_paused(&service, &mut shutdown).await {
            Paused::Waiting => PAUSED_TICK,
            Paused::None => TICK,
        };
        if *shutdown.borrow() {
            return;
        }
        service.check_staleness().await;
        let wait = (soonest - Utc::now()).to_std().unwrap_or_default().min(tick);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Whether a paused run waits for its target's budget.
enum Paused {
    /// None does.
    None,
    /// One does: look again soon.
    Waiting,
}

/// Continues a target's paused run when its call budget has a whole window again (the ETA
/// counts a window per further run), or, for a target without a budget, `PAUSED_RETRY` after it
/// ended; the continuation fetches the paused run's sources again, for that target only.
async fn continue_paused(service: &Arc<Service>, shutdown: &mut watch::Receiver<bool>) -> Paused {
    let runner = service.runner();
    let Some((engine, paused)) = runner.engines().iter().find_map(|e| {
        let paused = service.store.paused_run(&e.policy().id).ok().flatten()?;
        Some((e, paused))
    }) else {
        return Paused::None;
    };
    let Ok(run) = service.store.run(paused.run_id) else {
        return Paused::None;
    };
    let ready = match engine.target().call_budget() {
        Some(b) => b.available_now >= b.calls,
        None => run.finished_at.is_some_and(|t| {
            Utc::now().timestamp_millis() - t >= i64::try_from(PAUSED_RETRY.as_millis()).unwrap_or(i64::MAX)
        }),
    };
    if !ready || service.runs.busy().is_some() {
        return Paused::Waiting;
    }
    let req = RunRequest {
        sources: run.sources.clone(),
        mode: RequestedMode::Full,
        trigger: Trigger::Schedule,
        actor: "scheduler".into(),
        origin: String::new(),
        target: Some(engine.policy().id.clone()),
    };
    match service.start_run(req) {
        Ok(id) => {
            tracing::info!(run_id = id, paused = paused.run_id, "continuing a paused run");
            while service.runs.get(id).is_some() && !*shutdown.borrow() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // It may have paused again.
            Paused::Waiting
        }
        Err(crate::service::ServiceError::Conflict(_)) => Paused::Waiting,
        Err(e) => {
            tracing::warn!(paused = paused.run_id, "the paused run was not continued: {e}");
            Paused::None
        }
    }
}

/// Starts the source's run once the target is free, and waits for it to end; false when it
/// could not be started.
async fn run_when_free(
    service: &Arc<Service>,
    source: &str,
    mode: RequestedMode,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        if *shutdown.borrow() {
            return false;
        }
        if let Err(e) = service.runner().engine() {
            // No target yet: waiting would hold every other source's schedule too.
            tracing::warn!(source, "scheduled run not started: {e}");
            return false;
        }
        if service.runs.busy().is_none() {
            let req = RunRequest {
                sources: vec![source.to_string()],
                mode,
                trigger: Trigger::Schedule,
                actor: "scheduler".into(),
                origin: String::new(),
                target: None,
            };
            match service.start_run(req) {
                Ok(id) => {
                    tracing::info!(source, run_id = id, ?mode, "scheduled run started");
                    while service.runs.get(id).is_some() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    return true;
                }
                Err(crate::service::ServiceError::Conflict(_)) => {}
                Err(e) => {
                    tracing::warn!(source, "scheduled run not started: {e}");
                    return false;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
