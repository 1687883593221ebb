//! Staging and the mirror. A fetch writes each page into `staging_*` under its run id; only a
//! completed fetch is promoted into `mirror_*` (one transaction), so an interrupted fetch never
//! changes what the engine believes the source says.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Result, Store, json_col, now_ms};

/// How an object left the source (incremental fetches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removed {
    /// Restorable (Entra's soft delete); kept in the mirror, marked.
    SoftDeleted,
    /// Gone.
    Deleted,
}

impl Removed {
    fn as_str(self) -> &'static str {
        match self {
            Removed::SoftDeleted => "soft-deleted",
            Removed::Deleted => "deleted",
        }
    }
    fn parse(s: Option<String>) -> Option<Removed> {
        match s.as_deref() {
            Some("soft-deleted") => Some(Removed::SoftDeleted),
            Some("deleted") => Some(Removed::Deleted),
            _ => None,
        }
    }
}

/// A user as a source reported it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MirrorUser {
    /// The IdP's immutable id.
    pub ext_id: String,
    /// Proposed username.
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Enabled in the IdP.
    pub active: bool,
    /// Raw attributes.
    pub attributes: Vec<(String, String)>,
    /// Set for removals in an incremental fetch, and for soft-deleted users in the mirror.
    pub removed: Option<Removed>,
}

/// A group as a source reported it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MirrorGroup {
    /// The IdP's immutable id.
    pub ext_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Raw attributes.
    pub attributes: Vec<(String, String)>,
    /// Set for removals in an incremental fetch.
    pub removed: Option<Removed>,
}

/// "member is in group", as a source reported it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct MirrorMembership {
    /// Group's IdP id.
    pub group_id: String,
    /// Member's IdP id.
    pub member_id: String,
    /// The member is a group (nesting).
    pub member_is_group: bool,
    /// Incremental fetches: this membership was removed.
    pub removed: bool,
}

/// Ids a page repeated from earlier pages (or from itself) of the same fetch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repeated {
    /// User ids.
    pub users: Vec<String>,
    /// Group ids.
    pub groups: Vec<String>,
}

impl Store {
    /// Writes one fetched page into the run's staging area. A record whose id this fetch
    /// staged already replaces the earlier one; its id is returned in [`Repeated`], so a full
    /// fetch can report a source that lists one id twice (a delta may, by design).
    pub fn stage_page(
        &self,
        run_id: i64,
        source: &str,
        users: &[MirrorUser],
        groups: &[MirrorGroup],
        memberships: &[MirrorMembership],
    ) -> Result<Repeated> {
        let mut repeated = Repeated::default();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut seen = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM staging_users WHERE run_id = ?1 AND source = ?2 AND ext_id = ?3)",
            )?;
            let mut in_page = std::collections::HashSet::new();
            for u in users.iter().filter(|u| u.removed.is_none()) {
                if !in_page.insert(u.ext_id.as_str())
                    || seen.query_row(params![run_id, source, u.ext_id], |r| r.get::<_, bool>(0))?
                {
                    repeated.users.push(u.ext_id.clone());
                }
            }
            let mut seen = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM staging_groups WHERE run_id = ?1 AND source = ?2 AND ext_id = ?3)",
            )?;
            let mut in_page = std::collections::HashSet::new();
            for g in groups.iter().filter(|g| g.removed.is_none()) {
                if !in_page.insert(g.ext_id.as_str())
                    || seen.query_row(params![run_id, source, g.ext_id], |r| r.get::<_, bool>(0))?
                {
                    repeated.groups.push(g.ext_id.clone());
                }
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO staging_users (run_id, source, ext_id, username, email, display_name, active, attributes, removed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for u in users {
                st.execute(params![
                    run_id,
                    source,
                    u.ext_id,
                    u.username,
                    u.email,
                    u.display_name,
                    u.active,
                    attrs(&u.attributes),
                    u.removed.map(Removed::as_str)
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO staging_groups (run_id, source, ext_id, name, description, attributes, removed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for g in groups {
                st.execute(params![
                    run_id,
                    source,
                    g.ext_id,
                    g.name,
                    g.description,
                    attrs(&g.attributes),
                    g.removed.map(Removed::as_str)
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO staging_memberships (run_id, source, group_id, member_id, member_is_group, removed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for m in memberships {
                st.execute(params![
                    run_id,
                    source,
                    m.group_id,
                    m.member_id,
                    m.member_is_group,
                    m.removed
                ])?;
            }
        }
        tx.commit()?;
        Ok(repeated)
    }

    /// Replaces the source's mirror with what a completed full fetch staged, and stores the
    /// delta token for the next incremental fetch.
    pub fn promote_full(&self, run_id: i64, source: &str, delta_token: Option<&str>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // Write only what changed: on a steady-state resync this reads the mirror and writes
        // nothing, instead of deleting and re-inserting every row.
        let p = params![run_id, source];
        tx.execute(
            "DELETE FROM mirror_users WHERE source = ?2 AND NOT EXISTS (SELECT 1 FROM staging_users s
               WHERE s.run_id = ?1 AND s.source = ?2 AND s.ext_id = mirror_users.ext_id AND s.removed IS NULL)",
            p,
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO mirror_users (source, ext_id, username, email, display_name, active, attributes, removed)
             SELECT s.source, s.ext_id, s.username, s.email, s.display_name, s.active, s.attributes, NULL FROM staging_users s
             WHERE s.run_id = ?1 AND s.source = ?2 AND s.removed IS NULL AND NOT EXISTS (SELECT 1 FROM mirror_users m
               WHERE m.source = s.source AND m.ext_id = s.ext_id AND m.username = s.username AND m.email IS s.email
                 AND m.display_name IS s.display_name AND m.active = s.active AND m.attributes = s.attributes AND m.removed IS NULL)",
            p,
        )?;
        tx.execute(
            "DELETE FROM mirror_groups WHERE source = ?2 AND NOT EXISTS (SELECT 1 FROM staging_groups s
               WHERE s.run_id = ?1 AND s.source = ?2 AND s.ext_id = mirror_groups.ext_id AND s.removed IS NULL)",
            p,
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO mirror_groups (source, ext_id, name, description, attributes)
             SELECT s.source, s.ext_id, s.name, s.description, s.attributes FROM staging_groups s
             WHERE s.run_id = ?1 AND s.source = ?2 AND s.removed IS NULL AND NOT EXISTS (SELECT 1 FROM mirror_groups m
               WHERE m.source = s.source AND m.ext_id = s.ext_id AND m.name = s.name AND m.description IS s.description AND m.attributes = s.attributes)",
            p,
        )?;
        tx.execute(
            "DELETE FROM mirror_memberships WHERE source = ?2 AND NOT EXISTS (SELECT 1 FROM staging_memberships s
               WHERE s.run_id = ?1 AND s.source = ?2 AND s.group_id = mirror_memberships.group_id AND s.member_id = mirror_memberships.member_id
                 AND s.member_is_group = mirror_memberships.member_is_group AND s.removed = 0)",
            p,
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO mirror_memberships (source, group_id, member_id, member_is_group)
             SELECT source, group_id, member_id, member_is_group FROM staging_memberships WHERE run_id = ?1 AND source = ?2 AND removed = 0",
            p,
        )?;
        set_cursor(&tx, source, delta_token)?;
        clear_staging(&tx, run_id, source)?;
        tx.commit()?;
        Ok(())
    }

    /// Applies what a completed incremental fetch staged to the source's mirror.
    pub fn promote_delta(&self, run_id: i64, source: &str, delta_token: Option<&str>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let p = params![run_id, source];
        // Hard deletes first: the object and every membership naming it.
        tx.execute(
            "DELETE FROM mirror_memberships WHERE source = ?2 AND member_is_group = 0 AND member_id IN
             (SELECT ext_id FROM staging_users WHERE run_id = ?1 AND source = ?2 AND removed = 'deleted')",
            p,
        )?;
        tx.execute(
            "DELETE FROM mirror_users WHERE source = ?2 AND ext_id IN (SELECT ext_id FROM staging_users WHERE run_id = ?1 AND source = ?2 AND removed = 'deleted')",
            p,
        )?;
        tx.execute(
            "DELETE FROM mirror_memberships WHERE source = ?2 AND (group_id IN (SELECT ext_id FROM staging_groups WHERE run_id = ?1 AND source = ?2 AND removed IS NOT NULL)
               OR (member_is_group = 1 AND member_id IN (SELECT ext_id FROM staging_groups WHERE run_id = ?1 AND source = ?2 AND removed IS NOT NULL)))",
            p,
        )?;
        tx.execute(
            "DELETE FROM mirror_groups WHERE source = ?2 AND ext_id IN (SELECT ext_id FROM staging_groups WHERE run_id = ?1 AND source = ?2 AND removed IS NOT NULL)",
            p,
        )?;
        // Soft deletes keep the record (and its memberships) for a restore, marked.
        tx.execute(
            "UPDATE mirror_users SET removed = 'soft-deleted' WHERE source = ?2 AND ext_id IN
             (SELECT ext_id FROM staging_users WHERE run_id = ?1 AND source = ?2 AND removed = 'soft-deleted')",
            p,
        )?;
        // Upserts: a user listed again is restored.
        tx.execute(
            "INSERT OR REPLACE INTO mirror_users (source, ext_id, username, email, display_name, active, attributes, removed)
             SELECT source, ext_id, username, email, display_name, active, attributes, NULL FROM staging_users WHERE run_id = ?1 AND source = ?2 AND removed IS NULL",
            p,
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO mirror_groups (source, ext_id, name, description, attributes)
             SELECT source, ext_id, name, description, attributes FROM staging_groups WHERE run_id = ?1 AND source = ?2 AND removed IS NULL",
            p,
        )?;
        tx.execute(
            "DELETE FROM mirror_memberships WHERE (source, group_id, member_id, member_is_group) IN
             (SELECT source, group_id, member_id, member_is_group FROM staging_memberships WHERE run_id = ?1 AND source = ?2 AND removed = 1)",
            p,
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO mirror_memberships (source, group_id, member_id, member_is_group)
             SELECT source, group_id, member_id, member_is_group FROM staging_memberships WHERE run_id = ?1 AND source = ?2 AND removed = 0",
            p,
        )?;
        set_cursor(&tx, source, delta_token)?;
        clear_staging(&tx, run_id, source)?;
        tx.commit()?;
        Ok(())
    }

    /// Drops what an incomplete fetch staged; the mirror stays as it was.
    pub fn discard_staging(&self, run_id: i64, source: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        clear_staging(&tx, run_id, source)?;
        tx.commit()?;
        Ok(())
    }

    /// The source's delta token, if its last fetch left one.
    pub fn cursor(&self, source: &str) -> Result<Option<String>> {
        Ok(self
            .reader()
            .query_row("SELECT delta_token FROM cursors WHERE source = ?1", [source], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The source's mirrored users (soft-deleted ones included, marked).
    pub fn mirror_users(&self, source: &str) -> Result<Vec<MirrorUser>> {
        users_in(&self.reader(), source, "", &[])
    }

    /// The source's users whose id is one of `ids`, or whose username, email or attributes
    /// contain one of `needles` (compared in lower case): the records that may be one person's,
    /// found without reading the whole mirror.
    pub fn mirror_users_matching(&self, source: &str, ids: &[String], needles: &[String]) -> Result<Vec<MirrorUser>> {
        match users_matching_filter(ids, needles) {
            Some((filter, values)) => users_in(&self.reader(), source, &filter, &values),
            None => Ok(Vec::new()),
        }
    }

    /// The source's mirrored groups.
    pub fn mirror_groups(&self, source: &str) -> Result<Vec<MirrorGroup>> {
        groups_in(&self.reader(), source)
    }

    /// The source's mirrored memberships.
    pub fn mirror_memberships(&self, source: &str) -> Result<Vec<MirrorMembership>> {
        memberships_in(&self.reader(), source, "", &[])
    }

    /// The source's group-in-group memberships, and the memberships of these users: all that
    /// decides which groups they are in, through any nesting.
    pub fn mirror_memberships_of(&self, source: &str, user_ids: &[String]) -> Result<Vec<MirrorMembership>> {
        memberships_in(&self.reader(), source, &memberships_of_filter(user_ids), user_ids)
    }

    /// The source's whole mirror — users, groups, memberships — as of one moment: read in one
    /// transaction on one connection, so a write between the reads (a SCIM push during a run)
    /// cannot hand a run memberships of users it did not read, or groups without theirs.
    pub fn mirror_snapshot(&self, source: &str) -> Result<MirrorSnapshot> {
        let mut conn = self.reader();
        let tx = conn.transaction()?;
        let snapshot = MirrorSnapshot {
            users: users_in(&tx, source, "", &[])?,
            groups: groups_in(&tx, source)?,
            memberships: memberships_in(&tx, source, "", &[])?,
        };
        tx.finish()?;
        Ok(snapshot)
    }

    /// What [`Store::mirror_users_matching`], [`Store::mirror_groups`] and
    /// [`Store::mirror_memberships_of`] (of the users found) answer, as of one moment (one
    /// transaction, as [`Store::mirror_snapshot`]).
    pub fn mirror_snapshot_matching(&self, source: &str, ids: &[String], needles: &[String]) -> Result<MirrorSnapshot> {
        let mut conn = self.reader();
        let tx = conn.transaction()?;
        let users = match users_matching_filter(ids, needles) {
            Some((filter, values)) => users_in(&tx, source, &filter, &values)?,
            None => Vec::new(),
        };
        let user_ids: Vec<String> = users.iter().map(|u| u.ext_id.clone()).collect();
        let snapshot = MirrorSnapshot {
            groups: groups_in(&tx, source)?,
            memberships: memberships_in(&tx, source, &memberships_of_filter(&user_ids), &user_ids)?,
            users,
        };
        tx.finish()?;
        Ok(snapshot)
    }
}

/// A source's mirror as of one moment ([`Store::mirror_snapshot`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MirrorSnapshot {
    /// Its users (soft-deleted ones included, marked).
    pub users: Vec<MirrorUser>,
    /// Its groups.
    pub groups: Vec<MirrorGroup>,
    /// Its memberships.
    pub memberships: Vec<MirrorMembership>,
}

/// The `AND (…)` of [`Store::mirror_users_matching`] and its values (from `?2` on); none when
/// there is nothing to match.
fn users_matching_filter(ids: &[String], needles: &[String]) -> Option<(String, Vec<String>)> {
    let mut terms = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for id in ids {
        values.push(id.clone());
        terms.push(format!("ext_id = ?{}", values.len() + 1));
    }
    for n in needles.iter().filter(|n| !n.is_empty()) {
        values.push(n.to_lowercase());
        let i = values.len() + 1;
        terms.push(format!(
            "instr(lower(username), ?{i}) > 0 OR instr(lower(coalesce(email, '')), ?{i}) > 0 OR instr(lower(attributes), ?{i}) > 0"
        ));
    }
    (!terms.is_empty()).then(|| (format!("AND ({})", terms.join(" OR ")), values))
}

/// The `AND (…)` of [`Store::mirror_memberships_of`]; its values are the user ids, from `?2`.
fn memberships_of_filter(user_ids: &[String]) -> String {
    let slots: Vec<String> = (0..user_ids.len()).map(|i| format!("?{}", i + 2)).collect();
    if slots.is_empty() {
        "AND member_is_group = 1".to_string()
    } else {
        format!("AND (member_is_group = 1 OR member_id IN ({}))", slots.join(", "))
    }
}

fn users_in(conn: &rusqlite::Connection, source: &str, filter: &str, values: &[String]) -> Result<Vec<MirrorUser>> {
    let mut st = conn.prepare(&format!(
            "SELECT ext_id, username, email, display_name, active, attributes, removed FROM mirror_users WHERE source = ?1 {filter} ORDER BY ext_id"
        ))?;
    let params = std::iter::once(source).chain(values.iter().map(String::as_str));
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get::<_, String>(5)?,
            r.get(6)?,
        ))
    })?;
    rows.map(|r| {
        let (ext_id, username, email, display_name, active, a, removed) = r?;
        Ok(MirrorUser {
            ext_id,
            username,
            email,
            display_name,
            active,
            attributes: json_col("mirror_users.attributes", &a)?,
            removed: Removed::parse(removed),
        })
    })
    .collect()
}

fn groups_in(conn: &rusqlite::Connection, source: &str) -> Result<Vec<MirrorGroup>> {
    let mut st = conn.prepare_cached(
        "SELECT ext_id, name, description, attributes FROM mirror_groups WHERE source = ?1 ORDER BY ext_id",
    )?;
    let rows = st.query_map([source], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
    })?;
    rows.map(|r| {
        let (ext_id, name, description, a) = r?;
        Ok(MirrorGroup {
            ext_id,
            name,
            description,
            attributes: json_col("mirror_groups.attributes", &a)?,
            removed: None,
        })
    })
    .collect()
}

fn memberships_in(
    conn: &rusqlite::Connection,
    source: &str,
    filter: &str,
    values: &[String],
) -> Result<Vec<MirrorMembership>> {
    let mut st = conn.prepare(&format!(
        "SELECT group_id, member_id, member_is_group FROM mirror_memberships WHERE source = ?1 {filter}"
    ))?;
    let params = std::iter::once(source).chain(values.iter().map(String::as_str));
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        Ok(MirrorMembership {
            group_id: r.get(0)?,
            member_id: r.get(1)?,
            member_is_group: r.get(2)?,
            removed: false,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn attrs(a: &[(String, String)]) -> String {
    serde_json::to_string(a).unwrap_or_else(|_| "[]".into())
}

fn set_cursor(tx: &Transaction<'_>, source: &str, token: Option<&str>) -> rusqlite::Result<()> {
    match token {
        Some(t) => tx.execute(
            "INSERT INTO cursors (source, delta_token, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT(source) DO UPDATE SET delta_token = ?2, updated_at = ?3",
            params![source, t, now_ms()],
        )?,
        None => tx.execute("DELETE FROM cursors WHERE source = ?1", [source])?,
    };
    Ok(())
}

fn clear_staging(tx: &Transaction<'_>, run_id: i64, source: &str) -> rusqlite::Result<()> {
    for t in ["staging_users", "staging_groups", "staging_memberships"] {
        tx.execute(
            &format!("DELETE FROM {t} WHERE run_id = ?1 AND source = ?2"),
            params![run_id, source],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn user(id: &str, name: &str) -> MirrorUser {
        MirrorUser {
            ext_id: id.into(),
            username: name.into(),
            email: None,
            display_name: None,
            active: true,
            attributes: vec![("dept".into(), "x".into())],
            removed: None,
        }
    }

    #[test]
    fn staging_reaches_the_mirror_only_when_promoted() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        s.stage_page(1, "hr", &[user("1", "alice"), user("2", "bob")], &[], &[])
            .unwrap();
        s.promote_full(1, "hr", Some("d1")).unwrap();
        assert_eq!(s.mirror_users("hr").unwrap().len(), 2);
        // An incomplete second fetch: staged, then discarded.
        let again = s.stage_page(2, "hr", &[user("1", "alice")], &[], &[]).unwrap();
        assert_eq!(again, Repeated::default(), "another run's staging is another fetch");
        let twice = s
            .stage_page(
                2,
                "hr",
                &[user("1", "alice"), user("3", "carol"), user("3", "carol")],
                &[],
                &[],
            )
            .unwrap();
        assert_eq!(twice.users, ["1", "3"], "repeated across pages and within one");
        s.discard_staging(2, "hr").unwrap();
        s.stage_page(2, "hr", &[user("1", "alice")], &[], &[]).unwrap();
        s.discard_staging(2, "hr").unwrap();
        assert_eq!(s.mirror_users("hr").unwrap().len(), 2);
        assert_eq!(s.cursor("hr").unwrap().as_deref(), Some("d1"));
    }

    #[test]
    fn deltas_soft_delete_restore_and_hard_delete() {
        let s = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let g = MirrorGroup {
            ext_id: "g".into(),
            name: "dev".into(),
            description: None,
            attributes: vec![],
            removed: None,
        };
        let m = |u: &str| MirrorMembership {
            group_id: "g".into(),
            member_id: u.into(),
            member_is_group: false,
            removed: false,
        };
        s.stage_page(1, "e", &[user("1", "a"), user("2", "b")], &[g], &[m("1"), m("2")])
            .unwrap();
        s.promote_full(1, "e", Some("t1")).unwrap();
        let soft = MirrorUser {
            removed: Some(Removed::SoftDeleted),
            ..user("1", "a")
        };
        let hard = MirrorUser {
            removed: Some(Removed::Deleted),
            ..user("2", "b")
        };
        s.stage_page(2, "e", &[soft, hard], &[], &[]).unwrap();
        s.promote_delta(2, "e", Some("t2")).unwrap();
        let users = s.mirror_users("e").unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].removed, Some(Removed::SoftDeleted));
        assert_eq!(s.mirror_memberships("e").unwrap(), vec![m("1")]);
        s.stage_page(3, "e", &[user("1", "a")], &[], &[]).unwrap();
        s.promote_delta(3, "e", Some("t3")).unwrap();
        assert_eq!(s.mirror_users("e").unwrap()[0].removed, None);
        assert_eq!(s.cursor("e").unwrap().as_deref(), Some("t3"));
    }
}
