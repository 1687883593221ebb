//! What each applied run took away from its target: the guard sums the runs of a rolling
//! window, so that many runs each under the threshold cannot add up to a mass removal unseen.

use rusqlite::params;

use super::{Result, Store};

/// What one run took away (or a window's runs, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Destroyed {
    /// Accounts disabled or deleted.
    pub deprovisions: u64,
    /// Group memberships removed (deprovisioning's included).
    pub memberships_removed: u64,
    /// Accounts renamed.
    pub renames: u64,
    /// Email addresses changed.
    pub email_changes: u64,
}

impl Destroyed {
    /// True when nothing was taken away.
    pub fn is_empty(&self) -> bool {
        *self == Destroyed::default()
    }
}

/// Whether an administrator reviewed what a run applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// The guard let the plan through on its own.
    Unreviewed,
    /// An administrator approved exactly this plan: the window starts afresh after it.
    Approved,
}

/// The unreviewed runs of a window, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowTotals {
    /// Where the window starts (unix ms): its period's start, or the last approval if later.
    pub since: i64,
    /// Runs counted.
    pub runs: u64,
    /// What they took away.
    pub destroyed: Destroyed,
}

impl Store {
    /// Records what run `run_id` took away from `target`, applied at `at` (unix ms).
    pub fn record_destroyed(&self, target: &str, run_id: i64, at: i64, review: Review, d: &Destroyed) -> Result<()> {
        let reviewed = review == Review::Approved;
        self.conn().execute(
            "INSERT OR REPLACE INTO destroyed (run_id, target, applied_at, reviewed, deprovisions, memberships_removed, renames, email_changes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run_id,
                target,
                at,
                reviewed,
                d.deprovisions as i64,
                d.memberships_removed as i64,
                d.renames as i64,
                d.email_changes as i64
            ],
        )?;
        Ok(())
    }

    /// The unreviewed runs applied to `target` at or after `since` (unix ms) and after its last
    /// approved plan, summed.
    pub fn destroyed_since(&self, target: &str, since: i64) -> Result<WindowTotals> {
        let conn = self.reader();
        let approved: Option<i64> = conn.query_row(
            "SELECT max(applied_at) FROM destroyed WHERE target = ?1 AND reviewed = 1",
            [target],
            |r| r.get(0),
        )?;
        // Strictly after the approval: the approved run itself is the one the window restarts from.
        let since = approved.map_or(since, |a| since.max(a + 1));
        let (runs, deprovisions, memberships_removed, renames, email_changes): (i64, i64, i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(deprovisions), 0), coalesce(sum(memberships_removed), 0),
                        coalesce(sum(renames), 0), coalesce(sum(email_changes), 0)
                 FROM destroyed WHERE target = ?1 AND reviewed = 0 AND applied_at >= ?2",
                params![target, since],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
        Ok(WindowTotals {
            since,
            runs: runs as u64,
            destroyed: Destroyed {
                deprovisions: deprovisions as u64,
                memberships_removed: memberships_removed as u64,
                renames: renames as u64,
                email_changes: email_changes as u64,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn d(deprovisions: u64) -> Destroyed {
        Destroyed {
            deprovisions,
            memberships_removed: deprovisions * 2,
            renames: 1,
            email_changes: 0,
        }
    }

    #[test]
    fn the_window_sums_unreviewed_runs_of_its_period_since_the_last_approval() {
        let store = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let day = 86_400_000;
        store
            .record_destroyed("bb", 1, 10 * day, Review::Unreviewed, &d(49))
            .unwrap();
        store
            .record_destroyed("bb", 2, 12 * day, Review::Unreviewed, &d(49))
            .unwrap();
        store
            .record_destroyed("bb", 3, 13 * day, Review::Unreviewed, &d(49))
            .unwrap();
        store
            .record_destroyed("other", 4, 13 * day, Review::Unreviewed, &d(7))
            .unwrap();

        let w = store.destroyed_since("bb", 11 * day).unwrap();
        assert_eq!(w.runs, 2, "the run before the period is out of it");
        assert_eq!(w.destroyed.deprovisions, 98);
        assert_eq!(w.destroyed.memberships_removed, 196);
        assert_eq!(w.destroyed.renames, 2);
        assert_eq!(w.since, 11 * day);

        store
            .record_destroyed("bb", 5, 12 * day + 1, Review::Approved, &d(500))
            .unwrap();
        let w = store.destroyed_since("bb", 11 * day).unwrap();
        assert_eq!(w.runs, 1, "an approval starts the window afresh: {w:?}");
        assert_eq!(w.destroyed.deprovisions, 49);
        assert_eq!(w.since, 12 * day + 2);

        assert_eq!(store.destroyed_since("none", 0).unwrap(), WindowTotals::default());
    }
}
