//! The REST API (`/api/v1`): one authenticated surface for everything an administrator or an
//! automation does with Roster, described by an OpenAPI 3.1 document generated from the
//! handlers (`utoipa`).
//!
//! Each operation's required role is written once, in its `security` requirement
//! (`security(("token" = ["operator"]))`); the auth middleware enforces the role it reads from
//! the generated document, so the document and the enforcement cannot disagree. Nothing is
//! served without a token but `/healthz` and `/readyz`.

pub mod auth;
pub mod crowd_apps;
mod directory;
mod plans;
pub(crate) mod plugins;
mod runs;
mod scim_tokens;
pub(crate) mod sources;
mod system;
mod targets;

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::OpenApi as Doc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::service::{Service, ServiceError};

/// What every handler gets.
pub type AppState = Arc<Service>;

/// An error answer: `{"error": "…"}` with a status that says whose mistake it was.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}

impl ApiError {
    /// 422 unless a replacement's body names the resource its path does.
    pub fn check_same_id(path_id: &str, body_id: &str) -> Result<(), ApiError> {
        if path_id == body_id {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the body's id '{body_id}' is not the path's '{path_id}'"),
        ))
    }

    /// An error with a status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// What went wrong, as the answer says it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), "{}", self.message);
        }
        (self.status, axum::Json(ErrorBody { error: self.message })).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<roster_store::StoreError> for ApiError {
    fn from(e: roster_store::StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<crate::runner::RunError> for ApiError {
    fn from(e: crate::runner::RunError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

/// `axum::Json` whose refusals are JSON errors like every other answer, taking a JSON object
/// only: serde also reads a struct from an array of its fields (`[]` for one whose fields all
/// have defaults), which no operation's document allows.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::Bytes::from_request(axum::extract::Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|r| ApiError::new(r.status(), r.body_text()))?;
        let not_an_object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b != b'{');
        let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(request, state).await {
            Err(r @ JsonRejection::MissingJsonContentType(_)) => Err(r.into()),
            _ if not_an_object => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the body must be a JSON object ({\"field\": value, …}); see the operation's request body in /api/v1/openapi.json",
            )),
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(r) => Err(r.into()),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with JSON refusals.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with JSON refusals.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `roster token create --role admin|operator|viewer`. Each operation lists the least role it needs.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Roster",
        description = "Keeps Bitbucket's users, groups and memberships in step with identity providers. Every operation needs a bearer token whose role is at least the one its security requirement names (viewer < operator < admin).",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    components(schemas(ErrorBody, runs::ExportFormat))
)]
struct ApiDoc;

/// Every operation, with the OpenAPI document they make; no state or middleware yet.
fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(sources::routes())
        .merge(runs::routes())
        .merge(plans::routes())
        .merge(directory::routes())
        .merge(plugins::routes())
        .merge(system::routes())
        .merge(targets::routes())
        .merge(scim_tokens::routes())
        .merge(crowd_apps::routes())
}

/// The API's routes and their OpenAPI document.
pub fn routes(state: AppState) -> (axum::Router, Doc) {
    let (router, mut doc) = operations().split_for_parts();
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    let doc_json = Arc::new(doc.to_pretty_json().unwrap_or_default());
    let gate = Arc::new(auth::Gate::new(&doc));
    let refusals = gate.refusals();
    let router = router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc_json.clone();
                async move { ([("content-type", "application/json")], doc.as_str().to_owned()) }
            }),
        )
        .route("/healthz", axum::routing::get(system::healthz))
        .route("/readyz", axum::routing::get(system::readyz))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), gate),
            auth::authenticate,
        ))
        // SCIM has its own gate (the pushing source's token and allow-list), not the API's.
        .merge(crate::scim::routes(state.clone()))
        // The Crowd endpoint too: an application's name and password, and its addresses.
        .merge(crate::crowd::routes(state.clone()))
        // The admin pages: a session opened with an API token, the API's roles and allow-list.
        .merge(crate::ui::routes(state.clone(), &doc, refusals))
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/scim/") {
                return crate::scim::not_found();
            }
            if uri.path().starts_with("/rest/usermanagement/") {
                return crate::crowd::not_found(uri.path());
            }
            if uri.path() == "/ui" || uri.path().starts_with("/ui/") {
                return crate::ui::not_found();
            }
            ApiError::not_found("no such route; see /api/v1/openapi.json").into_response()
        })
        .with_state(state);
    (router, doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `doc` declares an object with nothing said about its members.
    fn untyped_objects(doc: &serde_json::Value, at: &str, found: &mut Vec<String>) {
        match doc {
            serde_json::Value::Object(o) => {
                let is_object = match o.get("type") {
                    Some(serde_json::Value::Array(types)) => types.iter().any(|t| t == "object"),
                    Some(t) => t == "object",
                    None => false,
                };
                let described = ["properties", "additionalProperties", "allOf", "oneOf", "anyOf", "$ref"]
                    .iter()
                    .any(|k| o.contains_key(*k));
                if is_object && !described {
                    found.push(at.to_string());
                }
                for (k, v) in o {
                    untyped_objects(v, &format!("{at}/{k}"), found);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    untyped_objects(v, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn only_plugin_settings_and_their_schemas_are_free_form_objects() {
        let (_, doc) = operations().split_for_parts();
        let doc = serde_json::to_value(&doc).unwrap();
        let mut found = Vec::new();
        untyped_objects(&doc, "#", &mut found);
        found.sort();
        // Each plugin defines its own settings; `GET /api/v1/plugins` gives their JSON Schema.
        assert_eq!(
            found,
            [
                "#/components/schemas/PluginView/properties/settings_schema",
                "#/components/schemas/SourceConfigView/properties/settings",
                "#/components/schemas/SourceInput/properties/settings",
                "#/components/schemas/TransformConfig/properties/settings",
            ]
        );
    }

    /// The guard's configuration and verdict are typed in full: an API client sees every rule.
    #[test]
    fn the_threshold_and_the_verdicts_tripped_rules_are_in_the_document() {
        let (_, doc) = operations().split_for_parts();
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        for field in [
            "count",
            "percent",
            "people_losing_memberships",
            "memberships_removed",
            "group_members_lost",
            "renames",
            "email_changes",
            "window",
        ] {
            assert!(
                schemas["Threshold"]["properties"].get(field).is_some(),
                "Threshold.{field}"
            );
        }
        for field in ["tripped", "window", "memberships_removed", "people_losing_memberships"] {
            assert!(schemas["Verdict"]["properties"].get(field).is_some(), "Verdict.{field}");
        }
        let rules = schemas["Rule"]["enum"].to_string();
        assert!(
            rules.contains("group-members-lost") && rules.contains("window-deprovisions"),
            "{rules}"
        );
        for name in ["Tripped", "WindowView", "Limit", "GroupLimit", "Window"] {
            assert!(schemas.get(name).is_some(), "schema {name}");
        }
    }

    /// A run's drift (changes made by hand in the target) is typed in the run JSON, and the
    /// target's policy shows its `drift` setting.
    #[test]
    fn the_run_summary_carries_drift_and_the_policy_its_setting() {
        let (_, doc) = operations().split_for_parts();
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["Summary"]["properties"].get("drift").is_some(), "Summary.drift");
        for field in [
            "change",
            "group",
            "account",
            "renamed_to",
            "handled",
            "changed_by",
            "changed_at",
            "detail",
        ] {
            assert!(schemas["Drift"]["properties"].get(field).is_some(), "Drift.{field}");
        }
        assert!(
            schemas["PolicyView"]["properties"].get("drift").is_some(),
            "PolicyView.drift"
        );
        assert!(
            schemas["PolicyView"]["properties"].get("inactive").is_some(),
            "PolicyView.inactive"
        );
        assert!(schemas["Inactive"]["properties"].get("days").is_some(), "Inactive.days");
        let policies = schemas["DriftPolicy"].to_string();
        for value in ["revert", "adopt", "report"] {
            assert!(policies.contains(value), "{policies}");
        }
    }

    /// A run against a target that meters calls says when its plan is done, typed.
    #[test]
    fn the_run_summary_carries_the_plans_eta() {
        let (_, doc) = operations().split_for_parts();
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["Summary"]["properties"].get("eta").is_some(), "Summary.eta");
        for field in [
            "calls_needed",
            "calls_per_window",
            "window_secs",
            "available_now",
            "read_calls",
            "runs_needed",
            "seconds_until_done",
        ] {
            assert!(schemas["Eta"]["properties"].get(field).is_some(), "Eta.{field}");
        }
    }
}
