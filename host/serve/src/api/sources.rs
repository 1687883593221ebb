//! `/api/v1/sources`: read, create, replace, delete (secrets write-only), test the connection,
//! the schedule's next fire times, and previews of the transform chain.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path, Query};
use crate::service::push::PushState;
use roster_directory::transform::Traces;
use roster_directory::{CheckReport, Feed, PushConfig, Sample, SourceConfig, TransformConfig};
use roster_http::BudgetConfig;
use roster_runtime::Limits;
use roster_runtime::capability::{NetPolicy, Origin};
use roster_runtime::secrets::{BindingSpec, Secret};
use roster_schedule::ScheduleConfig;

/// A secret as the API shows it: never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// Name used in `{{secret:NAME}}`.
    pub name: String,
    /// Where it may be used.
    #[serde(flatten)]
    pub binding: BindingSpec,
    /// Why it cannot be used, when its binding is incomplete (stored by an older Roster):
    /// give the secret again with its binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unusable: Option<String>,
}

/// A source as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// Id.
    pub id: String,
    /// Its connector plugin, or `push:scim` for a source that pushes to Roster.
    pub plugin: String,
    /// Directory order (lower wins).
    pub priority: i64,
    /// Fetched at all.
    pub enabled: bool,
    /// `file` (roster.toml, read-only here) or `api`.
    pub origin: String,
    /// The whole configuration but secrets, as in roster.toml.
    pub config: SourceConfigView,
    /// Its secrets, without values.
    pub secrets: Vec<SecretView>,
    /// The next scheduled runs (RFC 3339, UTC); empty when not scheduled.
    pub next_runs: Vec<String>,
    /// The schedule in words (`when it pushes` for a push source without one).
    pub schedule: String,
    /// A push source's pending pushes and when their run is due; `null` for a pulled source.
    pub push: Option<PushState>,
}

/// A source's configuration as the store keeps it: the fields of a `[[source]]` table, defaults
/// filled in, secrets apart.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceConfigView {
    /// Id.
    pub id: String,
    /// Connector plugin, for a source Roster reads.
    pub plugin: Option<String>,
    /// How the source pushes to Roster, for a source that pushes (SCIM).
    pub push: Option<PushConfig>,
    /// Directory order (lower wins).
    pub priority: i64,
    /// Fetched at all.
    pub enabled: bool,
    /// The connector's own settings: free-form here; `GET /api/v1/plugins` gives each
    /// connector's `settings_schema`.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// A folder of the server the connector may read (roster.toml only).
    #[schema(value_type = Option<String>)]
    pub files: Option<PathBuf>,
    /// Origins the connector may reach: `https://…`, `http://…`, `ldap://…` or `ldaps://…`.
    #[schema(value_type = Vec<String>)]
    pub allow_hosts: Vec<Origin>,
    /// Plain HTTP origins allowed.
    pub allow_insecure_http: bool,
    /// Private, loopback and link-local addresses allowed.
    pub allow_private_addresses: bool,
    /// LDAP without TLS (transport `plain`) allowed.
    pub allow_plain_ldap: bool,
    /// Per-job limits of the connector.
    pub limits: Limits,
    /// Request budget towards the IdP.
    pub budget: BudgetConfig,
    /// Transform chain, in order.
    pub transforms: Vec<TransformConfig>,
    /// Only members of these IdP groups.
    pub required_groups: Vec<String>,
    /// When `roster serve` syncs it.
    pub schedule: ScheduleConfig,
}

impl From<&SourceConfig> for SourceConfigView {
    fn from(s: &SourceConfig) -> Self {
        // Destructured in full, so a field added to `SourceConfig` does not compile here until
        // the view shows it (or leaves it out on purpose, as the secrets and the origin are).
        let SourceConfig {
            id,
            plugin,
            push,
            priority,
            enabled,
            settings,
            files,
            network:
                NetPolicy {
                    allow_hosts,
                    allow_insecure_http,
                    allow_private_addresses,
                    allow_plain_ldap,
                },
            secrets: _,
            limits,
            budget,
            transforms,
            required_groups,
            schedule,
            origin: _,
        } = s;
        SourceConfigView {
            id: id.clone(),
            plugin: plugin.clone(),
            push: push.clone(),
            priority: *priority,
            enabled: *enabled,
            settings: settings.clone(),
            files: files.clone(),
            allow_hosts: allow_hosts.clone(),
            allow_insecure_http: *allow_insecure_http,
            allow_private_addresses: *allow_private_addresses,
            allow_plain_ldap: *allow_plain_ldap,
            limits: limits.clone(),
            budget: *budget,
            transforms: transforms.clone(),
            required_groups: required_groups.clone(),
            schedule: schedule.clone(),
        }
    }
}

/// A secret as given to the API: the value is sealed and never shown again. A value secret
/// says where it goes (`hosts`, `use`, and `methods`/`path`), e.g. `{"name": "client_secret",
/// "value": "…", "hosts": ["https://login.microsoftonline.com"], "use": {"form":
/// "client_secret"}, "path": "/contoso.onmicrosoft.com/oauth2/"}`; a signing key says what it
/// signs for (`client_id`, `audience`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretInput {
    /// Name used in `{{secret:NAME}}`.
    pub name: String,
    /// The value (a PEM private key for `signing-key`).
    pub value: String,
    /// Where it may be used.
    #[serde(flatten)]
    pub binding: BindingSpec,
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
    /// The connector's own settings: free-form here; `GET /api/v1/plugins` gives each
    /// connector's `settings_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// Origins the connector may reach: `https://host[:port]`, `http://…` (with
    /// `allow_insecure_http`), `ldap://host[:port]` (StartTLS) or `ldaps://host[:port]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_hosts: Option<Vec<String>>,
    /// Allow plain HTTP origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// Allow private, loopback and link-local addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_private_addresses: Option<bool>,
    /// Allow LDAP without TLS (a connector's transport `plain`); `ldap://` origins are
    /// upgraded by StartTLS without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_plain_ldap: Option<bool>,
    /// Secrets; on replacement, leaving them out keeps the stored ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretInput>,
    /// Per-job limits; each one left out keeps its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Request budget towards the IdP, e.g. `{"per_second": 20, "burst": 40}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
    /// Transform chain, in order: `[{"plugin": "mapping", "settings": {…}}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transforms: Option<Vec<TransformConfig>>,
    /// Only members of these IdP groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_groups: Option<Vec<String>>,
    /// `{"every_minutes": 60}` or `{"cron": "0 0/15 * * * ?"}`, `incremental`, `full_every_hours`, `enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleConfig>,
}

impl SourceInput {
    fn into_config(self) -> Result<SourceConfig, ApiError> {
        let value = serde_json::to_value(&self).map_err(|e| ApiError::bad_request(e.to_string()))?;
        serde_json::from_value(value)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid source: {e}")))
    }
}

/// Each source's secrets as the API shows them, read from the sealed copies in the store
/// (names, hosts and kinds; never the values). A source whose secrets cannot be read shows none.
async fn secret_views(state: &AppState, ids: Vec<String>) -> Vec<Vec<SecretView>> {
    state
        .store
        .blocking(move |store| {
            ids.iter()
                .map(|id| {
                    store
                        .source_secrets::<Secret>(id)
                        .unwrap_or_default()
                        .iter()
                        .map(|x| SecretView {
                            name: x.name.clone(),
                            binding: x.spec.clone(),
                            unusable: x.unusable().map(str::to_string),
                        })
                        .collect()
                })
                .collect()
        })
        .await
}

/// One source as the API shows it.
async fn view_one(state: &AppState, s: &SourceConfig) -> SourceView {
    let secrets = secret_views(state, vec![s.id.clone()]).await;
    view(state, s, secrets.into_iter().next().unwrap_or_default())
}

/// A source as the API shows it, with its secrets as [`secret_views`] read them.
fn view(state: &AppState, s: &SourceConfig, secrets: Vec<SecretView>) -> SourceView {
    let push = state.push_state(s);
    let schedule = s.schedule().ok();
    let next_runs = match (&schedule, s.scheduled() && s.enabled) {
        (Some(sch), true) => sch
            .upcoming(chrono::Utc::now(), 3)
            .into_iter()
            .map(|t| roster_model::time::format_time(&t))
            .collect(),
        _ => Vec::new(),
    };
    SourceView {
        id: s.id.clone(),
        plugin: s.feed_label(),
        priority: s.priority,
        enabled: s.enabled,
        origin: s.origin.as_str().into(),
        config: s.into(),
        secrets,
        next_runs,
        schedule: match (&schedule, s.scheduled(), s.feed()) {
            (Some(sch), true, _) => sch.describe(),
            (_, false, Feed::Push(_)) => "when it pushes".into(),
            _ => "not scheduled".into(),
        },
        push,
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
    let sources = state.config().sources;
    let secrets = secret_views(&state, sources.iter().map(|s| s.id.clone()).collect()).await;
    Ok(Json(
        sources
            .iter()
            .zip(secrets)
            .map(|(s, secrets)| view(&state, s, secrets))
            .collect(),
    ))
}

/// One source.
#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "sources", security(("token" = ["viewer"])),
    params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = SourceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SourceView>> {
    Ok(Json(view_one(&state, &find(&state, &id)?).await))
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
    caller.audit(&state, "source.create", &id, None).await?;
    Ok((StatusCode::CREATED, Json(view_one(&state, &find(&state, &id)?).await)))
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
    caller.audit(&state, "source.replace", &id, None).await?;
    Ok(Json(view_one(&state, &find(&state, &id)?).await))
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
    caller.audit(&state, "source.delete", &id, None).await?;
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
    /// Last fire time run (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_fire_at: Option<i64>,
    /// Last successful run (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
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
        .schedule()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let enabled = s.schedule.enabled && s.enabled;
    let st = {
        let id = id.clone();
        state.store.blocking(move |store| store.schedule_state(&id)).await?
    };
    Ok(Json(ScheduleView {
        source: id,
        enabled,
        schedule: sch.describe(),
        next_runs: if enabled {
            sch.upcoming(chrono::Utc::now(), count as usize)
                .into_iter()
                .map(|t| roster_model::time::format_time(&t))
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
    #[schema(value_type = Option<export::Document>)]
    pub sample: Option<serde_json::Value>,
    /// Only records whose id or name contains this.
    pub only: Option<String>,
    /// At most this many users and groups (1–1000, default 50).
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// A draft chain to preview instead of the stored one (inline `settings` only), e.g. a
    /// mapping being edited; refused with 422 and the transform's own error (a mapping's line
    /// and column) when a step does not accept its settings. Nothing is stored.
    pub transforms: Option<Vec<TransformConfig>>,
}

/// The `file` connector's JSON export (`roster_export::Document`), as the OpenAPI document
/// describes it. The export crate parses it (it is shared with the wasm connector and has no
/// OpenAPI dependency); these types only give its shape a schema.
#[allow(dead_code, reason = "schemas only: never built, the export crate parses samples")]
mod export {
    use std::collections::BTreeMap;

    use utoipa::ToSchema;

    /// Sample records: each list optional.
    #[derive(ToSchema)]
    #[schema(as = SampleDocument)]
    #[serde(deny_unknown_fields)]
    pub struct Document {
        /// Users.
        #[serde(default)]
        pub users: Vec<User>,
        /// Groups.
        #[serde(default)]
        pub groups: Vec<Group>,
        /// Memberships.
        #[serde(default)]
        pub memberships: Vec<Membership>,
    }

    /// A person.
    #[derive(ToSchema)]
    #[schema(as = SampleUser)]
    #[serde(deny_unknown_fields)]
    pub struct User {
        /// The source's immutable id.
        pub id: String,
        /// The login name.
        pub username: String,
        /// Email address.
        pub email: Option<String>,
        /// Display name.
        pub display_name: Option<String>,
        /// False for a disabled account; true when absent.
        #[serde(default)]
        pub active: bool,
        /// Attributes: each name with one value or several.
        #[serde(default)]
        pub attributes: BTreeMap<String, AttributeValue>,
    }

    /// A group.
    #[derive(ToSchema)]
    #[schema(as = SampleGroup)]
    #[serde(deny_unknown_fields)]
    pub struct Group {
        /// The source's immutable id.
        pub id: String,
        /// The group's name.
        pub name: String,
        /// Description.
        pub description: Option<String>,
        /// Attributes: each name with one value or several.
        #[serde(default)]
        pub attributes: BTreeMap<String, AttributeValue>,
    }

    /// "`member` is a direct member of `group`", both by id.
    #[derive(ToSchema)]
    #[schema(as = SampleMembership)]
    #[serde(deny_unknown_fields)]
    pub struct Membership {
        /// The group's id.
        pub group: String,
        /// The member's id.
        pub member: String,
        /// The member is a group (nested); false when absent.
        #[serde(default)]
        pub member_is_group: bool,
    }

    /// One attribute value, or several.
    #[derive(ToSchema)]
    #[schema(as = SampleAttributeValue)]
    #[serde(untagged)]
    pub enum AttributeValue {
        /// One value.
        One(String),
        /// Several values.
        Many(Vec<String>),
    }
}

/// Runs the source's transform chain (or a draft of it, `transforms`) over its mirror or sample
/// records and shows each record before, after every step (with the rule that decided) and at
/// the end. Writes nothing.
#[utoipa::path(post, path = "/api/v1/sources/{id}/preview", tag = "sources", security(("token" = ["operator"])),
    params(("id" = String, Path, description = "Source id")),
    request_body = PreviewInput,
    responses((status = 200, body = Traces, description = "Traces: `users` and `groups`, each with `before`, `steps` and `after`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "No target is defined yet"), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<PreviewInput>,
) -> ApiResult<Json<Traces>> {
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
    let mut t = state.preview_chain(&id, body.transforms, sample).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_view_is_what_the_store_keeps() {
        let source: SourceConfig = serde_json::from_value(serde_json::json!({
            "id": "hr",
            "plugin": "entra",
            "priority": 5,
            "enabled": false,
            "settings": {"tenant": "t", "page_size": 10},
            "files": "exports",
            "allow_hosts": ["https://graph.microsoft.com", "https://*.example.com:8443", "ldaps://dc.example.com"],
            "allow_insecure_http": true,
            "allow_private_addresses": true,
            "allow_plain_ldap": true,
            "secrets": [{"name": "key", "hosts": ["https://login.microsoftonline.com"], "use": {"header": "Authorization"}, "value": "s3cret"}],
            "limits": {"memory_mib": 64},
            "budget": {"per_second": 2.5, "burst": 3},
            "transforms": [{"plugin": "mapping", "settings": {"rules": []}}, {"plugin": "normalize", "settings_file": "n.toml"}],
            "required_groups": ["staff"],
            "schedule": {"cron": "0 0/15 * * * ?", "incremental": false}
        }))
        .unwrap();
        let view = serde_json::to_value(SourceConfigView::from(&source)).unwrap();
        assert_eq!(view, source.stored());
        assert!(!view.to_string().contains("s3cret"));
    }
}
