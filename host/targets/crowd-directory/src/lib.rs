//! The directory Roster serves as a Crowd server, as a target (`kind = "crowd-directory"`).
//!
//! Its state is the store's served tables: a run reads them, plans, guards and applies exactly
//! as against Bitbucket, each operation becoming one [`ServedChange`] written with its events in
//! one transaction. Nothing exists before Roster writes it, so the directory holds only what
//! the sources say: a managed group no source has any more is deleted (`Groups::DeleteUndesired`)
//! once its members are removed. The Crowd endpoint of `roster serve` only reads these tables;
//! held plans therefore never reach the applications that read the directory until approved.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use roster_engine::{
    Account, Accounts, AddMembers, CallCounts, Capabilities, Connection, Disable, Fields, Groups, Licence, Op,
    OpOutcome, Patience, Profiles, ReadScope, Rename, Seats, Target, TargetCheck, TargetConfig, TargetError,
    TargetKind, TargetState,
};
use roster_store::{CrowdApp, ServedApplied, ServedChange, ServedState, Store, StoreError, now_ms};
use serde::Deserialize;

/// The kind's name in configuration.
pub const KIND: &str = "crowd-directory";

/// Days the change log keeps events when `event_retention_days` is not given.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The kind's own fields of a `[target]` table. There is no credential: the directory is
/// Roster's own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Groups whose members hold a licence in the applications that read this directory (the
    /// licence guard counts their active members), e.g. `["bitbucket-users"]`.
    #[serde(default)]
    pub licensed_groups: Vec<String>,
    /// Seats those applications' licence allows (none: unlimited).
    #[serde(default)]
    pub seats: Option<i64>,
    /// Groups of administrators: never changed, and their members are never changed.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// How long the change log keeps events (`/event/{token}` answers for tokens this recent).
    #[serde(default = "default_retention")]
    pub event_retention_days: u32,
}

fn default_retention() -> u32 {
    DEFAULT_RETENTION_DAYS
}

impl Settings {
    /// The settings of `config`, checked; every message names the field.
    pub fn of(config: &TargetConfig) -> Result<Settings, String> {
        let s: Settings = serde_json::from_value(serde_json::Value::Object(config.connection.clone()))
            .map_err(|e| format!("target (kind {KIND}): {e}"))?;
        if s.seats.is_some_and(|n| n < 0) {
            return Err(format!(
                "target seats: {} is not a number of seats; give 0 or more, or leave it out for no limit",
                s.seats.unwrap_or_default()
            ));
        }
        if s.event_retention_days == 0 {
            return Err(
                "target event_retention_days: give at least 1 (applications that poll for changes need the log to keep them)"
                    .into(),
            );
        }
        for (field, groups) in [
            ("licensed_groups", &s.licensed_groups),
            ("admin_groups", &s.admin_groups),
        ] {
            if groups.iter().any(|g| g.trim().is_empty()) {
                return Err(format!("target {field}: a group name is empty; name every group"));
            }
        }
        Ok(s)
    }
}

/// The served Crowd directory as a target.
pub struct CrowdDirectory {
    store: Arc<Store>,
    settings: Settings,
    calls: Mutex<CallCounts>,
}

/// A store failure in the engine's terms: a name the directory does not hold is about the
/// operation (404), a name taken (409) or refused (400) too; anything else means the store
/// cannot be written now, which stops the apply stage.
fn target_error(e: StoreError) -> TargetError {
    let status = match &e {
        StoreError::NotServed { .. } | StoreError::NotFound(_) => Some(404),
        StoreError::Conflict(_) => Some(409),
        StoreError::Invalid(_) => Some(400),
        _ => None,
    };
    TargetError {
        status,
        message: format!("the served Crowd directory: {e}"),
    }
}

impl CrowdDirectory {
    /// The directory kept in `store`, with `settings`.
    pub fn new(store: Arc<Store>, settings: Settings) -> CrowdDirectory {
        CrowdDirectory {
            store,
            settings,
            calls: Mutex::new(CallCounts::default()),
        }
    }

    fn count(&self, what: &str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_endpoint
            .entry(format!("store {what}"))
            .or_default() += 1;
    }

    /// The engine's view of `served` and of the applications that read it, as far as the
    /// accounts `names` (lower-case) are concerned (all of them when `None`).
    fn state(&self, (served, apps): (ServedState, Vec<CrowdApp>), names: Option<&BTreeSet<String>>) -> TargetState {
        // Seats in use are counted on the whole directory, before a single-user read keeps
        // only its accounts: the guard adds the plan's change to them.
        let mut licences = licences(&apps, &served.groups);
        for l in &mut licences {
            l.seats.in_use = Some(in_use(&served, &l.licensing_groups));
        }
        let own: BTreeSet<String> = self.settings.licensed_groups.iter().cloned().collect();
        let own_in_use = in_use(&served, &own);
        let keep = |u: &str| names.is_none_or(|n| n.contains(u));
        let users: HashMap<String, Account> = served
            .users
            .into_iter()
            .filter(|u| keep(&u.name.to_lowercase()))
            .map(|u| {
                (
                    u.name.to_lowercase(),
                    Account {
                        name: u.name,
                        display_name: u.display_name,
                        email: u.email,
                        directory: None,
                        mutable: true,
                        active: u.active,
                        last_sign_in_ms: None,
                    },
                )
            })
            .collect();
        let mut members: HashMap<String, BTreeSet<Arc<str>>> =
            served.groups.iter().map(|g| (g.clone(), BTreeSet::new())).collect();
        for (group, user) in served.members.into_iter().filter(|(_, u)| keep(u)) {
            members.entry(group).or_default().insert(Arc::from(user));
        }
        TargetState {
            users,
            groups: served.groups.into_iter().collect(),
            members,
            // Configured whether or not they exist yet: the first run creates them, and the
            // licence guard must count what it adds to them.
            licensing_groups: self.settings.licensed_groups.iter().cloned().collect(),
            licensed_directly: BTreeSet::new(),
            admin_groups: self.settings.admin_groups.iter().cloned().collect(),
            admins: BTreeSet::new(),
            seats: Seats {
                in_use: Some(own_in_use),
                limit: self.settings.seats,
            },
            licences,
            pending: Default::default(),
        }
    }
}

/// Each application's licence, as the guard counts it: the active members of its licensed
/// groups that it can see (a group hidden from it licenses no one there), up to its seats.
/// Memberships are served flat, so a member of a nested group is already a member of each
/// group above it, and counts once. Applications that license nothing and set no seats are
/// left out. A group the directory holds is named as it is held (names are compared without
/// case); one it does not hold yet is named as configured, so the plan that creates it counts.
pub fn licences(apps: &[CrowdApp], served_groups: &[String]) -> Vec<Licence> {
    let held = |g: &str| {
        served_groups
            .iter()
            .find(|s| s.eq_ignore_ascii_case(g))
            .cloned()
            .unwrap_or_else(|| g.to_string())
    };
    apps.iter()
        .filter(|a| !a.licence.licensed_groups.is_empty() || a.licence.seats.is_some())
        .map(|a| Licence {
            name: format!("the Crowd application '{}'", a.name),
            licensing_groups: a
                .licence
                .licensed_groups
                .iter()
                .filter(|g| {
                    a.groups
                        .as_ref()
                        .is_none_or(|seen| seen.iter().any(|s| s.eq_ignore_ascii_case(g)))
                })
                .map(|g| held(g))
                .collect(),
            seats: Seats {
                in_use: None,
                limit: a.licence.seats,
            },
            raise: format!(
                "`roster crowd apps set {0} --seats N`, or PUT /api/v1/crowd/applications/{0}",
                a.name
            ),
        })
        .collect()
}

/// Active users who are members of one of `groups` (names compared without case) in the
/// whole of `served`, each once.
fn in_use(served: &ServedState, groups: &BTreeSet<String>) -> i64 {
    if groups.is_empty() {
        return 0;
    }
    let groups: HashSet<String> = groups.iter().map(|g| g.to_lowercase()).collect();
    let active: HashSet<String> = served
        .users
        .iter()
        .filter(|u| u.active)
        .map(|u| u.name.to_lowercase())
        .collect();
    let licensed: HashSet<&str> = served
        .members
        .iter()
        .filter(|(g, u)| active.contains(u) && groups.contains(&g.to_lowercase()))
        .map(|(_, u)| u.as_str())
        .collect();
    i64::try_from(licensed.len()).unwrap_or(i64::MAX)
}

/// The served directory and the applications that read it, read together.
fn read_all(s: &Store) -> Result<(ServedState, Vec<CrowdApp>), StoreError> {
    Ok((s.served_state()?, s.crowd_apps()?))
}

/// The change `op` makes to the served directory, read from `store` where the operation alone
/// does not say (who comes back, which other groups are left); `Err(Ok(why))` when there is
/// nothing to do.
fn change_of(store: &Store, op: &Op) -> Result<ServedChange, Result<String, StoreError>> {
    Ok(match op.clone() {
        Op::CreateGroup { group } => ServedChange::CreateGroup { group },
        Op::DeleteGroup { group } => ServedChange::DeleteGroup { group },
        Op::RenameUser { from, to, records } => ServedChange::RenameUser { from, to, records },
        Op::CreateUser {
            user,
            display_name,
            email,
            records,
        } => ServedChange::CreateUser {
            user,
            display_name,
            email,
            records,
        },
        // Adoption links an account Roster finds; here nothing exists but what Roster made, so
        // it only ever brings back one that was disabled (the store re-activates an inactive
        // user when it is created again, keeping its key).
        Op::AdoptUser { user, records } => match store.served_user(&user).map_err(Err)? {
            None => {
                return Err(Err(StoreError::NotServed {
                    kind: "user",
                    names: vec![user],
                }));
            }
            Some(u) if u.active => return Err(Ok(format!("{} is active already", u.name))),
            Some(u) => ServedChange::CreateUser {
                user,
                display_name: u.display_name,
                email: u.email.unwrap_or_default(),
                records,
            },
        },
        Op::UpdateUser {
            user,
            display_name,
            email,
            ..
        } => ServedChange::UpdateUser {
            user,
            display_name,
            email,
        },
        Op::AddMembers { group, users } => ServedChange::AddMembers { group, users },
        Op::RemoveMember { group, user } => ServedChange::RemoveMember { group, user },
        Op::Deactivate {
            user,
            groups,
            leave_other_groups,
            ..
        } => {
            let mut leave: BTreeSet<String> = groups.into_iter().collect();
            if let Some(keep) = leave_other_groups {
                let now = store.served_user_groups(&user).map_err(Err)?;
                leave.extend(now.into_iter().filter(|g| !keep.contains(g)));
            }
            ServedChange::Deactivate {
                user,
                leave: leave.into_iter().collect(),
            }
        }
        // Deleting the row is the erasure: the directory keeps nothing else of the account.
        Op::DeleteUser { user, .. } => ServedChange::DeleteUser { user },
    })
}

#[async_trait]
impl Target for CrowdDirectory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn product(&self) -> &'static str {
        "the Crowd directory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            rename: Rename::Native,
            add_members: AddMembers::Bulk,
            disable: Disable::Native,
            // Crowd's own directory keeps names, display names and emails in 255-character
            // columns; a name is a query parameter, so no character is ruled out besides the
            // control characters and whitespace the engine never allows.
            fields: Fields {
                max_chars: 255,
                username_forbids: "",
            },
            groups: Groups::DeleteUndesired,
            accounts: Accounts::Create,
            profiles: Profiles::Managed,
        }
    }

    fn account(&self) -> &str {
        // Roster acts as nobody in its own directory; no username is empty, so this protects
        // no one.
        ""
    }

    async fn read(&self, _scope: &ReadScope<'_>) -> Result<TargetState, TargetError> {
        self.count("read");
        // Events older than the retention go at every read: tokens older than that are
        // expired, and a client synchronises in full.
        let before = now_ms() - i64::from(self.settings.event_retention_days) * DAY_MS;
        let served = self
            .store
            .blocking(move |s| {
                s.served_prune_events(before)?;
                read_all(s)
            })
            .await
            .map_err(target_error)?;
        Ok(self.state(served, None))
    }

    async fn read_accounts(
        &self,
        names: &BTreeSet<String>,
        _groups: &BTreeSet<String>,
    ) -> Result<TargetState, TargetError> {
        self.count("read-accounts");
        let served = self.store.blocking(read_all).await.map_err(target_error)?;
        Ok(self.state(served, Some(names)))
    }

    async fn apply(&self, op: &Op) -> OpOutcome {
        self.count(op.kind());
        let op = op.clone();
        let result = self
            .store
            .blocking(move |s| match change_of(s, &op) {
                Ok(change) => s.served_apply(&change).map(|a| match a {
                    ServedApplied::Done => None,
                    ServedApplied::Already(why) => Some(why),
                }),
                Err(Ok(why)) => Ok(Some(why)),
                Err(Err(e)) => Err(e),
            })
            .await
            .map_err(target_error);
        OpOutcome { result, requests: 1 }
    }

    fn calls(&self) -> CallCounts {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn reset_calls(&self) {
        *self.calls.lock().unwrap_or_else(PoisonError::into_inner) = CallCounts::default();
    }

    async fn check(&self) -> TargetCheck {
        let started = std::time::Instant::now();
        let served = self.store.blocking(read_all).await;
        let ms = started.elapsed().as_millis() as u64;
        match served {
            Ok(served) => {
                let state = self.state(served, None);
                let in_use = state.licensed().len() as i64;
                // Each application's licence, as the guard will count it.
                let apps: Vec<String> = state
                    .licences
                    .iter()
                    .map(|l| {
                        let n = state.licensed_by(&l.licensing_groups, &BTreeSet::new()).len();
                        match l.seats.limit {
                            Some(limit) => format!("{}: {n} of {limit} seats in use", l.name),
                            None => format!("{}: {n} licensed, no limit", l.name),
                        }
                    })
                    .collect();
                TargetCheck {
                    ok: true,
                    error: None,
                    licensed_users: self.settings.seats,
                    licensed_users_in_use: Some(in_use),
                    ms,
                    detail: (!apps.is_empty()).then(|| apps.join("; ")),
                }
            }
            Err(e) => TargetCheck {
                ok: false,
                error: Some(format!(
                    "cannot read the served Crowd directory from the store: {e}; check the data folder"
                )),
                licensed_users: self.settings.seats,
                licensed_users_in_use: None,
                ms,
                detail: None,
            },
        }
    }
}

/// The `crowd-directory` kind, for the binary's registry.
pub struct Kind;

impl TargetKind for Kind {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn validate(&self, config: &TargetConfig, _base: &Path) -> Result<(), String> {
        config.require_fixed_concurrency()?;
        Settings::of(config).map(drop)
    }

    fn describe(&self, _config: &TargetConfig) -> Connection {
        Connection::default()
    }

    fn credential_fields(&self) -> &'static [&'static str] {
        &[]
    }

    fn build(
        &self,
        config: &TargetConfig,
        _base: &Path,
        _patience: Patience,
        store: &Arc<Store>,
    ) -> Result<Arc<dyn Target>, String> {
        Ok(Arc::new(CrowdDirectory::new(store.clone(), Settings::of(config)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(settings: serde_json::Value) -> TargetConfig {
        let mut v = serde_json::json!({ "id": "crowd", "kind": KIND });
        v.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    fn directory(settings: serde_json::Value) -> (tempfile::TempDir, Arc<dyn Target>) {
        let dir = tempfile::tempdir().unwrap();
        let key = roster_store::crypto::Key::from_bytes([7; 32]);
        let store = Arc::new(Store::open(&dir.path().join("roster.db"), key).unwrap());
        let target = Kind
            .build(&config(settings), dir.path(), Patience::Run, &store)
            .unwrap();
        (dir, target)
    }

    async fn ok(t: &dyn Target, op: Op) -> Option<String> {
        t.apply(&op).await.result.unwrap()
    }

    #[test]
    fn settings_default_and_mistakes_name_the_field() {
        let s = Settings::of(&config(serde_json::json!({}))).unwrap();
        assert_eq!(s.event_retention_days, DEFAULT_RETENTION_DAYS);
        assert_eq!((s.seats, s.licensed_groups.len()), (None, 0));
        let err = |v| Settings::of(&config(v)).unwrap_err();
        assert!(err(serde_json::json!({ "url": "http://x" })).contains("unknown field `url`"));
        assert!(err(serde_json::json!({ "seats": -1 })).contains("target seats"));
        assert!(err(serde_json::json!({ "event_retention_days": 0 })).contains("event_retention_days"));
        assert!(err(serde_json::json!({ "admin_groups": [" "] })).contains("admin_groups"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn operations_change_the_served_directory_as_the_engine_reads_it_back() {
        let (_dir, t) = directory(serde_json::json!({ "licensed_groups": ["users"], "seats": 10 }));
        let state = t
            .read(&ReadScope {
                groups: &BTreeSet::new(),
                people: &BTreeMap::new(),
                concurrency: 1,
            })
            .await
            .unwrap();
        assert!(state.users.is_empty() && state.groups.is_empty());
        assert!(state.licensing_groups.contains("users"), "counted before it exists");
        for group in ["users", "devs", "keep"] {
            assert_eq!(ok(&*t, Op::CreateGroup { group: group.into() }).await, None);
        }
        ok(
            &*t,
            Op::CreateUser {
                user: "Ann".into(),
                display_name: "Ann Lee".into(),
                email: "ann@example.com".into(),
                records: vec![("hr".into(), "1".into())],
            },
        )
        .await;
        for group in ["users", "devs", "keep"] {
            ok(
                &*t,
                Op::AddMembers {
                    group: group.into(),
                    users: vec!["ann".into()],
                },
            )
            .await;
        }
        let state = t
            .read(&ReadScope {
                groups: &BTreeSet::new(),
                people: &BTreeMap::new(),
                concurrency: 1,
            })
            .await
            .unwrap();
        assert_eq!(state.users["ann"].name, "Ann");
        assert_eq!(state.licensed(), BTreeSet::from(["ann".to_string()]));
        assert_eq!(t.check().await.licensed_users_in_use, Some(1));
        assert_eq!(t.check().await.licensed_users, Some(10));

        // Disabled, leaving every group but the kept ones.
        ok(
            &*t,
            Op::Deactivate {
                user: "ann".into(),
                groups: Vec::new(),
                revoke_permission: false,
                leave_other_groups: Some(vec!["keep".into()]),
            },
        )
        .await;
        let state = t
            .read(&ReadScope {
                groups: &BTreeSet::new(),
                people: &BTreeMap::new(),
                concurrency: 1,
            })
            .await
            .unwrap();
        assert!(!state.users["ann"].active && state.licensed().is_empty());
        let groups_of_ann: Vec<&String> = state
            .members
            .iter()
            .filter(|(_, m)| m.contains("ann"))
            .map(|(g, _)| g)
            .collect();
        assert_eq!(groups_of_ann, vec!["keep"]);

        // Back again: the same account, active, with its details.
        assert_eq!(
            ok(
                &*t,
                Op::AdoptUser {
                    user: "ann".into(),
                    records: vec![("hr".into(), "1".into())],
                },
            )
            .await,
            None
        );
        let state = t
            .read(&ReadScope {
                groups: &BTreeSet::new(),
                people: &BTreeMap::new(),
                concurrency: 1,
            })
            .await
            .unwrap();
        assert!(state.users["ann"].active);
        assert_eq!(state.users["ann"].display_name, "Ann Lee");
        let again = ok(
            &*t,
            Op::AdoptUser {
                user: "ann".into(),
                records: Vec::new(),
            },
        )
        .await;
        assert!(again.is_some_and(|n| n.contains("active already")));

        // A membership change naming someone the directory does not hold is about that
        // operation (404), naming them.
        let e = t
            .apply(&Op::RemoveMember {
                group: "devs".into(),
                user: "bob".into(),
            })
            .await
            .result
            .unwrap_err();
        assert_eq!(e.status, Some(404));
        assert!(e.message.contains("'bob'"), "{}", e.message);

        assert_eq!(ok(&*t, Op::DeleteGroup { group: "devs".into() }).await, None);
        let state = t
            .read(&ReadScope {
                groups: &BTreeSet::new(),
                people: &BTreeMap::new(),
                concurrency: 1,
            })
            .await
            .unwrap();
        assert!(!state.groups.contains("devs") && !state.members.contains_key("devs"));
        assert_eq!(t.calls().by_endpoint["store create-group"], 3);
        assert_eq!(t.calls().by_endpoint["store read"], 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_application_with_a_licence_is_a_licence_of_its_own_counting_only_what_it_sees() {
        let dir = tempfile::tempdir().unwrap();
        let key = roster_store::crypto::Key::from_bytes([7; 32]);
        let store = Arc::new(Store::open(&dir.path().join("roster.db"), key).unwrap());
        let t = Kind
            .build(&config(serde_json::json!({})), dir.path(), Patience::Run, &store)
            .unwrap();
        let licence = |groups: &[&str], seats| roster_store::AppLicence {
            licensed_groups: groups.iter().map(|g| g.to_string()).collect(),
            seats,
        };
        let addr = ["127.0.0.1".to_string()];
        let seen = ["jira-users".to_string(), "Jira-Admins".to_string()];
        store
            .crowd_app_create_licensed(
                "jira",
                &addr,
                Some(&seen),
                &licence(&["JIRA-USERS", "jira-admins", "contractors"], Some(10)),
                "a",
            )
            .unwrap();
        store
            .crowd_app_create_licensed("bitbucket", &addr, None, &licence(&["bitbucket-users"], None), "a")
            .unwrap();
        store.crowd_app_create("bamboo", &addr, None, "a").unwrap();
        ok(
            &*t,
            Op::CreateGroup {
                group: "jira-users".into(),
            },
        )
        .await;
        ok(
            &*t,
            Op::CreateUser {
                user: "ann".into(),
                display_name: "Ann Lee".into(),
                email: "ann@example.com".into(),
                records: Vec::new(),
            },
        )
        .await;
        ok(
            &*t,
            Op::AddMembers {
                group: "jira-users".into(),
                users: vec!["ann".into()],
            },
        )
        .await;
        let state = t
            .read(&ReadScope {
                groups: &BTreeSet::new(),
                people: &BTreeMap::new(),
                concurrency: 1,
            })
            .await
            .unwrap();
        assert!(state.licensing_groups.is_empty() && state.seats.limit.is_none());
        let got: Vec<(&str, Vec<&str>, Option<i64>)> = state
            .licences
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.licensing_groups.iter().map(String::as_str).collect(),
                    l.seats.limit,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                // Held groups as the directory names them; 'contractors' is hidden from Jira.
                ("the Crowd application 'bitbucket'", vec!["bitbucket-users"], None),
                (
                    "the Crowd application 'jira'",
                    vec!["jira-admins", "jira-users"],
                    Some(10)
                ),
            ],
            "bamboo licenses nothing and sets no seats"
        );
        assert!(state.licences[1].raise.contains("roster crowd apps set jira --seats N"));
        assert_eq!(state.licences[1].seats.in_use, Some(1));
        // A single-user read keeps only that account, yet counts the seats on the whole
        // directory: otherwise one person's sync could take Jira over its licence.
        let one = t
            .read_accounts(&BTreeSet::from(["bob".to_string()]), &BTreeSet::new())
            .await
            .unwrap();
        assert!(one.users.is_empty());
        assert_eq!(one.licences[1].seats.in_use, Some(1), "ann's seat is still in use");
        let check = t.check().await;
        assert_eq!(
            check.detail.as_deref(),
            Some(
                "the Crowd application 'bitbucket': 0 licensed, no limit; the Crowd application 'jira': 1 of 10 seats in use"
            )
        );
    }
}
