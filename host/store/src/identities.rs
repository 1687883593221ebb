//! Identity links and managed groups: what Roster owns in each target.

use rusqlite::params;

use super::{Result, Store, now_ms};

/// Lifecycle of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    /// Written before the Bitbucket call that creates the account; owned from then on.
    Pending,
    /// The account exists and follows the IdP.
    Active,
    /// Deprovisioned by removing its licence; comes back when the IdP enables it again.
    Disabled,
    /// Deleted from Bitbucket.
    Deleted,
}

impl IdentityState {
    fn as_str(self) -> &'static str {
        match self {
            IdentityState::Pending => "pending",
            IdentityState::Active => "active",
            IdentityState::Disabled => "disabled",
            IdentityState::Deleted => "deleted",
        }
    }
    fn parse(s: &str) -> IdentityState {
        match s {
            "pending" => IdentityState::Pending,
            "disabled" => IdentityState::Disabled,
            "deleted" => IdentityState::Deleted,
            _ => IdentityState::Active,
        }
    }
}

/// One link: IdP record → Bitbucket username.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// Source id.
    pub source: String,
    /// IdP immutable id.
    pub ext_id: String,
    /// Bitbucket username, lower case.
    pub username: String,
    /// State.
    pub state: IdentityState,
}

impl Store {
    /// Every link of a target.
    pub fn identities(&self, target: &str) -> Result<Vec<Identity>> {
        let conn = self.reader();
        let mut st = conn.prepare_cached("SELECT source, ext_id, username, state FROM identities WHERE target = ?1")?;
        let rows = st.query_map([target], |r| {
            Ok(Identity {
                source: r.get(0)?,
                ext_id: r.get(1)?,
                username: r.get(2)?,
                state: IdentityState::parse(&r.get::<_, String>(3)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The links of a target to these usernames (lower case) or these (source, ext_id) records:
    /// one person's, without reading every link.
    pub fn identities_matching(
        &self,
        target: &str,
        usernames: &[String],
        records: &[(String, String)],
    ) -> Result<Vec<Identity>> {
        let conn = self.reader();
        let row = |r: &rusqlite::Row<'_>| {
            Ok(Identity {
                source: r.get(0)?,
                ext_id: r.get(1)?,
                username: r.get(2)?,
                state: IdentityState::parse(&r.get::<_, String>(3)?),
            })
        };
        let mut out: Vec<Identity> = Vec::new();
        let mut by_name = conn.prepare_cached(
            "SELECT source, ext_id, username, state FROM identities WHERE target = ?1 AND username = ?2",
        )?;
        for u in usernames {
            for i in by_name.query_map(params![target, u.to_lowercase()], row)? {
                out.push(i?);
            }
        }
        let mut by_record = conn.prepare_cached(
            "SELECT source, ext_id, username, state FROM identities WHERE target = ?1 AND source = ?2 AND ext_id = ?3",
        )?;
        for (source, ext_id) in records {
            for i in by_record.query_map(params![target, source, ext_id], row)? {
                out.push(i?);
            }
        }
        out.sort_by(|a, b| (&a.source, &a.ext_id).cmp(&(&b.source, &b.ext_id)));
        out.dedup_by(|a, b| a.source == b.source && a.ext_id == b.ext_id);
        Ok(out)
    }

    /// Links (or relinks) IdP records to a username with a state, in one transaction.
    pub fn link(&self, target: &str, records: &[(String, String)], username: &str, state: IdentityState) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO identities (target, source, ext_id, username, state, first_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(target, source, ext_id) DO UPDATE SET
                   last_renamed = CASE WHEN username != ?4 THEN ?6 ELSE last_renamed END, username = ?4, state = ?5",
            )?;
            for (source, ext_id) in records {
                st.execute(params![
                    target,
                    source,
                    ext_id,
                    username.to_lowercase(),
                    state.as_str(),
                    now_ms()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets the state of every link to `username`.
    pub fn set_identity_state(&self, target: &str, username: &str, state: IdentityState) -> Result<()> {
        self.conn().execute(
            "UPDATE identities SET state = ?3 WHERE target = ?1 AND username = ?2",
            params![target, username.to_lowercase(), state.as_str()],
        )?;
        Ok(())
    }

    /// Groups Roster manages in a target.
    pub fn managed_groups(&self, target: &str) -> Result<Vec<String>> {
        let conn = self.reader();
        let mut st = conn.prepare_cached("SELECT name FROM managed_groups WHERE target = ?1 ORDER BY name")?;
        let rows = st.query_map([target], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records that Roster manages a group (before creating it, so a crash cannot orphan it).
    pub fn add_managed_group(&self, target: &str, name: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO managed_groups (target, name, created_at) VALUES (?1, ?2, ?3)",
            params![target, name, now_ms()],
        )?;
        Ok(())
    }
}
