//! The directory Roster serves as a Crowd server (issue 21): `served_users`, `served_groups`,
//! `served_members`, the change log `served_events` and its epoch (`served_meta`).
//!
//! Only the `crowd-directory` target writes here, one [`ServedChange`] per engine operation,
//! each in one transaction together with the events it causes, so the log never tells a client
//! of a change the tables do not hold (or the other way round). Names are compared lower-case
//! (`lname`), as Crowd's are. The Crowd endpoint only reads, in keyset pages, so a full
//! search of a large directory never sits in memory.

use roster_model::Record;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, now_ms, word};

/// One user of the served directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedUser {
    /// Row id (stable while the user exists).
    pub id: i64,
    /// The name as spelled.
    pub name: String,
    /// The stable key (`<key>` in Crowd): kept through renames.
    pub external_id: String,
    /// Display name.
    pub display_name: String,
    /// The display name up to its first space.
    pub first_name: String,
    /// The display name after its first space ("" when it has none).
    pub last_name: String,
    /// Email, when known.
    pub email: Option<String>,
    /// False once deactivated.
    pub active: bool,
    /// The IdP records it belongs to, each `[source, id]`.
    pub records: Vec<Record>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One group of the served directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedGroup {
    /// The name as spelled.
    pub name: String,
    /// Description ("" for groups Roster creates).
    pub description: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A change to the served directory: what the crowd-directory target applies (one per engine op).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServedChange {
    /// Creates a group.
    CreateGroup {
        /// Its name.
        group: String,
    },
    /// Deletes a group and its memberships.
    DeleteGroup {
        /// Its name.
        group: String,
    },
    /// Creates a user (or makes an inactive one of that name active again, with these details).
    CreateUser {
        /// Username.
        user: String,
        /// Display name.
        display_name: String,
        /// Email ("" for none).
        email: String,
        /// The IdP records it belongs to.
        records: Vec<Record>,
    },
    /// Renames a user, keeping its key.
    RenameUser {
        /// Current name.
        from: String,
        /// New name.
        to: String,
        /// The IdP records it belongs to.
        records: Vec<Record>,
    },
    /// Changes a user's display name and email.
    UpdateUser {
        /// Username.
        user: String,
        /// New display name.
        display_name: String,
        /// New email ("" for none).
        email: String,
    },
    /// Adds users to a group.
    AddMembers {
        /// The group.
        group: String,
        /// Usernames.
        users: Vec<String>,
    },
    /// Removes a user from a group.
    RemoveMember {
        /// The group.
        group: String,
        /// Username.
        user: String,
    },
    /// Sets a user inactive and takes it out of these groups.
    Deactivate {
        /// Username.
        user: String,
        /// Groups to leave.
        leave: Vec<String>,
    },
    /// Deletes a user and its memberships.
    DeleteUser {
        /// Username.
        user: String,
    },
}

/// What applying a change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServedApplied {
    /// Written, with its events.
    Done,
    /// Nothing to do, with why.
    Already(String),
}

/// Whole served state, for the target's read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedState {
    /// Every user, by lower-case name.
    pub users: Vec<ServedUser>,
    /// Every group name, by lower-case name.
    pub groups: Vec<String>,
    /// (group name, lower-case user name), by group then user.
    pub members: Vec<(String, String)>,
}

/// An event of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServedEvent {
    /// Its place in the log.
    pub seq: i64,
    /// What it is about.
    pub kind: EventKind,
    /// What happened.
    pub op: EventOp,
    /// The user or group, as named when it happened; a rename's UPDATED names the user as it
    /// was before (its `user`, as after), so a reader can follow the name through the log.
    pub name: String,
    /// User events CREATED/UPDATED: the user as it was then.
    pub user: Option<ServedUser>,
    /// Group events CREATED/UPDATED: the group as it was then.
    pub group: Option<ServedGroup>,
    /// User-membership events: the parent groups.
    pub parents: Vec<String>,
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    /// A user.
    User,
    /// A group.
    Group,
    /// A user's memberships.
    UserMembership,
}

impl EventKind {
    /// The word stored in `served_events.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::User => "user",
            EventKind::Group => "group",
            EventKind::UserMembership => "user-membership",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<EventKind, String> {
        match s {
            "user" => Ok(EventKind::User),
            "group" => Ok(EventKind::Group),
            "user-membership" => Ok(EventKind::UserMembership),
            other => Err(format!("unknown served event kind `{other}`")),
        }
    }
}

/// What happened, in Crowd's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventOp {
    /// Created.
    Created,
    /// Changed.
    Updated,
    /// Deleted.
    Deleted,
}

impl EventOp {
    /// Crowd's word: "CREATED", "UPDATED", "DELETED".
    pub fn as_str(self) -> &'static str {
        match self {
            EventOp::Created => "CREATED",
            EventOp::Updated => "UPDATED",
            EventOp::Deleted => "DELETED",
        }
    }
}

impl std::str::FromStr for EventOp {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<EventOp, String> {
        match s {
            "CREATED" => Ok(EventOp::Created),
            "UPDATED" => Ok(EventOp::Updated),
            "DELETED" => Ok(EventOp::Deleted),
            other => Err(format!("unknown served event op `{other}`")),
        }
    }
}

/// Events since a token, or why there are none to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsSince {
    /// The events after the token (possibly none), and the token to ask with next.
    Events {
        /// In order.
        events: Vec<ServedEvent>,
        /// The token after the last of them.
        token: String,
    },
    /// The token is malformed, of another epoch, or older than the oldest kept event: the
    /// client must synchronise in full.
    Expired,
}

/// The columns `user_row` reads, of `served_users u`.
macro_rules! user_columns {
    () => {
        "u.id, u.name, u.external_id, u.display_name, u.first_name, u.last_name, u.email, u.active, u.records, \
         u.created_at, u.updated_at"
    };
}

/// The columns `group_row` reads, of `served_groups g`.
macro_rules! group_columns {
    () => {
        "g.id, g.name, g.description, g.created_at, g.updated_at"
    };
}

const USER_COLUMNS: &str = user_columns!();

const GROUP_COLUMNS: &str = group_columns!();

/// A page of users: ?1 after (lname), ?2 limit.
const USERS_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM served_users u WHERE u.lname > ?1 ORDER BY u.lname LIMIT ?2"
);

/// A page of the users in at least one of the groups ?3 (JSON list of lnames). It walks the
/// lname index and keeps members (served_members_user answers each test), so a page costs its
/// rows plus the users skipped, never a sort of every visible user.
const VISIBLE_USERS_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM served_users u WHERE u.lname > ?1 AND EXISTS (SELECT 1 FROM served_members m WHERE m.user_id = u.id \
     AND m.group_id IN (SELECT g.id FROM served_groups g WHERE g.lname IN (SELECT value FROM json_each(?3)))) \
     ORDER BY u.lname LIMIT ?2"
);

/// A page of groups: ?1 after (lname), ?2 limit.
const GROUPS_PAGE: &str = concat!(
    "SELECT ",
    group_columns!(),
    " FROM served_groups g WHERE g.lname > ?1 ORDER BY g.lname LIMIT ?2"
);

/// A page of the groups named in ?3 (JSON list of lnames).
const VISIBLE_GROUPS_PAGE: &str = concat!(
    "SELECT ",
    group_columns!(),
    " FROM served_groups g WHERE g.lname > ?1 AND g.lname IN (SELECT value FROM json_each(?3)) \
     ORDER BY g.lname LIMIT ?2"
);

/// The member names of group ?1 (its id), by lname.
const MEMBERS_OF: &str = "SELECT u.name FROM served_members m JOIN served_users u ON u.id = m.user_id \
     WHERE m.group_id = ?1 ORDER BY u.lname";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServedUser> {
    let records: String = r.get(8)?;
    let records = serde_json::from_str(&records)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(ServedUser {
        id: r.get(0)?,
        name: r.get(1)?,
        external_id: r.get(2)?,
        display_name: r.get(3)?,
        first_name: r.get(4)?,
        last_name: r.get(5)?,
        email: r.get(6)?,
        active: r.get(7)?,
        records,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, ServedGroup)> {
    Ok((
        r.get(0)?,
        ServedGroup {
            name: r.get(1)?,
            description: r.get(2)?,
            created_at: r.get(3)?,
            updated_at: r.get(4)?,
        },
    ))
}

fn user_in(conn: &Connection, lname: &str) -> rusqlite::Result<Option<ServedUser>> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM served_users u WHERE u.lname = ?1"))?
        .query_row([lname], user_row)
        .optional()
}

fn user_by_id(conn: &Connection, id: i64) -> rusqlite::Result<ServedUser> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM served_users u WHERE u.id = ?1"))?
        .query_row([id], user_row)
}

fn group_in(conn: &Connection, lname: &str) -> rusqlite::Result<Option<(i64, ServedGroup)>> {
    conn.prepare_cached(&format!(
        "SELECT {GROUP_COLUMNS} FROM served_groups g WHERE g.lname = ?1"
    ))?
    .query_row([lname], group_row)
    .optional()
}

/// Crowd needs a first and a last name: the display name split at its first space.
fn split_name(display_name: &str) -> (&str, &str) {
    display_name.split_once(' ').unwrap_or((display_name, ""))
}

fn email_of(email: &str) -> Option<&str> {
    (!email.is_empty()).then_some(email)
}

fn to_json<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Json {
        what,
        detail: e.to_string(),
    })
}

fn not_served(kind: &'static str, names: Vec<String>) -> StoreError {
    StoreError::NotServed { kind, names }
}

/// Names are keys of the served directory: an empty one could never be asked for.
fn check_name(kind: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid(format!(
            "a {kind} of the served directory needs a name; this one is empty"
        )));
    }
    Ok(())
}

/// A new user's key: a random UUID (version 4), as Crowd's keys look to a client.
fn new_key() -> Result<String> {
    crate::new_uuid("a served user's key")
}

/// Appends one event to the log.
fn log(
    conn: &Connection,
    at: i64,
    kind: EventKind,
    op: EventOp,
    name: &str,
    body: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO served_events (at, kind, op, name, body) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![at, kind.as_str(), op.as_str(), name, body])?;
    Ok(())
}

fn log_user(conn: &Connection, at: i64, op: EventOp, user: &ServedUser) -> Result<()> {
    let body = to_json("served_events.body", user)?;
    log(conn, at, EventKind::User, op, &user.name, Some(&body))?;
    Ok(())
}

fn log_membership(conn: &Connection, at: i64, op: EventOp, user: &str, parents: &[&str]) -> Result<()> {
    let body = to_json("served_events.body", parents)?;
    log(conn, at, EventKind::UserMembership, op, user, Some(&body))?;
    Ok(())
}

/// One change, inside the caller's transaction.
fn apply(conn: &Connection, change: &ServedChange, now: i64) -> Result<ServedApplied> {
    use ServedApplied::{Already, Done};
    match change {
        ServedChange::CreateGroup { group } => {
            check_name("group", group)?;
            if let Some((_, g)) = group_in(conn, &group.to_lowercase())? {
                return Ok(Already(format!("group {} exists", g.name)));
            }
            conn.execute(
                "INSERT INTO served_groups (lname, name, description, created_at, updated_at) VALUES (?1, ?2, '', ?3, ?3)",
                params![group.to_lowercase(), group, now],
            )?;
            let g = ServedGroup {
                name: group.clone(),
                description: String::new(),
                created_at: now,
                updated_at: now,
            };
            let body = to_json("served_events.body", &g)?;
            log(conn, now, EventKind::Group, EventOp::Created, group, Some(&body))?;
            Ok(Done)
        }
        ServedChange::DeleteGroup { group } => {
            let Some((id, g)) = group_in(conn, &group.to_lowercase())? else {
                return Ok(Already(format!("there is no group {group}")));
            };
            // Its memberships go with it (ON DELETE CASCADE), each logged first: an application
            // that sees only some groups must hear that a member left its view.
            let members: Vec<String> = conn
                .prepare_cached(MEMBERS_OF)?
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for user in &members {
                log_membership(conn, now, EventOp::Deleted, user, &[&g.name])?;
            }
            conn.execute("DELETE FROM served_groups WHERE id = ?1", [id])?;
            log(conn, now, EventKind::Group, EventOp::Deleted, &g.name, None)?;
            Ok(Done)
        }
        ServedChange::CreateUser {
            user,
            display_name,
            email,
            records,
        } => {
            check_name("user", user)?;
            let lname = user.to_lowercase();
            let (first, last) = split_name(display_name);
            let records = to_json("served_users.records", records)?;
            match user_in(conn, &lname)? {
                Some(u) if u.active => Ok(Already(format!("user {} exists", u.name))),
                Some(u) => {
                    // The same name again after a deactivation: the account comes back, with its
                    // key, so applications keep what they hold for it.
                    conn.execute(
                        "UPDATE served_users SET name = ?2, display_name = ?3, first_name = ?4, last_name = ?5, \
                         email = ?6, active = 1, records = ?7, updated_at = ?8 WHERE id = ?1",
                        params![u.id, user, display_name, first, last, email_of(email), records, now],
                    )?;
                    log_user(conn, now, EventOp::Updated, &user_by_id(conn, u.id)?)?;
                    Ok(Done)
                }
                None => {
                    conn.execute(
                        "INSERT INTO served_users (lname, name, external_id, display_name, first_name, last_name, \
                         email, active, records, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?9)",
                        params![
                            lname,
                            user,
                            new_key()?,
                            display_name,
                            first,
                            last,
                            email_of(email),
                            records,
                            now
                        ],
                    )?;
                    log_user(
                        conn,
                        now,
                        EventOp::Created,
                        &user_by_id(conn, conn.last_insert_rowid())?,
                    )?;
                    Ok(Done)
                }
            }
        }
        ServedChange::RenameUser { from, to, records } => {
            check_name("user", to)?;
            let (lfrom, lto) = (from.to_lowercase(), to.to_lowercase());
            let Some(u) = user_in(conn, &lfrom)? else {
                if let Some(t) = user_in(conn, &lto)? {
                    return Ok(Already(format!(
                        "there is no user {from}, and {} is there already",
                        t.name
                    )));
                }
                return Err(not_served("user", vec![from.clone()]));
            };
            if lfrom != lto
                && let Some(t) = user_in(conn, &lto)?
            {
                return Err(StoreError::Conflict(format!(
                    "cannot rename {from} to {to}: the served directory has another user named {}",
                    t.name
                )));
            }
            if u.name == *to && u.records == *records {
                return Ok(Already(format!("{to} is named so already")));
            }
            conn.execute(
                "UPDATE served_users SET lname = ?2, name = ?3, records = ?4, updated_at = ?5 WHERE id = ?1",
                params![u.id, lto, to, to_json("served_users.records", records)?, now],
            )?;
            // Named as before: the log's only record of the old name.
            let body = to_json("served_events.body", &user_by_id(conn, u.id)?)?;
            log(conn, now, EventKind::User, EventOp::Updated, &u.name, Some(&body))?;
            Ok(Done)
        }
        ServedChange::UpdateUser {
            user,
            display_name,
            email,
        } => {
            let u = user_in(conn, &user.to_lowercase())?.ok_or_else(|| not_served("user", vec![user.clone()]))?;
            if u.display_name == *display_name && u.email.as_deref() == email_of(email) {
                return Ok(Already(format!("{} has these details already", u.name)));
            }
            let (first, last) = split_name(display_name);
            conn.execute(
                "UPDATE served_users SET display_name = ?2, first_name = ?3, last_name = ?4, email = ?5, \
                 updated_at = ?6 WHERE id = ?1",
                params![u.id, display_name, first, last, email_of(email), now],
            )?;
            log_user(conn, now, EventOp::Updated, &user_by_id(conn, u.id)?)?;
            Ok(Done)
        }
        ServedChange::AddMembers { group, users } => {
            let (gid, g) =
                group_in(conn, &group.to_lowercase())?.ok_or_else(|| not_served("group", vec![group.clone()]))?;
            let mut found = Vec::with_capacity(users.len());
            let mut unknown = Vec::new();
            {
                let mut st = conn.prepare_cached("SELECT id, name FROM served_users WHERE lname = ?1")?;
                for user in users {
                    match st
                        .query_row([user.to_lowercase()], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                        })
                        .optional()?
                    {
                        Some(row) => found.push(row),
                        None => unknown.push(user.clone()),
                    }
                }
            }
            if !unknown.is_empty() {
                return Err(not_served("user", unknown));
            }
            let mut added = 0usize;
            let mut insert =
                conn.prepare_cached("INSERT OR IGNORE INTO served_members (group_id, user_id) VALUES (?1, ?2)")?;
            for (uid, name) in &found {
                if insert.execute(params![gid, uid])? == 1 {
                    log_membership(conn, now, EventOp::Created, name, &[&g.name])?;
                    added += 1;
                }
            }
            if added == 0 {
                return Ok(Already(format!("every user named is in {} already", g.name)));
            }
            Ok(Done)
        }
        ServedChange::RemoveMember { group, user } => {
            let (gid, g) =
                group_in(conn, &group.to_lowercase())?.ok_or_else(|| not_served("group", vec![group.clone()]))?;
            let u = user_in(conn, &user.to_lowercase())?.ok_or_else(|| not_served("user", vec![user.clone()]))?;
            let removed = conn.execute(
                "DELETE FROM served_members WHERE group_id = ?1 AND user_id = ?2",
                params![gid, u.id],
            )?;
            if removed == 0 {
                return Ok(Already(format!("{} is not in {}", u.name, g.name)));
            }
            log_membership(conn, now, EventOp::Deleted, &u.name, &[&g.name])?;
            Ok(Done)
        }
        ServedChange::Deactivate { user, leave } => {
            let u = user_in(conn, &user.to_lowercase())?.ok_or_else(|| not_served("user", vec![user.clone()]))?;
            // A group to leave that the directory does not hold is one the user is not in:
            // nothing to leave, not an error (the engine names the licensing groups it knows).
            let mut left: Vec<String> = Vec::new();
            for group in leave {
                let Some((gid, g)) = group_in(conn, &group.to_lowercase())? else {
                    continue;
                };
                if conn.execute(
                    "DELETE FROM served_members WHERE group_id = ?1 AND user_id = ?2",
                    params![gid, u.id],
                )? == 1
                {
                    left.push(g.name);
                }
            }
            if u.active {
                conn.execute(
                    "UPDATE served_users SET active = 0, updated_at = ?2 WHERE id = ?1",
                    params![u.id, now],
                )?;
                log_user(conn, now, EventOp::Updated, &user_by_id(conn, u.id)?)?;
            } else if left.is_empty() {
                return Ok(Already(format!("{} is inactive and in none of those groups", u.name)));
            }
            if !left.is_empty() {
                let parents: Vec<&str> = left.iter().map(String::as_str).collect();
                log_membership(conn, now, EventOp::Deleted, &u.name, &parents)?;
            }
            Ok(Done)
        }
        ServedChange::DeleteUser { user } => {
            let Some(u) = user_in(conn, &user.to_lowercase())? else {
                return Ok(Already(format!("there is no user {user}")));
            };
            // Its memberships go with it (ON DELETE CASCADE), logged first: whether an
            // application that sees only some groups ever saw the user is told by them.
            let groups: Vec<String> = conn
                .prepare_cached(
                    "SELECT g.name FROM served_members m JOIN served_groups g ON g.id = m.group_id \
                     WHERE m.user_id = ?1 ORDER BY g.lname",
                )?
                .query_map([u.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if !groups.is_empty() {
                let parents: Vec<&str> = groups.iter().map(String::as_str).collect();
                log_membership(conn, now, EventOp::Deleted, &u.name, &parents)?;
            }
            conn.execute("DELETE FROM served_users WHERE id = ?1", [u.id])?;
            log(conn, now, EventKind::User, EventOp::Deleted, &u.name, None)?;
            Ok(Done)
        }
    }
}

fn epoch_in(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT epoch FROM served_meta WHERE id = 1", [], |r| r.get(0))
        .optional()
}

/// The seq of the last event ever written (pruned or not); 0 before the first.
fn last_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'served_events'), 0), \
         COALESCE((SELECT MAX(seq) FROM served_events), 0))",
        [],
        |r| r.get(0),
    )
}

/// "<epoch>.<seq>", or None when malformed.
fn parse_token(token: &str) -> Option<(&str, i64)> {
    let (epoch, seq) = token.split_once('.')?;
    if epoch.is_empty() || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((epoch, seq.parse().ok()?))
}

type RawEvent = (i64, EventKind, EventOp, String, Option<String>);

fn to_event((seq, kind, op, name, body): RawEvent) -> Result<ServedEvent> {
    let mut event = ServedEvent {
        seq,
        kind,
        op,
        name,
        user: None,
        group: None,
        parents: Vec::new(),
    };
    let Some(body) = body else { return Ok(event) };
    match kind {
        EventKind::User => event.user = Some(super::json_col("served_events.body", &body)?),
        EventKind::Group => event.group = Some(super::json_col("served_events.body", &body)?),
        EventKind::UserMembership => event.parents = super::json_col("served_events.body", &body)?,
    }
    Ok(event)
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The lower-cased names of `only_in`, as a JSON list for `json_each`.
fn names_json(names: &[String]) -> Result<String> {
    let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    to_json("served group names", &lower)
}

/// Groups by lname after `after`, at most `limit`; only those named in `only_in` when given.
fn groups_page_in(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
    only_in: Option<&[String]>,
) -> Result<Vec<(i64, ServedGroup)>> {
    // Names are never empty, so "" is before every lname and one statement serves both.
    let after = after.map(str::to_lowercase).unwrap_or_default();
    let rows = match only_in {
        None => conn
            .prepare_cached(GROUPS_PAGE)?
            .query_map(params![after, limit_of(limit)], group_row)?
            .collect::<rusqlite::Result<_>>()?,
        Some(groups) => conn
            .prepare_cached(VISIBLE_GROUPS_PAGE)?
            .query_map(params![after, limit_of(limit), names_json(groups)?], group_row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

impl Store {
    /// The whole served directory, read at one moment.
    pub fn served_state(&self) -> Result<ServedState> {
        let mut conn = self.reader();
        let tx = conn.transaction()?;
        let users = tx
            .prepare(&format!("SELECT {USER_COLUMNS} FROM served_users u ORDER BY u.lname"))?
            .query_map([], user_row)?
            .collect::<rusqlite::Result<_>>()?;
        let groups = tx
            .prepare("SELECT name FROM served_groups ORDER BY lname")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let members = tx
            .prepare(
                "SELECT g.name, u.lname FROM served_members m JOIN served_groups g ON g.id = m.group_id \
                 JOIN served_users u ON u.id = m.user_id ORDER BY g.lname, u.lname",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        tx.finish()?;
        Ok(ServedState { users, groups, members })
    }

    /// Applies one change in one transaction, appending its events (names compared lower-case;
    /// users unknown to a membership change are an error naming them, not a panic).
    pub fn served_apply(&self, change: &ServedChange) -> Result<ServedApplied> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let applied = apply(&tx, change, now_ms())?;
        tx.commit()?;
        Ok(applied)
    }

    /// The token for "now": "<epoch>.<last seq>" (creates the epoch row on first use).
    pub fn served_token(&self) -> Result<String> {
        {
            let mut conn = self.reader();
            let tx = conn.transaction()?;
            if let Some(epoch) = epoch_in(&tx)? {
                let last = last_seq(&tx)?;
                tx.finish()?;
                return Ok(format!("{epoch}.{last}"));
            }
        }
        let mut epoch = [0u8; 8];
        crate::fill_random(&mut epoch, "the served directory's epoch")?;
        let epoch = hex::encode(epoch);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("INSERT OR IGNORE INTO served_meta (id, epoch) VALUES (1, ?1)", [epoch])?;
        let epoch = epoch_in(&tx)?.ok_or_else(|| StoreError::NotFound("the served directory's epoch".into()))?;
        let last = last_seq(&tx)?;
        tx.commit()?;
        Ok(format!("{epoch}.{last}"))
    }

    /// Events after `token`, at most `max` (then the token of the last one given); Expired for a
    /// malformed token, another epoch, or one older than the oldest kept event.
    pub fn served_events_since(&self, token: &str, max: usize) -> Result<EventsSince> {
        let Some((asked_epoch, after)) = parse_token(token) else {
            return Ok(EventsSince::Expired);
        };
        let mut conn = self.reader();
        let tx = conn.transaction()?;
        if epoch_in(&tx)?.as_deref() != Some(asked_epoch) {
            return Ok(EventsSince::Expired);
        }
        let last = last_seq(&tx)?;
        let oldest: Option<i64> = tx.query_row("SELECT MIN(seq) FROM served_events", [], |r| r.get(0))?;
        // Every event after the token must still be kept; a token past the last event was not
        // given by this log (a restored backup, say): both mean "synchronise in full".
        if after > last || after < oldest.unwrap_or(last + 1) - 1 {
            return Ok(EventsSince::Expired);
        }
        let raw: Vec<RawEvent> = tx
            .prepare_cached("SELECT seq, kind, op, name, body FROM served_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?
            .query_map(params![after, limit_of(max)], |r| {
                Ok((r.get(0)?, word(r, 1)?, word(r, 2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        tx.finish()?;
        let events: Vec<ServedEvent> = raw.into_iter().map(to_event).collect::<Result<_>>()?;
        let token = format!("{asked_epoch}.{}", events.last().map_or(after, |e| e.seq));
        Ok(EventsSince::Events { events, token })
    }

    /// Deletes events older than `before_ms` (the log's retention; tokens older become expired).
    pub fn served_prune_events(&self, before_ms: i64) -> Result<usize> {
        // Always a prefix of the log (by seq, even should the clock have stepped back), so a
        // token is either expired or sees every event after it.
        Ok(self.conn().execute(
            "DELETE FROM served_events WHERE seq <= (SELECT MAX(seq) FROM served_events WHERE at < ?1)",
            [before_ms],
        )?)
    }

    /// Users ordered by lname, after `after` (lname, exclusive), at most `limit`: keyset pages for
    /// streaming a full search without holding it in memory. `only_in`: None = all users,
    /// Some(groups) = members of at least one of these groups (an application's visible groups).
    /// An answer read over many pages reads them through [`Store::served_view`] instead.
    pub fn served_users_page(
        &self,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<ServedUser>> {
        users_page_in(&self.reader(), after, limit, only_in)
    }

    /// Groups ordered by lname, keyset-paged like [`Store::served_users_page`]; `only_in`:
    /// None = all groups, Some(groups) = only those of them that exist.
    pub fn served_groups_page(
        &self,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<ServedGroup>> {
        let conn = self.reader();
        Ok(groups_page_in(&conn, after, limit, only_in)?
            .into_iter()
            .map(|(_, g)| g)
            .collect())
    }

    /// The user named `name`, in any case.
    pub fn served_user(&self, name: &str) -> Result<Option<ServedUser>> {
        Ok(user_in(&self.reader(), &name.to_lowercase())?)
    }

    /// The user whose key is `external_id` (exact).
    pub fn served_user_by_key(&self, external_id: &str) -> Result<Option<ServedUser>> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM served_users u WHERE u.external_id = ?1"
            ))?
            .query_row([external_id], user_row)
            .optional()?)
    }

    /// The group named `name`, in any case.
    pub fn served_group(&self, name: &str) -> Result<Option<ServedGroup>> {
        Ok(group_in(&self.reader(), &name.to_lowercase())?.map(|(_, g)| g))
    }

    /// The groups `user` is in, by lname (memberships are flat: direct = all); none for an
    /// unknown user.
    pub fn served_user_groups(&self, user: &str) -> Result<Vec<String>> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT g.name FROM served_users u JOIN served_members m ON m.user_id = u.id \
                 JOIN served_groups g ON g.id = m.group_id WHERE u.lname = ?1 ORDER BY g.lname",
            )?
            .query_map([user.to_lowercase()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The names of the users in `group`, by lname; none for an unknown group.
    pub fn served_group_users(&self, group: &str) -> Result<Vec<String>> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT u.name FROM served_groups g JOIN served_members m ON m.group_id = g.id \
                 JOIN served_users u ON u.id = m.user_id WHERE g.lname = ?1 ORDER BY u.lname",
            )?
            .query_map([group.to_lowercase()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Groups with their member names, ordered by lname, keyset-paged like served_users_page.
    pub fn served_memberships_page(
        &self,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<(String, Vec<String>)>> {
        let mut conn = self.reader();
        let tx = conn.transaction()?;
        let page = memberships_page_in(&tx, after, limit, only_in)?;
        tx.finish()?;
        Ok(page)
    }

    /// Runs `read` on the served directory as of one moment. An answer streamed page by page
    /// over seconds (a full search, the membership document) reads its pages here: between
    /// separate reads a rename would move a user behind the pages already sent and ahead of
    /// none, and a client deletes whom a full answer lacks. The view is a connection of its own
    /// (the pooled readers stay free for short queries however slow the client) with one read
    /// transaction, which writers do not wait for.
    pub fn served_view<R>(&self, read: impl FnOnce(&ServedView<'_>) -> R) -> Result<R> {
        let Some(path) = &self.path else {
            // An in-memory store (tests) has no file to open again: a pooled reader serves.
            let mut conn = self.reader();
            let tx = conn.transaction()?;
            let out = read(&ServedView { conn: &tx });
            tx.finish()?;
            return Ok(out);
        };
        let mut conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let tx = conn.transaction()?;
        // A deferred transaction takes its snapshot at its first read: take it now.
        tx.query_row("SELECT COUNT(*) FROM served_meta", [], |_| Ok(()))?;
        let out = read(&ServedView { conn: &tx });
        tx.finish()?;
        Ok(out)
    }
}

/// The served directory as of one moment ([`Store::served_view`]).
pub struct ServedView<'c> {
    conn: &'c Connection,
}

impl ServedView<'_> {
    /// As [`Store::served_users_page`], in this view.
    pub fn users_page(&self, after: Option<&str>, limit: usize, only_in: Option<&[String]>) -> Result<Vec<ServedUser>> {
        users_page_in(self.conn, after, limit, only_in)
    }

    /// As [`Store::served_groups_page`], in this view.
    pub fn groups_page(
        &self,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<ServedGroup>> {
        Ok(groups_page_in(self.conn, after, limit, only_in)?
            .into_iter()
            .map(|(_, g)| g)
            .collect())
    }

    /// As [`Store::served_memberships_page`], in this view.
    pub fn memberships_page(
        &self,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<(String, Vec<String>)>> {
        memberships_page_in(self.conn, after, limit, only_in)
    }
}

fn users_page_in(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
    only_in: Option<&[String]>,
) -> Result<Vec<ServedUser>> {
    let after = after.map(str::to_lowercase).unwrap_or_default();
    let rows = match only_in {
        None => conn
            .prepare_cached(USERS_PAGE)?
            .query_map(params![after, limit_of(limit)], user_row)?
            .collect::<rusqlite::Result<_>>()?,
        Some(groups) => conn
            .prepare_cached(VISIBLE_USERS_PAGE)?
            .query_map(params![after, limit_of(limit), names_json(groups)?], user_row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

fn memberships_page_in(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
    only_in: Option<&[String]>,
) -> Result<Vec<(String, Vec<String>)>> {
    let groups = groups_page_in(conn, after, limit, only_in)?;
    let mut page = Vec::with_capacity(groups.len());
    let mut st = conn.prepare_cached(MEMBERS_OF)?;
    for (id, g) in groups {
        let members = st.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        page.push((g.name, members));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn store() -> Store {
        Store::memory(Key::from_bytes([7; 32])).unwrap()
    }

    fn apply(s: &Store, change: ServedChange) -> ServedApplied {
        s.served_apply(&change).unwrap()
    }

    fn group(name: &str) -> ServedChange {
        ServedChange::CreateGroup { group: name.into() }
    }

    fn user(name: &str, display: &str) -> ServedChange {
        ServedChange::CreateUser {
            user: name.into(),
            display_name: display.into(),
            email: format!("{}@example.com", name.to_lowercase()),
            records: vec![("hr".into(), name.to_lowercase())],
        }
    }

    fn add(g: &str, users: &[&str]) -> ServedChange {
        ServedChange::AddMembers {
            group: g.into(),
            users: users.iter().map(|u| u.to_string()).collect(),
        }
    }

    /// Every event in the log, read from the start of its epoch.
    fn all_events(s: &Store) -> Vec<ServedEvent> {
        let epoch = s.served_token().unwrap().split_once('.').unwrap().0.to_string();
        match s.served_events_since(&format!("{epoch}.0"), usize::MAX).unwrap() {
            EventsSince::Events { events, .. } => events,
            EventsSince::Expired => panic!("the log from 0 expired"),
        }
    }

    /// (kind, op, name, parents) of each event: what a client following the log acts on.
    fn summary(events: &[ServedEvent]) -> Vec<(&'static str, &'static str, String, Vec<String>)> {
        events
            .iter()
            .map(|e| (e.kind.as_str(), e.op.as_str(), e.name.clone(), e.parents.clone()))
            .collect()
    }

    fn ev(
        kind: &'static str,
        op: &'static str,
        name: &str,
        parents: &[&str],
    ) -> (&'static str, &'static str, String, Vec<String>) {
        (
            kind,
            op,
            name.to_string(),
            parents.iter().map(|p| p.to_string()).collect(),
        )
    }

    fn names(users: &[ServedUser]) -> Vec<&str> {
        users.iter().map(|u| u.name.as_str()).collect()
    }

    #[test]
    fn a_view_reads_every_page_as_of_one_moment_while_a_rename_lands_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("roster.db"), Key::from_bytes([7; 32])).unwrap();
        for name in ["amy", "bob", "cat", "zed"] {
            apply(&s, user(name, name));
        }
        apply(&s, group("dev"));
        apply(&s, add("dev", &["amy", "zed"]));
        let (users, members) = s
            .served_view(|v| {
                let first = v.users_page(None, 2, None).unwrap();
                // Between the pages, zed becomes aaa: ahead of the pages read already. Read page
                // by page outside a view, zed would be in neither half.
                apply(
                    &s,
                    ServedChange::RenameUser {
                        from: "zed".into(),
                        to: "aaa".into(),
                        records: vec![],
                    },
                );
                let rest = v.users_page(Some("bob"), 10, None).unwrap();
                let members = v.memberships_page(None, 10, None).unwrap();
                (
                    first.into_iter().chain(rest).map(|u| u.name).collect::<Vec<_>>(),
                    members,
                )
            })
            .unwrap();
        assert_eq!(users, ["amy", "bob", "cat", "zed"]);
        assert_eq!(
            members,
            [("dev".to_string(), vec!["amy".to_string(), "zed".to_string()])]
        );
        // After the view, the rename shows.
        let now: Vec<String> = s
            .served_users_page(None, 10, None)
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(now, ["aaa", "amy", "bob", "cat"]);
    }

    #[test]
    fn a_sequence_of_changes_leaves_the_state_and_logs_its_events_in_order() {
        let s = store();
        assert_eq!(apply(&s, group("bitbucket-users")), ServedApplied::Done);
        assert_eq!(apply(&s, group("devs")), ServedApplied::Done);
        assert_eq!(apply(&s, user("Ann", "Ann Lee Smith")), ServedApplied::Done);
        assert_eq!(apply(&s, user("bob", "Bob")), ServedApplied::Done);
        assert_eq!(apply(&s, add("Bitbucket-Users", &["ann", "BOB"])), ServedApplied::Done);
        assert_eq!(apply(&s, add("devs", &["ann", "bob"])), ServedApplied::Done);

        let ann = s.served_user("ANN").unwrap().unwrap();
        assert_eq!((ann.first_name.as_str(), ann.last_name.as_str()), ("Ann", "Lee Smith"));
        let bob = s.served_user("bob").unwrap().unwrap();
        assert_eq!((bob.first_name.as_str(), bob.last_name.as_str()), ("Bob", ""));
        assert_eq!(bob.email.as_deref(), Some("bob@example.com"));
        assert!(bob.active);

        // A rename keeps the key, so a client following <key> renames rather than recreates.
        let renamed = ServedChange::RenameUser {
            from: "ann".into(),
            to: "ann.smith".into(),
            records: vec![("hr".into(), "ann".into())],
        };
        assert_eq!(apply(&s, renamed.clone()), ServedApplied::Done);
        assert!(
            matches!(apply(&s, renamed), ServedApplied::Already(_)),
            "a repeated rename does nothing"
        );
        let after = s.served_user("ann.smith").unwrap().unwrap();
        assert_eq!(after.external_id, ann.external_id);
        assert_eq!(after.id, ann.id);
        assert!(s.served_user("ann").unwrap().is_none());
        assert_eq!(
            s.served_user_by_key(&ann.external_id).unwrap().unwrap().name,
            "ann.smith"
        );
        assert_eq!(s.served_user_groups("Ann.Smith").unwrap(), ["bitbucket-users", "devs"]);

        assert_eq!(
            apply(
                &s,
                ServedChange::UpdateUser {
                    user: "BOB".into(),
                    display_name: "Bob Jones".into(),
                    email: String::new(),
                }
            ),
            ServedApplied::Done
        );
        let bob = s.served_user("bob").unwrap().unwrap();
        assert_eq!((bob.last_name.as_str(), bob.email), ("Jones", None));

        // Deactivating leaves the licensing group but keeps the others.
        let deactivate = ServedChange::Deactivate {
            user: "bob".into(),
            leave: vec!["bitbucket-users".into(), "no-such-group".into()],
        };
        assert_eq!(apply(&s, deactivate.clone()), ServedApplied::Done);
        assert!(matches!(apply(&s, deactivate), ServedApplied::Already(_)));
        assert!(!s.served_user("bob").unwrap().unwrap().active);

        assert_eq!(
            apply(&s, ServedChange::DeleteGroup { group: "DEVS".into() }),
            ServedApplied::Done
        );
        assert_eq!(
            apply(
                &s,
                ServedChange::RemoveMember {
                    group: "bitbucket-users".into(),
                    user: "ann.smith".into()
                }
            ),
            ServedApplied::Done
        );
        assert_eq!(
            apply(&s, ServedChange::DeleteUser { user: "Bob".into() }),
            ServedApplied::Done
        );

        let state = s.served_state().unwrap();
        assert_eq!(names(&state.users), ["ann.smith"]);
        assert_eq!(state.groups, ["bitbucket-users"]);
        assert!(state.members.is_empty(), "{:?}", state.members);
        assert!(s.served_group("devs").unwrap().is_none());

        let events = all_events(&s);
        assert_eq!(
            summary(&events),
            [
                ev("group", "CREATED", "bitbucket-users", &[]),
                ev("group", "CREATED", "devs", &[]),
                ev("user", "CREATED", "Ann", &[]),
                ev("user", "CREATED", "bob", &[]),
                ev("user-membership", "CREATED", "Ann", &["bitbucket-users"]),
                ev("user-membership", "CREATED", "bob", &["bitbucket-users"]),
                ev("user-membership", "CREATED", "Ann", &["devs"]),
                ev("user-membership", "CREATED", "bob", &["devs"]),
                ev("user", "UPDATED", "Ann", &[]),
                ev("user", "UPDATED", "bob", &[]),
                ev("user", "UPDATED", "bob", &[]),
                ev("user-membership", "DELETED", "bob", &["bitbucket-users"]),
                // A group's members leave it before it goes.
                ev("user-membership", "DELETED", "ann.smith", &["devs"]),
                ev("user-membership", "DELETED", "bob", &["devs"]),
                ev("group", "DELETED", "devs", &[]),
                ev("user-membership", "DELETED", "ann.smith", &["bitbucket-users"]),
                ev("user", "DELETED", "bob", &[]),
            ]
        );
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        // Bodies: the user as it was then.
        assert_eq!(events[2].user.as_ref().unwrap().display_name, "Ann Lee Smith");
        assert_eq!(events[8].user.as_ref().unwrap().external_id, ann.external_id);
        assert_eq!(events[8].user.as_ref().unwrap().name, "ann.smith");
        assert!(
            !events[10].user.as_ref().unwrap().active,
            "the deactivation's UPDATED says inactive"
        );
        assert_eq!(events[0].group.as_ref().unwrap().name, "bitbucket-users");
        assert!(events[16].user.is_none());
    }

    #[test]
    fn repeated_changes_do_nothing_say_why_and_log_nothing() {
        let s = store();
        apply(&s, group("g"));
        apply(&s, user("ann", "Ann"));
        apply(&s, add("g", &["ann"]));
        let before = s.served_token().unwrap();
        for (change, why) in [
            (group("G"), "group g exists"),
            (user("ANN", "Ann"), "user ann exists"),
            (add("g", &["Ann", "ann"]), "every user named is in g already"),
            (
                ServedChange::UpdateUser {
                    user: "ann".into(),
                    display_name: "Ann".into(),
                    email: "ann@example.com".into(),
                },
                "ann has these details already",
            ),
            (
                ServedChange::DeleteUser { user: "carl".into() },
                "there is no user carl",
            ),
            (ServedChange::DeleteGroup { group: "h".into() }, "there is no group h"),
        ] {
            assert_eq!(apply(&s, change), ServedApplied::Already(why.into()));
        }
        assert_eq!(s.served_token().unwrap(), before, "nothing was logged");
        let remove = ServedChange::RemoveMember {
            group: "G".into(),
            user: "ANN".into(),
        };
        assert_eq!(apply(&s, remove.clone()), ServedApplied::Done);
        assert_eq!(apply(&s, remove), ServedApplied::Already("ann is not in g".into()));
    }

    #[test]
    fn a_membership_change_naming_an_unknown_user_or_group_is_an_error_naming_them() {
        let s = store();
        apply(&s, group("g"));
        apply(&s, user("ann", "Ann"));
        let before = s.served_token().unwrap();

        let err = s.served_apply(&add("g", &["ann", "zed", "Yan"])).unwrap_err();
        assert!(
            matches!(&err, StoreError::NotServed { kind: "user", names } if names == &["zed", "Yan"]),
            "{err:?}"
        );
        assert!(err.to_string().contains("'zed', 'Yan'"), "{err}");
        assert!(
            s.served_group_users("g").unwrap().is_empty(),
            "nothing of a refused change is written"
        );

        let err = s.served_apply(&add("nope", &["ann"])).unwrap_err();
        assert!(err.to_string().contains("no group named 'nope'"), "{err}");
        let err = s
            .served_apply(&ServedChange::RemoveMember {
                group: "g".into(),
                user: "zed".into(),
            })
            .unwrap_err();
        assert!(err.to_string().contains("no user named 'zed'"), "{err}");
        let err = s
            .served_apply(&ServedChange::Deactivate {
                user: "zed".into(),
                leave: vec![],
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::NotServed { kind: "user", .. }), "{err:?}");
        let err = s
            .served_apply(&ServedChange::RenameUser {
                from: "zed".into(),
                to: "zed2".into(),
                records: vec![],
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::NotServed { .. }), "{err:?}");

        assert_eq!(s.served_token().unwrap(), before, "no event for refused changes");
    }

    #[test]
    fn a_rename_onto_another_users_name_is_refused() {
        let s = store();
        apply(&s, user("ann", "Ann"));
        apply(&s, user("bob", "Bob"));
        let err = s
            .served_apply(&ServedChange::RenameUser {
                from: "ann".into(),
                to: "BOB".into(),
                records: vec![],
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        // A change of case only is a rename of the same user.
        assert_eq!(
            apply(
                &s,
                ServedChange::RenameUser {
                    from: "ann".into(),
                    to: "Ann".into(),
                    records: vec![]
                }
            ),
            ServedApplied::Done
        );
        assert_eq!(s.served_user("ANN").unwrap().unwrap().name, "Ann");
    }

    #[test]
    fn a_deactivated_user_created_again_comes_back_with_its_key() {
        let s = store();
        apply(&s, user("ann", "Ann"));
        let key = s.served_user("ann").unwrap().unwrap().external_id;
        apply(
            &s,
            ServedChange::Deactivate {
                user: "ann".into(),
                leave: vec![],
            },
        );
        assert_eq!(apply(&s, user("Ann", "Ann Lee")), ServedApplied::Done);
        let ann = s.served_user("ann").unwrap().unwrap();
        assert!(ann.active);
        assert_eq!((ann.external_id, ann.last_name.as_str()), (key, "Lee"));
        let last = all_events(&s).pop().unwrap();
        assert_eq!((last.kind, last.op), (EventKind::User, EventOp::Updated));
    }

    #[test]
    fn a_thousand_members_are_added_in_one_change_with_one_event_each() {
        let s = store();
        apply(&s, group("bitbucket-users"));
        {
            // Users written directly: this test is about the membership change, not 1,000 creates.
            let conn = s.conn();
            let mut st = conn
                .prepare(
                    "INSERT INTO served_users (lname, name, external_id, display_name, first_name, last_name, \
                     email, active, records, created_at, updated_at) VALUES (?1, ?1, ?1, ?1, ?1, '', NULL, 1, '[]', 0, 0)",
                )
                .unwrap();
            for i in 0..1000 {
                st.execute([format!("u{i:04}")]).unwrap();
            }
        }
        let users: Vec<String> = (0..1000).map(|i| format!("U{i:04}")).collect();
        let start = s.served_token().unwrap();
        let change = ServedChange::AddMembers {
            group: "bitbucket-users".into(),
            users,
        };
        assert_eq!(s.served_apply(&change).unwrap(), ServedApplied::Done);
        assert_eq!(s.served_group_users("bitbucket-users").unwrap().len(), 1000);
        let EventsSince::Events { events, .. } = s.served_events_since(&start, 5000).unwrap() else {
            panic!("expired")
        };
        assert_eq!(events.len(), 1000);
        assert!(
            events
                .iter()
                .all(|e| e.kind == EventKind::UserMembership && e.parents == ["bitbucket-users"])
        );
        assert_eq!(events[0].name, "u0000");
    }

    #[test]
    fn a_token_gives_the_events_after_it_in_batches_until_it_expires() {
        let s = store();
        let t0 = s.served_token().unwrap();
        let (epoch, seq) = t0.split_once('.').unwrap();
        assert_eq!(seq, "0");
        assert_eq!(s.served_token().unwrap(), t0, "the epoch is made once");
        assert_eq!(
            s.served_events_since(&t0, 10).unwrap(),
            EventsSince::Events {
                events: vec![],
                token: t0.clone()
            }
        );

        for g in ["a", "b", "c"] {
            apply(&s, group(g));
        }
        let EventsSince::Events { events, token: t2 } = s.served_events_since(&t0, 2).unwrap() else {
            panic!("expired")
        };
        assert_eq!(events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(t2, format!("{epoch}.{}", events[1].seq));
        let EventsSince::Events { events, token: t3 } = s.served_events_since(&t2, 2).unwrap() else {
            panic!("expired")
        };
        assert_eq!(events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(t3, s.served_token().unwrap(), "the last batch ends at now");
        assert_eq!(
            s.served_events_since(&t3, 2).unwrap(),
            EventsSince::Events {
                events: vec![],
                token: t3.clone()
            }
        );

        // Malformed, another epoch, or ahead of the log: the client must synchronise in full.
        for bad in [
            "",
            "abc",
            ".1",
            &format!("{epoch}."),
            &format!("{epoch}.-1"),
            &format!("{epoch}.x"),
            "0000.0",
        ] {
            assert_eq!(s.served_events_since(bad, 10).unwrap(), EventsSince::Expired, "{bad:?}");
        }
        assert_eq!(
            s.served_events_since(&format!("{epoch}.999"), 10).unwrap(),
            EventsSince::Expired
        );

        // Pruning what is older than the retention expires the tokens before it, not after.
        let cut = now_ms() + 1;
        s.conn()
            .execute("UPDATE served_events SET at = at - 1000 WHERE name IN ('a', 'b')", [])
            .unwrap();
        assert_eq!(s.served_prune_events(cut - 500).unwrap(), 2);
        assert_eq!(s.served_events_since(&t0, 10).unwrap(), EventsSince::Expired);
        assert!(
            matches!(s.served_events_since(&t2, 10).unwrap(), EventsSince::Events { events, .. } if events.len() == 1)
        );
        assert_eq!(s.served_prune_events(cut + 1000).unwrap(), 1);
        assert_eq!(s.served_events_since(&t2, 10).unwrap(), EventsSince::Expired);
        // With every event pruned, the token for now still works, and sees what comes next.
        let now = s.served_token().unwrap();
        assert_eq!(now, t3);
        apply(&s, group("d"));
        assert!(
            matches!(s.served_events_since(&now, 10).unwrap(), EventsSince::Events { events, .. } if events[0].name == "d")
        );
    }

    #[test]
    fn a_token_of_another_epoch_is_expired() {
        // A file database: tokens and events are read through the reader connections.
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("r.db"), Key::from_bytes([7; 32])).unwrap();
        apply(&s, group("a"));
        let token = s.served_token().unwrap();
        // The log was reset (its epoch made anew): old tokens mean nothing any more.
        s.conn().execute("DELETE FROM served_meta", []).unwrap();
        let fresh = s.served_token().unwrap();
        assert_ne!(fresh, token);
        assert_eq!(s.served_events_since(&token, 10).unwrap(), EventsSince::Expired);
        assert!(matches!(
            s.served_events_since(&fresh, 10).unwrap(),
            EventsSince::Events { .. }
        ));
    }

    /// A directory for the page tests: u00..u09, "g-even" holding the even ones, "g-3" holding
    /// u03 and u06 (u06 in both), "empty" with none.
    fn directory() -> Store {
        let s = store();
        for g in ["g-even", "g-3", "empty"] {
            apply(&s, group(g));
        }
        for i in 0..10 {
            apply(&s, user(&format!("U{i:02}"), "X"));
        }
        apply(&s, add("g-even", &["u00", "u02", "u04", "u06", "u08"]));
        apply(&s, add("g-3", &["u03", "u06"]));
        s
    }

    /// Every page of `page` from the start, `size` at a time, as names.
    fn walk<T>(size: usize, page: impl Fn(Option<&str>) -> Vec<T>, name: impl Fn(&T) -> String) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let got: Vec<String> = page(after.as_deref()).iter().map(&name).collect();
            if got.is_empty() {
                return pages;
            }
            assert!(got.len() <= size);
            after = got.last().cloned();
            pages.push(got);
        }
    }

    #[test]
    fn users_are_paged_by_name_all_or_only_those_in_visible_groups() {
        let s = directory();
        let all = walk(4, |a| s.served_users_page(a, 4, None).unwrap(), |u| u.name.clone());
        assert_eq!(
            all,
            [
                vec!["U00", "U01", "U02", "U03"],
                vec!["U04", "U05", "U06", "U07"],
                vec!["U08", "U09"]
            ]
        );
        // `after` is compared in any case.
        assert_eq!(
            names(&s.served_users_page(Some("U07"), 10, None).unwrap()),
            ["U08", "U09"]
        );

        let visible = vec!["G-3".to_string(), "g-even".to_string(), "unknown".to_string()];
        let seen = walk(
            3,
            |a| s.served_users_page(a, 3, Some(&visible)).unwrap(),
            |u| u.name.clone(),
        );
        assert_eq!(
            seen,
            [vec!["U00", "U02", "U03"], vec!["U04", "U06", "U08"]],
            "U06, in both groups, comes once"
        );
        let only3 = vec!["g-3".to_string()];
        assert_eq!(
            names(&s.served_users_page(None, 10, Some(&only3)).unwrap()),
            ["U03", "U06"]
        );
        assert!(s.served_users_page(None, 10, Some(&[])).unwrap().is_empty());
        assert!(
            s.served_users_page(None, 10, Some(&["empty".to_string()]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn groups_and_memberships_are_paged_all_or_only_the_visible_ones() {
        let s = directory();
        let groups = walk(2, |a| s.served_groups_page(a, 2, None).unwrap(), |g| g.name.clone());
        assert_eq!(groups, [vec!["empty", "g-3"], vec!["g-even"]]);
        let visible = vec!["G-EVEN".to_string(), "empty".to_string(), "nope".to_string()];
        let seen = walk(
            5,
            |a| s.served_groups_page(a, 5, Some(&visible)).unwrap(),
            |g| g.name.clone(),
        );
        assert_eq!(seen, [vec!["empty", "g-even"]]);

        let page = s.served_memberships_page(None, 2, None).unwrap();
        assert_eq!(
            page,
            [
                ("empty".to_string(), vec![]),
                ("g-3".to_string(), vec!["U03".to_string(), "U06".to_string()])
            ]
        );
        let next = s.served_memberships_page(Some("g-3"), 2, None).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1, ["U00", "U02", "U04", "U06", "U08"]);
        let only = s.served_memberships_page(None, 10, Some(&["g-3".to_string()])).unwrap();
        assert_eq!(only, [("g-3".to_string(), vec!["U03".to_string(), "U06".to_string()])]);
    }

    /// 100k users are read in 1,000-row pages: each page must walk an index from where the last
    /// one stopped, never scan or sort the whole table.
    #[test]
    fn pages_walk_indexes_and_never_sort() {
        let s = directory();
        let conn = s.conn();
        let plan = |sql: &str| -> String {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let n = st.parameter_count();
            let args: Vec<rusqlite::types::Value> = ["", "1000", "[\"g-3\"]"][..n]
                .iter()
                .map(|a| rusqlite::types::Value::Text(a.to_string()))
                .collect();
            let rows: Vec<String> = st
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            rows.join("\n")
        };
        for (what, sql) in [
            ("users", USERS_PAGE),
            ("visible users", VISIBLE_USERS_PAGE),
            ("groups", GROUPS_PAGE),
            ("visible groups", VISIBLE_GROUPS_PAGE),
        ] {
            let plan = plan(sql);
            assert!(plan.contains("USING INDEX sqlite_autoindex_served_"), "{what}: {plan}");
            assert!(!plan.contains("TEMP B-TREE FOR ORDER BY"), "{what}: {plan}");
            assert!(!plan.contains("SCAN m"), "{what}: {plan}");
        }
        let visible = plan(VISIBLE_USERS_PAGE);
        assert!(visible.contains("SEARCH m USING"), "{visible}");
        let members = plan(MEMBERS_OF);
        assert!(members.contains("SEARCH m USING PRIMARY KEY (group_id=?)"), "{members}");
        assert!(members.contains("SEARCH u USING INTEGER PRIMARY KEY"), "{members}");
    }
}
