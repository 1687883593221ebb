//! What the connector remembers between `fetch` calls (where a full fetch stands) and between
//! runs (the state the delta token carries). The SDK's driver stores both.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::rest::Members;

/// Where the next incremental fetch starts, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Events {
    /// Crowd's event token, taken before the listing so changes made during it are replayed.
    Token {
        /// `newEventToken`.
        token: String,
    },
    /// `use_incremental_sync` was off.
    Off,
    /// The server said `incrementalSynchronisationAvailable="false"` (or none).
    Unavailable,
    /// The server has no `/event` resource (404).
    Unsupported,
    /// `GET /event` failed at the full fetch (logged and ignored, as Atlassian's directory
    /// does): the next fetch reads in full again.
    Failed {
        /// The server's answer.
        why: String,
    },
}

impl Events {
    /// Why an incremental fetch cannot continue from here, in the run's words.
    pub fn why_not(&self) -> Option<String> {
        match self {
            Events::Token { .. } => None,
            Events::Off => Some("use_incremental_sync is off".into()),
            Events::Unavailable => Some(
                "the server says incremental synchronisation is not available (incrementalSynchronisationAvailable=false)".into(),
            ),
            Events::Unsupported => Some(
                "the server has no event resource (GET /event answered 404): incremental synchronisation is not supported".into(),
            ),
            Events::Failed { why } => Some(format!(
                "the last full fetch could not take an event token ({why})"
            )),
        }
    }
}

/// What the next incremental fetch continues from: the event token, and what turns the names
/// events carry into Roster's ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaState {
    /// The event token, or why there is none.
    pub events: Events,
    /// Lower-case user name → id, for every user Roster has seen: a membership event names
    /// its user, and only a user created outside Roster's view costs a `GET /user`.
    pub keys: BTreeMap<String, String>,
    /// Every group id (lower-case name): an UPDATED membership event replaces a user's or
    /// group's memberships in all of them.
    pub groups: BTreeSet<String>,
}

/// A full fetch's step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `POST /search?entity-type=user` from this start index.
    Users {
        /// `start-index`.
        start: u64,
    },
    /// `POST /search?entity-type=group` from this start index.
    Groups {
        /// `start-index`.
        start: u64,
    },
    /// `GET /group/membership`: every group's direct members in one document.
    Memberships,
    /// The server has no membership document: each group's direct members, one listing at a time.
    PerGroup {
        /// The group (id) being read; groups are read in id order.
        group: String,
        /// Its users or its child groups.
        members: Members,
        /// `start-index`.
        start: u64,
        /// The members (lower-case names) the previous page of this listing read: pages
        /// overlap, and these are not read twice.
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        last: BTreeSet<String>,
    },
}

/// Where a full fetch stands: the step, the event token taken at its start, and the users and
/// groups listed so far (memberships name them; those naming anything else are skipped).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    /// The step.
    pub step: Step,
    /// The event token (or why there is none), taken before the listing.
    pub events: Events,
    /// Every user listed: lower-case name → id.
    pub users: BTreeMap<String, String>,
    /// Every group listed: id → name as the server spells it.
    pub groups: BTreeMap<String, String>,
}

impl Cursor {
    /// The delta state a completed full fetch leaves: none when the administrator turned
    /// incremental synchronisation off (every run reads in full by choice, with nothing to say
    /// about it); a state saying why otherwise, so the next incremental run says it.
    pub fn into_state(self) -> Option<DeltaState> {
        if self.events == Events::Off {
            return None;
        }
        Some(DeltaState {
            events: self.events,
            keys: self.users,
            groups: self.groups.into_keys().collect(),
        })
    }
}
