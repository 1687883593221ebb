//! The apply stage: a plan's operations against the target, stage by stage (groups, renames,
//! creates, updates, adds, removals, deprovisioning), with bounded concurrency inside a stage.
//! Every outcome is recorded. Identity links are written before the call that creates or renames
//! an account, so a crash in between never leaves an account Roster made but does not own;
//! re-running converges without duplicates.

use futures::stream::{self, StreamExt};

use roster_model::Outcome;
use roster_store::{IdentityState, ResultRow, Store, StoreError, now_ms};

use crate::Progress;
use crate::model::{Op, PlannedOp};
use crate::target::{OpOutcome, Target, TargetError};

/// Counts of outcomes.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Applied {
    /// Operations that succeeded (or were already true).
    pub done: usize,
    /// Operations that failed.
    pub failed: usize,
    /// Operations not started because the run was cancelled.
    pub cancelled: usize,
}

/// What apply needs.
pub struct ApplyContext<'a> {
    /// The target.
    pub target: &'a dyn Target,
    /// The store.
    pub store: &'a Store,
    /// Target id.
    pub target_id: &'a str,
    /// Run id.
    pub run_id: i64,
    /// Plan id.
    pub plan_id: &'a str,
    /// Operations in flight at once.
    pub concurrency: usize,
}

/// Applies `ops` (in plan order; `seq` is the index). Returns the counts and, per operation,
/// whether it was done.
pub async fn apply(ctx: &ApplyContext<'_>, ops: &[PlannedOp], progress: &dyn Progress) -> (Applied, Vec<bool>) {
    let mut totals = Applied::default();
    let mut done = vec![false; ops.len()];
    progress.stage("apply", ops.len() as u64);
    let mut start = 0;
    while start < ops.len() {
        let stage = ops[start].op.stage();
        let end = ops[start..]
            .iter()
            .position(|o| o.op.stage() != stage)
            .map_or(ops.len(), |n| start + n);
        let results: Vec<Option<(usize, bool)>> = stream::iter(start..end)
            .map(|seq| async move {
                // A cancelled run starts no new operation; those in flight finish and are
                // recorded, so the next run converges from a known state.
                if progress.cancelled() {
                    return None;
                }
                let started = now_ms();
                let OpOutcome { result, requests } = execute(ctx, &ops[seq].op).await;
                let (ok, status, message) = match result {
                    Ok(note) => (true, None, note),
                    Err(e) => {
                        tracing::warn!(op = ops[seq].op.kind(), subject = ops[seq].op.subject(), "{e}");
                        (false, e.status.map(i64::from), Some(e.to_string()))
                    }
                };
                let row = ResultRow {
                    seq: seq as i64,
                    outcome: if ok { Outcome::Done } else { Outcome::Failed },
                    status,
                    message,
                    attempts: i64::from(requests),
                    started_at: started,
                    finished_at: now_ms(),
                };
                if let Err(e) = ctx.store.record_result(ctx.run_id, ctx.plan_id, seq as i64, &row) {
                    tracing::error!("cannot record the result of operation {seq}: {e}");
                }
                progress.advance(1);
                Some((seq, ok))
            })
            .buffer_unordered(ctx.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            match r {
                Some((seq, true)) => {
                    totals.done += 1;
                    done[seq] = true;
                }
                Some((_, false)) => totals.failed += 1,
                None => totals.cancelled += 1,
            }
        }
        start = end;
    }
    progress.finish();
    (totals, done)
}

fn store_err(e: StoreError) -> TargetError {
    TargetError::other(format!("cannot record the operation in the store: {e}"))
}

/// The store's side of an operation around the target's: identity links before an account is
/// created (so a crash cannot orphan it) and after it is created, renamed, adopted, disabled or
/// deleted; managed groups before a group is created.
async fn execute(ctx: &ApplyContext<'_>, op: &Op) -> OpOutcome {
    let (store, target) = (ctx.store, ctx.target_id);
    let before = match op {
        Op::CreateGroup { group } => store.add_managed_group(target, group),
        Op::CreateUser { user, records, .. } => store.link(target, records, user, IdentityState::Pending),
        _ => Ok(()),
    };
    if let Err(e) = before {
        return OpOutcome {
            result: Err(store_err(e)),
            requests: 0,
        };
    }
    let mut outcome = ctx.target.apply(op).await;
    if outcome.result.is_ok() {
        let after = match op {
            Op::RenameUser { to, records, .. } => store.link(target, records, to, IdentityState::Active),
            Op::CreateUser { user, records, .. } | Op::AdoptUser { user, records } => {
                store.link(target, records, user, IdentityState::Active)
            }
            Op::Deactivate { user, .. } => store.set_identity_state(target, user, IdentityState::Disabled),
            Op::DeleteUser { user, .. } => store.set_identity_state(target, user, IdentityState::Deleted),
            _ => Ok(()),
        };
        if let Err(e) = after {
            outcome.result = Err(store_err(e));
        }
    }
    outcome
}
