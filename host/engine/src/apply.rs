//! The apply stage: a plan's operations against the target — groups, renames, creates, updates
//! and adds as one pipeline in which each waits only for what it needs, then removals,
//! deprovisioning and group deletions stage by stage — with bounded concurrency throughout.
//! Every outcome is recorded. Identity links are written before the call that creates or renames
//! an account, so a crash in between never leaves an account Roster made but does not own;
//! re-running converges without duplicates.

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use roster_model::Outcome;
use roster_store::{IdentityState, ResultRow, Store, StoreError, now_ms};

use crate::Progress;
use crate::model::{Op, PlannedOp};
use crate::target::{Accounts, OpOutcome, Target, TargetError};

/// Counts of outcomes.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Applied {
    /// Operations that succeeded (or were already true).
    pub done: usize,
    /// Operations that failed.
    pub failed: usize,
    /// Operations not started because the run was cancelled.
    pub cancelled: usize,
    /// Operations not started because the target failed an earlier one in a way that is not
    /// about that operation (unreachable, erroring, throttling past the retries, refusing the
    /// credentials), or answered 429 (throttled past the retries, a call budget spent): not
    /// applied, and not failures; the next run plans them again.
    #[serde(default)]
    pub stopped: usize,
}

/// What applying a plan came to.
#[derive(Debug, Default, Clone)]
pub struct ApplyOutcome {
    /// The counts.
    pub applied: Applied,
    /// The failure that stopped the apply stage, naming the operation and the cause.
    pub stopped_by: Option<String>,
    /// The status the target answered that failure with (429: throttled or out of its call
    /// budget, and the run pauses rather than fails).
    pub stopped_status: Option<u16>,
    /// Per operation of the plan, whether it was done (what the guard's window counts).
    pub done: Vec<bool>,
}

/// Whether a failed operation says the target as a whole cannot be written to now, rather
/// than that this operation cannot be made: no answer, a server error, throttling that
/// outlasted the retries, or credentials no longer accepted.
fn target_unavailable(e: &TargetError) -> bool {
    match e.status {
        None => true,
        Some(s) => s == 401 || s == 429 || s >= 500,
    }
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

/// The last stage that only adds (groups, renames, creates, updates, additions): these run as
/// one pipeline, each operation once those it needs are done; what takes away runs after, stage
/// by stage.
const LAST_ADDING_STAGE: u8 = 4;

/// Applies `ops` (in plan order; `seq` is the index). Once the target fails an operation in a
/// way that is not about that operation, no further operation starts: the plan's later stages
/// take away (removals, deprovisioning), and taking away while additions failed would leave
/// people with less than either the old or the new state gives them.
///
/// Operations start in plan order with `concurrency` in flight, across the adding stages: a
/// group's addition waits only for the creates, renames and group it names (and those before
/// them in the plan), so a slow target is kept busy instead of drained at each stage's end.
pub async fn apply(ctx: &ApplyContext<'_>, ops: &[PlannedOp], progress: &dyn Progress) -> ApplyOutcome {
    let mut totals = Applied::default();
    let mut done = vec![false; ops.len()];
    let stopped_by: std::sync::Mutex<Option<(String, Option<u16>)>> = std::sync::Mutex::new(None);
    progress.stage("apply", ops.len() as u64);
    let mut start = 0;
    while start < ops.len() {
        let stage = ops[start].op.stage();
        let adding = stage <= LAST_ADDING_STAGE;
        let end = ops[start..]
            .iter()
            .position(|o| {
                let s = o.op.stage();
                if adding { s > LAST_ADDING_STAGE } else { s != stage }
            })
            .map_or(ops.len(), |n| start + n);
        let phase = &ops[start..end];
        let after = if adding {
            prerequisites(phase)
        } else {
            vec![0; phase.len()]
        };
        let mut finished = vec![false; phase.len()];
        // Every operation of the phase before `prefix` has finished.
        let (mut prefix, mut next) = (0usize, 0usize);
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < ctx.concurrency.max(1) && next < phase.len() && after[next] as usize <= prefix {
                in_flight.push(run_one(ctx, ops, start + next, progress, &stopped_by));
                next += 1;
            }
            let Some((seq, started)) = in_flight.next().await else {
                break;
            };
            match started {
                Started::Done => {
                    totals.done += 1;
                    done[seq] = true;
                }
                Started::Failed => totals.failed += 1,
                Started::Cancelled => totals.cancelled += 1,
                Started::Stopped => totals.stopped += 1,
            }
            finished[seq - start] = true;
            while prefix < phase.len() && finished[prefix] {
                prefix += 1;
            }
        }
        start = end;
    }
    progress.finish();
    let stop = stopped_by
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    ApplyOutcome {
        applied: totals,
        done,
        stopped_status: stop.as_ref().and_then(|(_, status)| *status),
        stopped_by: stop.map(|(why, _)| why),
    }
}

/// For each operation of the adding stages, 1 + the index of the last earlier operation it
/// needs done first (0: none): a create or adoption waits for a rename freeing its name, a
/// rename for one freeing its new name, an update for the create or rename giving the name it
/// uses, an addition for its group's create and its users' creates and renames. One number per
/// operation, not a graph: operations start in plan order, so waiting for everything up to the
/// last one needed costs nothing more when, as in a plan, they come first.
fn prerequisites(phase: &[PlannedOp]) -> Vec<u32> {
    use std::collections::HashMap;
    let mut freed: HashMap<String, u32> = HashMap::new();
    let mut named: HashMap<String, u32> = HashMap::new();
    let mut groups: HashMap<&str, u32> = HashMap::new();
    // A rename takes a name away, so it is a barrier: it starts only once every earlier write
    // has finished (a write that failed because the target is failing then stops it), and no
    // later write starts before it ends — a rename is never in flight beside a failing write.
    let mut last_rename = 0u32;
    let mut after = Vec::with_capacity(phase.len());
    for (i, o) in phase.iter().enumerate() {
        let at = i as u32 + 1;
        if matches!(o.op, Op::RenameUser { .. }) {
            last_rename = at;
            after.push(i as u32);
            freed_named(&mut freed, &mut named, &o.op, at);
            continue;
        }
        let needs = |map: &HashMap<String, u32>, name: &str| map.get(&name.to_lowercase()).copied().unwrap_or(0);
        let needed = match &o.op {
            Op::CreateGroup { group } => {
                groups.insert(group.as_str(), at);
                0
            }
            Op::RenameUser { .. } => 0,
            Op::CreateUser { user, .. } | Op::AdoptUser { user, .. } => {
                let n = needs(&freed, user);
                named.insert(user.to_lowercase(), at);
                n
            }
            Op::UpdateUser { user, .. } => needs(&named, user),
            Op::AddMembers { group, users } => users
                .iter()
                .map(|u| needs(&named, u))
                .chain(std::iter::once(groups.get(group.as_str()).copied().unwrap_or(0)))
                .max()
                .unwrap_or(0),
            Op::RemoveMember { .. } | Op::Deactivate { .. } | Op::DeleteUser { .. } | Op::DeleteGroup { .. } => 0,
        };
        after.push(needed.max(last_rename));
    }
    after
}

/// Records the names a rename frees and gives.
fn freed_named(
    freed: &mut std::collections::HashMap<String, u32>,
    named: &mut std::collections::HashMap<String, u32>,
    op: &Op,
    at: u32,
) {
    if let Op::RenameUser { from, to, .. } = op {
        freed.insert(from.to_lowercase(), at);
        named.insert(to.to_lowercase(), at);
    }
}

/// Runs one operation and records its outcome.
async fn run_one(
    ctx: &ApplyContext<'_>,
    ops: &[PlannedOp],
    seq: usize,
    progress: &dyn Progress,
    stopped_by: &std::sync::Mutex<Option<(String, Option<u16>)>>,
) -> (usize, Started) {
    // A cancelled or stopped run starts no new operation; those in flight finish and are
    // recorded, so the next run converges from a known state.
    if progress.cancelled() {
        return (seq, Started::Cancelled);
    }
    if stopped_by
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .is_some()
    {
        return (seq, Started::Stopped);
    }
    let started = now_ms();
    let OpOutcome { result, requests } = execute(ctx, &ops[seq].op).await;
    let (started_as, status, message) = match result {
        Ok(note) => (Started::Done, None, note),
        Err(e) => {
            tracing::warn!(op = ops[seq].op.kind(), subject = ops[seq].op.subject(), "{e}");
            if target_unavailable(&e) {
                let mut first = stopped_by.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                first.get_or_insert_with(|| {
                    (
                        format!("{} {} failed: {e}", ops[seq].op.kind(), ops[seq].op.subject()),
                        e.status,
                    )
                });
            }
            // A 429 says "not now", not "no": the operation is left for the next run like
            // those after it, not counted as a failure.
            let how = if e.status == Some(429) {
                Started::Stopped
            } else {
                Started::Failed
            };
            (how, e.status.map(i64::from), Some(e.to_string()))
        }
    };
    let row = ResultRow {
        seq: seq as i64,
        outcome: match started_as {
            Started::Done => Outcome::Done,
            Started::Stopped => Outcome::NotApplied,
            Started::Failed | Started::Cancelled => Outcome::Failed,
        },
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
    (seq, started_as)
}

/// What became of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Started {
    Done,
    Failed,
    Cancelled,
    Stopped,
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
            // An invitation makes no account yet: the link stays pending until the person has
            // joined, when the planner adopts the account (and gives it new_user_groups).
            Op::CreateUser { user, records, .. } if ctx.target.capabilities().accounts == Accounts::Invite => {
                store.link(target, records, user, IdentityState::Pending)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: Op) -> PlannedOp {
        PlannedOp {
            op,
            reason: String::new(),
        }
    }

    #[test]
    fn each_adding_operation_waits_for_exactly_what_it_names() {
        let create = |u: &str| {
            op(Op::CreateUser {
                user: u.into(),
                display_name: u.into(),
                email: format!("{u}@example.com"),
                records: vec![],
            })
        };
        let phase = vec![
            op(Op::CreateGroup { group: "dev".into() }), // 0
            op(Op::CreateGroup { group: "ops".into() }), // 1
            op(Op::RenameUser {
                from: "Alice".into(),
                to: "alice2".into(),
                records: vec![],
            }), // 2
            create("bob"),                               // 3
            create("alice"),                             // 4: the name the rename freed
            create("carol"),                             // 5
            op(Op::UpdateUser {
                user: "ALICE2".into(),
                display_name: "A".into(),
                email: "a@example.com".into(),
                old_display_name: "a".into(),
                old_email: None,
            }), // 6
            op(Op::AddMembers {
                group: "dev".into(),
                users: vec!["bob".into()],
            }), // 7
            op(Op::AddMembers {
                group: "ops".into(),
                users: vec!["alice2".into(), "carol".into()],
            }), // 8
            op(Op::AddMembers {
                group: "existing".into(),
                users: vec!["dave".into()],
            }), // 9: nothing in the plan makes either
        ];
        // 1 + the index of the last operation needed first; 0 for none. The rename (2) waits for
        // everything before it and everything after waits for it (3 at least).
        assert_eq!(prerequisites(&phase), vec![0, 0, 2, 3, 3, 3, 3, 4, 6, 3]);
        // Without a rename, only what each names.
        let no_rename: Vec<PlannedOp> = phase
            .iter()
            .filter(|o| !matches!(o.op, Op::RenameUser { .. }))
            .cloned()
            .collect();
        assert_eq!(prerequisites(&no_rename), vec![0, 0, 0, 0, 0, 0, 3, 5, 0]);
    }
}
