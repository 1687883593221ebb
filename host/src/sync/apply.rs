//! The apply stage: a plan's operations against Bitbucket, stage by stage (groups, renames,
//! creates, updates, adds, removals, deprovisioning), with bounded concurrency inside a stage.
//! Every outcome is recorded. Identity links are written before the call that creates or renames
//! an account, so a crash in between never leaves an account Roster made but does not own;
//! re-running converges without duplicates.

use futures::stream::{self, StreamExt};

use super::Progress;
use super::model::{Op, PlannedOp};
use crate::store::{IdentityState, ResultRow, Store, now_ms};
use crate::targets::bitbucket_dc::{BbError, BitbucketDc, REQUESTS};

/// Counts of outcomes.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, PartialEq, Eq)]
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
    /// The Bitbucket client.
    pub client: &'a BitbucketDc,
    /// The store.
    pub store: &'a Store,
    /// Target id.
    pub target: &'a str,
    /// Run id.
    pub run_id: i64,
    /// Plan id.
    pub plan_id: &'a str,
    /// Operations in flight at once.
    pub concurrency: usize,
}

/// Applies `ops` (in plan order; `seq` is the index).
pub async fn apply(ctx: &ApplyContext<'_>, ops: &[PlannedOp], progress: &dyn Progress) -> Applied {
    let mut totals = Applied::default();
    progress.stage("apply", ops.len() as u64);
    let mut start = 0;
    while start < ops.len() {
        let stage = ops[start].op.stage();
        let end = ops[start..]
            .iter()
            .position(|o| o.op.stage() != stage)
            .map_or(ops.len(), |n| start + n);
        let results: Vec<Option<bool>> = stream::iter(start..end)
            .map(|seq| async move {
                // A cancelled run starts no new operation; those in flight finish and are
                // recorded, so the next run converges from a known state.
                if progress.cancelled() {
                    return None;
                }
                let started = now_ms();
                let (outcome, requests) = REQUESTS
                    .scope(std::cell::Cell::new(0), async {
                        let outcome = execute(ctx, &ops[seq].op).await;
                        (outcome, REQUESTS.with(|n| n.get()))
                    })
                    .await;
                let (ok, status, message) = match outcome {
                    Ok(note) => (true, None, note),
                    Err(e) => {
                        tracing::warn!(op = ops[seq].op.kind(), subject = ops[seq].op.subject(), "{e}");
                        (false, e.status().map(i64::from), Some(e.to_string()))
                    }
                };
                let row = ResultRow {
                    seq: seq as i64,
                    outcome: if ok { "done" } else { "failed" }.into(),
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
                Some(ok)
            })
            .buffer_unordered(ctx.concurrency.max(1))
            .collect()
            .await;
        totals.done += results.iter().filter(|r| **r == Some(true)).count();
        totals.failed += results.iter().filter(|r| **r == Some(false)).count();
        totals.cancelled += results.iter().filter(|r| r.is_none()).count();
        start = end;
    }
    progress.finish();
    totals
}

/// A 404 on removal, or a 409 on creation, means the state is already what the plan wants.
fn already(r: Result<(), BbError>, status: u16, note: &str) -> Result<Option<String>, BbError> {
    match r {
        Ok(()) => Ok(None),
        Err(e) if e.status() == Some(status) => Ok(Some(note.to_string())),
        Err(e) => Err(e),
    }
}

fn store_err(e: crate::store::StoreError) -> BbError {
    BbError::Transport {
        endpoint: "store".into(),
        detail: e.to_string(),
    }
}

async fn execute(ctx: &ApplyContext<'_>, op: &Op) -> Result<Option<String>, BbError> {
    let (client, store, target) = (ctx.client, ctx.store, ctx.target);
    match op {
        Op::CreateGroup { group } => {
            store.add_managed_group(target, group).map_err(store_err)?;
            already(client.create_group(group).await, 409, "group already existed")
        }
        Op::RenameUser { from, to, records } => {
            client.rename_user(from, to).await?;
            store
                .link(target, records, to, IdentityState::Active)
                .map_err(store_err)?;
            Ok(None)
        }
        Op::CreateUser {
            user,
            display_name,
            email,
            records,
        } => {
            store
                .link(target, records, user, IdentityState::Pending)
                .map_err(store_err)?;
            let note = already(
                client.create_user(user, display_name, email, &random_password()).await,
                409,
                "account already existed (created by an earlier, interrupted run)",
            )?;
            store
                .link(target, records, user, IdentityState::Active)
                .map_err(store_err)?;
            Ok(note)
        }
        Op::AdoptUser { user, records } => {
            store
                .link(target, records, user, IdentityState::Active)
                .map_err(store_err)?;
            Ok(None)
        }
        Op::UpdateUser {
            user,
            display_name,
            email,
            ..
        } => client.update_user(user, display_name, email).await.map(|_| None),
        Op::AddMembers { group, users } => match client.add_users_to_group(group, users).await {
            Ok(()) => Ok(None),
            // All or nothing in Bitbucket: if one user is missing, add the others one by one.
            Err(e) if e.status() == Some(404) && users.len() > 1 => {
                let mut failed = Vec::new();
                for u in users {
                    if let Err(e) = client.add_users_to_group(group, std::slice::from_ref(u)).await {
                        failed.push(format!("{u}: {e}"));
                    }
                }
                if failed.is_empty() {
                    Ok(None)
                } else {
                    Err(BbError::Api {
                        endpoint: "POST /admin/groups/add-users".into(),
                        status: 404,
                        exception: None,
                        message: failed.join("; "),
                    })
                }
            }
            Err(e) => Err(e),
        },
        Op::RemoveMember { group, user } => already(
            client.remove_user_from_group(user, group).await,
            404,
            "was not a member",
        ),
        Op::Deactivate {
            user,
            groups,
            revoke_permission,
            leave_other_groups,
        } => {
            for g in groups {
                already(client.remove_user_from_group(user, g).await, 404, "")?;
            }
            if let Some(keep) = leave_other_groups {
                for g in client.user_groups(user).await? {
                    if !keep.contains(&g) {
                        already(client.remove_user_from_group(user, &g).await, 404, "")?;
                    }
                }
            }
            if *revoke_permission {
                already(client.revoke_user_permissions(user).await, 404, "")?;
            }
            store
                .set_identity_state(target, user, IdentityState::Disabled)
                .map_err(store_err)?;
            Ok(None)
        }
        Op::DeleteUser { user, erase } => {
            let note = already(client.delete_user(user).await, 404, "account was already gone")?;
            if *erase {
                client.erase_user(user).await?;
            }
            store
                .set_identity_state(target, user, IdentityState::Deleted)
                .map_err(store_err)?;
            Ok(note)
        }
    }
}

/// A password nobody knows: accounts created by Roster sign in through the IdP (SSO).
fn random_password() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).unwrap_or_default();
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
