//! Inactive accounts: with `inactive = { days = N }`, an account Roster manages whose person has
//! not signed in to Bitbucket Data Center (its simulator's `lastAuthenticationTimestamp`) for N
//! days is disabled like a leaver's, the plan naming the date and the rule; protected accounts
//! are never touched; a mass cleanup is held by the guard like any other mass deprovisioning; a
//! person who signs in again comes back with their groups.

use roster_model::RunState;
use roster_sim::directory::Directory;
use roster_store::now_ms;

use crate::scenarios::{Kind, Scenario};

const DAY: i64 = 86_400_000;

fn sign_in(s: &Scenario, user: &str, days_ago: i64) {
    let Kind::Dc(sim) = &s.kind else {
        panic!("sign-ins are simulated on Data Center")
    };
    sim.lock().sign_in(user, now_ms() - days_ago * DAY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_account_is_disabled_and_comes_back_with_its_groups_after_a_sign_in() {
    let d = Directory::generate(20, 3, 2);
    let names: Vec<String> = d.users.iter().map(|u| u.username.to_lowercase()).collect();
    let (idle, recent, guarded) = (&names[2], &names[3], &names[4]);
    let mut s = Scenario::new("bitbucket-dc", &d).await;
    s.target_extra = "inactive = { days = 90 }".into();
    let first = s.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    // Nobody has signed in yet: no sign-in recorded is not inactivity.
    assert_eq!(first.summary.planned.get("deactivate-user"), None);

    // An account Roster made, protected since.
    s.target_extra = format!("inactive = {{ days = 90 }}\nprotected_users = [\"{guarded}\"]");
    sign_in(&s, idle, 120);
    sign_in(&s, recent, 5);
    sign_in(&s, guarded, 400);
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    let (_, ops) = roster_engine::stored_plan(&s.store, r.plan_id.as_deref().unwrap()).unwrap();
    let off = ops.iter().find(|o| o.op.kind() == "deactivate-user").unwrap();
    assert_eq!(off.op.subject().to_lowercase(), *idle);
    assert!(
        off.reason.starts_with("no sign-in to Bitbucket since 20") && off.reason.ends_with("(inactive.days = 90)"),
        "{}",
        off.reason
    );
    let licensed = s.licensed();
    assert!(!licensed.contains(idle), "unlicensed");
    assert!(
        licensed.contains(recent) && licensed.contains(guarded),
        "a recent sign-in and a protected account stay"
    );
    assert!(s.users().contains_key(idle), "disabled, not deleted");

    // It stays disabled while nobody signs in: no flip-flop.
    let again = s.sync().await;
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
    assert!(
        again
            .summary
            .skipped
            .iter()
            .any(|k| k.subject.to_lowercase() == *idle && k.why.contains("signs in again")),
        "{:?}",
        again.summary.skipped
    );

    sign_in(&s, idle, 0);
    // Lifting the protection would deprovision the guarded account too, unless it signs in.
    sign_in(&s, guarded, 1);
    s.target_extra = "inactive = { days = 90 }".into();
    let back = s.sync().await;
    assert_eq!(back.state, RunState::Succeeded, "{:?}", back.summary.warnings);
    assert_eq!(back.summary.planned.get("create-user"), None, "the same account");
    s.assert_matches(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_inactivity_cleanup_is_held_like_any_mass_deprovisioning() {
    let d = Directory::generate(40, 3, 1);
    let mut s = Scenario::new("bitbucket-dc", &d).await;
    s.target_extra = "inactive = { days = 30 }".into();
    s.sync().await;
    for u in d.users.iter().take(12) {
        sign_in(&s, &u.username, 60);
    }
    let writes = s.writes();
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Held, "{:?}", r.summary.warnings);
    assert_eq!(r.summary.planned["deactivate-user"], 12);
    let verdict = r.summary.guard.as_ref().unwrap();
    assert!(
        verdict.tripped.iter().any(|t| t.rule.name() == "deprovisions"),
        "{:?}",
        verdict.tripped
    );
    assert_eq!(s.writes(), writes, "a held plan writes nothing");
    let approved = crate::guard::approve(&s.runner(), &r).await;
    assert_eq!(approved.state, RunState::Succeeded, "{:?}", approved.summary.warnings);
    assert_eq!(s.licensed().len(), 40 - 12 + 1, "the rest and Roster's own account");
}
