//! `/api/v1/plugins`: what is loaded (world, version, sha256), upload a component, reload the
//! folder.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path};
use roster_runtime::LoadReport;

/// A WebAssembly component file.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct WasmBody(#[allow(dead_code)] Vec<u8>);

/// A loaded plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    /// Name sources refer to.
    pub name: String,
    /// connector or transform.
    pub world: String,
    /// Its own version.
    pub version: String,
    /// sha256 of the file.
    pub sha256: String,
    /// The file.
    pub file: String,
    /// One line for administrators.
    pub description: String,
    /// JSON Schema of its settings: a JSON Schema document, so an object of any shape.
    #[schema(value_type = Object)]
    pub settings_schema: serde_json::Value,
    /// A connector whose sources can verify passwords (it exports `credentials`, WIT 0.1.2:
    /// the `ldap` connector), for the Crowd endpoint's `POST /authentication`.
    pub verifies_passwords: bool,
}

/// A file that failed to load.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedView {
    /// The file.
    pub file: String,
    /// Why.
    pub error: String,
}

/// The plugins folder.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginsView {
    /// Loaded plugins.
    pub plugins: Vec<PluginView>,
    /// Files that failed to load (the previous version of the same plugin, if any, serves on).
    pub failed: Vec<FailedView>,
}

pub(crate) fn list_now(state: &AppState) -> PluginsView {
    PluginsView {
        plugins: state
            .runtime
            .plugins()
            .iter()
            .map(|p| PluginView {
                name: p.label.name.clone(),
                world: p.world.to_string(),
                version: p.label.version.clone(),
                sha256: p.label.sha256.clone(),
                file: p.label.file.clone(),
                description: p.description.clone(),
                settings_schema: serde_json::from_str(&p.settings_schema)
                    .unwrap_or_else(|_| serde_json::Value::String(p.settings_schema.clone())),
                verifies_passwords: p.verifies_passwords(),
            })
            .collect(),
        failed: state
            .runtime
            .load_errors()
            .into_iter()
            .map(|(f, e)| FailedView {
                file: f.display().to_string(),
                error: e,
            })
            .collect(),
    }
}

/// The plugins loaded, and the files that failed.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("token" = ["viewer"])),
    responses((status = 200, body = PluginsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>) -> Json<PluginsView> {
    Json(list_now(&state))
}

/// Installs a component as `{file}` (a name ending in `.wasm`): it is written to a temporary
/// file beside it, checked, then renamed into place and loaded; running jobs finish on the
/// version they started with. A refused component leaves nothing behind, and the refusal is in
/// the audit log.
#[utoipa::path(put, path = "/api/v1/plugins/{file}", tag = "plugins", security(("token" = ["admin"])),
    params(("file" = String, Path, description = "File name, e.g. `mapping.wasm`")),
    request_body(content = WasmBody, content_type = "application/octet-stream", description = "The component (`application/wasm` is accepted too)"),
    responses((status = 200, body = PluginView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody, description = "Larger than 128 MiB"), (status = 422, body = ErrorBody, description = "Not a component Roster can load")))]
async fn upload(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(file): Path<String>,
    body: Bytes,
) -> ApiResult<Json<PluginView>> {
    match install(&state, &file, &body).await {
        Ok(label) => {
            let detail = format!("{} {} sha256 {}", label.name, label.version, label.sha256);
            caller.audit(&state, "plugin.upload", &file, Some(&detail)).await?;
            list_now(&state)
                .plugins
                .into_iter()
                .find(|p| p.sha256 == label.sha256)
                .map(Json)
                .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "loaded but not listed"))
        }
        Err(refusal) => {
            let detail = format!("{} bytes: {}", body.len(), refusal.message());
            caller
                .audit(&state, "plugin.upload-refused", &file, Some(&detail))
                .await?;
            Err(refusal)
        }
    }
}

/// Writes, checks, renames and loads an uploaded component; on any refusal or failure no file
/// of it is left in the folder.
pub(crate) async fn install(state: &AppState, file: &str, body: &[u8]) -> ApiResult<roster_runtime::PluginLabel> {
    let valid_name = file.ends_with(".wasm")
        && file.len() <= 128
        && !file.starts_with('.')
        && file.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid_name {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the file name must be letters, digits, '-', '_' or '.', and end in .wasm",
        ));
    }
    let dir = state.runtime.config().plugins_dir.clone();
    // A name of its own per upload, so two uploads of one file never write into each other;
    // not ending in `.wasm`, so the folder watcher never loads it half-written.
    let tmp = dir.join(format!(".{file}.{}.upload", unique()));
    let io = |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("writing {file}: {e}"));
    let removed = |e: ApiError| {
        let _ = std::fs::remove_file(&tmp);
        e
    };
    write_private(&tmp, body).await.map_err(io).map_err(removed)?;
    // Checked before it replaces anything: a broken upload leaves the folder as it was.
    let prepared = match state.runtime.prepare(&tmp).await {
        Ok(p) => p,
        Err(e) => return Err(removed(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))),
    };
    let dest = dir.join(file);
    if let Some(other) = state
        .runtime
        .plugins()
        .into_iter()
        .find(|p| p.label.name == prepared.label.name && p.path != dest)
    {
        return Err(removed(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the component is the plugin '{}', which {} already is; upload it as {} to replace it",
                prepared.label.name, other.label.file, other.label.file
            ),
        )));
    }
    tokio::fs::rename(&tmp, &dest).await.map_err(io).map_err(removed)?;
    match state.runtime.load_file(&dest).await {
        LoadReport::Loaded(l) | LoadReport::Replaced { new: l, .. } => Ok(l),
        LoadReport::Removed(_) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the file vanished")),
        LoadReport::Failed { error, .. } => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error)),
    }
}

/// A suffix no other upload of this process has, nor (by the pid) another process.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Writes `bytes` to a new file readable by Roster's user only.
async fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).await?;
    tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
    f.sync_all().await
}

/// Loads the plugins folder again (new, changed and removed files).
#[utoipa::path(post, path = "/api/v1/plugins/reload", tag = "plugins", security(("token" = ["operator"])),
    responses((status = 200, body = PluginsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn reload(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<Json<PluginsView>> {
    state.runtime.reload().await;
    caller.audit(&state, "plugin.reload", "plugins", None).await?;
    Ok(Json(list_now(&state)))
}

/// The largest component an upload takes. axum's default (2 MB) would refuse JavaScript and
/// Python components, which carry their interpreter (10–40 MB).
pub const MAX_UPLOAD_BYTES: usize = 128 << 20;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(upload))
        .routes(routes!(reload))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}
