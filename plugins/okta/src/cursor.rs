//! What the connector remembers between `fetch` calls (where the fetch stands) and between
//! runs (the state the delta token carries). The SDK's driver stores both.

use std::collections::{BTreeSet, VecDeque};

use roster_sdk::driver::Shared;
use roster_sdk::members::MemberIndex;
use serde::{Deserialize, Serialize};

use crate::model::OktaGroup;

/// What the next incremental fetch continues from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeltaState {
    /// Okta's clock (its `Date` header) when the last fetch began, minus a minute of overlap:
    /// changes since then are read, whatever the host's clock says.
    pub since: String,
    /// Every group's members as last read, so a re-read group reports who left.
    pub index: MemberIndex,
    /// Groups and app scopes: the users in scope.
    #[serde(default)]
    pub users: BTreeSet<String>,
    /// Groups and app scopes: the groups in scope.
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// A group whose record is still to be emitted (with its last members page, so a group deleted
/// in between is never emitted without its members).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "kebab-case")]
pub enum Record {
    /// Read already; emitted when its members are.
    Listed {
        /// The group.
        group: OktaGroup,
    },
    /// Emitted already (the groups scope emits them as it resolves them).
    Emitted,
    /// Known by id only (an application's group assignment): read it first.
    Lookup,
}

/// A group whose members are still to be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingGroup {
    /// `00g…`.
    pub id: String,
    /// Its record.
    pub record: Record,
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// The users listing (org scope; the groups scope's changed users).
    Users {
        /// This page.
        url: String,
    },
    /// The groups listing (org scope).
    Groups {
        /// This page.
        url: String,
    },
    /// Groups scope: the listed groups, one per step.
    Resolve {
        /// Entries of `groups` still to resolve.
        left: VecDeque<String>,
        /// Groups whose members are to be read.
        pending: VecDeque<PendingGroup>,
    },
    /// App scope: the application itself.
    App,
    /// App scope: the users assigned (with `expand=user`).
    AppUsers {
        /// This page.
        url: String,
    },
    /// App scope: the groups assigned.
    AppGroups {
        /// This page.
        url: String,
        /// Groups found so far.
        pending: VecDeque<PendingGroup>,
    },
    /// Each pending group's members.
    Members {
        /// Groups still to read (front: in progress).
        pending: VecDeque<PendingGroup>,
        /// The front group's next members page.
        url: Option<String>,
        /// The front group's members read so far.
        got: Vec<String>,
        /// Org scope: the groups listing's next page, after these.
        then: Option<String>,
    },
    /// Incremental: who left the listed groups (groups scope), who and what left the
    /// assignments (app scope).
    Finish,
}

/// Okta's clock at the first answer of the fetch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k", rename_all = "kebab-case")]
pub enum Clock {
    /// No answer yet.
    Unread,
    /// The first answer's `Date`, minus the overlap, as Okta writes timestamps.
    At {
        /// `2026-12-03T21:29:00.000Z`.
        since: String,
    },
    /// The first answer had no usable `Date`: the next fetch is a full one.
    Missing,
}

/// What an incremental fetch of the app scope diffs against.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Before {
    /// Users assigned last time.
    pub users: BTreeSet<String>,
    /// Groups assigned last time.
    pub groups: BTreeSet<String>,
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    /// The step.
    pub step: Step,
    /// Incremental: the changes since this time; `None` for a full fetch.
    pub since: Option<String>,
    /// Where the next incremental fetch starts.
    pub clock: Clock,
    /// The state being built (its `since` is filled in at the end), shared by the driver's
    /// copies of the cursor.
    pub state: Shared<DeltaState>,
    /// App scope, incremental: the last fetch's assignments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Before>,
}
