//! The engine's scenarios, run against four targets with different capabilities: Bitbucket
//! Data Center (its simulator: renames, bulk adds, disabling by unlicensing, groups kept), the
//! in-memory target (no rename, one member per call, a native disable), the served Crowd
//! directory (renames, bulk adds, a native disable, groups no source has deleted; its state in
//! the store) and Bitbucket Cloud administered at admin.atlassian.com (its simulator, through
//! the Atlassian SCIM directory: no rename, bulk adds, deactivation; the licensing group from
//! `licensed_groups`; mode one, by invitation, is `cloud_workspace.rs`'s). Each scenario goes the whole way — a file source, the directory, the engine —
//! and asserts what an administrator would see in the target, so the same promises are proven
//! through the `Target` seam, not around it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use roster_engine::{TargetKind, TargetKinds, Writes};
use roster_model::{Quiet, RunState};
use roster_serve::{Config, RunReport, Runner, SyncOptions};
use roster_sim::bitbucket::{BbState, BitbucketSim, Permission};
use roster_sim::bitbucket_cloud::{Administration, CloudSim, CloudState};
use roster_sim::directory::Directory;
use roster_store::crypto::Key;
use roster_store::{ServedChange, ServedState, Store};
use roster_target_memory::World as MemWorld;

use crate::common::TestRuntime;

/// The licensing group every active person joins (`default_groups`).
pub(crate) const LICENSED: &str = "bitbucket-users";

/// One of the four targets, as a test looks at it.
pub(crate) enum Kind {
    Dc(BitbucketSim),
    Memory(Arc<Mutex<MemWorld>>),
    /// The served Crowd directory (in the scenario's store), and its seat limit.
    Crowd(Mutex<Option<u32>>),
    /// Bitbucket Cloud administered at admin.atlassian.com (SCIM), and its seat limit (Cloud's
    /// API does not say the plan's, so it is configured).
    Cloud(CloudSim, Mutex<Option<u32>>),
}

/// The simulated Cloud workspace, and the SCIM directory its administration moved to.
pub(crate) const WORKSPACE: &str = "acme";
const DIRECTORY_ID: &str = "3f1c2a9e-directory";
const SCIM_KEY: &str = "scim-directory-key";
const APP_PASSWORD: &str = "app-password";

/// A Lower-case email's Roster name: the generated directory's addresses are `name@example.com`,
/// and Cloud keys its accounts by Atlassian account, found by email.
pub(crate) fn name_of(email: &str) -> String {
    email.split('@').next().unwrap_or(email).to_lowercase()
}

/// A file source, the plugins, a store and one target.
pub(crate) struct Scenario {
    pub(crate) kind: Kind,
    pub(crate) rt: TestRuntime,
    pub(crate) store: Arc<Store>,
    /// Extra lines for `[target]`.
    pub(crate) target_extra: String,
}

impl Scenario {
    pub(crate) async fn new(kind: &str, d: &Directory) -> Scenario {
        let rt = TestRuntime::new(&[("file", "file.wasm"), ("normalize", "normalize.wasm")]).await;
        let store = Arc::new(Store::open(&rt.dir.path().join("roster.db"), Key::from_bytes([7; 32])).unwrap());
        let kind = match kind {
            "bitbucket-dc" => {
                let mut s = BbState::new();
                s.add_group(LICENSED, &[]);
                s.grant_group(LICENSED, Permission::LicensedUser);
                Kind::Dc(BitbucketSim::start(s).await)
            }
            "crowd-directory" => Kind::Crowd(Mutex::new(None)),
            "bitbucket-cloud" => {
                let mut s = CloudState::new(WORKSPACE, Administration::AdminHub);
                s.credentials("admin", APP_PASSWORD);
                s.scim_directory(DIRECTORY_ID, SCIM_KEY);
                s.add_group(LICENSED, Some("write"));
                // Only the licensing group gives Bitbucket access, as an organization admin sets it.
                s.product_access(&[LICENSED]);
                // Roster's own account, a workspace owner.
                let me = s.add_account("admin", "admin", "admin@example.com");
                s.join(&me, LICENSED);
                s.make_owner(&me);
                Kind::Cloud(CloudSim::start(s).await, Mutex::new(None))
            }
            _ => Kind::Memory(Arc::new(Mutex::new(MemWorld::with_licensing_group(LICENSED)))),
        };
        let s = Scenario {
            kind,
            rt,
            store,
            target_extra: String::new(),
        };
        std::fs::create_dir_all(s.rt.dir.path().join("idp")).unwrap();
        s.write(d);
        s
    }

    pub(crate) fn write(&self, d: &Directory) {
        d.write_json(&self.rt.dir.path().join("idp/directory.json")).unwrap();
    }

    pub(crate) fn kinds(&self) -> TargetKinds {
        let memory = match &self.kind {
            Kind::Memory(w) => w.clone(),
            Kind::Dc(_) | Kind::Crowd(_) | Kind::Cloud(..) => Arc::new(Mutex::new(MemWorld::default())),
        };
        TargetKinds::new([
            Arc::new(roster_target_bitbucket_dc::Kind) as Arc<dyn TargetKind>,
            Arc::new(roster_target_memory::Kind::new(memory)),
            Arc::new(roster_target_crowd_directory::Kind),
            Arc::new(roster_target_bitbucket_cloud::Kind),
        ])
    }

    pub(crate) fn config_text(&self) -> String {
        let files = self.rt.dir.path().join("idp").display().to_string();
        match &self.kind {
            Kind::Dc(sim) => {
                roster_sim::scenario::file_source_config(&sim.url(), &files, "directory.json", &self.target_extra)
            }
            Kind::Memory(_) => format!(
                "[[source]]\nid = \"hr\"\nplugin = \"file\"\nfiles = \"{files}\"\nsettings = {{ path = \"directory.json\" }}\n\n[[source.transforms]]\nplugin = \"normalize\"\n\n[target]\nkind = \"memory\"\naccount = \"admin\"\ndefault_groups = [\"{LICENSED}\"]\n{}\n",
                self.target_extra
            ),
            Kind::Crowd(seats) => {
                let seats = seats
                    .lock()
                    .unwrap()
                    .map(|n| format!("seats = {n}\n"))
                    .unwrap_or_default();
                format!(
                    "[[source]]\nid = \"hr\"\nplugin = \"file\"\nfiles = \"{files}\"\nsettings = {{ path = \"directory.json\" }}\n\n[[source.transforms]]\nplugin = \"normalize\"\n\n[target]\nkind = \"crowd-directory\"\nlicensed_groups = [\"{LICENSED}\"]\nadmin_groups = [\"admins\"]\n{seats}default_groups = [\"{LICENSED}\"]\n{}\n",
                    self.target_extra
                )
            }
            Kind::Cloud(sim, seats) => {
                let seats = seats
                    .lock()
                    .unwrap()
                    .map(|n| format!("seats = {n}\n"))
                    .unwrap_or_default();
                let url = sim.url();
                format!(
                    "[[source]]\nid = \"hr\"\nplugin = \"file\"\nfiles = \"{files}\"\nsettings = {{ path = \"directory.json\" }}\n\n[[source.transforms]]\nplugin = \"normalize\"\n\n[target]\nkind = \"bitbucket-cloud\"\nurl = \"{url}\"\nworkspace = \"{WORKSPACE}\"\nusername = \"admin\"\napp_password = {{ value = \"{APP_PASSWORD}\" }}\nlicensed_groups = [\"{LICENSED}\"]\nadmin_groups = [\"admins\"]\n{seats}default_groups = [\"{LICENSED}\"]\n{}\n\n[target.scim]\ndirectory_id = \"{DIRECTORY_ID}\"\napi_key = {{ value = \"{SCIM_KEY}\" }}\nurl = \"{url}\"\n",
                    self.target_extra
                )
            }
        }
    }

    pub(crate) fn runner(&self) -> Runner {
        let kinds = self.kinds();
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

    pub(crate) fn name(&self) -> &'static str {
        match self.kind {
            Kind::Dc(_) => "bitbucket-dc",
            Kind::Memory(_) => "memory",
            Kind::Crowd(_) => "crowd-directory",
            Kind::Cloud(..) => "bitbucket-cloud",
        }
    }

    /// The served Crowd directory, as the store holds it.
    pub(crate) fn served(&self) -> ServedState {
        self.store.served_state().unwrap()
    }

    /// Accounts: lower-case name → (display name, email).
    pub(crate) fn users(&self) -> BTreeMap<String, (String, String)> {
        match &self.kind {
            Kind::Dc(sim) => sim
                .lock()
                .users()
                .iter()
                .map(|(k, u)| (k.clone(), (u.display_name.clone(), u.email.clone())))
                .collect(),
            Kind::Memory(w) => w
                .lock()
                .unwrap()
                .users
                .iter()
                .map(|(k, u)| (k.clone(), (u.display_name.clone(), u.email.clone())))
                .collect(),
            Kind::Crowd(_) => self
                .served()
                .users
                .into_iter()
                .map(|u| (u.name.to_lowercase(), (u.display_name, u.email.unwrap_or_default())))
                .collect(),
            // The directory's people: an account deactivated through SCIM is still one.
            Kind::Cloud(sim, _) => sim
                .lock()
                .scim_users()
                .values()
                .map(|u| (name_of(&u.email), (u.display_name.clone(), u.email.clone())))
                .collect(),
        }
    }

    /// Groups and their members, besides the licensing group.
    pub(crate) fn groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut g = match &self.kind {
            Kind::Dc(sim) => sim.lock().groups().clone(),
            Kind::Memory(w) => w.lock().unwrap().groups.clone(),
            Kind::Crowd(_) => {
                let served = self.served();
                let mut g: BTreeMap<String, BTreeSet<String>> =
                    served.groups.into_iter().map(|g| (g, BTreeSet::new())).collect();
                for (group, user) in served.members {
                    g.entry(group).or_default().insert(user);
                }
                g
            }
            Kind::Cloud(sim, _) => sim
                .lock()
                .scim_groups()
                .into_iter()
                .map(|(g, members)| (g, members.iter().map(|m| name_of(m)).collect()))
                .collect(),
        };
        g.remove(LICENSED);
        g
    }

    /// Accounts that hold a licence now.
    pub(crate) fn licensed(&self) -> BTreeSet<String> {
        match &self.kind {
            Kind::Dc(sim) => sim.lock().licensed_users(),
            Kind::Memory(w) => {
                let w = w.lock().unwrap();
                w.groups[LICENSED]
                    .iter()
                    .filter(|u| w.users.get(*u).is_some_and(|x| x.active))
                    .cloned()
                    .collect()
            }
            Kind::Crowd(_) => {
                let served = self.served();
                let active: BTreeSet<String> = served
                    .users
                    .iter()
                    .filter(|u| u.active)
                    .map(|u| u.name.to_lowercase())
                    .collect();
                served
                    .members
                    .into_iter()
                    .filter(|(g, u)| g == LICENSED && active.contains(u))
                    .map(|(_, u)| u)
                    .collect()
            }
            Kind::Cloud(sim, _) => {
                let s = sim.lock();
                let users = s.scim_users();
                s.scim_groups()
                    .get(LICENSED)
                    .into_iter()
                    .flatten()
                    .filter(|u| users.get(*u).is_some_and(|x| x.active))
                    .map(|u| name_of(u))
                    .collect()
            }
        }
    }

    pub(crate) fn writes(&self) -> u64 {
        match &self.kind {
            Kind::Dc(sim) => sim.lock().writes,
            Kind::Memory(w) => w.lock().unwrap().writes,
            // Every change to the served directory appends to its change log: the token's
            // sequence number counts them.
            Kind::Crowd(_) => {
                let token = self.store.served_token().unwrap();
                token.rsplit_once('.').unwrap().1.parse().unwrap()
            }
            Kind::Cloud(sim, _) => sim.lock().writes(),
        }
    }

    pub(crate) fn add_preexisting_admin(&self, name: &str) {
        match &self.kind {
            Kind::Dc(sim) => {
                let mut s = sim.lock();
                s.add_user(name, name, &format!("{name}@example.com"), true);
                s.add_group("admins", &[name]);
                s.grant_group("admins", Permission::SysAdmin);
            }
            Kind::Memory(w) => {
                let mut w = w.lock().unwrap();
                w.add_user(name);
                w.groups.insert("admins".into(), BTreeSet::from([name.to_string()]));
                w.admin_groups.insert("admins".into());
            }
            // The directory's `admin_groups` names `admins` (see `config_text`).
            Kind::Crowd(_) => {
                for change in [
                    ServedChange::CreateUser {
                        user: name.into(),
                        display_name: name.into(),
                        email: format!("{name}@example.com"),
                        records: Vec::new(),
                    },
                    ServedChange::CreateGroup { group: "admins".into() },
                    ServedChange::AddMembers {
                        group: "admins".into(),
                        users: vec![name.into()],
                    },
                ] {
                    self.store.served_apply(&change).unwrap();
                }
            }
            // `admin_groups` names `admins` (see `config_text`).
            Kind::Cloud(sim, _) => {
                let mut s = sim.lock();
                let id = s.add_account(name, name, &format!("{name}@example.com"));
                s.add_group("admins", Some("admin"));
                s.join(&id, "admins");
            }
        }
    }

    pub(crate) fn set_seat_limit(&self, seats: u32) {
        match &self.kind {
            Kind::Dc(sim) => sim.lock().max_users = Some(seats),
            Kind::Memory(w) => w.lock().unwrap().seat_limit = Some(i64::from(seats)),
            Kind::Crowd(limit) | Kind::Cloud(_, limit) => *limit.lock().unwrap() = Some(seats),
        }
    }

    /// Asserts the target holds exactly what `d` says: every active person with their details,
    /// every group with its flattened members, the licensing group with every active person.
    pub(crate) fn assert_matches(&self, d: &Directory) {
        let who = self.name();
        let users = self.users();
        for u in d.users.iter().filter(|u| u.active) {
            let got = users
                .get(&u.username.to_lowercase())
                .unwrap_or_else(|| panic!("{who}: {} missing", u.username));
            assert_eq!(got, &(u.display_name.clone(), u.email.clone()), "{who}: {}", u.username);
        }
        let groups = self.groups();
        for (group, members) in d.expected_members() {
            assert_eq!(groups.get(&group), Some(&members), "{who}: members of {group}");
        }
        let active = d.active_usernames();
        let mut licensed = self.licensed();
        licensed.remove("admin"); // Roster's own account, an administrator
        assert_eq!(licensed, active, "{who}: licensed accounts");
    }
}

pub(crate) const KINDS: [&str; 4] = ["bitbucket-dc", "memory", "crowd-directory", "bitbucket-cloud"];

/// A first sync makes the target hold the directory exactly; a second one writes nothing
/// (rule 5). On the memory target every membership is its own call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_exact_and_a_second_one_writes_nothing() {
    for kind in KINDS {
        let d = Directory::generate(60, 8, 2);
        let s = Scenario::new(kind, &d).await;
        let r = s.sync().await;
        assert_eq!(r.state, RunState::Succeeded, "{kind}: {:?}", r.summary.warnings);
        s.assert_matches(&d);
        let adds = r.summary.planned["add-members"];
        match kind {
            // One bulk add per group (every group here has fewer than 500 members); on Cloud one
            // SCIM PATCH of a group's members.
            "bitbucket-dc" | "crowd-directory" | "bitbucket-cloud" => assert_eq!(adds, 8 + 1, "{kind}"),
            // One call per flattened membership, the licensing group's included.
            _ => assert_eq!(adds, d.flattened_count() + 60, "{kind}"),
        }
        let writes = s.writes();
        let again = s.sync().await;
        assert!(again.summary.planned.is_empty(), "{kind}: {:?}", again.summary.planned);
        assert_eq!(s.writes(), writes, "{kind}: the second run wrote");
    }
}

/// Someone leaves the IdP: their account is disabled (unlicensed), not deleted, and keeps its
/// other groups only as the policy says; when they come back, the same account returns with
/// its groups. Data Center has no disable call, so the plan lists the licensing groups to
/// leave; the memory target disables natively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaver_is_disabled_and_a_returner_comes_back_with_their_groups() {
    for kind in KINDS {
        let d = Directory::generate(30, 4, 2);
        let s = Scenario::new(kind, &d).await;
        s.sync().await;
        let leaver = d.users[3].username.to_lowercase();
        let mut gone = d.clone();
        gone.users.retain(|u| u.username.to_lowercase() != leaver);
        s.write(&gone);
        let r = s.sync().await;
        assert_eq!(r.state, RunState::Succeeded, "{kind}: {:?}", r.summary.warnings);
        assert_eq!(r.summary.planned["deactivate-user"], 1, "{kind}");
        assert!(s.users().contains_key(&leaver), "{kind}: the account is kept");
        assert!(!s.licensed().contains(&leaver), "{kind}: and holds no licence");

        s.write(&d);
        let back = s.sync().await;
        assert_eq!(back.state, RunState::Succeeded, "{kind}: {:?}", back.summary.warnings);
        assert_eq!(
            back.summary.planned.get("create-user"),
            None,
            "{kind}: the same account"
        );
        s.assert_matches(&d);
    }
}

/// A username changes in the IdP. Data Center and the Crowd directory rename the account (one
/// call, memberships intact). The memory target and Bitbucket Cloud (Atlassian accounts are
/// keyed by account id) cannot rename: the plan says so, and nothing is deleted or created in
/// its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_follows_the_targets_capabilities() {
    for kind in KINDS {
        let d = Directory::generate(20, 3, 1);
        let s = Scenario::new(kind, &d).await;
        s.sync().await;
        let old = d.users[5].username.to_lowercase();
        let mut renamed = d.clone();
        renamed.users[5].username = format!("{}-new", d.users[5].username);
        let new = renamed.users[5].username.to_lowercase();
        s.write(&renamed);
        let r = s.sync().await;
        assert_eq!(r.summary.planned.get("create-user"), None, "{kind}");
        assert_eq!(r.summary.planned.get("deactivate-user"), None, "{kind}");
        assert_eq!(r.summary.planned.get("delete-user"), None, "{kind}");
        match kind {
            "bitbucket-dc" | "crowd-directory" => {
                assert_eq!(r.summary.planned["rename-user"], 1, "{kind}");
                assert!(s.users().contains_key(&new) && !s.users().contains_key(&old));
                s.assert_matches(&renamed);
            }
            _ => {
                assert_eq!(r.summary.planned.get("rename-user"), None, "{kind}");
                let said = r.summary.collisions.iter().find(|c| c.subject.to_lowercase() == new);
                assert!(
                    said.is_some_and(|c| c.why.contains("cannot rename")),
                    "{kind}: {:?}",
                    r.summary.collisions
                );
                assert!(s.users().contains_key(&old) && !s.users().contains_key(&new));
                assert!(s.licensed().contains(&old), "{kind}: the account keeps its licence");
            }
        }
    }
}

/// A plan that deprovisions more than the threshold is held, writes nothing, and applies
/// exactly when approved (rule 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_removal_is_held_until_approved() {
    for kind in KINDS {
        let d = Directory::generate(40, 4, 1);
        let mut s = Scenario::new(kind, &d).await;
        s.target_extra = "threshold = { count = 5, percent = 50 }".into();
        s.sync().await;
        let mut fewer = d.clone();
        fewer.users.truncate(30);
        s.write(&fewer);
        let writes = s.writes();
        let r = s.sync().await;
        assert_eq!(r.state, RunState::Held, "{kind}: {:?}", r.summary.warnings);
        assert_eq!(s.writes(), writes, "{kind}: a held plan writes nothing");
        let runner = s.runner();
        let approved = crate::guard::approve(&runner, &r).await;
        assert_eq!(
            approved.state,
            RunState::Succeeded,
            "{kind}: {:?}",
            approved.summary.warnings
        );
        assert_eq!(
            approved.summary.applied.done,
            r.summary.planned.values().sum::<usize>(),
            "{kind}"
        );
        s.assert_matches(&fewer);
    }
}

/// A plan that would take the target over its licence is refused with the seat arithmetic and
/// writes nothing (rule 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_the_licence_is_refused() {
    for kind in KINDS {
        let d = Directory::generate(25, 2, 1);
        let s = Scenario::new(kind, &d).await;
        s.set_seat_limit(20);
        let r = s.sync().await;
        assert_eq!(r.state, RunState::Refused, "{kind}");
        let why = r
            .summary
            .guard
            .as_ref()
            .and_then(|g| g.refused.clone())
            .unwrap_or_default();
        assert!(why.contains("> 20 seats"), "{kind}: {why}");
        assert_eq!(s.writes(), 0, "{kind}");
    }
}

/// The target's administrators and Roster's own account are never changed (rule 4), even when
/// the IdP has a person of the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_are_never_changed() {
    for kind in KINDS {
        let d = Directory::generate(10, 2, 1);
        let s = Scenario::new(kind, &d).await;
        let admin = d.users[2].username.to_lowercase();
        s.add_preexisting_admin(&admin);
        let before = s.users()[&admin].clone();
        let r = s.sync().await;
        assert!(
            r.summary.skipped.iter().any(|x| x.subject.to_lowercase() == admin),
            "{kind}: {:?}",
            r.summary.skipped
        );
        assert_eq!(s.users()[&admin], before, "{kind}");
        assert_eq!(s.groups()["admins"], BTreeSet::from([admin.clone()]), "{kind}");
    }
}

/// An export that does not parse is an incomplete fetch: the run writes no deletion,
/// deactivation or removal (rule 1) and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_export_removes_nothing() {
    for kind in KINDS {
        let d = Directory::generate(20, 3, 1);
        let s = Scenario::new(kind, &d).await;
        s.sync().await;
        std::fs::write(s.rt.dir.path().join("idp/directory.json"), "{\"users\": [").unwrap();
        let writes = s.writes();
        let r = s.sync().await;
        assert_eq!(r.state, RunState::Failed, "{kind}");
        assert_eq!(s.writes(), writes, "{kind}");
        s.assert_matches(&d);
    }
}

/// A dry run plans and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing() {
    for kind in KINDS {
        let d = Directory::generate(15, 2, 1);
        let s = Scenario::new(kind, &d).await;
        let r = s.run(Writes::DryRun).await;
        assert_eq!(r.state, RunState::Planned, "{kind}");
        assert_eq!(r.summary.planned["create-user"], 15, "{kind}");
        assert_eq!(s.writes(), 0, "{kind}");
        assert!(
            s.users().keys().all(|u| u == "admin"),
            "{kind}: only Roster's own account"
        );
    }
}

/// A threshold that holds nothing a test about what follows the guard does: dropping a whole
/// group is held by the default one (its members lost), which `guard.rs` proves.
const LENIENT: &str = "threshold = { memberships_removed = 10000, people_losing_memberships = { count = 10000, percent = 100.0, floor = 10000 }, group_members_lost = { percent = 100.0, floor = 10000 } }";

/// A group no source has any more loses the members Roster manages on every target. The Crowd
/// directory, which holds only what the sources say (`Groups::DeleteUndesired`), then deletes
/// it; Data Center keeps it (`Groups::Keep`), as an administrator may have granted it
/// permissions there. Either way a second run plans nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_no_source_has_is_deleted_from_the_crowd_directory_and_kept_in_bitbucket() {
    const DROPPED: &str = "team-00003";
    for kind in ["bitbucket-dc", "crowd-directory"] {
        let d = Directory::generate(20, 4, 1);
        let mut s = Scenario::new(kind, &d).await;
        s.target_extra = LENIENT.into();
        let first = s.sync().await;
        assert_eq!(first.state, RunState::Succeeded, "{kind}: {:?}", first.summary.warnings);
        assert!(!s.groups()[DROPPED].is_empty(), "{kind}: the group has members to lose");

        let mut fewer = d.clone();
        fewer.groups.retain(|g| g.name != DROPPED);
        fewer
            .memberships
            .retain(|m| m.group != "g-00003" && m.member != "g-00003");
        s.write(&fewer);
        let r = s.sync().await;
        assert_eq!(r.state, RunState::Succeeded, "{kind}: {:?}", r.summary.warnings);
        s.assert_matches(&fewer);
        match kind {
            "crowd-directory" => {
                assert_eq!(
                    r.summary.planned.get("delete-group"),
                    Some(&1),
                    "{kind}: {:?}",
                    r.summary.planned
                );
                assert!(!s.groups().contains_key(DROPPED), "{kind}: the group is gone");
                assert!(
                    !s.served().groups.iter().any(|g| g == DROPPED),
                    "{kind}: and no application sees it"
                );
            }
            _ => {
                assert_eq!(r.summary.planned.get("delete-group"), None, "{kind}");
                assert_eq!(
                    s.groups().get(DROPPED),
                    Some(&BTreeSet::new()),
                    "{kind}: kept, without the members Roster removed"
                );
            }
        }
        let writes = s.writes();
        let again = s.sync().await;
        assert!(again.summary.planned.is_empty(), "{kind}: {:?}", again.summary.planned);
        assert_eq!(s.writes(), writes, "{kind}: the second run wrote");
    }
}

/// On the Crowd directory, a plan over the threshold is held, and what the applications reading
/// the directory see — its tables and its change log — does not change, not even in part,
/// until an administrator approves that very plan by its hash; a wrong hash applies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_plan_never_reaches_the_served_directory_until_approved_by_hash() {
    let d = Directory::generate(40, 4, 1);
    let mut s = Scenario::new("crowd-directory", &d).await;
    s.target_extra = "threshold = { count = 5, percent = 50 }".into();
    let first = s.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    let before = s.served();
    let token = s.store.served_token().unwrap();

    let mut fewer = d.clone();
    fewer.users.truncate(30);
    s.write(&fewer);
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Held, "{:?}", r.summary.warnings);
    assert_eq!(s.served(), before, "a held plan changes nothing served");
    let since = |token: &str| match s.store.served_events_since(token, 1000).unwrap() {
        roster_store::EventsSince::Events { events, .. } => events,
        roster_store::EventsSince::Expired => panic!("the token {token} expired"),
    };
    assert!(since(&token).is_empty(), "and tells no application of a change");

    let runner = s.runner();
    let plan = r.plan_id.as_deref().unwrap();
    let wrong = runner.approve(plan, "0123456789abcdef", "test", "", &Quiet).await;
    assert!(wrong.is_err(), "a plan is approved by its own hash only");
    assert_eq!(s.served(), before, "a refused approval changes nothing served");

    let approved = crate::guard::approve(&runner, &r).await;
    assert_eq!(approved.state, RunState::Succeeded, "{:?}", approved.summary.warnings);
    s.assert_matches(&fewer);
    let served = s.served();
    let inactive: BTreeSet<String> = served
        .users
        .iter()
        .filter(|u| !u.active)
        .map(|u| u.name.to_lowercase())
        .collect();
    let leavers: BTreeSet<String> = d.users[30..].iter().map(|u| u.username.to_lowercase()).collect();
    assert_eq!(inactive, leavers, "the leavers are deactivated, and no one else");
    let events = since(&token);
    let deactivated = events
        .iter()
        .filter(|e| {
            e.kind == roster_store::EventKind::User
                && e.op == roster_store::EventOp::Updated
                && e.user.as_ref().is_some_and(|u| !u.active)
        })
        .count();
    assert_eq!(deactivated, 10, "the change log tells the applications: {events:?}");
}

/// On the Crowd directory, a group no source has is deleted only when nobody stays in it: with a
/// member Roster may not remove (a protected account), the group stays, and the plan says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_group_stays_while_a_member_roster_may_not_remove_is_in_it() {
    const DROPPED: &str = "team-00003";
    let d = Directory::generate(20, 4, 1);
    let mut s = Scenario::new("crowd-directory", &d).await;
    s.target_extra = LENIENT.into();
    s.sync().await;
    let stays = s.groups()[DROPPED].iter().next().unwrap().clone();
    s.target_extra = format!("{LENIENT}\nprotected_users = [\"{stays}\"]");
    let mut fewer = d.clone();
    fewer.groups.retain(|g| g.name != DROPPED);
    fewer
        .memberships
        .retain(|m| m.group != "g-00003" && m.member != "g-00003");
    s.write(&fewer);

    let r = s.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    assert_eq!(r.summary.planned.get("delete-group"), None, "{:?}", r.summary.planned);
    assert_eq!(s.groups()[DROPPED], BTreeSet::from([stays.clone()]));
    let why = r.summary.skipped.iter().find(|x| x.subject == DROPPED);
    assert!(
        why.is_some_and(|x| x.why.contains("not deleted") && x.why.contains(&stays)),
        "{:?}",
        r.summary.skipped
    );
}

/// A single-user sync sees only the groups that concern its person, so a group of the sources
/// it does not see is no reason to delete it: it never deletes a group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_user_sync_never_deletes_a_group_on_the_crowd_directory() {
    const EMPTIED: &str = "team-00003";
    let d = Directory::generate(20, 4, 1);
    let mut s = Scenario::new("crowd-directory", &d).await;
    s.target_extra = LENIENT.into();
    s.sync().await;
    // The group stays in the source, without members: someone outside it is synced alone.
    let mut emptied = d.clone();
    emptied.memberships.retain(|m| m.group != "g-00003");
    s.write(&emptied);
    let outside = d
        .users
        .iter()
        .find(|u| !s.groups()[EMPTIED].contains(&u.username.to_lowercase()))
        .unwrap();
    let key = roster_directory::UserKey {
        id: Some(outside.id.clone()),
        username: None,
        source: None,
    };
    let opts = SyncOptions {
        actor: "test".into(),
        ..SyncOptions::default()
    };
    let r = s.runner().sync_user(&key, &opts, &Quiet).await.unwrap();
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    assert_eq!(r.summary.planned.get("delete-group"), None, "{:?}", r.summary.planned);
    assert!(s.groups().contains_key(EMPTIED));

    // A full run empties it, and keeps it: the sources still have it.
    let full = s.sync().await;
    assert_eq!(full.state, RunState::Succeeded, "{:?}", full.summary.warnings);
    assert_eq!(full.summary.planned.get("delete-group"), None);
    assert_eq!(s.groups()[EMPTIED], BTreeSet::new());
}

/// `GET /rest/usermanagement/1/user?username=…` as the application `bitbucket`: status and body.
async fn crowd_user(base: &str, password: &str, name: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{base}/rest/usermanagement/1/user?username={name}"))
        .basic_auth("bitbucket", Some(password))
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The whole way: a source, runs into the Crowd directory, and an application reading it
/// through `roster serve`'s Crowd endpoint. A leaver a run deactivates is inactive there at
/// once; the leavers of a held plan stay active there until the plan is approved by its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_reads_what_runs_applied_through_the_crowd_endpoint() {
    let d = Directory::generate(40, 4, 1);
    let mut s = Scenario::new("crowd-directory", &d).await;
    s.target_extra = "threshold = { count = 5, percent = 50 }".into();
    let first = s.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.warnings);
    let path = s.rt.dir.path().join("roster.toml");
    std::fs::write(&path, s.config_text()).unwrap();
    let service = roster_serve::service::Service::new(s.store.clone(), s.rt.runtime.clone(), &path, s.kinds()).unwrap();
    let (base, task) = crate::common::api::serve(service).await;
    let allowed = ["127.0.0.1".to_string(), "::1".to_string()];
    let (_, password) = s.store.crowd_app_create("bitbucket", &allowed, None, "test").unwrap();
    let name = |i: usize| d.users[i].username.clone();

    let (status, body) = crowd_user(&base, &password, &name(0)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<active>true</active>"), "{body}");

    let mut one_less = d.clone();
    one_less.users.truncate(39);
    s.write(&one_less);
    let r = s.sync().await;
    assert_eq!(r.state, RunState::Succeeded, "{:?}", r.summary.warnings);
    let (_, body) = crowd_user(&base, &password, &name(39)).await;
    assert!(
        body.contains("<active>false</active>"),
        "the leaver is inactive at once: {body}"
    );

    let mut fewer = d.clone();
    fewer.users.truncate(29);
    s.write(&fewer);
    let held = s.sync().await;
    assert_eq!(held.state, RunState::Held, "{:?}", held.summary.warnings);
    let (_, body) = crowd_user(&base, &password, &name(30)).await;
    assert!(
        body.contains("<active>true</active>"),
        "a held plan is not served: {body}"
    );
    let approved = crate::guard::approve(&s.runner(), &held).await;
    assert_eq!(approved.state, RunState::Succeeded, "{:?}", approved.summary.warnings);
    let (_, body) = crowd_user(&base, &password, &name(30)).await;
    assert!(body.contains("<active>false</active>"), "the approved plan is: {body}");
    task.abort();
}

/// One person's sync is judged against every application's licence too, counted on the whole
/// served directory: with Jira's seats all taken, syncing a newcomer who would take one more is
/// refused naming Jira, and nothing served changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_user_sync_cannot_take_a_crowd_application_over_its_licence() {
    let d = Directory::generate(13, 2, 1);
    let newcomer = d.users.iter().rev().find(|u| u.active).unwrap().clone();
    let mut without = d.clone();
    without.users.retain(|u| u.id != newcomer.id);
    without.memberships.retain(|m| m.member != newcomer.id);
    let s = Scenario::new("crowd-directory", &without).await;
    let n = without.active_usernames().len();
    let jira = roster_store::AppLicence {
        licensed_groups: vec![LICENSED.into()],
        seats: Some(n as i64),
    };
    s.store
        .crowd_app_create_licensed("jira", &["127.0.0.1".to_string()], None, &jira, "test")
        .unwrap();
    let first = s.sync().await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.summary.guard);
    assert_eq!(s.licensed().len(), n);

    s.write(&d);
    let served = s.served();
    let key = roster_directory::UserKey {
        id: Some(newcomer.id.clone()),
        username: None,
        source: None,
    };
    let opts = SyncOptions {
        actor: "test".into(),
        ..SyncOptions::default()
    };
    let r = s.runner().sync_user(&key, &opts, &Quiet).await.unwrap();
    assert_eq!(r.state, RunState::Refused, "{:?}", r.summary.guard);
    let why = r
        .summary
        .guard
        .as_ref()
        .and_then(|g| g.refused.clone())
        .unwrap_or_default();
    assert!(
        why.contains(&format!(
            "in the Crowd application 'jira': {n} in use + 1 = {} > {n} seats",
            n + 1
        )),
        "{why}"
    );
    assert_eq!(s.served(), served, "nothing served changes");
}
