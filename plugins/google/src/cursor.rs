//! What the connector remembers between `fetch` calls (where the fetch stands) and between
//! runs (the state the delta token carries). The SDK's driver stores both.

use std::collections::VecDeque;

use roster_sdk::driver::Shared;
use roster_sdk::members::MemberIndex;
use roster_sdk::snapshot::Snapshot;
use serde::{Deserialize, Serialize};

use crate::model::GoogleGroup;

/// What the next incremental fetch compares its listings with: the Directory API has no change
/// feed, so an incremental fetch lists users and groups again and reads members only of the
/// groups whose listing changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeltaState {
    /// Users as last listed (digest of their record).
    pub users: Snapshot,
    /// Groups as last listed (digest of name, address, member count and ETag).
    pub groups: Snapshot,
    /// Each group's user members as last read.
    pub index: MemberIndex,
    /// Each group's nested groups as last read (`nested_groups = "roster"`).
    pub nested: MemberIndex,
}

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Everything is emitted.
    Full,
    /// Only what differs from the state is emitted, with removals.
    Incremental,
}

/// A group whose members are still to be read; its record is emitted with its last page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The group.
    pub group: GoogleGroup,
    /// Whether its record is emitted (new or changed, or a full fetch).
    pub emit: bool,
    /// Whether the last fetch listed it (so a deletion now is a removal).
    pub known: bool,
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// The users listing.
    Users {
        /// This page's token (`None`: the first page).
        token: Option<String>,
    },
    /// The groups listing.
    Groups {
        /// This page's token.
        token: Option<String>,
    },
    /// The members of the groups on one groups page.
    Members {
        /// Groups still to read (front: in progress).
        pending: VecDeque<Pending>,
        /// The front group's next members page.
        token: Option<String>,
        /// The front group's user members read so far.
        users: Vec<String>,
        /// The front group's nested groups read so far.
        groups: Vec<String>,
        /// The groups listing's next page, after these.
        then: Option<String>,
    },
    /// Incremental: the groups gone since the last fetch.
    Finish,
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    /// The step.
    pub step: Step,
    /// Full or incremental.
    pub mode: Mode,
    /// The state being built, shared by the driver's copies of the cursor.
    pub state: Shared<DeltaState>,
}
