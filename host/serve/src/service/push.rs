//! Pushes become runs: each push to a source (SCIM) is durable in the source's mirror before
//! the pusher has its answer; this queue then turns the pushes into as few runs as keep the
//! delay bounded.
//!
//! Per push source it remembers the first push not yet carried by a run and the latest push. A
//! source is due once its pushes have been quiet for `debounce_seconds`, or `max_delay_seconds`
//! after its first pending push, whichever comes first. Every source due at that moment shares
//! one run (incremental, `sources` = those sources, trigger `push`): the plan always covers every
//! mirror, so one run carries any number of pushed sources. While a run holds the target the
//! due run waits and starts as soon as it ends.
//!
//! A source's pending state is taken when its run is started, before that run reads any
//! mirror: a push that lands after the take is pending again and makes another run, so no push
//! is ever left uncarried (a push landing between the take and the mirror read is carried twice,
//! which costs an empty plan, not a lost change).
//!
//! The pushes a run took stay owed until it ends (`ended`). A run that ends `succeeded` carried
//! them; so did one that ends `held`: the guard decided, the administrator acts on the plan,
//! and the pushes are in the mirror for the next run to plan again. Any other end (failed,
//! partial, cancelled, refused) and a run that cannot start put the sources back as pending,
//! due no sooner than a backoff after the failure (`retry_after`: `max(debounce, 30 s)`,
//! doubling with each failure in a row, at most 15 minutes), so a push made while Bitbucket
//! is down reaches it once it is back without waiting for the identity provider to push again.
//! A run interrupted by Roster stopping is covered by `resume` at the next start.
//!
//! One worker task runs while anything is pending and ends when nothing is; `pushed` starts it
//! again. It holds the service weakly, so a dropped service ends it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a source's pushes are gathered before its run: from its `[source.push]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Quiet time after the latest push.
    pub debounce: Duration,
    /// Longest wait after the first pending push.
    pub max_delay: Duration,
}

impl Timing {
    /// From a source's push settings.
    pub fn of(push: &roster_directory::PushConfig) -> Timing {
        Timing {
            debounce: Duration::from_secs(push.debounce_seconds),
            max_delay: Duration::from_secs(push.max_delay_seconds),
        }
    }
}

/// One source's pushes not yet carried by a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    first: Instant,
    last: Instant,
    pushes: u64,
    /// Runs in a row that took these pushes and did not carry them; 0 when none.
    failures: u32,
    /// The latest of those runs (`None` when a run could not even start, or none failed).
    failed_run: Option<i64>,
    /// After a failure: the retry is not due before this.
    not_before: Option<Instant>,
}

impl Pending {
    fn new(at: Instant) -> Pending {
        Pending {
            first: at,
            last: at,
            pushes: 1,
            failures: 0,
            failed_run: None,
            not_before: None,
        }
    }

    /// When the source's run is due under `timing`.
    fn due(&self, timing: Timing) -> Instant {
        let due = (self.last + timing.debounce).min(self.first + timing.max_delay);
        self.not_before.map_or(due, |n| due.max(n))
    }

    /// The two combined (pending taken for a run that did not carry it, and pushes since).
    fn merge(self, other: Pending) -> Pending {
        Pending {
            first: self.first.min(other.first),
            last: self.last.max(other.last),
            pushes: self.pushes + other.pushes,
            failures: self.failures.max(other.failures),
            failed_run: self.failed_run.max(other.failed_run),
            not_before: self.not_before.max(other.not_before),
        }
    }
}

/// The shortest wait before retrying pushes whose run failed: a moment's outage (a 503, a
/// restart of Bitbucket) is usually over by then.
const RETRY_MIN: Duration = Duration::from_secs(30);
/// The longest: a long outage is retried four times an hour.
const RETRY_MAX: Duration = Duration::from_secs(15 * 60);

/// How long after its `failures`-th failure in a row a source's pushes are retried:
/// `max(debounce, 30 s)`, doubled for each failure after the first, at most 15 minutes.
pub fn retry_after(timing: Timing, failures: u32) -> Duration {
    let base = timing.debounce.max(RETRY_MIN);
    let doublings = failures.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// How a run that took pushes ended, for the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// `succeeded`, `held` (the guard decided; the pushes are in the mirror and the next run
    /// plans them again) or `paused` (the target's call budget ran out; the next run continues):
    /// the pushes are carried.
    Carried,
    /// Any other end: the pushes are owed again, retried after a backoff.
    NotCarried,
}

/// A pushed source's queue as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PushState {
    /// Pushes not yet carried by a run (0: none pending): received since the last run that
    /// carries them started, or taken by runs that did not succeed.
    pub pending_pushes: u64,
    /// When the first of them was received (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_pending_at: Option<i64>,
    /// When the run carrying them is due (RFC 3339, UTC): the debounce after the latest push, or the
    /// maximum delay after the first, whichever is earlier; a run in progress delays it.
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run_at: Option<i64>,
    /// The latest push this process received (RFC 3339, UTC); `null` when none since it started.
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_push_at: Option<i64>,
    /// Runs in a row that took the pending pushes and did not carry them (failed, partial,
    /// cancelled, refused, or could not start); 0 when none. While above 0, `next_run_at` is
    /// the retry, after a backoff.
    pub failed_runs: u32,
    /// The latest of those runs; `null` when none (or it could not start).
    pub failed_run_id: Option<i64>,
}

/// Why the queue could not start a run.
#[derive(Debug)]
pub enum Refused {
    /// Another run holds the target: try again when it ends.
    Busy,
    /// The run cannot start (no target yet): the pushes are retried after a backoff.
    Failed(String),
}

/// Why a source is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// The source pushed.
    Push,
    /// Roster started: pushes may have arrived after the last run before it stopped.
    Resume,
}

/// What the queue needs from the service; a trait so the timing can be tested alone.
pub trait Runs: Send + Sync + 'static {
    /// The source's push timing now (reloads change it); `None` when it is no longer an
    /// enabled push source, which drops its pending pushes.
    fn timing(&self, source: &str) -> Option<Timing>;
    /// A run holds the target.
    fn busy(&self) -> bool;
    /// Starts a push run over `sources`, answering with its id.
    fn start(self: &Arc<Self>, sources: &[String]) -> Result<i64, Refused>;
}

#[derive(Debug, Default)]
struct Inner {
    pending: BTreeMap<String, Pending>,
    /// The latest push per source (unix ms), for staleness and the API.
    last_push: BTreeMap<String, i64>,
    /// A worker task is running (it clears this, under the lock, when it ends).
    worker: bool,
}

/// The push queue.
#[derive(Debug, Default)]
pub struct PushQueue {
    inner: Mutex<Inner>,
    /// What each started run took, until it ends. Held while a run is started, so the run's
    /// end (which may come at once) finds what it carried.
    carrying: Mutex<BTreeMap<i64, Vec<(String, Pending)>>>,
    /// Wakes the worker: a push arrived.
    wake: Notify,
}

/// While a run holds the target, the worker looks this often whether it has ended.
const BUSY_POLL: Duration = Duration::from_millis(100);

impl PushQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a push to `source` and makes sure a worker will start its run; never blocks
    /// beyond a short lock, never fails. Outside a Tokio runtime the push is only recorded
    /// (the next push inside one starts the worker).
    pub fn push<R: Runs>(self: &Arc<Self>, runs: &Arc<R>, source: &str) {
        self.enqueue(runs, source, Arrival::Push);
    }

    /// Queues a run for `source` as a push would, without counting as one (staleness).
    pub fn resume<R: Runs>(self: &Arc<Self>, runs: &Arc<R>, source: &str) {
        self.enqueue(runs, source, Arrival::Resume);
    }

    fn enqueue<R: Runs>(self: &Arc<Self>, runs: &Arc<R>, source: &str, arrival: Arrival) {
        let now = Instant::now();
        {
            let mut inner = self.lock();
            inner
                .pending
                .entry(source.to_string())
                .and_modify(|p| {
                    p.last = now;
                    p.pushes += 1;
                })
                .or_insert(Pending::new(now));
            if arrival == Arrival::Push {
                inner.last_push.insert(source.to_string(), roster_store::now_ms());
            }
        }
        self.ensure_worker(runs, source);
    }

    /// Wakes the worker, or starts one when none runs.
    fn ensure_worker<R: Runs>(self: &Arc<Self>, runs: &Arc<R>, source: &str) {
        let wake = {
            let mut inner = self.lock();
            match (inner.worker, tokio::runtime::Handle::try_current()) {
                (true, _) => None,
                (false, Ok(handle)) => {
                    inner.worker = true;
                    Some(Ok(handle))
                }
                (false, Err(_)) => Some(Err(())),
            }
        };
        match wake {
            // A worker is running (or sleeping): it looks at the queue again.
            None => self.wake.notify_one(),
            Some(Ok(handle)) => {
                handle.spawn(work(self.clone(), Arc::downgrade(runs)));
            }
            Some(Err(())) => {
                tracing::warn!(
                    source,
                    "a push outside the async runtime is queued; its run starts with the next push inside it"
                )
            }
        }
    }

    /// A run ended: the pushes it took (if any) are carried, or owed again and retried after a
    /// backoff (see the module's documentation).
    pub fn ended<R: Runs>(self: &Arc<Self>, runs: &Arc<R>, run_id: i64, end: RunEnd) {
        let taken = self.carrying.lock().unwrap_or_else(|p| p.into_inner()).remove(&run_id);
        let Some(taken) = taken else { return };
        if end == RunEnd::Carried {
            return;
        }
        self.retry(runs, Some(run_id), taken);
    }

    /// Puts `taken` back as pending after a failure (of run `run_id`, or to start one), due no
    /// sooner than the backoff.
    fn retry<R: Runs>(self: &Arc<Self>, runs: &Arc<R>, run_id: Option<i64>, taken: Vec<(String, Pending)>) {
        let now = Instant::now();
        let retried: Vec<(String, Pending)> = taken
            .into_iter()
            .filter_map(|(source, p)| {
                let timing = runs.timing(&source)?;
                let failures = p.failures + 1;
                let wait = retry_after(timing, failures);
                tracing::warn!(
                    source,
                    run_id,
                    pushes = p.pushes,
                    failures,
                    retry_in_seconds = wait.as_secs(),
                    "a run taking pushes did not succeed; they are in the mirror and retried by another run"
                );
                Some((
                    source,
                    Pending {
                        failures,
                        failed_run: run_id.or(p.failed_run),
                        not_before: Some(now + wait),
                        ..p
                    },
                ))
            })
            .collect();
        if retried.is_empty() {
            return;
        }
        let first = retried[0].0.clone();
        self.put_back(retried);
        self.ensure_worker(runs, &first);
    }

    /// The configuration changed (a source's timing, a source removed): the worker works out
    /// its deadlines again.
    pub fn reconfigured(&self) {
        self.wake.notify_one();
    }

    /// The latest push to `source` this process received (unix ms).
    pub fn last_push(&self, source: &str) -> Option<i64> {
        self.lock().last_push.get(source).copied()
    }

    /// The queue's state for `source` under `timing`.
    pub fn state(&self, source: &str, timing: Timing) -> PushState {
        let inner = self.lock();
        let (now, now_ms) = (Instant::now(), roster_store::now_ms());
        let at = |t: Instant| {
            if t >= now {
                now_ms + (t - now).as_millis() as i64
            } else {
                now_ms - (now - t).as_millis() as i64
            }
        };
        let pending = inner.pending.get(source);
        PushState {
            pending_pushes: pending.map_or(0, |p| p.pushes),
            first_pending_at: pending.map(|p| at(p.first)),
            next_run_at: pending.map(|p| at(p.due(timing))),
            last_push_at: inner.last_push.get(source).copied(),
            failed_runs: pending.map_or(0, |p| p.failures),
            failed_run_id: pending.and_then(|p| p.failed_run),
        }
    }

    /// Sources with pushes pending.
    pub fn pending(&self) -> Vec<String> {
        self.lock().pending.keys().cloned().collect()
    }

    /// Under the lock: drops sources that are no longer pushed, takes the sources due at `now`
    /// and says when the next one is due; `None` (and the worker marked ended) when nothing is
    /// pending.
    #[allow(clippy::type_complexity)]
    fn take_due(
        &self,
        now: Instant,
        timing: impl Fn(&str) -> Option<Timing>,
    ) -> Option<(Vec<(String, Pending)>, Option<Instant>)> {
        let mut inner = self.lock();
        inner.pending.retain(|source, _| {
            let known = timing(source).is_some();
            if !known {
                tracing::info!(
                    source,
                    "pushes pending for a source that is no longer an enabled push source; dropped (its mirror stays)"
                );
            }
            known
        });
        if inner.pending.is_empty() {
            inner.worker = false;
            return None;
        }
        let mut next = None::<Instant>;
        let mut due = Vec::new();
        for (source, p) in &inner.pending {
            let at = timing(source).map_or(now, |t| p.due(t));
            if at <= now {
                due.push(source.clone());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let taken = due
            .into_iter()
            .filter_map(|s| inner.pending.remove(&s).map(|p| (s, p)))
            .collect();
        Some((taken, next))
    }

    /// Puts back what was taken for a run that did not start, merged with pushes since.
    fn put_back(&self, taken: Vec<(String, Pending)>) {
        let mut inner = self.lock();
        for (source, p) in taken {
            let merged = match inner.pending.remove(&source) {
                Some(newer) => p.merge(newer),
                None => p,
            };
            inner.pending.insert(source, merged);
        }
    }
}

/// The worker: sleeps until the next source is due (or a push arrives), waits while a run
/// holds the target, starts the due sources' run; ends when nothing is pending.
async fn work<R: Runs>(queue: Arc<PushQueue>, runs: Weak<R>) {
    loop {
        let Some(service) = runs.upgrade() else {
            queue.lock().worker = false;
            return;
        };
        let now = Instant::now();
        let Some((taken, next)) = queue.take_due(now, |s| service.timing(s)) else {
            return;
        };
        let mut wait_until = next;
        if !taken.is_empty() {
            let sources: Vec<String> = taken.iter().map(|(s, _)| s.clone()).collect();
            let pushes: u64 = taken.iter().map(|(_, p)| p.pushes).sum();
            let started = {
                // Held until what the run took is recorded: its end may come at once.
                let mut carrying = queue.carrying.lock().unwrap_or_else(|p| p.into_inner());
                let started = if service.busy() {
                    Err(Refused::Busy)
                } else {
                    service.start(&sources)
                };
                match started {
                    Ok(run_id) => {
                        carrying.insert(run_id, taken);
                        Ok(run_id)
                    }
                    Err(e) => Err((e, taken)),
                }
            };
            match started {
                Ok(run_id) => tracing::info!(run_id, ?sources, pushes, "run started for pushes"),
                Err((Refused::Busy, taken)) => {
                    queue.put_back(taken);
                    let poll = now + BUSY_POLL;
                    wait_until = Some(wait_until.map_or(poll, |n| n.min(poll)));
                }
                Err((Refused::Failed(e), taken)) => {
                    tracing::warn!(?sources, pushes, "no run started for pushes: {e}");
                    queue.retry(&service, None, taken);
                    // The worker itself is running: it works the deadlines out again.
                    continue;
                }
            }
        }
        drop(service);
        // Nothing else due later: look again at once (the queue is empty, or a push came).
        let Some(until) = wait_until else { continue };
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = queue.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Runs that are recorded, with their start times, and a switch for a run in progress.
    struct Recorder {
        t0: Instant,
        started: Mutex<Vec<(Instant, Vec<String>)>>,
        busy: AtomicBool,
        /// Starting a run fails (no target).
        refuse: AtomicBool,
        gone: Mutex<Vec<String>>,
        timing: Mutex<Timing>,
    }

    impl Runs for Recorder {
        fn timing(&self, source: &str) -> Option<Timing> {
            if self.gone.lock().unwrap().iter().any(|g| g == source) {
                return None;
            }
            Some(*self.timing.lock().unwrap())
        }
        fn busy(&self) -> bool {
            self.busy.load(Ordering::SeqCst)
        }
        fn start(self: &Arc<Self>, sources: &[String]) -> Result<i64, Refused> {
            if self.refuse.load(Ordering::SeqCst) {
                return Err(Refused::Failed("no target".into()));
            }
            let mut s = self.started.lock().unwrap();
            s.push((Instant::now(), sources.to_vec()));
            Ok(s.len() as i64)
        }
    }

    impl Recorder {
        fn new() -> Recorder {
            Recorder {
                t0: Instant::now(),
                started: Mutex::default(),
                busy: AtomicBool::default(),
                refuse: AtomicBool::default(),
                gone: Mutex::default(),
                timing: Mutex::new(Timing {
                    debounce: Duration::from_secs(3),
                    max_delay: Duration::from_secs(5),
                }),
            }
        }

        /// Each run started: when (after the recorder was made) and over which sources.
        fn starts(&self) -> Vec<(Duration, Vec<String>)> {
            self.started
                .lock()
                .unwrap()
                .iter()
                .map(|(t, s)| (*t - self.t0, s.clone()))
                .collect()
        }
    }

    fn setup() -> (Arc<PushQueue>, Arc<Recorder>) {
        tokio::time::pause();
        (Arc::new(PushQueue::default()), Arc::new(Recorder::new()))
    }

    async fn advance(secs: f64) {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_of_pushes_becomes_one_run_after_the_quiet_time() {
        let (q, r) = setup();
        for _ in 0..300 {
            q.push(&r, "entra");
        }
        advance(2.9).await;
        assert!(r.starts().is_empty(), "nothing before the debounce");
        assert_eq!(q.state("entra", r.timing("entra").unwrap()).pending_pushes, 300);
        advance(0.2).await;
        let starts = r.starts();
        assert_eq!(starts.len(), 1, "{starts:?}");
        assert_eq!(starts[0].1, vec!["entra".to_string()]);
        assert!(starts[0].0 >= Duration::from_secs(3), "{starts:?}");
        assert_eq!(q.state("entra", r.timing("entra").unwrap()).pending_pushes, 0);
        advance(60.0).await;
        assert_eq!(r.starts().len(), 1, "no second run without a push");
        assert!(!q.lock().worker, "the worker ends when nothing is pending");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn continuous_pushes_start_a_run_by_the_maximum_delay() {
        let (q, r) = setup();
        // A push every second: never quiet for 3 s; the run starts 5 s after the first.
        for _ in 0..12 {
            q.push(&r, "entra");
            advance(1.0).await;
        }
        let starts = r.starts();
        assert!(!starts.is_empty(), "a run despite pushes never pausing");
        let first = starts[0].0;
        assert!(
            first >= Duration::from_secs(5) && first < Duration::from_secs(6),
            "{starts:?}"
        );
        // The pushes after that run started are carried by the next, again within 5 s.
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!(starts[1].0 <= Duration::from_secs(11), "{starts:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_run_in_progress_delays_the_pushed_run_until_it_ends() {
        let (q, r) = setup();
        r.busy.store(true, Ordering::SeqCst);
        q.push(&r, "entra");
        advance(20.0).await;
        assert!(r.starts().is_empty());
        q.push(&r, "entra");
        assert_eq!(
            q.state("entra", r.timing("entra").unwrap()).pending_pushes,
            2,
            "nothing lost while waiting"
        );
        r.busy.store(false, Ordering::SeqCst);
        advance(0.5).await;
        let starts = r.starts();
        assert_eq!(starts.len(), 1, "{starts:?}");
        assert!(
            starts[0].0 < Duration::from_secs(21),
            "as soon as the run ended: {starts:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sources_due_together_share_a_run_and_others_keep_their_own_time() {
        let (q, r) = setup();
        q.push(&r, "entra");
        q.push(&r, "okta");
        advance(2.0).await;
        q.push(&r, "scim");
        advance(1.5).await;
        let starts = r.starts();
        assert_eq!(starts.len(), 1, "{starts:?}");
        assert_eq!(starts[0].1, vec!["entra".to_string(), "okta".to_string()]);
        advance(2.0).await;
        let starts = r.starts();
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert_eq!(starts[1].1, vec!["scim".to_string()]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_source_removed_by_a_reload_drops_its_pending_pushes() {
        let (q, r) = setup();
        q.push(&r, "entra");
        r.gone.lock().unwrap().push("entra".into());
        advance(10.0).await;
        assert!(r.starts().is_empty());
        assert!(q.pending().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reload_that_shortens_the_wait_is_honoured_at_once() {
        let (q, r) = setup();
        *r.timing.lock().unwrap() = Timing {
            debounce: Duration::from_secs(60),
            max_delay: Duration::from_secs(600),
        };
        q.push(&r, "entra");
        advance(5.0).await;
        assert!(r.starts().is_empty());
        *r.timing.lock().unwrap() = Timing {
            debounce: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        q.reconfigured();
        advance(0.5).await;
        let starts = r.starts();
        assert_eq!(starts.len(), 1, "{starts:?}");
        assert!(starts[0].0 < Duration::from_secs(6), "{starts:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pushes_whose_run_failed_are_retried_after_a_doubling_backoff_until_a_run_carries_them() {
        let (q, r) = setup();
        let timing = r.timing("entra").unwrap();
        q.push(&r, "entra");
        advance(3.1).await;
        assert_eq!(r.starts().len(), 1);
        q.ended(&r, 1, RunEnd::NotCarried);
        let state = q.state("entra", timing);
        assert_eq!(
            (state.pending_pushes, state.failed_runs, state.failed_run_id),
            (1, 1, Some(1)),
            "{state:?}"
        );
        // First retry 30 s after the failure, not at the 3 s debounce.
        advance(29.5).await;
        assert_eq!(r.starts().len(), 1, "{:?}", r.starts());
        advance(1.0).await;
        assert_eq!(r.starts().len(), 2, "{:?}", r.starts());
        assert_eq!(q.state("entra", timing).pending_pushes, 0, "taken by the retry");
        // It fails too: the next waits twice as long.
        q.ended(&r, 2, RunEnd::NotCarried);
        assert_eq!(q.state("entra", timing).failed_runs, 2);
        advance(59.5).await;
        assert_eq!(r.starts().len(), 2, "{:?}", r.starts());
        advance(1.0).await;
        let starts = r.starts();
        assert_eq!(starts.len(), 3, "{starts:?}");
        assert_eq!(starts[2].1, vec!["entra".to_string()]);
        // This one succeeds: nothing is owed any more, nothing else starts.
        q.ended(&r, 3, RunEnd::Carried);
        let state = q.state("entra", timing);
        assert_eq!((state.pending_pushes, state.failed_runs), (0, 0), "{state:?}");
        advance(3600.0).await;
        assert_eq!(r.starts().len(), 3, "{:?}", r.starts());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_push_made_during_a_failing_run_waits_for_the_retry_and_is_carried_with_it() {
        let (q, r) = setup();
        q.push(&r, "entra");
        advance(3.1).await;
        q.push(&r, "entra");
        q.ended(&r, 1, RunEnd::NotCarried);
        let state = q.state("entra", r.timing("entra").unwrap());
        assert_eq!((state.pending_pushes, state.failed_runs), (2, 1), "{state:?}");
        advance(10.0).await;
        assert_eq!(r.starts().len(), 1, "no run into the outage at the debounce");
        advance(21.0).await;
        assert_eq!(r.starts().len(), 2, "{:?}", r.starts());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pushes_whose_run_could_not_start_are_retried_after_the_backoff() {
        let (q, r) = setup();
        r.refuse.store(true, Ordering::SeqCst);
        q.push(&r, "entra");
        advance(3.1).await;
        let state = q.state("entra", r.timing("entra").unwrap());
        assert_eq!(
            (state.pending_pushes, state.failed_runs, state.failed_run_id),
            (1, 1, None),
            "{state:?}"
        );
        r.refuse.store(false, Ordering::SeqCst);
        advance(20.0).await;
        assert!(r.starts().is_empty());
        advance(11.0).await;
        assert_eq!(r.starts().len(), 1, "{:?}", r.starts());
    }

    #[test]
    fn the_retry_backoff_doubles_from_30_seconds_or_the_debounce_up_to_15_minutes() {
        let t = |debounce| Timing {
            debounce: Duration::from_secs(debounce),
            max_delay: Duration::from_secs(600),
        };
        let secs = |timing, n| retry_after(timing, n).as_secs();
        assert_eq!(
            (1..=7).map(|n| secs(t(5), n)).collect::<Vec<_>>(),
            vec![30, 60, 120, 240, 480, 900, 900]
        );
        assert_eq!(secs(t(45), 1), 45);
        assert_eq!(secs(t(5), u32::MAX), 900);
    }

    #[test]
    fn a_push_outside_a_runtime_is_recorded_and_waits_for_the_next() {
        let q = Arc::new(PushQueue::default());
        let r = Arc::new(Recorder::new());
        q.push(&r, "entra");
        assert_eq!(q.pending(), vec!["entra".to_string()]);
        assert!(!q.lock().worker);
    }
}
