//! Targets unlike Data Center, through the in-memory target (no vendor): one whose accounts come
//! by invitation and whose people own their profiles, and one that meters calls over a window.
//! A plan larger than the budget shows its ETA, pauses when the budget is spent, and the next
//! runs finish it exactly — no operation made twice — inheriting the approval of a mass
//! deprovisioning that paused, but not extending it to anything new it would take away.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use roster_engine::{Eta, Writes};
use roster_model::RunState;
use roster_serve::RunReport;
use roster_sim::directory::Directory;
use roster_target_memory::World;

use crate::guard::approve;
use crate::scenarios::{Kind, LICENSED, Scenario};

async fn memory(d: &Directory) -> (Scenario, Arc<Mutex<World>>) {
    let s = Scenario::new("memory", d).await;
    let world = match &s.kind {
        Kind::Memory(w) => w.clone(),
        _ => unreachable!("a memory scenario"),
    };
    (s, world)
}

fn ops_of(r: &RunReport) -> usize {
    r.summary.planned.values().sum()
}

fn warned(r: &RunReport, part: &str) -> bool {
    r.summary.warnings.iter().any(|w| w.contains(part))
}

fn skipped_for<'a>(r: &'a RunReport, subject: &str) -> Vec<&'a str> {
    r.summary
        .skipped
        .iter()
        .filter(|s| s.subject.eq_ignore_ascii_case(subject))
        .map(|s| s.why.as_str())
        .collect()
}

/// Operations the target was asked to make, each as its JSON: a repeated one shows up twice.
fn applied(world: &Mutex<World>) -> Vec<String> {
    world
        .lock()
        .unwrap()
        .applied
        .iter()
        .map(|op| serde_json::to_string(op).unwrap())
        .collect()
}

fn assert_no_repeats(world: &Mutex<World>) {
    let ops = applied(world);
    let distinct: BTreeSet<&String> = ops.iter().collect();
    assert_eq!(distinct.len(), ops.len(), "an operation was made twice: {ops:#?}");
}

/// Removes the first `n` people from the directory (they leave the company).
fn leave(d: &mut Directory, n: usize) {
    let ids: BTreeSet<String> = d.users.iter().take(n).map(|u| u.id.clone()).collect();
    d.users.retain(|u| !ids.contains(&u.id));
    d.memberships.retain(|m| !ids.contains(&m.member));
}

/// Invitations instead of accounts: a first run invites everyone and gives no membership; runs
/// before anyone accepts write nothing and say who is pending; once people accept, their
/// memberships follow, and a changed display name is reported rather than written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invited_people_get_their_groups_once_they_accept() {
    let mut d = Directory::generate(10, 2, 1);
    let (s, world) = memory(&d).await;
    world.lock().unwrap().invite_only();

    let first = s.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    assert_eq!(first.summary.planned.get("create-user"), Some(&10));
    assert_eq!(
        first.summary.planned.get("add-members"),
        None,
        "nobody has an account yet"
    );
    let ann = d.users[0].username.to_lowercase();
    assert_eq!(
        skipped_for(&first, &d.users[0].username),
        vec!["invited; memberships follow once the invitation is accepted"]
    );
    {
        let w = world.lock().unwrap();
        assert!(w.users.is_empty(), "no account is created");
        assert_eq!(w.pending.len(), 10);
    }

    let writes = s.writes();
    let waiting = s.sync().await;
    assert!(waiting.summary.planned.is_empty(), "{:?}", waiting.summary.planned);
    assert_eq!(s.writes(), writes, "no invitation is sent twice");
    let pending = skipped_for(&waiting, &d.users[0].username);
    assert!(
        pending.len() == 1
            && pending[0].starts_with("invitation to ")
            && pending[0].contains(" sent ")
            && pending[0]
                .ends_with("is not accepted yet; its memberships follow on the first run after it is accepted"),
        "{pending:?}"
    );

    // Half of them accept: their memberships follow, the others still wait.
    let accepted: Vec<String> = d.users.iter().take(5).map(|u| u.username.to_lowercase()).collect();
    for u in &accepted {
        assert!(world.lock().unwrap().accept(u));
    }
    let half = s.sync().await;
    assert_eq!(half.state, RunState::Succeeded, "{:?}", half.summary.warnings);
    let licensed: BTreeSet<String> = world.lock().unwrap().groups[LICENSED].clone();
    assert_eq!(licensed, accepted.iter().cloned().collect(), "only those who accepted");
    for u in d.users.iter().skip(5) {
        assert!(world.lock().unwrap().accept(&u.username));
    }
    s.sync().await;
    s.assert_matches(&d);
    assert_no_repeats(&world);

    // A person's name changes in the source: their profile is theirs.
    d.users[0].display_name = "Someone Else".into();
    s.write(&d);
    let renamed = s.sync().await;
    assert!(renamed.summary.planned.is_empty(), "{:?}", renamed.summary.planned);
    assert_eq!(
        skipped_for(&renamed, &d.users[0].username),
        vec!["the memory target accounts are owned by their people: display name and email are not changed by Roster"]
    );
    assert_ne!(world.lock().unwrap().users[&ann].display_name, "Someone Else");
}

/// The ETA of a plan against the budget: exact numbers, in the run's summary, with a warning
/// when the plan does not fit what is available now, none when it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shows_its_eta_from_the_call_budget() {
    let d = Directory::generate(20, 3, 2);
    let (s, world) = memory(&d).await;
    let none = s.run(Writes::DryRun).await;
    assert_eq!(none.summary.eta, None, "a target without a budget has no ETA");

    world.lock().unwrap().meter(25, 3600);
    let r = s.run(Writes::DryRun).await;
    // One call per operation here: a create per group and per person, an add per membership
    // (the licensing group's included).
    let ops: usize = r.summary.planned.values().sum();
    assert_eq!(ops, 3 + 20 + d.flattened_count() + 20);
    let runs = ops.div_ceil(25) as u64;
    assert_eq!(
        r.summary.eta,
        Some(Eta {
            calls_needed: ops as u64,
            calls_per_window: 25,
            window_secs: 3600,
            available_now: 25,
            read_calls: 0,
            runs_needed: Some(runs),
            seconds_until_done: Some((runs - 1) * 3600),
        })
    );
    assert!(
        warned(
            &r,
            &format!(
                "the plan needs about {ops} call(s) and the memory target allows 25 now (25 per 1 h): it is applied over {runs} runs"
            )
        ),
        "{:?}",
        r.summary.warnings
    );
    // The summary as stored and served carries it too.
    let stored = s.store.run(r.run_id).unwrap().summary.unwrap();
    assert_eq!(stored["eta"]["runs_needed"], runs);

    world.lock().unwrap().meter(1000, 3600);
    let fits = s.run(Writes::DryRun).await;
    let eta = fits.summary.eta.unwrap();
    assert_eq!((eta.runs_needed, eta.seconds_until_done), (Some(1), Some(0)));
    assert!(!warned(&fits, "the plan needs about"), "{:?}", fits.summary.warnings);
}

/// A plan larger than the budget: each run applies what the budget allows and pauses (not a
/// failure: it applied), the next continues from a fresh read, and the target ends exactly as
/// the directory says after as many runs as the ETA said, with no operation made twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_the_budget_pauses_and_the_next_runs_finish_it_exactly() {
    let d = Directory::generate(20, 3, 2);
    let (s, world) = memory(&d).await;
    world.lock().unwrap().meter(25, 3600);

    let first = s.sync().await;
    assert_eq!(first.state, RunState::Paused, "{:?}", first.summary.warnings);
    assert!(first.state.applied(), "a paused run applied part of its plan");
    assert_eq!(first.summary.applied.done, 25);
    // The operations the budget stopped are left for the next run, not failures.
    assert_eq!(first.summary.applied.failed, 0, "{:?}", first.summary.warnings);
    assert_eq!(first.summary.applied.stopped, ops_of(&first) - 25);
    let eta = first.summary.eta.unwrap();
    let plan = first.plan_id.clone().unwrap();
    assert!(
        warned(&first, "paused: ") && warned(&first, &format!("left to the next run, which continues plan {plan}")),
        "{:?}",
        first.summary.warnings
    );
    let run = s.store.run(first.run_id).unwrap();
    assert_eq!((run.state, run.error), (RunState::Paused, None), "no error recorded");

    // A run before the window has passed cannot even read: it pauses too, writing nothing.
    let writes = s.writes();
    let early = s.sync().await;
    assert_eq!(early.state, RunState::Paused, "{:?}", early.summary.warnings);
    assert!(
        warned(&early, "paused: target 'bitbucket': read: ")
            && warned(&early, &format!("the next run continues plan {plan}")),
        "{:?}",
        early.summary.warnings
    );
    assert_eq!(s.writes(), writes);

    let mut runs = 1;
    let mut last = first;
    while last.state == RunState::Paused {
        assert!(runs < 20, "the plan never finished");
        world.lock().unwrap().refill();
        last = s.sync().await;
        runs += 1;
        assert!(
            matches!(last.state, RunState::Paused | RunState::Succeeded),
            "{:?}: {:?}",
            last.state,
            last.summary.warnings
        );
    }
    assert_eq!(Some(runs), eta.runs_needed, "as many runs as the ETA said");
    s.assert_matches(&d);
    assert_no_repeats(&world);
    assert_eq!(
        applied(&world).len() as u64,
        eta.calls_needed,
        "every call of the plan, once"
    );
    let again = s.sync().await;
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
}

/// `users` people in the memory target, synced in full, then `leavers` of them leave: a plan
/// the default threshold holds (over 10 % of the managed accounts deprovisioned).
async fn held_leavers(users: usize, leavers: usize) -> (Scenario, Arc<Mutex<World>>, Directory, RunReport) {
    let mut d = Directory::generate(users, 2, 1);
    let (s, world) = memory(&d).await;
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    leave(&mut d, leavers);
    s.write(&d);
    let held = s.sync().await;
    assert_eq!(held.state, RunState::Held, "{:?}", held.summary.warnings);
    (s, world, d, held)
}

/// A mass deprovisioning held, approved, and paused by the budget: the next runs continue it
/// without another approval (a warning names the plan they continue), and the window counts it
/// as approved; the leavers end disabled, nobody else touched, no operation repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_deprovisioning_that_paused_continues_without_a_new_approval() {
    let (s, world, d, held) = held_leavers(30, 4).await;
    let held_plan = held.plan_id.clone().unwrap();
    world.lock().unwrap().meter(5, 3600);
    let approved = approve(&s.runner(), &held).await;
    assert_eq!(approved.state, RunState::Paused, "{:?}", approved.summary.warnings);
    assert!(
        warned(
            &approved,
            &format!("left to the next run, which continues plan {held_plan}")
        ),
        "{:?}",
        approved.summary.warnings
    );

    let mut last = approved;
    let mut runs = 0;
    while last.state == RunState::Paused {
        assert!(runs < 20, "the plan never finished");
        world.lock().unwrap().refill();
        // Each run continues the plan of the run before it, which inherited the approval.
        let continued = last.plan_id.clone().unwrap();
        last = s.sync().await;
        runs += 1;
        assert!(
            matches!(last.state, RunState::Paused | RunState::Succeeded),
            "run {runs} ended {:?}: {:?}",
            last.state,
            last.summary.warnings
        );
        assert!(
            warned(&last, &format!("continues plan {continued}")),
            "run {runs}: {:?}",
            last.summary.warnings
        );
        assert!(last.summary.guard.as_ref().unwrap().held.is_none());
    }
    assert!(runs >= 2, "the budget spread it over several runs");
    s.assert_matches(&d);
    let disabled: usize = world.lock().unwrap().users.values().filter(|u| !u.active).count();
    assert_eq!(disabled, 4);
    assert_no_repeats(&world);
    let again = s.sync().await;
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
    // What the continuations took away was approved: the window starts after it.
    let window = again.summary.guard.as_ref().unwrap().window.unwrap();
    assert_eq!((window.runs, window.deprovisions), (0, 0), "{window:?}");
}

/// The same paused plan, but someone else leaves before the next run: the new plan takes away
/// something the approved one did not, so it is held again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_take_away_after_a_pause_is_held_again() {
    let (s, world, mut d, held) = held_leavers(30, 4).await;
    world.lock().unwrap().meter(5, 3600);
    let approved = approve(&s.runner(), &held).await;
    assert_eq!(approved.state, RunState::Paused, "{:?}", approved.summary.warnings);

    leave(&mut d, 1);
    s.write(&d);
    world.lock().unwrap().refill();
    let writes = s.writes();
    let again = s.sync().await;
    assert_eq!(again.state, RunState::Held, "{:?}", again.summary.warnings);
    assert!(!warned(&again, "continues plan"), "{:?}", again.summary.warnings);
    assert_eq!(s.writes(), writes, "a held plan writes nothing");
}
