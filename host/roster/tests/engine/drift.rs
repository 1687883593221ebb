//! Drift: changes made by hand in Bitbucket Data Center (its simulator's `hand_edit`) to what
//! Roster manages — a membership of a managed group added or removed, a managed account renamed,
//! a managed group deleted — are found on the next run by comparing the read with what Roster
//! last left there, reported in the run summary, and reverted, adopted or only reported as the
//! target's `drift` policy says; a revert that takes memberships away is held by the guard like
//! any other removal.

use std::collections::BTreeSet;

use roster_engine::{DriftChange, DriftHandling};
use roster_model::RunState;
use roster_serve::RunReport;
use roster_sim::bitbucket::HandEdit;
use roster_sim::directory::Directory;

use crate::scenarios::{Kind, Scenario};

const GROUP: &str = "team-00003";

fn edit(s: &Scenario, e: HandEdit) {
    let Kind::Dc(sim) = &s.kind else {
        panic!("drift is tested on Data Center")
    };
    sim.lock().hand_edit(e);
}

fn add_account(s: &Scenario, name: &str) {
    let Kind::Dc(sim) = &s.kind else {
        panic!("drift is tested on Data Center")
    };
    sim.lock()
        .add_user(name, name, &format!("{name}@elsewhere.example"), true);
}

/// A directory, its group `GROUP`'s members, and two people who are not in it.
fn world() -> (Directory, BTreeSet<String>, Vec<String>) {
    let d = Directory::generate(24, 4, 1);
    let members = d.expected_members()[GROUP].clone();
    assert!(members.len() >= 2, "{members:?}");
    let outside: Vec<String> = d
        .users
        .iter()
        .map(|u| u.username.to_lowercase())
        .filter(|u| !members.contains(u))
        .take(2)
        .collect();
    (d, members, outside)
}

fn changes(r: &RunReport) -> Vec<(DriftChange, DriftHandling, Option<String>, Option<String>)> {
    let mut v: Vec<_> = r
        .summary
        .drift
        .iter()
        .map(|d| (d.change, d.handled, d.group.clone(), d.account.clone()))
        .collect();
    v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    v
}

/// Two memberships added by hand (one of an account Roster manages, one of an account it does
/// not) and one removed: the next run finds all three, says who and what, and — by default —
/// reverts them; the run after finds nothing and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_of_a_managed_group_are_found_and_reverted_by_default() {
    let (d, members, outside) = world();
    let s = Scenario::new("bitbucket-dc", &d).await;
    let first = s.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    assert!(first.summary.drift.is_empty(), "{:?}", first.summary.drift);
    add_account(&s, "visitor");
    let gone = members.iter().next().unwrap().clone();
    for e in [
        HandEdit::AddMember {
            group: GROUP.into(),
            user: outside[0].clone(),
        },
        HandEdit::AddMember {
            group: GROUP.into(),
            user: "visitor".into(),
        },
        HandEdit::RemoveMember {
            group: GROUP.into(),
            user: gone.clone(),
        },
    ] {
        edit(&s, e);
    }

    let r = s.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    let g = Some(GROUP.to_string());
    assert_eq!(changes(&r), {
        let mut want = vec![
            (
                DriftChange::MemberAdded,
                DriftHandling::Reverted,
                g.clone(),
                Some(outside[0].clone()),
            ),
            (
                DriftChange::MemberAdded,
                DriftHandling::Reverted,
                g.clone(),
                Some("visitor".into()),
            ),
            (
                DriftChange::MemberRemoved,
                DriftHandling::Reverted,
                g.clone(),
                Some(gone.clone()),
            ),
        ];
        want.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        want
    });
    let detail = &r.summary.drift[0].detail;
    assert!(
        detail.contains("by hand in Bitbucket") && detail.contains("who and when are not known"),
        "{detail}"
    );
    assert!(
        r.summary
            .warnings
            .iter()
            .any(|w| w.contains("3 change(s) made by hand")),
        "{:?}",
        r.summary.warnings
    );
    assert_eq!(r.summary.planned["remove-member"], 2, "{:?}", r.summary.planned);
    assert_eq!(s.groups()[GROUP], members, "the group is as the sources say again");
    s.assert_matches(&d);

    let writes = s.writes();
    let again = s.sync().await;
    assert!(again.summary.drift.is_empty(), "{:?}", again.summary.drift);
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
    assert_eq!(s.writes(), writes);
}

/// `drift = "report"`: the hand changes stay, nothing is written for them, and every run reports
/// them again until someone resolves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_only_leaves_hand_edits_and_reports_them_on_every_run() {
    let (d, members, outside) = world();
    let mut s = Scenario::new("bitbucket-dc", &d).await;
    s.target_extra = "drift = \"report\"".into();
    s.sync().await;
    let gone = members.iter().next().unwrap().clone();
    edit(
        &s,
        HandEdit::AddMember {
            group: GROUP.into(),
            user: outside[0].clone(),
        },
    );
    edit(
        &s,
        HandEdit::RemoveMember {
            group: GROUP.into(),
            user: gone.clone(),
        },
    );
    let writes = s.writes();
    for _ in 0..2 {
        let r = s.sync().await;
        assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
        let handled: Vec<_> = changes(&r).into_iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(
            handled,
            [
                (DriftChange::MemberAdded, DriftHandling::Reported),
                (DriftChange::MemberRemoved, DriftHandling::Reported)
            ]
        );
        assert!(r.summary.planned.is_empty(), "{:?}", r.summary.planned);
        assert_eq!(s.writes(), writes, "nothing is written for reported drift");
        assert!(s.groups()[GROUP].contains(&outside[0]) && !s.groups()[GROUP].contains(&gone));
    }
}

/// `drift = "adopt"`: a hand-added membership is kept, reported once, and not undone by later
/// runs; once the sources agree with it, the adoption is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_keeps_a_hand_edit_until_the_sources_agree() {
    let (d, _, outside) = world();
    let mut s = Scenario::new("bitbucket-dc", &d).await;
    s.target_extra = "drift = \"adopt\"".into();
    s.sync().await;
    let extra = outside[0].clone();
    edit(
        &s,
        HandEdit::AddMember {
            group: GROUP.into(),
            user: extra.clone(),
        },
    );
    let r = s.sync().await;
    assert_eq!(
        changes(&r),
        [(
            DriftChange::MemberAdded,
            DriftHandling::Adopted,
            Some(GROUP.into()),
            Some(extra.clone())
        )]
    );
    assert!(r.summary.planned.is_empty(), "{:?}", r.summary.planned);
    assert_eq!(s.store.drift_adopted("bitbucket").unwrap().len(), 1);

    let writes = s.writes();
    let later = s.sync().await;
    assert!(later.summary.drift.is_empty(), "adopted drift is not drift any more");
    assert!(
        later
            .summary
            .skipped
            .iter()
            .any(|k| k.subject == extra && k.why.contains("adopted")),
        "{:?}",
        later.summary.skipped
    );
    assert_eq!(s.writes(), writes);
    assert!(s.groups()[GROUP].contains(&extra), "kept");

    // The sources now put the person in the group too: nothing left to adopt.
    let mut agreed = d.clone();
    let id = d
        .users
        .iter()
        .find(|u| u.username.to_lowercase() == extra)
        .unwrap()
        .id
        .clone();
    let gid = d.groups.iter().find(|g| g.name == GROUP).unwrap().id.clone();
    agreed.memberships.push(roster_sim::directory::DirMembership {
        group: gid,
        member: id,
        member_is_group: false,
    });
    s.write(&agreed);
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    assert!(s.store.drift_adopted("bitbucket").unwrap().is_empty());
}

/// A managed group deleted by hand is created again with its members; a managed account renamed
/// by hand is renamed back (no second account), keeping its memberships.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_group_is_recreated_and_a_renamed_account_renamed_back() {
    let (d, members, _) = world();
    let s = Scenario::new("bitbucket-dc", &d).await;
    s.sync().await;
    let person = members.iter().next().unwrap().clone();
    edit(&s, HandEdit::DeleteGroup { group: GROUP.into() });
    edit(
        &s,
        HandEdit::RenameUser {
            from: person.clone(),
            to: "renamed-by-hand".into(),
        },
    );
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    let found: Vec<_> = changes(&r).into_iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(
        found,
        [
            (DriftChange::AccountRenamed, DriftHandling::Reverted),
            (DriftChange::GroupDeleted, DriftHandling::Reverted)
        ],
        "{:?}",
        r.summary.drift
    );
    let renamed = r
        .summary
        .drift
        .iter()
        .find(|x| x.change == DriftChange::AccountRenamed)
        .unwrap();
    assert_eq!(renamed.renamed_to.as_deref(), Some("renamed-by-hand"));
    assert_eq!(r.summary.planned["rename-user"], 1, "{:?}", r.summary.planned);
    assert_eq!(
        r.summary.planned.get("create-user"),
        None,
        "the same account, not a new one"
    );
    assert!(!s.users().contains_key("renamed-by-hand"));
    s.assert_matches(&d);
    let again = s.sync().await;
    assert!(again.summary.drift.is_empty() && again.summary.planned.is_empty());
}

/// Reverting many hand-added memberships takes them away: the guard counts those removals like
/// any other and holds the plan, writing nothing until it is approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_a_mass_hand_edit_is_held_by_the_guard() {
    let (d, members, _) = world();
    let mut s = Scenario::new("bitbucket-dc", &d).await;
    s.target_extra = "threshold = { memberships_removed = 3 }".into();
    s.sync().await;
    let added: Vec<String> = d
        .users
        .iter()
        .map(|u| u.username.to_lowercase())
        .filter(|u| !members.contains(u))
        .take(5)
        .collect();
    for u in &added {
        edit(
            &s,
            HandEdit::AddMember {
                group: GROUP.into(),
                user: u.clone(),
            },
        );
    }
    let writes = s.writes();
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Held, "{:?}", r.summary.warnings);
    assert_eq!(r.summary.drift.len(), 5);
    assert_eq!(s.writes(), writes, "a held plan writes nothing");
    let approved = crate::guard::approve(&s.runner(), &r).await;
    assert_eq!(approved.state, RunState::Succeeded, "{:?}", approved.summary.warnings);
    assert_eq!(s.groups()[GROUP], members);
    let again = s.sync().await;
    assert!(again.summary.drift.is_empty(), "{:?}", again.summary.drift);
}
