//! What plugins exchange with the host, as plain Rust: the runtime's public API speaks these,
//! whatever WIT version a plugin was built against. Each `bindings::v*` module converts its
//! generated types to and from these, so a WIT change stays inside the runtime.

/// A user as an identity provider reports it (and as a transform leaves it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The IdP's immutable id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Enabled in the IdP.
    pub active: bool,
    /// Further attributes, in order; a name may repeat (multi-valued).
    pub attributes: Vec<(String, String)>,
}

/// A group as an identity provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The IdP's immutable id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Further attributes.
    pub attributes: Vec<(String, String)>,
}

/// A member (user or group) of a group, by IdP ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group_id: String,
    /// The member.
    pub member_id: String,
    /// Whether the member is a group (nesting).
    pub member_is_group: bool,
}

/// How a record left the IdP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalKind {
    /// Soft-deleted: it may come back (Entra's `@removed: changed`).
    SoftDeleted,
    /// Gone for good.
    Deleted,
}

/// A record an incremental fetch reports as removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The IdP's id.
    pub id: String,
    /// How.
    pub kind: RemovalKind,
}

/// One page of a connector's fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Users.
    pub users: Vec<User>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Memberships.
    pub memberships: Vec<Membership>,
    /// Users removed (incremental).
    pub removed_users: Vec<Removal>,
    /// Groups removed (incremental).
    pub removed_groups: Vec<Removal>,
    /// Memberships removed (incremental).
    pub removed_memberships: Vec<Membership>,
    /// The cursor of the next page; `None`: the fetch is complete.
    pub next: Option<String>,
    /// The token for the next incremental fetch (on the last page).
    pub delta_token: Option<String>,
    /// How many objects the whole fetch will read, when the connector knows.
    pub total_hint: Option<u64>,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Name it registers under.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// One line for administrators.
    pub description: String,
    /// JSON Schema of its settings.
    pub settings_schema: String,
}

/// What a transform made of one user (record-by-record answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOutcome {
    /// The user kept; `None`: filtered out.
    pub user: Option<User>,
    /// Which rule decided.
    pub reason: Option<String>,
    /// Why the user could not be evaluated.
    pub error: Option<String>,
}

/// What a transform made of one group: none (filtered), one, or several (fan-out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOutcome {
    /// The groups it becomes.
    pub groups: Vec<Group>,
    /// Which rule decided.
    pub reason: Option<String>,
    /// Why the group could not be evaluated.
    pub error: Option<String>,
}

/// Where a person's password is checked, as a connector that offers `credentials` (WIT 0.1.2)
/// answers; the host checks it there ([`crate::SourceAccess::verify_password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// A simple bind as the person's DN on the source's LDAP server.
    LdapBind(crate::ldap::BindAs),
}
