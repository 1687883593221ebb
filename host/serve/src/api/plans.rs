//! `/api/v1/plans`: a plan with every operation and its reason; approve exactly that plan (by
//! its hash), or reject it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use roster_engine::{PlannedOp, Verdict};
use roster_model::{PlanState, RunState};

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path};

/// One operation of a plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpView {
    /// Order of application.
    pub seq: i64,
    /// create-user, rename-user, add-members, deactivate-user, delete-group, …
    pub kind: String,
    /// User or group.
    pub subject: String,
    /// Why.
    pub reason: String,
    /// The whole operation: its kind's fields and its reason.
    pub detail: PlannedOp,
}

/// A plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// Id.
    pub id: String,
    /// The run that made it.
    pub run_id: i64,
    /// Target id.
    pub target: String,
    /// sha256 over the operations: approval names it.
    pub hash: String,
    /// Where it is.
    pub state: PlanState,
    /// When it was made (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// The guard's verdict: held or refused, and why; the licence arithmetic.
    pub guard: Option<Verdict>,
    /// Its operations.
    pub operations: Vec<OpView>,
}

/// A plan, with every operation and its reason.
#[utoipa::path(get, path = "/api/v1/plans/{id}", tag = "plans", security(("token" = ["viewer"])),
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = PlanView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<PlanView>> {
    let plan = known_plan(&state, &id).await?;
    let unreadable = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("plan {id} holds an operation or verdict this Roster cannot read ({e}); run a new sync"),
        )
    };
    let ops = {
        let id = id.clone();
        state.store.blocking(move |store| store.plan_ops(&id)).await?
    };
    let operations = ops
        .into_iter()
        .map(|(seq, kind, subject, detail, reason)| {
            Ok(OpView {
                seq,
                kind,
                subject,
                reason,
                detail: serde_json::from_value(detail).map_err(unreadable)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let guard = plan.guard.map(serde_json::from_value).transpose().map_err(unreadable)?;
    Ok(Json(PlanView {
        id: plan.id,
        run_id: plan.run_id,
        target: plan.target,
        hash: plan.hash,
        state: plan.state,
        created_at: plan.created_at,
        decided_by: plan.decided_by,
        guard,
        operations,
    }))
}

/// The plan `id` as recorded; 404 when there is none.
async fn known_plan(state: &AppState, id: &str) -> ApiResult<roster_store::PlanRow> {
    let owned = id.to_string();
    state
        .store
        .blocking(move |store| store.plan(&owned))
        .await
        .map_err(|_| ApiError::not_found(format!("no plan {id}")))
}

/// The approval: the hash of the plan that was reviewed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The plan's hash, or at least its first 8 characters.
    pub hash: String,
}

/// How an approved plan's application went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Applied {
    /// The run that applied it.
    pub run_id: i64,
    /// The target it was applied to (the plan's; no other target is touched).
    pub target: String,
    /// succeeded, partial, or refused (the licence changed since).
    pub state: RunState,
    /// Operations done.
    pub done: usize,
    /// Operations failed.
    pub failed: usize,
}

/// Approves a held plan and applies exactly its operations (answers when applied).
#[utoipa::path(post, path = "/api/v1/plans/{id}/approve", tag = "plans", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Plan id")),
    request_body = Approval,
    responses((status = 200, body = Applied), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "A run is in progress"), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "Not held, superseded, or another hash")))]
async fn approve(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<Approval>,
) -> ApiResult<Json<Applied>> {
    known_plan(&state, &id).await?;
    // The engine audits the approval (`plan.approve`) before applying, with the caller's address.
    let report = state.approve(&id, &body.hash, &caller.actor, &caller.ip).await?;
    Ok(Json(Applied {
        run_id: report.run_id,
        target: report.target.clone(),
        state: report.state,
        done: report.summary.applied.done,
        failed: report.summary.applied.failed,
    }))
}

/// Rejects a held (or draft) plan.
#[utoipa::path(post, path = "/api/v1/plans/{id}/reject", tag = "plans", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 204, description = "Rejected"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "No target is defined yet"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "Not held or draft")))]
async fn reject(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    known_plan(&state, &id).await?;
    state.runner().reject(&id, &caller.actor, &caller.ip)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_one))
        .routes(routes!(approve))
        .routes(routes!(reject))
}
