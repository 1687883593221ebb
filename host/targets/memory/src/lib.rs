//! An in-memory target with capabilities unlike Bitbucket Data Center's: it cannot rename
//! accounts, adds one member per call, and disables accounts itself. The engine's scenario
//! tests run against it as well as against Data Center, which proves the engine plans from
//! [`Capabilities`] and [`TargetState`] alone.
//!
//! It refuses what its capabilities rule out (a rename, a bulk add) instead of doing it, so a
//! test fails if the engine ever asks.
//!
//! A test may also make it a target that invites rather than creates accounts, whose people own
//! their profiles, and that meters calls over a window ([`World::invite_only`],
//! [`World::meter`]): the engine's side of such targets is tested here, without a vendor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use roster_engine::{
    Account, Accounts, AddMembers, CallBudget, CallCounts, Capabilities, Connection, Disable, Fields, Groups,
    InvitationState, Op, OpOutcome, Patience, PendingAccount, Profiles, ReadScope, Rename, Seats, Target, TargetCheck,
    TargetConfig, TargetError, TargetKind, TargetState,
};

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemUser {
    /// Name as created.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Enabled.
    pub active: bool,
}

/// An invitation sent and not accepted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The account it becomes once accepted.
    pub user: MemUser,
    /// When it was sent (ms since the epoch).
    pub sent_ms: i64,
}

/// A meter of calls over a window, refilled when a test says the window has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter {
    /// Calls allowed per window.
    pub calls: u64,
    /// The window, in seconds (what the target reports; tests move time with [`World::refill`]).
    pub window_secs: u64,
    /// Calls made in the current window.
    pub used: u64,
}

/// What the target holds.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Accounts by lower-case name.
    pub users: BTreeMap<String, MemUser>,
    /// Groups and their members (lower-case names).
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Groups whose active members hold a licence.
    pub licensing_groups: BTreeSet<String>,
    /// Administrators' groups.
    pub admin_groups: BTreeSet<String>,
    /// Seats the licence allows (`None`: unlimited).
    pub seat_limit: Option<i64>,
    /// Writes applied (operations that changed something).
    pub writes: u64,
    /// How accounts come to exist: created, or invited (then `pending` until accepted).
    pub accounts: Accounts,
    /// Whether display names and emails may be changed.
    pub profiles: Profiles,
    /// Invitations not accepted yet, by lower-case name.
    pub pending: BTreeMap<String, Invitation>,
    /// The call meter, when the target has one: every operation is one call; reads are free,
    /// but refused once the window's calls are spent.
    pub meter: Option<Meter>,
    /// Every operation the meter let through, in order (what a test checks for repeats).
    pub applied: Vec<Op>,
}

impl World {
    /// A world with one licensing group and nobody in it.
    pub fn with_licensing_group(group: &str) -> World {
        let mut w = World::default();
        w.groups.insert(group.to_string(), BTreeSet::new());
        w.licensing_groups.insert(group.to_string());
        w
    }

    /// Adds an account that Roster did not create.
    pub fn add_user(&mut self, name: &str) {
        self.users.insert(
            name.to_lowercase(),
            MemUser {
                name: name.to_string(),
                display_name: name.to_string(),
                email: format!("{name}@example.com"),
                active: true,
            },
        );
    }

    /// Makes it a target whose accounts come by invitation and whose people own their profiles.
    pub fn invite_only(&mut self) {
        self.accounts = Accounts::Invite;
        self.profiles = Profiles::ReadOnly;
    }

    /// Meters calls: `calls` per window of `window_secs`, all available now.
    pub fn meter(&mut self, calls: u64, window_secs: u64) {
        self.meter = Some(Meter {
            calls,
            window_secs,
            used: 0,
        });
    }

    /// The window has passed: every call is available again.
    pub fn refill(&mut self) {
        if let Some(m) = &mut self.meter {
            m.used = 0;
        }
    }

    /// The person invited as `user` accepts: their account exists from now on. False when no
    /// such invitation is pending.
    pub fn accept(&mut self, user: &str) -> bool {
        let key = user.to_lowercase();
        match self.pending.remove(&key) {
            Some(invitation) => {
                self.users.insert(key, invitation.user);
                true
            }
            None => false,
        }
    }

    /// Groups `user` is a member of.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        let lower = user.to_lowercase();
        self.groups
            .iter()
            .filter(|(_, m)| m.contains(&lower))
            .map(|(g, _)| g.clone())
            .collect()
    }

    fn licensed(&self) -> usize {
        let mut set = BTreeSet::new();
        for g in &self.licensing_groups {
            for m in self.groups.get(g).into_iter().flatten() {
                if self.users.get(m).is_some_and(|u| u.active) {
                    set.insert(m.clone());
                }
            }
        }
        set.len()
    }
}

/// The in-memory target.
pub struct MemoryTarget {
    world: Arc<Mutex<World>>,
    account: String,
    calls: Mutex<CallCounts>,
}

fn refused(status: u16, message: impl Into<String>) -> TargetError {
    TargetError {
        status: Some(status),
        message: format!("memory target: {}", message.into()),
    }
}

impl MemoryTarget {
    /// A target over `world`, acting as `account`.
    pub fn new(world: World, account: &str) -> MemoryTarget {
        MemoryTarget::over(Arc::new(Mutex::new(world)), account)
    }

    /// A target over a world others hold too (a test, a [`Kind`]).
    pub fn over(world: Arc<Mutex<World>>, account: &str) -> MemoryTarget {
        MemoryTarget {
            world,
            account: account.to_string(),
            calls: Mutex::new(CallCounts::default()),
        }
    }

    /// The world as it stands.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, what: &str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_endpoint
            .entry(what.to_string())
            .or_default() += 1;
    }

    fn state(w: &World, names: Option<&BTreeSet<String>>) -> TargetState {
        let keep = |u: &str| names.is_none_or(|n| n.contains(u));
        TargetState {
            users: w
                .users
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, u)| {
                    (
                        k.clone(),
                        Account {
                            name: u.name.clone(),
                            display_name: u.display_name.clone(),
                            email: Some(u.email.clone()),
                            directory: None,
                            mutable: true,
                            active: u.active,
                            last_sign_in_ms: None,
                        },
                    )
                })
                .collect(),
            groups: w.groups.keys().cloned().collect(),
            members: w
                .groups
                .iter()
                .map(|(g, m)| {
                    (
                        g.clone(),
                        m.iter().filter(|u| keep(u)).map(|u| Arc::from(u.as_str())).collect(),
                    )
                })
                .collect(),
            licensing_groups: w.licensing_groups.clone(),
            licensed_directly: BTreeSet::new(),
            admin_groups: w.admin_groups.clone(),
            admins: BTreeSet::new(),
            seats: Seats {
                in_use: Some(w.licensed() as i64),
                limit: w.seat_limit,
            },
            licences: Vec::new(),
            pending: w
                .pending
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, i)| {
                    (
                        k.clone(),
                        PendingAccount {
                            email: i.user.email.clone(),
                            since_ms: Some(i.sent_ms),
                            invitation: InvitationState::Open,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Takes one call from the meter; the budget-spent error when none is left.
    fn metered(&self) -> Result<(), TargetError> {
        let mut w = self.world();
        let Some(m) = &mut w.meter else { return Ok(()) };
        if m.used >= m.calls {
            let calls = m.calls;
            self.calls.lock().unwrap_or_else(|p| p.into_inner()).throttled += 1;
            return Err(refused(
                429,
                format!("call budget spent ({calls} calls in this window); the next run after the window continues"),
            ));
        }
        m.used += 1;
        Ok(())
    }

    fn execute(&self, op: &Op) -> Result<Option<String>, TargetError> {
        let mut w = self.world();
        let lower = |s: &str| s.to_lowercase();
        let done = match op {
            Op::CreateGroup { group } => {
                if w.groups.contains_key(group) {
                    return Ok(Some("group already existed".into()));
                }
                w.groups.insert(group.clone(), BTreeSet::new());
                None
            }
            Op::RenameUser { from, .. } => {
                return Err(refused(
                    400,
                    format!("cannot rename {from}: this target does not rename accounts"),
                ));
            }
            Op::CreateUser {
                user,
                display_name,
                email,
                ..
            } => {
                if w.users.contains_key(&lower(user)) {
                    return Ok(Some("account already existed".into()));
                }
                if w.accounts == Accounts::Invite {
                    if w.pending.contains_key(&lower(user)) {
                        return Ok(Some("already invited".into()));
                    }
                    let sent_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    let user = MemUser {
                        name: user.clone(),
                        display_name: display_name.clone(),
                        email: email.clone(),
                        active: true,
                    };
                    w.pending.insert(lower(&user.name), Invitation { user, sent_ms });
                    w.writes += 1;
                    return Ok(Some(format!("invitation sent to {email}")));
                }
                w.users.insert(
                    lower(user),
                    MemUser {
                        name: user.clone(),
                        display_name: display_name.clone(),
                        email: email.clone(),
                        active: true,
                    },
                );
                None
            }
            Op::AdoptUser { user, .. } => {
                // Taking an account over, or bringing a disabled one back: it is enabled.
                match w.users.get_mut(&lower(user)) {
                    Some(u) if !u.active => u.active = true,
                    Some(_) => return Ok(None),
                    None => return Err(refused(404, format!("no account {user}"))),
                }
                None
            }
            Op::UpdateUser {
                user,
                display_name,
                email,
                ..
            } => {
                if w.profiles == Profiles::ReadOnly {
                    return Err(refused(
                        400,
                        format!("cannot update {user}: people own their profiles here"),
                    ));
                }
                let u = w
                    .users
                    .get_mut(&lower(user))
                    .ok_or_else(|| refused(404, format!("no account {user}")))?;
                u.display_name = display_name.clone();
                u.email = email.clone();
                None
            }
            Op::AddMembers { group, users } => {
                if users.len() != 1 {
                    return Err(refused(
                        400,
                        format!("adds one member per call, was asked for {}", users.len()),
                    ));
                }
                let user = lower(&users[0]);
                if !w.users.contains_key(&user) {
                    return Err(refused(404, format!("no account {}", users[0])));
                }
                w.groups
                    .get_mut(group)
                    .ok_or_else(|| refused(404, format!("no group {group}")))?
                    .insert(user);
                None
            }
            Op::RemoveMember { group, user } => {
                let removed = w.groups.get_mut(group).is_some_and(|m| m.remove(&lower(user)));
                if !removed {
                    return Ok(Some("was not a member".into()));
                }
                None
            }
            Op::Deactivate {
                user,
                groups,
                leave_other_groups,
                ..
            } => {
                let key = lower(user);
                for g in groups {
                    if let Some(m) = w.groups.get_mut(g) {
                        m.remove(&key);
                    }
                }
                if let Some(keep) = leave_other_groups {
                    for (g, m) in w.groups.iter_mut() {
                        if !keep.contains(g) {
                            m.remove(&key);
                        }
                    }
                }
                w.users
                    .get_mut(&key)
                    .ok_or_else(|| refused(404, format!("no account {user}")))?
                    .active = false;
                None
            }
            Op::DeleteUser { user, .. } => {
                let key = lower(user);
                if w.users.remove(&key).is_none() {
                    return Ok(Some("account was already gone".into()));
                }
                for m in w.groups.values_mut() {
                    m.remove(&key);
                }
                None
            }
            Op::DeleteGroup { group } => {
                return Err(refused(
                    400,
                    format!("cannot delete group {group}: this target keeps groups"),
                ));
            }
        };
        w.writes += 1;
        Ok(done)
    }
}

#[async_trait]
impl Target for MemoryTarget {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn product(&self) -> &'static str {
        "the memory target"
    }

    fn capabilities(&self) -> Capabilities {
        let w = self.world();
        Capabilities {
            rename: Rename::Unsupported,
            add_members: AddMembers::OneAtATime,
            disable: Disable::Native,
            fields: Fields {
                max_chars: 255,
                username_forbids: "/",
            },
            groups: Groups::Keep,
            accounts: w.accounts,
            profiles: w.profiles,
        }
    }

    fn account(&self) -> &str {
        &self.account
    }

    async fn read(&self, _scope: &ReadScope<'_>) -> Result<TargetState, TargetError> {
        self.count("read");
        let w = self.world();
        if let Some(m) = w.meter.filter(|m| m.used >= m.calls) {
            return Err(refused(
                429,
                format!(
                    "call budget spent ({} calls in this window); nothing can be read before the window ends",
                    m.calls
                ),
            ));
        }
        Ok(Self::state(&w, None))
    }

    async fn read_accounts(
        &self,
        names: &BTreeSet<String>,
        _groups: &BTreeSet<String>,
    ) -> Result<TargetState, TargetError> {
        self.count("read-accounts");
        Ok(Self::state(&self.world(), Some(names)))
    }

    async fn apply(&self, op: &Op) -> OpOutcome {
        self.count(op.kind());
        let result = self.metered().and_then(|()| {
            self.world().applied.push(op.clone());
            self.execute(op)
        });
        OpOutcome { result, requests: 1 }
    }

    fn calls(&self) -> CallCounts {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn reset_calls(&self) {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()) = CallCounts::default();
    }

    fn call_budget(&self) -> Option<CallBudget> {
        self.world().meter.map(|m| CallBudget {
            calls: m.calls,
            window_secs: m.window_secs,
            available_now: m.calls.saturating_sub(m.used),
            // Reads are free here.
            read_calls: 0,
        })
    }

    async fn check(&self) -> TargetCheck {
        let w = self.world();
        TargetCheck {
            ok: true,
            error: None,
            licensed_users: w.seat_limit,
            licensed_users_in_use: Some(w.licensed() as i64),
            ms: 0,
            detail: None,
        }
    }
}

/// The `memory` kind: every target it builds works on one shared world, so a test configures
/// `kind = "memory"` in a `[target]` table and inspects the world afterwards. Its only setting
/// is `account`, the account Roster acts as.
pub struct Kind {
    world: Arc<Mutex<World>>,
}

impl Kind {
    /// The kind over `world`.
    pub fn new(world: Arc<Mutex<World>>) -> Kind {
        Kind { world }
    }
}

fn account_of(config: &TargetConfig) -> Result<String, String> {
    if let Some(k) = config.connection.keys().find(|k| *k != "account") {
        return Err(format!(
            "target: unknown field `{k}` for kind memory, expected `account`"
        ));
    }
    match config.connection.get("account") {
        None => Ok("roster".into()),
        Some(v) => v
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "target account: give a string".to_string()),
    }
}

impl TargetKind for Kind {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn validate(&self, config: &TargetConfig, _base: &std::path::Path) -> Result<(), String> {
        config.require_fixed_concurrency()?;
        account_of(config).map(drop)
    }

    fn describe(&self, config: &TargetConfig) -> Connection {
        Connection {
            url: None,
            account: account_of(config).ok(),
            credential: None,
        }
    }

    fn credential_fields(&self) -> &'static [&'static str] {
        &[]
    }

    fn build(
        &self,
        config: &TargetConfig,
        _base: &std::path::Path,
        _patience: Patience,
        _store: &Arc<roster_store::Store>,
    ) -> Result<Arc<dyn Target>, String> {
        Ok(Arc::new(MemoryTarget::over(self.world.clone(), &account_of(config)?)))
    }
}
