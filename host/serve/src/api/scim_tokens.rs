//! `/api/v1/sources/{id}/scim-tokens`: the bearer tokens an identity provider pushes to a
//! push source with (`[source.push] protocol = "scim"`). A token is shown once, when created;
//! Roster keeps only its hash.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path};
use roster_directory::Feed;
use roster_store::ScimTokenRow;

/// A SCIM token as listed (never its value).
#[derive(Debug, Serialize, ToSchema)]
pub struct ScimTokenView {
    /// Id (for revoking).
    pub id: i64,
    /// The source it pushes to.
    pub source: String,
    /// Who or what it is for.
    pub name: String,
    /// When it was created (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it was last used (RFC 3339, UTC; to the minute).
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    /// When it was revoked (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

impl From<ScimTokenRow> for ScimTokenView {
    fn from(t: ScimTokenRow) -> Self {
        ScimTokenView {
            id: t.id,
            source: t.source,
            name: t.name,
            created_at: t.created_at,
            created_by: t.created_by,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// What a new token is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimTokenInput {
    /// Who or what it is for (the identity provider's name, say).
    pub name: String,
}

/// A new token: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScimTokenCreated {
    /// The token as listed.
    #[serde(flatten)]
    pub row: ScimTokenView,
    /// The token itself: give it to the identity provider as its secret token. Roster keeps
    /// only its hash and never shows it again.
    pub token: String,
    /// The path of the source's SCIM endpoint (the tenant URL is this under Roster's address).
    pub scim_path: String,
}

/// The source, when it is a push source.
fn push_source(state: &AppState, id: &str) -> ApiResult<()> {
    let config = state.config();
    match config.source(id).map(|s| s.feed()) {
        Some(Feed::Push(_)) => Ok(()),
        Some(Feed::Pull(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the source '{id}' is pulled by a plugin; give it [source.push] protocol = \"scim\" to accept SCIM pushes"
            ),
        )),
        None => Err(ApiError::not_found(format!("no source named '{id}'"))),
    }
}

/// The SCIM tokens of a push source, revoked ones included, newest first.
#[utoipa::path(get, path = "/api/v1/sources/{id}/scim-tokens", tag = "sources", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = [ScimTokenView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn list(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Vec<ScimTokenView>>> {
    push_source(&state, &id)?;
    let rows = state.store.blocking(move |s| s.scim_tokens(Some(&id))).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Creates a token for a push source; the answer is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/sources/{id}/scim-tokens", tag = "sources", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Source id")),
    request_body = ScimTokenInput,
    responses((status = 201, body = ScimTokenCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<ScimTokenInput>,
) -> ApiResult<(StatusCode, Json<ScimTokenCreated>)> {
    push_source(&state, &id)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name is empty: say who or what the token is for",
        ));
    }
    let (source, name, actor) = (id.clone(), body.name.clone(), caller.actor.clone());
    let (row, token) = state
        .store
        .blocking(move |s| s.create_scim_token(&source, &name, &actor))
        .await?;
    caller
        .audit(
            &state,
            "scim-token.create",
            &format!("source {id}"),
            Some(&format!("token {} ({})", row.id, row.name)),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ScimTokenCreated {
            row: row.into(),
            token,
            scim_path: format!("/scim/v2/{id}"),
        }),
    ))
}

/// Revokes a token of a push source: the identity provider's next push with it gets a 401.
#[utoipa::path(delete, path = "/api/v1/sources/{id}/scim-tokens/{token_id}", tag = "sources", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Source id"), ("token_id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((id, token_id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    push_source(&state, &id)?;
    let source = id.clone();
    if !state
        .store
        .blocking(move |s| s.revoke_scim_token(Some(&source), token_id))
        .await?
    {
        return Err(ApiError::not_found(format!(
            "no live SCIM token {token_id} of the source '{id}'"
        )));
    }
    caller
        .audit(
            &state,
            "scim-token.revoke",
            &format!("source {id}"),
            Some(&format!("token {token_id}")),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}
