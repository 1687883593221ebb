//! `/api/v1/sources`: read, create, replace, delete (secrets write-only), test the connection,
//! the schedule's next fire times, and previews of the transform chain.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path, Query};
use roster_directory::transform::Traces;
use roster_directory::{CheckReport, Sample, SourceConfig};

/// A secret as the API shows it: never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// Name used in `{{secret:NAME}}`.
    pub name: String,
    /// Origins it may be sent to.
    pub hosts: Vec<String>,
    /// `value` or `signing-key`.
    pub kind: String,
}

/// A source as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// Id.
    pub id: String,
    /// Connector plugin.
    pub plugin: String,
    /// Directory order (lower wins).
    pub priority: i64,
    /// Fetched at all.
    pub enabled: bool,
    /// `file` (roster.toml, read-only here) or `api`.
    pub origin: String,
    /// The whole configuration but secrets, as in roster.toml.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Its secrets, without values.
    pub secrets: Vec<SecretView>,
    /// The next scheduled runs (RFC 3339, UTC); empty when not scheduled.
    pub next_runs: Vec<String>,
    /// The schedule in words.
    pub schedule: String,
}

/// A secret as given to the API: the value is sealed and never shown again.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretInput {
    /// Name used in `{{secret:NAME}}`.
    pub name: String,
    /// The value (a PEM private key for `signing-key`).
    pub value: String,
    /// Origins it may be sent to, e.g. `https://login.microsoftonline.com`.
    pub hosts: Vec<String>,
    /// `value` (default) or `signing-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A source to create or replace: the same fields as a `[[source]]` table of roster.toml.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// Id: 1–64 letters, digits, `-`, `_`.
    pub id: String,
    /// Connector plugin name.
    pub plugin: String,
    /// Directory order (lower wins); default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The connector's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// Origins the connector may reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_hosts: Option<Vec<String>>,
    /// Allow plain HTTP origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// Allow private, loopback and link-local addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_private_addresses: Option<bool>,
    /// Secrets; on replacement, leaving them out keeps the stored ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretInput>,
    /// Per-job limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub limits: Option<serde_json::Value>,
    /// Request budget towards the IdP, e.g. `{"per_second": 20, "burst": 40}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub budget: Option<serde_json::Value>,
    /// Transform chain, in order: `[{"plugin": "mapping", "settings": {…}}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub transforms: Option<Vec<serde_json::Value>>,
    /// Only members of these IdP groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_groups: Option<Vec<String>>,
    /// `{"every_minutes": 60}` or `{"cron": "0 0/15 * * * ?"}`, `incremental`, `full_every_hours`, `enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<serde_json::Value>,
}

impl SourceInput {
    fn into_config(self) -> Result<SourceConfig, ApiError> {
        let value = serde_json::to_value(&self).map_err(|e| ApiError::bad_request(e.to_string()))?;
        serde_json::from_value(value)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid source: {e}")))
    }
}

fn view(state: &AppState, s: &SourceConfig) -> SourceView {
    let mut config = serde_json::to_value(s).unwrap_or_default();
    if let Some(o) = config.as_object_mut() {
        o.remove("secrets");
    }
    let schedule = s.schedule.schedule().ok();
    let next_runs = match (&schedule, s.schedule.enabled && s.enabled) {
        (Some(sch), true) => sch
            .upcoming(chrono::Utc::now(), 3)
            .into_iter()
            .map(|t| t.to_rfc3339())
            .collect(),
        _ => Vec::new(),
    };
    SourceView {
        id: s.id.clone(),
        plugin: s.plugin.clone(),
        priority: s.priority,
        enabled: s.enabled,
        origin: s.origin.as_str().into(),
        config,
        // Names, hosts and kinds from the sealed copy in the store; never the values.
        secrets: state
            .store
            .source_secrets::<roster_runtime::secrets::Secret>(&s.id)
            .unwrap_or_default()
            .iter()
            .map(|x| SecretView {
                name: x.name.clone(),
                hosts: x.hosts.iter().map(|h| h.to_string()).collect(),
                kind: if x.kind == roster_runtime::secrets::SecretKind::SigningKey {
                    "signing-key".into()
                } else {
                    "value".into()
                },
            })
            .collect(),
        next_runs,
        schedule: match (&schedule, s.schedule.enabled) {
            (Some(sch), true) => sch.describe(),
            _ => "not scheduled".into(),
        },
    }
}

fn find(state: &AppState, id: &str) -> ApiResult<SourceConfig> {
    state
        .config()
        .sources
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no source named '{id}'")))
}

/// Every source in directory order.
#[utoipa::path(get, path = "/api/v1/sources", tag = "sources", security(("token" = ["viewer"])),
    responses((status = 200, body = [SourceView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<SourceView>>> {
    Ok(Json(state.config().sources.iter().map(|s| view(&state, s)).collect()))
}

/// One source.
#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "sources", security(("token" = ["viewer"])),
    params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = SourceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SourceView>> {
    Ok(Json(view(&state, &find(&state, &id)?)))
}

/// Creates a source (kept in Roster's store; its secrets sealed and never shown again).
#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", security(("token" = ["admin"])),
    request_body = SourceInput,
    responses((status = 201, body = SourceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<SourceInput>,
) -> ApiResult<(StatusCode, Json<SourceView>)> {
    let config = body.into_config()?;
    let id = config.id.clone();
    state.put_source(config, crate::service::Put::Create).await?;
    state
        .store
        .audit(&caller.actor, &caller.ip, "source.create", &id, None)?;
    Ok((StatusCode::CREATED, Json(view(&state, &find(&state, &id)?))))
}

/// Replaces a source created through the API (roster.toml's are read-only here).
#[utoipa::path(put, path = "/api/v1/sources/{id}", tag = "sources", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Source id")),
    request_body = SourceInput,
    responses((status = 200, body = SourceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<SourceInput>,
) -> ApiResult<Json<SourceView>> {
    ApiError::check_same_id(&id, &body.id)?;
    state
        .put_source(body.into_config()?, crate::service::Put::Replace)
        .await?;
    state
        .store
        .audit(&caller.actor, &caller.ip, "source.replace", &id, None)?;
    Ok(Json(view(&state, &find(&state, &id)?)))
}

/// Deletes a source created through the API, with its mirror.
#[utoipa::path(delete, path = "/api/v1/sources/{id}", tag = "sources", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Source id")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.delete_source(&id)?;
    state
        .store
        .audit(&caller.actor, &caller.ip, "source.delete", &id, None)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tests the connection: the connector checks credentials, permissions and scope.
#[utoipa::path(post, path = "/api/v1/sources/{id}/check", tag = "sources", security(("token" = ["operator"])),
    params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = CheckView, description = "The check ran; `ok` says whether the source can work"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "No target is defined yet"), (status = 404, body = ErrorBody)))]
async fn check(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<CheckView>> {
    find(&state, &id)?;
    let mut reports = state.runner().check(&[id]).await?;
    let r: CheckReport = reports.remove(0);
    Ok(Json(CheckView {
        source: r.source,
        plugin: r.plugin,
        ok: r.ok,
        error: r.error,
        ms: r.ms,
    }))
}

/// What a connector's check said.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckView {
    /// Source id.
    pub source: String,
    /// Connector.
    pub plugin: String,
    /// The source can work.
    pub ok: bool,
    /// Otherwise, why not.
    pub error: Option<String>,
    /// How long the check took.
    pub ms: u64,
}

/// How many fire times to list.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScheduleQuery {
    /// 1–100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub count: Option<u32>,
}

/// A source's schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    /// Source id.
    pub source: String,
    /// Scheduled at all.
    pub enabled: bool,
    /// In words.
    pub schedule: String,
    /// Next fire times (RFC 3339, UTC).
    pub next_runs: Vec<String>,
    /// Last fire time run (unix ms).
    pub last_fire_at: Option<i64>,
    /// Last successful run (unix ms).
    pub last_success_at: Option<i64>,
}

/// The schedule's next fire times.
#[utoipa::path(get, path = "/api/v1/sources/{id}/schedule", tag = "sources", security(("token" = ["viewer"])),
    params(("id" = String, Path, description = "Source id"), ScheduleQuery),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ScheduleQuery>,
) -> ApiResult<Json<ScheduleView>> {
    let s = find(&state, &id)?;
    let count = q.count.unwrap_or(10);
    if !(1..=100).contains(&count) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "count must be 1 to 100",
        ));
    }
    let sch = s
        .schedule
        .schedule()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let enabled = s.schedule.enabled && s.enabled;
    let st = state.store.schedule_state(&id)?;
    Ok(Json(ScheduleView {
        source: id,
        enabled,
        schedule: sch.describe(),
        next_runs: if enabled {
            sch.upcoming(chrono::Utc::now(), count as usize)
                .into_iter()
                .map(|t| t.to_rfc3339())
                .collect()
        } else {
            Vec::new()
        },
        last_fire_at: st.last_fire_at,
        last_success_at: st.last_success_at,
    }))
}

/// Records to preview instead of the source's mirror.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    /// Sample records in the `file` connector's JSON form (`users`, `groups`, `memberships`);
    /// omitted: the source's mirror.
    #[schema(value_type = Option<Object>)]
    pub sample: Option<serde_json::Value>,
    /// Only records whose id or name contains this.
    pub only: Option<String>,
    /// At most this many users and groups (1–1000, default 50).
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Runs the source's transform chain over its mirror or sample records and shows each record
/// before, after every step (with the rule that decided) and at the end. Writes nothing.
#[utoipa::path(post, path = "/api/v1/sources/{id}/preview", tag = "sources", security(("token" = ["operator"])),
    params(("id" = String, Path, description = "Source id")),
    request_body = PreviewInput,
    responses((status = 200, body = Object, description = "Traces: `users` and `groups`, each with `before`, `steps` and `after`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "No target is defined yet"), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<PreviewInput>,
) -> ApiResult<Json<Traces>> {
    find(&state, &id)?;
    let limit = body.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be 1 to 1000",
        ));
    }
    let sample = body
        .sample
        .map(|v| Sample::from_json(&v.to_string()))
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("sample: {e}")))?;
    let mut t = state.runner().preview(&id, sample).await?;
    t.narrow(body.only.as_deref(), limit);
    Ok(Json(t))
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, delete))
        .routes(routes!(check))
        .routes(routes!(schedule))
        .routes(routes!(preview))
}
