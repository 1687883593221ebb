//! What the connector remembers between `fetch` calls (where a fetch stands) and between runs
//! (the state the delta token carries). The SDK's driver stores both.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use roster_sdk::members::MemberIndex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::Paging;
use crate::model::Person;

/// What the next incremental fetch continues from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaState {
    /// Unix seconds: OneLogin's clock at the first answer of the last fetch, less a minute.
    /// The next fetch reads users with `updated_since` this.
    pub since: u64,
    /// The roles in scope, by number.
    pub roles: BTreeMap<i64, String>,
    /// The OneLogin groups, when they are read.
    pub groups: BTreeMap<i64, String>,
    /// Who held which role (in scope) at the last fetch.
    pub role_members: MemberIndex,
    /// Who was in which group at the last fetch.
    pub group_members: MemberIndex,
    /// With a `roles` filter: every user who holds one of those roles (the users in scope).
    pub scope: Option<BTreeSet<i64>>,
    /// The users the last full fetch listed (in scope or not): what an incremental fetch's
    /// changed users are weighed against.
    pub users: u64,
}

/// One group's members, as a journal entry.
type Entry = (String, Vec<i64>);

/// The memberships a full fetch has read so far, one entry per role (or per group and users
/// page), appended as listings finish. The log is shared between a cursor and the copies the
/// driver makes of it for each step, so a step does not copy half a million memberships; each
/// copy knows how much of the log is its own (`len`), and an append first drops what lies
/// beyond it: entries a failed step appended before the step was run again.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    log: Rc<RefCell<Vec<Entry>>>,
    len: usize,
}

impl Journal {
    /// Appends a group's members.
    pub fn append(&mut self, group: String, members: Vec<i64>) {
        if members.is_empty() {
            return;
        }
        let mut log = self.log.borrow_mut();
        log.truncate(self.len);
        log.push((group, members));
        self.len = log.len();
    }

    /// Every user in an entry whose group id starts with `prefix`.
    pub fn users(&self, prefix: &str) -> BTreeSet<i64> {
        self.log.borrow()[..self.len]
            .iter()
            .filter(|(g, _)| g.starts_with(prefix))
            .flat_map(|(_, m)| m.iter().copied())
            .collect()
    }

    /// The memberships of groups whose id starts with `prefix`, as an index.
    pub fn index(&self, prefix: &str) -> MemberIndex {
        let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let log = self.log.borrow();
        for (g, members) in log[..self.len].iter().filter(|(g, _)| g.starts_with(prefix)) {
            by_group
                .entry(g.as_str())
                .or_default()
                .extend(members.iter().map(i64::to_string));
        }
        let mut idx = MemberIndex::new();
        for (g, members) in by_group {
            idx.set_group(g, members);
        }
        idx
    }
}

impl Serialize for Journal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.log.borrow()[..self.len].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Journal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let log: Vec<Entry> = Vec::deserialize(d)?;
        Ok(Journal {
            len: log.len(),
            log: Rc::new(RefCell::new(log)),
        })
    }
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `GET /api/2/roles`, page by page.
    Roles {
        /// The listing.
        paging: Paging,
        /// The roles read so far.
        found: Vec<(i64, String)>,
    },
    /// Full fetch: each role's users.
    RoleUsers {
        /// Roles still to read (front: in progress).
        queue: VecDeque<i64>,
        /// The front role's listing, once started.
        paging: Option<Paging>,
        /// The front role's members read so far.
        members: Vec<i64>,
    },
    /// `GET /api/1/groups`, page by page.
    Groups {
        /// The listing.
        paging: Paging,
        /// The groups read so far.
        found: Vec<(i64, String)>,
    },
    /// `GET /api/2/users` (incremental: `updated_since`).
    Users {
        /// The listing.
        paging: Paging,
    },
    /// Incremental: each changed user's roles.
    UserRoles {
        /// Users still to read, by number.
        queue: VecDeque<i64>,
    },
    /// Apply what was read and build the next delta state.
    Finish,
}

/// A full or an incremental fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Everything in scope.
    Full,
    /// Changes since `prior`.
    Incremental {
        /// The state the last fetch left.
        prior: Rc<DeltaState>,
    },
}

/// Where a fetch stands, and what it has read that later steps need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    /// The step.
    pub step: Step,
    /// Full or incremental.
    pub mode: Mode,
    /// Unix seconds of OneLogin's `Date` at the fetch's first answer.
    pub clock: Option<u64>,
    /// The roles in scope (once the roles listing is read).
    pub roles: Rc<BTreeMap<i64, String>>,
    /// The OneLogin groups (once the groups listing is read).
    pub groups: Rc<BTreeMap<i64, String>>,
    /// Full fetch: memberships read so far.
    pub journal: Journal,
    /// Full fetch with a `roles` filter: the users who hold one of the roles.
    pub scope: Option<Rc<BTreeSet<i64>>>,
    /// Incremental: the users changed since the last fetch.
    pub changed: Vec<Person>,
    /// Incremental: each changed user's role numbers (`None`: deleted meanwhile), by user.
    pub roles_of: Vec<(i64, Option<Vec<i64>>)>,
    /// Users without a username so far (reported once, at the end).
    pub nameless: u64,
    /// Full fetch: the users listed so far.
    pub listed: u64,
}

impl Cursor {
    /// A fetch in `mode` starting at `step`.
    pub fn new(mode: Mode, step: Step) -> Self {
        Cursor {
            step,
            mode,
            clock: None,
            roles: Rc::default(),
            groups: Rc::default(),
            journal: Journal::default(),
            scope: None,
            changed: Vec::new(),
            roles_of: Vec::new(),
            nameless: 0,
            listed: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_s_entries_are_dropped_when_it_runs_again() {
        let mut at = Journal::default();
        at.append("role:1".into(), vec![1, 2]);
        // The driver gives the step a copy; the step appends, then fails.
        let mut attempt = at.clone();
        attempt.append("role:2".into(), vec![3]);
        drop(attempt);
        // Serialising the cursor the driver kept holds its own entries only.
        assert_eq!(serde_json::to_string(&at).unwrap(), r#"[["role:1",[1,2]]]"#);
        let mut retry = at.clone();
        retry.append("role:2".into(), vec![4]);
        assert_eq!(retry.users("role:"), BTreeSet::from([1, 2, 4]));
        let back: Journal = serde_json::from_str(&serde_json::to_string(&retry).unwrap()).unwrap();
        let idx = back.index("role:");
        assert_eq!(idx.members("role:2"), vec!["4"]);
        assert_eq!(idx.len(), 3);
        assert!(back.index("group:").is_empty());
    }
}
