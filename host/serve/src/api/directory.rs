//! `/api/v1/directory`: what the sources said (the mirror), and why someone is in a group.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Query};

/// Which source, what to look for, how many.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MirrorQuery {
    /// Source id.
    pub source: String,
    /// Only records whose id or name contains this (case-insensitive).
    pub q: Option<String>,
    /// Only members of this group id (memberships).
    pub group: Option<String>,
    /// At most this many (1–5000, default 100).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
    /// Skip this many first.
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<usize>,
}

/// A user as the source reported it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MirrorUserView {
    /// IdP id.
    pub id: String,
    /// Proposed username (before transforms).
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Enabled.
    pub active: bool,
    /// soft-deleted when the IdP says so.
    pub removed: Option<String>,
    /// Raw attributes (name, value).
    pub attributes: Vec<(String, String)>,
}

/// A group as the source reported it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MirrorGroupView {
    /// IdP id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

/// A membership as the source reported it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    /// Group id.
    pub group: String,
    /// Member id.
    pub member: String,
    /// The member is a group (nesting).
    pub member_is_group: bool,
}

fn page<T>(items: Vec<T>, q: &MirrorQuery) -> ApiResult<Vec<T>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be 1 to 5000",
        ));
    }
    if q.offset.is_some_and(|o| o > 1_000_000_000) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "offset must be at most 1000000000",
        ));
    }
    Ok(items.into_iter().skip(q.offset.unwrap_or(0)).take(limit).collect())
}

fn known_source(state: &AppState, id: &str) -> ApiResult<()> {
    if state.config().sources.iter().any(|s| s.id == id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no source named '{id}'")))
    }
}

fn hit(q: &Option<String>, fields: &[&str]) -> bool {
    q.as_ref()
        .is_none_or(|q| fields.iter().any(|f| f.to_lowercase().contains(&q.to_lowercase())))
}

/// The source's users as it last reported them.
#[utoipa::path(get, path = "/api/v1/directory/users", tag = "directory", security(("token" = ["viewer"])),
    params(MirrorQuery),
    responses((status = 200, body = [MirrorUserView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn users(State(state): State<AppState>, Query(q): Query<MirrorQuery>) -> ApiResult<Json<Vec<MirrorUserView>>> {
    known_source(&state, &q.source)?;
    let source = q.source.clone();
    let users = state
        .store
        .blocking(move |store| store.mirror_users(&source))
        .await?
        .into_iter()
        .filter(|u| hit(&q.q, &[&u.ext_id, &u.username, u.email.as_deref().unwrap_or("")]))
        .map(|u| MirrorUserView {
            id: u.ext_id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
            removed: u.removed.map(|r| {
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }),
            attributes: u.attributes,
        })
        .collect();
    Ok(Json(page(users, &q)?))
}

/// The source's groups.
#[utoipa::path(get, path = "/api/v1/directory/groups", tag = "directory", security(("token" = ["viewer"])),
    params(MirrorQuery),
    responses((status = 200, body = [MirrorGroupView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn groups(State(state): State<AppState>, Query(q): Query<MirrorQuery>) -> ApiResult<Json<Vec<MirrorGroupView>>> {
    known_source(&state, &q.source)?;
    let source = q.source.clone();
    let groups = state
        .store
        .blocking(move |store| store.mirror_groups(&source))
        .await?
        .into_iter()
        .filter(|g| hit(&q.q, &[&g.ext_id, &g.name]))
        .map(|g| MirrorGroupView {
            id: g.ext_id,
            name: g.name,
            description: g.description,
        })
        .collect();
    Ok(Json(page(groups, &q)?))
}

/// The source's memberships (direct; nested groups appear as group members).
#[utoipa::path(get, path = "/api/v1/directory/memberships", tag = "directory", security(("token" = ["viewer"])),
    params(MirrorQuery),
    responses((status = 200, body = [MembershipView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn memberships(
    State(state): State<AppState>,
    Query(q): Query<MirrorQuery>,
) -> ApiResult<Json<Vec<MembershipView>>> {
    known_source(&state, &q.source)?;
    let source = q.source.clone();
    let mut all = state
        .store
        .blocking(move |store| store.mirror_memberships(&source))
        .await?;
    all.sort();
    let list = all
        .into_iter()
        .filter(|m| q.group.as_deref().is_none_or(|g| g == m.group_id))
        .filter(|m| hit(&q.q, &[&m.group_id, &m.member_id]))
        .map(|m| MembershipView {
            group: m.group_id,
            member: m.member_id,
            member_is_group: m.member_is_group,
        })
        .collect();
    Ok(Json(page(list, &q)?))
}

/// A user and a Bitbucket group.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WhyQuery {
    /// Bitbucket username.
    pub user: String,
    /// Bitbucket group.
    pub group: String,
}

/// Lineage of a membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhyView {
    /// "alice ∈ backend ∈ dev (hr)", or why not.
    pub explanation: String,
}

/// Why a user is (or is not) in a group: the path through nested groups and the source.
#[utoipa::path(get, path = "/api/v1/directory/why", tag = "directory", security(("token" = ["viewer"])),
    params(WhyQuery),
    responses((status = 200, body = WhyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "No target is defined yet")))]
async fn why(State(state): State<AppState>, Query(q): Query<WhyQuery>) -> ApiResult<Json<WhyView>> {
    let explanation = state.runner().why(&q.user, &q.group).await?;
    Ok(Json(WhyView { explanation }))
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(groups))
        .routes(routes!(memberships))
        .routes(routes!(why))
}
