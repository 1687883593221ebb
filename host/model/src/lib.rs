//! The vocabulary the directory and the engine share: an IdP record, a person merged from
//! records, and the desired state — what the sources say the target should hold, after
//! transforms and merging, before any target is consulted.
//!
//! Plain data: no I/O, no plugin, no target. The directory produces a [`Desired`] and keeps it
//! in the store; the engine reconciles a target with it.

pub mod run;
pub mod time;

pub use run::{Outcome, PlanState, RunMode, RunState, Trigger};

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde::Serialize;

/// An IdP record: (source id, immutable id).
pub type Record = (String, String);

/// One person as the target should see them, merged over the sources by priority.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Person {
    /// Username as the highest-priority record proposes it (compared case-insensitively).
    pub username: String,
    /// Email (the winning source's).
    pub email: Option<String>,
    /// Display name (the winning source's).
    pub display_name: Option<String>,
    /// Enabled in the winning source and not soft-deleted.
    pub active: bool,
    /// Every IdP record merged into this person, highest priority first.
    pub records: Vec<Record>,
}

/// Members of one group: lower-case usernames, shared with [`Desired::persons`]' keys so a
/// membership costs a pointer, not a copy.
pub type Members = BTreeSet<Arc<str>>;

/// The desired state: every person and every group with its flattened members.
#[derive(Debug, Default, Clone)]
pub struct Desired {
    /// Persons by lower-case username.
    pub persons: BTreeMap<String, Person>,
    /// Groups by name: members, nested groups flattened.
    pub groups: BTreeMap<String, Members>,
    /// Things worth telling the administrator (cycles, records skipped by transforms).
    pub warnings: Vec<String>,
    /// Users the sources still report but that could not be turned into a person this run (a
    /// transform's error, an empty or doubled username): their accounts are left as they are,
    /// never deprovisioned or stripped of groups for it.
    pub unresolved: HashSet<Record>,
}

impl Desired {
    /// The members of `group` (none when no source has it).
    pub fn members(&self, group: &str) -> impl Iterator<Item = &str> {
        self.groups.get(group).into_iter().flatten().map(|m| &**m)
    }

    /// Puts every active person in each of `groups` (a target's default groups: licensing).
    pub fn add_to_every_active(&mut self, groups: &[String]) {
        if groups.is_empty() {
            return;
        }
        // Reuse the keys member sets already hold, so the default groups add no copies.
        let mut shared: std::collections::HashMap<&str, Arc<str>> = std::collections::HashMap::new();
        for m in self.groups.values().flatten() {
            shared.entry(&**m).or_insert_with(|| m.clone());
        }
        let active: Vec<Arc<str>> = self
            .persons
            .iter()
            .filter(|(_, p)| p.active)
            .map(|(k, _)| shared.get(k.as_str()).cloned().unwrap_or_else(|| Arc::from(k.as_str())))
            .collect();
        for g in groups {
            self.groups.entry(g.clone()).or_default().extend(active.iter().cloned());
        }
    }
}

/// Where a source or target was defined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefinedIn {
    /// In roster.toml: read-only through the API.
    #[default]
    File,
    /// Created through the API and kept in the store.
    Api,
}

impl DefinedIn {
    /// `file` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            DefinedIn::File => "file",
            DefinedIn::Api => "api",
        }
    }
}

/// Progress of long stages (fetching, applying), for progress bars and the API.
pub trait Progress: Send + Sync {
    /// A stage starts; `total` is 0 when unknown.
    fn stage(&self, name: &str, total: u64);
    /// The stage's total became known.
    fn set_total(&self, total: u64);
    /// `n` more items done.
    fn advance(&self, n: u64);
    /// The stage ended.
    fn finish(&self);
    /// The run was asked to stop: no new page is fetched, no new operation applied.
    fn cancelled(&self) -> bool {
        false
    }
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn stage(&self, _: &str, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
