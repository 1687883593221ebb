//! What identity providers push (SCIM, issue 17): `scim_resources` (each pushed User and Group
//! as JSON, with the id Roster gave it, its unique name and a version for ETags) and
//! `scim_tokens` (one or more bearer tokens per push source, hashed).
//!
//! A group's members are not kept in its body: they are the source's `mirror_memberships`
//! rows, so there is one record of who is in which group. Every write is one transaction that
//! also writes the source's mirror rows — durable before the identity provider gets its answer,
//! committed with `synchronous=FULL` (`Store::durable_conn`) so a power loss cannot take back
//! what was answered — and the writer connection is held from the read of the resource to its
//! write, so two PATCHes of one group never lose each other's change.

use super::tokens::{hash, mint};
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::{MirrorGroup, MirrorUser, Result, Store, StoreError, json_col, now_ms};

/// The kind of a pushed resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ScimKind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl ScimKind {
    /// The resource type's name (`User`, `Group`), as stored and as in `meta.resourceType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimKind::User => "User",
            ScimKind::Group => "Group",
        }
    }

    fn parse(s: &str) -> Option<ScimKind> {
        match s {
            "User" => Some(ScimKind::User),
            "Group" => Some(ScimKind::Group),
            _ => None,
        }
    }
}

/// A group member: the id of a resource of the same source, and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ScimMember {
    /// The member's id.
    pub value: String,
    /// User, or Group (nesting).
    pub kind: ScimKind,
    /// The `display` the identity provider sent with it, if any.
    pub display: Option<String>,
}

/// A member as a write names it: an id of the source's resources, and the `display` sent
/// with it (kept, and given back, as RFC 7643 has `display` a readWrite attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's id.
    pub value: String,
    /// Its `display`.
    pub display: Option<String>,
}

/// A pushed resource as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScimResource {
    /// User or Group.
    pub kind: ScimKind,
    /// Roster's id for it.
    pub id: String,
    /// The identity provider's id for it.
    pub external_id: Option<String>,
    /// The body, without `members` and `meta`.
    pub body: Value,
    /// Bumped by every write (`meta.version`).
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub modified_at: i64,
    /// A group's members, when asked for ([`Members::Include`]); empty otherwise.
    pub members: Vec<ScimMember>,
}

/// Whether a read loads a group's members (a list that excludes them need not read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// Read them.
    Include,
    /// Leave them out.
    Omit,
}

/// How to find one resource through an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimLookup {
    /// By Roster's id.
    Id(String),
    /// By `externalId` (exact).
    ExternalId(String),
    /// By `userName` / `displayName` (any case).
    Name(String),
}

/// The mirror record a write of a resource leaves (mapped by `roster_scim::resource`).
#[derive(Debug, Clone, PartialEq)]
pub enum Mirrored {
    /// A user's row.
    User(MirrorUser),
    /// A group's row.
    Group(MirrorGroup),
}

/// What a create or a replacement writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimWrite {
    /// `externalId`.
    pub external_id: Option<String>,
    /// `userName` or `displayName`, unique per source and kind in any case.
    pub name: String,
    /// The body, without `members` and `meta`.
    pub body: Value,
    /// The mirror row.
    pub mirror: Mirrored,
    /// A group's members; ignored for a user.
    pub members: Vec<MemberRef>,
}

/// One step of a PATCH that touches only a group's members: written as row inserts and
/// deletes, never as a rewrite of every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    /// Adds these members (already there: kept).
    Add(Vec<MemberRef>),
    /// Removes these members (absent: accepted, as identity providers expect).
    Remove(Vec<String>),
    /// Removes every member.
    RemoveAll,
}

/// Why a SCIM write was refused (or failed).
#[derive(Debug, thiserror::Error)]
pub enum ScimWriteError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such resource.
    #[error("no {kind} with id '{id}' in this source", kind = kind.as_str())]
    NotFound {
        /// Its kind.
        kind: ScimKind,
        /// The id asked for.
        id: String,
    },
    /// The name is taken by another resource of the source.
    #[error("the {kind} name '{name}' is taken by the {kind} with id '{holder}'; names are unique in any case", kind = kind.as_str())]
    Taken {
        /// Its kind.
        kind: ScimKind,
        /// The name.
        name: String,
        /// The resource holding it.
        holder: String,
    },
    /// `If-Match` named another version.
    #[error("the resource is at version W/\"{current}\", not the one If-Match names; read it again and retry")]
    VersionMismatch {
        /// The version now.
        current: i64,
    },
    /// A group would contain itself, directly or through the groups in it.
    #[error(
        "group '{group}' cannot be a member of itself, directly or through the groups it contains; remove the member '{member}'"
    )]
    OwnMember {
        /// The group.
        group: String,
        /// The member that would close the loop.
        member: String,
    },
    /// A member names no resource of the source.
    #[error(
        "member '{value}' is no user or group of this source; members are ids Roster gave when the user or group was created"
    )]
    UnknownMember {
        /// The value sent.
        value: String,
    },
}

impl From<rusqlite::Error> for ScimWriteError {
    fn from(e: rusqlite::Error) -> Self {
        ScimWriteError::Store(e.into())
    }
}

/// What [`Store::scim_prune_unbacked`] dropped from a push source's mirror.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// User rows.
    pub users: usize,
    /// Group rows.
    pub groups: usize,
    /// Membership rows.
    pub memberships: usize,
}

impl Pruned {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        *self == Pruned::default()
    }
}

/// A pushing source's token as listed (never its value).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScimTokenRow {
    /// Id (for revoking).
    pub id: i64,
    /// The source it pushes to.
    pub source: String,
    /// Who or what it is for.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Unix ms of its last use.
    pub last_used_at: Option<i64>,
    /// Unix ms of its revocation.
    pub revoked_at: Option<i64>,
}

/// A new resource id: a random (version 4) UUID, the form identity providers expect.
pub fn new_scim_id() -> Result<String> {
    crate::new_uuid("a SCIM id")
}

const RESOURCE_COLUMNS: &str = "kind, id, external_id, body, version, created_at, modified_at";

/// A row of `scim_resources` as read: kind, id, external_id, body, version, created_at,
/// modified_at.
type RawResource = (String, String, Option<String>, String, i64, i64, i64);

/// A row of `scim_resources` as read, before its members.
fn resource_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawResource> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_resource((kind, id, external_id, body, version, created_at, modified_at): RawResource) -> Result<ScimResource> {
    let kind = ScimKind::parse(&kind).ok_or_else(|| StoreError::Json {
        what: "scim_resources.kind",
        detail: format!("unknown kind '{kind}'"),
    })?;
    Ok(ScimResource {
        kind,
        id,
        external_id,
        body: json_col("scim_resources.body", &body)?,
        version,
        created_at,
        modified_at,
        members: Vec::new(),
    })
}

fn members_of(conn: &rusqlite::Connection, source: &str, group: &str) -> rusqlite::Result<Vec<ScimMember>> {
    let mut st = conn.prepare_cached(
        "SELECT member_id, member_is_group, display FROM mirror_memberships WHERE source = ?1 AND group_id = ?2 ORDER BY member_id",
    )?;
    let rows = st.query_map(params![source, group], |r| {
        Ok(ScimMember {
            value: r.get(0)?,
            kind: if r.get::<_, bool>(1)? {
                ScimKind::Group
            } else {
                ScimKind::User
            },
            display: r.get(2)?,
        })
    })?;
    rows.collect()
}

fn get_in(conn: &rusqlite::Connection, source: &str, kind: ScimKind, id: &str) -> Result<Option<ScimResource>> {
    let row = conn
        .query_row(
            &format!("SELECT {RESOURCE_COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 AND id = ?3"),
            params![source, kind.as_str(), id],
            resource_row,
        )
        .optional()?;
    row.map(to_resource).transpose()
}

/// The version a write may proceed from: refuses when `expect` names another.
fn check_version(current: i64, expect: Option<i64>) -> std::result::Result<(), ScimWriteError> {
    match expect {
        Some(v) if v != current => Err(ScimWriteError::VersionMismatch { current }),
        _ => Ok(()),
    }
}

/// Refuses a name another resource of the source and kind holds.
fn check_name(
    tx: &Transaction<'_>,
    source: &str,
    kind: ScimKind,
    id: &str,
    name: &str,
) -> std::result::Result<(), ScimWriteError> {
    let holder: Option<String> = tx
        .query_row(
            "SELECT id FROM scim_resources WHERE source = ?1 AND kind = ?2 AND name_key = ?3 AND id <> ?4",
            params![source, kind.as_str(), name.to_lowercase(), id],
            |r| r.get(0),
        )
        .optional()?;
    match holder {
        Some(holder) => Err(ScimWriteError::Taken {
            kind,
            name: name.to_string(),
            holder,
        }),
        None => Ok(()),
    }
}

/// The kind of the resource `value` names in the source, or the refusal naming it.
fn member_kind(tx: &Transaction<'_>, source: &str, value: &str) -> std::result::Result<ScimKind, ScimWriteError> {
    let kind: Option<String> = tx
        .prepare_cached("SELECT kind FROM scim_resources WHERE source = ?1 AND id = ?2")?
        .query_row(params![source, value], |r| r.get(0))
        .optional()?;
    kind.as_deref()
        .and_then(ScimKind::parse)
        .ok_or_else(|| ScimWriteError::UnknownMember {
            value: value.to_string(),
        })
}

fn add_member(
    tx: &Transaction<'_>,
    source: &str,
    group: &str,
    m: &MemberRef,
) -> std::result::Result<(), ScimWriteError> {
    let kind = member_kind(tx, source, &m.value)?;
    if kind == ScimKind::Group && contains(tx, source, &m.value, group)? {
        return Err(ScimWriteError::OwnMember {
            group: group.to_string(),
            member: m.value.clone(),
        });
    }
    // A member added again keeps its row; only a new `display` is written.
    tx.prepare_cached(
        "INSERT INTO mirror_memberships (source, group_id, member_id, member_is_group, display) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET display = excluded.display WHERE excluded.display IS NOT NULL",
    )?
    .execute(params![source, group, m.value, kind == ScimKind::Group, m.display])?;
    Ok(())
}

/// Whether the group `outer` is `inner` or contains it through nested groups.
fn contains(tx: &Transaction<'_>, source: &str, outer: &str, inner: &str) -> rusqlite::Result<bool> {
    if outer == inner {
        return Ok(true);
    }
    tx.prepare_cached(
        "WITH RECURSIVE below(id) AS (
             SELECT ?2
             UNION SELECT m.member_id FROM mirror_memberships m JOIN below ON m.group_id = below.id
             WHERE m.source = ?1 AND m.member_is_group = 1)
         SELECT EXISTS (SELECT 1 FROM below WHERE id = ?3)",
    )?
    .query_row(params![source, outer, inner], |r| r.get(0))
}

fn remove_member(tx: &Transaction<'_>, source: &str, group: &str, value: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM mirror_memberships WHERE source = ?1 AND group_id = ?2 AND member_id = ?3")?
        .execute(params![source, group, value])?;
    Ok(())
}

fn attrs(a: &[(String, String)]) -> String {
    serde_json::to_string(a).unwrap_or_else(|_| "[]".into())
}

/// Writes the mirror row of a resource.
fn write_mirror(tx: &Transaction<'_>, source: &str, mirror: &Mirrored) -> rusqlite::Result<()> {
    match mirror {
        Mirrored::User(u) => tx.execute(
            "INSERT OR REPLACE INTO mirror_users (source, ext_id, username, email, display_name, active, attributes, removed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
            params![
                source,
                u.ext_id,
                u.username,
                u.email,
                u.display_name,
                u.active,
                attrs(&u.attributes)
            ],
        )?,
        Mirrored::Group(g) => tx.execute(
            "INSERT OR REPLACE INTO mirror_groups (source, ext_id, name, description, attributes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![source, g.ext_id, g.name, g.description, attrs(&g.attributes)],
        )?,
    };
    Ok(())
}

/// Replaces a group's members with `members`, touching only the rows that change.
fn set_members(
    tx: &Transaction<'_>,
    source: &str,
    group: &str,
    members: &[MemberRef],
) -> std::result::Result<(), ScimWriteError> {
    let wanted: std::collections::HashSet<&str> = members.iter().map(|m| m.value.as_str()).collect();
    let now = members_of(tx, source, group)?;
    for m in &now {
        if !wanted.contains(m.value.as_str()) {
            remove_member(tx, source, group, &m.value)?;
        }
    }
    for m in members {
        add_member(tx, source, group, m)?;
    }
    Ok(())
}

impl Store {
    /// One pushed resource, with a group's members if asked for.
    pub fn scim_get(&self, source: &str, kind: ScimKind, id: &str, members: Members) -> Result<Option<ScimResource>> {
        let conn = self.reader();
        let Some(mut r) = get_in(&conn, source, kind, id)? else {
            return Ok(None);
        };
        if kind == ScimKind::Group && members == Members::Include {
            r.members = members_of(&conn, source, id)?;
        }
        Ok(Some(r))
    }

    /// The resources found through an index (`userName eq …`, `externalId eq …`).
    pub fn scim_find(
        &self,
        source: &str,
        kind: ScimKind,
        lookup: &ScimLookup,
        members: Members,
    ) -> Result<Vec<ScimResource>> {
        let (column, value) = match lookup {
            ScimLookup::Id(id) => ("id", id.clone()),
            ScimLookup::ExternalId(e) => ("external_id", e.clone()),
            ScimLookup::Name(n) => ("name_key", n.to_lowercase()),
        };
        self.scim_where(source, kind, &format!("AND {column} = ?3"), Some(&value), members)
    }

    /// Every resource of a kind the source pushed, in id order.
    pub fn scim_list(&self, source: &str, kind: ScimKind, members: Members) -> Result<Vec<ScimResource>> {
        self.scim_where(source, kind, "", None, members)
    }

    /// One page of a kind's resources in id order — `offset` skipped, at most `limit` — and
    /// how many there are in all, read in one transaction: a list without a filter (Okta pages
    /// its users by 100) reads its page and a count, not the whole source.
    pub fn scim_page(
        &self,
        source: &str,
        kind: ScimKind,
        offset: u64,
        limit: u32,
        members: Members,
    ) -> Result<(u64, Vec<ScimResource>)> {
        let mut conn = self.reader();
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row(
            "SELECT COUNT(*) FROM scim_resources WHERE source = ?1 AND kind = ?2",
            params![source, kind.as_str()],
            |r| r.get(0),
        )?;
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows: Vec<RawResource> = {
            let mut st = tx.prepare_cached(&format!(
                "SELECT {RESOURCE_COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 ORDER BY id LIMIT ?3 OFFSET ?4"
            ))?;
            let rows = st.query_map(params![source, kind.as_str(), i64::from(limit), offset], resource_row)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut page: Vec<ScimResource> = rows.into_iter().map(to_resource).collect::<Result<_>>()?;
        if kind == ScimKind::Group && members == Members::Include {
            for r in &mut page {
                r.members = members_of(&tx, source, &r.id)?;
            }
        }
        tx.finish()?;
        Ok((u64::try_from(total).unwrap_or(0), page))
    }

    fn scim_where(
        &self,
        source: &str,
        kind: ScimKind,
        filter: &str,
        value: Option<&str>,
        members: Members,
    ) -> Result<Vec<ScimResource>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 {filter} ORDER BY id"
        ))?;
        let rows: Vec<_> = match value {
            Some(v) => st.query_map(params![source, kind.as_str(), v], resource_row)?,
            None => st.query_map(params![source, kind.as_str()], resource_row)?,
        }
        .collect::<rusqlite::Result<_>>()?;
        let mut out: Vec<ScimResource> = rows.into_iter().map(to_resource).collect::<Result<_>>()?;
        if kind == ScimKind::Group && members == Members::Include {
            // One pass over the source's memberships rather than one query per group.
            let mut by_group: std::collections::HashMap<String, Vec<ScimMember>> = Default::default();
            let mut st = conn.prepare_cached(
                "SELECT group_id, member_id, member_is_group, display FROM mirror_memberships WHERE source = ?1 ORDER BY member_id",
            )?;
            let rows = st.query_map([source], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            for row in rows {
                let (g, value, is_group, display) = row?;
                by_group.entry(g).or_default().push(ScimMember {
                    value,
                    kind: if is_group { ScimKind::Group } else { ScimKind::User },
                    display,
                });
            }
            for r in &mut out {
                r.members = by_group.remove(&r.id).unwrap_or_default();
            }
        }
        Ok(out)
    }

    /// Creates a resource with the id `id` (from [`new_scim_id`]) and its mirror rows.
    pub fn scim_create(
        &self,
        source: &str,
        kind: ScimKind,
        id: &str,
        write: &ScimWrite,
    ) -> std::result::Result<ScimResource, ScimWriteError> {
        let mut conn = self.durable_conn()?;
        let tx = conn.transaction()?;
        check_name(&tx, source, kind, id, &write.name)?;
        let now = now_ms();
        tx.execute(
            "INSERT INTO scim_resources (source, kind, id, external_id, name_key, body, version, created_at, modified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
            params![
                source,
                kind.as_str(),
                id,
                write.external_id,
                write.name.to_lowercase(),
                write.body.to_string(),
                now
            ],
        )?;
        write_mirror(&tx, source, &write.mirror)?;
        if kind == ScimKind::Group {
            set_members(&tx, source, id, &write.members)?;
        }
        let created = self.read_back(&tx, source, kind, id)?;
        tx.commit()?;
        Ok(created)
    }

    /// Replaces a resource (PUT, or a PATCH applied to the whole resource): `f` is given the
    /// resource as it is now (with a group's members) and says what it becomes, while the
    /// writer is held, so no other write comes between the read and the write. `expect` is
    /// the version `If-Match` names. `f`'s own refusal comes back as the inner error.
    pub fn scim_replace<E>(
        &self,
        source: &str,
        kind: ScimKind,
        id: &str,
        expect: Option<i64>,
        f: impl FnOnce(&ScimResource) -> std::result::Result<ScimWrite, E>,
    ) -> std::result::Result<std::result::Result<ScimResource, E>, ScimWriteError> {
        let mut conn = self.durable_conn()?;
        let tx = conn.transaction()?;
        let Some(mut current) = get_in(&tx, source, kind, id)? else {
            return Err(ScimWriteError::NotFound { kind, id: id.into() });
        };
        check_version(current.version, expect)?;
        if kind == ScimKind::Group {
            current.members = members_of(&tx, source, id)?;
        }
        let write = match f(&current) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        check_name(&tx, source, kind, id, &write.name)?;
        tx.execute(
            "UPDATE scim_resources SET external_id = ?3, name_key = ?4, body = ?5, version = version + 1, modified_at = ?6
             WHERE source = ?1 AND id = ?2",
            params![
                source,
                id,
                write.external_id,
                write.name.to_lowercase(),
                write.body.to_string(),
                now_ms()
            ],
        )?;
        write_mirror(&tx, source, &write.mirror)?;
        if kind == ScimKind::Group {
            set_members(&tx, source, id, &write.members)?;
        }
        let replaced = self.read_back(&tx, source, kind, id)?;
        tx.commit()?;
        Ok(Ok(replaced))
    }

    /// Applies a PATCH that touches only a group's members, as row inserts and deletes (a
    /// group of 10,000 members patched one at a time never rewrites them all). Answers the
    /// group without its members; `expect` is the version `If-Match` names.
    pub fn scim_patch_members(
        &self,
        source: &str,
        group: &str,
        expect: Option<i64>,
        ops: &[MemberOp],
    ) -> std::result::Result<ScimResource, ScimWriteError> {
        match self.scim_patch_group(source, group, expect, ops, |_| Ok::<_, std::convert::Infallible>(None))? {
            Ok(patched) => Ok(patched),
            Err(never) => match never {},
        }
    }

    /// Applies a PATCH to a group whose member operations are row inserts and deletes, and
    /// whose other operations (a rename, say: Okta sends one with every membership change)
    /// `f` applies to the group without its members — so a group of 10,000 members is never
    /// read or rewritten whole. `f` answers the group's new body (`None`: unchanged; its
    /// `members` are ignored). Answers the group without its members; `expect` is the version
    /// `If-Match` names; `f`'s own refusal comes back as the inner error.
    pub fn scim_patch_group<E>(
        &self,
        source: &str,
        group: &str,
        expect: Option<i64>,
        ops: &[MemberOp],
        f: impl FnOnce(&ScimResource) -> std::result::Result<Option<ScimWrite>, E>,
    ) -> std::result::Result<std::result::Result<ScimResource, E>, ScimWriteError> {
        let mut conn = self.durable_conn()?;
        let tx = conn.transaction()?;
        let Some(current) = get_in(&tx, source, ScimKind::Group, group)? else {
            return Err(ScimWriteError::NotFound {
                kind: ScimKind::Group,
                id: group.into(),
            });
        };
        check_version(current.version, expect)?;
        let write = match f(&current) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(write) = &write {
            check_name(&tx, source, ScimKind::Group, group, &write.name)?;
            tx.execute(
                "UPDATE scim_resources SET external_id = ?3, name_key = ?4, body = ?5 WHERE source = ?1 AND id = ?2",
                params![
                    source,
                    group,
                    write.external_id,
                    write.name.to_lowercase(),
                    write.body.to_string()
                ],
            )?;
            write_mirror(&tx, source, &write.mirror)?;
        }
        for op in ops {
            match op {
                MemberOp::Add(values) => {
                    for v in values {
                        add_member(&tx, source, group, v)?;
                    }
                }
                MemberOp::Remove(values) => {
                    for v in values {
                        remove_member(&tx, source, group, v)?;
                    }
                }
                MemberOp::RemoveAll => {
                    tx.execute(
                        "DELETE FROM mirror_memberships WHERE source = ?1 AND group_id = ?2",
                        params![source, group],
                    )?;
                }
            }
        }
        tx.execute(
            "UPDATE scim_resources SET version = version + 1, modified_at = ?3 WHERE source = ?1 AND id = ?2",
            params![source, group, now_ms()],
        )?;
        let patched = get_in(&tx, source, ScimKind::Group, group)?
            .ok_or_else(|| StoreError::NotFound(format!("Group {group}")))?;
        tx.commit()?;
        Ok(Ok(patched))
    }

    /// Deletes a resource, its mirror row and every membership naming it; each group it was a
    /// member of gets a new version and lastModified.
    pub fn scim_delete(
        &self,
        source: &str,
        kind: ScimKind,
        id: &str,
        expect: Option<i64>,
    ) -> std::result::Result<(), ScimWriteError> {
        let mut conn = self.durable_conn()?;
        let tx = conn.transaction()?;
        let Some(current) = get_in(&tx, source, kind, id)? else {
            return Err(ScimWriteError::NotFound { kind, id: id.into() });
        };
        check_version(current.version, expect)?;
        tx.execute(
            "DELETE FROM scim_resources WHERE source = ?1 AND id = ?2",
            params![source, id],
        )?;
        // A group's members are part of it (RFC 7643 §4.2): each group that loses this member
        // changes, so an ETag read before the delete no longer matches.
        tx.execute(
            "UPDATE scim_resources SET version = version + 1, modified_at = ?4
             WHERE source = ?1 AND kind = 'Group' AND id IN (
                 SELECT group_id FROM mirror_memberships WHERE source = ?1 AND member_id = ?2 AND member_is_group = ?3)",
            params![source, id, kind == ScimKind::Group, now_ms()],
        )?;
        match kind {
            ScimKind::User => {
                tx.execute(
                    "DELETE FROM mirror_memberships WHERE source = ?1 AND member_id = ?2 AND member_is_group = 0",
                    params![source, id],
                )?;
                tx.execute(
                    "DELETE FROM mirror_users WHERE source = ?1 AND ext_id = ?2",
                    params![source, id],
                )?;
            }
            ScimKind::Group => {
                tx.execute(
                    "DELETE FROM mirror_memberships WHERE source = ?1 AND (group_id = ?2 OR (member_id = ?2 AND member_is_group = 1))",
                    params![source, id],
                )?;
                tx.execute(
                    "DELETE FROM mirror_groups WHERE source = ?1 AND ext_id = ?2",
                    params![source, id],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn read_back(&self, tx: &Transaction<'_>, source: &str, kind: ScimKind, id: &str) -> Result<ScimResource> {
        let mut r =
            get_in(tx, source, kind, id)?.ok_or_else(|| StoreError::NotFound(format!("{} {id}", kind.as_str())))?;
        if kind == ScimKind::Group {
            r.members = members_of(tx, source, id)?;
        }
        Ok(r)
    }

    /// Drops the mirror rows of the push source `source` that no pushed resource backs: users
    /// and groups whose id is no User or Group of its `scim_resources`, and memberships whose
    /// group or member is none (one transaction). Such rows were written by the fetches of a
    /// source that was pulled and is now pushed to under the same id: the identity provider
    /// cannot see or delete them, and no fetch ever runs to drop them. Dropped here, the next
    /// run plans their removal under the guard like any other. The source's delta cursor goes
    /// too: a push source never uses it, and a mirror pruned under it would mislead the first
    /// delta fetch should the source be pulled again.
    pub fn scim_prune_unbacked(&self, source: &str) -> Result<Pruned> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let memberships = tx.execute(
            "DELETE FROM mirror_memberships WHERE source = ?1 AND (
                 NOT EXISTS (SELECT 1 FROM scim_resources r
                             WHERE r.source = ?1 AND r.id = mirror_memberships.group_id AND r.kind = 'Group')
              OR NOT EXISTS (SELECT 1 FROM scim_resources r
                             WHERE r.source = ?1 AND r.id = mirror_memberships.member_id
                               AND r.kind = CASE WHEN mirror_memberships.member_is_group THEN 'Group' ELSE 'User' END))",
            [source],
        )?;
        let users = tx.execute(
            "DELETE FROM mirror_users WHERE source = ?1 AND NOT EXISTS (SELECT 1 FROM scim_resources r
                 WHERE r.source = ?1 AND r.id = mirror_users.ext_id AND r.kind = 'User')",
            [source],
        )?;
        let groups = tx.execute(
            "DELETE FROM mirror_groups WHERE source = ?1 AND NOT EXISTS (SELECT 1 FROM scim_resources r
                 WHERE r.source = ?1 AND r.id = mirror_groups.ext_id AND r.kind = 'Group')",
            [source],
        )?;
        tx.execute("DELETE FROM cursors WHERE source = ?1", [source])?;
        tx.commit()?;
        Ok(Pruned {
            users,
            groups,
            memberships,
        })
    }

    /// Creates a token for pushing to `source`; returns its row and the token itself, which
    /// is not kept anywhere.
    pub fn create_scim_token(&self, source: &str, name: &str, created_by: &str) -> Result<(ScimTokenRow, String)> {
        let token = mint("roster_scim_", 24)?;
        let conn = self.durable_conn()?;
        conn.execute(
            "INSERT INTO scim_tokens (source, name, sha256, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![source, name, hash(&token), now_ms(), created_by],
        )?;
        let id = conn.last_insert_rowid();
        drop(conn);
        let row = self
            .scim_tokens(Some(source))?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("SCIM token {id}")))?;
        Ok((row, token))
    }

    /// The live token of `source` matching `token` (a token of another source is none),
    /// noting its use to the minute, and not while the writer is busy (see `verify_token`).
    pub fn verify_scim_token(&self, source: &str, token: &str) -> Result<Option<ScimTokenRow>> {
        let found = self
            .reader()
            .query_row(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM scim_tokens WHERE sha256 = ?1 AND source = ?2 AND revoked_at IS NULL"
                ),
                params![hash(token), source],
                token_row,
            )
            .optional()?;
        let Some(found) = found else { return Ok(None) };
        let now = now_ms();
        if found.last_used_at.is_none_or(|last| now - last >= 60_000)
            && let Some(conn) = self.try_conn()
        {
            conn.execute(
                "UPDATE scim_tokens SET last_used_at = ?2 WHERE id = ?1",
                params![found.id, now],
            )?;
        }
        Ok(Some(found))
    }

    /// The SCIM tokens of one source (or of all), revoked ones included, newest first.
    pub fn scim_tokens(&self, source: Option<&str>) -> Result<Vec<ScimTokenRow>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!(
            "SELECT {TOKEN_COLUMNS} FROM scim_tokens WHERE ?1 IS NULL OR source = ?1 ORDER BY id DESC"
        ))?;
        let rows = st.query_map([source], token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes a SCIM token of `source` (of any source when none); false when there is no
    /// such live token.
    pub fn revoke_scim_token(&self, source: Option<&str>, id: i64) -> Result<bool> {
        Ok(self.durable_conn()?.execute(
            "UPDATE scim_tokens SET revoked_at = ?3 WHERE id = ?1 AND (?2 IS NULL OR source = ?2) AND revoked_at IS NULL",
            params![id, source, now_ms()],
        )? == 1)
    }
}

const TOKEN_COLUMNS: &str = "id, source, name, created_at, created_by, last_used_at, revoked_at";

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScimTokenRow> {
    Ok(ScimTokenRow {
        id: r.get(0)?,
        source: r.get(1)?,
        name: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn user(id: &str, name: &str) -> ScimWrite {
        ScimWrite {
            external_id: Some(format!("x-{name}")),
            name: name.into(),
            body: serde_json::json!({"userName": name}),
            mirror: Mirrored::User(MirrorUser {
                ext_id: id.into(),
                username: name.into(),
                email: None,
                display_name: None,
                active: true,
                attributes: vec![],
                removed: None,
            }),
            members: vec![],
        }
    }

    fn member(id: &str) -> MemberRef {
        MemberRef {
            value: id.into(),
            display: None,
        }
    }

    fn group(id: &str, name: &str, members: &[&str]) -> ScimWrite {
        ScimWrite {
            external_id: None,
            name: name.into(),
            body: serde_json::json!({"displayName": name}),
            mirror: Mirrored::Group(MirrorGroup {
                ext_id: id.into(),
                name: name.into(),
                description: None,
                attributes: vec![],
                removed: None,
            }),
            members: members.iter().map(|m| member(m)).collect(),
        }
    }

    fn member_ids(s: &Store, source: &str) -> Vec<(String, String)> {
        let mut v: Vec<_> = s
            .mirror_memberships(source)
            .unwrap()
            .into_iter()
            .map(|m| (m.group_id, m.member_id))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_keep_the_mirror_and_members_in_step() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        s.scim_create("e", ScimKind::User, "u1", &user("u1", "Alice")).unwrap();
        s.scim_create("e", ScimKind::User, "u2", &user("u2", "bob")).unwrap();
        let err = s
            .scim_create("e", ScimKind::User, "u3", &user("u3", "ALICE"))
            .unwrap_err();
        assert!(
            matches!(err, ScimWriteError::Taken { ref holder, .. } if holder == "u1"),
            "{err}"
        );
        // Another source may hold the same name.
        s.scim_create("o", ScimKind::User, "u9", &user("u9", "alice")).unwrap();
        let g = s
            .scim_create("e", ScimKind::Group, "g1", &group("g1", "dev", &["u1"]))
            .unwrap();
        assert_eq!(g.version, 1);
        assert_eq!(g.members.len(), 1);
        let err = s
            .scim_create("e", ScimKind::Group, "g2", &group("g2", "ops", &["u9"]))
            .unwrap_err();
        assert!(
            matches!(err, ScimWriteError::UnknownMember { ref value } if value == "u9"),
            "{err}"
        );
        assert!(
            s.scim_get("e", ScimKind::Group, "g2", Members::Omit).unwrap().is_none(),
            "rolled back"
        );

        let g = s
            .scim_patch_members("e", "g1", Some(1), &[MemberOp::Add(vec![member("u2"), member("u1")])])
            .unwrap();
        assert_eq!(g.version, 2);
        assert_eq!(
            member_ids(&s, "e"),
            [("g1".into(), "u1".into()), ("g1".into(), "u2".into())]
        );
        let err = s
            .scim_patch_members("e", "g1", Some(1), &[MemberOp::RemoveAll])
            .unwrap_err();
        assert!(matches!(err, ScimWriteError::VersionMismatch { current: 2 }));

        // Deleting a user takes its memberships and its mirror row, and changes its groups.
        s.scim_delete("e", ScimKind::User, "u1", None).unwrap();
        assert_eq!(member_ids(&s, "e"), [("g1".into(), "u2".into())]);
        assert_eq!(s.mirror_users("e").unwrap().len(), 1);
        let g = s.scim_get("e", ScimKind::Group, "g1", Members::Omit).unwrap().unwrap();
        assert_eq!(g.version, 3, "a group that lost a member has a new version");

        let replaced = s
            .scim_replace("e", ScimKind::Group, "g1", Some(3), |cur| {
                assert_eq!(cur.members.len(), 1);
                Ok::<_, ()>(group("g1", "developers", &[]))
            })
            .unwrap()
            .unwrap();
        assert_eq!(replaced.version, 4);
        assert!(member_ids(&s, "e").is_empty());
        assert_eq!(s.mirror_groups("e").unwrap()[0].name, "developers");
        let found = s
            .scim_find("e", ScimKind::User, &ScimLookup::Name("BOB".into()), Members::Omit)
            .unwrap();
        assert_eq!(found.len(), 1);
        let found = s
            .scim_find(
                "e",
                ScimKind::User,
                &ScimLookup::ExternalId("x-bob".into()),
                Members::Omit,
            )
            .unwrap();
        assert_eq!(found[0].id, "u2");
    }

    /// Entra and Okta change a large group one member per PATCH: each is a row or two, not a
    /// rewrite of the group's 10,000 memberships.
    #[test]
    fn one_member_patched_into_a_large_group_writes_a_few_rows() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let ids: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
        {
            let mut conn = s.conn();
            let tx = conn.transaction().unwrap();
            for id in &ids {
                tx.execute(
                    "INSERT INTO scim_resources (source, kind, id, name_key, body, version, created_at, modified_at) VALUES ('e', 'User', ?1, ?1, '{}', 1, 0, 0)",
                    [id],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let members: Vec<&str> = ids[..10_000].iter().map(String::as_str).collect();
        s.scim_create("e", ScimKind::Group, "g", &group("g", "all", &members))
            .unwrap();
        let before = s.conn().total_changes();
        s.scim_patch_members("e", "g", None, &[MemberOp::Add(vec![member("u10000")])])
            .unwrap();
        s.scim_patch_members("e", "g", None, &[MemberOp::Remove(vec!["u5".into()])])
            .unwrap();
        // A rename sent with a membership change (Okta's way) writes the group's row too.
        s.scim_patch_group("e", "g", None, &[MemberOp::Add(vec![member("u5")])], |_| {
            Ok::<_, ()>(Some(group("g", "everyone", &[])))
        })
        .unwrap()
        .unwrap();
        let written = s.conn().total_changes() - before;
        assert!(written <= 9, "{written} rows written for three single-member PATCHes");
        assert_eq!(s.mirror_groups("e").unwrap()[0].name, "everyone");
        assert_eq!(s.mirror_memberships("e").unwrap().len(), 10_001);
    }

    /// A source created again with the id of a deleted one opens to none of the old tokens
    /// (an identity provider the admin meant to cut off would push again) and holds none of
    /// the old resources, which no mirror row backs any more.
    #[test]
    fn deleting_a_source_forgets_its_scim_tokens_and_resources() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let (_, token) = s.create_scim_token("entra", "entra prod", "test").unwrap();
        s.scim_create("entra", ScimKind::User, "u1", &user("u1", "alice"))
            .unwrap();
        s.delete_source("entra").unwrap();
        assert!(s.mirror_users("entra").unwrap().is_empty());
        assert!(
            s.verify_scim_token("entra", &token).unwrap().is_none(),
            "the deleted source's token still opens /scim/v2/entra once a source of that id exists again"
        );
        assert!(
            s.scim_get("entra", ScimKind::User, "u1", Members::Omit)
                .unwrap()
                .is_none(),
            "a pushed user outlives its source's mirror row"
        );
    }

    /// What a source's fetches wrote before it was pushed to is dropped; what was pushed, and
    /// every other source's mirror, stays.
    #[test]
    fn pruning_drops_the_mirror_rows_no_pushed_resource_backs() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let fetched = |id: &str| MirrorUser {
            ext_id: id.into(),
            username: id.into(),
            email: None,
            display_name: None,
            active: true,
            attributes: vec![],
            removed: None,
        };
        let old_group = MirrorGroup {
            ext_id: "g-old".into(),
            name: "old".into(),
            description: None,
            attributes: vec![],
            removed: None,
        };
        let membership = |g: &str, m: &str| crate::MirrorMembership {
            group_id: g.into(),
            member_id: m.into(),
            member_is_group: false,
            removed: false,
        };
        for source in ["e", "hr"] {
            s.stage_page(
                0,
                source,
                &[fetched("leaver")],
                std::slice::from_ref(&old_group),
                &[membership("g-old", "leaver")],
            )
            .unwrap();
            s.promote_delta(0, source, Some("delta-1")).unwrap();
        }
        s.scim_create("e", ScimKind::User, "u1", &user("u1", "alice")).unwrap();
        s.scim_create("e", ScimKind::Group, "g1", &group("g1", "dev", &["u1"]))
            .unwrap();
        // A fetched membership naming a pushed user, in a group no push made.
        s.stage_page(0, "e", &[], &[], &[membership("g-old", "u1")]).unwrap();
        s.promote_delta(0, "e", Some("delta-2")).unwrap();

        let pruned = s.scim_prune_unbacked("e").unwrap();
        assert_eq!(
            pruned,
            Pruned {
                users: 1,
                groups: 1,
                memberships: 2
            }
        );
        let names: Vec<String> = s.mirror_users("e").unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["alice"]);
        assert_eq!(s.mirror_groups("e").unwrap().len(), 1);
        assert_eq!(member_ids(&s, "e"), [("g1".into(), "u1".into())]);
        assert_eq!(s.cursor("e").unwrap(), None);
        assert_eq!(s.mirror_users("hr").unwrap().len(), 1, "another source's mirror stays");
        assert_eq!(s.cursor("hr").unwrap().as_deref(), Some("delta-1"));
        assert!(s.scim_prune_unbacked("e").unwrap().is_empty(), "nothing left to drop");
    }

    /// SCIM writes commit with `synchronous=FULL`; the writer is back at `NORMAL` after each,
    /// so a run's bulk writes are not slowed by them.
    #[test]
    fn scim_writes_are_synced_and_the_writer_is_restored_after() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let sync =
            |c: &rusqlite::Connection| -> i64 { c.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap() };
        {
            let d = s.durable_conn().unwrap();
            assert_eq!(sync(&d), 2, "FULL while a SCIM write holds the writer");
        }
        s.scim_create("e", ScimKind::User, "u1", &user("u1", "alice")).unwrap();
        s.scim_delete("e", ScimKind::User, "u1", None).unwrap();
        assert_eq!(sync(&s.conn()), 1, "NORMAL again");
    }

    /// A run reads a push source's mirror while pushes write it: the snapshot is of one moment,
    /// so no membership names a group the same read did not find (reads on separate
    /// statements would, when a push creates a group with its members between them).
    #[test]
    fn a_mirror_snapshot_is_never_torn_by_a_push_between_its_reads() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(Store::open(&dir.path().join("roster.db"), Key::from_bytes([1; 32])).unwrap());
        s.scim_create("e", ScimKind::User, "u", &user("u", "u")).unwrap();
        // Enough groups that reading them takes a while.
        {
            let mut conn = s.conn();
            let tx = conn.transaction().unwrap();
            for n in 0..3000 {
                tx.execute(
                    "INSERT INTO mirror_groups (source, ext_id, name, attributes) VALUES ('e', ?1, ?1, '[]')",
                    [format!("old{n}")],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                for n in 1..=200 {
                    let id = format!("g{n}");
                    s.scim_create("e", ScimKind::Group, &id, &group(&id, &id, &["u"]))
                        .unwrap();
                    s.scim_delete("e", ScimKind::Group, &format!("g{}", n - 1), None).ok();
                }
            })
        };
        // Read for as long as the pushes go on.
        while !writer.is_finished() {
            let m = s.mirror_snapshot("e").unwrap();
            let groups: std::collections::HashSet<&str> = m.groups.iter().map(|g| g.ext_id.as_str()).collect();
            for ms in &m.memberships {
                assert!(groups.contains(ms.group_id.as_str()), "torn: {ms:?} without its group");
            }
        }
        writer.join().unwrap();
    }

    /// A group cannot contain itself, directly or through a group it contains; nothing of the
    /// refused write stays.
    #[test]
    fn a_group_cannot_be_its_own_member() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        s.scim_create("e", ScimKind::User, "u1", &user("u1", "alice")).unwrap();
        s.scim_create("e", ScimKind::Group, "a", &group("a", "a", &["u1"]))
            .unwrap();
        s.scim_create("e", ScimKind::Group, "b", &group("b", "b", &["a"]))
            .unwrap();
        let err = s
            .scim_patch_members("e", "a", None, &[MemberOp::Add(vec![member("a")])])
            .unwrap_err();
        assert!(matches!(err, ScimWriteError::OwnMember { .. }), "{err}");
        let err = s
            .scim_patch_members("e", "a", None, &[MemberOp::Add(vec![member("b")])])
            .unwrap_err();
        assert!(
            matches!(err, ScimWriteError::OwnMember { ref member, .. } if member == "b"),
            "{err}"
        );
        let err = s
            .scim_replace("e", ScimKind::Group, "b", None, |_| {
                Ok::<_, ()>(group("b", "b", &["a", "b"]))
            })
            .unwrap_err();
        assert!(matches!(err, ScimWriteError::OwnMember { .. }), "{err}");
        assert_eq!(
            member_ids(&s, "e"),
            [("a".into(), "u1".into()), ("b".into(), "a".into())]
        );
    }

    /// A page is read in SQL: the window of the id order, the count of them all, members only
    /// for the page's groups.
    #[test]
    fn a_page_of_resources_is_read_with_its_total() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        for n in 0..25 {
            let id = format!("u{n:02}");
            s.scim_create("e", ScimKind::User, &id, &user(&id, &id)).unwrap();
        }
        s.scim_create("e", ScimKind::Group, "g1", &group("g1", "g1", &["u01", "u02"]))
            .unwrap();
        let (total, page) = s.scim_page("e", ScimKind::User, 20, 10, Members::Omit).unwrap();
        assert_eq!(total, 25);
        let ids: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["u20", "u21", "u22", "u23", "u24"]);
        let (total, page) = s.scim_page("e", ScimKind::User, 99, 10, Members::Omit).unwrap();
        assert_eq!((total, page.len()), (25, 0));
        let (total, page) = s.scim_page("e", ScimKind::Group, 0, 10, Members::Include).unwrap();
        assert_eq!((total, page[0].members.len()), (1, 2));
        assert_eq!(
            s.scim_page("e", ScimKind::User, 0, 5, Members::Omit).unwrap().1,
            s.scim_list("e", ScimKind::User, Members::Omit).unwrap()[..5]
        );
    }

    #[test]
    fn scim_tokens_belong_to_one_source_and_can_be_revoked() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let (row, token) = s.create_scim_token("entra", "entra prod", "test").unwrap();
        assert!(s.verify_scim_token("entra", &token).unwrap().is_some());
        assert!(s.verify_scim_token("okta", &token).unwrap().is_none());
        assert!(!s.revoke_scim_token(Some("okta"), row.id).unwrap());
        assert!(s.revoke_scim_token(Some("entra"), row.id).unwrap());
        assert!(s.verify_scim_token("entra", &token).unwrap().is_none());
        assert_eq!(s.scim_tokens(Some("entra")).unwrap().len(), 1);
        assert!(new_scim_id().unwrap().len() == 36);
    }
}
