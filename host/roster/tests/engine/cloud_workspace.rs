//! Bitbucket Cloud, a workspace still administered in Bitbucket (mode one), as an administrator
//! sees it: Roster cannot create Atlassian accounts, so a first sync invites everyone by email
//! (reported as pending until accepted), and memberships follow on the run after a person has
//! joined; profiles belong to their people (a changed name or address is reported, never
//! written); a username change is an update of nothing; leavers leave the workspace's groups;
//! owners and the account Roster acts as are never touched; a second run writes nothing.
//!
//! And Cloud's hourly call meter: a plan larger than one window's budget completes over several
//! runs, each but the last ending `paused`, with no write repeated or lost; a 429 from Cloud when
//! Roster's own budget was set higher pauses the run too (Roster learns the limit from
//! `X-RateLimit-Limit`), it does not fail it. Cloud's separate limit on sending invitations
//! (100 a minute) is not the hour's: its 429 is waited on within the run, which completes.
//!
//! The simulator plays Cloud (`roster_sim::bitbucket_cloud`), with invitations accepted only
//! when a test says so (`AutoAccept::Never`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use roster_engine::{TargetKind, TargetKinds, Writes};
use roster_model::{Quiet, RunState};
use roster_serve::{Config, RunReport, Runner, SyncOptions};
use roster_sim::bitbucket_cloud::{Administration, AutoAccept, CloudSim, CloudState};
use roster_sim::directory::Directory;
use roster_store::{Store, now_ms};

use crate::common::{self, TestRuntime};
use crate::scenarios::{WORKSPACE, name_of};

/// The group invitations go to, and every active person's default group: in a workspace
/// administered in Bitbucket, being in one of its groups is being a member.
pub(crate) const DEVELOPERS: &str = "developers";
const APP_PASSWORD: &str = "app-password";

/// A file source, the plugins, a store, and the Cloud simulator in mode one.
pub(crate) struct CloudWorld {
    pub(crate) sim: CloudSim,
    pub(crate) rt: TestRuntime,
    pub(crate) store: Arc<Store>,
    /// Extra lines for `[target]`.
    pub(crate) target_extra: String,
    /// Where Roster reaches Bitbucket: the simulator, or a proxy in front of it.
    pub(crate) url: String,
}

/// A workspace administered in Bitbucket: the group `developers`, and Roster's own account
/// (`admin`, an owner) in it; invitations wait for the test to accept them.
pub(crate) fn workspace() -> CloudState {
    let mut s = CloudState::new(WORKSPACE, Administration::Bitbucket);
    s.credentials("admin", APP_PASSWORD);
    s.add_group(DEVELOPERS, Some("write"));
    let me = s.add_account("admin", "Roster", "admin@example.com");
    s.join(&me, DEVELOPERS);
    s.make_owner(&me);
    s.auto_accept(AutoAccept::Never);
    s
}

impl CloudWorld {
    pub(crate) async fn new(d: &Directory, state: CloudState) -> CloudWorld {
        let rt = TestRuntime::new(&[("file", "file.wasm"), ("normalize", "normalize.wasm")]).await;
        let sim = CloudSim::start(state).await;
        let store = common::store_in(&rt, 11);
        let url = sim.url();
        let w = CloudWorld {
            sim,
            rt,
            store,
            target_extra: String::new(),
            url,
        };
        std::fs::create_dir_all(w.rt.dir.path().join("idp")).unwrap();
        w.write(d);
        w
    }

    /// Replaces the source's export (what the IdP says now).
    pub(crate) fn write(&self, d: &Directory) {
        d.write_json(&self.rt.dir.path().join("idp/directory.json")).unwrap();
    }

    pub(crate) fn kinds() -> TargetKinds {
        TargetKinds::new([Arc::new(roster_target_bitbucket_cloud::Kind) as Arc<dyn TargetKind>])
    }

    pub(crate) fn config_text(&self) -> String {
        let files = self.rt.dir.path().join("idp").display().to_string();
        format!(
            r#"[[source]]
id = "hr"
plugin = "file"
files = "{files}"
settings = {{ path = "directory.json" }}

[[source.transforms]]
plugin = "normalize"

[target]
kind = "bitbucket-cloud"
url = "{url}"
workspace = "{WORKSPACE}"
username = "admin"
app_password = {{ value = "{APP_PASSWORD}" }}
default_groups = ["{DEVELOPERS}"]
{extra}
"#,
            url = self.url,
            extra = self.target_extra
        )
    }

    pub(crate) fn runner(&self) -> Runner {
        let kinds = Self::kinds();
        let config = Config::parse(&self.config_text(), self.rt.dir.path(), &kinds).unwrap();
        Runner::new(self.store.clone(), self.rt.runtime.clone(), config, &kinds).unwrap()
    }

    pub(crate) async fn run(&self, writes: Writes) -> RunReport {
        let opts = SyncOptions {
            writes,
            actor: "test".into(),
            ..SyncOptions::default()
        };
        self.runner().sync(&opts, &Quiet).await.unwrap()
    }

    pub(crate) async fn sync(&self) -> RunReport {
        self.run(Writes::Apply).await
    }

    /// Successful writes Cloud has answered so far.
    pub(crate) fn writes(&self) -> u64 {
        self.sim.lock().writes()
    }

    /// The workspace's groups, each with its members' Roster names.
    pub(crate) fn groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.sim
            .lock()
            .groups()
            .into_iter()
            .map(|(g, members)| (g, members.iter().map(|m| name_of(m)).collect()))
            .collect()
    }

    /// Roster names of the workspace's members.
    pub(crate) fn members(&self) -> BTreeSet<String> {
        self.sim.lock().members().keys().map(|e| name_of(e)).collect()
    }

    /// Pending invitations: address → how many times each was sent.
    pub(crate) fn invitations(&self) -> BTreeMap<String, u32> {
        let mut sent = BTreeMap::new();
        for i in self.sim.lock().invitations() {
            *sent.entry(i.email.to_lowercase()).or_insert(0) += i.sent;
        }
        sent
    }

    /// Everyone in `d` accepts their invitation.
    pub(crate) fn accept_all(&self, d: &Directory) {
        let mut s = self.sim.lock();
        for u in d.users.iter().filter(|u| u.active) {
            assert!(s.accept_invitation(&u.email), "{} had no invitation to accept", u.email);
        }
    }

    /// Asserts the workspace holds what `d` says: every group with its flattened members, and
    /// every active person (and Roster's own account) in `developers`.
    pub(crate) fn assert_matches(&self, d: &Directory) {
        let groups = self.groups();
        for (group, members) in d.expected_members() {
            assert_eq!(groups.get(&group), Some(&members), "members of {group}");
        }
        let mut developers = d.active_usernames();
        developers.insert("admin".into());
        assert_eq!(groups.get(DEVELOPERS), Some(&developers), "members of {DEVELOPERS}");
    }

    /// Invites everyone in `d`, has them accept, and syncs their memberships: the workspace as
    /// an administrator has it after the first days.
    pub(crate) async fn joined(d: &Directory, state: CloudState) -> CloudWorld {
        let w = CloudWorld::new(d, state).await;
        let first = w.sync().await;
        assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
        w.accept_all(d);
        let second = w.sync().await;
        assert_eq!(second.state, RunState::Succeeded, "{:?}", second.summary.warnings);
        w.assert_matches(d);
        w
    }
}

/// The run's report as an administrator reads it (`roster sync --json`).
pub(crate) fn report(r: &RunReport) -> String {
    serde_json::to_string(&r.summary).unwrap()
}

/// Operations the plan held, all kinds together.
fn planned(r: &RunReport) -> usize {
    r.summary.planned.values().sum()
}

/// Operations of the plan that write to Cloud: adopting the account of someone who accepted
/// an invitation is Roster's own record.
fn planned_writes(r: &RunReport) -> usize {
    planned(r) - r.summary.planned.get("adopt-user").copied().unwrap_or(0)
}

/// Nobody can be created on Cloud: a first sync invites every person to `developers` by email,
/// once, and says they are pending; until they accept, a run sends no invitation again and writes
/// nothing. Once they have joined, the next run gives them their groups, and the one after that
/// writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_invites_everyone_and_memberships_follow_once_they_have_joined() {
    let d = Directory::generate(20, 4, 2);
    let w = CloudWorld::new(&d, workspace()).await;
    let first = w.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    assert_eq!(
        first.summary.planned.get("create-user"),
        Some(&20),
        "{:?}",
        first.summary.planned
    );
    let invited = w.invitations();
    let everyone: BTreeMap<String, u32> = d.users.iter().map(|u| (u.email.to_lowercase(), 1)).collect();
    assert_eq!(invited, everyone, "each person invited once");
    assert!(
        w.sim.lock().invitations().iter().all(|i| i.group_slug == DEVELOPERS),
        "to the invite group: {:?}",
        w.sim.lock().invitations()
    );
    assert_eq!(w.members(), BTreeSet::from(["admin".to_string()]), "nobody joined yet");
    assert_eq!(
        first.summary.applied.done,
        planned(&first),
        "{:?}",
        first.summary.warnings
    );

    // Nobody accepted yet: the next run waits for them.
    let writes = w.writes();
    let waiting = w.sync().await;
    assert_eq!(waiting.state, RunState::Succeeded, "{:?}", waiting.summary.warnings);
    assert_eq!(
        w.writes(),
        writes,
        "nobody is invited twice: {:?}",
        waiting.summary.planned
    );
    assert_eq!(w.invitations(), everyone);
    for u in &d.users {
        let said = waiting
            .summary
            .skipped
            .iter()
            .find(|x| x.subject.eq_ignore_ascii_case(&u.username));
        assert!(
            said.is_some_and(|x| x.why.contains("not accepted yet") && x.why.contains(&u.email)),
            "{} is reported pending: {:?}",
            u.username,
            waiting.summary.skipped
        );
    }

    w.accept_all(&d);
    let joined = w.sync().await;
    assert_eq!(joined.state, RunState::Succeeded, "{:?}", joined.summary.warnings);
    assert_eq!(
        joined.summary.planned.get("create-user"),
        None,
        "{:?}",
        joined.summary.planned
    );
    w.assert_matches(&d);
    assert!(w.invitations().is_empty(), "{:?}", w.invitations());

    let writes = w.writes();
    let again = w.sync().await;
    assert_eq!(again.state, RunState::Succeeded, "{:?}", again.summary.warnings);
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
    assert_eq!(w.writes(), writes, "the second run wrote");
}

/// A person who accepts their invitation while signed in with another address joins under that
/// address: no member has the invited one. Roster says so, and does not mail them again every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_accepted_under_another_address_is_reported_not_sent_again() {
    let d = Directory::generate(6, 1, 1);
    let w = CloudWorld::new(&d, workspace()).await;
    let first = w.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    let (odd, rest) = d.users.split_first().unwrap();
    {
        let mut s = w.sim.lock();
        assert!(s.accept_invitation_as(&odd.email, "private.address@elsewhere.example"));
        for u in rest {
            assert!(s.accept_invitation(&u.email));
        }
    }
    for _ in 0..2 {
        let r = w.sync().await;
        assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
        assert_eq!(
            r.summary.planned.get("create-user"),
            None,
            "{} is not invited again: {:?}",
            odd.email,
            r.summary.planned
        );
        let said = r
            .summary
            .skipped
            .iter()
            .find(|x| x.subject.eq_ignore_ascii_case(&odd.username));
        assert!(
            said.is_some_and(|x| x.why.contains(&format!("invitation to {}", odd.email))
                && x.why.contains("no longer open, yet no account has that address")
                && x.why.contains("joined with another email")),
            "{:?}",
            r.summary.skipped
        );
    }
    assert!(w.invitations().is_empty(), "{:?}", w.invitations());
}

/// A dry run on Cloud plans the invitations and sends none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_invites_nobody() {
    let d = Directory::generate(10, 2, 1);
    let w = CloudWorld::new(&d, workspace()).await;
    let r = w.run(Writes::DryRun).await;
    assert_eq!(r.state, RunState::Planned);
    assert_eq!(
        r.summary.planned.get("create-user"),
        Some(&10),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(w.writes(), 0);
    assert!(w.invitations().is_empty());
}

/// People who leave the IdP are deprovisioned by leaving every group of the workspace Roster
/// manages — Cloud has no way to disable an Atlassian account — and nobody else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaver_leaves_the_workspaces_groups() {
    let d = Directory::generate(20, 4, 2);
    let w = CloudWorld::joined(&d, workspace()).await;
    let leaver = d.users[3].username.to_lowercase();
    assert!(w.groups().values().filter(|m| m.contains(&leaver)).count() >= 2);
    let mut gone = d.clone();
    gone.users.retain(|u| u.username.to_lowercase() != leaver);
    gone.memberships.retain(|m| m.member != d.users[3].id);
    w.write(&gone);
    let r = w.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    let still: Vec<String> = w
        .groups()
        .into_iter()
        .filter(|(_, m)| m.contains(&leaver))
        .map(|(g, _)| g)
        .collect();
    assert!(still.is_empty(), "the leaver is still in {still:?}");
    w.assert_matches(&gone);

    let writes = w.writes();
    let again = w.sync().await;
    assert!(again.summary.planned.is_empty(), "{:?}", again.summary.planned);
    assert_eq!(w.writes(), writes, "the second run wrote");
}

/// A plan that removes more than the threshold allows is held, writes nothing, and applies
/// exactly when approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_removal_is_held_until_approved() {
    let d = Directory::generate(40, 4, 1);
    let mut w = CloudWorld::joined(&d, workspace()).await;
    w.target_extra = "threshold = { count = 5, percent = 50 }".into();
    let mut fewer = d.clone();
    fewer.users.truncate(30);
    let kept: BTreeSet<String> = fewer.users.iter().map(|u| u.id.clone()).collect();
    fewer
        .memberships
        .retain(|m| m.member_is_group || kept.contains(&m.member));
    w.write(&fewer);
    let writes = w.writes();
    let before = w.groups();
    let r = w.sync().await;
    assert_eq!(r.state, RunState::Held, "{:?}", r.summary.warnings);
    assert_eq!(w.writes(), writes, "a held plan writes nothing");
    assert_eq!(w.groups(), before);

    let approved = crate::guard::approve(&w.runner(), &r).await;
    assert_eq!(approved.state, RunState::Succeeded, "{:?}", approved.summary.warnings);
    assert_eq!(approved.summary.applied.done, planned(&r));
    w.assert_matches(&fewer);
}

/// The workspace's owners and the account Roster acts as are never changed, even when the IdP
/// has a person with an owner's address, or drops them from a group Roster manages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_and_the_acting_account_are_never_changed() {
    let d = Directory::generate(10, 2, 1);
    let mut state = workspace();
    // An owner the IdP also has (its groups there differ), and one it does not have.
    let owner = &d.users[2];
    let id = state.add_account(&owner.username, &owner.display_name, &owner.email);
    state.join(&id, DEVELOPERS);
    state.make_owner(&id);
    let boss = state.add_account("boss", "The Boss", "boss@example.com");
    state.join(&boss, DEVELOPERS);
    state.make_owner(&boss);
    let w = CloudWorld::new(&d, state).await;
    let r = w.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    let owner_name = owner.username.to_lowercase();
    assert!(
        r.summary.skipped.iter().any(|x| x.subject.to_lowercase() == owner_name),
        "{:?}",
        r.summary.skipped
    );
    assert!(
        !w.invitations().contains_key(&owner.email.to_lowercase()),
        "an owner is not invited"
    );
    let groups = w.groups();
    for name in ["admin", "boss", owner_name.as_str()] {
        let of: Vec<&String> = groups
            .iter()
            .filter(|(_, m)| m.contains(name))
            .map(|(g, _)| g)
            .collect();
        assert_eq!(of, vec![DEVELOPERS], "{name}'s groups");
    }
}

/// Atlassian accounts belong to their people: a display name or an address changed in the IdP
/// is reported, and nothing is written (nor anyone invited at the new address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_name_or_address_is_reported_and_never_written() {
    let d = Directory::generate(10, 2, 1);
    let w = CloudWorld::joined(&d, workspace()).await;
    let mut changed = d.clone();
    changed.users[1].display_name = "Someone Else".into();
    changed.users[2].email = "new.address@example.org".into();
    w.write(&changed);
    let writes = w.writes();
    let r = w.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    assert_eq!(w.writes(), writes, "profiles are not Roster's: {:?}", r.summary.planned);
    assert!(w.invitations().is_empty(), "{:?}", w.invitations());
    for who in [&d.users[1].username, &d.users[2].username] {
        let said = r.summary.skipped.iter().find(|x| x.subject.eq_ignore_ascii_case(who));
        assert!(
            said.is_some_and(|x| x.why.contains("owned by their people")),
            "{who} is reported: {:?}",
            r.summary.skipped
        );
    }
}

/// A username changed in the IdP is an update of nothing on Cloud (accounts are keyed by
/// account id, found by address): nothing is renamed, invited, removed or written, and the run
/// says so without advising a rename by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_is_reported_as_an_update_of_nothing() {
    let d = Directory::generate(10, 2, 1);
    let w = CloudWorld::joined(&d, workspace()).await;
    let mut renamed = d.clone();
    renamed.users[5].username = format!("{}-new", d.users[5].username);
    w.write(&renamed);
    let writes = w.writes();
    let r = w.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    for kind in [
        "create-user",
        "rename-user",
        "deactivate-user",
        "delete-user",
        "remove-members",
    ] {
        assert_eq!(r.summary.planned.get(kind), None, "{kind}: {:?}", r.summary.planned);
    }
    assert_eq!(w.writes(), writes);
    assert!(w.invitations().is_empty());
    let new = &renamed.users[5].username;
    let said = r
        .summary
        .collisions
        .iter()
        .find(|c| c.subject.eq_ignore_ascii_case(new));
    // Not advice to rename the account by hand: an Atlassian account's name is its person's,
    // and Roster finds it by email whatever its name.
    assert!(
        said.is_some_and(|c| c.why.contains("cannot rename") && !c.why.contains("by hand")),
        "{:?}",
        r.summary.collisions
    );
}

/// Runs until one ends otherwise than `paused` (at most `limit` runs), letting Cloud's window
/// roll over between them; returns every run's report.
async fn run_until_done(w: &CloudWorld, window: Duration, limit: usize) -> Vec<RunReport> {
    let mut runs = Vec::new();
    loop {
        let r = w.sync().await;
        let paused = r.state == RunState::Paused;
        runs.push(r);
        if !paused {
            return runs;
        }
        assert!(runs.len() < limit, "still paused after {limit} runs");
        tokio::time::sleep(window + Duration::from_millis(300)).await;
    }
}

/// The hourly meter, shortened to 3 s so a test sees it.
const WINDOW: Duration = Duration::from_secs(3);
const BUDGET: &str = "hourly_budget = { calls = 40, window_secs = 3 }";

/// A plan larger than one window's budget — 64 invitations, then 64 memberships, at 40 calls a
/// window — completes over several runs: each but the last ends `paused`, the plan's ETA says
/// more than one window, every invitation is sent exactly once and every membership written
/// exactly once (the simulator's writes equal the writes the plans needed), and the workspace
/// ends exactly as the IdP says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_larger_than_the_hourly_budget_completes_over_several_runs() {
    let d = Directory::generate(64, 1, 1);
    let mut state = workspace();
    state.hourly_limit(40, WINDOW);
    let mut w = CloudWorld::new(&d, state).await;
    w.target_extra = BUDGET.into();

    let runs = run_until_done(&w, WINDOW, 10).await;
    let (last, paused) = runs.split_last().unwrap();
    assert!(!paused.is_empty(), "64 invitations do not fit one window of 40 calls");
    for r in paused {
        assert_eq!(r.state, RunState::Paused, "{:?}", r.summary.warnings);
    }
    assert_eq!(last.state, RunState::Succeeded, "{:?}", last.summary.warnings);
    let everyone: BTreeMap<String, u32> = d.users.iter().map(|u| (u.email.to_lowercase(), 1)).collect();
    assert_eq!(w.invitations(), everyone, "each invitation sent exactly once");
    let needed = planned(&runs[0]) as u64;
    assert_eq!(w.writes(), needed, "no write repeated, none lost");
    let eta = runs[0].summary.eta.expect("a metered target's plan has an ETA");
    assert!(eta.read_calls > 0, "a read on Cloud is metered: {eta:?}");
    assert!(eta.runs_needed > Some(1), "{eta:?}");
    assert_eq!(
        eta.runs_needed,
        Some(runs.len() as u64),
        "the ETA said how many runs: {eta:?}"
    );

    w.accept_all(&d);
    let writes = w.writes();
    let runs = run_until_done(&w, WINDOW, 10).await;
    let (last, paused) = runs.split_last().unwrap();
    assert!(!paused.is_empty(), "64 memberships do not fit one window of 40 calls");
    assert!(paused.iter().all(|r| r.state == RunState::Paused));
    assert_eq!(last.state, RunState::Succeeded, "{:?}", last.summary.warnings);
    assert_eq!(
        w.writes() - writes,
        planned_writes(&runs[0]) as u64,
        "no write repeated, none lost"
    );
    w.assert_matches(&d);

    let writes = w.writes();
    tokio::time::sleep(WINDOW).await;
    let again = w.sync().await;
    assert_eq!(again.state, RunState::Succeeded, "{:?}", again.summary.warnings);
    assert_eq!(w.writes(), writes, "the second run wrote");
}

/// Roster's budget says 1000 calls a window, Cloud allows 30: Cloud's 429 (with
/// `X-RateLimit-Limit: 30`) pauses the run, it does not fail it, and the next runs finish the
/// plan with every invitation sent exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_when_the_budget_was_set_too_high_pauses_the_run() {
    let d = Directory::generate(50, 0, 0);
    let mut state = workspace();
    state.hourly_limit(30, WINDOW);
    let mut w = CloudWorld::new(&d, state).await;
    w.target_extra = "hourly_budget = { calls = 1000, window_secs = 3 }".into();

    let runs = run_until_done(&w, WINDOW, 10).await;
    let (last, paused) = runs.split_last().unwrap();
    assert!(!paused.is_empty(), "50 invitations do not fit 30 calls");
    assert_eq!(paused[0].state, RunState::Paused, "{:?}", paused[0].summary.warnings);
    assert!(paused[0].summary.throttled >= 1, "Cloud answered 429");
    assert_eq!(last.state, RunState::Succeeded, "{:?}", last.summary.warnings);
    let everyone: BTreeMap<String, u32> = d.users.iter().map(|u| (u.email.to_lowercase(), 1)).collect();
    assert_eq!(w.invitations(), everyone, "each invitation sent exactly once");
    assert_eq!(w.writes(), planned(&runs[0]) as u64, "no write repeated, none lost");
}

/// A run that starts while the window's budget is still spent (a scheduler firing before the
/// time the paused run named) has nothing it may do yet: it ends `paused` again, writing
/// nothing, rather than failing the run on its first read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_before_the_budget_has_room_again_pauses_too() {
    let d = Directory::generate(64, 0, 0);
    let mut state = workspace();
    state.hourly_limit(40, Duration::from_secs(30));
    let mut w = CloudWorld::new(&d, state).await;
    w.target_extra = "hourly_budget = { calls = 40, window_secs = 30 }".into();
    let first = w.sync().await;
    assert_eq!(first.state, RunState::Paused, "{:?}", first.summary.warnings);
    let writes = w.writes();
    let opts = SyncOptions {
        actor: "test".into(),
        ..SyncOptions::default()
    };
    let early = w.runner().sync(&opts, &Quiet).await;
    let early = early.unwrap_or_else(|e| panic!("the early run failed instead of pausing: {e}"));
    assert_eq!(early.state, RunState::Paused, "{:?}", early.summary.warnings);
    assert_eq!(w.writes(), writes);
}

/// A run that pauses because Roster's own budget for the window is spent sent nothing for the
/// operation it stopped at: that operation is not a failure (an alert on failed operations must
/// not fire for a plan that is merely spread over runs), it is left for the next run like the
/// ones after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_run_counts_no_failure() {
    let d = Directory::generate(64, 0, 0);
    let mut state = workspace();
    state.hourly_limit(40, WINDOW);
    let mut w = CloudWorld::new(&d, state).await;
    w.target_extra = BUDGET.into();
    let r = w.sync().await;
    assert_eq!(r.state, RunState::Paused, "{:?}", r.summary.warnings);
    assert_eq!(r.summary.applied.failed, 0, "{:?}", r.summary.warnings);
}

/// `roster sync` on a plan larger than the budget prints the ETA, says the run paused and that
/// the next one continues, and exits 75 (EX_TEMPFAIL: try again later), not 1: a wrapper tells
/// a plan spread over runs from a failure. The run that finishes it exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_sync_exits_75_when_the_run_pauses_and_0_when_the_plan_is_done() {
    let d = Directory::generate(30, 0, 0);
    let mut state = workspace();
    state.hourly_limit(1000, WINDOW);
    let mut w = CloudWorld::new(&d, state).await;
    w.target_extra = format!("hourly_budget = {{ calls = 20, window_secs = {} }}", WINDOW.as_secs());
    let config = w.rt.dir.path().join("roster.toml");
    std::fs::write(&config, w.config_text()).unwrap();
    let sync = || {
        let (dir, config) = (w.rt.dir.path().to_path_buf(), config.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
                .arg("--data-dir")
                .arg(dir.join("data"))
                .arg("--plugins-dir")
                .arg(dir.join("plugins"))
                .arg("--config")
                .arg(config)
                .arg("sync")
                .output()
                .unwrap()
        })
    };
    let out = sync().await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(75), "{stdout}\n{stderr}");
    assert!(stdout.contains("ETA: about "), "{stdout}");
    assert!(
        stderr
            .contains("paused: the target's call budget is spent before the plan was done; the next run continues it"),
        "{stderr}"
    );
    let mut code = out.status.code();
    for _ in 0..10 {
        if code == Some(0) {
            break;
        }
        tokio::time::sleep(WINDOW).await;
        let out = sync().await.unwrap();
        code = out.status.code();
        assert!(matches!(code, Some(0 | 75)), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(code, Some(0), "the plan finished");
    let everyone: BTreeMap<String, u32> = d.users.iter().map(|u| (u.email.to_lowercase(), 1)).collect();
    assert_eq!(w.invitations(), everyone, "each invitation sent exactly once");
}

/// `roster serve`'s scheduler continues a paused run as soon as the budget has a whole window
/// again — not at the sources' next fire time, which may be a day away — and keeps doing so
/// until the plan is done: every invitation sent once, each continuation a scheduled run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_continues_a_paused_run_when_the_budget_has_room_again() {
    use roster_serve::service::{RequestedMode, RunRequest, Service};
    let d = Directory::generate(40, 0, 0);
    let mut w = CloudWorld::new(&d, workspace()).await;
    w.target_extra = format!("hourly_budget = {{ calls = 20, window_secs = {} }}", WINDOW.as_secs());
    let path = w.rt.dir.path().join("roster.toml");
    std::fs::write(&path, w.config_text()).unwrap();
    let service = Service::new(w.store.clone(), w.rt.runtime.clone(), &path, CloudWorld::kinds()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(roster_serve::scheduler::run(service.clone(), stopped));

    let first = service
        .start_run(RunRequest {
            sources: vec![],
            mode: RequestedMode::Full,
            trigger: roster_model::Trigger::Api,
            actor: "test".into(),
            origin: String::new(),
            target: None,
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let runs = loop {
        let runs = w.store.runs_filtered(&roster_store::RunFilter::default(), 50).unwrap();
        if runs.first().is_some_and(|r| r.state == RunState::Succeeded) {
            break runs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the plan was not finished: {:?}",
            runs.iter().map(|r| (r.id, r.state, r.trigger)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), scheduler)
        .await
        .unwrap()
        .unwrap();
    let (done, earlier) = runs.split_first().unwrap();
    let first = earlier.iter().find(|r| r.id == first).expect("the first run");
    assert_eq!(first.state, RunState::Paused);
    assert!(
        earlier.iter().all(|r| r.state == RunState::Paused),
        "{:?}",
        earlier.iter().map(|r| r.state).collect::<Vec<_>>()
    );
    assert!(
        earlier.len() >= 2,
        "40 invitations and the reads need three windows of 20 calls"
    );
    assert_eq!(
        done.trigger,
        roster_model::Trigger::Schedule,
        "continued by the scheduler"
    );
    let everyone: BTreeMap<String, u32> = d.users.iter().map(|u| (u.email.to_lowercase(), 1)).collect();
    assert_eq!(w.invitations(), everyone, "each invitation sent exactly once");
}

/// `new_user_groups` on Cloud: an invitation cannot carry them, so people join them on the first
/// run after they accepted — once: someone who leaves such a group is not put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_accepted_their_invitation_start_in_the_new_user_groups() {
    let d = Directory::generate(8, 1, 1);
    let mut state = workspace();
    state.add_group("onboarding", Some("read"));
    let mut w = CloudWorld::new(&d, state).await;
    w.target_extra = "new_user_groups = [\"onboarding\"]".into();
    let first = w.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    assert!(
        w.groups().get("onboarding").is_none_or(|m| m.is_empty()),
        "nobody joined yet"
    );
    w.accept_all(&d);
    let joined = w.sync().await;
    assert_eq!(joined.state, RunState::Succeeded, "{:?}", joined.summary.warnings);
    let everyone: BTreeSet<String> = d.users.iter().map(|u| name_of(&u.email)).collect();
    assert_eq!(
        w.groups().get("onboarding"),
        Some(&everyone),
        "{:?}",
        joined.summary.planned
    );
    // Someone leaves it by hand: it is theirs to leave.
    let leaver = d.users[0].email.clone();
    {
        let mut s = w.sim.lock();
        let id = s.account_id(&leaver).unwrap();
        s.leave(&id, "onboarding");
    }
    let writes = w.writes();
    let again = w.sync().await;
    assert_eq!(again.state, RunState::Succeeded, "{:?}", again.summary.warnings);
    assert_eq!(w.writes(), writes, "{:?}", again.summary.planned);
}

/// Cloud limits sending invitations apart from its hourly pool (100 a minute; 5 every 2 s here).
/// A first sync inviting 12 people meets that limit's 429s and waits them out: it completes in
/// one run, nobody is invited twice, and the hourly budget is neither lowered to the invitation
/// limit nor taken as spent — the next run's ETA still counts 1000 calls an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invitation_limit_s_429_neither_pauses_the_run_nor_lowers_the_hourly_budget() {
    let first = Directory::generate(12, 0, 0);
    let mut state = workspace();
    state.hourly_limit(1000, Duration::from_secs(3600));
    state.invitation_limit(5, Duration::from_secs(2));
    let mut w = CloudWorld::new(&first, state).await;
    w.target_extra = "hourly_budget = { calls = 1000, window_secs = 3600 }".into();

    let r = w.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    assert!(r.summary.throttled >= 1, "the invitation limit answered 429");
    assert_eq!(r.summary.applied.done, planned(&r), "{:?}", r.summary.warnings);
    let everyone =
        |d: &Directory| -> BTreeMap<String, u32> { d.users.iter().map(|u| (u.email.to_lowercase(), 1)).collect() };
    assert_eq!(w.invitations(), everyone(&first), "each invitation sent exactly once");
    assert_eq!(w.writes(), 12);
    let window = w
        .store
        .target_call_window("bitbucket", now_ms(), 3_600_000, 1000)
        .unwrap();
    assert_eq!(window.calls, 1000, "the hourly limit is the configured one");
    assert_eq!(window.frees_at_ms, None, "the hour is not taken as spent");

    // Three more people: the next run's ETA counts the hour's 1000 calls, not 5.
    let more = Directory::generate(15, 0, 0);
    w.write(&more);
    let next = w.sync().await;
    assert_eq!(next.state, RunState::Succeeded, "{:?}", next.summary.warnings);
    let eta = next.summary.eta.expect("a metered target's plan has an ETA");
    assert_eq!(eta.calls_per_window, 1000, "{eta:?}");
    assert_eq!(eta.runs_needed, Some(1), "{eta:?}");
    assert_eq!(w.invitations(), everyone(&more));
}
