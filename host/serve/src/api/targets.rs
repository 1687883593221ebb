//! `/api/v1/targets`: the targets Roster writes to (Bitbucket, its own Crowd directory, …).
//! Read them, test their connections, and create, replace or delete by id those roster.toml
//! does not define, credentials write-only.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path};
use roster_engine::{Deprovision, TargetCheck, TargetConfig, Threshold};
use roster_http::{BudgetConfig, Concurrency};

/// A target and its policy; credentials are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    /// Id.
    pub id: String,
    /// Which kind of system it is (`bitbucket-dc`).
    pub kind: String,
    /// Base URL.
    pub url: Option<String>,
    /// The account Roster acts as.
    pub username: Option<String>,
    /// Which credential is stored (`password`, `token`, `api_token`, `app_password`; never its
    /// value).
    pub credential: Option<String>,
    /// The workspace's slug (bitbucket-cloud).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The group invitations go to (bitbucket-cloud administered in Bitbucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_group: Option<String>,
    /// Calls Roster allows itself towards Bitbucket Cloud over a rolling window (bitbucket-cloud).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly_budget: Option<HourlyBudgetInput>,
    /// The user-provisioning directory's id (bitbucket-cloud administered at
    /// admin.atlassian.com; its API key is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scim_directory_id: Option<String>,
    /// Groups whose members hold a licence in the applications that read the directory
    /// (crowd-directory), or that grant Bitbucket access (bitbucket-cloud with `scim`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licensed_groups: Option<Vec<String>>,
    /// Seats those applications' licence allows (crowd-directory; none: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats: Option<i64>,
    /// Groups of administrators, never changed (crowd-directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_groups: Option<Vec<String>>,
    /// Days the change log keeps events (crowd-directory; 30 when not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_retention_days: Option<u32>,
    /// `file` (roster.toml, read-only here) or `api`.
    pub origin: String,
    /// Deprovisioning, threshold, default and protected groups, budget, …
    pub policy: PolicyView,
}

/// What the engine does with a target: the `[target]` fields that are not the kind's own
/// settings, defaults filled in.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// What happens to an account whose person left the IdP or was disabled there.
    pub deprovision: Deprovision,
    /// When a plan is held for approval: people deprovisioned, memberships removed (per
    /// person, per group, in total), renames, email changes, per plan and over a rolling window.
    pub threshold: Threshold,
    /// What becomes of a change made by hand to a managed group or account: reverted (the
    /// default), adopted or only reported.
    pub drift: roster_engine::DriftPolicy,
    /// Accounts with no sign-in for `days` are deprovisioned (absent: off).
    pub inactive: Option<roster_engine::Inactive>,
    /// Accounts never changed.
    pub protected_users: Vec<String>,
    /// Groups never changed.
    pub protected_groups: Vec<String>,
    /// Existing accounts whose name matches an IdP user are taken over.
    pub adopt_existing_users: bool,
    /// When disabling, memberships of groups Roster does not manage are kept.
    pub keep_unmanaged_memberships: bool,
    /// Groups every active synced user is put in.
    pub default_groups: Vec<String>,
    /// Groups a new account starts in, never managed afterwards.
    pub new_user_groups: Vec<String>,
    /// Which source wins each attribute, in order: `{"email": ["hr", "entra"]}`.
    pub attribute_priority: BTreeMap<String, Vec<String>>,
    /// Requests in flight at once: a number, or an adaptive limit and its bounds.
    pub concurrency: Concurrency,
    /// Users per bulk add.
    pub batch_size: usize,
    /// Request budget towards the target.
    pub budget: BudgetConfig,
    /// Retries of a throttled or failed call.
    pub max_retries: u32,
    /// Seconds one request to the target may take.
    pub request_timeout_secs: u64,
}

impl From<&TargetConfig> for PolicyView {
    fn from(t: &TargetConfig) -> Self {
        // Destructured in full, so a field added to `TargetConfig` does not compile here until
        // the policy shows it or says why not: the id and kind are shown beside the policy, the
        // kind's own settings (credentials among them) never.
        let TargetConfig {
            origin: _,
            id: _,
            kind: _,
            deprovision,
            threshold,
            drift,
            inactive,
            protected_users,
            protected_groups,
            adopt_existing_users,
            keep_unmanaged_memberships,
            default_groups,
            new_user_groups,
            attribute_priority,
            concurrency,
            batch_size,
            budget,
            max_retries,
            request_timeout_secs,
            connection: _,
        } = t;
        PolicyView {
            deprovision: *deprovision,
            threshold: *threshold,
            drift: *drift,
            inactive: *inactive,
            protected_users: protected_users.clone(),
            protected_groups: protected_groups.clone(),
            adopt_existing_users: *adopt_existing_users,
            keep_unmanaged_memberships: *keep_unmanaged_memberships,
            default_groups: default_groups.clone(),
            new_user_groups: new_user_groups.clone(),
            attribute_priority: attribute_priority.clone(),
            concurrency: *concurrency,
            batch_size: *batch_size,
            budget: *budget,
            max_retries: *max_retries,
            request_timeout_secs: *request_timeout_secs,
        }
    }
}

fn view(state: &AppState, t: &TargetConfig) -> TargetView {
    let connection = state.kinds().get(&t.kind).map(|k| k.describe(t)).unwrap_or_default();
    // The kind checked its settings when the target was defined: a field of another shape is
    // not one of these.
    fn setting<T: serde::de::DeserializeOwned>(t: &TargetConfig, name: &str) -> Option<T> {
        t.connection
            .get(name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    TargetView {
        id: t.id.clone(),
        kind: t.kind.clone(),
        url: connection.url,
        username: connection.account,
        credential: connection.credential,
        licensed_groups: setting(t, "licensed_groups"),
        seats: setting(t, "seats"),
        admin_groups: setting(t, "admin_groups"),
        event_retention_days: setting(t, "event_retention_days"),
        workspace: setting(t, "workspace"),
        invite_group: setting(t, "invite_group"),
        hourly_budget: setting(t, "hourly_budget"),
        scim_directory_id: t
            .connection
            .get("scim")
            .and_then(|v| v.get("directory_id"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        origin: t.origin.as_str().into(),
        policy: t.into(),
    }
}

fn find(state: &AppState, id: &str) -> ApiResult<TargetConfig> {
    state
        .config()
        .target_named(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no target named '{id}'")))
}

/// A target to create or replace: the fields of roster.toml's `[target]` table, with the
/// password or token given as its value.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// Id (1–64 letters, digits, `-`, `_`); the path's.
    pub id: String,
    /// Which kind of system it is: `bitbucket-dc` (Bitbucket Data Center, when left out),
    /// `bitbucket-cloud` (a Bitbucket Cloud workspace) or `crowd-directory` (the directory
    /// Roster serves as a Crowd server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Base URL, e.g. `https://bitbucket.example.com` (bitbucket-dc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The account Roster acts as (bitbucket-dc: a system administrator; always protected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Its password (Basic auth). Write-only; on replacement, leaving out both `password` and
    /// `token` keeps the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Or an HTTP access token (Bearer). Write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The workspace's slug, `acme` in bitbucket.org/acme (bitbucket-cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// An Atlassian API token, with the account's email as `username` (bitbucket-cloud).
    /// Write-only; on replacement, leaving out both it and `app_password` keeps the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// Or an app password, with the Bitbucket username (bitbucket-cloud). Write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_password: Option<String>,
    /// The group invitations go to (bitbucket-cloud administered in Bitbucket; default: the
    /// first of `default_groups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_group: Option<String>,
    /// Calls Roster allows itself towards Bitbucket Cloud over a rolling window
    /// (bitbucket-cloud; default 1000 per 3600 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_budget: Option<HourlyBudgetInput>,
    /// Atlassian's user-provisioning directory, for a workspace administered at
    /// admin.atlassian.com (bitbucket-cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim: Option<ScimDirectoryInput>,
    /// Groups whose members hold a licence in the applications that read the directory
    /// (crowd-directory), or that grant Bitbucket access (bitbucket-cloud with `scim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licensed_groups: Option<Vec<String>>,
    /// Seats those applications' licence allows; left out: unlimited (crowd-directory,
    /// bitbucket-cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub seats: Option<i64>,
    /// Groups of administrators, never changed (crowd-directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_groups: Option<Vec<String>>,
    /// Days the change log keeps events (crowd-directory; default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub event_retention_days: Option<u32>,
    /// `disable` (default), `delete`, `delete-and-erase` or `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprovision: Option<String>,
    /// When a plan is held for approval (`{"count": 50, "percent": 10, "renames": {…}, "window":
    /// {"days": 7, …}}`); fields left out take their defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// Accounts never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_users: Option<Vec<String>>,
    /// Groups never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_groups: Option<Vec<String>>,
    /// Take over existing accounts whose name matches an IdP user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_existing_users: Option<bool>,
    /// When disabling, keep memberships of groups Roster does not manage (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_unmanaged_memberships: Option<bool>,
    /// Groups every active synced user is put in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_groups: Option<Vec<String>>,
    /// Groups a new account starts in, never managed afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_user_groups: Option<Vec<String>>,
    /// Which source wins each attribute: `{"email": ["hr", "entra"]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_priority: Option<BTreeMap<String, Vec<String>>>,
    /// Requests in flight at once (default 8): a number, `"adaptive"` or
    /// `{"adaptive": {"max": 32}}` (raised while the target's latency holds, lowered on rising
    /// latency, 429 or 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// Users per add-users call (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10000)]
    pub batch_size: Option<u32>,
    /// Request budget towards Bitbucket: `{"per_second": 200, "burst": 200}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
    /// Retries of a throttled or failed call (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 20)]
    pub max_retries: Option<u32>,
    /// Seconds one request to Bitbucket may take before it counts as failed (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3600)]
    pub request_timeout_secs: Option<u64>,
}

/// `hourly_budget` of a bitbucket-cloud target.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HourlyBudgetInput {
    /// Calls allowed per window (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub calls: Option<u64>,
    /// The window, in seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub window_secs: Option<u64>,
}

/// `scim` of a bitbucket-cloud target: Atlassian's user-provisioning directory.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimDirectoryInput {
    /// The directory's id (admin.atlassian.com → Settings → User provisioning).
    pub directory_id: String,
    /// The directory API key. Write-only; on replacement, leaving it out keeps the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The SCIM API's base URL (default `https://api.atlassian.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl TargetInput {
    fn into_config(self) -> ApiResult<TargetConfig> {
        let mut value = serde_json::to_value(&self).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if let Some(o) = value.as_object_mut() {
            // roster.toml's form: a secret is `{ value = … }` (or env/file, which the API refuses).
            for key in ["password", "token", "api_token", "app_password"] {
                if let Some(v) = o.remove(key) {
                    o.insert(key.into(), serde_json::json!({ "value": v }));
                }
            }
            if let Some(scim) = o.get_mut("scim").and_then(|v| v.as_object_mut())
                && let Some(v) = scim.remove("api_key")
            {
                scim.insert("api_key".into(), serde_json::json!({ "value": v }));
            }
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid target: {e}")))
    }
}

/// The target (Roster writes to one Bitbucket instance; empty until one is defined).
#[utoipa::path(get, path = "/api/v1/targets", tag = "targets", security(("token" = ["viewer"])),
    responses((status = 200, body = [TargetView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>) -> Json<Vec<TargetView>> {
    Json(state.config().targets.iter().map(|t| view(&state, t)).collect())
}

/// One target.
#[utoipa::path(get, path = "/api/v1/targets/{id}", tag = "targets", security(("token" = ["viewer"])),
    params(("id" = String, Path, description = "Target id")),
    responses((status = 200, body = TargetView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<TargetView>> {
    Ok(Json(view(&state, &find(&state, &id)?)))
}

/// Creates (201) or replaces (200) the target, when roster.toml has no `[target]`. The
/// credential is sealed and never shown again.
#[utoipa::path(put, path = "/api/v1/targets/{id}", tag = "targets", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Target id")),
    request_body = TargetInput,
    responses((status = 200, body = TargetView), (status = 201, body = TargetView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<TargetInput>,
) -> ApiResult<(StatusCode, Json<TargetView>)> {
    ApiError::check_same_id(&id, &body.id)?;
    let created = state.put_target(body.into_config()?)?;
    let action = if created { "target.create" } else { "target.replace" };
    caller.audit(&state, action, &id, None).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(&state, &find(&state, &id)?))))
}

/// Deletes the target defined through the API; nothing runs until another is defined.
#[utoipa::path(delete, path = "/api/v1/targets/{id}", tag = "targets", security(("token" = ["admin"])),
    params(("id" = String, Path, description = "Target id")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.delete_target(&id)?;
    caller.audit(&state, "target.delete", &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tests the connection: the credentials work and the account administers Bitbucket; says
/// how many licensed seats there are and how many are used.
#[utoipa::path(post, path = "/api/v1/targets/{id}/check", tag = "targets", security(("token" = ["operator"])),
    params(("id" = String, Path, description = "Target id")),
    responses((status = 200, body = TargetCheck, description = "The check ran; `ok` says whether Roster can write"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn check(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<TargetCheck>> {
    Ok(Json(state.check_target(&id).await?))
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one, put, delete))
        .routes(routes!(check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_the_target_but_its_id_kind_and_connection() {
        let target: TargetConfig = serde_json::from_value(serde_json::json!({
            "id": "bb",
            "url": "https://bitbucket.example.com",
            "username": "roster",
            "password": {"value": "s3cret"},
            "deprovision": "delete-and-erase",
            "threshold": {"count": 3, "percent": 12.5, "renames": {"count": 4, "percent": 5, "floor": 2}, "window": {"days": 30}},
            "protected_users": ["admin"],
            "protected_groups": ["admins"],
            "adopt_existing_users": true,
            "keep_unmanaged_memberships": false,
            "default_groups": ["everyone"],
            "new_user_groups": ["newcomers"],
            "attribute_priority": {"email": ["hr", "entra"]},
            "concurrency": 2,
            "batch_size": 7,
            "budget": {"per_second": 9.5, "burst": 4},
            "max_retries": 1,
            "request_timeout_secs": 5
        }))
        .unwrap();
        let mut expected = serde_json::to_value(&target).unwrap();
        let o = expected.as_object_mut().unwrap();
        for key in ["id", "kind", "url", "username", "password"] {
            o.remove(key);
        }
        let policy = serde_json::to_value(PolicyView::from(&target)).unwrap();
        assert_eq!(policy, expected);
        assert!(!policy.to_string().contains("s3cret"));
        // Every rule of the threshold is shown, the ones left out with their defaults.
        let t = &policy["threshold"];
        assert_eq!(
            t["renames"],
            serde_json::json!({"count": 4, "percent": 5.0, "floor": 2})
        );
        assert_eq!(
            (t["window"]["days"].as_u64(), t["window"]["deprovisions"].as_u64()),
            (Some(30), Some(150))
        );
        assert_eq!(
            t["group_members_lost"],
            serde_json::json!({"percent": 50.0, "floor": 10})
        );
    }
}
