//! A Crowd directory client that behaves, call by call, like the one Bitbucket Data Center
//! (and every Atlassian Data Center application) runs for an "Atlassian Crowd" directory:
//! `RemoteCrowdDirectory` under `DbCachingRemoteDirectory` (crowd-rest.md §6). It keeps the local
//! cache Bitbucket would keep, so a test can check that a Crowd server (the simulator, or
//! Roster's `/rest/usermanagement/1`) gives Bitbucket the directory it should.
//!
//! What it copies from the Java client (§1, §6): XML only (`Accept: application/xml`,
//! `X-Atlassian-Token: no-check` on every call, pre-emptive HTTP Basic as the application), a
//! refusal of any answer without `X-Embedded-Crowd-Version`; the full synchronisation's five
//! calls (`GET /event`, the user search with `max-results=-1`, the group search,
//! `GET /group/membership` with its per-group fallback on 404, `GET /event` again) and its
//! deletion of whatever the full results no longer hold; the incremental synchronisation
//! (`GET /event/{token}`, events applied in document order, users followed by `<key>` across
//! renames, `UPDATED` membership events replacing the whole parent set) and its fallback to a
//! full synchronisation on an expired token, a 404 or a server error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use roxmltree::{Document, Node};

/// Where the API lives below the server's URL.
pub const API: &str = "/rest/usermanagement/1";

/// Whether a synchronisation asks for and keeps attributes (the directory's
/// `userAttributesSyncEnabled` / `groupAttributesSyncEnabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeSync {
    /// `expand=user` / `expand=group`: no attributes.
    Off,
    /// `expand=user,attributes` / `expand=group,attributes`.
    On,
}

/// Whether group-in-group memberships are kept (the directory's `useNestedGroups`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// Only users' memberships.
    Flat,
    /// Child groups too.
    Nested,
}

/// The directory's settings that change what it asks for.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// User attributes.
    pub user_attributes: AttributeSync,
    /// Group attributes.
    pub group_attributes: AttributeSync,
    /// Nested groups.
    pub nesting: Nesting,
}

impl Default for Settings {
    /// No attribute sync, nested groups on.
    fn default() -> Self {
        Settings {
            user_attributes: AttributeSync::Off,
            group_attributes: AttributeSync::Off,
            nesting: Nesting::Nested,
        }
    }
}

/// A user as the local cache holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedUser {
    /// The username as the server writes it.
    pub name: String,
    /// `<key>`: the external id that lets the cache follow a rename.
    pub key: Option<String>,
    /// `<active>`; absent reads as false, as JAXB reads a primitive boolean.
    pub active: bool,
    /// `<first-name>`.
    pub first_name: String,
    /// `<last-name>`.
    pub last_name: String,
    /// `<display-name>`.
    pub display_name: String,
    /// `<email>`.
    pub email: String,
    /// Attributes (kept only with [`AttributeSync::On`]).
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// A group as the local cache holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedGroup {
    /// The name as the server writes it.
    pub name: String,
    /// `<description>`.
    pub description: String,
    /// `<active>`.
    pub active: bool,
    /// Attributes.
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// What Bitbucket's copy of the directory holds. Keys are lower-case names (Crowd names are
/// case-insensitive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cache {
    /// Users by lower-case name.
    pub users: BTreeMap<String, CachedUser>,
    /// Groups by lower-case name.
    pub groups: BTreeMap<String, CachedGroup>,
    /// (group, user), both lower-case.
    pub members: BTreeSet<(String, String)>,
    /// (parent group, child group), both lower-case.
    pub children: BTreeSet<(String, String)>,
}

impl Cache {
    /// The lower-case names of a group's users.
    pub fn group_users(&self, group: &str) -> Vec<String> {
        let g = group.to_lowercase();
        self.members
            .iter()
            .filter(|(mg, _)| *mg == g)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// The lower-case names of a user's groups.
    pub fn user_groups(&self, user: &str) -> Vec<String> {
        let u = user.to_lowercase();
        self.members
            .iter()
            .filter(|(_, mu)| *mu == u)
            .map(|(g, _)| g.clone())
            .collect()
    }

    fn remove_user(&mut self, lname: &str) {
        self.users.remove(lname);
        self.members.retain(|(_, u)| u != lname);
    }

    fn remove_group(&mut self, lname: &str) {
        self.groups.remove(lname);
        self.members.retain(|(g, _)| g != lname);
        self.children.retain(|(p, c)| p != lname && c != lname);
    }

    /// `addOrUpdateCachedUser`: the local user with the same key (else the same name) takes the
    /// server's fields, its name included, keeping its memberships across a rename.
    fn save_user(&mut self, mut user: CachedUser, attributes: Option<&Changes>) {
        let lname = user.name.to_lowercase();
        let by_key = user.key.as_ref().and_then(|k| {
            self.users
                .iter()
                .find(|(_, u)| u.key.as_deref() == Some(k.as_str()))
                .map(|(n, _)| n.clone())
        });
        let old = by_key.or_else(|| self.users.contains_key(&lname).then(|| lname.clone()));
        if let Some(old) = old {
            let previous = self.users.remove(&old).map(|u| u.attributes).unwrap_or_default();
            if old != lname {
                // A rename: another local user holding the new name is replaced, as the Java
                // cache replaces it; memberships move to the new name.
                self.remove_user(&lname);
                let moved: Vec<(String, String)> = self.members.iter().filter(|(_, u)| *u == old).cloned().collect();
                for (g, _) in moved {
                    self.members.remove(&(g.clone(), old.clone()));
                    self.members.insert((g, lname.clone()));
                }
            }
            // Events carry a user's attributes apart from it (`storedAttributes`): what was
            // cached stays unless the event changes it.
            if attributes.is_some() {
                user.attributes = previous;
            }
        }
        if let Some(changes) = attributes {
            changes.apply(&mut user.attributes);
        }
        self.users.insert(lname, user);
    }

    fn save_group(&mut self, mut group: CachedGroup, attributes: &Changes) {
        let lname = group.name.to_lowercase();
        if let Some(old) = self.groups.remove(&lname) {
            group.attributes = old.attributes;
        }
        attributes.apply(&mut group.attributes);
        self.groups.insert(lname, group);
    }
}

/// The attributes an event stores and deletes.
#[derive(Debug, Default)]
struct Changes {
    stored: Vec<(String, Vec<String>)>,
    deleted: Vec<String>,
}

impl Changes {
    fn apply(&self, into: &mut BTreeMap<String, Vec<String>>) {
        for (n, v) in &self.stored {
            into.insert(n.clone(), v.clone());
        }
        for n in &self.deleted {
            into.remove(n);
        }
    }
}

/// One request the client made: the method and the path and query below
/// `/rest/usermanagement/1`, as sent (encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `GET`, `POST`.
    pub method: &'static str,
    /// Path and query below the API root.
    pub target: String,
}

impl Call {
    /// `METHOD target`, with an event token written `{token}` so a test can compare sequences.
    pub fn shape(&self) -> String {
        let target = match self.target.strip_prefix("/event/") {
            Some(_) => "/event/{token}",
            None => &self.target,
        };
        format!("{} {target}", self.method)
    }
}

/// What a synchronisation came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// A full synchronisation was asked for and made.
    Full,
    /// The events since the stored token were applied.
    Incremental {
        /// How many events were applied.
        events: usize,
    },
    /// An incremental synchronisation could not be made, so a full one was (K5).
    FullInstead {
        /// Why: the status and reason of the refusal, or that no token was stored.
        why: String,
    },
}

/// Why a call failed, as the Java client tells its callers.
#[derive(Debug)]
pub enum CrowdError {
    /// The connection failed or the body could not be read.
    Transport(String),
    /// No `X-Embedded-Crowd-Version` on the answer (`InvalidCrowdServiceException`).
    NotCrowd {
        /// The URL asked.
        url: String,
        /// Its status.
        status: u16,
    },
    /// 401: the application failed to authenticate (`InvalidAuthenticationException`).
    Unauthorised(String),
    /// 403: the application may not do this (`ApplicationPermissionException`).
    Forbidden(String),
    /// Any other status ≥ 300 with an `<error>` entity (`CrowdRestException`).
    Rest {
        /// The status.
        status: u16,
        /// `<reason>`.
        reason: String,
        /// `<message>`.
        message: String,
    },
    /// A status ≥ 300 without a readable `<error>`, or a body that is not the XML expected
    /// (`OperationFailedException`).
    Failed(String),
}

impl fmt::Display for CrowdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrowdError::Transport(e) => write!(f, "request failed: {e}"),
            CrowdError::NotCrowd { url, status } => write!(
                f,
                "The following URL does not specify a valid Crowd User Management REST service: {url} \
                 (HTTP {status} without X-Embedded-Crowd-Version)"
            ),
            CrowdError::Unauthorised(m) => write!(f, "application failed to authenticate (401): {m}"),
            CrowdError::Forbidden(m) => write!(f, "application permission denied (403): {m}"),
            CrowdError::Rest {
                status,
                reason,
                message,
            } => write!(f, "HTTP {status} {reason}: {message}"),
            CrowdError::Failed(m) => write!(f, "operation failed: {m}"),
        }
    }
}

impl std::error::Error for CrowdError {}

/// A remote Crowd directory and Bitbucket's cache of it.
pub struct CrowdDirectory {
    http: reqwest::Client,
    /// The server URL without a trailing `/`, then [`API`].
    base: String,
    app: String,
    password: String,
    settings: Settings,
    calls: Vec<Call>,
    token: Option<String>,
    /// The local copy.
    pub cache: Cache,
    /// What each synchronisation came to, oldest first.
    pub history: Vec<SyncOutcome>,
    /// Whether the last full synchronisation's two tokens differed ("Possible events during
    /// full synchronisation").
    pub events_during_full_sync: bool,
}

/// Whether a 404 from a call means the server lacks the resource (the Java client then
/// ignores the body) or is an answer with an `<error>` entity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum On404 {
    Unsupported,
    Error,
}

/// A successful answer: its body.
struct Answer {
    body: String,
}

impl CrowdDirectory {
    /// A directory reading `server_url` (the base URL an administrator types into Bitbucket)
    /// as application `app`; nothing is called until a synchronisation.
    pub fn new(server_url: &str, app: &str, password: &str, settings: Settings) -> CrowdDirectory {
        CrowdDirectory {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(600))
                .build()
                .expect("a reqwest client builds"),
            base: format!("{}{API}", server_url.trim_end_matches('/')),
            app: app.to_string(),
            password: password.to_string(),
            settings,
            calls: Vec::new(),
            token: None,
            cache: Cache::default(),
            history: Vec::new(),
            events_during_full_sync: false,
        }
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The calls made since the last `take_calls`, as [`Call::shape`]s; forgets them.
    pub fn take_calls(&mut self) -> Vec<String> {
        self.calls.drain(..).map(|c| c.shape()).collect()
    }

    /// The stored event token, if the last synchronisation left one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `synchroniseAll`: GET /event, the user and group searches, the membership document
    /// (per-group listings when it is 404), GET /event; the cache becomes exactly what the
    /// server answered.
    pub async fn full_sync(&mut self) -> Result<(), CrowdError> {
        self.full().await?;
        self.history.push(SyncOutcome::Full);
        Ok(())
    }

    async fn full(&mut self) -> Result<(), CrowdError> {
        // Step 1's failures are logged and ignored by the Java client.
        let initial = self.current_token().await.ok().flatten();

        let users = self.search_users().await?;
        let groups = self.search_groups().await?;
        let mut next = Cache::default();
        for u in users {
            next.users.insert(u.name.to_lowercase(), u);
        }
        for g in groups {
            // Duplicate names are filtered out: the first wins.
            next.groups.entry(g.name.to_lowercase()).or_insert(g);
        }
        match self.membership_document().await? {
            Some(memberships) => {
                for m in memberships {
                    self.take_membership(&mut next, m);
                }
            }
            None => {
                // A server before API 1.1: the groups again, then two listings per group.
                let groups = self.search_groups().await?;
                for g in groups {
                    let users = self
                        .names(
                            &format!(
                                "/group/user/direct?groupname={}&start-index=0&max-results=-1",
                                q(&g.name)
                            ),
                            "user",
                        )
                        .await?;
                    let children = self
                        .names(
                            &format!(
                                "/group/child-group/direct?groupname={}&start-index=0&max-results=-1",
                                q(&g.name)
                            ),
                            "group",
                        )
                        .await?;
                    self.take_membership(
                        &mut next,
                        Membership {
                            group: g.name,
                            users,
                            groups: children,
                        },
                    );
                }
            }
        }
        // A group's attributes come with the group only with group attribute sync; with it off
        // the cache keeps none from a full synchronisation.
        self.cache = next;

        let stored = self.current_token().await.ok().flatten();
        self.events_during_full_sync = initial.is_some() && stored.is_some() && initial != stored;
        self.token = stored;
        Ok(())
    }

    fn take_membership(&self, into: &mut Cache, m: Membership) {
        let g = m.group.to_lowercase();
        // Groups the group search did not list are skipped, as are unknown users.
        if !into.groups.contains_key(&g) {
            return;
        }
        for u in m.users {
            let u = u.to_lowercase();
            if into.users.contains_key(&u) {
                into.members.insert((g.clone(), u));
            }
        }
        if self.settings.nesting == Nesting::Nested {
            for c in m.groups {
                let c = c.to_lowercase();
                if into.groups.contains_key(&c) {
                    into.children.insert((g.clone(), c));
                }
            }
        }
    }

    /// `synchroniseCache` in incremental mode: the events since the stored token, applied in
    /// order; a full synchronisation instead when there is no token, the token expired (410),
    /// the server lacks events (404, 400 INCREMENTAL_SYNC_NOT_AVAILABLE) or failed (5xx).
    pub async fn incremental_sync(&mut self) -> Result<(), CrowdError> {
        let Some(token) = self.token.clone() else {
            self.full().await?;
            self.history.push(SyncOutcome::FullInstead {
                why: "no event token stored".into(),
            });
            return Ok(());
        };
        let path = format!("/event/{}", path_segment(&token));
        match self.get(&path, On404::Unsupported).await {
            Ok(a) => {
                let events = self.apply_events(&a.body)?;
                self.history.push(SyncOutcome::Incremental { events });
                Ok(())
            }
            Err(e) => {
                let why = match &e {
                    CrowdError::Rest { status, reason, .. } => format!("{status} {reason}"),
                    CrowdError::Failed(m) => format!("failed: {m}"),
                    _ => return Err(e),
                };
                self.full().await?;
                self.history.push(SyncOutcome::FullInstead { why });
                Ok(())
            }
        }
    }

    /// Applies an `<events>` document to the cache in document order; stores its new token.
    fn apply_events(&mut self, body: &str) -> Result<usize, CrowdError> {
        let doc = parse(body)?;
        let root = doc.root_element();
        let new_token = root
            .attribute("newEventToken")
            .ok_or_else(|| CrowdError::Failed("<events> without newEventToken".into()))?
            .to_string();
        let mut n = 0;
        for e in root.children().filter(Node::is_element) {
            let op = child_text(e, "operation").unwrap_or_default();
            let op = match op.as_str() {
                "CREATED" => Op::Created,
                "UPDATED" => Op::Updated,
                "DELETED" => Op::Deleted,
                other => return Err(CrowdError::Failed(format!("event operation `{other}`"))),
            };
            match e.tag_name().name() {
                "userEvent" => {
                    let u = child(e, "user").ok_or_else(|| CrowdError::Failed("userEvent without <user>".into()))?;
                    match op {
                        Op::Deleted => self.cache.remove_user(&name_of(u)?.to_lowercase()),
                        Op::Created | Op::Updated => {
                            let user = user_of(u, AttributeSync::Off)?;
                            let changes = (self.settings.user_attributes == AttributeSync::On).then(|| changes_of(e));
                            self.cache.save_user(user, changes.as_ref());
                        }
                    }
                }
                "groupEvent" => {
                    let g = child(e, "group").ok_or_else(|| CrowdError::Failed("groupEvent without <group>".into()))?;
                    match op {
                        Op::Deleted => self.cache.remove_group(&name_of(g)?.to_lowercase()),
                        Op::Created | Op::Updated => {
                            self.cache.save_group(group_of(g, AttributeSync::Off)?, &changes_of(e))
                        }
                    }
                }
                "userMembershipEvent" => {
                    let u = child(e, "childUser")
                        .ok_or_else(|| CrowdError::Failed("userMembershipEvent without <childUser>".into()))?;
                    let u = name_of(u)?.to_lowercase();
                    let parents = names_in(e, "parentGroups", "group");
                    self.user_membership(op, &u, &parents);
                }
                "groupMembershipEvent" => {
                    let g = child(e, "group")
                        .ok_or_else(|| CrowdError::Failed("groupMembershipEvent without <group>".into()))?;
                    let g = name_of(g)?.to_lowercase();
                    let parents = names_in(e, "parentGroups", "group");
                    let children = names_in(e, "childGroups", "group");
                    self.group_membership(op, &g, &parents, &children);
                }
                other => return Err(CrowdError::Failed(format!("unknown event <{other}>"))),
            }
            n += 1;
        }
        self.token = Some(new_token);
        Ok(n)
    }

    fn user_membership(&mut self, op: Op, user: &str, parents: &[String]) {
        let c = &mut self.cache;
        if !c.users.contains_key(user) {
            return;
        }
        let known: Vec<String> = parents
            .iter()
            .map(|p| p.to_lowercase())
            .filter(|p| c.groups.contains_key(p))
            .collect();
        match op {
            Op::Created => {
                for p in known {
                    c.members.insert((p, user.to_string()));
                }
            }
            Op::Deleted => {
                for p in known {
                    c.members.remove(&(p, user.to_string()));
                }
            }
            // `syncGroupMembershipsForUser`: the parent set is the whole truth.
            Op::Updated => {
                c.members.retain(|(_, u)| u != user);
                for p in known {
                    c.members.insert((p, user.to_string()));
                }
            }
        }
    }

    fn group_membership(&mut self, op: Op, group: &str, parents: &[String], children: &[String]) {
        if self.settings.nesting == Nesting::Flat {
            return;
        }
        let c = &mut self.cache;
        if !c.groups.contains_key(group) {
            return;
        }
        let known = |names: &[String], c: &Cache| -> Vec<String> {
            names
                .iter()
                .map(|n| n.to_lowercase())
                .filter(|n| c.groups.contains_key(n) && n != group)
                .collect()
        };
        let parents = known(parents, c);
        let children = known(children, c);
        match op {
            Op::Created => {
                for p in parents {
                    c.children.insert((p, group.to_string()));
                }
            }
            Op::Deleted => {
                for p in parents {
                    c.children.remove(&(p, group.to_string()));
                }
            }
            // `syncGroupMembershipsAndMembersForGroup`: both sets are the whole truth.
            Op::Updated => {
                c.children.retain(|(p, ch)| ch != group && p != group);
                for p in parents {
                    c.children.insert((p, group.to_string()));
                }
                for ch in children {
                    c.children.insert((group.to_string(), ch));
                }
            }
        }
    }

    /// `POST /authentication?username=U` with the password: the user the server returns
    /// updates the cache (its attributes as the last synchronisation left them). The group
    /// synchronisation some directories make after a login (§6, "User login" step 2) is not made.
    pub async fn authenticate(&mut self, user: &str, password: &str) -> Result<CachedUser, CrowdError> {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><password><value>{}</value></password>",
            esc(password)
        );
        let a = self
            .send(
                "POST",
                &format!("/authentication?username={}", q(user)),
                Some(body),
                On404::Error,
            )
            .await?;
        let doc = parse(&a.body)?;
        let u = user_of(doc.root_element(), AttributeSync::Off)?;
        self.cache.save_user(u.clone(), Some(&Changes::default()));
        Ok(u)
    }

    /// `GET /event`: the current token, or None when the server says incremental
    /// synchronisation is not available (attribute absent or false).
    pub async fn current_token(&mut self) -> Result<Option<String>, CrowdError> {
        let a = self.get("/event", On404::Unsupported).await?;
        let doc = parse(&a.body)?;
        let root = doc.root_element();
        if root.attribute("incrementalSynchronisationAvailable") != Some("true") {
            return Ok(None);
        }
        Ok(root.attribute("newEventToken").map(str::to_string))
    }

    /// Step 2: every user in one request.
    async fn search_users(&mut self) -> Result<Vec<CachedUser>, CrowdError> {
        let expand = match self.settings.user_attributes {
            AttributeSync::Off => "user",
            AttributeSync::On => "user,attributes",
        };
        let a = self.search("user", expand).await?;
        let doc = parse(&a.body)?;
        let attrs = self.settings.user_attributes;
        doc.root_element()
            .children()
            .filter(|n| n.has_tag_name("user"))
            .map(|n| user_of(n, attrs))
            .collect()
    }

    /// Step 3: every group in one request.
    async fn search_groups(&mut self) -> Result<Vec<CachedGroup>, CrowdError> {
        let expand = match self.settings.group_attributes {
            AttributeSync::Off => "group",
            AttributeSync::On => "group,attributes",
        };
        let a = self.search("group", expand).await?;
        let doc = parse(&a.body)?;
        let attrs = self.settings.group_attributes;
        doc.root_element()
            .children()
            .filter(|n| n.has_tag_name("group"))
            .map(|n| group_of(n, attrs))
            .collect()
    }

    async fn search(&mut self, entity: &str, expand: &str) -> Result<Answer, CrowdError> {
        let path = format!(
            "/search?entity-type={entity}&start-index=0&max-results=-1&expand={}",
            q(expand)
        );
        let body =
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><null-search-restriction/>".to_string();
        self.send("POST", &path, Some(body), On404::Error).await
    }

    /// Step 4: the membership document, or None when the server has none (404).
    async fn membership_document(&mut self) -> Result<Option<Vec<Membership>>, CrowdError> {
        let a = match self.get("/group/membership", On404::Unsupported).await {
            Ok(a) => a,
            Err(CrowdError::Rest { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let doc = parse(&a.body)?;
        let mut out = Vec::new();
        for m in doc.root_element().children().filter(|n| n.has_tag_name("membership")) {
            let group = m
                .attribute("group")
                .ok_or_else(|| CrowdError::Failed("<membership> without group".into()))?;
            out.push(Membership {
                group: group.to_string(),
                users: names_in(m, "users", "user"),
                groups: names_in(m, "groups", "group"),
            });
        }
        Ok(Some(out))
    }

    /// A listing's names (`<users><user name=…/>…` or `<groups>…`).
    async fn names(&mut self, path: &str, tag: &str) -> Result<Vec<String>, CrowdError> {
        let a = match self.get(path, On404::Error).await {
            Ok(a) => a,
            // GROUP_NOT_FOUND: R5 answers an empty list.
            Err(CrowdError::Rest { status: 404, .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let doc = parse(&a.body)?;
        doc.root_element()
            .children()
            .filter(|n| n.has_tag_name(tag))
            .map(|n| name_of(n).map(str::to_string))
            .collect()
    }

    async fn get(&mut self, path: &str, on404: On404) -> Result<Answer, CrowdError> {
        self.send("GET", path, None, on404).await
    }

    /// One call as `RestExecutor.MethodExecutor` makes it and reads its answer.
    async fn send(
        &mut self,
        method: &'static str,
        target: &str,
        body: Option<String>,
        on404: On404,
    ) -> Result<Answer, CrowdError> {
        self.calls.push(Call {
            method,
            target: target.to_string(),
        });
        let url = format!("{}{target}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut req = self
            .http
            .request(m, &url)
            .basic_auth(&self.app, Some(&self.password))
            .header("Accept", "application/xml")
            .header("X-Atlassian-Token", "no-check");
        if let Some(b) = body {
            req = req.header("Content-Type", "application/xml; charset=UTF-8").body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CrowdError::Transport(format!("{method} {url}: {e}")))?;
        let status = resp.status().as_u16();
        // The Java client checks the header before it looks at the status.
        if !resp.headers().contains_key("x-embedded-crowd-version") {
            return Err(CrowdError::NotCrowd { url, status });
        }
        let html = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        let text = resp
            .text()
            .await
            .map_err(|e| CrowdError::Transport(format!("{method} {url}: reading the body: {e}")))?;
        match status {
            200..=299 => Ok(Answer { body: text }),
            401 => Err(CrowdError::Unauthorised(text)),
            403 => Err(CrowdError::Forbidden(if html { strip_tags(&text) } else { text })),
            404 if on404 == On404::Unsupported => Err(CrowdError::Rest {
                status,
                reason: String::new(),
                message: format!("{url} is not supported by this server"),
            }),
            _ => Err(error_entity(status, &text)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Created,
    Updated,
    Deleted,
}

/// One `<membership>` of the membership document.
struct Membership {
    group: String,
    users: Vec<String>,
    groups: Vec<String>,
}

/// `<error><reason/><message/></error>`, or `OperationFailedException` when it does not parse.
fn error_entity(status: u16, body: &str) -> CrowdError {
    let parsed = Document::parse(body).ok().and_then(|d| {
        let root = d.root_element();
        root.has_tag_name("error").then(|| CrowdError::Rest {
            status,
            reason: child_text(root, "reason").unwrap_or_default(),
            message: child_text(root, "message").unwrap_or_default(),
        })
    });
    parsed.unwrap_or_else(|| CrowdError::Failed(format!("HTTP {status} without an <error> entity: {}", truncate(body))))
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

fn parse(body: &str) -> Result<Document<'_>, CrowdError> {
    Document::parse(body).map_err(|e| CrowdError::Failed(format!("unreadable XML ({e}): {}", truncate(body))))
}

fn child<'a, 'i>(n: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn child_text(n: Node<'_, '_>, tag: &str) -> Option<String> {
    child(n, tag).map(|c| c.text().unwrap_or_default().to_string())
}

fn name_of<'a>(n: Node<'a, '_>) -> Result<&'a str, CrowdError> {
    n.attribute("name")
        .ok_or_else(|| CrowdError::Failed(format!("<{}> without a name", n.tag_name().name())))
}

/// The `name`s of `<outer><tag name=…/>…</outer>` under `n`.
fn names_in(n: Node<'_, '_>, outer: &str, tag: &str) -> Vec<String> {
    child(n, outer)
        .map(|o| {
            o.children()
                .filter(|c| c.has_tag_name(tag))
                .filter_map(|c| c.attribute("name").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `<attributes><attribute name=…><values><value>…` (links and other elements ignored).
fn attributes_of(n: Option<Node<'_, '_>>) -> Vec<(String, Vec<String>)> {
    let Some(n) = n else { return Vec::new() };
    n.children()
        .filter(|c| c.has_tag_name("attribute"))
        .filter_map(|a| {
            let values = child(a, "values")
                .map(|vs| {
                    vs.children()
                        .filter(|v| v.has_tag_name("value"))
                        .map(|v| v.text().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            a.attribute("name").map(|name| (name.to_string(), values))
        })
        .collect()
}

fn changes_of(event: Node<'_, '_>) -> Changes {
    Changes {
        stored: attributes_of(child(event, "storedAttributes")),
        deleted: child(event, "deletedAttributes")
            .map(|d| {
                d.children()
                    .filter(|c| c.has_tag_name("attribute"))
                    .filter_map(|c| c.attribute("name").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn user_of(n: Node<'_, '_>, attributes: AttributeSync) -> Result<CachedUser, CrowdError> {
    Ok(CachedUser {
        name: name_of(n)?.to_string(),
        key: child_text(n, "key"),
        active: child_text(n, "active").is_some_and(|a| a.trim() == "true"),
        first_name: child_text(n, "first-name").unwrap_or_default(),
        last_name: child_text(n, "last-name").unwrap_or_default(),
        display_name: child_text(n, "display-name").unwrap_or_default(),
        email: child_text(n, "email").unwrap_or_default(),
        attributes: match attributes {
            AttributeSync::On => attributes_of(child(n, "attributes")).into_iter().collect(),
            AttributeSync::Off => BTreeMap::new(),
        },
    })
}

fn group_of(n: Node<'_, '_>, attributes: AttributeSync) -> Result<CachedGroup, CrowdError> {
    Ok(CachedGroup {
        name: name_of(n)?.to_string(),
        description: child_text(n, "description").unwrap_or_default(),
        active: child_text(n, "active").is_some_and(|a| a.trim() == "true"),
        attributes: match attributes {
            AttributeSync::On => attributes_of(child(n, "attributes")).into_iter().collect(),
            AttributeSync::Off => BTreeMap::new(),
        },
    })
}

/// A query value as Java's `URLEncoder` writes it (a space is `+`).
pub fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A path segment as the Java client writes it: `URLEncoder` with `+` replaced by `%20`.
fn path_segment(s: &str) -> String {
    q(s).replace('+', "%20")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The text of an HTML error page, as the Java client reads a 403's `text/html` body.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&quot;", "\"").replace("&amp;", "&")
}
