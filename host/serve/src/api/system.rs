//! Health, readiness, metrics, the alerts that fired and the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Query};
use crate::service::fired::{AlertDelivery, FiredAlert};
use roster_store::AuditEntry;
use roster_telemetry::alerts::AlertKind;

/// Alive (no token needed).
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready to serve: the store answers and at least one plugin is loaded (no token needed).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store_ok = state.store.blocking(|store| store.runs(1).is_ok()).await;
    let plugins = state.runtime.plugins().len();
    if store_ok && plugins > 0 {
        (StatusCode::OK, "ready".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: store {}, {plugins} plugin(s) loaded",
                if store_ok { "ok" } else { "failing" }
            ),
        )
    }
}

/// Prometheus metrics: runs by outcome, time per stage, writes by kind, vendor API calls and
/// 429s, plugin traps, last successful run per source.
#[utoipa::path(get, path = "/metrics", tag = "system", security(("token" = ["viewer"])),
    responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text exposition"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.set_runs_in_progress(state.runs.all().len() as i64);
    for ((plugin, kind), n) in roster_runtime::job::take_traps() {
        state.metrics.observe_plugin_traps(&plugin, kind, n);
    }
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.encode(),
    )
}

/// How much of the audit log.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many, newest first (1–10000, default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Sequence number.
    pub id: i64,
    /// When it happened (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// Who: `token:<name>`, `cli:<user>`, `scheduler`.
    pub actor: String,
    /// From where: an address, or `local`.
    pub origin: String,
    /// What: `source.create`, `plan.approve`, `sync.run`, …
    pub action: String,
    /// On what.
    pub subject: String,
    /// Details.
    pub detail: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            id: e.id,
            at: e.at,
            actor: e.actor,
            origin: e.origin,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
        }
    }
}

/// The audit log: every change, who made it, when, from where; newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "system", security(("token" = ["viewer"])),
    params(AuditQuery),
    responses((status = 200, body = [AuditView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn audit(State(state): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Json<Vec<AuditView>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be 1 to 10000",
        ));
    }
    let entries = state.store.blocking(move |store| store.audit_log(limit)).await?;
    Ok(Json(entries.into_iter().map(AuditView::from).collect()))
}

/// The kind of an alert, as named in `[[alert]] events = [...]`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKindView {
    /// A run failed.
    RunFailed,
    /// A plan was held for approval.
    PlanHeld,
    /// A source has not synced successfully for too long.
    Stale,
    /// A run changed far more than that source or target usually does.
    VolumeSpike,
    /// Changes made by hand in a target to what Roster manages.
    Drift,
}

impl From<AlertKind> for AlertKindView {
    fn from(k: AlertKind) -> Self {
        match k {
            AlertKind::RunFailed => AlertKindView::RunFailed,
            AlertKind::PlanHeld => AlertKindView::PlanHeld,
            AlertKind::Stale => AlertKindView::Stale,
            AlertKind::VolumeSpike => AlertKindView::VolumeSpike,
            AlertKind::Drift => AlertKindView::Drift,
        }
    }
}

/// How an alert's delivery to the webhooks went.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlertDeliveryView {
    /// No webhook wants this kind of alert: it was only kept.
    NoWebhook,
    /// Being delivered (a webhook that is down is retried for up to a minute).
    Sending,
    /// Every webhook that wants it accepted it.
    Delivered,
    /// At least one webhook did not accept it (`error` says why).
    Failed,
}

/// An alert that fired.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    /// Sequence number since Roster started.
    pub id: u64,
    /// When it fired (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// What kind of alert.
    pub kind: AlertKindView,
    /// The target, source or run it is about.
    pub subject: String,
    /// Its message, as the webhooks got it.
    pub message: String,
    /// How its delivery went.
    pub delivery: AlertDeliveryView,
    /// Why a delivery failed, per webhook (no webhook URL in it).
    pub error: Option<String>,
}

impl From<FiredAlert> for AlertView {
    fn from(a: FiredAlert) -> Self {
        let (delivery, error) = match a.delivery {
            AlertDelivery::NoWebhook => (AlertDeliveryView::NoWebhook, None),
            AlertDelivery::Sending => (AlertDeliveryView::Sending, None),
            AlertDelivery::Delivered => (AlertDeliveryView::Delivered, None),
            AlertDelivery::Failed(why) => (AlertDeliveryView::Failed, Some(why)),
        };
        AlertView {
            id: a.id,
            at: a.at_ms,
            kind: a.kind.into(),
            subject: a.subject,
            message: a.message,
            delivery,
            error,
        }
    }
}

/// The alerts that fired since Roster started (the last 50, kept in memory), newest first,
/// and whether their webhooks got them.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "system", security(("token" = ["viewer"])),
    responses((status = 200, body = [AlertView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn alerts(State(state): State<AppState>) -> Json<Vec<AlertView>> {
    Json(state.fired.newest_first().into_iter().map(AlertView::from).collect())
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(alerts))
        .routes(routes!(audit))
}
