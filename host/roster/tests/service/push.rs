//! Pushes become runs: a push source's changes, written to its mirror as the SCIM endpoint
//! writes them and announced with `Service::pushed`, reach the Bitbucket simulator through one
//! debounced run, within the maximum delay even while pushes never pause, and under the same
//! guard and deprovisioning policy as pulled changes.
//!
//! The mirror is written here the way a push writes it (rows of one source, upserted or
//! removed in one transaction), without the HTTP endpoint: these tests are about what happens
//! after a push is durable.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_serve::service::Service;
use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_store::{MirrorGroup, MirrorMembership, MirrorUser, Removed, RunRow, Store};

use common::TestRuntime;
use common::world::bitbucket;

const SOURCE: &str = "entra";

/// The staging id a push's rows go through; runs never stage a push source.
const PUSH_STAGING: i64 = 0;

/// A Roster service with one push source `entra` and the Bitbucket simulator as its target.
struct Pushed {
    sim: BitbucketSim,
    store: Arc<Store>,
    service: Arc<Service>,
    _rt: TestRuntime,
}

/// One push: what an IdP's SCIM write changes in the source's mirror.
#[derive(Default)]
struct Push {
    users: Vec<MirrorUser>,
    groups: Vec<MirrorGroup>,
    memberships: Vec<MirrorMembership>,
}

fn user(n: usize) -> MirrorUser {
    MirrorUser {
        ext_id: format!("u{n}"),
        username: format!("user{n}"),
        email: Some(format!("user{n}@example.com")),
        display_name: Some(format!("User {n}")),
        active: true,
        attributes: vec![],
        removed: None,
    }
}

fn group(name: &str) -> MirrorGroup {
    MirrorGroup {
        ext_id: format!("g-{name}"),
        name: name.into(),
        description: None,
        attributes: vec![],
        removed: None,
    }
}

fn member(group: &str, n: usize) -> MirrorMembership {
    MirrorMembership {
        group_id: format!("g-{group}"),
        member_id: format!("u{n}"),
        member_is_group: false,
        removed: false,
    }
}

impl Pushed {
    /// `push` is added to `[source.push]`, `target` to `[target]`.
    async fn start(push: &str, target: &str) -> Pushed {
        Pushed::start_with(push, target, bitbucket()).await
    }

    /// As [`Pushed::start`], over a Bitbucket holding `state`.
    async fn start_with(push: &str, target: &str, state: BbState) -> Pushed {
        let rt = TestRuntime::new(&[]).await;
        let sim = BitbucketSim::start(state).await;
        let store = common::store_in(&rt, 17);
        let text = format!(
            r#"[[source]]
id = "{SOURCE}"
[source.push]
protocol = "scim"
{push}

[target]
url = "{}"
username = "admin"
password = {{ value = "password" }}
default_groups = ["bitbucket-users"]
{target}
"#,
            sim.url()
        );
        let path = rt.dir.path().join("roster.toml");
        std::fs::write(&path, text).unwrap();
        let service = Service::new(store.clone(), rt.runtime.clone(), &path, common::kinds()).unwrap();
        Pushed {
            sim,
            store,
            service,
            _rt: rt,
        }
    }

    /// Writes `p` to the mirror durably, as the endpoint does before answering, then tells the
    /// service; answers how long `pushed` took.
    fn push(&self, p: Push) -> Duration {
        self.store
            .stage_page(PUSH_STAGING, SOURCE, &p.users, &p.groups, &p.memberships)
            .unwrap();
        self.store.promote_delta(PUSH_STAGING, SOURCE, None).unwrap();
        let t = Instant::now();
        self.service.pushed(SOURCE);
        t.elapsed()
    }

    /// The runs pushes started, oldest first.
    fn push_runs(&self) -> Vec<RunRow> {
        common::push::push_runs(&self.store)
    }

    /// Waits until `n` push runs have ended.
    async fn ended(&self, n: usize) -> Vec<RunRow> {
        common::push::ended(&self.store, &self.service, n).await
    }

    /// The initial state: `users` people, all in group `devs`, pushed and carried by a run.
    async fn seeded(&self, users: usize) -> RunRow {
        self.push(Push {
            users: (0..users).map(user).collect(),
            groups: vec![group("devs")],
            memberships: (0..users).map(|n| member("devs", n)).collect(),
        });
        let runs = self.ended(1).await;
        let first = runs.last().unwrap().clone();
        assert_eq!(first.state.as_str(), "succeeded", "{first:?}");
        assert_eq!(self.members("devs").len(), users);
        first
    }

    fn members(&self, group: &str) -> Vec<String> {
        self.sim
            .lock()
            .groups()
            .get(group)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_user_and_group_reach_bitbucket_through_one_push_run() {
    let w = Pushed::start("debounce_seconds = 1\nmax_delay_seconds = 10", "").await;
    w.push(Push {
        users: vec![user(1)],
        groups: vec![group("devs")],
        memberships: vec![member("devs", 1)],
    });
    let runs = w.ended(1).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(
        (run.state.as_str(), run.mode.as_str(), run.sources.clone()),
        ("succeeded", "incremental", vec![SOURCE.to_string()]),
        "{run:?}"
    );
    {
        let bb = w.sim.lock();
        let u = bb.users().get("user1").expect("the pushed user is in Bitbucket");
        assert_eq!(u.email, "user1@example.com");
        assert!(bb.licensed_users().contains("user1"));
    }
    assert_eq!(w.members("devs"), vec!["user1".to_string()]);
    // The run recorded the source's success; the queue is empty again.
    assert!(w.store.schedule_state(SOURCE).unwrap().last_success_at.is_some());
    let source = w.service.config().sources[0].clone();
    let state = w.service.push_state(&source).unwrap();
    assert_eq!((state.pending_pushes, state.next_run_at), (0, None));
    assert!(state.last_push_at.is_some());
}

/// 300 single-member PATCHes in a burst: one run, one plan, every member added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_300_pushes_makes_one_run_and_one_plan() {
    // Five quiet seconds: a loaded machine does not pause that long between two pushes.
    let w = Pushed::start("debounce_seconds = 5\nmax_delay_seconds = 600", "").await;
    w.push(Push {
        users: (0..300).map(user).collect(),
        groups: vec![group("devs")],
        memberships: vec![],
    });
    w.ended(1).await;
    assert!(w.members("devs").is_empty());

    for n in 0..300 {
        w.push(Push {
            memberships: vec![member("devs", n)],
            ..Push::default()
        });
    }
    let source = w.service.config().sources[0].clone();
    let state = w.service.push_state(&source).unwrap();
    assert_eq!(state.pending_pushes, 300, "{state:?}");
    assert!(state.next_run_at.is_some(), "{state:?}");

    let runs = w.ended(2).await;
    // Time for a stray second run to show, if the queue made one.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let runs_after = w.push_runs();
    assert_eq!(
        runs_after.len(),
        2,
        "the initial push's run and one for the burst: {runs_after:?}"
    );
    let burst = &runs[1];
    assert_eq!(burst.state.as_str(), "succeeded", "{burst:?}");
    assert!(burst.plan_id.is_some());
    let plans: Vec<_> = runs_after.iter().filter_map(|r| r.plan_id.clone()).collect();
    assert_eq!(plans.len(), 2, "one plan per run");
    assert_eq!(w.members("devs").len(), 300);

    let metrics = w.service.metrics.encode();
    assert!(
        metrics.contains("roster_pushes_total{source=\"entra\"} 301"),
        "{metrics}"
    );
    assert!(metrics.contains("roster_push_runs_started_total 2"), "{metrics}");
}

/// A push every second, debounce 3 s, maximum delay 5 s: the pushes never pause long enough for
/// the debounce, and still a run starts while they go on; the last push is carried too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_that_never_pause_still_start_a_run_within_the_maximum_delay() {
    let w = Pushed::start("debounce_seconds = 3\nmax_delay_seconds = 5", "").await;
    let pushes = 14;
    for n in 0..pushes {
        w.push(Push {
            users: vec![user(n)],
            ..Push::default()
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let during = w.push_runs();
    assert!(
        !during.is_empty(),
        "no run started during {pushes} s of pushes one second apart"
    );
    // The last push is carried by a run that starts after it, so Bitbucket ends with everyone.
    let started = Instant::now();
    while w.sim.lock().users().len() < pushes || w.service.runs.busy().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not every pushed user reached Bitbucket: {:?}",
            w.push_runs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in 0..pushes {
        assert!(w.sim.lock().users().contains_key(&format!("user{n}")), "user{n}");
    }
    let all = w.push_runs();
    assert!(
        all.len() < pushes,
        "pushes were gathered, not one run each: {} runs",
        all.len()
    );
}

/// Pushed `active: false` under the default policy disables the account (unlicensed, kept);
/// a pushed delete under `deprovision = "delete"` deletes it — as a pulled change would. (Thirty
/// people, so one deprovisioned stays under the guard's 10 %.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_deactivation_follows_the_deprovisioning_policy() {
    let w = Pushed::start("debounce_seconds = 1", "").await;
    w.seeded(30).await;
    let mut off = user(1);
    off.active = false;
    w.push(Push {
        users: vec![off],
        ..Push::default()
    });
    let runs = w.ended(2).await;
    assert_eq!(runs[1].state.as_str(), "succeeded", "{:?}", runs[1]);
    {
        let bb = w.sim.lock();
        assert!(bb.users().contains_key("user1"), "disabled, not deleted");
        assert!(!bb.licensed_users().contains("user1"), "no longer licensed");
        assert!(bb.licensed_users().contains("user2"));
    }

    let w = Pushed::start("debounce_seconds = 1", "deprovision = \"delete\"").await;
    w.seeded(30).await;
    let mut gone = user(1);
    gone.removed = Some(Removed::Deleted);
    w.push(Push {
        users: vec![gone],
        ..Push::default()
    });
    let runs = w.ended(2).await;
    assert_eq!(runs[1].state.as_str(), "succeeded", "{:?}", runs[1]);
    let planned = &runs[1].summary.as_ref().unwrap()["planned"];
    assert_eq!(planned["delete-user"], 1, "{planned}");
    assert!(!w.sim.lock().users().contains_key("user1"), "deleted");
    assert!(w.sim.lock().users().contains_key("user2"));
}

/// Every member of a 40-person group removed in one push (a scoping mistake in the IdP): the
/// guard holds the plan and nothing is written, while `pushed` answered at once and the pushed
/// change stays in the mirror for an administrator to approve or correct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_membership_removal_pushed_is_held_and_writes_nothing() {
    let w = Pushed::start("debounce_seconds = 1", "").await;
    w.seeded(40).await;
    let writes = w.sim.lock().writes;
    let took = w.push(Push {
        memberships: (0..40)
            .map(|n| MirrorMembership {
                removed: true,
                ..member("devs", n)
            })
            .collect(),
        ..Push::default()
    });
    assert!(took < Duration::from_secs(2), "pushed waited {took:?}");
    let runs = w.ended(2).await;
    let held = &runs[1];
    assert_eq!(held.state.as_str(), "held", "{held:?}");
    assert_eq!(w.sim.lock().writes, writes, "a held plan writes nothing");
    assert_eq!(w.members("devs").len(), 40);
    let plan = w.store.plan(held.plan_id.as_deref().unwrap()).unwrap();
    let tripped = plan
        .guard
        .as_ref()
        .map(|g| g["tripped"].to_string())
        .unwrap_or_default();
    assert!(tripped.contains("group-members-lost"), "{tripped}");
    // The pushed change is in the mirror, as the IdP was told.
    let left: Vec<_> = w
        .store
        .mirror_users(SOURCE)
        .unwrap()
        .into_iter()
        .filter(|u| u.removed.is_none())
        .collect();
    assert_eq!(left.len(), 40);
}

/// A push that lands while a run is writing (after that run read the mirror) is not lost: it
/// starts another run once the first ends, and that run carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_during_a_run_makes_another_run_after_it() {
    let w = Pushed::start("debounce_seconds = 1", "").await;
    w.seeded(1).await;
    // A slow Bitbucket: twenty new people take the run a few seconds to write.
    w.sim.lock().set_rate_limit(8.0, 1);
    w.push(Push {
        users: (100..120).map(user).collect(),
        ..Push::default()
    });
    // Wait until the run writes: it has read the mirror by then.
    let started = Instant::now();
    loop {
        let stage = w
            .service
            .runs
            .busy()
            .and_then(|id| w.service.runs.get(id))
            .and_then(|p| p.status().stage)
            .map(|s| s.name);
        if stage.as_deref() == Some("apply") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the second run did not start writing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.push(Push {
        users: vec![user(200)],
        ..Push::default()
    });
    let runs = w.ended(3).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(
        runs[2].started_at >= runs[1].finished_at.unwrap(),
        "the next run waited for the one in progress: {runs:?}"
    );
    let bb = w.sim.lock();
    assert!(
        bb.users().contains_key("user200"),
        "the push made during the run was carried"
    );
    assert!(bb.users().contains_key("user119"));
}

/// A push source is stale when it has not pushed for `stale_after_hours` (counted from when
/// Roster started, before its first push), not when it was last fetched: it never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_source_is_stale_when_it_stops_pushing() {
    let hooks = common::webhook::Receiver::start().await;
    // 0.0005 hours = 1.8 s.
    let alert = format!(
        "\n[[alert]]\nurl = \"{}\"\nevents = [\"stale\"]\nstale_after_hours = 0.0005\n",
        hooks.url
    );
    let w = Pushed::start("debounce_seconds = 1", &alert).await;
    w.service.check_staleness().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hooks.got().is_empty(), "just started: not stale yet");

    tokio::time::sleep(Duration::from_secs(2)).await;
    w.service.check_staleness().await;
    let stale = hooks.wait_event("stale", Duration::from_secs(30)).await;
    assert_eq!(stale["details"]["source"], SOURCE, "{stale}");
    assert!(stale["details"]["last_success_unix"].is_null(), "{stale}");
    assert_eq!(stale["details"]["feed"], "pushed", "{stale}");
    assert!(
        stale["summary"].as_str().unwrap().contains("has not pushed to Roster"),
        "{stale}"
    );

    let pushed_at = roster_store::now_ms() as f64 / 1000.0;
    w.push(Push {
        users: vec![user(1)],
        ..Push::default()
    });
    w.service.check_staleness().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hooks.got().len(), 1, "a push makes the source fresh");

    // Quiet again for longer than 1.8 s after the push and after the run that carried it.
    w.ended(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.service.check_staleness().await;
    let again = hooks.wait_count(2, Duration::from_secs(30)).await;
    let last = again[1]["details"]["last_success_unix"]
        .as_f64()
        .unwrap_or_else(|| panic!("{again:?}"));
    assert!(last >= pushed_at - 1.0, "stale since the last push: {again:?}");
}

/// The API shows a push source as `push:scim`, run "when it pushes" rather than on an
/// interval, with its pending pushes and when their run is due; `/metrics` counts the pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_a_push_source_and_its_pending_pushes() {
    let w = Pushed::start("debounce_seconds = 60\nmax_delay_seconds = 600", "").await;
    let (base, task) = common::api::serve(w.service.clone()).await;
    let token = w
        .store
        .create_token("viewer", roster_store::Role::Viewer, "test")
        .unwrap()
        .1;
    for n in 0..3 {
        w.push(Push {
            users: vec![user(n)],
            ..Push::default()
        });
    }
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth(&token).send();
    let source: serde_json::Value = get("/api/v1/sources/entra").await.unwrap().json().await.unwrap();
    assert_eq!(source["plugin"], "push:scim", "{source}");
    assert_eq!(source["schedule"], "when it pushes", "{source}");
    assert_eq!(source["next_runs"], serde_json::json!([]), "{source}");
    assert_eq!(source["push"]["pending_pushes"], 3, "{source}");
    let at = |field: &str| {
        let text = source["push"][field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} as RFC 3339: {source}"));
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    };
    let (first, due) = (at("first_pending_at"), at("next_run_at"));
    assert!(due >= first + 59_000, "due a minute after the latest push: {source}");
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("roster_pushes_total{source=\"entra\"} 3"), "{metrics}");
    assert!(w.push_runs().is_empty(), "nothing ran yet");
    let doc: serde_json::Value = get("/api/v1/openapi.json").await.unwrap().json().await.unwrap();
    let schema = &doc["components"]["schemas"]["PushState"]["properties"];
    assert_eq!(
        schema["next_run_at"]["format"], "date-time",
        "the document describes the push state: {schema}"
    );
    task.abort();
}

/// The licence guard and protected accounts hold for pushes as for pulls: a protected account
/// pushed is never created, and pushes that would need more seats than the licence has are
/// refused with nothing written — while each push was accepted at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_licence_guard_and_protected_accounts_apply_to_pushes() {
    let mut state = bitbucket();
    state.max_users = Some(20);
    let w = Pushed::start_with("debounce_seconds = 1", "protected_users = [\"user5\"]", state).await;
    w.push(Push {
        users: (0..10).map(user).collect(),
        groups: vec![group("devs")],
        memberships: (0..10).map(|n| member("devs", n)).collect(),
    });
    let runs = w.ended(1).await;
    assert_eq!(runs[0].state.as_str(), "succeeded", "{:?}", runs[0]);
    assert!(w.sim.lock().users().contains_key("user4"));
    assert!(
        !w.sim.lock().users().contains_key("user5"),
        "a protected account is not created"
    );
    assert_eq!(w.members("devs").len(), 9);

    let writes = w.sim.lock().writes;
    // 1 admin + 9 + 15 = 25 accounts for 20 seats.
    w.push(Push {
        users: (10..25).map(user).collect(),
        ..Push::default()
    });
    let runs = w.ended(2).await;
    let refused = &runs[1];
    assert_eq!(refused.state.as_str(), "refused", "{refused:?}");
    let why = refused.summary.as_ref().unwrap()["guard"]["refused"].to_string();
    assert!(why.contains("> 20 seats"), "{why}");
    assert_eq!(w.sim.lock().writes, writes, "a refused plan writes nothing");
}

/// Pushes that arrived after the last run before Roster stopped are in the mirror but in no
/// queue: at start, each push source gets one run, which carries them. It is not a push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_start_a_run_carries_what_was_pushed_before_roster_stopped() {
    let w = Pushed::start("debounce_seconds = 1", "").await;
    let p = Push {
        users: vec![user(7)],
        ..Push::default()
    };
    // Durable in the mirror, but Roster stopped before it could run.
    w.store
        .stage_page(PUSH_STAGING, SOURCE, &p.users, &p.groups, &p.memberships)
        .unwrap();
    w.store.promote_delta(PUSH_STAGING, SOURCE, None).unwrap();
    w.service.resume_pushes();
    let runs = w.ended(1).await;
    assert_eq!(runs[0].state.as_str(), "succeeded", "{:?}", runs[0]);
    assert!(w.sim.lock().users().contains_key("user7"));
    let source = w.service.config().sources[0].clone();
    assert_eq!(
        w.service.push_state(&source).unwrap().last_push_at,
        None,
        "no push was received"
    );
    assert!(!w.service.metrics.encode().contains("roster_pushes_total{"));
}

/// A push whose run fails (Bitbucket answering 503 for a while) reaches Bitbucket once it is
/// back, without another push: the run did not carry the pushes, so the queue retries them
/// after its backoff (30 s first), and the source's push state shows the retry meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_run_failed_is_carried_once_bitbucket_is_back() {
    let w = Pushed::start("debounce_seconds = 1\nmax_delay_seconds = 2", "").await;
    w.seeded(1).await;
    // Bitbucket answers 503 to everything for a while.
    let rule = w
        .sim
        .lock()
        .faults()
        .fail_next(100_000, "/rest/", roster_sim::kit::Fault::status(503));
    w.push(Push {
        users: vec![user(500)],
        ..Push::default()
    });
    let runs = w.ended(2).await;
    let failed = runs.last().unwrap().clone();
    assert_ne!(failed.state.as_str(), "succeeded", "{runs:?}");
    let source = w.service.config().sources[0].clone();
    let state = w.service.push_state(&source).unwrap();
    assert_eq!(
        (state.pending_pushes, state.failed_runs, state.failed_run_id),
        (1, 1, Some(failed.id)),
        "the push is owed again: {state:?}"
    );
    let retry_in = state.next_run_at.unwrap() - roster_store::now_ms();
    assert!(
        (20_000..=31_000).contains(&retry_in),
        "retried after the backoff: {state:?}"
    );
    // Bitbucket is back.
    w.sim.lock().faults().remove(rule);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        if w.sim.lock().users().contains_key("user500") {
            let runs = w.ended(3).await;
            assert_eq!(runs.len(), 3, "one retry: {runs:?}");
            assert_eq!(runs[2].state.as_str(), "succeeded", "{runs:?}");
            let state = w.service.push_state(&source).unwrap();
            assert_eq!((state.pending_pushes, state.failed_runs), (0, 0), "{state:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the pushed user never reached Bitbucket after the failed run; runs: {:?}",
        w.push_runs()
    );
}

/// Holds the first 40 members' removal from `devs` (over the threshold): the seeded world and
/// its held plan.
async fn held_removal_of_devs(w: &Pushed) -> roster_store::PlanRow {
    w.seeded(40).await;
    w.push(Push {
        memberships: (0..40)
            .map(|n| MirrorMembership {
                removed: true,
                ..member("devs", n)
            })
            .collect(),
        ..Push::default()
    });
    let runs = w.ended(2).await;
    let held = runs[1].clone();
    assert_eq!(held.state.as_str(), "held", "{held:?}");
    w.store.plan(held.plan_id.as_deref().unwrap()).unwrap()
}

/// A held plan stays approvable while the identity provider keeps pushing (Okta sends each
/// profile change; Entra a cycle every 40 minutes): a push run whose plan takes away what the
/// held plan takes away leaves that plan held, and its approval applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_plan_can_be_approved_while_the_idp_keeps_pushing() {
    let w = Pushed::start("debounce_seconds = 1\nmax_delay_seconds = 2", "").await;
    let plan = held_removal_of_devs(&w).await;
    // The administrator reads the plan; meanwhile the IdP pushes an unrelated change.
    w.push(Push {
        users: vec![user(900)],
        ..Push::default()
    });
    w.ended(3).await;
    assert_eq!(w.store.plan(&plan.id).unwrap().state.as_str(), "held");
    let approved = w.service.approve(&plan.id, &plan.hash, "admin", "").await;
    let report = approved.expect("the reviewed plan can be approved");
    assert_eq!(report.state.as_str(), "succeeded", "{report:?}");
    assert!(
        w.members("devs").is_empty(),
        "the approved removals applied: {:?}",
        w.members("devs")
    );
}

/// While a plan is held, a pushed new hire still reaches Bitbucket: the push run applies what
/// takes nothing away, withholds the held plan's removals, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_new_hire_reaches_bitbucket_while_a_plan_is_held() {
    let w = Pushed::start("debounce_seconds = 1\nmax_delay_seconds = 2", "").await;
    let plan = held_removal_of_devs(&w).await;
    w.push(Push {
        users: vec![user(900)],
        ..Push::default()
    });
    let runs = w.ended(3).await;
    let run = &runs[2];
    assert_eq!(run.state.as_str(), "succeeded", "{run:?}");
    assert!(
        w.sim.lock().users().contains_key("user900"),
        "the new hire is in Bitbucket"
    );
    assert_eq!(w.members("devs").len(), 40, "nothing the held plan holds was written");
    let summary = run.summary.as_ref().unwrap().to_string();
    assert!(
        summary.contains(&format!("plan {} is held for approval", plan.id)),
        "{summary}"
    );
    assert_eq!(w.store.plan(&plan.id).unwrap().state.as_str(), "held");
}

/// A push that takes away something the held plan does not supersedes it: the new plan,
/// holding both, is the one to review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_takes_away_more_than_the_held_plan_supersedes_it() {
    let w = Pushed::start("debounce_seconds = 1\nmax_delay_seconds = 2", "").await;
    let plan = held_removal_of_devs(&w).await;
    // user0 leaves: a deactivation the held plan does not have.
    w.push(Push {
        users: vec![MirrorUser {
            active: false,
            ..user(0)
        }],
        ..Push::default()
    });
    let runs = w.ended(3).await;
    assert_eq!(runs[2].state.as_str(), "held", "{:?}", runs[2]);
    assert_eq!(w.store.plan(&plan.id).unwrap().state.as_str(), "superseded");
    assert!(w.service.approve(&plan.id, &plan.hash, "admin", "").await.is_err());
}

/// What the SCIM endpoint writes for a pushed user `n`: its resource (id `u{n}`) and its row.
fn pushed_user(n: usize) -> roster_store::ScimWrite {
    let u = user(n);
    roster_store::ScimWrite {
        external_id: None,
        name: u.username.clone(),
        body: serde_json::json!({"userName": u.username}),
        mirror: roster_store::Mirrored::User(u),
        members: vec![],
    }
}

/// A source that was pulled and is now pushed to under the same id (roster.toml: `plugin`
/// replaced by `[source.push]`, how an admin moves Entra from the Graph connector to SCIM)
/// keeps the rows its fetches wrote. They are no SCIM resource — the IdP never sees them and
/// can never delete them — and no fetch runs for a push source to drop them. Once the push
/// configuration takes effect they are dropped, and the next run plans their removal under the
/// guard: one leaver of thirty is deprovisioned; forty people at once are held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_rows_from_before_a_source_was_pushed_to_do_not_outlive_it() {
    // Thirty people in `devs` read while the source was pulled, in Bitbucket; the IdP pushes
    // 29 of them and the group again.
    let w = Pushed::start("debounce_seconds = 1", "").await;
    w.seeded(30).await;
    for n in 0..29 {
        w.store
            .scim_create(SOURCE, roster_store::ScimKind::User, &format!("u{n}"), &pushed_user(n))
            .unwrap();
    }
    let devs = roster_store::ScimWrite {
        external_id: None,
        name: "devs".into(),
        body: serde_json::json!({"displayName": "devs"}),
        mirror: roster_store::Mirrored::Group(group("devs")),
        members: (0..29)
            .map(|n| roster_store::MemberRef {
                value: format!("u{n}"),
                display: None,
            })
            .collect(),
    };
    w.store
        .scim_create(SOURCE, roster_store::ScimKind::Group, "g-devs", &devs)
        .unwrap();
    // The push configuration takes effect (a reload, as after editing roster.toml).
    w.service.reload_config().unwrap();
    let mirrored: Vec<String> = w
        .store
        .mirror_users(SOURCE)
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(mirrored.len(), 29, "{mirrored:?}");
    assert!(!mirrored.contains(&"user29".to_string()), "{mirrored:?}");
    // The IdP's next push makes a run, which plans the leaver's removal.
    w.store
        .scim_create(SOURCE, roster_store::ScimKind::User, "u100", &pushed_user(100))
        .unwrap();
    w.service.pushed(SOURCE);
    let runs = w.ended(2).await;
    assert_eq!(runs[1].state.as_str(), "succeeded", "{:?}", runs[1]);
    let planned = &runs[1].summary.as_ref().unwrap()["planned"];
    assert_eq!(planned["deactivate-user"], 1, "{planned}");
    {
        let bb = w.sim.lock();
        assert!(
            !bb.licensed_users().contains("user29"),
            "the row only a fetch wrote is deprovisioned: {planned}"
        );
        assert!(bb.licensed_users().contains("user0"));
        assert!(bb.licensed_users().contains("user100"));
    }

    // Forty people, none pushed yet after the switch: their removal is a mass one, held.
    let w = Pushed::start("debounce_seconds = 1", "").await;
    w.seeded(40).await;
    let writes = w.sim.lock().writes;
    w.service.reload_config().unwrap();
    assert!(w.store.mirror_users(SOURCE).unwrap().is_empty());
    w.store
        .scim_create(SOURCE, roster_store::ScimKind::User, "u100", &pushed_user(100))
        .unwrap();
    w.service.pushed(SOURCE);
    let runs = w.ended(2).await;
    let held = &runs[1];
    assert_eq!(held.state.as_str(), "held", "{held:?}");
    assert_eq!(w.sim.lock().writes, writes, "a held plan writes nothing");
    assert!(w.sim.lock().licensed_users().contains("user0"));
    let plan = w.store.plan(held.plan_id.as_deref().unwrap()).unwrap();
    assert!(plan.guard.is_some(), "{plan:?}");
}
