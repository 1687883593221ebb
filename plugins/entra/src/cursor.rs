//! What the connector remembers between `fetch` calls (where the fetch stands) and between
//! runs (the state the delta token carries). The SDK's driver stores both; this module only
//! says what they hold.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::graph::Object;

/// What the next incremental fetch continues from: where Graph's users and groups delta rounds
/// continue, and what the scope looked like when they were taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeltaState {
    /// `/users/delta` deltaLink.
    pub users: Option<String>,
    /// `/groups/delta` deltaLink (members tracked).
    pub groups: Option<String>,
    /// Every group id in scope: the tenant's (as `group_filter` admits them), or for groups and
    /// app scopes the listed or assigned ones and those nested below. A group that enters the
    /// scope has its members read in full.
    #[serde(default)]
    pub tree: BTreeSet<String>,
    /// Groups and app scopes: every user id in scope.
    #[serde(default)]
    pub members: BTreeSet<String>,
    /// App scope: users assigned to the application directly.
    #[serde(default)]
    pub direct_users: BTreeSet<String>,
    /// App scope: every assigned principal id, to notice assignment changes.
    #[serde(default)]
    pub assigned: BTreeSet<String>,
}

/// A group whose members are still to be listed; its record is emitted with its last members
/// page, so progress (users + groups) advances through the members phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingGroup {
    /// Object id.
    pub id: String,
    /// The group as listed (tenant scope); scoped fetches emit records earlier.
    pub record: Option<Object>,
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Full fetch: take the "sync from now" delta links, then list.
    Start,
    /// Groups and app scopes: resolve the listed groups or the application's assignments.
    Roots,
    /// App scope: users assigned directly, fetched by id.
    DirectUsers {
        /// Ids still to fetch.
        ids: VecDeque<String>,
    },
    /// Groups and app scopes: the transitive members of each root.
    Transitive {
        /// Roots still to expand (front: in progress).
        roots: VecDeque<String>,
        /// Next page of the front root's listing.
        url: Option<String>,
    },
    /// Tenant scope: the users listing.
    Users {
        /// Next page.
        url: String,
    },
    /// Tenant scope: the groups listing.
    Groups {
        /// Next page.
        url: String,
    },
    /// Each pending group's direct members.
    Members {
        /// Groups still to list (front: in progress).
        pending: VecDeque<PendingGroup>,
        /// Next page of the front group's members.
        url: Option<String>,
        /// Tenant scope: the groups listing's next page, after these.
        then: Option<String>,
    },
    /// Incremental: the users delta round.
    DeltaUsers {
        /// Next page (deltaLink or nextLink).
        url: String,
        /// Where the groups round starts afterwards.
        groups: String,
    },
    /// Incremental: the groups delta round.
    DeltaGroups {
        /// Next page.
        url: String,
    },
    /// Complete.
    Done,
}

impl Step {
    /// A step of an incremental fetch (the delta rounds), as opposed to a full one.
    pub fn is_incremental(&self) -> bool {
        matches!(self, Step::DeltaUsers { .. } | Step::DeltaGroups { .. })
    }
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    /// The step.
    pub step: Step,
    /// The delta state being built: the next round's links, the scope.
    pub token: DeltaState,
}
