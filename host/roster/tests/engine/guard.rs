//! The guard holds what an administrator would call destructive, with its default threshold:
//! a group emptied while every person stays, a mapping edit that drops every group, mass renames
//! and email changes, and many runs each under the limit adding up within the rolling window —
//! each held with zero writes and the rule that tripped, each applied once approved — while an
//! ordinary day goes through.

use roster_engine::{Rule, Tripped, Verdict, Writes};
use roster_model::{Quiet, RunMode, RunState, Trigger};
use roster_serve::{Config, RunReport, Runner, SyncOptions};
use roster_sim::directory::{DirGroup, DirMembership, Directory};
use roster_store::{Destroyed, Review, now_ms};

use crate::common;
use crate::scenarios::{KINDS, Scenario};
use common::Configured;
use common::world::{World, bitbucket};

fn verdict(r: &RunReport) -> &Verdict {
    r.summary.guard.as_ref().expect("the run has a verdict")
}

fn tripped(r: &RunReport) -> Vec<&'static str> {
    verdict(r).tripped.iter().map(|t| t.rule.name()).collect()
}

fn held_text(r: &RunReport) -> String {
    verdict(r).held.clone().unwrap_or_default()
}

/// Approves the plan a held run made, as an administrator would.
pub(crate) async fn approve(runner: &Runner, r: &RunReport) -> RunReport {
    runner
        .approve(
            r.plan_id.as_deref().unwrap(),
            r.plan_hash.as_deref().unwrap(),
            "test",
            "",
            &Quiet,
        )
        .await
        .unwrap()
}

/// `users` people, all direct members of one group `devs`.
fn one_big_group(users: usize) -> Directory {
    let mut d = Directory::generate(users, 0, 0);
    d.groups.push(DirGroup {
        id: "g-devs".into(),
        name: "devs".into(),
    });
    for u in &d.users {
        d.memberships.push(DirMembership {
            group: "g-devs".into(),
            member: u.id.clone(),
            member_is_group: false,
        });
    }
    d
}

/// An IdP group comes back empty (a scoping filter or group rule mistake) while every person
/// stays: the Bitbucket group would lose all 3,000 members. The default threshold holds it,
/// naming the group; nothing is written until an administrator approves exactly that plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_emptied_in_the_idp_is_held_while_every_person_stays() {
    const PEOPLE: usize = 3000;
    for kind in KINDS {
        let d = one_big_group(PEOPLE);
        let s = Scenario::new(kind, &d).await;
        let first = s.sync().await;
        assert_eq!(first.state, RunState::Succeeded, "{kind}: {:?}", first.summary.warnings);
        let mut emptied = d.clone();
        emptied.memberships.clear();
        s.write(&emptied);
        let writes = s.writes();

        let r = s.sync().await;
        assert_eq!(r.state, RunState::Held, "{kind}: {:?}", r.summary.warnings);
        assert_eq!(s.writes(), writes, "{kind}: a held plan writes nothing");
        assert_eq!(s.groups()["devs"].len(), PEOPLE, "{kind}");
        let v = verdict(&r);
        assert_eq!(v.deprovisions, 0, "{kind}: every person stays");
        assert_eq!(v.memberships_removed, PEOPLE, "{kind}");
        assert!(
            v.tripped.contains(&Tripped {
                rule: Rule::GroupMembersLost,
                group: Some("devs".into()),
                counted: PEOPLE as u64,
                limit: format!("50 % of {PEOPLE}"),
            }),
            "{kind}: {:?}",
            v.tripped
        );
        let held = held_text(&r);
        assert!(
            held.contains("group-members-lost (devs: 3000 members removed, over 50 % of 3000)")
                && held.contains(&format!("roster plan approve {}", r.plan_id.as_deref().unwrap())),
            "{kind}: {held}"
        );
        assert!(
            r.summary
                .warnings
                .iter()
                .any(|w| w.starts_with("plan held: over the threshold")),
            "{kind}: {:?}",
            r.summary.warnings
        );

        let approved = approve(&s.runner(), &r).await;
        assert_eq!(
            approved.state,
            RunState::Succeeded,
            "{kind}: {:?}",
            approved.summary.warnings
        );
        assert!(s.groups()["devs"].is_empty(), "{kind}: the approved plan was applied");
        let licensed = s.licensed().into_iter().filter(|u| u != "admin").count();
        assert_eq!(licensed, PEOPLE, "{kind}: every person stays licensed");
    }
}

/// The source's transform chain reads a mapping file; `groups` is its `[groups]` table.
fn mapping_world_config(w: &World, mapping: &std::path::Path) -> String {
    let normalize = "[[source.transforms]]\nplugin = \"normalize\"\n";
    let text = w.config_text();
    assert!(text.contains(normalize));
    text.replace(
        normalize,
        &format!(
            "[[source.transforms]]\nplugin = \"mapping\"\nsettings_file = \"{}\"\n",
            mapping.display()
        ),
    )
}

async fn sync_with(w: &World, text: &str) -> RunReport {
    let config = Config::parse(text, w.rt.dir.path(), &common::kinds()).unwrap();
    let runner = Runner::new(w.store.clone(), w.rt.runtime.clone(), config, &common::kinds()).unwrap();
    let opts = SyncOptions {
        trigger: Trigger::Cli,
        actor: "test".into(),
        ..SyncOptions::default()
    };
    runner.sync(&opts, &Quiet).await.unwrap()
}

/// A mapping edit that drops every group (`unmatched = "skip"` before any rule is written):
/// every managed user would lose every managed group. Held, nothing written; with the mapping
/// put back, the next run has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_edit_that_drops_every_group_is_held() {
    let d = Directory::generate(40, 4, 2);
    let w = World::new(&d, bitbucket()).await;
    w.rt.put("mapping", "mapping.wasm");
    w.rt.runtime.reload().await;
    let mapping = w.rt.dir.path().join("mapping.toml");
    std::fs::write(&mapping, "[groups]\nunmatched = \"pass\"\n").unwrap();
    let text = mapping_world_config(&w, &mapping);
    let first = sync_with(&w, &text).await;
    assert_eq!(first.state, "succeeded", "{:?}", first.summary.warnings);
    w.assert_matches(&d);

    std::fs::write(&mapping, "[groups]\nunmatched = \"skip\"\n").unwrap();
    let writes = w.bb_writes();
    let r = sync_with(&w, &text).await;
    assert_eq!(r.state, "held", "{:?}", r.summary.warnings);
    assert_eq!(w.bb_writes(), writes, "a held plan writes nothing");
    w.assert_matches(&d);
    let v = verdict(&r);
    assert_eq!(v.deprovisions, 0);
    assert_eq!(v.people_losing_memberships, 40, "every managed user loses their groups");
    let rules = tripped(&r);
    assert!(rules.contains(&"people-losing-memberships"), "{rules:?}");
    let groups: Vec<&str> = v
        .tripped
        .iter()
        .filter(|t| t.rule == Rule::GroupMembersLost)
        .filter_map(|t| t.group.as_deref())
        .collect();
    assert_eq!(groups, ["team-00000", "team-00001", "team-00002", "team-00003"]);

    std::fs::write(&mapping, "[groups]\nunmatched = \"pass\"\n").unwrap();
    let fixed = sync_with(&w, &text).await;
    assert_eq!(fixed.state, "succeeded", "{:?}", fixed.summary.warnings);
    assert!(fixed.summary.planned.is_empty(), "{:?}", fixed.summary.planned);
}

/// Sixty of a hundred usernames change at once (a UPN suffix change mapped wrong), then sixty
/// email addresses: each plan is held by its own rule and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_renames_and_mass_email_changes_are_held() {
    let d = Directory::generate(100, 2, 1);
    let w = World::new(&d, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let writes = w.bb_writes();

    let mut renamed = d.clone();
    for u in renamed.users.iter_mut().take(60) {
        u.username = format!("{}-x", u.username);
    }
    w.write(&renamed);
    let r = w.sync().await;
    assert_eq!(r.state, "held", "{:?}", r.summary.warnings);
    assert_eq!(tripped(&r), ["renames"]);
    assert_eq!(verdict(&r).tripped[0].counted, 60);
    assert_eq!(verdict(&r).tripped[0].limit, "50 or 10 % of 100 managed");
    assert!(
        held_text(&r).contains("raise [target.threshold] renames"),
        "{}",
        held_text(&r)
    );

    let mut moved = d.clone();
    for u in moved.users.iter_mut().take(60) {
        u.email = u.email.replace("@example.com", "@elsewhere.example");
    }
    w.write(&moved);
    let r = w.sync().await;
    assert_eq!(r.state, "held", "{:?}", r.summary.warnings);
    assert_eq!(tripped(&r), ["email-changes"]);
    assert_eq!(verdict(&r).email_changes, 60);
    assert_eq!(w.bb_writes(), writes, "held plans write nothing");
    w.assert_matches(&d);
}

/// An ordinary day — a few leavers, a few people moving groups, a handful of renames and
/// email changes — goes through under the default threshold, and the verdict counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_day_is_not_held() {
    let d = Directory::generate(200, 10, 2);
    let w = World::new(&d, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");

    let mut today = d.clone();
    let leavers: Vec<String> = today.users[190..193].iter().map(|u| u.id.clone()).collect();
    today.users.retain(|u| !leavers.contains(&u.id));
    today.memberships.retain(|m| !leavers.contains(&m.member));
    for k in 0..5 {
        // Moves to the group after the first one they were in.
        let id = format!("u-{k:06}");
        if let Some(m) = today.memberships.iter_mut().find(|m| m.member == id) {
            let g: usize = m.group[2..].parse().unwrap();
            m.group = format!("g-{:05}", (g + 5) % 10);
        }
    }
    for u in &mut today.users[10..14] {
        u.username = format!("{}-renamed", u.username);
    }
    for u in &mut today.users[20..23] {
        u.email = u.email.replace("@example.com", "@new.example");
    }
    w.write(&today);

    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let v = verdict(&r);
    assert_eq!(v.tripped, Vec::new());
    assert_eq!((v.deprovisions, v.renames, v.email_changes), (3, 4, 3));
    assert!(
        v.memberships_removed >= 5 + 3,
        "moves and leavers: {}",
        v.memberships_removed
    );
    assert_eq!(v.window.map(|x| x.runs), Some(0), "nothing applied before");
    w.assert_matches(&today);
}

/// Records an earlier run of the World's target that deprovisioned `deprovisions` people
/// `hours_ago` hours ago.
fn earlier_run(w: &World, hours_ago: i64, deprovisions: u64) {
    let id = w
        .store
        .create_run(Trigger::Schedule, RunMode::Full, "bitbucket", &["hr".into()])
        .unwrap();
    let destroyed = Destroyed {
        deprovisions,
        memberships_removed: deprovisions * 3,
        ..Destroyed::default()
    };
    w.store
        .record_destroyed(
            "bitbucket",
            id,
            now_ms() - hours_ago * 3_600_000,
            Review::Unreviewed,
            &destroyed,
        )
        .unwrap();
}

/// Removes `n` people, from the end of the list, from the directory.
fn leave(d: &mut Directory, n: usize) {
    let gone: Vec<String> = d.users.iter().rev().take(n).map(|u| u.id.clone()).collect();
    d.users.retain(|u| !gone.contains(&u.id));
    d.memberships.retain(|m| !gone.contains(&m.member));
}

/// 49 deprovisions per run every hour stay under the per-run limit of 50, but not under the
/// window: the run that takes the week's total over 150 is held, writes nothing, and says
/// what the earlier runs did. Runs older than the window do not count, applied runs are
/// recorded, and an approval starts the window afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rolling_window_holds_the_run_that_crosses_it() {
    let mut d = Directory::generate(600, 6, 1);
    let w = World::new(&d, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    earlier_run(&w, 24 * 8, 500); // before the window: not counted
    earlier_run(&w, 3, 49);
    earlier_run(&w, 2, 49);

    leave(&mut d, 49);
    w.write(&d);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "98 + 49 is under 150: {:?}", r.summary.warnings);
    assert_eq!(verdict(&r).window.unwrap().deprovisions, 98);
    w.assert_matches(&d);

    leave(&mut d, 49);
    w.write(&d);
    let writes = w.bb_writes();
    let r = w.sync().await;
    assert_eq!(r.state, "held", "{:?}", r.summary.warnings);
    assert_eq!(w.bb_writes(), writes, "a held plan writes nothing");
    assert_eq!(tripped(&r), ["window-deprovisions"], "{:?}", verdict(&r).tripped);
    let t = &verdict(&r).tripped[0];
    assert_eq!(t.counted, 196);
    assert_eq!(t.limit, "150 in 7 day(s) (147 by earlier runs + 49 by this plan)");

    let approved = approve(&w.runner(), &r).await;
    assert_eq!(approved.state, "succeeded", "{:?}", approved.summary.warnings);
    w.assert_matches(&d);

    leave(&mut d, 3);
    w.write(&d);
    let r = w.sync().await;
    assert_eq!(
        r.state, "succeeded",
        "the approval restarted the window: {:?}",
        r.summary.warnings
    );
    assert_eq!(verdict(&r).window.unwrap().deprovisions, 0);
}

/// A single-user sync is one person, never a mass change by itself, but the window applies:
/// one more deprovisioning over a full window is held like a run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_user_sync_over_a_full_window_is_held() {
    let mut d = Directory::generate(30, 2, 1);
    let w = World::new(&d, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    earlier_run(&w, 1, 150);
    d.users[4].active = false;
    w.write(&d);
    let key = roster_directory::UserKey {
        id: Some(d.users[4].id.clone()),
        username: None,
        source: None,
    };
    let opts = SyncOptions {
        writes: Writes::Apply,
        trigger: Trigger::SingleUser,
        actor: "test".into(),
        ..SyncOptions::default()
    };
    let writes = w.bb_writes();
    let r = w.runner().sync_user(&key, &opts, &Quiet).await.unwrap();
    assert_eq!(r.state, "held", "{:?}", r.summary.warnings);
    assert_eq!(tripped(&r), ["window-deprovisions"]);
    assert_eq!(w.bb_writes(), writes);
}

/// Threshold mistakes in roster.toml are refused naming the field and the range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_mistakes_are_refused_naming_the_field() {
    let mut w = World::new(&Directory::generate(2, 0, 0), bitbucket()).await;
    w.target_extra = "[target.threshold]\ncount = 20\nrenames = { count = 5, percent = 2, floor = 1 }\n\n[target.threshold.window]\ndays = 14\n".into();
    let config = Config::parse(&w.config_text(), w.rt.dir.path(), &common::kinds()).unwrap();
    let t = config.target().unwrap().threshold;
    assert_eq!((t.count, t.percent, t.renames.count, t.window.days), (20, 10.0, 5, 14));
    let cases = [
        ("renamez = 3", "unknown field `renamez`"),
        ("renames = { count = 3 }", "missing field `percent`"),
        (
            "group_members_lost = { percent = 150, floor = 1 }",
            "target threshold.group_members_lost.percent 150 must be between 0 and 100",
        ),
        (
            "window = { days = 0 }",
            "target threshold.window.days 0 must be between 1 and 366",
        ),
        ("window = { weeks = 1 }", "unknown field `weeks`"),
        ("memberships_removed = -5", "invalid value"),
    ];
    for (line, expected) in cases {
        w.target_extra = format!("[target.threshold]\n{line}\n");
        let err = Config::parse(&w.config_text(), w.rt.dir.path(), &common::kinds())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{line}: expected {expected:?} in: {err}");
    }
}
