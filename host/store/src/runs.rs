//! Runs, plans with their operations, and per-operation results.

use roster_model::{Outcome, PlanState, RunMode, RunState, Trigger};
use rusqlite::{OptionalExtension, params};

use super::destroyed::Review;
use super::presence::Liveness;
use super::{Result, Store, StoreError, json_col, now_ms, word};

/// A run as recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// What started it.
    pub trigger: Trigger,
    /// What it does.
    pub mode: RunMode,
    /// Target id.
    pub target: String,
    /// Source ids.
    pub sources: Vec<String>,
    /// Where it is, or how it ended.
    pub state: RunState,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
    /// The plan it made or applied.
    pub plan_id: Option<String>,
    /// Counts, stage times, API calls, warnings.
    pub summary: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Which runs to list; every field left out matches all.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFilter<'a> {
    /// In this state.
    pub state: Option<RunState>,
    /// Started this way.
    pub trigger: Option<Trigger>,
    /// Of this mode.
    pub mode: Option<RunMode>,
    /// Fetching this source.
    pub source: Option<&'a str>,
    /// Of this target.
    pub target: Option<&'a str>,
    /// Started at or after this (unix ms).
    pub since: Option<i64>,
}

/// A plan as recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanRow {
    /// Plan id.
    pub id: String,
    /// The run that made it.
    pub run_id: i64,
    /// Target id.
    pub target: String,
    /// sha256 over its operations.
    pub hash: String,
    /// Where it is.
    pub state: PlanState,
    /// Unix ms.
    pub created_at: i64,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// Why it was held or refused.
    pub guard: Option<serde_json::Value>,
}

/// The run that last applied a plan to a target, when it paused (the target's call budget ran
/// out): the plan the next run continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausedRun {
    /// The run.
    pub run_id: i64,
    /// The plan it applied part of.
    pub plan_id: String,
    /// Whether an administrator approved what it applied.
    pub review: Review,
}

/// One stored operation: (seq, kind, subject, detail, reason).
pub type PlanOpRow = (i64, String, String, serde_json::Value, String);

/// The result of one operation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResultRow {
    /// Operation sequence number in the plan.
    pub seq: i64,
    /// Done or failed.
    pub outcome: Outcome,
    /// Last HTTP status.
    pub status: Option<i64>,
    /// What Bitbucket said, or why skipped.
    pub message: Option<String>,
    /// HTTP requests the operation took, retries included (0 for a link-only operation).
    pub attempts: i64,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub finished_at: i64,
}

fn run_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RunRow, String, Option<String>)> {
    Ok((
        RunRow {
            id: r.get(0)?,
            trigger: word(r, 1)?,
            mode: word(r, 2)?,
            target: r.get(3)?,
            sources: Vec::new(),
            state: word(r, 5)?,
            started_at: r.get(6)?,
            finished_at: r.get(7)?,
            plan_id: r.get(8)?,
            summary: None,
            error: r.get(10)?,
        },
        r.get(4)?,
        r.get(9)?,
    ))
}

const RUN_COLS: &str = "id, trigger, mode, target, sources, state, started_at, finished_at, plan_id, summary, error";

fn finish_run_row((mut run, sources, summary): (RunRow, String, Option<String>)) -> Result<RunRow> {
    run.sources = json_col("runs.sources", &sources)?;
    run.summary = summary.map(|s| json_col("runs.summary", &s)).transpose()?;
    Ok(run)
}

impl Store {
    /// Starts a run record.
    pub fn create_run(&self, trigger: Trigger, mode: RunMode, target: &str, sources: &[String]) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (trigger, mode, target, sources, state, started_at, holder) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6)",
            params![trigger.as_str(), mode.as_str(), target, serde_json::to_string(sources).unwrap_or_default(), now_ms(), self.presence.name()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Closes a run record.
    pub fn finish_run(
        &self,
        id: i64,
        state: RunState,
        plan_id: Option<&str>,
        summary: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE runs SET state = ?2, finished_at = ?3, plan_id = COALESCE(?4, plan_id), summary = ?5, error = ?6 WHERE id = ?1",
            params![id, state.as_str(), now_ms(), plan_id, summary.to_string(), error],
        )?;
        Ok(())
    }

    /// Marks `interrupted` every run still recorded as `running` whose process has ended
    /// (killed, crashed, restarted), with its end time and an error saying so; runs of live
    /// processes, this one or another sharing the database, are left alone. Returns the runs
    /// it marked. Called when a process opens the store and before a run claims its target.
    pub fn interrupt_orphans(&self) -> Result<Vec<i64>> {
        let running: Vec<(i64, Option<String>)> = {
            let conn = self.conn();
            let mut st = conn.prepare_cached("SELECT id, holder FROM runs WHERE state = 'running' ORDER BY id")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut verdicts: std::collections::BTreeMap<String, Liveness> = Default::default();
        let mut marked = Vec::new();
        for (id, holder) in running {
            // A run recorded before holders were (migration 0006) has no live owner to wait for.
            let gone = match &holder {
                None => true,
                Some(h) => *verdicts.entry(h.clone()).or_insert_with(|| self.presence.liveness(h)) == Liveness::Gone,
            };
            if !gone {
                continue;
            }
            let pid = holder
                .as_deref()
                .and_then(|h| h.split('-').next())
                .map_or_else(String::new, |p| format!(" (pid {p})"));
            let error = format!(
                "interrupted: the process running it{pid} ended before the run did (killed, crashed or restarted); \
                 what it applied is kept, and the next run plans from Bitbucket as it is now"
            );
            let summary = serde_json::json!({ "warnings": [error] });
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let changed = tx.execute(
                "UPDATE runs SET state = 'interrupted', finished_at = ?2, summary = COALESCE(summary, ?3), error = ?4
                 WHERE id = ?1 AND state = 'running'",
                params![id, now_ms(), summary.to_string(), error],
            )?;
            if changed > 0 {
                // What its fetch staged will never be promoted; a killed run would otherwise
                // leave its pages in the database for good.
                for table in ["staging_users", "staging_groups", "staging_memberships"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id])?;
                }
                marked.push(id);
            }
            tx.commit()?;
        }
        self.presence.sweep();
        Ok(marked)
    }

    /// One run.
    pub fn run(&self, id: i64) -> Result<RunRow> {
        let row = self
            .reader()
            .query_row(&format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"), [id], run_from)
            .optional()?;
        finish_run_row(row.ok_or_else(|| StoreError::NotFound(format!("no run {id}")))?)
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: u32) -> Result<Vec<RunRow>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!("SELECT {RUN_COLS} FROM runs ORDER BY id DESC LIMIT ?1"))?;
        let rows: Vec<_> = st.query_map([limit], run_from)?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(finish_run_row).collect()
    }

    /// Runs newest first, filtered by state, trigger and start time.
    pub fn runs_filtered(&self, f: &RunFilter<'_>, limit: u32) -> Result<Vec<RunRow>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!(
            "SELECT {RUN_COLS} FROM runs WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR trigger = ?2)
             AND (?3 IS NULL OR started_at >= ?3) AND (?4 IS NULL OR mode = ?4)
             AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(runs.sources) WHERE value = ?5))
             AND (?7 IS NULL OR target = ?7)
             ORDER BY id DESC LIMIT ?6"
        ))?;
        let rows: Vec<_> = st
            .query_map(
                rusqlite::params![
                    f.state.map(RunState::as_str),
                    f.trigger.map(Trigger::as_str),
                    f.since,
                    f.mode.map(RunMode::as_str),
                    f.source,
                    limit,
                    f.target
                ],
                run_from,
            )?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(finish_run_row).collect()
    }

    /// Persists a plan and its operations, superseding any other open plan of the target but
    /// `kept` (a held plan the new one leaves to its approver).
    /// `ops` yields (kind, subject, detail JSON, reason) in order; it is consumed row by row so a
    /// plan of a million operations never exists twice in memory.
    pub fn save_plan<'a>(
        &self,
        plan: &PlanRow,
        kept: Option<&str>,
        ops: impl Iterator<Item = (&'a str, &'a str, String, &'a str)>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE plans SET state = 'superseded' WHERE target = ?1 AND state IN ('draft', 'held') AND id != ?2 AND id IS NOT ?3",
            params![plan.target, plan.id, kept],
        )?;
        tx.execute(
            "INSERT INTO plans (id, run_id, target, hash, state, created_at, guard) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![plan.id, plan.run_id, plan.target, plan.hash, plan.state.as_str(), plan.created_at, plan.guard.as_ref().map(|g| g.to_string())],
        )?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO plan_ops (plan_id, seq, kind, subject, detail, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (seq, (kind, subject, detail, reason)) in ops.enumerate() {
                st.execute(params![plan.id, seq as i64, kind, subject, detail, reason])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The id of the target's newest plan when that plan is held (not approved, rejected or
    /// superseded).
    pub fn held_plan(&self, target: &str) -> Result<Option<String>> {
        let newest: Option<(String, String)> = self
            .reader()
            .query_row(
                "SELECT id, state FROM plans WHERE target = ?1 AND state IN ('draft', 'held') ORDER BY created_at DESC, rowid DESC LIMIT 1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(newest.and_then(|(id, state)| (state == "held").then_some(id)))
    }

    /// The run that last applied a plan to `target` (a full or incremental sync, or an approved
    /// plan applied; dry runs and single-user syncs aside), when it paused.
    pub fn paused_run(&self, target: &str) -> Result<Option<PausedRun>> {
        let conn = self.reader();
        let last: Option<(i64, String, String)> = conn
            .query_row(
                "SELECT id, plan_id, state FROM runs WHERE target = ?1 AND plan_id IS NOT NULL
                 AND mode IN ('full', 'incremental', 'apply-plan') AND state != 'running'
                 ORDER BY id DESC LIMIT 1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((run_id, plan_id, _)) = last.filter(|(_, _, state)| state == RunState::Paused.as_str()) else {
            return Ok(None);
        };
        // What the run applied is recorded with its review (an approval is recorded even when
        // it took nothing away); no record: the guard let it through on its own.
        let reviewed: Option<bool> = conn
            .query_row("SELECT reviewed FROM destroyed WHERE run_id = ?1", [run_id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(Some(PausedRun {
            run_id,
            plan_id,
            review: if reviewed == Some(true) {
                Review::Approved
            } else {
                Review::Unreviewed
            },
        }))
    }

    /// One plan.
    pub fn plan(&self, id: &str) -> Result<PlanRow> {
        let row = self
            .reader()
            .query_row(
                "SELECT id, run_id, target, hash, state, created_at, decided_by, guard FROM plans WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        word::<PlanState>(r, 4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get::<_, Option<String>>(7)?,
                    ))
                },
            )
            .optional()?;
        let (id, run_id, target, hash, state, created_at, decided_by, guard) =
            row.ok_or_else(|| StoreError::NotFound(format!("no plan '{id}'; see `roster runs list`")))?;
        Ok(PlanRow {
            id,
            run_id,
            target,
            hash,
            state,
            created_at,
            decided_by,
            guard: guard.map(|g| json_col("plans.guard", &g)).transpose()?,
        })
    }

    /// A plan's operations in order: (seq, kind, subject, detail, reason).
    pub fn plan_ops(&self, id: &str) -> Result<Vec<PlanOpRow>> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT seq, kind, subject, detail, reason FROM plan_ops WHERE plan_id = ?1 ORDER BY seq",
        )?;
        let rows: Vec<(i64, String, String, String, String)> = st
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(s, k, sub, d, r)| Ok((s, k, sub, json_col("plan_ops.detail", &d)?, r)))
            .collect()
    }

    /// Moves a plan to a new state, recording who decided.
    pub fn set_plan_state(&self, id: &str, state: PlanState, by: Option<&str>) -> Result<()> {
        self.conn().execute(
            "UPDATE plans SET state = ?2, decided_at = CASE WHEN ?3 IS NULL THEN decided_at ELSE ?4 END, decided_by = COALESCE(?3, decided_by) WHERE id = ?1",
            params![id, state.as_str(), by, now_ms()],
        )?;
        Ok(())
    }

    /// Records the result of one operation.
    pub fn record_result(&self, run_id: i64, plan_id: &str, seq: i64, r: &ResultRow) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO results (run_id, plan_id, seq, outcome, status, message, attempts, started_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![run_id, plan_id, seq, r.outcome.as_str(), r.status, r.message, r.attempts, r.started_at, r.finished_at],
        )?;
        Ok(())
    }

    /// Results of a run, by operation.
    pub fn results(&self, run_id: i64) -> Result<Vec<ResultRow>> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT seq, outcome, status, message, attempts, started_at, finished_at FROM results WHERE run_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([run_id], |r| {
            Ok(ResultRow {
                seq: r.get(0)?,
                outcome: word(r, 1)?,
                status: r.get(2)?,
                message: r.get(3)?,
                attempts: r.get(4)?,
                started_at: r.get(5)?,
                finished_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    #[test]
    fn the_paused_run_is_the_last_that_applied_a_plan_and_says_whether_it_was_approved() {
        let store = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let run = |mode: RunMode, state: RunState, plan: &str| {
            let id = store.create_run(Trigger::Cli, mode, "bb", &[]).unwrap();
            store
                .finish_run(id, state, Some(plan), &serde_json::json!({}), None)
                .unwrap();
            id
        };
        assert_eq!(store.paused_run("bb").unwrap(), None, "no run yet");
        let paused = run(RunMode::Full, RunState::Paused, "p1");
        let want = |review| {
            Some(PausedRun {
                run_id: paused,
                plan_id: "p1".into(),
                review,
            })
        };
        assert_eq!(store.paused_run("bb").unwrap(), want(Review::Unreviewed));
        assert_eq!(store.paused_run("other").unwrap(), None, "another target's runs");
        // A dry run, a single-user sync and a run still going do not end the continuation.
        run(RunMode::DryRun, RunState::Planned, "d1");
        run(RunMode::SingleUser, RunState::Succeeded, "s1");
        store.create_run(Trigger::Cli, RunMode::Full, "bb", &[]).unwrap();
        assert_eq!(store.paused_run("bb").unwrap(), want(Review::Unreviewed));
        store
            .record_destroyed("bb", paused, now_ms(), Review::Approved, &crate::Destroyed::default())
            .unwrap();
        assert_eq!(
            store.paused_run("bb").unwrap(),
            want(Review::Approved),
            "an approved plan"
        );
        // A run that applied its plan to the end: nothing to continue.
        run(RunMode::Incremental, RunState::Succeeded, "p2");
        assert_eq!(store.paused_run("bb").unwrap(), None);
    }

    #[test]
    fn runs_of_ended_processes_are_interrupted_and_live_ones_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("roster.db");
        let open = || Store::open(&db, Key::from_bytes([1; 32])).unwrap();
        let me = open();
        let live = open();
        let dead = open();
        let mine = me.create_run(Trigger::Cli, RunMode::Full, "bb", &[]).unwrap();
        let theirs = live.create_run(Trigger::Api, RunMode::Full, "bb", &[]).unwrap();
        let killed = dead.create_run(Trigger::Cli, RunMode::Full, "bb", &[]).unwrap();
        dead.conn()
            .execute(
                "INSERT INTO staging_users (run_id, source, ext_id, username, active, attributes) VALUES (?1, 'hr', 'u1', 'alice', 1, '[]')",
                [killed],
            )
            .unwrap();
        let done = dead.create_run(Trigger::Cli, RunMode::Full, "bb", &[]).unwrap();
        dead.finish_run(done, RunState::Succeeded, None, &serde_json::json!({}), None)
            .unwrap();
        drop(dead);
        // A run from before holders were recorded.
        let old = me.create_run(Trigger::Cli, RunMode::Full, "bb", &[]).unwrap();
        me.conn()
            .execute("UPDATE runs SET holder = NULL WHERE id = ?1", [old])
            .unwrap();

        assert_eq!(me.interrupt_orphans().unwrap(), vec![killed, old]);
        let k = me.run(killed).unwrap();
        assert_eq!(k.state, RunState::Interrupted);
        assert!(k.finished_at.is_some());
        let why = k.error.unwrap();
        assert!(why.contains("ended before the run did"), "{why}");
        let staged: i64 = me
            .conn()
            .query_row("SELECT count(*) FROM staging_users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(staged, 0, "the killed run's staging is cleared");
        assert_eq!(me.run(mine).unwrap().state, RunState::Running);
        assert_eq!(
            me.run(theirs).unwrap().state,
            RunState::Running,
            "another live process's run"
        );
        assert_eq!(me.run(done).unwrap().state, RunState::Succeeded);
        assert!(me.interrupt_orphans().unwrap().is_empty(), "marked once");

        drop(live);
        assert_eq!(me.interrupt_orphans().unwrap(), vec![theirs]);
    }
}
