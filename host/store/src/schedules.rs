//! What the scheduler remembers per source across restarts (`schedule_state`).

use rusqlite::{OptionalExtension, params};

use super::{Result, Store};

/// A source's schedule history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScheduleState {
    /// When the scheduler first saw the source (unix ms); staleness counts from it until a
    /// first success.
    pub first_seen_at: Option<i64>,
    /// The fire time last run (unix ms).
    pub last_fire_at: Option<i64>,
    /// When a run of this source last succeeded (unix ms).
    pub last_success_at: Option<i64>,
}

impl Store {
    /// The source's schedule history.
    pub fn schedule_state(&self, source: &str) -> Result<ScheduleState> {
        Ok(self
            .reader()
            .query_row(
                "SELECT first_seen_at, last_fire_at, last_success_at FROM schedule_state WHERE source = ?1",
                [source],
                |r| {
                    Ok(ScheduleState {
                        first_seen_at: r.get(0)?,
                        last_fire_at: r.get(1)?,
                        last_success_at: r.get(2)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Records that the fire time `at` (unix ms) was run.
    pub fn record_fire(&self, source: &str, at: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO schedule_state (source, first_seen_at, last_fire_at) VALUES (?1, ?3, ?2)
             ON CONFLICT(source) DO UPDATE SET last_fire_at = max(coalesce(last_fire_at, 0), ?2)",
            params![source, at, super::now_ms()],
        )?;
        Ok(())
    }

    /// Records a successful run of the source at `at` (unix ms).
    pub fn record_success(&self, source: &str, at: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO schedule_state (source, first_seen_at, last_success_at) VALUES (?1, ?2, ?2)
             ON CONFLICT(source) DO UPDATE SET last_success_at = ?2",
            params![source, at],
        )?;
        Ok(())
    }
}
