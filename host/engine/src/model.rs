//! The engine's vocabulary: the operations of a plan, each with its reason, and what a plan
//! left alone on purpose.

use serde::Serialize;

pub use roster_model::Record;

/// One write (or link) to the target.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
        /// The IdP records it belongs to, each `[source, id]`.
        #[schema(value_type = Vec<Vec<String>>)]
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
        /// The IdP records it belongs to, each `[source, id]`.
        #[schema(value_type = Vec<Vec<String>>)]
        records: Vec<Record>,
    },
    /// Take over an existing account (the target's policy allows it); no write.
    AdoptUser {
        /// Username.
        user: String,
        /// The IdP records it belongs to, each `[source, id]`.
        #[schema(value_type = Vec<Vec<String>>)]
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
    /// Disable the account: remove what licenses it (targets without a disable call), or
    /// disable it (targets with one).
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
    /// Delete a group Roster manages that no source has any more, once its members are removed
    /// (targets whose capabilities say so).
    DeleteGroup {
        /// Group.
        group: String,
    },
}

impl Op {
    /// The user or group the operation is about.
    pub fn subject(&self) -> &str {
        match self {
            Op::CreateGroup { group } | Op::AddMembers { group, .. } | Op::DeleteGroup { group } => group,
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
            Op::DeleteGroup { .. } => "delete-group",
        }
    }

    /// Apply stage: stages in order; the adding ones (0–4) overlap, each operation waiting only
    /// for those it needs (see `apply`), the taking-away ones (5–7) each after the one before.
    pub fn stage(&self) -> u8 {
        match self {
            Op::CreateGroup { .. } => 0,
            Op::RenameUser { .. } => 1,
            Op::CreateUser { .. } | Op::AdoptUser { .. } => 2,
            Op::UpdateUser { .. } => 3,
            Op::AddMembers { .. } => 4,
            Op::RemoveMember { .. } => 5,
            Op::Deactivate { .. } | Op::DeleteUser { .. } => 6,
            Op::DeleteGroup { .. } => 7,
        }
    }

    /// Calls the operation is expected to make against a target that meters them (what a
    /// plan's ETA is computed from): one, but a deactivation makes one per group it leaves —
    /// its `groups`, plus `other_groups`, the account's other groups `leave_other_groups` does
    /// not keep — and one to revoke a permission granted directly.
    pub fn estimated_calls(&self, other_groups: usize) -> u64 {
        match self {
            Op::Deactivate {
                groups,
                revoke_permission,
                leave_other_groups,
                ..
            } => {
                let leaving = if leave_other_groups.is_some() { other_groups } else { 0 };
                let calls = groups.len() + leaving + usize::from(*revoke_permission);
                calls.max(1) as u64
            }
            _ => 1,
        }
    }

    /// True for operations that take an account away (counted by the threshold).
    pub fn is_deprovision(&self) -> bool {
        matches!(self, Op::Deactivate { .. } | Op::DeleteUser { .. })
    }

    /// True for operations that take something away — an account, a membership or a group:
    /// withheld while a source's fetch is incomplete (rule 1).
    pub fn takes_away(&self) -> bool {
        self.is_deprovision() || matches!(self, Op::RemoveMember { .. } | Op::DeleteGroup { .. })
    }
}

/// An operation with the reason it is in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PlannedOp {
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
    /// Why, in words.
    pub reason: String,
}

/// A user or group Roster wanted to touch but must not.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Skipped {
    /// User or group.
    pub subject: String,
    /// Why it was left alone.
    pub why: String,
}
