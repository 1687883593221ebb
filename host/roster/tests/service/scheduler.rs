//! The scheduler end to end: cron and interval schedules start runs, a missed fire time runs
//! once at start, a due source waits for the run in progress, the first scheduled run is full.
//! (The expression table itself is tested in `scheduler::cron`.)

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::Configured;
use common::world::{World, bitbucket};
use roster_serve::service::{RequestedMode as RunMode, RunRequest, Service};
use roster_sim::directory::Directory;
use roster_store::RunRow;

struct Scheduled {
    w: World,
    service: Arc<Service>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A `file` source with `schedule` and a running scheduler; `extra` is appended to the
/// configuration, `before` runs against the world before the scheduler starts.
async fn scheduled(schedule: &str, extra: &str, before: impl FnOnce(&World)) -> Scheduled {
    let d = Directory::generate(40, 4, 1);
    let w = World::new(&d, bitbucket()).await;
    let text = w.config_text().replace(
        "[[source.transforms]]",
        &format!("schedule = {schedule}\n\n[[source.transforms]]"),
    ) + extra;
    let path = w.rt.dir.path().join("roster.toml");
    std::fs::write(&path, text).unwrap();
    let service = Service::new(w.store.clone(), w.rt.runtime.clone(), &path, common::kinds()).unwrap();
    before(&w);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(roster_serve::scheduler::run(service.clone(), stopped));
    Scheduled { w, service, stop, task }
}

impl Scheduled {
    async fn stop(self) -> World {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap()
            .unwrap();
        self.w
    }
}

fn runs(w: &World, trigger: &str) -> Vec<RunRow> {
    let filter = roster_store::RunFilter {
        trigger: Some(trigger.parse().unwrap()),
        ..Default::default()
    };
    let mut r = w.store.runs_filtered(&filter, 100).unwrap();
    r.reverse();
    r
}

async fn wait_for(w: &World, trigger: &str, n: usize, within: Duration) -> Vec<RunRow> {
    let started = std::time::Instant::now();
    loop {
        let r = runs(w, trigger);
        if r.iter().filter(|x| x.state != "running").count() >= n {
            return r;
        }
        assert!(
            started.elapsed() < within,
            "{n} {trigger} run(s) did not happen in {within:?}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quartz_cron_schedule_runs_the_source_first_full_then_incremental() {
    let s = scheduled("{ cron = \"*/2 * * * * ?\" }", "", |_| {}).await;
    let r = wait_for(&s.w, "schedule", 2, Duration::from_secs(20)).await;
    assert_eq!(r[0].state, "succeeded", "{:?}", r[0]);
    assert_eq!(r[0].mode, "full", "the first scheduled run is full");
    assert_eq!(r[1].mode, "incremental", "then incremental until full_every_hours");
    assert_eq!(r[0].sources, vec!["hr".to_string()]);
    let fired = s.w.store.schedule_state("hr").unwrap();
    assert!(fired.last_fire_at.is_some() && fired.last_success_at.is_some());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_time_missed_while_roster_was_down_runs_once_at_start() {
    let two_hours_ago = roster_store::now_ms() - 2 * 3600 * 1000;
    let s = scheduled("{ every_minutes = 30 }", "", |w| {
        w.store.record_fire("hr", two_hours_ago).unwrap();
    })
    .await;
    let r = wait_for(&s.w, "schedule", 1, Duration::from_secs(20)).await;
    assert_eq!(r[0].state, "succeeded");
    // Four fire times were missed; one run makes up for them, and the next is 30 minutes out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(runs(&s.w, "schedule").len(), 1);
    let fired = s.w.store.schedule_state("hr").unwrap().last_fire_at.unwrap();
    assert!(fired > two_hours_ago && fired <= roster_store::now_ms());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_source_waits_for_the_run_in_progress_and_never_overlaps_it() {
    let s = scheduled("{ cron = \"*/1 * * * * ?\" }", "", |w| {
        // A slow Bitbucket: the first run takes a few seconds.
        w.sim.lock().set_rate_limit(25.0, 5);
    })
    .await;
    let manual = s.service.start_run(RunRequest {
        sources: vec![],
        mode: RunMode::Full,
        trigger: roster_model::Trigger::Api,
        actor: "test".into(),
        origin: String::new(),
        target: None,
    });
    let manual = match manual {
        Ok(id) => id,
        // The scheduler got there first: then its run is the long one.
        Err(_) => wait_for(&s.w, "schedule", 1, Duration::from_secs(60)).await[0].id,
    };
    let r = wait_for(&s.w, "schedule", 2, Duration::from_secs(90)).await;
    let w = s.stop().await;
    let all = {
        let mut a = w.store.runs(100).unwrap();
        a.sort_by_key(|r| r.started_at);
        a
    };
    for pair in all.windows(2) {
        let end = pair[0].finished_at.unwrap();
        assert!(
            end <= pair[1].started_at,
            "runs overlap: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    assert!(all.iter().any(|r| r.id == manual));
    assert!(r.len() >= 2);
}

/// A source whose runs keep failing is announced as stale once it has gone `stale_after_hours`
/// without a successful run (counted from when the scheduler first ran it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_a_successful_run_for_too_long_is_announced_as_stale() {
    let hooks = common::webhook::Receiver::start().await;
    // 0.0005 hours = 1.8 s.
    let alert = format!(
        "\n[[alert]]\nurl = \"{}\"\nevents = [\"stale\"]\nstale_after_hours = 0.0005\n",
        hooks.url
    );
    let s = scheduled("{ cron = \"*/1 * * * * ?\" }", &alert, |w| {
        // The export is gone: every run fails, none succeeds.
        std::fs::remove_file(w.files_dir().join("directory.json")).unwrap();
    })
    .await;
    let stale = hooks.wait_event("stale", Duration::from_secs(30)).await;
    assert_eq!(stale["details"]["source"], "hr", "{stale}");
    let failed = runs(&s.w, "schedule");
    assert!(
        failed
            .iter()
            .filter(|r| r.state != "running")
            .all(|r| r.state == "failed"),
        "{failed:?}"
    );
    assert!(stale["details"]["last_success_unix"].is_null(), "{stale}");
    s.stop().await;
}
