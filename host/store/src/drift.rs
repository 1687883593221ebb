//! Drift: what Roster last left in the groups it manages (the baseline the next read is compared
//! with) and the hand changes an administrator's policy adopted.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::params;

use super::{Result, Store, now_ms};

/// What Roster last left in a target's managed groups: group → lower-case members.
pub type Baseline = BTreeMap<String, BTreeSet<String>>;

/// A hand change Roster keeps (`drift = "adopt"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// The group.
    pub group: String,
    /// The lower-case member; `None` for the group itself.
    pub member: Option<String>,
    /// True: added by hand; false: removed (or, for the group, deleted) by hand.
    pub present: bool,
    /// When it was adopted (unix ms).
    pub adopted_at: i64,
}

impl Store {
    /// The baseline of `target`, or `None` before any run recorded one.
    pub fn drift_baseline(&self, target: &str) -> Result<Option<Baseline>> {
        let conn = self.reader();
        let mut st = conn.prepare_cached("SELECT grp, member FROM drift_baseline WHERE target = ?1")?;
        let rows = st.query_map([target], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut base = Baseline::new();
        let mut any = false;
        for row in rows {
            let (group, member) = row?;
            any = true;
            let members = base.entry(group).or_default();
            if !member.is_empty() {
                members.insert(member);
            }
        }
        // A recorded baseline always has a marker row (see `set_drift_baseline`).
        base.remove("");
        Ok(any.then_some(base))
    }

    /// Replaces the baseline of `target` in one transaction.
    pub fn set_drift_baseline(&self, target: &str, base: &Baseline) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM drift_baseline WHERE target = ?1", [target])?;
        {
            let mut st =
                tx.prepare_cached("INSERT OR IGNORE INTO drift_baseline (target, grp, member) VALUES (?1, ?2, ?3)")?;
            // A marker, so a target whose managed groups are none still has a baseline.
            st.execute(params![target, "", ""])?;
            for (group, members) in base {
                st.execute(params![target, group, ""])?;
                for m in members {
                    st.execute(params![target, group, m])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The hand changes adopted in `target`.
    pub fn drift_adopted(&self, target: &str) -> Result<Vec<Adopted>> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT grp, member, present, adopted_at FROM drift_adopted WHERE target = ?1 ORDER BY grp, member",
        )?;
        let rows = st.query_map([target], |r| {
            let member: String = r.get(1)?;
            Ok(Adopted {
                group: r.get(0)?,
                member: (!member.is_empty()).then_some(member),
                present: r.get(2)?,
                adopted_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Adopts hand changes: each `(group, member, present)`; `member` `None` is the group.
    pub fn adopt_drift(&self, target: &str, changes: &[(String, Option<String>, bool)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO drift_adopted (target, grp, member, present, adopted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let at = now_ms();
            for (group, member, present) in changes {
                st.execute(params![target, group, member.as_deref().unwrap_or(""), present, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets adopted changes the sources now agree with.
    pub fn forget_adopted(&self, target: &str, changes: &[(String, Option<String>)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut st =
                tx.prepare_cached("DELETE FROM drift_adopted WHERE target = ?1 AND grp = ?2 AND member = ?3")?;
            for (group, member) in changes {
                st.execute(params![target, group, member.as_deref().unwrap_or("")])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    #[test]
    fn a_baseline_round_trips_and_empty_groups_and_targets_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("roster.db"), Key::from_bytes([1; 32])).unwrap();
        assert_eq!(store.drift_baseline("bb").unwrap(), None);
        store.set_drift_baseline("bb", &Baseline::new()).unwrap();
        assert_eq!(store.drift_baseline("bb").unwrap(), Some(Baseline::new()));
        let base = Baseline::from([
            (
                "devs".to_string(),
                BTreeSet::from(["ann".to_string(), "bob".to_string()]),
            ),
            ("empty".to_string(), BTreeSet::new()),
        ]);
        store.set_drift_baseline("bb", &base).unwrap();
        assert_eq!(store.drift_baseline("bb").unwrap(), Some(base));
        assert_eq!(store.drift_baseline("other").unwrap(), None);

        store
            .adopt_drift(
                "bb",
                &[("devs".into(), Some("eve".into()), true), ("ops".into(), None, false)],
            )
            .unwrap();
        let adopted = store.drift_adopted("bb").unwrap();
        assert_eq!(adopted.len(), 2);
        assert_eq!((adopted[0].member.as_deref(), adopted[0].present), (Some("eve"), true));
        assert_eq!((adopted[1].member.as_deref(), adopted[1].present), (None, false));
        store.forget_adopted("bb", &[("ops".into(), None)]).unwrap();
        assert_eq!(store.drift_adopted("bb").unwrap().len(), 1);
    }
}
