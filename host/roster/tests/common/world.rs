//! A complete test world: the Bitbucket simulator, a file source with a generated directory,
//! the plugins, a store, and an engine built from a configuration written like an admin would.

use std::path::PathBuf;
use std::sync::Arc;

use roster_model::Quiet;
use roster_serve::{RunReport, SyncOptions};
use roster_sim::bitbucket::{BbState, BitbucketSim, Permission};
use roster_sim::directory::Directory;
use roster_store::Store;

use super::{Configured, TestRuntime};

pub struct World {
    pub sim: BitbucketSim,
    pub rt: TestRuntime,
    pub store: Arc<Store>,
    /// Extra lines for the `[target]` table.
    pub target_extra: String,
    /// The file the source reads (directory.json or .jsonl) in `files_dir`.
    pub file_name: String,
}

/// A simulator with a licensed default group and an unlimited licence.
pub fn bitbucket() -> BbState {
    let mut s = BbState::new();
    s.add_group("bitbucket-users", &[]);
    s.grant_group("bitbucket-users", Permission::LicensedUser);
    s
}

impl Configured for World {
    fn config_text(&self) -> String {
        let files = self.files_dir().display().to_string();
        roster_sim::scenario::file_source_config(&self.sim.url(), &files, &self.file_name, &self.target_extra)
    }

    fn test_runtime(&self) -> &TestRuntime {
        &self.rt
    }

    fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn bitbucket(&self) -> &BitbucketSim {
        &self.sim
    }
}

impl World {
    pub async fn new(directory: &Directory, state: BbState) -> World {
        let rt = TestRuntime::new(&[("file", "file.wasm"), ("normalize", "normalize.wasm")]).await;
        let sim = BitbucketSim::start(state).await;
        let store = super::store_in(&rt, 9);
        let w = World {
            sim,
            rt,
            store,
            target_extra: String::new(),
            file_name: "directory.json".into(),
        };
        std::fs::create_dir_all(w.files_dir()).unwrap();
        w.write(directory);
        w
    }

    pub fn files_dir(&self) -> PathBuf {
        self.rt.dir.path().join("idp")
    }

    /// Replaces the source's export (what the IdP says now).
    pub fn write(&self, d: &Directory) {
        let path = self.files_dir().join(&self.file_name);
        if self.file_name.ends_with(".jsonl") {
            d.write_jsonl(&path).unwrap()
        } else {
            d.write_json(&path).unwrap()
        }
    }

    pub async fn run(&self, writes: roster_engine::Writes) -> RunReport {
        let opts = SyncOptions {
            writes,
            trigger: roster_model::Trigger::Cli,
            actor: "test".into(),
            ..SyncOptions::default()
        };
        self.runner().sync(&opts, &Quiet).await.unwrap()
    }

    /// Groups that have `user` as a member, sorted.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        groups_of(&self.sim, user)
    }

    /// Asserts Bitbucket holds exactly what `d` says (users, details, flattened memberships),
    /// besides the accounts and groups listed as untouched.
    pub fn assert_matches(&self, d: &Directory) {
        assert_bitbucket_matches(&self.sim, d)
    }
}

/// Groups of the simulated Bitbucket that have `user` as a member, sorted.
pub fn groups_of(sim: &BitbucketSim, user: &str) -> Vec<String> {
    sim.lock()
        .groups()
        .iter()
        .filter(|(_, m)| m.contains(user))
        .map(|(g, _)| g.clone())
        .collect()
}

/// Asserts the simulated Bitbucket holds exactly what `d` says: every active user with its
/// details, every group with its flattened members, and the licensed default group.
pub fn assert_bitbucket_matches(sim: &BitbucketSim, d: &Directory) {
    let s = sim.lock();
    for u in d.users.iter().filter(|u| u.active) {
        let got = s
            .users()
            .get(&u.username.to_lowercase())
            .unwrap_or_else(|| panic!("{} missing from Bitbucket", u.username));
        assert_eq!(
            (got.display_name.as_str(), got.email.as_str()),
            (u.display_name.as_str(), u.email.as_str()),
            "{}",
            u.username
        );
    }
    for (group, members) in d.expected_members() {
        let got = s
            .groups()
            .get(&group)
            .unwrap_or_else(|| panic!("group {group} missing"));
        assert_eq!(got, &members, "members of {group}");
    }
    let licensed = s.groups().get("bitbucket-users").cloned().unwrap_or_default();
    let active = d.active_usernames();
    assert_eq!(licensed, active, "default group members");
}

/// A source's settings as an administrator writes them into `roster.toml`, syncing into the
/// Bitbucket at `bb_url` with `target_extra` added to `[target]`.
pub trait SourceConfig {
    /// The whole configuration's text.
    fn config(&self, bb_url: &str, target_extra: &str) -> String;
}

/// An identity provider's test world: its simulator (or server), the Bitbucket simulator, the
/// plugins, a store, and the source as configured — what every connector's tests share.
pub struct SourceWorld<I, S> {
    /// The identity provider the source reads.
    pub idp: I,
    pub bb: BitbucketSim,
    pub rt: TestRuntime,
    pub store: Arc<Store>,
    /// The source as configured; tests change its settings between runs.
    pub source: S,
    /// Extra lines for `[target]`.
    pub target_extra: String,
}

impl<I, S: SourceConfig> Configured for SourceWorld<I, S> {
    fn config_text(&self) -> String {
        self.source.config(&self.bb.url(), &self.target_extra)
    }

    fn test_runtime(&self) -> &TestRuntime {
        &self.rt
    }

    fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn bitbucket(&self) -> &BitbucketSim {
        &self.bb
    }
}

impl<I, S> SourceWorld<I, S> {
    /// A world over `idp` with these plugin files (`("okta", "okta.wasm")`), a Bitbucket holding
    /// `bb`, a store sealed with a key made of `seed`, and the source `source` makes for `idp`
    /// (given the world's folder, for files the source reads).
    pub async fn assemble(
        plugins: &[(&str, &str)],
        idp: I,
        bb: BbState,
        seed: u8,
        source: impl FnOnce(&I, &std::path::Path) -> S,
    ) -> SourceWorld<I, S> {
        let rt = TestRuntime::new(plugins).await;
        let bb = BitbucketSim::start(bb).await;
        let store = super::store_in(&rt, seed);
        SourceWorld {
            source: source(&idp, rt.dir.path()),
            idp,
            bb,
            rt,
            store,
            target_extra: String::new(),
        }
    }
}
