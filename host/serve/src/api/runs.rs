//! `/api/v1/runs`: trigger (full, incremental, dry run; some sources or all), live status with
//! progress and ETA, cancel, history with filters, per-object results and their export; and
//! `/api/v1/users/sync`, provisioning one user on demand.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path, Query};
use roster_directory::UserKey;
use roster_engine::ExportRow;
use roster_model::{RunMode, RunState, Trigger};
use roster_store::RunRow;

use crate::runner::SyncOptions;
use crate::service::RequestedMode;
use crate::service::runs::LiveStatus;

/// A run to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// Sources to fetch; omitted or empty: every enabled source. The plan covers all sources.
    #[serde(default)]
    pub sources: Vec<String>,
    /// `full` (default), `incremental` or `dry-run`.
    #[serde(default)]
    pub mode: RequestedMode,
    /// Only this target (its id); omitted: every target, one run each, the sources fetched once.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub target: Option<String>,
}

/// A run that was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// Its id: `GET /api/v1/runs/{id}` shows its progress (with several targets, the first
    /// target's run, which fetches the sources for all).
    pub run_id: i64,
}

/// The runs a sync started: one per target.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartedRuns {
    /// The first target's run (the one that fetches the sources for all).
    pub run_id: i64,
    /// Every run, one per target, in configuration order.
    pub runs: Vec<StartedRun>,
}

/// One target's run of a sync.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartedRun {
    /// Run id.
    pub id: i64,
    /// Target id.
    pub target: String,
}

/// A run: its record, and its live progress while it runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Id.
    pub id: i64,
    /// What started it.
    pub trigger: Trigger,
    /// What it does.
    pub mode: RunMode,
    /// Target id.
    pub target: String,
    /// Sources fetched.
    pub sources: Vec<String>,
    /// Where it is, or how it ended.
    pub state: RunState,
    /// When it started (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: i64,
    /// When it ended (RFC 3339, UTC); `null` while it runs.
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
    /// Its plan.
    pub plan_id: Option<String>,
    /// Counts, time per stage, calls, warnings (absent while running; a run that failed before
    /// it could count anything has only its error, among `warnings`).
    #[schema(value_type = Option<crate::runner::Summary>)]
    pub summary: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// Progress per stage and ETA, while it runs.
    pub progress: Option<LiveStatus>,
}

fn run_view(state: &AppState, r: RunRow) -> RunView {
    let progress = state.runs.get(r.id).map(|p| p.status());
    // The store records the outcome a moment before the run lets go of the target: until it
    // has, the run is still running, so a client that waits for the end can start the next.
    let run_state = if progress.is_some() { RunState::Running } else { r.state };
    RunView {
        id: r.id,
        trigger: r.trigger,
        mode: r.mode,
        target: r.target,
        sources: r.sources,
        state: run_state,
        started_at: r.started_at,
        finished_at: r.finished_at,
        plan_id: r.plan_id,
        summary: r.summary,
        error: r.error,
        progress,
    }
}

/// Starts a run; answers at once with its id (202).
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs", security(("token" = ["operator"])),
    request_body = RunInput,
    responses((status = 202, body = StartedRuns), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "An unknown source or target"), (status = 409, body = ErrorBody, description = "A run is in progress"), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn trigger(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<RunInput>,
) -> ApiResult<(StatusCode, Json<StartedRuns>)> {
    let ids = state.start_runs(crate::service::RunRequest {
        sources: body.sources,
        mode: body.mode,
        trigger: Trigger::Api,
        actor: caller.actor.clone(),
        origin: caller.ip.clone(),
        target: body.target,
    })?;
    let mut runs = Vec::new();
    for id in ids {
        let target = run_row(&state, id).await?.target;
        caller
            .audit(
                &state,
                "run.start",
                &format!("run {id}"),
                Some(&format!("target {target}")),
            )
            .await?;
        runs.push(StartedRun { id, target });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(StartedRuns {
            run_id: runs[0].id,
            runs,
        }),
    ))
}

/// History filters.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Only runs started this way.
    pub trigger: Option<Trigger>,
    /// Only runs of this mode.
    pub mode: Option<RunMode>,
    /// Only runs that fetched this source.
    pub source: Option<String>,
    /// Only runs of this target.
    pub target: Option<String>,
    /// Only runs started at or after this (RFC 3339, e.g. `2026-01-31T09:00:00Z`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// At most this many, newest first (1–1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Run history, newest first, with filters.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", security(("token" = ["viewer"])),
    params(RunsQuery),
    responses((status = 200, body = [RunView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(State(state): State<AppState>, Query(q): Query<RunsQuery>) -> ApiResult<Json<Vec<RunView>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be 1 to 1000",
        ));
    }
    let since = q
        .since
        .as_deref()
        .map(roster_model::time::parse)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("since: {e}")))?;
    let runs = state
        .store
        .blocking(move |store| {
            let filter = roster_store::RunFilter {
                state: q.state,
                trigger: q.trigger,
                mode: q.mode,
                source: q.source.as_deref(),
                target: q.target.as_deref(),
                since,
            };
            store.runs_filtered(&filter, limit)
        })
        .await?;
    Ok(Json(runs.into_iter().map(|r| run_view(&state, r)).collect()))
}

async fn run_row(state: &AppState, id: i64) -> ApiResult<RunRow> {
    state
        .store
        .blocking(move |store| store.run(id))
        .await
        .map_err(|_| ApiError::not_found(format!("no run {id}")))
}

/// A run, with live progress per stage and an ETA while it runs.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", security(("token" = ["viewer"])),
    params(("id" = i64, Path, description = "Run id", minimum = 1, maximum = 9007199254740991i64)),
    responses((status = 200, body = RunView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_one(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<RunView>> {
    let r = run_row(&state, id).await?;
    Ok(Json(run_view(&state, r)))
}

/// Asks a running run to stop: no new page is fetched and no new operation applied; what is
/// in flight finishes and is recorded.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", security(("token" = ["operator"])),
    params(("id" = i64, Path, description = "Run id", minimum = 1, maximum = 9007199254740991i64)),
    responses((status = 202, body = Started, description = "Cancellation asked"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The run is not running")))]
async fn cancel(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    state.cancel(id)?;
    caller.audit(&state, "run.cancel", &format!("run {id}"), None).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { run_id: id })))
}

/// How results are exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A JSON array.
    #[default]
    Json,
    /// CSV (RFC 4180) with a header row.
    Csv,
}

/// The export format.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// `json` (default) or `csv`.
    pub format: Option<ExportFormat>,
}

/// The run's per-object results: every operation of its plan, with its outcome; JSON or CSV.
#[utoipa::path(get, path = "/api/v1/runs/{id}/results", tag = "runs", security(("token" = ["viewer"])),
    params(("id" = i64, Path, description = "Run id", minimum = 1, maximum = 9007199254740991i64), ResultsQuery),
    responses(
        (status = 200, description = "The results", content(([ExportRow] = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn results(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<Response> {
    run_row(&state, id).await?;
    let rows = state
        .store
        .blocking(move |store| roster_engine::export_rows(store, id))
        .await?;
    match q.format.unwrap_or_default() {
        ExportFormat::Json => Ok(Json(rows).into_response()),
        ExportFormat::Csv => Ok((
            [
                ("content-type", "text/csv; charset=utf-8".to_string()),
                (
                    "content-disposition",
                    format!("attachment; filename=\"roster-run-{id}.csv\""),
                ),
            ],
            roster_engine::export_csv(&rows),
        )
            .into_response()),
    }
}

/// The person to provision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncUserInput {
    /// Their username (as in Bitbucket) or the IdP's id of them.
    #[schema(min_length = 1, max_length = 512)]
    pub user: String,
    /// Only this source (and only its fetch).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub source: Option<String>,
    /// Only this target; omitted: every target, one run each.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub target: Option<String>,
}

/// Provisions one user on demand: an incremental fetch, then a plan and an apply restricted
/// to that person (their account and their groups) — the hook a login flow calls. Answers
/// when done, with the first target's run (with several targets, each has its run:
/// `GET /api/v1/runs?target=…`).
#[utoipa::path(post, path = "/api/v1/users/sync", tag = "runs", security(("token" = ["operator"])),
    request_body = SyncUserInput,
    responses((status = 200, body = RunView, description = "The run, finished"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "No such user in the sources"), (status = 409, body = ErrorBody, description = "A run is in progress"), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn sync_user(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(input): Json<SyncUserInput>,
) -> ApiResult<Json<RunView>> {
    if input.user.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "`user` is empty"));
    }
    let key = UserKey {
        id: Some(input.user.clone()),
        username: Some(input.user),
        source: input.source,
    };

    let opts = SyncOptions {
        origin: caller.ip.clone(),
        target: input.target,
        ..SyncOptions::new(Trigger::SingleUser, &caller.actor)
    };
    // The engine audits it (`sync.user`), with the caller's address.
    let reports = state.sync_user(&key, &opts).await?;
    let first = reports
        .first()
        .ok_or_else(|| ApiError::not_found("no target ran".to_string()))?;
    let r = run_row(&state, first.run_id).await?;
    Ok(Json(run_view(&state, r)))
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(trigger, list))
        .routes(routes!(get_one))
        .routes(routes!(cancel))
        .routes(routes!(results))
        .routes(routes!(sync_user))
}
