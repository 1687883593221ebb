//! Roster as a SCIM 2.0 service provider (RFC 7643/7644): identity providers (Entra ID, Okta)
//! push Users and Groups to `/scim/v2/{source}/…` of a source configured with
//! `[source.push] protocol = "scim"`.
//!
//! Each write goes to the store as one transaction that also updates the source's mirror
//! (`roster_store::scim`), so it is durable before the answer; then `Service::pushed` is told,
//! which schedules the source's run. The SCIM model — filters, PATCH, projection, sorting,
//! schemas, the mapping of a resource to a mirror record — is `roster_scim`, shared with the
//! `scim` connector. Who may push and how much is `gate`.

mod gate;
mod resources;

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roster_scim::ScimError;
use roster_scim::schema::ServiceProviderConfig;
use serde_json::Value;

use crate::api::AppState;
use crate::api::auth::{REFUSAL_WINDOW, REFUSALS_PER_WINDOW, RefusalAudit};

/// SCIM's media type; `application/json` is accepted as well.
pub const MEDIA_TYPE: &str = "application/scim+json";

/// The most resources one list answer holds (`filter.maxResults`); a larger `count` is
/// clamped to it, as RFC 7644 §3.4.2.4 says.
pub const MAX_RESULTS: u32 = 1000;

/// What the SCIM routes share.
pub(crate) struct ScimState {
    service: AppState,
    buckets: gate::Buckets,
    /// The audit of refused pushes (401, 403), coalesced like the API's.
    refusals: Arc<RefusalAudit>,
}

/// Who is pushing, set by the gate for the handlers.
#[derive(Debug, Clone)]
pub(crate) struct Pushing {
    /// The source pushed to.
    source: String,
    /// `http(s)://host/scim/v2/{source}`, for `meta.location`.
    base_url: String,
    /// The token's name (for logs).
    token: String,
    /// The client's address (after trusted proxies).
    ip: String,
}

/// What Roster supports, as `/ServiceProviderConfig` says.
pub fn service_provider_config() -> ServiceProviderConfig {
    ServiceProviderConfig {
        patch: true,
        bulk: None,
        filter_max_results: MAX_RESULTS,
        change_password: false,
        sort: true,
        etag: true,
        documentation_uri: None,
    }
}

/// A SCIM JSON answer.
pub(crate) fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    r
}

/// An error answer (RFC 7644 §3.12); a 5xx is logged, since it is Roster's fault.
pub(crate) fn error_response(e: &ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(status = e.status, "SCIM: {}", e.detail);
    }
    scim_json(status, &e.to_json())
}

/// The SCIM routes, behind the gate; merged into what `roster serve` serves by `api::routes`.
pub fn routes(service: AppState) -> axum::Router<AppState> {
    let state = Arc::new(ScimState {
        service,
        buckets: gate::Buckets::default(),
        refusals: Arc::new(RefusalAudit::new(REFUSAL_WINDOW, REFUSALS_PER_WINDOW)),
    });
    use resources as r;
    axum::Router::new()
        .route("/scim/v2/{source}/ServiceProviderConfig", get(r::provider_config))
        .route("/scim/v2/{source}/ResourceTypes", get(r::resource_types))
        .route("/scim/v2/{source}/ResourceTypes/{id}", get(r::resource_type))
        .route("/scim/v2/{source}/Schemas", get(r::schemas))
        .route("/scim/v2/{source}/Schemas/{id}", get(r::schema))
        .route(
            "/scim/v2/{source}/Users",
            get(r::list_of::<r::Users>).post(r::create_of::<r::Users>),
        )
        .route(
            "/scim/v2/{source}/Groups",
            get(r::list_of::<r::Groups>).post(r::create_of::<r::Groups>),
        )
        .route("/scim/v2/{source}/Users/.search", post(r::search_of::<r::Users>))
        .route("/scim/v2/{source}/Groups/.search", post(r::search_of::<r::Groups>))
        .route("/scim/v2/{source}/.search", post(r::search_all))
        .route(
            "/scim/v2/{source}/Users/{id}",
            get(r::get_one_of::<r::Users>)
                .put(r::replace_of::<r::Users>)
                .patch(r::patch_of::<r::Users>)
                .delete(r::delete_of::<r::Users>),
        )
        .route(
            "/scim/v2/{source}/Groups/{id}",
            get(r::get_one_of::<r::Groups>)
                .put(r::replace_of::<r::Groups>)
                .patch(r::patch_of::<r::Groups>)
                .delete(r::delete_of::<r::Groups>),
        )
        .route("/scim/v2/{source}", get(r::root))
        .route("/scim/v2/{source}/{*rest}", axum::routing::any(r::no_such_endpoint))
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::admit))
        // The gate reads the body against the source's own cap (`max_body_kib`); axum's fixed
        // default (2 MiB) must not cut in before it.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// The answer to a path under `/scim/` that names no route (used by the API's fallback).
pub fn not_found() -> Response {
    error_response(&ScimError::status(
        404,
        "no such SCIM endpoint; the base URL is /scim/v2/{source}, with /Users, /Groups, /ServiceProviderConfig, /ResourceTypes and /Schemas under it",
    ))
}
