//! The seam between the engine and a target. A target is one system Roster writes to; its
//! implementation owns everything vendor-specific — its API, what licenses an account, who is
//! an administrator, how an account is disabled, how many members one call may add — and tells
//! the engine through [`TargetState`] and [`Capabilities`]. The engine plans in those terms
//! only, so it knows no vendor.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::model::Op;

/// One account in the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    /// Its name as the target spells it.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Email.
    pub email: Option<String>,
    /// The directory it lives in, when the target has several ("Bitbucket Internal Directory").
    pub directory: Option<String>,
    /// Whether its details can be changed (false for read-only directories).
    pub mutable: bool,
    /// Enabled (targets that disable accounts themselves; always true for the others). A
    /// disabled account holds no licence.
    pub active: bool,
    /// When the person last signed in to the target (ms since the epoch), when it says: what
    /// the `inactive` policy judges. `None`: never, or the target does not tell.
    pub last_sign_in_ms: Option<i64>,
}

/// Seats: how many accounts the licence counts now, and how many it allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Seats {
    /// Counted now, as the target reports it (`None`: the target does not say).
    pub in_use: Option<i64>,
    /// The limit (`None`: unlimited).
    pub limit: Option<i64>,
}

/// What the target holds now, in the engine's terms.
#[derive(Debug, Default)]
pub struct TargetState {
    /// Accounts by lower-case name.
    pub users: HashMap<String, Account>,
    /// Every group name.
    pub groups: BTreeSet<String>,
    /// Members (lower-case, interned) of the groups that were read.
    pub members: HashMap<String, BTreeSet<Arc<str>>>,
    /// Groups whose members hold a licence (Data Center: groups with a global permission).
    pub licensing_groups: BTreeSet<String>,
    /// Lower-case accounts licensed by themselves, not through a group.
    pub licensed_directly: BTreeSet<String>,
    /// Groups of administrators: never changed, and their members are never changed.
    pub admin_groups: BTreeSet<String>,
    /// Lower-case accounts that administer the target by themselves: never changed.
    pub admins: BTreeSet<String>,
    /// The licence.
    pub seats: Seats,
    /// Licences besides the target's own (`licensing_groups`, `licensed_directly`, `seats`),
    /// each counted on its own from this state: the applications that read a directory the
    /// target serves. Empty for a target that is one product with one licence.
    pub licences: Vec<Licence>,
    /// Invitations sent and not accepted yet, by lower-case Roster name (targets that invite
    /// rather than create accounts): no account yet, so no membership can be given.
    pub pending: BTreeMap<String, PendingAccount>,
}

/// A licence of its own counted from the target's state: one application that reads the
/// directory the target serves, licensing the active members of some of its groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Licence {
    /// What the verdict calls it ("the Crowd application 'jira'").
    pub name: String,
    /// Groups whose members hold a licence in it (only those it can see).
    pub licensing_groups: BTreeSet<String>,
    /// Its seats: in use as it reports them (`None`: counted by Roster), and its limit.
    pub seats: Seats,
    /// Where its seats are raised, for the refusal's words.
    pub raise: String,
}

/// An invitation sent and not accepted yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingAccount {
    /// The address invited.
    pub email: String,
    /// When it was sent (ms since the epoch), when the target says.
    pub since_ms: Option<i64>,
    /// Whether the target still lists it.
    pub invitation: InvitationState,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InvitationState {
    /// Listed by the target, waiting for the person.
    Open,
    /// No longer listed, yet no account has the address: the person joined under another
    /// address, or declined, or it expired. Sending it again at once would only repeat that.
    Closed,
}

impl TargetState {
    /// Lower-case users who hold a licence now (directly or through a group).
    pub fn licensed(&self) -> BTreeSet<String> {
        self.licensed_by(&self.licensing_groups, &self.licensed_directly)
    }

    /// Lower-case active users licensed by `groups` (their members, once each) or `directly`.
    pub fn licensed_by(&self, groups: &BTreeSet<String>, directly: &BTreeSet<String>) -> BTreeSet<String> {
        let mut set = directly.clone();
        for g in groups {
            if let Some(m) = self.members.get(g) {
                set.extend(m.iter().map(|u| u.to_string()));
            }
        }
        set.retain(|u| self.users.get(u).is_some_and(|a| a.active));
        set
    }
}

/// Whether the target renames accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rename {
    /// An IdP rename becomes one rename of the account.
    Native,
    /// The target cannot: the account keeps its name and the plan says so.
    Unsupported,
}

/// How members are added to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddMembers {
    /// Many per call, up to the policy's `batch_size`.
    Bulk,
    /// One per call.
    OneAtATime,
}

/// How an account is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disable {
    /// The target has no such call: disabling takes away what licenses the account (its
    /// licensing groups and direct licence), which the plan lists.
    Unlicense,
    /// The target disables accounts itself.
    Native,
}

/// What the target takes in an account's fields (see `fit`): control characters and
/// whitespace are never allowed in a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fields {
    /// Longest username, display name and email, in characters.
    pub max_chars: usize,
    /// Characters a username may not hold besides control characters and whitespace.
    pub username_forbids: &'static str,
}

/// What becomes of a group Roster manages once no source has it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Groups {
    /// It stays, without the members Roster removed: in a product that grants permissions to
    /// groups, an administrator may have given it some that outlive the source.
    Keep,
    /// It is deleted after its members are removed: a directory the target serves should hold
    /// only what the sources say.
    DeleteUndesired,
}

/// How accounts come to exist in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Accounts {
    /// Roster creates them (`CreateUser` makes the account).
    #[default]
    Create,
    /// Roster can only invite by email (`CreateUser` sends an invitation); the account exists once
    /// the person accepts, and memberships other than the invitation's follow on a later run.
    Invite,
}

/// Whether Roster may change an account's display name and email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profiles {
    /// It may (per account, unless the account says it is read-only).
    #[default]
    Managed,
    /// Never: the person owns their profile (Atlassian accounts); a changed name or email is
    /// reported, not written.
    ReadOnly,
}

/// A limit on calls over a rolling window that a plan must fit (Bitbucket Cloud meters calls per
/// hour): what the plan's ETA is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CallBudget {
    /// Calls allowed per window.
    pub calls: u64,
    /// The window, in seconds.
    pub window_secs: u64,
    /// Calls that may be made now.
    pub available_now: u64,
    /// Calls this run's read of the target took from the budget, which every later run
    /// spends again before it writes.
    pub read_calls: u64,
}

/// What a full read covers.
#[derive(Debug, Clone, Copy)]
pub struct ReadScope<'a> {
    /// Groups whose members matter (desired, managed, default).
    pub groups: &'a BTreeSet<String>,
    /// The desired people, lower-case name → email: targets that key accounts by something
    /// else than Roster's name (Bitbucket Cloud's account ids) find them by email.
    pub people: &'a BTreeMap<String, Option<String>>,
    /// Requests in flight at once (the most, for an adaptive limit).
    pub concurrency: usize,
}

/// What a target can do; the planner shapes its operations to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Renames.
    pub rename: Rename,
    /// Adding members.
    pub add_members: AddMembers,
    /// Disabling.
    pub disable: Disable,
    /// What account fields it takes.
    pub fields: Fields,
    /// What becomes of managed groups no source has any more.
    pub groups: Groups,
    /// How accounts come to exist.
    pub accounts: Accounts,
    /// Whether account details are Roster's to change.
    pub profiles: Profiles,
}

/// A failed call to the target: its status when it answered, and what it said (the message
/// names the target and the call).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    /// HTTP status (or the target's equivalent), when the target answered.
    pub status: Option<u16>,
    /// What went wrong, naming the call.
    pub message: String,
}

impl TargetError {
    /// An error without a status (the target could not be reached, or answered nonsense).
    pub fn other(message: impl Into<String>) -> Self {
        TargetError {
            status: None,
            message: message.into(),
        }
    }
}

/// What applying one operation came to.
#[derive(Debug)]
pub struct OpOutcome {
    /// Done (with a note when it already was), or the error.
    pub result: Result<Option<String>, TargetError>,
    /// Requests it took, retries included.
    pub requests: u32,
}

/// Calls made to the target, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallCounts {
    /// Calls by endpoint ("GET /admin/users" → n).
    pub by_endpoint: BTreeMap<String, u64>,
    /// Answers that said "slow down" (429).
    pub throttled: u64,
    /// What an adaptive concurrency limit settled on (`None`: the target's is fixed).
    pub concurrency: Option<roster_http::Settled>,
}

/// "Test connection": can Roster manage this target with its credentials?
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TargetCheck {
    /// Roster can manage users and groups with these credentials.
    pub ok: bool,
    /// Otherwise, why not and what to do.
    pub error: Option<String>,
    /// Seats the licence allows; none when unlimited or unknown.
    pub licensed_users: Option<i64>,
    /// Users counted against the licence now.
    pub licensed_users_in_use: Option<i64>,
    /// How long the check took.
    pub ms: u64,
    /// What the check found worth saying besides (how the target is administered, which API
    /// Roster will use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A system Roster writes to.
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// The kind, as configuration names it (`bitbucket-dc`).
    fn kind(&self) -> &'static str;
    /// What administrators call it ("Bitbucket"), in reasons and verdicts.
    fn product(&self) -> &'static str;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
    /// The account Roster acts as: always protected.
    fn account(&self) -> &str;
    /// What the plan needs: every account and group, the members of `scope.groups` and of every
    /// licensing or administrators' group, and the licence.
    async fn read(&self, scope: &ReadScope<'_>) -> Result<TargetState, TargetError>;
    /// The same, as far as the accounts `names` (lower-case) are concerned: those accounts,
    /// their memberships of `groups` and of licensing groups, every group name, the licence.
    /// For single-user sync, which must answer in seconds whatever the target's size.
    async fn read_accounts(
        &self,
        names: &BTreeSet<String>,
        groups: &BTreeSet<String>,
    ) -> Result<TargetState, TargetError>;
    /// Carries out one operation of a plan.
    async fn apply(&self, op: &Op) -> OpOutcome;
    /// Calls made since the last [`Target::reset_calls`].
    fn calls(&self) -> CallCounts;
    /// Zeroes the call counts (a run starts).
    fn reset_calls(&self);
    /// Tests the connection, in seconds.
    async fn check(&self) -> TargetCheck;
    /// The limit on calls the target imposes over time, when a plan must fit one.
    fn call_budget(&self) -> Option<CallBudget> {
        None
    }
}

/// How long one request to a target may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Runs: long timeouts, the configured retries.
    Run,
    /// "Test connection": answers in seconds.
    Check,
}

/// What the API shows of a target's connection: never a secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Connection {
    /// Where it is.
    pub url: Option<String>,
    /// The account Roster acts as.
    pub account: Option<String>,
    /// Which credential is stored (`password`, `token`), never its value.
    pub credential: Option<String>,
}

/// One kind of target, as configuration names it: how its settings are checked and shown, and
/// how a target of that kind is built. The binary registers the kinds it ships.
pub trait TargetKind: Send + Sync {
    /// The kind's name in configuration (`bitbucket-dc`).
    fn kind(&self) -> &'static str;
    /// Checks the kind's own settings in `config` (`base` resolves relative files); every
    /// message names the field.
    fn validate(&self, config: &crate::TargetConfig, base: &std::path::Path) -> Result<(), String>;
    /// What the API shows of the connection.
    fn describe(&self, config: &crate::TargetConfig) -> Connection;
    /// The fields of its settings that hold credentials: write-only through the API, and kept
    /// when a replacement leaves them out. A field of a table is named by its path
    /// (`scim.api_key`).
    fn credential_fields(&self) -> &'static [&'static str];
    /// Builds the target; `store` is for kinds whose state Roster keeps itself (the served
    /// Crowd directory), the others ignore it.
    fn build(
        &self,
        config: &crate::TargetConfig,
        base: &std::path::Path,
        patience: Patience,
        store: &Arc<roster_store::Store>,
    ) -> Result<Arc<dyn Target>, String>;
}

/// The kinds of target this Roster can write to.
#[derive(Clone, Default)]
pub struct TargetKinds(BTreeMap<&'static str, Arc<dyn TargetKind>>);

impl TargetKinds {
    /// These kinds.
    pub fn new(kinds: impl IntoIterator<Item = Arc<dyn TargetKind>>) -> TargetKinds {
        TargetKinds(kinds.into_iter().map(|k| (k.kind(), k)).collect())
    }

    /// The kind named `kind`, or an error listing the known ones.
    pub fn get(&self, kind: &str) -> Result<&dyn TargetKind, String> {
        self.0.get(kind).map(|k| k.as_ref()).ok_or_else(|| {
            format!(
                "target kind '{kind}' is not one this Roster writes to ({})",
                self.0.keys().copied().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The known kinds' names.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.keys().copied().collect()
    }
}
