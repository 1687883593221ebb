//! Plan review (`/ui/plans/{id}`): a plan as a diff per user and per group, each change with
//! its reason; the seat arithmetic and why the guard held it; approve (by id and hash, as
//! `POST /api/v1/plans/{id}/approve`) and reject.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Redirect;
use serde::Deserialize;

use roster_engine::{Op, PlannedOp, Verdict};
use roster_model::PlanState;

use super::format::{When, when};
use super::{Chrome, Nav, Ui, UiError, UiResult};

/// One change to a user or a group, with its reason.
pub struct Change {
    /// created, renamed, updated, deprovisioned, deleted, membership added, …
    what: String,
    /// The change's own words (old → new, the groups, …).
    detail: String,
    /// `added`, `removed` or `changed`, for the mark beside it.
    sense: &'static str,
    reason: String,
}

/// A user's or a group's changes.
pub struct Subject {
    name: String,
    changes: Vec<Change>,
}

/// One licence's arithmetic.
pub struct Seats {
    name: String,
    before: usize,
    after: usize,
    in_use: i64,
    limit: String,
    over: bool,
}

/// A tripped rule of the threshold.
pub struct TrippedLine {
    text: String,
}

/// The plan review.
#[derive(Template, WebTemplate)]
#[template(path = "plan.html")]
pub struct PlanPage {
    chrome: Chrome,
    id: String,
    run_id: i64,
    target: String,
    hash: String,
    state: String,
    created: Option<When>,
    decided_by: Option<String>,
    held: Option<String>,
    refused: Option<String>,
    tripped: Vec<TrippedLine>,
    deprovisions: usize,
    managed: usize,
    seats: Vec<Seats>,
    users: Vec<Subject>,
    groups: Vec<Subject>,
    operations: usize,
    decidable: bool,
}

fn add(map: &mut BTreeMap<String, Vec<Change>>, name: &str, change: Change) {
    map.entry(name.to_string()).or_default().push(change);
}

/// Sorts a plan's operations into changes per user and per group.
fn diff(ops: &[PlannedOp]) -> (BTreeMap<String, Vec<Change>>, BTreeMap<String, Vec<Change>>) {
    let mut users = BTreeMap::new();
    let mut groups = BTreeMap::new();
    for p in ops {
        let reason = p.reason.clone();
        let c = |what: &str, detail: String, sense: &'static str| Change {
            what: what.to_string(),
            detail,
            sense,
            reason: reason.clone(),
        };
        match &p.op {
            Op::CreateGroup { group } => add(&mut groups, group, c("created", String::new(), "added")),
            Op::DeleteGroup { group } => add(&mut groups, group, c("deleted", String::new(), "removed")),
            Op::RenameUser { from, to, .. } => add(&mut users, to, c("renamed", format!("{from} → {to}"), "changed")),
            Op::CreateUser {
                user,
                display_name,
                email,
                ..
            } => add(
                &mut users,
                user,
                c("created", format!("{display_name} <{email}>"), "added"),
            ),
            Op::AdoptUser { user, .. } => add(
                &mut users,
                user,
                c("adopted", "an existing account Roster will manage".into(), "changed"),
            ),
            Op::UpdateUser {
                user,
                display_name,
                email,
                old_display_name,
                old_email,
            } => {
                let mut parts = Vec::new();
                if display_name != old_display_name {
                    parts.push(format!("display name “{old_display_name}” → “{display_name}”"));
                }
                if old_email.as_deref() != Some(email.as_str()) {
                    parts.push(format!("email {} → {email}", old_email.as_deref().unwrap_or("(none)")));
                }
                add(&mut users, user, c("updated", parts.join("; "), "changed"));
            }
            Op::AddMembers { group, users: members } => {
                add(&mut groups, group, c("members added", members.join(", "), "added"));
                for u in members {
                    add(&mut users, u, c("membership added", group.clone(), "added"));
                }
            }
            Op::RemoveMember { group, user } => {
                add(&mut groups, group, c("member removed", user.clone(), "removed"));
                add(&mut users, user, c("membership removed", group.clone(), "removed"));
            }
            Op::Deactivate { user, groups: left, .. } => {
                let detail = if left.is_empty() {
                    "deactivated".to_string()
                } else {
                    format!("leaves {}", left.join(", "))
                };
                add(&mut users, user, c("deprovisioned", detail, "removed"));
            }
            Op::DeleteUser { user, erase } => add(
                &mut users,
                user,
                c(
                    "deleted",
                    if *erase { "erased".into() } else { String::new() },
                    "removed",
                ),
            ),
        }
    }
    (users, groups)
}

fn subjects(map: BTreeMap<String, Vec<Change>>) -> Vec<Subject> {
    map.into_iter()
        .map(|(name, changes)| Subject { name, changes })
        .collect()
}

/// `GET /ui/plans/{id}`.
pub async fn page(ui: Ui, Path(id): Path<String>) -> UiResult<PlanPage> {
    let owned = id.clone();
    let (plan, ops) = ui
        .service()
        .store
        .blocking(move |store| Ok::<_, roster_store::StoreError>((store.plan(&owned)?, store.plan_ops(&owned)?)))
        .await
        .map_err(|_| UiError::not_found(format!("no plan {id}; plans are linked from their runs (/ui/runs)")))?;
    let unreadable = |e: serde_json::Error| {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("plan {id} holds an operation or verdict this Roster cannot read ({e}); run a new sync"),
        )
    };
    let ops: Vec<PlannedOp> = ops
        .into_iter()
        .map(|(_, _, _, detail, _)| serde_json::from_value(detail).map_err(unreadable))
        .collect::<UiResult<_>>()?;
    let verdict: Option<Verdict> = plan
        .guard
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(unreadable)?;
    let (users, groups) = diff(&ops);
    let seats = match &verdict {
        Some(v) if !v.licences.is_empty() => v
            .licences
            .iter()
            .map(|l| Seats {
                name: l.name.clone(),
                before: l.licensed_before,
                after: l.licensed_after,
                in_use: l.seats_in_use,
                limit: l.seat_limit.map_or_else(|| "unlimited".into(), |n| n.to_string()),
                over: l.over,
            })
            .collect(),
        Some(v) => vec![Seats {
            name: plan.target.clone(),
            before: v.licensed_before,
            after: v.licensed_after,
            in_use: v.seats_in_use,
            limit: v.seat_limit.map_or_else(|| "unlimited".into(), |n| n.to_string()),
            over: v.seat_limit.is_some_and(|l| v.licensed_after as i64 > l),
        }],
        None => Vec::new(),
    };
    let tripped = verdict
        .as_ref()
        .map(|v| {
            v.tripped
                .iter()
                .map(|t| TrippedLine {
                    text: serde_json::to_value(t)
                        .ok()
                        .and_then(|v| v.as_object().cloned())
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| {
                                    format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_string))
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let decidable = plan.state == PlanState::Held;
    Ok(PlanPage {
        chrome: ui.chrome(format!("Plan {id}"), Nav::Runs),
        run_id: plan.run_id,
        target: plan.target.clone(),
        hash: plan.hash.clone(),
        state: plan.state.as_str().to_string(),
        created: when(plan.created_at),
        decided_by: plan.decided_by.clone(),
        held: verdict.as_ref().and_then(|v| v.held.clone()),
        refused: verdict.as_ref().and_then(|v| v.refused.clone()),
        tripped,
        deprovisions: verdict.as_ref().map_or(0, |v| v.deprovisions),
        managed: verdict.as_ref().map_or(0, |v| v.managed_accounts),
        seats,
        operations: ops.len(),
        users: subjects(users),
        groups: subjects(groups),
        decidable,
        id,
    })
}

/// The approval form: the hash of the plan that was reviewed.
#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    hash: String,
}

/// `POST /ui/plans/{id}/approve` (as `POST /api/v1/plans/{id}/approve`): applies exactly the
/// plan with this hash; shows the run that applied it.
pub async fn approve(ui: Ui, Path(id): Path<String>, axum::Form(form): axum::Form<ApproveForm>) -> UiResult<Redirect> {
    ui.require(Method::POST, "/api/v1/plans/{id}/approve")?;
    let owned = id.clone();
    ui.service()
        .store
        .blocking(move |store| store.plan(&owned))
        .await
        .map_err(|_| UiError::not_found(format!("no plan {id}")))?;
    // The engine audits the approval (`plan.approve`) with the caller's address, as for the API.
    let report = ui
        .service()
        .approve(&id, &form.hash, &ui.caller.actor, &ui.caller.ip)
        .await?;
    Ok(Redirect::to(&format!("/ui/runs/{}", report.run_id)))
}

/// `POST /ui/plans/{id}/reject` (as `POST /api/v1/plans/{id}/reject`).
pub async fn reject(ui: Ui, Path(id): Path<String>) -> UiResult<Redirect> {
    ui.require(Method::POST, "/api/v1/plans/{id}/reject")?;
    let owned = id.clone();
    ui.service()
        .store
        .blocking(move |store| store.plan(&owned))
        .await
        .map_err(|_| UiError::not_found(format!("no plan {id}")))?;
    ui.service()
        .runner()
        .reject(&id, &ui.caller.actor, &ui.caller.ip)
        .map_err(crate::service::ServiceError::from)?;
    Ok(Redirect::to(&format!("/ui/plans/{id}")))
}
