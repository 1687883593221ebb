//! The engine's vocabulary: the desired state (what the sources say, merged), the target's
//! current state, and the operations of a plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::targets::bitbucket_dc::model::{BbUser, License};

/// An IdP record: (source id, immutable id).
pub type Record = (String, String);

/// One person as Bitbucket should see them, merged over the sources by priority.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// The desired state of the target.
#[derive(Debug, Default)]
pub struct Desired {
    /// Persons by lower-case username.
    pub persons: BTreeMap<String, Person>,
    /// Groups by name: members (lower-case usernames, shared with `persons`' keys).
    pub groups: BTreeMap<String, BTreeSet<Arc<str>>>,
    /// The target's default groups (every active person is in them).
    pub default_groups: BTreeSet<String>,
    /// Things worth telling the administrator (cycles, records skipped by transforms).
    pub warnings: Vec<String>,
    /// Users the sources still report but that could not be turned into a person this run (a
    /// transform's error, an empty or doubled username): their accounts are left as they are,
    /// never deprovisioned or stripped of groups for it.
    pub unresolved: std::collections::HashSet<Record>,
}

/// What Bitbucket has now.
#[derive(Debug, Default)]
pub struct TargetState {
    /// Users by lower-case name.
    pub users: HashMap<String, BbUser>,
    /// Every group name.
    pub groups: BTreeSet<String>,
    /// Members (lower-case, interned) of the groups that were read.
    pub members: HashMap<String, BTreeSet<Arc<str>>>,
    /// Global permission per group.
    pub group_perms: HashMap<String, String>,
    /// Global permission granted directly, per lower-case user.
    pub user_perms: HashMap<String, String>,
    /// The licence.
    pub license: License,
}

impl TargetState {
    /// Lower-case users who can log in now (a permission directly or through a group).
    pub fn licensed(&self) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = self.user_perms.keys().cloned().collect();
        for g in self.group_perms.keys() {
            if let Some(m) = self.members.get(g) {
                set.extend(m.iter().map(|u| u.to_string()));
            }
        }
        set.retain(|u| self.users.contains_key(u));
        set
    }
}

/// One write (or link) to the target.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Op {
    /// Create a group Roster will manage.
    CreateGroup {
        /// Group name.
        group: String,
    },
    /// Rename an account Roster manages (`admin/users/rename`).
    RenameUser {
        /// Current name.
        from: String,
        /// New name.
        to: String,
        /// The IdP records it belongs to.
        records: Vec<Record>,
    },
    /// Create an account in the internal directory.
    CreateUser {
        /// Username.
        user: String,
        /// Display name.
        display_name: String,
        /// Email.
        email: String,
        /// The IdP records it belongs to.
        records: Vec<Record>,
    },
    /// Take over an existing account (the target's policy allows it); no write.
    AdoptUser {
        /// Username.
        user: String,
        /// The IdP records it belongs to.
        records: Vec<Record>,
    },
    /// Change display name and email.
    UpdateUser {
        /// Username.
        user: String,
        /// New display name.
        display_name: String,
        /// New email.
        email: String,
        /// Old display name.
        old_display_name: String,
        /// Old email.
        old_email: Option<String>,
    },
    /// Add users to a group (one `add-users` call).
    AddMembers {
        /// Group.
        group: String,
        /// Usernames.
        users: Vec<String>,
    },
    /// Remove a user from a group.
    RemoveMember {
        /// Group.
        group: String,
        /// Username.
        user: String,
    },
    /// Disable: remove what licenses the account.
    Deactivate {
        /// Username.
        user: String,
        /// Groups to leave (those granting a permission, plus unmanaged ones unless kept).
        groups: Vec<String>,
        /// Revoke the permission granted directly.
        revoke_permission: bool,
        /// Also leave every other group except these protected ones (`keep_unmanaged_memberships = false`).
        leave_other_groups: Option<Vec<String>>,
    },
    /// Delete the account, and optionally erase it.
    DeleteUser {
        /// Username.
        user: String,
        /// Erase personal data after deleting.
        erase: bool,
    },
}

impl Op {
    /// The user or group the operation is about.
    pub fn subject(&self) -> &str {
        match self {
            Op::CreateGroup { group } | Op::AddMembers { group, .. } => group,
            Op::RenameUser { to, .. } => to,
            Op::CreateUser { user, .. }
            | Op::AdoptUser { user, .. }
            | Op::UpdateUser { user, .. }
            | Op::RemoveMember { user, .. }
            | Op::Deactivate { user, .. }
            | Op::DeleteUser { user, .. } => user,
        }
    }

    /// The kebab-case kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateGroup { .. } => "create-group",
            Op::RenameUser { .. } => "rename-user",
            Op::CreateUser { .. } => "create-user",
            Op::AdoptUser { .. } => "adopt-user",
            Op::UpdateUser { .. } => "update-user",
            Op::AddMembers { .. } => "add-members",
            Op::RemoveMember { .. } => "remove-member",
            Op::Deactivate { .. } => "deactivate-user",
            Op::DeleteUser { .. } => "delete-user",
        }
    }

    /// Apply stage: operations of one stage run concurrently, stages in order.
    pub fn stage(&self) -> u8 {
        match self {
            Op::CreateGroup { .. } => 0,
            Op::RenameUser { .. } => 1,
            Op::CreateUser { .. } | Op::AdoptUser { .. } => 2,
            Op::UpdateUser { .. } => 3,
            Op::AddMembers { .. } => 4,
            Op::RemoveMember { .. } => 5,
            Op::Deactivate { .. } | Op::DeleteUser { .. } => 6,
        }
    }

    /// True for operations that take an account away (counted by the threshold).
    pub fn is_deprovision(&self) -> bool {
        matches!(self, Op::Deactivate { .. } | Op::DeleteUser { .. })
    }
}

/// An operation with the reason it is in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PlannedOp {
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
    /// Why, in words.
    pub reason: String,
}

/// A user or group Roster wanted to touch but must not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// User or group.
    pub subject: String,
    /// Why it was left alone.
    pub why: String,
}
